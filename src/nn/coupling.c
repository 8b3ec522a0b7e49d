/* Coupling blocks and the default sub-network (see nn/coupling.h). Backward follows memcnn's
 * memory-free scheme: rebuild the block's input from its output, recompute F and G, then
 *   g_hat = g_y1 + J_G(y1)^T g_y2;  g_x2 = g_y2 + J_F(x2)^T g_hat;  g_x1 = g_hat
 * (affine: g_y2 first goes through the scale, and G receives [dL/ds; dL/dt]). */
#include <stdio.h>
#include <string.h>

#include "nn/coupling.h"

#define IN_EPS 1e-5f

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

void vx_coupling_scratch_need(vx_coupling_scratch *sc, int hidden_ch, int out_ch, size_t spatial) {
  int h = hidden_ch > out_ch ? hidden_ch : out_ch; /* c1 / dc slots also hold the output conv */
  if (align16((size_t)h * spatial) > sc->hid) sc->hid = align16((size_t)h * spatial);
  if (align16((size_t)out_ch * spatial) > sc->out) sc->out = align16((size_t)out_ch * spatial);
  if (align16((size_t)2 * (hidden_ch + out_ch)) > sc->save) sc->save = align16((size_t)2 * (hidden_ch + out_ch));
}

void vx_coupling_scratch_declare(vx_coupling_scratch *sc, vx_arena *a, size_t min_floats) {
  sc->total = 4 * sc->hid + 2 * sc->out + sc->save;
  if (sc->total < min_floats) sc->total = min_floats;
  int s[5] = {1, 1, 1, 1, (int)(sc->total ? sc->total : 1)};
  vx_arena_declare(a, &sc->raw, s);
}

/* Slot k of the hidden part (0 c0, 1 a0, 2 c1/da0, 3 dc), output slot k (0 out, 1 its gradient). */
static vx_tensor hid_slot(const vx_coupling_scratch *sc, int k, int c, const int sp[3]) {
  int s[5] = {1, c, sp[0], sp[1], sp[2]};
  return vx_view_at(sc->raw, (size_t)k * sc->hid, s);
}
static vx_tensor out_slot(const vx_coupling_scratch *sc, int k, int c, const int sp[3]) {
  int s[5] = {1, c, sp[0], sp[1], sp[2]};
  return vx_view_at(sc->raw, 4 * sc->hid + (size_t)k * sc->out, s);
}
static vx_tensor save_slot(const vx_coupling_scratch *sc, size_t off, int n) {
  int s[5] = {1, 1, 1, 1, n};
  return vx_view_at(sc->raw, 4 * sc->hid + 2 * sc->out + off, s);
}

/* ---------------------------------------------------------------- default sub-network */
static vx_status conv_subnet_forward(vx_subnet *base, const vx_tensor *in, vx_tensor *out) {
  vx_conv_subnet *s = (vx_conv_subnet *)base;
  const int *sp = in->shape + 2;
  vx_tensor c0 = hid_slot(s->sc, 0, s->chid, sp), a0 = hid_slot(s->sc, 1, s->chid, sp);
  vx_tensor c1 = hid_slot(s->sc, 2, s->cout, sp);
  vx_tensor s0 = save_slot(s->sc, 0, 2 * s->chid), s1 = save_slot(s->sc, (size_t)2 * s->chid, 2 * s->cout);
  vx_conv_params cp;
  vx_conv_params_init(&cp, 1, 1);
  vx_status st = vx_conv3d_forward(s->ctx, in, s->w[0], NULL, &cp, &c0);
  if (st == VX_OK)
    st = vx_instance_norm_forward(s->ctx, &c0, s->gamma[0], s->beta[0], IN_EPS, VX_ACT_LEAKY_RELU, s->slope, &a0, &s0);
  if (st == VX_OK) st = vx_conv3d_forward(s->ctx, &a0, s->w[1], NULL, &cp, &c1);
  if (st == VX_OK)
    st = vx_instance_norm_forward(s->ctx, &c1, s->gamma[1], s->beta[1], IN_EPS, VX_ACT_LEAKY_RELU, s->slope, out, &s1);
  return st;
}

static vx_status conv_subnet_backward(vx_subnet *base, const vx_tensor *in, const vx_tensor *out,
                                      const vx_tensor *dout, vx_tensor *din) {
  vx_conv_subnet *s = (vx_conv_subnet *)base;
  const int *sp = in->shape + 2;
  vx_tensor c0 = hid_slot(s->sc, 0, s->chid, sp), a0 = hid_slot(s->sc, 1, s->chid, sp);
  vx_tensor c1 = hid_slot(s->sc, 2, s->cout, sp), dc1 = hid_slot(s->sc, 3, s->cout, sp);
  vx_tensor da0 = hid_slot(s->sc, 2, s->chid, sp), dc0 = hid_slot(s->sc, 3, s->chid, sp); /* reuse dead slots */
  vx_tensor s0 = save_slot(s->sc, 0, 2 * s->chid), s1 = save_slot(s->sc, (size_t)2 * s->chid, 2 * s->cout);
  vx_conv_params cp;
  vx_conv_params_init(&cp, 1, 1);
  /* the norm backward accumulates dx and dgamma together: dx starts from zero */
  vx_status st = vx_tensor_fill(&dc1, 0.0f);
  if (st == VX_OK)
    st = vx_instance_norm_backward(s->ctx, &c1, out, dout, s->gamma[1], &s1, VX_ACT_LEAKY_RELU, s->slope, &dc1,
                                   s->dgamma[1], s->dbeta[1], 1);
  if (st == VX_OK) st = vx_conv3d_backward_weights(s->ctx, &a0, &dc1, &cp, s->dw[1], NULL, 1);
  if (st == VX_OK) st = vx_conv3d_backward_data(s->ctx, &dc1, s->w[1], &cp, &da0, 0);
  if (st == VX_OK) st = vx_tensor_fill(&dc0, 0.0f);
  if (st == VX_OK)
    st = vx_instance_norm_backward(s->ctx, &c0, &a0, &da0, s->gamma[0], &s0, VX_ACT_LEAKY_RELU, s->slope, &dc0,
                                   s->dgamma[0], s->dbeta[0], 1);
  if (st == VX_OK) st = vx_conv3d_backward_weights(s->ctx, in, &dc0, &cp, s->dw[0], NULL, 1);
  if (st == VX_OK) st = vx_conv3d_backward_data(s->ctx, &dc0, s->w[0], &cp, din, 1);
  return st;
}

static const vx_subnet_ops conv_subnet_ops = {conv_subnet_forward, conv_subnet_backward};

void vx_conv_subnet_declare(vx_conv_subnet *s, vx_context *ctx, vx_param_set *ps, vx_coupling_scratch *sc,
                            const char *prefix, int cin, int chid, int cout, float slope, vx_model *m,
                            const int out_shape[5]) {
  s->base.ops = &conv_subnet_ops;
  s->ctx = ctx;
  s->cin = cin;
  s->chid = chid;
  s->cout = cout;
  s->slope = slope;
  s->sc = sc;
  size_t spatial = (size_t)out_shape[2] * out_shape[3] * out_shape[4];
  vx_coupling_scratch_need(sc, chid, cout, spatial);
  for (int k = 0; k < 2; k++) {
    int ci = k ? chid : cin, co = k ? cout : chid;
    int ws[5] = {co, ci, 3, 3, 3}, cs[5] = {co, 1, 1, 1, 1};
    char name[64];
    snprintf(name, sizeof name, "%s.conv%d.weight", prefix, k);
    vx_params_declare(ps, name, &s->w[k], &s->dw[k], ws, VX_INIT_KAIMING, ci * 27, slope);
    if (m) {
      int os[5] = {1, co, out_shape[2], out_shape[3], out_shape[4]};
      char d[96];
      snprintf(d, sizeof d, "%d->%d k3 s1 p1", ci, co);
      vx_model_note_layer(m, name, "conv3d", d, os, (size_t)co * ci * 27);
    }
    snprintf(name, sizeof name, "%s.norm%d.weight", prefix, k);
    vx_params_declare(ps, name, &s->gamma[k], &s->dgamma[k], cs, VX_INIT_ONE, 0, 0);
    snprintf(name, sizeof name, "%s.norm%d.bias", prefix, k);
    vx_params_declare(ps, name, &s->beta[k], &s->dbeta[k], cs, VX_INIT_ZERO, 0, 0);
    if (m) {
      int os[5] = {1, co, out_shape[2], out_shape[3], out_shape[4]};
      snprintf(name, sizeof name, "%s.norm%d", prefix, k);
      vx_model_note_layer(m, name, "instance_norm+lrelu", "affine", os, (size_t)2 * co);
    }
  }
}

/* ---------------------------------------------------------------- coupling blocks */
void vx_coupling_declare(vx_coupling *b, vx_context *ctx, vx_param_set *ps, vx_coupling_scratch *sc,
                         const char *prefix, vx_coupling_kind kind, const int shape[5], float slope, vx_model *m) {
  b->kind = kind;
  b->channels = shape[1];
  b->ctx = ctx;
  b->sc = sc;
  int h = shape[1] / 2;
  int hs[5] = {1, h, shape[2], shape[3], shape[4]};
  char name[64];
  snprintf(name, sizeof name, "%s.F", prefix);
  vx_conv_subnet_declare(&b->f, ctx, ps, sc, name, h, h, h, slope, m, hs);
  snprintf(name, sizeof name, "%s.G", prefix);
  vx_conv_subnet_declare(&b->g, ctx, ps, sc, name, h, h, kind == VX_COUPLING_AFFINE ? 2 * h : h, slope, m, hs);
  /* affine: G's last norm starts at gamma = 0, so [s; t] = 0 and the block starts as y2 = x2 (as
   * Glow zero-initialises its couplings' last layer); a LeakyReLU output is mostly positive, and
   * random scales would otherwise compound to e^depth over a stack */
  if (kind == VX_COUPLING_AFFINE && ps->n >= 2 && !ps->overflow) ps->decl[ps->n - 2].init = VX_INIT_ZERO;
  b->F = &b->f.base;
  b->G = &b->g.base;
}

/* The halves of sample n of t [N, C, D, H, W]. */
static void halves(const vx_tensor *t, int n, vx_tensor *a, vx_tensor *b) {
  int h = t->shape[1] / 2;
  int s[5] = {1, h, t->shape[2], t->shape[3], t->shape[4]};
  size_t sample = (size_t)t->shape[1] * vx_spatial(t), half = (size_t)h * vx_spatial(t);
  *a = vx_view_at(t, (size_t)n * sample, s);
  *b = vx_view_at(t, (size_t)n * sample + half, s);
}

static vx_status check_block(vx_coupling *b, const char *op, const char *arg, const vx_tensor *x) {
  if (!x) return vx_fail(b->ctx, VX_ERR_INVALID_ARGUMENT, "%s: %s is required", op, arg);
  if (x->shape[1] != b->channels) {
    char buf[96];
    return vx_fail(b->ctx, VX_ERR_SHAPE, "%s: %s has shape %s, the block was built for %d channels", op, arg,
                   vx_shape_str(x, buf, sizeof buf), b->channels);
  }
  return VX_OK;
}

vx_status vx_coupling_forward(vx_coupling *b, vx_tensor *x) {
  vx_status st = check_block(b, "coupling_forward", "x", x);
  int h = b->channels / 2, gc = b->kind == VX_COUPLING_AFFINE ? 2 * h : h;
  for (int n = 0; n < x->shape[0] && st == VX_OK; n++) {
    vx_tensor x1, x2;
    halves(x, n, &x1, &x2);
    vx_tensor f = out_slot(b->sc, 0, h, x->shape + 2), g = out_slot(b->sc, 0, gc, x->shape + 2);
    st = b->F->ops->forward(b->F, &x2, &f);
    if (st == VX_OK) st = vx_axpy(b->ctx, 1.0f, &f, &x1);
    if (st == VX_OK) st = b->G->ops->forward(b->G, &x1, &g);
    if (st == VX_OK)
      st = b->kind == VX_COUPLING_AFFINE ? vx_affine_coupling_apply(b->ctx, &x2, &g, 0) : vx_axpy(b->ctx, 1.0f, &g, &x2);
  }
  return st;
}

vx_status vx_coupling_inverse(vx_coupling *b, vx_tensor *y) {
  vx_status st = check_block(b, "coupling_inverse", "y", y);
  int h = b->channels / 2, gc = b->kind == VX_COUPLING_AFFINE ? 2 * h : h;
  for (int n = 0; n < y->shape[0] && st == VX_OK; n++) {
    vx_tensor y1, y2;
    halves(y, n, &y1, &y2);
    vx_tensor f = out_slot(b->sc, 0, h, y->shape + 2), g = out_slot(b->sc, 0, gc, y->shape + 2);
    st = b->G->ops->forward(b->G, &y1, &g);
    if (st == VX_OK)
      st = b->kind == VX_COUPLING_AFFINE ? vx_affine_coupling_apply(b->ctx, &y2, &g, 1) : vx_axpy(b->ctx, -1.0f, &g, &y2);
    if (st == VX_OK) st = b->F->ops->forward(b->F, &y2, &f);
    if (st == VX_OK) st = vx_axpy(b->ctx, -1.0f, &f, &y1);
  }
  return st;
}

vx_status vx_coupling_backward(vx_coupling *b, vx_tensor *y, vx_tensor *dy) {
  vx_status st = check_block(b, "coupling_backward", "y", y);
  if (st == VX_OK) st = check_block(b, "coupling_backward", "dy", dy);
  if (st == VX_OK && dy->shape[0] != y->shape[0])
    st = vx_fail(b->ctx, VX_ERR_SHAPE, "coupling_backward: y has batch %d, dy %d", y->shape[0], dy->shape[0]);
  int h = b->channels / 2, affine = b->kind == VX_COUPLING_AFFINE, gc = affine ? 2 * h : h;
  for (int n = 0; n < y->shape[0] && st == VX_OK; n++) {
    vx_tensor y1, y2, d1, d2;
    halves(y, n, &y1, &y2);
    halves(dy, n, &d1, &d2);
    vx_tensor f = out_slot(b->sc, 0, h, y->shape + 2), g = out_slot(b->sc, 0, gc, y->shape + 2);
    vx_tensor gst = out_slot(b->sc, 1, gc, y->shape + 2);
    /* G at y1: rebuild x2, then d1 += J_G^T (dL/d(G's output)) = g_hat */
    st = b->G->ops->forward(b->G, &y1, &g);
    if (affine) {
      if (st == VX_OK) st = vx_affine_coupling_apply(b->ctx, &y2, &g, 1);
      if (st == VX_OK) st = vx_affine_coupling_backward(b->ctx, &y2, &g, &d2, &gst);
      if (st == VX_OK) st = b->G->ops->backward(b->G, &y1, &g, &gst, &d1);
    } else {
      if (st == VX_OK) st = vx_axpy(b->ctx, -1.0f, &g, &y2);
      if (st == VX_OK) st = b->G->ops->backward(b->G, &y1, &g, &d2, &d1);
    }
    /* F at the rebuilt x2: rebuild x1, then d2 += J_F^T g_hat */
    if (st == VX_OK) st = b->F->ops->forward(b->F, &y2, &f);
    if (st == VX_OK) st = vx_axpy(b->ctx, -1.0f, &f, &y1);
    if (st == VX_OK) st = b->F->ops->backward(b->F, &y2, &f, &d1, &d2);
  }
  return st;
}

vx_status vx_coupling_stack_forward(vx_coupling *b, int n, vx_tensor *x) {
  vx_status st = VX_OK;
  for (int i = 0; i < n && st == VX_OK; i++) st = vx_coupling_forward(&b[i], x);
  return st;
}

vx_status vx_coupling_stack_inverse(vx_coupling *b, int n, vx_tensor *y) {
  vx_status st = VX_OK;
  for (int i = n - 1; i >= 0 && st == VX_OK; i--) st = vx_coupling_inverse(&b[i], y);
  return st;
}

vx_status vx_coupling_stack_backward(vx_coupling *b, int n, vx_tensor *y, vx_tensor *dy) {
  vx_status st = VX_OK;
  for (int i = n - 1; i >= 0 && st == VX_OK; i--) st = vx_coupling_backward(&b[i], y, dy);
  return st;
}
