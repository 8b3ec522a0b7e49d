/* See ref_dualnorm.h. */
#include "ref/ref_dualnorm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref_more.h"
#include "ref/ref_norm.h"
#include "ref/ref_ops.h"
#include "ref/ref_research.h"

static double *resized(const double *m, const int ms[5], const int xs[5], int out_s[5]) {
  out_s[0] = ms[0], out_s[1] = ms[1], out_s[2] = xs[2], out_s[3] = xs[3], out_s[4] = xs[4];
  double *r = malloc(ref_numel(out_s) * sizeof *r);
  ref_interpolate(m, ms, 1, NULL, r, out_s);
  return r;
}

void ref_dualnorm_spade(const double *x, const int xs[5], const double *m, const int ms[5], int hidden, int flat,
                        const double *ws, const double *bs, const double *wg, const double *bg, const double *wb,
                        const double *bb, double eps, double *y) {
  int N = xs[0], C = xs[1], K = ms[1], kd = flat ? 1 : 3;
  size_t S = (size_t)xs[2] * xs[3] * xs[4], n = ref_numel(xs);
  int rs[5];
  double *mr = resized(m, ms, xs, rs);
  double *xh = malloc(n * sizeof *xh), *g = malloc(n * sizeof *g), *b = malloc(n * sizeof *b);
  int hs[5] = {N, hidden, xs[2], xs[3], xs[4]};
  double *h = malloc(ref_numel(hs) * sizeof *h);
  ref_batch_norm_forward(x, N, C, S, NULL, NULL, 1, NULL, NULL, 0.1, eps, REF_ACT_NONE, 0.0, xh, NULL);
  ref_conv_params p;
  memset(&p, 0, sizeof p);
  for (int a = 0; a < 3; a++) p.stride[a] = 1, p.padding[a] = 1, p.dilation[a] = 1;
  if (flat) p.padding[0] = 0;
  p.groups = 1;
  int w1s[5] = {hidden, K, kd, 3, 3}, w2s[5] = {C, hidden, kd, 3, 3};
  ref_conv3d_forward(mr, rs, ws, w1s, bs, &p, h, hs);
  ref_activation_forward(REF_ACT_RELU, 0.0, h, ref_numel(hs), h);
  ref_conv3d_forward(h, hs, wg, w2s, bg, &p, g, xs);
  ref_conv3d_forward(h, hs, wb, w2s, bb, &p, b, xs);
  for (size_t i = 0; i < n; i++) y[i] = xh[i] * (1.0 + g[i]) + b[i];
  free(mr), free(xh), free(g), free(b), free(h);
}

void ref_dualnorm_masked(const double *x, const int xs[5], const double *m, const int ms[5], const double *gamma,
                         const double *beta, double eps, double *y) {
  int rs[5];
  double *mr = resized(m, ms, xs, rs);
  ref_masked_norm_forward(x, mr, gamma, beta, xs[0], xs[1], ms[1], (size_t)xs[2] * xs[3] * xs[4], eps, y);
  free(mr);
}

void ref_acnorm_similarity(const double *gs, const double *bs, const double *gt, const double *bt, int C, double eps,
                           double *S) {
  for (int i = 0; i < C; i++) {
    double yt = bt[i] / (fabs(gt[i]) + eps), z = 0.0;
    for (int j = 0; j < C; j++) z += exp(-fabs(yt - bs[j] / (fabs(gs[j]) + eps)));
    for (int j = 0; j < C; j++) S[i * C + j] = exp(-fabs(yt - bs[j] / (fabs(gs[j]) + eps))) / z;
    double d = S[i * C + i];
    for (int j = 0; j < C; j++)
      if (S[i * C + j] < d) S[i * C + j] = 0.0;
  }
}

void ref_acnorm_forward(const double *x, int N, int C, size_t S, const double *gs, const double *bs, const double *gt,
                        const double *bt, const double *S_fixed, double eps, int act, double *y) {
  double *Sm = malloc((size_t)C * C * sizeof *Sm), *g = malloc((size_t)C * sizeof *g), *b = malloc((size_t)C * sizeof *b);
  if (S_fixed) memcpy(Sm, S_fixed, (size_t)C * C * sizeof *Sm);
  else ref_acnorm_similarity(gs, bs, gt, bt, C, eps, Sm);
  for (int i = 0; i < C; i++) {
    g[i] = gt[i], b[i] = bt[i];
    for (int j = 0; j < C; j++) g[i] += Sm[i * C + j] * gt[j], b[i] += Sm[i * C + j] * bt[j];
  }
  ref_batch_norm_forward(x, N, C, S, g, b, 1, NULL, NULL, 0.1, eps, act, 0.0, y, NULL);
  free(Sm), free(g), free(b);
}
