/* Internal side of the predictor: building one from a network in training. */
#ifndef VX_PREDICTOR_H
#define VX_PREDICTOR_H
#include "voxcl.h"

/* A predictor with trained's configuration and a copy of its weights, for patches of 'patch'. */
vx_status vx_predictor_for_network(vx_model *trained, const int patch[3], vx_predictor **out);
/* Copies trained's current weights in. */
vx_status vx_predictor_sync(vx_predictor *p, vx_model *trained);
/* Sliding-window probabilities of an already normalised image [C, D, H, W] (dims D, H, W). */
vx_status vx_predictor_run(vx_predictor *p, const float *image, const int dims[3], float overlap, int mirror,
                           float *probs, vx_progress_fn progress, void *user, char *err, size_t errlen);
#endif
