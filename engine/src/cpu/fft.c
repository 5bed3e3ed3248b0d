/* fft.c — the CPU kernels of EM_OP_fft (complex <-> complex, forward or
 * inverse), EM_OP_rfft (real -> n/2+1 complex) and EM_OP_irfft (n/2+1
 * complex -> n real), along the last axis, batched over the leading axes.
 * Our own FFT (no external library); numpy.fft's conventions: forward
 * sum_j x_j e^(-2 pi i jk/n), inverse with the opposite sign and a 1/n.
 *
 * Algorithms (src/cpu/fft-impl.h, instantiated for double and float):
 *  - smooth lengths (prime factors <= 61): Stockham autosort passes of
 *    radix 8/4/2 (powers of two), 3, 5, 7 and a generic odd radix, on lane
 *    buffers so that every pass is a vector loop;
 *  - long rows: the four-step algorithm (n = n1*n2: column FFTs, twiddle,
 *    row FFTs), both steps split over threads with em_parallel_for, each
 *    sub-FFT of V4 interleaved sequences running in cache;
 *  - other lengths: Bluestein's chirp z-transform through a 2^a 3^b 5^c
 *    length m >= 2n-1;
 *  - real transforms of even length n: one complex FFT of length n/2 on
 *    the even/odd samples packed as complex numbers, plus a pre/post pass;
 *    odd lengths go through the complex FFT of length n.
 * Twiddles are computed in double (octant-reduced sin/cos, or a product of
 * two table entries) and rounded once to the working precision; the float
 * Bluestein kernel is transformed in double. c64 computes in float, c128
 * in double.
 *
 * Plans (twiddles, sub-plans) are built on first use and kept in a small
 * LRU cache shared by all threads (FFT_CACHE_N plans, FFT_CACHE_BYTES). */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/backend-impl.h"
#include "../core/parallel.h"
#include "cpu-kernels.h"
#include "simd.h"

/* The 32-byte vector helpers are always inlined: no ABI is involved. */
#pragma GCC diagnostic ignored "-Wpsabi"

enum { FFT_C2C, FFT_R2C, FFT_C2R };

#define FFT_MAXF 64           /* passes of a direct plan */
#define FFT_MAXR 61           /* largest prime radix; beyond: Bluestein */
#define FFT_FS_MIN 64         /* four-step from this length */
#define FFT_DIRECT_MAX 16384  /* lane-buffer passes up to this length */
#define FFT_PAR_MIN (1 << 15) /* split one row over threads from here */
#define FFT_PF 8              /* rows of prefetch in strided gathers */
#define FFT_LANES_MAX_BYTES (512 * 1024)
#define FFT_CACHE_N 16
#define FFT_CACHE_BYTES ((size_t)512 << 20)

/* ---- helpers shared by both precisions ------------------------------------
 */

static void *fft_alloc(size_t nbytes) {
  if (nbytes > SIZE_MAX - 128) return NULL;
  nbytes = (nbytes + 63) & ~(size_t)63;
  if (nbytes == 0) nbytes = 64;
  return aligned_alloc(64, nbytes);
}

/* exp(-2 pi i t/n) for 0 <= t, reduced to an angle in [0, pi/4]. */
static void fft_unit_root(int64_t t, int64_t n, double *re, double *im) {
  const double half_pi = 1.57079632679489661923132169163975144;
  t %= n;
  int64_t q = (4 * t) / n, r = 4 * t - q * n; /* 2 pi t/n = pi/2 (q + r/n) */
  double c, s;
  if (2 * r <= n) {
    double a = half_pi * (double)r / (double)n;
    c = cos(a);
    s = sin(a);
  } else {
    double a = half_pi * (double)(n - r) / (double)n;
    c = sin(a);
    s = cos(a);
  }
  double cr, sr; /* e^(i angle) */
  switch (q) {
    case 0:
      cr = c;
      sr = s;
      break;
    case 1:
      cr = -s;
      sr = c;
      break;
    case 2:
      cr = -c;
      sr = -s;
      break;
    default:
      cr = s;
      sr = -c;
      break;
  }
  *re = cr;
  *im = -sr;
}

/* w_n^t for 0 <= t < n as hi[t / B] * lo[t % B]: two small tables and one
 * complex product in double (error ~2 ulp), for building large tables. */
typedef struct {
  int64_t n, B;
  int sh;
  double *lo, *hi;
} fft_roots;

static bool fft_roots_init(fft_roots *g, int64_t n) {
  g->n = n;
  g->sh = 0;
  while (((int64_t)1 << (2 * g->sh)) < n) g->sh++;
  g->B = (int64_t)1 << g->sh;
  int64_t nh = (n + g->B - 1) / g->B;
  g->lo = fft_alloc((size_t)g->B * 2 * sizeof(double));
  g->hi = fft_alloc((size_t)nh * 2 * sizeof(double));
  if (!g->lo || !g->hi) {
    free(g->lo);
    free(g->hi);
    return false;
  }
  for (int64_t i = 0; i < g->B; i++)
    fft_unit_root(i, n, &g->lo[2 * i], &g->lo[2 * i + 1]);
  for (int64_t i = 0; i < nh; i++)
    fft_unit_root(i * g->B, n, &g->hi[2 * i], &g->hi[2 * i + 1]);
  return true;
}
static void fft_roots_free(fft_roots *g) {
  free(g->lo);
  free(g->hi);
}
static inline void fft_roots_get(const fft_roots *g, int64_t t, double *re,
                                 double *im) {
  int64_t a = t >> g->sh, b = t & (g->B - 1);
  double hr = g->hi[2 * a], hi = g->hi[2 * a + 1];
  double lr = g->lo[2 * b], li = g->lo[2 * b + 1];
  *re = hr * lr - hi * li;
  *im = hr * li + hi * lr;
}

/* The radices of a direct plan for n (powers of two as 8s plus one 4 or 2,
 * then odd primes ascending); -1 when n has a prime factor > FFT_MAXR. */
static int fft_factor(int64_t n, int *f) {
  int nf = 0, k = 0;
  if (n < 1) return -1;
  while (n % 2 == 0) {
    n /= 2;
    k++;
  }
  if (k % 3 == 1) f[nf++] = 2;
  if (k % 3 == 2) f[nf++] = 4;
  for (int i = 0; i < k / 3; i++) f[nf++] = 8;
  for (int p = 3; p <= FFT_MAXR && n > 1; p += 2)
    while (n % p == 0) {
      if (nf >= FFT_MAXF) return -1;
      f[nf++] = p;
      n /= p;
    }
  return n == 1 ? nf : -1;
}
static bool fft_smooth(int64_t n) {
  int f[FFT_MAXF];
  return fft_factor(n, f) >= 0;
}

/* Smallest 2^a 3^b 5^c >= n. */
static int64_t fft_good_size(int64_t n) {
  int64_t best = 1;
  while (best < n) best *= 2;
  for (int64_t f5 = 1; f5 < best; f5 *= 5)
    for (int64_t f35 = f5; f35 < best; f35 *= 3) {
      int64_t x = f35;
      while (x < n) x *= 2;
      if (x < best) best = x;
    }
  return best;
}

/* The largest divisor d <= sqrt(n) of a smooth n (1 if none). */
static void fft_split_rec(const int64_t *p, const int *e, int np, int i,
                          int64_t d, int64_t lim, int64_t *best) {
  if (d > *best) *best = d;
  for (int j = i; j < np; j++) {
    int64_t x = d;
    for (int k = 0; k < e[j]; k++) {
      if (x > lim / p[j]) break;
      x *= p[j];
      fft_split_rec(p, e, np, j + 1, x, lim, best);
    }
  }
}
static int64_t fft_split(int64_t n) {
  int64_t p[32];
  int e[32], np = 0;
  int64_t r = n;
  for (int64_t q = 2; q <= FFT_MAXR && r > 1; q++)
    if (r % q == 0) {
      p[np] = q;
      e[np] = 0;
      while (r % q == 0) {
        r /= q;
        e[np]++;
      }
      np++;
    }
  int64_t lim = (int64_t)sqrt((double)n);
  while (lim * lim > n) lim--;
  while ((lim + 1) * (lim + 1) <= n) lim++;
  int64_t best = 1;
  fft_split_rec(p, e, np, 0, 1, lim, &best);
  return best;
}

static void *fft_plan_acquire(int dbl, int real, int64_t n, const char *name,
                              em_status *st);
static void fft_plan_release(void *pl, int dbl);

/* ---- the two precisions ---------------------------------------------------
 */

#define FFT_T double
#define FFT_S d
#define FFT_IS_DOUBLE 1
#define FFT_SWAP(v) __builtin_shufflevector(v, v, 1, 0, 3, 2)
#define FFT_DUPRE(v) __builtin_shufflevector(v, v, 0, 0, 2, 2)
#define FFT_DUPIM(v) __builtin_shufflevector(v, v, 1, 1, 3, 3)
#define FFT_SGN ((vec_d){-1, 1, -1, 1})
#define FFT_CSGN ((vec_d){1, -1, 1, -1})
#include "fft-impl.h"
#undef FFT_T
#undef FFT_S
#undef FFT_IS_DOUBLE
#undef FFT_SWAP
#undef FFT_DUPRE
#undef FFT_DUPIM
#undef FFT_SGN
#undef FFT_CSGN

#define FFT_T float
#define FFT_S f
#define FFT_IS_DOUBLE 0
#define FFT_SWAP(v) __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6)
#define FFT_DUPRE(v) __builtin_shufflevector(v, v, 0, 0, 2, 2, 4, 4, 6, 6)
#define FFT_DUPIM(v) __builtin_shufflevector(v, v, 1, 1, 3, 3, 5, 5, 7, 7)
#define FFT_SGN ((vec_f){-1, 1, -1, 1, -1, 1, -1, 1})
#define FFT_CSGN ((vec_f){1, -1, 1, -1, 1, -1, 1, -1})
#include "fft-impl.h"
#undef FFT_T
#undef FFT_S
#undef FFT_IS_DOUBLE
#undef FFT_SWAP
#undef FFT_DUPRE
#undef FFT_DUPIM
#undef FFT_SGN
#undef FFT_CSGN

/* ---- plan cache -------------------------------------------------------------
 */

static size_t fft_plan_bytes(const void *p, int dbl) {
  if (!p) return 0;
  size_t es = dbl ? 2 * sizeof(double) : 2 * sizeof(float);
  size_t b;
  int64_t n, np, m, nb = 0, n1 = 0, rn;
  const void *p1, *p2, *pm;
  if (dbl) {
    const plan_d *q = p;
    n = q->n;
    np = q->np;
    m = q->m;
    rn = q->rn;
    p1 = q->p1;
    p2 = q->p2;
    pm = q->pm;
    if (q->fourstep) {
      n1 = q->n1;
      nb = (q->n2 + 3) / 4 * 4;
    }
    b = sizeof *q;
  } else {
    const plan_f *q = p;
    n = q->n;
    np = q->np;
    m = q->m;
    rn = q->rn;
    p1 = q->p1;
    p2 = q->p2;
    pm = q->pm;
    if (q->fourstep) {
      n1 = q->n1;
      nb = (q->n2 + 7) / 8 * 8;
    }
    b = sizeof *q;
  }
  if (np > 0) b += (size_t)n * 2 * es; /* pass twiddles: < 2n */
  b += (size_t)(n1 * nb) * es;         /* tw4 */
  if (pm) b += (size_t)(n + m) * es;   /* chirp, kern */
  if (rn) b += (size_t)(rn / 2 + 1) * es;
  return b + fft_plan_bytes(p1, dbl) + fft_plan_bytes(p2, dbl) +
         fft_plan_bytes(pm, dbl);
}

static void fft_plan_destroy(void *p, int dbl) {
  if (dbl)
    plan_free_d(p);
  else
    plan_free_f(p);
}

typedef struct {
  void *plan;
  int dbl, real;
  int64_t n;
  size_t bytes;
  int refs;
  uint64_t stamp;
} fft_entry;

static fft_entry fft_cache[FFT_CACHE_N];
static size_t fft_cache_total;
static uint64_t fft_clock;
static pthread_mutex_t fft_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static fft_entry *fft_cache_find(int dbl, int real, int64_t n) {
  for (int i = 0; i < FFT_CACHE_N; i++) {
    fft_entry *e = &fft_cache[i];
    if (e->plan && e->dbl == dbl && e->real == real && e->n == n) return e;
  }
  return NULL;
}

/* Evicts the least recently used idle plan; false if none is idle. */
static bool fft_cache_evict(void) {
  fft_entry *lru = NULL;
  for (int i = 0; i < FFT_CACHE_N; i++) {
    fft_entry *e = &fft_cache[i];
    if (e->plan && e->refs == 0 && (!lru || e->stamp < lru->stamp)) lru = e;
  }
  if (!lru) return false;
  fft_plan_destroy(lru->plan, lru->dbl);
  fft_cache_total -= lru->bytes;
  memset(lru, 0, sizeof *lru);
  return true;
}

static void *fft_plan_acquire(int dbl, int real, int64_t n, const char *name,
                              em_status *st) {
  pthread_mutex_lock(&fft_cache_lock);
  fft_entry *e = fft_cache_find(dbl, real, n);
  if (e) {
    e->refs++;
    e->stamp = ++fft_clock;
    pthread_mutex_unlock(&fft_cache_lock);
    return e->plan;
  }
  pthread_mutex_unlock(&fft_cache_lock);
  /* Built outside the lock (it can take a while); a thread that built the
   * same plan meanwhile wins. */
  void *pl =
      dbl ? (real ? (void *)plan_create_real_d(n) : (void *)plan_create_d(n))
          : (real ? (void *)plan_create_real_f(n) : (void *)plan_create_f(n));
  if (!pl) {
    *st = em_fail(EM_ERR_OOM,
                  "[%s] out of memory building the FFT plan for length %lld "
                  "(%s)",
                  name, (long long)n, dbl ? "double" : "float");
    return NULL;
  }
  size_t bytes = fft_plan_bytes(pl, dbl);
  pthread_mutex_lock(&fft_cache_lock);
  e = fft_cache_find(dbl, real, n);
  if (e) {
    e->refs++;
    e->stamp = ++fft_clock;
    pthread_mutex_unlock(&fft_cache_lock);
    fft_plan_destroy(pl, dbl);
    return e->plan;
  }
  while (fft_cache_total + bytes > FFT_CACHE_BYTES && fft_cache_evict()) {
  }
  fft_entry *slot = NULL;
  if (fft_cache_total + bytes <= FFT_CACHE_BYTES) {
    for (int i = 0; i < FFT_CACHE_N && !slot; i++)
      if (!fft_cache[i].plan) slot = &fft_cache[i];
    if (!slot && fft_cache_evict())
      for (int i = 0; i < FFT_CACHE_N && !slot; i++)
        if (!fft_cache[i].plan) slot = &fft_cache[i];
  }
  if (slot) {
    *slot = (fft_entry){.plan = pl,
                        .dbl = dbl,
                        .real = real,
                        .n = n,
                        .bytes = bytes,
                        .refs = 1,
                        .stamp = ++fft_clock};
    fft_cache_total += bytes;
  }
  pthread_mutex_unlock(&fft_cache_lock);
  return pl; /* uncached plans are freed on release */
}

static void fft_plan_release(void *pl, int dbl) {
  pthread_mutex_lock(&fft_cache_lock);
  for (int i = 0; i < FFT_CACHE_N; i++)
    if (fft_cache[i].plan == pl) {
      fft_cache[i].refs--;
      pthread_mutex_unlock(&fft_cache_lock);
      return;
    }
  pthread_mutex_unlock(&fft_cache_lock);
  fft_plan_destroy(pl, dbl);
}

/* ---- kernels ---------------------------------------------------------------
 */

static em_status fft_kernel(em_array *out, const em_node *node, int op) {
  const char *name = op == FFT_R2C         ? "rfft"
                     : op == FFT_C2R       ? "irfft"
                     : node->p.fft.inverse ? "ifft"
                                           : "fft";
  const em_array *in = node->in[0];
  em_dtype it = in->dtype, ot = out->dtype;
  bool dbl;
  if (op == FFT_C2C && it == ot && (it == EM_C64 || it == EM_C128))
    dbl = it == EM_C128;
  else if (op == FFT_R2C &&
           ((it == EM_F32 && ot == EM_C64) || (it == EM_F64 && ot == EM_C128)))
    dbl = it == EM_F64;
  else if (op == FFT_C2R &&
           ((it == EM_C64 && ot == EM_F32) || (it == EM_C128 && ot == EM_F64)))
    dbl = it == EM_C128;
  else
    return em_fail(EM_ERR_UNSUPPORTED, "[%s] no kernel for %s -> %s", name,
                   em_dtype_name(it), em_dtype_name(ot));
  if (in->ndim < 1 || out->ndim != in->ndim || node->p.fft.n < 1)
    return em_fail(EM_ERR_ARGUMENT, "[%s] bad node (rank %d, length %lld)",
                   name, in->ndim, (long long)node->p.fft.n);
  em_status st = em_alloc_output(out);
  if (st != EM_OK) return st;
  if (out->size == 0) return EM_OK;
  em_array *c = NULL;
  st = em_contiguous(node->in[0], &c);
  if (st != EM_OK) return st;
  static const double zero[2] = {0, 0};
  const void *x = in->size > 0 ? (const void *)em_array_ptr(c) : zero;
  int64_t L = in->size > 0 ? in->shape[in->ndim - 1] : 0;
  int64_t Lo = out->shape[out->ndim - 1];
  int64_t R = out->size / Lo;
  int64_t n = node->p.fft.n;
  bool inv = node->p.fft.inverse;
  void *y = em_array_ptr(out);
  if (dbl)
    st = fft_run_d(op, inv, n, x, L, y, Lo, R, out->dev, name);
  else
    st = fft_run_f(op, inv, n, x, L, y, Lo, R, out->dev, name);
  em_array_release(c);
  return st;
}

em_status em_cpu_k_fft(em_array *out, const em_node *node) {
  return fft_kernel(out, node, FFT_C2C);
}
em_status em_cpu_k_rfft(em_array *out, const em_node *node) {
  return fft_kernel(out, node, FFT_R2C);
}
em_status em_cpu_k_irfft(em_array *out, const em_node *node) {
  return fft_kernel(out, node, FFT_C2R);
}
