/* voxcl model info | list: a network's layers, output shapes, parameter count and planned
 * device memory. unet3d (nnU-Net's layout) and uxnet come from the static descriptions of
 * describe.c; every network can also be planned (declared without device memory) through
 * vx_model_plan, which is what --base/--levels/--depth/--vae select. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void usage(void) {
  fprintf(stderr, "usage: voxcl model list\n"
                  "       voxcl model info --model NAME [--in-channels C] [--classes K] [--patch D,H,W]\n"
                  "                        [--base C] [--levels L] [--depth N] [--vae] [--device D] [--json]\n");
}

/* The layers of a planned model: a copy the caller frees, and the planned device bytes. */
static vx_status plan_layers(const char *model, int cin, int classes, const int patch[3], int base, int levels,
                             int depth, int vae, const char *device, vx_layer_info **out, int *n, size_t *total,
                             size_t *bytes, char *err, size_t errlen) {
  vx_model_config cfg;
  vx_model_config_init(&cfg, model); /* an unknown name is refused by vx_model_plan, listing the known */
  cfg.in_channels = cin;
  cfg.classes = classes;
  if (base > 0) cfg.base_channels = base;
  if (levels > 0) cfg.levels = levels;
  if (depth > 0) cfg.depth = depth;
  cfg.vae = vae;
  vx_context_options o = {0};
  o.device = device;
  vx_context *ctx;
  vx_status st = vx_context_create(&o, &ctx, err, errlen);
  if (st != VX_OK) return st;
  vx_model *m = NULL;
  int shape[5] = {1, cin, patch[0], patch[1], patch[2]};
  st = vx_model_plan(ctx, &cfg, shape, &m);
  if (st != VX_OK) {
    snprintf(err, errlen, "%s", vx_context_last_error(ctx));
  } else {
    const vx_layer_info *l = vx_model_layers(m, n);
    *out = malloc((size_t)(*n > 0 ? *n : 1) * sizeof **out);
    if (!*out) st = VX_ERR_OUT_OF_MEMORY;
    else if (*n) memcpy(*out, l, (size_t)*n * sizeof **out);
    *total = vx_model_parameter_count(m);
    *bytes = vx_model_device_bytes(m);
  }
  vx_model_destroy(m);
  vx_context_destroy(ctx);
  return st;
}

int vx_cli_model(int argc, char **argv) {
  const char *model = NULL, *device = NULL;
  int cin = 1, classes = 14, json = 0, patch[3] = {96, 96, 96}, base = 0, levels = 0, depth = 0, vae = 0;
  if (argc >= 2 && !strcmp(argv[1], "list")) {
    for (const char *const *nm = vx_model_names(); *nm; nm++) printf("%s\n", *nm);
    return 0;
  }
  if (argc < 2 || strcmp(argv[1], "info")) {
    usage();
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
    } else if ((v = vx_cli_opt(argc, argv, &i, "--base"))) base = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--levels"))) levels = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--depth"))) depth = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--device"))) device = v;
    else if (!strcmp(argv[i], "--vae")) vae = 1;
    else if (!strcmp(argv[i], "--json")) json = 1;
    else { fprintf(stderr, "voxcl model: unknown or incomplete option '%s'\n", argv[i]); return 2; }
  }
  if (!model) { fprintf(stderr, "voxcl model info: --model is required (voxcl model list names them)\n"); return 2; }
  vx_layer_info *l = NULL;
  int n = 0, planned = 0;
  size_t total = 0, bytes = 0;
  char err[1024];
  /* the static descriptions hold the published layouts; any option that changes them plans */
  int is_static = (!strcmp(model, "unet3d") || !strcmp(model, "uxnet")) && !base && !levels && !depth && !vae;
  vx_status st = is_static ? vx_model_describe(model, cin, classes, patch, &l, &n, &total, err, sizeof err)
                           : plan_layers(model, cin, classes, patch, base, levels, depth, vae, device, &l, &n, &total,
                                         &bytes, err, sizeof err);
  planned = !is_static;
  if (st != VX_OK) return vx_cli_error(st, err);
  if (json) {
    json_t *j = json_object(), *a = json_array();
    json_object_set_new(j, "model", json_string(model));
    json_object_set_new(j, "in_channels", json_integer(cin));
    json_object_set_new(j, "classes", json_integer(classes));
    json_object_set_new(j, "parameters", json_integer((json_int_t)total));
    if (planned) json_object_set_new(j, "planned_device_bytes", json_integer((json_int_t)bytes));
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
    if (planned)
      printf("planned device memory for a training step at batch 1: %.1f MiB\n", bytes / 1048576.0);
  }
  if (planned) free(l);
  else vx_free(l);
  return 0;
}
