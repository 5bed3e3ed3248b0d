/* test_kernels_binary.c — checks every binary CPU kernel (op x dtype) per
 * element against an independent reference: 128-bit integers for ints,
 * _Float128 / long double for floats, a hand-written f16/bf16 codec. */
#include <complex.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu-kernels.h"
#include "harness.h"

typedef __int128 i128;
typedef unsigned __int128 u128;
typedef long double ld;
typedef long double complex cld;
typedef _Float128 q128;

#define NBUF 1040 /* elements per buffer: 1037 plus room for offsets */

static const struct {
  em_op op;
  const char *name;
} OPS[] = {
#define X(n) {EM_OP_##n, #n},
    EM_BINARY_OPS(X)
#undef X
};
#define NOPS ((int)(sizeof OPS / sizeof OPS[0]))

static const struct {
  const char *name;
  int bits;
  char kind;
} DT[] = {
#define X(N_, n, b, k) {#n, b, k},
    EM_DTYPES(X)
#undef X
};

static const char *opname(em_op op) {
  for (int k = 0; k < NOPS; k++)
    if (OPS[k].op == op) return OPS[k].name;
  return "?";
}

static bool is_pred(em_op op) {
  return op == EM_OP_equal || op == EM_OP_not_equal || op == EM_OP_greater ||
         op == EM_OP_less || op == EM_OP_greater_equal ||
         op == EM_OP_less_equal || op == EM_OP_logical_and ||
         op == EM_OP_logical_or || op == EM_OP_logical_xor;
}

/* What Nx 0.13 defines, written out independently of binary.c. */
static bool expect_defined(em_op op, char kind) {
  bool is_int = kind == 'u' || kind == 's';
  switch (op) {
    case EM_OP_add: case EM_OP_subtract: case EM_OP_multiply:
    case EM_OP_divide: case EM_OP_pow: case EM_OP_equal:
    case EM_OP_not_equal: case EM_OP_logical_and: case EM_OP_logical_or:
    case EM_OP_logical_xor:
      return true;
    case EM_OP_remainder: case EM_OP_min: case EM_OP_max:
    case EM_OP_greater: case EM_OP_less: case EM_OP_greater_equal:
    case EM_OP_less_equal:
      return kind != 'c';
    case EM_OP_atan2:
      return kind == 'f' || kind == 'c';
    case EM_OP_quotient: case EM_OP_bitwise_and: case EM_OP_bitwise_or:
    case EM_OP_bitwise_xor: case EM_OP_left_shift: case EM_OP_right_shift:
      return is_int;
    default:
      return false;
  }
}

static size_t esize(em_dtype t) { return (size_t)DT[t].bits / 8; }

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static double urand(double lo, double hi) {
  return lo + (hi - lo) * (double)(rnd() >> 11) * 0x1p-53;
}

/* ---- integers ---------------------------------------------------------- */

static i128 wrap(i128 v, int bits, bool sgn) {
  u128 u = (u128)v & ((((u128)1) << bits) - 1);
  if (sgn && ((u >> (bits - 1)) & 1)) return (i128)u - ((i128)1 << bits);
  return (i128)u;
}

static i128 ld_int(em_dtype t, const void *p, int64_t i) {
  switch (t) {
    case EM_U8: return ((const uint8_t *)p)[i];
    case EM_U16: return ((const uint16_t *)p)[i];
    case EM_U32: return ((const uint32_t *)p)[i];
    case EM_U64: return ((const uint64_t *)p)[i];
    case EM_S8: return ((const int8_t *)p)[i];
    case EM_S16: return ((const int16_t *)p)[i];
    case EM_S32: return ((const int32_t *)p)[i];
    case EM_S64: return ((const int64_t *)p)[i];
    default: return 0;
  }
}

static void st_int(em_dtype t, void *p, int64_t i, i128 v) {
  v = wrap(v, DT[t].bits, DT[t].kind == 's');
  switch (t) {
    case EM_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case EM_U16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case EM_U32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case EM_U64: ((uint64_t *)p)[i] = (uint64_t)v; break;
    case EM_S8: ((int8_t *)p)[i] = (int8_t)v; break;
    case EM_S16: ((int16_t *)p)[i] = (int16_t)v; break;
    case EM_S32: ((int32_t *)p)[i] = (int32_t)v; break;
    case EM_S64: ((int64_t *)p)[i] = (int64_t)v; break;
    default: break;
  }
}

static i128 ref_int(em_op op, i128 a, i128 b, int bits, bool sgn) {
  switch (op) {
    case EM_OP_add: return wrap(a + b, bits, sgn);
    case EM_OP_subtract: return wrap(a - b, bits, sgn);
    case EM_OP_multiply: return wrap((i128)((u128)a * (u128)b), bits, sgn);
    case EM_OP_divide:
    case EM_OP_quotient: return b == 0 ? wrap(-1, bits, sgn) : wrap(a / b, bits, sgn);
    case EM_OP_remainder: return b == 0 ? a : a % b;
    case EM_OP_pow: {
      if (b < 0) return a == 1;
      u128 mask = (((u128)1) << bits) - 1, base = (u128)a & mask, r = 1;
      for (int k = 127; k >= 0; k--) { /* left-to-right binary method */
        r = (r * r) & mask;
        if ((((u128)b) >> k) & 1) r = (r * base) & mask;
      }
      return wrap((i128)r, bits, sgn);
    }
    case EM_OP_min: return a < b ? a : b;
    case EM_OP_max: return a > b ? a : b;
    case EM_OP_bitwise_and: return a & b;
    case EM_OP_bitwise_or: return a | b;
    case EM_OP_bitwise_xor: return a ^ b;
    case EM_OP_left_shift:
      return b >= 0 && b < bits ? wrap((i128)((u128)a << (int)b), bits, sgn) : 0;
    case EM_OP_right_shift:
      if (b >= 0 && b < bits) { /* floor(a / 2^b) */
        i128 d = (i128)1 << (int)b, q = a / d;
        if (a % d != 0 && a < 0) q -= 1;
        return q;
      }
      return a < 0 ? -1 : 0;
    case EM_OP_equal: return a == b;
    case EM_OP_not_equal: return a != b;
    case EM_OP_greater: return a > b;
    case EM_OP_less: return a < b;
    case EM_OP_greater_equal: return a >= b;
    case EM_OP_less_equal: return a <= b;
    case EM_OP_logical_and: return a != 0 && b != 0;
    case EM_OP_logical_or: return a != 0 || b != 0;
    case EM_OP_logical_xor: return (a != 0) != (b != 0);
    default: return 0;
  }
}

static void fill_int(em_dtype t, void *A, void *B) {
  int bits = DT[t].bits;
  bool sgn = DT[t].kind == 's';
  i128 max = sgn ? ((i128)1 << (bits - 1)) - 1 : ((i128)1 << bits) - 1;
  i128 min = sgn ? -((i128)1 << (bits - 1)) : 0;
  /* shift amounts -1, 0, width-1, width, width+1; extremes; x/0 ... */
  const i128 edges[] = {0,       1,       2,       3,   7,    bits - 1,
                        bits,    bits + 1, max,    max - 1, min, min + 1,
                        -1,      -2,      100,     (i128)1 << (bits - 1)};
  const int ne = (int)(sizeof edges / sizeof edges[0]);
  int64_t i = 0;
  for (int p = 0; p < ne; p++)
    for (int q = 0; q < ne; q++, i++) {
      st_int(t, A, i, edges[p]);
      st_int(t, B, i, edges[q]);
    }
  for (; i < NBUF; i++) {
    bool small = i & 1; /* small values exercise pow and shift amounts */
    st_int(t, A, i, small ? (i128)(rnd() % 40) - 8 : (i128)rnd());
    st_int(t, B, i, small ? (i128)(rnd() % 74) - 3 : (i128)rnd());
  }
}

static bool check_int(em_op op, em_dtype t, const void *A, int64_t ia,
                      const void *B, int64_t ib, const void *Y, int64_t iy,
                      char *why) {
  i128 a = ld_int(t, A, ia), b = ld_int(t, B, ib);
  i128 want = ref_int(op, a, b, DT[t].bits, DT[t].kind == 's');
  i128 got = is_pred(op) ? ((const uint8_t *)Y)[iy] : ld_int(t, Y, iy);
  snprintf(why, 200, "a=%lld b=%lld got=%lld want=%lld", (long long)a,
           (long long)b, (long long)got, (long long)want);
  return got == want;
}

/* ---- real floats ------------------------------------------------------- */

/* Independent f16/bf16 codec: plain arithmetic, not bit tricks. */
static double dec_half(uint16_t h, int mbits, int ebits) {
  int bias = (1 << (ebits - 1)) - 1;
  int s = h >> 15, e = (h >> mbits) & ((1 << ebits) - 1);
  int m = h & ((1 << mbits) - 1);
  double v;
  if (e == 0)
    v = ldexp(m, 1 - bias - mbits);
  else if (e == (1 << ebits) - 1)
    v = m ? NAN : INFINITY;
  else
    v = ldexp(m + (1 << mbits), e - bias - mbits);
  return s ? -v : v;
}

static uint16_t enc_half(double v, int mbits, int ebits) {
  int bias = (1 << (ebits - 1)) - 1, emin = 1 - bias, emax = bias;
  uint16_t sign = signbit(v) ? 0x8000 : 0;
  uint16_t expall = (uint16_t)(((1 << ebits) - 1) << mbits);
  if (isnan(v)) return (uint16_t)(expall | (1 << (mbits - 1)));
  double a = fabs(v);
  if (isinf(a)) return sign | expall;
  if (a == 0) return sign;
  int e;
  frexp(a, &e);
  int E = e - 1 < emin ? emin : e - 1;
  double quantum = ldexp(1.0, E - mbits);
  double r = nearbyint(a / quantum) * quantum; /* round to nearest even */
  if (r > ldexp(2.0 - ldexp(1.0, -mbits), emax)) return sign | expall;
  if (r < ldexp(1.0, emin))
    return sign | (uint16_t)(r / ldexp(1.0, emin - mbits));
  frexp(r, &e);
  E = e - 1;
  uint16_t m = (uint16_t)(r / ldexp(1.0, E - mbits) - (1 << mbits));
  return sign | (uint16_t)((E + bias) << mbits) | m;
}

static int mbits_of(em_dtype t) { return t == EM_F16 ? 10 : 7; }
static int ebits_of(em_dtype t) { return t == EM_F16 ? 5 : 8; }

static ld ld_flt(em_dtype t, const void *p, int64_t i) {
  switch (t) {
    case EM_F16: case EM_BF16:
      return dec_half(((const uint16_t *)p)[i], mbits_of(t), ebits_of(t));
    case EM_F32: return ((const float *)p)[i];
    case EM_F64: return ((const double *)p)[i];
    default: return 0;
  }
}

static void st_flt(em_dtype t, void *p, int64_t i, double v) {
  switch (t) {
    case EM_F16: case EM_BF16:
      ((uint16_t *)p)[i] = enc_half(v, mbits_of(t), ebits_of(t));
      break;
    case EM_F32: ((float *)p)[i] = (float)v; break;
    case EM_F64: ((double *)p)[i] = v; break;
    default: break;
  }
}

static uint64_t raw_bits(em_dtype t, const void *p, int64_t i) {
  switch (t) {
    case EM_F16: case EM_BF16: return ((const uint16_t *)p)[i];
    case EM_F32: { uint32_t u; memcpy(&u, (const float *)p + i, 4); return u; }
    case EM_F64: { uint64_t u; memcpy(&u, (const double *)p + i, 8); return u; }
    default: return 0;
  }
}

/* Rounds a reference value to t's bit pattern. Going through double is
 * safe for f16/bf16 (53 >= 2*11+2 bits: no double-rounding error). */
static uint64_t round_bits(em_dtype t, q128 v) {
  switch (t) {
    case EM_F16: case EM_BF16:
      return enc_half((double)v, mbits_of(t), ebits_of(t));
    case EM_F32: { float f = (float)v; uint32_t u; memcpy(&u, &f, 4); return u; }
    case EM_F64: { double d = (double)v; uint64_t u; memcpy(&u, &d, 8); return u; }
    default: return 0;
  }
}

static bool bits_isnan(em_dtype t, uint64_t u) {
  int mb = t == EM_F16 ? 10 : t == EM_BF16 ? 7 : t == EM_F32 ? 23 : 52;
  int nb = DT[t].bits;
  uint64_t mag = u & ((1ull << (nb - 1)) - 1), inf = ((1ull << (nb - 1 - mb)) - 1) << mb;
  return mag > inf;
}
static bool bits_isinf(em_dtype t, uint64_t u) {
  int mb = t == EM_F16 ? 10 : t == EM_BF16 ? 7 : t == EM_F32 ? 23 : 52;
  int nb = DT[t].bits;
  uint64_t mag = u & ((1ull << (nb - 1)) - 1), inf = ((1ull << (nb - 1 - mb)) - 1) << mb;
  return mag == inf;
}
/* Position on the number line in ulps (monotonic; -0 and +0 both 0). */
static int64_t ord_bits(em_dtype t, uint64_t u) {
  int nb = DT[t].bits;
  int64_t mag = (int64_t)(u & ((1ull << (nb - 1)) - 1));
  return (u >> (nb - 1)) & 1 ? -mag : mag;
}

static bool nz(ld v) { return fpclassify(v) != FP_ZERO; }

static bool check_flt(em_op op, em_dtype t, const void *A, int64_t ia,
                      const void *B, int64_t ib, const void *Y, int64_t iy,
                      char *why) {
  ld a = ld_flt(t, A, ia), b = ld_flt(t, B, ib);
  bool nan = isnan(a) || isnan(b);
  if (is_pred(op)) {
    int want;
    switch (op) {
      case EM_OP_equal: want = !nan && a == b; break;
      case EM_OP_not_equal: want = nan || a != b; break;
      case EM_OP_greater: want = !nan && a > b; break;
      case EM_OP_less: want = !nan && a < b; break;
      case EM_OP_greater_equal: want = !nan && a >= b; break;
      case EM_OP_less_equal: want = !nan && a <= b; break;
      case EM_OP_logical_and: want = nz(a) && nz(b); break;
      case EM_OP_logical_or: want = nz(a) || nz(b); break;
      default: want = nz(a) != nz(b); break;
    }
    int got = ((const uint8_t *)Y)[iy];
    snprintf(why, 200, "a=%Lg b=%Lg got=%d want=%d", a, b, got, want);
    return got == want;
  }
  q128 qa = a, qb = b, r;
  int tol = 0; /* in ulps of t */
  switch (op) {
    case EM_OP_add: r = qa + qb; break;
    case EM_OP_subtract: r = qa - qb; break;
    case EM_OP_multiply: r = qa * qb; break;
    case EM_OP_divide: r = qa / qb; break;
    case EM_OP_remainder: r = fmodl(a, b); break; /* exact */
    case EM_OP_pow: r = powl(a, b); tol = 1; break;
    case EM_OP_atan2: r = atan2l(a, b); tol = 2; break;
    case EM_OP_min: case EM_OP_max: {
      bool mx = op == EM_OP_max;
      if (nan)
        r = NAN;
      else if (a == b) /* only ±0 can differ: max prefers +0, min -0 */
        r = (signbit(a) != 0) == mx ? qb : qa;
      else
        r = (a > b) == mx ? qa : qb;
      break;
    }
    default: r = 0; break;
  }
  uint64_t want = round_bits(t, r), got = raw_bits(t, Y, iy);
  snprintf(why, 200, "a=%.9Lg b=%.9Lg got=%.9Lg (0x%llx) want=0x%llx", a,
           b, ld_flt(t, Y, iy), (unsigned long long)got,
           (unsigned long long)want);
  if (bits_isnan(t, want)) return bits_isnan(t, got);
  if (tol == 0 || bits_isinf(t, want)) return got == want;
  if (bits_isnan(t, got)) return false;
  int64_t d = ord_bits(t, got) - ord_bits(t, want);
  return d <= tol && d >= -tol;
}

static void fill_flt(em_dtype t, void *A, void *B) {
  bool half = t == EM_F16 || t == EM_BF16;
  double big = t == EM_F16 ? 65504.0 : t == EM_BF16 ? 0x1.fep127
             : t == EM_F32 ? 0x1.fffffep127 : 0x1.fffffffffffffp1023;
  double tiny = t == EM_F16 ? 0x1p-14 : t == EM_BF16 || t == EM_F32 ? 0x1p-126
              : 0x1p-1022;
  double sub = t == EM_F16 ? 0x1p-24 : t == EM_BF16 ? 0x1p-133
             : t == EM_F32 ? 0x1p-149 : 0x1p-1074;
  const double edges[] = {0.0,  -0.0, 1.0,  -1.0,  2.0,   0.5,  -2.5,
                          3.0,  7.25, 1e-3, INFINITY, -INFINITY, NAN,
                          big,  -big, tiny, sub,  -sub,  -3.0};
  const int ne = (int)(sizeof edges / sizeof edges[0]);
  int64_t i = 0;
  for (int p = 0; p < ne; p++)
    for (int q = 0; q < ne; q++, i++) {
      st_flt(t, A, i, edges[p]);
      st_flt(t, B, i, edges[q]);
    }
  for (; i < NBUF; i++) {
    if (half && (i % 3 == 0)) { /* any bit pattern, NaNs included */
      ((uint16_t *)A)[i] = (uint16_t)rnd();
      ((uint16_t *)B)[i] = (uint16_t)rnd();
    } else if (i % 3 == 1) { /* wide exponent range */
      st_flt(t, A, i, ldexp(urand(-1, 1), (int)(rnd() % 80) - 40));
      st_flt(t, B, i, ldexp(urand(-1, 1), (int)(rnd() % 80) - 40));
    } else {
      st_flt(t, A, i, urand(-10, 10));
      st_flt(t, B, i, urand(-10, 10));
    }
  }
}

/* ---- complex ----------------------------------------------------------- */

static void ld_cpx(em_dtype t, const void *p, int64_t i, ld *re, ld *im) {
  if (t == EM_C64) {
    *re = ((const float *)p)[2 * i];
    *im = ((const float *)p)[2 * i + 1];
  } else {
    *re = ((const double *)p)[2 * i];
    *im = ((const double *)p)[2 * i + 1];
  }
}

static void st_cpx(em_dtype t, void *p, int64_t i, double re, double im) {
  if (t == EM_C64) {
    ((float *)p)[2 * i] = (float)re;
    ((float *)p)[2 * i + 1] = (float)im;
  } else {
    ((double *)p)[2 * i] = re;
    ((double *)p)[2 * i + 1] = im;
  }
}

/* got matches want to within tol (absolute); NaN/inf must match exactly. */
static bool near(ld got, ld want, ld tol) {
  if (isnan(want)) return isnan(got);
  if (isinf(want)) return got == want;
  return !isnan(got) && fabsl(got - want) <= tol;
}

static bool check_cpx(em_op op, em_dtype t, const void *A, int64_t ia,
                      const void *B, int64_t ib, const void *Y, int64_t iy,
                      char *why) {
  ld ar, ai, br, bi, yr = 0, yi = 0;
  ld_cpx(t, A, ia, &ar, &ai);
  ld_cpx(t, B, ib, &br, &bi);
  if (!is_pred(op)) ld_cpx(t, Y, iy, &yr, &yi);
  bool c64 = t == EM_C64;
  ld eps = c64 ? 0x1p-24L : 0x1p-53L, tiny = c64 ? 0x1p-149L : 0x1p-1074L;
  bool fin = isfinite(ar) && isfinite(ai) && isfinite(br) && isfinite(bi);
  bool anynan = isnan(ar) || isnan(ai) || isnan(br) || isnan(bi);
  snprintf(why, 200, "a=(%Lg,%Lg) b=(%Lg,%Lg) got=(%.9Lg,%.9Lg)", ar, ai, br,
           bi, yr, yi);
  if (is_pred(op)) {
    bool eq = ar == br && ai == bi; /* false on NaN */
    bool za = nz(ar) || nz(ai), zb = nz(br) || nz(bi);
    int want = op == EM_OP_equal       ? eq
               : op == EM_OP_not_equal ? !eq
               : op == EM_OP_logical_and ? za && zb
               : op == EM_OP_logical_or  ? za || zb
                                         : za != zb;
    int got = ((const uint8_t *)Y)[iy];
    snprintf(why, 200, "a=(%Lg,%Lg) b=(%Lg,%Lg) got=%d want=%d", ar, ai, br,
             bi, got, want);
    return got == want;
  }
  switch (op) {
    case EM_OP_add: case EM_OP_subtract: { /* componentwise, exact */
      q128 s = op == EM_OP_add ? 1 : -1;
      q128 wr = (q128)ar + s * (q128)br, wi = (q128)ai + s * (q128)bi;
      ld r = c64 ? (ld)(float)wr : (ld)(double)wr;
      ld m = c64 ? (ld)(float)wi : (ld)(double)wi;
      return near(yr, r, 0) && near(yi, m, 0) &&
             (isnan(r) || signbit(yr) == signbit(r)) &&
             (isnan(m) || signbit(yi) == signbit(m));
    }
    case EM_OP_multiply: { /* (ac - bd, ad + bc), each product rounded */
      q128 wr = (q128)ar * br - (q128)ai * bi, wi = (q128)ar * bi + (q128)ai * br;
      ld tr = 2 * eps * (fabsl(ar * br) + fabsl(ai * bi)) + tiny;
      ld ti = 2 * eps * (fabsl(ar * bi) + fabsl(ai * br)) + tiny;
      return near(yr, (ld)wr, isnan(tr) ? 0 : tr) &&
             near(yi, (ld)wi, isnan(ti) ? 0 : ti);
    }
    case EM_OP_divide: {
      bool bzero = br == 0 && bi == 0, azero = ar == 0 && ai == 0;
      bool ainf = isinf(ar) || isinf(ai), binf = isinf(br) || isinf(bi);
      if (anynan) return isnan(yr) || isnan(yi);
      if (fin && !bzero) {
        q128 den = (q128)br * br + (q128)bi * bi;
        ld wr = (ld)(((q128)ar * br + (q128)ai * bi) / den);
        ld wi = (ld)(((q128)ai * br - (q128)ar * bi) / den);
        ld tol = 8 * eps * hypotl(wr, wi) + tiny;
        return near(yr, wr, tol) && near(yi, wi, tol);
      }
      if (bzero && !azero && !ainf) return isinf(yr) || isinf(yi);
      if (ainf && !binf) return isinf(yr) || isinf(yi);
      if (binf && !ainf) return yr == 0 && yi == 0;
      return true; /* 0/0, inf/inf: unspecified beyond not crashing */
    }
    case EM_OP_pow: {
      if (anynan) return isnan(yr) || isnan(yi);
      if (!fin) return true;
      if (ar == 0 && ai == 0 && bi == 0 && br >= 0) /* 0^0 = 1, 0^c = 0 */
        return yr == (br == 0 ? 1 : 0) && yi == 0;
      if (ar == 0 && ai == 0) return true;
      cld z = CMPLXL(ar, ai), w = CMPLXL(br, bi);
      cld lz = clogl(z), want = cexpl(w * lz);
      ld rel = 64 * 0x1p-53L * (1 + cabsl(w) * cabsl(lz)) + (c64 ? 2 * eps : 0);
      ld tol = rel * cabsl(want) + tiny;
      return near(yr, creall(want), tol) && near(yi, cimagl(want), tol);
    }
    case EM_OP_atan2: { /* y = a, x = b */
      if (!fin) return true;
      cld y = CMPLXL(ar, ai), x = CMPLXL(br, bi);
      cld s2 = x * x + y * y;
      ld scale = cabsl(x) * cabsl(x) + cabsl(y) * cabsl(y);
      if (!(cabsl(s2) > 1e-3L * scale)) return true; /* ill-conditioned */
      cld g = CMPLXL(yr, yi);
      ld rel = (c64 ? 16 * eps : 64 * eps) * (1 + cabsl(g));
      if (ai == 0 && bi == 0) { /* real inputs: the real atan2 */
        ld want = atan2l(ar, br);
        ld got = yr;
        if (ar == 0 && br < 0) { got = fabsl(got); want = fabsl(want); }
        return near(got, want, rel) && near(yi, 0, rel);
      }
      /* Definition: cos g = x / s, sin g = y / s, s = sqrt(x^2 + y^2). */
      cld s = csqrtl(s2);
      ld tol = rel * (cabsl(x) + cabsl(y)) * (1 + cabsl(ccosl(g)) + cabsl(csinl(g)));
      return cabsl(ccosl(g) * s - x) <= tol && cabsl(csinl(g) * s - y) <= tol &&
             fabsl(yr) <= 3.1415927410125733L; /* pi rounded up to f32 */
    }
    default: return false;
  }
}

static void fill_cpx(em_dtype t, void *A, void *B) {
  const double edges[][2] = {{0, 0},     {-0.0, 0},   {1, 0},      {0, 1},
                             {-1, 0},    {1, 1},      {2.5, -0.5}, {-3, 4},
                             {INFINITY, 0}, {0, INFINITY}, {NAN, 0}, {0, NAN},
                             {1e-3, 2},  {0.5, -0.25}, {2, 0},     {-0.0, -0.0}};
  const int ne = (int)(sizeof edges / sizeof edges[0]);
  int64_t i = 0;
  for (int p = 0; p < ne; p++)
    for (int q = 0; q < ne; q++, i++) {
      st_cpx(t, A, i, edges[p][0], edges[p][1]);
      st_cpx(t, B, i, edges[q][0], edges[q][1]);
    }
  for (; i < NBUF; i++) {
    st_cpx(t, A, i, urand(-4, 4), urand(-4, 4));
    st_cpx(t, B, i, urand(-4, 4), urand(-4, 4));
  }
}

/* ---- driver ------------------------------------------------------------ */

typedef bool (*check_fn)(em_op, em_dtype, const void *, int64_t,
                         const void *, int64_t, const void *, int64_t, char *);

static bool kind_is_int(char k) { return k == 'u' || k == 's'; }

/* alias: 0 none, 1 y == a, 2 y == b. Offsets are in elements. */
static void run_case(em_op op, em_dtype t, em_binary_kernel k, const void *A,
                     const void *B, int64_t n, int64_t oa, int64_t ob,
                     int64_t oy, int alias) {
  char kind = DT[t].kind;
  check_fn check = kind_is_int(kind) ? check_int
                   : kind == 'f'     ? check_flt
                                     : check_cpx;
  size_t es = esize(t), eo = is_pred(op) ? 1 : es;
  size_t ybytes = (size_t)NBUF * eo + 64;
  unsigned char *Y = aligned_alloc(64, (ybytes + 63) / 64 * 64);
  memset(Y, 0xA5, ybytes);
  const unsigned char *a = (const unsigned char *)A + oa * es;
  const unsigned char *b = (const unsigned char *)B + ob * es;
  unsigned char *y = Y + oy * eo;
  if (alias == 1) {
    memcpy(y, a, (size_t)n * es);
    k(y, b, y, n);
  } else if (alias == 2) {
    memcpy(y, b, (size_t)n * es);
    k(a, y, y, n);
  } else {
    k(a, b, y, n);
  }
  char why[256];
  int bad = 0;
  for (int64_t i = 0; i < n; i++) {
    bool ok = check(op, t, a, i, b, i, y, i, why);
    if (!ok && bad++ < 3)
      CHECK(ok, "%s %s n=%lld off=%lld/%lld/%lld alias=%d i=%lld: %s",
            opname(op), DT[t].name, (long long)n, (long long)oa,
            (long long)ob, (long long)oy, alias, (long long)i, why);
    else
      CHECK(ok, "(repeat)");
  }
  bool guard = true;
  for (size_t j = 0; j < ybytes; j++)
    if ((j < (size_t)oy * eo || j >= (size_t)(oy + n) * eo) && Y[j] != 0xA5)
      guard = false;
  CHECK(guard, "%s %s n=%lld: wrote outside [0, n)", opname(op), DT[t].name,
        (long long)n);
  free(Y);
}

static void test_dtype(em_dtype t) {
  char kind = DT[t].kind;
  size_t es = esize(t);
  size_t bytes = (NBUF * es + 63) / 64 * 64; /* aligned_alloc wants a multiple */
  void *A = aligned_alloc(64, bytes), *B = aligned_alloc(64, bytes);
  if (kind_is_int(kind))
    fill_int(t, A, B);
  else if (kind == 'f')
    fill_flt(t, A, B);
  else
    fill_cpx(t, A, B);
  for (int j = 0; j < NOPS; j++) {
    em_op op = OPS[j].op;
    em_binary_kernel k = em_cpu_binary_kernel(op, t);
    bool def = expect_defined(op, kind);
    int out = em_binary_out_dtype(op, t);
    CHECK(def == (k != NULL), "%s %s: kernel %s", OPS[j].name, DT[t].name,
          k ? "defined but Nx does not define it" : "missing");
    CHECK(out == (def ? (is_pred(op) ? (int)EM_U8 : (int)t) : -1),
          "%s %s: out dtype %d", OPS[j].name, DT[t].name, out);
    if (!k) continue;
    k(NULL, NULL, NULL, 0); /* n == 0 touches nothing */
    run_case(op, t, k, A, B, 0, 0, 0, 0, 0);
    run_case(op, t, k, A, B, 1, 1, 1, 1, 0);
    run_case(op, t, k, A, B, 1037, 0, 0, 0, 0);
    run_case(op, t, k, A, B, 1037, 1, 2, 3, 0); /* misaligned starts */
    if (!is_pred(op)) {
      run_case(op, t, k, A, B, 1037, 1, 0, 1, 1); /* y == a */
      run_case(op, t, k, A, B, 1037, 0, 1, 3, 2); /* y == b */
    }
  }
  free(A);
  free(B);
}

/* A few hand-computed values, so the references above are checked too. */
static void test_spot_values(void) {
  int8_t a8[] = {INT8_MIN, INT8_MIN, 7, -7, 5, 100, -128, 3};
  int8_t b8[] = {-1, 0, 0, 2, -1, 2, 3, 5};
  int8_t y8[8];
  em_cpu_binary_kernel(EM_OP_quotient, EM_S8)(a8, b8, y8, 8);
  int8_t q[] = {INT8_MIN, -1, -1, -3, -5, 50, -42, 0};
  CHECK(memcmp(y8, q, 8) == 0, "s8 quotient spot values");
  em_cpu_binary_kernel(EM_OP_remainder, EM_S8)(a8, b8, y8, 8);
  int8_t r[] = {0, INT8_MIN, 7, -1, 0, 0, -2, 3};
  CHECK(memcmp(y8, r, 8) == 0, "s8 remainder spot values");
  em_cpu_binary_kernel(EM_OP_pow, EM_S8)(a8, b8, y8, 8);
  int8_t p[] = {0, 1, 1, 49, 0, 16, 0, (int8_t)243};
  CHECK(memcmp(y8, p, 8) == 0, "s8 pow spot values");
  em_cpu_binary_kernel(EM_OP_right_shift, EM_S8)(a8, b8, y8, 8);
  int8_t s[] = {-1, INT8_MIN, 7, -2, 0, 25, -16, 0};
  CHECK(memcmp(y8, s, 8) == 0, "s8 right_shift spot values");
  uint32_t ua[] = {5, 0xffffffffu, 1, 1};
  uint32_t ub[] = {0, 2, 31, 32};
  uint32_t uy[4];
  em_cpu_binary_kernel(EM_OP_quotient, EM_U32)(ua, ub, uy, 4);
  CHECK(uy[0] == 0xffffffffu && uy[1] == 0x7fffffffu, "u32 quotient");
  em_cpu_binary_kernel(EM_OP_left_shift, EM_U32)(ua, ub, uy, 4);
  CHECK(uy[2] == 0x80000000u && uy[3] == 0, "u32 left_shift");
  float fa[] = {-0.0f, 0.0f, NAN, 1.0f}, fb[] = {0.0f, -0.0f, 1.0f, NAN};
  float fy[4];
  em_cpu_binary_kernel(EM_OP_max, EM_F32)(fa, fb, fy, 4);
  CHECK(!signbit(fy[0]) && !signbit(fy[1]) && isnan(fy[2]) && isnan(fy[3]),
        "f32 max ±0 / NaN");
  em_cpu_binary_kernel(EM_OP_min, EM_F32)(fa, fb, fy, 4);
  CHECK(signbit(fy[0]) && signbit(fy[1]) && isnan(fy[2]) && isnan(fy[3]),
        "f32 min ±0 / NaN");
  uint16_t ha[] = {0x3c00, 0x3555}, hb[] = {0x4200, 0x3c00}, hy[2]; /* f16 */
  em_cpu_binary_kernel(EM_OP_divide, EM_F16)(ha, hb, hy, 2);
  CHECK(hy[0] == 0x3555 && hy[1] == 0x3555, "f16 1/3 = 0x3555, got %x %x",
        hy[0], hy[1]);
}

static void test_out_dtype_undefined(void) {
  /* Combos Nx rejects. */
  CHECK(em_binary_out_dtype(EM_OP_bitwise_and, EM_F32) == -1, "bitwise f32");
  CHECK(em_binary_out_dtype(EM_OP_left_shift, EM_F16) == -1, "shift f16");
  CHECK(em_binary_out_dtype(EM_OP_bitwise_xor, EM_C64) == -1, "bitwise c64");
  CHECK(em_binary_out_dtype(EM_OP_less, EM_C64) == -1, "ordering c64");
  CHECK(em_binary_out_dtype(EM_OP_greater_equal, EM_C128) == -1, "ordering c128");
  CHECK(em_binary_out_dtype(EM_OP_max, EM_C128) == -1, "max c128");
  CHECK(em_binary_out_dtype(EM_OP_remainder, EM_C64) == -1, "remainder c64");
  CHECK(em_binary_out_dtype(EM_OP_quotient, EM_F32) == -1, "quotient f32");
  CHECK(em_binary_out_dtype(EM_OP_quotient, EM_BF16) == -1, "quotient bf16");
  CHECK(em_binary_out_dtype(EM_OP_atan2, EM_S32) == -1, "atan2 s32");
  /* Not binary ops, bad dtypes. */
  CHECK(em_binary_out_dtype(EM_OP_exp, EM_F32) == -1, "exp is unary");
  CHECK(em_binary_out_dtype(EM_OP_sum, EM_F32) == -1, "sum is a reduction");
  CHECK(em_binary_out_dtype(EM_OP_add, (em_dtype)EM_DTYPE_COUNT) == -1, "bad dtype");
  CHECK(em_binary_out_dtype(EM_OP_add, (em_dtype)-1) == -1, "bad dtype");
  CHECK(em_cpu_binary_kernel((em_op)EM_OP_COUNT, EM_F32) == NULL, "bad op");
  /* And some defined ones. */
  CHECK(em_binary_out_dtype(EM_OP_equal, EM_C64) == EM_U8, "equal c64");
  CHECK(em_binary_out_dtype(EM_OP_less, EM_BF16) == EM_U8, "less bf16");
  CHECK(em_binary_out_dtype(EM_OP_pow, EM_C128) == EM_C128, "pow c128");
  CHECK(em_binary_out_dtype(EM_OP_right_shift, EM_S64) == EM_S64, "shift s64");
}

int main(void) {
  test_out_dtype_undefined();
  test_spot_values();
  /* The narrow dtypes (s2..f8_e4m3fn) are covered by test_types.c. */
  for (int t = 0; t <= EM_C128; t++) test_dtype((em_dtype)t);
  return TEST_SUMMARY();
}
