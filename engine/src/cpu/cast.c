/* cast.c — the CPU as_type kernels: every pair of the 14 wide dtypes,
 * generated from per-dtype load / convert / store macros (Nx.as_type
 * semantics), and the pairs involving the narrow dtypes (s2 s4 u2 u4 f8
 * f8_e4m3fn), composed from those. Also the narrow dtypes' wrap/clamp
 * fix-ups and unary dispatch (see subbyte.h). */
#include <stdint.h>
#include <string.h>

#include "../core/half.h"
#include "cpu-kernels.h"
#include "simd.h"
#include "subbyte.h"

/* Semantics, per Nx.as_type (0.13):
 *  - float -> int truncates toward zero; NaN -> 0; +inf -> max, -inf -> min.
 *    Finite values out of the target's range saturate as well (Nx calls
 *    overflow platform dependent; saturation matches EXLA and the inf rule).
 *  - int -> int wraps (two's complement).
 *  - complex -> real takes the real part; real -> complex has imag 0.
 *  - every conversion to a float type rounds once, to nearest even, from
 *    the exact source value (no double rounding through f32/f64).
 *  - narrow types: float -> s2..u4 truncates and saturates into the type's
 *    range, int -> s2..u4 wraps; f8_e4m3fn saturates at ±448 (±inf too),
 *    f8 (E5M2) overflows to ±inf (see half.h). */

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

/* ---- narrow dtypes ------------------------------------------------------ */

static const unsigned char dt_size[EM_DTYPE_COUNT] = {
#define EM_X_(N, nm, b, k) ((b) + 7) / 8,
    EM_DTYPES(EM_X_)
#undef EM_X_
};
static const char dt_kind[EM_DTYPE_COUNT] = {
#define EM_X_(N, nm, b, k) k,
    EM_DTYPES(EM_X_)
#undef EM_X_
};

/* Wrap (modulo 2^bits, sign-extending) and clamp loops on stored values. */
#define FIX_FN(NAME, T, EXPR)                                    \
  EM_CLONES static void NAME(void *yv, int64_t n) {             \
    T *y = (T *)yv;                                              \
    for (int64_t i = 0; i < n; i++) {                            \
      int v = y[i];                                              \
      y[i] = (T)(EXPR);                                          \
    }                                                            \
  }
FIX_FN(wrap_s2, int8_t, ((v & 3) ^ 2) - 2)
FIX_FN(wrap_s4, int8_t, ((v & 15) ^ 8) - 8)
FIX_FN(wrap_u2, uint8_t, v & 3)
FIX_FN(wrap_u4, uint8_t, v & 15)
FIX_FN(clamp_s2, int8_t, v < -2 ? -2 : v > 1 ? 1 : v)
FIX_FN(clamp_s4, int8_t, v < -8 ? -8 : v > 7 ? 7 : v)
FIX_FN(clamp_u2, uint8_t, v > 3 ? 3 : v)
FIX_FN(clamp_u4, uint8_t, v > 15 ? 15 : v)

void em_subbyte_wrap(em_dtype t, void *y, int64_t n) {
  switch (t) {
    case EM_S2: wrap_s2(y, n); break;
    case EM_S4: wrap_s4(y, n); break;
    case EM_U2: wrap_u2(y, n); break;
    case EM_U4: wrap_u4(y, n); break;
    default: break;
  }
}

void em_subbyte_clamp(em_dtype t, void *y, int64_t n) {
  switch (t) {
    case EM_S2: clamp_s2(y, n); break;
    case EM_S4: clamp_s4(y, n); break;
    case EM_U2: clamp_u2(y, n); break;
    case EM_U4: clamp_u4(y, n); break;
    default: break;
  }
}

/* f8 <-> f32 / f64 loops. */
#define F8_LOOP(NAME, TI, TO, F)                                       \
  EM_CLONES static void NAME(const void *xv, void *yv, int64_t n) {   \
    const TI *restrict x = (const TI *)xv;                            \
    TO *restrict y = (TO *)yv;                                        \
    for (int64_t i = 0; i < n; i++) y[i] = F(x[i]);                   \
  }
F8_LOOP(cast_f8_f32_k, uint8_t, float, em_f8_to_f32)
F8_LOOP(cast_f8e4_f32_k, uint8_t, float, em_f8e4m3fn_to_f32)
F8_LOOP(cast_f32_f8_k, float, uint8_t, em_f32_to_f8)
F8_LOOP(cast_f32_f8e4_k, float, uint8_t, em_f32_to_f8e4m3fn)
F8_LOOP(cast_f64_f8_k, double, uint8_t, em_f64_to_f8)
F8_LOOP(cast_f64_f8e4_k, double, uint8_t, em_f64_to_f8e4m3fn)

static em_unary_kernel f8_decoder(em_dtype t) {
  return t == EM_F8 ? cast_f8_f32_k : cast_f8e4_f32_k;
}
static em_unary_kernel f8_encoder32(em_dtype t) {
  return t == EM_F8 ? cast_f32_f8_k : cast_f32_f8e4_k;
}
static em_unary_kernel f8_encoder64(em_dtype t) {
  return t == EM_F8 ? cast_f64_f8_k : cast_f64_f8e4_k;
}

/* A cast with a narrow end, in stack blocks: sub-byte values are read as
 * their base type; f8 is decoded to f32 (exact); a float or complex source
 * goes to f8 through f32 when it is exact there (f16, bf16, f32, c64, and
 * 8/16-bit ints) and through f64 otherwise (any integer too large for f32
 * is far beyond f8's range either way), so f8 rounds once from the exact
 * value; a sub-byte target gets the base-type conversion, then wraps (from
 * ints) or clamps (from floats, which saturate). */
enum { STAGE = 256 };
static void cast_staged(em_dtype from, em_dtype to, const void *xv, void *yv,
                        int64_t n) {
  const char *x = (const char *)xv;
  char *y = (char *)yv;
  size_t xs = dt_size[from], ys = dt_size[to];
  em_dtype sdt = em_dtype_is_subbyte(from) ? em_subbyte_base(from)
                 : em_dtype_is_f8(from)    ? EM_F32
                                           : from;
  em_dtype tdt = em_dtype_is_subbyte(to) ? em_subbyte_base(to) : to;
  bool src_int = dt_kind[sdt] == 'u' || dt_kind[sdt] == 's';
  bool via32 = sdt == EM_F32 || sdt == EM_F16 || sdt == EM_BF16 ||
               sdt == EM_C64 || dt_size[sdt] <= 2;
  float f[STAGE];
  double d[STAGE];
  for (int64_t i0 = 0; i0 < n; i0 += STAGE) {
    int64_t m = n - i0 < STAGE ? n - i0 : STAGE;
    const void *src = x + (size_t)i0 * xs;
    void *dst = y + (size_t)i0 * ys;
    if (em_dtype_is_f8(from)) {
      f8_decoder(from)(src, f, m);
      src = f;
    }
    if (em_dtype_is_f8(to)) {
      if (sdt == EM_F32) {
        f8_encoder32(to)(src, dst, m);
      } else if (via32) {
        em_cpu_cast_kernel(sdt, EM_F32)(src, f, m);
        f8_encoder32(to)(f, dst, m);
      } else {
        em_cpu_cast_kernel(sdt, EM_F64)(src, d, m);
        f8_encoder64(to)(d, dst, m);
      }
    } else {
      em_cpu_cast_kernel(sdt, tdt)(src, dst, m);
      if (em_dtype_is_subbyte(to)) {
        if (src_int) em_subbyte_wrap(to, dst, m);
        else em_subbyte_clamp(to, dst, m);
      }
    }
  }
}

/* One thunk per (from, to) pair with a narrow end. The lists are spelled
 * twice because a macro cannot expand inside its own expansion. */
#define WIDE_T(X, A)                                                       \
  X(A, U8) X(A, U16) X(A, U32) X(A, U64) X(A, S8) X(A, S16) X(A, S32)       \
  X(A, S64) X(A, F16) X(A, BF16) X(A, F32) X(A, F64) X(A, C64) X(A, C128)
#define NARROW_T(X, A) \
  X(A, S2) X(A, S4) X(A, U2) X(A, U4) X(A, F8) X(A, F8_E4M3FN)
#define WIDE_T2(X, A)                                                      \
  X(A, U8) X(A, U16) X(A, U32) X(A, U64) X(A, S8) X(A, S16) X(A, S32)       \
  X(A, S64) X(A, F16) X(A, BF16) X(A, F32) X(A, F64) X(A, C64) X(A, C128)
#define NARROW_T2(X, A) \
  X(A, S2) X(A, S4) X(A, U2) X(A, U4) X(A, F8) X(A, F8_E4M3FN)

#define STG_FN(F, T)                                                     \
  static void stg_##F##_##T(const void *x, void *y, int64_t n) {       \
    cast_staged(EM_##F, EM_##T, x, y, n);                               \
  }
#define STG_ENT(F, T) [EM_##F][EM_##T] = stg_##F##_##T,
#define ROW_N_ALL(X, F) WIDE_T2(X, F) NARROW_T2(X, F)
#define ROW_W_N(X, F) NARROW_T2(X, F)
#define STG_ROWS_N_FN(_, F) ROW_N_ALL(STG_FN, F)
#define STG_ROWS_W_FN(_, F) ROW_W_N(STG_FN, F)
#define STG_ROWS_N_ENT(_, F) ROW_N_ALL(STG_ENT, F)
#define STG_ROWS_W_ENT(_, F) ROW_W_N(STG_ENT, F)
NARROW_T(STG_ROWS_N_FN, _)
WIDE_T(STG_ROWS_W_FN, _)
static const em_unary_kernel staged_table[EM_DTYPE_COUNT][EM_DTYPE_COUNT] = {
    NARROW_T(STG_ROWS_N_ENT, _) WIDE_T(STG_ROWS_W_ENT, _)};

/* ---- narrow unary ops --------------------------------------------------- */

/* Sub-byte ops whose result has the input type and may leave its range
 * (-(-8), abs(-8), ~x of unsigned): the 8-bit kernel, then wrap. */
static void sub_unary(em_op op, em_dtype t, const void *x, void *y,
                      int64_t n) {
  em_unary_kernel k = em_cpu_unary_kernel(op, em_subbyte_base(t));
  if (!k) return; /* the dispatcher checked */
  k(x, y, n);
  em_subbyte_wrap(t, y, n);
}

/* count_leading_zeros / population_count over the type's own width, as
 * Nx reads the bits (unsigned); the count then wraps like any result (a
 * 2-bit 0 has 2 leading zeros, which is -2 as an s2). */
static void sub_bitcount(em_op op, em_dtype t, const void *xv, void *yv,
                         int64_t n) {
  static const unsigned char bitlen[16] = {0, 1, 2, 2, 3, 3, 3, 3,
                                           4, 4, 4, 4, 4, 4, 4, 4};
  static const unsigned char popc[16] = {0, 1, 1, 2, 1, 2, 2, 3,
                                         1, 2, 2, 3, 2, 3, 3, 4};
  const uint8_t *x = (const uint8_t *)xv;
  uint8_t *y = (uint8_t *)yv;
  int w = em_subbyte_bits(t);
  unsigned mask = (1u << w) - 1u;
  for (int64_t i = 0; i < n; i++) {
    unsigned v = x[i] & mask;
    y[i] = (uint8_t)(op == EM_OP_count_leading_zeros ? (unsigned)w - bitlen[v]
                                                     : popc[v]);
  }
  em_subbyte_wrap(t, y, n);
}

/* f8: decode a block to f32, run the f32 kernel, round back once (or
 * write the u8 / complex result directly). */
static void f8_unary(em_op op, em_dtype t, const void *xv, void *yv,
                     int64_t n) {
  em_unary_kernel k = em_cpu_unary_kernel(op, EM_F32);
  int out = em_unary_out_dtype(op, t);
  if (!k || out < 0) return; /* the dispatcher checked */
  size_t os = dt_size[out];
  const uint8_t *x = (const uint8_t *)xv;
  char *y = (char *)yv;
  float a[STAGE], b[STAGE];
  for (int64_t i0 = 0; i0 < n; i0 += STAGE) {
    int64_t m = n - i0 < STAGE ? n - i0 : STAGE;
    f8_decoder(t)(x + i0, a, m);
    if (out == (int)t) {
      k(a, b, m);
      f8_encoder32(t)(b, y + i0, m);
    } else {
      k(a, y + (size_t)i0 * os, m);
    }
  }
}

#define SUB_UNARY_FN(OP, T)                                              \
  static void su_##OP##_##T(const void *x, void *y, int64_t n) {        \
    sub_unary(EM_OP_##OP, EM_##T, x, y, n);                              \
  }
#define SUB_BITS_FN(OP, T)                                               \
  static void su_##OP##_##T(const void *x, void *y, int64_t n) {        \
    sub_bitcount(EM_OP_##OP, EM_##T, x, y, n);                           \
  }
#define SUB_UNARY_4(X, OP) X(OP, S2) X(OP, S4) X(OP, U2) X(OP, U4)
SUB_UNARY_4(SUB_UNARY_FN, negate)
SUB_UNARY_4(SUB_UNARY_FN, abs)
SUB_UNARY_4(SUB_UNARY_FN, bitwise_not)
SUB_UNARY_4(SUB_BITS_FN, count_leading_zeros)
SUB_UNARY_4(SUB_BITS_FN, population_count)

#define F8_UNARY_FN(OP)                                                   \
  static void f8u_##OP##_F8(const void *x, void *y, int64_t n) {         \
    f8_unary(EM_OP_##OP, EM_F8, x, y, n);                                 \
  }                                                                       \
  static void f8u_##OP##_F8_E4M3FN(const void *x, void *y, int64_t n) {  \
    f8_unary(EM_OP_##OP, EM_F8_E4M3FN, x, y, n);                          \
  }
EM_UNARY_OPS(F8_UNARY_FN)

em_unary_kernel em_cpu_narrow_unary_kernel(em_op op, em_dtype t) {
  if (!em_dtype_is_narrow(t)) return NULL;
  int out = em_unary_out_dtype(op, t);
  if (out < 0) return NULL;
  if (em_dtype_is_f8(t)) {
    if (!em_cpu_unary_kernel(op, EM_F32)) return NULL;
    switch (op) {
#define EM_X_(OP) \
  case EM_OP_##OP: return t == EM_F8 ? f8u_##OP##_F8 : f8u_##OP##_F8_E4M3FN;
      EM_UNARY_OPS(EM_X_)
#undef EM_X_
      default: return NULL;
    }
  }
  em_dtype b = em_subbyte_base(t);
  /* Results of another type (f32 of the math ops, u8 predicates) are the
   * 8-bit kernel's: the stored values are the same numbers. */
  if (out != (int)t) return em_cpu_unary_kernel(op, b);
#define PICK4(OP)                                                        \
  (t == EM_S2   ? su_##OP##_S2                                            \
   : t == EM_S4 ? su_##OP##_S4                                            \
   : t == EM_U2 ? su_##OP##_U2                                            \
                : su_##OP##_U4)
  switch (op) {
    case EM_OP_negate: return PICK4(negate);
    case EM_OP_abs: return PICK4(abs);
    case EM_OP_bitwise_not: return PICK4(bitwise_not);
    case EM_OP_count_leading_zeros: return PICK4(count_leading_zeros);
    case EM_OP_population_count: return PICK4(population_count);
    default: return em_cpu_unary_kernel(op, b); /* sign, ceil, ...: in range */
  }
#undef PICK4
}

/* ---- dispatcher ------------------------------------------------------------ */

em_unary_kernel em_cpu_cast_kernel(em_dtype from, em_dtype to) {
  if ((unsigned)from >= EM_DTYPE_COUNT || (unsigned)to >= EM_DTYPE_COUNT)
    return NULL;
  if (from == to) {
    switch (dt_size[from]) {
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
  if (em_dtype_is_narrow(from) || em_dtype_is_narrow(to)) {
    /* Sub-byte values are valid base-type values: read them as such. */
    if (em_dtype_is_subbyte(from) && !em_dtype_is_narrow(to))
      return em_cpu_cast_kernel(em_subbyte_base(from), to);
    if (em_dtype_is_f8(from) && to == EM_F32) return f8_decoder(from);
    if (from == EM_F32 && em_dtype_is_f8(to)) return f8_encoder32(to);
    if (from == EM_F64 && em_dtype_is_f8(to)) return f8_encoder64(to);
    return staged_table[from][to];
  }
  return cast_table[from][to];
}
