/* test_kernels_unary_cast.c — the CPU cast kernels (all 14x14 dtype pairs)
 * and unary kernels against a reference in long double, written here from
 * scratch (half floats are decoded with ldexp, rounding uses nearbyintl). */
#include <complex.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu-kernels.h"
#include "cpu/unary-math.h"
#include "harness.h"

/* The transcendental kernels live in unary_math.c, which this test does
 * not link: this stub offers only f64 exp (enough to drive the int ->
 * f64 -> f32 path of the dispatcher) and NULL for everything else. */
static void stub_exp_f64(const void *x, void *y, int64_t n) {
  const double *a = x;
  double *b = y;
  for (int64_t i = 0; i < n; i++) b[i] = exp(a[i]);
}
em_unary_kernel em_cpu_unary_math_kernel(em_op op, em_dtype t) {
  return op == EM_OP_exp && t == EM_F64 ? stub_exp_f64 : NULL;
}

/* ---- dtype facts ---------------------------------------------------------- */

typedef struct {
  const char *name;
  int bits;
  char kind;
} dinfo;
static const dinfo DT[EM_DTYPE_COUNT] = {
#define EM_X_(N, n, b, k) [EM_##N] = {#n, b, k},
    EM_DTYPES(EM_X_)
#undef EM_X_
};
static size_t dsize(em_dtype t) { return (size_t)DT[t].bits / 8; }
static int is_intk(em_dtype t) { return DT[t].kind == 'u' || DT[t].kind == 's'; }
static int is_cplx(em_dtype t) { return DT[t].kind == 'c'; }
static uint64_t wmask(int w) { return w == 64 ? ~0ull : (1ull << w) - 1; }

/* Float formats: precision p (with the implicit bit), min exponent, max. */
typedef struct {
  int p, emin;
  long double max;
} ffmt;
static ffmt fmt_of(em_dtype t) {
  switch (t) {
    case EM_F16: return (ffmt){11, -14, 65504.0L};
    case EM_BF16: return (ffmt){8, -126, ldexpl(255.0L, 120)};
    case EM_F32:
    case EM_C64: return (ffmt){24, -126, FLT_MAX};
    default: return (ffmt){53, -1022, DBL_MAX};
  }
}

/* Correct rounding to nearest even of an exact value into a format. */
static long double ref_round(long double x, ffmt f) {
  if (isnan(x) || isinf(x) || x == 0) return x;
  long double a = fabsl(x);
  int e;
  frexpl(a, &e);
  int E = e - 1 < f.emin ? f.emin : e - 1;
  long double q = ldexpl(1.0L, E - f.p + 1);
  long double r = nearbyintl(a / q) * q;
  if (r > f.max) r = INFINITY;
  return copysignl(r, x);
}
static long double ulp_of(long double w, ffmt f) {
  w = fabsl(w);
  int e = f.emin + 1;
  if (w > 0 && !isinf(w)) frexpl(w, &e);
  int E = e - 1 < f.emin ? f.emin : e - 1;
  return ldexpl(1.0L, E - f.p + 1);
}

/* ---- element values ------------------------------------------------------- */

/* An element: re/im exactly (long double holds every value of every
 * dtype), and for ints the two's complement bits sign-extended to 64. */
typedef struct {
  long double re, im;
  uint64_t ib;
} val;

static long double dec_f16(uint16_t h) {
  int e = (h >> 10) & 31, m = h & 0x3ff;
  long double v = e == 0    ? ldexpl(m, -24)
                  : e == 31 ? (m ? NAN : INFINITY)
                            : ldexpl(1024 + m, e - 25);
  return h & 0x8000 ? -v : v;
}
static long double dec_bf16(uint16_t h) {
  int e = (h >> 7) & 255, m = h & 0x7f;
  long double v = e == 0     ? ldexpl(m, -133)
                  : e == 255 ? (m ? NAN : INFINITY)
                             : ldexpl(128 + m, e - 134);
  return h & 0x8000 ? -v : v;
}

static val get(em_dtype t, const void *buf, int64_t i) {
  val v = {0, 0, 0};
  const char *p = (const char *)buf + (size_t)i * dsize(t);
  uint64_t raw = 0;
  if (is_intk(t)) {
    memcpy(&raw, p, dsize(t)); /* little-endian */
    int w = DT[t].bits;
    if (DT[t].kind == 's' && w < 64 && (raw >> (w - 1)) & 1) raw |= ~wmask(w);
    v.ib = raw;
    v.re = DT[t].kind == 's' ? (long double)(int64_t)raw : (long double)raw;
    return v;
  }
  switch (t) {
    case EM_F16: {
      uint16_t h;
      memcpy(&h, p, 2);
      v.re = dec_f16(h);
      break;
    }
    case EM_BF16: {
      uint16_t h;
      memcpy(&h, p, 2);
      v.re = dec_bf16(h);
      break;
    }
    case EM_F32:
    case EM_C64: {
      float f[2];
      memcpy(f, p, dsize(t));
      v.re = f[0];
      if (t == EM_C64) v.im = f[1];
      break;
    }
    default: {
      double d[2];
      memcpy(d, p, dsize(t));
      v.re = d[0];
      if (t == EM_C128) v.im = d[1];
      break;
    }
  }
  return v;
}

/* ---- input generation ------------------------------------------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static const int64_t INT_SPECIALS[] = {
    0, 1, -1, 2, -2, 3, 7, 0x7f, 0x80, 0xff, 0x100, -128, -129, 0x7fff,
    0x8000, 0xffff, -32768, 2049, 2051, 4097, 65504, 65519, 65520, 65535,
    65536, 0x7fffffff, -0x7fffffff - 1, 0xffffffffll, 0x100000000ll,
    (1ll << 24) + 1, (1ll << 30) + (1ll << 22) + 1, (1ll << 30) + (1ll << 22),
    (1ll << 30) + (3ll << 22), (1ll << 60) + (1ll << 52),
    (1ll << 60) + (1ll << 52) + 1, (1ll << 60) + (3ll << 52),
    (1ll << 53) + 1, INT64_MAX, INT64_MIN, INT64_MIN + 1, INT64_MAX - 1,
    (int64_t)0x8080000000000001ull, (int64_t)0x8080000000000000ull,
    -((1ll << 60) + (1ll << 52) + 1), 0x5555555555555555ll,
    (int64_t)0xaaaaaaaaaaaaaaaaull};
#define N_INT_SPECIALS (sizeof INT_SPECIALS / sizeof INT_SPECIALS[0])

static const uint16_t F16_SPECIALS[] = {
    0x0000, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0xfe00, 0x7c01, 0x0001, 0x8001,
    0x03ff, 0x0400, 0x7bff, 0xfbff, 0x3c00, 0xbc00, 0x3800, 0xb800, 0x3e00,
    0xbe00, 0x4100, 0xc100, 0x3555, 0x5bff, 0x6800, 0x6bff, 0x0200, 0x3bff,
    0x7800, 0xf800};
static const uint16_t BF16_SPECIALS[] = {
    0x0000, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0xffc0, 0x7f81, 0x0001, 0x8001,
    0x007f, 0x0080, 0x7f7f, 0xff7f, 0x3f80, 0xbf80, 0x3f00, 0xbf00, 0x3fc0,
    0xbfc0, 0x4020, 0xc020, 0x4f00, 0xcf00, 0x5f00, 0xdf00, 0x5f80, 0xdf80,
    0x4380, 0x437f, 0xc300, 0x477f, 0x4780, 0x3eff};
static const double FLT_SPECIALS[] = {
    0.0, -0.0, INFINITY, -INFINITY, NAN, -NAN, 1, -1, 0.5, -0.5, 1.5, -1.5,
    2.5, -2.5, 0.49999997, -0.49999997, 0.5000001, 255.5, 255.99, 256,
    -128.5, -128.99, -129, 127.99, 65504, 65519.99, 65520, 65535.9, 65536,
    2147483520.0, 2147483647.0, 2147483648.0, -2147483648.0, -2147483904.0,
    4294967295.0, 4294967296.0, 9223372036854775807.0, -9223372036854775808.0,
    -9223373136366403584.0, 18446744073709551615.0, 18446744073709551616.0,
    1e30, -1e30, 3.4028234663852886e38, 1.1754943508222875e-38,
    1.401298464324817e-45, -1.401298464324817e-45, 1.0 + 0x1p-11,
    1.0 + 3 * 0x1p-11, 1.0 + 0x1p-8, 1.0 + 3 * 0x1p-8, 1.0 + 0x1p-11 + 0x1p-40,
    1.0 + 0x1p-8 + 0x1p-50, 0x1p-25, 0x1p-25 + 0x1p-60, 0x1.8p-24, 0x1p-14,
    0x1.ffcp-15, 0x1.ff8p-15, 0x1p-133, 0x1p-134, 0x1.8p-133, 0x1p-126,
    0x1.fep-127, 0x1.ffp127, 0x1.fe8p127, 1e-300, -1e-300, 4.9e-324,
    1.7976931348623157e308, -1.7976931348623157e308, 0x1p53 + 2, 0x1.8p52,
    4503599627370495.5, 8388607.5, -8388607.5, 8388608.5, 0.1, -0.7, 3.75,
    -8, 27, 1e10, -1e-10, 0x1p-1022, 0x1p-1030};
#define N_FLT_SPECIALS (sizeof FLT_SPECIALS / sizeof FLT_SPECIALS[0])

static const double CPLX_SPECIALS[][2] = {
    {INFINITY, NAN}, {NAN, INFINITY}, {-INFINITY, NAN}, {NAN, -INFINITY},
    {NAN, 0}, {0, NAN}, {NAN, NAN}, {0, -0.0}, {-0.0, 0}, {-0.0, -0.0},
    {3, 4}, {-8, 0}, {-8, -0.0}, {0, 2}, {0, -2}, {-4, 0}, {1e30, 1e30},
    {3.4028234663852886e38, 3.4028234663852886e38}, {INFINITY, 0},
    {0, -INFINITY}, {1e-40, -1e-40}, {1.7976931348623157e308, 1e308}};
#define N_CPLX_SPECIALS (sizeof CPLX_SPECIALS / sizeof CPLX_SPECIALS[0])

/* A random float value: raw bits, a moderate range, or near-halves. */
static double rnd_double(void) {
  uint64_t r = rnd();
  double u = (double)(rnd() >> 11) * 0x1p-53 * 2 - 1;
  switch (r % 6) {
    case 0: {
      double d;
      uint64_t b = rnd();
      memcpy(&d, &b, 8);
      return d;
    }
    case 1: return u * 300;
    case 2: return u * 70000;
    case 3: return u * 0x1p34;
    case 4: return u * 0x1p66;
    default: return nearbyint(u * 1000) + 0.5;
  }
}

/* Writes element i of dtype t: specials first, then random values. */
static void put_elem(em_dtype t, void *buf, int64_t i) {
  char *p = (char *)buf + (size_t)i * dsize(t);
  if (is_intk(t)) {
    uint64_t v = (uint64_t)i < N_INT_SPECIALS ? (uint64_t)INT_SPECIALS[i]
                                               : rnd();
    if (i >= (int64_t)N_INT_SPECIALS && rnd() % 3 == 0) v %= 1000; /* small */
    if (i >= (int64_t)N_INT_SPECIALS && rnd() % 4 == 0) v = 0 - (v % 1000);
    memcpy(p, &v, dsize(t));
    return;
  }
  if (t == EM_F16 || t == EM_BF16) {
    const uint16_t *sp = t == EM_F16 ? F16_SPECIALS : BF16_SPECIALS;
    size_t ns = t == EM_F16 ? sizeof F16_SPECIALS / 2 : sizeof BF16_SPECIALS / 2;
    uint16_t h = (uint64_t)i < ns ? sp[i] : (uint16_t)rnd();
    memcpy(p, &h, 2);
    return;
  }
  int c = is_cplx(t);
  if (c && (uint64_t)i < N_CPLX_SPECIALS) {
    double re = CPLX_SPECIALS[i][0], im = CPLX_SPECIALS[i][1];
    if (t == EM_C64) {
      float f[2] = {(float)re, (float)im};
      memcpy(p, f, 8);
    } else {
      double d[2] = {re, im};
      memcpy(p, d, 16);
    }
    return;
  }
  if (!c && (uint64_t)i >= N_FLT_SPECIALS && (uint64_t)i < N_FLT_SPECIALS + 4) {
    /* NaNs whose payload sits in the low bits (signalling ones too) */
    int j = (int)(i - (int64_t)N_FLT_SPECIALS);
    if (t == EM_F32) {
      static const uint32_t nf[4] = {0x7f800001u, 0xff800001u, 0x7fa00000u,
                                     0x7fc00001u};
      memcpy(p, &nf[j], 4);
    } else {
      static const uint64_t nd[4] = {0x7ff0000000000001ull,
                                     0xfff0000000000001ull,
                                     0x7ff4000000000000ull,
                                     0x7ff8000000000001ull};
      memcpy(p, &nd[j], 8);
    }
    return;
  }
  double re = (uint64_t)i < N_FLT_SPECIALS ? FLT_SPECIALS[i] : rnd_double();
  /* complex: pair specials with a rotating special / random imag part */
  double im = (uint64_t)i < N_FLT_SPECIALS
                  ? FLT_SPECIALS[(i * 7 + 3) % N_FLT_SPECIALS]
                  : rnd_double();
  if (c && rnd() % 5 == 0) im = 0;
  if (t == EM_F32 || t == EM_C64) {
    float f[2] = {(float)re, (float)im};
    memcpy(p, f, c ? 8 : 4);
  } else {
    double d[2] = {re, im};
    memcpy(p, d, c ? 16 : 8);
  }
}

/* ---- comparing ----------------------------------------------------------- */

static int same_float(long double got, long double want, ffmt f, double tol) {
  if (isnan(want)) return isnan(got);
  if (isnan(got)) return 0;
  if (tol == 0) return got == want && signbit(got) == signbit(want);
  if (isinf(want) || isinf(got)) return got == want;
  return fabsl(got - want) <= (long double)tol * ulp_of(want, f);
}

/* Complex: each part within tol ulps of the larger part's magnitude. */
static int same_cplx(val got, val want, ffmt f, double tol) {
  if (tol == 0)
    return same_float(got.re, want.re, f, 0) && same_float(got.im, want.im, f, 0);
  if (isnan(want.re) || isnan(want.im) || isinf(want.re) || isinf(want.im))
    return same_float(got.re, want.re, f, 0.5) &&
           same_float(got.im, want.im, f, 0.5);
  long double m = fmaxl(fabsl(want.re), fabsl(want.im));
  long double u = (long double)tol * ulp_of(m, f);
  return fabsl(got.re - want.re) <= u && fabsl(got.im - want.im) <= u;
}

static int same_val(em_dtype t, val got, val want, double tol) {
  if (is_intk(t)) {
    uint64_t m = wmask(DT[t].bits);
    return (got.ib & m) == (want.ib & m);
  }
  if (is_cplx(t)) return same_cplx(got, want, fmt_of(t), tol);
  return same_float(got.re, want.re, fmt_of(t), tol);
}

static void show(em_dtype t, val v, char *s, size_t n) {
  if (is_intk(t))
    snprintf(s, n, "%lld (0x%llx)", (long long)v.ib, (unsigned long long)v.ib);
  else if (is_cplx(t))
    snprintf(s, n, "%.21Lg%+.21Lgi", v.re, v.im);
  else
    snprintf(s, n, "%.21Lg", v.re);
}

/* ---- buffers: misaligned starts and guard bytes ---------------------------- */

#define GUARD 32
typedef struct {
  unsigned char *base;
  void *p;
  size_t bytes;
} buf;
static buf buf_new(em_dtype t, int64_t n) {
  size_t es = dsize(t), bytes = (size_t)n * es;
  buf b;
  b.base = malloc(bytes + es + GUARD + 64);
  b.p = b.base + es; /* one element in: off any vector alignment */
  b.bytes = bytes;
  memset(b.base, 0xA5, bytes + es + GUARD + 64);
  return b;
}
static int guard_ok(buf b) {
  for (size_t i = 0; i < GUARD; i++)
    if (((unsigned char *)b.p)[b.bytes + i] != 0xA5) return 0;
  return 1;
}

static const int64_t LENS[] = {0, 1, 7, 1037};

/* ---- casts ------------------------------------------------------------------ */

static val ref_cast(em_dtype from, em_dtype to, val x) {
  val w = {0, 0, 0};
  if (is_intk(to)) {
    int wbits = DT[to].bits;
    if (is_intk(from)) {
      w.ib = x.ib; /* wraps */
      return w;
    }
    long double v = x.re; /* complex: the real part */
    long double lo = DT[to].kind == 's' ? -ldexpl(1, wbits - 1) : 0;
    long double hi = DT[to].kind == 's' ? ldexpl(1, wbits - 1) - 1
                                        : ldexpl(1, wbits) - 1;
    long double r = isnan(v) ? 0 : truncl(v);
    if (r < lo) r = lo;
    if (r > hi) r = hi;
    w.ib = r < 0 ? (uint64_t)(int64_t)r : (uint64_t)r;
    return w;
  }
  ffmt f = fmt_of(to);
  w.re = ref_round(x.re, f);
  w.im = is_cplx(to) && is_cplx(from) ? ref_round(x.im, f) : 0;
  return w;
}

static void test_casts(void) {
  /* The narrow dtypes (s2..f8_e4m3fn) are covered by test_types.c. */
  for (int from = 0; from <= EM_C128; from++)
    for (int to = 0; to <= EM_C128; to++) {
      em_unary_kernel k = em_cpu_cast_kernel((em_dtype)from, (em_dtype)to);
      CHECK(k != NULL, "cast %s->%s missing", DT[from].name, DT[to].name);
      if (!k) continue;
      for (size_t li = 0; li < sizeof LENS / sizeof LENS[0]; li++) {
        int64_t n = LENS[li];
        buf x = buf_new((em_dtype)from, n), y = buf_new((em_dtype)to, n);
        for (int64_t i = 0; i < n; i++) put_elem((em_dtype)from, x.p, i);
        k(x.p, y.p, n);
        int bad = 0;
        for (int64_t i = 0; i < n && bad < 3; i++) {
          val xv = get((em_dtype)from, x.p, i);
          val want = ref_cast((em_dtype)from, (em_dtype)to, xv);
          val got = get((em_dtype)to, y.p, i);
          int ok = same_val((em_dtype)to, got, want, 0);
          if (!ok) {
            char a[96], b[96], c[96];
            show((em_dtype)from, xv, a, sizeof a);
            show((em_dtype)to, got, b, sizeof b);
            show((em_dtype)to, want, c, sizeof c);
            CHECK(ok, "cast %s->%s [%lld] x=%s got %s want %s", DT[from].name,
                  DT[to].name, (long long)i, a, b, c);
            bad++;
          }
        }
        if (!bad) CHECK(1, "%s", "ok");
        CHECK(guard_ok(y), "cast %s->%s n=%lld wrote past the end",
              DT[from].name, DT[to].name, (long long)n);
        if (from == to && n > 0) { /* in place: a no-op */
          unsigned char *copy = malloc(x.bytes);
          memcpy(copy, x.p, x.bytes);
          k(x.p, x.p, n);
          CHECK(memcmp(copy, x.p, x.bytes) == 0, "cast %s in place",
                DT[from].name);
          free(copy);
        }
        free(x.base);
        free(y.base);
      }
    }
}

/* Exhaustive: every f16 / bf16 pattern through f32 and f64 and back. */
static void test_half_roundtrips(void) {
  int bad = 0;
  static uint16_t h[65536], back[65536];
  static float f[65536];
  static double d[65536];
  for (int t = 0; t < 2; t++) {
    em_dtype ht = t ? EM_BF16 : EM_F16;
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    em_cpu_cast_kernel(ht, EM_F32)(h, f, 65536);
    em_cpu_cast_kernel(ht, EM_F64)(h, d, 65536);
    for (int i = 0; i < 65536 && bad < 5; i++) {
      long double want = t ? dec_bf16(h[i]) : dec_f16(h[i]);
      int ok = same_float(f[i], want, fmt_of(EM_F32), 0) &&
               same_float(d[i], want, fmt_of(EM_F64), 0);
      if (!ok) bad++;
      CHECK(ok, "%s 0x%04x -> f32 %.9g f64 %.17g", DT[ht].name, i, f[i], d[i]);
    }
    em_cpu_cast_kernel(EM_F32, ht)(f, back, 65536);
    for (int i = 0; i < 65536 && bad < 10; i++) {
      int nan = isnan(f[i]);
      int ok = nan ? (back[i] & 0x7fff) > (t ? 0x7f80 : 0x7c00)
                   : back[i] == h[i];
      if (!ok) bad++;
      CHECK(ok, "%s 0x%04x -> f32 -> 0x%04x", DT[ht].name, i, back[i]);
    }
    em_cpu_cast_kernel(EM_F64, ht)(d, back, 65536);
    for (int i = 0; i < 65536 && bad < 15; i++) {
      int nan = isnan(d[i]);
      int ok = nan ? (back[i] & 0x7fff) > (t ? 0x7f80 : 0x7c00)
                   : back[i] == h[i];
      if (!ok) bad++;
      CHECK(ok, "%s 0x%04x -> f64 -> 0x%04x", DT[ht].name, i, back[i]);
    }
  }
  /* Every f32 whose top 16 bits step through all patterns, with low
   * halves around the rounding point (ties, just below, just above). */
  static const uint32_t lows[] = {0x0000, 0x0001, 0x7fff, 0x8000, 0x8001,
                                  0xffff, 0x1000, 0x0fff, 0x2000, 0x1fff};
  for (uint32_t hi = 0; hi < 65536; hi++) {
    float xs[10];
    uint16_t o16[10], ob[10];
    for (int j = 0; j < 10; j++) {
      uint32_t b = hi << 16 | lows[j];
      memcpy(&xs[j], &b, 4);
    }
    em_cpu_cast_kernel(EM_F32, EM_F16)(xs, o16, 10);
    em_cpu_cast_kernel(EM_F32, EM_BF16)(xs, ob, 10);
    for (int j = 0; j < 10 && bad < 25; j++) {
      if (isnan(xs[j])) {
        int ok = (o16[j] & 0x7fff) > 0x7c00 && (ob[j] & 0x7fff) > 0x7f80;
        if (!ok) bad++;
        CHECK(ok, "NaN %a -> %04x %04x", xs[j], o16[j], ob[j]);
        continue;
      }
      long double w16 = ref_round(xs[j], fmt_of(EM_F16));
      long double wb = ref_round(xs[j], fmt_of(EM_BF16));
      int ok = same_float(dec_f16(o16[j]), w16, fmt_of(EM_F16), 0) &&
               same_float(dec_bf16(ob[j]), wb, fmt_of(EM_BF16), 0);
      if (!ok) bad++;
      CHECK(ok, "f32 %a -> f16 %04x bf16 %04x", xs[j], o16[j], ob[j]);
    }
  }
}

/* ---- unary ops ------------------------------------------------------------------ */

#define ALL_UNARY(X)                                                        \
  X(exp) X(expm1) X(log) X(log1p) X(sigmoid) X(cos) X(sin) X(tan) X(cosh)  \
  X(sinh) X(tanh) X(acos) X(asin) X(atan) X(acosh) X(asinh) X(atanh)       \
  X(sqrt) X(rsqrt) X(cbrt) X(erf) X(erfc) X(erf_inv) X(abs)                \
  X(bitwise_not) X(ceil) X(conjugate) X(floor) X(negate) X(round) X(sign)  \
  X(count_leading_zeros) X(population_count) X(real) X(imag) X(is_nan)     \
  X(is_infinity) X(logical_not)

static int is_transcendental(em_op op) {
  switch (op) {
    case EM_OP_exp: case EM_OP_expm1: case EM_OP_log: case EM_OP_log1p:
    case EM_OP_sigmoid: case EM_OP_cos: case EM_OP_sin: case EM_OP_tan:
    case EM_OP_cosh: case EM_OP_sinh: case EM_OP_tanh: case EM_OP_acos:
    case EM_OP_asin: case EM_OP_atan: case EM_OP_acosh: case EM_OP_asinh:
    case EM_OP_atanh: case EM_OP_erf: case EM_OP_erfc: case EM_OP_erf_inv:
      return 1;
    default:
      return 0;
  }
}

/* Nx's output dtype, restated by hand from Nx's docs. */
static int want_out(em_op op, em_dtype t) {
  int i = is_intk(t), c = is_cplx(t);
  int floating = i ? EM_F32 : (int)t;
  int real = t == EM_C64 ? EM_F32 : t == EM_C128 ? EM_F64 : floating;
  switch (op) {
    case EM_OP_erf: case EM_OP_erfc: case EM_OP_erf_inv:
      return c ? -1 : floating;
    case EM_OP_abs: return c ? real : (int)t;
    case EM_OP_bitwise_not: case EM_OP_count_leading_zeros:
    case EM_OP_population_count:
      return i ? (int)t : -1;
    case EM_OP_ceil: case EM_OP_floor: case EM_OP_round:
      return c ? -1 : (int)t;
    case EM_OP_conjugate: return c ? (int)t : t == EM_F64 ? EM_C128 : EM_C64;
    case EM_OP_negate: case EM_OP_sign: return t;
    case EM_OP_real: case EM_OP_imag: return real;
    case EM_OP_is_nan: case EM_OP_is_infinity: case EM_OP_logical_not:
      return EM_U8;
    default: return floating; /* the math ops, sqrt, rsqrt, cbrt */
  }
}

static uint64_t clz_ref(uint64_t v, int w) {
  int n = 0;
  for (int b = w - 1; b >= 0 && !((v >> b) & 1); b--) n++;
  return (uint64_t)n;
}
static uint64_t popc_ref(uint64_t v, int w) {
  int n = 0;
  for (int b = 0; b < w; b++) n += (v >> b) & 1;
  return (uint64_t)n;
}

static val mkc(long double complex z) {
  val v = {creall(z), cimagl(z), 0};
  return v;
}

/* Reference result (in exact/long double terms, before rounding) and the
 * tolerance in ulps of the output format. */
static val ref_unary(em_op op, em_dtype t, em_dtype out, val x, double *tol) {
  val w = {0, 0, 0};
  int wb = is_intk(t) ? DT[t].bits : 64, sgn = DT[t].kind == 's';
  uint64_t m = wmask(wb);
  long double v = x.re;
  long double complex z = x.re + x.im * I;
  int neg = sgn && ((x.ib >> (wb - 1)) & 1);
  *tol = 0;
  switch (op) {
    case EM_OP_abs:
      if (is_intk(t)) w.ib = neg ? (0 - x.ib) & m : x.ib;
      else if (is_cplx(t)) w.re = hypotl(x.re, x.im), *tol = 1;
      else w.re = fabsl(v);
      break;
    case EM_OP_negate:
      if (is_intk(t)) w.ib = (0 - x.ib) & m;
      else w.re = -x.re, w.im = -x.im;
      break;
    case EM_OP_bitwise_not: w.ib = ~x.ib & m; break;
    case EM_OP_ceil: w.ib = x.ib, w.re = is_intk(t) ? v : ceill(v); break;
    case EM_OP_floor: w.ib = x.ib, w.re = is_intk(t) ? v : floorl(v); break;
    case EM_OP_round: w.ib = x.ib, w.re = is_intk(t) ? v : roundl(v); break;
    case EM_OP_sign:
      if (is_intk(t)) {
        w.ib = x.ib == 0 ? 0 : neg ? ~0ull : 1;
      } else if (is_cplx(t)) {
        long double a = hypotl(x.re, x.im);
        if (a == 0) w.re = w.im = 0;
        else w.re = x.re / a, w.im = x.im / a, *tol = 2;
      } else {
        w.re = v > 0 ? 1 : v < 0 ? -1 : v;
      }
      break;
    case EM_OP_count_leading_zeros: w.ib = clz_ref(x.ib & m, wb); break;
    case EM_OP_population_count: w.ib = popc_ref(x.ib & m, wb); break;
    case EM_OP_real: w.re = x.re; break;
    case EM_OP_imag: w.re = is_cplx(t) ? x.im : 0; break;
    case EM_OP_is_nan:
      w.ib = !is_intk(t) && (isnan(x.re) || isnan(x.im));
      break;
    case EM_OP_is_infinity:
      w.ib = !is_intk(t) && (isinf(x.re) || isinf(x.im));
      break;
    case EM_OP_logical_not:
      w.ib = is_intk(t) ? x.ib == 0 : x.re == 0 && x.im == 0;
      break;
    case EM_OP_conjugate:
      w.re = x.re;
      w.im = is_cplx(t) ? -x.im : -0.0L;
      break;
    case EM_OP_sqrt:
      if (is_cplx(t)) w = mkc(csqrtl(z)), *tol = 2;
      else w.re = sqrtl(v), *tol = 1;
      break;
    case EM_OP_rsqrt:
      if (is_cplx(t)) w = mkc(1.0L / csqrtl(z)), *tol = 4;
      else w.re = 1.0L / sqrtl(v), *tol = t == EM_F32 || t == EM_F64 ? 2 : 1;
      break;
    case EM_OP_cbrt:
      if (is_cplx(t)) {
        long double r = cbrtl(hypotl(x.re, x.im)), th = atan2l(x.im, x.re) / 3;
        w.re = r * cosl(th), w.im = r * sinl(th), *tol = 4;
      } else {
        w.re = cbrtl(v), *tol = t == EM_F64 ? 2 : 1;
      }
      break;
    case EM_OP_exp: w.re = expl(v), *tol = 1; break;
    default: break;
  }
  /* Round the exact result into the output dtype. */
  if (!is_intk(out)) {
    ffmt f = fmt_of(out);
    w.re = ref_round(w.re, f);
    w.im = ref_round(w.im, f);
  }
  return w;
}

/* Complex functions at infinities are checked only as far as both are
 * non-finite or NaN in the same places; their finite behaviour is what
 * matters and C99 Annex G special cases differ from textbook formulas. */
static int skip_special(em_op op, em_dtype t, val x) {
  if (!is_cplx(t)) return 0;
  int nonfinite = !isfinite(x.re) || !isfinite(x.im);
  switch (op) {
    case EM_OP_sqrt: case EM_OP_rsqrt: case EM_OP_cbrt: case EM_OP_sign:
      return nonfinite;
    default:
      return 0;
  }
}

static void test_unary_op(em_op op, const char *oname) {
  for (int ti = 0; ti <= EM_C128; ti++) { /* narrow: test_types.c */
    em_dtype t = (em_dtype)ti;
    int out = em_unary_out_dtype(op, t), wo = want_out(op, t);
    CHECK(out == wo, "%s(%s): out dtype %d want %d", oname, DT[t].name, out,
          wo);
    em_unary_kernel k = em_cpu_unary_kernel(op, t);
    if (out < 0) {
      CHECK(k == NULL, "%s(%s) undefined but has a kernel", oname, DT[t].name);
      continue;
    }
    /* Transcendental ops: the stub offers only f64 exp, so exactly exp on
     * ints (through f64) and on f64 have kernels here. */
    if (is_transcendental(op)) {
      int expect = op == EM_OP_exp && (is_intk(t) || t == EM_F64);
      CHECK((k != NULL) == expect, "%s(%s): kernel %p", oname, DT[t].name,
            (void *)k);
      if (!k || t == EM_F64) continue;
    }
    CHECK(k != NULL, "%s(%s) has no kernel", oname, DT[t].name);
    if (!k) continue;
    em_dtype od = (em_dtype)out;
    for (size_t li = 0; li < sizeof LENS / sizeof LENS[0]; li++) {
      int64_t n = LENS[li];
      buf x = buf_new(t, n), y = buf_new(od, n);
      for (int64_t i = 0; i < n; i++) put_elem(t, x.p, i);
      k(x.p, y.p, n);
      int bad = 0;
      for (int64_t i = 0; i < n && bad < 3; i++) {
        val xv = get(t, x.p, i);
        if (skip_special(op, t, xv)) continue;
        double tol;
        val want = ref_unary(op, t, od, xv, &tol);
        val got = get(od, y.p, i);
        int ok = same_val(od, got, want, tol);
        if (!ok) {
          char a[96], b[96], c[96];
          show(t, xv, a, sizeof a);
          show(od, got, b, sizeof b);
          show(od, want, c, sizeof c);
          CHECK(ok, "%s(%s) [%lld] x=%s got %s want %s", oname, DT[t].name,
                (long long)i, a, b, c);
          bad++;
        }
      }
      if (!bad) CHECK(1, "%s", "ok");
      CHECK(guard_ok(y), "%s(%s) n=%lld wrote past the end", oname,
            DT[t].name, (long long)n);
      /* Same-typed kernels must also work in place. */
      if (od == t && n > 0) {
        k(x.p, x.p, n);
        CHECK(memcmp(x.p, y.p, x.bytes) == 0, "%s(%s) in place differs",
              oname, DT[t].name);
        CHECK(guard_ok(x), "%s(%s) in place wrote past the end", oname,
              DT[t].name);
      }
      free(x.base);
      free(y.base);
    }
  }
}

/* A few hand values, independent of the generic reference. */
static void test_hand_values(void) {
  {
    int32_t x[4] = {INT32_MIN, -5, 0, 7}, y[4];
    em_cpu_unary_kernel(EM_OP_abs, EM_S32)(x, y, 4);
    CHECK(y[0] == INT32_MIN && y[1] == 5 && y[2] == 0 && y[3] == 7,
          "abs s32 %d %d", y[0], y[1]);
    em_cpu_unary_kernel(EM_OP_negate, EM_S32)(x, y, 4);
    CHECK(y[0] == INT32_MIN && y[1] == 5 && y[3] == -7, "negate s32");
  }
  {
    uint8_t x[3] = {0, 1, 2}, y[3];
    em_cpu_unary_kernel(EM_OP_negate, EM_U8)(x, y, 3);
    CHECK(y[0] == 0 && y[1] == 255 && y[2] == 254, "negate u8 (Nx doc)");
  }
  {
    int8_t x[10] = {0, 1, 2, 4, 8, 16, 32, 64, -1, -128}, y[10];
    int8_t want[10] = {8, 7, 6, 5, 4, 3, 2, 1, 0, 0};
    em_cpu_unary_kernel(EM_OP_count_leading_zeros, EM_S8)(x, y, 10);
    CHECK(memcmp(y, want, 10) == 0, "clz s8 (Nx doc)");
    int8_t p[7] = {0, 1, 126, 127, -1, -127, -128}, pw[7] = {0, 1, 6, 7, 8, 2, 1};
    em_cpu_unary_kernel(EM_OP_population_count, EM_S8)(p, y, 7);
    CHECK(memcmp(y, pw, 7) == 0, "popcount s8 (Nx doc)");
  }
  {
    float x[8] = {-1.5f, -0.5f, 0.5f, 1.5f, 2.5f, -2.5f, -0.4f, 0.49999997f};
    float y[8];
    em_cpu_unary_kernel(EM_OP_round, EM_F32)(x, y, 8);
    CHECK(y[0] == -2 && y[1] == -1 && y[2] == 1 && y[3] == 2 && y[4] == 3 &&
              y[5] == -3 && y[6] == 0 && signbit(y[6]) && y[7] == 0,
          "round f32 half away: %g %g %g %g", y[0], y[1], y[2], y[3]);
    em_cpu_unary_kernel(EM_OP_floor, EM_F32)(x, y, 8);
    CHECK(y[0] == -2 && y[1] == -1 && y[2] == 0 && y[3] == 1, "floor f32");
    em_cpu_unary_kernel(EM_OP_ceil, EM_F32)(x, y, 8);
    CHECK(y[0] == -1 && y[1] == 0 && signbit(y[1]) && y[2] == 1 && y[3] == 2,
          "ceil f32");
  }
  {
    float x[4] = {NAN, -0.0f, -3.0f, 2.0f}, y[4];
    em_cpu_unary_kernel(EM_OP_sign, EM_F32)(x, y, 4);
    CHECK(isnan(y[0]) && y[1] == 0 && signbit(y[1]) && y[2] == -1 && y[3] == 1,
          "sign f32");
  }
  {
    float x[4] = {3, 4, -8, 0}, y[2];
    em_cpu_unary_kernel(EM_OP_abs, EM_C64)(x, y, 2);
    CHECK(y[0] == 5 && y[1] == 8, "abs c64 %g %g", y[0], y[1]);
    float s[4];
    em_cpu_unary_kernel(EM_OP_sqrt, EM_C64)((float[]){-4, 0, 0, 2}, s, 2);
    CHECK(fabsf(s[0]) < 1e-7f && fabsf(s[1] - 2) < 1e-6f &&
              fabsf(s[2] - 1) < 1e-6f && fabsf(s[3] - 1) < 1e-6f,
          "sqrt c64 %g%+gi %g%+gi", s[0], s[1], s[2], s[3]);
  }
  {
    int32_t x[2] = {1, -2};
    float y[4];
    em_cpu_unary_kernel(EM_OP_conjugate, EM_S32)(x, y, 2);
    CHECK(y[0] == 1 && y[1] == 0 && signbit(y[1]) && y[2] == -2,
          "conjugate s32 -> c64");
  }
  {
    double x[3] = {INFINITY, NAN, -INFINITY};
    uint8_t u[3];
    int32_t s[3];
    em_cpu_cast_kernel(EM_F64, EM_U8)(x, u, 3);
    em_cpu_cast_kernel(EM_F64, EM_S32)(x, s, 3);
    CHECK(u[0] == 255 && u[1] == 0 && u[2] == 0, "non-finite -> u8 (Nx doc)");
    CHECK(s[0] == INT32_MAX && s[1] == 0 && s[2] == INT32_MIN,
          "non-finite -> s32 (Nx doc)");
  }
  {
    /* f64 -> f16 must not round twice through f32. */
    double x = 1.0 + 0x1p-11 + 0x1p-40;
    uint16_t h;
    em_cpu_cast_kernel(EM_F64, EM_F16)(&x, &h, 1);
    CHECK(h == 0x3c01, "f64 -> f16 double rounding: %04x", h);
    int64_t big = (1ll << 60) + (1ll << 52) + 1;
    em_cpu_cast_kernel(EM_S64, EM_BF16)(&big, &h, 1);
    CHECK(h == 0x5d81, "s64 -> bf16 double rounding: %04x", h);
  }
}

int main(void) {
  const char *seed = getenv("EMILY_TEST_SEED"); /* to vary the random part */
  if (seed) rng_state += strtoull(seed, NULL, 10);
  test_casts();
  test_half_roundtrips();
#define EM_X_(o) test_unary_op(EM_OP_##o, #o);
  ALL_UNARY(EM_X_)
#undef EM_X_
  /* ops that are not unary have no unary kernel */
  CHECK(em_unary_out_dtype(EM_OP_add, EM_F32) == -1, "add is not unary");
  CHECK(em_cpu_unary_kernel(EM_OP_sum, EM_F32) == NULL, "sum is not unary");
  test_hand_values();
  return TEST_SUMMARY();
}
