/* voxcl check-dataset DIR: reads every file of a dataset and prints every problem found;
 * exit 1 when there is any, 0 with a one-line summary when there is none. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

typedef struct {
  int tty, ncases, printed;
} progress_state;

static void on_problem(void *user, int case_index, const char *problem) {
  progress_state *p = user;
  if (!problem) {
    if (p->tty) {
      fprintf(stderr, "\r  checked %d/%d cases", case_index + 1, p->ncases);
      fflush(stderr);
    }
    return;
  }
  if (p->tty) fprintf(stderr, "\r%40s\r", ""); /* clear the progress line first */
  printf("%s\n", problem);
  fflush(stdout);
  p->printed++;
}

int vx_cli_check_dataset(int argc, char **argv) {
  const char *dir = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      printf("usage: voxcl check-dataset DIR\n"
             "reads every image and label of an nnU-Net or Medical Segmentation Decathlon dataset folder and\n"
             "lists every problem (missing or corrupt files, shape or transform mismatches, undeclared labels,\n"
             "a wrong numTraining); exit status 1 when there is any\n");
      return 0;
    }
    if (argv[i][0] == '-' || dir) {
      fprintf(stderr, "voxcl check-dataset: unexpected argument '%s' (see voxcl check-dataset --help)\n", argv[i]);
      return 2;
    }
    dir = argv[i];
  }
  if (!dir) {
    fprintf(stderr, "usage: voxcl check-dataset DIR\n");
    return 2;
  }
  char err[4096] = "";
  vx_dataset *ds = NULL;
  vx_status st = vx_dataset_open(dir, &ds, err, sizeof err);
  if (st != VX_OK) return vx_cli_error(st, err);
  progress_state p = {isatty(2), vx_dataset_case_count(ds), 0};
  vx_dataset_summary s;
  st = vx_dataset_check(ds, on_problem, &p, NULL, &s);
  if (p.tty) fprintf(stderr, "\r%40s\r", "");
  if (st != VX_OK) {
    vx_dataset_close(ds);
    return vx_cli_error(st, "checking the dataset failed");
  }
  if (s.problems) {
    printf("%s: %d problem%s in %d case%s\n", dir, s.problems, s.problems == 1 ? "" : "s", s.cases,
           s.cases == 1 ? "" : "s");
    vx_dataset_close(ds);
    return 1;
  }
  printf("%s: ok: %s layout, %d case%s, %d channel%s (", dir,
         vx_dataset_get_layout(ds) == VX_LAYOUT_MSD ? "MSD" : "nnU-Net", s.cases, s.cases == 1 ? "" : "s", s.channels,
         s.channels == 1 ? "" : "s");
  for (int c = 0; c < s.channels; c++) printf("%s%s", c ? ", " : "", vx_dataset_channel_name(ds, c));
  printf("), %d classes (", s.classes);
  for (int v = 0; v < s.classes; v++) printf("%s%s", v ? ", " : "", vx_dataset_label_name(ds, v));
  printf("), shape x,y,z %dx%dx%d to %dx%dx%d, spacing %.3gx%.3gx%.3g to %.3gx%.3gx%.3g mm\n", s.shape_min[0],
         s.shape_min[1], s.shape_min[2], s.shape_max[0], s.shape_max[1], s.shape_max[2], s.spacing_min[0],
         s.spacing_min[1], s.spacing_min[2], s.spacing_max[0], s.spacing_max[1], s.spacing_max[2]);
  vx_dataset_close(ds);
  return 0;
}
