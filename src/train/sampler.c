/* The patch sampler: batches of augmented training patches cut from cases in host memory,
 * optionally made by a background thread one batch ahead of the caller (double buffer), so
 * that the device never waits for the host while the host is fast enough.
 *
 * Determinism: one RNG per sampler, consumed only by whoever makes the batches (the thread,
 * or the caller when unthreaded), always in batch order, so a seed gives the same stream of
 * batches either way. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/nn.h"
#include "voxcl.h"
#include "util.h"

/* Foreground voxels remembered per class and case (nnU-Net keeps 10000 too): enough to cover
 * a structure, small enough for thousands of cases. */
#define MAX_LOCATIONS 10000
#define MAX_CLASS 65535

typedef struct {
  const float *image; /* [C, D, H, W] */
  const float *label; /* [D, H, W] */
  int dims[3];        /* D, H, W (z, y, x) */
  int nclass;         /* classes >= 1 present */
  size_t **loc;       /* [nclass][nloc] voxel indices */
  int *nloc;
} scase;

struct vx_sampler {
  vx_sampler_config cfg;
  int n, channels;
  scase *cases;
  size_t pvox; /* voxels per patch */
  float *img[2], *lab[2];
  int *case_idx[2], *fg[2];
  float *scratch; /* one patch channel, for rotations */
  uint64_t rng;
  int thread_started;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int ready[2], held, next_fill, next_take, stop;
  long long batches, produced;
  double wait_s, produce_s;
};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void vx_sampler_config_init(vx_sampler_config *c) {
  if (!c) return;
  memset(c, 0, sizeof *c);
  c->batch = 2;
  c->patch[0] = c->patch[1] = c->patch[2] = 64;
  c->foreground_fraction = 1.0f / 3.0f;
  c->augment = 1;
  c->p_flip = 0.5f;
  c->rot90 = 1;
  c->p_noise = 0.1f;
  c->p_scale = 0.15f;
  c->p_shift = 0.15f;
  c->p_gamma = 0.3f;
  c->seed = 1;
  c->threaded = 1;
}

static double uni(uint64_t *r, double a, double b) { return a + (b - a) * vx_rng_uniform(r); }
static int below(uint64_t *r, int n) { return (int)(vx_rng_next(r) % (uint64_t)n); }

/* ---------------------------------------------------------------- foreground locations */

static vx_status index_case(scase *c, int ci, char *errbuf, size_t errlen) {
  size_t n = (size_t)c->dims[0] * c->dims[1] * c->dims[2];
  int maxv = 0;
  for (size_t i = 0; i < n; i++) {
    float v = c->label[i];
    if (!(v >= 0) || v > MAX_CLASS || v != floorf(v))
      return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "sampler: case %d: label value %g at voxel %zu is not a class index",
                  ci, v, i);
    if ((int)v > maxv) maxv = (int)v;
  }
  size_t *count = calloc((size_t)maxv + 1, sizeof *count), *seen = calloc((size_t)maxv + 1, sizeof *seen);
  int *slot = calloc((size_t)maxv + 1, sizeof *slot);
  vx_status st = VX_OK;
  if (!count || !seen || !slot) st = VX_ERR_OUT_OF_MEMORY;
  for (size_t i = 0; i < n && st == VX_OK; i++) count[(int)c->label[i]]++;
  for (int v = 1; v <= maxv && st == VX_OK; v++) c->nclass += count[v] > 0;
  if (st == VX_OK && c->nclass) {
    c->loc = calloc((size_t)c->nclass, sizeof *c->loc);
    c->nloc = calloc((size_t)c->nclass, sizeof *c->nloc);
    if (!c->loc || !c->nloc) st = VX_ERR_OUT_OF_MEMORY;
  }
  for (int v = 1, k = 0; v <= maxv && st == VX_OK; v++) {
    if (!count[v]) continue;
    slot[v] = k;
    c->nloc[k] = count[v] > MAX_LOCATIONS ? MAX_LOCATIONS : (int)count[v];
    if (!(c->loc[k] = malloc((size_t)c->nloc[k] * sizeof **c->loc))) st = VX_ERR_OUT_OF_MEMORY;
    k++;
  }
  /* evenly spaced occurrences of each class: the j-th kept one is occurrence j*count/kept */
  int *filled = st == VX_OK && c->nclass ? calloc((size_t)c->nclass, sizeof *filled) : NULL;
  if (c->nclass && !filled) st = VX_ERR_OUT_OF_MEMORY;
  for (size_t i = 0; i < n && st == VX_OK; i++) {
    int v = (int)c->label[i];
    if (!v) continue;
    int k = slot[v];
    size_t occ = seen[v]++;
    if (filled[k] < c->nloc[k] && occ == (size_t)((double)filled[k] * (double)count[v] / c->nloc[k]))
      c->loc[k][filled[k]++] = i;
  }
  for (int k = 0; k < c->nclass && st == VX_OK; k++) c->nloc[k] = filled[k];
  free(filled);
  free(count);
  free(seen);
  free(slot);
  if (st != VX_OK) return vx_errbuf_fail(errbuf, errlen, st, "sampler: case %d: out of memory indexing the foreground", ci);
  return VX_OK;
}

/* ---------------------------------------------------------------- one patch */

/* Start of the patch along one axis: the patch stays within the volume where it fits, and
 * covers all of it (padding spread at random) where it does not. centre < 0: uniform. */
static int place(uint64_t *r, int shape, int p, int centre) {
  int lo = shape - p < 0 ? shape - p : 0, hi = shape - p > 0 ? shape - p : 0;
  if (centre < 0) return lo + below(r, hi - lo + 1);
  int s = centre - p / 2;
  return s < lo ? lo : s > hi ? hi : s;
}

/* Copies the [pD, pH, pW] window at 'start' of a [D, H, W] volume, 0 outside. */
static void extract(const float *src, const int dims[3], const int start[3], const int p[3], float *dst) {
  for (int z = 0; z < p[0]; z++)
    for (int y = 0; y < p[1]; y++) {
      float *o = dst + ((size_t)z * p[1] + y) * p[2];
      int sz = start[0] + z, sy = start[1] + y;
      if (sz < 0 || sz >= dims[0] || sy < 0 || sy >= dims[1]) {
        memset(o, 0, (size_t)p[2] * sizeof *o);
        continue;
      }
      const float *row = src + ((size_t)sz * dims[1] + sy) * dims[2];
      int x0 = start[2] < 0 ? -start[2] : 0;                       /* first x inside */
      int x1 = dims[2] - start[2] < p[2] ? dims[2] - start[2] : p[2]; /* one past the last */
      if (x1 < x0) x1 = x0;
      memset(o, 0, (size_t)x0 * sizeof *o);
      memcpy(o + x0, row + start[2] + x0, (size_t)(x1 - x0) * sizeof *o);
      memset(o + x1, 0, (size_t)(p[2] - x1) * sizeof *o);
    }
}

static void flip(float *x, const int p[3], int axis) {
  int D = p[0], H = p[1], W = p[2];
  for (int z = 0; z < (axis == 0 ? D / 2 : D); z++)
    for (int y = 0; y < (axis == 1 ? H / 2 : H); y++)
      for (int w = 0; w < (axis == 2 ? W / 2 : W); w++) {
        int tz = axis == 0 ? D - 1 - z : z, ty = axis == 1 ? H - 1 - y : y, tw = axis == 2 ? W - 1 - w : w;
        size_t a = ((size_t)z * H + y) * W + w, b = ((size_t)tz * H + ty) * W + tw;
        float t = x[a];
        x[a] = x[b];
        x[b] = t;
      }
}

/* Rotation of every (H, W) slice by k*90 degrees (H == W). */
static void rot90(float *x, const int p[3], int k, float *tmp) {
  int P = p[1];
  for (int z = 0; z < p[0]; z++) {
    float *s = x + (size_t)z * P * P;
    for (int y = 0; y < P; y++)
      for (int w = 0; w < P; w++) {
        int sy = k == 1 ? P - 1 - w : k == 2 ? P - 1 - y : w;
        int sw = k == 1 ? y : k == 2 ? P - 1 - w : P - 1 - y;
        tmp[(size_t)y * P + w] = s[(size_t)sy * P + sw];
      }
    memcpy(s, tmp, (size_t)P * P * sizeof *s);
  }
}

static void intensity(vx_sampler *s, float *x) {
  const vx_sampler_config *c = &s->cfg;
  uint64_t *r = &s->rng;
  size_t n = s->pvox;
  if (vx_rng_uniform(r) < c->p_noise) {
    double sd = sqrt(uni(r, 0, 0.1)); /* variance U(0, 0.1), as nnU-Net */
    for (size_t i = 0; i < n; i++) x[i] += (float)(sd * vx_rng_normal(r));
  }
  if (vx_rng_uniform(r) < c->p_scale) {
    float m = (float)uni(r, 0.75, 1.25);
    for (size_t i = 0; i < n; i++) x[i] *= m;
  }
  if (vx_rng_uniform(r) < c->p_shift) {
    float a = (float)uni(r, -0.1, 0.1);
    for (size_t i = 0; i < n; i++) x[i] += a;
  }
  if (vx_rng_uniform(r) < c->p_gamma) {
    /* half of the draws below 1, half above: darkening and brightening equally likely */
    double g = vx_rng_uniform(r) < 0.5 ? uni(r, 0.7, 1.0) : uni(r, 1.0, 1.5);
    float mn = x[0], mx = x[0];
    for (size_t i = 1; i < n; i++) {
      mn = x[i] < mn ? x[i] : mn;
      mx = x[i] > mx ? x[i] : mx;
    }
    float range = mx - mn;
    if (range > 1e-7f)
      for (size_t i = 0; i < n; i++) x[i] = mn + range * powf((x[i] - mn) / range, (float)g);
  }
}

static void make_patch(vx_sampler *s, int b, int item) {
  const vx_sampler_config *c = &s->cfg;
  uint64_t *r = &s->rng;
  int ci = below(r, s->n);
  const scase *k = &s->cases[ci];
  int forced = vx_rng_uniform(r) < c->foreground_fraction && k->nclass > 0;
  int centre[3] = {-1, -1, -1}, start[3];
  if (forced) {
    int cls = below(r, k->nclass);
    size_t v = k->loc[cls][below(r, k->nloc[cls])];
    centre[2] = (int)(v % (size_t)k->dims[2]);
    centre[1] = (int)(v / (size_t)k->dims[2] % (size_t)k->dims[1]);
    centre[0] = (int)(v / ((size_t)k->dims[2] * k->dims[1]));
  }
  for (int a = 0; a < 3; a++) start[a] = place(r, k->dims[a], c->patch[a], centre[a]);
  size_t vol = (size_t)k->dims[0] * k->dims[1] * k->dims[2];
  float *img = s->img[b] + (size_t)item * s->channels * s->pvox, *lab = s->lab[b] + (size_t)item * s->pvox;
  for (int ch = 0; ch < s->channels; ch++) extract(k->image + ch * vol, k->dims, start, c->patch, img + ch * s->pvox);
  extract(k->label, k->dims, start, c->patch, lab);
  s->case_idx[b][item] = ci;
  s->fg[b][item] = forced;
  if (!c->augment) return;
  if (c->rot90 && c->patch[1] == c->patch[2]) {
    int rk = below(r, 4);
    for (int ch = 0; rk && ch <= s->channels; ch++)
      rot90(ch < s->channels ? img + ch * s->pvox : lab, c->patch, rk, s->scratch);
  }
  for (int a = 0; a < 3; a++)
    if (vx_rng_uniform(r) < c->p_flip)
      for (int ch = 0; ch <= s->channels; ch++) flip(ch < s->channels ? img + ch * s->pvox : lab, c->patch, a);
  for (int ch = 0; ch < s->channels; ch++) intensity(s, img + ch * s->pvox);
}

static void make_batch(vx_sampler *s, int b) {
  double t0 = now();
  for (int i = 0; i < s->cfg.batch; i++) make_patch(s, b, i);
  double dt = now() - t0;
  pthread_mutex_lock(&s->mu);
  s->produce_s += dt;
  s->produced++;
  pthread_mutex_unlock(&s->mu);
}

/* ---------------------------------------------------------------- the double buffer */

static void *producer(void *arg) {
  vx_sampler *s = arg;
  pthread_mutex_lock(&s->mu);
  while (!s->stop) {
    int b = s->next_fill;
    if (s->ready[b] || s->held == b) { /* both halves full or held: wait for the caller */
      pthread_cond_wait(&s->cv, &s->mu);
      continue;
    }
    pthread_mutex_unlock(&s->mu);
    make_batch(s, b);
    pthread_mutex_lock(&s->mu);
    s->ready[b] = 1;
    s->next_fill ^= 1;
    pthread_cond_broadcast(&s->cv);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

vx_status vx_sampler_next(vx_sampler *s, vx_batch *out) {
  if (!s || !out) return VX_ERR_INVALID_ARGUMENT;
  double t0 = now();
  pthread_mutex_lock(&s->mu);
  s->held = -1; /* the caller is done with the previous batch */
  pthread_cond_broadcast(&s->cv);
  int b = s->next_take;
  if (!s->thread_started) {
    pthread_mutex_unlock(&s->mu);
    make_batch(s, b);
    pthread_mutex_lock(&s->mu);
    s->ready[b] = 1;
  }
  while (!s->ready[b]) pthread_cond_wait(&s->cv, &s->mu);
  s->ready[b] = 0;
  s->held = b;
  s->next_take ^= 1;
  s->batches++;
  s->wait_s += now() - t0;
  pthread_mutex_unlock(&s->mu);
  out->image = s->img[b];
  out->label = s->lab[b];
  out->case_index = s->case_idx[b];
  out->foreground = s->fg[b];
  out->batch = s->cfg.batch;
  out->channels = s->channels;
  memcpy(out->patch, s->cfg.patch, sizeof out->patch);
  return VX_OK;
}

void vx_sampler_get_stats(vx_sampler *s, vx_sampler_stats *st) {
  if (!st) return;
  memset(st, 0, sizeof *st);
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  st->batches = s->batches;
  st->produced = s->produced;
  st->wait_seconds = s->wait_s;
  st->produce_seconds = s->produce_s;
  pthread_mutex_unlock(&s->mu);
}

/* ---------------------------------------------------------------- create / destroy */

vx_status vx_sampler_create(vx_volume *const *images, vx_volume *const *labels, int n, const vx_sampler_config *cfg,
                            vx_sampler **out, char *errbuf, size_t errlen) {
  if (errbuf && errlen) errbuf[0] = 0;
  if (!out) return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "sampler: out is NULL");
  *out = NULL;
  vx_sampler_config def;
  vx_sampler_config_init(&def);
  if (!cfg) cfg = &def;
  if (!images || !labels || n < 1) return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "sampler: no cases");
  if (cfg->batch < 1 || cfg->patch[0] < 1 || cfg->patch[1] < 1 || cfg->patch[2] < 1 ||
      !(cfg->foreground_fraction >= 0 && cfg->foreground_fraction <= 1))
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT,
                "sampler: batch %d, patch %dx%dx%d, foreground fraction %g (need >= 1, >= 1, 0..1)", cfg->batch,
                cfg->patch[0], cfg->patch[1], cfg->patch[2], cfg->foreground_fraction);
  vx_sampler *s = calloc(1, sizeof *s);
  if (!s) return vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "sampler: out of memory");
  s->cfg = *cfg;
  s->n = n;
  s->rng = cfg->seed;
  s->held = -1;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  vx_status st = VX_OK;
  s->cases = calloc((size_t)n, sizeof *s->cases);
  if (!s->cases) st = vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "sampler: out of memory");
  for (int i = 0; i < n && st == VX_OK; i++) {
    int di[4], dl[4];
    vx_volume_dims(images[i], di);
    vx_volume_dims(labels[i], dl);
    if (!images[i] || !labels[i] || di[0] != dl[0] || di[1] != dl[1] || di[2] != dl[2] || dl[3] != 1 ||
        (i && di[3] != s->channels)) {
      st = vx_errbuf_fail(errbuf, errlen, VX_ERR_SHAPE, "sampler: case %d: image %dx%dx%dx%d, label %dx%dx%dx%d (x, y, z, channels; "
                "the label needs the image's shape and one channel, every image %d channels)", i, di[0], di[1], di[2],
                di[3], dl[0], dl[1], dl[2], dl[3], i ? s->channels : di[3]);
      break;
    }
    s->channels = di[3];
    scase *c = &s->cases[i];
    c->image = vx_volume_data(images[i]);
    c->label = vx_volume_data(labels[i]);
    c->dims[0] = di[2];
    c->dims[1] = di[1];
    c->dims[2] = di[0];
    st = index_case(c, i, errbuf, errlen);
  }
  if (st == VX_OK) {
    s->pvox = (size_t)cfg->patch[0] * cfg->patch[1] * cfg->patch[2];
    for (int b = 0; b < 2 && st == VX_OK; b++) {
      s->img[b] = malloc((size_t)cfg->batch * s->channels * s->pvox * sizeof(float));
      s->lab[b] = malloc((size_t)cfg->batch * s->pvox * sizeof(float));
      s->case_idx[b] = calloc((size_t)cfg->batch, sizeof(int));
      s->fg[b] = calloc((size_t)cfg->batch, sizeof(int));
      if (!s->img[b] || !s->lab[b] || !s->case_idx[b] || !s->fg[b])
        st = vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "sampler: cannot allocate two batches of %d x %d x %dx%dx%d",
                  cfg->batch, s->channels, cfg->patch[0], cfg->patch[1], cfg->patch[2]);
    }
    s->scratch = malloc((size_t)cfg->patch[1] * cfg->patch[2] * sizeof(float));
    if (st == VX_OK && !s->scratch) st = vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "sampler: out of memory");
  }
  if (st == VX_OK && cfg->threaded) {
    if (pthread_create(&s->thread, NULL, producer, s) != 0)
      st = vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "sampler: cannot start the background thread");
    else s->thread_started = 1;
  }
  if (st != VX_OK) {
    vx_sampler_destroy(s);
    return st;
  }
  *out = s;
  return VX_OK;
}

void vx_sampler_destroy(vx_sampler *s) {
  if (!s) return;
  if (s->thread_started) {
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
  }
  for (int i = 0; s->cases && i < s->n; i++) {
    for (int k = 0; k < s->cases[i].nclass && s->cases[i].loc; k++) free(s->cases[i].loc[k]);
    free(s->cases[i].loc);
    free(s->cases[i].nloc);
  }
  free(s->cases);
  for (int b = 0; b < 2; b++) {
    free(s->img[b]);
    free(s->lab[b]);
    free(s->case_idx[b]);
    free(s->fg[b]);
  }
  free(s->scratch);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s);
}
