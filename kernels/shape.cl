/* Box copies between a big and a small 5-D tensor: the small one sits at (s0..s4) inside the
 * big one. Constant padding, crop/slice and channel split are all such boxes. Every buffer
 * comes with an offset in floats. */

/* small[i] (+)= big[start + coords(i)] over the small tensor. */
__kernel void box_gather(__global const float *big, int boff, int B1, int B2, int B3, int B4,
                         __global float *small, int soff, int N, int C, int D, int H, int W,
                         int s0, int s1, int s2, int s3, int s4, int accumulate) {
  int i = get_global_id(0);
  if (i >= N * C * D * H * W) return;
  int x = i % W, y = (i / W) % H, z = (i / (W * H)) % D, c = (i / (W * H * D)) % C, n = i / (W * H * D * C);
  int j = (((n + s0) * B1 + c + s1) * B2 + z + s2) * B3 + y + s3;
  float v = big[boff + j * B4 + x + s4];
  small[soff + i] = accumulate ? small[soff + i] + v : v;
}

/* Over the big tensor: inside the box big (+)= small; outside, with fill != 0, big = value (or
 * left alone when accumulating), else left alone. */
__kernel void box_place(__global float *big, int boff, int B0, int B1, int B2, int B3, int B4,
                        __global const float *small, int soff, int C, int D, int H, int W, int Nn,
                        int s0, int s1, int s2, int s3, int s4, float value, int fill, int accumulate) {
  int j = get_global_id(0);
  if (j >= B0 * B1 * B2 * B3 * B4) return;
  int x = j % B4 - s4, y = (j / B4) % B3 - s3, z = (j / (B4 * B3)) % B2 - s2, c = (j / (B4 * B3 * B2)) % B1 - s1,
      n = j / (B4 * B3 * B2 * B1) - s0;
  int inside = n >= 0 && n < Nn && c >= 0 && c < C && z >= 0 && z < D && y >= 0 && y < H && x >= 0 && x < W;
  if (inside) {
    float v = small[soff + (((n * C + c) * D + z) * H + y) * W + x];
    big[boff + j] = accumulate ? big[boff + j] + v : v;
  } else if (fill && !accumulate) {
    big[boff + j] = value;
  }
}
