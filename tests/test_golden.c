/* test_golden: the C library against PyTorch's results stored in tests/golden/*.vxg (written by
 * tests/golden/make_golden.py; that file documents the format). No Python needed here.
 *
 *   test_golden [GOLDEN_DIR] [-d DEVICE] [-v]
 *
 * GOLDEN_DIR defaults to tests/golden (relative to the working directory). The device is -d,
 * else $VOXCL_DEVICE, else the default. For every case of every file: the forward output and
 * every gradient (backward-data and backward-weights with accumulate = 0) on the device, each
 * element checked with |got - ref| <= atol + rtol * |ref|. The references are torch's float64
 * results rounded to float32 from the same float32 inputs, so the tolerances only have to cover
 * the device's float32 arithmetic (inputs are O(1), uniform in [-1, 1]):
 *   conv3d, conv_transpose3d forward and gradients: rtol 1e-4, atol 1e-4 (float32 sums of up to
 *     ~300 O(1) products: typical error ~1e-6, worst-case bound ~2e-5);
 *   instance_norm forward: 1e-5 / 1e-5 (a few float ops on top of the row's mean and 1/std);
 *   instance_norm gradients: 1e-4 / 1e-4; batch/group/channel layer norm (norm.vxg) the same, running
 *   statistics with the forward's.
 * One line per check failed (all with -v), then "N passed, M failed". Exits 1 when anything
 * failed (a missing or corrupt golden file included), 77 (ctest: skipped) when there is no
 * OpenCL device. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "voxcl.h"

#define CONV_ATOL 1e-4
#define CONV_RTOL 1e-4
#define NORM_FWD_ATOL 1e-5
#define NORM_FWD_RTOL 1e-5
#define NORM_BWD_ATOL 1e-4
#define NORM_BWD_RTOL 1e-4

static int g_pass, g_fail, g_verbose;

static void report(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(int ok, const char *fmt, ...) {
  if (ok) g_pass++;
  else g_fail++;
  if (ok && !g_verbose) return;
  va_list ap;
  va_start(ap, fmt);
  printf("%s ", ok ? "ok  " : "FAIL");
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
}

/* ---------------------------------------------------------------- golden files */
#define GOLDEN_MAGIC "VXGOLDEN"
#define GOLDEN_VERSION 1u
#define GOLDEN_MAX_ARRAYS 4096
#define GOLDEN_MAX_ELEMS (1u << 24)

typedef struct {
  char name[256];
  int ndim;
  int dims[5];
  size_t numel;
  float *data;
} golden_array;

typedef struct {
  golden_array *arrays;
  int count;
} golden_file;

static void golden_free(golden_file *g) {
  for (int i = 0; i < g->count; i++) free(g->arrays[i].data);
  free(g->arrays);
  g->arrays = NULL;
  g->count = 0;
}

static int read_u32(FILE *f, uint32_t *v) {
  unsigned char b[4];
  if (fread(b, 1, 4, f) != 4) return 0;
  *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
  return 1;
}

/* Reads a whole file; on failure err names the problem and g is empty. The data are
 * little-endian float32: converted through their bit patterns, so any host byte order works. */
static int golden_read(const char *path, golden_file *g, char *err, size_t errlen) {
  memset(g, 0, sizeof *g);
  FILE *f = fopen(path, "rb");
  if (!f) { snprintf(err, errlen, "%s: cannot open (regenerate with tests/golden/make_golden.py)", path); return 0; }
  char magic[8];
  uint32_t version, count;
  int ok = 0;
  if (fread(magic, 1, 8, f) != 8 || memcmp(magic, GOLDEN_MAGIC, 8) != 0) {
    snprintf(err, errlen, "%s: not a golden file (magic)", path);
    goto done;
  }
  if (!read_u32(f, &version) || version != GOLDEN_VERSION) {
    snprintf(err, errlen, "%s: version %u, expected %u", path, (unsigned)version, GOLDEN_VERSION);
    goto done;
  }
  if (!read_u32(f, &count) || count == 0 || count > GOLDEN_MAX_ARRAYS) {
    snprintf(err, errlen, "%s: bad array count", path);
    goto done;
  }
  g->arrays = calloc(count, sizeof *g->arrays);
  if (!g->arrays) { snprintf(err, errlen, "%s: out of memory", path); goto done; }
  for (uint32_t i = 0; i < count; i++) {
    golden_array *a = &g->arrays[i];
    uint32_t len, ndim;
    if (!read_u32(f, &len) || len == 0 || len > 255 || fread(a->name, 1, len, f) != len) {
      snprintf(err, errlen, "%s: array %u: bad or truncated name", path, (unsigned)i);
      goto done;
    }
    a->name[len] = '\0';
    if (!read_u32(f, &ndim) || ndim < 1 || ndim > 5) {
      snprintf(err, errlen, "%s: %s: bad ndim", path, a->name);
      goto done;
    }
    a->ndim = (int)ndim;
    a->numel = 1;
    for (int d = 0; d < 5; d++) a->dims[d] = 1;
    for (uint32_t d = 0; d < ndim; d++) {
      uint32_t v;
      if (!read_u32(f, &v) || v == 0 || v > GOLDEN_MAX_ELEMS || a->numel * v > GOLDEN_MAX_ELEMS) {
        snprintf(err, errlen, "%s: %s: bad dimension %u", path, a->name, (unsigned)d);
        goto done;
      }
      a->dims[d] = (int)v;
      a->numel *= v;
    }
    a->data = malloc(a->numel * sizeof(float));
    if (!a->data) { snprintf(err, errlen, "%s: out of memory", path); goto done; }
    g->count = (int)i + 1;
    for (size_t k = 0; k < a->numel; k++) {
      uint32_t bits;
      if (!read_u32(f, &bits)) {
        snprintf(err, errlen, "%s: %s: truncated data", path, a->name);
        goto done;
      }
      memcpy(&a->data[k], &bits, sizeof bits);
    }
  }
  if (fgetc(f) != EOF) { snprintf(err, errlen, "%s: trailing bytes after the last array", path); goto done; }
  ok = 1;
done:
  fclose(f);
  if (!ok) golden_free(g);
  return ok;
}

/* "CASE/TENSOR", or NULL when the case has no such tensor. */
static const golden_array *golden_find(const golden_file *g, const char *case_name, const char *tensor) {
  char name[512];
  snprintf(name, sizeof name, "%s/%s", case_name, tensor);
  for (int i = 0; i < g->count; i++)
    if (!strcmp(g->arrays[i].name, name)) return &g->arrays[i];
  return NULL;
}

/* ---------------------------------------------------------------- device helpers */
typedef struct {
  vx_context *ctx;
  vx_tensor *t[16];
  int n;
} scope;

static void scope_free(scope *s) {
  while (s->n > 0) vx_tensor_destroy(s->t[--s->n]);
}

/* A device tensor of shape dims (padded to 5-D), or NULL after reporting the failure. */
static vx_tensor *scope_tensor(scope *s, const int dims[5], const char *what) {
  vx_tensor *t = NULL;
  if (s->n >= (int)(sizeof s->t / sizeof s->t[0]) || vx_tensor_create(s->ctx, dims, &t) != VX_OK) {
    report(0, "%s: cannot create a tensor: %s", what, vx_context_last_error(s->ctx));
    return NULL;
  }
  s->t[s->n++] = t;
  return t;
}

static vx_tensor *scope_upload(scope *s, const golden_array *a, const char *what) {
  vx_tensor *t = scope_tensor(s, a->dims, what);
  if (t && vx_tensor_upload(t, a->data) != VX_OK) {
    report(0, "%s: upload failed: %s", what, vx_context_last_error(s->ctx));
    return NULL;
  }
  return t;
}

/* Downloads t and compares it with ref element by element; one report line. */
static void compare(vx_context *ctx, const vx_tensor *t, const golden_array *ref, double atol, double rtol,
                    const char *file, const char *case_name, const char *what) {
  float *got = malloc(ref->numel * sizeof(float));
  if (!got || vx_tensor_numel(t) != ref->numel || vx_tensor_download(t, got) != VX_OK) {
    report(0, "%s %s %s: cannot read the result (%s)", file, case_name, what, vx_context_last_error(ctx));
    free(got);
    return;
  }
  size_t bad = 0, worst = 0;
  double worst_excess = -INFINITY, max_err = 0.0;
  for (size_t i = 0; i < ref->numel; i++) {
    double r = ref->data[i], err = fabs((double)got[i] - r);
    double excess = err - (atol + rtol * fabs(r));
    if (!(excess <= 0.0)) bad++; /* NaN counts as bad */
    if (!(excess <= worst_excess)) { worst_excess = excess; worst = i; }
    if (!(err <= max_err)) max_err = err;
  }
  report(bad == 0, "%s %s %s: %zu of %zu elements off (max |err| %.3g; worst at %zu: %.9g vs %.9g; atol %g, rtol %g)",
         file, case_name, what, bad, ref->numel, max_err, worst, (double)got[worst], (double)ref->data[worst], atol,
         rtol);
  free(got);
}

/* Fails the case when a tensor it needs is missing from the file. */
static int need(const golden_array *a, const char *file, const char *case_name, const char *tensor) {
  if (!a) report(0, "%s %s: the file has no '%s'", file, case_name, tensor);
  return a != NULL;
}

static void status_check(vx_context *ctx, vx_status st, const char *file, const char *case_name, const char *call) {
  if (st != VX_OK) report(0, "%s %s: %s failed: %s (%s)", file, case_name, call, vx_status_string(st),
                          vx_context_last_error(ctx));
}

/* ---------------------------------------------------------------- conv3d / conv_transpose3d
 * params: stride[3], padding[3], dilation[3], output_padding[3], groups, has_bias. */
static void check_conv(vx_context *ctx, const golden_file *g, const char *file, const char *c, int transposed) {
  const golden_array *P = golden_find(g, c, "params"), *x = golden_find(g, c, "x"), *w = golden_find(g, c, "w"),
                     *dy = golden_find(g, c, "dy"), *y = golden_find(g, c, "y"), *dx = golden_find(g, c, "dx"),
                     *dw = golden_find(g, c, "dw");
  if (!need(x, file, c, "x") || !need(w, file, c, "w") || !need(dy, file, c, "dy") || !need(y, file, c, "y") ||
      !need(dx, file, c, "dx") || !need(dw, file, c, "dw"))
    return;
  if (P->numel != 14) { report(0, "%s %s: params has %zu values, expected 14", file, c, P->numel); return; }
  int has_bias = P->data[13] != 0.0f;
  const golden_array *b = golden_find(g, c, "b"), *db = golden_find(g, c, "db");
  if (has_bias && (!need(b, file, c, "b") || !need(db, file, c, "db"))) return;
  vx_conv_params p;
  vx_conv_params_init(&p, 1, 0);
  for (int a = 0; a < 3; a++) {
    p.stride[a] = (int)P->data[a];
    p.padding[a] = (int)P->data[3 + a];
    p.dilation[a] = (int)P->data[6 + a];
    p.output_padding[a] = (int)P->data[9 + a];
  }
  p.groups = (int)P->data[12];

  scope s = {.ctx = ctx};
  vx_tensor *tx = scope_upload(&s, x, c), *tw = scope_upload(&s, w, c), *tdy = scope_upload(&s, dy, c);
  vx_tensor *tb = has_bias ? scope_upload(&s, b, c) : NULL;
  vx_tensor *ty = scope_tensor(&s, y->dims, c), *tdx = scope_tensor(&s, x->dims, c), *tdw = scope_tensor(&s, w->dims, c);
  vx_tensor *tdb = has_bias ? scope_tensor(&s, db->dims, c) : NULL;
  if (!tx || !tw || !tdy || !ty || !tdx || !tdw || (has_bias && (!tb || !tdb))) { scope_free(&s); return; }

  vx_status st = transposed ? vx_conv_transpose3d_forward(ctx, tx, tw, tb, &p, ty) : vx_conv3d_forward(ctx, tx, tw, tb, &p, ty);
  status_check(ctx, st, file, c, "forward");
  if (st == VX_OK) compare(ctx, ty, y, CONV_ATOL, CONV_RTOL, file, c, "forward");
  st = transposed ? vx_conv_transpose3d_backward_data(ctx, tdy, tw, &p, tdx, 0)
                  : vx_conv3d_backward_data(ctx, tdy, tw, &p, tdx, 0);
  status_check(ctx, st, file, c, "backward_data");
  if (st == VX_OK) compare(ctx, tdx, dx, CONV_ATOL, CONV_RTOL, file, c, "dx");
  st = transposed ? vx_conv_transpose3d_backward_weights(ctx, tx, tdy, &p, tdw, tdb, 0)
                  : vx_conv3d_backward_weights(ctx, tx, tdy, &p, tdw, tdb, 0);
  status_check(ctx, st, file, c, "backward_weights");
  if (st == VX_OK) {
    compare(ctx, tdw, dw, CONV_ATOL, CONV_RTOL, file, c, "dw");
    if (has_bias) compare(ctx, tdb, db, CONV_ATOL, CONV_RTOL, file, c, "db");
  }
  scope_free(&s);
}

static void check_conv3d(vx_context *ctx, const golden_file *g, const char *file, const char *c) {
  check_conv(ctx, g, file, c, 0);
}
static void check_conv_transpose3d(vx_context *ctx, const golden_file *g, const char *file, const char *c) {
  check_conv(ctx, g, file, c, 1);
}

/* ---------------------------------------------------------------- instance norm
 * params: eps, affine, activation (vx_activation), slope. */
static void check_instance_norm(vx_context *ctx, const golden_file *g, const char *file, const char *c) {
  const golden_array *P = golden_find(g, c, "params"), *x = golden_find(g, c, "x"), *dy = golden_find(g, c, "dy"),
                     *y = golden_find(g, c, "y"), *dx = golden_find(g, c, "dx");
  if (!need(x, file, c, "x") || !need(dy, file, c, "dy") || !need(y, file, c, "y") || !need(dx, file, c, "dx")) return;
  if (P->numel != 4) { report(0, "%s %s: params has %zu values, expected 4", file, c, P->numel); return; }
  float eps = P->data[0], slope = P->data[3];
  int affine = P->data[1] != 0.0f;
  vx_activation act = (vx_activation)(int)P->data[2];
  const golden_array *gam = golden_find(g, c, "gamma"), *bet = golden_find(g, c, "beta"),
                     *dg = golden_find(g, c, "dgamma"), *db = golden_find(g, c, "dbeta");
  if (affine && (!need(gam, file, c, "gamma") || !need(bet, file, c, "beta") || !need(dg, file, c, "dgamma") ||
                 !need(db, file, c, "dbeta")))
    return;
  int nc = x->dims[0] * x->dims[1];
  int save_dims[5] = {nc * 2, 1, 1, 1, 1};

  scope s = {.ctx = ctx};
  vx_tensor *tx = scope_upload(&s, x, c), *tdy = scope_upload(&s, dy, c);
  vx_tensor *tg = affine ? scope_upload(&s, gam, c) : NULL, *tb = affine ? scope_upload(&s, bet, c) : NULL;
  vx_tensor *ty = scope_tensor(&s, x->dims, c), *tsave = scope_tensor(&s, save_dims, c), *tdx = scope_tensor(&s, x->dims, c);
  vx_tensor *tdg = affine ? scope_tensor(&s, gam->dims, c) : NULL, *tdb = affine ? scope_tensor(&s, bet->dims, c) : NULL;
  if (!tx || !tdy || !ty || !tsave || !tdx || (affine && (!tg || !tb || !tdg || !tdb))) { scope_free(&s); return; }

  vx_status st = vx_instance_norm_forward(ctx, tx, tg, tb, eps, act, slope, ty, tsave);
  status_check(ctx, st, file, c, "forward");
  if (st == VX_OK) {
    compare(ctx, ty, y, NORM_FWD_ATOL, NORM_FWD_RTOL, file, c, "forward");
    st = vx_instance_norm_backward(ctx, tx, ty, tdy, tg, tsave, act, slope, tdx, tdg, tdb, 0);
    status_check(ctx, st, file, c, "backward");
    if (st == VX_OK) {
      compare(ctx, tdx, dx, NORM_BWD_ATOL, NORM_BWD_RTOL, file, c, "dx");
      if (affine) {
        compare(ctx, tdg, dg, NORM_BWD_ATOL, NORM_BWD_RTOL, file, c, "dgamma");
        compare(ctx, tdb, db, NORM_BWD_ATOL, NORM_BWD_RTOL, file, c, "dbeta");
      }
    }
  }
  scope_free(&s);
}

/* ---------------------------------------------------------------- batch, group, channel layer norm
 * params: kind (0 batch norm training, 1 batch norm inference, 2 group norm, 3 channel layer
 * norm), eps, affine, activation, slope, groups, momentum. Batch norm cases hold running_mean/
 * running_var before and running_mean_out/running_var_out after the forward. */
static void check_norm(vx_context *ctx, const golden_file *g, const char *file, const char *c) {
  const golden_array *P = golden_find(g, c, "params"), *x = golden_find(g, c, "x"), *dy = golden_find(g, c, "dy"),
                     *y = golden_find(g, c, "y"), *dx = golden_find(g, c, "dx");
  if (!need(x, file, c, "x") || !need(dy, file, c, "dy") || !need(y, file, c, "y") || !need(dx, file, c, "dx")) return;
  if (P->numel != 7) { report(0, "%s %s: params has %zu values, expected 7", file, c, P->numel); return; }
  int kind = (int)P->data[0], affine = P->data[2] != 0.0f, groups = (int)P->data[5];
  float eps = P->data[1], slope = P->data[4], momentum = P->data[6];
  vx_activation act = (vx_activation)(int)P->data[3];
  const golden_array *gam = golden_find(g, c, "gamma"), *bet = golden_find(g, c, "beta"),
                     *dg = golden_find(g, c, "dgamma"), *db = golden_find(g, c, "dbeta"),
                     *rm = golden_find(g, c, "running_mean"), *rv = golden_find(g, c, "running_var"),
                     *rm_out = golden_find(g, c, "running_mean_out"), *rv_out = golden_find(g, c, "running_var_out");
  if (affine && (!need(gam, file, c, "gamma") || !need(bet, file, c, "beta") || !need(dg, file, c, "dgamma") ||
                 !need(db, file, c, "dbeta")))
    return;
  int batch = kind == 0 || kind == 1;
  if (batch && (!need(rm, file, c, "running_mean") || !need(rv, file, c, "running_var") ||
                !need(rm_out, file, c, "running_mean_out") || !need(rv_out, file, c, "running_var_out")))
    return;
  int save_dims[5] = {2 * x->dims[0] * x->dims[2] * x->dims[3] * x->dims[4] + 2 * x->dims[0] * x->dims[1], 1, 1, 1, 1};

  scope s = {.ctx = ctx};
  vx_tensor *tx = scope_upload(&s, x, c), *tdy = scope_upload(&s, dy, c);
  vx_tensor *tg = affine ? scope_upload(&s, gam, c) : NULL, *tb = affine ? scope_upload(&s, bet, c) : NULL;
  vx_tensor *trm = batch ? scope_upload(&s, rm, c) : NULL, *trv = batch ? scope_upload(&s, rv, c) : NULL;
  vx_tensor *ty = scope_tensor(&s, x->dims, c), *tsave = scope_tensor(&s, save_dims, c), *tdx = scope_tensor(&s, x->dims, c);
  vx_tensor *tdg = affine ? scope_tensor(&s, gam->dims, c) : NULL, *tdb = affine ? scope_tensor(&s, bet->dims, c) : NULL;
  if (!tx || !tdy || !ty || !tsave || !tdx || (affine && (!tg || !tb || !tdg || !tdb)) || (batch && (!trm || !trv))) {
    scope_free(&s);
    return;
  }
  vx_status st = batch ? vx_batch_norm_forward(ctx, tx, tg, tb, trm, trv, kind == 0, momentum, eps, act, slope, ty, tsave)
                 : kind == 2 ? vx_group_norm_forward(ctx, tx, groups, tg, tb, eps, act, slope, ty, tsave)
                             : vx_layer_norm_channels_forward(ctx, tx, tg, tb, eps, ty, tsave);
  status_check(ctx, st, file, c, "forward");
  if (st == VX_OK) {
    compare(ctx, ty, y, NORM_FWD_ATOL, NORM_FWD_RTOL, file, c, "forward");
    if (batch) {
      compare(ctx, trm, rm_out, NORM_FWD_ATOL, NORM_FWD_RTOL, file, c, "running_mean");
      compare(ctx, trv, rv_out, NORM_FWD_ATOL, NORM_FWD_RTOL, file, c, "running_var");
    }
    st = batch ? vx_batch_norm_backward(ctx, tx, ty, tdy, tg, tsave, kind == 0, act, slope, tdx, tdg, tdb, 0)
         : kind == 2 ? vx_group_norm_backward(ctx, tx, groups, ty, tdy, tg, tsave, act, slope, tdx, tdg, tdb, 0)
                     : vx_layer_norm_channels_backward(ctx, tx, tdy, tg, tsave, tdx, tdg, tdb, 0);
    status_check(ctx, st, file, c, "backward");
    if (st == VX_OK) {
      compare(ctx, tdx, dx, NORM_BWD_ATOL, NORM_BWD_RTOL, file, c, "dx");
      if (affine) {
        compare(ctx, tdg, dg, NORM_BWD_ATOL, NORM_BWD_RTOL, file, c, "dgamma");
        compare(ctx, tdb, db, NORM_BWD_ATOL, NORM_BWD_RTOL, file, c, "dbeta");
      }
    }
  }
  scope_free(&s);
}

/* ---------------------------------------------------------------- driver */
typedef void (*case_fn)(vx_context *ctx, const golden_file *g, const char *file, const char *case_name);
static const struct {
  const char *file;
  case_fn check;
} k_files[] = {
    {"conv3d.vxg", check_conv3d},
    {"conv_transpose3d.vxg", check_conv_transpose3d},
    {"instance_norm.vxg", check_instance_norm},
    {"norm.vxg", check_norm},
};

/* Every case of one file: each "CASE/params" array names a case. */
static void check_file(vx_context *ctx, const char *dir, const char *file, case_fn check) {
  char path[4096], err[1024];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  golden_file g;
  if (!golden_read(path, &g, err, sizeof err)) {
    report(0, "%s", err);
    return;
  }
  int cases = 0;
  for (int i = 0; i < g.count; i++) {
    const char *slash = strrchr(g.arrays[i].name, '/');
    if (!slash || strcmp(slash, "/params") != 0) continue;
    char case_name[256];
    snprintf(case_name, sizeof case_name, "%.*s", (int)(slash - g.arrays[i].name), g.arrays[i].name);
    check(ctx, &g, file, case_name);
    cases++;
  }
  report(cases > 0, "%s: %d case(s)", file, cases);
  golden_free(&g);
}

int main(int argc, char **argv) {
  const char *dir = "tests/golden", *device = NULL;
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-d") && i + 1 < argc) device = argv[++i];
    else if (!strcmp(argv[i], "-v")) g_verbose = 1;
    else if (argv[i][0] != '-') dir = argv[i];
    else {
      fprintf(stderr, "usage: test_golden [GOLDEN_DIR] [-d DEVICE] [-v]\n");
      return 2;
    }
  }
  vx_context_options opts = {.device = device};
  vx_context *ctx = NULL;
  char err[2048] = "";
  vx_status st = vx_context_create(&opts, &ctx, err, sizeof err);
  if (st == VX_ERR_NO_DEVICE) {
    /* Skipped only when there is no device at all; a request that matches none is an error. */
    vx_device_info *devs = NULL;
    int n = 0;
    if (vx_devices_list(&devs, &n, NULL, 0) != VX_OK || n == 0) {
      vx_free(devs);
      printf("SKIP: no OpenCL device: %s\n", err);
      return 77;
    }
    vx_free(devs);
  }
  if (st != VX_OK) {
    printf("FAIL cannot create a context: %s\n", err);
    return 1;
  }
  printf("device %s; golden files in %s\n", vx_context_device(ctx)->name, dir);
  for (size_t k = 0; k < sizeof k_files / sizeof k_files[0]; k++) check_file(ctx, dir, k_files[k].file, k_files[k].check);
  vx_context_destroy(ctx);
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
