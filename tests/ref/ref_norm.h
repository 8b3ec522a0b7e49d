/* Plain-C double-precision references for the normalisation family (batch, group and channel
 * layer norm), independent of the library's code: one loop nest per definition. x is
 * [N, C, S] (S = D*H*W voxels); gamma/beta NULL mean 1 and 0; act/slope as in ref_ops.h. */
#ifndef VOXCL_REF_NORM_H
#define VOXCL_REF_NORM_H

#include <stddef.h>

/* GroupNorm: per sample n and group g (C/G channels x S voxels) mean and biased variance,
 * y = act(gamma[c] (x - mean) / sqrt(var + eps) + beta[c]). save (may be NULL): [N*G*2]
 * receives (mean, 1/sqrt(var + eps)). */
void ref_group_norm_forward(const double *x, int N, int C, size_t S, int G, const double *gamma, const double *beta,
                            double eps, int act, double slope, double *y, double *save);

/* BatchNorm3d. training: per channel over N*S values, biased variance to normalise; when
 * running_mean/running_var are not NULL they become (1 - momentum) r + momentum * batch with
 * the unbiased variance. Else the running statistics normalise (unchanged). save (may be
 * NULL): [C*2] (mean, 1/sqrt(var + eps)) of the statistics used. */
void ref_batch_norm_forward(const double *x, int N, int C, size_t S, const double *gamma, const double *beta,
                            int training, double *running_mean, double *running_var, double momentum, double eps,
                            int act, double slope, double *y, double *save);

/* Channel LayerNorm: at every (n, voxel) over the C channels, mean and biased variance,
 * y = gamma[c] (x - mean) / sqrt(var + eps) + beta[c]. save (may be NULL): [N*S*2], the N*S
 * means then the N*S values 1/sqrt(var + eps) (the library's layout). */
void ref_layer_norm_channels_forward(const double *x, int N, int C, size_t S, const double *gamma,
                                     const double *beta, double eps, double *y, double *save);

#endif
