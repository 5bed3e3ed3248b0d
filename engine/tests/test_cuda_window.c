/* test_cuda_window.c — window_sum/product/max/min and window_scatter_max/
 * min on CUDA against the CPU backend (differential). The CUDA kernels
 * visit taps and windows in the CPU's order with the CPU's arithmetic, so
 * results are compared exactly: max/min and scatter bit for bit (the tie
 * rules, -0.0 against 0.0, which NaN), sums and products value for value
 * (NaN matches NaN: the payload of a NaN made by arithmetic is the
 * hardware's). Every dtype (complex for sum/product), ranks 0-4, strides,
 * padding (windows wholly in the padding), dilations, identity windows,
 * windows over whole axes, empty inputs made room for by padding,
 * non-contiguous inputs and sources (transposed, strided views), source
 * dtypes other than the operand's, pooling-sized NCHW / NHWC inputs.
 *
 * Without a CUDA device it prints "SKIPPED" and passes. EMILY_TEST_QUICK=1
 * runs a subset. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/array-impl.h"
#include "cpu/cpu-kernels.h"
#include "harness.h"
#include "cuda_diff.h"

static const em_dtype ALL[] = {EM_U8,  EM_U16, EM_U32,  EM_U64, EM_S8,
                               EM_S16, EM_S32, EM_S64,  EM_F16, EM_BF16,
                               EM_F32, EM_F64, EM_C64,  EM_C128};
#define NALL 14
#define NREAL 12

/* Evaluates both; bitwise: compare bytes, else values with no tolerance
 * (th_close: NaN matches NaN). */
static void check_win(const char *what, em_array *rc, em_array *rg,
                      bool bitwise) {
  if (!rc || !rg) {
    record(false, "%s: op failed to build: %s", what, em_last_error());
    return;
  }
  if (!bitwise) {
    check_pair(what, rc, rg, 0, 0);
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
  record(rc->dtype == rg->dtype && rc->size == rg->size, "%s: dtype/size", what);
  if (rc->size != rg->size || rc->size == 0) return;
  const char *hc = em_array_data(rc), *hg = em_array_data(rg);
  record(hc && hg, "%s: array_data: %s", what, em_last_error());
  if (!hc || !hg) return;
  size_t es = em_dtype_size(rc->dtype);
  int bad = 0;
  for (int64_t i = 0; i < rc->size; i++)
    if (memcmp(hc + i * es, hg + i * es, es)) {
      if (bad < 3) {
        uint64_t g = 0, w = 0;
        memcpy(&g, hg + i * es, es < 8 ? es : 8);
        memcpy(&w, hc + i * es, es < 8 ? es : 8);
        record(false, "%s [%s] element %lld: got 0x%llx want 0x%llx", what,
               em_dtype_name(rc->dtype), (long long)i, (unsigned long long)g,
               (unsigned long long)w);
      }
      bad++;
    }
  if (!bad) record(true, "");
}

/* ---- cases ------------------------------------------------------------------ */

typedef struct {
  int nd;
  int64_t shape[4], k[4], s[4], lo[4], hi[4], d[4];
} wcase;

static const wcase CASES[] = {
    /* rank 1: strided, padded; dilated; window covering the axis */
    {1, {50}, {3}, {2}, {1}, {2}, {1}},
    {1, {41}, {4}, {1}, {2}, {0}, {3}},
    {1, {9}, {9}, {1}, {0}, {0}, {1}},
    {1, {10}, {2}, {3}, {4}, {5}, {1}}, /* windows wholly in the padding */
    /* rank 2: mixed */
    {2, {17, 23}, {3, 2}, {2, 1}, {1, 0}, {1, 1}, {1, 2}},
    {2, {5, 6}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, {1, 1}}, /* identity */
    {2, {4, 5}, {4, 5}, {1, 1}, {0, 0}, {0, 0}, {1, 1}}, /* whole */
    {2, {31, 3}, {5, 1}, {2, 1}, {2, 0}, {2, 0}, {2, 1}}, /* trailing untouched */
    /* rank 3 */
    {3, {4, 9, 11}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {0, 1, 1}, {1, 1, 1}},
    {3, {6, 7, 8}, {2, 2, 3}, {1, 3, 2}, {1, 0, 2}, {0, 2, 1}, {2, 1, 2}},
    /* rank 4: NCHW and NHWC pooling (overlapping windows) */
    {4, {2, 3, 12, 10}, {1, 1, 3, 3}, {1, 1, 2, 2}, {0, 0, 1, 1}, {0, 0, 1, 1}, {1, 1, 1, 1}},
    {4, {2, 12, 10, 3}, {1, 3, 3, 1}, {1, 2, 2, 1}, {0, 1, 1, 0}, {0, 1, 1, 0}, {1, 1, 1, 1}},
    {4, {3, 4, 5, 6}, {2, 3, 2, 3}, {2, 1, 3, 1}, {1, 1, 0, 2}, {0, 2, 1, 0}, {1, 2, 1, 2}},
};
#define NCASES ((int)(sizeof CASES / sizeof CASES[0]))

static em_window to_window(const wcase *c) {
  em_window w;
  memset(&w, 0, sizeof w);
  for (int i = 0; i < c->nd; i++) {
    w.window[i] = c->k[i];
    w.strides[i] = c->s[i];
    w.pad_lo[i] = c->lo[i];
    w.pad_hi[i] = c->hi[i];
    w.dilations[i] = c->d[i];
  }
  return w;
}

/* The case's window permuted like a transposed (reversed-axes) view. */
static wcase reversed_case(const wcase *c) {
  wcase r = *c;
  for (int i = 0; i < c->nd; i++) {
    int j = c->nd - 1 - i;
    r.shape[i] = c->shape[j];
    r.k[i] = c->k[j];
    r.s[i] = c->s[j];
    r.lo[i] = c->lo[j];
    r.hi[i] = c->hi[j];
    r.d[i] = c->d[j];
  }
  return r;
}

typedef em_status (*wr_fn)(em_array **, em_array *, const em_window *);
static const struct {
  const char *name;
  wr_fn f;
  bool minmax;
} WR[] = {{"window_sum", em_window_sum, false},
          {"window_product", em_window_product, false},
          {"window_max", em_window_max, true},
          {"window_min", em_window_min, true}};

static void reduce_all(const char *tag, pair x, const em_window *w, int cnum,
                       em_dtype t) {
  for (int o = 0; o < 4; o++) {
    if (WR[o].minmax && em_dtype_is_complex(t)) continue;
    em_array *rc = NULL, *rg = NULL;
    WR[o].f(&rc, x.c, w);
    WR[o].f(&rg, x.g, w);
    char what[128];
    snprintf(what, sizeof what, "%s %s case %d (%s)", WR[o].name, em_dtype_name(t),
             cnum, tag);
    check_win(what, rc, rg, WR[o].minmax);
    em_array_release(rc);
    em_array_release(rg);
  }
}

static void t_reduce(em_dtype t, rng *r) {
  for (int c = 0; c < NCASES; c++) {
    if (quick && c % 3) continue;
    em_window w = to_window(&CASES[c]);
    const int modes[3] = {M_GENERAL, M_TIES, M_UNIT};
    for (int m = 0; m < 3; m++) {
      int mode = em_dtype_is_complex(t) ? M_FINITE : modes[m];
      pair x = prand(t, CASES[c].nd, CASES[c].shape, r, mode);
      reduce_all(m == 0 ? "general" : m == 1 ? "ties" : "unit", x, &w, c, t);
      if (m == 0 && CASES[c].nd >= 2) {
        /* transposed input with the window transposed likewise */
        wcase rc = reversed_case(&CASES[c]);
        em_window wt = to_window(&rc);
        pair q = layout(x, L_TRANSPOSED);
        if (q.c && q.g) reduce_all("transposed", q, &wt, c, t);
        prelease(q);
      }
      prelease(x);
    }
    if (CASES[c].nd >= 1) {
      /* a strided view (the last axis every other element) */
      pair x = prand(t, CASES[c].nd, CASES[c].shape, r, M_GENERAL);
      pair q = layout(x, L_SLICED);
      if (q.c && q.g) {
        wcase sc = CASES[c];
        for (int i = 0; i < sc.nd; i++) {
          sc.shape[i] = q.c->shape[i];
          /* keep the window inside the padded axis */
          while ((sc.k[i] - 1) * sc.d[i] + 1 > sc.shape[i] + sc.lo[i] + sc.hi[i])
            sc.hi[i]++;
        }
        em_window ws = to_window(&sc);
        reduce_all("sliced", q, &ws, c, t);
      }
      prelease(q);
      prelease(x);
    }
  }
  /* rank 0: the element itself */
  {
    pair x = prand(t, 0, NULL, r, M_GENERAL);
    em_window w;
    memset(&w, 0, sizeof w);
    reduce_all("rank 0", x, &w, -1, t);
    prelease(x);
  }
  /* empty input made room for by padding: identities */
  {
    static const int64_t sh[2] = {0, 4};
    wcase ec = {2, {0, 4}, {2, 2}, {1, 1}, {1, 0}, {1, 0}, {1, 1}};
    em_window w = to_window(&ec);
    pair x = prand(t, 2, sh, r, M_GENERAL);
    reduce_all("empty input", x, &w, -2, t);
    prelease(x);
  }
  /* pooling-sized: 3x3 stride 2 over 8x32x56x56 (NCHW) */
  if (!quick && (t == EM_F32 || t == EM_F16 || t == EM_S32)) {
    wcase pc = {4, {8, 32, 56, 56}, {1, 1, 3, 3}, {1, 1, 2, 2}, {0, 0, 1, 1}, {0, 0, 1, 1}, {1, 1, 1, 1}};
    em_window w = to_window(&pc);
    pair x = prand(t, 4, pc.shape, r, M_GENERAL);
    reduce_all("pooling NCHW", x, &w, -3, t);
    prelease(x);
  }
}

/* ---- window_scatter ---------------------------------------------------------- */

/* The windows shape of case c. */
static void out_shape(const wcase *c, int64_t *o) {
  for (int i = 0; i < c->nd; i++) {
    int64_t dk = (c->k[i] - 1) * c->d[i] + 1;
    o[i] = (c->shape[i] + c->lo[i] + c->hi[i] - dk) / c->s[i] + 1;
  }
}

static void scatter_one(const char *tag, pair a, pair src, pair init,
                        const em_window *w, int cnum) {
  for (int mx = 0; mx < 2; mx++) {
    em_array *rc = NULL, *rg = NULL;
    if (mx) {
      em_window_scatter_max(&rc, a.c, src.c, init.c, w);
      em_window_scatter_max(&rg, a.g, src.g, init.g, w);
    } else {
      em_window_scatter_min(&rc, a.c, src.c, init.c, w);
      em_window_scatter_min(&rg, a.g, src.g, init.g, w);
    }
    char what[160];
    snprintf(what, sizeof what, "window_scatter_%s %s<-%s case %d (%s)",
             mx ? "max" : "min", em_dtype_name(a.c->dtype),
             em_dtype_name(src.c->dtype), cnum, tag);
    /* ints bitwise; floats: the same adds in the same order */
    check_win(what, rc, rg, em_dtype_is_int(src.c->dtype));
    em_array_release(rc);
    em_array_release(rg);
  }
}

static void t_scatter(em_dtype t, rng *r) {
  /* source dtypes: the operand's, and one other */
  const em_dtype other = t == EM_F32 ? EM_F16 : em_dtype_is_float(t) ? EM_F32 : EM_F64;
  for (int c = 0; c < NCASES; c++) {
    if (quick && c % 3) continue;
    em_window w = to_window(&CASES[c]);
    int64_t os[4];
    out_shape(&CASES[c], os);
    for (int sv = 0; sv < 2; sv++) {
      em_dtype ts = sv ? other : t;
      if (sv && c % 2) continue;
      for (int m = 0; m < 2; m++) {
        pair a = prand(t, CASES[c].nd, CASES[c].shape, r, m ? M_TIES : M_GENERAL);
        pair src = prand(ts, CASES[c].nd, os, r, em_dtype_is_int(ts) ? M_GENERAL : M_UNIT);
        pair init = prand(ts, 0, NULL, r, M_UNIT);
        scatter_one(m ? "ties" : "general", a, src, init, &w, c);
        if (m == 0 && CASES[c].nd >= 2) {
          wcase rc = reversed_case(&CASES[c]);
          em_window wt = to_window(&rc);
          pair qa = layout(a, L_TRANSPOSED), qs = layout(src, L_TRANSPOSED);
          if (qa.c && qa.g && qs.c && qs.g) scatter_one("transposed", qa, qs, init, &wt, c);
          prelease(qa);
          prelease(qs);
        }
        prelease(a);
        prelease(src);
        prelease(init);
      }
    }
  }
  /* a strided operand and source */
  {
    wcase sc = {2, {20, 30}, {3, 3}, {1, 2}, {1, 1}, {1, 1}, {1, 1}};
    pair a0 = prand(t, 2, sc.shape, r, M_TIES);
    pair a = layout(a0, L_SLICED); /* 19 x 15 */
    wcase vc = sc;
    vc.shape[0] = 19;
    vc.shape[1] = 15;
    int64_t os[2];
    out_shape(&vc, os);
    int64_t big[2] = {os[0] + 1, 2 * os[1]};
    pair s0 = prand(t, 2, big, r, M_UNIT);
    pair src = layout(s0, L_SLICED);
    pair init = prand(t, 0, NULL, r, M_UNIT);
    em_window w = to_window(&vc);
    if (a.c && a.g && src.c && src.g && src.c->shape[0] == os[0] &&
        src.c->shape[1] == os[1])
      scatter_one("sliced", a, src, init, &w, -1);
    else
      record(false, "sliced scatter setup (%s)", em_dtype_name(t));
    prelease(a0);
    prelease(a);
    prelease(s0);
    prelease(src);
    prelease(init);
  }
  /* pooling-sized gradient: 3x3 stride 2 over 4x16x56x56 */
  if (!quick && (t == EM_F32 || t == EM_BF16)) {
    wcase pc = {4, {4, 16, 56, 56}, {1, 1, 3, 3}, {1, 1, 2, 2}, {0, 0, 1, 1}, {0, 0, 1, 1}, {1, 1, 1, 1}};
    int64_t os[4];
    out_shape(&pc, os);
    em_window w = to_window(&pc);
    pair a = prand(t, 4, pc.shape, r, M_GENERAL);
    pair src = prand(t, 4, os, r, M_UNIT);
    pair init = prand(t, 0, NULL, r, M_UNIT);
    scatter_one("pooling", a, src, init, &w, -2);
    prelease(a);
    prelease(src);
    prelease(init);
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
    if (i >= NALL) break;
    em_dtype t = ALL[i];
    if (quick && t != EM_U8 && t != EM_S32 && t != EM_F16 && t != EM_F32 && t != EM_C64)
      continue;
    rng r = {0x9e3779b97f4a7c15ull ^ ((uint64_t)t * 0x1234567ull + 3)};
    t_reduce(t, &r);
    if (i < NREAL) t_scatter(t, &r);
    printf("  dtype %s done\n", em_dtype_name(t));
  }
  tl_stream = NULL;
  em_stream_free(s);
  return NULL;
}

int main(void) {
  if (!cuda_diff_have_device("test_cuda_window")) return 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  quick = getenv("EMILY_TEST_QUICK") != NULL;
  int nthreads = getenv("EMILY_TEST_THREADS") ? atoi(getenv("EMILY_TEST_THREADS")) : 4;
  if (nthreads < 1) nthreads = 1;
  if (nthreads > 16) nthreads = 16;
  pthread_t th[16];
  for (int i = 0; i < nthreads; i++) pthread_create(&th[i], NULL, sweep, NULL);
  for (int i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
  cuda_diff_summary();
  return TEST_SUMMARY();
}
