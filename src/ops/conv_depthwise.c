/* Depthwise convolution (groups == C == O, stride 1): forward, data gradient and weight gradient
 * through kernels/conv_depthwise.cl.
 *
 * Every pass pads its input into the context workspace (pad_general), one plane per (n, c),
 * and runs one kernel over the padded planes. When the planes of the whole batch do not fit the
 * workspace budget, the work is split into slabs of samples, or of channels of one sample
 * (channels are independent here), so large tensors never need the GEMM fallback. The weight
 * gradient is reduced in fixed chunks of depth planes, then the chunks are added in order
 * (sum_partials), slab after slab: the result does not depend on scheduling. */
#include <stdio.h>

#include "ops/conv_internal.h"

#define VW 16
#define FWD_ROWS 4   /* output rows per forward work-item (kernel ROWS) */
#define BWD_W_ITEMS 4096 /* weight-gradient work-items aimed for when choosing chunks */

static size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

int vx_conv_is_depthwise(const vx_conv_geom *g) { return g->G > 1 && g->Cg == 1 && g->Og == 1; }

/* Padded plane of a stride-1 depthwise pass producing out[3] (ROWS rows per work-item). */
typedef struct { int D, H, W, rows; } dw_plane;

static dw_plane plane_for(const vx_conv_geom *g, const int out[3]) {
  dw_plane p;
  p.rows = out[1] < FWD_ROWS ? out[1] : FWD_ROWS;
  p.D = out[0] + g->d[0] * (g->k[0] - 1);
  p.H = (int)round_up((size_t)out[1], (size_t)p.rows) + g->d[1] * (g->k[1] - 1);
  p.W = (int)round_up((size_t)out[2], VW) + g->d[2] * (g->k[2] - 1);
  return p;
}

static size_t plane_floats(dw_plane p) { return (size_t)p.D * p.H * p.W; }

/* kh taps per weight-gradient work-item: KW * BKH accumulators of 16 floats stay in registers. */
static int bwd_kh(const vx_conv_geom *g) {
  int b = 21 / g->k[2];
  if (b < 1) b = 1;
  return b < g->k[1] ? b : g->k[1];
}

static void dw_options(const vx_conv_geom *g, int rows, int flip, char *buf, size_t len) {
  snprintf(buf, len, "-DKD=%d -DKH=%d -DKW=%d -DDD=%d -DDH=%d -DDW=%d -DROWS=%d -DFLIP=%d -DBKH=%d", g->k[0],
           g->k[1], g->k[2], g->d[0], g->d[1], g->d[2], rows, flip, bwd_kh(g));
}

/* A slab: Ns samples of all channels, or Cs < C channels of one sample. */
typedef struct { int Ns, Cs; } dw_slab;

/* The largest slab whose 'per_plane' floats per plane (plus 'per_slab_plane' extra floats per
 * plane for scratch that scales with it) fit the budget; Ns = 0 when not even one plane fits. */
static dw_slab slab_for(vx_context *ctx, const vx_conv_geom *g, size_t per_plane) {
  dw_slab s = {0, 0};
  size_t planes = ctx->workspace_limit / (per_plane * sizeof(float));
  if (planes == 0) return s;
  if (planes >= (size_t)g->C) {
    size_t ns = planes / (size_t)g->C;
    s.Ns = ns > (size_t)g->N ? g->N : (int)ns;
    s.Cs = g->C;
  } else {
    s.Ns = 1;
    s.Cs = (int)planes;
  }
  return s;
}

/* Floats per plane of each pass: the padded input, plus for the weight gradient the padded
 * gradient rows and the per-chunk partial sums (at most one chunk per depth plane). */
static size_t fwd_per_plane(const vx_conv_geom *g) { return plane_floats(plane_for(g, g->out)); }
static size_t bwd_data_per_plane(const vx_conv_geom *g) { return plane_floats(plane_for(g, g->in)); }
static size_t bwd_w_per_plane(const vx_conv_geom *g) {
  size_t owv = round_up((size_t)g->out[2], VW);
  size_t dyp = g->out[2] % VW ? (size_t)g->out[0] * g->out[1] * owv : 0;
  return plane_floats(plane_for(g, g->out)) + dyp + (size_t)g->out[0] * g->K3;
}

int vx_conv_depthwise_fits(vx_context *ctx, const vx_conv_geom *g, int which) {
  /* KW input vectors plus the sums stay in registers up to KW = 15 */
  if (!vx_conv_is_depthwise(g) || g->k[2] > 15) return 0;
  for (int i = 0; i < 3; i++)
    if (g->s[i] != 1) return 0;
  size_t per = which == 0 ? fwd_per_plane(g) : which == 1 ? bwd_data_per_plane(g) : bwd_w_per_plane(g);
  return slab_for(ctx, g, per).Ns > 0;
}

static vx_status pad_planes(vx_context *ctx, cl_mem src, size_t soff, const int in[3], cl_mem dst, size_t doff,
                            dw_plane p, int wph, const int front[3], int nplanes) {
  size_t gs[2] = {(size_t)p.H, (size_t)p.D * nplanes};
  vx_arg args[] = {VX_MEM(src), VX_INT(soff),     VX_INT(in[0]),    VX_INT(in[1]),    VX_INT(in[2]),
                   VX_MEM(dst), VX_INT(doff),     VX_INT(p.D),      VX_INT(p.H),      VX_INT(wph),
                   VX_INT(1),   VX_INT(front[0]), VX_INT(front[1]), VX_INT(front[2]), VX_INT(nplanes)};
  return vx_launch(ctx, "conv_direct", "", "pad_general", 2, gs, NULL, args, VX_NARGS(args));
}

/* out (+)= depthwise conv of 'src' (spatial in[3], padded by front[3]) with w, flipped or not.
 * Shared by the forward (src = x) and the data gradient (src = dy, flipped taps). */
static vx_status dw_pass(vx_context *ctx, const vx_conv_geom *g, const vx_tensor *src, const int in[3],
                         const int front[3], const vx_tensor *w, int flip, vx_tensor *out, const int out_sp[3],
                         int accumulate) {
  dw_plane p = plane_for(g, out_sp);
  dw_slab sl = slab_for(ctx, g, plane_floats(p));
  if (sl.Ns == 0) return vx_fail(ctx, VX_ERR_OUT_OF_MEMORY, "depthwise conv: one padded plane exceeds the workspace");
  char opts[160];
  dw_options(g, p.rows, flip, opts, sizeof opts);
  size_t S_src = (size_t)in[0] * in[1] * in[2], S_out = (size_t)out_sp[0] * out_sp[1] * out_sp[2];
  cl_mem ws;
  vx_status st = vx_workspace(ctx, (size_t)sl.Ns * sl.Cs * plane_floats(p) * sizeof(float), &ws);
  for (int n0 = 0; n0 < g->N && st == VX_OK; n0 += sl.Ns) {
    int ns = g->N - n0 < sl.Ns ? g->N - n0 : sl.Ns;
    for (int c0 = 0; c0 < g->C && st == VX_OK; c0 += sl.Cs) {
      int cs = g->C - c0 < sl.Cs ? g->C - c0 : sl.Cs;
      st = pad_planes(ctx, src->buf, src->offset + ((size_t)n0 * g->C + c0) * S_src, in, ws, 0, p, p.W, front,
                      ns * cs);
      size_t gs[3] = {round_up((size_t)out_sp[2], VW) / VW, ((size_t)out_sp[1] + p.rows - 1) / p.rows,
                      (size_t)ns * cs * out_sp[0]};
      vx_arg args[] = {VX_MEM(ws),        VX_INT(0),          VX_INT(cs),        VX_INT(p.D),
                       VX_INT(p.H),       VX_INT(p.W),        VX_MEM(w->buf),    VX_INT(w->offset),
                       VX_MEM(out->buf),  VX_INT(out->offset + (size_t)n0 * g->C * S_out), VX_INT(g->C),
                       VX_INT(c0),        VX_INT(out_sp[0]),  VX_INT(out_sp[1]), VX_INT(out_sp[2]),
                       VX_INT(ns),        VX_INT(accumulate != 0)};
      if (st == VX_OK) st = vx_launch(ctx, "conv_depthwise", opts, "dw_fwd", 3, gs, NULL, args, VX_NARGS(args));
    }
  }
  return st;
}

vx_status vx_conv_depthwise_forward(vx_context *ctx, const vx_conv_geom *g, const vx_tensor *x, const vx_tensor *w,
                                    vx_tensor *y, int accumulate) {
  return dw_pass(ctx, g, x, g->in, g->p, w, 0, y, g->out, accumulate);
}

vx_status vx_conv_depthwise_backward_data(vx_context *ctx, const vx_conv_geom *g, const vx_tensor *dy,
                                          const vx_tensor *w, vx_tensor *dx, int accumulate) {
  /* dx[i] = sum_k dy[i + p - k*d] w[k]: a conv of dy padded by d(k-1) - p (a crop when negative)
   * with the taps mirrored. An input longer than the conv's reach (transposed output_padding)
   * reads zeros past dy. */
  int front[3];
  for (int i = 0; i < 3; i++) front[i] = g->d[i] * (g->k[i] - 1) - g->p[i];
  return dw_pass(ctx, g, dy, g->out, front, w, 1, dx, g->in, accumulate);
}

vx_status vx_conv_depthwise_backward_weights(vx_context *ctx, const vx_conv_geom *g, const vx_tensor *x,
                                             const vx_tensor *dy, vx_tensor *dw, int accumulate) {
  dw_plane p = plane_for(g, g->out);
  dw_slab sl = slab_for(ctx, g, bwd_w_per_plane(g));
  if (sl.Ns == 0) return vx_fail(ctx, VX_ERR_OUT_OF_MEMORY, "depthwise conv: one padded plane exceeds the workspace");
  char opts[160];
  dw_options(g, p.rows, 0, opts, sizeof opts);
  int owv = (int)round_up((size_t)g->out[2], VW);
  int pad_dy = owv != g->out[2];
  int bkh = bwd_kh(g), nkhg = (g->k[1] + bkh - 1) / bkh;
  size_t plane = plane_floats(p), dy_plane = (size_t)g->out[0] * g->out[1] * owv;
  size_t xp_n = (size_t)sl.Ns * sl.Cs * plane, dyp_n = pad_dy ? (size_t)sl.Ns * sl.Cs * dy_plane : 0;
  size_t part_max = (size_t)sl.Ns * g->out[0] * sl.Cs * g->K3;
  cl_mem ws;
  vx_status st = vx_workspace(ctx, (xp_n + dyp_n + part_max) * sizeof(float), &ws);
  int zero[3] = {0, 0, 0};
  for (int n0 = 0; n0 < g->N && st == VX_OK; n0 += sl.Ns) {
    int ns = g->N - n0 < sl.Ns ? g->N - n0 : sl.Ns;
    for (int c0 = 0; c0 < g->C && st == VX_OK; c0 += sl.Cs) {
      int cs = g->C - c0 < sl.Cs ? g->C - c0 : sl.Cs;
      st = pad_planes(ctx, x->buf, x->offset + ((size_t)n0 * g->C + c0) * g->S_in, g->in, ws, 0, p, p.W, g->p,
                      ns * cs);
      cl_mem dyb = dy->buf;
      size_t dyoff = dy->offset + (size_t)n0 * g->C * g->S_out;
      int dyC = g->C, dyc0 = c0;
      if (st == VX_OK && pad_dy) {
        dw_plane dp = {g->out[0], g->out[1], owv, 1};
        st = pad_planes(ctx, dy->buf, dy->offset + ((size_t)n0 * g->C + c0) * g->S_out, g->out, ws, xp_n, dp, owv,
                        zero, ns * cs);
        dyb = ws;
        dyoff = xp_n;
        dyC = cs;
        dyc0 = 0;
      }
      /* fixed chunks of depth planes: enough work-items for any device, a function of the shape only */
      int T = ns * g->out[0];
      size_t items = (size_t)g->k[0] * nkhg * cs;
      int want = (int)((BWD_W_ITEMS + items - 1) / items);
      if (want > T) want = T;
      int tpc = (T + want - 1) / want, nchunk = (T + tpc - 1) / tpc;
      size_t part_off = xp_n + dyp_n;
      size_t gs[3] = {(size_t)g->k[0] * nkhg, (size_t)cs, (size_t)nchunk};
      vx_arg args[] = {VX_MEM(ws),       VX_INT(0),         VX_INT(cs),        VX_INT(p.D),    VX_INT(p.H),
                       VX_INT(p.W),      VX_MEM(dyb),       VX_INT(dyoff),     VX_INT(dyC),    VX_INT(dyc0),
                       VX_INT(g->out[0]), VX_INT(g->out[1]), VX_INT(owv),      VX_INT(ns),     VX_INT(tpc),
                       VX_MEM(ws),       VX_INT(part_off)};
      if (st == VX_OK)
        st = vx_launch(ctx, "conv_depthwise", opts, "dw_bwd_weights", 3, gs, NULL, args, VX_NARGS(args));
      size_t count = (size_t)cs * g->K3;
      vx_arg rargs[] = {VX_MEM(ws), VX_INT(part_off), VX_INT(nchunk), VX_INT(count), VX_MEM(dw->buf),
                        VX_INT(dw->offset + (size_t)c0 * g->K3), VX_INT(accumulate || n0 > 0)};
      if (st == VX_OK) st = vx_launch(ctx, "conv_direct", "", "sum_partials", 1, &count, NULL, rargs, VX_NARGS(rargs));
    }
  }
  return st;
}
