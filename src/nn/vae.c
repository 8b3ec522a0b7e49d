/* The VAE regularisation branch (see nn/vae.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/coupling.h"
#include "nn/vae.h"

#define GN_EPS 1e-5f

static int gn_groups(int c) {
  int g = 8;
  while (c % g) g--; /* 8, or the largest divisor of c below it (gcd(c, 8)) */
  return g;
}

static size_t n5(const int s[5]) { return (size_t)s[0] * s[1] * s[2] * s[3] * s[4]; }

static void decl(vx_model *m, vx_vae_param *p, const char *name, const int ws[5], int fan_in, int bias, float slope,
                 const char *type, const char *detail, const int out_shape[5]) {
  char buf[64];
  snprintf(buf, sizeof buf, "vae.%s.weight", name);
  vx_params_declare(&m->params, buf, &p->w, &p->dw, ws, fan_in ? VX_INIT_KAIMING : VX_INIT_ONE, fan_in, slope);
  size_t count = n5(ws);
  if (bias) {
    int bs[5] = {fan_in ? ws[0] : ws[0] * ws[1] * ws[2] * ws[3] * ws[4], 1, 1, 1, 1};
    snprintf(buf, sizeof buf, "vae.%s.bias", name);
    vx_params_declare(&m->params, buf, &p->b, &p->db, bs, VX_INIT_ZERO, 0, 0);
    count += n5(bs);
  }
  snprintf(buf, sizeof buf, "vae.%s", name);
  vx_model_note_layer(m, buf, type, detail, out_shape, count);
}

/* GroupNorm parameters: gamma [C] and beta [C]. */
static void decl_gn(vx_model *m, vx_vae_param *p, const char *name, int c, const int out_shape[5]) {
  int cs[5] = {c, 1, 1, 1, 1};
  char d[32];
  snprintf(d, sizeof d, "%d groups", gn_groups(c));
  decl(m, p, name, cs, 0, 1, 0, "group_norm+relu", d, out_shape);
}

vx_status vx_vae_declare(vx_vae *v, vx_model *m, int levels, const int *ch, const int (*sp)[3]) {
  memset(v, 0, sizeof *v);
  v->ctx = m->ctx;
  v->levels = levels;
  v->N = m->in_shape[0];
  v->weight = m->cfg.vae_weight;
  if (levels > VX_VAE_MAX_LEVELS)
    return vx_fail(m->ctx, VX_ERR_UNSUPPORTED, "%s: the VAE branch supports at most %d levels, got %d", m->cfg.name,
                   VX_VAE_MAX_LEVELS, levels);
  for (int l = 0; l < levels; l++) {
    v->ch[l] = ch[l];
    memcpy(v->sp[l], sp[l], sizeof v->sp[l]);
  }
  int L = levels, N = v->N, Cb = ch[L - 1], in_ch = m->cfg.in_channels;
  const int *fb = sp[L - 1];
  if (fb[0] % 2 || fb[1] % 2 || fb[2] % 2)
    return vx_fail(m->ctx, VX_ERR_SHAPE,
                   "%s: the VAE branch needs even deepest features, got %dx%dx%d (input padded to %dx%dx%d with %d "
                   "levels); use a patch with one more factor of 2 or one level less",
                   m->cfg.name, fb[0], fb[1], fb[2], sp[0][0], sp[0][1], sp[0][2], L);
  for (int i = 0; i < 3; i++) v->half[i] = fb[i] / 2;
  int V = v->half[0] * v->half[1] * v->half[2];
  vx_arena *a = &m->arena;
  char d[96];

  int fs[5] = {N, Cb, fb[0], fb[1], fb[2]};
  int hs[5] = {N, VX_VAE_CH, v->half[0], v->half[1], v->half[2]};
  int ls[5] = {N, VX_VAE_LATENT, 1, 1, 1};
  int ds[5] = {N, VX_VAE_CH * V, 1, 1, 1};
  int cs[5] = {N, Cb, v->half[0], v->half[1], v->half[2]};
  int rs[5] = {N, in_ch, sp[0][0], sp[0][1], sp[0][2]};
  decl_gn(m, &v->gn, "encoder.norm", Cb, fs);
  int w0[5] = {VX_VAE_CH, Cb, 3, 3, 3};
  snprintf(d, sizeof d, "%d->%d k3 s2 p1", Cb, VX_VAE_CH);
  decl(m, &v->conv, "encoder.conv", w0, Cb * 27, 1, 0.0f, "conv3d", d, hs);
  int wd[5] = {VX_VAE_LATENT, VX_VAE_CH, v->half[0], v->half[1], v->half[2]};
  snprintf(d, sizeof d, "%d->%d dense", VX_VAE_CH * V, VX_VAE_LATENT);
  decl(m, &v->mu, "mu", wd, VX_VAE_CH * V, 1, 1.0f, "dense", d, ls);
  decl(m, &v->sg, "sigma", wd, VX_VAE_CH * V, 1, 1.0f, "dense+softplus", d, ls);
  int wz[5] = {VX_VAE_CH * V, VX_VAE_LATENT, 1, 1, 1};
  snprintf(d, sizeof d, "%d->%d dense", VX_VAE_LATENT, VX_VAE_CH * V);
  decl(m, &v->dense, "decoder.dense", wz, VX_VAE_LATENT, 1, 0.0f, "dense+relu", d, ds);
  int wc[5] = {Cb, VX_VAE_CH, 1, 1, 1};
  snprintf(d, sizeof d, "%d->%d k1", VX_VAE_CH, Cb);
  decl(m, &v->c1, "decoder.conv", wc, VX_VAE_CH, 1, 0.0f, "conv3d", d, cs);
  int wu[5] = {Cb, Cb, 2, 2, 2};
  snprintf(d, sizeof d, "%d->%d k2 s2", Cb, Cb);
  decl(m, &v->up0, "decoder.up", wu, Cb * 8, 0, 0.0f, "conv_transpose3d", d, fs);
  decl_gn(m, &v->gn0, "decoder.norm", Cb, fs);
  for (int l = L - 2; l >= 0; l--) {
    int os[5] = {N, ch[l], sp[l][0], sp[l][1], sp[l][2]};
    int wl[5] = {ch[l + 1], ch[l], 2, 2, 2};
    char name[48];
    snprintf(name, sizeof name, "decoder.%d.up", l);
    snprintf(d, sizeof d, "%d->%d k2 s2", ch[l + 1], ch[l]);
    decl(m, &v->up[l], name, wl, ch[l] * 8, 0, 0.0f, "conv_transpose3d", d, os);
    snprintf(name, sizeof name, "decoder.%d.norm", l);
    decl_gn(m, &v->gnu[l], name, ch[l], os);
  }
  int wh[5] = {in_ch, ch[0], 1, 1, 1};
  snprintf(d, sizeof d, "%d->%d k1", ch[0], in_ch);
  decl(m, &v->head, "decoder.head", wh, ch[0], 1, 1.0f, "conv3d", d, rs);

  /* activations */
  int sv[5] = {1, 1, 1, 1, N * 8 * 2};
  vx_arena_declare(a, &v->a0, fs);
  vx_arena_declare(a, &v->save0, sv);
  vx_arena_declare(a, &v->h, hs);
  vx_arena_declare(a, &v->mu_t, ls);
  vx_arena_declare(a, &v->sraw, ls);
  vx_arena_declare(a, &v->sigma, ls);
  vx_arena_declare(a, &v->eps, ls);
  vx_arena_declare(a, &v->z, ls);
  vx_arena_declare(a, &v->d, ds);
  vx_arena_declare(a, &v->c1o, cs);
  vx_arena_declare(a, &v->u0, fs);
  vx_arena_declare(a, &v->g0, fs);
  vx_arena_declare(a, &v->save_g0, sv);
  size_t big = n5(rs) > n5(fs) ? n5(rs) : n5(fs);
  for (int l = L - 2; l >= 0; l--) {
    int os[5] = {N, ch[l], sp[l][0], sp[l][1], sp[l][2]};
    vx_arena_declare(a, &v->u[l], os);
    vx_arena_declare(a, &v->gu[l], os);
    vx_arena_declare(a, &v->save_u[l], sv);
    if (n5(os) > big) big = n5(os);
  }
  if (n5(cs) > big) big = n5(cs);
  vx_arena_declare(a, &v->rec, rs);
  int gs[5] = {1, 1, 1, 1, (int)big};
  vx_arena_declare(a, &v->g_a, gs);
  vx_arena_declare(a, &v->g_b, gs);
  vx_arena_declare(a, &v->g_mu, ls);
  vx_arena_declare(a, &v->g_sig, ls);
  vx_arena_declare(a, &v->g_z, ls);
  vx_arena_declare(a, &v->g_d, ds);
  vx_arena_declare(a, &v->g_h, hs);
  return VX_OK;
}

/* The ping-pong gradient scratch seen with 'shape' (a view by value). */
static vx_tensor as(const vx_tensor *buf, const int shape[5]) { return vx_view_at(buf, 0, shape); }

/* GN + ReLU backward into dx (overwritten): the norm's backward accumulates dx with dgamma. */
static vx_status gn_back(vx_context *ctx, const vx_tensor *x, const vx_tensor *y, const vx_tensor *dy,
                         const vx_vae_param *p, const vx_tensor *save, vx_tensor *dx) {
  vx_status st = vx_tensor_fill(dx, 0.0f);
  if (st == VX_OK)
    st = vx_group_norm_backward(ctx, x, gn_groups(x->shape[1]), y, dy, p->w, save, VX_ACT_RELU, 0.0f, dx, p->dw,
                                p->db, 1);
  return st;
}

vx_status vx_vae_train(vx_vae *v, const vx_tensor *feat, const vx_tensor *x, uint64_t seed, float *loss,
                       vx_tensor *dfeat) {
  vx_context *ctx = v->ctx;
  int L = v->levels, N = v->N, Cb = v->ch[L - 1];
  vx_conv_params s2, one, up;
  vx_conv_params_init(&s2, 2, 1);
  vx_conv_params_init(&one, 1, 0);
  vx_conv_params_init(&up, 2, 0);
  int hs[5] = {N, VX_VAE_CH, v->half[0], v->half[1], v->half[2]};

  /* eps ~ N(0, 1), one draw per step, from a host RNG: the same on every device */
  size_t ne = (size_t)N * VX_VAE_LATENT;
  float *host = malloc(ne * sizeof *host);
  if (!host) return vx_fail(ctx, VX_ERR_OUT_OF_MEMORY, "vae: host memory for %zu noise values", ne);
  uint64_t rng = seed;
  for (size_t i = 0; i < ne; i++) host[i] = (float)vx_rng_normal(&rng);
  vx_status st = vx_tensor_upload(v->eps, host);
  free(host);

  /* ---- forward */
  if (st == VX_OK)
    st = vx_group_norm_forward(ctx, feat, gn_groups(Cb), v->gn.w, v->gn.b, GN_EPS, VX_ACT_RELU, 0.0f, v->a0, v->save0);
  if (st == VX_OK) st = vx_conv3d_forward(ctx, v->a0, v->conv.w, v->conv.b, &s2, v->h);
  if (st == VX_OK) st = vx_conv3d_forward(ctx, v->h, v->mu.w, v->mu.b, &one, v->mu_t);
  if (st == VX_OK) st = vx_conv3d_forward(ctx, v->h, v->sg.w, v->sg.b, &one, v->sraw);
  if (st == VX_OK) st = vx_softplus_forward(ctx, v->sraw, v->sigma);
  if (st == VX_OK) st = vx_mul_broadcast(ctx, v->sigma, v->eps, v->z);
  if (st == VX_OK) st = vx_add_broadcast(ctx, v->z, v->mu_t, v->z);
  if (st == VX_OK) st = vx_conv3d_forward(ctx, v->z, v->dense.w, v->dense.b, &one, v->d);
  if (st == VX_OK) st = vx_activation_forward(ctx, VX_ACT_RELU, 0.0f, v->d, v->d);
  vx_tensor dr = as(v->d, hs);
  if (st == VX_OK) st = vx_conv3d_forward(ctx, &dr, v->c1.w, v->c1.b, &one, v->c1o);
  if (st == VX_OK) st = vx_conv_transpose3d_forward(ctx, v->c1o, v->up0.w, NULL, &up, v->u0);
  if (st == VX_OK)
    st = vx_group_norm_forward(ctx, v->u0, gn_groups(Cb), v->gn0.w, v->gn0.b, GN_EPS, VX_ACT_RELU, 0.0f, v->g0,
                               v->save_g0);
  for (int l = L - 2; l >= 0 && st == VX_OK; l--) {
    const vx_tensor *src = l == L - 2 ? v->g0 : v->gu[l + 1];
    st = vx_conv_transpose3d_forward(ctx, src, v->up[l].w, NULL, &up, v->u[l]);
    if (st == VX_OK)
      st = vx_group_norm_forward(ctx, v->u[l], gn_groups(v->ch[l]), v->gnu[l].w, v->gnu[l].b, GN_EPS, VX_ACT_RELU,
                                 0.0f, v->gu[l], v->save_u[l]);
  }
  const vx_tensor *last = L > 1 ? v->gu[0] : v->g0;
  if (st == VX_OK) st = vx_conv3d_forward(ctx, last, v->head.w, v->head.b, &one, v->rec);

  /* ---- losses and backward */
  float l_rec = 0, l_kl = 0;
  vx_tensor grec = as(v->g_a, v->rec->shape);
  if (st == VX_OK) st = vx_mse_loss(ctx, v->rec, x, v->weight, &l_rec, &grec, 0);
  vx_tensor glast = as(v->g_b, last->shape);
  if (st == VX_OK) st = vx_conv3d_backward_weights(ctx, last, &grec, &one, v->head.dw, v->head.db, 1);
  if (st == VX_OK) st = vx_conv3d_backward_data(ctx, &grec, v->head.w, &one, &glast, 0);
  for (int l = 0; l <= L - 2 && st == VX_OK; l++) {
    vx_tensor gy = as(v->g_b, v->gu[l]->shape), gu = as(v->g_a, v->u[l]->shape);
    st = gn_back(ctx, v->u[l], v->gu[l], &gy, &v->gnu[l], v->save_u[l], &gu);
    const vx_tensor *src = l == L - 2 ? v->g0 : v->gu[l + 1];
    vx_tensor gsrc = as(v->g_b, src->shape);
    if (st == VX_OK) st = vx_conv_transpose3d_backward_weights(ctx, src, &gu, &up, v->up[l].dw, NULL, 1);
    if (st == VX_OK) st = vx_conv_transpose3d_backward_data(ctx, &gu, v->up[l].w, &up, &gsrc, 0);
  }
  vx_tensor gg0 = as(v->g_b, v->g0->shape), gu0 = as(v->g_a, v->u0->shape), gc1 = as(v->g_b, v->c1o->shape);
  if (st == VX_OK) st = gn_back(ctx, v->u0, v->g0, &gg0, &v->gn0, v->save_g0, &gu0);
  if (st == VX_OK) st = vx_conv_transpose3d_backward_weights(ctx, v->c1o, &gu0, &up, v->up0.dw, NULL, 1);
  if (st == VX_OK) st = vx_conv_transpose3d_backward_data(ctx, &gu0, v->up0.w, &up, &gc1, 0);
  vx_tensor gdr = as(v->g_d, hs);
  if (st == VX_OK) st = vx_conv3d_backward_weights(ctx, &dr, &gc1, &one, v->c1.dw, v->c1.db, 1);
  if (st == VX_OK) st = vx_conv3d_backward_data(ctx, &gc1, v->c1.w, &one, &gdr, 0);
  if (st == VX_OK) st = vx_activation_backward(ctx, VX_ACT_RELU, 0.0f, v->d, v->g_d, v->g_d, 0);
  if (st == VX_OK) st = vx_conv3d_backward_weights(ctx, v->z, v->g_d, &one, v->dense.dw, v->dense.db, 1);
  if (st == VX_OK) st = vx_conv3d_backward_data(ctx, v->g_d, v->dense.w, &one, v->g_z, 0);
  if (st == VX_OK) st = vx_kl_loss(ctx, v->mu_t, v->sigma, v->weight, &l_kl, v->g_mu, v->g_sig, 0);
  if (st == VX_OK) st = vx_axpy(ctx, 1.0f, v->g_z, v->g_mu);
  if (st == VX_OK) st = vx_mul_broadcast_backward(ctx, v->eps, v->sigma, v->g_z, NULL, v->g_sig, 1);
  if (st == VX_OK) st = vx_softplus_backward(ctx, v->sraw, v->g_sig, v->g_sig, 0);
  if (st == VX_OK) st = vx_conv3d_backward_weights(ctx, v->h, v->g_mu, &one, v->mu.dw, v->mu.db, 1);
  if (st == VX_OK) st = vx_conv3d_backward_data(ctx, v->g_mu, v->mu.w, &one, v->g_h, 0);
  if (st == VX_OK) st = vx_conv3d_backward_weights(ctx, v->h, v->g_sig, &one, v->sg.dw, v->sg.db, 1);
  if (st == VX_OK) st = vx_conv3d_backward_data(ctx, v->g_sig, v->sg.w, &one, v->g_h, 1);
  vx_tensor ga0 = as(v->g_a, v->a0->shape);
  if (st == VX_OK) st = vx_conv3d_backward_weights(ctx, v->a0, v->g_h, &s2, v->conv.dw, v->conv.db, 1);
  if (st == VX_OK) st = vx_conv3d_backward_data(ctx, v->g_h, v->conv.w, &s2, &ga0, 0);
  if (st == VX_OK) st = gn_back(ctx, feat, v->a0, &ga0, &v->gn, v->save0, dfeat);
  if (st == VX_OK) *loss += l_rec + l_kl;
  return st;
}
