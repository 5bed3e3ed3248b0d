/* test_sort.c — cumulative sum/product/max/min, sort, argsort and top_k
 * through the public API, against naive references written here:
 *  - cumulative: sequential loops in uint64 (integers, so wrapping is
 *    checked bit for bit), double (floats, on data whose partial results
 *    are exact) and double complex; NaN propagation of max/min;
 *  - sort/argsort: a stable merge sort with Nx's BinaryBackend comparator
 *    (NaN above +inf, all NaNs equal, -0.0 == 0.0, descending keeps equal
 *    elements in input order); sort output compared bit for bit, so NaN
 *    payloads and the sign of zero must come back unchanged;
 *  - every real dtype (complex for cumulative sum/product), every axis,
 *    both directions, non-contiguous inputs (transposed views), zero-size
 *    shapes, rows around the insertion/radix switch and long enough for
 *    11-bit digits, enough rows for the thread pool, already-sorted rows;
 *  - top_k against the same reference, Nx's doc examples;
 *  - error statuses and "[op]" messages. */
#include <complex.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emily.h"
#include "harness.h"

/* ---- rng ------------------------------------------------------------------
 */

static uint64_t rng_s = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
  uint64_t z = (rng_s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static int64_t rnd_in(int64_t lo, int64_t hi) { /* inclusive */
  return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* ---- dtypes and raw elements ----------------------------------------------
 */

static const em_dtype REAL[] = {EM_U8,  EM_U16,  EM_U32, EM_U64,
                                EM_S8,  EM_S16,  EM_S32, EM_S64,
                                EM_F16, EM_BF16, EM_F32, EM_F64};
#define NREAL 12

static int esz(em_dtype t) { return (int)em_dtype_size(t); }
static int bits(em_dtype t) { return esz(t) * 8; }
static bool is_flt(em_dtype t) { return em_dtype_is_float(t); }
static bool is_uns(em_dtype t) {
  return em_dtype_is_int(t) && !em_dtype_is_signed(t);
}
static const char *dn(em_dtype t) { return em_dtype_name(t); }

static uint64_t get_raw(em_dtype t, const void *b, int64_t i) {
  uint64_t u = 0;
  memcpy(&u, (const char *)b + i * esz(t), (size_t)esz(t));
  return u;
}
static void put_raw(em_dtype t, void *b, int64_t i, uint64_t u) {
  memcpy((char *)b + i * esz(t), &u, (size_t)esz(t));
}
static uint64_t mask_of(em_dtype t) {
  return bits(t) == 64 ? ~0ull : (1ull << bits(t)) - 1;
}
static int64_t sext(em_dtype t, uint64_t u) {
  int b = bits(t);
  if (b == 64) return (int64_t)u;
  uint64_t m = 1ull << (b - 1);
  u &= mask_of(t);
  return (int64_t)((u ^ m) - m);
}

/* Half formats decoded from scratch: mb mantissa bits, eb exponent bits. */
static double dec_half(uint64_t h, int mb, int eb) {
  int sign = (int)(h >> 15) & 1;
  int e = (int)(h >> mb) & ((1 << eb) - 1);
  int m = (int)(h & ((1u << mb) - 1));
  int bias = (1 << (eb - 1)) - 1;
  double v;
  if (e == (1 << eb) - 1)
    v = m ? NAN : INFINITY;
  else if (e == 0)
    v = ldexp(m, 1 - bias - mb);
  else
    v = ldexp(m + (1 << mb), e - bias - mb);
  return sign ? -v : v;
}
/* Exactly representable finite values (or inf) only. */
static uint64_t enc_half(double v, int mb, int eb) {
  uint64_t sign = signbit(v) ? 0x8000u : 0;
  v = fabs(v);
  int bias = (1 << (eb - 1)) - 1;
  if (isinf(v)) return sign | ((uint64_t)((1 << eb) - 1) << mb);
  if (v == 0) return sign;
  int e;
  double f = frexp(v, &e); /* v = f * 2^e, f in [0.5, 1) */
  int be = e - 1 + bias;
  if (be <= 0) /* subnormal */
    return sign | (uint64_t)ldexp(v, bias - 1 + mb);
  uint64_t m = (uint64_t)ldexp(f * 2 - 1, mb);
  return sign | ((uint64_t)be << mb) | m;
}

static double to_dbl(em_dtype t, uint64_t u) {
  switch (t) {
    case EM_F16:
      return dec_half(u, 10, 5);
    case EM_BF16:
      return dec_half(u, 7, 8);
    case EM_F32: {
      float f;
      uint32_t w = (uint32_t)u;
      memcpy(&f, &w, 4);
      return f;
    }
    case EM_F64: {
      double d;
      memcpy(&d, &u, 8);
      return d;
    }
    default:
      return is_uns(t) ? (double)u : (double)sext(t, u);
  }
}
/* v must be exactly representable in t (floats) or an integer. */
static uint64_t from_dbl(em_dtype t, double v) {
  switch (t) {
    case EM_F16:
      return enc_half(v, 10, 5);
    case EM_BF16:
      return enc_half(v, 7, 8);
    case EM_F32: {
      float f = (float)v;
      uint32_t w;
      memcpy(&w, &f, 4);
      return w;
    }
    case EM_F64: {
      uint64_t u;
      memcpy(&u, &v, 8);
      return u;
    }
    default:
      return (uint64_t)(int64_t)v & mask_of(t);
  }
}
static uint64_t nan_bits(em_dtype t, uint64_t payload, bool neg) {
  uint64_t u;
  switch (t) {
    case EM_F16:
      u = 0x7c00u | (1u + payload % 0x3ffu);
      break;
    case EM_BF16:
      u = 0x7f80u | (1u + payload % 0x7fu);
      break;
    case EM_F32:
      u = 0x7f800000u | (1u + payload % 0x7fffffu);
      break;
    default:
      u = 0x7ff0000000000000ull | (1u + payload % 0xfffffffffffffull);
  }
  if (neg) u |= 1ull << (bits(t) - 1);
  return u;
}
static bool raw_isnan(em_dtype t, uint64_t u) {
  return is_flt(t) && isnan(to_dbl(t, u));
}

/* ---- arrays -----------------------------------------------------------------
 */

static em_array *mk(em_dtype t, int nd, const int64_t *sh, const void *data) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= sh[i];
  em_array *a = NULL;
  em_status st = em_array_from_data(&a, t, nd, sh, data,
                                    (size_t)n * (size_t)esz(t), em_cpu());
  CHECK(st == EM_OK, "from_data: %s", em_last_error());
  return a;
}

/* An array with logical shape sh and row-major logical data, built as a
 * transposed view (perm != NULL) of a physical array. */
static em_array *mk_view(em_dtype t, int nd, const int64_t *sh,
                         const void *data, const int *perm) {
  if (!perm) return mk(t, nd, sh, data);
  int64_t psh[16], n = 1;
  for (int i = 0; i < nd; i++) {
    psh[perm[i]] = sh[i];
    n *= sh[i];
  }
  char *phys = malloc((size_t)(n ? n : 1) * (size_t)esz(t));
  int64_t idx[16] = {0};
  for (int64_t f = 0; f < n; f++) {
    /* idx: logical index of f; physical index p[perm[i]] = idx[i] */
    int64_t pf = 0;
    for (int d = 0; d < nd; d++) {
      int64_t pi = 0;
      for (int i = 0; i < nd; i++)
        if (perm[i] == d) pi = idx[i];
      pf = pf * psh[d] + pi;
    }
    memcpy(phys + pf * esz(t), (const char *)data + f * esz(t), (size_t)esz(t));
    for (int d = nd - 1; d >= 0; d--) {
      if (++idx[d] < sh[d]) break;
      idx[d] = 0;
    }
  }
  em_array *p = mk(t, nd, psh, phys);
  free(phys);
  em_array *v = NULL;
  CHECK(em_transpose(&v, p, perm) == EM_OK, "transpose: %s", em_last_error());
  em_array_release(p);
  return v;
}

/* Host copy of a (malloc'd; NULL and a failed CHECK on error). */
static void *fetch(em_array *a) {
  size_t nb = em_array_nbytes(a);
  void *h = malloc(nb ? nb : 1);
  em_status st = em_array_to_host(a, h, nb);
  CHECK(st == EM_OK, "to_host: %s", em_last_error());
  if (st != EM_OK) {
    free(h);
    return NULL;
  }
  return h;
}

static void layout(int nd, const int64_t *sh, int axis, int64_t *outer,
                   int64_t *n, int64_t *inner) {
  *outer = *inner = 1;
  for (int i = 0; i < axis; i++) *outer *= sh[i];
  for (int i = axis + 1; i < nd; i++) *inner *= sh[i];
  *n = sh[axis];
}

/* ---- cumulative reference ---------------------------------------------------
 */

typedef enum { C_SUM, C_PROD, C_MAX, C_MIN } ckind;
static const char *CK_NAME[] = {"cumulative_sum", "cumulative_product",
                                "cumulative_max", "cumulative_min"};

static em_status run_cum(ckind k, em_array **o, em_array *a, int axis,
                         bool rev) {
  switch (k) {
    case C_SUM:
      return em_cumulative_sum(o, a, axis, rev);
    case C_PROD:
      return em_cumulative_product(o, a, axis, rev);
    case C_MAX:
      return em_cumulative_max(o, a, axis, rev);
    default:
      return em_cumulative_min(o, a, axis, rev);
  }
}

/* Round to sig significant bits, ties to even (normal range only: the
 * data here never reaches subnormals or overflow). */
static double round_sig(em_dtype t, double x) {
  int sig = t == EM_F16 ? 11 : t == EM_BF16 ? 8 : 0;
  if (!sig || x == 0 || !isfinite(x)) return x;
  int e;
  frexp(x, &e);
  double ulp = ldexp(1, e - sig);
  return nearbyint(x / ulp) * ulp;
}

/* Reference for real dtypes: want[] gets raw bits. Floats accumulate in
 * double and are encoded exactly (callers use exact data). */
static void ref_cum(ckind k, em_dtype t, const void *x, void *want, int nd,
                    const int64_t *sh, int axis, bool rev) {
  int64_t outer, n, inner;
  layout(nd, sh, axis, &outer, &n, &inner);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < inner; j++) {
      uint64_t ua = 0;
      int64_t sa = 0;
      double da = 0;
      for (int64_t s = 0; s < n; s++) {
        int64_t i = rev ? n - 1 - s : s;
        int64_t f = (o * n + i) * inner + j;
        uint64_t u = get_raw(t, x, f);
        if (is_flt(t)) {
          double v = to_dbl(t, u);
          if (s == 0)
            da = v;
          else if (k == C_SUM)
            da += v;
          else if (k == C_PROD)
            da *= v;
          else if (isnan(da) || isnan(v))
            da = NAN;
          else if (k == C_MAX)
            da = v > da ? v : da;
          else
            da = v < da ? v : da;
          put_raw(t, want, f,
                  isnan(da) ? nan_bits(t, 0, false)
                            : from_dbl(t, round_sig(t, da)));
        } else if (is_uns(t)) {
          if (s == 0)
            ua = u;
          else if (k == C_SUM)
            ua += u;
          else if (k == C_PROD)
            ua *= u;
          else if (k == C_MAX)
            ua = u > ua ? u : ua;
          else
            ua = u < ua ? u : ua;
          put_raw(t, want, f, ua & mask_of(t));
        } else {
          int64_t v = sext(t, u);
          if (s == 0)
            sa = v;
          else if (k == C_SUM)
            sa = (int64_t)((uint64_t)sa + (uint64_t)v);
          else if (k == C_PROD)
            sa = (int64_t)((uint64_t)sa * (uint64_t)v);
          else if (k == C_MAX)
            sa = v > sa ? v : sa;
          else
            sa = v < sa ? v : sa;
          sa = sext(t, (uint64_t)sa);
          put_raw(t, want, f, (uint64_t)sa & mask_of(t));
        }
      }
    }
}

/* Exact-friendly data: ints any bits; floats small integers (sum, max,
 * min; one in `specials` an inf, -inf or NaN) or powers of two
 * (product). */
static void fill_cum(ckind k, em_dtype t, void *x, int64_t n, int specials) {
  for (int64_t i = 0; i < n; i++) {
    uint64_t u;
    if (!is_flt(t))
      u = rnd() & mask_of(t);
    else if (k == C_PROD) {
      static const double P[] = {0.5, 1, 2, -0.5, -1, -2, 1, 1};
      u = from_dbl(t, P[rnd() % 8]);
    } else
      u = from_dbl(t, (double)rnd_in(-8, 8));
    if (specials && is_flt(t) && rnd() % (uint64_t)specials == 0) {
      int c = (int)(rnd() % 3);
      u = c == 0 ? nan_bits(t, rnd(), rnd() & 1)
                 : from_dbl(t, c == 1 ? INFINITY : -INFINITY);
    }
    put_raw(t, x, i, u);
  }
}

static bool same_elem(em_dtype t, uint64_t a, uint64_t b) {
  if (raw_isnan(t, a) || raw_isnan(t, b))
    return raw_isnan(t, a) && raw_isnan(t, b);
  if (is_flt(t)) return to_dbl(t, a) == to_dbl(t, b);
  return a == b;
}

static void check_cum(ckind k, em_dtype t, int nd, const int64_t *sh, int axis,
                      bool rev, const int *perm, int specials) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= sh[i];
  size_t nb = (size_t)(n ? n : 1) * (size_t)esz(t);
  void *x = malloc(nb), *want = malloc(nb);
  fill_cum(k, t, x, n, specials);
  ref_cum(k, t, x, want, nd, sh, axis, rev);
  em_array *a = mk_view(t, nd, sh, x, perm), *o = NULL;
  em_status st = run_cum(k, &o, a, axis, rev);
  CHECK(st == EM_OK, "%s %s: %s", CK_NAME[k], dn(t), em_last_error());
  if (st == EM_OK) {
    CHECK(em_array_dtype(o) == t && em_array_ndim(o) == nd, "%s %s dtype",
          CK_NAME[k], dn(t));
    void *got = fetch(o);
    int64_t bad = -1;
    for (int64_t i = 0; got && i < n && bad < 0; i++)
      if (!same_elem(t, get_raw(t, got, i), get_raw(t, want, i))) bad = i;
    CHECK(got && bad < 0,
          "%s %s axis %d rev %d perm %d: element %lld got %#llx want %#llx",
          CK_NAME[k], dn(t), axis, rev, perm != NULL, (long long)bad,
          bad >= 0 ? (unsigned long long)get_raw(t, got, bad) : 0ull,
          bad >= 0 ? (unsigned long long)get_raw(t, want, bad) : 0ull);
    free(got);
  }
  em_array_release(o);
  em_array_release(a);
  free(x);
  free(want);
}

static void test_cumulative(void) {
  const int64_t s3[3] = {5, 7, 3};
  const int p3[3] = {2, 0, 1};
  for (int di = 0; di < NREAL; di++) {
    em_dtype t = REAL[di];
    for (int k = 0; k < 4; k++)
      for (int axis = -1; axis < 3; axis++)
        for (int rev = 0; rev < 2; rev++) {
          check_cum((ckind)k, t, 3, s3, axis < 0 ? 2 : axis, rev, NULL,
                    k >= C_MAX ? 9 : 0);
          if (axis == -1) { /* negative axis accepted */
            em_array *a = NULL, *o = NULL;
            uint8_t buf[105 * 8] = {0};
            a = mk(t, 3, s3, buf);
            CHECK(run_cum((ckind)k, &o, a, -1, rev) == EM_OK,
                  "negative axis: %s", em_last_error());
            em_array_release(o);
            em_array_release(a);
          }
        }
    for (int k = 0; k < 4; k++) {
      /* non-contiguous input, 1-D, a long row, wide inner (> one block) */
      check_cum((ckind)k, t, 3, s3, 1, k & 1, p3, k >= C_MAX ? 9 : 0);
      const int64_t s1[1] = {11};
      check_cum((ckind)k, t, 1, s1, 0, k & 1, NULL, 0);
      /* contiguous rows (the vector scan), with a tail, both directions */
      const int64_t sv[2] = {3, 45}, sv2[2] = {2, 1001};
      for (int rev = 0; rev < 2; rev++) {
        check_cum((ckind)k, t, 2, sv, 1, rev, NULL, k >= C_MAX ? 30 : 0);
        if (k != C_PROD || !is_flt(t))
          check_cum((ckind)k, t, 2, sv2, 1, rev, NULL, k >= C_MAX ? 400 : 0);
      }
      if (k != C_PROD || !is_flt(t)) {
        const int64_t sl[2] = {3, 3000}, sw[3] = {2, 9, 1100};
        check_cum((ckind)k, t, 2, sl, 1, k & 1, NULL, 0);
        check_cum((ckind)k, t, 3, sw, 1, !(k & 1), NULL, k >= C_MAX ? 300 : 0);
        const int64_t sp[2] = {64, 2048}; /* many rows: the thread pool */
        check_cum((ckind)k, t, 2, sp, 1, false, NULL, 0);
        check_cum((ckind)k, t, 2, sp, 0, true, NULL, 0);
      }
      /* zero-size */
      const int64_t z1[2] = {0, 4}, z2[2] = {3, 0};
      check_cum((ckind)k, t, 2, z1, 0, false, NULL, 0);
      check_cum((ckind)k, t, 2, z2, 0, true, NULL, 0);
      check_cum((ckind)k, t, 2, z2, 1, false, NULL, 0);
    }
  }

  /* Nx doc examples (s32 iota 3x3) */
  {
    int32_t io[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    const int64_t s[2] = {3, 3};
    em_array *a = mk(EM_S32, 2, s, io);
    struct {
      ckind k;
      int axis;
      bool rev;
      int32_t want[9];
    } cases[] = {
        {C_SUM, 0, false, {0, 1, 2, 3, 5, 7, 9, 12, 15}},
        {C_SUM, 1, true, {3, 3, 2, 12, 9, 5, 21, 15, 8}},
        {C_PROD, 0, true, {0, 28, 80, 18, 28, 40, 6, 7, 8}},
        {C_PROD, 1, false, {0, 0, 0, 3, 12, 60, 6, 42, 336}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
      em_array *o = NULL;
      CHECK(run_cum(cases[c].k, &o, a, cases[c].axis, cases[c].rev) == EM_OK,
            "doc example");
      int32_t *g = o ? fetch(o) : NULL;
      CHECK(g && !memcmp(g, cases[c].want, sizeof cases[c].want),
            "doc example %zu", c);
      free(g);
      em_array_release(o);
    }
    em_array_release(a);
  }

  /* NaN propagation and wrap-around by hand */
  {
    float x[5] = {1, NAN, 3, -INFINITY, 0};
    const int64_t s[1] = {5};
    em_array *a = mk(EM_F32, 1, s, x), *o = NULL;
    CHECK(em_cumulative_max(&o, a, 0, false) == EM_OK, "cummax nan");
    float *g = o ? fetch(o) : NULL;
    CHECK(g && g[0] == 1 && isnan(g[1]) && isnan(g[2]) && isnan(g[3]) &&
              isnan(g[4]),
          "cummax stays NaN");
    free(g);
    em_array_release(o);
    CHECK(em_cumulative_min(&o, a, 0, true) == EM_OK, "cummin rev nan");
    g = o ? fetch(o) : NULL;
    CHECK(g && isnan(g[0]) && isnan(g[1]) && g[2] == -INFINITY &&
              g[3] == -INFINITY && g[4] == 0,
          "reverse cummin NaN from the back");
    free(g);
    em_array_release(o);
    em_array_release(a);

    uint8_t u[4] = {200, 100, 250, 3};
    a = mk(EM_U8, 1, s, (uint8_t[5]){200, 100, 250, 3, 0});
    CHECK(em_cumulative_sum(&o, a, 0, false) == EM_OK, "u8 wrap");
    uint8_t *gu = o ? fetch(o) : NULL;
    CHECK(gu && gu[0] == 200 && gu[1] == 44 && gu[2] == 38 && gu[3] == 41,
          "u8 sum wraps");
    free(gu);
    em_array_release(o);
    em_array_release(a);
    (void)u;

    int32_t si[3] = {INT32_MAX, 2, -7};
    const int64_t s3b[1] = {3};
    a = mk(EM_S32, 1, s3b, si);
    CHECK(em_cumulative_sum(&o, a, 0, false) == EM_OK, "s32 wrap");
    int32_t *gs = o ? fetch(o) : NULL;
    CHECK(gs && gs[1] == INT32_MIN + 1 && gs[2] == INT32_MAX - 5,
          "s32 sum wraps");
    free(gs);
    em_array_release(o);
    em_array_release(a);
  }

  /* -0.0 sums stay -0.0 (vector and scalar paths, both directions) */
  for (int rev = 0; rev < 2; rev++) {
    float z[21];
    double zd[21];
    for (int i = 0; i < 21; i++) {
      z[i] = -0.0f;
      zd[i] = -0.0;
    }
    const int64_t s[1] = {21};
    em_array *a = mk(EM_F32, 1, s, z), *b = mk(EM_F64, 1, s, zd), *o = NULL,
             *p = NULL;
    CHECK(em_cumulative_sum(&o, a, 0, rev) == EM_OK &&
              em_cumulative_sum(&p, b, 0, rev) == EM_OK,
          "-0.0 sums");
    float *g = o ? fetch(o) : NULL;
    double *gd = p ? fetch(p) : NULL;
    bool ok = g && gd;
    for (int i = 0; ok && i < 21; i++)
      ok = g[i] == 0 && signbit(g[i]) && gd[i] == 0 && signbit(gd[i]);
    CHECK(ok, "cumulative_sum of -0.0 keeps the sign (rev %d)", rev);
    free(g);
    free(gd);
    em_array_release(o);
    em_array_release(p);
    em_array_release(a);
    em_array_release(b);
  }

  /* f32 long row with non-exact data: close to a double reference */
  {
    int64_t n = 200000;
    float *x = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++)
      x[i] = (float)((double)(rnd() >> 11) * 0x1p-53);
    const int64_t s[1] = {n};
    em_array *a = mk(EM_F32, 1, s, x), *o = NULL;
    CHECK(em_cumulative_sum(&o, a, 0, false) == EM_OK, "f32 long");
    float *g = o ? fetch(o) : NULL;
    double acc = 0, worst = 0;
    for (int64_t i = 0; g && i < n; i++) {
      acc += x[i];
      double e = fabs(g[i] - acc) / acc;
      if (e > worst) worst = e;
    }
    CHECK(g && worst < 1e-3, "f32 cumsum rel err %g", worst);
    free(g);
    free(x);
    em_array_release(o);
    em_array_release(a);
  }

  /* complex: sum and product, against double complex */
  for (int ci = 0; ci < 2; ci++) {
    em_dtype t = ci ? EM_C128 : EM_C64;
    const int64_t s[2] = {4, 9};
    for (int axis = 0; axis < 2; axis++)
      for (int rev = 0; rev < 2; rev++)
        for (int k = 0; k < 2; k++) {
          double complex xv[36];
          for (int i = 0; i < 36; i++)
            xv[i] = (double)rnd_in(-2, 2) + I * (double)rnd_in(-2, 2);
          char buf[36 * 16];
          for (int i = 0; i < 36; i++) {
            if (ci)
              memcpy(buf + i * 16, &xv[i], 16);
            else {
              float complex f = (float complex)xv[i];
              memcpy(buf + i * 8, &f, 8);
            }
          }
          int perm[2] = {1, 0};
          em_array *a = mk_view(t, 2, s, buf, rev ? perm : NULL), *o = NULL;
          CHECK(run_cum((ckind)k, &o, a, axis, rev) == EM_OK, "complex %s",
                em_last_error());
          char *g = o ? fetch(o) : NULL;
          int64_t outer, n, inner;
          layout(2, s, axis, &outer, &n, &inner);
          double worst = 0;
          for (int64_t oo = 0; g && oo < outer; oo++)
            for (int64_t j = 0; j < inner; j++) {
              double complex acc = 0;
              for (int64_t st = 0; st < n; st++) {
                int64_t i = rev ? n - 1 - st : st, f = (oo * n + i) * inner + j;
                acc = st == 0 ? xv[f] : k == 0 ? acc + xv[f] : acc * xv[f];
                double complex gv;
                if (ci)
                  memcpy(&gv, g + f * 16, 16);
                else {
                  float complex gf;
                  memcpy(&gf, g + f * 8, 8);
                  gv = gf;
                }
                double e = cabs(gv - acc) / (1 + cabs(acc));
                if (e > worst) worst = e;
              }
            }
          CHECK(g && worst < (ci ? 1e-12 : 1e-5), "complex %s %s err %g",
                CK_NAME[k], dn(t), worst);
          free(g);
          em_array_release(o);
          em_array_release(a);
        }
  }
}

/* ---- sort reference
 * ---------------------------------------------------------- */

/* Nx order: -1 / 0 / 1; NaN above everything, NaNs equal, -0 == 0. */
static int cmp3(em_dtype t, uint64_t a, uint64_t b) {
  if (is_flt(t)) {
    bool na = raw_isnan(t, a), nb = raw_isnan(t, b);
    if (na || nb) return na == nb ? 0 : na ? 1 : -1;
    double x = to_dbl(t, a), y = to_dbl(t, b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (is_uns(t)) return a < b ? -1 : a > b ? 1 : 0;
  int64_t x = sext(t, a), y = sext(t, b);
  return x < y ? -1 : x > y ? 1 : 0;
}
/* Nx's comparator: "a goes first (or ties)". */
static bool nx_le(em_dtype t, uint64_t a, uint64_t b, bool desc) {
  int c = cmp3(t, a, b);
  return desc ? c >= 0 : c <= 0;
}

/* Stable merge sort of idx[0..n) by keys[idx] (Enum.sort semantics). */
static void msort(em_dtype t, const uint64_t *keys, int64_t *idx, int64_t *tmp,
                  int64_t n, bool desc) {
  if (n < 2) return;
  int64_t h = n / 2;
  msort(t, keys, idx, tmp, h, desc);
  msort(t, keys, idx + h, tmp, n - h, desc);
  int64_t i = 0, j = h, k = 0;
  while (i < h && j < n)
    tmp[k++] = nx_le(t, keys[idx[i]], keys[idx[j]], desc) ? idx[i++] : idx[j++];
  while (i < h) tmp[k++] = idx[i++];
  while (j < n) tmp[k++] = idx[j++];
  memcpy(idx, tmp, (size_t)n * sizeof *idx);
}

/* Data for sorting: dups (small ranges), full-range bits, and for floats
 * NaNs of any payload/sign, +-inf, +-0, subnormals. mode: 0 mixed,
 * 1 full random bits, 2 few distinct values, 3 already ascending,
 * 4 already descending. */
static uint64_t sort_elem(em_dtype t, int mode) {
  if (mode == 1 || (!is_flt(t) && mode == 0 && rnd() % 2))
    return rnd() & mask_of(t);
  if (mode == 2) {
    int64_t v = rnd_in(-2, 2);
    if (is_uns(t)) v += 2;
    return from_dbl(t, (double)v);
  }
  if (!is_flt(t)) {
    int64_t v = rnd_in(-40, 40);
    if (is_uns(t)) v += 40;
    return from_dbl(t, (double)v);
  }
  switch (rnd() % 12) {
    case 0:
      return nan_bits(t, rnd(), rnd() & 1);
    case 1:
      return from_dbl(t, rnd() & 1 ? INFINITY : -INFINITY);
    case 2:
      return from_dbl(t, rnd() & 1 ? 0.0 : -0.0);
    case 3:
      return 1; /* smallest subnormal */
    case 4:
      return (1ull << (bits(t) - 1)) | 1; /* its negative */
    default: {
      double v = (double)rnd_in(-64, 64) / 4;
      return from_dbl(t, v);
    }
  }
}

static void fill_sort(em_dtype t, void *x, int64_t n, int mode,
                      int64_t rowlen) {
  for (int64_t i = 0; i < n; i++) {
    uint64_t u;
    if (mode >= 3) { /* monotone (with ties) along rows of the last axis */
      double v = floor((double)(i % rowlen) * 100 / (double)rowlen);
      u = from_dbl(t, mode == 3 ? v - (is_uns(t) ? 0 : 50) : 100 - v);
    } else
      u = sort_elem(t, mode);
    put_raw(t, x, i, u);
  }
}

/* Runs sort and argsort of x (logical shape sh) along axis and compares
 * both with the reference. */
static void check_sort(em_dtype t, int nd, const int64_t *sh, int axis,
                       bool desc, int mode, const int *perm) {
  int64_t total = 1;
  for (int i = 0; i < nd; i++) total *= sh[i];
  int64_t outer, n, inner;
  layout(nd, sh, axis, &outer, &n, &inner);
  size_t nb = (size_t)(total ? total : 1) * (size_t)esz(t);
  void *x = malloc(nb), *want = malloc(nb);
  int64_t *widx = malloc((size_t)(total ? total : 1) * 8);
  fill_sort(t, x, total, mode, sh[nd - 1]);
  uint64_t *row = malloc((size_t)(n ? n : 1) * 8);
  int64_t *idx = malloc((size_t)(n ? n : 1) * 8),
          *tmp = malloc((size_t)(n ? n : 1) * 8);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < inner; j++) {
      for (int64_t i = 0; i < n; i++) {
        row[i] = get_raw(t, x, (o * n + i) * inner + j);
        idx[i] = i;
      }
      msort(t, row, idx, tmp, n, desc);
      for (int64_t i = 0; i < n; i++) {
        int64_t f = (o * n + i) * inner + j;
        put_raw(t, want, f, row[idx[i]]);
        widx[f] = idx[i];
      }
    }
  em_array *a = mk_view(t, nd, sh, x, perm), *s = NULL, *g = NULL;
  em_status st = em_sort(&s, a, axis, desc);
  CHECK(st == EM_OK, "sort %s: %s", dn(t), em_last_error());
  em_status st2 = em_argsort(&g, a, axis - nd, desc); /* negative axis */
  CHECK(st2 == EM_OK, "argsort %s: %s", dn(t), em_last_error());
  if (st == EM_OK) {
    CHECK(em_array_dtype(s) == t, "sort dtype");
    void *got = fetch(s);
    int64_t bad = -1;
    for (int64_t i = 0; got && i < total && bad < 0; i++)
      if (get_raw(t, got, i) != get_raw(t, want, i)) bad = i;
    CHECK(got && bad < 0,
          "sort %s shape[%lld..] axis %d desc %d mode %d perm %d: element "
          "%lld got %#llx want %#llx",
          dn(t), (long long)sh[0], axis, desc, mode, perm != NULL,
          (long long)bad,
          bad >= 0 ? (unsigned long long)get_raw(t, got, bad) : 0ull,
          bad >= 0 ? (unsigned long long)get_raw(t, want, bad) : 0ull);
    free(got);
  }
  if (st2 == EM_OK) {
    CHECK(em_array_dtype(g) == EM_S64, "argsort dtype s64");
    int64_t *got = fetch(g);
    int64_t bad = -1;
    for (int64_t i = 0; got && i < total && bad < 0; i++)
      if (got[i] != widx[i]) bad = i;
    CHECK(got && bad < 0,
          "argsort %s n %lld axis %d desc %d mode %d perm %d: element %lld "
          "got %lld want %lld",
          dn(t), (long long)n, axis, desc, mode, perm != NULL, (long long)bad,
          bad >= 0 ? (long long)got[bad] : 0,
          bad >= 0 ? (long long)widx[bad] : 0);
    free(got);
  }
  em_array_release(s);
  em_array_release(g);
  em_array_release(a);
  free(x);
  free(want);
  free(widx);
  free(row);
  free(idx);
  free(tmp);
}

static void test_sort(void) {
  for (int di = 0; di < NREAL; di++) {
    em_dtype t = REAL[di];
    const int64_t s3[3] = {4, 37, 5};
    const int p3[3] = {1, 2, 0};
    for (int axis = 0; axis < 3; axis++)
      for (int desc = 0; desc < 2; desc++) {
        check_sort(t, 3, s3, axis, desc, 0, NULL);
        check_sort(t, 3, s3, axis, desc, 2, p3);
      }
    /* row lengths around the insertion/radix switch, and long rows */
    const int64_t lens[] = {1, 2, 31, 32, 33, 64, 300, 1000};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
      for (int mode = 0; mode < 5; mode++) {
        const int64_t s2[2] = {3, lens[li]};
        check_sort(t, 2, s2, 1, mode & 1, mode, NULL);
      }
    const int64_t sl[1] = {70000};
    check_sort(t, 1, sl, 0, false, 0, NULL);
    check_sort(t, 1, sl, 0, true, 1, NULL);
    check_sort(t, 1, sl, 0, false, 4, NULL);
    /* already in the wanted order (ties included) */
    const int64_t so[2] = {2, 1000};
    check_sort(t, 1, sl, 0, true, 4, NULL);
    check_sort(t, 2, so, 1, false, 3, NULL);
    check_sort(t, 2, so, 1, true, 4, NULL);
    const int64_t sm[2] = {400, 100}; /* rows across threads */
    check_sort(t, 2, sm, 1, true, 0, NULL);
    check_sort(t, 2, sm, 0, false, 1, NULL);
    const int64_t sb[2] = {2, 300};
    const int pb[2] = {1, 0};
    check_sort(t, 2, sb, 0, true, 2, pb);
    /* zero-size */
    const int64_t z1[2] = {0, 5}, z2[2] = {4, 0};
    check_sort(t, 2, z1, 0, false, 0, NULL);
    check_sort(t, 2, z1, 1, true, 0, NULL);
    check_sort(t, 2, z2, 1, false, 0, NULL);
  }

  /* Nx doc examples */
  {
    float x[4] = {NAN, -INFINITY, 0.0f, INFINITY};
    const int64_t s[1] = {4};
    em_array *a = mk(EM_F32, 1, s, x), *o = NULL;
    CHECK(em_sort(&o, a, 0, false) == EM_OK, "sort doc");
    float *g = o ? fetch(o) : NULL;
    CHECK(
        g && g[0] == -INFINITY && g[1] == 0 && g[2] == INFINITY && isnan(g[3]),
        "sort [nan,-inf,0,inf] asc");
    free(g);
    em_array_release(o);
    CHECK(em_sort(&o, a, 0, true) == EM_OK, "sort doc desc");
    g = o ? fetch(o) : NULL;
    CHECK(
        g && isnan(g[0]) && g[1] == INFINITY && g[2] == 0 && g[3] == -INFINITY,
        "sort [nan,-inf,0,inf] desc");
    free(g);
    em_array_release(o);
    em_array_release(a);

    float y[4] = {NAN, -INFINITY, INFINITY, 0.0f};
    a = mk(EM_F32, 1, s, y);
    CHECK(em_argsort(&o, a, 0, false) == EM_OK, "argsort doc");
    int64_t *gi = o ? fetch(o) : NULL;
    CHECK(gi && gi[0] == 1 && gi[1] == 3 && gi[2] == 2 && gi[3] == 0,
          "argsort asc doc");
    free(gi);
    em_array_release(o);
    CHECK(em_argsort(&o, a, 0, true) == EM_OK, "argsort desc doc");
    gi = o ? fetch(o) : NULL;
    CHECK(gi && gi[0] == 0 && gi[1] == 2 && gi[2] == 3 && gi[3] == 1,
          "argsort desc doc");
    free(gi);
    em_array_release(o);
    em_array_release(a);

    /* stable ties, both directions; -0.0 ties with 0.0 */
    float z[6] = {1, -0.0f, 2, 0.0f, 1, -0.0f};
    const int64_t s6[1] = {6};
    a = mk(EM_F32, 1, s6, z);
    CHECK(em_argsort(&o, a, 0, true) == EM_OK, "argsort ties");
    gi = o ? fetch(o) : NULL;
    const int64_t wd[6] = {2, 0, 4, 1, 3, 5};
    CHECK(gi && !memcmp(gi, wd, sizeof wd), "desc ties keep input order");
    free(gi);
    em_array_release(o);
    CHECK(em_sort(&o, a, 0, false) == EM_OK, "sort zeros");
    g = o ? fetch(o) : NULL;
    CHECK(g && signbit(g[0]) && !signbit(g[1]) && signbit(g[2]) && g[3] == 1,
          "sort keeps -0.0/0.0 in input order");
    free(g);
    em_array_release(o);
    em_array_release(a);
  }

  /* a long single row: permutation, order and stability by property */
  {
    int64_t n = 1 << 20;
    float *x = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) x[i] = (float)rnd_in(-5000, 5000) * 0.25f;
    const int64_t s[1] = {n};
    em_array *a = mk(EM_F32, 1, s, x), *o = NULL, *g = NULL;
    CHECK(em_sort(&o, a, 0, false) == EM_OK, "sort 1M");
    CHECK(em_argsort(&g, a, 0, true) == EM_OK, "argsort 1M");
    float *v = o ? fetch(o) : NULL;
    int64_t *ix = g ? fetch(g) : NULL;
    bool ok = v && ix;
    char *seen = calloc((size_t)n, 1);
    for (int64_t i = 0; ok && i < n; i++) {
      if (i && v[i] < v[i - 1]) ok = false;
      if (ix[i] < 0 || ix[i] >= n || seen[ix[i]])
        ok = false;
      else
        seen[ix[i]] = 1;
      if (ok && i &&
          (x[ix[i]] > x[ix[i - 1]] ||
           (x[ix[i]] == x[ix[i - 1]] && ix[i] < ix[i - 1])))
        ok = false;
    }
    CHECK(ok, "1M-element sort/argsort order, permutation, stability");
    free(seen);
    free(v);
    free(ix);
    free(x);
    em_array_release(o);
    em_array_release(g);
    em_array_release(a);
  }
}

/* ---- top_k
 * ------------------------------------------------------------------- */

static void test_top_k(void) {
  {
    float x[4] = {NAN, -INFINITY, INFINITY, 0.0f};
    const int64_t s[1] = {4};
    em_array *a = mk(EM_F32, 1, s, x), *v = NULL, *i = NULL;
    CHECK(em_top_k(&v, &i, a, 3) == EM_OK, "top_k doc: %s", em_last_error());
    float *gv = v ? fetch(v) : NULL;
    int64_t *gi = i ? fetch(i) : NULL;
    CHECK(v && em_array_size(v) == 3 && em_array_dtype(i) == EM_S64,
          "top_k shapes");
    CHECK(gv && isnan(gv[0]) && gv[1] == INFINITY && gv[2] == 0,
          "top_k doc values");
    CHECK(gi && gi[0] == 0 && gi[1] == 2 && gi[2] == 3, "top_k doc indices");
    free(gv);
    free(gi);
    em_array_release(v);
    em_array_release(i);
    em_array_release(a);
  }
  for (int di = 0; di < NREAL; di++) {
    em_dtype t = REAL[di];
    const int64_t sh[3] = {3, 4, 50};
    int64_t total = 600, n = 50;
    void *x = malloc((size_t)total * (size_t)esz(t));
    fill_sort(t, x, total, 0, n);
    em_array *a = mk(t, 3, sh, x), *v = NULL, *i = NULL;
    for (int k = 1; k <= 50; k += 24) {
      em_status st = em_top_k(&v, &i, a, k);
      CHECK(st == EM_OK, "top_k %s: %s", dn(t), em_last_error());
      if (st != EM_OK) continue;
      CHECK(em_array_ndim(v) == 3 && em_array_shape(v)[2] == k &&
                em_array_shape(i)[2] == k && em_array_shape(i)[0] == 3,
            "top_k shape");
      char *gv = fetch(v);
      int64_t *gi = fetch(i);
      uint64_t row[50];
      int64_t idx[50], tmp[50];
      bool ok = gv && gi;
      for (int64_t r = 0; ok && r < 12; r++) {
        for (int64_t j = 0; j < n; j++) {
          row[j] = get_raw(t, x, r * n + j);
          idx[j] = j;
        }
        msort(t, row, idx, tmp, n, true);
        for (int j = 0; j < k; j++)
          if (gi[r * k + j] != idx[j] ||
              get_raw(t, gv, r * k + j) != row[idx[j]])
            ok = false;
      }
      CHECK(ok, "top_k %s k %d matches the stable descending reference", dn(t),
            k);
      free(gv);
      free(gi);
      em_array_release(v);
      em_array_release(i);
    }
    em_array_release(a);
    free(x);
  }
}

/* ---- errors ----------------------------------------------------------------
 */

static void expect_err(em_status st, em_array *const *out, const char *op) {
  em_array *o = *out;
  CHECK(st == EM_ERR_ARGUMENT, "%s: expected an argument error, got %s", op,
        em_status_name(st));
  CHECK(o == NULL, "%s: out not NULL on error", op);
  char tag[48];
  snprintf(tag, sizeof tag, "[%s]", op);
  CHECK(strstr(em_last_error(), tag) != NULL, "%s: message '%s'", op,
        em_last_error());
}

static void test_errors(void) {
  const int64_t s[2] = {2, 3};
  double complex c[6] = {0};
  float f[6] = {0};
  em_array *ca = mk(EM_C128, 2, s, c), *fa = mk(EM_F32, 2, s, f);
  em_array *sc = NULL;
  em_full_scalar(&sc, EM_F32, 1.0, em_cpu());
  em_array *o = (em_array *)1, *o2 = (em_array *)1;

  expect_err(em_cumulative_max(&o, ca, 0, false), &o, "cumulative_max");
  o = (em_array *)1;
  expect_err(em_cumulative_min(&o, ca, 0, false), &o, "cumulative_min");
  o = (em_array *)1;
  expect_err(em_cumulative_sum(&o, fa, 2, false), &o, "cumulative_sum");
  o = (em_array *)1;
  expect_err(em_cumulative_product(&o, fa, -3, false), &o,
             "cumulative_product");
  o = (em_array *)1;
  expect_err(em_cumulative_sum(&o, sc, 0, false), &o, "cumulative_sum");
  o = (em_array *)1;
  expect_err(em_cumulative_sum(&o, NULL, 0, false), &o, "cumulative_sum");
  CHECK(em_cumulative_sum(NULL, fa, 0, false) == EM_ERR_ARGUMENT, "NULL out");

  o = (em_array *)1;
  expect_err(em_sort(&o, ca, 0, false), &o, "sort");
  o = (em_array *)1;
  expect_err(em_argsort(&o, ca, 1, true), &o, "argsort");
  o = (em_array *)1;
  expect_err(em_sort(&o, fa, 2, false), &o, "sort");
  o = (em_array *)1;
  expect_err(em_argsort(&o, fa, -3, false), &o, "argsort");
  o = (em_array *)1;
  expect_err(em_sort(&o, sc, 0, false), &o, "sort");
  o = (em_array *)1;
  expect_err(em_argsort(&o, NULL, 0, false), &o, "argsort");
  CHECK(em_sort(NULL, fa, 0, false) == EM_ERR_ARGUMENT, "NULL out");

  o = (em_array *)1;
  o2 = (em_array *)1;
  em_status st = em_top_k(&o, &o2, fa, 0);
  expect_err(st, &o, "top_k");
  CHECK(o2 == NULL, "top_k indices NULL on error");
  o = o2 = (em_array *)1;
  expect_err(em_top_k(&o, &o2, fa, 4), &o, "top_k");
  o = o2 = (em_array *)1;
  expect_err(em_top_k(&o, &o2, ca, 1), &o, "top_k");
  o = o2 = (em_array *)1;
  expect_err(em_top_k(&o, &o2, sc, 1), &o, "top_k");
  CHECK(em_top_k(NULL, &o2, fa, 1) == EM_ERR_ARGUMENT, "top_k NULL out");

  em_array_release(ca);
  em_array_release(fa);
  em_array_release(sc);
}

/* Out of memory at each allocation of an evaluation in turn: the sort
 * fails cleanly (EM_ERR_OOM, a message) or succeeds, and at least once the
 * failure is the kernel's scratch ("[sort]"/"[argsort]"). */
static void test_oom(void) {
  for (int arg = 0; arg < 2; arg++)
    for (int rows = 0; rows < 2; rows++) { /* network / radix rows */
      const int64_t s[2] = {4, rows ? 5000 : 100};
      float *x = malloc(sizeof(float) * 4 * 5000);
      for (int i = 0; i < 4 * 5000; i++) x[i] = (float)rnd_in(-99, 99);
      em_array *a = mk(EM_F32, 2, s, x);
      free(x);
      bool kernel_msg = false;
      for (long k = 0; k < 6; k++) {
        em_array *o = NULL;
        em_status st =
            arg ? em_argsort(&o, a, 1, false) : em_sort(&o, a, 1, false);
        CHECK(st == EM_OK, "oom setup");
        em_memory_fail_after(em_cpu(), k);
        st = em_eval(&o, 1);
        em_memory_fail_after(em_cpu(), -1);
        CHECK(st == EM_OK || st == EM_ERR_OOM, "oom %ld: %s", k,
              em_status_name(st));
        if (st == EM_ERR_OOM &&
            strstr(em_last_error(), arg ? "[argsort]" : "[sort]"))
          kernel_msg = true;
        em_array_release(o);
      }
      CHECK(kernel_msg, "%s: a scratch allocation failure is reported",
            arg ? "argsort" : "sort");
      em_array_release(a);
    }
}

int main(void) {
  test_cumulative();
  test_sort();
  test_top_k();
  test_errors();
  test_oom();
  return TEST_SUMMARY();
}
