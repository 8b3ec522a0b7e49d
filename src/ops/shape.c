/* Shape ops, forward and backward: constant padding, crop (a box of a tensor), channel split.
 * All are box copies between a big and a small tensor (kernels/shape.cl), each output written
 * by exactly one work-item. */
#include <stdio.h>

#include "tensor.h"

static vx_status gather(vx_context *ctx, const vx_tensor *big, const int start[5], vx_tensor *small, int acc) {
  size_t g = small->numel;
  vx_arg args[] = {VX_MEM(big->buf),   VX_INT(big->offset),  VX_INT(big->shape[1]), VX_INT(big->shape[2]),
                   VX_INT(big->shape[3]), VX_INT(big->shape[4]), VX_MEM(small->buf), VX_INT(small->offset),
                   VX_INT(small->shape[0]), VX_INT(small->shape[1]), VX_INT(small->shape[2]),
                   VX_INT(small->shape[3]), VX_INT(small->shape[4]), VX_INT(start[0]), VX_INT(start[1]),
                   VX_INT(start[2]), VX_INT(start[3]), VX_INT(start[4]), VX_INT(acc)};
  return vx_launch(ctx, "shape", "", "box_gather", 1, &g, NULL, args, VX_NARGS(args));
}

static vx_status place(vx_context *ctx, vx_tensor *big, const int start[5], const vx_tensor *small, float value,
                       int fill, int acc) {
  size_t g = big->numel;
  vx_arg args[] = {VX_MEM(big->buf),   VX_INT(big->offset),   VX_INT(big->shape[0]), VX_INT(big->shape[1]),
                   VX_INT(big->shape[2]), VX_INT(big->shape[3]), VX_INT(big->shape[4]), VX_MEM(small->buf),
                   VX_INT(small->offset), VX_INT(small->shape[1]), VX_INT(small->shape[2]),
                   VX_INT(small->shape[3]), VX_INT(small->shape[4]), VX_INT(small->shape[0]), VX_INT(start[0]),
                   VX_INT(start[1]), VX_INT(start[2]), VX_INT(start[3]), VX_INT(start[4]), VX_FLOAT(value),
                   VX_INT(fill), VX_INT(acc)};
  return vx_launch(ctx, "shape", "", "box_place", 1, &g, NULL, args, VX_NARGS(args));
}

/* The box [start, start + small's shape) must lie inside big. */
static vx_status check_box(vx_context *ctx, const char *op, const char *bn, const vx_tensor *big, const char *sn,
                           const vx_tensor *small, const int start[5]) {
  if (!big) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, bn);
  if (!small) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, sn);
  if (!start) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: start is NULL", op);
  for (int a = 0; a < 5; a++)
    if (start[a] < 0 || start[a] + small->shape[a] > big->shape[a]) {
      char sb[96], ss[96];
      return vx_fail(ctx, VX_ERR_SHAPE, "%s: a box of %s %s at start %d along axis %d does not fit in %s %s", op, sn,
                     vx_shape_str(small, ss, sizeof ss), start[a], a, bn, vx_shape_str(big, sb, sizeof sb));
    }
  return VX_OK;
}

static vx_status check_pad(vx_context *ctx, const char *op, const vx_tensor *x, const int before[3],
                           const int after[3], const vx_tensor *y, const char *xn, const char *yn, int start[5]) {
  if (!x || !y) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: %s and %s are required", op, xn, yn);
  if (!before || !after) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: pad_before and pad_after are required", op);
  int e[5] = {x->shape[0], x->shape[1], 0, 0, 0};
  for (int a = 0; a < 3; a++) {
    if (before[a] < 0 || after[a] < 0)
      return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: padding %d/%d along axis %d is negative (use crop)", op,
                     before[a], after[a], 2 + a);
    e[2 + a] = x->shape[2 + a] + before[a] + after[a];
  }
  start[0] = start[1] = 0;
  for (int a = 0; a < 3; a++) start[2 + a] = before[a];
  return vx_check_shape(ctx, op, yn, y, e);
}

vx_status vx_pad_forward(vx_context *ctx, const vx_tensor *x, const int pad_before[3], const int pad_after[3],
                         float value, vx_tensor *y) {
  int start[5];
  vx_status st = check_pad(ctx, "pad_forward", x, pad_before, pad_after, y, "x", "y", start);
  if (st != VX_OK) return st;
  return place(ctx, y, start, x, value, 1, 0);
}

vx_status vx_pad_backward(vx_context *ctx, const vx_tensor *dy, const int pad_before[3], const int pad_after[3],
                          vx_tensor *dx, int accumulate) {
  int start[5];
  vx_status st = check_pad(ctx, "pad_backward", dx, pad_before, pad_after, dy, "dx", "dy", start);
  if (st != VX_OK) return st;
  return gather(ctx, dy, start, dx, accumulate != 0);
}

vx_status vx_crop_forward(vx_context *ctx, const vx_tensor *x, const int start[5], vx_tensor *y) {
  vx_status st = check_box(ctx, "crop_forward", "x", x, "y", y, start);
  if (st != VX_OK) return st;
  return gather(ctx, x, start, y, 0);
}

vx_status vx_crop_backward(vx_context *ctx, const vx_tensor *dy, const int start[5], vx_tensor *dx, int accumulate) {
  vx_status st = check_box(ctx, "crop_backward", "dx", dx, "dy", dy, start);
  if (st != VX_OK) return st;
  return place(ctx, dx, start, dy, 0.0f, 1, accumulate != 0);
}

static vx_status check_split(vx_context *ctx, const char *op, const vx_tensor *x, const vx_tensor *a,
                             const vx_tensor *b, const char *xn, const char *an, const char *bn) {
  if (!x) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, xn);
  if (!a || !b) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: %s and %s are required", op, an, bn);
  int e[5] = {x->shape[0], -1, x->shape[2], x->shape[3], x->shape[4]};
  vx_status st = vx_check_shape(ctx, op, an, a, e);
  if (st == VX_OK) st = vx_check_shape(ctx, op, bn, b, e);
  if (st == VX_OK && a->shape[1] + b->shape[1] != x->shape[1])
    st = vx_fail(ctx, VX_ERR_SHAPE, "%s: %s's %d + %s's %d channels do not make the %d of %s", op, an, a->shape[1], bn,
                 b->shape[1], x->shape[1], xn);
  return st;
}

vx_status vx_split_channels(vx_context *ctx, const vx_tensor *x, vx_tensor *a, vx_tensor *b) {
  vx_status st = check_split(ctx, "split_channels", x, a, b, "x", "a", "b");
  if (st != VX_OK) return st;
  int s0[5] = {0, 0, 0, 0, 0}, s1[5] = {0, a->shape[1], 0, 0, 0};
  st = gather(ctx, x, s0, a, 0);
  if (st == VX_OK) st = gather(ctx, x, s1, b, 0);
  return st;
}

vx_status vx_split_channels_backward(vx_context *ctx, const vx_tensor *da, const vx_tensor *db, vx_tensor *dx,
                                     int accumulate) {
  vx_status st = check_split(ctx, "split_channels_backward", dx, da, db, "dx", "da", "db");
  if (st != VX_OK) return st;
  int s0[5] = {0, 0, 0, 0, 0}, s1[5] = {0, da->shape[1], 0, 0, 0};
  /* The two boxes tile dx: placing both without fill writes every element once. */
  st = place(ctx, dx, s0, da, 0.0f, 0, accumulate != 0);
  if (st == VX_OK) st = place(ctx, dx, s1, db, 0.0f, 0, accumulate != 0);
  return st;
}
