/* half.h — f16 / bf16 <-> f32 / f64 conversions (bit patterns in uint16_t).
 * Integer-only, select-based code: exact under any FTZ/DAZ setting, no
 * branches, so loops calling these vectorise. Rounding is to nearest even. */
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

/* ---- f16 --------------------------------------------------------------- */

static inline float em_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  uint32_t normal = ((e + 112u) << 23) | (m << 13);
  uint32_t special = 0x7f800000u | (m << 13); /* inf, NaN keeps payload */
  /* Subnormal: m * 2^-24 is a normal f32, so the float path is exact. */
  uint32_t sub = em_f32_bits((float)(int32_t)m * 0x1p-24f);
  uint32_t r = e == 0 ? sub : (e == 31 ? special : normal);
  return em_bits_f32(sign | r);
}

static inline uint16_t em_f32_to_f16(float f) {
  uint32_t x = em_f32_bits(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t a = x & 0x7fffffffu;
  /* Normal f16 range: rebias the exponent, round away the low 13 bits;
   * a carry out of the mantissa correctly produces the next exponent or
   * inf (0x7c00) at the top. */
  uint32_t rn = a - 0x38000000u;
  uint32_t normal = (rn + 0xfffu + ((rn >> 13) & 1u)) >> 13;
  /* Subnormal f16: result = RNE(m >> s), m the full significand. */
  uint32_t e = a >> 23;
  uint32_t m = (a & 0x7fffffu) | (e ? 0x800000u : 0u);
  uint32_t s = 126u - e; /* >= 14 here */
  s = s - 1u > 24u ? 25u : s; /* also maps s == 0 (unused lane) */
  uint32_t q = m >> s, rem = m & ((1u << s) - 1u), half = 1u << (s - 1u);
  uint32_t sub = q + ((rem > half) | ((rem == half) & q & 1u));
  uint32_t nan = 0x7e00u | ((a >> 13) & 0x3ffu);
  uint32_t r = a > 0x7f800000u   ? nan
               : a >= 0x47800000u ? 0x7c00u
               : a >= 0x38800000u ? normal
                                  : sub;
  return (uint16_t)(sign | r);
}

static inline uint16_t em_f64_to_f16(double d) {
  uint64_t x = em_f64_bits(d);
  uint32_t sign = (uint32_t)(x >> 48) & 0x8000u;
  uint64_t a = x & 0x7fffffffffffffffull;
  uint64_t rn = a - ((uint64_t)(1023 - 15) << 52);
  uint32_t normal =
      (uint32_t)((rn + ((1ull << 41) - 1u) + ((rn >> 42) & 1u)) >> 42);
  uint32_t e = (uint32_t)(a >> 52);
  uint64_t m = (a & 0xfffffffffffffull) | (e ? (1ull << 52) : 0u);
  uint32_t s = 1051u - e; /* >= 43 here: value / 2^-24 = m * 2^(e-1051) */
  s = s - 1u > 53u ? 54u : s; /* also maps s == 0 (unused lane) */
  uint64_t q = m >> s, rem = m & ((1ull << s) - 1u), half = 1ull << (s - 1u);
  uint32_t sub = (uint32_t)(q + ((rem > half) | ((rem == half) & q & 1u)));
  uint32_t nan = 0x7e00u | (uint32_t)((a >> 42) & 0x3ffu);
  uint32_t r = a > 0x7ff0000000000000ull        ? nan
               : a >= ((uint64_t)1039 << 52)     ? 0x7c00u
               : a >= ((uint64_t)1009 << 52)     ? normal
                                                 : sub;
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
  return (uint16_t)((x & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}

static inline uint16_t em_f64_to_bf16(double d) {
  uint64_t x = em_f64_bits(d);
  uint32_t sign = (uint32_t)(x >> 48) & 0x8000u;
  uint64_t a = x & 0x7fffffffffffffffull;
  uint64_t rn = a - ((uint64_t)(1023 - 127) << 52);
  uint32_t normal =
      (uint32_t)((rn + ((1ull << 44) - 1u) + ((rn >> 45) & 1u)) >> 45);
  uint32_t e = (uint32_t)(a >> 52);
  uint64_t m = (a & 0xfffffffffffffull) | (e ? (1ull << 52) : 0u);
  uint32_t s = 942u - e; /* >= 46 here: value / 2^-133 = m * 2^(e-942) */
  s = s - 1u > 53u ? 54u : s; /* also maps s == 0 (unused lane) */
  uint64_t q = m >> s, rem = m & ((1ull << s) - 1u), half = 1ull << (s - 1u);
  uint32_t sub = (uint32_t)(q + ((rem > half) | ((rem == half) & q & 1u)));
  uint32_t nan = 0x7fc0u | (uint32_t)((a >> 45) & 0x7fu);
  uint32_t r = a > 0x7ff0000000000000ull        ? nan
               : a >= ((uint64_t)1151 << 52)     ? 0x7f80u
               : a >= ((uint64_t)897 << 52)      ? normal
                                                 : sub;
  return (uint16_t)(sign | r);
}

#endif
