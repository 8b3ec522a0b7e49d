/* Elementwise add and multiply with b broadcast over a along channels (b of a's shape,
 * [N, C, 1, 1, 1], C values, or one value), scaling, and their backward. The gradient of b
 * sums over the broadcast dimensions with one work-group per element of b, in a fixed order:
 * deterministic, no atomics. */
#include <stdio.h>

#include "tensor.h"

#define BC_WG 64

/* How b broadcasts over a: 0 same shape, 1 [N, C, 1, 1, 1], 2 C values, 3 one value; -1 none. */
static int bcast_mode(const vx_tensor *a, const vx_tensor *b) {
  int same = 1;
  for (int i = 0; i < 5; i++) same &= a->shape[i] == b->shape[i];
  if (same) return 0;
  if (b->shape[0] == a->shape[0] && b->shape[1] == a->shape[1] && b->shape[2] == 1 && b->shape[3] == 1 &&
      b->shape[4] == 1)
    return 1;
  if (b->numel == (size_t)a->shape[1]) return 2;
  if (b->numel == 1) return 3;
  return -1;
}

static vx_status check_bcast(vx_context *ctx, const char *op, const char *an, const vx_tensor *a, const char *bn,
                             const vx_tensor *b, int *mode) {
  if (!a) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, an);
  if (!b) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, bn);
  *mode = bcast_mode(a, b);
  if (*mode < 0) {
    char sa[96], sb[96];
    return vx_fail(ctx, VX_ERR_SHAPE,
                   "%s: %s %s does not broadcast over %s %s (expected its shape, [N, C, 1, 1, 1], C values or one "
                   "value)", op, bn, vx_shape_str(b, sb, sizeof sb), an, vx_shape_str(a, sa, sizeof sa));
  }
  return VX_OK;
}

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

static vx_status bcast_forward(vx_context *ctx, const char *op, int mul, const vx_tensor *a, const vx_tensor *b,
                               vx_tensor *y) {
  int mode;
  vx_status st = check_bcast(ctx, op, "a", a, "b", b, &mode);
  if (st == VX_OK) st = check_same(ctx, op, "a", a, "y", y);
  if (st != VX_OK) return st;
  char opts[32];
  snprintf(opts, sizeof opts, "-DMODE=%d", mode);
  size_t g = a->numel;
  vx_arg args[] = {VX_MEM(a->buf), VX_INT(a->offset), VX_MEM(b->buf), VX_INT(b->offset), VX_MEM(y->buf),
                   VX_INT(y->offset), VX_INT(a->numel), VX_INT(a->shape[1]), VX_INT(vx_spatial(a)), VX_INT(mul)};
  return vx_launch(ctx, "broadcast", opts, "bcast_forward", 1, &g, NULL, args, VX_NARGS(args));
}

vx_status vx_add_broadcast(vx_context *ctx, const vx_tensor *a, const vx_tensor *b, vx_tensor *y) {
  return bcast_forward(ctx, "add_broadcast", 0, a, b, y);
}

vx_status vx_mul_broadcast(vx_context *ctx, const vx_tensor *a, const vx_tensor *b, vx_tensor *y) {
  return bcast_forward(ctx, "mul_broadcast", 1, a, b, y);
}

/* da (+)= dy (* b broadcast) over a's shape. */
static vx_status grad_a(vx_context *ctx, int mode, const vx_tensor *dy, const vx_tensor *b, vx_tensor *da, int acc) {
  char opts[32];
  snprintf(opts, sizeof opts, "-DMODE=%d", mode);
  size_t g = dy->numel;
  const vx_tensor *bb = b ? b : dy;
  vx_arg args[] = {VX_MEM(dy->buf), VX_INT(dy->offset), VX_MEM(bb->buf), VX_INT(bb->offset), VX_INT(b != NULL),
                   VX_MEM(da->buf), VX_INT(da->offset), VX_INT(dy->numel), VX_INT(dy->shape[1]),
                   VX_INT(vx_spatial(dy)), VX_INT(acc)};
  return vx_launch(ctx, "broadcast", opts, "bcast_backward_a", 1, &g, NULL, args, VX_NARGS(args));
}

/* db (+)= sum over the broadcast dimensions of dy (* a). */
static vx_status grad_b(vx_context *ctx, int mode, const vx_tensor *dy, const vx_tensor *a, vx_tensor *db, int acc) {
  if (mode == 0) {
    if (a) return grad_a(ctx, 0, dy, a, db, acc);
    return grad_a(ctx, 0, dy, NULL, db, acc);
  }
  char opts[48];
  snprintf(opts, sizeof opts, "-DMODE=%d -DWG=%d", mode, BC_WG);
  size_t local = BC_WG, global = db->numel * BC_WG;
  const vx_tensor *aa = a ? a : dy;
  vx_arg args[] = {VX_MEM(dy->buf), VX_INT(dy->offset), VX_MEM(aa->buf), VX_INT(aa->offset), VX_INT(a != NULL),
                   VX_MEM(db->buf), VX_INT(db->offset), VX_INT(dy->shape[0]), VX_INT(dy->shape[1]),
                   VX_INT(vx_spatial(dy)), VX_INT(acc)};
  return vx_launch(ctx, "broadcast", opts, "bcast_backward_b", 1, &global, &local, args, VX_NARGS(args));
}

vx_status vx_add_broadcast_backward(vx_context *ctx, const vx_tensor *dy, vx_tensor *da, vx_tensor *db,
                                    int accumulate) {
  const char *op = "add_broadcast_backward";
  int mode = 0;
  vx_status st = VX_OK;
  if (!dy) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: dy is NULL", op);
  if (da) st = check_same(ctx, op, "dy", dy, "da", da);
  if (st == VX_OK && db) st = check_bcast(ctx, op, "dy", dy, "db", db, &mode);
  if (st != VX_OK) return st;
  if (da) st = grad_a(ctx, 0, dy, NULL, da, accumulate != 0);
  if (st == VX_OK && db) st = grad_b(ctx, mode, dy, NULL, db, accumulate != 0);
  return st;
}

vx_status vx_mul_broadcast_backward(vx_context *ctx, const vx_tensor *a, const vx_tensor *b, const vx_tensor *dy,
                                    vx_tensor *da, vx_tensor *db, int accumulate) {
  const char *op = "mul_broadcast_backward";
  int mode;
  vx_status st = check_bcast(ctx, op, "a", a, "b", b, &mode);
  if (st == VX_OK) st = check_same(ctx, op, "a", a, "dy", dy);
  if (st == VX_OK && da) st = check_same(ctx, op, "a", a, "da", da);
  if (st == VX_OK && db) st = check_same(ctx, op, "b", b, "db", db);
  if (st != VX_OK) return st;
  if (da) st = grad_a(ctx, mode, dy, b, da, accumulate != 0);
  if (st == VX_OK && db) st = grad_b(ctx, mode, dy, a, db, accumulate != 0);
  return st;
}

vx_status vx_scale(vx_context *ctx, float s, const vx_tensor *x, vx_tensor *y) {
  vx_status st = check_same(ctx, "scale", "x", x, "y", y);
  if (st != VX_OK) return st;
  size_t g = x->numel;
  vx_arg args[] = {VX_FLOAT(s), VX_MEM(x->buf), VX_INT(x->offset), VX_MEM(y->buf), VX_INT(y->offset),
                   VX_INT(x->numel), VX_INT(0)};
  return vx_launch(ctx, "broadcast", "", "scale", 1, &g, NULL, args, VX_NARGS(args));
}

vx_status vx_scale_backward(vx_context *ctx, float s, const vx_tensor *dy, vx_tensor *dx, int accumulate) {
  vx_status st = check_same(ctx, "scale_backward", "dy", dy, "dx", dx);
  if (st != VX_OK) return st;
  size_t g = dy->numel;
  vx_arg args[] = {VX_FLOAT(s), VX_MEM(dy->buf), VX_INT(dy->offset), VX_MEM(dx->buf), VX_INT(dx->offset),
                   VX_INT(dy->numel), VX_INT(accumulate != 0)};
  return vx_launch(ctx, "broadcast", "", "scale", 1, &g, NULL, args, VX_NARGS(args));
}
