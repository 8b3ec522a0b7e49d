/* Architecture descriptions against the networks and the published figures: the U-Net's
 * described parameter count equals the built network's, and 3D UX-Net at 1 input channel and 14
 * classes has the reference's 53.0 M parameters (MASILab/3DUX-Net README). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "voxcl.h"


int main(void) {
  char err[1024];
  vx_layer_info *l = NULL;
  int n = 0;
  size_t total = 0;
  int p96[3] = {96, 96, 96}, p64[3] = {64, 64, 64}, odd[3] = {96, 96, 80};
  vx_status st = vx_model_describe("uxnet", 1, 14, p96, &l, &n, &total, err, sizeof err);
  CHECK(st == VX_OK && fabs((double)total - 53.0e6) < 0.05e6, "uxnet: %zu parameters, reference 53.0 M (%s)", total, err);
  CHECK(st == VX_OK && l[n - 1].out_shape[0] == 14 && l[n - 1].out_shape[1] == 96, "uxnet output shape");
  vx_free(l);
  st = vx_model_describe("uxnet", 1, 14, odd, &l, &n, &total, err, sizeof err);
  CHECK(st == VX_ERR_SHAPE && strstr(err, "multiple of 32"), "uxnet odd patch: %d %s", st, err);

  st = vx_model_describe("unet3d", 1, 3, p64, &l, &n, &total, err, sizeof err);
  CHECK(st == VX_OK, "unet3d: %s", err);
  vx_context *ctx;
  if (vx_context_create(NULL, &ctx, err, sizeof err) == VX_OK) {
    vx_unet3d_config cfg;
    vx_unet3d_config_init(&cfg);
    cfg.base_channels = 32;
    int shape[5] = {1, 1, 64, 64, 64};
    vx_unet3d *net = NULL;
    st = vx_unet3d_create(ctx, &cfg, shape, &net);
    CHECK(st == VX_OK && vx_unet3d_parameter_count(net) == total, "unet3d: described %zu, built %zu", total,
          net ? vx_unet3d_parameter_count(net) : 0);
    vx_unet3d_destroy(net);
    vx_context_destroy(ctx);
  }
  vx_free(l);
  st = vx_model_describe("no-such-net", 1, 3, p64, &l, &n, &total, err, sizeof err);
  CHECK(st == VX_ERR_UNSUPPORTED && strstr(err, "no-such-net") && l == NULL, "unknown model: %d %s", st, err);
  return CHECK_SUMMARY();
}
