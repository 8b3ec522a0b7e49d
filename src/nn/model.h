/* The inside of a vx_model: a small vtable over one network implementation, plus what every
 * network has (configuration, planned input shape, a flat parameter set, a set of saved
 * non-trained state such as running statistics, an activation arena, the logits).
 *
 * Contract for implementations (src/nn/<network>.c):
 * - create(m): must not touch device memory (nothing is allocated yet; vx_model_plan stops after
 *   it). Fill m->impl, declare parameters into m->params (trained), running statistics
 *   and other saved-but-not-trained tensors into m->state, activations into m->arena, set
 *   m->output; the generic code allocates params, state and arena afterwards (so a failure
 *   leaves nothing behind) and then calls init (may be NULL) for values beyond the declared
 *   initialisers.
 * - forward: inference (batch norms use running statistics).
 * - train_step: training forward, loss (vx_loss_dice_ce with the given params plus the network's
 *   own terms), backward. The gradient buffer is zero when it is called (the generic code fills
 *   it): every parameter gradient must be ACCUMULATED (accumulate = 1), so that a parameter
 *   used twice (DualNorm's two passes, coupling recomputation) sums correctly.
 * - destroy_impl: frees m->impl only (params, state, arena are released by the generic code). */
#ifndef VX_NN_MODEL_H
#define VX_NN_MODEL_H

#include "nn/nn.h"

typedef struct {
  const char *name;
  vx_status (*create)(vx_model *m);
  vx_status (*init)(vx_model *m); /* may be NULL */
  vx_status (*forward)(vx_model *m, const vx_tensor *x);
  vx_status (*train_step)(vx_model *m, const vx_tensor *x, const vx_tensor *labels, const vx_loss_params *lp,
                          float *loss);
  void (*destroy_impl)(vx_model *m);
} vx_model_ops;

struct vx_model {
  const vx_model_ops *ops;
  vx_context *ctx;
  vx_model_config cfg;
  int in_shape[5];
  vx_param_set params; /* trained parameters and their gradients */
  vx_param_set state;  /* saved, not trained (running mean/var ...): declared with grad = NULL */
  vx_arena arena;      /* activations and scratch */
  vx_tensor *output;   /* logits [N, classes, D, H, W], a view into the arena */
  void *impl;
  int plan_only;       /* vx_model_plan: declared, nothing allocated, forward/train refused */
  vx_layer_info *layers; /* what create noted with vx_model_note_layer (for `voxcl model info`) */
  int nlayers, cap_layers;
};

/* Records one layer for descriptions: PyTorch-style name, type, a short detail ("32->64 k3 s2"),
 * its output shape [N, C, D, H, W] (batch ignored) and its parameter count. Call from create. */
void vx_model_note_layer(vx_model *m, const char *name, const char *type, const char *detail, const int out_shape[5],
                         size_t params);

/* The implementations, registered in model.c. */
extern const vx_model_ops vx_unet3d_model_ops;
extern const vx_model_ops vx_dualnorm_unet_ops;
extern const vx_model_ops vx_invres_partial_ops;
extern const vx_model_ops vx_invres_full_ops;
extern const vx_model_ops vx_uxnet_ops;

/* The generic handle of a U-Net built with vx_unet3d_create. */
vx_model *vx_unet3d_model(vx_unet3d *net);
/* The U-Net's own configuration from the generic one (the fields they share). */
void vx_unet3d_config_from_model(const vx_model_config *mc, vx_unet3d_config *c);

/* Refuses an input whose spatial sizes are not positive multiples of f (naming the network). */
vx_status vx_model_check_multiple(vx_model *m, int f);

#endif
