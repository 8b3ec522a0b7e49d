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
