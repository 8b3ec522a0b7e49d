/* voxcl train: a training run on a dataset folder (see vx_train_run) with a live progress line. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: voxcl train --dataset DIR --out DIR [--model NAME] [--patch D,H,W] [--batch N]\n"
          "                   [--epochs N] [--iters-per-epoch N] [--optimizer sgd|adamw|adam] [--lr X]\n"
          "                   [--weight-decay X] [--fold K] [--folds N] [--seed S] [--base C] [--levels L]\n"
          "                   [--depth N] [--vae] [--pretrained FILE [--acnorm]]\n"
          "                   [--spacing X,Y,Z] [--resume] [--stop-after EPOCHS] [--skip-nonfinite] [--device D]\n"
          "models: unet3d (default), dualnorm-unet, invres-partial, invres-full (--depth coupling blocks per\n"
          "level, --vae adds the VAE branch), uxnet; --pretrained starts from a model.safetensors (--acnorm:\n"
          "its batch norms become AC-Norm layers for fine-tuning)\n"
          "defaults (nnU-Net): SGD Nesterov 0.99, lr 1e-2 poly 0.9, weight decay 3e-5, Dice + CE, batch 2,\n"
          "50 epochs x 250 iterations, fold 0 of 5, 32 base channels (UX-Net 48); patch planned from the\n"
          "dataset and the device memory\n");
}

static void on_plan(void *u, const char *s) {
  (void)u;
  printf("%s\n", s);
  fflush(stdout);
}

static void on_iter(void *u, int epoch, int it, int iters, float loss, float lr, double rate, double eta) {
  (void)u;
  int w = 24, fill = (int)((double)(it + 1) / iters * w);
  char bar[32];
  for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
  bar[w] = 0;
  fprintf(stderr, "\r  epoch %3d [%s] %4d/%d  loss %.4f  lr %.2e  %.2f it/s  ETA %02d:%02d:%02d ", epoch, bar, it + 1,
          iters, loss, lr, rate, (int)(eta / 3600), (int)fmod(eta / 60, 60), (int)fmod(eta, 60));
  fflush(stderr);
}

static void on_epoch(void *u, int epoch, double loss, double dice, const double *pc, int K, double secs, double wait,
                     int skipped) {
  (void)u;
  fprintf(stderr, "\n");
  printf("epoch %3d  train loss %.4f  validation mean Dice %.4f (", epoch, loss, dice);
  for (int k = 1; k < K; k++) printf("%s%.3f", k > 1 ? " " : "", pc[k]);
  printf(")  %.1f s, %.1f%% waiting for data", secs, 100 * wait);
  if (skipped) printf(", %d non-finite batches skipped", skipped);
  printf("\n");
  fflush(stdout);
}

static int parse3(const char *v, int out[3]) {
  return sscanf(v, "%d,%d,%d", &out[0], &out[1], &out[2]) == 3 && out[0] > 0 && out[1] > 0 && out[2] > 0;
}

int vx_cli_train(int argc, char **argv) {
  vx_train_options o;
  vx_train_options_init(&o);
  const char *device = NULL;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if ((v = vx_cli_opt(argc, argv, &i, "--dataset"))) o.dataset = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "--out"))) o.out = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "--model"))) o.model = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "--patch"))) {
      if (!parse3(v, o.patch)) { fprintf(stderr, "voxcl train: --patch %s: expected D,H,W\n", v); return 2; }
    } else if ((v = vx_cli_opt(argc, argv, &i, "--batch"))) o.batch = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--epochs"))) o.epochs = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--iters-per-epoch"))) o.iters_per_epoch = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--optimizer"))) o.optimizer = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "--lr"))) o.lr = (float)atof(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--weight-decay"))) o.weight_decay = (float)atof(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--fold"))) o.fold = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--folds"))) o.nfolds = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--seed"))) o.seed = strtoull(v, NULL, 10);
    else if ((v = vx_cli_opt(argc, argv, &i, "--base"))) o.base_channels = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--levels"))) o.levels = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--depth"))) o.depth = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--pretrained"))) o.pretrained = v;
    else if (!strcmp(argv[i], "--vae")) o.vae = 1;
    else if (!strcmp(argv[i], "--acnorm")) o.acnorm = 1;
    else if ((v = vx_cli_opt(argc, argv, &i, "--device"))) device = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "--stop-after"))) o.stop_after = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--spacing"))) {
      float *t = o.target_spacing;
      if (sscanf(v, "%f,%f,%f", &t[0], &t[1], &t[2]) != 3 || !(t[0] > 0 && t[1] > 0 && t[2] > 0)) {
        fprintf(stderr, "voxcl train: --spacing %s: expected X,Y,Z in mm, all > 0\n", v);
        return 2;
      }
    }
    else if (!strcmp(argv[i], "--resume")) o.resume = 1;
    else if (!strcmp(argv[i], "--skip-nonfinite")) o.skip_nonfinite = 1;
    else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
    else { fprintf(stderr, "voxcl train: unknown or incomplete option '%s'\n", argv[i]); usage(stderr); return 2; }
  }
  if (!o.dataset || !o.out) { usage(stderr); return 2; }
  char err[8192];
  vx_context_options co = {0};
  co.device = device;
  vx_context *ctx;
  vx_status st = vx_context_create(&co, &ctx, err, sizeof err);
  if (st != VX_OK) return vx_cli_error(st, err);
  const vx_device_info *d = vx_context_device(ctx);
  printf("voxcl train on %d:%d %s\n", d->platform, d->device, d->name);
  vx_train_callbacks cb = {on_plan, on_iter, on_epoch, NULL};
  st = vx_train_run(ctx, &o, &cb, err, sizeof err);
  vx_context_destroy(ctx);
  if (st != VX_OK) {
    fprintf(stderr, "\n");
    return vx_cli_error(st, err);
  }
  printf("done: %s/model.safetensors, model_best.safetensors, plan.json, training_log.csv, training_curves.png\n", o.out);
  return 0;
}
