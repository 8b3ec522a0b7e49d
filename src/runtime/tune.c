/* `voxcl tune`: a search over CLBlast's Xgemm parameters for the device in use, timed on real
 * sgemm calls, the winner applied with CLBlastOverrideParameters and persisted beside the program
 * cache (one JSON file per device + driver), from where every later context loads it.
 *
 * CLBlast 1.5's C API has no tuning functions (only its C++ header and the clblast_tuner_*
 * programs do), so voxcl searches itself: candidates satisfy Xgemm's divisibility constraints
 * and the device's work-group and local-memory limits; each costs a kernel compilation (1-8 s on
 * PoCL) and a few timed products. */
#include <clblast_c.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/runtime.h"

static const char *k_names[16] = {"GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB",
                                  "NDIMC", "NWG",   "SA",   "SB",  "STRM",  "STRN",  "VWM", "VWN"};
enum { P_GEMMK, P_KREG, P_KWG, P_KWI, P_MDIMA, P_MDIMC, P_MWG, P_NDIMB, P_NDIMC, P_NWG, P_SA, P_SB, P_STRM, P_STRN,
       P_VWM, P_VWN };

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Xgemm's constraints (CLBlast's kernel requirements) and the device's limits. */
static int valid(const size_t *p, size_t max_wg, size_t local_bytes) {
  size_t mdimc = p[P_MDIMC], ndimc = p[P_NDIMC], mdima = p[P_MDIMA], ndimb = p[P_NDIMB];
  size_t mwg = p[P_MWG], nwg = p[P_NWG], kwg = p[P_KWG], vwm = p[P_VWM], vwn = p[P_VWN];
  if (mdimc * ndimc > max_wg) return 0;
  if (mwg % (mdimc * vwm) || nwg % (ndimc * vwn) || mwg % (mdima * vwm) || nwg % (ndimb * vwn)) return 0;
  if ((mdimc * ndimc) % mdima || (mdimc * ndimc) % ndimb) return 0;
  if (kwg % ((mdimc * ndimc) / mdima) || kwg % ((mdimc * ndimc) / ndimb) || kwg % p[P_KWI]) return 0;
  size_t lmem = (p[P_SA] ? kwg * mwg : 0) + (p[P_SB] ? kwg * nwg : 0);
  return lmem * sizeof(float) <= local_bytes;
}

static vx_status time_sgemm(vx_context *ctx, size_t n, cl_mem a, cl_mem b, cl_mem c, double *gflops) {
  double best = 1e30;
  for (int r = 0; r < 4; r++) { /* r = 0 compiles */
    double t0 = now();
    vx_status st = vx_gemm(ctx, 0, 0, n, n, n, 1.0f, a, 0, n, b, 0, n, 0.0f, c, 0, n);
    if (st == VX_OK) st = vx_context_finish(ctx);
    if (st != VX_OK) return st;
    double t = now() - t0;
    if (r > 0 && t < best) best = t;
  }
  *gflops = 2.0 * n * n * n / best / 1e9;
  return VX_OK;
}

static void tuning_path(const vx_context *ctx, char *path, size_t len) {
  snprintf(path, len, "%s/gemm-tuning-%016llx.json", ctx->cache_dir,
           (unsigned long long)vx_hash64(ctx->device_key, strlen(ctx->device_key), 0));
}

static int apply(vx_context *ctx, const size_t *p) {
  return CLBlastOverrideParameters(ctx->device, "Xgemm", CLBlastPrecisionSingle, 16, k_names, p) == CLBlastSuccess;
}

/* Loads a tuning file for ctx's device and driver; 1 when applied. */
int vx_gemm_load_tuning(vx_context *ctx) {
  if (!ctx->cache_dir[0]) return 0;
  char path[1200];
  tuning_path(ctx, path, sizeof path);
  json_t *j = json_load_file(path, 0, NULL);
  if (!j) return 0;
  const char *key = json_string_value(json_object_get(j, "device_key"));
  json_t *params = json_object_get(j, "xgemm");
  size_t p[16];
  int ok = key && !strcmp(key, ctx->device_key) && json_is_object(params);
  for (int i = 0; ok && i < 16; i++) {
    json_t *v = json_object_get(params, k_names[i]);
    ok = json_is_integer(v) && json_integer_value(v) >= 0;
    if (ok) p[i] = (size_t)json_integer_value(v);
  }
  ok = ok && apply(ctx, p);
  json_decref(j);
  if (ok) vx_log(ctx, "voxcl: CLBlast parameters from %s\n", path);
  return ok;
}

vx_status vx_gemm_tune(vx_context *ctx, int size, double max_seconds, vx_tune_progress_fn progress, void *user,
                       vx_tune_result *out, char *errbuf, size_t errlen) {
  double t_start = now();
  memset(out, 0, sizeof *out);
  size_t n = size > 0 ? (size_t)size : 1024;
  size_t bytes = n * n * sizeof(float);
  cl_mem a = NULL, b = NULL, c = NULL;
  vx_status st = vx_buffer_alloc(ctx, bytes, &a);
  if (st == VX_OK) st = vx_buffer_alloc(ctx, bytes, &b);
  if (st == VX_OK) st = vx_buffer_alloc(ctx, bytes, &c);
  if (st != VX_OK) {
    snprintf(errbuf, errlen, "%s", ctx->last_error);
    goto done;
  }
  /* the parameters in force now (table or earlier tuning) are the baseline to beat */
  st = time_sgemm(ctx, n, a, b, c, &out->before_gflops);
  if (st != VX_OK) { snprintf(errbuf, errlen, "%s", ctx->last_error); goto done; }
  size_t max_wg = 256, local_bytes = ctx->info.local_mem_bytes ? ctx->info.local_mem_bytes : 16384;
  clGetDeviceInfo(ctx->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_wg, &max_wg, NULL);
  static const size_t mwgs[] = {64, 128, 32}, nwgs[] = {128, 64, 32}, kwgs[] = {32, 16}, dims[] = {8, 16},
                      vws[] = {8, 4, 2}, sas[] = {0, 1};
  /* a bounded grid (work-group shape x tile x vector width x local-memory use), the shapes that
   * suit wide-vector CPUs first, so a time budget keeps the likeliest winners */
  size_t cand[512][16];
  int nc = 0;
  for (size_t v = 0; v < 3; v++)
    for (size_t s = 0; s < 2; s++)
      for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 3; j++)
          for (size_t k = 0; k < 2; k++)
            for (size_t d = 0; d < 2 && nc < 512; d++) {
              size_t p[16] = {0};
              p[P_GEMMK] = 0, p[P_KREG] = 1, p[P_KWG] = kwgs[k], p[P_KWI] = 2;
              p[P_MDIMC] = 8, p[P_NDIMC] = dims[d], p[P_MDIMA] = 8, p[P_NDIMB] = dims[d];
              p[P_MWG] = mwgs[i], p[P_NWG] = nwgs[j], p[P_SA] = sas[s], p[P_SB] = sas[s];
              p[P_STRM] = 0, p[P_STRN] = 0, p[P_VWM] = vws[v], p[P_VWN] = vws[v] > 4 ? 4 : vws[v];
              if (valid(p, max_wg, local_bytes)) memcpy(cand[nc++], p, sizeof p);
            }
  out->candidates = nc;
  size_t best[16];
  double best_gf = 0;
  for (int i = 0; i < nc; i++) {
    if (max_seconds > 0 && now() - t_start > max_seconds) {
      out->candidates = i; /* the budget is spent: keep the best so far */
      break;
    }
    double gf = 0;
    if (apply(ctx, cand[i]) && time_sgemm(ctx, n, a, b, c, &gf) == VX_OK && gf > best_gf) {
      best_gf = gf;
      memcpy(best, cand[i], sizeof best);
    }
    ctx->last_error[0] = 0;
    if (progress) progress(user, i + 1, nc, gf, best_gf);
  }
  if (best_gf <= out->before_gflops) {
    /* nothing beat what was in force: put it back (table or file) */
    vx_gemm_apply_tuning(ctx);
    out->after_gflops = out->before_gflops;
    goto done;
  }
  apply(ctx, best);
  out->after_gflops = best_gf;
  out->improved = 1;
  if (ctx->cache_dir[0]) {
    json_t *j = json_object(), *params = json_object();
    json_object_set_new(j, "device_key", json_string(ctx->device_key));
    json_object_set_new(j, "size", json_integer((json_int_t)n));
    json_object_set_new(j, "gflops", json_real(best_gf));
    for (int i = 0; i < 16; i++) json_object_set_new(params, k_names[i], json_integer((json_int_t)best[i]));
    json_object_set_new(j, "xgemm", params);
    char path[1200], tmp[1300];
    tuning_path(ctx, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    mkdir(ctx->cache_dir, 0755);
    if (json_dump_file(j, tmp, JSON_INDENT(2)) == 0 && rename(tmp, path) == 0) {
      snprintf(out->saved_to, sizeof out->saved_to, "%s", path);
    } else {
      unlink(tmp);
    }
    json_decref(j);
  }
done:
  if (a) vx_buffer_free(ctx, a, bytes);
  if (b) vx_buffer_free(ctx, b, bytes);
  if (c) vx_buffer_free(ctx, c, bytes);
  return st;
}
