/* The table of kernel sources that CMake embeds from the kernels folder (one entry per .cl file). */
#ifndef VX_KERNELS_EMBEDDED_H
#define VX_KERNELS_EMBEDDED_H
#include <stddef.h>

typedef struct {
  const char *name;   /* file name without .cl */
  const char *source; /* NUL-terminated */
  size_t length;
} vx_embedded_kernel;

extern const vx_embedded_kernel vx_embedded_kernels[]; /* ends with a NULL name */

#endif
