/* NIfTI volumes out: the geometry of a reference volume copied into a nifti_image, header bytes
 * from nifticlib, header and voxels written through zlib into a temporary file beside the
 * target and renamed over it only when complete and flushed (see nifti.c for the reader). */
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


/* ---------------------------------------------------------------- writing */

/* Creates a fresh, empty temporary file beside 'path' whose name ends like path's. */
static char *make_temp_name(const char *path, char *errbuf, size_t errlen, vx_status *st) {
  static atomic_uint counter;
  const char *slash = strrchr(path, '/');
  size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
  const char *base = path + dirlen;
  size_t len = dirlen + strlen(base) + 64;
  char *tmp = malloc(len);
  if (!tmp) {
    *st = vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    return NULL;
  }
  for (int attempt = 0; attempt < 100; attempt++) {
    unsigned k = atomic_fetch_add(&counter, 1u);
    snprintf(tmp, len, "%.*s.voxcl-tmp-%ld-%u-%s", (int)dirlen, path, (long)getpid(), k, base);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd >= 0) {
      close(fd);
      return tmp;
    }
    if (errno != EEXIST) {
      *st = vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: cannot create a temporary file %s: %s", path, tmp, strerror(errno));
      free(tmp);
      return NULL;
    }
  }
  *st = vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: cannot find a free temporary file name", path);
  free(tmp);
  return NULL;
}

/* Writes header, extender and voxels through zlib ("T": uncompressed), checking every call:
 * nifti_image_write returns nothing and prints its errors, so nifticlib only makes the header. */
static vx_status write_file(const char *final_path, const char *tmp, int compress, nifti_image *nim,
                            const void *bytes, char *errbuf, size_t errlen) {
  int v2 = nim->nifti_type == NIFTI_FTYPE_NIFTI2_1;
  union {
    nifti_1_header h1;
    nifti_2_header h2;
  } hdr;
  size_t hsize = v2 ? sizeof hdr.h2 : sizeof hdr.h1;
  nim->iname_offset = (int64_t)hsize + 4; /* 352 or 544: header, then an empty extender */
  int rc = v2 ? nifti_convert_nim2n2hdr(nim, &hdr.h2) : nifti_convert_nim2n1hdr(nim, &hdr.h1);
  if (rc != 0) return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "%s: nifticlib cannot make the header", final_path);
  if (v2) memcpy(hdr.h2.magic, "n+2\0\r\n\032\n", 8); /* nifticlib 3.0.1 leaves the tail 0 */
  gzFile gz = gzopen(tmp, compress ? "wb6" : "wbT");
  if (!gz)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: cannot open %s for writing: %s", final_path, tmp,
                errno ? strerror(errno) : "out of memory");
  gzbuffer(gz, 1u << 17);
  static const unsigned char extender[4] = {0, 0, 0, 0};
  int ok = gzwrite(gz, &hdr, (unsigned)hsize) == (int)hsize && gzwrite(gz, extender, 4) == 4;
  size_t nbytes = (size_t)nim->nvox * (size_t)nim->nbyper, at = 0;
  while (ok && at < nbytes) {
    size_t chunk = nbytes - at < ((size_t)1 << 30) ? nbytes - at : (size_t)1 << 30;
    ok = gzwrite(gz, (const unsigned char *)bytes + at, (unsigned)chunk) == (int)chunk;
    at += chunk;
  }
  char msg[160] = "";
  if (!ok) {
    int err = Z_OK;
    const char *m = gzerror(gz, &err);
    snprintf(msg, sizeof msg, "%s", err == Z_ERRNO ? strerror(errno) : (m && *m ? m : "zlib error"));
  }
  int closed = gzclose(gz); /* flushes: the last bytes may fail only here */
  if (ok && closed != Z_OK) {
    ok = 0;
    snprintf(msg, sizeof msg, "%s", closed == Z_ERRNO ? strerror(errno) : "zlib error on close");
  }
  if (!ok) return vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: writing %s failed: %s", final_path, tmp, msg);
  return VX_OK;
}

static vx_status flush_to_disk(const char *final_path, const char *tmp, char *errbuf, size_t errlen) {
  int fd = open(tmp, O_RDONLY);
  if (fd < 0 || fsync(fd) != 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: cannot flush %s to disk: %s", final_path, tmp, strerror(e));
  }
  close(fd);
  return VX_OK;
}

/* data: [channels, nz, ny, nx]; as_labels: the smallest unsigned type, else float32. */
static vx_status write_volume(const char *path, const vx_volume *like, const float *data, int channels,
                              int as_labels, char *errbuf, size_t errlen) {
  if (errbuf && errlen) errbuf[0] = 0;
  if (!path || !like || !data || channels < 1)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "%s: write: path, like or data is NULL or channels < 1",
                path ? path : "(null)");
  if (!vx_nifti_ends_with(path, ".nii") && !vx_nifti_ends_with(path, ".nii.gz"))
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "%s: file name: expected an extension .nii or .nii.gz", path);
  struct stat sb;
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: cannot write: it is a directory", path);
  int64_t nx = like->dims[0], ny = like->dims[1], nz = like->dims[2];
  if (nx < 1 || ny < 1 || nz < 1 || (uint64_t)(nx * ny * nz) > SIZE_MAX / 8 / (uint64_t)channels)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "%s: write: %lldx%lldx%lld voxels x %d channels is too large",
                path, (long long)nx, (long long)ny, (long long)nz, channels);
  int64_t nvox = nx * ny * nz * channels;

  int dt = DT_FLOAT32;
  const void *bytes = data;
  void *label_buf = NULL;
  if (as_labels) {
    double maxv = 0;
    for (int64_t i = 0; i < nvox; i++) {
      double x = data[i];
      if (!(x > -0.5) || !(x < 4294967295.5)) /* also NaN */
        return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT,
                    "%s: labels: value %g at voxel %lld is not an integer in 0..4294967295", path, x, (long long)i);
      if (x > maxv) maxv = x;
    }
    uint64_t top = (uint64_t)floor(maxv + 0.5);
    dt = top < 256 ? DT_UINT8 : top < 65536 ? DT_UINT16 : DT_UINT32;
    size_t label_bytes = (size_t)nvox * (dt == DT_UINT8 ? 1u : dt == DT_UINT16 ? 2u : 4u);
    label_buf = malloc(label_bytes);
    if (!label_buf) return vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "%s: cannot allocate the label buffer", path);
    for (int64_t i = 0; i < nvox; i++) {
      uint32_t u = (uint32_t)floor((double)data[i] + 0.5);
      if (dt == DT_UINT8) ((uint8_t *)label_buf)[i] = (uint8_t)u;
      else if (dt == DT_UINT16) ((uint16_t *)label_buf)[i] = (uint16_t)u;
      else ((uint32_t *)label_buf)[i] = u;
    }
    bytes = label_buf;
  }

  vx_status st = VX_OK;
  char *tmp = NULL;
  nifti_image *nim = nifti_copy_nim_info(like->hdr);
  if (!nim) {
    st = vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "%s: cannot copy the header", path);
    goto done;
  }
  nifti_free_extensions(nim);
  /* geometry (pixdim, qform, sform, units) stays exactly as in 'like'; the rest describes 'data' */
  nim->ndim = nim->dim[0] = channels > 1 ? 4 : 3;
  nim->nx = nim->dim[1] = nx;
  nim->ny = nim->dim[2] = ny;
  nim->nz = nim->dim[3] = nz;
  nim->nt = nim->dim[4] = channels;
  nim->nu = nim->dim[5] = nim->nv = nim->dim[6] = nim->nw = nim->dim[7] = 1;
  if (channels > 1 && !(nim->pixdim[4] > 0)) nim->dt = nim->pixdim[4] = 1;
  nim->nvox = nvox;
  nim->datatype = dt;
  nifti_datatype_sizes(dt, &nim->nbyper, &nim->swapsize);
  nim->scl_slope = 0;
  nim->scl_inter = 0;
  nim->cal_min = nim->cal_max = 0;
  nim->intent_code = as_labels ? NIFTI_INTENT_LABEL : NIFTI_INTENT_NONE;
  nim->intent_p1 = nim->intent_p2 = nim->intent_p3 = 0;
  memset(nim->intent_name, 0, sizeof nim->intent_name);
  memset(nim->descrip, 0, sizeof nim->descrip);
  snprintf(nim->descrip, sizeof nim->descrip, "voxcl %s", as_labels ? "labels" : "float32");
  int like_v2 = like->version == 2;
  int needs_v2 = nx > 32767 || ny > 32767 || nz > 32767 || channels > 32767;
  nim->nifti_type = like_v2 || needs_v2 ? NIFTI_FTYPE_NIFTI2_1 : NIFTI_FTYPE_NIFTI1_1;

  tmp = make_temp_name(path, errbuf, errlen, &st);
  if (!tmp) goto done;
  st = write_file(path, tmp, vx_nifti_ends_with(path, ".gz"), nim, bytes, errbuf, errlen);
  if (st == VX_OK) st = flush_to_disk(path, tmp, errbuf, errlen);
  if (st == VX_OK && rename(tmp, path) != 0)
    st = vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: cannot rename %s to it: %s", path, tmp, strerror(errno));
  if (st == VX_OK) {
    /* make the rename itself durable; a failure here leaves a complete file either way */
    char *dir = strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (dir) {
      if (slash) slash[slash == dir ? 1 : 0] = 0;
      int fd = open(slash ? dir : ".", O_RDONLY);
      if (fd >= 0) {
        fsync(fd);
        close(fd);
      }
      free(dir);
    }
  }
done:
  if (tmp && st != VX_OK) unlink(tmp);
  free(tmp);
  if (nim) nifti_image_free(nim);
  free(label_buf);
  return st;
}

vx_status vx_volume_write_like(const char *path, const vx_volume *like, const float *data, int as_labels,
                               char *errbuf, size_t errlen) {
  return write_volume(path, like, data, 1, as_labels, errbuf, errlen);
}

vx_status vx_volume_write_float(const char *path, const vx_volume *like, const float *data, int channels,
                                char *errbuf, size_t errlen) {
  return write_volume(path, like, data, channels, 0, errbuf, errlen);
}
