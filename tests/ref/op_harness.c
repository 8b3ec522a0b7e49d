/* The shared op-test harness: see op_harness.h. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ref/op_harness.h"
#include "ref/ref_ops.h"

/* ---------------------------------------------------------------- small helpers */
void *xmalloc(size_t bytes) {
  /* Host memory for a test of a few MB: running out is not something to recover from here. */
  void *p = calloc(1, bytes ? bytes : 1);
  if (!p) {
    fprintf(stderr, "op test: out of host memory (%zu bytes)\n", bytes);
    exit(2);
  }
  return p;
}

double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int contains_nocase(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
    if (i == n) return 1;
  }
  return n == 0;
}

double dot(const double *a, const double *b, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

/* splitmix64: small, fixed seed, the same sequence everywhere. */
uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double rng_uniform(uint64_t *s, double lo, double hi) {
  return lo + (hi - lo) * (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---------------------------------------------------------------- the tester */

void vrecord(tester *t, int ok, const char *what, const char *fmt, va_list ap) {
  if (ok) t->passed++;
  else t->failed++;
  if (ok && !t->verbose) return;
  char detail[1024];
  vsnprintf(detail, sizeof detail, fmt, ap);
  printf("%s %s on %s: %s | %s: %s\n", ok ? "ok  " : "FAIL", t->op, t->dev, t->desc, what, detail);
}

int record(tester *t, int ok, const char *what, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vrecord(t, ok, what, fmt, ap);
  va_end(ap);
  return ok;
}

/* A call that should have worked did not. */
void fail_call(tester *t, vx_context *ctx, const char *what, vx_status st) {
  record(t, 0, what, "returned %s: %s", vx_status_string(st), vx_context_last_error(ctx));
}

/* Compares dev[idx[k]] with ref[k] for k < n (dev[k] with ref[k] when idx is NULL). */
int check_close(tester *t, const char *what, const float *dev, const double *ref, const size_t *idx, size_t n,
                       double atol, double rtol) {
  double max_abs = 0.0, max_rel = 0.0, worst = -1.0;
  size_t wi = 0, wk = 0;
  int ok = 1;
  for (size_t k = 0; k < n; k++) {
    size_t i = idx ? idx[k] : k;
    double d = dev[i], r = ref[k], e = fabs(d - r);
    double lim = atol + rtol * fabs(r);
    if (!(e <= lim)) ok = 0; /* also catches NaN */
    double ratio = isfinite(e) ? e / lim : INFINITY;
    if (e > max_abs || !isfinite(e)) max_abs = isfinite(e) ? e : INFINITY;
    if (r != 0.0 && e / fabs(r) > max_rel) max_rel = e / fabs(r);
    if (ratio > worst) { worst = ratio; wi = i; wk = k; }
  }
  if (n == 0) return record(t, 0, what, "nothing compared");
  return record(t, ok, what, "max abs err %.3g, max rel err %.3g over %zu values; worst [%zu] dev %.9g ref %.9g "
                "(atol %g, rtol %g)", max_abs, max_rel, n, wi, (double)dev[wi], ref[wk], atol, rtol);
}

int check_bitwise(tester *t, const char *what, const float *a, const float *b, size_t n) {
  size_t diff = 0, first = 0;
  for (size_t i = n; i-- > 0;)
    if (memcmp(&a[i], &b[i], sizeof(float))) { diff++; first = i; }
  return record(t, diff == 0, what, diff ? "%zu of %zu values differ between two runs, first [%zu]: %.9g vs %.9g"
                                         : "%zu values bitwise identical over two runs",
                diff ? diff : n, n, first, (double)a[first], (double)b[first]);
}

/* Up to FD_SAMPLES distinct indices of [0, n), sorted, always with 0 and n - 1. */
size_t pick_indices(tester *t, size_t n, size_t *idx) {
  if (n <= FD_SAMPLES) {
    for (size_t i = 0; i < n; i++) idx[i] = i;
    return n;
  }
  size_t k = 0;
  idx[k++] = 0;
  while (k < FD_SAMPLES - 1) {
    size_t c = 1 + (size_t)(rng_next(&t->rng) % (n - 2));
    size_t j = 1;
    while (j < k && idx[j] != c) j++;
    if (j == k) idx[k++] = c;
  }
  idx[k++] = n - 1;
  for (size_t a = 1; a < k; a++) /* insertion sort: k is tiny */
    for (size_t b = a; b > 0 && idx[b - 1] > idx[b]; b--) {
      size_t tmp = idx[b];
      idx[b] = idx[b - 1];
      idx[b - 1] = tmp;
    }
  return k;
}

/* Checks dev (the device's dL/dparam) against central differences of f at a sample of elements
 * of param, which f reads. */
int fd_check(tester *t, const char *what, loss_fn f, void *state, double *param, size_t n, const float *dev,
                    double h, double atol, double rtol) {
  size_t idx[FD_SAMPLES] = {0};
  double fd[FD_SAMPLES] = {0};
  size_t k = pick_indices(t, n, idx);
  for (size_t j = 0; j < k; j++) {
    double save = param[idx[j]];
    param[idx[j]] = save + h;
    double lp = f(state);
    param[idx[j]] = save - h;
    double lm = f(state);
    param[idx[j]] = save;
    fd[j] = (lp - lm) / (2.0 * h);
  }
  return check_close(t, what, dev, fd, idx, k, atol, rtol);
}

/* Host data: float values for the device, the same values as doubles for the reference. */
float *rand_floats(tester *t, size_t n, double lo, double hi) {
  float *f = xmalloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) f[i] = (float)rng_uniform(&t->rng, lo, hi);
  return f;
}

double *to_double(const float *f, size_t n) {
  double *d = xmalloc(n * sizeof(double));
  for (size_t i = 0; i < n; i++) d[i] = f[i];
  return d;
}

/* ref[i] = a[i] + b[i] in double: the expected content after an accumulating call. */
double *sum_double(const float *a, const float *b, size_t n) {
  double *d = xmalloc(n * sizeof(double));
  for (size_t i = 0; i < n; i++) d[i] = (double)a[i] + (double)b[i];
  return d;
}

/* ---------------------------------------------------------------- device tensors
 * Each case allocates its tensors through a set that frees them all at the end. With 'views'
 * the tensors are views at odd offsets of one arena, as a planned network holds them, so that
 * every kernel and GEMM sees a non-zero offset. */

void ts_init(tensor_set *ts, tester *t, vx_context *ctx, int views) {
  memset(ts, 0, sizeof *ts);
  ts->t = t;
  ts->ctx = ctx;
  if (views) {
    int shape[5] = {1, 1, 1, 1, (int)ARENA_FLOATS};
    vx_status st = vx_tensor_create(ctx, shape, &ts->arena);
    if (st != VX_OK) fail_call(t, ctx, "creating the view arena", st);
    ts->used = 0;
  }
}

/* A new tensor, uploaded from host when not NULL. NULL (and a recorded failure) on error. */
vx_tensor *ts_new(tensor_set *ts, const int shape[5], const float *host) {
  vx_tensor *x = NULL;
  vx_status st;
  if (ts->count == MAX_TENSORS) {
    record(ts->t, 0, "test setup", "more than %d tensors in one case", MAX_TENSORS);
    return NULL;
  }
  if (ts->arena) {
    ts->used += 5 + ts->used % 2; /* odd offsets, gaps between tensors */
    st = vx_tensor_view(ts->arena, ts->used, shape, &x);
    if (st == VX_OK) ts->used += ref_numel(shape);
  } else {
    st = vx_tensor_create(ts->ctx, shape, &x);
  }
  if (st != VX_OK) {
    fail_call(ts->t, ts->ctx, "creating a tensor", st);
    return NULL;
  }
  ts->list[ts->count++] = x;
  if (host && (st = vx_tensor_upload(x, host)) != VX_OK) {
    fail_call(ts->t, ts->ctx, "uploading a tensor", st);
    return NULL;
  }
  return x;
}

void ts_free(tensor_set *ts) {
  while (ts->count > 0) vx_tensor_destroy(ts->list[--ts->count]);
  vx_tensor_destroy(ts->arena);
  ts->arena = NULL;
}

/* Downloads into a new host array (NULL and a recorded failure on error). */
float *fetch(tester *t, vx_context *ctx, const vx_tensor *x) {
  float *h = xmalloc(vx_tensor_numel(x) * sizeof(float));
  vx_status st = vx_tensor_download(x, h);
  if (st != VX_OK) {
    fail_call(t, ctx, "downloading a tensor", st);
    free(h);
    return NULL;
  }
  return h;
}

/* ---------------------------------------------------------------- refusals
 * A bad call must return 'expect' with a message naming 'keyword', and leave 'out' (pre-filled
 * with a sentinel by the caller) as it was: nothing was launched that wrote it. */

void check_refused(tester *t, vx_context *ctx, const char *what, vx_status got, vx_status expect,
                   const char *keyword, vx_tensor *out) {
  const char *msg = vx_context_last_error(ctx);
  int ok = got == expect && contains_nocase(msg, keyword);
  int untouched = 1;
  if (out) {
    float *h = fetch(t, ctx, out);
    if (!h) return;
    for (size_t i = 0; i < vx_tensor_numel(out); i++) untouched &= h[i] == SENTINEL;
    free(h);
  }
  record(t, ok && untouched, what, "status %s (expected %s), message \"%s\" (should name '%s')%s",
         vx_status_string(got), vx_status_string(expect), msg, keyword,
         untouched ? "" : "; the output was written although the call was refused");
}

/* Sets the context's last error to an unrelated message (a cheap refused call, nothing built), so
 * that a refusal that forgets its message cannot pass on a stale one. */
void clear_last_error(vx_context *ctx) { (void)vx_context_build_kernel_file(ctx, NULL, NULL); }

/* A tensor filled with SENTINEL, for outputs that a refused call must not touch. */
vx_tensor *sentinel_tensor(tensor_set *ts, const int shape[5]) {
  vx_tensor *x = ts_new(ts, shape, NULL);
  vx_status st = x ? vx_tensor_fill(x, SENTINEL) : VX_OK;
  if (st != VX_OK) {
    fail_call(ts->t, ts->ctx, "filling a tensor", st);
    return NULL;
  }
  return x;
}

void set_desc(tester *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->desc, sizeof t->desc, fmt, ap);
  va_end(ap);
}

const char *shape_str(const int s[5], char *buf, size_t len) {
  snprintf(buf, len, "[%d,%d,%d,%d,%d]", s[0], s[1], s[2], s[3], s[4]);
  return buf;
}

/* ---------------------------------------------------------------- the driver */
/* -o takes a comma-separated list of op names. */
static int op_selected(const char *filter, const char *name) {
  if (!filter || !*filter) return 1;
  size_t n = strlen(name);
  for (const char *p = filter; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && !strncmp(p, name, n)) return 1;
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

/* -d takes "P:D", "gpu", "cpu" or a case-insensitive substring of the device name. */
static int device_selected(const char *filter, const vx_device_info *d) {
  if (!filter || !*filter) return 1;
  int p, q;
  char extra;
  if (sscanf(filter, "%d:%d%c", &p, &q, &extra) == 2) return d->platform == p && d->device == q;
  if (!strcmp(filter, "gpu")) return d->is_gpu;
  if (!strcmp(filter, "cpu")) return d->is_cpu;
  return contains_nocase(d->name, filter);
}

static void usage(const char *prog, const op_entry *ops, size_t nops) {
  printf("usage: %s [-d P:D|gpu|cpu|NAME] [-o OP[,OP...]] [--small] [-v]\nops:", prog);
  for (size_t i = 0; i < nops; i++) printf(" %s", ops[i].name);
  printf("\n");
}

int op_test_main(int argc, char **argv, const char *prog, const op_entry *ops, size_t nops, uint64_t seed,
                 size_t tiny_workspace) {
  const char *dev_filter = NULL, *op_filter = NULL;
  tester t;
  memset(&t, 0, sizeof t);
  setvbuf(stdout, NULL, _IOLBF, 0); /* failure lines interleave with the driver's or Oclgrind's stderr */
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-d") && i + 1 < argc) dev_filter = argv[++i];
    else if (!strcmp(argv[i], "-o") && i + 1 < argc) op_filter = argv[++i];
    else if (!strcmp(argv[i], "--small")) t.small = 1;
    else if (!strcmp(argv[i], "-v")) t.verbose = 1;
    else {
      usage(prog, ops, nops);
      return !strcmp(argv[i], "-h") || !strcmp(argv[i], "--help") ? 0 : 2;
    }
  }
  if (op_filter) { /* an unknown op name is a mistake, not an empty run */
    for (const char *p = op_filter; *p;) {
      const char *e = strchr(p, ',');
      size_t len = e ? (size_t)(e - p) : strlen(p);
      int known = 0;
      for (size_t k = 0; k < nops; k++) known |= strlen(ops[k].name) == len && !strncmp(p, ops[k].name, len);
      if (!known) {
        printf("%s: unknown op '%.*s'\n", prog, (int)len, p);
        usage(prog, ops, nops);
        return 2;
      }
      if (!e) break;
      p = e + 1;
    }
  }

  vx_device_info *devs = NULL;
  int ndev = 0;
  char err[4096];
  vx_status st = vx_devices_list(&devs, &ndev, err, sizeof err);
  if (st != VX_OK || ndev == 0) {
    printf("%s: no OpenCL device (%s)\n0 passed, 0 failed\n", prog, st != VX_OK ? err : "none listed");
    vx_free(devs);
    return 77;
  }
  int tested = 0;
  double t_all = now_s();
  for (int d = 0; d < ndev; d++) {
    if (!device_selected(dev_filter, &devs[d])) continue;
    tested++;
    char req[32];
    snprintf(req, sizeof req, "%d:%d", devs[d].platform, devs[d].device);
    snprintf(t.dev, sizeof t.dev, "%s %s", req, devs[d].name);
    printf("device %s (%s, %s)%s\n", t.dev, devs[d].platform_name, devs[d].driver_version,
           t.small ? " [small shapes]" : "");
    fflush(stdout);
    /* cache_dir NULL: the library reads VOXCL_CACHE_DIR ("off" disables the disk cache). */
    vx_context_options o = {.device = req};
    st = vx_context_create(&o, &t.ctx, err, sizeof err);
    if (st != VX_OK) {
      t.op = "context";
      snprintf(t.desc, sizeof t.desc, "create");
      record(&t, 0, "vx_context_create", "%s: %s", vx_status_string(st), err);
      continue;
    }
    /* a second context with a tiny workspace forces the chunked paths */
    vx_context_options tiny = {.device = req, .workspace_bytes = tiny_workspace};
    if (tiny_workspace && vx_context_create(&tiny, &t.ctx_tiny, err, sizeof err) != VX_OK) {
      t.op = "context";
      snprintf(t.desc, sizeof t.desc, "create with a %zu-byte workspace", tiny_workspace);
      record(&t, 0, "vx_context_create", "%s", err);
      t.ctx_tiny = NULL;
    }
    for (size_t k = 0; k < nops; k++) {
      if (!op_selected(op_filter, ops[k].name)) continue;
      int p0 = t.passed, f0 = t.failed;
      double t0 = now_s();
      t.op = ops[k].name;
      t.rng = seed + k; /* per op, so that -o gives the same data as a full run */
      ops[k].run(&t);
      printf("  %-18s %4d passed, %d failed  (%.2f s)\n", t.op, t.passed - p0, t.failed - f0, now_s() - t0);
      fflush(stdout);
    }
    vx_context_destroy(t.ctx_tiny);
    vx_context_destroy(t.ctx);
    t.ctx = t.ctx_tiny = NULL;
  }
  vx_free(devs);
  if (!tested) {
    printf("%s: no device matches '%s'\n", prog, dev_filter ? dev_filter : "");
    t.failed++;
  }
  printf("total %.1f s\n%d passed, %d failed\n", now_s() - t_all, t.passed, t.failed);
  return t.failed ? 1 : 0;
}
