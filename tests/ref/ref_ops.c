/* Double-precision references for voxcl's ops (see ref_ops.h). Deliberately naive: each
 * definition is a direct loop nest, so that it can be read against the PyTorch docs. */
#include "ref/ref_ops.h"

#include <math.h>
#include <string.h>

size_t ref_numel(const int s[5]) { return (size_t)s[0] * s[1] * s[2] * s[3] * s[4]; }

/* Flat index of (n, c, z, y, x) in a contiguous NCDHW tensor of shape s. */
static size_t at(const int s[5], int n, int c, int z, int y, int x) {
  return ((((size_t)n * s[1] + c) * s[2] + z) * s[3] + y) * s[4] + x;
}

int ref_conv3d_out_shape(const int xs[5], const int ws[5], const ref_conv_params *p, int ys[5]) {
  int G = p->groups;
  if (G <= 0 || xs[1] % G || ws[0] % G || ws[1] * G != xs[1]) return 0;
  ys[0] = xs[0];
  ys[1] = ws[0];
  for (int i = 0; i < 3; i++) {
    int span = p->dilation[i] * (ws[2 + i] - 1) + 1;
    int o = (xs[2 + i] + 2 * p->padding[i] - span);
    if (o < 0 || p->stride[i] <= 0) return 0;
    ys[2 + i] = o / p->stride[i] + 1;
  }
  return 1;
}

int ref_conv_transpose3d_out_shape(const int xs[5], const int ws[5], const ref_conv_params *p, int ys[5]) {
  int G = p->groups;
  if (G <= 0 || xs[1] % G || ws[0] != xs[1]) return 0;
  ys[0] = xs[0];
  ys[1] = ws[1] * G;
  for (int i = 0; i < 3; i++) {
    int o = (xs[2 + i] - 1) * p->stride[i] - 2 * p->padding[i] + p->dilation[i] * (ws[2 + i] - 1) +
            p->output_padding[i] + 1;
    if (o <= 0) return 0;
    ys[2 + i] = o;
  }
  return 1;
}

void ref_conv3d_forward(const double *x, const int xs[5], const double *w, const int ws[5], const double *b,
                        const ref_conv_params *p, double *y, const int ys[5]) {
  int G = p->groups, Cg = xs[1] / G, Og = ys[1] / G;
  for (int n = 0; n < ys[0]; n++)
    for (int o = 0; o < ys[1]; o++) {
      int g = o / Og;
      for (int oz = 0; oz < ys[2]; oz++)
        for (int oy = 0; oy < ys[3]; oy++)
          for (int ox = 0; ox < ys[4]; ox++) {
            double sum = b ? b[o] : 0.0;
            for (int c = 0; c < Cg; c++)
              for (int kd = 0; kd < ws[2]; kd++) {
                int iz = oz * p->stride[0] - p->padding[0] + kd * p->dilation[0];
                if (iz < 0 || iz >= xs[2]) continue;
                for (int kh = 0; kh < ws[3]; kh++) {
                  int iy = oy * p->stride[1] - p->padding[1] + kh * p->dilation[1];
                  if (iy < 0 || iy >= xs[3]) continue;
                  for (int kw = 0; kw < ws[4]; kw++) {
                    int ix = ox * p->stride[2] - p->padding[2] + kw * p->dilation[2];
                    if (ix < 0 || ix >= xs[4]) continue;
                    sum += w[at(ws, o, c, kd, kh, kw)] * x[at(xs, n, g * Cg + c, iz, iy, ix)];
                  }
                }
              }
            y[at(ys, n, o, oz, oy, ox)] = sum;
          }
    }
}

void ref_conv_transpose3d_forward(const double *x, const int xs[5], const double *w, const int ws[5],
                                  const double *b, const ref_conv_params *p, double *y, const int ys[5]) {
  int G = p->groups, Cg = xs[1] / G, Og = ys[1] / G;
  size_t S = (size_t)ys[2] * ys[3] * ys[4];
  for (int n = 0; n < ys[0]; n++)
    for (int o = 0; o < ys[1]; o++)
      for (size_t v = 0; v < S; v++) y[((size_t)n * ys[1] + o) * S + v] = b ? b[o] : 0.0;
  for (int n = 0; n < xs[0]; n++)
    for (int c = 0; c < xs[1]; c++) {
      int g = c / Cg;
      for (int iz = 0; iz < xs[2]; iz++)
        for (int iy = 0; iy < xs[3]; iy++)
          for (int ix = 0; ix < xs[4]; ix++) {
            double xv = x[at(xs, n, c, iz, iy, ix)];
            for (int oo = 0; oo < Og; oo++)
              for (int kd = 0; kd < ws[2]; kd++) {
                int oz = iz * p->stride[0] - p->padding[0] + kd * p->dilation[0];
                if (oz < 0 || oz >= ys[2]) continue;
                for (int kh = 0; kh < ws[3]; kh++) {
                  int oy = iy * p->stride[1] - p->padding[1] + kh * p->dilation[1];
                  if (oy < 0 || oy >= ys[3]) continue;
                  for (int kw = 0; kw < ws[4]; kw++) {
                    int ox = ix * p->stride[2] - p->padding[2] + kw * p->dilation[2];
                    if (ox < 0 || ox >= ys[4]) continue;
                    y[at(ys, n, g * Og + oo, oz, oy, ox)] += xv * w[at(ws, c, oo, kd, kh, kw)];
                  }
                }
              }
          }
    }
}

double ref_activation(int act, double slope, double x) {
  if (act == REF_ACT_RELU) return x > 0.0 ? x : 0.0;
  if (act == REF_ACT_LEAKY_RELU) return x > 0.0 ? x : slope * x;
  return x;
}

void ref_activation_forward(int act, double slope, const double *x, size_t n, double *y) {
  for (size_t i = 0; i < n; i++) y[i] = ref_activation(act, slope, x[i]);
}

void ref_instance_norm_forward(const double *x, int N, int C, size_t S, const double *gamma, const double *beta,
                               double eps, int act, double slope, double *y) {
  for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++) {
      const double *xr = x + ((size_t)n * C + c) * S;
      double *yr = y + ((size_t)n * C + c) * S;
      double mean = 0.0, var = 0.0;
      for (size_t i = 0; i < S; i++) mean += xr[i];
      mean /= (double)S;
      for (size_t i = 0; i < S; i++) var += (xr[i] - mean) * (xr[i] - mean);
      var /= (double)S; /* biased, as torch.nn.InstanceNorm3d */
      double inv = 1.0 / sqrt(var + eps);
      double gm = gamma ? gamma[c] : 1.0, bt = beta ? beta[c] : 0.0;
      for (size_t i = 0; i < S; i++) yr[i] = ref_activation(act, slope, gm * (xr[i] - mean) * inv + bt);
    }
}

void ref_softmax_channels(const double *x, int N, int C, size_t S, double *y) {
  for (int n = 0; n < N; n++)
    for (size_t v = 0; v < S; v++) {
      const double *xv = x + (size_t)n * C * S + v;
      double *yv = y + (size_t)n * C * S + v;
      double m = xv[0], sum = 0.0;
      for (int c = 1; c < C; c++) m = fmax(m, xv[(size_t)c * S]);
      for (int c = 0; c < C; c++) sum += exp(xv[(size_t)c * S] - m);
      for (int c = 0; c < C; c++) yv[(size_t)c * S] = exp(xv[(size_t)c * S] - m) / sum;
    }
}

void ref_concat_channels(const double *a, int Ca, const double *b, int Cb, int N, size_t S, double *y) {
  for (int n = 0; n < N; n++) {
    memcpy(y + (size_t)n * (Ca + Cb) * S, a + (size_t)n * Ca * S, (size_t)Ca * S * sizeof(double));
    memcpy(y + ((size_t)n * (Ca + Cb) + Ca) * S, b + (size_t)n * Cb * S, (size_t)Cb * S * sizeof(double));
  }
}

double ref_loss_dice_ce(const double *logits, const double *labels, int N, int K, size_t S, double ce_weight,
                        double dice_weight, int include_background, double smooth) {
  double ce = 0.0, dice = 0.0;
  int k0 = include_background ? 0 : 1;
  for (int n = 0; n < N; n++) {
    const double *xn = logits + (size_t)n * K * S;
    const double *ln = labels + (size_t)n * S;
    for (int k = 0; k < K; k++) {
      double tp = 0.0, sp = 0.0, sy = 0.0;
      for (size_t v = 0; v < S; v++) {
        double m = xn[v], sum = 0.0;
        for (int c = 1; c < K; c++) m = fmax(m, xn[(size_t)c * S + v]);
        for (int c = 0; c < K; c++) sum += exp(xn[(size_t)c * S + v] - m);
        double p = exp(xn[(size_t)k * S + v] - m) / sum;
        double y = (int)ln[v] == k ? 1.0 : 0.0;
        tp += p * y;
        sp += p;
        sy += y;
        if (y > 0.0) ce -= log(p);
      }
      if (k >= k0) dice += 1.0 - (2.0 * tp + smooth) / (sp + sy + smooth);
    }
  }
  return ce_weight * ce / ((double)N * (double)S) + dice_weight * dice / ((double)N * (K - k0));
}

void ref_adam_step(double *p, const double *g, double *m, double *v, size_t n, int step, double lr, double beta1,
                   double beta2, double eps, double weight_decay, int decoupled) {
  double bc1 = 1.0 - pow(beta1, step), bc2 = 1.0 - pow(beta2, step);
  for (size_t i = 0; i < n; i++) {
    double gr = g[i];
    if (decoupled) p[i] *= 1.0 - lr * weight_decay;
    else gr += weight_decay * p[i];
    m[i] = beta1 * m[i] + (1.0 - beta1) * gr;
    v[i] = beta2 * v[i] + (1.0 - beta2) * gr * gr;
    /* torch: denom = sqrt(v) / sqrt(bc2) + eps; p -= lr / bc1 * m / denom */
    p[i] -= lr / bc1 * m[i] / (sqrt(v[i]) / sqrt(bc2) + eps);
  }
}

void ref_sgd_step(double *p, const double *g, double *buf, size_t n, int first_step, double lr, double momentum,
                  int nesterov, double weight_decay) {
  for (size_t i = 0; i < n; i++) {
    double d = g[i] + weight_decay * p[i];
    if (momentum != 0.0) {
      buf[i] = first_step ? d : momentum * buf[i] + d;
      d = nesterov ? d + momentum * buf[i] : buf[i];
    }
    p[i] -= lr * d;
  }
}
