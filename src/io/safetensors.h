/* The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian
 * header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}},
 * then the raw little-endian data. voxcl writes and reads F32 tensors only. */
#ifndef VX_SAFETENSORS_H
#define VX_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "voxcl.h"

typedef struct {
  const char *name;
  int ndim;
  int64_t shape[8];
  const float *data; /* numel floats */
  size_t numel;
} vx_st_tensor;

/* Writes tensors + metadata (NULL-terminated key, value pairs; may be NULL) to path through a
 * temporary file that is flushed and renamed, so a crash never destroys an existing file. */
vx_status vx_safetensors_write(const char *path, const vx_st_tensor *t, int n, const char *const *metadata,
                               char *errbuf, size_t errlen);

typedef struct vx_st_file vx_st_file;
/* Reads and validates the whole file (header JSON, dtypes, offsets inside the data, no overlap). */
vx_status vx_safetensors_open(const char *path, vx_st_file **out, char *errbuf, size_t errlen);
void vx_safetensors_close(vx_st_file *f);
/* Finds a tensor: its shape and data (owned by f); NULL when absent. */
const float *vx_safetensors_find(const vx_st_file *f, const char *name, int *ndim, int64_t shape[8]);
/* A metadata value or NULL. */
const char *vx_safetensors_meta(const vx_st_file *f, const char *key);
int vx_safetensors_count(const vx_st_file *f);
/* All metadata as a malloc'ed JSON object string. */
char *vx_safetensors_meta_json(const vx_st_file *f);

#endif
