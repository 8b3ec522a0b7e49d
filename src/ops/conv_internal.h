/* Internal to the convolution family: the geometry shared by conv.c (checks, im2col + GEMM)
 * and conv_direct.c (direct kernels). */
#ifndef VX_CONV_INTERNAL_H
#define VX_CONV_INTERNAL_H

#include "tensor.h"

/* The geometry of one convolution seen from the conv side: x [N, C, D, H, W] -> y [N, O, OD, OH, OW]. */
typedef struct {
  int N, C, O, G;
  int in[3], out[3], k[3], s[3], p[3], d[3];
  size_t S_in, S_out;
  int Cg, Og, K3;
  char options[256];
} vx_conv_geom;

/* Direct kernels (groups 1, strides up to 4; conv_direct.c), which = 0 forward, 1 data gradient,
 * 2 weight gradient: 0 when not applicable to g or not even a one-plane slab fits the
 * workspace, so the caller falls back to im2col + GEMM. */
int vx_conv_direct_fits(vx_context *ctx, const vx_conv_geom *g, int which);
vx_status vx_conv_direct_forward(vx_context *ctx, const vx_conv_geom *g, const vx_tensor *x, const vx_tensor *w,
                                 vx_tensor *y, int accumulate);
vx_status vx_conv_direct_backward_data(vx_context *ctx, const vx_conv_geom *g, const vx_tensor *dy, const vx_tensor *w,
                                       vx_tensor *dx, int accumulate);
vx_status vx_conv_direct_backward_weights(vx_context *ctx, const vx_conv_geom *g, const vx_tensor *x, const vx_tensor *dy,
                                          vx_tensor *dw, int accumulate);

/* Depthwise kernels (groups == C == O, stride 1; conv_depthwise.c): 0 from _fits when g is not
 * depthwise or not even one padded plane fits the workspace. */
int vx_conv_is_depthwise(const vx_conv_geom *g);
int vx_conv_depthwise_fits(vx_context *ctx, const vx_conv_geom *g, int which);
vx_status vx_conv_depthwise_forward(vx_context *ctx, const vx_conv_geom *g, const vx_tensor *x, const vx_tensor *w,
                                    vx_tensor *y, int accumulate);
vx_status vx_conv_depthwise_backward_data(vx_context *ctx, const vx_conv_geom *g, const vx_tensor *dy,
                                          const vx_tensor *w, vx_tensor *dx, int accumulate);
vx_status vx_conv_depthwise_backward_weights(vx_context *ctx, const vx_conv_geom *g, const vx_tensor *x,
                                             const vx_tensor *dy, vx_tensor *dw, int accumulate);

#endif
