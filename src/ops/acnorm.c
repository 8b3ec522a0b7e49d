/* AC-Norm (layers.md part 4): a batch norm whose effective affine is the target affine plus its
 * mix by the similarity matrix S of target and source channels. C is small (<= a few hundred),
 * so S is computed on the host in double from the downloaded affines, and the layer is a
 * plain batch norm with gamma' = (I + S) gamma_t, beta' = (I + S) beta_t; the backward maps
 * the batch norm's dgamma', dbeta' back through the constant (I + S)^T. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor.h"

vx_status vx_acnorm_similarity(const float *gamma_s, const float *beta_s, const float *gamma_t, const float *beta_t,
                               int C, float eps, double *S) {
  if (!gamma_s || !beta_s || !gamma_t || !beta_t || !S || C < 1 || !(eps > 0.0f)) return VX_ERR_INVALID_ARGUMENT;
  double *ys = malloc((size_t)C * sizeof *ys), *yt = malloc((size_t)C * sizeof *yt);
  if (!ys || !yt) { free(ys); free(yt); return VX_ERR_OUT_OF_MEMORY; }
  vx_status st = VX_OK;
  for (int c = 0; c < C; c++) {
    ys[c] = (double)beta_s[c] / (fabs((double)gamma_s[c]) + eps);
    yt[c] = (double)beta_t[c] / (fabs((double)gamma_t[c]) + eps);
    if (!isfinite(ys[c]) || !isfinite(yt[c])) st = VX_ERR_NOT_FINITE;
  }
  for (int i = 0; i < C && st == VX_OK; i++) {
    double *row = S + (size_t)i * C, mx = -INFINITY, sum = 0.0;
    for (int j = 0; j < C; j++) {
      row[j] = -fabs(yt[i] - ys[j]) / VX_ACNORM_TAU;
      if (row[j] > mx) mx = row[j];
    }
    for (int j = 0; j < C; j++) sum += (row[j] = exp(row[j] - mx));
    for (int j = 0; j < C; j++) row[j] /= sum;
    double diag = row[i]; /* the diagonal is always kept; others only when at least as similar */
    for (int j = 0; j < C; j++)
      if (j != i && row[j] < diag) row[j] = 0.0;
  }
  free(ys);
  free(yt);
  return st;
}

/* Downloads the four affines and computes S (C*C doubles, malloc'ed into *S). */
static vx_status similarity_of(vx_context *ctx, const char *op, const vx_tensor *gs, const vx_tensor *bs,
                               const vx_tensor *gt, const vx_tensor *bt, float eps, int C, double **S) {
  *S = NULL;
  const vx_tensor *t[4] = {gs, bs, gt, bt};
  const char *names[4] = {"gamma_s", "beta_s", "gamma_t", "beta_t"};
  for (int k = 0; k < 4; k++) {
    if (!t[k]) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: %s is required", op, names[k]);
    if (t[k]->numel != (size_t)C)
      return vx_fail(ctx, VX_ERR_SHAPE, "%s: %s has %zu values, expected %d (one per channel)", op, names[k],
                     t[k]->numel, C);
  }
  if (!(eps > 0.0f)) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: eps is %g, expected > 0", op, (double)eps);
  float *h = malloc((size_t)4 * C * sizeof *h);
  double *s = malloc((size_t)C * C * sizeof *s);
  if (!h || !s) { free(h); free(s); return vx_fail(ctx, VX_ERR_OUT_OF_MEMORY, "%s: host memory for C = %d", op, C); }
  vx_status st = VX_OK;
  for (int k = 0; k < 4 && st == VX_OK; k++) st = vx_tensor_download(t[k], h + (size_t)k * C);
  if (st == VX_OK) {
    st = vx_acnorm_similarity(h, h + C, h + 2 * C, h + 3 * C, C, eps, s);
    if (st == VX_ERR_NOT_FINITE) vx_fail(ctx, st, "%s: an affine value (or beta / |gamma|) is not finite", op);
  }
  free(h);
  if (st != VX_OK) { free(s); return st; }
  *S = s;
  return VX_OK;
}

/* A view of 'count' floats of save starting at 'off' (struct copy: no allocation). */
static vx_tensor slot(const vx_tensor *save, size_t off, int count) {
  vx_tensor v = *save;
  int s[5] = {count, 1, 1, 1, 1};
  memcpy(v.shape, s, sizeof s);
  v.offset = save->offset + off;
  v.numel = (size_t)count;
  v.alloc_bytes = 0;
  return v;
}

/* gamma' = (I + S) gamma_t and beta' likewise, on the host in double. */
static void effective_affine(const double *S, const float *gt, const float *bt, int C, float *g, float *b) {
  for (int i = 0; i < C; i++) {
    double sg = gt[i], sb = bt[i];
    for (int j = 0; j < C; j++) {
      sg += S[(size_t)i * C + j] * gt[j];
      sb += S[(size_t)i * C + j] * bt[j];
    }
    g[i] = (float)sg;
    b[i] = (float)sb;
  }
}

vx_status vx_acnorm_forward(vx_context *ctx, const vx_tensor *x, const vx_tensor *gamma_s, const vx_tensor *beta_s,
                            const vx_tensor *gamma_t, const vx_tensor *beta_t, vx_tensor *running_mean,
                            vx_tensor *running_var, int training, float momentum, float eps, vx_activation act,
                            float slope, vx_tensor *y, vx_tensor *save) {
  const char *op = "acnorm_forward";
  if (!x || !y || !save) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: x, y and save are required", op);
  int C = x->shape[1];
  size_t need = (size_t)6 * C + (size_t)C * C;
  if (save->numel < need)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: save has %zu elements, expected at least %zu (6C + C*C, C = %d)", op,
                   save->numel, need, C);
  double *S;
  vx_status st = similarity_of(ctx, op, gamma_s, beta_s, gamma_t, beta_t, eps, C, &S);
  if (st != VX_OK) return st;
  float *h = malloc(((size_t)4 * C + (size_t)C * C) * sizeof *h);
  if (!h) { free(S); return vx_fail(ctx, VX_ERR_OUT_OF_MEMORY, "%s: host memory for C = %d", op, C); }
  float *gt = h, *bt = h + C, *ge = h + 2 * C, *be = h + 3 * C, *sf = h + 4 * C;
  st = vx_tensor_download(gamma_t, gt);
  if (st == VX_OK) st = vx_tensor_download(beta_t, bt);
  if (st == VX_OK) {
    effective_affine(S, gt, bt, C, ge, be);
    for (size_t k = 0; k < (size_t)C * C; k++) sf[k] = (float)S[k];
    vx_tensor g = slot(save, 2 * (size_t)C, C), b = slot(save, 3 * (size_t)C, C), s = slot(save, 6 * (size_t)C, C * C);
    st = vx_tensor_upload(&g, ge);
    if (st == VX_OK) st = vx_tensor_upload(&b, be);
    if (st == VX_OK) st = vx_tensor_upload(&s, sf);
    vx_tensor stats = slot(save, 0, 2 * C);
    if (st == VX_OK)
      st = vx_batch_norm_forward(ctx, x, &g, &b, running_mean, running_var, training, momentum, eps, act, slope, y,
                                 &stats);
  }
  free(h);
  free(S);
  return st;
}

vx_status vx_acnorm_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *y, const vx_tensor *dy,
                             vx_tensor *save, int training, vx_activation act, float slope, vx_tensor *dx,
                             vx_tensor *dgamma_t, vx_tensor *dbeta_t, int accumulate) {
  const char *op = "acnorm_backward";
  if (!x || !save) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: x and save are required", op);
  if ((dgamma_t == NULL) != (dbeta_t == NULL))
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: dgamma_t and dbeta_t must both be given or both be NULL", op);
  int C = x->shape[1];
  size_t need = (size_t)6 * C + (size_t)C * C;
  if (save->numel < need)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: save has %zu elements, expected at least %zu (6C + C*C, C = %d)", op,
                   save->numel, need, C);
  if (dgamma_t && (dgamma_t->numel != (size_t)C || dbeta_t->numel != (size_t)C))
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: dgamma_t/dbeta_t have %zu/%zu values, expected %d", op, dgamma_t->numel,
                   dbeta_t->numel, C);
  vx_tensor stats = slot(save, 0, 2 * C), g = slot(save, 2 * (size_t)C, C);
  vx_tensor dg = slot(save, 4 * (size_t)C, C), db = slot(save, 5 * (size_t)C, C);
  vx_status st = VX_OK;
  /* one accumulate flag covers dx and dgamma': the scratch slots must start at 0 when it adds */
  if (dgamma_t && accumulate) {
    st = vx_tensor_fill(&dg, 0.0f);
    if (st == VX_OK) st = vx_tensor_fill(&db, 0.0f);
    if (st != VX_OK) return st;
  }
  st = vx_batch_norm_backward(ctx, x, y, dy, &g, &stats, training, act, slope, dx, dgamma_t ? &dg : NULL,
                                        dgamma_t ? &db : NULL, accumulate);
  if (st != VX_OK || !dgamma_t) return st;
  float *h = malloc(((size_t)6 * C + (size_t)C * C) * sizeof *h);
  if (!h) return vx_fail(ctx, VX_ERR_OUT_OF_MEMORY, "%s: host memory for C = %d", op, C);
  float *dge = h, *dbe = h + C, *og = h + 2 * C, *ob = h + 3 * C, *ng = h + 4 * C, *nb = h + 5 * C, *S = h + 6 * C;
  vx_tensor s = slot(save, 6 * (size_t)C, C * C);
  st = vx_tensor_download(&dg, dge);
  if (st == VX_OK) st = vx_tensor_download(&db, dbe);
  if (st == VX_OK) st = vx_tensor_download(&s, S);
  if (st == VX_OK && accumulate) st = vx_tensor_download(dgamma_t, og);
  if (st == VX_OK && accumulate) st = vx_tensor_download(dbeta_t, ob);
  if (st == VX_OK) {
    /* dgamma_t[j] = dgamma'[j] + sum_i S[i][j] dgamma'[i] (S constant) */
    for (int j = 0; j < C; j++) {
      double sg = dge[j], sb = dbe[j];
      for (int i = 0; i < C; i++) {
        sg += (double)S[(size_t)i * C + j] * dge[i];
        sb += (double)S[(size_t)i * C + j] * dbe[i];
      }
      ng[j] = (float)(accumulate ? og[j] + sg : sg);
      nb[j] = (float)(accumulate ? ob[j] + sb : sb);
    }
    st = vx_tensor_upload(dgamma_t, ng);
    if (st == VX_OK) st = vx_tensor_upload(dbeta_t, nb);
  }
  free(h);
  return st;
}

vx_status vx_acnorm_fold(vx_context *ctx, const vx_tensor *gamma_s, const vx_tensor *beta_s, const vx_tensor *gamma_t,
                         const vx_tensor *beta_t, float eps, vx_tensor *gamma_out, vx_tensor *beta_out) {
  const char *op = "acnorm_fold";
  if (!gamma_t || !gamma_out || !beta_out)
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: gamma_t, gamma_out and beta_out are required", op);
  int C = (int)gamma_t->numel;
  if (gamma_out->numel != (size_t)C || beta_out->numel != (size_t)C)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: gamma_out/beta_out have %zu/%zu values, expected %d", op, gamma_out->numel,
                   beta_out->numel, C);
  double *S;
  vx_status st = similarity_of(ctx, op, gamma_s, beta_s, gamma_t, beta_t, eps, C, &S);
  if (st != VX_OK) return st;
  float *h = malloc((size_t)4 * C * sizeof *h);
  if (!h) { free(S); return vx_fail(ctx, VX_ERR_OUT_OF_MEMORY, "%s: host memory for C = %d", op, C); }
  st = vx_tensor_download(gamma_t, h);
  if (st == VX_OK) st = vx_tensor_download(beta_t, h + C);
  if (st == VX_OK) {
    effective_affine(S, h, h + C, C, h + 2 * C, h + 3 * C);
    st = vx_tensor_upload(gamma_out, h + 2 * C);
    if (st == VX_OK) st = vx_tensor_upload(beta_out, h + 3 * C);
  }
  free(h);
  free(S);
  return st;
}

vx_status vx_acnorm_layer_score(vx_context *ctx, const vx_tensor *gamma_s, const vx_tensor *beta_s,
                                const vx_tensor *gamma_t, const vx_tensor *beta_t, float eps, double *score) {
  if (!gamma_t || !score) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "acnorm_layer_score: gamma_t and score are required");
  int C = (int)gamma_t->numel;
  double *S;
  vx_status st = similarity_of(ctx, "acnorm_layer_score", gamma_s, beta_s, gamma_t, beta_t, eps, C, &S);
  if (st != VX_OK) return st;
  double sum = 0.0;
  for (size_t k = 0; k < (size_t)C * C; k++) sum += S[k];
  *score = sum;
  free(S);
  return VX_OK;
}
