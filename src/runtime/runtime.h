/* Internal runtime: the context struct, error helpers, program cache and the one kernel-launch
 * helper every op uses. Nothing here is public; ops include this, the API is in voxcl.h. */
#ifndef VX_RUNTIME_H
#define VX_RUNTIME_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdarg.h>
#include "voxcl.h"

#define VX_ERRLEN 8192

typedef struct vx_program_entry vx_program_entry;

struct vx_context {
  vx_device_info info;
  cl_platform_id platform;
  cl_device_id device;
  cl_context cl;
  cl_command_queue queue;
  char cache_dir[1024];         /* "" when the disk cache is off */
  int verbose;
  vx_program_entry *programs;   /* in-memory cache: a list keyed by (file, options) */
  cl_mem workspace;             /* scratch for im2col etc., grown up to workspace_limit */
  size_t workspace_size, workspace_limit;
  vx_context_stats stats;
  char device_key[1024];        /* device name + driver + platform version: part of cache keys */
  char last_error[VX_ERRLEN];
  int gemm_tuned;               /* CLBlast parameters applied for this device */
  int profile;                  /* VOXCL_PROFILE=1: time every launch (serialises the queue) */
  struct { char name[48]; double seconds; long calls; } prof[64];
  int nprof;
};

/* Profiling: brackets one launch (a kernel or a GEMM) when ctx->profile is set. */
double vx_profile_begin(vx_context *ctx);
void vx_profile_end(vx_context *ctx, const char *name, double t0);

/* Records a message on ctx (printf-style) and returns s; for one-line error returns. */
vx_status vx_fail(vx_context *ctx, vx_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Maps an OpenCL error code to a status and records "what: CL_ERROR_NAME". */
vx_status vx_cl_fail(vx_context *ctx, cl_int err, const char *what);
const char *vx_cl_error_name(cl_int err);
/* Prints to stderr when ctx->verbose. */
void vx_log(const vx_context *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Returns a compiled program for kernels/<file>.cl with options, through the memory cache,
 * then the disk cache, then a build. The program belongs to the context. */
vx_status vx_program_get(vx_context *ctx, const char *file, const char *options, cl_program *out);
/* A kernel from a cached program (created once, reused). */
vx_status vx_kernel_get(vx_context *ctx, const char *file, const char *options, const char *name,
                        cl_kernel *out);
void vx_programs_release(vx_context *ctx);
/* Source text of an embedded kernel file (or from disk when built that way). */
const char *vx_kernel_source(const char *file, size_t *len);

/* One kernel argument: size and a pointer to its value (or to the cl_mem). */
typedef struct { size_t size; const void *value; } vx_arg;
#define VX_MEM(m)   ((vx_arg){sizeof(cl_mem), &(cl_mem){(m)}})
#define VX_INT(i)   ((vx_arg){sizeof(cl_int), &(cl_int){(cl_int)(i)}})
#define VX_FLOAT(f) ((vx_arg){sizeof(cl_float), &(cl_float){(cl_float)(f)}})
#define VX_LOCAL(bytes) ((vx_arg){(bytes), NULL})
#define VX_NARGS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Sets the arguments and enqueues kernel 'name' of (file, options) over a global range of
 * 'dims' dimensions (global sizes are rounded up to multiples of local when local != NULL). */
vx_status vx_launch(vx_context *ctx, const char *file, const char *options, const char *name,
                    int dims, const size_t *global, const size_t *local, const vx_arg *args, int nargs);

/* The scratch buffer, grown to at least 'bytes' (never beyond the workspace budget). */
vx_status vx_workspace(vx_context *ctx, size_t bytes, cl_mem *out);

/* Device memory accounting (all allocations go through these). */
vx_status vx_buffer_alloc(vx_context *ctx, size_t bytes, cl_mem *out);
void vx_buffer_free(vx_context *ctx, cl_mem m, size_t bytes);

/* Row-major C = alpha * op(A) op(B) + beta * C through CLBlast (offsets in floats). */
vx_status vx_gemm(vx_context *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                  float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off,
                  size_t ldb, float beta, cl_mem c, size_t c_off, size_t ldc);
/* Applies the tuned CLBlast parameters known for ctx's device (table + on-disk tuning). */
void vx_gemm_apply_tuning(vx_context *ctx);
/* Applies a tuning file written by vx_gemm_tune for this device and driver; 1 when found. */
int vx_gemm_load_tuning(vx_context *ctx);

/* 64-bit FNV-1a, for cache keys and checksums (not for security). */
uint64_t vx_hash64(const void *data, size_t len, uint64_t seed);

#endif
