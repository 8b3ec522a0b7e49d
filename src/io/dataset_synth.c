/* The demo's synthetic dataset written to disk in the nnU-Net layout, so that every tool that
 * reads real datasets (check-dataset, training, inference) can be tried without data.
 * dataset.json carries a "voxcl_synth" object: it marks a folder voxcl may rewrite. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/dataset.h"
#include "util.h"

void vx_synth_dataset_options_init(vx_synth_dataset_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->cases = 20;
  o->size[0] = o->size[1] = o->size[2] = 48;
  o->spacing[0] = o->spacing[1] = o->spacing[2] = 1.0f;
  o->seed = 1;
}


/* 1: no entries; 0: some; -1: cannot read (errno). */
static int dir_is_empty(const char *path) {
  DIR *d = opendir(path);
  if (!d) return -1;
  struct dirent *e;
  int empty = 1;
  while (empty && (e = readdir(d))) empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
  closedir(d);
  return empty;
}

static int is_synth_dataset(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/dataset.json", dir);
  json_t *root = json_load_file(path, 0, NULL);
  int yes = root && json_is_object(json_object_get(root, "voxcl_synth"));
  json_decref(root);
  return yes;
}

static vx_status write_json(const char *dir, const vx_synth_dataset_options *o, char *errbuf, size_t errlen) {
  json_t *root = json_object(), *ch = json_object(), *lab = json_object(), *mark = json_object();
  json_t *size = json_array(), *sp = json_array();
  int ok = root && ch && lab && mark && size && sp;
  if (ok) {
    json_object_set_new(root, "name", json_string("voxcl_synthetic"));
    json_object_set_new(root, "description",
                        json_string("voxcl's synthetic demo data: bright ellipsoids (1) and dark tubes (2) in noisy, "
                                    "bias-fielded volumes"));
    json_object_set_new(ch, "0", json_string("synthetic"));
    json_object_set_new(lab, "background", json_integer(0));
    json_object_set_new(lab, "ellipsoid", json_integer(1));
    json_object_set_new(lab, "tube", json_integer(2));
    for (int i = 0; i < 3; i++) {
      json_array_append_new(size, json_integer(o->size[i]));
      json_array_append_new(sp, json_real(o->spacing[i]));
    }
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    json_object_set_new(mark, "seed", json_string(seed)); /* a string: a uint64 may not fit JSON integers */
    json_object_set_new(mark, "case_seed", json_string("seed * 1000 + case index"));
    json_object_set(mark, "size_dhw", size);
    json_object_set(mark, "spacing_xyz", sp);
    json_object_set(root, "channel_names", ch);
    json_object_set(root, "labels", lab);
    json_object_set_new(root, "numTraining", json_integer(o->cases));
    json_object_set_new(root, "file_ending", json_string(".nii.gz"));
    json_object_set(root, "voxcl_synth", mark);
  }
  char path[4096], tmp[4200];
  snprintf(path, sizeof path, "%s/dataset.json", dir);
  snprintf(tmp, sizeof tmp, "%s/.voxcl-tmp-%ld-dataset.json", dir, (long)getpid());
  vx_status st = VX_OK;
  if (!ok) st = vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  else if (json_dump_file(root, tmp, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 || rename(tmp, path) != 0) {
    st = vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    unlink(tmp);
  }
  json_decref(root);
  json_decref(ch);
  json_decref(lab);
  json_decref(mark);
  json_decref(size);
  json_decref(sp);
  return st;
}

/* Removes synth_NNN files of cases >= ncases left by an earlier, larger dataset. */
static void remove_stale(const char *dir, const char *sub, int ncases) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, sub);
  DIR *d = opendir(path);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    int idx, used = 0;
    const char *n = e->d_name;
    if (strncmp(n, "synth_", 6) || sscanf(n + 6, "%d%n", &idx, &used) != 1 || idx < ncases) continue;
    const char *rest = n + 6 + used;
    if (strcmp(rest, ".nii.gz") && strcmp(rest, "_0000.nii.gz")) continue;
    char f[4400];
    snprintf(f, sizeof f, "%s/%s", path, n);
    unlink(f);
  }
  closedir(d);
}

vx_status vx_synth_dataset_write(const char *dir, const vx_synth_dataset_options *o, vx_progress_fn progress,
                                 void *user, char *errbuf, size_t errlen) {
  if (errbuf && errlen) errbuf[0] = 0;
  if (!dir || !*dir || !o) return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "vx_synth_dataset_write: dir or options NULL");
  if (strlen(dir) > 3000) return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "%.64s...: path too long", dir);
  if (o->cases < 1 || o->cases > 1000000)
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "synthetic dataset: %d cases (need 1..1000000)", o->cases);
  for (int i = 0; i < 3; i++) {
    if (o->size[i] < 8 || o->size[i] > 4096)
      return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "synthetic dataset: size %dx%dx%d (D, H, W): each needs 8..4096",
                  o->size[0], o->size[1], o->size[2]);
    if (!(o->spacing[i] > 0) || !isfinite(o->spacing[i]))
      return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT, "synthetic dataset: spacing %g,%g,%g: each must be > 0",
                  o->spacing[0], o->spacing[1], o->spacing[2]);
  }
  struct stat sb;
  int exists = stat(dir, &sb) == 0, was_synth = 0;
  if (exists && !S_ISDIR(sb.st_mode)) return vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: exists and is not a folder", dir);
  if (exists) {
    int empty = dir_is_empty(dir);
    if (empty < 0) return vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: cannot read: %s", dir, strerror(errno));
    was_synth = !empty && is_synth_dataset(dir);
    if (!empty && !was_synth && !o->force)
      return vx_errbuf_fail(errbuf, errlen, VX_ERR_INVALID_ARGUMENT,
                  "%s: not empty and not a voxcl synthetic dataset (no dataset.json with \"voxcl_synth\"); "
                  "refusing to write into it",
                  dir);
  }
  char path[4096], lpath[4096];
  snprintf(path, sizeof path, "%s/imagesTr", dir);
  snprintf(lpath, sizeof lpath, "%s/labelsTr", dir);
  if (vx_mkdir_p(dir) || vx_mkdir_p(path) || vx_mkdir_p(lpath))
    return vx_errbuf_fail(errbuf, errlen, VX_ERR_IO, "%s: cannot create the folders: %s", dir, strerror(errno));
  /* dataset.json first: an interrupted run leaves a folder that a rerun recognises */
  vx_status st = write_json(dir, o, errbuf, errlen);
  if (st != VX_OK) return st;

  int D = o->size[0], H = o->size[1], W = o->size[2];
  size_t n = (size_t)D * H * W;
  float *img = malloc(n * sizeof *img), *lab = malloc(n * sizeof *lab);
  vx_volume *like = NULL;
  if (!img || !lab || vx_volume_create(W, H, D, 1, o->spacing, &like) != VX_OK) {
    st = vx_errbuf_fail(errbuf, errlen, VX_ERR_OUT_OF_MEMORY, "synthetic dataset: cannot allocate %dx%dx%d volumes", D, H, W);
    goto done;
  }
  for (int i = 0; i < o->cases && st == VX_OK; i++) {
    st = vx_synth_case(o->seed * 1000 + (uint64_t)i, D, H, W, img, lab);
    if (st != VX_OK) {
      vx_errbuf_fail(errbuf, errlen, st, "synthetic case %d: generation failed", i);
      break;
    }
    snprintf(path, sizeof path, "%s/imagesTr/synth_%03d_0000.nii.gz", dir, i);
    st = vx_volume_write_like(path, like, img, 0, errbuf, errlen);
    snprintf(path, sizeof path, "%s/labelsTr/synth_%03d.nii.gz", dir, i);
    if (st == VX_OK) st = vx_volume_write_like(path, like, lab, 1, errbuf, errlen);
    if (st == VX_OK && progress) progress(user, i + 1, o->cases);
  }
  if (st == VX_OK && was_synth) {
    remove_stale(dir, "imagesTr", o->cases);
    remove_stale(dir, "labelsTr", o->cases);
  }
done:
  vx_volume_destroy(like);
  free(img);
  free(lab);
  return st;
}
