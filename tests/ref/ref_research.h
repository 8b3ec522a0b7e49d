/* Plain-C double-precision references for voxcl's research layers (masked-region
 * normalisation, 3D squeeze, Cayley-orthogonal down-sampling and channel mixing), written from
 * the definitions in /work/shared/spec/layers.md parts 2 and 3 with no code shared with the
 * library. Layouts are NCDHW; S = D*H*W. */
#ifndef VOXCL_REF_RESEARCH_H
#define VOXCL_REF_RESEARCH_H

#include <stddef.h>

/* x: [N, C, S], m: [N, K, S], gamma/beta: [K, C]; y: [N, C, S].
 *   mu = sum m x / (sum m + eps), var = sum m (x - mu)^2 / (sum m + eps),
 *   y = sum_k m_k (gamma (x - mu) / sqrt(var + eps) + beta). */
void ref_masked_norm_forward(const double *x, const double *m, const double *gamma, const double *beta, int N,
                             int C, int K, size_t S, double eps, double *y);

/* x: [N, C, D, H, W] (even D, H, W) -> y: [N, 8C, D/2, H/2, W/2],
 * y[n, c*8 + dz*4 + dy*2 + dx, z, y, x] = x[n, c, 2z+dz, 2y+dy, 2x+dx]; and the inverse. */
void ref_squeeze3d(const double *x, int N, int C, int D, int H, int W, double *y);
void ref_unsqueeze3d(const double *y, int N, int C, int D, int H, int W, double *x);

/* q (n x n) = B * (I + A)^-1 (I - A), A = w - w^T; B = I, or the 3D Haar matrix when haar (n = 8):
 * B[i][j] = (-1)^popcount(i & j) / sqrt 8. Solved column by column by Gaussian elimination. */
void ref_cayley(const double *w, int n, int haar, double *q);

/* y = squeeze then per channel the 8x8 q_c ([C, 8, 8]): y[n, c*8+i] = sum_j q_c[i][j] sq[n, c*8+j];
 * the inverse applies q_c^T. x: [N, C, D, H, W]. */
void ref_ortho_down(const double *x, int N, int C, int D, int H, int W, const double *q, double *y);
void ref_ortho_up(const double *y, int N, int C, int D, int H, int W, const double *q, double *x);

/* y[n, i, v] = sum_j M[i][j] x[n, j, v], M = q (C x C) or its transpose. */
void ref_mix(const double *x, int N, int C, size_t S, const double *q, int transpose, double *y);

#endif
