/* test_indexing.c — gather, indexed_add, indexed_put, take,
 * take_along_axis and the bounds check, through the public API, against
 * naive references written here (Nx 0.13 semantics, XLA-style clamping of
 * out-of-range indices; indexed_add resolves duplicates like Nx's
 * BinaryBackend: the group's updates summed from 0 — exactly for ints,
 * in double for floats — then added to the target and rounded once).
 *
 * Covers all 14 data dtypes, all 8 index dtypes, the :axes option,
 * non-contiguous data and indices, zero-size shapes, update windows
 * smaller than the target, sizes that use the thread pool, the bounds
 * check's messages and the argument errors. */
#include "ref.h"

#define EXACT(what, arr, want) check_host((what), (arr), (want), 0, 0)

static const em_dtype IDX_DTYPES[] = {EM_S64, EM_S32, EM_U8, EM_S16,
                                      EM_U32, EM_S8,  EM_U16, EM_U64};
#define N_IDX_DTYPES 8

/* ---- values --------------------------------------------------------------- */

/* An index for an axis of size d: mostly in range, sometimes out of range
 * (negative only where the dtype is signed) when oob. */
static int64_t rnd_index(em_dtype it, int64_t d, bool oob) {
  if (oob && rng_u64() % 5 == 0) {
    switch (rng_u64() % 4) {
      case 0: if (!dt_uns(it)) return -1; return d;
      case 1: if (!dt_uns(it)) return -d - 3; return d + 5;
      case 2: return d;
      default: return d + 7;
    }
  }
  return d > 0 ? rng_int(0, d - 1) : 0;
}

/* The index a value stands for (u64 above INT64_MAX saturates). */
static int64_t idx_of(em_dtype it, tv v) {
  if (it == EM_U64 && v.i < 0) return INT64_MAX;
  return v.i;
}
static int64_t clampi(int64_t v, int64_t d) {
  if (v >= d) v = d - 1;
  return v < 0 ? 0 : v;
}

static void fill_data(host *h, const void *ctx) {
  (void)ctx;
  for (int64_t i = 0; i < h->n; i++)
    h->v[i] = dt_int(h->t) ? rnd_bits(h->t) : rnd_tv(h->t, -100, 100);
}
typedef struct {
  int64_t d;
  bool oob;
} idx_fill;
static void fill_idx(host *h, const void *ctx) {
  const idx_fill *f = ctx;
  for (int64_t i = 0; i < h->n; i++) h->v[i] = tv_i(rnd_index(h->t, f->d, f->oob));
}

/* Data of t and shape sh, contiguous (view 0) or a non-contiguous view. */
static ah mk_data(em_dtype t, int nd, const int64_t *sh, int view) {
  if (view) return ah_noncontig(t, nd, sh, (view - 1) % 5, fill_data, NULL);
  host h = h_new(t, nd, sh);
  fill_data(&h, NULL);
  return ah_of(h);
}
/* Gather/scatter indices [..., k]: column j in range of dims[j]. */
static ah mk_idx_cols(em_dtype it, int nd, const int64_t *sh, const int64_t *dims,
                      bool oob) {
  host h = h_new(it, nd, sh);
  int64_t k = sh[nd - 1];
  for (int64_t i = 0; i < h.n; i++) h.v[i] = tv_i(rnd_index(it, dims[i % k], oob));
  return ah_of(h);
}
static ah mk_idx(em_dtype it, int nd, const int64_t *sh, int64_t d, bool oob,
                 int view) {
  idx_fill f = {d, oob};
  if (view) return ah_noncontig(it, nd, sh, (view - 1) % 5, fill_idx, &f);
  host h = h_new(it, nd, sh);
  fill_idx(&h, &f);
  return ah_of(h);
}

/* ---- references ------------------------------------------------------------ */

static bool in_axes(int k, const int *axes, int i) {
  for (int j = 0; j < k; j++)
    if (axes[j] == i) return true;
  return false;
}

static host ref_gather(const host *a, const host *ix, const int *axes) {
  int k = (int)ix->sh[ix->nd - 1], lead = ix->nd - 1;
  int64_t sh[EM_MAX_NDIM];
  int nd = 0;
  for (int i = 0; i < lead; i++) sh[nd++] = ix->sh[i];
  for (int i = 0; i < a->nd; i++)
    if (!in_axes(k, axes, i)) sh[nd++] = a->sh[i];
  host o = h_new(a->t, nd, sh);
  int64_t oi[EM_MAX_NDIM], ai[EM_MAX_NDIM];
  for (int64_t f = 0; f < o.n; f++) {
    unflat(f, nd, sh, oi);
    int64_t row = flat(lead, ix->sh, oi);
    for (int i = 0, w = lead; i < a->nd; i++) {
      if (in_axes(k, axes, i)) continue;
      ai[i] = oi[w++];
    }
    for (int j = 0; j < k; j++)
      ai[axes[j]] = clampi(idx_of(ix->t, ix->v[row * k + j]), a->sh[axes[j]]);
    o.v[f] = a->v[flat(a->nd, a->sh, ai)];
  }
  return o;
}

/* BinaryBackend-style scatter (see the file comment). */
static host ref_scatter(const host *a, const host *ix, const host *up,
                        const int *axes, bool add) {
  int k = (int)ix->sh[ix->nd - 1], lead = ix->nd - 1;
  host o = h_copy(a);
  int64_t n = a->n > 0 ? a->n : 1;
  double *sre = calloc((size_t)n, sizeof(double));
  double *sim = calloc((size_t)n, sizeof(double));
  uint64_t *si = calloc((size_t)n, sizeof(uint64_t));
  bool *touched = calloc((size_t)n, sizeof(bool));
  int64_t rows = 1, W = 1;
  for (int i = 0; i < lead; i++) rows *= ix->sh[i];
  for (int i = lead; i < up->nd; i++) W *= up->sh[i];
  int64_t wi[EM_MAX_NDIM], ai[EM_MAX_NDIM];
  for (int64_t r = 0; r < rows && a->n > 0; r++) {
    for (int64_t w = 0; w < W; w++) {
      unflat(w, up->nd - lead, up->sh + lead, wi);
      for (int i = 0, u = 0; i < a->nd; i++)
        if (!in_axes(k, axes, i)) ai[i] = wi[u++];
      for (int j = 0; j < k; j++)
        ai[axes[j]] = clampi(idx_of(ix->t, ix->v[r * k + j]), a->sh[axes[j]]);
      int64_t p = flat(a->nd, a->sh, ai);
      tv u = up->v[r * W + w];
      touched[p] = true;
      if (!add) {
        o.v[p] = u;
      } else if (dt_int(a->t)) {
        si[p] += (uint64_t)u.i;
      } else {
        sre[p] += u.re;
        sim[p] += u.im;
      }
    }
  }
  for (int64_t p = 0; add && p < a->n; p++) {
    if (!touched[p]) continue;
    tv t = a->v[p];
    if (dt_int(a->t)) o.v[p] = tv_i(wrap_int(a->t, (uint64_t)t.i + si[p]));
    else o.v[p] = quant(a->t, tv_c(t.re + sre[p], t.im + sim[p]));
    if (dt_flt(a->t)) o.v[p].im = 0;
  }
  free(sre);
  free(sim);
  free(si);
  free(touched);
  return o;
}

static host ref_take(const host *a, const host *ix, int axis) {
  int64_t sh[EM_MAX_NDIM], oi[EM_MAX_NDIM], ai[EM_MAX_NDIM];
  int nd = 0;
  for (int i = 0; i < axis; i++) sh[nd++] = a->sh[i];
  for (int i = 0; i < ix->nd; i++) sh[nd++] = ix->sh[i];
  for (int i = axis + 1; i < a->nd; i++) sh[nd++] = a->sh[i];
  host o = h_new(a->t, nd, sh);
  for (int64_t f = 0; f < o.n; f++) {
    unflat(f, nd, sh, oi);
    for (int i = 0; i < axis; i++) ai[i] = oi[i];
    int64_t v = idx_of(ix->t, ix->v[flat(ix->nd, ix->sh, oi + axis)]);
    ai[axis] = clampi(v, a->sh[axis]);
    for (int i = axis + 1; i < a->nd; i++) ai[i] = oi[i - 1 + ix->nd];
    o.v[f] = a->v[flat(a->nd, a->sh, ai)];
  }
  return o;
}

static host ref_take_along(const host *a, const host *ix, int axis) {
  host o = h_new(a->t, ix->nd, ix->sh);
  int64_t oi[EM_MAX_NDIM];
  for (int64_t f = 0; f < o.n; f++) {
    unflat(f, ix->nd, ix->sh, oi);
    oi[axis] = clampi(idx_of(ix->t, ix->v[f]), a->sh[axis]);
    o.v[f] = a->v[flat(a->nd, a->sh, oi)];
  }
  return o;
}

/* ---- hand values from the Nx docs ----------------------------------------- */

static em_array *s64_arr(int nd, const int64_t *sh, const int64_t *v) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= sh[i];
  em_array *a = NULL;
  MUST(em_array_from_data(&a, EM_S64, nd, sh, v, (size_t)n * 8, em_cpu()), a);
  return a;
}
static bool s64_is(em_array *a, int nd, const int64_t *sh, const int64_t *v) {
  if (!a || em_array_ndim(a) != nd || em_array_dtype(a) != EM_S64) return false;
  int64_t n = 1;
  for (int i = 0; i < nd; i++) {
    if (em_array_shape(a)[i] != sh[i]) return false;
    n *= sh[i];
  }
  const int64_t *p = em_array_data(a);
  if (!p) return false;
  for (int64_t i = 0; i < n; i++)
    if (p[i] != v[i]) return false;
  return true;
}

static void test_docs(void) {
  em_array *o = NULL;
  /* Nx.gather(t, [[1, 1], [0, 1], [1, 0]]) */
  em_array *t22 = s64_arr(2, (int64_t[]){2, 2}, (int64_t[]){1, 2, 3, 4});
  em_array *i = s64_arr(2, (int64_t[]){3, 2}, (int64_t[]){1, 1, 0, 1, 1, 0});
  MUST(em_gather(&o, t22, i, 0, NULL), o);
  CHECK(s64_is(o, 1, (int64_t[]){3}, (int64_t[]){4, 2, 3}), "doc gather scalars");
  em_array_release(o);
  em_array_release(i);
  /* Nx.gather(t, [[[1, 1], [0, 0]], [[1, 0], [0, 1]]]) */
  i = s64_arr(3, (int64_t[]){2, 2, 2}, (int64_t[]){1, 1, 0, 0, 1, 0, 0, 1});
  MUST(em_gather(&o, t22, i, 0, NULL), o);
  CHECK(s64_is(o, 2, (int64_t[]){2, 2}, (int64_t[]){4, 1, 3, 2}), "doc gather 2d");
  em_array_release(o);
  em_array_release(i);
  em_array_release(t22);
  /* gather subsets, and with axes: [1] */
  em_array *t23 = s64_arr(2, (int64_t[]){2, 3}, (int64_t[]){1, 2, 3, 4, 5, 6});
  i = s64_arr(2, (int64_t[]){4, 1}, (int64_t[]){1, 0, 2, 1});
  MUST(em_gather(&o, t23, i, 1, (int[]){1}), o);
  CHECK(s64_is(o, 2, (int64_t[]){4, 2}, (int64_t[]){2, 5, 1, 4, 3, 6, 2, 5}),
        "doc gather axes [1]");
  em_array_release(o);
  em_array_release(i);
  i = s64_arr(2, (int64_t[]){2, 1}, (int64_t[]){1, 0});
  MUST(em_gather(&o, t23, i, 0, NULL), o);
  CHECK(s64_is(o, 2, (int64_t[]){2, 3}, (int64_t[]){4, 5, 6, 1, 2, 3}), "doc gather rows");
  em_array_release(o);
  em_array_release(i);
  /* Nx.gather(Nx.iota({2, 1, 3}), [[[1], [0], [2]]], axes: [2]) -> [1][3][2][1] */
  em_array *io = s64_arr(3, (int64_t[]){2, 1, 3}, (int64_t[]){0, 1, 2, 3, 4, 5});
  i = s64_arr(3, (int64_t[]){1, 3, 1}, (int64_t[]){1, 0, 2});
  MUST(em_gather(&o, io, i, 1, (int[]){2}), o);
  CHECK(s64_is(o, 4, (int64_t[]){1, 3, 2, 1}, (int64_t[]){1, 4, 0, 3, 2, 5}),
        "doc gather iota axes [2]");
  em_array_release(o);
  em_array_release(i);
  em_array_release(io);

  /* Nx.take_along_axis(t, [[0,0,2,2,1,1],[2,2,1,1,0,0]], axis: 1) */
  i = s64_arr(2, (int64_t[]){2, 6}, (int64_t[]){0, 0, 2, 2, 1, 1, 2, 2, 1, 1, 0, 0});
  MUST(em_take_along_axis(&o, t23, i, 1), o);
  CHECK(s64_is(o, 2, (int64_t[]){2, 6},
               (int64_t[]){1, 1, 3, 3, 2, 2, 6, 6, 5, 5, 4, 4}),
        "doc take_along_axis 1");
  em_array_release(o);
  em_array_release(i);
  i = s64_arr(2, (int64_t[]){3, 3}, (int64_t[]){0, 1, 1, 1, 0, 0, 0, 1, 0});
  MUST(em_take_along_axis(&o, t23, i, 0), o);
  CHECK(s64_is(o, 2, (int64_t[]){3, 3}, (int64_t[]){1, 5, 6, 4, 2, 3, 1, 5, 3}),
        "doc take_along_axis 0");
  em_array_release(o);
  em_array_release(i);
  /* take along axis 1 with 2-d indices: shape [2][2][2] */
  i = s64_arr(2, (int64_t[]){2, 2}, (int64_t[]){2, 0, 1, 1});
  MUST(em_take(&o, t23, i, -1), o);
  CHECK(s64_is(o, 3, (int64_t[]){2, 2, 2}, (int64_t[]){3, 1, 2, 2, 6, 4, 5, 5}),
        "take axis -1");
  em_array_release(o);
  em_array_release(i);
  /* scalar index removes the axis */
  i = s64_arr(0, NULL, (int64_t[]){1});
  MUST(em_take(&o, t23, i, 0), o);
  CHECK(s64_is(o, 1, (int64_t[]){3}, (int64_t[]){4, 5, 6}), "take scalar index");
  em_array_release(o);
  em_array_release(i);
  em_array_release(t23);

  /* Nx.indexed_add(iota {1,2,3}, [[0,0,0],[0,1,1],[0,0,0],[0,0,2],[0,1,2]],
   * [1, 3, 1, -2, 5]) */
  i = s64_arr(2, (int64_t[]){5, 3},
              (int64_t[]){0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 2, 0, 1, 2});
  em_array *u = s64_arr(1, (int64_t[]){5}, (int64_t[]){1, 3, 1, -2, 5});
  em_array *io123 = s64_arr(3, (int64_t[]){1, 2, 3}, (int64_t[]){0, 1, 2, 3, 4, 5});
  MUST(em_indexed_add(&o, io123, i, u, 0, NULL), o);
  CHECK(s64_is(o, 3, (int64_t[]){1, 2, 3}, (int64_t[]){2, 1, 0, 3, 7, 10}),
        "doc indexed_add");
  em_array_release(o);
  em_array_release(i);
  em_array_release(u);
  /* Nx.indexed_put(iota {1,2,3}, [[0,0],[0,2]], [[0,30],[20,50]], axes: [0,2]) */
  i = s64_arr(2, (int64_t[]){2, 2}, (int64_t[]){0, 0, 0, 2});
  u = s64_arr(2, (int64_t[]){2, 2}, (int64_t[]){0, 30, 20, 50});
  MUST(em_indexed_put(&o, io123, i, u, 2, (int[]){0, 2}), o);
  CHECK(s64_is(o, 3, (int64_t[]){1, 2, 3}, (int64_t[]){0, 1, 20, 30, 4, 50}),
        "doc indexed_put axes");
  em_array_release(o);
  em_array_release(i);
  em_array_release(u);
  /* Nx.indexed_put(iota {1,3,2}, [[0,0],[0,2]], [[0,10],[40,50]]) */
  em_array *io132 = s64_arr(3, (int64_t[]){1, 3, 2}, (int64_t[]){0, 1, 2, 3, 4, 5});
  i = s64_arr(2, (int64_t[]){2, 2}, (int64_t[]){0, 0, 0, 2});
  u = s64_arr(2, (int64_t[]){2, 2}, (int64_t[]){0, 10, 40, 50});
  MUST(em_indexed_put(&o, io132, i, u, 0, NULL), o);
  CHECK(s64_is(o, 3, (int64_t[]){1, 3, 2}, (int64_t[]){0, 10, 2, 3, 40, 50}),
        "doc indexed_put rows");
  em_array_release(o);
  em_array_release(i);
  em_array_release(u);
  em_array_release(io132);
  /* duplicates: put is last-wins in index order, add accumulates */
  i = s64_arr(2, (int64_t[]){4, 3}, (int64_t[]){0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1, 1});
  u = s64_arr(1, (int64_t[]){4}, (int64_t[]){7, 8, 9, 10});
  MUST(em_indexed_put(&o, io123, i, u, 0, NULL), o);
  CHECK(s64_is(o, 3, (int64_t[]){1, 2, 3}, (int64_t[]){8, 1, 2, 3, 10, 5}),
        "indexed_put last wins");
  em_array_release(o);
  MUST(em_indexed_add(&o, io123, i, u, 0, NULL), o);
  CHECK(s64_is(o, 3, (int64_t[]){1, 2, 3}, (int64_t[]){8, 1, 2, 3, 30, 5}),
        "indexed_add duplicates");
  em_array_release(o);
  em_array_release(i);
  em_array_release(u);
  /* rank-1 indices: one index, updates of the window's shape */
  i = s64_arr(1, (int64_t[]){2}, (int64_t[]){0, 1});
  u = s64_arr(1, (int64_t[]){3}, (int64_t[]){100, 200, 300});
  MUST(em_indexed_add(&o, io123, i, u, 0, NULL), o);
  CHECK(s64_is(o, 3, (int64_t[]){1, 2, 3}, (int64_t[]){0, 1, 2, 103, 204, 305}),
        "indexed_add rank-1 indices");
  em_array_release(o);
  em_array_release(i);
  em_array_release(u);
  em_array_release(io123);
  /* a window smaller than the target: [4,3,2] <- [[1]], updates [1,2,1]
   * lands at [1, 0:2, 0:1] (XLA scatter semantics) */
  {
    int64_t v[24];
    for (int k = 0; k < 24; k++) v[k] = k;
    em_array *t = s64_arr(3, (int64_t[]){4, 3, 2}, v);
    i = s64_arr(2, (int64_t[]){1, 1}, (int64_t[]){1});
    u = s64_arr(3, (int64_t[]){1, 2, 1}, (int64_t[]){-1, -2});
    MUST(em_indexed_put(&o, t, i, u, 0, NULL), o);
    v[6] = -1;
    v[8] = -2;
    CHECK(s64_is(o, 3, (int64_t[]){4, 3, 2}, v), "indexed_put small window");
    em_array_release(o);
    em_array_release(i);
    em_array_release(u);
    em_array_release(t);
  }
  /* gather with k = 0: every row is the whole tensor */
  {
    em_array *t = s64_arr(1, (int64_t[]){3}, (int64_t[]){5, 6, 7});
    i = s64_arr(2, (int64_t[]){2, 0}, NULL);
    MUST(em_gather(&o, t, i, 0, NULL), o);
    CHECK(s64_is(o, 2, (int64_t[]){2, 3}, (int64_t[]){5, 6, 7, 5, 6, 7}), "gather k=0");
    em_array_release(o);
    em_array_release(i);
    em_array_release(t);
  }
  /* clamping of out-of-range indices */
  {
    em_array *t = s64_arr(1, (int64_t[]){3}, (int64_t[]){5, 6, 7});
    i = s64_arr(1, (int64_t[]){4}, (int64_t[]){-5, 3, 100, INT64_MIN});
    MUST(em_take(&o, t, i, 0), o);
    CHECK(s64_is(o, 1, (int64_t[]){4}, (int64_t[]){5, 7, 7, 5}), "take clamps");
    em_array_release(o);
    uint64_t big[2] = {UINT64_MAX, 1};
    em_array *ib = NULL;
    MUST(em_array_from_data(&ib, EM_U64, 1, (int64_t[]){2}, big, 16, em_cpu()), ib);
    MUST(em_take(&o, t, ib, 0), o);
    CHECK(s64_is(o, 1, (int64_t[]){2}, (int64_t[]){7, 6}), "take clamps u64");
    em_array_release(o);
    em_array_release(ib);
    em_array_release(i);
    em_array_release(t);
  }
}

/* f16/bf16/f32 duplicates: summed in double, rounded once (BinaryBackend),
 * not rounded after each add. */
static void test_add_rounding(void) {
  struct {
    em_dtype t;
    double t0, big;
  } cases[] = {{EM_F16, 0, 2048}, {EM_BF16, 0, 256}, {EM_F32, 0, 16777216}};
  for (int c = 0; c < 3; c++) {
    em_dtype t = cases[c].t;
    host th = h_new(t, 1, (int64_t[]){1});
    th.v[0] = tv_f(cases[c].t0);
    host uh = h_new(t, 1, (int64_t[]){3});
    uh.v[0] = tv_f(cases[c].big);
    uh.v[1] = tv_f(1);
    uh.v[2] = tv_f(1);
    em_array *ta = h_array(&th), *ua = h_array(&uh), *o = NULL;
    em_array *i = s64_arr(2, (int64_t[]){3, 1}, (int64_t[]){0, 0, 0});
    MUST(em_indexed_add(&o, ta, i, ua, 0, NULL), o);
    host w = h_new(t, 1, (int64_t[]){1});
    w.v[0] = tv_f(cases[c].big + 2); /* per-add rounding would give big */
    char what[64];
    snprintf(what, sizeof what, "indexed_add rounds once (%s)", dn(t));
    EXACT(what, o, &w);
    em_array_release(o);
    em_array_release(i);
    em_array_release(ta);
    em_array_release(ua);
    h_free(&th);
    h_free(&uh);
    h_free(&w);
  }
  /* signed wrap-around */
  {
    int8_t tv8[1] = {120}, uv8[2] = {5, 10};
    em_array *ta = NULL, *ua = NULL, *o = NULL;
    MUST(em_array_from_data(&ta, EM_S8, 1, (int64_t[]){1}, tv8, 1, em_cpu()), ta);
    MUST(em_array_from_data(&ua, EM_S8, 1, (int64_t[]){2}, uv8, 2, em_cpu()), ua);
    em_array *i = s64_arr(2, (int64_t[]){2, 1}, (int64_t[]){0, 0});
    MUST(em_indexed_add(&o, ta, i, ua, 0, NULL), o);
    const int8_t *p = em_array_data(o);
    CHECK(p && p[0] == (int8_t)-121, "s8 wrap: got %d", p ? p[0] : 0);
    em_array_release(o);
    em_array_release(i);
    em_array_release(ta);
    em_array_release(ua);
  }
}

/* ---- randomized differential tests ---------------------------------------- */

typedef struct {
  int nd;
  int64_t sh[4];
  int k;
  int axes[4];
  int lead;
  int64_t lsh[3];
} gcase;

static const gcase GCASES[] = {
    {2, {7, 5}, 1, {0}, 1, {6}},         /* rows */
    {2, {7, 5}, 1, {1}, 1, {9}},         /* columns */
    {2, {7, 5}, 2, {0, 1}, 2, {3, 4}},   /* scalars, batch of indices */
    {3, {4, 3, 6}, 1, {1}, 1, {5}},      /* middle axis */
    {3, {4, 3, 6}, 2, {0, 2}, 1, {8}},   /* outer and inner */
    {3, {4, 3, 6}, 2, {1, 2}, 2, {2, 3}},
    {4, {3, 2, 4, 5}, 2, {1, 3}, 1, {7}},
    {1, {9}, 1, {0}, 1, {12}},
    {3, {4, 3, 6}, 0, {0}, 1, {3}},      /* k = 0 */
    {3, {4, 3, 6}, 3, {0, 1, 2}, 0, {0}}, /* rank-1 indices */
};
#define N_GCASES ((int)(sizeof GCASES / sizeof GCASES[0]))

static void test_gather_random(em_dtype t) {
  char what[160];
  for (int c = 0; c < N_GCASES; c++) {
    const gcase *g = &GCASES[c];
    for (int view = 0; view < 3; view++) {
      em_dtype it = IDX_DTYPES[(c + view) % N_IDX_DTYPES];
      ah a = mk_data(t, g->nd, g->sh, view);
      int64_t ish[4], dims[4];
      for (int i = 0; i < g->lead; i++) ish[i] = g->lsh[i];
      ish[g->lead] = g->k;
      for (int j = 0; j < g->k; j++) dims[j] = g->sh[g->axes[j]];
      ah ix = mk_idx_cols(it, g->lead + 1, ish, dims, true);
      bool dflt = true;
      for (int j = 0; j < g->k; j++) dflt &= g->axes[j] == j;
      em_array *o = SENTINEL;
      em_status st = em_gather(&o, a.a, ix.a, g->k, dflt && view == 1 ? NULL : g->axes);
      CHECK(st == EM_OK, "gather case %d: %s", c, em_last_error());
      host w = ref_gather(&a.h, &ix.h, g->axes);
      snprintf(what, sizeof what, "gather case %d view %d idx %s", c, view, dn(it));
      EXACT(what, o, &w);
      em_array_release(o);
      h_free(&w);

      /* scatter with the same indices; updates of the gathered shape */
      host uh = h_new(t, w.nd, w.sh);
      fill_data(&uh, NULL);
      ah up = ah_of(uh);
      for (int add = 0; add < 2; add++) {
        o = SENTINEL;
        st = add ? em_indexed_add(&o, a.a, ix.a, up.a, g->k, g->axes)
                 : em_indexed_put(&o, a.a, ix.a, up.a, g->k, g->axes);
        CHECK(st == EM_OK, "scatter case %d: %s", c, em_last_error());
        host ws = ref_scatter(&a.h, &ix.h, &up.h, g->axes, add);
        snprintf(what, sizeof what, "indexed_%s case %d view %d idx %s",
                 add ? "add" : "put", c, view, dn(it));
        EXACT(what, o, &ws);
        em_array_release(o);
        h_free(&ws);
      }
      ah_free(&up);
      ah_free(&ix);
      ah_free(&a);
    }
  }
}

static void test_take_random(em_dtype t) {
  char what[160];
  const int64_t ash[3] = {5, 4, 6};
  const int64_t ishs[3][2] = {{7, 0}, {3, 4}, {0, 0}};
  const int indims[3] = {1, 2, 0};
  for (int axis = 0; axis < 3; axis++)
    for (int s = 0; s < 3; s++) {
      int view = (axis + s) % 4;
      em_dtype it = IDX_DTYPES[(axis * 3 + s) % N_IDX_DTYPES];
      ah a = mk_data(t, 3, ash, view);
      ah ix = mk_idx(it, indims[s], ishs[s], ash[axis], true, (s + 1) % 3);
      em_array *o = SENTINEL;
      CHECK(em_take(&o, a.a, ix.a, axis) == EM_OK, "take: %s", em_last_error());
      host w = ref_take(&a.h, &ix.h, axis);
      snprintf(what, sizeof what, "take axis %d idx rank %d view %d %s", axis,
               indims[s], view, dn(it));
      EXACT(what, o, &w);
      em_array_release(o);
      h_free(&w);
      ah_free(&ix);

      /* take_along_axis with N != D on axis */
      int64_t tsh[3] = {ash[0], ash[1], ash[2]};
      tsh[axis] = 3 + s * 2;
      ix = mk_idx(it, 3, tsh, ash[axis], true, s % 3);
      o = SENTINEL;
      CHECK(em_take_along_axis(&o, a.a, ix.a, axis - (s == 2 ? 3 : 0)) == EM_OK,
            "take_along_axis: %s", em_last_error());
      w = ref_take_along(&a.h, &ix.h, axis);
      snprintf(what, sizeof what, "take_along_axis axis %d view %d %s", axis, view,
               dn(it));
      EXACT(what, o, &w);
      em_array_release(o);
      h_free(&w);
      ah_free(&ix);
      ah_free(&a);
    }
}

/* Zero-size shapes and scalar-ish edges. */
static void test_edges(void) {
  char what[96];
  em_dtype t = EM_F32;
  /* zero index rows */
  {
    ah a = mk_data(t, 2, (int64_t[]){4, 3}, 0);
    ah ix = mk_idx(EM_S32, 2, (int64_t[]){0, 1}, 4, false, 0);
    em_array *o = NULL;
    MUST(em_gather(&o, a.a, ix.a, 0, NULL), o);
    host w = ref_gather(&a.h, &ix.h, (int[]){0});
    EXACT("gather zero rows", o, &w);
    em_array_release(o);
    host uh = h_new(t, 2, (int64_t[]){0, 3});
    ah up = ah_of(uh);
    MUST(em_indexed_add(&o, a.a, ix.a, up.a, 0, NULL), o);
    EXACT("indexed_add zero rows", o, &a.h);
    em_array_release(o);
    MUST(em_indexed_put(&o, a.a, ix.a, up.a, 0, NULL), o);
    EXACT("indexed_put zero rows", o, &a.h);
    em_array_release(o);
    ah_free(&up);
    h_free(&w);
    ah_free(&ix);
    ah_free(&a);
  }
  /* zero-size non-indexed axis */
  {
    ah a = mk_data(t, 2, (int64_t[]){4, 0}, 0);
    ah ix = mk_idx(EM_S64, 2, (int64_t[]){3, 1}, 4, true, 0);
    em_array *o = NULL;
    MUST(em_gather(&o, a.a, ix.a, 0, NULL), o);
    host w = ref_gather(&a.h, &ix.h, (int[]){0});
    EXACT("gather zero window", o, &w);
    em_array_release(o);
    ah up = ah_of(h_new(t, 2, (int64_t[]){3, 0}));
    MUST(em_indexed_add(&o, a.a, ix.a, up.a, 0, NULL), o);
    EXACT("indexed_add zero-size target", o, &a.h);
    em_array_release(o);
    ah_free(&up);
    h_free(&w);
    ah_free(&ix);
    MUST(em_take(&o, a.a, (ix = mk_idx(EM_U8, 1, (int64_t[]){5}, 4, true, 0)).a, 0), o);
    w = ref_take(&a.h, &ix.h, 0);
    EXACT("take zero-size", o, &w);
    em_array_release(o);
    h_free(&w);
    ah_free(&ix);
    ah_free(&a);
  }
  /* scalar updates into a rank-1 target; rank-0 data gather with k = 0 */
  {
    ah a = mk_data(EM_C128, 0, NULL, 0);
    ah ix = mk_idx(EM_S64, 2, (int64_t[]){3, 0}, 1, false, 0);
    em_array *o = NULL;
    MUST(em_gather(&o, a.a, ix.a, 0, NULL), o);
    host w = ref_gather(&a.h, &ix.h, NULL);
    snprintf(what, sizeof what, "gather from a scalar");
    EXACT(what, o, &w);
    em_array_release(o);
    h_free(&w);
    ah up = mk_data(EM_C128, 1, (int64_t[]){3}, 0);
    MUST(em_indexed_add(&o, a.a, ix.a, up.a, 0, NULL), o);
    host ws = ref_scatter(&a.h, &ix.h, &up.h, NULL, true);
    EXACT("indexed_add into a scalar", o, &ws);
    em_array_release(o);
    h_free(&ws);
    ah_free(&up);
    ah_free(&ix);
    ah_free(&a);
  }
  /* lazy inputs: indices produced by another op */
  {
    ah a = mk_data(EM_BF16, 2, (int64_t[]){6, 5}, 0);
    em_array *io = NULL, *o = NULL;
    MUST(em_iota(&io, EM_S16, 1, (int64_t[]){6}, 0, em_cpu()), io);
    em_array *rv = NULL;
    MUST(em_reverse(&rv, io, 1, (int[]){0}), rv);
    MUST(em_take(&o, a.a, rv, 0), o);
    host w = h_reverse(&a.h, 1, (int[]){0});
    EXACT("take with lazy reversed iota", o, &w);
    h_free(&w);
    em_array_release(o);
    em_array_release(rv);
    em_array_release(io);
    ah_free(&a);
  }
}

/* Sizes that split over the thread pool. */
static void test_large(void) {
  char what[96];
  /* gather rows */
  {
    ah a = mk_data(EM_F32, 2, (int64_t[]){3000, 40}, 0);
    ah ix = mk_idx(EM_S64, 2, (int64_t[]){20000, 1}, 3000, true, 0);
    em_array *o = NULL;
    MUST(em_gather(&o, a.a, ix.a, 0, NULL), o);
    host w = ref_gather(&a.h, &ix.h, (int[]){0});
    EXACT("large gather rows", o, &w);
    em_array_release(o);
    h_free(&w);
    /* take of the same rows (flat indices) */
    em_array *flatix = NULL;
    MUST(em_reshape(&flatix, ix.a, 1, (int64_t[]){20000}), flatix);
    MUST(em_take(&o, a.a, flatix, 0), o);
    host fh = h_reshape(&ix.h, 1, (int64_t[]){20000});
    w = ref_take(&a.h, &fh, 0);
    EXACT("large take rows", o, &w);
    em_array_release(o);
    h_free(&w);
    h_free(&fh);
    em_array_release(flatix);
    ah_free(&ix);
    /* columns: a big window of single elements */
    ix = mk_idx(EM_S32, 2, (int64_t[]){300, 1}, 40, true, 0);
    MUST(em_gather(&o, a.a, ix.a, 1, (int[]){1}), o);
    w = ref_gather(&a.h, &ix.h, (int[]){1});
    EXACT("large gather columns", o, &w);
    em_array_release(o);
    h_free(&w);
    ah_free(&ix);
    ah_free(&a);
  }
  /* scatter with many duplicates */
  const em_dtype ts[] = {EM_F32, EM_S32, EM_F16, EM_C64};
  for (int c = 0; c < 4; c++) {
    em_dtype t = ts[c];
    ah a = mk_data(t, 2, (int64_t[]){1500, 24}, 0);
    ah ix = mk_idx(EM_S64, 2, (int64_t[]){40000, 1}, 1500, true, 0);
    ah up = mk_data(t, 2, (int64_t[]){40000, 24}, 0);
    for (int add = 0; add < 2; add++) {
      em_array *o = NULL;
      MUST(add ? em_indexed_add(&o, a.a, ix.a, up.a, 0, NULL)
               : em_indexed_put(&o, a.a, ix.a, up.a, 0, NULL),
           o);
      host w = ref_scatter(&a.h, &ix.h, &up.h, (int[]){0}, add);
      snprintf(what, sizeof what, "large indexed_%s %s", add ? "add" : "put", dn(t));
      EXACT(what, o, &w);
      em_array_release(o);
      h_free(&w);
    }
    ah_free(&up);
    ah_free(&ix);
    ah_free(&a);
  }
  /* one group, long window: [4, 3000] with every row hitting index 2 */
  {
    ah a = mk_data(EM_F64, 2, (int64_t[]){4, 3000}, 0);
    ah ix = mk_idx(EM_U8, 2, (int64_t[]){50, 1}, 1, false, 0);
    for (int64_t i = 0; i < 50; i++) ix.h.v[i] = tv_i(2);
    em_array_release(ix.a);
    ix.a = h_array(&ix.h);
    ah up = mk_data(EM_F64, 2, (int64_t[]){50, 3000}, 0);
    em_array *o = NULL;
    MUST(em_indexed_add(&o, a.a, ix.a, up.a, 0, NULL), o);
    host w = ref_scatter(&a.h, &ix.h, &up.h, (int[]){0}, true);
    EXACT("indexed_add one group", o, &w);
    em_array_release(o);
    h_free(&w);
    ah_free(&up);
    ah_free(&ix);
    ah_free(&a);
  }
  /* take_along_axis over the last axis */
  {
    ah a = mk_data(EM_S64, 2, (int64_t[]){300, 200}, 0);
    ah ix = mk_idx(EM_S32, 2, (int64_t[]){300, 150}, 200, true, 0);
    em_array *o = NULL;
    MUST(em_take_along_axis(&o, a.a, ix.a, 1), o);
    host w = ref_take_along(&a.h, &ix.h, 1);
    EXACT("large take_along_axis", o, &w);
    em_array_release(o);
    h_free(&w);
    ah_free(&ix);
    ah_free(&a);
  }
}

/* ---- bounds check ----------------------------------------------------------- */

static void expect_eval_error(const char *what, em_array *o, const char *n1,
                              const char *n2, const char *n3, const char *n4) {
  em_status st = o ? em_eval(&o, 1) : EM_ERR_RUNTIME;
  const char *m = em_last_error();
  bool ok = st == EM_ERR_ARGUMENT && strstr(m, n1) && strstr(m, n2) &&
            strstr(m, n3) && strstr(m, n4);
  CHECK(ok, "%s: status %s, message \"%s\"", what, em_status_name(st), m);
}

static void test_bounds_check(void) {
  ah a = mk_data(EM_F32, 2, (int64_t[]){5, 3}, 0);
  em_array *o = NULL;
  em_set_bounds_check(true);
  /* gather: index 7 at position [2,1] for axis 1 of size 3 */
  em_array *i = s64_arr(2, (int64_t[]){3, 2}, (int64_t[]){0, 0, 1, 2, 4, 7});
  MUST(em_gather(&o, a.a, i, 0, NULL), o);
  expect_eval_error("gather bounds", o, "[gather]", "index 7", "[2,1]", "size 3");
  em_array_release(o);
  /* the same indices are fine within range, and the first bad one wins */
  em_array *i2 = s64_arr(2, (int64_t[]){3, 2}, (int64_t[]){0, 0, -1, 9, 5, 2});
  em_array *u = NULL;
  MUST(em_full_scalar(&u, EM_F32, 1.0, em_cpu()), u);
  em_array *ub = NULL;
  MUST(em_broadcast(&ub, u, 1, (int64_t[]){3}, NULL), ub);
  MUST(em_indexed_add(&o, a.a, i2, ub, 0, NULL), o);
  expect_eval_error("indexed_add bounds", o, "[indexed_add]", "index -1", "[1,0]",
                    "axis 0 of size 5");
  em_array_release(o);
  MUST(em_indexed_put(&o, a.a, i2, ub, 0, NULL), o);
  expect_eval_error("indexed_put bounds", o, "[indexed_put]", "index -1", "[1,0]",
                    "size 5");
  em_array_release(o);
  em_array_release(i2);
  /* take: u64 huge value */
  uint64_t big[3] = {1, 0, UINT64_MAX};
  em_array *ib = NULL;
  MUST(em_array_from_data(&ib, EM_U64, 2, (int64_t[]){1, 3}, big, 24, em_cpu()), ib);
  MUST(em_take(&o, a.a, ib, 1), o);
  expect_eval_error("take bounds", o, "[take]", "index 18446744073709551615",
                    "[0,2]", "axis 1 of size 3");
  em_array_release(o);
  em_array_release(ib);
  /* take_along_axis */
  em_array *it = s64_arr(2, (int64_t[]){2, 3}, (int64_t[]){0, 1, 2, 3, 5, 4});
  MUST(em_take_along_axis(&o, a.a, it, 0), o);
  expect_eval_error("take_along_axis bounds", o, "[take_along_axis]", "index 5",
                    "[1,1]", "axis 0 of size 5");
  em_array_release(o);
  /* in range: evaluates fine with the check on */
  em_array *ok = s64_arr(2, (int64_t[]){2, 3}, (int64_t[]){0, 1, 2, 3, 4, 4});
  MUST(em_take_along_axis(&o, a.a, ok, 0), o);
  CHECK(em_eval(&o, 1) == EM_OK, "in-range with bounds check: %s", em_last_error());
  em_array_release(o);
  em_array_release(ok);
  /* off again: clamps */
  em_set_bounds_check(false);
  MUST(em_gather(&o, a.a, i, 0, NULL), o);
  CHECK(em_eval(&o, 1) == EM_OK, "clamped after the check is off: %s", em_last_error());
  em_array_release(o);
  em_array_release(it);
  em_array_release(i);
  em_array_release(ub);
  em_array_release(u);
  ah_free(&a);
}

/* ---- argument errors ----------------------------------------------------- */

static void test_errors(void) {
  ah a = mk_data(EM_F32, 2, (int64_t[]){4, 3}, 0);
  ah fi = mk_data(EM_F32, 2, (int64_t[]){2, 1}, 0);
  em_array *i21 = s64_arr(2, (int64_t[]){2, 1}, (int64_t[]){0, 1});
  em_array *i0 = s64_arr(0, NULL, (int64_t[]){0});
  em_array *i23 = s64_arr(2, (int64_t[]){2, 3}, (int64_t[]){0, 0, 0, 0, 0, 0});
  em_array *i22 = s64_arr(2, (int64_t[]){2, 2}, (int64_t[]){0, 0, 1, 1});
  em_array *o = SENTINEL;
  em_status st;

  st = em_gather(&o, a.a, fi.a, 0, NULL);
  CHECK_ERR(st, o, "gather", "integer");
  o = SENTINEL;
  st = em_gather(&o, a.a, i0, 0, NULL);
  CHECK_ERR(st, o, "gather", "rank");
  o = SENTINEL;
  st = em_gather(&o, a.a, i23, 0, NULL);
  CHECK_ERR(st, o, "gather", "(3)", "rank (2)");
  o = SENTINEL;
  st = em_gather(&o, a.a, i22, 2, (int[]){1, 0});
  CHECK_ERR(st, o, "gather", "increasing");
  o = SENTINEL;
  st = em_gather(&o, a.a, i22, 2, (int[]){1, 1});
  CHECK_ERR(st, o, "gather", "increasing");
  o = SENTINEL;
  st = em_gather(&o, a.a, i22, 1, (int[]){0});
  CHECK_ERR(st, o, "gather", "1 axes");
  o = SENTINEL;
  st = em_gather(&o, a.a, i21, 1, (int[]){2});
  CHECK_ERR(st, o, "gather", "axis 2");
  o = SENTINEL;
  st = em_gather(&o, a.a, i21, 2, NULL);
  CHECK_ERR(st, o, "gather", "naxes");
  o = SENTINEL;
  st = em_gather(&o, NULL, i21, 0, NULL);
  CHECK_ERR(st, o, "gather", "NULL");
  st = em_gather(NULL, a.a, i21, 0, NULL);
  CHECK_ERR(st, NULL, "gather", "NULL");
  {
    ah z = mk_data(EM_F32, 2, (int64_t[]){0, 3}, 0);
    o = SENTINEL;
    st = em_gather(&o, z.a, i21, 0, NULL);
    CHECK_ERR(st, o, "gather", "size 0");
    o = SENTINEL;
    st = em_take(&o, z.a, i21, 0);
    CHECK_ERR(st, o, "take", "size 0");
    ah_free(&z);
  }
  /* result rank above 16 */
  {
    int64_t sh[16];
    for (int d = 0; d < 16; d++) sh[d] = 1;
    ah big = mk_data(EM_U8, 10, sh, 0);
    sh[9] = 1;
    em_array *ix = s64_arr(10, sh, (int64_t[]){0});
    o = SENTINEL;
    st = em_take(&o, big.a, ix, 0);
    CHECK_ERR(st, o, "take", "rank 19");
    em_array *ix2 = s64_arr(9, sh, (int64_t[]){0});
    o = SENTINEL;
    st = em_gather(&o, big.a, ix2, 0, NULL);
    CHECK_ERR(st, o, "gather", "rank 17");
    em_array_release(ix);
    em_array_release(ix2);
    ah_free(&big);
  }

  /* indexed */
  ah u2 = mk_data(EM_F32, 2, (int64_t[]){2, 3}, 0);
  ah u2d = mk_data(EM_F64, 2, (int64_t[]){2, 3}, 0);
  ah u2w = mk_data(EM_F32, 2, (int64_t[]){2, 4}, 0);
  ah u3 = mk_data(EM_F32, 2, (int64_t[]){3, 3}, 0);
  o = SENTINEL;
  st = em_indexed_add(&o, a.a, i21, u2d.a, 0, NULL);
  CHECK_ERR(st, o, "indexed_add", "dtype", "f64");
  o = SENTINEL;
  st = em_indexed_put(&o, a.a, i21, u2w.a, 0, NULL);
  CHECK_ERR(st, o, "indexed_put", "updates [2,4]");
  o = SENTINEL;
  st = em_indexed_put(&o, a.a, i21, u3.a, 0, NULL);
  CHECK_ERR(st, o, "indexed_put", "updates [3,3]");
  o = SENTINEL;
  st = em_indexed_add(&o, a.a, i22, u2.a, 0, NULL);
  CHECK_ERR(st, o, "indexed_add", "updates");
  o = SENTINEL;
  st = em_indexed_add(&o, a.a, fi.a, u2.a, 0, NULL);
  CHECK_ERR(st, o, "indexed_add", "integer");
  o = SENTINEL;
  st = em_indexed_add(&o, a.a, i21, NULL, 0, NULL);
  CHECK_ERR(st, o, "indexed_add", "NULL");
  o = SENTINEL;
  st = em_indexed_put(&o, a.a, i21, u2.a, 1, (int[]){-3});
  CHECK_ERR(st, o, "indexed_put", "axis -3");
  /* a valid call of the same family, for contrast */
  o = NULL;
  CHECK(em_indexed_put(&o, a.a, i21, u2.a, 1, (int[]){-2}) == EM_OK, "axis -2 ok");
  em_array_release(o);

  /* take / take_along_axis */
  o = SENTINEL;
  st = em_take(&o, a.a, fi.a, 0);
  CHECK_ERR(st, o, "take", "integer");
  o = SENTINEL;
  st = em_take(&o, a.a, i21, 2);
  CHECK_ERR(st, o, "take", "axis 2");
  {
    ah s = mk_data(EM_F32, 0, NULL, 0);
    o = SENTINEL;
    st = em_take(&o, s.a, i21, 0);
    CHECK_ERR(st, o, "take", "rank");
    o = SENTINEL;
    st = em_take_along_axis(&o, s.a, i0, 0);
    CHECK_ERR(st, o, "take_along_axis", "rank");
    ah_free(&s);
  }
  o = SENTINEL;
  st = em_take_along_axis(&o, a.a, i21, 0);
  CHECK_ERR(st, o, "take_along_axis", "[2,1]", "axis 0");
  o = SENTINEL;
  st = em_take_along_axis(&o, a.a, i21, 1);
  CHECK_ERR(st, o, "take_along_axis", "axis 1");
  o = SENTINEL;
  st = em_take_along_axis(&o, a.a, fi.a, 1);
  CHECK_ERR(st, o, "take_along_axis", "integer");
  o = SENTINEL;
  st = em_take_along_axis(&o, a.a, i21, -3);
  CHECK_ERR(st, o, "take_along_axis", "axis -3");

  ah_free(&u2);
  ah_free(&u2d);
  ah_free(&u2w);
  ah_free(&u3);
  em_array_release(i21);
  em_array_release(i0);
  em_array_release(i23);
  em_array_release(i22);
  ah_free(&fi);
  ah_free(&a);
}

int main(void) {
  rng_seed(0x1dc5);
  test_docs();
  test_add_rounding();
  for (int i = 0; i < N_ALL_DTYPES; i++) {
    test_gather_random(ALL_DTYPES[i]);
    test_take_random(ALL_DTYPES[i]);
  }
  test_edges();
  test_large();
  test_bounds_check();
  test_errors();
  return TEST_SUMMARY();
}
