/* Elementwise kernels: fill, activations, axpy, channel concat/split, softmax over channels.
 * Every buffer argument comes with an offset in floats (tensors are buffer + offset). */

#ifndef ACT
#define ACT 0 /* 0 none, 1 ReLU, 2 LeakyReLU */
#endif

__kernel void fill(__global float *x, int off, int n, float v) {
  int i = get_global_id(0);
  if (i < n) x[off + i] = v;
}

__kernel void act_forward(__global const float *x, int xoff, __global float *y, int yoff, int n, float slope) {
  int i = get_global_id(0);
  if (i >= n) return;
  float v = x[xoff + i];
#if ACT == 1
  v = fmax(v, 0.0f);
#elif ACT == 2
  v = v > 0.0f ? v : v * slope;
#endif
  y[yoff + i] = v;
}

/* Uses the forward output y: for slope > 0 its sign equals the input's. */
__kernel void act_backward(__global const float *y, int yoff, __global const float *dy, int dyoff,
                           __global float *dx, int dxoff, int n, float slope, int accumulate) {
  int i = get_global_id(0);
  if (i >= n) return;
  float g = dy[dyoff + i];
#if ACT == 1
  g = y[yoff + i] > 0.0f ? g : 0.0f;
#elif ACT == 2
  g = y[yoff + i] > 0.0f ? g : g * slope;
#endif
  dx[dxoff + i] = accumulate ? dx[dxoff + i] + g : g;
}

__kernel void axpy(float a, __global const float *x, int xoff, __global float *y, int yoff, int n) {
  int i = get_global_id(0);
  if (i < n) y[yoff + i] += a * x[xoff + i];
}

/* Copies a [N, Cs, S] block into channels [c0, c0 + Cs) of a [N, Cd, S] tensor, or back
 * (to_dst = 0), with optional accumulation into the destination. */
__kernel void copy_channels(__global float *big, int boff, int Cd, int c0,
                            __global float *small, int soff, int Cs, int S, int N,
                            int to_big, int accumulate) {
  int i = get_global_id(0);
  if (i >= N * Cs * S) return;
  int s = i % S, c = (i / S) % Cs, n = i / (S * Cs);
  int bi = boff + (n * Cd + c0 + c) * S + s;
  int si = soff + i;
  if (to_big) big[bi] = accumulate ? big[bi] + small[si] : small[si];
  else small[si] = accumulate ? small[si] + big[bi] : big[bi];
}

/* x, y: [N, C, S]; softmax over C at each (n, s). */
__kernel void softmax_channels(__global const float *x, int xoff, __global float *y, int yoff, int N, int C, int S) {
  int i = get_global_id(0);
  if (i >= N * S) return;
  int n = i / S, s = i % S;
  int base = n * C * S + s;
  float m = -INFINITY;
  for (int c = 0; c < C; c++) m = fmax(m, x[xoff + base + c * S]);
  float sum = 0.0f;
  for (int c = 0; c < C; c++) sum += exp(x[xoff + base + c * S] - m);
  float inv = 1.0f / sum;
  for (int c = 0; c < C; c++) y[yoff + base + c * S] = exp(x[xoff + base + c * S] - m) * inv;
}
