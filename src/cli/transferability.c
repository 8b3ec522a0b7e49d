/* voxcl transferability: ranks pretrained checkpoints for a target dataset by AC-Corr
 * (layers.md part 4). Each checkpoint's batch norms become AC-Norm layers (source affine =
 * the pretrained one, frozen), the model is fine-tuned briefly on the dataset, and the score is
 * the mean over layers of sum(S) between source and fine-tuned target affines. Every checkpoint
 * sees the same batches (one sampler seed), so the scores are comparable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define MAX_CKPT 64

/* Dispatched from main.c (cli.h belongs to the CLI's owner). */
int vx_cli_transferability(int argc, char **argv);

static void usage(FILE *f) {
  fprintf(f,
          "usage: voxcl transferability --dataset DIR --checkpoint A.safetensors [--checkpoint B ...]\n"
          "                             [--iters N] [--patch D,H,W] [--batch N] [--lr X] [--seed S] [--device D]\n"
          "fine-tunes each checkpoint (a dualnorm-unet: networks with batch norms) for N iterations\n"
          "(default 25) with its batch norms turned into AC-Norm layers, and prints the AC-Corr score of\n"
          "each, ranked (higher: more transferable). Defaults: patch 32,32,32 (rounded up to what the\n"
          "network needs), batch 2, Adam lr 1e-3, seed 1.\n");
}

typedef struct {
  const char *path;
  double score, first_loss, last_loss;
  int layers, ok;
} result;

typedef struct {
  vx_volume **img, **lab;
  int n;
} cases;

static vx_status load_cases(const vx_dataset *ds, cases *cs, char *err, size_t errlen) {
  int n = vx_dataset_case_count(ds), C = vx_dataset_channel_count(ds);
  cs->img = calloc((size_t)n, sizeof *cs->img);
  cs->lab = calloc((size_t)n, sizeof *cs->lab);
  int *is_ct = calloc((size_t)C, sizeof *is_ct), *idx = malloc((size_t)n * sizeof *idx), nct = 0;
  vx_intensity_stats *stats = calloc((size_t)C, sizeof *stats);
  vx_status st = cs->img && cs->lab && is_ct && idx && stats ? VX_OK : VX_ERR_OUT_OF_MEMORY;
  for (int c = 0; c < C && st == VX_OK; c++) nct += is_ct[c] = vx_dataset_channel_is_ct(ds, c);
  for (int i = 0; i < n; i++) idx[i] = i;
  if (st == VX_OK && nct) st = vx_dataset_intensity_stats(ds, idx, n, 10000, stats, err, errlen);
  for (int i = 0; i < n && st == VX_OK; i++, cs->n++) {
    st = vx_dataset_load_case(ds, i, &cs->img[i], &cs->lab[i], err, errlen);
    if (st == VX_OK) st = vx_normalize_volume(cs->img[i], is_ct, stats);
  }
  free(is_ct), free(idx), free(stats);
  return st;
}

static void free_cases(cases *cs) {
  for (int i = 0; i < cs->n; i++) vx_volume_destroy(cs->img[i]), vx_volume_destroy(cs->lab[i]);
  free(cs->img), free(cs->lab);
}

/* Converts, fine-tunes and scores one checkpoint; a message in err when it does not qualify. */
static vx_status score_one(vx_context *ctx, const vx_dataset *ds, const cases *cs, result *r, const int patch_in[3],
                           int batch, float lr, int iters, uint64_t seed, char *err, size_t errlen) {
  vx_model_config cfg;
  vx_status st = vx_model_read_config(r->path, &cfg, err, errlen);
  if (st != VX_OK) return st;
  if (strcmp(cfg.name, "dualnorm-unet")) {
    snprintf(err, errlen, "%s: a '%s' has no batch norms; AC-Corr needs a dualnorm-unet checkpoint", r->path, cfg.name);
    return VX_ERR_UNSUPPORTED;
  }
  int C = vx_dataset_channel_count(ds), K = vx_dataset_class_count(ds);
  if (cfg.in_channels != C || cfg.classes != K) {
    snprintf(err, errlen, "%s: the network takes %d channel(s) and predicts %d classes, the dataset has %d and %d",
             r->path, cfg.in_channels, cfg.classes, C, K);
    return VX_ERR_SHAPE;
  }
  cfg.acnorm = 1;
  int f = 1 << (cfg.levels - 1), shape[5] = {batch, C, 0, 0, 0};
  for (int a = 0; a < 3; a++) shape[2 + a] = (patch_in[a] + f - 1) / f * f;
  vx_model *m = NULL;
  vx_trainer *tr = NULL;
  vx_sampler *sp = NULL;
  vx_tensor *x = NULL, *y = NULL;
  st = vx_model_create(ctx, &cfg, shape, &m);
  if (st != VX_OK) { snprintf(err, errlen, "%s: %s", r->path, vx_context_last_error(ctx)); return st; }
  st = vx_model_load_acnorm(m, r->path, err, errlen);
  vx_trainer_config tc;
  vx_trainer_config_init(&tc);
  tc.optimizer = VX_OPT_ADAM;
  tc.lr = lr;
  if (st == VX_OK && (st = vx_trainer_create(m, &tc, &tr)) != VX_OK)
    snprintf(err, errlen, "%s: %s", r->path, vx_context_last_error(ctx));
  vx_sampler_config sc;
  vx_sampler_config_init(&sc);
  sc.batch = batch;
  for (int a = 0; a < 3; a++) sc.patch[a] = shape[2 + a];
  sc.seed = seed;
  sc.threaded = 0;
  if (st == VX_OK) st = vx_sampler_create(cs->img, cs->lab, cs->n, &sc, &sp, err, errlen);
  int ls[5] = {batch, 1, shape[2], shape[3], shape[4]};
  if (st == VX_OK) st = vx_tensor_create(ctx, shape, &x);
  if (st == VX_OK) st = vx_tensor_create(ctx, ls, &y);
  for (int it = 0; it < iters && st == VX_OK; it++) {
    vx_batch b;
    float loss = 0;
    st = vx_sampler_next(sp, &b);
    if (st == VX_OK) st = vx_tensor_upload(x, b.image);
    if (st == VX_OK) st = vx_tensor_upload(y, b.label);
    if (st == VX_OK) st = vx_trainer_step(tr, x, y, lr, &loss);
    if (st != VX_OK && !*err) snprintf(err, errlen, "%s: iteration %d: %s", r->path, it, vx_context_last_error(ctx));
    if (it == 0) r->first_loss = loss;
    r->last_loss = loss;
  }
  if (st == VX_OK && (st = vx_model_acnorm_score(m, &r->score, &r->layers)) != VX_OK)
    snprintf(err, errlen, "%s: %s", r->path, vx_context_last_error(ctx));
  r->ok = st == VX_OK;
  vx_tensor_destroy(x), vx_tensor_destroy(y);
  vx_sampler_destroy(sp);
  vx_trainer_destroy(tr);
  vx_model_destroy(m);
  return st;
}

static int by_score(const void *a, const void *b) {
  const result *x = a, *y = b;
  if (x->ok != y->ok) return y->ok - x->ok;
  return (x->score < y->score) - (x->score > y->score);
}

int vx_cli_transferability(int argc, char **argv) {
  const char *dataset = NULL, *device = NULL, *v;
  result res[MAX_CKPT];
  int n = 0, iters = 25, batch = 2, patch[3] = {32, 32, 32};
  float lr = 1e-3f;
  unsigned long long seed = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
    if ((v = vx_cli_opt(argc, argv, &i, "--dataset"))) dataset = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "--checkpoint"))) {
      if (n == MAX_CKPT) { fprintf(stderr, "voxcl transferability: at most %d checkpoints\n", MAX_CKPT); return 2; }
      memset(&res[n], 0, sizeof res[n]);
      res[n++].path = v;
    } else if ((v = vx_cli_opt(argc, argv, &i, "--iters"))) iters = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--batch"))) batch = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--lr"))) lr = (float)atof(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--seed"))) seed = strtoull(v, NULL, 10);
    else if ((v = vx_cli_opt(argc, argv, &i, "--device"))) device = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "--patch"))) {
      if (sscanf(v, "%d,%d,%d", &patch[0], &patch[1], &patch[2]) != 3 || patch[0] < 1 || patch[1] < 1 || patch[2] < 1) {
        fprintf(stderr, "voxcl transferability: --patch '%s': expected D,H,W positive\n", v);
        return 2;
      }
    } else {
      fprintf(stderr, "voxcl transferability: unknown option '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if (!dataset || !n || iters < 1 || batch < 1 || !(lr > 0)) {
    fprintf(stderr, "voxcl transferability: needs --dataset and at least one --checkpoint; --iters, --batch and --lr "
                    "must be positive\n");
    usage(stderr);
    return 2;
  }
  char err[2048] = "";
  vx_dataset *ds = NULL;
  vx_status st = vx_dataset_open(dataset, &ds, err, sizeof err);
  if (st != VX_OK) return vx_cli_error(st, err);
  vx_context_options o = {0};
  o.device = device;
  vx_context *ctx = NULL;
  cases cs = {0};
  if ((st = vx_context_create(&o, &ctx, err, sizeof err)) == VX_OK) st = load_cases(ds, &cs, err, sizeof err);
  if (st != VX_OK) {
    free_cases(&cs);
    vx_dataset_close(ds);
    vx_context_destroy(ctx);
    return vx_cli_error(st, err);
  }
  printf("dataset %s: %d cases; %d fine-tuning iterations per checkpoint, patch %dx%dx%d, batch %d, lr %g\n",
         vx_dataset_name(ds), cs.n, iters, patch[0], patch[1], patch[2], batch, lr);
  int good = 0;
  for (int i = 0; i < n; i++) {
    err[0] = 0;
    st = score_one(ctx, ds, &cs, &res[i], patch, batch, lr, iters, seed, err, sizeof err);
    if (st == VX_OK) {
      good++;
      printf("%s: AC-Corr %.4f over %d AC-Norm layers (loss %.4f -> %.4f)\n", res[i].path, res[i].score, res[i].layers,
             res[i].first_loss, res[i].last_loss);
    } else {
      printf("%s: skipped: %s\n", res[i].path, *err ? err : vx_status_string(st));
    }
    fflush(stdout);
  }
  qsort(res, (size_t)n, sizeof res[0], by_score);
  if (good) printf("\nranking (higher AC-Corr: expected to transfer better):\n");
  for (int i = 0; i < good; i++) printf("%3d. %.4f  %s\n", i + 1, res[i].score, res[i].path);
  free_cases(&cs);
  vx_dataset_close(ds);
  vx_context_destroy(ctx);
  if (!good) {
    fprintf(stderr, "voxcl transferability: no checkpoint could be scored\n");
    return 1;
  }
  return 0; /* the skipped ones were reported above */
}
