/* Elementwise binary ops with b broadcast over a: y = a + b or a * b, and the reductions of
 * their backward. a, y: [N, C, S] (S = D*H*W). MODE says how b is indexed:
 *   0: b has a's shape (index i); 1: b is [N, C, 1, 1, 1] (index i / S);
 *   2: b holds C values (index (i / S) % C); 3: b holds one value (index 0).
 * Every buffer comes with an offset in floats. */

#ifndef MODE
#define MODE 0
#endif
#ifndef WG
#define WG 64
#endif

static int bidx(int i, int C, int S) {
#if MODE == 0
  return i;
#elif MODE == 1
  return i / S;
#elif MODE == 2
  return (i / S) % C;
#else
  return 0;
#endif
}

/* op 0: add, 1: mul. */
__kernel void bcast_forward(__global const float *a, int aoff, __global const float *b, int boff,
                            __global float *y, int yoff, int n, int C, int S, int op) {
  int i = get_global_id(0);
  if (i >= n) return;
  float u = a[aoff + i], v = b[boff + bidx(i, C, S)];
  y[yoff + i] = op ? u * v : u + v;
}

/* y = s * x, or dx (+)= s * dy. */
__kernel void scale(float s, __global const float *x, int xoff, __global float *y, int yoff, int n, int accumulate) {
  int i = get_global_id(0);
  if (i >= n) return;
  float g = s * x[xoff + i];
  y[yoff + i] = accumulate ? y[yoff + i] + g : g;
}

/* da (+)= dy (b NULL-like: use_b 0) or dy * b[bidx]. */
__kernel void bcast_backward_a(__global const float *dy, int dyoff, __global const float *b, int boff, int use_b,
                               __global float *da, int daoff, int n, int C, int S, int accumulate) {
  int i = get_global_id(0);
  if (i >= n) return;
  float g = dy[dyoff + i];
  if (use_b) g *= b[boff + bidx(i, C, S)];
  da[daoff + i] = accumulate ? da[daoff + i] + g : g;
}

/* One work-group per element r of db: db[r] (+)= sum over the elements i of a with bidx(i) == r
 * of dy[i] (* a[i] when use_a). A fixed strided split and a fixed tree: deterministic. For
 * MODE 0 each group has one element. */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void bcast_backward_b(__global const float *dy, int dyoff, __global const float *a, int aoff, int use_a,
                      __global float *db, int dboff, int N, int C, int S, int accumulate) {
  __local float part[WG];
  int r = get_group_id(0), l = get_local_id(0);
#if MODE == 0
  int m = 1;
#elif MODE == 1
  int m = S;
#elif MODE == 2
  int m = N * S;
#else
  int m = N * C * S;
#endif
  float acc = 0.0f;
  for (int j = l; j < m; j += WG) {
#if MODE == 0
    int i = r;
#elif MODE == 1
    int i = r * S + j;
#elif MODE == 2
    int i = ((j / S) * C + r) * S + j % S;
#else
    int i = j;
#endif
    float g = dy[dyoff + i];
    if (use_a) g *= a[aoff + i];
    acc += g;
  }
  part[l] = acc;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int w = WG / 2; w > 0; w >>= 1) {
    if (l < w) part[l] += part[l + w];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (l == 0) db[dboff + r] = accumulate ? db[dboff + r] + part[0] : part[0];
}
