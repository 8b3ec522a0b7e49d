/* The VAE regularisation branch of the invertible networks (Myronenko 2018; MONAI
 * SegResNetVAE), attached to the deepest encoder features during training only:
 *   GN -> ReLU -> Conv3 s2 (16 ch) -> dense to mu and softplus(dense) to sigma (latent 256),
 *   z = mu + sigma * eps (eps from a host RNG seeded per step, uploaded),
 *   dense -> ReLU -> reshape [16, half deepest size] -> Conv1 -> x2 up (k2 s2 transposed conv)
 *   -> GN -> ReLU -> per level up: k2 s2 transposed conv -> GN -> ReLU (no skips) -> Conv1 to
 *   the input channels.
 * Loss: weight * MSE(x, x_rec) + weight * KL. GN uses 8 groups (fewer when the channels are not
 * a multiple of 8: the greatest common divisor). Dense layers are convolutions whose kernel
 * covers the whole extent. The branch runs forward and backward in one call, right after the
 * encoder, so none of its activations outlive that call except dL/dfeatures. */
#ifndef VX_NN_VAE_H
#define VX_NN_VAE_H

#include "nn/model.h"

#define VX_VAE_MAX_LEVELS 8
#define VX_VAE_LATENT 256
#define VX_VAE_CH 16

typedef struct {
  vx_tensor *w, *b, *dw, *db;
} vx_vae_param;

typedef struct {
  vx_context *ctx;
  int levels, N;
  int ch[VX_VAE_MAX_LEVELS];
  int sp[VX_VAE_MAX_LEVELS][3]; /* spatial size of level l (l = levels - 1: the features) */
  int half[3];                  /* after the stride-2 conv */
  float weight;
  /* parameters */
  vx_vae_param gn, conv, mu, sg, dense, c1, up0, gn0, head;
  vx_vae_param up[VX_VAE_MAX_LEVELS], gnu[VX_VAE_MAX_LEVELS];
  /* activations (arena) */
  vx_tensor *a0, *save0, *h, *mu_t, *sraw, *sigma, *eps, *z, *d, *c1o, *u0, *g0, *save_g0;
  vx_tensor *u[VX_VAE_MAX_LEVELS], *gu[VX_VAE_MAX_LEVELS], *save_u[VX_VAE_MAX_LEVELS];
  vx_tensor *rec, *g_a, *g_b, *g_mu, *g_sig, *g_z, *g_d, *g_h;
} vx_vae;

/* Declares the branch for features [N, ch[levels-1], sp[levels-1]] of a network with 'levels'
 * levels of ch[l] channels at sp[l] (sp[0] = the input's spatial size, in_channels channels).
 * Refuses odd deepest sizes (the x2 up could not return to them) naming the size. */
vx_status vx_vae_declare(vx_vae *v, vx_model *m, int levels, const int *ch, const int (*sp)[3]);
/* Forward and backward of the branch: feat the deepest features, x the (padded) input;
 * loss += its two terms; dfeat = their gradient (overwritten); parameter gradients added. */
vx_status vx_vae_train(vx_vae *v, const vx_tensor *feat, const vx_tensor *x, uint64_t seed, float *loss,
                       vx_tensor *dfeat);

#endif
