/* voxcl: 3D segmentation networks on any OpenCL device.
 *
 * The whole public C API. Every handle is opaque; every function returns a vx_status (or a
 * value documented otherwise) and never exits or aborts. When a call on a context fails,
 * vx_context_last_error() holds a message that names what was asked and what was found.
 *
 * Tensors are 5-D NCDHW float32 arrays on the device. A tensor is a buffer + offset + shape,
 * always contiguous; views share the buffer of their base (see vx_tensor_view).
 *
 * Ownership: a function that returns a handle through an out-pointer transfers ownership to
 * the caller, who releases it with the matching *_destroy. Strings returned as const char *
 * belong to the library and live as long as the object they come from. */
#ifndef VOXCL_H
#define VOXCL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(VOXCL_BUILDING)
#define VX_API __attribute__((visibility("default")))
#else
#define VX_API
#endif

/* ---------------------------------------------------------------- status */
typedef enum {
  VX_OK = 0,
  VX_ERR_INVALID_ARGUMENT, /* an argument makes no sense (negative padding, NULL, ...) */
  VX_ERR_SHAPE,            /* tensor shapes do not fit together */
  VX_ERR_NO_DEVICE,        /* no OpenCL device matches the request */
  VX_ERR_OPENCL,           /* an OpenCL call failed */
  VX_ERR_BUILD,            /* a kernel failed to compile; the message has options and log */
  VX_ERR_OUT_OF_MEMORY,    /* host or device memory exhausted */
  VX_ERR_IO,               /* a file could not be opened, read or written */
  VX_ERR_FORMAT,           /* a file's content is corrupt or not what was expected */
  VX_ERR_GEMM,             /* CLBlast reported an error */
  VX_ERR_NOT_FINITE,       /* a loss or value became NaN or infinite */
  VX_ERR_UNSUPPORTED       /* a valid request that this build cannot serve */
} vx_status;

/* A short, static description of a status code. */
VX_API const char *vx_status_string(vx_status s);

/* ---------------------------------------------------------------- devices */
typedef struct {
  int platform, device;          /* indices; written "P:D" */
  char name[256];
  char vendor[256];
  char platform_name[256];
  char driver_version[128];
  char opencl_version[128];
  int is_gpu, is_cpu;
  unsigned compute_units;
  uint64_t global_mem_bytes;
  uint64_t local_mem_bytes;
  uint64_t max_alloc_bytes;
  int fp16, fp64;
} vx_device_info;

/* Lists every device of every platform. *out is malloc'ed (free with vx_free); *count may be 0.
 * errbuf (may be NULL) receives a message when the call fails. */
VX_API vx_status vx_devices_list(vx_device_info **out, int *count, char *errbuf, size_t errlen);

/* Resolves a device request against a list: "P:D", "gpu", "cpu", "any", or a case-insensitive
 * substring of the name. NULL or "" means the default: the first GPU, else the first CPU, else
 * the first device. On no match, errbuf lists the devices found. */
VX_API vx_status vx_device_resolve(const vx_device_info *devs, int count, const char *request,
                                   int *index, char *errbuf, size_t errlen);

VX_API void vx_free(void *p);

/* ---------------------------------------------------------------- context */
typedef struct vx_context vx_context;

typedef struct {
  const char *device;       /* request as for vx_device_resolve; NULL: $VOXCL_DEVICE, else default */
  const char *cache_dir;    /* NULL: $VOXCL_CACHE_DIR, else $XDG_CACHE_HOME/voxcl, else ~/.cache/voxcl;
                               "off" disables the on-disk program cache */
  size_t workspace_bytes;   /* budget for im2col and other scratch; 0: 256 MiB or 1/8 of the device */
  int verbose;              /* 1: log kernel builds and cache use to stderr */
} vx_context_options;

/* Creates a context that owns all state: device, queue, program cache, scratch memory.
 * opts may be NULL. On failure *out is NULL and errbuf (may be NULL) holds the message. */
VX_API vx_status vx_context_create(const vx_context_options *opts, vx_context **out,
                                   char *errbuf, size_t errlen);
VX_API void vx_context_destroy(vx_context *ctx);
/* The message of the last failed call on this context ("" if none). */
VX_API const char *vx_context_last_error(const vx_context *ctx);
VX_API const vx_device_info *vx_context_device(const vx_context *ctx);
/* Waits for all queued device work. */
VX_API vx_status vx_context_finish(vx_context *ctx);

typedef struct {
  int programs_built;        /* compiled from source */
  int programs_from_disk;    /* loaded from the on-disk cache */
  int programs_from_memory;  /* served from the in-memory cache */
  int disk_entries_rejected; /* corrupt or stale entries ignored and rebuilt */
  double build_seconds;      /* time spent in clBuildProgram (source or binary) */
  uint64_t device_bytes_in_use, device_bytes_peak;
} vx_context_stats;
VX_API void vx_context_get_stats(const vx_context *ctx, vx_context_stats *stats);
/* Starts a new peak measurement: device_bytes_peak = device_bytes_in_use. */
VX_API void vx_context_reset_peak(vx_context *ctx);
/* With VOXCL_PROFILE=1 in the environment every launch is timed (serialising the queue); this
 * writes a table of time per kernel, largest first, into buf and returns its length. */
VX_API size_t vx_context_profile_report(const vx_context *ctx, char *buf, size_t len);
/* The directory of the on-disk program cache, or NULL when disabled. */
VX_API const char *vx_context_cache_dir(const vx_context *ctx);

/* Measures the device's fp32 FMA rate (GFLOP/s) and copy bandwidth (GB/s, read + write) with
 * simple kernels: the reference for every benchmark's "fraction of peak". Takes about a second. */
VX_API vx_status vx_device_measure_peak(vx_context *ctx, double *gflops, double *gbps);

/* CLBlast tuning for the context's device: times sgemm (size^3, 0: 1024) with the parameters in
 * force, then with each candidate Xgemm configuration, applies the fastest and, when it beats
 * what was in force, saves it beside the program cache (one file per device and driver) so that
 * every later context uses it. max_seconds > 0 stops the search then (candidates are ordered
 * likeliest first). progress (may be NULL) after each candidate. */
typedef struct {
  int candidates, improved;
  double before_gflops, after_gflops;
  char saved_to[1200]; /* "" when not saved (no improvement or the cache is off) */
} vx_tune_result;
typedef void (*vx_tune_progress_fn)(void *user, int done, int total, double gflops, double best_gflops);
VX_API vx_status vx_gemm_tune(vx_context *ctx, int size, double max_seconds, vx_tune_progress_fn progress,
                              void *user, vx_tune_result *out, char *errbuf, size_t errlen);

/* Compiles an embedded kernel file (name without .cl) with the given options; used by tests
 * and tools to check that every kernel builds. */
VX_API vx_status vx_context_build_kernel_file(vx_context *ctx, const char *file, const char *options);
/* The names of the embedded kernel files, NULL-terminated. */
VX_API const char *const *vx_kernel_file_names(void);

/* ---------------------------------------------------------------- tensors */
typedef struct vx_tensor vx_tensor;

/* Allocates a contiguous NCDHW tensor (uninitialised). */
VX_API vx_status vx_tensor_create(vx_context *ctx, const int shape[5], vx_tensor **out);
/* A view of 'count' elements of base starting at element 'offset', with the given shape
 * (prod(shape) elements). The view shares the buffer; destroy it before its base. */
VX_API vx_status vx_tensor_view(const vx_tensor *base, size_t offset, const int shape[5],
                                vx_tensor **out);
VX_API void vx_tensor_destroy(vx_tensor *t);
VX_API const int *vx_tensor_shape(const vx_tensor *t);
VX_API size_t vx_tensor_numel(const vx_tensor *t);
VX_API vx_status vx_tensor_upload(vx_tensor *t, const float *host);
VX_API vx_status vx_tensor_download(const vx_tensor *t, float *host);
VX_API vx_status vx_tensor_fill(vx_tensor *t, float value);
VX_API vx_status vx_tensor_copy(vx_tensor *dst, const vx_tensor *src);

/* ---------------------------------------------------------------- ops */
typedef enum { VX_ACT_NONE = 0, VX_ACT_RELU = 1, VX_ACT_LEAKY_RELU = 2 } vx_activation;

typedef struct {
  int stride[3], padding[3], dilation[3];
  int output_padding[3]; /* transposed convolution only */
  int groups;
} vx_conv_params;
/* Fills p with stride s, padding pad, dilation 1, groups 1 along all three axes. */
VX_API void vx_conv_params_init(vx_conv_params *p, int stride, int pad);

/* Conv3d. x: [N, C, D, H, W]; w: [O, C/groups, kD, kH, kW] (PyTorch OIDHW); b: [O] or NULL;
 * y: [N, O, D', H', W'] with D' = (D + 2p - dil*(k-1) - 1) / s + 1. */
VX_API vx_status vx_conv3d_forward(vx_context *ctx, const vx_tensor *x, const vx_tensor *w,
                                   const vx_tensor *b, const vx_conv_params *p, vx_tensor *y);
/* dx = dL/dx; with accumulate != 0 it is added to dx's content. */
VX_API vx_status vx_conv3d_backward_data(vx_context *ctx, const vx_tensor *dy, const vx_tensor *w,
                                         const vx_conv_params *p, vx_tensor *dx, int accumulate);
/* dw (and db when not NULL) = dL/dw, dL/db; with accumulate != 0 added to their content. */
VX_API vx_status vx_conv3d_backward_weights(vx_context *ctx, const vx_tensor *x, const vx_tensor *dy,
                                            const vx_conv_params *p, vx_tensor *dw, vx_tensor *db,
                                            int accumulate);
/* Output spatial size of a convolution along one axis (<= 0 when impossible). */
VX_API int vx_conv_output_size(int in, int k, int stride, int pad, int dil);

/* ConvTranspose3d. x: [N, C, D, H, W]; w: [C, O/groups, kD, kH, kW] (PyTorch);
 * y: [N, O, D', H', W'] with D' = (D-1)s - 2p + dil(k-1) + output_padding + 1. */
VX_API vx_status vx_conv_transpose3d_forward(vx_context *ctx, const vx_tensor *x, const vx_tensor *w,
                                             const vx_tensor *b, const vx_conv_params *p, vx_tensor *y);
VX_API vx_status vx_conv_transpose3d_backward_data(vx_context *ctx, const vx_tensor *dy,
                                                   const vx_tensor *w, const vx_conv_params *p,
                                                   vx_tensor *dx, int accumulate);
VX_API vx_status vx_conv_transpose3d_backward_weights(vx_context *ctx, const vx_tensor *x,
                                                      const vx_tensor *dy, const vx_conv_params *p,
                                                      vx_tensor *dw, vx_tensor *db, int accumulate);

/* Instance norm over each (n, c) with optional affine and a fused activation:
 * y = act(gamma[c] * (x - mean) / sqrt(var + eps) + beta[c]). gamma/beta: [C] or both NULL.
 * save: [N*C*2] receives (mean, 1/std) per (n, c) for the backward. slope: LeakyReLU slope. */
VX_API vx_status vx_instance_norm_forward(vx_context *ctx, const vx_tensor *x, const vx_tensor *gamma,
                                          const vx_tensor *beta, float eps, vx_activation act,
                                          float slope, vx_tensor *y, vx_tensor *save);
/* Needs x, the forward's output y (for the activation's mask) and save. dgamma/dbeta may be NULL;
 * accumulate adds dx and the parameter gradients to what they hold. */
VX_API vx_status vx_instance_norm_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *y,
                                           const vx_tensor *dy, const vx_tensor *gamma,
                                           const vx_tensor *save, vx_activation act, float slope,
                                           vx_tensor *dx, vx_tensor *dgamma, vx_tensor *dbeta,
                                           int accumulate);

/* ---------------------------------------------------------------- normalisation
 * Batch, group and channel layer norm. Like instance norm: gamma/beta [C] or both NULL, an
 * optional fused activation (act, slope), 'save' (caller-owned) receives the statistics the
 * backward needs, accumulate != 0 adds the gradients to what dx/dgamma/dbeta hold, dgamma and
 * dbeta may be NULL. Results repeat bitwise (fixed reduction orders). */

/* BatchNorm3d as in PyTorch. training != 0: statistics over N and the voxels of each channel
 * (biased variance to normalise); running_mean/running_var ([C], or both NULL) move as
 * r = (1 - momentum) r + momentum * batch (unbiased variance); needs N * D*H*W > 1.
 * training == 0: normalises with the running statistics (required), leaves them unchanged.
 * save: [>= 2C] receives (mean, 1/sqrt(var + eps)) per channel of whichever statistics were used. */
VX_API vx_status vx_batch_norm_forward(vx_context *ctx, const vx_tensor *x, const vx_tensor *gamma,
                                       const vx_tensor *beta, vx_tensor *running_mean,
                                       vx_tensor *running_var, int training, float momentum, float eps,
                                       vx_activation act, float slope, vx_tensor *y, vx_tensor *save);
/* training must match the forward's: with 0 the statistics are constants (dx = dz gamma / std). */
VX_API vx_status vx_batch_norm_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *y,
                                        const vx_tensor *dy, const vx_tensor *gamma,
                                        const vx_tensor *save, int training, vx_activation act,
                                        float slope, vx_tensor *dx, vx_tensor *dgamma,
                                        vx_tensor *dbeta, int accumulate);
/* GroupNorm: statistics per sample over C/groups channels and all voxels (groups must divide
 * C; groups = C is instance norm), per-channel affine. save: [>= N*groups*2]. */
VX_API vx_status vx_group_norm_forward(vx_context *ctx, const vx_tensor *x, int groups,
                                       const vx_tensor *gamma, const vx_tensor *beta, float eps,
                                       vx_activation act, float slope, vx_tensor *y, vx_tensor *save);
VX_API vx_status vx_group_norm_backward(vx_context *ctx, const vx_tensor *x, int groups,
                                        const vx_tensor *y, const vx_tensor *dy,
                                        const vx_tensor *gamma, const vx_tensor *save,
                                        vx_activation act, float slope, vx_tensor *dx,
                                        vx_tensor *dgamma, vx_tensor *dbeta, int accumulate);
/* Channel LayerNorm (3D UX-Net, eps 1e-6 there): at every voxel of every sample the C channels
 * are normalised (biased variance), y = gamma[c] xhat + beta[c]; no activation.
 * save: [>= N*D*H*W*2] receives the means of the N*D*H*W voxels, then their 1/std. */
VX_API vx_status vx_layer_norm_channels_forward(vx_context *ctx, const vx_tensor *x,
                                                const vx_tensor *gamma, const vx_tensor *beta,
                                                float eps, vx_tensor *y, vx_tensor *save);
VX_API vx_status vx_layer_norm_channels_backward(vx_context *ctx, const vx_tensor *x,
                                                 const vx_tensor *dy, const vx_tensor *gamma,
                                                 const vx_tensor *save, vx_tensor *dx,
                                                 vx_tensor *dgamma, vx_tensor *dbeta,
                                                 int accumulate);

/* Elementwise activation (y may be x for in-place). */
VX_API vx_status vx_activation_forward(vx_context *ctx, vx_activation act, float slope,
                                       const vx_tensor *x, vx_tensor *y);
/* dx = dy * act'(.) using the forward output y (valid for ReLU/LeakyReLU). */
VX_API vx_status vx_activation_backward(vx_context *ctx, vx_activation act, float slope,
                                        const vx_tensor *y, const vx_tensor *dy, vx_tensor *dx,
                                        int accumulate);

/* y = concat([a, b], channels). a: [N, Ca, ...], b: [N, Cb, ...], y: [N, Ca+Cb, ...]. */
VX_API vx_status vx_concat_channels(vx_context *ctx, const vx_tensor *a, const vx_tensor *b,
                                    vx_tensor *y);
/* The backward of concat: da, db (either may be NULL) from dy; accumulate adds. */
VX_API vx_status vx_concat_channels_backward(vx_context *ctx, const vx_tensor *dy, vx_tensor *da,
                                             vx_tensor *db, int accumulate);

/* y = a*x + y over equal shapes (a float scale). */
VX_API vx_status vx_axpy(vx_context *ctx, float a, const vx_tensor *x, vx_tensor *y);

/* Softmax over channels at every voxel. */
VX_API vx_status vx_softmax_forward(vx_context *ctx, const vx_tensor *x, vx_tensor *y);

typedef struct {
  float ce_weight;          /* weight of cross-entropy (1) */
  float dice_weight;        /* weight of soft Dice (1) */
  int dice_include_background; /* 0 as in nnU-Net */
  float dice_smooth;        /* 1e-5 */
} vx_loss_params;
VX_API void vx_loss_params_init(vx_loss_params *p);

/* Softmax cross-entropy + soft Dice on logits [N, K, ...] against labels [N, 1, ...] holding
 * class indices as floats (0..K-1). loss = ce_weight * CE + dice_weight * mean Dice loss,
 * Dice per sample and class (1 - (2tp + s)/(2tp + fp + fn + s)). *loss receives the value;
 * dlogits (may be NULL) receives dloss/dlogits. A label outside 0..K-1 is an error. */
VX_API vx_status vx_loss_dice_ce(vx_context *ctx, const vx_tensor *logits, const vx_tensor *labels,
                                 const vx_loss_params *p, float *loss, vx_tensor *dlogits);

/* Optimiser steps over equal-sized flat tensors (any shape). step counts from 1.
 * Adam: weight_decay added to the gradient (L2); AdamW when decoupled != 0. */
VX_API vx_status vx_adam_step(vx_context *ctx, vx_tensor *param, const vx_tensor *grad,
                              vx_tensor *m, vx_tensor *v, int step, float lr, float beta1,
                              float beta2, float eps, float weight_decay, int decoupled);
/* SGD as in PyTorch: buf = momentum*buf + (g + wd*p); g' = nesterov ? g + momentum*buf : buf. */
VX_API vx_status vx_sgd_step(vx_context *ctx, vx_tensor *param, const vx_tensor *grad,
                             vx_tensor *momentum_buf, float lr, float momentum, int nesterov,
                             float weight_decay);

/* ---------------------------------------------------------------- more ops: activations
 * Conventions as above: every backward takes an accumulate flag (add to what the gradient
 * tensors hold); every reduction runs in a fixed order (no float atomics): two runs give the
 * same bits. A tensor "of C values" is any tensor with numel C, e.g. [C, 1, 1, 1, 1]. */

/* PReLU: y = x > 0 ? x : slope[c] * x. slope holds C values (one per channel) or one value. */
VX_API vx_status vx_prelu_forward(vx_context *ctx, const vx_tensor *x, const vx_tensor *slope, vx_tensor *y);
/* dx (may be NULL) = dy * (x > 0 ? 1 : slope); dslope (may be NULL, shaped like slope) = sum over
 * each slope's elements of dy * min(x, 0). */
VX_API vx_status vx_prelu_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *slope, const vx_tensor *dy,
                                   vx_tensor *dx, vx_tensor *dslope, int accumulate);
/* GELU, erf form (torch's default): y = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)). y may be x. */
VX_API vx_status vx_gelu_forward(vx_context *ctx, const vx_tensor *x, vx_tensor *y);
/* dx = dy * (Phi(x) + x phi(x)); needs the forward's input x. */
VX_API vx_status vx_gelu_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *dy, vx_tensor *dx,
                                  int accumulate);
/* The backward of vx_softmax_forward from its output y: dx = y * (dy - sum_c y_c dy_c). */
VX_API vx_status vx_softmax_backward(vx_context *ctx, const vx_tensor *y, const vx_tensor *dy, vx_tensor *dx,
                                     int accumulate);

/* ---------------------------------------------------------------- more ops: broadcasting
 * y = a + b or a * b with a, y: [N, C, D, H, W] and b of a's shape, [N, C, 1, 1, 1], C values,
 * or one value (checked in that order). y may be a. */
VX_API vx_status vx_add_broadcast(vx_context *ctx, const vx_tensor *a, const vx_tensor *b, vx_tensor *y);
VX_API vx_status vx_mul_broadcast(vx_context *ctx, const vx_tensor *a, const vx_tensor *b, vx_tensor *y);
/* da = dy; db = dy summed over the dimensions b was broadcast along. Either may be NULL. */
VX_API vx_status vx_add_broadcast_backward(vx_context *ctx, const vx_tensor *dy, vx_tensor *da, vx_tensor *db,
                                           int accumulate);
/* da = dy * b (broadcast); db = sum over the broadcast dimensions of dy * a. Either may be NULL. */
VX_API vx_status vx_mul_broadcast_backward(vx_context *ctx, const vx_tensor *a, const vx_tensor *b,
                                           const vx_tensor *dy, vx_tensor *da, vx_tensor *db, int accumulate);
/* y = s * x (y may be x); the backward dx = s * dy. */
VX_API vx_status vx_scale(vx_context *ctx, float s, const vx_tensor *x, vx_tensor *y);
VX_API vx_status vx_scale_backward(vx_context *ctx, float s, const vx_tensor *dy, vx_tensor *dx, int accumulate);

/* ---------------------------------------------------------------- more ops: pooling
 * As torch.nn.functional.max_pool3d / avg_pool3d with ceil_mode False and dilation 1:
 * D' = (D + 2p - k) / s + 1; padding at most half the kernel. Max pooling ignores the padding;
 * average pooling divides by the whole window (count_include_pad = 1, torch's default) or by
 * its part inside the input (0). */
typedef struct {
  int kernel[3], stride[3], padding[3];
  int count_include_pad; /* average pooling only */
} vx_pool_params;
/* kernel, stride (<= 0: = kernel, as torch) and padding along all axes; count_include_pad 1. */
VX_API void vx_pool_params_init(vx_pool_params *p, int kernel, int stride, int pad);
/* Output size along one axis, 0 when impossible. */
VX_API int vx_pool_output_size(int in, int k, int stride, int pad);
VX_API vx_status vx_max_pool3d_forward(vx_context *ctx, const vx_tensor *x, const vx_pool_params *p, vx_tensor *y);
/* Routes each dy to its window's maximum (the first in d, h, w order on ties; NaN wins), found
 * again from x: no index tensor is stored. */
VX_API vx_status vx_max_pool3d_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *dy,
                                        const vx_pool_params *p, vx_tensor *dx, int accumulate);
VX_API vx_status vx_avg_pool3d_forward(vx_context *ctx, const vx_tensor *x, const vx_pool_params *p, vx_tensor *y);
VX_API vx_status vx_avg_pool3d_backward(vx_context *ctx, const vx_tensor *dy, const vx_pool_params *p,
                                        vx_tensor *dx, int accumulate);

/* ---------------------------------------------------------------- more ops: resizing
 * torch.nn.functional.interpolate(mode = 'nearest' | 'trilinear', align_corners = False). The
 * output size is y's shape. scale (may be NULL): per axis D, H, W, a scale factor > 0 is used
 * as torch uses scale_factor (the source step is 1/scale, and y's size must be
 * floor(in * scale), computed in double as torch does, up to the float rounding of scale); 0
 * takes the step in/out from the sizes. The backward is a gather. */
typedef enum { VX_INTERP_NEAREST = 0, VX_INTERP_TRILINEAR = 1 } vx_interp_mode;
VX_API vx_status vx_interpolate_forward(vx_context *ctx, const vx_tensor *x, vx_interp_mode mode,
                                        const float scale[3], vx_tensor *y);
VX_API vx_status vx_interpolate_backward(vx_context *ctx, const vx_tensor *dy, vx_interp_mode mode,
                                         const float scale[3], vx_tensor *dx, int accumulate);

/* ---------------------------------------------------------------- more ops: shapes
 * Constant padding of D, H, W (pad_before / pad_after per axis D, H, W, each >= 0; torch's
 * F.pad lists them W first): y: [N, C, D + b0 + a0, ...]. The backward crops dy. */
VX_API vx_status vx_pad_forward(vx_context *ctx, const vx_tensor *x, const int pad_before[3], const int pad_after[3],
                                float value, vx_tensor *y);
VX_API vx_status vx_pad_backward(vx_context *ctx, const vx_tensor *dy, const int pad_before[3],
                                 const int pad_after[3], vx_tensor *dx, int accumulate);
/* Crop / slice: y = the box of x starting at start[5] (N, C, D, H, W) with y's shape. The
 * backward writes dy into the box of dx and zeros elsewhere (accumulate: adds in the box only). */
VX_API vx_status vx_crop_forward(vx_context *ctx, const vx_tensor *x, const int start[5], vx_tensor *y);
VX_API vx_status vx_crop_backward(vx_context *ctx, const vx_tensor *dy, const int start[5], vx_tensor *dx,
                                  int accumulate);
/* Split along channels, the counterpart of vx_concat_channels: a = x[:, :Ca], b = x[:, Ca:]. */
VX_API vx_status vx_split_channels(vx_context *ctx, const vx_tensor *x, vx_tensor *a, vx_tensor *b);
VX_API vx_status vx_split_channels_backward(vx_context *ctx, const vx_tensor *da, const vx_tensor *db, vx_tensor *dx,
                                            int accumulate);

/* ---------------------------------------------------------------- more ops: losses and clipping
 * Sums run in two fixed stages (work-group partial sums, then the host in double). *loss gets
 * the value; the gradients (may be NULL) are written only when it is finite
 * (VX_ERR_NOT_FINITE otherwise). weight scales value and gradients (the VAE loss uses 0.1).
 * Cross-entropy alone or soft Dice alone: vx_loss_dice_ce with dice_weight = 0 or ce_weight = 0. */
/* loss = weight * mean((input - target)^2); dinput = weight * 2 (input - target) / n. */
VX_API vx_status vx_mse_loss(vx_context *ctx, const vx_tensor *input, const vx_tensor *target, float weight,
                             float *loss, vx_tensor *dinput, int accumulate);
/* The VAE's KL term: loss = weight * mean(mu^2 + sigma^2 - log sigma^2 - 1) over mu, sigma of
 * equal shape; dmu = weight * 2 mu / n, dsigma = weight * (2 sigma - 2 / sigma) / n. */
VX_API vx_status vx_kl_loss(vx_context *ctx, const vx_tensor *mu, const vx_tensor *sigma, float weight, float *loss,
                            vx_tensor *dmu, vx_tensor *dsigma, int accumulate);
/* As torch.nn.utils.clip_grad_norm_ over one flat gradient tensor: norm = ||grad||_2,
 * grad *= max_norm / (norm + 1e-6) when that is < 1. *total_norm (may be NULL) gets the norm
 * before clipping; a non-finite norm is VX_ERR_NOT_FINITE with grad unchanged. */
VX_API vx_status vx_clip_grad_norm(vx_context *ctx, vx_tensor *grad, float max_norm, float *total_norm);
/* grad = clamp(grad, -clip, clip) (NaN stays NaN), as torch.nn.utils.clip_grad_value_. */
VX_API vx_status vx_clip_grad_value(vx_context *ctx, vx_tensor *grad, float clip);

/* ---------------------------------------------------------------- networks */
typedef struct vx_model vx_model; /* any network: see "models" below */
typedef struct vx_unet3d vx_unet3d;
typedef struct {
  int in_channels;   /* 1 */
  int classes;       /* output channels incl. background (3) */
  int levels;        /* resolution levels (4) */
  int base_channels; /* features at full resolution, doubling per level (16) */
  int max_channels;  /* cap (320) */
  float slope;       /* LeakyReLU slope (0.01) */
  uint64_t seed;     /* weight initialisation seed */
} vx_unet3d_config;
VX_API void vx_unet3d_config_init(vx_unet3d_config *c);

/* Builds the network and plans its memory for input [batch, in_channels, D, H, W] (each spatial
 * size a multiple of 2^(levels-1)). Parameters are initialised (Kaiming, He normal). */
VX_API vx_status vx_unet3d_create(vx_context *ctx, const vx_unet3d_config *cfg, const int in_shape[5],
                                  vx_unet3d **out);
VX_API void vx_unet3d_destroy(vx_unet3d *net);
VX_API size_t vx_unet3d_parameter_count(const vx_unet3d *net);
/* The logits tensor [batch, classes, D, H, W] written by forward (owned by the network). */
VX_API vx_tensor *vx_unet3d_output(vx_unet3d *net);
VX_API vx_status vx_unet3d_forward(vx_unet3d *net, const vx_tensor *x);
/* Backpropagates dlogits (shape of the output) and fills the flat gradient buffer. */
VX_API vx_status vx_unet3d_backward(vx_unet3d *net, const vx_tensor *dlogits);
/* The flat parameter and gradient tensors [1,1,1,1,P] (owned by the network). */
VX_API vx_tensor *vx_unet3d_parameters(vx_unet3d *net);
VX_API vx_tensor *vx_unet3d_gradients(vx_unet3d *net);
/* Device bytes the network holds (parameters, gradients, activations). */
VX_API size_t vx_unet3d_device_bytes(const vx_unet3d *net);
/* Checkpoints (safetensors, tensors named like a PyTorch state dict, the configuration in the
 * metadata; written to a temporary file, flushed and renamed). */
VX_API vx_status vx_unet3d_save(vx_unet3d *net, const char *path, char *errbuf, size_t errlen);
/* Replaces the network's weights with the file's; a file of another architecture is refused
 * (VX_ERR_SHAPE, naming the first parameter that differs) and nothing is changed. */
VX_API vx_status vx_unet3d_load_weights(vx_unet3d *net, const char *path, char *errbuf, size_t errlen);
/* The configuration stored in a checkpoint, to build the matching network. */
VX_API vx_status vx_unet3d_read_config(const char *path, vx_unet3d_config *cfg, char *errbuf, size_t errlen);
/* The input shape the network was planned for. */
VX_API const int *vx_unet3d_input_shape(const vx_unet3d *net);
/* The generic model handle of the U-Net (owned by it). */
VX_API vx_model *vx_unet3d_model(vx_unet3d *net);
/* Copies the parameters of src into dst (same configuration, any input shape). */
VX_API vx_status vx_unet3d_copy_parameters(vx_unet3d *dst, const vx_unet3d *src);

/* ---------------------------------------------------------------- models (any network)
 * One handle for every network voxcl builds: the trainer, the predictor, checkpoints and the
 * CLI work on it. Names: "unet3d" (nnU-Net style), "dualnorm-unet" (two-pass DualNorm
 * training), "invres-partial" and "invres-full" (additive-coupling residual U-Nets, with the
 * optional VAE branch), "uxnet" (3D UX-Net). */
typedef struct {
  char name[32];         /* "unet3d" */
  int in_channels;       /* 1 */
  int classes;           /* output channels incl. background (3) */
  int levels;            /* resolution levels (4; uxnet: fixed at 5) */
  int base_channels;     /* features at full resolution, doubling per level (16; uxnet: 48) */
  int max_channels;      /* cap (320) */
  float slope;           /* LeakyReLU slope (0.01) */
  uint64_t seed;         /* weight initialisation seed */
  int depth;             /* invres-*: coupling blocks per level (2) */
  int vae;               /* invres-*: the VAE regularisation branch in training (0) */
  float vae_weight;      /* weight of its reconstruction and KL losses (0.1) */
  int dualnorm_masked;   /* dualnorm-unet: 0 SPADE modulation as the reference, 1 masked-region norm */
  int dualnorm_levels;   /* dualnorm-unet: encoder levels whose blocks use DualNorm (4) */
  int acnorm;            /* batch norms are AC-Norm layers (fine-tuning; dualnorm-unet) */
} vx_model_config;
/* Defaults for the named network; VX_ERR_INVALID_ARGUMENT for an unknown name. */
VX_API vx_status vx_model_config_init(vx_model_config *c, const char *name);
/* The names vx_model_create knows, NULL-terminated. */
VX_API const char *const *vx_model_names(void);
/* Builds the network and plans its memory for input [batch, in_channels, D, H, W]; wrong sizes
 * are refused with a message naming the network, the size and what it must be. */
VX_API vx_status vx_model_create(vx_context *ctx, const vx_model_config *cfg, const int in_shape[5],
                                 vx_model **out);
/* Declares the network for in_shape without allocating device memory: parameter count,
 * device bytes and layers are known, forward and training are refused. */
VX_API vx_status vx_model_plan(vx_context *ctx, const vx_model_config *cfg, const int in_shape[5],
                               vx_model **out);
VX_API void vx_model_destroy(vx_model *m);
/* Inference forward (batch norms use their running statistics); logits in vx_model_output. */
VX_API vx_status vx_model_forward(vx_model *m, const vx_tensor *x);
VX_API vx_tensor *vx_model_output(vx_model *m);
/* Training forward, the loss (Dice + CE as p says, plus the network's own terms: DualNorm's
 * second pass, the VAE's reconstruction and KL) and backward: the gradient buffer holds
 * dloss/dparameters afterwards. *loss gets the total; a non-finite one is VX_ERR_NOT_FINITE
 * and leaves the gradients unspecified (parameters are untouched). */
VX_API vx_status vx_model_train_step(vx_model *m, const vx_tensor *x, const vx_tensor *labels,
                                     const vx_loss_params *p, float *loss);
VX_API vx_tensor *vx_model_parameters(vx_model *m);
VX_API vx_tensor *vx_model_gradients(vx_model *m);
VX_API size_t vx_model_parameter_count(const vx_model *m);
/* Device bytes planned for the network: parameters, gradients, saved state, activations. */
VX_API size_t vx_model_device_bytes(const vx_model *m);
VX_API const vx_model_config *vx_model_get_config(const vx_model *m);
VX_API const int *vx_model_input_shape(const vx_model *m);
/* The layers the network noted when built (owned by m). */
typedef struct vx_layer_info vx_layer_info;
VX_API const vx_layer_info *vx_model_layers(const vx_model *m, int *count);
/* Copies parameters and saved state (running statistics) of src into dst (same configuration). */
VX_API vx_status vx_model_copy_parameters(vx_model *dst, const vx_model *src);
/* Checkpoints as for the U-Net: safetensors with PyTorch-style names, the configuration in the
 * metadata; a file of another architecture is refused naming the first tensor that differs. */
VX_API vx_status vx_model_save(vx_model *m, const char *path, char *errbuf, size_t errlen);
VX_API vx_status vx_model_load_weights(vx_model *m, const char *path, char *errbuf, size_t errlen);
VX_API vx_status vx_model_read_config(const char *path, vx_model_config *cfg, char *errbuf, size_t errlen);

/* ---------------------------------------------------------------- training */
typedef enum { VX_OPT_ADAM = 0, VX_OPT_ADAMW = 1, VX_OPT_SGD = 2 } vx_optimizer_kind;
typedef struct {
  vx_optimizer_kind optimizer; /* VX_OPT_ADAM */
  float lr;                    /* 1e-3 (Adam) */
  float beta1, beta2, eps;     /* 0.9, 0.999, 1e-8 */
  float weight_decay;          /* 0 */
  float momentum;              /* SGD: 0.99 */
  int nesterov;                /* SGD: 1 */
  float clip_grad_value;       /* > 0: gradients clamped to +-value before the update (0) */
  float clip_grad_norm;        /* > 0: gradients scaled to at most this L2 norm (0) */
  vx_loss_params loss;         /* Dice + CE */
} vx_trainer_config;
VX_API void vx_trainer_config_init(vx_trainer_config *c);

typedef struct vx_trainer vx_trainer;
/* A trainer for any network: owns the optimiser state (one flat buffer per moment), not the
 * network. A U-Net from vx_unet3d_create gives its handle with vx_unet3d_model. */
VX_API vx_status vx_trainer_create(vx_model *net, const vx_trainer_config *cfg, vx_trainer **out);
VX_API void vx_trainer_destroy(vx_trainer *tr);
/* One step: forward, loss, backward, optimiser update with learning rate lr. *loss receives
 * the loss before the update. A non-finite loss returns VX_ERR_NOT_FINITE before any update. */
VX_API vx_status vx_trainer_step(vx_trainer *tr, const vx_tensor *x, const vx_tensor *labels, float lr,
                                 float *loss);
/* The full training state (weights, optimiser moments, step, and the caller's metadata pairs,
 * NULL-terminated key/value strings, e.g. the RNG state) in one safetensors file. */
VX_API vx_status vx_trainer_save(vx_trainer *tr, const char *path, const char *const *meta, char *errbuf,
                                 size_t errlen);
/* Restores a state saved by vx_trainer_save into a trainer of the same network and optimiser.
 * meta_out (may be NULL) receives the file's metadata as a JSON object string (free with vx_free). */
VX_API vx_status vx_trainer_load(vx_trainer *tr, const char *path, char **meta_out, char *errbuf, size_t errlen);
VX_API int vx_trainer_step_count(const vx_trainer *tr);

/* ---------------------------------------------------------------- data */
/* One case of the demo's synthetic dataset: image and label (0 background, 1 ellipsoids,
 * 2 tubes) as D*H*W floats, x fastest. The same seed gives the same case everywhere. */
VX_API vx_status vx_synth_case(uint64_t seed, int d, int h, int w, float *image, float *label);

/* ---------------------------------------------------------------- NIfTI */
typedef struct vx_volume vx_volume;  /* host volume: float data + the NIfTI header it came with */

/* Reads .nii / .nii.gz / .hdr+.img (NIfTI-1 or -2) as float32 [C, Z, Y, X] with scl applied,
 * after validating the header and the data size. errbuf names the file and field on failure. */
VX_API vx_status vx_volume_read(const char *path, vx_volume **out, char *errbuf, size_t errlen);
/* Creates a volume of nx*ny*nz voxels, c channels, spacing (mm) and identity-like transform. */
VX_API vx_status vx_volume_create(int nx, int ny, int nz, int channels, const float spacing[3],
                                  vx_volume **out);
VX_API void vx_volume_destroy(vx_volume *v);
/* dims[0..3] = x, y, z, channels. */
VX_API void vx_volume_dims(const vx_volume *v, int dims[4]);
VX_API void vx_volume_spacing(const vx_volume *v, float spacing[3]);
/* Voxel data, x fastest then y, z, channel. Owned by the volume. */
VX_API float *vx_volume_data(vx_volume *v);
/* The voxel-to-world 4x4 matrix (row-major), from the sform when set, else the qform. */
VX_API void vx_volume_affine(const vx_volume *v, double m[16]);
/* Writes 'data' (nx*ny*nz values, 'like''s geometry) with like's header and transforms.
 * as_labels != 0: the smallest unsigned integer type holding the values (rounded);
 * else float32. The file is written to a temporary name and renamed when complete. */
VX_API vx_status vx_volume_write_like(const char *path, const vx_volume *like, const float *data,
                                      int as_labels, char *errbuf, size_t errlen);
/* Notes on the NIfTI functions above:
 * - read: dimensions 4..7 all become channels; the datatypes read are uint8, int8, int16,
 *   uint16, int32, uint32, int64, uint64, float32 and float64, in either byte order; NaN and
 *   infinite voxels are kept as they are. Errors: VX_ERR_IO (cannot open or read),
 *   VX_ERR_FORMAT (content: header field, truncated data, broken gzip stream),
 *   VX_ERR_INVALID_ARGUMENT (name without a NIfTI extension). *out is NULL on failure.
 * - spacing is |pixdim[1..3]| (where a pixdim is 0 or not finite: the length of the affine's
 *   column, else 1).
 * - write: the name decides the format (.nii.gz compressed, .nii plain; anything else is
 *   VX_ERR_INVALID_ARGUMENT). The file is NIfTI-1 unless 'like' came from NIfTI-2 or a size
 *   needs it. Labels must be finite and round to 0..2^32-1 (else VX_ERR_INVALID_ARGUMENT, no
 *   file written); they are stored with scl_slope 0 and intent NIFTI_INTENT_LABEL. On any
 *   failure an existing file under 'path' is left as it was; the temporary file is
 *   ".voxcl-tmp-PID-N-NAME" in the same folder (a killed process may leave one behind).
 * - create: spacing NULL means 1 mm; the data is zeroed; qform and sform are both the scaling
 *   by the spacing (codes 1, scanner); affine: with neither code set, the scaling by pixdim. */

/* Like vx_volume_write_like but for 'channels' float32 volumes (e.g. class probabilities):
 * data is [channels, nz, ny, nx]; channels > 1 gives a 4-D file with dim[4] = channels. */
VX_API vx_status vx_volume_write_float(const char *path, const vx_volume *like, const float *data,
                                       int channels, char *errbuf, size_t errlen);
/* Channel c's voxels (nx*ny*nz floats, owned by the volume), or NULL when c is out of range. */
VX_API float *vx_volume_channel(vx_volume *v, int c);
/* The NIfTI datatype code (DT_UINT8 = 2, DT_INT16 = 4, DT_FLOAT32 = 16, ...) of the file the
 * volume was read from; 16 (float32) for volumes made by vx_volume_create. */
VX_API int vx_volume_datatype(const vx_volume *v);

/* ---------------------------------------------------------------- datasets */
/* A training dataset on disk, in one of the two layouts of the field:
 * - nnU-Net: imagesTr/CASE_0000.nii.gz (one file per channel, _XXXX = channel index),
 *   labelsTr/CASE.nii.gz, dataset.json with "channel_names" {"0": "CT"}, "labels"
 *   {"background": 0, "liver": 1} (a list of values, a region, is accepted), "numTraining" and
 *   "file_ending" (".nii.gz" or ".nii").
 * - Medical Segmentation Decathlon: dataset.json "training": [{"image": "./imagesTr/x.nii.gz",
 *   "label": "./labelsTr/x.nii.gz"}] with 4-D images (all channels in one file), "modality"
 *   {"0": "MRI"} and "labels" {"0": "background", "1": "tumour"}. Where an entry's image is
 *   absent but x_0000.nii.gz, x_0001.nii.gz... exist (nnU-Net v1), those are used.
 * Open reads dataset.json and lists the cases (sorted by id; nnU-Net: every case with a
 * channel file or a label file); it reads no volume. Messages name the file relative to the
 * dataset folder and the field. A handle may be used from several threads at once: every
 * function below only reads it. */
typedef struct vx_dataset vx_dataset;
typedef enum { VX_LAYOUT_NNUNET = 0, VX_LAYOUT_MSD = 1 } vx_dataset_layout;

/* *out is NULL on failure; errbuf lists every problem of dataset.json that prevents opening
 * (e.g. "dataset.json: 'labels' missing"), separated by "; ". */
VX_API vx_status vx_dataset_open(const char *dir, vx_dataset **out, char *errbuf, size_t errlen);
VX_API void vx_dataset_close(vx_dataset *ds);
VX_API vx_dataset_layout vx_dataset_get_layout(const vx_dataset *ds);
/* "name" of dataset.json, else the folder's name. */
VX_API const char *vx_dataset_name(const vx_dataset *ds);
VX_API int vx_dataset_case_count(const vx_dataset *ds);
/* Case i's identifier ("brain_003"), or NULL when i is out of range. */
VX_API const char *vx_dataset_case_id(const vx_dataset *ds, int i);
VX_API int vx_dataset_channel_count(const vx_dataset *ds);
VX_API const char *vx_dataset_channel_name(const vx_dataset *ds, int c);
/* 1 when channel c is named "CT" (any case): it gets the CT normalisation. */
VX_API int vx_dataset_channel_is_ct(const vx_dataset *ds, int c);
/* Classes incl. background: the largest declared label value + 1. */
VX_API int vx_dataset_class_count(const vx_dataset *ds);
/* The name declared for label value v, or NULL when v is not declared. */
VX_API const char *vx_dataset_label_name(const vx_dataset *ds, int v);
/* "numTraining" of dataset.json, or -1 when absent. */
VX_API int vx_dataset_num_training(const vx_dataset *ds);
/* Full path of case i's channel c file (nnU-Net), or of its 4-D image for any c (MSD); of its
 * label. Where the file should be: it may be missing (see vx_dataset_check). NULL when out of
 * range. */
VX_API const char *vx_dataset_image_path(const vx_dataset *ds, int i, int c);
VX_API const char *vx_dataset_label_path(const vx_dataset *ds, int i);

/* Reads case i: *image gets every channel stacked ([C, Z, Y, X]), *label the label volume;
 * either pointer may be NULL to skip it. Fails (both outputs NULL) on a missing or unreadable
 * file, channels of different shapes, a label of another shape than the image, or a label
 * value that is not an integer declared in dataset.json. The image carries the header and
 * transform of its file, except when it is stacked from several channel files: then it has
 * channel 0's spacing and a plain scaling as transform (use vx_dataset_image_path to write
 * results with the original geometry). The caller destroys both volumes. */
VX_API vx_status vx_dataset_load_case(const vx_dataset *ds, int i, vx_volume **image, vx_volume **label,
                                      char *errbuf, size_t errlen);

/* Called for every problem vx_dataset_check finds (case_index -1 for the dataset as a whole),
 * and with problem NULL each time a case has been checked (progress). */
typedef void (*vx_dataset_problem_fn)(void *user, int case_index, const char *problem);
typedef struct {
  int cases, channels, classes;
  int problems;               /* problems found */
  int cases_read;             /* cases whose image could be read (the ranges below cover them) */
  int shape_min[3], shape_max[3];         /* x, y, z voxels */
  float spacing_min[3], spacing_max[3];   /* x, y, z mm */
} vx_dataset_summary;
/* Reads every file and lists EVERY problem: missing channel or label files, unreadable or
 * corrupt files (vx_volume_read's message), channels or label of different shapes, transforms
 * that differ between a case's files by more than 1e-3 (relative; absolute below 1), label
 * values not declared in dataset.json, non-integer labels, NaN or infinite voxels, numTraining
 * not equal to the cases found, stray files, non-consecutive label values. fn (may be NULL)
 * gets each as it is found; *text (may be NULL) receives all of them, one per line, malloc'ed
 * ("" when none; free with vx_free); summary may be NULL. Returns VX_OK when the check ran,
 * problems or not (VX_ERR_OUT_OF_MEMORY, VX_ERR_INVALID_ARGUMENT otherwise). */
VX_API vx_status vx_dataset_check(const vx_dataset *ds, vx_dataset_problem_fn fn, void *user, char **text,
                                  vx_dataset_summary *summary);

/* K-fold split of n cases: the indices are shuffled with 'seed' (nnU-Net: 5 folds, seed
 * 12345), fold k (0..nfolds-1) is the k-th of nfolds nearly equal consecutive parts.
 * train_idx and val_idx hold n ints each; both come back sorted. The folds' validation sets
 * partition 0..n-1. Needs 2 <= nfolds <= n. */
VX_API vx_status vx_fold_split(int n, int k, int nfolds, uint64_t seed, int *train_idx, int *ntrain,
                               int *val_idx, int *nval);
/* The same over a dataset's cases (n = vx_dataset_case_count). */
VX_API vx_status vx_dataset_fold(const vx_dataset *ds, int k, int nfolds, uint64_t seed, int *train_idx,
                                 int *ntrain, int *val_idx, int *nval);

/* The demo's synthetic dataset (vx_synth_case, case i from seed*1000 + i) written in the
 * nnU-Net layout: imagesTr/synth_XXX_0000.nii.gz (float32), labelsTr/synth_XXX.nii.gz (uint8),
 * dataset.json (channel "synthetic"; labels background 0, ellipsoid 1, tube 2). */
typedef struct {
  int cases;          /* 20 */
  int size[3];        /* D, H, W voxels (48, 48, 48); each >= 8 */
  float spacing[3];   /* x, y, z mm (1, 1, 1) */
  uint64_t seed;      /* 1 */
  int force;          /* 0: refuse a non-empty folder that is not a voxcl synthetic dataset */
} vx_synth_dataset_options;
VX_API void vx_synth_dataset_options_init(vx_synth_dataset_options *o);
/* Called after each case written. */
typedef void (*vx_progress_fn)(void *user, int done, int total);
/* Creates dir (and parents) as needed. Rewriting a voxcl synthetic dataset replaces it (synth
 * files of cases beyond the new count are removed). A refused folder is
 * VX_ERR_INVALID_ARGUMENT with nothing written. */
VX_API vx_status vx_synth_dataset_write(const char *dir, const vx_synth_dataset_options *o,
                                        vx_progress_fn progress, void *user, char *errbuf, size_t errlen);

/* Intensity normalisation as in nnU-Net. CT channels: clipped to the 0.5 and 99.5
 * percentiles of the foreground (label > 0) intensities over the training set, then z-scored
 * with the foreground mean and standard deviation. Other channels: z-scored per image. */
typedef struct {
  float lo, hi;      /* 0.5 and 99.5 percentiles (linear interpolation, as numpy) */
  float mean, std;   /* of the (unclipped) foreground intensities, population std */
  size_t samples;    /* foreground voxels used */
} vx_intensity_stats;
/* Foreground statistics of channel 'channel' over n cases in memory (images[i] and labels[i]
 * of equal spatial shape; NaN or infinite voxels are skipped). max_per_case > 0 takes at most
 * that many evenly spaced foreground voxels of each case (nnU-Net: 10000); 0 takes all. No
 * foreground at all: VX_ERR_INVALID_ARGUMENT. */
VX_API vx_status vx_intensity_stats_compute(vx_volume *const *images, vx_volume *const *labels, int n,
                                            int channel, size_t max_per_case, vx_intensity_stats *out,
                                            char *errbuf, size_t errlen);
/* The same for every channel of a dataset (stats: [channel_count]), loading the n listed cases
 * one at a time. */
VX_API vx_status vx_dataset_intensity_stats(const vx_dataset *ds, const int *cases, int n,
                                            size_t max_per_case, vx_intensity_stats *stats, char *errbuf,
                                            size_t errlen);
/* In place over n values: clip to [lo, hi], then (x - mean) / max(std, 1e-8). */
VX_API void vx_normalize_ct(float *x, size_t n, const vx_intensity_stats *s);
/* In place: (x - mean) / max(std, 1e-8) over the finite values of x. */
VX_API void vx_normalize_zscore(float *x, size_t n);
/* Every channel of image in place: channel c with vx_normalize_ct and stats[c] where
 * is_ct[c] != 0, else z-score. is_ct may be NULL (all z-score). */
VX_API vx_status vx_normalize_volume(vx_volume *image, const int *is_ct, const vx_intensity_stats *stats);

/* Resampling on the host. in: [channels, Z, Y, X] of in_dims (x, y, z) voxels; out: the same
 * layout of out_dims. Voxel centres are aligned (the grids span the same extent; edges clamp).
 * nearest != 0: nearest neighbour (labels), else trilinear (images). */
VX_API vx_status vx_resample(const float *in, const int in_dims[3], int channels, float *out,
                             const int out_dims[3], int nearest);
/* The shape at 'target' spacing: max(1, round(dims * spacing / target)) per axis (x, y, z). */
VX_API void vx_resample_shape(const int dims[3], const float spacing[3], const float target[3],
                              int out_dims[3]);
/* A new volume at 'target' spacing (x, y, z mm) with every channel resampled; its transform is
 * the plain scaling by 'target' (origin and orientation are not kept). */
VX_API vx_status vx_volume_resample(vx_volume *in, const float target[3], int is_label, vx_volume **out);

/* ---------------------------------------------------------------- patch sampler */
/* Batches of training patches from cases held in host memory (normalised images and their
 * labels), as nnU-Net draws them: each patch comes from a random case; with probability
 * foreground_fraction it is centred on a random voxel of a random class present in the case
 * (else placed uniformly at random); volumes smaller than the patch are padded with 0 (image
 * and label). Augmentation, per patch: flips on each axis, a rotation by k*90 degrees in the
 * (H, W) plane when pH == pW, then per channel Gaussian noise (variance U(0, 0.1)),
 * intensity scale U(0.75, 1.25), shift U(-0.1, 0.1), gamma in [0.7, 1.5] on the min-max
 * normalised intensities. One seeded RNG per sampler: the same seed gives the same batches,
 * threaded or not. With 'threaded', a background thread prepares the next batch into the
 * other half of a double buffer while the caller trains. */
typedef struct vx_sampler vx_sampler;
typedef struct {
  int batch;                  /* patches per batch (2) */
  int patch[3];               /* pD, pH, pW (64, 64, 64) */
  float foreground_fraction;  /* 1/3, as nnU-Net */
  int augment;                /* 1: the augmentation below; 0: none */
  float p_flip;               /* per axis (0.5) */
  int rot90;                  /* 1: k in 0..3 uniformly when pH == pW */
  float p_noise, p_scale, p_shift, p_gamma; /* 0.1, 0.15, 0.15, 0.3 */
  uint64_t seed;              /* 1 */
  int threaded;               /* 1 */
} vx_sampler_config;
VX_API void vx_sampler_config_init(vx_sampler_config *c);

/* images[i]: [C, Z, Y, X] (the same C for all), labels[i]: one channel of the same spatial
 * shape holding class indices. Both are borrowed: they must stay alive and unchanged until
 * vx_sampler_destroy. */
VX_API vx_status vx_sampler_create(vx_volume *const *images, vx_volume *const *labels, int n,
                                   const vx_sampler_config *cfg, vx_sampler **out, char *errbuf,
                                   size_t errlen);
typedef struct {
  const float *image;       /* [B, C, pD, pH, pW] */
  const float *label;       /* [B, 1, pD, pH, pW], class indices as floats */
  const int *case_index;    /* [B] the case each patch came from */
  const int *foreground;    /* [B] 1 where the patch was centred on a foreground voxel */
  int batch, channels, patch[3];
} vx_batch;
/* The next batch; its arrays belong to the sampler and stay valid until the next call.
 * Blocks only while the background thread has not finished it. */
VX_API vx_status vx_sampler_next(vx_sampler *s, vx_batch *out);
typedef struct {
  long long batches;        /* handed to the caller */
  double wait_seconds;      /* the caller's time inside vx_sampler_next (all of it unthreaded) */
  double produce_seconds;   /* time spent making batches */
  long long produced;       /* made so far (threaded: up to two more than batches) */
} vx_sampler_stats;
VX_API void vx_sampler_get_stats(vx_sampler *s, vx_sampler_stats *st);
/* Stops the thread; the borrowed volumes may be released after it returns. */
VX_API void vx_sampler_destroy(vx_sampler *s);

/* ---------------------------------------------------------------- inference and evaluation */
/* Conventions of this section: a volume is [D, H, W] floats with W (x) fastest, as NIfTI data
 * is stored (D = z = nz, H = y = ny, W = x = nx); dims[3] = {D, H, W}; spacing[3] =
 * {z, y, x} mm, i.e. vx_volume_dims / vx_volume_spacing reversed. vx_progress_fn is defined in
 * the datasets section above. */

/* The network of vx_sliding_window_predict: writes class probabilities out [K, pD, pH, pW]
 * for one input patch [C, pD, pH, pW] (both owned by the caller, valid during the call). Any
 * status other than VX_OK stops the prediction and is returned. */
typedef vx_status (*vx_patch_fn)(void *user, const float *patch, float *out);

/* Sliding-window prediction of a whole volume, as nnU-Net does it:
 * - along each axis, n = ceil((size - patch) / (patch * (1 - overlap))) + 1 windows, their
 *   starts spread evenly from 0 to size - patch (rounded half to even, as numpy): the last
 *   window is flush with the end (see vx_sliding_window_steps);
 * - an axis shorter than the patch is zero-padded to the patch ((patch - size) / 2 voxels
 *   before, the rest after) and the result cropped back;
 * - each window's output is weighted by the Gaussian of vx_sliding_window_gaussian and
 *   probs_out = sum(w * p) / sum(w) over the windows covering each voxel;
 * - mirror = 1: each patch is predicted for every combination of flips of its axes (8, less
 *   the flips of axes of length 1, which change nothing), each prediction flipped back, and the
 *   average used: 8x the callbacks.
 * image: [C, D, H, W]; dims, patch: {D, H, W}; overlap in [0, 1) (nnU-Net: 0.5); probs_out:
 * [K, D, H, W], overwritten (it is the accumulator: only one patch-sized input and output and
 * one [D, H, W] weight sum are allocated besides it, all on the host). progress (may be NULL)
 * is called after each window with (windows done, windows in all). errbuf names the window on
 * a callback failure. */
VX_API vx_status vx_sliding_window_predict(const float *image, int C, const int dims[3], const int patch[3],
                                           int K, float overlap, int mirror, vx_patch_fn fn, void *user,
                                           float *probs_out, vx_progress_fn progress, void *progress_user,
                                           char *errbuf, size_t errlen);
/* The window starts along one axis of length size (starts may be NULL; else it receives the
 * returned count of ints, positions in the padded axis of length max(size, patch)). Returns
 * the number of windows, or -1 for bad arguments (or more than 10^8 windows). */
VX_API int vx_sliding_window_steps(int size, int patch, float overlap, int *starts);
/* The importance map w_out [pD, pH, pW]: prod over axes of exp(-(i - c)^2 / (2 sigma^2)) with
 * c = patch / 2 (integer division) and sigma = patch / 8, scaled to max 1 (the centre), any
 * value that underflows to 0 replaced by the smallest nonzero one. */
VX_API vx_status vx_sliding_window_gaussian(const int patch[3], float *w_out);
/* labels_out[v] = the k maximising probs[k * nvox + v] (the first on ties), as a float.
 * probs: [K, nvox]. labels_out may not alias probs beyond its first channel. */
VX_API vx_status vx_argmax_channels(const float *probs, int K, size_t nvox, float *labels_out);

/* Dice of two binary masks (nonzero = inside) of nvox voxels: 2|A and B| / (|A| + |B|),
 * defined as 1 when both are empty and so 0 when exactly one is. NaN for a NULL mask. */
VX_API double vx_dice_masks(const uint8_t *a, const uint8_t *b, size_t nvox);
/* Exact squared Euclidean distance transform (mm^2): out[i] = squared distance from voxel i to
 * the nearest nonzero voxel of mask (0 on the mask), with the voxel spacing; +inf everywhere
 * when the mask is empty. out: [D, H, W] doubles. Separable lower-envelope algorithm
 * (Felzenszwalb & Huttenlocher), O(voxels). */
VX_API vx_status vx_edt_squared(const uint8_t *mask, const int dims[3], const float spacing[3], double *out);
/* 95th-percentile Hausdorff distance (mm) of two binary masks, as MONAI's
 * compute_hausdorff_distance(percentile=95, directed=False): the surface of a mask is its
 * voxels with a 6-neighbour outside it or on the volume border; for each surface voxel of A
 * the distance to the nearest surface voxel of B (exact EDT), and B to A; the result is the
 * larger of the two directed 95th percentiles (numpy's linear interpolation). When either
 * mask is empty (both included) *hd95 is NaN and the call succeeds. */
VX_API vx_status vx_hd95_masks(const uint8_t *a, const uint8_t *b, const int dims[3], const float spacing[3],
                               double *hd95);
/* Dice and HD95 of label maps pred and ref ([D, H, W] floats, compared after rounding to the
 * nearest integer) for each of labels[0..nlabels-1]: dice[k], hd95[k] as defined above. */
VX_API vx_status vx_segmentation_metrics(const float *pred, const float *ref, const int dims[3],
                                         const float spacing[3], const int *labels, int nlabels, double *dice,
                                         double *hd95, char *errbuf, size_t errlen);

/* Evaluation of a folder of predicted label maps against a folder of references.
 * Every pred_dir/X.nii.gz or X.nii (hidden files skipped) is a case, paired with
 * ref_dir/X.nii.gz or ref_dir/X.nii; references without a prediction are ignored (a fold's
 * predictions against all of labelsTr), a prediction without a reference is an error, as are
 * both X.nii and X.nii.gz in one folder. The pair must agree in dimensions and spacing (1e-4
 * relative; the message names both files) and be single-channel. labels (nlabels > 0): the
 * classes to score (1..65535); nlabels = 0: every nonzero value found in the references (the
 * maps must then hold integers 0..65535). A class absent from both maps of a case scores
 * Dice 1 and HD95 NaN. progress (may be NULL) after each case. *out is NULL on failure. */
typedef struct vx_evaluation vx_evaluation;
VX_API vx_status vx_evaluate_folders(const char *pred_dir, const char *ref_dir, const int *labels, int nlabels,
                                     vx_progress_fn progress, void *progress_user, vx_evaluation **out,
                                     char *errbuf, size_t errlen);
VX_API void vx_evaluation_destroy(vx_evaluation *e);
/* Cases are sorted by name; classes ascending (or as given). */
VX_API int vx_evaluation_case_count(const vx_evaluation *e);
VX_API int vx_evaluation_class_count(const vx_evaluation *e);
/* The case's name (file name without .nii.gz / .nii), owned by e; NULL when out of range. */
VX_API const char *vx_evaluation_case_name(const vx_evaluation *e, int i);
/* The label value of class k, -1 when out of range. */
VX_API int vx_evaluation_class_label(const vx_evaluation *e, int k);
/* Case i's Dice and HD95 of class k. i = -1: the mean over cases (HD95: over the cases where
 * it is defined; NaN if none). k = -1: the mean over classes (of case i, or with i = -1 the
 * mean of the class means, nnU-Net's "foreground mean"). NaN when out of range. Either
 * output may be NULL. */
VX_API void vx_evaluation_get(const vx_evaluation *e, int i, int k, double *dice, double *hd95);
/* Writes PREFIX.csv (case,class,dice,hd95; NaN written "NaN") and PREFIX.json (folders,
 * classes, metric_per_case, mean per class, foreground_mean; NaN written null), each through a
 * temporary file ".voxcl-tmp-PID-NAME" beside it and a rename. */
VX_API vx_status vx_evaluation_write(const vx_evaluation *e, const char *prefix, char *errbuf, size_t errlen);

/* ---------------------------------------------------------------- training runs */
/* `voxcl train` as a library call. Defaults follow nnU-Net. The output folder receives
 * plan.json, model.safetensors (latest weights), model_best.safetensors (best validation
 * Dice), checkpoint_latest.safetensors (full state, for --resume), training_log.csv and
 * training_curves.png, each written aside and renamed after every epoch. */
typedef struct {
  const char *dataset, *out;
  const char *model;        /* "unet3d" or another of vx_model_names() */
  int depth;                /* invres-*: coupling blocks per level (0: the model's default, 2) */
  int vae;                  /* invres-*: train with the VAE branch */
  int acnorm;               /* dualnorm-unet: batch norms become AC-Norm (fine-tuning from 'pretrained') */
  const char *pretrained;   /* weights to start from (fine-tuning); ignored with resume */
  int patch[3];             /* D, H, W; 0: planned from the dataset and the device's memory */
  int batch;                /* 2 */
  int epochs;               /* 50 */
  int iters_per_epoch;      /* 250 */
  const char *optimizer;    /* "sgd" (Nesterov 0.99), "adamw", "adam" */
  float lr;                 /* < 0: 1e-2 for SGD, 1e-3 for Adam(W); poly decay (1 - e/E)^0.9 */
  float weight_decay;       /* 3e-5 */
  int fold, nfolds;         /* 0, 5 (fold < 0: train and validate on every case) */
  uint64_t seed;            /* 12345: folds, initialisation, sampling */
  int resume;               /* continue from checkpoint_latest.safetensors */
  int skip_nonfinite;       /* 0: a non-finite loss stops the run (the last checkpoint is kept) */
  int levels;               /* 0: from the patch */
  int base_channels;        /* 32 (0: the model's default) */
  int max_channels;         /* 320 (0: the model's default) */
  float overlap;            /* sliding-window overlap of validation (0.5) */
  int threaded_sampler;     /* 1: patches prepared on a host thread while the device trains */
  int stop_after;           /* > 0: stop after this many epochs in this call (continue with resume) */
  float target_spacing[3];  /* x, y, z mm; > 0: every case is resampled to it (images trilinear, labels
                               nearest) and predict resamples to it and back; 0: native spacing */
} vx_train_options;
VX_API void vx_train_options_init(vx_train_options *o);

typedef struct {
  void (*on_plan)(void *user, const char *summary);
  void (*on_iter)(void *user, int epoch, int iter, int iters, float loss, float lr, double iters_per_s,
                  double eta_s);
  void (*on_epoch)(void *user, int epoch, double train_loss, double val_mean_dice, const double *val_dice_per_class,
                   int classes, double seconds, double data_wait_share, int skipped_nonfinite);
  void *user;
} vx_train_callbacks;
/* Runs the whole training; errbuf names the file, field or iteration on failure. */
VX_API vx_status vx_train_run(vx_context *ctx, const vx_train_options *o, const vx_train_callbacks *cb,
                              char *errbuf, size_t errlen);

/* ---------------------------------------------------------------- architecture descriptions */
struct vx_layer_info {
  char name[64];     /* "encoder.0.0.conv", PyTorch-style paths */
  char type[32];     /* "conv3d", "instance_norm+lrelu", ... */
  char detail[96];   /* "32->64 k3 s2 p1" */
  int out_shape[4];  /* C, D, H, W for batch 1 */
  size_t params;
};
/* Every layer of 'model' ("unet3d": nnU-Net's 3d_fullres layout, 32 base channels doubling to
 * 320, 4 levels; "uxnet": 3D UX-Net) for the given channels, classes and patch, computed without
 * allocating device memory. *layers is malloc'ed (vx_free). */
VX_API vx_status vx_model_describe(const char *model, int in_channels, int classes, const int patch[3],
                                   vx_layer_info **layers, int *count, size_t *parameters, char *errbuf,
                                   size_t errlen);

/* ---------------------------------------------------------------- prediction with a trained model */
/* A model folder as `voxcl train` writes it: plan.json (patch, channels and their
 * normalisation, labels, overlap) and model.safetensors (weights + network configuration). */
typedef struct vx_predictor vx_predictor;
VX_API vx_status vx_predictor_open(vx_context *ctx, const char *model_dir, vx_predictor **out, char *errbuf,
                                   size_t errlen);
VX_API void vx_predictor_destroy(vx_predictor *p);
VX_API int vx_predictor_classes(const vx_predictor *p);
VX_API int vx_predictor_channels(const vx_predictor *p);
/* Segments a raw image volume (the plan's normalisation is applied to a copy): labels (nvox
 * floats, may be NULL) receives the argmax, probs ([K, nvox], may be NULL) the probabilities.
 * overlap < 0 takes the plan's; mirror = 1 averages the 8 flips. */
VX_API vx_status vx_predictor_segment(vx_predictor *p, vx_volume *image, float overlap, int mirror, float *labels,
                                      float *probs, vx_progress_fn progress, void *user, char *errbuf,
                                      size_t errlen);

/* ---------------------------------------------------------------- research layers */
/* Masked-region normalisation (DualNorm's explicit region statistics). x: [N, C, D, H, W];
 * m: [N, K, D, H, W] soft class masks (meant to sum to 1 over k; not enforced); gamma, beta:
 * [K, C, 1, 1, 1]. Per sample n, class k and channel c:
 *   mu = sum_v m_k x_c / (sum_v m_k + eps),  var = sum_v m_k (x_c - mu)^2 / (sum_v m_k + eps),
 *   y_c(v) = sum_k m_k(v) [gamma_kc (x_c(v) - mu) / sqrt(var + eps) + beta_kc].
 * save: at least N*K*C*4 floats; receives (mu, 1/sqrt(var + eps), var, 1/(sum m + eps)) per
 * (n, k, c) for the backward. The mask's class count must equal gamma's first dimension. */
VX_API vx_status vx_masked_norm_forward(vx_context *ctx, const vx_tensor *x, const vx_tensor *m,
                                        const vx_tensor *gamma, const vx_tensor *beta, float eps, vx_tensor *y,
                                        vx_tensor *save);
/* Gradients of the same layer from dy and the forward's save (same eps): dx (required),
 * dgamma and dbeta (both or neither), dm (may be NULL: masks treated as constants; needs beta).
 * accumulate adds every gradient to what its tensor holds. Deterministic (no atomics). */
VX_API vx_status vx_masked_norm_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *m,
                                         const vx_tensor *dy, const vx_tensor *gamma, const vx_tensor *beta,
                                         const vx_tensor *save, float eps, vx_tensor *dx, vx_tensor *dgamma,
                                         vx_tensor *dbeta, vx_tensor *dm, int accumulate);

/* Squeeze (3D pixel unshuffle 2x2x2): x [N, C, D, H, W] -> y [N, 8C, D/2, H/2, W/2] with
 *   y[n, c*8 + dz*4 + dy*2 + dx, z, y, x] = x[n, c, 2z+dz, 2y+dy, 2x+dx]
 * (PyTorch pixel_unshuffle's order generalised to 3D). D, H and W must be even (odd sizes are
 * refused: pad first, as the invertible networks do). Unsqueeze is the exact inverse; the
 * backward of each is the other (accumulate adds to dx). */
VX_API vx_status vx_squeeze3d_forward(vx_context *ctx, const vx_tensor *x, vx_tensor *y);
VX_API vx_status vx_squeeze3d_backward(vx_context *ctx, const vx_tensor *dy, vx_tensor *dx, int accumulate);
VX_API vx_status vx_unsqueeze3d_forward(vx_context *ctx, const vx_tensor *x, vx_tensor *y);
VX_API vx_status vx_unsqueeze3d_backward(vx_context *ctx, const vx_tensor *dy, vx_tensor *dx, int accumulate);

/* Orthogonal matrices Q = B * Cayley(W - W^T), Cayley(A) = (I + A)^-1 (I - A), W a free n x n
 * parameter. B is a fixed base: the identity, or (n = 8 only) the 3D Haar matrix whose row
 * i = (fz*4 + fy*2 + fx) is the filter prod_axes h_f(d), h_0 = (1, 1)/sqrt 2 (low), h_1 = (1, -1)/sqrt 2
 * (high), over sub-voxels j = dz*4 + dy*2 + dx. The Haar matrix has eigenvalue -1, which no
 * Cayley matrix has, so it is a base rather than a value of W: with W = 0, Q = B. */
typedef enum { VX_ORTHO_BASE_IDENTITY = 0, VX_ORTHO_BASE_HAAR = 1 } vx_ortho_base;
/* Q (n x n floats, row-major, caller-owned) from W (n x n), computed in double on the host.
 * VX_ERR_INVALID_ARGUMENT for the Haar base with n != 8, VX_ERR_NOT_FINITE for non-finite W. */
VX_API vx_status vx_cayley_orthogonal(const float *w, int n, vx_ortho_base base, float *q);

/* Learned invertible down-sampling (a stride-2 grouped conv with groups = C): x [N, C, D, H, W]
 * (D, H, W even) -> y [N, 8C, D/2, H/2, W/2], y[n, c*8 + i, b] = sum_j Q_c[i][j] x[n, c, sub-voxel j
 * of block b], j ordered as in vx_squeeze3d. w: [C, 8, 8] (C*64 floats, any 5-D shape); Q_c
 * from w's c-th matrix and the base. The inverse (the transposed conv: learned up-sampling)
 * applies Q_c^T and undoes the forward to float rounding. W = 0 with the identity base is
 * vx_squeeze3d. The 8x8 matrices are evaluated on the host (w is downloaded: a sync). */
VX_API vx_status vx_orthogonal_down3d_forward(vx_context *ctx, const vx_tensor *x, const vx_tensor *w,
                                              vx_ortho_base base, vx_tensor *y);
VX_API vx_status vx_orthogonal_down3d_inverse(vx_context *ctx, const vx_tensor *y, const vx_tensor *w,
                                              vx_ortho_base base, vx_tensor *x);
/* Backward of the forward: dx = Q^T dy (dx may be NULL), dw = dL/dW through the Cayley map (may be
 * NULL); accumulate adds to both. */
VX_API vx_status vx_orthogonal_down3d_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *w,
                                               vx_ortho_base base, const vx_tensor *dy, vx_tensor *dx,
                                               vx_tensor *dw, int accumulate);
/* Backward of the inverse: y is the inverse's input, dx the gradient of its output; dy = Q dx and
 * dw (either may be NULL); accumulate adds. */
VX_API vx_status vx_orthogonal_down3d_inverse_backward(vx_context *ctx, const vx_tensor *y, const vx_tensor *w,
                                                       vx_ortho_base base, const vx_tensor *dx, vx_tensor *dy,
                                                       vx_tensor *dw, int accumulate);

/* Orthogonal 1x1x1 channel mixing: y[n, i, v] = sum_j Q[i][j] x[n, j, v], Q = Cayley(W - W^T),
 * w: [C, C] (C*C floats). The inverse applies Q^T. Backwards as for the down-sampling: dx / dy
 * and dw may each be NULL; accumulate adds. */
VX_API vx_status vx_orthogonal_mix_forward(vx_context *ctx, const vx_tensor *x, const vx_tensor *w, vx_tensor *y);
VX_API vx_status vx_orthogonal_mix_inverse(vx_context *ctx, const vx_tensor *y, const vx_tensor *w, vx_tensor *x);
VX_API vx_status vx_orthogonal_mix_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *w,
                                            const vx_tensor *dy, vx_tensor *dx, vx_tensor *dw, int accumulate);
VX_API vx_status vx_orthogonal_mix_inverse_backward(vx_context *ctx, const vx_tensor *y, const vx_tensor *w,
                                                    const vx_tensor *dx, vx_tensor *dy, vx_tensor *dw,
                                                    int accumulate);

/* ---------------------------------------------------------------- coupling and invertible networks */
/* The invertible networks are vx_model networks: "invres-partial" and "invres-full" (see
 * vx_model_config: depth = coupling blocks per level, vae / vae_weight = the VAE branch in
 * training). Inputs of any size are zero-padded to a multiple of 2^(levels-1) and the logits
 * cropped back; base_channels and max_channels must be even (coupling blocks split channels in
 * halves). Their training step keeps no activation inside a coupling block: the backward
 * rebuilds each block's input from its output, so activation memory does not grow with depth.
 * Coupling blocks and their sub-network interface are internal (src/nn/coupling.h). */
/* @@invres-api@@ */

/* ---------------------------------------------------------------- DualNorm and AC-Norm */
/* AC-Norm (layers.md part 4; EndoluminalSurgicalVision-IMR/ACNorm): a batch norm for
 * fine-tuning with a frozen source affine (gamma_s, beta_s) and a trainable target affine
 * (gamma_t, beta_t), all [C] (any tensors of C values). With tau = 1:
 *   y_s = beta_s / (|gamma_s| + eps),  y_t = sg(beta_t) / (|sg(gamma_t)| + eps)
 *   P = row_softmax(-|y_t[i] - y_s[j]| / tau),  S[i][j] = P[i][j] where P[i][j] >= P[i][i], else 0
 *   y = act(x_hat * (gamma_t + sg(S) gamma_t) + (beta_t + sg(S) beta_t))
 * x_hat as vx_batch_norm_forward (batch statistics in training, running statistics moved with
 * momentum; running statistics otherwise). S carries no gradient; gamma_t and beta_t get
 * theirs through both terms: dgamma_t = (I + S)^T dgamma', dbeta_t likewise. */
#define VX_ACNORM_TAU 1.0
/* S (C x C doubles, row-major, caller-owned) from host arrays of C floats; eps > 0 (1e-5).
 * VX_ERR_NOT_FINITE when an input is not finite. */
VX_API vx_status vx_acnorm_similarity(const float *gamma_s, const float *beta_s, const float *gamma_t,
                                      const float *beta_t, int C, float eps, double *S);
/* save: at least 6C + C*C floats: (mean, 1/std) per channel, the effective gamma' and beta',
 * two C-sized scratch slots the backward uses, S. The affines are read back to the host (a
 * sync); S is computed there in double. Other arguments as vx_batch_norm_forward. */
VX_API vx_status vx_acnorm_forward(vx_context *ctx, const vx_tensor *x, const vx_tensor *gamma_s,
                                   const vx_tensor *beta_s, const vx_tensor *gamma_t, const vx_tensor *beta_t,
                                   vx_tensor *running_mean, vx_tensor *running_var, int training, float momentum,
                                   float eps, vx_activation act, float slope, vx_tensor *y, vx_tensor *save);
/* dx (required) and the target affine's gradients (both or neither) from the forward's save
 * (its scratch slots are written); accumulate adds every gradient to what its tensor holds. */
VX_API vx_status vx_acnorm_backward(vx_context *ctx, const vx_tensor *x, const vx_tensor *y, const vx_tensor *dy,
                                    vx_tensor *save, int training, vx_activation act, float slope, vx_tensor *dx,
                                    vx_tensor *dgamma_t, vx_tensor *dbeta_t, int accumulate);
/* Folds the layer into a plain batch norm for inference: gamma_out = gamma_t + S gamma_t,
 * beta_out = beta_t + S beta_t (tensors of C values; may not alias the inputs). */
VX_API vx_status vx_acnorm_fold(vx_context *ctx, const vx_tensor *gamma_s, const vx_tensor *beta_s,
                                const vx_tensor *gamma_t, const vx_tensor *beta_t, float eps, vx_tensor *gamma_out,
                                vx_tensor *beta_out);
/* The layer's AC-Corr term: sum over i, j of S[i][j] (at most C; C when S is a full row-
 * stochastic matrix, e.g. all channels alike). */
VX_API vx_status vx_acnorm_layer_score(vx_context *ctx, const vx_tensor *gamma_s, const vx_tensor *beta_s,
                                       const vx_tensor *gamma_t, const vx_tensor *beta_t, float eps, double *score);

/* A dualnorm-unet built with cfg.acnorm = 1 from a checkpoint of the same network saved with
 * acnorm = 0 (or 1): every affine batch norm's weight and bias become both the frozen source
 * affine (saved state "<norm>.source_weight" / ".source_bias") and the trainable target affine;
 * everything else is copied by name. A file of another architecture (a tensor missing or of
 * another shape, another tensor count) is refused (VX_ERR_SHAPE, naming the file and tensor)
 * and nothing is changed. */
VX_API vx_status vx_model_load_acnorm(vx_model *m, const char *path, char *errbuf, size_t errlen);
/* The AC-Corr transferability score of an acnorm model: the mean over its AC-Norm layers of
 * vx_acnorm_layer_score (source vs current target affine); *layers (may be NULL) gets their count.
 * VX_ERR_INVALID_ARGUMENT for a model without AC-Norm layers. */
VX_API vx_status vx_model_acnorm_score(vx_model *m, double *score, int *layers);
/* @@dualnorm-api@@ */

/* ---------------------------------------------------------------- 3D UX-Net */
/* @@uxnet-api@@ */

#ifdef __cplusplus
}
#endif
#endif /* VOXCL_H */
