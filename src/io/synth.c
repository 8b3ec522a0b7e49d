/* The demo's synthetic dataset: noisy, bias-fielded volumes with ellipsoids (class 1, bright)
 * and curved tubes (class 2, dark), so anyone can train and segment without data. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"

static double uni(uint64_t *s, double a, double b) { return a + (b - a) * vx_rng_uniform(s); }

vx_status vx_synth_case(uint64_t seed, int D, int H, int W, float *image, float *label) {
  if (D < 8 || H < 8 || W < 8 || !image || !label) return VX_ERR_INVALID_ARGUMENT;
  uint64_t rng = seed * 0x2545F4914F6CDD1DULL + 17;
  size_t n = (size_t)D * H * W;
  memset(label, 0, n * sizeof(float));
  /* ellipsoids: 1-3, random axes and rotation about z */
  int ne = 1 + (int)(vx_rng_next(&rng) % 3);
  for (int e = 0; e < ne; e++) {
    double cz = uni(&rng, 0.25, 0.75) * D, cy = uni(&rng, 0.25, 0.75) * H, cx = uni(&rng, 0.25, 0.75) * W;
    double rz = uni(&rng, 0.10, 0.22) * D, ry = uni(&rng, 0.10, 0.22) * H, rx = uni(&rng, 0.10, 0.22) * W;
    double th = uni(&rng, 0, 3.14159), c = cos(th), s = sin(th);
    for (int z = 0; z < D; z++)
      for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
          double dz = (z - cz) / rz, dy = (y - cy), dx = (x - cx);
          double u = (c * dx - s * dy) / rx, v = (s * dx + c * dy) / ry;
          if (dz * dz + u * u + v * v <= 1.0) label[((size_t)z * H + y) * W + x] = 1.0f;
        }
  }
  /* tubes: 1-2 curved paths along a random axis, radius 1.5-3 voxels, drawn over ellipsoids */
  int nt = 1 + (int)(vx_rng_next(&rng) % 2);
  for (int t = 0; t < nt; t++) {
    double r = uni(&rng, 1.6, 3.0);
    double a0 = uni(&rng, 0.3, 0.7), b0 = uni(&rng, 0.3, 0.7), amp = uni(&rng, 0.05, 0.2), fr = uni(&rng, 0.5, 2.0);
    double ph = uni(&rng, 0, 6.283);
    int axis = (int)(vx_rng_next(&rng) % 3);
    for (int z = 0; z < D; z++)
      for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
          double p[3] = {(double)z / D, (double)y / H, (double)x / W}, sz[3] = {D, H, W};
          int i1 = (axis + 1) % 3, i2 = (axis + 2) % 3;
          double tt = p[axis];
          double c1 = (a0 + amp * sin(6.283 * fr * tt + ph)) * sz[i1];
          double c2 = (b0 + amp * cos(6.283 * fr * tt + ph)) * sz[i2];
          double d1 = p[i1] * sz[i1] - c1, d2 = p[i2] * sz[i2] - c2;
          if (d1 * d1 + d2 * d2 <= r * r) label[((size_t)z * H + y) * W + x] = 2.0f;
        }
  }
  /* intensities, a smooth multiplicative bias field, Gaussian noise */
  double gain = uni(&rng, 0.8, 1.2), off = uni(&rng, -0.2, 0.2), noise = uni(&rng, 0.25, 0.4);
  double bz = uni(&rng, -0.25, 0.25), by = uni(&rng, -0.25, 0.25), bx = uni(&rng, -0.25, 0.25);
  for (int z = 0; z < D; z++)
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++) {
        size_t i = ((size_t)z * H + y) * W + x;
        double base = label[i] == 1.0f ? 1.0 : label[i] == 2.0f ? -1.0 : 0.0;
        double bias = 1.0 + bz * (2.0 * z / D - 1) + by * (2.0 * y / H - 1) + bx * (2.0 * x / W - 1);
        image[i] = (float)(gain * bias * (base + 0.5) + off + noise * vx_rng_normal(&rng));
      }
  return VX_OK;
}
