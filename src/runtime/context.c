/* The context: device choice, queue, error messages, scratch workspace, memory accounting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <clblast_c.h>
#include <stdatomic.h>

#include "runtime/runtime.h"

vx_status vx_device_ids(int platform, int device, cl_platform_id *p, cl_device_id *d);

const char *vx_status_string(vx_status s) {
  switch (s) {
    case VX_OK: return "ok";
    case VX_ERR_INVALID_ARGUMENT: return "invalid argument";
    case VX_ERR_SHAPE: return "shape mismatch";
    case VX_ERR_NO_DEVICE: return "no matching OpenCL device";
    case VX_ERR_OPENCL: return "OpenCL error";
    case VX_ERR_BUILD: return "kernel build failed";
    case VX_ERR_OUT_OF_MEMORY: return "out of memory";
    case VX_ERR_IO: return "I/O error";
    case VX_ERR_FORMAT: return "bad file format";
    case VX_ERR_GEMM: return "CLBlast error";
    case VX_ERR_NOT_FINITE: return "non-finite value";
    case VX_ERR_UNSUPPORTED: return "unsupported";
  }
  return "unknown status";
}

const char *vx_cl_error_name(cl_int err) {
  switch (err) {
#define E(x) case x: return #x;
    E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE) E(CL_COMPILER_NOT_AVAILABLE)
    E(CL_MEM_OBJECT_ALLOCATION_FAILURE) E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY)
    E(CL_BUILD_PROGRAM_FAILURE) E(CL_INVALID_VALUE) E(CL_INVALID_DEVICE) E(CL_INVALID_BINARY)
    E(CL_INVALID_BUILD_OPTIONS) E(CL_INVALID_PROGRAM) E(CL_INVALID_KERNEL_NAME) E(CL_INVALID_KERNEL)
    E(CL_INVALID_ARG_INDEX) E(CL_INVALID_ARG_VALUE) E(CL_INVALID_ARG_SIZE) E(CL_INVALID_KERNEL_ARGS)
    E(CL_INVALID_WORK_DIMENSION) E(CL_INVALID_WORK_GROUP_SIZE) E(CL_INVALID_WORK_ITEM_SIZE)
    E(CL_INVALID_GLOBAL_OFFSET) E(CL_INVALID_BUFFER_SIZE) E(CL_INVALID_MEM_OBJECT)
    E(CL_INVALID_COMMAND_QUEUE) E(CL_INVALID_CONTEXT) E(CL_INVALID_OPERATION)
    E(CL_MISALIGNED_SUB_BUFFER_OFFSET) E(CL_INVALID_PROGRAM_EXECUTABLE)
#undef E
    default: return "CL_UNKNOWN_ERROR";
  }
}

vx_status vx_fail(vx_context *ctx, vx_status s, const char *fmt, ...) {
  if (ctx) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->last_error, sizeof ctx->last_error, fmt, ap);
    va_end(ap);
    vx_log(ctx, "voxcl: error: %s\n", ctx->last_error);
  }
  return s;
}

vx_status vx_cl_fail(vx_context *ctx, cl_int err, const char *what) {
  vx_status s = VX_ERR_OPENCL;
  if (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES || err == CL_OUT_OF_HOST_MEMORY ||
      err == CL_INVALID_BUFFER_SIZE)
    s = VX_ERR_OUT_OF_MEMORY;
  return vx_fail(ctx, s, "%s: %s (%d) on device '%s'", what, vx_cl_error_name(err), (int)err,
                 ctx ? ctx->info.name : "?");
}

void vx_log(const vx_context *ctx, const char *fmt, ...) {
  if (!ctx || !ctx->verbose) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
}

static void set_errbuf(char *errbuf, size_t errlen, const char *msg) {
  if (errbuf && errlen) snprintf(errbuf, errlen, "%s", msg);
}

static void choose_cache_dir(vx_context *ctx, const char *requested) {
  const char *dir = requested ? requested : getenv("VOXCL_CACHE_DIR");
  ctx->cache_dir[0] = 0;
  if (dir && !strcmp(dir, "off")) return;
  if (dir && *dir) {
    snprintf(ctx->cache_dir, sizeof ctx->cache_dir, "%s", dir);
  } else {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg) snprintf(ctx->cache_dir, sizeof ctx->cache_dir, "%s/voxcl", xdg);
    else if (home && *home) snprintf(ctx->cache_dir, sizeof ctx->cache_dir, "%s/.cache/voxcl", home);
  }
}

/* Live contexts. CLBlast caches compiled programs process-wide and releases them at exit, after
 * their OpenCL context is gone (Oclgrind then corrupts its heap); the last context to go clears
 * that cache first. Earlier ones leave it, so the others keep their compiled GEMM kernels. */
static atomic_int g_live_contexts;

vx_status vx_context_create(const vx_context_options *opts, vx_context **out, char *errbuf, size_t errlen) {
  if (!out) return VX_ERR_INVALID_ARGUMENT;
  *out = NULL;
  vx_context_options def = {0};
  if (!opts) opts = &def;
  char msg[4096];
  vx_device_info *devs = NULL;
  int count = 0, idx = -1;
  vx_status st = vx_devices_list(&devs, &count, msg, sizeof msg);
  if (st != VX_OK) { set_errbuf(errbuf, errlen, msg); return st; }
  const char *req = opts->device ? opts->device : getenv("VOXCL_DEVICE");
  st = vx_device_resolve(devs, count, req, &idx, msg, sizeof msg);
  if (st != VX_OK) { free(devs); set_errbuf(errbuf, errlen, msg); return st; }

  vx_context *ctx = calloc(1, sizeof *ctx);
  if (!ctx) { free(devs); return VX_ERR_OUT_OF_MEMORY; }
  ctx->info = devs[idx];
  free(devs);
  ctx->profile = getenv("VOXCL_PROFILE") && atoi(getenv("VOXCL_PROFILE")) > 0;
  ctx->verbose = opts->verbose || (getenv("VOXCL_VERBOSE") && atoi(getenv("VOXCL_VERBOSE")) > 0);
  /* default scratch budget: 256 MiB, at most an eighth of the device's memory */
  size_t def_ws = (size_t)256 << 20;
  if (ctx->info.global_mem_bytes && def_ws > ctx->info.global_mem_bytes / 8) def_ws = ctx->info.global_mem_bytes / 8;
  ctx->workspace_limit = opts->workspace_bytes ? opts->workspace_bytes : def_ws;
  if (ctx->workspace_limit > ctx->info.max_alloc_bytes && ctx->info.max_alloc_bytes)
    ctx->workspace_limit = ctx->info.max_alloc_bytes;
  choose_cache_dir(ctx, opts->cache_dir);

  st = vx_device_ids(ctx->info.platform, ctx->info.device, &ctx->platform, &ctx->device);
  if (st != VX_OK) { set_errbuf(errbuf, errlen, "the chosen device disappeared"); free(ctx); return st; }
  cl_int err;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->platform, 0};
  ctx->cl = clCreateContext(props, 1, &ctx->device, NULL, NULL, &err);
  if (err != CL_SUCCESS) {
    snprintf(msg, sizeof msg, "clCreateContext failed on '%s': %s", ctx->info.name, vx_cl_error_name(err));
    set_errbuf(errbuf, errlen, msg);
    free(ctx);
    return VX_ERR_OPENCL;
  }
  ctx->queue = clCreateCommandQueue(ctx->cl, ctx->device, 0, &err);
  if (err != CL_SUCCESS) {
    snprintf(msg, sizeof msg, "clCreateCommandQueue failed on '%s': %s", ctx->info.name, vx_cl_error_name(err));
    set_errbuf(errbuf, errlen, msg);
    clReleaseContext(ctx->cl);
    free(ctx);
    return VX_ERR_OPENCL;
  }
  snprintf(ctx->device_key, sizeof ctx->device_key, "%s|%s|%s|%s", ctx->info.name, ctx->info.driver_version,
           ctx->info.platform_name, ctx->info.opencl_version);
  vx_log(ctx, "voxcl: device %d:%d %s (%s), program cache %s\n", ctx->info.platform, ctx->info.device,
         ctx->info.name, ctx->info.platform_name, ctx->cache_dir[0] ? ctx->cache_dir : "off");
  vx_gemm_apply_tuning(ctx);
  atomic_fetch_add(&g_live_contexts, 1);
  *out = ctx;
  return VX_OK;
}

void vx_context_destroy(vx_context *ctx) {
  if (!ctx) return;
  if (ctx->queue) clFinish(ctx->queue);
  if (ctx->workspace) clReleaseMemObject(ctx->workspace);
  vx_programs_release(ctx);
  if (atomic_fetch_sub(&g_live_contexts, 1) == 1) CLBlastClearCache();
  if (ctx->queue) clReleaseCommandQueue(ctx->queue);
  if (ctx->cl) clReleaseContext(ctx->cl);
  free(ctx);
}

const char *vx_context_last_error(const vx_context *ctx) { return ctx ? ctx->last_error : ""; }
const vx_device_info *vx_context_device(const vx_context *ctx) { return ctx ? &ctx->info : NULL; }
const char *vx_context_cache_dir(const vx_context *ctx) {
  return ctx && ctx->cache_dir[0] ? ctx->cache_dir : NULL;
}
void vx_context_get_stats(const vx_context *ctx, vx_context_stats *s) {
  if (ctx && s) *s = ctx->stats;
}

void vx_context_reset_peak(vx_context *ctx) {
  if (ctx) ctx->stats.device_bytes_peak = ctx->stats.device_bytes_in_use;
}

vx_status vx_context_finish(vx_context *ctx) {
  cl_int err = clFinish(ctx->queue);
  return err == CL_SUCCESS ? VX_OK : vx_cl_fail(ctx, err, "clFinish");
}

vx_status vx_buffer_alloc(vx_context *ctx, size_t bytes, cl_mem *out) {
  *out = NULL;
  if (bytes == 0) bytes = 4;
  if (ctx->info.max_alloc_bytes && bytes > ctx->info.max_alloc_bytes)
    return vx_fail(ctx, VX_ERR_OUT_OF_MEMORY,
                   "device '%s' cannot hold one buffer of %zu bytes (its largest allocation is %llu bytes)",
                   ctx->info.name, bytes, (unsigned long long)ctx->info.max_alloc_bytes);
  if (ctx->info.global_mem_bytes && ctx->stats.device_bytes_in_use + bytes > ctx->info.global_mem_bytes)
    return vx_fail(ctx, VX_ERR_OUT_OF_MEMORY,
                   "out of device memory on '%s': %zu bytes requested, %llu of %llu bytes already in use",
                   ctx->info.name, bytes, (unsigned long long)ctx->stats.device_bytes_in_use,
                   (unsigned long long)ctx->info.global_mem_bytes);
  cl_int err;
  cl_mem m = clCreateBuffer(ctx->cl, CL_MEM_READ_WRITE, bytes, NULL, &err);
  if (err != CL_SUCCESS) {
    char what[128];
    snprintf(what, sizeof what, "allocating %zu bytes of device memory", bytes);
    return vx_cl_fail(ctx, err, what);
  }
  ctx->stats.device_bytes_in_use += bytes;
  if (ctx->stats.device_bytes_in_use > ctx->stats.device_bytes_peak)
    ctx->stats.device_bytes_peak = ctx->stats.device_bytes_in_use;
  *out = m;
  return VX_OK;
}

void vx_buffer_free(vx_context *ctx, cl_mem m, size_t bytes) {
  if (!m) return;
  clReleaseMemObject(m);
  if (bytes == 0) bytes = 4;
  ctx->stats.device_bytes_in_use -= bytes < ctx->stats.device_bytes_in_use ? bytes : ctx->stats.device_bytes_in_use;
}

vx_status vx_workspace(vx_context *ctx, size_t bytes, cl_mem *out) {
  if (bytes > ctx->workspace_limit)
    return vx_fail(ctx, VX_ERR_OUT_OF_MEMORY, "workspace of %zu bytes requested, budget is %zu bytes", bytes,
                   ctx->workspace_limit);
  if (bytes > ctx->workspace_size || !ctx->workspace) {
    /* Wait for queued kernels that may still read the old buffer before releasing it. */
    clFinish(ctx->queue);
    if (ctx->workspace) vx_buffer_free(ctx, ctx->workspace, ctx->workspace_size);
    ctx->workspace = NULL;
    ctx->workspace_size = 0;
    vx_status st = vx_buffer_alloc(ctx, bytes, &ctx->workspace);
    if (st != VX_OK) return st;
    ctx->workspace_size = bytes;
  }
  *out = ctx->workspace;
  return VX_OK;
}

vx_status vx_launch(vx_context *ctx, const char *file, const char *options, const char *name, int dims,
                    const size_t *global, const size_t *local, const vx_arg *args, int nargs) {
  cl_kernel k;
  vx_status st = vx_kernel_get(ctx, file, options, name, &k);
  if (st != VX_OK) return st;
  for (int i = 0; i < nargs; i++) {
    cl_int err = clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].value);
    if (err != CL_SUCCESS) {
      char what[256];
      snprintf(what, sizeof what, "setting argument %d of kernel %s (%s.cl)", i, name, file);
      return vx_cl_fail(ctx, err, what);
    }
  }
  size_t g[3] = {1, 1, 1};
  for (int i = 0; i < dims; i++) {
    g[i] = global[i] ? global[i] : 1;
    if (local && local[i]) g[i] = (g[i] + local[i] - 1) / local[i] * local[i];
  }
  double t0 = vx_profile_begin(ctx);
  cl_int err = clEnqueueNDRangeKernel(ctx->queue, k, (cl_uint)dims, NULL, g, local, 0, NULL, NULL);
  vx_profile_end(ctx, name, t0);
  if (err != CL_SUCCESS) {
    char what[256];
    snprintf(what, sizeof what, "launching kernel %s (%s.cl, options '%s')", name, file, options ? options : "");
    return vx_cl_fail(ctx, err, what);
  }
  return VX_OK;
}

double vx_profile_begin(vx_context *ctx) {
  if (!ctx->profile) return 0;
  clFinish(ctx->queue);
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void vx_profile_end(vx_context *ctx, const char *name, double t0) {
  if (!ctx->profile) return;
  clFinish(ctx->queue);
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  double dt = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec - t0;
  int i = 0;
  while (i < ctx->nprof && strcmp(ctx->prof[i].name, name)) i++;
  if (i == ctx->nprof) {
    if (ctx->nprof == 64) return;
    snprintf(ctx->prof[ctx->nprof++].name, sizeof ctx->prof[0].name, "%s", name);
  }
  ctx->prof[i].seconds += dt;
  ctx->prof[i].calls++;
}

size_t vx_context_profile_report(const vx_context *ctx, char *buf, size_t len) {
  size_t o = 0;
  double total = 0;
  for (int i = 0; i < ctx->nprof; i++) total += ctx->prof[i].seconds;
  if (len) buf[0] = 0;
  int order[64];
  for (int i = 0; i < ctx->nprof; i++) order[i] = i;
  for (int i = 0; i < ctx->nprof; i++) /* by time, descending */
    for (int j = i + 1; j < ctx->nprof; j++)
      if (ctx->prof[order[j]].seconds > ctx->prof[order[i]].seconds) { int t = order[i]; order[i] = order[j]; order[j] = t; }
  for (int r = 0; r < ctx->nprof && o < len; r++) {
    int i = order[r];
    o += (size_t)snprintf(buf + o, len - o, "%-28s %8ld calls %10.1f ms %5.1f%%\n", ctx->prof[i].name,
                          ctx->prof[i].calls, 1e3 * ctx->prof[i].seconds, 100.0 * ctx->prof[i].seconds / (total + 1e-12));
  }
  return o;
}
