/* indexing.c — CPU kernels of the indexing family: gather, indexed_add,
 * indexed_put, take, take_along_axis (graph building and the shape rules:
 * src/core/ops_indexing.c).
 *
 * Indices of any integer dtype are read as int64 (u64 values above
 * INT64_MAX saturate) and clamped into [0, size - 1], as XLA does. With
 * em_set_bounds_check(true) an out-of-range index instead fails the
 * evaluation with EM_ERR_ARGUMENT, naming the first offending index (in
 * row-major order of the indices), its position and the axis size.
 *
 * Gather-like kernels copy contiguous runs ("blocks") of the source:
 * parallel over output blocks, so every thread writes its own range.
 *
 * Scatter (indexed_add / indexed_put) follows Nx's BinaryBackend: rows of
 * indices that hit the same position are grouped (a stable sort by target
 * offset), and each group is resolved in index order —
 *  - add: the group's updates are summed, starting from 0, then added to
 *    the target value: ints wrap (exact sum modulo 2^bits), floats and
 *    complex parts sum in double and round once into the dtype (the
 *    BinaryBackend sums Elixir floats, i.e. f64, and writes once);
 *  - put: the last row of the group wins.
 * Distinct groups write disjoint windows, so the work is split over
 * (group, window block, chunk) items without races, and the result does
 * not depend on the thread count. */
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/backend-impl.h"
#include "../core/half.h"
#include "../core/parallel.h"
#include "cpu-kernels.h"
#include "simd.h"

/* src/core/ops_indexing.c */
bool em_bounds_check_enabled(void);
/* src/cpu/fused.c */
void em_cpu_copy_strided(const em_array *src, void *dst);

#define TRY(x)                    \
  do {                            \
    em_status st_ = (x);          \
    if (st_ != EM_OK) return st_; \
  } while (0)

/* ---- indices ------------------------------------------------------------ */

/* Reads n indices of integer dtype t, elements [first, first + n), as
 * int64 (u64 beyond INT64_MAX saturates to INT64_MAX). */
static void load_indices(em_dtype t, const void *src, int64_t first, int64_t n,
                         int64_t *dst) {
  switch (t) {
#define L_(T, C)                                  \
  case T: {                                       \
    const C *s = (const C *)src + first;          \
    for (int64_t i = 0; i < n; i++) dst[i] = (int64_t)s[i]; \
    break;                                        \
  }
    L_(EM_U8, uint8_t)
    L_(EM_U16, uint16_t)
    L_(EM_U32, uint32_t)
    L_(EM_S8, int8_t)
    L_(EM_S16, int16_t)
    L_(EM_S32, int32_t)
    L_(EM_S64, int64_t)
#undef L_
    case EM_U64: {
      const uint64_t *s = (const uint64_t *)src + first;
      for (int64_t i = 0; i < n; i++)
        dst[i] = s[i] > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)s[i];
      break;
    }
    default:
      for (int64_t i = 0; i < n; i++) dst[i] = 0;
      break;
  }
}

static inline int64_t clamp_index(int64_t v, int64_t d) {
  int64_t c = v >= d ? d - 1 : v;
  return c < 0 ? 0 : c;
}

/* The first out-of-range index (flat position in the indices array) seen
 * by any thread; INT64_MAX when none. */
typedef struct {
  atomic_llong pos;
} first_bad;

static void bad_init(first_bad *b) { atomic_init(&b->pos, LLONG_MAX); }
static void bad_note(first_bad *b, int64_t pos) {
  long long cur = atomic_load(&b->pos);
  while (pos < cur && !atomic_compare_exchange_weak(&b->pos, &cur, pos)) {
  }
}

em_status em_index_bounds_error(const char *op, const em_array *idx,
                                const void *value, int64_t pos, int axis,
                                int64_t d) {
  char val[32], at[256];
  const char *p = value;
  if (idx->dtype == EM_U64) {
    uint64_t v;
    memcpy(&v, p, 8);
    snprintf(val, sizeof val, "%llu", (unsigned long long)v);
  } else {
    int64_t v;
    load_indices(idx->dtype, p, 0, 1, &v);
    snprintf(val, sizeof val, "%lld", (long long)v);
  }
  int64_t mi[EM_MAX_NDIM];
  int64_t f = pos;
  for (int i = idx->ndim - 1; i >= 0; i--) {
    mi[i] = idx->shape[i] ? f % idx->shape[i] : 0;
    f = idx->shape[i] ? f / idx->shape[i] : 0;
  }
  em_shape_str(at, sizeof at, idx->ndim, mi);
  return em_fail(EM_ERR_ARGUMENT,
                 "[%s] index %s at position %s of the indices is out of "
                 "bounds for axis %d of size %lld (bounds check is on)",
                 op, val, at, axis, (long long)d);
}

/* The failure for the index at flat position pos of idx (row-major),
 * which indexes axis `axis` of size d. */
static em_status bounds_error(const char *op, const em_array *idx, int64_t pos,
                              int axis, int64_t d) {
  const char *p = em_array_ptr(idx) + pos * (int64_t)em_dtype_size(idx->dtype);
  return em_index_bounds_error(op, idx, p, pos, axis, d);
}

/* Resolves index rows [rows, k] into element offsets of the target:
 * base[r] = sum_j clamp(idx[r, j], dims[j]) * strides[j]. */
typedef struct {
  em_dtype it;
  const void *idx;
  int k;
  int64_t dims[EM_MAX_NDIM], strides[EM_MAX_NDIM];
  int64_t *base;
  bool check;
  first_bad bad;
} resolve_ctx;

#define RCHUNK 256

static void resolve_range(void *c_, int64_t b, int64_t e, int tid) {
  (void)tid;
  resolve_ctx *c = c_;
  int k = c->k;
  int64_t buf[RCHUNK * EM_MAX_NDIM];
  if (k == 0) {
    for (int64_t r = b; r < e; r++) c->base[r] = 0;
    return;
  }
  for (int64_t r0 = b; r0 < e; r0 += RCHUNK) {
    int64_t n = e - r0 < RCHUNK ? e - r0 : RCHUNK;
    load_indices(c->it, c->idx, r0 * k, n * k, buf);
    for (int64_t i = 0; i < n; i++) {
      int64_t off = 0;
      for (int j = 0; j < k; j++) {
        int64_t v = buf[i * k + j], d = c->dims[j];
        if (c->check && (v < 0 || v >= d)) bad_note(&c->bad, (r0 + i) * k + j);
        off += clamp_index(v, d) * c->strides[j];
      }
      c->base[r0 + i] = off;
    }
  }
}

/* Row-major strides (in elements) of a shape. */
static void row_major(int nd, const int64_t *sh, int64_t *st) {
  int64_t s = 1;
  for (int i = nd - 1; i >= 0; i--) {
    st[i] = s;
    s *= sh[i];
  }
}

/* ---- windows -------------------------------------------------------------
 * A box of the target (sizes sh, element strides st) walked row-major,
 * split into M blocks of L contiguous elements: adjacent dims merge when
 * contiguous, and the innermost dim, when of stride 1, becomes L. */
typedef struct {
  int nd;
  int64_t sh[EM_MAX_NDIM], st[EM_MAX_NDIM];
  int64_t M, L;
} window;

static void make_window(window *w, int n, const int64_t *sh, const int64_t *st) {
  memset(w, 0, sizeof *w);
  bool empty = false;
  for (int i = 0; i < n; i++) {
    if (sh[i] == 0) empty = true;
    if (sh[i] == 1) continue;
    if (w->nd > 0 && w->st[w->nd - 1] == sh[i] * st[i]) {
      w->sh[w->nd - 1] *= sh[i];
      w->st[w->nd - 1] = st[i];
    } else {
      w->sh[w->nd] = sh[i];
      w->st[w->nd] = st[i];
      w->nd++;
    }
  }
  w->L = 1;
  if (w->nd > 0 && w->st[w->nd - 1] == 1) w->L = w->sh[--w->nd];
  w->M = 1;
  for (int i = 0; i < w->nd; i++) w->M *= w->sh[i];
  if (empty) w->M = w->L = 0;
}

/* Element offset of block m, with the odometer set to it. */
static int64_t win_seek(const window *w, int64_t m, int64_t *cnt) {
  int64_t off = 0;
  for (int i = w->nd - 1; i >= 0; i--) {
    cnt[i] = m % w->sh[i];
    m /= w->sh[i];
    off += cnt[i] * w->st[i];
  }
  return off;
}

/* Advances the odometer by one block; returns the new offset. */
static int64_t win_next(const window *w, int64_t *cnt, int64_t off) {
  for (int i = w->nd - 1; i >= 0; i--) {
    if (++cnt[i] < w->sh[i]) return off + w->st[i];
    off -= (w->sh[i] - 1) * w->st[i];
    cnt[i] = 0;
  }
  return off;
}

/* memcpy with the common small sizes spelled out (inlined moves). */
static inline void copy_bytes(char *d, const char *s, size_t n) {
  switch (n) {
    case 1: memcpy(d, s, 1); break;
    case 2: memcpy(d, s, 2); break;
    case 4: memcpy(d, s, 4); break;
    case 8: memcpy(d, s, 8); break;
    case 16: memcpy(d, s, 16); break;
    default: memcpy(d, s, n); break;
  }
}

/* Software prefetch of a source block `ahead` items before it is copied:
 * random rows of a large table are latency bound, and the hardware
 * prefetcher cannot guess the next row (about 25% faster on row gathers). */
static inline int prefetch_ahead(size_t blk) { return blk >= 512 ? 4 : 16; }
static inline void prefetch_block(const char *p, size_t blk) {
  size_t n = blk < 2048 ? blk : 2048;
  for (size_t l = 0; l < n; l += 64) __builtin_prefetch(p + l);
}

/* Grain (items per chunk) so a chunk moves about 64 KiB. */
static int64_t grain_for(int64_t bytes_per_item) {
  int64_t g = 65536 / (bytes_per_item > 0 ? bytes_per_item : 1);
  return g < 1 ? 1 : g;
}

/* ---- gather ------------------------------------------------------------- */

typedef struct {
  const char *src;
  char *dst;
  const int64_t *base;
  window w;
  size_t es;
} gather_ctx;

/* Items are (row r, block m) pairs in output order: item = r * M + m. */
static void gather_range(void *c_, int64_t b, int64_t e, int tid) {
  (void)tid;
  gather_ctx *c = c_;
  const window *w = &c->w;
  int64_t cnt[EM_MAX_NDIM];
  int64_t r = b / w->M, m = b % w->M;
  int64_t moff = win_seek(w, m, cnt);
  size_t blk = (size_t)w->L * c->es;
  char *d = c->dst + (size_t)b * blk;
  /* whole-row windows: prefetch the row `ahead` rows on */
  int64_t ahead = w->M == 1 ? prefetch_ahead(blk) : 0;
  int64_t rend = w->M == 1 ? e : 0;
  for (int64_t it = b; it < e; it++, d += blk) {
    if (r + ahead < rend)
      prefetch_block(c->src + (size_t)c->base[r + ahead] * c->es, blk);
    copy_bytes(d, c->src + (size_t)(c->base[r] + moff) * c->es, blk);
    if (++m == w->M) {
      m = 0;
      r++;
      moff = win_seek(w, 0, cnt);
    } else {
      moff = win_next(w, cnt, moff);
    }
  }
}

/* Inputs of a gather-like op as contiguous arrays (released by the
 * caller, also on failure). */
static em_status contig2(const em_node *node, em_array **a, em_array **ix) {
  *a = *ix = NULL;
  TRY(em_contiguous(node->in[0], a));
  return em_contiguous(node->in[1], ix);
}

/* Resolves `rows` index rows of k columns; column j indexes an axis of
 * size dims[j] and element stride strides[j], named label[j] in messages.
 * *base is malloc'd (freed here on failure). */
static em_status resolve(const char *op, const em_array *ix, int k,
                         const int64_t *dims, const int64_t *strides,
                         const int *label, int64_t rows, int64_t **base) {
  *base = malloc((size_t)(rows > 0 ? rows : 1) * sizeof(int64_t));
  if (!*base) return em_fail(EM_ERR_OOM, "[%s] out of host memory", op);
  resolve_ctx rc;
  memset(&rc, 0, sizeof rc);
  rc.it = ix->dtype;
  rc.idx = em_array_ptr(ix);
  rc.k = k;
  for (int j = 0; j < k; j++) {
    rc.dims[j] = dims[j];
    rc.strides[j] = strides[j];
  }
  rc.base = *base;
  rc.check = em_bounds_check_enabled();
  bad_init(&rc.bad);
  em_parallel_for(rows, 4096, resolve_range, &rc);
  int64_t pos = atomic_load(&rc.bad.pos);
  if (pos != LLONG_MAX) {
    int j = (int)(pos % k); /* k > 0: only index values can be bad */
    free(*base);
    *base = NULL;
    return bounds_error(op, ix, pos, label[j], dims[j]);
  }
  return EM_OK;
}

/* resolve() for gather/scatter: the indexed axes of a target of the given
 * shape and row-major strides. */
static em_status resolve_axes(const char *op, const em_array *ix, int k,
                              const int *axes, const int64_t *shape,
                              const int64_t *st, int64_t rows,
                              int64_t **base) {
  int64_t dims[EM_MAX_NDIM], strides[EM_MAX_NDIM];
  for (int j = 0; j < k; j++) {
    dims[j] = shape[axes[j]];
    strides[j] = st[axes[j]];
  }
  return resolve(op, ix, k, dims, strides, axes, rows, base);
}

static int64_t index_rows(const em_array *ix) {
  int64_t rows = 1;
  for (int i = 0; i < ix->ndim - 1; i++) rows *= ix->shape[i];
  return rows;
}

em_status em_cpu_k_gather(em_array *out, const em_node *node) {
  em_array *a, *ix;
  int64_t *base = NULL;
  em_status st = contig2(node, &a, &ix);
  if (st == EM_OK) st = em_alloc_output(out);
  if (st != EM_OK) goto done;
  int k = node->p.index.naxes;
  const int *axes = node->p.index.axes;
  int64_t rows = index_rows(ix);
  int64_t ast[EM_MAX_NDIM];
  row_major(a->ndim, a->shape, ast);
  if (rows == 0) goto done;
  st = resolve_axes("gather", ix, k, axes, a->shape, ast, rows, &base);
  if (st != EM_OK || out->size == 0) goto done;
  /* the window: every non-indexed axis of a, in order */
  int64_t wsh[EM_MAX_NDIM], wst[EM_MAX_NDIM];
  int n = 0;
  for (int i = 0, j = 0; i < a->ndim; i++) {
    if (j < k && axes[j] == i) {
      j++;
      continue;
    }
    wsh[n] = a->shape[i];
    wst[n++] = ast[i];
  }
  gather_ctx c = {em_array_ptr(a), em_array_ptr(out), base, {0}, em_dtype_size(a->dtype)};
  make_window(&c.w, n, wsh, wst);
  em_parallel_for(rows * c.w.M, grain_for(c.w.L * (int64_t)c.es + 32),
                  gather_range, &c);
done:
  free(base);
  em_array_release(a);
  em_array_release(ix);
  return st;
}

/* ---- take --------------------------------------------------------------- */

/* a viewed as [P, D, Q], out as [P, N, Q]; base[n] = clamp(idx[n]) * Q. */
typedef struct {
  const char *src;
  char *dst;
  const int64_t *base;
  int64_t N, DQ;
  size_t blk; /* Q * es bytes */
  size_t es;
} take_ctx;

static void take_range(void *c_, int64_t b, int64_t e, int tid) {
  (void)tid;
  take_ctx *c = c_;
  int64_t p = b / c->N, n = b % c->N;
  char *d = c->dst + (size_t)b * c->blk;
  const char *sp = c->src + (size_t)(p * c->DQ) * c->es;
  int64_t ahead = prefetch_ahead(c->blk);
  for (int64_t it = b; it < e; it++, d += c->blk) {
    if (n + ahead < c->N && it + ahead < e)
      prefetch_block(sp + (size_t)c->base[n + ahead] * c->es, c->blk);
    copy_bytes(d, sp + (size_t)c->base[n] * c->es, c->blk);
    if (++n == c->N) {
      n = 0;
      sp += (size_t)c->DQ * c->es;
    }
  }
}

em_status em_cpu_k_take(em_array *out, const em_node *node) {
  em_array *a, *ix;
  int64_t *base = NULL;
  em_status st = contig2(node, &a, &ix);
  if (st == EM_OK) st = em_alloc_output(out);
  if (st != EM_OK) goto done;
  int axis = node->p.index.axis;
  int64_t P = 1, Q = 1, D = a->shape[axis], N = ix->size;
  for (int i = 0; i < axis; i++) P *= a->shape[i];
  for (int i = axis + 1; i < a->ndim; i++) Q *= a->shape[i];
  if (N == 0) goto done;
  /* indices as N rows of one column, over an axis of size D, stride Q */
  st = resolve("take", ix, 1, &D, &Q, &axis, N, &base);
  if (st != EM_OK) goto done;
  if (out->size == 0) goto done;
  size_t es = em_dtype_size(a->dtype);
  take_ctx c = {em_array_ptr(a), em_array_ptr(out), base, N, D * Q,
                (size_t)Q * es, es};
  em_parallel_for(P * N, grain_for((int64_t)c.blk + 32), take_range, &c);
done:
  free(base);
  em_array_release(a);
  em_array_release(ix);
  return st;
}

/* ---- take_along_axis ---------------------------------------------------- */

/* a [P, D, Q], indices and out [P, N, Q]: out[p,n,q] = a[p, idx[p,n,q], q].
 * Parallel over output elements, in chunks that load the indices first. */
typedef struct {
  const char *src;
  char *dst;
  em_dtype it;
  const void *idx;
  int64_t N, D, Q;
  size_t es;
  bool check;
  first_bad bad;
} taa_ctx;

#define TCHUNK 512

#define TAA_COPY(T)                                               \
  do {                                                            \
    const T *s = (const T *)c->src;                               \
    T *d = (T *)c->dst + f0;                                      \
    for (int64_t i = 0; i < n; i++) {                             \
      d[i] = s[(p * c->D + clamp_index(buf[i], c->D)) * c->Q + q]; \
      if (++q == c->Q) {                                          \
        q = 0;                                                    \
        if (++nn == c->N) {                                       \
          nn = 0;                                                 \
          p++;                                                    \
        }                                                         \
      }                                                           \
    }                                                             \
  } while (0)

typedef struct {
  uint64_t lo, hi;
} em_u128;

static void taa_range(void *c_, int64_t b, int64_t e, int tid) {
  (void)tid;
  taa_ctx *c = c_;
  int64_t buf[TCHUNK];
  for (int64_t f0 = b; f0 < e; f0 += TCHUNK) {
    int64_t n = e - f0 < TCHUNK ? e - f0 : TCHUNK;
    load_indices(c->it, c->idx, f0, n, buf);
    if (c->check)
      for (int64_t i = 0; i < n; i++)
        if (buf[i] < 0 || buf[i] >= c->D) {
          bad_note(&c->bad, f0 + i);
          break;
        }
    int64_t q = f0 % c->Q, nn = (f0 / c->Q) % c->N, p = f0 / (c->Q * c->N);
    switch (c->es) {
      case 1: TAA_COPY(uint8_t); break;
      case 2: TAA_COPY(uint16_t); break;
      case 4: TAA_COPY(uint32_t); break;
      case 8: TAA_COPY(uint64_t); break;
      default: TAA_COPY(em_u128); break;
    }
  }
}

em_status em_cpu_k_take_along_axis(em_array *out, const em_node *node) {
  em_array *a, *ix;
  em_status st = contig2(node, &a, &ix);
  if (st == EM_OK) st = em_alloc_output(out);
  if (st != EM_OK) goto done;
  int axis = node->p.index.axis;
  if (ix->size == 0) goto done;
  taa_ctx c;
  memset(&c, 0, sizeof c);
  c.src = em_array_ptr(a);
  c.dst = em_array_ptr(out);
  c.it = ix->dtype;
  c.idx = em_array_ptr(ix);
  c.N = ix->shape[axis];
  c.D = a->shape[axis];
  c.Q = 1;
  for (int i = axis + 1; i < a->ndim; i++) c.Q *= a->shape[i];
  c.es = em_dtype_size(a->dtype);
  c.check = em_bounds_check_enabled();
  bad_init(&c.bad);
  em_parallel_for(out->size, 16384, taa_range, &c);
  int64_t pos = atomic_load(&c.bad.pos);
  if (pos != LLONG_MAX) st = bounds_error("take_along_axis", ix, pos, axis, c.D);
done:
  em_array_release(a);
  em_array_release(ix);
  return st;
}

/* ---- scatter: indexed_add / indexed_put -------------------------------- */

/* Stable order of rows by key (LSD radix sort, 11-bit digits), and the
 * groups of equal keys: rows perm[gstart[g] .. gstart[g+1]) share key
 * gkey[g], in ascending row order. */
typedef struct {
  int64_t *perm, *gstart, *gkey;
  int64_t G;
} groups;

static void groups_free(groups *g) {
  free(g->perm);
  free(g->gstart);
  free(g->gkey);
}

static bool make_groups(const int64_t *key, int64_t n, int64_t maxkey,
                        groups *g) {
  memset(g, 0, sizeof *g);
  g->perm = malloc((size_t)n * sizeof(int64_t));
  int64_t *sk = malloc((size_t)n * sizeof(int64_t));
  if (!g->perm || !sk) {
    free(sk);
    return false;
  }
  bool sorted = true;
  for (int64_t i = 1; i < n && sorted; i++) sorted = key[i - 1] <= key[i];
  for (int64_t i = 0; i < n; i++) {
    g->perm[i] = i;
    sk[i] = key[i];
  }
  if (!sorted) {
    enum { BITS = 11, RADIX = 1 << BITS };
    int64_t *tk = malloc((size_t)n * sizeof(int64_t));
    int64_t *tp = malloc((size_t)n * sizeof(int64_t));
    int64_t *cnt = malloc(RADIX * sizeof(int64_t));
    if (!tk || !tp || !cnt) {
      free(tk);
      free(tp);
      free(cnt);
      free(sk);
      return false;
    }
    for (int shift = 0; shift < 63 && (maxkey >> shift) > 0; shift += BITS) {
      memset(cnt, 0, RADIX * sizeof(int64_t));
      for (int64_t i = 0; i < n; i++) cnt[(sk[i] >> shift) & (RADIX - 1)]++;
      int64_t s = 0;
      for (int d = 0; d < RADIX; d++) {
        int64_t c = cnt[d];
        cnt[d] = s;
        s += c;
      }
      for (int64_t i = 0; i < n; i++) {
        int64_t at = cnt[(sk[i] >> shift) & (RADIX - 1)]++;
        tk[at] = sk[i];
        tp[at] = g->perm[i];
      }
      int64_t *x = sk;
      sk = tk;
      tk = x;
      x = g->perm;
      g->perm = tp;
      tp = x;
    }
    free(tk);
    free(tp);
    free(cnt);
  }
  int64_t G = n > 0 ? 1 : 0;
  for (int64_t i = 1; i < n; i++) G += sk[i] != sk[i - 1];
  g->gstart = malloc((size_t)(G + 1) * sizeof(int64_t));
  g->gkey = malloc((size_t)(G > 0 ? G : 1) * sizeof(int64_t));
  if (!g->gstart || !g->gkey) {
    free(sk);
    return false;
  }
  int64_t at = 0;
  for (int64_t i = 0; i < n; i++)
    if (i == 0 || sk[i] != sk[i - 1]) {
      g->gstart[at] = i;
      g->gkey[at++] = sk[i];
    }
  g->gstart[G] = n;
  g->G = G;
  free(sk);
  return true;
}

#define SCHUNK 512 /* elements of a window block per item */

typedef struct {
  em_dtype t;
  bool add;
  char *dst;
  const char *upd;
  const groups *g;
  window w;
  int64_t W;  /* elements per update row (M * L) */
  int64_t nc; /* chunks per block */
  size_t es;
} scatter_ctx;

/* Prefetches the chunk of sorted row r (if r < r1) of the updates. */
static inline void prefetch_row(const scatter_ctx *c, int64_t r, int64_t r1,
                                int64_t at, int64_t n) {
  if (r < r1)
    prefetch_block(c->upd + (size_t)(c->g->perm[r] * c->W + at) * c->es,
                   (size_t)n * c->es);
}

/* Accumulation of one update row chunk into acc, and the final
 * acc + target store, per dtype family (compiled for AVX-512/AVX2/base). */
#define F16_LOAD(x) ((double)em_f16_to_f32(x))
#define BF16_LOAD(x) ((double)em_bf16_to_f32(x))
#define F_LOAD(x) ((double)(x))
#define U_LOAD(x) ((uint64_t)(x))
#define F32_STORE(x) ((float)(x))
#define F64_STORE(x) (x)
#define ACC_FNS(NAME, T, A, LOAD, STORE)                                     \
  EM_CLONES static void acc_##NAME(A *restrict acc, const T *restrict u,     \
                                   int64_t n) {                              \
    for (int64_t j = 0; j < n; j++) acc[j] += LOAD(u[j]);                    \
  }                                                                          \
  EM_CLONES static void fin_##NAME(T *restrict x, const A *restrict acc,     \
                                   int64_t n) {                              \
    for (int64_t j = 0; j < n; j++) x[j] = (T)STORE(LOAD(x[j]) + acc[j]);   \
  }
ACC_FNS(u8, uint8_t, uint64_t, U_LOAD, )
ACC_FNS(u16, uint16_t, uint64_t, U_LOAD, )
ACC_FNS(u32, uint32_t, uint64_t, U_LOAD, )
ACC_FNS(u64, uint64_t, uint64_t, U_LOAD, )
ACC_FNS(f16, uint16_t, double, F16_LOAD, em_f64_to_f16)
ACC_FNS(bf16, uint16_t, double, BF16_LOAD, em_f64_to_bf16)
ACC_FNS(f32, float, double, F_LOAD, F32_STORE)
ACC_FNS(f64, double, double, F_LOAD, F64_STORE)

/* add: sums the chunk (n elements at element `at` of each update row) of
 * sorted rows r0..r1 into acc, then stores target + acc into d. Complex
 * values are pairs of their real part type. */
#define ADD_CASE(NAME, T, A, PAIRS)                                         \
  do {                                                                      \
    A acc[2 * SCHUNK];                                                      \
    int64_t m = (PAIRS) * n;                                                \
    for (int64_t j = 0; j < m; j++) acc[j] = 0;                             \
    for (int64_t r = r0; r < r1; r++) {                                     \
      prefetch_row(c, r + 2, r1, at, n);                                    \
      acc_##NAME(acc, (const T *)c->upd + (PAIRS) * (c->g->perm[r] * c->W + at), \
                 m);                                                        \
    }                                                                       \
    fin_##NAME((T *)d, acc, m);                                             \
  } while (0)

static void scatter_chunk(const scatter_ctx *c, char *d, int64_t r0,
                          int64_t r1, int64_t at, int64_t n) {
  if (!c->add) { /* put: the group's last row wins */
    const char *u = c->upd + (size_t)(c->g->perm[r1 - 1] * c->W + at) * c->es;
    memcpy(d, u, (size_t)n * c->es);
    return;
  }
  switch (c->t) {
    case EM_U8: case EM_S8: ADD_CASE(u8, uint8_t, uint64_t, 1); break;
    case EM_U16: case EM_S16: ADD_CASE(u16, uint16_t, uint64_t, 1); break;
    case EM_U32: case EM_S32: ADD_CASE(u32, uint32_t, uint64_t, 1); break;
    case EM_U64: case EM_S64: ADD_CASE(u64, uint64_t, uint64_t, 1); break;
    case EM_F16: ADD_CASE(f16, uint16_t, double, 1); break;
    case EM_BF16: ADD_CASE(bf16, uint16_t, double, 1); break;
    case EM_F32: ADD_CASE(f32, float, double, 1); break;
    case EM_F64: ADD_CASE(f64, double, double, 1); break;
    case EM_C64: ADD_CASE(f32, float, double, 2); break;
    case EM_C128: ADD_CASE(f64, double, double, 2); break;
    default: break;
  }
}

/* Items: (group g, window block m, chunk ch), item = (g * M + m) * nc + ch. */
static void scatter_range(void *c_, int64_t b, int64_t e, int tid) {
  (void)tid;
  const scatter_ctx *c = c_;
  const window *w = &c->w;
  int64_t cnt[EM_MAX_NDIM];
  int64_t ch = b % c->nc, gm = b / c->nc;
  int64_t g = gm / w->M, m = gm % w->M;
  int64_t moff = win_seek(w, m, cnt);
  for (int64_t it = b; it < e; it++) {
    int64_t at = ch * SCHUNK;
    int64_t n = w->L - at < SCHUNK ? w->L - at : SCHUNK;
    /* row scatters: the next group's first rows, ahead of time */
    if (w->M == 1 && c->nc == 1 && g + 1 < c->g->G) {
      int64_t nx = c->g->gstart[g + 1], nx1 = c->g->gstart[g + 2];
      if (!c->add) nx = nx1 - 1; /* put reads only the last row */
      prefetch_row(c, nx, nx1, 0, n);
      if (c->add) prefetch_row(c, nx + 1, nx1, 0, n);
    }
    char *d = c->dst + (size_t)(c->g->gkey[g] + moff + at) * c->es;
    scatter_chunk(c, d, c->g->gstart[g], c->g->gstart[g + 1], m * w->L + at,
                  n);
    if (++ch == c->nc) {
      ch = 0;
      if (++m == w->M) {
        m = 0;
        g++;
        moff = win_seek(w, 0, cnt);
      } else {
        moff = win_next(w, cnt, moff);
      }
    }
  }
}

typedef struct {
  const char *src;
  char *dst;
} copy_ctx;

static void copy_range(void *c_, int64_t b, int64_t e, int tid) {
  (void)tid;
  copy_ctx *c = c_;
  memcpy(c->dst + b, c->src + b, (size_t)(e - b));
}

static em_status scatter(em_array *out, const em_node *node, bool add) {
  const char *op = add ? "indexed_add" : "indexed_put";
  const em_array *a = node->in[0];
  em_array *ix = NULL, *up = NULL;
  int64_t *base = NULL;
  groups g;
  memset(&g, 0, sizeof g);
  em_status st = em_contiguous(node->in[1], &ix);
  if (st == EM_OK) st = em_contiguous(node->in[2], &up);
  if (st == EM_OK) st = em_alloc_output(out);
  if (st != EM_OK) goto done;
  size_t es = em_dtype_size(out->dtype);
  if (out->size > 0) {
    if (em_array_is_contiguous(a)) {
      copy_ctx cc = {em_array_ptr(a), em_array_ptr(out)};
      em_parallel_for(out->size * (int64_t)es, 1 << 20, copy_range, &cc);
    } else {
      em_cpu_copy_strided(a, em_array_ptr(out));
    }
  }
  int k = node->p.index.naxes;
  const int *axes = node->p.index.axes;
  int64_t rows = index_rows(ix);
  if (rows == 0) goto done;
  int64_t ost[EM_MAX_NDIM];
  row_major(out->ndim, out->shape, ost);
  st = resolve_axes(op, ix, k, axes, out->shape, ost, rows, &base);
  if (st != EM_OK || out->size == 0) goto done;
  /* the window: update dims over the non-indexed axes of the target */
  int lead = ix->ndim - 1;
  int64_t wsh[EM_MAX_NDIM], wst[EM_MAX_NDIM];
  int n = 0;
  for (int i = 0, j = 0; i < out->ndim; i++) {
    if (j < k && axes[j] == i) {
      j++;
      continue;
    }
    wsh[n] = up->shape[lead + n];
    wst[n] = ost[i];
    n++;
  }
  scatter_ctx c;
  memset(&c, 0, sizeof c);
  make_window(&c.w, n, wsh, wst);
  if (c.w.M * c.w.L == 0) goto done;
  if (!make_groups(base, rows, out->size - 1, &g)) {
    st = em_fail(EM_ERR_OOM, "[%s] out of host memory", op);
    goto done;
  }
  c.t = out->dtype;
  c.add = add;
  c.dst = em_array_ptr(out);
  c.upd = em_array_ptr(up);
  c.g = &g;
  c.W = c.w.M * c.w.L;
  c.nc = (c.w.L + SCHUNK - 1) / SCHUNK;
  c.es = es;
  int64_t per_item = (c.w.L < SCHUNK ? c.w.L : SCHUNK) * (int64_t)es *
                     (add ? (rows + g.G - 1) / g.G : 1);
  em_parallel_for(g.G * c.w.M * c.nc, grain_for(per_item + 32), scatter_range,
                  &c);
done:
  groups_free(&g);
  free(base);
  em_array_release(ix);
  em_array_release(up);
  return st;
}

em_status em_cpu_k_indexed_add(em_array *out, const em_node *node) {
  return scatter(out, node, true);
}

em_status em_cpu_k_indexed_put(em_array *out, const em_node *node) {
  return scatter(out, node, false);
}
