/* Evaluation of a folder of predicted label maps against a folder of references: pairing by
 * file name, geometry checks, per-case per-class Dice and HD95 (metrics.c), means, and the
 * CSV + JSON reports (each written to a temporary file and renamed). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "voxcl.h"
#include "util.h"

#define MAX_LABEL 65535

typedef struct {
  char *name, *pred_path, *ref_path;
  double *dice, *hd95; /* [classes] */
} eval_case;

struct vx_evaluation {
  char *pred_dir, *ref_dir;
  int ncases, nclasses;
  eval_case *cases;
  int *labels;
  double *mean_dice, *mean_hd95; /* [classes], over cases (hd95: where defined) */
};

static char *dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dup_printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return NULL;
  char *s = malloc((size_t)n + 1);
  if (!s) return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

/* Length of the case name of a NIfTI file name (without .nii.gz / .nii), or 0 if not one. */
static size_t stem_len(const char *f) {
  size_t n = strlen(f);
  if (n > 7 && !strcmp(f + n - 7, ".nii.gz")) return n - 7;
  if (n > 4 && !strcmp(f + n - 4, ".nii")) return n - 4;
  return 0;
}

static int is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The sorted NIfTI file names in dir (hidden files, such as temporaries, skipped). */
static vx_status list_nifti(const char *dir, char ***out, int *count, char *errbuf, size_t errlen) {
  *out = NULL;
  *count = 0;
  DIR *d = opendir(dir);
  if (!d) return vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "cannot open folder %s: %s", dir, strerror(errno));
  char **names = NULL;
  int n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || !stem_len(e->d_name)) continue;
    char *path = dup_printf("%s/%s", dir, e->d_name);
    int ok = path && is_file(path);
    free(path);
    if (!ok) continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 64;
      char **t = realloc(names, sizeof(char *) * (size_t)cap);
      if (!t) break;
      names = t;
    }
    if (!(names[n] = dup_printf("%s", e->d_name))) break;
    n++;
  }
  int oom = e != NULL;
  closedir(d);
  if (oom) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "out of memory listing %s", dir);
  }
  if (n) qsort(names, (size_t)n, sizeof(char *), cmp_str);
  *out = names;
  *count = n;
  return VX_OK;
}

void vx_evaluation_destroy(vx_evaluation *e) {
  if (!e) return;
  for (int i = 0; i < e->ncases; i++) {
    free(e->cases[i].name), free(e->cases[i].pred_path), free(e->cases[i].ref_path);
    free(e->cases[i].dice), free(e->cases[i].hd95);
  }
  free(e->cases), free(e->labels), free(e->pred_dir), free(e->ref_dir);
  free(e->mean_dice), free(e->mean_hd95);
  free(e);
}

/* Marks the labels present in a label map (checking it is one). */
static vx_status scan_labels(const float *v, size_t n, const char *path, uint8_t *present, char *errbuf,
                             size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    float r = nearbyintf(v[i]);
    if (!isfinite(v[i]) || fabsf(v[i] - r) > 1e-3f || r < 0.0f || r > (float)MAX_LABEL)
      return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT, "%s is not a label map: voxel %zu holds %g (labels must be "
                  "integers in 0..%d)", path, i, (double)v[i], MAX_LABEL);
    present[(int)r] = 1;
  }
  return VX_OK;
}

/* Reads one pair and checks they fit together; *pv / *rv are the volumes. */
static vx_status read_pair(const char *pp, const char *rp, vx_volume **pv, vx_volume **rv, char *errbuf,
                           size_t errlen) {
  vx_status s = vx_volume_read(pp, pv, errbuf, errlen);
  if (s != VX_OK) return s;
  s = vx_volume_read(rp, rv, errbuf, errlen);
  if (s != VX_OK) return s;
  int dp[4], dr[4];
  float sp[3], sr[3];
  vx_volume_dims(*pv, dp);
  vx_volume_dims(*rv, dr);
  vx_volume_spacing(*pv, sp);
  vx_volume_spacing(*rv, sr);
  if (dp[3] != 1 || dr[3] != 1)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT, "%s has %d channels and %s has %d: a label map has one", pp,
                dp[3], rp, dr[3]);
  if (dp[0] != dr[0] || dp[1] != dr[1] || dp[2] != dr[2])
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_SHAPE, "prediction %s is %dx%dx%d voxels but reference %s is %dx%dx%d "
                "(x*y*z)", pp, dp[0], dp[1], dp[2], rp, dr[0], dr[1], dr[2]);
  for (int a = 0; a < 3; a++)
    if (fabsf(sp[a] - sr[a]) > 1e-4f * fmaxf(fabsf(sp[a]), fabsf(sr[a])))
      return vx_errbuf_fail(errbuf, errlen, VX_ERR_SHAPE, "prediction %s has spacing %gx%gx%g mm but reference %s has "
                  "%gx%gx%g mm (x*y*z)", pp, (double)sp[0], (double)sp[1], (double)sp[2], rp, (double)sr[0],
                  (double)sr[1], (double)sr[2]);
  return VX_OK;
}

/* Mean of the finite values among v[0..n-1]; NaN when none. */
static double finite_mean(const double *v, int n) {
  double s = 0;
  int c = 0;
  for (int i = 0; i < n; i++)
    if (isfinite(v[i])) s += v[i], c++;
  return c ? s / c : NAN;
}

/* Per-case results before the class list is final: one slot per label value 0..MAX_LABEL would
 * be wasteful, so each case keeps the labels it computed (those present in either map). */
typedef struct {
  int n, *labels;
  double *dice, *hd95;
} sparse_result;

vx_status vx_evaluate_folders(const char *pred_dir, const char *ref_dir, const int *labels, int nlabels,
                              vx_progress_fn progress, void *progress_user, vx_evaluation **out, char *errbuf,
                              size_t errlen) {
  if (errbuf && errlen) errbuf[0] = 0;
  if (out) *out = NULL;
  if (!pred_dir || !ref_dir || !out || nlabels < 0 || nlabels > MAX_LABEL || (nlabels > 0 && !labels))
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "evaluate: NULL folder or output, or bad label list");
  for (int k = 0; k < nlabels; k++)
    if (labels[k] < 1 || labels[k] > MAX_LABEL)
      return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "evaluate: class %d is not in 1..%d", labels[k],
                  MAX_LABEL);
  char **files = NULL;
  int nfiles = 0;
  vx_status s = list_nifti(pred_dir, &files, &nfiles, errbuf, errlen);
  if (s != VX_OK) return s;
  vx_evaluation *e = calloc(1, sizeof *e);
  sparse_result *res = calloc(nfiles ? (size_t)nfiles : 1, sizeof *res);
  uint8_t *ref_union = calloc(MAX_LABEL + 1, 1), *present = malloc(MAX_LABEL + 1);
  int *want = NULL;
  vx_volume *pv = NULL, *rv = NULL;
  if (!e || !res || !ref_union || !present) {
    s = vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "evaluate: out of memory");
    goto done;
  }
  e->pred_dir = dup_printf("%s", pred_dir);
  e->ref_dir = dup_printf("%s", ref_dir);
  e->cases = calloc(nfiles ? (size_t)nfiles : 1, sizeof *e->cases);
  want = malloc(sizeof(int) * (MAX_LABEL + 1));
  if (!e->pred_dir || !e->ref_dir || !e->cases || !want) {
    s = vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "evaluate: out of memory");
    goto done;
  }
  if (nfiles == 0) {
    s = vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "evaluate: no .nii.gz or .nii files in %s", pred_dir);
    goto done;
  }
  for (int i = 0; i < nfiles; i++) {
    size_t sl = stem_len(files[i]);
    for (int j = i + 1; j < nfiles; j++)
      if (stem_len(files[j]) == sl && !strncmp(files[i], files[j], sl)) {
        s = vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "evaluate: both %s and %s in %s: which one is the "
                 "prediction?", files[i], files[j], pred_dir);
        goto done;
      }
    eval_case *c = &e->cases[i];
    e->ncases = i + 1;
    c->name = dup_printf("%.*s", (int)sl, files[i]);
    c->pred_path = dup_printf("%s/%s", pred_dir, files[i]);
    char *gz = dup_printf("%s/%.*s.nii.gz", ref_dir, (int)sl, files[i]);
    char *plain = dup_printf("%s/%.*s.nii", ref_dir, (int)sl, files[i]);
    if (!c->name || !c->pred_path || !gz || !plain) {
      free(gz), free(plain);
      s = vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "evaluate: out of memory");
      goto done;
    }
    int hg = is_file(gz), hp = is_file(plain);
    if (hg && hp) {
      s = vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "evaluate: both %s and %s exist: which one is the "
               "reference for %s?", gz, plain, c->pred_path);
    } else if (!hg && !hp) {
      s = vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "evaluate: prediction %s has no reference (looked for %s and %s)",
               c->pred_path, gz, plain);
    }
    c->ref_path = hg ? gz : plain;
    free(hg ? plain : gz);
    if (s != VX_OK) goto done;
  }
  for (int i = 0; i < e->ncases; i++) {
    eval_case *c = &e->cases[i];
    s = read_pair(c->pred_path, c->ref_path, &pv, &rv, errbuf, errlen);
    if (s != VX_OK) goto done;
    int d4[4];
    float sp4[3];
    vx_volume_dims(rv, d4);
    vx_volume_spacing(rv, sp4);
    int dims[3] = {d4[2], d4[1], d4[0]};
    float sp[3] = {sp4[2], sp4[1], sp4[0]};
    size_t n = (size_t)d4[0] * (size_t)d4[1] * (size_t)d4[2];
    const float *p = vx_volume_data(pv), *r = vx_volume_data(rv);
    int nw = nlabels;
    if (nlabels > 0) {
      memcpy(want, labels, sizeof(int) * (size_t)nlabels);
    } else {
      /* every label present in either map (not 0): the final class list is known only at the end */
      memset(present, 0, MAX_LABEL + 1);
      s = scan_labels(r, n, c->ref_path, present, errbuf, errlen);
      if (s != VX_OK) goto done;
      for (int l = 1; l <= MAX_LABEL; l++) ref_union[l] |= present[l];
      s = scan_labels(p, n, c->pred_path, present, errbuf, errlen);
      if (s != VX_OK) goto done;
      for (int l = 1; l <= MAX_LABEL; l++)
        if (present[l]) want[nw++] = l;
    }
    sparse_result *sr = &res[i];
    sr->labels = malloc(sizeof(int) * (size_t)(nw ? nw : 1));
    sr->dice = malloc(sizeof(double) * (size_t)(nw ? nw : 1));
    sr->hd95 = malloc(sizeof(double) * (size_t)(nw ? nw : 1));
    if (!sr->labels || !sr->dice || !sr->hd95) {
      s = vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "evaluate: out of memory");
      goto done;
    }
    sr->n = nw;
    memcpy(sr->labels, want, sizeof(int) * (size_t)nw);
    char msg[512];
    s = vx_segmentation_metrics(p, r, dims, sp, want, nw, sr->dice, sr->hd95, msg, sizeof msg);
    if (s != VX_OK) {
      vx_errbuf_fail(errbuf, errlen, s, "evaluate: %s vs %s: %s", c->pred_path, c->ref_path, msg);
      goto done;
    }
    vx_volume_destroy(pv), vx_volume_destroy(rv);
    pv = rv = NULL;
    if (progress) progress(progress_user, i + 1, e->ncases);
  }
  /* the class list, then the dense per-case table */
  int nc = nlabels;
  if (nlabels > 0) {
    memcpy(want, labels, sizeof(int) * (size_t)nlabels);
  } else {
    for (int l = 1; l <= MAX_LABEL; l++)
      if (ref_union[l]) want[nc++] = l;
  }
  e->nclasses = nc;
  e->labels = malloc(sizeof(int) * (size_t)(nc ? nc : 1));
  e->mean_dice = malloc(sizeof(double) * (size_t)(nc ? nc : 1));
  e->mean_hd95 = malloc(sizeof(double) * (size_t)(nc ? nc : 1));
  if (!e->labels || !e->mean_dice || !e->mean_hd95) {
    s = vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "evaluate: out of memory");
    goto done;
  }
  memcpy(e->labels, want, sizeof(int) * (size_t)nc);
  for (int i = 0; i < e->ncases; i++) {
    eval_case *c = &e->cases[i];
    c->dice = malloc(sizeof(double) * (size_t)(nc ? nc : 1));
    c->hd95 = malloc(sizeof(double) * (size_t)(nc ? nc : 1));
    if (!c->dice || !c->hd95) {
      s = vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "evaluate: out of memory");
      goto done;
    }
    for (int k = 0; k < nc; k++) {
      /* a class in neither map of this case: an empty prediction of an empty reference */
      c->dice[k] = 1.0;
      c->hd95[k] = NAN;
      for (int j = 0; j < res[i].n; j++)
        if (res[i].labels[j] == e->labels[k]) {
          c->dice[k] = res[i].dice[j];
          c->hd95[k] = res[i].hd95[j];
        }
    }
  }
  for (int k = 0; k < nc; k++) {
    double sd = 0, sh = 0;
    int nh = 0;
    for (int i = 0; i < e->ncases; i++) {
      sd += e->cases[i].dice[k];
      if (isfinite(e->cases[i].hd95[k])) sh += e->cases[i].hd95[k], nh++;
    }
    e->mean_dice[k] = sd / e->ncases;
    e->mean_hd95[k] = nh ? sh / nh : NAN;
  }
done:
  vx_volume_destroy(pv), vx_volume_destroy(rv);
  for (int i = 0; i < nfiles; i++) {
    free(files[i]);
    if (res) free(res[i].labels), free(res[i].dice), free(res[i].hd95);
  }
  free(files), free(res), free(ref_union), free(present), free(want);
  if (s != VX_OK) vx_evaluation_destroy(e);
  else *out = e;
  return s;
}

int vx_evaluation_case_count(const vx_evaluation *e) { return e ? e->ncases : 0; }
int vx_evaluation_class_count(const vx_evaluation *e) { return e ? e->nclasses : 0; }
const char *vx_evaluation_case_name(const vx_evaluation *e, int i) {
  return e && i >= 0 && i < e->ncases ? e->cases[i].name : NULL;
}
int vx_evaluation_class_label(const vx_evaluation *e, int k) {
  return e && k >= 0 && k < e->nclasses ? e->labels[k] : -1;
}

void vx_evaluation_get(const vx_evaluation *e, int i, int k, double *dice, double *hd95) {
  double d = NAN, h = NAN;
  if (e && i >= -1 && i < e->ncases && k >= -1 && k < e->nclasses && e->nclasses > 0) {
    if (i >= 0 && k >= 0) {
      d = e->cases[i].dice[k], h = e->cases[i].hd95[k];
    } else if (i >= 0) { /* one case, mean over classes */
      d = finite_mean(e->cases[i].dice, e->nclasses);
      h = finite_mean(e->cases[i].hd95, e->nclasses);
    } else if (k >= 0) {
      d = e->mean_dice[k], h = e->mean_hd95[k];
    } else { /* nnU-Net's foreground mean: the mean of the class means */
      d = finite_mean(e->mean_dice, e->nclasses);
      h = finite_mean(e->mean_hd95, e->nclasses);
    }
  }
  if (dice) *dice = d;
  if (hd95) *hd95 = h;
}

/* ------------------------------------------------------------------ reports */
static void put_num(FILE *f, double v, const char *nan_text) {
  if (isfinite(v)) fprintf(f, "%.8g", v); /* 8 digits: spacing is float anyway */
  else fputs(nan_text, f);
}

static void put_json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
    else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
    else fputc(ch, f);
  }
  fputc('"', f);
}

static void put_csv_str(FILE *f, const char *s) {
  if (!strpbrk(s, ",\"\n\r")) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

static void write_csv(FILE *f, const vx_evaluation *e) {
  fputs("case,class,dice,hd95\n", f);
  for (int i = 0; i < e->ncases; i++)
    for (int k = 0; k < e->nclasses; k++) {
      put_csv_str(f, e->cases[i].name);
      fprintf(f, ",%d,", e->labels[k]);
      put_num(f, e->cases[i].dice[k], "NaN");
      fputc(',', f);
      put_num(f, e->cases[i].hd95[k], "NaN");
      fputc('\n', f);
    }
}

static void put_metric_pair(FILE *f, double d, double h) {
  fputs("{\"dice\": ", f);
  put_num(f, d, "null");
  fputs(", \"hd95\": ", f);
  put_num(f, h, "null");
  fputc('}', f);
}

static void write_json(FILE *f, const vx_evaluation *e) {
  fputs("{\n  \"prediction_folder\": ", f);
  put_json_str(f, e->pred_dir);
  fputs(",\n  \"reference_folder\": ", f);
  put_json_str(f, e->ref_dir);
  fputs(",\n  \"classes\": [", f);
  for (int k = 0; k < e->nclasses; k++) fprintf(f, "%s%d", k ? ", " : "", e->labels[k]);
  fputs("],\n  \"definitions\": {\"dice\": \"2|A and B| / (|A| + |B|); 1 when both are empty, 0 when one is\", "
        "\"hd95\": \"mm; max of the two directed 95th percentiles of surface-to-surface distances (MONAI); "
        "null when either set is empty\", \"mean\": \"over cases; hd95 over the cases where it is defined\"},\n",
        f);
  fputs("  \"metric_per_case\": [", f);
  for (int i = 0; i < e->ncases; i++) {
    fputs(i ? ",\n    {\"case\": " : "\n    {\"case\": ", f);
    put_json_str(f, e->cases[i].name);
    fputs(", \"prediction_file\": ", f);
    put_json_str(f, e->cases[i].pred_path);
    fputs(", \"reference_file\": ", f);
    put_json_str(f, e->cases[i].ref_path);
    fputs(", \"metrics\": {", f);
    for (int k = 0; k < e->nclasses; k++) {
      fprintf(f, "%s\"%d\": ", k ? ", " : "", e->labels[k]);
      put_metric_pair(f, e->cases[i].dice[k], e->cases[i].hd95[k]);
    }
    fputs("}}", f);
  }
  fputs("\n  ],\n  \"mean\": {", f);
  for (int k = 0; k < e->nclasses; k++) {
    double d, h;
    vx_evaluation_get(e, -1, k, &d, &h);
    fprintf(f, "%s\"%d\": ", k ? ", " : "", e->labels[k]);
    put_metric_pair(f, d, h);
  }
  double d, h;
  vx_evaluation_get(e, -1, -1, &d, &h);
  fputs("},\n  \"foreground_mean\": ", f);
  put_metric_pair(f, d, h);
  fputs("\n}\n", f);
}

/* Writes path through "DIR/.voxcl-tmp-PID-NAME" and a rename, so a reader never sees half a file. */
static vx_status write_atomic(const char *path, void (*writer)(FILE *, const vx_evaluation *),
                              const vx_evaluation *e, char *errbuf, size_t errlen) {
  const char *slash = strrchr(path, '/');
  char *tmp = slash ? dup_printf("%.*s/.voxcl-tmp-%ld-%s", (int)(slash - path), path, (long)getpid(), slash + 1)
                    : dup_printf(".voxcl-tmp-%ld-%s", (long)getpid(), path);
  if (!tmp) return vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  FILE *f = fopen(tmp, "w");
  if (!f) {
    free(tmp);
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: cannot create a temporary file beside it", path);
  }
  writer(f, e);
  int bad = ferror(f);
  bad |= fclose(f) != 0;
  if (bad || rename(tmp, path) != 0) {
    remove(tmp);
    free(tmp);
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: cannot write it (disk full or no permission?)", path);
  }
  free(tmp);
  return VX_OK;
}

vx_status vx_evaluation_write(const vx_evaluation *e, const char *prefix, char *errbuf, size_t errlen) {
  if (errbuf && errlen) errbuf[0] = 0;
  if (!e || !prefix || !*prefix) return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "evaluate: no output prefix");
  char *csv = dup_printf("%s.csv", prefix), *json = dup_printf("%s.json", prefix);
  vx_status s = (!csv || !json) ? vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "out of memory") : VX_OK;
  if (s == VX_OK) s = write_atomic(csv, write_csv, e, errbuf, errlen);
  if (s == VX_OK) s = write_atomic(json, write_json, e, errbuf, errlen);
  free(csv), free(json);
  return s;
}
