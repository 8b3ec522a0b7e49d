/* The training step: forward -> Dice+CE loss -> backward -> one optimiser launch over the flat
 * parameter buffer. */
#include <math.h>
#include <stdlib.h>

#include "nn/nn.h"

struct vx_trainer {
  vx_unet3d *net;
  vx_context *ctx;
  vx_trainer_config cfg;
  vx_tensor *dlogits, *m, *v; /* v unused by SGD */
  int step;
};

void vx_trainer_config_init(vx_trainer_config *c) {
  c->optimizer = VX_OPT_ADAM;
  c->lr = 1e-3f;
  c->beta1 = 0.9f;
  c->beta2 = 0.999f;
  c->eps = 1e-8f;
  c->weight_decay = 0.0f;
  c->momentum = 0.99f;
  c->nesterov = 1;
  vx_loss_params_init(&c->loss);
}

void vx_trainer_destroy(vx_trainer *tr) {
  if (!tr) return;
  vx_tensor_destroy(tr->dlogits);
  vx_tensor_destroy(tr->m);
  vx_tensor_destroy(tr->v);
  free(tr);
}

vx_status vx_trainer_create(vx_unet3d *net, const vx_trainer_config *cfg, vx_trainer **out) {
  if (!net || !out) return VX_ERR_INVALID_ARGUMENT;
  *out = NULL;
  vx_trainer *tr = calloc(1, sizeof *tr);
  if (!tr) return VX_ERR_OUT_OF_MEMORY;
  tr->net = net;
  tr->ctx = vx_unet3d_parameters(net)->ctx;
  if (cfg) tr->cfg = *cfg;
  else vx_trainer_config_init(&tr->cfg);
  const vx_tensor *p = vx_unet3d_parameters(net);
  vx_status st = vx_tensor_create(tr->ctx, vx_unet3d_output(net)->shape, &tr->dlogits);
  if (st == VX_OK) st = vx_tensor_create(tr->ctx, p->shape, &tr->m);
  if (st == VX_OK) st = vx_tensor_fill(tr->m, 0.0f);
  if (st == VX_OK && tr->cfg.optimizer != VX_OPT_SGD) st = vx_tensor_create(tr->ctx, p->shape, &tr->v);
  if (st == VX_OK && tr->v) st = vx_tensor_fill(tr->v, 0.0f);
  if (st != VX_OK) { vx_trainer_destroy(tr); return st; }
  *out = tr;
  return VX_OK;
}

vx_status vx_trainer_step(vx_trainer *tr, const vx_tensor *x, const vx_tensor *labels, float lr, float *loss) {
  vx_status st = vx_unet3d_forward(tr->net, x);
  if (st == VX_OK) st = vx_loss_dice_ce(tr->ctx, vx_unet3d_output(tr->net), labels, &tr->cfg.loss, loss, tr->dlogits);
  if (st != VX_OK) return st; /* a non-finite loss stops here, before the weights change */
  st = vx_unet3d_backward(tr->net, tr->dlogits);
  if (st != VX_OK) return st;
  tr->step++;
  vx_tensor *p = vx_unet3d_parameters(tr->net), *g = vx_unet3d_gradients(tr->net);
  const vx_trainer_config *c = &tr->cfg;
  if (c->optimizer == VX_OPT_SGD) return vx_sgd_step(tr->ctx, p, g, tr->m, lr, c->momentum, c->nesterov, c->weight_decay);
  return vx_adam_step(tr->ctx, p, g, tr->m, tr->v, tr->step, lr, c->beta1, c->beta2, c->eps, c->weight_decay,
                      c->optimizer == VX_OPT_ADAMW);
}
