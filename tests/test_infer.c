/* Inference machinery and evaluation, against direct double-precision implementations written
 * here: sliding-window placement, Gaussian weights, weighted averaging (pointwise and
 * position-dependent callbacks, padding, mirroring), Dice, the exact EDT and HD95 (brute
 * force), and vx_evaluate_folders end to end on NIfTI files in a temporary folder.
 * No OpenCL needed. Prints one line per check and "N passed, M failed"; exits 1 on failure. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "voxcl.h"

static int g_pass, g_fail;

static void report(const char *name, int ok, const char *detail) {
  if (ok) g_pass++;
  else g_fail++;
  printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", name, detail && *detail ? ": " : "", detail ? detail : "");
}

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static double urand(void) { /* splitmix64 */
  uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return (double)(z >> 11) / 9007199254740992.0;
}

static size_t vol3(const int d[3]) { return (size_t)d[0] * (size_t)d[1] * (size_t)d[2]; }

/* ------------------------------------------------------------------ reference sliding window */
/* nnU-Net's compute_steps_for_sliding_window, written from its formula. */
static int ref_steps(int size, int patch, double overlap, int *starts) {
  int padded = size > patch ? size : patch;
  int n = (int)ceil((double)(padded - patch) / ((double)patch * (1.0 - overlap)) - 1e-9) + 1;
  for (int i = 0; i < n; i++) starts[i] = n == 1 ? 0 : (int)nearbyint((double)(padded - patch) / (n - 1) * i);
  return n;
}

static double ref_gauss(const int p[3], int z, int y, int x) {
  int q[3] = {z, y, x};
  double w = 1.0;
  for (int a = 0; a < 3; a++) {
    double s = p[a] / 8.0, d = q[a] - p[a] / 2;
    w *= exp(-d * d / (2 * s * s));
  }
  return w; /* the centre is exactly 1: already scaled to max 1 */
}

typedef struct {
  int C, K, p[3];
  int calls;
  int kind; /* 0 pointwise, 1 position-dependent, 2 symmetric 3x3x3 box filter */
} cb_state;

/* The callbacks' maps, in double for the reference. in: [C, patch] */
static double cb_value(const cb_state *s, const double *in, int k, int z, int y, int x) {
  const int *p = s->p;
  size_t pv = vol3(p), i = ((size_t)z * p[1] + y) * p[2] + x;
  if (s->kind == 0) return (k + 1) * in[i] + 0.5 * sin(in[(s->C - 1) * pv + i]) + k;
  if (s->kind == 1) return in[i] * (1.0 + 0.1 * k) + 0.01 * (z + 2 * y + 3 * x) + 0.05 * k;
  double acc = 0;
  for (int dz = -1; dz <= 1; dz++)
    for (int dy = -1; dy <= 1; dy++)
      for (int dx = -1; dx <= 1; dx++) {
        int zz = z + dz, yy = y + dy, xx = x + dx;
        if (zz < 0 || zz >= p[0] || yy < 0 || yy >= p[1] || xx < 0 || xx >= p[2]) continue;
        acc += in[((size_t)zz * p[1] + yy) * p[2] + xx];
      }
  return acc / 27.0 + k;
}

static vx_status callback(void *user, const float *patch, float *out) {
  cb_state *s = user;
  s->calls++;
  size_t pv = vol3(s->p);
  double *in = malloc(sizeof(double) * pv * (size_t)s->C);
  for (size_t i = 0; i < pv * (size_t)s->C; i++) in[i] = patch[i];
  for (int k = 0; k < s->K; k++)
    for (int z = 0; z < s->p[0]; z++)
      for (int y = 0; y < s->p[1]; y++)
        for (int x = 0; x < s->p[2]; x++)
          out[(size_t)k * pv + ((size_t)z * s->p[1] + y) * s->p[2] + x] = (float)cb_value(s, in, k, z, y, x);
  free(in);
  return VX_OK;
}

/* The whole prediction in double: pad, place windows, (mirror), weight, divide, crop. */
static void ref_predict(const float *img, const int d[3], cb_state *s, double overlap, int mirror, double *res) {
  const int *p = s->p;
  int P[3], lo[3], *st[3], n[3];
  for (int a = 0; a < 3; a++) {
    P[a] = d[a] > p[a] ? d[a] : p[a];
    lo[a] = (P[a] - d[a]) / 2;
    st[a] = malloc(sizeof(int) * (size_t)P[a] + sizeof(int));
    n[a] = ref_steps(d[a], p[a], overlap, st[a]);
  }
  size_t PV = vol3(P), pv = vol3(p);
  double *pad = calloc(PV * s->C, sizeof(double)), *acc = calloc(PV * s->K, sizeof(double));
  double *ws = calloc(PV, sizeof(double)), *in = malloc(sizeof(double) * pv * s->C);
  double *fl = malloc(sizeof(double) * pv * s->C), *o = malloc(sizeof(double) * pv * s->K);
  for (int c = 0; c < s->C; c++)
    for (int z = 0; z < d[0]; z++)
      for (int y = 0; y < d[1]; y++)
        for (int x = 0; x < d[2]; x++)
          pad[c * PV + ((size_t)(z + lo[0]) * P[1] + y + lo[1]) * P[2] + x + lo[2]] =
              img[c * vol3(d) + ((size_t)z * d[1] + y) * d[2] + x];
  for (int iz = 0; iz < n[0]; iz++)
    for (int iy = 0; iy < n[1]; iy++)
      for (int ix = 0; ix < n[2]; ix++) {
        int s0[3] = {st[0][iz], st[1][iy], st[2][ix]};
        for (int c = 0; c < s->C; c++)
          for (int z = 0; z < p[0]; z++)
            for (int y = 0; y < p[1]; y++)
              for (int x = 0; x < p[2]; x++)
                in[c * pv + ((size_t)z * p[1] + y) * p[2] + x] =
                    pad[c * PV + ((size_t)(z + s0[0]) * P[1] + y + s0[1]) * P[2] + x + s0[2]];
        memset(o, 0, sizeof(double) * pv * s->K);
        int nf = mirror ? 8 : 1; /* all 8 here, axes of length 1 included: the same average */
        for (int f = 0; f < nf; f++) {
          int fz = f & 1, fy = f >> 1 & 1, fx = f >> 2 & 1;
#define FI(z, y, x) (((size_t)(fz ? p[0] - 1 - (z) : (z)) * p[1] + (fy ? p[1] - 1 - (y) : (y))) * p[2] + \
                     (fx ? p[2] - 1 - (x) : (x)))
          for (int c = 0; c < s->C; c++)
            for (int z = 0; z < p[0]; z++)
              for (int y = 0; y < p[1]; y++)
                for (int x = 0; x < p[2]; x++)
                  fl[c * pv + ((size_t)z * p[1] + y) * p[2] + x] = in[c * pv + FI(z, y, x)];
          for (int k = 0; k < s->K; k++)
            for (int z = 0; z < p[0]; z++)
              for (int y = 0; y < p[1]; y++)
                for (int x = 0; x < p[2]; x++) /* output at flipped position belongs to FI */
                  o[k * pv + FI(z, y, x)] += cb_value(s, fl, k, z, y, x) / nf;
#undef FI
        }
        for (int z = 0; z < p[0]; z++)
          for (int y = 0; y < p[1]; y++)
            for (int x = 0; x < p[2]; x++) {
              size_t q = ((size_t)(z + s0[0]) * P[1] + y + s0[1]) * P[2] + x + s0[2];
              double w = ref_gauss(p, z, y, x);
              ws[q] += w;
              for (int k = 0; k < s->K; k++) acc[k * PV + q] += w * o[k * pv + ((size_t)z * p[1] + y) * p[2] + x];
            }
      }
  for (int k = 0; k < s->K; k++)
    for (int z = 0; z < d[0]; z++)
      for (int y = 0; y < d[1]; y++)
        for (int x = 0; x < d[2]; x++) {
          size_t q = ((size_t)(z + lo[0]) * P[1] + y + lo[1]) * P[2] + x + lo[2];
          res[k * vol3(d) + ((size_t)z * d[1] + y) * d[2] + x] = acc[k * PV + q] / ws[q];
        }
  for (int a = 0; a < 3; a++) free(st[a]);
  free(pad), free(acc), free(ws), free(in), free(fl), free(o);
}

/* Runs vx_sliding_window_predict and compares with 'expect' (NULL: the pointwise map). */
static void check_sw(const char *name, const int d[3], const int p[3], int C, int K, float overlap, int mirror,
                     int kind, int use_ref) {
  size_t n = vol3(d);
  float *img = calloc(n * C, sizeof(float)), *probs = malloc(sizeof(float) * n * K);
  double *expect = malloc(sizeof(double) * n * K);
  for (size_t i = 0; i < n * C; i++) img[i] = (float)(urand() * 4 - 2);
  cb_state s = {.C = C, .K = K, .p = {p[0], p[1], p[2]}, .kind = kind};
  char err[256] = "";
  vx_status st = vx_sliding_window_predict(img, C, d, p, K, overlap, mirror, callback, &s, probs, NULL, NULL, err,
                                           sizeof err);
  if (use_ref) {
    cb_state r = s;
    ref_predict(img, d, &r, overlap, mirror, expect);
  } else { /* the pointwise map of the volume itself: every window predicts the same value */
    double *in = malloc(sizeof(double) * n * C);
    for (size_t i = 0; i < n * C; i++) in[i] = img[i];
    cb_state v = s;
    v.p[0] = d[0], v.p[1] = d[1], v.p[2] = d[2];
    for (int k = 0; k < K; k++)
      for (int z = 0; z < d[0]; z++)
        for (int y = 0; y < d[1]; y++)
          for (int x = 0; x < d[2]; x++) expect[k * n + ((size_t)z * d[1] + y) * d[2] + x] = cb_value(&v, in, k, z, y, x);
    free(in);
  }
  double worst = 0;
  for (size_t i = 0; i < n * K && st == VX_OK; i++) {
    double e = fabs(probs[i] - expect[i]) / (1.0 + fabs(expect[i]));
    if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
  }
  int windows = 1, flips = 1;
  for (int a = 0; a < 3; a++) {
    windows *= vx_sliding_window_steps(d[a], p[a], overlap, NULL);
    if (mirror && p[a] > 1) flips *= 2;
  }
  char msg[512];
  snprintf(msg, sizeof msg, "volume %dx%dx%d patch %dx%dx%d mirror %d: max rel err %.2e, %d calls (want %d)%s%s",
           d[0], d[1], d[2], p[0], p[1], p[2], mirror, worst, s.calls, windows * flips, *err ? " " : "", err);
  report(name, st == VX_OK && worst < 2e-6 && s.calls == windows * flips, msg);
  free(img), free(probs), free(expect);
}

static void test_steps(void) {
  int s[16], ok = 1;
  char msg[256] = "";
  struct { int size, patch; float ov; int n, st[5]; } cases[] = {
      {200, 128, 0.5f, 3, {0, 36, 72}}, {128, 128, 0.5f, 1, {0}}, {100, 128, 0.5f, 1, {0}},
      {129, 128, 0.5f, 2, {0, 1}},     {300, 128, 0.5f, 4, {0, 57, 115, 172}},
      {11, 6, 0.5f, 3, {0, 2, 5}} /* 2.5 rounds half to even, as numpy */, {20, 8, 0.0f, 3, {0, 6, 12}},
      {10, 4, 0.75f, 7, {0}}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int n = vx_sliding_window_steps(cases[c].size, cases[c].patch, cases[c].ov, s);
    int bad = n != cases[c].n;
    for (int i = 0; !bad && i < n && (i == 0 || cases[c].st[i]); i++) bad = s[i] != cases[c].st[i];
    if (!bad && s[n - 1] != (cases[c].size > cases[c].patch ? cases[c].size - cases[c].patch : 0)) bad = 1;
    if (bad) {
      ok = 0;
      snprintf(msg, sizeof msg, "size %d patch %d: %d windows", cases[c].size, cases[c].patch, n);
    }
  }
  report("window starts (nnU-Net values, last flush)", ok, msg);
  report("window starts reject bad overlap", vx_sliding_window_steps(10, 4, 1.0f, NULL) == -1 &&
                                                 vx_sliding_window_steps(10, 4, -0.1f, NULL) == -1, NULL);
}

static void test_gaussian(void) {
  int ps[][3] = {{8, 8, 8}, {5, 7, 12}, {1, 3, 2}, {48, 64, 40}};
  for (size_t c = 0; c < 4; c++) {
    int *p = ps[c];
    float *w = malloc(sizeof(float) * vol3(p));
    vx_status st = vx_sliding_window_gaussian(p, w);
    double worst = 0, mx = 0, mn = 1;
    for (int z = 0; z < p[0]; z++)
      for (int y = 0; y < p[1]; y++)
        for (int x = 0; x < p[2]; x++) {
          double r = ref_gauss(p, z, y, x), v = w[((size_t)z * p[1] + y) * p[2] + x];
          worst = fmax(worst, fabs(v - r) / r);
          mx = fmax(mx, v), mn = fmin(mn, v);
        }
    char name[64], msg[128];
    snprintf(name, sizeof name, "gaussian weights %dx%dx%d", p[0], p[1], p[2]);
    snprintf(msg, sizeof msg, "max rel err %.2e, max %.9g, min %.3g", worst, mx, mn);
    report(name, st == VX_OK && worst < 1e-6 && mx == 1.0 && mn > 0, msg);
    free(w);
  }
}

static void test_sliding_window(void) {
  /* (a) pointwise callback: the weights cancel */
  check_sw("pointwise, volume smaller than patch", (int[]){5, 6, 7}, (int[]){8, 8, 8}, 2, 3, 0.5f, 0, 0, 0);
  check_sw("pointwise, volume equal to patch", (int[]){8, 8, 8}, (int[]){8, 8, 8}, 2, 3, 0.5f, 0, 0, 0);
  check_sw("pointwise, volume larger than patch", (int[]){20, 17, 13}, (int[]){8, 8, 8}, 1, 2, 0.5f, 0, 0, 0);
  check_sw("pointwise, odd and mixed sizes", (int[]){3, 31, 11}, (int[]){4, 9, 6}, 2, 2, 0.5f, 0, 0, 0);
  check_sw("pointwise, flat volume and patch", (int[]){1, 19, 23}, (int[]){1, 8, 8}, 1, 2, 0.25f, 0, 0, 0);
  /* (c) position-dependent callback against the formula in double */
  check_sw("position-dependent, larger", (int[]){9, 14, 11}, (int[]){4, 6, 8}, 1, 2, 0.5f, 0, 1, 1);
  check_sw("position-dependent, padded axes", (int[]){3, 20, 5}, (int[]){6, 6, 6}, 2, 2, 0.25f, 0, 1, 1);
  check_sw("position-dependent, no overlap", (int[]){10, 13, 7}, (int[]){4, 5, 7}, 1, 1, 0.0f, 0, 1, 1);
  /* (d) mirroring: equivariant callbacks are unchanged, the others get the 8-way average */
  check_sw("mirror, pointwise unchanged", (int[]){11, 10, 9}, (int[]){6, 6, 6}, 2, 2, 0.5f, 1, 0, 0);
  check_sw("mirror, symmetric box filter = no mirror", (int[]){11, 10, 9}, (int[]){6, 5, 7}, 1, 2, 0.5f, 1, 2, 1);
  check_sw("mirror, position-dependent = 8-way average", (int[]){7, 10, 9}, (int[]){4, 6, 5}, 1, 2, 0.5f, 1, 1, 1);
  check_sw("mirror, axis of length 1 skipped", (int[]){1, 10, 9}, (int[]){1, 6, 5}, 1, 2, 0.5f, 1, 1, 1);
  /* the box filter without mirroring against the reference too (so the line above means equal) */
  check_sw("box filter without mirror", (int[]){11, 10, 9}, (int[]){6, 5, 7}, 1, 2, 0.5f, 0, 2, 1);

  /* a failing callback stops with its status and a message naming the window */
  float img[64] = {0}, out[128];
  char err[256] = "";
  vx_status st = vx_sliding_window_predict(img, 1, (int[]){4, 4, 4}, (int[]){2, 2, 2}, 2, 0.5f, 0,
                                           (vx_patch_fn)NULL, NULL, out, NULL, NULL, err, sizeof err);
  report("NULL callback rejected", st == VX_ERR_INVALID_ARGUMENT && *err, err);

  float probs[3 * 4] = {0.1f, 0.5f, 0.3f, 0.3f, 0.7f, 0.2f, 0.3f, 0.3f, 0.2f, 0.3f, 0.4f, 0.4f}, lab[4];
  st = vx_argmax_channels(probs, 3, 4, lab);
  report("argmax over channels (ties to the lower class)",
         st == VX_OK && lab[0] == 1 && lab[1] == 0 && lab[2] == 2 && lab[3] == 2, NULL);
}

static vx_status failing_cb(void *user, const float *patch, float *out) {
  int *n = user;
  return ++*n == 3 ? VX_ERR_OPENCL : VX_OK;
}

static void progress_cb(void *user, int done, int total) {
  int *v = user;
  if (done == v[0] + 1) v[0] = done;
  v[1] = total;
}

static void test_sw_failure_and_progress(void) {
  float img[6 * 6 * 6] = {0}, out[6 * 6 * 6];
  char err[256] = "";
  int n = 0, prog[2] = {0, 0};
  vx_status st = vx_sliding_window_predict(img, 1, (int[]){6, 6, 6}, (int[]){4, 4, 4}, 1, 0.5f, 0, failing_cb, &n,
                                           out, progress_cb, prog, err, sizeof err);
  report("callback failure returned with the window named", st == VX_ERR_OPENCL && strstr(err, "window") &&
                                                            prog[0] == 2 && prog[1] == 8, err);
}

/* ------------------------------------------------------------------ metrics */
static void test_dice(void) {
  uint8_t a[20] = {0}, b[20] = {0}, z[20] = {0};
  for (int i = 0; i < 10; i++) a[i] = 1;     /* |A| = 10 */
  for (int i = 6; i < 12; i++) b[i] = 2;     /* |B| = 6, |A and B| = 4 (any nonzero is in) */
  report("dice of hand-made masks = 0.5", fabs(vx_dice_masks(a, b, 20) - 0.5) < 1e-15, NULL);
  report("dice: both empty = 1, one empty = 0",
         vx_dice_masks(z, z, 20) == 1.0 && vx_dice_masks(a, z, 20) == 0.0 && vx_dice_masks(z, b, 20) == 0.0, NULL);
  /* label maps: class 1 as above, class 2 identical, class 3 absent from both */
  float pred[20], ref[20];
  for (int i = 0; i < 20; i++) {
    pred[i] = a[i] ? 1.0f : (i >= 15 ? 2.0f : 0.0f);
    ref[i] = b[i] ? 1.0f : (i >= 15 ? 2.0f : 0.0f);
  }
  double d[3], h[3];
  vx_status st = vx_segmentation_metrics(pred, ref, (int[]){1, 4, 5}, (float[]){1, 1, 1}, (int[]){1, 2, 3}, 3, d,
                                         h, NULL, 0);
  report("label-map metrics per class", st == VX_OK && fabs(d[0] - 0.5) < 1e-15 && d[1] == 1.0 && d[2] == 1.0 &&
                                            h[1] == 0.0 && isnan(h[2]), NULL);
}

static void rand_mask(uint8_t *m, const int d[3], double p, int blobs) {
  size_t n = vol3(d);
  for (size_t i = 0; i < n; i++) m[i] = urand() < p;
  for (int b = 0; b < blobs; b++) { /* a few solid boxes so surfaces and interiors both exist */
    int lo[3], hi[3];
    for (int a = 0; a < 3; a++) {
      lo[a] = (int)(urand() * d[a]);
      hi[a] = lo[a] + 1 + (int)(urand() * d[a] / 2);
      if (hi[a] > d[a]) hi[a] = d[a];
    }
    for (int z = lo[0]; z < hi[0]; z++)
      for (int y = lo[1]; y < hi[1]; y++)
        for (int x = lo[2]; x < hi[2]; x++) m[((size_t)z * d[1] + y) * d[2] + x] = 1;
  }
}

static void test_edt(void) {
  int ds[][3] = {{7, 9, 11}, {1, 13, 17}, {12, 5, 1}, {6, 6, 6}};
  float sps[][3] = {{2.5f, 0.7f, 1.3f}, {3.0f, 0.5f, 0.9f}, {1.0f, 1.7f, 2.0f}, {1.0f, 1.0f, 1.0f}};
  for (int c = 0; c < 4; c++) {
    int *d = ds[c];
    float *sp = sps[c];
    size_t n = vol3(d);
    uint8_t *m = malloc(n);
    double *e = malloc(sizeof(double) * n);
    rand_mask(m, d, c == 3 ? 0.0 : 0.03, 0);
    if (c == 3) m[0] = 1; /* a single site in a corner */
    vx_status st = vx_edt_squared(m, d, sp, e);
    double worst = 0;
    for (int z = 0; z < d[0]; z++)
      for (int y = 0; y < d[1]; y++)
        for (int x = 0; x < d[2]; x++) {
          double best = INFINITY;
          for (int zz = 0; zz < d[0]; zz++)
            for (int yy = 0; yy < d[1]; yy++)
              for (int xx = 0; xx < d[2]; xx++) {
                if (!m[((size_t)zz * d[1] + yy) * d[2] + xx]) continue;
                double dz = (z - zz) * (double)sp[0], dy = (y - yy) * (double)sp[1], dx = (x - xx) * (double)sp[2];
                best = fmin(best, dz * dz + dy * dy + dx * dx);
              }
          double got = e[((size_t)z * d[1] + y) * d[2] + x];
          double err = isinf(best) ? (isinf(got) ? 0 : INFINITY) : fabs(got - best) / (1 + best);
          worst = fmax(worst, err);
        }
    char name[64], msg[64];
    snprintf(name, sizeof name, "EDT vs brute force %dx%dx%d", d[0], d[1], d[2]);
    snprintf(msg, sizeof msg, "max rel err %.2e", worst);
    report(name, st == VX_OK && worst < 1e-12, msg);
    free(m), free(e);
  }
  uint8_t z[8] = {0};
  double e[8];
  vx_status st = vx_edt_squared(z, (int[]){2, 2, 2}, (float[]){1, 1, 1}, e);
  int allinf = 1;
  for (int i = 0; i < 8; i++) allinf &= isinf(e[i]) && e[i] > 0;
  report("EDT of an empty mask is +inf", st == VX_OK && allinf, NULL);
}

/* The surface and HD95 written out directly (O(|Sa| |Sb|)). */
static int surf(const uint8_t *m, const int d[3], int z, int y, int x) {
#define M(z, y, x) m[((size_t)(z) * d[1] + (y)) * d[2] + (x)]
  if (!M(z, y, x)) return 0;
  if (z == 0 || y == 0 || x == 0 || z == d[0] - 1 || y == d[1] - 1 || x == d[2] - 1) return 1;
  return !M(z - 1, y, x) || !M(z + 1, y, x) || !M(z, y - 1, x) || !M(z, y + 1, x) || !M(z, y, x - 1) ||
         !M(z, y, x + 1);
#undef M
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* NaN when either mask is empty. */
static double brute_directed95(const uint8_t *a, const uint8_t *b, const int d[3], const float sp[3]) {
  size_t n = vol3(d), c = 0, nb = 0;
  double *dist = malloc(sizeof(double) * n), *pb = malloc(sizeof(double) * 3 * n);
  for (int z = 0; z < d[0]; z++)
    for (int y = 0; y < d[1]; y++)
      for (int x = 0; x < d[2]; x++)
        if (surf(b, d, z, y, x)) {
          pb[3 * nb] = z * (double)sp[0], pb[3 * nb + 1] = y * (double)sp[1], pb[3 * nb + 2] = x * (double)sp[2];
          nb++;
        }
  for (int z = 0; z < d[0] && nb; z++)
    for (int y = 0; y < d[1]; y++)
      for (int x = 0; x < d[2]; x++) {
        if (!surf(a, d, z, y, x)) continue;
        double best = INFINITY, q[3] = {z * (double)sp[0], y * (double)sp[1], x * (double)sp[2]};
        for (size_t j = 0; j < nb; j++) {
          double dz = q[0] - pb[3 * j], dy = q[1] - pb[3 * j + 1], dx = q[2] - pb[3 * j + 2];
          best = fmin(best, sqrt(dz * dz + dy * dy + dx * dx));
        }
        dist[c++] = best;
      }
  double r = NAN;
  if (c && nb) {
    qsort(dist, c, sizeof(double), cmpd);
    double pos = 0.95 * (double)(c - 1), lo = floor(pos); /* numpy.percentile, "linear" */
    size_t i = (size_t)lo;
    r = i + 1 < c ? dist[i] + (pos - lo) * (dist[i + 1] - dist[i]) : dist[c - 1];
  }
  free(dist), free(pb);
  return r;
}

static void test_hd95(void) {
  int ok = 1, trials = 0;
  double worst = 0;
  for (int t = 0; t < 24; t++) {
    int d[3] = {1 + (int)(urand() * 9), 4 + (int)(urand() * 10), 4 + (int)(urand() * 12)};
    float sp[3] = {(float)(0.5 + 3 * urand()), (float)(0.3 + urand()), (float)(0.6 + 2 * urand())};
    size_t n = vol3(d);
    uint8_t *a = malloc(n), *b = malloc(n);
    rand_mask(a, d, 0.05 * urand(), 1 + t % 3);
    rand_mask(b, d, 0.05 * urand(), 1 + (t + 1) % 3);
    double h;
    vx_status st = vx_hd95_masks(a, b, d, sp, &h);
    double r = fmax(brute_directed95(a, b, d, sp), brute_directed95(b, a, d, sp));
    worst = fmax(worst, fabs(h - r));
    if (st != VX_OK || !(fabs(h - r) <= 1e-4)) ok = 0;
    trials++;
    free(a), free(b);
  }
  char msg[96];
  snprintf(msg, sizeof msg, "%d random mask pairs, anisotropic spacing, max abs err %.2e mm", trials, worst);
  report("HD95 vs brute force", ok, msg);

  /* two single voxels 3 apart along x at 1.3 mm: every distance is 3.9 mm */
  uint8_t a[40] = {0}, b[40] = {0}, z[40] = {0};
  a[1] = 1, b[4] = 1;
  double h = 0, h2 = 0, h3 = 0;
  vx_status st = vx_hd95_masks(a, b, (int[]){1, 5, 8}, (float[]){2.0f, 0.5f, 1.3f}, &h);
  report("HD95 of two voxels = their distance", st == VX_OK && fabs(h - 3.9) < 1e-6, NULL);
  vx_status s2 = vx_hd95_masks(a, z, (int[]){1, 5, 8}, (float[]){1, 1, 1}, &h2);
  vx_status s3 = vx_hd95_masks(z, z, (int[]){1, 5, 8}, (float[]){1, 1, 1}, &h3);
  report("HD95 with an empty set is NaN", st == VX_OK && s2 == VX_OK && s3 == VX_OK && isnan(h2) && isnan(h3), NULL);
  report("HD95 rejects zero spacing", vx_hd95_masks(a, b, (int[]){1, 5, 8}, (float[]){0, 1, 1}, &h) ==
                                          VX_ERR_INVALID_ARGUMENT, NULL);
}

/* ------------------------------------------------------------------ evaluate folders */
static vx_status write_labels(const char *path, int nx, int ny, int nz, const float sp[3], const float *data) {
  vx_volume *v = NULL;
  vx_status st = vx_volume_create(nx, ny, nz, 1, sp, &v);
  if (st == VX_OK) st = vx_volume_write_like(path, v, data, 1, NULL, 0);
  vx_volume_destroy(v);
  return st;
}

static void test_evaluate(void) {
  char dir[] = "/tmp/voxcl-test-infer-XXXXXX", p[512], r[512], path[600];
  if (!mkdtemp(dir)) {
    report("evaluate: temporary folder", 0, dir);
    return;
  }
  snprintf(p, sizeof p, "%s/pred", dir);
  snprintf(r, sizeof r, "%s/ref", dir);
  mkdir(p, 0755), mkdir(r, 0755);
  enum { NX = 11, NY = 9, NZ = 6, N = NX * NY * NZ };
  const float sp[3] = {0.6f, 1.1f, 2.5f}; /* x, y, z */
  float pr[3][N], rf[3][N];
  const char *names[3] = {"a", "b", "c"};
  vx_status st = VX_OK;
  for (int c = 0; c < 3; c++) {
    for (int i = 0; i < N; i++) {
      int x = i % NX, y = i / NX % NY, z = i / (NX * NY);
      rf[c][i] = (x > 2 && x < 8 && y > 1 && z > 1 + c) ? 1.0f : (x < 2 && y < 3 && c != 1 ? 2.0f : 0.0f);
      pr[c][i] = (x > 2 + c % 2 && x < 9 && y > 1 && z > 1) ? 1.0f : (x < 2 && y < 4 ? 2.0f : 0.0f);
      if (c == 2 && x == 10 && y == 8) pr[c][i] = 3.0f; /* a class no reference has: not scored */
    }
    snprintf(path, sizeof path, "%s/%s.nii.gz", p, names[c]);
    if (st == VX_OK) st = write_labels(path, NX, NY, NZ, sp, pr[c]);
    snprintf(path, sizeof path, "%s/%s.%s", r, names[c], c == 2 ? "nii" : "nii.gz");
    if (st == VX_OK) st = write_labels(path, NX, NY, NZ, sp, rf[c]);
  }
  snprintf(path, sizeof path, "%s/unpredicted.nii.gz", r); /* a reference alone is ignored */
  if (st == VX_OK) st = write_labels(path, NX, NY, NZ, sp, rf[0]);
  vx_evaluation *e = NULL;
  char err[1024] = "";
  if (st == VX_OK) st = vx_evaluate_folders(p, r, NULL, 0, NULL, NULL, &e, err, sizeof err);
  int ok = st == VX_OK && vx_evaluation_case_count(e) == 3 && vx_evaluation_class_count(e) == 2 &&
           vx_evaluation_class_label(e, 0) == 1 && vx_evaluation_class_label(e, 1) == 2 &&
           !strcmp(vx_evaluation_case_name(e, 2), "c");
  report("evaluate: pairing and default classes", ok, err);
  /* every number against the metrics on the arrays, spacing reversed to {z, y, x} */
  double worst = 0, md[2] = {0, 0};
  for (int c = 0; c < 3 && ok; c++)
    for (int k = 0; k < 2; k++) {
      uint8_t ma[N], mb[N];
      for (int i = 0; i < N; i++) ma[i] = pr[c][i] == k + 1, mb[i] = rf[c][i] == k + 1;
      int d3[3] = {NZ, NY, NX};
      float s3[3] = {sp[2], sp[1], sp[0]};
      double dd, hh, rd = vx_dice_masks(ma, mb, N), rh = fmax(brute_directed95(ma, mb, d3, s3), brute_directed95(mb, ma, d3, s3));
      vx_evaluation_get(e, c, k, &dd, &hh);
      if (isnan(rh) != isnan(hh)) worst = INFINITY;
      else if (!isnan(rh)) worst = fmax(worst, fabs(hh - rh));
      worst = fmax(worst, fabs(dd - rd));
      md[k] += rd / 3;
    }
  double m1, m2;
  vx_evaluation_get(e, -1, 0, &m1, NULL);
  vx_evaluation_get(e, -1, 1, &m2, NULL);
  char msg[128];
  snprintf(msg, sizeof msg, "max err %.2e, means %.6f %.6f", worst, m1, m2);
  report("evaluate: values match brute force (x/y/z spacing order)",
         ok && worst < 1e-4 && fabs(m1 - md[0]) < 1e-12 && fabs(m2 - md[1]) < 1e-12, msg);

  snprintf(path, sizeof path, "%s/out/eval", dir);
  char sub[600];
  snprintf(sub, sizeof sub, "%s/out", dir);
  mkdir(sub, 0755);
  st = ok ? vx_evaluation_write(e, path, err, sizeof err) : VX_ERR_INVALID_ARGUMENT;
  snprintf(path, sizeof path, "%s/out/eval.csv", dir);
  FILE *f = fopen(path, "r");
  int lines = 0, header = 0;
  char line[256];
  while (f && fgets(line, sizeof line, f)) {
    if (lines == 0) header = !strcmp(line, "case,class,dice,hd95\n");
    lines++;
  }
  if (f) fclose(f);
  snprintf(path, sizeof path, "%s/out/eval.json", dir);
  json_error_t je;
  json_t *j = json_load_file(path, 0, &je);
  json_t *pc = j ? json_object_get(j, "metric_per_case") : NULL;
  /* case b has no class 2 in its reference: HD95 undefined, written as null */
  json_t *hb = pc ? json_object_get(json_object_get(json_object_get(json_array_get(pc, 1), "metrics"), "2"),
                                    "hd95") : NULL;
  json_t *mean1 = j ? json_object_get(json_object_get(json_object_get(j, "mean"), "1"), "dice") : NULL;
  report("evaluate: CSV and JSON written", st == VX_OK && header && lines == 7 && pc && json_array_size(pc) == 3 &&
                                               json_is_null(hb) && mean1 && fabs(json_number_value(mean1) - m1) < 1e-7,
         st == VX_OK ? (j ? "" : je.text) : err);
  json_decref(j);
  vx_evaluation_destroy(e);

  /* errors: geometry mismatch names both files; a prediction without reference */
  snprintf(path, sizeof path, "%s/d.nii.gz", p);
  float small[4 * 5 * 4] = {0};
  write_labels(path, 4, 4, 4, sp, small);
  snprintf(path, sizeof path, "%s/d.nii.gz", r);
  write_labels(path, 4, 5, 4, sp, small);
  e = NULL;
  st = vx_evaluate_folders(p, r, NULL, 0, NULL, NULL, &e, err, sizeof err);
  report("evaluate: shape mismatch names both files",
         st == VX_ERR_SHAPE && !e && strstr(err, "pred/d.nii.gz") && strstr(err, "ref/d.nii.gz"), err);
  remove(path);
  st = vx_evaluate_folders(p, r, (int[]){1}, 1, NULL, NULL, &e, err, sizeof err);
  report("evaluate: prediction without reference", st == VX_ERR_IO && strstr(err, "d.nii.gz"), err);

  /* clean up */
  const char *rm[] = {"pred/a.nii.gz", "pred/b.nii.gz", "pred/c.nii.gz", "pred/d.nii.gz", "ref/a.nii.gz",
                      "ref/b.nii.gz", "ref/c.nii", "ref/unpredicted.nii.gz", "out/eval.csv", "out/eval.json"};
  for (size_t i = 0; i < sizeof rm / sizeof rm[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, rm[i]);
    remove(path);
  }
  rmdir(p), rmdir(r), rmdir(sub), rmdir(dir);
}

int main(void) {
  test_steps();
  test_gaussian();
  test_sliding_window();
  test_sw_failure_and_progress();
  test_dice();
  test_edt();
  test_hd95();
  test_evaluate();
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
