/* test_ops: every op of voxcl on every OpenCL device, against the double-precision references in
 * tests/ref/ref_ops.c.
 *
 *   test_ops [-d P:D|gpu|cpu|NAME] [-o OP[,OP...]] [--small] [-v]
 *
 * -d picks devices (default: all), -o ops (conv3d, conv_transpose3d, instance_norm, activation,
 * softmax, concat, loss, adam, sgd), --small only tiny shapes (for Oclgrind), -v prints every
 * check. VOXCL_CACHE_DIR is honoured by the library ("off" disables the program cache).
 *
 * For each device and op, over shapes that include odd sizes, strides 1 and 2, padding 0-2,
 * dilation 2, groups and depthwise, bias on and off, 1x1x1 and k2-s2 convolutions:
 *   - the forward against the reference: |dev - ref| <= atol + rtol * |ref|;
 *   - every backward against central finite differences of the double reference of
 *     L = sum(r .* f(inputs)) (the device gets dy = r), on a random subset of elements that
 *     always holds the first and the last;
 *   - accumulate = 1 adds to what the output held; a second backward is bitwise identical;
 *   - bad arguments are refused before anything runs: a status, a message that names the
 *     argument, and the output left untouched (labels out of range can only be seen on the
 *     device: there the loss's statistics kernel runs, but dlogits stays untouched).
 * One line per failed check, then "N passed, M failed"; the exit status is 1 when anything
 * failed, 77 (ctest: skipped) when there is no OpenCL device at all.
 *
 * Inputs are float32 values; the reference receives exactly the same values as doubles, so the
 * only differences are the device's float32 arithmetic and the finite-difference error (small
 * against the tolerances: see FD_* below). The RNG has a fixed seed: runs repeat. */
#define _POSIX_C_SOURCE 200809L /* setenv, strdup, clock_gettime */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ref/ref_ops.h"
#include "voxcl.h"

/* ---------------------------------------------------------------- tolerances
 * Inputs are O(1) (uniform in [-1, 1] unless said otherwise).
 * Conv and instance-norm values and gradients are float32 sums of up to ~1500 products of O(1)
 * terms: the worst-case rounding bound n * 2^-24 * max|term| stays below ~1e-4, the usual error
 * is ~1e-6. Hence 1e-4 / 1e-4. */
#define CONV_ATOL 1e-4
#define CONV_RTOL 1e-4
#define NORM_ATOL 1e-4
#define NORM_RTOL 1e-4
/* Instance-norm forward values are O(1) and each rounds a handful of float ops on top of the
 * row's mean and 1/std (float sums of <= 512 values): 1e-5 is ~20x the error seen. */
#define NORM_FWD_ATOL 1e-5
#define NORM_FWD_RTOL 1e-5
/* Elementwise ops (activation, concat) are exact or one float rounding (2^-24 relative); atol
 * covers only the finite-difference roundoff of the reference (<= 1e-10). */
#define ELT_ATOL 1e-8
#define ELT_RTOL 1e-6
/* Softmax: float exp (<= 3 ulp in OpenCL) and one division: a few 1e-7 relative. */
#define SOFTMAX_ATOL 1e-6
#define SOFTMAX_RTOL 1e-5
/* Loss value O(1), from float sums of <= a few hundred terms per (sample, class) finished in
 * double on the host: error ~1e-7. */
#define LOSS_ATOL 1e-5
#define LOSS_RTOL 1e-5
/* dlogits are O(1/(N*S)) ~ 1e-3: atol 1e-7 is 1e-4 of a typical element. */
#define DLOGITS_ATOL 1e-7
#define DLOGITS_RTOL 1e-4
/* Optimisers: a few float roundings per step on O(1) parameters (2^-24 ~ 6e-8 each). */
#define OPT_ATOL 1e-6
#define OPT_RTOL 1e-5

/* ---------------------------------------------------------------- finite differences
 * Central differences of the double reference. For ops that are linear in the perturbed tensor
 * (conv, concat) any step is exact up to roundoff (eps * sum|terms| / h ~ 1e-11 with h = 1e-2).
 * For instance norm and the loss, h = 1e-6 / 1e-5 keeps truncation (h^2 f''') below 1e-10 and
 * roundoff below 1e-8; a kink of ReLU is crossed only when a pre-activation lies within ~h of 0
 * (probability ~1e-6 per sampled element). Activation inputs are kept >= 0.02 away from 0. */
#define FD_H_LINEAR 1e-2
#define FD_H_NORM 1e-6
#define FD_H_LOSS 1e-5
#define FD_H_ACT 1e-3

#include "ref/op_harness.h"

/* ================================================================ conv3d and conv_transpose3d */
typedef struct {
  int N, C, O, in[3], k[3], s[3], p[3], d[3], op[3], g, bias;
} conv_case;

/* Isotropic case: N, C in, O out, spatial D H W, kernel, stride, padding, dilation,
 * output_padding, groups, bias. */
#define CONV(N, C, O, D, H, W, K, S, P, DIL, OP, G, B) \
  { N, C, O, {D, H, W}, {K, K, K}, {S, S, S}, {P, P, P}, {DIL, DIL, DIL}, {OP, OP, OP}, G, B }

typedef struct {
  int transposed;
  int xs[5], ws[5], ys[5];
  ref_conv_params p;
  double *x, *w, *b, *r, *y;
} conv_state;

static void conv_ref_forward(conv_state *s) {
  if (s->transposed) ref_conv_transpose3d_forward(s->x, s->xs, s->w, s->ws, s->b, &s->p, s->y, s->ys);
  else ref_conv3d_forward(s->x, s->xs, s->w, s->ws, s->b, &s->p, s->y, s->ys);
}

static double conv_loss(void *sv) {
  conv_state *s = sv;
  conv_ref_forward(s);
  return dot(s->r, s->y, ref_numel(s->ys));
}

static vx_status conv_forward(vx_context *ctx, int tr, const vx_tensor *x, const vx_tensor *w, const vx_tensor *b,
                              const vx_conv_params *p, vx_tensor *y) {
  return tr ? vx_conv_transpose3d_forward(ctx, x, w, b, p, y) : vx_conv3d_forward(ctx, x, w, b, p, y);
}
static vx_status conv_backward_data(vx_context *ctx, int tr, const vx_tensor *dy, const vx_tensor *w,
                                    const vx_conv_params *p, vx_tensor *dx, int acc) {
  return tr ? vx_conv_transpose3d_backward_data(ctx, dy, w, p, dx, acc)
            : vx_conv3d_backward_data(ctx, dy, w, p, dx, acc);
}
static vx_status conv_backward_weights(vx_context *ctx, int tr, const vx_tensor *x, const vx_tensor *dy,
                                       const vx_conv_params *p, vx_tensor *dw, vx_tensor *db, int acc) {
  return tr ? vx_conv_transpose3d_backward_weights(ctx, x, dy, p, dw, db, acc)
            : vx_conv3d_backward_weights(ctx, x, dy, p, dw, db, acc);
}

static void conv_params_of(const conv_case *cc, vx_conv_params *vp, ref_conv_params *rp) {
  vx_conv_params_init(vp, 1, 0);
  memset(rp, 0, sizeof *rp);
  for (int i = 0; i < 3; i++) {
    vp->stride[i] = rp->stride[i] = cc->s[i];
    vp->padding[i] = rp->padding[i] = cc->p[i];
    vp->dilation[i] = rp->dilation[i] = cc->d[i];
    vp->output_padding[i] = rp->output_padding[i] = cc->op[i];
  }
  vp->groups = rp->groups = cc->g;
}

/* variant: "" (plain tensors), "views" (views at odd offsets), "chunked" (tiny workspace). */
static void run_conv_case(tester *t, vx_context *ctx, int tr, const conv_case *cc, const char *variant) {
  vx_conv_params vp;
  conv_state s;
  memset(&s, 0, sizeof s);
  conv_params_of(cc, &vp, &s.p);
  s.transposed = tr;
  int xs[5] = {cc->N, cc->C, cc->in[0], cc->in[1], cc->in[2]};
  int ws[5] = {tr ? cc->C : cc->O, tr ? cc->O / cc->g : cc->C / cc->g, cc->k[0], cc->k[1], cc->k[2]};
  memcpy(s.xs, xs, sizeof xs);
  memcpy(s.ws, ws, sizeof ws);
  int ok = tr ? ref_conv_transpose3d_out_shape(xs, ws, &s.p, s.ys) : ref_conv3d_out_shape(xs, ws, &s.p, s.ys);
  char b1[64], b2[64], b3[64];
  set_desc(t, "x%s w%s -> y%s k%d,%d,%d s%d,%d,%d p%d,%d,%d d%d,%d,%d%s g%d %s%s%s",
           shape_str(xs, b1, sizeof b1), shape_str(ws, b2, sizeof b2), ok ? shape_str(s.ys, b3, sizeof b3) : "?",
           cc->k[0], cc->k[1], cc->k[2], cc->s[0], cc->s[1], cc->s[2], cc->p[0], cc->p[1], cc->p[2], cc->d[0],
           cc->d[1], cc->d[2], tr ? (cc->op[0] || cc->op[1] || cc->op[2] ? " op1" : " op0") : "", cc->g,
           cc->bias ? "bias" : "no bias", *variant ? " " : "", variant);
  if (!record(t, ok, "test setup", ok ? "ok" : "the case's geometry is impossible")) return;

  size_t nx = ref_numel(xs), nw = ref_numel(ws), ny = ref_numel(s.ys), nb = (size_t)cc->O;
  int bs[5] = {1, cc->O, 1, 1, 1};
  float *xf = rand_floats(t, nx, -1, 1), *wf = rand_floats(t, nw, -1, 1), *bf = rand_floats(t, nb, -1, 1);
  float *rf = rand_floats(t, ny, -1, 1);
  float *px = rand_floats(t, nx, -1, 1), *pw = rand_floats(t, nw, -1, 1), *pb = rand_floats(t, nb, -1, 1);
  s.x = to_double(xf, nx);
  s.w = to_double(wf, nw);
  s.b = cc->bias ? to_double(bf, nb) : NULL;
  s.r = to_double(rf, ny);
  s.y = xmalloc(ny * sizeof(double));
  float *y_dev = NULL, *dx1 = NULL, *dw1 = NULL, *db1 = NULL, *dx2 = NULL, *dw2 = NULL, *db2 = NULL;
  double *acc_ref = NULL;

  tensor_set ts;
  ts_init(&ts, t, ctx, !strcmp(variant, "views"));
  vx_tensor *x, *w, *b = NULL, *y, *dy, *dx, *dw, *db = NULL;
  NEED(x = ts_new(&ts, xs, xf));
  NEED(w = ts_new(&ts, ws, wf));
  if (cc->bias) NEED(b = ts_new(&ts, bs, bf));
  NEED(y = ts_new(&ts, s.ys, NULL));
  NEED(dy = ts_new(&ts, s.ys, rf));
  NEED(dx = ts_new(&ts, xs, NULL));
  NEED(dw = ts_new(&ts, ws, NULL));
  if (cc->bias) NEED(db = ts_new(&ts, bs, NULL));

  /* forward */
  TRY("forward", conv_forward(ctx, tr, x, w, b, &vp, y));
  NEED(y_dev = fetch(t, ctx, y));
  conv_ref_forward(&s);
  check_close(t, "forward y", y_dev, s.y, NULL, ny, CONV_ATOL, CONV_RTOL);

  /* backward against finite differences of L = sum(r .* conv(x, w, b)) */
  TRY("backward_data", conv_backward_data(ctx, tr, dy, w, &vp, dx, 0));
  TRY("backward_weights", conv_backward_weights(ctx, tr, x, dy, &vp, dw, db, 0));
  NEED(dx1 = fetch(t, ctx, dx));
  NEED(dw1 = fetch(t, ctx, dw));
  if (db) NEED(db1 = fetch(t, ctx, db));
  fd_check(t, "backward_data dx", conv_loss, &s, s.x, nx, dx1, FD_H_LINEAR, CONV_ATOL, CONV_RTOL);
  fd_check(t, "backward_weights dw", conv_loss, &s, s.w, nw, dw1, FD_H_LINEAR, CONV_ATOL, CONV_RTOL);
  if (db) fd_check(t, "backward_weights db", conv_loss, &s, s.b, nb, db1, FD_H_LINEAR, CONV_ATOL, CONV_RTOL);

  /* the same call twice: bitwise the same */
  TRY("backward_data (again)", conv_backward_data(ctx, tr, dy, w, &vp, dx, 0));
  TRY("backward_weights (again)", conv_backward_weights(ctx, tr, x, dy, &vp, dw, db, 0));
  NEED(dx2 = fetch(t, ctx, dx));
  NEED(dw2 = fetch(t, ctx, dw));
  check_bitwise(t, "backward_data deterministic", dx1, dx2, nx);
  check_bitwise(t, "backward_weights deterministic", dw1, dw2, nw);
  if (db) {
    NEED(db2 = fetch(t, ctx, db));
    check_bitwise(t, "backward_weights db deterministic", db1, db2, nb);
  }

  /* accumulate = 1 adds to what the outputs hold */
  TRY("upload", vx_tensor_upload(dx, px));
  TRY("upload", vx_tensor_upload(dw, pw));
  if (db) TRY("upload", vx_tensor_upload(db, pb));
  TRY("backward_data (accumulate)", conv_backward_data(ctx, tr, dy, w, &vp, dx, 1));
  TRY("backward_weights (accumulate)", conv_backward_weights(ctx, tr, x, dy, &vp, dw, db, 1));
  free(dx2);
  free(dw2);
  free(db2);
  dw2 = db2 = NULL;
  NEED(dx2 = fetch(t, ctx, dx));
  acc_ref = sum_double(px, dx1, nx);
  check_close(t, "backward_data accumulate", dx2, acc_ref, NULL, nx, CONV_ATOL, CONV_RTOL);
  free(acc_ref);
  NEED(dw2 = fetch(t, ctx, dw));
  acc_ref = sum_double(pw, dw1, nw);
  check_close(t, "backward_weights accumulate", dw2, acc_ref, NULL, nw, CONV_ATOL, CONV_RTOL);
  if (db) {
    free(acc_ref);
    NEED(db2 = fetch(t, ctx, db));
    acc_ref = sum_double(pb, db1, nb);
    check_close(t, "backward_weights db accumulate", db2, acc_ref, NULL, nb, CONV_ATOL, CONV_RTOL);
  }
done:
  ts_free(&ts);
  free(xf); free(wf); free(bf); free(rf); free(px); free(pw); free(pb);
  free(s.x); free(s.w); free(s.b); free(s.r); free(s.y);
  free(y_dev); free(dx1); free(dw1); free(db1); free(dx2); free(dw2); free(db2); free(acc_ref);
}

/* Bad arguments to conv3d: each refused before launching, with a message naming the problem. */
static void conv3d_refusals(tester *t) {
  vx_context *ctx = t->ctx;
  set_desc(t, "bad arguments");
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  int xs[5] = {1, 4, 3, 4, 5}, ws[5] = {2, 4, 3, 3, 3}, ys[5] = {1, 2, 3, 4, 5};
  int wg3[5] = {2, 4, 3, 3, 3};   /* for groups = 3: 4 channels do not split */
  int wbig[5] = {2, 4, 5, 5, 5};  /* larger than the 3x4x5 input without padding */
  int ybad[5] = {1, 2, 3, 4, 4};  /* wrong W */
  int yb2[5] = {2, 2, 3, 4, 5};   /* wrong batch */
  int wbad[5] = {2, 3, 3, 3, 3};  /* 3 input channels for a 4-channel input */
  int bbad[5] = {1, 3, 1, 1, 1};  /* 3 biases for 2 outputs */
  int dxbad[5] = {1, 4, 3, 4, 6};
  vx_tensor *x, *w, *y, *w3, *wb, *yb, *ybb, *wwrong, *bb, *dxb, *dw;
  NEED(x = ts_new(&ts, xs, NULL));
  TRY("fill", vx_tensor_fill(x, 0.5f));
  NEED(w = ts_new(&ts, ws, NULL));
  TRY("fill", vx_tensor_fill(w, 0.25f));
  NEED(w3 = ts_new(&ts, wg3, NULL));
  NEED(wb = ts_new(&ts, wbig, NULL));
  NEED(wwrong = ts_new(&ts, wbad, NULL));
  NEED(bb = ts_new(&ts, bbad, NULL));
  NEED(y = sentinel_tensor(&ts, ys));
  NEED(yb = sentinel_tensor(&ts, ybad));
  NEED(ybb = sentinel_tensor(&ts, yb2));
  NEED(dxb = sentinel_tensor(&ts, dxbad));
  NEED(dw = sentinel_tensor(&ts, ws));
  vx_conv_params p;
  vx_conv_params_init(&p, 1, 1);
  p.padding[1] = -1;
  CHECK_REFUSED("negative padding", vx_conv3d_forward(ctx, x, w, NULL, &p, y), VX_ERR_INVALID_ARGUMENT,
                "padding", y);
  CHECK_REFUSED("negative padding (backward_weights)", vx_conv3d_backward_weights(ctx, x, y, &p, dw, NULL, 0),
                VX_ERR_INVALID_ARGUMENT, "padding", dw);
  vx_conv_params_init(&p, 1, 1);
  p.stride[2] = 0;
  CHECK_REFUSED("zero stride", vx_conv3d_forward(ctx, x, w, NULL, &p, y), VX_ERR_INVALID_ARGUMENT, "stride",
                y);
  vx_conv_params_init(&p, 1, 1);
  p.groups = 3;
  CHECK_REFUSED("groups not dividing channels", vx_conv3d_forward(ctx, x, w3, NULL, &p, y),
                VX_ERR_INVALID_ARGUMENT, "groups", y);
  vx_conv_params_init(&p, 1, 0);
  CHECK_REFUSED("kernel larger than the padded input", vx_conv3d_forward(ctx, x, wb, NULL, &p, y),
                VX_ERR_SHAPE, "kernel", y);
  vx_conv_params_init(&p, 1, 1);
  CHECK_REFUSED("output shape mismatch", vx_conv3d_forward(ctx, x, w, NULL, &p, yb), VX_ERR_SHAPE, "output",
                yb);
  CHECK_REFUSED("batch mismatch", vx_conv3d_forward(ctx, x, w, NULL, &p, ybb), VX_ERR_SHAPE, "batch", ybb);
  CHECK_REFUSED("weight channels mismatch", vx_conv3d_forward(ctx, x, wwrong, NULL, &p, y), VX_ERR_SHAPE,
                "weight", y);
  CHECK_REFUSED("bias size mismatch", vx_conv3d_forward(ctx, x, w, bb, &p, y), VX_ERR_SHAPE, "bias", y);
  CHECK_REFUSED("input gradient shape mismatch", vx_conv3d_backward_data(ctx, y, w, &p, dxb, 0),
                VX_ERR_SHAPE, "input gradient", dxb);
  CHECK_REFUSED("NULL weight", vx_conv3d_forward(ctx, x, NULL, NULL, &p, y), VX_ERR_INVALID_ARGUMENT, "tensor argument",
                y);
done:
  ts_free(&ts);
}

static void conv_transpose3d_refusals(tester *t) {
  vx_context *ctx = t->ctx;
  set_desc(t, "bad arguments");
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  /* x [1, 4, 2, 3, 2], k2 s2 -> y [1, 2, 4, 6, 4] */
  int xs[5] = {1, 4, 2, 3, 2}, ws[5] = {4, 2, 2, 2, 2}, ys[5] = {1, 2, 4, 6, 4};
  int ybad[5] = {1, 2, 4, 6, 5}, w3[5] = {4, 1, 2, 2, 2}, wbad[5] = {3, 2, 2, 2, 2}, bbad[5] = {1, 4, 1, 1, 1};
  vx_tensor *x, *w, *y, *yb, *wg, *wb, *bb, *dw;
  NEED(x = ts_new(&ts, xs, NULL));
  TRY("fill", vx_tensor_fill(x, 0.5f));
  NEED(w = ts_new(&ts, ws, NULL));
  TRY("fill", vx_tensor_fill(w, 0.25f));
  NEED(wg = ts_new(&ts, w3, NULL));
  NEED(wb = ts_new(&ts, wbad, NULL));
  NEED(bb = ts_new(&ts, bbad, NULL));
  NEED(y = sentinel_tensor(&ts, ys));
  NEED(yb = sentinel_tensor(&ts, ybad));
  NEED(dw = sentinel_tensor(&ts, ws));
  vx_conv_params p;
  vx_conv_params_init(&p, 2, 0);
  p.padding[0] = -2;
  CHECK_REFUSED("negative padding", vx_conv_transpose3d_forward(ctx, x, w, NULL, &p, y),
                VX_ERR_INVALID_ARGUMENT, "padding", y);
  vx_conv_params_init(&p, 2, 0);
  p.output_padding[2] = 2; /* >= stride 2 and >= dilation 1 */
  CHECK_REFUSED("output_padding too large", vx_conv_transpose3d_forward(ctx, x, w, NULL, &p, y),
                VX_ERR_INVALID_ARGUMENT, "output_padding", y);
  vx_conv_params_init(&p, 2, 0);
  p.groups = 3;
  CHECK_REFUSED("groups not dividing channels", vx_conv_transpose3d_forward(ctx, x, wg, NULL, &p, y),
                VX_ERR_INVALID_ARGUMENT, "groups", y);
  vx_conv_params_init(&p, 2, 0);
  CHECK_REFUSED("output shape mismatch", vx_conv_transpose3d_forward(ctx, x, w, NULL, &p, yb), VX_ERR_SHAPE,
                "output", yb);
  CHECK_REFUSED("weight channels mismatch", vx_conv_transpose3d_forward(ctx, x, wb, NULL, &p, y),
                VX_ERR_SHAPE, "weight", y);
  CHECK_REFUSED("bias size mismatch", vx_conv_transpose3d_forward(ctx, x, w, bb, &p, y), VX_ERR_SHAPE,
                "bias", y);
  p.padding[1] = -1;
  CHECK_REFUSED("negative padding (backward_weights)",
                vx_conv_transpose3d_backward_weights(ctx, x, y, &p, dw, NULL, 0), VX_ERR_INVALID_ARGUMENT, "padding",
                dw);
done:
  ts_free(&ts);
}

static const conv_case k_conv_full[] = {
    CONV(2, 3, 4, 5, 7, 6, 3, 1, 1, 1, 0, 1, 1),  /* "same" 3x3x3, odd sizes */
    CONV(2, 3, 4, 5, 7, 6, 3, 2, 1, 1, 0, 1, 0),  /* stride 2 */
    CONV(2, 3, 2, 5, 7, 6, 3, 1, 0, 2, 0, 1, 1),  /* dilation 2, no padding */
    CONV(1, 3, 4, 5, 7, 6, 3, 1, 2, 2, 0, 1, 0),  /* dilation 2, padding 2 */
    CONV(1, 3, 4, 4, 5, 6, 3, 2, 2, 1, 0, 1, 1),  /* stride 2, padding 2 */
    CONV(2, 4, 6, 5, 7, 6, 3, 1, 1, 1, 0, 2, 1),  /* groups 2 */
    CONV(2, 4, 4, 5, 7, 6, 3, 2, 1, 1, 0, 4, 1),  /* depthwise, stride 2 */
    CONV(2, 4, 4, 5, 7, 6, 3, 1, 1, 1, 0, 4, 0),  /* depthwise, stride 1 */
    CONV(1, 3, 3, 4, 5, 19, 3, 1, 2, 2, 0, 3, 1), /* depthwise, dilation 2, W over a vector */
    CONV(2, 3, 5, 5, 7, 6, 1, 1, 0, 1, 0, 1, 1),  /* 1x1x1: the GEMM-only path */
    CONV(2, 4, 6, 3, 5, 4, 1, 1, 0, 1, 0, 2, 0),  /* 1x1x1 grouped */
    CONV(2, 3, 5, 5, 7, 6, 1, 2, 0, 1, 0, 1, 0),  /* 1x1x1 stride 2: im2col path */
    CONV(1, 3, 4, 5, 7, 6, 1, 1, 1, 1, 0, 1, 1),  /* 1x1x1 with padding */
    CONV(2, 4, 6, 6, 8, 6, 2, 2, 0, 1, 0, 1, 1),  /* k2 s2 downsampling */
    CONV(2, 8, 8, 8, 8, 8, 3, 1, 1, 1, 0, 2, 1),  /* larger, groups 2 */
    CONV(1, 3, 10, 3, 4, 37, 3, 1, 1, 1, 0, 1, 1), /* W over 2 vectors, O over one block of 8 */
    {1, 2, 3, {3, 9, 5}, {1, 3, 3}, {1, 2, 1}, {0, 1, 2}, {1, 1, 2}, {0, 0, 0}, 1, 1}, /* per-axis */
};
static const conv_case k_conv_small[] = {
    CONV(2, 3, 2, 3, 4, 5, 3, 1, 1, 1, 0, 1, 1),
    CONV(1, 2, 3, 5, 4, 3, 3, 2, 1, 1, 0, 1, 0),
    CONV(1, 4, 2, 4, 3, 5, 3, 1, 2, 2, 0, 2, 1),
    CONV(1, 2, 2, 3, 4, 3, 3, 1, 1, 1, 0, 2, 0), /* depthwise */
    CONV(2, 3, 2, 3, 4, 3, 1, 1, 0, 1, 0, 1, 1), /* 1x1x1 */
    CONV(1, 2, 9, 2, 3, 17, 3, 1, 1, 1, 0, 1, 0), /* W over a vector, O over a block */
    {1, 2, 3, {2, 5, 4}, {1, 3, 2}, {1, 2, 2}, {0, 1, 0}, {1, 1, 2}, {0, 0, 0}, 1, 1},
};
static const conv_case k_convt_full[] = {
    CONV(2, 4, 3, 3, 4, 3, 2, 2, 0, 1, 0, 1, 1),  /* U-Net upsampling: k2 s2 */
    CONV(2, 3, 4, 5, 7, 6, 3, 2, 1, 1, 1, 1, 0),  /* k3 s2 p1 output_padding 1 */
    CONV(2, 4, 6, 5, 7, 6, 3, 1, 1, 1, 0, 2, 1),  /* groups 2 */
    CONV(2, 4, 4, 3, 4, 5, 3, 2, 1, 1, 1, 4, 0),  /* depthwise, output_padding 1 */
    CONV(2, 4, 4, 3, 4, 5, 3, 1, 1, 1, 0, 4, 1),  /* depthwise, stride 1 */
    CONV(1, 3, 3, 4, 5, 3, 3, 1, 2, 2, 1, 3, 1),  /* depthwise, output_padding 1 < dilation 2 */
    CONV(1, 3, 2, 4, 5, 3, 3, 1, 0, 2, 0, 1, 1),  /* dilation 2 */
    CONV(1, 3, 2, 4, 5, 3, 3, 1, 2, 2, 1, 1, 1),  /* output_padding 1 < dilation 2 at stride 1 */
    CONV(2, 3, 3, 3, 4, 3, 3, 2, 2, 1, 1, 1, 0),  /* padding 2 */
    CONV(2, 3, 5, 5, 7, 6, 1, 1, 0, 1, 0, 1, 1),  /* 1x1x1: GEMM only */
    CONV(2, 8, 8, 4, 4, 4, 2, 2, 0, 1, 0, 1, 1),  /* larger upsampling */
    CONV(1, 3, 9, 3, 4, 20, 3, 1, 1, 1, 0, 1, 0),  /* stride 1: W over a vector, O over a block */
    {1, 2, 3, {2, 3, 4}, {1, 2, 2}, {1, 2, 2}, {0, 0, 0}, {1, 1, 1}, {0, 1, 0}, 1, 1}, /* per-axis */
};
static const conv_case k_convt_small[] = {
    CONV(1, 2, 2, 2, 3, 2, 2, 2, 0, 1, 0, 1, 1),
    CONV(1, 2, 3, 2, 2, 3, 3, 2, 1, 1, 1, 1, 0),
    CONV(1, 4, 2, 2, 3, 2, 3, 1, 2, 2, 1, 2, 1),
    CONV(1, 2, 2, 2, 3, 2, 3, 1, 2, 2, 1, 2, 0), /* depthwise, output_padding 1 < dilation 2 */
    CONV(2, 3, 2, 3, 2, 3, 1, 1, 0, 1, 0, 1, 1),
};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Stride 1 and groups 1 (not 1x1x1) or depthwise: the library may pick its direct or depthwise
 * kernels by default, so the case also runs through im2col + GEMM. */
static int special_kernels_eligible(const conv_case *cc) {
  int pointwise = 1;
  for (int i = 0; i < 3; i++) {
    if (cc->s[i] != 1) return 0;
    pointwise &= cc->k[i] == 1 && cc->p[i] == 0;
  }
  return (cc->g == 1 && !pointwise) || (cc->g == cc->C && cc->g == cc->O);
}

/* Runs a case with VOXCL_CONV_ALGO=gemm (im2col + GEMM instead of the direct kernels). */
static void run_conv_case_gemm(tester *t, int tr, const conv_case *cc) {
  const char *prev = getenv("VOXCL_CONV_ALGO");
  char *saved = prev ? strdup(prev) : NULL;
  setenv("VOXCL_CONV_ALGO", "gemm", 1);
  run_conv_case(t, t->ctx, tr, cc, "algo gemm");
  if (saved) setenv("VOXCL_CONV_ALGO", saved, 1);
  else unsetenv("VOXCL_CONV_ALGO");
  free(saved);
}

static void test_conv_family(tester *t, int tr) {
  const conv_case *cases = tr ? (t->small ? k_convt_small : k_convt_full) : (t->small ? k_conv_small : k_conv_full);
  size_t n = tr ? (t->small ? COUNT(k_convt_small) : COUNT(k_convt_full))
                : (t->small ? COUNT(k_conv_small) : COUNT(k_conv_full));
  for (size_t i = 0; i < n; i++) {
    run_conv_case(t, t->ctx, tr, &cases[i], "");
    if (special_kernels_eligible(&cases[i])) run_conv_case_gemm(t, tr, &cases[i]);
  }
  /* Offsets through every kernel and GEMM (a stride-1 and a stride-2 case); then chunks that
   * split output slices. */
  run_conv_case(t, t->ctx, tr, &cases[0], "views");
  run_conv_case(t, t->ctx, tr, &cases[1], "views");
  if (t->ctx_tiny)
    for (size_t i = 0; i < (t->small ? 1u : 3u) && i < n; i++) run_conv_case(t, t->ctx_tiny, tr, &cases[i], "chunked");
  if (tr) conv_transpose3d_refusals(t);
  else conv3d_refusals(t);
}

static void test_conv3d(tester *t) { test_conv_family(t, 0); }
static void test_conv_transpose3d(tester *t) { test_conv_family(t, 1); }

/* ================================================================ instance norm */
typedef struct {
  int N, C, sp[3], affine, act;
  float slope;
} norm_case;

typedef struct {
  int N, C;
  size_t S;
  double *x, *gamma, *beta, *r, *y;
  int act;
  double slope, eps;
} norm_state;

static double norm_loss(void *sv) {
  norm_state *s = sv;
  ref_instance_norm_forward(s->x, s->N, s->C, s->S, s->gamma, s->beta, s->eps, s->act, s->slope, s->y);
  return dot(s->r, s->y, (size_t)s->N * s->C * s->S);
}

static void run_norm_case(tester *t, const norm_case *nc, int views) {
  vx_context *ctx = t->ctx;
  static const char *act_names[] = {"none", "relu", "leaky_relu"};
  int xs[5] = {nc->N, nc->C, nc->sp[0], nc->sp[1], nc->sp[2]}, cs[5] = {1, nc->C, 1, 1, 1};
  int ss[5] = {nc->N, nc->C, 1, 1, 2};
  char b1[64];
  set_desc(t, "x%s %s act %s slope %g%s", shape_str(xs, b1, sizeof b1), nc->affine ? "affine" : "no affine",
           act_names[nc->act], (double)nc->slope, views ? " views" : "");
  size_t nx = ref_numel(xs), C = (size_t)nc->C, S = (size_t)nc->sp[0] * nc->sp[1] * nc->sp[2];
  const float eps = 1e-5f;
  float *xf = rand_floats(t, nx, -1, 1);
  for (size_t i = 0; i < nx; i++) xf[i] += (float)(i / S % 3); /* row means 0, 1, 2: the mean matters */
  float *gf = rand_floats(t, C, 0.5, 1.5), *bf = rand_floats(t, C, -0.5, 0.5), *rf = rand_floats(t, nx, -1, 1);
  float *px = rand_floats(t, nx, -1, 1), *pg = rand_floats(t, C, -1, 1), *pb = rand_floats(t, C, -1, 1);
  norm_state s = {nc->N, nc->C, S, to_double(xf, nx), nc->affine ? to_double(gf, C) : NULL,
                  nc->affine ? to_double(bf, C) : NULL, to_double(rf, nx), xmalloc(nx * sizeof(double)),
                  nc->act, (double)nc->slope, (double)eps};
  float *y_dev = NULL, *save_dev = NULL, *dx1 = NULL, *dg1 = NULL, *db1 = NULL, *dx2 = NULL, *dg2 = NULL,
        *db2 = NULL;
  double *stats = xmalloc(2 * (size_t)nc->N * C * sizeof(double)), *acc = NULL;
  vx_activation act = (vx_activation)nc->act;

  tensor_set ts;
  ts_init(&ts, t, ctx, views);
  vx_tensor *x, *g = NULL, *b = NULL, *y, *save, *dy, *dx, *dg = NULL, *db = NULL;
  NEED(x = ts_new(&ts, xs, xf));
  if (nc->affine) {
    NEED(g = ts_new(&ts, cs, gf));
    NEED(b = ts_new(&ts, cs, bf));
    NEED(dg = ts_new(&ts, cs, NULL));
    NEED(db = ts_new(&ts, cs, NULL));
  }
  NEED(y = ts_new(&ts, xs, NULL));
  NEED(save = ts_new(&ts, ss, NULL));
  NEED(dy = ts_new(&ts, xs, rf));
  NEED(dx = ts_new(&ts, xs, NULL));

  TRY("forward", vx_instance_norm_forward(ctx, x, g, b, eps, act, nc->slope, y, save));
  NEED(y_dev = fetch(t, ctx, y));
  NEED(save_dev = fetch(t, ctx, save));
  norm_loss(&s);
  check_close(t, "forward y", y_dev, s.y, NULL, nx, NORM_FWD_ATOL, NORM_FWD_RTOL);
  for (size_t row = 0; row < (size_t)nc->N * C; row++) { /* save = (mean, 1/sqrt(var + eps)) per row */
    const double *xr = s.x + row * S;
    double mean = 0.0, var = 0.0;
    for (size_t i = 0; i < S; i++) mean += xr[i];
    mean /= (double)S;
    for (size_t i = 0; i < S; i++) var += (xr[i] - mean) * (xr[i] - mean);
    stats[2 * row] = mean;
    stats[2 * row + 1] = 1.0 / sqrt(var / (double)S + s.eps);
  }
  check_close(t, "forward save (mean, 1/std)", save_dev, stats, NULL, 2 * (size_t)nc->N * C, NORM_FWD_ATOL,
              NORM_FWD_RTOL);

  TRY("backward", vx_instance_norm_backward(ctx, x, y, dy, g, save, act, nc->slope, dx, dg, db, 0));
  NEED(dx1 = fetch(t, ctx, dx));
  fd_check(t, "backward dx", norm_loss, &s, s.x, nx, dx1, FD_H_NORM, NORM_ATOL, NORM_RTOL);
  if (nc->affine) {
    NEED(dg1 = fetch(t, ctx, dg));
    NEED(db1 = fetch(t, ctx, db));
    fd_check(t, "backward dgamma", norm_loss, &s, s.gamma, C, dg1, FD_H_NORM, NORM_ATOL, NORM_RTOL);
    fd_check(t, "backward dbeta", norm_loss, &s, s.beta, C, db1, FD_H_NORM, NORM_ATOL, NORM_RTOL);
  }

  TRY("backward (again)", vx_instance_norm_backward(ctx, x, y, dy, g, save, act, nc->slope, dx, dg, db, 0));
  NEED(dx2 = fetch(t, ctx, dx));
  check_bitwise(t, "backward dx deterministic", dx1, dx2, nx);
  if (nc->affine) {
    NEED(dg2 = fetch(t, ctx, dg));
    NEED(db2 = fetch(t, ctx, db));
    check_bitwise(t, "backward dgamma deterministic", dg1, dg2, C);
    check_bitwise(t, "backward dbeta deterministic", db1, db2, C);
  }

  TRY("upload", vx_tensor_upload(dx, px));
  if (nc->affine) {
    TRY("upload", vx_tensor_upload(dg, pg));
    TRY("upload", vx_tensor_upload(db, pb));
  }
  TRY("backward (accumulate)", vx_instance_norm_backward(ctx, x, y, dy, g, save, act, nc->slope, dx, dg, db, 1));
  free(dx2);
  NEED(dx2 = fetch(t, ctx, dx));
  acc = sum_double(px, dx1, nx);
  check_close(t, "backward dx accumulate", dx2, acc, NULL, nx, NORM_ATOL, NORM_RTOL);
  if (nc->affine) {
    free(dg2);
    free(db2);
    dg2 = db2 = NULL;
    NEED(dg2 = fetch(t, ctx, dg));
    NEED(db2 = fetch(t, ctx, db));
    free(acc);
    acc = sum_double(pg, dg1, C);
    check_close(t, "backward dgamma accumulate", dg2, acc, NULL, C, NORM_ATOL, NORM_RTOL);
    free(acc);
    acc = sum_double(pb, db1, C);
    check_close(t, "backward dbeta accumulate", db2, acc, NULL, C, NORM_ATOL, NORM_RTOL);
  }
done:
  ts_free(&ts);
  free(xf); free(gf); free(bf); free(rf); free(px); free(pg); free(pb);
  free(s.x); free(s.gamma); free(s.beta); free(s.r); free(s.y); free(stats); free(acc);
  free(y_dev); free(save_dev); free(dx1); free(dg1); free(db1); free(dx2); free(dg2); free(db2);
}

static void instance_norm_refusals(tester *t) {
  vx_context *ctx = t->ctx;
  set_desc(t, "bad arguments");
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  int xs[5] = {2, 3, 2, 3, 2}, xbad[5] = {2, 3, 2, 3, 3}, cs[5] = {1, 3, 1, 1, 1}, c4[5] = {1, 4, 1, 1, 1};
  int ss[5] = {2, 3, 1, 1, 2}, ssmall[5] = {1, 3, 1, 1, 1};
  vx_tensor *x, *g, *b, *g4, *y, *yb, *save, *sv_small;
  NEED(x = ts_new(&ts, xs, NULL));
  TRY("fill", vx_tensor_fill(x, 0.5f));
  NEED(g = ts_new(&ts, cs, NULL));
  TRY("fill", vx_tensor_fill(g, 1.0f));
  NEED(b = ts_new(&ts, cs, NULL));
  TRY("fill", vx_tensor_fill(b, 0.0f));
  NEED(g4 = ts_new(&ts, c4, NULL));
  NEED(y = sentinel_tensor(&ts, xs));
  NEED(yb = sentinel_tensor(&ts, xbad));
  NEED(save = sentinel_tensor(&ts, ss));
  NEED(sv_small = sentinel_tensor(&ts, ssmall));
  CHECK_REFUSED("output shape mismatch",
                vx_instance_norm_forward(ctx, x, g, b, 1e-5f, VX_ACT_NONE, 0.f, yb, save), VX_ERR_SHAPE, "output", yb);
  CHECK_REFUSED("gamma size mismatch",
                vx_instance_norm_forward(ctx, x, g4, b, 1e-5f, VX_ACT_NONE, 0.f, y, save), VX_ERR_SHAPE, "gamma", y);
  CHECK_REFUSED("gamma without beta",
                vx_instance_norm_forward(ctx, x, g, NULL, 1e-5f, VX_ACT_NONE, 0.f, y, save), VX_ERR_INVALID_ARGUMENT,
                "beta", y);
  CHECK_REFUSED("eps zero", vx_instance_norm_forward(ctx, x, g, b, 0.0f, VX_ACT_NONE, 0.f, y, save),
                VX_ERR_INVALID_ARGUMENT, "eps", y);
  CHECK_REFUSED("save too small",
                vx_instance_norm_forward(ctx, x, g, b, 1e-5f, VX_ACT_NONE, 0.f, y, sv_small), VX_ERR_SHAPE, "save", y);
  CHECK_REFUSED("backward input gradient shape mismatch",
                vx_instance_norm_backward(ctx, x, y, y, g, save, VX_ACT_NONE, 0.f, yb, NULL, NULL, 0), VX_ERR_SHAPE,
                "input gradient", yb);
done:
  ts_free(&ts);
}

static void test_instance_norm(tester *t) {
  static const norm_case full[] = {
      {2, 3, {5, 7, 6}, 1, VX_ACT_NONE, 0.0f},       {2, 3, {5, 7, 6}, 1, VX_ACT_RELU, 0.0f},
      {2, 3, {5, 7, 6}, 1, VX_ACT_LEAKY_RELU, 0.01f}, {2, 3, {5, 7, 6}, 0, VX_ACT_LEAKY_RELU, 0.2f},
      {1, 4, {8, 8, 8}, 0, VX_ACT_NONE, 0.0f},       {3, 2, {1, 2, 3}, 1, VX_ACT_RELU, 0.0f}, /* S < work-group */
      {1, 2, {3, 1, 1}, 1, VX_ACT_LEAKY_RELU, 0.01f},
  };
  static const norm_case small[] = {
      {2, 3, {3, 4, 5}, 1, VX_ACT_NONE, 0.0f},
      {1, 2, {3, 4, 5}, 1, VX_ACT_RELU, 0.0f},
      {2, 2, {2, 3, 5}, 0, VX_ACT_LEAKY_RELU, 0.01f},
  };
  const norm_case *cases = t->small ? small : full;
  size_t n = t->small ? COUNT(small) : COUNT(full);
  for (size_t i = 0; i < n; i++) run_norm_case(t, &cases[i], 0);
  run_norm_case(t, &cases[t->small ? 0 : 2], 1);
  instance_norm_refusals(t);
}

/* ================================================================ activation */
typedef struct {
  size_t n;
  int act;
  double slope;
  double *x, *r, *y;
} act_state;

static double act_loss(void *sv) {
  act_state *s = sv;
  ref_activation_forward(s->act, s->slope, s->x, s->n, s->y);
  return dot(s->r, s->y, s->n);
}

static void run_act_case(tester *t, const int xs[5], int act, float slope, int views) {
  vx_context *ctx = t->ctx;
  static const char *act_names[] = {"none", "relu", "leaky_relu"};
  char b1[64];
  set_desc(t, "x%s act %s slope %g%s", shape_str(xs, b1, sizeof b1), act_names[act], (double)slope,
           views ? " views" : "");
  size_t n = ref_numel(xs);
  float *xf = rand_floats(t, n, -1, 1), *rf = rand_floats(t, n, -1, 1), *pf = rand_floats(t, n, -1, 1);
  for (size_t i = 0; i < n; i++) /* away from the kink at 0, see FD_H_ACT */
    if (fabsf(xf[i]) < 0.02f) xf[i] = xf[i] < 0 ? -0.02f - xf[i] : 0.02f + xf[i];
  act_state s = {n, act, (double)slope, to_double(xf, n), to_double(rf, n), xmalloc(n * sizeof(double))};
  float *y_dev = NULL, *dx1 = NULL, *dx2 = NULL;
  double *acc = NULL;
  tensor_set ts;
  ts_init(&ts, t, ctx, views);
  vx_tensor *x, *y, *dy, *dx;
  NEED(x = ts_new(&ts, xs, xf));
  NEED(y = ts_new(&ts, xs, NULL));
  NEED(dy = ts_new(&ts, xs, rf));
  NEED(dx = ts_new(&ts, xs, NULL));
  TRY("forward", vx_activation_forward(ctx, (vx_activation)act, slope, x, y));
  NEED(y_dev = fetch(t, ctx, y));
  act_loss(&s);
  check_close(t, "forward y", y_dev, s.y, NULL, n, ELT_ATOL, ELT_RTOL);
  /* in place: y = act(y) with the input copied into y */
  TRY("upload", vx_tensor_upload(dx, xf));
  TRY("forward in place", vx_activation_forward(ctx, (vx_activation)act, slope, dx, dx));
  free(y_dev);
  NEED(y_dev = fetch(t, ctx, dx));
  check_close(t, "forward in place", y_dev, s.y, NULL, n, ELT_ATOL, ELT_RTOL);

  TRY("backward", vx_activation_backward(ctx, (vx_activation)act, slope, y, dy, dx, 0));
  NEED(dx1 = fetch(t, ctx, dx));
  fd_check(t, "backward dx", act_loss, &s, s.x, n, dx1, FD_H_ACT, ELT_ATOL, ELT_RTOL);
  TRY("backward (again)", vx_activation_backward(ctx, (vx_activation)act, slope, y, dy, dx, 0));
  NEED(dx2 = fetch(t, ctx, dx));
  check_bitwise(t, "backward deterministic", dx1, dx2, n);
  TRY("upload", vx_tensor_upload(dx, pf));
  TRY("backward (accumulate)", vx_activation_backward(ctx, (vx_activation)act, slope, y, dy, dx, 1));
  free(dx2);
  NEED(dx2 = fetch(t, ctx, dx));
  acc = sum_double(pf, dx1, n);
  check_close(t, "backward accumulate", dx2, acc, NULL, n, ELT_ATOL, ELT_RTOL);
done:
  ts_free(&ts);
  free(xf); free(rf); free(pf); free(s.x); free(s.r); free(s.y); free(acc);
  free(y_dev); free(dx1); free(dx2);
}

static void test_activation(tester *t) {
  int full[5] = {2, 3, 5, 7, 6}, small[5] = {2, 3, 3, 4, 5};
  const int *xs = t->small ? small : full;
  run_act_case(t, xs, VX_ACT_NONE, 0.0f, 0);
  run_act_case(t, xs, VX_ACT_RELU, 0.0f, 0);
  run_act_case(t, xs, VX_ACT_LEAKY_RELU, 0.01f, 0);
  run_act_case(t, xs, VX_ACT_LEAKY_RELU, 0.2f, 1);
  vx_context *ctx = t->ctx;
  set_desc(t, "bad arguments");
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  int other[5] = {2, 3, 3, 4, 4};
  vx_tensor *x, *y;
  NEED(x = ts_new(&ts, small, NULL));
  TRY("fill", vx_tensor_fill(x, -1.0f));
  NEED(y = sentinel_tensor(&ts, other));
  CHECK_REFUSED("shape mismatch", vx_activation_forward(ctx, VX_ACT_RELU, 0.0f, x, y), VX_ERR_SHAPE, "shape",
                y);
  CHECK_REFUSED("backward shape mismatch", vx_activation_backward(ctx, VX_ACT_RELU, 0.0f, x, x, y, 0),
                VX_ERR_SHAPE, "shape", y);
done:
  ts_free(&ts);
}

/* ================================================================ softmax */
static void run_softmax_case(tester *t, const int xs[5], double range) {
  vx_context *ctx = t->ctx;
  char b1[64];
  set_desc(t, "x%s logits in +-%g", shape_str(xs, b1, sizeof b1), range);
  size_t n = ref_numel(xs), S = (size_t)xs[2] * xs[3] * xs[4];
  float *xf = rand_floats(t, n, -range, range), *y_dev = NULL;
  double *xd = to_double(xf, n), *yd = xmalloc(n * sizeof(double));
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  vx_tensor *x, *y;
  NEED(x = ts_new(&ts, xs, xf));
  NEED(y = ts_new(&ts, xs, NULL));
  TRY("forward", vx_softmax_forward(ctx, x, y));
  NEED(y_dev = fetch(t, ctx, y));
  ref_softmax_channels(xd, xs[0], xs[1], S, yd);
  check_close(t, "forward y", y_dev, yd, NULL, n, SOFTMAX_ATOL, SOFTMAX_RTOL);
done:
  ts_free(&ts);
  free(xf); free(y_dev); free(xd); free(yd);
}

static void test_softmax(tester *t) {
  int a[5] = {2, 3, 5, 7, 6}, b[5] = {1, 1, 3, 4, 5}, c[5] = {2, 5, 3, 4, 5}, d[5] = {2, 3, 3, 4, 5};
  run_softmax_case(t, t->small ? d : a, 3.0);
  run_softmax_case(t, b, 3.0);   /* one channel: all ones */
  run_softmax_case(t, c, 100.0); /* exp(100) overflows float: needs the max subtracted */
  vx_context *ctx = t->ctx;
  set_desc(t, "bad arguments");
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  vx_tensor *x, *y;
  NEED(x = ts_new(&ts, d, NULL));
  TRY("fill", vx_tensor_fill(x, 0.0f));
  NEED(y = sentinel_tensor(&ts, b));
  CHECK_REFUSED("shape mismatch", vx_softmax_forward(ctx, x, y), VX_ERR_SHAPE, "shape", y);
done:
  ts_free(&ts);
}

/* ================================================================ concat */
typedef struct {
  int N, Ca, Cb;
  size_t S;
  double *a, *b, *r, *y;
} concat_state;

static double concat_loss(void *sv) {
  concat_state *s = sv;
  ref_concat_channels(s->a, s->Ca, s->b, s->Cb, s->N, s->S, s->y);
  return dot(s->r, s->y, (size_t)s->N * (s->Ca + s->Cb) * s->S);
}

static void run_concat_case(tester *t, int N, int Ca, int Cb, const int sp[3], int views) {
  vx_context *ctx = t->ctx;
  int as[5] = {N, Ca, sp[0], sp[1], sp[2]}, bs[5] = {N, Cb, sp[0], sp[1], sp[2]};
  int ys[5] = {N, Ca + Cb, sp[0], sp[1], sp[2]};
  char b1[64], b2[64];
  set_desc(t, "a%s b%s%s", shape_str(as, b1, sizeof b1), shape_str(bs, b2, sizeof b2), views ? " views" : "");
  size_t na = ref_numel(as), nb = ref_numel(bs), ny = ref_numel(ys), S = (size_t)sp[0] * sp[1] * sp[2];
  float *af = rand_floats(t, na, -1, 1), *bf = rand_floats(t, nb, -1, 1), *rf = rand_floats(t, ny, -1, 1);
  float *pa = rand_floats(t, na, -1, 1), *pb = rand_floats(t, nb, -1, 1);
  concat_state s = {N, Ca, Cb, S, to_double(af, na), to_double(bf, nb), to_double(rf, ny),
                    xmalloc(ny * sizeof(double))};
  float *y_dev = NULL, *da1 = NULL, *db1 = NULL, *da2 = NULL, *db2 = NULL;
  double *acc = NULL;
  tensor_set ts;
  ts_init(&ts, t, ctx, views);
  vx_tensor *a, *b, *y, *dy, *da, *db;
  NEED(a = ts_new(&ts, as, af));
  NEED(b = ts_new(&ts, bs, bf));
  NEED(y = ts_new(&ts, ys, NULL));
  NEED(dy = ts_new(&ts, ys, rf));
  NEED(da = ts_new(&ts, as, NULL));
  NEED(db = ts_new(&ts, bs, NULL));
  TRY("forward", vx_concat_channels(ctx, a, b, y));
  NEED(y_dev = fetch(t, ctx, y));
  concat_loss(&s);
  check_close(t, "forward y", y_dev, s.y, NULL, ny, ELT_ATOL, ELT_RTOL);

  TRY("backward", vx_concat_channels_backward(ctx, dy, da, db, 0));
  NEED(da1 = fetch(t, ctx, da));
  NEED(db1 = fetch(t, ctx, db));
  fd_check(t, "backward da", concat_loss, &s, s.a, na, da1, FD_H_LINEAR, ELT_ATOL, ELT_RTOL);
  fd_check(t, "backward db", concat_loss, &s, s.b, nb, db1, FD_H_LINEAR, ELT_ATOL, ELT_RTOL);
  TRY("backward (again)", vx_concat_channels_backward(ctx, dy, da, db, 0));
  NEED(da2 = fetch(t, ctx, da));
  NEED(db2 = fetch(t, ctx, db));
  check_bitwise(t, "backward da deterministic", da1, da2, na);
  check_bitwise(t, "backward db deterministic", db1, db2, nb);
  /* accumulate, one part at a time (the other NULL): only that part changes */
  TRY("upload", vx_tensor_upload(da, pa));
  TRY("upload", vx_tensor_upload(db, pb));
  TRY("backward da only (accumulate)", vx_concat_channels_backward(ctx, dy, da, NULL, 1));
  free(da2);
  free(db2);
  db2 = NULL;
  NEED(da2 = fetch(t, ctx, da));
  NEED(db2 = fetch(t, ctx, db));
  acc = sum_double(pa, da1, na);
  check_close(t, "backward da accumulate", da2, acc, NULL, na, ELT_ATOL, ELT_RTOL);
  check_bitwise(t, "backward with db NULL leaves db", db2, pb, nb);
  TRY("backward db only (accumulate)", vx_concat_channels_backward(ctx, dy, NULL, db, 1));
  free(db2);
  NEED(db2 = fetch(t, ctx, db));
  free(acc);
  acc = sum_double(pb, db1, nb);
  check_close(t, "backward db accumulate", db2, acc, NULL, nb, ELT_ATOL, ELT_RTOL);
done:
  ts_free(&ts);
  free(af); free(bf); free(rf); free(pa); free(pb); free(s.a); free(s.b); free(s.r); free(s.y); free(acc);
  free(y_dev); free(da1); free(db1); free(da2); free(db2);
}

static void test_concat(tester *t) {
  int full[3] = {5, 7, 6}, small[3] = {3, 4, 5};
  const int *sp = t->small ? small : full;
  run_concat_case(t, 2, 3, 2, sp, 0);
  run_concat_case(t, 1, 1, 4, sp, 0);
  run_concat_case(t, 2, 2, 3, small, 1);
  vx_context *ctx = t->ctx;
  set_desc(t, "bad arguments");
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  int as[5] = {2, 2, 3, 4, 5}, bs[5] = {2, 3, 3, 4, 5}, bsp[5] = {2, 3, 3, 4, 4}, ys[5] = {2, 6, 3, 4, 5};
  int ys5[5] = {2, 5, 3, 4, 5};
  vx_tensor *a, *b, *bw, *y, *y5;
  NEED(a = ts_new(&ts, as, NULL));
  TRY("fill", vx_tensor_fill(a, 1.0f));
  NEED(b = ts_new(&ts, bs, NULL));
  TRY("fill", vx_tensor_fill(b, 2.0f));
  NEED(bw = ts_new(&ts, bsp, NULL));
  TRY("fill", vx_tensor_fill(bw, 2.0f));
  NEED(y = sentinel_tensor(&ts, ys));
  NEED(y5 = sentinel_tensor(&ts, ys5));
  CHECK_REFUSED("channels do not add up", vx_concat_channels(ctx, a, b, y), VX_ERR_SHAPE, "channels", y);
  CHECK_REFUSED("spatial mismatch", vx_concat_channels(ctx, a, bw, y5), VX_ERR_SHAPE, "second part", y5);
done:
  ts_free(&ts);
}

/* ================================================================ loss */
typedef struct {
  int N, K, sp[3], include_bg;
  float ce_w, dice_w;
  int absent;   /* labels of sample 0 avoid the last class */
  float smooth; /* Dice smoothing; 0: the default 1e-5 */
  float range;  /* logits uniform in +-range; 0: 2 */
} loss_case;

typedef struct {
  int N, K, include_bg;
  size_t S;
  double ce_w, dice_w, smooth;
  double *x, *lab;
} loss_state;

static double loss_ref(void *sv) {
  loss_state *s = sv;
  return ref_loss_dice_ce(s->x, s->lab, s->N, s->K, s->S, s->ce_w, s->dice_w, s->include_bg, s->smooth);
}

static void run_loss_case(tester *t, const loss_case *lc) {
  vx_context *ctx = t->ctx;
  int xs[5] = {lc->N, lc->K, lc->sp[0], lc->sp[1], lc->sp[2]}, ls[5] = {lc->N, 1, lc->sp[0], lc->sp[1], lc->sp[2]};
  char b1[64];
  vx_loss_params p;
  vx_loss_params_init(&p);
  p.ce_weight = lc->ce_w;
  p.dice_weight = lc->dice_w;
  p.dice_include_background = lc->include_bg;
  if (lc->smooth > 0.0f) p.dice_smooth = lc->smooth;
  double range = lc->range > 0.0f ? lc->range : 2.0;
  set_desc(t, "logits%s in +-%g ce %g dice %g smooth %g%s%s", shape_str(xs, b1, sizeof b1), range, (double)p.ce_weight,
           (double)p.dice_weight, (double)p.dice_smooth, lc->include_bg ? " with background" : "",
           lc->absent ? " class absent in sample 0" : "");
  size_t nx = ref_numel(xs), nl = ref_numel(ls), S = nl / (size_t)lc->N;
  float *xf = rand_floats(t, nx, -range, range), *lf = xmalloc(nl * sizeof(float)), *g1 = NULL, *g2 = NULL;
  for (size_t i = 0; i < nl; i++) {
    int classes = lc->absent && i < S ? lc->K - 1 : lc->K;
    lf[i] = (float)(rng_next(&t->rng) % (uint64_t)classes);
  }
  loss_state s = {lc->N, lc->K, lc->include_bg, S, (double)p.ce_weight, (double)p.dice_weight,
                  (double)p.dice_smooth, to_double(xf, nx), to_double(lf, nl)};
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  vx_tensor *x, *lab, *g;
  NEED(x = ts_new(&ts, xs, xf));
  NEED(lab = ts_new(&ts, ls, lf));
  NEED(g = ts_new(&ts, xs, NULL));
  float loss1 = 0.0f, loss2 = 0.0f, loss3 = 0.0f;
  TRY("loss", vx_loss_dice_ce(ctx, x, lab, &p, &loss1, g));
  double ref = loss_ref(&s);
  check_close(t, "loss value", &loss1, &ref, NULL, 1, LOSS_ATOL, LOSS_RTOL);
  NEED(g1 = fetch(t, ctx, g));
  fd_check(t, "dlogits", loss_ref, &s, s.x, nx, g1, FD_H_LOSS, DLOGITS_ATOL, DLOGITS_RTOL);
  TRY("loss (again)", vx_loss_dice_ce(ctx, x, lab, &p, &loss2, g));
  NEED(g2 = fetch(t, ctx, g));
  check_bitwise(t, "dlogits deterministic", g1, g2, nx);
  check_bitwise(t, "loss value deterministic", &loss1, &loss2, 1);
  TRY("loss without dlogits", vx_loss_dice_ce(ctx, x, lab, &p, &loss3, NULL));
  check_bitwise(t, "loss value without dlogits", &loss1, &loss3, 1);
done:
  ts_free(&ts);
  free(xf); free(lf); free(g1); free(g2); free(s.x); free(s.lab);
}

static void loss_refusals(tester *t) {
  vx_context *ctx = t->ctx;
  set_desc(t, "bad arguments");
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  int xs[5] = {2, 3, 2, 3, 2}, ls[5] = {2, 1, 2, 3, 2}, lbad[5] = {2, 1, 2, 3, 3}, x1[5] = {2, 1, 2, 3, 2};
  vx_tensor *x, *lab, *lb, *g, *xone;
  float loss = 0.0f;
  size_t nl = ref_numel(ls);
  float *lf = xmalloc(nl * sizeof(float));
  NEED(x = ts_new(&ts, xs, NULL));
  TRY("fill", vx_tensor_fill(x, 0.1f));
  NEED(xone = ts_new(&ts, x1, NULL));
  TRY("fill", vx_tensor_fill(xone, 0.1f));
  NEED(lab = ts_new(&ts, ls, NULL));
  NEED(lb = ts_new(&ts, lbad, NULL));
  TRY("fill", vx_tensor_fill(lb, 0.0f));
  NEED(g = sentinel_tensor(&ts, xs));
  static const float bad_values[] = {3.0f, -1.0f, 0.5f, 7.0f};
  static const char *bad_names[] = {"label = K", "label = -1", "label not an integer", "label far out of range"};
  for (size_t k = 0; k < COUNT(bad_values); k++) {
    for (size_t i = 0; i < nl; i++) lf[i] = (float)(i % 3);
    lf[nl - 1 - k] = bad_values[k];
    TRY("upload", vx_tensor_upload(lab, lf));
    CHECK_REFUSED(bad_names[k], vx_loss_dice_ce(ctx, x, lab, NULL, &loss, g), VX_ERR_INVALID_ARGUMENT,
                  "label", g);
  }
  CHECK_REFUSED("labels shape mismatch", vx_loss_dice_ce(ctx, x, lb, NULL, &loss, g), VX_ERR_SHAPE, "labels",
                g);
  CHECK_REFUSED("one class only", vx_loss_dice_ce(ctx, xone, lab, NULL, &loss, NULL), VX_ERR_SHAPE, "class",
                NULL);
done:
  ts_free(&ts);
  free(lf);
}

static void test_loss(tester *t) {
  /* smooth 1 makes the smoothing term visible at float precision (1e-5 is lost in den ~ S). */
  static const loss_case full[] = {
      {2, 3, {5, 7, 6}, 0, 1.0f, 1.0f, 0, 0, 0},    {2, 3, {5, 7, 6}, 1, 0.5f, 2.0f, 0, 0, 0},
      {1, 2, {4, 4, 4}, 0, 1.0f, 1.0f, 1, 0, 0},    {2, 4, {3, 5, 3}, 0, 0.0f, 1.0f, 1, 1.0f, 0},
      {2, 3, {9, 8, 7}, 0, 1.0f, 0.0f, 0, 0, 0},    {1, 3, {2, 3, 2}, 1, 1.0f, 1.0f, 1, 1.0f, 0},
      {2, 3, {3, 4, 5}, 0, 1.0f, 1.0f, 0, 0, 100.0f}, /* exp overflows without the max subtracted */
  };
  static const loss_case small[] = {
      {2, 3, {3, 4, 5}, 0, 1.0f, 1.0f, 1, 0, 0},
      {1, 2, {2, 3, 4}, 1, 0.5f, 2.0f, 0, 1.0f, 0},
      {1, 3, {2, 2, 3}, 0, 1.0f, 1.0f, 0, 0, 100.0f},
  };
  const loss_case *cases = t->small ? small : full;
  size_t n = t->small ? COUNT(small) : COUNT(full);
  for (size_t i = 0; i < n; i++) run_loss_case(t, &cases[i]);
  loss_refusals(t);
}

/* ================================================================ optimisers */
#define OPT_STEPS 3

typedef struct {
  int sgd;
  float lr, beta1, beta2, eps, wd; /* Adam: beta1/beta2/eps; SGD: beta1 = momentum */
  int decoupled_or_nesterov;
} opt_case;

static void run_opt_case(tester *t, const opt_case *oc, size_t n, int views) {
  vx_context *ctx = t->ctx;
  if (oc->sgd)
    set_desc(t, "sgd n %zu lr %g momentum %g%s wd %g%s", n, (double)oc->lr, (double)oc->beta1,
             oc->decoupled_or_nesterov ? " nesterov" : "", (double)oc->wd, views ? " views" : "");
  else
    set_desc(t, "%s n %zu lr %g betas %g,%g eps %g wd %g%s", oc->decoupled_or_nesterov ? "adamw" : "adam", n,
             (double)oc->lr, (double)oc->beta1, (double)oc->beta2, (double)oc->eps, (double)oc->wd,
             views ? " views" : "");
  int shape[5] = {1, 1, 1, 1, (int)n};
  float *pf = rand_floats(t, n, -1, 1), *zero = xmalloc(n * sizeof(float)), *gf = NULL;
  float *p_dev = NULL, *m_dev = NULL, *v_dev = NULL;
  double *p = to_double(pf, n), *m = xmalloc(n * sizeof(double)), *v = xmalloc(n * sizeof(double)), *g = NULL;
  tensor_set ts;
  ts_init(&ts, t, ctx, views);
  vx_tensor *tp, *tg, *tm, *tv = NULL;
  NEED(tp = ts_new(&ts, shape, pf));
  NEED(tg = ts_new(&ts, shape, NULL));
  NEED(tm = ts_new(&ts, shape, zero)); /* optimiser state starts at zero, as in PyTorch */
  if (!oc->sgd) NEED(tv = ts_new(&ts, shape, zero));
  for (int step = 1; step <= OPT_STEPS; step++) {
    free(gf);
    free(g);
    gf = rand_floats(t, n, -1, 1);
    gf[0] = 0.0f; /* a zero gradient: Adam's update must stay finite (eps) */
    g = to_double(gf, n);
    TRY("upload", vx_tensor_upload(tg, gf));
    if (oc->sgd) {
      TRY("sgd_step", vx_sgd_step(ctx, tp, tg, tm, oc->lr, oc->beta1, oc->decoupled_or_nesterov, oc->wd));
      ref_sgd_step(p, g, m, n, step == 1, oc->lr, oc->beta1, oc->decoupled_or_nesterov, oc->wd);
    } else {
      TRY("adam_step", vx_adam_step(ctx, tp, tg, tm, tv, step, oc->lr, oc->beta1, oc->beta2, oc->eps, oc->wd,
                                    oc->decoupled_or_nesterov));
      ref_adam_step(p, g, m, v, n, step, oc->lr, oc->beta1, oc->beta2, oc->eps, oc->wd, oc->decoupled_or_nesterov);
    }
  }
  NEED(p_dev = fetch(t, ctx, tp));
  NEED(m_dev = fetch(t, ctx, tm));
  check_close(t, "parameters after 3 steps", p_dev, p, NULL, n, OPT_ATOL, OPT_RTOL);
  if (!oc->sgd || oc->beta1 != 0.0f) /* PyTorch keeps no momentum buffer without momentum */
    check_close(t, oc->sgd ? "momentum buffer after 3 steps" : "first moment after 3 steps", m_dev, m, NULL, n,
                OPT_ATOL, OPT_RTOL);
  if (!oc->sgd) {
    NEED(v_dev = fetch(t, ctx, tv));
    /* v ~ (1 - beta2) g^2 ~ 1e-3: an atol scaled like it */
    check_close(t, "second moment after 3 steps", v_dev, v, NULL, n, OPT_ATOL * 1e-3, OPT_RTOL);
  }
done:
  ts_free(&ts);
  free(pf); free(zero); free(gf); free(p_dev); free(m_dev); free(v_dev); free(p); free(m); free(v); free(g);
}

static void opt_refusals(tester *t, int sgd) {
  vx_context *ctx = t->ctx;
  set_desc(t, "bad arguments");
  tensor_set ts;
  ts_init(&ts, t, ctx, 0);
  int s7[5] = {1, 1, 1, 1, 7}, s8[5] = {1, 1, 1, 1, 8};
  vx_tensor *p, *g, *g8, *m, *v, *m8;
  NEED(p = sentinel_tensor(&ts, s7));
  NEED(g = ts_new(&ts, s7, NULL));
  TRY("fill", vx_tensor_fill(g, 1.0f));
  NEED(g8 = ts_new(&ts, s8, NULL));
  TRY("fill", vx_tensor_fill(g8, 1.0f));
  NEED(m = ts_new(&ts, s7, NULL));
  TRY("fill", vx_tensor_fill(m, 0.0f));
  NEED(v = ts_new(&ts, s7, NULL));
  TRY("fill", vx_tensor_fill(v, 0.0f));
  NEED(m8 = ts_new(&ts, s8, NULL));
  TRY("fill", vx_tensor_fill(m8, 0.0f));
  if (sgd) {
    CHECK_REFUSED("grad size mismatch", vx_sgd_step(ctx, p, g8, m, 0.1f, 0.9f, 0, 0.0f), VX_ERR_SHAPE, "grad",
                  p);
    CHECK_REFUSED("momentum buffer size mismatch", vx_sgd_step(ctx, p, g, m8, 0.1f, 0.9f, 0, 0.0f),
                  VX_ERR_SHAPE, "momentum", p);
  } else {
    CHECK_REFUSED("grad size mismatch",
                  vx_adam_step(ctx, p, g8, m, v, 1, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 0), VX_ERR_SHAPE, "grad", p);
    CHECK_REFUSED("second moment size mismatch",
                  vx_adam_step(ctx, p, g, m, m8, 1, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 0), VX_ERR_SHAPE,
                  "second moment", p);
    CHECK_REFUSED("step 0", vx_adam_step(ctx, p, g, m, v, 0, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 0),
                  VX_ERR_INVALID_ARGUMENT, "step", p);
    CHECK_REFUSED("beta1 = 1", vx_adam_step(ctx, p, g, m, v, 1, 1e-3f, 1.0f, 0.999f, 1e-8f, 0.0f, 0),
                  VX_ERR_INVALID_ARGUMENT, "beta", p);
  }
done:
  ts_free(&ts);
}

static void test_adam(tester *t) {
  static const opt_case cases[] = {
      {0, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f, 0},  /* Adam */
      {0, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 0},  /* Adam, L2 weight decay */
      {0, 1e-2f, 0.8f, 0.99f, 1e-6f, 0.1f, 1},   /* AdamW */
  };
  size_t n = t->small ? 97 : 1031;
  for (size_t i = 0; i < COUNT(cases); i++) run_opt_case(t, &cases[i], n, 0);
  run_opt_case(t, &cases[2], 1, 0);
  run_opt_case(t, &cases[2], n, 1);
  opt_refusals(t, 0);
}

static void test_sgd(tester *t) {
  static const opt_case cases[] = {
      {1, 0.1f, 0.0f, 0, 0, 0.0f, 0},    /* plain */
      {1, 0.1f, 0.9f, 0, 0, 1e-2f, 0},   /* momentum, weight decay */
      {1, 0.01f, 0.99f, 0, 0, 3e-5f, 1}, /* nnU-Net: Nesterov 0.99, wd 3e-5 */
  };
  size_t n = t->small ? 97 : 1031;
  for (size_t i = 0; i < COUNT(cases); i++) run_opt_case(t, &cases[i], n, 0);
  run_opt_case(t, &cases[2], n, 1);
  opt_refusals(t, 1);
}

/* ================================================================ driver */
static const op_entry k_ops[] = {
    {"conv3d", test_conv3d}, {"conv_transpose3d", test_conv_transpose3d}, {"instance_norm", test_instance_norm},
    {"activation", test_activation}, {"softmax", test_softmax}, {"concat", test_concat}, {"loss", test_loss},
    {"adam", test_adam}, {"sgd", test_sgd},
};

/* 4 KiB of workspace holds ~12 im2col columns of a 3-channel 3x3x3 conv: chunks then split output
 * z-slices, which is what the chunked path must get right. */
int main(int argc, char **argv) {
  return op_test_main(argc, argv, "test_ops", k_ops, sizeof k_ops / sizeof k_ops[0], 0x5eed0000ULL, 4096);
}
