/* Losses. Soft Dice + cross-entropy (nnU-Net's DiceCE): per-(sample, class) statistics come
 * back to the host (a few floats), the loss is formed there in double precision, and the
 * gradient kernel gets the per-class coefficients. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tensor.h"

#define LOSS_WG 64

void vx_loss_params_init(vx_loss_params *p) {
  p->ce_weight = 1.0f;
  p->dice_weight = 1.0f;
  p->dice_include_background = 0;
  p->dice_smooth = 1e-5f;
}

vx_status vx_loss_dice_ce(vx_context *ctx, const vx_tensor *logits, const vx_tensor *labels, const vx_loss_params *p,
                          float *loss, vx_tensor *dlogits) {
  const char *op = "loss_dice_ce";
  vx_loss_params def;
  if (!p) { vx_loss_params_init(&def); p = &def; }
  if (!logits || !labels || !loss) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: logits, labels and loss are required", op);
  int N = logits->shape[0], K = logits->shape[1];
  int e[5] = {N, 1, logits->shape[2], logits->shape[3], logits->shape[4]};
  vx_status st = vx_check_shape(ctx, op, "labels", labels, e);
  if (st == VX_OK && dlogits) st = vx_check_shape(ctx, op, "dlogits", dlogits, logits->shape);
  if (st != VX_OK) return st;
  if (K < 2) return vx_fail(ctx, VX_ERR_SHAPE, "%s: logits have %d channel(s), expected >= 2 classes", op, K);
  size_t S = vx_spatial(logits);
  size_t nrows = (size_t)N * K;
  float *stats = malloc(nrows * 5 * sizeof(float));
  float *coef = malloc(nrows * 2 * sizeof(float));
  cl_mem sbuf = NULL, cbuf = NULL;
  if (!stats || !coef) { st = vx_fail(ctx, VX_ERR_OUT_OF_MEMORY, "%s: host allocation failed", op); goto done; }
  if ((st = vx_workspace(ctx, nrows * 5 * sizeof(float), &sbuf)) != VX_OK) goto done;
  char opts[32];
  snprintf(opts, sizeof opts, "-DWG=%d", LOSS_WG);
  size_t local = LOSS_WG, global = nrows * LOSS_WG;
  vx_arg args[] = {VX_MEM(logits->buf), VX_INT(logits->offset), VX_MEM(labels->buf), VX_INT(labels->offset),
                   VX_INT(K), VX_INT(S), VX_MEM(sbuf)};
  if ((st = vx_launch(ctx, "loss", opts, "dice_ce_stats", 1, &global, &local, args, VX_NARGS(args))) != VX_OK) goto done;
  cl_int err = clEnqueueReadBuffer(ctx->queue, sbuf, CL_TRUE, 0, nrows * 5 * sizeof(float), stats, 0, NULL, NULL);
  sbuf = NULL; /* the workspace is not ours to release */
  if (err != CL_SUCCESS) { st = vx_cl_fail(ctx, err, "reading loss statistics"); goto done; }
  double bad = 0, ce = 0, dice = 0, s = p->dice_smooth;
  int k0 = p->dice_include_background ? 0 : 1;
  int nd = N * (K - k0);
  for (int n = 0; n < N; n++) {
    bad += stats[5 * (n * K) + 4];
    for (int k = 0; k < K; k++) {
      const float *r = stats + 5 * (n * K + k);
      ce += r[3];
      double num = 2.0 * r[0] + s, den = (double)r[1] + r[2] + s;
      float *c = coef + 2 * (n * K + k);
      if (k >= k0) {
        double w = p->dice_weight / nd;
        dice += 1.0 - num / den;
        c[0] = (float)(-2.0 * w / den);
        c[1] = (float)(w * num / (den * den));
      } else {
        c[0] = c[1] = 0.0f;
      }
    }
  }
  if (bad > 0) {
    st = vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: %.0f label value(s) are not integers in [0, %d) (the classes of the logits)",
                 op, bad, K);
    goto done;
  }
  double value = p->ce_weight * ce / ((double)N * S) + p->dice_weight * dice / nd;
  *loss = (float)value;
  if (!isfinite(value)) {
    st = vx_fail(ctx, VX_ERR_NOT_FINITE, "%s: the loss is %g (cross-entropy sum %g, Dice sum %g)", op, value, ce, dice);
    goto done;
  }
  if (dlogits) {
    cbuf = clCreateBuffer(ctx->cl, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, nrows * 2 * sizeof(float), coef, &err);
    if (err != CL_SUCCESS) { st = vx_cl_fail(ctx, err, "allocating loss coefficients"); goto done; }
    size_t g = (size_t)N * S;
    float ce_scale = (float)(p->ce_weight / ((double)N * S));
    vx_arg gargs[] = {VX_MEM(logits->buf), VX_INT(logits->offset), VX_MEM(labels->buf), VX_INT(labels->offset),
                      VX_INT(N), VX_INT(K), VX_INT(S), VX_MEM(cbuf), VX_FLOAT(ce_scale), VX_MEM(dlogits->buf),
                      VX_INT(dlogits->offset)};
    st = vx_launch(ctx, "loss", opts, "dice_ce_grad", 1, &g, NULL, gargs, VX_NARGS(gargs));
  }
done:
  if (cbuf) clReleaseMemObject(cbuf); /* OpenCL keeps it alive until the kernel has run */
  free(stats);
  free(coef);
  return st;
}

/* ---------------------------------------------------------------- MSE and KL
 * Both sum n terms in two stages (fixed work-group partial sums, then the host in double), so
 * the value is the same on every run; the gradient is written only after the value is finite.
 * Cross-entropy alone and soft Dice alone need no function of their own: vx_loss_dice_ce with
 * dice_weight = 0 (or ce_weight = 0). */
#define SUM_GROUPS_MAX 256

static vx_status two_stage_sum(vx_context *ctx, int mode, const vx_tensor *a, const vx_tensor *b, double *out) {
  size_t n = a->numel;
  size_t groups = (n + LOSS_WG - 1) / LOSS_WG;
  if (groups > SUM_GROUPS_MAX) groups = SUM_GROUPS_MAX;
  size_t chunk = (n + groups - 1) / groups;
  float part[SUM_GROUPS_MAX];
  cl_mem buf;
  vx_status st = vx_workspace(ctx, groups * sizeof(float), &buf);
  if (st != VX_OK) return st;
  char opts[32];
  snprintf(opts, sizeof opts, "-DWG=%d", LOSS_WG);
  size_t local = LOSS_WG, global = groups * LOSS_WG;
  vx_arg args[] = {VX_INT(mode), VX_MEM(a->buf), VX_INT(a->offset), VX_MEM(b->buf), VX_INT(b->offset), VX_INT(n),
                   VX_INT(chunk), VX_MEM(buf)};
  if ((st = vx_launch(ctx, "loss", opts, "partial_sums", 1, &global, &local, args, VX_NARGS(args))) != VX_OK)
    return st;
  cl_int err = clEnqueueReadBuffer(ctx->queue, buf, CL_TRUE, 0, groups * sizeof(float), part, 0, NULL, NULL);
  if (err != CL_SUCCESS) return vx_cl_fail(ctx, err, "reading loss partial sums");
  double s = 0.0;
  for (size_t g = 0; g < groups; g++) s += part[g];
  *out = s;
  return VX_OK;
}

static vx_status check_pair(vx_context *ctx, const char *op, const char *an, const vx_tensor *a, const char *bn,
                            const vx_tensor *b) {
  if (!a) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, an);
  return vx_check_shape(ctx, op, bn, b, a->shape);
}

vx_status vx_mse_loss(vx_context *ctx, const vx_tensor *input, const vx_tensor *target, float weight, float *loss,
                      vx_tensor *dinput, int accumulate) {
  const char *op = "mse_loss";
  if (!loss) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: loss (the output value) is NULL", op);
  vx_status st = check_pair(ctx, op, "input", input, "target", target);
  if (st == VX_OK && dinput) st = vx_check_shape(ctx, op, "dinput", dinput, input->shape);
  if (st != VX_OK) return st;
  double sum;
  if ((st = two_stage_sum(ctx, 0, input, target, &sum)) != VX_OK) return st;
  double n = (double)input->numel, value = weight * sum / n;
  *loss = (float)value;
  if (!isfinite(value)) return vx_fail(ctx, VX_ERR_NOT_FINITE, "%s: the loss is %g (sum of squares %g)", op, value, sum);
  if (!dinput) return VX_OK;
  size_t g = input->numel;
  vx_arg args[] = {VX_MEM(input->buf), VX_INT(input->offset), VX_MEM(target->buf), VX_INT(target->offset),
                   VX_INT(input->numel), VX_FLOAT(2.0 * weight / n), VX_MEM(dinput->buf), VX_INT(dinput->offset),
                   VX_INT(accumulate != 0)};
  return vx_launch(ctx, "loss", "-DWG=64", "mse_grad", 1, &g, NULL, args, VX_NARGS(args));
}

vx_status vx_kl_loss(vx_context *ctx, const vx_tensor *mu, const vx_tensor *sigma, float weight, float *loss,
                     vx_tensor *dmu, vx_tensor *dsigma, int accumulate) {
  const char *op = "kl_loss";
  if (!loss) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: loss (the output value) is NULL", op);
  vx_status st = check_pair(ctx, op, "mu", mu, "sigma", sigma);
  if (st == VX_OK && dmu) st = vx_check_shape(ctx, op, "dmu", dmu, mu->shape);
  if (st == VX_OK && dsigma) st = vx_check_shape(ctx, op, "dsigma", dsigma, mu->shape);
  if (st != VX_OK) return st;
  double sum;
  if ((st = two_stage_sum(ctx, 1, mu, sigma, &sum)) != VX_OK) return st;
  double n = (double)mu->numel, value = weight * sum / n;
  *loss = (float)value;
  if (!isfinite(value))
    return vx_fail(ctx, VX_ERR_NOT_FINITE, "%s: the loss is %g (is some sigma <= 0 or not finite?)", op, value);
  for (int which = 1; which <= 2; which++) {
    vx_tensor *d = which == 1 ? dmu : dsigma;
    if (!d) continue;
    size_t g = mu->numel;
    vx_arg args[] = {VX_MEM(mu->buf), VX_INT(mu->offset), VX_MEM(sigma->buf), VX_INT(sigma->offset),
                     VX_INT(mu->numel), VX_FLOAT(weight / n), VX_MEM(d->buf), VX_INT(d->offset), VX_INT(which),
                     VX_INT(accumulate != 0)};
    if ((st = vx_launch(ctx, "loss", "-DWG=64", "kl_grad", 1, &g, NULL, args, VX_NARGS(args))) != VX_OK) return st;
  }
  return VX_OK;
}
