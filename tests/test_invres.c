/* test_invres: coupling blocks and the invertible networks (invres-partial, invres-full) with the
 * VAE branch, on the default OpenCL device.
 *
 *   test_invres [--small] [-v]
 *
 * (a) a stack of 16 coupling blocks (additive and affine, random weights): inverse(forward(x))
 *     rebuilds x to 1e-5 relative (max |x' - x| / max |x|) in float32;
 * (b) one block's memory-free backward (rebuild + recompute) against central finite differences
 *     in the input and in weights, and against plain backprop through stored activations;
 * (c) both networks train a few Adam steps on a tiny synthetic batch: loss falls, gradients
 *     finite, two runs bitwise identical; inference forward gives the input's shape;
 * (d) memory: invres-full planned at 64^3, depth 2 vs 16 (activation growth <= 10%), against
 *     unet3d at equal base channels (<= 1/3 of its activations); measured peaks of real steps;
 * (e) the VAE branch's gradients (features and weights) against finite differences;
 * (f) odd sizes are padded and cropped; odd channels and an odd VAE bottleneck are refused.
 * --small (Oclgrind) shrinks every case and skips (d)'s measured steps.
 * One line per failed check, then "N passed, M failed"; exit 1 on failure, 77 without a device. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "nn/coupling.h"
#include "nn/vae.h"
#include "voxcl.h"

static int small_mode, verbose;
static vx_context *ctx;
static uint64_t rng = 0x1234567ULL;

static double randn(void) { return vx_rng_normal(&rng); }

static float *host_randn(size_t n, double scale) {
  float *p = malloc(n * sizeof *p);
  for (size_t i = 0; i < n; i++) p[i] = (float)(scale * randn());
  return p;
}

static vx_tensor *dev(const int s[5], const float *host) {
  vx_tensor *t = NULL;
  if (vx_tensor_create(ctx, s, &t) != VX_OK) return NULL;
  if (host) vx_tensor_upload(t, host);
  else vx_tensor_fill(t, 0.0f);
  return t;
}

static float *fetch(const vx_tensor *t) {
  float *p = malloc(vx_tensor_numel(t) * sizeof *p);
  vx_tensor_download(t, p);
  return p;
}

static double dot_r(const vx_tensor *y, const float *r) {
  float *h = fetch(y);
  double s = 0;
  for (size_t i = 0; i < vx_tensor_numel(y); i++) s += (double)h[i] * r[i];
  free(h);
  return s;
}

/* ---------------------------------------------------------------- a standalone stack of blocks */
typedef struct {
  vx_param_set ps;
  vx_arena ar;
  vx_coupling_scratch sc;
  vx_coupling b[16];
  int n;
} stack_t_;

static vx_status stack_build(stack_t_ *s, int n, vx_coupling_kind kind, const int shape[5], uint64_t seed) {
  memset(s, 0, sizeof *s);
  s->n = n;
  vx_params_init(&s->ps, ctx, seed);
  vx_arena_init(&s->ar, ctx);
  for (int i = 0; i < n; i++) {
    char name[32];
    snprintf(name, sizeof name, "blocks.%d", i);
    vx_coupling_declare(&s->b[i], ctx, &s->ps, &s->sc, name, kind, shape, 0.01f, NULL);
  }
  vx_coupling_scratch_declare(&s->sc, &s->ar, 0);
  vx_status st = vx_params_allocate(&s->ps);
  if (st == VX_OK) st = vx_arena_allocate(&s->ar);
  if (st != VX_OK) return st;
  /* random norm parameters too (not only the Kaiming convolutions) */
  float *p = fetch(s->ps.flat);
  for (size_t i = 0; i < s->ps.count; i++) p[i] += (float)(0.1 * randn());
  st = vx_tensor_upload(s->ps.flat, p);
  free(p);
  return st;
}

static void stack_free(stack_t_ *s) {
  vx_params_release(&s->ps);
  vx_arena_release(&s->ar);
}

static double max_rel(const float *a, const float *b, size_t n) {
  double e = 0, m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]);
    if (d > e) e = d;
    if (fabs((double)b[i]) > m) m = fabs((double)b[i]);
  }
  return e / (m > 0 ? m : 1);
}

/* (a) */
static void test_inverse(void) {
  int shape[5] = {2, 8, 8, 8, 8};
  if (small_mode) { shape[0] = 1; shape[1] = 4; shape[2] = shape[3] = shape[4] = 4; }
  size_t n = (size_t)shape[0] * shape[1] * shape[2] * shape[3] * shape[4];
  for (int kind = 0; kind < 2; kind++) {
    stack_t_ s;
    int depth = small_mode ? 4 : 16;
    vx_status st = stack_build(&s, depth, kind ? VX_COUPLING_AFFINE : VX_COUPLING_ADDITIVE, shape, 77 + kind);
    CHECK(st == VX_OK, "stack build: %s", vx_context_last_error(ctx));
    float *x = host_randn(n, 1.0);
    vx_tensor *t = dev(shape, x);
    st = vx_coupling_stack_forward(s.b, depth, t);
    float *y = fetch(t);
    if (st == VX_OK) st = vx_coupling_stack_inverse(s.b, depth, t);
    float *xr = fetch(t);
    double e = max_rel(xr, x, n), moved = max_rel(y, x, n);
    printf("(a) %s coupling, %d blocks, x %dx%dx%dx%dx%d: inverse error %.3g relative (output moved %.3g)\n",
           kind ? "affine" : "additive", depth, shape[0], shape[1], shape[2], shape[3], shape[4], e, moved);
    CHECK(st == VX_OK && e <= 1e-5 && moved > 0.1, "%s inverse: status %d, error %g, moved %g",
          kind ? "affine" : "additive", st, e, moved);
    free(x);
    free(y);
    free(xr);
    vx_tensor_destroy(t);
    stack_free(&s);
  }
}

/* (b) one block: memory-free backward vs finite differences and vs stored-activation backprop */
typedef struct {
  stack_t_ *s;
  vx_tensor *x;
  const float *x0, *r;
} fd_state;

static double block_loss(fd_state *f) {
  vx_tensor_upload(f->x, f->x0);
  vx_coupling_forward(&f->s->b[0], f->x);
  return dot_r(f->x, f->r);
}

static void test_block_gradients(void) {
  int shape[5] = {1, 4, 4, 3, 3};
  size_t n = 4 * 4 * 3 * 3;
  for (int kind = 0; kind < 2; kind++) {
    const char *kn = kind ? "affine" : "additive";
    stack_t_ s;
    vx_status st = stack_build(&s, 1, kind ? VX_COUPLING_AFFINE : VX_COUPLING_ADDITIVE, shape, 99 + kind);
    CHECK(st == VX_OK, "block build: %s", vx_context_last_error(ctx));
    float *x0 = host_randn(n, 1.0), *r = host_randn(n, 1.0);
    vx_tensor *x = dev(shape, x0), *dy = dev(shape, r);
    st = vx_coupling_forward(&s.b[0], x);
    vx_tensor_fill(s.ps.flat_grad, 0.0f);
    if (st == VX_OK) st = vx_coupling_backward(&s.b[0], x, dy);
    CHECK(st == VX_OK, "%s backward: %s", kn, vx_context_last_error(ctx));
    float *dx = fetch(dy), *gw = fetch(s.ps.flat_grad), *xr = fetch(x);
    CHECK(max_rel(xr, x0, n) < 1e-5, "%s backward rebuilds x: %g", kn, max_rel(xr, x0, n));
    /* central differences of L = sum(r .* y) */
    fd_state f = {&s, x, x0, r};
    float *xp = malloc(n * sizeof *xp);
    memcpy(xp, x0, n * sizeof *xp);
    f.x0 = xp;
    const double h = 5e-4; /* small: LeakyReLU kinks lie within larger steps of some weights */
    double worst = 0, gmax = 0;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(dx[i]));
    for (size_t i = 0; i < n; i += small_mode ? 61 : 7) {
      xp[i] = x0[i] + (float)h;
      double lp = block_loss(&f);
      xp[i] = x0[i] - (float)h;
      double lm = block_loss(&f);
      xp[i] = x0[i];
      double fd = (lp - lm) / (2 * h), err = fabs(fd - dx[i]) / (gmax + 1e-12);
      if (err > worst) worst = err;
    }
    printf("(b) %s block: dL/dx vs central differences: worst %.3g of max |g| %.3g\n", kn, worst, gmax);
    CHECK(worst < 2e-2, "%s dL/dx vs FD: %g", kn, worst);
    /* a few weights: F.conv0, F.norm0.weight, G.conv1, G.norm1.bias */
    f.x0 = x0;
    float *p = fetch(s.ps.flat);
    const char *names[] = {"blocks.0.F.conv0.weight", "blocks.0.F.norm0.weight", "blocks.0.G.conv1.weight",
                           "blocks.0.G.norm1.bias"};
    double wworst = 0, wmax = 0;
    for (size_t i = 0; i < s.ps.count; i++) wmax = fmax(wmax, fabs(gw[i]));
    for (int k = 0; k < 4; k++) {
      for (int d = 0; d < s.ps.n; d++) {
        if (strcmp(s.ps.decl[d].name, names[k])) continue;
        size_t stride = small_mode ? s.ps.decl[d].numel : s.ps.decl[d].numel / 3 + 1;
        for (size_t j = 0; j < s.ps.decl[d].numel; j += stride) {
          size_t o = s.ps.decl[d].offset + j;
          float keep = p[o];
          p[o] = keep + (float)h;
          vx_tensor_upload(s.ps.flat, p);
          double lp = block_loss(&f);
          p[o] = keep - (float)h;
          vx_tensor_upload(s.ps.flat, p);
          double lm = block_loss(&f);
          p[o] = keep;
          vx_tensor_upload(s.ps.flat, p);
          double fd = (lp - lm) / (2 * h), err = fabs(fd - gw[o]) / (wmax + 1e-12);
          if (verbose) printf("  %s[%zu]: fd %.6g dev %.6g\n", names[k], j, fd, gw[o]);
          if (err > wworst) wworst = err;
        }
      }
    }
    printf("(b) %s block: weight gradients vs central differences: worst %.3g of max |g| %.3g\n", kn, wworst, wmax);
    CHECK(wworst < 2e-2, "%s dL/dw vs FD: %g", kn, wworst);

    if (kind == 0) {
      /* plain backprop through stored activations (x kept, y1 stored), same sub-networks */
      vx_tensor *xs = dev(shape, x0);
      int hs[5] = {1, 2, 4, 3, 3};
      vx_tensor x1 = vx_view_at(xs, 0, hs), x2 = vx_view_at(xs, n / 2, hs);
      vx_tensor *y1 = dev(hs, NULL), *fo = dev(hs, NULL), *go = dev(hs, NULL);
      vx_tensor *gd = dev(shape, r);
      vx_tensor g1 = vx_view_at(gd, 0, hs), g2 = vx_view_at(gd, n / 2, hs);
      vx_coupling *b = &s.b[0];
      vx_tensor_fill(s.ps.flat_grad, 0.0f);
      st = b->F->ops->forward(b->F, &x2, fo);
      if (st == VX_OK) st = vx_tensor_copy(y1, &x1);
      if (st == VX_OK) st = vx_axpy(ctx, 1.0f, fo, y1);
      if (st == VX_OK) st = b->G->ops->forward(b->G, y1, go);
      if (st == VX_OK) st = b->G->ops->backward(b->G, y1, go, &g2, &g1);
      if (st == VX_OK) st = b->F->ops->forward(b->F, &x2, fo);
      if (st == VX_OK) st = b->F->ops->backward(b->F, &x2, fo, &g1, &g2);
      float *dx2 = fetch(gd), *gw2 = fetch(s.ps.flat_grad);
      double e1 = max_rel(dx, dx2, n), e2 = max_rel(gw, gw2, s.ps.count);
      printf("(b) additive block: rebuilt vs stored activations: dx %.3g, dw %.3g relative\n", e1, e2);
      CHECK(st == VX_OK && e1 < 1e-4 && e2 < 1e-4, "rebuilt vs stored backprop: dx %g dw %g", e1, e2);
      free(dx2);
      free(gw2);
      vx_tensor_destroy(xs);
      vx_tensor_destroy(y1);
      vx_tensor_destroy(fo);
      vx_tensor_destroy(go);
      vx_tensor_destroy(gd);
    }
    free(p);
    free(xp);
    free(x0);
    free(r);
    free(dx);
    free(gw);
    free(xr);
    vx_tensor_destroy(x);
    vx_tensor_destroy(dy);
    stack_free(&s);
  }
}

/* ---------------------------------------------------------------- (c) training */
static int all_finite(const float *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(p[i])) return 0;
  return 1;
}

/* Trains 'steps' Adam steps; losses[] gets each step's loss; *params the final parameters. */
static vx_status train_run(const vx_model_config *cfg, const int shape[5], int steps, float *losses, float **params,
                           int *grads_finite) {
  vx_model *m = NULL;
  vx_status st = vx_model_create(ctx, cfg, shape, &m);
  if (st != VX_OK) return st;
  size_t nv = (size_t)shape[2] * shape[3] * shape[4], nx = nv * (size_t)shape[0];
  float *img = malloc(nx * sizeof *img), *lab = malloc(nx * sizeof *lab);
  for (int b = 0; b < shape[0]; b++) vx_synth_case(42 + (uint64_t)b, shape[2], shape[3], shape[4], img + b * nv, lab + b * nv);
  int ls[5] = {shape[0], 1, shape[2], shape[3], shape[4]};
  vx_tensor *x = dev(shape, img), *y = dev(ls, lab);
  vx_tensor *P = vx_model_parameters(m), *G = vx_model_gradients(m);
  vx_tensor *mo = dev(vx_tensor_shape(P), NULL), *vo = dev(vx_tensor_shape(P), NULL);
  *grads_finite = 1;
  for (int i = 0; i < steps && st == VX_OK; i++) {
    st = vx_model_train_step(m, x, y, NULL, &losses[i]);
    if (st == VX_OK) {
      float *g = fetch(G);
      if (!all_finite(g, vx_tensor_numel(G))) *grads_finite = 0;
      free(g);
      st = vx_adam_step(ctx, P, G, mo, vo, i + 1, 3e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 0);
    }
  }
  if (st == VX_OK) {
    st = vx_model_forward(m, x);
    const int *os = vx_tensor_shape(vx_model_output(m));
    CHECK(st == VX_OK && os[1] == cfg->classes && os[2] == shape[2] && os[3] == shape[3] && os[4] == shape[4],
          "%s inference output shape", cfg->name);
  }
  *params = fetch(P);
  free(img);
  free(lab);
  vx_tensor_destroy(x);
  vx_tensor_destroy(y);
  vx_tensor_destroy(mo);
  vx_tensor_destroy(vo);
  vx_model_destroy(m);
  return st;
}

static void test_training(void) {
  const char *names[] = {"invres-partial", "invres-full"};
  int shape[5] = {2, 1, 16, 16, 16};
  int steps = small_mode ? 1 : 12;
  if (small_mode) { shape[0] = 1; shape[2] = shape[3] = shape[4] = 8; }
  for (int k = 0; k < 2; k++) {
    vx_model_config cfg;
    vx_model_config_init(&cfg, names[k]);
    cfg.levels = small_mode ? 2 : 3;
    cfg.base_channels = small_mode ? 2 : 4;
    cfg.depth = small_mode ? 1 : 2;
    cfg.vae = k == 1 && !small_mode; /* the full network trains with the VAE branch */
    float l1[16], l2[16];
    float *p1 = NULL, *p2 = NULL;
    int f1 = 0, f2 = 0;
    vx_status st = train_run(&cfg, shape, steps, l1, &p1, &f1);
    CHECK(st == VX_OK, "%s training: %s", names[k], vx_context_last_error(ctx));
    if (st != VX_OK) { free(p1); continue; }
    /* Oclgrind: one run (the bitwise comparison is the normal run's) */
    vx_status st2 = small_mode ? st : train_run(&cfg, shape, steps, l2, &p2, &f2);
    if (small_mode) { memcpy(l2, l1, sizeof l2); f2 = f1; p2 = malloc(1); }
    vx_model *pm = NULL;
    size_t np = 0;
    if (vx_model_plan(ctx, &cfg, shape, &pm) == VX_OK) np = pm->params.count;
    vx_model_destroy(pm);
    printf("(c) %s%s: loss %.4f -> %.4f over %d Adam steps\n", names[k], cfg.vae ? " + VAE" : "", l1[0],
           l1[steps - 1], steps);
    if (!small_mode) CHECK(l1[steps - 1] < l1[0], "%s loss falls: %g -> %g", names[k], l1[0], l1[steps - 1]);
    CHECK(f1 && f2, "%s gradients finite", names[k]);
    CHECK(st2 == VX_OK && !memcmp(l1, l2, (size_t)steps * sizeof(float)) && p2 &&
              (small_mode || !memcmp(p1, p2, np * sizeof(float))),
          "%s: two runs bitwise identical", names[k]);
    free(p1);
    free(p2);
  }
}

/* ---------------------------------------------------------------- (d) memory */
static size_t act_bytes(const char *name, int depth, int base, const int shape[5], size_t *total) {
  vx_model_config cfg;
  vx_model_config_init(&cfg, name);
  cfg.base_channels = base;
  cfg.depth = depth;
  vx_model *m = NULL;
  if (vx_model_plan(ctx, &cfg, shape, &m) != VX_OK) {
    printf("plan %s: %s\n", name, vx_context_last_error(ctx));
    return 0;
  }
  size_t a = m->arena.count * sizeof(float);
  if (total) *total = vx_model_device_bytes(m);
  vx_model_destroy(m);
  return a;
}

/* Peak device bytes of one real training step in a fresh context (params, arena, workspace). */
static uint64_t measured_peak(const char *name, int depth, int base, const int shape[5]) {
  vx_context *c = NULL;
  char err[512];
  if (vx_context_create(NULL, &c, err, sizeof err) != VX_OK) return 0;
  vx_context *keep = ctx;
  ctx = c;
  vx_model_config cfg;
  vx_model_config_init(&cfg, name);
  cfg.base_channels = base;
  cfg.depth = depth;
  cfg.levels = 3;
  size_t nv = (size_t)shape[0] * shape[2] * shape[3] * shape[4];
  float *img = calloc(nv, sizeof *img), *lab = calloc(nv, sizeof *lab);
  for (size_t i = 0; i < nv; i++) img[i] = (float)randn();
  int ls[5] = {shape[0], 1, shape[2], shape[3], shape[4]};
  vx_tensor *x = dev(shape, img), *y = dev(ls, lab);
  vx_model *m = NULL;
  float loss;
  vx_status st = vx_model_create(c, &cfg, shape, &m);
  vx_context_reset_peak(c);
  if (st == VX_OK) st = vx_model_train_step(m, x, y, NULL, &loss);
  vx_context_finish(c);
  vx_context_stats s;
  vx_context_get_stats(c, &s);
  if (st != VX_OK) printf("measured %s: %s\n", name, vx_context_last_error(c));
  vx_model_destroy(m);
  vx_tensor_destroy(x);
  vx_tensor_destroy(y);
  free(img);
  free(lab);
  vx_context_destroy(c);
  ctx = keep;
  return st == VX_OK ? s.device_bytes_peak : 0;
}

static void test_memory(void) {
  int shape[5] = {2, 1, 64, 64, 64};
  size_t t2 = 0, t16 = 0, tu = 0;
  size_t a2 = act_bytes("invres-full", 2, 16, shape, &t2), a16 = act_bytes("invres-full", 16, 16, shape, &t16);
  size_t ap2 = act_bytes("invres-partial", 2, 16, shape, NULL), ap16 = act_bytes("invres-partial", 16, 16, shape, NULL);
  size_t au = act_bytes("unet3d", 2, 16, shape, &tu);
  const double MB = 1048576.0;
  printf("(d) planned activations at 2x1x64^3, base 16, 4 levels: invres-full depth 2 %.1f MB, depth 16 %.1f MB "
         "(+%.1f%%); invres-partial depth 2 %.1f MB, depth 16 %.1f MB; unet3d %.1f MB (full/unet3d = %.3f)\n",
         a2 / MB, a16 / MB, 100.0 * ((double)a16 / (double)a2 - 1), ap2 / MB, ap16 / MB, au / MB,
         (double)a2 / (double)au);
  printf("(d) planned device bytes incl. parameters and gradients: invres-full depth 2 %.1f MB, depth 16 %.1f MB; "
         "unet3d %.1f MB\n", t2 / MB, t16 / MB, tu / MB);
  CHECK(a2 > 0 && a16 <= a2 + a2 / 10, "invres-full activations grow with depth: %zu -> %zu", a2, a16);
  CHECK(ap2 > 0 && ap16 <= ap2 + ap2 / 10, "invres-partial activations grow with depth: %zu -> %zu", ap2, ap16);
  CHECK(au > 0 && 3 * a2 <= au, "invres-full activations %zu > a third of unet3d's %zu", a2, au);
  if (small_mode) return;
  int ms[5] = {1, 1, 32, 32, 32};
  uint64_t p2 = measured_peak("invres-full", 2, 8, ms), p8 = measured_peak("invres-full", 8, 8, ms);
  uint64_t pu = measured_peak("unet3d", 2, 8, ms);
  printf("(d) measured peak device bytes of one training step at 1x1x32^3, base 8, 3 levels (params, arena, "
         "workspace): invres-full depth 2 %.2f MB, depth 8 %.2f MB (+%.1f%%); unet3d %.2f MB\n",
         p2 / MB, p8 / MB, 100.0 * ((double)p8 / (double)p2 - 1), pu / MB);
  CHECK(p2 > 0 && p8 > 0 && pu > 0, "measured peaks");
}

/* ---------------------------------------------------------------- (e) VAE gradients */
typedef struct {
  vx_vae *v;
  vx_tensor *feat, *x, *dfeat;
} vae_state;

static double vae_loss(vae_state *s) {
  float l = 0;
  vx_vae_train(s->v, s->feat, s->x, 7, &l, s->dfeat);
  return l;
}

static void test_vae(void) {
  vx_model *m = calloc(1, sizeof *m);
  vx_model_config_init(&m->cfg, "invres-partial");
  m->ctx = ctx;
  m->cfg.in_channels = 2;
  int in[5] = {2, 2, 8, 8, 8};
  if (small_mode) { in[0] = 1; in[2] = in[3] = in[4] = 4; } /* Oclgrind: bottleneck 1x1x1 */
  memcpy(m->in_shape, in, sizeof in);
  vx_params_init(&m->params, ctx, 5);
  vx_arena_init(&m->arena, ctx);
  int ch[2] = {4, 8}, sp[2][3] = {{in[2], in[3], in[4]}, {in[2] / 2, in[3] / 2, in[4] / 2}};
  vx_vae v;
  vx_status st = vx_vae_declare(&v, m, 2, ch, (const int(*)[3])sp);
  if (st == VX_OK) st = vx_params_allocate(&m->params);
  if (st == VX_OK) st = vx_arena_allocate(&m->arena);
  CHECK(st == VX_OK, "vae build: %s", vx_context_last_error(ctx));
  if (st != VX_OK) goto done;
  int fs[5] = {in[0], 8, sp[1][0], sp[1][1], sp[1][2]};
  size_t nf = (size_t)in[0] * 8 * sp[1][0] * sp[1][1] * sp[1][2], nx = (size_t)in[0] * 2 * in[2] * in[3] * in[4];
  float *fh = host_randn(nf, 1.0), *xh = host_randn(nx, 1.0);
  vae_state s = {&v, dev(fs, fh), dev(in, xh), dev(fs, NULL)};
  vx_tensor_fill(m->params.flat_grad, 0.0f);
  double l0 = vae_loss(&s);
  float *df = fetch(s.dfeat), *gw = fetch(m->params.flat_grad), *p = fetch(m->params.flat);
  const double h = 2e-3;
  double worst = 0, gmax = 0;
  for (size_t i = 0; i < nf; i++) gmax = fmax(gmax, fabs(df[i]));
  for (size_t i = 0; i < nf; i += small_mode ? nf : 37) {
    float keep = fh[i];
    fh[i] = keep + (float)h;
    vx_tensor_upload(s.feat, fh);
    double lp = vae_loss(&s);
    fh[i] = keep - (float)h;
    vx_tensor_upload(s.feat, fh);
    double lm = vae_loss(&s);
    fh[i] = keep;
    vx_tensor_upload(s.feat, fh);
    double err = fabs((lp - lm) / (2 * h) - df[i]) / (gmax + 1e-12);
    if (err > worst) worst = err;
  }
  printf("(e) VAE loss %.4f; dL/dfeatures vs central differences: worst %.3g of max |g| %.3g\n", l0, worst, gmax);
  CHECK(worst < 3e-2, "VAE dL/dfeatures vs FD: %g", worst);
  double wworst = 0;
  int checked = 0;
  for (int d = 0; d < m->params.n; d += small_mode ? 10 : 1) {
    double dmax = 0;
    for (size_t j = 0; j < m->params.decl[d].numel; j++) dmax = fmax(dmax, fabs(gw[m->params.decl[d].offset + j]));
    size_t stride = small_mode ? m->params.decl[d].numel : m->params.decl[d].numel / 2 + 1;
    for (size_t j = 0; j < m->params.decl[d].numel; j += stride) {
      size_t o = m->params.decl[d].offset + j;
      float keep = p[o];
      p[o] = keep + (float)h;
      vx_tensor_upload(m->params.flat, p);
      double lp = vae_loss(&s);
      p[o] = keep - (float)h;
      vx_tensor_upload(m->params.flat, p);
      double lm = vae_loss(&s);
      p[o] = keep;
      vx_tensor_upload(m->params.flat, p);
      double fd = (lp - lm) / (2 * h), err = fabs(fd - gw[o]) / (dmax + 1e-6);
      if (verbose || err > 5e-2) printf("  %s[%zu]: fd %.6g dev %.6g\n", m->params.decl[d].name, j, fd, gw[o]);
      if (err > wworst) wworst = err;
      checked++;
    }
  }
  printf("(e) VAE weights: %d entries over %d tensors vs central differences: worst %.3g of each tensor's max |g|\n",
         checked, m->params.n, wworst);
  CHECK(wworst < 5e-2, "VAE dL/dw vs FD: %g", wworst);
  free(fh);
  free(xh);
  free(df);
  free(gw);
  free(p);
  vx_tensor_destroy(s.feat);
  vx_tensor_destroy(s.x);
  vx_tensor_destroy(s.dfeat);
done:
  vx_params_release(&m->params);
  vx_arena_release(&m->arena);
  free(m->layers);
  free(m);
}

/* ---------------------------------------------------------------- (f) sizes */
static void test_sizes(void) {
  vx_model_config cfg;
  vx_model_config_init(&cfg, "invres-full");
  cfg.levels = 3;
  cfg.base_channels = 4;
  cfg.depth = 1;
  int odd[5] = {1, 1, 13, 10, 9};
  if (small_mode) { cfg.levels = 2; cfg.base_channels = 2; odd[2] = 3; odd[3] = 4; odd[4] = 3; }
  vx_model *m = NULL;
  vx_status st = vx_model_create(ctx, &cfg, odd, &m);
  CHECK(st == VX_OK, "odd input padded: %s", vx_context_last_error(ctx));
  if (st == VX_OK) {
    size_t nv = (size_t)odd[2] * odd[3] * odd[4];
    float *img = host_randn(nv, 1.0), *lab = calloc(nv, sizeof *lab);
    for (size_t i = 0; i < nv; i++) lab[i] = (float)(i % 3);
    int ls[5] = {1, 1, odd[2], odd[3], odd[4]};
    vx_tensor *x = dev(odd, img), *y = dev(ls, lab);
    float loss = 0;
    st = vx_model_train_step(m, x, y, NULL, &loss);
    const int *os = vx_tensor_shape(vx_model_output(m));
    CHECK(st == VX_OK && isfinite(loss) && os[2] == odd[2] && os[3] == odd[3] && os[4] == odd[4],
          "odd input %dx%dx%d: train step %d (%s), loss %g, output %dx%dx%d", odd[2], odd[3], odd[4], st,
          vx_context_last_error(ctx), loss, os[2], os[3], os[4]);
    printf("(f) invres-full on %dx%dx%d with %d levels (padded to multiples of %d, cropped back): loss %.4f\n", odd[2],
           odd[3], odd[4], cfg.levels, 1 << (cfg.levels - 1), loss);
    free(img);
    free(lab);
    vx_tensor_destroy(x);
    vx_tensor_destroy(y);
  }
  vx_model_destroy(m);
  m = NULL;
  cfg.base_channels = 5;
  st = vx_model_plan(ctx, &cfg, odd, &m);
  CHECK(st == VX_ERR_INVALID_ARGUMENT && strstr(vx_context_last_error(ctx), "even"), "odd channels refused: %s",
        vx_context_last_error(ctx));
  printf("(f) odd channels: %s\n", vx_context_last_error(ctx));
  vx_model_destroy(m);
  m = NULL;
  cfg.base_channels = 4;
  cfg.vae = 1;
  cfg.levels = 2;
  int six[5] = {1, 1, 6, 6, 6};
  st = vx_model_plan(ctx, &cfg, six, &m);
  CHECK(st == VX_ERR_SHAPE && strstr(vx_context_last_error(ctx), "3x3x3"), "odd VAE bottleneck refused: %s",
        vx_context_last_error(ctx));
  printf("(f) odd VAE bottleneck: %s\n", vx_context_last_error(ctx));
  vx_model_destroy(m);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--small")) small_mode = 1;
    else if (!strcmp(argv[i], "-v")) verbose = 1;
  }
  char err[1024];
  if (vx_context_create(NULL, &ctx, err, sizeof err) != VX_OK) {
    printf("no OpenCL device: %s\n", err);
    return 77;
  }
  printf("device: %s\n", vx_context_device(ctx)->name);
  void (*parts[])(void) = {test_inverse, test_block_gradients, test_vae, test_sizes, test_memory, test_training};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    parts[i]();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (verbose) printf("  [part %zu: %.1f s]\n", i, (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
  }
  vx_context_destroy(ctx);
  return CHECK_SUMMARY();
}
