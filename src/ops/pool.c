/* 3D max and average pooling (PyTorch semantics, ceil_mode False, dilation 1), forward and
 * backward. Geometry is compiled into the kernels with -D; the backward is a gather over the
 * windows covering each input voxel (max: the window's argmax is recomputed, ties go to the
 * first element in d, h, w order). */
#include <stdio.h>

#include "tensor.h"

void vx_pool_params_init(vx_pool_params *p, int kernel, int stride, int pad) {
  for (int a = 0; a < 3; a++) {
    p->kernel[a] = kernel;
    p->stride[a] = stride > 0 ? stride : kernel;
    p->padding[a] = pad;
  }
  p->count_include_pad = 1;
}

int vx_pool_output_size(int in, int k, int stride, int pad) {
  if (in <= 0 || k <= 0 || stride <= 0 || pad < 0 || in + 2 * pad < k) return 0;
  return (in + 2 * pad - k) / stride + 1;
}

/* Checks p, x, y; writes the kernel options. */
static vx_status check_pool(vx_context *ctx, const char *op, const vx_pool_params *p, const vx_tensor *x,
                            const vx_tensor *y, const char *yname, int include_pad, char *opts, size_t len) {
  if (!p) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: params is NULL", op);
  if (!x || !y) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: x and %s are required", op, yname);
  int e[5] = {x->shape[0], x->shape[1], 0, 0, 0};
  for (int a = 0; a < 3; a++) {
    int k = p->kernel[a], s = p->stride[a], pad = p->padding[a];
    if (k < 1 || s < 1 || pad < 0)
      return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: kernel %d, stride %d, padding %d along axis %d (need kernel "
                     ">= 1, stride >= 1, padding >= 0)", op, k, s, pad, 2 + a);
    if (2 * pad > k)
      return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: padding %d along axis %d exceeds half the kernel %d", op, pad,
                     2 + a, k);
    e[2 + a] = vx_pool_output_size(x->shape[2 + a], k, s, pad);
    if (e[2 + a] <= 0) {
      char sx[96];
      return vx_fail(ctx, VX_ERR_SHAPE, "%s: x %s is smaller than the kernel %d along axis %d (padding %d)", op,
                     vx_shape_str(x, sx, sizeof sx), k, 2 + a, pad);
    }
  }
  vx_status st = vx_check_shape(ctx, op, yname, y, e);
  if (st != VX_OK) return st;
  snprintf(opts, len, "-DKD=%d -DKH=%d -DKW=%d -DSD=%d -DSH=%d -DSW=%d -DPD=%d -DPH=%d -DPW=%d -DINCLUDE_PAD=%d",
           p->kernel[0], p->kernel[1], p->kernel[2], p->stride[0], p->stride[1], p->stride[2], p->padding[0],
           p->padding[1], p->padding[2], include_pad != 0);
  return VX_OK;
}

static vx_status pool_forward(vx_context *ctx, const char *op, const char *kernel, const vx_tensor *x,
                              const vx_pool_params *p, vx_tensor *y, int include_pad) {
  char opts[256];
  vx_status st = check_pool(ctx, op, p, x, y, "y", include_pad, opts, sizeof opts);
  if (st != VX_OK) return st;
  size_t g[3] = {(size_t)y->shape[4], (size_t)y->shape[3], (size_t)y->shape[2] * y->shape[1] * y->shape[0]};
  vx_arg args[] = {VX_MEM(x->buf), VX_INT(x->offset), VX_MEM(y->buf), VX_INT(y->offset),
                   VX_INT(x->shape[0] * x->shape[1]), VX_INT(x->shape[2]), VX_INT(x->shape[3]), VX_INT(x->shape[4]),
                   VX_INT(y->shape[2]), VX_INT(y->shape[3]), VX_INT(y->shape[4])};
  return vx_launch(ctx, "pool", opts, kernel, 3, g, NULL, args, VX_NARGS(args));
}

static vx_status pool_backward(vx_context *ctx, const char *op, const vx_tensor *x, const vx_tensor *dy,
                               const vx_pool_params *p, vx_tensor *dx, int maxp, int accumulate) {
  char opts[256];
  vx_status st = check_pool(ctx, op, p, dx, dy, "dy", maxp ? 1 : p ? p->count_include_pad : 1, opts, sizeof opts);
  if (st == VX_OK && maxp) st = vx_check_shape(ctx, op, "x", x, dx ? dx->shape : NULL);
  if (st != VX_OK) return st;
  const vx_tensor *xx = maxp ? x : dy; /* average pooling reads no x */
  size_t g[3] = {(size_t)dx->shape[4], (size_t)dx->shape[3], (size_t)dx->shape[2] * dx->shape[1] * dx->shape[0]};
  vx_arg args[] = {VX_MEM(xx->buf), VX_INT(xx->offset), VX_MEM(dy->buf), VX_INT(dy->offset), VX_MEM(dx->buf),
                   VX_INT(dx->offset), VX_INT(dx->shape[0] * dx->shape[1]), VX_INT(dx->shape[2]),
                   VX_INT(dx->shape[3]), VX_INT(dx->shape[4]), VX_INT(dy->shape[2]), VX_INT(dy->shape[3]),
                   VX_INT(dy->shape[4]), VX_INT(maxp), VX_INT(accumulate != 0)};
  return vx_launch(ctx, "pool", opts, "pool_backward", 3, g, NULL, args, VX_NARGS(args));
}

vx_status vx_max_pool3d_forward(vx_context *ctx, const vx_tensor *x, const vx_pool_params *p, vx_tensor *y) {
  return pool_forward(ctx, "max_pool3d_forward", "max_pool_forward", x, p, y, 1);
}

vx_status vx_max_pool3d_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *dy, const vx_pool_params *p,
                                 vx_tensor *dx, int accumulate) {
  return pool_backward(ctx, "max_pool3d_backward", x, dy, p, dx, 1, accumulate);
}

vx_status vx_avg_pool3d_forward(vx_context *ctx, const vx_tensor *x, const vx_pool_params *p, vx_tensor *y) {
  return pool_forward(ctx, "avg_pool3d_forward", "avg_pool_forward", x, p, y, p ? p->count_include_pad : 1);
}

vx_status vx_avg_pool3d_backward(vx_context *ctx, const vx_tensor *dy, const vx_pool_params *p, vx_tensor *dx,
                                 int accumulate) {
  return pool_backward(ctx, "avg_pool3d_backward", NULL, dy, p, dx, 0, accumulate);
}
