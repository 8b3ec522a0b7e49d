/* Runtime tests: device requests, context creation, the two-level program cache (misses, hits,
 * corrupt entries, disabling), kernel build failures, tensors and status strings, and the
 * cold/warm build times the disk cache exists for.
 *
 * Usage: test_runtime [--quick]
 *   --quick  for Oclgrind: skips building every kernel file cold and warm (sections 5 and 8)
 *            and the contexts in threads (Oclgrind itself is not safe for that: it corrupts
 *            results and its heap), and CLBlast's GEMM (see test_tensors).
 * The device is the default one, or $VOXCL_DEVICE when set when the program starts. Every
 * context uses a temporary cache directory (or "off"), never the user's cache. Exits 77 (after
 * the checks that need no device) when there is no OpenCL device. */
#define _DEFAULT_SOURCE /* mkdtemp, setenv, nftw */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/runtime.h" /* vx_hash64 (to forge a cache entry), vx_gemm */
#include "tensor.h"          /* a tensor's buffer and offset, for vx_gemm */
#include "voxcl.h"

static int g_pass, g_fail;
static const char *g_section = "";
static char *g_device; /* the device request under test: $VOXCL_DEVICE at start, or NULL */
static int g_quick;    /* --quick: the subset that runs under Oclgrind */

static void check_(int ok, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void check_(int ok, int line, const char *fmt, ...) {
  if (ok) {
    g_pass++;
    return;
  }
  g_fail++;
  printf("FAIL [%s] test_runtime.c:%d: ", g_section, line);
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  fflush(stdout);
}
#define CHECK(cond, ...) check_((cond) != 0, __LINE__, __VA_ARGS__)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
/* Runs one section and notes its wall time in the summary line. */
static char g_times[1024];
#define SECTION(call)                                                                                  \
  do {                                                                                                 \
    double t0_ = now_s();                                                                              \
    call;                                                                                              \
    size_t l_ = strlen(g_times);                                                                       \
    snprintf(g_times + l_, sizeof g_times - l_, " %s %.1f", g_section, now_s() - t0_);                 \
  } while (0)

static int contains(const char *hay, const char *needle) { return hay && needle && strstr(hay, needle) != NULL; }

/* ---------------------------------------------------------------- file helpers */
static char g_tmpdirs[16][256];
static int g_ntmpdirs;

static const char *make_tmpdir(void) {
  if (g_ntmpdirs == 16) return NULL;
  char *d = g_tmpdirs[g_ntmpdirs];
  const char *base = getenv("TMPDIR");
  snprintf(d, sizeof g_tmpdirs[0], "%s/voxcl_rt_XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(d)) {
    perror("mkdtemp");
    return NULL;
  }
  g_ntmpdirs++;
  return d;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}
static void remove_tmpdirs(void) {
  for (int i = 0; i < g_ntmpdirs; i++) nftw(g_tmpdirs[i], remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Files in dir (not recursive) whose name ends with suffix and contains infix (NULL: any);
 * the path of the first goes to first. */
static int count_files(const char *dir, const char *suffix, const char *infix, char *first, size_t firstlen) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    size_t l = strlen(e->d_name), sl = suffix ? strlen(suffix) : 0;
    if (suffix && (l < sl || strcmp(e->d_name + l - sl, suffix))) continue;
    if (infix && !strstr(e->d_name, infix)) continue;
    if (first && n == 0) snprintf(first, firstlen, "%s/%s", dir, e->d_name);
    n++;
  }
  closedir(d);
  return n;
}
static int count_bins(const char *dir) { return count_files(dir, ".bin", NULL, NULL, 0); }
static int count_tmps(const char *dir) { return count_files(dir, NULL, ".tmp.", NULL, 0); }

static int g_tree_count;
static int count_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)path, (void)sb, (void)flag;
  if (ftw->level > 0) g_tree_count++;
  return 0;
}
/* Every file and folder below dir, at any depth. */
static int count_tree(const char *dir) {
  g_tree_count = 0;
  nftw(dir, count_entry, 16, FTW_PHYS);
  return g_tree_count;
}

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static unsigned char *read_all(const char *path, long *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  long n = file_size(path);
  unsigned char *b = n > 0 ? malloc((size_t)n) : NULL;
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  *len = n;
  return b;
}

static int write_all(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int ok = fwrite(data, 1, len, f) == len;
  return (fclose(f) == 0 && ok) ? 0 : -1;
}

static uint32_t g_lcg = 12345u;
static unsigned char rand_byte(void) {
  g_lcg = g_lcg * 1664525u + 1013904223u;
  return (unsigned char)(g_lcg >> 24);
}

/* ---------------------------------------------------------------- context helpers */
static vx_context *make_ctx(const char *cache_dir) {
  vx_context_options o = {0};
  o.device = g_device;
  o.cache_dir = cache_dir;
  vx_context *ctx = NULL;
  char err[4096] = "";
  vx_status st = vx_context_create(&o, &ctx, err, sizeof err);
  CHECK(st == VX_OK && ctx, "vx_context_create (cache %s): %s: %s", cache_dir ? cache_dir : "(default)",
        vx_status_string(st), err);
  return st == VX_OK ? ctx : NULL;
}

static vx_context_stats stats_of(const vx_context *ctx) {
  vx_context_stats s;
  memset(&s, 0, sizeof s);
  vx_context_get_stats(ctx, &s);
  return s;
}

/* Fills a small tensor through the eltwise kernel and reads it back; 1 when it all worked. */
static int small_op_works(vx_context *ctx, float value) {
  int shape[5] = {1, 2, 3, 4, 5};
  vx_tensor *t = NULL;
  if (vx_tensor_create(ctx, shape, &t) != VX_OK) return 0;
  float host[120];
  vx_status st = vx_tensor_fill(t, value);
  if (st == VX_OK) st = vx_tensor_download(t, host);
  vx_tensor_destroy(t);
  if (st != VX_OK) return 0;
  for (int i = 0; i < 120; i++)
    if (host[i] != value) return 0;
  return 1;
}

/* C = A B through CLBlast on tensor views at odd offsets: A [4, 3], B [3, 5], C [4, 5]. */
static int small_gemm_works(vx_context *ctx) {
  int shape[5] = {1, 1, 1, 1, 64};
  vx_tensor *buf = NULL, *a = NULL, *b = NULL, *c = NULL;
  int sa[5] = {1, 1, 1, 4, 3}, sb[5] = {1, 1, 1, 3, 5}, sc[5] = {1, 1, 1, 4, 5};
  float ha[12], hb[15], hc[20];
  for (int i = 0; i < 12; i++) ha[i] = (float)(i % 5) - 1.5f;
  for (int i = 0; i < 15; i++) hb[i] = 0.25f * (float)(i % 7) - 0.5f;
  vx_status st = vx_tensor_create(ctx, shape, &buf);
  if (st == VX_OK) st = vx_tensor_fill(buf, NAN);
  if (st == VX_OK) st = vx_tensor_view(buf, 1, sa, &a);
  if (st == VX_OK) st = vx_tensor_view(buf, 17, sb, &b);
  if (st == VX_OK) st = vx_tensor_view(buf, 37, sc, &c);
  if (st == VX_OK) st = vx_tensor_upload(a, ha);
  if (st == VX_OK) st = vx_tensor_upload(b, hb);
  if (st == VX_OK)
    st = vx_gemm(ctx, 0, 0, 4, 5, 3, 1.0f, a->buf, a->offset, 3, b->buf, b->offset, 5, 0.0f, c->buf, c->offset, 5);
  if (st == VX_OK) st = vx_tensor_download(c, hc);
  int ok = st == VX_OK;
  for (int i = 0; i < 4 && ok; i++)
    for (int j = 0; j < 5 && ok; j++) {
      double want = 0;
      for (int k = 0; k < 3; k++) want += (double)ha[i * 3 + k] * hb[k * 5 + j];
      ok = fabs(hc[i * 5 + j] - want) <= 1e-5 + 1e-5 * fabs(want);
    }
  vx_tensor_destroy(a);
  vx_tensor_destroy(b);
  vx_tensor_destroy(c);
  vx_tensor_destroy(buf);
  return ok;
}

/* ---------------------------------------------------------------- 1. device requests */
static void test_device_resolve(void) {
  g_section = "device_resolve";
  vx_device_info devs[3];
  memset(devs, 0, sizeof devs);
  devs[0].platform = 0, devs[0].device = 0, devs[0].is_cpu = 1;
  snprintf(devs[0].name, sizeof devs[0].name, "pthread-znver4 Test CPU");
  snprintf(devs[0].platform_name, sizeof devs[0].platform_name, "Portable Computing Language");
  devs[1].platform = 1, devs[1].device = 0, devs[1].is_gpu = 1;
  snprintf(devs[1].name, sizeof devs[1].name, "NVIDIA GeForce RTX 4090");
  snprintf(devs[1].platform_name, sizeof devs[1].platform_name, "NVIDIA CUDA");
  devs[2].platform = 1, devs[2].device = 1, devs[2].is_gpu = 1;
  snprintf(devs[2].name, sizeof devs[2].name, "NVIDIA RTX A6000");
  snprintf(devs[2].platform_name, sizeof devs[2].platform_name, "NVIDIA CUDA");

  struct { const char *req; int want; } ok[] = {
      {NULL, 1},  {"", 1},    {"gpu", 1},   {"cpu", 0},     {"any", 1},         {"1:0", 1},
      {"1:1", 2}, {"0:0", 0}, {"a6000", 2}, {"GeForce", 1}, {"geforce rtx", 1}, {"ZNVER4", 0},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    int idx = -7;
    char err[1024] = "";
    vx_status st = vx_device_resolve(devs, 3, ok[i].req, &idx, err, sizeof err);
    CHECK(st == VX_OK && idx == ok[i].want, "request '%s': status %s index %d, expected index %d (%s)",
          ok[i].req ? ok[i].req : "(null)", vx_status_string(st), idx, ok[i].want, err);
  }

  /* Failures: the message lists every device of the list it was given. */
  struct { const vx_device_info *list; int n; const char *req; } bad[] = {
      {devs, 1, "gpu"}, {devs, 3, "7:7"}, {devs, 3, "nonexistent"}, {devs, 3, "1:0x"},
      {devs, 3, "1:"},  {devs, 3, ":0"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int idx = 5;
    char err[2048] = "";
    vx_status st = vx_device_resolve(bad[i].list, bad[i].n, bad[i].req, &idx, err, sizeof err);
    CHECK(st == VX_ERR_NO_DEVICE && idx < 0, "request '%s' on %d devices: status %s index %d, expected no device",
          bad[i].req, bad[i].n, vx_status_string(st), idx);
    int lists = contains(err, bad[i].req);
    for (int d = 0; d < bad[i].n; d++) lists = lists && contains(err, bad[i].list[d].name);
    if (bad[i].n == 1) lists = lists && !contains(err, devs[1].name) && contains(err, "0:0");
    CHECK(lists, "request '%s': the message should name it and list the %d devices: %s", bad[i].req, bad[i].n, err);
  }

  /* An empty list: even the default fails, with a hint; a tiny or NULL errbuf is safe. */
  int idx = 3;
  char err[512] = "";
  vx_status st = vx_device_resolve(devs, 0, NULL, &idx, err, sizeof err);
  CHECK(st == VX_ERR_NO_DEVICE && idx < 0 && contains(err, "no OpenCL device"), "empty list: %s, %s",
        vx_status_string(st), err);
  char tiny[8];
  memset(tiny, 'x', sizeof tiny);
  st = vx_device_resolve(devs, 3, "nonexistent", &idx, tiny, sizeof tiny);
  CHECK(st == VX_ERR_NO_DEVICE && memchr(tiny, 0, sizeof tiny), "a small errbuf must be NUL-terminated");
  st = vx_device_resolve(devs, 3, "nonexistent", &idx, NULL, 0);
  CHECK(st == VX_ERR_NO_DEVICE, "NULL errbuf: %s", vx_status_string(st));
}

/* ---------------------------------------------------------------- 2. context creation */
static void test_context_create(void) {
  g_section = "context_create";
  vx_device_info *devs = NULL;
  int n = 0;
  char err[4096] = "";
  vx_status st = vx_devices_list(&devs, &n, err, sizeof err);
  CHECK(st == VX_OK && n > 0, "vx_devices_list: %s, %d devices: %s", vx_status_string(st), n, err);
  if (st != VX_OK || n == 0) {
    vx_free(devs);
    return;
  }

  vx_context_options o = {0};
  o.device = "no-such-device";
  o.cache_dir = "off";
  vx_context *ctx = (vx_context *)&o; /* must be reset to NULL */
  st = vx_context_create(&o, &ctx, err, sizeof err);
  int lists = contains(err, "no-such-device");
  for (int i = 0; i < n; i++) lists = lists && contains(err, devs[i].name);
  CHECK(st == VX_ERR_NO_DEVICE && ctx == NULL, "device 'no-such-device': status %s, out %p", vx_status_string(st),
        (void *)ctx);
  CHECK(lists, "the message should name the request and list the devices: %s", err);

  /* $VOXCL_DEVICE is used when opts.device is NULL, and opts.device wins over it. */
  setenv("VOXCL_DEVICE", "no-such-device-from-env", 1);
  o.device = NULL;
  err[0] = 0;
  st = vx_context_create(&o, &ctx, err, sizeof err);
  CHECK(st == VX_ERR_NO_DEVICE && !ctx && contains(err, "no-such-device-from-env"),
        "VOXCL_DEVICE=no-such-device-from-env: status %s: %s", vx_status_string(st), err);
  if (ctx) vx_context_destroy(ctx);

  const vx_device_info *last = &devs[n - 1];
  char req[32];
  snprintf(req, sizeof req, "%d:%d", last->platform, last->device);
  o.device = req;
  st = vx_context_create(&o, &ctx, err, sizeof err);
  CHECK(st == VX_OK, "opts.device '%s' with a bad VOXCL_DEVICE: %s: %s", req, vx_status_string(st), err);
  if (ctx) vx_context_destroy(ctx);

  setenv("VOXCL_DEVICE", req, 1);
  o.device = NULL;
  st = vx_context_create(&o, &ctx, err, sizeof err);
  const vx_device_info *got = ctx ? vx_context_device(ctx) : NULL;
  CHECK(st == VX_OK && got && got->platform == last->platform && got->device == last->device &&
            !strcmp(got->name, last->name),
        "VOXCL_DEVICE=%s: %s, got %s", req, vx_status_string(st), got ? got->name : "nothing");
  CHECK(ctx && vx_context_last_error(ctx) && vx_context_last_error(ctx)[0] == 0,
        "a fresh context has an empty last error");
  if (ctx) vx_context_destroy(ctx);
  unsetenv("VOXCL_DEVICE");

  st = vx_context_create(&o, NULL, err, sizeof err);
  CHECK(st == VX_ERR_INVALID_ARGUMENT, "NULL out: %s", vx_status_string(st));
  vx_context_destroy(NULL); /* must be a no-op */
  vx_free(devs);
}

/* ---------------------------------------------------------------- contexts in threads */
/* Contexts in several threads at once, the first OpenCL and CLBlast use of the process,
 * sharing one cache dir: each must find the device (driver initialisation races), CLBlast's
 * first use must not race, and the entries written at the same moment must not mix. */
typedef struct {
  const char *dir;
  vx_status st;
  char err[512];
} thread_job;

static void *thread_main(void *arg) {
  thread_job *j = arg;
  vx_context_options o = {0};
  o.device = g_device;
  o.cache_dir = j->dir;
  vx_context *ctx = NULL;
  j->st = vx_context_create(&o, &ctx, j->err, sizeof j->err);
  if (j->st != VX_OK) return NULL;
  const char *const *names = vx_kernel_file_names();
  for (int i = 0; names[i] && j->st == VX_OK; i++) j->st = vx_context_build_kernel_file(ctx, names[i], "");
  if (j->st == VX_OK && !small_op_works(ctx, 6.0f)) j->st = VX_ERR_OPENCL;
  if (j->st == VX_OK && !small_gemm_works(ctx)) j->st = VX_ERR_GEMM;
  if (j->st != VX_OK) snprintf(j->err, sizeof j->err, "%s", vx_context_last_error(ctx));
  vx_context_destroy(ctx);
  return NULL;
}

static void test_concurrent_contexts(void) {
  g_section = "threads";
  const char *dir = make_tmpdir();
  if (!dir) return;
  enum { T = 4 };
  thread_job jobs[T];
  pthread_t th[T];
  int started[T] = {0};
  for (int i = 0; i < T; i++) {
    memset(&jobs[i], 0, sizeof jobs[i]);
    jobs[i].dir = dir;
    started[i] = pthread_create(&th[i], NULL, thread_main, &jobs[i]) == 0;
  }
  for (int i = 0; i < T; i++) {
    if (started[i]) pthread_join(th[i], NULL);
    CHECK(started[i] && jobs[i].st == VX_OK, "thread %d: %s: %s", i, vx_status_string(jobs[i].st), jobs[i].err);
  }
  /* What they wrote is valid. */
  vx_context *ctx = make_ctx(dir);
  if (!ctx) return;
  const char *const *names = vx_kernel_file_names();
  int n = 0;
  for (int i = 0; names[i]; i++) vx_context_build_kernel_file(ctx, names[i], ""), n++;
  vx_context_stats s = stats_of(ctx);
  CHECK(s.programs_from_disk == n && s.disk_entries_rejected == 0,
        "after concurrent writes: %d of %d from disk, %d rejected", s.programs_from_disk, n, s.disk_entries_rejected);
  CHECK(count_bins(dir) == n && count_tmps(dir) == 0, "after concurrent writes: %d entries, %d temp files",
        count_bins(dir), count_tmps(dir));
  vx_context_destroy(ctx);
}

/* ---------------------------------------------------------------- 3. program cache */
static void test_cache_hits(void) {
  g_section = "cache";
  const char *dir = make_tmpdir();
  if (!dir) return;
  vx_context *ctx = make_ctx(dir);
  if (!ctx) return;
  CHECK(vx_context_cache_dir(ctx) && !strcmp(vx_context_cache_dir(ctx), dir), "cache dir is %s, expected %s",
        vx_context_cache_dir(ctx) ? vx_context_cache_dir(ctx) : "(null)", dir);

  /* (a) miss */
  vx_status st = vx_context_build_kernel_file(ctx, "eltwise", "-DACT=2");
  vx_context_stats s = stats_of(ctx);
  CHECK(st == VX_OK, "build eltwise -DACT=2: %s: %s", vx_status_string(st), vx_context_last_error(ctx));
  CHECK(s.programs_built == 1 && s.programs_from_disk == 0 && s.programs_from_memory == 0,
        "miss: built %d, disk %d, memory %d; expected 1, 0, 0", s.programs_built, s.programs_from_disk,
        s.programs_from_memory);
  CHECK(count_bins(dir) == 1, "miss: %d .bin files in the cache dir, expected 1", count_bins(dir));

  /* (b) memory hit */
  st = vx_context_build_kernel_file(ctx, "eltwise", "-DACT=2");
  s = stats_of(ctx);
  CHECK(st == VX_OK && s.programs_from_memory == 1 && s.programs_built == 1 && s.programs_from_disk == 0,
        "memory hit: %s, built %d, disk %d, memory %d", vx_status_string(st), s.programs_built,
        s.programs_from_disk, s.programs_from_memory);
  vx_context_destroy(ctx);

  /* (c) disk hit in a new context */
  ctx = make_ctx(dir);
  if (!ctx) return;
  st = vx_context_build_kernel_file(ctx, "eltwise", "-DACT=2");
  s = stats_of(ctx);
  CHECK(st == VX_OK && s.programs_from_disk == 1 && s.programs_built == 0 && s.disk_entries_rejected == 0,
        "disk hit: %s, built %d, disk %d, rejected %d", vx_status_string(st), s.programs_built,
        s.programs_from_disk, s.disk_entries_rejected);
  CHECK(count_bins(dir) == 1, "disk hit wrote a file: %d .bin files", count_bins(dir));

  /* (d) other options: a miss with its own entry */
  st = vx_context_build_kernel_file(ctx, "eltwise", "-DACT=1");
  s = stats_of(ctx);
  CHECK(st == VX_OK && s.programs_built == 1 && s.programs_from_disk == 1,
        "other options: %s, built %d, disk %d; expected a build", vx_status_string(st), s.programs_built,
        s.programs_from_disk);
  CHECK(count_bins(dir) == 2, "other options: %d .bin files, expected 2", count_bins(dir));
  /* A program that came from disk runs. */
  CHECK(small_op_works(ctx, 2.5f), "an op fails after disk hits: %s", vx_context_last_error(ctx));
  vx_context_destroy(ctx);
  CHECK(count_tmps(dir) == 0, "%d *.tmp.* files left in %s", count_tmps(dir), dir);
}

/* Corruptions of a cache entry; each must be rejected, rebuilt and rewritten. */
static void corrupt_middle(const char *path) {
  long n = file_size(path);
  FILE *f = fopen(path, "r+b");
  if (!f || n < 64) {
    if (f) fclose(f);
    return;
  }
  unsigned char b[16];
  fseek(f, n / 2, SEEK_SET);
  size_t got = fread(b, 1, sizeof b, f);
  for (size_t i = 0; i < got; i++) b[i] ^= 0xFF;
  fseek(f, n / 2, SEEK_SET);
  fwrite(b, 1, got, f);
  fclose(f);
}
static void corrupt_truncate(const char *path) {
  if (truncate(path, file_size(path) / 2) != 0) perror("truncate");
}
static void corrupt_empty(const char *path) {
  if (truncate(path, 0) != 0) perror("truncate");
}
static void corrupt_garbage(const char *path) {
  long n = file_size(path);
  if (n <= 0) return;
  unsigned char *b = malloc((size_t)n);
  if (!b) return;
  for (long i = 0; i < n; i++) b[i] = rand_byte();
  write_all(path, b, (size_t)n);
  free(b);
}
static void corrupt_trailing(const char *path) {
  FILE *f = fopen(path, "ab");
  if (!f) return;
  fputs("trailing", f);
  fclose(f);
}
static void corrupt_version(const char *path) {
  FILE *f = fopen(path, "r+b");
  if (!f) return;
  uint32_t v = 999;
  fseek(f, 4, SEEK_SET);
  fwrite(&v, 4, 1, f);
  fclose(f);
}
/* A well-formed entry (right key, right checksum) whose binary the driver must refuse. */
static void corrupt_binary_valid_checksum(const char *path) {
  long n = 0;
  unsigned char *b = read_all(path, &n);
  if (!b) return;
  uint32_t klen = 0;
  memcpy(&klen, b + 8, 4);
  size_t hdr = 12 + (size_t)klen + 16;
  if ((size_t)n > hdr) {
    for (size_t i = hdr; i < (size_t)n; i++) b[i] = rand_byte();
    uint64_t sum = vx_hash64(b + hdr, (size_t)n - hdr, 0);
    memcpy(b + 12 + klen + 8, &sum, 8);
    write_all(path, b, (size_t)n);
  }
  free(b);
}

static void test_cache_corrupt(void) {
  g_section = "cache_corrupt";
  const char *dir = make_tmpdir();
  if (!dir) return;
  /* The entry of eltwise with no options: the one vx_tensor_fill uses. */
  vx_context *ctx = make_ctx(dir);
  if (!ctx) return;
  vx_status st = vx_context_build_kernel_file(ctx, "eltwise", "");
  CHECK(st == VX_OK, "build eltwise: %s", vx_context_last_error(ctx));
  vx_context_destroy(ctx);
  char path[1024] = "";
  CHECK(count_files(dir, ".bin", NULL, path, sizeof path) == 1, "expected one entry in %s", dir);
  long good_size = file_size(path);

  struct { const char *what; void (*corrupt)(const char *); } cases[] = {
      {"bytes overwritten in the middle", corrupt_middle},
      {"truncated to half", corrupt_truncate},
      {"garbage of the right length", corrupt_garbage},
      {"empty", corrupt_empty},
      {"trailing bytes", corrupt_trailing},
      {"another format version", corrupt_version},
      {"a binary the driver refuses (valid checksum)", corrupt_binary_valid_checksum},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cases[i].corrupt(path);
    ctx = make_ctx(dir);
    if (!ctx) return;
    int works = small_op_works(ctx, (float)i + 0.25f);
    vx_context_stats s = stats_of(ctx);
    CHECK(works, "%s: an op fails: %s", cases[i].what, vx_context_last_error(ctx));
    CHECK(s.disk_entries_rejected >= 1 && s.programs_built == 1 && s.programs_from_disk == 0,
          "%s: rejected %d, built %d, from disk %d; expected >= 1, 1, 0", cases[i].what, s.disk_entries_rejected,
          s.programs_built, s.programs_from_disk);
    vx_context_destroy(ctx);
    CHECK(count_bins(dir) == 1 && file_size(path) == good_size && count_tmps(dir) == 0,
          "%s: after the rebuild: %d entries, size %ld (was %ld), %d temp files", cases[i].what, count_bins(dir),
          file_size(path), good_size, count_tmps(dir));

    /* The rewritten entry is valid again. */
    ctx = make_ctx(dir);
    if (!ctx) return;
    st = vx_context_build_kernel_file(ctx, "eltwise", "");
    s = stats_of(ctx);
    CHECK(st == VX_OK && s.programs_from_disk == 1 && s.programs_built == 0 && s.disk_entries_rejected == 0,
          "%s: next context: %s, disk %d, built %d, rejected %d; expected a disk hit", cases[i].what,
          vx_status_string(st), s.programs_from_disk, s.programs_built, s.disk_entries_rejected);
    vx_context_destroy(ctx);
  }

  /* A cache folder that cannot be created (below a regular file) falls back to building. */
  char blocked[1200];
  snprintf(blocked, sizeof blocked, "%s/a-file", dir);
  write_all(blocked, "x", 1);
  snprintf(blocked, sizeof blocked, "%s/a-file/cache", dir);
  ctx = make_ctx(blocked);
  if (!ctx) return;
  int works = small_op_works(ctx, 1.0f);
  vx_context_stats s = stats_of(ctx);
  CHECK(works && s.programs_built == 1, "an unusable cache dir must not fail a build: %s",
        vx_context_last_error(ctx));
  vx_context_destroy(ctx);
}

static void test_cache_off(void) {
  g_section = "cache_off";
  const char *dir = make_tmpdir();
  if (!dir) return;
  /* Were "off" ignored, the default location would be $XDG_CACHE_HOME/voxcl, inside dir. */
  char *old_xdg = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
  setenv("XDG_CACHE_HOME", dir, 1);

  vx_context *ctx = make_ctx("off");
  if (ctx) {
    CHECK(vx_context_cache_dir(ctx) == NULL, "cache_dir \"off\": vx_context_cache_dir is %s",
          vx_context_cache_dir(ctx) ? vx_context_cache_dir(ctx) : "(null)");
    vx_status st = vx_context_build_kernel_file(ctx, "eltwise", "-DACT=1");
    vx_context_stats s = stats_of(ctx);
    CHECK(st == VX_OK && s.programs_built == 1, "cache off: build %s", vx_status_string(st));
    CHECK(small_op_works(ctx, 4.0f), "cache off: op fails: %s", vx_context_last_error(ctx));
    vx_context_destroy(ctx);
    CHECK(count_tree(dir) == 0, "cache_dir \"off\" wrote %d files below %s", count_tree(dir), dir);
  }

  setenv("VOXCL_CACHE_DIR", "off", 1);
  ctx = make_ctx(NULL);
  if (ctx) {
    CHECK(vx_context_cache_dir(ctx) == NULL, "VOXCL_CACHE_DIR=off: vx_context_cache_dir is %s",
          vx_context_cache_dir(ctx) ? vx_context_cache_dir(ctx) : "(null)");
    vx_status st = vx_context_build_kernel_file(ctx, "eltwise", "-DACT=1");
    CHECK(st == VX_OK && small_op_works(ctx, 5.0f), "VOXCL_CACHE_DIR=off: %s", vx_context_last_error(ctx));
    vx_context_destroy(ctx);
    CHECK(count_tree(dir) == 0, "VOXCL_CACHE_DIR=off wrote %d files below %s", count_tree(dir), dir);
  }

  /* Where the cache goes otherwise: $VOXCL_CACHE_DIR, then $XDG_CACHE_HOME/voxcl. */
  setenv("VOXCL_CACHE_DIR", dir, 1);
  ctx = make_ctx(NULL);
  if (ctx) {
    CHECK(vx_context_cache_dir(ctx) && !strcmp(vx_context_cache_dir(ctx), dir), "VOXCL_CACHE_DIR=%s: dir %s", dir,
          vx_context_cache_dir(ctx) ? vx_context_cache_dir(ctx) : "(null)");
    vx_context_destroy(ctx);
  }
  unsetenv("VOXCL_CACHE_DIR");
  ctx = make_ctx(NULL);
  if (ctx) {
    char want[1200];
    snprintf(want, sizeof want, "%s/voxcl", dir);
    CHECK(vx_context_cache_dir(ctx) && !strcmp(vx_context_cache_dir(ctx), want), "XDG_CACHE_HOME=%s: dir %s", dir,
          vx_context_cache_dir(ctx) ? vx_context_cache_dir(ctx) : "(null)");
    vx_context_destroy(ctx);
  }
  if (old_xdg) setenv("XDG_CACHE_HOME", old_xdg, 1);
  else unsetenv("XDG_CACHE_HOME");
  free(old_xdg);
}

/* ---------------------------------------------------------------- 4. build failures */
static void test_build_failure(vx_context *ctx) {
  g_section = "build_failure";
  const char *bad = "-DACT=)";
  vx_status st = vx_context_build_kernel_file(ctx, "eltwise", bad);
  const char *msg = vx_context_last_error(ctx);
  CHECK(st == VX_ERR_BUILD, "eltwise with '%s': %s, expected VX_ERR_BUILD", bad, vx_status_string(st));
  CHECK(contains(msg, bad) && contains(msg, "log") && contains(msg, "eltwise"),
        "the message should hold the file, the options and the build log: %s", msg);
  /* A failure is not cached: asking again fails again. */
  st = vx_context_build_kernel_file(ctx, "eltwise", bad);
  CHECK(st == VX_ERR_BUILD, "second build with '%s': %s", bad, vx_status_string(st));

  st = vx_context_build_kernel_file(ctx, "no_such_kernel_file", "");
  msg = vx_context_last_error(ctx);
  CHECK(st != VX_OK && contains(msg, "no_such_kernel_file"), "unknown kernel file: %s: %s", vx_status_string(st),
        msg);
  st = vx_context_build_kernel_file(ctx, NULL, "");
  CHECK(st == VX_ERR_INVALID_ARGUMENT, "NULL kernel file: %s", vx_status_string(st));
  st = vx_context_build_kernel_file(NULL, "eltwise", "");
  CHECK(st == VX_ERR_INVALID_ARGUMENT, "NULL context: %s", vx_status_string(st));
  CHECK(small_op_works(ctx, 7.0f), "the context fails after a build failure: %s", vx_context_last_error(ctx));
}

/* ---------------------------------------------------------------- 6. tensors */
static void test_tensors(vx_context *ctx) {
  g_section = "tensors";
  int shape[5] = {2, 3, 4, 5, 6};
  enum { N = 2 * 3 * 4 * 5 * 6 };
  static float host[N], back[N];
  for (int i = 0; i < N; i++) host[i] = (float)i * 0.5f - 17.0f;
  uint64_t in_use0 = stats_of(ctx).device_bytes_in_use;

  vx_tensor *t = NULL;
  vx_status st = vx_tensor_create(ctx, shape, &t);
  CHECK(st == VX_OK && t, "create [2,3,4,5,6]: %s", vx_context_last_error(ctx));
  if (!t) return;
  CHECK(vx_tensor_numel(t) == N && !memcmp(vx_tensor_shape(t), shape, sizeof shape), "numel %zu, expected %d",
        vx_tensor_numel(t), N);
  CHECK(stats_of(ctx).device_bytes_in_use == in_use0 + N * sizeof(float), "device bytes in use %llu, expected %llu",
        (unsigned long long)stats_of(ctx).device_bytes_in_use, (unsigned long long)(in_use0 + N * sizeof(float)));
  st = vx_tensor_upload(t, host);
  if (st == VX_OK) st = vx_tensor_download(t, back);
  CHECK(st == VX_OK && !memcmp(host, back, sizeof host), "upload/download round trip: %s",
        vx_context_last_error(ctx));

  /* Views: element offsets into the base, writes go to the base. */
  int vshape[5] = {1, 1, 2, 3, 5};
  vx_tensor *v = NULL;
  st = vx_tensor_view(t, 37, vshape, &v);
  CHECK(st == VX_OK && v && vx_tensor_numel(v) == 30, "view of 30 at 37: %s", vx_context_last_error(ctx));
  if (v) {
    float vb[30];
    st = vx_tensor_download(v, vb);
    int same = st == VX_OK;
    for (int i = 0; i < 30 && same; i++) same = vb[i] == host[37 + i];
    CHECK(same, "view download does not start at element 37");
    st = vx_tensor_fill(v, -2.0f);
    if (st == VX_OK) st = vx_tensor_download(t, back);
    int ok = st == VX_OK;
    for (int i = 0; i < N && ok; i++) ok = back[i] == (i >= 37 && i < 67 ? -2.0f : host[i]);
    CHECK(ok, "fill of a view must change exactly elements 37..66 of the base: %s", vx_context_last_error(ctx));
    for (int i = 0; i < 30; i++) vb[i] = 1000.0f + (float)i;
    st = vx_tensor_upload(v, vb);
    if (st == VX_OK) st = vx_tensor_download(t, back);
    ok = st == VX_OK;
    for (int i = 0; i < N && ok; i++) ok = back[i] == (i >= 37 && i < 67 ? 1000.0f + (float)(i - 37) : host[i]);
    CHECK(ok, "upload into a view must change exactly elements 37..66 of the base");
    /* A view of a view adds the offsets. */
    int wshape[5] = {1, 1, 1, 1, 4};
    vx_tensor *w = NULL;
    st = vx_tensor_view(v, 10, wshape, &w);
    float wb[4] = {0};
    if (st == VX_OK) st = vx_tensor_download(w, wb);
    CHECK(st == VX_OK && wb[0] == 1010.0f && wb[3] == 1013.0f, "view of a view: %s, got %g..%g",
          vx_status_string(st), wb[0], wb[3]);
    vx_tensor_destroy(w);
    vx_tensor_destroy(v);
    CHECK(stats_of(ctx).device_bytes_in_use == in_use0 + N * sizeof(float), "views must not count device memory");
  }
  int exact[5] = {1, 1, 1, 1, 10};
  st = vx_tensor_view(t, N - 10, exact, &v);
  CHECK(st == VX_OK, "a view ending exactly at the base's end: %s", vx_context_last_error(ctx));
  vx_tensor_destroy(v);
  v = (vx_tensor *)t;
  st = vx_tensor_view(t, N - 9, exact, &v);
  CHECK(st == VX_ERR_SHAPE && v == NULL, "a view one past the end: %s", vx_status_string(st));
  st = vx_tensor_view(t, (size_t)-5, exact, &v);
  CHECK(st == VX_ERR_SHAPE && v == NULL, "a view at offset SIZE_MAX-4 (wraps around): %s", vx_status_string(st));
  if (st == VX_OK) vx_tensor_destroy(v);
  int big[5] = {2, 3, 4, 5, 7};
  st = vx_tensor_view(t, 0, big, &v);
  CHECK(st == VX_ERR_SHAPE, "a view larger than the base: %s", vx_status_string(st));
  int zero[5] = {1, 1, 0, 1, 1};
  st = vx_tensor_view(t, 0, zero, &v);
  CHECK(st == VX_ERR_INVALID_ARGUMENT, "a view with a zero dim: %s", vx_status_string(st));

  /* copy: whole tensors, views with offsets, and mismatched sizes */
  vx_tensor *u = NULL;
  st = vx_tensor_create(ctx, shape, &u);
  if (st == VX_OK) st = vx_tensor_upload(t, host);
  if (st == VX_OK) st = vx_tensor_fill(u, 0.0f);
  if (st == VX_OK) st = vx_tensor_copy(u, t);
  if (st == VX_OK) st = vx_tensor_download(u, back);
  CHECK(st == VX_OK && !memcmp(host, back, sizeof host), "vx_tensor_copy: %s", vx_context_last_error(ctx));
  if (u) {
    vx_tensor *src = NULL, *dst = NULL;
    int s10[5] = {1, 1, 1, 2, 5};
    st = vx_tensor_view(t, 100, s10, &src);
    if (st == VX_OK) st = vx_tensor_view(u, 3, s10, &dst);
    if (st == VX_OK) st = vx_tensor_fill(u, 9.0f);
    if (st == VX_OK) st = vx_tensor_copy(dst, src);
    if (st == VX_OK) st = vx_tensor_download(u, back);
    int ok = st == VX_OK;
    for (int i = 0; i < N && ok; i++) ok = back[i] == (i >= 3 && i < 13 ? host[100 + i - 3] : 9.0f);
    CHECK(ok, "vx_tensor_copy between views: %s", vx_context_last_error(ctx));
    int s11[5] = {1, 1, 1, 1, 11};
    vx_tensor *odd = NULL;
    if (vx_tensor_view(u, 0, s11, &odd) == VX_OK) {
      st = vx_tensor_copy(odd, src);
      CHECK(st == VX_ERR_SHAPE, "copying 10 elements into 11: %s", vx_status_string(st));
    }
    vx_tensor_destroy(odd);
    vx_tensor_destroy(src);
    vx_tensor_destroy(dst);
  }
  vx_tensor_destroy(u);
  vx_tensor_destroy(t);
  CHECK(stats_of(ctx).device_bytes_in_use == in_use0, "device bytes in use %llu after destroying, expected %llu",
        (unsigned long long)stats_of(ctx).device_bytes_in_use, (unsigned long long)in_use0);

  /* Bad shapes */
  int bad_shapes[3][5] = {{1, 1, 0, 4, 4}, {1, -3, 4, 4, 4}, {0, 0, 0, 0, 0}};
  for (int i = 0; i < 3; i++) {
    t = (vx_tensor *)ctx;
    st = vx_tensor_create(ctx, bad_shapes[i], &t);
    CHECK(st == VX_ERR_INVALID_ARGUMENT && t == NULL, "shape %d: %s, expected VX_ERR_INVALID_ARGUMENT", i,
          vx_status_string(st));
  }
  /* prod(shape), or its size in bytes, overflowing size_t must not wrap into a small buffer. */
  int wraps[2][5] = {{65536, 65536, 65536, 65536, 1}, {65536, 65536, 65536, 16384, 1}};
  for (int i = 0; i < 2; i++) {
    t = NULL;
    st = vx_tensor_create(ctx, wraps[i], &t);
    CHECK(st != VX_OK && t == NULL, "shape [%d, %d, %d, %d, %d] (2^%d bytes) was accepted: %s", wraps[i][0],
          wraps[i][1], wraps[i][2], wraps[i][3], wraps[i][4], 66 - 2 * i, vx_status_string(st));
    if (st == VX_OK) vx_tensor_destroy(t);
  }

  /* More than the device holds: a clean error naming the bytes, and the context goes on. */
  int huge[5] = {1024, 1024, 1024, 1024, 1};
  uint64_t in_use1 = stats_of(ctx).device_bytes_in_use;
  t = (vx_tensor *)ctx;
  st = vx_tensor_create(ctx, huge, &t);
  const char *msg = vx_context_last_error(ctx);
  CHECK(st == VX_ERR_OUT_OF_MEMORY && t == NULL, "a 4 TiB tensor: %s, expected VX_ERR_OUT_OF_MEMORY",
        vx_status_string(st));
  CHECK(contains(msg, "4398046511104"), "the message should name the 4398046511104 bytes requested: %s",
        msg ? msg : "");
  CHECK(stats_of(ctx).device_bytes_in_use == in_use1, "a failed allocation changed the bytes in use");
  if (st == VX_OK) vx_tensor_destroy(t);
  CHECK(small_op_works(ctx, 3.0f), "the context fails after an allocation failure: %s", vx_context_last_error(ctx));
  /* Oclgrind --uninitialized flags every store of CLBlast's XgemmDirectTN even with every
   * element initialised (results are right); CLBlast is not ours, so --quick leaves it out. */
  if (!g_quick) CHECK(small_gemm_works(ctx), "vx_gemm on views at offsets: %s", vx_context_last_error(ctx));
  CHECK(vx_context_finish(ctx) == VX_OK, "vx_context_finish: %s", vx_context_last_error(ctx));
}

/* ---------------------------------------------------------------- 7. status strings */
static void test_status_strings(void) {
  g_section = "status_strings";
  const char *seen[VX_ERR_UNSUPPORTED + 1];
  for (int s = VX_OK; s <= VX_ERR_UNSUPPORTED; s++) {
    const char *str = vx_status_string((vx_status)s);
    CHECK(str && *str, "status %d has no string", s);
    seen[s] = str ? str : "";
    for (int j = 0; j < s; j++) CHECK(strcmp(seen[j], seen[s]), "statuses %d and %d share '%s'", j, s, seen[s]);
  }
  const char *unknown = vx_status_string((vx_status)1000);
  CHECK(unknown && *unknown, "an unknown status has no string");
}

/* ---------------------------------------------------------------- 5 + 8. all kernel files, cold and warm */
static void test_all_kernels_cold_warm(void) {
  g_section = "kernel_files";
  const char *const *names = vx_kernel_file_names();
  int n = 0;
  while (names && names[n]) n++;
  CHECK(n >= 1, "no embedded kernel files");
  vx_context *ctx = make_ctx("off");
  if (!ctx || n == 0) return;
  for (int i = 0; i < n; i++) {
    vx_status st = vx_context_build_kernel_file(ctx, names[i], "");
    CHECK(st == VX_OK, "kernels/%s.cl does not build without options: %s", names[i], vx_context_last_error(ctx));
  }
  vx_context_destroy(ctx);

  /* Drivers keep caches of their own (PoCL: ~/.cache/pocl, keyed by source and options); an
   * option no earlier run used keeps the cold builds cold on a second run. */
  g_section = "cold_warm";
  char opts[64];
  snprintf(opts, sizeof opts, "-DVX_TEST_NONCE=%ld%ld", (long)getpid(), (long)time(NULL));
  const char *dir = make_tmpdir();
  if (!dir) return;
  ctx = make_ctx(dir);
  if (!ctx) return;
  for (int i = 0; i < n; i++) {
    vx_status st = vx_context_build_kernel_file(ctx, names[i], opts);
    CHECK(st == VX_OK, "kernels/%s.cl with %s: %s", names[i], opts, vx_context_last_error(ctx));
  }
  vx_context_stats cold = stats_of(ctx);
  vx_context_destroy(ctx);
  CHECK(cold.programs_built == n && count_bins(dir) == n, "cold: built %d, %d entries, expected %d",
        cold.programs_built, count_bins(dir), n);

  ctx = make_ctx(dir);
  if (!ctx) return;
  for (int i = 0; i < n; i++) vx_context_build_kernel_file(ctx, names[i], opts);
  vx_context_stats warm = stats_of(ctx);
  vx_context_destroy(ctx);
  CHECK(warm.programs_from_disk == n && warm.programs_built == 0, "warm: %d from disk, %d built, expected %d, 0",
        warm.programs_from_disk, warm.programs_built, n);
  printf("build seconds for %d kernel files: cold %.3f, warm %.3f (%.1f%%)\n", n, cold.build_seconds,
         warm.build_seconds, cold.build_seconds > 0 ? 100.0 * warm.build_seconds / cold.build_seconds : 0.0);
  CHECK(warm.build_seconds < 0.5 * cold.build_seconds, "warm %.3f s is not under half of cold %.3f s",
        warm.build_seconds, cold.build_seconds);
  CHECK(count_tmps(dir) == 0, "%d *.tmp.* files left in %s", count_tmps(dir), dir);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0); /* keep the lines before a crash */
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) g_quick = 1;
    else {
      fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
      return 2;
    }
  }
  /* The device under test comes from the starting environment; the tests set these themselves. */
  if (getenv("VOXCL_DEVICE") && *getenv("VOXCL_DEVICE")) g_device = strdup(getenv("VOXCL_DEVICE"));
  unsetenv("VOXCL_DEVICE");
  unsetenv("VOXCL_CACHE_DIR");

  SECTION(test_status_strings());
  SECTION(test_device_resolve());
  vx_device_info *devs = NULL;
  int ndevs = 0;
  vx_devices_list(&devs, &ndevs, NULL, 0);
  vx_free(devs);
  if (ndevs == 0) {
    printf("no OpenCL device: the tests that need one are skipped\n%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 77; /* 77: ctest's SKIP_RETURN_CODE */
  }
  if (!g_quick) SECTION(test_concurrent_contexts()); /* first: it checks the drivers' first initialisation */
  SECTION(test_context_create());
  SECTION(test_cache_hits());
  SECTION(test_cache_corrupt());
  SECTION(test_cache_off());
  vx_context *ctx = make_ctx("off");
  if (ctx) {
    printf("device: %s (%s)\n", vx_context_device(ctx)->name, vx_context_device(ctx)->platform_name);
    SECTION(test_build_failure(ctx));
    SECTION(test_tensors(ctx));
    vx_context_destroy(ctx);
  }
  if (!g_quick) SECTION(test_all_kernels_cold_warm());

  /* Every temp dir is clean of half-written entries. */
  g_section = "tmp_files";
  for (int i = 0; i < g_ntmpdirs; i++)
    CHECK(count_tmps(g_tmpdirs[i]) == 0, "%d *.tmp.* files left in %s", count_tmps(g_tmpdirs[i]), g_tmpdirs[i]);
  remove_tmpdirs();
  free(g_device);
  printf("seconds per section:%s\n", g_times);
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
