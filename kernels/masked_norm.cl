/* Masked-region normalisation (DualNorm's explicit region statistics; layers.md part 2).
 * x: [N, C, S], m: [N, K, S] soft masks, gamma/beta: [K, C]. Per row r = (n*K + k)*C + c:
 *   den = sum_v m + eps, mu = sum_v m x / den, var = sum_v m (x - mu)^2 / den,
 *   save[4r..4r+3] = (mu, 1/sqrt(var + eps), var, 1/den)
 *   y(v) = sum_k m_k(v) (gamma_kc (x(v) - mu) rstd + beta_kc)
 * Backward per row: A = sum_v dy m, B = sum_v dy m (x - mu) (part[2r], part[2r+1]);
 *   dvar = -gamma B rstd^3 / 2,  dmu = -gamma rstd A - 2 dvar mu eps / den
 *   (d var / d mu = -2 sum m (x - mu) / den = -2 mu eps / den: nonzero because of eps in den)
 *   dx(v) = sum_k m_k (gamma rstd dy + dmu/den + 2 dvar (x - mu)/den)
 *   dm_k(v) = sum_c [dy (gamma rstd (x - mu) + beta) + dmu (x - mu)/den + dvar ((x - mu)^2 - var)/den]
 * Reductions: one work-group per row, tree in a fixed order; no atomics. */

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

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void mnorm_stats(__global const float *x, int xoff, __global const float *m, int moff, __global float *save, int soff,
                 int K, int C, int S, float eps) {
  __local float part[WG];
  int row = get_group_id(0), l = get_local_id(0);
  int c = row % C, k = (row / C) % K, n = row / (C * K);
  __global const float *xr = x + xoff + ((size_t)n * C + c) * S;
  __global const float *mr = m + moff + ((size_t)n * K + k) * S;
  float sm = 0.0f, sx = 0.0f;
  for (int i = l; i < S; i += WG) { sm += mr[i]; sx += mr[i] * xr[i]; }
  float den = wg_sum(sm, part) + eps;
  float mu = wg_sum(sx, part) / den;
  float q = 0.0f;
  for (int i = l; i < S; i += WG) { float d = xr[i] - mu; q += mr[i] * d * d; }
  float var = wg_sum(q, part) / den;
  if (l == 0) {
    save[soff + 4 * row] = mu;
    save[soff + 4 * row + 1] = rsqrt(var + eps);
    save[soff + 4 * row + 2] = var;
    save[soff + 4 * row + 3] = 1.0f / den;
  }
}

/* One work-item per (n, c, v). */
__kernel void mnorm_apply(__global const float *x, int xoff, __global const float *m, int moff,
                          __global const float *gamma, int goff, __global const float *beta, int boff,
                          __global const float *save, int soff, __global float *y, int yoff, int N, int K, int C, int S) {
  int i = get_global_id(0);
  if (i >= N * C * S) return;
  int v = i % S, c = (i / S) % C, n = i / (S * C);
  float xv = x[xoff + i], s = 0.0f;
  for (int k = 0; k < K; k++) {
    int row = (n * K + k) * C + c;
    float mu = save[soff + 4 * row], rstd = save[soff + 4 * row + 1];
    float mk = m[moff + ((size_t)n * K + k) * S + v];
    s += mk * (gamma[goff + k * C + c] * (xv - mu) * rstd + beta[boff + k * C + c]);
  }
  y[yoff + i] = s;
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void mnorm_backward_stats(__global const float *x, int xoff, __global const float *m, int moff,
                          __global const float *dy, int dyoff, __global const float *save, int soff,
                          __global float *part_out, int K, int C, int S) {
  __local float part[WG];
  int row = get_group_id(0), l = get_local_id(0);
  int c = row % C, k = (row / C) % K, n = row / (C * K);
  size_t xb = ((size_t)n * C + c) * S, mb = ((size_t)n * K + k) * S;
  float mu = save[soff + 4 * row];
  float a = 0.0f, b = 0.0f;
  for (int i = l; i < S; i += WG) {
    float g = dy[dyoff + xb + i] * m[moff + mb + i];
    a += g;
    b += g * (x[xoff + xb + i] - mu);
  }
  float A = wg_sum(a, part), B = wg_sum(b, part);
  if (l == 0) { part_out[2 * row] = A; part_out[2 * row + 1] = B; }
}

/* The per-row coefficients of the backward. */
static void coefs(__global const float *save, int soff, __global const float *part, __global const float *gamma,
                  int goff, int row, int kc, float eps, float *mu, float *rstd, float *var, float *iden, float *gm,
                  float *dmu, float *dvar) {
  *mu = save[soff + 4 * row];
  *rstd = save[soff + 4 * row + 1];
  *var = save[soff + 4 * row + 2];
  *iden = save[soff + 4 * row + 3];
  *gm = gamma[goff + kc];
  float A = part[2 * row], B = part[2 * row + 1];
  *dvar = -0.5f * *gm * B * *rstd * *rstd * *rstd;
  *dmu = -*gm * *rstd * A - 2.0f * *dvar * *mu * eps * *iden;
}

/* One work-item per (n, c, v). */
__kernel void mnorm_backward_dx(__global const float *x, int xoff, __global const float *m, int moff,
                                __global const float *dy, int dyoff, __global const float *gamma, int goff,
                                __global const float *save, int soff, __global const float *part,
                                __global float *dx, int dxoff, int N, int K, int C, int S, float eps, int accumulate) {
  int i = get_global_id(0);
  if (i >= N * C * S) return;
  int v = i % S, c = (i / S) % C, n = i / (S * C);
  float xv = x[xoff + i], g = dy[dyoff + i], s = 0.0f;
  for (int k = 0; k < K; k++) {
    int row = (n * K + k) * C + c;
    float mu, rstd, var, iden, gm, dmu, dvar;
    coefs(save, soff, part, gamma, goff, row, k * C + c, eps, &mu, &rstd, &var, &iden, &gm, &dmu, &dvar);
    float mk = m[moff + ((size_t)n * K + k) * S + v];
    s += mk * (gm * rstd * g + dmu * iden + 2.0f * dvar * iden * (xv - mu));
  }
  dx[dxoff + i] = accumulate ? dx[dxoff + i] + s : s;
}

/* One work-item per (n, k, v). */
__kernel void mnorm_backward_dm(__global const float *x, int xoff, __global const float *dy, int dyoff,
                                __global const float *gamma, int goff, __global const float *beta, int boff,
                                __global const float *save, int soff, __global const float *part,
                                __global float *dm, int dmoff, int N, int K, int C, int S, float eps, int accumulate) {
  int i = get_global_id(0);
  if (i >= N * K * S) return;
  int v = i % S, k = (i / S) % K, n = i / (S * K);
  float s = 0.0f;
  for (int c = 0; c < C; c++) {
    int row = (n * K + k) * C + c;
    float mu, rstd, var, iden, gm, dmu, dvar;
    coefs(save, soff, part, gamma, goff, row, k * C + c, eps, &mu, &rstd, &var, &iden, &gm, &dmu, &dvar);
    size_t xi = ((size_t)n * C + c) * S + v;
    float d = x[xoff + xi] - mu;
    s += dy[dyoff + xi] * (gm * rstd * d + beta[boff + k * C + c]) + dmu * d * iden + dvar * (d * d - var) * iden;
  }
  dm[dmoff + i] = accumulate ? dm[dmoff + i] + s : s;
}

/* dbeta[kc] (+)= sum_n A, dgamma[kc] (+)= sum_n rstd B; one work-item per (k, c). */
__kernel void mnorm_param_grad(__global const float *save, int soff, __global const float *part, int N, int K, int C,
                               __global float *dgamma, int dgoff, __global float *dbeta, int dboff, int accumulate) {
  int kc = get_global_id(0);
  if (kc >= K * C) return;
  float sg = 0.0f, sb = 0.0f;
  for (int n = 0; n < N; n++) {
    int row = n * K * C + kc;
    sb += part[2 * row];
    sg += part[2 * row + 1] * save[soff + 4 * row + 1];
  }
  dgamma[dgoff + kc] = accumulate ? dgamma[dgoff + kc] + sg : sg;
  dbeta[dboff + kc] = accumulate ? dbeta[dboff + kc] + sb : sb;
}
