/* Kernel programs: JIT build with -D options, an in-memory cache keyed by (file, options) and
 * an on-disk cache of device binaries keyed by a hash of everything that changes the binary.
 *
 * Disk entry layout (little-endian, native): magic "VXPC", u32 format version, u32 key length,
 * key bytes, u64 binary length, u64 FNV-1a checksum of the binary, binary bytes. The full key is
 * stored and compared, so a hash collision or a stale entry is detected and rebuilt. Entries are
 * written to a temporary file and renamed, so a reader never sees half an entry. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/kernels_embedded.h"
#include "runtime/runtime.h"
#include "util.h"

#define VX_CACHE_FORMAT 1u
#define VX_MAX_KERNELS 16

struct vx_program_entry {
  char *file, *options;
  cl_program program;
  struct { char name[64]; cl_kernel kernel; } kernels[VX_MAX_KERNELS];
  int nkernels;
  vx_program_entry *next;
};

uint64_t vx_hash64(const void *data, size_t len, uint64_t seed) {
  const unsigned char *p = data;
  uint64_t h = 1469598103934665603ULL ^ seed;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- sources */
#ifdef VOXCL_KERNELS_FROM_DISK
typedef struct { char name[64]; char *text; size_t len; } disk_source;
static disk_source g_disk_sources[64]; /* read-only after first load; a build-time debug option */
#endif

const char *vx_kernel_source(const char *file, size_t *len) {
#ifdef VOXCL_KERNELS_FROM_DISK
  /* Debug builds read kernels/ from the source tree so kernel edits need no rebuild. */
  const char *dir = getenv("VOXCL_KERNEL_DIR");
  if (!dir) dir = VOXCL_SOURCE_KERNEL_DIR;
  for (int i = 0; i < 64; i++) {
    if (g_disk_sources[i].text && !strcmp(g_disk_sources[i].name, file)) {
      *len = g_disk_sources[i].len;
      return g_disk_sources[i].text;
    }
    if (!g_disk_sources[i].text) {
      char path[1024];
      snprintf(path, sizeof path, "%s/%s.cl", dir, file);
      FILE *f = fopen(path, "rb");
      if (!f) break;
      fseek(f, 0, SEEK_END);
      long n = ftell(f);
      fseek(f, 0, SEEK_SET);
      char *t = malloc((size_t)n + 1);
      if (!t || fread(t, 1, (size_t)n, f) != (size_t)n) { free(t); fclose(f); break; }
      fclose(f);
      t[n] = 0;
      snprintf(g_disk_sources[i].name, sizeof g_disk_sources[i].name, "%s", file);
      g_disk_sources[i].text = t;
      g_disk_sources[i].len = (size_t)n;
      *len = (size_t)n;
      return t;
    }
  }
#endif
  for (const vx_embedded_kernel *k = vx_embedded_kernels; k->name; k++) {
    if (!strcmp(k->name, file)) {
      *len = k->length;
      return k->source;
    }
  }
  return NULL;
}

const char *const *vx_kernel_file_names(void) {
  static const char *names[128];
  if (!names[0]) {
    int n = 0;
    for (const vx_embedded_kernel *k = vx_embedded_kernels; k->name && n < 127; k++) names[n++] = k->name;
    names[n] = NULL;
  }
  return names;
}

/* ---------------------------------------------------------------- disk cache */

/* key = everything that changes the binary; the file name is a hash of the key. */
static char *make_key(const vx_context *ctx, const char *file, const char *src, size_t srclen,
                      const char *options) {
  uint64_t hs = vx_hash64(src, srclen, 0);
  size_t n = strlen(file) + strlen(options) + strlen(ctx->device_key) + 96;
  char *key = malloc(n);
  if (key)
    snprintf(key, n, "v%u|%s|%016llx|%s|%s", VX_CACHE_FORMAT, file, (unsigned long long)hs, options,
             ctx->device_key);
  return key;
}

static void entry_path(const vx_context *ctx, const char *key, char *path, size_t len) {
  size_t kl = strlen(key);
  snprintf(path, len, "%s/%016llx%016llx.bin", ctx->cache_dir, (unsigned long long)vx_hash64(key, kl, 0),
           (unsigned long long)vx_hash64(key, kl, 0x9e3779b97f4a7c15ULL));
}

/* Returns a malloc'ed binary when a valid entry for key exists; NULL otherwise (rejected++ when
 * an entry existed but was corrupt or stale). */
static unsigned char *disk_load(vx_context *ctx, const char *key, size_t *len) {
  char path[1200];
  entry_path(ctx, key, path, sizeof path);
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char *bin = NULL;
  char *stored = NULL;
  char magic[4];
  uint32_t ver = 0, klen = 0;
  uint64_t blen = 0, sum = 0;
  int ok = fread(magic, 1, 4, f) == 4 && !memcmp(magic, "VXPC", 4) && fread(&ver, 4, 1, f) == 1 &&
           ver == VX_CACHE_FORMAT && fread(&klen, 4, 1, f) == 1 && klen == strlen(key) && klen < (1u << 20);
  if (ok) {
    stored = malloc(klen + 1);
    ok = stored && fread(stored, 1, klen, f) == klen;
    if (ok) stored[klen] = 0;
    ok = ok && !strcmp(stored, key);
  }
  ok = ok && fread(&blen, 8, 1, f) == 1 && fread(&sum, 8, 1, f) == 1 && blen > 0 && blen < (1ull << 31);
  if (ok) {
    bin = malloc((size_t)blen);
    ok = bin && fread(bin, 1, (size_t)blen, f) == blen && vx_hash64(bin, (size_t)blen, 0) == sum;
    /* trailing garbage also means the entry is not what we wrote */
    ok = ok && fgetc(f) == EOF;
  }
  fclose(f);
  free(stored);
  if (!ok) {
    free(bin);
    ctx->stats.disk_entries_rejected++;
    vx_log(ctx, "voxcl: ignoring corrupt or stale cache entry %s\n", path);
    return NULL;
  }
  *len = (size_t)blen;
  return bin;
}

static atomic_uint g_tmp_seq; /* tells apart the temp files of contexts in different threads */

static void disk_store(vx_context *ctx, const char *key, cl_program prog) {
  size_t blen = 0;
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof blen, &blen, NULL) != CL_SUCCESS || blen == 0) return;
  unsigned char *bin = malloc(blen);
  if (!bin) return;
  unsigned char *bins[1] = {bin};
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) != CL_SUCCESS) { free(bin); return; }
  if (vx_mkdir_p(ctx->cache_dir) != 0) {
    vx_log(ctx, "voxcl: cannot create cache directory %s: %s\n", ctx->cache_dir, strerror(errno));
    free(bin);
    return;
  }
  char path[1200], tmp[1300];
  entry_path(ctx, key, path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&g_tmp_seq, 1u));
  FILE *f = fopen(tmp, "wb");
  if (!f) { free(bin); return; }
  uint32_t ver = VX_CACHE_FORMAT, klen = (uint32_t)strlen(key);
  uint64_t bl = blen, sum = vx_hash64(bin, blen, 0);
  int ok = fwrite("VXPC", 1, 4, f) == 4 && fwrite(&ver, 4, 1, f) == 1 && fwrite(&klen, 4, 1, f) == 1 &&
           fwrite(key, 1, klen, f) == klen && fwrite(&bl, 8, 1, f) == 1 && fwrite(&sum, 8, 1, f) == 1 &&
           fwrite(bin, 1, blen, f) == blen;
  ok = (fclose(f) == 0) && ok;
  free(bin);
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    vx_log(ctx, "voxcl: could not write cache entry %s\n", path);
  }
}

/* ---------------------------------------------------------------- build */
static vx_status build_failure(vx_context *ctx, cl_program prog, const char *file, const char *options, cl_int err) {
  size_t loglen = 0;
  clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &loglen);
  char *log = malloc(loglen + 1);
  if (log) {
    log[0] = 0;
    clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, loglen, log, NULL);
    log[loglen] = 0;
  }
  vx_status st = vx_fail(ctx, VX_ERR_BUILD, "building kernels/%s.cl failed (%s) on '%s' with options '%s'; build log:\n%s",
                         file, vx_cl_error_name(err), ctx->info.name, options, log ? log : "(none)");
  free(log);
  return st;
}

static vx_status build(vx_context *ctx, const char *file, const char *options, cl_program *out) {
  size_t srclen = 0;
  const char *src = vx_kernel_source(file, &srclen);
  if (!src) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "no kernel file kernels/%s.cl in this build", file);
  char *key = make_key(ctx, file, src, srclen, options);
  if (!key) return VX_ERR_OUT_OF_MEMORY;
  cl_int err;
  cl_program prog = NULL;
  double t0 = now_seconds();
  if (ctx->cache_dir[0]) {
    size_t blen = 0;
    unsigned char *bin = disk_load(ctx, key, &blen);
    if (bin) {
      const unsigned char *bins[1] = {bin};
      cl_int bstatus;
      prog = clCreateProgramWithBinary(ctx->cl, 1, &ctx->device, &blen, bins, &bstatus, &err);
      free(bin);
      if (err == CL_SUCCESS && bstatus == CL_SUCCESS &&
          clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL) == CL_SUCCESS) {
        ctx->stats.programs_from_disk++;
        ctx->stats.build_seconds += now_seconds() - t0;
        vx_log(ctx, "voxcl: %s.cl [%s] from disk cache\n", file, options);
        free(key);
        *out = prog;
        return VX_OK;
      }
      /* A binary the driver refuses (driver update, corruption): rebuild from source. */
      if (prog) clReleaseProgram(prog);
      prog = NULL;
      ctx->stats.disk_entries_rejected++;
    }
  }
  prog = clCreateProgramWithSource(ctx->cl, 1, &src, &srclen, &err);
  if (err != CL_SUCCESS) { free(key); return vx_cl_fail(ctx, err, "clCreateProgramWithSource"); }
  err = clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL);
  ctx->stats.build_seconds += now_seconds() - t0;
  if (err != CL_SUCCESS) {
    vx_status st = build_failure(ctx, prog, file, options, err);
    clReleaseProgram(prog);
    free(key);
    return st;
  }
  ctx->stats.programs_built++;
  vx_log(ctx, "voxcl: built %s.cl [%s] in %.2f s\n", file, options, now_seconds() - t0);
  if (ctx->cache_dir[0]) disk_store(ctx, key, prog);
  free(key);
  *out = prog;
  return VX_OK;
}

static vx_program_entry *find_entry(vx_context *ctx, const char *file, const char *options) {
  for (vx_program_entry *e = ctx->programs; e; e = e->next)
    if (!strcmp(e->file, file) && !strcmp(e->options, options)) return e;
  return NULL;
}

static vx_status get_entry(vx_context *ctx, const char *file, const char *options, vx_program_entry **out) {
  if (!options) options = "";
  vx_program_entry *e = find_entry(ctx, file, options);
  if (e) {
    ctx->stats.programs_from_memory++;
    *out = e;
    return VX_OK;
  }
  /* Every program gets the same base options; -cl-std is left to the device default (1.2). */
  char opts[2048];
  snprintf(opts, sizeof opts, "-cl-mad-enable %s", options);
  cl_program prog = NULL;
  vx_status st = build(ctx, file, opts, &prog);
  if (st != VX_OK) return st;
  e = calloc(1, sizeof *e);
  if (!e) { clReleaseProgram(prog); return VX_ERR_OUT_OF_MEMORY; }
  e->file = strdup(file);
  e->options = strdup(options);
  e->program = prog;
  if (!e->file || !e->options) {
    free(e->file);
    free(e->options);
    free(e);
    clReleaseProgram(prog);
    return VX_ERR_OUT_OF_MEMORY;
  }
  e->next = ctx->programs;
  ctx->programs = e;
  *out = e;
  return VX_OK;
}

vx_status vx_program_get(vx_context *ctx, const char *file, const char *options, cl_program *out) {
  vx_program_entry *e;
  vx_status st = get_entry(ctx, file, options, &e);
  if (st == VX_OK) *out = e->program;
  return st;
}

vx_status vx_kernel_get(vx_context *ctx, const char *file, const char *options, const char *name, cl_kernel *out) {
  vx_program_entry *e;
  vx_status st = get_entry(ctx, file, options, &e);
  if (st != VX_OK) return st;
  for (int i = 0; i < e->nkernels; i++)
    if (!strcmp(e->kernels[i].name, name)) { *out = e->kernels[i].kernel; return VX_OK; }
  if (e->nkernels == VX_MAX_KERNELS)
    return vx_fail(ctx, VX_ERR_UNSUPPORTED, "too many kernels used from %s.cl", file);
  cl_int err;
  cl_kernel k = clCreateKernel(e->program, name, &err);
  if (err != CL_SUCCESS) {
    char what[256];
    snprintf(what, sizeof what, "creating kernel %s from %s.cl", name, file);
    return vx_cl_fail(ctx, err, what);
  }
  snprintf(e->kernels[e->nkernels].name, sizeof e->kernels[0].name, "%s", name);
  e->kernels[e->nkernels++].kernel = k;
  *out = k;
  return VX_OK;
}

void vx_programs_release(vx_context *ctx) {
  vx_program_entry *e = ctx->programs;
  while (e) {
    vx_program_entry *n = e->next;
    for (int i = 0; i < e->nkernels; i++) clReleaseKernel(e->kernels[i].kernel);
    clReleaseProgram(e->program);
    free(e->file);
    free(e->options);
    free(e);
    e = n;
  }
  ctx->programs = NULL;
}

vx_status vx_context_build_kernel_file(vx_context *ctx, const char *file, const char *options) {
  /* Public entry: NULLs must return a status, not crash in strcmp. */
  if (!ctx) return VX_ERR_INVALID_ARGUMENT;
  if (!file) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "vx_context_build_kernel_file: file is NULL");
  cl_program p;
  return vx_program_get(ctx, file, options ? options : "", &p);
}
