/* The harness shared by the op-test programs (test_ops, test_ops_norm, test_ops_more,
 * test_ops_research): a tester that counts and reports checks, tolerance and bitwise comparisons,
 * central finite-difference checks against the double references, device tensors from a small
 * arena (optionally views at odd offsets), and refusal checks. Every program's cases call these;
 * the references live beside this file. */
#ifndef VX_OP_HARNESS_H
#define VX_OP_HARNESS_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "voxcl.h"

#define FD_SAMPLES 40 /* elements checked per gradient tensor (always the first and the last) */

/* ---------------------------------------------------------------- small helpers */
/* Zeroed host memory; exits the test program when there is none (a few MB are asked). */
void *xmalloc(size_t bytes);
double now_s(void);
int contains_nocase(const char *hay, const char *needle);
double dot(const double *a, const double *b, size_t n);
/* splitmix64: small, fixed seed, the same sequence everywhere. */
uint64_t rng_next(uint64_t *s);
double rng_uniform(uint64_t *s, double lo, double hi);

/* ---------------------------------------------------------------- the tester */
typedef struct {
  int small, verbose;
  vx_context *ctx;      /* the device under test */
  vx_context *ctx_tiny; /* same device, tiny workspace: forces chunked/slab paths (NULL: skip) */
  char dev[320];        /* "P:D name" */
  const char *op;
  char desc[320]; /* the case: shapes and parameters */
  uint64_t rng;
  int passed, failed;
} tester;

void vrecord(tester *t, int ok, const char *what, const char *fmt, va_list ap);
/* Counts one check; prints it when it failed (or with -v). Returns ok. */
int record(tester *t, int ok, const char *what, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A call that should have worked did not. */
void fail_call(tester *t, vx_context *ctx, const char *what, vx_status st);
/* Compares dev[idx[k]] with ref[k] for k < n (dev[k] with ref[k] when idx is NULL):
 * |dev - ref| <= atol + rtol * |ref|. */
int check_close(tester *t, const char *what, const float *dev, const double *ref, const size_t *idx, size_t n,
                double atol, double rtol);
int check_bitwise(tester *t, const char *what, const float *a, const float *b, size_t n);
/* Up to FD_SAMPLES distinct indices of [0, n), sorted, always with 0 and n - 1. */
size_t pick_indices(tester *t, size_t n, size_t *idx);
typedef double (*loss_fn)(void *state);
/* Checks dev (the device's dL/dparam) against central differences of f (step h) at a sample of
 * elements of param. */
int fd_check(tester *t, const char *what, loss_fn f, void *state, double *param, size_t n, const float *dev,
             double h, double atol, double rtol);
/* Host data: float values for the device, the same values as doubles for the reference. */
float *rand_floats(tester *t, size_t n, double lo, double hi);
double *to_double(const float *f, size_t n);
/* ref[i] = a[i] + b[i] in double: the expected content after an accumulating call. */
double *sum_double(const float *a, const float *b, size_t n);

/* ---------------------------------------------------------------- device tensors */
/* Each case allocates its tensors through a set that frees them all at the end. With 'views' the
 * tensors are views at odd offsets of one arena, so every kernel and GEMM sees a non-zero offset. */
#define MAX_TENSORS 24
#define ARENA_FLOATS ((size_t)1 << 20)
typedef struct {
  tester *t;
  vx_context *ctx;
  vx_tensor *arena;
  size_t used;
  vx_tensor *list[MAX_TENSORS];
  int count;
} tensor_set;

void ts_init(tensor_set *ts, tester *t, vx_context *ctx, int views);
/* A new tensor, uploaded from host when not NULL. NULL (and a recorded failure) on error. */
vx_tensor *ts_new(tensor_set *ts, const int shape[5], const float *host);
void ts_free(tensor_set *ts);
/* Downloads into a new host array (NULL and a recorded failure on error). */
float *fetch(tester *t, vx_context *ctx, const vx_tensor *x);

/* In a case function with a tester *t, a vx_context *ctx and a 'done:' label. */
#define TRY(what, call)                          \
  do {                                           \
    vx_status st_ = (call);                      \
    if (st_ != VX_OK) {                          \
      fail_call(t, ctx, (what), st_);            \
      goto done;                                 \
    }                                            \
  } while (0)
#define NEED(p)            \
  do {                     \
    if (!(p)) goto done;   \
  } while (0)

/* ---------------------------------------------------------------- refusals */
/* A bad call must return 'expect' with a message naming 'keyword' and leave 'out' (pre-filled with
 * SENTINEL) as it was: nothing was launched that wrote it. */
#define SENTINEL 1234.5f
void check_refused(tester *t, vx_context *ctx, const char *what, vx_status got, vx_status expect,
                   const char *keyword, vx_tensor *out);
/* Sets the context's last error to an unrelated message (a cheap refused call, nothing built), so
 * a refusal that forgets its message cannot pass on a stale one. */
void clear_last_error(vx_context *ctx);
#define CHECK_REFUSED(what, call, expect, keyword, out)                  \
  do {                                                                   \
    clear_last_error(ctx);                                               \
    check_refused(t, ctx, (what), (call), (expect), (keyword), (out));   \
  } while (0)
/* A tensor filled with SENTINEL, for outputs a refused call must not touch. */
vx_tensor *sentinel_tensor(tensor_set *ts, const int shape[5]);
void set_desc(tester *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *shape_str(const int s[5], char *buf, size_t len);

/* ---------------------------------------------------------------- the driver */
typedef struct {
  const char *name;
  void (*run)(tester *t);
} op_entry;
/* The main() of an op-test program: -d device filter, -o op list, --small, -v; every selected op
 * on every selected device (t.rng = seed + op index, so -o gives a full run's data); with
 * tiny_workspace > 0 t.ctx_tiny is a second context with that scratch budget. Prints
 * "N passed, M failed"; returns 0, 1 (failures), 2 (usage) or 77 (no OpenCL device). */
int op_test_main(int argc, char **argv, const char *prog, const op_entry *ops, size_t nops, uint64_t seed,
                 size_t tiny_workspace);

#endif
