/* test_ops_research: the research layers of voxcl (masked-region normalisation, 3D squeeze /
 * unsqueeze, Cayley-orthogonal down/up sampling and channel mixing) on every OpenCL device,
 * against the double-precision references in tests/ref/ref_research.c.
 *
 *   test_ops_research [-d P:D|gpu|cpu|NAME] [-o OP[,OP...]] [--small] [-v]
 *
 * Ops: masked_norm, squeeze, ortho_down, ortho_mix. Conventions as tests/test_ops.c:
 *   - forward against the reference: |dev - ref| <= atol + rtol * |ref|;
 *   - every backward (incl. the mask gradient and the gradient to W through the Cayley map)
 *     against central finite differences of the double reference of L = sum(r .* f(inputs));
 *   - accumulate = 1 adds to what the output held; a second backward is bitwise identical;
 *   - inverse(forward(x)) == x to 1e-5 relative (+ 1e-6 absolute) in float32;
 *   - bad arguments (odd spatial sizes, class-count mismatch, wrong parameter sizes) are refused
 *     with a status, a message naming the problem, and the output untouched;
 *   - N = 1 and 2, odd spatial sizes where the op allows them, views at odd offsets.
 * One line per failed check, then "N passed, M failed"; exit 1 on failure, 77 without a device. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ref/ref_ops.h"
#include "ref/ref_research.h"
#include "voxcl.h"

/* ---------------------------------------------------------------- tolerances
 * Masked norm: values O(1) built from float sums of <= ~500 weighted terms (mean, variance)
 * and K products per output; gradients are sums of the same size. The error seen is ~1e-6;
 * 2e-5 forward and 1e-4 for the gradients leave room on any device. */
#define MN_FWD_ATOL 2e-5
#define MN_FWD_RTOL 2e-5
#define MN_ATOL 1e-4
#define MN_RTOL 1e-4
/* Squeeze is a permutation: exact. The finite-difference check of its backward only carries the
 * reference's roundoff (~1e-14). */
#define SQ_FD_ATOL 1e-8
#define SQ_FD_RTOL 1e-6
/* Orthogonal transforms: Q is rounded to float (2^-24 per entry) and each output is a float sum
 * of 8 (or C <= 12) products of O(1) terms: error ~1e-7. dL/dW comes from float sums over
 * N * blocks (<= ~1000 terms) finished in double on the host: ~1e-6 relative. */
#define OR_FWD_ATOL 1e-5
#define OR_FWD_RTOL 1e-5
#define OR_ATOL 1e-4
#define OR_RTOL 1e-4
/* Inverse exactness (the brief: 1e-5 relative in float32). */
#define INV_ATOL 1e-6
#define INV_RTOL 1e-5

/* ---------------------------------------------------------------- finite differences
 * Linear ops (squeeze, the orthogonal maps in x): any step is exact up to roundoff, h = 1e-2.
 * Masked norm: h = 1e-6 as instance norm in test_ops.c (truncation h^2 f''' < 1e-10).
 * W through Cayley: smooth; h = 1e-5 keeps truncation ~1e-10 and roundoff ~1e-10. */
#define FD_H_LINEAR 1e-2
#define FD_H_NORM 1e-6
#define FD_H_CAYLEY 1e-5

#include "ref/op_harness.h"


#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Checks that the context's message holds 'needle' (e.g. both class counts). */
static void check_message_has(tester *t, vx_context *ctx, const char *what, const char *needle) {
  const char *msg = vx_context_last_error(ctx);
  record(t, contains_nocase(msg, needle), what, "message \"%s\" should contain '%s'", msg, needle);
}

/* Checks dev after an accumulating call: it must equal prefill + first (the non-accumulating result). */
static void check_accumulated(tester *t, const char *what, const float *dev, const float *prefill,
                              const float *first, size_t n, double atol, double rtol) {
  double *r = sum_double(prefill, first, n);
  check_close(t, what, dev, r, NULL, n, atol, rtol);
  free(r);
}

/* ================================================================ masked norm */
typedef struct {
  int N, C, K, sp[3];
} mn_case;

typedef struct {
  int N, C, K;
  size_t S;
  double eps;
  double *x, *m, *g, *b, *r, *y;
} mn_state;

static double mn_loss(void *sv) {
  mn_state *s = sv;
  ref_masked_norm_forward(s->x, s->m, s->g, s->b, s->N, s->C, s->K, s->S, s->eps, s->y);
  return dot(s->r, s->y, (size_t)s->N * s->C * s->S);
}

/* Soft masks: softmax over k of uniform logits in [-2, 2] at every voxel. */
static float *rand_masks(tester *t, int N, int K, size_t S) {
  float *m = xmalloc((size_t)N * K * S * sizeof(float));
  double *l = xmalloc((size_t)K * sizeof(double));
  for (int n = 0; n < N; n++)
    for (size_t v = 0; v < S; v++) {
      double mx = -1e9, sum = 0.0;
      for (int k = 0; k < K; k++) { l[k] = rng_uniform(&t->rng, -2, 2); if (l[k] > mx) mx = l[k]; }
      for (int k = 0; k < K; k++) sum += (l[k] = exp(l[k] - mx));
      for (int k = 0; k < K; k++) m[((size_t)n * K + k) * S + v] = (float)(l[k] / sum);
    }
  free(l);
  return m;
}

static void run_mn_case(tester *t, const mn_case *mc, int views) {
  vx_context *ctx = t->ctx;
  int N = mc->N, C = mc->C, K = mc->K;
  int xs[5] = {N, C, mc->sp[0], mc->sp[1], mc->sp[2]}, ms[5] = {N, K, mc->sp[0], mc->sp[1], mc->sp[2]};
  int gs[5] = {K, C, 1, 1, 1}, ss[5] = {1, 1, 1, 1, N * K * C * 4};
  char b1[64];
  set_desc(t, "x%s K=%d%s", shape_str(xs, b1, sizeof b1), K, views ? " views" : "");
  size_t S = (size_t)mc->sp[0] * mc->sp[1] * mc->sp[2], nx = ref_numel(xs), nm = ref_numel(ms), ng = (size_t)K * C;
  float *xf = rand_floats(t, nx, -1, 1), *mf = rand_masks(t, N, K, S), *gf = rand_floats(t, ng, 0.5, 1.5);
  float *bf = rand_floats(t, ng, -0.5, 0.5), *rf = rand_floats(t, nx, -1, 1);
  float *px = rand_floats(t, nx, -1, 1), *pm = rand_floats(t, nm, -1, 1), *pg = rand_floats(t, ng, -1, 1),
        *pb = rand_floats(t, ng, -1, 1);
  const float eps = 1e-5f;
  mn_state s = {N, C, K, S, eps, to_double(xf, nx), to_double(mf, nm), to_double(gf, ng), to_double(bf, ng),
                to_double(rf, nx), xmalloc(nx * sizeof(double))};
  float *y_dev = NULL, *dx1 = NULL, *dm1 = NULL, *dg1 = NULL, *db1 = NULL, *h = NULL;
  tensor_set ts;
  ts_init(&ts, t, ctx, views);
  vx_tensor *x, *m, *g, *b, *y, *save, *dy, *dx, *dm, *dg, *db;
  NEED(x = ts_new(&ts, xs, xf));
  NEED(m = ts_new(&ts, ms, mf));
  NEED(g = ts_new(&ts, gs, gf));
  NEED(b = ts_new(&ts, gs, bf));
  NEED(y = ts_new(&ts, xs, NULL));
  NEED(save = ts_new(&ts, ss, NULL));
  NEED(dy = ts_new(&ts, xs, rf));
  NEED(dx = ts_new(&ts, xs, NULL));
  NEED(dm = ts_new(&ts, ms, NULL));
  NEED(dg = ts_new(&ts, gs, NULL));
  NEED(db = ts_new(&ts, gs, NULL));

  TRY("forward", vx_masked_norm_forward(ctx, x, m, g, b, eps, y, save));
  NEED(y_dev = fetch(t, ctx, y));
  mn_loss(&s);
  check_close(t, "forward y", y_dev, s.y, NULL, nx, MN_FWD_ATOL, MN_FWD_RTOL);

  TRY("backward", vx_masked_norm_backward(ctx, x, m, dy, g, b, save, eps, dx, dg, db, dm, 0));
  NEED(dx1 = fetch(t, ctx, dx));
  NEED(dm1 = fetch(t, ctx, dm));
  NEED(dg1 = fetch(t, ctx, dg));
  NEED(db1 = fetch(t, ctx, db));
  fd_check(t, "backward dx", mn_loss, &s, s.x, nx, dx1, FD_H_NORM, MN_ATOL, MN_RTOL);
  fd_check(t, "backward dm (mask gradient)", mn_loss, &s, s.m, nm, dm1, FD_H_NORM, MN_ATOL, MN_RTOL);
  fd_check(t, "backward dgamma", mn_loss, &s, s.g, ng, dg1, FD_H_NORM, MN_ATOL, MN_RTOL);
  fd_check(t, "backward dbeta", mn_loss, &s, s.b, ng, db1, FD_H_NORM, MN_ATOL, MN_RTOL);

  /* determinism: the same call again */
  TRY("backward (again)", vx_masked_norm_backward(ctx, x, m, dy, g, b, save, eps, dx, dg, db, dm, 0));
  NEED(h = fetch(t, ctx, dx)); check_bitwise(t, "dx deterministic", dx1, h, nx); free(h);
  NEED(h = fetch(t, ctx, dm)); check_bitwise(t, "dm deterministic", dm1, h, nm); free(h);
  NEED(h = fetch(t, ctx, dg)); check_bitwise(t, "dgamma deterministic", dg1, h, ng); free(h);
  h = NULL;
  /* without the optional outputs dx is the same */
  TRY("fill", vx_tensor_fill(dm, SENTINEL));
  TRY("backward (dx only)", vx_masked_norm_backward(ctx, x, m, dy, g, b, save, eps, dx, NULL, NULL, NULL, 0));
  NEED(h = fetch(t, ctx, dx)); check_bitwise(t, "dx without dm, dgamma, dbeta", dx1, h, nx); free(h);
  NEED(h = fetch(t, ctx, dm));
  {
    int untouched = 1;
    for (size_t i = 0; i < nm; i++) untouched &= h[i] == SENTINEL;
    record(t, untouched, "dm = NULL leaves the mask gradient alone", "%s", untouched ? "ok" : "written");
  }
  free(h);
  h = NULL;

  /* accumulate */
  TRY("upload", vx_tensor_upload(dx, px));
  TRY("upload", vx_tensor_upload(dm, pm));
  TRY("upload", vx_tensor_upload(dg, pg));
  TRY("upload", vx_tensor_upload(db, pb));
  TRY("backward (accumulate)", vx_masked_norm_backward(ctx, x, m, dy, g, b, save, eps, dx, dg, db, dm, 1));
  NEED(h = fetch(t, ctx, dx)); check_accumulated(t, "dx accumulate", h, px, dx1, nx, MN_ATOL, MN_RTOL); free(h);
  NEED(h = fetch(t, ctx, dm)); check_accumulated(t, "dm accumulate", h, pm, dm1, nm, MN_ATOL, MN_RTOL); free(h);
  NEED(h = fetch(t, ctx, dg)); check_accumulated(t, "dgamma accumulate", h, pg, dg1, ng, MN_ATOL, MN_RTOL); free(h);
  NEED(h = fetch(t, ctx, db)); check_accumulated(t, "dbeta accumulate", h, pb, db1, ng, MN_ATOL, MN_RTOL); free(h);
  h = NULL;
done:
  ts_free(&ts);
  free(xf); free(mf); free(gf); free(bf); free(rf); free(px); free(pm); free(pg); free(pb);
  free(s.x); free(s.m); free(s.g); free(s.b); free(s.r); free(s.y);
  free(y_dev); free(dx1); free(dm1); free(dg1); free(db1); free(h);
}

static void mn_refusals(tester *t) {
  vx_context *ctx = t->ctx;
  set_desc(t, "bad arguments");
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  int xs[5] = {2, 3, 2, 3, 4}, ms[5] = {2, 4, 2, 3, 4}, gs[5] = {4, 3, 1, 1, 1}, g5[5] = {5, 3, 1, 1, 1};
  int mbad[5] = {2, 4, 2, 3, 5}, ss[5] = {1, 1, 1, 1, 2 * 4 * 3 * 4}, ssmall[5] = {1, 1, 1, 1, 10};
  vx_tensor *x, *m, *g, *b, *g_5, *b_5, *mb, *y, *save, *sv_small, *dx, *dmb;
  NEED(x = ts_new(&ts, xs, NULL)); TRY("fill", vx_tensor_fill(x, 0.5f));
  NEED(m = ts_new(&ts, ms, NULL)); TRY("fill", vx_tensor_fill(m, 0.25f));
  NEED(g = ts_new(&ts, gs, NULL)); TRY("fill", vx_tensor_fill(g, 1.0f));
  NEED(b = ts_new(&ts, gs, NULL)); TRY("fill", vx_tensor_fill(b, 0.0f));
  NEED(g_5 = ts_new(&ts, g5, NULL)); TRY("fill", vx_tensor_fill(g_5, 1.0f));
  NEED(b_5 = ts_new(&ts, g5, NULL)); TRY("fill", vx_tensor_fill(b_5, 0.0f));
  NEED(mb = ts_new(&ts, mbad, NULL)); TRY("fill", vx_tensor_fill(mb, 0.25f));
  NEED(save = ts_new(&ts, ss, NULL)); TRY("fill", vx_tensor_fill(save, 1.0f));
  NEED(sv_small = ts_new(&ts, ssmall, NULL));
  NEED(y = sentinel_tensor(&ts, xs));
  NEED(dx = sentinel_tensor(&ts, xs));
  NEED(dmb = sentinel_tensor(&ts, mbad));
  CHECK_REFUSED("mask classes != gamma classes", vx_masked_norm_forward(ctx, x, m, g_5, b_5, 1e-5f, y, save),
                VX_ERR_SHAPE, "classes", y);
  check_message_has(t, ctx, "message names the mask's class count", "4 classes");
  check_message_has(t, ctx, "message names gamma's class count", "gamma has 5");
  CHECK_REFUSED("mask classes != gamma classes (backward)",
                vx_masked_norm_backward(ctx, x, m, y, g_5, b_5, save, 1e-5f, dx, NULL, NULL, NULL, 0), VX_ERR_SHAPE,
                "classes", dx);
  CHECK_REFUSED("mask spatial shape", vx_masked_norm_forward(ctx, x, mb, g, b, 1e-5f, y, save), VX_ERR_SHAPE,
                "mask", y);
  CHECK_REFUSED("eps = 0", vx_masked_norm_forward(ctx, x, m, g, b, 0.0f, y, save), VX_ERR_INVALID_ARGUMENT, "eps",
                y);
  CHECK_REFUSED("save too small", vx_masked_norm_forward(ctx, x, m, g, b, 1e-5f, y, sv_small), VX_ERR_SHAPE,
                "save", y);
  CHECK_REFUSED("dm of the wrong shape",
                vx_masked_norm_backward(ctx, x, m, y, g, b, save, 1e-5f, dx, NULL, NULL, dmb, 0), VX_ERR_SHAPE,
                "dm", dx);
done:
  ts_free(&ts);
}

static void test_masked_norm(tester *t) {
  static const mn_case full[] = {
      {2, 3, 3, {5, 7, 6}}, {1, 4, 2, {8, 8, 8}}, {2, 2, 4, {1, 9, 11}}, {1, 1, 1, {3, 1, 2}}, /* K=1, S < WG */
  };
  static const mn_case small[] = {{2, 2, 3, {3, 4, 5}}, {1, 3, 2, {2, 3, 3}}};
  const mn_case *cases = t->small ? small : full;
  size_t n = t->small ? COUNT(small) : COUNT(full);
  for (size_t i = 0; i < n; i++) run_mn_case(t, &cases[i], 0);
  run_mn_case(t, &cases[0], 1);
  mn_refusals(t);
}

/* ================================================================ squeeze / unsqueeze */
typedef struct {
  int N, C, D, H, W, unsq; /* unsq: the op under test is unsqueeze (input coarse) */
  double *in, *r, *out;
  size_t n;
} sq_state;

static double sq_loss(void *sv) {
  sq_state *s = sv;
  if (s->unsq) ref_unsqueeze3d(s->in, s->N, s->C, s->D, s->H, s->W, s->out);
  else ref_squeeze3d(s->in, s->N, s->C, s->D, s->H, s->W, s->out);
  return dot(s->r, s->out, s->n);
}

static void run_sq_case(tester *t, const int fs[5], int views) {
  vx_context *ctx = t->ctx;
  int cs[5] = {fs[0], 8 * fs[1], fs[2] / 2, fs[3] / 2, fs[4] / 2};
  char b1[64];
  set_desc(t, "x%s%s", shape_str(fs, b1, sizeof b1), views ? " views" : "");
  size_t n = ref_numel(fs);
  float *xf = rand_floats(t, n, -1, 1), *yf = rand_floats(t, n, -1, 1), *rf = rand_floats(t, n, -1, 1);
  float *rc = rand_floats(t, n, -1, 1), *pf = rand_floats(t, n, -1, 1);
  float *h = NULL, *d1 = NULL, *d2 = NULL;
  sq_state sf = {fs[0], fs[1], fs[2], fs[3], fs[4], 0, to_double(xf, n), to_double(rc, n), xmalloc(n * 8), n};
  sq_state su = {fs[0], fs[1], fs[2], fs[3], fs[4], 1, to_double(yf, n), to_double(rf, n), xmalloc(n * 8), n};
  tensor_set ts;
  ts_init(&ts, t, ctx, views);
  vx_tensor *x, *yc, *xr, *y2, *dyc, *dyf, *dx;
  NEED(x = ts_new(&ts, fs, xf));
  NEED(yc = ts_new(&ts, cs, NULL));
  NEED(xr = ts_new(&ts, fs, NULL));
  NEED(y2 = ts_new(&ts, cs, yf));
  NEED(dyc = ts_new(&ts, cs, rc));
  NEED(dyf = ts_new(&ts, fs, rf));
  NEED(dx = ts_new(&ts, fs, NULL));

  TRY("squeeze forward", vx_squeeze3d_forward(ctx, x, yc));
  NEED(h = fetch(t, ctx, yc));
  sq_loss(&sf);
  check_close(t, "squeeze forward (exact)", h, sf.out, NULL, n, 0.0, 0.0);
  free(h);
  TRY("unsqueeze forward", vx_unsqueeze3d_forward(ctx, yc, xr));
  NEED(h = fetch(t, ctx, xr));
  check_bitwise(t, "unsqueeze(squeeze(x)) == x", xf, h, n);
  free(h);
  TRY("unsqueeze forward", vx_unsqueeze3d_forward(ctx, y2, xr));
  NEED(h = fetch(t, ctx, xr));
  sq_loss(&su);
  check_close(t, "unsqueeze forward (exact)", h, su.out, NULL, n, 0.0, 0.0);
  free(h);
  h = NULL;

  /* backwards against finite differences; then accumulate and determinism */
  TRY("squeeze backward", vx_squeeze3d_backward(ctx, dyc, dx, 0));
  NEED(d1 = fetch(t, ctx, dx));
  fd_check(t, "squeeze backward dx", sq_loss, &sf, sf.in, n, d1, FD_H_LINEAR, SQ_FD_ATOL, SQ_FD_RTOL);
  TRY("squeeze backward (again)", vx_squeeze3d_backward(ctx, dyc, dx, 0));
  NEED(h = fetch(t, ctx, dx)); check_bitwise(t, "squeeze backward deterministic", d1, h, n); free(h); h = NULL;
  TRY("upload", vx_tensor_upload(dx, pf));
  TRY("squeeze backward (accumulate)", vx_squeeze3d_backward(ctx, dyc, dx, 1));
  NEED(h = fetch(t, ctx, dx)); check_accumulated(t, "squeeze backward accumulate", h, pf, d1, n, 0.0, 1e-7);
  free(h); h = NULL;

  TRY("unsqueeze backward", vx_unsqueeze3d_backward(ctx, dyf, yc, 0));
  NEED(d2 = fetch(t, ctx, yc));
  fd_check(t, "unsqueeze backward dx", sq_loss, &su, su.in, n, d2, FD_H_LINEAR, SQ_FD_ATOL, SQ_FD_RTOL);
  TRY("upload", vx_tensor_upload(yc, pf));
  TRY("unsqueeze backward (accumulate)", vx_unsqueeze3d_backward(ctx, dyf, yc, 1));
  NEED(h = fetch(t, ctx, yc)); check_accumulated(t, "unsqueeze backward accumulate", h, pf, d2, n, 0.0, 1e-7);
done:
  ts_free(&ts);
  free(xf); free(yf); free(rf); free(rc); free(pf); free(h); free(d1); free(d2);
  free(sf.in); free(sf.r); free(sf.out); free(su.in); free(su.r); free(su.out);
}

static void sq_refusals(tester *t) {
  vx_context *ctx = t->ctx;
  set_desc(t, "bad arguments");
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  int odd[5] = {1, 2, 3, 4, 4}, oddc[5] = {1, 16, 1, 2, 2}, fs[5] = {1, 2, 2, 4, 4}, cbad[5] = {1, 8, 1, 2, 2};
  vx_tensor *x, *yo, *xf, *yb, *dx;
  NEED(x = ts_new(&ts, odd, NULL)); TRY("fill", vx_tensor_fill(x, 1.0f));
  NEED(yo = sentinel_tensor(&ts, oddc));
  NEED(xf = ts_new(&ts, fs, NULL)); TRY("fill", vx_tensor_fill(xf, 1.0f));
  NEED(yb = sentinel_tensor(&ts, cbad));
  NEED(dx = sentinel_tensor(&ts, odd));
  CHECK_REFUSED("odd depth", vx_squeeze3d_forward(ctx, x, yo), VX_ERR_SHAPE, "even", yo);
  check_message_has(t, ctx, "odd-size message says to pad", "pad");
  CHECK_REFUSED("odd depth (unsqueeze)", vx_unsqueeze3d_forward(ctx, yo, dx), VX_ERR_SHAPE, "even", dx);
  CHECK_REFUSED("output channels not 8C", vx_squeeze3d_forward(ctx, xf, yb), VX_ERR_SHAPE, "output", yb);
  CHECK_REFUSED("odd size (backward)", vx_squeeze3d_backward(ctx, yo, dx, 0), VX_ERR_SHAPE, "even", dx);
done:
  ts_free(&ts);
}

static void test_squeeze(tester *t) {
  static const int full[][5] = {{1, 1, 2, 2, 2}, {2, 3, 4, 6, 8}, {1, 2, 8, 8, 8}, {2, 1, 2, 10, 4}};
  static const int small[][5] = {{1, 1, 2, 2, 2}, {2, 2, 2, 4, 6}};
  size_t n = t->small ? COUNT(small) : COUNT(full);
  for (size_t i = 0; i < n; i++) run_sq_case(t, t->small ? small[i] : full[i], 0);
  run_sq_case(t, t->small ? small[1] : full[1], 1);
  sq_refusals(t);
}

/* ================================================================ orthogonal down/up sampling and mixing */
typedef struct {
  int mix, inverse, haar;
  int N, C, D, H, W; /* the fine (down) or only (mix) activation shape */
  double *in, *w, *r, *out, *q;
  size_t nin, nw;
} or_state;

static void or_ref(or_state *s) {
  if (s->mix) {
    ref_cayley(s->w, s->C, 0, s->q);
    ref_mix(s->in, s->N, s->C, (size_t)s->D * s->H * s->W, s->q, s->inverse, s->out);
    return;
  }
  for (int c = 0; c < s->C; c++) ref_cayley(s->w + c * 64, 8, s->haar, s->q + c * 64);
  if (s->inverse) ref_ortho_up(s->in, s->N, s->C, s->D, s->H, s->W, s->q, s->out);
  else ref_ortho_down(s->in, s->N, s->C, s->D, s->H, s->W, s->q, s->out);
}

static double or_loss(void *sv) {
  or_state *s = sv;
  or_ref(s);
  return dot(s->r, s->out, s->nin);
}

static vx_status or_forward(vx_context *ctx, const or_state *s, int inverse, const vx_tensor *in, const vx_tensor *w,
                            vx_tensor *out) {
  vx_ortho_base base = s->haar ? VX_ORTHO_BASE_HAAR : VX_ORTHO_BASE_IDENTITY;
  if (s->mix) return inverse ? vx_orthogonal_mix_inverse(ctx, in, w, out) : vx_orthogonal_mix_forward(ctx, in, w, out);
  return inverse ? vx_orthogonal_down3d_inverse(ctx, in, w, base, out)
                 : vx_orthogonal_down3d_forward(ctx, in, w, base, out);
}

static vx_status or_backward(vx_context *ctx, const or_state *s, const vx_tensor *in, const vx_tensor *w,
                             const vx_tensor *g, vx_tensor *din, vx_tensor *dw, int acc) {
  vx_ortho_base base = s->haar ? VX_ORTHO_BASE_HAAR : VX_ORTHO_BASE_IDENTITY;
  if (s->mix)
    return s->inverse ? vx_orthogonal_mix_inverse_backward(ctx, in, w, g, din, dw, acc)
                      : vx_orthogonal_mix_backward(ctx, in, w, g, din, dw, acc);
  return s->inverse ? vx_orthogonal_down3d_inverse_backward(ctx, in, w, base, g, din, dw, acc)
                    : vx_orthogonal_down3d_backward(ctx, in, w, base, g, din, dw, acc);
}

/* fs: the fine / mix activation shape; wscale: W uniform in [-wscale, wscale]. */
static void run_or_case(tester *t, int mix, int inverse, int haar, const int fs[5], double wscale, int views) {
  vx_context *ctx = t->ctx;
  int C = fs[1];
  int cs[5] = {fs[0], 8 * C, fs[2] / 2, fs[3] / 2, fs[4] / 2};
  const int *is = mix || !inverse ? fs : cs, *os = mix || inverse ? fs : cs;
  int ws[5] = {C, mix ? C : 8, mix ? 1 : 8, 1, 1};
  char b1[64];
  set_desc(t, "%s %s x%s base %s W in +-%g%s", mix ? "mix" : "down3d", inverse ? "inverse" : "forward",
           shape_str(fs, b1, sizeof b1), haar ? "haar" : "identity", wscale, views ? " views" : "");
  size_t n = ref_numel(fs), nw = ref_numel(ws);
  float *inf = rand_floats(t, n, -1, 1), *wf = rand_floats(t, nw, -wscale, wscale), *rf = rand_floats(t, n, -1, 1);
  float *pin = rand_floats(t, n, -1, 1), *pw = rand_floats(t, nw, -1, 1);
  or_state s = {mix, inverse, haar, fs[0], C, fs[2], fs[3], fs[4], to_double(inf, n), to_double(wf, nw),
                to_double(rf, n), xmalloc(n * sizeof(double)), xmalloc(nw * sizeof(double)), n, nw};
  float *h = NULL, *din1 = NULL, *dw1 = NULL;
  tensor_set ts;
  ts_init(&ts, t, ctx, views);
  vx_tensor *in, *w, *out, *back, *g, *din, *dw;
  NEED(in = ts_new(&ts, is, inf));
  NEED(w = ts_new(&ts, ws, wf));
  NEED(out = ts_new(&ts, os, NULL));
  NEED(back = ts_new(&ts, is, NULL));
  NEED(g = ts_new(&ts, os, rf));
  NEED(din = ts_new(&ts, is, NULL));
  NEED(dw = ts_new(&ts, ws, NULL));

  TRY("forward", or_forward(ctx, &s, inverse, in, w, out));
  NEED(h = fetch(t, ctx, out));
  or_ref(&s);
  check_close(t, "forward", h, s.out, NULL, n, OR_FWD_ATOL, OR_FWD_RTOL);
  free(h);
  h = NULL;
  /* the other direction undoes it */
  TRY("the other direction", or_forward(ctx, &s, !inverse, out, w, back));
  NEED(h = fetch(t, ctx, back));
  {
    double *e = to_double(inf, n);
    check_close(t, "inverse exactness: other(this(x)) == x", h, e, NULL, n, INV_ATOL, INV_RTOL);
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) { num += (h[i] - e[i]) * (h[i] - e[i]); den += e[i] * e[i]; }
    double rel = sqrt(num / den);
    record(t, rel <= INV_RTOL, "inverse exactness (norm)", "||other(this(x)) - x|| / ||x|| = %.3g (limit %g)", rel,
           INV_RTOL);
    free(e);
  }
  free(h);
  h = NULL;

  TRY("backward", or_backward(ctx, &s, in, w, g, din, dw, 0));
  NEED(din1 = fetch(t, ctx, din));
  NEED(dw1 = fetch(t, ctx, dw));
  fd_check(t, "backward d(input)", or_loss, &s, s.in, n, din1, FD_H_LINEAR, OR_ATOL, OR_RTOL);
  fd_check(t, "backward dW (through Cayley)", or_loss, &s, s.w, nw, dw1, FD_H_CAYLEY, OR_ATOL, OR_RTOL);
  TRY("backward (again)", or_backward(ctx, &s, in, w, g, din, dw, 0));
  NEED(h = fetch(t, ctx, din)); check_bitwise(t, "d(input) deterministic", din1, h, n); free(h);
  NEED(h = fetch(t, ctx, dw)); check_bitwise(t, "dW deterministic", dw1, h, nw); free(h);
  h = NULL;
  TRY("upload", vx_tensor_upload(din, pin));
  TRY("upload", vx_tensor_upload(dw, pw));
  TRY("backward (accumulate)", or_backward(ctx, &s, in, w, g, din, dw, 1));
  NEED(h = fetch(t, ctx, din)); check_accumulated(t, "d(input) accumulate", h, pin, din1, n, OR_ATOL, OR_RTOL); free(h);
  NEED(h = fetch(t, ctx, dw)); check_accumulated(t, "dW accumulate", h, pw, dw1, nw, OR_ATOL, OR_RTOL); free(h);
  h = NULL;
  /* only one of the two gradients */
  TRY("backward (dW only)", or_backward(ctx, &s, in, w, g, NULL, dw, 0));
  NEED(h = fetch(t, ctx, dw)); check_bitwise(t, "dW alone == dW with d(input)", dw1, h, nw); free(h);
  h = NULL;
done:
  ts_free(&ts);
  free(inf); free(wf); free(rf); free(pin); free(pw); free(h); free(din1); free(dw1);
  free(s.in); free(s.w); free(s.r); free(s.out); free(s.q);
}

/* W = 0 with the identity base is exactly the squeeze. */
static void or_identity_is_squeeze(tester *t, const int fs[5]) {
  vx_context *ctx = t->ctx;
  char b1[64];
  set_desc(t, "down3d W = 0, identity base, x%s", shape_str(fs, b1, sizeof b1));
  int cs[5] = {fs[0], 8 * fs[1], fs[2] / 2, fs[3] / 2, fs[4] / 2}, ws[5] = {fs[1], 8, 8, 1, 1};
  size_t n = ref_numel(fs);
  float *xf = rand_floats(t, n, -1, 1), *a = NULL, *b = NULL;
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  vx_tensor *x, *w, *y1, *y2;
  NEED(x = ts_new(&ts, fs, xf));
  NEED(w = ts_new(&ts, ws, NULL));
  TRY("fill", vx_tensor_fill(w, 0.0f));
  NEED(y1 = ts_new(&ts, cs, NULL));
  NEED(y2 = ts_new(&ts, cs, NULL));
  TRY("down3d", vx_orthogonal_down3d_forward(ctx, x, w, VX_ORTHO_BASE_IDENTITY, y1));
  TRY("squeeze", vx_squeeze3d_forward(ctx, x, y2));
  NEED(a = fetch(t, ctx, y1));
  NEED(b = fetch(t, ctx, y2));
  check_bitwise(t, "down3d(W = 0) == squeeze", a, b, n);
done:
  ts_free(&ts);
  free(xf); free(a); free(b);
}

/* vx_cayley_orthogonal against the reference, and Q^T Q = I. */
static void or_cayley_helper(tester *t, int n, int haar) {
  set_desc(t, "vx_cayley_orthogonal n=%d base %s", n, haar ? "haar" : "identity");
  size_t nn = (size_t)n * n;
  float *wf = rand_floats(t, nn, -1, 1), *q = xmalloc(nn * sizeof(float));
  double *w = to_double(wf, nn), *qr = xmalloc(nn * sizeof(double)), *eye = xmalloc(nn * sizeof(double));
  float *qtq = xmalloc(nn * sizeof(float));
  vx_status st = vx_cayley_orthogonal(wf, n, haar ? VX_ORTHO_BASE_HAAR : VX_ORTHO_BASE_IDENTITY, q);
  if (record(t, st == VX_OK, "call", "%s", vx_status_string(st))) {
    ref_cayley(w, n, haar, qr);
    check_close(t, "Q", q, qr, NULL, nn, 1e-6, 1e-6);
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        double s = 0.0;
        for (int k = 0; k < n; k++) s += (double)q[k * n + i] * q[k * n + j];
        qtq[i * n + j] = (float)s;
        eye[i * n + j] = i == j;
      }
    check_close(t, "Q^T Q = I", qtq, eye, NULL, nn, 1e-6, 0.0);
  }
  free(wf); free(q); free(w); free(qr); free(eye); free(qtq);
}

static void or_refusals(tester *t) {
  vx_context *ctx = t->ctx;
  set_desc(t, "bad arguments");
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  int fodd[5] = {1, 2, 2, 3, 4}, codd[5] = {1, 16, 1, 1, 2}, fs[5] = {1, 2, 2, 2, 4}, cs[5] = {1, 16, 1, 1, 2};
  int ws[5] = {2, 8, 8, 1, 1}, wbad[5] = {3, 8, 8, 1, 1}, wm[5] = {2, 2, 1, 1, 1}, wmbad[5] = {3, 3, 1, 1, 1};
  vx_tensor *xo, *yo, *x, *y, *w, *wb, *w_m, *w_mb, *xm, *dx, *dwb;
  NEED(xo = ts_new(&ts, fodd, NULL)); TRY("fill", vx_tensor_fill(xo, 1.0f));
  NEED(yo = sentinel_tensor(&ts, codd));
  NEED(x = ts_new(&ts, fs, NULL)); TRY("fill", vx_tensor_fill(x, 1.0f));
  NEED(y = sentinel_tensor(&ts, cs));
  NEED(w = ts_new(&ts, ws, NULL)); TRY("fill", vx_tensor_fill(w, 0.0f));
  NEED(wb = ts_new(&ts, wbad, NULL)); TRY("fill", vx_tensor_fill(wb, 0.0f));
  NEED(w_m = ts_new(&ts, wm, NULL)); TRY("fill", vx_tensor_fill(w_m, 0.0f));
  NEED(w_mb = ts_new(&ts, wmbad, NULL)); TRY("fill", vx_tensor_fill(w_mb, 0.0f));
  NEED(xm = sentinel_tensor(&ts, fs));
  NEED(dx = sentinel_tensor(&ts, fs));
  NEED(dwb = sentinel_tensor(&ts, wbad));
  CHECK_REFUSED("odd spatial size", vx_orthogonal_down3d_forward(ctx, xo, w, VX_ORTHO_BASE_IDENTITY, yo),
                VX_ERR_SHAPE, "even", yo);
  check_message_has(t, ctx, "odd-size message says to pad", "pad");
  CHECK_REFUSED("w not [C, 8, 8]", vx_orthogonal_down3d_forward(ctx, x, wb, VX_ORTHO_BASE_HAAR, y), VX_ERR_SHAPE,
                "w has", y);
  CHECK_REFUSED("unknown base", vx_orthogonal_down3d_forward(ctx, x, w, (vx_ortho_base)7, y),
                VX_ERR_INVALID_ARGUMENT, "base", y);
  CHECK_REFUSED("w not [C, 8, 8] (inverse)", vx_orthogonal_down3d_inverse(ctx, y, wb, VX_ORTHO_BASE_IDENTITY, dx),
                VX_ERR_SHAPE, "w has", dx);
  CHECK_REFUSED("dw of the wrong size",
                vx_orthogonal_down3d_backward(ctx, x, w, VX_ORTHO_BASE_IDENTITY, y, dx, dwb, 0), VX_ERR_SHAPE, "dw",
                dx);
  CHECK_REFUSED("mix: w not [C, C]", vx_orthogonal_mix_forward(ctx, x, w_mb, xm), VX_ERR_SHAPE, "w has", xm);
  CHECK_REFUSED("mix: output shape", vx_orthogonal_mix_forward(ctx, x, w_m, y), VX_ERR_SHAPE, "output", y);
  {
    float wh[25] = {0}, q[25];
    vx_status st = vx_cayley_orthogonal(wh, 5, VX_ORTHO_BASE_HAAR, q);
    record(t, st == VX_ERR_INVALID_ARGUMENT, "Haar base needs n = 8", "status %s", vx_status_string(st));
  }
done:
  ts_free(&ts);
}

static void test_ortho_down(tester *t) {
  static const int full[][5] = {{1, 2, 4, 6, 8}, {2, 3, 2, 4, 6}, {2, 1, 2, 2, 2}};
  static const int small[][5] = {{1, 1, 2, 2, 4}, {2, 2, 2, 2, 2}};
  size_t n = t->small ? COUNT(small) : COUNT(full);
  for (size_t i = 0; i < n; i++) {
    const int *fs = t->small ? small[i] : full[i];
    for (int haar = 0; haar < 2; haar++)
      for (int inverse = 0; inverse < 2; inverse++) run_or_case(t, 0, inverse, haar, fs, 0.5, 0);
  }
  const int *fs = t->small ? small[0] : full[0];
  run_or_case(t, 0, 0, 1, fs, 0.0, 0); /* W = 0, Haar: the plain Haar transform */
  run_or_case(t, 0, 0, 0, fs, 0.5, 1);
  or_identity_is_squeeze(t, fs);
  or_cayley_helper(t, 8, 0);
  or_cayley_helper(t, 8, 1);
  or_refusals(t);
}

static void test_ortho_mix(tester *t) {
  static const int full[][5] = {{1, 4, 3, 5, 7}, {2, 12, 2, 3, 4}, {2, 1, 1, 2, 3}, {1, 6, 8, 8, 8}};
  static const int small[][5] = {{1, 3, 2, 3, 3}, {2, 5, 1, 2, 3}};
  size_t n = t->small ? COUNT(small) : COUNT(full);
  for (size_t i = 0; i < n; i++)
    for (int inverse = 0; inverse < 2; inverse++)
      run_or_case(t, 1, inverse, 0, t->small ? small[i] : full[i], 0.5, 0);
  run_or_case(t, 1, 0, 0, t->small ? small[0] : full[0], 0.5, 1);
  or_cayley_helper(t, 5, 0);
  or_cayley_helper(t, 12, 0);
}

/* ================================================================ driver */
static const op_entry k_ops[] = {
    {"masked_norm", test_masked_norm}, {"squeeze", test_squeeze}, {"ortho_down", test_ortho_down},
    {"ortho_mix", test_ortho_mix},
};

int main(int argc, char **argv) {
  return op_test_main(argc, argv, "test_ops_research", k_ops, sizeof k_ops / sizeof k_ops[0], 0x5eed0000ULL, 0);
}
