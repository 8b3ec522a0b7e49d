/* Normalisation kernels: instance norm, group norm and batch norm (one family: statistics over
 * "stats rows", then one per-(n, c) scale and shift), and channel layer norm.
 *
 * Statistics rows: a row is nseg segments of L contiguous floats; segment j of row r starts at
 * r * rowstride + j * segstride. Group norm: row (n, g), one segment of (C/G) * S floats.
 * Instance norm is group norm with G = C. Batch norm: row c, N segments of S floats.
 * Every reduction runs in a fixed order (chunks of CHUNK floats, then the chunks in index
 * order), so results repeat bitwise; no atomics.
 * save[2 * row] = mean, save[2 * row + 1] = 1/sqrt(var + eps) (biased variance).
 * Every buffer comes with an offset in floats. */

#ifndef CHUNK
#define CHUNK 4096 /* floats per work-item in the reductions; a multiple of 16 */
#endif
#ifndef AFFINE
#define AFFINE 1
#endif
#ifndef ACT
#define ACT 0 /* 0 none, 1 ReLU, 2 LeakyReLU */
#endif
#ifndef TRAIN
#define TRAIN 1 /* batch norm: 1 batch statistics, 0 running statistics (fixed) */
#endif

static float act_fwd(float v, float slope) {
#if ACT == 1
  v = fmax(v, 0.0f);
#elif ACT == 2
  v = v > 0.0f ? v : v * slope;
#endif
  (void)slope;
  return v;
}

/* dL/d(pre-activation) from dL/dy and the forward output y (its sign is the input's). */
static float act_bwd(float g, float y, float slope) {
#if ACT == 1
  g = y > 0.0f ? g : 0.0f;
#elif ACT == 2
  g = y > 0.0f ? g : g * slope;
#endif
  (void)y;
  (void)slope;
  return g;
}

static float16 act_bwd16(float16 g, float16 y, float slope) {
#if ACT == 1
  g = select((float16)(0.0f), g, y > (float16)(0.0f));
#elif ACT == 2
  g = select(g * slope, g, y > (float16)(0.0f));
#endif
  (void)y;
  (void)slope;
  return g;
}

static float sum16(float16 v) {
  float8 a = v.lo + v.hi;
  float4 b = a.lo + a.hi;
  float2 c = b.lo + b.hi;
  return c.x + c.y;
}

/* Length of chunk k of a segment of L floats. */
static int chunk_len(int k, int L) { return min(CHUNK, L - k * CHUNK); }

/* Stage 1: work-item (r, j, k) reduces chunk k of segment j of row r to its mean and sum of
 * squared deviations (two passes over the chunk, which stays in cache): part[2 id], part[2 id + 1]. */
__kernel void stats_partial(__global const float *x, int xoff, int rowstride, int segstride, int nseg, int L,
                            int cps, int total, __global float *part, int poff) {
  int id = get_global_id(0);
  if (id >= total) return;
  int k = id % cps, j = (id / cps) % nseg, r = id / (cps * nseg);
  __global const float *p = x + xoff + (size_t)r * rowstride + (size_t)j * segstride + (size_t)k * CHUNK;
  int n = chunk_len(k, L), i = 0;
  float16 acc = 0.0f;
  for (; i + 16 <= n; i += 16) acc += vload16(0, p + i);
  float s = sum16(acc);
  for (; i < n; i++) s += p[i];
  float m = s / (float)n;
  float16 q = 0.0f;
  for (i = 0; i + 16 <= n; i += 16) {
    float16 d = vload16(0, p + i) - m;
    q = fma(d, d, q);
  }
  float m2 = sum16(q);
  for (; i < n; i++) {
    float d = p[i] - m;
    m2 = fma(d, d, m2);
  }
  part[poff + 2 * id] = m;
  part[poff + 2 * id + 1] = m2;
}

/* Stage 2: one work-item per row combines its nseg * cps partials in index order (Chan et al.'s
 * pairwise update) into save. With running statistics (batch norm training): running_mean and
 * running_var (unbiased variance) move by momentum towards the batch's. */
__kernel void stats_combine(__global const float *part, int poff, int nparts, int cps, int L, int rows,
                            __global float *save, int soff, float eps, int running, __global float *rmean,
                            int rmoff, __global float *rvar, int rvoff, float momentum) {
  int r = get_global_id(0);
  if (r >= rows) return;
  __global const float *p = part + poff + 2 * (size_t)r * nparts;
  float na = 0.0f, ma = 0.0f, qa = 0.0f;
  for (int t = 0; t < nparts; t++) {
    float nb = (float)chunk_len(t % cps, L), mb = p[2 * t], qb = p[2 * t + 1];
    float n = na + nb, d = mb - ma;
    ma += d * (nb / n);
    qa += qb + d * d * (na * nb / n);
    na = n;
  }
  save[soff + 2 * r] = ma;
  save[soff + 2 * r + 1] = rsqrt(qa / na + eps);
  if (running) {
    rmean[rmoff + r] = (1.0f - momentum) * rmean[rmoff + r] + momentum * ma;
    rvar[rvoff + r] = (1.0f - momentum) * rvar[rvoff + r] + momentum * (qa / (na - 1.0f));
  }
}

/* Batch norm with running statistics: save = (running mean, 1/sqrt(running var + eps)). */
__kernel void stats_running(__global const float *rmean, int rmoff, __global const float *rvar, int rvoff, int C,
                            float eps, __global float *save, int soff) {
  int c = get_global_id(0);
  if (c >= C) return;
  save[soff + 2 * c] = rmean[rmoff + c];
  save[soff + 2 * c + 1] = rsqrt(rvar[rvoff + c] + eps);
}

/* Per (n, c): y = act(a x + b) with a = gamma rstd, b = beta - mean a. The statistics row of
 * (n, c) is n * sN + c / cpg (group norm: sN = G; batch norm: sN = 0, cpg = 1). */
__kernel void forward_coef(__global const float *save, int soff, __global const float *gamma, int goff,
                           __global const float *beta, int boff, int C, int cpg, int sN, int NC,
                           __global float *coef, int coff) {
  int i = get_global_id(0);
  if (i >= NC) return;
  int n = i / C, c = i % C, r = n * sN + c / cpg;
  float mean = save[soff + 2 * r], rstd = save[soff + 2 * r + 1];
#if AFFINE
  float a = gamma[goff + c] * rstd, b = beta[boff + c] - mean * a;
#else
  float a = rstd, b = -mean * rstd;
#endif
  coef[coff + 2 * i] = a;
  coef[coff + 2 * i + 1] = b;
}

static float16 act_fwd16(float16 v, float slope) {
#if ACT == 1
  v = fmax(v, (float16)(0.0f));
#elif ACT == 2
  v = select(v * slope, v, v > (float16)(0.0f));
#endif
  (void)slope;
  return v;
}

/* The elementwise pass: work-item (b, row = n*C + c) writes floats 16b .. 16b + 15 of the row
 * with one 16-wide load and store (vload/vstore need only float alignment); the last, partial
 * block of a row float by float. */
__kernel void forward_apply(__global const float *x, int xoff, __global const float *coef, int coff,
                            __global float *y, int yoff, int S, float slope) {
  int i0 = 16 * get_global_id(0), row = get_global_id(1);
  if (i0 >= S) return;
  size_t base = (size_t)row * S + i0;
  __global const float *px = x + xoff + base;
  __global float *py = y + yoff + base;
  float a = coef[coff + 2 * row], b = coef[coff + 2 * row + 1];
  if (i0 + 16 <= S) {
    vstore16(act_fwd16(fma(vload16(0, px), a, b), slope), 0, py);
    return;
  }
  for (int i = 0; i < S - i0; i++) py[i] = act_fwd(fma(px[i], a, b), slope);
}

/* Backward stage 1: work-item (row = n*C + c, k) sums dz = dy act'(y) and dz xhat over chunk k
 * of the row's S floats: part[2 id] = sum dz, part[2 id + 1] = sum dz xhat. */
__kernel void backward_partial(__global const float *x, int xoff, __global const float *y, int yoff,
                               __global const float *dy, int dyoff, __global const float *save, int soff, int C,
                               int cpg, int sN, int S, int cps, int total, __global float *part, int poff,
                               float slope) {
  int id = get_global_id(0);
  if (id >= total) return;
  int k = id % cps, row = id / cps, n = row / C, c = row % C, r = n * sN + c / cpg;
  float mean = save[soff + 2 * r], rstd = save[soff + 2 * r + 1];
  size_t base = (size_t)row * S + (size_t)k * CHUNK;
  __global const float *px = x + xoff + base, *py = y + yoff + base, *pd = dy + dyoff + base;
  int len = chunk_len(k, S), i = 0;
  float16 a1 = 0.0f, a2 = 0.0f;
  for (; i + 16 <= len; i += 16) {
    float16 g = act_bwd16(vload16(0, pd + i), vload16(0, py + i), slope);
    a1 += g;
    a2 = fma(g, (vload16(0, px + i) - mean) * rstd, a2);
  }
  float s1 = sum16(a1), s2 = sum16(a2);
  for (; i < len; i++) {
    float g = act_bwd(pd[i], py[i], slope);
    s1 += g;
    s2 = fma(g, (px[i] - mean) * rstd, s2);
  }
  part[poff + 2 * id] = s1;
  part[poff + 2 * id + 1] = s2;
}

/* Backward stage 2: per (n, c) row the sum of its cps chunk partials, in order. */
__kernel void backward_rowsum(__global const float *part, int poff, int cps, int NC, __global float *sums,
                              int sumoff) {
  int row = get_global_id(0);
  if (row >= NC) return;
  __global const float *p = part + poff + 2 * (size_t)row * cps;
  float s1 = 0.0f, s2 = 0.0f;
  for (int k = 0; k < cps; k++) { s1 += p[2 * k]; s2 += p[2 * k + 1]; }
  sums[sumoff + 2 * row] = s1;
  sums[sumoff + 2 * row + 1] = s2;
}

/* Backward stage 3, per (n, c): with dxhat = gamma dz, over the statistics row (M elements)
 * m1 = sum dxhat / M, m2 = sum dxhat xhat / M, and
 *   dx = rstd (gamma dz - m1 - xhat m2) = k_dz dz + k_x (x - mean) + k_0.
 * Running statistics (TRAIN == 0) are constants: dx = rstd gamma dz.
 * coef[4 i] = (k_dz, k_x, mean, k_0). Members of row r: the cpg channels of its group (sN > 0)
 * or the N samples of channel c (sN == 0, batch norm). */
__kernel void backward_coef(__global const float *sums, int sumoff, __global const float *save, int soff,
                            __global const float *gamma, int goff, int N, int C, int cpg, int sN, float M,
                            __global float *coef, int coff) {
  int i = get_global_id(0);
  if (i >= N * C) return;
  int n = i / C, c = i % C, r = n * sN + c / cpg;
  float mean = save[soff + 2 * r], rstd = save[soff + 2 * r + 1];
#if AFFINE
  float gm = gamma[goff + c];
#else
  float gm = 1.0f;
#endif
  float m1 = 0.0f, m2 = 0.0f;
#if TRAIN
  int count = sN > 0 ? cpg : N;
  for (int t = 0; t < count; t++) {
    int nn = sN > 0 ? n : t, cc = sN > 0 ? (c / cpg) * cpg + t : c, j = nn * C + cc;
#if AFFINE
    float g = gamma[goff + cc];
#else
    float g = 1.0f;
#endif
    m1 += g * sums[sumoff + 2 * j];
    m2 += g * sums[sumoff + 2 * j + 1];
  }
  m1 /= M;
  m2 /= M;
#endif
  coef[coff + 4 * i] = rstd * gm;
  coef[coff + 4 * i + 1] = -rstd * rstd * m2;
  coef[coff + 4 * i + 2] = mean;
  coef[coff + 4 * i + 3] = -rstd * m1;
}

__kernel void backward_apply(__global const float *x, int xoff, __global const float *y, int yoff,
                             __global const float *dy, int dyoff, __global const float *coef, int coff,
                             __global float *dx, int dxoff, int S, float slope, int accumulate) {
  int i0 = 16 * get_global_id(0), row = get_global_id(1);
  if (i0 >= S) return;
  size_t base = (size_t)row * S + i0;
  __global const float *px = x + xoff + base, *py = y + yoff + base, *pd = dy + dyoff + base;
  __global float *pdx = dx + dxoff + base;
  __global const float *kc = coef + coff + 4 * row;
  float kdz = kc[0], kx = kc[1], mean = kc[2], k0 = kc[3];
  if (i0 + 16 <= S) {
    float16 g = act_bwd16(vload16(0, pd), vload16(0, py), slope);
    float16 v = fma(kdz, g, fma(kx, vload16(0, px) - mean, k0));
    if (accumulate) v += vload16(0, pdx);
    vstore16(v, 0, pdx);
    return;
  }
  for (int i = 0; i < S - i0; i++) {
    float v = fma(kdz, act_bwd(pd[i], py[i], slope), fma(kx, px[i] - mean, k0));
    pdx[i] = accumulate ? pdx[i] + v : v;
  }
}

/* dgamma[c] (+)= sum_n sums[2 (n C + c) + 1], dbeta[c] (+)= sum_n sums[2 (n C + c)]. */
__kernel void param_grad(__global const float *sums, int sumoff, int N, int C, __global float *dgamma, int dgoff,
                         __global float *dbeta, int dboff, int accumulate) {
  int c = get_global_id(0);
  if (c >= C) return;
  float sg = 0.0f, sb = 0.0f;
  for (int n = 0; n < N; n++) {
    sb += sums[sumoff + 2 * (n * C + c)];
    sg += sums[sumoff + 2 * (n * C + c) + 1];
  }
  dgamma[dgoff + c] = accumulate ? dgamma[dgoff + c] + sg : sg;
  dbeta[dboff + c] = accumulate ? dbeta[dboff + c] + sb : sb;
}

/* ---------------------------------------------------------------- channel layer norm
 * Per voxel (n, s) over the C channels (stride S): y = gamma[c] (x - mean) rstd + beta[c].
 * Work-item (w, n) handles the 16 neighbouring voxels 16w .. 16w + 15 of sample n with 16-wide
 * loads (the last, partial block voxel by voxel). Two planes of statistics:
 * save[n S + s] = mean, save[N S + n S + s] = 1/sqrt(var + eps). */
#if AFFINE
#define LN_GAMMA(c) gamma[goff + (c)]
#define LN_BETA(c) beta[boff + (c)]
#else
#define LN_GAMMA(c) 1.0f
#define LN_BETA(c) 0.0f
#endif

__kernel void ln_forward(__global const float *x, int xoff, __global const float *gamma, int goff,
                         __global const float *beta, int boff, __global float *y, int yoff, __global float *save,
                         int soff, int C, int S, float eps) {
  int s0 = 16 * get_global_id(0), n = get_global_id(1), N = get_global_size(1);
  if (s0 >= S) return;
  size_t base = (size_t)n * C * S + s0, v = (size_t)n * S + s0, plane = (size_t)N * S;
  __global const float *px = x + xoff + base;
  __global float *py = y + yoff + base;
  if (s0 + 16 <= S) {
    float16 sum = 0.0f, q = 0.0f;
    for (int c = 0; c < C; c++) sum += vload16(0, px + (size_t)c * S);
    float16 mean = sum / (float)C;
    for (int c = 0; c < C; c++) {
      float16 d = vload16(0, px + (size_t)c * S) - mean;
      q = fma(d, d, q);
    }
    float16 rstd = rsqrt(q / (float)C + eps);
    for (int c = 0; c < C; c++)
      vstore16(fma((vload16(0, px + (size_t)c * S) - mean) * rstd, LN_GAMMA(c), LN_BETA(c)), 0, py + (size_t)c * S);
    vstore16(mean, 0, save + soff + v);
    vstore16(rstd, 0, save + soff + plane + v);
    return;
  }
  for (int j = 0; j < S - s0; j++) {
    float sum = 0.0f, q = 0.0f;
    for (int c = 0; c < C; c++) sum += px[(size_t)c * S + j];
    float mean = sum / (float)C;
    for (int c = 0; c < C; c++) {
      float d = px[(size_t)c * S + j] - mean;
      q = fma(d, d, q);
    }
    float rstd = rsqrt(q / (float)C + eps);
    for (int c = 0; c < C; c++)
      py[(size_t)c * S + j] = fma((px[(size_t)c * S + j] - mean) * rstd, LN_GAMMA(c), LN_BETA(c));
    save[soff + v + j] = mean;
    save[soff + plane + v + j] = rstd;
  }
}

/* dxhat = gamma dy; dx = rstd (dxhat - mean_c dxhat - xhat mean_c(dxhat xhat)). */
__kernel void ln_backward(__global const float *x, int xoff, __global const float *dy, int dyoff,
                          __global const float *gamma, int goff, __global const float *save, int soff,
                          __global float *dx, int dxoff, int C, int S, int accumulate) {
  int s0 = 16 * get_global_id(0), n = get_global_id(1), N = get_global_size(1);
  if (s0 >= S) return;
  size_t base = (size_t)n * C * S + s0, v = (size_t)n * S + s0, plane = (size_t)N * S;
  __global const float *px = x + xoff + base, *pd = dy + dyoff + base;
  __global float *pdx = dx + dxoff + base;
  if (s0 + 16 <= S) {
    float16 mean = vload16(0, save + soff + v), rstd = vload16(0, save + soff + plane + v);
    float16 m1 = 0.0f, m2 = 0.0f;
    for (int c = 0; c < C; c++) {
      float16 g = vload16(0, pd + (size_t)c * S) * LN_GAMMA(c);
      m1 += g;
      m2 = fma(g, (vload16(0, px + (size_t)c * S) - mean) * rstd, m2);
    }
    m1 /= (float)C;
    m2 /= (float)C;
    for (int c = 0; c < C; c++) {
      float16 g = vload16(0, pd + (size_t)c * S) * LN_GAMMA(c);
      float16 r = rstd * (g - m1 - (vload16(0, px + (size_t)c * S) - mean) * rstd * m2);
      if (accumulate) r += vload16(0, pdx + (size_t)c * S);
      vstore16(r, 0, pdx + (size_t)c * S);
    }
    return;
  }
  for (int j = 0; j < S - s0; j++) {
    float mean = save[soff + v + j], rstd = save[soff + plane + v + j], m1 = 0.0f, m2 = 0.0f;
    for (int c = 0; c < C; c++) {
      float g = pd[(size_t)c * S + j] * LN_GAMMA(c);
      m1 += g;
      m2 = fma(g, (px[(size_t)c * S + j] - mean) * rstd, m2);
    }
    m1 /= (float)C;
    m2 /= (float)C;
    for (int c = 0; c < C; c++) {
      float g = pd[(size_t)c * S + j] * LN_GAMMA(c);
      float r = rstd * (g - m1 - (px[(size_t)c * S + j] - mean) * rstd * m2);
      pdx[(size_t)c * S + j] = accumulate ? pdx[(size_t)c * S + j] + r : r;
    }
  }
}

/* Parameter gradients, stage 1: work-item (row = n*C + c, k) over chunk k of the row's voxels:
 * part[2 id] = sum dy, part[2 id + 1] = sum dy xhat (then backward_rowsum and param_grad). */
__kernel void ln_param_partial(__global const float *x, int xoff, __global const float *dy, int dyoff,
                               __global const float *save, int soff, int N, int C, int S, int cps, int total,
                               __global float *part, int poff) {
  int id = get_global_id(0);
  if (id >= total) return;
  int k = id % cps, row = id / cps, n = row / C;
  size_t base = (size_t)row * S + (size_t)k * CHUNK, v = (size_t)n * S + (size_t)k * CHUNK;
  __global const float *px = x + xoff + base, *pd = dy + dyoff + base;
  __global const float *pm = save + soff + v, *pr = save + soff + (size_t)N * S + v;
  int len = chunk_len(k, S), i = 0;
  float16 a1 = 0.0f, a2 = 0.0f;
  for (; i + 16 <= len; i += 16) {
    float16 g = vload16(0, pd + i);
    a1 += g;
    a2 = fma(g, (vload16(0, px + i) - vload16(0, pm + i)) * vload16(0, pr + i), a2);
  }
  float s1 = sum16(a1), s2 = sum16(a2);
  for (; i < len; i++) {
    s1 += pd[i];
    s2 = fma(pd[i], (px[i] - pm[i]) * pr[i], s2);
  }
  part[poff + 2 * id] = s1;
  part[poff + 2 * id + 1] = s2;
}
