/* ref.h — the naive reference used by the op-level differential tests
 * (test_ops_*.c). Everything here talks to the engine only through
 * emily.h: host tensors ("host") hold one `tv` per element (ints as exact
 * int64 bit patterns, floats and complex as doubles), the reference ops
 * below are plain loops over them, and check_host() compares an engine
 * result with a host tensor under per-dtype tolerances.
 *
 * f16/bf16 rounding and encoding are written here from scratch (frexp /
 * nearbyint / ldexp) rather than shared with the engine, so that a bug in
 * the engine's half.h cannot hide itself. */
#ifndef EMILY_TEST_REF_H
#define EMILY_TEST_REF_H

#include <complex.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emily.h"
#include "harness.h"

#define REF static inline __attribute__((unused))

/* ---- PRNG (splitmix64, fixed seed) ------------------------------------ */

static uint64_t ref_rng = 0x243F6A8885A308D3ull;
REF void rng_seed(uint64_t s) { ref_rng = s * 0x9E3779B97F4A7C15ull + 1; }
REF uint64_t rng_u64(void) {
  uint64_t z = (ref_rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
REF double rng_unit(void) { return (double)(rng_u64() >> 11) * 0x1p-53; }
REF double rng_uniform(double lo, double hi) {
  return lo + (hi - lo) * rng_unit();
}
/* Inclusive [lo, hi]. */
REF int64_t rng_int(int64_t lo, int64_t hi) {
  uint64_t span = (uint64_t)hi - (uint64_t)lo + 1u;
  return (int64_t)((uint64_t)lo + (span ? rng_u64() % span : rng_u64()));
}

/* ---- dtypes ------------------------------------------------------------ */

REF int dt_bits(em_dtype t) { return (int)em_dtype_size(t) * 8; }
REF bool dt_int(em_dtype t) { return em_dtype_is_int(t); }
REF bool dt_uns(em_dtype t) {
  return em_dtype_is_int(t) && !em_dtype_is_signed(t);
}
REF bool dt_flt(em_dtype t) { return em_dtype_is_float(t); }
REF bool dt_cpx(em_dtype t) { return em_dtype_is_complex(t); }
REF em_dtype dt_real(em_dtype t) {
  return t == EM_C64 ? EM_F32 : t == EM_C128 ? EM_F64 : t;
}
REF const char *dn(em_dtype t) { return em_dtype_name(t); }

static const em_dtype ALL_DTYPES[] = {EM_U8,  EM_U16, EM_U32, EM_U64,
                                      EM_S8,  EM_S16, EM_S32, EM_S64,
                                      EM_F16, EM_BF16, EM_F32, EM_F64,
                                      EM_C64, EM_C128};
#define N_ALL_DTYPES ((int)(sizeof ALL_DTYPES / sizeof ALL_DTYPES[0]))

/* ---- values ------------------------------------------------------------ */

/* One element: ints in i (canonical: sign-extended for signed types,
 * zero-extended for unsigned below 64 bits, the bit pattern for u64);
 * floats in re; complex in (re, im). */
typedef struct {
  int64_t i;
  double re, im;
} tv;

REF tv tv_i(int64_t i) { return (tv){i, 0, 0}; }
REF tv tv_f(double re) { return (tv){0, re, 0}; }
REF tv tv_c(double re, double im) { return (tv){0, re, im}; }

/* Reduces a 64-bit pattern to t's width (two's complement wrap). */
REF int64_t wrap_int(em_dtype t, uint64_t v) {
  int w = dt_bits(t);
  if (w < 64) {
    uint64_t m = (1ull << w) - 1;
    v &= m;
    if (em_dtype_is_signed(t) && ((v >> (w - 1)) & 1u)) v |= ~m;
  }
  return (int64_t)v;
}
REF int64_t int_min_of(em_dtype t) {
  if (dt_uns(t)) return 0;
  return dt_bits(t) == 64 ? INT64_MIN : -(int64_t)(1ull << (dt_bits(t) - 1));
}
REF int64_t int_max_of(em_dtype t) { /* as a canonical value */
  if (dt_uns(t)) return wrap_int(t, ~0ull);
  return dt_bits(t) == 64 ? INT64_MAX : (int64_t)(1ull << (dt_bits(t) - 1)) - 1;
}

/* Rounds x to nearest even with `mant` significand bits (implicit one
 * included), minimum normal exponent emin, largest finite value maxv. */
REF double round_prec(double x, int mant, int emin, double maxv) {
  if (isnan(x) || isinf(x) || x == 0) return x;
  int e;
  frexp(x, &e); /* |x| in [2^(e-1), 2^e) */
  int ex = e - 1 < emin ? emin : e - 1;
  double q = ldexp(1.0, ex - (mant - 1));
  double r = nearbyint(x / q) * q;
  if (fabs(r) > maxv) r = copysign(INFINITY, x);
  return r;
}
#define F16_MAX 65504.0
#define BF16_MAX 3.38953138925153547590470800371487866880e+38
REF double round_f16(double x) { return round_prec(x, 11, -14, F16_MAX); }
REF double round_bf16(double x) { return round_prec(x, 8, -126, BF16_MAX); }
REF double round_f32(double x) { return (double)(float)x; }

/* Rounds a real value to float dtype t (f16 bf16 f32 f64). */
REF double round_to(em_dtype t, double x) {
  switch (t) {
    case EM_F16: return round_f16(x);
    case EM_BF16: return round_bf16(x);
    case EM_F32: case EM_C64: return round_f32(x);
    default: return x;
  }
}

/* The value t can hold that v stands for (wrap ints, round floats). */
REF tv quant(em_dtype t, tv v) {
  if (dt_int(t)) return tv_i(wrap_int(t, (uint64_t)v.i));
  if (dt_flt(t)) return tv_f(round_to(t, v.re));
  return tv_c(round_to(t, v.re), round_to(t, v.im));
}

/* The same rounding from a long double (exact for every int64/uint64). */
REF double round_prec_l(long double x, int mant, int emin, double maxv) {
  if (isnan(x) || isinf(x) || x == 0) return (double)x;
  int e;
  frexpl(x, &e);
  int ex = e - 1 < emin ? emin : e - 1;
  long double q = ldexpl(1.0L, ex - (mant - 1));
  long double r = nearbyintl(x / q) * q;
  if (fabsl(r) > maxv) r = copysignl(INFINITY, x);
  return (double)r;
}
/* Rounds an exact long double to float dtype t (component of complex). */
REF double round_to_l(em_dtype t, long double x) {
  switch (t) {
    case EM_F16: return round_prec_l(x, 11, -14, F16_MAX);
    case EM_BF16: return round_prec_l(x, 8, -126, BF16_MAX);
    case EM_F32: case EM_C64: return round_prec_l(x, 24, -126, 3.40282346638528859812e+38);
    default: return round_prec_l(x, 53, -1022, 1.7976931348623157e308);
  }
}
/* Nx.as_type: int -> int wraps; float -> int truncates and saturates (NaN
 * -> 0); conversions to floats round once from the exact value; complex ->
 * real keeps the real part; real -> complex has imaginary part 0. */
REF tv ref_cast(em_dtype from, em_dtype to, tv v) {
  long double re, im = 0;
  if (dt_int(from)) re = dt_uns(from) ? (long double)(uint64_t)v.i : (long double)v.i;
  else {
    re = v.re;
    im = dt_cpx(from) ? v.im : 0;
  }
  if (dt_int(to)) {
    if (dt_int(from)) return tv_i(wrap_int(to, (uint64_t)v.i));
    if (isnan(re)) return tv_i(0);
    long double tr = truncl(re);
    long double mn = dt_uns(to) ? 0 : (long double)int_min_of(to);
    long double mx = dt_uns(to) ? ldexpl(1, dt_bits(to)) - 1 : (long double)int_max_of(to);
    if (tr <= mn) return tv_i(int_min_of(to));
    if (tr >= mx) return tv_i(int_max_of(to));
    return tv_i(wrap_int(to, dt_uns(to) ? (uint64_t)tr : (uint64_t)(int64_t)tr));
  }
  if (dt_flt(to)) return tv_f(round_to_l(to, re));
  return tv_c(round_to_l(to, re), round_to_l(to, im));
}

/* Half formats from an exactly representable double. */
REF uint16_t enc_half(double v, int mbits, int ebits) {
  int bias = (1 << (ebits - 1)) - 1;
  uint16_t s = signbit(v) ? 0x8000 : 0;
  uint16_t emax = (uint16_t)((1 << ebits) - 1);
  if (isnan(v)) return (uint16_t)(s | (emax << mbits) | (1u << (mbits - 1)));
  double a = fabs(v);
  if (isinf(a)) return (uint16_t)(s | (emax << mbits));
  if (a == 0) return s;
  int e;
  frexp(a, &e);
  int ex = e - 1;
  if (ex < 1 - bias) /* subnormal: a multiple of 2^(1-bias-mbits) */
    return (uint16_t)(s | (uint16_t)ldexp(a, bias - 1 + mbits));
  uint16_t m = (uint16_t)((ldexp(a, -ex) - 1.0) * (double)(1 << mbits));
  return (uint16_t)(s | (uint16_t)((ex + bias) << mbits) | m);
}
REF double dec_half(uint16_t h, int mbits, int ebits) {
  int bias = (1 << (ebits - 1)) - 1;
  int emax = (1 << ebits) - 1;
  int e = (h >> mbits) & emax;
  int m = h & ((1 << mbits) - 1);
  double v;
  if (e == 0) v = ldexp((double)m, 1 - bias - mbits);
  else if (e == emax) v = m ? NAN : INFINITY;
  else v = ldexp(1.0 + (double)m / (double)(1 << mbits), e - bias);
  return (h & 0x8000) ? -v : v;
}
REF uint16_t enc_f16(double v) { return enc_half(round_f16(v), 10, 5); }
REF double dec_f16(uint16_t h) { return dec_half(h, 10, 5); }
REF uint16_t enc_bf16(double v) { return enc_half(round_bf16(v), 7, 8); }
REF double dec_bf16(uint16_t h) { return dec_half(h, 7, 8); }

REF void enc_val(em_dtype t, tv v, void *dst) {
  uint64_t u = (uint64_t)v.i;
  switch (t) {
    case EM_U8: case EM_S8: { uint8_t x = (uint8_t)u; memcpy(dst, &x, 1); break; }
    case EM_U16: case EM_S16: { uint16_t x = (uint16_t)u; memcpy(dst, &x, 2); break; }
    case EM_U32: case EM_S32: { uint32_t x = (uint32_t)u; memcpy(dst, &x, 4); break; }
    case EM_U64: case EM_S64: memcpy(dst, &u, 8); break;
    case EM_F16: { uint16_t x = enc_f16(v.re); memcpy(dst, &x, 2); break; }
    case EM_BF16: { uint16_t x = enc_bf16(v.re); memcpy(dst, &x, 2); break; }
    case EM_F32: { float x = (float)v.re; memcpy(dst, &x, 4); break; }
    case EM_F64: memcpy(dst, &v.re, 8); break;
    case EM_C64: { float x[2] = {(float)v.re, (float)v.im}; memcpy(dst, x, 8); break; }
    case EM_C128: { double x[2] = {v.re, v.im}; memcpy(dst, x, 16); break; }
    default: break;
  }
}
REF tv dec_val(em_dtype t, const void *src) {
  switch (t) {
    case EM_U8: { uint8_t x; memcpy(&x, src, 1); return tv_i(x); }
    case EM_S8: { int8_t x; memcpy(&x, src, 1); return tv_i(x); }
    case EM_U16: { uint16_t x; memcpy(&x, src, 2); return tv_i(x); }
    case EM_S16: { int16_t x; memcpy(&x, src, 2); return tv_i(x); }
    case EM_U32: { uint32_t x; memcpy(&x, src, 4); return tv_i(x); }
    case EM_S32: { int32_t x; memcpy(&x, src, 4); return tv_i(x); }
    case EM_U64: case EM_S64: { int64_t x; memcpy(&x, src, 8); return tv_i(x); }
    case EM_F16: { uint16_t x; memcpy(&x, src, 2); return tv_f(dec_f16(x)); }
    case EM_BF16: { uint16_t x; memcpy(&x, src, 2); return tv_f(dec_bf16(x)); }
    case EM_F32: { float x; memcpy(&x, src, 4); return tv_f(x); }
    case EM_F64: { double x; memcpy(&x, src, 8); return tv_f(x); }
    case EM_C64: { float x[2]; memcpy(x, src, 8); return tv_c(x[0], x[1]); }
    case EM_C128: { double x[2]; memcpy(x, src, 16); return tv_c(x[0], x[1]); }
    default: return tv_i(0);
  }
}

/* Random value of t in [lo, hi] (ints: integers in the range clamped to
 * the type; complex: both parts), already representable in t. */
REF tv rnd_tv(em_dtype t, double lo, double hi) {
  if (dt_int(t)) {
    double tl = (double)int_min_of(t), th = dt_uns(t) ? ldexp(1, dt_bits(t)) - 1
                                                       : (double)int_max_of(t);
    if (lo < tl) lo = tl;
    if (hi > th) hi = th;
    if (lo < -0x1p62) lo = -0x1p62;
    if (hi > 0x1p62) hi = 0x1p62;
    int64_t a = (int64_t)ceil(lo), b = (int64_t)floor(hi);
    if (b < a) b = a;
    return tv_i(wrap_int(t, (uint64_t)rng_int(a, b)));
  }
  if (dt_flt(t)) return quant(t, tv_f(rng_uniform(lo, hi)));
  return quant(t, tv_c(rng_uniform(lo, hi), rng_uniform(lo, hi)));
}
/* Uniform random bits of an integer type. */
REF tv rnd_bits(em_dtype t) { return tv_i(wrap_int(t, rng_u64())); }

/* ---- host tensors ------------------------------------------------------ */

typedef struct {
  em_dtype t;
  int nd;
  int64_t sh[EM_MAX_NDIM];
  int64_t n;
  tv *v;
} host;

REF host h_new(em_dtype t, int nd, const int64_t *sh) {
  host h;
  memset(&h, 0, sizeof h);
  h.t = t;
  h.nd = nd;
  h.n = 1;
  for (int i = 0; i < nd; i++) {
    h.sh[i] = sh[i];
    h.n *= sh[i];
  }
  h.v = calloc((size_t)(h.n > 0 ? h.n : 1), sizeof(tv));
  return h;
}
REF void h_free(host *h) {
  free(h->v);
  h->v = NULL;
}
REF host h_copy(const host *h) {
  host c = h_new(h->t, h->nd, h->sh);
  if (h->n) memcpy(c.v, h->v, (size_t)h->n * sizeof(tv));
  return c;
}
REF void unflat(int64_t f, int nd, const int64_t *sh, int64_t *idx) {
  for (int i = nd - 1; i >= 0; i--) {
    idx[i] = sh[i] ? f % sh[i] : 0;
    f = sh[i] ? f / sh[i] : 0;
  }
}
REF int64_t flat(int nd, const int64_t *sh, const int64_t *idx) {
  int64_t f = 0;
  for (int i = 0; i < nd; i++) f = f * sh[i] + idx[i];
  return f;
}
REF void h_rand(host *h, double lo, double hi) {
  for (int64_t i = 0; i < h->n; i++) h->v[i] = rnd_tv(h->t, lo, hi);
}
/* Makes sure not every element is zero. */
REF void h_nonzero(host *h) {
  for (int64_t i = 0; i < h->n; i++) {
    tv v = h->v[i];
    if (v.i != 0 || v.re != 0 || v.im != 0) return;
  }
  if (h->n) h->v[0] = quant(h->t, (tv){1, 1, dt_cpx(h->t) ? 0.5 : 0});
}
REF void *h_encode(const host *h, size_t *nbytes) {
  size_t es = em_dtype_size(h->t);
  *nbytes = (size_t)h->n * es;
  char *b = malloc(*nbytes ? *nbytes : 1);
  for (int64_t i = 0; i < h->n; i++) enc_val(h->t, h->v[i], b + i * (int64_t)es);
  return b;
}
REF em_array *h_array(const host *h) {
  size_t nb;
  void *b = h_encode(h, &nb);
  em_array *a = NULL;
  em_status st = em_array_from_data(&a, h->t, h->nd, h->sh, b, nb, em_cpu());
  free(b);
  if (st != EM_OK) {
    fprintf(stderr, "h_array: %s\n", em_last_error());
    abort();
  }
  return a;
}
/* The engine array's values as a host tensor (evaluates it). */
REF bool h_read(em_array *a, host *out) {
  *out = h_new(em_array_dtype(a), em_array_ndim(a), em_array_shape(a));
  size_t nb = em_array_nbytes(a);
  char *b = malloc(nb ? nb : 1);
  em_status st = em_array_to_host(a, b, nb);
  if (st != EM_OK) {
    free(b);
    return false;
  }
  size_t es = em_dtype_size(out->t);
  for (int64_t i = 0; i < out->n; i++) out->v[i] = dec_val(out->t, b + i * (int64_t)es);
  free(b);
  return true;
}

/* ---- naive shape references ------------------------------------------- */

REF host h_transpose(const host *h, const int *perm) {
  int64_t sh[EM_MAX_NDIM], idx[EM_MAX_NDIM], src[EM_MAX_NDIM];
  int p[EM_MAX_NDIM];
  for (int i = 0; i < h->nd; i++) p[i] = perm ? perm[i] : h->nd - 1 - i;
  for (int i = 0; i < h->nd; i++) sh[i] = h->sh[p[i]];
  host o = h_new(h->t, h->nd, sh);
  for (int64_t f = 0; f < o.n; f++) {
    unflat(f, o.nd, o.sh, idx);
    for (int i = 0; i < h->nd; i++) src[p[i]] = idx[i];
    o.v[f] = h->v[flat(h->nd, h->sh, src)];
  }
  return o;
}
/* Starts are clamped as Nx does. */
REF host h_slice(const host *h, const int64_t *start, const int64_t *len,
                 const int64_t *stride) {
  int64_t sh[EM_MAX_NDIM], s0[EM_MAX_NDIM], idx[EM_MAX_NDIM], src[EM_MAX_NDIM];
  for (int i = 0; i < h->nd; i++) {
    int64_t st = stride ? stride[i] : 1;
    sh[i] = len[i] == 0 ? 0 : (len[i] + st - 1) / st;
    s0[i] = start[i];
    if (s0[i] > h->sh[i] - len[i]) s0[i] = h->sh[i] - len[i];
    if (s0[i] < 0) s0[i] = 0;
  }
  host o = h_new(h->t, h->nd, sh);
  for (int64_t f = 0; f < o.n; f++) {
    unflat(f, o.nd, o.sh, idx);
    for (int i = 0; i < h->nd; i++) src[i] = s0[i] + idx[i] * (stride ? stride[i] : 1);
    o.v[f] = h->v[flat(h->nd, h->sh, src)];
  }
  return o;
}
REF host h_reverse(const host *h, int naxes, const int *axes) {
  bool rev[EM_MAX_NDIM] = {false};
  for (int i = 0; i < naxes; i++) rev[axes[i] < 0 ? axes[i] + h->nd : axes[i]] = true;
  int64_t idx[EM_MAX_NDIM];
  host o = h_new(h->t, h->nd, h->sh);
  for (int64_t f = 0; f < o.n; f++) {
    unflat(f, o.nd, o.sh, idx);
    for (int i = 0; i < h->nd; i++)
      if (rev[i]) idx[i] = h->sh[i] - 1 - idx[i];
    o.v[f] = h->v[flat(h->nd, h->sh, idx)];
  }
  return o;
}
/* axes[i]: output axis of input axis i (NULL: trailing alignment). */
REF host h_broadcast(const host *h, int nd, const int64_t *sh, const int *axes) {
  int64_t idx[EM_MAX_NDIM], src[EM_MAX_NDIM];
  host o = h_new(h->t, nd, sh);
  for (int64_t f = 0; f < o.n; f++) {
    unflat(f, nd, sh, idx);
    for (int i = 0; i < h->nd; i++) {
      int ax = axes ? axes[i] : nd - h->nd + i;
      src[i] = h->sh[i] == 1 ? 0 : idx[ax];
    }
    o.v[f] = h->v[flat(h->nd, h->sh, src)];
  }
  return o;
}
REF host h_reshape(const host *h, int nd, const int64_t *sh) {
  host o = h_new(h->t, nd, sh);
  if (o.n) memcpy(o.v, h->v, (size_t)o.n * sizeof(tv));
  return o;
}
/* numpy broadcast shape of two hosts; false if incompatible. */
REF bool bcast_shape(const host *a, const host *b, int *nd, int64_t *sh) {
  int n = a->nd > b->nd ? a->nd : b->nd;
  for (int d = 0; d < n; d++) {
    int da = d - (n - a->nd), db = d - (n - b->nd);
    int64_t x = da >= 0 ? a->sh[da] : 1, y = db >= 0 ? b->sh[db] : 1;
    if (x != y && x != 1 && y != 1) return false;
    sh[d] = x == 1 ? y : x;
  }
  *nd = n;
  return true;
}

/* ---- engine array + host pairs ---------------------------------------- */

typedef struct {
  em_array *a;
  host h;
} ah;

REF ah ah_of(host h) { return (ah){h_array(&h), h}; }
REF ah ah_rand(em_dtype t, int nd, const int64_t *sh, double lo, double hi) {
  host h = h_new(t, nd, sh);
  h_rand(&h, lo, hi);
  h_nonzero(&h);
  return ah_of(h);
}
REF void ah_free(ah *x) {
  em_array_release(x->a);
  x->a = NULL;
  h_free(&x->h);
}
REF em_array *must(em_status st, em_array *a, const char *what) {
  if (st != EM_OK || !a) {
    fprintf(stderr, "FATAL: %s failed: %s (%s)\n", what, em_status_name(st),
            em_last_error());
    abort();
  }
  return a;
}
static _Thread_local em_status ref_must_st;
/* The comma sequences the call before outvar is read. */
#define MUST(call, outvar) \
  (ref_must_st = (call), must(ref_must_st, (outvar), #call))

REF ah ah_transpose(const ah *x, const int *perm) {
  em_array *r = NULL;
  MUST(em_transpose(&r, x->a, perm), r);
  return (ah){r, h_transpose(&x->h, perm)};
}
REF ah ah_slice(const ah *x, const int64_t *start, const int64_t *len,
                const int64_t *stride) {
  em_array *r = NULL;
  MUST(em_slice(&r, x->a, start, len, stride), r);
  return (ah){r, h_slice(&x->h, start, len, stride)};
}
REF ah ah_reverse(const ah *x, int naxes, const int *axes) {
  em_array *r = NULL;
  MUST(em_reverse(&r, x->a, naxes, axes), r);
  return (ah){r, h_reverse(&x->h, naxes, axes)};
}
REF ah ah_broadcast(const ah *x, int nd, const int64_t *sh, const int *axes) {
  em_array *r = NULL;
  MUST(em_broadcast(&r, x->a, nd, sh, axes), r);
  return (ah){r, h_broadcast(&x->h, nd, sh, axes)};
}

/* A non-contiguous view with logical shape sh whose values come from a
 * base tensor filled by fill(base, ctx). kind: 0 transpose, 1 strided
 * slice, 2 reverse, 3 broadcast of a size-1 leading axis (the base has
 * sh[0] == 1 then), 4 slice of a transpose. */
typedef void (*fill_fn)(host *h, const void *ctx);
REF ah ah_noncontig(em_dtype t, int nd, const int64_t *sh, int kind,
                    fill_fn fill, const void *ctx) {
  int64_t bs[EM_MAX_NDIM] = {0};
  int perm[EM_MAX_NDIM] = {0};
  ah base, r;
  if (nd == 0) kind = -1;
  switch (kind) {
    case 0:
      for (int i = 0; i < nd; i++) {
        bs[i] = sh[nd - 1 - i];
        perm[i] = nd - 1 - i;
      }
      base.h = h_new(t, nd, bs);
      fill(&base.h, ctx);
      base.a = h_array(&base.h);
      r = ah_transpose(&base, perm);
      break;
    case 1: {
      int64_t st[EM_MAX_NDIM], len[EM_MAX_NDIM], s0[EM_MAX_NDIM];
      for (int i = 0; i < nd; i++) {
        st[i] = (i % 2) ? 2 : 3;
        len[i] = sh[i] == 0 ? 0 : (sh[i] - 1) * st[i] + 1;
        bs[i] = len[i] + 2;
        s0[i] = 1;
      }
      base.h = h_new(t, nd, bs);
      fill(&base.h, ctx);
      base.a = h_array(&base.h);
      r = ah_slice(&base, s0, len, st);
      break;
    }
    case 2: {
      int ax[EM_MAX_NDIM];
      for (int i = 0; i < nd; i++) ax[i] = i;
      base.h = h_new(t, nd, sh);
      fill(&base.h, ctx);
      base.a = h_array(&base.h);
      r = ah_reverse(&base, nd, ax);
      break;
    }
    case 3:
      for (int i = 0; i < nd; i++) bs[i] = i == 0 ? 1 : sh[i];
      base.h = h_new(t, nd, bs);
      fill(&base.h, ctx);
      base.a = h_array(&base.h);
      r = ah_broadcast(&base, nd, sh, NULL);
      break;
    case 4: {
      /* transpose of a base twice as large on the (new) last axis, then a
       * stride-2 slice */
      for (int i = 0; i < nd; i++) {
        bs[i] = sh[nd - 1 - i] * (i == 0 ? 2 : 1);
        perm[i] = nd - 1 - i;
      }
      base.h = h_new(t, nd, bs);
      fill(&base.h, ctx);
      base.a = h_array(&base.h);
      ah tr = ah_transpose(&base, perm);
      int64_t s0[EM_MAX_NDIM] = {0}, len[EM_MAX_NDIM], st[EM_MAX_NDIM];
      for (int i = 0; i < nd; i++) {
        len[i] = tr.h.sh[i];
        st[i] = 1;
      }
      st[nd - 1] = 2;
      r = ah_slice(&tr, s0, len, st);
      ah_free(&tr);
      break;
    }
    default:
      base.h = h_new(t, nd, sh);
      fill(&base.h, ctx);
      return ah_of(base.h);
  }
  ah_free(&base);
  return r;
}

/* ---- comparison --------------------------------------------------------- */

REF double rtol_of(em_dtype t) {
  switch (t) {
    case EM_F16: return 1e-3;
    case EM_BF16: return 8e-3;
    case EM_F32: case EM_C64: return 1e-5;
    case EM_F64: case EM_C128: return 1e-12;
    default: return 0;
  }
}
REF double atol_of(em_dtype t) {
  switch (t) {
    case EM_F16: return 1e-7; /* half the smallest subnormal step */
    case EM_BF16: case EM_F32: case EM_C64: return 1e-37;
    case EM_F64: case EM_C128: return 1e-300;
    default: return 0;
  }
}

enum { CMP_SIGNZERO = 1 /* zeros must match in sign too */ };

REF bool val_close(em_dtype t, tv got, tv want, double rtol, double atol,
                   int flags) {
  if (dt_int(t)) return got.i == want.i;
  if (dt_flt(t)) {
    if (!th_close(got.re, want.re, rtol, atol)) return false;
    if ((flags & CMP_SIGNZERO) && want.re == 0 &&
        signbit(got.re) != signbit(want.re))
      return false;
    return true;
  }
  /* complex: each part within atol + rtol * |want| */
  if (isnan(want.re) || isnan(want.im))
    return isnan(got.re) || isnan(got.im);
  double m = hypot(want.re, want.im);
  if (isinf(m)) return th_close(got.re, want.re, 0, 0) && th_close(got.im, want.im, 0, 0);
  return th_close(got.re, want.re, 0, atol + rtol * m) &&
         th_close(got.im, want.im, 0, atol + rtol * m);
}

REF void fmt_tv(char *b, size_t cap, em_dtype t, tv v) {
  if (dt_int(t)) {
    if (dt_uns(t)) snprintf(b, cap, "%llu", (unsigned long long)v.i);
    else snprintf(b, cap, "%lld", (long long)v.i);
  } else if (dt_flt(t)) {
    snprintf(b, cap, "%.17g", v.re);
  } else {
    snprintf(b, cap, "(%.17g, %.17g)", v.re, v.im);
  }
}
REF void fmt_shape(char *b, size_t cap, int nd, const int64_t *sh) {
  size_t u = (size_t)snprintf(b, cap, "[");
  for (int i = 0; i < nd && u < cap; i++)
    u += (size_t)snprintf(b + u, cap - u, "%s%lld", i ? "," : "", (long long)sh[i]);
  if (u < cap) snprintf(b + u, cap - u, "]");
}

/* Compares an engine result with a host tensor: dtype, shape and every
 * value (atols: optional per-element absolute tolerances added to atol).
 * One CHECK per call; prints the first mismatch. */
REF bool check_host_ex(const char *what, em_array *got, const host *want,
                       double rtol, double atol, const double *atols,
                       int flags) {
  char b1[128], b2[128];
  if (!got) {
    CHECK(0, "%s: result is NULL (%s)", what, em_last_error());
    return false;
  }
  if (em_array_dtype(got) != want->t) {
    CHECK(0, "%s: dtype %s, want %s", what, dn(em_array_dtype(got)), dn(want->t));
    return false;
  }
  bool same = em_array_ndim(got) == want->nd;
  for (int i = 0; same && i < want->nd; i++) same = em_array_shape(got)[i] == want->sh[i];
  if (!same) {
    fmt_shape(b1, sizeof b1, em_array_ndim(got), em_array_shape(got));
    fmt_shape(b2, sizeof b2, want->nd, want->sh);
    CHECK(0, "%s: shape %s, want %s", what, b1, b2);
    return false;
  }
  host g;
  if (!h_read(got, &g)) {
    CHECK(0, "%s: reading the result failed: %s", what, em_last_error());
    h_free(&g);
    return false;
  }
  int64_t bad = -1, nbad = 0;
  for (int64_t i = 0; i < want->n; i++) {
    double at = atol + (atols ? atols[i] : 0);
    if (!val_close(want->t, g.v[i], want->v[i], rtol, at, flags)) {
      if (bad < 0) bad = i;
      nbad++;
    }
  }
  if (bad >= 0) {
    int64_t idx[EM_MAX_NDIM];
    char is[128];
    unflat(bad, want->nd, want->sh, idx);
    fmt_shape(is, sizeof is, want->nd, idx);
    fmt_tv(b1, sizeof b1, want->t, g.v[bad]);
    fmt_tv(b2, sizeof b2, want->t, want->v[bad]);
    CHECK(0, "%s (%s): %lld of %lld elements differ; first at %s: got %s, want %s",
          what, dn(want->t), (long long)nbad, (long long)want->n, is, b1, b2);
  } else {
    CHECK(1, "ok");
  }
  h_free(&g);
  return bad < 0;
}
REF bool check_host(const char *what, em_array *got, const host *want,
                    double rtol, double atol) {
  return check_host_ex(what, got, want, rtol, atol, NULL, 0);
}
/* Default tolerances of the dtype. */
REF bool check_default(const char *what, em_array *got, const host *want) {
  return check_host(what, got, want, rtol_of(want->t), atol_of(want->t));
}

/* Checks that a call failed with EM_ERR_ARGUMENT (or `want`), left *out
 * NULL and set a message starting with "[prefix]" that contains every
 * string of `needles` (NULL-terminated). */
REF void check_err_(const char *file, int line, em_status st, em_status want,
                    em_array *out, const char *prefix, const char *const *needles) {
  const char *msg = em_last_error();
  char pre[64];
  snprintf(pre, sizeof pre, "[%s]", prefix);
  th_checks++;
  bool ok = st == want && out == NULL && strncmp(msg, pre, strlen(pre)) == 0;
  for (int i = 0; ok && needles && needles[i]; i++) ok = strstr(msg, needles[i]) != NULL;
  if (!ok) {
    th_failures++;
    char want_s[256] = "";
    size_t used = 0;
    for (int i = 0; needles && needles[i] && used < sizeof want_s; i++) {
      int w = snprintf(want_s + used, sizeof want_s - used, "%s%s",
                       i ? ", " : " and ", needles[i]);
      if (w < 0) break;
      used += (size_t)w;
    }
    if (th_failures <= 50)
      fprintf(stderr,
              "%s:%d: error check failed: status %s (want %s), out %s, message "
              "\"%s\" (want prefix %s%s)\n",
              file, line, em_status_name(st), em_status_name(want),
              out ? "non-NULL" : "NULL", msg, pre, want_s);
  }
}
#define CHECK_ERR(st, out, prefix, ...)                                      \
  check_err_(__FILE__, __LINE__, (st), EM_ERR_ARGUMENT, (out), (prefix),     \
             (const char *const[]){__VA_ARGS__, NULL})
#define CHECK_ERR_ST(st, want, out, prefix, ...)                             \
  check_err_(__FILE__, __LINE__, (st), (want), (out), (prefix),              \
             (const char *const[]){__VA_ARGS__, NULL})

/* Sentinel for *out: a failing op must overwrite it with NULL. */
#define SENTINEL ((em_array *)(uintptr_t)0x1)

/* ---- complex helpers (pairs of doubles, written out by hand) ---------- */

typedef struct {
  double re, im;
} cx;
REF cx cx_of(tv v) { return (cx){v.re, v.im}; }
REF tv tv_cx(cx z) { return tv_c(z.re, z.im); }
REF cx cx_add(cx a, cx b) { return (cx){a.re + b.re, a.im + b.im}; }
REF cx cx_sub(cx a, cx b) { return (cx){a.re - b.re, a.im - b.im}; }
REF cx cx_mul(cx a, cx b) {
  return (cx){a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}
REF cx cx_div(cx a, cx b) {
  long double d = (long double)b.re * b.re + (long double)b.im * b.im;
  return (cx){(double)(((long double)a.re * b.re + (long double)a.im * b.im) / d),
              (double)(((long double)a.im * b.re - (long double)a.re * b.im) / d)};
}
REF double cx_abs(cx a) { return hypot(a.re, a.im); }
REF cx cx_exp(cx a) {
  double m = exp(a.re);
  return (cx){m * cos(a.im), m * sin(a.im)};
}
REF cx cx_log(cx a) { return (cx){log(cx_abs(a)), atan2(a.im, a.re)}; }
REF cx cx_sqrt(cx a) { /* principal root via polar form */
  double r = sqrt(cx_abs(a)), th = atan2(a.im, a.re) / 2;
  return (cx){r * cos(th), r * sin(th)};
}
REF cx cx_r(double re) { return (cx){re, 0}; }
REF cx cx_i(cx a) { return (cx){-a.im, a.re}; }     /* i * a */
REF cx cx_negi(cx a) { return (cx){a.im, -a.re}; }  /* -i * a */
REF cx cx_scale(cx a, double s) { return (cx){a.re * s, a.im * s}; }

#endif
