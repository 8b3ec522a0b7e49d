/* test_dualnorm: DualNorm, AC-Norm and the DualNorm-UNet.
 *
 *   test_dualnorm [-d DEVICE] [--small] [-v]
 *
 * - DualNorm module (SPADE and masked modes, 3D and 1x3x3 kernels): forward against the double
 *   reference of tests/ref/ref_dualnorm.c, every backward (dx and each parameter) against central
 *   finite differences of that reference of L = sum(r .* y); masks with the wrong class count
 *   are refused with a message naming both counts.
 * - AC-Norm op: forward and S against the reference; dx, dgamma_t, dbeta_t against finite
 *   differences with S held constant (the stop-gradient), and farther from the derivative that
 *   would flow through S; accumulate adds; the folded batch norm gives the unfolded inference
 *   output; the layer score is C for identical affines.
 * - The network: two-pass training steps (3D, 2D with D = 1, masked mode), the loss falls, two
 *   runs are bitwise equal; AC-Norm conversion of a saved checkpoint, refusal of another
 *   architecture with nothing changed, AC-Corr score sanity.
 * Exit 1 on a failure, 77 without an OpenCL device. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "io/safetensors.h"
#include "nn/dualnorm.h"
#include "nn/model.h"
#include "ref/ref_dualnorm.h"
#include "ref/ref_ops.h"
#include "voxcl.h"

/* Float32 device results against double references: sums of a few hundred O(1) terms. */
#define FWD_ATOL 1e-4
#define FWD_RTOL 1e-4
#define GRAD_ATOL 3e-4
#define GRAD_RTOL 3e-3
/* Central differences of the double reference: truncation ~h^2, roundoff ~1e-16 / h. */
#define FD_H 1e-5

static int verbose, small;
static uint64_t rng = 12345;

static double urand(void) {
  rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
  return (double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static vx_tensor *tensor_of(vx_context *ctx, const int s[5], const double *v) {
  vx_tensor *t = NULL;
  if (vx_tensor_create(ctx, s, &t) != VX_OK) return NULL;
  if (v) {
    size_t n = ref_numel(s);
    float *f = malloc(n * sizeof *f);
    for (size_t i = 0; i < n; i++) f[i] = (float)v[i];
    vx_tensor_upload(t, f);
    free(f);
  }
  return t;
}

static double *download(const vx_tensor *t) {
  size_t n = vx_tensor_numel(t);
  float *f = malloc(n * sizeof *f);
  double *d = malloc(n * sizeof *d);
  vx_tensor_download(t, f);
  for (size_t i = 0; i < n; i++) d[i] = f[i];
  free(f);
  return d;
}

/* Random values rounded to float, so the reference sees what the device sees. */
static double *rand_vec(size_t n, double scale, double offset) {
  double *v = malloc(n * sizeof *v);
  for (size_t i = 0; i < n; i++) v[i] = (double)(float)(offset + scale * urand());
  return v;
}

/* max |a - b| and whether every element is within atol + rtol |b|. */
static int close_all(const float *a, const double *b, size_t n, double atol, double rtol, double *maxerr) {
  int ok = 1;
  *maxerr = 0;
  for (size_t i = 0; i < n; i++) {
    double e = fabs(a[i] - b[i]);
    if (!(e <= atol + rtol * fabs(b[i]))) ok = 0;
    if (!(e <= *maxerr)) *maxerr = e;
  }
  return ok;
}

static int closed(const double *a, const double *b, size_t n, double atol, double rtol, double *maxerr) {
  float *f = malloc(n * sizeof *f);
  for (size_t i = 0; i < n; i++) f[i] = (float)a[i];
  int ok = close_all(f, b, n, atol, rtol, maxerr);
  free(f);
  return ok;
}

static double dot(const double *a, const double *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

/* ---------------------------------------------------------------- DualNorm module */
typedef struct {
  int masked, flat, hidden;
  int xs[5], ms[5];
  const double *m, *r;
  double *p;                 /* all parameters, laid out as the parameter set */
  const vx_param_set *ps;
} dn_case;

static double dn_loss(const dn_case *c, const double *x) {
  size_t n = ref_numel(c->xs);
  double *y = malloc(n * sizeof *y);
  const vx_decl *d = c->ps->decl;
  if (c->masked)
    ref_dualnorm_masked(x, c->xs, c->m, c->ms, c->p + d[0].offset, c->p + d[1].offset, VX_DUALNORM_EPS, y);
  else
    ref_dualnorm_spade(x, c->xs, c->m, c->ms, c->hidden, c->flat, c->p + d[0].offset, c->p + d[1].offset,
                       c->p + d[2].offset, c->p + d[3].offset, c->p + d[4].offset, c->p + d[5].offset,
                       VX_DUALNORM_EPS, y);
  double l = dot(y, c->r, n);
  free(y);
  return l;
}

static void test_dualnorm_module(vx_context *ctx, int masked, int flat) {
  const char *what = masked ? (flat ? "dualnorm masked 2D" : "dualnorm masked") : (flat ? "dualnorm spade 2D" : "dualnorm spade");
  int N = 2, C = 4, K = 3;
  int xs[5] = {N, C, flat ? 1 : 3, 4, small ? 3 : 5}, ms[5] = {N, K, flat ? 1 : 2, 2, 3};
  vx_param_set *ps = calloc(1, sizeof *ps), *st = calloc(1, sizeof *st);
  vx_arena *ar = calloc(1, sizeof *ar);
  vx_params_init(ps, ctx, 7);
  vx_params_init(st, ctx, 8);
  vx_arena_init(ar, ctx);
  vx_dualnorm dn;
  vx_dualnorm_act a;
  vx_dualnorm_declare(&dn, ps, st, "encoder.0.dualnorm1", C, K, masked, flat);
  vx_dualnorm_declare_act(&dn, ar, &a, xs);
  vx_status s = vx_params_allocate(ps);
  if (s == VX_OK && st->n) s = vx_params_allocate(st);
  if (s == VX_OK) s = vx_arena_allocate(ar);
  CHECK(s == VX_OK, "%s: allocation: %s", what, vx_context_last_error(ctx));
  if (s != VX_OK) return;
  size_t nx = ref_numel(xs), nm = ref_numel(ms);
  double *x = rand_vec(nx, 1.5, 0.3), *m = rand_vec(nm, 0.5, 0.5), *r = rand_vec(nx, 1.0, 0.0);
  /* soft masks: positive, normalised over the classes */
  size_t Sm = (size_t)ms[2] * ms[3] * ms[4];
  for (int n = 0; n < N; n++)
    for (size_t v = 0; v < Sm; v++) {
      double z = 0;
      for (int k = 0; k < K; k++) z += m[((size_t)n * K + k) * Sm + v] = fabs(m[((size_t)n * K + k) * Sm + v]) + 0.05;
      for (int k = 0; k < K; k++) m[((size_t)n * K + k) * Sm + v] = (double)(float)(m[((size_t)n * K + k) * Sm + v] / z);
    }
  double *p = rand_vec(ps->count, 0.4, 0.0);
  if (masked)
    for (size_t i = 0; i < ps->decl[0].numel; i++) p[ps->decl[0].offset + i] += 1.0; /* gamma near 1 */
  {
    int fs[5] = {1, 1, 1, 1, (int)ps->count};
    vx_tensor *tmp = tensor_of(ctx, fs, p);
    vx_tensor_copy(ps->flat, tmp);
    vx_tensor_destroy(tmp);
  }
  vx_tensor *tx = tensor_of(ctx, xs, x), *tm = tensor_of(ctx, ms, m), *ty = tensor_of(ctx, xs, NULL);
  vx_tensor *tr = tensor_of(ctx, xs, r), *tdx = tensor_of(ctx, xs, NULL);
  dn_case c = {masked, flat, dn.hidden, {0}, {0}, m, r, p, ps};
  memcpy(c.xs, xs, sizeof xs);
  memcpy(c.ms, ms, sizeof ms);

  s = vx_dualnorm_forward(ctx, &dn, &a, tx, tm, 1, ty);
  CHECK(s == VX_OK, "%s forward: %s", what, vx_context_last_error(ctx));
  double *y = malloc(nx * sizeof *y), err;
  if (masked)
    ref_dualnorm_masked(x, xs, m, ms, p + ps->decl[0].offset, p + ps->decl[1].offset, VX_DUALNORM_EPS, y);
  else
    ref_dualnorm_spade(x, xs, m, ms, dn.hidden, flat, p + ps->decl[0].offset, p + ps->decl[1].offset,
                       p + ps->decl[2].offset, p + ps->decl[3].offset, p + ps->decl[4].offset, p + ps->decl[5].offset,
                       VX_DUALNORM_EPS, y);
  double *dy = download(ty);
  CHECK(closed(dy, y, nx, FWD_ATOL, FWD_RTOL, &err), "%s forward: max error %.3g", what, err);
  if (verbose) printf("%s forward: max error %.3g\n", what, err);
  free(dy);

  vx_tensor_fill(ps->flat_grad, 0.0f);
  vx_tensor_fill(tdx, 5.0f); /* accumulate = 0 must overwrite */
  s = vx_dualnorm_backward(ctx, &dn, &a, tx, tr, 1, tdx, 0);
  CHECK(s == VX_OK, "%s backward: %s", what, vx_context_last_error(ctx));
  double *gx = download(tdx), *gp = download(ps->flat_grad);
  /* finite differences of the reference */
  double *fx = malloc(nx * sizeof *fx), *fp = calloc(ps->count, sizeof *fp);
  for (size_t i = 0; i < nx; i++) {
    double o = x[i];
    x[i] = o + FD_H;
    double lp = dn_loss(&c, x);
    x[i] = o - FD_H;
    double lm = dn_loss(&c, x);
    x[i] = o;
    fx[i] = (lp - lm) / (2 * FD_H);
  }
  CHECK(closed(gx, fx, nx, GRAD_ATOL, GRAD_RTOL, &err), "%s dx vs finite differences: max error %.3g", what, err);
  if (verbose) printf("%s dx: max error %.3g\n", what, err);
  double worst = 0;
  int ok = 1;
  for (int d = 0; d < ps->n; d++) {
    const vx_decl *de = &ps->decl[d];
    for (size_t i = 0; i < de->numel; i++) {
      double *q = p + de->offset + i, o = *q;
      *q = o + FD_H;
      double lp = dn_loss(&c, x);
      *q = o - FD_H;
      double lm = dn_loss(&c, x);
      *q = o;
      fp[de->offset + i] = (lp - lm) / (2 * FD_H);
    }
    ok &= closed(gp + de->offset, fp + de->offset, de->numel, GRAD_ATOL, GRAD_RTOL, &err);
    if (!ok) printf("  %s: %s max error %.3g\n", what, de->name, err);
    if (err > worst) worst = err;
  }
  CHECK(ok, "%s parameter gradients vs finite differences: max error %.3g", what, worst);
  if (verbose) printf("%s parameter gradients: max error %.3g (%d tensors)\n", what, worst, ps->n);

  /* accumulate = 1 adds dx to what it held, parameter gradients always add */
  s = vx_dualnorm_backward(ctx, &dn, &a, tx, tr, 1, tdx, 1);
  double *gx2 = download(tdx), *gp2 = download(ps->flat_grad);
  for (size_t i = 0; i < nx; i++) gx[i] *= 2;
  for (size_t i = 0; i < ps->count; i++) gp[i] *= 2;
  CHECK(s == VX_OK && closed(gx2, gx, nx, 1e-6, 1e-5, &err), "%s dx accumulate: max error %.3g", what, err);
  CHECK(closed(gp2, gp, ps->count, 1e-6, 1e-5, &err), "%s parameter gradients add: max error %.3g", what, err);

  /* masks of another class count: refused, y untouched */
  int bad[5] = {N, K + 1, ms[2], ms[3], ms[4]};
  vx_tensor *tb = tensor_of(ctx, bad, NULL);
  vx_tensor_fill(tb, 0.25f);
  vx_tensor_fill(ty, 7.0f);
  s = vx_dualnorm_forward(ctx, &dn, &a, tx, tb, 1, ty);
  const char *msg = vx_context_last_error(ctx);
  CHECK(s == VX_ERR_SHAPE && strstr(msg, "4 classes") && strstr(msg, "expects 3"),
        "%s: masks with 4 classes for K = 3: status %d, message \"%s\"", what, s, msg);
  double *yu = download(ty);
  int untouched = 1;
  for (size_t i = 0; i < nx; i++) untouched &= yu[i] == 7.0;
  CHECK(untouched, "%s: a refused forward wrote y", what);
  if (verbose) printf("%s: refused: %s\n", what, msg);

  free(yu), free(gx2), free(gp2), free(fx), free(fp), free(gx), free(gp), free(y), free(x), free(m), free(r), free(p);
  vx_tensor_destroy(tx), vx_tensor_destroy(tm), vx_tensor_destroy(ty), vx_tensor_destroy(tr), vx_tensor_destroy(tdx);
  vx_tensor_destroy(tb);
  vx_arena_release(ar), vx_params_release(ps), vx_params_release(st);
  free(ar), free(ps), free(st);
}

/* ---------------------------------------------------------------- AC-Norm op */
static void test_acnorm(vx_context *ctx) {
  int N = 2, C = 5, xs[5] = {N, C, 2, 3, small ? 2 : 3}, cs[5] = {C, 1, 1, 1, 1};
  size_t nx = ref_numel(xs), S = nx / ((size_t)N * C);
  double *x = rand_vec(nx, 1.5, 0.2), *r = rand_vec(nx, 1.0, 0.0);
  double gs[5], bs[5], gt[5], bt[5], Sref[25];
  for (int c = 0; c < C; c++) {
    gs[c] = (float)(1.0 + 0.3 * urand());
    bs[c] = (float)(0.25 * c + 0.05 * urand()); /* sources ~0.25 apart */
    gt[c] = (float)(gs[c] + 0.2 * urand());
    bt[c] = (float)(bs[c] + 0.3 * urand());     /* targets moved: some rows find a closer source */
  }
  ref_acnorm_similarity(gs, bs, gt, bt, C, 1e-5, Sref);
  int off = 0;
  for (int i = 0; i < C; i++)
    for (int j = 0; j < C; j++) off += i != j && Sref[i * C + j] > 0;
  vx_tensor *tx = tensor_of(ctx, xs, x), *tr = tensor_of(ctx, xs, r), *ty = tensor_of(ctx, xs, NULL);
  vx_tensor *tdx = tensor_of(ctx, xs, NULL), *tgs = tensor_of(ctx, cs, gs), *tbs = tensor_of(ctx, cs, bs);
  vx_tensor *tgt = tensor_of(ctx, cs, gt), *tbt = tensor_of(ctx, cs, bt), *tdg = tensor_of(ctx, cs, NULL);
  vx_tensor *tdb = tensor_of(ctx, cs, NULL), *trm = tensor_of(ctx, cs, NULL), *trv = tensor_of(ctx, cs, NULL);
  int ss[5] = {1, 1, 1, 1, 6 * C + C * C};
  vx_tensor *tsave = tensor_of(ctx, ss, NULL);
  vx_tensor_fill(trm, 0.0f);
  vx_tensor_fill(trv, 1.0f);
  vx_status s = vx_acnorm_forward(ctx, tx, tgs, tbs, tgt, tbt, trm, trv, 1, 0.1f, 1e-5f, VX_ACT_NONE, 0.0f, ty, tsave);
  CHECK(s == VX_OK, "acnorm forward: %s", vx_context_last_error(ctx));
  double *y = malloc(nx * sizeof *y), err;
  ref_acnorm_forward(x, N, C, S, gs, bs, gt, bt, NULL, 1e-5, REF_ACT_NONE, y);
  double *dy = download(ty), *sv = download(tsave);
  CHECK(closed(dy, y, nx, FWD_ATOL, FWD_RTOL, &err), "acnorm forward: max error %.3g", err);
  CHECK(closed(sv + 6 * C, Sref, (size_t)C * C, 1e-6, 1e-5, &err), "acnorm S: max error %.3g", err);
  CHECK(off > 0, "acnorm test case: S has no off-diagonal entry (the test would not exercise S)");
  if (verbose) printf("acnorm forward: max error %.3g, S off-diagonal entries %d\n", err, off);

  vx_tensor_fill(tdx, 3.0f);
  s = vx_acnorm_backward(ctx, tx, ty, tr, tsave, 1, VX_ACT_NONE, 0.0f, tdx, tdg, tdb, 0);
  CHECK(s == VX_OK, "acnorm backward: %s", vx_context_last_error(ctx));
  double *gx = download(tdx), *gg = download(tdg), *gb = download(tdb);
  double *fx = malloc(nx * sizeof *fx), fg[5], fb[5], fg_full[5], *yy = malloc(nx * sizeof *yy);
#define ACL(Sfix) (ref_acnorm_forward(x, N, C, S, gs, bs, gt, bt, Sfix, 1e-5, REF_ACT_NONE, yy), dot(yy, r, nx))
  for (size_t i = 0; i < nx; i++) {
    double o = x[i];
    x[i] = o + FD_H;
    double lp = ACL(Sref);
    x[i] = o - FD_H;
    double lm = ACL(Sref);
    x[i] = o;
    fx[i] = (lp - lm) / (2 * FD_H);
  }
  for (int c = 0; c < C; c++) {
    double o = gt[c], lp, lm;
    gt[c] = o + FD_H, lp = ACL(Sref), gt[c] = o - FD_H, lm = ACL(Sref), gt[c] = o;
    fg[c] = (lp - lm) / (2 * FD_H);
    gt[c] = o + FD_H, lp = ACL(NULL), gt[c] = o - FD_H, lm = ACL(NULL), gt[c] = o;
    fg_full[c] = (lp - lm) / (2 * FD_H);
    o = bt[c];
    bt[c] = o + FD_H, lp = ACL(Sref), bt[c] = o - FD_H, lm = ACL(Sref), bt[c] = o;
    fb[c] = (lp - lm) / (2 * FD_H);
  }
  CHECK(closed(gx, fx, nx, GRAD_ATOL, GRAD_RTOL, &err), "acnorm dx vs finite differences: max error %.3g", err);
  CHECK(closed(gg, fg, C, GRAD_ATOL, GRAD_RTOL, &err), "acnorm dgamma_t vs finite differences (S constant): %.3g", err);
  CHECK(closed(gb, fb, C, GRAD_ATOL, GRAD_RTOL, &err), "acnorm dbeta_t vs finite differences (S constant): %.3g", err);
  double through_s = 0;
  for (int c = 0; c < C; c++) through_s = fmax(through_s, fabs(fg_full[c] - fg[c]));
  double dev_full = 0;
  for (int c = 0; c < C; c++) dev_full = fmax(dev_full, fabs(gg[c] - fg_full[c]));
  /* the derivative through S exists here; the op must not carry it (sg(S)) */
  CHECK(through_s > 1e-2 && dev_full > 10 * err, "acnorm: S must carry no gradient: |d(full) - d(sg)| = %.3g, device vs full %.3g",
        through_s, dev_full);
  if (verbose) printf("acnorm backward: dgamma_t max error %.3g; the gradient through S would change it by %.3g\n", err, through_s);

  s = vx_acnorm_backward(ctx, tx, ty, tr, tsave, 1, VX_ACT_NONE, 0.0f, tdx, tdg, tdb, 1);
  double *gg2 = download(tdg);
  for (int c = 0; c < C; c++) gg[c] *= 2;
  CHECK(s == VX_OK && closed(gg2, gg, C, 1e-6, 1e-5, &err), "acnorm accumulate: max error %.3g", err);

  /* folding: a plain inference batch norm with (gamma', beta') gives the unfolded output */
  vx_tensor *tgf = tensor_of(ctx, cs, NULL), *tbf = tensor_of(ctx, cs, NULL), *ty2 = tensor_of(ctx, xs, NULL);
  s = vx_acnorm_fold(ctx, tgs, tbs, tgt, tbt, 1e-5f, tgf, tbf);
  if (s == VX_OK) s = vx_acnorm_forward(ctx, tx, tgs, tbs, tgt, tbt, trm, trv, 0, 0.1f, 1e-5f, VX_ACT_RELU, 0.0f, ty, tsave);
  if (s == VX_OK) s = vx_batch_norm_forward(ctx, tx, tgf, tbf, trm, trv, 0, 0.1f, 1e-5f, VX_ACT_RELU, 0.0f, ty2, tsave);
  double *y1 = download(ty), *y2 = download(ty2);
  CHECK(s == VX_OK && closed(y2, y1, nx, 1e-6, 0, &err), "acnorm folded vs unfolded inference: max error %.3g (%s)",
        err, vx_context_last_error(ctx));
  if (verbose) printf("acnorm fold: max difference %.3g\n", err);

  /* AC-Corr: identical affines and equal channels give S = the row-stochastic all-equal matrix */
  double sc = -1;
  vx_tensor_fill(tgt, 1.0f), vx_tensor_fill(tgs, 1.0f), vx_tensor_fill(tbt, 0.0f), vx_tensor_fill(tbs, 0.0f);
  s = vx_acnorm_layer_score(ctx, tgs, tbs, tgt, tbt, 1e-5f, &sc);
  CHECK(s == VX_OK && fabs(sc - C) < 1e-9, "acnorm score of identical uniform affines: %.12g, expected %d", sc, C);
  vx_tensor *tmp = tensor_of(ctx, cs, gt);
  vx_tensor_copy(tgt, tmp);
  vx_tensor_destroy(tmp);
  s = vx_acnorm_layer_score(ctx, tgs, tbs, tgt, tbt, 1e-5f, &sc);
  CHECK(s == VX_OK && isfinite(sc) && sc > 0 && sc <= C + 1e-9, "acnorm score %.6g not in (0, %d]", sc, C);
  /* a save too small is refused */
  int small_s[5] = {1, 1, 1, 1, 6 * C};
  vx_tensor *tsm = tensor_of(ctx, small_s, NULL);
  s = vx_acnorm_forward(ctx, tx, tgs, tbs, tgt, tbt, trm, trv, 1, 0.1f, 1e-5f, VX_ACT_NONE, 0.0f, ty, tsm);
  CHECK(s == VX_ERR_SHAPE && strstr(vx_context_last_error(ctx), "save"), "acnorm: short save: %d %s", s,
        vx_context_last_error(ctx));
  free(x), free(r), free(y), free(dy), free(sv), free(gx), free(gg), free(gb), free(fx), free(yy), free(gg2), free(y1), free(y2);
  vx_tensor *all[] = {tx, tr, ty, tdx, tgs, tbs, tgt, tbt, tdg, tdb, trm, trv, tsave, tgf, tbf, ty2, tsm};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) vx_tensor_destroy(all[i]);
}

/* ---------------------------------------------------------------- the network */
/* Spheres (class 1) and boxes (class 2) in noise; intensities tell the classes apart. */
static void make_batch(const int s[5], uint64_t seed, float *img, float *lab) {
  uint64_t keep = rng;
  rng = seed;
  int N = s[0], D = s[2], H = s[3], W = s[4];
  for (int n = 0; n < N; n++) {
    double cz = D / 2.0 + urand() * D / 6.0, cy = H / 3.0 + urand() * 1.5, cx = W / 3.0 + urand() * 1.5;
    double rad = H / 4.0;
    for (int z = 0; z < D; z++)
      for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
          size_t i = (((size_t)n * D + z) * H + y) * W + x;
          double dz = D > 1 ? z - cz : 0, d2 = dz * dz + (y - cy) * (y - cy) + (x - cx) * (x - cx);
          int l = d2 < rad * rad ? 1 : (y > 2 * H / 3 && x > 2 * W / 3 ? 2 : 0);
          lab[i] = (float)l;
          img[i] = (float)(l == 1 ? 1.0 : l == 2 ? -1.0 : 0.0) + 0.2f * (float)urand();
        }
  }
  rng = keep;
}

typedef struct {
  vx_model *m;
  vx_tensor *x, *lab, *am, *av;
  int step;
} trainee;

static vx_status trainee_make(vx_context *ctx, const vx_model_config *cfg, const int s[5], trainee *t) {
  memset(t, 0, sizeof *t);
  vx_status st = vx_model_create(ctx, cfg, s, &t->m);
  if (st != VX_OK) return st;
  int ls[5] = {s[0], 1, s[2], s[3], s[4]};
  size_t n = ref_numel(ls);
  float *img = malloc(n * sizeof *img), *lab = malloc(n * sizeof *lab);
  make_batch(s, 99, img, lab);
  vx_tensor_create(ctx, s, &t->x);
  vx_tensor_create(ctx, ls, &t->lab);
  vx_tensor_upload(t->x, img);
  vx_tensor_upload(t->lab, lab);
  free(img), free(lab);
  int ps[5] = {1, 1, 1, 1, (int)vx_tensor_numel(vx_model_parameters(t->m))};
  vx_tensor_create(ctx, ps, &t->am);
  vx_tensor_create(ctx, ps, &t->av);
  vx_tensor_fill(t->am, 0.0f);
  vx_tensor_fill(t->av, 0.0f);
  return VX_OK;
}

static void trainee_free(trainee *t) {
  vx_tensor_destroy(t->x), vx_tensor_destroy(t->lab), vx_tensor_destroy(t->am), vx_tensor_destroy(t->av);
  vx_model_destroy(t->m);
}

static vx_status trainee_step(vx_context *ctx, trainee *t, float *loss) {
  vx_status st = vx_model_train_step(t->m, t->x, t->lab, NULL, loss);
  if (st == VX_OK)
    st = vx_adam_step(ctx, vx_model_parameters(t->m), vx_model_gradients(t->m), t->am, t->av, ++t->step, 1e-2f, 0.9f,
                      0.999f, 1e-8f, 0.0f, 0);
  return st;
}

static void test_network(vx_context *ctx, const char *what, int flat, int masked, int steps) {
  vx_model_config cfg;
  vx_model_config_init(&cfg, "dualnorm-unet");
  cfg.levels = flat ? 3 : 2;
  cfg.base_channels = 4;
  cfg.dualnorm_levels = 2;
  cfg.dualnorm_masked = masked;
  int s[5] = {2, 1, flat ? 1 : 8, flat ? 16 : 8, flat ? 16 : 8};
  if (small) s[3] = s[4] = flat ? 8 : 4, s[2] = flat ? 1 : 4, cfg.levels = 2;
  trainee a, b;
  memset(&b, 0, sizeof b);
  vx_status st = trainee_make(ctx, &cfg, s, &a);
  if (st == VX_OK && steps >= 3) st = trainee_make(ctx, &cfg, s, &b);
  CHECK(st == VX_OK, "%s: create: %s", what, vx_context_last_error(ctx));
  if (st != VX_OK) return;
  float first = 0, last = 0, l = 0, lb = 0;
  int same = 1;
  for (int i = 0; i < steps && st == VX_OK; i++) {
    st = trainee_step(ctx, &a, &l);
    if (i == 0) first = l;
    last = l;
    if (i < 3 && steps >= 3 && st == VX_OK) {
      st = trainee_step(ctx, &b, &lb);
      same &= memcmp(&l, &lb, sizeof l) == 0;
    }
    if (verbose) printf("%s step %d loss %.5f\n", what, i, l);
  }
  CHECK(st == VX_OK, "%s: training: %s", what, vx_context_last_error(ctx));
  CHECK(isfinite(first) && last < first, "%s: loss %.5f -> %.5f over %d steps does not fall", what, first, last, steps);
  printf("%s: loss (both passes) %.4f -> %.4f in %d steps\n", what, first, last, steps);
  if (steps >= 3) {
    /* a fresh pair for the bitwise check: b ran 3 steps, so does c */
    trainee c;
    trainee_make(ctx, &cfg, s, &c);
    float lc = 0;
    for (int i = 0; i < 3; i++) trainee_step(ctx, &c, &lc);
    double *pb = download(vx_model_parameters(b.m)), *pc = download(vx_model_parameters(c.m));
    size_t n = vx_tensor_numel(vx_model_parameters(b.m));
    CHECK(same && memcmp(pb, pc, n * sizeof *pb) == 0 && memcmp(&lb, &lc, sizeof lc) == 0,
          "%s: two runs of 3 steps are not bitwise equal", what);
    free(pb), free(pc);
    trainee_free(&c);
  }
  st = vx_model_forward(a.m, a.x);
  CHECK(st == VX_OK, "%s: inference forward: %s", what, vx_context_last_error(ctx));
  double *o = download(vx_model_output(a.m));
  int fin = 1;
  for (size_t i = 0; i < vx_tensor_numel(vx_model_output(a.m)); i++) fin &= isfinite(o[i]) != 0;
  CHECK(fin, "%s: inference logits not finite", what);
  free(o);
  trainee_free(&a), trainee_free(&b);
}

/* The test's own checkpoint writer (every parameter and state tensor by name), so the
 * conversion is tested independently of the generic saver. */
static int save_model(vx_model *m, const char *path) {
  vx_param_set *sets[2] = {&m->params, &m->state};
  vx_st_tensor t[1024];
  int n = 0;
  float *host[2] = {NULL, NULL};
  for (int k = 0; k < 2; k++) {
    host[k] = malloc(sets[k]->count * sizeof(float));
    vx_tensor_download(sets[k]->flat, host[k]);
    for (int i = 0; i < sets[k]->n && n < 1024; i++, n++) {
      const vx_decl *d = &sets[k]->decl[i];
      t[n].name = d->name;
      t[n].ndim = d->init == VX_INIT_KAIMING ? 5 : 1;
      for (int a = 0; a < t[n].ndim; a++) t[n].shape[a] = d->shape[a];
      if (t[n].ndim == 1) t[n].shape[0] = (int64_t)d->numel;
      t[n].data = host[k] + d->offset;
      t[n].numel = d->numel;
    }
  }
  char err[512];
  vx_status st = vx_safetensors_write(path, t, n, NULL, err, sizeof err);
  if (st != VX_OK) printf("save: %s\n", err);
  free(host[0]), free(host[1]);
  return st == VX_OK;
}

static const vx_decl *find_decl(const vx_param_set *ps, const char *name) {
  for (int i = 0; i < ps->n; i++)
    if (!strcmp(ps->decl[i].name, name)) return &ps->decl[i];
  return NULL;
}

static void test_acnorm_conversion(vx_context *ctx) {
  vx_model_config cfg;
  vx_model_config_init(&cfg, "dualnorm-unet");
  cfg.levels = 2;
  cfg.base_channels = 4;
  int s[5] = {2, 1, small ? 4 : 8, small ? 4 : 8, small ? 4 : 8};
  trainee src;
  vx_status st = trainee_make(ctx, &cfg, s, &src);
  float l;
  for (int i = 0; i < (small ? 1 : 2) && st == VX_OK; i++) st = trainee_step(ctx, &src, &l); /* BN affines move off (1, 0) */
  char path[256];
  snprintf(path, sizeof path, "test_dualnorm_%d.safetensors", (int)getpid());
  CHECK(st == VX_OK && save_model(src.m, path), "acnorm conversion: source model: %s", vx_context_last_error(ctx));

  vx_model_config ac = cfg;
  ac.acnorm = 1;
  trainee t;
  st = trainee_make(ctx, &ac, s, &t);
  CHECK(st == VX_OK, "acnorm model: %s", vx_context_last_error(ctx));
  if (st != VX_OK) { trainee_free(&src); return; }
  /* a fresh AC-Norm model: source = target = (1, 0) everywhere -> each layer scores its C */
  double score = 0, expect = 0;
  int layers = 0, nsrc = 0;
  for (int i = 0; i < t.m->state.n; i++)
    if (strstr(t.m->state.decl[i].name, ".source_weight")) expect += (double)t.m->state.decl[i].numel, nsrc++;
  expect /= nsrc;
  st = vx_model_acnorm_score(t.m, &score, &layers);
  CHECK(st == VX_OK && layers == nsrc && fabs(score - expect) < 1e-9,
        "fresh acnorm score %.9g over %d layers, expected the mean channel count %.9g over %d", score, layers, expect, nsrc);

  char err[512] = "";
  st = vx_model_load_acnorm(t.m, path, err, sizeof err);
  CHECK(st == VX_OK, "load_acnorm: %s", err);
  double *sp = download(src.m->params.flat), *tp = download(t.m->params.flat), *ts = download(t.m->state.flat);
  int same = 1, checked = 0;
  for (int i = 0; i < t.m->params.n; i++) {
    const vx_decl *d = &t.m->params.decl[i], *e = find_decl(&src.m->params, d->name);
    same &= e && !memcmp(tp + d->offset, sp + e->offset, d->numel * sizeof(double));
  }
  for (int i = 0; i < t.m->state.n; i++) {
    const vx_decl *d = &t.m->state.decl[i];
    const char *sw = strstr(d->name, ".source_weight");
    if (!sw) continue;
    char nm[80];
    snprintf(nm, sizeof nm, "%.*s.weight", (int)(sw - d->name), d->name);
    const vx_decl *e = find_decl(&src.m->params, nm);
    same &= e && !memcmp(ts + d->offset, sp + e->offset, d->numel * sizeof(double));
    checked++;
  }
  CHECK(same && checked == nsrc, "load_acnorm: parameters or source affines differ from the checkpoint");
  /* the generic saver's checkpoints convert too */
  char path2[300];
  snprintf(path2, sizeof path2, "%s.generic.safetensors", path);
  st = vx_model_save(src.m, path2, err, sizeof err);
  if (st == VX_OK) st = vx_model_load_acnorm(t.m, path2, err, sizeof err);
  CHECK(st == VX_OK, "load_acnorm of a vx_model_save checkpoint: %s", err);
  double *tp2 = download(t.m->params.flat);
  CHECK(!memcmp(tp2, tp, t.m->params.count * sizeof(double)), "load_acnorm: the two checkpoints load differently");
  free(tp2);
  remove(path2);
  st = vx_model_acnorm_score(t.m, &score, &layers);
  CHECK(st == VX_OK && isfinite(score) && score > 0 && score <= expect + 1e-9, "converted acnorm score %.6g", score);
  double before = score;
  for (int i = 0; i < (small ? 1 : 3) && st == VX_OK; i++) st = trainee_step(ctx, &t, &l);
  CHECK(st == VX_OK && isfinite(l), "acnorm fine-tuning: %s", vx_context_last_error(ctx));
  double *ts2 = download(t.m->state.flat);
  int frozen = 1;
  for (int i = 0; i < t.m->state.n; i++)
    if (strstr(t.m->state.decl[i].name, ".source_"))
      frozen &= !memcmp(ts2 + t.m->state.decl[i].offset, ts + t.m->state.decl[i].offset, t.m->state.decl[i].numel * sizeof(double));
  CHECK(frozen, "acnorm fine-tuning changed the frozen source affine");
  st = vx_model_acnorm_score(t.m, &score, &layers);
  CHECK(st == VX_OK && isfinite(score) && score > 0, "acnorm score after fine-tuning %.6g", score);
  printf("acnorm: AC-Corr %.4f after conversion, %.4f after fine-tuning (%d layers, mean C %.2f)\n", before,
         score, layers, expect);
  st = vx_model_forward(t.m, t.x);
  CHECK(st == VX_OK, "acnorm inference: %s", vx_context_last_error(ctx));

  /* another architecture: refused, naming the file and a tensor, nothing changed */
  vx_model_config deep = ac;
  deep.levels = 3;
  vx_model *d = NULL;
  int ds[5] = {2, 1, 8, 8, 8};
  st = vx_model_create(ctx, &deep, ds, &d);
  CHECK(st == VX_OK, "deeper acnorm model: %s", vx_context_last_error(ctx));
  if (st == VX_OK) {
    double *b0 = download(d->params.flat), *b1 = download(d->state.flat);
    st = vx_model_load_acnorm(d, path, err, sizeof err);
    double *a0 = download(d->params.flat), *a1 = download(d->state.flat);
    CHECK(st == VX_ERR_SHAPE && strstr(err, path) && strstr(err, "tensor '"), "mismatching checkpoint: %d \"%s\"", st, err);
    CHECK(!memcmp(a0, b0, d->params.count * sizeof(double)) && !memcmp(a1, b1, d->state.count * sizeof(double)),
          "a refused checkpoint changed the model");
    if (verbose) printf("refused: %s\n", err);
    free(a0), free(a1), free(b0), free(b1);
    vx_model_destroy(d);
  }
  /* a plain model has no AC-Norm layers */
  st = vx_model_load_acnorm(src.m, path, err, sizeof err);
  CHECK(st == VX_ERR_INVALID_ARGUMENT && strstr(err, "acnorm"), "load_acnorm into a plain model: %d \"%s\"", st, err);
  st = vx_model_acnorm_score(src.m, &score, NULL);
  CHECK(st == VX_ERR_INVALID_ARGUMENT, "acnorm score of a plain model: %d", st);
  free(sp), free(tp), free(ts), free(ts2);
  remove(path);
  trainee_free(&t), trainee_free(&src);
}

int main(int argc, char **argv) {
  const char *device = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--small")) small = 1;
    else if (!strcmp(argv[i], "-v")) verbose = 1;
    else if (!strcmp(argv[i], "-d") && i + 1 < argc) device = argv[++i];
  }
  vx_context_options o = {0};
  o.device = device;
  vx_context *ctx = NULL;
  char err[1024];
  vx_status st = vx_context_create(&o, &ctx, err, sizeof err);
  if (st == VX_ERR_NO_DEVICE) {
    printf("skip: %s\n", err);
    return 77;
  }
  if (st != VX_OK) {
    printf("context: %s\n", err);
    return 1;
  }
  printf("device: %s\n", vx_context_device(ctx)->name);
  test_dualnorm_module(ctx, 0, 0);
  test_dualnorm_module(ctx, 0, 1);
  test_dualnorm_module(ctx, 1, 0);
  test_acnorm(ctx);
  /* --small (Oclgrind): fewer steps, no bitwise rerun, the masked mode at module level only */
  int steps = small ? 2 : 12;
  test_network(ctx, "dualnorm-unet 3D", 0, 0, steps);
  test_network(ctx, "dualnorm-unet 2D", 1, 0, steps);
  if (!small) test_network(ctx, "dualnorm-unet masked", 0, 1, steps);
  test_acnorm_conversion(ctx);
  vx_context_destroy(ctx);
  return CHECK_SUMMARY();
}
