/* voxcl tune: tunes CLBlast's GEMM for the chosen device and saves the result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void progress(void *u, int done, int total, double gf, double best) {
  (void)u;
  fprintf(stderr, "\r  candidate %3d/%d: %6.1f GFLOP/s (best %6.1f)   ", done, total, gf, best);
  fflush(stderr);
}

int vx_cli_tune(int argc, char **argv) {
  const char *device = NULL;
  int size = 1024;
  double seconds = 600;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if ((v = vx_cli_opt(argc, argv, &i, "--device"))) device = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "--size"))) size = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--seconds"))) seconds = atof(v);
    else { fprintf(stderr, "usage: voxcl tune [--size N] [--seconds S (600)] [--device D]\n"); return 2; }
  }
  char err[8192];
  vx_context_options o = {0};
  o.device = device;
  vx_context *ctx;
  vx_status st = vx_context_create(&o, &ctx, err, sizeof err);
  if (st != VX_OK) return vx_cli_error(st, err);
  const vx_device_info *d = vx_context_device(ctx);
  double peak = 0, bw = 0;
  vx_device_measure_peak(ctx, &peak, &bw);
  printf("tuning CLBlast sgemm %d^3 on %d:%d %s (measured peak %.1f GFLOP/s) for at most %.0f s; each candidate "
         "compiles once\n", size, d->platform, d->device, d->name, peak, seconds);
  vx_tune_result r;
  st = vx_gemm_tune(ctx, size, seconds, progress, NULL, &r, err, sizeof err);
  fprintf(stderr, "\n");
  if (st != VX_OK) {
    vx_context_destroy(ctx);
    return vx_cli_error(st, err);
  }
  printf("before: %.1f GFLOP/s (%.0f%% of peak); after: %.1f GFLOP/s (%.0f%% of peak), %d candidates\n",
         r.before_gflops, 100 * r.before_gflops / peak, r.after_gflops, 100 * r.after_gflops / peak, r.candidates);
  if (r.saved_to[0]) printf("saved to %s (used by every later context on this device and driver)\n", r.saved_to);
  else if (!r.improved) printf("no candidate beat the parameters in force; nothing saved\n");
  vx_context_destroy(ctx);
  return 0;
}
