/* 3D max and average pooling, forward and backward, over 3-D ranges (w, h, d * n * c). x: [N*C, D, H, W], y: [N*C, OD, OH, OW].
 * Geometry (KD..PW) comes as -D options. The backward is a gather: each input voxel visits the
 * few windows that cover it, so no two work-items write the same place (deterministic). The max
 * backward recomputes each window's argmax (the first maximum in d, h, w order, NaN counting as
 * the maximum) instead of storing indices. */

#ifndef KD
#define KD 2
#define KH 2
#define KW 2
#define SD 2
#define SH 2
#define SW 2
#define PD 0
#define PH 0
#define PW 0
#endif
#ifndef INCLUDE_PAD
#define INCLUDE_PAD 1
#endif

/* Index within the window of the first maximum (-1 for an empty window). */
static int window_argmax(__global const float *xp, int D, int H, int W, int oz, int oy, int ox, float *best) {
  int arg = -1;
  float m = -INFINITY;
  for (int a = 0; a < KD; a++) {
    int z = oz * SD - PD + a;
    if (z < 0 || z >= D) continue;
    for (int b = 0; b < KH; b++) {
      int yy = oy * SH - PH + b;
      if (yy < 0 || yy >= H) continue;
      for (int c = 0; c < KW; c++) {
        int xx = ox * SW - PW + c;
        if (xx < 0 || xx >= W) continue;
        float v = xp[(z * H + yy) * W + xx];
        if (arg < 0 || v > m || (isnan(v) && !isnan(m))) {
          m = v;
          arg = (z * H + yy) * W + xx;
        }
      }
    }
  }
  *best = m;
  return arg;
}

static float window_divisor(int D, int H, int W, int oz, int oy, int ox) {
#if INCLUDE_PAD
  return (float)(KD * KH * KW);
#else
  int z0 = max(oz * SD - PD, 0), z1 = min(oz * SD - PD + KD, D);
  int y0 = max(oy * SH - PH, 0), y1 = min(oy * SH - PH + KH, H);
  int x0 = max(ox * SW - PW, 0), x1 = min(ox * SW - PW + KW, W);
  return (float)((z1 - z0) * (y1 - y0) * (x1 - x0));
#endif
}

__kernel void max_pool_forward(__global const float *x, int xoff, __global float *y, int yoff, int NC, int D, int H,
                               int W, int OD, int OH, int OW) {
  int ox = get_global_id(0), oy = get_global_id(1), t = get_global_id(2);
  if (ox >= OW || oy >= OH || t >= NC * OD) return;
  int oz = t % OD, r = t / OD;
  int i = (t * OH + oy) * OW + ox;
  float m;
  window_argmax(x + xoff + (size_t)r * D * H * W, D, H, W, oz, oy, ox, &m);
  y[yoff + i] = m;
}

__kernel void avg_pool_forward(__global const float *x, int xoff, __global float *y, int yoff, int NC, int D, int H,
                               int W, int OD, int OH, int OW) {
  int ox = get_global_id(0), oy = get_global_id(1), t = get_global_id(2);
  if (ox >= OW || oy >= OH || t >= NC * OD) return;
  int oz = t % OD, r = t / OD;
  int i = (t * OH + oy) * OW + ox;
  __global const float *xp = x + xoff + (size_t)r * D * H * W;
  float s = 0.0f;
  for (int a = 0; a < KD; a++) {
    int z = oz * SD - PD + a;
    if (z < 0 || z >= D) continue;
    for (int b = 0; b < KH; b++) {
      int yy = oy * SH - PH + b;
      if (yy < 0 || yy >= H) continue;
      for (int c = 0; c < KW; c++) {
        int xx = ox * SW - PW + c;
        if (xx >= 0 && xx < W) s += xp[(z * H + yy) * W + xx];
      }
    }
  }
  y[yoff + i] = s / window_divisor(D, H, W, oz, oy, ox);
}

/* Outputs o along one axis whose window [o*s - p, o*s - p + k) holds position v. */
#define OUT_RANGE(v, K, S, P, O, lo, hi)            \
  int lo = (v) + (P) - (K) + 1;                     \
  lo = lo <= 0 ? 0 : (lo + (S) - 1) / (S);          \
  int hi = min(((v) + (P)) / (S), (O) - 1);

/* MAXP 1: max pooling (x needed), 0: average. */
__kernel void pool_backward(__global const float *x, int xoff, __global const float *dy, int dyoff,
                            __global float *dx, int dxoff, int NC, int D, int H, int W, int OD, int OH, int OW,
                            int maxp, int accumulate) {
  int px = get_global_id(0), py = get_global_id(1), t = get_global_id(2);
  if (px >= W || py >= H || t >= NC * D) return;
  int pz = t % D, r = t / D;
  int i = (t * H + py) * W + px;
  int self = (pz * H + py) * W + px;
  __global const float *xp = x + xoff + (size_t)r * D * H * W;
  __global const float *dyp = dy + dyoff + (size_t)r * OD * OH * OW;
  OUT_RANGE(pz, KD, SD, PD, OD, z0, z1)
  OUT_RANGE(py, KH, SH, PH, OH, y0, y1)
  OUT_RANGE(px, KW, SW, PW, OW, x0, x1)
  float g = 0.0f;
  for (int oz = z0; oz <= z1; oz++)
    for (int oy = y0; oy <= y1; oy++)
      for (int ox = x0; ox <= x1; ox++) {
        float d = dyp[(oz * OH + oy) * OW + ox];
        if (maxp) {
          float m;
          if (window_argmax(xp, D, H, W, oz, oy, ox, &m) == self) g += d;
        } else {
          g += d / window_divisor(D, H, W, oz, oy, ox);
        }
      }
  dx[dxoff + i] = accumulate ? dx[dxoff + i] + g : g;
}
