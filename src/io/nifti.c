/* NIfTI volumes in (the writer is nifti_write.c): .nii, .nii.gz and .hdr/.img pairs, NIfTI-1 and NIfTI-2.
 *
 * nifticlib is lenient: it zero-fills data that a truncated file or a broken gzip stream does
 * not hold, "fixes" impossible dimensions and accepts a wrong magic string. So the reader
 * parses and checks the header bytes itself first, then lets nifticlib build the nifti_image
 * (transforms, quaternions, names) and checks that it agrees, then reads the voxel bytes
 * itself through zlib, failing on any short or broken stream. The writer copies the geometry
 * of the reference volume into a nifti_image, lets nifticlib turn it into header bytes, and
 * writes header and voxels through zlib itself (nifti_image_write reports no errors and prints
 * to stderr) into a temporary file beside the target, renamed over the target only when
 * complete and flushed: a failure never leaves a half-written file under the final name. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nifti2_io.h>
#include <zlib.h>

#include "io/nifti_internal.h"
#include "util.h"

_Static_assert(sizeof(nifti_1_header) == 348, "nifti_1_header must be 348 bytes");
_Static_assert(sizeof(nifti_2_header) == 540, "nifti_2_header must be 540 bytes");

/* ---------------------------------------------------------------- helpers */

int vx_nifti_ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  if (m > n) return 0;
  for (size_t i = 0; i < m; i++) {
    char a = s[n - m + i], b = suffix[i];
    if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
    if (a != b) return 0;
  }
  return 1;
}

static char *dup_string(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/* The voxel types voxcl reads: every real-valued NIfTI type but float128. */
static int datatype_size(int dt) {
  switch (dt) {
  case DT_UINT8: case DT_INT8: return 1;
  case DT_INT16: case DT_UINT16: return 2;
  case DT_INT32: case DT_UINT32: case DT_FLOAT32: return 4;
  case DT_INT64: case DT_UINT64: case DT_FLOAT64: return 8;
  default: return 0;
  }
}

static const char *datatype_name(int dt) {
  switch (dt) {
  case DT_UINT8: return "uint8";
  case DT_INT8: return "int8";
  case DT_INT16: return "int16";
  case DT_UINT16: return "uint16";
  case DT_INT32: return "int32";
  case DT_UINT32: return "uint32";
  case DT_INT64: return "int64";
  case DT_UINT64: return "uint64";
  case DT_FLOAT32: return "float32";
  case DT_FLOAT64: return "float64";
  case DT_BINARY: return "binary (1 bit)";
  case DT_COMPLEX64: return "complex64";
  case DT_COMPLEX128: return "complex128";
  case DT_COMPLEX256: return "complex256";
  case DT_RGB24: return "rgb24";
  case DT_RGBA32: return "rgba32";
  case DT_FLOAT128: return "float128";
  case DT_UNKNOWN: return "unknown (0)";
  default: return "not a NIfTI type";
  }
}

/* "64x64x40" or "64x64x40x2" */
static const char *dims_string(const int64_t dim[8], char *buf, size_t len) {
  size_t at = 0;
  buf[0] = 0;
  for (int i = 1; i <= dim[0] && i <= 7 && at < len; i++)
    at += (size_t)snprintf(buf + at, len - at, "%s%lld", i > 1 ? "x" : "", (long long)dim[i]);
  return buf;
}

/* ---------------------------------------------------------------- file names */

typedef struct {
  char *hdr;   /* file holding the header */
  char *img;   /* file holding the voxels (== hdr for .nii) */
  int onefile; /* .nii: header and voxels in one file */
} nifti_names;

static void names_free(nifti_names *n) {
  if (n->img != n->hdr) free(n->img);
  free(n->hdr);
  n->hdr = n->img = NULL;
}

static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && !S_ISDIR(st.st_mode);
}

/* The other file of a .hdr/.img pair: swap the stem's extension, keep or drop ".gz" as found. */
static char *pair_partner(const char *path, const char *want_ext) {
  size_t n = strlen(path);
  int gz = vx_nifti_ends_with(path, ".gz");
  size_t stem = n - 4 - (gz ? 3 : 0);
  char *cand = malloc(stem + 8);
  if (!cand) return NULL;
  int upper = path[stem + 1] >= 'A' && path[stem + 1] <= 'Z';
  for (int attempt = 0; attempt < 2; attempt++) {
    int with_gz = attempt == 0 ? gz : !gz;
    memcpy(cand, path, stem);
    snprintf(cand + stem, 8, "%s%s", want_ext, with_gz ? ".gz" : "");
    if (upper)
      for (char *c = cand + stem; *c; c++)
        if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 'a' + 'A');
    if (is_file(cand)) return cand;
  }
  /* neither exists: name the one with the same compression in the error */
  memcpy(cand, path, stem);
  snprintf(cand + stem, 8, "%s%s", want_ext, gz ? ".gz" : "");
  return cand;
}

static vx_status resolve_names(const char *path, nifti_names *n, char *errbuf, size_t errlen) {
  memset(n, 0, sizeof *n);
  if (vx_nifti_ends_with(path, ".nii") || vx_nifti_ends_with(path, ".nii.gz")) {
    n->hdr = dup_string(path);
    n->img = n->hdr;
    n->onefile = 1;
  } else if (vx_nifti_ends_with(path, ".hdr") || vx_nifti_ends_with(path, ".hdr.gz")) {
    n->hdr = dup_string(path);
    n->img = n->hdr ? pair_partner(path, ".img") : NULL;
  } else if (vx_nifti_ends_with(path, ".img") || vx_nifti_ends_with(path, ".img.gz")) {
    n->img = dup_string(path);
    n->hdr = n->img ? pair_partner(path, ".hdr") : NULL;
  } else {
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT,
                "%s: file name: expected an extension .nii, .nii.gz, .hdr, .hdr.gz, .img or .img.gz", path);
  }
  if (!n->hdr || !n->img) {
    names_free(n);
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  }
  return VX_OK;
}

/* A zlib read stream that remembers the first error. zlib reads ahead, so the error of a
 * stream that breaks off shows before the bytes decoded up to the break have been handed out:
 * reads go on while bytes come, and the caller judges by the count and the flag. */
typedef struct {
  gzFile gz;
  const char *path;
  int compressed; /* starts with the gzip magic bytes (zlib reads other files as they are) */
  int broken;   /* 1: the stream ends early (Z_BUF_ERROR); 2: it is corrupt or unreadable */
  char msg[160]; /* zlib's message, copied: gzerror's string dies with the gzFile */
} zstream;

static void zs_check(zstream *z) {
  int err = Z_OK;
  const char *m = gzerror(z->gz, &err);
  if (err == Z_OK || z->broken) return;
  z->broken = err == Z_BUF_ERROR ? 1 : 2;
  if (err == Z_ERRNO) m = strerror(errno);
  else if (!m || !*m) m = "zlib error";
  else if (strncmp(m, z->path, strlen(z->path)) == 0 && strncmp(m + strlen(z->path), ": ", 2) == 0)
    m += strlen(z->path) + 2; /* zlib puts the path first: it is in our message already */
  snprintf(z->msg, sizeof z->msg, "%s", m);
}

/* Reads up to n bytes; returns the count (less than n at the end of the stream or a break). */
static size_t zs_read(zstream *z, void *dst, size_t n) {
  unsigned char *p = dst;
  size_t got = 0;
  while (got < n) {
    size_t want = n - got < ((size_t)1 << 30) ? n - got : (size_t)1 << 30;
    int r = gzread(z->gz, p + got, (unsigned)want);
    if (r <= 0) break;
    got += (size_t)r;
  }
  zs_check(z);
  return got;
}

/* Reads and discards up to n bytes; returns the count. */
static int64_t zs_skip(zstream *z, int64_t n) {
  unsigned char buf[65536];
  int64_t got = 0;
  while (got < n) {
    size_t want = n - got < (int64_t)sizeof buf ? (size_t)(n - got) : sizeof buf;
    size_t g = zs_read(z, buf, want);
    got += (int64_t)g;
    if (g < want) break;
  }
  return got;
}

/* Opens a file for reading with zlib (which reads uncompressed files as they are). */
static vx_status open_for_reading(const char *path, const char *what, zstream *z, int64_t *size,
                                  char *errbuf, size_t errlen) {
  memset(z, 0, sizeof *z);
  z->path = path;
  struct stat st;
  if (stat(path, &st) != 0)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: cannot open %s: %s", path, what, strerror(errno));
  if (S_ISDIR(st.st_mode))
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: cannot read %s: it is a directory", path, what);
  *size = (int64_t)st.st_size;
  FILE *f = fopen(path, "rb");
  unsigned char magic[2] = {0, 0};
  if (!f) return vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: cannot open %s: %s", path, what, strerror(errno));
  z->compressed = fread(magic, 1, 2, f) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  fclose(f);
  z->gz = gzopen(path, "rb");
  if (!z->gz)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: cannot open %s: %s", path, what,
                errno ? strerror(errno) : "out of memory");
  gzbuffer(z->gz, 1u << 17);
  return VX_OK;
}

/* ---------------------------------------------------------------- header validation */

typedef struct {
  int version;        /* 1 or 2 */
  int onefile;        /* magic n+1 / n+2 */
  int swapped;        /* stored in the other byte order */
  int64_t dim[8];
  int datatype, nbyper;
  int64_t vox_offset;
  int64_t nvox;       /* voxels, all dimensions */
  int64_t header_file_size; /* on disk (compressed size for .gz) */
} header_info;

static int32_t bswap32(int32_t v) {
  uint32_t u = (uint32_t)v;
  return (int32_t)((u >> 24) | ((u >> 8) & 0xff00u) | ((u << 8) & 0xff0000u) | (u << 24));
}

/* Reads the header file's first bytes and checks every field voxcl relies on. */
static vx_status parse_header(const char *path, int expect_onefile, header_info *h, nifti_1_header *h1,
                              nifti_2_header *h2, char *errbuf, size_t errlen) {
  memset(h, 0, sizeof *h);
  zstream z;
  vx_status st = open_for_reading(path, "header", &z, &h->header_file_size, errbuf, errlen);
  if (st != VX_OK) return st;
  unsigned char raw[540];
  size_t got = zs_read(&z, raw, sizeof raw);
  gzclose(z.gz);
  if (h->header_file_size == 0)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT, "%s: file is empty: a NIfTI header needs 348 bytes", path);
  /* a stream broken further on may show already (zlib reads ahead): here only a header that
   * is not all there counts; the voxel reader reports the rest */
  char cut[200];
  if (z.broken)
    snprintf(cut, sizeof cut, "header: gzip stream %s (zlib: %s)", z.broken == 1 ? "breaks off" : "is corrupt", z.msg);
  else snprintf(cut, sizeof cut, "header truncated");
  if (z.compressed && !vx_nifti_ends_with(path, ".gz"))
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT,
                "%s: file name: the content is gzip-compressed, expected a name ending in .gz", path);
  if (got < 4)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT, "%s: %s: a NIfTI header needs 348 bytes, the file holds %zu", path,
                cut, got);

  int32_t sizeof_hdr;
  memcpy(&sizeof_hdr, raw, 4);
  if (sizeof_hdr == 348 || bswap32(sizeof_hdr) == 348) h->version = 1;
  else if (sizeof_hdr == 540 || bswap32(sizeof_hdr) == 540) h->version = 2;
  else
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT,
                "%s: sizeof_hdr: expected 348 (NIfTI-1) or 540 (NIfTI-2) in either byte order, found %d", path,
                (int)sizeof_hdr);
  h->swapped = sizeof_hdr != 348 && sizeof_hdr != 540;
  size_t need = h->version == 1 ? 348 : 540;
  if (got < need)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT, "%s: %s: a NIfTI-%d header needs %zu bytes, the file holds %zu", path,
                cut, h->version, need, got);

  const char *magic;
  double vox_offset_raw;
  if (h->version == 1) {
    memcpy(h1, raw, 348);
    if (h->swapped) nifti_swap_as_nifti1(h1);
    magic = h1->magic;
    if (memcmp(magic, "n+1", 4) != 0 && memcmp(magic, "ni1", 4) != 0) {
      char shown[20];
      snprintf(shown, sizeof shown, "%.4s", magic);
      for (char *c = shown; *c; c++)
        if (*c < 32 || *c > 126) *c = '?';
      return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT,
                  "%s: magic: expected \"n+1\" (single file) or \"ni1\" (.hdr/.img) for NIfTI-1, found \"%s\"%s",
                  path, shown, shown[0] == 0 ? " (Analyze 7.5 is not supported)" : "");
    }
    for (int i = 0; i < 8; i++) h->dim[i] = h1->dim[i];
    h->datatype = h1->datatype;
    vox_offset_raw = h1->vox_offset;
  } else {
    memcpy(h2, raw, 540);
    if (h->swapped) nifti_swap_as_nifti2(h2);
    magic = h2->magic;
    /* the tail \r\n\032\n catches end-of-line conversion; nifticlib 3.0.1 writes zeros there */
    static const unsigned char tail[4] = {'\r', '\n', 032, '\n'}, zeros[4] = {0, 0, 0, 0};
    if ((memcmp(magic, "n+2", 4) != 0 && memcmp(magic, "ni2", 4) != 0) ||
        (memcmp(magic + 4, tail, 4) != 0 && memcmp(magic + 4, zeros, 4) != 0)) {
      char shown[20];
      snprintf(shown, sizeof shown, "%.3s", magic);
      for (char *c = shown; *c; c++)
        if (*c < 32 || *c > 126) *c = '?';
      return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT,
                  "%s: magic: expected \"n+2\\0\\r\\n\\032\\n\" or \"ni2\\0\\r\\n\\032\\n\" for NIfTI-2, found \"%s...\"",
                  path, shown);
    }
    for (int i = 0; i < 8; i++) h->dim[i] = h2->dim[i];
    h->datatype = h2->datatype;
    vox_offset_raw = (double)h2->vox_offset;
  }
  h->onefile = magic[1] == '+';
  if (h->onefile != expect_onefile)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT, "%s: magic: \"%.3s\" means %s, but the file name says %s", path, magic,
                h->onefile ? "a single .nii file" : "a .hdr/.img pair", expect_onefile ? ".nii" : ".hdr/.img");

  if (h->dim[0] < 1 || h->dim[0] > 7)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT, "%s: dim[0]: expected 1..7 (number of dimensions), found %lld", path,
                (long long)h->dim[0]);
  int64_t nvox = 1;
  for (int i = 1; i <= h->dim[0]; i++) {
    if (h->dim[i] < 1)
      return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT, "%s: dim[%d]: expected >= 1, found %lld (dim[0] = %lld)", path, i,
                  (long long)h->dim[i], (long long)h->dim[0]);
    if ((i <= 3 && h->dim[i] > INT_MAX) || nvox > INT64_MAX / 8 / h->dim[i])
      return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT, "%s: dim[%d]: %lld makes the volume impossibly large", path, i,
                  (long long)h->dim[i]);
    nvox *= h->dim[i];
  }
  int64_t channels = 1; /* dims 4..7 all become channels */
  for (int i = 4; i <= h->dim[0]; i++) channels *= h->dim[i];
  if (channels > INT_MAX || (uint64_t)nvox > SIZE_MAX / sizeof(float))
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT, "%s: dim: %lld voxels in all is more than voxcl can hold", path,
                (long long)nvox);
  for (int i = (int)h->dim[0] + 1; i < 8; i++) h->dim[i] = 1; /* unused: ignored, as the standard says */
  h->nvox = nvox;

  h->nbyper = datatype_size(h->datatype);
  if (h->nbyper == 0)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT,
                "%s: datatype: expected a real type (uint8, int8, int16, uint16, int32, uint32, int64, uint64, "
                "float32, float64), found %d (%s)",
                path, h->datatype, datatype_name(h->datatype));

  int64_t min_offset = h->onefile ? (int64_t)need : 0;
  if (!(vox_offset_raw >= (double)min_offset) || vox_offset_raw != floor(vox_offset_raw) || vox_offset_raw > 1e15)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT, "%s: vox_offset: expected a whole number >= %lld, found %.17g", path,
                (long long)min_offset, vox_offset_raw);
  h->vox_offset = (int64_t)vox_offset_raw;
  return VX_OK;
}

/* ---------------------------------------------------------------- voxel data */

/* Reads the voxel bytes (file byte order) of the image file into a malloc'ed buffer. */
static vx_status read_voxels(const char *path, const header_info *h, void **out, char *errbuf, size_t errlen) {
  *out = NULL;
  zstream z;
  int64_t file_size;
  vx_status st = open_for_reading(path, "image", &z, &file_size, errbuf, errlen);
  if (st != VX_OK) return st;
  int64_t nbytes = h->nvox * h->nbyper;
  char what[200], dims[96];
  dims_string(h->dim, dims, sizeof dims);
  snprintf(what, sizeof what, "header (dim %s, datatype %s) needs %lld bytes after vox_offset %lld", dims,
           datatype_name(h->datatype), (long long)nbytes, (long long)h->vox_offset);
  int compressed = z.compressed;
  if (compressed && !vx_nifti_ends_with(path, ".gz")) {
    gzclose(z.gz);
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT,
                "%s: file name: the content is gzip-compressed, expected a name ending in .gz", path);
  }
  if (!compressed && file_size - h->vox_offset < nbytes) { /* known before reading anything */
    gzclose(z.gz);
    if (file_size <= h->vox_offset)
      return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT, "%s: vox_offset: %lld is at or past the end of the file (%lld bytes); %s",
                  path, (long long)h->vox_offset, (long long)file_size, what);
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT, "%s: data truncated: %s, the file holds %lld (%lld bytes in all)", path,
                what, (long long)(file_size - h->vox_offset), (long long)file_size);
  }

  int64_t skipped = zs_skip(&z, h->vox_offset);
  /* A compressed stream's length is known only once read: the buffer grows as bytes arrive, so
   * a corrupt header cannot make us allocate far more than the file holds. */
  size_t cap = (size_t)nbytes, have = 0;
  if (compressed && cap > ((size_t)64 << 20)) cap = (size_t)64 << 20;
  unsigned char *buf = malloc(cap ? cap : 1);
  if (!buf) {
    gzclose(z.gz);
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes for the voxels", path, cap);
  }
  while (skipped == h->vox_offset) {
    size_t want = cap - have, g = zs_read(&z, buf + have, want);
    have += g;
    if (g < want || have == (size_t)nbytes) break;
    size_t ncap = cap * 2 < (size_t)nbytes ? cap * 2 : (size_t)nbytes;
    unsigned char *nb = realloc(buf, ncap);
    if (!nb) {
      free(buf);
      gzclose(z.gz);
      return vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes for the voxels", path, ncap);
    }
    buf = nb;
    cap = ncap;
  }
  /* read what follows the data too, so a damaged end of the stream (CRC, length) is noticed */
  int64_t trailing = compressed && have == (size_t)nbytes && !z.broken ? zs_skip(&z, INT64_MAX) : 0;
  gzclose(z.gz);
  int64_t total = skipped + (int64_t)have + trailing;
  if (skipped < h->vox_offset && !z.broken) {
    free(buf);
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT,
                "%s: vox_offset: %lld is at or past the end of the decompressed stream (%lld bytes); %s", path,
                (long long)h->vox_offset, (long long)skipped, what);
  }
  if (z.broken || have < (size_t)nbytes) {
    free(buf);
    if (z.broken)
      return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT, "%s: %sgzip stream %s (zlib: %s) after %lld decompressed bytes; %s", path,
                  have < (size_t)nbytes ? "data truncated: " : "", z.broken == 1 ? "breaks off" : "is corrupt", z.msg,
                  (long long)total, what);
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT, "%s: data truncated: %s, the %s holds %zu", path, what,
                compressed ? "decompressed stream" : "file", have);
  }
  *out = buf;
  return VX_OK;
}

/* Converts n voxels of type dt (native byte order) to float with the scaling applied; raw and dst
 * may be the same buffer when the type has 4 or more bytes (each value is read before any
 * write reaches it). */
#define CONVERT(T)                                                           \
  for (int64_t i = 0; i < n; i++) {                                          \
    T v;                                                                     \
    memcpy(&v, raw + (size_t)i * sizeof(T), sizeof(T));                     \
    double x = (double)v;                                                    \
    if (scale) x = x * slope + inter;                                        \
    float f = (float)x;                                                      \
    memcpy(dst + i, &f, sizeof f);                                           \
  }                                                                          \
  break;

static void convert_to_float(const unsigned char *raw, float *dst, int64_t n, int dt, int scale, double slope,
                             double inter) {
  switch (dt) {
  case DT_UINT8: CONVERT(uint8_t)
  case DT_INT8: CONVERT(int8_t)
  case DT_INT16: CONVERT(int16_t)
  case DT_UINT16: CONVERT(uint16_t)
  case DT_INT32: CONVERT(int32_t)
  case DT_UINT32: CONVERT(uint32_t)
  case DT_INT64: CONVERT(int64_t)
  case DT_UINT64: CONVERT(uint64_t)
  case DT_FLOAT64: CONVERT(double)
  case DT_FLOAT32:
    if (!scale) {
      if ((const void *)raw != (const void *)dst) memcpy(dst, raw, (size_t)n * sizeof(float));
      break;
    }
    CONVERT(float)
  default: break;
  }
}
#undef CONVERT

/* ---------------------------------------------------------------- geometry */

static void set_geometry(vx_volume *v) {
  const nifti_image *nim = v->hdr;
  double m[16] = {0};
  if (nim->sform_code > 0) {
    for (int r = 0; r < 4; r++)
      for (int c = 0; c < 4; c++) m[r * 4 + c] = nim->sto_xyz.m[r][c];
  } else if (nim->qform_code > 0) {
    for (int r = 0; r < 4; r++)
      for (int c = 0; c < 4; c++) m[r * 4 + c] = nim->qto_xyz.m[r][c];
  } else {
    /* "method 1" of the standard: scaling by pixdim only */
    m[0] = nim->pixdim[1];
    m[5] = nim->pixdim[2];
    m[10] = nim->pixdim[3];
    m[15] = 1;
  }
  memcpy(v->affine, m, sizeof m);
  for (int i = 0; i < 3; i++) {
    double s = fabs(nim->pixdim[i + 1]);
    if (!(s > 0) || !isfinite(s)) /* absent pixdim: the length of the affine's column */
      s = sqrt(m[i] * m[i] + m[4 + i] * m[4 + i] + m[8 + i] * m[8 + i]);
    if (!(s > 0) || !isfinite(s)) s = 1;
    v->spacing[i] = (float)s;
  }
}

/* ---------------------------------------------------------------- reading */

vx_status vx_volume_read(const char *path, vx_volume **out, char *errbuf, size_t errlen) {
  if (errbuf && errlen) errbuf[0] = 0;
  if (out) *out = NULL;
  if (!path || !out) return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "vx_volume_read: path or out is NULL");

  nifti_names names;
  vx_status st = resolve_names(path, &names, errbuf, errlen);
  if (st != VX_OK) return st;
  header_info h;
  nifti_1_header h1;
  nifti_2_header h2;
  st = parse_header(names.hdr, names.onefile, &h, &h1, &h2, errbuf, errlen);
  if (st != VX_OK) goto done;

  if (!names.onefile && !is_file(names.img)) {
    struct stat sb;
    int missing = stat(names.img, &sb) != 0;
    st = vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: cannot open image file (for header %s): %s", names.img, names.hdr,
              missing ? strerror(errno) : "it is a directory");
    goto done;
  }

  /* nifticlib builds the image description (transforms from quaternions, units, ...). */
  nifti_set_debug_level(0);
  nifti_image *nim = nifti_image_read(names.hdr, 0);
  if (!nim) {
    st = vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT, "%s: header: nifticlib cannot read it although its fields look valid",
              names.hdr);
    goto done;
  }
  /* (its nifti_type says NIfTI-1 for NIfTI-2 files in 3.0.1: the version is taken from the bytes) */
  int agree = nim->datatype == h.datatype && nim->dim[0] == h.dim[0];
  for (int i = 1; i <= h.dim[0] && agree; i++) agree = nim->dim[i] == h.dim[i];
  if (!agree) {
    char a[96], b[96];
    st = vx_errbuf_fail(errbuf, errlen, VX_ERR_FORMAT,
              "%s: header: nifticlib reads dim %s datatype %d, the header bytes say dim %s datatype %d", names.hdr,
              dims_string(nim->dim, a, sizeof a), nim->datatype, dims_string(h.dim, b, sizeof b), h.datatype);
    nifti_image_free(nim);
    goto done;
  }
  nifti_free_extensions(nim);
  nifti_image_unload(nim); /* holds no data (read_data = 0); to be sure */

  void *raw = NULL;
  st = read_voxels(names.img, &h, &raw, errbuf, errlen);
  if (st != VX_OK) {
    nifti_image_free(nim);
    goto done;
  }
  if (h.swapped && h.nbyper > 1) nifti_swap_Nbytes(h.nvox, h.nbyper, raw);

  double slope = nim->scl_slope, inter = nim->scl_inter;
  if (!isfinite(inter)) inter = 0;
  int scale = slope != 0 && isfinite(slope) && !(slope == 1 && inter == 0);
  float *data;
  if (h.nbyper >= 4) {
    data = raw; /* in place, then give back the extra half of 8-byte types */
    convert_to_float(raw, data, h.nvox, h.datatype, scale, slope, inter);
    if (h.nbyper == 8) {
      float *shrunk = realloc(data, (size_t)h.nvox * sizeof(float));
      if (shrunk) data = shrunk;
    }
  } else {
    data = malloc((size_t)h.nvox * sizeof(float));
    if (data) convert_to_float(raw, data, h.nvox, h.datatype, scale, slope, inter);
    free(raw);
  }
  vx_volume *v = calloc(1, sizeof *v);
  if (!data || !v) {
    free(data);
    free(v);
    nifti_image_free(nim);
    st = vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "%s: cannot allocate %lld floats", path, (long long)h.nvox);
    goto done;
  }
  v->dims[0] = (int)h.dim[1];
  v->dims[1] = (int)h.dim[2];
  v->dims[2] = (int)h.dim[3];
  v->dims[3] = (int)(h.nvox / ((int64_t)v->dims[0] * v->dims[1] * v->dims[2]));
  v->datatype = h.datatype;
  v->version = h.version;
  v->hdr = nim;
  v->data = data;
  set_geometry(v);
  *out = v;
  st = VX_OK;
done:
  names_free(&names);
  return st;
}

/* ---------------------------------------------------------------- creating and accessing */

vx_status vx_volume_create(int nx, int ny, int nz, int channels, const float spacing[3], vx_volume **out) {
  if (!out) return VX_ERR_INVALID_ARGUMENT;
  *out = NULL;
  if (nx < 1 || ny < 1 || nz < 1 || channels < 1) return VX_ERR_INVALID_ARGUMENT;
  double sp[3] = {1, 1, 1};
  for (int i = 0; i < 3 && spacing; i++) {
    if (!(spacing[i] > 0) || !isfinite(spacing[i])) return VX_ERR_INVALID_ARGUMENT;
    sp[i] = spacing[i];
  }
  int64_t nvox = (int64_t)nx * ny * nz;
  if (nvox > INT64_MAX / channels || (uint64_t)nvox * (uint64_t)channels > SIZE_MAX / sizeof(float))
    return VX_ERR_INVALID_ARGUMENT;
  nvox *= channels;
  int64_t dims[8] = {channels > 1 ? 4 : 3, nx, ny, nz, channels, 1, 1, 1};
  nifti_set_debug_level(0);
  vx_volume *v = calloc(1, sizeof *v);
  if (v) v->hdr = nifti_make_new_nim(dims, DT_FLOAT32, 0);
  if (v) v->data = calloc((size_t)nvox, sizeof(float));
  if (!v || !v->hdr || !v->data) {
    vx_volume_destroy(v);
    return VX_ERR_OUT_OF_MEMORY;
  }
  nifti_image *nim = v->hdr;
  nim->dx = nim->pixdim[1] = sp[0];
  nim->dy = nim->pixdim[2] = sp[1];
  nim->dz = nim->pixdim[3] = sp[2];
  if (channels > 1) nim->dt = nim->pixdim[4] = 1;
  nim->xyz_units = NIFTI_UNITS_MM;
  /* both transforms: the plain scaling, in scanner space */
  nim->qform_code = NIFTI_XFORM_SCANNER_ANAT;
  nim->quatern_b = nim->quatern_c = nim->quatern_d = 0;
  nim->qoffset_x = nim->qoffset_y = nim->qoffset_z = 0;
  nim->qfac = 1;
  nim->qto_xyz = nifti_quatern_to_dmat44(0, 0, 0, 0, 0, 0, sp[0], sp[1], sp[2], 1);
  nim->qto_ijk = nifti_dmat44_inverse(nim->qto_xyz);
  nim->sform_code = NIFTI_XFORM_SCANNER_ANAT;
  memset(&nim->sto_xyz, 0, sizeof nim->sto_xyz);
  for (int i = 0; i < 3; i++) nim->sto_xyz.m[i][i] = sp[i];
  nim->sto_xyz.m[3][3] = 1;
  nim->sto_ijk = nifti_dmat44_inverse(nim->sto_xyz);
  v->dims[0] = nx;
  v->dims[1] = ny;
  v->dims[2] = nz;
  v->dims[3] = channels;
  v->datatype = DT_FLOAT32;
  v->version = 1;
  set_geometry(v);
  *out = v;
  return VX_OK;
}

void vx_volume_destroy(vx_volume *v) {
  if (!v) return;
  if (v->hdr) nifti_image_free(v->hdr);
  free(v->data);
  free(v);
}

void vx_volume_dims(const vx_volume *v, int dims[4]) {
  if (!dims) return;
  for (int i = 0; i < 4; i++) dims[i] = v ? v->dims[i] : 0;
}

void vx_volume_spacing(const vx_volume *v, float spacing[3]) {
  if (!spacing) return;
  for (int i = 0; i < 3; i++) spacing[i] = v ? v->spacing[i] : 0;
}

float *vx_volume_data(vx_volume *v) { return v ? v->data : NULL; }

float *vx_volume_channel(vx_volume *v, int c) {
  if (!v || c < 0 || c >= v->dims[3]) return NULL;
  return v->data + (size_t)c * (size_t)v->dims[0] * (size_t)v->dims[1] * (size_t)v->dims[2];
}

void vx_volume_affine(const vx_volume *v, double m[16]) {
  if (!m) return;
  if (v) memcpy(m, v->affine, sizeof v->affine);
  else memset(m, 0, 16 * sizeof(double));
}

int vx_volume_datatype(const vx_volume *v) { return v ? v->datatype : 0; }

