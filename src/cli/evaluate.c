/* voxcl evaluate --pred DIR --ref DIR [--labels 1,2,...] [--out PREFIX]: per-case, per-class
 * Dice and HD95 of predicted label maps against references (vx_evaluate_folders), printed as
 * a table with the mean per class, and written to PREFIX.csv and PREFIX.json. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static void usage(FILE *f) {
  fprintf(f, "usage: voxcl evaluate --pred DIR --ref DIR [--labels 1,2,...] [--out PREFIX]\n"
             "  pairs DIR/X.nii.gz (or .nii) of --pred with X of --ref; --labels defaults to every\n"
             "  nonzero label in the references; writes PREFIX.csv and PREFIX.json (default PREFIX:\n"
             "  the --pred folder's evaluation)\n");
}

/* "1,2,5" -> labels; returns the count or -1 on a malformed list. */
static int parse_labels(const char *s, int **out) {
  int n = 1;
  for (const char *p = s; *p; p++) n += *p == ',';
  int *v = malloc(sizeof(int) * (size_t)n);
  if (!v) return -1;
  const char *p = s;
  for (int i = 0; i < n; i++) {
    char *end;
    errno = 0;
    long x = strtol(p, &end, 10);
    if (end == p || errno || x < 1 || x > INT_MAX || (*end != ',' && *end != 0)) {
      free(v);
      return -1;
    }
    v[i] = (int)x;
    p = end + (*end == ',');
  }
  *out = v;
  return n;
}

static void on_case(void *user, int done, int total) {
  (void)user;
  fprintf(stderr, "\revaluating %d/%d", done, total);
  if (done == total) fputc('\n', stderr);
  fflush(stderr);
}

static void print_cell(double d, double h) {
  char hb[32];
  if (isfinite(h)) snprintf(hb, sizeof hb, "%.2f", h);
  else snprintf(hb, sizeof hb, "-");
  printf("  %7.4f %9s", d, hb);
}

int vx_cli_evaluate(int argc, char **argv) {
  const char *pred = NULL, *ref = NULL, *labels_arg = NULL, *prefix = NULL, *v;
  for (int i = 1; i < argc; i++) {
    if ((v = vx_cli_opt(argc, argv, &i, "--pred"))) pred = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "--ref"))) ref = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "--labels"))) labels_arg = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "--out"))) prefix = v;
    else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "voxcl evaluate: unknown option or missing value '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if (!pred || !ref) {
    fprintf(stderr, "voxcl evaluate: --pred and --ref are required\n");
    usage(stderr);
    return 2;
  }
  int *labels = NULL, nlabels = 0;
  if (labels_arg && (nlabels = parse_labels(labels_arg, &labels)) < 0) {
    fprintf(stderr, "voxcl evaluate: --labels wants positive integers separated by commas, got '%s'\n",
            labels_arg);
    return 2;
  }
  char err[2048] = "", defprefix[4096];
  if (!prefix) {
    snprintf(defprefix, sizeof defprefix, "%s/evaluation", pred);
    prefix = defprefix;
  }
  vx_evaluation *e = NULL;
  /* a live case counter only on a terminal: in a log it would be noise */
  vx_status st = vx_evaluate_folders(pred, ref, labels, nlabels, isatty(fileno(stderr)) ? on_case : NULL, NULL, &e,
                                     err, sizeof err);
  free(labels);
  if (st != VX_OK) return vx_cli_error(st, err);
  int nc = vx_evaluation_case_count(e), nk = vx_evaluation_class_count(e);
  if (nk == 0) printf("no foreground label in the references: nothing to score\n");
  /* the table: one row per case, a Dice / HD95 (mm) pair per class */
  size_t w = 4;
  for (int i = 0; i < nc; i++) {
    size_t l = strlen(vx_evaluation_case_name(e, i));
    if (l > w) w = l;
  }
  printf("%-*s", (int)w, "case");
  for (int k = 0; k < nk; k++) {
    char h[32];
    snprintf(h, sizeof h, "dice[%d]", vx_evaluation_class_label(e, k));
    printf("  %7s", h);
    snprintf(h, sizeof h, "hd95[%d]", vx_evaluation_class_label(e, k));
    printf(" %9s", h);
  }
  printf("\n");
  for (int i = 0; i < nc; i++) {
    printf("%-*s", (int)w, vx_evaluation_case_name(e, i));
    for (int k = 0; k < nk; k++) {
      double d, h;
      vx_evaluation_get(e, i, k, &d, &h);
      print_cell(d, h);
    }
    printf("\n");
  }
  printf("%-*s", (int)w, "mean");
  for (int k = 0; k < nk; k++) {
    double d, h;
    vx_evaluation_get(e, -1, k, &d, &h);
    print_cell(d, h);
  }
  double fd, fh;
  vx_evaluation_get(e, -1, -1, &fd, &fh);
  printf("\n\n%d cases; mean over classes: Dice %.4f", nc, fd);
  if (isfinite(fh)) printf(", HD95 %.2f mm", fh);
  printf("\n(hd95 in mm; '-': undefined, a class empty in the prediction or the reference)\n");
  st = vx_evaluation_write(e, prefix, err, sizeof err);
  vx_evaluation_destroy(e);
  if (st != VX_OK) return vx_cli_error(st, err);
  printf("wrote %s.csv and %s.json\n", prefix, prefix);
  return 0;
}
