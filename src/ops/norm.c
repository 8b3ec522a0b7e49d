/* Normalisation layers. Instance norm: statistics per (sample, channel), optional affine, an
 * activation fused into the same pass (the U-Net's conv -> IN -> LeakyReLU costs one kernel). */
#include <stdio.h>

#include "tensor.h"

#define NORM_WG 64

static void norm_options(char *buf, size_t len, int affine, vx_activation act) {
  snprintf(buf, len, "-DWG=%d -DAFFINE=%d -DACT=%d", NORM_WG, affine, (int)act);
}

static vx_status check_affine(vx_context *ctx, const char *op, const vx_tensor *gamma, const vx_tensor *beta, int C) {
  if ((gamma == NULL) != (beta == NULL))
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: gamma and beta must both be given or both be NULL", op);
  if (gamma && (gamma->numel != (size_t)C || beta->numel != (size_t)C))
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: gamma/beta have %zu/%zu elements, expected %d (one per channel)", op,
                   gamma->numel, beta->numel, C);
  return VX_OK;
}

vx_status vx_instance_norm_forward(vx_context *ctx, const vx_tensor *x, const vx_tensor *gamma, const vx_tensor *beta,
                                   float eps, vx_activation act, float slope, vx_tensor *y, vx_tensor *save) {
  const char *op = "instance_norm_forward";
  if (!x || !y || !save) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: x, y and save are required", op);
  vx_status st = vx_check_shape(ctx, op, "output", y, x->shape);
  if (st != VX_OK) return st;
  int N = x->shape[0], C = x->shape[1];
  if ((st = check_affine(ctx, op, gamma, beta, C)) != VX_OK) return st;
  if (save->numel < (size_t)N * C * 2)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: save has %zu elements, expected at least %d (2 per sample and channel)", op,
                   save->numel, N * C * 2);
  if (!(eps > 0.0f)) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: eps is %g, expected > 0", op, (double)eps);
  char opts[128];
  norm_options(opts, sizeof opts, gamma != NULL, act);
  size_t local = NORM_WG, global = (size_t)N * C * NORM_WG;
  cl_mem gb = gamma ? gamma->buf : x->buf, bb = beta ? beta->buf : x->buf; /* unused when !AFFINE */
  vx_arg args[] = {VX_MEM(x->buf),    VX_INT(x->offset),   VX_MEM(gb), VX_INT(gamma ? gamma->offset : 0),
                   VX_MEM(bb),        VX_INT(beta ? beta->offset : 0), VX_MEM(y->buf), VX_INT(y->offset),
                   VX_MEM(save->buf), VX_INT(save->offset), VX_INT(C), VX_INT(vx_spatial(x)), VX_FLOAT(eps),
                   VX_FLOAT(slope)};
  return vx_launch(ctx, "norm", opts, "instnorm_forward", 1, &global, &local, args, VX_NARGS(args));
}

vx_status vx_instance_norm_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *y, const vx_tensor *dy,
                                    const vx_tensor *gamma, const vx_tensor *save, vx_activation act, float slope,
                                    vx_tensor *dx, vx_tensor *dgamma, vx_tensor *dbeta, int accumulate) {
  const char *op = "instance_norm_backward";
  if (!x || !y || !dy || !save || !dx)
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: x, y, dy, save and dx are required", op);
  vx_status st = vx_check_shape(ctx, op, "output", y, x->shape);
  if (st == VX_OK) st = vx_check_shape(ctx, op, "output gradient", dy, x->shape);
  if (st == VX_OK) st = vx_check_shape(ctx, op, "input gradient", dx, x->shape);
  if (st != VX_OK) return st;
  int N = x->shape[0], C = x->shape[1];
  if (gamma && gamma->numel != (size_t)C)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: gamma has %zu elements, expected %d", op, gamma->numel, C);
  if ((dgamma == NULL) != (dbeta == NULL) || (dgamma && (dgamma->numel != (size_t)C || dbeta->numel != (size_t)C)))
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: dgamma and dbeta must both hold %d elements (or both be NULL)", op, C);
  cl_mem part;
  if ((st = vx_workspace(ctx, (size_t)N * C * 2 * sizeof(float), &part)) != VX_OK) return st;
  char opts[128];
  norm_options(opts, sizeof opts, gamma != NULL, act);
  size_t local = NORM_WG, global = (size_t)N * C * NORM_WG;
  cl_mem gb = gamma ? gamma->buf : x->buf;
  vx_arg args[] = {VX_MEM(x->buf),    VX_INT(x->offset),    VX_MEM(y->buf),  VX_INT(y->offset),
                   VX_MEM(dy->buf),   VX_INT(dy->offset),   VX_MEM(gb),      VX_INT(gamma ? gamma->offset : 0),
                   VX_MEM(save->buf), VX_INT(save->offset), VX_MEM(dx->buf), VX_INT(dx->offset),
                   VX_MEM(part),      VX_INT(C),            VX_INT(vx_spatial(x)), VX_FLOAT(slope),
                   VX_INT(accumulate != 0)};
  st = vx_launch(ctx, "norm", opts, "instnorm_backward", 1, &global, &local, args, VX_NARGS(args));
  if (st != VX_OK || !dgamma) return st;
  size_t gc = (size_t)C;
  vx_arg pargs[] = {VX_MEM(part), VX_INT(N), VX_INT(C), VX_MEM(dgamma->buf), VX_INT(dgamma->offset),
                    VX_MEM(dbeta->buf), VX_INT(dbeta->offset), VX_INT(accumulate != 0)};
  return vx_launch(ctx, "norm", opts, "instnorm_param_grad", 1, &gc, NULL, pargs, VX_NARGS(pargs));
}
