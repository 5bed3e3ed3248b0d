/* test_kernels_reduce.c — em_cpu_reduce / em_cpu_arg_reduce against a naive
 * long double / uint64 reference: every op x dtype over [outer, r, inner]
 * shapes (empty, tiny, odd, large enough to split rows across threads),
 * NaN / inf / -0 cases, tie-breaking, identities; prints sum-f32 GB/s. */
#include <complex.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/half.h"
#include "core/parallel.h"
#include "cpu/cpu-kernels.h"
#include "harness.h"

/* reduce.c's split threshold (input bytes per thread), lowered here so
 * that small shapes also run split into per-thread partial results. */
extern int64_t em_cpu_reduce_chunk_bytes;

/* ---- dtypes ------------------------------------------------------------- */

static const struct {
  const char *name;
  int size;
  char kind; /* u s f c */
} DT[EM_C128 + 1] = {
    {"u8", 1, 'u'},   {"u16", 2, 'u'},  {"u32", 4, 'u'},  {"u64", 8, 'u'},
    {"s8", 1, 's'},   {"s16", 2, 's'},  {"s32", 4, 's'},  {"s64", 8, 's'},
    {"f16", 2, 'f'},  {"bf16", 2, 'f'}, {"f32", 4, 'f'},  {"f64", 8, 'f'},
    {"c64", 8, 'c'},  {"c128", 16, 'c'}};

static int is_int(em_dtype t) { return DT[t].kind == 'u' || DT[t].kind == 's'; }
static int is_cplx(em_dtype t) { return DT[t].kind == 'c'; }
static int bits_of(em_dtype t) { return DT[t].size * 8; }

/* Raw integer bits, zero-extended. */
static uint64_t raw(em_dtype t, const void *b, int64_t i) {
  uint64_t u = 0;
  memcpy(&u, (const char *)b + i * DT[t].size, (size_t)DT[t].size);
  return u; /* little-endian hosts */
}
static void put_raw(em_dtype t, void *b, int64_t i, uint64_t u) {
  memcpy((char *)b + i * DT[t].size, &u, (size_t)DT[t].size);
}

/* Exact value of element i (real part for complex); long double holds
 * every 64-bit integer and every float of these types exactly. */
static long double val(em_dtype t, const void *b, int64_t i) {
  switch (t) {
    case EM_U8: case EM_U16: case EM_U32: case EM_U64:
      return (long double)raw(t, b, i);
    case EM_S8: return ((const int8_t *)b)[i];
    case EM_S16: return ((const int16_t *)b)[i];
    case EM_S32: return ((const int32_t *)b)[i];
    case EM_S64: return (long double)((const int64_t *)b)[i];
    case EM_F16: return em_f16_to_f32(((const uint16_t *)b)[i]);
    case EM_BF16: return em_bf16_to_f32(((const uint16_t *)b)[i]);
    case EM_F32: return ((const float *)b)[i];
    case EM_F64: return ((const double *)b)[i];
    case EM_C64: return crealf(((const float _Complex *)b)[i]);
    case EM_C128: return creal(((const double _Complex *)b)[i]);
    default: return 0;
  }
}
static long double imv(em_dtype t, const void *b, int64_t i) {
  if (t == EM_C64) return cimagf(((const float _Complex *)b)[i]);
  if (t == EM_C128) return cimag(((const double _Complex *)b)[i]);
  return 0;
}

/* Stores a double into a float-kind slot (rounding to the dtype). */
static void put_f(em_dtype t, void *b, int64_t i, double re, double im) {
  switch (t) {
    case EM_F16: ((uint16_t *)b)[i] = em_f64_to_f16(re); break;
    case EM_BF16: ((uint16_t *)b)[i] = em_f64_to_bf16(re); break;
    case EM_F32: ((float *)b)[i] = (float)re; break;
    case EM_F64: ((double *)b)[i] = re; break;
    case EM_C64: ((float _Complex *)b)[i] = CMPLXF((float)re, (float)im); break;
    case EM_C128: ((double _Complex *)b)[i] = CMPLX(re, im); break;
    default: break;
  }
}

/* ---- data --------------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static double unif(void) { return (double)(rnd() >> 11) * 0x1p-53; }

enum {
  D_GEN, D_POS, D_TIES, D_PROD, D_SPECIAL, D_ZEROS, D_NONZERO, D_PSPEC, D_ACC
};
static const char *DNAME[] = {"gen", "pos", "ties", "prod",
                              "special", "zeros", "nonzero", "pspecial", "acc"};

/* NaN, +-inf, +-0 and subnormals (none with nosub: a product that
 * underflows in f64 but not in the long double reference can meet an inf
 * and give NaN instead of inf). */
static double special_val(em_dtype t, int nosub) {
  double sub = t == EM_F16 ? 0x1p-24 : t == EM_BF16 ? 0x1p-133
               : (t == EM_F32 || t == EM_C64) ? 0x1p-149 : 0x1p-1074;
  switch (rnd() % (nosub ? 5 : 7)) {
    case 0: return NAN;
    case 1: return INFINITY;
    case 2: return -INFINITY;
    case 3: return 0.0;
    case 4: return -0.0;
    case 5: return sub * (double)(1 + rnd() % 5);
    default: return -sub;
  }
}

static double fgen(em_dtype t, int ds) {
  static const double ties[] = {-1.0, 0.0, -0.0, 1.0, 2.0};
  switch (ds) {
    /* 1 + 2^-20 (f32): an f32 running sum past 32 drops the 2^-20 of
     * every add, and one past 1024 drops what a 16-value partial sum
     * carries; partial sums kept in f32 and flushed into f64 are exact. */
    case D_ACC:
      return 1 + ((t == EM_F64 || t == EM_C128) ? 0x1p-40
                  : (t == EM_F16) ? 0x1p-10 : (t == EM_BF16) ? 0x1p-7
                  : 0x1p-20);
    case D_POS: return 2 * unif();
    case D_TIES: return ties[rnd() % 5];
    case D_PROD: return (rnd() & 1 ? -1 : 1) * (0.75 + 0.5 * unif());
    case D_SPECIAL: return rnd() % 50 == 0 ? special_val(t, 0) : 4 * unif() - 2;
    case D_PSPEC: return rnd() % 50 == 0 ? special_val(t, 1) : 4 * unif() - 2;
    case D_ZEROS:
      if (rnd() % 50) return rnd() & 1 ? 0.0 : -0.0;
      return rnd() % 10 == 0 ? NAN : 4 * unif() - 2;
    case D_NONZERO:
      if (rnd() % 500 == 0) return rnd() & 1 ? 0.0 : -0.0;
      return rnd() % 100 == 0 ? NAN : 4 * unif() - 2 + 0x1p-6;
    default: return 4 * unif() - 2;
  }
}

static void fill(em_dtype t, void *b, int64_t n, int ds) {
  int w = bits_of(t);
  uint64_t mask = w >= 64 ? ~0ull : (1ull << w) - 1;
  for (int64_t i = 0; i < n; i++) {
    if (is_int(t)) {
      uint64_t u = rnd() & mask;
      switch (ds) {
        case D_TIES: u = (uint64_t)(rnd() % 4) - (DT[t].kind == 's'); break;
        case D_PROD: u |= 1; break;
        case D_ZEROS: u = rnd() % 50 ? 0 : u | 1; break;
        case D_NONZERO: u = rnd() % 500 ? u | 1 : 0; break;
        default:
          if (rnd() % 64 == 0) { /* edges: 0, 1, -1 / max, min / max */
            int s = DT[t].kind == 's';
            switch (rnd() % 4) {
              case 0: u = 0; break;
              case 1: u = 1; break;
              case 2: u = mask; break;
              default: u = s ? (rnd() & 1 ? 1ull << (w - 1) : mask >> 1) : mask;
            }
          }
      }
      put_raw(t, b, i, u & mask);
    } else if (is_cplx(t)) {
      double re = fgen(t, ds), im = fgen(t, ds);
      if (ds == D_ZEROS && (re != 0 || isnan(re))) im = 0; /* mostly zeros */
      if (ds == D_PROD) { /* |z| < 1: long products underflow, never overflow */
        re = copysign(0.5 + 0.2 * unif(), re);
        im = copysign(0.5 + 0.2 * unif(), im);
      }
      put_f(t, b, i, re, im);
    } else {
      put_f(t, b, i, fgen(t, ds), 0);
    }
  }
}

/* ---- reference and comparison ------------------------------------------ */

static double u_of(em_dtype t) { /* unit roundoff of the output */
  switch (t) {
    case EM_F16: return 0x1p-11;
    case EM_BF16: return 0x1p-8;
    case EM_F32: case EM_C64: return 0x1p-24;
    default: return 0x1p-53;
  }
}
/* What the exact value becomes when stored in t (for overflow to inf). */
static long double rounded(em_dtype t, long double v) {
  double d = (double)v;
  switch (t) {
    case EM_F16: return em_f16_to_f32(em_f64_to_f16(d));
    case EM_BF16: return em_bf16_to_f32(em_f64_to_bf16(d));
    case EM_F32: case EM_C64: return (float)d;
    default: return d;
  }
}

static int close_ld(long double got, long double want, double rtol,
                    double atol) {
  return th_close((double)got, (double)want, rtol, atol);
}

static const char *opname(em_op op) {
  switch (op) {
    case EM_OP_sum: return "sum";
    case EM_OP_product: return "product";
    case EM_OP_reduce_max: return "max";
    case EM_OP_reduce_min: return "min";
    case EM_OP_all: return "all";
    case EM_OP_any: return "any";
    case EM_OP_argmax: return "argmax";
    case EM_OP_argmin: return "argmin";
    default: return "?";
  }
}

/* Nx's scan: x replaces the running pick if it is NaN, or if the pick is
 * not NaN and x is strictly better (or equal, with tie_high). */
static int scan_takes(long double v, long double c, int first, int is_max,
                      int tie) {
  if (first || isnan(v)) return 1;
  if (isnan(c)) return 0;
  return is_max ? (v > c || (tie && v == c)) : (v < c || (tie && v == c));
}

static int n_fail_cases = 0;

/* Runs one op on one shape and checks every output. */
static void run_case(em_op op, int tie, em_dtype t, int ds, int64_t outer,
                     int64_t r, int64_t inner) {
  int64_t n = outer * r * inner, no = outer * inner;
  int es = DT[t].size;
  int arg = op == EM_OP_argmax || op == EM_OP_argmin;
  int os = arg ? 8 : (op == EM_OP_all || op == EM_OP_any) ? 1 : es;
  /* One element of offset: starts are not 64-byte aligned. Guard elements
   * on both sides of the output catch stray writes. */
  char *xb = malloc((size_t)((n + 1) * es));
  char *yb = malloc((size_t)((no + 2) * os));
  if (!xb || !yb) {
    CHECK(0, "malloc");
    free(xb);
    free(yb);
    return;
  }
  char *x = xb + es, *y = yb + os;
  fill(t, x, n, ds);
  memset(yb, 0xA5, (size_t)((no + 2) * os));
  if (arg)
    em_cpu_arg_reduce(op, t, tie, x, (int64_t *)y, outer, r, inner);
  else
    em_cpu_reduce(op, t, x, y, outer, r, inner);

  int guards_ok = 1;
  for (int i = 0; i < os; i++)
    guards_ok &= (unsigned char)yb[i] == 0xA5 &&
                 (unsigned char)yb[(no + 1) * os + i] == 0xA5;
  CHECK(guards_ok, "%s %s [%lld,%lld,%lld]: wrote outside the output",
        opname(op), DT[t].name, (long long)outer, (long long)r,
        (long long)inner);

  int fails = 0;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < inner; j++) {
      int64_t oi = o * inner + j;
      int ok = 1;
      char why[200] = "";
#define AT(rr) ((o * r + (rr)) * inner + j)
      if (arg) {
        long double c = 0;
        int64_t ci = -1;
        for (int64_t rr = 0; rr < r; rr++) {
          long double v = val(t, x, AT(rr));
          if (scan_takes(v, c, ci < 0, op == EM_OP_argmax, tie)) {
            c = v;
            ci = rr;
          }
        }
        int64_t got = ((int64_t *)y)[oi];
        ok = got == ci;
        snprintf(why, sizeof why, "got %lld want %lld", (long long)got,
                 (long long)ci);
      } else if (op == EM_OP_all || op == EM_OP_any) {
        int acc = op == EM_OP_all;
        for (int64_t rr = 0; rr < r; rr++) {
          long double re = val(t, x, AT(rr)), im = imv(t, x, AT(rr));
          int nz = re != 0 || im != 0 || isnan(re) || isnan(im);
          acc = op == EM_OP_all ? acc && nz : acc || nz;
        }
        int got = ((uint8_t *)y)[oi];
        ok = got == acc;
        snprintf(why, sizeof why, "got %d want %d", got, acc);
      } else if (is_int(t) && (op == EM_OP_sum || op == EM_OP_product)) {
        uint64_t acc = op == EM_OP_sum ? 0 : 1;
        for (int64_t rr = 0; rr < r; rr++) {
          uint64_t v = raw(t, x, AT(rr));
          acc = op == EM_OP_sum ? acc + v : acc * v;
        }
        int w = bits_of(t);
        uint64_t mask = w == 64 ? ~0ull : (1ull << w) - 1;
        uint64_t got = raw(t, y, oi);
        ok = got == (acc & mask);
        snprintf(why, sizeof why, "got %llx want %llx",
                 (unsigned long long)got, (unsigned long long)(acc & mask));
      } else if (op == EM_OP_reduce_max || op == EM_OP_reduce_min) {
        int mx = op == EM_OP_reduce_max;
        long double acc;
        if (is_int(t)) {
          int w = bits_of(t);
          long double lo = DT[t].kind == 's' ? -ldexpl(1, w - 1) : 0;
          long double hi = DT[t].kind == 's' ? ldexpl(1, w - 1) - 1
                                             : ldexpl(1, w) - 1;
          acc = mx ? lo : hi;
        } else {
          acc = mx ? -INFINITY : INFINITY;
        }
        for (int64_t rr = 0; rr < r; rr++) {
          long double v = val(t, x, AT(rr));
          if (isnan(acc)) break;
          if (isnan(v) || (mx ? v > acc : v < acc)) acc = v;
        }
        long double got = val(t, y, oi);
        ok = (isnan(acc) && isnan(got)) || got == acc;
        snprintf(why, sizeof why, "got %Lg want %Lg", got, acc);
      } else if (op == EM_OP_sum) { /* floats and complex */
        long double sr = 0, si = 0, ar = 0, ai = 0;
        for (int64_t rr = 0; rr < r; rr++) {
          long double re = val(t, x, AT(rr)), im = imv(t, x, AT(rr));
          sr += re;
          si += im;
          ar += fabsl(re);
          ai += fabsl(im);
        }
        /* Lanes add 16 values in f32 (f64) before flushing into f64, so
         * random data may see ~16 roundings of the lane type. The f32
         * constant data set must be exact up to the final rounding (its
         * partial sums are exact in f64). */
        int wide = t == EM_F64 || t == EM_C128;
        double acc_tol = wide ? 0x1p-49 : ds == D_ACC ? 0 : 0x1p-20;
        double u = u_of(t);
        long double gr = val(t, y, oi), gi = imv(t, y, oi);
        long double er = rounded(t, sr), ei = rounded(t, si);
        ok = isinf(er) ? gr == er : close_ld(gr, sr, 2 * u, acc_tol * ar);
        ok &= isinf(ei) ? gi == ei : close_ld(gi, si, 2 * u, acc_tol * ai);
        snprintf(why, sizeof why, "got %.10Lg%+.10Lgi want %.10Lg%+.10Lgi",
                 gr, gi, sr, si);
      } else { /* float / complex product */
        long double pr = 1, pi = 0, mag = 1;
        for (int64_t rr = 0; rr < r; rr++) {
          long double re = val(t, x, AT(rr)), im = imv(t, x, AT(rr));
          long double nr = pr * re - pi * im, ni = pr * im + pi * re;
          pr = nr;
          pi = is_cplx(t) ? ni : 0;
          mag *= is_cplx(t) ? hypotl(re, im) : fabsl(re);
        }
        double u = u_of(t), tol = 2 * u + (double)r * 0x1p-51;
        double atol = t == EM_F16 ? 0x1p-23 : t == EM_BF16 ? 0x1p-132
                      : (t == EM_F32 || t == EM_C64) ? 0x1p-148 : 0x1p-1000;
        long double gr = val(t, y, oi), gi = imv(t, y, oi);
        if (is_cplx(t)) {
          ok = fabsl(gr - pr) <= tol * mag + atol &&
               fabsl(gi - pi) <= tol * mag + atol;
        } else {
          long double e = rounded(t, pr);
          ok = isinf(e) ? gr == e : close_ld(gr, pr, tol, atol);
        }
        snprintf(why, sizeof why, "got %.10Lg%+.10Lgi want %.10Lg%+.10Lgi",
                 gr, gi, pr, pi);
      }
#undef AT
      if (ok || fails++ < 3) {
        CHECK(ok, "%s%s %s data=%s [%lld,%lld,%lld] out %lld: %s", opname(op),
              arg ? (tie ? "/high" : "/low") : "", DT[t].name, DNAME[ds],
              (long long)outer, (long long)r, (long long)inner,
              (long long)oi, why);
      } else { /* counted, not printed */
        th_checks++;
        th_failures++;
      }
    }
  if (fails) n_fail_cases++;
  free(xb);
  free(yb);
}

/* ---- hand-made cases ---------------------------------------------------- */

static void hand_cases(void) {
  /* Nx docs: argmax([2.0, NaN, 4.0]) == 1. With several NaNs the
   * BinaryBackend scan ends on the last one, whatever the tie break. */
  float a[] = {2.0f, NAN, 4.0f};
  float b[] = {NAN, 1.0f, NAN, 3.0f, -INFINITY};
  int64_t r;
  for (int tie = 0; tie < 2; tie++) {
    em_cpu_arg_reduce(EM_OP_argmax, EM_F32, tie, a, &r, 1, 3, 1);
    CHECK(r == 1, "argmax nan got %lld", (long long)r);
    em_cpu_arg_reduce(EM_OP_argmin, EM_F32, tie, a, &r, 1, 3, 1);
    CHECK(r == 1, "argmin nan got %lld", (long long)r);
    em_cpu_arg_reduce(EM_OP_argmax, EM_F32, tie, b, &r, 1, 5, 1);
    CHECK(r == 2, "argmax last nan got %lld", (long long)r);
    em_cpu_arg_reduce(EM_OP_argmin, EM_F32, tie, b, &r, 1, 5, 1);
    CHECK(r == 2, "argmin last nan got %lld", (long long)r);
  }
  /* Nx docs tie-break example: argmin over axis 1 of
   * [[[4,2,3],[1,-5,3]],[[6,2,3],[4,8,3]]]. */
  int32_t t3[] = {4, 2, 3, 1, -5, 3, 6, 2, 3, 4, 8, 3};
  int64_t lo[6], hi[6];
  em_cpu_arg_reduce(EM_OP_argmin, EM_S32, false, t3, lo, 2, 2, 3);
  em_cpu_arg_reduce(EM_OP_argmin, EM_S32, true, t3, hi, 2, 2, 3);
  int64_t wlo[] = {1, 1, 0, 1, 0, 0}, whi[] = {1, 1, 1, 1, 0, 1};
  CHECK(!memcmp(lo, wlo, sizeof lo), "argmin tie low");
  CHECK(!memcmp(hi, whi, sizeof hi), "argmin tie high");
  /* Ties between -0.0 and 0.0. */
  float z[] = {0.0f, -0.0f, 0.0f};
  em_cpu_arg_reduce(EM_OP_argmax, EM_F32, false, z, &r, 1, 3, 1);
  CHECK(r == 0, "argmax -0 low got %lld", (long long)r);
  em_cpu_arg_reduce(EM_OP_argmax, EM_F32, true, z, &r, 1, 3, 1);
  CHECK(r == 2, "argmax -0 high got %lld", (long long)r);

  /* max/min: NaN anywhere gives NaN, also with inf around. */
  float m[] = {-INFINITY, 1.0f, NAN, INFINITY};
  float f;
  em_cpu_reduce(EM_OP_reduce_max, EM_F32, m, &f, 1, 4, 1);
  CHECK(isnan(f), "max nan");
  em_cpu_reduce(EM_OP_reduce_min, EM_F32, m, &f, 1, 4, 1);
  CHECK(isnan(f), "min nan");
  em_cpu_reduce(EM_OP_reduce_max, EM_F32, m, &f, 1, 2, 1);
  CHECK(f == 1.0f, "max -inf,1");

  /* all/any: NaN is true, -0.0 is false. */
  double d[] = {NAN, -0.0, 0.0};
  uint8_t u;
  em_cpu_reduce(EM_OP_all, EM_F64, d, &u, 1, 1, 1);
  CHECK(u == 1, "all(NaN)");
  em_cpu_reduce(EM_OP_any, EM_F64, d + 1, &u, 1, 2, 1);
  CHECK(u == 0, "any(-0, 0)");
  uint16_t hz[] = {0x8000, 0x7e00};
  em_cpu_reduce(EM_OP_any, EM_BF16, hz, &u, 1, 1, 1);
  CHECK(u == 0, "any(bf16 -0)");
  em_cpu_reduce(EM_OP_all, EM_F16, hz + 1, &u, 1, 1, 1);
  CHECK(u == 1, "all(f16 NaN)");

  /* Integer wrap-around. */
  int8_t s8[] = {127, 1};
  int8_t s8r;
  em_cpu_reduce(EM_OP_sum, EM_S8, s8, &s8r, 1, 2, 1);
  CHECK(s8r == -128, "s8 sum wrap %d", s8r);
  uint16_t u16[] = {65535, 65535}, u16r;
  em_cpu_reduce(EM_OP_product, EM_U16, u16, &u16r, 1, 2, 1);
  CHECK(u16r == 1, "u16 product wrap %u", u16r);
  int64_t s64[] = {INT64_MAX, 1}, s64r;
  em_cpu_reduce(EM_OP_sum, EM_S64, s64, &s64r, 1, 2, 1);
  CHECK(s64r == INT64_MIN, "s64 sum wrap");
  int32_t s32[] = {INT32_MIN, -1}, s32r;
  em_cpu_reduce(EM_OP_product, EM_S32, s32, &s32r, 1, 2, 1);
  CHECK(s32r == INT32_MIN, "s32 product INT_MIN*-1");

  /* f16 sums round once from a wide accumulator: 2048 + 1 + 1 is 2050 in
   * f16, though 2048 + 1 alone rounds back to 2048. */
  uint16_t h[] = {em_f64_to_f16(2048), em_f64_to_f16(1), em_f64_to_f16(1)};
  uint16_t hr;
  em_cpu_reduce(EM_OP_sum, EM_F16, h, &hr, 1, 3, 1);
  CHECK(em_f16_to_f32(hr) == 2050.0f, "f16 sum %g", em_f16_to_f32(hr));
  /* f32 product through f64: 1e30 * 1e30 * 1e-30 stays finite. */
  float p[] = {1e30f, 1e30f, 1e-30f};
  em_cpu_reduce(EM_OP_product, EM_F32, p, &f, 1, 3, 1);
  CHECK(f == 1e30f, "f32 product %g", f);

  /* Empty reductions give the identities. */
  char buf[64];
  memset(buf, 0x5a, sizeof buf);
  em_cpu_reduce(EM_OP_reduce_max, EM_S8, buf, &s8r, 1, 0, 1);
  CHECK(s8r == INT8_MIN, "max s8 empty");
  uint32_t u32r;
  em_cpu_reduce(EM_OP_reduce_min, EM_U32, buf, &u32r, 1, 0, 1);
  CHECK(u32r == UINT32_MAX, "min u32 empty");
  em_cpu_reduce(EM_OP_reduce_max, EM_F16, buf, &hr, 1, 0, 1);
  CHECK(hr == 0xfc00, "max f16 empty %x", hr);
  em_cpu_reduce(EM_OP_reduce_min, EM_BF16, buf, &hr, 1, 0, 1);
  CHECK(hr == 0x7f80, "min bf16 empty %x", hr);
  em_cpu_reduce(EM_OP_reduce_max, EM_F64, buf, d, 1, 0, 1);
  CHECK(d[0] == -INFINITY, "max f64 empty");
  float _Complex cz = 7;
  em_cpu_reduce(EM_OP_sum, EM_C64, buf, &cz, 1, 0, 1);
  CHECK(cz == 0, "sum c64 empty");
  double _Complex cp = 7;
  em_cpu_reduce(EM_OP_product, EM_C128, buf, &cp, 1, 0, 1);
  CHECK(cp == 1, "product c128 empty");
  em_cpu_reduce(EM_OP_all, EM_C128, buf, &u, 1, 0, 1);
  CHECK(u == 1, "all empty");
  em_cpu_reduce(EM_OP_any, EM_S16, buf, &u, 1, 0, 1);
  CHECK(u == 0, "any empty");
  em_cpu_reduce(EM_OP_product, EM_U64, buf, &s64r, 1, 0, 1);
  CHECK(s64r == 1, "product u64 empty");

  /* Complex all/any look at both parts. */
  float _Complex cc[] = {CMPLXF(0.0f, 1.0f), CMPLXF(-0.0f, 0.0f)};
  em_cpu_reduce(EM_OP_all, EM_C64, cc, &u, 1, 1, 1);
  CHECK(u == 1, "all(0+1i)");
  em_cpu_reduce(EM_OP_any, EM_C64, cc + 1, &u, 1, 1, 1);
  CHECK(u == 0, "any(-0+0i)");

  /* Undefined for complex: output left alone, no crash. Also argmax over
   * r == 0, which the op layer rejects. */
  double _Complex cx[4] = {1, 2, 3, 4};
  unsigned char out[64];
  memset(out, 0xA5, sizeof out);
  em_cpu_reduce(EM_OP_reduce_max, EM_C128, cx, out, 1, 4, 1);
  em_cpu_reduce(EM_OP_reduce_min, EM_C64, cx, out, 2, 2, 1);
  em_cpu_arg_reduce(EM_OP_argmax, EM_C128, false, cx, (int64_t *)out, 1, 4, 1);
  em_cpu_arg_reduce(EM_OP_argmin, EM_C64, true, cx, (int64_t *)out, 1, 4, 1);
  em_cpu_arg_reduce(EM_OP_argmax, EM_F32, false, cx, (int64_t *)out, 2, 0, 2);
  em_cpu_reduce(EM_OP_add, EM_F32, cx, out, 1, 4, 1); /* not a reduction */
  int untouched = 1;
  for (size_t i = 0; i < sizeof out; i++) untouched &= out[i] == 0xA5;
  CHECK(untouched, "undefined reductions wrote output");
}

/* ---- the sweep ---------------------------------------------------------- */

typedef struct {
  em_op op;
  int tie;
} opcase;

static const opcase OPS[] = {
    {EM_OP_sum, 0},    {EM_OP_product, 0}, {EM_OP_reduce_max, 0},
    {EM_OP_reduce_min, 0}, {EM_OP_all, 0}, {EM_OP_any, 0},
    {EM_OP_argmax, 0}, {EM_OP_argmax, 1}, {EM_OP_argmin, 0},
    {EM_OP_argmin, 1}};

static int defined_for(em_op op, em_dtype t) {
  if (!is_cplx(t)) return 1;
  return op == EM_OP_sum || op == EM_OP_product || op == EM_OP_all ||
         op == EM_OP_any;
}

/* The data sets each op is tried on; big shapes use the first only. */
static int datasets(em_op op, em_dtype t, int *ds) {
  int f = !is_int(t);
  switch (op) {
    case EM_OP_sum:
      ds[0] = f ? D_ACC : D_GEN;
      ds[1] = f ? D_SPECIAL : D_GEN;
      ds[2] = f ? D_POS : D_GEN;
      return 3;
    case EM_OP_product:
      ds[0] = D_PROD;
      ds[1] = is_cplx(t) ? D_PROD : D_PSPEC;
      return 2;
    case EM_OP_all:
      ds[0] = D_NONZERO;
      ds[1] = D_ZEROS;
      ds[2] = D_SPECIAL;
      return 3;
    case EM_OP_any:
      ds[0] = D_ZEROS;
      ds[1] = D_NONZERO;
      ds[2] = D_SPECIAL;
      return 3;
    default: /* max min argmax argmin */
      ds[0] = f ? D_SPECIAL : D_TIES;
      ds[1] = D_TIES;
      ds[2] = D_GEN;
      return 3;
  }
}

static double now_s(void) {
  struct timespec ts;
  timespec_get(&ts, TIME_UTC);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void bench_sum_f32(void) {
  int64_t n = 64ll << 20;
  float *x = malloc((size_t)n * sizeof(float));
  if (!x) return;
  for (int64_t i = 0; i < n; i++) x[i] = (float)(i % 1024) * 0x1p-10f;
  float s = 0;
  double best = 1e9;
  for (int it = 0; it < 5; it++) {
    double t0 = now_s();
    em_cpu_reduce(EM_OP_sum, EM_F32, x, &s, 1, n, 1);
    double dt = now_s() - t0;
    if (dt < best) best = dt;
  }
  /* 65536 cycles of k/1024, k < 1024: 511.5 each; exact in f32. */
  CHECK(s == 65536.0f * 511.5f, "bench sum %.9g", s);
  printf("sum f32 64M (%d threads): %.2f ms, %.1f GB/s\n",
         em_parallel_threads(), best * 1e3, (double)n * 4 / best / 1e9);
  free(x);
}

int main(void) {
  hand_cases();

  static const int64_t OUT[] = {0, 1, 3, 5};
  static const int64_t R[] = {0, 1, 2, 7, 63, 64, 130};
  static const int64_t IN[] = {0, 1, 3, 64, 65};
  /* Larger shapes: odd sizes, wide tiles, row splits across threads
   * (> 1M elements with few outputs), many small rows. */
  static const int64_t BIG[][3] = {
      {2, 1037, 33},   {1, 1200007, 1}, {3, 200, 1030}, {40, 130, 65},
      {1, 100003, 6},  {7, 3001, 1},    {1, 3001, 333}, {2, 2003, 129},
      {30001, 3, 1},   {5001, 2, 7}};

  const int64_t chunk_default = em_cpu_reduce_chunk_bytes;
  for (int e = 0; e <= EM_C128; e++) { /* narrow dtypes: subbyte.c */
    em_dtype t = (em_dtype)e;
    for (size_t k = 0; k < sizeof OPS / sizeof OPS[0]; k++) {
      em_op op = OPS[k].op;
      int tie = OPS[k].tie;
      if (!defined_for(op, t)) continue;
      int ds[3];
      int nds = datasets(op, t, ds);
      int arg = op == EM_OP_argmax || op == EM_OP_argmin;
      em_cpu_reduce_chunk_bytes = 256;
      for (int d = 0; d < nds; d++)
        for (size_t a = 0; a < 4; a++)
          for (size_t b = 0; b < 7; b++)
            for (size_t c = 0; c < 5; c++) {
              if (arg && R[b] == 0) continue; /* rejected by the op layer */
              run_case(op, tie, t, ds[d], OUT[a], R[b], IN[c]);
            }
      for (size_t s = 0; s < sizeof BIG / sizeof BIG[0]; s++) {
        em_cpu_reduce_chunk_bytes = s % 2 ? chunk_default : 4096;
        run_case(op, tie, t, ds[0], BIG[s][0], BIG[s][1], BIG[s][2]);
        if (arg) run_case(op, tie, t, D_TIES, BIG[s][0], BIG[s][1], BIG[s][2]);
      }
    }
  }
  /* Row splits with NaNs in several parts: the last NaN must win. */
  em_cpu_reduce_chunk_bytes = 65536;
  for (int tie = 0; tie < 2; tie++)
    for (int e = EM_F16; e <= EM_F64; e++) {
      run_case(EM_OP_argmax, tie, (em_dtype)e, D_SPECIAL, 1, 1200007, 1);
      run_case(EM_OP_argmin, tie, (em_dtype)e, D_SPECIAL, 2, 300007, 3);
    }
  em_cpu_reduce_chunk_bytes = chunk_default;
  if (n_fail_cases) fprintf(stderr, "%d failing cases\n", n_fail_cases);

  bench_sum_f32();
  return TEST_SUMMARY();
}
