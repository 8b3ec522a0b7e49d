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
