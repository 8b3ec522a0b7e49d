/* 3D squeeze (pixel unshuffle 2x2x2) and its exact inverse.
 * fine: [N, C, D, H, W]; coarse: [N, 8C, D/2, H/2, W/2];
 *   coarse[n, c*8 + dz*4 + dy*2 + dx, z, y, x] = fine[n, c, 2z+dz, 2y+dy, 2x+dx]
 * (PyTorch's pixel_unshuffle channel order, generalised to three axes).
 * One work-item per coarse element; to_fine = 1 copies coarse -> fine (unsqueeze). A bijection,
 * so accumulate needs no synchronisation. */

__kernel void squeeze3d(__global const float *src, int soff, __global float *dst, int doff, int total, int Dc,
                        int Hc, int Wc, int to_fine, int accumulate) {
  int i = get_global_id(0);
  if (i >= total) return;
  int x = i % Wc, t = i / Wc;
  int y = t % Hc;
  t /= Hc;
  int z = t % Dc;
  t /= Dc;
  int nc = t / 8, s = t % 8; /* t = (n*C + c)*8 + s */
  int dz = s >> 2, dy = (s >> 1) & 1, dx = s & 1;
  int H = 2 * Hc, W = 2 * Wc, D = 2 * Dc;
  size_t f = (((size_t)nc * D + 2 * z + dz) * H + 2 * y + dy) * W + 2 * x + dx;
  size_t o = to_fine ? f : (size_t)i, r = to_fine ? (size_t)i : f;
  float v = src[soff + r];
  dst[doff + o] = accumulate ? dst[doff + o] + v : v;
}
