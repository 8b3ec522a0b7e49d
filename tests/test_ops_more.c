/* test_ops_more: the second op family of voxcl (PReLU, GELU, softmax backward, broadcast add /
 * mul / scale, max and average pooling, nearest and trilinear resizing, pad, crop, channel
 * split, MSE and KL losses, gradient clipping) on every OpenCL device, against the
 * double-precision references in tests/ref/ref_more.c. Conventions as tests/test_ops.c:
 *
 *   test_ops_more [-d P:D|gpu|cpu|NAME] [-o OP[,OP...]] [--small] [-v]
 *
 *   - forward against the reference: |dev - ref| <= atol + rtol * |ref|;
 *   - every backward against central finite differences of the double reference of
 *     L = sum(r .* f(inputs)) (the device gets dy = r) on a sample of elements that always
 *     holds the first and the last;
 *   - accumulate = 1 adds to what the gradient held; a second backward is bitwise identical;
 *   - bad arguments are refused before anything runs (status, a message naming the argument,
 *     the output untouched).
 * Shapes are odd on purpose; with views every tensor sits at an odd offset of one arena.
 * Final line "N passed, M failed"; exit 1 on failures, 77 without an OpenCL device. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ref/ref_more.h"
#include "ref/ref_ops.h"
#include "voxcl.h"

/* ---------------------------------------------------------------- tolerances
 * Elementwise ops (PReLU, broadcast, scale, pad, crop, split, nearest resize, max pooling) are
 * exact or one float rounding: 1e-6 relative, atol only for the finite-difference roundoff.
 * GELU: float erf/exp (a few ulp): 1e-6 absolute on O(1) values. Averages, trilinear weights,
 * softmax backward and the per-channel reductions (sums of up to ~2000 O(1) products in float)
 * get 1e-5 / 1e-5. Losses: float partial sums of <= 2000 terms finished in double: 1e-5. */
#define ELT_ATOL 1e-7
#define ELT_RTOL 1e-6
#define SMOOTH_ATOL 1e-5
#define SMOOTH_RTOL 1e-5
#define RED_ATOL 1e-4
#define RED_RTOL 1e-5
/* Finite differences: the piecewise-linear ops are linear near the sampled points (inputs are
 * kept >= 0.02 away from kinks, max-pooling inputs are distinct by >= 1e-3), so h = 1e-4 only
 * meets roundoff (~1e-12); GELU and the losses are smooth: h = 1e-4 gives truncation ~1e-9. */
#define FD_H 1e-4
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

#include "ref/op_harness.h"

/* ================================================================ the generic case
 * y = f(x, p) with an optional parameter input p (a slope, the broadcast operand); the backward
 * gives dx and dp. Every op below is one of these plus its refusals. */
typedef struct mcase mcase;
struct mcase {
  int xs[5], ps[5], ys[5]; /* ps[0] == 0: no parameter input */
  double xlo, xhi, plo, phi;
  int kink;     /* keep x >= 0.02 away from 0 (PReLU) */
  int distinct; /* x: shuffled values spaced >= 1e-3 apart (max pooling) */
  double atol, rtol, batol, brtol;
  void (*ref)(const mcase *c, const double *x, const double *p, double *y);
  vx_status (*fwd)(vx_context *ctx, const mcase *c, const vx_tensor *x, const vx_tensor *p, vx_tensor *y);
  vx_status (*bwd)(vx_context *ctx, const mcase *c, const vx_tensor *x, const vx_tensor *p, const vx_tensor *y,
                   const vx_tensor *dy, vx_tensor *dx, vx_tensor *dp, int acc);
  /* op parameters */
  vx_pool_params pool;
  int mode;
  float scale[3];
  int before[3], after[3], start[5];
  float value;
  int op;
};

typedef struct {
  const mcase *c;
  double *x, *p, *r, *y;
  size_t ny;
} mstate;

static double mcase_loss(void *sv) {
  mstate *s = sv;
  s->c->ref(s->c, s->x, s->p, s->y);
  return dot(s->r, s->y, s->ny);
}

static void run_mcase(tester *t, const mcase *c, const char *label, int views) {
  vx_context *ctx = t->ctx;
  char b1[64], b2[64], b3[64];
  int has_p = c->ps[0] > 0;
  set_desc(t, "%s x%s%s%s y%s%s", label, shape_str(c->xs, b1, sizeof b1), has_p ? " p" : "",
           has_p ? shape_str(c->ps, b2, sizeof b2) : "", shape_str(c->ys, b3, sizeof b3), views ? " views" : "");
  size_t nx = ref_numel(c->xs), np = has_p ? ref_numel(c->ps) : 1, ny = ref_numel(c->ys);
  float *xf = rand_floats(t, nx, c->xlo, c->xhi), *pf = rand_floats(t, np, c->plo, c->phi);
  float *rf = rand_floats(t, ny, -1, 1), *prex = rand_floats(t, nx, -1, 1), *prep = rand_floats(t, np, -1, 1);
  if (c->kink)
    for (size_t i = 0; i < nx; i++)
      if (fabsf(xf[i]) < 0.02f) xf[i] = xf[i] < 0 ? -0.02f - xf[i] : 0.02f + xf[i];
  if (c->distinct) { /* a shuffled ramp: no two values within 1e-3 (nx <= 2000) */
    for (size_t i = 0; i < nx; i++) xf[i] = (float)(-1.0 + 2.0 * (double)i / (double)nx);
    for (size_t i = nx; i-- > 1;) {
      size_t j = (size_t)(rng_next(&t->rng) % (i + 1));
      float tmp = xf[i];
      xf[i] = xf[j];
      xf[j] = tmp;
    }
  }
  mstate s = {c, to_double(xf, nx), to_double(pf, np), to_double(rf, ny), xmalloc(ny * sizeof(double)), ny};
  float *y_dev = NULL, *dx1 = NULL, *dp1 = NULL, *dx2 = NULL, *dp2 = NULL;
  double *acc = NULL;
  tensor_set ts;
  ts_init(&ts, t, ctx, views);
  vx_tensor *x, *p = NULL, *y, *dy, *dx, *dp = NULL;
  NEED(x = ts_new(&ts, c->xs, xf));
  if (has_p) NEED(p = ts_new(&ts, c->ps, pf));
  NEED(y = ts_new(&ts, c->ys, NULL));
  NEED(dy = ts_new(&ts, c->ys, rf));
  NEED(dx = ts_new(&ts, c->xs, NULL));
  if (has_p) NEED(dp = ts_new(&ts, c->ps, NULL));
  TRY("forward", c->fwd(ctx, c, x, p, y));
  NEED(y_dev = fetch(t, ctx, y));
  mcase_loss(&s);
  check_close(t, "forward y", y_dev, s.y, NULL, ny, c->atol, c->rtol);
  if (!c->bwd) goto done;
  TRY("backward", c->bwd(ctx, c, x, p, y, dy, dx, dp, 0));
  NEED(dx1 = fetch(t, ctx, dx));
  fd_check(t, "backward dx", mcase_loss, &s, s.x, nx, dx1, FD_H, c->batol, c->brtol);
  if (has_p) {
    NEED(dp1 = fetch(t, ctx, dp));
    fd_check(t, "backward dp", mcase_loss, &s, s.p, np, dp1, FD_H, c->batol, c->brtol);
  }
  TRY("backward (again)", c->bwd(ctx, c, x, p, y, dy, dx, dp, 0));
  NEED(dx2 = fetch(t, ctx, dx));
  check_bitwise(t, "backward dx deterministic", dx1, dx2, nx);
  if (has_p) {
    NEED(dp2 = fetch(t, ctx, dp));
    check_bitwise(t, "backward dp deterministic", dp1, dp2, np);
  }
  TRY("upload", vx_tensor_upload(dx, prex));
  if (has_p) TRY("upload", vx_tensor_upload(dp, prep));
  TRY("backward (accumulate)", c->bwd(ctx, c, x, p, y, dy, dx, dp, 1));
  free(dx2);
  NEED(dx2 = fetch(t, ctx, dx));
  acc = sum_double(prex, dx1, nx);
  check_close(t, "backward dx accumulate", dx2, acc, NULL, nx, c->batol, c->brtol);
  if (has_p) {
    free(dp2);
    free(acc);
    NEED(dp2 = fetch(t, ctx, dp));
    acc = sum_double(prep, dp1, np);
    check_close(t, "backward dp accumulate", dp2, acc, NULL, np, c->batol, c->brtol);
  }
done:
  ts_free(&ts);
  free(xf); free(pf); free(rf); free(prex); free(prep);
  free(s.x); free(s.p); free(s.r); free(s.y); free(acc);
  free(y_dev); free(dx1); free(dp1); free(dx2); free(dp2);
}

static void set5(int d[5], int a, int b, int c, int e, int f) {
  d[0] = a; d[1] = b; d[2] = c; d[3] = e; d[4] = f;
}

/* ================================================================ activations */
static void prelu_ref(const mcase *c, const double *x, const double *p, double *y) {
  ref_prelu(x, c->xs, p, (int)ref_numel(c->ps), y);
}
static vx_status prelu_fwd(vx_context *ctx, const mcase *c, const vx_tensor *x, const vx_tensor *p, vx_tensor *y) {
  (void)c;
  return vx_prelu_forward(ctx, x, p, y);
}
static vx_status prelu_bwd(vx_context *ctx, const mcase *c, const vx_tensor *x, const vx_tensor *p,
                           const vx_tensor *y, const vx_tensor *dy, vx_tensor *dx, vx_tensor *dp, int acc) {
  (void)c; (void)y;
  return vx_prelu_backward(ctx, x, p, dy, dx, dp, acc);
}
static void gelu_ref(const mcase *c, const double *x, const double *p, double *y) {
  (void)p;
  ref_gelu(x, ref_numel(c->xs), y);
}
static vx_status gelu_fwd(vx_context *ctx, const mcase *c, const vx_tensor *x, const vx_tensor *p, vx_tensor *y) {
  (void)c; (void)p;
  return vx_gelu_forward(ctx, x, y);
}
static vx_status gelu_bwd(vx_context *ctx, const mcase *c, const vx_tensor *x, const vx_tensor *p,
                          const vx_tensor *y, const vx_tensor *dy, vx_tensor *dx, vx_tensor *dp, int acc) {
  (void)c; (void)p; (void)y; (void)dp;
  return vx_gelu_backward(ctx, x, dy, dx, acc);
}
static void softmax_ref(const mcase *c, const double *x, const double *p, double *y) {
  (void)p;
  ref_softmax_channels(x, c->xs[0], c->xs[1], (size_t)c->xs[2] * c->xs[3] * c->xs[4], y);
}
static vx_status softmax_fwd(vx_context *ctx, const mcase *c, const vx_tensor *x, const vx_tensor *p, vx_tensor *y) {
  (void)c; (void)p;
  return vx_softmax_forward(ctx, x, y);
}
static vx_status softmax_bwd(vx_context *ctx, const mcase *c, const vx_tensor *x, const vx_tensor *p,
                             const vx_tensor *y, const vx_tensor *dy, vx_tensor *dx, vx_tensor *dp, int acc) {
  (void)c; (void)p; (void)x; (void)dp;
  return vx_softmax_backward(ctx, y, dy, dx, acc);
}

static mcase base_case(const int xs[5]) {
  mcase c;
  memset(&c, 0, sizeof c);
  memcpy(c.xs, xs, sizeof c.xs);
  memcpy(c.ys, xs, sizeof c.ys);
  c.xlo = c.plo = -1;
  c.xhi = c.phi = 1;
  c.atol = c.batol = ELT_ATOL;
  c.rtol = c.brtol = ELT_RTOL;
  return c;
}

static void test_activation_more(tester *t) {
  int full[5] = {2, 3, 5, 7, 6}, small[5] = {2, 3, 3, 4, 5};
  const int *xs = t->small ? small : full;
  mcase c = base_case(xs);
  c.ref = prelu_ref; c.fwd = prelu_fwd; c.bwd = prelu_bwd; c.kink = 1;
  c.plo = 0.01; c.phi = 0.5;
  c.batol = RED_ATOL; c.brtol = RED_RTOL; /* dslope is a sum over N*S */
  set5(c.ps, xs[1], 1, 1, 1, 1);
  run_mcase(t, &c, "prelu per-channel", 0);
  run_mcase(t, &c, "prelu per-channel", 1);
  set5(c.ps, 1, 1, 1, 1, 1);
  run_mcase(t, &c, "prelu one slope", 0);
  c = base_case(xs);
  c.ref = gelu_ref; c.fwd = gelu_fwd; c.bwd = gelu_bwd;
  c.xlo = -4; c.xhi = 4;
  c.atol = c.batol = SMOOTH_ATOL; c.rtol = c.brtol = SMOOTH_RTOL;
  run_mcase(t, &c, "gelu", 0);
  run_mcase(t, &c, "gelu", 1);
  c = base_case(xs);
  c.ref = softmax_ref; c.fwd = softmax_fwd; c.bwd = softmax_bwd;
  c.xlo = -3; c.xhi = 3;
  c.atol = c.batol = SMOOTH_ATOL; c.rtol = c.brtol = SMOOTH_RTOL;
  run_mcase(t, &c, "softmax", 0);
  run_mcase(t, &c, "softmax", 1);

  vx_context *ctx = t->ctx;
  set_desc(t, "bad arguments");
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  int two[5] = {2, 1, 1, 1, 1}, other[5] = {2, 3, 3, 4, 4};
  vx_tensor *x, *a, *y, *y2;
  NEED(x = ts_new(&ts, small, NULL));
  TRY("fill", vx_tensor_fill(x, -1.0f));
  NEED(a = ts_new(&ts, two, NULL));
  TRY("fill", vx_tensor_fill(a, 0.1f));
  NEED(y = sentinel_tensor(&ts, small));
  NEED(y2 = sentinel_tensor(&ts, other));
  CHECK_REFUSED("prelu slope count", vx_prelu_forward(ctx, x, a, y), VX_ERR_SHAPE, "slope", y);
  CHECK_REFUSED("prelu y shape", vx_prelu_forward(ctx, x, NULL, y2), VX_ERR_SHAPE, "y", y2);
  CHECK_REFUSED("prelu NULL slope", vx_prelu_forward(ctx, x, NULL, y), VX_ERR_INVALID_ARGUMENT, "slope", y);
  CHECK_REFUSED("gelu shape", vx_gelu_forward(ctx, x, y2), VX_ERR_SHAPE, "shape", y2);
  CHECK_REFUSED("gelu backward shape", vx_gelu_backward(ctx, x, x, y2, 0), VX_ERR_SHAPE, "dx", y2);
  CHECK_REFUSED("softmax backward shape", vx_softmax_backward(ctx, x, x, y2, 0), VX_ERR_SHAPE, "dx", y2);
done:
  ts_free(&ts);
}

/* ================================================================ broadcasting */
static void bcast_ref(const mcase *c, const double *x, const double *p, double *y) {
  if (c->op == 2) { /* scale by the fixed c->value */
    for (size_t i = 0; i < ref_numel(c->xs); i++) y[i] = c->value * x[i];
    return;
  }
  ref_broadcast(x, c->xs, p, c->ps, c->op, y);
}
static vx_status bcast_fwd(vx_context *ctx, const mcase *c, const vx_tensor *x, const vx_tensor *p, vx_tensor *y) {
  if (c->op == 2) return vx_scale(ctx, c->value, x, y);
  return c->op ? vx_mul_broadcast(ctx, x, p, y) : vx_add_broadcast(ctx, x, p, y);
}
static vx_status bcast_bwd(vx_context *ctx, const mcase *c, const vx_tensor *x, const vx_tensor *p,
                           const vx_tensor *y, const vx_tensor *dy, vx_tensor *dx, vx_tensor *dp, int acc) {
  (void)y;
  if (c->op == 2) return vx_scale_backward(ctx, c->value, dy, dx, acc);
  return c->op ? vx_mul_broadcast_backward(ctx, x, p, dy, dx, dp, acc) : vx_add_broadcast_backward(ctx, dy, dx, dp, acc);
}

static void test_broadcast(tester *t) {
  int full[5] = {2, 3, 5, 7, 6}, small[5] = {2, 3, 3, 4, 5};
  const int *xs = t->small ? small : full;
  for (int op = 0; op < 2; op++) {
    mcase c = base_case(xs);
    c.ref = bcast_ref; c.fwd = bcast_fwd; c.bwd = bcast_bwd; c.op = op;
    c.batol = RED_ATOL; c.brtol = RED_RTOL;
    const char *name = op ? "mul" : "add";
    char label[64];
    memcpy(c.ps, xs, sizeof c.ps);
    snprintf(label, sizeof label, "%s same shape", name);
    run_mcase(t, &c, label, 0);
    set5(c.ps, xs[0], xs[1], 1, 1, 1);
    snprintf(label, sizeof label, "%s per (n, c)", name);
    run_mcase(t, &c, label, 1);
    set5(c.ps, 1, xs[1], 1, 1, 1);
    snprintf(label, sizeof label, "%s per channel [1,C,1,1,1]", name);
    run_mcase(t, &c, label, 0);
    set5(c.ps, xs[1], 1, 1, 1, 1);
    snprintf(label, sizeof label, "%s per channel [C]", name);
    run_mcase(t, &c, label, 1);
    set5(c.ps, 1, 1, 1, 1, 1);
    snprintf(label, sizeof label, "%s one value", name);
    run_mcase(t, &c, label, 0);
  }
  mcase c = base_case(xs);
  c.ref = bcast_ref; c.fwd = bcast_fwd; c.bwd = bcast_bwd; c.op = 2; c.value = -0.37f;
  run_mcase(t, &c, "scale", 1);

  vx_context *ctx = t->ctx;
  set_desc(t, "bad arguments");
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  int bad[5] = {1, 2, 1, 1, 1}, other[5] = {2, 3, 3, 4, 4};
  vx_tensor *a, *b, *y, *y2;
  NEED(a = ts_new(&ts, small, NULL));
  TRY("fill", vx_tensor_fill(a, 1.0f));
  NEED(b = ts_new(&ts, bad, NULL));
  TRY("fill", vx_tensor_fill(b, 1.0f));
  NEED(y = sentinel_tensor(&ts, small));
  NEED(y2 = sentinel_tensor(&ts, other));
  CHECK_REFUSED("add b does not broadcast", vx_add_broadcast(ctx, a, b, y), VX_ERR_SHAPE, "broadcast", y);
  CHECK_REFUSED("mul y shape", vx_mul_broadcast(ctx, a, a, y2), VX_ERR_SHAPE, "y", y2);
  CHECK_REFUSED("mul backward db", vx_mul_broadcast_backward(ctx, a, a, a, NULL, y2, 0), VX_ERR_SHAPE, "db", y2);
  CHECK_REFUSED("add backward db", vx_add_broadcast_backward(ctx, a, NULL, b, 0), VX_ERR_SHAPE, "db", NULL);
  CHECK_REFUSED("scale shape", vx_scale(ctx, 2.0f, a, y2), VX_ERR_SHAPE, "y", y2);
done:
  ts_free(&ts);
}

/* ================================================================ pooling */
static ref_pool to_ref_pool(const vx_pool_params *p) {
  ref_pool r;
  for (int a = 0; a < 3; a++) {
    r.k[a] = p->kernel[a];
    r.s[a] = p->stride[a];
    r.p[a] = p->padding[a];
  }
  r.include_pad = p->count_include_pad;
  return r;
}
static void pool_ref(const mcase *c, const double *x, const double *p, double *y) {
  (void)p;
  ref_pool rp = to_ref_pool(&c->pool);
  if (c->op) ref_max_pool3d(x, c->xs, &rp, y);
  else ref_avg_pool3d(x, c->xs, &rp, y);
}
static vx_status pool_fwd(vx_context *ctx, const mcase *c, const vx_tensor *x, const vx_tensor *p, vx_tensor *y) {
  (void)p;
  return c->op ? vx_max_pool3d_forward(ctx, x, &c->pool, y) : vx_avg_pool3d_forward(ctx, x, &c->pool, y);
}
static vx_status pool_bwd(vx_context *ctx, const mcase *c, const vx_tensor *x, const vx_tensor *p,
                          const vx_tensor *y, const vx_tensor *dy, vx_tensor *dx, vx_tensor *dp, int acc) {
  (void)p; (void)y; (void)dp;
  return c->op ? vx_max_pool3d_backward(ctx, x, dy, &c->pool, dx, acc) : vx_avg_pool3d_backward(ctx, dy, &c->pool, dx, acc);
}

static void run_pool(tester *t, int is_max, const int xs[5], int k, int s, int pad, int include_pad, int views) {
  mcase c = base_case(xs);
  c.ref = pool_ref; c.fwd = pool_fwd; c.bwd = pool_bwd; c.op = is_max; c.distinct = is_max;
  vx_pool_params_init(&c.pool, k, s, pad);
  c.pool.count_include_pad = include_pad;
  ref_pool rp = to_ref_pool(&c.pool);
  ref_pool_out_shape(xs, &rp, c.ys);
  c.atol = c.batol = is_max ? ELT_ATOL : SMOOTH_ATOL;
  c.rtol = c.brtol = is_max ? ELT_RTOL : SMOOTH_RTOL;
  char label[96];
  snprintf(label, sizeof label, "%s k%d s%d p%d%s", is_max ? "max" : "avg", k, s, pad,
           is_max ? "" : include_pad ? " include_pad" : " exclude_pad");
  run_mcase(t, &c, label, views);
}

/* Ties: a constant input sends every window's gradient to its first element. */
static void run_pool_ties(tester *t) {
  vx_context *ctx = t->ctx;
  int xs[5] = {1, 2, 5, 4, 5};
  vx_pool_params p;
  vx_pool_params_init(&p, 3, 2, 1);
  ref_pool rp = to_ref_pool(&p);
  int ys[5];
  ref_pool_out_shape(xs, &rp, ys);
  set_desc(t, "max k3 s2 p1 ties (constant input)");
  size_t nx = ref_numel(xs), ny = ref_numel(ys);
  float *xf = xmalloc(nx * sizeof(float)), *rf = rand_floats(t, ny, -1, 1), *dx_dev = NULL;
  for (size_t i = 0; i < nx; i++) xf[i] = 0.5f;
  double *xd = to_double(xf, nx), *rd = to_double(rf, ny), *dxd = xmalloc(nx * sizeof(double));
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  vx_tensor *x, *dy, *dx;
  NEED(x = ts_new(&ts, xs, xf));
  NEED(dy = ts_new(&ts, ys, rf));
  NEED(dx = ts_new(&ts, xs, NULL));
  TRY("backward", vx_max_pool3d_backward(ctx, x, dy, &p, dx, 0));
  NEED(dx_dev = fetch(t, ctx, dx));
  ref_max_pool3d_backward(xd, xs, &rp, rd, dxd);
  check_close(t, "backward to the first maximum", dx_dev, dxd, NULL, nx, ELT_ATOL, ELT_RTOL);
done:
  ts_free(&ts);
  free(xf); free(rf); free(dx_dev); free(xd); free(rd); free(dxd);
}

static void test_pool(tester *t) {
  int a[5] = {2, 3, 7, 6, 9}, b[5] = {1, 2, 5, 4, 7}, d2[5] = {2, 2, 1, 6, 7};
  const int *xs = t->small ? b : a;
  run_pool(t, 1, xs, 2, 2, 0, 1, 0);
  run_pool(t, 1, xs, 3, 2, 1, 1, 1);
  run_pool(t, 1, xs, 3, 1, 1, 1, 0);
  run_pool(t, 0, xs, 2, 2, 0, 1, 0);
  run_pool(t, 0, xs, 3, 2, 1, 1, 1);
  run_pool(t, 0, xs, 3, 2, 1, 0, 0);
  run_pool(t, 0, xs, 3, 1, 1, 1, 0);
  { /* 2D data (D = 1) with an anisotropic kernel */
    mcase c = base_case(d2);
    c.ref = pool_ref; c.fwd = pool_fwd; c.bwd = pool_bwd; c.op = 1; c.distinct = 1;
    vx_pool_params_init(&c.pool, 2, 2, 0);
    c.pool.kernel[0] = c.pool.stride[0] = 1;
    ref_pool rp = to_ref_pool(&c.pool);
    ref_pool_out_shape(d2, &rp, c.ys);
    run_mcase(t, &c, "max k(1,2,2) 2D", 0);
  }
  run_pool_ties(t);

  vx_context *ctx = t->ctx;
  set_desc(t, "bad arguments");
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  int ys[5] = {1, 2, 2, 2, 3}, tiny[5] = {1, 2, 1, 1, 1};
  vx_tensor *x, *y, *y2;
  NEED(x = ts_new(&ts, b, NULL));
  TRY("fill", vx_tensor_fill(x, 0.0f));
  NEED(y = sentinel_tensor(&ts, ys));
  NEED(y2 = sentinel_tensor(&ts, tiny));
  vx_pool_params p;
  vx_pool_params_init(&p, 2, 2, 0);
  CHECK_REFUSED("wrong y shape", vx_max_pool3d_forward(ctx, x, &p, y2), VX_ERR_SHAPE, "y", y2);
  vx_pool_params_init(&p, 2, 2, 2);
  CHECK_REFUSED("padding > half kernel", vx_avg_pool3d_forward(ctx, x, &p, y), VX_ERR_INVALID_ARGUMENT, "padding", y);
  vx_pool_params_init(&p, 0, 1, 0);
  CHECK_REFUSED("kernel 0", vx_max_pool3d_forward(ctx, x, &p, y), VX_ERR_INVALID_ARGUMENT, "kernel", y);
  vx_pool_params_init(&p, 9, 1, 0);
  CHECK_REFUSED("kernel larger than x", vx_max_pool3d_forward(ctx, x, &p, y), VX_ERR_SHAPE, "kernel", y);
  vx_pool_params_init(&p, 2, 2, 0);
  CHECK_REFUSED("backward x shape", vx_max_pool3d_backward(ctx, y2, y, &p, x, 0), VX_ERR_SHAPE, "x", NULL);
  CHECK_REFUSED("NULL params", vx_max_pool3d_forward(ctx, x, NULL, y), VX_ERR_INVALID_ARGUMENT, "params", y);
done:
  ts_free(&ts);
}

/* ================================================================ resizing */
static void resize_ref(const mcase *c, const double *x, const double *p, double *y) {
  (void)p;
  double sc[3] = {c->scale[0], c->scale[1], c->scale[2]};
  ref_interpolate(x, c->xs, c->mode, sc, y, c->ys);
}
static vx_status resize_fwd(vx_context *ctx, const mcase *c, const vx_tensor *x, const vx_tensor *p, vx_tensor *y) {
  (void)p;
  return vx_interpolate_forward(ctx, x, (vx_interp_mode)c->mode, c->scale, y);
}
static vx_status resize_bwd(vx_context *ctx, const mcase *c, const vx_tensor *x, const vx_tensor *p,
                            const vx_tensor *y, const vx_tensor *dy, vx_tensor *dx, vx_tensor *dp, int acc) {
  (void)x; (void)p; (void)y; (void)dp;
  return vx_interpolate_backward(ctx, dy, (vx_interp_mode)c->mode, c->scale, dx, acc);
}

static void run_resize(tester *t, int mode, const int xs[5], const int out[3], const float scale[3], int views) {
  mcase c = base_case(xs);
  c.ref = resize_ref; c.fwd = resize_fwd; c.bwd = resize_bwd; c.mode = mode;
  for (int a = 0; a < 3; a++) {
    c.scale[a] = scale ? scale[a] : 0.0f;
    c.ys[2 + a] = scale ? (int)floor(xs[2 + a] * (double)scale[a]) : out[a];
  }
  c.atol = mode ? SMOOTH_ATOL : ELT_ATOL; /* nearest copies values */
  c.rtol = mode ? SMOOTH_RTOL : ELT_RTOL;
  c.batol = SMOOTH_ATOL; /* both backwards sum several outputs */
  c.brtol = SMOOTH_RTOL;
  char label[96];
  if (scale) snprintf(label, sizeof label, "%s scale (%g, %g, %g)", mode ? "trilinear" : "nearest",
                      (double)scale[0], (double)scale[1], (double)scale[2]);
  else snprintf(label, sizeof label, "%s to size", mode ? "trilinear" : "nearest");
  run_mcase(t, &c, label, views);
}

static void test_resize(tester *t) {
  int a[5] = {2, 3, 5, 6, 7}, b[5] = {1, 2, 3, 4, 5};
  const int *xs = t->small ? b : a;
  float two[3] = {2, 2, 2}, mixed[3] = {1.5f, 0.5f, 3.0f}, odd[3] = {1.7f, 2.3f, 0.6f};
  int up[3] = {xs[2] * 2 + 1, xs[3] + 3, xs[4] * 2 - 1}, down[3] = {2, 3, 3};
  for (int mode = 0; mode < 2; mode++) {
    run_resize(t, mode, xs, NULL, two, 0);
    run_resize(t, mode, xs, NULL, mixed, 1);
    run_resize(t, mode, xs, NULL, odd, 0);
    run_resize(t, mode, xs, up, NULL, 0);
    run_resize(t, mode, xs, down, NULL, 1);
  }
  { /* a 64-byte workspace cannot hold the separable backward's intermediates: the 3-D gather */
    char req[32] = "";
    sscanf(t->dev, "%31s", req);
    vx_context_options o = {.device = req, .workspace_bytes = 64};
    vx_context *tiny = NULL, *keep = t->ctx;
    char err[512];
    if (vx_context_create(&o, &tiny, err, sizeof err) != VX_OK) {
      record(t, 0, "vx_context_create with a 64-byte workspace", "%s", err);
    } else {
      t->ctx = tiny;
      run_resize(t, 1, xs, NULL, odd, 1);
      run_resize(t, 0, xs, up, NULL, 0);
      t->ctx = keep;
      vx_context_destroy(tiny);
    }
  }
  vx_context *ctx = t->ctx;
  set_desc(t, "bad arguments");
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  int ys[5] = {1, 2, 6, 8, 11}, wrongc[5] = {1, 3, 6, 8, 10};
  vx_tensor *x, *y, *y2;
  NEED(x = ts_new(&ts, b, NULL));
  TRY("fill", vx_tensor_fill(x, 0.0f));
  NEED(y = sentinel_tensor(&ts, ys));
  NEED(y2 = sentinel_tensor(&ts, wrongc));
  CHECK_REFUSED("size does not match scale", vx_interpolate_forward(ctx, x, VX_INTERP_TRILINEAR, two, y),
                VX_ERR_SHAPE, "scaled", y);
  CHECK_REFUSED("channels differ", vx_interpolate_forward(ctx, x, VX_INTERP_NEAREST, NULL, y2), VX_ERR_SHAPE, "y", y2);
  CHECK_REFUSED("bad mode", vx_interpolate_forward(ctx, x, (vx_interp_mode)7, NULL, y), VX_ERR_INVALID_ARGUMENT,
                "mode", y);
done:
  ts_free(&ts);
}

/* ================================================================ pad, crop, split */
static void pad_ref(const mcase *c, const double *x, const double *p, double *y) {
  (void)p;
  if (c->op == 0) ref_pad(x, c->xs, c->before, c->after, c->value, y);
  else if (c->op == 1) ref_crop(x, c->xs, c->start, y, c->ys);
  else { /* split: y's buffer holds a [N, Ca, ...] then b [N, Cb, ...] */
    int as[5], bs[5], s0[5] = {0, 0, 0, 0, 0}, s1[5] = {0, c->op - 2 + 0, 0, 0, 0};
    int ca = c->op - 2;
    memcpy(as, c->xs, sizeof as);
    memcpy(bs, c->xs, sizeof bs);
    as[1] = ca;
    bs[1] = c->xs[1] - ca;
    s1[1] = ca;
    ref_crop(x, c->xs, s0, y, as);
    ref_crop(x, c->xs, s1, y + ref_numel(as), bs);
  }
}
static vx_status split_views(const mcase *c, const vx_tensor *y, vx_tensor **a, vx_tensor **b) {
  int as[5], bs[5];
  memcpy(as, c->xs, sizeof as);
  memcpy(bs, c->xs, sizeof bs);
  as[1] = c->op - 2;
  bs[1] = c->xs[1] - as[1];
  vx_status st = vx_tensor_view(y, 0, as, a);
  if (st == VX_OK) st = vx_tensor_view(y, ref_numel(as), bs, b);
  return st;
}
static vx_status pad_fwd(vx_context *ctx, const mcase *c, const vx_tensor *x, const vx_tensor *p, vx_tensor *y) {
  (void)p;
  if (c->op == 0) return vx_pad_forward(ctx, x, c->before, c->after, c->value, y);
  if (c->op == 1) return vx_crop_forward(ctx, x, c->start, y);
  vx_tensor *a = NULL, *b = NULL;
  vx_status st = split_views(c, y, &a, &b);
  if (st == VX_OK) st = vx_split_channels(ctx, x, a, b);
  vx_tensor_destroy(a);
  vx_tensor_destroy(b);
  return st;
}
static vx_status pad_bwd(vx_context *ctx, const mcase *c, const vx_tensor *x, const vx_tensor *p, const vx_tensor *y,
                         const vx_tensor *dy, vx_tensor *dx, vx_tensor *dp, int acc) {
  (void)x; (void)p; (void)y; (void)dp;
  if (c->op == 0) return vx_pad_backward(ctx, dy, c->before, c->after, dx, acc);
  if (c->op == 1) return vx_crop_backward(ctx, dy, c->start, dx, acc);
  vx_tensor *a = NULL, *b = NULL;
  vx_status st = split_views(c, dy, &a, &b);
  if (st == VX_OK) st = vx_split_channels_backward(ctx, a, b, dx, acc);
  vx_tensor_destroy(a);
  vx_tensor_destroy(b);
  return st;
}

static void test_shape(tester *t) {
  int a[5] = {2, 3, 5, 6, 7}, b[5] = {2, 3, 3, 4, 5};
  const int *xs = t->small ? b : a;
  mcase c = base_case(xs);
  c.ref = pad_ref; c.fwd = pad_fwd; c.bwd = pad_bwd; c.op = 0; c.value = 0.25f;
  int bef[3] = {1, 0, 2}, aft[3] = {2, 1, 0};
  memcpy(c.before, bef, sizeof bef);
  memcpy(c.after, aft, sizeof aft);
  for (int k = 0; k < 3; k++) c.ys[2 + k] = xs[2 + k] + bef[k] + aft[k];
  run_mcase(t, &c, "pad (1,0,2)/(2,1,0) value 0.25", 0);
  run_mcase(t, &c, "pad (1,0,2)/(2,1,0) value 0.25", 1);
  c = base_case(xs);
  c.ref = pad_ref; c.fwd = pad_fwd; c.bwd = pad_bwd; c.op = 1;
  set5(c.start, 1, 1, 1, 0, 2);
  set5(c.ys, 1, 2, xs[2] - 2, xs[3] - 1, xs[4] - 3);
  run_mcase(t, &c, "crop at (1,1,1,0,2)", 0);
  run_mcase(t, &c, "crop at (1,1,1,0,2)", 1);
  c = base_case(xs);
  c.ref = pad_ref; c.fwd = pad_fwd; c.bwd = pad_bwd; c.op = 2 + 1; /* Ca = 1 */
  run_mcase(t, &c, "split 1 + 2 channels", 0);
  c.op = 2 + 2;
  run_mcase(t, &c, "split 2 + 1 channels", 1);

  vx_context *ctx = t->ctx;
  set_desc(t, "bad arguments");
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  int big[5] = {2, 3, 4, 4, 5}, one[5] = {2, 1, 3, 4, 5}, box[5] = {1, 1, 2, 2, 2};
  vx_tensor *x, *y, *y1, *yb;
  NEED(x = ts_new(&ts, b, NULL));
  TRY("fill", vx_tensor_fill(x, 0.0f));
  NEED(y = sentinel_tensor(&ts, big));
  NEED(y1 = sentinel_tensor(&ts, one));
  NEED(yb = sentinel_tensor(&ts, box));
  int pb[3] = {1, 0, 0}, pa[3] = {1, 0, 0}, neg[3] = {-1, 0, 0};
  CHECK_REFUSED("pad y shape", vx_pad_forward(ctx, x, pb, pa, 0.0f, y), VX_ERR_SHAPE, "y", y);
  CHECK_REFUSED("negative pad", vx_pad_forward(ctx, x, neg, pa, 0.0f, y), VX_ERR_INVALID_ARGUMENT, "negative", y);
  int st_out[5] = {0, 0, 2, 3, 0};
  CHECK_REFUSED("crop box outside", vx_crop_forward(ctx, x, st_out, yb), VX_ERR_SHAPE, "box", yb);
  CHECK_REFUSED("split channels", vx_split_channels(ctx, x, y1, y1), VX_ERR_SHAPE, "channels", y1);
done:
  ts_free(&ts);
}

/* ================================================================ losses */
typedef struct {
  int kl;
  double weight;
  double *a, *b;
  size_t n;
} lstate;

static double loss_ref_more(void *sv) {
  lstate *s = sv;
  return s->weight * (s->kl ? ref_kl(s->a, s->b, s->n) : ref_mse(s->a, s->b, s->n));
}

static void run_loss_more(tester *t, int kl, const int xs[5], float weight, int views) {
  vx_context *ctx = t->ctx;
  char b1[64];
  set_desc(t, "%s x%s weight %g%s", kl ? "kl" : "mse", shape_str(xs, b1, sizeof b1), (double)weight,
           views ? " views" : "");
  size_t n = ref_numel(xs);
  float *af = rand_floats(t, n, -1, 1), *bf = rand_floats(t, n, kl ? 0.2 : -1, kl ? 1.5 : 1);
  float *pa = rand_floats(t, n, -1, 1), *pb = rand_floats(t, n, -1, 1);
  lstate s = {kl, weight, to_double(af, n), to_double(bf, n), n};
  float *da1 = NULL, *db1 = NULL, *da2 = NULL, *db2 = NULL;
  double *acc = NULL;
  tensor_set ts;
  ts_init(&ts, t, ctx, views);
  vx_tensor *a, *b, *da, *db;
  NEED(a = ts_new(&ts, xs, af));
  NEED(b = ts_new(&ts, xs, bf));
  NEED(da = ts_new(&ts, xs, NULL));
  NEED(db = ts_new(&ts, xs, NULL));
  float value = 0, value2 = 0;
  if (kl) TRY("loss", vx_kl_loss(ctx, a, b, weight, &value, da, db, 0));
  else TRY("loss", vx_mse_loss(ctx, a, b, weight, &value, da, 0));
  double ref = loss_ref_more(&s);
  float vf = value;
  check_close(t, "loss value", &vf, &ref, NULL, 1, 1e-6, 1e-5);
  NEED(da1 = fetch(t, ctx, da));
  fd_check(t, kl ? "dmu" : "dinput", loss_ref_more, &s, s.a, n, da1, FD_H, SMOOTH_ATOL * 1e-2, SMOOTH_RTOL);
  if (kl) {
    NEED(db1 = fetch(t, ctx, db));
    fd_check(t, "dsigma", loss_ref_more, &s, s.b, n, db1, FD_H * 1e-1, SMOOTH_ATOL * 1e-2, SMOOTH_RTOL);
  }
  if (kl) TRY("loss (again)", vx_kl_loss(ctx, a, b, weight, &value2, da, db, 0));
  else TRY("loss (again)", vx_mse_loss(ctx, a, b, weight, &value2, da, 0));
  check_bitwise(t, "loss value deterministic", &value, &value2, 1);
  NEED(da2 = fetch(t, ctx, da));
  check_bitwise(t, "gradient deterministic", da1, da2, n);
  TRY("upload", vx_tensor_upload(da, pa));
  TRY("upload", vx_tensor_upload(db, pb));
  if (kl) TRY("loss (accumulate)", vx_kl_loss(ctx, a, b, weight, &value2, da, db, 1));
  else TRY("loss (accumulate)", vx_mse_loss(ctx, a, b, weight, &value2, da, 1));
  free(da2);
  NEED(da2 = fetch(t, ctx, da));
  acc = sum_double(pa, da1, n);
  check_close(t, "gradient accumulate", da2, acc, NULL, n, ELT_ATOL, ELT_RTOL);
  if (kl) {
    free(acc);
    NEED(db2 = fetch(t, ctx, db));
    acc = sum_double(pb, db1, n);
    check_close(t, "dsigma accumulate", db2, acc, NULL, n, ELT_ATOL, ELT_RTOL);
  }
done:
  ts_free(&ts);
  free(af); free(bf); free(pa); free(pb); free(s.a); free(s.b); free(acc);
  free(da1); free(db1); free(da2); free(db2);
}

static void test_loss_more(tester *t) {
  int a[5] = {2, 3, 5, 7, 6}, b[5] = {1, 3, 3, 4, 5}, v[5] = {2, 256, 1, 1, 1};
  const int *xs = t->small ? b : a;
  run_loss_more(t, 0, xs, 1.0f, 0);
  run_loss_more(t, 0, xs, 0.1f, 1);
  run_loss_more(t, 1, v, 0.1f, 0); /* the VAE's latent: [N, 256] */
  run_loss_more(t, 1, xs, 1.0f, 1);
  vx_context *ctx = t->ctx;
  set_desc(t, "bad arguments");
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  vx_tensor *x, *y, *bad, *sig;
  NEED(x = ts_new(&ts, b, NULL));
  TRY("fill", vx_tensor_fill(x, 0.5f));
  NEED(y = sentinel_tensor(&ts, b));
  NEED(bad = sentinel_tensor(&ts, v));
  NEED(sig = ts_new(&ts, b, NULL));
  TRY("fill", vx_tensor_fill(sig, 0.0f));
  float value;
  CHECK_REFUSED("mse target shape", vx_mse_loss(ctx, x, bad, 1.0f, &value, y, 0), VX_ERR_SHAPE, "target", y);
  CHECK_REFUSED("mse dinput shape", vx_mse_loss(ctx, x, x, 1.0f, &value, bad, 0), VX_ERR_SHAPE, "dinput", bad);
  CHECK_REFUSED("kl NULL loss", vx_kl_loss(ctx, x, x, 1.0f, NULL, y, NULL, 0), VX_ERR_INVALID_ARGUMENT, "loss", y);
  CHECK_REFUSED("kl sigma 0", vx_kl_loss(ctx, x, sig, 1.0f, &value, y, NULL, 0), VX_ERR_NOT_FINITE, "sigma", y);
done:
  ts_free(&ts);
}

/* ================================================================ gradient clipping */
static void run_clip_norm(tester *t, size_t n, double max_norm, double range, int views) {
  vx_context *ctx = t->ctx;
  set_desc(t, "clip_grad_norm n %zu max_norm %g values in +-%g%s", n, max_norm, range, views ? " views" : "");
  int xs[5] = {1, 1, 1, 1, (int)n};
  float *gf = rand_floats(t, n, -range, range), *g1 = NULL, *g2 = NULL;
  double ss = 0;
  for (size_t i = 0; i < n; i++) ss += (double)gf[i] * gf[i];
  double norm = sqrt(ss), coef = max_norm / (norm + 1e-6);
  double *ref = xmalloc(n * sizeof(double));
  for (size_t i = 0; i < n; i++) ref[i] = coef < 1 ? gf[i] * coef : gf[i];
  tensor_set ts;
  ts_init(&ts, t, ctx, views);
  vx_tensor *g;
  float tn = 0, tn2 = 0;
  NEED(g = ts_new(&ts, xs, gf));
  TRY("clip", vx_clip_grad_norm(ctx, g, (float)max_norm, &tn));
  float tf = tn;
  check_close(t, "total norm", &tf, &norm, NULL, 1, 1e-6, 1e-5);
  NEED(g1 = fetch(t, ctx, g));
  check_close(t, "clipped gradient", g1, ref, NULL, n, ELT_ATOL, 1e-5);
  TRY("upload", vx_tensor_upload(g, gf));
  TRY("clip (again)", vx_clip_grad_norm(ctx, g, (float)max_norm, &tn2));
  NEED(g2 = fetch(t, ctx, g));
  check_bitwise(t, "norm deterministic", &tn, &tn2, 1);
  check_bitwise(t, "clipped deterministic", g1, g2, n);
done:
  ts_free(&ts);
  free(gf); free(g1); free(g2); free(ref);
}

static void test_clip(tester *t) {
  size_t n = t->small ? 301 : 100003;
  run_clip_norm(t, n, 1.0, 1.0, 0);   /* clipped */
  run_clip_norm(t, n, 1e6, 1.0, 1);   /* untouched */
  run_clip_norm(t, 1, 0.5, 1.0, 0);
  vx_context *ctx = t->ctx;
  set_desc(t, "clip_grad_value 0.1");
  size_t m = 997;
  int xs[5] = {1, 1, 1, 1, (int)m};
  float *gf = rand_floats(t, m, -1, 1), *g1 = NULL;
  double *ref = xmalloc(m * sizeof(double));
  for (size_t i = 0; i < m; i++) ref[i] = gf[i] > 0.1f ? 0.1f : gf[i] < -0.1f ? -0.1f : gf[i];
  tensor_set ts;
  ts_init(&ts, t, ctx, 1);
  vx_tensor *g, *s;
  NEED(g = ts_new(&ts, xs, gf));
  TRY("clip value", vx_clip_grad_value(ctx, g, 0.1f));
  NEED(g1 = fetch(t, ctx, g));
  check_close(t, "clipped values", g1, ref, NULL, m, 0, 0);
  set_desc(t, "bad arguments");
  NEED(s = sentinel_tensor(&ts, xs));
  CHECK_REFUSED("max_norm 0", vx_clip_grad_norm(ctx, s, 0.0f, NULL), VX_ERR_INVALID_ARGUMENT, "max_norm", s);
  CHECK_REFUSED("clip < 0", vx_clip_grad_value(ctx, s, -1.0f), VX_ERR_INVALID_ARGUMENT, "clip", s);
  {
    float nanv = NAN;
    TRY("upload", vx_tensor_upload(g, gf));
    vx_tensor *one;
    int os[5] = {1, 1, 1, 1, 1};
    NEED(one = ts_new(&ts, os, &nanv));
    float tn;
    CHECK_REFUSED("non-finite norm", vx_clip_grad_norm(ctx, one, 1.0f, &tn), VX_ERR_NOT_FINITE, "norm", NULL);
  }
done:
  ts_free(&ts);
  free(gf); free(g1); free(ref);
}

/* ================================================================ driver */
static const op_entry k_ops[] = {
    {"activation", test_activation_more}, {"broadcast", test_broadcast}, {"pool", test_pool},
    {"resize", test_resize}, {"shape", test_shape}, {"loss", test_loss_more}, {"clip", test_clip},
};

int main(int argc, char **argv) {
  return op_test_main(argc, argv, "test_ops_more", k_ops, sizeof k_ops / sizeof k_ops[0], 0x5eed0000ULL, 0);
}
