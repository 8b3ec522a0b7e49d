/* Internals of the dataset layer shared by dataset.c (open, load, folds), dataset_check.c
 * (vx_dataset_check) and dataset_synth.c: the parsed dataset.json and the case list. */
#ifndef VX_DATASET_H
#define VX_DATASET_H

#include <stdarg.h>
#include <stddef.h>

#include "voxcl.h"

typedef struct {
  char *id;
  char **image;   /* full paths: one per channel, or one 4-D file (four_d) */
  int nimage;
  int four_d;
  char *label;    /* full path; NULL where no label is declared (MSD entry without one) */
} vx_ds_case;

struct vx_dataset {
  char *dir;          /* as given, without trailing '/' */
  char *name;
  vx_dataset_layout layout;
  char *ending;       /* ".nii.gz" or ".nii" (nnU-Net) */
  int nchannels;
  char **channel;     /* [nchannels] */
  int nclasses;       /* largest declared value + 1 */
  char **label_name;  /* [nclasses]; NULL where the value is not declared */
  int num_training;   /* -1 when absent */
  vx_ds_case *cases;
  int ncases;
  char **notes;       /* problems found while opening that do not prevent it (stray files...) */
  int nnotes;
};

/* A growing text buffer; on allocation failure 'oom' is set and appends are dropped. */
typedef struct {
  char *s;
  size_t len, cap;
  int oom;
} vx_strbuf;
void vx_sb_printf(vx_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vx_sb_vprintf(vx_strbuf *b, const char *fmt, va_list ap);

/* The path relative to the dataset folder when it lies inside it (for messages). */
const char *vx_ds_rel(const vx_dataset *ds, const char *path);
/* Copies msg into errbuf, writing full paths under the dataset folder as relative ones. */
void vx_ds_relmsg(const vx_dataset *ds, const char *msg, char *out, size_t outlen);
int vx_ds_is_file(const char *path);
/* Largest |a - b| over two 4x4 affines beyond the tolerance (0 when they agree); where at
 * *row, *col. */
double vx_ds_affine_excess(const double a[16], const double b[16], int *row, int *col);
/* Label values: 1 when v is an integer declared in dataset.json. */
int vx_ds_label_declared(const vx_dataset *ds, float v);

#endif
