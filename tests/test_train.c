/* A short training run of the 3D U-Net on synthetic volumes: the loss must fall, and two runs
 * from the same seed must give the same losses (deterministic kernels, no atomics). Also checks
 * the network's refusal of bad shapes and that a NaN input stops the step before any update. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "voxcl.h"


#define S 16
#define CASES 6
#define STEPS 40

static vx_status train(vx_context *ctx, const float *img, const float *lab, float *losses) {
  vx_unet3d_config cfg;
  vx_unet3d_config_init(&cfg);
  cfg.levels = 3;
  cfg.base_channels = 8;
  cfg.seed = 7;
  int shape[5] = {1, 1, S, S, S};
  vx_unet3d *net = NULL;
  vx_trainer *tr = NULL;
  vx_tensor *x = NULL, *y = NULL;
  vx_status st = vx_unet3d_create(ctx, &cfg, shape, &net);
  if (st == VX_OK) st = vx_trainer_create(vx_unet3d_model(net), NULL, &tr);
  if (st == VX_OK) st = vx_tensor_create(ctx, shape, &x);
  if (st == VX_OK) st = vx_tensor_create(ctx, shape, &y);
  for (int i = 0; i < STEPS && st == VX_OK; i++) {
    int c = i % CASES;
    st = vx_tensor_upload(x, img + (size_t)c * S * S * S);
    if (st == VX_OK) st = vx_tensor_upload(y, lab + (size_t)c * S * S * S);
    if (st == VX_OK) st = vx_trainer_step(tr, x, y, 3e-3f, &losses[i]);
  }
  vx_tensor_destroy(x);
  vx_tensor_destroy(y);
  vx_trainer_destroy(tr);
  vx_unet3d_destroy(net);
  return st;
}

int main(void) {
  char err[4096];
  vx_context *ctx = NULL;
  vx_status st = vx_context_create(NULL, &ctx, err, sizeof err);
  if (st != VX_OK) {
    printf("cannot create a context: %s\n", err);
    return 1;
  }
  size_t n = (size_t)S * S * S;
  float *img = malloc(CASES * n * sizeof(float)), *lab = malloc(CASES * n * sizeof(float));
  for (int c = 0; c < CASES; c++) {
    vx_synth_case(100 + c, S, S, S, img + c * n, lab + c * n);
    for (size_t i = 0; i < n; i++) img[c * n + i] -= 0.5f;
  }
  float l1[STEPS], l2[STEPS];
  st = train(ctx, img, lab, l1);
  CHECK(st == VX_OK, "training failed: %s", vx_context_last_error(ctx));
  if (st == VX_OK) {
    double first = 0, last = 0;
    for (int i = 0; i < CASES; i++) first += l1[i] / CASES, last += l1[STEPS - CASES + i] / CASES;
    printf("loss over the first %d steps %.4f, over the last %d steps %.4f\n", CASES, first, CASES, last);
    CHECK(last < 0.8 * first, "loss did not fall enough: %.4f -> %.4f", first, last);
    st = train(ctx, img, lab, l2);
    CHECK(st == VX_OK && !memcmp(l1, l2, sizeof l1), "two runs from the same seed differ (step 0: %.8f vs %.8f)",
          l1[0], l2[0]);
  }

  /* bad shapes are refused with a message */
  vx_unet3d_config cfg;
  vx_unet3d_config_init(&cfg);
  vx_unet3d *net = NULL;
  int odd[5] = {1, 1, 20, 16, 16};
  st = vx_unet3d_create(ctx, &cfg, odd, &net);
  CHECK(st == VX_ERR_SHAPE && net == NULL && strstr(vx_context_last_error(ctx), "multiple of 8"),
        "a 20x16x16 input for 4 levels was not refused clearly: %s", vx_context_last_error(ctx));
  int two[5] = {1, 2, 16, 16, 16};
  st = vx_unet3d_create(ctx, &cfg, two, &net);
  CHECK(st == VX_ERR_SHAPE && strstr(vx_context_last_error(ctx), "channels"), "channel mismatch not refused: %s",
        vx_context_last_error(ctx));

  /* a NaN in the input gives VX_ERR_NOT_FINITE and leaves the parameters untouched */
  cfg.levels = 2;
  cfg.base_channels = 4;
  int shape[5] = {1, 1, 8, 8, 8};
  vx_trainer *tr = NULL;
  vx_tensor *x = NULL, *y = NULL;
  st = vx_unet3d_create(ctx, &cfg, shape, &net);
  if (st == VX_OK) st = vx_trainer_create(vx_unet3d_model(net), NULL, &tr);
  if (st == VX_OK) st = vx_tensor_create(ctx, shape, &x);
  if (st == VX_OK) st = vx_tensor_create(ctx, shape, &y);
  CHECK(st == VX_OK, "small network: %s", vx_context_last_error(ctx));
  if (st == VX_OK) {
    size_t np = vx_tensor_numel(vx_unet3d_parameters(net));
    float *before = malloc(np * sizeof(float)), *after = malloc(np * sizeof(float));
    float xin[512], yin[512], loss = 0;
    for (int i = 0; i < 512; i++) xin[i] = (float)(i % 7), yin[i] = (float)(i % 3);
    xin[100] = NAN;
    vx_tensor_upload(x, xin);
    vx_tensor_upload(y, yin);
    vx_tensor_download(vx_unet3d_parameters(net), before);
    st = vx_trainer_step(tr, x, y, 1e-2f, &loss);
    vx_tensor_download(vx_unet3d_parameters(net), after);
    CHECK(st == VX_ERR_NOT_FINITE, "NaN input gave status %d (%s)", st, vx_context_last_error(ctx));
    CHECK(!memcmp(before, after, np * sizeof(float)), "parameters changed on a non-finite loss");
    /* labels outside the classes are refused */
    xin[100] = 0;
    yin[5] = 7;
    vx_tensor_upload(x, xin);
    vx_tensor_upload(y, yin);
    st = vx_trainer_step(tr, x, y, 1e-2f, &loss);
    CHECK(st == VX_ERR_INVALID_ARGUMENT && strstr(vx_context_last_error(ctx), "label"), "bad label: %d %s", st,
          vx_context_last_error(ctx));
    free(before);
    free(after);
  }
  vx_tensor_destroy(x);
  vx_tensor_destroy(y);
  vx_trainer_destroy(tr);
  vx_unet3d_destroy(net);
  vx_context_destroy(ctx);
  free(img);
  free(lab);
  return CHECK_SUMMARY();
}
