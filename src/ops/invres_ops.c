/* Elementwise ops of the invertible networks: the affine coupling's second half (forward,
 * inverse, backward) and softplus for the VAE's sigma. Internal (declared in nn/coupling.h);
 * kernels in kernels/invres.cl. */
#include <stdio.h>

#include "nn/coupling.h"

static vx_status need_numel(vx_context *ctx, const char *op, const char *name, const vx_tensor *t, size_t n) {
  if (!t) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: %s is required", op, name);
  if (t->numel != n) {
    char b[96];
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: %s has shape %s (%zu values), expected %zu values", op, name,
                   vx_shape_str(t, b, sizeof b), t->numel, n);
  }
  return VX_OK;
}

vx_status vx_affine_coupling_apply(vx_context *ctx, vx_tensor *x2, const vx_tensor *st, int inverse) {
  size_t n = x2 ? x2->numel : 0;
  vx_status st_ = need_numel(ctx, "affine_coupling", "x2", x2, n);
  if (st_ == VX_OK) st_ = need_numel(ctx, "affine_coupling", "st ([s; t])", st, 2 * n);
  if (st_ != VX_OK) return st_;
  vx_arg args[] = {VX_MEM(x2->buf), VX_INT(x2->offset), VX_MEM(st->buf), VX_INT(st->offset), VX_INT(n),
                   VX_INT(inverse != 0)};
  return vx_launch(ctx, "invres", "", "affine_coupling", 1, &n, NULL, args, VX_NARGS(args));
}

vx_status vx_affine_coupling_backward(vx_context *ctx, const vx_tensor *x2, const vx_tensor *st, vx_tensor *g,
                                      vx_tensor *gst) {
  size_t n = x2 ? x2->numel : 0;
  vx_status s = need_numel(ctx, "affine_coupling_backward", "x2", x2, n);
  if (s == VX_OK) s = need_numel(ctx, "affine_coupling_backward", "st", st, 2 * n);
  if (s == VX_OK) s = need_numel(ctx, "affine_coupling_backward", "g", g, n);
  if (s == VX_OK) s = need_numel(ctx, "affine_coupling_backward", "gst", gst, 2 * n);
  if (s != VX_OK) return s;
  vx_arg args[] = {VX_MEM(x2->buf), VX_INT(x2->offset), VX_MEM(st->buf), VX_INT(st->offset), VX_MEM(g->buf),
                   VX_INT(g->offset),  VX_MEM(gst->buf), VX_INT(gst->offset), VX_INT(n)};
  return vx_launch(ctx, "invres", "", "affine_coupling_backward", 1, &n, NULL, args, VX_NARGS(args));
}

vx_status vx_softplus_forward(vx_context *ctx, const vx_tensor *x, vx_tensor *y) {
  size_t n = x ? x->numel : 0;
  vx_status s = need_numel(ctx, "softplus_forward", "x", x, n);
  if (s == VX_OK) s = need_numel(ctx, "softplus_forward", "y", y, n);
  if (s != VX_OK) return s;
  vx_arg args[] = {VX_MEM(x->buf), VX_INT(x->offset), VX_MEM(y->buf), VX_INT(y->offset), VX_INT(n)};
  return vx_launch(ctx, "invres", "", "softplus_forward", 1, &n, NULL, args, VX_NARGS(args));
}

vx_status vx_softplus_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *dy, vx_tensor *dx,
                               int accumulate) {
  size_t n = x ? x->numel : 0;
  vx_status s = need_numel(ctx, "softplus_backward", "x", x, n);
  if (s == VX_OK) s = need_numel(ctx, "softplus_backward", "dy", dy, n);
  if (s == VX_OK) s = need_numel(ctx, "softplus_backward", "dx", dx, n);
  if (s != VX_OK) return s;
  vx_arg args[] = {VX_MEM(x->buf),  VX_INT(x->offset), VX_MEM(dy->buf), VX_INT(dy->offset),
                   VX_MEM(dx->buf), VX_INT(dx->offset), VX_INT(n),       VX_INT(accumulate != 0)};
  return vx_launch(ctx, "invres", "", "softplus_backward", 1, &n, NULL, args, VX_NARGS(args));
}
