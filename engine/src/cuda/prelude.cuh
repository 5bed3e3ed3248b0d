/* prelude.cuh — device code that every program the CUDA backend compiles at
 * run time (NVRTC) starts with; it is embedded into the library as a string
 * (see jit.c) and never compiled by nvcc itself. No headers: NVRTC's
 * built-in math functions and intrinsics are all it uses.
 *
 * Element types carry the engine's dtype names (u8 ... c128), so generated
 * code can name them directly. f16/bf16 are stored as their bits and
 * computed in f32, rounding after every op (as the CPU backend does);
 * complex values are (re, im) pairs. Semantics follow src/cpu (see the
 * comments at the top of binary.c, unary.c, cast.c and reduce.c); where
 * this file departs from them it says so. */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char s8;
typedef short s16;
typedef int s32;
typedef long long s64;
typedef float f32;
typedef double f64;
struct __align__(2) f16 { u16 b; };
struct __align__(2) bf16 { u16 b; };
/* f8 (E5M2) and f8_e4m3fn: one byte of bits, computed in f32 (as f16).
 * s2 s4 u2 u4 have no type here: the generator stores and computes them
 * as s8/u8 and wraps/clamps results to the width (em_wrap_*, em_clamp_*),
 * as src/cpu/subbyte.c does. */
struct __align__(1) f8 { u8 b; };
struct __align__(1) f8_e4m3fn { u8 b; };
struct __align__(8) c64 { f32 re, im; };
struct __align__(16) c128 { f64 re, im; };

#define EMD __device__ __forceinline__

template <class A, class B> struct em_same { static const bool v = false; };
template <class A> struct em_same<A, A> { static const bool v = true; };

/* kind: 'u' 's' 'h' (f16/bf16) 'f' (f32) 'd' (f64) 'c' (complex) */
template <class T> struct tr;
#define EM_TR(T, K, BITS, UT)               \
  template <> struct tr<T> {                \
    static const char k = K;                \
    static const int bits = BITS;           \
    typedef UT ut;                          \
  };
EM_TR(u8, 'u', 8, u8)
EM_TR(u16, 'u', 16, u16)
EM_TR(u32, 'u', 32, u32)
EM_TR(u64, 'u', 64, u64)
EM_TR(s8, 's', 8, u8)
EM_TR(s16, 's', 16, u16)
EM_TR(s32, 's', 32, u32)
EM_TR(s64, 's', 64, u64)
EM_TR(f16, 'h', 16, u16)
EM_TR(bf16, 'h', 16, u16)
EM_TR(f8, 'h', 8, u8)
EM_TR(f8_e4m3fn, 'h', 8, u8)
EM_TR(f32, 'f', 32, u32)
EM_TR(f64, 'd', 64, u64)
EM_TR(c64, 'c', 64, u64)
EM_TR(c128, 'c', 128, u64)
#undef EM_TR

template <class T> struct is_f8_t { static const bool v = false; };
template <> struct is_f8_t<f8> { static const bool v = true; };
template <> struct is_f8_t<f8_e4m3fn> { static const bool v = true; };
template <class T> struct is_int_t {
  static const bool v = tr<T>::k == 'u' || tr<T>::k == 's';
};
/* Unsigned type at least as wide as int, so that arithmetic on it never
 * promotes to (overflowing) signed int. */
template <class T> struct uw { typedef u32 t; };
template <> struct uw<u64> { typedef u64 t; };
template <> struct uw<s64> { typedef u64 t; };

template <class T> struct em_vec1 { T v; };
template <class T, int N> struct alignas(sizeof(T) * N) em_vec { T v[N]; };

EMD f32 em_inf_f() { return __int_as_float(0x7f800000); }
EMD f64 em_inf_d() { return __longlong_as_double(0x7ff0000000000000LL); }
EMD f32 em_nan_f() { return __int_as_float(0x7fc00000); }
EMD f64 em_nan_d() { return __longlong_as_double(0x7ff8000000000000LL); }
EMD bool em_isinf(f32 x) { return fabsf(x) == em_inf_f(); }
EMD bool em_isinf(f64 x) { return fabs(x) == em_inf_d(); }

/* ---- f16 / bf16 ---------------------------------------------------------- */

EMD f32 tof(f16 x) {
  f32 r;
  asm("cvt.f32.f16 %0, %1;" : "=f"(r) : "h"(x.b));
  return r;
}
EMD f32 tof(bf16 x) { return __uint_as_float((u32)x.b << 16); }
EMD f16 to_f16(f32 x) {
  f16 r;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r.b) : "f"(x));
  return r;
}
EMD bf16 to_bf16(f32 x) {
  u32 u = __float_as_uint(x);
  bf16 r;
  if ((u & 0x7fffffffu) > 0x7f800000u)
    r.b = (u16)((u >> 16) | 0x40u); /* quiet NaN, payload kept */
  else
    r.b = (u16)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  return r;
}
/* f64 -> f32 rounded to odd: a later rounding to a narrower format (f16,
 * bf16) is then correct, which a plain (f32) would not be. */
EMD f32 d2f_odd(f64 x) {
  f32 f = __double2float_rz(x);
  if (x == x && (f64)f != x) f = __uint_as_float(__float_as_uint(f) | 1u);
  return f;
}
template <class H> EMD H from_f(f32 x);
template <> EMD f16 from_f<f16>(f32 x) { return to_f16(x); }
template <> EMD bf16 from_f<bf16>(f32 x) { return to_bf16(x); }

/* ---- f8 / f8_e4m3fn: bit-for-bit the conversions of src/core/half.h ----- */
/* Selects as masks, like half.h (so the same rounding paths are taken). */
EMD u32 em_m32(bool c) { return 0u - (u32)c; }
EMD u64 em_m64(bool c) { return 0ull - (u64)c; }
EMD f32 em_f16bits_to_f32(u32 h) {
  u32 sign = (h & 0x8000u) << 16;
  u32 e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  u32 normal = ((e + 112u) << 23) | (m << 13);
  u32 special = 0x7f800000u | (m << 13);
  u32 sub = __float_as_uint((f32)(s32)m * 0x1p-24f);
  u32 mz = em_m32(e == 0), mi = em_m32(e == 31);
  return __uint_as_float(sign | (sub & mz) | (special & mi) | (normal & ~(mz | mi)));
}
EMD f32 tof(f8 x) { return em_f16bits_to_f32((u32)x.b << 8); }
EMD f32 tof(f8_e4m3fn x) {
  u32 b = x.b;
  u32 sign = (b & 0x80u) << 24;
  u32 e = (b >> 3) & 0xfu, m = b & 7u;
  u32 normal = ((e + 120u) << 23) | (m << 20);
  u32 sub = __float_as_uint((f32)(s32)m * 0x1p-9f);
  u32 mz = em_m32(e == 0), mn = em_m32((b & 0x7fu) == 0x7fu);
  return __uint_as_float(sign | (sub & mz) | (0x7fc00000u & mn) | (normal & ~(mz | mn)));
}
EMD u8 em_f32_to_f8_bits(f32 f) {
  u32 x = __float_as_uint(f);
  u32 sign = (x >> 24) & 0x80u;
  u32 a = x & 0x7fffffffu;
  u32 rn = a - 0x38000000u;
  u32 normal = (rn + 0xfffffu + ((rn >> 21) & 1u)) >> 21;
  u32 sub = __float_as_uint(__fadd_rn(__uint_as_float(a), 128.0f)) - 0x43000000u;
  u32 mnan = em_m32(a > 0x7f800000u);
  u32 mbig = em_m32(a >= 0x47800000u);
  u32 mnorm = em_m32(a >= 0x38800000u);
  u32 r = (sub & ~mnorm) | (normal & mnorm & ~mbig) | (0x7cu & mbig & ~mnan) |
          (0x7eu & mnan);
  return (u8)(sign | r);
}
EMD u8 em_f64_to_f8_bits(f64 d) {
  u64 x = (u64)__double_as_longlong(d);
  u64 sign = (x >> 56) & 0x80u;
  u64 a = x & 0x7fffffffffffffffull;
  u64 rn = a - ((u64)(1023 - 15) << 52);
  u64 normal = (rn + ((1ull << 49) - 1u) + ((rn >> 50) & 1u)) >> 50;
  u64 sub = (u64)__double_as_longlong(__dadd_rn(__longlong_as_double((s64)a), 0x1p36)) -
            0x4230000000000000ull;
  u64 mnan = em_m64(a > 0x7ff0000000000000ull);
  u64 mbig = em_m64(a >= ((u64)(1023 + 16) << 52));
  u64 mnorm = em_m64(a >= ((u64)(1023 - 14) << 52));
  u64 r = (sub & ~mnorm) | (normal & mnorm & ~mbig) | (0x7cu & mbig & ~mnan) |
          (0x7eu & mnan);
  return (u8)(sign | r);
}
EMD u8 em_f32_to_e4m3_bits(f32 f) {
  u32 x = __float_as_uint(f);
  u32 sign = (x >> 24) & 0x80u;
  u32 a = x & 0x7fffffffu;
  u32 rn = a - 0x3c000000u;
  u32 normal = (rn + 0x7ffffu + ((rn >> 20) & 1u)) >> 20;
  u32 sub = __float_as_uint(__fadd_rn(__uint_as_float(a), 16384.0f)) - 0x46800000u;
  u32 mnan = em_m32(a > 0x7f800000u);
  u32 msat = em_m32(a > 0x43e00000u);
  u32 mnorm = em_m32(a >= 0x3c800000u);
  u32 r = (sub & ~mnorm) | (normal & mnorm & ~msat) | (0x7eu & msat & ~mnan) |
          (0x7fu & mnan);
  return (u8)(sign | r);
}
EMD u8 em_f64_to_e4m3_bits(f64 d) {
  u64 x = (u64)__double_as_longlong(d);
  u64 sign = (x >> 56) & 0x80u;
  u64 a = x & 0x7fffffffffffffffull;
  u64 rn = a - ((u64)(1023 - 7) << 52);
  u64 normal = (rn + ((1ull << 48) - 1u) + ((rn >> 49) & 1u)) >> 49;
  u64 sub = (u64)__double_as_longlong(__dadd_rn(__longlong_as_double((s64)a), 0x1p43)) -
            0x42a0000000000000ull;
  u64 mnan = em_m64(a > 0x7ff0000000000000ull);
  u64 msat = em_m64(a > 0x407c000000000000ull);
  u64 mnorm = em_m64(a >= ((u64)(1023 - 6) << 52));
  u64 r = (sub & ~mnorm) | (normal & mnorm & ~msat) | (0x7eu & msat & ~mnan) |
          (0x7fu & mnan);
  return (u8)(sign | r);
}
template <> EMD f8 from_f<f8>(f32 x) { f8 r; r.b = em_f32_to_f8_bits(x); return r; }
template <> EMD f8_e4m3fn from_f<f8_e4m3fn>(f32 x) {
  f8_e4m3fn r;
  r.b = em_f32_to_e4m3_bits(x);
  return r;
}
/* Straight from f64 (one rounding), as the CPU's f64 -> f8 encoders. */
template <class H> EMD H from_d(f64 x);
template <> EMD f8 from_d<f8>(f64 x) { f8 r; r.b = em_f64_to_f8_bits(x); return r; }
template <> EMD f8_e4m3fn from_d<f8_e4m3fn>(f64 x) {
  f8_e4m3fn r;
  r.b = em_f64_to_e4m3_bits(x);
  return r;
}

/* ---- s2 s4 u2 u4 (stored as s8 / u8) ------------------------------------- */
/* Wrap modulo 2^bits (sign-extending) and clamp into the range: the
 * formulas of src/cpu/cast.c (wrap_s2 ... clamp_u4). */
EMD s8 em_wrap_s2(s8 v) { int x = v; return (s8)(((x & 3) ^ 2) - 2); }
EMD s8 em_wrap_s4(s8 v) { int x = v; return (s8)(((x & 15) ^ 8) - 8); }
EMD u8 em_wrap_u2(u8 v) { return (u8)(v & 3); }
EMD u8 em_wrap_u4(u8 v) { return (u8)(v & 15); }
EMD s8 em_clamp_s2(s8 v) { int x = v; return (s8)(x < -2 ? -2 : x > 1 ? 1 : x); }
EMD s8 em_clamp_s4(s8 v) { int x = v; return (s8)(x < -8 ? -8 : x > 7 ? 7 : x); }
EMD u8 em_clamp_u2(u8 v) { return (u8)(v > 3 ? 3 : v); }
EMD u8 em_clamp_u4(u8 v) { return (u8)(v > 15 ? 15 : v); }
/* count_leading_zeros / population_count over the type's own W bits (as
 * the CPU's sub_bitcount); the caller wraps the count. */
template <int W, class T> EMD T em_clz_w(T x) {
  u32 v = (u32)(u8)x & ((1u << W) - 1u);
  return (T)(W - (32 - __clz((s32)v)));
}
template <int W, class T> EMD T em_popc_w(T x) {
  return (T)__popc((u32)(u8)x & ((1u << W) - 1u));
}

/* ---- complex helpers (computed in f64) ----------------------------------- */

EMD c128 cx(f64 re, f64 im) { c128 r; r.re = re; r.im = im; return r; }
EMD c128 up(c64 z) { return cx((f64)z.re, (f64)z.im); }
EMD c128 up(c128 z) { return z; }
template <class C> EMD C down(c128 z);
template <> EMD c64 down<c64>(c128 z) { c64 r; r.re = (f32)z.re; r.im = (f32)z.im; return r; }
template <> EMD c128 down<c128>(c128 z) { return z; }
EMD c128 cmul(c128 a, c128 b) {
  return cx(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re);
}
EMD c128 cadd(c128 a, c128 b) { return cx(a.re + b.re, a.im + b.im); }
/* Smith's division with a scaling step (C's Annex G inf/NaN recovery is
 * not reproduced). */
EMD c128 cdiv(c128 a, c128 b) {
  if (fabs(b.re) >= fabs(b.im)) {
    if (b.re == 0 && b.im == 0) return cx(a.re / b.re, a.im / b.re);
    f64 r = b.im / b.re, d = b.re + b.im * r;
    return cx((a.re + a.im * r) / d, (a.im - a.re * r) / d);
  }
  f64 r = b.re / b.im, d = b.re * r + b.im;
  return cx((a.re * r + a.im) / d, (a.im * r - a.re) / d);
}
EMD f64 cabs_(c128 z) { return hypot(z.re, z.im); }
EMD c128 cexp_(c128 z) {
  f64 e = exp(z.re);
  if (z.im == 0) return cx(e, z.im);
  f64 s, c;
  sincos(z.im, &s, &c);
  return cx(e * c, e * s);
}
EMD c128 clog_(c128 z) { return cx(log(hypot(z.re, z.im)), atan2(z.im, z.re)); }
EMD c128 csqrt_(c128 z) {
  f64 a = z.re, b = z.im;
  if (a == 0 && b == 0) return cx(0.0, b);
  if (em_isinf(b)) return cx(em_inf_d(), b);
  if (a != a) return cx(a, a);
  if (em_isinf(a)) {
    if (a > 0) return cx(a, b == b ? copysign(0.0, b) : b);
    return cx(b == b ? 0.0 : b, copysign(em_inf_d(), b));
  }
  f64 t = sqrt((fabs(a) + hypot(a, b)) * 0.5);
  if (a >= 0) return cx(t, b / (2 * t));
  return cx(fabs(b) / (2 * t), copysign(t, b));
}

/* ---- casts (as_type) ----------------------------------------------------- */

/* Integers of 64 bits as a double rounded to odd at bit 11 (exact below
 * 2^53; keeps a later rounding to bf16 correct). */
EMD f64 u64_odd(u64 u) {
  u64 t = (u & ~(u64)0x7ff) | ((u64)((u & 0x7ff) != 0) << 11);
  return (f64)(u >> 53 ? t : u);
}
EMD f64 s64_odd(s64 v) {
  u64 m = v < 0 ? 0 - (u64)v : (u64)v;
  f64 d = u64_odd(m);
  return v < 0 ? -d : d;
}

/* float -> int: truncate, NaN -> 0, saturate at the type's range. */
template <class To> EMD To sat_int(f64 x) {
  const bool sg = tr<To>::k == 's';
  const int w = tr<To>::bits;
  const f64 P = sg ? ldexp(1.0, w - 1) : ldexp(1.0, w);
  const f64 LO = sg ? -P : 0.0;
  typedef typename tr<To>::ut U;
  const U umax = (U)~(U)0;
  const To mx = sg ? (To)(U)(umax >> 1) : (To)umax;
  const To mn = sg ? (To)(U)((U)(umax >> 1) + 1) : (To)0;
  if (!(x == x)) return (To)0;
  if (x <= LO) return mn;
  if (x >= P) return mx;
  if (sg) return (To)(s64)x;
  return (To)(u64)x;
}

template <class T> EMD f64 real_d(T x) {
  if constexpr (tr<T>::k == 'h') return (f64)tof(x);
  else return (f64)x;
}

template <class To, class Fr> EMD To em_cast(Fr x) {
  if constexpr (em_same<To, Fr>::v) {
    return x;
  } else if constexpr (tr<Fr>::k == 'c') {
    if constexpr (tr<To>::k == 'c') {
      To r;
      r.re = em_cast<decltype(r.re)>(x.re);
      r.im = em_cast<decltype(r.im)>(x.im);
      return r;
    } else {
      return em_cast<To>(x.re);
    }
  } else if constexpr (tr<To>::k == 'c') {
    To r;
    r.re = em_cast<decltype(r.re)>(x);
    r.im = 0;
    return r;
  } else if constexpr (is_int_t<To>::v) {
    if constexpr (is_int_t<Fr>::v) return (To)(typename tr<To>::ut)x;
    else return sat_int<To>(real_d(x));
  } else if constexpr (em_same<To, f32>::v) {
    if constexpr (tr<Fr>::k == 'h') return tof(x);
    else return (f32)x;
  } else if constexpr (em_same<To, f64>::v) {
    if constexpr (tr<Fr>::k == 'h') return (f64)tof(x);
    else return (f64)x;
  } else if constexpr (is_f8_t<To>::v) {
    /* as src/cpu/cast.c's cast_staged: through f32 when the source is
     * exact there (halves, f32, c64, ints of up to 16 bits), else through
     * f64, so f8 rounds once */
    if constexpr (tr<Fr>::k == 'h') return from_f<To>(tof(x));
    else if constexpr (tr<Fr>::k == 'f') return from_f<To>(x);
    else if constexpr (tr<Fr>::k == 'd') return from_d<To>(x);
    else if constexpr (tr<Fr>::bits <= 16) return from_f<To>((f32)x);
    else return from_d<To>((f64)x);
  } else { /* f16 / bf16 */
    if constexpr (tr<Fr>::k == 'h') return from_f<To>(tof(x));
    else if constexpr (tr<Fr>::k == 'f') return from_f<To>(x);
    else if constexpr (tr<Fr>::k == 'd') return from_f<To>(d2f_odd(x));
    else if constexpr (tr<Fr>::bits <= 16) return from_f<To>((f32)x);
    else if constexpr (em_same<To, f16>::v) return from_f<To>((f32)x);
    else if constexpr (tr<Fr>::bits == 32) return from_f<To>(d2f_odd((f64)x));
    else if constexpr (tr<Fr>::k == 'u') return from_f<To>(d2f_odd(u64_odd(x)));
    else return from_f<To>(d2f_odd(s64_odd(x)));
  }
}

/* ---- binary ops ---------------------------------------------------------- */
/* Integer versions are templates; float, half and complex versions are
 * plain overloads, which overload resolution prefers. */

#define EM_UT typename tr<T>::ut
#define EM_UW typename uw<T>::t
template <class T> EMD T em_add(T a, T b) { return (T)(EM_UT)((EM_UW)(EM_UT)a + (EM_UW)(EM_UT)b); }
template <class T> EMD T em_subtract(T a, T b) { return (T)(EM_UT)((EM_UW)(EM_UT)a - (EM_UW)(EM_UT)b); }
template <class T> EMD T em_multiply(T a, T b) { return (T)(EM_UT)((EM_UW)(EM_UT)a * (EM_UW)(EM_UT)b); }
template <class T> EMD T em_min(T a, T b) { return a < b ? a : b; }
template <class T> EMD T em_max(T a, T b) { return a > b ? a : b; }
template <class T> EMD T em_bitwise_and(T a, T b) { return (T)(a & b); }
template <class T> EMD T em_bitwise_or(T a, T b) { return (T)(a | b); }
template <class T> EMD T em_bitwise_xor(T a, T b) { return (T)(a ^ b); }
template <class T> EMD T em_left_shift(T a, T b) {
  const int W = tr<T>::bits;
  return (EM_UT)b < (EM_UT)W ? (T)(EM_UT)((EM_UW)(EM_UT)a << ((EM_UW)(EM_UT)b & (W - 1))) : (T)0;
}
template <class T> EMD T em_right_shift(T a, T b) {
  const int W = tr<T>::bits;
  if constexpr (tr<T>::k == 'u') {
    return b < (T)W ? (T)((EM_UW)a >> ((EM_UW)b & (W - 1))) : (T)0;
  } else {
    EM_UW n = (EM_UW)(EM_UT)b;
    return (T)(a >> (n < (EM_UW)W ? n : (EM_UW)(W - 1)));
  }
}
template <class T> EMD T em_quotient(T a, T b) {
  if constexpr (tr<T>::k == 'u') {
    return b ? (T)(a / b) : (T)~(T)0;
  } else {
    const T mn = (T)(EM_UT)((EM_UT)1 << (tr<T>::bits - 1));
    if (b == 0) return (T)-1;
    if (a == mn && b == (T)-1) return mn;
    return (T)(a / b);
  }
}
template <class T> EMD T em_divide(T a, T b) { return em_quotient(a, b); }
template <class T> EMD T em_remainder(T a, T b) {
  if constexpr (tr<T>::k == 'u') {
    return b ? (T)(a % b) : a;
  } else {
    if (b == 0) return a;
    if (b == (T)-1) return (T)0;
    return (T)(a % b);
  }
}
template <class T> EMD T em_pow(T a, T b) {
  if constexpr (tr<T>::k == 's') {
    if (b < 0) return (T)(a == 1);
  }
  EM_UW base = (EM_UT)a, acc = 1;
  EM_UT e = (EM_UT)b;
  while (e) {
    if (e & 1u) acc *= base;
    base *= base;
    e = (EM_UT)(e >> 1);
  }
  return (T)(EM_UT)acc;
}
template <class T> EMD u8 em_equal(T a, T b) { return a == b; }
template <class T> EMD u8 em_not_equal(T a, T b) { return a != b; }
template <class T> EMD u8 em_greater(T a, T b) { return a > b; }
template <class T> EMD u8 em_less(T a, T b) { return a < b; }
template <class T> EMD u8 em_greater_equal(T a, T b) { return a >= b; }
template <class T> EMD u8 em_less_equal(T a, T b) { return a <= b; }
template <class T> EMD u8 em_logical_and(T a, T b) { return (a != 0) & (b != 0); }
template <class T> EMD u8 em_logical_or(T a, T b) { return (a != 0) | (b != 0); }
template <class T> EMD u8 em_logical_xor(T a, T b) { return (a != 0) ^ (b != 0); }
template <class T> EMD f32 em_atan2(T a, T b); /* not defined on ints */

/* IEEE 754-2019 maximum/minimum: NaN wins, -0 < +0. */
EMD f32 em_max(f32 a, f32 b) {
  if (a != a) return a;
  if (b != b) return b;
  if (a == b) return __uint_as_float(__float_as_uint(a) & __float_as_uint(b));
  return a > b ? a : b;
}
EMD f32 em_min(f32 a, f32 b) {
  if (a != a) return a;
  if (b != b) return b;
  if (a == b) return __uint_as_float(__float_as_uint(a) | __float_as_uint(b));
  return a < b ? a : b;
}
EMD f64 em_max(f64 a, f64 b) {
  if (a != a) return a;
  if (b != b) return b;
  if (a == b)
    return __longlong_as_double(__double_as_longlong(a) & __double_as_longlong(b));
  return a > b ? a : b;
}
EMD f64 em_min(f64 a, f64 b) {
  if (a != a) return a;
  if (b != b) return b;
  if (a == b)
    return __longlong_as_double(__double_as_longlong(a) | __double_as_longlong(b));
  return a < b ? a : b;
}

#define EM_FLOAT_BIN(T, FMOD, POW, ATAN2)                                   \
  EMD T em_add(T a, T b) { return a + b; }                                \
  EMD T em_subtract(T a, T b) { return a - b; }                           \
  EMD T em_multiply(T a, T b) { return a * b; }                           \
  EMD T em_divide(T a, T b) { return a / b; }                             \
  EMD T em_remainder(T a, T b) { return FMOD(a, b); }                     \
  EMD T em_pow(T a, T b) { return POW(a, b); }                            \
  EMD T em_atan2(T a, T b) { return ATAN2(a, b); }                        \
  EMD u8 em_equal(T a, T b) { return a == b; }                            \
  EMD u8 em_not_equal(T a, T b) { return a != b; }                        \
  EMD u8 em_greater(T a, T b) { return a > b; }                           \
  EMD u8 em_less(T a, T b) { return a < b; }                              \
  EMD u8 em_greater_equal(T a, T b) { return a >= b; }                    \
  EMD u8 em_less_equal(T a, T b) { return a <= b; }                       \
  EMD u8 em_logical_and(T a, T b) { return (a != 0) & (b != 0); }         \
  EMD u8 em_logical_or(T a, T b) { return (a != 0) | (b != 0); }          \
  EMD u8 em_logical_xor(T a, T b) { return (a != 0) ^ (b != 0); }
EM_FLOAT_BIN(f32, fmodf, powf, atan2f)
EM_FLOAT_BIN(f64, fmod, pow, atan2)
#undef EM_FLOAT_BIN

/* f16/bf16 through f32, rounded back once. */
#define EM_HALF_BIN1(H, OP) \
  EMD H em_##OP(H a, H b) { return from_f<H>(em_##OP(tof(a), tof(b))); }
#define EM_HALF_PRED(H, OP) \
  EMD u8 em_##OP(H a, H b) { return em_##OP(tof(a), tof(b)); }
#define EM_HALF_BIN(H)                                                      \
  EM_HALF_BIN1(H, add) EM_HALF_BIN1(H, subtract) EM_HALF_BIN1(H, multiply) \
  EM_HALF_BIN1(H, divide) EM_HALF_BIN1(H, remainder) EM_HALF_BIN1(H, pow)  \
  EM_HALF_BIN1(H, atan2) EM_HALF_BIN1(H, min) EM_HALF_BIN1(H, max)         \
  EM_HALF_PRED(H, equal) EM_HALF_PRED(H, not_equal)                        \
  EM_HALF_PRED(H, greater) EM_HALF_PRED(H, less)                           \
  EM_HALF_PRED(H, greater_equal) EM_HALF_PRED(H, less_equal)               \
  EM_HALF_PRED(H, logical_and) EM_HALF_PRED(H, logical_or)                 \
  EM_HALF_PRED(H, logical_xor)
EM_HALF_BIN(f16)
EM_HALF_BIN(bf16)
EM_HALF_BIN(f8)
EM_HALF_BIN(f8_e4m3fn)
#undef EM_HALF_BIN
#undef EM_HALF_BIN1
#undef EM_HALF_PRED

/* Complex: add/subtract/multiply in the component type (as the CPU
 * does); divide, pow and atan2 in f64. */
EMD c128 cpow_(c128 a, c128 w) {
  f64 r = hypot(a.re, a.im);
  if (r == 0 && w.im == 0 && w.re >= 0) return cx(w.re == 0 ? 1.0 : 0.0, 0.0);
  f64 t = atan2(a.im, a.re);
  f64 coeff = pow(r, w.re) * exp(-w.im * t);
  f64 q = w.re * t + w.im * log(r);
  return cx(coeff * cos(q), coeff * sin(q));
}
EMD c128 catan2_(c128 y, c128 x) {
  c128 s = csqrt_(cadd(cmul(x, x), cmul(y, y)));
  c128 u = cx(x.re - y.im, x.im + y.re);
  c128 l = clog_(cdiv(u, s));
  return cx(l.im, -l.re);
}
#define EM_CPLX_BIN(C, R)                                                    \
  EMD C em_add(C a, C b) { C r; r.re = a.re + b.re; r.im = a.im + b.im; return r; } \
  EMD C em_subtract(C a, C b) { C r; r.re = a.re - b.re; r.im = a.im - b.im; return r; } \
  EMD C em_multiply(C a, C b) {                                            \
    C r;                                                                   \
    r.re = a.re * b.re - a.im * b.im;                                      \
    r.im = a.re * b.im + a.im * b.re;                                      \
    return r;                                                              \
  }                                                                        \
  EMD C em_divide(C a, C b) { return down<C>(cdiv(up(a), up(b))); }        \
  EMD C em_pow(C a, C b) { return down<C>(cpow_(up(a), up(b))); }         \
  EMD C em_atan2(C a, C b) { return down<C>(catan2_(up(a), up(b))); }      \
  EMD u8 em_equal(C a, C b) { return (a.re == b.re) & (a.im == b.im); }    \
  EMD u8 em_not_equal(C a, C b) { return (a.re != b.re) | (a.im != b.im); } \
  EMD bool nz(C a) { return (a.re != 0) | (a.im != 0); }                   \
  EMD u8 em_logical_and(C a, C b) { return nz(a) & nz(b); }                \
  EMD u8 em_logical_or(C a, C b) { return nz(a) | nz(b); }                 \
  EMD u8 em_logical_xor(C a, C b) { return nz(a) ^ nz(b); }
EM_CPLX_BIN(c64, f32)
EM_CPLX_BIN(c128, f64)
#undef EM_CPLX_BIN

/* ---- unary ops ----------------------------------------------------------- */

/* Transcendental ops: ints in f64 rounded to f32; f16/bf16 through f32. */
EMD f32 em_sigmoid_f(f32 x) {
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  f32 e = expf(x);
  return e / (1.0f + e);
}
EMD f64 em_sigmoid_d(f64 x) {
  if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
  f64 e = exp(x);
  return e / (1.0 + e);
}
EMD f32 em_rsqrt_f(f32 x) { return 1.0f / sqrtf(x); }
EMD f64 em_rsqrt_d(f64 x) { return 1.0 / sqrt(x); }

#define EM_MATH_OPS(X)                                                     \
  X(exp, expf, exp) X(expm1, expm1f, expm1) X(log, logf, log)              \
  X(log1p, log1pf, log1p) X(sigmoid, em_sigmoid_f, em_sigmoid_d)           \
  X(cos, cosf, cos) X(sin, sinf, sin) X(tan, tanf, tan)                    \
  X(cosh, coshf, cosh) X(sinh, sinhf, sinh) X(tanh, tanhf, tanh)           \
  X(acos, acosf, acos) X(asin, asinf, asin) X(atan, atanf, atan)           \
  X(acosh, acoshf, acosh) X(asinh, asinhf, asinh) X(atanh, atanhf, atanh)  \
  X(erf, erff, erf) X(erfc, erfcf, erfc) X(erf_inv, erfinvf, erfinv)       \
  X(sqrt, sqrtf, sqrt) X(rsqrt, em_rsqrt_f, em_rsqrt_d) X(cbrt, cbrtf, cbrt)
#define EM_MATH_DEF(OP, FF, FD)                                            \
  EMD f32 em_##OP(f32 x) { return FF(x); }                                 \
  EMD f64 em_##OP(f64 x) { return FD(x); }                                 \
  EMD f16 em_##OP(f16 x) { return to_f16(FF(tof(x))); }                    \
  EMD bf16 em_##OP(bf16 x) { return to_bf16(FF(tof(x))); }                 \
  EMD f8 em_##OP(f8 x) { return from_f<f8>(FF(tof(x))); }                   \
  EMD f8_e4m3fn em_##OP(f8_e4m3fn x) { return from_f<f8_e4m3fn>(FF(tof(x))); } \
  template <class T> EMD f32 em_##OP(T x) { return (f32)FD((f64)x); }
EM_MATH_OPS(EM_MATH_DEF)
#undef EM_MATH_DEF

/* Complex transcendental ops (in f64). The inverse trigonometric and
 * hyperbolic ones follow Kahan ("Branch cuts for complex elementary
 * functions", 1987): principal values with C99 Annex G's branch cuts, the
 * side of a cut picked by the sign of a zero part, as glibc's cacos ...
 * catanh that the CPU calls (csqrt_ keeps the signed zeros they rely on).
 * Huge arguments (|z| near the f64 range) overflow where glibc rescales. */
EMD c128 cexpm1_(c128 z) {
  f64 a = z.re, b = z.im;
  if (!(fabs(a) < 700.0 && !em_isinf(b) && b == b)) {
    c128 w = cexp_(z);
    return cx(w.re - 1.0, w.im);
  }
  f64 s = sin(0.5 * b);
  return cx(expm1(a) * cos(b) - 2.0 * s * s, exp(a) * sin(b));
}
EMD c128 clog1p_(c128 z) {
  f64 a = z.re, b = z.im;
  if (fabs(a) < 0.5 && fabs(b) < 0.5)
    return cx(0.5 * log1p(a * (2.0 + a) + b * b), atan2(b, 1.0 + a));
  return clog_(cx(1.0 + a, b));
}
EMD c128 csigmoid_(c128 z) {
  c128 w = cexp_(cx(-z.re, -z.im));
  return cdiv(cx(1.0, 0.0), cx(1.0 + w.re, w.im));
}
EMD c128 csin_(c128 z) { return cx(sin(z.re) * cosh(z.im), cos(z.re) * sinh(z.im)); }
EMD c128 ccos_(c128 z) { return cx(cos(z.re) * cosh(z.im), -sin(z.re) * sinh(z.im)); }
EMD c128 csinh_(c128 z) { return cx(sinh(z.re) * cos(z.im), cosh(z.re) * sin(z.im)); }
EMD c128 ccosh_(c128 z) { return cx(cosh(z.re) * cos(z.im), sinh(z.re) * sin(z.im)); }
/* tanh(a + ib) = (sinh 2a + i sin 2b) / (cosh 2a + cos 2b) */
EMD c128 ctanh_(c128 z) {
  if (fabs(z.re) > 20.0) return cx(copysign(1.0, z.re), 4.0 * sin(z.im) * cos(z.im) * exp(-2.0 * fabs(z.re)));
  f64 d = cosh(2.0 * z.re) + cos(2.0 * z.im);
  return cx(sinh(2.0 * z.re) / d, sin(2.0 * z.im) / d);
}
EMD c128 ctan_(c128 z) { /* tan z = -i tanh(i z) */
  c128 t = ctanh_(cx(-z.im, z.re));
  return cx(t.im, -t.re);
}
EMD c128 csign_(c128 z) {
  f64 m = fmax(fabs(z.re), fabs(z.im));
  if (m == 0) return cx(0.0, 0.0);
  f64 u = z.re / m, v = z.im / m, a = sqrt(u * u + v * v);
  return cx(u / a, v / a);
}
EMD c128 ccbrt_(c128 z) {
  f64 r = cbrt(hypot(z.re, z.im)), th = atan2(z.im, z.re) / 3.0;
  return cx(r * cos(th), r * sin(th));
}
/* asin z = atan2(x, Re(s1 s2)) + i asinh(Im(conj(s1) s2)), s1 = sqrt(1 - z),
 * s2 = sqrt(1 + z). */
EMD c128 casin_(c128 z) {
  c128 s1 = csqrt_(cx(1.0 - z.re, -z.im)), s2 = csqrt_(cx(1.0 + z.re, z.im));
  return cx(atan2(z.re, s1.re * s2.re - s1.im * s2.im),
            asinh(s1.re * s2.im - s1.im * s2.re));
}
/* acos z = 2 atan2(Re s1, Re s2) + i asinh(Im(conj(s2) s1)). */
EMD c128 cacos_(c128 z) {
  c128 s1 = csqrt_(cx(1.0 - z.re, -z.im)), s2 = csqrt_(cx(1.0 + z.re, z.im));
  return cx(2.0 * atan2(s1.re, s2.re), asinh(s2.re * s1.im - s2.im * s1.re));
}
/* acosh z = asinh(Re(conj(s1) s2)) + 2i atan2(Im s1, Re s2), s1 = sqrt(z - 1),
 * s2 = sqrt(z + 1). */
EMD c128 cacosh_(c128 z) {
  c128 s1 = csqrt_(cx(z.re - 1.0, z.im)), s2 = csqrt_(cx(z.re + 1.0, z.im));
  return cx(asinh(s1.re * s2.re + s1.im * s2.im), 2.0 * atan2(s1.im, s2.re));
}
/* asinh z = -i asin(i z) */
EMD c128 casinh_(c128 z) {
  c128 w = casin_(cx(-z.im, z.re));
  return cx(w.im, -w.re);
}
/* atanh z = log1p(4x / ((1-x)^2 + y^2)) / 4 + i atan2(2y, (1-x)(1+x) - y^2) / 2
 * for x >= 0 (x < 0: atanh is odd, which keeps log1p's argument away from
 * -1); on the cuts (y = ±0, |x| > 1) the atan2 of a signed zero gives ±pi. */
EMD c128 catanh_(c128 z) {
  const bool neg = signbit(z.re);
  f64 x = neg ? -z.re : z.re, y = neg ? -z.im : z.im;
  f64 om = 1.0 - x;
  f64 re = 0.25 * log1p(4.0 * x / (om * om + y * y));
  f64 im = 0.5 * atan2(2.0 * y, om * (1.0 + x) - y * y);
  return neg ? cx(-re, -im) : cx(re, im);
}
/* atan z = -i atanh(i z) */
EMD c128 catan_(c128 z) {
  c128 w = catanh_(cx(-z.im, z.re));
  return cx(w.im, -w.re);
}
#define EM_CPLX_UN(C)                                                       \
  EMD C em_exp(C z) { return down<C>(cexp_(up(z))); }                       \
  EMD C em_expm1(C z) { return down<C>(cexpm1_(up(z))); }                   \
  EMD C em_log(C z) { return down<C>(clog_(up(z))); }                       \
  EMD C em_log1p(C z) { return down<C>(clog1p_(up(z))); }                   \
  EMD C em_sigmoid(C z) { return down<C>(csigmoid_(up(z))); }               \
  EMD C em_sin(C z) { return down<C>(csin_(up(z))); }                       \
  EMD C em_cos(C z) { return down<C>(ccos_(up(z))); }                       \
  EMD C em_tan(C z) { return down<C>(ctan_(up(z))); }                       \
  EMD C em_sinh(C z) { return down<C>(csinh_(up(z))); }                     \
  EMD C em_cosh(C z) { return down<C>(ccosh_(up(z))); }                     \
  EMD C em_tanh(C z) { return down<C>(ctanh_(up(z))); }                     \
  EMD C em_sqrt(C z) { return down<C>(csqrt_(up(z))); }                     \
  EMD C em_rsqrt(C z) { return down<C>(cdiv(cx(1.0, 0.0), csqrt_(up(z)))); } \
  EMD C em_cbrt(C z) { return down<C>(ccbrt_(up(z))); }                     \
  EMD C em_asin(C z) { return down<C>(casin_(up(z))); }                     \
  EMD C em_acos(C z) { return down<C>(cacos_(up(z))); }                     \
  EMD C em_atan(C z) { return down<C>(catan_(up(z))); }                     \
  EMD C em_asinh(C z) { return down<C>(casinh_(up(z))); }                   \
  EMD C em_acosh(C z) { return down<C>(cacosh_(up(z))); }                   \
  EMD C em_atanh(C z) { return down<C>(catanh_(up(z))); }                   \
  EMD C em_sign(C z) { return down<C>(csign_(up(z))); }                     \
  EMD C em_negate(C z) { C r; r.re = -z.re; r.im = -z.im; return r; }       \
  EMD C em_conjugate(C z) { C r; r.re = z.re; r.im = -z.im; return r; }     \
  EMD u8 em_is_nan(C z) { return (z.re != z.re) | (z.im != z.im); }         \
  EMD u8 em_is_infinity(C z) { return em_isinf(z.re) | em_isinf(z.im); }    \
  EMD u8 em_logical_not(C z) { return (z.re == 0) & (z.im == 0); }
EM_CPLX_UN(c64)
EM_CPLX_UN(c128)
#undef EM_CPLX_UN
EMD f32 em_abs(c64 z) {
  f64 r = z.re, i = z.im;
  f32 h = (f32)sqrt(r * r + i * i);
  return (em_isinf(z.re) || em_isinf(z.im)) ? em_inf_f() : h;
}
EMD f64 em_abs(c128 z) { return hypot(z.re, z.im); }
EMD f32 em_real(c64 z) { return z.re; }
EMD f64 em_real(c128 z) { return z.re; }
EMD f32 em_imag(c64 z) { return z.im; }
EMD f64 em_imag(c128 z) { return z.im; }

/* Exact ops on ints. */
template <class T> EMD T em_negate(T x) { return (T)(EM_UT)(0u - (EM_UT)x); }
template <class T> EMD T em_bitwise_not(T x) { return (T)(EM_UT)~(EM_UT)x; }
template <class T> EMD T em_abs(T x) {
  if constexpr (tr<T>::k == 'u') return x;
  else return (T)(EM_UT)(x < 0 ? (EM_UT)(0u - (EM_UT)x) : (EM_UT)x);
}
template <class T> EMD T em_sign(T x) {
  if constexpr (tr<T>::k == 'u') return (T)(x != 0);
  else return (T)((x > 0) - (x < 0));
}
template <class T> EMD T em_ceil(T x) { return x; }
template <class T> EMD T em_floor(T x) { return x; }
template <class T> EMD T em_round(T x) { return x; }
template <class T> EMD T em_count_leading_zeros(T x) {
  const int W = tr<T>::bits;
  if constexpr (W == 64) return (T)__clzll((s64)(u64)x);
  else return (T)(__clz((s32)(u32)(EM_UT)x) - (32 - W));
}
template <class T> EMD T em_population_count(T x) {
  if constexpr (tr<T>::bits == 64) return (T)__popcll((u64)x);
  else return (T)__popc((u32)(EM_UT)x);
}
template <class T> EMD u8 em_logical_not(T x) { return x == 0; }
template <class T> EMD u8 em_is_nan(T x) { return 0; }
template <class T> EMD u8 em_is_infinity(T x) { return 0; }
template <class T> EMD f32 em_real(T x) { return em_cast<f32>(x); }
template <class T> EMD f32 em_imag(T x) { return 0.0f; }
template <class T> EMD c64 em_conjugate(T x) { c64 r; r.re = em_cast<f32>(x); r.im = -0.0f; return r; }

/* Floats. round is half away from zero; sign(±0) = ±0, sign(NaN) = NaN. */
EMD f32 em_sign_f(f32 x) { return x > 0 ? 1.0f : x < 0 ? -1.0f : x; }
EMD f64 em_sign_d(f64 x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : x; }
#define EM_FLT_UN(T, ABS, FLOOR, CEIL, ROUND, SIGN)                          \
  EMD T em_abs(T x) { return ABS(x); }                                       \
  EMD T em_negate(T x) { return -x; }                                        \
  EMD T em_floor(T x) { return FLOOR(x); }                                   \
  EMD T em_ceil(T x) { return CEIL(x); }                                     \
  EMD T em_round(T x) { return ROUND(x); }                                   \
  EMD T em_sign(T x) { return SIGN(x); }                                     \
  EMD u8 em_is_nan(T x) { return x != x; }                                   \
  EMD u8 em_is_infinity(T x) { return em_isinf(x); }                         \
  EMD u8 em_logical_not(T x) { return x == 0; }                              \
  EMD T em_real(T x) { return x; }                                           \
  EMD T em_imag(T x) { return (T)0; }
EM_FLT_UN(f32, fabsf, floorf, ceilf, roundf, em_sign_f)
EM_FLT_UN(f64, fabs, floor, ceil, round, em_sign_d)
#undef EM_FLT_UN
EMD c64 em_conjugate(f32 x) { c64 r; r.re = x; r.im = -0.0f; return r; }
EMD c128 em_conjugate(f64 x) { c128 r; r.re = x; r.im = -0.0; return r; }

#define EM_HALF_UN(H, INF)                                                   \
  EMD H em_abs(H x) { H r; r.b = (u16)(x.b & 0x7fffu); return r; }           \
  EMD H em_negate(H x) { H r; r.b = (u16)(x.b ^ 0x8000u); return r; }        \
  EMD u8 em_is_nan(H x) { return (x.b & 0x7fffu) > INF; }                    \
  EMD u8 em_is_infinity(H x) { return (x.b & 0x7fffu) == INF; }              \
  EMD u8 em_logical_not(H x) { return (x.b & 0x7fffu) == 0; }                \
  EMD H em_floor(H x) { return from_f<H>(floorf(tof(x))); }                  \
  EMD H em_ceil(H x) { return from_f<H>(ceilf(tof(x))); }                    \
  EMD H em_round(H x) { return from_f<H>(roundf(tof(x))); }                  \
  EMD H em_sign(H x) { return from_f<H>(em_sign_f(tof(x))); }                \
  EMD H em_real(H x) { return x; }                                           \
  EMD H em_imag(H x) { H r; r.b = 0; return r; }                             \
  EMD c64 em_conjugate(H x) { c64 r; r.re = tof(x); r.im = -0.0f; return r; }
EM_HALF_UN(f16, 0x7c00u)
EM_HALF_UN(bf16, 0x7f80u)
#undef EM_HALF_UN
/* f8: every op decodes, computes in f32 and rounds back (as the CPU's
 * f8_unary), so NaNs come out as the encoder's quiet NaN. */
#define EM_F8_UN(H, NAN_TEST, INF_TEST)                                      \
  EMD H em_abs(H x) { return from_f<H>(fabsf(tof(x))); }                     \
  EMD H em_negate(H x) { return from_f<H>(-tof(x)); }                        \
  EMD u8 em_is_nan(H x) { return NAN_TEST; }                                 \
  EMD u8 em_is_infinity(H x) { return INF_TEST; }                            \
  EMD u8 em_logical_not(H x) { return (x.b & 0x7fu) == 0; }                  \
  EMD H em_floor(H x) { return from_f<H>(floorf(tof(x))); }                  \
  EMD H em_ceil(H x) { return from_f<H>(ceilf(tof(x))); }                    \
  EMD H em_round(H x) { return from_f<H>(roundf(tof(x))); }                  \
  EMD H em_sign(H x) { return from_f<H>(em_sign_f(tof(x))); }                \
  EMD H em_real(H x) { return from_f<H>(tof(x)); }                           \
  EMD H em_imag(H x) { H r; r.b = 0; return r; }                             \
  EMD c64 em_conjugate(H x) { c64 r; r.re = tof(x); r.im = -0.0f; return r; }
EM_F8_UN(f8, (x.b & 0x7fu) > 0x7cu, (x.b & 0x7fu) == 0x7cu)
EM_F8_UN(f8_e4m3fn, (x.b & 0x7fu) == 0x7fu, 0)
#undef EM_F8_UN
#undef EM_UT
#undef EM_UW

/* ---- block reductions ---------------------------------------------------- */

template <class A> EMD A shfl_down(A v, int d) {
  const int W = (sizeof(A) + 3) / 4;
  union { A a; u32 w[W]; } in, out;
  in.a = v;
#pragma unroll
  for (int k = 0; k < W; k++) out.w[k] = __shfl_down_sync(0xffffffffu, in.w[k], d);
  return out.a;
}
template <class Op> EMD typename Op::A warp_reduce(typename Op::A v) {
#pragma unroll
  for (int d = 16; d > 0; d >>= 1) v = Op::comb(v, shfl_down(v, d));
  return v;
}
/* Reduces over a 1-d block (blockDim.x a multiple of 32); every thread
 * must call it; thread 0 gets the result. */
template <class Op> EMD typename Op::A block_reduce(typename Op::A v,
                                                    typename Op::A *sm) {
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  v = warp_reduce<Op>(v);
  if (lane == 0) sm[wid] = v;
  __syncthreads();
  const int nw = blockDim.x >> 5;
  if (wid == 0) {
    v = lane < nw ? sm[lane] : Op::init();
    v = warp_reduce<Op>(v);
  }
  __syncthreads();
  return v;
}

/* ---- reductions over [outer, r, inner] ----------------------------------- */
/* Op: A (accumulator), init(), load(x, i) (i: position along r), comb(a, b)
 * (commutative and associative, so the order of the tree does not
 * matter beyond rounding), fin(a) -> Out. */

template <class T> struct acc_sum { typedef T A; };
template <> struct acc_sum<f16> { typedef f64 A; };
template <> struct acc_sum<bf16> { typedef f64 A; };
template <> struct acc_sum<f32> { typedef f64 A; };
template <> struct acc_sum<c64> { typedef c128 A; };
template <> struct acc_sum<f8> { typedef f64 A; };
template <> struct acc_sum<f8_e4m3fn> { typedef f64 A; };
template <class T> struct acc_prod { typedef T A; };
template <> struct acc_prod<f16> { typedef f64 A; };
template <> struct acc_prod<bf16> { typedef f64 A; };
template <> struct acc_prod<f32> { typedef f64 A; };
template <> struct acc_prod<c64> { typedef c128 A; };
template <> struct acc_prod<f8> { typedef f64 A; };
template <> struct acc_prod<f8_e4m3fn> { typedef f64 A; };

/* Float sums accumulate in f64 (the CPU flushes f32 lanes into f64) and
 * round once; complex in c128. Integer sums and products wrap. */
template <class T> struct SumOp {
  typedef T Out;
  typedef typename acc_sum<T>::A A;
  static EMD A init() { return em_cast<A>((s64)0); }
  static EMD A load(T x, s64) { return em_cast<A>(x); }
  static EMD A comb(A a, A b) { return em_add(a, b); }
  static EMD Out fin(A a) { return em_cast<Out>(a); }
};
template <class T> struct ProdOp {
  typedef T Out;
  typedef typename acc_prod<T>::A A;
  static EMD A init() { return em_cast<A>((s64)1); }
  static EMD A load(T x, s64) { return em_cast<A>(x); }
  static EMD A comb(A a, A b) { return em_multiply(a, b); }
  static EMD Out fin(A a) { return em_cast<Out>(a); }
};
template <class T> struct cmp_t { typedef T t; };
template <> struct cmp_t<f16> { typedef f32 t; };
template <> struct cmp_t<bf16> { typedef f32 t; };
template <> struct cmp_t<f8> { typedef f32 t; };
template <> struct cmp_t<f8_e4m3fn> { typedef f32 t; };
template <class V> EMD V lowest() {
  if constexpr (em_same<V, f32>::v) return -em_inf_f();
  else if constexpr (em_same<V, f64>::v) return -em_inf_d();
  else if constexpr (tr<V>::k == 'u') return (V)0;
  else return (V)((typename tr<V>::ut)1 << (tr<V>::bits - 1));
}
template <class V> EMD V highest() {
  if constexpr (em_same<V, f32>::v) return em_inf_f();
  else if constexpr (em_same<V, f64>::v) return em_inf_d();
  else if constexpr (tr<V>::k == 'u') return (V)~(V)0;
  else return (V)(((typename tr<V>::ut)1 << (tr<V>::bits - 1)) - 1);
}
/* Any NaN gives NaN; empty gives -inf/+inf (ints: the type's min/max). */
template <class T, bool MAX> struct ExtOp {
  typedef T Out;
  typedef typename cmp_t<T>::t A;
  static EMD A init() { return MAX ? lowest<A>() : highest<A>(); }
  static EMD A load(T x, s64) { return em_cast<A>(x); }
  static EMD A comb(A a, A b) {
    if (a != a) return a;
    if (b != b) return b;
    return MAX ? (b > a ? b : a) : (b < a ? b : a);
  }
  static EMD Out fin(A a) { return em_cast<Out>(a); }
};
template <class T> struct MaxOp : ExtOp<T, true> {};
template <class T> struct MinOp : ExtOp<T, false> {};
/* all/any: NaN is true, -0.0 false; complex: either part nonzero. */
template <class T> EMD u32 truthy(T x) { return em_logical_not(x) ? 0u : 1u; }
template <class T, bool ALL> struct BoolOp {
  typedef u8 Out;
  typedef u32 A;
  static EMD A init() { return ALL ? 1u : 0u; }
  static EMD A load(T x, s64) { return truthy(x); }
  static EMD A comb(A a, A b) { return ALL ? (a & b) : (a | b); }
  static EMD Out fin(A a) { return (u8)a; }
};
template <class T> struct AllOp : BoolOp<T, true> {};
template <class T> struct AnyOp : BoolOp<T, false> {};
/* argmax/argmin: NaN beats every number and the last NaN wins; among
 * equal values tie_high takes the last index, else the first (-0 == 0).
 * Decided on indices, so the tree's order does not matter. */
template <class V> struct ArgAcc { V v; s64 i; };
template <class T, bool MAX, bool HIGH> struct ArgOp {
  typedef s64 Out;
  typedef typename cmp_t<T>::t V;
  typedef ArgAcc<V> A;
  static EMD A init() { A a; a.v = V(); a.i = -1; return a; }
  static EMD A load(T x, s64 i) { A a; a.v = em_cast<V>(x); a.i = i; return a; }
  static EMD A comb(A a, A b) {
    if (a.i < 0) return b;
    if (b.i < 0) return a;
    bool an = a.v != a.v, bn = b.v != b.v;
    if (an && bn) return a.i > b.i ? a : b;
    if (an) return a;
    if (bn) return b;
    if (a.v == b.v) return (HIGH ? a.i > b.i : a.i < b.i) ? a : b;
    return (MAX ? a.v > b.v : a.v < b.v) ? a : b;
  }
  static EMD Out fin(A a) { return a.i < 0 ? 0 : a.i; }
};
/* s2..u4 reduce as their 8-bit type; the result is then wrapped (sum,
 * product) or clamped (max/min: only an empty reduction's identity can be
 * out of range), as the CPU's em_cpu_narrow_reduce. FIX: 1..4 wrap
 * s2 s4 u2 u4, 5..8 clamp them. */
template <int FIX, class V> EMD V em_fix(V v) {
  if constexpr (FIX == 1) return em_wrap_s2(v);
  else if constexpr (FIX == 2) return em_wrap_s4(v);
  else if constexpr (FIX == 3) return em_wrap_u2(v);
  else if constexpr (FIX == 4) return em_wrap_u4(v);
  else if constexpr (FIX == 5) return em_clamp_s2(v);
  else if constexpr (FIX == 6) return em_clamp_s4(v);
  else if constexpr (FIX == 7) return em_clamp_u2(v);
  else return em_clamp_u4(v);
}
template <class Op, int FIX> struct SubFix : Op {
  static EMD typename Op::Out fin(typename Op::A a) { return em_fix<FIX>(Op::fin(a)); }
};
template <class T> struct ArgMaxLo : ArgOp<T, true, false> {};
template <class T> struct ArgMaxHi : ArgOp<T, true, true> {};
template <class T> struct ArgMinLo : ArgOp<T, false, false> {};
template <class T> struct ArgMinHi : ArgOp<T, false, true> {};

struct RedP {
  const char *x;
  char *y;
  s64 outer, r, inner, S, chunk;
};

/* inner == 1: one block per (row, split). S == 1 writes Out, else the
 * partial A at y[o * S + s]. */
template <class Op, class T> EMD void red_row(const RedP &p) {
  typedef typename Op::A A;
  __shared__ A sm[32];
  const s64 tasks = p.outer * p.S;
  for (s64 task = blockIdx.x; task < tasks; task += gridDim.x) {
    const s64 o = task / p.S, s = task % p.S;
    const s64 b = s * p.chunk, e = b + p.chunk < p.r ? b + p.chunk : p.r;
    const T *x = (const T *)p.x + o * p.r;
    A a0 = Op::init(), a1 = Op::init(), a2 = Op::init(), a3 = Op::init();
    const s64 step = blockDim.x;
    s64 i = b + threadIdx.x;
    /* 16-byte loads, two in flight per thread, when the chunk is aligned
     * (chunks are multiples of 16 elements; rows may not be). */
    constexpr int V = sizeof(T) >= 16 ? 1 : (int)(16 / sizeof(T));
    if (V > 1 && ((unsigned long long)(x + b) & 15) == 0) {
      typedef em_vec<T, V> VT;
      const VT *xv = (const VT *)(x + b);
      const s64 nv = (e - b) / V;
      s64 k = threadIdx.x;
      for (; k + step < nv; k += 2 * step) {
        const VT v0 = xv[k], v1 = xv[k + step];
#pragma unroll
        for (int u = 0; u < V; u++) {
          a0 = Op::comb(a0, Op::load(v0.v[u], b + k * V + u));
          a1 = Op::comb(a1, Op::load(v1.v[u], b + (k + step) * V + u));
        }
      }
      if (k < nv) {
        const VT v0 = xv[k];
#pragma unroll
        for (int u = 0; u < V; u++) a2 = Op::comb(a2, Op::load(v0.v[u], b + k * V + u));
      }
      i = b + nv * V + threadIdx.x;
    }
    for (; i + 3 * step < e; i += 4 * step) {
      T x0 = x[i], x1 = x[i + step], x2 = x[i + 2 * step], x3 = x[i + 3 * step];
      a0 = Op::comb(a0, Op::load(x0, i));
      a1 = Op::comb(a1, Op::load(x1, i + step));
      a2 = Op::comb(a2, Op::load(x2, i + 2 * step));
      a3 = Op::comb(a3, Op::load(x3, i + 3 * step));
    }
    for (; i < e; i += step) a0 = Op::comb(a0, Op::load(x[i], i));
    A a = Op::comb(Op::comb(a0, a1), Op::comb(a2, a3));
    a = block_reduce<Op>(a, sm);
    if (threadIdx.x == 0) {
      if (p.S == 1) ((typename Op::Out *)p.y)[o] = Op::fin(a);
      else ((A *)p.y)[o * p.S + s] = a;
    }
  }
}

/* Any inner: columns c = (o, j) over blockDim (32, 8); the 8 rows of
 * threads split the chunk of r. S == 1 writes Out at y[c], else the
 * partial A at y[s * cols + c]. FROM_ACC reads partials (x holds A). */
template <class Op, class T, bool FROM_ACC> EMD void red_col(const RedP &p) {
  typedef typename Op::A A;
  __shared__ A sm[8][33];
  const s64 cols = p.outer * p.inner, ncb = (cols + 31) / 32;
  const s64 tasks = ncb * p.S;
  for (s64 task = blockIdx.x; task < tasks; task += gridDim.x) {
    const s64 cb = task % ncb, s = task / ncb, c = cb * 32 + threadIdx.x;
    A a = Op::init();
    if (c < cols) {
      const s64 o = c / p.inner, j = c % p.inner;
      const s64 b = s * p.chunk, e = b + p.chunk < p.r ? b + p.chunk : p.r;
      for (s64 i = b + threadIdx.y; i < e; i += 8) {
        const s64 at = (o * p.r + i) * p.inner + j;
        if constexpr (FROM_ACC) a = Op::comb(a, ((const A *)p.x)[at]);
        else a = Op::comb(a, Op::load(((const T *)p.x)[at], i));
      }
    }
    sm[threadIdx.y][threadIdx.x] = a;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
#pragma unroll
      for (int k = 1; k < 8; k++) a = Op::comb(a, sm[k][threadIdx.x]);
      if (p.S == 1) ((typename Op::Out *)p.y)[c] = Op::fin(a);
      else ((A *)p.y)[s * cols + c] = a;
    }
    __syncthreads();
  }
}

/* ---- row ops: softmax logsumexp layer_norm rms_norm ---------------------- */
/* One row per blockDim.y row of threads; BX threads (32, or the whole
 * block when BY == 1) cooperate on it. f16/bf16 rows compute in f32. */

template <class T> struct row_c { typedef f32 t; };
template <> struct row_c<f64> { typedef f64 t; };
EMD f32 row_exp(f32 x) { return expf(x); }
EMD f64 row_exp(f64 x) { return exp(x); }
EMD f32 row_log(f32 x) { return logf(x); }
EMD f64 row_log(f64 x) { return log(x); }
EMD f32 row_sqrt(f32 x) { return sqrtf(x); }
EMD f64 row_sqrt(f64 x) { return sqrt(x); }

template <class C> struct SumC {
  typedef C A;
  static EMD A init() { return (C)0; }
  static EMD A comb(A a, A b) { return a + b; }
};
/* NaN never wins, so the max ignores NaN (as the CPU's does); a NaN still
 * turns its row into NaN through the sum. */
template <class C> struct MaxC {
  typedef C A;
  static EMD A init() { return -(C)em_inf_d(); }
  static EMD A comb(A a, A b) { return b > a ? b : a; }
};

template <class A> EMD A shfl_xor(A v, int m) {
  const int W = (sizeof(A) + 3) / 4;
  union { A a; u32 w[W]; } in, out;
  in.a = v;
#pragma unroll
  for (int k = 0; k < W; k++) out.w[k] = __shfl_xor_sync(0xffffffffu, in.w[k], m);
  return out.a;
}
/* Every thread of the row gets the result, the same in each (SumC's comb
 * is commutative, MaxC's up to the sign of a zero, which exp(c - m) and
 * c - m do not see, and every thread folds the warps' values in one
 * order). BLOCK == false: the row is one warp (no block barriers). Else
 * the whole block works on one row, and the reduction costs one barrier:
 * a butterfly in each warp, then every thread folds the per-warp values
 * itself. The two halves of sm alternate (ph counts the reductions), so
 * one reduction's writes cannot overtake the previous one's reads: the
 * previous reduction's barrier lies between them. Three barriers per
 * reduction (a tree into sm[0], then a broadcast) made layer_norm over
 * 16384x4096 bf16 take 0.097 ms of kernel time on the H200 instead of
 * 0.074. */
template <class Op, bool BLOCK> EMD typename Op::A row_allreduce(typename Op::A v,
                                                                typename Op::A (*sm)[32],
                                                                int &ph) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) v = Op::comb(v, shfl_xor(v, m));
  const int nw = blockDim.x >> 5;
  if (BLOCK && nw > 1) {
    typename Op::A *h = sm[ph & 1];
    ph++;
    if ((threadIdx.x & 31) == 0) h[threadIdx.x >> 5] = v;
    __syncthreads();
    v = Op::init();
    for (int i = 0; i < nw; i++) v = Op::comb(v, h[i]);
  }
  return v;
}

struct RowP {
  const char *x;
  char *y;
  const char *w, *b;
  s64 rows, d;
  f64 eps;
  s64 op; /* 0 softmax, 1 logsumexp, 2 layer_norm, 3 rms_norm */
};

/* Register-resident rows: a block (blockDim.x threads, a multiple of 32)
 * per row; each thread loads up to NV 16-byte vectors of the row once,
 * keeps them in registers for every pass (max, sum, variance) and writes
 * the result with vector stores. One read and one write per element, the
 * memory floor. The host picks it when d * sizeof(T) is a multiple of 16,
 * the pointers are 16-byte aligned and the row fits (d <= blockDim.x * NV
 * * E). Rows past the end of a block's grid-stride loop never occur: every
 * thread of a block works on the same row, so block barriers are safe.
 * OP is RowP's op (bits 0-1), plus 4 when p.w is given and 8 when p.b
 * is: known at compile time, the weight and bias loads need no branch.
 * FULL: the row is exactly blockDim.x * NV vectors, so no vector needs a
 * bounds check (checked loads made softmax over 8192x8192 f32 50% slower
 * on the H200, layer_norm over 16384x4096 bf16 10%). */
template <class T> struct row_nv { enum { v = sizeof(T) == 8 ? 16 : 64 / (16 / sizeof(T)) }; };

template <class T, int OP, bool FULL> EMD void row_reg(const RowP &p) {
  typedef typename row_c<T>::t C;
  enum { E = 16 / sizeof(T), NV = row_nv<T>::v };
  typedef em_vec<T, E> VT;
  __shared__ C sm[2][32];
  int ph = 0;
  enum { op = OP & 3, HW = OP >> 2 & 1, HB = OP >> 3 & 1 };
  const s64 d = p.d, nvec = d / E;
  const int L = (int)blockDim.x;
  for (s64 row = blockIdx.x; row < p.rows; row += gridDim.x) {
    const VT *x = (const VT *)p.x + row * nvec;
    /* The row stays in its storage type: 16-bit rows take half the
     * registers of f32 copies, so twice the rows are in flight per SM. */
    VT v[NV];
#pragma unroll
    for (int k = 0; k < NV; k++) {
      const s64 j = threadIdx.x + (s64)k * L;
      if (FULL || j < nvec) v[k] = x[j];
    }
#define ROW_EACH(BODY)                                              \
  _Pragma("unroll") for (int k = 0; k < NV; k++) {                  \
    const s64 j = threadIdx.x + (s64)k * L;                \
    if (FULL || j < nvec) {                                                 \
      _Pragma("unroll") for (int e = 0; e < E; e++) {               \
        const C c = em_cast<C>(v[k].v[e]);                          \
        BODY;                                                       \
      }                                                             \
    }                                                               \
  }
    if (op <= 1) {
      C m = MaxC<C>::init();
      ROW_EACH(m = MaxC<C>::comb(m, c))
      m = row_allreduce<MaxC<C>, true>(m, sm, ph);
      const C mm = em_isinf(m) ? (C)0 : m;
      C s = 0;
      ROW_EACH(s += row_exp(c - mm))
      s = row_allreduce<SumC<C>, true>(s, sm, ph);
      if (op == 0) {
        const C inv = (C)1 / s;
        VT *y = (VT *)p.y + row * nvec;
#pragma unroll
        for (int k = 0; k < NV; k++) {
          const s64 j = threadIdx.x + (s64)k * L;
          if (FULL || j < nvec) {
            VT t;
#pragma unroll
            for (int e = 0; e < E; e++)
              t.v[e] = em_cast<T>(row_exp(em_cast<C>(v[k].v[e]) - mm) * inv);
            y[j] = t;
          }
        }
      } else if (threadIdx.x == 0) {
        C r = (em_isinf(m) && m < 0) ? -(C)em_inf_d() : mm + row_log(s);
        ((T *)p.y)[row] = em_cast<T>(r);
      }
    } else {
      C mean = 0;
      if (op == 2) {
        C s = 0;
        ROW_EACH(s += c)
        mean = row_allreduce<SumC<C>, true>(s, sm, ph) / (C)d;
      }
      C q = 0;
      ROW_EACH(const C dc = c - mean; q += dc * dc)
      q = row_allreduce<SumC<C>, true>(q, sm, ph);
      const C rstd = (C)1 / row_sqrt(q / (C)d + (C)p.eps);
      const VT *w = (const VT *)p.w, *b = (const VT *)p.b;
      VT *y = (VT *)p.y + row * nvec;
#pragma unroll
      for (int k = 0; k < NV; k++) {
        const s64 j = threadIdx.x + (s64)k * L;
        if (FULL || j < nvec) {
          VT t, wv, bv;
          if (HW) wv = w[j];
          if (HB) bv = b[j];
#pragma unroll
          for (int e = 0; e < E; e++) {
            C o = (em_cast<C>(v[k].v[e]) - mean) * rstd;
            if (HW) o = o * em_cast<C>(wv.v[e]);
            if (HB) o = o + em_cast<C>(bv.v[e]);
            t.v[e] = em_cast<T>(o);
          }
          y[j] = t;
        }
      }
    }
#undef ROW_EACH
  }
}

template <class T, int BX, int BY> EMD void row_op(const RowP &p) {
  typedef typename row_c<T>::t C;
  __shared__ C sm[2][32];
  int ph = 0;
  const s64 d = p.d;
  for (s64 base = (s64)blockIdx.x * BY; base < p.rows; base += (s64)gridDim.x * BY) {
    /* BY > 1 means BX == 32: a warp past the last row idles along (no
     * block barriers are used then). */
    const s64 row = base + threadIdx.y;
    const bool live = row < p.rows;
    const T *x = (const T *)p.x + (live ? row : 0) * d;
    if (p.op <= 1) {
      C m = MaxC<C>::init();
      if (live)
        for (s64 i = threadIdx.x; i < d; i += BX) m = MaxC<C>::comb(m, em_cast<C>(x[i]));
      m = row_allreduce<MaxC<C>, (BX > 32)>(m, sm, ph);
      const C mm = em_isinf(m) ? (C)0 : m;
      C s = 0;
      if (live)
        for (s64 i = threadIdx.x; i < d; i += BX) s += row_exp(em_cast<C>(x[i]) - mm);
      s = row_allreduce<SumC<C>, (BX > 32)>(s, sm, ph);
      if (!live) continue;
      if (p.op == 0) {
        const C inv = (C)1 / s;
        T *y = (T *)p.y + row * d;
        for (s64 i = threadIdx.x; i < d; i += BX)
          y[i] = em_cast<T>(row_exp(em_cast<C>(x[i]) - mm) * inv);
      } else if (threadIdx.x == 0) {
        C r = (d == 0 || (em_isinf(m) && m < 0)) ? -(C)em_inf_d() : mm + row_log(s);
        ((T *)p.y)[row] = em_cast<T>(r);
      }
    } else {
      C mean = 0;
      if (p.op == 2) {
        C s = 0;
        if (live)
          for (s64 i = threadIdx.x; i < d; i += BX) s += em_cast<C>(x[i]);
        s = row_allreduce<SumC<C>, (BX > 32)>(s, sm, ph);
        mean = s / (C)d;
      }
      C q = 0;
      if (live)
        for (s64 i = threadIdx.x; i < d; i += BX) {
          C v = em_cast<C>(x[i]) - mean;
          q += v * v;
        }
      q = row_allreduce<SumC<C>, (BX > 32)>(q, sm, ph);
      if (!live) continue;
      const C rstd = (C)1 / row_sqrt(q / (C)d + (C)p.eps);
      const T *w = (const T *)p.w, *b = (const T *)p.b;
      T *y = (T *)p.y + row * d;
      for (s64 i = threadIdx.x; i < d; i += BX) {
        C v = (em_cast<C>(x[i]) - mean) * rstd;
        if (w) v = v * em_cast<C>(w[i]);
        if (b) v = v + em_cast<C>(b[i]);
        y[i] = em_cast<T>(v);
      }
    }
  }
}
