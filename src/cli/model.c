/* voxcl model info: a network's layers, output shapes and parameter count. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int vx_cli_model(int argc, char **argv) {
  const char *model = NULL;
  int cin = 1, classes = 14, json = 0, patch[3] = {96, 96, 96};
  if (argc < 2 || strcmp(argv[1], "info")) {
    fprintf(stderr, "usage: voxcl model info --model unet3d|uxnet [--in-channels C] [--classes K] [--patch D,H,W] [--json]\n");
    return 2;
  }
  for (int i = 2; i < argc; i++) {
    const char *v;
    if ((v = vx_cli_opt(argc, argv, &i, "--model"))) model = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "--in-channels"))) cin = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--classes"))) classes = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--patch"))) {
      if (sscanf(v, "%d,%d,%d", &patch[0], &patch[1], &patch[2]) != 3) {
        fprintf(stderr, "voxcl model: --patch %s: expected D,H,W\n", v);
        return 2;
      }
    } else if (!strcmp(argv[i], "--json")) json = 1;
    else { fprintf(stderr, "voxcl model: unknown or incomplete option '%s'\n", argv[i]); return 2; }
  }
  if (!model) { fprintf(stderr, "voxcl model info: --model is required (unet3d, uxnet)\n"); return 2; }
  vx_layer_info *l = NULL;
  int n = 0;
  size_t total = 0;
  char err[1024];
  vx_status st = vx_model_describe(model, cin, classes, patch, &l, &n, &total, err, sizeof err);
  if (st != VX_OK) return vx_cli_error(st, err);
  if (json) {
    json_t *j = json_object(), *a = json_array();
    json_object_set_new(j, "model", json_string(model));
    json_object_set_new(j, "in_channels", json_integer(cin));
    json_object_set_new(j, "classes", json_integer(classes));
    json_object_set_new(j, "parameters", json_integer((json_int_t)total));
    for (int i = 0; i < n; i++) {
      json_t *e = json_object(), *s = json_array();
      json_object_set_new(e, "name", json_string(l[i].name));
      json_object_set_new(e, "type", json_string(l[i].type));
      json_object_set_new(e, "detail", json_string(l[i].detail));
      for (int k = 0; k < 4; k++) json_array_append_new(s, json_integer(l[i].out_shape[k]));
      json_object_set_new(e, "output_shape", s);
      json_object_set_new(e, "parameters", json_integer((json_int_t)l[i].params));
      json_array_append_new(a, e);
    }
    json_object_set_new(j, "layers", a);
    char *text = json_dumps(j, JSON_INDENT(2));
    printf("%s\n", text ? text : "{}");
    free(text);
    json_decref(j);
  } else {
    printf("%s: %d input channel(s), %d classes, patch %dx%dx%d\n", model, cin, classes, patch[0], patch[1], patch[2]);
    printf("%-40s %-20s %-26s %-22s %12s\n", "layer", "type", "detail", "output [C, D, H, W]", "parameters");
    for (int i = 0; i < n; i++) {
      char shape[64];
      snprintf(shape, sizeof shape, "[%d, %d, %d, %d]", l[i].out_shape[0], l[i].out_shape[1], l[i].out_shape[2],
               l[i].out_shape[3]);
      printf("%-40s %-20s %-26s %-22s %12zu\n", l[i].name, l[i].type, l[i].detail, shape, l[i].params);
    }
    printf("total parameters: %zu (%.2f M)\n", total, total / 1e6);
  }
  vx_free(l);
  return 0;
}
