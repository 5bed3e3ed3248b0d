/* cuda_diff.h — the differential harness shared by the CUDA tests
 * (test_cuda*.c): random inputs on both devices, per-dtype tolerances, and
 * check_pair(), which evaluates the same op on {CPU} and {CUDA, 0} and
 * compares. Thread-safe counters; an op the CUDA backend reports as
 * EM_ERR_UNSUPPORTED is listed, not failed (cuda_diff_summary() prints the
 * list). Include once per test program, after harness.h. */
#ifndef EMILY_TEST_CUDA_DIFF_H
#define EMILY_TEST_CUDA_DIFF_H

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/array-impl.h"
#include "cpu/cpu-kernels.h"
#include "harness.h"

static const em_device CPU = {EM_DEVICE_CPU, 0};
static const em_device CU = {EM_DEVICE_CUDA, 0};
static bool quick = false;

/* ---- thread-safe checks ---------------------------------------------------- */

static pthread_mutex_t g_m = PTHREAD_MUTEX_INITIALIZER;
static int g_unsupported = 0;
static char g_unsup_list[8192];

static inline void record(bool ok, const char *fmt, ...) {
  pthread_mutex_lock(&g_m);
  th_checks++;
  if (!ok) {
    th_failures++;
    if (th_failures <= 80) {
      va_list ap;
      va_start(ap, fmt);
      fprintf(stderr, "FAIL: ");
      vfprintf(stderr, fmt, ap);
      fputc('\n', stderr);
      va_end(ap);
    }
  }
  pthread_mutex_unlock(&g_m);
}

static inline void unsupported(const char *what) {
  pthread_mutex_lock(&g_m);
  g_unsupported++;
  size_t l = strlen(g_unsup_list);
  if (l + strlen(what) + 3 < sizeof g_unsup_list && !strstr(g_unsup_list, what))
    snprintf(g_unsup_list + l, sizeof g_unsup_list - l, "%s%s", l ? ", " : "", what);
  pthread_mutex_unlock(&g_m);
}

/* ---- random inputs ------------------------------------------------------------ */

typedef struct {
  uint64_t s;
} rng;
static inline uint64_t rnext(rng *r) {
  uint64_t x = r->s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return r->s = x;
}
static inline double runif(rng *r, double lo, double hi) {
  return lo + (hi - lo) * (double)(rnext(r) >> 11) * 0x1p-53;
}

enum { M_GENERAL, M_UNIT, M_POS, M_TIES, M_FINITE };

/* n elements of t: ints are small (half) or any bits; floats uniform in
 * [-4, 4] with specials (0, -0, ±inf, NaN) in M_GENERAL; M_UNIT [-1, 1];
 * M_POS [0.5, 1.5] (ints 0..3); M_TIES few distinct values; M_FINITE
 * [-4, 4] without specials (complex always). */
static inline void *host_rand(em_dtype t, int64_t n, rng *r, int mode) {
  size_t es = em_dtype_size(t);
  char *buf = malloc((size_t)(n > 0 ? n : 1) * es);
  if (em_dtype_is_int(t)) {
    for (int64_t i = 0; i < n; i++) {
      uint64_t v = rnext(r);
      if (mode == M_POS) v %= 4;
      else if (mode == M_TIES) v %= 6;
      else if (mode == M_UNIT) v = (uint64_t)((int64_t)(v % 3) - 1);
      else if (v & 1) {
        int64_t sv = (int64_t)(rnext(r) % 141) - 70;
        v = em_dtype_is_signed(t) ? (uint64_t)sv : (uint64_t)(sv + 70);
      }
      memcpy(buf + (size_t)i * es, &v, es); /* little-endian: low bytes */
    }
    return buf;
  }
  bool cplx = em_dtype_is_complex(t);
  int64_t m = cplx ? 2 * n : n;
  double *d = malloc((size_t)(m > 0 ? m : 1) * sizeof(double));
  for (int64_t i = 0; i < m; i++) {
    double v;
    switch (mode) {
      case M_UNIT: v = runif(r, -1, 1); break;
      case M_POS: v = runif(r, 0.5, 1.5); break;
      case M_TIES: {
        static const double tv[] = {-1, 0, -0.0, 1, 2, 2, 1, 0};
        v = tv[rnext(r) % 8];
        if (rnext(r) % 97 == 0) v = NAN;
        break;
      }
      default: v = runif(r, -4, 4);
    }
    if (mode == M_GENERAL && !cplx && rnext(r) % 29 == 0) {
      static const double sp[] = {0.0, -0.0, INFINITY, -INFINITY, NAN, 1e-3, 3e4, 0.5, -2.5};
      v = sp[rnext(r) % 9];
    }
    d[i] = v;
  }
  em_dtype real = t == EM_C64 ? EM_F32 : t == EM_C128 ? EM_F64 : t;
  em_cpu_cast_kernel(EM_F64, real)(d, buf, m);
  free(d);
  return buf;
}

/* ---- arrays on both devices ----------------------------------------------------- */

static inline em_array *from(em_dtype t, int nd, const int64_t *shape, const void *data,
                      em_device dev) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= shape[i];
  em_array *a = NULL;
  em_status st = em_array_from_data(&a, t, nd, shape, data,
                                    (size_t)n * em_dtype_size(t), dev);
  record(st == EM_OK, "from_data %s on %d: %s", em_dtype_name(t), dev.type,
         em_last_error());
  return a;
}

typedef struct {
  em_array *c, *g; /* CPU, CUDA */
} pair;

static inline pair prand(em_dtype t, int nd, const int64_t *shape, rng *r, int mode) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= shape[i];
  void *h = host_rand(t, n, r, mode);
  pair p = {from(t, nd, shape, h, CPU), from(t, nd, shape, h, CU)};
  free(h);
  return p;
}
static inline void prelease(pair p) {
  em_array_release(p.c);
  em_array_release(p.g);
}

/* Per-thread CUDA stream. */
static _Thread_local em_stream *tl_stream = NULL;

static inline em_status eval_cuda(em_array *a) {
  if (tl_stream) return em_eval_on(&a, 1, tl_stream);
  return em_eval(&a, 1);
}

static inline double rtol_of(em_dtype t, int cls) {
  if (cls == 0) return 0;
  switch (t) {
    case EM_F16: return 2e-3;
    case EM_BF16: return 1.6e-2;
    case EM_F32: case EM_C64: return cls == 2 ? 2e-5 : 2e-6;
    case EM_F64: case EM_C128: return cls == 2 ? 1e-11 : 1e-13;
    default: return 0;
  }
}

/* Compares n elements of dtype t; complex tolerances scale with |want|. */
static inline int compare(const char *what, em_dtype t, const void *got,
                   const void *want, int64_t n, double rtol, double atol) {
  int bad = 0;
  size_t es = em_dtype_size(t);
  if (em_dtype_is_int(t) || (rtol == 0 && atol == 0 && !em_dtype_is_float(t) &&
                             !em_dtype_is_complex(t))) {
    for (int64_t i = 0; i < n; i++)
      if (memcmp((const char *)got + i * es, (const char *)want + i * es, es)) {
        if (bad < 3) {
          uint64_t g = 0, w = 0;
          memcpy(&g, (const char *)got + i * es, es);
          memcpy(&w, (const char *)want + i * es, es);
          record(false, "%s [%s] element %lld: got %llu (0x%llx) want %llu (0x%llx)",
                 what, em_dtype_name(t), (long long)i, (unsigned long long)g,
                 (unsigned long long)g, (unsigned long long)w, (unsigned long long)w);
        }
        bad++;
      }
    if (!bad) record(true, "");
    return bad;
  }
  bool cplx = em_dtype_is_complex(t);
  int64_t m = cplx ? 2 * n : n;
  double *g = malloc((size_t)(m ? m : 1) * 8), *w = malloc((size_t)(m ? m : 1) * 8);
  em_dtype real = t == EM_C64 ? EM_F32 : t == EM_C128 ? EM_F64 : t;
  em_cpu_cast_kernel(real, EM_F64)(got, g, m);
  em_cpu_cast_kernel(real, EM_F64)(want, w, m);
  for (int64_t i = 0; i < n; i++) {
    bool ok;
    if (cplx) {
      double mag = hypot(w[2 * i], w[2 * i + 1]);
      double at = atol + rtol * (isfinite(mag) ? mag : 0);
      ok = th_close(g[2 * i], w[2 * i], 0, at) && th_close(g[2 * i + 1], w[2 * i + 1], 0, at);
      if (!ok && isinf(mag)) /* inf in either part: compare loosely */
        ok = (isinf(g[2 * i]) || isinf(g[2 * i + 1]) || isnan(g[2 * i]) || isnan(g[2 * i + 1]));
    } else {
      ok = th_close(g[i], w[i], rtol, atol);
    }
    if (!ok) {
      if (bad < 3) {
        if (cplx)
          record(false, "%s [%s] element %lld: got (%.17g, %.17g) want (%.17g, %.17g)",
                 what, em_dtype_name(t), (long long)i, g[2 * i], g[2 * i + 1],
                 w[2 * i], w[2 * i + 1]);
        else
          record(false, "%s [%s] element %lld: got %.17g want %.17g", what,
                 em_dtype_name(t), (long long)i, g[i], w[i]);
      }
      bad++;
    }
  }
  if (!bad) record(true, "");
  free(g);
  free(w);
  return bad;
}

/* Evaluates rc on the CPU and rg on CUDA and compares them. */
static inline void check_pair(const char *what, em_array *rc, em_array *rg, int cls,
                       double atol_extra) {
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
  record(rc->dtype == rg->dtype && rc->size == rg->size, "%s: dtype/size", what);
  const void *hc = em_array_data(rc);
  const void *hg = em_array_data(rg);
  record(hc && hg, "%s: array_data: %s", what, em_last_error());
  if (!hc || !hg) return;
  double rt = rtol_of(rc->dtype, cls);
  compare(what, rc->dtype, hg, hc, rc->size, rt, cls ? rt + atol_extra : atol_extra);
}

enum { L_CONTIG, L_TRANSPOSED, L_SLICED };

/* A view of p on both devices: transposed or a strided slice. */
static inline pair layout(pair p, int kind) {
  if (kind == L_CONTIG) {
    em_array_retain(p.c);
    em_array_retain(p.g);
    return p;
  }
  pair q = {NULL, NULL};
  if (kind == L_TRANSPOSED) {
    em_transpose(&q.c, p.c, NULL);
    em_transpose(&q.g, p.g, NULL);
  } else {
    int64_t st[EM_MAX_NDIM], len[EM_MAX_NDIM], step[EM_MAX_NDIM];
    for (int i = 0; i < p.c->ndim; i++) {
      st[i] = p.c->shape[i] > 2 ? 1 : 0;
      len[i] = p.c->shape[i] - st[i];
      step[i] = i == p.c->ndim - 1 ? 2 : 1;
    }
    em_slice(&q.c, p.c, st, len, step);
    em_slice(&q.g, p.g, st, len, step);
  }
  return q;
}


/* True when a CUDA device is usable; prints the SKIPPED line otherwise. */
static inline bool cuda_diff_have_device(const char *prog) {
  if (em_device_count(EM_DEVICE_CUDA) > 0) return true;
  printf("%s: SKIPPED: no CUDA device\n", prog);
  return false;
}

/* Prints the unsupported list (ops the backend lacks). */
static inline void cuda_diff_summary(void) {
  if (g_unsupported)
    printf("unsupported on CUDA (%d cases): %s\n", g_unsupported, g_unsup_list);
}

#endif
