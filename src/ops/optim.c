/* Optimisers: one kernel launch over the flat parameter buffer per step. */
#include <math.h>
#include <stdio.h>

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

/* ---------------------------------------------------------------- gradient clipping */
#define CLIP_WG 64
#define CLIP_GROUPS_MAX 256

vx_status vx_clip_grad_norm(vx_context *ctx, vx_tensor *grad, float max_norm, float *total_norm) {
  const char *op = "clip_grad_norm";
  if (!grad) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: grad is NULL", op);
  if (!(max_norm > 0.0f)) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: max_norm is %g, expected > 0", op, (double)max_norm);
  size_t n = grad->numel;
  size_t groups = (n + CLIP_WG - 1) / CLIP_WG;
  if (groups > CLIP_GROUPS_MAX) groups = CLIP_GROUPS_MAX;
  size_t chunk = (n + groups - 1) / groups;
  float part[CLIP_GROUPS_MAX];
  cl_mem buf;
  vx_status st = vx_workspace(ctx, groups * sizeof(float), &buf);
  if (st != VX_OK) return st;
  char opts[32];
  snprintf(opts, sizeof opts, "-DWG=%d", CLIP_WG);
  size_t local = CLIP_WG, global = groups * CLIP_WG;
  vx_arg args[] = {VX_MEM(grad->buf), VX_INT(grad->offset), VX_INT(n), VX_INT(chunk), VX_MEM(buf)};
  if ((st = vx_launch(ctx, "optim", opts, "sumsq_partials", 1, &global, &local, args, VX_NARGS(args))) != VX_OK)
    return st;
  cl_int err = clEnqueueReadBuffer(ctx->queue, buf, CL_TRUE, 0, groups * sizeof(float), part, 0, NULL, NULL);
  if (err != CL_SUCCESS) return vx_cl_fail(ctx, err, "reading gradient norm partial sums");
  double s = 0.0;
  for (size_t g = 0; g < groups; g++) s += part[g];
  double norm = sqrt(s);
  if (total_norm) *total_norm = (float)norm;
  if (!isfinite(norm)) return vx_fail(ctx, VX_ERR_NOT_FINITE, "%s: the gradient norm is %g; grad left as it was", op, norm);
  double coef = max_norm / (norm + 1e-6); /* as torch.nn.utils.clip_grad_norm_ */
  if (coef >= 1.0) return VX_OK;
  size_t g = n;
  vx_arg sargs[] = {VX_MEM(grad->buf), VX_INT(grad->offset), VX_INT(n), VX_FLOAT(coef)};
  return vx_launch(ctx, "optim", opts, "scale_inplace", 1, &g, NULL, sargs, VX_NARGS(sargs));
}

vx_status vx_clip_grad_value(vx_context *ctx, vx_tensor *grad, float clip) {
  const char *op = "clip_grad_value";
  if (!grad) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: grad is NULL", op);
  if (!(clip >= 0.0f)) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: clip is %g, expected >= 0", op, (double)clip);
  size_t g = grad->numel;
  vx_arg args[] = {VX_MEM(grad->buf), VX_INT(grad->offset), VX_INT(grad->numel), VX_FLOAT(clip)};
  return vx_launch(ctx, "optim", "-DWG=64", "clip_value", 1, &g, NULL, args, VX_NARGS(args));
}
