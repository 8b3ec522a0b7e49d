/* vx_dataset_check: reads every file of a dataset and lists every problem found, so that one
 * run shows all that must be fixed (nnU-Net's verify_dataset_integrity stops at the first). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/dataset.h"

typedef struct {
  vx_dataset_problem_fn fn;
  void *user;
  vx_strbuf text;
  int count;
} reporter;

static void report(reporter *r, int ci, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void report(reporter *r, int ci, const char *fmt, ...) {
  char msg[1536];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  r->count++;
  vx_sb_printf(&r->text, "%s\n", msg);
  if (r->fn) r->fn(r->user, ci, msg);
}

/* The first file of a case that could be read: what the others are compared with. */
typedef struct {
  int set;
  int dims[3];
  double affine[16];
  const char *path;
} reference;

static void compare_geometry(const vx_dataset *ds, reporter *r, int ci, reference *ref, vx_volume *v,
                             const char *path, const char *what) {
  int d[4];
  double m[16];
  vx_volume_dims(v, d);
  vx_volume_affine(v, m);
  if (!ref->set) {
    ref->set = 1;
    memcpy(ref->dims, d, sizeof ref->dims);
    memcpy(ref->affine, m, sizeof m);
    ref->path = path;
    return;
  }
  if (d[0] != ref->dims[0] || d[1] != ref->dims[1] || d[2] != ref->dims[2]) {
    report(r, ci, "%s: shape %dx%dx%d differs from %s (%s: %dx%dx%d)", vx_ds_rel(ds, path), d[0], d[1], d[2], what,
           vx_ds_rel(ds, ref->path), ref->dims[0], ref->dims[1], ref->dims[2]);
    return; /* the transforms of different grids are not comparable */
  }
  int row = 0, col = 0;
  double excess = vx_ds_affine_excess(m, ref->affine, &row, &col);
  if (excess > 0)
    report(r, ci, "%s: transform differs from %s's (%s) by %g at row %d column %d (%g vs %g; tolerance 1e-3)",
           vx_ds_rel(ds, path), what, vx_ds_rel(ds, ref->path), excess, row, col, m[row * 4 + col],
           ref->affine[row * 4 + col]);
}

static size_t count_nonfinite(const float *x, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) k += !isfinite(x[i]);
  return k;
}

/* Reads one file, reporting a missing or unreadable one; NULL then. */
static vx_volume *read_or_report(const vx_dataset *ds, reporter *r, int ci, const char *path, const char *missing_what) {
  if (!vx_ds_is_file(path)) {
    report(r, ci, "%s: %s is missing", vx_ds_rel(ds, path), missing_what);
    return NULL;
  }
  vx_volume *v = NULL;
  char msg[1024], rel[1024];
  if (vx_volume_read(path, &v, msg, sizeof msg) != VX_OK) {
    vx_ds_relmsg(ds, msg, rel, sizeof rel);
    report(r, ci, "%s", rel);
    return NULL;
  }
  return v;
}

static void check_label_values(const vx_dataset *ds, reporter *r, int ci, vx_volume *lab, const char *path) {
  int d[4];
  vx_volume_dims(lab, d);
  const float *l = vx_volume_data(lab);
  size_t n = (size_t)d[0] * d[1] * d[2] * d[3], nonint = 0, undeclared = 0;
  float first_nonint = 0, seen[8];
  int nseen = 0, more = 0;
  for (size_t i = 0; i < n; i++) {
    float v = l[i];
    if (vx_ds_label_declared(ds, v)) continue;
    if (!isfinite(v) || v != floorf(v)) {
      if (!nonint++) first_nonint = v;
      continue;
    }
    undeclared++;
    int known = 0;
    for (int k = 0; k < nseen && !known; k++) known = seen[k] == v;
    if (!known && nseen < 8) seen[nseen++] = v;
    else if (!known) more = 1;
  }
  if (undeclared) {
    char list[160] = "";
    size_t at = 0;
    for (int k = 0; k < nseen && at < sizeof list; k++)
      at += (size_t)snprintf(list + at, sizeof list - at, "%s%g", k ? ", " : "", seen[k]);
    report(r, ci, "%s: value%s %s%s (%zu voxel%s) not declared in dataset.json 'labels' (it declares 0..%d)",
           vx_ds_rel(ds, path), nseen > 1 || more ? "s" : "", list, more ? ", ..." : "", undeclared,
           undeclared == 1 ? "" : "s", ds->nclasses - 1);
  }
  if (nonint)
    report(r, ci, "%s: %zu voxel%s hold non-integer or non-finite values (first %g); labels are class indices",
           vx_ds_rel(ds, path), nonint, nonint == 1 ? "" : "s", first_nonint);
}

static void update_summary(vx_dataset_summary *s, vx_volume *v) {
  int d[4];
  float sp[3];
  vx_volume_dims(v, d);
  vx_volume_spacing(v, sp);
  for (int a = 0; a < 3; a++) {
    if (!s->cases_read || d[a] < s->shape_min[a]) s->shape_min[a] = d[a];
    if (!s->cases_read || d[a] > s->shape_max[a]) s->shape_max[a] = d[a];
    if (!s->cases_read || sp[a] < s->spacing_min[a]) s->spacing_min[a] = sp[a];
    if (!s->cases_read || sp[a] > s->spacing_max[a]) s->spacing_max[a] = sp[a];
  }
  s->cases_read++;
}

static void check_case(const vx_dataset *ds, reporter *r, int ci, vx_dataset_summary *s) {
  const vx_ds_case *c = &ds->cases[ci];
  reference ref = {0};
  int counted = 0;
  for (int k = 0; k < c->nimage; k++) {
    char what[320];
    if (c->four_d) snprintf(what, sizeof what, "the image of case %s", c->id);
    else snprintf(what, sizeof what, "channel %d of case %s", k, c->id);
    vx_volume *v = read_or_report(ds, r, ci, c->image[k], what);
    if (!v) continue;
    int d[4];
    vx_volume_dims(v, d);
    int want = c->four_d ? ds->nchannels : 1;
    if (d[3] != want)
      report(r, ci, "%s: holds %d channel%s, expected %d (%s)", vx_ds_rel(ds, c->image[k]), d[3], d[3] == 1 ? "" : "s",
             want, c->four_d ? "dataset.json declares them" : "the nnU-Net layout has one file per channel");
    size_t bad = count_nonfinite(vx_volume_data(v), (size_t)d[0] * d[1] * d[2] * d[3]);
    if (bad) report(r, ci, "%s: %zu voxel%s NaN or infinite", vx_ds_rel(ds, c->image[k]), bad, bad == 1 ? " is" : "s are");
    compare_geometry(ds, r, ci, &ref, v, c->image[k], "channel 0");
    if (!counted) {
      update_summary(s, v);
      counted = 1;
    }
    vx_volume_destroy(v);
  }
  if (!c->label) {
    report(r, ci, "dataset.json: case %s has no 'label' in 'training'", c->id);
    return;
  }
  char what[320];
  snprintf(what, sizeof what, "label of case %s", c->id);
  vx_volume *lab = read_or_report(ds, r, ci, c->label, what);
  if (!lab) return;
  int d[4];
  vx_volume_dims(lab, d);
  if (d[3] != 1) report(r, ci, "%s: holds %d channels, a label has one", vx_ds_rel(ds, c->label), d[3]);
  compare_geometry(ds, r, ci, &ref, lab, c->label, "the image");
  check_label_values(ds, r, ci, lab, c->label);
  vx_volume_destroy(lab);
}

vx_status vx_dataset_check(const vx_dataset *ds, vx_dataset_problem_fn fn, void *user, char **text,
                           vx_dataset_summary *summary) {
  if (text) *text = NULL;
  if (!ds) return VX_ERR_INVALID_ARGUMENT;
  reporter r = {fn, user, {0}, 0};
  vx_dataset_summary s;
  memset(&s, 0, sizeof s);
  s.cases = ds->ncases;
  s.channels = ds->nchannels;
  s.classes = ds->nclasses;

  /* the dataset as a whole first */
  for (int i = 0; i < ds->nnotes; i++) report(&r, -1, "%s", ds->notes[i]);
  if (ds->num_training >= 0 && ds->num_training != ds->ncases)
    report(&r, -1, "dataset.json: 'numTraining' is %d but %s %d case%s", ds->num_training,
           ds->layout == VX_LAYOUT_MSD ? "'training' lists" : "imagesTr/labelsTr hold", ds->ncases,
           ds->ncases == 1 ? "" : "s");
  for (int v = 1; v < ds->nclasses; v++)
    if (!ds->label_name[v]) {
      report(&r, -1, "dataset.json: 'labels' skips value %d (values must be consecutive, 0..%d)", v, ds->nclasses - 1);
      break;
    }
  if (ds->ncases == 0)
    report(&r, -1, "%s: no cases found", ds->layout == VX_LAYOUT_MSD ? "dataset.json 'training'" : "imagesTr");

  for (int i = 0; i < ds->ncases; i++) {
    check_case(ds, &r, i, &s);
    if (fn) fn(user, i, NULL);
  }
  s.problems = r.count;
  if (summary) *summary = s;
  if (r.text.oom) {
    free(r.text.s);
    return VX_ERR_OUT_OF_MEMORY;
  }
  if (text) {
    *text = r.text.s ? r.text.s : calloc(1, 1);
    if (!*text) return VX_ERR_OUT_OF_MEMORY;
  } else {
    free(r.text.s);
  }
  return VX_OK;
}
