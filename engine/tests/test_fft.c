/* test_fft.c — fft, ifft, fft2, ifft2, rfft and irfft through the public
 * API, against independent references:
 *  - numpy.fft outputs for a few small cases (fixtures/fft_fixtures.h,
 *    made by fixtures/gen_fft.py);
 *  - a naive O(n^2) DFT in long double for every length up to 4096 in the
 *    list of the assignment (1, 2, 3, 5, 7, 8, 12, 17, 64, 97, 1000, 1024,
 *    4096) and more (each radix, the Bluestein threshold), one row and
 *    batches (the single-row and the lane-batched paths), forward and
 *    inverse, c64 (relative L2 error < 1e-6) and c128 (< 1e-13);
 *  - long rows (65536, 2^20, 10^6, a prime above 10^6): round trips
 *    ifft(fft(x)) = x, Parseval, single bins summed in long double, and
 *    c64 against c128 (the c64 accuracy target is against a double FFT);
 *  - rfft/irfft against the same naive DFT (Hermitian half, Nx's handling
 *    of the DC and Nyquist imaginary parts), even and odd lengths, padding
 *    and truncation, and round trips on long rows;
 *  - fft2/ifft2 against separable naive 2-D DFTs;
 *  - every numeric example of Nx.fft, Nx.ifft, Nx.fft2, Nx.ifft2, Nx.rfft
 *    and Nx.irfft's docs (Nx 0.13) as hand values;
 *  - non-contiguous inputs (transposed and strided views), zero-size
 *    shapes, scalars, batches large enough for the thread pool, streams
 *    racing on the plan cache, an injected allocation failure;
 *  - error statuses and "[op]" messages. */
#include <complex.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emily.h"
#include "fixtures/fft_fixtures.h"
#include "harness.h"

#define TOL64 1e-6
#define TOL128 1e-13
#define PI_L 3.141592653589793238462643383279502884L

/* ---- rng and data -----------------------------------------------------------
 */

static uint64_t rng_s = 0x243F6A8885A308D3ull;
static uint64_t rnd(void) {
  uint64_t z = (rng_s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
/* Uniform in [-1, 1), exactly representable in float, so c64 and c128
 * transforms see the same input. */
static double rndf(void) {
  return (double)(float)((double)(rnd() >> 11) / 4503599627370496.0 - 1.0);
}
static double *rand_vec(int64_t count) {
  double *x = malloc(sizeof(double) * (size_t)(count > 0 ? count : 1));
  for (int64_t i = 0; i < count; i++) x[i] = rndf();
  return x;
}

static const char *tn(em_dtype t) { return em_dtype_name(t); }

/* count scalars (re/im interleaved for complex dtypes) into an array. */
static em_array *make(em_dtype t, int ndim, const int64_t *shape,
                      const double *v) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  int64_t scalars = em_dtype_is_complex(t) ? 2 * n : n;
  size_t es = em_dtype_size(t);
  void *buf = malloc((size_t)n * es + 1);
  for (int64_t i = 0; i < scalars; i++) {
    if (t == EM_C64 || t == EM_F32)
      ((float *)buf)[i] = (float)v[i];
    else if (t == EM_C128 || t == EM_F64)
      ((double *)buf)[i] = v[i];
    else if (t == EM_S32)
      ((int32_t *)buf)[i] = (int32_t)v[i];
    else if (t == EM_U8)
      ((uint8_t *)buf)[i] = (uint8_t)v[i];
  }
  em_array *a = NULL;
  em_status st =
      em_array_from_data(&a, t, ndim, shape, buf, (size_t)n * es, em_cpu());
  free(buf);
  CHECK(st == EM_OK, "from_data: %s", em_last_error());
  return a;
}

/* The scalars of a (evaluated) as doubles; NULL on failure. */
static double *get(em_array *a) {
  if (!a) return NULL;
  const void *p = em_array_data(a);
  if (!p) {
    CHECK(0, "eval failed: %s", em_last_error());
    return NULL;
  }
  em_dtype t = em_array_dtype(a);
  int64_t n = em_array_size(a) * (em_dtype_is_complex(t) ? 2 : 1);
  double *v = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
  for (int64_t i = 0; i < n; i++)
    v[i] = (t == EM_C64 || t == EM_F32) ? (double)((const float *)p)[i]
                                        : ((const double *)p)[i];
  return v;
}

static double rel_l2(const double *got, const long double *want,
                     int64_t count) {
  long double num = 0, den = 0;
  for (int64_t i = 0; i < count; i++) {
    long double d = (long double)got[i] - want[i];
    num += d * d;
    den += want[i] * want[i];
  }
  if (den == 0) return sqrtl(num);
  return (double)sqrtl(num / den);
}
static double rel_l2d(const double *got, const double *want, int64_t count) {
  long double num = 0, den = 0;
  for (int64_t i = 0; i < count; i++) {
    long double d = (long double)got[i] - want[i];
    num += d * d;
    den += (long double)want[i] * want[i];
  }
  if (den == 0) return sqrtl(num);
  return (double)sqrtl(num / den);
}

static double tol_of(em_dtype t) {
  return (t == EM_C64 || t == EM_F32) ? TOL64 : TOL128;
}

/* ---- naive references
 * ---------------------------------------------------------
 */

/* y = sum_j x_j exp(sign 2 pi i jk/n) for k < n, x complex (interleaved)
 * of length len (zero-padded / truncated to n); scaled by 1/n if inv. */
static void dft_ld(const double *x, int64_t len, int64_t n, bool inv,
                   long double *y) {
  long double *c = malloc(sizeof(long double) * 2 * (size_t)n);
  for (int64_t t = 0; t < n; t++) {
    long double a = 2 * PI_L * (long double)t / (long double)n;
    c[2 * t] = cosl(a);
    c[2 * t + 1] = (inv ? 1 : -1) * sinl(a);
  }
  int64_t m = len < n ? len : n;
  for (int64_t k = 0; k < n; k++) {
    long double sr = 0, si = 0;
    int64_t t = 0;
    for (int64_t j = 0; j < m; j++) {
      long double xr = x[2 * j], xi = x[2 * j + 1];
      sr += xr * c[2 * t] - xi * c[2 * t + 1];
      si += xr * c[2 * t + 1] + xi * c[2 * t];
      t += k;
      if (t >= n) t -= n;
    }
    y[2 * k] = inv ? sr / n : sr;
    y[2 * k + 1] = inv ? si / n : si;
  }
  free(c);
}

/* ---- fft / ifft against the naive DFT
 * ------------------------------------------
 */

static void check_c2c(int64_t rows, int64_t len, int64_t n, em_dtype t,
                      bool inv, int64_t check_rows) {
  int64_t shape[2] = {rows, len};
  double *x = rand_vec(2 * rows * len);
  em_array *a = make(t, 2, shape, x), *b = NULL;
  em_status st = (inv ? em_ifft : em_fft)(&b, a, n);
  CHECK(st == EM_OK, "%s: %s", inv ? "ifft" : "fft", em_last_error());
  double *y = get(b);
  if (y) {
    CHECK(em_array_ndim(b) == 2 && em_array_shape(b)[0] == rows &&
              em_array_shape(b)[1] == n && em_array_dtype(b) == t,
          "fft shape/dtype");
    long double *ref = malloc(sizeof(long double) * 2 * (size_t)n);
    for (int64_t i = 0; i < check_rows && i < rows; i++) {
      int64_t r = i == 0   ? 0
                  : i == 1 ? rows - 1
                           : (int64_t)(rnd() % (uint64_t)rows);
      dft_ld(x + 2 * r * len, len, n, inv, ref);
      double e = rel_l2(y + 2 * r * n, ref, 2 * n);
      CHECK(e < tol_of(t),
            "%s %s rows=%lld len=%lld n=%lld row %lld: rel err %.3g",
            inv ? "ifft" : "fft", tn(t), (long long)rows, (long long)len,
            (long long)n, (long long)r, e);
    }
    free(ref);
  }
  free(y);
  free(x);
  em_array_release(a);
  em_array_release(b);
}

static void test_c2c_naive(void) {
  static const int64_t sizes[] = {
      1,   2,   3,   4,   5,   6,    7,    8,    9,    11,   12,   13,  16,
      17,  25,  27,  32,  49,  59,   61,   64,   67,   97,   121,  128, 210,
      243, 256, 343, 500, 512, 1000, 1024, 1331, 2048, 2310, 4093, 4096};
  const int ns = (int)(sizeof sizes / sizeof *sizes);
  em_dtype ts[2] = {EM_C64, EM_C128};
  for (int i = 0; i < ns; i++) {
    int64_t n = sizes[i];
    for (int ti = 0; ti < 2; ti++)
      for (int inv = 0; inv < 2; inv++) {
        check_c2c(1, n, n, ts[ti], inv, 1); /* single row */
        check_c2c(n >= 1000 ? 3 : 11, n, n, ts[ti], inv, n >= 1000 ? 1 : 3);
      }
  }
  /* padding and truncation, both paths */
  for (int ti = 0; ti < 2; ti++)
    for (int inv = 0; inv < 2; inv++) {
      check_c2c(1, 5, 8, ts[ti], inv, 1);
      check_c2c(9, 5, 8, ts[ti], inv, 3);
      check_c2c(1, 100, 67, ts[ti], inv, 1);
      check_c2c(9, 100, 67, ts[ti], inv, 3);
      check_c2c(1, 3, 1000, ts[ti], inv, 1);
      check_c2c(1, 3000, 1024, ts[ti], inv, 1);
      check_c2c(2, 0, 6, ts[ti], inv, 2); /* empty rows: all zeros */
      check_c2c(5, 7, 1, ts[ti], inv, 2);
    }
  /* many short rows: several lane groups over the thread pool */
  check_c2c(1000, 16, 16, EM_C64, false, 4);
  check_c2c(777, 30, 30, EM_C128, true, 4);
  check_c2c(64, 97, 97, EM_C64, false, 3);
}

/* ---- long rows
 * ----------------------------------------------------------------
 */

/* X_k summed directly in long double. */
static void bin_ld(const double *x, int64_t n, int64_t k, long double *re,
                   long double *im) {
  long double sr = 0, si = 0;
  int64_t t = 0;
  for (int64_t j = 0; j < n; j++) {
    long double a = 2 * PI_L * (long double)t / (long double)n;
    long double c = cosl(a), s = -sinl(a);
    sr += x[2 * j] * c - x[2 * j + 1] * s;
    si += x[2 * j] * s + x[2 * j + 1] * c;
    t += k;
    if (t >= n) t -= n;
  }
  *re = sr;
  *im = si;
}

static void check_long(int64_t n, int nbins) {
  int64_t shape[1] = {n};
  double *x = rand_vec(2 * n);
  double *yd = NULL;
  for (int ti = 0; ti < 2; ti++) {
    em_dtype t = ti ? EM_C64 : EM_C128;
    em_array *a = make(t, 1, shape, x), *f = NULL, *g = NULL;
    CHECK(em_fft(&f, a, n) == EM_OK, "fft %lld: %s", (long long)n,
          em_last_error());
    CHECK(em_ifft(&g, f, n) == EM_OK, "ifft %lld: %s", (long long)n,
          em_last_error());
    double *y = get(f), *z = get(g);
    if (y && z) {
      double e = rel_l2d(z, x, 2 * n);
      CHECK(e < tol_of(t), "round trip %s n=%lld: rel err %.3g", tn(t),
            (long long)n, e);
      long double ex = 0, ey = 0;
      for (int64_t i = 0; i < 2 * n; i++) {
        ex += (long double)x[i] * x[i];
        ey += (long double)y[i] * y[i];
      }
      double pe = (double)fabsl(ey / n - ex) / (double)ex;
      CHECK(pe < 10 * tol_of(t), "Parseval %s n=%lld: rel err %.3g", tn(t),
            (long long)n, pe);
      double rms = sqrt((double)(ey / n));
      for (int b = 0; b < nbins; b++) {
        int64_t k = b == 0   ? 0
                    : b == 1 ? n - 1
                             : (int64_t)(rnd() % (uint64_t)n);
        long double wr, wi;
        bin_ld(x, n, k, &wr, &wi);
        double d = hypot((double)(y[2 * k] - wr), (double)(y[2 * k + 1] - wi));
        CHECK(d < 10 * tol_of(t) * rms,
              "bin %lld of %s n=%lld: off by %.3g (rms %.3g)", (long long)k,
              tn(t), (long long)n, d, rms);
      }
      if (t == EM_C128) {
        yd = y;
        y = NULL;
      } else if (yd) {
        double e2 = rel_l2d(y, yd, 2 * n);
        CHECK(e2 < TOL64, "c64 vs c128 fft n=%lld: rel err %.3g", (long long)n,
              e2);
      }
    }
    free(y);
    free(z);
    em_array_release(a);
    em_array_release(f);
    em_array_release(g);
  }
  free(yd);
  free(x);
}

static void test_long(void) {
  check_long(65536, 6);
  check_long(1 << 20, 4);
  check_long(1000000, 3);
  check_long(1000003, 2); /* prime: Bluestein over a four-step */
  check_long(3 * 3 * 5 * 7 * 11 * 13 * 2 * 2, 4);
  /* a few long rows in one batch, both directions against c128 */
  int64_t shape[2] = {3, 40000};
  double *x = rand_vec(2 * 3 * 40000);
  em_array *a = make(EM_C64, 2, shape, x), *b = make(EM_C128, 2, shape, x);
  em_array *fa = NULL, *fb = NULL;
  CHECK(em_ifft(&fa, a, 40000) == EM_OK && em_ifft(&fb, b, 40000) == EM_OK,
        "batched long ifft: %s", em_last_error());
  double *ya = get(fa), *yb = get(fb);
  if (ya && yb) {
    double e = rel_l2d(ya, yb, 2 * 3 * 40000);
    CHECK(e < TOL64, "batched long ifft c64 vs c128: %.3g", e);
    long double ref[2];
    for (int r = 0; r < 3; r++) { /* bin 7 of each row, inverse sign */
      long double sr = 0, si = 0;
      for (int64_t j = 0; j < 40000; j++) {
        long double ang = 2 * PI_L * (long double)((j * 7) % 40000) / 40000;
        const double *xr = x + 2 * (r * 40000 + j);
        sr += xr[0] * cosl(ang) - xr[1] * sinl(ang);
        si += xr[0] * sinl(ang) + xr[1] * cosl(ang);
      }
      ref[0] = sr / 40000;
      ref[1] = si / 40000;
      const double *g = yb + 2 * (r * 40000 + 7);
      CHECK(fabsl(g[0] - ref[0]) < 1e-14 && fabsl(g[1] - ref[1]) < 1e-14,
            "batched long ifft row %d bin 7", r);
    }
  }
  free(ya);
  free(yb);
  free(x);
  em_array_release(a);
  em_array_release(b);
  em_array_release(fa);
  em_array_release(fb);
}

/* ---- rfft / irfft
 * -------------------------------------------------------------
 */

static void check_rfft(int64_t rows, int64_t len, int64_t n, em_dtype rt) {
  int64_t shape[2] = {rows, len}, h = n / 2 + 1;
  double *x = rand_vec(rows * len);
  em_array *a = make(rt, 2, shape, x), *b = NULL;
  CHECK(em_rfft(&b, a, n) == EM_OK, "rfft: %s", em_last_error());
  em_dtype ct = rt == EM_F64 ? EM_C128 : EM_C64;
  double *y = get(b);
  if (y) {
    CHECK(em_array_dtype(b) == ct && em_array_shape(b)[0] == rows &&
              em_array_shape(b)[1] == h,
          "rfft shape/dtype %s", tn(em_array_dtype(b)));
    double *xc = calloc(2 * (size_t)(len + 1), sizeof(double));
    long double *ref = malloc(sizeof(long double) * 2 * (size_t)n);
    for (int i = 0; i < 3 && i < rows; i++) {
      int64_t r = i == 0   ? 0
                  : i == 1 ? rows - 1
                           : (int64_t)(rnd() % (uint64_t)rows);
      for (int64_t j = 0; j < len; j++) {
        xc[2 * j] = x[r * len + j];
        xc[2 * j + 1] = 0;
      }
      dft_ld(xc, len, n, false, ref);
      double e = rel_l2(y + 2 * r * h, ref, 2 * h);
      CHECK(e < tol_of(rt), "rfft %s rows=%lld len=%lld n=%lld: rel err %.3g",
            tn(rt), (long long)rows, (long long)len, (long long)n, e);
    }
    free(ref);
    free(xc);
  }
  free(y);
  free(x);
  em_array_release(a);
  em_array_release(b);
}

/* irfft reference: the Hermitian spectrum of length n from the first
 * n/2+1 inputs (zero-padded), imaginary parts of the DC term and (even n)
 * the n/2 term dropped, inverse DFT, real part. */
static void check_irfft(int64_t rows, int64_t len, int64_t n, em_dtype ct) {
  int64_t shape[2] = {rows, len}, m = n / 2 + 1;
  double *x = rand_vec(2 * rows * len);
  em_array *a = make(ct, 2, shape, x), *b = NULL;
  CHECK(em_irfft(&b, a, n) == EM_OK, "irfft: %s", em_last_error());
  em_dtype rt = ct == EM_C128 ? EM_F64 : EM_F32;
  double *y = get(b);
  if (y) {
    CHECK(em_array_dtype(b) == rt && em_array_shape(b)[0] == rows &&
              em_array_shape(b)[1] == n,
          "irfft shape/dtype");
    double *full = calloc(2 * (size_t)n, sizeof(double));
    long double *ref = malloc(sizeof(long double) * 2 * (size_t)n);
    long double *rr = malloc(sizeof(long double) * (size_t)n);
    for (int i = 0; i < 3 && i < rows; i++) {
      int64_t r = i == 0   ? 0
                  : i == 1 ? rows - 1
                           : (int64_t)(rnd() % (uint64_t)rows);
      const double *xr = x + 2 * r * len;
      for (int64_t k = 0; k < n; k++) {
        int64_t j = k < m ? k : n - k;
        double re = j < len ? xr[2 * j] : 0, im = j < len ? xr[2 * j + 1] : 0;
        if (j == 0 || 2 * j == n) im = 0;
        full[2 * k] = re;
        full[2 * k + 1] = k < m ? im : -im;
      }
      dft_ld(full, n, n, true, ref);
      for (int64_t k = 0; k < n; k++) rr[k] = ref[2 * k];
      double e = rel_l2(y + r * n, rr, n);
      CHECK(e < tol_of(ct), "irfft %s rows=%lld len=%lld n=%lld: rel err %.3g",
            tn(ct), (long long)rows, (long long)len, (long long)n, e);
    }
    free(rr);
    free(ref);
    free(full);
  }
  free(y);
  free(x);
  em_array_release(a);
  em_array_release(b);
}

static void test_real(void) {
  static const int64_t sizes[] = {1,   2,    3,    4,    5,    6,   7,  8,
                                  9,   10,   16,   17,   33,   64,  97, 134,
                                  194, 1000, 1001, 1024, 4096, 4095};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    int64_t n = sizes[i];
    for (int ti = 0; ti < 2; ti++) {
      em_dtype rt = ti ? EM_F64 : EM_F32, ct = ti ? EM_C128 : EM_C64;
      check_rfft(1, n, n, rt);
      check_rfft(9, n, n, rt);
      check_irfft(1, n / 2 + 1, n, ct);
      check_irfft(9, n / 2 + 1, n, ct);
    }
  }
  for (int ti = 0; ti < 2; ti++) {
    em_dtype rt = ti ? EM_F64 : EM_F32, ct = ti ? EM_C128 : EM_C64;
    check_rfft(1, 5, 12, rt); /* padded */
    check_rfft(9, 5, 13, rt);
    check_rfft(1, 30, 12, rt); /* truncated */
    check_rfft(9, 30, 11, rt);
    check_rfft(2, 0, 4, rt);
    check_irfft(1, 3, 12, ct); /* padded */
    check_irfft(9, 2, 13, ct);
    check_irfft(1, 20, 12, ct); /* longer than n/2+1: the rest is ignored */
    check_irfft(9, 20, 11, ct);
    check_irfft(2, 0, 6, ct);
    check_irfft(300, 33, 64, ct);
  }
  /* long rows: round trips and against the complex transform */
  static const int64_t big[] = {1 << 20, 999999, 65536 * 3};
  for (int i = 0; i < 3; i++) {
    int64_t n = big[i], shape[1] = {n};
    for (int ti = 0; ti < 2; ti++) {
      em_dtype rt = ti ? EM_F64 : EM_F32, ct = ti ? EM_C128 : EM_C64;
      double *x = rand_vec(n), *xc = calloc(2 * (size_t)n, sizeof(double));
      for (int64_t j = 0; j < n; j++) xc[2 * j] = x[j];
      em_array *a = make(rt, 1, shape, x), *ac = make(EM_C128, 1, shape, xc);
      em_array *f = NULL, *g = NULL, *fc = NULL;
      CHECK(em_rfft(&f, a, n) == EM_OK && em_irfft(&g, f, n) == EM_OK &&
                em_fft(&fc, ac, n) == EM_OK,
            "long rfft: %s", em_last_error());
      double *y = get(f), *z = get(g), *yc = get(fc);
      if (y && z && yc) {
        double e = rel_l2d(z, x, n);
        CHECK(e < tol_of(rt), "irfft(rfft) %s n=%lld: %.3g", tn(rt),
              (long long)n, e);
        e = rel_l2d(y, yc, 2 * (n / 2 + 1));
        CHECK(e < tol_of(rt), "rfft vs fft %s n=%lld: %.3g", tn(rt),
              (long long)n, e);
        CHECK(em_array_dtype(g) == rt, "irfft dtype %s", tn(em_array_dtype(g)));
      }
      (void)ct;
      free(y);
      free(z);
      free(yc);
      free(x);
      free(xc);
      em_array_release(a);
      em_array_release(ac);
      em_array_release(f);
      em_array_release(g);
      em_array_release(fc);
    }
  }
}

/* ---- fft2
 * ---------------------------------------------------------------------
 */

static void check_fft2(int64_t batch, int64_t r0, int64_t r1, int64_t n0,
                       int64_t n1, em_dtype t, bool inv) {
  int64_t shape[3] = {batch, r0, r1};
  double *x = rand_vec(2 * batch * r0 * r1);
  em_array *a = make(t, 3, shape, x), *b = NULL;
  CHECK((inv ? em_ifft2 : em_fft2)(&b, a, n0, n1) == EM_OK, "fft2: %s",
        em_last_error());
  double *y = get(b);
  if (y) {
    CHECK(em_array_shape(b)[0] == batch && em_array_shape(b)[1] == n0 &&
              em_array_shape(b)[2] == n1 && em_array_dtype(b) == t,
          "fft2 shape");
    int64_t mx = n0 > n1 ? n0 : n1;
    double *row = malloc(sizeof(double) * 2 * (size_t)(mx + r0 + r1));
    long double *tmp = malloc(sizeof(long double) * 2 * (size_t)(r0 * n1 + 1));
    long double *ref = malloc(sizeof(long double) * 2 * (size_t)(n0 * n1));
    long double *o = malloc(sizeof(long double) * 2 * (size_t)mx);
    for (int64_t bb = 0; bb < batch; bb++) {
      const double *xb = x + 2 * bb * r0 * r1;
      for (int64_t i = 0; i < r0; i++) { /* rows: last axis to n1 */
        dft_ld(xb + 2 * i * r1, r1, n1, inv, o);
        for (int64_t k = 0; k < 2 * n1; k++) tmp[2 * i * n1 + k] = o[k];
      }
      for (int64_t k = 0; k < n1; k++) { /* columns to n0 */
        for (int64_t i = 0; i < r0; i++) {
          row[2 * i] = (double)tmp[2 * (i * n1 + k)];
          row[2 * i + 1] = (double)tmp[2 * (i * n1 + k) + 1];
        }
        dft_ld(row, r0, n0, inv, o);
        for (int64_t i = 0; i < n0; i++) {
          ref[2 * (i * n1 + k)] = o[2 * i];
          ref[2 * (i * n1 + k) + 1] = o[2 * i + 1];
        }
      }
      /* the double rounding of tmp costs ~1e-16: within TOL128 */
      double e = rel_l2(y + 2 * bb * n0 * n1, ref, 2 * n0 * n1);
      CHECK(e < tol_of(t), "%s %s [%lld,%lld] -> [%lld,%lld]: rel err %.3g",
            inv ? "ifft2" : "fft2", tn(t), (long long)r0, (long long)r1,
            (long long)n0, (long long)n1, e);
    }
    free(row);
    free(tmp);
    free(ref);
    free(o);
  }
  free(y);
  free(x);
  em_array_release(a);
  em_array_release(b);
}

static void test_fft2(void) {
  for (int ti = 0; ti < 2; ti++)
    for (int inv = 0; inv < 2; inv++) {
      em_dtype t = ti ? EM_C128 : EM_C64;
      check_fft2(1, 4, 6, 4, 6, t, inv);
      check_fft2(3, 3, 5, 4, 6, t, inv);
      check_fft2(2, 8, 7, 5, 9, t, inv);
      check_fft2(1, 67, 33, 67, 33, t, inv);
      check_fft2(2, 64, 128, 64, 128, t, inv);
    }
}

/* ---- numpy fixtures
 * -----------------------------------------------------------
 */

static double *inter(const double *re, const double *im, int64_t n) {
  double *z = malloc(sizeof(double) * 2 * (size_t)(n > 0 ? n : 1));
  for (int64_t i = 0; i < n; i++) {
    z[2 * i] = re[i];
    z[2 * i + 1] = im[i];
  }
  return z;
}

typedef enum { K_FFT, K_IFFT, K_RFFT, K_IRFFT, K_FFT2, K_IFFT2 } kind;

static void check_fixture(const char *name, kind k, int ndim,
                          const int64_t *shape, const double *xre,
                          const double *xim, const double *yre,
                          const double *yim, int64_t n0, int64_t n) {
  for (int ti = 0; ti < 2; ti++) {
    bool real_in = k == K_RFFT, real_out = k == K_IRFFT;
    em_dtype t = real_in ? (ti ? EM_F64 : EM_F32) : (ti ? EM_C128 : EM_C64);
    int64_t cnt = 1;
    for (int i = 0; i < ndim; i++) cnt *= shape[i];
    double *xi = real_in ? NULL : inter(xre, xim, cnt);
    em_array *a = make(t, ndim, shape, real_in ? xre : xi), *b = NULL;
    em_status st = k == K_FFT     ? em_fft(&b, a, n)
                   : k == K_IFFT  ? em_ifft(&b, a, n)
                   : k == K_RFFT  ? em_rfft(&b, a, n)
                   : k == K_IRFFT ? em_irfft(&b, a, n)
                   : k == K_FFT2  ? em_fft2(&b, a, n0, n)
                                  : em_ifft2(&b, a, n0, n);
    CHECK(st == EM_OK, "%s: %s", name, em_last_error());
    double *y = get(b);
    if (y) {
      int64_t ocnt = em_array_size(b);
      double *want = real_out ? NULL : inter(yre, yim, ocnt);
      double e = rel_l2d(y, real_out ? yre : want, real_out ? ocnt : 2 * ocnt);
      CHECK(e < tol_of(t), "fixture %s %s: rel err %.3g", name, tn(t), e);
      free(want);
    }
    free(y);
    free(xi);
    em_array_release(a);
    em_array_release(b);
  }
}

static void test_fixtures(void) {
#define FX(nm, k)                                                            \
  do {                                                                       \
    int64_t sh[2] = {nm##_rows, nm##_len};                                   \
    check_fixture(#nm, k, 2, sh, nm##_x_re, nm##_x_im, nm##_y_re, nm##_y_im, \
                  0, nm##_n);                                                \
  } while (0)
  FX(fft12, K_FFT);
  FX(fft67, K_FFT);
  FX(ifft17pad, K_IFFT);
  FX(fft10trunc, K_FFT);
#undef FX
#define FX1(nm, k)                                                           \
  do {                                                                       \
    int64_t sh[2] = {1, nm##_len};                                           \
    check_fixture(#nm, k, 2, sh, nm##_x_re, nm##_x_im, nm##_y_re, nm##_y_im, \
                  0, nm##_n);                                                \
  } while (0)
  FX1(rfft10, K_RFFT);
  FX1(rfft9pad, K_RFFT);
  FX1(irfft10, K_IRFFT);
  FX1(irfft9, K_IRFFT);
  FX1(irfft8pad, K_IRFFT);
#undef FX1
  int64_t sh[2] = {3, 5};
  check_fixture("fft2", K_FFT2, 2, sh, fft2_x_re, fft2_x_im, fft2_y_re,
                fft2_y_im, fft2_n0, fft2_n1);
  check_fixture("ifft2", K_IFFT2, 2, sh, fft2_x_re, fft2_x_im, ifft2_y_re,
                ifft2_y_im, fft2_n0, fft2_n1);
}

/* ---- Nx doc examples
 * ---------------------------------------------------------
 */

/* Compares a complex (or real) result against hand values (re, im pairs;
 * for real results im is ignored). */
static void hand(const char *what, em_array *b, int ndim, const int64_t *shape,
                 const double *want, em_dtype t) {
  double *y = get(b);
  if (!y) {
    CHECK(0, "%s: no result", what);
    return;
  }
  bool ok = em_array_ndim(b) == ndim && em_array_dtype(b) == t;
  int64_t n = 1;
  for (int i = 0; ok && i < ndim; i++) {
    ok = em_array_shape(b)[i] == shape[i];
    n *= shape[i];
  }
  CHECK(ok, "%s: shape or dtype (%s)", what, tn(em_array_dtype(b)));
  if (ok) {
    bool cplx = em_dtype_is_complex(t);
    for (int64_t i = 0; i < n; i++) {
      double gr = cplx ? y[2 * i] : y[i], gi = cplx ? y[2 * i + 1] : 0;
      double wr = want[2 * i], wi = cplx ? want[2 * i + 1] : 0;
      CHECK(fabs(gr - wr) < 1e-5 && fabs(gi - wi) < 1e-5,
            "%s[%lld]: got %g%+gi, want %g%+gi", what, (long long)i, gr, gi, wr,
            wi);
    }
  }
  free(y);
}

/* Builds a complex array from real hand values (im 0) or pairs. */
static em_array *cre(em_dtype t, int ndim, const int64_t *shape,
                     const double *re) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  double *z = calloc(2 * (size_t)n, sizeof(double));
  for (int64_t i = 0; i < n; i++) z[2 * i] = re[i];
  em_array *a = make(t, ndim, shape, z);
  free(z);
  return a;
}

typedef em_status (*fft1_fn)(em_array **, em_array *, int64_t);

static void ex1(const char *what, fft1_fn f, em_array *a, int64_t n, int ndim,
                const int64_t *shape, const double *want, em_dtype t) {
  em_array *b = NULL;
  CHECK(f(&b, a, n) == EM_OK, "%s: %s", what, em_last_error());
  hand(what, b, ndim, shape, want, t);
  em_array_release(b);
  em_array_release(a);
}

/* op along axis 0 of a 2-D array (Nx's axis: -2), through transposes */
static void ex_axis0(const char *what, fft1_fn f, em_array *a, int64_t n,
                     const int64_t *shape, const double *want, em_dtype t) {
  em_array *at = NULL, *b = NULL, *bt = NULL;
  CHECK(em_transpose(&at, a, NULL) == EM_OK && f(&b, at, n) == EM_OK &&
            em_transpose(&bt, b, NULL) == EM_OK,
        "%s: %s", what, em_last_error());
  hand(what, bt, 2, shape, want, t);
  em_array_release(at);
  em_array_release(b);
  em_array_release(bt);
  em_array_release(a);
}

static void test_nx_docs(void) {
  for (int ti = 0; ti < 2; ti++) {
    em_dtype c = ti ? EM_C128 : EM_C64, r = ti ? EM_F64 : EM_F32;
    int64_t s4[1] = {4}, s6[1] = {6}, s2[1] = {2}, s3[1] = {3}, s26[2] = {2, 6},
            s24[2] = {2, 4}, s23[2] = {2, 3};
    /* Nx.fft */
    ex1("fft [1,1,0,0]", em_fft, cre(c, 1, s4, (double[]){1, 1, 0, 0}), 4, 1,
        s4, (double[]){2, 0, 1, -1, 0, 0, 1, 1}, c);
    ex1("fft [1,1,1,0,1,1]", em_fft,
        cre(c, 1, s6, (double[]){1, 1, 1, 0, 1, 1}), 6, 1, s6,
        (double[]){5, 0, 1, 0, -1, 0, 1, 0, -1, 0, 1, 0}, c);
    const double rows6[] = {1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1};
    ex1("fft axis -1", em_fft, cre(c, 2, s26, rows6), 6, 2, s26,
        (double[]){5, 0, 1, 0, -1, 0, 1, 0, -1, 0, 1, 0,
                   5, 0, 1, 0, -1, 0, 1, 0, -1, 0, 1, 0},
        c);
    ex_axis0("fft axis -2", em_fft, cre(c, 2, s26, rows6), 2, s26,
             (double[]){2, 0, 2, 0, 2, 0, 0, 0, 2, 0, 2, 0,
                        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
             c);
    ex1("fft [1,1] length 4", em_fft, cre(c, 1, s2, (double[]){1, 1}), 4, 1, s4,
        (double[]){2, 0, 1, -1, 0, 0, 1, 1}, c);
    ex1("fft [1,1,0] power_of_two", em_fft, cre(c, 1, s3, (double[]){1, 1, 0}),
        4, 1, s4, (double[]){2, 0, 1, -1, 0, 0, 1, 1}, c);
    ex1("fft [1,1,0,0,2,3] length 4", em_fft,
        cre(c, 1, s6, (double[]){1, 1, 0, 0, 2, 3}), 4, 1, s4,
        (double[]){2, 0, 1, -1, 0, 0, 1, 1}, c);
    const double rows2[] = {1, 1, 0, 0, 2, 3, 1, 0, 0, 0, 2, 3};
    ex1("fft 2 rows length 4", em_fft, cre(c, 2, s26, rows2), 4, 2, s24,
        (double[]){2, 0, 1, -1, 0, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 0}, c);
    /* Nx.ifft */
    ex1("ifft [2,1-i,0,1+i]", em_ifft,
        make(c, 1, s4, (double[]){2, 0, 1, -1, 0, 0, 1, 1}), 4, 1, s4,
        (double[]){1, 0, 1, 0, 0, 0, 0, 0}, c);
    ex1("ifft [5,1,-1,1,-1,1]", em_ifft,
        cre(c, 1, s6, (double[]){5, 1, -1, 1, -1, 1}), 6, 1, s6,
        (double[]){1, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0}, c);
    const double rows5[] = {5, 1, -1, 1, -1, 1, 5, 1, -1, 1, -1, 1};
    ex1("ifft axis -1", em_ifft, cre(c, 2, s26, rows5), 6, 2, s26,
        (double[]){1, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0,
                   1, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0},
        c);
    ex_axis0("ifft axis -2", em_ifft, cre(c, 2, s26, rows5), 2, s26,
             (double[]){5, 0, 1, 0, -1, 0, 1, 0, -1, 0, 1, 0,
                        0, 0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0},
             c);
    const double q[] = {0.5, 0, 0.25, 0.25, 0, 0, 0.25, -0.25};
    ex1("ifft [1,1] length 4", em_ifft, cre(c, 1, s2, (double[]){1, 1}), 4, 1,
        s4, q, c);
    ex1("ifft [1,1,0] power_of_two", em_ifft,
        cre(c, 1, s3, (double[]){1, 1, 0}), 4, 1, s4, q, c);
    ex1("ifft [1,1,0,0,2,3] length 4", em_ifft,
        cre(c, 1, s6, (double[]){1, 1, 0, 0, 2, 3}), 4, 1, s4, q, c);
    ex1("ifft 2 rows length 4", em_ifft, cre(c, 2, s26, rows2), 4, 2, s24,
        (double[]){0.5, 0, 0.25, 0.25, 0, 0, 0.25, -0.25, 0.25, 0, 0.25, 0,
                   0.25, 0, 0.25, 0},
        c);
    /* Nx.rfft */
    ex1("rfft [1,1,0,0]", em_rfft, make(r, 1, s4, (double[]){1, 1, 0, 0}), 4, 1,
        s3, (double[]){2, 0, 1, -1, 0, 0}, c);
    ex1("rfft [1,1,1,0,1,1]", em_rfft,
        make(r, 1, s6, (double[]){1, 1, 1, 0, 1, 1}), 6, 1, s4,
        (double[]){5, 0, 1, 0, -1, 0, 1, 0}, c);
    const double rr[] = {1, 1, 0, 0, 1, 0, 0, 0};
    ex1("rfft axis -1", em_rfft, make(r, 2, s24, rr), 4, 2, s23,
        (double[]){2, 0, 1, -1, 0, 0, 1, 0, 1, 0, 1, 0}, c);
    ex_axis0("rfft axis -2", em_rfft, make(r, 2, s24, rr), 2, s24,
             (double[]){2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0}, c);
    ex1("rfft [1,1] length 4", em_rfft, make(r, 1, s2, (double[]){1, 1}), 4, 1,
        s3, (double[]){2, 0, 1, -1, 0, 0}, c);
    ex1("rfft [1,1,0] power_of_two", em_rfft,
        make(r, 1, s3, (double[]){1, 1, 0}), 4, 1, s3,
        (double[]){2, 0, 1, -1, 0, 0}, c);
    /* Nx.irfft (Nx's default length is 2*(m-1)) */
    ex1("irfft [2,1-i,0]", em_irfft,
        make(c, 1, s3, (double[]){2, 0, 1, -1, 0, 0}), 4, 1, s4,
        (double[]){1, 0, 1, 0, 0, 0, 0, 0}, r);
    ex1("irfft real [5,1,-1,1]", em_irfft,
        make(r, 1, s4, (double[]){5, 1, -1, 1}), 6, 1, s6,
        (double[]){1, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0}, r);
    ex1("irfft 2 rows", em_irfft,
        make(c, 2, s23, (double[]){2, 0, 1, -1, 0, 0, 4, 0, 0, 0, 0, 0}), 4, 2,
        s24, (double[]){1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0}, r);
    /* Nx.fft2 / Nx.ifft2 */
    em_array *b = NULL, *a;
    int64_t s14[3] = {2, 1, 4}, s22[2] = {2, 2}, s42[2] = {4, 2},
            s33[2] = {3, 3}, s44[2] = {4, 4}, s2126[4] = {2, 1, 2, 6},
            s2124[4] = {2, 1, 2, 4};
    a = cre(c, 2, s24, (double[]){1, 0, 1, 0, 1, 1, 1, 1});
    CHECK(em_fft2(&b, a, 2, 4) == EM_OK, "fft2: %s", em_last_error());
    hand("fft2 [[1,0,1,0],[1,1,1,1]]", b, 2, s24,
         (double[]){6, 0, 0, 0, 2, 0, 0, 0, -2, 0, 0, 0, 2, 0, 0, 0}, c);
    em_array_release(a);
    em_array_release(b);
    a = cre(c, 3, s14, (double[]){1, 0, 1, 0, 1, 1, 1, 1});
    CHECK(em_fft2(&b, a, 1, 4) == EM_OK, "fft2: %s", em_last_error());
    hand("fft2 axes [-2,-1]", b, 3, s14,
         (double[]){2, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0}, c);
    em_array_release(a);
    em_array_release(b);
    a = cre(c, 2, s22, (double[]){1, 1, 1, 0});
    CHECK(em_fft2(&b, a, 2, 4) == EM_OK, "fft2: %s", em_last_error());
    hand("fft2 lengths [2,4]", b, 2, s24,
         (double[]){3, 0, 2, -1, 1, 0, 2, 1, 1, 0, 0, -1, -1, 0, 0, 1}, c);
    em_array_release(b);
    CHECK(em_fft2(&b, a, 4, 2) == EM_OK, "fft2: %s", em_last_error());
    hand("fft2 lengths [4,2]", b, 2, s42,
         (double[]){3, 0, 1, 0, 2, -1, 0, -1, 1, 0, -1, 0, 2, 1, 0, 1}, c);
    em_array_release(a);
    em_array_release(b);
    a = cre(c, 2, s33, (double[]){1, 1, 0, 1, 1, 0, 1, 1, -1});
    CHECK(em_fft2(&b, a, 4, 4) == EM_OK, "fft2: %s", em_last_error());
    hand("fft2 power_of_two", b, 2, s44,
         (double[]){5, 0, 4, -3, -1, 0, 4, 3, 1, -2, -2, -1, 1, 0, 0,  -1,
                    1, 0, 2, -1, -1, 0, 2, 1, 1, 2,  0,  1,  1, 0, -2, 1},
         c);
    em_array_release(a);
    em_array_release(b);
    a = cre(c, 4, s2126,
            (double[]){1,  0,  1,  0,  10, 10, 1, 1, 1, 1, 10,  10,
                       -2, -2, -2, -2, 20, 20, 0, 0, 0, 1, -20, -20});
    CHECK(em_fft2(&b, a, 2, 4) == EM_OK, "fft2: %s", em_last_error());
    hand("fft2 4-d lengths [2,4]", b, 4, s2124,
         (double[]){6,  0, 0, 0, 2,  0, 0, 0,  -2, 0, 0, 0,  2, 0, 0, 0,
                    -7, 0, 0, 1, -1, 0, 0, -1, -9, 0, 0, -1, 1, 0, 0, 1},
         c);
    em_array_release(a);
    em_array_release(b);
    a = cre(c, 2, s24, (double[]){6, 0, 2, 0, -2, 0, 2, 0});
    CHECK(em_ifft2(&b, a, 2, 4) == EM_OK, "ifft2: %s", em_last_error());
    hand("ifft2 [[6,0,2,0],[-2,0,2,0]]", b, 2, s24,
         (double[]){1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0}, c);
    em_array_release(a);
    em_array_release(b);
    a = cre(c, 3, s14, (double[]){6, 0, 2, 0, -2, 0, 2, 0});
    CHECK(em_ifft2(&b, a, 1, 4) == EM_OK, "ifft2: %s", em_last_error());
    hand("ifft2 axes [-2,-1]", b, 3, s14,
         (double[]){2, 0, 1, 0, 2, 0, 1, 0, 0, 0, -1, 0, 0, 0, -1, 0}, c);
    em_array_release(a);
    em_array_release(b);
    a = cre(c, 2, s22, (double[]){8, 8, 8, 0});
    CHECK(em_ifft2(&b, a, 2, 4) == EM_OK, "ifft2: %s", em_last_error());
    hand("ifft2 lengths [2,4]", b, 2, s24,
         (double[]){3, 0, 2, 1, 1, 0, 2, -1, 1, 0, 0, 1, -1, 0, 0, -1}, c);
    em_array_release(b);
    CHECK(em_ifft2(&b, a, 4, 2) == EM_OK, "ifft2: %s", em_last_error());
    hand("ifft2 lengths [4,2]", b, 2, s42,
         (double[]){3, 0, 1, 0, 2, 1, 0, 1, 1, 0, -1, 0, 2, -1, 0, -1}, c);
    em_array_release(a);
    em_array_release(b);
    a = cre(c, 2, s33, (double[]){16, 16, 0, 16, 16, 0, 16, 16, -16});
    CHECK(em_ifft2(&b, a, 4, 4) == EM_OK, "ifft2: %s", em_last_error());
    hand("ifft2 power_of_two", b, 2, s44,
         (double[]){5, 0, 4, 3, -1, 0, 4, -3, 1, 2,  -2, 1,  1, 0, 0,  1,
                    1, 0, 2, 1, -1, 0, 2, -1, 1, -2, 0,  -1, 1, 0, -2, -1},
         c);
    em_array_release(a);
    em_array_release(b);
    a = cre(c, 4, s2126,
            (double[]){8,   0,   8,   0,   10, 10, 8, 8, 8, 8, 10,  10,
                       -16, -16, -16, -16, 20, 20, 0, 0, 0, 8, -20, -20});
    CHECK(em_ifft2(&b, a, 2, 4) == EM_OK, "ifft2: %s", em_last_error());
    hand("ifft2 4-d lengths [2,4]", b, 4, s2124,
         (double[]){6,  0, 0, 0,  2,  0, 0, 0, -2, 0, 0, 0, 2, 0, 0, 0,
                    -7, 0, 0, -1, -1, 0, 0, 1, -9, 0, 0, 1, 1, 0, 0, -1},
         c);
    em_array_release(a);
    em_array_release(b);
  }
}

/* ---- views, edge shapes, dtypes, concurrency
 * ---------------------------------
 */

static void test_views_and_edges(void) {
  for (int ti = 0; ti < 2; ti++) {
    em_dtype t = ti ? EM_C128 : EM_C64;
    /* transposed input: fft along axis 0 of [40, 7] */
    int64_t sh[2] = {40, 7};
    double *x = rand_vec(2 * 40 * 7);
    em_array *a = make(t, 2, sh, x), *at = NULL, *b = NULL;
    CHECK(em_transpose(&at, a, NULL) == EM_OK, "transpose");
    CHECK(em_fft(&b, at, 40) == EM_OK, "fft of view: %s", em_last_error());
    double *y = get(b);
    if (y) {
      double col[80];
      long double ref[80];
      for (int k = 0; k < 7; k++) {
        for (int j = 0; j < 40; j++) {
          col[2 * j] = x[2 * (j * 7 + k)];
          col[2 * j + 1] = x[2 * (j * 7 + k) + 1];
        }
        dft_ld(col, 40, 40, false, ref);
        double e = rel_l2(y + 2 * k * 40, ref, 80);
        CHECK(e < tol_of(t), "fft of transposed view col %d: %.3g", k, e);
      }
    }
    free(y);
    em_array_release(b);
    /* strided slice: every other column, then fft along the last axis */
    em_array *s = NULL;
    CHECK(em_slice(&s, a, (int64_t[]){1, 0}, (int64_t[]){39, 7},
                   (int64_t[]){2, 2}) == EM_OK,
          "slice: %s", em_last_error());
    CHECK(em_ifft(&b, s, 6) == EM_OK, "ifft of slice: %s", em_last_error());
    y = get(b);
    if (y) {
      double row[8];
      long double ref[12];
      for (int i = 0; i < 20; i++) {
        for (int j = 0; j < 4; j++) {
          row[2 * j] = x[2 * ((1 + 2 * i) * 7 + 2 * j)];
          row[2 * j + 1] = x[2 * ((1 + 2 * i) * 7 + 2 * j) + 1];
        }
        dft_ld(row, 4, 6, true, ref);
        double e = rel_l2(y + 2 * i * 6, ref, 12);
        CHECK(e < tol_of(t), "ifft of strided slice row %d: %.3g", i, e);
      }
    }
    free(y);
    em_array_release(b);
    em_array_release(s);
    em_array_release(at);
    em_array_release(a);
    free(x);

    /* rank 3 batches */
    int64_t s3[3] = {3, 4, 10};
    x = rand_vec(2 * 120);
    a = make(t, 3, s3, x);
    CHECK(em_fft(&b, a, 10) == EM_OK, "rank 3: %s", em_last_error());
    y = get(b);
    if (y) {
      long double ref[20];
      for (int r = 0; r < 12; r++) {
        dft_ld(x + 20 * r, 10, 10, false, ref);
        CHECK(rel_l2(y + 20 * r, ref, 20) < tol_of(t), "rank 3 row %d", r);
      }
      CHECK(em_array_ndim(b) == 3 && em_array_shape(b)[1] == 4, "rank 3 shape");
    }
    free(y);
    free(x);
    em_array_release(a);
    em_array_release(b);

    /* zero-size: no rows; rows of length 0 padded to n (zeros) */
    int64_t z0[2] = {0, 8}, z1[2] = {3, 0};
    a = make(t, 2, z0, NULL);
    CHECK(em_fft(&b, a, 5) == EM_OK && em_eval(&b, 1) == EM_OK,
          "fft of [0,8]: %s", em_last_error());
    CHECK(b && em_array_size(b) == 0 && em_array_shape(b)[1] == 5,
          "[0,8] -> [0,5]");
    em_array_release(a);
    em_array_release(b);
    a = make(t, 2, z1, NULL);
    CHECK(em_ifft(&b, a, 4) == EM_OK, "ifft of [3,0]: %s", em_last_error());
    y = get(b);
    if (y) {
      bool zero = em_array_size(b) == 12;
      for (int i = 0; i < 24 && zero; i++) zero = y[i] == 0;
      CHECK(zero, "ifft of [3,0] to 4: zeros");
    }
    free(y);
    em_array_release(a);
    em_array_release(b);
    int64_t zr[2] = {0, 8};
    em_array *ar = make(ti ? EM_F64 : EM_F32, 2, zr, NULL);
    CHECK(em_rfft(&b, ar, 8) == EM_OK && em_eval(&b, 1) == EM_OK &&
              em_array_shape(b)[1] == 5,
          "rfft of [0,8]: %s", em_last_error());
    em_array_release(ar);
    em_array_release(b);
    a = make(t, 2, z0, NULL);
    CHECK(em_irfft(&b, a, 8) == EM_OK && em_eval(&b, 1) == EM_OK &&
              em_array_shape(b)[1] == 8,
          "irfft of [0,8]: %s", em_last_error());
    em_array_release(a);
    em_array_release(b);
  }

  /* rfft of other real dtypes: cast to f32 -> c64; irfft of real input */
  int64_t s6[1] = {6};
  em_array *a = make(EM_S32, 1, s6, (double[]){1, 1, 1, 0, 1, 1}), *b = NULL;
  CHECK(em_rfft(&b, a, 6) == EM_OK, "rfft s32: %s", em_last_error());
  int64_t s4[1] = {4};
  hand("rfft s32", b, 1, s4, (double[]){5, 0, 1, 0, -1, 0, 1, 0}, EM_C64);
  em_array_release(a);
  em_array_release(b);
  a = make(EM_U8, 1, s6, (double[]){1, 1, 1, 0, 1, 1});
  CHECK(em_rfft(&b, a, 6) == EM_OK, "rfft u8: %s", em_last_error());
  hand("rfft u8", b, 1, s4, (double[]){5, 0, 1, 0, -1, 0, 1, 0}, EM_C64);
  em_array_release(a);
  em_array_release(b);
  a = make(EM_F64, 1, s4, (double[]){5, 1, -1, 1});
  CHECK(em_irfft(&b, a, 6) == EM_OK, "irfft f64: %s", em_last_error());
  hand("irfft f64", b, 1, s6, (double[]){1, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0},
       EM_F64);
  em_array_release(a);
  em_array_release(b);
}

typedef struct {
  em_array *out;
  em_status st;
  int done;
} async_res;
static void on_done(em_status st, void *user) {
  async_res *r = user;
  r->st = st;
  r->done = 1;
}

/* Two streams evaluating transforms of fresh lengths at once (they race to
 * build the same plans), then many lengths to cycle the plan cache. */
static void test_concurrency(void) {
  em_stream *s1 = NULL, *s2 = NULL;
  CHECK(em_stream_new(&s1, em_cpu()) == EM_OK &&
            em_stream_new(&s2, em_cpu()) == EM_OK,
        "streams: %s", em_last_error());
  if (!s1 || !s2) {
    em_stream_free(s1);
    em_stream_free(s2);
    return;
  }
  static const int64_t lens[] = {3001, 7919, 12288, 50000};
  for (int i = 0; i < 4; i++) {
    int64_t n = lens[i], sh[2] = {4, n};
    double *x = rand_vec(8 * n);
    em_array *a = make(EM_C128, 2, sh, x);
    async_res r1 = {0}, r2 = {0};
    CHECK(em_fft(&r1.out, a, n) == EM_OK && em_fft(&r2.out, a, n) == EM_OK,
          "fft");
    CHECK(em_eval_async(&r1.out, 1, s1, on_done, &r1) == EM_OK &&
              em_eval_async(&r2.out, 1, s2, on_done, &r2) == EM_OK,
          "eval_async: %s", em_last_error());
    em_stream_synchronize(s1);
    em_stream_synchronize(s2);
    CHECK(r1.done && r2.done && r1.st == EM_OK && r2.st == EM_OK,
          "async fft %lld", (long long)n);
    double *y1 = get(r1.out), *y2 = get(r2.out);
    if (y1 && y2) {
      CHECK(memcmp(y1, y2, sizeof(double) * 8 * (size_t)n) == 0,
            "two streams agree for %lld", (long long)n);
      long double re, im;
      bin_ld(x + 2 * n, n, 5, &re, &im);
      CHECK(fabsl(y1[2 * n + 10] - re) < 1e-11 &&
                fabsl(y1[2 * n + 11] - im) < 1e-11,
            "async fft %lld bin 5", (long long)n);
    }
    free(y1);
    free(y2);
    free(x);
    em_array_release(a);
    em_array_release(r1.out);
    em_array_release(r2.out);
  }
  em_stream_free(s1);
  em_stream_free(s2);
  /* cycle more lengths than the cache holds, then reuse an early one */
  for (int n = 100; n < 140; n++) check_c2c(2, n, n, EM_C64, n % 2, 1);
  check_c2c(2, 100, 100, EM_C128, false, 2);
}

/* ---- errors
 * ---------------------------------------------------------------------
 */

static bool has(const char *s) { return strstr(em_last_error(), s) != NULL; }

static void test_errors(void) {
  int64_t s4[1] = {4}, s22[2] = {2, 2};
  em_array *r = make(EM_F32, 1, s4, (double[]){1, 2, 3, 4});
  em_array *c = cre(EM_C64, 1, s4, (double[]){1, 2, 3, 4});
  em_array *c2 = cre(EM_C64, 2, s22, (double[]){1, 2, 3, 4});
  em_array *sc = NULL, *o = (em_array *)1;
  CHECK(em_full_scalar(&sc, EM_C64, 1.0, em_cpu()) == EM_OK, "scalar");

  CHECK(em_fft(&o, r, 4) == EM_ERR_ARGUMENT && o == NULL && has("[fft]") &&
            has("complex"),
        "fft of real: %s", em_last_error());
  CHECK(em_ifft(&o, c, 0) == EM_ERR_ARGUMENT && has("[ifft]") && has("length"),
        "ifft n=0: %s", em_last_error());
  CHECK(em_fft(&o, c, -3) == EM_ERR_ARGUMENT && has("[fft]"), "fft n<0: %s",
        em_last_error());
  CHECK(em_fft(&o, sc, 4) == EM_ERR_ARGUMENT && has("[fft]") && has("rank"),
        "fft of scalar: %s", em_last_error());
  CHECK(em_fft(&o, NULL, 4) == EM_ERR_ARGUMENT && has("[fft]"), "fft NULL");
  CHECK(em_fft(NULL, c, 4) == EM_ERR_ARGUMENT && has("[fft]"), "fft out NULL");
  CHECK(em_fft2(&o, c, 2, 2) == EM_ERR_ARGUMENT && has("[fft2]") && has("rank"),
        "fft2 of rank 1: %s", em_last_error());
  CHECK(em_ifft2(&o, c2, 2, 0) == EM_ERR_ARGUMENT && has("[ifft2]"),
        "ifft2 n1=0: %s", em_last_error());
  CHECK(em_fft2(&o, r, 2, 2) == EM_ERR_ARGUMENT && has("[fft2]"),
        "fft2 of real: %s", em_last_error());
  CHECK(em_rfft(&o, c, 4) == EM_ERR_ARGUMENT && has("[rfft]") && has("real"),
        "rfft of complex: %s", em_last_error());
  CHECK(em_rfft(&o, r, 0) == EM_ERR_ARGUMENT && has("[rfft]"), "rfft n=0: %s",
        em_last_error());
  CHECK(em_irfft(&o, c, 0) == EM_ERR_ARGUMENT && has("[irfft]"),
        "irfft n=0: %s", em_last_error());
  CHECK(em_irfft(&o, sc, 4) == EM_ERR_ARGUMENT && has("[irfft]"),
        "irfft of scalar: %s", em_last_error());
  CHECK(em_fft(&o, c, INT64_MAX / 4) == EM_ERR_ARGUMENT && has("[fft]"),
        "fft of a huge length: %s", em_last_error());

  /* an allocation failure inside the kernel (the scratch, after the
   * output): the evaluation fails cleanly with EM_ERR_OOM */
  int64_t sh[1] = {5000};
  double *x = rand_vec(10000);
  em_array *a = make(EM_C64, 1, sh, x), *b = NULL;
  CHECK(em_fft(&b, a, 5000) == EM_OK, "fft");
  em_memory_fail_after(em_cpu(), 1);
  em_status st = em_eval(&b, 1);
  em_memory_fail_after(em_cpu(), -1);
  CHECK(st == EM_ERR_OOM && has("[fft]"), "injected OOM: %d %s", (int)st,
        em_last_error());
  em_array_release(b);
  CHECK(em_fft(&b, a, 5000) == EM_OK && em_eval(&b, 1) == EM_OK,
        "fft after OOM: %s", em_last_error());
  em_array_release(b);
  em_array_release(a);
  free(x);

  em_array_release(r);
  em_array_release(c);
  em_array_release(c2);
  em_array_release(sc);
}

int main(void) {
  test_fixtures();
  test_nx_docs();
  test_c2c_naive();
  test_real();
  test_fft2();
  test_views_and_edges();
  test_long();
  test_concurrency();
  test_errors();
  return TEST_SUMMARY();
}
