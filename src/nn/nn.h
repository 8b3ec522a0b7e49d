/* Shared machinery of networks: a flat parameter set and an activation arena, both declared
 * first (shapes only) and allocated once, so a network's memory is known before it runs. */
#ifndef VX_NN_H
#define VX_NN_H

#include "tensor.h"

typedef enum { VX_INIT_ZERO, VX_INIT_ONE, VX_INIT_KAIMING } vx_init;

#define VX_MAX_DECL 4096

typedef struct {
  char name[64];     /* parameter name in checkpoints (PyTorch-like dotted path) */
  vx_tensor **view;  /* where to store the view once allocated */
  vx_tensor **gview; /* gradient view (params only; may be NULL) */
  int shape[5];
  size_t offset, numel;
  vx_init init;
  int fan_in;
  float slope;
} vx_decl;

/* Parameters and their gradients: two flat buffers [1,1,1,1,count]. */
typedef struct {
  vx_context *ctx;
  uint64_t seed;
  vx_decl decl[VX_MAX_DECL];
  int n;
  size_t count;
  vx_tensor *flat, *flat_grad;
  int overflow;
} vx_param_set;

void vx_params_init(vx_param_set *ps, vx_context *ctx, uint64_t seed);
/* Declares one parameter tensor; kaiming uses std = gain / sqrt(fan_in), gain for LeakyReLU(slope). */
void vx_params_declare(vx_param_set *ps, const char *name, vx_tensor **view, vx_tensor **grad, const int shape[5],
                       vx_init init, int fan_in, float slope);
/* The parameter set of a network (for checkpoints). */
vx_param_set *vx_unet3d_param_set(vx_unet3d *net);
const vx_unet3d_config *vx_unet3d_get_config(const vx_unet3d *net);
/* Allocates both buffers, creates the views and initialises the values (host RNG, one upload). */
vx_status vx_params_allocate(vx_param_set *ps);
void vx_params_release(vx_param_set *ps);

/* Activations: a view per declared tensor into as few device buffers as the device's largest
 * allocation allows (one when it fits; PoCL caps a buffer at a quarter of memory, 2 GiB here). */
#define VX_ARENA_MAX_BUFS 64
typedef struct {
  vx_context *ctx;
  vx_decl decl[VX_MAX_DECL];
  int n;
  size_t count; /* floats over all declarations, alignment included */
  vx_tensor *bufs[VX_ARENA_MAX_BUFS];
  int nbufs;
  int overflow;
} vx_arena;

void vx_arena_init(vx_arena *a, vx_context *ctx);
void vx_arena_declare(vx_arena *a, vx_tensor **view, const int shape[5]);
vx_status vx_arena_allocate(vx_arena *a);
void vx_arena_release(vx_arena *a);

/* Deterministic RNG (splitmix64) and a standard normal sample. */
uint64_t vx_rng_next(uint64_t *state);
double vx_rng_uniform(uint64_t *state);
double vx_rng_normal(uint64_t *state);


#endif
