/* Architecture descriptions: every layer of a network with its output shape and parameter count,
 * computed from the definitions in shared/spec/layers.md without allocating anything. This is what
 * `voxcl model info` prints, and the checklist a network's implementation is tested against (the
 * U-Net's total equals vx_unet3d_parameter_count; 3D UX-Net at 1 input channel and 14 classes has
 * the reference's 53.0 M). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "voxcl.h"

typedef struct {
  vx_layer_info *l;
  int n, cap, oom;
  int c, s[3]; /* the running shape: channels and spatial size */
} builder;

static void add(builder *b, const char *name, const char *type, int cout, const int s[3], size_t params,
                const char *detail) {
  if (b->n == b->cap) {
    int cap = b->cap ? 2 * b->cap : 64;
    vx_layer_info *l = realloc(b->l, (size_t)cap * sizeof *l);
    if (!l) { b->oom = 1; return; }
    b->l = l, b->cap = cap;
  }
  vx_layer_info *e = &b->l[b->n++];
  memset(e, 0, sizeof *e);
  snprintf(e->name, sizeof e->name, "%s", name);
  snprintf(e->type, sizeof e->type, "%s", type);
  snprintf(e->detail, sizeof e->detail, "%s", detail ? detail : "");
  e->out_shape[0] = cout;
  for (int i = 0; i < 3; i++) e->out_shape[1 + i] = s[i];
  e->params = params;
  b->c = cout;
  memcpy(b->s, s, sizeof b->s);
}

static void conv(builder *b, const char *name, int cin, int cout, int k, int stride, int pad, int groups, int bias,
                 const int in[3]) {
  int s[3];
  for (int i = 0; i < 3; i++) s[i] = (in[i] + 2 * pad - k) / stride + 1;
  char d[96];
  snprintf(d, sizeof d, "%d->%d k%d s%d p%d%s%s", cin, cout, k, stride, pad, groups > 1 ? " grouped" : "",
           bias ? " bias" : "");
  add(b, name, "conv3d", cout, s, (size_t)cout * (cin / groups) * k * k * k + (bias ? (size_t)cout : 0), d);
}

static void norm(builder *b, const char *name, const char *type, int c, int affine, const int s[3]) {
  add(b, name, type, c, s, affine ? 2 * (size_t)c : 0, affine ? "affine" : "no affine");
}

/* nnU-Net style: two conv-IN(affine)-LeakyReLU per level, strided conv down, transposed conv up. */
static void unet3d(builder *b, int C, int K, const int p[3], const vx_unet3d_config *cfg) {
  int ch[8], s[8][3], L = cfg->levels;
  char n[64];
  for (int l = 0; l < L; l++) {
    int c = cfg->base_channels << l;
    ch[l] = c < cfg->max_channels ? c : cfg->max_channels;
  }
  int cur[3] = {p[0], p[1], p[2]};
  for (int l = 0; l < L; l++) {
    for (int j = 0; j < 2; j++) {
      snprintf(n, sizeof n, "encoder.%d.%d.conv", l, j);
      conv(b, n, j ? ch[l] : l ? ch[l - 1] : C, ch[l], 3, l && !j ? 2 : 1, 1, 1, 0, cur);
      memcpy(cur, b->s, sizeof cur);
      snprintf(n, sizeof n, "encoder.%d.%d.norm", l, j);
      norm(b, n, "instance_norm+lrelu", ch[l], 1, cur);
    }
    memcpy(s[l], cur, sizeof cur);
  }
  for (int l = L - 2; l >= 0; l--) {
    snprintf(n, sizeof n, "decoder.%d.up", l);
    char d[64];
    snprintf(d, sizeof d, "%d->%d k2 s2", ch[l + 1], ch[l]);
    add(b, n, "conv_transpose3d", ch[l], s[l], (size_t)ch[l + 1] * ch[l] * 8, d);
    snprintf(n, sizeof n, "decoder.%d.concat", l);
    add(b, n, "concat", 2 * ch[l], s[l], 0, "skip, up");
    for (int j = 0; j < 2; j++) {
      snprintf(n, sizeof n, "decoder.%d.%d.conv", l, j);
      conv(b, n, j ? ch[l] : 2 * ch[l], ch[l], 3, 1, 1, 1, 0, s[l]);
      snprintf(n, sizeof n, "decoder.%d.%d.norm", l, j);
      norm(b, n, "instance_norm+lrelu", ch[l], 1, s[l]);
    }
  }
  conv(b, "head", ch[0], K, 1, 1, 0, 1, 1, s[0]);
}

/* MONAI's UnetResBlock: conv3 (no bias) -> IN -> LReLU -> conv3 -> IN, 1x1 conv + IN shortcut when
 * the channels change, LReLU after the sum. InstanceNorm without affine (MONAI's "instance"). */
static void res_block(builder *b, const char *pre, int cin, int cout, const int s[3]) {
  char n[64];
  snprintf(n, sizeof n, "%s.conv1", pre);
  conv(b, n, cin, cout, 3, 1, 1, 1, 0, s);
  snprintf(n, sizeof n, "%s.norm1", pre);
  norm(b, n, "instance_norm+lrelu", cout, 0, s);
  snprintf(n, sizeof n, "%s.conv2", pre);
  conv(b, n, cout, cout, 3, 1, 1, 1, 0, s);
  snprintf(n, sizeof n, "%s.norm2", pre);
  norm(b, n, "instance_norm", cout, 0, s);
  if (cin != cout) {
    snprintf(n, sizeof n, "%s.conv3", pre);
    conv(b, n, cin, cout, 1, 1, 0, 1, 0, s);
    snprintf(n, sizeof n, "%s.norm3", pre);
    norm(b, n, "instance_norm", cout, 0, s);
  }
  snprintf(n, sizeof n, "%s.add+lrelu", pre);
  add(b, n, "add+lrelu", cout, s, 0, NULL);
}

/* 3D UX-Net (MASILab/3DUX-Net, layers.md part 5). */
static void uxnet(builder *b, int C, int K, const int p[3]) {
  static const int dims[4] = {48, 96, 192, 384};
  char n[64];
  int st[5][3], cur[3];
  conv(b, "stem.conv", C, 48, 7, 2, 3, 1, 1, p);
  memcpy(cur, b->s, sizeof cur);
  norm(b, "stem.norm", "layer_norm", 48, 1, cur);
  for (int i = 0; i < 4; i++) {
    if (i) {
      snprintf(n, sizeof n, "downsample.%d.norm", i);
      norm(b, n, "layer_norm", dims[i - 1], 1, cur);
      snprintf(n, sizeof n, "downsample.%d.conv", i);
      conv(b, n, dims[i - 1], dims[i], 2, 2, 0, 1, 1, cur);
      memcpy(cur, b->s, sizeof cur);
    }
    int d = dims[i];
    for (int j = 0; j < 2; j++) {
      snprintf(n, sizeof n, "stages.%d.%d.dwconv", i, j);
      conv(b, n, d, d, 7, 1, 3, d, 1, cur);
      snprintf(n, sizeof n, "stages.%d.%d.norm", i, j);
      norm(b, n, "layer_norm", d, 1, cur);
      snprintf(n, sizeof n, "stages.%d.%d.pwconv1", i, j);
      conv(b, n, d, 4 * d, 1, 1, 0, d, 1, cur);
      snprintf(n, sizeof n, "stages.%d.%d.gelu", i, j);
      add(b, n, "gelu", 4 * d, cur, 0, NULL);
      snprintf(n, sizeof n, "stages.%d.%d.pwconv2", i, j);
      conv(b, n, 4 * d, d, 1, 1, 0, d, 1, cur);
      snprintf(n, sizeof n, "stages.%d.%d.layer_scale+residual", i, j);
      add(b, n, "scale+add", d, cur, (size_t)d, "gamma init 1e-6");
    }
    snprintf(n, sizeof n, "stages.%d.out_norm", i);
    norm(b, n, "layer_norm", d, 1, cur);
    memcpy(st[i + 1], cur, sizeof cur);
  }
  memcpy(st[0], p, sizeof st[0]);
  static const int ein[5] = {-1, 48, 96, 192, 384}, eout[5] = {48, 96, 192, 384, 768};
  for (int e = 0; e < 5; e++) {
    snprintf(n, sizeof n, "encoder%d", e + 1);
    res_block(b, n, e ? ein[e] : C, eout[e], st[e == 0 ? 0 : e]);
  }
  /* decoders 5..2: transposed conv k2 s2 (no bias), concat the skip, UnetResBlock */
  static const int din[4] = {768, 384, 192, 96}, dout[4] = {384, 192, 96, 48};
  for (int k = 0; k < 4; k++) {
    const int *s = k < 3 ? st[3 - k] : st[0];
    snprintf(n, sizeof n, "decoder%d.transp_conv", 5 - k);
    char d[64];
    snprintf(d, sizeof d, "%d->%d k2 s2", din[k], dout[k]);
    add(b, n, "conv_transpose3d", dout[k], s, (size_t)din[k] * dout[k] * 8, d);
    snprintf(n, sizeof n, "decoder%d.concat", 5 - k);
    add(b, n, "concat", 2 * dout[k], s, 0, NULL);
    snprintf(n, sizeof n, "decoder%d", 5 - k);
    res_block(b, n, 2 * dout[k], dout[k], s);
  }
  res_block(b, "decoder1", 48, 48, st[0]);
  conv(b, "out", 48, K, 1, 1, 0, 1, 1, st[0]);
}

vx_status vx_model_describe(const char *model, int in_channels, int classes, const int patch[3],
                            vx_layer_info **layers, int *count, size_t *parameters, char *errbuf, size_t errlen) {
  *layers = NULL;
  *count = 0;
  *parameters = 0;
  if (in_channels < 1 || classes < 2 || patch[0] < 1 || patch[1] < 1 || patch[2] < 1) {
    snprintf(errbuf, errlen, "in_channels %d, classes %d, patch %dx%dx%d: expected >= 1, >= 2 and positive sizes",
             in_channels, classes, patch[0], patch[1], patch[2]);
    return VX_ERR_INVALID_ARGUMENT;
  }
  builder b = {0};
  if (!strcmp(model, "unet3d")) {
    vx_unet3d_config cfg;
    vx_unet3d_config_init(&cfg);
    cfg.base_channels = 32; /* nnU-Net's 3d_fullres: 32 doubling to 320 */
    int f = 1 << (cfg.levels - 1);
    if (patch[0] % f || patch[1] % f || patch[2] % f) {
      snprintf(errbuf, errlen, "unet3d: patch %dx%dx%d must be a multiple of %d", patch[0], patch[1], patch[2], f);
      return VX_ERR_SHAPE;
    }
    unet3d(&b, in_channels, classes, patch, &cfg);
  } else if (!strcmp(model, "uxnet")) {
    if (patch[0] % 32 || patch[1] % 32 || patch[2] % 32) {
      snprintf(errbuf, errlen, "uxnet: patch %dx%dx%d must be a multiple of 32 (stem /2, three stages /2, encoder5)",
               patch[0], patch[1], patch[2]);
      return VX_ERR_SHAPE;
    }
    uxnet(&b, in_channels, classes, patch);
  } else {
    snprintf(errbuf, errlen, "model '%s': expected unet3d or uxnet (dualnorm-unet, invres-partial and invres-full are "
             "not described yet)", model);
    return VX_ERR_UNSUPPORTED;
  }
  if (b.oom) { free(b.l); return VX_ERR_OUT_OF_MEMORY; }
  for (int i = 0; i < b.n; i++) *parameters += b.l[i].params;
  *layers = b.l;
  *count = b.n;
  return VX_OK;
}
