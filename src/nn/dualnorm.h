/* The DualNorm module (layers.md part 2): a batch norm without affine and with its own running
 * statistics, modulated by class-probability masks. Two modes:
 *   SPADE (the reference, lambert-x/DualNorm-Unet unet/spade.py):
 *     x_hat = BN(x); m' = resize(m) (trilinear) to x's size; a = ReLU(conv3(K -> hidden)(m') + b);
 *     gamma = conv3(hidden -> C)(a) + b; beta likewise; y = x_hat * (1 + gamma) + beta
 *   masked (cfg.dualnorm_masked = 1): y = masked-region normalisation of x by m' with a
 *     per-class affine (vx_masked_norm_forward); region statistics are per sample, so no
 *     running statistics are needed.
 * Masks are constants (sg in the reference): no gradient reaches m. The module declares its
 * tensors into a network's parameter / state sets and arena; one vx_dualnorm_act per use. */
#ifndef VX_NN_DUALNORM_H
#define VX_NN_DUALNORM_H

#include "nn/nn.h"

#define VX_DUALNORM_EPS 1e-5f
#define VX_DUALNORM_MOMENTUM 0.1f

typedef struct {
  char name[48];   /* PyTorch-style prefix, for messages */
  int C, K, hidden;
  int masked;      /* 0: SPADE, 1: masked-region norm */
  int flat;        /* 2D configuration: 1x3x3 kernels */
  vx_conv_params cp; /* 3x3x3 (or 1x3x3), stride 1, same padding */
  /* SPADE parameters and their gradients */
  vx_tensor *w_shared, *b_shared, *w_gamma, *b_gamma, *w_beta, *b_beta;
  vx_tensor *dw_shared, *db_shared, *dw_gamma, *db_gamma, *dw_beta, *db_beta;
  /* masked mode: per-class affine, [K*C] (viewed as [K, C, 1, 1, 1]) */
  vx_tensor *rg, *rb, *drg, *drb;
  /* state: the parameter-free batch norm's running statistics (SPADE mode) */
  vx_tensor *running_mean, *running_var;
} vx_dualnorm;

/* Activations of one use of the module for an input of a given shape. */
typedef struct {
  vx_tensor *mr;              /* masks resized to x: [N, K, D, H, W] */
  vx_tensor *xhat, *save;     /* SPADE: BN output and statistics; masked: save [N*K*C*4] */
  vx_tensor *h, *gmap, *bmap; /* SPADE: hidden [N, hidden, ...], gamma and beta maps [N, C, ...] */
  vx_tensor *dxhat, *dgmap, *dh, *dhpre; /* SPADE backward scratch */
} vx_dualnorm_act;

/* Declares the module's parameters (into params) and running statistics (into state) under
 * 'prefix' for C channels and K mask classes. */
void vx_dualnorm_declare(vx_dualnorm *dn, vx_param_set *params, vx_param_set *state, const char *prefix, int C, int K,
                         int masked, int flat);
/* Declares the activations of one use for input shape xs. */
void vx_dualnorm_declare_act(const vx_dualnorm *dn, vx_arena *arena, vx_dualnorm_act *a, const int xs[5]);
/* Parameters of the module (for layer descriptions). */
size_t vx_dualnorm_param_count(const vx_dualnorm *dn);

/* y = DualNorm(x, m): x, y [N, C, D, H, W]; m [N, K, d, h, w] (any spatial size, resized).
 * training: batch statistics (running statistics move) or running statistics. */
vx_status vx_dualnorm_forward(vx_context *ctx, const vx_dualnorm *dn, vx_dualnorm_act *a, const vx_tensor *x,
                              const vx_tensor *m, int training, vx_tensor *y);
/* From dy: dx written (accumulate = 0) or added; every parameter gradient is ADDED. Uses the
 * activations of the last forward with the same 'a' (training must match it). */
vx_status vx_dualnorm_backward(vx_context *ctx, const vx_dualnorm *dn, vx_dualnorm_act *a, const vx_tensor *x,
                               const vx_tensor *dy, int training, vx_tensor *dx, int accumulate);

#endif
