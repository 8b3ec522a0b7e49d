/* Double-precision references of the research layers: see ref_research.h. */
#include "ref/ref_research.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ref_masked_norm_forward(const double *x, const double *m, const double *gamma, const double *beta, int N,
                             int C, int K, size_t S, double eps, double *y) {
  memset(y, 0, (size_t)N * C * S * sizeof(double));
  for (int n = 0; n < N; n++)
    for (int k = 0; k < K; k++) {
      const double *mk = m + ((size_t)n * K + k) * S;
      double msum = 0.0;
      for (size_t v = 0; v < S; v++) msum += mk[v];
      for (int c = 0; c < C; c++) {
        const double *xc = x + ((size_t)n * C + c) * S;
        double mu = 0.0, var = 0.0;
        for (size_t v = 0; v < S; v++) mu += mk[v] * xc[v];
        mu /= msum + eps;
        for (size_t v = 0; v < S; v++) var += mk[v] * (xc[v] - mu) * (xc[v] - mu);
        var /= msum + eps;
        double g = gamma[k * C + c], b = beta[k * C + c];
        double *yc = y + ((size_t)n * C + c) * S;
        for (size_t v = 0; v < S; v++) yc[v] += mk[v] * (g * (xc[v] - mu) / sqrt(var + eps) + b);
      }
    }
}

/* Index of x[n, c, z, y, x] in [N, C, D, H, W]. */
static size_t at5(int n, int c, int z, int y, int x, int C, int D, int H, int W) {
  return ((((size_t)n * C + c) * D + z) * H + y) * W + x;
}

static void squeeze_map(const double *src, int N, int C, int D, int H, int W, double *dst, int inverse) {
  int Dc = D / 2, Hc = H / 2, Wc = W / 2;
  for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++)
      for (int z = 0; z < D; z++)
        for (int y = 0; y < H; y++)
          for (int x = 0; x < W; x++) {
            int s = (z % 2) * 4 + (y % 2) * 2 + (x % 2);
            size_t f = at5(n, c, z, y, x, C, D, H, W);
            size_t o = at5(n, c * 8 + s, z / 2, y / 2, x / 2, 8 * C, Dc, Hc, Wc);
            if (inverse) dst[f] = src[o];
            else dst[o] = src[f];
          }
}

void ref_squeeze3d(const double *x, int N, int C, int D, int H, int W, double *y) {
  squeeze_map(x, N, C, D, H, W, y, 0);
}
void ref_unsqueeze3d(const double *y, int N, int C, int D, int H, int W, double *x) {
  squeeze_map(y, N, C, D, H, W, x, 1);
}

void ref_cayley(const double *w, int n, int haar, double *q) {
  /* Solve (I + A) X = (I - A) for X with an augmented matrix [I + A | I - A]. */
  int m = 2 * n;
  double *t = malloc((size_t)n * m * sizeof(double)), *c = malloc((size_t)n * n * sizeof(double));
  if (!t || !c) abort(); /* a few KB: a test cannot go on without them */
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double a = w[i * n + j] - w[j * n + i];
      t[i * m + j] = (i == j) + a;
      t[i * m + n + j] = (i == j) - a;
    }
  for (int k = 0; k < n; k++) {
    int p = k;
    for (int i = k + 1; i < n; i++)
      if (fabs(t[i * m + k]) > fabs(t[p * m + k])) p = i;
    for (int j = 0; j < m; j++) {
      double s = t[k * m + j];
      t[k * m + j] = t[p * m + j];
      t[p * m + j] = s;
    }
    for (int i = k + 1; i < n; i++) {
      double f = t[i * m + k] / t[k * m + k];
      for (int j = k; j < m; j++) t[i * m + j] -= f * t[k * m + j];
    }
  }
  for (int col = 0; col < n; col++) /* back substitution per right-hand side */
    for (int i = n - 1; i >= 0; i--) {
      double s = t[i * m + n + col];
      for (int j = i + 1; j < n; j++) s -= t[i * m + j] * c[j * n + col];
      c[i * n + col] = s / t[i * m + i];
    }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      if (!haar) {
        q[i * n + j] = c[i * n + j];
        continue;
      }
      double s = 0.0;
      for (int k = 0; k < n; k++) {
        int bits = i & k, par = 0;
        while (bits) { par ^= bits & 1; bits >>= 1; }
        s += (par ? -1.0 : 1.0) / sqrt(8.0) * c[k * n + j];
      }
      q[i * n + j] = s;
    }
  free(t);
  free(c);
}

void ref_ortho_down(const double *x, int N, int C, int D, int H, int W, const double *q, double *y) {
  size_t B = (size_t)(D / 2) * (H / 2) * (W / 2);
  double *sq = malloc((size_t)N * C * 8 * B * sizeof(double));
  if (!sq) abort();
  ref_squeeze3d(x, N, C, D, H, W, sq);
  for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++)
      for (int i = 0; i < 8; i++)
        for (size_t b = 0; b < B; b++) {
          double s = 0.0;
          for (int j = 0; j < 8; j++) s += q[c * 64 + i * 8 + j] * sq[(((size_t)n * C + c) * 8 + j) * B + b];
          y[(((size_t)n * C + c) * 8 + i) * B + b] = s;
        }
  free(sq);
}

void ref_ortho_up(const double *y, int N, int C, int D, int H, int W, const double *q, double *x) {
  size_t B = (size_t)(D / 2) * (H / 2) * (W / 2);
  double *sq = malloc((size_t)N * C * 8 * B * sizeof(double));
  if (!sq) abort();
  for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++)
      for (int j = 0; j < 8; j++)
        for (size_t b = 0; b < B; b++) {
          double s = 0.0;
          for (int i = 0; i < 8; i++) s += q[c * 64 + i * 8 + j] * y[(((size_t)n * C + c) * 8 + i) * B + b];
          sq[(((size_t)n * C + c) * 8 + j) * B + b] = s;
        }
  ref_unsqueeze3d(sq, N, C, D, H, W, x);
  free(sq);
}

void ref_mix(const double *x, int N, int C, size_t S, const double *q, int transpose, double *y) {
  for (int n = 0; n < N; n++)
    for (int i = 0; i < C; i++)
      for (size_t v = 0; v < S; v++) {
        double s = 0.0;
        for (int j = 0; j < C; j++)
          s += (transpose ? q[j * C + i] : q[i * C + j]) * x[((size_t)n * C + j) * S + v];
        y[((size_t)n * C + i) * S + v] = s;
      }
}
