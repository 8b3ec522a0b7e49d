/* Shared by the normalisation ops (norm.c, norm_layer.c): argument checks and the parameter-
 * gradient kernel of kernels/norm.cl. */
#ifndef VX_NORM_INTERNAL_H
#define VX_NORM_INTERNAL_H

#include "tensor.h"

/* Chunk length (floats per work-item) of the reductions over rows of len floats. */
int vx_norm_chunk(size_t len);
/* gamma and beta both NULL or both [C]. */
vx_status vx_norm_check_affine(vx_context *ctx, const char *op, const vx_tensor *gamma, const vx_tensor *beta, int C);
/* y (when not NULL), dy and dx shaped like x; gamma [C] or NULL; dgamma/dbeta both [C] or both NULL. */
vx_status vx_norm_check_backward(vx_context *ctx, const char *op, const vx_tensor *x, const vx_tensor *y,
                                 const vx_tensor *dy, const vx_tensor *gamma, vx_tensor *dx, vx_tensor *dgamma,
                                 vx_tensor *dbeta);
/* dgamma[c] (+)= sum_n sums[2 (n C + c) + 1], dbeta[c] (+)= sum_n sums[2 (n C + c)] (sums at
 * float offset sumoff of buffer sums). opts: the options of a norm.cl build. */
vx_status vx_norm_param_grad(vx_context *ctx, const char *opts, cl_mem sums, int sumoff, int N, int C,
                             vx_tensor *dgamma, vx_tensor *dbeta, int accumulate);

#endif
