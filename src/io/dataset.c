/* Datasets on disk: opening a folder in the nnU-Net or the Medical Segmentation Decathlon
 * layout (dataset.json through jansson, the case list from imagesTr/labelsTr or from the
 * "training" list) and the accessors. Loading cases and folds: dataset_load.c.
 * Problems that do not prevent opening (stray files, a bad numTraining) are kept as notes for
 * vx_dataset_check, which lives in dataset_check.c. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "io/dataset.h"
#include "util.h"

#define VX_DS_MAX_LABEL 65535 /* label values above this are surely a mistake */

/* ---------------------------------------------------------------- small helpers */

void vx_sb_vprintf(vx_strbuf *b, const char *fmt, va_list ap) {
  if (b->oom) return;
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) return;
  if (b->len + (size_t)n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + (size_t)n + 1) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
      b->oom = 1;
      return;
    }
    b->s = s;
    b->cap = cap;
  }
  vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
  b->len += (size_t)n;
}

void vx_sb_printf(vx_strbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vx_sb_vprintf(b, fmt, ap);
  va_end(ap);
}

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

static char *joinf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *joinf(const char *fmt, ...) {
  vx_strbuf b = {0};
  va_list ap;
  va_start(ap, fmt);
  vx_sb_vprintf(&b, fmt, ap);
  va_end(ap);
  if (b.oom) free(b.s);
  return b.oom ? NULL : b.s;
}

int vx_ds_is_file(const char *path) {
  struct stat sb;
  return path && stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && !strcmp(s + n - m, suffix);
}

const char *vx_ds_rel(const vx_dataset *ds, const char *path) {
  size_t n = strlen(ds->dir);
  if (path && !strncmp(path, ds->dir, n) && path[n] == '/') return path + n + 1;
  return path ? path : "(none)";
}

void vx_ds_relmsg(const vx_dataset *ds, const char *msg, char *out, size_t outlen) {
  if (!out || !outlen) return;
  size_t n = strlen(ds->dir), at = 0;
  while (*msg && at + 1 < outlen) {
    if (!strncmp(msg, ds->dir, n) && msg[n] == '/') {
      msg += n + 1;
      continue;
    }
    out[at++] = *msg++;
  }
  out[at] = 0;
}

/* Tolerance of affine comparisons: 1e-3 relative, 1e-3 absolute for entries below 1 (the
 * sform is stored as float32, and converters round origins differently). */
double vx_ds_affine_excess(const double a[16], const double b[16], int *row, int *col) {
  double worst = 0;
  for (int i = 0; i < 16; i++) {
    double d = fabs(a[i] - b[i]), m = fmax(1.0, fmax(fabs(a[i]), fabs(b[i])));
    if (!(d <= 1e-3 * m) && (d > worst || isnan(d))) {
      worst = isnan(d) ? INFINITY : d;
      if (row) *row = i / 4;
      if (col) *col = i % 4;
    }
  }
  return worst;
}

int vx_ds_label_declared(const vx_dataset *ds, float v) {
  if (!(v >= 0) || v >= (float)ds->nclasses || v != floorf(v)) return 0;
  return ds->label_name[(int)v] != NULL;
}

static void add_note(vx_dataset *ds, char *note) {
  if (!note) return;
  char **n = realloc(ds->notes, (size_t)(ds->nnotes + 1) * sizeof *n);
  if (!n) {
    free(note);
    return;
  }
  ds->notes = n;
  ds->notes[ds->nnotes++] = note;
}

/* ---------------------------------------------------------------- dataset.json */

/* "0": "CT", "1": "T2" ... with keys exactly 0..n-1. */
static void parse_channels(vx_dataset *ds, json_t *root, vx_strbuf *err) {
  const char *field = json_object_get(root, "channel_names") ? "channel_names" : "modality";
  json_t *obj = json_object_get(root, field);
  if (!obj) {
    vx_sb_printf(err, "%sdataset.json: '%s' missing", err->len ? "; " : "",
                 ds->layout == VX_LAYOUT_MSD ? "modality" : "channel_names");
    return;
  }
  if (!json_is_object(obj) || json_object_size(obj) == 0) {
    vx_sb_printf(err, "%sdataset.json: '%s' is not an object of channel names", err->len ? "; " : "", field);
    return;
  }
  int n = (int)json_object_size(obj);
  ds->channel = calloc((size_t)n, sizeof *ds->channel);
  if (!ds->channel) {
    err->oom = 1;
    return;
  }
  ds->nchannels = n;
  const char *key;
  json_t *val;
  json_object_foreach(obj, key, val) {
    char *end;
    long c = strtol(key, &end, 10);
    if (!*key || *end || c < 0 || c >= n || !json_is_string(val)) {
      vx_sb_printf(err, "%sdataset.json: '%s'.'%s' must map a channel index 0..%d to a name", err->len ? "; " : "",
                   field, key, n - 1);
      continue;
    }
    free(ds->channel[c]);
    ds->channel[c] = dupstr(json_string_value(val));
  }
  for (int c = 0; c < n; c++)
    if (!ds->channel[c]) {
      vx_sb_printf(err, "%sdataset.json: '%s' has no channel %d (keys must be 0..%d)", err->len ? "; " : "", field, c,
                   n - 1);
      break;
    }
}

/* Declares value v with 'name'; scalar entries take precedence over regions for the name. */
static int declare_label(vx_dataset *ds, long v, const char *name, int scalar, vx_strbuf *err) {
  if (v < 0 || v > VX_DS_MAX_LABEL) {
    vx_sb_printf(err, "%sdataset.json: 'labels': '%s' has value %ld, outside 0..%d", err->len ? "; " : "", name, v,
                 VX_DS_MAX_LABEL);
    return 0;
  }
  if (v >= ds->nclasses) {
    char **ln = realloc(ds->label_name, (size_t)(v + 1) * sizeof *ln);
    if (!ln) {
      err->oom = 1;
      return 0;
    }
    for (long i = ds->nclasses; i <= v; i++) ln[i] = NULL;
    ds->label_name = ln;
    ds->nclasses = (int)v + 1;
  }
  if (ds->label_name[v] && scalar) {
    if (strcmp(ds->label_name[v], name))
      vx_sb_printf(err, "%sdataset.json: 'labels': value %ld is declared twice ('%s' and '%s')", err->len ? "; " : "",
                   v, ds->label_name[v], name);
    return 1;
  }
  if (!ds->label_name[v] || scalar) {
    free(ds->label_name[v]);
    ds->label_name[v] = dupstr(name);
  }
  return 1;
}

/* nnU-Net: {"background": 0, "liver": 1, "region": [1, 2]}; MSD: {"0": "background"}. */
static void parse_labels(vx_dataset *ds, json_t *root, vx_strbuf *err) {
  json_t *obj = json_object_get(root, "labels");
  if (!obj) {
    vx_sb_printf(err, "%sdataset.json: 'labels' missing", err->len ? "; " : "");
    return;
  }
  if (!json_is_object(obj) || json_object_size(obj) == 0) {
    vx_sb_printf(err, "%sdataset.json: 'labels' is not an object of label names and values", err->len ? "; " : "");
    return;
  }
  const char *key;
  json_t *val;
  /* scalars first so that they name their values, then regions */
  for (int pass = 0; pass < 2; pass++) {
    json_object_foreach(obj, key, val) {
      if (pass == 0 && json_is_integer(val)) {
        declare_label(ds, (long)json_integer_value(val), key, 1, err);
      } else if (pass == 0 && json_is_string(val)) {
        char *end;
        long v = strtol(key, &end, 10);
        if (!*key || *end)
          vx_sb_printf(err, "%sdataset.json: 'labels'.'%s': a name as value needs an integer key (MSD style)",
                       err->len ? "; " : "", key);
        else declare_label(ds, v, json_string_value(val), 1, err);
      } else if (pass == 1 && json_is_array(val) && json_array_size(val) > 0) {
        size_t i;
        json_t *e;
        json_array_foreach(val, i, e) {
          if (!json_is_integer(e)) {
            vx_sb_printf(err, "%sdataset.json: 'labels'.'%s'[%zu] is not an integer", err->len ? "; " : "", key, i);
            break;
          }
          declare_label(ds, (long)json_integer_value(e), key, 0, err);
        }
      } else if (pass == 0 && !json_is_integer(val) && !json_is_string(val) &&
                 !(json_is_array(val) && json_array_size(val) > 0)) {
        vx_sb_printf(err, "%sdataset.json: 'labels'.'%s' is not an integer, a list of integers or a name",
                     err->len ? "; " : "", key);
      }
    }
  }
  if (ds->nclasses > 0 && !ds->label_name[0])
    vx_sb_printf(err, "%sdataset.json: 'labels' declares no background (value 0)", err->len ? "; " : "");
}

/* ---------------------------------------------------------------- case lists */

static int cmp_case(const void *a, const void *b) {
  return strcmp(((const vx_ds_case *)a)->id, ((const vx_ds_case *)b)->id);
}

/* Appends a case; duplicates (several channel files, the label) are merged after sorting. */
static vx_ds_case *add_case(vx_dataset *ds, const char *id, size_t idlen, int *cap) {
  if (ds->ncases == *cap) {
    int ncap = *cap ? *cap * 2 : 64;
    vx_ds_case *c = realloc(ds->cases, (size_t)ncap * sizeof *c);
    if (!c) return NULL;
    ds->cases = c;
    *cap = ncap;
  }
  vx_ds_case *c = &ds->cases[ds->ncases];
  memset(c, 0, sizeof *c);
  c->id = malloc(idlen + 1);
  if (!c->id) return NULL;
  memcpy(c->id, id, idlen);
  c->id[idlen] = 0;
  ds->ncases++;
  return c;
}

/* Sorts the cases by id and drops repeated ids (before any paths are attached). */
static void sort_unique_cases(vx_dataset *ds) {
  if (ds->ncases == 0) return;
  qsort(ds->cases, (size_t)ds->ncases, sizeof *ds->cases, cmp_case);
  int m = 0;
  for (int i = 0; i < ds->ncases; i++) {
    if (m > 0 && !strcmp(ds->cases[m - 1].id, ds->cases[i].id)) free(ds->cases[i].id);
    else ds->cases[m++] = ds->cases[i];
  }
  ds->ncases = m;
}

/* Lists the names of regular, non-hidden files in dir/sub; NULL-terminated, sorted. */
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static char **list_files(const char *dir, const char *sub, int *n, int *err_no) {
  char *path = joinf("%s/%s", dir, sub);
  DIR *d = path ? opendir(path) : NULL;
  *n = 0;
  *err_no = path ? errno : ENOMEM;
  if (!d) {
    free(path);
    return NULL;
  }
  char **names = NULL;
  int cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue; /* ".", "..", hidden and voxcl temporary files */
    char *full = joinf("%s/%s", path, e->d_name);
    int reg = vx_ds_is_file(full);
    free(full);
    if (!reg) continue;
    if (*n + 1 >= cap) {
      cap = cap ? cap * 2 : 256;
      char **nn = realloc(names, (size_t)cap * sizeof *nn);
      if (!nn) break;
      names = nn;
    }
    if (!(names[*n] = dupstr(e->d_name))) break;
    (*n)++;
  }
  closedir(d);
  free(path);
  if (!names) names = calloc(1, sizeof *names);
  if (!names) return NULL;
  names[*n] = NULL;
  qsort(names, (size_t)*n, sizeof *names, cmp_str);
  return names;
}

static void free_list(char **l) {
  for (int i = 0; l && l[i]; i++) free(l[i]);
  free(l);
}

/* nnU-Net: cases are the union of ids in imagesTr (CASE_XXXX<ending>) and labelsTr. */
static vx_status scan_nnunet(vx_dataset *ds, char *errbuf, size_t errlen) {
  int nimg, nlab, e1, e2, cap = 0;
  char **img = list_files(ds->dir, "imagesTr", &nimg, &e1);
  if (!img) return vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s/imagesTr: cannot open: %s", ds->dir, strerror(e1));
  char **lab = list_files(ds->dir, "labelsTr", &nlab, &e2);
  if (!lab) add_note(ds, joinf("labelsTr: cannot open: %s", strerror(e2)));
  size_t el = strlen(ds->ending);
  vx_status st = VX_OK;
  for (int i = 0; i < nimg && st == VX_OK; i++) {
    const char *f = img[i];
    size_t n = strlen(f);
    int ok = ends_with(f, ds->ending) && n >= el + 6 && f[n - el - 5] == '_';
    for (size_t k = n - el - 4; ok && k < n - el; k++) ok = isdigit((unsigned char)f[k]);
    if (!ok) {
      add_note(ds, joinf("imagesTr/%s: not a channel file (expected CASE_XXXX%s)", f, ds->ending));
      continue;
    }
    int ch = atoi(f + n - el - 4);
    if (ch >= ds->nchannels)
      add_note(ds, joinf("imagesTr/%s: channel %d is not declared in dataset.json 'channel_names' (%d channel%s)", f,
                         ch, ds->nchannels, ds->nchannels == 1 ? "" : "s"));
    if (!add_case(ds, f, n - el - 5, &cap)) st = VX_ERR_OUT_OF_MEMORY;
  }
  for (int i = 0; i < nlab && st == VX_OK; i++) {
    if (!ends_with(lab[i], ds->ending)) {
      add_note(ds, joinf("labelsTr/%s: not a label file (expected CASE%s)", lab[i], ds->ending));
      continue;
    }
    if (!add_case(ds, lab[i], strlen(lab[i]) - el, &cap)) st = VX_ERR_OUT_OF_MEMORY;
  }
  free_list(img);
  free_list(lab);
  if (st == VX_OK) sort_unique_cases(ds);
  for (int i = 0; i < ds->ncases && st == VX_OK; i++) {
    vx_ds_case *c = &ds->cases[i];
    c->nimage = ds->nchannels;
    c->image = calloc((size_t)c->nimage, sizeof *c->image);
    c->label = joinf("%s/labelsTr/%s%s", ds->dir, c->id, ds->ending);
    if (!c->image || !c->label) st = VX_ERR_OUT_OF_MEMORY;
    for (int k = 0; k < c->nimage && st == VX_OK; k++)
      if (!(c->image[k] = joinf("%s/imagesTr/%s_%04d%s", ds->dir, c->id, k, ds->ending))) st = VX_ERR_OUT_OF_MEMORY;
  }
  if (st != VX_OK) return vx_errbuf_fail(errbuf, errlen, st, "%s: out of memory listing the cases", ds->dir);
  return VX_OK;
}

static const char *strip_dot(const char *p) { return !strncmp(p, "./", 2) ? p + 2 : p; }

static char *join_entry(const vx_dataset *ds, const char *p) {
  return p[0] == '/' ? dupstr(p) : joinf("%s/%s", ds->dir, strip_dot(p));
}

/* MSD: the "training" list; an image that is absent but has _0000 files is per channel. */
static vx_status scan_msd(vx_dataset *ds, json_t *training, vx_strbuf *err) {
  size_t i;
  json_t *e;
  ds->cases = calloc(json_array_size(training) + 1, sizeof *ds->cases);
  if (!ds->cases) return VX_ERR_OUT_OF_MEMORY;
  json_array_foreach(training, i, e) {
    json_t *im = json_object_get(e, "image"), *lb = json_object_get(e, "label");
    if (!json_is_string(im) || (lb && !json_is_string(lb))) {
      vx_sb_printf(err, "%sdataset.json: 'training'[%zu]: '%s' missing or not a path", err->len ? "; " : "", i,
                   json_is_string(im) ? "label" : "image");
      continue;
    }
    const char *ip = json_string_value(im);
    const char *ext = ends_with(ip, ".nii.gz") ? ".nii.gz" : ends_with(ip, ".nii") ? ".nii" : NULL;
    if (!ext) {
      vx_sb_printf(err, "%sdataset.json: 'training'[%zu].image '%s' is not a NIfTI file (.nii.gz, .nii)",
                   err->len ? "; " : "", i, ip);
      continue;
    }
    vx_ds_case *c = &ds->cases[ds->ncases];
    const char *base = strrchr(ip, '/') ? strrchr(ip, '/') + 1 : ip;
    size_t idlen = strlen(base) - strlen(ext);
    c->id = malloc(idlen + 1);
    char *full = join_entry(ds, ip);
    c->label = lb ? join_entry(ds, json_string_value(lb)) : NULL;
    if (!c->id || !full || (lb && !c->label)) {
      free(c->id);
      free(full);
      free(c->label);
      return VX_ERR_OUT_OF_MEMORY;
    }
    memcpy(c->id, base, idlen);
    c->id[idlen] = 0;
    ds->ncases++;
    char *ch0 = joinf("%.*s_0000%s", (int)(strlen(full) - strlen(ext)), full, ext);
    if (!ch0) {
      free(full);
      return VX_ERR_OUT_OF_MEMORY;
    }
    int per_channel = !vx_ds_is_file(full) && vx_ds_is_file(ch0);
    free(ch0);
    c->four_d = !per_channel;
    c->nimage = per_channel ? ds->nchannels : 1;
    c->image = calloc((size_t)c->nimage, sizeof *c->image);
    if (!c->image) {
      free(full);
      return VX_ERR_OUT_OF_MEMORY;
    }
    for (int k = 0; per_channel && k < c->nimage; k++)
      if (!(c->image[k] = joinf("%.*s_%04d%s", (int)(strlen(full) - strlen(ext)), full, k, ext))) {
        free(full);
        return VX_ERR_OUT_OF_MEMORY;
      }
    if (per_channel) free(full);
    else c->image[0] = full;
  }
  qsort(ds->cases, (size_t)ds->ncases, sizeof *ds->cases, cmp_case);
  return VX_OK;
}

/* ---------------------------------------------------------------- open / close */

vx_status vx_dataset_open(const char *dir, vx_dataset **out, char *errbuf, size_t errlen) {
  if (errbuf && errlen) errbuf[0] = 0;
  if (out) *out = NULL;
  if (!dir || !*dir || !out) return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "vx_dataset_open: dir or out is NULL");
  struct stat sb;
  if (stat(dir, &sb) != 0) return vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: cannot open: %s", dir, strerror(errno));
  if (!S_ISDIR(sb.st_mode)) return vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: not a folder", dir);
  vx_dataset *ds = calloc(1, sizeof *ds);
  if (!ds || !(ds->dir = dupstr(dir))) {
    free(ds);
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
  }
  for (size_t n = strlen(ds->dir); n > 1 && ds->dir[n - 1] == '/'; n--) ds->dir[n - 1] = 0;
  ds->num_training = -1;

  char *jpath = joinf("%s/dataset.json", ds->dir);
  json_error_t jerr;
  json_t *root = jpath ? json_load_file(jpath, 0, &jerr) : NULL;
  vx_status st = VX_OK;
  vx_strbuf err = {0};
  if (!root) {
    if (jpath && !vx_ds_is_file(jpath))
      st = vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s/dataset.json: missing (every dataset folder has one)", ds->dir);
    else
      st = vx_errbuf_fail(errbuf, errlen, jpath ? VX_ERR_FORMAT : VX_ERR_OUT_OF_MEMORY, "dataset.json: line %d column %d: %s",
                jerr.line, jerr.column, jpath ? jerr.text : "out of memory");
    goto done;
  }
  if (!json_is_object(root)) {
    st = vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT, "dataset.json: the top level is not an object");
    goto done;
  }
  json_t *training = json_object_get(root, "training");
  int nnunet_fields = json_object_get(root, "channel_names") && json_object_get(root, "file_ending");
  ds->layout = !nnunet_fields && json_is_array(training) ? VX_LAYOUT_MSD : VX_LAYOUT_NNUNET;
  json_t *name = json_object_get(root, "name");
  const char *slash = strrchr(ds->dir, '/');
  ds->name = dupstr(json_is_string(name) ? json_string_value(name) : slash ? slash + 1 : ds->dir);

  parse_channels(ds, root, &err);
  parse_labels(ds, root, &err);
  json_t *nt = json_object_get(root, "numTraining");
  if (json_is_integer(nt)) ds->num_training = (int)json_integer_value(nt);
  else add_note(ds, dupstr(nt ? "dataset.json: 'numTraining' is not an integer" : "dataset.json: 'numTraining' missing"));
  if (ds->layout == VX_LAYOUT_NNUNET) {
    json_t *fe = json_object_get(root, "file_ending");
    if (!fe) vx_sb_printf(&err, "%sdataset.json: 'file_ending' missing", err.len ? "; " : "");
    else if (!json_is_string(fe) || (strcmp(json_string_value(fe), ".nii.gz") && strcmp(json_string_value(fe), ".nii"))) {
      if (!err.len) st = VX_ERR_UNSUPPORTED;
      vx_sb_printf(&err, "%sdataset.json: 'file_ending' is %s%s%s; voxcl reads NIfTI only (\".nii.gz\", \".nii\")",
                   err.len ? "; " : "", json_is_string(fe) ? "\"" : "", json_is_string(fe) ? json_string_value(fe) : "not a string",
                   json_is_string(fe) ? "\"" : "");
    } else ds->ending = dupstr(json_string_value(fe));
  }
  if (err.oom || !ds->name) {
    st = vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "%s: out of memory reading dataset.json", ds->dir);
    goto done;
  }
  if (err.len) {
    st = vx_errbuf_fail(errbuf, errlen, st == VX_OK ? VX_ERR_FORMAT : st, "%s", err.s);
    goto done;
  }
  if (ds->layout == VX_LAYOUT_NNUNET) {
    st = scan_nnunet(ds, errbuf, errlen);
  } else {
    st = scan_msd(ds, training, &err);
    if (st == VX_OK && (err.oom || err.len))
      st = vx_errbuf_fail(errbuf, errlen, err.oom ? VX_ERR_OUT_OF_MEMORY : VX_ERR_FORMAT, "%s", err.oom ? "out of memory" : err.s);
    else if (st != VX_OK) vx_errbuf_fail(errbuf, errlen, st, "%s: out of memory listing the cases", ds->dir);
  }
done:
  free(err.s);
  free(jpath);
  json_decref(root);
  if (st != VX_OK) vx_dataset_close(ds);
  else *out = ds;
  return st;
}

void vx_dataset_close(vx_dataset *ds) {
  if (!ds) return;
  for (int i = 0; i < ds->ncases; i++) {
    for (int k = 0; k < ds->cases[i].nimage && ds->cases[i].image; k++) free(ds->cases[i].image[k]);
    free(ds->cases[i].image);
    free(ds->cases[i].label);
    free(ds->cases[i].id);
  }
  free(ds->cases);
  for (int c = 0; c < ds->nchannels && ds->channel; c++) free(ds->channel[c]);
  free(ds->channel);
  for (int v = 0; v < ds->nclasses; v++) free(ds->label_name[v]);
  free(ds->label_name);
  for (int i = 0; i < ds->nnotes; i++) free(ds->notes[i]);
  free(ds->notes);
  free(ds->ending);
  free(ds->name);
  free(ds->dir);
  free(ds);
}

/* ---------------------------------------------------------------- accessors */

vx_dataset_layout vx_dataset_get_layout(const vx_dataset *ds) { return ds ? ds->layout : VX_LAYOUT_NNUNET; }
const char *vx_dataset_name(const vx_dataset *ds) { return ds ? ds->name : NULL; }
int vx_dataset_case_count(const vx_dataset *ds) { return ds ? ds->ncases : 0; }
const char *vx_dataset_case_id(const vx_dataset *ds, int i) {
  return ds && i >= 0 && i < ds->ncases ? ds->cases[i].id : NULL;
}
int vx_dataset_channel_count(const vx_dataset *ds) { return ds ? ds->nchannels : 0; }
const char *vx_dataset_channel_name(const vx_dataset *ds, int c) {
  return ds && c >= 0 && c < ds->nchannels ? ds->channel[c] : NULL;
}
int vx_dataset_channel_is_ct(const vx_dataset *ds, int c) {
  const char *n = vx_dataset_channel_name(ds, c);
  return n && !strcasecmp(n, "CT");
}
int vx_dataset_class_count(const vx_dataset *ds) { return ds ? ds->nclasses : 0; }
const char *vx_dataset_label_name(const vx_dataset *ds, int v) {
  return ds && v >= 0 && v < ds->nclasses ? ds->label_name[v] : NULL;
}
int vx_dataset_num_training(const vx_dataset *ds) { return ds ? ds->num_training : -1; }
const char *vx_dataset_image_path(const vx_dataset *ds, int i, int c) {
  if (!ds || i < 0 || i >= ds->ncases || c < 0 || c >= ds->nchannels) return NULL;
  const vx_ds_case *k = &ds->cases[i];
  return k->four_d ? k->image[0] : k->image[c];
}
const char *vx_dataset_label_path(const vx_dataset *ds, int i) {
  return ds && i >= 0 && i < ds->ncases ? ds->cases[i].label : NULL;
}
