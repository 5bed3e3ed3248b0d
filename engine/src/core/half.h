/* half.h — f16 / bf16 <-> f32 / f64 conversions (bit patterns in uint16_t).
 * Integer bit manipulation with mask selects: exact under any FTZ/DAZ
 * setting and branch-free, so loops calling these vectorise. Rounding is
 * to nearest even, directly from the source value. */
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
  /* Subnormal f16: value / 2^-24 = m * 2^(e-126), rounded the same way.
   * s is clamped to [1, 25] so every lane's shift is defined. */
  uint32_t e = a >> 23;
  uint32_t m = (a & 0x7fffffu) | ((uint32_t)(e != 0) << 23);
  uint32_t s1 = 125u - e;
  s1 = s1 < 24u ? s1 : 24u;
  uint32_t s = s1 + 1u;
  uint32_t sub = (m + ((1u << s1) - 1u) + ((m >> s) & 1u)) >> s;
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
  /* value / 2^-24 = m * 2^(e-1051), shifted by s1 + 1 in [1, 54]. */
  uint64_t e = a >> 52;
  uint64_t m = (a & 0xfffffffffffffull) | ((uint64_t)(e != 0) << 52);
  uint64_t s1 = 1050u - e;
  s1 = s1 < 53u ? s1 : 53u;
  uint64_t t = m >> s1, q = t >> 1; /* t keeps the rounding bit */
  uint64_t sticky = (uint64_t)((t << s1) != m);
  uint64_t sub = q + (t & 1u & (sticky | q));
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
  /* value / 2^-133 = m * 2^(e-942), shifted by s1 + 1 in [1, 54]. */
  uint64_t e = a >> 52;
  uint64_t m = (a & 0xfffffffffffffull) | ((uint64_t)(e != 0) << 52);
  uint64_t s1 = 941u - e;
  s1 = s1 < 53u ? s1 : 53u;
  uint64_t t = m >> s1, q = t >> 1; /* t keeps the rounding bit */
  uint64_t sticky = (uint64_t)((t << s1) != m);
  uint64_t sub = q + (t & 1u & (sticky | q));
  uint64_t nan = 0x7fc0u | ((a >> 45) & 0x7fu);
  uint64_t mnan = em_mask64(a > 0x7ff0000000000000ull);
  uint64_t mbig = em_mask64(a >= ((uint64_t)1151 << 52));
  uint64_t mnorm = em_mask64(a >= ((uint64_t)897 << 52));
  uint64_t r = (sub & ~mnorm) | (normal & mnorm & ~mbig) |
               (0x7f80u & mbig & ~mnan) | (nan & mnan);
  return (uint16_t)(sign | r);
}

#endif
