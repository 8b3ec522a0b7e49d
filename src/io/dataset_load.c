/* Loading a dataset's case (channels stacked into one volume, the label checked against
 * dataset.json) and K-fold splits of the cases. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/dataset.h"
#include "nn/nn.h"
#include "util.h"

/* ---------------------------------------------------------------- loading */

static vx_status read_rel(const vx_dataset *ds, const char *path, vx_volume **v, char *errbuf, size_t errlen) {
  char msg[1024];
  vx_status st = vx_volume_read(path, v, msg, sizeof msg);
  if (st != VX_OK) vx_ds_relmsg(ds, msg, errbuf, errlen);
  return st;
}

static vx_status load_image(const vx_dataset *ds, const vx_ds_case *c, vx_volume **out, char *errbuf,
                            size_t errlen) {
  vx_status st;
  if (c->four_d) {
    if (!vx_ds_is_file(c->image[0]))
      return vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: image of case %s is missing", vx_ds_rel(ds, c->image[0]), c->id);
    if ((st = read_rel(ds, c->image[0], out, errbuf, errlen)) != VX_OK) return st;
    int d[4];
    vx_volume_dims(*out, d);
    if (d[3] != ds->nchannels) {
      vx_volume_destroy(*out);
      *out = NULL;
      return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT, "%s: holds %d channel%s, dataset.json declares %d",
                  vx_ds_rel(ds, c->image[0]), d[3], d[3] == 1 ? "" : "s", ds->nchannels);
    }
    return VX_OK;
  }
  vx_volume *stack = NULL;
  int d0[4] = {0};
  float sp[3];
  for (int k = 0; k < c->nimage; k++) {
    vx_volume *v = NULL;
    if (!vx_ds_is_file(c->image[k])) {
      st = vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: channel %d of case %s is missing", vx_ds_rel(ds, c->image[k]), k, c->id);
      goto bad;
    }
    if ((st = read_rel(ds, c->image[k], &v, errbuf, errlen)) != VX_OK) goto bad;
    int d[4];
    vx_volume_dims(v, d);
    if (d[3] != 1) {
      st = vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT, "%s: holds %d channels; the nnU-Net layout has one file per channel",
                vx_ds_rel(ds, c->image[k]), d[3]);
      vx_volume_destroy(v);
      goto bad;
    }
    if (k == 0) {
      memcpy(d0, d, sizeof d0);
      if (c->nimage == 1) {
        *out = v;
        return VX_OK;
      }
      vx_volume_spacing(v, sp);
      if ((st = vx_volume_create(d[0], d[1], d[2], c->nimage, sp, &stack)) != VX_OK) {
        vx_errbuf_fail(errbuf, errlen, st, "case %s: cannot allocate %d channels of %dx%dx%d", c->id, c->nimage, d[0], d[1], d[2]);
        vx_volume_destroy(v);
        goto bad;
      }
    } else if (d[0] != d0[0] || d[1] != d0[1] || d[2] != d0[2]) {
      st = vx_errbuf_fail(errbuf, errlen, VX_ERR_SHAPE, "%s: shape %dx%dx%d differs from channel 0 (%s: %dx%dx%d)",
                vx_ds_rel(ds, c->image[k]), d[0], d[1], d[2], vx_ds_rel(ds, c->image[0]), d0[0], d0[1], d0[2]);
      vx_volume_destroy(v);
      goto bad;
    }
    memcpy(vx_volume_channel(stack, k), vx_volume_data(v), (size_t)d[0] * d[1] * d[2] * sizeof(float));
    vx_volume_destroy(v);
  }
  *out = stack;
  return VX_OK;
bad:
  vx_volume_destroy(stack);
  return st;
}

static vx_status load_label(const vx_dataset *ds, const vx_ds_case *c, const vx_volume *image, vx_volume **out,
                            char *errbuf, size_t errlen) {
  if (!c->label) return vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "dataset.json: case %s has no 'label'", c->id);
  if (!vx_ds_is_file(c->label))
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: label of case %s is missing", vx_ds_rel(ds, c->label), c->id);
  vx_status st = read_rel(ds, c->label, out, errbuf, errlen);
  if (st != VX_OK) return st;
  int d[4], di[4];
  vx_volume_dims(*out, d);
  if (d[3] != 1) {
    st = vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT, "%s: holds %d channels, a label has one", vx_ds_rel(ds, c->label), d[3]);
    goto bad;
  }
  if (image) {
    vx_volume_dims(image, di);
    if (d[0] != di[0] || d[1] != di[1] || d[2] != di[2]) {
      st = vx_errbuf_fail(errbuf, errlen, VX_ERR_SHAPE, "%s: shape %dx%dx%d differs from the image's %dx%dx%d",
                vx_ds_rel(ds, c->label), d[0], d[1], d[2], di[0], di[1], di[2]);
      goto bad;
    }
  }
  const float *l = vx_volume_data(*out);
  size_t n = (size_t)d[0] * d[1] * d[2], bad = 0, first = 0;
  for (size_t i = 0; i < n; i++)
    if (!vx_ds_label_declared(ds, l[i]) && !bad++) first = i;
  if (bad) {
    size_t x = first % (size_t)d[0], y = first / (size_t)d[0] % (size_t)d[1], z = first / ((size_t)d[0] * d[1]);
    st = vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT,
              "%s: value %g at voxel (%zu, %zu, %zu) is not a label declared in dataset.json 'labels' (%zu such voxel%s)",
              vx_ds_rel(ds, c->label), l[first], x, y, z, bad, bad == 1 ? "" : "s");
    goto bad;
  }
  return VX_OK;
bad:
  vx_volume_destroy(*out);
  *out = NULL;
  return st;
}

vx_status vx_dataset_load_case(const vx_dataset *ds, int i, vx_volume **image, vx_volume **label, char *errbuf,
                               size_t errlen) {
  if (errbuf && errlen) errbuf[0] = 0;
  if (image) *image = NULL;
  if (label) *label = NULL;
  if (!ds || i < 0 || i >= ds->ncases || (!image && !label))
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "vx_dataset_load_case: case %d of %d (or no output asked)", i,
                ds ? ds->ncases : 0);
  const vx_ds_case *c = &ds->cases[i];
  vx_volume *img = NULL;
  vx_status st = image ? load_image(ds, c, &img, errbuf, errlen) : VX_OK;
  if (st == VX_OK && label) st = load_label(ds, c, img, label, errbuf, errlen);
  if (st != VX_OK) {
    vx_volume_destroy(img);
    return st;
  }
  if (image) *image = img;
  return VX_OK;
}

/* ---------------------------------------------------------------- folds */

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

vx_status vx_fold_split(int n, int k, int nfolds, uint64_t seed, int *train_idx, int *ntrain, int *val_idx,
                        int *nval) {
  if (nfolds < 2 || n < nfolds || k < 0 || k >= nfolds || !train_idx || !val_idx || !ntrain || !nval)
    return VX_ERR_INVALID_ARGUMENT;
  int *perm = malloc((size_t)n * sizeof *perm);
  if (!perm) return VX_ERR_OUT_OF_MEMORY;
  for (int i = 0; i < n; i++) perm[i] = i;
  uint64_t rng = seed;
  for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
    int j = (int)(vx_rng_next(&rng) % (uint64_t)(i + 1));
    int t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  int lo = (int)((long long)k * n / nfolds), hi = (int)((long long)(k + 1) * n / nfolds);
  *ntrain = *nval = 0;
  for (int i = 0; i < n; i++) {
    if (i >= lo && i < hi) val_idx[(*nval)++] = perm[i];
    else train_idx[(*ntrain)++] = perm[i];
  }
  free(perm);
  qsort(val_idx, (size_t)*nval, sizeof *val_idx, cmp_int);
  qsort(train_idx, (size_t)*ntrain, sizeof *train_idx, cmp_int);
  return VX_OK;
}

vx_status vx_dataset_fold(const vx_dataset *ds, int k, int nfolds, uint64_t seed, int *train_idx, int *ntrain,
                          int *val_idx, int *nval) {
  if (!ds) return VX_ERR_INVALID_ARGUMENT;
  return vx_fold_split(ds->ncases, k, nfolds, seed, train_idx, ntrain, val_idx, nval);
}
