/* half.h — f16 / bf16 / f8 (E5M2) / f8_e4m3fn <-> f32 / f64 conversions
 * (bit patterns in uint16_t / uint8_t). Bit manipulation with mask selects:
 * branch-free, so loops calling these vectorise; exact under FTZ/DAZ and in
 * the default rounding mode. Rounding is to nearest even, directly from the
 * source value. */
#ifndef EMILY_HALF_H
#define EMILY_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t em_f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}
static inline float em_bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
static inline uint64_t em_f64_bits(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return u;
}
static inline double em_bits_f64(uint64_t u) {
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

/* All-ones when c is true: selects are written as masks because GCC
 * does not if-convert nested ?: chains reliably, and that blocks
 * vectorisation of the loops that call these. */
static inline uint32_t em_mask32(int c) { return 0u - (uint32_t)c; }
static inline uint64_t em_mask64(int c) { return 0u - (uint64_t)c; }

/* ---- f16 --------------------------------------------------------------- */

static inline float em_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  uint32_t normal = ((e + 112u) << 23) | (m << 13);
  uint32_t special = 0x7f800000u | (m << 13); /* inf, NaN keeps payload */
  /* Subnormal: m * 2^-24 is a normal f32, so the float path is exact. */
  uint32_t sub = em_f32_bits((float)(int32_t)m * 0x1p-24f);
  uint32_t mz = em_mask32(e == 0), mi = em_mask32(e == 31);
  return em_bits_f32(sign | (sub & mz) | (special & mi) |
                     (normal & ~(mz | mi)));
}

static inline uint16_t em_f32_to_f16(float f) {
  uint32_t x = em_f32_bits(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t a = x & 0x7fffffffu;
  /* Normal f16 range: rebias the exponent, round away the low 13 bits
   * ((v + half - 1 + lsb) >> k is round-to-nearest-even); a carry out of
   * the mantissa gives the next exponent, or inf (0x7c00) at the top. */
  uint32_t rn = a - 0x38000000u;
  uint32_t normal = (rn + 0xfffu + ((rn >> 13) & 1u)) >> 13;
  /* Subnormal f16 (|f| < 2^-14): in |f| + 0.5 the f32 ulp is 2^-24, the
   * f16 subnormal step, so the FP add itself rounds (to nearest even) and
   * the low bits count the steps. f32 subnormals round to 0 either way,
   * so DAZ/FTZ do not matter. */
  uint32_t sub = em_f32_bits(em_bits_f32(a) + 0.5f) - 0x3f000000u;
  uint32_t nan = 0x7e00u | ((a >> 13) & 0x3ffu);
  uint32_t mnan = em_mask32(a > 0x7f800000u);
  uint32_t mbig = em_mask32(a >= 0x47800000u);
  uint32_t mnorm = em_mask32(a >= 0x38800000u);
  uint32_t r = (sub & ~mnorm) | (normal & mnorm & ~mbig) |
               (0x7c00u & mbig & ~mnan) | (nan & mnan);
  return (uint16_t)(sign | r);
}

static inline uint16_t em_f64_to_f16(double d) {
  uint64_t x = em_f64_bits(d);
  uint64_t sign = (x >> 48) & 0x8000u;
  uint64_t a = x & 0x7fffffffffffffffull;
  uint64_t rn = a - ((uint64_t)(1023 - 15) << 52);
  uint64_t normal = (rn + ((1ull << 41) - 1u) + ((rn >> 42) & 1u)) >> 42;
  /* Subnormal f16: the f64 ulp of 2^28 is the f16 step 2^-24 (see
   * em_f32_to_f16). */
  uint64_t sub = em_f64_bits(em_bits_f64(a) + 0x1p28) - 0x41b0000000000000ull;
  uint64_t nan = 0x7e00u | ((a >> 42) & 0x3ffu);
  uint64_t mnan = em_mask64(a > 0x7ff0000000000000ull);
  uint64_t mbig = em_mask64(a >= ((uint64_t)1039 << 52));
  uint64_t mnorm = em_mask64(a >= ((uint64_t)1009 << 52));
  uint64_t r = (sub & ~mnorm) | (normal & mnorm & ~mbig) |
               (0x7c00u & mbig & ~mnan) | (nan & mnan);
  return (uint16_t)(sign | r);
}

/* ---- bf16 -------------------------------------------------------------- */

static inline float em_bf16_to_f32(uint16_t h) {
  return em_bits_f32((uint32_t)h << 16);
}

static inline uint16_t em_f32_to_bf16(float f) {
  uint32_t x = em_f32_bits(f);
  /* Bit-level RNE is uniform over normals and subnormals; the carry turns
   * the largest values into inf. NaN: keep the top payload, force quiet. */
  uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
  uint32_t nan = (x >> 16) | 0x40u;
  uint32_t mnan = em_mask32((x & 0x7fffffffu) > 0x7f800000u);
  return (uint16_t)((nan & mnan) | (rounded & ~mnan));
}

static inline uint16_t em_f64_to_bf16(double d) {
  uint64_t x = em_f64_bits(d);
  uint64_t sign = (x >> 48) & 0x8000u;
  uint64_t a = x & 0x7fffffffffffffffull;
  uint64_t rn = a - ((uint64_t)(1023 - 127) << 52);
  uint64_t normal = (rn + ((1ull << 44) - 1u) + ((rn >> 45) & 1u)) >> 45;
  /* Subnormal bf16: the f64 ulp of 2^-81 is the bf16 step 2^-133. */
  uint64_t sub = em_f64_bits(em_bits_f64(a) + 0x1p-81) - 0x3ae0000000000000ull;
  uint64_t nan = 0x7fc0u | ((a >> 45) & 0x7fu);
  uint64_t mnan = em_mask64(a > 0x7ff0000000000000ull);
  uint64_t mbig = em_mask64(a >= ((uint64_t)1151 << 52));
  uint64_t mnorm = em_mask64(a >= ((uint64_t)897 << 52));
  uint64_t r = (sub & ~mnorm) | (normal & mnorm & ~mbig) |
               (0x7f80u & mbig & ~mnan) | (nan & mnan);
  return (uint16_t)(sign | r);
}

/* ---- f8 (E5M2, Nx's {:f, 8}) ------------------------------------------
 * 1 sign, 5 exponent (bias 15), 2 mantissa bits: the top byte of an f16.
 * Max finite 57344 (0x7b), inf 0x7c, NaN exponent 31 with a nonzero
 * mantissa. Encoding rounds to nearest even (61440, halfway between 57344
 * and 2^16, is a tie that goes to inf); NaN becomes the quiet 0x7e with
 * the input's sign. */

static inline float em_f8_to_f32(uint8_t b) {
  return em_f16_to_f32((uint16_t)((uint16_t)b << 8));
}

static inline uint8_t em_f32_to_f8(float f) {
  uint32_t x = em_f32_bits(f);
  uint32_t sign = (x >> 24) & 0x80u;
  uint32_t a = x & 0x7fffffffu;
  /* Normal (|f| >= 2^-14): rebias, round away the low 21 bits (see
   * em_f32_to_f16); a carry gives the next exponent or inf (0x7c). */
  uint32_t rn = a - 0x38000000u;
  uint32_t normal = (rn + 0xfffffu + ((rn >> 21) & 1u)) >> 21;
  /* Subnormal: the f32 ulp of 128 is 2^-16, the f8 subnormal step. */
  uint32_t sub = em_f32_bits(em_bits_f32(a) + 128.0f) - 0x43000000u;
  uint32_t mnan = em_mask32(a > 0x7f800000u);
  uint32_t mbig = em_mask32(a >= 0x47800000u);  /* >= 2^16 */
  uint32_t mnorm = em_mask32(a >= 0x38800000u); /* >= 2^-14 */
  uint32_t r = (sub & ~mnorm) | (normal & mnorm & ~mbig) |
               (0x7cu & mbig & ~mnan) | (0x7eu & mnan);
  return (uint8_t)(sign | r);
}

static inline uint8_t em_f64_to_f8(double d) {
  uint64_t x = em_f64_bits(d);
  uint64_t sign = (x >> 56) & 0x80u;
  uint64_t a = x & 0x7fffffffffffffffull;
  uint64_t rn = a - ((uint64_t)(1023 - 15) << 52);
  uint64_t normal = (rn + ((1ull << 49) - 1u) + ((rn >> 50) & 1u)) >> 50;
  /* Subnormal: the f64 ulp of 2^36 is 2^-16. */
  uint64_t sub = em_f64_bits(em_bits_f64(a) + 0x1p36) - 0x4230000000000000ull;
  uint64_t mnan = em_mask64(a > 0x7ff0000000000000ull);
  uint64_t mbig = em_mask64(a >= ((uint64_t)(1023 + 16) << 52));
  uint64_t mnorm = em_mask64(a >= ((uint64_t)(1023 - 14) << 52));
  uint64_t r = (sub & ~mnorm) | (normal & mnorm & ~mbig) |
               (0x7cu & mbig & ~mnan) | (0x7eu & mnan);
  return (uint8_t)(sign | r);
}

/* ---- f8_e4m3fn (Nx's {:f8_e4m3fn, 8}) ----------------------------------
 * 1 sign, 4 exponent (bias 7), 3 mantissa bits; no inf: S.1111.111 is NaN
 * and 0x7e = 448 the largest finite value. Encoding rounds to nearest
 * even; finite values beyond ±448 and ±inf saturate to ±448 (as Nx does);
 * NaN becomes 0x7f with the input's sign. */

static inline float em_f8e4m3fn_to_f32(uint8_t b) {
  uint32_t sign = (uint32_t)(b & 0x80u) << 24;
  uint32_t e = ((uint32_t)b >> 3) & 0xfu, m = (uint32_t)b & 7u;
  uint32_t normal = ((e + 120u) << 23) | (m << 20);
  /* Subnormal: m * 2^-9 is a normal f32. */
  uint32_t sub = em_f32_bits((float)(int32_t)m * 0x1p-9f);
  uint32_t mz = em_mask32(e == 0), mn = em_mask32((b & 0x7fu) == 0x7fu);
  return em_bits_f32(sign | (sub & mz) | (0x7fc00000u & mn) |
                     (normal & ~(mz | mn)));
}

static inline uint8_t em_f32_to_f8e4m3fn(float f) {
  uint32_t x = em_f32_bits(f);
  uint32_t sign = (x >> 24) & 0x80u;
  uint32_t a = x & 0x7fffffffu;
  uint32_t rn = a - 0x3c000000u;
  uint32_t normal = (rn + 0x7ffffu + ((rn >> 20) & 1u)) >> 20;
  /* Subnormal (|f| < 2^-6): the f32 ulp of 2^14 is 2^-9. */
  uint32_t sub = em_f32_bits(em_bits_f32(a) + 16384.0f) - 0x46800000u;
  uint32_t mnan = em_mask32(a > 0x7f800000u);
  uint32_t msat = em_mask32(a > 0x43e00000u);  /* > 448, inf, NaN */
  uint32_t mnorm = em_mask32(a >= 0x3c800000u); /* >= 2^-6 */
  uint32_t r = (sub & ~mnorm) | (normal & mnorm & ~msat) |
               (0x7eu & msat & ~mnan) | (0x7fu & mnan);
  return (uint8_t)(sign | r);
}

static inline uint8_t em_f64_to_f8e4m3fn(double d) {
  uint64_t x = em_f64_bits(d);
  uint64_t sign = (x >> 56) & 0x80u;
  uint64_t a = x & 0x7fffffffffffffffull;
  uint64_t rn = a - ((uint64_t)(1023 - 7) << 52);
  uint64_t normal = (rn + ((1ull << 48) - 1u) + ((rn >> 49) & 1u)) >> 49;
  /* Subnormal: the f64 ulp of 2^43 is 2^-9. */
  uint64_t sub = em_f64_bits(em_bits_f64(a) + 0x1p43) - 0x42a0000000000000ull;
  uint64_t mnan = em_mask64(a > 0x7ff0000000000000ull);
  uint64_t msat = em_mask64(a > 0x407c000000000000ull); /* > 448 */
  uint64_t mnorm = em_mask64(a >= ((uint64_t)(1023 - 6) << 52));
  uint64_t r = (sub & ~mnorm) | (normal & mnorm & ~msat) |
               (0x7eu & msat & ~mnan) | (0x7fu & mnan);
  return (uint8_t)(sign | r);
}

#endif
