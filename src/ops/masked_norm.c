/* Masked-region normalisation (layers.md part 2): per sample, channel and class k, statistics
 * weighted by a soft mask m_k, and a per-class affine; the output mixes the classes by the mask.
 * Kernels in kernels/masked_norm.cl; the formulas of the backward are written at its top. */
#include <stdio.h>

#include "tensor.h"

#define MN_WG 64
#define MN_OPTS "-DWG=64"

/* Checks x, m, gamma (and beta when not NULL) against each other; *K receives the class count. */
static vx_status check_inputs(vx_context *ctx, const char *op, const vx_tensor *x, const vx_tensor *m,
                              const vx_tensor *gamma, const vx_tensor *beta, int *K) {
  if (!x || !m || !gamma) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: x, m and gamma are required", op);
  int C = x->shape[1];
  int ms[5] = {x->shape[0], -1, x->shape[2], x->shape[3], x->shape[4]};
  vx_status st = vx_check_shape(ctx, op, "mask m", m, ms);
  if (st != VX_OK) return st;
  *K = m->shape[1];
  if (gamma->shape[0] != *K) {
    char b[96];
    return vx_fail(ctx, VX_ERR_SHAPE,
                   "%s: the mask m has %d classes but gamma has %d (gamma %s; gamma and beta are [K, C, 1, 1, 1])",
                   op, *K, gamma->shape[0], vx_shape_str(gamma, b, sizeof b));
  }
  int gs[5] = {*K, C, 1, 1, 1};
  if ((st = vx_check_shape(ctx, op, "gamma", gamma, gs)) != VX_OK) return st;
  if (beta && (st = vx_check_shape(ctx, op, "beta", beta, gs)) != VX_OK) return st;
  return VX_OK;
}

static vx_status check_save(vx_context *ctx, const char *op, const vx_tensor *save, int N, int K, int C) {
  if (!save) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: save is required", op);
  size_t need = (size_t)N * K * C * 4;
  if (save->numel < need)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: save has %zu elements, expected at least %zu (4 per sample, class and channel)",
                   op, save->numel, need);
  return VX_OK;
}

vx_status vx_masked_norm_forward(vx_context *ctx, const vx_tensor *x, const vx_tensor *m, const vx_tensor *gamma,
                                 const vx_tensor *beta, float eps, vx_tensor *y, vx_tensor *save) {
  const char *op = "masked_norm_forward";
  int K = 0;
  if (!beta || !y) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: beta and y are required", op);
  vx_status st = check_inputs(ctx, op, x, m, gamma, beta, &K);
  if (st == VX_OK) st = vx_check_shape(ctx, op, "output y", y, x->shape);
  if (st != VX_OK) return st;
  int N = x->shape[0], C = x->shape[1];
  if ((st = check_save(ctx, op, save, N, K, C)) != VX_OK) return st;
  if (!(eps > 0.0f)) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: eps is %g, expected > 0", op, (double)eps);
  int S = (int)vx_spatial(x);
  size_t local = MN_WG, global = (size_t)N * K * C * MN_WG;
  vx_arg sargs[] = {VX_MEM(x->buf), VX_INT(x->offset), VX_MEM(m->buf), VX_INT(m->offset), VX_MEM(save->buf),
                    VX_INT(save->offset), VX_INT(K), VX_INT(C), VX_INT(S), VX_FLOAT(eps)};
  st = vx_launch(ctx, "masked_norm", MN_OPTS, "mnorm_stats", 1, &global, &local, sargs, VX_NARGS(sargs));
  if (st != VX_OK) return st;
  size_t g = x->numel;
  vx_arg aargs[] = {VX_MEM(x->buf),     VX_INT(x->offset),    VX_MEM(m->buf), VX_INT(m->offset),
                    VX_MEM(gamma->buf), VX_INT(gamma->offset), VX_MEM(beta->buf), VX_INT(beta->offset),
                    VX_MEM(save->buf),  VX_INT(save->offset), VX_MEM(y->buf), VX_INT(y->offset),
                    VX_INT(N),          VX_INT(K),            VX_INT(C),      VX_INT(S)};
  return vx_launch(ctx, "masked_norm", MN_OPTS, "mnorm_apply", 1, &g, NULL, aargs, VX_NARGS(aargs));
}

vx_status vx_masked_norm_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *m, const vx_tensor *dy,
                                  const vx_tensor *gamma, const vx_tensor *beta, const vx_tensor *save, float eps,
                                  vx_tensor *dx, vx_tensor *dgamma, vx_tensor *dbeta, vx_tensor *dm, int accumulate) {
  const char *op = "masked_norm_backward";
  int K = 0;
  vx_status st = check_inputs(ctx, op, x, m, gamma, beta, &K);
  if (st != VX_OK) return st;
  int N = x->shape[0], C = x->shape[1], S = (int)vx_spatial(x);
  if (!dx) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: dx is required", op);
  if (dm && !beta) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: the mask gradient dm needs beta", op);
  if ((st = vx_check_shape(ctx, op, "output gradient dy", dy, x->shape)) != VX_OK) return st;
  if ((st = vx_check_shape(ctx, op, "input gradient dx", dx, x->shape)) != VX_OK) return st;
  if (dm && (st = vx_check_shape(ctx, op, "mask gradient dm", dm, m->shape)) != VX_OK) return st;
  if ((dgamma == NULL) != (dbeta == NULL))
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: dgamma and dbeta must both be given or both be NULL", op);
  if (dgamma) {
    if ((st = vx_check_shape(ctx, op, "dgamma", dgamma, gamma->shape)) != VX_OK) return st;
    if ((st = vx_check_shape(ctx, op, "dbeta", dbeta, gamma->shape)) != VX_OK) return st;
  }
  if ((st = check_save(ctx, op, save, N, K, C)) != VX_OK) return st;
  if (!(eps > 0.0f)) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: eps is %g, expected > 0", op, (double)eps);
  cl_mem part;
  if ((st = vx_workspace(ctx, (size_t)N * K * C * 2 * sizeof(float), &part)) != VX_OK) return st;
  int acc = accumulate != 0;
  size_t local = MN_WG, global = (size_t)N * K * C * MN_WG;
  vx_arg bargs[] = {VX_MEM(x->buf),  VX_INT(x->offset),  VX_MEM(m->buf),    VX_INT(m->offset),
                    VX_MEM(dy->buf), VX_INT(dy->offset), VX_MEM(save->buf), VX_INT(save->offset),
                    VX_MEM(part),    VX_INT(K),          VX_INT(C),         VX_INT(S)};
  st = vx_launch(ctx, "masked_norm", MN_OPTS, "mnorm_backward_stats", 1, &global, &local, bargs, VX_NARGS(bargs));
  if (st != VX_OK) return st;
  size_t g = x->numel;
  vx_arg xargs[] = {VX_MEM(x->buf),     VX_INT(x->offset),     VX_MEM(m->buf),    VX_INT(m->offset),
                    VX_MEM(dy->buf),    VX_INT(dy->offset),    VX_MEM(gamma->buf), VX_INT(gamma->offset),
                    VX_MEM(save->buf),  VX_INT(save->offset),  VX_MEM(part),      VX_MEM(dx->buf),
                    VX_INT(dx->offset), VX_INT(N),             VX_INT(K),         VX_INT(C),
                    VX_INT(S),          VX_FLOAT(eps),         VX_INT(acc)};
  st = vx_launch(ctx, "masked_norm", MN_OPTS, "mnorm_backward_dx", 1, &g, NULL, xargs, VX_NARGS(xargs));
  if (st != VX_OK) return st;
  if (dm) {
    size_t gm = m->numel;
    vx_arg margs[] = {VX_MEM(x->buf),    VX_INT(x->offset),    VX_MEM(dy->buf),   VX_INT(dy->offset),
                      VX_MEM(gamma->buf), VX_INT(gamma->offset), VX_MEM(beta->buf), VX_INT(beta->offset),
                      VX_MEM(save->buf), VX_INT(save->offset), VX_MEM(part),      VX_MEM(dm->buf),
                      VX_INT(dm->offset), VX_INT(N),           VX_INT(K),         VX_INT(C),
                      VX_INT(S),         VX_FLOAT(eps),        VX_INT(acc)};
    st = vx_launch(ctx, "masked_norm", MN_OPTS, "mnorm_backward_dm", 1, &gm, NULL, margs, VX_NARGS(margs));
    if (st != VX_OK) return st;
  }
  if (!dgamma) return VX_OK;
  size_t gp = (size_t)K * C;
  vx_arg pargs[] = {VX_MEM(save->buf),   VX_INT(save->offset), VX_MEM(part),       VX_INT(N),
                    VX_INT(K),           VX_INT(C),            VX_MEM(dgamma->buf), VX_INT(dgamma->offset),
                    VX_MEM(dbeta->buf),  VX_INT(dbeta->offset), VX_INT(acc)};
  return vx_launch(ctx, "masked_norm", MN_OPTS, "mnorm_param_grad", 1, &gp, NULL, pargs, VX_NARGS(pargs));
}
