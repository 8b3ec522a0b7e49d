/* Learned orthogonal transforms of invertible networks.
 *
 * Down/up sampling: per channel c an orthogonal 8x8 matrix Q_c (q: [C, 8, 8], row-major) acts on
 * the 8 sub-voxels j = dz*4 + dy*2 + dx of each 2x2x2 block:
 *   ortho_down: coarse[n, c*8 + i, b] (+)= sum_j Q_c[i][j] fine[n, c, sub-voxel j of b]
 *   ortho_up:   fine[n, c, sub-voxel j of b] (+)= sum_i Q_c[i][j] coarse[n, c*8 + i, b]   (Q^T)
 * ortho_dq: G_c[i][j] = sum_{n, b} coarse[n, c*8+i, b] * fine[n, c, j of b]  (dL/dQ).
 *
 * Channel mixing (1x1x1): q: [C, C];
 *   mix_apply: dst[n, i, v] (+)= sum_j M[i][j] src[n, j, v], M = Q or (transpose) Q^T
 *   mix_dq:    G[i][j] = sum_{n, v} a[n, i, v] * b[n, j, v]
 * Reductions run in a fixed order (no atomics): results repeat bitwise. */

#ifndef WG
#define WG 64
#endif

/* One work-item per (n, c, block). */
__kernel void ortho_down(__global const float *fine, int foff, __global const float *q, int qoff,
                         __global float *coarse, int coff, int NC, int C, int Dc, int Hc, int Wc, int accumulate) {
  int i = get_global_id(0);
  int B = Dc * Hc * Wc;
  if (i >= NC * B) return;
  int nc = i / B, b = i % B, c = nc % C;
  int x = b % Wc, y = (b / Wc) % Hc, z = b / (Wc * Hc);
  int H = 2 * Hc, W = 2 * Wc, D = 2 * Dc;
  float v[8];
  for (int j = 0; j < 8; j++) {
    int dz = j >> 2, dy = (j >> 1) & 1, dx = j & 1;
    v[j] = fine[foff + (((size_t)nc * D + 2 * z + dz) * H + 2 * y + dy) * W + 2 * x + dx];
  }
  __global const float *m = q + qoff + c * 64;
  for (int r = 0; r < 8; r++) {
    float s = 0.0f;
    for (int j = 0; j < 8; j++) s += m[r * 8 + j] * v[j];
    size_t o = coff + ((size_t)nc * 8 + r) * B + b;
    coarse[o] = accumulate ? coarse[o] + s : s;
  }
}

__kernel void ortho_up(__global const float *coarse, int coff, __global const float *q, int qoff,
                       __global float *fine, int foff, int NC, int C, int Dc, int Hc, int Wc, int accumulate) {
  int i = get_global_id(0);
  int B = Dc * Hc * Wc;
  if (i >= NC * B) return;
  int nc = i / B, b = i % B, c = nc % C;
  int x = b % Wc, y = (b / Wc) % Hc, z = b / (Wc * Hc);
  int H = 2 * Hc, W = 2 * Wc, D = 2 * Dc;
  float v[8];
  for (int r = 0; r < 8; r++) v[r] = coarse[coff + ((size_t)nc * 8 + r) * B + b];
  __global const float *m = q + qoff + c * 64;
  for (int j = 0; j < 8; j++) {
    float s = 0.0f;
    for (int r = 0; r < 8; r++) s += m[r * 8 + j] * v[r];
    int dz = j >> 2, dy = (j >> 1) & 1, dx = j & 1;
    size_t o = foff + (((size_t)nc * D + 2 * z + dz) * H + 2 * y + dy) * W + 2 * x + dx;
    fine[o] = accumulate ? fine[o] + s : s;
  }
}

/* One work-group per (c, i): each item sums 8 products per block over a strided share of the
 * N*B blocks, then a tree over the group. g[c*64 + i*8 + j] = G_c[i][j]. */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void ortho_dq(__global const float *coarse, int coff, __global const float *fine, int foff, __global float *g,
              int goff, int N, int C, int Dc, int Hc, int Wc) {
  __local float part[WG * 8];
  int grp = get_group_id(0), l = get_local_id(0);
  int c = grp / 8, r = grp % 8;
  int B = Dc * Hc * Wc, H = 2 * Hc, W = 2 * Wc, D = 2 * Dc;
  float s[8];
  for (int j = 0; j < 8; j++) s[j] = 0.0f;
  for (int k = l; k < N * B; k += WG) {
    int n = k / B, b = k % B, nc = n * C + c;
    int x = b % Wc, y = (b / Wc) % Hc, z = b / (Wc * Hc);
    float a = coarse[coff + ((size_t)nc * 8 + r) * B + b];
    for (int j = 0; j < 8; j++) {
      int dz = j >> 2, dy = (j >> 1) & 1, dx = j & 1;
      s[j] += a * fine[foff + (((size_t)nc * D + 2 * z + dz) * H + 2 * y + dy) * W + 2 * x + dx];
    }
  }
  for (int j = 0; j < 8; j++) part[j * WG + l] = s[j];
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int w = WG / 2; w > 0; w >>= 1) {
    if (l < w)
      for (int j = 0; j < 8; j++) part[j * WG + l] += part[j * WG + l + w];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (l < 8) g[goff + c * 64 + r * 8 + l] = part[l * WG];
}

/* One work-item per output element (n, i, v). */
__kernel void mix_apply(__global const float *src, int soff, __global const float *q, int qoff, __global float *dst,
                        int doff, int N, int C, int S, int transpose, int accumulate) {
  int k = get_global_id(0);
  if (k >= N * C * S) return;
  int v = k % S, i = (k / S) % C, n = k / (S * C);
  __global const float *x = src + soff + (size_t)n * C * S + v;
  float s = 0.0f;
  for (int j = 0; j < C; j++) s += (transpose ? q[qoff + j * C + i] : q[qoff + i * C + j]) * x[(size_t)j * S];
  size_t o = doff + (size_t)k;
  dst[o] = accumulate ? dst[o] + s : s;
}

/* One work-group per (i, j). */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void mix_dq(__global const float *a, int aoff, __global const float *b, int boff, __global float *g, int goff, int N,
            int C, int S) {
  __local float part[WG];
  int grp = get_group_id(0), l = get_local_id(0);
  int i = grp / C, j = grp % C;
  float s = 0.0f;
  for (int k = l; k < N * S; k += WG) {
    int n = k / S, v = k % S;
    s += a[aoff + ((size_t)n * C + i) * S + v] * b[boff + ((size_t)n * C + j) * S + v];
  }
  part[l] = s;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int w = WG / 2; w > 0; w >>= 1) {
    if (l < w) part[l] += part[l + w];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (l == 0) g[goff + grp] = part[0];
}
