/* Softmax cross-entropy + soft Dice on logits [N, K, S] against labels [N, 1, S] (class indices
 * stored as floats). The softmax is recomputed where needed instead of stored: K is small. */

#ifndef WG
#define WG 64
#endif

static float wg_sum(float v, __local float *part) {
  int l = get_local_id(0);
  part[l] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int w = WG / 2; w > 0; w >>= 1) {
    if (l < w) part[l] += part[l + w];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  float r = part[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return r;
}

/* One work-group per (n, k). stats[5*(n*K+k) + 0..4] = sum p*y, sum p, sum y, sum y*(-log p),
 * and (k == 0 rows only) the number of labels that are not an integer in [0, K). */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void dice_ce_stats(__global const float *x, int xoff, __global const float *lab, int loff,
                   int K, int S, __global float *stats) {
  __local float part[WG];
  int row = get_group_id(0), l = get_local_id(0);
  int n = row / K, k = row % K;
  __global const float *xn = x + xoff + (size_t)n * K * S;
  __global const float *ln = lab + loff + (size_t)n * S;
  float tp = 0.0f, sp = 0.0f, sy = 0.0f, ce = 0.0f, bad = 0.0f;
  for (int v = l; v < S; v += WG) {
    float m = -INFINITY;
    for (int c = 0; c < K; c++) m = fmax(m, xn[(size_t)c * S + v]);
    float sum = 0.0f;
    for (int c = 0; c < K; c++) sum += exp(xn[(size_t)c * S + v] - m);
    float xk = xn[(size_t)k * S + v];
    float p = exp(xk - m) / sum;
    float lv = ln[v];
    float y = (lv == (float)k) ? 1.0f : 0.0f;
    tp += p * y;
    sp += p;
    sy += y;
    ce += y * (log(sum) + m - xk);
    if (k == 0 && !(lv >= 0.0f && lv < (float)K && lv == floor(lv))) bad += 1.0f;
  }
  tp = wg_sum(tp, part);
  sp = wg_sum(sp, part);
  sy = wg_sum(sy, part);
  ce = wg_sum(ce, part);
  bad = wg_sum(bad, part);
  if (l == 0) {
    __global float *o = stats + 5 * row;
    o[0] = tp; o[1] = sp; o[2] = sy; o[3] = ce; o[4] = bad;
  }
}

/* dlogits = softmax Jacobian^T (g) + ce_scale * (p - y), with the Dice gradient wrt p_k(v)
 * g_k(v) = coef[2*(n*K+k)] * y_k(v) + coef[2*(n*K+k)+1]. */
__kernel void dice_ce_grad(__global const float *x, int xoff, __global const float *lab, int loff,
                           int N, int K, int S, __global const float *coef, float ce_scale,
                           __global float *dx, int dxoff) {
  int i = get_global_id(0);
  if (i >= N * S) return;
  int n = i / S, v = i % S;
  __global const float *xn = x + xoff + (size_t)n * K * S;
  float m = -INFINITY;
  for (int c = 0; c < K; c++) m = fmax(m, xn[(size_t)c * S + v]);
  float sum = 0.0f;
  for (int c = 0; c < K; c++) sum += exp(xn[(size_t)c * S + v] - m);
  float inv = 1.0f / sum;
  float lv = lab[loff + (size_t)n * S + v];
  float pg = 0.0f;
  for (int c = 0; c < K; c++) {
    float p = exp(xn[(size_t)c * S + v] - m) * inv;
    float y = (lv == (float)c) ? 1.0f : 0.0f;
    pg += p * (coef[2 * (n * K + c)] * y + coef[2 * (n * K + c) + 1]);
  }
  for (int c = 0; c < K; c++) {
    float p = exp(xn[(size_t)c * S + v] - m) * inv;
    float y = (lv == (float)c) ? 1.0f : 0.0f;
    float g = coef[2 * (n * K + c)] * y + coef[2 * (n * K + c) + 1];
    dx[dxoff + (size_t)n * K * S + (size_t)c * S + v] = p * (g - pg) + ce_scale * (p - y);
  }
}

/* ---- MSE and the VAE's KL term: two-stage sums. Work-group g sums elements
 * [g*chunk, min((g+1)*chunk, n)) in a fixed strided order and a fixed tree into part[g]; the
 * host adds the partial sums in double. mode 0: (a - b)^2; mode 1 (a = mu, b = sigma):
 * mu^2 + sigma^2 - log(sigma^2) - 1. */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void partial_sums(int mode, __global const float *a, int aoff, __global const float *b, int boff, int n, int chunk,
                  __global float *part_out) {
  __local float part[WG];
  int g = get_group_id(0), l = get_local_id(0);
  int lo = g * chunk, hi = min(lo + chunk, n);
  float acc = 0.0f;
  for (int i = lo + l; i < hi; i += WG) {
    float u = a[aoff + i], v = b[boff + i];
    acc += mode == 0 ? (u - v) * (u - v) : u * u + v * v - log(v * v) - 1.0f;
  }
  acc = wg_sum(acc, part);
  if (l == 0) part_out[g] = acc;
}

/* d (+)= scale * (a - b). */
__kernel void mse_grad(__global const float *a, int aoff, __global const float *b, int boff, int n, float scale,
                       __global float *d, int doff, int accumulate) {
  int i = get_global_id(0);
  if (i >= n) return;
  float g = scale * (a[aoff + i] - b[boff + i]);
  d[doff + i] = accumulate ? d[doff + i] + g : g;
}

/* dmu (+)= scale * 2 mu; dsigma (+)= scale * (2 sigma - 2 / sigma). which: 1 dmu, 2 dsigma. */
__kernel void kl_grad(__global const float *mu, int moff, __global const float *sg, int soff, int n, float scale,
                      __global float *d, int doff, int which, int accumulate) {
  int i = get_global_id(0);
  if (i >= n) return;
  float s = sg[soff + i];
  float g = which == 1 ? scale * 2.0f * mu[moff + i] : scale * (2.0f * s - 2.0f / s);
  d[doff + i] = accumulate ? d[doff + i] + g : g;
}
