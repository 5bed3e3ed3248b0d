/* test_kernels_unary_math.c — the transcendental unary kernels (unary_math.c,
 * vmath.h) against long double / double libm references, plus an ulp sweep
 * of the f32 fast paths and a small f32 benchmark against libm.
 * Usage: test_kernels_unary_math [--exhaustive[=op]] (sweep all 2^32 f32).
 * EM_TEST_VERBOSE=1 prints the max error of every op x dtype. */
#include <complex.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/half.h"
#include "cpu/unary-math.h"
#include "harness.h"

static int verbose = 0;

/* ---- random numbers ------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng_u64(void) {
  uint64_t x = rng_state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng_state = x;
  return x * 0x2545f4914f6cdd1dull;
}
static double rng_unit(void) { return (double)(rng_u64() >> 11) * 0x1p-53; }
static double rng_range(double lo, double hi) {
  return lo + (hi - lo) * rng_unit();
}
/* +-2^[lo, hi) with a random mantissa */
static double rng_logmag(int lo, int hi) {
  double m = ldexp(1.0 + rng_unit(), lo + (int)(rng_u64() % (uint64_t)(hi - lo)));
  return (rng_u64() & 1) ? -m : m;
}

/* ---- long double references --------------------------------------------- */

static long double ref_sigmoid(long double x) {
  if (x >= 0) return 1.0L / (1.0L + expl(-x));
  long double e = expl(x);
  return e / (1.0L + e);
}

/* erf_inv by bisection on erfl / erfcl (independent of the kernel's method). */
static long double ref_erfinv(long double y) {
  long double ay = fabsl(y);
  if (isnan(y)) return y;
  if (ay > 1) return NAN;
  if (ay == 1) return y > 0 ? INFINITY : -INFINITY;
  if (ay == 0) return y;
  long double x;
  if (ay < 1e-10L) {
    const long double k = 0.886226925452758013649083741671L; /* sqrt(pi)/2 */
    x = ay * k * (1.0L + 0.261799387799149436538553615273L * ay * ay);
  } else {
    long double lo = 0, hi = 7, om = 1.0L - ay;
    for (int i = 0; i < 120; i++) {
      long double mid = 0.5L * (lo + hi);
      long double g = ay < 0.5L ? erfl(mid) - ay : om - erfcl(mid);
      if (g < 0) lo = mid; else hi = mid;
    }
    x = 0.5L * (lo + hi);
  }
  return y < 0 ? -x : x;
}

/* ---- op table -------------------------------------------------------------- */

typedef struct {
  em_op op;
  const char *name;
  long double (*ref)(long double);
  int vm;        /* f32 runs vmath.h polynomial code */
  int f64_tol;   /* ulps for f64 (glibc double libm + our helpers) */
  double lo, hi; /* the interesting input range for random samples */
} opinfo;

#define OPS(X)                                                  \
  X(exp, expl, 1, 2, -110, 95)                                  \
  X(expm1, expm1l, 1, 2, -30, 95)                               \
  X(log, logl, 1, 2, 0, 100)                                    \
  X(log1p, log1pl, 1, 2, -1, 100)                               \
  X(sigmoid, ref_sigmoid, 1, 3, -110, 110)                      \
  X(cos, cosl, 2, 2, -100, 100)                                 \
  X(sin, sinl, 2, 2, -100, 100)                                 \
  X(tan, tanl, 2, 2, -100, 100)                                 \
  X(cosh, coshl, 0, 2, -95, 95)                                 \
  X(sinh, sinhl, 0, 2, -95, 95)                                 \
  X(tanh, tanhl, 1, 2, -12, 12)                                 \
  X(acos, acosl, 0, 2, -1, 1)                                   \
  X(asin, asinl, 0, 2, -1, 1)                                   \
  X(atan, atanl, 0, 2, -50, 50)                                 \
  X(acosh, acoshl, 0, 2, 1, 100)                                \
  X(asinh, asinhl, 0, 2, -100, 100)                             \
  X(atanh, atanhl, 0, 2, -1, 1)                                 \
  X(erf, erfl, 1, 2, -5, 5)                                     \
  X(erfc, erfcl, 0, 6, -3, 12)                                  \
  X(erf_inv, ref_erfinv, 0, 2, -1, 1)

static const opinfo ops[] = {
#define X(n, r, vm, tol, lo, hi) {EM_OP_##n, #n, r, vm, tol, lo, hi},
    OPS(X)
#undef X
};
#define NOPS ((int)(sizeof ops / sizeof ops[0]))

static int op_has_complex(em_op op) {
  return op != EM_OP_erf && op != EM_OP_erfc && op != EM_OP_erf_inv;
}

/* ---- dtype helpers ---------------------------------------------------------- */

static const em_dtype real_types[] = {EM_F16, EM_BF16, EM_F32, EM_F64};
static const char *tname(em_dtype t) {
  switch (t) {
    case EM_F16: return "f16";
    case EM_BF16: return "bf16";
    case EM_F32: return "f32";
    case EM_F64: return "f64";
    case EM_C64: return "c64";
    case EM_C128: return "c128";
    default: return "?";
  }
}
static size_t tsize(em_dtype t) {
  return t == EM_F64 || t == EM_C64 ? 8 : t == EM_F32 ? 4 : t == EM_C128 ? 16 : 2;
}

static void store_real(em_dtype t, void *buf, int64_t i, double v) {
  switch (t) {
    case EM_F16: ((uint16_t *)buf)[i] = em_f64_to_f16(v); break;
    case EM_BF16: ((uint16_t *)buf)[i] = em_f64_to_bf16(v); break;
    case EM_F32: ((float *)buf)[i] = (float)v; break;
    default: ((double *)buf)[i] = v; break;
  }
}
static double load_real(em_dtype t, const void *buf, int64_t i) {
  switch (t) {
    case EM_F16: return em_f16_to_f32(((const uint16_t *)buf)[i]);
    case EM_BF16: return em_bf16_to_f32(((const uint16_t *)buf)[i]);
    case EM_F32: return ((const float *)buf)[i];
    default: return ((const double *)buf)[i];
  }
}
/* The correctly rounded value of r in dtype t, as a double. */
static double round_to(em_dtype t, long double r) {
  switch (t) {
    case EM_F16: return em_f16_to_f32(em_f64_to_f16((double)r));
    case EM_BF16: return em_bf16_to_f32(em_f64_to_bf16((double)r));
    case EM_F32: return (float)r;
    default: return (double)r;
  }
}
/* Position of v among the values of dtype t (monotonic, +0 == -0). */
static int64_t ordinal(em_dtype t, double v) {
  uint64_t b, s;
  switch (t) {
    case EM_F16: b = em_f64_to_f16(v); s = 0x8000u; break;
    case EM_BF16: b = em_f64_to_bf16(v); s = 0x8000u; break;
    case EM_F32: b = em_f32_bits((float)v); s = 0x80000000u; break;
    default: b = em_f64_bits(v); s = 0x8000000000000000ull; break;
  }
  int64_t mag = (int64_t)(b & (s - 1u));
  return (b & s) ? -mag : mag;
}
/* Distance in units in the last place of dtype t; huge on a class mismatch. */
static double ulp_dist(em_dtype t, double got, double want) {
  if (isnan(want)) return isnan(got) ? 0 : 1e30;
  if (isnan(got)) return 1e30;
  if (isinf(want) || isinf(got)) return got == want ? 0 : 1e30;
  if (want == 0 && got == 0 && !signbit(got) != !signbit(want)) return 1e30;
  int64_t a = ordinal(t, got), b = ordinal(t, want);
  uint64_t d = a > b ? (uint64_t)a - (uint64_t)b : (uint64_t)b - (uint64_t)a;
  return (double)d;
}

/* ---- real kernels vs references ---------------------------------------- */

#define NV_MAX 6000
static double inputs[NV_MAX];
static int nin;

static void add_in(double v) {
  if (nin < NV_MAX) inputs[nin++] = v;
}

static void build_inputs(const opinfo *o) {
  static const double edges[] = {
      0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, INFINITY, -INFINITY, NAN,
      -NAN, 0x1p-149, -0x1p-149, 0x1p-126, -0x1p-126, 0x1p-24, -0x1p-24,
      0x1p-14, 0x1p-20, 0x1p-1074, -0x1p-1074, 0x1p-1022, 0x1.0p-60,
      65504.0, -65504.0, FLT_MAX, -FLT_MAX, DBL_MAX, -DBL_MAX, 1e-8, -1e-8,
      88.72, 88.7228, 88.73, 89.0, 90.0, -87.3, -87.34, -103.9, -103.97,
      -104.0, -105.0, -150.0, 100.0, -100.0, 709.7, 710.0, -745.0, -746.0,
      9.0, 9.01, 9.02, 3.9, 3.9192, 3.93, 0.625, -0.625, 0.62, 0.63, 0.9999,
      0.99999994, -0.99999994, 0.9999999999999999, -0.9999999999999999,
      1.0000001, 1.5, -1.5, 0.875, 1.25, 0.3466, 0.3467, -0.3466, 0.7071,
      1.4142, 0.29, -0.2929, -0.2930, 0.4142, 20.0, -20.0, 17.33, -17.33,
      27.0, -27.0, 64.0, 44.4, 1e5, -1e5, 1e10, 1e20, -1e20, 1e30, 1e300,
      -1e300, 1048576.0, 1048577.0, -1048577.0, 1048575.5, 3.14159265,
      1.5707963267948966, -1.5707963267948966, 3.141592653589793,
      4.71238898038469, 6.283185307179586, 1e-30, -1e-30, 1e-300, 0.1, -0.1,
      0.33, 10.0, 12.0, 26.5, 5.9, 6.0, 1e-5, -1e-5, 0.5 + 0x1p-20,
      1.0 - 0x1p-11, -1.0 + 0x1p-11, 1.0 - 0x1p-24, -1.0 + 0x1p-24,
      1.0 - 0x1p-53, -1.0 + 0x1p-53};
  nin = 0;
  for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) add_in(edges[i]);
  for (int i = 0; i < 1500; i++) add_in(rng_range(o->lo, o->hi));
  for (int i = 0; i < 600; i++) add_in(rng_range(-4.0, 4.0));
  for (int i = 0; i < 600; i++) add_in(rng_logmag(-40, 12));
  for (int i = 0; i < 300; i++) add_in(rng_logmag(-160, 160));
  for (int i = 0; i < 300; i++) add_in(rng_logmag(-1074, 1024));
  for (int i = 0; i < 300; i++) add_in(rng_range(-1.0, 1.0));
  for (int i = 0; i < 200; i++) add_in(1.0 - ldexp(rng_unit(), -(int)(rng_u64() % 50)));
  for (int i = 0; i < 200; i++) {
    /* any f32 bit pattern (NaNs, subnormals, huge) */
    float f = em_bits_f32((uint32_t)rng_u64());
    add_in(f);
  }
}

static void check_real(const opinfo *o, em_dtype t) {
  em_unary_kernel k = em_cpu_unary_math_kernel(o->op, t);
  CHECK(k != NULL, "%s %s: no kernel", o->name, tname(t));
  if (!k) return;
  build_inputs(o);
  int n = nin;
  size_t es = tsize(t);
  /* one spare element in front for the misaligned run */
  unsigned char *x = malloc((size_t)(n + 1) * es), *y = malloc((size_t)(n + 1) * es);
  unsigned char *y2 = malloc((size_t)(n + 1) * es), *z = malloc((size_t)(n + 1) * es);
  unsigned char *xm = malloc((size_t)(n + 1) * es);
  for (int i = 0; i < n; i++) store_real(t, x, i, inputs[i]);
  k(x, y, n);

  int tol = t == EM_F64 ? o->f64_tol : t == EM_F32 ? (o->vm == 1 ? 2 : 1) : 1;
  double worst = 0;
  for (int i = 0; i < n; i++) {
    double xi = load_real(t, x, i);
    long double r = o->ref((long double)xi);
    double want = round_to(t, r), got = load_real(t, y, i);
    double d = ulp_dist(t, got, want);
    if (d > worst) worst = d;
    CHECK(d <= tol, "%s %s(%a) = %a, want %a (%.0f ulp)", tname(t), o->name, xi,
          got, want, d);
  }
  if (verbose)
    printf("  %-8s %-4s max %g ulp (tol %d) over %d\n", o->name, tname(t), worst,
           tol, n);

  /* misaligned start, odd length: bit-identical to the aligned run */
  int64_t m = n < 1037 ? n : 1037;
  memcpy(xm + es, x, (size_t)m * es);
  k(xm + es, y2 + es, m);
  CHECK(memcmp(y2 + es, y, (size_t)m * es) == 0, "%s %s misaligned run differs",
        o->name, tname(t));
  /* in place (x == y) */
  memcpy(z, x, (size_t)n * es);
  k(z, z, n);
  CHECK(memcmp(z, y, (size_t)n * es) == 0, "%s %s in-place run differs", o->name,
        tname(t));
  /* n = 1 and n = 0 leave the rest alone */
  memset(y2, 0xab, (size_t)2 * es);
  k(x, y2, 1);
  CHECK(memcmp(y2, y, es) == 0 && y2[es] == 0xab, "%s %s n=1", o->name, tname(t));
  memset(y2, 0xab, es);
  k(x, y2, 0);
  CHECK(y2[0] == 0xab && y2[es - 1] == 0xab, "%s %s n=0 wrote", o->name, tname(t));
  free(x);
  free(xm);
  free(y);
  free(y2);
  free(z);
}

/* ---- complex ------------------------------------------------------------- */

static long double complex ref_cexpm1(long double complex z) {
  long double a = creall(z), b = cimagl(z);
  if (!(fabsl(a) < 700 && isfinite(b))) {
    long double complex w = cexpl(z);
    return CMPLXL(creall(w) - 1, cimagl(w));
  }
  long double s = sinl(b / 2);
  return CMPLXL(expm1l(a) * cosl(b) - 2 * s * s, expl(a) * sinl(b));
}
static long double complex ref_clog1p(long double complex z) {
  long double a = creall(z), b = cimagl(z);
  if (fabsl(a) < 0.5L && fabsl(b) < 0.5L)
    return CMPLXL(0.5L * log1pl(2 * a + a * a + b * b), atan2l(b, 1 + a));
  return clogl(CMPLXL(1 + a, b));
}
static long double complex ref_csigmoid(long double complex z) {
  long double complex w = cexpl(-z);
  return CMPLXL(1, 0) / CMPLXL(1 + creall(w), cimagl(w));
}

static long double complex ref_complex(em_op op, long double complex z) {
  switch (op) {
    case EM_OP_exp: return cexpl(z);
    case EM_OP_expm1: return ref_cexpm1(z);
    case EM_OP_log: return clogl(z);
    case EM_OP_log1p: return ref_clog1p(z);
    case EM_OP_sigmoid: return ref_csigmoid(z);
    case EM_OP_cos: return ccosl(z);
    case EM_OP_sin: return csinl(z);
    case EM_OP_tan: return ctanl(z);
    case EM_OP_cosh: return ccoshl(z);
    case EM_OP_sinh: return csinhl(z);
    case EM_OP_tanh: return ctanhl(z);
    case EM_OP_acos: return cacosl(z);
    case EM_OP_asin: return casinl(z);
    case EM_OP_atan: return catanl(z);
    case EM_OP_acosh: return cacoshl(z);
    case EM_OP_asinh: return casinhl(z);
    case EM_OP_atanh: return catanhl(z);
    default: return NAN;
  }
}

/* Same class per component: both NaN, equal infinities, or both finite. */
static int same_class(double g, long double w) {
  if (isnan(w)) return isnan(g);
  if (isinf(w)) return (long double)g == w;
  return isfinite(g);
}

static void check_complex(const opinfo *o, em_dtype t) {
  em_unary_kernel k = em_cpu_unary_math_kernel(o->op, t);
  CHECK(k != NULL, "%s %s: no kernel", o->name, tname(t));
  if (!k) return;
  static const double parts[] = {0.0, -0.0, 1.0, -1.0, 0.5, -2.0, 3.0, 1e-5,
                                 -1e-9, 30.0, INFINITY, -INFINITY, NAN};
  const int np = (int)(sizeof parts / sizeof parts[0]);
  enum { NC = 169 + 3000 };
  double re[NC], im[NC];
  int n = 0;
  for (int i = 0; i < np; i++)
    for (int j = 0; j < np; j++) re[n] = parts[i], im[n++] = parts[j];
  while (n < NC) {
    int kind = n % 3;
    if (kind == 0) re[n] = rng_range(-5, 5), im[n] = rng_range(-5, 5);
    else if (kind == 1) re[n] = rng_range(-1e-3, 1e-3), im[n] = rng_range(-1e-3, 1e-3);
    else re[n] = rng_range(-1.2, 1.2), im[n] = rng_range(-1.2, 1.2);
    n++;
  }
  size_t es = tsize(t);
  unsigned char *x = malloc((size_t)(n + 1) * es), *y = malloc((size_t)(n + 1) * es);
  unsigned char *y2 = malloc((size_t)(n + 1) * es);
  for (int i = 0; i < n; i++) {
    if (t == EM_C64) ((float complex *)x)[i] = CMPLXF((float)re[i], (float)im[i]);
    else ((double complex *)x)[i] = CMPLX(re[i], im[i]);
  }
  k(x, y, n);
  double tol = t == EM_C64 ? 0x1p-22 : 0x1p-44;
  double worst = 0;
  for (int i = 0; i < n; i++) {
    double xr, xi, gr, gi;
    if (t == EM_C64) {
      float complex v = ((float complex *)x)[i], g = ((float complex *)y)[i];
      xr = crealf(v), xi = cimagf(v), gr = crealf(g), gi = cimagf(g);
    } else {
      double complex v = ((double complex *)x)[i], g = ((double complex *)y)[i];
      xr = creal(v), xi = cimag(v), gr = creal(g), gi = cimag(g);
    }
    long double complex w = ref_complex(o->op, CMPLXL(xr, xi));
    long double wr = creall(w), wi = cimagl(w);
    /* references in long double can overflow/underflow where the type does not
     * (and vice versa); compare the value as the type would hold it */
    if (t == EM_C64) wr = (float)wr, wi = (float)wi;
    else wr = (double)wr, wi = (double)wi;
    if (!isfinite(wr) || !isfinite(wi)) {
      CHECK(same_class(gr, wr) && same_class(gi, wi),
            "%s %s(%a%+ai) = %a%+ai, want %La%+Lai", tname(t), o->name, xr, xi,
            gr, gi, wr, wi);
      continue;
    }
    long double dr = (long double)gr - wr, di = (long double)gi - wi;
    long double mag = sqrtl(wr * wr + wi * wi);
    double err = mag > 0 ? (double)(sqrtl(dr * dr + di * di) / mag)
                         : (gr == 0 && gi == 0 ? 0 : 1);
    if (!isfinite(gr) || !isfinite(gi)) err = 1e30;
    if (err > worst) worst = err;
    CHECK(err <= tol, "%s %s(%a%+ai) = %a%+ai, want %La%+Lai (rel %g)", tname(t),
          o->name, xr, xi, gr, gi, wr, wi, err);
  }
  if (verbose)
    printf("  %-8s %-4s max rel %g (tol %g) over %d\n", o->name, tname(t), worst,
           tol, n);
  /* misaligned start + in place */
  unsigned char *xm = malloc((size_t)(n + 1) * es);
  memcpy(xm + es, x, (size_t)1037 * es);
  k(xm + es, y2 + es, 1037);
  free(xm);
  CHECK(memcmp(y2 + es, y, (size_t)1037 * es) == 0, "%s %s misaligned differs",
        o->name, tname(t));
  k(x, x, n);
  CHECK(memcmp(x, y, (size_t)n * es) == 0, "%s %s in-place differs", o->name,
        tname(t));
  k(x, y2, 0);
  free(x);
  free(y);
  free(y2);
}

/* ---- lookup ---------------------------------------------------------------- */

static void check_lookup(void) {
  for (int t = 0; t < EM_DTYPE_COUNT; t++) {
    int is_real = t == EM_F16 || t == EM_BF16 || t == EM_F32 || t == EM_F64;
    int is_c = t == EM_C64 || t == EM_C128;
    for (int i = 0; i < NOPS; i++) {
      em_unary_kernel k = em_cpu_unary_math_kernel(ops[i].op, (em_dtype)t);
      int want = is_real || (is_c && op_has_complex(ops[i].op));
      CHECK((k != NULL) == want, "lookup %s on dtype %d: %p", ops[i].name, t,
            (void *)(uintptr_t)k);
    }
    /* ops of other files */
    static const em_op others[] = {EM_OP_add, EM_OP_sqrt, EM_OP_rsqrt,
                                   EM_OP_cbrt, EM_OP_abs, EM_OP_negate,
                                   EM_OP_sum, EM_OP_is_nan, EM_OP_as_type};
    for (size_t j = 0; j < sizeof others / sizeof others[0]; j++)
      CHECK(em_cpu_unary_math_kernel(others[j], (em_dtype)t) == NULL,
            "lookup of foreign op %d on dtype %d", (int)others[j], t);
  }
}

/* f32 trig: a kernel chunk takes the vector path only when all of its |x|
 * are <= 2^20, so check runs made only of large-but-vectorisable inputs,
 * runs just past the bound, and one mixed run, against long double. */
static void check_trig_ranges(void) {
  enum { N = 1037 };
  static float x[N], y[N];
  const em_op tops[] = {EM_OP_sin, EM_OP_cos, EM_OP_tan};
  long double (*refs[])(long double) = {sinl, cosl, tanl};
  for (int o = 0; o < 3; o++) {
    em_unary_kernel k = em_cpu_unary_math_kernel(tops[o], EM_F32);
    for (int run = 0; run < 4; run++) {
      for (int i = 0; i < N; i++) {
        double v = run == 0   ? rng_range(-0x1p20, 0x1p20)
                   : run == 1 ? rng_logmag(15, 20)
                   : run == 2 ? rng_logmag(20, 40)
                              : (i == 700 ? 3e30 : rng_logmag(-20, 20));
        x[i] = (float)v;
      }
      if (run == 0) x[0] = 0x1p20f, x[1] = -0x1p20f, x[2] = 0x1.fffffep19f;
      k(x, y, N);
      for (int i = 0; i < N; i++) {
        double want = (float)refs[o]((long double)x[i]);
        CHECK(ulp_dist(EM_F32, y[i], want) <= 1, "f32 op %d (%a) = %a, want %a",
              (int)tops[o], x[i], y[i], want);
      }
    }
  }
}

/* ---- hand-checked special values ----------------------------------------- */

static float run32(em_op op, float v) {
  float out;
  em_cpu_unary_math_kernel(op, EM_F32)(&v, &out, 1);
  return out;
}
static double run64(em_op op, double v) {
  double out;
  em_cpu_unary_math_kernel(op, EM_F64)(&v, &out, 1);
  return out;
}
static int same_bits32(float a, float b) {
  return (isnan(a) && isnan(b)) || em_f32_bits(a) == em_f32_bits(b);
}

static void check_specials(void) {
  /* f64: also checked in double where the value is the same there */
  struct { em_op op; float x, want; } s[] = {
      {EM_OP_exp, 0.0f, 1.0f}, {EM_OP_exp, -INFINITY, 0.0f},
      {EM_OP_exp, INFINITY, INFINITY}, {EM_OP_exp, NAN, NAN},
      {EM_OP_exp, 89.0f, INFINITY}, {EM_OP_exp, 88.8f, INFINITY},
      {EM_OP_exp, -104.0f, 0.0f}, {EM_OP_exp, -1000.0f, 0.0f},
      {EM_OP_exp, 1000.0f, INFINITY}, {EM_OP_exp, -0.0f, 1.0f},
      {EM_OP_expm1, -0.0f, -0.0f}, {EM_OP_expm1, 0.0f, 0.0f},
      {EM_OP_expm1, -INFINITY, -1.0f}, {EM_OP_expm1, INFINITY, INFINITY},
      {EM_OP_expm1, -50.0f, -1.0f}, {EM_OP_expm1, 100.0f, INFINITY},
      {EM_OP_expm1, NAN, NAN}, {EM_OP_log, 0.0f, -INFINITY},
      {EM_OP_log, -0.0f, -INFINITY}, {EM_OP_log, -1.0f, NAN},
      {EM_OP_log, 1.0f, 0.0f}, {EM_OP_log, INFINITY, INFINITY},
      {EM_OP_log, -INFINITY, NAN}, {EM_OP_log, NAN, NAN},
      {EM_OP_log1p, -1.0f, -INFINITY}, {EM_OP_log1p, -2.0f, NAN},
      {EM_OP_log1p, -0.0f, -0.0f}, {EM_OP_log1p, INFINITY, INFINITY},
      {EM_OP_log1p, -INFINITY, NAN}, {EM_OP_log1p, 0x1p-140f, 0x1p-140f},
      {EM_OP_sigmoid, 0.0f, 0.5f}, {EM_OP_sigmoid, -0.0f, 0.5f},
      {EM_OP_sigmoid, INFINITY, 1.0f}, {EM_OP_sigmoid, -INFINITY, 0.0f},
      {EM_OP_sigmoid, 1000.0f, 1.0f}, {EM_OP_sigmoid, -1000.0f, 0.0f},
      {EM_OP_sigmoid, NAN, NAN}, {EM_OP_tanh, INFINITY, 1.0f},
      {EM_OP_tanh, -INFINITY, -1.0f}, {EM_OP_tanh, -0.0f, -0.0f},
      {EM_OP_tanh, 20.0f, 1.0f}, {EM_OP_tanh, NAN, NAN},
      {EM_OP_erf, INFINITY, 1.0f}, {EM_OP_erf, -INFINITY, -1.0f},
      {EM_OP_erf, -0.0f, -0.0f}, {EM_OP_erf, 5.0f, 1.0f},
      {EM_OP_erf, -4.0f, -1.0f}, {EM_OP_erf, NAN, NAN},
      {EM_OP_erfc, INFINITY, 0.0f}, {EM_OP_erfc, -INFINITY, 2.0f},
      {EM_OP_erf_inv, 1.0f, INFINITY}, {EM_OP_erf_inv, -1.0f, -INFINITY},
      {EM_OP_erf_inv, 1.5f, NAN}, {EM_OP_erf_inv, -2.0f, NAN},
      {EM_OP_erf_inv, -0.0f, -0.0f}, {EM_OP_erf_inv, INFINITY, NAN},
      {EM_OP_erf_inv, NAN, NAN}, {EM_OP_sin, -0.0f, -0.0f},
      {EM_OP_sin, INFINITY, NAN}, {EM_OP_cos, -INFINITY, NAN},
      {EM_OP_tan, -0.0f, -0.0f}, {EM_OP_cos, 0.0f, 1.0f},
      {EM_OP_acos, 2.0f, NAN}, {EM_OP_atanh, 1.0f, INFINITY},
      {EM_OP_acosh, 0.5f, NAN}, {EM_OP_asinh, -0.0f, -0.0f},
  };
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
    float g = run32(s[i].op, s[i].x);
    CHECK(same_bits32(g, s[i].want), "f32 op %d (%a) = %a, want %a",
          (int)s[i].op, s[i].x, g, s[i].want);
    /* in f64 the thresholds move, so only the values that hold there too */
    int f64_same = !(fabsf(s[i].x) >= 20.0f && fabsf(s[i].x) < INFINITY) &&
                   !(s[i].op == EM_OP_erf && fabsf(s[i].x) >= 4.0f &&
                     fabsf(s[i].x) < INFINITY) &&
                   s[i].x != 0x1p-140f;
    if (f64_same) {
      double g64 = run64(s[i].op, s[i].x);
      CHECK((isnan(g64) && isnan(s[i].want)) ||
                (g64 == s[i].want && !signbit(g64) == !signbit(s[i].want)),
            "f64 op %d (%a) = %a, want %a", (int)s[i].op, s[i].x, g64, s[i].want);
    }
  }
  /* tiny results stay (subnormal f32) instead of flushing to 0 */
  float sg = run32(EM_OP_sigmoid, -100.0f);
  CHECK(sg > 0 && sg < 1e-43f, "sigmoid(-100) = %a", sg);
  float e103 = run32(EM_OP_exp, -103.0f);
  CHECK(e103 > 0 && e103 < 0x1p-126f, "exp(-103) = %a", e103);
  CHECK(isfinite(run32(EM_OP_exp, 88.72f)), "exp(88.72) overflowed");
  /* erf_inv known values (to 2 ulp in f64) */
  struct { double y, x; } ei[] = {{0.5, 0.47693627620446987338},
                                  {0.9, 1.1630871536766741628},
                                  {0.999, 2.3267537655135244939},
                                  {-0.5, -0.47693627620446987338},
                                  {1e-10, 8.8622692545275801365e-11}};
  for (size_t i = 0; i < sizeof ei / sizeof ei[0]; i++) {
    double g = run64(EM_OP_erf_inv, ei[i].y);
    CHECK(ulp_dist(EM_F64, g, ei[i].x) <= 2, "erf_inv(%g) = %.17g, want %.17g",
          ei[i].y, g, ei[i].x);
    float g32 = run32(EM_OP_erf_inv, (float)ei[i].y);
    double want32 = (double)(float)ref_erfinv((float)ei[i].y);
    CHECK(ulp_dist(EM_F32, g32, want32) <= 1, "f32 erf_inv(%g) = %a", ei[i].y, g32);
  }
  /* round trip erf(erf_inv(y)) for f64 over (-1, 1) */
  double worst = 0;
  for (int i = 0; i < 20000; i++) {
    double y = rng_range(-1, 1);
    double x = run64(EM_OP_erf_inv, y);
    double back = fabs(y) < 0.5 ? erf(x) : copysign(1.0 - erfc(fabs(x)), x);
    double e = fabs(back - y) / fmax(fabs(y), 1e-300);
    if (e > worst) worst = e;
  }
  CHECK(worst < 4e-16, "erf(erf_inv(y)) round trip rel err %g", worst);
  /* complex special values */
  double complex cz = CMPLX(0.0, 0.0), cw;
  em_cpu_unary_math_kernel(EM_OP_exp, EM_C128)(&cz, &cw, 1);
  CHECK(creal(cw) == 1 && cimag(cw) == 0, "cexp(0)");
  em_cpu_unary_math_kernel(EM_OP_log, EM_C128)(&cz, &cw, 1);
  CHECK(creal(cw) == -INFINITY && cimag(cw) == 0, "clog(0) = %g%+gi", creal(cw),
        cimag(cw));
  cz = CMPLX(-1.0, -0.0);
  em_cpu_unary_math_kernel(EM_OP_log, EM_C128)(&cz, &cw, 1);
  CHECK(creal(cw) == 0 && cimag(cw) == -3.141592653589793, "clog(-1-0i) = %g%+gi",
        creal(cw), cimag(cw));
  cz = CMPLX(-2.0, -0.0);
  em_cpu_unary_math_kernel(EM_OP_log1p, EM_C128)(&cz, &cw, 1);
  CHECK(creal(cw) == 0 && cimag(cw) == -3.141592653589793, "clog1p(-2-0i) = %g%+gi",
        creal(cw), cimag(cw));
  cz = CMPLX(1e-20, 1e-20);
  em_cpu_unary_math_kernel(EM_OP_expm1, EM_C128)(&cz, &cw, 1);
  CHECK(creal(cw) == 1e-20 && fabs(cimag(cw) - 1e-20) <= 1e-36,
        "cexpm1(1e-20(1+i)) = %g%+gi", creal(cw), cimag(cw));
  float complex fz = CMPLXF(0.0f, 1.0f), fw;
  em_cpu_unary_math_kernel(EM_OP_sigmoid, EM_C64)(&fz, &fw, 1);
  /* 1 / (1 + e^-i) = 0.5 + 0.5 i tan(1/2) */
  CHECK(fabsf(crealf(fw) - 0.5f) < 1e-7f && fabsf(cimagf(fw) - 0.27315124f) < 1e-7f,
        "csigmoid(i) = %g%+gi", crealf(fw), cimagf(fw));
}

/* ---- f32 fast paths: fractional ulp error against double libm ------------ */

static double sigmoid_d(double x) {
  if (x >= 0) return 1.0 / (1.0 + exp(-x));
  double e = exp(x);
  return e / (1.0 + e);
}

static double ulp_err_f32(float got, double ref) {
  if (isnan(ref)) return isnan(got) ? 0 : 1e30;
  if (isnan(got)) return 1e30;
  if (isinf(got)) {
    if (isinf(ref)) return got == ref ? 0 : 1e30;
    /* +-inf is right where ref rounds past FLT_MAX */
    return fabs(ref) >= 0x1.ffffffp127 && !signbit(got) == !signbit(ref) ? 0 : 1e30;
  }
  if (isinf(ref)) return 1e30;
  if (ref == 0 && got == 0 && !signbit(got) != !signbit(ref)) return 1e30;
  int e = ref == 0 ? -126 : ilogb(ref);
  if (e < -126) e = -126;
  return fabs((double)got - ref) / ldexp(1.0, e - 23);
}

typedef struct {
  em_op op;
  const char *name;
  double (*ref)(double);
  double tol;
  double lo, hi;
  int trig; /* range samples are +-2^[-30, 20] (the vector path's domain) */
} sweepinfo;

static const sweepinfo sweeps[] = {
    {EM_OP_exp, "exp", exp, 2.0, -105, 90, 0},
    {EM_OP_expm1, "expm1", expm1, 2.0, -20, 90, 0},
    {EM_OP_log, "log", log, 2.0, 0, 4, 0},
    {EM_OP_log1p, "log1p", log1p, 2.0, -1, 4, 0},
    /* exhaustive max 1.97 ulp (exp error + the division), so a margin */
    {EM_OP_sigmoid, "sigmoid", sigmoid_d, 2.5, -105, 20, 0},
    {EM_OP_tanh, "tanh", tanh, 2.0, -10, 10, 0},
    {EM_OP_erf, "erf", erf, 2.0, -4.5, 4.5, 0},
    {EM_OP_sin, "sin", sin, 0.6, -100, 100, 1},
    {EM_OP_cos, "cos", cos, 0.6, -100, 100, 1},
    {EM_OP_tan, "tan", tan, 0.6, -100, 100, 1},
};
#define NSWEEPS ((int)(sizeof sweeps / sizeof sweeps[0]))

#define SWEEP_CHUNK 65536
static float sw_x[SWEEP_CHUNK], sw_y[SWEEP_CHUNK];

static void sweep_chunk(const sweepinfo *s, em_unary_kernel k, int64_t m,
                        double *worst, float *worst_at) {
  k(sw_x, sw_y, m);
  for (int64_t i = 0; i < m; i++) {
    double e = ulp_err_f32(sw_y[i], s->ref((double)sw_x[i]));
    if (e > *worst) *worst = e, *worst_at = sw_x[i];
  }
}

/* Random bit patterns + uniform samples in the op's busy range (count of
 * each), or all 2^32 floats when exhaustive. */
static void sweep(const sweepinfo *s, int64_t count, int exhaustive) {
  em_unary_kernel k = em_cpu_unary_math_kernel(s->op, EM_F32);
  double worst = 0;
  float at = 0;
  if (exhaustive) {
    for (uint64_t b0 = 0; b0 < (1ull << 32); b0 += SWEEP_CHUNK) {
      /* trig beyond 2^20 is (float)libm(double), not worth hours here */
      if (s->trig && (b0 & 0x7fffffffu) >= 0x49800000u) continue;
      for (int i = 0; i < SWEEP_CHUNK; i++) sw_x[i] = em_bits_f32((uint32_t)(b0 + (uint64_t)i));
      sweep_chunk(s, k, SWEEP_CHUNK, &worst, &at);
    }
  } else {
    for (int64_t done = 0; done < 2 * count; done += SWEEP_CHUNK) {
      int uniform = done >= count;
      for (int i = 0; i < SWEEP_CHUNK; i++)
        sw_x[i] = !uniform  ? em_bits_f32((uint32_t)rng_u64())
                  : s->trig ? (float)rng_logmag(-30, 20)
                            : (float)rng_range(s->lo, s->hi);
      sweep_chunk(s, k, SWEEP_CHUNK, &worst, &at);
    }
  }
  printf("  f32 %-8s max error %.3f ulp (at %a) over %s\n", s->name, worst, at,
         !exhaustive ? "random + range samples"
         : s->trig   ? "all inputs with |x| <= 2^20"
                     : "all 2^32 inputs");
  CHECK(worst <= s->tol, "f32 %s max error %.3f ulp at %a", s->name, worst, at);
}

/* ---- benchmark (printed only) -------------------------------------------- */

static double now_s(void) {
  struct timespec ts;
  timespec_get(&ts, TIME_UTC);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
static void __attribute__((noinline)) libm_expf_loop(const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = expf(x[i]);
}
static void __attribute__((noinline)) libm_erff_loop(const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = erff(x[i]);
}
static void __attribute__((noinline)) scale_loop(const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = x[i] * 2.0f;
}
/* Best of reps over n elements, processed in tiles of `tile` elements
 * (tile < n: the same cache-resident tile again and again, as the fused
 * tile evaluator runs kernels). */
static double best_of(int reps, void (*f)(const float *, float *, int64_t),
                      em_unary_kernel k, const float *x, float *y, int64_t n,
                      int64_t tile) {
  double best = 1e9;
  for (int r = 0; r < reps; r++) {
    double t = now_s();
    for (int64_t i = 0; i < n; i += tile) {
      if (f) f(x, y, tile);
      else k(x, y, tile);
    }
    t = now_s() - t;
    if (t < best) best = t;
  }
  return best;
}
static void bench(void) {
  const int64_t n = (int64_t)1 << 24, tile = 4096;
  float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
  if (!x || !y) return;
  for (int64_t i = 0; i < n; i++) x[i] = (float)rng_range(-10, 10);
  em_unary_kernel ke = em_cpu_unary_math_kernel(EM_OP_exp, EM_F32);
  em_unary_kernel kf = em_cpu_unary_math_kernel(EM_OP_erf, EM_F32);
  ke(x, y, n); /* touch the pages */
  for (int pass = 0; pass < 2; pass++) {
    int64_t tl = pass ? tile : n;
    double tc = best_of(5, scale_loop, NULL, x, y, n, tl);
    double te = best_of(5, NULL, ke, x, y, n, tl);
    double tle = best_of(3, libm_expf_loop, NULL, x, y, n, tl);
    double tf = best_of(5, NULL, kf, x, y, n, tl);
    double tlf = best_of(3, libm_erff_loop, NULL, x, y, n, tl);
    printf("bench 16M f32, 1 thread, %s: exp %.2f ms vs libm expf %.2f ms "
           "(%.1fx); erf %.2f ms vs libm erff %.2f ms (%.1fx); y = 2x %.2f ms\n",
           pass ? "4096-element tiles in cache" : "one pass over memory",
           te * 1e3, tle * 1e3, tle / te, tf * 1e3, tlf * 1e3, tlf / tf, tc * 1e3);
  }
  free(x);
  free(y);
}

int main(int argc, char **argv) {
  const char *v = getenv("EM_TEST_VERBOSE");
  verbose = v && *v && *v != '0';
  const char *only = NULL;
  int exhaustive = 0;
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--exhaustive", 12) == 0) {
      exhaustive = 1;
      if (argv[i][12] == '=') only = argv[i] + 13;
    }
  }
  if (exhaustive) {
    for (int i = 0; i < NSWEEPS; i++)
      if (!only || strcmp(only, sweeps[i].name) == 0) sweep(&sweeps[i], 0, 1);
    return TEST_SUMMARY();
  }

  check_lookup();
  for (int i = 0; i < NOPS; i++) {
    for (size_t j = 0; j < sizeof real_types / sizeof real_types[0]; j++)
      check_real(&ops[i], real_types[j]);
    if (op_has_complex(ops[i].op)) {
      check_complex(&ops[i], EM_C64);
      check_complex(&ops[i], EM_C128);
    }
  }
  check_trig_ranges();
  check_specials();
  printf("f32 ulp sweep against double libm:\n");
  for (int i = 0; i < NSWEEPS; i++) sweep(&sweeps[i], (int64_t)1 << 21, 0);
  bench();
  return TEST_SUMMARY();
}
