/* Double-precision references of DualNorm (SPADE and masked modes) and AC-Norm, composed from
 * the plain references of tests/ref (batch norm, conv3d, interpolate, masked norm); the
 * definitions are those of layers.md parts 2 and 4. */
#ifndef VOXCL_REF_DUALNORM_H
#define VOXCL_REF_DUALNORM_H

#include <stddef.h>

/* SPADE DualNorm in training mode (batch statistics): x [N, C, D, H, W] (xs), masks m (ms, K =
 * ms[1], resized trilinearly to x's size), hidden channels; kernels 3x3x3 or (flat) 1x3x3 with
 * same padding. ws [hidden, K, k], bs [hidden], wg/wb [C, hidden, k], bg/bb [C]. y like x. */
void ref_dualnorm_spade(const double *x, const int xs[5], const double *m, const int ms[5], int hidden, int flat,
                        const double *ws, const double *bs, const double *wg, const double *bg, const double *wb,
                        const double *bb, double eps, double *y);
/* Masked mode: masked-region norm of x by the resized masks, gamma/beta [K, C]. */
void ref_dualnorm_masked(const double *x, const int xs[5], const double *m, const int ms[5], const double *gamma,
                         const double *beta, double eps, double *y);
/* AC-Norm's S [C, C] (tau = 1): row softmax of -|y_t[i] - y_s[j]|, entries below the diagonal's
 * value of their row set to 0. */
void ref_acnorm_similarity(const double *gs, const double *bs, const double *gt, const double *bt, int C, double eps,
                           double *S);
/* AC-Norm forward in training mode: y = act(x_hat (gt + S gt) + (bt + S bt)); S_fixed (may be
 * NULL) replaces the S of gt, bt (a stop-gradient for finite differences). */
void ref_acnorm_forward(const double *x, int N, int C, size_t S, const double *gs, const double *bs, const double *gt,
                        const double *bt, const double *S_fixed, double eps, int act, double *y);

#endif
