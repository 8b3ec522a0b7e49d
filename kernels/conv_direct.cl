/* Direct 3D convolution (groups 1, any stride, padding and dilation), written for wide-vector
 * devices (CPUs through PoCL) and valid on any OpenCL device:
 *
 *   conv_fwd          forward. A work-item computes VW = 16 consecutive output voxels along W
 *                     (one float16) for ROWS output rows and OB output channels (the host picks
 *                     16 x 1 row for wide convs); each weight is a scalar load broadcast to the
 *                     vector (no lane shuffles). Also the stride-1 data gradient: the same conv
 *                     of the padded output gradient with flipped, transposed weights.
 *   conv_bwd_data_s   data gradient of a strided conv as a gather: a work-item computes SW
 *                     phases x 16 consecutive input voxels along W (so 16 * SW contiguous values)
 *                     for OB input channels; each phase uses only the taps that reach it.
 *   conv_bwd_weights  weight gradient: a work-item holds KW x OB float16 sums for one (c, kd, kh)
 *                     over a fixed chunk of depth planes; the chunks' partial sums are added in
 *                     order by sum_partials. Deterministic, no atomics.
 *
 * Inputs are pre-padded by pad_general, so no inner loop has a bounds check. For stride SW > 1
 * along W the padded rows are split by phase (x mod SW): a strided kernel then reads contiguous
 * vectors. Weights are reordered by reorder_weights so the OB output channels of a tap are
 * adjacent. Geometry is compile-time (-D), sizes are arguments.
 *
 * Index decompositions use q = a / b, r = a - q * b rather than a / b with a % b: compilers turn
 * the latter pair into an LLVM 'freeze' that Oclgrind cannot interpret. */

#ifndef KD
#define KD 3
#endif
#ifndef KH
#define KH 3
#endif
#ifndef KW
#define KW 3
#endif
#ifndef SD
#define SD 1
#endif
#ifndef SH
#define SH 1
#endif
#ifndef SW
#define SW 1
#endif
#ifndef PD
#define PD 0
#endif
#ifndef PH
#define PH 0
#endif
#ifndef PW
#define PW 0
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
/* Output rows per forward work-item. */
#ifndef ROWS
#define ROWS 2
#endif
/* Output channels per work-item (the host picks fewer for convs with few outputs). */
#ifndef OB
#define OB 8
#endif
#define VW 16
#define K3 (KD * KH * KW)

/* ---------------------------------------------------------------- shared helpers */

/* floor(a / b) for b > 0 and any a. */
static int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* The general padding copy used by every direct kernel family (plain, strided, depthwise):
 * dst[p][z][y][ph][j] = src[p][z - fz][y - fy][SP * j + ph - fx] inside src, else 0,
 * for NP planes p (a plane = one (n, c) pair), Dp x Hp rows of SP phases of Wph values.
 * Front offsets may be negative (a crop: a depth slab, or padding larger than the kernel span).
 * SP > 1 splits each row by x parity (x mod SP) so a stride-SP kernel reads contiguous vectors.
 * global: (Hp, Dp * NP). */
__kernel void pad_general(__global const float *src, int soff, int D, int H, int W,
                          __global float *dst, int doff, int Dp, int Hp, int Wph, int SP,
                          int fz, int fy, int fx, int NP) {
  int iy = get_global_id(0), zz = get_global_id(1);
  if (iy >= Hp || zz >= Dp * NP) return;
  int p = zz / Dp;
  int iz = zz - p * Dp;
  int sz = iz - fz, sy = iy - fy;
  int inside = sz >= 0 && sz < D && sy >= 0 && sy < H;
  __global float *row = dst + doff + (((size_t)p * Dp + iz) * Hp + iy) * (size_t)(Wph * SP);
  __global const float *s = src + soff + (((size_t)p * D + (inside ? sz : 0)) * H + (inside ? sy : 0)) * W;
  if (SP == 1) { /* the common case, as plain contiguous loops that compilers vectorise */
    int j0 = inside ? clamp(fx, 0, Wph) : Wph, j1 = inside ? clamp(fx + W, j0, Wph) : Wph;
    for (int j = 0; j < j0; j++) row[j] = 0.0f;
    for (int j = j0; j < j1; j++) row[j] = s[j - fx];
    for (int j = j1; j < Wph; j++) row[j] = 0.0f;
    return;
  }
  for (int ph = 0; ph < SP; ph++) {
    __global float *d = row + ph * Wph;
    /* x = SP*j + ph - fx lies in [0, W) for j in [j0, j1) */
    int j0 = inside ? clamp(-floor_div(ph - fx, SP), 0, Wph) : Wph;
    int j1 = inside ? clamp(-floor_div(ph - fx - W, SP), j0, Wph) : Wph;
    for (int j = 0; j < j0; j++) d[j] = 0.0f;
    for (int j = j0; j < j1; j++) d[j] = s[SP * j + ph - fx];
    for (int j = j1; j < Wph; j++) d[j] = 0.0f;
  }
}

/* out[i] (+)= sum over chunks q of part[q * count + i], q in order: the fixed-order second stage
 * of the chunked weight-gradient reductions (deterministic, no atomics). global: (count). */
__kernel void sum_partials(__global const float *part, int partoff, int nchunk, int count,
                           __global float *out, int outoff, int accumulate) {
  int i = get_global_id(0);
  if (i >= count) return;
  float s = 0.0f;
  for (int q = 0; q < nchunk; q++) s += part[partoff + (size_t)q * count + i];
  out[outoff + i] = accumulate ? out[outoff + i] + s : s;
}

/* wt[ob][c][kd][kh][kw][OB] for a conv with O outputs and C inputs, zero for o >= O, from:
 *   mode 0: w[o][c][k] (the forward);
 *   mode 1: w[c][o][K-1-k] (stride-1 data gradient: the original w is [C][O][K] here, 'O' and
 *           'C' naming the gradient conv's outputs and inputs);
 *   mode 2: w[c][o][k] (strided data gradient: transposed, taps as they are). global: (size). */
__kernel void reorder_weights(__global const float *w, int woff, int O, int C, int mode,
                              __global float *wt, int wtoff) {
  int i = get_global_id(0);
  int OBLK = (O + OB - 1) / OB;
  if (i >= OBLK * OB * C * K3) return;
  int r1 = i / OB, o8 = i - r1 * OB;
  int r2 = r1 / K3, k = r1 - r2 * K3;
  int ob = r2 / C, c = r2 - ob * C;
  int o = ob * OB + o8;
  float v = 0.0f;
  if (o < O) {
    if (mode == 1) v = w[woff + ((size_t)c * O + o) * K3 + (K3 - 1 - k)];
    else if (mode == 2) v = w[woff + ((size_t)c * O + o) * K3 + k];
    else v = w[woff + ((size_t)o * C + c) * K3 + k];
  }
  wt[wtoff + i] = v;
}

/* Writes VW values of one output row at ow0, the tail past OW dropped. */
static void store_row(__global float *y, int ow0, int OW, float16 v, int accumulate) {
  if (ow0 + VW <= OW) {
    if (accumulate) v += vload16(0, y + ow0);
    vstore16(v, 0, y + ow0);
  } else {
    float a[VW];
    vstore16(v, 0, a);
    for (int i = 0; ow0 + i < OW; i++) y[ow0 + i] = accumulate ? y[ow0 + i] + a[i] : a[i];
  }
}

/* ---------------------------------------------------------------- forward */

/* Offset of tap kw in a phase-split row of Wph values per phase. */
#define WOFF(kw, Wph) ((((kw) * DW) % SW) * (Wph) + ((kw) * DW) / SW)

/* y[n][o][od0 + od][oh][ow] (+)= sum_c,k xp[n][c][od*SD + kd*DD][oh*SH + kh*DH][ow*SW + kw*DW]
 * * w[o][c][k], xp padded (and phase-split) for the slab of ODs output planes from od0, of Ns
 * samples (y at sample 0 of the slab: yoff).
 * xp: Dp >= (ODs-1)*SD + (KD-1)*DD + 1, Hp >= (ceil(OH/ROWS)*ROWS - 1)*SH + (KH-1)*DH + 1,
 * Wph >= ceil(OW/VW)*VW + (KW-1)*DW/SW. global: (ceil(OW/VW), ceil(OH/ROWS), Ns*OBLK*ODs). */
__kernel void conv_fwd(__global const float *xp, int xpoff, int C, int Dp, int Hp, int Wph,
                       __global const float *wt, int wtoff, __global float *y, int yoff,
                       int O, int OD, int OH, int OW, int ODs, int od0, int Ns, int accumulate) {
  int owb = get_global_id(0), ohb = get_global_id(1), z = get_global_id(2);
  int OBLK = (O + OB - 1) / OB;
  int oh0 = ohb * ROWS;
  if (oh0 >= OH || z >= Ns * OBLK * ODs) return;
  /* the channel block varies fastest: work-items that read the same input rows run together */
  int q1 = z / OBLK, ob = z - q1 * OBLK;
  int n = q1 / ODs, od = q1 - n * ODs;
  int ow0 = owb * VW;
  size_t Wrow = (size_t)Wph * SW, plane = (size_t)Hp * Wrow;
  float16 acc[ROWS][OB];
#pragma unroll
  for (int j = 0; j < ROWS; j++)
#pragma unroll
    for (int i = 0; i < OB; i++) acc[j][i] = 0.0f;
  __global const float *wp = wt + wtoff + (size_t)ob * C * K3 * OB;
  __global const float *xc = xp + xpoff + ((size_t)n * C * Dp + (size_t)od * SD) * plane + (size_t)oh0 * SH * Wrow + ow0;
  for (int c = 0; c < C; c++) {
#pragma unroll
    for (int kd = 0; kd < KD; kd++) {
#pragma unroll
      for (int kh = 0; kh < KH; kh++) {
        __global const float *xr = xc + (size_t)(kd * DD) * plane + (size_t)(kh * DH) * Wrow;
        __global const float *wk = wp + (kd * KH + kh) * KW * OB;
#pragma unroll
        for (int kw = 0; kw < KW; kw++) {
          /* the ROWS input vectors of this tap, then each weight once for all of them: a weight
           * is never kept live across taps (that spills on 32-register machines) */
          float16 xv[ROWS];
#pragma unroll
          for (int j = 0; j < ROWS; j++) xv[j] = vload16(0, xr + (size_t)(j * SH) * Wrow + WOFF(kw, Wph));
#pragma unroll
          for (int i = 0; i < OB; i++) {
            float16 wv = (float16)(wk[kw * OB + i]);
#pragma unroll
            for (int j = 0; j < ROWS; j++) acc[j][i] = fma(xv[j], wv, acc[j][i]);
          }
        }
      }
    }
    wp += K3 * OB;
    xc += (size_t)Dp * plane;
  }
  size_t oplane = (size_t)OD * OH * OW;
  __global float *yb = y + yoff + ((size_t)n * O + ob * OB) * oplane + (size_t)(od0 + od) * OH * OW + (size_t)oh0 * OW;
  int left = O - ob * OB;
#pragma unroll
  for (int i = 0; i < OB; i++)
#pragma unroll
    for (int j = 0; j < ROWS; j++)
      if (i < left && oh0 + j < OH) store_row(yb + i * oplane + (size_t)j * OW, ow0, OW, acc[j][i], accumulate);
}

/* ---------------------------------------------------------------- strided data gradient */

/* dyq front along W (in gradient voxels): every reachable index is >= 0 after it. */
#define FQW (((KW - 1) * DW) / SW)

/* dx[n][c][iz0 + izl][iy][ix] (+)= sum over o and the taps k with ix + PW - kw*DW divisible by
 * SW (likewise along D and H) of dyq[n][o][qz][qy][(ix + PW - kw*DW)/SW + FQW] * w[o][c][k], with
 * qz = (iz + PD - kd*DD)/SD - zq0, qy = (iy + PH - kh*DH)/SH - yq0: dyq is the gradient padded
 * for this slab, plane zq0 and row yq0 first, FQW zeros in front of each row.
 * A work-item: input voxels ix = SW*(j0 + l) + ph (l < 16, ph < SW) of one row, OB channels.
 * global: (ceil(ceil(IW/SW)/VW), IH, Ns * CBLK * IDs). */
__kernel void conv_bwd_data_s(__global const float *dyq, int dyqoff, int O, int Dq, int Hq, int Wq,
                              __global const float *wt, int wtoff, __global float *dx, int dxoff,
                              int C, int ID, int IH, int IW, int IDs, int iz0, int zq0, int yq0, int Ns,
                              int accumulate) {
  int jb = get_global_id(0), iy = get_global_id(1), z = get_global_id(2);
  int CBLK = (C + OB - 1) / OB;
  if (iy >= IH || z >= Ns * CBLK * IDs) return;
  /* the channel block varies fastest: work-items that read the same gradient rows run together */
  int q1 = z / CBLK, cb = z - q1 * CBLK;
  int n = q1 / IDs, izl = q1 - n * IDs;
  int iz = iz0 + izl;
  int j0 = jb * VW;
  float16 acc[SW][OB];
#pragma unroll
  for (int ph = 0; ph < SW; ph++)
#pragma unroll
    for (int i = 0; i < OB; i++) acc[ph][i] = 0.0f;
  __global const float *wp = wt + wtoff + (size_t)cb * O * K3 * OB;
  for (int o = 0; o < O; o++) {
    __global const float *dyo = dyq + dyqoff + (size_t)(n * O + o) * Dq * Hq * Wq + j0 + FQW;
    for (int kd = 0; kd < KD; kd++) {
      int tz = iz + PD - kd * DD - SD * zq0; /* >= 0 by the choice of zq0 */
      int qz = tz / SD;
      if (qz * SD != tz) continue;
      for (int kh = 0; kh < KH; kh++) {
        int ty = iy + PH - kh * DH - SH * yq0;
        int qy = ty / SH;
        if (qy * SH != ty) continue;
        __global const float *row = dyo + ((size_t)qz * Hq + qy) * Wq;
        __global const float *wk = wp + (kd * KH + kh) * KW * OB;
#pragma unroll
        for (int ph = 0; ph < SW; ph++)
#pragma unroll
          for (int kw = 0; kw < KW; kw++)
            if ((ph + PW - kw * DW) % SW == 0) {
              float16 v = vload16(0, row + (ph + PW - kw * DW) / SW);
#pragma unroll
              for (int i = 0; i < OB; i++) acc[ph][i] = fma(v, (float16)(wk[kw * OB + i]), acc[ph][i]);
            }
      }
    }
    wp += K3 * OB;
  }
  size_t iplane = (size_t)ID * IH * IW;
  __global float *xb = dx + dxoff + ((size_t)n * C + cb * OB) * iplane + (size_t)iz * IH * IW + (size_t)iy * IW;
  int left = C - cb * OB, ix0 = j0 * SW;
#pragma unroll
  for (int i = 0; i < OB; i++) {
    if (i < left) {
#if SW == 1
    store_row(xb + i * iplane, ix0, IW, acc[0][i], accumulate);
#elif SW == 2
    const uint16 lo = (uint16)(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const uint16 hi = (uint16)(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    store_row(xb + i * iplane, ix0, IW, shuffle2(acc[0][i], acc[1][i], lo), accumulate);
    store_row(xb + i * iplane, ix0 + VW, IW, shuffle2(acc[0][i], acc[1][i], hi), accumulate);
#else
    float a[SW * VW], t[VW];
#pragma unroll
    for (int ph = 0; ph < SW; ph++) {
      vstore16(acc[ph][i], 0, t);
      for (int l = 0; l < VW; l++) a[l * SW + ph] = t[l];
    }
#pragma unroll
    for (int h = 0; h < SW; h++) store_row(xb + i * iplane, ix0 + h * VW, IW, vload16(h, a), accumulate);
#endif
    }
  }
}

/* ---------------------------------------------------------------- weight gradient */

/* part[q][o][c][kd][kh][kw] = sum over the planes t of chunk q (t = nl * ODs + od, t in
 * [q * tpc, (q+1) * tpc)), oh and ow < OWv of
 *   dyv[nl][o][dyod0 + od][oh][ow] * xp[nl][c][od*SD + kd*DD][oh*SH + kh*DH][ow*SW + kw*DW]
 * with xp padded as for conv_fwd and dyv rows of OWv (a multiple of VW) values, zeros past OW,
 * planes dyOD per channel. global: (C * KD * KH, OBLK, nchunk). */
__kernel void conv_bwd_weights(__global const float *xp, int xpoff, int C, int Dp, int Hp, int Wph,
                               __global const float *dyv, int dyoff, int O, int dyOD, int dyod0, int OH, int OWv,
                               int ODs, int Ns, int tpc, __global float *part, int partoff) {
  int g = get_global_id(0), ob = get_global_id(1), q = get_global_id(2);
  int OBLK = (O + OB - 1) / OB;
  int T = Ns * ODs, nchunk = (T + tpc - 1) / tpc;
  if (g >= C * KD * KH || ob >= OBLK || q >= nchunk) return;
  int g1 = g / KH, kh = g - g1 * KH;
  int c = g1 / KD, kd = g1 - c * KD;
  float16 acc[KW][OB];
#pragma unroll
  for (int kw = 0; kw < KW; kw++)
#pragma unroll
    for (int i = 0; i < OB; i++) acc[kw][i] = 0.0f;
  size_t Wrow = (size_t)Wph * SW, plane = (size_t)Hp * Wrow, dplane = (size_t)dyOD * OH * OWv;
  size_t oo[OB];
#pragma unroll
  for (int i = 0; i < OB; i++) oo[i] = (size_t)min(ob * OB + i, O - 1) * dplane; /* rows past O: read, never stored */
  int t1 = min((q + 1) * tpc, T);
  for (int t = q * tpc; t < t1; t++) {
    int nl = t / ODs, od = t - nl * ODs;
    __global const float *xpl = xp + xpoff + ((size_t)(nl * C + c) * Dp + od * SD + kd * DD) * plane + (size_t)(kh * DH) * Wrow;
    __global const float *dpl = dyv + dyoff + (size_t)nl * O * dplane + (size_t)(dyod0 + od) * OH * OWv;
    for (int oh = 0; oh < OH; oh++) {
      __global const float *xrow = xpl + (size_t)oh * SH * Wrow;
      __global const float *drow = dpl + (size_t)oh * OWv;
      for (int ow0 = 0; ow0 < OWv; ow0 += VW) {
        float16 xv[KW];
#pragma unroll
        for (int kw = 0; kw < KW; kw++) xv[kw] = vload16(0, xrow + WOFF(kw, Wph) + ow0);
#pragma unroll
        for (int i = 0; i < OB; i++) {
          float16 gv = vload16(0, drow + oo[i] + ow0);
#pragma unroll
          for (int kw = 0; kw < KW; kw++) acc[kw][i] = fma(gv, xv[kw], acc[kw][i]);
        }
      }
    }
  }
  __global float *out = part + partoff + (size_t)q * O * C * K3;
#pragma unroll
  for (int i = 0; i < OB; i++) {
    int o = ob * OB + i;
    if (o < O) {
#pragma unroll
      for (int kw = 0; kw < KW; kw++) {
        float16 a = acc[kw][i];
        float8 s8 = a.lo + a.hi;
        float4 s4 = s8.lo + s8.hi;
        out[(((size_t)o * C + c) * KD + kd) * KH * KW + kh * KW + kw] = (s4.x + s4.y) + (s4.z + s4.w);
      }
    }
  }
}
