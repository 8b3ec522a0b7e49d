/* test_ops_norm: the normalisation family (batch norm in training and inference mode, group
 * norm, channel layer norm) on every OpenCL device, against the double-precision references
 * in tests/ref/ref_norm.c. Instance norm (group norm with groups = C) is in test_ops.
 *
 *   test_ops_norm [-d P:D|gpu|cpu|NAME] [-o OP[,OP...]] [--small] [-v]
 *
 * ops: batch_norm, group_norm, layer_norm. --small: tiny shapes only (for Oclgrind).
 * For each case, over odd sizes, N = 1 and 2, affine on and off, every activation, shapes with
 * one and several reduction chunks per row (the chunk is 64 floats up to 4096, then 512):
 *   - forward values and the saved statistics against the reference;
 *   - batch norm training: running mean/var after the update (momentum 0.1, unbiased var);
 *   - a second forward and a second backward are bitwise identical;
 *   - dx, dgamma, dbeta against central finite differences of the double reference of
 *     L = sum(r .* y) (the device gets dy = r), on a sample that holds the first and last element;
 *   - accumulate = 1 adds to what the outputs held;
 *   - bad arguments are refused before anything runs, with a message naming the argument, and
 *     the output left untouched.
 * One line per failed check, then "N passed, M failed"; exit 1 when anything failed, 77 (ctest:
 * skipped) without an OpenCL device. Fixed RNG seed: runs repeat. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ref/ref_norm.h"
#include "ref/ref_ops.h"
#include "voxcl.h"

/* ---------------------------------------------------------------- tolerances
 * Inputs are O(1). Gradients are float32 sums over a statistics row (up to ~10^4 values in
 * chunks of <= 512 summed pairwise-ish, then chunk sums in order): rounding stays ~1e-6, the
 * bound is ~1e-4. Forward values are O(1), a handful of float ops on top of the row's mean and
 * 1/std: 1e-5 is well above the error seen (~1e-6). Running statistics: one float update. */
#define NORM_ATOL 1e-4
#define NORM_RTOL 1e-4
#define NORM_FWD_ATOL 1e-5
#define NORM_FWD_RTOL 1e-5
#define RUNNING_ATOL 1e-6
#define RUNNING_RTOL 1e-5

/* ---------------------------------------------------------------- finite differences
 * h = 1e-6 keeps truncation (h^2 f''') below 1e-10 and roundoff (1e-16 |L| / h) below 1e-8; a
 * ReLU kink is crossed only when a pre-activation lies within ~h of 0 (~1e-6 per element). */
#define FD_H_NORM 1e-6

#include "ref/op_harness.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ================================================================ the norm cases */
enum { K_GROUP, K_BATCH_TRAIN, K_BATCH_EVAL, K_LAYER };
static const char *k_kind_names[] = {"group", "batch (training)", "batch (inference)", "layer (channels)"};
static const char *k_act_names[] = {"none", "relu", "leaky_relu"};

typedef struct {
  int kind, N, C, sp[3], groups, affine, act;
  float slope;
} norm_case;

typedef struct {
  int kind, N, C, G, act;
  size_t S;
  double *x, *gamma, *beta, *r, *y, *rm, *rv;
  double slope, eps, momentum;
} norm_state;

/* y of the case's reference into s->y (running statistics are not updated: they do not enter
 * y in training mode and are fixed in inference mode). */
static void norm_ref(norm_state *s, double *save) {
  switch (s->kind) {
  case K_GROUP:
    ref_group_norm_forward(s->x, s->N, s->C, s->S, s->G, s->gamma, s->beta, s->eps, s->act, s->slope, s->y, save);
    break;
  case K_BATCH_TRAIN:
  case K_BATCH_EVAL:
    ref_batch_norm_forward(s->x, s->N, s->C, s->S, s->gamma, s->beta, s->kind == K_BATCH_TRAIN,
                           s->kind == K_BATCH_TRAIN ? NULL : s->rm, s->kind == K_BATCH_TRAIN ? NULL : s->rv,
                           s->momentum, s->eps, s->act, s->slope, s->y, save);
    break;
  default:
    ref_layer_norm_channels_forward(s->x, s->N, s->C, s->S, s->gamma, s->beta, s->eps, s->y, save);
  }
}

static double norm_loss(void *sv) {
  norm_state *s = sv;
  norm_ref(s, NULL);
  return dot(s->r, s->y, (size_t)s->N * s->C * s->S);
}

typedef struct {
  const norm_case *nc;
  vx_tensor *x, *g, *b, *rm, *rv, *y, *save, *dy, *dx, *dg, *db;
  float eps, momentum;
} dev_args;

static vx_status dev_forward(vx_context *ctx, const dev_args *a) {
  const norm_case *nc = a->nc;
  vx_activation act = (vx_activation)nc->act;
  switch (nc->kind) {
  case K_GROUP:
    return vx_group_norm_forward(ctx, a->x, nc->groups, a->g, a->b, a->eps, act, nc->slope, a->y, a->save);
  case K_BATCH_TRAIN:
  case K_BATCH_EVAL:
    return vx_batch_norm_forward(ctx, a->x, a->g, a->b, a->rm, a->rv, nc->kind == K_BATCH_TRAIN, a->momentum, a->eps,
                                 act, nc->slope, a->y, a->save);
  default:
    return vx_layer_norm_channels_forward(ctx, a->x, a->g, a->b, a->eps, a->y, a->save);
  }
}

static vx_status dev_backward(vx_context *ctx, const dev_args *a, int accumulate) {
  const norm_case *nc = a->nc;
  vx_activation act = (vx_activation)nc->act;
  switch (nc->kind) {
  case K_GROUP:
    return vx_group_norm_backward(ctx, a->x, nc->groups, a->y, a->dy, a->g, a->save, act, nc->slope, a->dx, a->dg,
                                  a->db, accumulate);
  case K_BATCH_TRAIN:
  case K_BATCH_EVAL:
    return vx_batch_norm_backward(ctx, a->x, a->y, a->dy, a->g, a->save, nc->kind == K_BATCH_TRAIN, act, nc->slope,
                                  a->dx, a->dg, a->db, accumulate);
  default:
    return vx_layer_norm_channels_backward(ctx, a->x, a->dy, a->g, a->save, a->dx, a->dg, a->db, accumulate);
  }
}

/* Number of saved statistics pairs. */
static size_t save_pairs(const norm_case *nc, size_t S) {
  if (nc->kind == K_GROUP) return (size_t)nc->N * nc->groups;
  if (nc->kind == K_LAYER) return (size_t)nc->N * S;
  return (size_t)nc->C;
}

static void run_norm_case(tester *t, const norm_case *nc, int views) {
  vx_context *ctx = t->ctx;
  int xs[5] = {nc->N, nc->C, nc->sp[0], nc->sp[1], nc->sp[2]}, cs[5] = {1, nc->C, 1, 1, 1};
  size_t nx = ref_numel(xs), C = (size_t)nc->C, S = (size_t)nc->sp[0] * nc->sp[1] * nc->sp[2];
  size_t np = save_pairs(nc, S);
  int ss[5] = {1, 1, 1, 1, (int)(2 * np)};
  char b1[64];
  set_desc(t, "%s norm x%s %s act %s slope %g%s", k_kind_names[nc->kind], shape_str(xs, b1, sizeof b1),
           nc->affine ? "affine" : "no affine", k_act_names[nc->act],
           (double)nc->slope, views ? " views" : "");
  if (nc->kind == K_GROUP) {
    size_t l = strlen(t->desc);
    snprintf(t->desc + l, sizeof t->desc - l, " groups %d", nc->groups);
  }
  const float eps = nc->kind == K_LAYER ? 1e-6f : 1e-5f, momentum = 0.1f;
  float *xf = rand_floats(t, nx, -1, 1);
  for (size_t i = 0; i < nx; i++) xf[i] += (float)(i / S % 3); /* channel means 0, 1, 2: the mean matters */
  float *gf = rand_floats(t, C, 0.5, 1.5), *bf = rand_floats(t, C, -0.5, 0.5), *rf = rand_floats(t, nx, -1, 1);
  float *rmf = rand_floats(t, C, -0.5, 0.5), *rvf = rand_floats(t, C, 0.5, 1.5);
  float *px = rand_floats(t, nx, -1, 1), *pg = rand_floats(t, C, -1, 1), *pb = rand_floats(t, C, -1, 1);
  norm_state s = {nc->kind, nc->N, nc->C, nc->groups, nc->act, S, to_double(xf, nx),
                  nc->affine ? to_double(gf, C) : NULL, nc->affine ? to_double(bf, C) : NULL, to_double(rf, nx),
                  xmalloc(nx * sizeof(double)), to_double(rmf, C), to_double(rvf, C), (double)nc->slope, (double)eps,
                  (double)momentum};
  float *y_dev = NULL, *y2 = NULL, *save_dev = NULL, *rm_dev = NULL, *rv_dev = NULL, *dx1 = NULL, *dg1 = NULL,
        *db1 = NULL, *dx2 = NULL, *dg2 = NULL, *db2 = NULL;
  double *stats = xmalloc(2 * np * sizeof(double)), *acc = NULL, *rm_ref = NULL, *rv_ref = NULL;
  double *yscratch = xmalloc(nx * sizeof(double));

  tensor_set ts;
  ts_init(&ts, t, ctx, views);
  dev_args a = {.nc = nc, .eps = eps, .momentum = momentum};
  NEED(a.x = ts_new(&ts, xs, xf));
  if (nc->affine) {
    NEED(a.g = ts_new(&ts, cs, gf));
    NEED(a.b = ts_new(&ts, cs, bf));
    NEED(a.dg = ts_new(&ts, cs, NULL));
    NEED(a.db = ts_new(&ts, cs, NULL));
  }
  if (nc->kind == K_BATCH_TRAIN || nc->kind == K_BATCH_EVAL) {
    NEED(a.rm = ts_new(&ts, cs, rmf));
    NEED(a.rv = ts_new(&ts, cs, rvf));
  }
  NEED(a.y = ts_new(&ts, xs, NULL));
  NEED(a.save = ts_new(&ts, ss, NULL));
  NEED(a.dy = ts_new(&ts, xs, rf));
  NEED(a.dx = ts_new(&ts, xs, NULL));

  TRY("forward", dev_forward(ctx, &a));
  NEED(y_dev = fetch(t, ctx, a.y));
  NEED(save_dev = fetch(t, ctx, a.save));
  norm_ref(&s, stats);
  check_close(t, "forward y", y_dev, s.y, NULL, nx, NORM_FWD_ATOL, NORM_FWD_RTOL);
  check_close(t, "forward save (mean, 1/std)", save_dev, stats, NULL, 2 * np, NORM_FWD_ATOL, NORM_FWD_RTOL);
  if (a.rm) { /* training: updated as PyTorch does; inference: unchanged */
    rm_ref = to_double(rmf, C);
    rv_ref = to_double(rvf, C);
    if (nc->kind == K_BATCH_TRAIN)
      ref_batch_norm_forward(s.x, s.N, s.C, S, s.gamma, s.beta, 1, rm_ref, rv_ref, s.momentum, s.eps, s.act, s.slope,
                             yscratch, NULL);
    NEED(rm_dev = fetch(t, ctx, a.rm));
    NEED(rv_dev = fetch(t, ctx, a.rv));
    check_close(t, "running_mean", rm_dev, rm_ref, NULL, C, RUNNING_ATOL, RUNNING_RTOL);
    check_close(t, "running_var", rv_dev, rv_ref, NULL, C, RUNNING_ATOL, RUNNING_RTOL);
    TRY("upload", vx_tensor_upload(a.rm, rmf));
    TRY("upload", vx_tensor_upload(a.rv, rvf));
  }
  TRY("forward (again)", dev_forward(ctx, &a));
  NEED(y2 = fetch(t, ctx, a.y));
  check_bitwise(t, "forward y deterministic", y_dev, y2, nx);

  TRY("backward", dev_backward(ctx, &a, 0));
  NEED(dx1 = fetch(t, ctx, a.dx));
  fd_check(t, "backward dx", norm_loss, &s, s.x, nx, dx1, FD_H_NORM, NORM_ATOL, NORM_RTOL);
  if (nc->affine) {
    NEED(dg1 = fetch(t, ctx, a.dg));
    NEED(db1 = fetch(t, ctx, a.db));
    fd_check(t, "backward dgamma", norm_loss, &s, s.gamma, C, dg1, FD_H_NORM, NORM_ATOL, NORM_RTOL);
    fd_check(t, "backward dbeta", norm_loss, &s, s.beta, C, db1, FD_H_NORM, NORM_ATOL, NORM_RTOL);
  }

  TRY("backward (again)", dev_backward(ctx, &a, 0));
  NEED(dx2 = fetch(t, ctx, a.dx));
  check_bitwise(t, "backward dx deterministic", dx1, dx2, nx);
  if (nc->affine) {
    NEED(dg2 = fetch(t, ctx, a.dg));
    NEED(db2 = fetch(t, ctx, a.db));
    check_bitwise(t, "backward dgamma deterministic", dg1, dg2, C);
    check_bitwise(t, "backward dbeta deterministic", db1, db2, C);
  }

  TRY("upload", vx_tensor_upload(a.dx, px));
  if (nc->affine) {
    TRY("upload", vx_tensor_upload(a.dg, pg));
    TRY("upload", vx_tensor_upload(a.db, pb));
  }
  TRY("backward (accumulate)", dev_backward(ctx, &a, 1));
  free(dx2);
  NEED(dx2 = fetch(t, ctx, a.dx));
  acc = sum_double(px, dx1, nx);
  check_close(t, "backward dx accumulate", dx2, acc, NULL, nx, NORM_ATOL, NORM_RTOL);
  if (nc->affine) {
    free(dg2);
    free(db2);
    dg2 = db2 = NULL;
    NEED(dg2 = fetch(t, ctx, a.dg));
    NEED(db2 = fetch(t, ctx, a.db));
    free(acc);
    acc = sum_double(pg, dg1, C);
    check_close(t, "backward dgamma accumulate", dg2, acc, NULL, C, NORM_ATOL, NORM_RTOL);
    free(acc);
    acc = sum_double(pb, db1, C);
    check_close(t, "backward dbeta accumulate", db2, acc, NULL, C, NORM_ATOL, NORM_RTOL);
  }
done:
  ts_free(&ts);
  free(xf); free(gf); free(bf); free(rf); free(rmf); free(rvf); free(px); free(pg); free(pb);
  free(s.x); free(s.gamma); free(s.beta); free(s.r); free(s.y); free(s.rm); free(s.rv);
  free(stats); free(acc); free(rm_ref); free(rv_ref); free(yscratch);
  free(y_dev); free(y2); free(save_dev); free(rm_dev); free(rv_dev);
  free(dx1); free(dg1); free(db1); free(dx2); free(dg2); free(db2);
}

/* ================================================================ refusals */
static void norm_refusals(tester *t, int kind) {
  vx_context *ctx = t->ctx;
  set_desc(t, "%s norm: bad arguments", k_kind_names[kind]);
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  int xs[5] = {2, 4, 2, 3, 2}, xbad[5] = {2, 4, 2, 3, 3}, cs[5] = {1, 4, 1, 1, 1}, c3[5] = {1, 3, 1, 1, 1};
  int ss[5] = {1, 1, 1, 1, 2 * 2 * 12}, s1[5] = {1, 1, 1, 1, 1}, x1[5] = {1, 4, 1, 1, 1};
  vx_tensor *x, *g, *b, *g3, *y, *yb, *save, *ssmall, *dy, *dx, *rm, *rv, *rm3, *xone, *yone;
  NEED(x = ts_new(&ts, xs, NULL));
  TRY("fill", vx_tensor_fill(x, 0.5f));
  NEED(g = ts_new(&ts, cs, NULL));
  TRY("fill", vx_tensor_fill(g, 1.0f));
  NEED(b = ts_new(&ts, cs, NULL));
  TRY("fill", vx_tensor_fill(b, 0.0f));
  NEED(g3 = ts_new(&ts, c3, NULL));
  TRY("fill", vx_tensor_fill(g3, 1.0f));
  NEED(rm = ts_new(&ts, cs, NULL));
  TRY("fill", vx_tensor_fill(rm, 0.0f));
  NEED(rv = ts_new(&ts, cs, NULL));
  TRY("fill", vx_tensor_fill(rv, 1.0f));
  NEED(rm3 = ts_new(&ts, c3, NULL));
  TRY("fill", vx_tensor_fill(rm3, 0.0f));
  NEED(dy = ts_new(&ts, xs, NULL));
  TRY("fill", vx_tensor_fill(dy, 0.25f));
  NEED(y = sentinel_tensor(&ts, xs));
  NEED(yb = sentinel_tensor(&ts, xbad));
  NEED(save = sentinel_tensor(&ts, ss));
  NEED(ssmall = sentinel_tensor(&ts, s1));
  NEED(dx = sentinel_tensor(&ts, xs));
  const vx_activation none = VX_ACT_NONE;
  if (kind == K_GROUP) {
    CHECK_REFUSED("groups not dividing C", vx_group_norm_forward(ctx, x, 3, g, b, 1e-5f, none, 0.f, y, save),
                  VX_ERR_INVALID_ARGUMENT, "groups", y);
    CHECK_REFUSED("groups zero", vx_group_norm_forward(ctx, x, 0, g, b, 1e-5f, none, 0.f, y, save),
                  VX_ERR_INVALID_ARGUMENT, "groups", y);
    CHECK_REFUSED("gamma size mismatch", vx_group_norm_forward(ctx, x, 2, g3, b, 1e-5f, none, 0.f, y, save),
                  VX_ERR_SHAPE, "gamma", y);
    CHECK_REFUSED("gamma without beta", vx_group_norm_forward(ctx, x, 2, g, NULL, 1e-5f, none, 0.f, y, save),
                  VX_ERR_INVALID_ARGUMENT, "beta", y);
    CHECK_REFUSED("eps zero", vx_group_norm_forward(ctx, x, 2, g, b, 0.0f, none, 0.f, y, save),
                  VX_ERR_INVALID_ARGUMENT, "eps", y);
    CHECK_REFUSED("eps negative", vx_group_norm_forward(ctx, x, 2, g, b, -1e-5f, none, 0.f, y, save),
                  VX_ERR_INVALID_ARGUMENT, "eps", y);
    CHECK_REFUSED("output shape mismatch", vx_group_norm_forward(ctx, x, 2, g, b, 1e-5f, none, 0.f, yb, save),
                  VX_ERR_SHAPE, "output", yb);
    CHECK_REFUSED("save too small", vx_group_norm_forward(ctx, x, 2, g, b, 1e-5f, none, 0.f, y, ssmall), VX_ERR_SHAPE,
                  "save", y);
    CHECK_REFUSED("backward groups not dividing C",
                  vx_group_norm_backward(ctx, x, 3, y, dy, g, save, none, 0.f, dx, NULL, NULL, 0),
                  VX_ERR_INVALID_ARGUMENT, "groups", dx);
    CHECK_REFUSED("backward gamma size mismatch",
                  vx_group_norm_backward(ctx, x, 2, y, dy, g3, save, none, 0.f, dx, NULL, NULL, 0), VX_ERR_SHAPE,
                  "gamma", dx);
    CHECK_REFUSED("backward dgamma without dbeta",
                  vx_group_norm_backward(ctx, x, 2, y, dy, g, save, none, 0.f, dx, g, NULL, 0), VX_ERR_SHAPE,
                  "dbeta", dx);
    CHECK_REFUSED("backward dy shape mismatch",
                  vx_group_norm_backward(ctx, x, 2, y, yb, g, save, none, 0.f, dx, NULL, NULL, 0), VX_ERR_SHAPE,
                  "output gradient", dx);
  } else if (kind == K_BATCH_TRAIN) {
    CHECK_REFUSED("gamma size mismatch",
                  vx_batch_norm_forward(ctx, x, g3, b, rm, rv, 1, 0.1f, 1e-5f, none, 0.f, y, save), VX_ERR_SHAPE,
                  "gamma", y);
    CHECK_REFUSED("eps zero", vx_batch_norm_forward(ctx, x, g, b, rm, rv, 1, 0.1f, 0.0f, none, 0.f, y, save),
                  VX_ERR_INVALID_ARGUMENT, "eps", y);
    CHECK_REFUSED("running_mean size mismatch",
                  vx_batch_norm_forward(ctx, x, g, b, rm3, rv, 1, 0.1f, 1e-5f, none, 0.f, y, save), VX_ERR_SHAPE,
                  "running_mean", y);
    CHECK_REFUSED("running_mean without running_var",
                  vx_batch_norm_forward(ctx, x, g, b, rm, NULL, 1, 0.1f, 1e-5f, none, 0.f, y, save),
                  VX_ERR_INVALID_ARGUMENT, "running_var", y);
    CHECK_REFUSED("inference without running statistics",
                  vx_batch_norm_forward(ctx, x, g, b, NULL, NULL, 0, 0.1f, 1e-5f, none, 0.f, y, save),
                  VX_ERR_INVALID_ARGUMENT, "running_mean", y);
    CHECK_REFUSED("momentum out of range",
                  vx_batch_norm_forward(ctx, x, g, b, rm, rv, 1, 1.5f, 1e-5f, none, 0.f, y, save),
                  VX_ERR_INVALID_ARGUMENT, "momentum", y);
    CHECK_REFUSED("save too small", vx_batch_norm_forward(ctx, x, g, b, rm, rv, 1, 0.1f, 1e-5f, none, 0.f, y, ssmall),
                  VX_ERR_SHAPE, "save", y);
    NEED(xone = ts_new(&ts, x1, NULL));
    TRY("fill", vx_tensor_fill(xone, 0.5f));
    NEED(yone = sentinel_tensor(&ts, x1));
    CHECK_REFUSED("training with one value per channel",
                  vx_batch_norm_forward(ctx, xone, g, b, rm, rv, 1, 0.1f, 1e-5f, none, 0.f, yone, save), VX_ERR_SHAPE,
                  "one value", yone);
    CHECK_REFUSED("backward gamma size mismatch",
                  vx_batch_norm_backward(ctx, x, y, dy, g3, save, 1, none, 0.f, dx, NULL, NULL, 0), VX_ERR_SHAPE,
                  "gamma", dx);
    CHECK_REFUSED("backward save too small",
                  vx_batch_norm_backward(ctx, x, y, dy, g, ssmall, 1, none, 0.f, dx, NULL, NULL, 0), VX_ERR_SHAPE,
                  "save", dx);
  } else {
    CHECK_REFUSED("gamma size mismatch", vx_layer_norm_channels_forward(ctx, x, g3, b, 1e-6f, y, save), VX_ERR_SHAPE,
                  "gamma", y);
    CHECK_REFUSED("eps zero", vx_layer_norm_channels_forward(ctx, x, g, b, 0.0f, y, save), VX_ERR_INVALID_ARGUMENT,
                  "eps", y);
    CHECK_REFUSED("save too small", vx_layer_norm_channels_forward(ctx, x, g, b, 1e-6f, y, ssmall), VX_ERR_SHAPE,
                  "save", y);
    CHECK_REFUSED("output shape mismatch", vx_layer_norm_channels_forward(ctx, x, g, b, 1e-6f, yb, save),
                  VX_ERR_SHAPE, "output", yb);
    CHECK_REFUSED("backward gamma size mismatch",
                  vx_layer_norm_channels_backward(ctx, x, dy, g3, save, dx, NULL, NULL, 0), VX_ERR_SHAPE, "gamma",
                  dx);
    CHECK_REFUSED("backward input gradient shape mismatch",
                  vx_layer_norm_channels_backward(ctx, x, dy, g, save, yb, NULL, NULL, 0), VX_ERR_SHAPE,
                  "input gradient", yb);
  }
done:
  ts_free(&ts);
}

/* ================================================================ the ops */
#define GN(N, C, D, H, W, G, A, ACT, SL) {K_GROUP, N, C, {D, H, W}, G, A, ACT, SL}
#define BN(K, N, C, D, H, W, A, ACT, SL) {K, N, C, {D, H, W}, 0, A, ACT, SL}
#define LN(N, C, D, H, W, A) {K_LAYER, N, C, {D, H, W}, 0, A, VX_ACT_NONE, 0.0f}

static void run_cases(tester *t, const norm_case *full, size_t nfull, const norm_case *small, size_t nsmall) {
  const norm_case *cases = t->small ? small : full;
  size_t n = t->small ? nsmall : nfull;
  for (size_t i = 0; i < n; i++) run_norm_case(t, &cases[i], 0);
  run_norm_case(t, &cases[0], 1); /* odd offsets into one buffer */
}

static void test_group_norm(tester *t) {
  static const norm_case full[] = {
      GN(2, 6, 3, 5, 7, 3, 1, VX_ACT_LEAKY_RELU, 0.01f), GN(2, 6, 3, 5, 7, 2, 1, VX_ACT_RELU, 0.0f),
      GN(1, 8, 4, 4, 4, 2, 0, VX_ACT_NONE, 0.0f),        GN(2, 4, 5, 3, 1, 1, 1, VX_ACT_NONE, 0.0f), /* groups = 1 */
      GN(2, 6, 3, 5, 7, 6, 1, VX_ACT_LEAKY_RELU, 0.2f),  /* groups = C: instance norm */
      GN(2, 4, 17, 17, 17, 2, 1, VX_ACT_RELU, 0.0f),     /* several 512-float chunks with a tail */
      GN(1, 2, 1, 1, 3, 2, 1, VX_ACT_NONE, 0.0f),        /* 3 voxels */
  };
  static const norm_case small[] = {
      GN(2, 4, 3, 5, 7, 2, 1, VX_ACT_LEAKY_RELU, 0.01f), /* 105 voxels: two 64-float chunks */
      GN(1, 6, 2, 3, 5, 3, 0, VX_ACT_RELU, 0.0f),
      GN(2, 2, 3, 1, 5, 1, 1, VX_ACT_NONE, 0.0f),
  };
  run_cases(t, full, COUNT(full), small, COUNT(small));
  norm_refusals(t, K_GROUP);
}

static void test_batch_norm(tester *t) {
  static const norm_case full[] = {
      BN(K_BATCH_TRAIN, 2, 3, 3, 5, 7, 1, VX_ACT_LEAKY_RELU, 0.01f),
      BN(K_BATCH_TRAIN, 1, 4, 4, 5, 6, 0, VX_ACT_RELU, 0.0f),
      BN(K_BATCH_TRAIN, 2, 3, 17, 17, 17, 1, VX_ACT_NONE, 0.0f), /* several 512-float chunks per segment */
      BN(K_BATCH_TRAIN, 2, 5, 1, 1, 1, 1, VX_ACT_NONE, 0.0f),    /* two values per channel */
      BN(K_BATCH_TRAIN, 2, 2, 2, 3, 5, 1, VX_ACT_RELU, 0.0f),
      BN(K_BATCH_EVAL, 2, 3, 3, 5, 7, 1, VX_ACT_NONE, 0.0f),
      BN(K_BATCH_EVAL, 1, 4, 4, 5, 6, 0, VX_ACT_LEAKY_RELU, 0.2f),
      BN(K_BATCH_EVAL, 2, 2, 2, 3, 5, 1, VX_ACT_RELU, 0.0f),
  };
  static const norm_case small[] = {
      BN(K_BATCH_TRAIN, 2, 3, 3, 5, 7, 1, VX_ACT_LEAKY_RELU, 0.01f),
      BN(K_BATCH_TRAIN, 1, 2, 2, 3, 5, 0, VX_ACT_RELU, 0.0f),
      BN(K_BATCH_EVAL, 2, 2, 3, 5, 7, 1, VX_ACT_NONE, 0.0f),
      BN(K_BATCH_EVAL, 1, 3, 2, 3, 5, 0, VX_ACT_LEAKY_RELU, 0.01f),
  };
  run_cases(t, full, COUNT(full), small, COUNT(small));
  norm_refusals(t, K_BATCH_TRAIN);
}

static void test_layer_norm(tester *t) {
  static const norm_case full[] = {
      LN(2, 5, 3, 5, 7, 1), LN(1, 8, 4, 4, 4, 0), LN(2, 4, 17, 17, 17, 1), LN(1, 1, 2, 3, 5, 1), /* C = 1 */
      LN(2, 3, 1, 1, 1, 1),
  };
  static const norm_case small[] = {LN(2, 5, 3, 5, 7, 1), LN(1, 3, 2, 3, 5, 0)};
  run_cases(t, full, COUNT(full), small, COUNT(small));
  norm_refusals(t, K_LAYER);
}

/* ================================================================ driver */
static const op_entry k_ops[] = {
    {"batch_norm", test_batch_norm}, {"group_norm", test_group_norm}, {"layer_norm", test_layer_norm},
};

int main(int argc, char **argv) {
  return op_test_main(argc, argv, "test_ops_norm", k_ops, sizeof k_ops / sizeof k_ops[0], 0x5eed0100ULL, 0);
}
