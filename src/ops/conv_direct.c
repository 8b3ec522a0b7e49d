/* Direct convolution kernels (kernels/conv_direct.cl) for groups == 1 and any stride, padding
 * and dilation: forward, data gradient (stride 1: the forward kernel on the padded gradient
 * with flipped weights; strided: a gather kernel) and weight gradient (chunked partial sums,
 * added in a fixed order).
 *
 * Scratch (padded input, reordered weights, partial sums) lives in the context workspace. When
 * the padded tensors of the whole batch exceed the budget, the work runs in slabs: whole samples
 * when they fit, else depth slabs of one sample (each slab padded with its halo), so large
 * volumes keep the direct kernels instead of falling back to GEMM. Slab boundaries depend only on
 * the shape and the budget, so results repeat bit for bit. */
#include <stdio.h>

#include "ops/conv_internal.h"

#define VW 16
#define MAX_STRIDE 4    /* conv_bwd_data_s keeps SW phases of 16 values per channel */
#define MAX_TAPS 343    /* kernels are fully unrolled over the taps: up to 7x7x7 */
#define PART_FRACTION 4 /* weight-gradient partial sums may take this fraction of the budget */
#define PLANES_PER_CHUNK 1 /* depth planes per weight-gradient chunk ... */
#define BWD_W_ITEMS 8192   /* ... unless fewer give less than this many work-items */

static size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

static int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* Padded planes: D x H rows of SP phases of Wph values. */
typedef struct { int D, H, Wph, SP; } padded;

static size_t pfloats(padded p) { return (size_t)p.D * p.H * p.Wph * p.SP; }

/* Output channels per work-item of conv_fwd / conv_bwd_data_s (kernel OB): 16, with one output
 * row, so each weight feeds exactly one FMA, which compilers fold into the FMA as a broadcast
 * memory operand. With a weight shared by two rows, LLVM 15 (PoCL 3.1) hoists the broadcasts
 * into registers and spills them: 2 rows x 8 channels ran at half the speed. Fewer channels for
 * convs with few outputs, where a full block would mostly compute zeros (the data gradient of a
 * 1-channel input conv). */
static int ob_for(int O) { return O <= 1 ? 1 : O <= 2 ? 2 : O <= 4 ? 4 : O <= 8 ? 8 : 16; }

/* Output rows per conv_fwd work-item (kernel ROWS): ROWS x OB float16 sums plus ROWS input
 * vectors. Below 8 channels the few weights of a tap stay in registers, so rows add reuse of
 * the weights without spills (checked in the generated code). */
static int rows_for(int OH, int ob) {
  int r = ob >= 8 ? 1 : ob == 4 ? 4 : 8;
  while (r > 1 && r > OH) r /= 2;
  return r;
}

/* Output channels per conv_bwd_weights work-item: KW x OB float16 sums (at most 24) in registers. */
static int ob_weights(const vx_conv_geom *g) {
  int ob = ob_for(g->O);
  while (ob > 1 && ob * g->k[2] > 24) ob /= 2;
  return ob;
}

/* The padded input of a conv_fwd / conv_bwd_weights pass producing ODs x OH x OW. */
static padded fwd_padded(const int k[3], const int s[3], const int d[3], int ODs, int OH, int OW, int rows) {
  padded p;
  p.D = (ODs - 1) * s[0] + (k[0] - 1) * d[0] + 1;
  p.H = ((int)round_up((size_t)OH, (size_t)rows) - 1) * s[1] + (k[1] - 1) * d[1] + 1;
  p.Wph = (int)round_up((size_t)OW, VW) + ((k[2] - 1) * d[2]) / s[2];
  p.SP = s[2];
  return p;
}

static size_t wt_size(int O, int C, int K3, int ob) { return round_up((size_t)O, (size_t)ob) * C * K3; }

/* Input channels per conv_bwd_data_s work-item: SW x OB float16 sums stay within 16 registers
 * (more spills, and PoCL then keeps per-work-item copies that overflowed a thread's stack). */
static int ob_strided(const vx_conv_geom *g) {
  int ob = ob_for(g->C), cap = 16 / g->s[2];
  while (ob > cap && ob > 1) ob /= 2;
  return ob;
}

static void fwd_options(const vx_conv_geom *g, const int s[3], int rows, int ob, char *buf, size_t len) {
  snprintf(buf, len, "-DKD=%d -DKH=%d -DKW=%d -DSD=%d -DSH=%d -DSW=%d -DDD=%d -DDH=%d -DDW=%d -DROWS=%d -DOB=%d",
           g->k[0], g->k[1], g->k[2], s[0], s[1], s[2], g->d[0], g->d[1], g->d[2], rows, ob);
}

static int all_stride_one(const vx_conv_geom *g) { return g->s[0] == 1 && g->s[1] == 1 && g->s[2] == 1; }

/* ---------------------------------------------------------------- slab planning
 * A pass needs 'fixed' floats plus cost(ODs) floats per sample for a slab of ODs output planes
 * (cost grows with ODs). Whole batch if it fits, else as many whole samples as fit, else the
 * deepest slab of one sample; Ns = 0 when not even one plane fits. */
typedef struct { int Ns, ODs; } slab;

typedef struct {
  int kind; /* 0: conv_fwd / conv_bwd_weights input, 1: conv_bwd_data_s gradient */
  int C;    /* channels padded */
  int k[3], s[3], d[3];
  int out[3]; /* the pass's output extent (OD x OH x OW) */
  int rows, ob;
  size_t extra_per_plane; /* e.g. the padded output gradient of the weight pass */
} slab_cost;

/* gradient rows needed by conv_bwd_data_s for dx rows [0, n) (a bound valid for any slab start) */
static int dq_bound(int n, int k, int s, int d) { return (n - 1 + (k - 1) * d) / s + 2; }

static int hq_rows(const vx_conv_geom *g) {
  int yq0 = floor_div(g->p[1] - (g->k[1] - 1) * g->d[1], g->s[1]);
  return floor_div(g->in[1] - 1 + g->p[1], g->s[1]) - yq0 + 1;
}

static int wq_len(const vx_conv_geom *g) {
  int jw = (int)round_up((size_t)((g->in[2] + g->s[2] - 1) / g->s[2]), VW);
  return jw + ((g->k[2] - 1) * g->d[2]) / g->s[2] + (g->s[2] - 1 + g->p[2]) / g->s[2];
}

static size_t slab_cost_of(const vx_conv_geom *g, const slab_cost *c, int ods) {
  if (c->kind == 1) return (size_t)c->C * dq_bound(ods, g->k[0], g->s[0], g->d[0]) * hq_rows(g) * wq_len(g);
  padded p = fwd_padded(c->k, c->s, c->d, ods, c->out[1], c->out[2], c->rows);
  return (size_t)c->C * pfloats(p) + c->extra_per_plane * ods;
}

static slab plan_slab(vx_context *ctx, const vx_conv_geom *g, const slab_cost *c, size_t fixed) {
  slab s = {0, 0};
  size_t budget = ctx->workspace_limit / sizeof(float);
  if (fixed >= budget) return s;
  size_t avail = budget - fixed, full = slab_cost_of(g, c, c->out[0]);
  if (full <= avail) {
    size_t ns = avail / full;
    s.Ns = ns > (size_t)g->N ? g->N : (int)ns;
    s.ODs = c->out[0];
    return s;
  }
  int lo = 0, hi = c->out[0]; /* the largest ods in [1, OD) with cost <= avail (0: none) */
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (slab_cost_of(g, c, mid) <= avail) lo = mid;
    else hi = mid - 1;
  }
  if (lo > 0) {
    s.Ns = 1;
    s.ODs = lo;
  }
  return s;
}

static slab_cost fwd_cost(const vx_conv_geom *g) {
  slab_cost c = {0};
  c.C = g->C;
  for (int i = 0; i < 3; i++) {
    c.k[i] = g->k[i];
    c.s[i] = g->s[i];
    c.d[i] = g->d[i];
    c.out[i] = g->out[i];
  }
  c.ob = ob_for(g->O);
  c.rows = rows_for(g->out[1], c.ob);
  return c;
}

/* The stride-1 data gradient as a forward conv: dy (O channels) -> dx extent. */
static slab_cost bwd_data1_cost(const vx_conv_geom *g) {
  slab_cost c = fwd_cost(g);
  c.C = g->O;
  for (int i = 0; i < 3; i++) c.out[i] = g->in[i];
  c.ob = ob_for(g->C);
  c.rows = rows_for(g->in[1], c.ob);
  return c;
}

static slab_cost bwd_data_s_cost(const vx_conv_geom *g) {
  slab_cost c = fwd_cost(g);
  c.kind = 1;
  c.ob = ob_strided(g);
  c.C = g->O;
  for (int i = 0; i < 3; i++) c.out[i] = g->in[i];
  return c;
}

static size_t part_chunks_cap(vx_context *ctx, const vx_conv_geom *g) {
  size_t count = (size_t)g->O * g->C * g->K3;
  size_t cap = ctx->workspace_limit / PART_FRACTION / sizeof(float) / count;
  size_t planes = (size_t)g->N * g->out[0];
  if (cap > planes) cap = planes;
  return cap ? cap : 1;
}

static slab_cost bwd_w_cost(const vx_conv_geom *g) {
  slab_cost c = fwd_cost(g);
  c.ob = ob_weights(g);
  c.rows = 1;
  if (g->out[2] % VW) c.extra_per_plane = (size_t)g->O * g->out[1] * round_up((size_t)g->out[2], VW);
  return c;
}

int vx_conv_direct_fits(vx_context *ctx, const vx_conv_geom *g, int which) {
  if (g->G != 1 || g->K3 > MAX_TAPS) return 0;
  for (int i = 0; i < 3; i++)
    if (g->s[i] > MAX_STRIDE) return 0;
  slab s;
  if (which == 0) {
    slab_cost c = fwd_cost(g);
    s = plan_slab(ctx, g, &c, wt_size(g->O, g->C, g->K3, c.ob));
  } else if (which == 1) {
    slab_cost c = all_stride_one(g) ? bwd_data1_cost(g) : bwd_data_s_cost(g);
    s = plan_slab(ctx, g, &c, wt_size(g->C, g->O, g->K3, c.ob));
  } else {
    slab_cost c = bwd_w_cost(g);
    s = plan_slab(ctx, g, &c, part_chunks_cap(ctx, g) * g->O * g->C * g->K3);
  }
  return s.Ns > 0;
}

/* ---------------------------------------------------------------- launches */
static vx_status pad(vx_context *ctx, cl_mem src, size_t soff, const int in[3], cl_mem dst, size_t doff, padded p,
                     int fz, int fy, int fx, int nplanes) {
  size_t gs[2] = {(size_t)p.H, (size_t)p.D * nplanes};
  vx_arg args[] = {VX_MEM(src), VX_INT(soff), VX_INT(in[0]), VX_INT(in[1]), VX_INT(in[2]), VX_MEM(dst),
                   VX_INT(doff), VX_INT(p.D),  VX_INT(p.H),  VX_INT(p.Wph), VX_INT(p.SP), VX_INT(fz),
                   VX_INT(fy),   VX_INT(fx),   VX_INT(nplanes)};
  return vx_launch(ctx, "conv_direct", "", "pad_general", 2, gs, NULL, args, VX_NARGS(args));
}

static vx_status reorder(vx_context *ctx, const char *opts, const vx_conv_geom *g, const vx_tensor *w, int O, int C,
                         int ob, int mode, cl_mem dst) {
  size_t n = wt_size(O, C, g->K3, ob);
  vx_arg args[] = {VX_MEM(w->buf), VX_INT(w->offset), VX_INT(O), VX_INT(C), VX_INT(mode), VX_MEM(dst), VX_INT(0)};
  return vx_launch(ctx, "conv_direct", opts, "reorder_weights", 1, &n, NULL, args, VX_NARGS(args));
}

/* out (+)= conv_fwd over src (Cin channels, extent in[3]) with the weights reordered at ws[0],
 * padded with fronts pf[3] (the conv's padding, or the data gradient's d(k-1) - p). */
static vx_status fwd_pass(vx_context *ctx, const vx_conv_geom *g, const char *opts, const slab_cost *c, slab sl,
                          size_t wt_n, cl_mem ws, const vx_tensor *src, int Cin, const int in[3], const int pf[3],
                          vx_tensor *out, int O, int accumulate) {
  vx_status st = VX_OK;
  size_t S_in = (size_t)in[0] * in[1] * in[2], S_out = (size_t)c->out[0] * c->out[1] * c->out[2];
  for (int n0 = 0; n0 < g->N && st == VX_OK; n0 += sl.Ns) {
    int ns = g->N - n0 < sl.Ns ? g->N - n0 : sl.Ns;
    for (int od0 = 0; od0 < c->out[0] && st == VX_OK; od0 += sl.ODs) {
      int ods = c->out[0] - od0 < sl.ODs ? c->out[0] - od0 : sl.ODs;
      padded p = fwd_padded(c->k, c->s, c->d, ods, c->out[1], c->out[2], c->rows);
      st = pad(ctx, src->buf, src->offset + (size_t)n0 * Cin * S_in, in, ws, wt_n, p, pf[0] - od0 * c->s[0], pf[1],
               pf[2], ns * Cin);
      size_t oblk = (size_t)(O + c->ob - 1) / c->ob;
      size_t gs[3] = {round_up((size_t)c->out[2], VW) / VW, ((size_t)c->out[1] + c->rows - 1) / c->rows,
                      (size_t)ns * oblk * ods};
      vx_arg args[] = {VX_MEM(ws),        VX_INT(wt_n),      VX_INT(Cin),       VX_INT(p.D),
                       VX_INT(p.H),       VX_INT(p.Wph),     VX_MEM(ws),        VX_INT(0),
                       VX_MEM(out->buf),  VX_INT(out->offset + (size_t)n0 * O * S_out), VX_INT(O),
                       VX_INT(c->out[0]), VX_INT(c->out[1]), VX_INT(c->out[2]), VX_INT(ods),
                       VX_INT(od0),       VX_INT(ns),        VX_INT(accumulate != 0)};
      if (st == VX_OK) st = vx_launch(ctx, "conv_direct", opts, "conv_fwd", 3, gs, NULL, args, VX_NARGS(args));
    }
  }
  return st;
}

vx_status vx_conv_direct_forward(vx_context *ctx, const vx_conv_geom *g, const vx_tensor *x, const vx_tensor *w,
                                 vx_tensor *y, int accumulate) {
  slab_cost c = fwd_cost(g);
  size_t wt_n = wt_size(g->O, g->C, g->K3, c.ob);
  slab sl = plan_slab(ctx, g, &c, wt_n);
  if (sl.Ns == 0) return vx_fail(ctx, VX_ERR_OUT_OF_MEMORY, "direct conv: one padded plane exceeds the workspace");
  char opts[192];
  fwd_options(g, g->s, c.rows, c.ob, opts, sizeof opts);
  padded p = fwd_padded(c.k, c.s, c.d, sl.ODs, c.out[1], c.out[2], c.rows);
  cl_mem ws;
  vx_status st = vx_workspace(ctx, (wt_n + (size_t)sl.Ns * g->C * pfloats(p)) * sizeof(float), &ws);
  if (st == VX_OK) st = reorder(ctx, opts, g, w, g->O, g->C, c.ob, 0, ws);
  if (st == VX_OK) st = fwd_pass(ctx, g, opts, &c, sl, wt_n, ws, x, g->C, g->in, g->p, y, g->O, accumulate);
  return st;
}

/* Strided data gradient: the gather kernel over the gradient padded per slab of dx planes. */
static vx_status bwd_data_strided(vx_context *ctx, const vx_conv_geom *g, const vx_tensor *dy, const vx_tensor *w,
                                  vx_tensor *dx, int accumulate) {
  slab_cost c = bwd_data_s_cost(g);
  size_t wt_n = wt_size(g->C, g->O, g->K3, c.ob);
  slab sl = plan_slab(ctx, g, &c, wt_n);
  if (sl.Ns == 0) return vx_fail(ctx, VX_ERR_OUT_OF_MEMORY, "direct conv: one padded plane exceeds the workspace");
  char opts[256];
  snprintf(opts, sizeof opts,
           "-DKD=%d -DKH=%d -DKW=%d -DSD=%d -DSH=%d -DSW=%d -DPD=%d -DPH=%d -DPW=%d -DDD=%d -DDH=%d -DDW=%d -DOB=%d",
           g->k[0], g->k[1], g->k[2], g->s[0], g->s[1], g->s[2], g->p[0], g->p[1], g->p[2], g->d[0], g->d[1], g->d[2],
           c.ob);
  int yq0 = floor_div(g->p[1] - (g->k[1] - 1) * g->d[1], g->s[1]);
  int Hq = hq_rows(g), Wq = wq_len(g), fqw = ((g->k[2] - 1) * g->d[2]) / g->s[2];
  int ID = g->in[0], IH = g->in[1], IW = g->in[2];
  cl_mem ws;
  vx_status st = vx_workspace(ctx, (wt_n + slab_cost_of(g, &c, sl.ODs) * sl.Ns) * sizeof(float), &ws);
  if (st == VX_OK) st = reorder(ctx, opts, g, w, g->C, g->O, c.ob, 2, ws);
  for (int n0 = 0; n0 < g->N && st == VX_OK; n0 += sl.Ns) {
    int ns = g->N - n0 < sl.Ns ? g->N - n0 : sl.Ns;
    for (int iz0 = 0; iz0 < ID && st == VX_OK; iz0 += sl.ODs) {
      int ids = ID - iz0 < sl.ODs ? ID - iz0 : sl.ODs;
      int zq0 = floor_div(iz0 + g->p[0] - (g->k[0] - 1) * g->d[0], g->s[0]);
      int Dq = floor_div(iz0 + ids - 1 + g->p[0], g->s[0]) - zq0 + 1;
      padded p = {Dq, Hq, Wq, 1};
      st = pad(ctx, dy->buf, dy->offset + (size_t)n0 * g->O * g->S_out, g->out, ws, wt_n, p, -zq0, -yq0, fqw,
               ns * g->O);
      size_t cblk = (size_t)(g->C + c.ob - 1) / c.ob;
      size_t gs[3] = {round_up((size_t)((IW + g->s[2] - 1) / g->s[2]), VW) / VW, (size_t)IH, (size_t)ns * cblk * ids};
      vx_arg args[] = {VX_MEM(ws),      VX_INT(wt_n), VX_INT(g->O),  VX_INT(Dq),   VX_INT(Hq),
                       VX_INT(Wq),      VX_MEM(ws),   VX_INT(0),     VX_MEM(dx->buf),
                       VX_INT(dx->offset + (size_t)n0 * g->C * g->S_in), VX_INT(g->C), VX_INT(ID), VX_INT(IH),
                       VX_INT(IW),      VX_INT(ids),  VX_INT(iz0),   VX_INT(zq0),  VX_INT(yq0),
                       VX_INT(ns),      VX_INT(accumulate != 0)};
      if (st == VX_OK) st = vx_launch(ctx, "conv_direct", opts, "conv_bwd_data_s", 3, gs, NULL, args, VX_NARGS(args));
    }
  }
  return st;
}

vx_status vx_conv_direct_backward_data(vx_context *ctx, const vx_conv_geom *g, const vx_tensor *dy,
                                       const vx_tensor *w, vx_tensor *dx, int accumulate) {
  if (!all_stride_one(g)) return bwd_data_strided(ctx, g, dy, w, dx, accumulate);
  /* dx[i] = sum_k dy[i + p - k*d] w[k]: a stride-1 conv of dy padded by d(k-1) - p (a crop when
   * negative; zeros past dy cover a transposed conv's output_padding) with flipped weights */
  slab_cost c = bwd_data1_cost(g);
  size_t wt_n = wt_size(g->C, g->O, g->K3, c.ob);
  slab sl = plan_slab(ctx, g, &c, wt_n);
  if (sl.Ns == 0) return vx_fail(ctx, VX_ERR_OUT_OF_MEMORY, "direct conv: one padded plane exceeds the workspace");
  char opts[192];
  fwd_options(g, g->s, c.rows, c.ob, opts, sizeof opts);
  padded p = fwd_padded(c.k, c.s, c.d, sl.ODs, c.out[1], c.out[2], c.rows);
  int front[3];
  for (int i = 0; i < 3; i++) front[i] = g->d[i] * (g->k[i] - 1) - g->p[i];
  cl_mem ws;
  vx_status st = vx_workspace(ctx, (wt_n + (size_t)sl.Ns * g->O * pfloats(p)) * sizeof(float), &ws);
  if (st == VX_OK) st = reorder(ctx, opts, g, w, g->C, g->O, c.ob, 1, ws);
  if (st == VX_OK) st = fwd_pass(ctx, g, opts, &c, sl, wt_n, ws, dy, g->O, g->out, front, dx, g->C, accumulate);
  return st;
}

vx_status vx_conv_direct_backward_weights(vx_context *ctx, const vx_conv_geom *g, const vx_tensor *x,
                                          const vx_tensor *dy, vx_tensor *dw, int accumulate) {
  slab_cost c = bwd_w_cost(g);
  size_t count = (size_t)g->O * g->C * g->K3, cap = part_chunks_cap(ctx, g);
  size_t part_n = cap * count;
  slab sl = plan_slab(ctx, g, &c, part_n);
  if (sl.Ns == 0) return vx_fail(ctx, VX_ERR_OUT_OF_MEMORY, "direct conv: one padded plane exceeds the workspace");
  char opts[192];
  fwd_options(g, g->s, c.rows, c.ob, opts, sizeof opts);
  int OD = g->out[0], OH = g->out[1], OW = g->out[2], owv = (int)round_up((size_t)OW, VW);
  padded pmax = fwd_padded(c.k, c.s, c.d, sl.ODs, OH, OW, c.rows);
  size_t xp_n = (size_t)sl.Ns * g->C * pfloats(pmax), dyp_n = (size_t)sl.Ns * sl.ODs * c.extra_per_plane;
  cl_mem ws;
  vx_status st = vx_workspace(ctx, (part_n + xp_n + dyp_n) * sizeof(float), &ws);
  int first = 1;
  for (int n0 = 0; n0 < g->N && st == VX_OK; n0 += sl.Ns) {
    int ns = g->N - n0 < sl.Ns ? g->N - n0 : sl.Ns;
    for (int od0 = 0; od0 < OD && st == VX_OK; od0 += sl.ODs, first = 0) {
      int ods = OD - od0 < sl.ODs ? OD - od0 : sl.ODs, T = ns * ods;
      padded p = fwd_padded(c.k, c.s, c.d, ods, OH, OW, c.rows);
      st = pad(ctx, x->buf, x->offset + (size_t)n0 * g->C * g->S_in, g->in, ws, part_n, p, g->p[0] - od0 * g->s[0],
               g->p[1], g->p[2], ns * g->C);
      cl_mem dyb = dy->buf;
      size_t dyoff = dy->offset + (size_t)n0 * g->O * g->S_out;
      int dyOD = OD, dyod0 = od0;
      if (st == VX_OK && c.extra_per_plane) {
        /* rows of a whole number of vectors, zeros past OW, so the kernel needs no tail code */
        padded a = {ods, OH, owv, 1};
        st = pad(ctx, dy->buf, dyoff, g->out, ws, part_n + xp_n, a, -od0, 0, 0, ns * g->O);
        dyb = ws;
        dyoff = part_n + xp_n;
        dyOD = ods;
        dyod0 = 0;
      }
      /* chunks of about PLANES_PER_CHUNK depth planes (the gradient rows of a chunk stay in cache
       * while the work-items of all (c, kd, kh) read them), more when there are few work-items */
      size_t items = (size_t)g->C * g->k[0] * g->k[1] * (size_t)((g->O + c.ob - 1) / c.ob);
      size_t want = ((size_t)T + PLANES_PER_CHUNK - 1) / PLANES_PER_CHUNK;
      if (want < (BWD_W_ITEMS + items - 1) / items) want = (BWD_W_ITEMS + items - 1) / items;
      if (want > cap) want = cap;
      if (want > (size_t)T) want = (size_t)T;
      int nchunk = (int)want, tpc = (T + nchunk - 1) / nchunk;
      nchunk = (T + tpc - 1) / tpc;
      size_t gs[3] = {(size_t)g->C * g->k[0] * g->k[1], (size_t)(g->O + c.ob - 1) / c.ob, (size_t)nchunk};
      vx_arg args[] = {VX_MEM(ws),   VX_INT(part_n), VX_INT(g->C),  VX_INT(p.D),  VX_INT(p.H),   VX_INT(p.Wph),
                       VX_MEM(dyb),  VX_INT(dyoff),  VX_INT(g->O),  VX_INT(dyOD), VX_INT(dyod0), VX_INT(OH),
                       VX_INT(owv),  VX_INT(ods),    VX_INT(ns),    VX_INT(tpc),  VX_MEM(ws),    VX_INT(0)};
      if (st == VX_OK) st = vx_launch(ctx, "conv_direct", opts, "conv_bwd_weights", 3, gs, NULL, args, VX_NARGS(args));
      vx_arg rargs[] = {VX_MEM(ws),      VX_INT(0),          VX_INT(nchunk), VX_INT(count),
                        VX_MEM(dw->buf), VX_INT(dw->offset), VX_INT(accumulate || !first)};
      if (st == VX_OK) st = vx_launch(ctx, "conv_direct", "", "sum_partials", 1, &count, NULL, rargs, VX_NARGS(rargs));
    }
  }
  return st;
}
