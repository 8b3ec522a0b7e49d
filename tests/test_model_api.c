/* The generic model handle over every registered network (vx_model_names): planning without
 * device memory, building, a training step whose loss is finite and falls over a few Adam steps
 * on a fixed batch, checkpoints that round-trip bitwise through safetensors, and the refusals
 * (unknown name, wrong channels, a checkpoint of another architecture: nothing changes).
 * Each network's own maths is checked against references in its own test; this one checks
 * that every network behaves as a vx_model, so a new network is covered by registering it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "voxcl.h"

static vx_context *ctx;

/* A tiny configuration of each network (UX-Net needs sizes that are multiples of 32). */
static void tiny(vx_model_config *c, const char *name, int vae) {
  vx_model_config_init(c, name);
  c->classes = 3;
  c->levels = 3;
  c->base_channels = 4;
  c->max_channels = 64;
  c->depth = 2;
  c->vae = vae;
  c->dualnorm_levels = 2;
  c->seed = 7;
}

static float *download(vx_tensor *t) {
  size_t n = vx_tensor_numel(t);
  float *h = malloc(n * sizeof(float));
  if (h && vx_tensor_download(t, h) != VX_OK) { free(h); return NULL; }
  return h;
}

static void check_model(const char *name, int vae) {
  char err[2048], label[64], path[256], path2[256];
  snprintf(label, sizeof label, "%s%s", name, vae ? "+vae" : "");
  int S = 32, shape[5] = {1, 1, S, S, S}, lshape[5] = {1, 1, S, S, S};
  vx_model_config cfg;
  tiny(&cfg, name, vae);

  /* planning: counts and layers without device memory; running a plan is refused */
  vx_model *plan = NULL;
  vx_status st = vx_model_plan(ctx, &cfg, shape, &plan);
  CHECK(st == VX_OK, "%s: plan: %s", label, vx_context_last_error(ctx));
  if (st != VX_OK) return;
  int nl = 0;
  vx_model_layers(plan, &nl);
  CHECK(vx_model_parameter_count(plan) > 0 && nl > 0 && vx_model_device_bytes(plan) > 0,
        "%s: plan has %zu parameters, %d layers, %zu bytes", label, vx_model_parameter_count(plan), nl,
        vx_model_device_bytes(plan));

  vx_model *m = NULL;
  st = vx_model_create(ctx, &cfg, shape, &m);
  CHECK(st == VX_OK, "%s: create: %s", label, vx_context_last_error(ctx));
  if (st != VX_OK) { vx_model_destroy(plan); return; }
  CHECK(vx_model_parameter_count(m) == vx_model_parameter_count(plan) &&
            vx_model_device_bytes(m) == vx_model_device_bytes(plan),
        "%s: plan and model agree (%zu/%zu parameters, %zu/%zu bytes)", label, vx_model_parameter_count(plan),
        vx_model_parameter_count(m), vx_model_device_bytes(plan), vx_model_device_bytes(m));
  vx_tensor *x = NULL, *y = NULL;
  vx_tensor_create(ctx, shape, &x);
  vx_tensor_create(ctx, lshape, &y);
  st = vx_model_forward(plan, x);
  CHECK(st != VX_OK && strstr(vx_context_last_error(ctx), "plan"), "%s: a plan refuses to run: %s", label,
        vx_context_last_error(ctx));
  vx_model_destroy(plan);

  size_t n = (size_t)S * S * S;
  float *hx = malloc(n * sizeof(float)), *hy = malloc(n * sizeof(float));
  vx_synth_case(11, S, S, S, hx, hy);
  for (size_t i = 0; i < n; i++) hx[i] = (hx[i] - 0.5f) * 2.0f;
  vx_tensor_upload(x, hx);
  vx_tensor_upload(y, hy);

  /* training: finite loss that falls over a few Adam steps on one batch */
  vx_trainer_config tc;
  vx_trainer_config_init(&tc);
  tc.lr = 3e-3f;
  vx_trainer *tr = NULL;
  st = vx_trainer_create(m, &tc, &tr);
  float first = NAN, last = NAN, loss = NAN;
  for (int i = 0; i < 8 && st == VX_OK; i++) {
    st = vx_trainer_step(tr, x, y, tc.lr, &loss);
    if (i == 0) first = loss;
    last = loss;
  }
  CHECK(st == VX_OK && isfinite(first) && last < first, "%s: loss %g -> %g (%s)", label, first, last,
        st == VX_OK ? "" : vx_context_last_error(ctx));
  float *g = download(vx_model_gradients(m));
  size_t np = vx_tensor_numel(vx_model_gradients(m)), nz = 0;
  int finite = 1;
  for (size_t i = 0; g && i < np; i++) {
    nz += g[i] != 0.0f;
    finite &= isfinite(g[i]) != 0;
  }
  CHECK(g && finite && nz > vx_model_parameter_count(m) / 4, "%s: gradients finite, %zu of %zu non-zero", label, nz,
        vx_model_parameter_count(m));
  free(g);

  /* inference output shape and a checkpoint round trip: same outputs bitwise */
  st = vx_model_forward(m, x);
  const int *os = vx_tensor_shape(vx_model_output(m));
  CHECK(st == VX_OK && os[0] == 1 && os[1] == 3 && os[2] == S && os[3] == S && os[4] == S,
        "%s: inference output [%d, %d, %d, %d, %d]", label, os[0], os[1], os[2], os[3], os[4]);
  float *out1 = download(vx_model_output(m));
  snprintf(path, sizeof path, "/tmp/voxcl-test-model-%d-%s.safetensors", (int)getpid(), label);
  st = vx_model_save(m, path, err, sizeof err);
  CHECK(st == VX_OK, "%s: save: %s", label, err);
  vx_model_config rc;
  st = vx_model_read_config(path, &rc, err, sizeof err);
  CHECK(st == VX_OK && !strcmp(rc.name, cfg.name) && rc.base_channels == cfg.base_channels && rc.vae == cfg.vae &&
            rc.depth == cfg.depth,
        "%s: configuration read back (%s)", label, err);
  vx_model_config c2 = cfg;
  c2.seed = 99; /* other initial weights: the load must replace them all */
  vx_model *m2 = NULL;
  st = vx_model_create(ctx, &c2, shape, &m2);
  if (st == VX_OK) st = vx_model_load_weights(m2, path, err, sizeof err);
  if (st == VX_OK) st = vx_model_forward(m2, x);
  float *out2 = st == VX_OK ? download(vx_model_output(m2)) : NULL;
  CHECK(out1 && out2 && !memcmp(out1, out2, 3 * n * sizeof(float)), "%s: reloaded model gives the same output (%s)",
        label, err);
  free(out1);
  free(out2);

  /* another architecture: refused naming a tensor, the target's weights unchanged */
  vx_model_config c3 = cfg;
  c3.base_channels = 8;
  vx_model *m3 = NULL;
  if (vx_model_create(ctx, &c3, shape, &m3) == VX_OK) {
    float *before = download(vx_model_parameters(m3));
    st = vx_model_load_weights(m3, path, err, sizeof err);
    float *after = download(vx_model_parameters(m3));
    CHECK(st == VX_ERR_SHAPE && strstr(err, "tensor '") && strstr(err, path), "%s: other architecture refused: %s",
          label, err);
    CHECK(before && after && !memcmp(before, after, vx_tensor_numel(vx_model_parameters(m3)) * sizeof(float)),
          "%s: refused load left the weights unchanged", label);
    free(before);
    free(after);
  }
  snprintf(path2, sizeof path2, "%s", path);
  unlink(path2);
  vx_model_destroy(m3);
  vx_model_destroy(m2);
  vx_trainer_destroy(tr);
  vx_tensor_destroy(x);
  vx_tensor_destroy(y);
  vx_model_destroy(m);
  free(hx);
  free(hy);
}

int main(int argc, char **argv) {
  char err[1024];
  if (vx_context_create(NULL, &ctx, err, sizeof err) != VX_OK) {
    printf("no OpenCL device: %s\n", err);
    return 77;
  }
  const char *only = argc > 1 ? argv[1] : NULL;
  for (const char *const *nm = vx_model_names(); *nm; nm++) {
    if (only && strcmp(only, *nm)) continue;
    check_model(*nm, 0);
    if (!strncmp(*nm, "invres", 6)) check_model(*nm, 1);
  }
  /* activations larger than the device's largest allocation are spread over several buffers
   * (PoCL caps one buffer at a quarter of memory: a 128^3 U-Net's 3.4 GB arena needs two) */
  if (!only) {
    vx_model_config big;
    vx_model_config_init(&big, "unet3d");
    int bshape[5] = {1, 1, 128, 128, 128};
    vx_model *bm = NULL;
    vx_tensor *bx = NULL;
    uint64_t max_alloc = vx_context_device(ctx)->max_alloc_bytes;
    vx_status bst = vx_model_create(ctx, &big, bshape, &bm);
    if (bst == VX_OK) bst = vx_tensor_create(ctx, bshape, &bx);
    if (bst == VX_OK) bst = vx_tensor_fill(bx, 0.5f);
    if (bst == VX_OK) bst = vx_model_forward(bm, bx);
    float *o = bst == VX_OK ? download(vx_model_output(bm)) : NULL;
    int ok = o != NULL;
    for (size_t i = 0; o && i < vx_tensor_numel(vx_model_output(bm)); i += 4099) ok &= isfinite(o[i]) != 0;
    CHECK(ok, "unet3d 128^3 (%.2f GB of activations, largest allocation %.2f GB): %s",
          bm ? vx_model_device_bytes(bm) / 1e9 : 0.0, max_alloc / 1e9, ok ? "" : vx_context_last_error(ctx));
    free(o);
    vx_tensor_destroy(bx);
    vx_model_destroy(bm);
  }
  /* refusals */
  vx_model_config cfg;
  CHECK(vx_model_config_init(&cfg, "no-such-net") == VX_ERR_INVALID_ARGUMENT, "unknown name refused by config_init");
  vx_model *m = NULL;
  int shape[5] = {1, 1, 32, 32, 32}, two[5] = {1, 2, 32, 32, 32};
  vx_status st = vx_model_create(ctx, &cfg, shape, &m);
  CHECK(st == VX_ERR_INVALID_ARGUMENT && strstr(vx_context_last_error(ctx), "unknown model 'no-such-net'") &&
            strstr(vx_context_last_error(ctx), "unet3d"),
        "unknown model: %s", vx_context_last_error(ctx));
  vx_model_config_init(&cfg, "unet3d");
  st = vx_model_create(ctx, &cfg, two, &m);
  CHECK(st == VX_ERR_SHAPE && strstr(vx_context_last_error(ctx), "2"), "wrong channel count: %s",
        vx_context_last_error(ctx));
  vx_context_destroy(ctx);
  return CHECK_SUMMARY();
}
