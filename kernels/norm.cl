/* Instance normalisation with optional affine and a fused activation.
 * One work-group per (n, c) row; reductions in a fixed order so results repeat exactly.
 * save[2*row] = mean, save[2*row+1] = 1/sqrt(var + eps) (biased variance). */

#ifndef WG
#define WG 64
#endif
#ifndef AFFINE
#define AFFINE 1
#endif
#ifndef ACT
#define ACT 0 /* 0 none, 1 ReLU, 2 LeakyReLU */
#endif

static float wg_sum(float v, __local float *part) {
  int l = get_local_id(0);
  part[l] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int w = WG / 2; w > 0; w >>= 1) {
    if (l < w) part[l] += part[l + w];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  float r = part[0];
  barrier(CLK_LOCAL_MEM_FENCE); /* part is reused by the next call */
  return r;
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void instnorm_forward(__global const float *x, int xoff, __global const float *gamma, int goff,
                      __global const float *beta, int boff, __global float *y, int yoff,
                      __global float *save, int soff, int C, int S, float eps, float slope) {
  __local float part[WG];
  int row = get_group_id(0), l = get_local_id(0), c = row % C;
  __global const float *xr = x + xoff + (size_t)row * S;
  __global float *yr = y + yoff + (size_t)row * S;
  float s = 0.0f;
  for (int i = l; i < S; i += WG) s += xr[i];
  float mean = wg_sum(s, part) / (float)S;
  float q = 0.0f;
  for (int i = l; i < S; i += WG) { float d = xr[i] - mean; q += d * d; }
  float rstd = rsqrt(wg_sum(q, part) / (float)S + eps);
#if AFFINE
  float a = gamma[goff + c] * rstd, b = beta[boff + c] - mean * a;
#else
  float a = rstd, b = -mean * rstd;
#endif
  for (int i = l; i < S; i += WG) {
    float v = xr[i] * a + b;
#if ACT == 1
    v = fmax(v, 0.0f);
#elif ACT == 2
    v = v > 0.0f ? v : v * slope;
#endif
    yr[i] = v;
  }
  if (l == 0) { save[soff + 2 * row] = mean; save[soff + 2 * row + 1] = rstd; }
}

/* dz = dy * act'(y); per row: sdz = sum dz, sdzx = sum dz * xhat;
 * dx = rstd * gamma * (dz - sdz/S - xhat * sdzx/S). part[2*row] = sdzx (dgamma), part[2*row+1] = sdz. */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void instnorm_backward(__global const float *x, int xoff, __global const float *y, int yoff,
                       __global const float *dy, int dyoff, __global const float *gamma, int goff,
                       __global const float *save, int soff, __global float *dx, int dxoff,
                       __global float *part_out, int C, int S, float slope, int accumulate) {
  __local float part[WG];
  int row = get_group_id(0), l = get_local_id(0), c = row % C;
  size_t base = (size_t)row * S;
  float mean = save[soff + 2 * row], rstd = save[soff + 2 * row + 1];
  float s1 = 0.0f, s2 = 0.0f;
  for (int i = l; i < S; i += WG) {
    float g = dy[dyoff + base + i];
#if ACT == 1
    g = y[yoff + base + i] > 0.0f ? g : 0.0f;
#elif ACT == 2
    g = y[yoff + base + i] > 0.0f ? g : g * slope;
#endif
    s1 += g;
    s2 += g * (x[xoff + base + i] - mean) * rstd;
  }
  float sdz = wg_sum(s1, part), sdzx = wg_sum(s2, part);
#if AFFINE
  float gm = gamma[goff + c];
#else
  float gm = 1.0f;
#endif
  float k = rstd * gm, m1 = sdz / (float)S, m2 = sdzx / (float)S;
  for (int i = l; i < S; i += WG) {
    float g = dy[dyoff + base + i];
#if ACT == 1
    g = y[yoff + base + i] > 0.0f ? g : 0.0f;
#elif ACT == 2
    g = y[yoff + base + i] > 0.0f ? g : g * slope;
#endif
    float xh = (x[xoff + base + i] - mean) * rstd;
    float v = k * (g - m1 - xh * m2);
    dx[dxoff + base + i] = accumulate ? dx[dxoff + base + i] + v : v;
  }
  if (l == 0) { part_out[2 * row] = sdzx; part_out[2 * row + 1] = sdz; }
}

/* dgamma[c] (+)= sum_n part[2*(n*C+c)], dbeta[c] (+)= sum_n part[2*(n*C+c)+1]. */
__kernel void instnorm_param_grad(__global const float *part, int N, int C, __global float *dgamma, int dgoff,
                                  __global float *dbeta, int dboff, int accumulate) {
  int c = get_global_id(0);
  if (c >= C) return;
  float sg = 0.0f, sb = 0.0f;
  for (int n = 0; n < N; n++) { sg += part[2 * (n * C + c)]; sb += part[2 * (n * C + c) + 1]; }
  dgamma[dgoff + c] = accumulate ? dgamma[dgoff + c] + sg : sg;
  dbeta[dboff + c] = accumulate ? dbeta[dboff + c] + sb : sb;
}
