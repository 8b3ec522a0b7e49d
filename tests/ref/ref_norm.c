/* Double-precision references of tests/ref/ref_norm.h. */
#include "ref_norm.h"

#include <math.h>

#include "ref_ops.h"

void ref_group_norm_forward(const double *x, int N, int C, size_t S, int G, const double *gamma, const double *beta,
                            double eps, int act, double slope, double *y, double *save) {
  int cpg = C / G;
  size_t len = (size_t)cpg * S;
  for (int n = 0; n < N; n++)
    for (int g = 0; g < G; g++) {
      size_t base = ((size_t)n * C + (size_t)g * cpg) * S; /* the group's channels are contiguous */
      double mean = 0.0, var = 0.0;
      for (size_t i = 0; i < len; i++) mean += x[base + i];
      mean /= (double)len;
      for (size_t i = 0; i < len; i++) var += (x[base + i] - mean) * (x[base + i] - mean);
      var /= (double)len;
      double inv = 1.0 / sqrt(var + eps);
      for (size_t i = 0; i < len; i++) {
        int c = g * cpg + (int)(i / S);
        double gm = gamma ? gamma[c] : 1.0, bt = beta ? beta[c] : 0.0;
        y[base + i] = ref_activation(act, slope, gm * (x[base + i] - mean) * inv + bt);
      }
      if (save) {
        save[2 * ((size_t)n * G + g)] = mean;
        save[2 * ((size_t)n * G + g) + 1] = inv;
      }
    }
}

void ref_batch_norm_forward(const double *x, int N, int C, size_t S, const double *gamma, const double *beta,
                            int training, double *running_mean, double *running_var, double momentum, double eps,
                            int act, double slope, double *y, double *save) {
  for (int c = 0; c < C; c++) {
    double mean, var;
    if (training) {
      double count = (double)N * (double)S;
      mean = 0.0;
      var = 0.0;
      for (int n = 0; n < N; n++)
        for (size_t i = 0; i < S; i++) mean += x[((size_t)n * C + c) * S + i];
      mean /= count;
      for (int n = 0; n < N; n++)
        for (size_t i = 0; i < S; i++) {
          double d = x[((size_t)n * C + c) * S + i] - mean;
          var += d * d;
        }
      if (running_mean) {
        running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * mean;
        running_var[c] = (1.0 - momentum) * running_var[c] + momentum * var / (count - 1.0);
      }
      var /= count;
    } else {
      mean = running_mean[c];
      var = running_var[c];
    }
    double inv = 1.0 / sqrt(var + eps), gm = gamma ? gamma[c] : 1.0, bt = beta ? beta[c] : 0.0;
    for (int n = 0; n < N; n++)
      for (size_t i = 0; i < S; i++) {
        size_t e = ((size_t)n * C + c) * S + i;
        y[e] = ref_activation(act, slope, gm * (x[e] - mean) * inv + bt);
      }
    if (save) {
      save[2 * c] = mean;
      save[2 * c + 1] = inv;
    }
  }
}

void ref_layer_norm_channels_forward(const double *x, int N, int C, size_t S, const double *gamma,
                                     const double *beta, double eps, double *y, double *save) {
  for (int n = 0; n < N; n++)
    for (size_t v = 0; v < S; v++) {
      const double *xv = x + (size_t)n * C * S + v;
      double *yv = y + (size_t)n * C * S + v;
      double mean = 0.0, var = 0.0;
      for (int c = 0; c < C; c++) mean += xv[(size_t)c * S];
      mean /= (double)C;
      for (int c = 0; c < C; c++) var += (xv[(size_t)c * S] - mean) * (xv[(size_t)c * S] - mean);
      var /= (double)C;
      double inv = 1.0 / sqrt(var + eps);
      for (int c = 0; c < C; c++)
        yv[(size_t)c * S] = (gamma ? gamma[c] : 1.0) * (xv[(size_t)c * S] - mean) * inv + (beta ? beta[c] : 0.0);
      if (save) {
        save[(size_t)n * S + v] = mean;
        save[(size_t)N * S + (size_t)n * S + v] = inv;
      }
    }
}
