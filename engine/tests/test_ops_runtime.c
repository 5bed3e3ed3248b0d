/* test_ops_runtime.c — the engine around the ops: 100,000-node chains
 * (evaluated, and released unevaluated without deep recursion), memory
 * statistics, the memory limit and injected allocation failures in the
 * middle of graphs (the process keeps working, nothing leaks), and streams:
 * several threads with their own streams submitting many graphs with
 * em_eval_async and em_eval, streams sharing an unevaluated subgraph,
 * synchronize, em_stream_free draining its queue, callbacks that evaluate. */
#include <pthread.h>
#include <stdatomic.h>

#include "ref.h"

/* ---- 100,000-node chains ------------------------------------------------ */

static void test_long_chains(void) {
  const int N = 100000;
  int64_t s[1] = {5};
  int64_t v0[5] = {0, 1, -2, 3, INT64_MAX - 200000};
  em_array *x = NULL, *three = NULL, *one = NULL;
  MUST(em_array_from_data(&x, EM_S64, 1, s, v0, sizeof v0, em_cpu()), x);
  MUST(em_full_scalar(&three, EM_S64, 3, em_cpu()), three);
  MUST(em_full_scalar(&one, EM_S64, 1, em_cpu()), one);
  for (int k = 0; k < N; k++) {
    em_array *y = NULL;
    MUST(k % 2 ? em_subtract(&y, x, one) : em_add(&y, x, three), y);
    em_array_release(x);
    x = y;
  }
  CHECK(!em_array_is_evaluated(x), "100k chain is lazy");
  CHECK(em_eval(&x, 1) == EM_OK, "eval 100k chain: %s", em_last_error());
  const int64_t *r = em_array_data(x);
  bool ok = r != NULL;
  for (int i = 0; ok && i < 5; i++) ok = r[i] == v0[i] + N;
  CHECK(ok, "100k chain value: %lld (want %lld)", r ? (long long)r[0] : -1, (long long)N);
  em_array_release(x);

  /* alternating kinds of op (elementwise, views, casts), f64, evaluated */
  double d0[6] = {0.5, 1, 2, 3, 4, 5};
  int64_t s23[2] = {2, 3}, s32[2] = {3, 2};
  MUST(em_array_from_data(&x, EM_F64, 2, s23, d0, sizeof d0, em_cpu()), x);
  em_array *half = NULL;
  MUST(em_full_scalar(&half, EM_F64, 0.5, em_cpu()), half);
  for (int k = 0; k < N + 8; k++) {
    em_array *y = NULL;
    switch (k % 6) {
      case 0: MUST(em_negate(&y, x), y); break;
      case 1: MUST(em_add(&y, x, half), y); break;
      case 2: MUST(em_transpose(&y, x, NULL), y); break;     /* [3,2] view */
      case 3: MUST(em_reshape(&y, x, 2, s32), y); break;     /* copies */
      case 4: MUST(em_transpose(&y, x, NULL), y); break;     /* [2,3] view */
      default: MUST(em_reshape(&y, x, 2, s23), y); break;
    }
    em_array_release(x);
    x = y;
  }
  /* each group of 6 ops maps x to -x + 0.5 and keeps the layout; after an
   * even number of groups (100008 / 6) x is back to itself */
  const double *dr = em_array_data(x);
  ok = dr != NULL && em_array_shape(x)[0] == 2;
  for (int i = 0; ok && i < 6; i++) ok = dr[i] == d0[i];
  CHECK(ok, "100k mixed chain value");
  em_array_release(x);

  /* built and released without evaluation (iterative release) */
  MUST(em_array_from_data(&x, EM_S64, 1, s, v0, sizeof v0, em_cpu()), x);
  for (int k = 0; k < N; k++) {
    em_array *y = NULL;
    MUST(k % 3 == 0 ? em_multiply(&y, x, three)
                    : k % 3 == 1 ? em_bitwise_xor(&y, x, three) : em_add(&y, x, one),
         y);
    em_array_release(x);
    x = y;
  }
  em_array_release(x);
  /* a chain whose head is shared with a second, also unevaluated, chain */
  MUST(em_array_from_data(&x, EM_S64, 1, s, v0, sizeof v0, em_cpu()), x);
  em_array *head = x, *second = NULL;
  em_array_retain(head);
  for (int k = 0; k < N; k++) {
    em_array *y = NULL;
    MUST(em_add(&y, x, one), y);
    em_array_release(x);
    x = y;
  }
  MUST(em_subtract(&second, head, one), second);
  em_array_release(x);
  const int64_t *sr = em_array_data(second);
  CHECK(sr && sr[1] == 0, "the shared head survives the release of its chain");
  em_array_release(second);
  em_array_release(head);
  em_array_release(three);
  em_array_release(one);
  em_array_release(half);
}

/* ---- memory ----------------------------------------------------------------- */

static em_memory_stats stats(void) {
  /* The default stream's worker drops its references to the arrays of an
   * evaluation only after waking the em_eval caller; a barrier on that
   * stream waits for those releases. */
  em_stream_synchronize(em_default_stream(em_cpu()));
  em_memory_stats m;
  memset(&m, 0, sizeof m);
  CHECK(em_memory_stats_get(em_cpu(), &m) == EM_OK, "memory_stats_get");
  return m;
}

static void test_memory(void) {
  stats(); /* settle releases still pending on the default stream */
  em_memory_clear_cache(em_cpu());
  em_memory_stats m0 = stats();
  CHECK(m0.cached_bytes == 0 && m0.limit_bytes == 0, "clean start: cached %zu limit %zu",
        m0.cached_bytes, m0.limit_bytes);
  const int64_t n = 262144; /* 1 MiB of f32 */
  float *buf = malloc((size_t)n * 4);
  for (int64_t i = 0; i < n; i++) buf[i] = (float)i;
  em_array *a = NULL;
  MUST(em_array_from_data(&a, EM_F32, 1, &n, buf, (size_t)n * 4, em_cpu()), a);
  em_memory_stats m1 = stats();
  CHECK(m1.active_bytes >= m0.active_bytes + (size_t)n * 4 && m1.alloc_count > m0.alloc_count,
        "active grows by the array: %zu -> %zu", m0.active_bytes, m1.active_bytes);
  CHECK(m1.peak_bytes >= m1.active_bytes, "peak >= active");
  em_array_release(a);
  em_memory_stats m2 = stats();
  CHECK(m2.active_bytes == m0.active_bytes && m2.cached_bytes >= (size_t)n * 4,
        "release moves the buffer to the cache: active %zu cached %zu", m2.active_bytes,
        m2.cached_bytes);
  /* the next allocation of that size is a cache hit */
  MUST(em_array_from_data(&a, EM_F32, 1, &n, buf, (size_t)n * 4, em_cpu()), a);
  em_memory_stats m3 = stats();
  CHECK(m3.cache_hits > m2.cache_hits && m3.cached_bytes < m2.cached_bytes, "cache hit");
  const float *p = em_array_data(a);
  CHECK(p && p[n - 1] == (float)(n - 1) && p[7] == 7, "reused buffer holds the new data");
  em_array_release(a);
  em_memory_clear_cache(em_cpu());
  CHECK(stats().cached_bytes == 0, "clear_cache empties the cache");
  /* peak */
  em_memory_reset_peak(em_cpu());
  em_memory_stats m4 = stats();
  CHECK(m4.peak_bytes == m4.active_bytes, "reset_peak: peak %zu active %zu", m4.peak_bytes,
        m4.active_bytes);
  {
    int64_t big = 4 * n;
    em_array *f = NULL, *g = NULL;
    MUST(em_full_scalar(&f, EM_F32, 2, em_cpu()), f);
    MUST(em_broadcast(&g, f, 1, &big, NULL), g);
    em_array *h = NULL;
    MUST(em_exp(&h, g), h);
    CHECK(em_eval(&h, 1) == EM_OK, "eval 4 MiB");
    em_array_release(f);
    em_array_release(g);
    em_array_release(h);
  }
  em_memory_stats m5 = stats();
  CHECK(m5.peak_bytes >= m4.active_bytes + (size_t)n * 16 && m5.active_bytes == m4.active_bytes,
        "peak saw the 4 MiB temporary: %zu", m5.peak_bytes);
  em_memory_clear_cache(em_cpu());

  /* the limit: an allocation past it fails with EM_ERR_OOM, smaller ones
   * still work, removing the limit makes the same graph work */
  {
    em_memory_stats m = stats();
    size_t limit = m.active_bytes + (2u << 20);
    em_memory_set_limit(em_cpu(), limit);
    CHECK(stats().limit_bytes == limit, "limit is reported");
    int64_t big = 4 * n;
    em_array *f = NULL, *g = NULL, *h = NULL, *d = SENTINEL;
    MUST(em_full(&f, EM_F32, 1, &big, &(float){3}, em_cpu()), f);
    MUST(em_sqrt(&g, f), g);
    em_status st = em_eval(&g, 1);
    CHECK(st == EM_ERR_OOM && strstr(em_last_error(), "limit"),
          "eval past the limit: %s (%s)", em_status_name(st), em_last_error());
    CHECK(!em_array_is_evaluated(g), "failed array is not evaluated");
    CHECK(em_array_data(g) == NULL, "no data for a failed array");
    /* a new consumer of the failed array fails with its message */
    em_array *k2 = NULL;
    MUST(em_add(&k2, g, g), k2);
    st = em_eval(&k2, 1);
    CHECK(st == EM_ERR_OOM && strstr(em_last_error(), "limit"),
          "consumer of a failed array: %s (%s)", em_status_name(st), em_last_error());
    em_array_release(k2);
    float *b4 = calloc((size_t)big, 4);
    st = em_array_from_data(&d, EM_F32, 1, &big, b4, (size_t)big * 4, em_cpu());
    CHECK(st == EM_ERR_OOM && d == NULL, "from_data past the limit: %s", em_status_name(st));
    /* small work still fits */
    em_array *sm = NULL, *sq = NULL;
    MUST(em_full_scalar(&sm, EM_F32, 9, em_cpu()), sm);
    MUST(em_sqrt(&sq, sm), sq);
    const float *sv = em_array_data(sq);
    CHECK(sv && *sv == 3, "small eval under the limit");
    em_memory_set_limit(em_cpu(), 0);
    CHECK(stats().limit_bytes == 0, "limit removed");
    CHECK(em_eval(&g, 1) == EM_ERR_OOM, "a failed array stays failed");
    em_array_release(f);
    MUST(em_full(&f, EM_F32, 1, &big, &(float){3}, em_cpu()), f);
    MUST(em_sqrt(&h, f), h);
    const float *hv = em_array_data(h);
    CHECK(hv && fabsf(hv[0] - sqrtf(3)) < 1e-6f && hv[big - 1] == hv[0],
          "the same graph works without the limit");
    MUST(em_array_from_data(&d, EM_F32, 1, &big, b4, (size_t)big * 4, em_cpu()), d);
    free(b4);
    em_array *all[] = {f, g, h, d, sm, sq};
    for (int i = 0; i < 6; i++) em_array_release(all[i]);
  }
  /* a cached block is no way around the limit: the limit bounds active
   * bytes, wherever the block comes from */
  {
    em_memory_clear_cache(em_cpu());
    int64_t big = 4 * n;
    em_array *f = NULL, *g = NULL;
    MUST(em_full(&f, EM_F32, 1, &big, &(float){1}, em_cpu()), f);
    CHECK(em_eval(&f, 1) == EM_OK, "eval 4 MiB");
    em_array_release(f);
    em_memory_stats m = stats();
    CHECK(m.cached_bytes >= (size_t)big * 4, "4 MiB cached");
    em_memory_set_limit(em_cpu(), m.active_bytes + (1u << 20));
    MUST(em_full(&g, EM_F32, 1, &big, &(float){2}, em_cpu()), g);
    em_status st = em_eval(&g, 1);
    CHECK(st == EM_ERR_OOM && strstr(em_last_error(), "limit"),
          "cached block past the limit: %s (%s)", em_status_name(st), em_last_error());
    em_memory_set_limit(em_cpu(), 0);
    em_array_release(g);
  }
  /* past the limit with a full cache: the cache is dropped first */
  {
    em_memory_clear_cache(em_cpu());
    int64_t big = 2 * n; /* 2 MiB */
    em_array *f = NULL, *g = NULL;
    MUST(em_full(&f, EM_F32, 1, &big, &(float){1}, em_cpu()), f);
    CHECK(em_eval(&f, 1) == EM_OK, "eval 2 MiB");
    em_array_release(f);
    em_memory_stats m = stats();
    CHECK(m.cached_bytes >= (size_t)big * 4, "2 MiB cached");
    em_memory_set_limit(em_cpu(), m.active_bytes + (size_t)big * 4 + 4096);
    int64_t other = n * 8 / 5; /* 1.6 MiB: another bin, no cache hit */
    MUST(em_full(&g, EM_F32, 1, &other, &(float){2}, em_cpu()), g);
    CHECK(em_eval(&g, 1) == EM_OK, "fits once the cache is dropped: %s", em_last_error());
    em_memory_stats m2 = stats();
    CHECK(m2.cached_bytes < (size_t)big * 4 && m2.cache_hits == m.cache_hits,
          "cache dropped, not reused: cached %zu", m2.cached_bytes);
    const float *gv = em_array_data(g);
    CHECK(gv && gv[0] == 2 && gv[other - 1] == 2, "value after dropping the cache");
    em_memory_set_limit(em_cpu(), 0);
    em_array_release(g);
  }
  free(buf);
}

/* A graph with many allocations: kernels, views, fused trees, dot, pad,
 * concatenate, reductions, softmax. Returns the value it must have. */
static em_array *build_graph(em_array *x, em_array *y, host *want, const host *X,
                             const host *Y) {
  em_array *e = NULL, *t = NULL, *d = NULL, *s = NULL, *c = NULL, *pz = NULL, *pd = NULL,
           *sm = NULL, *r = NULL, *o = NULL, *xs[2];
  MUST(em_tanh(&e, x), e);                           /* [8,6] fused */
  MUST(em_transpose(&t, y, NULL), t);                /* [6,8] view */
  MUST(em_dot(&d, e, 1, (int[]){1}, 0, NULL, t, 1, (int[]){0}, 0, NULL), d); /* [8,8] */
  MUST(em_sum(&s, d, 1, (int[]){0}, true), s);      /* [1,8] */
  xs[0] = s;
  xs[1] = s;
  MUST(em_concatenate(&c, xs, 2, 0), c);             /* [2,8] */
  MUST(em_full_scalar(&pz, EM_F64, 0, em_cpu()), pz);
  MUST(em_pad(&pd, c, pz, (int64_t[]){0, 1}, (int64_t[]){0, 1}, NULL), pd); /* [2,10] */
  MUST(em_softmax(&sm, pd, 1), sm);
  MUST(em_add(&r, sm, pd), r);
  MUST(em_multiply(&o, r, r), o);
  em_array *all[] = {e, t, d, s, c, pz, pd, sm, r};
  for (int i = 0; i < 9; i++) em_array_release(all[i]);
  /* the reference */
  double D[8][8], S[8], P[2][10];
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 8; j++) {
      double acc = 0;
      for (int k = 0; k < 6; k++) acc += tanh(X->v[i * 6 + k].re) * Y->v[j * 6 + k].re;
      D[i][j] = acc;
    }
  for (int j = 0; j < 8; j++) {
    S[j] = 0;
    for (int i = 0; i < 8; i++) S[j] += D[i][j];
  }
  for (int r2 = 0; r2 < 2; r2++)
    for (int j = 0; j < 10; j++) P[r2][j] = (j == 0 || j == 9) ? 0 : S[j - 1];
  *want = h_new(EM_F64, 2, (int64_t[]){2, 10});
  for (int r2 = 0; r2 < 2; r2++) {
    double m = -INFINITY, z = 0;
    for (int j = 0; j < 10; j++) m = fmax(m, P[r2][j]);
    for (int j = 0; j < 10; j++) z += exp(P[r2][j] - m);
    for (int j = 0; j < 10; j++) {
      double v = exp(P[r2][j] - m) / z + P[r2][j];
      want->v[r2 * 10 + j] = tv_f(v * v);
    }
  }
  return o;
}

typedef struct {
  atomic_int calls;
  atomic_int last_status;
  char msg[256];
} cb_state;

static void record_cb(em_status st, void *user) {
  cb_state *c = user;
  atomic_store(&c->last_status, (int)st);
  if (st != EM_OK) snprintf(c->msg, sizeof c->msg, "%s", em_last_error());
  atomic_fetch_add(&c->calls, 1);
}

static void test_fail_after(void) {
  int64_t s[2] = {8, 6};
  host X = h_new(EM_F64, 2, s), Y = h_new(EM_F64, 2, s);
  h_rand(&X, -1, 1);
  h_rand(&Y, -1, 1);
  em_array *x = h_array(&X), *y = h_array(&Y);
  int failures = 0, successes = 0;
  for (long k = 0; k < 60 && successes < 3; k++) {
    host want;
    em_array *o = build_graph(x, y, &want, &X, &Y);
    em_memory_fail_after(em_cpu(), k);
    em_status st = em_eval(&o, 1);
    em_memory_fail_after(em_cpu(), -1);
    if (st == EM_OK) {
      successes++;
      check_host("graph after injected failures", o, &want, 1e-12, 1e-12);
    } else {
      failures++;
      CHECK(st == EM_ERR_OOM && strstr(em_last_error(), "injected"),
            "fail_after(%ld): %s (%s)", k, em_status_name(st), em_last_error());
      CHECK(!em_array_is_evaluated(o), "failed graph is not evaluated");
      /* the failure sticks to this array; data access fails cleanly */
      CHECK(em_eval(&o, 1) != EM_OK && em_array_data(o) == NULL, "failed array stays failed");
    }
    em_array_release(o);
    h_free(&want);
  }
  CHECK(failures >= 5, "the graph needs several allocations (%d failures seen)", failures);
  CHECK(successes >= 1, "later evaluations succeed");
  /* injected failure at creation */
  {
    em_array *a = SENTINEL;
    double v = 1;
    em_memory_fail_after(em_cpu(), 0);
    em_status st = em_array_from_data(&a, EM_F64, 0, NULL, &v, 8, em_cpu());
    em_memory_fail_after(em_cpu(), -1);
    CHECK(st == EM_ERR_OOM && a == NULL, "from_data with an injected failure");
  }
  /* injected failure seen by an async callback */
  {
    em_stream *st = NULL;
    MUST(em_stream_new(&st, em_cpu()), (em_array *)st);
    cb_state c;
    memset(&c, 0, sizeof c);
    host want;
    em_array *o = build_graph(x, y, &want, &X, &Y);
    em_memory_fail_after(em_cpu(), 1);
    CHECK(em_eval_async(&o, 1, st, record_cb, &c) == EM_OK, "eval_async");
    CHECK(em_stream_synchronize(st) == EM_OK, "synchronize");
    em_memory_fail_after(em_cpu(), -1);
    CHECK(atomic_load(&c.calls) == 1 && atomic_load(&c.last_status) == EM_ERR_OOM &&
              strstr(c.msg, "injected"),
          "callback sees the failure: %d %s", atomic_load(&c.last_status), c.msg);
    em_array_release(o);
    h_free(&want);
    /* and the stream keeps working */
    o = build_graph(x, y, &want, &X, &Y);
    CHECK(em_eval_async(&o, 1, st, record_cb, &c) == EM_OK, "eval_async again");
    em_stream_free(st);
    CHECK(atomic_load(&c.calls) == 2 && atomic_load(&c.last_status) == EM_OK,
          "second async eval succeeds");
    check_host("async graph", o, &want, 1e-12, 1e-12);
    em_array_release(o);
    h_free(&want);
  }
  em_array_release(x);
  em_array_release(y);
  h_free(&X);
  h_free(&Y);
}

/* ---- streams --------------------------------------------------------------- */

#define NTHREADS 4
#define NGRAPHS 150

typedef struct {
  int id;
  atomic_int done, bad;
  int checked;
} worker_ctx;

static void count_cb(em_status st, void *user) {
  worker_ctx *w = user;
  if (st != EM_OK) atomic_fetch_add(&w->bad, 1);
  atomic_fetch_add(&w->done, 1);
}

/* sum(2x + 1) of x = base + [0..15] */
static em_array *small_graph(double base, double *want) {
  double v[16];
  *want = 0;
  for (int i = 0; i < 16; i++) {
    v[i] = base + i;
    *want += 2 * v[i] + 1;
  }
  int64_t s[1] = {16};
  em_array *x = NULL, *two = NULL, *one = NULL, *m = NULL, *a = NULL, *r = NULL;
  MUST(em_array_from_data(&x, EM_F64, 1, s, v, sizeof v, em_cpu()), x);
  MUST(em_full_scalar(&two, EM_F64, 2, em_cpu()), two);
  MUST(em_full_scalar(&one, EM_F64, 1, em_cpu()), one);
  MUST(em_multiply(&m, x, two), m);
  MUST(em_add(&a, m, one), a);
  MUST(em_sum(&r, a, 0, NULL, false), r);
  em_array *all[] = {x, two, one, m, a};
  for (int i = 0; i < 5; i++) em_array_release(all[i]);
  return r;
}

static void *worker(void *arg) {
  worker_ctx *w = arg;
  em_stream *s = NULL;
  if (em_stream_new(&s, em_cpu()) != EM_OK) {
    atomic_fetch_add(&w->bad, 1000);
    return NULL;
  }
  em_array *res[NGRAPHS];
  double want[NGRAPHS];
  for (int i = 0; i < NGRAPHS; i++) {
    res[i] = small_graph(w->id * 10000.0 + i, &want[i]);
    if (em_eval_async(&res[i], 1, s, count_cb, w) != EM_OK) atomic_fetch_add(&w->bad, 1);
    if (i % 50 == 7) { /* a big graph: streams share the thread pool */
      int64_t n = 200000;
      em_array *f = NULL, *b = NULL, *e = NULL, *r = NULL;
      MUST(em_full_scalar(&f, EM_F64, 0.001 * w->id, em_cpu()), f);
      MUST(em_broadcast(&b, f, 1, &n, NULL), b);
      MUST(em_exp(&e, b), e);
      MUST(em_sum(&r, e, 0, NULL, false), r);
      const double *p = em_eval(&r, 1) == EM_OK ? em_array_data(r) : NULL;
      if (!p || fabs(*p - n * exp(0.001 * w->id)) > 1e-9 * n) atomic_fetch_add(&w->bad, 1);
      em_array *all[] = {f, b, e, r};
      for (int k = 0; k < 4; k++) em_array_release(all[k]);
    }
    if (i % 10 == 0) { /* and synchronous evaluation on the default stream */
      double wv;
      em_array *r = small_graph(-w->id - i, &wv);
      const double *p = em_eval(&r, 1) == EM_OK ? em_array_data(r) : NULL;
      if (!p || *p != wv) atomic_fetch_add(&w->bad, 1);
      w->checked++;
      em_array_release(r);
    }
  }
  if (em_stream_synchronize(s) != EM_OK) atomic_fetch_add(&w->bad, 1);
  if (atomic_load(&w->done) != NGRAPHS) atomic_fetch_add(&w->bad, 1);
  for (int i = 0; i < NGRAPHS; i++) {
    const double *p = em_array_is_evaluated(res[i]) ? em_array_data(res[i]) : NULL;
    if (!p || *p != want[i]) atomic_fetch_add(&w->bad, 1);
    else w->checked++;
    em_array_release(res[i]);
  }
  em_stream_free(s);
  return NULL;
}

/* Threads evaluating the same lazy array through em_eval. */
typedef struct {
  em_array *shared;
  const host *want;
  atomic_int bad;
} shared_ctx;
static void *eval_shared(void *arg) {
  shared_ctx *c = arg;
  if (em_eval(&c->shared, 1) != EM_OK) atomic_fetch_add(&c->bad, 1);
  const double *p = em_array_data(c->shared);
  for (int64_t i = 0; p && i < c->want->n; i++)
    if (fabs(p[i] - c->want->v[i].re) > 1e-12 * fabs(c->want->v[i].re)) {
      atomic_fetch_add(&c->bad, 1);
      break;
    }
  if (!p) atomic_fetch_add(&c->bad, 1);
  return NULL;
}

typedef struct {
  em_array *arr;
  atomic_int st;
  atomic_int calls;
} nested_ctx;
static void nested_cb(em_status st, void *user) {
  nested_ctx *c = user;
  /* evaluating from inside a callback runs inline on the worker */
  em_status s2 = st == EM_OK ? em_eval(&c->arr, 1) : st;
  atomic_store(&c->st, (int)s2);
  atomic_fetch_add(&c->calls, 1);
}

static void test_streams(void) {
  /* several threads, each with its own stream */
  {
    pthread_t th[NTHREADS];
    worker_ctx w[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
      memset(&w[i], 0, sizeof w[i]);
      w[i].id = i + 1;
      pthread_create(&th[i], NULL, worker, &w[i]);
    }
    for (int i = 0; i < NTHREADS; i++) {
      pthread_join(th[i], NULL);
      CHECK(atomic_load(&w[i].bad) == 0 && atomic_load(&w[i].done) == NGRAPHS &&
                w[i].checked == NGRAPHS + NGRAPHS / 10,
            "thread %d: %d bad, %d callbacks, %d results checked", i, atomic_load(&w[i].bad),
            atomic_load(&w[i].done), w[i].checked);
    }
  }
  /* two streams evaluating graphs that share an unevaluated subgraph */
  {
    em_stream *A = NULL, *B = NULL;
    MUST(em_stream_new(&A, em_cpu()), (em_array *)A);
    MUST(em_stream_new(&B, em_cpu()), (em_array *)B);
    int64_t n = 20000;
    int bad = 0;
    for (int rep = 0; rep < 30; rep++) {
      host X = h_new(EM_F64, 1, &n);
      h_rand(&X, -2, 2);
      em_array *x = h_array(&X), *e = NULL, *s = NULL, *one = NULL, *two = NULL, *y1 = NULL,
               *y2 = NULL, *y3 = NULL;
      MUST(em_exp(&e, x), e);
      MUST(em_sum(&s, e, 0, NULL, false), s); /* a kernel in the shared part */
      MUST(em_full_scalar(&one, EM_F64, 1, em_cpu()), one);
      MUST(em_full_scalar(&two, EM_F64, 2, em_cpu()), two);
      MUST(em_add(&y1, e, s), y1);
      MUST(em_multiply(&y2, e, two), y2);
      MUST(em_subtract(&y3, s, one), y3);
      em_array_release(e);
      em_array_release(s);
      cb_state c1, c2;
      memset(&c1, 0, sizeof c1);
      memset(&c2, 0, sizeof c2);
      em_array *pair[2] = {y2, y3};
      CHECK(em_eval_async(&y1, 1, A, record_cb, &c1) == EM_OK, "eval_async A");
      CHECK(em_eval_async(pair, 2, B, record_cb, &c2) == EM_OK, "eval_async B");
      CHECK(em_stream_synchronize(B) == EM_OK && em_stream_synchronize(A) == EM_OK, "sync");
      CHECK(atomic_load(&c1.calls) == 1 && atomic_load(&c2.calls) == 1 &&
                atomic_load(&c1.last_status) == EM_OK && atomic_load(&c2.last_status) == EM_OK,
            "both callbacks ran once with OK");
      long double sum = 0;
      for (int64_t i = 0; i < n; i++) sum += exp(X.v[i].re);
      const double *p1 = em_array_data(y1), *p2 = em_array_data(y2), *p3 = em_array_data(y3);
      for (int64_t i = 0; p1 && p2 && i < n; i++) {
        double ev = exp(X.v[i].re);
        if (fabs(p1[i] - (ev + (double)sum)) > 1e-9 * (double)sum || fabs(p2[i] - 2 * ev) > 1e-12 * ev)
          bad++;
      }
      if (!p1 || !p2 || !p3 || fabs(*p3 - ((double)sum - 1)) > 1e-9 * (double)sum) bad++;
      em_array *all[] = {x, one, two, y1, y2, y3};
      for (int i = 0; i < 6; i++) em_array_release(all[i]);
      h_free(&X);
    }
    CHECK(bad == 0, "shared subgraph over two streams: %d bad", bad);
    em_stream_free(A);
    em_stream_free(B);
  }
  /* several threads em_eval the same lazy array */
  {
    int64_t n = 50000;
    host X = h_new(EM_F64, 1, &n);
    h_rand(&X, -2, 2);
    em_array *x = h_array(&X), *e = NULL, *c = NULL, *r = NULL;
    MUST(em_sin(&e, x), e);
    MUST(em_cos(&r, e), r);
    /* read through a transposed view: every thread's em_array_data races
     * to make the row-major copy */
    MUST(em_reshape(&c, r, 2, (int64_t[]){250, 200}), c);
    em_array_release(r);
    MUST(em_transpose(&r, c, NULL), r);
    em_array_release(c);
    c = r;
    host W = h_new(EM_F64, 1, &n);
    for (int i = 0; i < 200; i++)
      for (int j = 0; j < 250; j++) W.v[i * 250 + j] = tv_f(cos(sin(X.v[j * 200 + i].re)));
    shared_ctx sc = {.shared = c, .want = &W};
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) pthread_create(&th[i], NULL, eval_shared, &sc);
    for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
    CHECK(atomic_load(&sc.bad) == 0, "threads evaluating one array: %d bad", atomic_load(&sc.bad));
    em_array_release(x);
    em_array_release(e);
    em_array_release(c);
    h_free(&X);
    h_free(&W);
  }
  /* one em_eval with the same array twice, an evaluated one and a view */
  {
    double w1, w2;
    em_array *a = small_graph(1, &w1), *b = small_graph(2, &w2), *bb = NULL;
    CHECK(em_eval(&b, 1) == EM_OK, "eval b");
    MUST(em_reshape(&bb, a, 1, (int64_t[]){1}), bb);
    em_array *list[4] = {a, b, a, bb};
    CHECK(em_eval(list, 4) == EM_OK, "eval with duplicates: %s", em_last_error());
    const double *pa = em_array_data(a), *pb = em_array_data(b), *pv = em_array_data(bb);
    CHECK(pa && *pa == w1 && pb && *pb == w2 && pv && *pv == w1, "duplicates evaluated once");
    em_array_release(a);
    em_array_release(b);
    em_array_release(bb);
  }
  /* em_stream_free waits for queued work */
  {
    em_stream *s = NULL;
    MUST(em_stream_new(&s, em_cpu()), (em_array *)s);
    worker_ctx w;
    memset(&w, 0, sizeof w);
    em_array *res[100];
    double want[100];
    for (int i = 0; i < 100; i++) {
      res[i] = small_graph(i * 3.0, &want[i]);
      CHECK(em_eval_async(&res[i], 1, s, count_cb, &w) == EM_OK, "queue");
    }
    em_stream_free(s);
    CHECK(atomic_load(&w.done) == 100 && atomic_load(&w.bad) == 0,
          "stream_free ran every queued graph (%d)", atomic_load(&w.done));
    int ok = 0;
    for (int i = 0; i < 100; i++) {
      const double *p = em_array_is_evaluated(res[i]) ? em_array_data(res[i]) : NULL;
      ok += p && *p == want[i];
      em_array_release(res[i]);
    }
    CHECK(ok == 100, "queued results: %d of 100 right", ok);
  }
  /* a callback that evaluates; synchronize the default stream */
  {
    em_stream *s = NULL;
    MUST(em_stream_new(&s, em_cpu()), (em_array *)s);
    double w1, w2;
    em_array *a = small_graph(5, &w1), *b = small_graph(7, &w2);
    nested_ctx c = {.arr = b};
    CHECK(em_eval_async(&a, 1, s, nested_cb, &c) == EM_OK, "eval_async nested");
    CHECK(em_stream_synchronize(s) == EM_OK, "synchronize");
    const double *pa = em_array_data(a), *pb = em_array_data(b);
    CHECK(atomic_load(&c.calls) == 1 && atomic_load(&c.st) == EM_OK && pa && *pa == w1 && pb &&
              *pb == w2,
          "eval inside a callback");
    /* an empty eval_async still calls back */
    cb_state e0;
    memset(&e0, 0, sizeof e0);
    CHECK(em_eval_async(NULL, 0, s, record_cb, &e0) == EM_OK && em_stream_synchronize(s) == EM_OK &&
              atomic_load(&e0.calls) == 1,
          "empty eval_async");
    em_stream_free(s);
    em_stream *d = em_default_stream(em_cpu());
    CHECK(d != NULL && em_stream_synchronize(d) == EM_OK, "default stream synchronize");
    CHECK(em_default_stream(em_cpu()) == d, "one default stream");
    em_array_release(a);
    em_array_release(b);
  }
  /* A blocking em_eval runs on the caller only when the default stream is
   * idle: here it is busy with queued work, so the eval must wait its
   * turn (the queued callback has run when em_eval returns).
   * test_fail_after covers errors from an inline eval. */
  {
    em_stream *s = em_default_stream(em_cpu());
    int64_t n = 1 << 21;
    em_array *big = NULL;
    MUST(em_full_scalar(&big, EM_F64, 0.5, em_cpu()), big);
    em_array *t = NULL;
    MUST(em_broadcast(&t, big, 1, &n, NULL), t);
    em_array_release(big);
    big = t;
    for (int i = 0; i < 40; i++) { /* ~100 ms of unfusable work */
      em_array *u = NULL;
      MUST(em_sort(&u, big, 0, i % 2 == 1), u);
      em_array_release(big);
      big = u;
    }
    cb_state c;
    memset(&c, 0, sizeof c);
    double w;
    em_array *small = small_graph(3, &w);
    CHECK(em_eval_async(&big, 1, s, record_cb, &c) == EM_OK, "queue big");
    CHECK(em_eval(&small, 1) == EM_OK, "eval behind queued work");
    CHECK(atomic_load(&c.calls) == 1,
          "the blocking eval ran after the queued work (callback calls %d)",
          atomic_load(&c.calls));
    const double *p = em_array_data(small);
    CHECK(p && *p == w, "result of the eval behind queued work");
    em_array_release(big);
    em_array_release(small);
  }
}

int main(void) {
  rng_seed(41);
  test_long_chains();
  test_memory();
  test_fail_after();
  test_streams();
  return TEST_SUMMARY();
}
