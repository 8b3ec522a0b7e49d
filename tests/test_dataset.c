/* The dataset layer on the host: the synthetic dataset on disk, opening nnU-Net and MSD
 * folders, loading cases, vx_dataset_check finding every planted problem in one report,
 * intensity statistics and normalisation against direct computations, resampling, the patch
 * sampler (shapes, foreground share, padding, augmentation keeping image and label aligned,
 * determinism threaded or not, waiting time) and K-fold splits. No OpenCL needed.
 *
 *   test_dataset [--keep]    VOXCL_TEST_ONLY=substring runs the matching tests only */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "voxcl.h"

static char g_dir[512];
static int g_checks_failed;

#define CHECK(cond) CHECKF(cond, "%s", "")
#define CHECKF(cond, ...)                                                            \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "  CHECK failed at %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                                  \
      fprintf(stderr, "\n");                                                         \
      g_checks_failed++;                                                             \
    }                                                                                \
  } while (0)

static const char *P(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *P(const char *fmt, ...) {
  static char buf[8][1024];
  static int k;
  k = (k + 1) % 8;
  int n = snprintf(buf[k], sizeof buf[k], "%s/", g_dir);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf[k] + n, sizeof buf[k] - (size_t)n, fmt, ap);
  va_end(ap);
  return buf[k];
}

static void spit(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) { perror(path); exit(2); }
  fputs(text, f);
  fclose(f);
}

static void remove_tree(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char p[1400];
  while (d && (e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(p);
    else unlink(p);
  }
  if (d) closedir(d);
  rmdir(dir);
}

static int exists(const char *p) { return access(p, F_OK) == 0; }

/* Writes an x-fastest volume of nx*ny*nz*c floats; labels as integers. */
static void write_vol(const char *path, int nx, int ny, int nz, int c, const float sp[3], const float *data, int labels) {
  vx_volume *v = NULL;
  char err[512];
  if (vx_volume_create(nx, ny, nz, 1, sp, &v) != VX_OK) { fprintf(stderr, "create failed\n"); exit(2); }
  vx_status st = c > 1 ? vx_volume_write_float(path, v, data, c, err, sizeof err)
                       : vx_volume_write_like(path, v, data, labels, err, sizeof err);
  if (st != VX_OK) { fprintf(stderr, "write %s: %s\n", path, err); exit(2); }
  vx_volume_destroy(v);
}

static uint64_t g_rng = 88172645463325252ULL;
static double urand(void) { /* xorshift: the test's own numbers, independent of the library's RNG */
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (double)(g_rng >> 11) / 9007199254740992.0;
}

/* ---------------------------------------------------------------- the synthetic dataset */

static int progress_calls;
static void count_progress(void *user, int done, int total) { progress_calls++; (void)user; (void)done; (void)total; }

/* dir/synth: 6 cases of 24^3 with spacing 1.5, 1, 2 (x, y, z), seed 3 */
static const char *synth_dir(void) {
  static int made;
  const char *d = P("synth");
  if (!made) {
    vx_synth_dataset_options o;
    vx_synth_dataset_options_init(&o);
    o.cases = 6;
    o.size[0] = o.size[1] = o.size[2] = 24;
    o.spacing[0] = 1.5f; o.spacing[1] = 1; o.spacing[2] = 2;
    o.seed = 3;
    char err[512];
    if (vx_synth_dataset_write(d, &o, count_progress, NULL, err, sizeof err) != VX_OK) { fprintf(stderr, "%s\n", err); exit(2); }
    made = 1;
  }
  return d;
}

static void test_synth_write(void) {
  progress_calls = 0;
  const char *d = synth_dir();
  CHECK(progress_calls == 6);
  CHECK(exists(P("synth/dataset.json")));
  CHECK(exists(P("synth/imagesTr/synth_005_0000.nii.gz")));
  CHECK(exists(P("synth/labelsTr/synth_000.nii.gz")));
  vx_volume *l = NULL;
  char err[512];
  CHECK(vx_volume_read(P("synth/labelsTr/synth_001.nii.gz"), &l, err, sizeof err) == VX_OK);
  CHECK(vx_volume_datatype(l) == 2); /* uint8 */
  vx_volume_destroy(l);
  (void)d;
}

static void test_synth_refuses_foreign_folder(void) {
  mkdir(P("foreign"), 0755);
  spit(P("foreign/notes.txt"), "mine\n");
  vx_synth_dataset_options o;
  vx_synth_dataset_options_init(&o);
  o.cases = 1;
  o.size[0] = o.size[1] = o.size[2] = 8;
  char err[512] = "";
  CHECK(vx_synth_dataset_write(P("foreign"), &o, NULL, NULL, err, sizeof err) == VX_ERR_INVALID_ARGUMENT);
  CHECKF(strstr(err, "not a voxcl synthetic dataset"), "%s", err);
  CHECK(!exists(P("foreign/dataset.json")) && !exists(P("foreign/imagesTr")));
  o.force = 1;
  CHECK(vx_synth_dataset_write(P("foreign"), &o, NULL, NULL, err, sizeof err) == VX_OK);
  CHECK(exists(P("foreign/notes.txt")) && exists(P("foreign/labelsTr/synth_000.nii.gz")));
}

static void test_synth_rewrite_removes_stale(void) {
  vx_synth_dataset_options o;
  vx_synth_dataset_options_init(&o);
  o.cases = 4;
  o.size[0] = o.size[1] = o.size[2] = 8;
  char err[512] = "";
  CHECK(vx_synth_dataset_write(P("resynth"), &o, NULL, NULL, err, sizeof err) == VX_OK);
  o.cases = 2; /* no force needed: it is a voxcl synthetic dataset */
  CHECKF(vx_synth_dataset_write(P("resynth"), &o, NULL, NULL, err, sizeof err) == VX_OK, "%s", err);
  CHECK(exists(P("resynth/imagesTr/synth_001_0000.nii.gz")) && !exists(P("resynth/imagesTr/synth_002_0000.nii.gz")));
  CHECK(!exists(P("resynth/labelsTr/synth_003.nii.gz")));
  vx_dataset *ds = NULL;
  CHECK(vx_dataset_open(P("resynth"), &ds, err, sizeof err) == VX_OK);
  CHECK(vx_dataset_case_count(ds) == 2);
  vx_dataset_close(ds);
}

/* ---------------------------------------------------------------- opening and loading */

static void test_open_nnunet(void) {
  vx_dataset *ds = NULL;
  char err[512] = "";
  CHECKF(vx_dataset_open(synth_dir(), &ds, err, sizeof err) == VX_OK, "%s", err);
  if (!ds) return;
  CHECK(vx_dataset_get_layout(ds) == VX_LAYOUT_NNUNET);
  CHECK(vx_dataset_case_count(ds) == 6);
  CHECK(!strcmp(vx_dataset_case_id(ds, 0), "synth_000") && !strcmp(vx_dataset_case_id(ds, 5), "synth_005"));
  CHECK(vx_dataset_case_id(ds, 6) == NULL);
  CHECK(vx_dataset_channel_count(ds) == 1 && !strcmp(vx_dataset_channel_name(ds, 0), "synthetic"));
  CHECK(!vx_dataset_channel_is_ct(ds, 0));
  CHECK(vx_dataset_class_count(ds) == 3);
  CHECK(!strcmp(vx_dataset_label_name(ds, 0), "background") && !strcmp(vx_dataset_label_name(ds, 2), "tube"));
  CHECK(vx_dataset_label_name(ds, 3) == NULL);
  CHECK(vx_dataset_num_training(ds) == 6);
  CHECK(strstr(vx_dataset_image_path(ds, 1, 0), "imagesTr/synth_001_0000.nii.gz") != NULL);
  CHECK(strstr(vx_dataset_label_path(ds, 1), "labelsTr/synth_001.nii.gz") != NULL);
  vx_dataset_close(ds);
}

static void test_load_case_values(void) {
  vx_dataset *ds = NULL;
  char err[512] = "";
  vx_dataset_open(synth_dir(), &ds, err, sizeof err);
  vx_volume *img = NULL, *lab = NULL;
  CHECKF(vx_dataset_load_case(ds, 2, &img, &lab, err, sizeof err) == VX_OK, "%s", err);
  if (!img) { vx_dataset_close(ds); return; }
  int d[4];
  float sp[3];
  vx_volume_dims(img, d);
  vx_volume_spacing(img, sp);
  CHECK(d[0] == 24 && d[1] == 24 && d[2] == 24 && d[3] == 1);
  CHECK(sp[0] == 1.5f && sp[1] == 1.0f && sp[2] == 2.0f);
  size_t n = 24 * 24 * 24;
  float *ei = malloc(n * sizeof *ei), *el = malloc(n * sizeof *el);
  vx_synth_case(3 * 1000 + 2, 24, 24, 24, ei, el);
  CHECK(!memcmp(ei, vx_volume_data(img), n * sizeof *ei));
  CHECK(!memcmp(el, vx_volume_data(lab), n * sizeof *el));
  free(ei);
  free(el);
  vx_volume_destroy(img);
  vx_volume_destroy(lab);
  /* label only */
  CHECK(vx_dataset_load_case(ds, 0, NULL, &lab, err, sizeof err) == VX_OK && lab);
  vx_volume_destroy(lab);
  CHECK(vx_dataset_load_case(ds, 9, &img, &lab, err, sizeof err) == VX_ERR_INVALID_ARGUMENT && !img && !lab);
  vx_dataset_close(ds);
}

static void test_check_clean(void) {
  vx_dataset *ds = NULL;
  char err[512] = "", *text = NULL;
  vx_dataset_open(synth_dir(), &ds, err, sizeof err);
  vx_dataset_summary s;
  CHECK(vx_dataset_check(ds, NULL, NULL, &text, &s) == VX_OK);
  CHECKF(s.problems == 0 && text && !*text, "%s", text ? text : "(null)");
  CHECK(s.cases == 6 && s.cases_read == 6 && s.channels == 1 && s.classes == 3);
  CHECK(s.shape_min[0] == 24 && s.shape_max[2] == 24 && s.spacing_min[0] == 1.5f && s.spacing_max[2] == 2.0f);
  vx_free(text);
  vx_dataset_close(ds);
}

static void make_folder(const char *name, const char *json) {
  mkdir(P("%s", name), 0755);
  mkdir(P("%s/imagesTr", name), 0755);
  mkdir(P("%s/labelsTr", name), 0755);
  if (json) spit(P("%s/dataset.json", name), json);
}

static void test_open_errors(void) {
  vx_dataset *ds = NULL;
  char err[1024] = "";
  make_folder("e1", "{\"channel_names\": {\"0\": \"CT\"}, \"file_ending\": \".nii.gz\"}");
  CHECK(vx_dataset_open(P("e1"), &ds, err, sizeof err) == VX_ERR_FORMAT && !ds);
  CHECKF(strstr(err, "dataset.json: 'labels' missing"), "%s", err);
  /* every problem in one message */
  make_folder("e2", "{\"labels\": {\"tumour\": 1}}");
  CHECK(vx_dataset_open(P("e2"), &ds, err, sizeof err) == VX_ERR_FORMAT);
  CHECKF(strstr(err, "'channel_names' missing") && strstr(err, "no background") && strstr(err, "'file_ending' missing"),
         "%s", err);
  make_folder("e3", NULL);
  CHECK(vx_dataset_open(P("e3"), &ds, err, sizeof err) == VX_ERR_IO);
  CHECKF(strstr(err, "dataset.json"), "%s", err);
  make_folder("e4", "{\"labels\": {\"background\": 0,}");
  CHECK(vx_dataset_open(P("e4"), &ds, err, sizeof err) == VX_ERR_FORMAT);
  CHECKF(strstr(err, "dataset.json: line 1"), "%s", err);
  make_folder("e5", "{\"channel_names\": {\"0\": \"CT\"}, \"labels\": {\"background\": 0}, \"file_ending\": \".mha\"}");
  CHECK(vx_dataset_open(P("e5"), &ds, err, sizeof err) == VX_ERR_UNSUPPORTED);
  CHECKF(strstr(err, "'file_ending'") && strstr(err, ".mha"), "%s", err);
  CHECK(vx_dataset_open(P("no-such-folder"), &ds, err, sizeof err) == VX_ERR_IO);
}

static void test_labels_regions_and_duplicates(void) {
  vx_dataset *ds = NULL;
  char err[1024] = "";
  /* nnU-Net region-based labels (BraTS): the values of every region are declared */
  make_folder("regions", "{\"channel_names\": {\"0\": \"T1\"}, \"labels\": {\"background\": 0, \"whole\": [1, 2, 3], "
                         "\"core\": [2, 3], \"enhancing\": 3}, \"numTraining\": 0, \"file_ending\": \".nii.gz\"}");
  CHECKF(vx_dataset_open(P("regions"), &ds, err, sizeof err) == VX_OK, "%s", err);
  CHECK(vx_dataset_class_count(ds) == 4 && !strcmp(vx_dataset_label_name(ds, 3), "enhancing"));
  CHECK(!strcmp(vx_dataset_label_name(ds, 2), "whole"));
  vx_dataset_close(ds);
  ds = NULL;
  make_folder("dup", "{\"channel_names\": {\"0\": \"T1\", \"2\": \"T2\"}, \"labels\": {\"background\": 0, \"a\": 1, "
                     "\"b\": 1, \"c\": -4}, \"file_ending\": \".nii.gz\"}");
  CHECK(vx_dataset_open(P("dup"), &ds, err, sizeof err) == VX_ERR_FORMAT && !ds);
  CHECKF(strstr(err, "value 1 is declared twice") && strstr(err, "'c' has value -4") && strstr(err, "'channel_names'"),
         "%s", err);
  /* MSD entries without an image */
  make_folder("msd_bad", "{\"modality\": {\"0\": \"MRI\"}, \"labels\": {\"0\": \"background\"}, "
                         "\"training\": [{\"label\": \"./labelsTr/x.nii.gz\"}]}");
  CHECK(vx_dataset_open(P("msd_bad"), &ds, err, sizeof err) == VX_ERR_FORMAT && !ds);
  CHECKF(strstr(err, "dataset.json: 'training'[0]: 'image' missing"), "%s", err);
}

/* Two channels ("CT", "t2"), 3 cases of 6x5x4 with labels 0..2. */
static void make_two_channel(const char *name) {
  make_folder(name, "{\"channel_names\": {\"0\": \"ct\", \"1\": \"T2\"}, \"labels\": {\"background\": 0, \"a\": 1, "
                    "\"b\": 2}, \"numTraining\": 3, \"file_ending\": \".nii.gz\"}");
  float sp[3] = {1, 1, 1}, img[120], lab[120];
  for (int c = 0; c < 3; c++) {
    for (int k = 0; k < 2; k++) {
      for (int i = 0; i < 120; i++) img[i] = (float)(1000 * k + 100 * c + i);
      write_vol(P("%s/imagesTr/case%d_%04d.nii.gz", name, c, k), 6, 5, 4, 1, sp, img, 0);
    }
    for (int i = 0; i < 120; i++) lab[i] = (float)((i + c) % 3);
    write_vol(P("%s/labelsTr/case%d.nii.gz", name, c), 6, 5, 4, 1, sp, lab, 1);
  }
}

static void test_multi_channel_nnunet(void) {
  make_two_channel("two");
  vx_dataset *ds = NULL;
  char err[1024] = "";
  CHECKF(vx_dataset_open(P("two"), &ds, err, sizeof err) == VX_OK, "%s", err);
  if (!ds) return;
  CHECK(vx_dataset_channel_count(ds) == 2 && vx_dataset_channel_is_ct(ds, 0) && !vx_dataset_channel_is_ct(ds, 1));
  vx_volume *img = NULL, *lab = NULL;
  CHECKF(vx_dataset_load_case(ds, 1, &img, &lab, err, sizeof err) == VX_OK, "%s", err);
  int d[4];
  vx_volume_dims(img, d);
  CHECK(d[0] == 6 && d[1] == 5 && d[2] == 4 && d[3] == 2);
  int ok = img != NULL;
  for (int k = 0; k < 2 && ok; k++)
    for (int i = 0; i < 120; i++) ok &= vx_volume_channel(img, k)[i] == (float)(1000 * k + 100 + i);
  CHECK(ok);
  vx_volume_destroy(img);
  vx_volume_destroy(lab);
  char *text = NULL;
  vx_dataset_summary s;
  CHECK(vx_dataset_check(ds, NULL, NULL, &text, &s) == VX_OK);
  CHECKF(s.problems == 0, "%s", text);
  vx_free(text);
  /* a missing channel: the load names the file and the case */
  unlink(P("two/imagesTr/case2_0001.nii.gz"));
  CHECK(vx_dataset_load_case(ds, 2, &img, &lab, err, sizeof err) == VX_ERR_IO && !img && !lab);
  CHECKF(!strcmp(err, "imagesTr/case2_0001.nii.gz: channel 1 of case case2 is missing"), "%s", err);
  vx_dataset_close(ds);
}

static void test_msd_layout(void) {
  make_folder("msd", "{\"name\": \"Task01_Test\", \"modality\": {\"0\": \"FLAIR\", \"1\": \"T1w\"}, "
                     "\"labels\": {\"0\": \"background\", \"1\": \"edema\", \"2\": \"tumour\"}, \"numTraining\": 2, "
                     "\"training\": [{\"image\": \"./imagesTr/b_002.nii.gz\", \"label\": \"./labelsTr/b_002.nii.gz\"}, "
                     "{\"image\": \"./imagesTr/b_001.nii.gz\", \"label\": \"./labelsTr/b_001.nii.gz\"}]}");
  float sp[3] = {1, 1, 1}, img[2 * 60], lab[60];
  for (int c = 1; c <= 2; c++) {
    for (int i = 0; i < 120; i++) img[i] = (float)(c * 1000 + i);
    write_vol(P("msd/imagesTr/b_%03d.nii.gz", c), 5, 4, 3, 2, sp, img, 0); /* 4-D */
    for (int i = 0; i < 60; i++) lab[i] = (float)(i % 3);
    write_vol(P("msd/labelsTr/b_%03d.nii.gz", c), 5, 4, 3, 1, sp, lab, 1);
  }
  vx_dataset *ds = NULL;
  char err[1024] = "";
  CHECKF(vx_dataset_open(P("msd"), &ds, err, sizeof err) == VX_OK, "%s", err);
  if (!ds) return;
  CHECK(vx_dataset_get_layout(ds) == VX_LAYOUT_MSD && !strcmp(vx_dataset_name(ds), "Task01_Test"));
  CHECK(vx_dataset_case_count(ds) == 2 && !strcmp(vx_dataset_case_id(ds, 0), "b_001"));
  CHECK(vx_dataset_channel_count(ds) == 2 && !strcmp(vx_dataset_channel_name(ds, 1), "T1w"));
  CHECK(vx_dataset_class_count(ds) == 3 && !strcmp(vx_dataset_label_name(ds, 1), "edema"));
  vx_volume *im = NULL, *lb = NULL;
  CHECKF(vx_dataset_load_case(ds, 1, &im, &lb, err, sizeof err) == VX_OK, "%s", err);
  int d[4];
  vx_volume_dims(im, d);
  CHECK(d[0] == 5 && d[1] == 4 && d[2] == 3 && d[3] == 2);
  CHECK(im && vx_volume_channel(im, 1)[7] == 2000 + 60 + 7);
  vx_volume_destroy(im);
  vx_volume_destroy(lb);
  char *text = NULL;
  vx_dataset_summary s;
  CHECK(vx_dataset_check(ds, NULL, NULL, &text, &s) == VX_OK);
  CHECKF(s.problems == 0 && s.cases_read == 2, "%s", text);
  vx_free(text);
  vx_dataset_close(ds);
}

/* nnU-Net v1: an MSD-style list whose images are stored one file per channel. */
static void test_msd_list_with_channel_files(void) {
  make_folder("v1", "{\"modality\": {\"0\": \"CT\"}, \"labels\": {\"0\": \"background\", \"1\": \"liver\"}, "
                    "\"numTraining\": 1, \"training\": [{\"image\": \"./imagesTr/l_1.nii\", \"label\": \"./labelsTr/l_1.nii\"}]}");
  float sp[3] = {1, 1, 1}, img[27], lab[27] = {0};
  for (int i = 0; i < 27; i++) img[i] = (float)i;
  lab[13] = 1;
  write_vol(P("v1/imagesTr/l_1_0000.nii"), 3, 3, 3, 1, sp, img, 0);
  write_vol(P("v1/labelsTr/l_1.nii"), 3, 3, 3, 1, sp, lab, 1);
  vx_dataset *ds = NULL;
  char err[1024] = "";
  CHECKF(vx_dataset_open(P("v1"), &ds, err, sizeof err) == VX_OK, "%s", err);
  vx_volume *im = NULL, *lb = NULL;
  CHECKF(vx_dataset_load_case(ds, 0, &im, &lb, err, sizeof err) == VX_OK, "%s", err);
  CHECK(im && vx_volume_data(im)[26] == 26 && vx_dataset_channel_is_ct(ds, 0));
  vx_volume_destroy(im);
  vx_volume_destroy(lb);
  vx_dataset_close(ds);
}

/* ---------------------------------------------------------------- check-dataset */

static int problems_seen, cases_seen;
static void on_problem(void *user, int ci, const char *p) {
  (void)user;
  (void)ci;
  if (p) problems_seen++;
  else cases_seen++;
}

static void test_check_lists_every_problem(void) {
  vx_synth_dataset_options o;
  vx_synth_dataset_options_init(&o);
  o.cases = 7;
  o.size[0] = o.size[1] = o.size[2] = 12;
  char err[1024] = "";
  CHECK(vx_synth_dataset_write(P("broken"), &o, NULL, NULL, err, sizeof err) == VX_OK);
  float sp1[3] = {1, 1, 1}, sp2[3] = {2, 1, 1};
  size_t n = 12 * 12 * 12;
  float *a = calloc(n, sizeof *a), *b = calloc(n, sizeof *b), *zero = calloc(n, sizeof *zero);
  vx_synth_case(1000 + 2, 12, 12, 12, a, b);
  /* planted: a missing channel file, a missing label, an undeclared label value, a label of
   * another shape, an image with another transform, a corrupt gzip, a wrong numTraining, a
   * channel file beyond the declared channels, a stray file */
  unlink(P("broken/imagesTr/synth_001_0000.nii.gz"));
  unlink(P("broken/labelsTr/synth_000.nii.gz"));
  b[100] = 7;
  write_vol(P("broken/labelsTr/synth_002.nii.gz"), 12, 12, 12, 1, sp1, b, 1);
  write_vol(P("broken/labelsTr/synth_003.nii.gz"), 12, 12, 10, 1, sp1, zero, 1);
  write_vol(P("broken/imagesTr/synth_004_0000.nii.gz"), 12, 12, 12, 1, sp2, a, 0);
  if (truncate(P("broken/labelsTr/synth_005.nii.gz"), 200) != 0) perror("truncate");
  spit(P("broken/dataset.json"), "{\"channel_names\": {\"0\": \"synthetic\"}, \"labels\": {\"background\": 0, "
                                 "\"ellipsoid\": 1, \"tube\": 2}, \"numTraining\": 9, \"file_ending\": \".nii.gz\"}");
  write_vol(P("broken/imagesTr/synth_006_0001.nii.gz"), 12, 12, 12, 1, sp1, a, 0);
  spit(P("broken/imagesTr/README.txt"), "x\n");
  free(a);
  free(b);
  free(zero);

  vx_dataset *ds = NULL;
  CHECKF(vx_dataset_open(P("broken"), &ds, err, sizeof err) == VX_OK, "%s", err);
  if (!ds) return;
  char *text = NULL;
  vx_dataset_summary s;
  problems_seen = cases_seen = 0;
  CHECK(vx_dataset_check(ds, on_problem, NULL, &text, &s) == VX_OK);
  const char *want[] = {
      "imagesTr/synth_001_0000.nii.gz: channel 0 of case synth_001 is missing",
      "labelsTr/synth_000.nii.gz: label of case synth_000 is missing",
      "labelsTr/synth_002.nii.gz: value 7 (1 voxel) not declared in dataset.json 'labels'",
      "labelsTr/synth_003.nii.gz: shape 12x12x10 differs from the image",
      "imagesTr/synth_004_0000.nii.gz",                       /* the label is compared with it: */
      "labelsTr/synth_004.nii.gz: transform differs from the image's",
      "labelsTr/synth_005.nii.gz",                            /* vx_volume_read's message */
      "dataset.json: 'numTraining' is 9 but imagesTr/labelsTr hold 7 cases",
      "imagesTr/synth_006_0001.nii.gz: channel 1 is not declared",
      "imagesTr/README.txt: not a channel file",
  };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) CHECKF(text && strstr(text, want[i]), "missing '%s'", want[i]);
  CHECKF(s.problems == 9, "%d problems:\n%s", s.problems, text);
  CHECK(problems_seen == s.problems && cases_seen == 7);
  int lines = 0;
  for (const char *p = text; p && *p; p++) lines += *p == '\n';
  CHECK(lines == s.problems);
  vx_free(text);
  /* the same problems stop loading, with the file named */
  vx_volume *im = NULL, *lb = NULL;
  CHECK(vx_dataset_load_case(ds, 2, &im, &lb, err, sizeof err) == VX_ERR_FORMAT);
  CHECKF(strstr(err, "labelsTr/synth_002.nii.gz: value 7") == err, "%s", err);
  CHECK(vx_dataset_load_case(ds, 3, &im, &lb, err, sizeof err) == VX_ERR_SHAPE);
  CHECK(vx_dataset_load_case(ds, 5, &im, &lb, err, sizeof err) != VX_OK && !im && !lb);
  CHECKF(strstr(err, "labelsTr/synth_005.nii.gz") == err, "%s", err);
  vx_dataset_close(ds);
}

/* ---------------------------------------------------------------- normalisation */

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double pct(const double *s, size_t n, double p) {
  double pos = p / 100 * (double)(n - 1);
  size_t lo = (size_t)pos, hi = lo + 1 < n ? lo + 1 : lo;
  return s[lo] + (pos - (double)lo) * (s[hi] - s[lo]);
}

/* Three random CT-like cases; the direct statistics of their foreground. */
static void make_ct_cases(vx_volume *img[3], vx_volume *lab[3], vx_intensity_stats *direct) {
  double *all = malloc(3 * 1000 * sizeof *all);
  size_t m = 0;
  for (int c = 0; c < 3; c++) {
    vx_volume_create(10, 10, 10, 1, NULL, &img[c]);
    vx_volume_create(10, 10, 10, 1, NULL, &lab[c]);
    float *x = vx_volume_data(img[c]), *l = vx_volume_data(lab[c]);
    for (int i = 0; i < 1000; i++) {
      l[i] = urand() < 0.3 ? (float)(1 + c % 2) : 0;
      x[i] = (float)(l[i] > 0 ? 40 + 300 * urand() * urand() : -1000 + 50 * urand());
      if (l[i] > 0) all[m++] = x[i];
    }
  }
  qsort(all, m, sizeof *all, cmp_d);
  double s = 0, q = 0;
  for (size_t i = 0; i < m; i++) s += all[i];
  for (size_t i = 0; i < m; i++) q += (all[i] - s / m) * (all[i] - s / m);
  direct->lo = (float)pct(all, m, 0.5);
  direct->hi = (float)pct(all, m, 99.5);
  direct->mean = (float)(s / m);
  direct->std = (float)sqrt(q / m);
  direct->samples = m;
  free(all);
}

static int close_to(double a, double b, double tol) { return fabs(a - b) <= tol * (1 + fabs(b)); }

static void test_stats_percentiles(void) {
  vx_volume *img[3], *lab[3];
  vx_intensity_stats d, s;
  make_ct_cases(img, lab, &d);
  char err[256];
  CHECK(vx_intensity_stats_compute(img, lab, 3, 0, 0, &s, err, sizeof err) == VX_OK);
  CHECK(s.samples == d.samples);
  CHECKF(close_to(s.lo, d.lo, 1e-6) && close_to(s.hi, d.hi, 1e-6), "%g %g vs %g %g", s.lo, s.hi, d.lo, d.hi);
  CHECKF(close_to(s.mean, d.mean, 1e-6) && close_to(s.std, d.std, 1e-5), "%g %g vs %g %g", s.mean, s.std, d.mean, d.std);
  /* at most 50 evenly spaced foreground voxels per case */
  CHECK(vx_intensity_stats_compute(img, lab, 3, 0, 50, &s, err, sizeof err) == VX_OK && s.samples == 150);
  /* no foreground at all */
  memset(vx_volume_data(lab[0]), 0, 1000 * sizeof(float));
  CHECK(vx_intensity_stats_compute(img, lab, 1, 0, 0, &s, err, sizeof err) == VX_ERR_INVALID_ARGUMENT);
  for (int c = 0; c < 3; c++) {
    vx_volume_destroy(img[c]);
    vx_volume_destroy(lab[c]);
  }
}

static void test_normalize_ct_and_zscore(void) {
  vx_intensity_stats s = {-10, 50, 20, 8, 0};
  float x[5] = {-100, -10, 20, 49, 1000};
  vx_normalize_ct(x, 5, &s);
  float want[5] = {-3.75f, -3.75f, 0, 29.0f / 8, 3.75f};
  int ok = 1;
  for (int i = 0; i < 5; i++) ok &= fabsf(x[i] - want[i]) < 1e-6f;
  CHECK(ok);
  float y[1000];
  for (int i = 0; i < 1000; i++) y[i] = (float)(7 + 3 * urand());
  vx_normalize_zscore(y, 1000);
  double m = 0, q = 0;
  for (int i = 0; i < 1000; i++) m += y[i];
  m /= 1000;
  for (int i = 0; i < 1000; i++) q += (y[i] - m) * (y[i] - m);
  CHECKF(fabs(m) < 1e-5 && fabs(sqrt(q / 1000) - 1) < 1e-4, "mean %g std %g", m, sqrt(q / 1000));
  /* a volume: channel 0 CT with the dataset's statistics, channel 1 z-scored */
  vx_volume *v = NULL;
  vx_volume_create(4, 4, 4, 2, NULL, &v);
  for (int i = 0; i < 128; i++) vx_volume_data(v)[i] = (float)(i % 64) - 10;
  int is_ct[2] = {1, 0};
  vx_intensity_stats st[2] = {s, s};
  CHECK(vx_normalize_volume(v, is_ct, st) == VX_OK);
  CHECK(vx_volume_channel(v, 0)[0] == -3.75f && fabsf(vx_volume_channel(v, 0)[40] - 1.25f) < 1e-6f);
  double m1 = 0;
  for (int i = 0; i < 64; i++) m1 += vx_volume_channel(v, 1)[i];
  CHECK(fabs(m1 / 64) < 1e-5);
  vx_volume_destroy(v);
}

static void test_dataset_intensity_stats(void) {
  make_two_channel("two_stats");
  vx_dataset *ds = NULL;
  char err[512];
  vx_dataset_open(P("two_stats"), &ds, err, sizeof err);
  int cases[3] = {0, 1, 2};
  vx_intensity_stats s[2], t;
  CHECKF(vx_dataset_intensity_stats(ds, cases, 3, 0, s, err, sizeof err) == VX_OK, "%s", err);
  vx_volume *img[3], *lab[3];
  for (int i = 0; i < 3; i++) vx_dataset_load_case(ds, i, &img[i], &lab[i], err, sizeof err);
  for (int c = 0; c < 2; c++) {
    vx_intensity_stats_compute(img, lab, 3, c, 0, &t, err, sizeof err);
    CHECK(!memcmp(&t, &s[c], sizeof t));
  }
  CHECK(s[1].samples == 240 && s[1].mean > 1000);
  for (int i = 0; i < 3; i++) {
    vx_volume_destroy(img[i]);
    vx_volume_destroy(lab[i]);
  }
  vx_dataset_close(ds);
}

/* ---------------------------------------------------------------- resampling */

static void test_resample_linear_ramp(void) {
  int in[3] = {8, 6, 5}, out[3] = {16, 12, 10};
  float *a = malloc(240 * sizeof *a), *b = malloc(1920 * sizeof *b);
  for (int z = 0; z < 5; z++)
    for (int y = 0; y < 6; y++)
      for (int x = 0; x < 8; x++) a[(z * 6 + y) * 8 + x] = (float)(2 * x + 3 * y + 5 * z);
  CHECK(vx_resample(a, in, 1, b, out, 0) == VX_OK);
  /* output centre o sits at input coordinate (o + 0.5) / 2 - 0.5; a ramp stays a ramp inside */
  int ok = 1;
  for (int z = 1; z < 9; z++)
    for (int y = 1; y < 11; y++)
      for (int x = 1; x < 15; x++) {
        double e = 2 * ((x + 0.5) / 2 - 0.5) + 3 * ((y + 0.5) / 2 - 0.5) + 5 * ((z + 0.5) / 2 - 0.5);
        ok &= fabs(b[(z * 12 + y) * 16 + x] - e) < 1e-4;
      }
  CHECK(ok);
  CHECK(b[0] == a[0]); /* the corner clamps */
  /* same size: identity */
  CHECK(vx_resample(a, in, 1, b, in, 0) == VX_OK && !memcmp(a, b, 240 * sizeof *a));
  free(a);
  free(b);
}

static void test_resample_nearest_labels(void) {
  int in[3] = {8, 8, 8}, out[3] = {4, 4, 4};
  float a[512], b[64];
  for (int i = 0; i < 512; i++) a[i] = (float)(i % 5);
  CHECK(vx_resample(a, in, 1, b, out, 1) == VX_OK);
  int ok = 1;
  for (int z = 0; z < 4; z++)
    for (int y = 0; y < 4; y++)
      for (int x = 0; x < 4; x++) ok &= b[(z * 4 + y) * 4 + x] == a[((2 * z + 1) * 8 + 2 * y + 1) * 8 + 2 * x + 1];
  CHECK(ok);
  /* a volume at a new spacing */
  vx_volume *v = NULL, *r = NULL;
  float sp[3] = {1, 1, 3}, target[3] = {2, 0.5f, 1.5f};
  vx_volume_create(10, 10, 4, 1, sp, &v);
  CHECK(vx_volume_resample(v, target, 1, &r) == VX_OK);
  int d[4];
  float rs[3];
  vx_volume_dims(r, d);
  vx_volume_spacing(r, rs);
  CHECK(d[0] == 5 && d[1] == 20 && d[2] == 8 && rs[1] == 0.5f);
  vx_volume_destroy(v);
  vx_volume_destroy(r);
}

/* ---------------------------------------------------------------- sampler */

/* n cases of D x H x W (z, y, x order as the sampler sees them); label 1 in a 2^3 blob. */
static void make_blob_cases(int n, int D, int H, int W, vx_volume **img, vx_volume **lab) {
  for (int c = 0; c < n; c++) {
    vx_volume_create(W, H, D, 1, NULL, &img[c]);
    vx_volume_create(W, H, D, 1, NULL, &lab[c]);
    float *x = vx_volume_data(img[c]), *l = vx_volume_data(lab[c]);
    for (int i = 0; i < D * H * W; i++) x[i] = (float)urand();
    for (int z = 0; z < 2; z++)
      for (int y = 0; y < 2; y++)
        for (int w = 0; w < 2; w++) l[((size_t)(3 + z) * H + 5 + y) * W + 7 + w] = 1;
  }
}

static void free_cases(int n, vx_volume **img, vx_volume **lab) {
  for (int c = 0; c < n; c++) {
    vx_volume_destroy(img[c]);
    vx_volume_destroy(lab[c]);
  }
}

static void test_sampler_shapes_and_share(void) {
  vx_volume *img[3], *lab[3];
  make_blob_cases(3, 40, 40, 40, img, lab);
  vx_sampler_config c;
  vx_sampler_config_init(&c);
  c.batch = 3;
  c.patch[0] = 8; c.patch[1] = 12; c.patch[2] = 16;
  c.augment = 0;
  c.threaded = 0;
  vx_sampler *s = NULL;
  char err[512];
  CHECKF(vx_sampler_create(img, lab, 3, &c, &s, err, sizeof err) == VX_OK, "%s", err);
  int forced = 0, total = 0, forced_with_fg = 0, random_with_fg = 0, shapes_ok = 1;
  size_t pv = 8 * 12 * 16;
  for (int it = 0; it < 300; it++) {
    vx_batch b;
    vx_sampler_next(s, &b);
    shapes_ok &= b.batch == 3 && b.channels == 1 && b.patch[0] == 8 && b.patch[1] == 12 && b.patch[2] == 16;
    for (int i = 0; i < 3; i++) {
      int any = 0;
      for (size_t v = 0; v < pv; v++) any |= b.label[i * pv + v] == 1;
      shapes_ok &= b.case_index[i] >= 0 && b.case_index[i] < 3;
      forced += b.foreground[i];
      forced_with_fg += b.foreground[i] && any;
      random_with_fg += !b.foreground[i] && any;
      total++;
    }
  }
  CHECK(shapes_ok);
  double share = (double)forced / total;
  CHECKF(fabs(share - 1.0 / 3) < 0.05, "foreground share %.3f", share);
  CHECK(forced_with_fg == forced);
  CHECKF(random_with_fg < total / 10, "%d random patches hold the blob", random_with_fg);
  vx_sampler_stats st;
  vx_sampler_get_stats(s, &st);
  CHECK(st.batches == 300 && st.produce_seconds > 0 && st.wait_seconds >= st.produce_seconds * 0.5);
  vx_sampler_destroy(s);
  free_cases(3, img, lab);
}

static void test_sampler_padding(void) {
  vx_volume *img[1], *lab[1];
  vx_volume_create(14, 12, 10, 1, NULL, &img[0]); /* W 14, H 12, D 10 */
  vx_volume_create(14, 12, 10, 1, NULL, &lab[0]);
  for (int i = 0; i < 1680; i++) vx_volume_data(img[0])[i] = 1, vx_volume_data(lab[0])[i] = 2;
  vx_sampler_config c;
  vx_sampler_config_init(&c);
  c.batch = 2;
  c.patch[0] = c.patch[1] = c.patch[2] = 16;
  c.augment = 0;
  c.threaded = 0;
  vx_sampler *s = NULL;
  char err[512];
  CHECK(vx_sampler_create(img, lab, 1, &c, &s, err, sizeof err) == VX_OK);
  int ok = 1;
  for (int it = 0; it < 20; it++) {
    vx_batch b;
    vx_sampler_next(s, &b);
    for (int i = 0; i < 2; i++) {
      int ones = 0, twos = 0, zeros = 0;
      for (int v = 0; v < 4096; v++) {
        ones += b.image[i * 4096 + v] == 1;
        zeros += b.image[i * 4096 + v] == 0 && b.label[i * 4096 + v] == 0;
        twos += b.label[i * 4096 + v] == 2 && b.image[i * 4096 + v] == 1;
      }
      ok &= ones == 1680 && twos == 1680 && zeros == 4096 - 1680;
    }
  }
  CHECK(ok);
  vx_sampler_destroy(s);
  free_cases(1, img, lab);
}

/* Image = label (a marker voxel of class 1 and a bar of class 2): after flips and rotations,
 * image and label must still agree everywhere, and the marker must move around. */
static void test_sampler_flips_keep_alignment(void) {
  vx_volume *img[1], *lab[1];
  vx_volume_create(10, 10, 6, 1, NULL, &img[0]);
  vx_volume_create(10, 10, 6, 1, NULL, &lab[0]);
  float *x = vx_volume_data(img[0]), *l = vx_volume_data(lab[0]);
  l[(1 * 10 + 2) * 10 + 3] = 1;
  for (int w = 0; w < 6; w++) l[(4 * 10 + 7) * 10 + w] = 2;
  memcpy(x, l, 600 * sizeof *x);
  vx_sampler_config c;
  vx_sampler_config_init(&c);
  c.batch = 2;
  c.patch[0] = 6; c.patch[1] = 10; c.patch[2] = 10;
  c.p_noise = c.p_scale = c.p_shift = c.p_gamma = 0;
  c.threaded = 0;
  vx_sampler *s = NULL;
  char err[512];
  CHECK(vx_sampler_create(img, lab, 1, &c, &s, err, sizeof err) == VX_OK);
  int aligned = 1, seen[600] = {0}, distinct = 0;
  for (int it = 0; it < 100; it++) {
    vx_batch b;
    vx_sampler_next(s, &b);
    for (int i = 0; i < 2; i++) {
      int markers = 0;
      for (int v = 0; v < 600; v++) {
        aligned &= b.image[i * 600 + v] == b.label[i * 600 + v];
        if (b.label[i * 600 + v] == 1) {
          markers++;
          distinct += !seen[v]++;
        }
      }
      aligned &= markers == 1;
    }
  }
  CHECK(aligned);
  CHECKF(distinct >= 16, "the marker took %d of its 16 possible positions", distinct);
  vx_sampler_destroy(s);
  free_cases(1, img, lab);
}

static void test_sampler_intensity_augmentation(void) {
  vx_volume *img[2], *lab[2];
  make_blob_cases(2, 20, 20, 20, img, lab);
  vx_sampler_config c;
  vx_sampler_config_init(&c);
  c.patch[0] = c.patch[1] = c.patch[2] = 12;
  c.p_flip = 0;
  c.rot90 = 0;
  c.p_noise = c.p_scale = c.p_shift = c.p_gamma = 1;
  c.threaded = 0;
  c.foreground_fraction = 1;
  vx_sampler *s = NULL;
  char err[512];
  CHECK(vx_sampler_create(img, lab, 2, &c, &s, err, sizeof err) == VX_OK);
  vx_batch b;
  vx_sampler_next(s, &b);
  int finite = 1, outside = 0, labels_ok = 1;
  for (int v = 0; v < 2 * 1728; v++) {
    finite &= isfinite(b.image[v]);
    outside += b.image[v] < 0 || b.image[v] > 1; /* the source is in [0, 1): noise/shift move it */
    labels_ok &= b.label[v] == 0 || b.label[v] == 1;
  }
  CHECK(finite && labels_ok && outside > 100);
  vx_sampler_destroy(s);
  free_cases(2, img, lab);
}

/* Two channels: each patch channel comes from its own image channel, moved like the label. */
static void test_sampler_multichannel(void) {
  vx_volume *img[1], *lab[1];
  vx_volume_create(9, 9, 9, 2, NULL, &img[0]);
  vx_volume_create(9, 9, 9, 1, NULL, &lab[0]);
  float *l = vx_volume_data(lab[0]);
  for (int i = 0; i < 729; i++) l[i] = (float)(urand() < 0.2);
  for (int i = 0; i < 729; i++) {
    vx_volume_channel(img[0], 0)[i] = l[i];
    vx_volume_channel(img[0], 1)[i] = 10 + 2 * l[i];
  }
  vx_sampler_config c;
  vx_sampler_config_init(&c);
  c.batch = 3;
  c.patch[0] = c.patch[1] = c.patch[2] = 6;
  c.p_noise = c.p_scale = c.p_shift = c.p_gamma = 0;
  vx_sampler *s = NULL;
  char err[512];
  CHECK(vx_sampler_create(img, lab, 1, &c, &s, err, sizeof err) == VX_OK);
  int ok = 1;
  for (int it = 0; it < 20; it++) {
    vx_batch b;
    vx_sampler_next(s, &b);
    ok &= b.channels == 2;
    for (int i = 0; i < 3; i++)
      for (int v = 0; v < 216; v++) {
        float lv = b.label[i * 216 + v];
        ok &= b.image[(i * 2 + 0) * 216 + v] == lv && b.image[(i * 2 + 1) * 216 + v] == 10 + 2 * lv;
      }
  }
  CHECK(ok);
  vx_sampler_destroy(s);
  free_cases(1, img, lab);
}

static void test_sampler_determinism(void) {
  vx_volume *img[4], *lab[4];
  make_blob_cases(4, 24, 20, 20, img, lab);
  vx_sampler_config c;
  vx_sampler_config_init(&c);
  c.patch[0] = 8; c.patch[1] = c.patch[2] = 16;
  c.p_noise = c.p_scale = c.p_shift = c.p_gamma = 0.5f;
  c.seed = 5;
  vx_sampler *a = NULL, *t = NULL, *d = NULL;
  char err[512];
  c.threaded = 0;
  vx_sampler_create(img, lab, 4, &c, &a, err, sizeof err);
  c.threaded = 1;
  vx_sampler_create(img, lab, 4, &c, &t, err, sizeof err);
  c.seed = 6;
  vx_sampler_create(img, lab, 4, &c, &d, err, sizeof err);
  size_t n = 2 * 8 * 16 * 16;
  int same = 1, differs = 0;
  for (int it = 0; it < 6; it++) {
    vx_batch x, y, z;
    vx_sampler_next(a, &x);
    vx_sampler_next(t, &y);
    vx_sampler_next(d, &z);
    same &= !memcmp(x.image, y.image, n * sizeof(float)) && !memcmp(x.label, y.label, n * sizeof(float)) &&
            !memcmp(x.case_index, y.case_index, 2 * sizeof(int));
    differs |= memcmp(x.image, z.image, n * sizeof(float)) != 0;
  }
  CHECK(same && differs);
  vx_sampler_destroy(a);
  vx_sampler_destroy(t);
  vx_sampler_destroy(d);
  free_cases(4, img, lab);
}

/* While the caller "trains", the thread makes the next batch: once it is made, taking it
 * costs no waiting. (Waiting for the batch to be made, not sleeping a guessed time, keeps
 * this right on a loaded machine.) */
static int wait_until_produced(vx_sampler *s, long long n) {
  for (int i = 0; i < 20000; i++) { /* up to 20 s */
    vx_sampler_stats st;
    vx_sampler_get_stats(s, &st);
    if (st.produced >= n) return 1;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  return 0;
}

static void test_sampler_runs_ahead(void) {
  vx_volume *img[2], *lab[2];
  make_blob_cases(2, 48, 48, 48, img, lab);
  vx_sampler_config c;
  vx_sampler_config_init(&c);
  c.patch[0] = c.patch[1] = c.patch[2] = 32;
  c.p_noise = c.p_gamma = 1; /* make production take measurable time */
  vx_sampler *s = NULL;
  char err[512];
  CHECK(vx_sampler_create(img, lab, 2, &c, &s, err, sizeof err) == VX_OK);
  vx_batch b;
  vx_sampler_next(s, &b); /* the first batch may be waited for */
  vx_sampler_stats st, st2;
  vx_sampler_get_stats(s, &st);
  int ahead = 1;
  for (int it = 2; it <= 7; it++) {
    ahead &= wait_until_produced(s, it); /* "training" until the next batch is ready */
    vx_sampler_get_stats(s, &st2);
    ahead &= st2.produced <= it; /* one ahead of the batch held: the double buffer */
    vx_sampler_next(s, &b);
  }
  vx_sampler_get_stats(s, &st2);
  double waited = st2.wait_seconds - st.wait_seconds;
  CHECK(ahead && st2.batches == 7);
  CHECKF(waited < 0.1 && waited < st2.produce_seconds, "waited %.4f s for ready batches made in %.4f s", waited,
         st2.produce_seconds);
  vx_sampler_destroy(s);
  free_cases(2, img, lab);
}

static void test_sampler_rejects_bad_input(void) {
  vx_volume *img[1], *lab[1];
  make_blob_cases(1, 10, 10, 10, img, lab);
  vx_volume_data(lab[0])[3] = 0.5f;
  vx_sampler *s = NULL;
  char err[512] = "";
  CHECK(vx_sampler_create(img, lab, 1, NULL, &s, err, sizeof err) == VX_ERR_INVALID_ARGUMENT && !s);
  CHECKF(strstr(err, "0.5"), "%s", err);
  vx_volume_destroy(lab[0]);
  vx_volume_create(10, 10, 9, 1, NULL, &lab[0]);
  CHECK(vx_sampler_create(img, lab, 1, NULL, &s, err, sizeof err) == VX_ERR_SHAPE && !s);
  free_cases(1, img, lab);
}

/* ---------------------------------------------------------------- folds */

static void test_folds_partition(void) {
  int n = 23, tr[23], va[23], ntr, nva, owner[23];
  for (int i = 0; i < n; i++) owner[i] = -1;
  int ok = 1;
  for (int k = 0; k < 5; k++) {
    CHECK(vx_fold_split(n, k, 5, 12345, tr, &ntr, va, &nva) == VX_OK);
    ok &= ntr + nva == n && (nva == 4 || nva == 5);
    for (int i = 0; i < nva; i++) {
      ok &= owner[va[i]] == -1 && (i == 0 || va[i] > va[i - 1]);
      owner[va[i]] = k;
    }
    for (int i = 0; i < ntr; i++) ok &= owner[tr[i]] != k && (i == 0 || tr[i] > tr[i - 1]);
    int in_both = 0;
    for (int i = 0; i < ntr; i++)
      for (int j = 0; j < nva; j++) in_both += tr[i] == va[j];
    ok &= in_both == 0;
  }
  for (int i = 0; i < n; i++) ok &= owner[i] >= 0;
  CHECK(ok);
  /* fixed for a seed, different for another */
  int va2[23], tr2[23], nva2, ntr2, differ = 0;
  vx_fold_split(n, 0, 5, 12345, tr, &ntr, va, &nva);
  vx_fold_split(n, 0, 5, 12345, tr2, &ntr2, va2, &nva2);
  CHECK(nva == nva2 && !memcmp(va, va2, (size_t)nva * sizeof *va));
  for (int s = 1; s < 4; s++) {
    vx_fold_split(n, 0, 5, (uint64_t)s, tr2, &ntr2, va2, &nva2);
    differ |= memcmp(va, va2, (size_t)nva * sizeof *va) != 0;
  }
  CHECK(differ);
  CHECK(vx_fold_split(3, 0, 5, 1, tr, &ntr, va, &nva) == VX_ERR_INVALID_ARGUMENT);
  CHECK(vx_fold_split(10, 5, 5, 1, tr, &ntr, va, &nva) == VX_ERR_INVALID_ARGUMENT);
  /* over a dataset */
  vx_dataset *ds = NULL;
  char err[256];
  vx_dataset_open(synth_dir(), &ds, err, sizeof err);
  CHECK(vx_dataset_fold(ds, 1, 3, 7, tr, &ntr, va, &nva) == VX_OK && ntr == 4 && nva == 2);
  vx_fold_split(6, 1, 3, 7, tr2, &ntr2, va2, &nva2);
  CHECK(!memcmp(va, va2, 2 * sizeof *va));
  vx_dataset_close(ds);
}

int main(int argc, char **argv) {
  int keep = argc > 1 && !strcmp(argv[1], "--keep");
  const char *tmp = getenv("TMPDIR");
  snprintf(g_dir, sizeof g_dir, "%s/voxcl-dataset-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 2; }
  static const struct { const char *name; void (*fn)(void); } tests[] = {
      {"synth_write", test_synth_write},
      {"synth_refuses_foreign_folder", test_synth_refuses_foreign_folder},
      {"synth_rewrite_removes_stale", test_synth_rewrite_removes_stale},
      {"open_nnunet", test_open_nnunet},
      {"load_case_values", test_load_case_values},
      {"check_clean", test_check_clean},
      {"open_errors", test_open_errors},
      {"labels_regions_and_duplicates", test_labels_regions_and_duplicates},
      {"multi_channel_nnunet", test_multi_channel_nnunet},
      {"msd_layout", test_msd_layout},
      {"msd_list_with_channel_files", test_msd_list_with_channel_files},
      {"check_lists_every_problem", test_check_lists_every_problem},
      {"stats_percentiles", test_stats_percentiles},
      {"normalize_ct_and_zscore", test_normalize_ct_and_zscore},
      {"dataset_intensity_stats", test_dataset_intensity_stats},
      {"resample_linear_ramp", test_resample_linear_ramp},
      {"resample_nearest_labels", test_resample_nearest_labels},
      {"sampler_shapes_and_share", test_sampler_shapes_and_share},
      {"sampler_padding", test_sampler_padding},
      {"sampler_flips_keep_alignment", test_sampler_flips_keep_alignment},
      {"sampler_intensity_augmentation", test_sampler_intensity_augmentation},
      {"sampler_multichannel", test_sampler_multichannel},
      {"sampler_determinism", test_sampler_determinism},
      {"sampler_runs_ahead", test_sampler_runs_ahead},
      {"sampler_rejects_bad_input", test_sampler_rejects_bad_input},
      {"folds_partition", test_folds_partition},
  };
  int passed = 0, failed = 0;
  const char *only = getenv("VOXCL_TEST_ONLY");
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    if (only && !strstr(tests[i].name, only)) continue;
    int before = g_checks_failed;
    tests[i].fn();
    int ok = g_checks_failed == before;
    printf("%s %s\n", ok ? "PASS" : "FAIL", tests[i].name);
    fflush(stdout);
    if (ok) passed++;
    else failed++;
  }
  if (keep) printf("files kept in %s\n", g_dir);
  else remove_tree(g_dir);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
