/* Optimisers: one kernel launch over the flat parameter buffer per step. */
#include <math.h>

#include "tensor.h"

static vx_status check_same(vx_context *ctx, const char *op, const vx_tensor *p, const vx_tensor *a,
                            const char *aname) {
  if (!p || !a) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: a tensor argument is NULL", op);
  if (p->numel != a->numel)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: %s has %zu elements, parameters have %zu", op, aname, a->numel, p->numel);
  return VX_OK;
}

vx_status vx_adam_step(vx_context *ctx, vx_tensor *param, const vx_tensor *grad, vx_tensor *m, vx_tensor *v, int step,
                       float lr, float beta1, float beta2, float eps, float weight_decay, int decoupled) {
  const char *op = "adam_step";
  vx_status st = check_same(ctx, op, param, grad, "grad");
  if (st == VX_OK) st = check_same(ctx, op, param, m, "first moment");
  if (st == VX_OK) st = check_same(ctx, op, param, v, "second moment");
  if (st != VX_OK) return st;
  if (step < 1) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: step is %d, expected >= 1", op, step);
  if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1))
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: betas (%g, %g) must lie in [0, 1)", op, beta1, beta2);
  float bc1 = (float)(1.0 - pow(beta1, step)), bc2 = (float)(1.0 - pow(beta2, step));
  size_t g = param->numel;
  vx_arg args[] = {VX_MEM(param->buf), VX_INT(param->offset), VX_MEM(grad->buf), VX_INT(grad->offset),
                   VX_MEM(m->buf),     VX_INT(m->offset),     VX_MEM(v->buf),    VX_INT(v->offset),
                   VX_INT(param->numel), VX_FLOAT(lr), VX_FLOAT(beta1), VX_FLOAT(beta2), VX_FLOAT(eps),
                   VX_FLOAT(weight_decay), VX_INT(decoupled != 0), VX_FLOAT(bc1), VX_FLOAT(bc2)};
  return vx_launch(ctx, "optim", "", "adam_step", 1, &g, NULL, args, VX_NARGS(args));
}

vx_status vx_sgd_step(vx_context *ctx, vx_tensor *param, const vx_tensor *grad, vx_tensor *buf, float lr,
                      float momentum, int nesterov, float weight_decay) {
  const char *op = "sgd_step";
  vx_status st = check_same(ctx, op, param, grad, "grad");
  if (st == VX_OK) st = check_same(ctx, op, param, buf, "momentum buffer");
  if (st != VX_OK) return st;
  size_t g = param->numel;
  vx_arg args[] = {VX_MEM(param->buf), VX_INT(param->offset), VX_MEM(grad->buf), VX_INT(grad->offset),
                   VX_MEM(buf->buf),   VX_INT(buf->offset),   VX_INT(param->numel), VX_FLOAT(lr),
                   VX_FLOAT(momentum), VX_INT(nesterov != 0), VX_FLOAT(weight_decay)};
  return vx_launch(ctx, "optim", "", "sgd_step", 1, &g, NULL, args, VX_NARGS(args));
}
