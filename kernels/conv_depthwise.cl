/* Depthwise 3D convolution (groups == C == O, stride 1, any kernel size, padding, dilation),
 * written for wide-vector devices: every work-item holds VW = 16 consecutive voxels along W in
 * one float16 per output row, and the kernel geometry is compile-time (-D) so the tap loops
 * unroll into straight vector FMAs with scalar weight broadcasts.
 *
 * Inputs are pre-padded by pad_general (conv_direct.cl), so no loop carries a bounds check:
 * planes of Dp x Hp rows of Wp values, one plane per (n, c) of the slab being processed.
 *
 *   dw_fwd          forward; with -DFLIP=1 the data gradient (a stride-1 depthwise conv of the
 *                   padded output gradient with the flipped taps)
 *   dw_bwd_weights  weight gradient: fixed chunks of depth planes per work-item, partial sums
 *                   per chunk, then sum_partials (conv_direct.cl) adds the chunks in order:
 *                   the same bits on every run, no atomics.
 * Index decompositions use q = a / b, r = a - q * b (not a % b next to a / b: that pair becomes
 * an LLVM 'freeze' which Oclgrind cannot interpret). */

#ifndef KD
#define KD 3
#endif
#ifndef KH
#define KH 3
#endif
#ifndef KW
#define KW 3
#endif
#ifndef DD
#define DD 1
#endif
#ifndef DH
#define DH 1
#endif
#ifndef DW
#define DW 1
#endif
/* Output rows per work-item in the forward: input rows are loaded once for all of them. */
#ifndef ROWS
#define ROWS 4
#endif
/* 1: taps mirrored (data gradient). */
#ifndef FLIP
#define FLIP 0
#endif
/* kh taps per work-item in the weight gradient (KW * BKH float16 accumulators). */
#ifndef BKH
#define BKH 3
#endif
#define VW 16
#define K3 (KD * KH * KW)

#if FLIP
#define TAP(wc, kd, kh, kw) ((wc)[K3 - 1 - (((kd) * KH + (kh)) * KW + (kw))])
#else
#define TAP(wc, kd, kh, kw) ((wc)[((kd) * KH + (kh)) * KW + (kw)])
#endif

static void store_vec(__global float *y, int ow0, int OW, float16 v, int accumulate) {
  if (ow0 + VW <= OW) {
    if (accumulate) v += vload16(0, y + ow0);
    vstore16(v, 0, y + ow0);
  } else {
    float a[VW];
    vstore16(v, 0, a);
    for (int i = 0; ow0 + i < OW; i++) y[ow0 + i] = accumulate ? y[ow0 + i] + a[i] : a[i];
  }
}

/* y[n][c][od][oh][ow] (+)= sum_k xp[p][od + kd*DD][oh + kh*DH][ow + kw*DW] * w[c][k] for the
 * slab's planes p = n_local * Cs + c_local, channel c = c0 + c_local of Ctot.
 * xp: Hp >= ceil(OH / ROWS) * ROWS + DH*(KH-1), Wp >= ceil(OW / VW) * VW + DW*(KW-1).
 * y points (yoff) at sample n0, channel 0; w at channel 0.
 * global: (ceil(OW / VW), ceil(OH / ROWS), Ns * Cs * OD). */
__kernel void dw_fwd(__global const float *xp, int xpoff, int Cs, int Dp, int Hp, int Wp,
                     __global const float *w, int woff, __global float *y, int yoff,
                     int Ctot, int c0, int OD, int OH, int OW, int Ns, int accumulate) {
  int owb = get_global_id(0), ohb = get_global_id(1), z = get_global_id(2);
  int oh0 = ohb * ROWS;
  if (oh0 >= OH || z >= Ns * Cs * OD) return;
  int p = z / OD, od = z - p * OD;
  int nl = p / Cs, cl = p - nl * Cs, c = c0 + cl;
  int ow0 = owb * VW;
  __global const float *wc = w + woff + (size_t)c * K3;
  float16 acc[ROWS];
#pragma unroll
  for (int j = 0; j < ROWS; j++) acc[j] = 0.0f;
  for (int kd = 0; kd < KD; kd++) {
    __global const float *pl = xp + xpoff + (((size_t)p * Dp + od + kd * DD) * Hp + oh0) * Wp + ow0;
#pragma unroll
    for (int u = 0; u < ROWS + DH * (KH - 1); u++) {
      float16 xv[KW];
#pragma unroll
      for (int kw = 0; kw < KW; kw++) xv[kw] = vload16(0, pl + (size_t)u * Wp + kw * DW);
#pragma unroll
      for (int j = 0; j < ROWS; j++) {
        /* output row oh0 + j reads input row oh0 + u with kh = (u - j) / DH */
        if (u - j >= 0 && (u - j) % DH == 0 && (u - j) / DH < KH) {
#pragma unroll
          for (int kw = 0; kw < KW; kw++) acc[j] = fma(xv[kw], (float16)TAP(wc, kd, (u - j) / DH, kw), acc[j]);
        }
      }
    }
  }
  __global float *yr = y + yoff + (((size_t)nl * Ctot + c) * OD + od) * OH * OW + (size_t)oh0 * OW;
#pragma unroll
  for (int j = 0; j < ROWS; j++)
    if (oh0 + j < OH) store_vec(yr + (size_t)j * OW, ow0, OW, acc[j], accumulate);
}

/* part[q][c_local][kd][kh][kw] = sum over the depth planes t of chunk q (t = n_local * OD + od,
 * t in [q * tpc, (q + 1) * tpc)), oh and ow of
 *   dyv[n_local][c][od][oh][ow] * xp[p][od + kd*DD][oh + kh*DH][ow + kw*DW].
 * dyv: rows of OWv (a multiple of VW) with zeros past OW, planes of OD x OH rows, indexed with
 * dyCtot channels per sample and channel dyc0 + c_local (the unpadded gradient itself when
 * OW % VW == 0; then the slab's channel offset is the real one).
 * global: (KD * ceil(KH / BKH), Cs, nchunk). */
__kernel void dw_bwd_weights(__global const float *xp, int xpoff, int Cs, int Dp, int Hp, int Wp,
                             __global const float *dyv, int dyoff, int dyCtot, int dyc0,
                             int OD, int OH, int OWv, int Ns, int tpc,
                             __global float *part, int partoff) {
  int g = get_global_id(0), cl = get_global_id(1), q = get_global_id(2);
  int nkhg = (KH + BKH - 1) / BKH;
  int nchunk = (Ns * OD + tpc - 1) / tpc;
  if (g >= KD * nkhg || cl >= Cs || q >= nchunk) return;
  int g1 = g / KD, kd = g - g1 * KD, kh0 = g1 * BKH;
  int nkh = min(BKH, KH - kh0);
  float16 acc[BKH][KW];
#pragma unroll
  for (int j = 0; j < BKH; j++)
#pragma unroll
    for (int kw = 0; kw < KW; kw++) acc[j][kw] = 0.0f;
  int t1 = min((q + 1) * tpc, Ns * OD);
  for (int t = q * tpc; t < t1; t++) {
    int nl = t / OD, od = t - nl * OD;
    __global const float *xpl = xp + xpoff + (((size_t)(nl * Cs + cl) * Dp + od + kd * DD) * Hp) * Wp;
    __global const float *dpl = dyv + dyoff + (((size_t)nl * dyCtot + dyc0 + cl) * OD + od) * OH * OWv;
    /* x row r meets gradient row oh = r - (kh0 + j) * DH for the j < nkh with 0 <= oh < OH */
    int r1 = OH + (kh0 + nkh - 1) * DH;
    for (int r = kh0 * DH; r < r1; r++) {
      int valid[BKH];
      __global const float *drow[BKH];
#pragma unroll
      for (int j = 0; j < BKH; j++) {
        int oh = r - (kh0 + j) * DH;
        valid[j] = j < nkh && oh >= 0 && oh < OH;
        drow[j] = dpl + (size_t)(valid[j] ? oh : 0) * OWv;
      }
      __global const float *xrow = xpl + (size_t)r * Wp;
      for (int ow0 = 0; ow0 < OWv; ow0 += VW) {
        float16 xv[KW];
#pragma unroll
        for (int kw = 0; kw < KW; kw++) xv[kw] = vload16(0, xrow + ow0 + kw * DW);
#pragma unroll
        for (int j = 0; j < BKH; j++) {
          if (valid[j]) {
            float16 dv = vload16(0, drow[j] + ow0);
#pragma unroll
            for (int kw = 0; kw < KW; kw++) acc[j][kw] = fma(dv, xv[kw], acc[j][kw]);
          }
        }
      }
    }
  }
  __global float *out = part + partoff + ((size_t)q * Cs + cl) * K3;
#pragma unroll
  for (int j = 0; j < BKH; j++) {
    if (j < nkh) {
#pragma unroll
      for (int kw = 0; kw < KW; kw++) {
        float16 a = acc[j][kw];
        float8 s8 = a.lo + a.hi;
        float4 s4 = s8.lo + s8.hi;
        out[(kd * KH + kh0 + j) * KW + kw] = (s4.x + s4.y) + (s4.z + s4.w);
      }
    }
  }
}
