/* Normalisation layers: instance norm, group norm and batch norm share one scheme (kernels/
 * norm.cl); channel layer norm is in norm_layer.c.
 *
 * Forward: (1) many work-items each reduce a chunk of a statistics row to (mean, sum of squared
 * deviations); (2) one work-item per row combines its chunks in a fixed order into save =
 * (mean, 1/std), batch norm also updating the running statistics; (3) a scale and shift per
 * (n, c); (4) one elementwise pass with the activation fused. Backward: chunk partials of
 * sum dz and sum dz xhat, per-(n, c) sums, per-(n, c) coefficients, one elementwise pass, and
 * the parameter gradients from the per-(n, c) sums. Fixed reduction orders, no atomics: results
 * repeat bitwise. Scratch lives in the context's workspace. */
#include <stdio.h>

#include "norm_internal.h"

/* Chunk length of the reductions: long rows get big chunks (few partials, streaming loads),
 * short rows small ones (enough work-items). Three values keep the number of builds small. */
int vx_norm_chunk(size_t len) { return len <= 4096 ? 64 : len <= 65536 ? 512 : 4096; }

static void options(char *buf, size_t len, int chunk, int affine, vx_activation act, int train) {
  snprintf(buf, len, "-DCHUNK=%d -DAFFINE=%d -DACT=%d -DTRAIN=%d", chunk, affine, (int)act, train);
}

static size_t cdiv(size_t a, size_t b) { return (a + b - 1) / b; }

vx_status vx_norm_check_affine(vx_context *ctx, const char *op, const vx_tensor *gamma, const vx_tensor *beta, int C) {
  if ((gamma == NULL) != (beta == NULL))
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: gamma and beta must both be given or both be NULL", op);
  if (gamma && (gamma->numel != (size_t)C || beta->numel != (size_t)C))
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: gamma/beta have %zu/%zu elements, expected %d (one per channel)", op,
                   gamma->numel, beta->numel, C);
  return VX_OK;
}

vx_status vx_norm_check_backward(vx_context *ctx, const char *op, const vx_tensor *x, const vx_tensor *y,
                                 const vx_tensor *dy, const vx_tensor *gamma, vx_tensor *dx, vx_tensor *dgamma,
                                 vx_tensor *dbeta) {
  vx_status st = VX_OK;
  if (y) st = vx_check_shape(ctx, op, "output", y, x->shape);
  if (st == VX_OK) st = vx_check_shape(ctx, op, "output gradient", dy, x->shape);
  if (st == VX_OK) st = vx_check_shape(ctx, op, "input gradient", dx, x->shape);
  if (st != VX_OK) return st;
  int C = x->shape[1];
  if (gamma && gamma->numel != (size_t)C)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: gamma has %zu elements, expected %d (one per channel)", op, gamma->numel,
                   C);
  if ((dgamma == NULL) != (dbeta == NULL) || (dgamma && (dgamma->numel != (size_t)C || dbeta->numel != (size_t)C)))
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: dgamma and dbeta must both hold %d elements (or both be NULL)", op, C);
  return VX_OK;
}

/* The statistics layout of one op: rows of nseg segments of L floats (see norm.cl), and how
 * (n, c) maps to its row: n * sN + c / cpg. */
typedef struct {
  int rows, rowstride, segstride, nseg, L;
  int cpg, sN;
} stats_layout;

static stats_layout group_layout(const vx_tensor *x, int groups) {
  int C = x->shape[1], cpg = C / groups, S = (int)vx_spatial(x);
  return (stats_layout){x->shape[0] * groups, cpg * S, 0, 1, cpg * S, cpg, groups};
}

static stats_layout batch_layout(const vx_tensor *x) {
  int C = x->shape[1], S = (int)vx_spatial(x);
  return (stats_layout){C, S, C * S, x->shape[0], S, 1, 0};
}

/* Statistics into save (and running statistics when rmean != NULL), then y = act(a x + b). */
static vx_status norm_forward(vx_context *ctx, const stats_layout *lay, const vx_tensor *x, const vx_tensor *gamma,
                              const vx_tensor *beta, float eps, vx_activation act, float slope, vx_tensor *y,
                              vx_tensor *save, int batch_stats, vx_tensor *rmean, vx_tensor *rvar, float momentum) {
  int N = x->shape[0], C = x->shape[1], S = (int)vx_spatial(x), NC = N * C;
  int chunk = vx_norm_chunk((size_t)lay->L), cps = (int)cdiv((size_t)lay->L, (size_t)chunk);
  size_t nparts = (size_t)lay->rows * lay->nseg * cps;
  size_t part_floats = batch_stats ? 2 * nparts : 0;
  cl_mem ws;
  vx_status st = vx_workspace(ctx, (part_floats + 2 * (size_t)NC) * sizeof(float), &ws);
  if (st != VX_OK) return st;
  char opts[128];
  options(opts, sizeof opts, chunk, gamma != NULL, act, batch_stats);
  if (batch_stats) {
    size_t g1 = nparts;
    vx_arg a1[] = {VX_MEM(x->buf),     VX_INT(x->offset), VX_INT(lay->rowstride), VX_INT(lay->segstride),
                   VX_INT(lay->nseg),  VX_INT(lay->L),    VX_INT(cps),            VX_INT(nparts),
                   VX_MEM(ws),         VX_INT(0)};
    if ((st = vx_launch(ctx, "norm", opts, "stats_partial", 1, &g1, NULL, a1, VX_NARGS(a1))) != VX_OK) return st;
    size_t g2 = (size_t)lay->rows;
    cl_mem rm = rmean ? rmean->buf : ws, rv = rvar ? rvar->buf : ws;
    vx_arg a2[] = {VX_MEM(ws),        VX_INT(0),        VX_INT(lay->nseg * cps), VX_INT(cps),
                   VX_INT(lay->L),    VX_INT(lay->rows), VX_MEM(save->buf),      VX_INT(save->offset),
                   VX_FLOAT(eps),     VX_INT(rmean != NULL), VX_MEM(rm), VX_INT(rmean ? rmean->offset : 0),
                   VX_MEM(rv),        VX_INT(rvar ? rvar->offset : 0), VX_FLOAT(momentum)};
    if ((st = vx_launch(ctx, "norm", opts, "stats_combine", 1, &g2, NULL, a2, VX_NARGS(a2))) != VX_OK) return st;
  } else { /* batch norm with running statistics */
    size_t g2 = (size_t)C;
    vx_arg a2[] = {VX_MEM(rmean->buf), VX_INT(rmean->offset), VX_MEM(rvar->buf), VX_INT(rvar->offset),
                   VX_INT(C),          VX_FLOAT(eps),         VX_MEM(save->buf), VX_INT(save->offset)};
    if ((st = vx_launch(ctx, "norm", opts, "stats_running", 1, &g2, NULL, a2, VX_NARGS(a2))) != VX_OK) return st;
  }
  int coff = (int)part_floats;
  size_t g3 = (size_t)NC;
  cl_mem gb = gamma ? gamma->buf : x->buf, bb = beta ? beta->buf : x->buf; /* unused when !AFFINE */
  vx_arg a3[] = {VX_MEM(save->buf), VX_INT(save->offset), VX_MEM(gb),   VX_INT(gamma ? gamma->offset : 0),
                 VX_MEM(bb),        VX_INT(beta ? beta->offset : 0), VX_INT(C), VX_INT(lay->cpg),
                 VX_INT(lay->sN),   VX_INT(NC),           VX_MEM(ws),   VX_INT(coff)};
  if ((st = vx_launch(ctx, "norm", opts, "forward_coef", 1, &g3, NULL, a3, VX_NARGS(a3))) != VX_OK) return st;
  size_t g4[2] = {((size_t)S + 15) / 16, (size_t)NC}; /* 16 floats per work-item */
  vx_arg a4[] = {VX_MEM(x->buf), VX_INT(x->offset), VX_MEM(ws), VX_INT(coff), VX_MEM(y->buf), VX_INT(y->offset),
                 VX_INT(S),      VX_FLOAT(slope)};
  return vx_launch(ctx, "norm", opts, "forward_apply", 2, g4, NULL, a4, VX_NARGS(a4));
}

vx_status vx_norm_param_grad(vx_context *ctx, const char *opts, cl_mem sums, int sumoff, int N, int C,
                             vx_tensor *dgamma, vx_tensor *dbeta, int accumulate) {
  size_t g = (size_t)C;
  vx_arg a[] = {VX_MEM(sums),        VX_INT(sumoff),         VX_INT(N),          VX_INT(C),
                VX_MEM(dgamma->buf), VX_INT(dgamma->offset), VX_MEM(dbeta->buf), VX_INT(dbeta->offset),
                VX_INT(accumulate != 0)};
  return vx_launch(ctx, "norm", opts, "param_grad", 1, &g, NULL, a, VX_NARGS(a));
}

static vx_status norm_backward(vx_context *ctx, const stats_layout *lay, const vx_tensor *x, const vx_tensor *y,
                               const vx_tensor *dy, const vx_tensor *gamma, const vx_tensor *save, vx_activation act,
                               float slope, int batch_stats, vx_tensor *dx, vx_tensor *dgamma, vx_tensor *dbeta,
                               int accumulate) {
  int N = x->shape[0], C = x->shape[1], S = (int)vx_spatial(x), NC = N * C;
  int chunk = vx_norm_chunk((size_t)S), cps = (int)cdiv((size_t)S, (size_t)chunk);
  size_t nparts = (size_t)NC * cps;
  int sumoff = (int)(2 * nparts), coff = sumoff + 2 * NC;
  cl_mem ws;
  vx_status st = vx_workspace(ctx, ((size_t)coff + 4 * (size_t)NC) * sizeof(float), &ws);
  if (st != VX_OK) return st;
  char opts[128];
  options(opts, sizeof opts, chunk, gamma != NULL, act, batch_stats);
  size_t g1 = nparts;
  vx_arg a1[] = {VX_MEM(x->buf),    VX_INT(x->offset),    VX_MEM(y->buf), VX_INT(y->offset), VX_MEM(dy->buf),
                 VX_INT(dy->offset), VX_MEM(save->buf),   VX_INT(save->offset), VX_INT(C), VX_INT(lay->cpg),
                 VX_INT(lay->sN),   VX_INT(S),            VX_INT(cps),    VX_INT(nparts),    VX_MEM(ws),
                 VX_INT(0),         VX_FLOAT(slope)};
  if ((st = vx_launch(ctx, "norm", opts, "backward_partial", 1, &g1, NULL, a1, VX_NARGS(a1))) != VX_OK) return st;
  size_t g2 = (size_t)NC;
  vx_arg a2[] = {VX_MEM(ws), VX_INT(0), VX_INT(cps), VX_INT(NC), VX_MEM(ws), VX_INT(sumoff)};
  if ((st = vx_launch(ctx, "norm", opts, "backward_rowsum", 1, &g2, NULL, a2, VX_NARGS(a2))) != VX_OK) return st;
  cl_mem gb = gamma ? gamma->buf : x->buf;
  float M = (float)lay->nseg * (float)lay->L; /* elements per statistics row */
  vx_arg a3[] = {VX_MEM(ws), VX_INT(sumoff), VX_MEM(save->buf), VX_INT(save->offset), VX_MEM(gb),
                 VX_INT(gamma ? gamma->offset : 0), VX_INT(N), VX_INT(C), VX_INT(lay->cpg), VX_INT(lay->sN),
                 VX_FLOAT(M), VX_MEM(ws), VX_INT(coff)};
  if ((st = vx_launch(ctx, "norm", opts, "backward_coef", 1, &g2, NULL, a3, VX_NARGS(a3))) != VX_OK) return st;
  vx_arg a4[] = {VX_MEM(x->buf),  VX_INT(x->offset),  VX_MEM(y->buf),  VX_INT(y->offset), VX_MEM(dy->buf),
                 VX_INT(dy->offset), VX_MEM(ws),      VX_INT(coff),    VX_MEM(dx->buf),   VX_INT(dx->offset),
                 VX_INT(S),       VX_FLOAT(slope),    VX_INT(accumulate != 0)};
  size_t g4[2] = {((size_t)S + 15) / 16, (size_t)NC}; /* 16 floats per work-item */
  if ((st = vx_launch(ctx, "norm", opts, "backward_apply", 2, g4, NULL, a4, VX_NARGS(a4))) != VX_OK) return st;
  if (!dgamma) return VX_OK;
  return vx_norm_param_grad(ctx, opts, ws, sumoff, N, C, dgamma, dbeta, accumulate);
}

/* ---------------------------------------------------------------- instance and group norm */
static vx_status group_forward(vx_context *ctx, const char *op, const vx_tensor *x, int groups, const vx_tensor *gamma,
                               const vx_tensor *beta, float eps, vx_activation act, float slope, vx_tensor *y,
                               vx_tensor *save) {
  if (!x || !y || !save) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: x, y and save are required", op);
  vx_status st = vx_check_shape(ctx, op, "output", y, x->shape);
  if (st != VX_OK) return st;
  int N = x->shape[0], C = x->shape[1];
  if (groups <= 0 || C % groups != 0)
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: groups = %d does not divide the %d channels of x", op, groups,
                   C);
  if ((st = vx_norm_check_affine(ctx, op, gamma, beta, C)) != VX_OK) return st;
  if (save->numel < (size_t)N * groups * 2)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: save has %zu elements, expected at least %d (2 per sample and group)", op,
                   save->numel, N * groups * 2);
  if (!(eps > 0.0f)) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: eps is %g, expected > 0", op, (double)eps);
  stats_layout lay = group_layout(x, groups);
  return norm_forward(ctx, &lay, x, gamma, beta, eps, act, slope, y, save, 1, NULL, NULL, 0.0f);
}

static vx_status group_backward(vx_context *ctx, const char *op, const vx_tensor *x, int groups, const vx_tensor *y,
                                const vx_tensor *dy, const vx_tensor *gamma, const vx_tensor *save,
                                vx_activation act, float slope, vx_tensor *dx, vx_tensor *dgamma, vx_tensor *dbeta,
                                int accumulate) {
  if (!x || !y || !dy || !save || !dx)
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: x, y, dy, save and dx are required", op);
  vx_status st = vx_norm_check_backward(ctx, op, x, y, dy, gamma, dx, dgamma, dbeta);
  if (st != VX_OK) return st;
  int N = x->shape[0], C = x->shape[1];
  if (groups <= 0 || C % groups != 0)
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: groups = %d does not divide the %d channels of x", op, groups,
                   C);
  if (save->numel < (size_t)N * groups * 2)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: save has %zu elements, expected at least %d (2 per sample and group)", op,
                   save->numel, N * groups * 2);
  stats_layout lay = group_layout(x, groups);
  return norm_backward(ctx, &lay, x, y, dy, gamma, save, act, slope, 1, dx, dgamma, dbeta, accumulate);
}

vx_status vx_instance_norm_forward(vx_context *ctx, const vx_tensor *x, const vx_tensor *gamma, const vx_tensor *beta,
                                   float eps, vx_activation act, float slope, vx_tensor *y, vx_tensor *save) {
  return group_forward(ctx, "instance_norm_forward", x, x ? x->shape[1] : 1, gamma, beta, eps, act, slope, y, save);
}

vx_status vx_instance_norm_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *y, const vx_tensor *dy,
                                    const vx_tensor *gamma, const vx_tensor *save, vx_activation act, float slope,
                                    vx_tensor *dx, vx_tensor *dgamma, vx_tensor *dbeta, int accumulate) {
  return group_backward(ctx, "instance_norm_backward", x, x ? x->shape[1] : 1, y, dy, gamma, save, act, slope, dx,
                        dgamma, dbeta, accumulate);
}

vx_status vx_group_norm_forward(vx_context *ctx, const vx_tensor *x, int groups, const vx_tensor *gamma,
                                const vx_tensor *beta, float eps, vx_activation act, float slope, vx_tensor *y,
                                vx_tensor *save) {
  return group_forward(ctx, "group_norm_forward", x, groups, gamma, beta, eps, act, slope, y, save);
}

vx_status vx_group_norm_backward(vx_context *ctx, const vx_tensor *x, int groups, const vx_tensor *y,
                                 const vx_tensor *dy, const vx_tensor *gamma, const vx_tensor *save,
                                 vx_activation act, float slope, vx_tensor *dx, vx_tensor *dgamma, vx_tensor *dbeta,
                                 int accumulate) {
  return group_backward(ctx, "group_norm_backward", x, groups, y, dy, gamma, save, act, slope, dx, dgamma, dbeta,
                        accumulate);
}

/* ---------------------------------------------------------------- batch norm */
vx_status vx_batch_norm_forward(vx_context *ctx, const vx_tensor *x, const vx_tensor *gamma, const vx_tensor *beta,
                                vx_tensor *running_mean, vx_tensor *running_var, int training, float momentum,
                                float eps, vx_activation act, float slope, vx_tensor *y, vx_tensor *save) {
  const char *op = "batch_norm_forward";
  if (!x || !y || !save) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: x, y and save are required", op);
  vx_status st = vx_check_shape(ctx, op, "output", y, x->shape);
  if (st != VX_OK) return st;
  int N = x->shape[0], C = x->shape[1];
  if ((st = vx_norm_check_affine(ctx, op, gamma, beta, C)) != VX_OK) return st;
  if ((running_mean == NULL) != (running_var == NULL))
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: running_mean and running_var must both be given or both be NULL",
                   op);
  if (!training && !running_mean)
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: inference (training = 0) needs running_mean and running_var", op);
  if (running_mean && (running_mean->numel != (size_t)C || running_var->numel != (size_t)C))
    return vx_fail(ctx, VX_ERR_SHAPE,
                   "%s: running_mean/running_var have %zu/%zu elements, expected %d (one per channel)", op, running_mean->numel, running_var->numel, C);
  if (save->numel < (size_t)C * 2)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: save has %zu elements, expected at least %d (2 per channel)", op,
                   save->numel, C * 2);
  if (!(eps > 0.0f)) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: eps is %g, expected > 0", op, (double)eps);
  if (training && !(momentum >= 0.0f && momentum <= 1.0f))
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: momentum is %g, expected in [0, 1]", op, (double)momentum);
  if (training && (size_t)N * vx_spatial(x) < 2)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: training needs more than one value per channel, x is [%d, %d, %d, %d, %d]",
                   op, N, C, x->shape[2], x->shape[3], x->shape[4]);
  stats_layout lay = batch_layout(x);
  return norm_forward(ctx, &lay, x, gamma, beta, eps, act, slope, y, save, training != 0, running_mean, running_var,
                      momentum);
}

vx_status vx_batch_norm_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *y, const vx_tensor *dy,
                                 const vx_tensor *gamma, const vx_tensor *save, int training, vx_activation act,
                                 float slope, vx_tensor *dx, vx_tensor *dgamma, vx_tensor *dbeta, int accumulate) {
  const char *op = "batch_norm_backward";
  if (!x || !y || !dy || !save || !dx)
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: x, y, dy, save and dx are required", op);
  vx_status st = vx_norm_check_backward(ctx, op, x, y, dy, gamma, dx, dgamma, dbeta);
  if (st != VX_OK) return st;
  int C = x->shape[1];
  if (save->numel < (size_t)C * 2)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: save has %zu elements, expected at least %d (2 per channel)", op,
                   save->numel, C * 2);
  stats_layout lay = batch_layout(x);
  return norm_backward(ctx, &lay, x, y, dy, gamma, save, act, slope, training != 0, dx, dgamma, dbeta, accumulate);
}
