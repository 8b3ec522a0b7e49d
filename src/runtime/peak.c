/* Measures the device's fp32 FMA rate and copy bandwidth with kernels/peak.cl: the reference
 * every benchmark reports its fraction of. Medians of several runs after a warm-up. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "runtime/runtime.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

#define RUNS 7
#define ITERS 1024

vx_status vx_device_measure_peak(vx_context *ctx, double *gflops, double *gbps) {
  size_t items = (size_t)ctx->info.compute_units * 4096;
  if (items < 65536) items = 65536;
  size_t bytes = (size_t)256 << 20;
  if (ctx->info.max_alloc_bytes && bytes > ctx->info.max_alloc_bytes / 2) bytes = ctx->info.max_alloc_bytes / 2;
  bytes -= bytes % 64;
  cl_mem out = NULL, a = NULL, b = NULL;
  vx_status st = vx_buffer_alloc(ctx, items * sizeof(float), &out);
  if (st == VX_OK) st = vx_buffer_alloc(ctx, bytes, &a);
  if (st == VX_OK) st = vx_buffer_alloc(ctx, bytes, &b);
  char opts[32];
  snprintf(opts, sizeof opts, "-DITERS=%d", ITERS);
  double tf[RUNS], tc[RUNS];
  int n16 = (int)(bytes / 64);
  for (int r = -1; r < RUNS && st == VX_OK; r++) { /* r = -1: warm-up (compiles) */
    vx_arg fa[] = {VX_MEM(out), VX_FLOAT(0.999f), VX_FLOAT(0.001f)};
    size_t n = (size_t)n16;
    vx_arg ca[] = {VX_MEM(a), VX_MEM(b), VX_INT(n16)};
    double t0 = now();
    st = vx_launch(ctx, "peak", opts, "peak_fma", 1, &items, NULL, fa, VX_NARGS(fa));
    if (st == VX_OK) st = vx_context_finish(ctx);
    double t1 = now();
    if (st == VX_OK) st = vx_launch(ctx, "peak", opts, "peak_copy", 1, &n, NULL, ca, VX_NARGS(ca));
    if (st == VX_OK) st = vx_context_finish(ctx);
    double t2 = now();
    if (r >= 0) { tf[r] = t1 - t0; tc[r] = t2 - t1; }
  }
  if (st == VX_OK) {
    qsort(tf, RUNS, sizeof(double), cmp);
    qsort(tc, RUNS, sizeof(double), cmp);
    *gflops = (double)items * ITERS * 8 * 16 * 2 / tf[RUNS / 2] / 1e9;
    *gbps = 2.0 * (double)bytes / tc[RUNS / 2] / 1e9;
  }
  vx_buffer_free(ctx, out, items * sizeof(float));
  vx_buffer_free(ctx, a, bytes);
  vx_buffer_free(ctx, b, bytes);
  return st;
}
