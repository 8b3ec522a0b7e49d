/* Checkpoints: a network's weights as safetensors, named like a PyTorch state dict
 * ("encoder.0.0.conv.weight", ...), with the model configuration in the metadata, so a file
 * alone rebuilds its network and PyTorch can read it. Trainer state (optimiser moments, step)
 * is added by vx_trainer_save in trainer.c. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "nn/nn.h"
#include "train/checkpoint.h"

/* Norm and bias parameters are 1-D in PyTorch; weights keep all five dimensions. */
static int decl_ndim(const vx_decl *d) { return d->init == VX_INIT_KAIMING ? 5 : 1; }

char *vx_unet3d_config_json(const vx_unet3d_config *c) {
  json_t *j = json_object();
  json_object_set_new(j, "model", json_string("unet3d"));
  json_object_set_new(j, "in_channels", json_integer(c->in_channels));
  json_object_set_new(j, "classes", json_integer(c->classes));
  json_object_set_new(j, "levels", json_integer(c->levels));
  json_object_set_new(j, "base_channels", json_integer(c->base_channels));
  json_object_set_new(j, "max_channels", json_integer(c->max_channels));
  json_object_set_new(j, "slope", json_real(c->slope));
  char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(j);
  return s;
}

vx_status vx_unet3d_config_parse(const char *text, vx_unet3d_config *c, char *errbuf, size_t errlen) {
  json_error_t je;
  json_t *j = text ? json_loads(text, 0, &je) : NULL;
  if (!j || !json_is_object(j)) {
    snprintf(errbuf, errlen, "model configuration is missing or not JSON");
    json_decref(j);
    return VX_ERR_FORMAT;
  }
  vx_unet3d_config_init(c);
  const char *model = json_string_value(json_object_get(j, "model"));
  vx_status st = VX_OK;
  if (!model || strcmp(model, "unet3d")) {
    snprintf(errbuf, errlen, "model '%s' is not a unet3d", model ? model : "(missing)");
    st = VX_ERR_FORMAT;
  }
  const char *ints[] = {"in_channels", "classes", "levels", "base_channels", "max_channels"};
  int *dst[] = {&c->in_channels, &c->classes, &c->levels, &c->base_channels, &c->max_channels};
  for (int i = 0; i < 5 && st == VX_OK; i++) {
    json_t *v = json_object_get(j, ints[i]);
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100000) {
      snprintf(errbuf, errlen, "model configuration field '%s' is missing or out of range", ints[i]);
      st = VX_ERR_FORMAT;
    } else {
      *dst[i] = (int)json_integer_value(v);
    }
  }
  if (st == VX_OK && json_is_number(json_object_get(j, "slope"))) c->slope = (float)json_number_value(json_object_get(j, "slope"));
  json_decref(j);
  return st;
}

vx_status vx_unet3d_save_tensors(vx_unet3d *net, const char *path, const vx_st_tensor *extra, int nextra,
                                 const char *const *meta, char *errbuf, size_t errlen) {
  vx_param_set *ps = vx_unet3d_param_set(net);
  float *host = malloc(ps->count * sizeof(float));
  vx_st_tensor *t = calloc((size_t)(ps->n + nextra), sizeof *t);
  if (!host || !t) { free(host); free(t); return VX_ERR_OUT_OF_MEMORY; }
  vx_status st = vx_tensor_download(ps->flat, host);
  if (st != VX_OK) {
    snprintf(errbuf, errlen, "%s: %s", path, vx_context_last_error(ps->ctx));
  } else {
    for (int i = 0; i < ps->n; i++) {
      const vx_decl *d = &ps->decl[i];
      t[i].name = d->name;
      t[i].ndim = decl_ndim(d);
      for (int k = 0; k < t[i].ndim; k++) t[i].shape[k] = d->shape[k];
      t[i].data = host + d->offset;
      t[i].numel = d->numel;
    }
    for (int i = 0; i < nextra; i++) t[ps->n + i] = extra[i];
    char *cfg = vx_unet3d_config_json(vx_unet3d_get_config(net));
    const char *m[32] = {"format", "voxcl", "voxcl.model", cfg ? cfg : "{}"};
    int nm = 4;
    for (int i = 0; meta && meta[i] && meta[i + 1] && nm < 30; i += 2) { m[nm++] = meta[i]; m[nm++] = meta[i + 1]; }
    m[nm] = NULL;
    st = vx_safetensors_write(path, t, ps->n + nextra, m, errbuf, errlen);
    free(cfg);
  }
  free(host);
  free(t);
  return st;
}

vx_status vx_unet3d_save(vx_unet3d *net, const char *path, char *errbuf, size_t errlen) {
  return vx_unet3d_save_tensors(net, path, NULL, 0, NULL, errbuf, errlen);
}

vx_status vx_unet3d_read_config(const char *path, vx_unet3d_config *cfg, char *errbuf, size_t errlen) {
  vx_st_file *f;
  vx_status st = vx_safetensors_open(path, &f, errbuf, errlen);
  if (st != VX_OK) return st;
  char msg[512] = "";
  st = vx_unet3d_config_parse(vx_safetensors_meta(f, "voxcl.model"), cfg, msg, sizeof msg);
  if (st != VX_OK) snprintf(errbuf, errlen, "%s: %s", path, msg);
  vx_safetensors_close(f);
  return st;
}

vx_status vx_unet3d_load_from(vx_unet3d *net, const vx_st_file *f, const char *path, int allow_extra, char *errbuf,
                              size_t errlen) {
  vx_param_set *ps = vx_unet3d_param_set(net);
  float *host = malloc(ps->count * sizeof(float));
  if (!host) return VX_ERR_OUT_OF_MEMORY;
  memset(host, 0, ps->count * sizeof(float));
  vx_status st = VX_OK;
  for (int i = 0; i < ps->n && st == VX_OK; i++) {
    const vx_decl *d = &ps->decl[i];
    int nd;
    int64_t sh[8];
    const float *src = vx_safetensors_find(f, d->name, &nd, sh);
    int same = src && nd == decl_ndim(d);
    for (int k = 0; same && k < nd; k++) same = sh[k] == d->shape[k];
    if (!same) {
      snprintf(errbuf, errlen,
               "%s: the checkpoint does not match the network's architecture: parameter '%s' %s (expected shape "
               "[%d, %d, %d, %d, %d])",
               path, d->name, src ? "has another shape" : "is missing", d->shape[0], d->shape[1], d->shape[2],
               d->shape[3], d->shape[4]);
      st = VX_ERR_SHAPE;
    } else {
      memcpy(host + d->offset, src, d->numel * sizeof(float));
    }
  }
  if (st == VX_OK && !allow_extra && vx_safetensors_count(f) != ps->n) {
    snprintf(errbuf, errlen, "%s: the checkpoint holds %d tensors, the network has %d parameters: another architecture",
             path, vx_safetensors_count(f), ps->n);
    st = VX_ERR_SHAPE;
  }
  /* only a complete, matching set replaces the weights */
  if (st == VX_OK && vx_tensor_upload(ps->flat, host) != VX_OK) {
    snprintf(errbuf, errlen, "%s: %s", path, vx_context_last_error(ps->ctx));
    st = VX_ERR_OPENCL;
  }
  free(host);
  return st;
}

vx_status vx_unet3d_load_weights(vx_unet3d *net, const char *path, char *errbuf, size_t errlen) {
  vx_st_file *f;
  vx_status st = vx_safetensors_open(path, &f, errbuf, errlen);
  if (st != VX_OK) return st;
  st = vx_unet3d_load_from(net, f, path, 1, errbuf, errlen);
  vx_safetensors_close(f);
  return st;
}
