/* 5-D NCDHW float32 tensors: a device buffer + an offset (in floats) + a shape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor.h"

const char *vx_shape_str(const vx_tensor *t, char *buf, size_t len) {
  if (!t) snprintf(buf, len, "(null)");
  else snprintf(buf, len, "[%d, %d, %d, %d, %d]", t->shape[0], t->shape[1], t->shape[2], t->shape[3], t->shape[4]);
  return buf;
}

vx_status vx_check_shape(vx_context *ctx, const char *op, const char *arg, const vx_tensor *t, const int e[5]) {
  if (!t) return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, arg);
  for (int i = 0; i < 5; i++) {
    if (e[i] >= 0 && t->shape[i] != e[i]) {
      char got[96];
      return vx_fail(ctx, VX_ERR_SHAPE, "%s: %s has shape %s, expected [%d, %d, %d, %d, %d] (-1 = any)", op, arg,
                     vx_shape_str(t, got, sizeof got), e[0], e[1], e[2], e[3], e[4]);
    }
  }
  return VX_OK;
}

/* prod(s), or 0 when it or its size in bytes does not fit a size_t (dims must be > 0). */
static size_t numel_of(const int s[5]) {
  size_t n = 1;
  for (int i = 0; i < 5; i++) {
    if (n > SIZE_MAX / sizeof(float) / (size_t)s[i]) return 0;
    n *= (size_t)s[i];
  }
  return n;
}

vx_status vx_tensor_create(vx_context *ctx, const int shape[5], vx_tensor **out) {
  if (!ctx || !shape || !out) return VX_ERR_INVALID_ARGUMENT;
  *out = NULL;
  for (int i = 0; i < 5; i++)
    if (shape[i] <= 0)
      return vx_fail(ctx, VX_ERR_INVALID_ARGUMENT, "vx_tensor_create: dimension %d is %d, expected > 0", i, shape[i]);
  vx_tensor *t = calloc(1, sizeof *t);
  if (!t) return VX_ERR_OUT_OF_MEMORY;
  t->ctx = ctx;
  memcpy(t->shape, shape, sizeof t->shape);
  t->numel = numel_of(shape);
  if (!t->numel) {
    free(t);
    return vx_fail(ctx, VX_ERR_OUT_OF_MEMORY, "vx_tensor_create: [%d, %d, %d, %d, %d] floats do not fit in memory",
                   shape[0], shape[1], shape[2], shape[3], shape[4]);
  }
  t->alloc_bytes = t->numel * sizeof(float);
  vx_status st = vx_buffer_alloc(ctx, t->alloc_bytes, &t->buf);
  if (st != VX_OK) { free(t); return st; }
  *out = t;
  return VX_OK;
}

vx_status vx_tensor_view(const vx_tensor *base, size_t offset, const int shape[5], vx_tensor **out) {
  if (!base || !shape || !out) return VX_ERR_INVALID_ARGUMENT;
  *out = NULL;
  for (int i = 0; i < 5; i++)
    if (shape[i] <= 0)
      return vx_fail(base->ctx, VX_ERR_INVALID_ARGUMENT, "vx_tensor_view: dimension %d is %d, expected > 0", i,
                     shape[i]);
  size_t n = numel_of(shape);
  if (n == 0 || offset > base->numel || n > base->numel - offset) /* no wrap-around */
    return vx_fail(base->ctx, VX_ERR_SHAPE, "vx_tensor_view: %zu elements at offset %zu exceed the base's %zu", n,
                   offset, base->numel);
  vx_tensor *t = calloc(1, sizeof *t);
  if (!t) return VX_ERR_OUT_OF_MEMORY;
  t->ctx = base->ctx;
  t->buf = base->buf;
  t->offset = base->offset + offset;
  memcpy(t->shape, shape, sizeof t->shape);
  t->numel = n;
  *out = t;
  return VX_OK;
}

void vx_tensor_destroy(vx_tensor *t) {
  if (!t) return;
  if (t->alloc_bytes) vx_buffer_free(t->ctx, t->buf, t->alloc_bytes);
  free(t);
}

const int *vx_tensor_shape(const vx_tensor *t) { return t->shape; }
size_t vx_tensor_numel(const vx_tensor *t) { return t->numel; }

vx_status vx_tensor_upload(vx_tensor *t, const float *host) {
  cl_int err = clEnqueueWriteBuffer(t->ctx->queue, t->buf, CL_TRUE, t->offset * sizeof(float),
                                    t->numel * sizeof(float), host, 0, NULL, NULL);
  return err == CL_SUCCESS ? VX_OK : vx_cl_fail(t->ctx, err, "uploading a tensor");
}

vx_status vx_tensor_download(const vx_tensor *t, float *host) {
  cl_int err = clEnqueueReadBuffer(t->ctx->queue, t->buf, CL_TRUE, t->offset * sizeof(float),
                                   t->numel * sizeof(float), host, 0, NULL, NULL);
  return err == CL_SUCCESS ? VX_OK : vx_cl_fail(t->ctx, err, "downloading a tensor");
}

vx_status vx_tensor_fill(vx_tensor *t, float value) {
  /* clEnqueueFillBuffer is OpenCL 1.2; a kernel keeps one path for every device. */
  size_t g = t->numel;
  vx_arg args[] = {VX_MEM(t->buf), VX_INT(t->offset), VX_INT(t->numel), VX_FLOAT(value)};
  return vx_launch(t->ctx, "eltwise", "", "fill", 1, &g, NULL, args, VX_NARGS(args));
}

vx_status vx_tensor_copy(vx_tensor *dst, const vx_tensor *src) {
  if (dst->numel != src->numel)
    return vx_fail(dst->ctx, VX_ERR_SHAPE, "vx_tensor_copy: %zu elements into %zu", src->numel, dst->numel);
  cl_int err = clEnqueueCopyBuffer(dst->ctx->queue, src->buf, dst->buf, src->offset * sizeof(float),
                                   dst->offset * sizeof(float), src->numel * sizeof(float), 0, NULL, NULL);
  return err == CL_SUCCESS ? VX_OK : vx_cl_fail(dst->ctx, err, "copying a tensor");
}
