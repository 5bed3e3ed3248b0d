/* test_types.c — the narrow dtypes s2 s4 u2 u4 f8 (E5M2) f8_e4m3fn, through
 * the public API, against references written here from the formats'
 * definitions: every f8 encoding decoded; f8 rounding (ties to even,
 * subnormals, overflow, NaN) against a brute-force nearest-value search;
 * Nx's packed host layout (bit by bit) with odd element counts and
 * non-contiguous arrays; as_type between every pair of dtypes; wrapping
 * arithmetic (all operand pairs); f8 arithmetic (all 65536 pairs);
 * reductions, dot, fused chains and large arrays (thread pool). */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emily.h"
#include "harness.h"

#define CPU em_cpu()
#define ARRLEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const em_dtype SUB[] = {EM_S2, EM_S4, EM_U2, EM_U4};
static const em_dtype F8S[] = {EM_F8, EM_F8_E4M3FN};

static bool is_sub(em_dtype t) {
  return t == EM_S2 || t == EM_S4 || t == EM_U2 || t == EM_U4;
}
static bool is_f8(em_dtype t) { return t == EM_F8 || t == EM_F8_E4M3FN; }
static int sbits(em_dtype t) { return t == EM_S2 || t == EM_U2 ? 2 : 4; }
static bool ssigned(em_dtype t) { return t == EM_S2 || t == EM_S4; }
static int smin(em_dtype t) { return ssigned(t) ? -(1 << (sbits(t) - 1)) : 0; }
static int smax(em_dtype t) {
  return ssigned(t) ? (1 << (sbits(t) - 1)) - 1 : (1 << sbits(t)) - 1;
}
/* v modulo 2^bits into t's range. */
static int wrapv(em_dtype t, int64_t v) {
  int w = sbits(t);
  int64_t u = (int64_t)((uint64_t)v & ((1u << w) - 1u));
  if (ssigned(t) && u >= (1 << (w - 1))) u -= 1 << w;
  return (int)u;
}

/* ---- reference packing (Nx: element i at bit i*bits from the MSB) ------- */

static size_t packed_size(int bits, int64_t n) {
  return (size_t)((n * bits + 7) / 8);
}
static void ref_pack(int bits, const int *v, int64_t n, uint8_t *out) {
  if (n <= 0) return;
  memset(out, 0, packed_size(bits, n));
  for (int64_t i = 0; i < n; i++)
    for (int k = 0; k < bits; k++) {
      unsigned bit = ((unsigned)v[i] >> (bits - 1 - k)) & 1u;
      int64_t pos = i * bits + k;
      if (bit) out[pos / 8] |= (uint8_t)(0x80u >> (pos % 8));
    }
}
static void ref_unpack(int bits, bool sign, const uint8_t *p, int64_t n,
                       int *v) {
  for (int64_t i = 0; i < n; i++) {
    int x = 0;
    for (int k = 0; k < bits; k++) {
      int64_t pos = i * bits + k;
      x = (x << 1) | ((p[pos / 8] >> (7 - pos % 8)) & 1);
    }
    if (sign && x >= (1 << (bits - 1))) x -= 1 << bits;
    v[i] = x;
  }
}

/* ---- reference f8 ----------------------------------------------------------- */

static double ref_dec(em_dtype t, unsigned c) {
  double v;
  if (t == EM_F8) {
    int e = (c >> 2) & 31, m = c & 3;
    if (e == 31) v = m ? NAN : INFINITY;
    else if (e == 0) v = ldexp(m, -16);
    else v = ldexp(4 + m, e - 17);
  } else {
    int e = (c >> 3) & 15, m = c & 7;
    if (e == 15 && m == 7) v = NAN;
    else if (e == 0) v = ldexp(m, -9);
    else v = ldexp(8 + m, e - 10);
  }
  return c & 0x80u ? -v : v;
}
static bool code_is_nan(em_dtype t, unsigned c) {
  return t == EM_F8 ? (c & 0x7cu) == 0x7cu && (c & 3u) : (c & 0x7fu) == 0x7fu;
}
/* Nearest value by search; ties to the even code (mantissa LSB 0). E5M2's
 * inf (0x7c) competes as 2^16, the next binade, as IEEE rounding does;
 * E4M3FN saturates beyond 448 (Nx). NaN: the quiet code with x's sign. */
static unsigned ref_enc(em_dtype t, double x) {
  unsigned sign = signbit(x) ? 0x80u : 0u;
  if (isnan(x)) return sign | (t == EM_F8 ? 0x7eu : 0x7fu);
  double a = fabs(x);
  if (t == EM_F8 && isinf(a)) return sign | 0x7cu;
  if (t == EM_F8_E4M3FN && a > 448) return sign | 0x7eu;
  unsigned top = t == EM_F8 ? 0x7cu : 0x7eu, best = 0;
  double bd = INFINITY;
  for (unsigned c = 0; c <= top; c++) {
    double v = t == EM_F8 && c == 0x7cu ? 65536.0 : ref_dec(t, c);
    double d = fabs(a - v);
    if (d < bd || (d == bd && (c & 1u) == 0)) {
      bd = d;
      best = c;
    }
  }
  return sign | best;
}
/* Same code, or both NaN (NaN signs are not specified). */
static bool same_code(em_dtype t, unsigned got, unsigned want) {
  if (code_is_nan(t, want)) return code_is_nan(t, got);
  return got == want;
}

/* ---- array helpers ------------------------------------------------------------ */

static em_array *mk(em_dtype t, int ndim, const int64_t *shape,
                    const void *data, size_t nbytes) {
  em_array *a = NULL;
  em_status st = em_array_from_data(&a, t, ndim, shape, data, nbytes, CPU);
  CHECK(st == EM_OK, "from_data %s: %s", em_dtype_name(t), em_last_error());
  return a;
}
static em_array *mk1(em_dtype t, int64_t n, const void *data, size_t nbytes) {
  return mk(t, 1, &n, data, nbytes);
}
/* Sub-byte array from ints (packed here). */
static em_array *mk_sub(em_dtype t, int ndim, const int64_t *shape,
                        const int *v) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  size_t nb = packed_size(sbits(t), n);
  uint8_t *p = malloc(nb + 1);
  ref_pack(sbits(t), v, n, p);
  em_array *a = mk(t, ndim, shape, p, nb);
  free(p);
  return a;
}
static em_array *mk_sub1(em_dtype t, int64_t n, const int *v) {
  return mk_sub(t, 1, &n, v);
}
/* Reads a sub-byte array through the host layout, and checks that the
 * values the engine holds (read by a widening as_type, which packing
 * cannot mask) are the same, i.e. in the type's range. */
static bool rd_sub(em_array *a, int *v) {
  if (!a) return false;
  size_t nb = em_array_nbytes(a);
  int64_t n = em_array_size(a);
  uint8_t *p = malloc(nb + 1);
  em_status st = em_array_to_host(a, p, nb);
  CHECK(st == EM_OK, "to_host %s: %s", em_dtype_name(em_array_dtype(a)),
        em_last_error());
  if (st == EM_OK) {
    ref_unpack(sbits(em_array_dtype(a)), ssigned(em_array_dtype(a)), p, n, v);
    em_array *w = NULL;
    int32_t *s = malloc(sizeof(int32_t) * (size_t)(n + 1));
    bool same = em_as_type(&w, a, EM_S32) == EM_OK &&
                em_array_to_host(w, s, sizeof(int32_t) * (size_t)n) == EM_OK;
    int64_t i = 0;
    for (; same && i < n; i++) same = s[i] == v[i];
    CHECK(same, "%s element %lld: stored %d, packed %d",
          em_dtype_name(em_array_dtype(a)), (long long)(i - 1),
          i ? s[i - 1] : 0, i ? v[i - 1] : 0);
    free(s);
    em_array_release(w);
  }
  free(p);
  return st == EM_OK;
}
static bool rd(em_array *a, void *dst) {
  if (!a) return false;
  em_status st = em_array_to_host(a, dst, em_array_nbytes(a));
  CHECK(st == EM_OK, "to_host %s: %s", em_dtype_name(em_array_dtype(a)),
        em_last_error());
  return st == EM_OK;
}
static em_array *astype(em_array *a, em_dtype t) {
  em_array *o = NULL;
  if (!a) return NULL;
  em_status st = em_as_type(&o, a, t);
  CHECK(st == EM_OK, "as_type: %s", em_last_error());
  return o;
}

typedef em_status (*binfn)(em_array **, em_array *, em_array *);
typedef em_status (*unfn)(em_array **, em_array *);
static em_array *bin(binfn f, em_array *a, em_array *b) {
  em_array *o = NULL;
  if (!a || !b) return NULL;
  em_status st = f(&o, a, b);
  CHECK(st == EM_OK, "binary: %s", em_last_error());
  return o;
}
static em_array *un(unfn f, em_array *a) {
  em_array *o = NULL;
  if (!a) return NULL;
  em_status st = f(&o, a);
  CHECK(st == EM_OK, "unary: %s", em_last_error());
  return o;
}

/* ---- dtype table ------------------------------------------------------------ */

static void test_table(void) {
  static const struct {
    em_dtype t;
    const char *name;
    int bits;
    char kind;
  } tab[] = {{EM_S2, "s2", 2, 's'}, {EM_S4, "s4", 4, 's'},
             {EM_U2, "u2", 2, 'u'}, {EM_U4, "u4", 4, 'u'},
             {EM_F8, "f8", 8, 'f'}, {EM_F8_E4M3FN, "f8_e4m3fn", 8, 'f'}};
  for (int i = 0; i < ARRLEN(tab); i++) {
    em_dtype t = tab[i].t, back = EM_DTYPE_COUNT;
    CHECK(strcmp(em_dtype_name(t), tab[i].name) == 0, "name %s", tab[i].name);
    CHECK(em_dtype_from_name(tab[i].name, &back) && back == t, "from_name %s",
          tab[i].name);
    CHECK(em_dtype_size(t) == 1, "storage size of %s", tab[i].name);
    CHECK(em_dtype_bits(t) == tab[i].bits, "bits of %s", tab[i].name);
    char k = tab[i].kind;
    CHECK(em_dtype_is_int(t) == (k != 'f') && em_dtype_is_float(t) == (k == 'f') &&
              !em_dtype_is_complex(t) &&
              em_dtype_is_signed(t) == (k == 's' || k == 'f'),
          "kind predicates of %s", tab[i].name);
  }
  CHECK(em_dtype_bits(EM_C128) == 128 && em_dtype_bits(EM_U8) == 8 &&
            em_dtype_bits(EM_DTYPE_COUNT) == 0,
        "bits of others");
  /* the older dtypes keep their enum values */
  CHECK(EM_U8 == 0 && EM_S8 == 4 && EM_F32 == 10 && EM_C128 == 13,
        "enum positions");
  /* host sizes */
  static const int64_t ns[] = {0, 1, 2, 3, 4, 5, 7, 9, 1001};
  for (int i = 0; i < ARRLEN(ns); i++)
    for (int s = 0; s < 4; s++) {
      em_dtype t = SUB[s];
      em_array *a = NULL;
      int64_t n = ns[i];
      if (em_full_scalar(&a, t, 1, CPU) == EM_OK) {
        em_array *b = NULL;
        em_broadcast(&b, a, 1, &n, NULL);
        CHECK(b && em_array_nbytes(b) == packed_size(sbits(t), n),
              "nbytes %s [%lld]", em_dtype_name(t), (long long)n);
        em_array_release(b);
      }
      em_array_release(a);
    }
}

/* ---- f8 decode / encode ------------------------------------------------------- */

/* All 256 codes of each f8 type to f32, f64, f16, bf16, c64 (exact). */
static void test_f8_decode(void) {
  uint8_t codes[256];
  for (int i = 0; i < 256; i++) codes[i] = (uint8_t)i;
  for (int k = 0; k < 2; k++) {
    em_dtype t = F8S[k];
    em_array *a = mk1(t, 256, codes, 256);
    em_array *d = astype(a, EM_F64), *f = astype(a, EM_F32),
             *h = astype(a, EM_F16), *bh = astype(a, EM_BF16),
             *c = astype(a, EM_C64);
    double gd[256];
    float gf[256], gc[512];
    uint16_t gh[256], gb[256];
    if (rd(d, gd) && rd(f, gf) && rd(h, gh) && rd(bh, gb) && rd(c, gc)) {
      for (int i = 0; i < 256; i++) {
        double w = ref_dec(t, (unsigned)i);
        /* f16 by hand: (1024+m) 2^(e-25), subnormal m 2^-24 */
        int he = (gh[i] >> 10) & 31, hm = gh[i] & 1023;
        double hv = he == 31 ? (hm ? NAN : INFINITY)
                    : he == 0 ? ldexp(hm, -24)
                              : ldexp(1024 + hm, he - 25);
        if (gh[i] & 0x8000) hv = -hv;
        uint32_t bb = (uint32_t)gb[i] << 16;
        float bv;
        memcpy(&bv, &bb, 4);
        bool ok = isnan(w) ? isnan(gd[i]) && isnan(gf[i]) && isnan(hv) &&
                                 isnan(bv) && isnan(gc[2 * i])
                           : gd[i] == w && gf[i] == w && hv == w && bv == w &&
                                 gc[2 * i] == w && gc[2 * i + 1] == 0 &&
                                 signbit(gd[i]) == signbit(w) &&
                                 signbit(hv) == signbit(w);
        CHECK(ok, "%s decode 0x%02x: want %g got f64 %g f32 %g f16 %g bf16 %g",
              em_dtype_name(t), i, w, gd[i], (double)gf[i], hv, (double)bv);
      }
    }
    /* a few landmarks, by hand */
    if (t == EM_F8) {
      CHECK(ref_dec(t, 0x7b) == 57344 && isinf(ref_dec(t, 0x7c)) &&
                ref_dec(t, 0x01) == 0x1p-16 && ref_dec(t, 0x04) == 0x1p-14 &&
                ref_dec(t, 0x3c) == 1.0,
            "e5m2 landmarks");
    } else {
      CHECK(ref_dec(t, 0x7e) == 448 && isnan(ref_dec(t, 0x7f)) &&
                ref_dec(t, 0x78) == 256 && ref_dec(t, 0x01) == 0x1p-9 &&
                ref_dec(t, 0x38) == 1.0 && ref_dec(t, 0xfe) == -448,
            "e4m3fn landmarks");
    }
    em_array_release(a);
    em_array_release(d);
    em_array_release(f);
    em_array_release(h);
    em_array_release(bh);
    em_array_release(c);
  }
}

/* Encodes xs (as f64 and as f32) and checks each against ref_enc. */
static void check_encode(em_dtype t, const double *xs, int64_t n,
                         const char *what) {
  em_array *d = mk1(EM_F64, n, xs, (size_t)n * 8);
  float *fs = malloc((size_t)n * sizeof(float));
  uint8_t *g = malloc((size_t)n), *g32 = malloc((size_t)n);
  for (int64_t i = 0; i < n; i++) fs[i] = (float)xs[i];
  em_array *f = mk1(EM_F32, n, fs, (size_t)n * 4);
  em_array *e64 = astype(d, t), *e32 = astype(f, t);
  int bad = 0;
  if (rd(e64, g) && rd(e32, g32))
    for (int64_t i = 0; i < n && bad < 10; i++) {
      unsigned w = ref_enc(t, xs[i]), w32 = ref_enc(t, (double)fs[i]);
      bool ok = same_code(t, g[i], w) && same_code(t, g32[i], w32);
      if (!ok) bad++;
      CHECK(ok, "%s %s encode %.17g: f64 got 0x%02x want 0x%02x; f32 got 0x%02x want 0x%02x",
            em_dtype_name(t), what, xs[i], g[i], w, g32[i], w32);
    }
  em_array_release(d);
  em_array_release(f);
  em_array_release(e64);
  em_array_release(e32);
  free(fs);
  free(g);
  free(g32);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static double urand(void) { return (double)(rnd() >> 11) * 0x1p-53; }

static void test_f8_encode(void) {
  for (int k = 0; k < 2; k++) {
    em_dtype t = F8S[k];
    /* every positive finite value, the midpoints between neighbours (ties)
     * and their f64 neighbours, with both signs */
    unsigned top = t == EM_F8 ? 0x7bu : 0x7eu;
    double *xs = malloc(sizeof(double) * 4096);
    int n = 0;
    for (unsigned c = 0; c <= top; c++) {
      double v = ref_dec(t, c);
      double nx = c == top ? (t == EM_F8 ? 65536.0 : 512.0) : ref_dec(t, c + 1);
      double mid = (v + nx) / 2;
      double xv[] = {v, mid, nextafter(mid, 0), nextafter(mid, INFINITY),
                     nextafter(v, INFINITY), v + (nx - v) * 0.25,
                     v + (nx - v) * 0.75};
      for (int j = 0; j < ARRLEN(xv); j++) {
        xs[n++] = xv[j];
        xs[n++] = -xv[j];
      }
    }
    check_encode(t, xs, n, "grid");
    /* specials */
    double sp[] = {0.0,      -0.0,      INFINITY,  -INFINITY, NAN,
                   -NAN,     57344,     61439.99,  61440,     61440.01,
                   65504,    65520,     1e6,       -1e300,    448,
                   463.99,   464,       464.01,    480,       1e10,
                   0x1p-17,  0x1p-18,   0x1.8p-17, 0x1p-10,   0x1p-11,
                   0x1.8p-10, 1e-300,   5e-324,    -5e-324,   (double)FLT_MAX,
                   0x1.0000000000001p-10};
    check_encode(t, sp, ARRLEN(sp), "specials");
    /* random magnitudes over the whole range and beyond */
    int m = 0;
    for (int i = 0; i < 4096; i++) {
      double v = ldexp(1.0 + urand(), (int)(rnd() % 50) - 30);
      xs[m++] = rnd() & 1 ? -v : v;
    }
    check_encode(t, xs, m, "random");
    free(xs);
  }
}

/* ---- as_type between every pair --------------------------------------------------
 * Wide sources are built by the engine's own conversions (from f64 or s64
 * values; those are tested by test_kernels_unary_cast) and read back here
 * raw; the expected narrow result is computed from the value actually
 * stored. */

typedef struct {
  bool is_int;
  uint64_t bits; /* ints: the value's two's complement bits */
  double d;      /* the value (complex: real part) */
} val;

static double dec_f16(uint16_t h) {
  int e = (h >> 10) & 31, m = h & 1023;
  double v = e == 31 ? (m ? NAN : INFINITY)
             : e == 0 ? ldexp(m, -24)
                      : ldexp(1024 + m, e - 25);
  return h & 0x8000 ? -v : v;
}

static val get_val(em_dtype t, const void *buf, int64_t i) {
  val v = {false, 0, 0};
  const char *p = (const char *)buf;
  switch (t) {
#define INT_CASE(E, T)                       \
  case E: {                                  \
    T x;                                     \
    memcpy(&x, p + i * sizeof(T), sizeof x); \
    v.is_int = true;                         \
    v.bits = (uint64_t)(int64_t)x;           \
    v.d = (double)x;                         \
    break;                                   \
  }
    INT_CASE(EM_S8, int8_t)
    INT_CASE(EM_S16, int16_t)
    INT_CASE(EM_S32, int32_t)
    INT_CASE(EM_S64, int64_t)
    INT_CASE(EM_U8, uint8_t)
    INT_CASE(EM_U16, uint16_t)
    INT_CASE(EM_U32, uint32_t)
#undef INT_CASE
    case EM_U64: {
      uint64_t x;
      memcpy(&x, p + i * 8, 8);
      v.is_int = true;
      v.bits = x;
      v.d = (double)x;
      break;
    }
    case EM_F16: {
      uint16_t h;
      memcpy(&h, p + i * 2, 2);
      v.d = dec_f16(h);
      break;
    }
    case EM_BF16: {
      uint16_t h;
      memcpy(&h, p + i * 2, 2);
      uint32_t b = (uint32_t)h << 16;
      float f;
      memcpy(&f, &b, 4);
      v.d = f;
      break;
    }
    case EM_F32:
    case EM_C64: {
      float f;
      memcpy(&f, p + (t == EM_C64 ? 8 : 4) * i, 4);
      v.d = f;
      break;
    }
    case EM_F64:
    case EM_C128: {
      double d;
      memcpy(&d, p + (t == EM_C128 ? 16 : 8) * i, 8);
      v.d = d;
      break;
    }
    default:
      break;
  }
  return v;
}

/* Expected integer (as two's complement bits masked to `bits`) of a
 * float value converted to a (bits, signed) int: truncation, NaN -> 0,
 * saturation. */
static uint64_t float_to_int(double d, int bits, bool sign) {
  double lo = sign ? -ldexp(1, bits - 1) : 0;
  double hi = sign ? ldexp(1, bits - 1) : ldexp(1, bits); /* exclusive */
  uint64_t mask = bits == 64 ? ~0ull : (1ull << bits) - 1;
  if (isnan(d)) return 0;
  d = trunc(d);
  if (d <= lo) return sign ? (1ull << (bits - 1)) & mask : 0; /* min */
  if (d >= hi) return sign ? mask >> 1 : mask;                /* max */
  int64_t s = d < 0 ? -(int64_t)(-d) : 0;
  uint64_t u = d < 0 ? (uint64_t)s : (uint64_t)d;
  return u & mask;
}

static int dt_bits_int(em_dtype t) { return em_dtype_bits(t); }
static bool dt_is_int(em_dtype t) { return em_dtype_is_int(t); }

/* Checks out (dtype to) element i against source value v. */
static bool check_conv(em_dtype from, em_dtype to, val v, const void *out,
                       int64_t i, char *msg, size_t cap) {
  const char *p = (const char *)out;
  if (is_f8(to)) {
    unsigned g = ((const uint8_t *)out)[i];
    unsigned w = ref_enc(to, v.d);
    snprintf(msg, cap, "got 0x%02x want 0x%02x (x=%.17g)", g, w, v.d);
    return same_code(to, g, w);
  }
  if (dt_is_int(to)) {
    int bits = dt_bits_int(to);
    bool sign = em_dtype_is_signed(to);
    uint64_t mask = bits == 64 ? ~0ull : (1ull << bits) - 1;
    uint64_t w = v.is_int ? v.bits & mask : float_to_int(v.d, bits, sign);
    uint64_t g = 0;
    if (is_sub(to)) {
      int x = ((const int8_t *)out)[i]; /* unpacked by the caller */
      g = (uint64_t)(int64_t)x & mask;
    } else {
      size_t es = em_dtype_size(to);
      memcpy(&g, p + (size_t)i * es, es);
      g &= mask;
    }
    snprintf(msg, cap, "got 0x%llx want 0x%llx (x=%.17g)",
             (unsigned long long)g, (unsigned long long)w, v.d);
    return g == w;
  }
  /* float or complex target: narrow sources are exact in all of them */
  val g = get_val(to, out, i);
  double im = 0;
  if (to == EM_C64) {
    float f;
    memcpy(&f, p + 8 * i + 4, 4);
    im = f;
  } else if (to == EM_C128) {
    memcpy(&im, p + 16 * i + 8, 8);
  }
  double w = v.d;
  snprintf(msg, cap, "got %.17g%+gi want %.17g", g.d, im, w);
  if (isnan(w)) return isnan(g.d) && im == 0;
  return g.d == w && im == 0 && signbit(g.d) == signbit(w);
}

/* Reads any array into a buffer of unpacked elements (sub-byte: int8). */
static bool rd_any(em_array *a, void *buf) {
  if (!a) return false;
  if (!is_sub(em_array_dtype(a))) return rd(a, buf);
  int64_t n = em_array_size(a);
  int *v = malloc(sizeof(int) * (size_t)(n + 1));
  bool ok = rd_sub(a, v);
  for (int64_t i = 0; ok && i < n; i++) ((int8_t *)buf)[i] = (int8_t)v[i];
  free(v);
  return ok;
}

static void check_pair(em_dtype from, em_array *src, const void *srcbuf,
                       em_dtype to) {
  int64_t n = em_array_size(src);
  em_array *o = astype(src, to);
  void *out = malloc((size_t)n * 16 + 16);
  int bad = 0;
  if (rd_any(o, out))
    for (int64_t i = 0; i < n && bad < 5; i++) {
      val v;
      if (is_sub(from)) {
        int x = ((const int8_t *)srcbuf)[i];
        v = (val){true, (uint64_t)(int64_t)x, (double)x};
      } else if (is_f8(from)) {
        v = (val){false, 0, ref_dec(from, ((const uint8_t *)srcbuf)[i])};
      } else {
        v = get_val(from, srcbuf, i);
      }
      char msg[200];
      bool ok = check_conv(from, to, v, out, i, msg, sizeof msg);
      if (!ok) bad++;
      CHECK(ok, "as_type %s->%s [%lld]: %s", em_dtype_name(from),
            em_dtype_name(to), (long long)i, msg);
    }
  free(out);
  em_array_release(o);
}

static void test_as_type_all(void) {
  /* narrow sources: every value / code */
  for (int s = 0; s < 6; s++) {
    em_dtype from = s < 4 ? SUB[s] : F8S[s - 4];
    int8_t buf[256];
    int vals[256];
    int n;
    em_array *src;
    if (is_sub(from)) {
      n = 0;
      for (int v = smin(from); v <= smax(from); v++) vals[n++] = v;
      for (int i = 0; i < n; i++) buf[i] = (int8_t)vals[i];
      src = mk_sub1(from, n, vals);
    } else {
      n = 256;
      for (int i = 0; i < 256; i++) buf[i] = (int8_t)(uint8_t)i;
      src = mk1(from, 256, buf, 256);
    }
    for (int to = 0; to < EM_DTYPE_COUNT; to++)
      if (src) check_pair(from, src, buf, (em_dtype)to);
    em_array_release(src);
  }
  /* wide sources into the narrow types */
  static const double fv[] = {0,    -0.0,  1,     -1,    1.5,    -1.5,  2.5,
                              -2.7, 7,     7.9,   8,     -8,     -8.5,  -9,
                              15,   15.5,  16,    17,    100.25, -100,  255,
                              256,  -129,  448,   449,   500,    1000,  57344,
                              61440, 65504, 1e10, -1e10, INFINITY, -INFINITY,
                              NAN,  0.1,   0.3,   3e-5,  -3e-5,  1e-8,  2e38};
  static const int64_t iv[] = {0,  1,  -1, 7,  8,   -8,   -9,   15,    16,
                               17, 31, 33, -17, 100, -100, 255, 256,  1000,
                               -1000, 65535, 70000, 61439, 61440, 1 << 24,
                               (int64_t)1 << 40, INT64_MIN, INT64_MAX,
                               -((int64_t)1 << 53)};
  for (int w = 0; w <= EM_C128; w++) {
    em_dtype from = (em_dtype)w;
    bool isint = em_dtype_is_int(from);
    em_array *base = isint ? mk1(EM_S64, ARRLEN(iv), iv, sizeof iv)
                           : mk1(EM_F64, ARRLEN(fv), fv, sizeof fv);
    em_array *src = astype(base, from);
    int64_t n = src ? em_array_size(src) : 0;
    void *sb = malloc((size_t)n * 16 + 16);
    if (rd(src, sb))
      for (int k = 0; k < 6; k++)
        check_pair(from, src, sb, k < 4 ? SUB[k] : F8S[k - 4]);
    free(sb);
    em_array_release(base);
    em_array_release(src);
  }
}

/* f8 <-> f8 and f16/bf16 -> f8 (no double rounding through f32) and the
 * f8 -> f32 -> f8 round trip, on every code. */
static void test_f8_round_trips(void) {
  uint8_t codes[256];
  for (int i = 0; i < 256; i++) codes[i] = (uint8_t)i;
  for (int k = 0; k < 2; k++) {
    em_dtype t = F8S[k], o = F8S[1 - k];
    em_array *a = mk1(t, 256, codes, 256);
    em_array *f = astype(a, EM_F32), *back = astype(f, t);
    em_array *x = astype(a, o);
    uint8_t g[256], gx[256];
    if (rd(back, g) && rd(x, gx))
      for (int i = 0; i < 256; i++) {
        unsigned w = code_is_nan(t, (unsigned)i) ? 0x80u & (unsigned)i
                                                       : (unsigned)i;
        if (code_is_nan(t, (unsigned)i)) w |= t == EM_F8 ? 0x7eu : 0x7fu;
        CHECK(g[i] == w, "%s round trip 0x%02x -> 0x%02x", em_dtype_name(t), i,
              g[i]);
        unsigned wx = ref_enc(o, ref_dec(t, (unsigned)i));
        CHECK(same_code(o, gx[i], wx), "%s->%s 0x%02x: got 0x%02x want 0x%02x",
              em_dtype_name(t), em_dtype_name(o), i, gx[i], wx);
      }
    em_array_release(a);
    em_array_release(f);
    em_array_release(back);
    em_array_release(x);
    /* every f16 and bf16 bit pattern */
    uint16_t *h = malloc(65536 * 2);
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    for (int b = 0; b < 2; b++) {
      em_dtype src = b ? EM_BF16 : EM_F16;
      em_array *ha = mk1(src, 65536, h, 65536 * 2), *e = astype(ha, t);
      uint8_t *ge = malloc(65536);
      int bad = 0;
      if (rd(e, ge))
        for (int i = 0; i < 65536 && bad < 5; i++) {
          uint32_t bb = (uint32_t)i << 16;
          float bv;
          memcpy(&bv, &bb, 4);
          double v = b ? (double)bv : dec_f16((uint16_t)i);
          unsigned w = ref_enc(t, v);
          bool ok = same_code(t, ge[i], w);
          if (!ok) bad++;
          CHECK(ok, "%s->%s 0x%04x (%g): got 0x%02x want 0x%02x",
                em_dtype_name(src), em_dtype_name(t), i, v, ge[i], w);
        }
      free(ge);
      em_array_release(ha);
      em_array_release(e);
    }
    free(h);
  }
}

/* ---- packing ----------------------------------------------------------------------- */

static void test_packing(void) {
  /* Nx 0.13's own bytes (Nx.to_binary, padded to whole bytes) */
  {
    int v[] = {1, -2, 3};
    uint8_t want[] = {0x1e, 0x30}, g[2] = {0};
    em_array *a = mk_sub1(EM_S4, 3, v);
    CHECK(a && em_array_nbytes(a) == 2 && rd(a, g) && !memcmp(g, want, 2),
          "s4 [1,-2,3] -> %02x %02x", g[0], g[1]);
    em_array_release(a);
  }
  {
    uint8_t in[] = {0x12, 0x34, 0x5f}; /* last nibble: padding, ignored */
    int64_t n = 5;
    em_array *a = mk(EM_U4, 1, &n, in, 3);
    int v[5] = {0};
    uint8_t g[3] = {0};
    CHECK(rd_sub(a, v) && v[0] == 1 && v[1] == 2 && v[2] == 3 && v[3] == 4 &&
              v[4] == 5,
          "u4 unpack");
    CHECK(rd(a, g) && g[0] == 0x12 && g[1] == 0x34 && g[2] == 0x50,
          "u4 repack zeroes the padding: %02x", g[2]);
    em_array_release(a);
  }
  {
    int v[] = {1, 2, 3};
    uint8_t g = 0;
    em_array *a = mk_sub1(EM_U2, 3, v);
    CHECK(a && em_array_nbytes(a) == 1 && rd(a, &g) && g == 0x6c, "u2 %02x",
          g);
    em_array_release(a);
    int s[] = {1, -2, 1, 0, -1};
    uint8_t gs[2] = {0};
    em_array *b = mk_sub1(EM_S2, 5, s);
    CHECK(b && rd(b, gs) && gs[0] == 0x64 && gs[1] == 0xc0, "s2 %02x %02x",
          gs[0], gs[1]);
    em_array_release(b);
  }
  /* transposed u4 [[1,2,3],[4,5,6]] packs as [1,4,2,5,3,6] (Nx) */
  {
    int v[] = {1, 2, 3, 4, 5, 6};
    int64_t sh[] = {2, 3};
    em_array *a = mk_sub(EM_U4, 2, sh, v), *t = NULL;
    if (a) em_transpose(&t, a, NULL);
    uint8_t g[3] = {0};
    CHECK(t && rd(t, g) && g[0] == 0x14 && g[1] == 0x25 && g[2] == 0x36,
          "transposed u4 %02x %02x %02x", g[0], g[1], g[2]);
    /* em_array_data: the same packed bytes, cached */
    const uint8_t *p1 = t ? em_array_data(t) : NULL;
    const uint8_t *p2 = t ? em_array_data(t) : NULL;
    CHECK(p1 && p1 == p2 && p1[0] == 0x14 && p1[2] == 0x36, "array_data");
    em_array_release(a);
    em_array_release(t);
  }
  /* round trips: random values, odd counts, every type; and a strided
   * slice / reverse packed against the reference */
  static const int64_t ns[] = {0, 1, 2, 3, 5, 7, 9, 13, 31, 1001, 100003};
  int *v = malloc(sizeof(int) * 100003), *g = malloc(sizeof(int) * 100003);
  for (int s = 0; s < 4; s++) {
    em_dtype t = SUB[s];
    for (int k = 0; k < ARRLEN(ns); k++) {
      int64_t n = ns[k];
      for (int64_t i = 0; i < n; i++)
        v[i] = smin(t) + (int)(rnd() % (uint64_t)(smax(t) - smin(t) + 1));
      em_array *a = mk_sub1(t, n, v);
      bool ok = rd_sub(a, g);
      for (int64_t i = 0; ok && i < n; i++) ok = g[i] == v[i];
      CHECK(ok, "%s round trip n=%lld", em_dtype_name(t), (long long)n);
      /* as s32 through the engine's cast: same values */
      em_array *w = astype(a, EM_S32);
      int32_t *wb = malloc(sizeof(int32_t) * (size_t)(n + 1));
      ok = rd(w, wb);
      for (int64_t i = 0; ok && i < n; i++) ok = wb[i] == v[i];
      CHECK(ok, "%s -> s32 n=%lld", em_dtype_name(t), (long long)n);
      free(wb);
      em_array_release(w);
      /* the packed bytes themselves */
      size_t nb = packed_size(sbits(t), n);
      uint8_t *pb = malloc(nb + 1), *wp = malloc(nb + 1);
      ref_pack(sbits(t), v, n, wp);
      CHECK(a && em_array_nbytes(a) == nb && rd(a, pb) && !memcmp(pb, wp, nb),
            "%s packed bytes n=%lld", em_dtype_name(t), (long long)n);
      free(pb);
      free(wp);
      if (n >= 9) {
        /* Nx.slice: lengths span the input; ceil((n - 1) / 3) elements */
        int64_t st = 3, len = n - 1, start = 1, m = (n - 1 + 2) / 3;
        em_array *sl = NULL, *rv = NULL;
        if (a) em_slice(&sl, a, &start, &len, &st);
        int ax = 0;
        if (sl) em_reverse(&rv, sl, 1, &ax);
        ok = rv && em_array_size(rv) == m && rd_sub(rv, g);
        for (int64_t i = 0; ok && i < m; i++)
          ok = g[i] == v[1 + 3 * (m - 1 - i)];
        CHECK(ok, "%s strided reversed slice n=%lld", em_dtype_name(t),
              (long long)n);
        em_array_release(sl);
        em_array_release(rv);
      }
      em_array_release(a);
    }
  }
  free(v);
  free(g);
  /* errors at the boundary */
  {
    int64_t n = 3;
    uint8_t b[3] = {0};
    em_array *a = NULL;
    CHECK(em_array_from_data(&a, EM_S4, 1, &n, b, 3, CPU) == EM_ERR_ARGUMENT &&
              !a && strstr(em_last_error(), "[from_data]") &&
              strstr(em_last_error(), "needs 2"),
          "unpacked size rejected: %s", em_last_error());
    a = mk(EM_S4, 1, &n, b, 2);
    CHECK(a && em_array_to_host(a, b, 3) == EM_ERR_ARGUMENT &&
              strstr(em_last_error(), "[to_host]"),
          "to_host size: %s", em_last_error());
    em_array_release(a);
  }
}

/* ---- sub-byte arithmetic ------------------------------------------------------------ */

enum { B_ADD, B_SUB, B_MUL, B_DIV, B_QUOT, B_REM, B_POW, B_MIN, B_MAX, B_AND,
       B_OR, B_XOR, B_LSH, B_RSH, B_EQ, B_NE, B_GT, B_LT, B_GE, B_LE, B_LAND,
       B_LOR, B_LXOR, B_N };
static const struct {
  const char *name;
  binfn f;
  bool pred;
} BOPS[B_N] = {
    {"add", em_add, 0},           {"subtract", em_subtract, 0},
    {"multiply", em_multiply, 0}, {"divide", em_divide, 0},
    {"quotient", em_quotient, 0}, {"remainder", em_remainder, 0},
    {"pow", em_pow, 0},           {"min", em_min, 0},
    {"max", em_max, 0},           {"bitwise_and", em_bitwise_and, 0},
    {"bitwise_or", em_bitwise_or, 0}, {"bitwise_xor", em_bitwise_xor, 0},
    {"left_shift", em_left_shift, 0}, {"right_shift", em_right_shift, 0},
    {"equal", em_equal, 1},       {"not_equal", em_not_equal, 1},
    {"greater", em_greater, 1},   {"less", em_less, 1},
    {"greater_equal", em_greater_equal, 1}, {"less_equal", em_less_equal, 1},
    {"logical_and", em_logical_and, 1}, {"logical_or", em_logical_or, 1},
    {"logical_xor", em_logical_xor, 1}};

/* Integer semantics at the type's width (binary.c's rules). */
static int ref_sub_bin(int op, em_dtype t, int x, int z) {
  int w = sbits(t), mn = smin(t);
  bool sg = ssigned(t);
  switch (op) {
    case B_ADD: return wrapv(t, x + z);
    case B_SUB: return wrapv(t, x - z);
    case B_MUL: return wrapv(t, x * z);
    case B_DIV:
    case B_QUOT:
      if (z == 0) return wrapv(t, -1);
      if (sg && x == mn && z == -1) return mn;
      return x / z;
    case B_REM:
      if (z == 0) return x;
      if (z == -1) return 0;
      return x % z;
    case B_POW: {
      if (z < 0) return x == 1;
      int64_t acc = 1;
      for (int i = 0; i < z; i++) acc = wrapv(t, acc * x);
      return (int)acc;
    }
    case B_MIN: return x < z ? x : z;
    case B_MAX: return x > z ? x : z;
    case B_AND: return wrapv(t, x & z);
    case B_OR: return wrapv(t, x | z);
    case B_XOR: return wrapv(t, x ^ z);
    case B_LSH: return z < 0 || z >= w ? 0 : wrapv(t, x * (1 << z));
    case B_RSH:
      if (z < 0 || z >= w) return sg && x < 0 ? -1 : 0;
      return x >= 0 ? x >> z : -((-x - 1) >> z) - 1; /* floor */
    case B_EQ: return x == z;
    case B_NE: return x != z;
    case B_GT: return x > z;
    case B_LT: return x < z;
    case B_GE: return x >= z;
    case B_LE: return x <= z;
    case B_LAND: return x != 0 && z != 0;
    case B_LOR: return x != 0 || z != 0;
    case B_LXOR: return (x != 0) != (z != 0);
  }
  return 0;
}

static void test_sub_binary(void) {
  for (int s = 0; s < 4; s++) {
    em_dtype t = SUB[s];
    int k = smax(t) - smin(t) + 1, n = k * k;
    int xa[256], za[256];
    for (int i = 0; i < k; i++)
      for (int j = 0; j < k; j++) {
        xa[i * k + j] = smin(t) + i;
        za[i * k + j] = smin(t) + j;
      }
    em_array *a = mk_sub1(t, n, xa), *b = mk_sub1(t, n, za);
    for (int op = 0; op < B_N; op++) {
      em_array *o = bin(BOPS[op].f, a, b);
      int g[256];
      uint8_t gp[256];
      bool got;
      if (BOPS[op].pred) {
        CHECK(o && em_array_dtype(o) == EM_U8, "%s %s dtype", BOPS[op].name,
              em_dtype_name(t));
        got = o && em_array_dtype(o) == EM_U8 && rd(o, gp);
        for (int i = 0; got && i < n; i++) g[i] = gp[i];
      } else {
        CHECK(o && em_array_dtype(o) == t, "%s %s dtype", BOPS[op].name,
              em_dtype_name(t));
        got = o && em_array_dtype(o) == t && rd_sub(o, g);
      }
      int bad = 0;
      for (int i = 0; got && i < n && bad < 3; i++) {
        int w = ref_sub_bin(op, t, xa[i], za[i]);
        if (g[i] != w) bad++;
        CHECK(g[i] == w, "%s %s(%d, %d) = %d want %d", em_dtype_name(t),
              BOPS[op].name, xa[i], za[i], g[i], w);
      }
      em_array_release(o);
    }
    /* atan2 is not defined on ints */
    em_array *o = NULL;
    CHECK(a && b && em_atan2(&o, a, b) == EM_ERR_ARGUMENT && !o &&
              strstr(em_last_error(), "[atan2]"),
          "atan2 %s rejected", em_dtype_name(t));
    em_array_release(a);
    em_array_release(b);
  }
  /* Nx 0.13 spot values (observed with Nx.BinaryBackend) */
  int seven = 7, one = 1, five = 5, three = 3, fifteen = 15;
  em_array *a = mk_sub1(EM_S4, 1, &seven), *b = mk_sub1(EM_S4, 1, &one);
  em_array *c = mk_sub1(EM_S4, 1, &five), *d = mk_sub1(EM_S4, 1, &three);
  em_array *e = mk_sub1(EM_U4, 1, &fifteen), *f = mk_sub1(EM_U4, 1, &one);
  em_array *r1 = bin(em_add, a, b), *r2 = bin(em_multiply, c, d),
           *r3 = bin(em_add, e, f), *r4 = bin(em_pow, d, d);
  int g1 = 0, g2 = 0, g3 = 0, g4 = 0;
  CHECK(rd_sub(r1, &g1) && g1 == -8, "s4 7+1 = %d", g1);
  CHECK(rd_sub(r2, &g2) && g2 == -1, "s4 5*3 = %d", g2);
  CHECK(rd_sub(r3, &g3) && g3 == 0, "u4 15+1 = %d", g3);
  CHECK(rd_sub(r4, &g4) && g4 == -5, "s4 3^3 = %d", g4);
  em_array *arr[] = {a, b, c, d, e, f, r1, r2, r3, r4};
  for (int i = 0; i < ARRLEN(arr); i++) em_array_release(arr[i]);
}

static void test_sub_unary(void) {
  static const struct {
    const char *name;
    unfn f;
  } ops[] = {{"negate", em_negate},
             {"abs", em_abs},
             {"sign", em_sign},
             {"bitwise_not", em_bitwise_not},
             {"count_leading_zeros", em_count_leading_zeros},
             {"population_count", em_population_count},
             {"ceil", em_ceil},
             {"floor", em_floor},
             {"round", em_round}};
  for (int s = 0; s < 4; s++) {
    em_dtype t = SUB[s];
    int k = smax(t) - smin(t) + 1, xs[16];
    for (int i = 0; i < k; i++) xs[i] = smin(t) + i;
    em_array *a = mk_sub1(t, k, xs);
    for (int o = 0; o < ARRLEN(ops); o++) {
      em_array *r = un(ops[o].f, a);
      int g[16];
      CHECK(r && em_array_dtype(r) == t, "%s(%s) dtype", ops[o].name,
            em_dtype_name(t));
      if (!r || em_array_dtype(r) != t || !rd_sub(r, g)) {
        em_array_release(r);
        continue;
      }
      for (int i = 0; i < k; i++) {
        int x = xs[i], w = 0, ux = x & ((1 << sbits(t)) - 1);
        switch (o) {
          case 0: w = wrapv(t, -x); break;
          case 1: w = wrapv(t, x < 0 ? -x : x); break;
          case 2: w = (x > 0) - (x < 0); break;
          case 3: w = wrapv(t, ~x); break;
          case 4: {
            int len = 0;
            while ((ux >> len) != 0) len++;
            w = wrapv(t, sbits(t) - len);
            break;
          }
          case 5: w = wrapv(t, __builtin_popcount((unsigned)ux)); break;
          default: w = x; break;
        }
        CHECK(g[i] == w, "%s(%s %d) = %d want %d", ops[o].name,
              em_dtype_name(t), x, g[i], w);
      }
      em_array_release(r);
    }
    /* results of other types: f32 math, u8 predicates, c64 conjugate */
    em_array *ex = un(em_exp, a), *sq = un(em_sqrt, a), *nn = un(em_is_nan, a),
             *ln = un(em_logical_not, a), *cj = un(em_conjugate, a),
             *re = un(em_real, a), *im = un(em_imag, a);
    float fe[16], fs[16], fr[16], fi[16], fc[32];
    uint8_t bn[16], bl[16];
    bool ok = rd(ex, fe) && rd(sq, fs) && rd(nn, bn) && rd(ln, bl) &&
              rd(cj, fc) && rd(re, fr) && rd(im, fi);
    for (int i = 0; ok && i < k; i++) {
      int x = xs[i];
      bool sqok = x < 0 ? isnan(fs[i]) : fs[i] == (float)sqrt((double)x);
      CHECK(fe[i] == (float)exp((double)x) && sqok && bn[i] == 0 &&
                bl[i] == (x == 0) && fc[2 * i] == (float)x &&
                fc[2 * i + 1] == 0 && fr[i] == (float)x && fi[i] == 0,
            "%s %d: exp %g sqrt %g is_nan %d not %d conj %g%+gi real %g imag %g",
            em_dtype_name(t), x, (double)fe[i], (double)fs[i], bn[i], bl[i],
            (double)fc[2 * i], (double)fc[2 * i + 1], (double)fr[i],
            (double)fi[i]);
    }
    CHECK(ok && em_array_dtype(ex) == EM_F32 && em_array_dtype(nn) == EM_U8 &&
              em_array_dtype(cj) == EM_C64,
          "%s other-typed results", em_dtype_name(t));
    em_array *arr[] = {a, ex, sq, nn, ln, cj, re, im};
    for (int i = 0; i < ARRLEN(arr); i++) em_array_release(arr[i]);
  }
}

/* ---- f8 arithmetic --------------------------------------------------------------------- */

static double ref_fbin(int op, double x, double z, bool *is_pred) {
  *is_pred = false;
  switch (op) {
    case B_ADD: return x + z;
    case B_SUB: return x - z;
    case B_MUL: return x * z;
    case B_DIV: return x / z;
    case B_REM: return fmod(x, z);
    case B_MIN:
    case B_MAX:
      if (isnan(x) || isnan(z)) return NAN;
      if (x == 0 && z == 0)
        return op == B_MIN ? (signbit(x) || signbit(z) ? -0.0 : 0.0)
                           : (signbit(x) && signbit(z) ? -0.0 : 0.0);
      return op == B_MIN ? fmin(x, z) : fmax(x, z);
    default: break;
  }
  *is_pred = true;
  switch (op) {
    case B_EQ: return x == z;
    case B_NE: return x != z;
    case B_GT: return x > z;
    case B_LT: return x < z;
    case B_GE: return x >= z;
    case B_LE: return x <= z;
    case B_LAND: return (x != 0) && (z != 0);
    case B_LOR: return (x != 0) || (z != 0);
    case B_LXOR: return (x != 0) != (z != 0);
  }
  return 0;
}

/* All 65536 operand pairs per op: + - * / are exact in double and rounded
 * once here, which the engine (f32, then one rounding) must match. */
static void test_f8_binary(void) {
  static const int ops[] = {B_ADD, B_SUB, B_MUL, B_DIV, B_REM, B_MIN, B_MAX,
                            B_EQ,  B_NE,  B_GT,  B_LT,  B_GE,  B_LE,  B_LAND,
                            B_LOR, B_LXOR};
  uint8_t *xa = malloc(65536), *za = malloc(65536), *g = malloc(65536);
  for (int i = 0; i < 65536; i++) {
    xa[i] = (uint8_t)(i >> 8);
    za[i] = (uint8_t)i;
  }
  for (int k = 0; k < 2; k++) {
    em_dtype t = F8S[k];
    em_array *a = mk1(t, 65536, xa, 65536), *b = mk1(t, 65536, za, 65536);
    for (int oi = 0; oi < ARRLEN(ops); oi++) {
      int op = ops[oi];
      em_array *o = bin(BOPS[op].f, a, b);
      int bad = 0;
      CHECK(o && em_array_dtype(o) == (BOPS[op].pred ? EM_U8 : t), "%s %s dtype",
            BOPS[op].name, em_dtype_name(t));
      if (o && rd(o, g))
        for (int i = 0; i < 65536 && bad < 3; i++) {
          bool pred;
          double w = ref_fbin(op, ref_dec(t, xa[i]), ref_dec(t, za[i]), &pred);
          unsigned wc = pred ? (unsigned)w : ref_enc(t, w);
          bool ok = pred ? g[i] == wc : same_code(t, g[i], wc);
          if (!ok) bad++;
          CHECK(ok, "%s %s(0x%02x, 0x%02x): got 0x%02x want 0x%02x",
                em_dtype_name(t), BOPS[op].name, xa[i], za[i], g[i], wc);
        }
      em_array_release(o);
    }
    /* not defined on floats */
    em_array *o = NULL;
    CHECK(a && b && em_bitwise_and(&o, a, b) == EM_ERR_ARGUMENT &&
              em_quotient(&o, a, b) == EM_ERR_ARGUMENT,
          "%s bitwise/quotient rejected", em_dtype_name(t));
    em_array_release(a);
    em_array_release(b);
  }
  /* pow and atan2 spot values */
  uint8_t two[2] = {0x40, 0x40}, ex[2] = {0x42, 0x4d}; /* e5m2: 2, 2; 3, 20 */
  em_array *a = mk1(EM_F8, 2, two, 2), *b = mk1(EM_F8, 2, ex, 2);
  em_array *p = bin(em_pow, a, b);
  uint8_t gp[2] = {0};
  CHECK(rd(p, gp) && gp[0] == 0x48 && gp[1] == 0x7c, "e5m2 2^3 0x%02x 2^20 0x%02x",
        gp[0], gp[1]);
  em_array_release(a);
  em_array_release(b);
  em_array_release(p);
  uint8_t two4[2] = {0x40, 0x40}, ex4[2] = {0x44, 0x5a}; /* e4m3: 2,2; 3,20 */
  a = mk1(EM_F8_E4M3FN, 2, two4, 2);
  b = mk1(EM_F8_E4M3FN, 2, ex4, 2);
  p = bin(em_pow, a, b);
  CHECK(rd(p, gp) && gp[0] == 0x50 && gp[1] == 0x7e, "e4m3 2^3 0x%02x 2^20 0x%02x",
        gp[0], gp[1]);
  em_array_release(a);
  em_array_release(b);
  em_array_release(p);
  free(xa);
  free(za);
  free(g);
}

static void test_f8_unary(void) {
  static const struct {
    const char *name;
    unfn f;
    double (*ref)(double);
    bool exact;
  } ops[] = {{"negate", em_negate, NULL, 1}, {"abs", em_abs, fabs, 1},
             {"sqrt", em_sqrt, sqrt, 1},     {"floor", em_floor, floor, 1},
             {"ceil", em_ceil, ceil, 1},     {"round", em_round, round, 1},
             {"exp", em_exp, exp, 0},        {"log", em_log, log, 0},
             {"sin", em_sin, sin, 0},        {"tanh", em_tanh, tanh, 0},
             {"sign", em_sign, NULL, 1},     {"real", em_real, NULL, 1}};
  uint8_t codes[256];
  for (int i = 0; i < 256; i++) codes[i] = (uint8_t)i;
  for (int k = 0; k < 2; k++) {
    em_dtype t = F8S[k];
    em_array *a = mk1(t, 256, codes, 256);
    for (int o = 0; o < ARRLEN(ops); o++) {
      em_array *r = un(ops[o].f, a);
      uint8_t g[256];
      CHECK(r && em_array_dtype(r) == t, "%s(%s) dtype", ops[o].name,
            em_dtype_name(t));
      if (!r || em_array_dtype(r) != t || !rd(r, g)) {
        em_array_release(r);
        continue;
      }
      int bad = 0;
      for (int i = 0; i < 256 && bad < 3; i++) {
        double x = ref_dec(t, (unsigned)i), fx;
        if (ops[o].ref) fx = ops[o].ref(x);
        else if (o == 0) fx = -x;
        else if (o == 10) fx = isnan(x) ? x : x > 0 ? 1 : x < 0 ? -1 : x;
        else fx = x;
        unsigned w = ref_enc(t, fx);
        bool ok = same_code(t, g[i], w);
        if (!ok && !ops[o].exact && !isnan(fx) && !code_is_nan(t, g[i])) {
          /* approximate math: as near to f(x) as the right code, up to
           * the f32 kernel's error near a rounding boundary */
          double dg = fabs(ref_dec(t, g[i]) - fx), dw = fabs(ref_dec(t, w) - fx);
          ok = dg <= dw + 1e-6 * fabs(fx) + 1e-30;
        }
        if (!ok) bad++;
        CHECK(ok, "%s %s(0x%02x = %g): got 0x%02x want 0x%02x",
              em_dtype_name(t), ops[o].name, i, x, g[i], w);
      }
      em_array_release(r);
    }
    /* predicates and complex results */
    em_array *nn = un(em_is_nan, a), *ii = un(em_is_infinity, a),
             *ln = un(em_logical_not, a), *cj = un(em_conjugate, a);
    uint8_t bn[256], bi[256], bl[256];
    float fc[512];
    bool ok = rd(nn, bn) && rd(ii, bi) && rd(ln, bl) && rd(cj, fc);
    for (int i = 0; ok && i < 256; i++) {
      double x = ref_dec(t, (unsigned)i);
      bool good = bn[i] == (isnan(x) != 0) && bi[i] == (isinf(x) != 0) &&
                  bl[i] == (x == 0) &&
                  (isnan(x) ? isnan(fc[2 * i]) : fc[2 * i] == x) &&
                  fc[2 * i + 1] == 0;
      CHECK(good, "%s 0x%02x: is_nan %d is_inf %d not %d conj %g",
            em_dtype_name(t), i, bn[i], bi[i], bl[i], (double)fc[2 * i]);
    }
    CHECK(ok && em_array_dtype(cj) == EM_C64, "%s conjugate -> c64",
          em_dtype_name(t));
    em_array *bad = NULL;
    CHECK(a && em_count_leading_zeros(&bad, a) == EM_ERR_ARGUMENT &&
              strstr(em_last_error(), "[count_leading_zeros]"),
          "clz %s rejected: %s", em_dtype_name(t), em_last_error());
    em_array *arr[] = {a, nn, ii, ln, cj};
    for (int i = 0; i < ARRLEN(arr); i++) em_array_release(arr[i]);
  }
}

/* ---- reductions ----------------------------------------------------------------------- */

typedef em_status (*redfn)(em_array **, em_array *, int, const int *, bool);

static void test_sub_reduce(void) {
  static const struct {
    const char *name;
    redfn f;
  } R[] = {{"sum", em_sum},         {"product", em_product},
           {"reduce_max", em_reduce_max}, {"reduce_min", em_reduce_min},
           {"all", em_all},         {"any", em_any}};
  static const int64_t shapes[][2] = {{3, 5}, {1, 7}, {4, 1}, {2, 0},
                                      {0, 3}, {33, 65}, {2, 300001}};
  int *v = malloc(sizeof(int) * 600002);
  for (int s = 0; s < 4; s++) {
    em_dtype t = SUB[s];
    for (int sh = 0; sh < ARRLEN(shapes); sh++) {
      int64_t r0 = shapes[sh][0], c0 = shapes[sh][1], n = r0 * c0;
      for (int64_t i = 0; i < n; i++)
        v[i] = smin(t) + (int)(rnd() % (uint64_t)(smax(t) - smin(t) + 1));
      if (n > 3) v[1] = 0; /* some zeros for all/any */
      em_array *a = mk_sub(t, 2, shapes[sh], v);
      for (int axis = 0; axis < 2; axis++)
        for (int ri = 0; ri < ARRLEN(R); ri++) {
          em_array *o = NULL;
          if (!a || R[ri].f(&o, a, 1, &axis, false) != EM_OK) {
            CHECK(0, "%s %s: %s", R[ri].name, em_dtype_name(t),
                  em_last_error());
            continue;
          }
          bool logical = ri >= 4;
          int64_t no = axis == 0 ? c0 : r0, nr = axis == 0 ? r0 : c0;
          int *g = malloc(sizeof(int) * (size_t)(no + 1));
          uint8_t *gb = malloc((size_t)no + 1);
          bool ok = logical ? rd(o, gb) : rd_sub(o, g);
          int bad = 0;
          for (int64_t j = 0; ok && j < no && bad < 3; j++) {
            int64_t acc = ri == 1 || ri == 4 ? 1 : 0;
            if (ri == 2) acc = smin(t);
            if (ri == 3) acc = smax(t);
            for (int64_t q = 0; q < nr; q++) {
              int x = axis == 0 ? v[q * c0 + j] : v[j * c0 + q];
              switch (ri) {
                case 0: acc = wrapv(t, acc + x); break;
                case 1: acc = wrapv(t, acc * x); break;
                case 2: acc = x > acc ? x : acc; break;
                case 3: acc = x < acc ? x : acc; break;
                case 4: acc = acc && x != 0; break;
                default: acc = acc || x != 0; break;
              }
            }
            int got = logical ? gb[j] : g[j];
            if (got != acc) bad++;
            CHECK(got == acc, "%s %s [%lldx%lld] axis %d [%lld]: %d want %lld",
                  R[ri].name, em_dtype_name(t), (long long)r0, (long long)c0,
                  axis, (long long)j, got, (long long)acc);
          }
          free(g);
          free(gb);
          em_array_release(o);
        }
      /* argmax / argmin over axis 1, both tie rules */
      for (int am = 0; am < 2 && r0 > 0 && c0 > 0; am++)
        for (int tie = 0; tie < 2; tie++) {
          em_array *o = NULL;
          em_status st = am ? em_argmin(&o, a, 1, false, tie)
                            : em_argmax(&o, a, 1, false, tie);
          int64_t *gi = malloc(sizeof(int64_t) * (size_t)r0);
          bool ok = st == EM_OK && rd(o, gi);
          CHECK(ok, "arg %s: %s", em_dtype_name(t), em_last_error());
          for (int64_t j = 0; ok && j < r0; j++) {
            int64_t bi = 0;
            for (int64_t q = 1; q < c0; q++) {
              int x = v[j * c0 + q], b = v[j * c0 + bi];
              if (am ? x < b : x > b) bi = q;
              else if (x == b && tie) bi = q;
            }
            if (gi[j] != bi) ok = false;
            CHECK(gi[j] == bi, "%s %s tie %d row %lld: %lld want %lld",
                  am ? "argmin" : "argmax", em_dtype_name(t), tie,
                  (long long)j, (long long)gi[j], (long long)bi);
          }
          free(gi);
          em_array_release(o);
        }
      em_array_release(a);
    }
  }
  free(v);
  /* Nx spot value: 7 + 7 + 7 in s4 wraps to 5 */
  int sv[] = {7, 7, 7}, g = 0;
  em_array *a = mk_sub1(EM_S4, 3, sv), *o = NULL;
  CHECK(a && em_sum(&o, a, 0, NULL, false) == EM_OK && rd_sub(o, &g) && g == 5,
        "sum s4 [7,7,7] = %d", g);
  em_array_release(a);
  em_array_release(o);
}

static void test_f8_reduce(void) {
  enum { R = 37, C = 300 };
  uint8_t *x = malloc(R * C);
  for (int k = 0; k < 2; k++) {
    em_dtype t = F8S[k];
    for (int variant = 0; variant < 3; variant++) {
      /* 0: finite values of moderate size, 1: with NaN and ±0, 2: inf */
      for (int i = 0; i < R * C; i++) {
        unsigned c = (unsigned)(rnd() % 256);
        if (variant == 0) c = (0x20u + (unsigned)(rnd() % 0x30)) | (c & 0x80u);
        x[i] = (uint8_t)c;
      }
      if (variant == 1) {
        x[5] = 0x80;
        x[C + 5] = 0x00;
      }
      if (variant == 2) {
        for (int i = 0; i < R * C; i++)
          if (code_is_nan(t, x[i])) x[i] = 0x11;
        x[7] = t == EM_F8 ? 0x7c : 0x7e;
      }
      int64_t sh[] = {R, C};
      em_array *a = mk(t, 2, sh, x, R * C);
      for (int axis = 0; axis < 2; axis++) {
        int64_t no = axis == 0 ? C : R, nr = axis == 0 ? R : C;
        for (int op = 0; op < 6; op++) {
          em_array *o = NULL;
          em_status st =
              op == 0   ? em_sum(&o, a, 1, &axis, false)
              : op == 1 ? em_product(&o, a, 1, &axis, false)
              : op == 2 ? em_reduce_max(&o, a, 1, &axis, false)
              : op == 3 ? em_reduce_min(&o, a, 1, &axis, false)
              : op == 4 ? em_all(&o, a, 1, &axis, false)
                        : em_any(&o, a, 1, &axis, false);
          uint8_t g[C];
          bool ok = st == EM_OK && rd(o, g);
          CHECK(ok, "f8 reduce: %s", em_last_error());
          int bad = 0;
          for (int64_t j = 0; ok && j < no && bad < 3; j++) {
            double acc = op == 1 ? 1 : op == 2 ? -INFINITY : op == 3 ? INFINITY : 0;
            int flag = op == 4;
            for (int64_t q = 0; q < nr; q++) {
              unsigned c = axis == 0 ? x[q * C + j] : x[j * C + q];
              double v = ref_dec(t, c);
              if (op == 0) acc += v;
              else if (op == 1) acc *= v;
              else if (op == 2) { if (v > acc || isnan(v)) acc = isnan(acc) ? acc : v; }
              else if (op == 3) { if (v < acc || isnan(v)) acc = isnan(acc) ? acc : v; }
              else if (op == 4) flag = flag && (c & 0x7f) != 0;
              else flag = flag || (c & 0x7f) != 0;
            }
            bool good;
            unsigned w = 0;
            if (op >= 4) good = g[j] == flag;
            else {
              w = ref_enc(t, acc);
              good = same_code(t, g[j], w);
            }
            if (!good) bad++;
            CHECK(good, "%s f8 reduce op %d variant %d axis %d [%lld]: 0x%02x want 0x%02x/%d",
                  em_dtype_name(t), op, variant, axis, (long long)j, g[j], w,
                  flag);
          }
          em_array_release(o);
        }
        /* argmax / argmin */
        for (int am = 0; am < 2; am++)
          for (int tie = 0; tie < 2; tie++) {
            em_array *o = NULL;
            em_status st = am ? em_argmin(&o, a, axis, false, tie)
                              : em_argmax(&o, a, axis, false, tie);
            int64_t gi[C];
            bool ok = st == EM_OK && rd(o, gi);
            CHECK(ok, "f8 arg: %s", em_last_error());
            int bad = 0;
            for (int64_t j = 0; ok && j < no && bad < 3; j++) {
              int64_t bi = -1;
              double bv = 0;
              for (int64_t q = 0; q < nr; q++) {
                double v = ref_dec(t, axis == 0 ? x[q * C + j] : x[j * C + q]);
                bool take;
                if (bi < 0) take = true;
                else if (isnan(v) || isnan(bv)) take = isnan(v);
                else if (am ? v < bv : v > bv) take = true;
                else if (am ? v > bv : v < bv) take = false;
                else take = tie;
                if (take) {
                  bi = q;
                  bv = v;
                }
              }
              if (gi[j] != bi) bad++;
              CHECK(gi[j] == bi, "%s %s tie %d variant %d axis %d [%lld]: %lld want %lld",
                    em_dtype_name(t), am ? "argmin" : "argmax", tie, variant,
                    axis, (long long)j, (long long)gi[j], (long long)bi);
            }
            em_array_release(o);
          }
      }
      em_array_release(a);
    }
    /* empty reductions: sum 0, product 1, max -inf (e4m3fn: -448) */
    int64_t sh0[] = {0, 3};
    em_array *e = mk(t, 2, sh0, x, 0), *s = NULL, *p = NULL, *m = NULL;
    int ax = 0;
    uint8_t gs[3] = {9, 9, 9}, gp[3] = {0}, gm[3] = {0};
    bool ok = e && em_sum(&s, e, 1, &ax, false) == EM_OK &&
              em_product(&p, e, 1, &ax, false) == EM_OK &&
              em_reduce_max(&m, e, 1, &ax, false) == EM_OK && rd(s, gs) &&
              rd(p, gp) && rd(m, gm);
    unsigned one = t == EM_F8 ? 0x3c : 0x38, ninf = t == EM_F8 ? 0xfc : 0xfe;
    CHECK(ok && gs[2] == 0 && gp[2] == one && gm[2] == ninf,
          "%s empty reductions 0x%02x 0x%02x 0x%02x", em_dtype_name(t), gs[2],
          gp[2], gm[2]);
    em_array_release(e);
    em_array_release(s);
    em_array_release(p);
    em_array_release(m);
  }
  free(x);
}

/* ---- dot ------------------------------------------------------------------------------ */

static void test_dot(void) {
  enum { M = 5, K = 4, N = 3 };
  for (int s = 0; s < 4; s++) {
    em_dtype t = SUB[s];
    int av[M * K], bv[K * N];
    for (int i = 0; i < M * K; i++)
      av[i] = smin(t) + (int)(rnd() % (uint64_t)(smax(t) - smin(t) + 1));
    for (int i = 0; i < K * N; i++)
      bv[i] = smin(t) + (int)(rnd() % (uint64_t)(smax(t) - smin(t) + 1));
    int64_t sa[] = {M, K}, sb[] = {K, N};
    em_array *a = mk_sub(t, 2, sa, av), *b = mk_sub(t, 2, sb, bv), *c = NULL;
    int g[M * N];
    bool ok = a && b && em_matmul(&c, a, b) == EM_OK && rd_sub(c, g);
    CHECK(ok, "matmul %s: %s", em_dtype_name(t), em_last_error());
    for (int i = 0; ok && i < M; i++)
      for (int j = 0; j < N; j++) {
        int64_t acc = 0;
        for (int q = 0; q < K; q++) acc += av[i * K + q] * bv[q * N + j];
        CHECK(g[i * N + j] == wrapv(t, acc), "matmul %s [%d,%d] %d want %d",
              em_dtype_name(t), i, j, g[i * N + j], wrapv(t, acc));
      }
    em_array_release(a);
    em_array_release(b);
    em_array_release(c);
  }
  for (int k = 0; k < 2; k++) {
    em_dtype t = F8S[k];
    uint8_t av[M * K], bv[K * N];
    /* values in [1/4, 16): every partial sum is exact in f32 */
    unsigned lo = t == EM_F8 ? 0x34 : 0x28, span = t == EM_F8 ? 24 : 48;
    for (int i = 0; i < M * K; i++)
      av[i] = (uint8_t)((lo + rnd() % span) | (rnd() & 0x80));
    for (int i = 0; i < K * N; i++)
      bv[i] = (uint8_t)((lo + rnd() % span) | (rnd() & 0x80));
    int64_t sa[] = {M, K}, sb[] = {K, N};
    em_array *a = mk(t, 2, sa, av, sizeof av), *b = mk(t, 2, sb, bv, sizeof bv);
    em_array *c = NULL;
    uint8_t g[M * N];
    bool ok = a && b && em_matmul(&c, a, b) == EM_OK && rd(c, g);
    CHECK(ok, "matmul %s: %s", em_dtype_name(t), em_last_error());
    for (int i = 0; ok && i < M; i++)
      for (int j = 0; j < N; j++) {
        double acc = 0;
        for (int q = 0; q < K; q++)
          acc += ref_dec(t, av[i * K + q]) * ref_dec(t, bv[q * N + j]);
        unsigned w = ref_enc(t, acc);
        CHECK(g[i * N + j] == w, "matmul %s [%d,%d] 0x%02x want 0x%02x",
              em_dtype_name(t), i, j, g[i * N + j], w);
      }
    em_array_release(a);
    em_array_release(b);
    em_array_release(c);
  }
}

/* ---- fused chains, large arrays, creation, views, other ops ------------------------------ */

static void test_fused_large(void) {
  enum { N = 100003 };
  int *xa = malloc(sizeof(int) * N), *za = malloc(sizeof(int) * N),
      *g = malloc(sizeof(int) * N);
  for (int s = 0; s < 4; s++) {
    em_dtype t = SUB[s];
    for (int i = 0; i < N; i++) {
      xa[i] = smin(t) + (int)(rnd() % (uint64_t)(smax(t) - smin(t) + 1));
      za[i] = smin(t) + (int)(rnd() % (uint64_t)(smax(t) - smin(t) + 1));
    }
    em_array *a = mk_sub1(t, N, xa), *b = mk_sub1(t, N, za);
    /* ((a + b) * a - b) negated, one fused pass */
    em_array *t1 = bin(em_add, a, b), *t2 = bin(em_multiply, t1, a),
             *t3 = bin(em_subtract, t2, b), *t4 = un(em_negate, t3);
    em_array_release(t1);
    em_array_release(t2);
    em_array_release(t3);
    bool ok = rd_sub(t4, g);
    int bad = 0;
    for (int i = 0; ok && i < N && bad < 3; i++) {
      int w = wrapv(t, -((xa[i] + za[i]) * xa[i] - za[i]));
      if (g[i] != w) bad++;
      CHECK(g[i] == w, "fused %s [%d]: %d want %d", em_dtype_name(t), i, g[i],
            w);
    }
    /* as_type inside a chain: exp(as_type(a + b, f32)) */
    em_array *u1 = bin(em_add, a, b), *u2 = astype(u1, EM_F32),
             *u3 = un(em_exp, u2);
    em_array_release(u1);
    em_array_release(u2);
    float *gf = malloc(sizeof(float) * N);
    ok = rd(u3, gf);
    bad = 0;
    for (int i = 0; ok && i < N && bad < 3; i++) {
      float w = (float)exp((double)wrapv(t, xa[i] + za[i]));
      bool good = fabsf(gf[i] - w) <= 2e-6f * w;
      if (!good) bad++;
      CHECK(good, "fused cast %s [%d]: %g want %g", em_dtype_name(t), i,
            (double)gf[i], (double)w);
    }
    free(gf);
    em_array_release(u3);
    em_array_release(t4);
    em_array_release(a);
    em_array_release(b);
  }
  free(xa);
  free(za);
  free(g);
  /* f8: a * b + a, rounded after each op; plus f32 <-> f8 on many values */
  uint8_t *x = malloc(N), *z = malloc(N), *gb = malloc(N);
  float *fv = malloc(sizeof(float) * N);
  for (int k = 0; k < 2; k++) {
    em_dtype t = F8S[k];
    for (int i = 0; i < N; i++) {
      x[i] = (uint8_t)rnd();
      z[i] = (uint8_t)rnd();
      fv[i] = (float)(ldexp(urand(), (int)(rnd() % 40) - 20) *
                      (rnd() & 1 ? 1 : -1));
    }
    em_array *a = mk1(t, N, x, N), *b = mk1(t, N, z, N);
    em_array *m = bin(em_multiply, a, b), *s = bin(em_add, m, a);
    em_array_release(m);
    int bad = 0;
    if (rd(s, gb))
      for (int i = 0; i < N && bad < 3; i++) {
        double xv = ref_dec(t, x[i]);
        unsigned w1 = ref_enc(t, xv * ref_dec(t, z[i]));
        unsigned w = ref_enc(t, ref_dec(t, w1) + xv);
        bool good = same_code(t, gb[i], w);
        if (!good) bad++;
        CHECK(good, "fused %s [%d]: 0x%02x want 0x%02x", em_dtype_name(t), i,
              gb[i], w);
      }
    em_array *f = mk1(EM_F32, N, fv, sizeof(float) * N), *e = astype(f, t);
    bad = 0;
    if (rd(e, gb))
      for (int i = 0; i < N && bad < 3; i++) {
        unsigned w = ref_enc(t, fv[i]);
        if (gb[i] != w) bad++;
        CHECK(gb[i] == w, "large f32->%s [%d] %g: 0x%02x want 0x%02x",
              em_dtype_name(t), i, (double)fv[i], gb[i], w);
      }
    em_array_release(f);
    em_array_release(e);
    em_array_release(s);
    em_array_release(a);
    em_array_release(b);
  }
  free(x);
  free(z);
  free(gb);
  free(fv);
}

static void test_creation_views(void) {
  /* em_full: the low bits of the byte; em_full_scalar: as_type's rules */
  unsigned char b0f = 0x0f, bff = 0xff;
  em_array *f1 = NULL, *f2 = NULL, *f3 = NULL, *f4 = NULL, *f5 = NULL;
  int64_t n3 = 3;
  int g[20];
  uint8_t gb[3];
  CHECK(em_full(&f1, EM_S4, 1, &n3, &b0f, CPU) == EM_OK && rd_sub(f1, g) &&
            g[0] == -1 && g[2] == -1,
        "full s4 0x0f = %d", g[0]);
  CHECK(em_full(&f2, EM_U2, 1, &n3, &bff, CPU) == EM_OK && rd_sub(f2, g) &&
            g[1] == 3,
        "full u2 0xff = %d", g[1]);
  CHECK(em_full_scalar(&f3, EM_U4, 20.0, CPU) == EM_OK && rd_sub(f3, g) &&
            g[0] == 15,
        "full_scalar u4 20 -> %d", g[0]);
  CHECK(em_full_scalar(&f4, EM_F8_E4M3FN, 1000.0, CPU) == EM_OK &&
            rd(f4, gb) && gb[0] == 0x7e,
        "full_scalar e4m3 1000 -> 0x%02x", gb[0]);
  CHECK(em_full_scalar(&f5, EM_F8, -1e6, CPU) == EM_OK && rd(f5, gb) &&
            gb[0] == 0xfc,
        "full_scalar e5m2 -1e6 -> 0x%02x", gb[0]);
  em_array_release(f1);
  em_array_release(f2);
  em_array_release(f3);
  em_array_release(f4);
  em_array_release(f5);
  /* iota wraps (Nx: [0..7, -8..-1, 0..3]); eye */
  em_array *io = NULL, *ey = NULL;
  int64_t n20 = 20, s33[] = {3, 3};
  bool ok = em_iota(&io, EM_S4, 1, &n20, 0, CPU) == EM_OK && rd_sub(io, g);
  for (int i = 0; ok && i < 20; i++) ok = g[i] == wrapv(EM_S4, i);
  CHECK(ok, "iota s4");
  ok = em_eye(&ey, EM_U2, 2, s33, CPU) == EM_OK && rd_sub(ey, g);
  for (int i = 0; ok && i < 9; i++) ok = g[i] == (i % 4 == 0);
  CHECK(ok, "eye u2");
  em_array_release(io);
  em_array_release(ey);
  /* bitcast: s4 <-> u4 reinterprets the 4 bits; f8 <-> u8; sizes checked */
  int v[] = {-1, -8, 7, 0, 3};
  em_array *a = mk_sub1(EM_S4, 5, v), *bc = NULL, *back = NULL, *bad = NULL;
  ok = a && em_bitcast(&bc, a, EM_U4) == EM_OK && rd_sub(bc, g) &&
       g[0] == 15 && g[1] == 8 && g[2] == 7 && g[3] == 0 && g[4] == 3;
  CHECK(ok, "bitcast s4->u4");
  ok = bc && em_bitcast(&back, bc, EM_S4) == EM_OK && rd_sub(back, g) &&
       g[0] == -1 && g[1] == -8 && g[2] == 7;
  CHECK(ok, "bitcast u4->s4");
  CHECK(a && em_bitcast(&bad, a, EM_U8) == EM_ERR_ARGUMENT && !bad &&
            strstr(em_last_error(), "[bitcast]"),
        "bitcast s4->u8 rejected: %s", em_last_error());
  CHECK(a && em_bitcast(&bad, a, EM_U2) == EM_ERR_ARGUMENT && !bad,
        "bitcast s4->u2 rejected");
  uint8_t raw[] = {0x3c, 0x7c, 0x80};
  em_array *f8a = mk1(EM_F8, 3, raw, 3), *u8 = NULL, *e4 = NULL;
  uint8_t gr[3] = {0};
  CHECK(f8a && em_bitcast(&u8, f8a, EM_U8) == EM_OK && rd(u8, gr) &&
            !memcmp(gr, raw, 3) && em_bitcast(&e4, u8, EM_F8_E4M3FN) == EM_OK,
        "bitcast f8 <-> u8");
  em_array *arr[] = {a, bc, back, f8a, u8, e4};
  for (int i = 0; i < ARRLEN(arr); i++) em_array_release(arr[i]);
  /* data movement on stored bytes: concatenate, pad, select, clip */
  int x1[] = {1, -2, 3}, x2[] = {-8, 7}, lo = -1, hi = 2, pv = 5;
  em_array *p = mk_sub1(EM_S4, 3, x1), *q = mk_sub1(EM_S4, 2, x2);
  em_array *cat = NULL, *pad = NULL, *cl = NULL, *sel = NULL;
  em_array *pads = NULL, *los = NULL, *his = NULL;
  em_array *cs[] = {p, q};
  ok = p && q && em_concatenate(&cat, cs, 2, 0) == EM_OK && rd_sub(cat, g) &&
       g[0] == 1 && g[1] == -2 && g[2] == 3 && g[3] == -8 && g[4] == 7;
  CHECK(ok, "concatenate s4");
  pads = mk_sub(EM_S4, 0, NULL, &pv);
  int64_t plo = 1, phi = 2, pin = 1;
  ok = p && pads && em_pad(&pad, p, pads, &plo, &phi, &pin) == EM_OK &&
       rd_sub(pad, g) && em_array_size(pad) == 8 && g[0] == 5 && g[1] == 1 &&
       g[2] == 5 && g[3] == -2 && g[5] == 3 && g[7] == 5;
  CHECK(ok, "pad s4");
  los = mk_sub(EM_S4, 0, NULL, &lo);
  his = mk_sub(EM_S4, 0, NULL, &hi);
  ok = cat && los && his && em_clip(&cl, cat, los, his) == EM_OK &&
       rd_sub(cl, g) && g[0] == 1 && g[1] == -1 && g[2] == 2 && g[3] == -1 &&
       g[4] == 2;
  CHECK(ok, "clip s4");
  uint8_t pr[] = {1, 0, 1};
  em_array *pred = mk1(EM_U8, 3, pr, 3), *q3 = NULL;
  int64_t st0 = 0, len3 = 3, one = 1;
  if (cat) em_slice(&q3, cat, &st0, &len3, &one);
  ok = pred && q3 && em_select(&sel, pred, p, q3) == EM_OK && rd_sub(sel, g) &&
       g[0] == 1 && g[1] == -2 && g[2] == 3;
  CHECK(ok, "select s4");
  em_array *arr2[] = {p, q, cat, pad, cl, sel, pads, los, his, pred, q3};
  for (int i = 0; i < ARRLEN(arr2); i++) em_array_release(arr2[i]);
}

/* Ops of other families: they either compute the right thing or fail
 * cleanly with their op's name (never a crash or a silent wrong result). */
static void test_other_families(void) {
  int v[] = {3, -2, 7, -8, 0, 1};
  em_array *a = mk_sub1(EM_S4, 6, v), *o = NULL;
  int g[6];
  em_status st = a ? em_sort(&o, a, 0, false) : EM_ERR_ARGUMENT;
  if (st == EM_OK) st = em_eval(&o, 1);
  if (st == EM_OK && rd_sub(o, g))
    CHECK(g[0] == -8 && g[1] == -2 && g[2] == 0 && g[5] == 7, "sort s4");
  else
    CHECK(strstr(em_last_error(), "sort") != NULL, "sort s4 error: %s",
          em_last_error());
  em_array_release(o);
  o = NULL;
  st = a ? em_cumulative_sum(&o, a, 0, false) : EM_ERR_ARGUMENT;
  if (st == EM_OK) st = em_eval(&o, 1);
  if (st == EM_OK && rd_sub(o, g))
    CHECK(g[0] == 3 && g[1] == 1 && g[2] == -8 && g[3] == 0,
          "cumulative_sum s4 wraps: %d %d %d %d", g[0], g[1], g[2], g[3]);
  else
    CHECK(strstr(em_last_error(), "cumulative") != NULL,
          "cumulative_sum s4 error: %s", em_last_error());
  em_array_release(o);
  o = NULL;
  int64_t idx[] = {2, 0, 5};
  em_array *ix = mk1(EM_S64, 3, idx, sizeof idx);
  st = a && ix ? em_take(&o, a, ix, 0) : EM_ERR_ARGUMENT;
  CHECK(st == EM_OK && rd_sub(o, g) && g[0] == 7 && g[1] == 3 && g[2] == 1,
        "take s4: %s", em_last_error());
  em_array_release(o);
  em_array_release(ix);
  em_array_release(a);
}

int main(void) {
  test_table();
  test_f8_decode();
  test_f8_encode();
  test_f8_round_trips();
  test_as_type_all();
  test_packing();
  test_sub_binary();
  test_sub_unary();
  test_f8_binary();
  test_f8_unary();
  test_sub_reduce();
  test_f8_reduce();
  test_dot();
  test_fused_large();
  test_creation_views();
  test_other_families();
  return TEST_SUMMARY();
}
