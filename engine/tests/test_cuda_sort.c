/* test_cuda_sort.c — sort, argsort and top_k on CUDA against the CPU
 * backend (differential, bit for bit): every dtype the CPU sorts (u8..u64,
 * s8..s64, f16, bf16, f32, f64), every axis of ranks 1-4, ascending and
 * descending, random data with specials (NaN, ±inf, ±0), few distinct
 * values (ties: stability), hand-made NaN payloads and signed zeros (their
 * order and bits after a sort), zero-size arrays, non-contiguous inputs
 * (transposed, strided, reversed views), many short rows (the segmented
 * path), a few long rows and rows past 1M elements (the per-row radix
 * path); top_k through the public API; a timing of a 16M-element f32 sort.
 *
 * Without a CUDA device it prints "SKIPPED" and passes. The dtype sweep
 * runs on EMILY_TEST_THREADS threads (default 4), each with its own CUDA
 * stream; EMILY_TEST_QUICK=1 runs a subset. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/array-impl.h"
#include "cpu/cpu-kernels.h"
#include "harness.h"
#include "cuda_diff.h"

static const em_dtype SORTABLE[] = {EM_U8,  EM_U16, EM_U32, EM_U64,
                                    EM_S8,  EM_S16, EM_S32, EM_S64,
                                    EM_F16, EM_BF16, EM_F32, EM_F64};
#define NSORT 12

/* Evaluates rc on the CPU and rg on CUDA and compares their bytes (sort
 * results are exact: the order, the NaN payloads and the signs of zero). */
static void check_exact(const char *what, em_array *rc, em_array *rg) {
  if (!rc || !rg) {
    record(false, "%s: op failed to build: %s", what, em_last_error());
    return;
  }
  em_status sc = em_eval(&rc, 1);
  record(sc == EM_OK, "%s: CPU eval: %s", what, em_last_error());
  em_status sg = eval_cuda(rg);
  if (sg == EM_ERR_UNSUPPORTED) {
    unsupported(what);
    return;
  }
  record(sg == EM_OK, "%s: CUDA eval: %s", what, em_last_error());
  if (sc != EM_OK || sg != EM_OK) return;
  bool same = rc->dtype == rg->dtype && rc->size == rg->size &&
              rc->ndim == rg->ndim;
  for (int i = 0; same && i < rc->ndim; i++) same = rc->shape[i] == rg->shape[i];
  record(same, "%s: dtype/shape", what);
  if (!same || rc->size == 0) return;
  const char *hc = em_array_data(rc), *hg = em_array_data(rg);
  record(hc && hg, "%s: array_data: %s", what, em_last_error());
  if (!hc || !hg) return;
  size_t es = em_dtype_size(rc->dtype);
  int bad = 0;
  for (int64_t i = 0; i < rc->size; i++)
    if (memcmp(hc + i * es, hg + i * es, es)) {
      if (bad < 3) {
        uint64_t g = 0, w = 0;
        memcpy(&g, hg + i * es, es);
        memcpy(&w, hc + i * es, es);
        record(false, "%s [%s] element %lld: got 0x%llx want 0x%llx", what,
               em_dtype_name(rc->dtype), (long long)i, (unsigned long long)g,
               (unsigned long long)w);
      }
      bad++;
    }
  if (!bad) record(true, "");
  else record(false, "%s: %d of %lld elements differ", what, bad,
              (long long)rc->size);
}

/* sort and argsort of p along axis, both directions. */
static void sort_both(const char *tag, pair p, int axis) {
  for (int desc = 0; desc < 2; desc++) {
    for (int idx = 0; idx < 2; idx++) {
      em_array *rc = NULL, *rg = NULL;
      if (idx) {
        em_argsort(&rc, p.c, axis, desc);
        em_argsort(&rg, p.g, axis, desc);
      } else {
        em_sort(&rc, p.c, axis, desc);
        em_sort(&rg, p.g, axis, desc);
      }
      char what[160];
      char sh[64];
      snprintf(what, sizeof what, "%s %s %s axis %d %s", idx ? "argsort" : "sort",
               em_dtype_name(p.c->dtype),
               em_shape_str(sh, sizeof sh, p.c->ndim, p.c->shape), axis,
               desc ? "desc" : "asc");
      snprintf(what + strlen(what), sizeof what - strlen(what), " (%s)", tag);
      check_exact(what, rc, rg);
      em_array_release(rc);
      em_array_release(rg);
    }
  }
}

/* Elements of t from a table of special bit patterns (floats: signed
 * zeros, NaNs with payloads and signs, infinities, subnormals, extremes),
 * mixed with ordinary values. */
static void *special_data(em_dtype t, int64_t n, rng *r) {
  static const uint16_t f16[] = {0x0000, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x7e01,
                                 0xfe00, 0x7c01, 0x7d23, 0x0001, 0x8001, 0x7bff,
                                 0xfbff, 0x3c00, 0xbc00, 0x3c00};
  static const uint16_t bf16[] = {0x0000, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0x7fc1,
                                  0xffc0, 0x7f81, 0x7fa3, 0x0001, 0x8001, 0x7f7f,
                                  0xff7f, 0x3f80, 0xbf80, 0x3f80};
  static const uint32_t f32[] = {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u,
                                 0x7fc00000u, 0x7fc00001u, 0xffc00000u, 0x7f800001u,
                                 0x7fa12345u, 0x00000001u, 0x80000001u, 0x7f7fffffu,
                                 0xff7fffffu, 0x3f800000u, 0xbf800000u, 0x3f800000u};
  static const uint64_t f64[] = {0, 0x8000000000000000ull, 0x7ff0000000000000ull,
                                 0xfff0000000000000ull, 0x7ff8000000000000ull,
                                 0x7ff8000000000001ull, 0xfff8000000000000ull,
                                 0x7ff0000000000001ull, 0x7ff4000000abcdefull, 1,
                                 0x8000000000000001ull, 0x7fefffffffffffffull,
                                 0xffefffffffffffffull, 0x3ff0000000000000ull,
                                 0xbff0000000000000ull, 0x3ff0000000000000ull};
  void *buf = host_rand(t, n, r, M_TIES);
  size_t es = em_dtype_size(t);
  for (int64_t i = 0; i < n; i++) {
    if (rnext(r) % 3 == 0) continue; /* keep some ordinary values */
    unsigned k = (unsigned)(rnext(r) % 16);
    switch (t) {
      case EM_F16: memcpy((char *)buf + i * es, &f16[k], es); break;
      case EM_BF16: memcpy((char *)buf + i * es, &bf16[k], es); break;
      case EM_F32: memcpy((char *)buf + i * es, &f32[k], es); break;
      case EM_F64: memcpy((char *)buf + i * es, &f64[k], es); break;
      default: { /* integers: extremes and zero */
        uint64_t v = k < 4 ? 0 : k < 8 ? ~0ull : k < 12 ? 1ull << (8 * es - 1)
                                                        : (1ull << (8 * es - 1)) - 1;
        memcpy((char *)buf + i * es, &v, es);
      }
    }
  }
  return buf;
}

static pair pspecial(em_dtype t, int nd, const int64_t *shape, rng *r) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= shape[i];
  void *h = special_data(t, n, r);
  pair p = {from(t, nd, shape, h, CPU), from(t, nd, shape, h, CU)};
  free(h);
  return p;
}

/* Every axis of p, contiguous and as non-contiguous views. */
static void sort_layouts(const char *tag, pair p) {
  for (int ax = 0; ax < p.c->ndim; ax++) sort_both(tag, p, ax);
  if (p.c->ndim >= 2) {
    for (int l = L_TRANSPOSED; l <= L_SLICED; l++) {
      pair q = layout(p, l);
      if (!q.c || !q.g) {
        record(false, "layout %d: %s", l, em_last_error());
        prelease(q);
        continue;
      }
      char tg[64];
      snprintf(tg, sizeof tg, "%s, %s", tag, l == L_TRANSPOSED ? "transposed" : "sliced");
      for (int ax = 0; ax < q.c->ndim; ax++) sort_both(tg, q, ax);
      prelease(q);
    }
    /* reversed along the first and last axes */
    int axes[2] = {0, p.c->ndim - 1};
    pair q = {NULL, NULL};
    em_reverse(&q.c, p.c, 2, axes);
    em_reverse(&q.g, p.g, 2, axes);
    if (q.c && q.g) {
      char tg[64];
      snprintf(tg, sizeof tg, "%s, reversed", tag);
      sort_both(tg, q, q.c->ndim - 1);
      sort_both(tg, q, 0);
    } else {
      record(false, "reverse: %s", em_last_error());
    }
    prelease(q);
  }
}

static void t_sort_dtype(em_dtype t, rng *r) {
  static const int64_t s1a[1] = {1}, s1b[1] = {7}, s1c[1] = {1000}, s1d[1] = {33333};
  static const int64_t s2a[2] = {37, 29}, s2b[2] = {4, 300};
  static const int64_t s3[3] = {5, 6, 7}, s3b[3] = {6, 1, 4}, s4[4] = {3, 4, 5, 6};
  static const struct {
    int nd;
    const int64_t *shape;
  } cases[] = {{1, s1a}, {1, s1b}, {1, s1c}, {1, s1d}, {2, s2a},
               {2, s2b}, {3, s3},  {3, s3b}, {4, s4}};
  int ncases = (int)(sizeof cases / sizeof cases[0]);
  for (int c = 0; c < ncases; c++) {
    if (quick && c > 5) continue;
    for (int mode = 0; mode < 2; mode++) {
      pair p = prand(t, cases[c].nd, cases[c].shape, r, mode ? M_TIES : M_GENERAL);
      sort_layouts(mode ? "ties" : "general", p);
      prelease(p);
    }
    pair p = pspecial(t, cases[c].nd, cases[c].shape, r);
    sort_layouts("specials", p);
    prelease(p);
  }
  /* zero-size arrays, along every axis */
  static const int64_t z1[1] = {0}, z2[2] = {4, 0}, z3[3] = {0, 5, 3};
  const int64_t *zs[3] = {z1, z2, z3};
  for (int k = 0; k < 3; k++) {
    pair p = prand(t, k + 1, zs[k], r, M_GENERAL);
    for (int ax = 0; ax <= k; ax++) sort_both("zero-size", p, ax);
    prelease(p);
  }
  /* many short rows (segmented path), last axis and a middle one */
  static const int64_t m1[2] = {20000, 5}, m2[2] = {4096, 33}, m3[2] = {1000, 257},
                       m4[2] = {300, 3000}, m5[3] = {64, 50, 40};
  const int64_t *ms[5] = {m1, m2, m3, m4, m5};
  for (int k = 0; k < 5; k++) {
    if (quick && k > 1) continue;
    int nd = k == 4 ? 3 : 2;
    pair p = prand(t, nd, ms[k], r, k % 2 ? M_TIES : M_GENERAL);
    sort_both("many rows", p, nd - 1);
    if (k == 4) sort_both("many rows", p, 1);
    prelease(p);
  }
}

/* Long rows: a few of 2^17+ elements (per-row radix sorts), one past 1M,
 * and a column sort of long columns (inner > 1). */
static void t_long(em_dtype t, rng *r) {
  static const int64_t l1[2] = {3, 150001}, l2[1] = {(1 << 20) + 12345},
                       l3[2] = {140000, 3};
  pair p = prand(t, 2, l1, r, M_GENERAL);
  sort_both("few long rows", p, 1);
  prelease(p);
  p = prand(t, 1, l2, r, M_TIES);
  sort_both("long row, ties", p, 0);
  prelease(p);
  p = pspecial(t, 1, l2, r);
  sort_both("long row, specials", p, 0);
  prelease(p);
  p = prand(t, 2, l3, r, M_GENERAL);
  sort_both("long columns", p, 0);
  prelease(p);
}

static void t_top_k(em_dtype t, rng *r) {
  static const int64_t s1[2] = {6, 50}, s2[1] = {1000}, s3[3] = {3, 4, 300};
  const int64_t *ss[3] = {s1, s2, s3};
  const int nds[3] = {2, 1, 3}, ks[3] = {5, 10, 300};
  for (int c = 0; c < 3; c++)
    for (int mode = 0; mode < 2; mode++) {
      pair p = prand(t, nds[c], ss[c], r, mode ? M_TIES : M_GENERAL);
      em_array *vc = NULL, *ic = NULL, *vg = NULL, *ig = NULL;
      em_status a = em_top_k(&vc, &ic, p.c, ks[c]);
      em_status b = em_top_k(&vg, &ig, p.g, ks[c]);
      record(a == EM_OK && b == EM_OK, "top_k build: %s", em_last_error());
      char what[96];
      snprintf(what, sizeof what, "top_k %s case %d mode %d indices", em_dtype_name(t), c, mode);
      check_exact(what, ic, ig);
      snprintf(what, sizeof what, "top_k %s case %d mode %d values", em_dtype_name(t), c, mode);
      check_exact(what, vc, vg);
      em_array_release(vc);
      em_array_release(ic);
      em_array_release(vg);
      em_array_release(ig);
      prelease(p);
    }
}

static atomic_int g_next;

static void *sweep(void *arg) {
  (void)arg;
  em_stream *s = NULL;
  em_status st = em_stream_new(&s, CU);
  record(st == EM_OK, "stream_new: %s", em_last_error());
  tl_stream = s;
  for (;;) {
    int i = atomic_fetch_add(&g_next, 1);
    if (i >= NSORT) break;
    em_dtype t = SORTABLE[i];
    if (quick && t != EM_U8 && t != EM_S32 && t != EM_F16 && t != EM_F32) continue;
    rng r = {0x9e3779b97f4a7c15ull ^ ((uint64_t)t * 0x2545f491ull + 7)};
    t_sort_dtype(t, &r);
    t_top_k(t, &r);
    if (!quick) t_long(t, &r);
    printf("  dtype %s done\n", em_dtype_name(t));
  }
  tl_stream = NULL;
  em_stream_free(s);
  return NULL;
}

/* Complex inputs are rejected on both devices (the op layer). */
static void t_errors(rng *r) {
  static const int64_t sh[1] = {5};
  pair p = prand(EM_C64, 1, sh, r, M_FINITE);
  em_array *o = NULL;
  record(em_sort(&o, p.g, 0, false) == EM_ERR_ARGUMENT && !o, "sort c64 rejected");
  record(em_argsort(&o, p.g, 0, true) == EM_ERR_ARGUMENT && !o, "argsort c64 rejected");
  prelease(p);
}

static double now_s(void) {
  struct timespec ts;
  timespec_get(&ts, TIME_UTC);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 16M f32 in one row on CUDA: checked against the CPU once, then timed
 * (evaluation of a fresh sort node of the same device input; includes the
 * launch overhead and the synchronize, not any transfer). */
static void t_timing(rng *r) {
  static const int64_t sh[1] = {1 << 24};
  pair p = prand(EM_F32, 1, sh, r, M_GENERAL);
  em_array *rc = NULL, *rg = NULL;
  em_sort(&rc, p.c, 0, false);
  em_sort(&rg, p.g, 0, false);
  check_exact("sort f32 16M", rc, rg);
  em_array_release(rc);
  em_array_release(rg);
  for (int idx = 0; idx < 2; idx++) {
    double best = 1e9;
    for (int it = 0; it < 6; it++) {
      em_array *o = NULL;
      if (idx) em_argsort(&o, p.g, 0, false);
      else em_sort(&o, p.g, 0, false);
      double t0 = now_s();
      em_status st = em_eval(&o, 1);
      double dt = now_s() - t0;
      record(st == EM_OK, "timing eval: %s", em_last_error());
      em_array_release(o);
      if (it > 0 && dt < best) best = dt;
    }
    printf("%s of 16M f32 (one row) on CUDA: %.3f ms (best of 5)\n",
           idx ? "argsort" : "sort", best * 1e3);
  }
  prelease(p);
}

int main(void) {
  if (!cuda_diff_have_device("test_cuda_sort")) return 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  quick = getenv("EMILY_TEST_QUICK") != NULL;
  int nthreads = getenv("EMILY_TEST_THREADS") ? atoi(getenv("EMILY_TEST_THREADS")) : 4;
  if (nthreads < 1) nthreads = 1;
  if (nthreads > 16) nthreads = 16;
  rng r = {0x243f6a8885a308d3ull};
  t_errors(&r);
  pthread_t th[16];
  for (int i = 0; i < nthreads; i++) pthread_create(&th[i], NULL, sweep, NULL);
  for (int i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
  printf("dtype sweep done: %d checks, %d failed\n", th_checks, th_failures);
  if (!quick) t_timing(&r);
  cuda_diff_summary();
  return TEST_SUMMARY();
}
