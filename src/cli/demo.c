/* voxcl demo: the whole path on a built-in default. Generates a synthetic 3D dataset, trains a
 * 3D U-Net on the chosen device for a bounded time with a live progress line, segments held-out
 * volumes, prints per-class Dice and writes image, label and prediction as .nii.gz plus
 * summary.json into the output folder. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "io/plot.h"
#include "nn/nn.h"
#include "util.h"

typedef struct {
  const char *out, *device;
  double train_seconds;
  int size, train_cases, val_cases, max_steps, levels, base;
  uint64_t seed;
  float lr;
} demo_opts;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Random flips along each axis (the same for image and label): cheap augmentation. */
static void flip_copy(const float *src, float *dst, int D, int H, int W, int fz, int fy, int fx) {
  for (int z = 0; z < D; z++)
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++) {
        int sz = fz ? D - 1 - z : z, sy = fy ? H - 1 - y : y, sx = fx ? W - 1 - x : x;
        dst[((size_t)z * H + y) * W + x] = src[((size_t)sz * H + sy) * W + sx];
      }
}


static int parse(int argc, char **argv, demo_opts *o) {
  o->out = "demo_out";
  o->device = NULL;
  o->train_seconds = 150;
  o->size = 32;
  o->train_cases = 40;
  o->val_cases = 4;
  o->max_steps = 100000;
  o->levels = 3;
  o->base = 16;
  o->seed = 1;
  o->lr = 2e-3f;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if ((v = vx_cli_opt(argc, argv, &i, "--out"))) o->out = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "--device"))) o->device = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "--time"))) o->train_seconds = atof(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--size"))) o->size = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--cases"))) o->train_cases = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--steps"))) o->max_steps = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--levels"))) o->levels = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--base"))) o->base = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--seed"))) o->seed = strtoull(v, NULL, 10);
    else if ((v = vx_cli_opt(argc, argv, &i, "--lr"))) o->lr = (float)atof(v);
    else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      printf("usage: voxcl demo [--out DIR] [--time SECONDS] [--steps N] [--size N] [--cases N]\n"
             "                  [--levels L] [--base C] [--lr X] [--seed S] [--device D]\n"
             "defaults: --out demo_out --time 150 --size 32 --cases 40 --levels 3 --base 16 --lr 0.002\n");
      exit(0);
    } else {
      fprintf(stderr, "voxcl demo: unknown or incomplete option '%s' (see voxcl demo --help)\n", argv[i]);
      return 2;
    }
  }
  int f = 1 << (o->levels - 1);
  if (o->size < 8 || o->size % f || o->train_cases < 1 || o->train_seconds <= 0 || o->levels < 1 || o->base < 1) {
    fprintf(stderr, "voxcl demo: --size must be >= 8 and a multiple of %d (2^(levels-1)); --cases, --time, --levels, "
                    "--base must be positive\n", f);
    return 2;
  }
  return 0;
}

static void progress(int step, float loss, double rate, double elapsed, double budget) {
  double left = budget - elapsed;
  if (left < 0) left = 0;
  fprintf(stderr, "\r  step %5d  loss %.4f  %.2f steps/s  %5.0f s elapsed  ETA %4.0f s   ", step, loss, rate, elapsed,
          left);
  fflush(stderr);
}

int vx_cli_demo(int argc, char **argv) {
  demo_opts o;
  int rc = parse(argc, argv, &o);
  if (rc) return rc;
  double t_start = now();
  char err[8192] = "";
  vx_context_options copt = {0};
  copt.device = o.device;
  vx_context *ctx = NULL;
  vx_status st = vx_context_create(&copt, &ctx, err, sizeof err);
  if (st != VX_OK) return vx_cli_error(st, err);
  const vx_device_info *dev = vx_context_device(ctx);
  printf("voxcl demo on %d:%d %s (%s)\n", dev->platform, dev->device, dev->name, dev->platform_name);
  if (vx_mkdir_p(o.out)) {
    snprintf(err, sizeof err, "cannot create output folder '%s': %s", o.out, strerror(errno));
    vx_context_destroy(ctx);
    return vx_cli_error(VX_ERR_IO, err);
  }

  int S = o.size, K = 3, ncase = o.train_cases + o.val_cases;
  size_t nvox = (size_t)S * S * S;
  float *img = malloc(ncase * nvox * sizeof(float)), *lab = malloc(ncase * nvox * sizeof(float));
  float *bx = malloc(nvox * sizeof(float)), *by = malloc(nvox * sizeof(float));
  float *logits = malloc(K * nvox * sizeof(float));
  if (!img || !lab || !bx || !by || !logits) {
    vx_context_destroy(ctx);
    return vx_cli_error(VX_ERR_OUT_OF_MEMORY, "host memory for the synthetic dataset");
  }
  printf("generating %d training + %d held-out synthetic volumes of %d^3 (ellipsoids = 1, tubes = 2)\n",
         o.train_cases, o.val_cases, S);
  for (int c = 0; c < ncase; c++) {
    vx_synth_case(o.seed * 1000 + (uint64_t)c, S, S, S, img + c * nvox, lab + c * nvox);
    vx_normalize_zscore(img + c * nvox, nvox); /* as the field does for non-CT channels */
  }

  vx_unet3d_config ncfg;
  vx_unet3d_config_init(&ncfg);
  ncfg.classes = K;
  ncfg.levels = o.levels;
  ncfg.base_channels = o.base;
  ncfg.seed = o.seed;
  int in_shape[5] = {1, 1, S, S, S}, lab_shape[5] = {1, 1, S, S, S};
  vx_unet3d *net = NULL;
  vx_trainer *tr = NULL;
  vx_tensor *x = NULL, *y = NULL;
  vx_trainer_config tcfg;
  vx_trainer_config_init(&tcfg);
  st = vx_unet3d_create(ctx, &ncfg, in_shape, &net);
  if (st == VX_OK) st = vx_trainer_create(vx_unet3d_model(net), &tcfg, &tr);
  if (st == VX_OK) st = vx_tensor_create(ctx, in_shape, &x);
  if (st == VX_OK) st = vx_tensor_create(ctx, lab_shape, &y);
  if (st != VX_OK) goto fail;
  printf("3D U-Net: %d levels, %d base channels, %zu parameters, %.1f MiB on the device\n", o.levels, o.base,
         vx_unet3d_parameter_count(net), vx_unet3d_device_bytes(net) / 1048576.0);
  printf("training for up to %.0f s (Adam, lr %g, Dice + CE)\n", o.train_seconds, o.lr);

  /* The first step compiles kernels (or loads them from the cache): timed apart from training. */
  uint64_t rng = o.seed * 7919 + 1;
  double t_train = now(), t_first = 0, last_print = 0;
  int step = 0, cap = 1024;
  float loss = 0, smooth = 0;
  double *curve_x = malloc(cap * sizeof(double)), *curve_y = malloc(cap * sizeof(double)),
         *curve_s = malloc(cap * sizeof(double));
  while (step < o.max_steps) {
    double el = now() - t_train;
    if (el >= o.train_seconds) break;
    int c = (int)(vx_rng_next(&rng) % (uint64_t)o.train_cases);
    int fz = (int)(vx_rng_next(&rng) & 1), fy = (int)(vx_rng_next(&rng) & 1), fx = (int)(vx_rng_next(&rng) & 1);
    flip_copy(img + c * nvox, bx, S, S, S, fz, fy, fx);
    flip_copy(lab + c * nvox, by, S, S, S, fz, fy, fx);
    st = vx_tensor_upload(x, bx);
    if (st == VX_OK) st = vx_tensor_upload(y, by);
    /* linear warm-up over 20 steps, then a cosine-free poly decay to 10% at the time budget */
    double frac = el / o.train_seconds;
    float lr = o.lr * (float)(step < 20 ? (step + 1) / 20.0 : pow(1.0 - 0.9 * frac, 0.9));
    if (st == VX_OK) st = vx_trainer_step(tr, x, y, lr, &loss);
    if (st != VX_OK) goto fail;
    step++;
    if (step == 1) {
      t_first = now() - t_train;
      vx_context_stats cs;
      vx_context_get_stats(ctx, &cs);
      printf("first step %.2f s (kernel programs: %d compiled, %d from the disk cache, %.2f s building)\n", t_first,
             cs.programs_built, cs.programs_from_disk, cs.build_seconds);
    }
    smooth = step == 1 ? loss : 0.95f * smooth + 0.05f * loss;
    if (step > cap && curve_x && curve_y && curve_s) {
      cap *= 2;
      curve_x = realloc(curve_x, cap * sizeof(double));
      curve_y = realloc(curve_y, cap * sizeof(double));
      curve_s = realloc(curve_s, cap * sizeof(double));
    }
    if (curve_x && curve_y && curve_s) {
      curve_x[step - 1] = step;
      curve_y[step - 1] = loss;
      curve_s[step - 1] = smooth;
    }
    double t = now() - t_train;
    if (t - last_print > 0.5) {
      progress(step, smooth, (step - 1) / (t - t_first + 1e-9), t, o.train_seconds);
      last_print = t;
    }
  }
  double train_time = now() - t_train;
  progress(step, smooth, (step - 1) / (train_time - t_first + 1e-9), train_time, train_time);
  fprintf(stderr, "\n");

  /* held-out evaluation */
  double dice_sum[3] = {0}, t_inf = 0;
  json_t *cases = json_array();
  for (int v = 0; v < o.val_cases; v++) {
    int c = o.train_cases + v;
    double t0 = now();
    st = vx_tensor_upload(x, img + c * nvox);
    if (st == VX_OK) st = vx_unet3d_forward(net, x);
    if (st == VX_OK) st = vx_tensor_download(vx_unet3d_output(net), logits);
    if (st != VX_OK) goto fail;
    t_inf += now() - t0;
    const float *l = lab + c * nvox;
    /* argmax of the logits equals argmax of the softmax */
    int dims[3] = {S, S, S}, classes[2] = {1, 2};
    float mm[3] = {1, 1, 1};
    double dice[2], hd95[2];
    st = vx_argmax_channels(logits, K, nvox, bx);
    if (st == VX_OK) st = vx_segmentation_metrics(bx, l, dims, mm, classes, 2, dice, hd95, err, sizeof err);
    if (st != VX_OK) {
      json_decref(cases);
      goto fail_msg;
    }
    json_t *jc = json_object();
    json_object_set_new(jc, "case", json_integer(v));
    printf("  held-out case %d:", v);
    for (int k = 1; k < K; k++) {
      const char *name = k == 1 ? "ellipsoid" : "tube";
      char key[32];
      dice_sum[k] += dice[k - 1];
      printf("  Dice[%s] %.3f HD95 %.1f mm", name, dice[k - 1], hd95[k - 1]);
      snprintf(key, sizeof key, "dice_%s", name);
      json_object_set_new(jc, key, json_real(dice[k - 1]));
      snprintf(key, sizeof key, "hd95_mm_%s", name);
      json_object_set_new(jc, key, isfinite(hd95[k - 1]) ? json_real(hd95[k - 1]) : json_null());
    }
    printf("\n");
    json_array_append_new(cases, jc);
    /* NIfTI out: 1 mm isotropic, the prediction copies the image's header */
    float sp[3] = {1, 1, 1};
    vx_volume *vol = NULL;
    char path[1200];
    st = vx_volume_create(S, S, S, 1, sp, &vol);
    if (st != VX_OK) goto fail;
    memcpy(vx_volume_data(vol), img + c * nvox, nvox * sizeof(float));
    snprintf(path, sizeof path, "%s/case%02d_image.nii.gz", o.out, v);
    st = vx_volume_write_like(path, vol, img + c * nvox, 0, err, sizeof err);
    snprintf(path, sizeof path, "%s/case%02d_label.nii.gz", o.out, v);
    if (st == VX_OK) st = vx_volume_write_like(path, vol, l, 1, err, sizeof err);
    snprintf(path, sizeof path, "%s/case%02d_pred.nii.gz", o.out, v);
    if (st == VX_OK) st = vx_volume_write_like(path, vol, bx, 1, err, sizeof err);
    vx_volume_destroy(vol);
    if (st != VX_OK) { json_decref(cases); goto fail_msg; }
  }
  double d1 = dice_sum[1] / o.val_cases, d2 = dice_sum[2] / o.val_cases, mean = 0.5 * (d1 + d2);
  double wall = now() - t_start;
  printf("mean Dice over %d held-out volumes: ellipsoid %.3f, tube %.3f, mean foreground %.3f\n", o.val_cases, d1, d2,
         mean);
  vx_context_stats cs;
  vx_context_get_stats(ctx, &cs);
  json_t *js = json_object();
  json_object_set_new(js, "device", json_string(dev->name));
  json_object_set_new(js, "platform", json_string(dev->platform_name));
  json_object_set_new(js, "steps", json_integer(step));
  json_object_set_new(js, "train_seconds", json_real(train_time));
  json_object_set_new(js, "first_step_seconds", json_real(t_first));
  json_object_set_new(js, "kernel_build_seconds", json_real(cs.build_seconds));
  json_object_set_new(js, "programs_compiled", json_integer(cs.programs_built));
  json_object_set_new(js, "programs_from_disk_cache", json_integer(cs.programs_from_disk));
  json_object_set_new(js, "inference_seconds_per_volume", json_real(t_inf / o.val_cases));
  json_object_set_new(js, "wall_seconds", json_real(wall));
  json_object_set_new(js, "final_loss", json_real(smooth));
  json_t *jd = json_object();
  json_object_set_new(jd, "ellipsoid", json_real(d1));
  json_object_set_new(jd, "tube", json_real(d2));
  json_object_set_new(js, "dice", jd);
  json_object_set_new(js, "mean_foreground_dice", json_real(mean));
  json_object_set_new(js, "cases", cases);
  char path[1200], tmp[1300];
  snprintf(path, sizeof path, "%s/summary.json", o.out);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  /* written aside and renamed: a crash never leaves half a summary */
  if (json_dump_file(js, tmp, JSON_INDENT(2)) != 0 || rename(tmp, path) != 0) {
    snprintf(err, sizeof err, "cannot write %s", path);
    json_decref(js);
    st = VX_ERR_IO;
    goto fail_msg;
  }
  json_decref(js);
  if (curve_x && curve_y && curve_s) {
    vx_plot_series ser[2] = {{"loss", curve_x, curve_y, step, 0}, {"loss (moving average)", curve_x, curve_s, step, 0}};
    snprintf(path, sizeof path, "%s/training_curve.png", o.out);
    if (vx_plot_png(path, "voxcl demo: Dice + CE loss", "step", ser, 2, err, sizeof err) != VX_OK)
      fprintf(stderr, "voxcl demo: %s\n", err);
  }
  free(curve_x);
  free(curve_y);
  free(curve_s);
  snprintf(path, sizeof path, "%s/summary.json", o.out);
  printf("wrote %s/case*_{image,label,pred}.nii.gz, %s/training_curve.png and %s (wall time %.1f s)\n", o.out,
         o.out, path, wall);
  if (getenv("VOXCL_PROFILE")) {
    char prof[8192];
    vx_context_profile_report(ctx, prof, sizeof prof);
    printf("time per kernel (VOXCL_PROFILE):\n%s", prof);
  }
  vx_trainer_destroy(tr);
  vx_tensor_destroy(x);
  vx_tensor_destroy(y);
  vx_unet3d_destroy(net);
  vx_context_destroy(ctx);
  free(img); free(lab); free(bx); free(by); free(logits);
  return 0;

fail:
  snprintf(err, sizeof err, "%s", vx_context_last_error(ctx));
fail_msg:
  fprintf(stderr, "\n");
  rc = vx_cli_error(st, err);
  vx_trainer_destroy(tr);
  vx_tensor_destroy(x);
  vx_tensor_destroy(y);
  vx_unet3d_destroy(net);
  vx_context_destroy(ctx);
  free(img); free(lab); free(bx); free(by); free(logits);
  return rc;
}
