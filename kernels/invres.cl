/* Elementwise pieces of the invertible networks (src/ops/invres_ops.c).
 *
 * Affine coupling, second half: st holds [s; t] (2 * count floats, s first), the log-scale is
 * bounded as tanh(s) so that exp() stays in [1/e, e] and the inverse stays well conditioned:
 *   forward  y2 = x2 * exp(tanh s) + t          (in place on x2)
 *   inverse  x2 = (y2 - t) * exp(-tanh s)       (in place on y2)
 * The backward takes the rebuilt x2 and g = dL/dy2 (in place -> dL/dx2) and writes
 * gst = [dL/ds; dL/dt]. One work-item per element: no reductions, no races. */

__kernel void affine_coupling(__global float *x, int xo, __global const float *st, int so, int count, int inverse) {
  int i = get_global_id(0);
  if (i >= count) return;
  float s = tanh(st[so + i]), t = st[so + count + i];
  float v = x[xo + i];
  x[xo + i] = inverse ? (v - t) * exp(-s) : v * exp(s) + t;
}

__kernel void affine_coupling_backward(__global const float *x, int xo, __global const float *st, int so,
                                       __global float *g, int go, __global float *gst, int gso, int count) {
  int i = get_global_id(0);
  if (i >= count) return;
  float ts = tanh(st[so + i]), e = exp(ts), gy = g[go + i];
  gst[gso + i] = gy * x[xo + i] * e * (1.0f - ts * ts);
  gst[gso + count + i] = gy;
  g[go + i] = gy * e;
}

/* softplus(x) = log(1 + exp(x)), written stably; its derivative is the logistic function. */
__kernel void softplus_forward(__global const float *x, int xo, __global float *y, int yo, int n) {
  int i = get_global_id(0);
  if (i >= n) return;
  float v = x[xo + i];
  y[yo + i] = fmax(v, 0.0f) + log1p(exp(-fabs(v)));
}

__kernel void softplus_backward(__global const float *x, int xo, __global const float *dy, int dyo,
                                __global float *dx, int dxo, int n, int accumulate) {
  int i = get_global_id(0);
  if (i >= n) return;
  float v = x[xo + i];
  float e = exp(-fabs(v));
  float sig = v >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
  float r = dy[dyo + i] * sig;
  dx[dxo + i] = accumulate ? dx[dxo + i] + r : r;
}
