/* Internal to the NIfTI reader (nifti.c) and writer (nifti_write.c): the volume struct and
 * small helpers they share. */
#ifndef VX_NIFTI_INTERNAL_H
#define VX_NIFTI_INTERNAL_H

#include <nifti2_io.h>
#include <stdarg.h>

#include "util.h"
#include "voxcl.h"

struct vx_volume {
  int dims[4];        /* nx, ny, nz, channels */
  float spacing[3];   /* mm */
  double affine[16];  /* voxel -> world, row-major */
  int datatype;       /* NIfTI DT_* code of the file read (DT_FLOAT32 for created volumes) */
  int version;        /* NIfTI-1 or -2 (1 for created volumes) */
  nifti_image *hdr;   /* header fields and transforms; no data, no extensions */
  float *data;        /* [C, Z, Y, X], x fastest */
};

/* Case-insensitive suffix test (suffix in lower case). */
int vx_nifti_ends_with(const char *s, const char *suffix);
/* Bytes per voxel of a datatype voxcl reads, 0 for the others. */
int vx_nifti_datatype_size(int dt);

#endif
