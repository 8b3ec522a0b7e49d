/* vx_model: the one handle over every network (see nn/model.h for the implementation
 * contract). Generic parts live here: configuration defaults, the registry of networks,
 * allocation of parameters/state/arena after an implementation has declared them, the
 * training-step wrapper that zeroes gradients, copies between instances. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model.h"

static const vx_model_ops *const registry[] = {
    &vx_unet3d_model_ops,
    &vx_dualnorm_unet_ops,
    &vx_invres_partial_ops,
    &vx_invres_full_ops,
    &vx_uxnet_ops,
    NULL,
};

const char *const *vx_model_names(void) {
  static const char *names[sizeof registry / sizeof registry[0]];
  for (int i = 0; registry[i]; i++) names[i] = registry[i]->name;
  return names;
}

static const vx_model_ops *find_ops(const char *name) {
  for (int i = 0; name && registry[i]; i++)
    if (!strcmp(registry[i]->name, name)) return registry[i];
  return NULL;
}

vx_status vx_model_config_init(vx_model_config *c, const char *name) {
  memset(c, 0, sizeof *c);
  snprintf(c->name, sizeof c->name, "%s", name ? name : "unet3d");
  c->in_channels = 1;
  c->classes = 3;
  c->levels = 4;
  c->base_channels = 16;
  c->max_channels = 320;
  c->slope = 0.01f;
  c->seed = 1234;
  c->depth = 2;
  c->vae = 0;
  c->vae_weight = 0.1f;
  c->dualnorm_masked = 0;
  c->dualnorm_levels = 4;
  c->acnorm = 0;
  if (!strcmp(c->name, "uxnet")) {
    c->levels = 5;
    c->base_channels = 48;
    c->max_channels = 768;
  }
  return find_ops(c->name) ? VX_OK : VX_ERR_INVALID_ARGUMENT;
}

vx_status vx_model_check_multiple(vx_model *m, int f) {
  const int *s = m->in_shape;
  for (int i = 2; i < 5; i++)
    if (s[i] < f || s[i] % f)
      return vx_fail(m->ctx, VX_ERR_SHAPE, "%s: input spatial size %dx%dx%d must be a positive multiple of %d",
                     m->cfg.name, s[2], s[3], s[4], f);
  return VX_OK;
}

void vx_model_note_layer(vx_model *m, const char *name, const char *type, const char *detail, const int out_shape[5],
                         size_t params) {
  if (m->nlayers == m->cap_layers) {
    int cap = m->cap_layers ? 2 * m->cap_layers : 64;
    vx_layer_info *l = realloc(m->layers, (size_t)cap * sizeof *l);
    if (!l) return; /* descriptions are best effort */
    m->layers = l;
    m->cap_layers = cap;
  }
  vx_layer_info *l = &m->layers[m->nlayers++];
  memset(l, 0, sizeof *l);
  snprintf(l->name, sizeof l->name, "%s", name);
  snprintf(l->type, sizeof l->type, "%s", type);
  snprintf(l->detail, sizeof l->detail, "%s", detail ? detail : "");
  for (int i = 0; i < 4; i++) l->out_shape[i] = out_shape[i + 1];
  l->params = params;
}

const vx_layer_info *vx_model_layers(const vx_model *m, int *count) {
  *count = m->nlayers;
  return m->layers;
}

static vx_status build(vx_context *ctx, const vx_model_config *cfg, const int in_shape[5], int plan_only,
                       vx_model **out) {
  if (!ctx || !cfg || !in_shape || !out) return VX_ERR_INVALID_ARGUMENT;
  *out = NULL;
  const vx_model_ops *ops = find_ops(cfg->name);
  if (!ops) {
    char known[256] = "";
    for (int i = 0; registry[i]; i++) {
      strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
      strncat(known, registry[i]->name, sizeof known - strlen(known) - 1);
    }
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "unknown model '%s' (known: %s)", cfg->name, known);
  }
  if (cfg->in_channels < 1 || cfg->classes < 2 || cfg->base_channels < 1)
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: in_channels %d, classes %d, base_channels %d (expected >= 1, >= 2, >= 1)",
                   cfg->name, cfg->in_channels, cfg->classes, cfg->base_channels);
  if (in_shape[0] < 1 || in_shape[1] != cfg->in_channels)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: input [%d, %d, ...] but the network expects batch >= 1 and %d channels",
                   cfg->name, in_shape[0], in_shape[1], cfg->in_channels);
  vx_model *m = calloc(1, sizeof *m);
  if (!m) return VX_ERR_OUT_OF_MEMORY;
  m->ops = ops;
  m->ctx = ctx;
  m->cfg = *cfg;
  memcpy(m->in_shape, in_shape, sizeof m->in_shape);
  vx_params_init(&m->params, ctx, cfg->seed);
  vx_params_init(&m->state, ctx, cfg->seed ^ 0x5deece66dULL);
  vx_arena_init(&m->arena, ctx);
  m->plan_only = plan_only;
  vx_status st = ops->create(m);
  if (st == VX_OK && (m->params.overflow || m->state.overflow || m->arena.overflow))
    st = vx_fail(ctx, VX_ERR_UNSUPPORTED, "%s: more than %d tensors in one set", cfg->name, VX_MAX_DECL);
  if (st == VX_OK && plan_only) {
    *out = m;
    return VX_OK;
  }
  if (st == VX_OK) st = vx_params_allocate(&m->params);
  if (st == VX_OK && m->state.n) st = vx_params_allocate(&m->state);
  if (st == VX_OK) st = vx_arena_allocate(&m->arena);
  if (st == VX_OK && ops->init) st = ops->init(m);
  if (st != VX_OK) {
    vx_model_destroy(m);
    return st;
  }
  *out = m;
  return VX_OK;
}

vx_status vx_model_create(vx_context *ctx, const vx_model_config *cfg, const int in_shape[5], vx_model **out) {
  return build(ctx, cfg, in_shape, 0, out);
}

vx_status vx_model_plan(vx_context *ctx, const vx_model_config *cfg, const int in_shape[5], vx_model **out) {
  return build(ctx, cfg, in_shape, 1, out);
}

void vx_model_destroy(vx_model *m) {
  if (!m) return;
  free(m->layers);
  /* the views' handles live inside the implementation's struct: release them first */
  vx_params_release(&m->params);
  vx_params_release(&m->state);
  vx_arena_release(&m->arena);
  if (m->ops->destroy_impl) m->ops->destroy_impl(m);
  free(m);
}

static vx_status refuse_plan(vx_model *m) {
  return vx_fail(m->ctx, VX_ERR_INVALID_ARGUMENT, "%s: a planned-only model (vx_model_plan) cannot run", m->cfg.name);
}

vx_status vx_model_forward(vx_model *m, const vx_tensor *x) {
  if (m->plan_only) return refuse_plan(m);
  vx_status st = vx_check_shape(m->ctx, m->cfg.name, "input", x, m->in_shape);
  return st == VX_OK ? m->ops->forward(m, x) : st;
}

vx_status vx_model_train_step(vx_model *m, const vx_tensor *x, const vx_tensor *labels, const vx_loss_params *p,
                              float *loss) {
  if (m->plan_only) return refuse_plan(m);
  vx_status st = vx_check_shape(m->ctx, m->cfg.name, "input", x, m->in_shape);
  int ls[5] = {m->in_shape[0], 1, m->in_shape[2], m->in_shape[3], m->in_shape[4]};
  if (st == VX_OK) st = vx_check_shape(m->ctx, m->cfg.name, "labels", labels, ls);
  vx_loss_params def;
  if (!p) { vx_loss_params_init(&def); p = &def; }
  if (st == VX_OK) st = vx_tensor_fill(m->params.flat_grad, 0.0f);
  return st == VX_OK ? m->ops->train_step(m, x, labels, p, loss) : st;
}

vx_tensor *vx_model_output(vx_model *m) { return m->output; }
vx_tensor *vx_model_parameters(vx_model *m) { return m->params.flat; }
vx_tensor *vx_model_gradients(vx_model *m) { return m->params.flat_grad; }
const vx_model_config *vx_model_get_config(const vx_model *m) { return &m->cfg; }
const int *vx_model_input_shape(const vx_model *m) { return m->in_shape; }

size_t vx_model_parameter_count(const vx_model *m) {
  size_t n = 0;
  for (int i = 0; i < m->params.n; i++) n += m->params.decl[i].numel;
  return n;
}

size_t vx_model_device_bytes(const vx_model *m) {
  return (m->params.count * 2 + m->state.count * 2 + m->arena.count) * sizeof(float);
}

vx_status vx_model_copy_parameters(vx_model *dst, const vx_model *src) {
  if (strcmp(dst->cfg.name, src->cfg.name) || dst->params.count != src->params.count ||
      dst->state.count != src->state.count)
    return vx_fail(dst->ctx, VX_ERR_SHAPE, "model: cannot copy %s (%zu parameters) into %s (%zu parameters)",
                   src->cfg.name, src->params.count, dst->cfg.name, dst->params.count);
  vx_status st = vx_tensor_copy(dst->params.flat, src->params.flat);
  if (st == VX_OK && dst->state.n) st = vx_tensor_copy(dst->state.flat, src->state.flat);
  return st;
}
