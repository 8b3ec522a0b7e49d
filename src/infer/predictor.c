/* A trained model ready to segment volumes: a batch-1 network planned for the training patch,
 * the plan's intensity normalisation, and sliding-window prediction over it. Used by
 * `voxcl predict` (from a model folder) and by training for the validation of each epoch (from
 * the network being trained). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer/predictor.h"
#include "nn/model.h"

struct vx_predictor {
  vx_context *ctx;
  vx_model *net;
  vx_tensor *x;
  int C, K, patch[3];
  size_t pv;
  float overlap;
  float spacing[3]; /* x, y, z mm the model works at; 0: the input's own */
  int *is_ct;
  vx_intensity_stats *stats;
};

void vx_predictor_destroy(vx_predictor *p) {
  if (!p) return;
  vx_tensor_destroy(p->x);
  vx_model_destroy(p->net);
  free(p->is_ct);
  free(p->stats);
  free(p);
}

static vx_status make(vx_context *ctx, const vx_model_config *cfg, const int patch[3], vx_predictor **out) {
  *out = NULL;
  vx_predictor *p = calloc(1, sizeof *p);
  if (!p) return VX_ERR_OUT_OF_MEMORY;
  p->ctx = ctx;
  p->C = cfg->in_channels;
  p->K = cfg->classes;
  memcpy(p->patch, patch, sizeof p->patch);
  p->pv = (size_t)patch[0] * patch[1] * patch[2];
  p->overlap = 0.5f;
  p->is_ct = calloc((size_t)p->C, sizeof(int));
  p->stats = calloc((size_t)p->C, sizeof(vx_intensity_stats));
  int shape[5] = {1, p->C, patch[0], patch[1], patch[2]};
  vx_status st = p->is_ct && p->stats ? VX_OK : VX_ERR_OUT_OF_MEMORY;
  if (st == VX_OK) st = vx_model_create(ctx, cfg, shape, &p->net);
  if (st == VX_OK) st = vx_tensor_create(ctx, shape, &p->x);
  if (st != VX_OK) { vx_predictor_destroy(p); return st; }
  *out = p;
  return VX_OK;
}

vx_status vx_predictor_for_network(vx_model *trained, const int patch[3], vx_predictor **out) {
  vx_status st = make(trained->ctx, vx_model_get_config(trained), patch, out);
  if (st == VX_OK) st = vx_model_copy_parameters((*out)->net, trained);
  if (st != VX_OK) { vx_predictor_destroy(*out); *out = NULL; }
  return st;
}

vx_status vx_predictor_sync(vx_predictor *p, vx_model *trained) { return vx_model_copy_parameters(p->net, trained); }

int vx_predictor_classes(const vx_predictor *p) { return p->K; }
int vx_predictor_channels(const vx_predictor *p) { return p->C; }

/* One patch through the network; softmax over classes on the host. */
static vx_status patch_fn(void *user, const float *patch, float *out) {
  vx_predictor *p = user;
  vx_status st = vx_tensor_upload(p->x, patch);
  if (st == VX_OK) st = vx_model_forward(p->net, p->x);
  if (st == VX_OK) st = vx_tensor_download(vx_model_output(p->net), out);
  if (st != VX_OK) return st;
  for (size_t v = 0; v < p->pv; v++) {
    float m = out[v];
    for (int k = 1; k < p->K; k++) m = fmaxf(m, out[(size_t)k * p->pv + v]);
    double s = 0;
    for (int k = 0; k < p->K; k++) s += exp((double)out[(size_t)k * p->pv + v] - m);
    for (int k = 0; k < p->K; k++) out[(size_t)k * p->pv + v] = (float)(exp((double)out[(size_t)k * p->pv + v] - m) / s);
  }
  return VX_OK;
}

vx_status vx_predictor_run(vx_predictor *p, const float *image, const int dims[3], float overlap, int mirror,
                           float *probs, vx_progress_fn progress, void *user, char *err, size_t errlen) {
  if (overlap < 0) overlap = p->overlap;
  vx_status st = vx_sliding_window_predict(image, p->C, dims, p->patch, p->K, overlap, mirror, patch_fn, p, probs,
                                           progress, user, err, errlen);
  /* the window's position comes from the sliding window; the device's reason from the context */
  if (st != VX_OK && err && vx_context_last_error(p->ctx)[0]) {
    size_t n = strlen(err);
    if (n < errlen) snprintf(err + n, errlen - n, "%s%s", n ? ": " : "", vx_context_last_error(p->ctx));
  }
  return st;
}

vx_status vx_predictor_open(vx_context *ctx, const char *dir, vx_predictor **out, char *err, size_t errlen) {
  *out = NULL;
  char path[4200];
  snprintf(path, sizeof path, "%s/plan.json", dir);
  json_error_t je;
  json_t *plan = json_load_file(path, 0, &je);
  if (!plan) {
    snprintf(err, errlen, "%s: cannot read the model plan (%s)", path, je.text);
    return VX_ERR_IO;
  }
  vx_status st = VX_OK;
  int patch[3] = {0, 0, 0};
  json_t *jp = json_object_get(plan, "patch"), *ch = json_object_get(plan, "channels");
  for (int a = 0; a < 3; a++) patch[a] = (int)json_integer_value(json_array_get(jp, (size_t)a));
  if (json_array_size(jp) != 3 || patch[0] < 1 || patch[1] < 1 || patch[2] < 1 || !json_is_array(ch)) {
    snprintf(err, errlen, "%s: 'patch' (3 positive sizes) or 'channels' missing", path);
    st = VX_ERR_FORMAT;
  }
  vx_model_config cfg;
  char wpath[4200];
  snprintf(wpath, sizeof wpath, "%s/model.safetensors", dir);
  if (st == VX_OK) st = vx_model_read_config(wpath, &cfg, err, errlen);
  if (st == VX_OK && (int)json_array_size(ch) != cfg.in_channels) {
    snprintf(err, errlen, "%s: %zu channels, but the network in %s takes %d", path, json_array_size(ch), wpath,
             cfg.in_channels);
    st = VX_ERR_FORMAT;
  }
  vx_predictor *p = NULL;
  if (st == VX_OK && (st = make(ctx, &cfg, patch, &p)) != VX_OK)
    snprintf(err, errlen, "%s: %s", dir, vx_context_last_error(ctx));
  if (st == VX_OK) st = vx_model_load_weights(p->net, wpath, err, errlen);
  for (int c = 0; st == VX_OK && c < p->C; c++) {
    json_t *e = json_array_get(ch, (size_t)c);
    const char *norm = json_string_value(json_object_get(e, "normalization"));
    p->is_ct[c] = norm && !strcmp(norm, "ct");
    p->stats[c].lo = (float)json_number_value(json_object_get(e, "lo"));
    p->stats[c].hi = (float)json_number_value(json_object_get(e, "hi"));
    p->stats[c].mean = (float)json_number_value(json_object_get(e, "mean"));
    p->stats[c].std = (float)json_number_value(json_object_get(e, "std"));
  }
  json_t *sp = json_object_get(plan, "spacing");
  for (int a = 0; st == VX_OK && a < 3 && json_array_size(sp) == 3; a++)
    p->spacing[a] = (float)json_number_value(json_array_get(sp, (size_t)a));
  if (st == VX_OK && json_is_number(json_object_get(plan, "overlap")))
    p->overlap = (float)json_number_value(json_object_get(plan, "overlap"));
  json_decref(plan);
  if (st != VX_OK) { vx_predictor_destroy(p); return st; }
  *out = p;
  return VX_OK;
}

static vx_status segment_native(vx_predictor *p, vx_volume *image, float overlap, int mirror, float *labels,
                                float *probs, vx_progress_fn progress, void *user, char *err, size_t errlen);

/* A model trained at a target spacing: resample the image to it, predict, and bring the
 * probabilities back to the input's grid (trilinear) before the argmax, as nnU-Net does. */
vx_status vx_predictor_segment(vx_predictor *p, vx_volume *image, float overlap, int mirror, float *labels,
                               float *probs, vx_progress_fn progress, void *user, char *err, size_t errlen) {
  if (!(p->spacing[0] > 0)) return segment_native(p, image, overlap, mirror, labels, probs, progress, user, err, errlen);
  int d[4], r[4];
  vx_volume_dims(image, d);
  vx_volume *rs = NULL;
  vx_status st = vx_volume_resample(image, p->spacing, 0, &rs);
  if (st != VX_OK) {
    snprintf(err, errlen, "resampling the image to the model's spacing %gx%gx%g mm failed", p->spacing[0],
             p->spacing[1], p->spacing[2]);
    return st;
  }
  vx_volume_dims(rs, r);
  size_t nr = (size_t)r[0] * r[1] * r[2], nv = (size_t)d[0] * d[1] * d[2];
  float *pr = malloc(nr * p->K * sizeof(float)), *back = probs ? probs : malloc(nv * p->K * sizeof(float));
  if (!pr || !back) st = VX_ERR_OUT_OF_MEMORY;
  if (st == VX_OK) st = segment_native(p, rs, overlap, mirror, NULL, pr, progress, user, err, errlen);
  int in_dims[3] = {r[0], r[1], r[2]}, out_dims[3] = {d[0], d[1], d[2]};
  if (st == VX_OK) st = vx_resample(pr, in_dims, p->K, back, out_dims, 0);
  if (st == VX_OK && labels) st = vx_argmax_channels(back, p->K, nv, labels);
  free(pr);
  if (!probs) free(back);
  vx_volume_destroy(rs);
  return st;
}

static vx_status segment_native(vx_predictor *p, vx_volume *image, float overlap, int mirror, float *labels,
                                float *probs, vx_progress_fn progress, void *user, char *err, size_t errlen) {
  int d[4];
  vx_volume_dims(image, d);
  if (d[3] != p->C) {
    snprintf(err, errlen, "the image has %d channel(s), the model takes %d", d[3], p->C);
    return VX_ERR_SHAPE;
  }
  int dims[3] = {d[2], d[1], d[0]};
  size_t nv = (size_t)d[0] * d[1] * d[2];
  float *x = malloc(nv * p->C * sizeof(float)), *pr = probs ? probs : malloc(nv * p->K * sizeof(float));
  if (!x || !pr) {
    free(x);
    if (!probs) free(pr);
    snprintf(err, errlen, "host memory for a %dx%dx%d volume", d[0], d[1], d[2]);
    return VX_ERR_OUT_OF_MEMORY;
  }
  memcpy(x, vx_volume_data(image), nv * p->C * sizeof(float));
  for (int c = 0; c < p->C; c++) { /* the normalisation of training, from the plan */
    if (p->is_ct[c]) vx_normalize_ct(x + c * nv, nv, &p->stats[c]);
    else vx_normalize_zscore(x + c * nv, nv);
  }
  vx_status st = vx_predictor_run(p, x, dims, overlap, mirror, pr, progress, user, err, errlen);
  if (st == VX_OK && labels) st = vx_argmax_channels(pr, p->K, nv, labels);
  free(x);
  if (!probs) free(pr);
  return st;
}
