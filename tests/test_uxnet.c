/* 3D UX-Net as a vx_model ("uxnet"):
 *  (a) planned at 1 input channel, 14 classes, 96^3: 53,006,510 parameters, and every parameter
 *      name and shape, and every noted layer, as vx_model_describe lists them;
 *  (b) a small network at 32^3: forward output shape, and gradients of parameters of every kind
 *      (depthwise, pointwise, layer scale, LayerNorm, downsampling, stem, encoder, transposed
 *      conv, decoder, out conv) against central finite differences of the loss (formed in double),
 *      once with LeakyReLU slope 1 (no kinks: tight) and once with 0.01 (the layers with clear
 *      gradients); the layer scales are raised from 1e-6 so that the stage blocks matter;
 *  (c) Adam steps on a fixed batch: the loss falls, and two runs repeat bit for bit;
 *  (d) a 48^3 input (not a multiple of 32) is refused with a message naming the size.
 * Usage: test_uxnet [--small]  (--small, for Oclgrind: (a), (d), and one training step of the
 * smallest network, base 2 at 32^3, with finite, nonzero gradients).
 * UX_VERBOSE=1 in the environment prints every finite-difference check.
 * One line per failed check, then "N passed, M failed"; exit 1 on failure, 77 without a device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include "check.h"
#include "nn/model.h"
#include "ref/ref_ops.h"
#include "voxcl.h"

typedef struct {
  char name[96]; /* room for a suffix on a 64-character layer name */
  int shape[5];
} pdesc;

/* The parameters a described layer implies: "<layer>.weight"/".bias" (conv weights
 * [O, C/groups, k, k, k], the group size recovered from the count), "<block>.gamma" for the
 * layer scale. Returns how many were written, -1 for a type with parameters we do not know. */
static int implied_params(const vx_layer_info *l, pdesc *out) {
  if (l->params == 0) return 0;
  int cin = 0, cout = 0, k = 0;
  if (!strcmp(l->type, "conv3d") && sscanf(l->detail, "%d->%d k%d", &cin, &cout, &k) == 3) {
    int bias = strstr(l->detail, "bias") != NULL;
    size_t wn = l->params - (bias ? (size_t)cout : 0);
    int cpg = (int)(wn / ((size_t)cout * k * k * k));
    snprintf(out[0].name, sizeof out[0].name, "%s.weight", l->name);
    int ws[5] = {cout, cpg, k, k, k};
    memcpy(out[0].shape, ws, sizeof ws);
    if (!bias) return 1;
    snprintf(out[1].name, sizeof out[1].name, "%s.bias", l->name);
    int bs[5] = {cout, 1, 1, 1, 1};
    memcpy(out[1].shape, bs, sizeof bs);
    return 2;
  }
  if (!strcmp(l->type, "layer_norm")) {
    int cs[5] = {l->out_shape[0], 1, 1, 1, 1};
    snprintf(out[0].name, sizeof out[0].name, "%s.weight", l->name);
    snprintf(out[1].name, sizeof out[1].name, "%s.bias", l->name);
    memcpy(out[0].shape, cs, sizeof cs);
    memcpy(out[1].shape, cs, sizeof cs);
    return 2;
  }
  if (!strcmp(l->type, "conv_transpose3d") && sscanf(l->detail, "%d->%d k%d", &cin, &cout, &k) == 3) {
    int ws[5] = {cin, cout, k, k, k};
    snprintf(out[0].name, sizeof out[0].name, "%s.weight", l->name);
    memcpy(out[0].shape, ws, sizeof ws);
    return 1;
  }
  if (!strcmp(l->type, "scale+add")) {
    const char *suffix = strstr(l->name, ".layer_scale+residual");
    if (!suffix) return -1;
    snprintf(out[0].name, sizeof out[0].name, "%.*s.gamma", (int)(suffix - l->name), l->name);
    int cs[5] = {l->out_shape[0], 1, 1, 1, 1};
    memcpy(out[0].shape, cs, sizeof cs);
    return 1;
  }
  return -1;
}

/* (a) */
static void test_plan(vx_context *ctx) {
  vx_model_config cfg;
  CHECK(vx_model_config_init(&cfg, "uxnet") == VX_OK, "config_init(uxnet)");
  cfg.in_channels = 1;
  cfg.classes = 14;
  int shape[5] = {1, 1, 96, 96, 96}, patch[3] = {96, 96, 96};
  vx_model *m = NULL;
  vx_status st = vx_model_plan(ctx, &cfg, shape, &m);
  CHECK(st == VX_OK, "plan uxnet 96^3: %s", vx_context_last_error(ctx));
  if (st != VX_OK) return;
  size_t count = vx_model_parameter_count(m);
  CHECK(count == 53006510, "uxnet 1 in / 14 classes: %zu parameters, expected 53,006,510", count);
  printf("uxnet 96^3, 1 in, 14 classes: %zu parameters, %.2f GiB planned (batch 1, training)\n", count,
         (double)vx_model_device_bytes(m) / (1 << 30));

  vx_layer_info *dl = NULL;
  int dn = 0;
  size_t dtotal = 0;
  char err[512];
  st = vx_model_describe("uxnet", 1, 14, patch, &dl, &dn, &dtotal, err, sizeof err);
  CHECK(st == VX_OK && dtotal == count, "describe: %zu parameters, built %zu (%s)", dtotal, count, err);
  if (st != VX_OK) { vx_model_destroy(m); return; }
  /* the parameter list, in order */
  int p = 0, mismatches = 0;
  for (int i = 0; i < dn; i++) {
    pdesc want[2];
    int k = implied_params(&dl[i], want);
    CHECK(k >= 0, "describe layer %s (%s) has parameters of an unknown kind", dl[i].name, dl[i].type);
    for (int j = 0; j < k; j++, p++) {
      if (p >= m->params.n) { mismatches++; continue; }
      const vx_decl *d = &m->params.decl[p];
      int same = !strcmp(d->name, want[j].name) && !memcmp(d->shape, want[j].shape, sizeof d->shape);
      if (!same && mismatches++ < 5)
        CHECK(0, "parameter %d: built %s [%d,%d,%d,%d,%d], described %s [%d,%d,%d,%d,%d]", p, d->name, d->shape[0],
              d->shape[1], d->shape[2], d->shape[3], d->shape[4], want[j].name, want[j].shape[0], want[j].shape[1],
              want[j].shape[2], want[j].shape[3], want[j].shape[4]);
    }
  }
  CHECK(mismatches == 0 && p == m->params.n, "%d parameter tensors differ; described %d, built %d", mismatches, p,
        m->params.n);
  /* the noted layers */
  int ln = 0;
  const vx_layer_info *ml = vx_model_layers(m, &ln);
  CHECK(ln == dn, "noted %d layers, described %d", ln, dn);
  int bad = 0;
  for (int i = 0; i < ln && i < dn; i++) {
    int same = !strcmp(ml[i].name, dl[i].name) && !strcmp(ml[i].type, dl[i].type) &&
               !strcmp(ml[i].detail, dl[i].detail) &&
               !memcmp(ml[i].out_shape, dl[i].out_shape, sizeof ml[i].out_shape) &&
               ml[i].params == dl[i].params;
    if (!same && bad++ < 5)
      CHECK(0, "layer %d: noted %s %s '%s' [%d,%d,%d,%d] %zu, described %s %s '%s' [%d,%d,%d,%d] %zu", i, ml[i].name,
            ml[i].type, ml[i].detail, ml[i].out_shape[0], ml[i].out_shape[1], ml[i].out_shape[2], ml[i].out_shape[3],
            ml[i].params, dl[i].name, dl[i].type, dl[i].detail, dl[i].out_shape[0], dl[i].out_shape[1],
            dl[i].out_shape[2], dl[i].out_shape[3], dl[i].params);
  }
  CHECK(bad == 0, "%d noted layers differ from the description", bad);
  vx_free(dl);
  /* a planned model does not run */
  vx_model_destroy(m);
}

/* (d) */
static void test_refusal(vx_context *ctx) {
  vx_model_config cfg;
  vx_model_config_init(&cfg, "uxnet");
  int shape[5] = {1, 1, 48, 48, 48};
  vx_model *m = NULL;
  vx_status st = vx_model_create(ctx, &cfg, shape, &m);
  const char *e = vx_context_last_error(ctx);
  CHECK(st == VX_ERR_SHAPE && m == NULL && strstr(e, "48x48x48") && strstr(e, "32") && strstr(e, "uxnet"),
        "48^3 refused: status %d, message '%s'", st, e);
  int shape2[5] = {1, 1, 64, 64, 40};
  st = vx_model_plan(ctx, &cfg, shape2, &m);
  e = vx_context_last_error(ctx);
  CHECK(st == VX_ERR_SHAPE && m == NULL && strstr(e, "64x64x40"), "64x64x40 plan refused: status %d, '%s'", st, e);
}

static const vx_decl *find_param(const vx_model *m, const char *name) {
  for (int i = 0; i < m->params.n; i++)
    if (!strcmp(m->params.decl[i].name, name)) return &m->params.decl[i];
  return NULL;
}

typedef struct {
  vx_model *m;
  vx_tensor *x, *y;
  vx_loss_params lp;
  double *labels, *logits; /* host copies for the double-precision loss */
  float *out;
} problem;

/* The loss of an inference forward, formed in double from the logits (tests/ref): finite
 * differences then see only the forward's float rounding, not the loss's. */
static vx_status eval_loss(problem *pr, double *loss) {
  vx_tensor *o = vx_model_output(pr->m);
  const int *s = vx_tensor_shape(o);
  size_t n = vx_tensor_numel(o);
  vx_status st = vx_model_forward(pr->m, pr->x);
  if (st == VX_OK) st = vx_tensor_download(o, pr->out);
  if (st != VX_OK) return st;
  for (size_t i = 0; i < n; i++) pr->logits[i] = pr->out[i];
  *loss = ref_loss_dice_ce(pr->logits, pr->labels, s[0], s[1], (size_t)s[2] * s[3] * s[4], pr->lp.ce_weight,
                           pr->lp.dice_weight, pr->lp.dice_include_background, pr->lp.dice_smooth);
  return VX_OK;
}

/* A fixed batch: synthetic volumes (labels folded into the class count). */
static void make_batch(int N, int S, int K, float *img, float *lab) {
  size_t n = (size_t)S * S * S;
  for (int b = 0; b < N; b++) {
    vx_synth_case(300 + (uint64_t)b, S, S, S, img + b * n, lab + b * n);
    for (size_t i = 0; i < n; i++) {
      img[b * n + i] -= 0.5f;
      if (lab[b * n + i] >= (float)K) lab[b * n + i] = (float)(K - 1);
    }
  }
}

static vx_status make_problem(vx_context *ctx, int f, int N, int K, float slope, problem *pr) {
  memset(pr, 0, sizeof *pr);
  vx_model_config cfg;
  vx_model_config_init(&cfg, "uxnet");
  cfg.base_channels = f;
  cfg.classes = K;
  cfg.seed = 11;
  cfg.slope = slope;
  int S = 32, xs[5] = {N, 1, S, S, S};
  vx_loss_params_init(&pr->lp);
  vx_status st = vx_model_create(ctx, &cfg, xs, &pr->m);
  if (st == VX_OK) st = vx_tensor_create(ctx, xs, &pr->x);
  if (st == VX_OK) st = vx_tensor_create(ctx, xs, &pr->y);
  if (st != VX_OK) return st;
  size_t n = (size_t)N * S * S * S;
  float *img = malloc(n * sizeof(float)), *lab = malloc(n * sizeof(float));
  if (!img || !lab) st = VX_ERR_OUT_OF_MEMORY;
  if (st == VX_OK) make_batch(N, S, K, img, lab);
  if (st == VX_OK) st = vx_tensor_upload(pr->x, img);
  if (st == VX_OK) st = vx_tensor_upload(pr->y, lab);
  pr->labels = malloc(n * sizeof(double));
  pr->logits = malloc(n * K * sizeof(double));
  pr->out = malloc(n * K * sizeof(float));
  if (st == VX_OK && (!pr->labels || !pr->logits || !pr->out)) st = VX_ERR_OUT_OF_MEMORY;
  for (size_t i = 0; st == VX_OK && i < n; i++) pr->labels[i] = lab[i];
  free(img);
  free(lab);
  return st;
}

static void free_problem(problem *pr) {
  free(pr->labels);
  free(pr->logits);
  free(pr->out);
  vx_tensor_destroy(pr->x);
  vx_tensor_destroy(pr->y);
  vx_model_destroy(pr->m);
}

/* (b) One network (base f, batch N, K classes, LeakyReLU slope) and one training step; for each
 * named tensor finite differences along 'ndirs' directions, error at most 'tol'. */
static void test_gradients(vx_context *ctx, int f, int N, int K, float slope, const char *const *names, int nn,
                           int ndirs, double tol) {
  problem pr;
  vx_status st = make_problem(ctx, f, N, K, slope, &pr);
  CHECK(st == VX_OK, "small uxnet: %s", vx_context_last_error(ctx));
  if (st != VX_OK) { free_problem(&pr); return; }
  vx_model *m = pr.m;
  vx_tensor *flat = vx_model_parameters(m), *gflat = vx_model_gradients(m);
  size_t P = vx_tensor_numel(flat);
  float *w = malloc(P * sizeof(float)), *g = malloc(P * sizeof(float));
  st = vx_tensor_download(flat, w);
  /* layer scales of 1e-6 would hide the stage blocks from the loss: make them matter */
  uint64_t rng = 5;
  for (int i = 0; i < m->params.n; i++) {
    const vx_decl *d = &m->params.decl[i];
    if (strstr(d->name, ".gamma"))
      for (size_t j = 0; j < d->numel; j++) w[d->offset + j] = 0.5f + 0.5f * (float)vx_rng_uniform(&rng);
  }
  if (st == VX_OK) st = vx_tensor_upload(flat, w);
  float loss = 0.0f;
  if (st == VX_OK) st = vx_model_train_step(m, pr.x, pr.y, &pr.lp, &loss);
  CHECK(st == VX_OK && isfinite(loss), "train_step: %s (loss %g)", vx_context_last_error(ctx), (double)loss);
  const int *os = vx_tensor_shape(vx_model_output(m));
  CHECK(os[0] == N && os[1] == K && os[2] == 32 && os[3] == 32 && os[4] == 32, "output [%d, %d, %d, %d, %d]", os[0],
        os[1], os[2], os[3], os[4]);
  if (st == VX_OK) st = vx_tensor_download(gflat, g);
  double loss2 = 0.0;
  if (st == VX_OK && nn) { /* (skipped for Oclgrind: the training step ran the same forward) */
    st = eval_loss(&pr, &loss2);
    CHECK(st == VX_OK && fabs(loss2 - loss) < 1e-5 * fabs(loss2),
          "inference forward's loss %.9g (double) vs the training step's %.9g", loss2, (double)loss);
  }
  if (st != VX_OK) { free(w); free(g); free_problem(&pr); return; }
  size_t nonfinite = 0, zero_tensors = 0;
  for (int i = 0; i < m->params.n; i++) {
    const vx_decl *d = &m->params.decl[i];
    int any = 0;
    for (size_t j = 0; j < d->numel; j++) {
      if (!isfinite(g[d->offset + j])) nonfinite++;
      if (g[d->offset + j] != 0.0f) any = 1;
    }
    if (!any) zero_tensors++;
  }
  CHECK(nonfinite == 0, "%zu gradient values are not finite", nonfinite);
  CHECK(zero_tensors == 0, "%zu parameter tensors have an all-zero gradient", zero_tensors);

  /* Per tensor: the entry with the largest gradient, then two directions over the whole tensor
   * (the gradient's own and a random one): directions move the loss clearly even where single
   * entries have tiny gradients. */
  double worst = 0.0;
  float *v = malloc(P * sizeof(float)), *w0 = malloc(P * sizeof(float));
  for (int t = 0; t < nn && st == VX_OK; t++) {
    const vx_decl *d = find_param(m, names[t]);
    CHECK(d != NULL, "no parameter %s", names[t]);
    if (!d) continue;
    size_t best = 0;
    double gn = 0.0, wn = 0.0;
    for (size_t j = 0; j < d->numel; j++) {
      if (fabsf(g[d->offset + j]) > fabsf(g[d->offset + best])) best = j;
      gn += (double)g[d->offset + j] * g[d->offset + j];
      wn += (double)w[d->offset + j] * w[d->offset + j];
    }
    gn = sqrt(gn), wn = sqrt(wn);
    for (int dir = 0; dir < ndirs && st == VX_OK; dir++) {
      double vn = 0.0;
      memset(v + d->offset, 0, d->numel * sizeof(float));
      if (dir == 0) {
        v[d->offset + best] = 1.0f, vn = 1.0;
      } else {
        for (size_t j = 0; j < d->numel; j++) {
          float e = dir == 1 ? g[d->offset + j] : (float)vx_rng_normal(&rng);
          v[d->offset + j] = e;
          vn += (double)e * e;
        }
        vn = sqrt(vn);
      }
      if (vn == 0.0) { CHECK(0, "%s: zero gradient", names[t]); continue; }
      double ana = 0.0;
      for (size_t j = 0; j < d->numel; j++) ana += (double)g[d->offset + j] * (v[d->offset + j] / vn);
      /* The step moves the loss by about 1e-5 (formed in double, the loss carries only the
       * forward's float rounding, ~1e-7), within [1e-5, 5% of the tensor's scale]. The loss
       * difference is compared with g . (w+ - w-) over the values actually stored (float
       * rounding of w +- h would otherwise bias small steps), and Richardson extrapolation over
       * h and h/2 removes the curvature term (LeakyReLU kinks, norms over 8 voxels at 1/16). */
      double scale = dir == 0 ? fabs(g[d->offset + best]) : gn;
      double h = 1e-5 / fmax(scale, 1e-12), hmax = 0.05 * fmax(1.0, dir == 0 ? fabs(w[d->offset + best]) : wn);
      h = fmin(fmax(h, 1e-5), hmax);
      double ratio[2] = {0.0, 0.0}, dl[2] = {0.0, 0.0};
      memcpy(w0 + d->offset, w + d->offset, d->numel * sizeof(float));
      for (int half = 0; half < 2 && st == VX_OK; half++) {
        double step = half ? h / 2 : h, l[2] = {0.0, 0.0}, predicted = 0.0;
        for (int side = 0; side < 2 && st == VX_OK; side++) {
          double sgn = side ? -1.0 : 1.0;
          for (size_t j = 0; j < d->numel; j++) {
            w[d->offset + j] = w0[d->offset + j] + (float)(sgn * step * (v[d->offset + j] / vn));
            predicted += sgn * (double)g[d->offset + j] * ((double)w[d->offset + j] - (double)w0[d->offset + j]);
          }
          st = vx_tensor_upload(flat, w);
          if (st == VX_OK) st = eval_loss(&pr, &l[side]);
        }
        dl[half] = l[0] - l[1];
        ratio[half] = predicted != 0.0 ? dl[half] / predicted : 0.0;
      }
      memcpy(w + d->offset, w0 + d->offset, d->numel * sizeof(float));
      double r = (4.0 * ratio[1] - ratio[0]) / 3.0, num = r * ana;
      /* error relative to the signal (the entry, or the gradient's norm for a direction) plus
       * a generous bound of the rounding noise in the loss differences */
      double err = fabs(num - ana) / (scale + 1e-6 / h);
      if (err > worst) worst = err;
      static const char *what[3] = {"largest entry", "gradient direction", "random direction"};
      if (getenv("UX_VERBOSE")) /* every check, with the differences at h and h/2 */
        printf("%s %d analytic %.6g extrapolated %.6g (h: %.6g, h/2: %.6g) h %.3g err %.3g\n", names[t], dir, ana, num,
               ratio[0] * ana, ratio[1] * ana, h, err);
      CHECK(st == VX_OK && err < tol,
            "d loss / d %s (%s): analytic %.6g, central difference %.6g (rel err %.3g, |g| %.3g)", names[t],
            what[dir], ana, num, err, gn);
    }
  }
  free(v);
  free(w0);
  printf("gradient check (f=%d, batch %d, 32^3, LeakyReLU slope %g): %d tensors x %d directions, worst relative "
         "error %.3g (limit %g)\n", f, N, (double)slope, nn, ndirs, worst, tol);
  free(w);
  free(g);
  free_problem(&pr);
}

/* (c): Adam on one fixed batch from the same seed, twice. */
static vx_status train_run(vx_context *ctx, int f, int N, int K, int steps, float *losses, float **final) {
  problem pr;
  vx_tensor *mom = NULL, *vel = NULL;
  vx_status st = make_problem(ctx, f, N, K, 0.01f, &pr);
  size_t P = st == VX_OK ? vx_tensor_numel(vx_model_parameters(pr.m)) : 0;
  int fs[5] = {1, 1, 1, 1, (int)P};
  if (st == VX_OK) st = vx_tensor_create(ctx, fs, &mom);
  if (st == VX_OK) st = vx_tensor_create(ctx, fs, &vel);
  if (st == VX_OK) st = vx_tensor_fill(mom, 0.0f);
  if (st == VX_OK) st = vx_tensor_fill(vel, 0.0f);
  for (int i = 0; i < steps && st == VX_OK; i++) {
    st = vx_model_train_step(pr.m, pr.x, pr.y, &pr.lp, &losses[i]);
    if (st == VX_OK)
      st = vx_adam_step(ctx, vx_model_parameters(pr.m), vx_model_gradients(pr.m), mom, vel, i + 1, 3e-3f, 0.9f,
                        0.999f, 1e-8f, 0.0f, 0);
  }
  *final = st == VX_OK ? malloc(P * sizeof(float)) : NULL;
  if (*final) st = vx_tensor_download(vx_model_parameters(pr.m), *final);
  vx_tensor_destroy(mom);
  vx_tensor_destroy(vel);
  free_problem(&pr);
  return st;
}

static void test_training(vx_context *ctx) {
  enum { MAX_STEPS = 12 };
  int f = 4, N = 2, K = 3, steps = MAX_STEPS;
  float l1[MAX_STEPS], l2[MAX_STEPS];
  float *p1 = NULL, *p2 = NULL;
  vx_status st = train_run(ctx, f, N, K, steps, l1, &p1);
  CHECK(st == VX_OK, "training run 1: %s", vx_context_last_error(ctx));
  if (st == VX_OK) st = train_run(ctx, f, N, K, steps, l2, &p2);
  CHECK(st == VX_OK, "training run 2: %s", vx_context_last_error(ctx));
  if (st == VX_OK) {
    printf("Adam, %d steps (f=%d, batch %d, 32^3): loss %.4f -> %.4f\n", steps, f, N, (double)l1[0],
           (double)l1[steps - 1]);
    CHECK(l1[steps - 1] < 0.9f * l1[0], "loss did not fall: %g -> %g", (double)l1[0], (double)l1[steps - 1]);
    CHECK(!memcmp(l1, l2, (size_t)steps * sizeof(float)), "losses differ between two identical runs");
    size_t P = 0;
    /* same configuration, same parameter count: compare the whole flat buffer */
    vx_model_config cfg;
    vx_model_config_init(&cfg, "uxnet");
    cfg.base_channels = f;
    cfg.classes = K;
    int xs[5] = {N, 1, 32, 32, 32};
    vx_model *m = NULL;
    if (vx_model_plan(ctx, &cfg, xs, &m) == VX_OK) P = m->params.count;
    vx_model_destroy(m);
    CHECK(P > 0 && !memcmp(p1, p2, P * sizeof(float)), "parameters differ between two identical runs");
  }
  free(p1);
  free(p2);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  int small = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--small")) small = 1;
    else { fprintf(stderr, "usage: test_uxnet [--small]\n"); return 2; }
  }
  setvbuf(stdout, NULL, _IOLBF, 0); /* progress visible under Oclgrind */
  char err[2048];
  vx_context *ctx = NULL;
  vx_status st = vx_context_create(NULL, &ctx, err, sizeof err);
  if (st != VX_OK) {
    printf("no OpenCL device: %s\n", err);
    return 77;
  }
  printf("device: %s\n", vx_context_device(ctx)->name);
  double t0 = now();
  test_plan(ctx);
  test_refusal(ctx);
  double t1 = now();
  /* Finite differences in float need a smooth loss to be tight: with LeakyReLU slope 1 (no
   * kinks) every kind of parameter is checked closely; with the real slope 0.01 the layers
   * with clear gradients, more loosely (the step crosses kinks). */
  static const char *every[] = {
      "stem.conv.weight",          "stem.norm.weight",          "stages.0.0.dwconv.weight",
      "stages.0.1.dwconv.bias",    "stages.1.0.pwconv1.weight", "stages.2.1.pwconv1.bias",
      "stages.1.1.pwconv2.weight", "stages.0.0.gamma",          "stages.3.1.gamma",
      "stages.2.0.norm.bias",      "downsample.1.conv.weight",  "downsample.3.norm.weight",
      "stages.1.out_norm.weight",  "encoder1.conv1.weight",     "encoder2.conv3.weight",
      "encoder3.conv2.weight",     "encoder5.conv1.weight",     "decoder5.transp_conv.weight",
      "decoder2.conv1.weight",     "decoder3.conv3.weight",     "decoder1.conv2.weight",
      "out.weight",                "out.bias"};
  static const char *kinked[] = {"stem.conv.weight",      "stages.0.0.dwconv.weight", "stages.0.0.gamma",
                                 "encoder1.conv1.weight", "encoder3.conv2.weight",    "decoder3.conv3.weight",
                                 "decoder2.conv1.weight", "decoder1.conv2.weight",    "out.weight"};
  if (small) {
    /* Oclgrind: one training step of the smallest network (base 1 would leave 1-channel
     * LayerNorms, whose output is a constant) */
    test_gradients(ctx, 2, 1, 2, 0.01f, NULL, 0, 0, 0.0);
  } else {
    test_gradients(ctx, 4, 2, 3, 1.0f, every, (int)(sizeof every / sizeof *every), 3, 5e-2);
    test_gradients(ctx, 4, 2, 3, 0.01f, kinked, (int)(sizeof kinked / sizeof *kinked), 2, 5e-2);
  }
  double t2 = now();
  if (!small) test_training(ctx);
  printf("seconds: plan and refusal %.1f, gradients %.1f, training %.1f\n", t1 - t0, t2 - t1, now() - t2);
  vx_context_destroy(ctx);
  return CHECK_SUMMARY();
}
