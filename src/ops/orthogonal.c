/* Learned orthogonal transforms of invertible networks (layers.md part 3).
 *
 * Q = B * Cayley(A), Cayley(A) = (I + A)^-1 (I - A), A = W - W^T, W a free n x n parameter.
 * B is a fixed orthogonal base: the identity, or for the 2x2x2 down/up sampling the 3D Haar
 * matrix. The base exists because the Haar matrix H = h (x) h (x) h (h = [[1,1],[1,-1]]/sqrt 2,
 * symmetric, H^2 = I) has eigenvalue -1 four times, and Cayley(A) never has -1 as an eigenvalue:
 * no W gives Cayley(W - W^T) = H. With B = H and W = 0 the layer starts as the Haar transform and
 * W learns a rotation on top of it; with B = I and W = 0 it is the plain squeeze.
 *
 * The 8x8 (or C x C) matrices and the chain rule through Cayley run on the host in double
 * (they are tiny); the voxel work runs in kernels/orthogonal.cl. Gradient through Cayley:
 * with M = I + A, dQ_c = -M^-1 dA (Q_c + I), so for G = dL/dQ and G_c = B^T G
 *   dL/dA = -M^-T G_c (Q_c + I)^T,   dL/dW = dL/dA - (dL/dA)^T. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor.h"

#define ORTHO_OPTS "-DWG=64"
#define ORTHO_WG 64

/* In-place inverse of the n x n matrix a by Gauss-Jordan with partial pivoting; inv receives it.
 * I + A with A skew-symmetric is always invertible (eigenvalues 1 + i lambda), so the pivot is
 * zero only for non-finite input: returns -1 then. a is destroyed. */
static int invert(double *a, double *inv, int n) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) inv[i * n + j] = i == j;
  for (int col = 0; col < n; col++) {
    int p = col;
    for (int r = col + 1; r < n; r++)
      if (fabs(a[r * n + col]) > fabs(a[p * n + col])) p = r;
    if (!(fabs(a[p * n + col]) > 0.0)) return -1;
    if (p != col)
      for (int j = 0; j < n; j++) {
        double t = a[p * n + j]; a[p * n + j] = a[col * n + j]; a[col * n + j] = t;
        t = inv[p * n + j]; inv[p * n + j] = inv[col * n + j]; inv[col * n + j] = t;
      }
    double d = 1.0 / a[col * n + col];
    for (int j = 0; j < n; j++) { a[col * n + j] *= d; inv[col * n + j] *= d; }
    for (int r = 0; r < n; r++) {
      if (r == col || a[r * n + col] == 0.0) continue;
      double f = a[r * n + col];
      for (int j = 0; j < n; j++) { a[r * n + j] -= f * a[col * n + j]; inv[r * n + j] -= f * inv[col * n + j]; }
    }
  }
  return 0;
}

/* The 3D Haar matrix: row i = filter (fz, fy, fx) = bits of i, column j = sub-voxel (dz, dy, dx). */
static double haar(int i, int j) {
  double v = 1.0 / sqrt(8.0);
  for (int axis = 0; axis < 3; axis++)
    if (((i >> axis) & 1) && ((j >> axis) & 1)) v = -v;
  return v;
}

/* Work arrays of one n x n Cayley evaluation. */
typedef struct {
  int n;
  double *a, *m, *minv, *qc, *t; /* A; scratch; M^-1; Cayley(A); scratch */
} cayley_ws;

static int ws_init(cayley_ws *w, int n) {
  w->n = n;
  w->a = malloc(5 * (size_t)n * n * sizeof(double));
  if (!w->a) return -1;
  w->m = w->a + (size_t)n * n;
  w->minv = w->m + (size_t)n * n;
  w->qc = w->minv + (size_t)n * n;
  w->t = w->qc + (size_t)n * n;
  return 0;
}

/* From W (float, n x n): A, M^-1 and Cayley(A) in w; q (may be NULL) = B * Cayley(A) as floats. */
static int cayley_eval(cayley_ws *w, const float *wp, int use_haar, float *q) {
  int n = w->n;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double v = (double)wp[i * n + j] - (double)wp[j * n + i];
      w->a[i * n + j] = v;
      w->m[i * n + j] = (i == j) + v;
    }
  if (invert(w->m, w->minv, n)) return -1;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double s = 0.0;
      for (int k = 0; k < n; k++) s += w->minv[i * n + k] * ((k == j) - w->a[k * n + j]);
      w->qc[i * n + j] = s;
    }
  if (q)
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        double s = 0.0;
        if (use_haar)
          for (int k = 0; k < n; k++) s += haar(i, k) * w->qc[k * n + j];
        else
          s = w->qc[i * n + j];
        q[i * n + j] = (float)s;
      }
  return 0;
}

/* gw (n x n, floats, written or added to) = dL/dW from g = dL/dQ, after cayley_eval. */
static void cayley_grad(cayley_ws *w, const float *g, int use_haar, double *gw) {
  int n = w->n;
  double *gc = w->m, *t = w->t; /* m is free after cayley_eval */
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double s = 0.0;
      if (use_haar)
        for (int k = 0; k < n; k++) s += haar(k, i) * (double)g[k * n + j];
      else
        s = g[i * n + j];
      gc[i * n + j] = s;
    }
  for (int i = 0; i < n; i++) /* t = G_c (Q_c + I)^T */
    for (int j = 0; j < n; j++) {
      double s = 0.0;
      for (int k = 0; k < n; k++) s += gc[i * n + k] * (w->qc[j * n + k] + (j == k));
      t[i * n + j] = s;
    }
  for (int i = 0; i < n; i++) /* dL/dA = -M^-T t, kept in gc */
    for (int j = 0; j < n; j++) {
      double s = 0.0;
      for (int k = 0; k < n; k++) s -= w->minv[k * n + i] * t[k * n + j];
      gc[i * n + j] = s;
    }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) gw[i * n + j] = gc[i * n + j] - gc[j * n + i];
}

vx_status vx_cayley_orthogonal(const float *w, int n, vx_ortho_base base, float *q) {
  if (!w || !q || n < 1) return VX_ERR_INVALID_ARGUMENT;
  if (base != VX_ORTHO_BASE_IDENTITY && !(base == VX_ORTHO_BASE_HAAR && n == 8)) return VX_ERR_INVALID_ARGUMENT;
  cayley_ws ws;
  if (ws_init(&ws, n)) return VX_ERR_OUT_OF_MEMORY;
  int bad = cayley_eval(&ws, w, base == VX_ORTHO_BASE_HAAR, q);
  free(ws.a);
  return bad ? VX_ERR_NOT_FINITE : VX_OK;
}

/* The matrices of all 'count' groups: downloads w ([count, n, n]) and writes Q of each into
 * workspace floats [0, count*n*n); the workspace is sized for 'ws_floats'. *wh receives the
 * downloaded W (malloc'ed, the caller frees it). */
static vx_status upload_q(vx_context *ctx, const char *op, const vx_tensor *w, int count, int n, int use_haar,
                          size_t ws_floats, cl_mem *ws, float **wh) {
  size_t nq = (size_t)count * n * n;
  *wh = NULL;
  vx_status st = vx_workspace(ctx, ws_floats * sizeof(float), ws);
  if (st != VX_OK) return st;
  float *h = malloc(2 * nq * sizeof(float));
  cayley_ws cw;
  if (!h || ws_init(&cw, n)) {
    free(h);
    return vx_fail(ctx, VX_ERR_OUT_OF_MEMORY, "%s: no host memory for %d matrices of %dx%d", op, count, n, n);
  }
  if ((st = vx_tensor_download(w, h)) != VX_OK) goto out;
  for (int c = 0; c < count; c++)
    if (cayley_eval(&cw, h + (size_t)c * n * n, use_haar, h + nq + (size_t)c * n * n)) {
      st = vx_fail(ctx, VX_ERR_NOT_FINITE, "%s: w of group %d holds non-finite values", op, c);
      goto out;
    }
  cl_int err = clEnqueueWriteBuffer(ctx->queue, *ws, CL_TRUE, 0, nq * sizeof(float), h + nq, 0, NULL, NULL);
  if (err != CL_SUCCESS) st = vx_cl_fail(ctx, err, "uploading orthogonal matrices");
out:
  free(cw.a);
  if (st != VX_OK) free(h);
  else *wh = h;
  return st;
}

/* dw (+)= dL/dW for every group from G = dL/dQ held in workspace floats [nq, 2 nq). */
static vx_status weight_grad(vx_context *ctx, const char *op, cl_mem ws, const float *wh, int count, int n,
                             int use_haar, vx_tensor *dw, int accumulate) {
  size_t nq = (size_t)count * n * n;
  float *g = malloc(2 * nq * sizeof(float));
  double *gw = malloc((size_t)n * n * sizeof(double));
  cayley_ws cw;
  vx_status st = VX_OK;
  if (!g || !gw || ws_init(&cw, n)) {
    free(g);
    free(gw);
    return vx_fail(ctx, VX_ERR_OUT_OF_MEMORY, "%s: no host memory for the weight gradient", op);
  }
  float *out = g + nq;
  cl_int err = clEnqueueReadBuffer(ctx->queue, ws, CL_TRUE, nq * sizeof(float), nq * sizeof(float), g, 0, NULL, NULL);
  if (err != CL_SUCCESS) { st = vx_cl_fail(ctx, err, "reading dL/dQ"); goto out; }
  if (accumulate && (st = vx_tensor_download(dw, out)) != VX_OK) goto out;
  for (int c = 0; c < count; c++) {
    size_t o = (size_t)c * n * n;
    cayley_eval(&cw, wh + o, use_haar, NULL); /* succeeded in upload_q */
    cayley_grad(&cw, g + o, use_haar, gw);
    for (size_t i = 0; i < (size_t)n * n; i++) out[o + i] = (float)((accumulate ? (double)out[o + i] : 0.0) + gw[i]);
  }
  st = vx_tensor_upload(dw, out);
out:
  free(g);
  free(gw);
  free(cw.a);
  return st;
}

/* ---------------------------------------------------------------- down / up sampling */
static vx_status check_down(vx_context *ctx, const char *op, const vx_tensor *fine, const char *fname,
                            const vx_tensor *coarse, const char *cname, const vx_tensor *w, vx_ortho_base base) {
  if (!fine || !coarse || !w)
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: %s, %s and w are required", op, fname, cname);
  if (base != VX_ORTHO_BASE_IDENTITY && base != VX_ORTHO_BASE_HAAR)
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: base %d is neither identity (0) nor Haar (1)", op, (int)base);
  const int *f = fine->shape;
  char b[96];
  if (f[2] % 2 || f[3] % 2 || f[4] % 2)
    return vx_fail(ctx, VX_ERR_SHAPE,
                   "%s: %s has shape %s; the 2x2x2 down/up sampling needs even D, H and W (pad the input to even "
                   "sizes, as the invertible networks pad to a multiple of 2^levels and crop back)",
                   op, fname, vx_shape_str(fine, b, sizeof b));
  int cs[5] = {f[0], 8 * f[1], f[2] / 2, f[3] / 2, f[4] / 2};
  vx_status st = vx_check_shape(ctx, op, cname, coarse, cs);
  if (st != VX_OK) return st;
  if (w->numel != (size_t)f[1] * 64)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: w has %zu elements, expected C*64 = %d ([C, 8, 8] for C = %d channels)", op,
                   w->numel, f[1] * 64, f[1]);
  return VX_OK;
}

/* dir 0: coarse (+)= Q fine (ortho_down); 1: fine (+)= Q^T coarse (ortho_up). */
static vx_status down_up(vx_context *ctx, int dir, const vx_tensor *fine, const vx_tensor *coarse, cl_mem q,
                         int accumulate) {
  const int *f = fine->shape;
  int NC = f[0] * f[1];
  size_t g = (size_t)NC * (f[2] / 2) * (f[3] / 2) * (f[4] / 2);
  const vx_tensor *src = dir ? coarse : fine, *dst = dir ? fine : coarse;
  vx_arg args[] = {VX_MEM(src->buf), VX_INT(src->offset), VX_MEM(q),      VX_INT(0),
                   VX_MEM(dst->buf), VX_INT(dst->offset), VX_INT(NC),     VX_INT(f[1]),
                   VX_INT(f[2] / 2), VX_INT(f[3] / 2),    VX_INT(f[4] / 2), VX_INT(accumulate != 0)};
  return vx_launch(ctx, "orthogonal", ORTHO_OPTS, dir ? "ortho_up" : "ortho_down", 1, &g, NULL, args, VX_NARGS(args));
}

/* G = dL/dQ into workspace floats [C*64, 2*C*64). */
static vx_status down_dq(vx_context *ctx, const vx_tensor *coarse, const vx_tensor *fine, cl_mem ws) {
  const int *f = fine->shape;
  size_t local = ORTHO_WG, global = (size_t)f[1] * 8 * ORTHO_WG;
  vx_arg args[] = {VX_MEM(coarse->buf), VX_INT(coarse->offset), VX_MEM(fine->buf), VX_INT(fine->offset),
                   VX_MEM(ws),          VX_INT(f[1] * 64),      VX_INT(f[0]),      VX_INT(f[1]),
                   VX_INT(f[2] / 2),    VX_INT(f[3] / 2),       VX_INT(f[4] / 2)};
  return vx_launch(ctx, "orthogonal", ORTHO_OPTS, "ortho_dq", 1, &global, &local, args, VX_NARGS(args));
}

vx_status vx_orthogonal_down3d_forward(vx_context *ctx, const vx_tensor *x, const vx_tensor *w, vx_ortho_base base,
                                       vx_tensor *y) {
  const char *op = "orthogonal_down3d_forward";
  vx_status st = check_down(ctx, op, x, "input x", y, "output y", w, base);
  if (st != VX_OK) return st;
  int C = x->shape[1];
  cl_mem ws;
  float *wh;
  if ((st = upload_q(ctx, op, w, C, 8, base == VX_ORTHO_BASE_HAAR, (size_t)C * 64, &ws, &wh)) != VX_OK) return st;
  free(wh);
  return down_up(ctx, 0, x, y, ws, 0);
}

vx_status vx_orthogonal_down3d_inverse(vx_context *ctx, const vx_tensor *y, const vx_tensor *w, vx_ortho_base base,
                                       vx_tensor *x) {
  const char *op = "orthogonal_down3d_inverse";
  vx_status st = check_down(ctx, op, x, "output x", y, "input y", w, base);
  if (st != VX_OK) return st;
  int C = x->shape[1];
  cl_mem ws;
  float *wh;
  if ((st = upload_q(ctx, op, w, C, 8, base == VX_ORTHO_BASE_HAAR, (size_t)C * 64, &ws, &wh)) != VX_OK) return st;
  free(wh);
  return down_up(ctx, 1, x, y, ws, 0);
}

vx_status vx_orthogonal_down3d_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *w, vx_ortho_base base,
                                        const vx_tensor *dy, vx_tensor *dx, vx_tensor *dw, int accumulate) {
  const char *op = "orthogonal_down3d_backward";
  vx_status st = check_down(ctx, op, x, "input x", dy, "output gradient dy", w, base);
  if (st != VX_OK) return st;
  if (dx && (st = vx_check_shape(ctx, op, "input gradient dx", dx, x->shape)) != VX_OK) return st;
  if (dw && dw->numel != w->numel)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: dw has %zu elements, expected %zu (those of w)", op, dw->numel, w->numel);
  int C = x->shape[1], haar_base = base == VX_ORTHO_BASE_HAAR;
  cl_mem ws;
  float *wh;
  if ((st = upload_q(ctx, op, w, C, 8, haar_base, (size_t)C * 128, &ws, &wh)) != VX_OK) return st;
  if (dx) st = down_up(ctx, 1, dx, dy, ws, accumulate);
  if (st == VX_OK && dw) st = down_dq(ctx, dy, x, ws);
  if (st == VX_OK && dw) st = weight_grad(ctx, op, ws, wh, C, 8, haar_base, dw, accumulate);
  free(wh);
  return st;
}

vx_status vx_orthogonal_down3d_inverse_backward(vx_context *ctx, const vx_tensor *y, const vx_tensor *w,
                                                vx_ortho_base base, const vx_tensor *dx, vx_tensor *dy, vx_tensor *dw,
                                                int accumulate) {
  const char *op = "orthogonal_down3d_inverse_backward";
  vx_status st = check_down(ctx, op, dx, "output gradient dx", y, "input y", w, base);
  if (st != VX_OK) return st;
  if (dy && (st = vx_check_shape(ctx, op, "input gradient dy", dy, y->shape)) != VX_OK) return st;
  if (dw && dw->numel != w->numel)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: dw has %zu elements, expected %zu (those of w)", op, dw->numel, w->numel);
  int C = dx->shape[1], haar_base = base == VX_ORTHO_BASE_HAAR;
  cl_mem ws;
  float *wh;
  if ((st = upload_q(ctx, op, w, C, 8, haar_base, (size_t)C * 128, &ws, &wh)) != VX_OK) return st;
  if (dy) st = down_up(ctx, 0, dx, dy, ws, accumulate);
  if (st == VX_OK && dw) st = down_dq(ctx, y, dx, ws);
  if (st == VX_OK && dw) st = weight_grad(ctx, op, ws, wh, C, 8, haar_base, dw, accumulate);
  free(wh);
  return st;
}

/* ---------------------------------------------------------------- channel mixing */
static vx_status check_mix(vx_context *ctx, const char *op, const vx_tensor *a, const char *aname, const vx_tensor *b,
                           const char *bname, const vx_tensor *w) {
  if (!a || !b || !w) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: %s, %s and w are required", op, aname, bname);
  vx_status st = vx_check_shape(ctx, op, bname, b, a->shape);
  if (st != VX_OK) return st;
  int C = a->shape[1];
  if (w->numel != (size_t)C * C)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: w has %zu elements, expected C*C = %d ([C, C] for C = %d channels)", op,
                   w->numel, C * C, C);
  return VX_OK;
}

static vx_status mix(vx_context *ctx, const vx_tensor *src, vx_tensor *dst, cl_mem q, int transpose, int accumulate) {
  size_t g = src->numel;
  vx_arg args[] = {VX_MEM(src->buf), VX_INT(src->offset), VX_MEM(q), VX_INT(0), VX_MEM(dst->buf), VX_INT(dst->offset),
                   VX_INT(src->shape[0]), VX_INT(src->shape[1]), VX_INT(vx_spatial(src)), VX_INT(transpose),
                   VX_INT(accumulate != 0)};
  return vx_launch(ctx, "orthogonal", ORTHO_OPTS, "mix_apply", 1, &g, NULL, args, VX_NARGS(args));
}

/* G[i][j] = sum a_i b_j into workspace floats [C*C, 2*C*C). */
static vx_status mix_dq(vx_context *ctx, const vx_tensor *a, const vx_tensor *b, cl_mem ws) {
  int C = a->shape[1];
  size_t local = ORTHO_WG, global = (size_t)C * C * ORTHO_WG;
  vx_arg args[] = {VX_MEM(a->buf), VX_INT(a->offset), VX_MEM(b->buf), VX_INT(b->offset), VX_MEM(ws), VX_INT(C * C),
                   VX_INT(a->shape[0]), VX_INT(C), VX_INT(vx_spatial(a))};
  return vx_launch(ctx, "orthogonal", ORTHO_OPTS, "mix_dq", 1, &global, &local, args, VX_NARGS(args));
}

vx_status vx_orthogonal_mix_forward(vx_context *ctx, const vx_tensor *x, const vx_tensor *w, vx_tensor *y) {
  const char *op = "orthogonal_mix_forward";
  vx_status st = check_mix(ctx, op, x, "input x", y, "output y", w);
  if (st != VX_OK) return st;
  int C = x->shape[1];
  cl_mem ws;
  float *wh;
  if ((st = upload_q(ctx, op, w, 1, C, 0, (size_t)C * C, &ws, &wh)) != VX_OK) return st;
  free(wh);
  return mix(ctx, x, y, ws, 0, 0);
}

vx_status vx_orthogonal_mix_inverse(vx_context *ctx, const vx_tensor *y, const vx_tensor *w, vx_tensor *x) {
  const char *op = "orthogonal_mix_inverse";
  vx_status st = check_mix(ctx, op, y, "input y", x, "output x", w);
  if (st != VX_OK) return st;
  int C = y->shape[1];
  cl_mem ws;
  float *wh;
  if ((st = upload_q(ctx, op, w, 1, C, 0, (size_t)C * C, &ws, &wh)) != VX_OK) return st;
  free(wh);
  return mix(ctx, y, x, ws, 1, 0);
}

/* One body for both backwards: 'in' is the op's input, 'g' the gradient of its output, 'din'
 * receives the input gradient (M^T g: Q^T for the forward, Q for the inverse). */
static vx_status mix_backward(vx_context *ctx, const char *op, int inverse, const vx_tensor *in, const vx_tensor *w,
                              const vx_tensor *g, vx_tensor *din, vx_tensor *dw, int accumulate) {
  vx_status st = check_mix(ctx, op, in, "input", g, "output gradient", w);
  if (st != VX_OK) return st;
  if (din && (st = vx_check_shape(ctx, op, "input gradient", din, in->shape)) != VX_OK) return st;
  if (dw && dw->numel != w->numel)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: dw has %zu elements, expected %zu (those of w)", op, dw->numel, w->numel);
  int C = in->shape[1];
  cl_mem ws;
  float *wh;
  if ((st = upload_q(ctx, op, w, 1, C, 0, (size_t)C * C * 2, &ws, &wh)) != VX_OK) return st;
  if (din) st = mix(ctx, g, din, ws, !inverse, accumulate);
  /* forward y = Q x: dQ_ij = sum g_i x_j; inverse x = Q^T y: dQ_ij = sum y_i g_j */
  if (st == VX_OK && dw) st = inverse ? mix_dq(ctx, in, g, ws) : mix_dq(ctx, g, in, ws);
  if (st == VX_OK && dw) st = weight_grad(ctx, op, ws, wh, 1, C, 0, dw, accumulate);
  free(wh);
  return st;
}

vx_status vx_orthogonal_mix_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *w, const vx_tensor *dy,
                                     vx_tensor *dx, vx_tensor *dw, int accumulate) {
  return mix_backward(ctx, "orthogonal_mix_backward", 0, x, w, dy, dx, dw, accumulate);
}

vx_status vx_orthogonal_mix_inverse_backward(vx_context *ctx, const vx_tensor *y, const vx_tensor *w,
                                             const vx_tensor *dx, vx_tensor *dy, vx_tensor *dw, int accumulate) {
  return mix_backward(ctx, "orthogonal_mix_inverse_backward", 1, y, w, dx, dy, dw, accumulate);
}
