/* Direct stride-1 convolution kernels (kernels/conv_direct.cl): forward, data gradient (the
 * forward kernel on the padded output gradient with flipped, transposed weights) and weight
 * gradient. Scratch (padded input, reordered weights) lives in the context workspace. */
#include <stdio.h>

#include "ops/conv_internal.h"

#define VW 16
#define OB 8

static size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

/* Padded-input geometry for a stride-1 conv reading 'in' with front padding p. */
typedef struct { int D, H, W; } dims3;

static dims3 padded_dims(const vx_conv_geom *g, const int in[3], const int out[3], const int pad[3]) {
  dims3 d;
  d.D = in[0] + 2 * pad[0];
  d.H = in[1] + 2 * pad[1];
  int need_w = (int)round_up((size_t)out[2], VW) + g->d[2] * (g->k[2] - 1);
  d.W = in[2] + 2 * pad[2] > need_w ? in[2] + 2 * pad[2] : need_w;
  return d;
}

static void options(const vx_conv_geom *g, char *buf, size_t len) {
  snprintf(buf, len, "-DKD=%d -DKH=%d -DKW=%d -DDD=%d -DDH=%d -DDW=%d", g->k[0], g->k[1], g->k[2], g->d[0], g->d[1],
           g->d[2]);
}

static size_t wt_size(int O, int C, int K3) { return round_up((size_t)O, OB) * C * K3; }

/* Pads the gradient conv's input for backward data by d(K-1) - p on each side. */
static int bwd_pad(const vx_conv_geom *g, int i) { return g->d[i] * (g->k[i] - 1) - g->p[i]; }

static size_t fwd_bytes(const vx_conv_geom *g) {
  dims3 p = padded_dims(g, g->in, g->out, g->p);
  return ((size_t)g->N * g->C * p.D * p.H * p.W + wt_size(g->O, g->C, g->K3)) * sizeof(float);
}

static size_t bwd_data_bytes(const vx_conv_geom *g) {
  int pad[3] = {bwd_pad(g, 0), bwd_pad(g, 1), bwd_pad(g, 2)};
  dims3 p = padded_dims(g, g->out, g->in, pad);
  return ((size_t)g->N * g->O * p.D * p.H * p.W + wt_size(g->C, g->O, g->K3)) * sizeof(float);
}

static size_t bwd_w_bytes(const vx_conv_geom *g) {
  dims3 p = padded_dims(g, g->in, g->out, g->p);
  size_t dyp = g->out[2] % VW ? (size_t)g->N * g->O * g->out[0] * g->out[1] * round_up((size_t)g->out[2], VW) : 0;
  return ((size_t)g->N * g->C * p.D * p.H * p.W + dyp) * sizeof(float);
}

int vx_conv_direct_fits(vx_context *ctx, const vx_conv_geom *g, int which) {
  if (g->G != 1) return 0;
  for (int i = 0; i < 3; i++) {
    if (g->s[i] != 1) return 0;
    if (bwd_pad(g, i) < 0) return 0; /* padding beyond the kernel span: the gradient conv would crop */
    /* A transposed conv with output_padding (< dilation at stride 1) has an input longer than
     * out + span - 1 - 2p: the gradient conv would read past the padded rows. */
    if (which == 1 && g->in[i] + 2 * g->p[i] - g->d[i] * (g->k[i] - 1) != g->out[i]) return 0;
  }
  size_t need = which == 0 ? fwd_bytes(g) : which == 1 ? bwd_data_bytes(g) : bwd_w_bytes(g);
  return need <= ctx->workspace_limit;
}

static vx_status pad(vx_context *ctx, const vx_tensor *x, int NC, const int in[3], cl_mem dst, size_t dst_off,
                     dims3 p, const int front[3]) {
  size_t gs[2] = {(size_t)p.H, (size_t)p.D * NC};
  vx_arg args[] = {VX_MEM(x->buf), VX_INT(x->offset), VX_INT(in[0]), VX_INT(in[1]), VX_INT(in[2]), VX_MEM(dst),
                   VX_INT(dst_off), VX_INT(p.D), VX_INT(p.H), VX_INT(p.W), VX_INT(front[0]), VX_INT(front[1]),
                   VX_INT(front[2])};
  return vx_launch(ctx, "conv_direct", "", "pad_input", 2, gs, NULL, args, VX_NARGS(args));
}

static vx_status reorder(vx_context *ctx, const vx_conv_geom *g, const char *opts, const vx_tensor *w, int O, int C,
                         int flip, cl_mem dst, size_t off) {
  size_t n = wt_size(O, C, g->K3);
  vx_arg args[] = {VX_MEM(w->buf), VX_INT(w->offset), VX_INT(O), VX_INT(C), VX_INT(flip), VX_MEM(dst), VX_INT(off)};
  return vx_launch(ctx, "conv_direct", opts, "reorder_weights", 1, &n, NULL, args, VX_NARGS(args));
}

/* The forward kernel over an already padded input (in ws at 0) and reordered weights (at wt_off). */
static vx_status run_fwd(vx_context *ctx, const char *opts, cl_mem ws, int N, int C, dims3 p, size_t wt_off,
                         vx_tensor *y, int O, const int out[3], int accumulate) {
  size_t oblk = (size_t)(O + OB - 1) / OB;
  size_t gs[3] = {round_up((size_t)out[2], VW) / VW, (size_t)out[1], (size_t)N * oblk * out[0]};
  vx_arg args[] = {VX_MEM(ws), VX_INT(0), VX_INT(C), VX_INT(p.D), VX_INT(p.H), VX_INT(p.W), VX_MEM(ws),
                   VX_INT(wt_off), VX_MEM(y->buf), VX_INT(y->offset), VX_INT(O), VX_INT(out[0]), VX_INT(out[1]),
                   VX_INT(out[2]), VX_INT(accumulate != 0)};
  return vx_launch(ctx, "conv_direct", opts, "conv_fwd", 3, gs, NULL, args, VX_NARGS(args));
}

vx_status vx_conv_direct_forward(vx_context *ctx, const vx_conv_geom *g, const vx_tensor *x, const vx_tensor *w,
                                 vx_tensor *y, int accumulate) {
  char opts[128];
  options(g, opts, sizeof opts);
  dims3 p = padded_dims(g, g->in, g->out, g->p);
  size_t xp_n = (size_t)g->N * g->C * p.D * p.H * p.W;
  cl_mem ws;
  vx_status st = vx_workspace(ctx, fwd_bytes(g), &ws);
  if (st == VX_OK) st = pad(ctx, x, g->N * g->C, g->in, ws, 0, p, g->p);
  if (st == VX_OK) st = reorder(ctx, g, opts, w, g->O, g->C, 0, ws, xp_n);
  if (st == VX_OK) st = run_fwd(ctx, opts, ws, g->N, g->C, p, xp_n, y, g->O, g->out, accumulate);
  return st;
}

vx_status vx_conv_direct_backward_data(vx_context *ctx, const vx_conv_geom *g, const vx_tensor *dy,
                                       const vx_tensor *w, vx_tensor *dx, int accumulate) {
  char opts[128];
  options(g, opts, sizeof opts);
  int front[3] = {bwd_pad(g, 0), bwd_pad(g, 1), bwd_pad(g, 2)};
  dims3 p = padded_dims(g, g->out, g->in, front);
  size_t dyp_n = (size_t)g->N * g->O * p.D * p.H * p.W;
  cl_mem ws;
  vx_status st = vx_workspace(ctx, bwd_data_bytes(g), &ws);
  if (st == VX_OK) st = pad(ctx, dy, g->N * g->O, g->out, ws, 0, p, front);
  if (st == VX_OK) st = reorder(ctx, g, opts, w, g->C, g->O, 1, ws, dyp_n);
  if (st == VX_OK) st = run_fwd(ctx, opts, ws, g->N, g->O, p, dyp_n, dx, g->C, g->in, accumulate);
  return st;
}

vx_status vx_conv_direct_backward_weights(vx_context *ctx, const vx_conv_geom *g, const vx_tensor *x,
                                          const vx_tensor *dy, vx_tensor *dw, int accumulate) {
  char opts[128];
  options(g, opts, sizeof opts);
  dims3 p = padded_dims(g, g->in, g->out, g->p);
  size_t xp_n = (size_t)g->N * g->C * p.D * p.H * p.W;
  int owv = (int)round_up((size_t)g->out[2], VW);
  cl_mem ws;
  vx_status st = vx_workspace(ctx, bwd_w_bytes(g), &ws);
  if (st == VX_OK) st = pad(ctx, x, g->N * g->C, g->in, ws, 0, p, g->p);
  cl_mem dyb = dy->buf;
  size_t dyoff = dy->offset;
  if (st == VX_OK && owv != g->out[2]) {
    /* rows of a whole number of vectors, zeros past the end, so the kernel needs no tail code */
    int zero[3] = {0, 0, 0};
    dims3 a = {g->out[0], g->out[1], owv};
    st = pad(ctx, dy, g->N * g->O, g->out, ws, xp_n, a, zero);
    dyb = ws;
    dyoff = xp_n;
  }
  size_t gs[2] = {(size_t)g->C * g->k[0] * g->k[1], (size_t)(g->O + OB - 1) / OB};
  vx_arg args[] = {VX_MEM(ws),  VX_INT(0),         VX_INT(g->N),     VX_INT(g->C),      VX_INT(p.D),
                   VX_INT(p.H), VX_INT(p.W),       VX_MEM(dyb),      VX_INT(dyoff),     VX_INT(g->O),
                   VX_INT(g->out[0]), VX_INT(g->out[1]), VX_INT(owv), VX_MEM(dw->buf), VX_INT(dw->offset),
                   VX_INT(accumulate != 0)};
  if (st == VX_OK) st = vx_launch(ctx, "conv_direct", opts, "conv_bwd_weights", 2, gs, NULL, args, VX_NARGS(args));
  return st;
}
