/* voxcl predict: segment one NIfTI file or a folder of them with a trained model folder. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: voxcl predict --model DIR -i IN -o OUT [--overlap X] [--mirror] [--probabilities] [--device D]\n"
          "IN is a .nii/.nii.gz file (OUT a file) or a folder (OUT a folder): nnU-Net's CASE_0000.nii.gz per\n"
          "channel, or one (4-D) file per case. The segmentation keeps the input's header and transforms.\n");
}

static int is_nifti(const char *n) {
  size_t l = strlen(n);
  return (l > 7 && !strcmp(n + l - 7, ".nii.gz")) || (l > 4 && !strcmp(n + l - 4, ".nii"));
}

static void progress(void *u, int done, int total) {
  fprintf(stderr, "\r  %s: window %d/%d ", (const char *)u, done, total);
  fflush(stderr);
}

/* Reads the channel files of one case into one volume ([C, Z, Y, X]); first keeps the geometry. */
static vx_status read_case(char **paths, int C, vx_volume **out, vx_volume **first, char *err, size_t errlen) {
  *out = *first = NULL;
  vx_status st = vx_volume_read(paths[0], first, err, errlen);
  if (st != VX_OK || C == 1) {
    *out = *first;
    *first = NULL;
    return st;
  }
  int d[4];
  vx_volume_dims(*first, d);
  float sp[3];
  vx_volume_spacing(*first, sp);
  st = vx_volume_create(d[0], d[1], d[2], C, sp, out);
  size_t nv = (size_t)d[0] * d[1] * d[2];
  for (int c = 0; c < C && st == VX_OK; c++) {
    vx_volume *v = NULL;
    st = c ? vx_volume_read(paths[c], &v, err, errlen) : VX_OK;
    const vx_volume *src = c ? v : *first;
    if (st == VX_OK) {
      int e[4];
      vx_volume_dims(src, e);
      if (e[0] != d[0] || e[1] != d[1] || e[2] != d[2] || e[3] != 1) {
        snprintf(err, errlen, "%s: %dx%dx%d (x%d) does not match channel 0 (%s, %dx%dx%d)", paths[c], e[0], e[1], e[2],
                 e[3], paths[0], d[0], d[1], d[2]);
        st = VX_ERR_SHAPE;
      } else {
        memcpy(vx_volume_channel(*out, c), vx_volume_data((vx_volume *)src), nv * sizeof(float));
      }
    }
    vx_volume_destroy(v);
  }
  return st;
}

static vx_status predict_case(vx_predictor *p, char **paths, int C, const char *out_path, float overlap, int mirror,
                              int probs_too, char *err, size_t errlen) {
  vx_volume *img = NULL, *first = NULL;
  vx_status st = read_case(paths, C, &img, &first, err, errlen);
  if (st != VX_OK) return st;
  const vx_volume *like = first ? first : img;
  int d[4];
  vx_volume_dims(img, d);
  size_t nv = (size_t)d[0] * d[1] * d[2];
  int K = vx_predictor_classes(p);
  float *labels = malloc(nv * sizeof(float)), *probs = probs_too ? malloc(nv * K * sizeof(float)) : NULL;
  if (!labels || (probs_too && !probs)) st = VX_ERR_OUT_OF_MEMORY;
  const char *base = strrchr(paths[0], '/') ? strrchr(paths[0], '/') + 1 : paths[0];
  if (st == VX_OK)
    st = vx_predictor_segment(p, img, overlap, mirror, labels, probs, progress, (void *)base, err, errlen);
  fprintf(stderr, "\n");
  if (st == VX_OK) st = vx_volume_write_like(out_path, like, labels, 1, err, errlen);
  if (st == VX_OK && probs) {
    char pp[4200];
    snprintf(pp, sizeof pp, "%.*s_probabilities.nii.gz", (int)(strlen(out_path) - (strstr(out_path, ".nii.gz") ? 7 : 4)),
             out_path);
    st = vx_volume_write_float(pp, like, probs, K, err, errlen);
  }
  if (st == VX_OK) printf("wrote %s\n", out_path);
  free(labels);
  free(probs);
  vx_volume_destroy(img);
  vx_volume_destroy(first);
  return st;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int vx_cli_predict(int argc, char **argv) {
  const char *model = NULL, *in = NULL, *out = NULL, *device = NULL;
  float overlap = -1;
  int mirror = 0, probs = 0;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if ((v = vx_cli_opt(argc, argv, &i, "--model"))) model = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "-i"))) in = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "-o"))) out = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "--overlap"))) overlap = (float)atof(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--device"))) device = v;
    else if (!strcmp(argv[i], "--mirror")) mirror = 1;
    else if (!strcmp(argv[i], "--probabilities")) probs = 1;
    else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
    else { fprintf(stderr, "voxcl predict: unknown or incomplete option '%s'\n", argv[i]); usage(stderr); return 2; }
  }
  if (!model || !in || !out) { usage(stderr); return 2; }
  char err[8192];
  vx_context_options co = {0};
  co.device = device;
  vx_context *ctx;
  vx_status st = vx_context_create(&co, &ctx, err, sizeof err);
  if (st != VX_OK) return vx_cli_error(st, err);
  vx_predictor *p = NULL;
  st = vx_predictor_open(ctx, model, &p, err, sizeof err);
  if (st != VX_OK) { vx_context_destroy(ctx); return vx_cli_error(st, err); }
  int C = vx_predictor_channels(p);
  struct stat sb;
  if (stat(in, &sb) != 0) {
    snprintf(err, sizeof err, "%s: %s", in, strerror(errno));
    st = VX_ERR_IO;
  } else if (!S_ISDIR(sb.st_mode)) {
    char *paths[1] = {(char *)in};
    if (C != 1) {
      snprintf(err, sizeof err, "the model takes %d channels: give a folder with CASE_0000..CASE_%04d files", C, C - 1);
      st = VX_ERR_INVALID_ARGUMENT;
    } else {
      st = predict_case(p, paths, 1, out, overlap, mirror, probs, err, sizeof err);
    }
  } else {
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
      snprintf(err, sizeof err, "%s: cannot create: %s", out, strerror(errno));
      st = VX_ERR_IO;
    }
    DIR *dir = st == VX_OK ? opendir(in) : NULL;
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
      if (e->d_name[0] == '.' || !is_nifti(e->d_name)) continue;
      if (n == cap) names = realloc(names, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *names);
      names[n++] = strdup(e->d_name);
    }
    if (dir) closedir(dir);
    if (names) qsort(names, (size_t)n, sizeof *names, cmp_str);
    int done = 0;
    for (int i = 0; i < n && st == VX_OK; i++) {
      /* nnU-Net: CASE_0000.nii.gz starts a case whose channels follow; else one file is one case */
      const char *nm = names[i];
      const char *ext = strstr(nm, ".nii");
      int stem = (int)(ext - nm);
      int chan = stem > 5 && nm[stem - 5] == '_' && !strncmp(nm + stem - 4, "0000", 4);
      int has_suffix = stem > 5 && nm[stem - 5] == '_' && nm[stem - 4] >= '0' && nm[stem - 4] <= '9';
      if (has_suffix && !chan) continue;
      char *paths[64], outp[4200];
      int cs = chan ? stem - 5 : stem;
      for (int c = 0; c < C && c < 64; c++) {
        paths[c] = malloc(4200);
        if (chan) snprintf(paths[c], 4200, "%s/%.*s_%04d%s", in, cs, nm, c, ext);
        else snprintf(paths[c], 4200, "%s/%s", in, nm);
      }
      snprintf(outp, sizeof outp, "%s/%.*s.nii.gz", out, cs, nm);
      st = predict_case(p, paths, chan ? C : 1, outp, overlap, mirror, probs, err, sizeof err);
      for (int c = 0; c < C && c < 64; c++) free(paths[c]);
      done += st == VX_OK;
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    if (st == VX_OK && done == 0) {
      snprintf(err, sizeof err, "%s: no .nii or .nii.gz images found", in);
      st = VX_ERR_IO;
    }
    if (st == VX_OK) printf("%d case(s) segmented into %s\n", done, out);
  }
  vx_predictor_destroy(p);
  vx_context_destroy(ctx);
  return st == VX_OK ? 0 : vx_cli_error(st, err);
}
