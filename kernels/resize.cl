/* Nearest and trilinear resizing of [N*C, D, H, W] to [N*C, OD, OH, OW], as
 * torch.nn.functional.interpolate with align_corners=False. r* = input/output step along each
 * axis (1/scale_factor when a scale is given, else in/out). TRILINEAR 0: nearest.
 * The backward is a gather: each input voxel sums the outputs that read it, with the same
 * per-axis weights the forward uses (recomputed), so there are no atomics. */

#ifndef TRILINEAR
#define TRILINEAR 1
#endif

/* Along one axis: output o reads inputs i0 (weight l0) and i1 (weight l1). */
static void axis_taps(int o, int in, float r, int *i0, int *i1, float *l0, float *l1) {
#if TRILINEAR
  float src = r * ((float)o + 0.5f) - 0.5f;
  if (src < 0.0f) src = 0.0f;
  int a = (int)src;
  if (a > in - 1) a = in - 1;
  *i0 = a;
  *i1 = a + (a < in - 1 ? 1 : 0);
  *l1 = src - (float)a;
  *l0 = 1.0f - *l1;
#else
  int a = (int)((float)o * r); /* o * r >= 0: truncation is floor, and much cheaper than floor() on some CPUs */
  if (a > in - 1) a = in - 1;
  *i0 = a;
  *i1 = a;
  *l0 = 1.0f;
  *l1 = 0.0f;
#endif
}

static float axis_weight(int o, int i, int in, float r) {
  int i0, i1;
  float l0, l1;
  axis_taps(o, in, r, &i0, &i1, &l0, &l1);
  return (i0 == i ? l0 : 0.0f) + (i1 == i ? l1 : 0.0f);
}

__kernel void resize_forward(__global const float *x, int xoff, __global float *y, int yoff, int NC, int D, int H,
                             int W, int OD, int OH, int OW, float rd, float rh, float rw) {
  int ox = get_global_id(0), oy = get_global_id(1), t = get_global_id(2);
  if (ox >= OW || oy >= OH || t >= NC * OD) return;
  int oz = t % OD, r = t / OD;
  int i = (t * OH + oy) * OW + ox;
  __global const float *xp = x + xoff + (size_t)r * D * H * W;
  int z[2], yy[2], xx[2];
  float wz[2], wy[2], wx[2];
  axis_taps(oz, D, rd, &z[0], &z[1], &wz[0], &wz[1]);
  axis_taps(oy, H, rh, &yy[0], &yy[1], &wy[0], &wy[1]);
  axis_taps(ox, W, rw, &xx[0], &xx[1], &wx[0], &wx[1]);
#if TRILINEAR
  float s = 0.0f;
  for (int a = 0; a < 2; a++)
    for (int b = 0; b < 2; b++)
      for (int c = 0; c < 2; c++) s += wz[a] * wy[b] * wx[c] * xp[(z[a] * H + yy[b]) * W + xx[c]];
  y[yoff + i] = s;
#else
  y[yoff + i] = xp[(z[0] * H + yy[0]) * W + xx[0]];
#endif
}

/* The outputs along one axis that can read input v: a range with a margin of one on each side
 * (the exact weight decides). */
static void out_range(int v, int in, int out, float r, int *lo, int *hi) {
#if TRILINEAR
  int a = (int)floor(((float)v - 0.5f) / r - 0.5f) - 1;
  int b = (int)ceil(((float)v + 1.5f) / r - 0.5f) + 1;
#else
  int a = (int)floor((float)v / r) - 1;
  int b = (int)ceil((float)(v + 1) / r) + 1;
#endif
  if (v == 0 || a < 0) a = 0;
  if (v == in - 1 || b > out - 1) b = out - 1;
  *lo = a;
  *hi = b;
}

__kernel void resize_backward(__global const float *dy, int dyoff, __global float *dx, int dxoff, int NC, int D,
                              int H, int W, int OD, int OH, int OW, float rd, float rh, float rw, int accumulate) {
  int px = get_global_id(0), py = get_global_id(1), t = get_global_id(2);
  if (px >= W || py >= H || t >= NC * D) return;
  int pz = t % D, r = t / D;
  int i = (t * H + py) * W + px;
  __global const float *dyp = dy + dyoff + (size_t)r * OD * OH * OW;
  int z0, z1, y0, y1, x0, x1;
  out_range(pz, D, OD, rd, &z0, &z1);
  out_range(py, H, OH, rh, &y0, &y1);
  out_range(px, W, OW, rw, &x0, &x1);
  float g = 0.0f;
  for (int oz = z0; oz <= z1; oz++) {
    float wz = axis_weight(oz, pz, D, rd);
    if (wz == 0.0f) continue;
    for (int oy = y0; oy <= y1; oy++) {
      float wy = axis_weight(oy, py, H, rh);
      if (wy == 0.0f) continue;
      for (int ox = x0; ox <= x1; ox++) {
        float wx = axis_weight(ox, px, W, rw);
        if (wx != 0.0f) g += wz * wy * wx * dyp[(oz * OH + oy) * OW + ox];
      }
    }
  }
  dx[dxoff + i] = accumulate ? dx[dxoff + i] + g : g;
}

/* Separable backward, one axis at a time: src [A, Lo, B] (the gradient at the output size along
 * this axis) gives dst [A, Li, B] (at the input size). Three passes (W, H, then D) make the
 * whole backward with ~4 taps per element and pass instead of the full 3-D gather; the last
 * pass may accumulate. */
__kernel void resize_backward_axis(__global const float *src, int soff, __global float *dst, int doff, int A, int Li,
                                   int Lo, int B, float r, int accumulate) {
  int b = get_global_id(0), v = get_global_id(1), a = get_global_id(2);
  if (b >= B || v >= Li || a >= A) return;
  int lo, hi;
  out_range(v, Li, Lo, r, &lo, &hi);
  __global const float *sp = src + soff + (size_t)a * Lo * B + b;
  float g = 0.0f;
  for (int o = lo; o <= hi; o++) {
    float w = axis_weight(o, v, Li, r);
    if (w != 0.0f) g += w * sp[(size_t)o * B];
  }
  int k = doff + (a * Li + v) * B + b;
  dst[k] = accumulate ? dst[k] + g : g;
}
