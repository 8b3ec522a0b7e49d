/* 3D U-Net in the nnU-Net style: per level two (conv3 -> InstanceNorm(affine) -> LeakyReLU)
 * blocks, a stride-2 conv to go down, a k2 s2 transposed conv to go up, skip concatenation
 * [skip, up], and a 1x1x1 conv with bias to the class logits.
 *
 * Memory is planned once at creation for a fixed input shape: every activation and its gradient
 * is a view into one device arena, parameters and gradients are views into one flat buffer each
 * (so an optimiser step is one launch and a checkpoint one write). This is the "unet3d"
 * vx_model implementation; the vx_unet3d_* functions are a typed front over it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model.h"
#include "tensor.h"

#define MAX_LEVELS 8
#define IN_EPS 1e-5f

/* conv -> IN -> LeakyReLU; in/din point at tensors owned elsewhere. */
typedef struct {
  vx_conv_params cp;
  vx_tensor *w, *gamma, *beta;    /* parameter views */
  vx_tensor *dw, *dgamma, *dbeta; /* gradient views */
  vx_tensor *c, *a, *da, *save;   /* conv output, block output, its gradient, IN statistics */
} conv_block;

struct vx_unet3d {
  vx_context *ctx;
  vx_unet3d_config cfg;
  int in_shape[5];
  int ch[MAX_LEVELS];
  conv_block enc[MAX_LEVELS][2], dec[MAX_LEVELS][2];
  vx_tensor *up_w[MAX_LEVELS], *up_dw[MAX_LEVELS]; /* transposed conv from level l+1 to l */
  vx_tensor *up[MAX_LEVELS], *dup[MAX_LEVELS];     /* its output and gradient */
  vx_tensor *cat[MAX_LEVELS], *dcat[MAX_LEVELS];
  vx_tensor *out_w, *out_b, *out_dw, *out_db, *logits;
  vx_tensor *dc;                                   /* scratch: gradient of a conv output */
  vx_tensor *dlogits;                              /* training: the loss gradient */
  const vx_tensor *input;                          /* the last forward's input */
  vx_model *m;                                     /* the generic handle that owns params and arena */
};

void vx_unet3d_config_from_model(const vx_model_config *mc, vx_unet3d_config *c) {
  c->in_channels = mc->in_channels;
  c->classes = mc->classes;
  c->levels = mc->levels;
  c->base_channels = mc->base_channels;
  c->max_channels = mc->max_channels;
  c->slope = mc->slope;
  c->seed = mc->seed;
}

void vx_unet3d_config_init(vx_unet3d_config *c) {
  vx_model_config mc;
  vx_model_config_init(&mc, "unet3d");
  vx_unet3d_config_from_model(&mc, c);
}

static void layer_note(vx_unet3d *net, const char *name, const char *type, const char *detail, const int shape[5],
                       size_t params) {
  vx_model_note_layer(net->m, name, type, detail, shape, params);
}

static void block_declare(vx_unet3d *net, conv_block *b, const char *prefix, int cin, int cout, int stride,
                          const int out_shape[5]) {
  vx_conv_params_init(&b->cp, stride, 1);
  int ws[5] = {cout, cin, 3, 3, 3}, cs[5] = {cout, 1, 1, 1, 1};
  char name[64];
  snprintf(name, sizeof name, "%s.conv.weight", prefix);
  vx_params_declare(&net->m->params, name, &b->w, &b->dw, ws, VX_INIT_KAIMING, cin * 27, net->cfg.slope);
  char detail[96];
  snprintf(detail, sizeof detail, "%d->%d k3 s%d p1", cin, cout, stride);
  snprintf(name, sizeof name, "%s.conv", prefix);
  layer_note(net, name, "conv3d", detail, out_shape, (size_t)cout * cin * 27);
  snprintf(name, sizeof name, "%s.norm.weight", prefix);
  vx_params_declare(&net->m->params, name, &b->gamma, &b->dgamma, cs, VX_INIT_ONE, 0, 0);
  snprintf(name, sizeof name, "%s.norm.bias", prefix);
  vx_params_declare(&net->m->params, name, &b->beta, &b->dbeta, cs, VX_INIT_ZERO, 0, 0);
  snprintf(name, sizeof name, "%s.norm", prefix);
  layer_note(net, name, "instance_norm+lrelu", "affine", out_shape, 2 * (size_t)cout);
  int ss[5] = {1, 1, 1, 1, out_shape[0] * out_shape[1] * 2};
  vx_arena_declare(&net->m->arena, &b->c, out_shape);
  vx_arena_declare(&net->m->arena, &b->a, out_shape);
  vx_arena_declare(&net->m->arena, &b->da, out_shape);
  vx_arena_declare(&net->m->arena, &b->save, ss);
}

static vx_status unet_create(vx_model *m) {
  vx_context *ctx = m->ctx;
  const vx_model_config *mc = &m->cfg;
  const int *in_shape = m->in_shape;
  int L = mc->levels;
  if (L < 1 || L > MAX_LEVELS)
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "unet3d: levels is %d, expected 1..%d", L, MAX_LEVELS);
  int f = 1 << (L - 1);
  for (int i = 2; i < 5; i++)
    if (in_shape[i] < f || in_shape[i] % f)
      return vx_fail(ctx, VX_ERR_SHAPE,
                     "unet3d: input spatial size %dx%dx%d must be a multiple of %d (2^(levels-1)) for %d levels",
                     in_shape[2], in_shape[3], in_shape[4], f, L);
  vx_unet3d *net = calloc(1, sizeof *net);
  if (!net) return VX_ERR_OUT_OF_MEMORY;
  m->impl = net;
  net->m = m;
  net->ctx = ctx;
  vx_unet3d_config *cfg = &net->cfg;
  vx_unet3d_config_from_model(mc, cfg);
  memcpy(net->in_shape, in_shape, sizeof net->in_shape);

  int N = in_shape[0];
  int sp[MAX_LEVELS][3];
  for (int l = 0; l < L; l++) {
    int c = cfg->base_channels << l;
    net->ch[l] = c < cfg->max_channels ? c : cfg->max_channels;
    for (int i = 0; i < 3; i++) sp[l][i] = in_shape[2 + i] >> l;
  }
  size_t max_c = 0;
  for (int l = 0; l < L; l++) {
    int s[5] = {N, net->ch[l], sp[l][0], sp[l][1], sp[l][2]};
    char p0[32], p1[32];
    snprintf(p0, sizeof p0, "encoder.%d.0", l);
    snprintf(p1, sizeof p1, "encoder.%d.1", l);
    block_declare(net, &net->enc[l][0], p0, l ? net->ch[l - 1] : cfg->in_channels, net->ch[l], l ? 2 : 1, s);
    block_declare(net, &net->enc[l][1], p1, net->ch[l], net->ch[l], 1, s);
    size_t n = (size_t)N * net->ch[l] * sp[l][0] * sp[l][1] * sp[l][2];
    if (n > max_c) max_c = n;
  }
  for (int l = L - 2; l >= 0; l--) {
    int s[5] = {N, net->ch[l], sp[l][0], sp[l][1], sp[l][2]};
    int s2[5] = {N, 2 * net->ch[l], sp[l][0], sp[l][1], sp[l][2]};
    int uw[5] = {net->ch[l + 1], net->ch[l], 2, 2, 2};
    char p0[32], p1[32], pu[32], detail[96];
    snprintf(pu, sizeof pu, "decoder.%d.up.weight", l);
    snprintf(p0, sizeof p0, "decoder.%d.0", l);
    snprintf(p1, sizeof p1, "decoder.%d.1", l);
    vx_params_declare(&m->params, pu, &net->up_w[l], &net->up_dw[l], uw, VX_INIT_KAIMING, net->ch[l] * 8,
                      cfg->slope);
    snprintf(pu, sizeof pu, "decoder.%d.up", l);
    snprintf(detail, sizeof detail, "%d->%d k2 s2", net->ch[l + 1], net->ch[l]);
    layer_note(net, pu, "conv_transpose3d", detail, s, (size_t)net->ch[l + 1] * net->ch[l] * 8);
    vx_arena_declare(&m->arena, &net->up[l], s);
    vx_arena_declare(&m->arena, &net->dup[l], s);
    vx_arena_declare(&m->arena, &net->cat[l], s2);
    vx_arena_declare(&m->arena, &net->dcat[l], s2);
    block_declare(net, &net->dec[l][0], p0, 2 * net->ch[l], net->ch[l], 1, s);
    block_declare(net, &net->dec[l][1], p1, net->ch[l], net->ch[l], 1, s);
  }
  int ow[5] = {cfg->classes, net->ch[0], 1, 1, 1}, ob[5] = {cfg->classes, 1, 1, 1, 1};
  vx_params_declare(&m->params, "head.weight", &net->out_w, &net->out_dw, ow, VX_INIT_KAIMING, net->ch[0], 1.0f);
  vx_params_declare(&m->params, "head.bias", &net->out_b, &net->out_db, ob, VX_INIT_ZERO, 0, 0);
  int ls[5] = {N, cfg->classes, in_shape[2], in_shape[3], in_shape[4]};
  char detail[96];
  snprintf(detail, sizeof detail, "%d->%d k1", net->ch[0], cfg->classes);
  layer_note(net, "head", "conv3d", detail, ls, (size_t)cfg->classes * (net->ch[0] + 1));
  vx_arena_declare(&m->arena, &net->logits, ls);
  vx_arena_declare(&m->arena, &net->dlogits, ls);
  m->output = NULL; /* set in init: the view exists only after allocation */
  int dcs[5] = {1, 1, 1, 1, (int)max_c};
  vx_arena_declare(&m->arena, &net->dc, dcs);
  return VX_OK;
}

static vx_status unet_init(vx_model *m) {
  m->output = ((vx_unet3d *)m->impl)->logits;
  return VX_OK;
}

static void unet_destroy_impl(vx_model *m) { free(m->impl); }

static vx_model_config model_config(const vx_unet3d_config *cfg) {
  vx_model_config mc;
  vx_model_config_init(&mc, "unet3d");
  mc.in_channels = cfg->in_channels;
  mc.classes = cfg->classes;
  mc.levels = cfg->levels;
  mc.base_channels = cfg->base_channels;
  mc.max_channels = cfg->max_channels;
  mc.slope = cfg->slope;
  mc.seed = cfg->seed;
  return mc;
}

vx_status vx_unet3d_create(vx_context *ctx, const vx_unet3d_config *cfg, const int in_shape[5], vx_unet3d **out) {
  if (!ctx || !cfg || !in_shape || !out) return VX_ERR_INVALID_ARGUMENT;
  *out = NULL;
  vx_model_config mc = model_config(cfg);
  vx_model *m;
  vx_status st = vx_model_create(ctx, &mc, in_shape, &m);
  if (st == VX_OK) *out = m->impl;
  return st;
}

void vx_unet3d_destroy(vx_unet3d *net) {
  if (net) vx_model_destroy(net->m);
}

vx_model *vx_unet3d_model(vx_unet3d *net) { return net->m; }

/* The learnable values, without the alignment gaps between tensors in the flat buffer. */
size_t vx_unet3d_parameter_count(const vx_unet3d *net) { return vx_model_parameter_count(net->m); }
vx_tensor *vx_unet3d_output(vx_unet3d *net) { return net->logits; }
vx_tensor *vx_unet3d_parameters(vx_unet3d *net) { return net->m->params.flat; }
vx_tensor *vx_unet3d_gradients(vx_unet3d *net) { return net->m->params.flat_grad; }
size_t vx_unet3d_device_bytes(const vx_unet3d *net) { return vx_model_device_bytes(net->m); }

static vx_status block_forward(vx_unet3d *net, conv_block *b, const vx_tensor *in) {
  vx_status st = vx_conv3d_forward(net->ctx, in, b->w, NULL, &b->cp, b->c);
  if (st == VX_OK)
    st = vx_instance_norm_forward(net->ctx, b->c, b->gamma, b->beta, IN_EPS, VX_ACT_LEAKY_RELU, net->cfg.slope, b->a,
                                  b->save);
  return st;
}

/* Backward of one block from b->da; writes (or adds, accumulate) the input gradient to din
 * when din is not NULL. */
static vx_status block_backward(vx_unet3d *net, conv_block *b, const vx_tensor *in, vx_tensor *din, int accumulate) {
  vx_tensor dc = *net->dc; /* a view of the scratch with this block's shape */
  memcpy(dc.shape, b->c->shape, sizeof dc.shape);
  dc.numel = b->c->numel;
  dc.alloc_bytes = 0;
  vx_status st = vx_instance_norm_backward(net->ctx, b->c, b->a, b->da, b->gamma, b->save, VX_ACT_LEAKY_RELU,
                                           net->cfg.slope, &dc, b->dgamma, b->dbeta, 0);
  if (st == VX_OK) st = vx_conv3d_backward_weights(net->ctx, in, &dc, &b->cp, b->dw, NULL, 0);
  if (st == VX_OK && din) st = vx_conv3d_backward_data(net->ctx, &dc, b->w, &b->cp, din, accumulate);
  return st;
}

vx_status vx_unet3d_forward(vx_unet3d *net, const vx_tensor *x) {
  vx_status st = vx_check_shape(net->ctx, "unet3d_forward", "input", x, net->in_shape);
  if (st != VX_OK) return st;
  int L = net->cfg.levels;
  net->input = x;
  vx_conv_params up;
  vx_conv_params_init(&up, 2, 0);
  for (int l = 0; l < L && st == VX_OK; l++) {
    st = block_forward(net, &net->enc[l][0], l ? net->enc[l - 1][1].a : x);
    if (st == VX_OK) st = block_forward(net, &net->enc[l][1], net->enc[l][0].a);
  }
  for (int l = L - 2; l >= 0 && st == VX_OK; l--) {
    const vx_tensor *src = l == L - 2 ? net->enc[L - 1][1].a : net->dec[l + 1][1].a;
    st = vx_conv_transpose3d_forward(net->ctx, src, net->up_w[l], NULL, &up, net->up[l]);
    if (st == VX_OK) st = vx_concat_channels(net->ctx, net->enc[l][1].a, net->up[l], net->cat[l]);
    if (st == VX_OK) st = block_forward(net, &net->dec[l][0], net->cat[l]);
    if (st == VX_OK) st = block_forward(net, &net->dec[l][1], net->dec[l][0].a);
  }
  const vx_tensor *last = L > 1 ? net->dec[0][1].a : net->enc[0][1].a;
  vx_conv_params one;
  vx_conv_params_init(&one, 1, 0);
  if (st == VX_OK) st = vx_conv3d_forward(net->ctx, last, net->out_w, net->out_b, &one, net->logits);
  return st;
}

vx_status vx_unet3d_backward(vx_unet3d *net, const vx_tensor *dlogits) {
  vx_status st = vx_check_shape(net->ctx, "unet3d_backward", "dlogits", dlogits, net->logits->shape);
  if (st != VX_OK) return st;
  if (!net->input) return vx_fail(net->ctx, VX_ERR_INVALID_ARGUMENT, "unet3d_backward: call forward first");
  int L = net->cfg.levels;
  vx_conv_params one, up;
  vx_conv_params_init(&one, 1, 0);
  vx_conv_params_init(&up, 2, 0);
  conv_block *last = L > 1 ? &net->dec[0][1] : &net->enc[0][1];
  st = vx_conv3d_backward_weights(net->ctx, last->a, dlogits, &one, net->out_dw, net->out_db, 0);
  if (st == VX_OK) st = vx_conv3d_backward_data(net->ctx, dlogits, net->out_w, &one, last->da, 0);
  for (int l = 0; l <= L - 2 && st == VX_OK; l++) {
    st = block_backward(net, &net->dec[l][1], net->dec[l][0].a, net->dec[l][0].da, 0);
    if (st == VX_OK) st = block_backward(net, &net->dec[l][0], net->cat[l], net->dcat[l], 0);
    /* the skip's gradient is written here first; the encoder level above adds to it */
    if (st == VX_OK) st = vx_concat_channels_backward(net->ctx, net->dcat[l], net->enc[l][1].da, net->dup[l], 0);
    const vx_tensor *src = l == L - 2 ? net->enc[L - 1][1].a : net->dec[l + 1][1].a;
    vx_tensor *dsrc = l == L - 2 ? net->enc[L - 1][1].da : net->dec[l + 1][1].da;
    if (st == VX_OK) st = vx_conv_transpose3d_backward_weights(net->ctx, src, net->dup[l], &up, net->up_dw[l], NULL, 0);
    if (st == VX_OK) st = vx_conv_transpose3d_backward_data(net->ctx, net->dup[l], net->up_w[l], &up, dsrc, 0);
  }
  for (int l = L - 1; l >= 0 && st == VX_OK; l--) {
    st = block_backward(net, &net->enc[l][1], net->enc[l][0].a, net->enc[l][0].da, 0);
    if (st == VX_OK)
      st = block_backward(net, &net->enc[l][0], l ? net->enc[l - 1][1].a : net->input,
                          l ? net->enc[l - 1][1].da : NULL, 1);
  }
  return st;
}

vx_param_set *vx_unet3d_param_set(vx_unet3d *net) { return &net->m->params; }
const vx_unet3d_config *vx_unet3d_get_config(const vx_unet3d *net) { return &net->cfg; }
const int *vx_unet3d_input_shape(const vx_unet3d *net) { return net->in_shape; }

vx_status vx_unet3d_copy_parameters(vx_unet3d *dst, const vx_unet3d *src) {
  return vx_model_copy_parameters(dst->m, src->m);
}

static vx_status unet_forward(vx_model *m, const vx_tensor *x) { return vx_unet3d_forward(m->impl, x); }

/* Each parameter is used once, so the backward may write (not add) its gradients. */
static vx_status unet_train_step(vx_model *m, const vx_tensor *x, const vx_tensor *labels, const vx_loss_params *lp,
                                 float *loss) {
  vx_unet3d *net = m->impl;
  vx_status st = vx_unet3d_forward(net, x);
  if (st == VX_OK) st = vx_loss_dice_ce(m->ctx, net->logits, labels, lp, loss, net->dlogits);
  if (st == VX_OK) st = vx_unet3d_backward(net, net->dlogits);
  return st;
}

const vx_model_ops vx_unet3d_model_ops = {
    .name = "unet3d",
    .create = unet_create,
    .init = unet_init,
    .forward = unet_forward,
    .train_step = unet_train_step,
    .destroy_impl = unet_destroy_impl,
};
