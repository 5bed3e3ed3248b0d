/* cast.c — the CPU as_type kernels: every pair of the 14 dtypes, generated
 * from per-dtype load / convert / store macros (Nx.as_type semantics). */
#include <stdint.h>
#include <string.h>

#include "../core/half.h"
#include "cpu-kernels.h"
#include "simd.h"

/* Semantics, per Nx.as_type (0.13):
 *  - float -> int truncates toward zero; NaN -> 0; +inf -> max, -inf -> min.
 *    Finite values out of the target's range saturate as well (Nx calls
 *    overflow platform dependent; saturation matches EXLA and the inf rule).
 *  - int -> int wraps (two's complement).
 *  - complex -> real takes the real part; real -> complex has imag 0.
 *  - every conversion to a float type rounds once, to nearest even, from
 *    the exact source value (no double rounding through f32/f64). */

/* ---- per-dtype storage: component type, load, value kind ---------------
 * The value kind picks the conversion: i16 (exact in f32, held in int32),
 * i32 (exact in f64, held in int64), s64, u64, f (float), d (double). */
#define CT_u8 uint8_t
#define CT_u16 uint16_t
#define CT_u32 uint32_t
#define CT_u64 uint64_t
#define CT_s8 int8_t
#define CT_s16 int16_t
#define CT_s32 int32_t
#define CT_s64 int64_t
#define CT_f16 uint16_t
#define CT_bf16 uint16_t
#define CT_f32 float
#define CT_f64 double
#define CT_c64 float /* complex: arrays of (re, im) pairs */
#define CT_c128 double

#define LD_u8(p, i) ((int32_t)(p)[i])
#define LD_u16(p, i) ((int32_t)(p)[i])
#define LD_u32(p, i) ((int64_t)(p)[i])
#define LD_u64(p, i) ((p)[i])
#define LD_s8(p, i) ((int32_t)(p)[i])
#define LD_s16(p, i) ((int32_t)(p)[i])
#define LD_s32(p, i) ((int64_t)(p)[i])
#define LD_s64(p, i) ((p)[i])
#define LD_f16(p, i) em_f16_to_f32((p)[i])
#define LD_bf16(p, i) em_bf16_to_f32((p)[i])
#define LD_f32(p, i) ((p)[i])
#define LD_f64(p, i) ((p)[i])
#define LD_c64(p, i) ((p)[2 * (i)])
#define LD_c128(p, i) ((p)[2 * (i)])

#define KD_u8 i16
#define KD_u16 i16
#define KD_u32 i32
#define KD_u64 u64
#define KD_s8 i16
#define KD_s16 i16
#define KD_s32 i32
#define KD_s64 s64
#define KD_f16 f
#define KD_bf16 f
#define KD_f32 f
#define KD_f64 d
#define KD_c64 f
#define KD_c128 d

/* Conversion target for a dtype (complex: its component type). */
#define CV_u8 u8
#define CV_u16 u16
#define CV_u32 u32
#define CV_u64 u64
#define CV_s8 s8
#define CV_s16 s16
#define CV_s32 s32
#define CV_s64 s64
#define CV_f16 f16
#define CV_bf16 bf16
#define CV_f32 f32
#define CV_f64 f64
#define CV_c64 f32
#define CV_c128 f64

#define ST_REAL(y, i, v) ((y)[i] = (v))
#define ST_CPLX(y, i, v) ((y)[2 * (i)] = (v), (y)[2 * (i) + 1] = 0)
#define ST_u8 ST_REAL
#define ST_u16 ST_REAL
#define ST_u32 ST_REAL
#define ST_u64 ST_REAL
#define ST_s8 ST_REAL
#define ST_s16 ST_REAL
#define ST_s32 ST_REAL
#define ST_s64 ST_REAL
#define ST_f16 ST_REAL
#define ST_bf16 ST_REAL
#define ST_f32 ST_REAL
#define ST_f64 ST_REAL
#define ST_c64 ST_CPLX
#define ST_c128 ST_CPLX

/* ---- element conversions cv_<target>_<kind> ---------------------------- */

/* int -> int: through the unsigned type, i.e. modulo 2^bits. */
#define INT_FROM_INT(T, CT, UT)                                          \
  static inline CT cv_##T##_i16(int32_t v) { return (CT)(UT)v; }         \
  static inline CT cv_##T##_i32(int64_t v) { return (CT)(UT)v; }         \
  static inline CT cv_##T##_s64(int64_t v) { return (CT)(UT)v; }         \
  static inline CT cv_##T##_u64(uint64_t v) { return (CT)(UT)v; }

/* float -> int, saturating, branch-free: clamp into [LO, pred(P)] first so
 * the hardware conversion is always in range (P = 2^bits or 2^(bits-1)),
 * then patch x >= P (pred(P) may truncate below MAX) and NaN. */
#define INT_FROM_FLOAT(T, CT, IT, LO, P, MAX)                            \
  static inline CT cv_##T##_f(float x) {                                 \
    const float hi = (float)(P) * (1.0f - 0x1p-24f);                     \
    float c = x < (float)(LO) ? (float)(LO) : x;                         \
    c = c > hi ? hi : c;                                                 \
    c = x == x ? c : 0.0f;                                               \
    CT r = (CT)(IT)c;                                                    \
    return x >= (float)(P) ? (CT)(MAX) : r;                              \
  }                                                                      \
  static inline CT cv_##T##_d(double x) {                                \
    const double hi = (double)(P) * (1.0 - 0x1p-53);                     \
    double c = x < (double)(LO) ? (double)(LO) : x;                      \
    c = c > hi ? hi : c;                                                 \
    c = x == x ? c : 0.0;                                                \
    CT r = (CT)(IT)c;                                                    \
    return x >= (double)(P) ? (CT)(MAX) : r;                             \
  }

#define INT_TARGET(T, CT, UT, IT, LO, P, MAX) \
  INT_FROM_INT(T, CT, UT) INT_FROM_FLOAT(T, CT, IT, LO, P, MAX)

INT_TARGET(u8, uint8_t, uint8_t, int32_t, 0, 0x1p8, UINT8_MAX)
INT_TARGET(u16, uint16_t, uint16_t, int32_t, 0, 0x1p16, UINT16_MAX)
INT_TARGET(u32, uint32_t, uint32_t, int64_t, 0, 0x1p32, UINT32_MAX)
INT_TARGET(u64, uint64_t, uint64_t, uint64_t, 0, 0x1p64, UINT64_MAX)
INT_TARGET(s8, int8_t, uint8_t, int32_t, -0x1p7, 0x1p7, INT8_MAX)
INT_TARGET(s16, int16_t, uint16_t, int32_t, -0x1p15, 0x1p15, INT16_MAX)
INT_TARGET(s32, int32_t, uint32_t, int32_t, -0x1p31, 0x1p31, INT32_MAX)
INT_TARGET(s64, int64_t, uint64_t, int64_t, -0x1p63, 0x1p63, INT64_MAX)

/* Integers of up to 64 bits as a double rounded to odd at bit 11: exact
 * below 2^53, and above it the sticky bit keeps a later rounding to a
 * narrower format (bf16) correct, which a plain (double) would not. */
static inline double u64_to_f64_odd(uint64_t u) {
  uint64_t t = (u & ~(uint64_t)0x7ff) | ((uint64_t)((u & 0x7ff) != 0) << 11);
  return (double)(u >> 53 ? t : u);
}
static inline double s64_to_f64_odd(int64_t v) {
  uint64_t m = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  double d = u64_to_f64_odd(m);
  return v < 0 ? -d : d;
}

static inline float cv_f32_i16(int32_t v) { return (float)v; }
static inline float cv_f32_i32(int64_t v) { return (float)v; }
static inline float cv_f32_s64(int64_t v) { return (float)v; }
static inline float cv_f32_u64(uint64_t v) { return (float)v; }
static inline float cv_f32_f(float v) { return v; }
static inline float cv_f32_d(double v) { return (float)v; }

static inline double cv_f64_i16(int32_t v) { return (double)v; }
static inline double cv_f64_i32(int64_t v) { return (double)v; }
static inline double cv_f64_s64(int64_t v) { return (double)v; }
static inline double cv_f64_u64(uint64_t v) { return (double)v; }
static inline double cv_f64_f(float v) { return (double)v; }
static inline double cv_f64_d(double v) { return v; }

/* f16: an integer that f32 rounds is >= 2^24, inf in f16 either way. */
static inline uint16_t cv_f16_i16(int32_t v) { return em_f32_to_f16((float)v); }
static inline uint16_t cv_f16_i32(int64_t v) { return em_f32_to_f16((float)v); }
static inline uint16_t cv_f16_s64(int64_t v) { return em_f32_to_f16((float)v); }
static inline uint16_t cv_f16_u64(uint64_t v) { return em_f32_to_f16((float)v); }
static inline uint16_t cv_f16_f(float v) { return em_f32_to_f16(v); }
static inline uint16_t cv_f16_d(double v) { return em_f64_to_f16(v); }

static inline uint16_t cv_bf16_i16(int32_t v) { return em_f32_to_bf16((float)v); }
static inline uint16_t cv_bf16_i32(int64_t v) { return em_f64_to_bf16((double)v); }
static inline uint16_t cv_bf16_s64(int64_t v) {
  return em_f64_to_bf16(s64_to_f64_odd(v));
}
static inline uint16_t cv_bf16_u64(uint64_t v) {
  return em_f64_to_bf16(u64_to_f64_odd(v));
}
static inline uint16_t cv_bf16_f(float v) { return em_f32_to_bf16(v); }
static inline uint16_t cv_bf16_d(double v) { return em_f64_to_bf16(v); }

/* ---- loops ------------------------------------------------------------- */

#define CV_CALL(TGT, KIND, v) CV_CALL_(TGT, KIND, v)
#define CV_CALL_(TGT, KIND, v) cv_##TGT##_##KIND(v)

#define CAST_FN(FROM, TO)                                                  \
  EM_CLONES static void cast_##FROM##_##TO(const void *xv, void *yv,      \
                                           int64_t n) {                   \
    const CT_##FROM *restrict x = (const CT_##FROM *)xv;                  \
    CT_##TO *restrict y = (CT_##TO *)yv;                                  \
    for (int64_t i = 0; i < n; i++)                                       \
      ST_##TO(y, i, CV_CALL(CV_##TO, KD_##FROM, LD_##FROM(x, i)));        \
  }

#define CAST_TO_ALL(X, FROM)                                               \
  X(FROM, u8) X(FROM, u16) X(FROM, u32) X(FROM, u64) X(FROM, s8)           \
  X(FROM, s16) X(FROM, s32) X(FROM, s64) X(FROM, f16) X(FROM, bf16)        \
  X(FROM, f32) X(FROM, f64) X(FROM, c64) X(FROM, c128)
#define CAST_FROM_ALL(Y)                                                   \
  Y(u8) Y(u16) Y(u32) Y(u64) Y(s8) Y(s16) Y(s32) Y(s64) Y(f16) Y(bf16)     \
  Y(f32) Y(f64) Y(c64) Y(c128)

/* Generates all 196 loops; the same-type and complex<->complex entries are
 * replaced in the dispatcher below (copy / both components). */
#define CAST_ROW_FNS(FROM) CAST_TO_ALL(CAST_FN, FROM)
CAST_FROM_ALL(CAST_ROW_FNS)

EM_CLONES static void cast_c64_c128_full(const void *xv, void *yv,
                                         int64_t n) {
  const float *restrict x = (const float *)xv;
  double *restrict y = (double *)yv;
  for (int64_t i = 0; i < 2 * n; i++) y[i] = (double)x[i];
}

EM_CLONES static void cast_c128_c64_full(const void *xv, void *yv,
                                         int64_t n) {
  const double *restrict x = (const double *)xv;
  float *restrict y = (float *)yv;
  for (int64_t i = 0; i < 2 * n; i++) y[i] = (float)x[i];
}

/* f32 <-> f16 with the F16C instructions where the CPU has them (picked at
 * run time): about 4x the portable code. Same results: vcvtps2ph rounds to
 * nearest even (immediate mode), quiets NaNs keeping the top payload bits
 * and ignores DAZ/FTZ, like em_f32_to_f16. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(EMILY_NO_CLONES)
#include <immintrin.h>
#define HAVE_F16C_PATH 1
__attribute__((target("avx,f16c"))) static void cast_f32_f16_f16c(
    const void *xv, void *yv, int64_t n) {
  const float *x = (const float *)xv;
  uint16_t *y = (uint16_t *)yv;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128((__m128i *)(void *)(y + i), h);
  }
  for (; i < n; i++) y[i] = em_f32_to_f16(x[i]);
}
__attribute__((target("avx,f16c"))) static void cast_f16_f32_f16c(
    const void *xv, void *yv, int64_t n) {
  const uint16_t *x = (const uint16_t *)xv;
  float *y = (float *)yv;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(
                                (const __m128i *)(const void *)(x + i))));
  for (; i < n; i++) y[i] = em_f16_to_f32(x[i]);
}
#endif

/* Same dtype: a copy (x == y allowed). */
#define COPY_FN(B)                                                         \
  static void copy_##B(const void *x, void *y, int64_t n) {               \
    if (x != y && n > 0) memmove(y, x, (size_t)n * (B));                  \
  }
COPY_FN(1)
COPY_FN(2)
COPY_FN(4)
COPY_FN(8)
COPY_FN(16)

#define CAST_ENTRY(FROM, TO) cast_##FROM##_##TO,
#define CAST_ROW(FROM) {CAST_TO_ALL(CAST_ENTRY, FROM)},
static const em_unary_kernel cast_table[EM_DTYPE_COUNT][EM_DTYPE_COUNT] = {
    CAST_FROM_ALL(CAST_ROW)};

em_unary_kernel em_cpu_cast_kernel(em_dtype from, em_dtype to) {
  if ((unsigned)from >= EM_DTYPE_COUNT || (unsigned)to >= EM_DTYPE_COUNT)
    return NULL;
  if (from == to) {
    static const unsigned char size[EM_DTYPE_COUNT] = {
#define EM_X_(N, nm, b, k) (b) / 8,
        EM_DTYPES(EM_X_)
#undef EM_X_
    };
    switch (size[from]) {
      case 1: return copy_1;
      case 2: return copy_2;
      case 4: return copy_4;
      case 8: return copy_8;
      case 16: return copy_16;
      default: return NULL;
    }
  }
#ifdef HAVE_F16C_PATH
  if (((from == EM_F32 && to == EM_F16) || (from == EM_F16 && to == EM_F32)) &&
      __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c"))
    return from == EM_F32 ? cast_f32_f16_f16c : cast_f16_f32_f16c;
#endif
  if (from == EM_C64 && to == EM_C128) return cast_c64_c128_full;
  if (from == EM_C128 && to == EM_C64) return cast_c128_c64_full;
  return cast_table[from][to];
}
