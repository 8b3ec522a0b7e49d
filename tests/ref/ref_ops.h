/* Plain-C double-precision references for voxcl's ops, written for clarity, not speed: one
 * straightforward loop nest per definition, no shared code with the library, so a test compares
 * two independent derivations of the same formula. Layouts follow PyTorch:
 *   activations NCDHW; conv weights [O, C/groups, kD, kH, kW];
 *   transposed-conv weights [C, O/groups, kD, kH, kW].
 * Every shape is int[5]. Outputs are written by the caller-allocated pointer they name. */
#ifndef VOXCL_REF_OPS_H
#define VOXCL_REF_OPS_H

#include <stddef.h>

typedef struct {
  int stride[3], padding[3], dilation[3];
  int output_padding[3]; /* transposed convolution only */
  int groups;
} ref_conv_params;

enum { REF_ACT_NONE = 0, REF_ACT_RELU = 1, REF_ACT_LEAKY_RELU = 2 };

size_t ref_numel(const int shape[5]);

/* Output shape of conv3d / conv_transpose3d for input xs and weight ws; returns 0 when the
 * geometry is impossible (output size <= 0 or channels not divisible by groups). */
int ref_conv3d_out_shape(const int xs[5], const int ws[5], const ref_conv_params *p, int ys[5]);
int ref_conv_transpose3d_out_shape(const int xs[5], const int ws[5], const ref_conv_params *p, int ys[5]);

/* y[n,o,z,y,x] = b[o] + sum_{c in group, k} w[o, c, k] * x[n, c, z*s - p + k*d] (zero outside).
 * b may be NULL. */
void ref_conv3d_forward(const double *x, const int xs[5], const double *w, const int ws[5], const double *b,
                        const ref_conv_params *p, double *y, const int ys[5]);

/* y[n, o, i*s - p + k*d] += x[n, c, i] * w[c, o - group*Og, k] for every input voxel i and tap k
 * (scatter form; positions outside y are dropped), plus b[o]. b may be NULL. */
void ref_conv_transpose3d_forward(const double *x, const int xs[5], const double *w, const int ws[5],
                                  const double *b, const ref_conv_params *p, double *y, const int ys[5]);

/* act(x); slope is the LeakyReLU slope. */
double ref_activation(int act, double slope, double x);
void ref_activation_forward(int act, double slope, const double *x, size_t n, double *y);

/* Per (n, c) over the S = D*H*W voxels of x [N, C, S]: mean, biased variance,
 * y = act(gamma[c] * (x - mean) / sqrt(var + eps) + beta[c]). gamma/beta NULL: 1 and 0. */
void ref_instance_norm_forward(const double *x, int N, int C, size_t S, const double *gamma, const double *beta,
                               double eps, int act, double slope, double *y);

/* Softmax over the C channels of x [N, C, S] at every voxel. */
void ref_softmax_channels(const double *x, int N, int C, size_t S, double *y);

/* y [N, Ca+Cb, S] = concat(a [N, Ca, S], b [N, Cb, S]) along channels. */
void ref_concat_channels(const double *a, int Ca, const double *b, int Cb, int N, size_t S, double *y);

/* nnU-Net's DiceCE on logits [N, K, S] and labels [N, S] (class indices):
 * CE = mean over the N*S voxels of -log softmax(logits)[label];
 * Dice per sample n and class k: 1 - (2 tp + s) / (sum_v p + sum_v y + s), averaged over the
 * samples and the classes k >= 1 (k >= 0 with include_background);
 * loss = ce_weight * CE + dice_weight * mean Dice. */
double ref_loss_dice_ce(const double *logits, const double *labels, int N, int K, size_t S, double ce_weight,
                        double dice_weight, int include_background, double smooth);

/* One torch.optim.Adam (decoupled = 0) or AdamW (decoupled = 1) step in place; step counts
 * from 1. Adam adds weight_decay * p to the gradient; AdamW multiplies p by 1 - lr * wd. */
void ref_adam_step(double *p, const double *g, double *m, double *v, size_t n, int step, double lr, double beta1,
                   double beta2, double eps, double weight_decay, int decoupled);

/* One torch.optim.SGD step in place (dampening 0). first_step: the momentum buffer is set to
 * the (decayed) gradient, as PyTorch does when the buffer does not exist yet. */
void ref_sgd_step(double *p, const double *g, double *buf, size_t n, int first_step, double lr, double momentum,
                  int nesterov, double weight_decay);

#endif
