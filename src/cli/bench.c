/* voxcl bench ops: the device's measured peak first, then every op forward and backward over the
 * shapes of real 3D networks, as ms, GFLOP/s or GB/s and the fraction of the measured peak;
 * a table on stdout and, with --json FILE, the same as JSON. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
  const char *name;
  int cin, cout, size, k, stride, pad, groups, transposed;
} conv_case;

/* The shapes the issue names: the levels of a 3D U-Net, UX-Net's depthwise 7^3, U-Net upsampling. */
static const conv_case k_convs[] = {
    {"conv3d 1->32 k3 128^3", 1, 32, 128, 3, 1, 1, 1, 0},
    {"conv3d 32->32 k3 64^3", 32, 32, 64, 3, 1, 1, 1, 0},
    {"conv3d 64->64 k3 32^3", 64, 64, 32, 3, 1, 1, 1, 0},
    {"conv3d 128->128 k3 16^3", 128, 128, 16, 3, 1, 1, 1, 0},
    {"conv3d 320->320 k3 8^3", 320, 320, 8, 3, 1, 1, 1, 0},
    {"conv3d 32->64 k3 s2 64^3", 32, 64, 64, 3, 2, 1, 1, 0},
    {"depthwise 48 k7 48^3", 48, 48, 48, 7, 1, 3, 48, 0},
    {"conv_transpose3d 64->32 k2 s2 32^3->64^3", 64, 32, 32, 2, 2, 0, 1, 1},
};

typedef vx_status (*timed_fn)(void *);

/* Median of up to 5 timed runs after one warm-up, stopping early past ~2 s. */
static double time_ms(vx_context *ctx, timed_fn fn, void *arg, vx_status *st) {
  double t[5];
  int n = 0;
  *st = fn(arg);
  if (*st == VX_OK) *st = vx_context_finish(ctx);
  double total = 0;
  while (*st == VX_OK && n < 5 && total < 2.0) {
    double t0 = now();
    *st = fn(arg);
    if (*st == VX_OK) *st = vx_context_finish(ctx);
    t[n] = now() - t0;
    total += t[n++];
  }
  if (*st != VX_OK || n == 0) return -1;
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++)
      if (t[j] < t[i]) { double x = t[i]; t[i] = t[j]; t[j] = x; }
  return 1e3 * t[n / 2];
}

typedef struct {
  vx_context *ctx;
  vx_tensor *x, *w, *y, *dx, *dw, *g, *b, *dg, *db, *save;
  vx_conv_params p;
  int transposed;
} op_args;

static vx_status conv_f(void *a_) {
  op_args *a = a_;
  return a->transposed ? vx_conv_transpose3d_forward(a->ctx, a->x, a->w, NULL, &a->p, a->y)
                       : vx_conv3d_forward(a->ctx, a->x, a->w, NULL, &a->p, a->y);
}
static vx_status conv_bd(void *a_) {
  op_args *a = a_;
  return a->transposed ? vx_conv_transpose3d_backward_data(a->ctx, a->y, a->w, &a->p, a->dx, 0)
                       : vx_conv3d_backward_data(a->ctx, a->y, a->w, &a->p, a->dx, 0);
}
static vx_status conv_bw(void *a_) {
  op_args *a = a_;
  return a->transposed ? vx_conv_transpose3d_backward_weights(a->ctx, a->x, a->y, &a->p, a->dw, NULL, 0)
                       : vx_conv3d_backward_weights(a->ctx, a->x, a->y, &a->p, a->dw, NULL, 0);
}
static vx_status in_f(void *a_) {
  op_args *a = a_;
  return vx_instance_norm_forward(a->ctx, a->x, a->g, a->b, 1e-5f, VX_ACT_NONE, 0, a->y, a->save);
}
static vx_status in_b(void *a_) {
  op_args *a = a_;
  return vx_instance_norm_backward(a->ctx, a->x, a->y, a->y, a->g, a->save, VX_ACT_NONE, 0, a->dx, a->dg, a->db, 0);
}
/* batch norm (training; running statistics in w, dw), group norm (8 groups), channel layer norm */
static vx_status bn_f(void *a_) {
  op_args *a = a_;
  return vx_batch_norm_forward(a->ctx, a->x, a->g, a->b, a->w, a->dw, 1, 0.1f, 1e-5f, VX_ACT_NONE, 0, a->y, a->save);
}
static vx_status bn_b(void *a_) {
  op_args *a = a_;
  return vx_batch_norm_backward(a->ctx, a->x, a->y, a->y, a->g, a->save, 1, VX_ACT_NONE, 0, a->dx, a->dg, a->db, 0);
}
static vx_status gn_f(void *a_) {
  op_args *a = a_;
  return vx_group_norm_forward(a->ctx, a->x, 8, a->g, a->b, 1e-5f, VX_ACT_NONE, 0, a->y, a->save);
}
static vx_status gn_b(void *a_) {
  op_args *a = a_;
  return vx_group_norm_backward(a->ctx, a->x, 8, a->y, a->y, a->g, a->save, VX_ACT_NONE, 0, a->dx, a->dg, a->db, 0);
}
static vx_status ln_f(void *a_) {
  op_args *a = a_;
  return vx_layer_norm_channels_forward(a->ctx, a->x, a->g, a->b, 1e-6f, a->y, a->save);
}
static vx_status ln_b(void *a_) {
  op_args *a = a_;
  return vx_layer_norm_channels_backward(a->ctx, a->x, a->y, a->g, a->save, a->dx, a->dg, a->db, 0);
}
static vx_status lrelu_f(void *a_) {
  op_args *a = a_;
  return vx_activation_forward(a->ctx, VX_ACT_LEAKY_RELU, 0.01f, a->x, a->y);
}
static vx_status lrelu_b(void *a_) {
  op_args *a = a_;
  return vx_activation_backward(a->ctx, VX_ACT_LEAKY_RELU, 0.01f, a->y, a->y, a->dx, 0);
}

static void release(op_args *a) {
  vx_tensor *ts[] = {a->x, a->w, a->y, a->dx, a->dw, a->g, a->b, a->dg, a->db, a->save};
  for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) vx_tensor_destroy(ts[i]);
  vx_context *ctx = a->ctx;
  memset(a, 0, sizeof *a);
  a->ctx = ctx;
}

static json_t *row(const char *name, const char *pass, double ms, double work, int is_flops, double peak) {
  double rate = ms > 0 ? work / (ms * 1e-3) / 1e9 : 0;
  printf("  %-42s %-14s %9.2f ms %9.1f %s  %5.1f%% of peak\n", name, pass, ms, rate, is_flops ? "GFLOP/s" : "GB/s   ",
         100.0 * rate / peak);
  json_t *j = json_object();
  json_object_set_new(j, "op", json_string(name));
  json_object_set_new(j, "pass", json_string(pass));
  json_object_set_new(j, "ms", json_real(ms));
  json_object_set_new(j, is_flops ? "gflops" : "gbps", json_real(rate));
  json_object_set_new(j, "fraction_of_peak", json_real(rate / peak));
  return j;
}

static int bench_models(int argc, char **argv);

int vx_cli_bench(int argc, char **argv) {
  const char *json_path = NULL, *device = NULL, *only = NULL;
  if (argc >= 2 && !strcmp(argv[1], "models")) return bench_models(argc, argv);
  if (argc < 2 || strcmp(argv[1], "ops")) {
    fprintf(stderr, "usage: voxcl bench ops [--only SUBSTRING] [--json FILE] [--device D]\n"
                    "       voxcl bench models [--models a,b] [--sizes 64,96] [--batch N] [--base C] [--levels L] [--depth N] [--vae]\n"
                    "                          [--steps N] [--json FILE] [--device D]\n");
    return 2;
  }
  for (int i = 2; i < argc; i++) {
    const char *v;
    if ((v = vx_cli_opt(argc, argv, &i, "--json"))) json_path = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "--device"))) device = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "--only"))) only = v;
    else { fprintf(stderr, "voxcl bench: unknown option '%s'\n", argv[i]); return 2; }
  }
  char err[8192];
  vx_context_options o = {0};
  o.device = device;
  vx_context *ctx;
  vx_status st = vx_context_create(&o, &ctx, err, sizeof err);
  if (st != VX_OK) return vx_cli_error(st, err);
  double gflops = 0, gbps = 0;
  st = vx_device_measure_peak(ctx, &gflops, &gbps);
  if (st != VX_OK) return vx_cli_error(st, vx_context_last_error(ctx));
  const vx_device_info *d = vx_context_device(ctx);
  printf("device %d:%d %s: measured peak %.1f GFLOP/s fp32 FMA, %.1f GB/s copy\n", d->platform, d->device, d->name,
         gflops, gbps);
  json_t *rows = json_array();
  op_args a = {0};
  a.ctx = ctx;
  for (size_t c = 0; c < sizeof k_convs / sizeof k_convs[0]; c++) {
    const conv_case *cc = &k_convs[c];
    if (only && !strstr(cc->name, only)) continue;
    int S = cc->size, OS = cc->transposed ? (S - 1) * cc->stride - 2 * cc->pad + cc->k
                                          : (S + 2 * cc->pad - cc->k) / cc->stride + 1;
    int xs[5] = {1, cc->cin, S, S, S}, ys[5] = {1, cc->cout, OS, OS, OS};
    int ws[5] = {cc->cout, cc->cin / cc->groups, cc->k, cc->k, cc->k};
    if (cc->transposed) { ws[0] = cc->cin; ws[1] = cc->cout / cc->groups; }
    vx_conv_params_init(&a.p, cc->stride, cc->pad);
    a.p.groups = cc->groups;
    a.transposed = cc->transposed;
    st = vx_tensor_create(ctx, xs, &a.x);
    if (st == VX_OK) st = vx_tensor_create(ctx, ws, &a.w);
    if (st == VX_OK) st = vx_tensor_create(ctx, ys, &a.y);
    if (st == VX_OK) st = vx_tensor_create(ctx, xs, &a.dx);
    if (st == VX_OK) st = vx_tensor_create(ctx, ws, &a.dw);
    if (st == VX_OK) st = vx_tensor_fill(a.x, 0.5f);
    if (st == VX_OK) st = vx_tensor_fill(a.w, 0.01f);
    if (st == VX_OK) st = vx_tensor_fill(a.y, 0.1f);
    /* multiply-adds of the forward = of each backward */
    double macs = (double)(cc->transposed ? xs[1] : ys[1]) * ws[1] * cc->k * cc->k * cc->k *
                  (double)(cc->transposed ? (double)S * S * S : (double)OS * OS * OS);
    double tf = -1, tbd = -1, tbw = -1;
    if (st == VX_OK) tf = time_ms(ctx, conv_f, &a, &st);
    if (st == VX_OK) tbd = time_ms(ctx, conv_bd, &a, &st);
    if (st == VX_OK) tbw = time_ms(ctx, conv_bw, &a, &st);
    if (st != VX_OK) {
      printf("  %-42s failed: %s\n", cc->name, vx_context_last_error(ctx));
    } else {
      json_array_append_new(rows, row(cc->name, "forward", tf, 2 * macs, 1, gflops));
      json_array_append_new(rows, row(cc->name, "backward-data", tbd, 2 * macs, 1, gflops));
      json_array_append_new(rows, row(cc->name, "backward-weights", tbw, 2 * macs, 1, gflops));
      json_array_append_new(rows, row(cc->name, "f+b", tf + tbd + tbw, 6 * macs, 1, gflops));
    }
    release(&a);
  }
  /* memory-bound ops on 32 x 64^3 */
  int ns[5] = {1, 32, 64, 64, 64}, cs[5] = {32, 1, 1, 1, 1}, ss[5] = {1, 1, 1, 1, 2 * 64 * 64 * 64}; /* LN: 2/voxel */
  double bytes = 32.0 * 64 * 64 * 64 * 4;
  if (!only || strstr("instance_norm leaky_relu batch_norm group_norm layer_norm", only)) {
    st = vx_tensor_create(ctx, ns, &a.x);
    if (st == VX_OK) st = vx_tensor_create(ctx, ns, &a.y);
    if (st == VX_OK) st = vx_tensor_create(ctx, ns, &a.dx);
    if (st == VX_OK) st = vx_tensor_create(ctx, cs, &a.g);
    if (st == VX_OK) st = vx_tensor_create(ctx, cs, &a.b);
    if (st == VX_OK) st = vx_tensor_create(ctx, cs, &a.dg);
    if (st == VX_OK) st = vx_tensor_create(ctx, cs, &a.db);
    if (st == VX_OK) st = vx_tensor_create(ctx, ss, &a.save);
    if (st == VX_OK) st = vx_tensor_fill(a.x, 0.5f);
    if (st == VX_OK) st = vx_tensor_fill(a.g, 1.0f);
    if (st == VX_OK) st = vx_tensor_fill(a.b, 0.0f);
    /* minimal traffic: forward reads x, writes y; backward reads x, y(dy), writes dx */
    double t;
    if (st == VX_OK && (t = time_ms(ctx, in_f, &a, &st)) > 0)
      json_array_append_new(rows, row("instance_norm 32x64^3", "forward", t, 2 * bytes, 0, gbps));
    if (st == VX_OK && (t = time_ms(ctx, in_b, &a, &st)) > 0)
      json_array_append_new(rows, row("instance_norm 32x64^3", "backward", t, 3 * bytes, 0, gbps));
    if (st == VX_OK && (t = time_ms(ctx, lrelu_f, &a, &st)) > 0)
      json_array_append_new(rows, row("leaky_relu 32x64^3", "forward", t, 2 * bytes, 0, gbps));
    if (st == VX_OK && (t = time_ms(ctx, lrelu_b, &a, &st)) > 0)
      json_array_append_new(rows, row("leaky_relu 32x64^3", "backward", t, 3 * bytes, 0, gbps));
    int other_norms = !only || strstr("batch_norm group_norm layer_norm", only);
    if (st == VX_OK && other_norms) st = vx_tensor_create(ctx, cs, &a.w);
    if (st == VX_OK && other_norms) st = vx_tensor_create(ctx, cs, &a.dw);
    if (st == VX_OK && other_norms) st = vx_tensor_fill(a.w, 0.0f);
    if (st == VX_OK && other_norms) st = vx_tensor_fill(a.dw, 1.0f);
    if (st == VX_OK && other_norms && (t = time_ms(ctx, bn_f, &a, &st)) > 0)
      json_array_append_new(rows, row("batch_norm 32x64^3 (training)", "forward", t, 2 * bytes, 0, gbps));
    if (st == VX_OK && other_norms && (t = time_ms(ctx, bn_b, &a, &st)) > 0)
      json_array_append_new(rows, row("batch_norm 32x64^3 (training)", "backward", t, 3 * bytes, 0, gbps));
    if (st == VX_OK && other_norms && (t = time_ms(ctx, gn_f, &a, &st)) > 0)
      json_array_append_new(rows, row("group_norm 32x64^3 (8 groups)", "forward", t, 2 * bytes, 0, gbps));
    if (st == VX_OK && other_norms && (t = time_ms(ctx, gn_b, &a, &st)) > 0)
      json_array_append_new(rows, row("group_norm 32x64^3 (8 groups)", "backward", t, 3 * bytes, 0, gbps));
    if (st == VX_OK && other_norms && (t = time_ms(ctx, ln_f, &a, &st)) > 0)
      json_array_append_new(rows, row("layer_norm (channels) 32x64^3", "forward", t, 2 * bytes, 0, gbps));
    if (st == VX_OK && other_norms && (t = time_ms(ctx, ln_b, &a, &st)) > 0)
      json_array_append_new(rows, row("layer_norm (channels) 32x64^3", "backward", t, 3 * bytes, 0, gbps));
    if (st != VX_OK) printf("  memory-bound ops failed: %s\n", vx_context_last_error(ctx));
    release(&a);
  }
  if (json_path) {
    json_t *js = json_object();
    json_object_set_new(js, "device", json_string(d->name));
    json_object_set_new(js, "peak_gflops", json_real(gflops));
    json_object_set_new(js, "peak_gbps", json_real(gbps));
    json_object_set_new(js, "results", rows);
    if (json_dump_file(js, json_path, JSON_INDENT(2)) != 0) fprintf(stderr, "voxcl bench: cannot write %s\n", json_path);
    json_decref(js);
  } else {
    json_decref(rows);
  }
  vx_context_destroy(ctx);
  return 0;
}

/* voxcl bench models: for each network and patch size a training step (forward, the network's
 * loss, backward, Adam) and an inference, with the device memory the network planned and the
 * context's peak during the step (workspaces included). The figures to put next to
 * bench/peers/pytorch_unet.py. */
static vx_status bench_one(vx_context *ctx, const char *model, int S, int batch, int base, int levels, int depth,
                           int vae, int steps, json_t *rows) {
  int shape[5] = {batch, 1, S, S, S};
  vx_model_config cfg;
  vx_status st = vx_model_config_init(&cfg, model);
  if (st != VX_OK) {
    printf("  %-20s unknown model (see voxcl model list)\n", model);
    return st;
  }
  if (strcmp(model, "uxnet")) {
    cfg.base_channels = base;
    cfg.levels = levels;
  }
  if (depth > 0) cfg.depth = depth;
  cfg.vae = vae;
  vx_model *net = NULL;
  vx_trainer *tr = NULL;
  vx_tensor *x = NULL, *y = NULL;
  vx_context_reset_peak(ctx);
  vx_context_stats s0;
  vx_context_get_stats(ctx, &s0);
  st = vx_model_create(ctx, &cfg, shape, &net);
  if (st == VX_OK) st = vx_trainer_create(net, NULL, &tr);
  if (st == VX_OK) st = vx_tensor_create(ctx, shape, &x);
  if (st == VX_OK) st = vx_tensor_create(ctx, shape, &y);
  size_t n = (size_t)S * S * S;
  float *h = malloc(batch * n * sizeof(float)), *l = malloc(batch * n * sizeof(float));
  if (st == VX_OK && h && l) {
    for (int b = 0; b < batch; b++) vx_synth_case(7 + (uint64_t)b, S, S, S, h + b * n, l + b * n);
    st = vx_tensor_upload(x, h);
    if (st == VX_OK) st = vx_tensor_upload(y, l);
  }
  free(h);
  free(l);
  double t_step = 0, t_inf = 0;
  float loss = 0;
  for (int i = -1; i < steps && st == VX_OK; i++) { /* i = -1: warm-up (kernel builds) */
    double t0 = now();
    st = vx_trainer_step(tr, x, y, 1e-4f, &loss);
    if (st == VX_OK) st = vx_context_finish(ctx);
    if (i >= 0) t_step += (now() - t0) / steps;
  }
  vx_context_stats s1;
  vx_context_get_stats(ctx, &s1);
  for (int i = -1; i < steps && st == VX_OK; i++) {
    double t0 = now();
    st = vx_model_forward(net, x);
    if (st == VX_OK) st = vx_context_finish(ctx);
    if (i >= 0) t_inf += (now() - t0) / steps;
  }
  char label[64];
  char dtxt[16] = "";
  if (depth > 0 && !strncmp(model, "invres", 6)) snprintf(dtxt, sizeof dtxt, " d%d", depth);
  snprintf(label, sizeof label, "%s%s%s", model, vae ? "+vae" : "", dtxt);
  if (st == VX_OK) {
    double mib_net = vx_model_device_bytes(net) / 1048576.0;
    double mib_peak = (double)(s1.device_bytes_peak - s0.device_bytes_in_use) / 1048576.0;
    printf("  %-20s %3d^3: training step %8.1f ms, inference %8.1f ms; planned %7.1f MiB, step peak %7.1f MiB, "
           "%zu parameters, loss %.3f\n", label, S, 1e3 * t_step, 1e3 * t_inf, mib_net, mib_peak,
           vx_model_parameter_count(net), loss);
    json_t *j = json_object();
    json_object_set_new(j, "model", json_string(label));
    json_object_set_new(j, "size", json_integer(S));
    json_object_set_new(j, "batch", json_integer(batch));
    json_object_set_new(j, "parameters", json_integer((json_int_t)vx_model_parameter_count(net)));
    json_object_set_new(j, "train_step_ms", json_real(1e3 * t_step));
    json_object_set_new(j, "inference_ms", json_real(1e3 * t_inf));
    json_object_set_new(j, "network_mib", json_real(mib_net));
    json_object_set_new(j, "train_step_peak_mib", json_real(mib_peak));
    json_array_append_new(rows, j);
  } else {
    printf("  %-20s %3d^3: failed: %s\n", label, S, vx_context_last_error(ctx));
  }
  fflush(stdout);
  vx_tensor_destroy(x);
  vx_tensor_destroy(y);
  vx_trainer_destroy(tr);
  vx_model_destroy(net);
  return st;
}

static int bench_models(int argc, char **argv) {
  const char *json_path = NULL, *device = NULL, *models = NULL;
  int sizes[8] = {64, 96}, nsizes = 2, base = 16, levels = 4, steps = 3, depth = 0, vae = 0, batch = 1;
  for (int i = 2; i < argc; i++) {
    const char *v;
    if ((v = vx_cli_opt(argc, argv, &i, "--json"))) json_path = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "--device"))) device = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "--models"))) models = v;
    else if ((v = vx_cli_opt(argc, argv, &i, "--base"))) base = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--levels"))) levels = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--depth"))) depth = atoi(v);
    else if ((v = vx_cli_opt(argc, argv, &i, "--batch"))) batch = atoi(v) > 0 ? atoi(v) : 1;
    else if ((v = vx_cli_opt(argc, argv, &i, "--steps"))) steps = atoi(v);
    else if (!strcmp(argv[i], "--vae")) vae = 1;
    else if ((v = vx_cli_opt(argc, argv, &i, "--sizes"))) {
      nsizes = 0;
      for (char *p = (char *)v; *p && nsizes < 8; p++) {
        sizes[nsizes++] = (int)strtol(p, &p, 10);
        if (!*p) break;
      }
    } else { fprintf(stderr, "voxcl bench models: unknown option '%s'\n", argv[i]); return 2; }
  }
  char err[8192];
  vx_context_options o = {0};
  o.device = device;
  vx_context *ctx;
  vx_status st = vx_context_create(&o, &ctx, err, sizeof err);
  if (st != VX_OK) return vx_cli_error(st, err);
  const vx_device_info *d = vx_context_device(ctx);
  printf("device %d:%d %s; 1 -> 3 classes, batch %d, Adam, Dice + CE (+ the network's own losses); U-Net-like\n"
         "networks %d levels, base %d; UX-Net as published (48 base)\n", d->platform, d->device, d->name, batch, levels,
         base);
  json_t *rows = json_array();
  char list[512];
  snprintf(list, sizeof list, "%s", models ? models : "unet3d,dualnorm-unet,invres-partial,invres-full,uxnet");
  int failures = 0;
  for (int k = 0; k < nsizes; k++)
    for (char *save = NULL, *m = strtok_r(list, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
      if (bench_one(ctx, m, sizes[k], batch, base, levels, depth, vae, steps, rows) != VX_OK) failures++;
    }
  if (json_path && json_dump_file(rows, json_path, JSON_INDENT(2)) != 0)
    fprintf(stderr, "voxcl bench: cannot write %s\n", json_path);
  json_decref(rows);
  vx_context_destroy(ctx);
  return failures ? 1 : 0;
}
