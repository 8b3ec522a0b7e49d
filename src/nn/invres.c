/* Partially- and Fully-InvRes: 3D U-Nets whose per-level blocks are stacks of additive coupling
 * blocks (nn/coupling.h) run in place, so a level's activation memory does not depend on its
 * depth.
 *
 * invres-partial: the U-Net of unet3d.c (stride-2 conv down, k2 s2 transposed conv up, skip
 *   concatenation, 1x1 head) where each level is conv3 -> IN -> LeakyReLU (changing channels)
 *   followed by `depth` coupling blocks. Kept per level: the conv's pre-norm output, the level
 *   buffer and its gradient; the concatenation is rebuilt in the backward.
 * invres-full (iUNet layout): stem conv3 (bias, no norm: its backward needs only its input) ->
 *   per level `depth` coupling blocks -> learned orthogonal 2x2x2 down-sampling (Haar base,
 *   Cayley-parametrised, W = 0 at init) to 8C channels, of which the first C' = min(2C, max)
 *   continue down and the rest are the skip; the bottom level has `depth` blocks; going up, the
 *   skip is concatenated back and a second learned orthogonal map is inverted (the learned
 *   up-sampling) onto the same level buffer, followed by `depth` blocks; 1x1 head. From the stem
 *   output to the head input the network is a bijection: the backward rebuilds every level
 *   from the one after it, so only one buffer (+ gradient) per level and the skips are held.
 *
 * Sizes: the input is zero-padded (split before / after) to a multiple of 2^(levels-1) and the
 * logits are cropped back, as iUNet pads and crops; nothing is refused for odd sizes except
 * with the VAE branch when the deepest features would be odd (nn/vae.h). Channels must be even
 * (couplings split them in halves): base_channels is refused when odd.
 *
 * Scratch: one region shared by every coupling block of the network and, between coupling
 * calls, by the level transitions (concatenations, the 8C-channel down-sampled tensors). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/coupling.h"
#include "nn/vae.h"

#define MAX_LEVELS 8
#define IN_EPS 1e-5f

typedef struct { /* conv3 -> IN -> LeakyReLU whose output is a level buffer (partial) */
  vx_conv_params cp;
  vx_tensor *w, *gamma, *beta, *dw, *dgamma, *dbeta;
  vx_tensor *c, *save;
} conv_norm;

typedef struct {
  int full, L, depth, N;
  int ch[MAX_LEVELS], sp[MAX_LEVELS][3];
  int pad_b[3], pad_a[3], padded;
  vx_coupling_scratch sc;
  size_t tmp_floats; /* offset of the second transition slot in sc.raw */
  vx_coupling *blocks;
  vx_coupling *enc[MAX_LEVELS], *dec[MAX_LEVELS];
  vx_tensor *X[MAX_LEVELS], *dX[MAX_LEVELS];       /* level buffers (partial: encoder) */
  vx_tensor *Y[MAX_LEVELS], *dY[MAX_LEVELS];       /* partial: decoder level buffers */
  vx_tensor *skip[MAX_LEVELS], *dskip[MAX_LEVELS]; /* full */
  vx_tensor *up[MAX_LEVELS], *dup[MAX_LEVELS];     /* partial: transposed conv outputs */
  conv_norm ecn[MAX_LEVELS], dcn[MAX_LEVELS];      /* partial */
  vx_tensor *upw[MAX_LEVELS], *updw[MAX_LEVELS];   /* partial: transposed conv; full: orthogonal W */
  vx_tensor *downw[MAX_LEVELS], *downdw[MAX_LEVELS];
  vx_tensor *stem_w, *stem_b, *stem_dw, *stem_db;
  vx_tensor *head_w, *head_b, *head_dw, *head_db;
  vx_tensor *xpad, *lpad, *dlogits, *dlpad, *dvae;
  int vae;
  vx_vae vbranch;
  uint64_t step;
} invres;

static size_t n5(const int s[5]) { return (size_t)s[0] * s[1] * s[2] * s[3] * s[4]; }
static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

static void shape_at(const invres *r, int l, int c, int s[5]) {
  s[0] = r->N;
  s[1] = c;
  s[2] = r->sp[l][0];
  s[3] = r->sp[l][1];
  s[4] = r->sp[l][2];
}

/* Transition slots k = 0, 1 of the shared scratch, seen with 'shape'. */
static vx_tensor tslot(const invres *r, int k, const int shape[5]) {
  return vx_view_at(r->sc.raw, k ? r->tmp_floats : 0, shape);
}

static void declare_stack(vx_model *m, invres *r, vx_coupling *b, const char *prefix, int l) {
  int s[5];
  shape_at(r, l, r->ch[l], s);
  for (int k = 0; k < r->depth; k++) {
    char name[64];
    snprintf(name, sizeof name, "%.40s.blocks.%d", prefix, k);
    vx_coupling_declare(&b[k], m->ctx, &m->params, &r->sc, name, VX_COUPLING_ADDITIVE, s, m->cfg.slope, m);
  }
}

static void declare_conv_norm(vx_model *m, conv_norm *cn, const char *prefix, int cin, int cout, int stride,
                              const int out_shape[5]) {
  vx_conv_params_init(&cn->cp, stride, 1);
  int ws[5] = {cout, cin, 3, 3, 3}, cs[5] = {cout, 1, 1, 1, 1};
  char name[64], d[96];
  snprintf(name, sizeof name, "%s.conv.weight", prefix);
  vx_params_declare(&m->params, name, &cn->w, &cn->dw, ws, VX_INIT_KAIMING, cin * 27, m->cfg.slope);
  snprintf(d, sizeof d, "%d->%d k3 s%d p1", cin, cout, stride);
  snprintf(name, sizeof name, "%s.conv", prefix);
  vx_model_note_layer(m, name, "conv3d", d, out_shape, (size_t)cout * cin * 27);
  snprintf(name, sizeof name, "%s.norm.weight", prefix);
  vx_params_declare(&m->params, name, &cn->gamma, &cn->dgamma, cs, VX_INIT_ONE, 0, 0);
  snprintf(name, sizeof name, "%s.norm.bias", prefix);
  vx_params_declare(&m->params, name, &cn->beta, &cn->dbeta, cs, VX_INIT_ZERO, 0, 0);
  snprintf(name, sizeof name, "%s.norm", prefix);
  vx_model_note_layer(m, name, "instance_norm+lrelu", "affine", out_shape, (size_t)2 * cout);
  int ss[5] = {1, 1, 1, 1, out_shape[0] * cout * 2};
  vx_arena_declare(&m->arena, &cn->c, out_shape);
  vx_arena_declare(&m->arena, &cn->save, ss);
}

static vx_status create_common(vx_model *m, int full) {
  const vx_model_config *cfg = &m->cfg;
  int L = cfg->levels;
  if (L < 1 || L > MAX_LEVELS)
    return vx_fail(m->ctx, VX_ERR_INVALID_ARGUMENT, "%s: levels is %d, expected 1..%d", cfg->name, L, MAX_LEVELS);
  if (cfg->depth < 1 || cfg->depth > 64)
    return vx_fail(m->ctx, VX_ERR_INVALID_ARGUMENT, "%s: depth (coupling blocks per level) is %d, expected 1..64",
                   cfg->name, cfg->depth);
  if (cfg->base_channels < 2 || cfg->base_channels % 2 || cfg->max_channels < 2)
    return vx_fail(m->ctx, VX_ERR_INVALID_ARGUMENT,
                   "%s: base_channels %d, max_channels %d: coupling blocks split channels in halves, both must be "
                   "even and >= 2",
                   cfg->name, cfg->base_channels, cfg->max_channels);
  invres *r = calloc(1, sizeof *r);
  if (!r) return VX_ERR_OUT_OF_MEMORY;
  m->impl = r;
  r->full = full;
  r->L = L;
  r->depth = cfg->depth;
  r->N = m->in_shape[0];
  r->vae = cfg->vae != 0;
  int f = 1 << (L - 1);
  for (int i = 0; i < 3; i++) {
    int s = m->in_shape[2 + i], p = (s + f - 1) / f * f;
    r->pad_b[i] = (p - s) / 2;
    r->pad_a[i] = p - s - r->pad_b[i];
    if (p != s) r->padded = 1;
    for (int l = 0; l < L; l++) r->sp[l][i] = p >> l;
  }
  for (int l = 0; l < L; l++) {
    int c;
    if (full) c = l ? 2 * r->ch[l - 1] : cfg->base_channels;
    else c = cfg->base_channels << l;
    if (c > cfg->max_channels) c = cfg->max_channels;
    r->ch[l] = c & ~1;
  }
  r->blocks = calloc((size_t)(2 * L) * (size_t)r->depth, sizeof *r->blocks);
  if (!r->blocks) return VX_ERR_OUT_OF_MEMORY;
  for (int l = 0; l < L; l++) {
    r->enc[l] = r->blocks + (size_t)(2 * l) * r->depth;
    r->dec[l] = r->enc[l] + r->depth;
  }

  int N = r->N, K = cfg->classes;
  vx_arena *a = &m->arena;
  int psh[5] = {N, cfg->in_channels, r->sp[0][0], r->sp[0][1], r->sp[0][2]};
  if (r->padded) vx_arena_declare(a, &r->xpad, psh);
  size_t trans = 0; /* floats per transition slot */
  char name[64], d[96];
  if (full) {
    int s0[5];
    shape_at(r, 0, r->ch[0], s0);
    int ws[5] = {r->ch[0], cfg->in_channels, 3, 3, 3}, bs[5] = {r->ch[0], 1, 1, 1, 1};
    vx_params_declare(&m->params, "stem.weight", &r->stem_w, &r->stem_dw, ws, VX_INIT_KAIMING, cfg->in_channels * 27,
                      1.0f);
    vx_params_declare(&m->params, "stem.bias", &r->stem_b, &r->stem_db, bs, VX_INIT_ZERO, 0, 0);
    snprintf(d, sizeof d, "%d->%d k3 s1 p1", cfg->in_channels, r->ch[0]);
    vx_model_note_layer(m, "stem", "conv3d", d, s0, n5(ws) + (size_t)r->ch[0]);
    for (int l = 0; l < L; l++) {
      int s[5];
      shape_at(r, l, r->ch[l], s);
      vx_arena_declare(a, &r->X[l], s);
      vx_arena_declare(a, &r->dX[l], s);
      snprintf(name, sizeof name, "encoder.%d", l);
      declare_stack(m, r, r->enc[l], name, l);
      if (l == L - 1) break;
      int ows[5] = {r->ch[l], 8, 8, 1, 1};
      int ds[5];
      shape_at(r, l + 1, 8 * r->ch[l], ds);
      snprintf(name, sizeof name, "encoder.%d.down.weight", l);
      vx_params_declare(&m->params, name, &r->downw[l], &r->downdw[l], ows, VX_INIT_ZERO, 0, 0);
      snprintf(name, sizeof name, "encoder.%d.down", l);
      snprintf(d, sizeof d, "%d->%d orthogonal 2x2x2 (Haar base), %d continue, %d skip", r->ch[l], 8 * r->ch[l],
               r->ch[l + 1], 8 * r->ch[l] - r->ch[l + 1]);
      vx_model_note_layer(m, name, "orthogonal_down3d", d, ds, n5(ows));
      int ks[5];
      shape_at(r, l + 1, 8 * r->ch[l] - r->ch[l + 1], ks);
      vx_arena_declare(a, &r->skip[l], ks);
      vx_arena_declare(a, &r->dskip[l], ks);
      if (n5(ds) > trans) trans = n5(ds);
    }
    for (int l = L - 2; l >= 0; l--) {
      int ows[5] = {r->ch[l], 8, 8, 1, 1};
      int s[5];
      shape_at(r, l, r->ch[l], s);
      snprintf(name, sizeof name, "decoder.%d.up.weight", l);
      vx_params_declare(&m->params, name, &r->upw[l], &r->updw[l], ows, VX_INIT_ZERO, 0, 0);
      snprintf(name, sizeof name, "decoder.%d.up", l);
      snprintf(d, sizeof d, "%d (%d + %d skip)->%d inverse orthogonal 2x2x2", 8 * r->ch[l], r->ch[l + 1],
               8 * r->ch[l] - r->ch[l + 1], r->ch[l]);
      vx_model_note_layer(m, name, "orthogonal_up3d", d, s, n5(ows));
      snprintf(name, sizeof name, "decoder.%d", l);
      declare_stack(m, r, r->dec[l], name, l);
    }
  } else {
    for (int l = 0; l < L; l++) {
      int s[5];
      shape_at(r, l, r->ch[l], s);
      snprintf(name, sizeof name, "encoder.%d", l);
      declare_conv_norm(m, &r->ecn[l], name, l ? r->ch[l - 1] : cfg->in_channels, r->ch[l], l ? 2 : 1, s);
      vx_arena_declare(a, &r->X[l], s);
      vx_arena_declare(a, &r->dX[l], s);
      declare_stack(m, r, r->enc[l], name, l);
    }
    for (int l = L - 2; l >= 0; l--) {
      int s[5], s2[5];
      shape_at(r, l, r->ch[l], s);
      shape_at(r, l, 2 * r->ch[l], s2);
      int uw[5] = {r->ch[l + 1], r->ch[l], 2, 2, 2};
      snprintf(name, sizeof name, "decoder.%d.up.weight", l);
      vx_params_declare(&m->params, name, &r->upw[l], &r->updw[l], uw, VX_INIT_KAIMING, r->ch[l] * 8, cfg->slope);
      snprintf(name, sizeof name, "decoder.%d.up", l);
      snprintf(d, sizeof d, "%d->%d k2 s2", r->ch[l + 1], r->ch[l]);
      vx_model_note_layer(m, name, "conv_transpose3d", d, s, n5(uw));
      vx_arena_declare(a, &r->up[l], s);
      vx_arena_declare(a, &r->dup[l], s);
      snprintf(name, sizeof name, "decoder.%d", l);
      declare_conv_norm(m, &r->dcn[l], name, 2 * r->ch[l], r->ch[l], 1, s);
      vx_arena_declare(a, &r->Y[l], s);
      vx_arena_declare(a, &r->dY[l], s);
      declare_stack(m, r, r->dec[l], name, l);
      if (n5(s2) > trans) trans = n5(s2);
    }
    for (int l = 0; l < L; l++) { /* the pre-norm gradient lives in slot 1 too */
      int s[5];
      shape_at(r, l, r->ch[l], s);
      if (n5(s) > trans) trans = n5(s);
    }
  }
  int hw[5] = {K, r->ch[0], 1, 1, 1}, hb[5] = {K, 1, 1, 1, 1};
  int lps[5] = {N, K, r->sp[0][0], r->sp[0][1], r->sp[0][2]};
  int ls[5] = {N, K, m->in_shape[2], m->in_shape[3], m->in_shape[4]};
  vx_params_declare(&m->params, "head.weight", &r->head_w, &r->head_dw, hw, VX_INIT_KAIMING, r->ch[0], 1.0f);
  vx_params_declare(&m->params, "head.bias", &r->head_b, &r->head_db, hb, VX_INIT_ZERO, 0, 0);
  snprintf(d, sizeof d, "%d->%d k1 (+bias)", r->ch[0], K);
  vx_model_note_layer(m, "head", "conv3d", d, ls, n5(hw) + (size_t)K);
  vx_arena_declare(a, &m->output, ls);
  vx_arena_declare(a, &r->dlogits, ls);
  if (r->padded) {
    vx_arena_declare(a, &r->lpad, lps);
    vx_arena_declare(a, &r->dlpad, lps);
  }
  if (r->vae) {
    int vs[5];
    shape_at(r, L - 1, r->ch[L - 1], vs);
    vx_arena_declare(a, &r->dvae, vs);
    vx_status st = vx_vae_declare(&r->vbranch, m, L, r->ch, (const int(*)[3])r->sp);
    if (st != VX_OK) return st;
  }
  r->tmp_floats = align16(trans);
  vx_coupling_scratch_declare(&r->sc, a, 2 * r->tmp_floats);
  return VX_OK;
}

static vx_status create_partial(vx_model *m) { return create_common(m, 0); }
static vx_status create_full(vx_model *m) { return create_common(m, 1); }

static void destroy_impl(vx_model *m) {
  invres *r = m->impl;
  if (!r) return; /* the generic code has released the views (whose handles live in r) already */
  free(r->blocks);
  free(r);
  m->impl = NULL;
}

/* ---------------------------------------------------------------- partial */
static vx_status cn_forward(vx_model *m, conv_norm *cn, const vx_tensor *in, vx_tensor *out) {
  vx_status st = vx_conv3d_forward(m->ctx, in, cn->w, NULL, &cn->cp, cn->c);
  if (st == VX_OK)
    st = vx_instance_norm_forward(m->ctx, cn->c, cn->gamma, cn->beta, IN_EPS, VX_ACT_LEAKY_RELU, m->cfg.slope, out,
                                  cn->save);
  return st;
}

/* dout -> parameter gradients and (din != NULL) din (+)= its share; the pre-norm gradient goes
 * through transition slot 1. */
static vx_status cn_backward(vx_model *m, invres *r, conv_norm *cn, const vx_tensor *in, const vx_tensor *out,
                             const vx_tensor *dout, vx_tensor *din, int accumulate) {
  vx_tensor dc = tslot(r, 1, cn->c->shape);
  vx_status st = vx_tensor_fill(&dc, 0.0f);
  if (st == VX_OK)
    st = vx_instance_norm_backward(m->ctx, cn->c, out, dout, cn->gamma, cn->save, VX_ACT_LEAKY_RELU, m->cfg.slope,
                                   &dc, cn->dgamma, cn->dbeta, 1);
  if (st == VX_OK) st = vx_conv3d_backward_weights(m->ctx, in, &dc, &cn->cp, cn->dw, NULL, 1);
  if (st == VX_OK && din) st = vx_conv3d_backward_data(m->ctx, &dc, cn->w, &cn->cp, din, accumulate);
  return st;
}

static vx_status partial_forward(vx_model *m, invres *r, const vx_tensor *x, int train, float *vae_loss) {
  int L = r->L;
  vx_conv_params up;
  vx_conv_params_init(&up, 2, 0);
  vx_status st = VX_OK;
  for (int l = 0; l < L && st == VX_OK; l++) {
    st = cn_forward(m, &r->ecn[l], l ? r->X[l - 1] : x, r->X[l]);
    if (st == VX_OK) st = vx_coupling_stack_forward(r->enc[l], r->depth, r->X[l]);
  }
  if (st == VX_OK && train && r->vae)
    st = vx_vae_train(&r->vbranch, r->X[L - 1], x, m->cfg.seed ^ (0x9e3779b97f4a7c15ULL * ++r->step), vae_loss,
                      r->dvae);
  for (int l = L - 2; l >= 0 && st == VX_OK; l--) {
    const vx_tensor *src = l == L - 2 ? r->X[L - 1] : r->Y[l + 1];
    int s2[5];
    shape_at(r, l, 2 * r->ch[l], s2);
    vx_tensor cat = tslot(r, 0, s2);
    st = vx_conv_transpose3d_forward(m->ctx, src, r->upw[l], NULL, &up, r->up[l]);
    if (st == VX_OK) st = vx_concat_channels(m->ctx, r->X[l], r->up[l], &cat);
    if (st == VX_OK) st = cn_forward(m, &r->dcn[l], &cat, r->Y[l]);
    if (st == VX_OK) st = vx_coupling_stack_forward(r->dec[l], r->depth, r->Y[l]);
  }
  return st;
}

/* dlast (the head input's gradient) has been written; returns all parameter gradients. */
static vx_status partial_backward(vx_model *m, invres *r, const vx_tensor *x) {
  int L = r->L;
  vx_conv_params up;
  vx_conv_params_init(&up, 2, 0);
  vx_status st = VX_OK;
  for (int l = 0; l <= L - 2 && st == VX_OK; l++) {
    st = vx_coupling_stack_backward(r->dec[l], r->depth, r->Y[l], r->dY[l]);
    int s2[5];
    shape_at(r, l, 2 * r->ch[l], s2);
    vx_tensor cat = tslot(r, 0, s2);
    /* the concatenation is rebuilt: the skip still holds the encoder's output */
    if (st == VX_OK) st = vx_concat_channels(m->ctx, r->X[l], r->up[l], &cat);
    if (st == VX_OK) st = cn_backward(m, r, &r->dcn[l], &cat, r->Y[l], r->dY[l], NULL, 0);
    vx_tensor dc = tslot(r, 1, r->dcn[l].c->shape), dcat = tslot(r, 0, s2);
    if (st == VX_OK) st = vx_conv3d_backward_data(m->ctx, &dc, r->dcn[l].w, &r->dcn[l].cp, &dcat, 0);
    /* the skip's gradient is written first; the level below adds its down-conv share */
    if (st == VX_OK) st = vx_concat_channels_backward(m->ctx, &dcat, r->dX[l], r->dup[l], 0);
    const vx_tensor *src = l == L - 2 ? r->X[L - 1] : r->Y[l + 1];
    vx_tensor *dsrc = l == L - 2 ? r->dX[L - 1] : r->dY[l + 1];
    if (st == VX_OK) st = vx_conv_transpose3d_backward_weights(m->ctx, src, r->dup[l], &up, r->updw[l], NULL, 1);
    if (st == VX_OK) st = vx_conv_transpose3d_backward_data(m->ctx, r->dup[l], r->upw[l], &up, dsrc, 0);
  }
  if (st == VX_OK && r->vae) st = vx_axpy(m->ctx, 1.0f, r->dvae, r->dX[L - 1]);
  for (int l = L - 1; l >= 0 && st == VX_OK; l--) {
    st = vx_coupling_stack_backward(r->enc[l], r->depth, r->X[l], r->dX[l]);
    if (st == VX_OK) st = cn_backward(m, r, &r->ecn[l], l ? r->X[l - 1] : x, r->X[l], r->dX[l], l ? r->dX[l - 1] : NULL, 1);
  }
  return st;
}

/* ---------------------------------------------------------------- full */
static vx_status full_forward(vx_model *m, invres *r, const vx_tensor *x, int train, float *vae_loss) {
  int L = r->L;
  vx_conv_params p1;
  vx_conv_params_init(&p1, 1, 1);
  vx_status st = vx_conv3d_forward(m->ctx, x, r->stem_w, r->stem_b, &p1, r->X[0]);
  for (int l = 0; l < L && st == VX_OK; l++) {
    st = vx_coupling_stack_forward(r->enc[l], r->depth, r->X[l]);
    if (l == L - 1 || st != VX_OK) break;
    int ds[5];
    shape_at(r, l + 1, 8 * r->ch[l], ds);
    vx_tensor t = tslot(r, 0, ds);
    st = vx_orthogonal_down3d_forward(m->ctx, r->X[l], r->downw[l], VX_ORTHO_BASE_HAAR, &t);
    if (st == VX_OK) st = vx_split_channels(m->ctx, &t, r->X[l + 1], r->skip[l]);
  }
  if (st == VX_OK && train && r->vae)
    st = vx_vae_train(&r->vbranch, r->X[L - 1], x, m->cfg.seed ^ (0x9e3779b97f4a7c15ULL * ++r->step), vae_loss,
                      r->dvae);
  for (int l = L - 2; l >= 0 && st == VX_OK; l--) {
    int ds[5];
    shape_at(r, l + 1, 8 * r->ch[l], ds);
    vx_tensor t = tslot(r, 0, ds);
    st = vx_concat_channels(m->ctx, r->X[l + 1], r->skip[l], &t);
    if (st == VX_OK) st = vx_orthogonal_down3d_inverse(m->ctx, &t, r->upw[l], VX_ORTHO_BASE_HAAR, r->X[l]);
    if (st == VX_OK) st = vx_coupling_stack_forward(r->dec[l], r->depth, r->X[l]);
  }
  return st;
}

static vx_status full_backward(vx_model *m, invres *r, const vx_tensor *x) {
  int L = r->L;
  vx_status st = VX_OK;
  /* decoder, top down: rebuild each level's input from its output */
  for (int l = 0; l <= L - 2 && st == VX_OK; l++) {
    st = vx_coupling_stack_backward(r->dec[l], r->depth, r->X[l], r->dX[l]);
    int ds[5];
    shape_at(r, l + 1, 8 * r->ch[l], ds);
    vx_tensor t = tslot(r, 0, ds), dt = tslot(r, 1, ds);
    /* the up-sampling was x = Q^T t: t = Q x rebuilds [lower level's output; skip] */
    if (st == VX_OK) st = vx_orthogonal_down3d_forward(m->ctx, r->X[l], r->upw[l], VX_ORTHO_BASE_HAAR, &t);
    /* dw must accumulate, so the call accumulates and dt starts from zero */
    if (st == VX_OK) st = vx_tensor_fill(&dt, 0.0f);
    if (st == VX_OK)
      st = vx_orthogonal_down3d_inverse_backward(m->ctx, &t, r->upw[l], VX_ORTHO_BASE_HAAR, r->dX[l], &dt, r->updw[l], 1);
    if (st == VX_OK) st = vx_split_channels(m->ctx, &t, r->X[l + 1], r->skip[l]);
    if (st == VX_OK) st = vx_split_channels(m->ctx, &dt, r->dX[l + 1], r->dskip[l]);
  }
  if (st == VX_OK && r->vae) st = vx_axpy(m->ctx, 1.0f, r->dvae, r->dX[L - 1]);
  /* encoder, bottom up */
  for (int l = L - 1; l >= 0 && st == VX_OK; l--) {
    st = vx_coupling_stack_backward(r->enc[l], r->depth, r->X[l], r->dX[l]);
    if (l == 0 || st != VX_OK) break;
    int ds[5];
    shape_at(r, l, 8 * r->ch[l - 1], ds);
    vx_tensor t = tslot(r, 0, ds), dt = tslot(r, 1, ds);
    st = vx_concat_channels(m->ctx, r->X[l], r->skip[l - 1], &t);
    if (st == VX_OK) st = vx_concat_channels(m->ctx, r->dX[l], r->dskip[l - 1], &dt);
    if (st == VX_OK) st = vx_orthogonal_down3d_inverse(m->ctx, &t, r->downw[l - 1], VX_ORTHO_BASE_HAAR, r->X[l - 1]);
    if (st == VX_OK) st = vx_tensor_fill(r->dX[l - 1], 0.0f);
    if (st == VX_OK)
      st = vx_orthogonal_down3d_backward(m->ctx, r->X[l - 1], r->downw[l - 1], VX_ORTHO_BASE_HAAR, &dt, r->dX[l - 1],
                                         r->downdw[l - 1], 1);
  }
  vx_conv_params p1;
  vx_conv_params_init(&p1, 1, 1);
  if (st == VX_OK) st = vx_conv3d_backward_weights(m->ctx, x, r->dX[0], &p1, r->stem_dw, r->stem_db, 1);
  return st;
}

/* ---------------------------------------------------------------- both */
static vx_status run_forward(vx_model *m, const vx_tensor *x, int train, float *vae_loss) {
  invres *r = m->impl;
  vx_status st = VX_OK;
  const vx_tensor *in = x;
  if (r->padded) {
    st = vx_pad_forward(m->ctx, x, r->pad_b, r->pad_a, 0.0f, r->xpad);
    in = r->xpad;
  }
  if (st == VX_OK) st = r->full ? full_forward(m, r, in, train, vae_loss) : partial_forward(m, r, in, train, vae_loss);
  const vx_tensor *last = r->full || r->L == 1 ? r->X[0] : r->Y[0];
  vx_conv_params one;
  vx_conv_params_init(&one, 1, 0);
  vx_tensor *logits = r->padded ? r->lpad : m->output;
  if (st == VX_OK) st = vx_conv3d_forward(m->ctx, last, r->head_w, r->head_b, &one, logits);
  int start[5] = {0, 0, r->pad_b[0], r->pad_b[1], r->pad_b[2]};
  if (st == VX_OK && r->padded) st = vx_crop_forward(m->ctx, r->lpad, start, m->output);
  return st;
}

static vx_status invres_forward(vx_model *m, const vx_tensor *x) { return run_forward(m, x, 0, NULL); }

static vx_status invres_train_step(vx_model *m, const vx_tensor *x, const vx_tensor *labels, const vx_loss_params *lp,
                                   float *loss) {
  invres *r = m->impl;
  float vae_loss = 0.0f, seg = 0.0f;
  vx_status st = run_forward(m, x, 1, &vae_loss);
  if (st == VX_OK) st = vx_loss_dice_ce(m->ctx, m->output, labels, lp, &seg, r->dlogits);
  if (loss) *loss = seg + vae_loss;
  if (st == VX_OK && !isfinite(seg + vae_loss))
    st = vx_fail(m->ctx, VX_ERR_NOT_FINITE, "%s: loss is %g (segmentation %g, VAE %g)", m->cfg.name,
                 (double)(seg + vae_loss), (double)seg, (double)vae_loss);
  int start[5] = {0, 0, r->pad_b[0], r->pad_b[1], r->pad_b[2]};
  if (st == VX_OK && r->padded) st = vx_crop_backward(m->ctx, r->dlogits, start, r->dlpad, 0);
  const vx_tensor *dl = r->padded ? r->dlpad : r->dlogits;
  vx_tensor *last = r->full || r->L == 1 ? r->X[0] : r->Y[0];
  vx_tensor *dlast = r->full || r->L == 1 ? r->dX[0] : r->dY[0];
  vx_conv_params one;
  vx_conv_params_init(&one, 1, 0);
  if (st == VX_OK) st = vx_conv3d_backward_weights(m->ctx, last, dl, &one, r->head_dw, r->head_db, 1);
  if (st == VX_OK) st = vx_conv3d_backward_data(m->ctx, dl, r->head_w, &one, dlast, 0);
  const vx_tensor *in = r->padded ? r->xpad : x;
  if (st == VX_OK) st = r->full ? full_backward(m, r, in) : partial_backward(m, r, in);
  return st;
}

const vx_model_ops vx_invres_partial_ops = {
    .name = "invres-partial",
    .create = create_partial,
    .init = NULL,
    .forward = invres_forward,
    .train_step = invres_train_step,
    .destroy_impl = destroy_impl,
};

const vx_model_ops vx_invres_full_ops = {
    .name = "invres-full",
    .create = create_full,
    .init = NULL,
    .forward = invres_forward,
    .train_step = invres_train_step,
    .destroy_impl = destroy_impl,
};
