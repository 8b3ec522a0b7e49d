/* Direct 3D convolution for stride 1, written for wide-vector devices (CPUs through PoCL):
 * each work-item computes VW = 16 consecutive output voxels along W (one float16) for OB = 8
 * output channels, so the inner loop is 8 * KW vector FMAs per KW input loads. The input is
 * pre-padded (pad_input) so the loops carry no bounds checks; weights are reordered (reorder_weights)
 * so the 8 output channels of one tap are adjacent.
 *
 * The same forward kernel computes the data gradient (a stride-1 conv of the padded output
 * gradient with the flipped, transposed weights). */

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
#define OB 8
#define VW 16

/* xp[nc][z][y][x] = x[nc][z - pd][y - ph][x - pw] inside, 0 outside. One work-item per padded row
 * (contiguous copies vectorise on CPUs). global: (Hp, Dp * NC). */
__kernel void pad_input(__global const float *x, int xoff, int D, int H, int W,
                        __global float *xp, int xpoff, int Dp, int Hp, int Wp, int pd, int ph, int pw) {
  int iy = get_global_id(0), zz = get_global_id(1);
  if (iy >= Hp) return;
  int nc = zz / Dp, iz = zz % Dp;
  int sz = iz - pd, sy = iy - ph;
  __global float *dst = xp + xpoff + (((size_t)nc * Dp + iz) * Hp + iy) * Wp;
  int inside = sz >= 0 && sz < D && sy >= 0 && sy < H;
  int x0 = inside ? min(pw, Wp) : Wp, x1 = inside ? min(pw + W, Wp) : Wp;
  for (int i = 0; i < x0; i++) dst[i] = 0.0f;
  if (inside) {
    __global const float *src = x + xoff + (((size_t)nc * D + sz) * H + sy) * W - pw;
    for (int i = x0; i < x1; i++) dst[i] = src[i];
  }
  for (int i = x1; i < Wp; i++) dst[i] = 0.0f;
}

/* wt[ob][c][kd][kh][kw][OB] from PyTorch w[o][c][kd][kh][kw] (O x C), zero for o >= O.
 * flip_transpose != 0 builds the data-gradient kernel instead: the conv maps O -> C with
 * w'[c][o][k] = w[o][c][K-1-k] (here 'O' and 'C' name the gradient conv's out/in channels). */
__kernel void reorder_weights(__global const float *w, int woff, int O, int C, int flip_transpose,
                              __global float *wt, int wtoff) {
  int i = get_global_id(0);
  int K3 = KD * KH * KW, OBLK = (O + OB - 1) / OB;
  if (i >= OBLK * OB * C * K3) return;
  int o8 = i % OB, k = (i / OB) % K3, c = (i / (OB * K3)) % C, ob = i / (OB * K3 * C);
  int o = ob * OB + o8;
  float v = 0.0f;
  if (o < O) {
    if (flip_transpose) v = w[woff + ((size_t)c * O + o) * K3 + (K3 - 1 - k)]; /* original w is [C][O][K] here */
    else v = w[woff + ((size_t)o * C + c) * K3 + k];
  }
  wt[wtoff + i] = v;
}

#define FMA8(acc, v, wv)              \
  acc##0 = fma(v, (float16)((wv).s0), acc##0); \
  acc##1 = fma(v, (float16)((wv).s1), acc##1); \
  acc##2 = fma(v, (float16)((wv).s2), acc##2); \
  acc##3 = fma(v, (float16)((wv).s3), acc##3); \
  acc##4 = fma(v, (float16)((wv).s4), acc##4); \
  acc##5 = fma(v, (float16)((wv).s5), acc##5); \
  acc##6 = fma(v, (float16)((wv).s6), acc##6); \
  acc##7 = fma(v, (float16)((wv).s7), acc##7);

static void store_row(__global float *y, size_t base, int ow0, int OW, float16 v, int accumulate) {
  if (ow0 + VW <= OW) {
    if (accumulate) v += vload16(0, y + base + ow0);
    vstore16(v, 0, y + base + ow0);
  } else {
    float a[VW];
    vstore16(v, 0, a);
    for (int i = 0; ow0 + i < OW; i++) y[base + ow0 + i] = accumulate ? y[base + ow0 + i] + a[i] : a[i];
  }
}

/* y[n][o][od][oh][ow] (+)= sum_c,k xp[n][c][od + kd*DD][oh + kh*DH][ow + kw*DW] * w[o][c][k].
 * global: (ceil(OW / VW), OH, N * OBLK * OD). */
__kernel void conv_fwd(__global const float *xp, int xpoff, int C, int Dp, int Hp, int Wp,
                       __global const float *wt, int wtoff, __global float *y, int yoff,
                       int O, int OD, int OH, int OW, int accumulate) {
  int owb = get_global_id(0), oh = get_global_id(1), z = get_global_id(2);
  int OBLK = (O + OB - 1) / OB;
  if (oh >= OH) return;
  int od = z % OD, ob = (z / OD) % OBLK, n = z / (OD * OBLK);
  int ow0 = owb * VW;
  float16 a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
  __global const float *wp = wt + wtoff + (size_t)ob * C * KD * KH * KW * OB;
  for (int c = 0; c < C; c++) {
    __global const float *xc = xp + xpoff + ((size_t)(n * C + c) * Dp + od) * Hp * Wp + (size_t)oh * Wp + ow0;
    for (int kd = 0; kd < KD; kd++) {
      for (int kh = 0; kh < KH; kh++) {
        __global const float *row = xc + (size_t)(kd * DD) * Hp * Wp + (size_t)(kh * DH) * Wp;
        for (int kw = 0; kw < KW; kw++) {
          float16 v = vload16(0, row + kw * DW);
          float8 wv = vload8(0, wp);
          wp += OB;
          FMA8(a, v, wv)
        }
      }
    }
  }
  size_t plane = (size_t)OD * OH * OW, base = (((size_t)n * O + ob * OB) * OD + od) * OH * OW + (size_t)oh * OW;
  int left = O - ob * OB;
  store_row(y, yoff + base, ow0, OW, a0, accumulate);
  if (left > 1) store_row(y, yoff + base + plane, ow0, OW, a1, accumulate);
  if (left > 2) store_row(y, yoff + base + 2 * plane, ow0, OW, a2, accumulate);
  if (left > 3) store_row(y, yoff + base + 3 * plane, ow0, OW, a3, accumulate);
  if (left > 4) store_row(y, yoff + base + 4 * plane, ow0, OW, a4, accumulate);
  if (left > 5) store_row(y, yoff + base + 5 * plane, ow0, OW, a5, accumulate);
  if (left > 6) store_row(y, yoff + base + 6 * plane, ow0, OW, a6, accumulate);
  if (left > 7) store_row(y, yoff + base + 7 * plane, ow0, OW, a7, accumulate);
}

/* dw[o][c][kd][kh][kw] (+)= sum over n, od, oh, ow of dyp[n][o][od][oh][ow] * xp[...shifted...].
 * dyp has rows of OWv (a multiple of VW) with zeros past OW, so whole vectors can be used.
 * One work-item per (c, kd, kh, output-channel block) sums every voxel in a fixed order:
 * deterministic, no atomics. global: (C * KD * KH, OBLK). */
__kernel void conv_bwd_weights(__global const float *xp, int xpoff, int N, int C, int Dp, int Hp, int Wp,
                               __global const float *dyp, int dyoff, int O, int OD, int OH, int OWv,
                               __global float *dw, int dwoff, int accumulate) {
  int g = get_global_id(0), ob = get_global_id(1);
  int OBLK = (O + OB - 1) / OB;
  if (g >= C * KD * KH || ob >= OBLK) return;
  int kh = g % KH, kd = (g / KH) % KD, c = g / (KH * KD);
  float16 acc[KW][OB];
  for (int kw = 0; kw < KW; kw++)
    for (int o = 0; o < OB; o++) acc[kw][o] = 0.0f;
  int oo[OB];
  for (int o = 0; o < OB; o++) oo[o] = min(ob * OB + o, O - 1); /* clamp: rows past O are read, never stored */
  for (int n = 0; n < N; n++)
    for (int od = 0; od < OD; od++)
      for (int oh = 0; oh < OH; oh++) {
        __global const float *xrow = xp + xpoff + (((size_t)(n * C + c) * Dp + od + kd * DD) * Hp + oh + kh * DH) * Wp;
        for (int ow0 = 0; ow0 < OWv; ow0 += VW) {
          float16 xv[KW];
          for (int kw = 0; kw < KW; kw++) xv[kw] = vload16(0, xrow + ow0 + kw * DW);
          for (int o = 0; o < OB; o++) {
            float16 gv = vload16(0, dyp + dyoff + (((size_t)(n * O + oo[o]) * OD + od) * OH + oh) * OWv + ow0);
            for (int kw = 0; kw < KW; kw++) acc[kw][o] = fma(gv, xv[kw], acc[kw][o]);
          }
        }
      }
  for (int o = 0; o < OB; o++) {
    if (ob * OB + o >= O) break;
    for (int kw = 0; kw < KW; kw++) {
      float16 a = acc[kw][o];
      float8 s8 = a.lo + a.hi;
      float4 s4 = s8.lo + s8.hi;
      float s = (s4.x + s4.y) + (s4.z + s4.w);
      size_t i = dwoff + ((((size_t)(ob * OB + o) * C + c) * KD + kd) * KH + kh) * KW + kw;
      dw[i] = accumulate ? dw[i] + s : s;
    }
  }
}

/* ---------------------------------------------------------------- shared by the direct families */

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
  int p = zz / Dp, iz = zz % Dp;
  int sz = iz - fz, sy = iy - fy;
  int inside = sz >= 0 && sz < D && sy >= 0 && sy < H;
  __global float *row = dst + doff + (((size_t)p * Dp + iz) * Hp + iy) * (size_t)(Wph * SP);
  __global const float *s = src + soff + (((size_t)p * D + (inside ? sz : 0)) * H + (inside ? sy : 0)) * W;
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
