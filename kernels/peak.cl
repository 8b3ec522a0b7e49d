/* Peak measurement: an FMA-bound kernel (8 independent float16 FMA chains per work-item) and a
 * bandwidth-bound copy. Their rates are the denominators of every "fraction of peak". */

#ifndef ITERS
#define ITERS 1024
#endif

__kernel void peak_fma(__global float *out, float a, float b) {
  int i = get_global_id(0);
  float16 x0 = (float16)(i), x1 = x0 + 1.0f, x2 = x0 + 2.0f, x3 = x0 + 3.0f;
  float16 x4 = x0 + 4.0f, x5 = x0 + 5.0f, x6 = x0 + 6.0f, x7 = x0 + 7.0f;
  for (int k = 0; k < ITERS; k++) {
    x0 = fma(x0, a, b); x1 = fma(x1, a, b); x2 = fma(x2, a, b); x3 = fma(x3, a, b);
    x4 = fma(x4, a, b); x5 = fma(x5, a, b); x6 = fma(x6, a, b); x7 = fma(x7, a, b);
  }
  float16 s = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7));
  out[i] = s.s0 + s.s5 + s.sa + s.sf; /* keeps every chain alive */
}

__kernel void peak_copy(__global const float16 *src, __global float16 *dst, int n) {
  int i = get_global_id(0);
  if (i < n) dst[i] = src[i];
}
