/* Flat parameter sets and activation arenas: declare shapes, then allocate once. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"

uint64_t vx_rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double vx_rng_uniform(uint64_t *s) { return (double)(vx_rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

double vx_rng_normal(uint64_t *s) {
  double u1 = vx_rng_uniform(s), u2 = vx_rng_uniform(s);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static size_t numel5(const int s[5]) { return (size_t)s[0] * s[1] * s[2] * s[3] * s[4]; }

void vx_params_init(vx_param_set *ps, vx_context *ctx, uint64_t seed) {
  memset(ps, 0, sizeof *ps);
  ps->ctx = ctx;
  ps->seed = seed;
}

void vx_params_declare(vx_param_set *ps, const char *name, vx_tensor **view, vx_tensor **grad, const int shape[5],
                       vx_init init, int fan_in, float slope) {
  if (ps->n == VX_MAX_DECL) { ps->overflow = 1; return; }
  vx_decl *d = &ps->decl[ps->n++];
  snprintf(d->name, sizeof d->name, "%s", name);
  d->view = view;
  d->gview = grad;
  memcpy(d->shape, shape, sizeof d->shape);
  d->numel = numel5(shape);
  /* 16-float alignment keeps every view's start vector-aligned for the kernels */
  d->offset = (ps->count + 15) & ~(size_t)15;
  ps->count = d->offset + d->numel;
  d->init = init;
  d->fan_in = fan_in;
  d->slope = slope;
}

vx_status vx_params_allocate(vx_param_set *ps) {
  if (ps->overflow) return vx_fail(ps->ctx, VX_ERR_UNSUPPORTED, "network has more than %d parameter tensors", VX_MAX_DECL);
  int fs[5] = {1, 1, 1, 1, (int)ps->count};
  vx_status st = vx_tensor_create(ps->ctx, fs, &ps->flat);
  if (st == VX_OK) st = vx_tensor_create(ps->ctx, fs, &ps->flat_grad);
  if (st != VX_OK) return st;
  float *host = calloc(ps->count, sizeof(float));
  if (!host) return vx_fail(ps->ctx, VX_ERR_OUT_OF_MEMORY, "host memory for %zu parameters", ps->count);
  uint64_t rng = ps->seed;
  for (int i = 0; i < ps->n && st == VX_OK; i++) {
    vx_decl *d = &ps->decl[i];
    float *p = host + d->offset;
    if (d->init == VX_INIT_ONE) for (size_t j = 0; j < d->numel; j++) p[j] = 1.0f;
    if (d->init == VX_INIT_KAIMING) {
      double gain = sqrt(2.0 / (1.0 + (double)d->slope * d->slope));
      double std = gain / sqrt((double)(d->fan_in > 0 ? d->fan_in : 1));
      for (size_t j = 0; j < d->numel; j++) p[j] = (float)(std * vx_rng_normal(&rng));
    }
    st = vx_tensor_view(ps->flat, d->offset, d->shape, d->view);
    if (st == VX_OK && d->gview) st = vx_tensor_view(ps->flat_grad, d->offset, d->shape, d->gview);
  }
  if (st == VX_OK) st = vx_tensor_upload(ps->flat, host);
  if (st == VX_OK) st = vx_tensor_fill(ps->flat_grad, 0.0f);
  free(host);
  return st;
}

void vx_params_release(vx_param_set *ps) {
  for (int i = 0; i < ps->n; i++) {
    vx_tensor_destroy(*ps->decl[i].view);
    *ps->decl[i].view = NULL;
    if (ps->decl[i].gview) {
      vx_tensor_destroy(*ps->decl[i].gview);
      *ps->decl[i].gview = NULL;
    }
  }
  vx_tensor_destroy(ps->flat);
  vx_tensor_destroy(ps->flat_grad);
  ps->flat = ps->flat_grad = NULL;
}

void vx_arena_init(vx_arena *a, vx_context *ctx) {
  memset(a, 0, sizeof *a);
  a->ctx = ctx;
}

void vx_arena_declare(vx_arena *a, vx_tensor **view, const int shape[5]) {
  if (a->n == VX_MAX_DECL) { a->overflow = 1; return; }
  vx_decl *d = &a->decl[a->n++];
  d->view = view;
  memcpy(d->shape, shape, sizeof d->shape);
  d->numel = numel5(shape);
  d->offset = (a->count + 15) & ~(size_t)15;
  a->count = d->offset + d->numel;
}

vx_status vx_arena_allocate(vx_arena *a) {
  if (a->overflow) return vx_fail(a->ctx, VX_ERR_UNSUPPORTED, "network has more than %d activation tensors", VX_MAX_DECL);
  size_t limit = vx_context_device(a->ctx)->max_alloc_bytes / sizeof(float); /* floats per buffer; 0: none */
  vx_status st = VX_OK;
  int first = 0;
  while (first < a->n && st == VX_OK) {
    /* the longest run of declarations from 'first' that fits one buffer, offsets re-based to it */
    size_t base = a->decl[first].offset, end = base + a->decl[first].numel;
    int last = first;
    while (last + 1 < a->n) {
      size_t e = a->decl[last + 1].offset + a->decl[last + 1].numel;
      if (limit && e - base > limit) break;
      end = e;
      last++;
    }
    if (limit && end - base > limit)
      return vx_fail(a->ctx, VX_ERR_OUT_OF_MEMORY,
                     "one activation of %zu bytes exceeds the device's largest allocation (%zu bytes): use a smaller "
                     "patch or batch", (end - base) * sizeof(float), limit * sizeof(float));
    if (a->nbufs == VX_ARENA_MAX_BUFS)
      return vx_fail(a->ctx, VX_ERR_OUT_OF_MEMORY, "activations need more than %d device buffers", VX_ARENA_MAX_BUFS);
    int s5[5] = {1, 1, 1, 1, (int)(end - base)};
    vx_tensor **buf = &a->bufs[a->nbufs++];
    st = vx_tensor_create(a->ctx, s5, buf);
    for (int i = first; i <= last && st == VX_OK; i++)
      st = vx_tensor_view(*buf, a->decl[i].offset - base, a->decl[i].shape, a->decl[i].view);
    first = last + 1;
  }
  return st;
}

void vx_arena_release(vx_arena *a) {
  for (int i = 0; i < a->n; i++) {
    vx_tensor_destroy(*a->decl[i].view);
    *a->decl[i].view = NULL;
  }
  for (int i = 0; i < a->nbufs; i++) vx_tensor_destroy(a->bufs[i]);
  a->nbufs = 0;
}
