/* NIfTI reading and writing: round trips, every datatype, byte orders, scaling, channels,
 * transforms, .hdr/.img pairs, NIfTI-2, label types, and every kind of broken input (each must
 * fail with the right status and a message naming the file and the field, and print nothing).
 * Test files are made with nifticlib here, then patched or cut.
 *
 *   test_nifti [--keep]                 run all tests in a fresh temporary directory
 *   test_nifti --write-for-nibabel DIR  write voxcl files and DIR/expected.txt for
 *                                       tests/nifti_nibabel_check.py
 *   test_nifti --dump FILE OUT.txt      write what voxcl reads from FILE as text (same script) */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nifti2_io.h>
#include <zlib.h>

#include "voxcl.h"

static char g_dir[512];
static int g_checks_failed;

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "  CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      g_checks_failed++;                                                             \
    }                                                                                \
  } while (0)
#define CHECKF(cond, ...)                                                            \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "  CHECK failed at %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                                  \
      fprintf(stderr, "\n");                                                         \
      g_checks_failed++;                                                             \
    }                                                                                \
  } while (0)

static const char *P(const char *name) {
  static char buf[8][1024];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
  return buf[k];
}

/* ---------------------------------------------------------------- file helpers */

static unsigned char *slurp(const char *path, size_t *n) {
  *n = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)len + 1);
  *n = fread(b, 1, (size_t)len, f);
  fclose(f);
  return b;
}

static void spit(const char *path, const void *b, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) { perror(path); exit(2); }
  fwrite(b, 1, n, f);
  fclose(f);
}

/* Decompressed content of a (maybe) gzip file. */
static unsigned char *slurp_gz(const char *path, size_t *n) {
  *n = 0;
  gzFile gz = gzopen(path, "rb");
  if (!gz) return NULL;
  size_t cap = 1 << 16, have = 0;
  unsigned char *b = malloc(cap);
  for (;;) {
    if (have == cap) b = realloc(b, cap *= 2);
    int r = gzread(gz, b + have, (unsigned)(cap - have));
    if (r <= 0) break;
    have += (size_t)r;
  }
  gzclose(gz);
  *n = have;
  return b;
}

static void spit_gz(const char *path, const void *b, size_t n) {
  gzFile gz = gzopen(path, "wb");
  gzwrite(gz, b, (unsigned)n);
  gzclose(gz);
}

static nifti_1_header read_n1(const char *path) {
  size_t n = 0;
  unsigned char *b = slurp_gz(path, &n);
  nifti_1_header h;
  memset(&h, 0, sizeof h);
  if (b && n >= sizeof h) memcpy(&h, b, sizeof h);
  free(b);
  return h;
}

static nifti_2_header read_n2(const char *path) {
  size_t n = 0;
  unsigned char *b = slurp_gz(path, &n);
  nifti_2_header h;
  memset(&h, 0, sizeof h);
  if (b && n >= sizeof h) memcpy(&h, b, sizeof h);
  free(b);
  return h;
}

static int file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

/* Files in g_dir whose name contains s. */
static int count_files_containing(const char *s) {
  DIR *d = opendir(g_dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (strstr(e->d_name, s)) n++;
  if (d) closedir(d);
  return n;
}

/* ---------------------------------------------------------------- nifticlib writers */

/* A nifticlib image: dims nx x ny x nz (x nt when nt > 1), datatype dt, zeroed data, with a
 * rotated, flipped qform and an sform that differs from it. */
static nifti_image *make_nim(int nx, int ny, int nz, int nt, int dt) {
  int64_t dims[8] = {nt > 1 ? 4 : 3, nx, ny, nz, nt, 1, 1, 1};
  nifti_image *nim = nifti_make_new_nim(dims, dt, 1);
  nim->dx = nim->pixdim[1] = 0.8;
  nim->dy = nim->pixdim[2] = 0.9;
  nim->dz = nim->pixdim[3] = 2.5;
  nim->xyz_units = NIFTI_UNITS_MM;
  nim->time_units = NIFTI_UNITS_SEC;
  nim->qform_code = NIFTI_XFORM_SCANNER_ANAT;
  nim->quatern_b = 0.1f;
  nim->quatern_c = -0.2f;
  nim->quatern_d = 0.3f;
  nim->qoffset_x = -90.5f;
  nim->qoffset_y = 120.25f;
  nim->qoffset_z = -60.125f;
  nim->qfac = -1;
  nim->qto_xyz = nifti_quatern_to_dmat44(nim->quatern_b, nim->quatern_c, nim->quatern_d, nim->qoffset_x,
                                         nim->qoffset_y, nim->qoffset_z, nim->dx, nim->dy, nim->dz, nim->qfac);
  nim->sform_code = NIFTI_XFORM_ALIGNED_ANAT;
  const float s[12] = {-0.79f, 0.013f, 0.1f, 91.3f, 0.02f, 0.88f, -0.3f, -126.7f, 0.01f, 0.15f, 2.49f, -72.1f};
  memset(&nim->sto_xyz, 0, sizeof nim->sto_xyz);
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++) nim->sto_xyz.m[r][c] = s[r * 4 + c];
  nim->sto_xyz.m[3][3] = 1;
  return nim;
}

static void nim_write(nifti_image *nim, const char *path, int nifti_type) {
  if (nifti_set_filenames(nim, path, 0, 1) != 0) { fprintf(stderr, "nifti_set_filenames %s\n", path); exit(2); }
  nim->nifti_type = nifti_type; /* after: nifti_set_filenames resets it from the name */
  nifti_image_write(nim);
}

/* NIfTI-2 single file: header bytes from nifticlib, written here (nifticlib 3.0.1's
 * nifti_image_write writes a NIfTI-2 .nii without its header). */
static void n2_write(nifti_image *nim, const char *path) {
  nim->nifti_type = NIFTI_FTYPE_NIFTI2_1;
  nim->iname_offset = 544;
  nifti_2_header h;
  if (nifti_convert_nim2n2hdr(nim, &h) != 0) { fprintf(stderr, "nifti_convert_nim2n2hdr\n"); exit(2); }
  int gz = strlen(path) > 3 && !strcmp(path + strlen(path) - 3, ".gz");
  gzFile f = gzopen(path, gz ? "wb" : "wbT");
  gzwrite(f, &h, sizeof h);
  gzwrite(f, "\0\0\0\0", 4);
  gzwrite(f, nim->data, (unsigned)(nim->nvox * nim->nbyper));
  gzclose(f);
}

/* Fills the image with a pattern of values that type dt holds exactly; expected[] gets them. */
static void fill_pattern(nifti_image *nim, float *expected) {
  for (int64_t i = 0; i < nim->nvox; i++) {
    double v;
    switch (nim->datatype) {
    case DT_UINT8: v = (double)((i * 37) % 256); break;
    case DT_INT8: v = (double)((i * 37) % 256) - 128; break;
    case DT_INT16: v = (double)((i * 3517) % 65536) - 32768; break;
    case DT_UINT16: v = (double)((i * 3517) % 65536); break;
    case DT_INT32: v = (double)(i * 1000003 % 2000) * 1024.0 - 1024000.0; break;
    case DT_UINT32: v = (double)(i * 1000003 % 2000) * 2097152.0; break; /* up to ~4.2e9 */
    case DT_INT64: v = (double)(i % 7 - 3) * 1099511627776.0; break;      /* +-3 * 2^40 */
    case DT_UINT64: v = (double)(i % 7) * 1099511627776.0 * 1024.0; break;
    default: v = (double)i * 0.25 - 3.5; break;
    }
    expected[i] = (float)v;
    unsigned char *d = (unsigned char *)nim->data + (size_t)i * nim->nbyper;
#define PUT(T) do { T t = (T)v; memcpy(d, &t, sizeof t); } while (0)
    switch (nim->datatype) {
    case DT_UINT8: PUT(uint8_t); break;
    case DT_INT8: PUT(int8_t); break;
    case DT_INT16: PUT(int16_t); break;
    case DT_UINT16: PUT(uint16_t); break;
    case DT_INT32: PUT(int32_t); break;
    case DT_UINT32: PUT(uint32_t); break;
    case DT_INT64: PUT(int64_t); break;
    case DT_UINT64: PUT(uint64_t); break;
    case DT_FLOAT32: PUT(float); break;
    case DT_FLOAT64: PUT(double); break;
    }
#undef PUT
  }
}

/* A valid float32 10x8x6 .nii (352 + 1920 bytes) to patch. */
static const char *good_nii(const char *name) {
  nifti_image *nim = make_nim(10, 8, 6, 1, DT_FLOAT32);
  float *e = malloc(sizeof(float) * (size_t)nim->nvox);
  fill_pattern(nim, e);
  nim_write(nim, P(name), NIFTI_FTYPE_NIFTI1_1);
  nifti_image_free(nim);
  free(e);
  return P(name);
}

/* Patches 'len' bytes at 'off' of a file (uncompressed). */
static void patch(const char *path, size_t off, const void *bytes, size_t len) {
  size_t n;
  unsigned char *b = slurp(path, &n);
  memcpy(b + off, bytes, len);
  spit(path, b, n);
  free(b);
}
static void patch_i16(const char *path, size_t off, int16_t v) { patch(path, off, &v, 2); }

/* ---------------------------------------------------------------- expectations */

static int g_saved_stderr = -1;
static char g_stderr_file[600];

static void stderr_capture_begin(void) {
  fflush(stderr);
  snprintf(g_stderr_file, sizeof g_stderr_file, "%s/stderr.txt", g_dir);
  g_saved_stderr = dup(2);
  int fd = open(g_stderr_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(fd, 2);
  close(fd);
}

/* Restores stderr; returns what was printed meanwhile (malloc'ed). */
static char *stderr_capture_end(void) {
  fflush(stderr);
  dup2(g_saved_stderr, 2);
  close(g_saved_stderr);
  size_t n = 0;
  unsigned char *b = slurp(g_stderr_file, &n);
  if (!b) return NULL;
  b[n] = 0;
  return (char *)b;
}

/* Reads path and checks: status, NULL volume, message holds the file's name and every
 * fragment given (NULL-terminated), nothing printed to stderr. */
static void expect_read_error(const char *path, vx_status want, const char *name_in_msg, ...) {
  char err[1024] = "";
  vx_volume *v = (vx_volume *)1;
  stderr_capture_begin();
  vx_status st = vx_volume_read(path, &v, err, sizeof err);
  char *printed = stderr_capture_end();
  CHECKF(st == want, "%s: status %s, expected %s (message: %s)", path, vx_status_string(st), vx_status_string(want),
         err);
  CHECK(v == NULL);
  CHECKF(strstr(err, name_in_msg) != NULL, "message \"%s\" lacks the file name \"%s\"", err, name_in_msg);
  va_list ap;
  va_start(ap, name_in_msg);
  for (const char *frag; (frag = va_arg(ap, const char *));)
    CHECKF(strstr(err, frag) != NULL, "message \"%s\" lacks \"%s\"", err, frag);
  va_end(ap);
  CHECKF(printed && printed[0] == 0, "stderr got: %s", printed ? printed : "(null)");
  free(printed);
  if (getenv("VOXCL_TEST_VERBOSE")) printf("    %s -> %s: %s\n", path, vx_status_string(st), err);
}

static vx_volume *read_ok(const char *path) {
  char err[1024] = "";
  vx_volume *v = NULL;
  stderr_capture_begin();
  vx_status st = vx_volume_read(path, &v, err, sizeof err);
  char *printed = stderr_capture_end();
  CHECKF(st == VX_OK && v, "%s: %s: %s", path, vx_status_string(st), err);
  CHECKF(printed && printed[0] == 0, "stderr got: %s", printed ? printed : "(null)");
  free(printed);
  return v;
}

static int floats_equal(const float *a, const float *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (memcmp(&a[i], &b[i], sizeof(float)) != 0) {
      fprintf(stderr, "  float %zu: %.9g vs %.9g\n", i, a[i], b[i]);
      return 0;
    }
  return 1;
}

/* The fields that define geometry, bit for bit. */
static int same_geometry_n1(const nifti_1_header *a, const nifti_1_header *b) {
  return a->qform_code == b->qform_code && a->sform_code == b->sform_code &&
         memcmp(&a->quatern_b, &b->quatern_b, 6 * sizeof(float)) == 0 &&
         memcmp(a->srow_x, b->srow_x, 4 * sizeof(float)) == 0 && memcmp(a->srow_y, b->srow_y, 4 * sizeof(float)) == 0 &&
         memcmp(a->srow_z, b->srow_z, 4 * sizeof(float)) == 0 && memcmp(a->pixdim, b->pixdim, 4 * sizeof(float)) == 0 &&
         a->xyzt_units == b->xyzt_units;
}

/* ---------------------------------------------------------------- tests: reading and writing */

static void roundtrip(const char *src_name, const char *out_name, int gz) {
  nifti_image *nim = make_nim(12, 10, 7, 1, DT_INT16);
  float *expected = malloc(sizeof(float) * (size_t)nim->nvox);
  fill_pattern(nim, expected);
  nim_write(nim, P(src_name), NIFTI_FTYPE_NIFTI1_1);
  nifti_image_free(nim);

  vx_volume *v = read_ok(P(src_name));
  if (!v) { free(expected); return; }
  int dims[4];
  float sp[3];
  vx_volume_dims(v, dims);
  vx_volume_spacing(v, sp);
  CHECK(dims[0] == 12 && dims[1] == 10 && dims[2] == 7 && dims[3] == 1);
  CHECK(sp[0] == 0.8f && sp[1] == 0.9f && sp[2] == 2.5f);
  CHECK(vx_volume_datatype(v) == DT_INT16);
  CHECK(floats_equal(vx_volume_data(v), expected, 12 * 10 * 7));

  /* write float data (with fractions) and read it back */
  size_t n = 12 * 10 * 7;
  float *data = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) data[i] = (float)i * 0.37f - 11.0f;
  char err[1024] = "";
  vx_status st = vx_volume_write_like(P(out_name), v, data, 0, err, sizeof err);
  CHECKF(st == VX_OK, "%s", err);
  vx_volume *w = read_ok(P(out_name));
  if (w) {
    int d2[4];
    float sp2[3];
    double a[16], b[16];
    vx_volume_dims(w, d2);
    vx_volume_spacing(w, sp2);
    vx_volume_affine(v, a);
    vx_volume_affine(w, b);
    CHECK(memcmp(dims, d2, sizeof dims) == 0);
    CHECK(memcmp(sp, sp2, sizeof sp) == 0);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(vx_volume_datatype(w) == DT_FLOAT32);
    CHECK(floats_equal(vx_volume_data(w), data, n));
    vx_volume_destroy(w);
  }
  nifti_1_header hs = read_n1(P(src_name)), ho = read_n1(P(out_name));
  CHECK(same_geometry_n1(&hs, &ho));
  CHECK(ho.datatype == DT_FLOAT32 && ho.scl_slope == 0 && ho.dim[0] == 3);
  size_t fn;
  unsigned char *raw = slurp(P(out_name), &fn);
  CHECK(raw && fn > 2 && ((raw[0] == 0x1f && raw[1] == 0x8b) == (gz != 0)));
  free(raw);
  CHECK(count_files_containing(".voxcl-tmp") == 0);
  free(data);
  free(expected);
  vx_volume_destroy(v);
}

static void test_roundtrip_nii(void) { roundtrip("rt_src.nii", "rt_out.nii", 0); }
static void test_roundtrip_niigz(void) { roundtrip("rt_src.nii.gz", "rt_out.nii.gz", 1); }

static void test_each_datatype(void) {
  const int types[] = {DT_UINT8, DT_INT8, DT_INT16, DT_UINT16, DT_INT32, DT_UINT32, DT_INT64, DT_UINT64, DT_FLOAT32,
                       DT_FLOAT64};
  for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
    for (int gz = 0; gz < 2; gz++) {
      nifti_image *nim = make_nim(9, 7, 5, 1, types[t]);
      float *expected = malloc(sizeof(float) * (size_t)nim->nvox);
      fill_pattern(nim, expected);
      char name[64];
      snprintf(name, sizeof name, "dt_%d.nii%s", types[t], gz ? ".gz" : "");
      nim_write(nim, P(name), NIFTI_FTYPE_NIFTI1_1);
      vx_volume *v = read_ok(P(name));
      if (v) {
        CHECKF(vx_volume_datatype(v) == types[t], "type %d", types[t]);
        CHECKF(floats_equal(vx_volume_data(v), expected, (size_t)nim->nvox), "type %d (%s)", types[t],
               nifti_datatype_to_string(types[t]));
        vx_volume_destroy(v);
      }
      nifti_image_free(nim);
      free(expected);
    }
  }
}

/* The same image stored big-endian (header and data swapped) must read the same. */
static void test_big_endian(void) {
  const int types[] = {DT_INT16, DT_FLOAT32, DT_FLOAT64, DT_UINT64};
  for (size_t t = 0; t < 4; t++) {
    nifti_image *nim = make_nim(6, 5, 4, 2, types[t]);
    nim->scl_slope = 0.5;
    nim->scl_inter = 3;
    float *expected = malloc(sizeof(float) * (size_t)nim->nvox);
    fill_pattern(nim, expected);
    nim_write(nim, P("le.nii"), NIFTI_FTYPE_NIFTI1_1);
    size_t n;
    unsigned char *b = slurp(P("le.nii"), &n);
    nifti_1_header h;
    memcpy(&h, b, sizeof h);
    int vox = (int)h.vox_offset;
    nifti_swap_as_nifti1(&h);
    memcpy(b, &h, sizeof h);
    nifti_swap_Nbytes(nim->nvox, nim->nbyper, b + vox);
    CHECK(b[0] == 0 && b[3] == 0x5c); /* 348 big-endian */
    spit_gz(P("be.nii.gz"), b, n);
    free(b);
    vx_volume *v = read_ok(P("be.nii.gz"));
    vx_volume *le = read_ok(P("le.nii"));
    if (v && le) {
      double a[16], c[16];
      vx_volume_affine(v, a);
      vx_volume_affine(le, c);
      CHECK(memcmp(a, c, sizeof a) == 0);
      CHECK(vx_volume_datatype(v) == types[t]);
      for (int64_t i = 0; i < nim->nvox; i++) expected[i] = (float)((double)expected[i] * 0.5 + 3);
      CHECKF(floats_equal(vx_volume_data(v), expected, (size_t)nim->nvox), "type %d", types[t]);
      CHECK(floats_equal(vx_volume_data(v), vx_volume_data(le), (size_t)nim->nvox));
    }
    vx_volume_destroy(v);
    vx_volume_destroy(le);
    nifti_image_free(nim);
    free(expected);
  }
}

static void test_scaling(void) {
  /* slope 2.5, intercept -10: applied; slope 0 or NaN: not applied */
  const double slopes[3] = {2.5, 0, NAN};
  for (int k = 0; k < 3; k++) {
    nifti_image *nim = make_nim(5, 4, 3, 1, DT_INT16);
    float *raw = malloc(sizeof(float) * (size_t)nim->nvox);
    fill_pattern(nim, raw);
    nim->scl_slope = slopes[k];
    nim->scl_inter = -10;
    nim_write(nim, P("scl.nii"), NIFTI_FTYPE_NIFTI1_1);
    vx_volume *v = read_ok(P("scl.nii"));
    if (v) {
      const float *d = vx_volume_data(v);
      int ok = 1;
      for (int64_t i = 0; i < nim->nvox; i++) {
        float want = k == 0 ? (float)((double)raw[i] * 2.5 - 10) : raw[i];
        if (d[i] != want) ok = 0;
      }
      CHECKF(ok, "slope %g", slopes[k]);
      vx_volume_destroy(v);
    }
    nifti_image_free(nim);
    free(raw);
  }
}

static void test_channels_4d(void) {
  nifti_image *nim = make_nim(4, 3, 2, 3, DT_FLOAT32);
  float *expected = malloc(sizeof(float) * (size_t)nim->nvox);
  fill_pattern(nim, expected);
  nim_write(nim, P("ch4.nii.gz"), NIFTI_FTYPE_NIFTI1_1);
  vx_volume *v = read_ok(P("ch4.nii.gz"));
  if (v) {
    int dims[4];
    vx_volume_dims(v, dims);
    CHECK(dims[0] == 4 && dims[1] == 3 && dims[2] == 2 && dims[3] == 3);
    CHECK(floats_equal(vx_volume_data(v), expected, 72)); /* [C, Z, Y, X], x fastest */
    CHECK(vx_volume_channel(v, 0) == vx_volume_data(v));
    CHECK(vx_volume_channel(v, 2) == vx_volume_data(v) + 48);
    CHECK(vx_volume_channel(v, 2)[1 + 4 * (2 + 3 * 1)] == expected[48 + 1 + 4 * (2 + 3 * 1)]);
    CHECK(vx_volume_channel(v, 3) == NULL && vx_volume_channel(v, -1) == NULL);
    /* a 3-D label write from a 4-D 'like' is 3-D */
    float lab[24] = {0};
    lab[5] = 2;
    char err[512];
    CHECKF(vx_volume_write_like(P("ch4_lab.nii.gz"), v, lab, 1, err, sizeof err) == VX_OK, "%s", err);
    nifti_1_header h = read_n1(P("ch4_lab.nii.gz"));
    CHECK(h.dim[0] == 3 && h.dim[3] == 2 && h.datatype == DT_UINT8);
    vx_volume_destroy(v);
  }
  /* 5-D (dim[5] = 2): dims 4..7 all become channels */
  int64_t dims5[8] = {5, 3, 2, 2, 1, 2, 1, 1};
  nifti_image *n5 = nifti_make_new_nim(dims5, DT_UINT8, 1);
  nim_write(n5, P("d5.nii"), NIFTI_FTYPE_NIFTI1_1);
  vx_volume *v5 = read_ok(P("d5.nii"));
  if (v5) {
    int d[4];
    vx_volume_dims(v5, d);
    CHECK(d[0] == 3 && d[1] == 2 && d[2] == 2 && d[3] == 2);
    vx_volume_destroy(v5);
  }
  nifti_image_free(n5);
  nifti_image_free(nim);
  free(expected);
}

static void test_sform_vs_qform(void) {
  for (int k = 0; k < 3; k++) {
    nifti_image *nim = make_nim(4, 4, 4, 1, DT_UINT8);
    if (k >= 1) nim->sform_code = 0;
    if (k >= 2) nim->qform_code = 0;
    nim_write(nim, P("xf.nii"), NIFTI_FTYPE_NIFTI1_1);
    /* what the file holds, as nifticlib computes it */
    nifti_image *ref = nifti_image_read(P("xf.nii"), 0);
    vx_volume *v = read_ok(P("xf.nii"));
    if (v && ref) {
      double m[16], want[16] = {0};
      vx_volume_affine(v, m);
      for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
          want[r * 4 + c] = k == 0 ? ref->sto_xyz.m[r][c] : ref->qto_xyz.m[r][c];
      if (k == 2) {
        memset(want, 0, sizeof want);
        want[0] = 0.8f, want[5] = 0.9f, want[10] = 2.5f, want[15] = 1;
      }
      CHECKF(memcmp(m, want, sizeof m) == 0, "case %d: m[0] %.9g want %.9g, m[3] %.9g want %.9g", k, m[0], want[0],
             m[3], want[3]);
      if (k == 0) CHECK(m[3] == (double)91.3f && m[0] == (double)-0.79f);
      if (k == 1) CHECK(m[3] == (double)-90.5f && m[7] == (double)120.25f && m[11] == (double)-60.125f);
    }
    vx_volume_destroy(v);
    if (ref) nifti_image_free(ref);
    nifti_image_free(nim);
  }
}

static void test_hdr_img_pair(void) {
  for (int gz = 0; gz < 2; gz++) {
    nifti_image *nim = make_nim(7, 6, 5, 1, DT_INT16);
    float *expected = malloc(sizeof(float) * (size_t)nim->nvox);
    fill_pattern(nim, expected);
    const char *hdr = gz ? "pair.hdr.gz" : "pair.hdr";
    nim_write(nim, P(hdr), NIFTI_FTYPE_NIFTI1_2);
    CHECK(file_exists(P(gz ? "pair.img.gz" : "pair.img")));
    vx_volume *a = read_ok(P(hdr));
    vx_volume *b = read_ok(P(gz ? "pair.img.gz" : "pair.img"));
    if (a && b) {
      CHECK(floats_equal(vx_volume_data(a), expected, (size_t)nim->nvox));
      CHECK(floats_equal(vx_volume_data(b), expected, (size_t)nim->nvox));
      double m[16], want[16];
      vx_volume_affine(a, m);
      for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) want[r * 4 + c] = nim->sto_xyz.m[r][c];
      for (int i = 0; i < 16; i++) want[i] = (double)(float)want[i];
      CHECK(memcmp(m, want, sizeof m) == 0);
      /* written back as a single .nii.gz with the same geometry */
      char err[512];
      CHECKF(vx_volume_write_like(P("pair_out.nii.gz"), a, vx_volume_data(a), 0, err, sizeof err) == VX_OK, "%s", err);
      nifti_1_header hs = read_n1(P(hdr)), ho = read_n1(P("pair_out.nii.gz"));
      CHECK(same_geometry_n1(&hs, &ho));
      CHECK(memcmp(ho.magic, "n+1", 4) == 0);
    }
    vx_volume_destroy(a);
    vx_volume_destroy(b);
    nifti_image_free(nim);
    free(expected);
  }
}

static void test_nifti2(void) {
  nifti_image *nim = make_nim(8, 6, 4, 1, DT_FLOAT64);
  float *expected = malloc(sizeof(float) * (size_t)nim->nvox);
  fill_pattern(nim, expected);
  nim->sto_xyz.m[0][3] = 0.1; /* a double that no float holds */
  nim->sto_xyz.m[1][1] = 1.0 / 3.0;
  n2_write(nim, P("n2.nii.gz"));
  nifti_2_header h = read_n2(P("n2.nii.gz"));
  CHECK(h.sizeof_hdr == 540 && memcmp(h.magic, "n+2", 4) == 0);
  CHECK(memcmp(h.magic + 4, "\0\0\0\0", 4) == 0); /* nifticlib 3.0.1 leaves the tail 0: accepted */
  vx_volume *v = read_ok(P("n2.nii.gz"));
  if (v) {
    double m[16];
    vx_volume_affine(v, m);
    CHECK(m[3] == 0.1 && m[5] == 1.0 / 3.0);
    CHECK(floats_equal(vx_volume_data(v), expected, (size_t)nim->nvox));
    /* like is NIfTI-2: the output is NIfTI-2 and keeps the double transforms exactly */
    char err[512];
    float *lab = calloc((size_t)nim->nvox, sizeof(float));
    lab[3] = 1;
    CHECKF(vx_volume_write_like(P("n2_out.nii.gz"), v, lab, 1, err, sizeof err) == VX_OK, "%s", err);
    nifti_2_header o = read_n2(P("n2_out.nii.gz"));
    CHECK(o.sizeof_hdr == 540 && o.datatype == DT_UINT8 && o.vox_offset == 544);
    CHECK(memcmp(o.magic, "n+2\0\r\n\032\n", 8) == 0);
    CHECK(memcmp(o.srow_x, h.srow_x, sizeof o.srow_x) == 0 && memcmp(o.srow_y, h.srow_y, sizeof o.srow_y) == 0 &&
          memcmp(o.srow_z, h.srow_z, sizeof o.srow_z) == 0);
    CHECK(memcmp(&o.quatern_b, &h.quatern_b, 6 * sizeof(double)) == 0 && o.pixdim[0] == h.pixdim[0]);
    CHECK(o.qform_code == h.qform_code && o.sform_code == h.sform_code && o.xyzt_units == h.xyzt_units);
    vx_volume *w = read_ok(P("n2_out.nii.gz"));
    if (w) {
      double m2[16];
      vx_volume_affine(w, m2);
      CHECK(memcmp(m, m2, sizeof m) == 0);
      CHECK(floats_equal(vx_volume_data(w), lab, (size_t)nim->nvox));
      vx_volume_destroy(w);
    }
    free(lab);
    vx_volume_destroy(v);
  }
  nifti_image_free(nim);
  free(expected);
}

static void test_label_types(void) {
  vx_volume *like = read_ok(good_nii("lab_like.nii"));
  if (!like) return;
  size_t n = 10 * 8 * 6;
  float *lab = calloc(n, sizeof(float));
  const float maxima[4] = {255, 256, 65535, 70000};
  const int want[4] = {DT_UINT8, DT_UINT16, DT_UINT16, DT_UINT32};
  char err[512];
  for (int k = 0; k < 4; k++) {
    for (size_t i = 0; i < n; i++) lab[i] = (float)(i % 5);
    lab[17] = maxima[k];
    lab[18] = 2.0000001f; /* rounds to 2 */
    CHECKF(vx_volume_write_like(P("lab.nii.gz"), like, lab, 1, err, sizeof err) == VX_OK, "%s", err);
    nifti_1_header h = read_n1(P("lab.nii.gz"));
    CHECKF(h.datatype == want[k], "max %g: datatype %d, expected %d", maxima[k], h.datatype, want[k]);
    CHECK(h.scl_slope == 0 && h.intent_code == NIFTI_INTENT_LABEL && h.bitpix == 8 * (want[k] == DT_UINT8 ? 1 : want[k] == DT_UINT16 ? 2 : 4));
    vx_volume *v = read_ok(P("lab.nii.gz"));
    if (v) {
      lab[18] = 2;
      CHECK(floats_equal(vx_volume_data(v), lab, n));
      vx_volume_destroy(v);
    }
  }
  /* not labels: negative, NaN, 2^32 -> invalid argument, nothing written */
  const float bad[3] = {-1, NAN, 4294967296.0f};
  for (int k = 0; k < 3; k++) {
    lab[9] = bad[k];
    vx_status st = vx_volume_write_like(P("lab_bad.nii.gz"), like, lab, 1, err, sizeof err);
    CHECKF(st == VX_ERR_INVALID_ARGUMENT, "%g: %s", bad[k], vx_status_string(st));
    CHECK(strstr(err, "lab_bad.nii.gz") && strstr(err, "labels"));
    CHECK(!file_exists(P("lab_bad.nii.gz")));
  }
  CHECK(count_files_containing(".voxcl-tmp") == 0);
  free(lab);
  vx_volume_destroy(like);
}

static void test_write_float_channels(void) {
  vx_volume *like = read_ok(good_nii("prob_like.nii"));
  if (!like) return;
  size_t n = 10 * 8 * 6;
  float *p = malloc(3 * n * sizeof(float));
  for (size_t i = 0; i < 3 * n; i++) p[i] = (float)(i % 97) / 97.0f;
  char err[512];
  CHECKF(vx_volume_write_float(P("prob.nii.gz"), like, p, 3, err, sizeof err) == VX_OK, "%s", err);
  nifti_1_header h = read_n1(P("prob.nii.gz")), hl = read_n1(P("prob_like.nii"));
  CHECK(h.dim[0] == 4 && h.dim[4] == 3 && h.datatype == DT_FLOAT32);
  CHECK(same_geometry_n1(&h, &hl));
  vx_volume *v = read_ok(P("prob.nii.gz"));
  if (v) {
    int d[4];
    vx_volume_dims(v, d);
    CHECK(d[3] == 3);
    CHECK(floats_equal(vx_volume_data(v), p, 3 * n));
    vx_volume_destroy(v);
  }
  /* argument errors */
  CHECK(vx_volume_write_float(P("prob.nii.gz"), like, p, 0, err, sizeof err) == VX_ERR_INVALID_ARGUMENT);
  CHECK(vx_volume_write_float(P("prob.mha"), like, p, 1, err, sizeof err) == VX_ERR_INVALID_ARGUMENT);
  CHECK(strstr(err, "prob.mha") && strstr(err, ".nii"));
  CHECK(vx_volume_write_like(P("prob.nii.gz"), like, NULL, 0, err, sizeof err) == VX_ERR_INVALID_ARGUMENT);
  free(p);
  vx_volume_destroy(like);
}

static void test_create_and_write(void) {
  vx_volume *v = NULL;
  const float sp[3] = {1.5f, 0.75f, 3};
  CHECK(vx_volume_create(5, 4, 3, 2, NULL, &v) == VX_OK && v); /* NULL spacing: 1 mm */
  float s1[3];
  vx_volume_spacing(v, s1);
  CHECK(s1[0] == 1 && s1[1] == 1 && s1[2] == 1);
  vx_volume_destroy(v);
  CHECK(vx_volume_create(0, 4, 3, 1, sp, &v) == VX_ERR_INVALID_ARGUMENT && v == NULL);
  const float bad_sp[3] = {1, 0, 1};
  CHECK(vx_volume_create(5, 4, 3, 1, bad_sp, &v) == VX_ERR_INVALID_ARGUMENT);
  CHECK(vx_volume_create(5, 4, 3, 2, sp, &v) == VX_OK && v);
  if (!v) return;
  int d[4];
  float s[3];
  double m[16];
  vx_volume_dims(v, d);
  vx_volume_spacing(v, s);
  vx_volume_affine(v, m);
  CHECK(d[0] == 5 && d[1] == 4 && d[2] == 3 && d[3] == 2);
  CHECK(s[0] == 1.5f && s[1] == 0.75f && s[2] == 3);
  const double want[16] = {1.5, 0, 0, 0, 0, 0.75, 0, 0, 0, 0, 3, 0, 0, 0, 0, 1};
  CHECK(memcmp(m, want, sizeof m) == 0);
  CHECK(vx_volume_data(v)[0] == 0 && vx_volume_data(v)[119] == 0);
  for (int i = 0; i < 60; i++) vx_volume_data(v)[i] = (float)(i % 3);
  char err[512];
  CHECKF(vx_volume_write_like(P("created.nii"), v, vx_volume_data(v), 1, err, sizeof err) == VX_OK, "%s", err);
  vx_volume *r = read_ok(P("created.nii"));
  if (r) {
    double m2[16];
    vx_volume_affine(r, m2);
    CHECK(memcmp(m, m2, sizeof m) == 0);
    CHECK(floats_equal(vx_volume_data(r), vx_volume_data(v), 60));
    CHECK(vx_volume_datatype(r) == DT_UINT8);
    vx_volume_destroy(r);
  }
  vx_volume_destroy(v);
  vx_volume_destroy(NULL);
}

/* A failed write (file size limit hit mid-write, target a directory) leaves the old file as it was. */
static void test_failed_write_keeps_file(void) {
  vx_volume *like = NULL;
  const float sp[3] = {1, 1, 1};
  if (vx_volume_create(64, 64, 32, 1, sp, &like) != VX_OK) { CHECK(0); return; }
  float *data = vx_volume_data(like);
  uint64_t rng = 88172645463325252ull; /* xorshift: data that does not compress */
  for (size_t i = 0; i < 64 * 64 * 32; i++) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    data[i] = (float)(rng >> 40) / 7.0f;
  }
  char err[1024];
  for (int gz = 0; gz < 2; gz++) {
    const char *name = gz ? "keep.nii.gz" : "keep.nii";
    float small[64 * 64 * 32];
    memset(small, 0, sizeof small);
    small[0] = 1;
    CHECKF(vx_volume_write_like(P(name), like, small, 1, err, sizeof err) == VX_OK, "%s", err);
    size_t n0, n1;
    unsigned char *before = slurp(P(name), &n0);
    /* the size limit makes writes past 20000 bytes fail (EFBIG) */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 20000;
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    stderr_capture_begin();
    vx_status st = vx_volume_write_like(P(name), like, data, 0, err, sizeof err);
    char *printed = stderr_capture_end();
    setrlimit(RLIMIT_FSIZE, &old);
    CHECKF(st == VX_ERR_IO, "%s: %s", vx_status_string(st), err);
    CHECKF(strstr(err, name) != NULL, "%s", err);
    CHECKF(printed && printed[0] == 0, "stderr got: %s", printed ? printed : "(null)");
    free(printed);
    if (getenv("VOXCL_TEST_VERBOSE")) printf("    %s\n", err);
    unsigned char *after = slurp(P(name), &n1);
    CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
    free(before);
    free(after);
    CHECK(count_files_containing(".voxcl-tmp") == 0);
  }
  /* a directory under the target name */
  mkdir(P("adir.nii.gz"), 0755);
  CHECK(vx_volume_write_like(P("adir.nii.gz"), like, data, 0, err, sizeof err) == VX_ERR_IO);
  CHECK(strstr(err, "adir.nii.gz") && strstr(err, "directory"));
  /* a missing folder */
  CHECK(vx_volume_write_like(P("no_such_dir/x.nii.gz"), like, data, 0, err, sizeof err) == VX_ERR_IO);
  CHECK(strstr(err, "x.nii.gz") != NULL);
  CHECK(count_files_containing(".voxcl-tmp") == 0);
  vx_volume_destroy(like);
}

/* ---------------------------------------------------------------- tests: broken input */

static void test_truncated_nii(void) {
  const char *p = good_nii("trunc.nii");
  truncate(p, 352 + 1000);
  expect_read_error(p, VX_ERR_FORMAT, "trunc.nii", "data truncated", "needs 1920 bytes", "vox_offset 352",
                    "holds 1000", "float32", "10x8x6", NULL);
  /* the header itself cut */
  truncate(p, 200);
  expect_read_error(p, VX_ERR_FORMAT, "trunc.nii", "header truncated", "348", "200", NULL);
  /* a pair whose .img is short, and one without .img */
  nifti_image *nim = make_nim(7, 6, 5, 1, DT_INT16);
  nim_write(nim, P("tpair.hdr"), NIFTI_FTYPE_NIFTI1_2);
  truncate(P("tpair.img"), 100);
  expect_read_error(P("tpair.hdr"), VX_ERR_FORMAT, "tpair.img", "data truncated", "needs 420 bytes", "holds 100", NULL);
  unlink(P("tpair.img"));
  expect_read_error(P("tpair.hdr"), VX_ERR_IO, "tpair.img", "cannot open image file", "tpair.hdr", NULL);
  nifti_image_free(nim);
}

static void test_truncated_niigz(void) {
  /* a large enough image that the compressed stream spans many blocks */
  nifti_image *nim = make_nim(64, 64, 40, 1, DT_INT16);
  float *e = malloc(sizeof(float) * (size_t)nim->nvox);
  fill_pattern(nim, e);
  nim_write(nim, P("tgz.nii.gz"), NIFTI_FTYPE_NIFTI1_1);
  size_t n;
  unsigned char *b = slurp(P("tgz.nii.gz"), &n);
  spit(P("tgz_half.nii.gz"), b, n / 2);
  expect_read_error(P("tgz_half.nii.gz"), VX_ERR_FORMAT, "tgz_half.nii.gz", "data truncated", "gzip",
                    "needs 327680 bytes", "64x64x40", "int16", NULL);
  /* only the 8-byte trailer (CRC, length) missing: the data is all there, the stream is still broken */
  spit(P("tgz_trailer.nii.gz"), b, n - 8);
  expect_read_error(P("tgz_trailer.nii.gz"), VX_ERR_FORMAT, "tgz_trailer.nii.gz", "gzip", NULL);
  /* cut inside the header */
  spit(P("tgz_hdr.nii.gz"), b, 30);
  expect_read_error(P("tgz_hdr.nii.gz"), VX_ERR_FORMAT, "tgz_hdr.nii.gz", "header", NULL);
  /* a corrupted byte in the middle of the compressed data */
  b[n / 2] ^= 0x55;
  b[n / 2 + 1] ^= 0xaa;
  spit(P("tgz_bad.nii.gz"), b, n);
  expect_read_error(P("tgz_bad.nii.gz"), VX_ERR_FORMAT, "tgz_bad.nii.gz", "gzip", NULL);
  /* a complete stream holding too few bytes */
  size_t un;
  unsigned char *u = slurp_gz(P("tgz.nii.gz"), &un);
  spit_gz(P("tgz_short.nii.gz"), u, un - 5000);
  expect_read_error(P("tgz_short.nii.gz"), VX_ERR_FORMAT, "tgz_short.nii.gz", "data truncated", "needs 327680 bytes",
                    "decompressed stream holds 322680", NULL);
  free(u);
  free(b);
  free(e);
  nifti_image_free(nim);
}

static void test_vox_offset(void) {
  const char *p = good_nii("voff.nii");
  float off = 1e6f;
  patch(p, 108, &off, 4);
  expect_read_error(p, VX_ERR_FORMAT, "voff.nii", "vox_offset", "1000000", "past the end", NULL);
  /* the same in a .nii.gz */
  size_t n;
  unsigned char *b = slurp(p, &n);
  spit_gz(P("voff.nii.gz"), b, n);
  expect_read_error(P("voff.nii.gz"), VX_ERR_FORMAT, "voff.nii.gz", "vox_offset", "1000000", NULL);
  free(b);
  /* inside the header, negative, fractional */
  const float bad[3] = {100, -352, 352.5f};
  for (int k = 0; k < 3; k++) {
    p = good_nii("voff2.nii");
    patch(p, 108, &bad[k], 4);
    expect_read_error(p, VX_ERR_FORMAT, "voff2.nii", "vox_offset", ">= 348", NULL);
  }
}

static void test_bad_dims(void) {
  const int16_t bad[3] = {-5, 0, -32768};
  const int at[3] = {3, 1, 2};
  for (int k = 0; k < 3; k++) {
    const char *p = good_nii("dims.nii");
    patch_i16(p, 40 + 2 * (size_t)at[k], bad[k]);
    char field[16], found[32];
    snprintf(field, sizeof field, "dim[%d]", at[k]);
    snprintf(found, sizeof found, "found %d", bad[k]);
    expect_read_error(p, VX_ERR_FORMAT, "dims.nii", field, ">= 1", found, NULL);
  }
  /* a NIfTI-2 dimension beyond what a volume can hold */
  nifti_image *nim = make_nim(4, 4, 4, 1, DT_UINT8);
  n2_write(nim, P("dims2.nii"));
  int64_t huge = (int64_t)1 << 40;
  patch(P("dims2.nii"), 16 + 8 * 3, &huge, 8);
  expect_read_error(P("dims2.nii"), VX_ERR_FORMAT, "dims2.nii", "dim[3]", NULL);
  huge = (int64_t)1 << 30;
  patch(P("dims2.nii"), 16 + 8 * 3, &huge, 8); /* valid but the file holds 64 bytes */
  expect_read_error(P("dims2.nii"), VX_ERR_FORMAT, "dims2.nii", "data truncated", NULL);
  nifti_image_free(nim);
}

static void test_bad_dim0(void) {
  const int16_t bad[3] = {0, 8, -1};
  for (int k = 0; k < 3; k++) {
    const char *p = good_nii("dim0.nii");
    patch_i16(p, 40, bad[k]);
    char found[32];
    snprintf(found, sizeof found, "found %d", bad[k]);
    expect_read_error(p, VX_ERR_FORMAT, "dim0.nii", "dim[0]", "1..7", found, NULL);
  }
}

static void test_unsupported_datatype(void) {
  const int16_t bad[5] = {DT_COMPLEX64, DT_RGB24, DT_FLOAT128, 0, 3};
  const char *names[5] = {"complex64", "rgb24", "float128", "unknown", "not a NIfTI type"};
  for (int k = 0; k < 5; k++) {
    const char *p = good_nii("dtype.nii.gz");
    size_t n;
    unsigned char *b = slurp_gz(p, &n);
    memcpy(b + 70, &bad[k], 2);
    spit_gz(p, b, n);
    free(b);
    expect_read_error(p, VX_ERR_FORMAT, "dtype.nii.gz", "datatype", names[k], "float32", NULL);
  }
}

static void test_wrong_magic(void) {
  const char *p = good_nii("magic.nii");
  patch(p, 344, "xyz", 4);
  expect_read_error(p, VX_ERR_FORMAT, "magic.nii", "magic", "n+1", "xyz", NULL);
  patch(p, 344, "\0\0\0", 4); /* Analyze 7.5 */
  expect_read_error(p, VX_ERR_FORMAT, "magic.nii", "magic", "Analyze", NULL);
  patch(p, 344, "ni1", 4); /* pair magic in a single file */
  expect_read_error(p, VX_ERR_FORMAT, "magic.nii", "magic", ".hdr/.img", NULL);
  /* NIfTI-2 with a broken magic tail */
  nifti_image *nim = make_nim(4, 4, 4, 1, DT_UINT8);
  n2_write(nim, P("magic2.nii"));
  patch(P("magic2.nii"), 8, "\n\r", 2);
  expect_read_error(P("magic2.nii"), VX_ERR_FORMAT, "magic2.nii", "magic", "n+2", NULL);
  nifti_image_free(nim);
}

static void test_wrong_header_size(void) {
  const char *p = good_nii("hsize.nii");
  int32_t bad = 350;
  patch(p, 0, &bad, 4);
  expect_read_error(p, VX_ERR_FORMAT, "hsize.nii", "sizeof_hdr", "348", "540", "found 350", NULL);
  /* not a NIfTI file at all */
  spit(P("text.nii"), "hello, this is not an image\n", 28);
  expect_read_error(P("text.nii"), VX_ERR_FORMAT, "text.nii", "sizeof_hdr", NULL);
}

static void test_missing_empty_directory(void) {
  expect_read_error(P("missing.nii.gz"), VX_ERR_IO, "missing.nii.gz", "cannot open", "No such file", NULL);
  expect_read_error(P("missing.hdr"), VX_ERR_IO, "missing.hdr", "cannot open", NULL);
  spit(P("empty.nii"), "", 0);
  expect_read_error(P("empty.nii"), VX_ERR_FORMAT, "empty.nii", "empty", NULL);
  spit(P("empty.nii.gz"), "", 0);
  expect_read_error(P("empty.nii.gz"), VX_ERR_FORMAT, "empty.nii.gz", "empty", NULL);
  mkdir(P("folder.nii"), 0755);
  expect_read_error(P("folder.nii"), VX_ERR_IO, "folder.nii", "directory", NULL);
  expect_read_error(P("volume.mha"), VX_ERR_INVALID_ARGUMENT, "volume.mha", "extension", NULL);
  char err[256];
  vx_volume *v = (vx_volume *)1;
  CHECK(vx_volume_read(NULL, &v, err, sizeof err) == VX_ERR_INVALID_ARGUMENT && v == NULL);
  CHECK(vx_volume_read(P("missing.nii"), NULL, NULL, 0) == VX_ERR_INVALID_ARGUMENT);
  CHECK(vx_volume_read(P("missing.nii"), &v, NULL, 0) == VX_ERR_IO); /* no errbuf: fine */
}

static void test_compression_mismatch(void) {
  /* gzip content under a .nii name: nifticlib would read it as garbage */
  const char *p = good_nii("mism_src.nii");
  size_t n;
  unsigned char *b = slurp(p, &n);
  spit_gz(P("mism.nii"), b, n);
  expect_read_error(P("mism.nii"), VX_ERR_FORMAT, "mism.nii", "gzip", ".gz", NULL);
  /* plain content under a .nii.gz name reads fine (zlib reads it as it is) */
  spit(P("plain.nii.gz"), b, n);
  vx_volume *v = read_ok(P("plain.nii.gz"));
  vx_volume *w = read_ok(p);
  if (v && w) CHECK(floats_equal(vx_volume_data(v), vx_volume_data(w), 480));
  vx_volume_destroy(v);
  vx_volume_destroy(w);
  free(b);
}

/* ---------------------------------------------------------------- nibabel fixture */

static int write_for_nibabel(const char *dir) {
  snprintf(g_dir, sizeof g_dir, "%s", dir);
  nifti_image *nim = make_nim(11, 9, 7, 1, DT_INT16);
  float *e = malloc(sizeof(float) * (size_t)nim->nvox);
  fill_pattern(nim, e);
  nim_write(nim, P("nib_src.nii.gz"), NIFTI_FTYPE_NIFTI1_1);
  char err[1024];
  vx_volume *v = NULL;
  if (vx_volume_read(P("nib_src.nii.gz"), &v, err, sizeof err) != VX_OK) { fprintf(stderr, "%s\n", err); return 1; }
  size_t n = 11 * 9 * 7;
  float *lab = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) lab[i] = (float)(i % 4);
  lab[5] = 300; /* uint16 */
  if (vx_volume_write_like(P("voxcl_labels.nii.gz"), v, lab, 1, err, sizeof err) != VX_OK ||
      vx_volume_write_like(P("voxcl_float.nii.gz"), v, e, 0, err, sizeof err) != VX_OK) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  FILE *f = fopen(P("expected.txt"), "w");
  double m[16];
  vx_volume_affine(v, m);
  fprintf(f, "dims 11 9 7\naffine");
  for (int i = 0; i < 16; i++) fprintf(f, " %.17g", m[i]);
  fprintf(f, "\nlabels");
  for (size_t i = 0; i < n; i++) fprintf(f, " %.9g", lab[i]);
  fprintf(f, "\nfloats");
  for (size_t i = 0; i < n; i++) fprintf(f, " %.9g", e[i]);
  fprintf(f, "\n");
  fclose(f);
  free(lab);
  free(e);
  vx_volume_destroy(v);
  nifti_image_free(nim);
  return 0;
}

/* Writes what voxcl reads from 'path' as text: dims, datatype, spacing, affine, data. */
static int dump(const char *path, const char *out) {
  char err[1024];
  vx_volume *v = NULL;
  if (vx_volume_read(path, &v, err, sizeof err) != VX_OK) { fprintf(stderr, "%s\n", err); return 1; }
  int d[4];
  float sp[3];
  double m[16];
  vx_volume_dims(v, d);
  vx_volume_spacing(v, sp);
  vx_volume_affine(v, m);
  FILE *f = fopen(out, "w");
  if (!f) { perror(out); return 1; }
  fprintf(f, "dims %d %d %d %d\ndatatype %d\nspacing %.9g %.9g %.9g\naffine", d[0], d[1], d[2], d[3],
          vx_volume_datatype(v), sp[0], sp[1], sp[2]);
  for (int i = 0; i < 16; i++) fprintf(f, " %.17g", m[i]);
  fprintf(f, "\ndata");
  size_t n = (size_t)d[0] * d[1] * d[2] * d[3];
  for (size_t i = 0; i < n; i++) fprintf(f, " %.9g", vx_volume_data(v)[i]);
  fprintf(f, "\n");
  fclose(f);
  vx_volume_destroy(v);
  return 0;
}

/* ---------------------------------------------------------------- driver */

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

int main(int argc, char **argv) {
  nifti_set_debug_level(0); /* the tests' own nifticlib writes */
  if (argc == 3 && !strcmp(argv[1], "--write-for-nibabel")) return write_for_nibabel(argv[2]);
  if (argc == 4 && !strcmp(argv[1], "--dump")) return dump(argv[2], argv[3]);
  int keep = argc > 1 && !strcmp(argv[1], "--keep");
  const char *tmp = getenv("TMPDIR");
  snprintf(g_dir, sizeof g_dir, "%s/voxcl-nifti-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 2; }

  static const struct { const char *name; void (*fn)(void); } tests[] = {
      {"roundtrip_nii", test_roundtrip_nii},
      {"roundtrip_niigz", test_roundtrip_niigz},
      {"each_datatype", test_each_datatype},
      {"big_endian", test_big_endian},
      {"scaling", test_scaling},
      {"channels_4d", test_channels_4d},
      {"sform_vs_qform", test_sform_vs_qform},
      {"hdr_img_pair", test_hdr_img_pair},
      {"nifti2", test_nifti2},
      {"label_types", test_label_types},
      {"write_float_channels", test_write_float_channels},
      {"create_and_write", test_create_and_write},
      {"failed_write_keeps_file", test_failed_write_keeps_file},
      {"truncated_nii", test_truncated_nii},
      {"truncated_niigz", test_truncated_niigz},
      {"vox_offset", test_vox_offset},
      {"bad_dims", test_bad_dims},
      {"bad_dim0", test_bad_dim0},
      {"unsupported_datatype", test_unsupported_datatype},
      {"wrong_magic", test_wrong_magic},
      {"wrong_header_size", test_wrong_header_size},
      {"missing_empty_directory", test_missing_empty_directory},
      {"compression_mismatch", test_compression_mismatch},
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
