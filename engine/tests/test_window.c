/* test_window.c — window_sum/product/max/min and window_scatter_max/min
 * through the public API, against naive references written here:
 *  - reductions: every output visits every tap of its window in row-major
 *    order, skipping taps in the padding (the identity), accumulating in
 *    uint64 (integers: wrapping checked bit for bit on full-range random
 *    data), double (floats, on data whose results are exact, so f16/bf16/
 *    f32 are checked exactly; plus normal data within a tolerance) and
 *    double complex;
 *  - max/min propagate NaN; windows wholly in the padding give the
 *    identity (-inf / lowest, +inf / highest); -0.0 alone sums to +0.0;
 *  - scatter: each window picks the first in-bounds tap, then any later
 *    tap x with x >= best (max) / x <= best (min), so ties go to the last
 *    tap and NaN is only picked first (Nx's BinaryBackend select); padding
 *    is never picked; source values are added at the picks onto init;
 *    input and source dtypes may differ;
 *  - random shapes of rank 0..4 with random windows, strides, padding and
 *    dilations (trailing untouched axes, strided and dilated taps, rows
 *    longer than the kernel's blocks), every dtype (complex for sum and
 *    product), non-contiguous inputs (transposed views), empty inputs made
 *    room for by padding, pooling-sized inputs for the thread pool;
 *  - Nx's doc examples;
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

static uint64_t rng_s = 0x5DEECE66Dull;
static uint64_t rnd(void) {
  uint64_t z = (rng_s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static int64_t rnd_in(int64_t lo, int64_t hi) { /* inclusive */
  return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}
static double normal(void) {
  double u = ((double)(rnd() >> 11) + 0.5) * 0x1p-53;
  double v = (double)(rnd() >> 11) * 0x1p-53;
  return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* ---- dtypes and raw elements ----------------------------------------------
 */

static const em_dtype ALL[] = {EM_U8,  EM_U16, EM_U32, EM_U64, EM_S8,
                               EM_S16, EM_S32, EM_S64, EM_F16, EM_BF16,
                               EM_F32, EM_F64, EM_C64, EM_C128};
#define NALL 14
#define NREAL 12

static int esz(em_dtype t) { return (int)em_dtype_size(t); }
static int bits(em_dtype t) { return esz(t) * 8; }
static bool is_flt(em_dtype t) { return em_dtype_is_float(t); }
static bool is_cpx(em_dtype t) { return em_dtype_is_complex(t); }
static bool is_uns(em_dtype t) {
  return em_dtype_is_int(t) && !em_dtype_is_signed(t);
}
static const char *dn(em_dtype t) { return em_dtype_name(t); }

static uint64_t mask_of(em_dtype t) {
  return bits(t) >= 64 ? ~0ull : (1ull << bits(t)) - 1;
}
static int64_t sext(em_dtype t, uint64_t u) {
  int b = bits(t);
  if (b == 64) return (int64_t)u;
  uint64_t m = 1ull << (b - 1);
  u &= mask_of(t);
  return (int64_t)((u ^ m) - m);
}
static uint64_t get_raw(em_dtype t, const void *b, int64_t i) {
  uint64_t u = 0;
  memcpy(&u, (const char *)b + i * esz(t), (size_t)(esz(t) > 8 ? 8 : esz(t)));
  return u;
}
static void put_raw(em_dtype t, void *b, int64_t i, uint64_t u) {
  memcpy((char *)b + i * esz(t), &u, (size_t)esz(t));
}

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
/* Exactly representable finite values, inf or NaN only. */
static uint64_t enc_half(double v, int mb, int eb) {
  if (isnan(v)) return ((uint64_t)((1 << eb) - 1) << mb) | (1u << (mb - 1));
  uint64_t sign = signbit(v) ? 0x8000u : 0;
  v = fabs(v);
  int bias = (1 << (eb - 1)) - 1;
  if (isinf(v)) return sign | ((uint64_t)((1 << eb) - 1) << mb);
  if (v == 0) return sign;
  int e;
  double f = frexp(v, &e);
  int be = e - 1 + bias;
  if (be <= 0) return sign | (uint64_t)ldexp(v, bias - 1 + mb);
  uint64_t m = (uint64_t)ldexp(f * 2 - 1, mb);
  return sign | ((uint64_t)be << mb) | m;
}
/* Floats and ints of real dtypes as double (ints: may round). */
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
/* v exactly representable in t (floats), or an integer. */
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
static double complex get_c(em_dtype t, const void *b, int64_t i) {
  if (t == EM_C64) {
    float v[2];
    memcpy(v, (const char *)b + i * 8, 8);
    return v[0] + I * v[1];
  }
  double v[2];
  memcpy(v, (const char *)b + i * 16, 16);
  return v[0] + I * v[1];
}
static void put_c(em_dtype t, void *b, int64_t i, double re, double im) {
  if (t == EM_C64) {
    float v[2] = {(float)re, (float)im};
    memcpy((char *)b + i * 8, v, 8);
  } else {
    double v[2] = {re, im};
    memcpy((char *)b + i * 16, v, 16);
  }
}

/* ---- arrays ---------------------------------------------------------------
 */

static int64_t numel(int nd, const int64_t *sh) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= sh[i];
  return n;
}

static em_array *mk(em_dtype t, int nd, const int64_t *sh, const void *data) {
  em_array *a = NULL;
  em_status st = em_array_from_data(
      &a, t, nd, sh, data, (size_t)numel(nd, sh) * (size_t)esz(t), em_cpu());
  CHECK(st == EM_OK, "from_data: %s", em_last_error());
  return a;
}

/* Logical shape sh, row-major logical data, as a view that reverses the
 * axes of a physical array (non-contiguous when rank >= 2). */
static em_array *mk_rev(em_dtype t, int nd, const int64_t *sh,
                        const void *data) {
  int64_t psh[EM_MAX_NDIM], n = numel(nd, sh);
  for (int i = 0; i < nd; i++) psh[nd - 1 - i] = sh[i];
  char *phys = malloc((size_t)(n ? n : 1) * (size_t)esz(t));
  int64_t idx[EM_MAX_NDIM] = {0};
  for (int64_t f = 0; f < n; f++) {
    int64_t pf = 0;
    for (int d = 0; d < nd; d++) pf = pf * psh[d] + idx[nd - 1 - d];
    memcpy(phys + pf * esz(t), (const char *)data + f * esz(t), (size_t)esz(t));
    for (int d = nd - 1; d >= 0; d--) {
      if (++idx[d] < sh[d]) break;
      idx[d] = 0;
    }
  }
  em_array *p = mk(t, nd, psh, phys);
  free(phys);
  em_array *v = NULL;
  CHECK(em_transpose(&v, p, NULL) == EM_OK, "transpose: %s", em_last_error());
  em_array_release(p);
  return v;
}

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

/* ---- window configurations ------------------------------------------------
 */

typedef struct {
  int r;
  int64_t n[EM_MAX_NDIM], o[EM_MAX_NDIM];
  em_window w;
} cfg;

static void cfg_out(cfg *c) {
  for (int i = 0; i < c->r; i++) {
    int64_t dk = (c->w.window[i] - 1) * c->w.dilations[i] + 1;
    c->o[i] =
        (c->n[i] + c->w.pad_lo[i] + c->w.pad_hi[i] - dk) / c->w.strides[i] + 1;
  }
}

static void cfg_plain(cfg *c, int r, const int64_t *n, const int64_t *k) {
  memset(c, 0, sizeof *c);
  c->r = r;
  for (int i = 0; i < r; i++) {
    c->n[i] = n[i];
    c->w.window[i] = k[i];
    c->w.strides[i] = 1;
    c->w.dilations[i] = 1;
  }
}

/* A random valid configuration: axes left alone, or windowed with random
 * window/stride/dilation/padding; max_taps bounds the window's taps. */
static void cfg_random(cfg *c, int r, int64_t max_taps) {
  memset(c, 0, sizeof *c);
  c->r = r;
  int64_t taps = 1;
  for (int i = 0; i < r; i++) {
    c->n[i] = rnd_in(0, 5) == 0 ? rnd_in(1, 2) : rnd_in(1, 9);
    c->w.window[i] = c->w.strides[i] = c->w.dilations[i] = 1;
    if (rnd_in(0, 3) == 0) continue; /* untouched axis */
    int64_t k = rnd_in(1, 3);
    if (taps * k > max_taps) k = 1;
    taps *= k;
    c->w.window[i] = k;
    c->w.strides[i] = rnd_in(1, 3);
    c->w.dilations[i] = rnd_in(0, 2) == 0 ? 2 : 1;
    c->w.pad_lo[i] = rnd_in(0, 2);
    c->w.pad_hi[i] = rnd_in(0, 2);
    int64_t dk = (k - 1) * c->w.dilations[i] + 1;
    while (c->n[i] + c->w.pad_lo[i] + c->w.pad_hi[i] < dk) c->w.pad_hi[i]++;
  }
  cfg_out(c);
}

/* Calls fn(tap_in_flat or -1 when in the padding) for each tap of output
 * position of (flat index f over the output), in row-major tap order. */
typedef struct {
  const cfg *c;
  int64_t oi[EM_MAX_NDIM], ki[EM_MAX_NDIM];
} tap_it;

static void unravel(int r, const int64_t *sh, int64_t f, int64_t *idx) {
  for (int d = r - 1; d >= 0; d--) {
    idx[d] = f % sh[d];
    f /= sh[d];
  }
}
static void taps_begin(tap_it *t, const cfg *c, int64_t f) {
  t->c = c;
  unravel(c->r, c->o, f, t->oi);
  for (int d = 0; d < c->r; d++) t->ki[d] = 0;
}
/* The current tap's flat input index (-1: padding). */
static int64_t tap_pos(const tap_it *t) {
  const cfg *c = t->c;
  int64_t p = 0;
  for (int d = 0; d < c->r; d++) {
    int64_t i = t->oi[d] * c->w.strides[d] - c->w.pad_lo[d] +
                t->ki[d] * c->w.dilations[d];
    if (i < 0 || i >= c->n[d]) return -1;
    p = p * c->n[d] + i;
  }
  return p;
}
static bool taps_next(tap_it *t) {
  const cfg *c = t->c;
  for (int d = c->r - 1; d >= 0; d--) {
    if (++t->ki[d] < c->w.window[d]) return true;
    t->ki[d] = 0;
  }
  return false;
}

/* ---- reductions -----------------------------------------------------------
 */

typedef enum { OSUM, OPROD, OMAX, OMIN } rop;
static const char *ROPN[] = {"window_sum", "window_product", "window_max",
                             "window_min"};

static em_status run_reduce(rop op, em_array **out, em_array *a,
                            const em_window *w) {
  switch (op) {
    case OSUM:
      return em_window_sum(out, a, w);
    case OPROD:
      return em_window_product(out, a, w);
    case OMAX:
      return em_window_max(out, a, w);
    default:
      return em_window_min(out, a, w);
  }
}

/* Random input data for op: full-range ints; floats whose results are
 * exact (small integers for sums, +-{0.5, 1, 2} for products, anything for
 * max/min incl. inf and NaN when nan is set), or normal values (tol). */
static void fill_input(em_dtype t, rop op, void *buf, int64_t n, bool nan,
                       bool tol) {
  for (int64_t i = 0; i < n; i++) {
    if (is_cpx(t)) {
      double re, im;
      if (tol) {
        re = normal();
        im = normal();
      } else if (op == OPROD) {
        /* a power of two times 1, -1, i or -i (or 0): products stay exact */
        static const double P[] = {1, -1, 0.5, 2};
        double p = rnd_in(0, 30) == 0 ? 0 : P[rnd() % 4];
        bool imag = rnd() & 1;
        re = imag ? 0 : p;
        im = imag ? p : 0;
      } else {
        re = (double)rnd_in(-8, 8);
        im = (double)rnd_in(-8, 8);
      }
      put_c(t, buf, i, re, im);
    } else if (!is_flt(t)) {
      put_raw(t, buf, i, rnd() & mask_of(t));
    } else {
      double v;
      if (tol)
        v = normal();
      else if (op == OPROD) {
        static const double P[] = {1, -1, 0.5, -0.5, 2, -2};
        v = P[rnd() % 6];
      } else if (op == OSUM)
        v = (double)rnd_in(-8, 8);
      else
        v = (double)rnd_in(-100, 100) * 0.25;
      if (nan && rnd_in(0, 40) == 0) v = NAN;
      if (nan && rnd_in(0, 60) == 0) v = rnd() & 1 ? INFINITY : -INFINITY;
      put_raw(t, buf, i, from_dbl(t, v));
    }
  }
}

/* Checks got (output of op on `in`, logical row-major data) against the
 * naive reference. Returns the number of mismatches (first few printed). */
static int check_reduce(rop op, em_dtype t, const cfg *c, const void *in,
                        const void *got, bool tol, const char *what) {
  int64_t no = numel(c->r, c->o);
  int bad = 0;
  for (int64_t f = 0; f < no; f++) {
    tap_it it;
    taps_begin(&it, c, f);
    uint64_t au = op == OPROD ? 1 : 0; /* ints, unsigned arithmetic */
    /* the type's lowest / highest value, the identity of max / min */
    int64_t as = 0;
    if (em_dtype_is_int(t)) {
      uint64_t lo = 1ull << (bits(t) - 1);
      as = op == OMAX ? sext(t, lo) : sext(t, lo - 1);
    }
    uint64_t am = op == OMAX ? 0 : UINT64_MAX;
    double ad = op == OSUM    ? 0
                : op == OPROD ? 1
                : op == OMAX  ? -INFINITY
                              : INFINITY;
    double mag = 0;
    double complex ac = op == OPROD ? 1 : 0;
    do {
      int64_t p = tap_pos(&it);
      if (p < 0) continue;
      if (is_cpx(t)) {
        double complex v = get_c(t, in, p);
        ac = op == OSUM ? ac + v : ac * v;
      } else if (!is_flt(t)) {
        uint64_t u = get_raw(t, in, p) & mask_of(t);
        if (op == OSUM)
          au += u;
        else if (op == OPROD)
          au *= u;
        else if (is_uns(t))
          am = op == OMAX ? (u > am ? u : am) : (u < am ? u : am);
        else {
          int64_t s = sext(t, u);
          as = op == OMAX ? (s > as ? s : as) : (s < as ? s : as);
        }
      } else {
        double v = to_dbl(t, get_raw(t, in, p));
        mag += fabs(v);
        if (op == OSUM)
          ad += v;
        else if (op == OPROD)
          ad *= v;
        else if (isnan(v) || isnan(ad))
          ad = NAN;
        else if (op == OMAX)
          ad = v > ad ? v : ad;
        else
          ad = v < ad ? v : ad;
      }
    } while (taps_next(&it));
    bool ok;
    char gs[96], ws[96];
    if (is_cpx(t)) {
      double complex g = get_c(t, got, f);
      double rt = tol ? (t == EM_C64 ? 1e-5 : 1e-12) : 0;
      double sc = cabs(ac) + 1;
      ok = fabs(creal(g) - creal(ac)) <= rt * sc &&
           fabs(cimag(g) - cimag(ac)) <= rt * sc;
      snprintf(gs, sizeof gs, "%g%+gi", creal(g), cimag(g));
      snprintf(ws, sizeof ws, "%g%+gi", creal(ac), cimag(ac));
    } else if (!is_flt(t)) {
      uint64_t g = get_raw(t, got, f) & mask_of(t);
      uint64_t want = op == OSUM || op == OPROD ? au & mask_of(t)
                      : is_uns(t)               ? am & mask_of(t)
                                                : (uint64_t)as & mask_of(t);
      ok = g == want;
      snprintf(gs, sizeof gs, "0x%llx", (unsigned long long)g);
      snprintf(ws, sizeof ws, "0x%llx", (unsigned long long)want);
    } else {
      uint64_t gr = get_raw(t, got, f) & mask_of(t);
      double g = to_dbl(t, gr);
      if (tol) {
        double rt = t == EM_F64   ? 1e-12
                    : t == EM_F32 ? 1e-5
                    : t == EM_F16 ? 2e-3
                                  : 1e-2;
        if (op == OPROD)
          ok = th_close(g, ad, rt * 8, t == EM_F16 ? 1e-4 : 0);
        else
          ok = th_close(g, ad, 0, rt * (mag + 1e-300)) || g == ad;
      } else {
        ok = isnan(ad) ? isnan(g) : g == ad;
        /* the sign of a zero: an empty or all-zero sum is +0.0 */
        if (ok && g == 0 && op == OSUM) ok = !signbit(g);
      }
      snprintf(gs, sizeof gs, "%.17g", g);
      snprintf(ws, sizeof ws, "%.17g", ad);
    }
    if (!ok) {
      if (bad < 3)
        CHECK(false, "%s %s %s: output %lld got %s want %s", ROPN[op], dn(t),
              what, (long long)f, gs, ws);
      bad++;
    }
  }
  CHECK(bad == 0, "%s %s %s: %d mismatches of %lld", ROPN[op], dn(t), what, bad,
        (long long)no);
  return bad;
}

/* Runs op on random data in configuration c and checks it. */
static void reduce_case(rop op, em_dtype t, const cfg *c, bool rev, bool nan,
                        bool tol, const char *what) {
  int64_t n = numel(c->r, c->n);
  void *in = malloc((size_t)(n ? n : 1) * (size_t)esz(t));
  fill_input(t, op, in, n, nan, tol);
  em_array *a = rev ? mk_rev(t, c->r, c->n, in) : mk(t, c->r, c->n, in);
  em_array *y = NULL;
  em_status st = run_reduce(op, &y, a, &c->w);
  CHECK(st == EM_OK, "%s %s %s: %s", ROPN[op], dn(t), what, em_last_error());
  if (st == EM_OK) {
    CHECK(em_array_dtype(y) == t && em_array_ndim(y) == c->r,
          "%s %s %s: result dtype/rank", ROPN[op], dn(t), what);
    bool shape_ok = true;
    for (int i = 0; i < c->r; i++)
      shape_ok = shape_ok && em_array_shape(y)[i] == c->o[i];
    CHECK(shape_ok, "%s %s %s: result shape", ROPN[op], dn(t), what);
    void *got = shape_ok ? fetch(y) : NULL;
    if (got) check_reduce(op, t, c, in, got, tol, what);
    free(got);
  }
  em_array_release(y);
  em_array_release(a);
  free(in);
}

static void test_reduce_random(void) {
  for (int op = 0; op < 4; op++)
    for (int ti = 0; ti < NALL; ti++) {
      em_dtype t = ALL[ti];
      if (is_cpx(t) && (op == OMAX || op == OMIN)) continue;
      for (int rep = 0; rep < 40; rep++) {
        cfg c;
        int r = (int)rnd_in(1, 4);
        cfg_random(&c, r, op == OPROD && t == EM_F16 ? 12 : 27);
        char what[64];
        snprintf(what, sizeof what, "random #%d (rank %d)", rep, r);
        reduce_case((rop)op, t, &c, rep % 3 == 1, rep % 4 == 3, false, what);
      }
      if (is_flt(t) || is_cpx(t)) { /* normal data, tolerance */
        for (int rep = 0; rep < 6; rep++) {
          cfg c;
          cfg_random(&c, (int)rnd_in(1, 4), op == OPROD ? 4 : 27);
          reduce_case((rop)op, t, &c, rep & 1, false, true, "normal data");
        }
      }
    }
}

/* Specific shapes: rank 0, empty inputs, long rows, pooling sizes. */
static void test_reduce_shapes(void) {
  for (int op = 0; op < 4; op++)
    for (int ti = 0; ti < NALL; ti++) {
      em_dtype t = ALL[ti];
      if (is_cpx(t) && (op == OMAX || op == OMIN)) continue;
      cfg c;
      /* rank 0: the element itself (combined with the identity) */
      memset(&c, 0, sizeof c);
      reduce_case((rop)op, t, &c, false, false, false, "rank 0");
      /* empty input made room for by padding: all identity */
      int64_t n0[2] = {0, 3}, k0[2] = {1, 2};
      cfg_plain(&c, 2, n0, k0);
      c.w.pad_lo[0] = 1;
      c.w.pad_hi[0] = 1;
      c.w.pad_hi[1] = 1;
      cfg_out(&c);
      reduce_case((rop)op, t, &c, false, false, false, "empty input");
      /* a long row (several kernel blocks), strided and dilated */
      int64_t n1[1] = {5000}, k1[1] = {4};
      cfg_plain(&c, 1, n1, k1);
      c.w.strides[0] = op == OSUM ? 1 : 2;
      c.w.dilations[0] = op == OMIN ? 3 : 1;
      c.w.pad_lo[0] = 2;
      c.w.pad_hi[0] = 3;
      cfg_out(&c);
      reduce_case((rop)op, t, &c, false, false, false, "long row");
      /* a window over a leading axis with a long untouched tail */
      int64_t n2[3] = {3, 50, 70}, k2[3] = {2, 1, 1};
      cfg_plain(&c, 3, n2, k2);
      c.w.strides[0] = 2;
      c.w.pad_lo[0] = 1;
      cfg_out(&c);
      reduce_case((rop)op, t, &c, op == OMAX, false, false, "leading axis");
      /* 3x3 pooling, stride 1 and 2, padding 1, over many planes */
      for (int s = 1; s <= 2; s++) {
        int64_t n3[4] = {4, 9, 17, 23}, k3[4] = {1, 1, 3, 3};
        cfg_plain(&c, 4, n3, k3);
        for (int d = 2; d < 4; d++) {
          c.w.strides[d] = s;
          c.w.pad_lo[d] = c.w.pad_hi[d] = 1;
        }
        cfg_out(&c);
        reduce_case((rop)op, t, &c, s == 2 && t == EM_F32, true, false,
                    s == 1 ? "pool s1" : "pool s2");
      }
    }
}

static void test_reduce_special(void) {
  /* Windows wholly in the padding give the identity. */
  int64_t sh[1] = {2};
  em_window w;
  memset(&w, 0, sizeof w);
  w.window[0] = 2;
  w.strides[0] = 1;
  w.dilations[0] = 1;
  w.pad_lo[0] = 3;
  w.pad_hi[0] = 0;
  /* padded: [p p p x0 x1], windows at 0..3: first two all padding */
  for (int ti = 0; ti < NREAL; ti++) {
    em_dtype t = ALL[ti];
    unsigned char buf[16];
    put_raw(t, buf, 0, from_dbl(t, 5));
    put_raw(t, buf, 1, from_dbl(t, 7));
    em_array *a = mk(t, 1, sh, buf);
    for (int op = 0; op < 4; op++) {
      em_array *y = NULL;
      CHECK(run_reduce((rop)op, &y, a, &w) == EM_OK, "%s", em_last_error());
      if (!y) continue;
      CHECK(em_array_shape(y)[0] == 4, "%s %s: shape", ROPN[op], dn(t));
      unsigned char *g = fetch(y);
      if (g) {
        uint64_t g0 = get_raw(t, g, 0) & mask_of(t);
        uint64_t want;
        if (op == OSUM)
          want = 0;
        else if (op == OPROD)
          want = from_dbl(t, 1);
        else if (is_flt(t))
          want = from_dbl(t, op == OMAX ? -INFINITY : INFINITY);
        else if (is_uns(t))
          want = op == OMAX ? 0 : mask_of(t);
        else
          want = (op == OMAX ? 1ull << (bits(t) - 1)
                             : (1ull << (bits(t) - 1)) - 1) &
                 mask_of(t);
        CHECK(g0 == want && (get_raw(t, g, 1) & mask_of(t)) == want,
              "%s %s: all-padding window 0x%llx want 0x%llx", ROPN[op], dn(t),
              (unsigned long long)g0, (unsigned long long)want);
        double w2 = op == OSUM ? 5 : op == OPROD ? 5 : 5;
        CHECK(to_dbl(t, get_raw(t, g, 2)) == w2, "%s %s: window [p, 5]",
              ROPN[op], dn(t));
        double w3 = op == OSUM ? 12 : op == OPROD ? 35 : op == OMAX ? 7 : 5;
        CHECK(to_dbl(t, get_raw(t, g, 3)) == w3, "%s %s: window [5, 7]",
              ROPN[op], dn(t));
      }
      free(g);
      em_array_release(y);
    }
    em_array_release(a);
  }
  /* -0.0 alone: the sum starts at +0.0 (as Nx's does); max keeps -0.0. */
  for (int ti = 8; ti < 12; ti++) {
    em_dtype t = ALL[ti];
    unsigned char buf[8];
    put_raw(t, buf, 0, from_dbl(t, -0.0));
    int64_t s1[1] = {1};
    em_array *a = mk(t, 1, s1, buf);
    memset(&w, 0, sizeof w);
    w.window[0] = w.strides[0] = w.dilations[0] = 1;
    em_array *y = NULL, *z = NULL;
    CHECK(em_window_sum(&y, a, &w) == EM_OK, "%s", em_last_error());
    CHECK(em_window_max(&z, a, &w) == EM_OK, "%s", em_last_error());
    unsigned char *g = y ? fetch(y) : NULL, *h = z ? fetch(z) : NULL;
    if (g) CHECK(!signbit(to_dbl(t, get_raw(t, g, 0))), "%s: -0.0 sum", dn(t));
    if (h) CHECK(signbit(to_dbl(t, get_raw(t, h, 0))), "%s: -0.0 max", dn(t));
    free(g);
    free(h);
    em_array_release(y);
    em_array_release(z);
    em_array_release(a);
  }
}

/* ---- Nx doc examples ------------------------------------------------------
 */

static em_window win(int r, const int64_t *k, const int64_t *s,
                     const int64_t (*pad)[2], const int64_t *d) {
  em_window w;
  memset(&w, 0, sizeof w);
  for (int i = 0; i < r; i++) {
    w.window[i] = k[i];
    w.strides[i] = s ? s[i] : 1;
    w.dilations[i] = d ? d[i] : 1;
    w.pad_lo[i] = pad ? pad[i][0] : 0;
    w.pad_hi[i] = pad ? pad[i][1] : 0;
  }
  return w;
}

static void expect_s32(em_array *y, int r, const int64_t *shape,
                       const int32_t *want, const char *what) {
  CHECK(y != NULL, "%s: %s", what, em_last_error());
  if (!y) return;
  bool sh = em_array_ndim(y) == r && em_array_dtype(y) == EM_S32;
  for (int i = 0; sh && i < r; i++) sh = em_array_shape(y)[i] == shape[i];
  CHECK(sh, "%s: shape/dtype", what);
  if (!sh) return;
  int32_t *g = fetch(y);
  int64_t n = numel(r, shape);
  int bad = 0;
  for (int64_t i = 0; g && i < n; i++)
    if (g[i] != want[i]) {
      if (bad++ < 3)
        CHECK(false, "%s: [%lld] got %d want %d", what, (long long)i, g[i],
              want[i]);
    }
  CHECK(bad == 0, "%s: %d wrong", what, bad);
  free(g);
}

static void test_doc_examples(void) {
  /* Nx.window_sum(t, {2, 1, 2}, strides: [2, 1, 1], padding: [{2, 1}, {3,
   * 1}, {1, 0}], window_dilations: [1, 2, 2]) */
  int32_t t1[16] = {4, 2, 1, 3, 4, 2, 1, 7, 1, 2, 5, 7, 1, 8, 9, 2};
  int64_t s1[3] = {2, 2, 4};
  em_array *a = mk(EM_S32, 3, s1, t1);
  int64_t k[3] = {2, 1, 2}, st[3] = {2, 1, 1}, d[3] = {1, 2, 2};
  int64_t pad[3][2] = {{2, 1}, {3, 1}, {1, 0}};
  em_window w = win(3, k, st, pad, d);
  em_array *y = NULL;
  em_window_sum(&y, a, &w);
  int32_t want1[36] = {0};
  int32_t tail[9] = {4, 11, 14, 10, 15, 19, 0, 0, 0};
  memcpy(want1 + 27, tail, sizeof tail);
  expect_s32(y, 3, (int64_t[]){2, 6, 3}, want1, "doc window_sum padded");
  em_array_release(y);
  /* Nx.window_max(t, {1, 1, 2}, strides: [2, 1, 1], padding: :valid,
   * window_dilations: [1, 2, 2]) -> [[[4, 3], [4, 7]]] */
  int64_t k2[3] = {1, 1, 2}, d2[3] = {1, 2, 2};
  w = win(3, k2, st, NULL, d2);
  y = NULL;
  em_window_max(&y, a, &w);
  expect_s32(y, 3, (int64_t[]){1, 2, 2}, (int32_t[]){4, 3, 4, 7},
             "doc window_max dilated");
  em_array_release(y);
  y = NULL;
  em_window_sum(&y, a, &w);
  expect_s32(y, 3, (int64_t[]){1, 2, 2}, (int32_t[]){5, 5, 5, 9},
             "doc window_sum dilated");
  em_array_release(y);
  em_array_release(a);

  /* Nx.window_min(t, {2, 2, 1}, strides: [1, 2, 3], padding: [{0, 1}, {2,
   * 0}, {1, 1}]) */
  int32_t t3[12] = {1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6};
  int64_t s3[3] = {2, 2, 3};
  a = mk(EM_S32, 3, s3, t3);
  int64_t k3[3] = {2, 2, 1}, st3[3] = {1, 2, 3};
  int64_t pad3[3][2] = {{0, 1}, {2, 0}, {1, 1}};
  w = win(3, k3, st3, pad3, NULL);
  y = NULL;
  em_window_min(&y, a, &w);
  const int32_t M = INT32_MAX;
  expect_s32(y, 3, (int64_t[]){2, 2, 2}, (int32_t[]){M, M, M, 3, M, M, M, 3},
             "doc window_min padded");
  em_array_release(y);
  em_array_release(a);

  /* Nx.window_scatter_max / min docs: t 4x6, source [[2, 6], [3, 1]],
   * init 0, window {2, 3}, strides [2, 3]. */
  int32_t t4[24] = {7, 2, 5, 3, 10, 2, 3, 8, 9, 3, 4, 2,
                    1, 5, 7, 5, 6,  1, 0, 6, 2, 7, 2, 8};
  int32_t src[4] = {2, 6, 3, 1}, zero = 0;
  int64_t s4[2] = {4, 6}, ss[2] = {2, 2};
  em_array *x = mk(EM_S32, 2, s4, t4), *so = mk(EM_S32, 2, ss, src),
           *z = mk(EM_S32, 0, NULL, &zero);
  int64_t k4[2] = {2, 3}, st4[2] = {2, 3};
  w = win(2, k4, st4, NULL, NULL);
  y = NULL;
  em_window_scatter_max(&y, x, so, z, &w);
  expect_s32(y, 2, s4, (int32_t[]){0, 0, 0, 0, 6, 0, 0, 0, 2, 0, 0, 0,
                                   0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 1},
             "doc window_scatter_max");
  em_array_release(y);
  y = NULL;
  em_window_scatter_min(&y, x, so, z, &w);
  expect_s32(y, 2, s4, (int32_t[]){0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6,
                                   0, 0, 0, 0, 0, 1, 3, 0, 0, 0, 0, 0},
             "doc window_scatter_min");
  em_array_release(y);
  em_array_release(x);
  /* second example: 4x5, window {2, 3}, strides [2, 2] (overlapping) */
  int32_t t5[20] = {7, 2, 5, 3, 8, 3, 8, 9, 3,  4,
                    1, 5, 7, 5, 6, 0, 6, 2, 10, 2};
  int64_t s5[2] = {4, 5}, st5[2] = {2, 2};
  x = mk(EM_S32, 2, s5, t5);
  w = win(2, k4, st5, NULL, NULL);
  y = NULL;
  em_window_scatter_max(&y, x, so, z, &w);
  expect_s32(y, 2, s5, (int32_t[]){0, 0, 0, 0, 0, 0, 0, 8, 0, 0,
                                   0, 0, 3, 0, 0, 0, 0, 0, 1, 0},
             "doc window_scatter_max overlapping");
  em_array_release(y);
  y = NULL;
  em_window_scatter_min(&y, x, so, z, &w);
  expect_s32(y, 2, s5, (int32_t[]){0, 2, 0, 0, 0, 0, 0, 0, 6, 0,
                                   0, 0, 0, 0, 0, 3, 0, 0, 0, 1},
             "doc window_scatter_min overlapping");
  em_array_release(y);
  em_array_release(x);
  em_array_release(so);
  em_array_release(z);
}

/* ---- scatter --------------------------------------------------------------
 */

/* Comparison key of a real element: ints exactly, floats as double. */
typedef struct {
  bool uns, flt;
  uint64_t u;
  int64_t s;
  double d;
} key;
static key key_of(em_dtype t, const void *b, int64_t i) {
  key k = {is_uns(t), is_flt(t), 0, 0, 0};
  uint64_t r = get_raw(t, b, i) & mask_of(t);
  if (k.flt)
    k.d = to_dbl(t, r);
  else if (k.uns)
    k.u = r;
  else
    k.s = sext(t, r);
  return k;
}
/* v >= cur (max) or v <= cur (min); false when either is NaN. */
static bool better(key v, key cur, bool max) {
  if (v.flt) return max ? v.d >= cur.d : v.d <= cur.d;
  if (v.uns) return max ? v.u >= cur.u : v.u <= cur.u;
  return max ? v.s >= cur.s : v.s <= cur.s;
}

static void scatter_case(bool max, em_dtype ta, em_dtype ts, const cfg *c,
                         bool rev, bool nan, int vrange, const char *what) {
  const char *opn = max ? "window_scatter_max" : "window_scatter_min";
  int64_t na = numel(c->r, c->n), ns = numel(c->r, c->o);
  void *in = malloc((size_t)(na ? na : 1) * (size_t)esz(ta));
  void *src = malloc((size_t)ns * (size_t)esz(ts));
  unsigned char init[8];
  /* few distinct values, so ties are common */
  for (int64_t i = 0; i < na; i++) {
    int vr = is_flt(ta) && vrange > 100 ? 100 : vrange;
    double v = (double)rnd_in(is_uns(ta) ? 0 : -vr, vr);
    if (nan && is_flt(ta) && rnd_in(0, 10) == 0) v = NAN;
    put_raw(ta, in, i, from_dbl(ta, v));
  }
  if (!is_flt(ta) && vrange > 1000) /* full-range ints */
    for (int64_t i = 0; i < na; i++) put_raw(ta, in, i, rnd() & mask_of(ta));
  for (int64_t i = 0; i < ns; i++)
    put_raw(
        ts, src, i,
        is_flt(ts) ? from_dbl(ts, (double)rnd_in(-8, 8)) : rnd() & mask_of(ts));
  put_raw(
      ts, init, 0,
      is_flt(ts) ? from_dbl(ts, (double)rnd_in(-3, 3)) : rnd() & mask_of(ts));
  em_array *a = rev ? mk_rev(ta, c->r, c->n, in) : mk(ta, c->r, c->n, in);
  em_array *s = rev ? mk_rev(ts, c->r, c->o, src) : mk(ts, c->r, c->o, src);
  em_array *z = mk(ts, 0, NULL, init);
  em_array *y = NULL;
  em_status st = max ? em_window_scatter_max(&y, a, s, z, &c->w)
                     : em_window_scatter_min(&y, a, s, z, &c->w);
  CHECK(st == EM_OK, "%s %s/%s %s: %s", opn, dn(ta), dn(ts), what,
        em_last_error());
  if (st == EM_OK) {
    bool sh = em_array_dtype(y) == ts && em_array_ndim(y) == c->r;
    for (int i = 0; sh && i < c->r; i++) sh = em_array_shape(y)[i] == c->n[i];
    CHECK(sh, "%s %s/%s %s: result shape/dtype", opn, dn(ta), dn(ts), what);
    void *got = sh ? fetch(y) : NULL;
    if (got) {
      /* reference: uint64 (ints, wrapping) or double (exact small ints) */
      uint64_t *ru = malloc((size_t)(na ? na : 1) * sizeof *ru);
      double *rd = malloc((size_t)(na ? na : 1) * sizeof *rd);
      for (int64_t i = 0; i < na; i++) {
        ru[i] = get_raw(ts, init, 0);
        rd[i] = is_flt(ts) ? to_dbl(ts, get_raw(ts, init, 0)) : 0;
      }
      for (int64_t f = 0; f < ns; f++) {
        tap_it it;
        taps_begin(&it, c, f);
        int64_t best = -1;
        key cur = {0};
        do {
          int64_t p = tap_pos(&it);
          if (p < 0) continue;
          key v = key_of(ta, in, p);
          if (best < 0 || better(v, cur, max)) {
            best = p;
            cur = v;
          }
        } while (taps_next(&it));
        if (best < 0) continue;
        ru[best] += get_raw(ts, src, f);
        if (is_flt(ts)) rd[best] += to_dbl(ts, get_raw(ts, src, f));
      }
      int bad = 0;
      for (int64_t i = 0; i < na; i++) {
        uint64_t g = get_raw(ts, got, i) & mask_of(ts);
        bool ok =
            is_flt(ts) ? to_dbl(ts, g) == rd[i] : g == (ru[i] & mask_of(ts));
        if (!ok && bad++ < 3)
          CHECK(false, "%s %s/%s %s: [%lld] got %g want %g (raw 0x%llx)", opn,
                dn(ta), dn(ts), what, (long long)i, to_dbl(ts, g),
                is_flt(ts) ? rd[i] : to_dbl(ts, ru[i] & mask_of(ts)),
                (unsigned long long)g);
      }
      CHECK(bad == 0, "%s %s/%s %s: %d wrong of %lld", opn, dn(ta), dn(ts),
            what, bad, (long long)na);
      free(ru);
      free(rd);
      free(got);
    }
  }
  em_array_release(y);
  em_array_release(a);
  em_array_release(s);
  em_array_release(z);
  free(in);
  free(src);
}

static void test_scatter(void) {
  for (int mx = 0; mx < 2; mx++)
    for (int ti = 0; ti < NREAL; ti++) {
      em_dtype t = ALL[ti];
      for (int rep = 0; rep < 30; rep++) {
        cfg c;
        int r = (int)rnd_in(1, 4);
        cfg_random(&c, r, 27);
        char what[64];
        snprintf(what, sizeof what, "random #%d (rank %d)", rep, r);
        /* source dtype: mostly the same, sometimes another one */
        em_dtype ts = rep % 5 == 4 ? ALL[(ti + 3) % NREAL] : t;
        scatter_case(mx, t, ts, &c, rep % 3 == 2, rep % 4 == 1,
                     rep % 6 == 5 ? 1 << 20 : 3, what);
      }
      cfg c;
      memset(&c, 0, sizeof c);
      scatter_case(mx, t, t, &c, false, false, 3, "rank 0");
      int64_t n0[2] = {0, 3}, k0[2] = {1, 2};
      cfg_plain(&c, 2, n0, k0);
      c.w.pad_lo[0] = 1;
      cfg_out(&c);
      scatter_case(mx, t, t, &c, false, false, 3, "empty input");
      /* 3x3 pooling gradient, stride 2 and 1, many planes */
      for (int s = 1; s <= 2; s++) {
        int64_t n3[4] = {3, 7, 19, 21}, k3[4] = {1, 1, 3, 3};
        cfg_plain(&c, 4, n3, k3);
        for (int d = 2; d < 4; d++) {
          c.w.strides[d] = s;
          c.w.pad_lo[d] = c.w.pad_hi[d] = 1;
        }
        cfg_out(&c);
        scatter_case(mx, t, t == EM_F16 ? EM_F32 : t, &c, s == 1, true, 50,
                     s == 1 ? "pool s1" : "pool s2");
      }
      /* a long row, and NHWC-style trailing untouched axis */
      int64_t n1[1] = {5000}, k1[1] = {5};
      cfg_plain(&c, 1, n1, k1);
      c.w.strides[0] = 3;
      c.w.pad_lo[0] = 1;
      c.w.pad_hi[0] = 4;
      cfg_out(&c);
      scatter_case(mx, t, t, &c, false, false, 4, "long row");
      int64_t n2[3] = {9, 11, 40}, k2[3] = {3, 2, 1};
      cfg_plain(&c, 3, n2, k2);
      c.w.strides[0] = 2;
      c.w.dilations[1] = 2;
      c.w.pad_hi[0] = 1;
      cfg_out(&c);
      scatter_case(mx, t, t, &c, mx == 1, false, 4, "trailing axis");
    }
}

/* NaN and tie rules spelled out on one window of three. */
static void test_scatter_rules(void) {
  struct {
    float x[3];
    int max_pick, min_pick;
  } cases[] = {
      {{NAN, 1, 2}, 0, 0}, /* NaN first: nothing compares >= NaN */
      {{1, NAN, 2}, 2, 0}, /* NaN later: never picked */
      {{3, NAN, 2}, 0, 2}, {{2, 5, 5}, 2, 0},         /* ties: the last one */
      {{4, 4, 1}, 1, 2},   {{-0.0f, 0.0f, -1}, 1, 2}, /* -0.0 == 0.0: a tie */
  };
  int64_t sh[1] = {3}, s1[1] = {1};
  em_window w = win(1, sh, NULL, NULL, NULL);
  float one = 1, zero = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    em_array *a = mk(EM_F32, 1, sh, cases[i].x), *s = mk(EM_F32, 1, s1, &one),
             *z = mk(EM_F32, 0, NULL, &zero);
    for (int mx = 0; mx < 2; mx++) {
      em_array *y = NULL;
      em_status st = mx ? em_window_scatter_max(&y, a, s, z, &w)
                        : em_window_scatter_min(&y, a, s, z, &w);
      CHECK(st == EM_OK, "%s", em_last_error());
      float *g = y ? fetch(y) : NULL;
      int want = mx ? cases[i].max_pick : cases[i].min_pick;
      for (int j = 0; g && j < 3; j++)
        CHECK(g[j] == (j == want ? 1.0f : 0.0f),
              "scatter_%s case %zu: [%d] = %g, want the pick at %d",
              mx ? "max" : "min", i, j, g[j], want);
      free(g);
      em_array_release(y);
    }
    em_array_release(a);
    em_array_release(s);
    em_array_release(z);
  }
  /* Padding is never picked, even when init is larger than the data. */
  float x[2] = {-5, -7}, src[2] = {10, 20}, big = 100;
  int64_t s2[1] = {2};
  em_window wp =
      win(1, (int64_t[]){2}, NULL, (const int64_t[][2]){{1, 0}}, NULL);
  em_array *a = mk(EM_F32, 1, s2, x), *s = mk(EM_F32, 1, s2, src),
           *z = mk(EM_F32, 0, NULL, &big), *y = NULL;
  CHECK(em_window_scatter_max(&y, a, s, z, &wp) == EM_OK, "%s",
        em_last_error());
  float *g = y ? fetch(y) : NULL;
  /* windows [pad, -5] -> -5 gets 10; [-5, -7] -> -5 gets 20 */
  if (g)
    CHECK(g[0] == 130 && g[1] == 100, "padding pick: got %g %g", g[0], g[1]);
  free(g);
  em_array_release(y);
  em_array_release(a);
  em_array_release(s);
  em_array_release(z);
}

/* ---- errors ---------------------------------------------------------------
 */

static void expect_err(em_status st, em_array *out, const char *op,
                       const char *what) {
  CHECK(st == EM_ERR_ARGUMENT, "%s: %s: status %s", op, what,
        em_status_name(st));
  CHECK(out == NULL, "%s: %s: out not NULL", op, what);
  char tag[64];
  snprintf(tag, sizeof tag, "[%s]", op);
  CHECK(strstr(em_last_error(), tag) != NULL, "%s: %s: message '%s'", op, what,
        em_last_error());
}

/* Runs call (which writes y) with y preset non-NULL, then checks. */
#define EXPECT_ERR(call, op, what) \
  do {                             \
    y = (em_array *)&y;            \
    em_status st_ = (call);        \
    expect_err(st_, y, op, what);  \
  } while (0)

static void test_errors(void) {
  int64_t sh[2] = {4, 5};
  float data[20] = {0};
  em_array *a = mk(EM_F32, 2, sh, data);
  int64_t k[2] = {2, 2};
  em_window ok = win(2, k, NULL, NULL, NULL), w;
  em_array *y = (em_array *)&y;
  for (int op = 0; op < 4; op++) {
    const char *n = ROPN[op];
    w = ok;
    w.window[1] = 0;
    EXPECT_ERR(run_reduce((rop)op, &y, a, &w), n, "window 0");
    w = ok;
    w.strides[0] = 0;
    EXPECT_ERR(run_reduce((rop)op, &y, a, &w), n, "stride 0");
    w = ok;
    w.dilations[1] = -1;
    EXPECT_ERR(run_reduce((rop)op, &y, a, &w), n, "dilation -1");
    w = ok;
    w.pad_lo[0] = -1;
    EXPECT_ERR(run_reduce((rop)op, &y, a, &w), n, "negative padding");
    w = ok;
    w.window[0] = 5;
    EXPECT_ERR(run_reduce((rop)op, &y, a, &w), n, "window too large");
    w = ok;
    w.dilations[1] = 5; /* dilated window 6 > 5 */
    EXPECT_ERR(run_reduce((rop)op, &y, a, &w), n, "dilated too large");
    w = ok;
    w.window[0] = INT64_MAX / 2;
    w.dilations[0] = 4;
    EXPECT_ERR(run_reduce((rop)op, &y, a, &w), n, "overflowing window");
    w = ok;
    w.pad_hi[0] = INT64_MAX;
    EXPECT_ERR(run_reduce((rop)op, &y, a, &w), n, "huge padding");
    EXPECT_ERR(run_reduce((rop)op, &y, NULL, &ok), n, "NULL input");
    EXPECT_ERR(run_reduce((rop)op, &y, a, NULL), n, "NULL window");
    CHECK(run_reduce((rop)op, NULL, a, &ok) == EM_ERR_ARGUMENT, "%s: NULL out",
          n);
  }
  /* padding makes a too-large window fit */
  w = ok;
  w.window[0] = 5;
  w.pad_hi[0] = 1;
  y = NULL;
  CHECK(em_window_sum(&y, a, &w) == EM_OK, "padded fit: %s", em_last_error());
  em_array_release(y);
  /* complex max/min */
  float cd[8] = {0};
  int64_t cs[1] = {4}, k1[1] = {2};
  em_array *c = mk(EM_C64, 1, cs, cd);
  em_window w1 = win(1, k1, NULL, NULL, NULL);
  EXPECT_ERR(em_window_max(&y, c, &w1), "window_max", "complex");
  EXPECT_ERR(em_window_min(&y, c, &w1), "window_min", "complex");

  /* scatter */
  int64_t ssh[2] = {3, 4}, bad_sh[2] = {3, 3}, r1[1] = {12};
  float sd[12] = {0}, zero = 0;
  double zd = 0;
  em_array *s = mk(EM_F32, 2, ssh, sd), *sb = mk(EM_F32, 2, bad_sh, sd),
           *s1 = mk(EM_F32, 1, r1, sd), *z = mk(EM_F32, 0, NULL, &zero),
           *z64 = mk(EM_F64, 0, NULL, &zd),
           *z1 = mk(EM_F32, 1, (int64_t[]){1}, &zero),
           *cs2 = mk(EM_C64, 2, ssh, (float[24]){0}),
           *cz = mk(EM_C64, 0, NULL, (float[2]){0});
  for (int mx = 0; mx < 2; mx++) {
    const char *n = mx ? "window_scatter_max" : "window_scatter_min";
#define SC(out_, a_, s_, z_, w_)                    \
  (mx ? em_window_scatter_max(out_, a_, s_, z_, w_) \
      : em_window_scatter_min(out_, a_, s_, z_, w_))
    y = NULL;
    CHECK(SC(&y, a, s, z, &ok) == EM_OK, "%s ok: %s", n, em_last_error());
    em_array_release(y);
    EXPECT_ERR(SC(&y, a, sb, z, &ok), n, "source shape");
    EXPECT_ERR(SC(&y, a, s1, z, &ok), n, "source rank");
    EXPECT_ERR(SC(&y, a, s, z64, &ok), n, "init dtype");
    EXPECT_ERR(SC(&y, a, s, z1, &ok), n, "init rank");
    EXPECT_ERR(SC(&y, a, cs2, cz, &ok), n, "complex source");
    EXPECT_ERR(SC(&y, c, s, z, &w1), n, "complex input");
    EXPECT_ERR(SC(&y, NULL, s, z, &ok), n, "NULL input");
    EXPECT_ERR(SC(&y, a, NULL, z, &ok), n, "NULL source");
    EXPECT_ERR(SC(&y, a, s, NULL, &ok), n, "NULL init");
    EXPECT_ERR(SC(&y, a, s, z, NULL), n, "NULL window");
    w = ok;
    w.strides[1] = 0;
    EXPECT_ERR(SC(&y, a, s, z, &w), n, "stride 0");
    w = ok;
    w.window[1] = 9;
    EXPECT_ERR(SC(&y, a, s, z, &w), n, "window too large");
#undef SC
  }
  em_array_release(a);
  em_array_release(c);
  em_array_release(s);
  em_array_release(sb);
  em_array_release(s1);
  em_array_release(z);
  em_array_release(z64);
  em_array_release(z1);
  em_array_release(cs2);
  em_array_release(cz);
}

/* Huge windows and paddings: only the taps inside the input are visited,
 * so these finish at once (a tap-by-tap walk would not). */
static void test_huge_windows(void) {
  const int64_t H = 1000000000000ll; /* 1e12 */
  /* [3, 2] input; axis 0: window H, padding (H, 0), so window j holds
   * rows 0..j-1; axis 1: window 2, padding (0, H), stride H: window 0
   * holds both columns, window 1 only padding. */
  int32_t x[6] = {1, 2, 30, 40, 500, 600};
  int64_t sh[2] = {3, 2};
  em_array *a = mk(EM_S32, 2, sh, x);
  em_window w;
  memset(&w, 0, sizeof w);
  w.window[0] = H;
  w.pad_lo[0] = H;
  w.window[1] = 2;
  w.pad_hi[1] = H;
  w.strides[0] = 1;
  w.strides[1] = H;
  w.dilations[0] = w.dilations[1] = 1;
  em_array *y = NULL;
  CHECK(em_window_sum(&y, a, &w) == EM_OK, "huge sum: %s", em_last_error());
  expect_s32(y, 2, (int64_t[]){4, 2}, (int32_t[]){0, 0, 3, 0, 73, 0, 1173, 0},
             "huge window_sum");
  em_array_release(y);
  y = NULL;
  CHECK(em_window_max(&y, a, &w) == EM_OK, "huge max: %s", em_last_error());
  expect_s32(y, 2, (int64_t[]){4, 2},
             (int32_t[]){INT32_MIN, INT32_MIN, 2, INT32_MIN, 40, INT32_MIN, 600,
                         INT32_MIN},
             "huge window_max");
  em_array_release(y);
  /* scatter over the same windows: picks 1 -> x[1], 2 -> x[3], 3 -> x[5] */
  int32_t src[8] = {1, 2, 3, 4, 5, 6, 7, 8}, zero = 0;
  em_array *s = mk(EM_S32, 2, (int64_t[]){4, 2}, src),
           *z = mk(EM_S32, 0, NULL, &zero);
  y = NULL;
  CHECK(em_window_scatter_max(&y, a, s, z, &w) == EM_OK, "huge scatter: %s",
        em_last_error());
  expect_s32(y, 2, sh, (int32_t[]){0, 3, 0, 5, 0, 7}, "huge scatter_max");
  em_array_release(y);
  em_array_release(s);
  em_array_release(z);
  /* a huge dilation: only the first tap of each window lands inside */
  memset(&w, 0, sizeof w);
  w.window[0] = 3;
  w.dilations[0] = H;
  w.pad_hi[0] = 2 * H;
  w.strides[0] = 1;
  w.window[1] = w.strides[1] = w.dilations[1] = 1;
  y = NULL;
  CHECK(em_window_product(&y, a, &w) == EM_OK, "dilated: %s", em_last_error());
  expect_s32(y, 2, sh, x, "huge dilation");
  em_array_release(y);
  em_array_release(a);
}

/* A lazy input: the window op on top of an unevaluated node. */
static void test_lazy_input(void) {
  int64_t sh[2] = {6, 7};
  em_array *io = NULL, *a = NULL, *y = NULL;
  CHECK(em_iota(&io, EM_S32, 2, sh, 1, em_cpu()) == EM_OK, "%s",
        em_last_error());
  CHECK(em_transpose(&a, io, NULL) == EM_OK, "%s", em_last_error());
  int64_t k[2] = {3, 2};
  em_window w = win(2, k, (int64_t[]){2, 3}, NULL, NULL);
  CHECK(em_window_sum(&y, a, &w) == EM_OK, "%s", em_last_error());
  /* a[i][j] = i (iota over axis 1 of the 6x7, transposed to 7x6);
   * windows rows 2p..2p+2, cols 3q..3q+1: sum = 2 * (6p + 3) */
  if (y) {
    CHECK(em_array_shape(y)[0] == 3 && em_array_shape(y)[1] == 2, "shape");
    int32_t *g = fetch(y);
    for (int p = 0; g && p < 3; p++)
      for (int q = 0; q < 2; q++)
        CHECK(g[p * 2 + q] == 2 * (6 * p + 3), "lazy [%d][%d] = %d", p, q,
              g[p * 2 + q]);
    free(g);
  }
  em_array_release(y);
  em_array_release(a);
  em_array_release(io);
}

/* Every allocation of an evaluation failing in turn: out-of-memory comes
 * back as EM_ERR_OOM (no crash, no leak), and the run that gets
 * through is right. Inputs are transposed views (contiguous copies) and
 * the source is f16 (an f32 accumulator), so every scratch path is hit. */
static void test_oom(void) {
  int64_t sh[2] = {6, 5}, ssh[2] = {3, 4};
  float x[30];
  uint16_t src[12], one = (uint16_t)from_dbl(EM_F16, 1), zero = 0;
  for (int i = 0; i < 30; i++) x[i] = (float)((i * 7) % 11);
  for (int i = 0; i < 12; i++) src[i] = one;
  em_window w = win(2, (int64_t[]){2, 2}, (int64_t[]){2, 1}, NULL, NULL);
  bool done_scatter = false, done_reduce = false, oom1 = false, oom2 = false;
  for (long n = 0; n < 40 && !(done_scatter && done_reduce); n++) {
    em_array *a = mk_rev(EM_F32, 2, sh, x), *s = mk_rev(EM_F16, 2, ssh, src),
             *z = mk(EM_F16, 0, NULL, &zero), *y = NULL, *m = NULL;
    CHECK(em_window_scatter_max(&y, a, s, z, &w) == EM_OK, "%s",
          em_last_error());
    CHECK(em_window_max(&m, a, &w) == EM_OK, "%s", em_last_error());
    em_memory_fail_after(em_cpu(), n);
    em_status st1 = y ? em_eval(&y, 1) : EM_ERR_ARGUMENT;
    em_memory_fail_after(em_cpu(), n);
    em_status st2 = m ? em_eval(&m, 1) : EM_ERR_ARGUMENT;
    em_memory_fail_after(em_cpu(), -1);
    CHECK(st1 == EM_OK || st1 == EM_ERR_OOM, "scatter oom %ld: %s", n,
          em_status_name(st1));
    oom1 = oom1 || st1 == EM_ERR_OOM;
    oom2 = oom2 || st2 == EM_ERR_OOM;
    CHECK(st2 == EM_OK || st2 == EM_ERR_OOM, "max oom %ld: %s", n,
          em_status_name(st2));
    if (st1 == EM_OK && !done_scatter) {
      done_scatter = true;
      uint16_t *g = fetch(y);
      double total = 0;
      for (int i = 0; g && i < 30; i++) total += to_dbl(EM_F16, g[i]);
      CHECK(g && total == 12, "scatter after oom: total %g", total);
      free(g);
    }
    if (st2 == EM_OK && !done_reduce) {
      done_reduce = true;
      float *g = fetch(m);
      /* window (0, 0): rows 0-1, cols 0-1 of the 6x5 data */
      float want = fmaxf(fmaxf(x[0], x[1]), fmaxf(x[5], x[6]));
      CHECK(g && g[0] == want, "max after oom: %g want %g", g ? g[0] : -1.0,
            want);
      free(g);
    }
    em_array_release(y);
    em_array_release(m);
    em_array_release(a);
    em_array_release(s);
    em_array_release(z);
  }
  CHECK(done_scatter && done_reduce, "never got through the failures");
  CHECK(oom1 && oom2, "no allocation failure was seen");
}

int main(void) {
  test_doc_examples();
  test_reduce_special();
  test_huge_windows();
  test_reduce_shapes();
  test_reduce_random();
  test_scatter_rules();
  test_scatter();
  test_lazy_input();
  test_errors();
  test_oom();
  return TEST_SUMMARY();
}
