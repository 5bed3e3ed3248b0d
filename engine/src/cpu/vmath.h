/* vmath.h — branch-free f32 exp expm1 log log1p erf tanh sigmoid sin cos tan.
 * Range reduction + minimax polynomials with selects instead of branches and
 * no libm calls, so a plain loop calling them vectorises; max errors of 1-2
 * ulp over the whole float range (measured in tests/test_kernels_unary_math.c).
 * All integer work is unsigned (defined wrap-around); no float->int casts. */
#ifndef EMILY_VMATH_H
#define EMILY_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t em_vm_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}
static inline float em_vm_float(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
static inline float em_vm_abs(float x) {
  return em_vm_float(em_vm_bits(x) & 0x7fffffffu);
}
/* c ? a : b on the bit patterns. A plain ?: on floats lets GCC sink the
 * computation of an arm into a branch, which it then will not if-convert
 * (FP ops may trap), and the loop stays scalar; this mask form keeps both
 * arms unconditional, so loops vectorise on every ISA. */
static inline float em_vm_sel(int c, float a, float b) {
  uint32_t m = 0u - (uint32_t)(c != 0);
  return em_vm_float((em_vm_bits(a) & m) | (em_vm_bits(b) & ~m));
}
/* |mag| with the sign of s (mag must be non-negative). */
static inline float em_vm_copysign(float mag, float s) {
  return em_vm_float(em_vm_bits(mag) | (em_vm_bits(s) & 0x80000000u));
}

/* Rounding to an integer by adding 1.5 * 2^23: exact for |v| < 2^22 in the
 * default rounding mode; the integer is then the low bits of the sum. */
#define EM_VM_SHIFTER 0x1.8p23f
#define EM_VM_SHIFTER_BITS 0x4b400000u
#define EM_VM_LOG2E 0x1.715476p0f
/* ln2 = LN2_HI + LN2_LO; LN2_HI has 9 significant bits, so k * LN2_HI is
 * exact for |k| < 2^15 (Cody-Waite reduction). */
#define EM_VM_LN2_HI 0.693359375f
#define EM_VM_LN2_LO -2.12194440e-4f

/* x = k * ln2 + (rh - c), |rh - c| <= ln2/2, for |x| <= 104 (callers
 * clamp); rh = x - k * LN2_HI is exact, c = k * LN2_LO is small. *kb: bits
 * of the shifted k; k is kb - EM_VM_SHIFTER_BITS as two's complement. */
static inline float em_vm_exp_reduce(float x, uint32_t *kb, float *c) {
  float kf = x * EM_VM_LOG2E + EM_VM_SHIFTER;
  *kb = em_vm_bits(kf);
  kf -= EM_VM_SHIFTER;
  *c = kf * EM_VM_LN2_LO;
  return x - kf * EM_VM_LN2_HI;
}

/* expm1(r), r = rh - c, as rh + (r^2 P(r) - c): rh enters unrounded, so the
 * only sizeable rounding is the final add. P minimax on |r| <= ln2/2,
 * relative error 1.3e-8 (deg 4) and 2.4e-10 (deg 5). */
static inline float em_vm_expm1_poly4(float rh, float c) {
  float r = rh - c;
  float p = 0.0013882515486329794f;
  p = p * r + 0.008366520516574383f;
  p = p * r + 0.04166720062494278f;
  p = p * r + 0.1666654348373413f;
  p = p * r + 0.4999999701976776f;
  return rh + ((r * r) * p - c);
}
static inline float em_vm_expm1_poly5(float rh, float c) {
  float r = rh - c;
  float p = 0.0001984589034691453f;
  p = p * r + 0.0013940628850832582f;
  p = p * r + 0.008333389647305012f;
  p = p * r + 0.041666362434625626f;
  p = p * r + 0.1666666567325592f;
  p = p * r + 0.5f;
  return rh + ((r * r) * p - c);
}

/* 2^(biased - 127) for a biased exponent in [1, 254]. */
static inline float em_vm_pow2_biased(uint32_t biased) {
  return em_vm_float(biased << 23);
}

/* exp(x) for x in [-87, 88] only: the result is normal, one scaling. */
static inline float em_vm_exp_mid(float x) {
  uint32_t kb;
  float c, rh = em_vm_exp_reduce(x, &kb, &c);
  float y = 1.0f + em_vm_expm1_poly4(rh, c);
  return y * em_vm_pow2_biased(kb - EM_VM_SHIFTER_BITS + 127u);
}

/* exp: overflows to +inf above 88.72, subnormal results down to -103.97,
 * then +0; NaN propagates (clamps keep NaN: comparisons are false). */
static inline float em_vm_expf(float x) {
  float xc = em_vm_sel(x > 89.0f, 89.0f, x); /* NaN stays NaN */
  xc = em_vm_sel(xc < -104.0f, -104.0f, xc);
  uint32_t kb;
  float c, rh = em_vm_exp_reduce(xc, &kb, &c);
  float y = 1.0f + em_vm_expm1_poly4(rh, c);
  /* k in [-150, 128]: scale by 2^k1 * 2^k2 with both factors normal, so
   * the only rounding is the final one (correct subnormals, clean inf). */
  uint32_t u = kb - EM_VM_SHIFTER_BITS + 256u; /* k + 256 */
  uint32_t h = u >> 1;                          /* k1 + 128 */
  return (y * em_vm_pow2_biased(h - 1u)) * em_vm_pow2_biased(u - h - 1u);
}

/* expm1: exact sign of zero, -1 below -17.33, +inf above 88.72. */
static inline float em_vm_expm1f(float x) {
  float xc = em_vm_sel(x > 89.0f, 89.0f, x); /* NaN stays NaN */
  xc = em_vm_sel(xc < -27.0f, -27.0f, xc);
  uint32_t kb;
  float c, rh = em_vm_exp_reduce(xc, &kb, &c);
  float e = em_vm_expm1_poly5(rh, c);
  uint32_t k = kb - EM_VM_SHIFTER_BITS; /* k in [-39, 128] */
  /* k > 64 (as signed): k + 64 is then above 128 without wrapping. */
  int big = k + 64u > 128u;
  uint32_t j = big ? k - 64u : k;
  float t = em_vm_pow2_biased(j + 127u);
  /* expm1(x) = 2^k * expm1(r) + (2^k - 1); 2^k - 1 is exact for k >= -24
   * and rounds to -1 below, where the result is -1 anyway. */
  float small = t * e + (t - 1.0f);
  float large = (t + t * e) * 0x1p64f;
  float res = em_vm_sel(big, large, small);
  return em_vm_sel(x == 0.0f, x, res);
}

/* log1p(f) for f in [sqrt(1/2) - 1, sqrt(2) - 1], without the k*ln2 part:
 * f - f^2/2 + f^3 Q(f), Q minimax (relative error 5.8e-9). */
static inline float em_vm_log_poly(float f, float kf) {
  float z = f * f;
  float q = -0.07634333521127701f;
  q = q * f + 0.12761901319026947f;
  q = q * f + -0.1316039264202118f;
  q = q * f + 0.14201728999614716f;
  q = q * f + -0.1662333458662033f;
  q = q * f + 0.20001226663589478f;
  q = q * f + -0.250008225440979f;
  q = q * f + 0.3333333134651184f;
  float y = f * z * q;
  y += kf * EM_VM_LN2_LO;
  y -= 0.5f * z;
  float res = f + y;
  return res + kf * EM_VM_LN2_HI;
}

/* log of a positive finite (possibly subnormal) x; other inputs give
 * garbage that callers replace. */
static inline float em_vm_log_core(float x) {
  int sub = x < 0x1p-126f;
  float xs = em_vm_sel(sub, x * 0x1p23f, x);
  uint32_t u = em_vm_bits(xs);
  /* Split x = 2^k * m with m in [sqrt(1/2), sqrt(2)). */
  uint32_t t = u - 0x3f3504f3u;
  uint32_t m = u - (t & 0xff800000u);
  /* (signed t) >> 23, computed on unsigned: t + 2^31 is non-negative. */
  int32_t k = (int32_t)((t + 0x80000000u) >> 23) - 256;
  float kf = (float)(k - (sub ? 23 : 0));
  return em_vm_log_poly(em_vm_float(m) - 1.0f, kf);
}

/* log: -inf at +-0, NaN below 0, +inf at +inf, NaN propagates. */
static inline float em_vm_logf(float x) {
  float res = em_vm_log_core(x);
  res = em_vm_sel(x == 0.0f, -INFINITY, res);
  res = em_vm_sel(x < 0.0f, NAN, res);
  res = em_vm_sel(x == INFINITY, x, res);
  return em_vm_sel(x != x, x, res);
}

/* log1p(x) = log(u) + (x - (u - 1)) / u with u = 1 + x rounded: the second
 * term restores what the rounding of u lost. When u needs no scaling
 * (k == 0) the reduced argument u - 1 plus that error is x itself, so the
 * polynomial runs on x exactly. */
static inline float em_vm_log1pf(float x) {
  float u = 1.0f + x;
  float c = (x - (u - 1.0f)) / u;
  uint32_t ub = em_vm_bits(u);
  uint32_t t = ub - 0x3f3504f3u;
  uint32_t m = ub - (t & 0xff800000u);
  int32_t k = (int32_t)((t + 0x80000000u) >> 23) - 256;
  float f = em_vm_sel(k == 0, x, em_vm_float(m) - 1.0f);
  c = em_vm_sel(k == 0, 0.0f, c);
  /* u is never subnormal here (x >= -1 + 2^-24 or the result is replaced) */
  float res = em_vm_log_poly(f, (float)k) + c;
  res = em_vm_sel(x == -1.0f, -INFINITY, res);
  res = em_vm_sel(x < -1.0f, NAN, res);
  res = em_vm_sel(x == INFINITY, x, res);
  res = em_vm_sel(x == 0.0f, x, res);
  return em_vm_sel(x != x, x, res);
}

/* erf: x + x * P(x^2) on |x| < 1; above, erf = 1 - exp(T(|x|) - x^2) with
 * T(a) ~ log(erfc(a)) + a^2 on [1, 3.93] (a polynomial in a - 2.5); the
 * result is 1 from 3.9192 on. Both pieces are computed and selected. */
static inline float em_vm_erff(float x) {
  float a = em_vm_abs(x);
  float s = x * x;
  float p = 7.853520946810022e-05f;
  p = p * s + -0.0008010098827071488f;
  p = p * s + 0.005188317969441414f;
  p = p * s + -0.026853807270526886f;
  p = p * s + 0.1128358468413353f;
  p = p * s + -0.3761262595653534f;
  p = p * s + 0.12837916612625122f;
  float small = x + x * p; /* the small x * p term carries the rounding */

  float ac = em_vm_sel(a > 3.93f, 3.93f, a); /* NaN passes through */
  ac = em_vm_sel(ac < 1.0f, 1.0f, ac);
  float t = ac - 2.5f;
  float q = 0.00018639338668435812f;
  q = q * t + -0.00015190080739557743f;
  q = q * t + 0.0024655137676745653f;
  q = q * t + -0.010711150243878365f;
  q = q * t + 0.056116893887519836f;
  q = q * t + -0.35269394516944885f;
  q = q * t + -1.556817889213562f;
  float large = em_vm_copysign(1.0f - em_vm_exp_mid(q - ac * ac), x);
  return em_vm_sel(a < 1.0f, small, large);
}

/* tanh: x + x^3 P(x^2) on |x| < 0.625, else 1 - 2 / (exp(2|x|) + 1);
 * exactly +-1 from 9.01 on. */
static inline float em_vm_tanhf(float x) {
  float a = em_vm_abs(x);
  float s = x * x;
  float p = -0.005704729817807674f;
  p = p * s + 0.02063886448740959f;
  p = p * s + -0.053739648312330246f;
  p = p * s + 0.13331441581249237f;
  p = p * s + -0.3333328068256378f;
  float small = x + (x * s) * p;
  float ac = em_vm_sel(a > 9.5f, 9.5f, a); /* NaN passes through */
  float e = em_vm_exp_mid(ac + ac);
  float large = em_vm_copysign(1.0f - 2.0f / (e + 1.0f), x);
  float res = em_vm_sel(a < 0.625f, small, large);
  return em_vm_sel(x == 0.0f, x, res);
}

/* sigmoid = 1 / (1 + exp(-x)); for x < 0 as e / (1 + e) with e = exp(x) so
 * that nothing overflows and tiny results keep their precision. */
static inline float em_vm_sigmoidf(float x) {
  float e = em_vm_expf(-em_vm_abs(x));
  float num = em_vm_sel(x >= 0.0f, 1.0f, e); /* NaN takes e, which is NaN */
  float d = 1.0f + e;
  float err = e - (d - 1.0f); /* d + err == 1 + e exactly */
  float q = num / d;
  /* num / (d + err) ~ q - q * err / d, and 1/d is q (x >= 0) or 1 - q. */
  float rd = em_vm_sel(x >= 0.0f, q, 1.0f - q);
  return q - (q * err) * rd;
}

/* ---- sin / cos / tan --------------------------------------------------
 * For |x| <= EM_VM_TRIG_MAX only (callers route larger and non-finite
 * inputs elsewhere). The reduction x = k*pi/2 + r and the polynomials run
 * in double, so the float result is within ~0.5 ulp. */
#define EM_VM_TRIG_MAX 0x1p20f

static inline uint64_t em_vm_bits64(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return u;
}
static inline double em_vm_double(uint64_t u) {
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}
static inline double em_vm_sel64(int c, double a, double b) {
  uint64_t m = 0u - (uint64_t)(c != 0);
  return em_vm_double((em_vm_bits64(a) & m) | (em_vm_bits64(b) & ~m));
}

/* r = x - k*pi/2 with |r| <= pi/4; *k gets k mod 2^32 in its low bits.
 * PIO2_HI has 33 significant bits, so k * PIO2_HI is exact for k < 2^20. */
static inline double em_vm_trig_reduce(float x, uint64_t *k) {
  double xd = (double)x;
  double kd = xd * 0x1.45f306dc9c883p-1 + 0x1.8p52; /* 2/pi */
  *k = em_vm_bits64(kd);
  kd -= 0x1.8p52;
  double r = xd - kd * 0x1.921fb544p0;      /* PIO2_HI */
  return r - kd * 0x1.0b4611a626331p-34;    /* PIO2_LO = pi/2 - PIO2_HI */
}
/* Taylor series on |r| <= pi/4: truncation below 1e-11 relative. */
static inline double em_vm_sin_poly(double r) {
  double z = r * r;
  double p = -1.0 / 39916800.0;
  p = p * z + 1.0 / 362880.0;
  p = p * z + -1.0 / 5040.0;
  p = p * z + 1.0 / 120.0;
  p = p * z + -1.0 / 6.0;
  return r + (r * z) * p;
}
static inline double em_vm_cos_poly(double r) {
  double z = r * r;
  double p = 1.0 / 479001600.0;
  p = p * z + -1.0 / 3628800.0;
  p = p * z + 1.0 / 40320.0;
  p = p * z + -1.0 / 720.0;
  p = p * z + 1.0 / 24.0;
  p = p * z + -0.5;
  return 1.0 + z * p;
}
/* sin for quadrant offset q (0: sin, 1: cos). */
static inline float em_vm_sincos(float x, uint64_t q) {
  uint64_t k;
  double r = em_vm_trig_reduce(x, &k);
  k += q;
  double v = em_vm_sel64((int)(k & 1u), em_vm_cos_poly(r), em_vm_sin_poly(r));
  v = em_vm_sel64((int)(k & 2u), -v, v);
  return (float)v;
}
static inline float em_vm_sinf(float x) {
  return em_vm_sel(x == 0.0f, x, em_vm_sincos(x, 0)); /* keeps -0 */
}
static inline float em_vm_cosf(float x) { return em_vm_sincos(x, 1); }
static inline float em_vm_tanf(float x) {
  uint64_t k;
  double r = em_vm_trig_reduce(x, &k);
  double s = em_vm_sin_poly(r), c = em_vm_cos_poly(r);
  /* tan(r + k pi/2) = s / c for even k, -c / s for odd k */
  int odd = (int)(k & 1u);
  double v = em_vm_sel64(odd, -c, s) / em_vm_sel64(odd, s, c);
  return em_vm_sel(x == 0.0f, x, (float)v);
}

#endif
