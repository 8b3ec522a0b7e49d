/* Internal view of a tensor: ops read the fields directly. */
#ifndef VX_TENSOR_H
#define VX_TENSOR_H

#include "runtime/runtime.h"

struct vx_tensor {
  vx_context *ctx;
  cl_mem buf;
  size_t offset;      /* in floats */
  int shape[5];       /* N, C, D, H, W */
  size_t numel;
  size_t alloc_bytes; /* > 0 when this tensor owns buf */
};

/* Spatial voxel count D*H*W. */
static inline size_t vx_spatial(const vx_tensor *t) {
  return (size_t)t->shape[2] * (size_t)t->shape[3] * (size_t)t->shape[4];
}

/* "[N, C, D, H, W]" into buf, for messages. */
const char *vx_shape_str(const vx_tensor *t, char *buf, size_t len);

/* Checks that t is not NULL and has exactly the given shape; -1 entries match anything. */
vx_status vx_check_shape(vx_context *ctx, const char *op, const char *arg, const vx_tensor *t,
                         const int expect[5]);

#endif
