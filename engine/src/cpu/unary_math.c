/* unary_math.c — CPU kernels of the transcendental unary ops for f16 bf16
 * f32 f64 c64 c128. f32 runs the vectorised vmath.h code where there is
 * one, else libm in double; f16/bf16 go through f32; f64 uses libm. */
/* FMA contraction for this file only: the polynomials of vmath.h run about
 * 1.4x faster where the clone has FMA (AVX-512), with the same error bounds.
 * Placed before every include so inlined helpers share the setting. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif

#include "unary-math.h"

#include <complex.h>
#include <math.h>
#include <stdint.h>

#include "../core/half.h"
#include "simd.h"
#include "vmath.h"

#define EM_UM_PI 3.14159265358979323846
#define EM_UM_2_SQRTPI 1.12837916709551257390 /* 2 / sqrt(pi) */

/* ---- scalar double helpers ------------------------------------------- */

/* 1 / (1 + exp(-x)); for x < 0 as e / (1 + e), e = exp(x), which neither
 * overflows nor loses the tiny results. NaN takes the second form. */
static double em_um_sigmoid(double x) {
  if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
  double e = exp(x);
  return e / (1.0 + e);
}

/* Inverse error function (libm has none): Winitzki's closed form as the
 * start (relative error < 2e-3), then Halley steps on erf(x) = |y|, which
 * converge cubically. Near |y| = 1 the residual is taken as
 * (1 - |y|) - erfc(x), exact in its first term, so the tails keep full
 * relative accuracy. erf_inv(+-1) = +-inf, |y| > 1 gives NaN. */
static double em_um_erfinv(double y) {
  double ay = fabs(y);
  if (!(ay < 1.0)) return ay == 1.0 ? y * INFINITY : (ay > 1.0 ? NAN : y);
  if (ay == 0.0) return y; /* keeps -0 */
  double om = 1.0 - ay;    /* exact for ay >= 0.5 */
  double l = log(om * (1.0 + ay)); /* log(1 - y^2) */
  const double a = 0.147;
  double A = 2.0 / (EM_UM_PI * a) + 0.5 * l, B = -l / a;
  double D = sqrt(A * A + B);
  /* x^2 = D - A, written without cancellation when A > 0 */
  double x = sqrt(A > 0.0 ? B / (D + A) : D - A);
  for (int it = 0; it < 3; it++) {
    double f = ay < 0.5 ? erf(x) - ay : om - erfc(x);
    double u = f / (EM_UM_2_SQRTPI * exp(-x * x));
    x -= u / (1.0 + x * u);
  }
  return copysign(x, y);
}

/* exp(z) - 1 without the cancellation near z = 0:
 * re = expm1(a) cos(b) - 2 sin^2(b/2), im = exp(a) sin(b). */
static double complex em_um_cexpm1(double complex z) {
  double a = creal(z), b = cimag(z);
  if (!(fabs(a) < 700.0 && isfinite(b))) {
    double complex w = cexp(z);
    return CMPLX(creal(w) - 1.0, cimag(w));
  }
  double s = sin(0.5 * b);
  return CMPLX(expm1(a) * cos(b) - 2.0 * s * s, exp(a) * sin(b));
}

/* log(1 + z); near 0 as log|1+z| = log1p(2a + a^2 + b^2) / 2. The 1 + z is
 * formed per component so the sign of a zero imaginary part survives. */
static double complex em_um_clog1p(double complex z) {
  double a = creal(z), b = cimag(z);
  if (fabs(a) < 0.5 && fabs(b) < 0.5)
    return CMPLX(0.5 * log1p(a * (2.0 + a) + b * b), atan2(b, 1.0 + a));
  return clog(CMPLX(1.0 + a, b));
}

static double complex em_um_csigmoid(double complex z) {
  double complex w = cexp(-z);
  return CMPLX(1.0, 0.0) / CMPLX(1.0 + creal(w), cimag(w));
}

/* ---- op lists ---------------------------------------------------------- */

/* f32 ops with a vectorised vmath.h implementation. */
#define EM_UM_F32_VEC(X)                                                     \
  X(exp, em_vm_expf) X(expm1, em_vm_expm1f) X(log, em_vm_logf)               \
  X(log1p, em_vm_log1pf) X(sigmoid, em_vm_sigmoidf) X(tanh, em_vm_tanhf)     \
  X(erf, em_vm_erff)
/* f32 trig: vmath.h up to EM_VM_TRIG_MAX, libm beyond. */
#define EM_UM_F32_TRIG(X) X(sin, em_vm_sinf, sin) X(cos, em_vm_cosf, cos) \
  X(tan, em_vm_tanf, tan)
/* f32 ops computed in double by libm (then rounded once). */
#define EM_UM_F32_LIBM(X)                                                    \
  X(cosh, cosh) X(sinh, sinh) X(acos, acos) X(asin, asin) X(atan, atan)      \
  X(acosh, acosh) X(asinh, asinh) X(atanh, atanh) X(erfc, erfc)              \
  X(erf_inv, em_um_erfinv)
/* Every op of this file, with its f64 function. */
#define EM_UM_REAL(X)                                                        \
  X(exp, exp) X(expm1, expm1) X(log, log) X(log1p, log1p)                    \
  X(sigmoid, em_um_sigmoid) X(cos, cos) X(sin, sin) X(tan, tan)              \
  X(cosh, cosh) X(sinh, sinh) X(tanh, tanh) X(acos, acos) X(asin, asin)      \
  X(atan, atan) X(acosh, acosh) X(asinh, asinh) X(atanh, atanh) X(erf, erf)  \
  X(erfc, erfc) X(erf_inv, em_um_erfinv)
/* Ops Nx defines on complex (all but erf, erfc, erf_inv). */
#define EM_UM_COMPLEX(X)                                                     \
  X(exp, cexp) X(expm1, em_um_cexpm1) X(log, clog) X(log1p, em_um_clog1p)    \
  X(sigmoid, em_um_csigmoid) X(cos, ccos) X(sin, csin) X(tan, ctan)          \
  X(cosh, ccosh) X(sinh, csinh) X(tanh, ctanh) X(acos, cacos) X(asin, casin) \
  X(atan, catan) X(acosh, cacosh) X(asinh, casinh) X(atanh, catanh)

/* ---- f32 --------------------------------------------------------------- */

#define EM_UM_DEF_F32_VEC(name, f)                                          \
  EM_CLONES static void em_um_##name##_f32(const void *xv, void *yv,        \
                                           int64_t n) {                     \
    const float *restrict x = xv;                                           \
    float *restrict y = yv;                                                 \
    for (int64_t i = 0; i < n; i++) y[i] = f(x[i]);                         \
  }
EM_UM_F32_VEC(EM_UM_DEF_F32_VEC)
#undef EM_UM_DEF_F32_VEC

/* Trig works in chunks: a chunk with any |x| > EM_VM_TRIG_MAX (or inf)
 * goes to libm whole, the rest runs vectorised. */
#define EM_UM_TRIG_CHUNK 256
#define EM_UM_DEF_F32_TRIG(name, f, libf)                                   \
  EM_CLONES static void em_um_##name##_f32(const void *xv, void *yv,        \
                                           int64_t n) {                     \
    const float *restrict x = xv;                                           \
    float *restrict y = yv;                                                 \
    for (int64_t i0 = 0; i0 < n; i0 += EM_UM_TRIG_CHUNK) {                  \
      int64_t m = n - i0 < EM_UM_TRIG_CHUNK ? n - i0 : EM_UM_TRIG_CHUNK;    \
      int big = 0;                                                          \
      for (int64_t i = i0; i < i0 + m; i++)                                 \
        big |= em_vm_abs(x[i]) > EM_VM_TRIG_MAX;                            \
      if (big) {                                                            \
        for (int64_t i = i0; i < i0 + m; i++)                               \
          y[i] = (float)libf((double)x[i]);                                 \
      } else {                                                              \
        for (int64_t i = i0; i < i0 + m; i++) y[i] = f(x[i]);               \
      }                                                                     \
    }                                                                       \
  }
EM_UM_F32_TRIG(EM_UM_DEF_F32_TRIG)
#undef EM_UM_DEF_F32_TRIG

/* libm-bound loops: no vectorisation to gain, so no clones. */
#define EM_UM_DEF_F32_LIBM(name, f)                                         \
  static void em_um_##name##_f32(const void *xv, void *yv, int64_t n) {     \
    const float *restrict x = xv;                                           \
    float *restrict y = yv;                                                 \
    for (int64_t i = 0; i < n; i++) y[i] = (float)f((double)x[i]);          \
  }
EM_UM_F32_LIBM(EM_UM_DEF_F32_LIBM)
#undef EM_UM_DEF_F32_LIBM

/* ---- f16 / bf16 through an f32 stack buffer ------------------------------ */

#define EM_UM_CHUNK 512

EM_CLONES static void em_um_load_f16(const uint16_t *restrict x,
                                     float *restrict b, int64_t m) {
  for (int64_t i = 0; i < m; i++) b[i] = em_f16_to_f32(x[i]);
}
EM_CLONES static void em_um_store_f16(const float *restrict b,
                                      uint16_t *restrict y, int64_t m) {
  for (int64_t i = 0; i < m; i++) y[i] = em_f32_to_f16(b[i]);
}
EM_CLONES static void em_um_load_bf16(const uint16_t *restrict x,
                                      float *restrict b, int64_t m) {
  for (int64_t i = 0; i < m; i++) b[i] = em_bf16_to_f32(x[i]);
}
EM_CLONES static void em_um_store_bf16(const float *restrict b,
                                       uint16_t *restrict y, int64_t m) {
  for (int64_t i = 0; i < m; i++) y[i] = em_f32_to_bf16(b[i]);
}

/* x and y may be the same buffer: each chunk is read before it is written. */
#define EM_UM_DEF_HALF(name, tag)                                           \
  static void em_um_##name##_##tag(const void *xv, void *yv, int64_t n) {   \
    const uint16_t *x = xv;                                                 \
    uint16_t *y = yv;                                                       \
    float buf[EM_UM_CHUNK];                                                 \
    for (int64_t i = 0; i < n; i += EM_UM_CHUNK) {                          \
      int64_t m = n - i < EM_UM_CHUNK ? n - i : EM_UM_CHUNK;                \
      em_um_load_##tag(x + i, buf, m);                                      \
      em_um_##name##_f32(buf, buf, m);                                      \
      em_um_store_##tag(buf, y + i, m);                                     \
    }                                                                       \
  }
#define EM_UM_DEF_F16(name, f) EM_UM_DEF_HALF(name, f16)
#define EM_UM_DEF_BF16(name, f) EM_UM_DEF_HALF(name, bf16)
EM_UM_REAL(EM_UM_DEF_F16)
EM_UM_REAL(EM_UM_DEF_BF16)
#undef EM_UM_DEF_F16
#undef EM_UM_DEF_BF16
#undef EM_UM_DEF_HALF

/* ---- f64, c64, c128: libm ------------------------------------------------ */

#define EM_UM_DEF_F64(name, f)                                              \
  static void em_um_##name##_f64(const void *xv, void *yv, int64_t n) {     \
    const double *restrict x = xv;                                          \
    double *restrict y = yv;                                                \
    for (int64_t i = 0; i < n; i++) y[i] = f(x[i]);                         \
  }
EM_UM_REAL(EM_UM_DEF_F64)
#undef EM_UM_DEF_F64

/* c64 is computed in double and rounded once per component. */
#define EM_UM_DEF_COMPLEX(name, f)                                          \
  static void em_um_##name##_c64(const void *xv, void *yv, int64_t n) {     \
    const float complex *restrict x = xv;                                   \
    float complex *restrict y = yv;                                         \
    for (int64_t i = 0; i < n; i++)                                         \
      y[i] = (float complex)f((double complex)x[i]);                        \
  }                                                                         \
  static void em_um_##name##_c128(const void *xv, void *yv, int64_t n) {    \
    const double complex *restrict x = xv;                                  \
    double complex *restrict y = yv;                                        \
    for (int64_t i = 0; i < n; i++) y[i] = f(x[i]);                         \
  }
EM_UM_COMPLEX(EM_UM_DEF_COMPLEX)
#undef EM_UM_DEF_COMPLEX

/* ---- lookup -------------------------------------------------------------- */

em_unary_kernel em_cpu_unary_math_kernel(em_op op, em_dtype t) {
#define EM_UM_CASE(name, f, tag) \
  case EM_OP_##name:             \
    return em_um_##name##_##tag;
#define EM_UM_CASE_F16(name, f) EM_UM_CASE(name, f, f16)
#define EM_UM_CASE_BF16(name, f) EM_UM_CASE(name, f, bf16)
#define EM_UM_CASE_F32(name, f) EM_UM_CASE(name, f, f32)
#define EM_UM_CASE_F64(name, f) EM_UM_CASE(name, f, f64)
#define EM_UM_CASE_C64(name, f) EM_UM_CASE(name, f, c64)
#define EM_UM_CASE_C128(name, f) EM_UM_CASE(name, f, c128)
  switch (t) {
    case EM_F16:
      switch (op) { EM_UM_REAL(EM_UM_CASE_F16) default: return NULL; }
    case EM_BF16:
      switch (op) { EM_UM_REAL(EM_UM_CASE_BF16) default: return NULL; }
    case EM_F32:
      switch (op) { EM_UM_REAL(EM_UM_CASE_F32) default: return NULL; }
    case EM_F64:
      switch (op) { EM_UM_REAL(EM_UM_CASE_F64) default: return NULL; }
    case EM_C64:
      switch (op) { EM_UM_COMPLEX(EM_UM_CASE_C64) default: return NULL; }
    case EM_C128:
      switch (op) { EM_UM_COMPLEX(EM_UM_CASE_C128) default: return NULL; }
    default:
      return NULL; /* integers: the Nx layer casts them to float first */
  }
#undef EM_UM_CASE
#undef EM_UM_CASE_F16
#undef EM_UM_CASE_BF16
#undef EM_UM_CASE_F32
#undef EM_UM_CASE_F64
#undef EM_UM_CASE_C64
#undef EM_UM_CASE_C128
}
