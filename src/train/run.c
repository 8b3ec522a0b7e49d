/* A whole training run on a dataset folder, following nnU-Net: a plan from the dataset and the
 * device's memory, a fold split, intensity normalisation, a background patch sampler, SGD
 * (Nesterov 0.99) or Adam(W) with the poly learning rate, validation Dice after each epoch
 * (sliding window over the held-out fold), a CSV log and a PNG of the curves, and checkpoints
 * written aside and renamed so a crash never destroys the last good one. Resume restores the
 * weights and optimiser and replays the sampler to the same batch, so the losses continue bit
 * for bit. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "infer/predictor.h"
#include "io/plot.h"
#include "nn/model.h"

void vx_train_options_init(vx_train_options *o) {
  memset(o, 0, sizeof *o);
  o->model = "unet3d";
  o->batch = 2;
  o->epochs = 50;
  o->iters_per_epoch = 250;
  o->optimizer = "sgd";
  o->lr = -1;
  o->weight_decay = 3e-5f;
  o->nfolds = 5;
  o->seed = 12345;
  o->base_channels = 0; /* the model's: 32 as nnU-Net, 48 for UX-Net */
  o->max_channels = 0;
  o->overlap = 0.5f;
  o->threaded_sampler = 1;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* nnU-Net's plan in miniature: the patch follows the median case shape (each axis a multiple of
 * 2^(levels-1), or 32 for UX-Net, at most 128), the levels follow the patch (the coarsest keeps
 * >= 4 voxels), and the patch shrinks until the training network, planned without allocating,
 * fits in half of the device's memory. */
static vx_status make_plan(vx_context *ctx, const vx_train_options *o, vx_volume *const *imgs, int n, int C, int K,
                           vx_model_config *cfg, int patch[3], char *err, size_t errlen) {
  int med[3];
  for (int a = 0; a < 3; a++) { /* volume dims are x, y, z; the patch is D (z), H (y), W (x) */
    int *v = malloc((size_t)n * sizeof(int));
    if (!v) return VX_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < n; i++) {
      int d[4];
      vx_volume_dims(imgs[i], d);
      v[i] = d[2 - a];
    }
    qsort(v, (size_t)n, sizeof(int), cmp_int);
    med[a] = v[n / 2];
    free(v);
  }
  vx_model_config_init(cfg, o->model); /* an unknown name is refused by vx_model_plan, listing the known */
  int uxnet = !strcmp(cfg->name, "uxnet");
  cfg->in_channels = C;
  cfg->classes = K;
  cfg->base_channels = o->base_channels > 0 ? o->base_channels : uxnet ? 48 : 32;
  if (o->max_channels > 0) cfg->max_channels = o->max_channels;
  if (o->depth > 0) cfg->depth = o->depth;
  cfg->vae = o->vae;
  cfg->acnorm = o->acnorm;
  cfg->seed = o->seed;
  int user_patch = o->patch[0] > 0;
  for (int a = 0; a < 3; a++) patch[a] = user_patch ? o->patch[a] : (med[a] < 128 ? med[a] : 128);
  for (;;) {
    int mn = patch[0] < patch[1] ? patch[0] : patch[1];
    mn = mn < patch[2] ? mn : patch[2];
    int L = 1;
    while (L < 6 && (mn >> L) >= 4) L++;
    if (!uxnet) cfg->levels = o->levels > 0 ? o->levels : L;
    int f = uxnet ? 32 : 1 << (cfg->levels - 1);
    for (int a = 0; a < 3; a++) {
      if (user_patch && patch[a] % f) {
        snprintf(err, errlen, "patch %d,%d,%d: each size must be a multiple of %d for %s with %d levels", patch[0],
                 patch[1], patch[2], f, cfg->name, cfg->levels);
        return VX_ERR_INVALID_ARGUMENT;
      }
      patch[a] = patch[a] < f ? f : patch[a] / f * f;
    }
    int shape[5] = {o->batch, C, patch[0], patch[1], patch[2]};
    vx_model *probe = NULL;
    vx_status st = vx_model_plan(ctx, cfg, shape, &probe);
    size_t bytes = probe ? vx_model_device_bytes(probe) : 0;
    vx_model_destroy(probe);
    if (st != VX_OK && st != VX_ERR_OUT_OF_MEMORY) {
      snprintf(err, errlen, "%s", vx_context_last_error(ctx));
      return st;
    }
    uint64_t budget = vx_context_device(ctx)->global_mem_bytes / 2;
    if (st == VX_OK && bytes < budget) return VX_OK;
    int big = 0;
    for (int a = 1; a < 3; a++) big = patch[a] > patch[big] ? a : big;
    if (user_patch || patch[big] <= f) {
      snprintf(err, errlen, "patch %d,%d,%d with batch %d does not fit the device (%s)", patch[0], patch[1], patch[2],
               o->batch, st != VX_OK ? vx_context_last_error(ctx) : "more than half of its memory");
      return VX_ERR_OUT_OF_MEMORY;
    }
    patch[big] -= f; /* shrink the largest axis and try again */
  }
}

static vx_status write_json(json_t *j, const char *path, char *err, size_t errlen) {
  char tmp[4300];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  if (json_dump_file(j, tmp, JSON_INDENT(2)) != 0 || rename(tmp, path) != 0) {
    unlink(tmp);
    snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    return VX_ERR_IO;
  }
  return VX_OK;
}

static vx_status write_plan(const char *dir, const vx_train_options *o, const vx_dataset *ds,
                            const vx_model_config *cfg, const int patch[3], const vx_intensity_stats *stats,
                            const int *is_ct, char *err, size_t errlen) {
  json_t *j = json_object(), *ch = json_array(), *labels = json_object(), *p = json_array();
  json_object_set_new(j, "format", json_string("voxcl-plan"));
  json_object_set_new(j, "version", json_integer(1));
  json_object_set_new(j, "model", json_string(o->model));
  for (int a = 0; a < 3; a++) json_array_append_new(p, json_integer(patch[a]));
  json_object_set_new(j, "patch", p);
  json_object_set_new(j, "batch", json_integer(o->batch));
  json_object_set_new(j, "classes", json_integer(cfg->classes));
  for (int c = 0; c < cfg->in_channels; c++) {
    json_t *e = json_object();
    const char *name = vx_dataset_channel_name(ds, c);
    json_object_set_new(e, "name", json_string(name ? name : ""));
    json_object_set_new(e, "normalization", json_string(is_ct[c] ? "ct" : "zscore"));
    if (is_ct[c]) {
      json_object_set_new(e, "lo", json_real(stats[c].lo));
      json_object_set_new(e, "hi", json_real(stats[c].hi));
      json_object_set_new(e, "mean", json_real(stats[c].mean));
      json_object_set_new(e, "std", json_real(stats[c].std));
    }
    json_array_append_new(ch, e);
  }
  json_object_set_new(j, "channels", ch);
  for (int k = 0; k < cfg->classes; k++)
    if (vx_dataset_label_name(ds, k)) json_object_set_new(labels, vx_dataset_label_name(ds, k), json_integer(k));
  json_object_set_new(j, "labels", labels);
  json_object_set_new(j, "overlap", json_real(o->overlap));
  json_object_set_new(j, "fold", json_integer(o->fold));
  if (o->target_spacing[0] > 0) {
    json_t *sp = json_array();
    for (int a = 0; a < 3; a++) json_array_append_new(sp, json_real(o->target_spacing[a]));
    json_object_set_new(j, "spacing", sp); /* x, y, z mm */
  }
  char path[4200];
  snprintf(path, sizeof path, "%s/plan.json", dir);
  vx_status st = write_json(j, path, err, errlen);
  json_decref(j);
  return st;
}

typedef struct {
  int epoch;
  double loss, dice, lr, seconds, wait_share;
} history_row;

static vx_status write_log(const char *dir, const history_row *h, int n, char *err, size_t errlen) {
  char path[4200], tmp[4300];
  snprintf(path, sizeof path, "%s/training_log.csv", dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) { snprintf(err, errlen, "%s: %s", tmp, strerror(errno)); return VX_ERR_IO; }
  fprintf(f, "epoch,train_loss,val_mean_dice,lr,epoch_seconds,data_wait_share\n");
  for (int i = 0; i < n; i++)
    fprintf(f, "%d,%.6f,%.6f,%.6g,%.2f,%.4f\n", h[i].epoch, h[i].loss, h[i].dice, h[i].lr, h[i].seconds, h[i].wait_share);
  if (fclose(f) != 0 || rename(tmp, path) != 0) { snprintf(err, errlen, "%s: cannot write", path); return VX_ERR_IO; }
  double *x = malloc((size_t)n * sizeof(double) * 3);
  if (!x) return VX_ERR_OUT_OF_MEMORY;
  double *yl = x + n, *yd = x + 2 * n;
  for (int i = 0; i < n; i++) x[i] = h[i].epoch, yl[i] = h[i].loss, yd[i] = h[i].dice;
  vx_plot_series s[2] = {{"train loss", x, yl, n, 0}, {"validation mean Dice", x, yd, n, 1}};
  snprintf(path, sizeof path, "%s/training_curves.png", dir);
  vx_status st = vx_plot_png(path, "voxcl train", "epoch", s, 2, err, errlen);
  free(x);
  return st;
}

static char *history_json(const history_row *h, int n) {
  json_t *a = json_array();
  for (int i = 0; i < n; i++) {
    json_t *r = json_array();
    json_array_append_new(r, json_integer(h[i].epoch));
    json_array_append_new(r, json_real(h[i].loss));
    json_array_append_new(r, json_real(h[i].dice));
    json_array_append_new(r, json_real(h[i].lr));
    json_array_append_new(r, json_real(h[i].seconds));
    json_array_append_new(r, json_real(h[i].wait_share));
    json_array_append_new(a, r);
  }
  char *s = json_dumps(a, JSON_COMPACT);
  json_decref(a);
  return s;
}

static int history_parse(const char *meta, history_row *h, int cap, int *best_epoch, double *best) {
  json_t *m = json_loads(meta, 0, NULL);
  json_t *a = m ? json_loads(json_string_value(json_object_get(m, "history")), 0, NULL) : NULL;
  int n = 0;
  for (size_t i = 0; a && i < json_array_size(a) && n < cap; i++, n++) {
    json_t *r = json_array_get(a, i);
    h[n].epoch = (int)json_integer_value(json_array_get(r, 0));
    h[n].loss = json_number_value(json_array_get(r, 1));
    h[n].dice = json_number_value(json_array_get(r, 2));
    h[n].lr = json_number_value(json_array_get(r, 3));
    h[n].seconds = json_number_value(json_array_get(r, 4));
    h[n].wait_share = json_number_value(json_array_get(r, 5));
    if (h[n].dice > *best) *best = h[n].dice, *best_epoch = h[n].epoch;
  }
  json_decref(a);
  json_decref(m);
  return n;
}

/* Mean foreground Dice over the validation cases (already normalised, in memory). */
static vx_status validate(vx_predictor *pred, vx_volume *const *imgs, vx_volume *const *labs, int n, int K,
                          float overlap, double *dice_out, double *per_class, char *err, size_t errlen) {
  double sum = 0;
  int cnt = 0;
  for (int k = 0; k < K; k++) per_class[k] = 0;
  for (int i = 0; i < n; i++) {
    int d[4];
    vx_volume_dims(imgs[i], d);
    int dims[3] = {d[2], d[1], d[0]};
    size_t nv = (size_t)d[0] * d[1] * d[2];
    float *probs = malloc(nv * K * sizeof(float)), *lab = malloc(nv * sizeof(float));
    uint8_t *a = malloc(nv), *b = malloc(nv);
    vx_status st = probs && lab && a && b ? VX_OK : VX_ERR_OUT_OF_MEMORY;
    if (st == VX_OK) st = vx_predictor_run(pred, vx_volume_data(imgs[i]), dims, overlap, 0, probs, NULL, NULL, err, errlen);
    if (st == VX_OK) st = vx_argmax_channels(probs, K, nv, lab);
    const float *ref = vx_volume_data(labs[i]);
    for (int k = 1; k < K && st == VX_OK; k++) {
      for (size_t v = 0; v < nv; v++) a[v] = lab[v] == (float)k, b[v] = ref[v] == (float)k;
      double dk = vx_dice_masks(a, b, nv);
      per_class[k] += dk / n;
      sum += dk;
      cnt++;
    }
    free(probs);
    free(lab);
    free(a);
    free(b);
    if (st != VX_OK) return st;
  }
  *dice_out = cnt ? sum / cnt : 0;
  return VX_OK;
}

typedef struct {
  vx_dataset *ds;
  vx_volume **img, **lab;
  int n;
} case_set;

static void free_cases(case_set *c) {
  for (int i = 0; i < c->n; i++) {
    vx_volume_destroy(c->img[i]);
    vx_volume_destroy(c->lab[i]);
  }
  free(c->img);
  free(c->lab);
}

vx_status vx_train_run(vx_context *ctx, const vx_train_options *o, const vx_train_callbacks *cb, char *err,
                       size_t errlen) {
  vx_train_callbacks none = {0};
  if (!cb) cb = &none;
  err[0] = 0;
  if (!o->dataset || !o->out) { snprintf(err, errlen, "a dataset folder and an output folder are required"); return VX_ERR_INVALID_ARGUMENT; }
  vx_optimizer_kind opt = !strcmp(o->optimizer, "sgd") ? VX_OPT_SGD : !strcmp(o->optimizer, "adamw") ? VX_OPT_ADAMW
                          : !strcmp(o->optimizer, "adam")                                      ? VX_OPT_ADAM
                                                                                                : (vx_optimizer_kind)-1;
  if ((int)opt < 0) { snprintf(err, errlen, "optimizer '%s': expected sgd, adamw or adam", o->optimizer); return VX_ERR_INVALID_ARGUMENT; }
  if (o->epochs < 1 || o->iters_per_epoch < 1 || o->batch < 1) {
    snprintf(err, errlen, "epochs (%d), iterations per epoch (%d) and batch (%d) must be positive", o->epochs,
             o->iters_per_epoch, o->batch);
    return VX_ERR_INVALID_ARGUMENT;
  }
  vx_dataset *ds = NULL;
  vx_status st = vx_dataset_open(o->dataset, &ds, err, errlen);
  if (st != VX_OK) return st;
  int n = vx_dataset_case_count(ds), C = vx_dataset_channel_count(ds), K = vx_dataset_class_count(ds);
  if (n < 1) { snprintf(err, errlen, "%s: no training cases", o->dataset); vx_dataset_close(ds); return VX_ERR_INVALID_ARGUMENT; }
  int *tr_idx = malloc((size_t)n * sizeof(int)), *va_idx = malloc((size_t)n * sizeof(int)), ntr = n, nva = 0;
  case_set tr = {ds, calloc((size_t)n, sizeof(vx_volume *)), calloc((size_t)n, sizeof(vx_volume *)), 0};
  case_set va = {ds, calloc((size_t)n, sizeof(vx_volume *)), calloc((size_t)n, sizeof(vx_volume *)), 0};
  vx_intensity_stats *stats = calloc((size_t)C, sizeof *stats);
  int *is_ct = calloc((size_t)C, sizeof(int));
  history_row *hist = calloc((size_t)o->epochs + 1, sizeof *hist);
  vx_model *net = NULL;
  vx_trainer *trainer = NULL;
  vx_sampler *sampler = NULL;
  vx_predictor *pred = NULL;
  vx_tensor *x = NULL, *y = NULL;
  int nhist = 0;
  if (!tr_idx || !va_idx || !tr.img || !tr.lab || !va.img || !va.lab || !stats || !is_ct || !hist) {
    st = VX_ERR_OUT_OF_MEMORY;
    goto done;
  }
  /* fold split; with too few cases the validation set is the training set */
  int nf = o->nfolds < n ? o->nfolds : n;
  if (nf >= 2 && o->fold >= 0) {
    if (o->fold >= nf) { snprintf(err, errlen, "fold %d: expected 0..%d", o->fold, nf - 1); st = VX_ERR_INVALID_ARGUMENT; goto done; }
    st = vx_fold_split(n, o->fold, nf, (uint64_t)o->seed, tr_idx, &ntr, va_idx, &nva);
  } else {
    for (int i = 0; i < n; i++) tr_idx[i] = va_idx[i] = i;
    ntr = nva = n;
  }
  for (int i = 0; i < ntr && st == VX_OK; i++, tr.n++) st = vx_dataset_load_case(ds, tr_idx[i], &tr.img[i], &tr.lab[i], err, errlen);
  for (int i = 0; i < nva && st == VX_OK; i++, va.n++) st = vx_dataset_load_case(ds, va_idx[i], &va.img[i], &va.lab[i], err, errlen);
  if (st != VX_OK) goto done;
  if (o->target_spacing[0] > 0 && o->target_spacing[1] > 0 && o->target_spacing[2] > 0) {
    case_set *sets[2] = {&tr, &va};
    for (int k = 0; k < 2 && st == VX_OK; k++)
      for (int i = 0; i < sets[k]->n && st == VX_OK; i++) {
        vx_volume *ri = NULL, *rl = NULL;
        st = vx_volume_resample(sets[k]->img[i], o->target_spacing, 0, &ri);
        if (st == VX_OK) st = vx_volume_resample(sets[k]->lab[i], o->target_spacing, 1, &rl);
        if (st != VX_OK) {
          snprintf(err, errlen, "resampling case %s to %gx%gx%g mm failed", vx_dataset_case_id(ds, k ? va_idx[i] : tr_idx[i]),
                   o->target_spacing[0], o->target_spacing[1], o->target_spacing[2]);
          vx_volume_destroy(ri);
          vx_volume_destroy(rl);
          break;
        }
        vx_volume_destroy(sets[k]->img[i]);
        vx_volume_destroy(sets[k]->lab[i]);
        sets[k]->img[i] = ri;
        sets[k]->lab[i] = rl;
      }
    if (st != VX_OK) goto done;
  }
  int nct = 0;
  for (int c = 0; c < C; c++) nct += is_ct[c] = vx_dataset_channel_is_ct(ds, c);
  if (nct) st = vx_dataset_intensity_stats(ds, tr_idx, ntr, 10000, stats, err, errlen);
  for (int i = 0; i < tr.n && st == VX_OK; i++) st = vx_normalize_volume(tr.img[i], is_ct, stats);
  for (int i = 0; i < va.n && st == VX_OK; i++) st = vx_normalize_volume(va.img[i], is_ct, stats);
  if (st != VX_OK) goto done;

  vx_model_config cfg;
  int patch[3];
  if ((st = make_plan(ctx, o, tr.img, tr.n, C, K, &cfg, patch, err, errlen)) != VX_OK) goto done;
  if (mkdir(o->out, 0755) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "%s: cannot create: %s", o->out, strerror(errno));
    st = VX_ERR_IO;
    goto done;
  }
  if ((st = write_plan(o->out, o, ds, &cfg, patch, stats, is_ct, err, errlen)) != VX_OK) goto done;
  int shape[5] = {o->batch, C, patch[0], patch[1], patch[2]}, lshape[5] = {o->batch, 1, patch[0], patch[1], patch[2]};
  vx_trainer_config tc;
  vx_trainer_config_init(&tc);
  tc.optimizer = opt;
  tc.lr = o->lr > 0 ? o->lr : opt == VX_OPT_SGD ? 1e-2f : 1e-3f;
  tc.weight_decay = o->weight_decay;
  tc.momentum = 0.99f;
  tc.nesterov = 1;
  st = vx_model_create(ctx, &cfg, shape, &net);
  if (st == VX_OK && o->pretrained && !o->resume) {
    /* AC-Norm fine-tuning: the pretrained batch norms give both the frozen source affine and the
     * trainable target affine */
    st = o->acnorm ? vx_model_load_acnorm(net, o->pretrained, err, errlen)
                   : vx_model_load_weights(net, o->pretrained, err, errlen);
    if (st != VX_OK) goto done;
  }
  if (st == VX_OK) st = vx_trainer_create(net, &tc, &trainer);
  if (st == VX_OK) st = vx_tensor_create(ctx, shape, &x);
  if (st == VX_OK) st = vx_tensor_create(ctx, lshape, &y);
  if (st == VX_OK) st = vx_predictor_for_network(net, patch, &pred);
  if (st != VX_OK) { snprintf(err, errlen, "%s", vx_context_last_error(ctx)); goto done; }
  vx_sampler_config sc;
  vx_sampler_config_init(&sc);
  sc.batch = o->batch;
  memcpy(sc.patch, patch, sizeof sc.patch);
  sc.seed = o->seed;
  sc.threaded = o->threaded_sampler;
  if ((st = vx_sampler_create(tr.img, tr.lab, tr.n, &sc, &sampler, err, errlen)) != VX_OK) goto done;
  if (cb->on_plan) {
    char msg[1024];
    snprintf(msg, sizeof msg,
             "plan: %d training / %d validation cases (fold %d), %d channel(s), %d classes; patch %dx%dx%d, batch %d; "
             "%s %d levels, %d base channels, %zu parameters, %.0f MiB on the device; %s lr %g",
             tr.n, va.n, o->fold, C, K, patch[0], patch[1], patch[2], o->batch, cfg.name, cfg.levels, cfg.base_channels,
             vx_model_parameter_count(net), vx_model_device_bytes(net) / 1048576.0, o->optimizer, tc.lr);
    cb->on_plan(cb->user, msg);
  }

  char ckpt[4200], wpath[4200], bpath[4200];
  snprintf(ckpt, sizeof ckpt, "%s/checkpoint_latest.safetensors", o->out);
  snprintf(wpath, sizeof wpath, "%s/model.safetensors", o->out);
  snprintf(bpath, sizeof bpath, "%s/model_best.safetensors", o->out);
  int start_epoch = 0, best_epoch = -1;
  double best = -1;
  if (o->resume) {
    char *meta = NULL;
    if ((st = vx_trainer_load(trainer, ckpt, &meta, err, errlen)) != VX_OK) goto done;
    nhist = history_parse(meta, hist, o->epochs, &best_epoch, &best);
    json_t *m = json_loads(meta, 0, NULL);
    const char *done_s = m ? json_string_value(json_object_get(m, "epochs_done")) : NULL;
    start_epoch = done_s ? atoi(done_s) : 0;
    json_decref(m);
    vx_free(meta);
    /* replay the sampler to where the checkpoint was taken (skipped iterations consumed a
     * batch too): the same batches from here on */
    long long consumed = (long long)start_epoch * o->iters_per_epoch;
    vx_batch b;
    for (long long i = 0; i < consumed && st == VX_OK; i++) st = vx_sampler_next(sampler, &b);
    if (st != VX_OK) goto done;
  }
  float lr0 = tc.lr;
  int skipped = 0;
  int end_epoch = o->stop_after > 0 && start_epoch + o->stop_after < o->epochs ? start_epoch + o->stop_after : o->epochs;
  for (int epoch = start_epoch; epoch < end_epoch; epoch++) {
    double t0 = now(), loss_sum = 0;
    vx_sampler_stats s0, s1;
    vx_sampler_get_stats(sampler, &s0);
    float lr = lr0 * (float)pow(1.0 - (double)epoch / o->epochs, 0.9); /* nnU-Net's poly schedule */
    int good = 0;
    for (int it = 0; it < o->iters_per_epoch; it++) {
      vx_batch b;
      float loss = 0;
      st = vx_sampler_next(sampler, &b);
      if (st == VX_OK) st = vx_tensor_upload(x, b.image);
      if (st == VX_OK) st = vx_tensor_upload(y, b.label);
      if (st == VX_OK) st = vx_trainer_step(trainer, x, y, lr, &loss);
      if (st == VX_ERR_NOT_FINITE && o->skip_nonfinite) {
        skipped++;
        st = VX_OK;
        continue;
      }
      if (st == VX_ERR_NOT_FINITE) {
        char last[4400];
        if (epoch > 0) snprintf(last, sizeof last, "the last good checkpoint is %s (after epoch %d)", ckpt, epoch - 1);
        else snprintf(last, sizeof last, "no checkpoint was written yet");
        snprintf(err, errlen,
                 "the loss became %g at epoch %d, iteration %d (step %d): stopped; %s. Lower the learning rate or "
                 "pass --skip-nonfinite to skip such batches",
                 (double)loss, epoch, it, vx_trainer_step_count(trainer) + 1, last);
        goto done;
      }
      if (st != VX_OK) { if (!err[0]) snprintf(err, errlen, "%s", vx_context_last_error(ctx)); goto done; }
      loss_sum += loss;
      good++;
      if (cb->on_iter) {
        double el = now() - t0, rate = (it + 1) / (el + 1e-9);
        double left = ((double)(o->epochs - epoch - 1) * o->iters_per_epoch + (o->iters_per_epoch - it - 1)) / rate;
        cb->on_iter(cb->user, epoch, it, o->iters_per_epoch, loss, lr, rate, left);
      }
    }
    vx_sampler_get_stats(sampler, &s1);
    double per_class[64] = {0}, dice = 0;
    if (K > 64) { snprintf(err, errlen, "more than 64 classes"); st = VX_ERR_UNSUPPORTED; goto done; }
    if ((st = vx_predictor_sync(pred, net)) != VX_OK) goto done;
    if ((st = validate(pred, va.img, va.lab, va.n, K, o->overlap, &dice, per_class, err, errlen)) != VX_OK) goto done;
    double secs = now() - t0;
    history_row *h = &hist[nhist++];
    h->epoch = epoch;
    h->loss = good ? loss_sum / good : NAN;
    h->dice = dice;
    h->lr = lr;
    h->seconds = secs;
    h->wait_share = (s1.wait_seconds - s0.wait_seconds) / secs;
    /* checkpoint: the full state first, then the weights for predict, then the log */
    char *hj = history_json(hist, nhist), done_s[32];
    snprintf(done_s, sizeof done_s, "%d", epoch + 1);
    const char *meta[] = {"epochs_done", done_s, "history", hj ? hj : "[]", NULL};
    st = vx_trainer_save(trainer, ckpt, meta, err, errlen);
    free(hj);
    if (st == VX_OK) st = vx_model_save(net, wpath, err, errlen);
    if (st == VX_OK && dice > best) {
      best = dice;
      best_epoch = epoch;
      st = vx_model_save(net, bpath, err, errlen);
    }
    if (st == VX_OK) st = write_log(o->out, hist, nhist, err, errlen);
    if (st != VX_OK) goto done;
    if (cb->on_epoch) cb->on_epoch(cb->user, epoch, h->loss, dice, per_class, K, secs, h->wait_share, skipped);
  }
done:
  if (st != VX_OK && !err[0]) snprintf(err, errlen, "%s", vx_context_last_error(ctx));
  vx_sampler_destroy(sampler);
  vx_predictor_destroy(pred);
  vx_tensor_destroy(x);
  vx_tensor_destroy(y);
  vx_trainer_destroy(trainer);
  vx_model_destroy(net);
  free_cases(&tr);
  free_cases(&va);
  free(tr_idx);
  free(va_idx);
  free(stats);
  free(is_ct);
  free(hist);
  vx_dataset_close(ds);
  return st;
}
