/* Coupling blocks of the invertible networks (memcnn / iUNet style) and the sub-network
 * interface they are built from.
 *
 * A block splits the channels of x [N, C, ...] into halves (x1, x2) and computes
 *   additive:  y1 = x1 + F(x2);  y2 = x2 + G(y1)
 *   affine:    y1 = x1 + F(x2);  [s; t] = G(y1);  y2 = x2 * exp(tanh s) + t
 * (tanh bounds the log-scale to [-1, 1]: every block's inverse is conditioned by at most e;
 * G's last norm weight starts at zero, so an affine block starts as y2 = x2).
 * Everything works IN PLACE on one buffer: forward overwrites x with y, inverse y with x, and
 * backward turns (y, dL/dy) into (x, dL/dx) by rebuilding x with the inverse and recomputing F
 * and G, so a stack of blocks keeps no activation of its own. Samples are processed one at a
 * time (the halves of one sample are contiguous), and all blocks of a network share one
 * scratch region whose size depends on the widest block, never on the depth. */
#ifndef VX_NN_COUPLING_H
#define VX_NN_COUPLING_H

#include "nn/model.h"

/* A view (by value, owns nothing) of 'base' starting 'off' floats in, with 'shape'. */
static inline vx_tensor vx_view_at(const vx_tensor *base, size_t off, const int shape[5]) {
  vx_tensor v = *base;
  v.offset = base->offset + off;
  for (int i = 0; i < 5; i++) v.shape[i] = shape[i];
  v.numel = (size_t)shape[0] * shape[1] * shape[2] * shape[3] * shape[4];
  v.alloc_bytes = 0;
  return v;
}

/* ---------------------------------------------------------------- shared scratch
 * One arena tensor cut into slots: four hidden slots (conv / norm outputs and gradients of a
 * sub-network), two output slots (F or G's output and, affine, its gradient), the norm
 * statistics. Networks may use the whole region as they like between coupling calls. */
typedef struct {
  vx_tensor *raw; /* [1, 1, 1, 1, total], declared by vx_coupling_scratch_declare */
  size_t hid, out, save, total;
} vx_coupling_scratch;

/* Grows the slot sizes for a sub-network on [1, channels..., spatial] data. */
void vx_coupling_scratch_need(vx_coupling_scratch *sc, int hidden_ch, int out_ch, size_t spatial);
/* Declares the region: at least the slots' total and at least min_floats. */
void vx_coupling_scratch_declare(vx_coupling_scratch *sc, vx_arena *a, size_t min_floats);

/* ---------------------------------------------------------------- sub-networks */
typedef struct vx_subnet vx_subnet;
typedef struct {
  /* out = S(in) for one sample: in [1, Cin, D, H, W], out [1, Cout, D, H, W]. */
  vx_status (*forward)(vx_subnet *s, const vx_tensor *in, vx_tensor *out);
  /* din += J_S(in)^T dout; every parameter gradient += its share. Valid right after
   * forward(in, out) with no other use of the shared scratch in between (callers order their
   * calls so: this is what lets F and G share one scratch). dout is not modified. */
  vx_status (*backward)(vx_subnet *s, const vx_tensor *in, const vx_tensor *out, const vx_tensor *dout,
                        vx_tensor *din);
} vx_subnet_ops;
struct vx_subnet {
  const vx_subnet_ops *ops;
};

/* The default sub-network (iUNet): [Conv3 (no bias) -> InstanceNorm (affine) -> LeakyReLU] x 2. */
typedef struct {
  vx_subnet base;
  vx_context *ctx;
  int cin, chid, cout;
  float slope;
  vx_coupling_scratch *sc;
  vx_tensor *w[2], *gamma[2], *beta[2], *dw[2], *dgamma[2], *dbeta[2];
} vx_conv_subnet;

/* Declares the sub-network's parameters ("<prefix>.conv0.weight", "<prefix>.norm0.weight", ...)
 * and its scratch needs for 'spatial' voxels; notes its layers when m is not NULL. */
void vx_conv_subnet_declare(vx_conv_subnet *s, vx_context *ctx, vx_param_set *ps, vx_coupling_scratch *sc,
                            const char *prefix, int cin, int chid, int cout, float slope, vx_model *m,
                            const int out_shape[5]);

/* ---------------------------------------------------------------- coupling blocks */
typedef enum { VX_COUPLING_ADDITIVE = 0, VX_COUPLING_AFFINE = 1 } vx_coupling_kind;

typedef struct {
  vx_coupling_kind kind;
  int channels; /* C (even); F: C/2 -> C/2, G: C/2 -> C/2 (additive) or C (affine: [s; t]) */
  vx_context *ctx;
  vx_coupling_scratch *sc;
  vx_conv_subnet f, g; /* the default sub-networks */
  vx_subnet *F, *G;    /* point at f and g; any other vx_subnet may be plugged in */
} vx_coupling;

/* Declares a block with default sub-networks "<prefix>.F" and "<prefix>.G" for x of shape
 * [N, C, D, H, W] (shape[1] = C, even). m (may be NULL) receives layer notes. */
void vx_coupling_declare(vx_coupling *b, vx_context *ctx, vx_param_set *ps, vx_coupling_scratch *sc,
                         const char *prefix, vx_coupling_kind kind, const int shape[5], float slope, vx_model *m);

/* x [N, C, ...] -> y, in place. */
vx_status vx_coupling_forward(vx_coupling *b, vx_tensor *x);
/* y -> x, in place. */
vx_status vx_coupling_inverse(vx_coupling *b, vx_tensor *y);
/* Memory-free backward: y -> x (rebuilt), dy -> dx (both in place); parameter gradients added. */
vx_status vx_coupling_backward(vx_coupling *b, vx_tensor *y, vx_tensor *dy);

/* Stacks of n blocks (applied in order 0..n-1; inverse and backward in reverse). */
vx_status vx_coupling_stack_forward(vx_coupling *b, int n, vx_tensor *x);
vx_status vx_coupling_stack_inverse(vx_coupling *b, int n, vx_tensor *y);
vx_status vx_coupling_stack_backward(vx_coupling *b, int n, vx_tensor *y, vx_tensor *dy);

/* ---------------------------------------------------------------- elementwise ops (src/ops/invres_ops.c) */
/* x2 <- x2 * exp(tanh s) + t (inverse: (x2 - t) * exp(-tanh s)); st: [s; t], 2 * numel(x2) floats. */
vx_status vx_affine_coupling_apply(vx_context *ctx, vx_tensor *x2, const vx_tensor *st, int inverse);
/* From the rebuilt x2 and g = dL/dy2: gst = [dL/ds; dL/dt], g <- dL/dx2 (in place). */
vx_status vx_affine_coupling_backward(vx_context *ctx, const vx_tensor *x2, const vx_tensor *st, vx_tensor *g,
                                      vx_tensor *gst);
/* y = softplus(x) = log(1 + e^x); the backward dx (+)= dy * sigmoid(x). */
vx_status vx_softplus_forward(vx_context *ctx, const vx_tensor *x, vx_tensor *y);
vx_status vx_softplus_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *dy, vx_tensor *dx,
                               int accumulate);

#endif
