/* Optimiser steps over one flat parameter buffer: a single launch updates the whole model. */

__kernel void adam_step(__global float *p, int poff, __global const float *g, int goff,
                        __global float *m, int moff, __global float *v, int voff, int n,
                        float lr, float b1, float b2, float eps, float wd, int decoupled,
                        float bc1, float bc2) {
  int i = get_global_id(0);
  if (i >= n) return;
  float w = p[poff + i], gr = g[goff + i];
  if (decoupled) w -= lr * wd * w;
  else gr += wd * w;
  float mi = b1 * m[moff + i] + (1.0f - b1) * gr;
  float vi = b2 * v[voff + i] + (1.0f - b2) * gr * gr;
  m[moff + i] = mi;
  v[voff + i] = vi;
  p[poff + i] = w - lr * (mi / bc1) / (sqrt(vi / bc2) + eps);
}

__kernel void sgd_step(__global float *p, int poff, __global const float *g, int goff,
                       __global float *buf, int boff, int n, float lr, float mom, int nesterov, float wd) {
  int i = get_global_id(0);
  if (i >= n) return;
  float w = p[poff + i];
  float gr = g[goff + i] + wd * w;
  float b = mom * buf[boff + i] + gr;
  buf[boff + i] = b;
  p[poff + i] = w - lr * (nesterov ? gr + mom * b : b);
}

#ifndef WG
#define WG 64
#endif

/* Gradient clipping by global norm, stage one: work-group g sums the squares of elements
 * [g*chunk, min((g+1)*chunk, n)) in a fixed order into part_out[g] (the host adds them in
 * double: a deterministic two-stage reduction). */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void sumsq_partials(__global const float *g, int goff, int n, int chunk, __global float *part_out) {
  __local float part[WG];
  int grp = get_group_id(0), l = get_local_id(0);
  int lo = grp * chunk, hi = min(lo + chunk, n);
  float acc = 0.0f;
  for (int i = lo + l; i < hi; i += WG) {
    float v = g[goff + i];
    acc += v * v;
  }
  part[l] = acc;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int w = WG / 2; w > 0; w >>= 1) {
    if (l < w) part[l] += part[l + w];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (l == 0) part_out[grp] = part[0];
}

__kernel void scale_inplace(__global float *g, int goff, int n, float s) {
  int i = get_global_id(0);
  if (i < n) g[goff + i] *= s;
}

__kernel void clip_value(__global float *g, int goff, int n, float c) {
  int i = get_global_id(0);
  if (i >= n) return;
  float v = g[goff + i];
  if (!isnan(v)) g[goff + i] = fmin(fmax(v, -c), c); /* NaN stays NaN, as torch.clamp */
}
