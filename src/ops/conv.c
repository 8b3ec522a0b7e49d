/* 3D convolution and transposed convolution, forward and both backwards.
 *
 * A transposed convolution is the adjoint of a convolution, so it reuses the same three routines
 * with input and output swapped: forward = conv backward-data, backward-data = conv forward,
 * backward-weights = conv backward-weights with the roles of x and dy exchanged. Every routine
 * below sees the conv side (vx_conv_geom) and picks one of three algorithm families per pass:
 *
 *   depthwise  groups == C == O, all strides 1 (any kernel size, padding, dilation):
 *              conv_depthwise.c / kernels/conv_depthwise.cl, 16 voxels along W per work-item,
 *              4 output rows sharing input rows; weight gradient in fixed chunks + ordered sum.
 *   direct     groups == 1, not 1x1x1-stride-1-unpadded, strides <= 4 (any kernel, padding,
 *              dilation, output_padding): conv_direct.c / kernels/conv_direct.cl. Forward and
 *              stride-1 data gradient: 16 voxels x 16 output channels per work-item over a
 *              padded (phase-split for stride > 1) input; strided data gradient: a gather over
 *              the stride phases; weight gradient: KW x 8 channel sums per (c, kd, kh) over fixed
 *              chunks of depth planes + ordered sum.
 *   gemm       everything else (grouped convs, strides > 4, 1x1x1): im2col over a chunk of output
 *              voxels + CLBlast GEMM, chunked to the workspace budget; col2im is a gather. A 1x1x1
 *              stride-1 unpadded conv skips im2col: the input is the GEMM operand.
 *
 * Heuristic: depthwise when it applies, else direct when it applies, else gemm. Depthwise and
 * direct need only a slab of one padded depth plane in the workspace: larger tensors are
 * processed in slabs of samples or depth planes (channels for depthwise) rather than falling
 * back to GEMM. The choice depends only on the shape and the workspace budget, never on timing,
 * and no family uses atomics: a pass repeats bit for bit on the same device and budget.
 *
 * VOXCL_CONV_ALGO (environment, read on every call; for tests and comparisons):
 *   unset, "auto" or anything else   the heuristic above
 *   "gemm"                           im2col + GEMM for everything
 *   "direct"                         direct where it applies, else gemm (never depthwise)
 *   "depthwise"                      depthwise where it applies, else gemm (never direct)
 * tests/test_conv_variants.c checks each against a double reference and against "gemm". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/conv_internal.h"

void vx_conv_params_init(vx_conv_params *p, int stride, int pad) {
  memset(p, 0, sizeof *p);
  for (int i = 0; i < 3; i++) {
    p->stride[i] = stride;
    p->padding[i] = pad;
    p->dilation[i] = 1;
  }
  p->groups = 1;
}

int vx_conv_output_size(int in, int k, int stride, int pad, int dil) {
  if (stride <= 0 || dil <= 0 || k <= 0) return 0;
  int span = dil * (k - 1) + 1;
  if (in + 2 * pad < span) return 0;
  return (in + 2 * pad - span) / stride + 1;
}

static vx_status check_params(vx_context *ctx, const char *op, const vx_conv_params *p) {
  if (!p) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: params is NULL", op);
  static const char *axis[3] = {"D", "H", "W"};
  for (int i = 0; i < 3; i++) {
    if (p->stride[i] <= 0)
      return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: stride[%s] is %d, expected >= 1", op, axis[i], p->stride[i]);
    if (p->dilation[i] <= 0)
      return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: dilation[%s] is %d, expected >= 1", op, axis[i],
                     p->dilation[i]);
    if (p->padding[i] < 0)
      return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: padding[%s] is %d, expected >= 0", op, axis[i], p->padding[i]);
    if (p->output_padding[i] < 0 || (p->output_padding[i] >= p->stride[i] && p->output_padding[i] >= p->dilation[i]))
      return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT,
                     "%s: output_padding[%s] is %d, expected >= 0 and smaller than the stride or dilation", op,
                     axis[i], p->output_padding[i]);
  }
  if (p->groups <= 0) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: groups is %d, expected >= 1", op, p->groups);
  return VX_OK;
}

static void finish_geom(vx_conv_geom *g) {
  g->S_in = (size_t)g->in[0] * g->in[1] * g->in[2];
  g->S_out = (size_t)g->out[0] * g->out[1] * g->out[2];
  g->Cg = g->C / g->G;
  g->Og = g->O / g->G;
  g->K3 = g->k[0] * g->k[1] * g->k[2];
  snprintf(g->options, sizeof g->options,
           "-DKD=%d -DKH=%d -DKW=%d -DSD=%d -DSH=%d -DSW=%d -DPD=%d -DPH=%d -DPW=%d -DDD=%d -DDH=%d -DDW=%d", g->k[0],
           g->k[1], g->k[2], g->s[0], g->s[1], g->s[2], g->p[0], g->p[1], g->p[2], g->d[0], g->d[1], g->d[2]);
}

/* Builds the conv geometry from the conv's input x, weight w [O, C/G, k] and output y, checking
 * everything. For a transposed conv the caller passes (y_T, w, x_T): the conv that it is the
 * adjoint of. 'xname'/'yname' name the tensors in messages. */
static vx_status make_geom(vx_context *ctx, const char *op, const vx_tensor *x, const char *xname,
                           const vx_tensor *w, const vx_tensor *y, const char *yname, const vx_conv_params *p,
                           int transposed, vx_conv_geom *g) {
  vx_status st = check_params(ctx, op, p);
  if (st != VX_OK) return st;
  if (!x || !w || !y) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: a tensor argument is NULL", op);
  char sx[96], sw[96], sy[96];
  memset(g, 0, sizeof *g);
  g->N = x->shape[0];
  g->C = x->shape[1];
  g->O = y->shape[1];
  g->G = p->groups;
  if (y->shape[0] != g->N)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: %s has batch %d but %s has batch %d", op, xname, g->N, yname, y->shape[0]);
  if (g->C % g->G || g->O % g->G)
    return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: groups = %d does not divide the channels (%d in, %d out)", op,
                   g->G, transposed ? g->O : g->C, transposed ? g->C : g->O);
  if (w->shape[0] != g->O || w->shape[1] != g->C / g->G)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: weight %s does not fit: expected [%d, %d, kD, kH, kW] for %s %s -> %s %s",
                   op, vx_shape_str(w, sw, sizeof sw), transposed ? g->O : g->O,
                   transposed ? g->C / g->G : g->C / g->G, transposed ? yname : xname,
                   vx_shape_str(transposed ? y : x, sx, sizeof sx), transposed ? xname : yname,
                   vx_shape_str(transposed ? x : y, sy, sizeof sy));
  for (int i = 0; i < 3; i++) {
    g->in[i] = x->shape[2 + i];
    g->out[i] = y->shape[2 + i];
    g->k[i] = w->shape[2 + i];
    g->s[i] = p->stride[i];
    g->p[i] = p->padding[i];
    g->d[i] = p->dilation[i];
    int span = g->d[i] * (g->k[i] - 1) + 1;
    if (g->in[i] + 2 * g->p[i] < span)
      return vx_fail(ctx, VX_ERR_SHAPE, "%s: kernel %s (span %d with dilation %d) is larger than the padded %s %s",
                     op, vx_shape_str(w, sw, sizeof sw), span, g->d[i], transposed ? yname : xname,
                     vx_shape_str(x, sx, sizeof sx));
    int expect = vx_conv_output_size(g->in[i], g->k[i], g->s[i], g->p[i], g->d[i]);
    if (transposed) {
      /* conv side: in = transposed output; check the transposed formula explicitly */
      int t_expect = (g->out[i] - 1) * g->s[i] - 2 * g->p[i] + span + p->output_padding[i];
      if (g->in[i] != t_expect)
        return vx_fail(ctx, VX_ERR_SHAPE,
                       "%s: output %s does not match input %s: spatial axis %d should be %d "
                       "((in-1)*stride - 2*pad + dil*(k-1) + output_padding + 1)",
                       op, vx_shape_str(x, sx, sizeof sx), vx_shape_str(y, sy, sizeof sy), i, t_expect);
    } else if (g->out[i] != expect) {
      return vx_fail(ctx, VX_ERR_SHAPE,
                     "%s: %s %s does not match %s %s: spatial axis %d should be %d "
                     "((in + 2*pad - dil*(k-1) - 1)/stride + 1)",
                     op, yname, vx_shape_str(y, sy, sizeof sy), xname, vx_shape_str(x, sx, sizeof sx), i, expect);
    }
  }
  finish_geom(g);
  return VX_OK;
}

static int is_pointwise(const vx_conv_geom *g) {
  for (int i = 0; i < 3; i++)
    if (g->k[i] != 1 || g->s[i] != 1 || g->p[i] != 0) return 0;
  return 1;
}

typedef enum { ALGO_GEMM, ALGO_DIRECT, ALGO_DEPTHWISE } conv_algo;

/* The algorithm for pass 'which' (0 forward, 1 data gradient, 2 weight gradient) of g: see the
 * top of this file. VOXCL_CONV_ALGO narrows the choice to one family (GEMM where it does not
 * apply); any other value, or none, is the heuristic. */
static conv_algo choose_algo(vx_context *ctx, const vx_conv_geom *g, int which) {
  const char *a = getenv("VOXCL_CONV_ALGO");
  int only_gemm = a && !strcmp(a, "gemm"), only_direct = a && !strcmp(a, "direct"),
      only_depthwise = a && !strcmp(a, "depthwise");
  if (only_gemm) return ALGO_GEMM;
  if (!only_direct && vx_conv_depthwise_fits(ctx, g, which)) return ALGO_DEPTHWISE;
  if (!only_depthwise && !is_pointwise(g) && vx_conv_direct_fits(ctx, g, which)) return ALGO_DIRECT;
  return ALGO_GEMM;
}

/* Output voxels per im2col chunk: whole output z-slices when they fit the budget. */
static vx_status chunk_size(vx_context *ctx, const vx_conv_geom *g, size_t *nv_out, cl_mem *col) {
  size_t row_bytes = (size_t)g->Cg * g->K3 * sizeof(float);
  size_t nv = ctx->workspace_limit / row_bytes;
  if (nv == 0)
    return vx_fail(ctx, VX_ERR_OUT_OF_MEMORY, "conv: one im2col column needs %zu bytes, the workspace budget is %zu",
                   row_bytes, ctx->workspace_limit);
  size_t slice = (size_t)g->out[1] * g->out[2];
  if (nv >= slice) nv -= nv % slice;
  if (nv > g->S_out) nv = g->S_out;
  *nv_out = nv;
  return vx_workspace(ctx, nv * row_bytes, col);
}

static vx_status im2col(vx_context *ctx, const vx_conv_geom *g, const vx_tensor *x, int n, int grp, size_t v0, size_t nv,
                        cl_mem col) {
  size_t gs[2] = {nv, (size_t)g->Cg};
  size_t xoff = x->offset + ((size_t)n * g->C + (size_t)grp * g->Cg) * g->S_in;
  vx_arg args[] = {VX_MEM(x->buf), VX_INT(xoff), VX_INT(g->in[0]), VX_INT(g->in[1]), VX_INT(g->in[2]),
                   VX_INT(g->out[1]), VX_INT(g->out[2]), VX_INT(v0), VX_INT(nv), VX_MEM(col), VX_INT(0)};
  return vx_launch(ctx, "conv_im2col", g->options, "im2col", 2, gs, NULL, args, VX_NARGS(args));
}

static vx_status col2im(vx_context *ctx, const vx_conv_geom *g, vx_tensor *dx, int n, int grp, size_t v0, size_t nv,
                        cl_mem col) {
  size_t slice = (size_t)g->out[1] * g->out[2];
  int oz0 = (int)(v0 / slice), oz1 = (int)((v0 + nv - 1) / slice);
  int z0 = oz0 * g->s[0] - g->p[0], z1 = oz1 * g->s[0] - g->p[0] + (g->k[0] - 1) * g->d[0];
  if (z0 < 0) z0 = 0;
  if (z1 > g->in[0] - 1) z1 = g->in[0] - 1;
  if (z1 < z0) return VX_OK;
  int nz = z1 - z0 + 1;
  size_t gs[2] = {(size_t)g->in[1] * g->in[2] * nz, (size_t)g->Cg};
  size_t dxoff = dx->offset + ((size_t)n * g->C + (size_t)grp * g->Cg) * g->S_in;
  vx_arg args[] = {VX_MEM(dx->buf), VX_INT(dxoff), VX_INT(g->in[0]), VX_INT(g->in[1]), VX_INT(g->in[2]),
                   VX_INT(g->out[0]), VX_INT(g->out[1]), VX_INT(g->out[2]), VX_INT(v0), VX_INT(nv), VX_INT(z0),
                   VX_INT(nz), VX_MEM(col), VX_INT(0)};
  return vx_launch(ctx, "conv_im2col", g->options, "col2im", 2, gs, NULL, args, VX_NARGS(args));
}

/* y (+)= conv(x, w): per sample, group and chunk one GEMM [Og x CgK3] x [CgK3 x nv]. */
static vx_status conv_fwd(vx_context *ctx, const vx_conv_geom *g, const vx_tensor *x, const vx_tensor *w, vx_tensor *y,
                          int accumulate) {
  vx_status st = VX_OK;
  size_t lda = (size_t)g->Cg * g->K3;
  conv_algo algo = choose_algo(ctx, g, 0);
  if (algo == ALGO_DEPTHWISE) return vx_conv_depthwise_forward(ctx, g, x, w, y, accumulate);
  if (algo == ALGO_DIRECT) return vx_conv_direct_forward(ctx, g, x, w, y, accumulate);
  if (is_pointwise(g)) {
    for (int n = 0; n < g->N && st == VX_OK; n++)
      for (int grp = 0; grp < g->G && st == VX_OK; grp++)
        st = vx_gemm(ctx, 0, 0, (size_t)g->Og, g->S_out, lda, 1.0f, w->buf, w->offset + (size_t)grp * g->Og * lda, lda,
                     x->buf, x->offset + ((size_t)n * g->C + (size_t)grp * g->Cg) * g->S_in, g->S_in,
                     accumulate ? 1.0f : 0.0f, y->buf, y->offset + ((size_t)n * g->O + (size_t)grp * g->Og) * g->S_out,
                     g->S_out);
    return st;
  }
  size_t nv = 0;
  cl_mem col;
  st = chunk_size(ctx, g, &nv, &col);
  for (int n = 0; n < g->N && st == VX_OK; n++)
    for (int grp = 0; grp < g->G && st == VX_OK; grp++)
      for (size_t v0 = 0; v0 < g->S_out && st == VX_OK; v0 += nv) {
        size_t cnt = v0 + nv > g->S_out ? g->S_out - v0 : nv;
        st = im2col(ctx, g, x, n, grp, v0, cnt, col);
        if (st == VX_OK)
          st = vx_gemm(ctx, 0, 0, (size_t)g->Og, cnt, lda, 1.0f, w->buf, w->offset + (size_t)grp * g->Og * lda, lda,
                       col, 0, cnt, accumulate ? 1.0f : 0.0f, y->buf,
                       y->offset + ((size_t)n * g->O + (size_t)grp * g->Og) * g->S_out + v0, g->S_out);
      }
  return st;
}

/* dx (+)= conv^T(dy, w): col = W^T dY per chunk, then a gather into dx. */
static vx_status conv_bwd_data(vx_context *ctx, const vx_conv_geom *g, const vx_tensor *dy, const vx_tensor *w,
                               vx_tensor *dx, int accumulate) {
  vx_status st = VX_OK;
  size_t lda = (size_t)g->Cg * g->K3;
  conv_algo algo = choose_algo(ctx, g, 1);
  if (algo == ALGO_DEPTHWISE) return vx_conv_depthwise_backward_data(ctx, g, dy, w, dx, accumulate);
  if (algo == ALGO_DIRECT) return vx_conv_direct_backward_data(ctx, g, dy, w, dx, accumulate);
  if (is_pointwise(g)) {
    for (int n = 0; n < g->N && st == VX_OK; n++)
      for (int grp = 0; grp < g->G && st == VX_OK; grp++)
        st = vx_gemm(ctx, 1, 0, lda, g->S_out, (size_t)g->Og, 1.0f, w->buf, w->offset + (size_t)grp * g->Og * lda, lda,
                     dy->buf, dy->offset + ((size_t)n * g->O + (size_t)grp * g->Og) * g->S_out, g->S_out,
                     accumulate ? 1.0f : 0.0f, dx->buf,
                     dx->offset + ((size_t)n * g->C + (size_t)grp * g->Cg) * g->S_in, g->S_in);
    return st;
  }
  if (!accumulate) st = vx_tensor_fill(dx, 0.0f);
  size_t nv = 0;
  cl_mem col;
  if (st == VX_OK) st = chunk_size(ctx, g, &nv, &col);
  for (int n = 0; n < g->N && st == VX_OK; n++)
    for (int grp = 0; grp < g->G && st == VX_OK; grp++)
      for (size_t v0 = 0; v0 < g->S_out && st == VX_OK; v0 += nv) {
        size_t cnt = v0 + nv > g->S_out ? g->S_out - v0 : nv;
        st = vx_gemm(ctx, 1, 0, lda, cnt, (size_t)g->Og, 1.0f, w->buf, w->offset + (size_t)grp * g->Og * lda, lda,
                     dy->buf, dy->offset + ((size_t)n * g->O + (size_t)grp * g->Og) * g->S_out + v0, g->S_out, 0.0f,
                     col, 0, cnt);
        if (st == VX_OK) st = col2im(ctx, g, dx, n, grp, v0, cnt, col);
      }
  return st;
}

/* dw (+)= sum over samples and chunks of dY col^T. */
static vx_status conv_bwd_weights(vx_context *ctx, const vx_conv_geom *g, const vx_tensor *x, const vx_tensor *dy,
                                  vx_tensor *dw, int accumulate) {
  vx_status st = VX_OK;
  size_t ldw = (size_t)g->Cg * g->K3;
  int first = !accumulate;
  conv_algo algo = choose_algo(ctx, g, 2);
  if (algo == ALGO_DEPTHWISE) return vx_conv_depthwise_backward_weights(ctx, g, x, dy, dw, accumulate);
  if (algo == ALGO_DIRECT) return vx_conv_direct_backward_weights(ctx, g, x, dy, dw, accumulate);
  if (is_pointwise(g)) {
    for (int n = 0; n < g->N && st == VX_OK; n++, first = 0)
      for (int grp = 0; grp < g->G && st == VX_OK; grp++)
        st = vx_gemm(ctx, 0, 1, (size_t)g->Og, ldw, g->S_out, 1.0f, dy->buf,
                     dy->offset + ((size_t)n * g->O + (size_t)grp * g->Og) * g->S_out, g->S_out, x->buf,
                     x->offset + ((size_t)n * g->C + (size_t)grp * g->Cg) * g->S_in, g->S_in, first ? 0.0f : 1.0f,
                     dw->buf, dw->offset + (size_t)grp * g->Og * ldw, ldw);
    return st;
  }
  size_t nv = 0;
  cl_mem col;
  st = chunk_size(ctx, g, &nv, &col);
  for (int n = 0; n < g->N && st == VX_OK; n++)
    for (size_t v0 = 0; v0 < g->S_out && st == VX_OK; v0 += nv, first = 0)
      for (int grp = 0; grp < g->G && st == VX_OK; grp++) {
        size_t cnt = v0 + nv > g->S_out ? g->S_out - v0 : nv;
        st = im2col(ctx, g, x, n, grp, v0, cnt, col);
        if (st == VX_OK)
          st = vx_gemm(ctx, 0, 1, (size_t)g->Og, ldw, cnt, 1.0f, dy->buf,
                       dy->offset + ((size_t)n * g->O + (size_t)grp * g->Og) * g->S_out + v0, g->S_out, col, 0, cnt,
                       first ? 0.0f : 1.0f, dw->buf, dw->offset + (size_t)grp * g->Og * ldw, ldw);
      }
  return st;
}

static vx_status bias_add(vx_context *ctx, vx_tensor *y, const vx_tensor *b) {
  size_t S = vx_spatial(y), total = y->numel;
  vx_arg args[] = {VX_MEM(y->buf), VX_INT(y->offset), VX_MEM(b->buf), VX_INT(b->offset), VX_INT(y->shape[1]),
                   VX_INT(S), VX_INT(total)};
  return vx_launch(ctx, "conv_im2col", "", "bias_add", 1, &total, NULL, args, VX_NARGS(args));
}

static vx_status bias_grad(vx_context *ctx, const vx_tensor *dy, vx_tensor *db, int accumulate) {
  size_t local = 64, global = (size_t)dy->shape[1] * local;
  vx_arg args[] = {VX_MEM(dy->buf), VX_INT(dy->offset), VX_INT(dy->shape[0]), VX_INT(dy->shape[1]),
                   VX_INT(vx_spatial(dy)), VX_MEM(db->buf), VX_INT(db->offset), VX_INT(accumulate != 0)};
  return vx_launch(ctx, "conv_im2col", "-DRED_WG=64", "bias_grad", 1, &global, &local, args, VX_NARGS(args));
}

static vx_status check_bias(vx_context *ctx, const char *op, const vx_tensor *b, int channels) {
  if (b && b->numel != (size_t)channels)
    return vx_fail(ctx, VX_ERR_SHAPE, "%s: bias has %zu elements, expected %d (one per output channel)", op, b->numel,
                   channels);
  return VX_OK;
}

/* ---------------------------------------------------------------- public: convolution */
vx_status vx_conv3d_forward(vx_context *ctx, const vx_tensor *x, const vx_tensor *w, const vx_tensor *b,
                            const vx_conv_params *p, vx_tensor *y) {
  vx_conv_geom g;
  vx_status st = make_geom(ctx, "conv3d_forward", x, "input", w, y, "output", p, 0, &g);
  if (st == VX_OK) st = check_bias(ctx, "conv3d_forward", b, g.O);
  if (st == VX_OK) st = conv_fwd(ctx, &g, x, w, y, 0);
  if (st == VX_OK && b) st = bias_add(ctx, y, b);
  return st;
}

vx_status vx_conv3d_backward_data(vx_context *ctx, const vx_tensor *dy, const vx_tensor *w, const vx_conv_params *p,
                                  vx_tensor *dx, int accumulate) {
  vx_conv_geom g;
  vx_status st = make_geom(ctx, "conv3d_backward_data", dx, "input gradient", w, dy, "output gradient", p, 0, &g);
  if (st == VX_OK) st = conv_bwd_data(ctx, &g, dy, w, dx, accumulate);
  return st;
}

vx_status vx_conv3d_backward_weights(vx_context *ctx, const vx_tensor *x, const vx_tensor *dy,
                                     const vx_conv_params *p, vx_tensor *dw, vx_tensor *db, int accumulate) {
  vx_conv_geom g;
  vx_status st = make_geom(ctx, "conv3d_backward_weights", x, "input", dw, dy, "output gradient", p, 0, &g);
  if (st == VX_OK) st = check_bias(ctx, "conv3d_backward_weights", db, g.O);
  if (st == VX_OK) st = conv_bwd_weights(ctx, &g, x, dy, dw, accumulate);
  if (st == VX_OK && db) st = bias_grad(ctx, dy, db, accumulate);
  return st;
}

/* ---------------------------------------------------------------- public: transposed */
vx_status vx_conv_transpose3d_forward(vx_context *ctx, const vx_tensor *x, const vx_tensor *w, const vx_tensor *b,
                                      const vx_conv_params *p, vx_tensor *y) {
  vx_conv_geom g; /* the conv that maps y -> x */
  vx_status st = make_geom(ctx, "conv_transpose3d_forward", y, "output", w, x, "input", p, 1, &g);
  if (st == VX_OK) st = check_bias(ctx, "conv_transpose3d_forward", b, g.C);
  if (st == VX_OK) st = conv_bwd_data(ctx, &g, x, w, y, 0);
  if (st == VX_OK && b) st = bias_add(ctx, y, b);
  return st;
}

vx_status vx_conv_transpose3d_backward_data(vx_context *ctx, const vx_tensor *dy, const vx_tensor *w,
                                            const vx_conv_params *p, vx_tensor *dx, int accumulate) {
  vx_conv_geom g;
  vx_status st = make_geom(ctx, "conv_transpose3d_backward_data", dy, "output gradient", w, dx, "input gradient", p,
                           1, &g);
  if (st == VX_OK) st = conv_fwd(ctx, &g, dy, w, dx, accumulate);
  return st;
}

vx_status vx_conv_transpose3d_backward_weights(vx_context *ctx, const vx_tensor *x, const vx_tensor *dy,
                                               const vx_conv_params *p, vx_tensor *dw, vx_tensor *db,
                                               int accumulate) {
  vx_conv_geom g;
  vx_status st = make_geom(ctx, "conv_transpose3d_backward_weights", dy, "output gradient", dw, x, "input", p, 1, &g);
  if (st == VX_OK) st = check_bias(ctx, "conv_transpose3d_backward_weights", db, g.C);
  if (st == VX_OK) st = conv_bwd_weights(ctx, &g, dy, x, dw, accumulate);
  if (st == VX_OK && db) st = bias_grad(ctx, dy, db, accumulate);
  return st;
}
