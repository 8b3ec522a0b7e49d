/* PNG line plots for training curves (internal; used by the training loop and the CLI). */
#ifndef VX_PLOT_H
#define VX_PLOT_H
#include "voxcl.h"

typedef struct {
  const char *name;
  const double *x, *y;
  int n;
  int right_axis; /* 1: scaled on the right-hand axis (e.g. Dice next to a loss) */
} vx_plot_series;

vx_status vx_plot_png(const char *path, const char *title, const char *xlabel, const vx_plot_series *series,
                      int nseries, char *errbuf, size_t errlen);
#endif
