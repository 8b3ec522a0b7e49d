/* Channel layer norm (3D UX-Net's LayerNorm on channels-first tensors): at every voxel the C
 * channels are normalised, then a per-channel affine. One work-item per 16 voxels (vector
 * loads) for the values and dx; the parameter gradients are chunked per-(n, c) partials summed
 * in a fixed order (kernels/norm.cl), so results repeat bitwise. */
#include <stdio.h>

#include "norm_internal.h"

vx_status vx_layer_norm_channels_forward(vx_context *ctx, const vx_tensor *x, const vx_tensor *gamma,
                                         const vx_tensor *beta, float eps, vx_tensor *y, vx_tensor *save) {
  const char *op = "layer_norm_channels_forward";
  if (!x || !y || !save) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: x, y and save are required", op);
  vx_status st = vx_check_shape(ctx, op, "output", y, x->shape);
  if (st != VX_OK) return st;
  int N = x->shape[0], C = x->shape[1], S = (int)vx_spatial(x);
  if ((st = vx_norm_check_affine(ctx, op, gamma, beta, C)) != VX_OK) return st;
  if (save->numel < (size_t)N * S * 2)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: save has %zu elements, expected at least %zu (2 per voxel of each sample)",
                   op, save->numel, (size_t)N * S * 2);
  if (!(eps > 0.0f)) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: eps is %g, expected > 0", op, (double)eps);
  char opts[128];
  snprintf(opts, sizeof opts, "-DCHUNK=%d -DAFFINE=%d -DACT=0 -DTRAIN=1", vx_norm_chunk((size_t)S), gamma != NULL);
  size_t g[2] = {((size_t)S + 15) / 16, (size_t)N}; /* 16 voxels per work-item */
  cl_mem gb = gamma ? gamma->buf : x->buf, bb = beta ? beta->buf : x->buf; /* unused when !AFFINE */
  vx_arg a[] = {VX_MEM(x->buf),    VX_INT(x->offset),    VX_MEM(gb), VX_INT(gamma ? gamma->offset : 0),
                VX_MEM(bb),        VX_INT(beta ? beta->offset : 0), VX_MEM(y->buf), VX_INT(y->offset),
                VX_MEM(save->buf), VX_INT(save->offset), VX_INT(C),  VX_INT(S), VX_FLOAT(eps)};
  return vx_launch(ctx, "norm", opts, "ln_forward", 2, g, NULL, a, VX_NARGS(a));
}

vx_status vx_layer_norm_channels_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *dy,
                                          const vx_tensor *gamma, const vx_tensor *save, vx_tensor *dx,
                                          vx_tensor *dgamma, vx_tensor *dbeta, int accumulate) {
  const char *op = "layer_norm_channels_backward";
  if (!x || !dy || !save || !dx)
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: x, dy, save and dx are required", op);
  vx_status st = vx_norm_check_backward(ctx, op, x, NULL, dy, gamma, dx, dgamma, dbeta);
  if (st != VX_OK) return st;
  int N = x->shape[0], C = x->shape[1], S = (int)vx_spatial(x);
  if (save->numel < (size_t)N * S * 2)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: save has %zu elements, expected at least %zu (2 per voxel of each sample)",
                   op, save->numel, (size_t)N * S * 2);
  int chunk = vx_norm_chunk((size_t)S), cps = (S + chunk - 1) / chunk, NC = N * C;
  char opts[128];
  snprintf(opts, sizeof opts, "-DCHUNK=%d -DAFFINE=%d -DACT=0 -DTRAIN=1", chunk, gamma != NULL);
  size_t g[2] = {((size_t)S + 15) / 16, (size_t)N}; /* 16 voxels per work-item */
  cl_mem gb = gamma ? gamma->buf : x->buf;
  vx_arg a[] = {VX_MEM(x->buf),    VX_INT(x->offset),    VX_MEM(dy->buf), VX_INT(dy->offset), VX_MEM(gb),
                VX_INT(gamma ? gamma->offset : 0),       VX_MEM(save->buf), VX_INT(save->offset), VX_MEM(dx->buf),
                VX_INT(dx->offset), VX_INT(C),           VX_INT(S),       VX_INT(accumulate != 0)};
  if ((st = vx_launch(ctx, "norm", opts, "ln_backward", 2, g, NULL, a, VX_NARGS(a))) != VX_OK) return st;
  if (!dgamma) return VX_OK;
  size_t nparts = (size_t)NC * cps;
  int sumoff = (int)(2 * nparts);
  cl_mem ws;
  if ((st = vx_workspace(ctx, ((size_t)sumoff + 2 * (size_t)NC) * sizeof(float), &ws)) != VX_OK) return st;
  vx_arg a1[] = {VX_MEM(x->buf),    VX_INT(x->offset), VX_MEM(dy->buf), VX_INT(dy->offset), VX_MEM(save->buf),
                 VX_INT(save->offset), VX_INT(N),      VX_INT(C),       VX_INT(S),          VX_INT(cps),
                 VX_INT(nparts),    VX_MEM(ws),        VX_INT(0)};
  if ((st = vx_launch(ctx, "norm", opts, "ln_param_partial", 1, &nparts, NULL, a1, VX_NARGS(a1))) != VX_OK) return st;
  size_t g2 = (size_t)NC;
  vx_arg a2[] = {VX_MEM(ws), VX_INT(0), VX_INT(cps), VX_INT(NC), VX_MEM(ws), VX_INT(sumoff)};
  if ((st = vx_launch(ctx, "norm", opts, "backward_rowsum", 1, &g2, NULL, a2, VX_NARGS(a2))) != VX_OK) return st;
  return vx_norm_param_grad(ctx, opts, ws, sumoff, N, C, dgamma, dbeta, accumulate);
}
