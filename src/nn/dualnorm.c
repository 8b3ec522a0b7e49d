/* The DualNorm module: see nn/dualnorm.h for the formulas. The SPADE branch is three
 * convolutions with bias on the resized masks; the modulation is one elementwise kernel
 * (kernels/dualnorm.cl). */
#include <stdio.h>
#include <string.h>

#include "nn/dualnorm.h"
#include "tensor.h"

static void set_conv(vx_conv_params *cp, int flat) {
  vx_conv_params_init(cp, 1, 1);
  if (flat) cp->padding[0] = 0; /* 1x3x3: the depth axis of a 2D slice is not padded */
}

void vx_dualnorm_declare(vx_dualnorm *dn, vx_param_set *params, vx_param_set *state, const char *prefix, int C, int K,
                         int masked, int flat) {
  memset(dn, 0, sizeof *dn);
  snprintf(dn->name, sizeof dn->name, "%s", prefix);
  dn->C = C;
  dn->K = K;
  dn->hidden = C / 2 > 0 ? C / 2 : 1; /* the reference uses C/2 hidden channels */
  dn->masked = masked;
  dn->flat = flat;
  set_conv(&dn->cp, flat);
  char n[64];
  int kd = flat ? 1 : 3, taps = kd * 9;
  if (masked) {
    int s[5] = {K * C, 1, 1, 1, 1};
    snprintf(n, sizeof n, "%s.region_norm.weight", prefix);
    vx_params_declare(params, n, &dn->rg, &dn->drg, s, VX_INIT_ONE, 0, 0);
    snprintf(n, sizeof n, "%s.region_norm.bias", prefix);
    vx_params_declare(params, n, &dn->rb, &dn->drb, s, VX_INIT_ZERO, 0, 0);
    return;
  }
  int h = dn->hidden;
  int ws[5] = {h, K, kd, 3, 3}, hb[5] = {h, 1, 1, 1, 1};
  int wg[5] = {C, h, kd, 3, 3}, cb[5] = {C, 1, 1, 1, 1};
  snprintf(n, sizeof n, "%s.mlp_shared.weight", prefix);
  vx_params_declare(params, n, &dn->w_shared, &dn->dw_shared, ws, VX_INIT_KAIMING, K * taps, 0.0f);
  snprintf(n, sizeof n, "%s.mlp_shared.bias", prefix);
  vx_params_declare(params, n, &dn->b_shared, &dn->db_shared, hb, VX_INIT_ZERO, 0, 0);
  /* gain 1 over 8x the fan-in: the maps start small, so (1 + gamma) starts near 1 */
  snprintf(n, sizeof n, "%s.mlp_gamma.weight", prefix);
  vx_params_declare(params, n, &dn->w_gamma, &dn->dw_gamma, wg, VX_INIT_KAIMING, h * taps * 8, 1.0f);
  snprintf(n, sizeof n, "%s.mlp_gamma.bias", prefix);
  vx_params_declare(params, n, &dn->b_gamma, &dn->db_gamma, cb, VX_INIT_ZERO, 0, 0);
  snprintf(n, sizeof n, "%s.mlp_beta.weight", prefix);
  vx_params_declare(params, n, &dn->w_beta, &dn->dw_beta, wg, VX_INIT_KAIMING, h * taps * 8, 1.0f);
  snprintf(n, sizeof n, "%s.mlp_beta.bias", prefix);
  vx_params_declare(params, n, &dn->b_beta, &dn->db_beta, cb, VX_INIT_ZERO, 0, 0);
  snprintf(n, sizeof n, "%s.param_free_norm.running_mean", prefix);
  vx_params_declare(state, n, &dn->running_mean, NULL, cb, VX_INIT_ZERO, 0, 0);
  snprintf(n, sizeof n, "%s.param_free_norm.running_var", prefix);
  vx_params_declare(state, n, &dn->running_var, NULL, cb, VX_INIT_ONE, 0, 0);
}

size_t vx_dualnorm_param_count(const vx_dualnorm *dn) {
  size_t taps = dn->flat ? 9 : 27;
  if (dn->masked) return (size_t)2 * dn->K * dn->C;
  return (size_t)dn->hidden * dn->K * taps + dn->hidden + 2 * ((size_t)dn->C * dn->hidden * taps + dn->C);
}

void vx_dualnorm_declare_act(const vx_dualnorm *dn, vx_arena *arena, vx_dualnorm_act *a, const int xs[5]) {
  memset(a, 0, sizeof *a);
  int ms[5] = {xs[0], dn->K, xs[2], xs[3], xs[4]};
  vx_arena_declare(arena, &a->mr, ms);
  if (dn->masked) {
    int ss[5] = {1, 1, 1, 1, xs[0] * dn->K * dn->C * 4};
    vx_arena_declare(arena, &a->save, ss);
    return;
  }
  int hs[5] = {xs[0], dn->hidden, xs[2], xs[3], xs[4]}, ss[5] = {1, 1, 1, 1, 2 * dn->C};
  vx_arena_declare(arena, &a->xhat, xs);
  vx_arena_declare(arena, &a->save, ss);
  vx_arena_declare(arena, &a->h, hs);
  vx_arena_declare(arena, &a->gmap, xs);
  vx_arena_declare(arena, &a->bmap, xs);
  vx_arena_declare(arena, &a->dxhat, xs);
  vx_arena_declare(arena, &a->dgmap, xs);
  vx_arena_declare(arena, &a->dh, hs);
  vx_arena_declare(arena, &a->dhpre, hs);
}

/* A [K, C, 1, 1, 1] view of a flat per-class affine (a struct copy: no allocation). */
static vx_tensor kc_view(const vx_tensor *t, int K, int C) {
  vx_tensor v = *t;
  int s[5] = {K, C, 1, 1, 1};
  memcpy(v.shape, s, sizeof s);
  v.alloc_bytes = 0;
  return v;
}

static vx_status check_input(vx_context *ctx, const vx_dualnorm *dn, const vx_dualnorm_act *a, const vx_tensor *x,
                             const vx_tensor *m) {
  if (!x || !a || !a->mr) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "dualnorm %s: x and activations are required", dn->name);
  int xs[5] = {a->mr->shape[0], dn->C, a->mr->shape[2], a->mr->shape[3], a->mr->shape[4]};
  vx_status st = vx_check_shape(ctx, dn->name, "input x", x, xs);
  if (st != VX_OK || !m) return st;
  if (m->shape[0] != x->shape[0] || m->shape[1] != dn->K) {
    char b[96];
    return vx_fail(ctx, VX_ERR_SHAPE,
                   "dualnorm %s: the masks m %s have %d classes for a batch of %d, the layer expects %d classes "
                   "(masks [N, K, D, H, W], N = %d)",
                   dn->name, vx_shape_str(m, b, sizeof b), m->shape[1], m->shape[0], dn->K, x->shape[0]);
  }
  return VX_OK;
}

vx_status vx_dualnorm_forward(vx_context *ctx, const vx_dualnorm *dn, vx_dualnorm_act *a, const vx_tensor *x,
                              const vx_tensor *m, int training, vx_tensor *y) {
  if (!m) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "dualnorm %s: the masks m are required", dn->name);
  vx_status st = check_input(ctx, dn, a, x, m);
  if (st == VX_OK) st = vx_check_shape(ctx, dn->name, "output y", y, x->shape);
  if (st == VX_OK) st = vx_interpolate_forward(ctx, m, VX_INTERP_TRILINEAR, NULL, a->mr);
  if (st != VX_OK) return st;
  if (dn->masked) {
    vx_tensor g = kc_view(dn->rg, dn->K, dn->C), b = kc_view(dn->rb, dn->K, dn->C);
    return vx_masked_norm_forward(ctx, x, a->mr, &g, &b, VX_DUALNORM_EPS, y, a->save);
  }
  st = vx_batch_norm_forward(ctx, x, NULL, NULL, dn->running_mean, dn->running_var, training, VX_DUALNORM_MOMENTUM,
                             VX_DUALNORM_EPS, VX_ACT_NONE, 0.0f, a->xhat, a->save);
  if (st == VX_OK) st = vx_conv3d_forward(ctx, a->mr, dn->w_shared, dn->b_shared, &dn->cp, a->h);
  if (st == VX_OK) st = vx_activation_forward(ctx, VX_ACT_RELU, 0.0f, a->h, a->h);
  if (st == VX_OK) st = vx_conv3d_forward(ctx, a->h, dn->w_gamma, dn->b_gamma, &dn->cp, a->gmap);
  if (st == VX_OK) st = vx_conv3d_forward(ctx, a->h, dn->w_beta, dn->b_beta, &dn->cp, a->bmap);
  if (st != VX_OK) return st;
  size_t n = x->numel;
  vx_arg args[] = {VX_MEM(a->xhat->buf), VX_INT(a->xhat->offset), VX_MEM(a->gmap->buf), VX_INT(a->gmap->offset),
                   VX_MEM(a->bmap->buf), VX_INT(a->bmap->offset), VX_MEM(y->buf),       VX_INT(y->offset),
                   VX_INT(n)};
  return vx_launch(ctx, "dualnorm", "", "dn_modulate", 1, &n, NULL, args, VX_NARGS(args));
}

vx_status vx_dualnorm_backward(vx_context *ctx, const vx_dualnorm *dn, vx_dualnorm_act *a, const vx_tensor *x,
                               const vx_tensor *dy, int training, vx_tensor *dx, int accumulate) {
  vx_status st = check_input(ctx, dn, a, x, NULL);
  if (st == VX_OK) st = vx_check_shape(ctx, dn->name, "dy", dy, x->shape);
  if (st == VX_OK) st = vx_check_shape(ctx, dn->name, "dx", dx, x->shape);
  if (st != VX_OK) return st;
  if (dn->masked) {
    /* one accumulate flag covers dx and the affine: zero dx so the affine can always add */
    if (!accumulate && (st = vx_tensor_fill(dx, 0.0f)) != VX_OK) return st;
    vx_tensor g = kc_view(dn->rg, dn->K, dn->C), b = kc_view(dn->rb, dn->K, dn->C);
    vx_tensor dg = kc_view(dn->drg, dn->K, dn->C), db = kc_view(dn->drb, dn->K, dn->C);
    return vx_masked_norm_backward(ctx, x, a->mr, dy, &g, &b, a->save, VX_DUALNORM_EPS, dx, &dg, &db, NULL, 1);
  }
  size_t n = x->numel;
  vx_arg args[] = {VX_MEM(a->xhat->buf),  VX_INT(a->xhat->offset),  VX_MEM(a->gmap->buf), VX_INT(a->gmap->offset),
                   VX_MEM(dy->buf),       VX_INT(dy->offset),       VX_MEM(a->dxhat->buf), VX_INT(a->dxhat->offset),
                   VX_MEM(a->dgmap->buf), VX_INT(a->dgmap->offset), VX_INT(n)};
  st = vx_launch(ctx, "dualnorm", "", "dn_modulate_backward", 1, &n, NULL, args, VX_NARGS(args));
  /* beta's map has gradient dy itself */
  if (st == VX_OK) st = vx_conv3d_backward_weights(ctx, a->h, a->dgmap, &dn->cp, dn->dw_gamma, dn->db_gamma, 1);
  if (st == VX_OK) st = vx_conv3d_backward_weights(ctx, a->h, dy, &dn->cp, dn->dw_beta, dn->db_beta, 1);
  if (st == VX_OK) st = vx_conv3d_backward_data(ctx, a->dgmap, dn->w_gamma, &dn->cp, a->dh, 0);
  if (st == VX_OK) st = vx_conv3d_backward_data(ctx, dy, dn->w_beta, &dn->cp, a->dh, 1);
  if (st == VX_OK) st = vx_activation_backward(ctx, VX_ACT_RELU, 0.0f, a->h, a->dh, a->dhpre, 0);
  if (st == VX_OK) st = vx_conv3d_backward_weights(ctx, a->mr, a->dhpre, &dn->cp, dn->dw_shared, dn->db_shared, 1);
  /* the masks are constants (sg): no gradient to m */
  if (st == VX_OK)
    st = vx_batch_norm_backward(ctx, x, a->xhat, a->dxhat, NULL, a->save, training, VX_ACT_NONE, 0.0f, dx, NULL, NULL,
                                accumulate);
  return st;
}
