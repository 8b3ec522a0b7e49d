/* Double-precision references for the ops of tests/test_ops_more.c (activations, broadcasting,
 * pooling, resizing, padding/cropping, MSE/KL, gradient clipping), written from the
 * definitions (PyTorch semantics) with one plain loop nest each and nothing shared with the
 * library. Shapes are int[5] NCDHW. */
#ifndef VOXCL_REF_MORE_H
#define VOXCL_REF_MORE_H

#include <stddef.h>

/* y = x > 0 ? x : a[c] * x; nslope 1: one slope for all channels. */
void ref_prelu(const double *x, const int xs[5], const double *a, int nslope, double *y);
/* y = 0.5 x (1 + erf(x / sqrt 2)). */
void ref_gelu(const double *x, size_t n, double *y);
/* y = a op b (op 0 add, 1 mul) with b broadcast by shape bs: a's shape, [N, C, 1, 1, 1], C values or
 * one value (the rule of vx_add_broadcast). */
void ref_broadcast(const double *a, const int as[5], const double *b, const int bs[5], int op, double *y);

typedef struct {
  int k[3], s[3], p[3];
  int include_pad;
} ref_pool;
int ref_pool_out_shape(const int xs[5], const ref_pool *p, int ys[5]);
/* Max over each window's in-bounds elements; avg: sum / (k^3, or the in-bounds count). */
void ref_max_pool3d(const double *x, const int xs[5], const ref_pool *p, double *y);
void ref_avg_pool3d(const double *x, const int xs[5], const ref_pool *p, double *y);
/* dx: each dy goes to the first maximum of its window (d, h, w order), added. */
void ref_max_pool3d_backward(const double *x, const int xs[5], const ref_pool *p, const double *dy, double *dx);

/* interpolate, align_corners False; scale[a] > 0: step 1/scale, else in/out. mode 0 nearest, 1
 * trilinear. ys gives the output size. */
void ref_interpolate(const double *x, const int xs[5], int mode, const double scale[3], double *y, const int ys[5]);

/* y = constant pad of x by before/after along D, H, W. */
void ref_pad(const double *x, const int xs[5], const int before[3], const int after[3], double value, double *y);
/* y = the box of x at start with shape ys. */
void ref_crop(const double *x, const int xs[5], const int start[5], double *y, const int ys[5]);

double ref_mse(const double *a, const double *b, size_t n);
/* mean(mu^2 + sigma^2 - log sigma^2 - 1). */
double ref_kl(const double *mu, const double *sigma, size_t n);

#endif
