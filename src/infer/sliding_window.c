/* Sliding-window prediction over a whole volume, network-agnostic (the network is a callback),
 * following nnU-Net: windows of the patch size placed with a step of at most
 * patch * (1 - overlap), the last window flush with the end; each window's probabilities
 * weighted by a Gaussian importance map (sigma = patch / 8); output = sum(w * p) / sum(w).
 * Optional mirroring averages the predictions of every flip combination of the patch.
 * Everything accumulates on the host, straight into the caller's output array. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "voxcl.h"
#include "util.h"

int vx_sliding_window_steps(int size, int patch, float overlap, int *starts) {
  if (size < 1 || patch < 1 || !(overlap >= 0.0f && overlap < 1.0f)) return -1;
  int padded = size > patch ? size : patch;
  double target = (double)patch * (1.0 - (double)overlap);
  /* nnU-Net: n = ceil((size - patch) / target_step) + 1; the epsilon keeps a float overlap such
   * as 0.3f (0.30000001) from adding a window that exact arithmetic would not need */
  double q = (double)(padded - patch) / target;
  if (q > 1e8) return -1; /* far more windows than any volume needs: a nonsensical request */
  int n = (int)ceil(q - 1e-9) + 1;
  if (n < 1) n = 1;
  if (starts) {
    if (n == 1) {
      starts[0] = 0;
    } else {
      double step = (double)(padded - patch) / (double)(n - 1);
      /* rint rounds half to even in the default mode, as numpy's round does in nnU-Net */
      for (int i = 0; i < n; i++) starts[i] = (int)rint(step * (double)i);
    }
  }
  return n;
}

vx_status vx_sliding_window_gaussian(const int patch[3], float *w_out) {
  if (!patch || !w_out || patch[0] < 1 || patch[1] < 1 || patch[2] < 1) return VX_ERR_INVALID_ARGUMENT;
  /* A delta at patch/2 (integer division) blurred by a Gaussian and scaled to max 1 is the
   * product of the per-axis exp terms: scipy's kernel normalisation cancels in the scaling. */
  double *g[3];
  for (int a = 0; a < 3; a++) {
    g[a] = malloc(sizeof(double) * (size_t)patch[a]);
    if (!g[a]) {
      for (int b = 0; b < a; b++) free(g[b]);
      return VX_ERR_OUT_OF_MEMORY;
    }
    double sigma = (double)patch[a] / 8.0, c = (double)(patch[a] / 2);
    for (int i = 0; i < patch[a]; i++) {
      double d = (double)i - c;
      g[a][i] = exp(-d * d / (2.0 * sigma * sigma));
    }
  }
  size_t n = (size_t)patch[0] * (size_t)patch[1] * (size_t)patch[2];
  float mx = 0.0f;
  for (int z = 0, i = 0; z < patch[0]; z++)
    for (int y = 0; y < patch[1]; y++)
      for (int x = 0; x < patch[2]; x++, i++) {
        w_out[i] = (float)(g[0][z] * g[1][y] * g[2][x]);
        if (w_out[i] > mx) mx = w_out[i];
      }
  for (int a = 0; a < 3; a++) free(g[a]);
  float mn = INFINITY;
  for (size_t i = 0; i < n; i++) {
    w_out[i] /= mx; /* mx is 1 (the centre) up to rounding; kept for the definition's sake */
    if (w_out[i] > 0.0f && w_out[i] < mn) mn = w_out[i];
  }
  /* an underflowed corner would get no weight at all; nnU-Net clamps it to the smallest weight */
  for (size_t i = 0; i < n; i++)
    if (w_out[i] == 0.0f) w_out[i] = mn;
  return VX_OK;
}

vx_status vx_argmax_channels(const float *probs, int K, size_t nvox, float *labels_out) {
  if (!probs || !labels_out || K < 1) return VX_ERR_INVALID_ARGUMENT;
  for (size_t v = 0; v < nvox; v++) {
    int best = 0;
    float bv = probs[v];
    for (int k = 1; k < K; k++) {
      float p = probs[(size_t)k * nvox + v];
      if (p > bv) { /* strict: ties go to the lower class, as numpy/torch argmax */
        bv = p;
        best = k;
      }
    }
    labels_out[v] = (float)best;
  }
  return VX_OK;
}

/* dst = src with the axes whose bit is set in 'flips' reversed (bit 0: D, 1: H, 2: W);
 * [ch, pD, pH, pW]. If add != 0, dst += the flipped src. */
static void flip_patch(const float *src, float *dst, int ch, const int p[3], int flips, int add) {
  int fz = flips & 1, fy = (flips >> 1) & 1, fx = (flips >> 2) & 1;
  size_t plane = (size_t)p[1] * (size_t)p[2], vol = plane * (size_t)p[0];
  for (int c = 0; c < ch; c++) {
    const float *s = src + (size_t)c * vol;
    float *d = dst + (size_t)c * vol;
    for (int z = 0; z < p[0]; z++) {
      int sz = fz ? p[0] - 1 - z : z;
      for (int y = 0; y < p[1]; y++) {
        int sy = fy ? p[1] - 1 - y : y;
        const float *srow = s + (size_t)sz * plane + (size_t)sy * (size_t)p[2];
        float *drow = d + (size_t)z * plane + (size_t)y * (size_t)p[2];
        for (int x = 0; x < p[2]; x++) {
          float v = srow[fx ? p[2] - 1 - x : x];
          drow[x] = add ? drow[x] + v : v;
        }
      }
    }
  }
}

typedef struct {
  int C, K, dims[3], patch[3], pad_lo[3], mirror;
  size_t pvox;
  float *in, *out, *fin, *fout; /* [C,patch], [K,patch], flipped copies for mirroring */
} sw_state;

/* Copies the window at padded position s[3] into st->in; voxels outside the volume are 0. */
static void extract(const sw_state *st, const float *image, const int s[3]) {
  const int *p = st->patch, *d = st->dims;
  size_t dvox = (size_t)d[0] * (size_t)d[1] * (size_t)d[2];
  int x0 = s[2] - st->pad_lo[2]; /* first source x of the row */
  int xa = x0 < 0 ? -x0 : 0, xb = p[2];
  if (x0 + xb > d[2]) xb = d[2] - x0;
  for (int c = 0; c < st->C; c++)
    for (int z = 0; z < p[0]; z++)
      for (int y = 0; y < p[1]; y++) {
        float *row = st->in + (((size_t)c * (size_t)p[0] + (size_t)z) * (size_t)p[1] + (size_t)y) * (size_t)p[2];
        int iz = s[0] - st->pad_lo[0] + z, iy = s[1] - st->pad_lo[1] + y;
        if (iz < 0 || iz >= d[0] || iy < 0 || iy >= d[1] || xa >= xb) {
          memset(row, 0, sizeof(float) * (size_t)p[2]);
          continue;
        }
        const float *src = image + (size_t)c * dvox + ((size_t)iz * (size_t)d[1] + (size_t)iy) * (size_t)d[2];
        for (int x = 0; x < xa; x++) row[x] = 0.0f;
        memcpy(row + xa, src + (x0 + xa), sizeof(float) * (size_t)(xb - xa));
        for (int x = xb; x < p[2]; x++) row[x] = 0.0f;
      }
}

/* Runs the callback on st->in, with mirroring when asked; the result lands in st->out. */
static vx_status predict_patch(sw_state *st, vx_patch_fn fn, void *user) {
  if (!st->mirror) return fn(user, st->in, st->out);
  size_t nout = (size_t)st->K * st->pvox;
  memset(st->out, 0, sizeof(float) * nout);
  int count = 0;
  for (int flips = 0; flips < 8; flips++) {
    /* flipping an axis of length 1 changes nothing: skip those combinations */
    int skip = 0;
    for (int a = 0; a < 3; a++)
      if (((flips >> a) & 1) && st->patch[a] == 1) skip = 1;
    if (skip) continue;
    const float *x = st->in;
    if (flips) {
      flip_patch(st->in, st->fin, st->C, st->patch, flips, 0);
      x = st->fin;
    }
    vx_status s = fn(user, x, st->fout);
    if (s != VX_OK) return s;
    flip_patch(st->fout, st->out, st->K, st->patch, flips, 1); /* a flip is its own inverse */
    count++;
  }
  float inv = 1.0f / (float)count;
  for (size_t i = 0; i < nout; i++) st->out[i] *= inv;
  return VX_OK;
}

/* probs += w * out and wsum += w over the part of the window inside the volume. */
static void accumulate(const sw_state *st, const int s[3], const float *w, float *probs, float *wsum) {
  const int *p = st->patch, *d = st->dims;
  size_t dvox = (size_t)d[0] * (size_t)d[1] * (size_t)d[2];
  int x0 = s[2] - st->pad_lo[2];
  int xa = x0 < 0 ? -x0 : 0, xb = p[2];
  if (x0 + xb > d[2]) xb = d[2] - x0;
  for (int z = 0; z < p[0]; z++) {
    int iz = s[0] - st->pad_lo[0] + z;
    if (iz < 0 || iz >= d[0]) continue;
    for (int y = 0; y < p[1]; y++) {
      int iy = s[1] - st->pad_lo[1] + y;
      if (iy < 0 || iy >= d[1]) continue;
      size_t prow = ((size_t)z * (size_t)p[1] + (size_t)y) * (size_t)p[2];
      size_t vrow = ((size_t)iz * (size_t)d[1] + (size_t)iy) * (size_t)d[2];
      const float *wr = w + prow;
      float *ws = wsum + vrow;
      for (int x = xa; x < xb; x++) ws[x0 + x] += wr[x];
      for (int k = 0; k < st->K; k++) {
        const float *o = st->out + (size_t)k * st->pvox + prow;
        float *acc = probs + (size_t)k * dvox + vrow;
        for (int x = xa; x < xb; x++) acc[x0 + x] += wr[x] * o[x];
      }
    }
  }
}

vx_status vx_sliding_window_predict(const float *image, int C, const int dims[3], const int patch[3], int K,
                                    float overlap, int mirror, vx_patch_fn fn, void *user, float *probs_out,
                                    vx_progress_fn progress, void *progress_user, char *errbuf, size_t errlen) {
  if (errbuf && errlen) errbuf[0] = 0;
  if (!image || !dims || !patch || !fn || !probs_out)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "sliding window: image, dims, patch, callback and "
                "output must not be NULL");
  if (C < 1 || K < 1)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "sliding window: channels %d and classes %d must be >= 1",
                C, K);
  if (mirror != 0 && mirror != 1)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "sliding window: mirror must be 0 or 1, got %d", mirror);
  if (!(overlap >= 0.0f && overlap < 1.0f))
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "sliding window: overlap must be in [0, 1), got %g",
                (double)overlap);
  for (int a = 0; a < 3; a++)
    if (dims[a] < 1 || patch[a] < 1)
      return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT,
                  "sliding window: volume %dx%dx%d and patch %dx%dx%d (D x H x W) must be positive", dims[0],
                  dims[1], dims[2], patch[0], patch[1], patch[2]);
  sw_state st = {.C = C, .K = K, .mirror = mirror};
  int *starts[3] = {NULL, NULL, NULL}, n[3];
  size_t dvox = 1, pvox = 1;
  for (int a = 0; a < 3; a++) {
    st.dims[a] = dims[a];
    st.patch[a] = patch[a];
    /* nnU-Net pads a too-small axis symmetrically (the extra voxel after) */
    st.pad_lo[a] = dims[a] < patch[a] ? (patch[a] - dims[a]) / 2 : 0;
    dvox *= (size_t)dims[a];
    pvox *= (size_t)patch[a];
    n[a] = vx_sliding_window_steps(dims[a], patch[a], overlap, NULL);
  }
  st.pvox = pvox;
  if (n[0] < 1 || n[1] < 1 || n[2] < 1 || (long long)n[0] * n[1] * n[2] > 100000000LL)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "sliding window: overlap %g with patch %dx%dx%d needs too "
                "many windows for volume %dx%dx%d", (double)overlap, patch[0], patch[1], patch[2], dims[0], dims[1],
                dims[2]);
  if (dvox > SIZE_MAX / sizeof(float) / (size_t)K || pvox > SIZE_MAX / sizeof(float) / (size_t)(C > K ? C : K))
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "sliding window: sizes overflow");
  vx_status s = VX_OK;
  float *w = malloc(sizeof(float) * pvox), *wsum = calloc(dvox, sizeof(float));
  st.in = malloc(sizeof(float) * pvox * (size_t)C);
  st.out = malloc(sizeof(float) * pvox * (size_t)K);
  if (mirror) {
    st.fin = malloc(sizeof(float) * pvox * (size_t)C);
    st.fout = malloc(sizeof(float) * pvox * (size_t)K);
  }
  for (int a = 0; a < 3; a++) starts[a] = malloc(sizeof(int) * (size_t)n[a]);
  if (!w || !wsum || !st.in || !st.out || (mirror && (!st.fin || !st.fout)) || !starts[0] || !starts[1] ||
      !starts[2]) {
    s = vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "sliding window: out of host memory (volume %zu voxels, "
             "patch %zu voxels)", dvox, pvox);
    goto done;
  }
  for (int a = 0; a < 3; a++) vx_sliding_window_steps(dims[a], patch[a], overlap, starts[a]);
  s = vx_sliding_window_gaussian(patch, w);
  if (s != VX_OK) {
    vx_errbuf_fail(errbuf, errlen, s, "sliding window: cannot build the Gaussian weights");
    goto done;
  }
  memset(probs_out, 0, sizeof(float) * dvox * (size_t)K);
  int total = n[0] * n[1] * n[2], done_count = 0;
  for (int iz = 0; iz < n[0]; iz++)
    for (int iy = 0; iy < n[1]; iy++)
      for (int ix = 0; ix < n[2]; ix++) {
        int at[3] = {starts[0][iz], starts[1][iy], starts[2][ix]};
        extract(&st, image, at);
        s = predict_patch(&st, fn, user);
        if (s != VX_OK) {
          vx_errbuf_fail(errbuf, errlen, s, "sliding window: the patch callback failed (%s) for the window at "
               "(%d, %d, %d) (D, H, W of the padded volume), window %d of %d", vx_status_string(s), at[0], at[1],
               at[2], done_count + 1, total);
          goto done;
        }
        accumulate(&st, at, w, probs_out, wsum);
        if (progress) progress(progress_user, ++done_count, total);
        else done_count++;
      }
  /* every voxel is covered by at least one window and every weight is > 0 */
  for (int k = 0; k < K; k++) {
    float *pk = probs_out + (size_t)k * dvox;
    for (size_t v = 0; v < dvox; v++) pk[v] /= wsum[v];
  }
done:
  free(w);
  free(wsum);
  free(st.in);
  free(st.out);
  free(st.fin);
  free(st.fout);
  for (int a = 0; a < 3; a++) free(starts[a]);
  return s;
}
