/* Activations with their own parameters or curvature: PReLU (per-channel slope), GELU (erf
 * form), and the softmax backward. x, y, dy, dx: [N, C, S] with S = D*H*W; every buffer comes
 * with an offset in floats. */

#ifndef WG
#define WG 64
#endif

/* slope: [C] (nslope = C) or one value (nslope = 1). */
__kernel void prelu_forward(__global const float *x, int xoff, __global const float *a, int aoff, int nslope,
                            __global float *y, int yoff, int n, int C, int S) {
  int i = get_global_id(0);
  if (i >= n) return;
  float v = x[xoff + i];
  float s = a[aoff + (nslope == 1 ? 0 : (i / S) % C)];
  y[yoff + i] = v > 0.0f ? v : s * v;
}

__kernel void prelu_backward_data(__global const float *x, int xoff, __global const float *a, int aoff, int nslope,
                                  __global const float *dy, int dyoff, __global float *dx, int dxoff, int n, int C,
                                  int S, int accumulate) {
  int i = get_global_id(0);
  if (i >= n) return;
  float s = a[aoff + (nslope == 1 ? 0 : (i / S) % C)];
  float g = x[xoff + i] > 0.0f ? dy[dyoff + i] : s * dy[dyoff + i];
  dx[dxoff + i] = accumulate ? dx[dxoff + i] + g : g;
}

/* One work-group per slope: da[r] = sum over its elements with x <= 0 of dy * x, each work-item
 * summing a fixed strided subset, then a fixed tree: the same order on every run. */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void prelu_backward_slope(__global const float *x, int xoff, __global const float *dy, int dyoff, int N, int C,
                          int S, int nslope, __global float *da, int daoff, int accumulate) {
  __local float part[WG];
  int r = get_group_id(0), l = get_local_id(0);
  int per_n = nslope == 1 ? C * S : S; /* elements of one sample that belong to slope r */
  int m = N * per_n;
  float acc = 0.0f;
  for (int j = l; j < m; j += WG) {
    int nn = j / per_n, k = j % per_n;
    int idx = nslope == 1 ? nn * C * S + k : (nn * C + r) * S + k;
    float v = x[xoff + idx];
    if (v <= 0.0f) acc += dy[dyoff + idx] * v;
  }
  part[l] = acc;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int w = WG / 2; w > 0; w >>= 1) {
    if (l < w) part[l] += part[l + w];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (l == 0) da[daoff + r] = accumulate ? da[daoff + r] + part[0] : part[0];
}

/* GELU, erf form (torch's default approximate='none'): y = x * Phi(x). */
__kernel void gelu_forward(__global const float *x, int xoff, __global float *y, int yoff, int n) {
  int i = get_global_id(0);
  if (i >= n) return;
  float v = x[xoff + i];
  y[yoff + i] = 0.5f * v * (1.0f + erf(v * M_SQRT1_2_F));
}

/* dy/dx = Phi(x) + x * phi(x). */
__kernel void gelu_backward(__global const float *x, int xoff, __global const float *dy, int dyoff,
                            __global float *dx, int dxoff, int n, int accumulate) {
  int i = get_global_id(0);
  if (i >= n) return;
  float v = x[xoff + i];
  float d = 0.5f * (1.0f + erf(v * M_SQRT1_2_F)) + v * exp(-0.5f * v * v) * (0.5f * M_2_SQRTPI_F * M_SQRT1_2_F);
  float g = dy[dyoff + i] * d;
  dx[dxoff + i] = accumulate ? dx[dxoff + i] + g : g;
}

/* Softmax over channels, backward from the output y: dx = y * (dy - sum_c y_c dy_c). */
__kernel void softmax_backward(__global const float *y, int yoff, __global const float *dy, int dyoff,
                               __global float *dx, int dxoff, int N, int C, int S, int accumulate) {
  int i = get_global_id(0);
  if (i >= N * S) return;
  int n = i / S, s = i % S;
  int base = n * C * S + s;
  float dotv = 0.0f;
  for (int c = 0; c < C; c++) dotv += y[yoff + base + c * S] * dy[dyoff + base + c * S];
  for (int c = 0; c < C; c++) {
    int k = base + c * S;
    float g = y[yoff + k] * (dy[dyoff + k] - dotv);
    dx[dxoff + k] = accumulate ? dx[dxoff + k] + g : g;
  }
}
