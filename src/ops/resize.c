/* Nearest and trilinear resizing (torch.nn.functional.interpolate, align_corners=False), by
 * output size or by scale factor, forward and backward. The backward is a gather over the
 * outputs that read each input voxel: deterministic, no atomics. */
#include <math.h>
#include <stdio.h>

#include "tensor.h"

/* Checks the pair and computes the per-axis step r (input per output). */
static vx_status check_resize(vx_context *ctx, const char *op, vx_interp_mode mode, const float scale[3],
                              const vx_tensor *small_or_in, const vx_tensor *out, const char *in_name,
                              const char *out_name, float r[3]) {
  if (mode != VX_INTERP_NEAREST && mode != VX_INTERP_TRILINEAR)
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: mode %d is neither nearest (0) nor trilinear (1)", op,
                   (int)mode);
  if (!small_or_in) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, in_name);
  if (!out) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, out_name);
  const vx_tensor *x = small_or_in;
  int e[5] = {x->shape[0], x->shape[1], -1, -1, -1};
  vx_status st = vx_check_shape(ctx, op, out_name, out, e);
  if (st != VX_OK) return st;
  for (int a = 0; a < 3; a++) {
    int in = x->shape[2 + a], o = out->shape[2 + a];
    if (scale && scale[a] > 0.0f) {
      /* floor(in * scale), allowing for the float rounding of scale (torch computes the size
       * from the double scale: 10 * 0.7 gives 7 there, 6 with the float 0.7f). */
      double exact = (double)in * (double)scale[a];
      int want = (int)floor(exact), lo = (int)floor(exact * (1.0 - 1e-6)), hi = (int)floor(exact * (1.0 + 1e-6));
      if (o != want && o != lo && o != hi) {
        char sx[96], so[96];
        return vx_fail(ctx, VX_ERR_SHAPE, "%s: %s %s scaled by %g along axis %d gives %d, but %s %s has %d", op,
                       in_name, vx_shape_str(x, sx, sizeof sx), (double)scale[a], 2 + a, want, out_name,
                       vx_shape_str(out, so, sizeof so), o);
      }
      r[a] = (float)(1.0 / (double)scale[a]);
    } else if (scale && !(scale[a] == 0.0f || scale[a] < 0.0f)) {
      return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: scale along axis %d is not a number", op, 2 + a);
    } else {
      r[a] = (float)in / (float)o;
    }
  }
  return VX_OK;
}

vx_status vx_interpolate_forward(vx_context *ctx, const vx_tensor *x, vx_interp_mode mode, const float scale[3],
                                 vx_tensor *y) {
  float r[3];
  vx_status st = check_resize(ctx, "interpolate_forward", mode, scale, x, y, "x", "y", r);
  if (st != VX_OK) return st;
  size_t g[3] = {(size_t)y->shape[4], (size_t)y->shape[3], (size_t)y->shape[2] * y->shape[1] * y->shape[0]};
  vx_arg args[] = {VX_MEM(x->buf), VX_INT(x->offset), VX_MEM(y->buf), VX_INT(y->offset),
                   VX_INT(x->shape[0] * x->shape[1]), VX_INT(x->shape[2]), VX_INT(x->shape[3]), VX_INT(x->shape[4]),
                   VX_INT(y->shape[2]), VX_INT(y->shape[3]), VX_INT(y->shape[4]), VX_FLOAT(r[0]), VX_FLOAT(r[1]),
                   VX_FLOAT(r[2])};
  const char *opts = mode == VX_INTERP_TRILINEAR ? "-DTRILINEAR=1" : "-DTRILINEAR=0";
  return vx_launch(ctx, "resize", opts, "resize_forward", 3, g, NULL, args, VX_NARGS(args));
}

/* One separable pass: src [A, Lo, B] -> dst [A, Li, B]. */
static vx_status backward_axis(vx_context *ctx, const char *opts, cl_mem src, size_t soff, cl_mem dst, size_t doff,
                               int A, int Li, int Lo, int B, float r, int acc) {
  size_t g[3] = {(size_t)B, (size_t)Li, (size_t)A};
  vx_arg args[] = {VX_MEM(src), VX_INT(soff), VX_MEM(dst), VX_INT(doff), VX_INT(A), VX_INT(Li), VX_INT(Lo),
                   VX_INT(B), VX_FLOAT(r), VX_INT(acc)};
  return vx_launch(ctx, "resize", opts, "resize_backward_axis", 3, g, NULL, args, VX_NARGS(args));
}

vx_status vx_interpolate_backward(vx_context *ctx, const vx_tensor *dy, vx_interp_mode mode, const float scale[3],
                                  vx_tensor *dx, int accumulate) {
  float r[3];
  vx_status st = check_resize(ctx, "interpolate_backward", mode, scale, dx, dy, "dx", "dy", r);
  if (st != VX_OK) return st;
  const char *opts = mode == VX_INTERP_TRILINEAR ? "-DTRILINEAR=1" : "-DTRILINEAR=0";
  /* Separable: W, then H, then D, through two intermediates in the workspace; the full 3-D
   * gather below when the workspace cannot hold them. */
  int NC = dx->shape[0] * dx->shape[1], D = dx->shape[2], H = dx->shape[3], W = dx->shape[4];
  int OD = dy->shape[2], OH = dy->shape[3], OW = dy->shape[4];
  size_t t1 = (size_t)NC * OD * OH * W, t2 = (size_t)NC * OD * H * W;
  cl_mem ws = NULL;
  if ((t1 + t2) * sizeof(float) <= ctx->workspace_limit && vx_workspace(ctx, (t1 + t2) * sizeof(float), &ws) == VX_OK) {
    st = backward_axis(ctx, opts, dy->buf, dy->offset, ws, 0, NC * OD * OH, W, OW, 1, r[2], 0);
    if (st == VX_OK) st = backward_axis(ctx, opts, ws, 0, ws, t1, NC * OD, H, OH, W, r[1], 0);
    if (st == VX_OK) st = backward_axis(ctx, opts, ws, t1, dx->buf, dx->offset, NC, D, OD, H * W, r[0], accumulate != 0);
    return st;
  }
  size_t g[3] = {(size_t)W, (size_t)H, (size_t)D * NC};
  vx_arg args[] = {VX_MEM(dy->buf), VX_INT(dy->offset), VX_MEM(dx->buf), VX_INT(dx->offset),
                   VX_INT(dx->shape[0] * dx->shape[1]), VX_INT(dx->shape[2]), VX_INT(dx->shape[3]),
                   VX_INT(dx->shape[4]), VX_INT(dy->shape[2]), VX_INT(dy->shape[3]), VX_INT(dy->shape[4]),
                   VX_FLOAT(r[0]), VX_FLOAT(r[1]), VX_FLOAT(r[2]), VX_INT(accumulate != 0)};
  return vx_launch(ctx, "resize", opts, "resize_backward", 3, g, NULL, args, VX_NARGS(args));
}
