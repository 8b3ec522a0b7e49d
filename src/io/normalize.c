/* Intensity normalisation as nnU-Net does it (CT: clip to the foreground 0.5-99.5 percentiles
 * of the training set, z-score with the foreground mean and std; other channels: z-score per
 * image) and host resampling to a target spacing (trilinear for images, nearest for labels). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "voxcl.h"
#include "util.h"

/* ---------------------------------------------------------------- foreground statistics */

typedef struct {
  float *v;
  size_t n, cap;
} samples;

static int push(samples *s, float x) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 65536;
    float *v = realloc(s->v, cap * sizeof *v);
    if (!v) return 0;
    s->v = v;
    s->cap = cap;
  }
  s->v[s->n++] = x;
  return 1;
}

/* Adds the finite foreground voxels of one channel; with max > 0 at most max of them, evenly
 * spaced (deterministic, unlike nnU-Net's random draw, so the statistics are reproducible). */
static int collect(samples *s, const float *img, const float *lab, size_t n, size_t max) {
  size_t fg = 0;
  for (size_t i = 0; i < n; i++) fg += lab[i] > 0 && isfinite(img[i]);
  size_t take = max && fg > max ? max : fg, k = 0, next = 0;
  for (size_t i = 0; i < n && next < take; i++) {
    if (!(lab[i] > 0) || !isfinite(img[i])) continue;
    if (k++ == (size_t)((double)next * (double)fg / (double)take)) {
      if (!push(s, img[i])) return 0;
      next++;
    }
  }
  return 1;
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* numpy's default ("linear") percentile of sorted values. */
static double percentile(const float *sorted, size_t n, double p) {
  double pos = p / 100.0 * (double)(n - 1);
  size_t lo = (size_t)floor(pos), hi = lo + 1 < n ? lo + 1 : lo;
  double f = pos - (double)lo;
  return (double)sorted[lo] + f * ((double)sorted[hi] - (double)sorted[lo]);
}

static void finish(samples *s, vx_intensity_stats *out) {
  double sum = 0, sq = 0;
  for (size_t i = 0; i < s->n; i++) sum += s->v[i];
  double mean = sum / (double)s->n;
  for (size_t i = 0; i < s->n; i++) sq += ((double)s->v[i] - mean) * ((double)s->v[i] - mean);
  qsort(s->v, s->n, sizeof *s->v, cmp_float);
  out->lo = (float)percentile(s->v, s->n, 0.5);
  out->hi = (float)percentile(s->v, s->n, 99.5);
  out->mean = (float)mean;
  out->std = (float)sqrt(sq / (double)s->n);
  out->samples = s->n;
}

vx_status vx_intensity_stats_compute(vx_volume *const *images, vx_volume *const *labels, int n, int channel,
                                     size_t max_per_case, vx_intensity_stats *out, char *errbuf, size_t errlen) {
  if (errbuf && errlen) errbuf[0] = 0;
  if (!images || !labels || n < 1 || !out)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "intensity statistics: no cases given");
  memset(out, 0, sizeof *out);
  samples s = {0};
  vx_status st = VX_OK;
  for (int i = 0; i < n && st == VX_OK; i++) {
    int di[4], dl[4];
    vx_volume_dims(images[i], di);
    vx_volume_dims(labels[i], dl);
    float *img = vx_volume_channel(images[i], channel), *lab = vx_volume_data(labels[i]);
    if (!img || !lab || di[0] != dl[0] || di[1] != dl[1] || di[2] != dl[2])
      st = vx_errbuf_fail(errbuf, errlen, VX_ERR_SHAPE, "intensity statistics: case %d: %s", i,
                !img || !lab ? "no such channel" : "image and label shapes differ");
    else if (!collect(&s, img, lab, (size_t)di[0] * di[1] * di[2], max_per_case))
      st = vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "intensity statistics: out of memory at %zu samples", s.n);
  }
  if (st == VX_OK && s.n == 0)
    st = vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "intensity statistics: no foreground voxel in %d case%s", n,
              n == 1 ? "" : "s");
  if (st == VX_OK) finish(&s, out);
  free(s.v);
  return st;
}

vx_status vx_dataset_intensity_stats(const vx_dataset *ds, const int *cases, int n, size_t max_per_case,
                                     vx_intensity_stats *stats, char *errbuf, size_t errlen) {
  if (errbuf && errlen) errbuf[0] = 0;
  int nc = vx_dataset_channel_count(ds);
  if (!ds || !cases || n < 1 || !stats || nc < 1)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "dataset intensity statistics: no dataset or no cases");
  samples *s = calloc((size_t)nc, sizeof *s);
  if (!s) return vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "dataset intensity statistics: out of memory");
  vx_status st = VX_OK;
  for (int i = 0; i < n && st == VX_OK; i++) {
    vx_volume *img = NULL, *lab = NULL;
    st = vx_dataset_load_case(ds, cases[i], &img, &lab, errbuf, errlen);
    int d[4];
    vx_volume_dims(img, d);
    for (int c = 0; c < nc && st == VX_OK; c++)
      if (!collect(&s[c], vx_volume_channel(img, c), vx_volume_data(lab), (size_t)d[0] * d[1] * d[2], max_per_case))
        st = vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "dataset intensity statistics: out of memory");
    vx_volume_destroy(img);
    vx_volume_destroy(lab);
  }
  for (int c = 0; c < nc && st == VX_OK; c++) {
    if (s[c].n == 0)
      st = vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "dataset intensity statistics: no foreground voxel in %d case%s",
                n, n == 1 ? "" : "s");
    else finish(&s[c], &stats[c]);
  }
  for (int c = 0; c < nc; c++) free(s[c].v);
  free(s);
  return st;
}

/* ---------------------------------------------------------------- applying */

void vx_normalize_ct(float *x, size_t n, const vx_intensity_stats *s) {
  if (!x || !s) return;
  double sd = fmax((double)s->std, 1e-8);
  for (size_t i = 0; i < n; i++) {
    float v = x[i] < s->lo ? s->lo : x[i] > s->hi ? s->hi : x[i]; /* NaN stays NaN */
    x[i] = (float)(((double)v - s->mean) / sd);
  }
}

void vx_normalize_zscore(float *x, size_t n) {
  if (!x || !n) return;
  double sum = 0, sq = 0;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (isfinite(x[i])) {
      sum += x[i];
      k++;
    }
  double mean = k ? sum / (double)k : 0;
  for (size_t i = 0; i < n; i++)
    if (isfinite(x[i])) sq += ((double)x[i] - mean) * ((double)x[i] - mean);
  double sd = fmax(k ? sqrt(sq / (double)k) : 0, 1e-8);
  for (size_t i = 0; i < n; i++) x[i] = (float)(((double)x[i] - mean) / sd);
}

vx_status vx_normalize_volume(vx_volume *image, const int *is_ct, const vx_intensity_stats *stats) {
  if (!image) return VX_ERR_INVALID_ARGUMENT;
  int d[4];
  vx_volume_dims(image, d);
  size_t n = (size_t)d[0] * d[1] * d[2];
  for (int c = 0; c < d[3]; c++) {
    if (is_ct && is_ct[c] && !stats) return VX_ERR_INVALID_ARGUMENT;
    if (is_ct && is_ct[c]) vx_normalize_ct(vx_volume_channel(image, c), n, &stats[c]);
    else vx_normalize_zscore(vx_volume_channel(image, c), n);
  }
  return VX_OK;
}

/* ---------------------------------------------------------------- resampling */

/* Source coordinate of output index o for centre-aligned grids, clamped to the input. */
static void axis_map(int o, int nin, int nout, int *i0, int *i1, float *f) {
  double x = ((double)o + 0.5) * (double)nin / (double)nout - 0.5;
  if (x < 0) x = 0;
  if (x > nin - 1) x = nin - 1;
  *i0 = (int)floor(x);
  *i1 = *i0 + 1 < nin ? *i0 + 1 : *i0;
  *f = (float)(x - *i0);
}

static int axis_nearest(int o, int nin, int nout) {
  int i = (int)floor(((double)o + 0.5) * (double)nin / (double)nout);
  return i < 0 ? 0 : i >= nin ? nin - 1 : i;
}

vx_status vx_resample(const float *in, const int in_dims[3], int channels, float *out, const int out_dims[3],
                      int nearest) {
  if (!in || !out || !in_dims || !out_dims || channels < 1) return VX_ERR_INVALID_ARGUMENT;
  for (int a = 0; a < 3; a++)
    if (in_dims[a] < 1 || out_dims[a] < 1) return VX_ERR_INVALID_ARGUMENT;
  int ix = in_dims[0], iy = in_dims[1], iz = in_dims[2], ox = out_dims[0], oy = out_dims[1], oz = out_dims[2];
  size_t nin = (size_t)ix * iy * iz, nout = (size_t)ox * oy * oz;
  /* per-axis tables: the x ones are reused for every row */
  int *x0 = malloc((size_t)ox * 2 * sizeof *x0);
  float *fx = malloc((size_t)ox * sizeof *fx);
  if (!x0 || !fx) {
    free(x0);
    free(fx);
    return VX_ERR_OUT_OF_MEMORY;
  }
  for (int x = 0; x < ox; x++) {
    if (nearest) x0[2 * x] = x0[2 * x + 1] = axis_nearest(x, ix, ox), fx[x] = 0;
    else axis_map(x, ix, ox, &x0[2 * x], &x0[2 * x + 1], &fx[x]);
  }
  for (int c = 0; c < channels; c++) {
    const float *src = in + (size_t)c * nin;
    float *dst = out + (size_t)c * nout;
    for (int z = 0; z < oz; z++) {
      int z0, z1, y0, y1;
      float fz, fy;
      if (nearest) z0 = z1 = axis_nearest(z, iz, oz), fz = 0;
      else axis_map(z, iz, oz, &z0, &z1, &fz);
      for (int y = 0; y < oy; y++) {
        if (nearest) y0 = y1 = axis_nearest(y, iy, oy), fy = 0;
        else axis_map(y, iy, oy, &y0, &y1, &fy);
        const float *r00 = src + ((size_t)z0 * iy + y0) * ix, *r01 = src + ((size_t)z0 * iy + y1) * ix;
        const float *r10 = src + ((size_t)z1 * iy + y0) * ix, *r11 = src + ((size_t)z1 * iy + y1) * ix;
        float *o = dst + ((size_t)z * oy + y) * ox;
        for (int x = 0; x < ox; x++) {
          int a = x0[2 * x], b = x0[2 * x + 1];
          if (nearest) {
            o[x] = r00[a];
            continue;
          }
          float t = fx[x];
          float v00 = r00[a] + t * (r00[b] - r00[a]), v01 = r01[a] + t * (r01[b] - r01[a]);
          float v10 = r10[a] + t * (r10[b] - r10[a]), v11 = r11[a] + t * (r11[b] - r11[a]);
          float v0 = v00 + fy * (v01 - v00), v1 = v10 + fy * (v11 - v10);
          o[x] = v0 + fz * (v1 - v0);
        }
      }
    }
  }
  free(x0);
  free(fx);
  return VX_OK;
}

void vx_resample_shape(const int dims[3], const float spacing[3], const float target[3], int out_dims[3]) {
  for (int a = 0; a < 3; a++) {
    double n = target[a] > 0 ? (double)dims[a] * spacing[a] / target[a] : dims[a];
    long r = lround(n);
    out_dims[a] = r < 1 ? 1 : r > 1 << 20 ? 1 << 20 : (int)r;
  }
}

vx_status vx_volume_resample(vx_volume *in, const float target[3], int is_label, vx_volume **out) {
  if (!out) return VX_ERR_INVALID_ARGUMENT;
  *out = NULL;
  if (!in || !target) return VX_ERR_INVALID_ARGUMENT;
  for (int a = 0; a < 3; a++)
    if (!(target[a] > 0) || !isfinite(target[a])) return VX_ERR_INVALID_ARGUMENT;
  int d[4], od[3];
  float sp[3];
  vx_volume_dims(in, d);
  vx_volume_spacing(in, sp);
  vx_resample_shape(d, sp, target, od);
  vx_status st = vx_volume_create(od[0], od[1], od[2], d[3], target, out);
  if (st != VX_OK) return st;
  st = vx_resample(vx_volume_data(in), d, d[3], vx_volume_data(*out), od, is_label);
  if (st != VX_OK) {
    vx_volume_destroy(*out);
    *out = NULL;
  }
  return st;
}
