/* DualNorm's SPADE modulation, elementwise over n values (every buffer with an offset in
 * floats): y = xhat * (1 + g) + b, and its backward dxhat = dy * (1 + g), dg = dy * xhat
 * (db = dy needs no kernel). */

__kernel void dn_modulate(__global const float *xh, int xo, __global const float *g, int go, __global const float *b,
                          int bo, __global float *y, int yo, int n) {
  int i = get_global_id(0);
  if (i >= n) return;
  y[yo + i] = xh[xo + i] * (1.0f + g[go + i]) + b[bo + i];
}

__kernel void dn_modulate_backward(__global const float *xh, int xo, __global const float *g, int go,
                                   __global const float *dy, int dyo, __global float *dxh, int dxo, __global float *dg,
                                   int dgo, int n) {
  int i = get_global_id(0);
  if (i >= n) return;
  float d = dy[dyo + i];
  dxh[dxo + i] = d * (1.0f + g[go + i]);
  dg[dgo + i] = d * xh[xo + i];
}
