/* 3D UX-Net (MASILab/3DUX-Net networks/UXNet_3D; shared/spec/layers.md part 5) as a vx_model.
 *
 * Encoder: stem Conv3d(in -> f, k7 s2 p3) + channel LayerNorm; four stages of two blocks
 *   x + gamma * PW2(GELU(PW1(LN(DW(x))))) with widths f, 2f, 4f, 8f (DW depthwise k7 p3, PW1/PW2
 *   1x1x1 convs with groups = width), LN + Conv3d(k2 s2) between stages; each stage's output also
 *   goes through its own LayerNorm ("out_norm") for the decoder, while the next stage continues
 *   from the un-normalised output, as the reference does.
 * Decoder (MONAI): UnetResBlocks enc1 (on the raw input) .. enc5 (8f -> 16f at 1/16), UnetrUpBlocks
 *   decoder5..decoder2 (ConvT k2 s2, concat [up, skip], UnetResBlock), decoder1, 1x1x1 out conv.
 * Levels: l = 0..4 at 1/2^l of the input with ch[l] = f * 2^l channels; stage i lives at level i+1.
 *
 * Parameter names follow src/nn/describe.c: "<layer>.weight" / "<layer>.bias", the layer scale of
 * block stages.i.j is "stages.i.j.gamma".
 *
 * Memory: every forward activation the backward needs is kept in the arena (GELU's output is
 * recomputed instead: it is 4x the width). Gradients run through a few buffers: one per
 * decoder/encoder output that must outlive its producer's backward, a running gradient per stage
 * (updated in place through the residual blocks), one concat gradient shared by all levels, and
 * three scratch buffers shared by every layer's transient gradients (sized for the largest use). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model.h"
#include "tensor.h"

#define UX_STAGES 4
#define UX_DEPTH 2 /* blocks per stage */
#define UX_LEVELS 5
#define LN_EPS 1e-6f
#define IN_EPS 1e-5f /* MONAI's InstanceNorm3d default */
#define LAYER_SCALE_INIT 1e-6f

typedef struct {
  vx_conv_params cp;
  vx_tensor *w, *b, *dw, *db; /* b, db NULL without bias */
} conv_layer;

/* Channel LayerNorm with affine parameters, its output and statistics. */
typedef struct {
  vx_tensor *g, *b, *dg, *db, *y, *save;
} ln_layer;

/* One stage block; t4 = GELU(t3) is not kept. */
typedef struct {
  conv_layer dwc, pw1, pw2;
  ln_layer ln;
  vx_tensor *gamma, *dgamma;
  vx_tensor *t1, *t3, *t5, *out; /* DW output, PW1 output, PW2 output, block output (t2 = ln.y) */
} ux_block;

/* MONAI UnetResBlock; IN without affine, so no norm parameters. */
typedef struct {
  int cin, cout, shortcut;
  conv_layer c1, c2, c3;
  vx_tensor *y1, *a1, *y2, *y3, *out; /* conv outputs, first activation, block output */
  vx_tensor *s1, *s2, *s3;            /* IN statistics */
} res_block;

typedef struct {
  int ch[UX_LEVELS], sp[UX_LEVELS][3];
  conv_layer stem;
  ln_layer stem_ln;
  vx_tensor *stem_y;
  ln_layer ds_ln[UX_STAGES]; /* [1..3]: before the downsampling conv into stage i */
  conv_layer ds[UX_STAGES];
  vx_tensor *ds_y[UX_STAGES];
  ux_block blk[UX_STAGES][UX_DEPTH];
  ln_layer out_ln[UX_STAGES];
  res_block enc[UX_LEVELS], dec[UX_LEVELS]; /* dec[0] = decoder1, dec[k] = decoder(k+1) */
  conv_layer up[UX_LEVELS];                 /* [1..4]: dec[k]'s ConvT from level k to k-1 */
  vx_tensor *up_y[UX_LEVELS], *cat[UX_LEVELS];
  conv_layer head;
  /* gradients */
  vx_tensor *dlogits;
  vx_tensor *g_dec[UX_LEVELS];  /* of dec[k].out */
  vx_tensor *g_hid;             /* of enc[4].out */
  vx_tensor *g_enc[UX_LEVELS];  /* of enc[0..3].out (from the concats) */
  vx_tensor *g_on[UX_STAGES];   /* of out_ln[i].y (from enc[i+1]) */
  vx_tensor *g_stage[UX_STAGES];/* running gradient through stage i */
  vx_tensor *g_cat;             /* shared: sized for level 0 */
  vx_tensor *scr[3];
  size_t scr_need, cat_need;
} uxnet;

/* ---------------------------------------------------------------- declaration helpers */
static void act_decl(vx_model *m, vx_tensor **t, int c, const int s[3]) {
  int sh[5] = {m->in_shape[0], c, s[0], s[1], s[2]};
  vx_arena_declare(&m->arena, t, sh);
}

static void flat_decl(vx_model *m, vx_tensor **t, size_t n) {
  int sh[5] = {1, 1, 1, 1, (int)n};
  vx_arena_declare(&m->arena, t, sh);
}

static size_t vox(const vx_model *m, const int s[3]) { return (size_t)m->in_shape[0] * s[0] * s[1] * s[2]; }

static void need_scratch(uxnet *u, size_t n) {
  if (n > u->scr_need) u->scr_need = n;
}

static void note(vx_model *m, const char *name, const char *type, const char *detail, int c, const int s[3],
                 size_t params) {
  int sh[5] = {m->in_shape[0], c, s[0], s[1], s[2]};
  vx_model_note_layer(m, name, type, detail, sh, params);
}

/* Conv3d weight [cout, cin/groups, k, k, k] and optional bias, noted as describe.c does. */
static void conv_decl(vx_model *m, conv_layer *c, const char *name, int cin, int cout, int k, int stride, int pad,
                      int groups, int bias, float slope, const int out_s[3]) {
  vx_conv_params_init(&c->cp, stride, pad);
  c->cp.groups = groups;
  int ws[5] = {cout, cin / groups, k, k, k}, bs[5] = {cout, 1, 1, 1, 1};
  char n[64];
  snprintf(n, sizeof n, "%s.weight", name);
  vx_params_declare(&m->params, n, &c->w, &c->dw, ws, VX_INIT_KAIMING, cin / groups * k * k * k, slope);
  if (bias) {
    snprintf(n, sizeof n, "%s.bias", name);
    vx_params_declare(&m->params, n, &c->b, &c->db, bs, VX_INIT_ZERO, 0, 0);
  }
  char d[96];
  snprintf(d, sizeof d, "%d->%d k%d s%d p%d%s%s", cin, cout, k, stride, pad, groups > 1 ? " grouped" : "",
           bias ? " bias" : "");
  note(m, name, "conv3d", d, cout, out_s,
       (size_t)cout * (size_t)(cin / groups) * (size_t)(k * k * k) + (bias ? (size_t)cout : 0));
}

/* Channel LayerNorm over x [N, c, s]: weight/bias, output and per-voxel statistics. */
static void ln_decl(vx_model *m, ln_layer *l, const char *name, int c, const int s[3]) {
  int cs[5] = {c, 1, 1, 1, 1};
  char n[64];
  snprintf(n, sizeof n, "%s.weight", name);
  vx_params_declare(&m->params, n, &l->g, &l->dg, cs, VX_INIT_ONE, 0, 0);
  snprintf(n, sizeof n, "%s.bias", name);
  vx_params_declare(&m->params, n, &l->b, &l->db, cs, VX_INIT_ZERO, 0, 0);
  act_decl(m, &l->y, c, s);
  flat_decl(m, &l->save, vox(m, s) * 2);
  note(m, name, "layer_norm", "affine", c, s, 2 * (size_t)c);
}

static void res_decl(vx_model *m, uxnet *u, res_block *r, const char *pre, int cin, int cout, const int s[3]) {
  char n[64];
  float slope = m->cfg.slope;
  size_t ss = (size_t)m->in_shape[0] * cout * 2;
  r->cin = cin, r->cout = cout, r->shortcut = cin != cout;
  snprintf(n, sizeof n, "%s.conv1", pre);
  conv_decl(m, &r->c1, n, cin, cout, 3, 1, 1, 1, 0, slope, s);
  act_decl(m, &r->y1, cout, s);
  act_decl(m, &r->a1, cout, s);
  flat_decl(m, &r->s1, ss);
  snprintf(n, sizeof n, "%s.norm1", pre);
  note(m, n, "instance_norm+lrelu", "no affine", cout, s, 0);
  snprintf(n, sizeof n, "%s.conv2", pre);
  conv_decl(m, &r->c2, n, cout, cout, 3, 1, 1, 1, 0, slope, s);
  act_decl(m, &r->y2, cout, s);
  flat_decl(m, &r->s2, ss);
  snprintf(n, sizeof n, "%s.norm2", pre);
  note(m, n, "instance_norm", "no affine", cout, s, 0);
  if (r->shortcut) {
    snprintf(n, sizeof n, "%s.conv3", pre);
    conv_decl(m, &r->c3, n, cin, cout, 1, 1, 0, 1, 0, 1.0f, s);
    act_decl(m, &r->y3, cout, s);
    flat_decl(m, &r->s3, ss);
    snprintf(n, sizeof n, "%s.norm3", pre);
    note(m, n, "instance_norm", "no affine", cout, s, 0);
  }
  act_decl(m, &r->out, cout, s);
  snprintf(n, sizeof n, "%s.add+lrelu", pre);
  note(m, n, "add+lrelu", NULL, cout, s, 0);
  need_scratch(u, (size_t)cout * vox(m, s)); /* the backward's three transient gradients */
}

static void block_decl(vx_model *m, uxnet *u, ux_block *b, int i, int j, int d, const int s[3]) {
  char n[64];
  snprintf(n, sizeof n, "stages.%d.%d.dwconv", i, j);
  conv_decl(m, &b->dwc, n, d, d, 7, 1, 3, d, 1, 1.0f, s);
  act_decl(m, &b->t1, d, s);
  snprintf(n, sizeof n, "stages.%d.%d.norm", i, j);
  ln_decl(m, &b->ln, n, d, s);
  snprintf(n, sizeof n, "stages.%d.%d.pwconv1", i, j);
  conv_decl(m, &b->pw1, n, d, 4 * d, 1, 1, 0, d, 1, 0.0f, s);
  act_decl(m, &b->t3, 4 * d, s);
  snprintf(n, sizeof n, "stages.%d.%d.gelu", i, j);
  note(m, n, "gelu", NULL, 4 * d, s, 0);
  snprintf(n, sizeof n, "stages.%d.%d.pwconv2", i, j);
  conv_decl(m, &b->pw2, n, 4 * d, d, 1, 1, 0, d, 1, 1.0f, s);
  act_decl(m, &b->t5, d, s);
  int gs[5] = {d, 1, 1, 1, 1};
  snprintf(n, sizeof n, "stages.%d.%d.gamma", i, j);
  vx_params_declare(&m->params, n, &b->gamma, &b->dgamma, gs, VX_INIT_ONE, 0, 0); /* set to 1e-6 in init */
  act_decl(m, &b->out, d, s);
  snprintf(n, sizeof n, "stages.%d.%d.layer_scale+residual", i, j);
  note(m, n, "scale+add", "gamma init 1e-6", d, s, (size_t)d);
  need_scratch(u, (size_t)4 * d * vox(m, s)); /* GELU output and the 4d-wide gradients */
}

static vx_status uxnet_create(vx_model *m) {
  vx_status st = vx_model_check_multiple(m, 32); /* stem /2, three downsamplings, encoder5's level */
  if (st != VX_OK) return st;
  uxnet *u = calloc(1, sizeof *u);
  if (!u) return vx_fail(m->ctx, VX_ERR_OUT_OF_MEMORY, "uxnet: host memory for the network");
  m->impl = u;
  const vx_model_config *cfg = &m->cfg;
  int f = cfg->base_channels, C = cfg->in_channels, K = cfg->classes;
  for (int l = 0; l < UX_LEVELS; l++) {
    u->ch[l] = f << l;
    for (int a = 0; a < 3; a++) u->sp[l][a] = m->in_shape[2 + a] >> l;
  }
  char n[64];
  /* encoder backbone: stage i at level i+1 with ch[i] channels */
  conv_decl(m, &u->stem, "stem.conv", C, f, 7, 2, 3, 1, 1, 1.0f, u->sp[1]);
  act_decl(m, &u->stem_y, f, u->sp[1]);
  ln_decl(m, &u->stem_ln, "stem.norm", f, u->sp[1]);
  for (int i = 0; i < UX_STAGES; i++) {
    const int *s = u->sp[i + 1];
    if (i) {
      snprintf(n, sizeof n, "downsample.%d.norm", i);
      ln_decl(m, &u->ds_ln[i], n, u->ch[i - 1], u->sp[i]);
      snprintf(n, sizeof n, "downsample.%d.conv", i);
      conv_decl(m, &u->ds[i], n, u->ch[i - 1], u->ch[i], 2, 2, 0, 1, 1, 1.0f, s);
      act_decl(m, &u->ds_y[i], u->ch[i], s);
    }
    for (int j = 0; j < UX_DEPTH; j++) block_decl(m, u, &u->blk[i][j], i, j, u->ch[i], s);
    snprintf(n, sizeof n, "stages.%d.out_norm", i);
    ln_decl(m, &u->out_ln[i], n, u->ch[i], s);
  }
  /* MONAI encoders: enc1 on the raw input, enc(k+1) on stage k's normalised output */
  for (int k = 0; k < UX_LEVELS; k++) {
    snprintf(n, sizeof n, "encoder%d", k + 1);
    res_decl(m, u, &u->enc[k], n, k ? u->ch[k - 1] : C, u->ch[k], u->sp[k]);
  }
  /* decoder5..decoder2: up from level k to k-1, concat [up, skip], UnetResBlock */
  for (int k = UX_LEVELS - 1; k >= 1; k--) {
    const int *s = u->sp[k - 1];
    int co = u->ch[k - 1];
    snprintf(n, sizeof n, "decoder%d.transp_conv", k + 1);
    vx_conv_params_init(&u->up[k].cp, 2, 0);
    int ws[5] = {u->ch[k], co, 2, 2, 2};
    char w[80], d[64];
    snprintf(w, sizeof w, "%s.weight", n);
    vx_params_declare(&m->params, w, &u->up[k].w, &u->up[k].dw, ws, VX_INIT_KAIMING, u->ch[k] * 8, cfg->slope);
    snprintf(d, sizeof d, "%d->%d k2 s2", u->ch[k], co);
    note(m, n, "conv_transpose3d", d, co, s, (size_t)u->ch[k] * co * 8);
    act_decl(m, &u->up_y[k], co, s);
    snprintf(n, sizeof n, "decoder%d.concat", k + 1);
    act_decl(m, &u->cat[k], 2 * co, s);
    note(m, n, "concat", NULL, 2 * co, s, 0);
    if ((size_t)2 * co * vox(m, s) > u->cat_need) u->cat_need = (size_t)2 * co * vox(m, s);
    snprintf(n, sizeof n, "decoder%d", k + 1);
    res_decl(m, u, &u->dec[k], n, 2 * co, co, s);
  }
  res_decl(m, u, &u->dec[0], "decoder1", f, f, u->sp[0]);
  conv_decl(m, &u->head, "out", f, K, 1, 1, 0, 1, 1, 1.0f, u->sp[0]);
  act_decl(m, &m->output, K, u->sp[0]);

  /* gradient buffers */
  act_decl(m, &u->dlogits, K, u->sp[0]);
  for (int k = 0; k < UX_LEVELS; k++) act_decl(m, &u->g_dec[k], k ? u->ch[k - 1] : f, u->sp[k ? k - 1 : 0]);
  act_decl(m, &u->g_hid, u->ch[4], u->sp[4]);
  for (int l = 0; l < UX_LEVELS - 1; l++) act_decl(m, &u->g_enc[l], u->ch[l], u->sp[l]);
  for (int i = 0; i < UX_STAGES; i++) {
    act_decl(m, &u->g_on[i], u->ch[i], u->sp[i + 1]);
    act_decl(m, &u->g_stage[i], u->ch[i], u->sp[i + 1]);
  }
  flat_decl(m, &u->g_cat, u->cat_need);
  for (int i = 0; i < 3; i++) flat_decl(m, &u->scr[i], u->scr_need);
  return VX_OK;
}

/* Layer scale starts at 1e-6 (the reference's layer_scale_init_value): the blocks begin close
 * to the identity. */
static vx_status uxnet_init(vx_model *m) {
  uxnet *u = m->impl;
  vx_status st = VX_OK;
  for (int i = 0; i < UX_STAGES; i++)
    for (int j = 0; j < UX_DEPTH && st == VX_OK; j++) st = vx_tensor_fill(u->blk[i][j].gamma, LAYER_SCALE_INIT);
  return st;
}

static void uxnet_destroy(vx_model *m) {
  free(m->impl);
  m->impl = NULL;
}

/* A view of a scratch buffer with the given shape (a struct copy: nothing to release). The
 * planner sized every scratch for its largest use. */
static vx_tensor shaped(const vx_tensor *scratch, const vx_tensor *like_batch, int c, const int s[3]) {
  vx_tensor t = *scratch;
  t.shape[0] = like_batch->shape[0];
  t.shape[1] = c;
  for (int a = 0; a < 3; a++) t.shape[2 + a] = s[a];
  t.numel = (size_t)t.shape[0] * c * s[0] * s[1] * s[2];
  t.alloc_bytes = 0;
  return t;
}

static const int *spatial(const vx_tensor *t) { return t->shape + 2; }

/* ---------------------------------------------------------------- forward */
static vx_status res_forward(vx_model *m, uxnet *u, res_block *r, const vx_tensor *in) {
  vx_context *ctx = m->ctx;
  float slope = m->cfg.slope;
  vx_status st = vx_conv3d_forward(ctx, in, r->c1.w, NULL, &r->c1.cp, r->y1);
  if (st == VX_OK)
    st = vx_instance_norm_forward(ctx, r->y1, NULL, NULL, IN_EPS, VX_ACT_LEAKY_RELU, slope, r->a1, r->s1);
  if (st == VX_OK) st = vx_conv3d_forward(ctx, r->a1, r->c2.w, NULL, &r->c2.cp, r->y2);
  if (st == VX_OK) st = vx_instance_norm_forward(ctx, r->y2, NULL, NULL, IN_EPS, VX_ACT_NONE, 0.0f, r->out, r->s2);
  if (r->shortcut) {
    vx_tensor n3 = shaped(u->scr[0], in, r->cout, spatial(in));
    if (st == VX_OK) st = vx_conv3d_forward(ctx, in, r->c3.w, NULL, &r->c3.cp, r->y3);
    if (st == VX_OK) st = vx_instance_norm_forward(ctx, r->y3, NULL, NULL, IN_EPS, VX_ACT_NONE, 0.0f, &n3, r->s3);
    if (st == VX_OK) st = vx_axpy(ctx, 1.0f, &n3, r->out);
  } else if (st == VX_OK) {
    st = vx_axpy(ctx, 1.0f, in, r->out);
  }
  if (st == VX_OK) st = vx_activation_forward(ctx, VX_ACT_LEAKY_RELU, slope, r->out, r->out);
  return st;
}

static vx_status block_forward(vx_model *m, uxnet *u, ux_block *b, const vx_tensor *in) {
  vx_context *ctx = m->ctx;
  vx_tensor t4 = shaped(u->scr[0], in, b->t3->shape[1], spatial(in));
  vx_status st = vx_conv3d_forward(ctx, in, b->dwc.w, b->dwc.b, &b->dwc.cp, b->t1);
  if (st == VX_OK) st = vx_layer_norm_channels_forward(ctx, b->t1, b->ln.g, b->ln.b, LN_EPS, b->ln.y, b->ln.save);
  if (st == VX_OK) st = vx_conv3d_forward(ctx, b->ln.y, b->pw1.w, b->pw1.b, &b->pw1.cp, b->t3);
  if (st == VX_OK) st = vx_gelu_forward(ctx, b->t3, &t4);
  if (st == VX_OK) st = vx_conv3d_forward(ctx, &t4, b->pw2.w, b->pw2.b, &b->pw2.cp, b->t5);
  if (st == VX_OK) st = vx_mul_broadcast(ctx, b->t5, b->gamma, b->out);
  if (st == VX_OK) st = vx_axpy(ctx, 1.0f, in, b->out);
  return st;
}

static const vx_tensor *stage_input(const uxnet *u, int i) { return i ? u->ds_y[i] : u->stem_ln.y; }

static vx_status ln_forward(vx_context *ctx, ln_layer *l, const vx_tensor *x) {
  return vx_layer_norm_channels_forward(ctx, x, l->g, l->b, LN_EPS, l->y, l->save);
}

static vx_status uxnet_forward(vx_model *m, const vx_tensor *x) {
  uxnet *u = m->impl;
  vx_context *ctx = m->ctx;
  vx_status st = vx_conv3d_forward(ctx, x, u->stem.w, u->stem.b, &u->stem.cp, u->stem_y);
  if (st == VX_OK) st = ln_forward(ctx, &u->stem_ln, u->stem_y);
  for (int i = 0; i < UX_STAGES && st == VX_OK; i++) {
    if (i) {
      /* the next stage continues from the stage output before its out_norm */
      st = ln_forward(ctx, &u->ds_ln[i], u->blk[i - 1][UX_DEPTH - 1].out);
      if (st == VX_OK) st = vx_conv3d_forward(ctx, u->ds_ln[i].y, u->ds[i].w, u->ds[i].b, &u->ds[i].cp, u->ds_y[i]);
    }
    for (int j = 0; j < UX_DEPTH && st == VX_OK; j++)
      st = block_forward(m, u, &u->blk[i][j], j ? u->blk[i][j - 1].out : stage_input(u, i));
    if (st == VX_OK) st = ln_forward(ctx, &u->out_ln[i], u->blk[i][UX_DEPTH - 1].out);
  }
  for (int k = 0; k < UX_LEVELS && st == VX_OK; k++) st = res_forward(m, u, &u->enc[k], k ? u->out_ln[k - 1].y : x);
  for (int k = UX_LEVELS - 1; k >= 1 && st == VX_OK; k--) {
    const vx_tensor *src = k == UX_LEVELS - 1 ? u->enc[k].out : u->dec[k + 1].out;
    st = vx_conv_transpose3d_forward(ctx, src, u->up[k].w, NULL, &u->up[k].cp, u->up_y[k]);
    if (st == VX_OK) st = vx_concat_channels(ctx, u->up_y[k], u->enc[k - 1].out, u->cat[k]);
    if (st == VX_OK) st = res_forward(m, u, &u->dec[k], u->cat[k]);
  }
  if (st == VX_OK) st = res_forward(m, u, &u->dec[0], u->dec[1].out);
  if (st == VX_OK) st = vx_conv3d_forward(ctx, u->dec[0].out, u->head.w, u->head.b, &u->head.cp, m->output);
  return st;
}

/* ---------------------------------------------------------------- backward */
/* From dout (the gradient of r->out) to the parameter gradients (accumulated) and, when din is
 * not NULL, the input gradient (written, or added with din_acc). Uses the three scratches. */
static vx_status res_backward(vx_model *m, uxnet *u, res_block *r, const vx_tensor *in, const vx_tensor *dout,
                              vx_tensor *din, int din_acc) {
  vx_context *ctx = m->ctx;
  float slope = m->cfg.slope;
  const int *s = spatial(in);
  vx_tensor ga = shaped(u->scr[0], in, r->cout, s), gb = shaped(u->scr[1], in, r->cout, s),
            gc = shaped(u->scr[2], in, r->cout, s);
  /* ga = d(sum before the final LeakyReLU); its mask comes from the output's sign */
  vx_status st = vx_activation_backward(ctx, VX_ACT_LEAKY_RELU, slope, r->out, dout, &ga, 0);
  if (r->shortcut) {
    if (st == VX_OK)
      st = vx_instance_norm_backward(ctx, r->y3, r->y3, &ga, NULL, r->s3, VX_ACT_NONE, 0.0f, &gc, NULL, NULL, 0);
    if (st == VX_OK) st = vx_conv3d_backward_weights(ctx, in, &gc, &r->c3.cp, r->c3.dw, NULL, 1);
    if (st == VX_OK && din) st = vx_conv3d_backward_data(ctx, &gc, r->c3.w, &r->c3.cp, din, din_acc);
  } else if (st == VX_OK && din) {
    st = din_acc ? vx_axpy(ctx, 1.0f, &ga, din) : vx_tensor_copy(din, &ga);
  }
  if (st == VX_OK)
    st = vx_instance_norm_backward(ctx, r->y2, r->y2, &ga, NULL, r->s2, VX_ACT_NONE, 0.0f, &gb, NULL, NULL, 0);
  if (st == VX_OK) st = vx_conv3d_backward_weights(ctx, r->a1, &gb, &r->c2.cp, r->c2.dw, NULL, 1);
  if (st == VX_OK) st = vx_conv3d_backward_data(ctx, &gb, r->c2.w, &r->c2.cp, &gc, 0);
  if (st == VX_OK)
    st = vx_instance_norm_backward(ctx, r->y1, r->a1, &gc, NULL, r->s1, VX_ACT_LEAKY_RELU, slope, &ga, NULL, NULL, 0);
  if (st == VX_OK) st = vx_conv3d_backward_weights(ctx, in, &ga, &r->c1.cp, r->c1.dw, NULL, 1);
  if (st == VX_OK && din) st = vx_conv3d_backward_data(ctx, &ga, r->c1.w, &r->c1.cp, din, 1);
  return st;
}

/* In place: dx holds the gradient of b->out and becomes that of the block's input (the residual
 * passes it through; the branch adds to it). */
static vx_status block_backward(vx_model *m, uxnet *u, ux_block *b, const vx_tensor *in, vx_tensor *dx) {
  vx_context *ctx = m->ctx;
  const int *s = spatial(in);
  int d = in->shape[1];
  vx_tensor p4 = shaped(u->scr[0], in, 4 * d, s), q4 = shaped(u->scr[1], in, 4 * d, s);
  vx_tensor p1 = shaped(u->scr[0], in, d, s), q1 = shaped(u->scr[1], in, d, s);
  /* gamma's gradient accumulates while the data gradient is written: two calls */
  vx_status st = vx_mul_broadcast_backward(ctx, b->t5, b->gamma, dx, NULL, b->dgamma, 1);
  if (st == VX_OK) st = vx_mul_broadcast_backward(ctx, b->t5, b->gamma, dx, &q1, NULL, 0);
  if (st == VX_OK) st = vx_gelu_forward(ctx, b->t3, &p4); /* t4 again */
  if (st == VX_OK) st = vx_conv3d_backward_weights(ctx, &p4, &q1, &b->pw2.cp, b->pw2.dw, b->pw2.db, 1);
  if (st == VX_OK) st = vx_conv3d_backward_data(ctx, &q1, b->pw2.w, &b->pw2.cp, &p4, 0);
  if (st == VX_OK) st = vx_gelu_backward(ctx, b->t3, &p4, &q4, 0);
  if (st == VX_OK) st = vx_conv3d_backward_weights(ctx, b->ln.y, &q4, &b->pw1.cp, b->pw1.dw, b->pw1.db, 1);
  if (st == VX_OK) st = vx_conv3d_backward_data(ctx, &q4, b->pw1.w, &b->pw1.cp, &p1, 0);
  /* the LayerNorm's accumulate flag covers dx too: start it from zero */
  if (st == VX_OK) st = vx_tensor_fill(&q1, 0.0f);
  if (st == VX_OK)
    st = vx_layer_norm_channels_backward(ctx, b->t1, &p1, b->ln.g, b->ln.save, &q1, b->ln.dg, b->ln.db, 1);
  if (st == VX_OK) st = vx_conv3d_backward_weights(ctx, in, &q1, &b->dwc.cp, b->dwc.dw, b->dwc.db, 1);
  if (st == VX_OK) st = vx_conv3d_backward_data(ctx, &q1, b->dwc.w, &b->dwc.cp, dx, 1);
  return st;
}

static vx_status uxnet_backward(vx_model *m, const vx_tensor *x) {
  uxnet *u = m->impl;
  vx_context *ctx = m->ctx;
  /* head and decoder1 */
  vx_status st = vx_conv3d_backward_weights(ctx, u->dec[0].out, u->dlogits, &u->head.cp, u->head.dw, u->head.db, 1);
  if (st == VX_OK) st = vx_conv3d_backward_data(ctx, u->dlogits, u->head.w, &u->head.cp, u->g_dec[0], 0);
  if (st == VX_OK) st = res_backward(m, u, &u->dec[0], u->dec[1].out, u->g_dec[0], u->g_dec[1], 0);
  /* decoder2..decoder5: the skip's gradient goes to g_enc, the up path's to the level below */
  for (int k = 1; k < UX_LEVELS && st == VX_OK; k++) {
    int l = k - 1;
    vx_tensor gcat = shaped(u->g_cat, x, 2 * u->ch[l], u->sp[l]), gup = shaped(u->scr[0], x, u->ch[l], u->sp[l]);
    st = res_backward(m, u, &u->dec[k], u->cat[k], u->g_dec[k], &gcat, 0);
    if (st == VX_OK) st = vx_concat_channels_backward(ctx, &gcat, &gup, u->g_enc[l], 0);
    const vx_tensor *src = k == UX_LEVELS - 1 ? u->enc[k].out : u->dec[k + 1].out;
    vx_tensor *gsrc = k == UX_LEVELS - 1 ? u->g_hid : u->g_dec[k + 1];
    if (st == VX_OK) st = vx_conv_transpose3d_backward_weights(ctx, src, &gup, &u->up[k].cp, u->up[k].dw, NULL, 1);
    if (st == VX_OK) st = vx_conv_transpose3d_backward_data(ctx, &gup, u->up[k].w, &u->up[k].cp, gsrc, 0);
  }
  /* MONAI encoders: enc(k+1)'s input gradient is that of stage k's out_norm output */
  if (st == VX_OK) st = res_backward(m, u, &u->enc[4], u->out_ln[3].y, u->g_hid, u->g_on[3], 0);
  for (int k = 3; k >= 1 && st == VX_OK; k--)
    st = res_backward(m, u, &u->enc[k], u->out_ln[k - 1].y, u->g_enc[k], u->g_on[k - 1], 0);
  if (st == VX_OK) st = res_backward(m, u, &u->enc[0], x, u->g_enc[0], NULL, 0);
  /* backbone, deepest stage first; a stage output feeds its out_norm and the next downsampling */
  for (int i = 0; i < UX_STAGES && st == VX_OK; i++) st = vx_tensor_fill(u->g_stage[i], 0.0f);
  for (int i = UX_STAGES - 1; i >= 0 && st == VX_OK; i--) {
    ln_layer *on = &u->out_ln[i];
    st = vx_layer_norm_channels_backward(ctx, u->blk[i][UX_DEPTH - 1].out, u->g_on[i], on->g, on->save,
                                         u->g_stage[i], on->dg, on->db, 1);
    for (int j = UX_DEPTH - 1; j >= 0 && st == VX_OK; j--)
      st = block_backward(m, u, &u->blk[i][j], j ? u->blk[i][j - 1].out : stage_input(u, i), u->g_stage[i]);
    if (st != VX_OK) break;
    if (i) {
      ln_layer *dl = &u->ds_ln[i];
      vx_tensor g = shaped(u->scr[0], x, u->ch[i - 1], u->sp[i]);
      st = vx_conv3d_backward_weights(ctx, dl->y, u->g_stage[i], &u->ds[i].cp, u->ds[i].dw, u->ds[i].db, 1);
      if (st == VX_OK) st = vx_conv3d_backward_data(ctx, u->g_stage[i], u->ds[i].w, &u->ds[i].cp, &g, 0);
      if (st == VX_OK)
        st = vx_layer_norm_channels_backward(ctx, u->blk[i - 1][UX_DEPTH - 1].out, &g, dl->g, dl->save,
                                             u->g_stage[i - 1], dl->dg, dl->db, 1);
    } else {
      vx_tensor g = shaped(u->scr[0], x, u->ch[0], u->sp[1]);
      st = vx_tensor_fill(&g, 0.0f);
      if (st == VX_OK)
        st = vx_layer_norm_channels_backward(ctx, u->stem_y, u->g_stage[0], u->stem_ln.g, u->stem_ln.save, &g,
                                             u->stem_ln.dg, u->stem_ln.db, 1);
      if (st == VX_OK) st = vx_conv3d_backward_weights(ctx, x, &g, &u->stem.cp, u->stem.dw, u->stem.db, 1);
    }
  }
  return st;
}

static vx_status uxnet_train_step(vx_model *m, const vx_tensor *x, const vx_tensor *labels, const vx_loss_params *lp,
                                  float *loss) {
  uxnet *u = m->impl;
  float value = 0.0f;
  vx_status st = uxnet_forward(m, x);
  if (st == VX_OK) st = vx_loss_dice_ce(m->ctx, m->output, labels, lp, &value, u->dlogits);
  if (loss) *loss = value;
  if (st == VX_OK && !isfinite(value))
    st = vx_fail(m->ctx, VX_ERR_NOT_FINITE, "uxnet: the loss is %g", (double)value);
  if (st == VX_OK) st = uxnet_backward(m, x);
  return st;
}

const vx_model_ops vx_uxnet_ops = {
    .name = "uxnet",
    .create = uxnet_create,
    .init = uxnet_init,
    .forward = uxnet_forward,
    .train_step = uxnet_train_step,
    .destroy_impl = uxnet_destroy,
};
