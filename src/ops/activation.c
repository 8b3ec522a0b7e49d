/* Activations with parameters or curvature: PReLU (per-channel slope and its gradient), GELU
 * (erf form) and the softmax backward. The slope gradient is a per-slope work-group reduction
 * in a fixed order: no atomics, the same bits on every run. */
#include <stdio.h>

#include "tensor.h"

#define ACT_WG 64

static vx_status check_same(vx_context *ctx, const char *op, const char *an, const vx_tensor *a, const char *bn,
                            const vx_tensor *b) {
  if (!a) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, an);
  if (!b) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, bn);
  for (int i = 0; i < 5; i++)
    if (a->shape[i] != b->shape[i]) {
      char sa[96], sb[96];
      return vx_fail(ctx, VX_ERR_SHAPE, "%s: %s has shape %s but %s has shape %s", op, an,
                     vx_shape_str(a, sa, sizeof sa), bn, vx_shape_str(b, sb, sizeof sb));
    }
  return VX_OK;
}

static vx_status check_slope(vx_context *ctx, const char *op, const char *name, const vx_tensor *slope,
                             const vx_tensor *x) {
  if (!slope) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, name);
  if (slope->numel != 1 && slope->numel != (size_t)x->shape[1]) {
    char sx[96];
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: %s has %zu elements, expected 1 or %d (the channels of x %s)", op, name,
                   slope->numel, x->shape[1], vx_shape_str(x, sx, sizeof sx));
  }
  return VX_OK;
}

vx_status vx_prelu_forward(vx_context *ctx, const vx_tensor *x, const vx_tensor *slope, vx_tensor *y) {
  const char *op = "prelu_forward";
  vx_status st = check_same(ctx, op, "x", x, "y", y);
  if (st == VX_OK) st = check_slope(ctx, op, "slope", slope, x);
  if (st != VX_OK) return st;
  size_t g = x->numel;
  vx_arg args[] = {VX_MEM(x->buf), VX_INT(x->offset), VX_MEM(slope->buf), VX_INT(slope->offset),
                   VX_INT(slope->numel), VX_MEM(y->buf), VX_INT(y->offset), VX_INT(x->numel),
                   VX_INT(x->shape[1]), VX_INT(vx_spatial(x))};
  return vx_launch(ctx, "activation", "", "prelu_forward", 1, &g, NULL, args, VX_NARGS(args));
}

vx_status vx_prelu_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *slope, const vx_tensor *dy,
                            vx_tensor *dx, vx_tensor *dslope, int accumulate) {
  const char *op = "prelu_backward";
  vx_status st = check_same(ctx, op, "x", x, "dy", dy);
  if (st == VX_OK) st = check_slope(ctx, op, "slope", slope, x);
  if (st == VX_OK && dx) st = check_same(ctx, op, "x", x, "dx", dx);
  if (st == VX_OK && dslope && dslope->numel != slope->numel)
    st = vx_fail(ctx, VX_ERR_SHAPE, "%s: dslope has %zu elements, slope has %zu", op, dslope->numel, slope->numel);
  if (st != VX_OK) return st;
  int acc = accumulate != 0;
  if (dx) {
    size_t g = x->numel;
    vx_arg args[] = {VX_MEM(x->buf),  VX_INT(x->offset),  VX_MEM(slope->buf), VX_INT(slope->offset),
                     VX_INT(slope->numel), VX_MEM(dy->buf), VX_INT(dy->offset), VX_MEM(dx->buf),
                     VX_INT(dx->offset), VX_INT(x->numel), VX_INT(x->shape[1]), VX_INT(vx_spatial(x)), VX_INT(acc)};
    st = vx_launch(ctx, "activation", "", "prelu_backward_data", 1, &g, NULL, args, VX_NARGS(args));
    if (st != VX_OK) return st;
  }
  if (dslope) {
    char opts[32];
    snprintf(opts, sizeof opts, "-DWG=%d", ACT_WG);
    size_t local = ACT_WG, global = slope->numel * ACT_WG;
    vx_arg args[] = {VX_MEM(x->buf), VX_INT(x->offset), VX_MEM(dy->buf), VX_INT(dy->offset), VX_INT(x->shape[0]),
                     VX_INT(x->shape[1]), VX_INT(vx_spatial(x)), VX_INT(slope->numel), VX_MEM(dslope->buf),
                     VX_INT(dslope->offset), VX_INT(acc)};
    st = vx_launch(ctx, "activation", opts, "prelu_backward_slope", 1, &global, &local, args, VX_NARGS(args));
  }
  return st;
}

vx_status vx_gelu_forward(vx_context *ctx, const vx_tensor *x, vx_tensor *y) {
  vx_status st = check_same(ctx, "gelu_forward", "x", x, "y", y);
  if (st != VX_OK) return st;
  size_t g = x->numel;
  vx_arg args[] = {VX_MEM(x->buf), VX_INT(x->offset), VX_MEM(y->buf), VX_INT(y->offset), VX_INT(x->numel)};
  return vx_launch(ctx, "activation", "", "gelu_forward", 1, &g, NULL, args, VX_NARGS(args));
}

vx_status vx_gelu_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *dy, vx_tensor *dx, int accumulate) {
  const char *op = "gelu_backward";
  vx_status st = check_same(ctx, op, "x", x, "dy", dy);
  if (st == VX_OK) st = check_same(ctx, op, "x", x, "dx", dx);
  if (st != VX_OK) return st;
  size_t g = x->numel;
  vx_arg args[] = {VX_MEM(x->buf), VX_INT(x->offset), VX_MEM(dy->buf), VX_INT(dy->offset), VX_MEM(dx->buf),
                   VX_INT(dx->offset), VX_INT(x->numel), VX_INT(accumulate != 0)};
  return vx_launch(ctx, "activation", "", "gelu_backward", 1, &g, NULL, args, VX_NARGS(args));
}

vx_status vx_softmax_backward(vx_context *ctx, const vx_tensor *y, const vx_tensor *dy, vx_tensor *dx,
                              int accumulate) {
  const char *op = "softmax_backward";
  vx_status st = check_same(ctx, op, "y", y, "dy", dy);
  if (st == VX_OK) st = check_same(ctx, op, "y", y, "dx", dx);
  if (st != VX_OK) return st;
  size_t S = vx_spatial(y), g = (size_t)y->shape[0] * S;
  vx_arg args[] = {VX_MEM(y->buf), VX_INT(y->offset), VX_MEM(dy->buf), VX_INT(dy->offset), VX_MEM(dx->buf),
                   VX_INT(dx->offset), VX_INT(y->shape[0]), VX_INT(y->shape[1]), VX_INT(S), VX_INT(accumulate != 0)};
  return vx_launch(ctx, "activation", "", "softmax_backward", 1, &g, NULL, args, VX_NARGS(args));
}
