/* The training step: the model's forward -> loss -> backward (vx_model_train_step: Dice + CE
 * and the network's own terms) -> optional clipping -> one optimiser launch over the flat
 * parameter buffer. Works for every vx_model. */
#include <math.h>
#include <stdlib.h>

#include <stdio.h>
#include <string.h>

#include "nn/model.h"
#include "train/checkpoint.h"

struct vx_trainer {
  vx_model *net;
  vx_context *ctx;
  vx_trainer_config cfg;
  vx_tensor *m, *v; /* v unused by SGD */
  int step;
};

void vx_trainer_config_init(vx_trainer_config *c) {
  c->optimizer = VX_OPT_ADAM;
  c->lr = 1e-3f;
  c->beta1 = 0.9f;
  c->beta2 = 0.999f;
  c->eps = 1e-8f;
  c->weight_decay = 0.0f;
  c->momentum = 0.99f;
  c->nesterov = 1;
  c->clip_grad_value = 0.0f;
  c->clip_grad_norm = 0.0f;
  vx_loss_params_init(&c->loss);
}

void vx_trainer_destroy(vx_trainer *tr) {
  if (!tr) return;
  vx_tensor_destroy(tr->m);
  vx_tensor_destroy(tr->v);
  free(tr);
}

vx_status vx_trainer_create(vx_model *net, const vx_trainer_config *cfg, vx_trainer **out) {
  if (!net || !out) return VX_ERR_INVALID_ARGUMENT;
  *out = NULL;
  vx_trainer *tr = calloc(1, sizeof *tr);
  if (!tr) return VX_ERR_OUT_OF_MEMORY;
  tr->net = net;
  tr->ctx = net->ctx;
  if (cfg) tr->cfg = *cfg;
  else vx_trainer_config_init(&tr->cfg);
  const vx_tensor *p = vx_model_parameters(net);
  vx_status st = vx_tensor_create(tr->ctx, p->shape, &tr->m);
  if (st == VX_OK) st = vx_tensor_fill(tr->m, 0.0f);
  if (st == VX_OK && tr->cfg.optimizer != VX_OPT_SGD) st = vx_tensor_create(tr->ctx, p->shape, &tr->v);
  if (st == VX_OK && tr->v) st = vx_tensor_fill(tr->v, 0.0f);
  if (st != VX_OK) { vx_trainer_destroy(tr); return st; }
  *out = tr;
  return VX_OK;
}

vx_status vx_trainer_step(vx_trainer *tr, const vx_tensor *x, const vx_tensor *labels, float lr, float *loss) {
  /* a non-finite loss stops here, before the weights change */
  vx_status st = vx_model_train_step(tr->net, x, labels, &tr->cfg.loss, loss);
  if (st != VX_OK) return st;
  vx_tensor *p = vx_model_parameters(tr->net), *g = vx_model_gradients(tr->net);
  const vx_trainer_config *c = &tr->cfg;
  if (c->clip_grad_value > 0) st = vx_clip_grad_value(tr->ctx, g, c->clip_grad_value);
  if (st == VX_OK && c->clip_grad_norm > 0) st = vx_clip_grad_norm(tr->ctx, g, c->clip_grad_norm, NULL);
  if (st != VX_OK) return st;
  tr->step++;
  if (c->optimizer == VX_OPT_SGD) return vx_sgd_step(tr->ctx, p, g, tr->m, lr, c->momentum, c->nesterov, c->weight_decay);
  return vx_adam_step(tr->ctx, p, g, tr->m, tr->v, tr->step, lr, c->beta1, c->beta2, c->eps, c->weight_decay,
                      c->optimizer == VX_OPT_ADAMW);
}

int vx_trainer_step_count(const vx_trainer *tr) { return tr->step; }

static const char *opt_name(vx_optimizer_kind k) {
  return k == VX_OPT_SGD ? "sgd" : k == VX_OPT_ADAMW ? "adamw" : "adam";
}

vx_status vx_trainer_save(vx_trainer *tr, const char *path, const char *const *meta, char *errbuf, size_t errlen) {
  size_t n = tr->m->numel;
  float *m = malloc(n * sizeof(float)), *v = tr->v ? malloc(n * sizeof(float)) : NULL;
  if (!m || (tr->v && !v)) { free(m); free(v); return VX_ERR_OUT_OF_MEMORY; }
  vx_status st = vx_tensor_download(tr->m, m);
  if (st == VX_OK && v) st = vx_tensor_download(tr->v, v);
  if (st != VX_OK) {
    snprintf(errbuf, errlen, "%s: %s", path, vx_context_last_error(tr->ctx));
  } else {
    vx_st_tensor extra[2] = {{"optimizer.moment1", 1, {(int64_t)n}, m, n}, {"optimizer.moment2", 1, {(int64_t)n}, v, n}};
    char step[32];
    snprintf(step, sizeof step, "%d", tr->step);
    const char *all[40] = {"optimizer", opt_name(tr->cfg.optimizer), "step", step};
    int k = 4;
    for (int i = 0; meta && meta[i] && meta[i + 1] && k < 36; i += 2) { all[k++] = meta[i]; all[k++] = meta[i + 1]; }
    all[k] = NULL;
    st = vx_model_save_tensors(tr->net, path, extra, v ? 2 : 1, all, errbuf, errlen);
  }
  free(m);
  free(v);
  return st;
}

vx_status vx_trainer_load(vx_trainer *tr, const char *path, char **meta_out, char *errbuf, size_t errlen) {
  vx_st_file *f;
  vx_status st = vx_safetensors_open(path, &f, errbuf, errlen);
  if (st != VX_OK) return st;
  const char *opt = vx_safetensors_meta(f, "optimizer"), *step = vx_safetensors_meta(f, "step");
  int nd;
  int64_t sh[8];
  const float *m = vx_safetensors_find(f, "optimizer.moment1", &nd, sh);
  const float *v = vx_safetensors_find(f, "optimizer.moment2", &nd, sh);
  if (!opt || strcmp(opt, opt_name(tr->cfg.optimizer)) || !step || !m || (tr->v && !v)) {
    snprintf(errbuf, errlen, "%s: not a training state for optimizer '%s' (found optimizer '%s', step %s, %s)", path,
             opt_name(tr->cfg.optimizer), opt ? opt : "none", step ? step : "none",
             m ? "with moments" : "without optimiser moments");
    vx_safetensors_close(f);
    return VX_ERR_FORMAT;
  }
  if (sh[0] != (int64_t)tr->m->numel) {
    snprintf(errbuf, errlen, "%s: optimiser state holds %lld values, the network has %zu parameters", path,
             (long long)sh[0], tr->m->numel);
    vx_safetensors_close(f);
    return VX_ERR_SHAPE;
  }
  st = vx_model_load_from(tr->net, f, path, 1, errbuf, errlen);
  if (st == VX_OK) st = vx_tensor_upload(tr->m, m);
  if (st == VX_OK && tr->v) st = vx_tensor_upload(tr->v, v);
  if (st == VX_OK) {
    tr->step = atoi(step);
    if (meta_out) *meta_out = vx_safetensors_meta_json(f);
  }
  vx_safetensors_close(f);
  return st;
}
