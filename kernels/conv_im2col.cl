/* im2col / col2im for 3D convolution over a chunk of output voxels, plus bias kernels.
 * The kernel geometry is compile-time (-D) so the K-loops unroll; sizes are run-time arguments
 * so one program serves every layer with the same kernel, stride, padding and dilation.
 *
 * col: [Cg * KD*KH*KW, nv] for output voxels [v0, v0 + nv) of one sample and one group;
 * row r = c*K3 + (kd*KH + kh)*KW + kw. */

#ifndef KD
#define KD 3
#endif
#ifndef KH
#define KH 3
#endif
#ifndef KW
#define KW 3
#endif
#ifndef SD
#define SD 1
#endif
#ifndef SH
#define SH 1
#endif
#ifndef SW
#define SW 1
#endif
#ifndef PD
#define PD 1
#endif
#ifndef PH
#define PH 1
#endif
#ifndef PW
#define PW 1
#endif
#ifndef DD
#define DD 1
#endif
#ifndef DH
#define DH 1
#endif
#ifndef DW
#define DW 1
#endif
#define K3 (KD * KH * KW)

/* global: (nv, Cg). x points at channel 0 of this sample's group (xoff). */
__kernel void im2col(__global const float *x, int xoff, int D, int H, int W,
                     int OH, int OW, int v0, int nv, __global float *col, int coloff) {
  int j = get_global_id(0), c = get_global_id(1);
  if (j >= nv) return;
  int o = v0 + j;
  int ox = o % OW, oy = (o / OW) % OH, oz = o / (OW * OH);
  __global const float *xc = x + xoff + (size_t)c * D * H * W;
  __global float *dst = col + coloff + (size_t)c * K3 * nv + j;
  for (int kd = 0; kd < KD; kd++) {
    int iz = oz * SD - PD + kd * DD;
    for (int kh = 0; kh < KH; kh++) {
      int iy = oy * SH - PH + kh * DH;
      for (int kw = 0; kw < KW; kw++) {
        int ix = ox * SW - PW + kw * DW;
        float v = 0.0f;
        if (iz >= 0 && iz < D && iy >= 0 && iy < H && ix >= 0 && ix < W) v = xc[(iz * H + iy) * W + ix];
        dst[(size_t)((kd * KH + kh) * KW + kw) * nv] = v;
      }
    }
  }
}

/* Gathers col back into dx (always accumulating: the caller zeroes dx first when needed).
 * global: (W*H*nz, Cg) over input z-slices [z0, z0 + nz). */
__kernel void col2im(__global float *dx, int dxoff, int D, int H, int W, int OD, int OH, int OW,
                     int v0, int nv, int z0, int nz, __global const float *col, int coloff) {
  int i = get_global_id(0), c = get_global_id(1);
  if (i >= W * H * nz) return;
  int ix = i % W, iy = (i / W) % H, iz = z0 + i / (W * H);
  __global const float *cc = col + coloff + (size_t)c * K3 * nv;
  float sum = 0.0f;
  for (int kd = 0; kd < KD; kd++) {
    int tz = iz + PD - kd * DD;
    if (tz < 0 || tz % SD) continue;
    int oz = tz / SD;
    if (oz >= OD) continue;
    for (int kh = 0; kh < KH; kh++) {
      int ty = iy + PH - kh * DH;
      if (ty < 0 || ty % SH) continue;
      int oy = ty / SH;
      if (oy >= OH) continue;
      for (int kw = 0; kw < KW; kw++) {
        int tx = ix + PW - kw * DW;
        if (tx < 0 || tx % SW) continue;
        int ox = tx / SW;
        if (ox >= OW) continue;
        int o = (oz * OH + oy) * OW + ox - v0;
        if (o >= 0 && o < nv) sum += cc[(size_t)((kd * KH + kh) * KW + kw) * nv + o];
      }
    }
  }
  dx[dxoff + ((size_t)c * D + iz) * H * W + iy * W + ix] += sum;
}

/* y[n, c, s] += b[c] over [N, C, S]. */
__kernel void bias_add(__global float *y, int yoff, __global const float *b, int boff, int C, int S, int total) {
  int i = get_global_id(0);
  if (i < total) y[yoff + i] += b[boff + (i / S) % C];
}

#ifndef RED_WG
#define RED_WG 64
#endif
/* db[c] (+)= sum over n, s of dy[n, c, s]; one work-group per channel, a fixed order, so the
 * result is the same on every run. */
__kernel __attribute__((reqd_work_group_size(RED_WG, 1, 1)))
void bias_grad(__global const float *dy, int dyoff, int N, int C, int S, __global float *db, int dboff,
               int accumulate) {
  __local float part[RED_WG];
  int c = get_group_id(0), l = get_local_id(0);
  float s = 0.0f;
  for (int n = 0; n < N; n++) {
    __global const float *p = dy + dyoff + ((size_t)n * C + c) * S;
    for (int i = l; i < S; i += RED_WG) s += p[i];
  }
  part[l] = s;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int w = RED_WG / 2; w > 0; w >>= 1) {
    if (l < w) part[l] += part[l + w];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (l == 0) db[dboff + c] = accumulate ? db[dboff + c] + part[0] : part[0];
}
