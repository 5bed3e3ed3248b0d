/* test_cuda_indexing.c — the CUDA indexing family (gather, take,
 * take_along_axis, indexed_add, indexed_put) and cumulative scans against
 * the CPU backend (differential, tests/cuda_diff.h): every dtype, ranks
 * 1-4, every axis, scalars, zero-size arrays, non-contiguous data and
 * indices, every index dtype, duplicate and out-of-range (clamped)
 * indices, the bounds-check failures (same status and message as the
 * CPU's), reversed scans and arrays of more than 2^20 elements.
 *
 * Indexing results must equal the CPU's exactly (scatter-add sums in the
 * same order). Cumulative max/min and integer scans must be exact; float
 * sums over integer values and products of powers of two are exact too
 * (every partial result is representable); float sums of general values
 * are compared with a tolerance that grows with the scanned length.
 *
 * Without a CUDA device it prints "SKIPPED: no CUDA device" and passes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/array-impl.h"
#include "cpu/cpu-kernels.h"
#include "harness.h"

#include "cuda_diff.h"

static const em_dtype DT[] = {EM_U8,  EM_U16, EM_U32,  EM_U64, EM_S8,
                              EM_S16, EM_S32, EM_S64,  EM_F16, EM_BF16,
                              EM_F32, EM_F64, EM_C64,  EM_C128};
#define NDT ((int)(sizeof DT / sizeof DT[0]))
static const em_dtype IT[] = {EM_U8, EM_U16, EM_U32, EM_U64,
                              EM_S8, EM_S16, EM_S32, EM_S64};
#define NIT ((int)(sizeof IT / sizeof IT[0]))

static int64_t count_of(int nd, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= shape[i];
  return n;
}

/* ---- inputs ------------------------------------------------------------------ */

/* Indices of dtype it, uniform in [lo, hi] (stored truncated: negative
 * values of unsigned types become huge, which clamps as well). */
static pair pidx(em_dtype it, int nd, const int64_t *shape, rng *r, int64_t lo,
                 int64_t hi) {
  int64_t n = count_of(nd, shape);
  size_t es = em_dtype_size(it);
  char *buf = malloc((size_t)(n > 0 ? n : 1) * es);
  for (int64_t i = 0; i < n; i++) {
    int64_t v = lo + (int64_t)(rnext(r) % (uint64_t)(hi - lo + 1));
    memcpy(buf + (size_t)i * es, &v, es);
  }
  pair p = {from(it, nd, shape, buf, CPU), from(it, nd, shape, buf, CU)};
  free(buf);
  return p;
}

/* Indices with the given int64 values. */
static pair pidx_vals(em_dtype it, int nd, const int64_t *shape,
                      const int64_t *vals) {
  int64_t n = count_of(nd, shape);
  size_t es = em_dtype_size(it);
  char *buf = malloc((size_t)(n > 0 ? n : 1) * es);
  for (int64_t i = 0; i < n; i++) memcpy(buf + (size_t)i * es, &vals[i], es);
  pair p = {from(it, nd, shape, buf, CPU), from(it, nd, shape, buf, CU)};
  free(buf);
  return p;
}

/* Data of dtype t whose values (both parts for complex; ints: the value
 * converted) are drawn from choices. */
static pair pchoice(em_dtype t, int nd, const int64_t *shape, rng *r,
                    const double *choices, int nch) {
  int64_t n = count_of(nd, shape);
  bool cplx = em_dtype_is_complex(t);
  int64_t m = cplx ? 2 * n : n;
  double *d = malloc((size_t)(m > 0 ? m : 1) * sizeof(double));
  for (int64_t i = 0; i < m; i++) d[i] = choices[rnext(r) % (uint64_t)nch];
  char *buf = malloc((size_t)(n > 0 ? n : 1) * em_dtype_size(t));
  em_dtype real = t == EM_C64 ? EM_F32 : t == EM_C128 ? EM_F64 : t;
  em_cpu_cast_kernel(EM_F64, real)(d, buf, m);
  pair p = {from(t, nd, shape, buf, CPU), from(t, nd, shape, buf, CU)};
  free(d);
  free(buf);
  return p;
}

/* A strided view of p: every other element of the last axis. */
static pair every_other(pair p) {
  int nd = p.c->ndim;
  int64_t st[EM_MAX_NDIM], len[EM_MAX_NDIM], step[EM_MAX_NDIM];
  for (int i = 0; i < nd; i++) {
    st[i] = 0;
    len[i] = p.c->shape[i];
    step[i] = i == nd - 1 ? 2 : 1;
  }
  pair q = {NULL, NULL};
  em_slice(&q.c, p.c, st, len, step);
  em_slice(&q.g, p.g, st, len, step);
  return q;
}

static pair transposed(pair p) { return layout(p, L_TRANSPOSED); }

/* ---- ops on both devices --------------------------------------------------------- */

static void run_gather(const char *what, pair a, pair ix, int naxes,
                       const int *axes) {
  em_array *rc = NULL, *rg = NULL;
  em_gather(&rc, a.c, ix.c, naxes, axes);
  em_gather(&rg, a.g, ix.g, naxes, axes);
  check_pair(what, rc, rg, 0, 0);
  em_array_release(rc);
  em_array_release(rg);
}

static void run_take(const char *what, pair a, pair ix, int axis) {
  em_array *rc = NULL, *rg = NULL;
  em_take(&rc, a.c, ix.c, axis);
  em_take(&rg, a.g, ix.g, axis);
  check_pair(what, rc, rg, 0, 0);
  em_array_release(rc);
  em_array_release(rg);
}

static void run_taa(const char *what, pair a, pair ix, int axis) {
  em_array *rc = NULL, *rg = NULL;
  em_take_along_axis(&rc, a.c, ix.c, axis);
  em_take_along_axis(&rg, a.g, ix.g, axis);
  check_pair(what, rc, rg, 0, 0);
  em_array_release(rc);
  em_array_release(rg);
}

static void run_indexed(const char *what, bool add, pair a, pair ix, pair up,
                        int naxes, const int *axes) {
  em_array *rc = NULL, *rg = NULL;
  if (add) {
    em_indexed_add(&rc, a.c, ix.c, up.c, naxes, axes);
    em_indexed_add(&rg, a.g, ix.g, up.g, naxes, axes);
  } else {
    em_indexed_put(&rc, a.c, ix.c, up.c, naxes, axes);
    em_indexed_put(&rg, a.g, ix.g, up.g, naxes, axes);
  }
  check_pair(what, rc, rg, 0, 0);
  em_array_release(rc);
  em_array_release(rg);
}

typedef em_status (*cum_fn)(em_array **, em_array *, int, bool);
static const struct {
  const char *name;
  cum_fn f;
} CUM[4] = {{"cumulative_sum", em_cumulative_sum},
            {"cumulative_product", em_cumulative_product},
            {"cumulative_max", em_cumulative_max},
            {"cumulative_min", em_cumulative_min}};

static void run_cum(const char *what, int kind, pair x, int axis, bool rev,
                    int cls, double atol) {
  em_array *rc = NULL, *rg = NULL;
  CUM[kind].f(&rc, x.c, axis, rev);
  CUM[kind].f(&rg, x.g, axis, rev);
  check_pair(what, rc, rg, cls, atol);
  em_array_release(rc);
  em_array_release(rg);
}

/* Both devices fail the evaluation with the same status and message. */
static void expect_same_error(const char *what, em_array *rc, em_array *rg) {
  if (!rc || !rg) {
    record(false, "%s: op failed to build: %s", what, em_last_error());
    return;
  }
  em_status sc = em_eval(&rc, 1);
  char mc[512];
  snprintf(mc, sizeof mc, "%s", em_last_error());
  em_status sg = eval_cuda(rg);
  if (sg == EM_ERR_UNSUPPORTED) {
    unsupported(what);
    return;
  }
  char mg[512];
  snprintf(mg, sizeof mg, "%s", em_last_error());
  record(sc == EM_ERR_ARGUMENT, "%s: CPU should fail with an argument error: %s (%s)",
         what, em_status_name(sc), mc);
  record(sg == sc && strcmp(mc, mg) == 0,
         "%s: CUDA %s \"%s\", CPU %s \"%s\"", what, em_status_name(sg), mg,
         em_status_name(sc), mc);
}

/* ---- gather ------------------------------------------------------------------------ */

static void t_gather(em_dtype t, rng *r) {
  char what[160];
  const char *tn = em_dtype_name(t);
  {
    int64_t as[3] = {5, 7, 3}, is[2] = {4, 2};
    int axes[2] = {0, 2};
    pair a = prand(t, 3, as, r, M_GENERAL);
    pair ix = pidx(EM_S32, 2, is, r, -2, 8);
    snprintf(what, sizeof what, "gather %s [5,7,3] axes {0,2}", tn);
    run_gather(what, a, ix, 2, axes);
    /* every layout of the data, and strided indices */
    pair at = transposed(a); /* [3,7,5] */
    int axes2[2] = {1, 2};
    snprintf(what, sizeof what, "gather %s transposed data", tn);
    run_gather(what, at, ix, 2, axes2);
    pair as_ = layout(a, L_SLICED); /* [4,6,1] */
    int64_t is3[2] = {9, 1};
    pair ix3 = pidx(EM_S64, 2, is3, r, -1, 7);
    snprintf(what, sizeof what, "gather %s sliced data", tn);
    run_gather(what, as_, ix3, 0, NULL);
    int64_t isw[2] = {4, 4};
    pair ixw = pidx(EM_U16, 2, isw, r, 0, 9);
    pair ixs = every_other(ixw); /* [4,2], strided */
    snprintf(what, sizeof what, "gather %s strided indices", tn);
    run_gather(what, a, ixs, 2, axes);
    prelease(at);
    prelease(as_);
    prelease(ix3);
    prelease(ixw);
    prelease(ixs);
    prelease(a);
    prelease(ix);
  }
  {
    /* rank 1, axes NULL, many duplicates */
    int64_t as[1] = {11}, is[2] = {30, 1};
    pair a = prand(t, 1, as, r, M_GENERAL);
    pair ix = pidx(EM_U8, 2, is, r, 0, 14);
    snprintf(what, sizeof what, "gather %s rank 1", tn);
    run_gather(what, a, ix, 0, NULL);
    /* a 0-d result (indices [1]) and a clamped one */
    int64_t i1[1] = {1};
    pair s1 = pidx_vals(EM_S32, 1, i1, (int64_t[]){4});
    pair s2 = pidx_vals(EM_S32, 1, i1, (int64_t[]){100});
    snprintf(what, sizeof what, "gather %s scalar result", tn);
    run_gather(what, a, s1, 1, (int[]){0});
    snprintf(what, sizeof what, "gather %s scalar result (clamped)", tn);
    run_gather(what, a, s2, 1, (int[]){0});
    prelease(s1);
    prelease(s2);
    prelease(a);
    prelease(ix);
  }
  {
    /* rank 4, index rows of rank 3 */
    int64_t as[4] = {3, 4, 2, 5}, is[3] = {2, 3, 2};
    int axes[2] = {1, 3};
    pair a = prand(t, 4, as, r, M_GENERAL);
    pair ix = pidx(EM_S64, 3, is, r, -1, 6);
    snprintf(what, sizeof what, "gather %s rank 4", tn);
    run_gather(what, a, ix, 2, axes);
    pair at = transposed(a); /* [5,2,4,3] */
    int axes2[2] = {0, 3};
    snprintf(what, sizeof what, "gather %s rank 4 transposed", tn);
    run_gather(what, at, ix, 2, axes2);
    /* k = 0: every row selects all of a */
    int64_t i0[2] = {3, 0};
    pair ix0 = pidx(EM_S32, 2, i0, r, 0, 0);
    snprintf(what, sizeof what, "gather %s k = 0", tn);
    run_gather(what, a, ix0, 0, NULL);
    /* zero-size: no rows; an empty window */
    int64_t ie[2] = {0, 1};
    pair ixe = pidx(EM_S32, 2, ie, r, 0, 0);
    snprintf(what, sizeof what, "gather %s no rows", tn);
    run_gather(what, a, ixe, 0, NULL);
    int64_t ae[2] = {4, 0}, i3[2] = {3, 1};
    pair e = prand(t, 2, ae, r, M_GENERAL);
    pair ix3 = pidx(EM_S32, 2, i3, r, -1, 5);
    snprintf(what, sizeof what, "gather %s empty window", tn);
    run_gather(what, e, ix3, 0, NULL);
    prelease(at);
    prelease(ix0);
    prelease(ixe);
    prelease(e);
    prelease(ix3);
    prelease(a);
    prelease(ix);
  }
}

/* ---- take / take_along_axis ------------------------------------------------------- */

static void t_take(em_dtype t, rng *r) {
  char what[160];
  const char *tn = em_dtype_name(t);
  int64_t as[3] = {6, 5, 4};
  pair a = prand(t, 3, as, r, M_GENERAL);
  for (int axis = 0; axis < 3; axis++) {
    int64_t is[2] = {3, 2};
    pair ix = pidx(EM_S32, 2, is, r, -3, as[axis] + 3);
    snprintf(what, sizeof what, "take %s axis %d", tn, axis);
    run_take(what, a, ix, axis);
    prelease(ix);
  }
  {
    pair at = transposed(a); /* [4,5,6] */
    int64_t isw[2] = {5, 4};
    pair ixw = pidx(EM_S16, 2, isw, r, -1, 6);
    pair ixs = every_other(ixw);
    snprintf(what, sizeof what, "take %s transposed data, strided indices", tn);
    run_take(what, at, ixs, 1);
    pair asl = layout(a, L_SLICED);
    snprintf(what, sizeof what, "take %s sliced data", tn);
    run_take(what, asl, ixs, 2);
    prelease(at);
    prelease(asl);
    prelease(ixw);
    prelease(ixs);
  }
  {
    int64_t a1[1] = {10};
    pair v = prand(t, 1, a1, r, M_GENERAL);
    pair s = pidx_vals(EM_S64, 0, NULL, (int64_t[]){12});
    snprintf(what, sizeof what, "take %s scalar index (clamped)", tn);
    run_take(what, v, s, 0);
    int64_t a4[4] = {2, 3, 4, 5}, i1[1] = {7};
    pair v4 = prand(t, 4, a4, r, M_GENERAL);
    pair ix = pidx(EM_U16, 1, i1, r, 0, 6);
    snprintf(what, sizeof what, "take %s rank 4", tn);
    run_take(what, v4, ix, 2);
    int64_t i0[1] = {0}, ae[2] = {3, 0}, i2[1] = {2};
    pair ie = pidx(EM_S32, 1, i0, r, 0, 0);
    snprintf(what, sizeof what, "take %s no indices", tn);
    run_take(what, v4, ie, 1);
    pair e = prand(t, 2, ae, r, M_GENERAL);
    pair ix2 = pidx(EM_S32, 1, i2, r, 0, 2);
    snprintf(what, sizeof what, "take %s empty result", tn);
    run_take(what, e, ix2, 0);
    prelease(v);
    prelease(s);
    prelease(v4);
    prelease(ix);
    prelease(ie);
    prelease(e);
    prelease(ix2);
  }
  prelease(a);
}

static void t_take_along(em_dtype t, rng *r) {
  char what[160];
  const char *tn = em_dtype_name(t);
  int64_t as[3] = {5, 6, 4};
  pair a = prand(t, 3, as, r, M_GENERAL);
  for (int axis = 0; axis < 3; axis++) {
    int64_t is[3] = {5, 6, 4};
    is[axis] = 3;
    pair ix = pidx(EM_S32, 3, is, r, -2, as[axis] + 2);
    snprintf(what, sizeof what, "take_along_axis %s axis %d", tn, axis);
    run_taa(what, a, ix, axis);
    prelease(ix);
  }
  {
    pair at = transposed(a); /* [4,6,5] */
    int64_t isw[3] = {4, 3, 10};
    pair ixw = pidx(EM_U32, 3, isw, r, 0, 8);
    pair ixs = every_other(ixw); /* [4,3,5] */
    snprintf(what, sizeof what, "take_along_axis %s transposed, strided indices", tn);
    run_taa(what, at, ixs, 1);
    prelease(at);
    prelease(ixw);
    prelease(ixs);
  }
  {
    int64_t a1[1] = {9}, i1[1] = {12};
    pair v = prand(t, 1, a1, r, M_GENERAL);
    pair ix = pidx(EM_S8, 1, i1, r, -3, 11);
    snprintf(what, sizeof what, "take_along_axis %s rank 1", tn);
    run_taa(what, v, ix, 0);
    int64_t a4[4] = {2, 3, 4, 5}, i4[4] = {2, 3, 4, 7};
    pair v4 = prand(t, 4, a4, r, M_GENERAL);
    pair ix4 = pidx(EM_U64, 4, i4, r, 0, 6);
    snprintf(what, sizeof what, "take_along_axis %s rank 4", tn);
    run_taa(what, v4, ix4, 3);
    int64_t ie[3] = {5, 0, 4};
    pair ixe = pidx(EM_S32, 3, ie, r, 0, 0);
    snprintf(what, sizeof what, "take_along_axis %s empty", tn);
    run_taa(what, a, ixe, 1);
    prelease(v);
    prelease(ix);
    prelease(v4);
    prelease(ix4);
    prelease(ixe);
  }
  prelease(a);
}

/* ---- indexed_add / indexed_put ------------------------------------------------------ */

static void t_indexed(em_dtype t, rng *r) {
  char what[160];
  const char *tn = em_dtype_name(t);
  for (int add = 0; add < 2; add++) {
    const char *on = add ? "indexed_add" : "indexed_put";
    int64_t as[3] = {6, 5, 4};
    pair a = prand(t, 3, as, r, M_GENERAL);
    {
      /* duplicates and clamped indices, full and partial windows */
      int64_t is[2] = {8, 1}, us[3] = {8, 5, 4}, us2[3] = {8, 3, 2};
      pair ix = pidx(EM_S32, 2, is, r, -1, 8);
      pair up = prand(t, 3, us, r, M_GENERAL), up2 = prand(t, 3, us2, r, M_GENERAL);
      snprintf(what, sizeof what, "%s %s duplicates", on, tn);
      run_indexed(what, add, a, ix, up, 1, (int[]){0});
      snprintf(what, sizeof what, "%s %s partial window", on, tn);
      run_indexed(what, add, a, ix, up2, 1, (int[]){0});
      /* strided updates, transposed target */
      int64_t uw[3] = {8, 4, 12};
      pair upw = prand(t, 3, uw, r, M_GENERAL);
      pair ups = every_other(upw); /* [8,4,6] */
      pair at = transposed(a);     /* [4,5,6] */
      snprintf(what, sizeof what, "%s %s transposed target, strided updates", on, tn);
      run_indexed(what, add, at, ix, ups, 1, (int[]){1});
      prelease(ix);
      prelease(up);
      prelease(up2);
      prelease(upw);
      prelease(ups);
      prelease(at);
    }
    {
      int64_t is[2] = {10, 2}, us[2] = {10, 5};
      pair ix = pidx(EM_U8, 2, is, r, 0, 4);
      pair up = prand(t, 2, us, r, M_GENERAL);
      snprintf(what, sizeof what, "%s %s axes {0,2}", on, tn);
      run_indexed(what, add, a, ix, up, 2, (int[]){0, 2});
      /* k = 0: every row hits the whole target */
      int64_t i0[2] = {4, 0}, u0[4] = {4, 6, 5, 4};
      pair ix0 = pidx(EM_S32, 2, i0, r, 0, 0);
      pair up0 = prand(t, 4, u0, r, M_GENERAL);
      snprintf(what, sizeof what, "%s %s k = 0", on, tn);
      run_indexed(what, add, a, ix0, up0, 0, NULL);
      /* no rows */
      int64_t ie[2] = {0, 1}, ue[3] = {0, 5, 4};
      pair ixe = pidx(EM_S32, 2, ie, r, 0, 0);
      pair upe = prand(t, 3, ue, r, M_GENERAL);
      snprintf(what, sizeof what, "%s %s no rows", on, tn);
      run_indexed(what, add, a, ixe, upe, 1, (int[]){0});
      prelease(ix);
      prelease(up);
      prelease(ix0);
      prelease(up0);
      prelease(ixe);
      prelease(upe);
    }
    {
      /* rank 1 with heavy duplication; scalar updates */
      int64_t a1[1] = {7}, is[2] = {20, 1}, us[1] = {20}, i1[1] = {1};
      pair v = prand(t, 1, a1, r, M_GENERAL);
      pair ix = pidx(EM_S64, 2, is, r, -2, 9);
      pair up = prand(t, 1, us, r, M_GENERAL);
      snprintf(what, sizeof what, "%s %s rank 1", on, tn);
      run_indexed(what, add, v, ix, up, 0, NULL);
      pair s = pidx_vals(EM_U32, 1, i1, (int64_t[]){3});
      pair us0 = prand(t, 0, NULL, r, M_GENERAL);
      snprintf(what, sizeof what, "%s %s scalar update", on, tn);
      run_indexed(what, add, v, s, us0, 0, NULL);
      prelease(v);
      prelease(ix);
      prelease(up);
      prelease(s);
      prelease(us0);
    }
    {
      /* rank 4 target, rank 3 index rows */
      int64_t a4[4] = {3, 4, 2, 5}, is[3] = {2, 3, 2}, us[4] = {2, 3, 3, 2};
      pair v4 = prand(t, 4, a4, r, M_GENERAL);
      pair ix = pidx(EM_U64, 3, is, r, 0, 4);
      pair up = prand(t, 4, us, r, M_GENERAL);
      snprintf(what, sizeof what, "%s %s rank 4", on, tn);
      run_indexed(what, add, v4, ix, up, 2, (int[]){1, 3});
      /* empty target axis */
      int64_t ae[2] = {4, 0}, ie[2] = {3, 1}, ue[2] = {3, 0};
      pair e = prand(t, 2, ae, r, M_GENERAL);
      pair ixe = pidx(EM_S32, 2, ie, r, 0, 3);
      pair upe = prand(t, 2, ue, r, M_GENERAL);
      snprintf(what, sizeof what, "%s %s empty target", on, tn);
      run_indexed(what, add, e, ixe, upe, 1, (int[]){0});
      prelease(v4);
      prelease(ix);
      prelease(up);
      prelease(e);
      prelease(ixe);
      prelease(upe);
    }
    prelease(a);
  }
}

/* Every index dtype (f32 data). */
static void t_index_dtypes(rng *r) {
  char what[160];
  int64_t as[2] = {9, 6};
  pair a = prand(EM_F32, 2, as, r, M_GENERAL);
  for (int i = 0; i < NIT; i++) {
    const char *in = em_dtype_name(IT[i]);
    int64_t is[2] = {7, 2}, i1[2] = {5, 3};
    pair ix = pidx(IT[i], 2, is, r, -3, 11);
    snprintf(what, sizeof what, "gather f32, %s indices", in);
    run_gather(what, a, ix, 0, NULL);
    pair ix1 = pidx(IT[i], 2, i1, r, -3, 11);
    snprintf(what, sizeof what, "take f32, %s indices", in);
    run_take(what, a, ix1, 0);
    int64_t it3[2] = {9, 3};
    pair ixt = pidx(IT[i], 2, it3, r, -3, 8);
    snprintf(what, sizeof what, "take_along_axis f32, %s indices", in);
    run_taa(what, a, ixt, 1);
    int64_t ii[2] = {12, 1}, us[2] = {12, 6};
    pair ixs = pidx(IT[i], 2, ii, r, -2, 10);
    pair up = prand(EM_F32, 2, us, r, M_GENERAL);
    snprintf(what, sizeof what, "indexed_add f32, %s indices", in);
    run_indexed(what, true, a, ixs, up, 0, NULL);
    snprintf(what, sizeof what, "indexed_put f32, %s indices", in);
    run_indexed(what, false, a, ixs, up, 0, NULL);
    prelease(ix);
    prelease(ix1);
    prelease(ixt);
    prelease(ixs);
    prelease(up);
  }
  prelease(a);
}

/* ---- cumulative ---------------------------------------------------------------------- */

static const double INTS[] = {-3, -2, -1, 0, 1, 2, 3};
static const double POW2[] = {1, -1, 2, -2, 0.5, -0.5};
static const double GAUSS[] = {-1, 0, 1};

static double eps_of(em_dtype t) {
  switch (t) {
    case EM_F64: case EM_C128: return 2.3e-16;
    default: return 1.2e-7; /* f32 accumulators (f16/bf16 too) */
  }
}

/* One input x scanned along axis both ways with every op; long: the axis
 * is long (float products there only for ints). */
static void cum_cases(const char *label, em_dtype t, int nd, const int64_t *shape,
                      int axis, int lay, rng *r) {
  char what[200];
  const char *tn = em_dtype_name(t);
  bool cplx = em_dtype_is_complex(t), isint = em_dtype_is_int(t);
  /* the scanned length after the layout (see layout() in cuda_diff.h) */
  int64_t n = shape[axis];
  if (lay == L_TRANSPOSED) n = shape[nd - 1 - axis];
  if (lay == L_SLICED) {
    n = shape[axis] - (shape[axis] > 2 ? 1 : 0);
    if (axis == nd - 1) n = (n + 1) / 2;
  }
  for (int kind = 0; kind < 4; kind++) {
    if (cplx && kind >= 2) continue;
    pair x;
    int cls = 0;
    double atol = 0;
    if (isint) {
      x = prand(t, nd, shape, r, M_GENERAL); /* wrapping, exact */
    } else if (kind == 0) {
      x = pchoice(t, nd, shape, r, INTS, 7); /* exact partial sums */
    } else if (kind == 1) {
      if (cplx && n > 24) continue;
      if (!cplx && n > 100) continue;
      x = cplx ? pchoice(t, nd, shape, r, GAUSS, 3) : pchoice(t, nd, shape, r, POW2, 6);
    } else {
      x = prand(t, nd, shape, r, M_GENERAL); /* NaN, inf, ±0 */
    }
    pair v = layout(x, lay);
    for (int rev = 0; rev < 2; rev++) {
      snprintf(what, sizeof what, "%s %s %s axis %d%s", CUM[kind].name, tn, label,
               axis, rev ? " reverse" : "");
      run_cum(what, kind, v, axis, rev, cls, atol);
    }
    prelease(v);
    prelease(x);
  }
  /* float sums of general values: tolerance */
  if (!isint) {
    pair x = prand(t, nd, shape, r, cplx ? M_FINITE : M_UNIT);
    pair v = layout(x, lay);
    double atol = 8 * eps_of(t) * (double)(n > 1 ? n : 1) * 4;
    for (int rev = 0; rev < 2; rev++) {
      snprintf(what, sizeof what, "cumulative_sum %s %s axis %d%s (general values)",
               tn, label, axis, rev ? " reverse" : "");
      run_cum(what, 0, v, axis, rev, 2, atol);
    }
    prelease(v);
    prelease(x);
  }
}

static void t_cumulative(em_dtype t, rng *r) {
  static const int64_t s1[1] = {1000}, s2[2] = {3, 5000}, s4[4] = {4, 5, 6, 7},
                       s3[2] = {70, 40}, sc[2] = {1100, 30}, st[2] = {6, 40},
                       se[3] = {2, 0, 3}, ss[1] = {7};
  cum_cases("[1000]", t, 1, s1, 0, L_CONTIG, r);
  cum_cases("[7]", t, 1, ss, 0, L_CONTIG, r);
  cum_cases("[3,5000]", t, 2, s2, 1, L_CONTIG, r);
  for (int ax = 0; ax < 4; ax++) cum_cases("[4,5,6,7]", t, 4, s4, ax, L_CONTIG, r);
  cum_cases("[70,40]", t, 2, s3, 1, L_CONTIG, r);
  cum_cases("[70,40]", t, 2, s3, 0, L_CONTIG, r);
  cum_cases("[1100,30]", t, 2, sc, 0, L_CONTIG, r);
  for (int ax = 0; ax < 2; ax++) {
    cum_cases("[6,40] transposed", t, 2, st, ax, L_TRANSPOSED, r);
    cum_cases("[6,40] sliced", t, 2, st, ax, L_SLICED, r);
  }
  cum_cases("[4,5,6,7] transposed", t, 4, s4, 2, L_TRANSPOSED, r);
  for (int ax = 0; ax < 3; ax++) cum_cases("[2,0,3]", t, 3, se, ax, L_CONTIG, r);
}

/* ---- bounds check ------------------------------------------------------------------------ */

static void t_bounds(rng *r) {
  char what[160];
  em_set_bounds_check(true);
  int64_t as[2] = {5, 3};
  pair a = prand(EM_F32, 2, as, r, M_GENERAL);
  for (int i = 0; i < NIT; i++) {
    em_dtype it = IT[i];
    bool sgn = em_dtype_is_signed(it);
    const char *in = em_dtype_name(it);
    /* two bad values; the first in row-major order must be reported */
    int64_t is[2] = {3, 2};
    int64_t v1[6] = {0, 0, 1, 7, sgn ? -1 : 9, 2};
    pair ix = pidx_vals(it, 2, is, v1);
    em_array *rc = NULL, *rg = NULL;
    em_gather(&rc, a.c, ix.c, 0, NULL);
    em_gather(&rg, a.g, ix.g, 0, NULL);
    snprintf(what, sizeof what, "gather bounds check (%s)", in);
    expect_same_error(what, rc, rg);
    em_array_release(rc);
    em_array_release(rg);
    /* the same through strided indices */
    int64_t iw[2] = {3, 4};
    int64_t vw[12] = {0, 9, 0, 9, 1, 9, 2, 9, 4, 9, sgn ? -2 : 3, 9};
    pair ixw = pidx_vals(it, 2, iw, vw);
    pair ixs = every_other(ixw);
    em_gather(&rc, a.c, ixs.c, 0, NULL);
    em_gather(&rg, a.g, ixs.g, 0, NULL);
    snprintf(what, sizeof what, "gather bounds check, strided indices (%s)", in);
    expect_same_error(what, rc, rg);
    em_array_release(rc);
    em_array_release(rg);
    /* scatter: rows of one index into axis 0 */
    int64_t is2[2] = {4, 1}, us[2] = {4, 3};
    int64_t v2[4] = {1, 4, 5, 0};
    pair ix2 = pidx_vals(it, 2, is2, v2);
    pair up = prand(EM_F32, 2, us, r, M_GENERAL);
    for (int add = 0; add < 2; add++) {
      if (add) {
        em_indexed_add(&rc, a.c, ix2.c, up.c, 0, NULL);
        em_indexed_add(&rg, a.g, ix2.g, up.g, 0, NULL);
      } else {
        em_indexed_put(&rc, a.c, ix2.c, up.c, 0, NULL);
        em_indexed_put(&rg, a.g, ix2.g, up.g, 0, NULL);
      }
      snprintf(what, sizeof what, "%s bounds check (%s)",
               add ? "indexed_add" : "indexed_put", in);
      expect_same_error(what, rc, rg);
      em_array_release(rc);
      em_array_release(rg);
    }
    /* take: the largest value of the type */
    int64_t i3[2] = {1, 3};
    int64_t v3[3] = {1, 0, -1}; /* -1: all ones, UINT64_MAX for u64 */
    pair ix3 = pidx_vals(it, 2, i3, v3);
    em_take(&rc, a.c, ix3.c, 1);
    em_take(&rg, a.g, ix3.g, 1);
    snprintf(what, sizeof what, "take bounds check (%s)", in);
    expect_same_error(what, rc, rg);
    em_array_release(rc);
    em_array_release(rg);
    /* take_along_axis */
    int64_t i4[2] = {2, 3};
    int64_t v4[6] = {0, 1, 2, 3, 5, 4};
    pair ix4 = pidx_vals(it, 2, i4, v4);
    em_take_along_axis(&rc, a.c, ix4.c, 0);
    em_take_along_axis(&rg, a.g, ix4.g, 0);
    snprintf(what, sizeof what, "take_along_axis bounds check (%s)", in);
    expect_same_error(what, rc, rg);
    em_array_release(rc);
    em_array_release(rg);
    /* in range: same results with the check on */
    int64_t v5[6] = {0, 1, 2, 3, 4, 4};
    pair ix5 = pidx_vals(it, 2, i4, v5);
    snprintf(what, sizeof what, "take_along_axis in range, check on (%s)", in);
    run_taa(what, a, ix5, 0);
    int64_t vok[12] = {0, 9, 0, 9, 1, 9, 2, 9, 4, 9, 2, 9};
    pair ixok = pidx_vals(it, 2, iw, vok);
    pair ix6 = every_other(ixok); /* [3,2], in range */
    snprintf(what, sizeof what, "gather in range, check on, strided (%s)", in);
    run_gather(what, a, ix6, 0, NULL);
    snprintf(what, sizeof what, "indexed_add in range, check on (%s)", in);
    int64_t us6[1] = {3};
    pair up6 = prand(EM_F32, 1, us6, r, M_GENERAL);
    run_indexed(what, true, a, ix6, up6, 0, NULL);
    prelease(up6);
    prelease(ixok);
    prelease(ix);
    prelease(ixw);
    prelease(ixs);
    prelease(ix2);
    prelease(up);
    prelease(ix3);
    prelease(ix4);
    prelease(ix5);
    prelease(ix6);
  }
  em_set_bounds_check(false);
  prelease(a);
}

/* ---- large ------------------------------------------------------------------------------- */

static void t_large(rng *r) {
  {
    int64_t as[2] = {300000, 4}, is[1] = {400000};
    pair a = prand(EM_F32, 2, as, r, M_GENERAL);
    pair ix = pidx(EM_S64, 1, is, r, -5, 300004);
    run_take("large take f32 [300000,4] x 400000", a, ix, 0);
    prelease(a);
    prelease(ix);
  }
  {
    int64_t as[2] = {1200, 1000}, is[2] = {1500, 1};
    pair a = prand(EM_BF16, 2, as, r, M_GENERAL);
    pair ix = pidx(EM_U16, 2, is, r, 0, 1210);
    run_gather("large gather bf16 [1200,1000] x 1500", a, ix, 0, NULL);
    prelease(a);
    prelease(ix);
  }
  {
    int64_t as[2] = {1100, 1000};
    pair a = prand(EM_F32, 2, as, r, M_GENERAL);
    pair ix = pidx(EM_S32, 2, as, r, -1, 1100);
    run_taa("large take_along_axis f32 [1100,1000] axis 0", a, ix, 0);
    pair ix1 = pidx(EM_S32, 2, as, r, 0, 999);
    run_taa("large take_along_axis f32 [1100,1000] axis 1", a, ix1, 1);
    prelease(a);
    prelease(ix);
    prelease(ix1);
  }
  {
    /* 2M rows into 1000 bins: 2000 duplicates each */
    static const em_dtype ts[4] = {EM_F32, EM_F16, EM_S32, EM_C128};
    for (int k = 0; k < 4; k++) {
      int64_t as[1] = {1000}, is[2] = {2000000, 1}, us[1] = {2000000};
      pair a = prand(ts[k], 1, as, r, M_UNIT);
      pair ix = pidx(EM_S32, 2, is, r, 0, 999);
      pair up = prand(ts[k], 1, us, r, M_UNIT);
      char what[128];
      snprintf(what, sizeof what, "large indexed_add %s, 2M rows into 1000",
               em_dtype_name(ts[k]));
      run_indexed(what, true, a, ix, up, 0, NULL);
      snprintf(what, sizeof what, "large indexed_put %s, 2M rows into 1000",
               em_dtype_name(ts[k]));
      run_indexed(what, false, a, ix, up, 0, NULL);
      prelease(a);
      prelease(ix);
      prelease(up);
    }
  }
  {
    int64_t as[2] = {100000, 16}, is[2] = {200000, 1}, us[2] = {200000, 16};
    pair a = prand(EM_U8, 2, as, r, M_GENERAL);
    pair ix = pidx(EM_U32, 2, is, r, 0, 100003);
    pair up = prand(EM_U8, 2, us, r, M_GENERAL);
    run_indexed("large indexed_put u8 [100000,16]", false, a, ix, up, 0, NULL);
    run_indexed("large indexed_add u8 [100000,16]", true, a, ix, up, 0, NULL);
    prelease(a);
    prelease(ix);
    prelease(up);
  }
  {
    int64_t n1[1] = {(1 << 20) + 3}, n2[2] = {2, 1 << 20}, n3[2] = {1100, 1000};
    pair x = pchoice(EM_F32, 1, n1, r, INTS, 7);
    run_cum("large cumulative_sum f32 [2^20+3]", 0, x, 0, false, 0, 0);
    run_cum("large cumulative_sum f32 [2^20+3] reverse", 0, x, 0, true, 0, 0);
    pair y = prand(EM_F64, 1, n1, r, M_GENERAL);
    run_cum("large cumulative_max f64 [2^20+3]", 2, y, 0, false, 0, 0);
    run_cum("large cumulative_min f64 [2^20+3] reverse", 3, y, 0, true, 0, 0);
    pair h = pchoice(EM_F16, 2, n2, r, INTS, 7);
    run_cum("large cumulative_sum f16 [2,2^20]", 0, h, 1, false, 0, 0);
    run_cum("large cumulative_sum f16 [2,2^20] reverse", 0, h, 1, true, 0, 0);
    pair g = prand(EM_F32, 1, n1, r, M_UNIT);
    run_cum("large cumulative_sum f32 [2^20+3] (general values)", 0, g, 0, false,
            2, 8 * 1.2e-7 * (double)n1[0]);
    pair s = prand(EM_S32, 2, n3, r, M_GENERAL);
    run_cum("large cumulative_sum s32 [1100,1000] axis 0", 0, s, 0, false, 0, 0);
    run_cum("large cumulative_product s32 [1100,1000] axis 0 reverse", 1, s, 0,
            true, 0, 0);
    run_cum("large cumulative_max s32 [1100,1000] axis 1", 2, s, 1, false, 0, 0);
    pair u = prand(EM_U64, 1, n1, r, M_GENERAL);
    run_cum("large cumulative_product u64 [2^20+3] reverse", 1, u, 0, true, 0, 0);
    prelease(x);
    prelease(y);
    prelease(h);
    prelease(g);
    prelease(s);
    prelease(u);
  }
}

int main(void) {
  if (!cuda_diff_have_device("test_cuda_indexing")) return 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  quick = getenv("EMILY_TEST_QUICK") != NULL;
  rng r = {0x9e3779b97f4a7c15ull};
  for (int i = 0; i < NDT; i++) {
    t_gather(DT[i], &r);
    t_take(DT[i], &r);
    t_take_along(DT[i], &r);
    t_indexed(DT[i], &r);
  }
  printf("indexing ops done: %d checks, %d failed\n", th_checks, th_failures);
  t_index_dtypes(&r);
  printf("index dtypes done: %d checks, %d failed\n", th_checks, th_failures);
  for (int i = 0; i < NDT; i++) t_cumulative(DT[i], &r);
  printf("cumulative done: %d checks, %d failed\n", th_checks, th_failures);
  t_bounds(&r);
  printf("bounds check done: %d checks, %d failed\n", th_checks, th_failures);
  if (!quick) t_large(&r);
  printf("large done: %d checks, %d failed\n", th_checks, th_failures);
  cuda_diff_summary();
  return TEST_SUMMARY();
}
