/* Double-precision references for tests/test_ops_more.c; see ref_more.h. */
#include "ref/ref_more.h"

#include <math.h>
#include <string.h>

static size_t idx5(const int s[5], int n, int c, int z, int y, int x) {
  return ((((size_t)n * s[1] + c) * s[2] + z) * s[3] + y) * s[4] + x;
}

void ref_prelu(const double *x, const int xs[5], const double *a, int nslope, double *y) {
  size_t S = (size_t)xs[2] * xs[3] * xs[4];
  for (int n = 0; n < xs[0]; n++)
    for (int c = 0; c < xs[1]; c++)
      for (size_t v = 0; v < S; v++) {
        size_t i = ((size_t)n * xs[1] + c) * S + v;
        double s = a[nslope == 1 ? 0 : c];
        y[i] = x[i] > 0 ? x[i] : s * x[i];
      }
}

void ref_gelu(const double *x, size_t n, double *y) {
  for (size_t i = 0; i < n; i++) y[i] = 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)));
}

void ref_broadcast(const double *a, const int as[5], const double *b, const int bs[5], int op, double *y) {
  size_t bn = (size_t)bs[0] * bs[1] * bs[2] * bs[3] * bs[4];
  int same = !memcmp(as, bs, 5 * sizeof(int));
  int per_nc = !same && bs[0] == as[0] && bs[1] == as[1] && bs[2] * bs[3] * bs[4] == 1;
  for (int n = 0; n < as[0]; n++)
    for (int c = 0; c < as[1]; c++)
      for (int z = 0; z < as[2]; z++)
        for (int h = 0; h < as[3]; h++)
          for (int w = 0; w < as[4]; w++) {
            size_t i = idx5(as, n, c, z, h, w);
            double v = same ? b[i] : per_nc ? b[(size_t)n * as[1] + c] : bn == (size_t)as[1] ? b[c] : b[0];
            y[i] = op ? a[i] * v : a[i] + v;
          }
}

int ref_pool_out_shape(const int xs[5], const ref_pool *p, int ys[5]) {
  ys[0] = xs[0];
  ys[1] = xs[1];
  for (int a = 0; a < 3; a++) {
    int o = (xs[2 + a] + 2 * p->p[a] - p->k[a]) / p->s[a] + 1;
    if (xs[2 + a] + 2 * p->p[a] < p->k[a]) return 0;
    ys[2 + a] = o;
  }
  return 1;
}

/* Visits the in-bounds elements of window (oz, oy, ox) of channel plane xp in d, h, w order. */
static void pool_window(const double *xp, const int xs[5], const ref_pool *p, int oz, int oy, int ox, double *mx,
                        size_t *argmx, double *sum, int *count) {
  int first = 1;
  *sum = 0;
  *count = 0;
  for (int a = 0; a < p->k[0]; a++)
    for (int b = 0; b < p->k[1]; b++)
      for (int c = 0; c < p->k[2]; c++) {
        int z = oz * p->s[0] - p->p[0] + a, y = oy * p->s[1] - p->p[1] + b, x = ox * p->s[2] - p->p[2] + c;
        if (z < 0 || z >= xs[2] || y < 0 || y >= xs[3] || x < 0 || x >= xs[4]) continue;
        size_t i = ((size_t)z * xs[3] + y) * xs[4] + x;
        if (first || xp[i] > *mx) {
          *mx = xp[i];
          *argmx = i;
          first = 0;
        }
        *sum += xp[i];
        (*count)++;
      }
}

static void pool(const double *x, const int xs[5], const ref_pool *p, double *y, int is_max) {
  int ys[5];
  ref_pool_out_shape(xs, p, ys);
  size_t S = (size_t)xs[2] * xs[3] * xs[4], O = (size_t)ys[2] * ys[3] * ys[4];
  for (size_t r = 0; r < (size_t)xs[0] * xs[1]; r++)
    for (int oz = 0; oz < ys[2]; oz++)
      for (int oy = 0; oy < ys[3]; oy++)
        for (int ox = 0; ox < ys[4]; ox++) {
          double mx = 0, sum;
          size_t am = 0;
          int cnt;
          pool_window(x + r * S, xs, p, oz, oy, ox, &mx, &am, &sum, &cnt);
          double div = p->include_pad ? (double)p->k[0] * p->k[1] * p->k[2] : (double)cnt;
          y[r * O + ((size_t)oz * ys[3] + oy) * ys[4] + ox] = is_max ? mx : sum / div;
        }
}

void ref_max_pool3d(const double *x, const int xs[5], const ref_pool *p, double *y) { pool(x, xs, p, y, 1); }
void ref_avg_pool3d(const double *x, const int xs[5], const ref_pool *p, double *y) { pool(x, xs, p, y, 0); }

void ref_max_pool3d_backward(const double *x, const int xs[5], const ref_pool *p, const double *dy, double *dx) {
  int ys[5];
  ref_pool_out_shape(xs, p, ys);
  size_t S = (size_t)xs[2] * xs[3] * xs[4], O = (size_t)ys[2] * ys[3] * ys[4];
  for (size_t r = 0; r < (size_t)xs[0] * xs[1]; r++)
    for (int oz = 0; oz < ys[2]; oz++)
      for (int oy = 0; oy < ys[3]; oy++)
        for (int ox = 0; ox < ys[4]; ox++) {
          double mx = 0, sum;
          size_t am = 0;
          int cnt;
          pool_window(x + r * S, xs, p, oz, oy, ox, &mx, &am, &sum, &cnt);
          dx[r * S + am] += dy[r * O + ((size_t)oz * ys[3] + oy) * ys[4] + ox];
        }
}

/* Along one axis: output o reads i0 with weight w0 and i1 with w1 (PyTorch's formulas). */
static void taps(int mode, int o, int in, int out, double scale, int *i0, int *i1, double *w0, double *w1) {
  double r = scale > 0 ? 1.0 / scale : (double)in / out;
  if (mode == 0) {
    /* PyTorch computes the nearest source index in float: floorf(o * (float)r). */
    float rf = scale > 0 ? (float)(1.0 / scale) : (float)in / (float)out;
    int a = (int)floorf((float)o * rf);
    if (a > in - 1) a = in - 1;
    *i0 = *i1 = a;
    *w0 = 1;
    *w1 = 0;
    return;
  }
  double src = r * (o + 0.5) - 0.5;
  if (src < 0) src = 0;
  int a = (int)floor(src);
  if (a > in - 1) a = in - 1;
  *i0 = a;
  *i1 = a < in - 1 ? a + 1 : a;
  *w1 = src - a;
  *w0 = 1 - *w1;
}

void ref_interpolate(const double *x, const int xs[5], int mode, const double scale[3], double *y, const int ys[5]) {
  for (int n = 0; n < xs[0]; n++)
    for (int c = 0; c < xs[1]; c++)
      for (int oz = 0; oz < ys[2]; oz++)
        for (int oy = 0; oy < ys[3]; oy++)
          for (int ox = 0; ox < ys[4]; ox++) {
            int zi[2], yi[2], xi[2];
            double zw[2], yw[2], xw[2];
            taps(mode, oz, xs[2], ys[2], scale ? scale[0] : 0, &zi[0], &zi[1], &zw[0], &zw[1]);
            taps(mode, oy, xs[3], ys[3], scale ? scale[1] : 0, &yi[0], &yi[1], &yw[0], &yw[1]);
            taps(mode, ox, xs[4], ys[4], scale ? scale[2] : 0, &xi[0], &xi[1], &xw[0], &xw[1]);
            double s = 0;
            for (int a = 0; a < 2; a++)
              for (int b = 0; b < 2; b++)
                for (int d = 0; d < 2; d++) s += zw[a] * yw[b] * xw[d] * x[idx5(xs, n, c, zi[a], yi[b], xi[d])];
            y[idx5(ys, n, c, oz, oy, ox)] = s;
          }
}

void ref_pad(const double *x, const int xs[5], const int before[3], const int after[3], double value, double *y) {
  int ys[5] = {xs[0], xs[1], xs[2] + before[0] + after[0], xs[3] + before[1] + after[1], xs[4] + before[2] + after[2]};
  for (int n = 0; n < ys[0]; n++)
    for (int c = 0; c < ys[1]; c++)
      for (int z = 0; z < ys[2]; z++)
        for (int h = 0; h < ys[3]; h++)
          for (int w = 0; w < ys[4]; w++) {
            int zz = z - before[0], hh = h - before[1], ww = w - before[2];
            int in = zz >= 0 && zz < xs[2] && hh >= 0 && hh < xs[3] && ww >= 0 && ww < xs[4];
            y[idx5(ys, n, c, z, h, w)] = in ? x[idx5(xs, n, c, zz, hh, ww)] : value;
          }
}

void ref_crop(const double *x, const int xs[5], const int st[5], double *y, const int ys[5]) {
  for (int n = 0; n < ys[0]; n++)
    for (int c = 0; c < ys[1]; c++)
      for (int z = 0; z < ys[2]; z++)
        for (int h = 0; h < ys[3]; h++)
          for (int w = 0; w < ys[4]; w++)
            y[idx5(ys, n, c, z, h, w)] = x[idx5(xs, n + st[0], c + st[1], z + st[2], h + st[3], w + st[4])];
}

double ref_mse(const double *a, const double *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
  return s / (double)n;
}

double ref_kl(const double *mu, const double *sigma, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += mu[i] * mu[i] + sigma[i] * sigma[i] - log(sigma[i] * sigma[i]) - 1.0;
  return s / (double)n;
}
