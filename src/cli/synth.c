/* voxcl synth --out DIR: the demo's synthetic dataset written in the nnU-Net layout, for
 * trying check-dataset, training and inference without real data. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

/* "a,b,c" -> three ints or floats; 0 on a malformed list. */
static int parse3i(const char *s, int v[3]) {
  char tail;
  return sscanf(s, "%d,%d,%d%c", &v[0], &v[1], &v[2], &tail) == 3;
}
static int parse3f(const char *s, float v[3]) {
  char tail;
  return sscanf(s, "%f,%f,%f%c", &v[0], &v[1], &v[2], &tail) == 3;
}

static void progress(void *user, int done, int total) {
  if (*(int *)user) {
    fprintf(stderr, "\r  writing case %d/%d", done, total);
    if (done == total) fputc('\n', stderr);
    fflush(stderr);
  }
}

static void usage(FILE *f) {
  fprintf(f, "usage: voxcl synth --out DIR [--cases N] [--size D,H,W] [--seed S] [--spacing X,Y,Z] [--force]\n"
             "writes the demo's synthetic dataset in the nnU-Net layout (imagesTr, labelsTr, dataset.json)\n"
             "defaults: --cases 20 --size 48,48,48 --seed 1 --spacing 1,1,1\n"
             "--force writes into a non-empty folder that is not a voxcl synthetic dataset\n");
}

int vx_cli_synth(int argc, char **argv) {
  vx_synth_dataset_options o;
  vx_synth_dataset_options_init(&o);
  const char *out = NULL;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if ((v = vx_cli_opt(argc, argv, &i, "--out"))) out = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "--cases"))) o.cases = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--seed"))) o.seed = strtoull(v, NULL, 10);
    else if ((v = vx_cli_opt(argc, argv, &i, "--size"))) {
      if (!parse3i(v, o.size)) {
        fprintf(stderr, "voxcl synth: --size wants D,H,W (e.g. 48,48,48), got '%s'\n", v);
        return 2;
      }
    } else if ((v = vx_cli_opt(argc, argv, &i, "--spacing"))) {
      if (!parse3f(v, o.spacing)) {
        fprintf(stderr, "voxcl synth: --spacing wants X,Y,Z in mm (e.g. 1,1,1.5), got '%s'\n", v);
        return 2;
      }
    } else if (!strcmp(argv[i], "--force")) o.force = 1;
    else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "voxcl synth: unknown or incomplete option '%s' (see voxcl synth --help)\n", argv[i]);
      return 2;
    }
  }
  if (!out) {
    usage(stderr);
    return 2;
  }
  int tty = isatty(2);
  char err[2048] = "";
  vx_status st = vx_synth_dataset_write(out, &o, progress, &tty, err, sizeof err);
  if (st != VX_OK) {
    if (tty) fputc('\n', stderr);
    int rc = vx_cli_error(st, err);
    if (st == VX_ERR_INVALID_ARGUMENT && !o.force && strstr(err, "refusing"))
      fprintf(stderr, "voxcl synth: choose an empty or new folder, or add --force to write into it anyway\n");
    return rc;
  }
  printf("wrote %d synthetic case%s of %dx%dx%d voxels (D,H,W; spacing %g,%g,%g mm) to %s\n", o.cases,
         o.cases == 1 ? "" : "s", o.size[0], o.size[1], o.size[2], o.spacing[0], o.spacing[1], o.spacing[2], out);
  return 0;
}
