/* Segmentation metrics: Dice and the 95th-percentile Hausdorff distance (HD95, MONAI's
 * definition) in millimetres, on top of an exact squared Euclidean distance transform
 * (Felzenszwalb & Huttenlocher's separable lower-envelope algorithm, with anisotropic spacing).
 *
 * Layout everywhere: volumes are [D, H, W] with W (x) fastest; dims = {D, H, W} and
 * spacing = {sD, sH, sW} in mm, i.e. {z, y, x}: the reverse of vx_volume_dims' order. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "voxcl.h"
#include "util.h"

double vx_dice_masks(const uint8_t *a, const uint8_t *b, size_t nvox) {
  if (!a || !b) return NAN;
  size_t na = 0, nb = 0, nab = 0;
  for (size_t i = 0; i < nvox; i++) {
    int x = a[i] != 0, y = b[i] != 0;
    na += (size_t)x;
    nb += (size_t)y;
    nab += (size_t)(x & y);
  }
  if (na + nb == 0) return 1.0; /* both empty: a perfect (empty) prediction */
  return 2.0 * (double)nab / (double)(na + nb);
}

/* ------------------------------------------------------------------ distance transform */
typedef struct {
  double *f, *d, *zb; /* line values, line result, envelope boundaries (n + 1) */
  int *v;             /* envelope parabola sites */
} edt_scratch;

/* d[q] = min_p (s*(q - p))^2 + f[p] over the finite f[p]; all +inf when none is finite. */
static void edt_1d(const double *f, double *d, int n, double s, edt_scratch *w) {
  int *v = w->v;
  double *z = w->zb;
  int k = -1;
  for (int q = 0; q < n; q++) {
    if (!isfinite(f[q])) continue; /* a site at infinity never forms part of the envelope */
    double xq = s * q, cut = -INFINITY;
    while (k >= 0) {
      double xp = s * v[k];
      cut = ((f[q] + xq * xq) - (f[v[k]] + xp * xp)) / (2.0 * (xq - xp));
      if (cut > z[k]) break;
      k--;
    }
    k++;
    v[k] = q;
    z[k] = k == 0 ? -INFINITY : cut;
    z[k + 1] = INFINITY;
  }
  if (k < 0) {
    for (int q = 0; q < n; q++) d[q] = INFINITY;
    return;
  }
  int j = 0;
  for (int q = 0; q < n; q++) {
    double xq = s * q;
    while (z[j + 1] < xq) j++;
    double dx = xq - s * v[j];
    d[q] = dx * dx + f[v[j]];
  }
}

/* Squared EDT of a box dims[3] with spacing sp[3] (mm); out[i] = 0 on features. */
static vx_status edt_box(const uint8_t *feat, const int dims[3], const double sp[3], double *out) {
  int n = dims[0];
  if (dims[1] > n) n = dims[1];
  if (dims[2] > n) n = dims[2];
  edt_scratch w;
  w.f = malloc(sizeof(double) * (size_t)n);
  w.d = malloc(sizeof(double) * (size_t)n);
  w.zb = malloc(sizeof(double) * ((size_t)n + 1));
  w.v = malloc(sizeof(int) * (size_t)n);
  if (!w.f || !w.d || !w.zb || !w.v) {
    free(w.f), free(w.d), free(w.zb), free(w.v);
    return VX_ERR_OUT_OF_MEMORY;
  }
  const size_t D = (size_t)dims[0], H = (size_t)dims[1], W = (size_t)dims[2];
  /* x lines: straight from the mask */
  for (size_t zy = 0; zy < D * H; zy++) {
    const uint8_t *m = feat + zy * W;
    for (size_t x = 0; x < W; x++) w.f[x] = m[x] ? 0.0 : INFINITY;
    edt_1d(w.f, out + zy * W, (int)W, sp[2], &w);
  }
  /* y lines, then z lines: gather, transform, scatter (in place is fine: line by line) */
  for (size_t z = 0; z < D; z++)
    for (size_t x = 0; x < W; x++) {
      double *base = out + z * H * W + x;
      for (size_t y = 0; y < H; y++) w.f[y] = base[y * W];
      edt_1d(w.f, w.d, (int)H, sp[1], &w);
      for (size_t y = 0; y < H; y++) base[y * W] = w.d[y];
    }
  if (D > 1)
    for (size_t yx = 0; yx < H * W; yx++) {
      double *base = out + yx;
      for (size_t z = 0; z < D; z++) w.f[z] = base[z * H * W];
      edt_1d(w.f, w.d, (int)D, sp[0], &w);
      for (size_t z = 0; z < D; z++) base[z * H * W] = w.d[z];
    }
  free(w.f), free(w.d), free(w.zb), free(w.v);
  return VX_OK;
}

static int check_geometry(const int dims[3], const float spacing[3]) {
  if (!dims || !spacing) return 0;
  for (int a = 0; a < 3; a++)
    if (dims[a] < 1 || !(spacing[a] > 0.0f) || !isfinite(spacing[a])) return 0;
  return 1;
}

vx_status vx_edt_squared(const uint8_t *mask, const int dims[3], const float spacing[3], double *out) {
  if (!mask || !out || !check_geometry(dims, spacing)) return VX_ERR_INVALID_ARGUMENT;
  double sp[3] = {spacing[0], spacing[1], spacing[2]};
  return edt_box(mask, dims, sp, out);
}

/* ------------------------------------------------------------------ HD95 */
static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* numpy.percentile's default ("linear"): position q/100 * (n - 1) in the sorted values. */
static double percentile(double *v, size_t n, double q) {
  qsort(v, n, sizeof(double), cmp_double);
  double pos = q / 100.0 * (double)(n - 1);
  size_t lo = (size_t)floor(pos);
  if (lo + 1 >= n) return v[n - 1];
  double t = pos - (double)lo;
  return v[lo] + t * (v[lo + 1] - v[lo]);
}

/* 1 if voxel (z, y, x) of mask m (full volume dims) is in and has a 6-neighbour out or outside. */
static int on_surface(const uint8_t *m, const int d[3], int z, int y, int x) {
  size_t H = (size_t)d[1], W = (size_t)d[2];
  size_t i = ((size_t)z * H + (size_t)y) * W + (size_t)x;
  if (!m[i]) return 0;
  if (z == 0 || z == d[0] - 1 || y == 0 || y == d[1] - 1 || x == 0 || x == d[2] - 1) return 1;
  return !m[i - 1] || !m[i + 1] || !m[i - W] || !m[i + W] || !m[i - H * W] || !m[i + H * W];
}

/* Directed distances (mm) from every voxel of surface 'from' to the nearest voxel of 'to';
 * both are box-sized; edt is box-sized scratch. Returns the count written into dist. */
static vx_status directed(const uint8_t *from, const uint8_t *to, const int box[3], const double sp[3],
                          double *edt, double *dist, size_t *count) {
  vx_status s = edt_box(to, box, sp, edt);
  if (s != VX_OK) return s;
  size_t n = (size_t)box[0] * (size_t)box[1] * (size_t)box[2], c = 0;
  for (size_t i = 0; i < n; i++)
    if (from[i]) dist[c++] = sqrt(edt[i]);
  *count = c;
  return VX_OK;
}

vx_status vx_hd95_masks(const uint8_t *a, const uint8_t *b, const int dims[3], const float spacing[3],
                        double *hd95) {
  if (!hd95) return VX_ERR_INVALID_ARGUMENT;
  *hd95 = NAN;
  if (!a || !b || !check_geometry(dims, spacing)) return VX_ERR_INVALID_ARGUMENT;
  /* bounding box of A u B: every surface voxel and so every site and query lies inside it, so
   * the transform restricted to it is still exact (and much smaller than the volume) */
  int lo[3] = {dims[0], dims[1], dims[2]}, hi[3] = {-1, -1, -1};
  int any_a = 0, any_b = 0;
  for (int z = 0; z < dims[0]; z++)
    for (int y = 0; y < dims[1]; y++) {
      size_t row = ((size_t)z * (size_t)dims[1] + (size_t)y) * (size_t)dims[2];
      for (int x = 0; x < dims[2]; x++) {
        int ia = a[row + (size_t)x] != 0, ib = b[row + (size_t)x] != 0;
        if (!(ia | ib)) continue;
        any_a |= ia;
        any_b |= ib;
        int p[3] = {z, y, x};
        for (int k = 0; k < 3; k++) {
          if (p[k] < lo[k]) lo[k] = p[k];
          if (p[k] > hi[k]) hi[k] = p[k];
        }
      }
    }
  if (!any_a || !any_b) return VX_OK; /* undefined: NaN */
  int box[3] = {hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1};
  size_t n = (size_t)box[0] * (size_t)box[1] * (size_t)box[2];
  uint8_t *sa = malloc(n), *sb = malloc(n);
  double *edt = malloc(sizeof(double) * n), *dist = NULL;
  vx_status s = VX_OK;
  if (!sa || !sb || !edt) {
    s = VX_ERR_OUT_OF_MEMORY;
    goto done;
  }
  size_t na = 0, nb = 0, i = 0;
  for (int z = 0; z < box[0]; z++)
    for (int y = 0; y < box[1]; y++)
      for (int x = 0; x < box[2]; x++, i++) {
        sa[i] = (uint8_t)on_surface(a, dims, z + lo[0], y + lo[1], x + lo[2]);
        sb[i] = (uint8_t)on_surface(b, dims, z + lo[0], y + lo[1], x + lo[2]);
        na += sa[i], nb += sb[i];
      }
  dist = malloc(sizeof(double) * (na > nb ? na : nb)); /* surfaces: far fewer than the box */
  if (!dist) {
    s = VX_ERR_OUT_OF_MEMORY;
    goto done;
  }
  double sp[3] = {spacing[0], spacing[1], spacing[2]}, h[2];
  for (int dir = 0; dir < 2; dir++) {
    size_t cnt = 0;
    s = directed(dir ? sb : sa, dir ? sa : sb, box, sp, edt, dist, &cnt);
    if (s != VX_OK) goto done;
    h[dir] = percentile(dist, cnt, 95.0); /* cnt > 0: a non-empty mask has a surface */
  }
  *hd95 = h[0] > h[1] ? h[0] : h[1];
done:
  free(sa), free(sb), free(edt), free(dist);
  return s;
}

/* ------------------------------------------------------------------ label maps */
vx_status vx_segmentation_metrics(const float *pred, const float *ref, const int dims[3], const float spacing[3],
                                  const int *labels, int nlabels, double *dice, double *hd95, char *errbuf,
                                  size_t errlen) {
  if (errbuf && errlen) errbuf[0] = 0;
  if (!pred || !ref || !labels || nlabels < 0 || !dice || !hd95)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "metrics: NULL argument or negative label count");
  if (!check_geometry(dims, spacing))
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "metrics: dims must be >= 1 and spacing > 0");
  size_t n = (size_t)dims[0] * (size_t)dims[1] * (size_t)dims[2];
  uint8_t *ma = malloc(n), *mb = malloc(n);
  if (!ma || !mb) {
    free(ma), free(mb);
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "metrics: out of host memory for %zu voxels", n);
  }
  vx_status s = VX_OK;
  for (int k = 0; k < nlabels; k++) {
    float l = (float)labels[k];
    /* labels are compared after rounding: a label map read as floats holds exact integers */
    for (size_t i = 0; i < n; i++) {
      ma[i] = nearbyintf(pred[i]) == l;
      mb[i] = nearbyintf(ref[i]) == l;
    }
    dice[k] = vx_dice_masks(ma, mb, n);
    s = vx_hd95_masks(ma, mb, dims, spacing, &hd95[k]);
    if (s != VX_OK) {
      vx_errbuf_fail(errbuf, errlen, s, "metrics: HD95 of label %d failed (%s)", labels[k], vx_status_string(s));
      break;
    }
  }
  free(ma), free(mb);
  return s;
}
