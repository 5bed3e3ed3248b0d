/* reduce.c — CPU reductions over the middle axis of [outer, r, inner]:
 * sum product reduce_max reduce_min all any, and argmax / argmin.
 *
 * Every (op, dtype) pair is a small table of lane kernels (rk_t) run by one
 * driver. A "lane" accumulates one column position: with inner >= LMIN the
 * lanes are a tile of up to W columns and each step adds one row; with a
 * small inner, k consecutive rows are grouped into one contiguous
 * "super-row" of k*inner lanes (inner == 1: 64 independent accumulators
 * over a contiguous run), and the k groups are folded at the end. Work is
 * split over (outer, tile) tasks; when there are too few of them the rows
 * are also split into parts whose partial lanes are combined in order.
 *
 * Semantics (Nx.BinaryBackend):
 *  - integer sum/product wrap in the input type (computed unsigned);
 *  - float sum: lanes add in f32 (f64 for f64) and are flushed into f64
 *    every FLUSH rows, so the error stays near numpy's pairwise sum; the
 *    result is rounded once. Float product accumulates in f64. Complex
 *    values accumulate in double complex, product by the plain formula
 *    (ar*br - ai*bi, ar*bi + ai*br), without C's Annex G inf recovery;
 *  - max/min: any NaN gives NaN; empty gives -inf/+inf (ints: min/max);
 *  - all/any: u8 0/1, NaN is true, -0.0 is false; complex is true when
 *    either part is nonzero;
 *  - argmax/argmin: NaN beats every number, and among NaNs the LAST one
 *    wins whatever tie_high says (the BinaryBackend scan takes every NaN
 *    it meets); among equal numbers tie_high takes the last, else the
 *    first; -0.0 equals 0.0;
 *  - complex max/min/argmax/argmin and argmax over r == 0 are rejected by
 *    the op layer; here they leave the output untouched. */
#include <complex.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/half.h"
#include "../core/parallel.h"
#include "cpu-kernels.h"
#include "simd.h"
#include "subbyte.h"

enum {
  LMIN = 64,       /* lanes wanted for a small inner (64 accumulators) */
  FLUSH = 16,      /* f32 lane adds between flushes into f64 (numpy's
                      pairwise sum also adds 16 per accumulator) */
  BUF = 8192,      /* bytes of lane state for one task */
};

/* Input bytes a thread must get before work is split: waking a pool
 * thread costs tens of microseconds, about what one core reduces 2 MiB
 * of cached f32 in. Not const: tests lower it to force splits. */
int64_t em_cpu_reduce_chunk_bytes = 1 << 21;

typedef struct {
  size_t esz; /* input element bytes */
  size_t osz; /* output element bytes */
  size_t vsz; /* lane value bytes */
  size_t isz; /* 8 when lanes also carry an s64 index (arg ops), else 0 */
  /* Sets B lanes to the identity. */
  void (*init)(void *acc, int64_t B);
  /* Folds nrows rows (row i at x + i*stride elements) into the first nl
   * lanes of a B-lane state; g0 numbers the first row (arg ops). */
  void (*lanes)(const void *x, int64_t nrows, int64_t stride, int64_t nl,
                int64_t B, void *acc, int64_t g0);
  /* dst = dst (earlier rows) combined with src (later rows), lanewise. */
  void (*combine)(void *dst, const void *src, int64_t B);
  /* Folds k groups of w lanes (lane m*w + j is column j) into w outputs. */
  void (*finish)(const void *acc, int64_t k, int64_t w, void *out);
  /* Small r*inner: folds each output's r elements directly (r >= 1) for
   * n consecutive outer indices. */
  void (*naive)(const void *x, int64_t n, int64_t r, int64_t inner,
                void *out);
} rk_t;

/* The body of a naive kernel: S is the running value of one output. */
#define NAIVE(T, OT, A, INIT, STEP, STORE)                       \
  const T *x = xv;                                              \
  OT *o = ov;                                                   \
  for (int64_t q = 0; q < n; q++, x += r * inner, o += inner)   \
    for (int64_t j = 0; j < inner; j++) {                       \
      A S = INIT;                                               \
      for (int64_t rr = 0; rr < r; rr++) {                      \
        T X = x[rr * inner + j];                                \
        STEP;                                                   \
      }                                                         \
      o[j] = STORE(S);                                          \
    }

#define AINLINE static inline __attribute__((always_inline))
/* Runs a lane body with compile-time sizes on the hot inner == 1 shape
 * (64 contiguous lanes), so the accumulators can live in registers. */
#define LANES_DISPATCH(BODY, x, nrows, stride, nl, ...)         \
  do {                                                          \
    if ((nl) == LMIN && (stride) == LMIN)                       \
      BODY(x, nrows, LMIN, LMIN, __VA_ARGS__);                  \
    else                                                        \
      BODY(x, nrows, stride, nl, __VA_ARGS__);                  \
  } while (0)

#define LOAD_ID(v) (v)
#define STORE_ID(s) (s)
#define LOAD_F16(v) em_f16_to_f32(v)
#define LOAD_BF16(v) em_bf16_to_f32(v)

typedef double _Complex cdouble;
typedef float _Complex cfloat;

/* ---- sum / product of integers (unsigned, wrapping) ------------------- */

/* MT: the type the product is formed in, wide enough that promotion to a
 * signed int never happens (uint16_t * uint16_t would overflow int). */
#define INT_SUMPROD(N, UT, MT)                                                 \
  static void sum_##N##_init(void *a, int64_t B) {                             \
    memset(a, 0, (size_t)B * sizeof(UT));                                      \
  }                                                                            \
  static void prod_##N##_init(void *a, int64_t B) {                            \
    UT *p = a;                                                                 \
    for (int64_t i = 0; i < B; i++) p[i] = 1;                                  \
  }                                                                            \
  AINLINE void sum_##N##_body(const UT *restrict x, int64_t nrows,             \
                              int64_t stride, int64_t nl, UT *restrict acc) {  \
    for (int64_t r = 0; r < nrows; r++) {                                      \
      const UT *restrict row = x + r * stride;                                 \
      for (int64_t i = 0; i < nl; i++) acc[i] = (UT)(acc[i] + row[i]);         \
    }                                                                          \
  }                                                                            \
  EM_CLONES static void sum_##N##_lanes(const void *x, int64_t nrows,          \
                                        int64_t stride, int64_t nl, int64_t B, \
                                        void *acc, int64_t g0) {               \
    LANES_DISPATCH(sum_##N##_body, (const UT *)x, nrows, stride, nl,           \
                   (UT *)acc);                                                 \
  }                                                                            \
  static void prod_##N##_lanes(const void *xv, int64_t nrows, int64_t stride,  \
                               int64_t nl, int64_t B, void *accv,              \
                               int64_t g0) {                                   \
    const UT *restrict x = xv;                                                 \
    UT *restrict acc = accv;                                                   \
    for (int64_t r = 0; r < nrows; r++) {                                      \
      const UT *restrict row = x + r * stride;                                 \
      for (int64_t i = 0; i < nl; i++)                                         \
        acc[i] = (UT)((MT)acc[i] * (MT)row[i]);                                \
    }                                                                          \
  }                                                                            \
  static void sum_##N##_combine(void *dv, const void *sv, int64_t B) {         \
    UT *d = dv;                                                                \
    const UT *s = sv;                                                          \
    for (int64_t i = 0; i < B; i++) d[i] = (UT)(d[i] + s[i]);                  \
  }                                                                            \
  static void prod_##N##_combine(void *dv, const void *sv, int64_t B) {        \
    UT *d = dv;                                                                \
    const UT *s = sv;                                                          \
    for (int64_t i = 0; i < B; i++) d[i] = (UT)((MT)d[i] * (MT)s[i]);          \
  }                                                                            \
  static void sum_##N##_finish(const void *av, int64_t k, int64_t w,           \
                               void *ov) {                                     \
    const UT *a = av;                                                          \
    UT *o = ov;                                                                \
    for (int64_t j = 0; j < w; j++) {                                          \
      UT s = a[j];                                                             \
      for (int64_t m = 1; m < k; m++) s = (UT)(s + a[m * w + j]);              \
      o[j] = s;                                                                \
    }                                                                          \
  }                                                                            \
  static void prod_##N##_finish(const void *av, int64_t k, int64_t w,          \
                                void *ov) {                                    \
    const UT *a = av;                                                          \
    UT *o = ov;                                                                \
    for (int64_t j = 0; j < w; j++) {                                          \
      UT s = a[j];                                                             \
      for (int64_t m = 1; m < k; m++) s = (UT)((MT)s * (MT)a[m * w + j]);      \
      o[j] = s;                                                                \
    }                                                                          \
  }                                                                            \
  static void sum_##N##_naive(const void *xv, int64_t n, int64_t r,           \
                              int64_t inner, void *ov) {                       \
    NAIVE(UT, UT, UT, 0, S = (UT)(S + X), STORE_ID)                            \
  }                                                                            \
  static void prod_##N##_naive(const void *xv, int64_t n, int64_t r,          \
                               int64_t inner, void *ov) {                      \
    NAIVE(UT, UT, UT, 1, S = (UT)((MT)S * (MT)X), STORE_ID)                    \
  }                                                                            \
  static const rk_t sum_##N = {sizeof(UT),        sizeof(UT),                  \
                               sizeof(UT),        0,                           \
                               sum_##N##_init,    sum_##N##_lanes,             \
                               sum_##N##_combine, sum_##N##_finish,            \
                               sum_##N##_naive};                               \
  static const rk_t prod_##N = {sizeof(UT),         sizeof(UT),                \
                                sizeof(UT),         0,                         \
                                prod_##N##_init,    prod_##N##_lanes,          \
                                prod_##N##_combine, prod_##N##_finish,         \
                                prod_##N##_naive};

INT_SUMPROD(u8, uint8_t, unsigned)
INT_SUMPROD(u16, uint16_t, unsigned)
INT_SUMPROD(u32, uint32_t, uint32_t)
INT_SUMPROD(u64, uint64_t, uint64_t)

/* ---- sum of floats and complex ---------------------------------------- */

/* Float sums stream their input once, so memory sets their speed; on
 * Zen 4 their AVX-512 clone summed a 256 MiB f32 array 2-8% slower than
 * the AVX2 one (same loop, interleaved runs), so they skip it. The
 * condition is simd.h's for EM_CLONES. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(EMILY_NO_CLONES)
#define SUM_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SUM_CLONES
#endif

/* T input, L lane type (f32 adds, or the input's own precision), A the
 * f64 accumulator the lanes are flushed into, STORE rounds A to T once. */
#define FLOAT_SUM(N, T, L, A, LOAD, STORE)                                     \
  static void sum_##N##_init(void *a, int64_t B) {                             \
    A *p = a;                                                                  \
    for (int64_t i = 0; i < B; i++) p[i] = 0;                                  \
  }                                                                            \
  AINLINE void sum_##N##_body(const T *restrict x, int64_t nrows,              \
                              int64_t stride, int64_t nl, A *restrict acc) {   \
    L tmp[BUF / sizeof(A)];                                                    \
    for (int64_t r0 = 0; r0 < nrows; r0 += FLUSH) {                            \
      int64_t r1 = nrows - r0 < FLUSH ? nrows : r0 + FLUSH;                    \
      for (int64_t i = 0; i < nl; i++) tmp[i] = 0;                             \
      for (int64_t r = r0; r < r1; r++) {                                      \
        const T *restrict row = x + r * stride;                                \
        for (int64_t i = 0; i < nl; i++) tmp[i] += LOAD(row[i]);               \
      }                                                                        \
      for (int64_t i = 0; i < nl; i++) acc[i] += tmp[i];                       \
    }                                                                          \
  }                                                                            \
  /* The hot shape, 64 contiguous lanes (inner divides 64): the body's     \
   * sums in the same order, with the flushed lanes in a local array and   \
   * each block's first row loaded instead of added to zero (bitwise the   \
   * same: 0 + x differs from x only for x = -0.0, and acc, never -0.0,    \
   * absorbs both alike). This loop streamed a 256 MiB f32 array ~15%      \
   * faster than the body compiled for 64 lanes (one thread). */           \
  AINLINE void sum_##N##_body64(const T *restrict x, int64_t nrows,            \
                                A *restrict accp) {                            \
    A acc[LMIN];                                                               \
    for (int i = 0; i < LMIN; i++) acc[i] = accp[i];                           \
    for (int64_t r0 = 0; r0 < nrows; r0 += FLUSH) {                            \
      int64_t r1 = nrows - r0 < FLUSH ? nrows : r0 + FLUSH;                    \
      L tmp[LMIN];                                                             \
      for (int i = 0; i < LMIN; i++) tmp[i] = LOAD(x[r0 * LMIN + i]);          \
      for (int64_t r = r0 + 1; r < r1; r++)                                    \
        for (int i = 0; i < LMIN; i++) tmp[i] += LOAD(x[r * LMIN + i]);        \
      for (int i = 0; i < LMIN; i++) acc[i] += tmp[i];                         \
    }                                                                          \
    for (int i = 0; i < LMIN; i++) accp[i] = acc[i];                           \
  }                                                                            \
  SUM_CLONES static void sum_##N##_lanes(const void *x, int64_t nrows,         \
                                         int64_t stride, int64_t nl,           \
                                         int64_t B, void *acc, int64_t g0) {   \
    if (nl == LMIN && stride == LMIN)                                          \
      sum_##N##_body64((const T *)x, nrows, (A *)acc);                         \
    else                                                                       \
      sum_##N##_body((const T *)x, nrows, stride, nl, (A *)acc);               \
  }                                                                            \
  static void sum_##N##_combine(void *dv, const void *sv, int64_t B) {         \
    A *d = dv;                                                                 \
    const A *s = sv;                                                           \
    for (int64_t i = 0; i < B; i++) d[i] += s[i];                              \
  }                                                                            \
  static void sum_##N##_finish(const void *av, int64_t k, int64_t w,           \
                               void *ov) {                                     \
    const A *a = av;                                                           \
    T *o = ov;                                                                 \
    for (int64_t j = 0; j < w; j++) {                                          \
      A s = a[j];                                                              \
      for (int64_t m = 1; m < k; m++) s += a[m * w + j];                       \
      o[j] = STORE(s);                                                         \
    }                                                                          \
  }                                                                            \
  static void sum_##N##_naive(const void *xv, int64_t n, int64_t r,           \
                              int64_t inner, void *ov) {                       \
    NAIVE(T, T, A, 0, S += LOAD(X), STORE)                                     \
  }                                                                            \
  static const rk_t sum_##N = {sizeof(T),         sizeof(T),  sizeof(A), 0,    \
                               sum_##N##_init,    sum_##N##_lanes,             \
                               sum_##N##_combine, sum_##N##_finish,            \
                               sum_##N##_naive};

#define STORE_F32(s) ((float)(s))
#define STORE_C64(s) CMPLXF((float)creal(s), (float)cimag(s))

FLOAT_SUM(f16, uint16_t, float, double, LOAD_F16, em_f64_to_f16)
FLOAT_SUM(bf16, uint16_t, float, double, LOAD_BF16, em_f64_to_bf16)
FLOAT_SUM(f32, float, float, double, LOAD_ID, STORE_F32)
FLOAT_SUM(f64, double, double, double, LOAD_ID, STORE_ID)
FLOAT_SUM(c64, cfloat, cfloat, cdouble, LOAD_ID, STORE_C64)
FLOAT_SUM(c128, cdouble, cdouble, cdouble, LOAD_ID, STORE_ID)

/* ---- product of floats and complex (f64 accumulation) ----------------- */

#define FMUL(a, b) ((a) * (b))
static inline cdouble cmul(cdouble a, cdouble b) {
  double ar = creal(a), ai = cimag(a), br = creal(b), bi = cimag(b);
  return CMPLX(ar * br - ai * bi, ar * bi + ai * br);
}

#define FLOAT_PROD(N, T, A, LOAD, MUL, STORE)                                  \
  static void prod_##N##_init(void *a, int64_t B) {                            \
    A *p = a;                                                                  \
    for (int64_t i = 0; i < B; i++) p[i] = 1;                                  \
  }                                                                            \
  static void prod_##N##_lanes(const void *xv, int64_t nrows, int64_t stride,  \
                               int64_t nl, int64_t B, void *accv,              \
                               int64_t g0) {                                   \
    const T *restrict x = xv;                                                  \
    A *restrict acc = accv;                                                    \
    for (int64_t r = 0; r < nrows; r++) {                                      \
      const T *restrict row = x + r * stride;                                  \
      for (int64_t i = 0; i < nl; i++)                                         \
        acc[i] = MUL(acc[i], (A)LOAD(row[i]));                                 \
    }                                                                          \
  }                                                                            \
  static void prod_##N##_combine(void *dv, const void *sv, int64_t B) {        \
    A *d = dv;                                                                 \
    const A *s = sv;                                                           \
    for (int64_t i = 0; i < B; i++) d[i] = MUL(d[i], s[i]);                    \
  }                                                                            \
  static void prod_##N##_finish(const void *av, int64_t k, int64_t w,          \
                                void *ov) {                                    \
    const A *a = av;                                                           \
    T *o = ov;                                                                 \
    for (int64_t j = 0; j < w; j++) {                                          \
      A s = a[j];                                                              \
      for (int64_t m = 1; m < k; m++) s = MUL(s, a[m * w + j]);                \
      o[j] = STORE(s);                                                         \
    }                                                                          \
  }                                                                            \
  static void prod_##N##_naive(const void *xv, int64_t n, int64_t r,          \
                               int64_t inner, void *ov) {                      \
    NAIVE(T, T, A, 1, S = MUL(S, (A)LOAD(X)), STORE)                           \
  }                                                                            \
  static const rk_t prod_##N = {sizeof(T),         sizeof(T),   sizeof(A), 0,  \
                                prod_##N##_init,   prod_##N##_lanes,           \
                                prod_##N##_combine, prod_##N##_finish,         \
                                prod_##N##_naive};

FLOAT_PROD(f16, uint16_t, double, LOAD_F16, FMUL, em_f64_to_f16)
FLOAT_PROD(bf16, uint16_t, double, LOAD_BF16, FMUL, em_f64_to_bf16)
FLOAT_PROD(f32, float, double, LOAD_ID, FMUL, STORE_F32)
FLOAT_PROD(f64, double, double, LOAD_ID, FMUL, STORE_ID)
FLOAT_PROD(c64, cfloat, cdouble, LOAD_ID, cmul, STORE_C64)
FLOAT_PROD(c128, cdouble, cdouble, LOAD_ID, cmul, STORE_ID)

/* ---- max / min --------------------------------------------------------- */

/* TAKE(x, a): whether x replaces the running extreme a. For floats a NaN
 * x always replaces, and a NaN a is never replaced (x > NaN is false). */
#define TAKE_MAX_I(x, a) ((x) > (a))
#define TAKE_MIN_I(x, a) ((x) < (a))
#define TAKE_MAX_F(x, a) ((x) > (a) || (x) != (x))
#define TAKE_MIN_F(x, a) ((x) < (a) || (x) != (x))

#define MINMAX(N, T, V, LOAD, TAKE, IDENT, STORE)                              \
  static void N##_init(void *a, int64_t B) {                                   \
    V *p = a;                                                                  \
    for (int64_t i = 0; i < B; i++) p[i] = IDENT;                              \
  }                                                                            \
  AINLINE void N##_body(const T *restrict x, int64_t nrows, int64_t stride,    \
                        int64_t nl, V *restrict acc) {                         \
    for (int64_t r = 0; r < nrows; r++) {                                      \
      const T *restrict row = x + r * stride;                                  \
      for (int64_t i = 0; i < nl; i++) {                                       \
        V v = LOAD(row[i]);                                                    \
        acc[i] = TAKE(v, acc[i]) ? v : acc[i];                                 \
      }                                                                        \
    }                                                                          \
  }                                                                            \
  EM_CLONES static void N##_lanes(const void *x, int64_t nrows,                \
                                  int64_t stride, int64_t nl, int64_t B,       \
                                  void *acc, int64_t g0) {                     \
    LANES_DISPATCH(N##_body, (const T *)x, nrows, stride, nl, (V *)acc);       \
  }                                                                            \
  static void N##_combine(void *dv, const void *sv, int64_t B) {               \
    V *d = dv;                                                                 \
    const V *s = sv;                                                           \
    for (int64_t i = 0; i < B; i++) d[i] = TAKE(s[i], d[i]) ? s[i] : d[i];     \
  }                                                                            \
  static void N##_finish(const void *av, int64_t k, int64_t w, void *ov) {     \
    const V *a = av;                                                           \
    T *o = ov;                                                                 \
    for (int64_t j = 0; j < w; j++) {                                          \
      V s = a[j];                                                              \
      for (int64_t m = 1; m < k; m++) {                                        \
        V v = a[m * w + j];                                                    \
        s = TAKE(v, s) ? v : s;                                                \
      }                                                                        \
      o[j] = STORE(s);                                                         \
    }                                                                          \
  }                                                                            \
  static void N##_naive(const void *xv, int64_t n, int64_t r, int64_t inner,  \
                        void *ov) {                                            \
    NAIVE(T, T, V, IDENT, V v = LOAD(X); S = TAKE(v, S) ? v : S, STORE)        \
  }                                                                            \
  static const rk_t N = {sizeof(T),   sizeof(T),  sizeof(V),  0,               \
                         N##_init,    N##_lanes,  N##_combine, N##_finish,     \
                         N##_naive};

#define MINMAX_INT(S, T, LO, HI)                                               \
  MINMAX(max_##S, T, T, LOAD_ID, TAKE_MAX_I, LO, STORE_ID)                     \
  MINMAX(min_##S, T, T, LOAD_ID, TAKE_MIN_I, HI, STORE_ID)
MINMAX_INT(u8, uint8_t, 0, UINT8_MAX)
MINMAX_INT(u16, uint16_t, 0, UINT16_MAX)
MINMAX_INT(u32, uint32_t, 0, UINT32_MAX)
MINMAX_INT(u64, uint64_t, 0, UINT64_MAX)
MINMAX_INT(s8, int8_t, INT8_MIN, INT8_MAX)
MINMAX_INT(s16, int16_t, INT16_MIN, INT16_MAX)
MINMAX_INT(s32, int32_t, INT32_MIN, INT32_MAX)
MINMAX_INT(s64, int64_t, INT64_MIN, INT64_MAX)

#define MINMAX_FLT(S, T, V, LOAD, STORE)                                       \
  MINMAX(max_##S, T, V, LOAD, TAKE_MAX_F, -(V)INFINITY, STORE)                 \
  MINMAX(min_##S, T, V, LOAD, TAKE_MIN_F, (V)INFINITY, STORE)
MINMAX_FLT(f16, uint16_t, float, LOAD_F16, em_f32_to_f16)
MINMAX_FLT(bf16, uint16_t, float, LOAD_BF16, em_f32_to_bf16)
MINMAX_FLT(f32, float, float, LOAD_ID, STORE_ID)
MINMAX_FLT(f64, double, double, LOAD_ID, STORE_ID)

/* ---- all / any (u8 out) ----------------------------------------------- */

#define NZ_ID(v) ((v) != 0)
#define NZ_HALF(v) (((v)&0x7fffu) != 0) /* +-0 false, NaN true */
#define NZ_CPLX(v) (creal(v) != 0 || cimag(v) != 0)

#define ALLANY(N, T, NZ)                                                       \
  static void all_##N##_init(void *a, int64_t B) {                             \
    memset(a, 1, (size_t)B);                                                   \
  }                                                                            \
  static void any_##N##_init(void *a, int64_t B) { memset(a, 0, (size_t)B); }  \
  AINLINE void all_##N##_body(const T *restrict x, int64_t nrows,              \
                              int64_t stride, int64_t nl,                      \
                              uint8_t *restrict acc) {                         \
    for (int64_t r = 0; r < nrows; r++) {                                      \
      const T *restrict row = x + r * stride;                                  \
      for (int64_t i = 0; i < nl; i++) acc[i] &= (uint8_t)NZ(row[i]);          \
    }                                                                          \
  }                                                                            \
  AINLINE void any_##N##_body(const T *restrict x, int64_t nrows,              \
                              int64_t stride, int64_t nl,                      \
                              uint8_t *restrict acc) {                         \
    for (int64_t r = 0; r < nrows; r++) {                                      \
      const T *restrict row = x + r * stride;                                  \
      for (int64_t i = 0; i < nl; i++) acc[i] |= (uint8_t)NZ(row[i]);          \
    }                                                                          \
  }                                                                            \
  EM_CLONES static void all_##N##_lanes(const void *x, int64_t nrows,          \
                                        int64_t stride, int64_t nl, int64_t B, \
                                        void *acc, int64_t g0) {               \
    LANES_DISPATCH(all_##N##_body, (const T *)x, nrows, stride, nl,            \
                   (uint8_t *)acc);                                            \
  }                                                                            \
  EM_CLONES static void any_##N##_lanes(const void *x, int64_t nrows,          \
                                        int64_t stride, int64_t nl, int64_t B, \
                                        void *acc, int64_t g0) {               \
    LANES_DISPATCH(any_##N##_body, (const T *)x, nrows, stride, nl,            \
                   (uint8_t *)acc);                                            \
  }                                                                            \
  static void all_##N##_naive(const void *xv, int64_t n, int64_t r,           \
                              int64_t inner, void *ov) {                       \
    NAIVE(T, uint8_t, uint8_t, 1, S &= (uint8_t)NZ(X), STORE_ID)               \
  }                                                                            \
  static void any_##N##_naive(const void *xv, int64_t n, int64_t r,           \
                              int64_t inner, void *ov) {                       \
    NAIVE(T, uint8_t, uint8_t, 0, S |= (uint8_t)NZ(X), STORE_ID)               \
  }                                                                            \
  static const rk_t all_##N = {sizeof(T),       1,          1, 0,           \
                               all_##N##_init,  all_##N##_lanes,            \
                               all_combine,     all_finish, all_##N##_naive}; \
  static const rk_t any_##N = {sizeof(T),       1,          1, 0,           \
                               any_##N##_init,  any_##N##_lanes,            \
                               any_combine,     any_finish, any_##N##_naive};

static void all_combine(void *dv, const void *sv, int64_t B) {
  uint8_t *d = dv;
  const uint8_t *s = sv;
  for (int64_t i = 0; i < B; i++) d[i] &= s[i];
}
static void any_combine(void *dv, const void *sv, int64_t B) {
  uint8_t *d = dv;
  const uint8_t *s = sv;
  for (int64_t i = 0; i < B; i++) d[i] |= s[i];
}
static void all_finish(const void *av, int64_t k, int64_t w, void *ov) {
  const uint8_t *a = av;
  uint8_t *o = ov;
  for (int64_t j = 0; j < w; j++) {
    uint8_t s = a[j];
    for (int64_t m = 1; m < k; m++) s &= a[m * w + j];
    o[j] = s;
  }
}
static void any_finish(const void *av, int64_t k, int64_t w, void *ov) {
  const uint8_t *a = av;
  uint8_t *o = ov;
  for (int64_t j = 0; j < w; j++) {
    uint8_t s = a[j];
    for (int64_t m = 1; m < k; m++) s |= a[m * w + j];
    o[j] = s;
  }
}

/* Signed integers share the unsigned kernels (x != 0 is the same test). */
ALLANY(u8, uint8_t, NZ_ID)
ALLANY(u16, uint16_t, NZ_ID)
ALLANY(u32, uint32_t, NZ_ID)
ALLANY(u64, uint64_t, NZ_ID)
ALLANY(f16, uint16_t, NZ_HALF)
ALLANY(f32, float, NZ_ID)
ALLANY(f64, double, NZ_ID)
ALLANY(c64, cfloat, NZ_CPLX)
ALLANY(c128, cdouble, NZ_CPLX)

/* ---- argmax / argmin --------------------------------------------------- */

/* Lane state: V val[B], then (8-aligned) int64_t idx[B] holding the
 * super-row number of the lane's pick, -1 while the lane is empty. The row
 * of lane m*w + j with super-row g is g*k + m. */
static inline int64_t idx_off(int64_t B, size_t vsz) {
  return (B * (int64_t)vsz + 7) & ~(int64_t)7;
}

#define ISNAN_F(v) ((v) != (v))
#define ISNAN_I(v) 0
#define GT(a, b) ((a) > (b))
#define LT(a, b) ((a) < (b))

/* The scan's order: NaN (the later one among NaNs) beats numbers; among
 * numbers DIR decides, equal values go to the later row iff TIE. */
#define ARG(N, T, V, LOAD, ISNAN, DIR, TIE)                                    \
  static inline int N##_better(V vb, int64_t rb, V va, int64_t ra) {           \
    if (ra < 0) return rb >= 0;                                                \
    if (rb < 0) return 0;                                                      \
    int bn = ISNAN(vb), an = ISNAN(va);                                        \
    if (bn || an) return bn && (!an || rb > ra);                               \
    if (DIR(vb, va)) return 1;                                                 \
    if (DIR(va, vb)) return 0;                                                 \
    return TIE ? rb > ra : rb < ra;                                            \
  }                                                                            \
  static void N##_init(void *a, int64_t B) {                                   \
    V *val = a;                                                                \
    int64_t *idx = (int64_t *)((char *)a + idx_off(B, sizeof(V)));             \
    for (int64_t i = 0; i < B; i++) {                                          \
      val[i] = 0;                                                              \
      idx[i] = -1;                                                             \
    }                                                                          \
  }                                                                            \
  AINLINE void N##_body(const T *restrict x, int64_t nrows, int64_t stride,    \
                        int64_t nl, V *restrict val, int64_t *restrict idx,    \
                        int64_t g0) {                                          \
    for (int64_t r = 0; r < nrows; r++) {                                      \
      const T *restrict row = x + r * stride;                                  \
      int64_t g = g0 + r;                                                      \
      for (int64_t i = 0; i < nl; i++) {                                       \
        V v = LOAD(row[i]), c = val[i];                                        \
        int64_t ci = idx[i];                                                   \
        int take = (ci < 0) | ISNAN(v) |                                       \
                   ((ISNAN(c) == 0) & (DIR(v, c) | ((TIE) & (v == c))));  \
        val[i] = take ? v : c;                                                 \
        idx[i] = take ? g : ci;                                                \
      }                                                                        \
    }                                                                          \
  }                                                                            \
  EM_CLONES static void N##_lanes(const void *x, int64_t nrows,                \
                                  int64_t stride, int64_t nl, int64_t B,       \
                                  void *acc, int64_t g0) {                     \
    V *val = acc;                                                              \
    int64_t *idx = (int64_t *)((char *)acc + idx_off(B, sizeof(V)));           \
    LANES_DISPATCH(N##_body, (const T *)x, nrows, stride, nl, val, idx, g0);   \
  }                                                                            \
  static void N##_combine(void *dv, const void *sv, int64_t B) {               \
    V *dval = dv;                                                              \
    const V *sval = sv;                                                        \
    int64_t *didx = (int64_t *)((char *)dv + idx_off(B, sizeof(V)));           \
    const int64_t *sidx =                                                      \
        (const int64_t *)((const char *)sv + idx_off(B, sizeof(V)));           \
    for (int64_t i = 0; i < B; i++)                                            \
      if (N##_better(sval[i], sidx[i], dval[i], didx[i])) {                    \
        dval[i] = sval[i];                                                     \
        didx[i] = sidx[i];                                                     \
      }                                                                        \
  }                                                                            \
  static void N##_finish(const void *av, int64_t k, int64_t w, void *ov) {     \
    const V *val = av;                                                         \
    const int64_t *idx =                                                       \
        (const int64_t *)((const char *)av + idx_off(k * w, sizeof(V)));       \
    int64_t *o = ov;                                                           \
    for (int64_t j = 0; j < w; j++) {                                          \
      V bv = val[j];                                                           \
      int64_t br = idx[j] < 0 ? -1 : idx[j] * k;                               \
      for (int64_t m = 1; m < k; m++) {                                        \
        int64_t l = m * w + j;                                                 \
        int64_t rr = idx[l] < 0 ? -1 : idx[l] * k + m;                         \
        if (N##_better(val[l], rr, bv, br)) {                                  \
          bv = val[l];                                                         \
          br = rr;                                                             \
        }                                                                      \
      }                                                                        \
      o[j] = br;                                                               \
    }                                                                          \
  }                                                                            \
  static void N##_naive(const void *xv, int64_t n, int64_t r, int64_t inner,  \
                        void *ov) {                                            \
    const T *x = xv;                                                           \
    int64_t *o = ov;                                                           \
    for (int64_t q = 0; q < n; q++, x += r * inner, o += inner)                \
      for (int64_t j = 0; j < inner; j++) {                                    \
        V c = LOAD(x[j]);                                                      \
        int64_t ci = 0;                                                        \
        for (int64_t rr = 1; rr < r; rr++) {                                   \
          V v = LOAD(x[rr * inner + j]);                                       \
          if (N##_better(v, rr, c, ci)) {                                      \
            c = v;                                                             \
            ci = rr;                                                           \
          }                                                                    \
        }                                                                      \
        o[j] = ci;                                                             \
      }                                                                        \
  }                                                                            \
  static const rk_t N = {sizeof(T), sizeof(int64_t), sizeof(V),  8,           \
                         N##_init,  N##_lanes,       N##_combine, N##_finish, \
                         N##_naive};

#define ARG4(S, T, V, LOAD, ISNAN)                     \
  ARG(argmax_lo_##S, T, V, LOAD, ISNAN, GT, 0)         \
  ARG(argmax_hi_##S, T, V, LOAD, ISNAN, GT, 1)         \
  ARG(argmin_lo_##S, T, V, LOAD, ISNAN, LT, 0)         \
  ARG(argmin_hi_##S, T, V, LOAD, ISNAN, LT, 1)
ARG4(u8, uint8_t, uint8_t, LOAD_ID, ISNAN_I)
ARG4(u16, uint16_t, uint16_t, LOAD_ID, ISNAN_I)
ARG4(u32, uint32_t, uint32_t, LOAD_ID, ISNAN_I)
ARG4(u64, uint64_t, uint64_t, LOAD_ID, ISNAN_I)
ARG4(s8, int8_t, int8_t, LOAD_ID, ISNAN_I)
ARG4(s16, int16_t, int16_t, LOAD_ID, ISNAN_I)
ARG4(s32, int32_t, int32_t, LOAD_ID, ISNAN_I)
ARG4(s64, int64_t, int64_t, LOAD_ID, ISNAN_I)
ARG4(f16, uint16_t, float, LOAD_F16, ISNAN_F)
ARG4(bf16, uint16_t, float, LOAD_BF16, ISNAN_F)
ARG4(f32, float, float, LOAD_ID, ISNAN_F)
ARG4(f64, double, double, LOAD_ID, ISNAN_F)

/* ---- kernel tables ----------------------------------------------------- */

/* Indexed by em_dtype in EM_DTYPES order; NULL: not defined. */
static const rk_t *const sum_tab[EM_DTYPE_COUNT] = {
    &sum_u8,  &sum_u16, &sum_u32, &sum_u64, &sum_u8,  &sum_u16, &sum_u32,
    &sum_u64, &sum_f16, &sum_bf16, &sum_f32, &sum_f64, &sum_c64, &sum_c128};
static const rk_t *const prod_tab[EM_DTYPE_COUNT] = {
    &prod_u8,  &prod_u16, &prod_u32,  &prod_u64, &prod_u8,
    &prod_u16, &prod_u32, &prod_u64,  &prod_f16, &prod_bf16,
    &prod_f32, &prod_f64, &prod_c64, &prod_c128};
static const rk_t *const max_tab[EM_DTYPE_COUNT] = {
    &max_u8,  &max_u16, &max_u32,  &max_u64, &max_s8,  &max_s16, &max_s32,
    &max_s64, &max_f16, &max_bf16, &max_f32, &max_f64, NULL,     NULL};
static const rk_t *const min_tab[EM_DTYPE_COUNT] = {
    &min_u8,  &min_u16, &min_u32,  &min_u64, &min_s8,  &min_s16, &min_s32,
    &min_s64, &min_f16, &min_bf16, &min_f32, &min_f64, NULL,     NULL};
/* bf16 zero/NaN tests are the same bit test as f16's. */
static const rk_t *const all_tab[EM_DTYPE_COUNT] = {
    &all_u8,  &all_u16, &all_u32, &all_u64, &all_u8,  &all_u16, &all_u32,
    &all_u64, &all_f16, &all_f16, &all_f32, &all_f64, &all_c64, &all_c128};
static const rk_t *const any_tab[EM_DTYPE_COUNT] = {
    &any_u8,  &any_u16, &any_u32, &any_u64, &any_u8,  &any_u16, &any_u32,
    &any_u64, &any_f16, &any_f16, &any_f32, &any_f64, &any_c64, &any_c128};

#define ARG_TAB(NAME, P)                                                      \
  static const rk_t *const NAME[EM_DTYPE_COUNT] = {                           \
      &P##u8,  &P##u16, &P##u32,  &P##u64, &P##s8,  &P##s16, &P##s32,         \
      &P##s64, &P##f16, &P##bf16, &P##f32, &P##f64, NULL,    NULL};
ARG_TAB(argmax_lo_tab, argmax_lo_)
ARG_TAB(argmax_hi_tab, argmax_hi_)
ARG_TAB(argmin_lo_tab, argmin_lo_)
ARG_TAB(argmin_hi_tab, argmin_hi_)

/* ---- driver ------------------------------------------------------------ */

typedef struct {
  const rk_t *kn;
  const char *x;
  char *y;
  int64_t r, inner;
  int64_t k;      /* rows per super-row (1 when inner >= LMIN) */
  int64_t W;      /* tile width in columns when k == 1 */
  int64_t ntiles; /* column tiles per outer index */
  int64_t P;      /* parts each task's rows are split into */
  int64_t nsuper, rem; /* full super-rows, and rows left over (< k) */
  char *partial;  /* P > 1: one lane state per item */
  int64_t slot;   /* bytes of one lane state in partial */
} drv_t;

static int64_t lane_bytes(const rk_t *kn, int64_t B) {
  return idx_off(B, kn->vsz) + B * (int64_t)kn->isz;
}

static void task_cols(const drv_t *d, int64_t task, int64_t *o, int64_t *col0,
                      int64_t *w) {
  *o = task / d->ntiles;
  *col0 = (task % d->ntiles) * d->W;
  *w = d->k > 1 ? d->inner
                : (d->inner - *col0 < d->W ? d->inner - *col0 : d->W);
}

static void drv_items(void *ctx, int64_t b, int64_t e, int tid) {
  const drv_t *d = ctx;
  const rk_t *kn = d->kn;
  _Alignas(64) unsigned char local[BUF + 64];
  int64_t stride = d->k * d->inner;
  for (int64_t it = b; it < e; it++) {
    int64_t task = it / d->P, p = it % d->P, o, col0, w;
    task_cols(d, task, &o, &col0, &w);
    int64_t B = d->k * w;
    void *acc = d->P > 1 ? (void *)(d->partial + it * d->slot) : local;
    kn->init(acc, B);
    const char *base =
        d->x + (o * d->r * d->inner + col0) * (int64_t)kn->esz;
    /* Part p gets super-rows [g0, g1): an even split, remainder first. */
    int64_t q = d->nsuper / d->P, extra = d->nsuper % d->P;
    int64_t g0 = p * q + (p < extra ? p : extra);
    int64_t g1 = g0 + q + (p < extra);
    if (g1 > g0)
      kn->lanes(base + g0 * stride * (int64_t)kn->esz, g1 - g0, stride, B, B,
                acc, g0);
    if (p == d->P - 1 && d->rem)
      kn->lanes(base + d->nsuper * stride * (int64_t)kn->esz, 1, stride,
                d->rem * d->inner, B, acc, d->nsuper);
    if (d->P == 1)
      kn->finish(acc, d->k, w,
                 d->y + (o * d->inner + col0) * (int64_t)kn->osz);
  }
}

static void naive_items(void *ctx, int64_t b, int64_t e, int tid) {
  const drv_t *d = ctx;
  const rk_t *kn = d->kn;
  kn->naive(d->x + b * d->r * d->inner * (int64_t)kn->esz, e - b, d->r,
            d->inner, d->y + b * d->inner * (int64_t)kn->osz);
}

static void run(const rk_t *kn, const void *x, void *y, int64_t outer,
                int64_t r, int64_t inner) {
  if (!kn || outer <= 0 || inner <= 0) return;
  drv_t d = {.kn = kn, .x = x, .y = y, .r = r, .inner = inner, .P = 1};
  d.W = (BUF / (int64_t)(kn->vsz + kn->isz)) & ~(int64_t)15;
  if (r <= 0) { /* identity: finish a fresh state tile by tile */
    _Alignas(64) unsigned char local[BUF + 64];
    for (int64_t o = 0; o < outer; o++)
      for (int64_t c = 0; c < inner; c += d.W) {
        int64_t w = inner - c < d.W ? inner - c : d.W;
        kn->init(local, w);
        kn->finish(local, 1, w,
                   (char *)y + (o * inner + c) * (int64_t)kn->osz);
      }
    return;
  }
  int64_t chunk = em_cpu_reduce_chunk_bytes > 0 ? em_cpu_reduce_chunk_bytes
                                                 : 1;
  if (r * inner < LMIN) { /* tiny folds: per-output loops beat lanes */
    int64_t grain = chunk / (r * inner * (int64_t)kn->esz) + 1;
    em_parallel_for(outer, grain, naive_items, &d);
    return;
  }
  d.k = inner >= LMIN ? 1 : (LMIN + inner - 1) / inner;
  if (d.k > r) d.k = r;
  d.ntiles = d.k > 1 ? 1 : (inner + d.W - 1) / d.W;
  d.nsuper = r / d.k;
  d.rem = r % d.k;
  int64_t tasks = outer * d.ntiles;
  int64_t bytes = outer * r * inner * (int64_t)kn->esz;
  int64_t nt = em_parallel_threads();
  /* Too few tasks to keep every thread busy: split the rows as well. */
  if (nt > 1 && tasks < 4 * nt && bytes >= 2 * chunk) {
    int64_t P = (4 * nt + tasks - 1) / tasks;
    int64_t by_work = bytes / tasks / chunk;
    if (P > by_work) P = by_work;
    if (P > d.nsuper) P = d.nsuper;
    if (P > 1) {
      int64_t B = d.k > 1 ? d.k * inner : (inner < d.W ? inner : d.W);
      d.slot = (lane_bytes(kn, B) + 63) & ~(int64_t)63;
      d.partial = aligned_alloc(64, (size_t)(tasks * P * d.slot));
      if (d.partial) d.P = P; /* else run unsplit */
    }
  }
  int64_t items = tasks * d.P;
  int64_t per_item = bytes / items;
  int64_t grain = per_item >= chunk ? 1 : chunk / (per_item ? per_item : 1);
  em_parallel_for(items, grain, drv_items, &d);
  if (d.P > 1) {
    for (int64_t t = 0; t < tasks; t++) {
      int64_t o, col0, w;
      task_cols(&d, t, &o, &col0, &w);
      char *acc = d.partial + t * d.P * d.slot;
      for (int64_t p = 1; p < d.P; p++)
        kn->combine(acc, acc + p * d.slot, d.k * w);
      kn->finish(acc, d.k, w,
                 (char *)y + (o * inner + col0) * (int64_t)kn->osz);
    }
    free(d.partial);
  }
}

void em_cpu_reduce(em_op op, em_dtype t, const void *x, void *y,
                   int64_t outer, int64_t r, int64_t inner) {
  if ((unsigned)t >= EM_DTYPE_COUNT) return;
  if (em_cpu_narrow_reduce(op, t, x, y, outer, r, inner)) return;
  const rk_t *kn = NULL;
  switch (op) {
    case EM_OP_sum: kn = sum_tab[t]; break;
    case EM_OP_product: kn = prod_tab[t]; break;
    case EM_OP_reduce_max: kn = max_tab[t]; break;
    case EM_OP_reduce_min: kn = min_tab[t]; break;
    case EM_OP_all: kn = all_tab[t]; break;
    case EM_OP_any: kn = any_tab[t]; break;
    default: return;
  }
  run(kn, x, y, outer, r, inner);
}

void em_cpu_arg_reduce(em_op op, em_dtype t, bool tie_high, const void *x,
                       int64_t *y, int64_t outer, int64_t r, int64_t inner) {
  if ((unsigned)t >= EM_DTYPE_COUNT || r <= 0) return;
  if (em_cpu_narrow_arg_reduce(op, t, tie_high, x, y, outer, r, inner)) return;
  const rk_t *kn = NULL;
  if (op == EM_OP_argmax)
    kn = tie_high ? argmax_hi_tab[t] : argmax_lo_tab[t];
  else if (op == EM_OP_argmin)
    kn = tie_high ? argmin_hi_tab[t] : argmin_lo_tab[t];
  run(kn, x, y, outer, r, inner);
}
