/* Checkpoints: a network's weights as safetensors, named like a PyTorch state dict
 * ("encoder.0.0.conv.weight", ...), with the model configuration in the metadata, so a file
 * alone rebuilds its network and PyTorch can read it. Trainer state (optimiser moments, step)
 * is added by vx_trainer_save in trainer.c. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "nn/model.h"
#include "train/checkpoint.h"

/* Norm and bias parameters are 1-D in PyTorch; weights (Kaiming-initialised, or any tensor
 * with more than one non-trivial dimension) keep all five dimensions. */
static int decl_ndim(const vx_decl *d) {
  if (d->init == VX_INIT_KAIMING) return 5;
  return d->shape[1] == 1 && d->shape[2] == 1 && d->shape[3] == 1 && d->shape[4] == 1 ? 1 : 5;
}

/* Every field of the configuration; a reader fills what a file lacks from the defaults, so
 * checkpoints written before a field existed still load. */
char *vx_model_config_json(const vx_model_config *c) {
  json_t *j = json_object();
  json_object_set_new(j, "model", json_string(c->name));
  json_object_set_new(j, "in_channels", json_integer(c->in_channels));
  json_object_set_new(j, "classes", json_integer(c->classes));
  json_object_set_new(j, "levels", json_integer(c->levels));
  json_object_set_new(j, "base_channels", json_integer(c->base_channels));
  json_object_set_new(j, "max_channels", json_integer(c->max_channels));
  json_object_set_new(j, "slope", json_real(c->slope));
  json_object_set_new(j, "depth", json_integer(c->depth));
  json_object_set_new(j, "vae", json_integer(c->vae));
  json_object_set_new(j, "vae_weight", json_real(c->vae_weight));
  json_object_set_new(j, "dualnorm_masked", json_integer(c->dualnorm_masked));
  json_object_set_new(j, "dualnorm_levels", json_integer(c->dualnorm_levels));
  json_object_set_new(j, "acnorm", json_integer(c->acnorm));
  char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(j);
  return s;
}

vx_status vx_model_config_parse(const char *text, vx_model_config *c, char *errbuf, size_t errlen) {
  json_error_t je;
  json_t *j = text ? json_loads(text, 0, &je) : NULL;
  if (!j || !json_is_object(j)) {
    snprintf(errbuf, errlen, "model configuration is missing or not JSON");
    json_decref(j);
    return VX_ERR_FORMAT;
  }
  const char *model = json_string_value(json_object_get(j, "model"));
  vx_status st = VX_OK;
  if (!model || vx_model_config_init(c, model) != VX_OK) {
    snprintf(errbuf, errlen, "model '%s' is not a network this voxcl knows", model ? model : "(missing)");
    st = VX_ERR_FORMAT;
  }
  const char *req[] = {"in_channels", "classes", "levels", "base_channels", "max_channels"};
  int *rdst[] = {&c->in_channels, &c->classes, &c->levels, &c->base_channels, &c->max_channels};
  for (int i = 0; i < 5 && st == VX_OK; i++) {
    json_t *v = json_object_get(j, req[i]);
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100000) {
      snprintf(errbuf, errlen, "model configuration field '%s' is missing or out of range", req[i]);
      st = VX_ERR_FORMAT;
    } else {
      *rdst[i] = (int)json_integer_value(v);
    }
  }
  const char *opt[] = {"depth", "vae", "dualnorm_masked", "dualnorm_levels", "acnorm"};
  int *odst[] = {&c->depth, &c->vae, &c->dualnorm_masked, &c->dualnorm_levels, &c->acnorm};
  for (int i = 0; i < 5 && st == VX_OK; i++) {
    json_t *v = json_object_get(j, opt[i]);
    if (!v) continue;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000) {
      snprintf(errbuf, errlen, "model configuration field '%s' is out of range", opt[i]);
      st = VX_ERR_FORMAT;
    } else {
      *odst[i] = (int)json_integer_value(v);
    }
  }
  if (st == VX_OK && json_is_number(json_object_get(j, "slope"))) c->slope = (float)json_number_value(json_object_get(j, "slope"));
  if (st == VX_OK && json_is_number(json_object_get(j, "vae_weight")))
    c->vae_weight = (float)json_number_value(json_object_get(j, "vae_weight"));
  json_decref(j);
  return st;
}

/* The sets a checkpoint holds: trained parameters, then saved state (running statistics). */
static int model_sets(vx_model *m, vx_param_set *sets[2]) {
  sets[0] = &m->params;
  sets[1] = &m->state;
  return m->state.n ? 2 : 1;
}

vx_status vx_model_save_tensors(vx_model *m, const char *path, const vx_st_tensor *extra, int nextra,
                                const char *const *meta, char *errbuf, size_t errlen) {
  vx_param_set *sets[2];
  int ns = model_sets(m, sets), total = nextra;
  float *host[2] = {NULL, NULL};
  for (int k = 0; k < ns; k++) total += sets[k]->n;
  vx_st_tensor *t = calloc((size_t)total, sizeof *t);
  vx_status st = t ? VX_OK : VX_ERR_OUT_OF_MEMORY;
  int n = 0;
  for (int k = 0; k < ns && st == VX_OK; k++) {
    vx_param_set *ps = sets[k];
    host[k] = malloc(ps->count * sizeof(float));
    if (!host[k]) { st = VX_ERR_OUT_OF_MEMORY; break; }
    st = vx_tensor_download(ps->flat, host[k]);
    if (st != VX_OK) {
      snprintf(errbuf, errlen, "%s: %s", path, vx_context_last_error(ps->ctx));
      break;
    }
    for (int i = 0; i < ps->n; i++, n++) {
      const vx_decl *d = &ps->decl[i];
      t[n].name = d->name;
      t[n].ndim = decl_ndim(d);
      for (int q = 0; q < t[n].ndim; q++) t[n].shape[q] = d->shape[q];
      t[n].data = host[k] + d->offset;
      t[n].numel = d->numel;
    }
  }
  if (st == VX_OK) {
    for (int i = 0; i < nextra; i++) t[n + i] = extra[i];
    char *cfg = vx_model_config_json(&m->cfg);
    const char *mm[32] = {"format", "voxcl", "voxcl.model", cfg ? cfg : "{}"};
    int nm = 4;
    for (int i = 0; meta && meta[i] && meta[i + 1] && nm < 30; i += 2) { mm[nm++] = meta[i]; mm[nm++] = meta[i + 1]; }
    mm[nm] = NULL;
    st = vx_safetensors_write(path, t, total, mm, errbuf, errlen);
    free(cfg);
  }
  free(host[0]);
  free(host[1]);
  free(t);
  return st;
}

vx_status vx_model_save(vx_model *m, const char *path, char *errbuf, size_t errlen) {
  return vx_model_save_tensors(m, path, NULL, 0, NULL, errbuf, errlen);
}

vx_status vx_model_read_config(const char *path, vx_model_config *cfg, char *errbuf, size_t errlen) {
  vx_st_file *f;
  vx_status st = vx_safetensors_open(path, &f, errbuf, errlen);
  if (st != VX_OK) return st;
  char msg[512] = "";
  st = vx_model_config_parse(vx_safetensors_meta(f, "voxcl.model"), cfg, msg, sizeof msg);
  if (st != VX_OK) snprintf(errbuf, errlen, "%s: %s", path, msg);
  vx_safetensors_close(f);
  return st;
}

vx_status vx_model_load_from(vx_model *m, const vx_st_file *f, const char *path, int allow_extra, char *errbuf,
                             size_t errlen) {
  vx_param_set *sets[2];
  int ns = model_sets(m, sets), expected = 0;
  float *host[2] = {NULL, NULL};
  vx_status st = VX_OK;
  for (int k = 0; k < ns && st == VX_OK; k++) {
    vx_param_set *ps = sets[k];
    expected += ps->n;
    host[k] = calloc(ps->count ? ps->count : 1, sizeof(float));
    if (!host[k]) { st = VX_ERR_OUT_OF_MEMORY; break; }
    for (int i = 0; i < ps->n && st == VX_OK; i++) {
      const vx_decl *d = &ps->decl[i];
      int nd;
      int64_t sh[8];
      const float *src = vx_safetensors_find(f, d->name, &nd, sh);
      int same = src && nd == decl_ndim(d);
      for (int q = 0; same && q < nd; q++) same = sh[q] == d->shape[q];
      if (!same) {
        snprintf(errbuf, errlen,
                 "%s: the checkpoint does not match the network's architecture (%s): tensor '%s' %s (expected shape "
                 "[%d, %d, %d, %d, %d])",
                 path, m->cfg.name, d->name, src ? "has another shape" : "is missing", d->shape[0], d->shape[1],
                 d->shape[2], d->shape[3], d->shape[4]);
        st = VX_ERR_SHAPE;
      } else {
        memcpy(host[k] + d->offset, src, d->numel * sizeof(float));
      }
    }
  }
  if (st == VX_OK && !allow_extra && vx_safetensors_count(f) != expected) {
    snprintf(errbuf, errlen, "%s: the checkpoint holds %d tensors, the network (%s) has %d: another architecture", path,
             vx_safetensors_count(f), m->cfg.name, expected);
    st = VX_ERR_SHAPE;
  }
  /* only a complete, matching set replaces the weights */
  for (int k = 0; k < ns && st == VX_OK; k++)
    if (vx_tensor_upload(sets[k]->flat, host[k]) != VX_OK) {
      snprintf(errbuf, errlen, "%s: %s", path, vx_context_last_error(m->ctx));
      st = VX_ERR_OPENCL;
    }
  free(host[0]);
  free(host[1]);
  return st;
}

vx_status vx_model_load_weights(vx_model *m, const char *path, char *errbuf, size_t errlen) {
  vx_st_file *f;
  vx_status st = vx_safetensors_open(path, &f, errbuf, errlen);
  if (st != VX_OK) return st;
  st = vx_model_load_from(m, f, path, 1, errbuf, errlen);
  vx_safetensors_close(f);
  return st;
}

/* The U-Net front. */
vx_status vx_unet3d_save(vx_unet3d *net, const char *path, char *errbuf, size_t errlen) {
  return vx_model_save(vx_unet3d_model(net), path, errbuf, errlen);
}

vx_status vx_unet3d_load_weights(vx_unet3d *net, const char *path, char *errbuf, size_t errlen) {
  return vx_model_load_weights(vx_unet3d_model(net), path, errbuf, errlen);
}

vx_status vx_unet3d_read_config(const char *path, vx_unet3d_config *cfg, char *errbuf, size_t errlen) {
  vx_model_config mc;
  vx_status st = vx_model_read_config(path, &mc, errbuf, errlen);
  if (st == VX_OK && strcmp(mc.name, "unet3d")) {
    snprintf(errbuf, errlen, "%s: model '%s' is not a unet3d", path, mc.name);
    st = VX_ERR_FORMAT;
  }
  if (st == VX_OK) vx_unet3d_config_from_model(&mc, cfg);
  return st;
}
