/* unary.c — the CPU unary dispatcher (em_unary_out_dtype, em_cpu_unary_kernel)
 * and the exact unary kernels; transcendental ops come from unary_math.c. */
#include <complex.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../core/half.h"
#include "cpu-kernels.h"
#include "simd.h"
#include "subbyte.h"
#include "unary-math.h"

/* Semantics (Nx 0.13), decided from Nx's docs and BinaryBackend:
 *  - ints: abs/negate wrap (abs(INT_MIN) == INT_MIN); abs of unsigned and
 *    ceil/floor/round of any int are the identity; sign is -1/0/1.
 *  - floats: round is half away from zero; sign(±0) = ±0, sign(NaN) = NaN;
 *    floor/ceil/round keep the sign of zero (IEEE, as EXLA does).
 *  - complex: abs gives the real magnitude; sign(z) = z/|z| (0 at 0, as
 *    XLA); sqrt is the principal root (C99 Annex G); cbrt is Nx's polar
 *    form cbrt(|z|)·e^(i·arg(z)/3); ceil/floor/round are undefined.
 *  - conjugate of a real x is x - 0i in to_complex(t) (f64 -> c128, others
 *    -> c64); real of an int is as_type(f32); imag of a real type is zeros
 *    of to_floating(t).
 *  - sqrt rsqrt cbrt and the transcendental ops give to_floating(t): ints
 *    are computed in f64 and rounded to f32, like Nx's BinaryBackend. */

/* The transcendental ops, which unary_math.c implements; Nx rejects the
 * erf family on complex inputs. */
#define MATH_OPS_ANY(X)                                                   \
  X(exp) X(expm1) X(log) X(log1p) X(sigmoid) X(cos) X(sin) X(tan) X(cosh) \
  X(sinh) X(tanh) X(acos) X(asin) X(atan) X(acosh) X(asinh) X(atanh)
#define MATH_OPS(X) MATH_OPS_ANY(X) X(erf) X(erfc) X(erf_inv)

/* ---- dtype classes ------------------------------------------------------ */

static int kind_of(em_dtype t) {
  switch (t) {
#define EM_X_(N, n, b, k) \
  case EM_##N:            \
    return k;
    EM_DTYPES(EM_X_)
#undef EM_X_
    default: return 0;
  }
}
static size_t size_of(em_dtype t) {
  switch (t) {
#define EM_X_(N, n, b, k) \
  case EM_##N:            \
    return (b) / 8;
    EM_DTYPES(EM_X_)
#undef EM_X_
    default: return 0;
  }
}

static int to_floating(em_dtype t) {
  return kind_of(t) == 'u' || kind_of(t) == 's' ? EM_F32 : (int)t;
}

int em_unary_out_dtype(em_op op, em_dtype t) {
  if ((unsigned)t >= EM_DTYPE_COUNT) return -1;
  int k = kind_of(t);
  bool is_int = k == 'u' || k == 's', cplx = k == 'c';
  switch (op) {
    case EM_OP_erf:
    case EM_OP_erfc:
    case EM_OP_erf_inv:
      return cplx ? -1 : to_floating(t);
#define EM_X_(o) case EM_OP_##o:
      MATH_OPS_ANY(EM_X_)
#undef EM_X_
    case EM_OP_sqrt:
    case EM_OP_rsqrt:
    case EM_OP_cbrt:
      return to_floating(t);
    case EM_OP_abs:
      return t == EM_C64 ? EM_F32 : t == EM_C128 ? EM_F64 : (int)t;
    case EM_OP_bitwise_not:
    case EM_OP_count_leading_zeros:
    case EM_OP_population_count:
      return is_int ? (int)t : -1;
    case EM_OP_ceil:
    case EM_OP_floor:
    case EM_OP_round:
      return cplx ? -1 : (int)t;
    case EM_OP_conjugate:
      return cplx ? (int)t : t == EM_F64 ? EM_C128 : EM_C64;
    case EM_OP_negate:
    case EM_OP_sign:
      return t;
    case EM_OP_real:
    case EM_OP_imag:
      return t == EM_C64 ? EM_F32 : t == EM_C128 ? EM_F64 : to_floating(t);
    case EM_OP_is_nan:
    case EM_OP_is_infinity:
    case EM_OP_logical_not:
      return EM_U8;
    default:
      return -1;
  }
}

/* ---- loop shapes ---------------------------------------------------------
 * EXPR computes the output element from the input element `v`. Same-typed
 * kernels may run in place (x == y); that case gets its own loop so the
 * other one can promise no aliasing with restrict. */
#define EW_SAME(NAME, CT, EXPR)                                    \
  EM_CLONES static void NAME(const void *xv, void *yv, int64_t n) { \
    if (xv == yv) {                                                \
      CT *p = (CT *)yv;                                            \
      for (int64_t i = 0; i < n; i++) {                            \
        CT v = p[i];                                               \
        p[i] = (EXPR);                                             \
      }                                                            \
      return;                                                      \
    }                                                              \
    const CT *restrict x = (const CT *)xv;                         \
    CT *restrict y = (CT *)yv;                                     \
    for (int64_t i = 0; i < n; i++) {                              \
      CT v = x[i];                                                 \
      y[i] = (EXPR);                                               \
    }                                                              \
  }

#define EW_CHANGE(NAME, CTI, CTO, EXPR)                            \
  EM_CLONES static void NAME(const void *xv, void *yv, int64_t n) { \
    const CTI *restrict x = (const CTI *)xv;                       \
    CTO *restrict y = (CTO *)yv;                                   \
    for (int64_t i = 0; i < n; i++) {                              \
      CTI v = x[i];                                                \
      y[i] = (EXPR);                                               \
    }                                                              \
  }

/* Real -> complex (conjugate): re = EXPR, im = -0 (Nx: Complex.new(x, -0.0)). */
#define EW_TO_CPLX(NAME, CTI, FT, EXPR)                            \
  EM_CLONES static void NAME(const void *xv, void *yv, int64_t n) { \
    const CTI *restrict x = (const CTI *)xv;                       \
    FT *restrict y = (FT *)yv;                                     \
    for (int64_t i = 0; i < n; i++) {                              \
      CTI v = x[i];                                                \
      y[2 * i] = (EXPR);                                           \
      y[2 * i + 1] = -(FT)0;                                       \
    }                                                              \
  }

#define ID(v) (v)

/* ---- integers ----------------------------------------------------------- */

static inline unsigned clz_8(uint32_t u) {
  return u ? (unsigned)__builtin_clz(u) - 24u : 8u;
}
static inline unsigned clz_16(uint32_t u) {
  return u ? (unsigned)__builtin_clz(u) - 16u : 16u;
}
static inline unsigned clz_32(uint32_t u) {
  return u ? (unsigned)__builtin_clz(u) : 32u;
}
static inline unsigned clz_64(uint64_t u) {
  return u ? (unsigned)__builtin_clzll(u) : 64u;
}
/* SWAR popcount: vectorises without a vector popcount instruction. */
static inline unsigned popc_32(uint32_t u) {
  u = u - ((u >> 1) & 0x55555555u);
  u = (u & 0x33333333u) + ((u >> 2) & 0x33333333u);
  u = (u + (u >> 4)) & 0x0f0f0f0fu;
  return (u * 0x01010101u) >> 24;
}
static inline unsigned popc_64(uint64_t u) {
  u = u - ((u >> 1) & 0x5555555555555555ull);
  u = (u & 0x3333333333333333ull) + ((u >> 2) & 0x3333333333333333ull);
  u = (u + (u >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return (unsigned)((u * 0x0101010101010101ull) >> 56);
}
static inline unsigned popc_8(uint32_t u) { return popc_32(u); }
static inline unsigned popc_16(uint32_t u) { return popc_32(u); }

/* X(dtype, C type, unsigned C type, bits) */
#define UINT_T(X)                                                     \
  X(u8, uint8_t, uint8_t, 8) X(u16, uint16_t, uint16_t, 16)           \
  X(u32, uint32_t, uint32_t, 32) X(u64, uint64_t, uint64_t, 64)
#define SINT_T(X)                                                     \
  X(s8, int8_t, uint8_t, 8) X(s16, int16_t, uint16_t, 16)             \
  X(s32, int32_t, uint32_t, 32) X(s64, int64_t, uint64_t, 64)

/* Arithmetic runs in the unsigned type (wraps, never overflows); the
 * conversion back to a signed type is modulo 2^bits in GCC. */
#define INT_KERNELS(DT, CT, UT, W)                                          \
  EW_SAME(k_negate_##DT, CT, (CT)(UT)(0u - (UT)v))                          \
  EW_SAME(k_bitwise_not_##DT, CT, (CT)(UT) ~(UT)v)                          \
  EW_SAME(k_count_leading_zeros_##DT, CT, (CT)clz_##W((UT)v))               \
  EW_SAME(k_population_count_##DT, CT, (CT)popc_##W((UT)v))                 \
  EW_CHANGE(k_logical_not_##DT, CT, uint8_t, (uint8_t)(v == 0))             \
  EW_CHANGE(k_sqrt_##DT, CT, float, (float)sqrt((double)v))                 \
  EW_CHANGE(k_rsqrt_##DT, CT, float, (float)(1.0 / sqrt((double)v)))       \
  EW_CHANGE(k_cbrt_##DT, CT, float, (float)cbrt((double)v))                 \
  EW_TO_CPLX(k_conjugate_##DT, CT, float, (float)v)
UINT_T(INT_KERNELS)
SINT_T(INT_KERNELS)

#define UINT_SIGN(DT, CT, UT, W) EW_SAME(k_sign_##DT, CT, (CT)(v != 0))
UINT_T(UINT_SIGN)
/* abs: (v ^ m) - m with m all ones for negatives, in the unsigned type. */
#define SINT_EXTRA(DT, CT, UT, W)                                          \
  EW_SAME(k_sign_##DT, CT, (CT)((v > 0) - (v < 0)))                        \
  EW_SAME(k_abs_##DT, CT,                                                  \
          (CT)(UT)(((UT)v ^ (UT)(0u - (UT)(v < 0))) - (UT)(0u - (UT)(v < 0))))
SINT_T(SINT_EXTRA)

/* ---- floats ------------------------------------------------------------- */

/* c ? a : b on the bit patterns. A ?: between FP values lets GCC put the
 * FP work of an arm behind a branch, which it will not if-convert (FP ops
 * may trap), so the loop would stay scalar; masks keep it vectorised. */
static inline float sel_f(int c, float a, float b) {
  uint32_t m = 0u - (uint32_t)c;
  return em_bits_f32((em_f32_bits(a) & m) | (em_f32_bits(b) & ~m));
}
static inline double sel_d(int c, double a, double b) {
  uint64_t m = 0u - (uint64_t)c;
  return em_bits_f64((em_f64_bits(a) & m) | (em_f64_bits(b) & ~m));
}

/* floor / ceil / round without libm calls (those do not vectorise while
 * FP exceptions are honoured): (a + 2^p) - 2^p rounds |x| < 2^p to an
 * integer, then fix-ups; |x| >= 2^p, inf and NaN are already integral.
 * Every result has the sign of x (floor(-0.5) = -1, ceil(-0.5) = -0). */
#define ROUNDING(S, FT, ABS, COPYSIGN, BIG)                            \
  static inline FT trunc_abs_##S(FT a) {                               \
    FT r = (a + BIG) - BIG;                                            \
    return r - sel_##S(r > a, 1, 0);                                   \
  }                                                                    \
  static inline FT floor_##S(FT x) {                                   \
    FT a = ABS(x), t = trunc_abs_##S(a);                               \
    FT r = t + sel_##S(x < 0 && t != a, 1, 0);                         \
    return sel_##S(a < BIG, COPYSIGN(r, x), x);                        \
  }                                                                    \
  static inline FT ceil_##S(FT x) {                                    \
    FT a = ABS(x), t = trunc_abs_##S(a);                               \
    FT r = t + sel_##S(x > 0 && t != a, 1, 0);                         \
    return sel_##S(a < BIG, COPYSIGN(r, x), x);                        \
  }                                                                    \
  static inline FT round_##S(FT x) {                                   \
    FT a = ABS(x), t = trunc_abs_##S(a);                               \
    FT r = t + sel_##S(a - t >= (FT)0.5, 1, 0); /* a - t is exact */   \
    return sel_##S(a < BIG, COPYSIGN(r, x), x);                        \
  }                                                                    \
  static inline FT sign_##S(FT x) {                                    \
    return sel_##S(x > 0, 1, sel_##S(x < 0, -1, x));                   \
  }
ROUNDING(f, float, fabsf, copysignf, 0x1p23f)
ROUNDING(d, double, fabs, copysign, 0x1p52)

static inline float sqrt_f(float x) { return sqrtf(x); }
static inline double sqrt_d(double x) { return sqrt(x); }
static inline float rsqrt_f(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt_d(double x) { return 1.0 / sqrt(x); }
/* f64 cube root: libm's cbrt (a few ulp off in glibc) plus one Newton step
 * whose residual x - y^3 is computed exactly with fma, which makes it
 * correctly rounded but for near-ties. |x| beyond 2^±960 is scaled by
 * 2^∓960 (a cube) so that y^3 neither overflows nor goes subnormal. */
static inline double cbrt_d(double x) {
  double ax = fabs(x);
  double k = ax > 0x1p960 ? 0x1p-960 : ax < 0x1p-960 ? 0x1p960 : 1;
  double kr = ax > 0x1p960 ? 0x1p320 : ax < 0x1p-960 ? 0x1p-320 : 1;
  double xs = x * k, y = cbrt(xs);
  double y2 = y * y, e2 = fma(y, y, -y2);
  double y3 = y2 * y, e3 = fma(y2, y, -y3);
  double r = ((xs - y3) - e3) - e2 * y; /* xs - y^3; xs - y3 is exact */
  double c = y + r / (3 * y2);
  return (isfinite(y) && y != 0 ? c : y) * kr;
}
/* f32 cube root in f64: a bit-level first guess (within a few %), then two
 * Halley steps (cubic convergence) reach ~1e-13, so the final rounding to
 * f32 is right; 0, inf and NaN pass through. Vectorises, unlike cbrtf. */
static inline float cbrt_f(float x) {
  double d = fabs((double)x);
  uint32_t hi = (uint32_t)(em_f64_bits(d) >> 32); /* Kahan's guess */
  double y = em_bits_f64((uint64_t)(hi / 3u + 715094163u) << 32);
  double y3 = y * y * y;
  y = y * (y3 + 2.0 * d) / (2.0 * y3 + d);
  y3 = y * y * y;
  y = y * (y3 + 2.0 * d) / (2.0 * y3 + d);
  return sel_f((d > 0) & (d < (double)INFINITY), copysignf((float)y, x), x);
}

/* X(dtype, C type, compute type, load, store, suffix) */
#define FLOAT_T(X)                                               \
  X(f16, uint16_t, float, em_f16_to_f32, em_f32_to_f16, f)       \
  X(bf16, uint16_t, float, em_bf16_to_f32, em_f32_to_bf16, f)    \
  X(f32, float, float, ID, ID, f) X(f64, double, double, ID, ID, d)

#define FLOAT_KERNELS(DT, CT, FT, LD, ST, S)                   \
  EW_SAME(k_floor_##DT, CT, ST(floor_##S(LD(v))))              \
  EW_SAME(k_ceil_##DT, CT, ST(ceil_##S(LD(v))))                \
  EW_SAME(k_round_##DT, CT, ST(round_##S(LD(v))))              \
  EW_SAME(k_sign_##DT, CT, ST(sign_##S(LD(v))))                \
  EW_SAME(k_sqrt_##DT, CT, ST(sqrt_##S(LD(v))))                \
  EW_SAME(k_rsqrt_##DT, CT, ST(rsqrt_##S(LD(v))))              \
  EW_SAME(k_cbrt_##DT, CT, ST(cbrt_##S(LD(v))))                \
  EW_TO_CPLX(k_conjugate_##DT, CT, FT, LD(v))
FLOAT_T(FLOAT_KERNELS)

/* abs, negate and the predicates work on the bits of f16/bf16 (exact, and
 * NaN payloads survive). X(dtype, exponent-all-ones pattern) */
#define HALF_T(X) X(f16, 0x7c00u) X(bf16, 0x7f80u)
#define HALF_KERNELS(DT, INF)                                                \
  EW_SAME(k_abs_##DT, uint16_t, (uint16_t)(v & 0x7fffu))                     \
  EW_SAME(k_negate_##DT, uint16_t, (uint16_t)(v ^ 0x8000u))                  \
  EW_CHANGE(k_is_nan_##DT, uint16_t, uint8_t, (uint8_t)((v & 0x7fffu) > INF)) \
  EW_CHANGE(k_is_infinity_##DT, uint16_t, uint8_t,                           \
            (uint8_t)((v & 0x7fffu) == INF))                                 \
  EW_CHANGE(k_logical_not_##DT, uint16_t, uint8_t, (uint8_t)((v & 0x7fffu) == 0))
HALF_T(HALF_KERNELS)

#define FULL_T(X) X(f32, float, fabsf) X(f64, double, fabs)
#define FULL_KERNELS(DT, FT, ABS)                                          \
  EW_SAME(k_abs_##DT, FT, ABS(v))                                          \
  EW_SAME(k_negate_##DT, FT, -v)                                           \
  EW_CHANGE(k_is_nan_##DT, FT, uint8_t, (uint8_t)(v != v))                 \
  EW_CHANGE(k_is_infinity_##DT, FT, uint8_t,                               \
            (uint8_t)(ABS(v) == (FT)INFINITY))                             \
  EW_CHANGE(k_logical_not_##DT, FT, uint8_t, (uint8_t)(v == 0))
FULL_T(FULL_KERNELS)

/* ---- complex -------------------------------------------------------------
 * Buffers are (re, im) pairs of the component type FT. */

/* |z| like hypot: inf if either part is inf (even with a NaN), else NaN
 * propagates. c64 squares in f64, which cannot overflow. */
static inline float cabs_f(float re, float im) {
  double r = re, i = im;
  float h = (float)sqrt(r * r + i * i);
  return sel_f(isinf(re) || isinf(im), INFINITY, h);
}
static inline double cabs_d(double re, double im) { return hypot(re, im); }

/* sign(z) = z / |z|: c64 in f64 (no overflow, no subnormal |z|); c128
 * first scales by the power of two of its larger part, which is exact. */
static inline float complex csign_f(float complex z) {
  double re = crealf(z), im = cimagf(z), a = sqrt(re * re + im * im);
  return a == 0 ? 0 : CMPLXF((float)(re / a), (float)(im / a));
}
static inline double complex csign_d(double complex z) {
  double re = creal(z), im = cimag(z);
  int e = 0;
  frexp(fmax(fabs(re), fabs(im)), &e);
  double u = ldexp(re, -e), v = ldexp(im, -e), a = hypot(u, v);
  return a == 0 ? 0 : CMPLX(u / a, v / a);
}
static inline float complex crsqrt_f(float complex z) {
  return 1.0f / csqrtf(z);
}
static inline double complex crsqrt_d(double complex z) {
  return 1.0 / csqrt(z);
}
/* Nx (Complex.cbrt): cbrt(|z|) * e^(i arg(z) / 3); c64 goes through f64. */
static inline double complex ccbrt_d(double complex z) {
  double re = creal(z), im = cimag(z), m = fmax(fabs(re), fabs(im));
  /* |z| may overflow or lose bits: scale by a cube power of two. */
  double k = m > 0x1p960 ? 0x1p-960 : m < 0x1p-960 ? 0x1p960 : 1;
  double kr = m > 0x1p960 ? 0x1p320 : m < 0x1p-960 ? 0x1p-320 : 1;
  double r = cbrt_d(hypot(re * k, im * k)) * kr, th = carg(z) / 3.0;
  return CMPLX(r * cos(th), r * sin(th));
}
static inline float complex ccbrt_f(float complex z) {
  double complex w = ccbrt_d(CMPLX((double)crealf(z), (double)cimagf(z)));
  return CMPLXF((float)creal(w), (float)cimag(w));
}

/* Kernels over pairs (negate, conjugate): in-place aware like EW_SAME. */
#define EW_PAIRS(NAME, FT, RE, IM)                                 \
  EM_CLONES static void NAME(const void *xv, void *yv, int64_t n) { \
    if (xv == yv) {                                                \
      FT *p = (FT *)yv;                                            \
      for (int64_t i = 0; i < n; i++) {                            \
        FT re = p[2 * i], im = p[2 * i + 1];                       \
        p[2 * i] = (RE);                                           \
        p[2 * i + 1] = (IM);                                       \
      }                                                            \
      return;                                                      \
    }                                                              \
    const FT *restrict x = (const FT *)xv;                         \
    FT *restrict y = (FT *)yv;                                     \
    for (int64_t i = 0; i < n; i++) {                              \
      FT re = x[2 * i], im = x[2 * i + 1];                         \
      y[2 * i] = (RE);                                             \
      y[2 * i + 1] = (IM);                                         \
    }                                                              \
  }

/* Pairs to one value of type CTO. */
#define EW_FROM_PAIRS(NAME, FT, CTO, EXPR)                         \
  EM_CLONES static void NAME(const void *xv, void *yv, int64_t n) { \
    const FT *restrict x = (const FT *)xv;                         \
    CTO *restrict y = (CTO *)yv;                                   \
    for (int64_t i = 0; i < n; i++) {                              \
      FT re = x[2 * i], im = x[2 * i + 1];                         \
      (void)re;                                                    \
      (void)im;                                                    \
      y[i] = (EXPR);                                               \
    }                                                              \
  }

/* X(dtype, component type, C complex type, suffix) */
#define CPLX_T(X) X(c64, float, float complex, f) X(c128, double, double complex, d)
static inline float complex csqrt_f(float complex z) { return csqrtf(z); }
static inline double complex csqrt_d(double complex z) { return csqrt(z); }
#define CPLX_KERNELS(DT, FT, CT, S)                                          \
  EW_PAIRS(k_negate_##DT, FT, -re, -im)                                      \
  EW_PAIRS(k_conjugate_##DT, FT, re, -im)                                    \
  EW_FROM_PAIRS(k_abs_##DT, FT, FT, cabs_##S(re, im))                        \
  EW_FROM_PAIRS(k_real_##DT, FT, FT, re)                                     \
  EW_FROM_PAIRS(k_imag_##DT, FT, FT, im)                                     \
  EW_FROM_PAIRS(k_is_nan_##DT, FT, uint8_t, (uint8_t)(re != re || im != im)) \
  EW_FROM_PAIRS(k_is_infinity_##DT, FT, uint8_t,                             \
                (uint8_t)(isinf(re) || isinf(im)))                           \
  EW_FROM_PAIRS(k_logical_not_##DT, FT, uint8_t,                             \
                (uint8_t)(re == 0 && im == 0))                               \
  EW_SAME(k_sign_##DT, CT, csign_##S(v))                                     \
  EW_SAME(k_sqrt_##DT, CT, csqrt_##S(v))                                     \
  EW_SAME(k_rsqrt_##DT, CT, crsqrt_##S(v))                                   \
  EW_SAME(k_cbrt_##DT, CT, ccbrt_##S(v))
CPLX_T(CPLX_KERNELS)

/* ---- fills -------------------------------------------------------------- */

/* Zeros of an element size (imag of real types, is_nan/is_infinity of
 * ints); all-zero bits are 0 in every dtype. */
#define ZERO_FN(B)                                           \
  static void zero_##B(const void *x, void *y, int64_t n) {  \
    if (n > 0) memset(y, 0, (size_t)n * (B));                \
  }
ZERO_FN(1)
ZERO_FN(2)
ZERO_FN(4)
ZERO_FN(8)

static em_unary_kernel zero_kernel(size_t size) {
  switch (size) {
    case 1: return zero_1;
    case 2: return zero_2;
    case 4: return zero_4;
    case 8: return zero_8;
    default: return NULL;
  }
}

/* ---- transcendental ops on ints ----------------------------------------
 * unary_math.c covers float and complex dtypes; ints are widened to f64,
 * run through the f64 kernel and rounded to f32 (what BinaryBackend does:
 * it computes in double and writes f32). */
#define INT_BLOCK 256
static void int_math(em_op op, em_dtype t, const void *x, void *y,
                     int64_t n) {
  em_unary_kernel k = em_cpu_unary_math_kernel(op, EM_F64);
  em_unary_kernel widen = em_cpu_cast_kernel(t, EM_F64);
  size_t es = size_of(t);
  float *out = (float *)y;
  double a[INT_BLOCK], b[INT_BLOCK];
  if (!k || !widen) return; /* the dispatcher checked both */
  for (int64_t i0 = 0; i0 < n; i0 += INT_BLOCK) {
    int64_t m = n - i0 < INT_BLOCK ? n - i0 : INT_BLOCK;
    widen((const char *)x + (size_t)i0 * es, a, m);
    k(a, b, m);
    for (int64_t j = 0; j < m; j++) out[i0 + j] = (float)b[j];
  }
}

#define INT_T(X)                                                         \
  X(u8, U8) X(u16, U16) X(u32, U32) X(u64, U64) X(s8, S8) X(s16, S16)    \
  X(s32, S32) X(s64, S64)
#define INT_MATH_FN(OP, DT, DTU)                                         \
  static void im_##OP##_##DT(const void *x, void *y, int64_t n) {       \
    int_math(EM_OP_##OP, EM_##DTU, x, y, n);                             \
  }
#define INT_MATH_FNS_OP(OP)                                                   \
  INT_MATH_FN(OP, u8, U8) INT_MATH_FN(OP, u16, U16) INT_MATH_FN(OP, u32, U32) \
  INT_MATH_FN(OP, u64, U64) INT_MATH_FN(OP, s8, S8)                           \
  INT_MATH_FN(OP, s16, S16) INT_MATH_FN(OP, s32, S32)                         \
  INT_MATH_FN(OP, s64, S64)
MATH_OPS(INT_MATH_FNS_OP)

static em_unary_kernel math_kernel(em_op op, em_dtype t) {
  int k = kind_of(t);
  if (k != 'u' && k != 's') return em_cpu_unary_math_kernel(op, t);
  em_unary_kernel own = em_cpu_unary_math_kernel(op, t);
  if (own) return own;
  if (!em_cpu_unary_math_kernel(op, EM_F64)) return NULL;
  switch (op) {
#define EM_X_(OP)                                                        \
  case EM_OP_##OP: {                                                     \
    static const em_unary_kernel tb[8] = {                               \
        im_##OP##_u8, im_##OP##_u16, im_##OP##_u32, im_##OP##_u64,       \
        im_##OP##_s8, im_##OP##_s16, im_##OP##_s32, im_##OP##_s64};      \
    return tb[t - EM_U8];                                                \
  }
    MATH_OPS(EM_X_)
#undef EM_X_
    default:
      return NULL;
  }
}

/* ---- dispatcher ------------------------------------------------------------ */

#define INT_ENTRIES(OP)                                                  \
  [EM_U8] = k_##OP##_u8, [EM_U16] = k_##OP##_u16, [EM_U32] = k_##OP##_u32, \
  [EM_U64] = k_##OP##_u64, [EM_S8] = k_##OP##_s8, [EM_S16] = k_##OP##_s16, \
  [EM_S32] = k_##OP##_s32, [EM_S64] = k_##OP##_s64
#define FLOAT_ENTRIES(OP)                                                \
  [EM_F16] = k_##OP##_f16, [EM_BF16] = k_##OP##_bf16,                    \
  [EM_F32] = k_##OP##_f32, [EM_F64] = k_##OP##_f64
#define CPLX_ENTRIES(OP) [EM_C64] = k_##OP##_c64, [EM_C128] = k_##OP##_c128

typedef em_unary_kernel ktable[EM_DTYPE_COUNT];

static const ktable t_negate = {INT_ENTRIES(negate), FLOAT_ENTRIES(negate),
                                CPLX_ENTRIES(negate)};
static const ktable t_sign = {INT_ENTRIES(sign), FLOAT_ENTRIES(sign),
                              CPLX_ENTRIES(sign)};
static const ktable t_bitwise_not = {INT_ENTRIES(bitwise_not)};
static const ktable t_clz = {INT_ENTRIES(count_leading_zeros)};
static const ktable t_popcount = {INT_ENTRIES(population_count)};
static const ktable t_logical_not = {INT_ENTRIES(logical_not),
                                     FLOAT_ENTRIES(logical_not),
                                     CPLX_ENTRIES(logical_not)};
static const ktable t_sqrt = {INT_ENTRIES(sqrt), FLOAT_ENTRIES(sqrt),
                              CPLX_ENTRIES(sqrt)};
static const ktable t_rsqrt = {INT_ENTRIES(rsqrt), FLOAT_ENTRIES(rsqrt),
                               CPLX_ENTRIES(rsqrt)};
static const ktable t_cbrt = {INT_ENTRIES(cbrt), FLOAT_ENTRIES(cbrt),
                              CPLX_ENTRIES(cbrt)};
static const ktable t_conjugate = {INT_ENTRIES(conjugate),
                                   FLOAT_ENTRIES(conjugate),
                                   CPLX_ENTRIES(conjugate)};
static const ktable t_abs = {[EM_S8] = k_abs_s8, [EM_S16] = k_abs_s16,
                             [EM_S32] = k_abs_s32, [EM_S64] = k_abs_s64,
                             FLOAT_ENTRIES(abs), CPLX_ENTRIES(abs)};
static const ktable t_floor = {FLOAT_ENTRIES(floor)};
static const ktable t_ceil = {FLOAT_ENTRIES(ceil)};
static const ktable t_round = {FLOAT_ENTRIES(round)};
static const ktable t_is_nan = {FLOAT_ENTRIES(is_nan), CPLX_ENTRIES(is_nan)};
static const ktable t_is_infinity = {FLOAT_ENTRIES(is_infinity),
                                     CPLX_ENTRIES(is_infinity)};

em_unary_kernel em_cpu_unary_kernel(em_op op, em_dtype t) {
  if (em_dtype_is_narrow(t)) return em_cpu_narrow_unary_kernel(op, t);
  int out = em_unary_out_dtype(op, t);
  if (out < 0) return NULL;
  int k = kind_of(t);
  bool is_int = k == 'u' || k == 's';
  switch (op) {
#define EM_X_(o) case EM_OP_##o:
    MATH_OPS(EM_X_)
#undef EM_X_
    return math_kernel(op, t);
    case EM_OP_abs:
      return k == 'u' ? em_cpu_cast_kernel(t, t) : t_abs[t];
    case EM_OP_ceil:
    case EM_OP_floor:
    case EM_OP_round:
      if (is_int) return em_cpu_cast_kernel(t, t);
      return op == EM_OP_ceil ? t_ceil[t] : op == EM_OP_floor ? t_floor[t]
                                                              : t_round[t];
    case EM_OP_real:
      if (k == 'c') return t == EM_C64 ? k_real_c64 : k_real_c128;
      return em_cpu_cast_kernel(t, (em_dtype)out); /* identity or -> f32 */
    case EM_OP_imag:
      if (k == 'c') return t == EM_C64 ? k_imag_c64 : k_imag_c128;
      return zero_kernel(size_of((em_dtype)out));
    case EM_OP_is_nan:
    case EM_OP_is_infinity:
      if (is_int) return zero_1;
      return op == EM_OP_is_nan ? t_is_nan[t] : t_is_infinity[t];
    case EM_OP_negate: return t_negate[t];
    case EM_OP_sign: return t_sign[t];
    case EM_OP_bitwise_not: return t_bitwise_not[t];
    case EM_OP_count_leading_zeros: return t_clz[t];
    case EM_OP_population_count: return t_popcount[t];
    case EM_OP_logical_not: return t_logical_not[t];
    case EM_OP_sqrt: return t_sqrt[t];
    case EM_OP_rsqrt: return t_rsqrt[t];
    case EM_OP_cbrt: return t_cbrt[t];
    case EM_OP_conjugate: return t_conjugate[t];
    default: return NULL;
  }
}
