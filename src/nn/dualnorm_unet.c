/* DualNorm-UNet (layers.md part 2; lambert-x/DualNorm-Unet): a U-Net with batch norm whose
 * encoder is made of pre-activation residual blocks (norm -> ReLU -> conv3 -> norm -> ReLU ->
 * conv3, plus the input or a 1x1 conv when the shape changes), trained in two passes:
 *   pass 1: plain batch norms everywhere -> logits1; masks p = sg(softmax(logits1))
 *   pass 2: the blocks of the first cfg.dualnorm_levels encoder levels normalise with DualNorm
 *           modules driven by p (separate modules and running statistics from pass 1's norms,
 *           shared convolution weights) -> logits2
 *   loss = DiceCE(logits1) + DiceCE(logits2); inference runs both passes and returns logits2.
 * Decoder: transposed conv k2 s2 up, concat [skip, up], two conv3 -> BN -> ReLU, 1x1 head.
 * 2D configuration: an input of depth 1 makes every 3x3x3 kernel 1x3x3 and every stride 1x2x2.
 * cfg.acnorm turns every affine batch norm into an AC-Norm layer (target affine trained,
 * source affine frozen in the saved state) for fine-tuning.
 *
 * Memory: the two passes keep separate activations (pass 1's are needed by its backward after
 * pass 2 ran). Activation gradients live in one block of the arena that is zeroed before each
 * pass's backward, so every backward call can add (accumulate = 1) and fan-in needs no care. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "nn/dualnorm.h"
#include "nn/model.h"
#include "tensor.h"
#include "util.h"

#define MAXL 8
#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f
#define MAX_BN (4 * MAXL + 2)

/* An affine batch norm (or AC-Norm) fused with ReLU. */
typedef struct {
  char name[48];
  int C;
  vx_tensor *g, *b, *dg, *db; /* weight, bias (AC-Norm: the target affine) and gradients */
  vx_tensor *gs, *bs;         /* AC-Norm: the frozen source affine (state) */
  vx_tensor *rm, *rv;         /* running statistics (state) */
} bn_unit;

typedef struct {
  vx_tensor *y, *save; /* ReLU(norm(x)); statistics (NULL where a DualNorm module normalises) */
} bn_act;

typedef struct {
  int cin, cout, dual;
  vx_conv_params cp1, cp2, cps;
  vx_tensor *w1, *w2, *ws, *dw1, *dw2, *dws; /* ws NULL: identity shortcut */
  bn_unit n1, n2;                            /* pass 1 (and pass 2 when not dual) */
  vx_dualnorm d1, d2;                        /* pass 2 of a dual block */
  struct {
    bn_act a1, a2;
    vx_dualnorm_act da1, da2;
    vx_tensor *z1, *z2; /* DualNorm outputs before ReLU */
    vx_tensor *h, *out, *sc;
  } p[2];
  vx_tensor *g_out, *g_a2, *g_z2, *g_h, *g_a1, *g_z1; /* gradients (shared by the passes) */
} res_block;

typedef struct {
  vx_conv_params cp;
  vx_tensor *w, *dw;
  bn_unit n;
  struct { vx_tensor *c; bn_act a; } p[2];
  vx_tensor *g_c, *g_a;
} dec_block;

typedef struct {
  int L, flat, ch[MAXL];
  vx_conv_params cp_stem, cp_up, cp_head;
  vx_tensor *w_stem, *dw_stem, *up_w[MAXL], *up_dw[MAXL], *head_w, *head_b, *head_dw, *head_db;
  res_block enc[MAXL];
  dec_block dec[MAXL][2];
  struct {
    vx_tensor *stem, *up[MAXL], *cat[MAXL], *logits, *dlogits;
  } p[2];
  vx_tensor *probs;
  vx_tensor *g_stem, *g_up[MAXL], *g_cat[MAXL];
  vx_arena garena;  /* bookkeeping of the gradient block's views */
  vx_tensor *gbuf;  /* the gradient block, one tensor of m->arena */
  bn_unit *bns[MAX_BN];
  int nbn;
} dn_unet;

/* ---------------------------------------------------------------- declarations */
static void conv3_params(vx_conv_params *cp, int stride, int flat) {
  vx_conv_params_init(cp, stride, 1);
  if (flat) cp->stride[0] = 1, cp->padding[0] = 0;
}

static void shape5(int s[5], int n, int c, const int sp[3]) {
  s[0] = n, s[1] = c, s[2] = sp[0], s[3] = sp[1], s[4] = sp[2];
}

static void conv_weight(vx_model *m, const char *name, vx_tensor **w, vx_tensor **dw, int o, int i, int kd, int k,
                        float slope) {
  int s[5] = {o, i, kd, k, k};
  vx_params_declare(&m->params, name, w, dw, s, VX_INIT_KAIMING, i * kd * k * k, slope);
}

static void bn_declare(vx_model *m, dn_unet *u, bn_unit *n, const char *prefix, int C, const int out[5]) {
  int cs[5] = {C, 1, 1, 1, 1};
  char s[64];
  memset(n, 0, sizeof *n);
  snprintf(n->name, sizeof n->name, "%s", prefix);
  n->C = C;
  snprintf(s, sizeof s, "%s.weight", prefix);
  vx_params_declare(&m->params, s, &n->g, &n->dg, cs, VX_INIT_ONE, 0, 0);
  snprintf(s, sizeof s, "%s.bias", prefix);
  vx_params_declare(&m->params, s, &n->b, &n->db, cs, VX_INIT_ZERO, 0, 0);
  snprintf(s, sizeof s, "%s.running_mean", prefix);
  vx_params_declare(&m->state, s, &n->rm, NULL, cs, VX_INIT_ZERO, 0, 0);
  snprintf(s, sizeof s, "%s.running_var", prefix);
  vx_params_declare(&m->state, s, &n->rv, NULL, cs, VX_INIT_ONE, 0, 0);
  if (m->cfg.acnorm) {
    snprintf(s, sizeof s, "%s.source_weight", prefix);
    vx_params_declare(&m->state, s, &n->gs, NULL, cs, VX_INIT_ONE, 0, 0);
    snprintf(s, sizeof s, "%s.source_bias", prefix);
    vx_params_declare(&m->state, s, &n->bs, NULL, cs, VX_INIT_ZERO, 0, 0);
  }
  if (u->nbn < MAX_BN) u->bns[u->nbn++] = n;
  vx_model_note_layer(m, prefix, m->cfg.acnorm ? "acnorm+relu" : "batch_norm+relu", "", out, (size_t)2 * C);
}

static void bn_act_declare(vx_model *m, const bn_unit *n, bn_act *a, const int s[5], int with_save) {
  vx_arena_declare(&m->arena, &a->y, s);
  if (!with_save) return;
  int ss[5] = {1, 1, 1, 1, m->cfg.acnorm ? 6 * n->C + n->C * n->C : 2 * n->C};
  vx_arena_declare(&m->arena, &a->save, ss);
}

static void note_conv(vx_model *m, const char *name, const char *type, int cin, int cout, int kd, int k, int stride,
                      const int out[5], size_t params) {
  char d[96];
  snprintf(d, sizeof d, "%d->%d k%s%d s%d", cin, cout, kd == 1 && k > 1 ? "1x" : "", k, stride);
  vx_model_note_layer(m, name, type, d, out, params);
}

static void res_declare(vx_model *m, dn_unet *u, res_block *r, int l, int cin, int cout, int stride, const int in_sp[3],
                        const int sp[3], int dual) {
  int N = m->in_shape[0], K = m->cfg.classes, kd = u->flat ? 1 : 3;
  int xs[5], os[5];
  shape5(xs, N, cin, in_sp);
  shape5(os, N, cout, sp);
  r->cin = cin, r->cout = cout, r->dual = dual;
  conv3_params(&r->cp1, stride, u->flat);
  conv3_params(&r->cp2, 1, u->flat);
  vx_conv_params_init(&r->cps, stride, 0);
  if (u->flat) r->cps.stride[0] = 1;
  char p[48], s[64];
  snprintf(p, sizeof p, "encoder.%d", l);
  snprintf(s, sizeof s, "%s.norm1", p);
  bn_declare(m, u, &r->n1, s, cin, xs);
  snprintf(s, sizeof s, "%s.conv1.weight", p);
  conv_weight(m, s, &r->w1, &r->dw1, cout, cin, kd, 3, 0.0f);
  snprintf(s, sizeof s, "%s.conv1", p);
  note_conv(m, s, "conv3d", cin, cout, kd, 3, stride, os, (size_t)cout * cin * kd * 9);
  snprintf(s, sizeof s, "%s.norm2", p);
  bn_declare(m, u, &r->n2, s, cout, os);
  snprintf(s, sizeof s, "%s.conv2.weight", p);
  conv_weight(m, s, &r->w2, &r->dw2, cout, cout, kd, 3, 0.0f);
  snprintf(s, sizeof s, "%s.conv2", p);
  note_conv(m, s, "conv3d", cout, cout, kd, 3, 1, os, (size_t)cout * cout * kd * 9);
  int projected = cin != cout || stride != 1;
  if (projected) {
    snprintf(s, sizeof s, "%s.shortcut.weight", p);
    conv_weight(m, s, &r->ws, &r->dws, cout, cin, 1, 1, 1.0f);
    snprintf(s, sizeof s, "%s.shortcut", p);
    note_conv(m, s, "conv3d", cin, cout, 1, 1, stride, os, (size_t)cout * cin);
  }
  if (dual) {
    snprintf(s, sizeof s, "%s.dualnorm1", p);
    vx_dualnorm_declare(&r->d1, &m->params, &m->state, s, cin, K, m->cfg.dualnorm_masked, u->flat);
    vx_model_note_layer(m, s, m->cfg.dualnorm_masked ? "dualnorm(masked)" : "dualnorm(spade)", "pass 2", xs,
                        vx_dualnorm_param_count(&r->d1));
    snprintf(s, sizeof s, "%s.dualnorm2", p);
    vx_dualnorm_declare(&r->d2, &m->params, &m->state, s, cout, K, m->cfg.dualnorm_masked, u->flat);
    vx_model_note_layer(m, s, m->cfg.dualnorm_masked ? "dualnorm(masked)" : "dualnorm(spade)", "pass 2", os,
                        vx_dualnorm_param_count(&r->d2));
  }
  for (int q = 0; q < 2; q++) {
    int dq = dual && q == 1;
    bn_act_declare(m, &r->n1, &r->p[q].a1, xs, !dq);
    bn_act_declare(m, &r->n2, &r->p[q].a2, os, !dq);
    if (dq) {
      vx_dualnorm_declare_act(&r->d1, &m->arena, &r->p[q].da1, xs);
      vx_dualnorm_declare_act(&r->d2, &m->arena, &r->p[q].da2, os);
      vx_arena_declare(&m->arena, &r->p[q].z1, xs);
      vx_arena_declare(&m->arena, &r->p[q].z2, os);
    }
    vx_arena_declare(&m->arena, &r->p[q].h, os);
    vx_arena_declare(&m->arena, &r->p[q].out, os);
    if (projected) vx_arena_declare(&m->arena, &r->p[q].sc, os); /* r->ws is set only at allocation */
  }
  vx_arena_declare(&u->garena, &r->g_out, os);
  vx_arena_declare(&u->garena, &r->g_a2, os);
  vx_arena_declare(&u->garena, &r->g_h, os);
  vx_arena_declare(&u->garena, &r->g_a1, xs);
  if (dual) {
    vx_arena_declare(&u->garena, &r->g_z2, os);
    vx_arena_declare(&u->garena, &r->g_z1, xs);
  }
}

static void dec_declare(vx_model *m, dn_unet *u, dec_block *d, const char *prefix, int cin, int cout, const int s[5]) {
  int kd = u->flat ? 1 : 3;
  char n[64];
  conv3_params(&d->cp, 1, u->flat);
  snprintf(n, sizeof n, "%s.conv.weight", prefix);
  conv_weight(m, n, &d->w, &d->dw, cout, cin, kd, 3, 0.0f);
  snprintf(n, sizeof n, "%s.conv", prefix);
  note_conv(m, n, "conv3d", cin, cout, kd, 3, 1, s, (size_t)cout * cin * kd * 9);
  snprintf(n, sizeof n, "%s.norm", prefix);
  bn_declare(m, u, &d->n, n, cout, s);
  for (int q = 0; q < 2; q++) {
    vx_arena_declare(&m->arena, &d->p[q].c, s);
    bn_act_declare(m, &d->n, &d->p[q].a, s, 1);
  }
  vx_arena_declare(&u->garena, &d->g_c, s);
  vx_arena_declare(&u->garena, &d->g_a, s);
}

static vx_status dn_create(vx_model *m) {
  const vx_model_config *c = &m->cfg;
  int L = c->levels;
  if (L < 1 || L > MAXL)
    return vx_fail(m->ctx, VX_ERR_INVALID_ARGUMENT, "dualnorm-unet: levels is %d, expected 1..%d", L, MAXL);
  if (c->dualnorm_levels < 0)
    return vx_fail(m->ctx, VX_ERR_INVALID_ARGUMENT, "dualnorm-unet: dualnorm_levels is %d, expected >= 0",
                   c->dualnorm_levels);
  int flat = m->in_shape[2] == 1, f = 1 << (L - 1);
  for (int i = flat ? 3 : 2; i < 5; i++)
    if (m->in_shape[i] < f || m->in_shape[i] % f)
      return vx_fail(m->ctx, VX_ERR_SHAPE,
                     "dualnorm-unet: input spatial size %dx%dx%d: %s must be positive multiples of %d (2^(levels-1)) "
                     "for %d levels",
                     m->in_shape[2], m->in_shape[3], m->in_shape[4], flat ? "H and W (depth 1: 2D)" : "D, H and W", f,
                     L);
  dn_unet *u = calloc(1, sizeof *u);
  if (!u) return vx_fail(m->ctx, VX_ERR_OUT_OF_MEMORY, "dualnorm-unet: host memory");
  m->impl = u;
  u->L = L;
  u->flat = flat;
  vx_arena_init(&u->garena, m->ctx);
  int N = m->in_shape[0], K = c->classes, kd = flat ? 1 : 3, sp[MAXL][3];
  for (int l = 0; l < L; l++) {
    int ch = c->base_channels << l;
    u->ch[l] = ch < c->max_channels ? ch : c->max_channels;
    sp[l][0] = flat ? 1 : m->in_shape[2] >> l;
    sp[l][1] = m->in_shape[3] >> l;
    sp[l][2] = m->in_shape[4] >> l;
  }
  int s0[5];
  shape5(s0, N, u->ch[0], sp[0]);
  conv3_params(&u->cp_stem, 1, flat);
  conv_weight(m, "stem.conv.weight", &u->w_stem, &u->dw_stem, u->ch[0], c->in_channels, kd, 3, 0.0f);
  note_conv(m, "stem.conv", "conv3d", c->in_channels, u->ch[0], kd, 3, 1, s0, (size_t)u->ch[0] * c->in_channels * kd * 9);
  for (int q = 0; q < 2; q++) vx_arena_declare(&m->arena, &u->p[q].stem, s0);
  vx_arena_declare(&u->garena, &u->g_stem, s0);
  for (int l = 0; l < L; l++)
    res_declare(m, u, &u->enc[l], l, l ? u->ch[l - 1] : u->ch[0], u->ch[l], l ? 2 : 1, l ? sp[l - 1] : sp[0], sp[l],
                l < c->dualnorm_levels); /* more DualNorm levels than levels: all of them */
  vx_conv_params_init(&u->cp_up, 2, 0);
  if (flat) u->cp_up.stride[0] = 1;
  for (int l = L - 2; l >= 0; l--) {
    int s[5], s2[5];
    shape5(s, N, u->ch[l], sp[l]);
    shape5(s2, N, 2 * u->ch[l], sp[l]);
    char n[64];
    snprintf(n, sizeof n, "decoder.%d.up.weight", l);
    int uw[5] = {u->ch[l + 1], u->ch[l], flat ? 1 : 2, 2, 2};
    vx_params_declare(&m->params, n, &u->up_w[l], &u->up_dw[l], uw, VX_INIT_KAIMING, u->ch[l] * uw[2] * 4, 0.0f);
    snprintf(n, sizeof n, "decoder.%d.up", l);
    vx_model_note_layer(m, n, "conv_transpose3d", "k2 s2", s, (size_t)uw[0] * uw[1] * uw[2] * 4);
    for (int q = 0; q < 2; q++) {
      vx_arena_declare(&m->arena, &u->p[q].up[l], s);
      vx_arena_declare(&m->arena, &u->p[q].cat[l], s2);
    }
    vx_arena_declare(&u->garena, &u->g_up[l], s);
    vx_arena_declare(&u->garena, &u->g_cat[l], s2);
    snprintf(n, sizeof n, "decoder.%d.0", l);
    dec_declare(m, u, &u->dec[l][0], n, 2 * u->ch[l], u->ch[l], s);
    snprintf(n, sizeof n, "decoder.%d.1", l);
    dec_declare(m, u, &u->dec[l][1], n, u->ch[l], u->ch[l], s);
  }
  int hw[5] = {K, u->ch[0], 1, 1, 1}, hb[5] = {K, 1, 1, 1, 1}, ls[5];
  shape5(ls, N, K, sp[0]);
  vx_conv_params_init(&u->cp_head, 1, 0);
  vx_params_declare(&m->params, "head.weight", &u->head_w, &u->head_dw, hw, VX_INIT_KAIMING, u->ch[0], 1.0f);
  vx_params_declare(&m->params, "head.bias", &u->head_b, &u->head_db, hb, VX_INIT_ZERO, 0, 0);
  note_conv(m, "head", "conv3d+bias", u->ch[0], K, 1, 1, 1, ls, (size_t)K * u->ch[0] + K);
  for (int q = 0; q < 2; q++) {
    vx_arena_declare(&m->arena, &u->p[q].logits, ls);
    vx_arena_declare(&m->arena, &u->p[q].dlogits, ls);
  }
  vx_arena_declare(&m->arena, &u->probs, ls);
  if (u->garena.overflow) return vx_fail(m->ctx, VX_ERR_UNSUPPORTED, "dualnorm-unet: too many gradient tensors");
  int gs[5] = {1, 1, 1, 1, (int)u->garena.count};
  vx_arena_declare(&m->arena, &u->gbuf, gs);
  m->output = NULL; /* set in init: the views exist only after allocation */
  return VX_OK;
}

static vx_status dn_init(vx_model *m) {
  dn_unet *u = m->impl;
  vx_status st = VX_OK;
  for (int i = 0; i < u->garena.n && st == VX_OK; i++)
    st = vx_tensor_view(u->gbuf, u->garena.decl[i].offset, u->garena.decl[i].shape, u->garena.decl[i].view);
  m->output = u->p[1].logits;
  return st;
}

static void dn_destroy(vx_model *m) {
  dn_unet *u = m->impl;
  if (!u) return;
  for (int i = 0; i < u->garena.n; i++) {
    vx_tensor_destroy(*u->garena.decl[i].view);
    *u->garena.decl[i].view = NULL;
  }
  free(u); /* the generic code has released params, state and arena already */
  m->impl = NULL;
}

/* ---------------------------------------------------------------- forward */
static vx_status bn_forward(vx_model *m, const bn_unit *n, bn_act *a, const vx_tensor *x, int training) {
  if (m->cfg.acnorm)
    return vx_acnorm_forward(m->ctx, x, n->gs, n->bs, n->g, n->b, n->rm, n->rv, training, BN_MOMENTUM, BN_EPS,
                             VX_ACT_RELU, 0.0f, a->y, a->save);
  return vx_batch_norm_forward(m->ctx, x, n->g, n->b, n->rm, n->rv, training, BN_MOMENTUM, BN_EPS, VX_ACT_RELU, 0.0f,
                               a->y, a->save);
}

/* Every gradient is added (the gradient block was zeroed). */
static vx_status bn_backward(vx_model *m, const bn_unit *n, bn_act *a, const vx_tensor *x, const vx_tensor *dy,
                             vx_tensor *dx) {
  if (m->cfg.acnorm)
    return vx_acnorm_backward(m->ctx, x, a->y, dy, a->save, 1, VX_ACT_RELU, 0.0f, dx, n->dg, n->db, 1);
  return vx_batch_norm_backward(m->ctx, x, a->y, dy, n->g, a->save, 1, VX_ACT_RELU, 0.0f, dx, n->dg, n->db, 1);
}

/* norm -> ReLU of one block: a plain (or AC-) norm, or in a dual block's pass 2 DualNorm. */
static vx_status norm_relu(vx_model *m, const bn_unit *n, const vx_dualnorm *d, vx_dualnorm_act *da, vx_tensor *z,
                           bn_act *a, const vx_tensor *x, const vx_tensor *masks, int dual, int training) {
  if (!dual) return bn_forward(m, n, a, x, training);
  vx_status st = vx_dualnorm_forward(m->ctx, d, da, x, masks, training, z);
  return st == VX_OK ? vx_activation_forward(m->ctx, VX_ACT_RELU, 0.0f, z, a->y) : st;
}

static vx_status res_forward(vx_model *m, res_block *r, int q, const vx_tensor *x, const vx_tensor *masks,
                             int training) {
  int dual = r->dual && q == 1;
  vx_context *ctx = m->ctx;
  vx_status st = norm_relu(m, &r->n1, &r->d1, &r->p[q].da1, r->p[q].z1, &r->p[q].a1, x, masks, dual, training);
  if (st == VX_OK) st = vx_conv3d_forward(ctx, r->p[q].a1.y, r->w1, NULL, &r->cp1, r->p[q].h);
  if (st == VX_OK)
    st = norm_relu(m, &r->n2, &r->d2, &r->p[q].da2, r->p[q].z2, &r->p[q].a2, r->p[q].h, masks, dual, training);
  if (st == VX_OK) st = vx_conv3d_forward(ctx, r->p[q].a2.y, r->w2, NULL, &r->cp2, r->p[q].out);
  if (st == VX_OK && r->ws) {
    st = vx_conv3d_forward(ctx, x, r->ws, NULL, &r->cps, r->p[q].sc);
    if (st == VX_OK) st = vx_axpy(ctx, 1.0f, r->p[q].sc, r->p[q].out);
  } else if (st == VX_OK) {
    st = vx_axpy(ctx, 1.0f, x, r->p[q].out);
  }
  return st;
}

static vx_status dec_forward(vx_model *m, dec_block *d, int q, const vx_tensor *in, int training) {
  vx_status st = vx_conv3d_forward(m->ctx, in, d->w, NULL, &d->cp, d->p[q].c);
  return st == VX_OK ? bn_forward(m, &d->n, &d->p[q].a, d->p[q].c, training) : st;
}

static const vx_tensor *last_features(dn_unet *u, int q) {
  return u->L > 1 ? u->dec[0][1].p[q].a.y : u->enc[0].p[q].out;
}

/* One pass (q = 0 plain, 1 with the masks) up to its logits. */
static vx_status pass_forward(vx_model *m, int q, const vx_tensor *x, int training) {
  dn_unet *u = m->impl;
  vx_context *ctx = m->ctx;
  int L = u->L;
  const vx_tensor *masks = q ? u->probs : NULL;
  vx_status st = vx_conv3d_forward(ctx, x, u->w_stem, NULL, &u->cp_stem, u->p[q].stem);
  for (int l = 0; l < L && st == VX_OK; l++)
    st = res_forward(m, &u->enc[l], q, l ? u->enc[l - 1].p[q].out : u->p[q].stem, masks, training);
  for (int l = L - 2; l >= 0 && st == VX_OK; l--) {
    const vx_tensor *src = l == L - 2 ? u->enc[L - 1].p[q].out : u->dec[l + 1][1].p[q].a.y;
    st = vx_conv_transpose3d_forward(ctx, src, u->up_w[l], NULL, &u->cp_up, u->p[q].up[l]);
    if (st == VX_OK) st = vx_concat_channels(ctx, u->enc[l].p[q].out, u->p[q].up[l], u->p[q].cat[l]);
    if (st == VX_OK) st = dec_forward(m, &u->dec[l][0], q, u->p[q].cat[l], training);
    if (st == VX_OK) st = dec_forward(m, &u->dec[l][1], q, u->dec[l][0].p[q].a.y, training);
  }
  if (st == VX_OK) st = vx_conv3d_forward(ctx, last_features(u, q), u->head_w, u->head_b, &u->cp_head, u->p[q].logits);
  return st;
}

static vx_status dn_forward(vx_model *m, const vx_tensor *x) {
  dn_unet *u = m->impl;
  vx_status st = pass_forward(m, 0, x, 0);
  if (st == VX_OK) st = vx_softmax_forward(m->ctx, u->p[0].logits, u->probs);
  if (st == VX_OK) st = pass_forward(m, 1, x, 0);
  return st;
}

/* ---------------------------------------------------------------- backward */
static vx_status norm_relu_backward(vx_model *m, const bn_unit *n, const vx_dualnorm *d, vx_dualnorm_act *da,
                                    bn_act *a, vx_tensor *gz, const vx_tensor *x, const vx_tensor *gy, vx_tensor *gx,
                                    int dual) {
  if (!dual) return bn_backward(m, n, a, x, gy, gx);
  vx_status st = vx_activation_backward(m->ctx, VX_ACT_RELU, 0.0f, a->y, gy, gz, 1);
  return st == VX_OK ? vx_dualnorm_backward(m->ctx, d, da, x, gz, 1, gx, 1) : st;
}

static vx_status res_backward(vx_model *m, res_block *r, int q, const vx_tensor *x, vx_tensor *gx) {
  int dual = r->dual && q == 1;
  vx_context *ctx = m->ctx;
  vx_status st = vx_conv3d_backward_weights(ctx, r->p[q].a2.y, r->g_out, &r->cp2, r->dw2, NULL, 1);
  if (st == VX_OK) st = vx_conv3d_backward_data(ctx, r->g_out, r->w2, &r->cp2, r->g_a2, 1);
  if (st == VX_OK)
    st = norm_relu_backward(m, &r->n2, &r->d2, &r->p[q].da2, &r->p[q].a2, r->g_z2, r->p[q].h, r->g_a2, r->g_h, dual);
  if (st == VX_OK) st = vx_conv3d_backward_weights(ctx, r->p[q].a1.y, r->g_h, &r->cp1, r->dw1, NULL, 1);
  if (st == VX_OK) st = vx_conv3d_backward_data(ctx, r->g_h, r->w1, &r->cp1, r->g_a1, 1);
  if (st == VX_OK)
    st = norm_relu_backward(m, &r->n1, &r->d1, &r->p[q].da1, &r->p[q].a1, r->g_z1, x, r->g_a1, gx, dual);
  if (st == VX_OK && r->ws) {
    st = vx_conv3d_backward_weights(ctx, x, r->g_out, &r->cps, r->dws, NULL, 1);
    if (st == VX_OK) st = vx_conv3d_backward_data(ctx, r->g_out, r->ws, &r->cps, gx, 1);
  } else if (st == VX_OK) {
    st = vx_axpy(ctx, 1.0f, r->g_out, gx);
  }
  return st;
}

static vx_status dec_backward(vx_model *m, dec_block *d, int q, const vx_tensor *in, vx_tensor *gin) {
  vx_status st = bn_backward(m, &d->n, &d->p[q].a, d->p[q].c, d->g_a, d->g_c);
  if (st == VX_OK) st = vx_conv3d_backward_weights(m->ctx, in, d->g_c, &d->cp, d->dw, NULL, 1);
  if (st == VX_OK) st = vx_conv3d_backward_data(m->ctx, d->g_c, d->w, &d->cp, gin, 1);
  return st;
}

/* Backward of pass q from its dlogits; every parameter gradient is added. */
static vx_status pass_backward(vx_model *m, int q, const vx_tensor *x) {
  dn_unet *u = m->impl;
  vx_context *ctx = m->ctx;
  int L = u->L;
  vx_status st = vx_tensor_fill(u->gbuf, 0.0f);
  vx_tensor *g_last = L > 1 ? u->dec[0][1].g_a : u->enc[0].g_out;
  if (st == VX_OK)
    st = vx_conv3d_backward_weights(ctx, last_features(u, q), u->p[q].dlogits, &u->cp_head, u->head_dw, u->head_db, 1);
  if (st == VX_OK) st = vx_conv3d_backward_data(ctx, u->p[q].dlogits, u->head_w, &u->cp_head, g_last, 1);
  for (int l = 0; l <= L - 2 && st == VX_OK; l++) {
    st = dec_backward(m, &u->dec[l][1], q, u->dec[l][0].p[q].a.y, u->dec[l][0].g_a);
    if (st == VX_OK) st = dec_backward(m, &u->dec[l][0], q, u->p[q].cat[l], u->g_cat[l]);
    if (st == VX_OK) st = vx_concat_channels_backward(ctx, u->g_cat[l], u->enc[l].g_out, u->g_up[l], 1);
    const vx_tensor *src = l == L - 2 ? u->enc[L - 1].p[q].out : u->dec[l + 1][1].p[q].a.y;
    vx_tensor *gsrc = l == L - 2 ? u->enc[L - 1].g_out : u->dec[l + 1][1].g_a;
    if (st == VX_OK) st = vx_conv_transpose3d_backward_weights(ctx, src, u->g_up[l], &u->cp_up, u->up_dw[l], NULL, 1);
    if (st == VX_OK) st = vx_conv_transpose3d_backward_data(ctx, u->g_up[l], u->up_w[l], &u->cp_up, gsrc, 1);
  }
  for (int l = L - 1; l >= 0 && st == VX_OK; l--)
    st = res_backward(m, &u->enc[l], q, l ? u->enc[l - 1].p[q].out : u->p[q].stem, l ? u->enc[l - 1].g_out : u->g_stem);
  if (st == VX_OK) st = vx_conv3d_backward_weights(ctx, x, u->g_stem, &u->cp_stem, u->dw_stem, NULL, 1);
  return st;
}

static vx_status dn_train_step(vx_model *m, const vx_tensor *x, const vx_tensor *labels, const vx_loss_params *lp,
                               float *loss) {
  dn_unet *u = m->impl;
  float l1 = 0.0f, l2 = 0.0f;
  vx_status st = pass_forward(m, 0, x, 1);
  if (st == VX_OK) st = vx_loss_dice_ce(m->ctx, u->p[0].logits, labels, lp, &l1, u->p[0].dlogits);
  /* the masks are constants of pass 2 (sg in the reference) */
  if (st == VX_OK) st = vx_softmax_forward(m->ctx, u->p[0].logits, u->probs);
  if (st == VX_OK) st = pass_forward(m, 1, x, 1);
  if (st == VX_OK) st = vx_loss_dice_ce(m->ctx, u->p[1].logits, labels, lp, &l2, u->p[1].dlogits);
  if (loss) *loss = l1 + l2;
  if (st == VX_OK) st = pass_backward(m, 1, x);
  if (st == VX_OK) st = pass_backward(m, 0, x);
  return st;
}

const vx_model_ops vx_dualnorm_unet_ops = {
    .name = "dualnorm-unet",
    .create = dn_create,
    .init = dn_init,
    .forward = dn_forward,
    .train_step = dn_train_step,
    .destroy_impl = dn_destroy,
};

/* ---------------------------------------------------------------- AC-Norm fine-tuning */
static const char *suffix_of(const char *name, const char *suffix) {
  size_t n = strlen(name), k = strlen(suffix);
  return n > k && !strcmp(name + n - k, suffix) ? name + n - k : NULL;
}

/* The file's tensor for one declared tensor: same name and shape (PyTorch stores norm vectors
 * 1-D, weights 5-D; either layout of the same dimensions is accepted). */
static const float *find_matching(const vx_st_file *f, const char *name, const vx_decl *d, int *shape_ok) {
  int nd;
  int64_t sh[8];
  const float *src = vx_safetensors_find(f, name, &nd, sh);
  *shape_ok = 0;
  if (!src) return NULL;
  size_t numel = 1;
  for (int k = 0; k < nd; k++) numel *= (size_t)sh[k];
  int same = numel == d->numel && nd >= 1 && nd <= 5;
  for (int k = 0; same && k < nd; k++) same = sh[k] == d->shape[k];
  *shape_ok = same;
  return src;
}

static vx_status fill_set(const vx_param_set *ps, const vx_st_file *f, const char *path, float *host, int *used,
                          char *errbuf, size_t errlen) {
  for (int i = 0; i < ps->n; i++) {
    const vx_decl *d = &ps->decl[i];
    char name[80];
    snprintf(name, sizeof name, "%s", d->name);
    int ok;
    const float *src = find_matching(f, name, d, &ok);
    const char *sfx = suffix_of(d->name, ".source_weight");
    if (!sfx) sfx = suffix_of(d->name, ".source_bias");
    if (!src && sfx) {
      /* a plain checkpoint: the source affine is the pretrained norm's own weight / bias */
      snprintf(name, sizeof name, "%.*s.%s", (int)(sfx - d->name), d->name,
               !strcmp(sfx, ".source_weight") ? "weight" : "bias");
      src = find_matching(f, name, d, &ok);
    } else if (src) {
      (*used)++;
    }
    if (!src || !ok)
      return vx_errbuf_fail(errbuf, errlen, VX_ERR_SHAPE,
                            "%s: the checkpoint does not match the network's architecture: tensor '%s' %s (expected "
                            "shape [%d, %d, %d, %d, %d])",
                            path, name, src ? "has another shape" : "is missing", d->shape[0], d->shape[1],
                            d->shape[2], d->shape[3], d->shape[4]);
    memcpy(host + d->offset, src, d->numel * sizeof(float));
  }
  return VX_OK;
}

vx_status vx_model_load_acnorm(vx_model *m, const char *path, char *errbuf, size_t errlen) {
  if (!m || !path) return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "load_acnorm: model and path are required");
  if (m->ops != &vx_dualnorm_unet_ops || !m->cfg.acnorm)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT,
                          "load_acnorm: the model is '%s' with acnorm = %d; AC-Norm conversion needs a dualnorm-unet "
                          "built with acnorm = 1 (batch norms)",
                          m->cfg.name, m->cfg.acnorm);
  if (m->plan_only) return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "load_acnorm: a planned-only model");
  vx_st_file *f;
  vx_status st = vx_safetensors_open(path, &f, errbuf, errlen);
  if (st != VX_OK) return st;
  float *hp = calloc(m->params.count, sizeof *hp), *hs = calloc(m->state.count ? m->state.count : 1, sizeof *hs);
  int used = 0;
  if (!hp || !hs) st = vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "%s: host memory", path);
  if (st == VX_OK) st = fill_set(&m->params, f, path, hp, &used, errbuf, errlen);
  if (st == VX_OK) st = fill_set(&m->state, f, path, hs, &used, errbuf, errlen);
  /* every tensor of the file must be one of ours: a deeper network holds all our names too */
  if (st == VX_OK && vx_safetensors_count(f) != used)
    st = vx_errbuf_fail(errbuf, errlen, VX_ERR_SHAPE,
                        "%s: the checkpoint holds %d tensors, only %d of them belong to a %s with this configuration: "
                        "another architecture",
                        path, vx_safetensors_count(f), used, m->cfg.name);
  /* only a complete, matching set replaces anything */
  if (st == VX_OK && vx_tensor_upload(m->params.flat, hp) != VX_OK)
    st = vx_errbuf_fail(errbuf, errlen, VX_ERR_OPENCL, "%s: %s", path, vx_context_last_error(m->ctx));
  if (st == VX_OK && m->state.n && vx_tensor_upload(m->state.flat, hs) != VX_OK)
    st = vx_errbuf_fail(errbuf, errlen, VX_ERR_OPENCL, "%s: %s", path, vx_context_last_error(m->ctx));
  free(hp);
  free(hs);
  vx_safetensors_close(f);
  return st;
}

vx_status vx_model_acnorm_score(vx_model *m, double *score, int *layers) {
  if (!m || !score) return VX_ERR_INVALID_ARGUMENT;
  if (m->ops != &vx_dualnorm_unet_ops || !m->cfg.acnorm || m->plan_only)
    return vx_fail(m->ctx, VX_ERR_INVALID_ARGUMENT,
                   "acnorm_score: '%s' (acnorm = %d) has no AC-Norm layers; build a dualnorm-unet with acnorm = 1",
                   m->cfg.name, m->cfg.acnorm);
  dn_unet *u = m->impl;
  double sum = 0.0;
  for (int i = 0; i < u->nbn; i++) {
    const bn_unit *n = u->bns[i];
    double s;
    vx_status st = vx_acnorm_layer_score(m->ctx, n->gs, n->bs, n->g, n->b, BN_EPS, &s);
    if (st != VX_OK) return st;
    sum += s;
  }
  *score = u->nbn ? sum / u->nbn : 0.0;
  if (layers) *layers = u->nbn;
  return VX_OK;
}
