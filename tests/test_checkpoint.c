/* Checkpoints: save/load round trip, resume bit-for-bit, refusal of another architecture and of
 * corrupt files without touching the weights, and that a failed save keeps the last good file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "voxcl.h"


#define S 16
typedef struct {
  vx_unet3d *net;
  vx_trainer *tr;
  vx_tensor *x, *y;
} setup;

static vx_status make(vx_context *ctx, int base, uint64_t seed, setup *s) {
  memset(s, 0, sizeof *s);
  vx_unet3d_config cfg;
  vx_unet3d_config_init(&cfg);
  cfg.levels = 2;
  cfg.base_channels = base;
  cfg.seed = seed;
  int shape[5] = {1, 1, S, S, S};
  vx_status st = vx_unet3d_create(ctx, &cfg, shape, &s->net);
  if (st == VX_OK) st = vx_trainer_create(vx_unet3d_model(s->net), NULL, &s->tr);
  if (st == VX_OK) st = vx_tensor_create(ctx, shape, &s->x);
  if (st == VX_OK) st = vx_tensor_create(ctx, shape, &s->y);
  return st;
}
static void drop(setup *s) {
  vx_tensor_destroy(s->x);
  vx_tensor_destroy(s->y);
  vx_trainer_destroy(s->tr);
  vx_unet3d_destroy(s->net);
}

static vx_status steps(setup *s, const float *img, const float *lab, int from, int n, float *loss) {
  vx_status st = VX_OK;
  size_t nv = (size_t)S * S * S;
  for (int i = 0; i < n && st == VX_OK; i++) {
    int c = (from + i) % 3;
    st = vx_tensor_upload(s->x, img + c * nv);
    if (st == VX_OK) st = vx_tensor_upload(s->y, lab + c * nv);
    if (st == VX_OK) st = vx_trainer_step(s->tr, s->x, s->y, 1e-2f, &loss[i]);
  }
  return st;
}

static size_t file_size(const char *p) {
  FILE *f = fopen(p, "rb");
  if (!f) return 0;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fclose(f);
  return (size_t)n;
}

int main(void) {
  char err[4096], dir[] = "/tmp/voxcl-ckpt-XXXXXX";
  vx_context *ctx;
  if (vx_context_create(NULL, &ctx, err, sizeof err) != VX_OK || !mkdtemp(dir)) {
    printf("setup failed: %s\n", err);
    return 1;
  }
  size_t nv = (size_t)S * S * S;
  float *img = malloc(3 * nv * sizeof(float)), *lab = malloc(3 * nv * sizeof(float));
  for (int c = 0; c < 3; c++) vx_synth_case(40 + c, S, S, S, img + c * nv, lab + c * nv);
  char state[600], weights[600];
  snprintf(state, sizeof state, "%s/state.safetensors", dir);
  snprintf(weights, sizeof weights, "%s/model.safetensors", dir);

  /* uninterrupted: 6 steps; interrupted: 3 steps, save, new process-like setup, load, 3 steps */
  setup a, b;
  float la[6], lb[6];
  vx_status st = make(ctx, 4, 1, &a);
  if (st == VX_OK) st = steps(&a, img, lab, 0, 6, la);
  CHECK(st == VX_OK, "uninterrupted run: %s", vx_context_last_error(ctx));
  drop(&a);
  st = make(ctx, 4, 1, &a);
  if (st == VX_OK) st = steps(&a, img, lab, 0, 3, lb);
  const char *meta[] = {"rng", "12345", NULL};
  if (st == VX_OK) st = vx_trainer_save(a.tr, state, meta, err, sizeof err);
  CHECK(st == VX_OK, "save: %s", err);
  drop(&a);
  st = make(ctx, 4, 99 /* other init: load must overwrite it */, &b);
  char *m = NULL;
  if (st == VX_OK) st = vx_trainer_load(b.tr, state, &m, err, sizeof err);
  CHECK(st == VX_OK && vx_trainer_step_count(b.tr) == 3, "load: %s", err);
  CHECK(m && strstr(m, "\"rng\":\"12345\""), "metadata lost: %s", m ? m : "(null)");
  vx_free(m);
  if (st == VX_OK) st = steps(&b, img, lab, 3, 3, lb + 3);
  CHECK(st == VX_OK && !memcmp(la, lb, sizeof la), "resume is not bit-for-bit: step 4 %.9g vs %.9g, step 6 %.9g vs %.9g",
        la[3], lb[3], la[5], lb[5]);

  /* weights only: round trip into a fresh network gives the same outputs */
  st = vx_unet3d_save(b.net, weights, err, sizeof err);
  CHECK(st == VX_OK, "save weights: %s", err);
  vx_unet3d_config cfg;
  st = vx_unet3d_read_config(weights, &cfg, err, sizeof err);
  CHECK(st == VX_OK && cfg.base_channels == 4 && cfg.levels == 2 && cfg.classes == 3, "config: %s", err);
  setup c;
  st = make(ctx, 4, 5, &c);
  if (st == VX_OK) st = vx_unet3d_load_weights(c.net, weights, err, sizeof err);
  CHECK(st == VX_OK, "load weights: %s", err);
  float *o1 = malloc(3 * nv * sizeof(float)), *o2 = malloc(3 * nv * sizeof(float));
  vx_tensor_upload(b.x, img);
  vx_tensor_upload(c.x, img);
  vx_unet3d_forward(b.net, b.x);
  vx_unet3d_forward(c.net, c.x);
  vx_tensor_download(vx_unet3d_output(b.net), o1);
  vx_tensor_download(vx_unet3d_output(c.net), o2);
  CHECK(!memcmp(o1, o2, 3 * nv * sizeof(float)), "outputs differ after a weights round trip");

  /* another architecture is refused and the weights stay as they were */
  setup d;
  st = make(ctx, 8, 5, &d);
  size_t np = vx_tensor_numel(vx_unet3d_parameters(d.net));
  float *before = malloc(np * sizeof(float)), *after = malloc(np * sizeof(float));
  vx_tensor_download(vx_unet3d_parameters(d.net), before);
  st = vx_unet3d_load_weights(d.net, weights, err, sizeof err);
  vx_tensor_download(vx_unet3d_parameters(d.net), after);
  CHECK(st == VX_ERR_SHAPE && strstr(err, "architecture") && strstr(err, "model.safetensors"),
        "mismatch not refused clearly: %d %s", st, err);
  CHECK(!memcmp(before, after, np * sizeof(float)), "a refused load changed the weights");

  /* a truncated file is refused with its name */
  char trunc[600];
  snprintf(trunc, sizeof trunc, "%s/trunc.safetensors", dir);
  FILE *src = fopen(weights, "rb"), *dst = fopen(trunc, "wb");
  size_t full = file_size(weights);
  char *buf = malloc(full);
  if (src && dst && buf && fread(buf, 1, full, src) == full) fwrite(buf, 1, full / 2, dst);
  if (src) fclose(src);
  if (dst) fclose(dst);
  st = vx_unet3d_load_weights(c.net, trunc, err, sizeof err);
  CHECK(st != VX_OK && strstr(err, "trunc.safetensors"), "truncated file accepted: %d %s", st, err);
  st = vx_unet3d_load_weights(c.net, "/nonexistent/x.safetensors", err, sizeof err);
  CHECK(st == VX_ERR_IO && strstr(err, "/nonexistent/x.safetensors"), "missing file: %d %s", st, err);

  /* a save that cannot complete leaves the last good file in place */
  size_t good = file_size(state);
  chmod(dir, 0500);
  st = vx_trainer_save(b.tr, state, NULL, err, sizeof err);
  chmod(dir, 0700);
  if (getuid() != 0) CHECK(st == VX_ERR_IO && file_size(state) == good, "failed save damaged the file: %d %s", st, err);
  CHECK(vx_trainer_load(b.tr, state, NULL, err, sizeof err) == VX_OK, "last good state unreadable: %s", err);

  drop(&b);
  drop(&c);
  drop(&d);
  free(img); free(lab); free(o1); free(o2); free(before); free(after); free(buf);
  vx_context_destroy(ctx);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) printf("could not remove %s\n", dir);
  return CHECK_SUMMARY();
}
