/* vx_train_run end to end on a small synthetic dataset: the output folder is complete, an
 * interrupted and resumed run ends with the same weights bit for bit as an uninterrupted one, a
 * non-finite loss stops the run with a message naming the iteration and keeps the last good
 * checkpoint, and the saved model segments through vx_predictor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "voxcl.h"


static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(*n + 1);
  if (b && fread(b, 1, *n, f) != *n) { free(b); b = NULL; }
  if (b) b[*n] = 0; /* the logs are compared as text */
  fclose(f);
  return b;
}

static int same_file(const char *a, const char *b) {
  size_t na = 0, nb = 0;
  unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
  int same = x && y && na == nb && !memcmp(x, y, na);
  free(x);
  free(y);
  return same;
}

static void options(vx_train_options *o, const char *ds, const char *out) {
  vx_train_options_init(o);
  o->dataset = ds;
  o->out = out;
  o->patch[0] = o->patch[1] = o->patch[2] = 16;
  o->levels = 3;
  o->base_channels = 4;
  o->batch = 2;
  o->epochs = 2;
  o->iters_per_epoch = 4;
  o->optimizer = "adam";
  o->lr = 1e-3f;
  o->nfolds = 3;
}

int main(void) {
  char dir[] = "/tmp/voxcl-trainrun-XXXXXX", err[8192];
  vx_context *ctx;
  if (!mkdtemp(dir) || vx_context_create(NULL, &ctx, err, sizeof err) != VX_OK) {
    printf("setup: %s\n", err);
    return 1;
  }
  char ds[600], a[600], b[600], p1[700], p2[700];
  snprintf(ds, sizeof ds, "%s/ds", dir);
  snprintf(a, sizeof a, "%s/a", dir);
  snprintf(b, sizeof b, "%s/b", dir);
  vx_synth_dataset_options so;
  vx_synth_dataset_options_init(&so);
  so.cases = 6;
  so.size[0] = so.size[1] = so.size[2] = 16;
  vx_status st = vx_synth_dataset_write(ds, &so, NULL, NULL, err, sizeof err);
  CHECK(st == VX_OK, "synth: %s", err);

  vx_train_options o;
  options(&o, ds, a);
  st = vx_train_run(ctx, &o, NULL, err, sizeof err);
  CHECK(st == VX_OK, "uninterrupted run: %s", err);
  const char *files[] = {"plan.json", "model.safetensors", "model_best.safetensors", "checkpoint_latest.safetensors",
                         "training_log.csv", "training_curves.png"};
  for (int i = 0; i < 6; i++) {
    struct stat sb;
    snprintf(p1, sizeof p1, "%s/%s", a, files[i]);
    CHECK(stat(p1, &sb) == 0 && sb.st_size > 0, "%s missing", p1);
  }

  options(&o, ds, b);
  o.stop_after = 1;
  st = vx_train_run(ctx, &o, NULL, err, sizeof err);
  CHECK(st == VX_OK, "first half: %s", err);
  o.stop_after = 0;
  o.resume = 1;
  st = vx_train_run(ctx, &o, NULL, err, sizeof err);
  CHECK(st == VX_OK, "resumed half: %s", err);
  snprintf(p1, sizeof p1, "%s/model.safetensors", a);
  snprintf(p2, sizeof p2, "%s/model.safetensors", b);
  CHECK(same_file(p1, p2), "resumed weights differ from the uninterrupted run's");
  snprintf(p1, sizeof p1, "%s/training_log.csv", a);
  snprintf(p2, sizeof p2, "%s/training_log.csv", b);
  size_t n1 = 0, n2 = 0;
  unsigned char *l1 = slurp(p1, &n1), *l2 = slurp(p2, &n2);
  /* the losses and Dice columns must agree; epoch times naturally differ */
  int lines_same = l1 && l2;
  for (char *s1 = (char *)l1, *s2 = (char *)l2; lines_same && s1 && s2 && *s1; ) {
    char *e1 = strchr(s1, '\n'), *e2 = strchr(s2, '\n');
    if (!e1) e1 = s1 + strlen(s1);
    if (!e2) e2 = s2 + strlen(s2);
    int c = 0;
    char *q1 = s1, *q2 = s2;
    while (q1 < e1 && c < 4) { if (*q1 == ',') c++; q1++; }
    c = 0;
    while (q2 < e2 && c < 4) { if (*q2 == ',') c++; q2++; }
    lines_same = (q1 - s1) == (q2 - s2) && !memcmp(s1, s2, (size_t)(q1 - s1));
    s1 = *e1 ? e1 + 1 : NULL;
    s2 = *e2 ? e2 + 1 : NULL;
  }
  CHECK(lines_same, "training logs differ:\n%s\n---\n%s", l1 ? (char *)l1 : "", l2 ? (char *)l2 : "");
  free(l1);
  free(l2);

  /* a non-finite loss: the run stops naming the iteration; the last checkpoint is untouched */
  char ckpt[700], copy[700];
  snprintf(ckpt, sizeof ckpt, "%s/checkpoint_latest.safetensors", b);
  size_t nk = 0;
  unsigned char *before = slurp(ckpt, &nk);
  options(&o, ds, b);
  o.epochs = 3;
  o.resume = 1;
  o.optimizer = "adam";
  o.lr = 1e30f;
  st = vx_train_run(ctx, &o, NULL, err, sizeof err);
  CHECK(st == VX_ERR_NOT_FINITE && strstr(err, "iteration") && strstr(err, "checkpoint_latest"),
        "non-finite loss: status %d, message: %s", st, err);
  snprintf(copy, sizeof copy, "%s/before.safetensors", dir);
  FILE *f = fopen(copy, "wb");
  if (f && before) fwrite(before, 1, nk, f);
  if (f) fclose(f);
  CHECK(before && same_file(ckpt, copy), "the last good checkpoint was changed by the failed run");
  free(before);

  /* the model folder segments a case */
  vx_predictor *pred = NULL;
  st = vx_predictor_open(ctx, a, &pred, err, sizeof err);
  CHECK(st == VX_OK && vx_predictor_classes(pred) == 3, "predictor: %s", err);
  vx_dataset *d = NULL;
  vx_volume *img = NULL, *lab = NULL;
  if (st == VX_OK) st = vx_dataset_open(ds, &d, err, sizeof err);
  if (st == VX_OK) st = vx_dataset_load_case(d, 0, &img, &lab, err, sizeof err);
  float *out = malloc(16 * 16 * 16 * sizeof(float));
  if (st == VX_OK) st = vx_predictor_segment(pred, img, -1, 1, out, NULL, NULL, NULL, err, sizeof err);
  int ok = st == VX_OK;
  for (int i = 0; ok && i < 16 * 16 * 16; i++) ok = out[i] == 0 || out[i] == 1 || out[i] == 2;
  CHECK(ok, "segmentation failed or holds non-labels: %s", err);
  /* a model folder without a plan is refused with the file named */
  vx_predictor *bad = NULL;
  st = vx_predictor_open(ctx, ds, &bad, err, sizeof err);
  CHECK(st != VX_OK && bad == NULL && strstr(err, "plan.json"), "missing plan: %d %s", st, err);
  free(out);
  vx_volume_destroy(img);
  vx_volume_destroy(lab);
  vx_dataset_close(d);
  vx_predictor_destroy(pred);
  vx_context_destroy(ctx);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) printf("could not remove %s\n", dir);
  return CHECK_SUMMARY();
}
