/* binary.c — CPU kernels for the elementwise binary ops (EM_BINARY_OPS) on
 * contiguous runs, with Nx.BinaryBackend semantics, and their dtype table.
 *
 * Semantics where Nx raises or leaves things to the backend (we follow XLA,
 * which is what EXLA users see, and never trap):
 *  - integer quotient (and divide, defined on ints as the same truncating
 *    division): x / 0 = -1 (all bits set, so UINT_MAX for unsigned);
 *    INT_MIN / -1 = INT_MIN.
 *  - integer remainder has the dividend's sign (C %); x % 0 = x;
 *    INT_MIN % -1 = 0. Float remainder is fmod.
 *  - integer pow: exact modulo 2^bits by repeated squaring (any exponent
 *    size), 0^0 = 1; a negative exponent gives 1 for base 1 and 0 otherwise
 *    (XLA; Nx's BinaryBackend raises).
 *  - shifts: an amount < 0 or >= the bit width gives 0 for left shifts and
 *    for unsigned right shifts, and the sign fill (0 or -1) for signed right
 *    shifts (arithmetic), as XLA's saturating shifts do.
 *  - float min/max: NaN if either input is NaN; min(-0, +0) = -0 and
 *    max(-0, +0) = +0 whatever the order (IEEE 754-2019 minimum/maximum).
 *  - comparisons are false on NaN except not_equal; logical ops treat any
 *    nonzero value as true (NaN included; complex: either part nonzero).
 *  - complex: multiply is the plain (ac - bd, ad + bc) formula (as XLA and
 *    Nx's Complex); divide is C's (Annex G: inf/NaN aware); pow follows
 *    XLA (0^0 = 1, 0^(c+0i) = 0 for c > 0); atan2(y, x) = -i log((x + iy) /
 *    sqrt(x^2 + y^2)) as in XLA. c64 pow/atan2 are computed in double.
 *  - f16/bf16 run through the f32 kernels in stack-sized chunks and are
 *    rounded back to nearest even; for + - * / that is correctly rounded. */
#include <complex.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "../core/half.h"
#include "cpu-kernels.h"
#include "simd.h"
#include "subbyte.h"

/* One kernel: y[i] = EXPR(x = a[i], z = b[i]). Output may alias an input of
 * the same type; each iteration reads a[i] and b[i] before writing y[i]. */
#define EM_BIN_FN(name, Ti, To, EXPR)                                     \
  EM_CLONES static void name(const void *a_, const void *b_, void *y_,    \
                             int64_t n) {                                 \
    const Ti *restrict a = a_;                                            \
    const Ti *restrict b = b_;                                            \
    To *restrict y = y_;                                                  \
    for (int64_t i = 0; i < n; i++) {                                     \
      const Ti x = a[i], z = b[i];                                        \
      y[i] = (To)(EXPR);                                                  \
    }                                                                     \
  }

/* ---- integers ----------------------------------------------------------
 * T the type, U its unsigned twin, UW an unsigned type at least as wide as
 * int (so that U arithmetic never promotes to signed int), W the width.
 * Wrapping arithmetic is done in U/UW and converted back (GCC defines the
 * conversion to signed as modulo 2^W). */

#define EM_INT_COMMON(sfx, T, U, UW, W)                                       \
  EM_BIN_FN(bin_add_##sfx, T, T, (U)((UW)(U)x + (UW)(U)z))                    \
  EM_BIN_FN(bin_subtract_##sfx, T, T, (U)((UW)(U)x - (UW)(U)z))               \
  EM_BIN_FN(bin_multiply_##sfx, T, T, (U)((UW)(U)x * (UW)(U)z))               \
  EM_BIN_FN(bin_min_##sfx, T, T, x < z ? x : z)                               \
  EM_BIN_FN(bin_max_##sfx, T, T, x > z ? x : z)                               \
  EM_BIN_FN(bin_bitwise_and_##sfx, T, T, x & z)                               \
  EM_BIN_FN(bin_bitwise_or_##sfx, T, T, x | z)                                \
  EM_BIN_FN(bin_bitwise_xor_##sfx, T, T, x ^ z)                               \
  /* The count is masked into range so the shift itself is always defined; \
   * the select then zeroes out-of-range amounts. */                         \
  EM_BIN_FN(bin_left_shift_##sfx, T, T,                                       \
            (U)z < (U)(W) ? (U)((UW)(U)x << ((UW)(U)z & (W - 1))) : 0)        \
  EM_BIN_FN(bin_pow_##sfx, T, T, em_ipow_##sfx(x, z))                         \
  EM_BIN_FN(bin_quotient_##sfx, T, T, em_quot_##sfx(x, z))                    \
  EM_BIN_FN(bin_remainder_##sfx, T, T, em_rem_##sfx(x, z))                    \
  EM_BIN_FN(bin_equal_##sfx, T, uint8_t, x == z)                              \
  EM_BIN_FN(bin_not_equal_##sfx, T, uint8_t, x != z)                          \
  EM_BIN_FN(bin_greater_##sfx, T, uint8_t, x > z)                             \
  EM_BIN_FN(bin_less_##sfx, T, uint8_t, x < z)                                \
  EM_BIN_FN(bin_greater_equal_##sfx, T, uint8_t, x >= z)                      \
  EM_BIN_FN(bin_less_equal_##sfx, T, uint8_t, x <= z)                         \
  EM_BIN_FN(bin_logical_and_##sfx, T, uint8_t, (x != 0) & (z != 0))           \
  EM_BIN_FN(bin_logical_or_##sfx, T, uint8_t, (x != 0) | (z != 0))            \
  EM_BIN_FN(bin_logical_xor_##sfx, T, uint8_t, (x != 0) ^ (z != 0))

/* Repeated squaring over the exponent's bits: exact modulo 2^W. */
#define EM_IPOW_LOOP(U, UW)              \
  UW base = (U)x, acc = 1;               \
  U e = (U)z;                            \
  while (e) {                            \
    if (e & 1u) acc *= base;             \
    base *= base;                        \
    e = (U)(e >> 1);                     \
  }

#define EM_DEF_UINT(sfx, T, UW, W)                                  \
  static inline T em_quot_##sfx(T x, T z) {                         \
    T q = (T)(x / (z ? z : 1));                                     \
    return z ? q : (T)~(T)0; /* x / 0: all bits set */              \
  }                                                                 \
  static inline T em_rem_##sfx(T x, T z) {                          \
    T r = (T)(x % (z ? z : 1));                                     \
    return z ? r : x; /* x % 0 = x */                               \
  }                                                                 \
  static inline T em_ipow_##sfx(T x, T z) {                         \
    EM_IPOW_LOOP(T, UW)                                             \
    return (T)acc;                                                  \
  }                                                                 \
  EM_INT_COMMON(sfx, T, T, UW, W)                                   \
  EM_BIN_FN(bin_right_shift_##sfx, T, T,                            \
            z < (T)(W) ? (T)((UW)x >> ((UW)z & (W - 1))) : 0)

#define EM_DEF_SINT(sfx, T, U, UW, W, TMIN)                               \
  static inline T em_quot_##sfx(T x, T z) {                               \
    bool ovf = x == TMIN && z == -1;                                      \
    T q = (T)(x / (z == 0 || ovf ? 1 : z));                               \
    q = ovf ? TMIN : q;      /* INT_MIN / -1 wraps to INT_MIN */          \
    return z == 0 ? -1 : q;  /* x / 0 = -1 */                             \
  }                                                                       \
  static inline T em_rem_##sfx(T x, T z) {                                \
    /* x % -1 is 0 for every x, INT_MIN included. */                      \
    T r = (T)(x % (z == 0 || z == -1 ? 1 : z));                           \
    return z == 0 ? x : r;   /* x % 0 = x */                              \
  }                                                                       \
  static inline T em_ipow_##sfx(T x, T z) {                               \
    if (z < 0) return x == 1; /* XLA: 1 for base 1, else 0 */             \
    EM_IPOW_LOOP(U, UW)                                                   \
    return (T)(U)acc;                                                     \
  }                                                                       \
  EM_INT_COMMON(sfx, T, U, UW, W)                                         \
  /* Arithmetic shift: clamping the amount to W-1 gives the sign fill. */ \
  EM_BIN_FN(bin_right_shift_##sfx, T, T,                                  \
            x >> ((UW)(U)z < (W) ? (UW)(U)z : (UW)(W - 1)))

EM_DEF_UINT(u8, uint8_t, uint32_t, 8)
EM_DEF_UINT(u16, uint16_t, uint32_t, 16)
EM_DEF_UINT(u32, uint32_t, uint32_t, 32)
EM_DEF_UINT(u64, uint64_t, uint64_t, 64)
EM_DEF_SINT(s8, int8_t, uint8_t, uint32_t, 8, INT8_MIN)
EM_DEF_SINT(s16, int16_t, uint16_t, uint32_t, 16, INT16_MIN)
EM_DEF_SINT(s32, int32_t, uint32_t, uint32_t, 32, INT32_MIN)
EM_DEF_SINT(s64, int64_t, uint64_t, uint64_t, 64, INT64_MIN)

/* ---- floats ------------------------------------------------------------ */

/* Branch-free so the loops vectorise. On equal inputs (only ±0 can differ)
 * AND-ing the bits clears the sign unless both are -0 (max); OR-ing sets it
 * if either is -0 (min). A NaN input is returned as is. */
static inline float em_maxf(float a, float b) {
  float r = a > b ? a : b;
  r = a == b ? em_bits_f32(em_f32_bits(a) & em_f32_bits(b)) : r;
  return a != a ? a : (b != b ? b : r);
}
static inline float em_minf(float a, float b) {
  float r = a < b ? a : b;
  r = a == b ? em_bits_f32(em_f32_bits(a) | em_f32_bits(b)) : r;
  return a != a ? a : (b != b ? b : r);
}
static inline double em_maxd(double a, double b) {
  double r = a > b ? a : b;
  r = a == b ? em_bits_f64(em_f64_bits(a) & em_f64_bits(b)) : r;
  return a != a ? a : (b != b ? b : r);
}
static inline double em_mind(double a, double b) {
  double r = a < b ? a : b;
  r = a == b ? em_bits_f64(em_f64_bits(a) | em_f64_bits(b)) : r;
  return a != a ? a : (b != b ? b : r);
}

#define EM_DEF_FLOAT(sfx, T, FMOD, POW, ATAN2, MIN, MAX)            \
  EM_BIN_FN(bin_add_##sfx, T, T, x + z)                             \
  EM_BIN_FN(bin_subtract_##sfx, T, T, x - z)                        \
  EM_BIN_FN(bin_multiply_##sfx, T, T, x * z)                        \
  EM_BIN_FN(bin_divide_##sfx, T, T, x / z)                          \
  EM_BIN_FN(bin_remainder_##sfx, T, T, FMOD(x, z))                  \
  EM_BIN_FN(bin_pow_##sfx, T, T, POW(x, z))                         \
  EM_BIN_FN(bin_atan2_##sfx, T, T, ATAN2(x, z))                     \
  EM_BIN_FN(bin_min_##sfx, T, T, MIN(x, z))                         \
  EM_BIN_FN(bin_max_##sfx, T, T, MAX(x, z))                         \
  EM_BIN_FN(bin_equal_##sfx, T, uint8_t, x == z)                    \
  EM_BIN_FN(bin_not_equal_##sfx, T, uint8_t, x != z)                \
  EM_BIN_FN(bin_greater_##sfx, T, uint8_t, x > z)                   \
  EM_BIN_FN(bin_less_##sfx, T, uint8_t, x < z)                      \
  EM_BIN_FN(bin_greater_equal_##sfx, T, uint8_t, x >= z)            \
  EM_BIN_FN(bin_less_equal_##sfx, T, uint8_t, x <= z)               \
  EM_BIN_FN(bin_logical_and_##sfx, T, uint8_t, (x != 0) & (z != 0)) \
  EM_BIN_FN(bin_logical_or_##sfx, T, uint8_t, (x != 0) | (z != 0))  \
  EM_BIN_FN(bin_logical_xor_##sfx, T, uint8_t, (x != 0) ^ (z != 0))

EM_DEF_FLOAT(f32, float, fmodf, powf, atan2f, em_minf, em_maxf)
EM_DEF_FLOAT(f64, double, fmod, pow, atan2, em_mind, em_maxd)

/* ---- f16 / bf16 -------------------------------------------------------- */

#define EM_HALF_CHUNK 256

#define EM_DEF_HALF_CVT(h)                                                 \
  EM_CLONES static void h##_to_f32_n(const uint16_t *restrict x,           \
                                     float *restrict y, int64_t n) {       \
    for (int64_t i = 0; i < n; i++) y[i] = em_##h##_to_f32(x[i]);          \
  }                                                                        \
  EM_CLONES static void f32_to_##h##_n(const float *restrict x,            \
                                       uint16_t *restrict y, int64_t n) {  \
    for (int64_t i = 0; i < n; i++) y[i] = em_f32_to_##h(x[i]);            \
  }
EM_DEF_HALF_CVT(f16)
EM_DEF_HALF_CVT(bf16)

/* Widens a chunk of both inputs, runs the f32 kernel, narrows (or, for u8
 * results, writes straight to y). A chunk is fully read before any of it is
 * written, so y may alias a or b. */
static void em_half_run(const void *a_, const void *b_, void *y_, int64_t n,
                        em_binary_kernel k32, bool bf16, bool pred) {
  const uint16_t *a = a_, *b = b_;
  float ta[EM_HALF_CHUNK], tb[EM_HALF_CHUNK], ty[EM_HALF_CHUNK];
  for (int64_t o = 0; o < n; o += EM_HALF_CHUNK) {
    int64_t m = n - o < EM_HALF_CHUNK ? n - o : EM_HALF_CHUNK;
    if (bf16) {
      bf16_to_f32_n(a + o, ta, m);
      bf16_to_f32_n(b + o, tb, m);
    } else {
      f16_to_f32_n(a + o, ta, m);
      f16_to_f32_n(b + o, tb, m);
    }
    if (pred) {
      k32(ta, tb, (uint8_t *)y_ + o, m);
      continue;
    }
    k32(ta, tb, ty, m);
    if (bf16)
      f32_to_bf16_n(ty, (uint16_t *)y_ + o, m);
    else
      f32_to_f16_n(ty, (uint16_t *)y_ + o, m);
  }
}

/* ---- complex ----------------------------------------------------------- */
/* c64/c128 are (re, im) pairs of floats/doubles. Elementwise add/subtract
 * reuse the real kernels over 2n values. */

#define EM_CPLX_PAIR_FN(name, R, To, EXPR)                               \
  EM_CLONES static void name(const void *a_, const void *b_, void *y_,   \
                             int64_t n) {                                \
    const R *restrict a = a_;                                            \
    const R *restrict b = b_;                                            \
    To *restrict y = y_;                                                 \
    for (int64_t i = 0; i < n; i++) {                                    \
      const R ar = a[2 * i], ai = a[2 * i + 1];                          \
      const R br = b[2 * i], bi = b[2 * i + 1];                          \
      EXPR;                                                              \
    }                                                                    \
  }

/* XLA's complex pow: with r = |a|, t = arg(a), a^(c+di) =
 * r^c e^(-d t) (cos q + i sin q), q = c t + d ln r; 0^0 = 1 and
 * 0^(c+0i) = 0 for c > 0. hypot avoids overflow in |a|^2. */
static double complex em_cpow(double complex a, double complex w) {
  double ar = creal(a), ai = cimag(a), c = creal(w), d = cimag(w);
  double r = hypot(ar, ai);
  if (r == 0 && d == 0 && c >= 0) return CMPLX(c == 0 ? 1.0 : 0.0, 0.0);
  double t = atan2(ai, ar);
  double coeff = pow(r, c) * exp(-d * t);
  double q = c * t + d * log(r);
  return CMPLX(coeff * cos(q), coeff * sin(q));
}

/* XLA's complex atan2(y, x) = -i log((x + iy) / sqrt(x^2 + y^2)); for real
 * inputs it reduces to the real atan2 (up to the sign of zero). */
static double complex em_catan2(double complex y, double complex x) {
  double complex s = csqrt(x * x + y * y);
  double complex u =
      CMPLX(creal(x) - cimag(y), cimag(x) + creal(y)); /* x + i y */
  double complex l = clog(u / s);
  return CMPLX(cimag(l), -creal(l)); /* -i l */
}

#define EM_DEF_COMPLEX(sfx, R, C, rsfx)                                \
  static void bin_add_##sfx(const void *a, const void *b, void *y,            \
                            int64_t n) {                                       \
    bin_add_##rsfx(a, b, y, 2 * n);                                            \
  }                                                                            \
  static void bin_subtract_##sfx(const void *a, const void *b, void *y,       \
                                 int64_t n) {                                  \
    bin_subtract_##rsfx(a, b, y, 2 * n);                                       \
  }                                                                            \
  EM_CPLX_PAIR_FN(bin_multiply_##sfx, R, R,                                    \
                  (y[2 * i] = ar * br - ai * bi,                               \
                   y[2 * i + 1] = ar * bi + ai * br))                          \
  EM_CPLX_PAIR_FN(bin_equal_##sfx, R, uint8_t,                                 \
                  y[i] = (uint8_t)((ar == br) & (ai == bi)))                   \
  EM_CPLX_PAIR_FN(bin_not_equal_##sfx, R, uint8_t,                             \
                  y[i] = (uint8_t)((ar != br) | (ai != bi)))                   \
  EM_CPLX_PAIR_FN(bin_logical_and_##sfx, R, uint8_t,                           \
                  y[i] = (uint8_t)(((ar != 0) | (ai != 0)) &                   \
                                   ((br != 0) | (bi != 0))))                   \
  EM_CPLX_PAIR_FN(bin_logical_or_##sfx, R, uint8_t,                            \
                  y[i] = (uint8_t)(((ar != 0) | (ai != 0)) |                   \
                                   ((br != 0) | (bi != 0))))                   \
  EM_CPLX_PAIR_FN(bin_logical_xor_##sfx, R, uint8_t,                           \
                  y[i] = (uint8_t)(((ar != 0) | (ai != 0)) ^                   \
                                   ((br != 0) | (bi != 0))))                   \
  EM_BIN_FN(bin_divide_##sfx, C, C, x / z)                                     \
  EM_BIN_FN(bin_pow_##sfx, C, C, em_cpow(x, z))                                \
  EM_BIN_FN(bin_atan2_##sfx, C, C, em_catan2(x, z))

EM_DEF_COMPLEX(c64, float, float complex, f32)
EM_DEF_COMPLEX(c128, double, double complex, f64)

/* ---- tables ------------------------------------------------------------ */

#define EM_FLOAT_OPS(X, D, sfx)                                            \
  X(add, D, sfx) X(subtract, D, sfx) X(multiply, D, sfx) X(divide, D, sfx) \
  X(pow, D, sfx) X(remainder, D, sfx) X(atan2, D, sfx) X(min, D, sfx)      \
  X(max, D, sfx) EM_PRED_OPS(X, D, sfx)
#define EM_PRED_OPS(X, D, sfx)                                             \
  X(equal, D, sfx) X(not_equal, D, sfx) X(greater, D, sfx)                 \
  X(less, D, sfx) X(greater_equal, D, sfx) X(less_equal, D, sfx)           \
  EM_LOGICAL_OPS(X, D, sfx)
#define EM_LOGICAL_OPS(X, D, sfx) \
  X(logical_and, D, sfx) X(logical_or, D, sfx) X(logical_xor, D, sfx)
#define EM_INT_OPS(X, D, sfx)                                              \
  X(add, D, sfx) X(subtract, D, sfx) X(multiply, D, sfx) X(pow, D, sfx)    \
  X(remainder, D, sfx) X(min, D, sfx) X(max, D, sfx) X(quotient, D, sfx)   \
  X(bitwise_and, D, sfx) X(bitwise_or, D, sfx) X(bitwise_xor, D, sfx)      \
  X(left_shift, D, sfx) X(right_shift, D, sfx) EM_PRED_OPS(X, D, sfx)
#define EM_COMPLEX_OPS(X, D, sfx)                                          \
  X(add, D, sfx) X(subtract, D, sfx) X(multiply, D, sfx) X(divide, D, sfx) \
  X(pow, D, sfx) X(atan2, D, sfx) X(equal, D, sfx) X(not_equal, D, sfx)    \
  EM_LOGICAL_OPS(X, D, sfx)

static bool em_binary_is_pred(em_op op) {
  switch (op) {
    case EM_OP_equal: case EM_OP_not_equal: case EM_OP_greater:
    case EM_OP_less: case EM_OP_greater_equal: case EM_OP_less_equal:
    case EM_OP_logical_and: case EM_OP_logical_or: case EM_OP_logical_xor:
      return true;
    default:
      return false;
  }
}

/* f16/bf16 wrappers around the f32 kernels. */
#define EM_HALF_FN(op, D, sfx)                                             \
  static void bin_##op##_##sfx(const void *a, const void *b, void *y,      \
                               int64_t n) {                                \
    em_half_run(a, b, y, n, bin_##op##_f32, D == EM_BF16,                  \
                em_binary_is_pred(EM_OP_##op));                            \
  }
EM_FLOAT_OPS(EM_HALF_FN, EM_F16, f16)
EM_FLOAT_OPS(EM_HALF_FN, EM_BF16, bf16)

#define EM_ENTRY(op, D, sfx) [EM_OP_##op][D] = bin_##op##_##sfx,
/* Integer divide is the truncating quotient (Nx itself always divides in
 * floating point, so only direct engine callers see this). */
#define EM_INT_ENTRIES(D, sfx) \
  EM_INT_OPS(EM_ENTRY, D, sfx)[EM_OP_divide][D] = bin_quotient_##sfx,

static const em_binary_kernel em_binary_table[EM_OP_COUNT][EM_DTYPE_COUNT] = {
    EM_INT_ENTRIES(EM_U8, u8) EM_INT_ENTRIES(EM_U16, u16)
    EM_INT_ENTRIES(EM_U32, u32) EM_INT_ENTRIES(EM_U64, u64)
    EM_INT_ENTRIES(EM_S8, s8) EM_INT_ENTRIES(EM_S16, s16)
    EM_INT_ENTRIES(EM_S32, s32) EM_INT_ENTRIES(EM_S64, s64)
    EM_FLOAT_OPS(EM_ENTRY, EM_F16, f16)
    EM_FLOAT_OPS(EM_ENTRY, EM_BF16, bf16)
    EM_FLOAT_OPS(EM_ENTRY, EM_F32, f32)
    EM_FLOAT_OPS(EM_ENTRY, EM_F64, f64)
    EM_COMPLEX_OPS(EM_ENTRY, EM_C64, c64)
    EM_COMPLEX_OPS(EM_ENTRY, EM_C128, c128)
};

em_binary_kernel em_cpu_binary_kernel(em_op op, em_dtype t) {
  if ((unsigned)op >= EM_OP_COUNT || (unsigned)t >= EM_DTYPE_COUNT)
    return NULL;
  if (em_dtype_is_narrow(t)) return em_cpu_narrow_binary_kernel(op, t);
  return em_binary_table[op][t];
}

int em_binary_out_dtype(em_op op, em_dtype t) {
  if (!em_cpu_binary_kernel(op, t)) return -1;
  return em_binary_is_pred(op) ? (int)EM_U8 : (int)t;
}
