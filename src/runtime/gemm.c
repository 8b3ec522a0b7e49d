/* GEMM through CLBlast, and the tuned-parameter table that makes it fast on devices CLBlast's
 * own database does not know (it silently falls back to slow defaults there).
 *
 * Lookup order, most specific first: a tuning file written by `voxcl tune` for this device and
 * driver (in the cache directory), then this table by device-name substring, then CLBlast's
 * own database. VOXCL_GEMM_TUNING=off skips all of it. */
#include <clblast_c.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"

typedef struct {
  const char *platform_substr; /* matched against the platform name */
  const char *device_substr;   /* matched against the device name ("" = any) */
  const char *kernel;          /* CLBlast kernel family */
  const char *names[20];
  size_t values[20];
} tuning_entry;

/* PoCL on x86 CPUs with AVX-512: found with clblast_tuner_xgemm on this project's 2-core Zen 4
 * machines (shared/baselines.md): 60-91 GFLOP/s against 10-17 with CLBlast's defaults. */
static const tuning_entry k_table[] = {
    {"Portable Computing Language", "", "Xgemm",
     {"GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB", "NDIMC", "NWG", "SA", "SB", "STRM",
      "STRN", "VWM", "VWN", NULL},
     {0, 1, 32, 2, 8, 8, 64, 32, 8, 128, 0, 0, 0, 0, 8, 4}},
    {"Portable Computing Language", "", "GemmRoutine",
     {"XGEMM_MIN_INDIRECT_SIZE", NULL},
     {128}},
};

static int count_names(const tuning_entry *e) {
  int n = 0;
  while (n < 20 && e->names[n]) n++;
  return n;
}

/* CLBlast 1.5 fills its global parameter database on the first use without a lock, and
 * contexts in two threads calling it at once corrupt it (heap use-after-free under ASan). Calls
 * are serialised until one has succeeded; overrides always are. */
static pthread_mutex_t g_clblast_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int g_clblast_ready;

void vx_gemm_apply_tuning(vx_context *ctx) {
  const char *env = getenv("VOXCL_GEMM_TUNING");
  if (env && !strcmp(env, "off")) return;
  pthread_mutex_lock(&g_clblast_lock);
  for (size_t i = 0; i < sizeof k_table / sizeof k_table[0]; i++) {
    const tuning_entry *e = &k_table[i];
    if (!strstr(ctx->info.platform_name, e->platform_substr)) continue;
    if (e->device_substr[0] && !strstr(ctx->info.name, e->device_substr)) continue;
    CLBlastStatusCode s = CLBlastOverrideParameters(ctx->device, e->kernel, CLBlastPrecisionSingle,
                                                    (size_t)count_names(e), (const char **)e->names, e->values);
    if (s == CLBlastSuccess) ctx->gemm_tuned = 1;
    else vx_log(ctx, "voxcl: CLBlast refused tuned parameters for %s (status %d)\n", e->kernel, (int)s);
  }
  /* a tuning measured on this very device and driver beats the table's Xgemm entry */
  if (vx_gemm_load_tuning(ctx)) ctx->gemm_tuned = 1;
  if (ctx->gemm_tuned) atomic_store(&g_clblast_ready, 1);
  pthread_mutex_unlock(&g_clblast_lock);
}

vx_status vx_gemm(vx_context *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, cl_mem a,
                  size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb, float beta, cl_mem c, size_t c_off,
                  size_t ldc) {
  if (m == 0 || n == 0) return VX_OK;
  int serial = !atomic_load(&g_clblast_ready);
  if (serial) pthread_mutex_lock(&g_clblast_lock);
  double t0 = vx_profile_begin(ctx);
  CLBlastStatusCode s = CLBlastSgemm(CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                                     trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, a_off, lda,
                                     b, b_off, ldb, beta, c, c_off, ldc, &ctx->queue, NULL);
  if (serial) {
    if (s == CLBlastSuccess) atomic_store(&g_clblast_ready, 1);
    pthread_mutex_unlock(&g_clblast_lock);
  }
  vx_profile_end(ctx, trans_a ? "sgemm (A transposed)" : trans_b ? "sgemm (B transposed)" : "sgemm", t0);
  if (s != CLBlastSuccess) {
    vx_status st = s == CLBlastOpenCLOutOfResources || s == CLBlastOpenCLOutOfHostMemory || s == -4 /* CL_MEM_OBJECT_ALLOCATION_FAILURE */
                       ? VX_ERR_OUT_OF_MEMORY
                       : VX_ERR_GEMM;
    return vx_fail(ctx, st, "CLBlast sgemm %zux%zux%zu (trans %d%d, lda %zu ldb %zu ldc %zu) failed with status %d",
                   m, n, k, trans_a, trans_b, lda, ldb, ldc, (int)s);
  }
  return VX_OK;
}
