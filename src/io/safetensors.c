/* safetensors reading and writing (F32 only), with the header parsed by jansson. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/safetensors.h"

struct vx_st_file {
  unsigned char *buf;  /* the whole file */
  unsigned char *data; /* the data section, copied to malloc's alignment (the header length may be any) */
  size_t size, data_start;
  json_t *header;
};

static void put_u64le(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

vx_status vx_safetensors_write(const char *path, const vx_st_tensor *t, int n, const char *const *metadata,
                               char *errbuf, size_t errlen) {
  json_t *h = json_object();
  size_t off = 0;
  for (int i = 0; i < n; i++) {
    json_t *e = json_object(), *shape = json_array();
    for (int d = 0; d < t[i].ndim; d++) json_array_append_new(shape, json_integer(t[i].shape[d]));
    json_object_set_new(e, "dtype", json_string("F32"));
    json_object_set_new(e, "shape", shape);
    json_t *offs = json_array();
    json_array_append_new(offs, json_integer((json_int_t)off));
    off += t[i].numel * 4;
    json_array_append_new(offs, json_integer((json_int_t)off));
    json_object_set_new(e, "data_offsets", offs);
    json_object_set_new(h, t[i].name, e);
  }
  if (metadata) {
    json_t *m = json_object();
    for (int i = 0; metadata[i] && metadata[i + 1]; i += 2) json_object_set_new(m, metadata[i], json_string(metadata[i + 1]));
    json_object_set_new(h, "__metadata__", m);
  }
  char *text = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(h);
  if (!text) { snprintf(errbuf, errlen, "%s: cannot format the safetensors header", path); return VX_ERR_OUT_OF_MEMORY; }
  size_t hl = strlen(text), padded = (hl + 7) & ~(size_t)7; /* 8-byte aligned data, as the format recommends */
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    snprintf(errbuf, errlen, "%s: cannot create: %s", tmp, strerror(errno));
    free(text);
    return VX_ERR_IO;
  }
  unsigned char len8[8];
  put_u64le(len8, padded);
  int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(text, 1, hl, f) == hl;
  for (size_t i = hl; i < padded && ok; i++) ok = fputc(' ', f) != EOF;
  free(text);
  /* float32 on every platform voxcl targets is little-endian IEEE, as safetensors wants */
  for (int i = 0; i < n && ok; i++) ok = fwrite(t[i].data, 4, t[i].numel, f) == t[i].numel;
  ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    snprintf(errbuf, errlen, "%s: write failed: %s (the previous file, if any, is untouched)", path, strerror(errno));
    unlink(tmp);
    return VX_ERR_IO;
  }
  return VX_OK;
}

void vx_safetensors_close(vx_st_file *f) {
  if (!f) return;
  json_decref(f->header);
  free(f->data);
  free(f->buf);
  free(f);
}

vx_status vx_safetensors_open(const char *path, vx_st_file **out, char *errbuf, size_t errlen) {
  *out = NULL;
  FILE *fp = fopen(path, "rb");
  if (!fp) { snprintf(errbuf, errlen, "%s: cannot open: %s", path, strerror(errno)); return VX_ERR_IO; }
  vx_st_file *f = calloc(1, sizeof *f);
  if (!f) { fclose(fp); return VX_ERR_OUT_OF_MEMORY; }
  fseek(fp, 0, SEEK_END);
  long sz = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  vx_status st = VX_ERR_FORMAT;
  if (sz < 8) { snprintf(errbuf, errlen, "%s: %ld bytes, too short for a safetensors file", path, sz); goto fail; }
  f->size = (size_t)sz;
  f->buf = malloc(f->size + 1);
  if (!f->buf) { st = VX_ERR_OUT_OF_MEMORY; goto fail; }
  if (fread(f->buf, 1, f->size, fp) != f->size) { snprintf(errbuf, errlen, "%s: read failed", path); st = VX_ERR_IO; goto fail; }
  uint64_t hl = 0;
  for (int i = 0; i < 8; i++) hl |= (uint64_t)f->buf[i] << (8 * i);
  if (hl > f->size - 8) {
    snprintf(errbuf, errlen, "%s: header length %llu exceeds the file (%zu bytes): truncated or not safetensors", path,
             (unsigned long long)hl, f->size);
    goto fail;
  }
  json_error_t je;
  f->header = json_loadb((const char *)f->buf + 8, (size_t)hl, 0, &je);
  if (!f->header || !json_is_object(f->header)) {
    snprintf(errbuf, errlen, "%s: header is not a JSON object (%s)", path, je.text);
    goto fail;
  }
  f->data_start = 8 + (size_t)hl;
  size_t data_size = f->size - f->data_start;
  const char *key;
  json_t *v;
  json_object_foreach(f->header, key, v) {
    if (!strcmp(key, "__metadata__")) continue;
    json_t *dt = json_object_get(v, "dtype"), *offs = json_object_get(v, "data_offsets"), *shape = json_object_get(v, "shape");
    if (!json_is_string(dt) || strcmp(json_string_value(dt), "F32")) {
      snprintf(errbuf, errlen, "%s: tensor '%s' has dtype %s, voxcl reads F32 only", path, key,
               json_is_string(dt) ? json_string_value(dt) : "(missing)");
      goto fail;
    }
    if (!json_is_array(offs) || json_array_size(offs) != 2 || !json_is_array(shape) || json_array_size(shape) > 8) {
      snprintf(errbuf, errlen, "%s: tensor '%s' lacks a valid shape or data_offsets", path, key);
      goto fail;
    }
    json_int_t b = json_integer_value(json_array_get(offs, 0)), e = json_integer_value(json_array_get(offs, 1));
    json_int_t numel = 1;
    for (size_t d = 0; d < json_array_size(shape); d++) {
      json_int_t s = json_integer_value(json_array_get(shape, d));
      if (s < 0) numel = -1;
      else numel *= s;
    }
    if (b < 0 || e < b || (size_t)e > data_size || numel < 0 || (e - b) != numel * 4 || b % 4) {
      snprintf(errbuf, errlen, "%s: tensor '%s' has data_offsets [%lld, %lld] that do not fit its shape or the %zu data bytes",
               path, key, (long long)b, (long long)e, data_size);
      goto fail;
    }
  }
  f->data = malloc(data_size ? data_size : 1);
  if (!f->data) { st = VX_ERR_OUT_OF_MEMORY; goto fail; }
  memcpy(f->data, f->buf + f->data_start, data_size);
  fclose(fp);
  *out = f;
  return VX_OK;
fail:
  fclose(fp);
  vx_safetensors_close(f);
  return st;
}

const float *vx_safetensors_find(const vx_st_file *f, const char *name, int *ndim, int64_t shape[8]) {
  json_t *v = json_object_get(f->header, name);
  if (!v || !strcmp(name, "__metadata__")) return NULL;
  json_t *s = json_object_get(v, "shape");
  *ndim = (int)json_array_size(s);
  for (int d = 0; d < *ndim; d++) shape[d] = json_integer_value(json_array_get(s, (size_t)d));
  json_int_t b = json_integer_value(json_array_get(json_object_get(v, "data_offsets"), 0));
  return (const float *)(void *)(f->data + (size_t)b); /* b % 4 == 0, checked at open */
}

const char *vx_safetensors_meta(const vx_st_file *f, const char *key) {
  json_t *m = json_object_get(f->header, "__metadata__");
  json_t *v = m ? json_object_get(m, key) : NULL;
  return json_is_string(v) ? json_string_value(v) : NULL;
}

int vx_safetensors_count(const vx_st_file *f) {
  int n = (int)json_object_size(f->header);
  return json_object_get(f->header, "__metadata__") ? n - 1 : n;
}

char *vx_safetensors_meta_json(const vx_st_file *f) {
  json_t *m = json_object_get(f->header, "__metadata__");
  return m ? json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS) : strdup("{}");
}
