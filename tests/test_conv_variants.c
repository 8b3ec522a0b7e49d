/* test_conv_variants: every convolution algorithm of voxcl, forced one at a time with
 * VOXCL_CONV_ALGO, against a double-precision reference and against the im2col + GEMM path.
 *
 *   test_conv_variants [-d P:D|gpu|cpu|NAME] [--small] [-v]
 *
 * Algorithms: "gemm" (im2col + CLBlast), "direct" (kernels/conv_direct.cl), "depthwise"
 * (kernels/conv_depthwise.cl) and the default heuristic ("auto"). For every case and algorithm,
 * on every device:
 *   - forward (with and without bias), data gradient and weight gradient (+ bias gradient)
 *     against a plain double loop, |dev - ref| <= tol * (1 + |ref|), tol scaled by the number
 *     of terms summed;
 *   - the same against the GEMM path's float results;
 *   - accumulate = 1 adds to what the gradient held;
 *   - each pass run twice gives bitwise identical results (no atomics, fixed reduction order);
 *   - where a case says the forced algorithm applies, its kernels (and no GEMM) ran for that
 *     pass, seen through VOXCL_PROFILE's per-kernel table; so a silent fallback is a failure.
 * Cases cover odd sizes, W not a multiple of 16, channels not a multiple of 8, padding 0..3,
 * dilation 2, stride 2, N = 2, transposed convolutions with output padding, and a second
 * context with a small workspace that forces the slab paths. Tensors are views at odd offsets.
 * One line per failure (all lines with -v), then "N passed, M failed"; exit 1 on any failure,
 * 77 when there is no OpenCL device. --small keeps to shapes Oclgrind runs in a few minutes. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref_ops.h"
#include "voxcl.h"

/* Base tolerance: float32 sums of O(1) products have errors ~ sqrt(n) 2^-24 typically and
 * n 2^-24 at worst; 1e-4 covers n up to ~1500 at worst. Scaled up linearly beyond that. */
#define BASE_TOL 1e-4
#define BASE_TERMS 1500.0

enum { A_AUTO, A_GEMM, A_DIRECT, A_DEPTHWISE, A_COUNT };
static const char *k_algo_env[A_COUNT] = {NULL, "gemm", "direct", "depthwise"};
static const char *k_algo_name[A_COUNT] = {"auto", "gemm", "direct", "depthwise"};
/* Which forced algorithms must run their own kernels, per pass (forward, data, weights). */
#define E_DIRECT (1u << A_DIRECT)
#define E_DW (1u << A_DEPTHWISE)

typedef struct {
  const char *what;
  int tr; /* 1: conv_transpose3d */
  int N, C, O; /* the op's input and output channels */
  int in[3], k[3], s[3], p[3], d[3], op[3];
  int G, bias;
  unsigned expect[3];
  unsigned slab_expect; /* forced algorithms that must still run in the small-workspace context */
} vcase;

#define V3(a) {a, a, a}
/* conv: N, C, O, D, H, W, k, s, p, dil, groups, bias, expect-all-passes */
#define CV(what, N, C, O, D, H, W, K, S, P, DL, G, B, E) \
  {what, 0, N, C, O, {D, H, W}, V3(K), V3(S), V3(P), V3(DL), V3(0), G, B, {E, E, E}, 0}
#define CT(what, N, C, O, D, H, W, K, S, P, DL, OP, G, B, E) \
  {what, 1, N, C, O, {D, H, W}, V3(K), V3(S), V3(P), V3(DL), V3(OP), G, B, {E, E, E}, 0}
/* the same, with the algorithms that must also run in slabs in the small-workspace context */
#define CVS(what, N, C, O, D, H, W, K, S, P, DL, G, B, E, SE) \
  {what, 0, N, C, O, {D, H, W}, V3(K), V3(S), V3(P), V3(DL), V3(0), G, B, {E, E, E}, SE}

static const vcase k_full[] = {
    CVS("depthwise k3 p1, N2, W tail", 2, 5, 5, 9, 7, 21, 3, 1, 1, 1, 5, 1, E_DW, E_DW),
    CV("depthwise k7 p3, W 17", 1, 3, 3, 8, 9, 17, 7, 1, 3, 1, 3, 0, E_DW),
    CV("depthwise k5 p2 dilation 2", 2, 4, 4, 7, 10, 19, 5, 1, 2, 2, 4, 1, E_DW),
    CV("depthwise k3 p0 dilation 2", 1, 6, 6, 6, 7, 33, 3, 1, 0, 2, 6, 0, E_DW),
    CV("depthwise k3 p3 (padding past the span)", 1, 3, 3, 4, 5, 6, 3, 1, 3, 1, 3, 1, E_DW),
    CV("depthwise k7 p3 48-like", 1, 9, 9, 10, 11, 48, 7, 1, 3, 1, 9, 0, E_DW),
    {"depthwise per-axis k(3,5,1) p(1,0,2) d(2,1,1)", 0, 2, 3, 3, {7, 8, 18}, {3, 5, 1}, V3(1), {1, 0, 2},
     {2, 1, 1}, V3(0), 3, 1, {E_DW, E_DW, E_DW}, 0},
    CV("depthwise stride 2 (GEMM only)", 1, 4, 4, 7, 6, 9, 3, 2, 1, 1, 4, 0, 0),
    CVS("conv k3 p1, N2, W tail, O 5", 2, 3, 5, 9, 7, 21, 3, 1, 1, 1, 1, 1, E_DIRECT, E_DIRECT),
    CV("conv k3 p0, C 11, O 9", 1, 11, 9, 5, 6, 17, 3, 1, 0, 1, 1, 0, E_DIRECT),
    CV("conv k3 p2", 1, 3, 10, 5, 6, 33, 3, 1, 2, 1, 1, 1, E_DIRECT),
    CV("conv k3 p3 (padding past the span)", 1, 3, 4, 4, 5, 6, 3, 1, 3, 1, 1, 0, E_DIRECT),
    CV("conv k3 dilation 2 p2", 2, 4, 3, 7, 8, 19, 3, 1, 2, 2, 1, 1, E_DIRECT),
    CV("conv k5 p1", 1, 2, 3, 6, 7, 20, 5, 1, 1, 1, 1, 0, E_DIRECT),
    CV("conv groups 2 (GEMM only)", 2, 4, 6, 5, 7, 6, 3, 1, 1, 1, 2, 1, 0),
    CVS("conv k3 s2 p1", 2, 3, 5, 9, 8, 21, 3, 2, 1, 1, 1, 1, E_DIRECT, E_DIRECT),
    CV("conv k2 s2 p0", 2, 5, 3, 8, 6, 34, 2, 2, 0, 1, 1, 0, E_DIRECT),
    CV("conv k3 s2 p0 odd", 1, 3, 9, 7, 9, 19, 3, 2, 0, 1, 1, 1, E_DIRECT),
    {"conv per-axis stride (1,2,3) k(3,2,3) p(1,0,2) d(1,1,2)", 0, 2, 3, 4, {6, 7, 40}, {3, 2, 3}, {1, 2, 3}, {1, 0, 2},
     {1, 1, 2}, V3(0), 1, 1, {E_DIRECT, E_DIRECT, E_DIRECT}, 0},
    CV("conv k3 s2 p3 d2", 1, 2, 3, 9, 6, 23, 3, 2, 3, 2, 1, 0, E_DIRECT),
    CV("conv k3 s2 p1, C 17, O 19 (full channel blocks)", 1, 17, 19, 5, 6, 37, 3, 2, 1, 1, 1, 1, E_DIRECT),
    CT("convT k2 s2, C 18, O 17", 1, 18, 17, 3, 4, 9, 2, 2, 0, 1, 0, 1, 0, E_DIRECT),
    CT("convT k2 s2", 2, 5, 3, 4, 3, 17, 2, 2, 0, 1, 0, 1, 1, E_DIRECT),
    CT("convT k3 s2 p1 output_padding 1", 1, 3, 4, 4, 5, 9, 3, 2, 1, 1, 1, 1, 0, E_DIRECT),
    CT("convT k3 s1 p1", 2, 3, 5, 6, 5, 19, 3, 1, 1, 1, 0, 1, 1, E_DIRECT),
    CT("convT k3 s1 p2 d2 output_padding 1", 1, 3, 4, 4, 5, 9, 3, 1, 2, 2, 1, 1, 0, E_DIRECT),
    CT("convT depthwise k3 s1 p1", 2, 4, 4, 5, 6, 18, 3, 1, 1, 1, 0, 4, 1, E_DW),
    {"convT depthwise k3 d2 p2 output_padding 1", 1, 1, 3, 3, {5, 4, 7}, V3(3), V3(1), V3(2), V3(2), V3(1), 3, 1,
     {E_DW, E_DW, E_DW}, 0},
};

static const vcase k_small[] = {
    CVS("depthwise k3 p1, N2, W tail", 2, 3, 3, 3, 4, 17, 3, 1, 1, 1, 3, 1, E_DW, E_DW),
    CV("depthwise k5 p2 dilation 2", 1, 2, 2, 5, 6, 9, 5, 1, 2, 2, 2, 0, E_DW),
    {"depthwise per-axis k(3,1,5) p(3,0,1)", 0, 1, 2, 2, {3, 3, 6}, {3, 1, 5}, V3(1), {3, 0, 1}, V3(1), V3(0), 2,
     1, {E_DW, E_DW, E_DW}, 0},
    CVS("conv k3 p1, N2, W tail", 2, 3, 9, 3, 4, 17, 3, 1, 1, 1, 1, 1, E_DIRECT, E_DIRECT),
    CV("conv k3 p0 dilation 2", 1, 2, 3, 5, 5, 6, 3, 1, 0, 2, 1, 0, E_DIRECT),
    CV("conv k3 s2 p1", 1, 2, 3, 5, 4, 9, 3, 2, 1, 1, 1, 1, E_DIRECT),
    CT("convT k2 s2", 2, 3, 2, 2, 3, 9, 2, 2, 0, 1, 0, 1, 1, E_DIRECT),
    CT("convT k2 s2, C 9, O 17", 1, 9, 17, 2, 2, 5, 2, 2, 0, 1, 0, 1, 0, E_DIRECT),
    CV("conv k3 s2, C 17, O 9", 1, 17, 9, 3, 3, 7, 3, 2, 1, 1, 1, 0, E_DIRECT),
    CT("convT depthwise k3 p1", 1, 2, 2, 3, 3, 5, 3, 1, 1, 1, 0, 2, 0, E_DW),
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
/* The small workspace: a padded plane of the first cases fits, their whole batch does not. */
#define SLAB_BUDGET (32 * 1024)

/* ---------------------------------------------------------------- the tester */
typedef struct {
  int verbose, passed, failed;
  int slab_ctx; /* the context with the small workspace */
  char dev[320], ctxname[32];
  const char *desc, *algo;
  uint64_t rng;
} tester;

static int record(tester *t, int ok, const char *what, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int record(tester *t, int ok, const char *what, const char *fmt, ...) {
  if (ok) t->passed++;
  else t->failed++;
  if (ok && !t->verbose) return ok;
  char detail[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  printf("%s conv_variants on %s [%s]: %s | algo %s | %s: %s\n", ok ? "ok  " : "FAIL", t->dev, t->ctxname, t->desc,
         t->algo, what, detail);
  return ok;
}

static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static float rng_float(uint64_t *s) { return (float)(-1.0 + 2.0 * (double)(rng_next(s) >> 11) / 9007199254740992.0); }

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p) {
    fprintf(stderr, "test_conv_variants: out of host memory\n");
    exit(2);
  }
  return p;
}

static size_t numel(const int s[5]) { return (size_t)s[0] * s[1] * s[2] * s[3] * s[4]; }

/* ---------------------------------------------------------------- the reference
 * The conv side of a case: xc [N, Cc, I] -> yc [N, Oc, Q] with weights [Oc, Cc/G, k]. A
 * transposed conv is the adjoint of the conv that maps its output to its input. */
typedef struct { int N, Cc, Oc, G, I[3], Q[3], k[3], s[3], p[3], d[3]; } conv_side;

/* Visits every (sample, out channel, in channel, output voxel, tap) with the input voxel in
 * range; mode 0: yc += x w, 1: dxc += dyc w, 2: dw += dyc x. */
static void ref_conv_side(const conv_side *g, int mode, const double *a, const double *b, double *out) {
  int Cg = g->Cc / g->G, Og = g->Oc / g->G;
  size_t SI = (size_t)g->I[0] * g->I[1] * g->I[2];
  size_t K3 = (size_t)g->k[0] * g->k[1] * g->k[2];
  for (int n = 0; n < g->N; n++)
    for (int o = 0; o < g->Oc; o++)
      for (int cg = 0; cg < Cg; cg++) {
        int c = (o / Og) * Cg + cg;
        for (int qz = 0; qz < g->Q[0]; qz++)
          for (int qy = 0; qy < g->Q[1]; qy++)
            for (int qx = 0; qx < g->Q[2]; qx++) {
              size_t qi = (((size_t)n * g->Oc + o) * g->Q[0] + qz) * g->Q[1] * g->Q[2] + (size_t)qy * g->Q[2] + qx;
              for (int kz = 0; kz < g->k[0]; kz++) {
                int iz = qz * g->s[0] - g->p[0] + kz * g->d[0];
                if (iz < 0 || iz >= g->I[0]) continue;
                for (int ky = 0; ky < g->k[1]; ky++) {
                  int iy = qy * g->s[1] - g->p[1] + ky * g->d[1];
                  if (iy < 0 || iy >= g->I[1]) continue;
                  for (int kx = 0; kx < g->k[2]; kx++) {
                    int ix = qx * g->s[2] - g->p[2] + kx * g->d[2];
                    if (ix < 0 || ix >= g->I[2]) continue;
                    size_t ii = ((size_t)n * g->Cc + c) * SI + ((size_t)iz * g->I[1] + iy) * g->I[2] + ix;
                    size_t wi = ((size_t)o * Cg + cg) * K3 + ((size_t)kz * g->k[1] + ky) * g->k[2] + kx;
                    if (mode == 0) out[qi] += a[ii] * b[wi];      /* a = x, b = w */
                    else if (mode == 1) out[ii] += a[qi] * b[wi]; /* a = dy, b = w */
                    else out[wi] += a[qi] * b[ii];                /* a = dy, b = x */
                  }
                }
              }
            }
      }
}

/* ---------------------------------------------------------------- device helpers */
typedef struct {
  vx_context *ctx;
  vx_tensor *arena;
  size_t used;
  vx_tensor *list[16];
  int count;
} tset;

/* A view at an odd offset of a shared arena, so every kernel sees non-zero offsets. */
static vx_tensor *tnew(tset *ts, const int shape[5]) {
  vx_tensor *x = NULL;
  ts->used += 3 + (ts->used % 2 == 0);
  if (vx_tensor_view(ts->arena, ts->used, shape, &x) != VX_OK) return NULL;
  ts->used += numel(shape);
  ts->list[ts->count++] = x;
  return x;
}

static void tfree(tset *ts) {
  for (int i = ts->count; i-- > 0;) vx_tensor_destroy(ts->list[i]);
  vx_tensor_destroy(ts->arena);
  memset(ts, 0, sizeof *ts);
}

static int upload(tester *t, vx_context *ctx, vx_tensor *x, const float *h) {
  vx_status st = vx_tensor_upload(x, h);
  if (st != VX_OK) record(t, 0, "upload", "%s: %s", vx_status_string(st), vx_context_last_error(ctx));
  return st == VX_OK;
}

static int download(tester *t, vx_context *ctx, const vx_tensor *x, float *h) {
  vx_status st = vx_tensor_download(x, h);
  if (st != VX_OK) record(t, 0, "download", "%s: %s", vx_status_string(st), vx_context_last_error(ctx));
  return st == VX_OK;
}

static void check_close(tester *t, const char *what, const float *dev, const double *ref, const double *add, size_t n,
                        double tol) {
  double worst = 0.0;
  size_t wi = 0;
  int ok = 1;
  for (size_t i = 0; i < n; i++) {
    double r = ref[i] + (add ? add[i] : 0.0), e = fabs((double)dev[i] - r), lim = tol * (1.0 + fabs(r));
    if (!(e <= lim)) ok = 0;
    double ratio = e / lim;
    if (!(ratio <= worst)) { worst = ratio; wi = i; }
  }
  record(t, ok, what, "worst error/limit %.3g at [%zu]: dev %.9g ref %.9g (tol %.2g, %zu values)", worst, wi,
         n ? (double)dev[wi] : 0.0, n ? ref[wi] + (add ? add[wi] : 0.0) : 0.0, tol, n);
}

static void check_float_close(tester *t, const char *what, const float *a, const float *b, size_t n, double tol) {
  double *bd = xcalloc(n, sizeof *bd);
  for (size_t i = 0; i < n; i++) bd[i] = b[i];
  check_close(t, what, a, bd, NULL, n, tol);
  free(bd);
}

static void check_bitwise(tester *t, const char *what, const float *a, const float *b, size_t n) {
  size_t diff = 0, first = 0;
  for (size_t i = n; i-- > 0;)
    if (memcmp(&a[i], &b[i], sizeof(float))) { diff++; first = i; }
  record(t, diff == 0, what, diff ? "%zu of %zu values differ between two runs, first [%zu]" : "%zu values identical",
         diff ? diff : n, n, first);
}

/* ---------------------------------------------------------------- which kernels ran
 * The profile table (VOXCL_PROFILE=1) counts calls per kernel name; a pass ran the kernels whose
 * count grew across it. */
#define MAX_NAMES 64
typedef struct { char name[48]; long calls; } kcount;
typedef struct { kcount k[MAX_NAMES]; int n; } kcounts;

static void snapshot(vx_context *ctx, kcounts *c) {
  static char buf[16384];
  vx_context_profile_report(ctx, buf, sizeof buf);
  c->n = 0;
  for (char *line = buf; line && *line && c->n < MAX_NAMES;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    char *calls = strstr(line, " calls");
    if (calls) {
      char *q = calls;
      while (q > line && q[-1] == ' ') q--;
      while (q > line && q[-1] >= '0' && q[-1] <= '9') q--;
      long v = strtol(q, NULL, 10);
      while (q > line && q[-1] == ' ') q--;
      size_t len = (size_t)(q - line) < sizeof c->k[0].name - 1 ? (size_t)(q - line) : sizeof c->k[0].name - 1;
      memcpy(c->k[c->n].name, line, len);
      c->k[c->n].name[len] = 0;
      c->k[c->n].calls = v;
      c->n++;
    }
    line = nl ? nl + 1 : NULL;
  }
}

static int family_of(const char *name) {
  if (!strncmp(name, "dw_", 3)) return A_DEPTHWISE;
  if (!strncmp(name, "sgemm", 5) || !strcmp(name, "im2col") || !strcmp(name, "col2im")) return A_GEMM;
  if (!strncmp(name, "conv_", 5)) return A_DIRECT;
  return -1; /* padding, reductions, bias: shared helpers */
}

/* Bitmask of the algorithm families whose kernels ran between a and b. */
static unsigned ran_between(const kcounts *a, const kcounts *b) {
  unsigned m = 0;
  for (int i = 0; i < b->n; i++) {
    long before = 0;
    for (int j = 0; j < a->n; j++)
      if (!strcmp(a->k[j].name, b->k[i].name)) before = a->k[j].calls;
    int f = family_of(b->k[i].name);
    if (b->k[i].calls > before && f >= 0) m |= 1u << f;
  }
  return m;
}

static void check_ran(tester *t, const char *pass, unsigned expect_mask, int algo, unsigned ran) {
  if (algo == A_AUTO) return;
  if (t->slab_ctx && algo == A_GEMM) return;
  char what[96];
  snprintf(what, sizeof what, "%s ran the %s kernels", pass, k_algo_name[algo]);
  if (algo == A_GEMM) {
    record(t, ran == (1u << A_GEMM), what, "families that ran: mask 0x%x", ran);
  } else if (expect_mask & (1u << algo)) {
    record(t, ran == (1u << algo), what, "families that ran: mask 0x%x (expected only 0x%x)", ran, 1u << algo);
  }
}

/* ---------------------------------------------------------------- one case */
typedef struct { float *y, *dx, *dw, *db; } results;

static void results_free(results *r) {
  free(r->y);
  free(r->dx);
  free(r->dw);
  free(r->db);
  memset(r, 0, sizeof *r);
}

static void set_algo(int algo) {
  if (k_algo_env[algo]) setenv("VOXCL_CONV_ALGO", k_algo_env[algo], 1);
  else unsetenv("VOXCL_CONV_ALGO");
}

/* Runs a case with one algorithm; keeps the results in *keep (when not NULL) and compares with
 * *gemm (when not NULL). */
static void run_case(tester *t, vx_context *ctx, const vcase *c, int algo, results *keep, const results *gemm) {
  t->algo = k_algo_name[algo];
  int xs[5] = {c->N, c->C, c->in[0], c->in[1], c->in[2]}, ws[5], ys[5] = {c->N, c->O, 0, 0, 0};
  ws[0] = c->tr ? c->C : c->O;
  ws[1] = c->tr ? c->O / c->G : c->C / c->G;
  for (int i = 0; i < 3; i++) {
    ws[2 + i] = c->k[i];
    int span = c->d[i] * (c->k[i] - 1) + 1;
    ys[2 + i] = c->tr ? (c->in[i] - 1) * c->s[i] - 2 * c->p[i] + span + c->op[i]
                      : (c->in[i] + 2 * c->p[i] - span) / c->s[i] + 1;
  }
  for (int i = 2; i < 5; i++)
    if (ys[i] <= 0) {
      record(t, 0, "case", "impossible geometry: output size %d along axis %d", ys[i], i - 2);
      return;
    }
  int bs[5] = {c->O, 1, 1, 1, 1};
  size_t nx = numel(xs), nw = numel(ws), ny = numel(ys), nb = (size_t)c->O;
  /* conv side */
  conv_side g;
  g.N = c->N;
  g.G = c->G;
  g.Cc = c->tr ? c->O : c->C;
  g.Oc = c->tr ? c->C : c->O;
  for (int i = 0; i < 3; i++) {
    g.I[i] = c->tr ? ys[2 + i] : xs[2 + i];
    g.Q[i] = c->tr ? xs[2 + i] : ys[2 + i];
    g.k[i] = c->k[i];
    g.s[i] = c->s[i];
    g.p[i] = c->p[i];
    g.d[i] = c->d[i];
  }
  /* host data: fixed per case (the rng restarts), so every algorithm sees the same values */
  uint64_t rng = t->rng;
  float *hx = xcalloc(nx, 4), *hw = xcalloc(nw, 4), *hb = xcalloc(nb, 4), *hdy = xcalloc(ny, 4);
  float *pdx = xcalloc(nx, 4), *pdw = xcalloc(nw, 4), *pdb = xcalloc(nb, 4);
  for (size_t i = 0; i < nx; i++) hx[i] = rng_float(&rng);
  for (size_t i = 0; i < nw; i++) hw[i] = rng_float(&rng);
  for (size_t i = 0; i < nb; i++) hb[i] = rng_float(&rng);
  for (size_t i = 0; i < ny; i++) hdy[i] = rng_float(&rng);
  for (size_t i = 0; i < nx; i++) pdx[i] = rng_float(&rng);
  for (size_t i = 0; i < nw; i++) pdw[i] = rng_float(&rng);
  for (size_t i = 0; i < nb; i++) pdb[i] = rng_float(&rng);
  double *dx_ = xcalloc(nx, 8), *dw_ = xcalloc(nw, 8), *db_ = xcalloc(nb, 8), *dy_ = xcalloc(ny, 8);
  double *rw = xcalloc(nw, 8), *rb = xcalloc(nb, 8), *ry = xcalloc(ny, 8), *rdx = xcalloc(nx, 8), *rdw = xcalloc(nw, 8),
         *rdb = xcalloc(nb, 8);
  double *px = xcalloc(nx, 8), *pw = xcalloc(nw, 8), *pb = xcalloc(nb, 8);
  for (size_t i = 0; i < nx; i++) { dx_[i] = hx[i]; px[i] = pdx[i]; }
  for (size_t i = 0; i < nw; i++) { rw[i] = hw[i]; pw[i] = pdw[i]; }
  for (size_t i = 0; i < nb; i++) { rb[i] = hb[i]; pb[i] = pdb[i]; }
  for (size_t i = 0; i < ny; i++) dy_[i] = hdy[i];
  ref_conv_params rp;
  memset(&rp, 0, sizeof rp);
  for (int i = 0; i < 3; i++) {
    rp.stride[i] = c->s[i];
    rp.padding[i] = c->p[i];
    rp.dilation[i] = c->d[i];
    rp.output_padding[i] = c->op[i];
  }
  rp.groups = c->G;
  if (c->tr) {
    ref_conv_transpose3d_forward(dx_, xs, rw, ws, c->bias ? rb : NULL, &rp, ry, ys);
    ref_conv_side(&g, 0, dy_, rw, rdx);  /* dx_T = conv forward of dy_T */
    ref_conv_side(&g, 2, dx_, dy_, rdw); /* dw = conv weight gradient with x_c = dy_T, dy_c = x_T */
  } else {
    ref_conv3d_forward(dx_, xs, rw, ws, c->bias ? rb : NULL, &rp, ry, ys);
    ref_conv_side(&g, 1, dy_, rw, rdx);
    ref_conv_side(&g, 2, dy_, dx_, rdw);
  }
  size_t S = (size_t)ys[2] * ys[3] * ys[4];
  for (int n = 0; n < c->N; n++)
    for (int o = 0; o < c->O; o++)
      for (size_t v = 0; v < S; v++) rdb[o] += dy_[((size_t)n * c->O + o) * S + v];
  /* terms per value: forward / data gradient ~ (C/G) k^3, weights ~ N * voxels */
  double k3 = (double)c->k[0] * c->k[1] * c->k[2];
  double terms_f = (double)(c->tr ? c->C : c->O) / c->G * k3 + 1;
  double terms_w = (double)c->N * (double)(c->tr ? (size_t)xs[2] * xs[3] * xs[4] : S);
  double tol_f = BASE_TOL * (terms_f > BASE_TERMS ? terms_f / BASE_TERMS : 1.0);
  double tol_w = BASE_TOL * (terms_w > BASE_TERMS ? terms_w / BASE_TERMS : 1.0);

  results r = {xcalloc(ny, 4), xcalloc(nx, 4), xcalloc(nw, 4), xcalloc(nb, 4)};
  float *again = xcalloc(nx > ny ? (nx > nw ? nx : nw) : (ny > nw ? ny : nw), 4);
  float *againb = xcalloc(nb, 4);
  tset ts = {.ctx = ctx};
  int arena_shape[5] = {1, 1, 1, 1, (int)(2 * (nx + nw + ny + nb) + 64)};
  vx_tensor *x, *w, *b, *y, *dy, *dx, *dw, *db;
  kcounts k0, k1;
  vx_status st = vx_tensor_create(ctx, arena_shape, &ts.arena);
  if (st != VX_OK) {
    record(t, 0, "setup", "arena: %s", vx_context_last_error(ctx));
    goto done;
  }
  x = tnew(&ts, xs);
  w = tnew(&ts, ws);
  b = tnew(&ts, bs);
  y = tnew(&ts, ys);
  dy = tnew(&ts, ys);
  dx = tnew(&ts, xs);
  dw = tnew(&ts, ws);
  db = tnew(&ts, bs);
  if (!x || !w || !b || !y || !dy || !dx || !dw || !db) {
    record(t, 0, "setup", "a tensor view failed");
    goto done;
  }
  if (!upload(t, ctx, x, hx) || !upload(t, ctx, w, hw) || !upload(t, ctx, b, hb) || !upload(t, ctx, dy, hdy)) goto done;
  vx_conv_params p;
  vx_conv_params_init(&p, 1, 0);
  for (int i = 0; i < 3; i++) {
    p.stride[i] = c->s[i];
    p.padding[i] = c->p[i];
    p.dilation[i] = c->d[i];
    p.output_padding[i] = c->op[i];
  }
  p.groups = c->G;
  set_algo(algo);

  /* forward, twice */
  for (int rep = 0; rep < 2; rep++) {
    snapshot(ctx, &k0);
    st = c->tr ? vx_conv_transpose3d_forward(ctx, x, w, c->bias ? b : NULL, &p, y)
               : vx_conv3d_forward(ctx, x, w, c->bias ? b : NULL, &p, y);
    if (st != VX_OK) {
      record(t, 0, "forward", "%s: %s", vx_status_string(st), vx_context_last_error(ctx));
      goto done;
    }
    if (!download(t, ctx, y, rep ? again : r.y)) goto done;
    snapshot(ctx, &k1);
    if (rep == 0) check_ran(t, "forward", t->slab_ctx ? c->slab_expect : c->expect[0], algo, ran_between(&k0, &k1));
  }
  check_close(t, "forward vs reference", r.y, ry, NULL, ny, tol_f);
  check_bitwise(t, "forward repeatable", r.y, again, ny);
  if (gemm) check_float_close(t, "forward vs gemm", r.y, gemm->y, ny, tol_f);

  /* data gradient: twice without accumulate, once with */
  for (int rep = 0; rep < 3; rep++) {
    if (rep == 2 && !upload(t, ctx, dx, pdx)) goto done;
    snapshot(ctx, &k0);
    st = c->tr ? vx_conv_transpose3d_backward_data(ctx, dy, w, &p, dx, rep == 2)
               : vx_conv3d_backward_data(ctx, dy, w, &p, dx, rep == 2);
    if (st != VX_OK) {
      record(t, 0, "backward data", "%s: %s", vx_status_string(st), vx_context_last_error(ctx));
      goto done;
    }
    if (!download(t, ctx, dx, rep == 0 ? r.dx : again)) goto done;
    snapshot(ctx, &k1);
    if (rep == 0)
      check_ran(t, "data gradient", t->slab_ctx ? c->slab_expect : c->expect[1], algo, ran_between(&k0, &k1));
    if (rep == 1) check_bitwise(t, "data gradient repeatable", r.dx, again, nx);
    if (rep == 2) check_close(t, "data gradient accumulate", again, rdx, px, nx, tol_f);
  }
  check_close(t, "data gradient vs reference", r.dx, rdx, NULL, nx, tol_f);
  if (gemm) check_float_close(t, "data gradient vs gemm", r.dx, gemm->dx, nx, tol_f);

  /* weight and bias gradient: the same three runs */
  for (int rep = 0; rep < 3; rep++) {
    if (rep == 2 && (!upload(t, ctx, dw, pdw) || !upload(t, ctx, db, pdb))) goto done;
    snapshot(ctx, &k0);
    st = c->tr ? vx_conv_transpose3d_backward_weights(ctx, x, dy, &p, dw, c->bias ? db : NULL, rep == 2)
               : vx_conv3d_backward_weights(ctx, x, dy, &p, dw, c->bias ? db : NULL, rep == 2);
    if (st != VX_OK) {
      record(t, 0, "backward weights", "%s: %s", vx_status_string(st), vx_context_last_error(ctx));
      goto done;
    }
    if (!download(t, ctx, dw, rep == 0 ? r.dw : again)) goto done;
    if (c->bias && !download(t, ctx, db, rep == 0 ? r.db : againb)) goto done;
    snapshot(ctx, &k1);
    if (rep == 0)
      check_ran(t, "weight gradient", t->slab_ctx ? c->slab_expect : c->expect[2], algo, ran_between(&k0, &k1));
    if (rep == 1) {
      check_bitwise(t, "weight gradient repeatable", r.dw, again, nw);
      if (c->bias) check_bitwise(t, "bias gradient repeatable", r.db, againb, nb);
    }
    if (rep == 2) {
      check_close(t, "weight gradient accumulate", again, rdw, pw, nw, tol_w);
      if (c->bias) check_close(t, "bias gradient accumulate", againb, rdb, pb, nb, tol_w);
    }
  }
  check_close(t, "weight gradient vs reference", r.dw, rdw, NULL, nw, tol_w);
  if (c->bias) check_close(t, "bias gradient vs reference", r.db, rdb, NULL, nb, tol_w);
  if (gemm) check_float_close(t, "weight gradient vs gemm", r.dw, gemm->dw, nw, tol_w);

done:
  unsetenv("VOXCL_CONV_ALGO");
  tfree(&ts);
  if (keep) *keep = r;
  else results_free(&r);
  free(again);
  free(againb);
  free(hx), free(hw), free(hb), free(hdy), free(pdx), free(pdw), free(pdb);
  free(dx_), free(dw_), free(db_), free(dy_), free(rw), free(rb), free(ry), free(rdx), free(rdw), free(rdb);
  free(px), free(pw), free(pb);
}

/* GEMM first (kept for the comparisons), then every other algorithm. */
static void run_all(tester *t, vx_context *ctx, const vcase *cases, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char desc[256];
    const vcase *c = &cases[i];
    snprintf(desc, sizeof desc, "%s: N%d %d->%d %dx%dx%d", c->what, c->N, c->C, c->O, c->in[0], c->in[1], c->in[2]);
    t->desc = desc;
    t->rng = 0xc0de0000ULL + i;
    results gemm = {0};
    run_case(t, ctx, c, A_GEMM, &gemm, NULL);
    for (int a = 0; a < A_COUNT; a++)
      if (a != A_GEMM) run_case(t, ctx, c, a, NULL, gemm.y ? &gemm : NULL);
    results_free(&gemm);
  }
}

static int contains_nocase(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] && (hay[i] | 32) == (needle[i] | 32)) i++;
    if (i == n) return 1;
  }
  return n == 0;
}

static int device_selected(const char *filter, const vx_device_info *d) {
  if (!filter || !*filter) return 1;
  int p, q;
  char extra;
  if (sscanf(filter, "%d:%d%c", &p, &q, &extra) == 2) return d->platform == p && d->device == q;
  if (!strcmp(filter, "gpu")) return d->is_gpu;
  if (!strcmp(filter, "cpu")) return d->is_cpu;
  return contains_nocase(d->name, filter);
}

int main(int argc, char **argv) {
  tester t;
  memset(&t, 0, sizeof t);
  int small = 0;
  const char *dev_filter = NULL;
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--small")) small = 1;
    else if (!strcmp(argv[i], "-v")) t.verbose = 1;
    else if (!strcmp(argv[i], "-d") && i + 1 < argc) dev_filter = argv[++i];
    else {
      printf("usage: test_conv_variants [-d P:D|gpu|cpu|NAME] [--small] [-v]\n");
      return 2;
    }
  }
  /* the per-kernel call counts tell which algorithm ran */
  setenv("VOXCL_PROFILE", "1", 1);
  vx_device_info *devs = NULL;
  int ndev = 0;
  char err[4096];
  if (vx_devices_list(&devs, &ndev, err, sizeof err) != VX_OK || ndev == 0) {
    printf("test_conv_variants: no OpenCL device\n0 passed, 0 failed\n");
    vx_free(devs);
    return 77;
  }
  const vcase *cases = small ? k_small : k_full;
  size_t ncases = small ? COUNT(k_small) : COUNT(k_full);
  for (int d = 0; d < ndev; d++) {
    if (!device_selected(dev_filter, &devs[d])) continue;
    char req[32];
    snprintf(req, sizeof req, "%d:%d", devs[d].platform, devs[d].device);
    snprintf(t.dev, sizeof t.dev, "%s %s", req, devs[d].name);
    printf("device %s%s\n", t.dev, small ? " [small shapes]" : "");
    /* the default workspace, then one small enough that the direct families work in slabs */
    size_t budgets[2] = {0, SLAB_BUDGET};
    for (int bi = 0; bi < 2; bi++) {
      vx_context_options o = {.device = req, .workspace_bytes = budgets[bi]};
      vx_context *ctx = NULL;
      snprintf(t.ctxname, sizeof t.ctxname, bi ? "32 KiB workspace" : "default workspace");
      t.slab_ctx = bi;
      if (vx_context_create(&o, &ctx, err, sizeof err) != VX_OK) {
        t.desc = "context";
        t.algo = "-";
        record(&t, 0, "vx_context_create", "%s", err);
        continue;
      }
      int p0 = t.passed, f0 = t.failed;
      run_all(&t, ctx, cases, ncases);
      printf("  %-20s %5d passed, %d failed\n", t.ctxname, t.passed - p0, t.failed - f0);
      vx_context_destroy(ctx);
    }
  }
  vx_free(devs);
  printf("%d passed, %d failed\n", t.passed, t.failed);
  return t.failed ? 1 : 0;
}
