/* Squeeze / unsqueeze: the 3D pixel unshuffle 2x2x2 of invertible networks and its exact
 * inverse. Channel order (PyTorch pixel_unshuffle generalised to 3D):
 *   coarse[n, c*8 + dz*4 + dy*2 + dx, z, y, x] = fine[n, c, 2z+dz, 2y+dy, 2x+dx].
 * The backward of each is the other. Kernel in kernels/squeeze.cl. */
#include <stdio.h>

#include "tensor.h"

/* fine [N, C, D, H, W] (all of D, H, W even) and coarse [N, 8C, D/2, H/2, W/2]. */
static vx_status check_pair(vx_context *ctx, const char *op, const char *fname, const vx_tensor *fine,
                            const char *cname, const vx_tensor *coarse) {
  if (!fine || !coarse) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: %s and %s are required", op, fname, cname);
  const int *f = fine->shape;
  if (f[2] % 2 || f[3] % 2 || f[4] % 2) {
    char b[96];
    return vx_fail(ctx, VX_ERR_SHAPE,
                   "%s: %s has shape %s; the 2x2x2 squeeze needs even D, H and W (pad the input to even sizes, "
                   "as the invertible networks pad to a multiple of 2^levels and crop back)",
                   op, fname, vx_shape_str(fine, b, sizeof b));
  }
  int cs[5] = {f[0], 8 * f[1], f[2] / 2, f[3] / 2, f[4] / 2};
  return vx_check_shape(ctx, op, cname, coarse, cs);
}

static vx_status launch(vx_context *ctx, const vx_tensor *src, vx_tensor *dst, const vx_tensor *coarse, int to_fine,
                        int accumulate) {
  size_t g = coarse->numel;
  vx_arg args[] = {VX_MEM(src->buf), VX_INT(src->offset), VX_MEM(dst->buf), VX_INT(dst->offset),
                   VX_INT(coarse->numel), VX_INT(coarse->shape[2]), VX_INT(coarse->shape[3]), VX_INT(coarse->shape[4]),
                   VX_INT(to_fine), VX_INT(accumulate != 0)};
  return vx_launch(ctx, "squeeze", "", "squeeze3d", 1, &g, NULL, args, VX_NARGS(args));
}

vx_status vx_squeeze3d_forward(vx_context *ctx, const vx_tensor *x, vx_tensor *y) {
  vx_status st = check_pair(ctx, "squeeze3d_forward", "input x", x, "output y", y);
  return st != VX_OK ? st : launch(ctx, x, y, y, 0, 0);
}

vx_status vx_squeeze3d_backward(vx_context *ctx, const vx_tensor *dy, vx_tensor *dx, int accumulate) {
  vx_status st = check_pair(ctx, "squeeze3d_backward", "input gradient dx", dx, "output gradient dy", dy);
  return st != VX_OK ? st : launch(ctx, dy, dx, dy, 1, accumulate);
}

vx_status vx_unsqueeze3d_forward(vx_context *ctx, const vx_tensor *x, vx_tensor *y) {
  vx_status st = check_pair(ctx, "unsqueeze3d_forward", "output y", y, "input x", x);
  return st != VX_OK ? st : launch(ctx, x, y, x, 1, 0);
}

vx_status vx_unsqueeze3d_backward(vx_context *ctx, const vx_tensor *dy, vx_tensor *dx, int accumulate) {
  vx_status st = check_pair(ctx, "unsqueeze3d_backward", "output gradient dy", dy, "input gradient dx", dx);
  return st != VX_OK ? st : launch(ctx, dy, dx, dx, 0, accumulate);
}
