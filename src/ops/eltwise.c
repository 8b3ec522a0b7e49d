/* Elementwise ops: activations, axpy, channel concat and its backward, softmax. */
#include <stdio.h>

#include "tensor.h"

static vx_status same_numel(vx_context *ctx, const char *op, const vx_tensor *a, const vx_tensor *b) {
  if (!a || !b) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: a tensor argument is NULL", op);
  if (a->numel != b->numel) {
    char sa[96], sb[96];
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: shapes %s and %s differ", op, vx_shape_str(a, sa, sizeof sa),
                   vx_shape_str(b, sb, sizeof sb));
  }
  return VX_OK;
}

static const char *act_options(vx_activation act) {
  return act == VX_ACT_RELU ? "-DACT=1" : act == VX_ACT_LEAKY_RELU ? "-DACT=2" : "-DACT=0";
}

vx_status vx_activation_forward(vx_context *ctx, vx_activation act, float slope, const vx_tensor *x, vx_tensor *y) {
  vx_status st = same_numel(ctx, "activation_forward", x, y);
  if (st != VX_OK) return st;
  size_t g = x->numel;
  vx_arg args[] = {VX_MEM(x->buf), VX_INT(x->offset), VX_MEM(y->buf), VX_INT(y->offset), VX_INT(x->numel),
                   VX_FLOAT(slope)};
  return vx_launch(ctx, "eltwise", act_options(act), "act_forward", 1, &g, NULL, args, VX_NARGS(args));
}

vx_status vx_activation_backward(vx_context *ctx, vx_activation act, float slope, const vx_tensor *y,
                                 const vx_tensor *dy, vx_tensor *dx, int accumulate) {
  vx_status st = same_numel(ctx, "activation_backward", y, dy);
  if (st == VX_OK) st = same_numel(ctx, "activation_backward", dy, dx);
  if (st != VX_OK) return st;
  size_t g = y->numel;
  vx_arg args[] = {VX_MEM(y->buf),  VX_INT(y->offset), VX_MEM(dy->buf),  VX_INT(dy->offset), VX_MEM(dx->buf),
                   VX_INT(dx->offset), VX_INT(y->numel), VX_FLOAT(slope), VX_INT(accumulate != 0)};
  return vx_launch(ctx, "eltwise", act_options(act), "act_backward", 1, &g, NULL, args, VX_NARGS(args));
}

vx_status vx_axpy(vx_context *ctx, float a, const vx_tensor *x, vx_tensor *y) {
  vx_status st = same_numel(ctx, "axpy", x, y);
  if (st != VX_OK) return st;
  size_t g = x->numel;
  vx_arg args[] = {VX_FLOAT(a), VX_MEM(x->buf), VX_INT(x->offset), VX_MEM(y->buf), VX_INT(y->offset),
                   VX_INT(x->numel)};
  return vx_launch(ctx, "eltwise", "", "axpy", 1, &g, NULL, args, VX_NARGS(args));
}

/* Moves 'small' in or out of channels [c0, c0 + Cs) of 'big'. */
static vx_status copy_channels(vx_context *ctx, const vx_tensor *big, int c0, const vx_tensor *small, int to_big,
                               int accumulate) {
  size_t S = vx_spatial(big);
  size_t g = small->numel;
  vx_arg args[] = {VX_MEM(big->buf),   VX_INT(big->offset), VX_INT(big->shape[1]), VX_INT(c0),
                   VX_MEM(small->buf), VX_INT(small->offset), VX_INT(small->shape[1]), VX_INT(S),
                   VX_INT(small->shape[0]), VX_INT(to_big), VX_INT(accumulate != 0)};
  return vx_launch(ctx, "eltwise", "", "copy_channels", 1, &g, NULL, args, VX_NARGS(args));
}

static vx_status check_concat(vx_context *ctx, const char *op, const vx_tensor *a, const vx_tensor *b,
                              const vx_tensor *y) {
  if (!y) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: the concatenated tensor is NULL", op);
  int ca = a ? a->shape[1] : -1, cb = b ? b->shape[1] : -1;
  if (a) {
    int e[5] = {y->shape[0], -1, y->shape[2], y->shape[3], y->shape[4]};
    vx_status st = vx_check_shape(ctx, op, "first part", a, e);
    if (st != VX_OK) return st;
  }
  if (b) {
    int e[5] = {y->shape[0], -1, y->shape[2], y->shape[3], y->shape[4]};
    vx_status st = vx_check_shape(ctx, op, "second part", b, e);
    if (st != VX_OK) return st;
  }
  if (a && b && ca + cb != y->shape[1])
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: %d + %d channels do not make the %d of the concatenation", op, ca, cb,
                   y->shape[1]);
  if ((a && ca > y->shape[1]) || (b && cb > y->shape[1]))
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: a part has more channels than the concatenation (%d)", op, y->shape[1]);
  return VX_OK;
}

vx_status vx_concat_channels(vx_context *ctx, const vx_tensor *a, const vx_tensor *b, vx_tensor *y) {
  if (!a || !b) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "concat_channels: an input is NULL");
  vx_status st = check_concat(ctx, "concat_channels", a, b, y);
  if (st == VX_OK) st = copy_channels(ctx, y, 0, a, 1, 0);
  if (st == VX_OK) st = copy_channels(ctx, y, a->shape[1], b, 1, 0);
  return st;
}

vx_status vx_concat_channels_backward(vx_context *ctx, const vx_tensor *dy, vx_tensor *da, vx_tensor *db,
                                      int accumulate) {
  vx_status st = check_concat(ctx, "concat_channels_backward", da, db, dy);
  if (st != VX_OK) return st;
  int ca = da ? da->shape[1] : dy->shape[1] - (db ? db->shape[1] : 0);
  if (da) st = copy_channels(ctx, dy, 0, da, 0, accumulate);
  if (st == VX_OK && db) st = copy_channels(ctx, dy, ca, db, 0, accumulate);
  return st;
}

vx_status vx_softmax_forward(vx_context *ctx, const vx_tensor *x, vx_tensor *y) {
  vx_status st = same_numel(ctx, "softmax_forward", x, y);
  if (st != VX_OK) return st;
  size_t S = vx_spatial(x), g = (size_t)x->shape[0] * S;
  vx_arg args[] = {VX_MEM(x->buf), VX_INT(x->offset), VX_MEM(y->buf), VX_INT(y->offset),
                   VX_INT(x->shape[0]), VX_INT(x->shape[1]), VX_INT(S)};
  return vx_launch(ctx, "eltwise", "", "softmax_channels", 1, &g, NULL, args, VX_NARGS(args));
}
