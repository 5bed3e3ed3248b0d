/* window.c — the CPU kernels of the window family (Nx 0.13 semantics):
 *
 * EM_OP_window_reduce (window_sum/product/max/min). The input is made
 * contiguous and put in a canonical form: trailing axes the window leaves
 * alone (window 1, stride 1, no padding) merge into blocks of B elements,
 * and the last axis the window does touch ("ax") becomes the row axis.
 * A work item is (output row = one index of the axes before ax, a block of
 * at most WR_CB flattened outputs of that row). It starts an accumulator
 * row at the reduction's identity, then for every window position of the
 * axes before ax that lands inside the input (positions in the padding add
 * only the identity, so they are skipped) combines one input row into it:
 * for each window tap along ax, a contiguous (stride 1) or strided run of
 * "acc = op(acc, x)" that the compiler vectorises. A 3x3 pool over NCHW
 * data is 3 input rows x 3 taps of contiguous runs per output row. Items
 * run in parallel (em_parallel_for).
 *
 * Semantics: the result keeps the input dtype; integers wrap (sum and
 * product computed in unsigned arithmetic); f16/bf16 accumulate in f32 and
 * round once; f32/f64/complex accumulate in their own type (XLA does the
 * same; Nx's BinaryBackend sums in double, so f32 sums can differ in the
 * last bits). max/min propagate NaN, as Nx.max/Nx.min do. The accumulator
 * starts at the identity (0, 1, -inf / lowest, +inf / highest), so a
 * window sum of -0.0 alone is +0.0, as in Nx.
 *
 * EM_OP_window_scatter (window_scatter_max/min). Phase 1 (parallel over
 * windows): each window (row-major order of source) picks one input
 * position, scanning its taps in row-major order and taking x when
 * x >= best (max) or x <= best (min): on ties the last tap wins, as in both
 * Nx's BinaryBackend (Nx.greater_equal select) and EXLA (XLA select with
 * :gt); a NaN is picked only when it is the first tap looked at (NaN never
 * compares true), as in BinaryBackend. Taps in the padding are never
 * picked (XLA's rule; BinaryBackend pads with init and can pick it, which
 * drops that window's source value). A window lying wholly in the padding
 * picks nothing. Phase 2 (parallel over independent planes: the leading
 * axes the window leaves alone): the output starts at init and each
 * window's source value is added at its pick, in window order. Sums wrap
 * for integers, run in f32 for f16/bf16 (rounded once) and in the own type
 * for f32/f64. Selection compares in the input's dtype; the output has the
 * source's dtype. Window dilations are honoured (Nx passes 1). */
#include <complex.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/backend-impl.h"
#include "../core/half.h"
#include "../core/parallel.h"
#include "cpu-kernels.h"
#include "simd.h"

#define WR_CB 2048 /* flattened outputs per work item */

/* ---- window_reduce: element operations ---------------------------------- */

#define ID(v) (v)
#define IADD(T, U, a, b) ((T)((U)(a) + (U)(b)))
#define IMUL(T, U, a, b) ((T)((U)(a) * (U)(b)))
#define IMAX(a, b) ((b) > (a) ? (b) : (a))
#define IMIN(a, b) ((b) < (a) ? (b) : (a))
/* Floats: a NaN in either operand wins (acc is a, x is b; once acc is NaN
 * neither comparison is true, so it stays). */
#define FMAX(a, b) (((b) > (a) || (b) != (b)) ? (b) : (a))
#define FMIN(a, b) (((b) < (a) || (b) != (b)) ? (b) : (a))
#define FADD(a, b) ((a) + (b))
#define FMUL(a, b) ((a) * (b))

/* The innermost windowed axis of the canonical form: n input and o output
 * positions of B elements each; k taps, stride s, dilation d, low pad lo. */
typedef struct {
  int64_t n, o, k, s, d, lo, B;
} wgeom;

/* Canonical form shared by both kernels: axes 0..ax-1 index rows (with
 * their window taps), ax is the windowed row axis, trailing untouched axes
 * merge into g.B. */
typedef struct {
  int ax;
  int64_t n[EM_MAX_NDIM], o[EM_MAX_NDIM], k[EM_MAX_NDIM], s[EM_MAX_NDIM],
      d[EM_MAX_NDIM], lo[EM_MAX_NDIM], istr[EM_MAX_NDIM];
  wgeom g;
  int64_t L, nblk, rows, taps; /* outputs per row, blocks per row */
} wcanon;

static bool trivial_axis(const em_window *w, int i) {
  return w->window[i] == 1 && w->strides[i] == 1 && w->pad_lo[i] == 0 &&
         w->pad_hi[i] == 0;
}

static void canonical(wcanon *c, const em_window *w, int r,
                      const int64_t *ishape, const int64_t *oshape) {
  memset(c, 0, sizeof *c);
  int ax = -1;
  for (int i = 0; i < r; i++)
    if (!trivial_axis(w, i)) ax = i;
  if (ax < 0) ax = r - 1; /* an identity window: rows of the last axis */
  int64_t B = 1;
  for (int i = ax + 1; i < r; i++) B *= ishape[i];
  if (ax < 0) { /* rank 0: one row of one element */
    ax = 0;
    c->n[0] = c->o[0] = c->k[0] = c->s[0] = c->d[0] = 1;
  } else {
    for (int i = 0; i <= ax; i++) {
      c->n[i] = ishape[i];
      c->o[i] = oshape[i];
      c->k[i] = w->window[i];
      c->s[i] = w->strides[i];
      c->d[i] = w->dilations[i];
      c->lo[i] = w->pad_lo[i];
    }
  }
  c->ax = ax;
  c->istr[ax] = B;
  for (int i = ax - 1; i >= 0; i--) c->istr[i] = c->istr[i + 1] * c->n[i + 1];
  c->g = (wgeom){.n = c->n[ax],
                 .o = c->o[ax],
                 .k = c->k[ax],
                 .s = c->s[ax],
                 .d = c->d[ax],
                 .lo = c->lo[ax],
                 .B = B};
  c->L = c->o[ax] * B;
  c->nblk = (c->L + WR_CB - 1) / WR_CB;
  /* taps: only for sizing work items, so saturated (no overflow) */
  c->rows = 1;
  c->taps = c->k[ax] < (1 << 20) ? c->k[ax] : (1 << 20);
  for (int i = 0; i < ax; i++) {
    c->rows *= c->o[i];
    c->taps *= c->k[i] < (1 << 20) ? c->k[i] : (1 << 20);
    if (c->taps > (1 << 20)) c->taps = 1 << 20;
  }
}

/* Runs the body (...) for every window position of the row axes 0..ax-1 of
 * output row p that lies inside the input, in row-major tap order (only
 * the taps inside the input are visited: huge paddings cost nothing); off
 * is the flat input offset of that input row slab. kk: scratch. */
#define FOR_ROW_TAPS(c, p, kk, off, ...)                                      \
  do {                                                                        \
    const int ax_ = (c)->ax;                                                  \
    int64_t base_[EM_MAX_NDIM], ka_[EM_MAX_NDIM], kb_[EM_MAX_NDIM];           \
    bool none_ = false;                                                       \
    for (int a_ = 0; a_ < ax_; a_++) {                                        \
      int64_t b_ = (p)[a_] * (c)->s[a_] - (c)->lo[a_], d_ = (c)->d[a_];       \
      ka_[a_] = b_ >= 0 ? 0 : (-b_ + d_ - 1) / d_;                            \
      kb_[a_] = (c)->n[a_] - 1 - b_ < 0 ? 0 : ((c)->n[a_] - 1 - b_) / d_ + 1; \
      if (kb_[a_] > (c)->k[a_]) kb_[a_] = (c)->k[a_];                         \
      if (ka_[a_] >= kb_[a_]) none_ = true;                                   \
      base_[a_] = b_;                                                         \
      (kk)[a_] = ka_[a_];                                                     \
    }                                                                         \
    while (!none_) {                                                          \
      int64_t off = 0;                                                        \
      for (int a_ = 0; a_ < ax_; a_++)                                        \
        off += (base_[a_] + (kk)[a_] * (c)->d[a_]) * (c)->istr[a_];           \
      __VA_ARGS__;                                                            \
      int a_ = ax_ - 1;                                                       \
      while (a_ >= 0 && ++(kk)[a_] == kb_[a_]) (kk)[a_] = ka_[a_], a_--;      \
      if (a_ < 0) break;                                                      \
    }                                                                         \
  } while (0)

/* Walks the taps of the row axis for flattened outputs [f0, f1) of a row:
 * for each tap that lands inside the input for some output, [g0, g1) is
 * the range of outputs it does, at input position j * s + off (j = f / B).
 * Taps that only ever see padding are not visited. */
#define FOR_AXIS_TAPS(g, f0, f1, off, g0, g1, ...)                          \
  do {                                                                      \
    const int64_t s_ = (g)->s, B_ = (g)->B, o_ = (g)->o, n_ = (g)->n;       \
    const int64_t d_ = (g)->d, need_ = (g)->lo - (o_ - 1) * s_;             \
    for (int64_t kw_ = need_ > 0 ? (need_ + d_ - 1) / d_ : 0; kw_ < (g)->k; \
         kw_++) {                                                           \
      int64_t off = kw_ * d_ - (g)->lo;                                     \
      if (off > n_ - 1) break;                                              \
      int64_t ja_ = off >= 0 ? 0 : (-off + s_ - 1) / s_;                    \
      if (ja_ >= o_) continue;                                              \
      int64_t jb_ = (n_ - 1 - off) / s_ + 1;                                \
      if (jb_ > o_) jb_ = o_;                                               \
      int64_t g0 = ja_ * B_, g1 = jb_ * B_;                                 \
      if (g0 < (f0)) g0 = (f0);                                             \
      if (g1 > (f1)) g1 = (f1);                                             \
      if (g0 >= g1) continue;                                               \
      __VA_ARGS__;                                                          \
    }                                                                       \
  } while (0)

/* Combines one input slab x (n*B elements) into acc, which holds the
 * flattened outputs [f0, f1) of one row (o*B outputs). */
typedef void (*wr_row_fn)(void *acc, const void *x, const wgeom *g, int64_t f0,
                          int64_t f1);
typedef void (*wr_fill_fn)(void *acc, int64_t n);
typedef void (*wr_store_fn)(void *y, const void *acc, int64_t n);

/* acc[i] = OP(acc[i], LD(x[XS * i])) for i < m: a contiguous run (XS 1)
 * or every other element (XS 2, a stride-2 pool). */
#define RUN_SCALAR(T, A, LD, OP, XS, ap, xp, m) \
  do {                                          \
    A *ap_ = (ap);                              \
    const T *xp_ = (xp);                        \
    for (int64_t i_ = 0; i_ < (m); i_++)        \
      ap_[i_] = OP(ap_[i_], LD(xp_[(XS)*i_]));  \
  } while (0)

/* f32/f64 runs in 32-byte vectors (GCC vector extensions: one ymm in the
 * AVX2 and AVX-512 clones; 64-byte vectors would need AVX512DQ to turn
 * compare masks into lanes and get scalarised). A ragged end is one more
 * vector over the last NL elements that keeps the lanes already combined:
 * a 56-wide image row would otherwise spend most of its time in the
 * compiler's scalar epilogue. Stride 2 loads two overlapping vectors and
 * takes the even elements (never reading past x[2 * (m - 1)]). */
typedef float wv_f32 __attribute__((vector_size(32)));
typedef int32_t wv_i32 __attribute__((vector_size(32)));
typedef double wv_f64 __attribute__((vector_size(32)));
typedef int64_t wv_i64 __attribute__((vector_size(32)));
#define WV_LANES_f32 \
  (wv_i32) { 0, 1, 2, 3, 4, 5, 6, 7 }
#define WV_LANES_f64 \
  (wv_i64) { 0, 1, 2, 3 }
/* even elements of x[0 .. NL) ++ x[NL - 1 .. 2 NL - 1) */
#define WV_EVEN_f32() \
  (wv_i32) { 0, 2, 4, 6, 9, 11, 13, 15 }
#define WV_EVEN_f64() \
  (wv_i64) { 0, 2, 5, 7 }
/* (macros, not functions: vector arguments would change the ABI of the
 * baseline clone) */
#define VBLEND(VI, VT, m, b, a) ((VT)((((VI)(b)) & (m)) | (((VI)(a)) & ~(m))))
#define VMAX(VI, VT, a, b) VBLEND(VI, VT, ((b) > (a)) | ((b) != (b)), b, a)
#define VMIN(VI, VT, a, b) VBLEND(VI, VT, ((b) < (a)) | ((b) != (b)), b, a)
#define VADD(VI, VT, a, b) ((a) + (b))
#define VMUL(VI, VT, a, b) ((a) * (b))

#define VLOADX(VT, EVEN, XS, b, xp, i)                     \
  do {                                                     \
    if ((XS) == 1) {                                       \
      memcpy(&(b), (xp) + (i), sizeof(b));                 \
    } else {                                               \
      const int nl_ = (int)(sizeof(VT) / sizeof((xp)[0])); \
      VT u0_, u1_;                                         \
      memcpy(&u0_, (xp) + 2 * (i), sizeof u0_);            \
      memcpy(&u1_, (xp) + 2 * (i) + nl_ - 1, sizeof u1_);  \
      (b) = __builtin_shuffle(u0_, u1_, EVEN());           \
    }                                                      \
  } while (0)

#define RUN_VEC(T, VT, VI, LANES, EVEN, VOP, SOP, XS, ap, xp, m)          \
  do {                                                                    \
    T *ap_ = (ap);                                                        \
    const T *xp_ = (xp);                                                  \
    const int NL_ = (int)(sizeof(VT) / sizeof(T));                        \
    int64_t m_ = (m), i_ = 0;                                             \
    if (m_ < NL_) {                                                       \
      for (; i_ < m_; i_++) ap_[i_] = SOP(ap_[i_], xp_[(XS)*i_]);         \
      break;                                                              \
    }                                                                     \
    VT a_, b_;                                                            \
    for (; i_ + NL_ <= m_; i_ += NL_) {                                   \
      memcpy(&a_, ap_ + i_, sizeof a_);                                   \
      VLOADX(VT, EVEN, XS, b_, xp_, i_);                                  \
      a_ = VOP(VI, VT, a_, b_);                                           \
      memcpy(ap_ + i_, &a_, sizeof a_);                                   \
    }                                                                     \
    if (i_ < m_) {                                                        \
      int64_t t_ = m_ - NL_;                                              \
      memcpy(&a_, ap_ + t_, sizeof a_);                                   \
      VLOADX(VT, EVEN, XS, b_, xp_, t_);                                  \
      VT r_ = VOP(VI, VT, a_, b_);                                        \
      VI done_ = (LANES) < ((VI){0} + (__typeof__((LANES)[0]))(i_ - t_)); \
      a_ = VBLEND(VI, VT, done_, a_, r_);                                 \
      memcpy(ap_ + t_, &a_, sizeof a_);                                   \
    }                                                                     \
  } while (0)
#define RUN_V_f32(VOP, SOP, XS, ap, xp, m)                                    \
  RUN_VEC(float, wv_f32, wv_i32, WV_LANES_f32, WV_EVEN_f32, VOP, SOP, XS, ap, \
          xp, m)
#define RUN_V_f64(VOP, SOP, XS, ap, xp, m)                                     \
  RUN_VEC(double, wv_f64, wv_i64, WV_LANES_f64, WV_EVEN_f64, VOP, SOP, XS, ap, \
          xp, m)
#define RS_f32(T, A, LD, OP, XS, ap, xp, m) RUN_V_f32(VADD, FADD, XS, ap, xp, m)
#define RP_f32(T, A, LD, OP, XS, ap, xp, m) RUN_V_f32(VMUL, FMUL, XS, ap, xp, m)
#define RMAX_f32(T, A, LD, OP, XS, ap, xp, m) \
  RUN_V_f32(VMAX, FMAX, XS, ap, xp, m)
#define RMIN_f32(T, A, LD, OP, XS, ap, xp, m) \
  RUN_V_f32(VMIN, FMIN, XS, ap, xp, m)
#define RS_f64(T, A, LD, OP, XS, ap, xp, m) RUN_V_f64(VADD, FADD, XS, ap, xp, m)
#define RP_f64(T, A, LD, OP, XS, ap, xp, m) RUN_V_f64(VMUL, FMUL, XS, ap, xp, m)
#define RMAX_f64(T, A, LD, OP, XS, ap, xp, m) \
  RUN_V_f64(VMAX, FMAX, XS, ap, xp, m)
#define RMIN_f64(T, A, LD, OP, XS, ap, xp, m) \
  RUN_V_f64(VMIN, FMIN, XS, ap, xp, m)

#define WR_ROW(NAME, T, A, LD, OP, RUN)                                   \
  EM_CLONES static void NAME(void *accv, const void *xv, const wgeom *g,  \
                             int64_t f0, int64_t f1) {                    \
    A *acc = accv;                                                        \
    const T *x = xv;                                                      \
    const int64_t s = g->s, B = g->B;                                     \
    FOR_AXIS_TAPS(g, f0, f1, off, g0, g1, {                               \
      if (s == 1) {                                                       \
        RUN(T, A, LD, OP, 1, acc + (g0 - f0), x + g0 + off * B, g1 - g0); \
      } else if (B == 1 && s == 2) {                                      \
        RUN(T, A, LD, OP, 2, acc + (g0 - f0), x + g0 * 2 + off, g1 - g0); \
      } else if (B == 1) {                                                \
        A *ap = acc + (g0 - f0);                                          \
        const T *xp = x + g0 * s + off;                                   \
        int64_t m = g1 - g0;                                              \
        for (int64_t i = 0; i < m; i++) ap[i] = OP(ap[i], LD(xp[i * s])); \
      } else {                                                            \
        for (int64_t f = g0; f < g1;) {                                   \
          int64_t j = f / B, b = f % B;                                   \
          int64_t e = (j + 1) * B < g1 ? (j + 1) * B : g1;                \
          RUN(T, A, LD, OP, 1, acc + (f - f0), x + (j * s + off) * B + b, \
              e - f);                                                     \
          f = e;                                                          \
        }                                                                 \
      }                                                                   \
    });                                                                   \
  }

#define WR_FILL(NAME, A, IDENT)                     \
  static void NAME(void *accv, int64_t n) {         \
    A *a = accv;                                    \
    for (int64_t i = 0; i < n; i++) a[i] = (IDENT); \
  }

typedef struct {
  wr_row_fn row;
  wr_fill_fn fill;
  wr_store_fn store; /* NULL: the accumulator is the output itself */
} wr_impl;

/* Integers: every op for one type. U: the unsigned type the arithmetic
 * wraps in (at least unsigned int, so no promotion to int). */
#define WR_INT(n, T, U, LO, HI)                                   \
  static inline T wadd_##n(T a, T b) { return IADD(T, U, a, b); } \
  static inline T wmul_##n(T a, T b) { return IMUL(T, U, a, b); } \
  WR_ROW(wrs_##n, T, T, ID, wadd_##n, RUN_SCALAR)                 \
  WR_ROW(wrp_##n, T, T, ID, wmul_##n, RUN_SCALAR)                 \
  WR_ROW(wrmax_##n, T, T, ID, IMAX, RUN_SCALAR)                   \
  WR_ROW(wrmin_##n, T, T, ID, IMIN, RUN_SCALAR)                   \
  WR_FILL(wfs_##n, T, 0)                                          \
  WR_FILL(wfp_##n, T, 1)                                          \
  WR_FILL(wfmax_##n, T, LO)                                       \
  WR_FILL(wfmin_##n, T, HI)

WR_INT(u8, uint8_t, uint32_t, 0, UINT8_MAX)
WR_INT(u16, uint16_t, uint32_t, 0, UINT16_MAX)
WR_INT(u32, uint32_t, uint32_t, 0, UINT32_MAX)
WR_INT(u64, uint64_t, uint64_t, 0, UINT64_MAX)
WR_INT(s8, int8_t, uint32_t, INT8_MIN, INT8_MAX)
WR_INT(s16, int16_t, uint32_t, INT16_MIN, INT16_MAX)
WR_INT(s32, int32_t, uint32_t, INT32_MIN, INT32_MAX)
WR_INT(s64, int64_t, uint64_t, INT64_MIN, INT64_MAX)

#define WR_FILLS(n, A)             \
  WR_FILL(wfs_##n, A, 0)           \
  WR_FILL(wfp_##n, A, 1)           \
  WR_FILL(wfmax_##n, A, -INFINITY) \
  WR_FILL(wfmin_##n, A, INFINITY)

#define WR_HALF(n, LD)                                     \
  WR_ROW(wrs_##n, uint16_t, float, LD, FADD, RUN_SCALAR)   \
  WR_ROW(wrp_##n, uint16_t, float, LD, FMUL, RUN_SCALAR)   \
  WR_ROW(wrmax_##n, uint16_t, float, LD, FMAX, RUN_SCALAR) \
  WR_ROW(wrmin_##n, uint16_t, float, LD, FMIN, RUN_SCALAR) \
  WR_FILLS(n, float)

WR_HALF(f16, em_f16_to_f32)
WR_HALF(bf16, em_bf16_to_f32)

#define WR_FLT(n, T)                          \
  WR_ROW(wrs_##n, T, T, ID, FADD, RS_##n)     \
  WR_ROW(wrp_##n, T, T, ID, FMUL, RP_##n)     \
  WR_ROW(wrmax_##n, T, T, ID, FMAX, RMAX_##n) \
  WR_ROW(wrmin_##n, T, T, ID, FMIN, RMIN_##n) \
  WR_FILLS(n, T)

WR_FLT(f32, float)
WR_FLT(f64, double)

WR_ROW(wrs_c64, float _Complex, float _Complex, ID, FADD, RUN_SCALAR)
WR_ROW(wrp_c64, float _Complex, float _Complex, ID, FMUL, RUN_SCALAR)
WR_ROW(wrs_c128, double _Complex, double _Complex, ID, FADD, RUN_SCALAR)
WR_ROW(wrp_c128, double _Complex, double _Complex, ID, FMUL, RUN_SCALAR)
WR_FILL(wfs_c64, float _Complex, 0)
WR_FILL(wfp_c64, float _Complex, 1)
WR_FILL(wfs_c128, double _Complex, 0)
WR_FILL(wfp_c128, double _Complex, 1)

static void store_f16(void *yv, const void *accv, int64_t n) {
  uint16_t *y = yv;
  const float *a = accv;
  for (int64_t i = 0; i < n; i++) y[i] = em_f32_to_f16(a[i]);
}
static void store_bf16(void *yv, const void *accv, int64_t n) {
  uint16_t *y = yv;
  const float *a = accv;
  for (int64_t i = 0; i < n; i++) y[i] = em_f32_to_bf16(a[i]);
}

#define WI(P, n) \
  { &wr##P##_##n, &wf##P##_##n, NULL }
#define WH(P, n) \
  { &wr##P##_##n, &wf##P##_##n, &store_##n }
#define WR_TABLE(P)                                                       \
  {                                                                       \
    WI(P, u8), WI(P, u16), WI(P, u32), WI(P, u64), WI(P, s8), WI(P, s16), \
        WI(P, s32), WI(P, s64), WH(P, f16), WH(P, bf16), WI(P, f32),      \
        WI(P, f64)

static const wr_impl WR_SUM[EM_DTYPE_COUNT] = WR_TABLE(s), WI(s, c64),
                     WI(s, c128)
}
;
static const wr_impl WR_PROD[EM_DTYPE_COUNT] = WR_TABLE(p), WI(p, c64),
                     WI(p, c128)
}
;
static const wr_impl WR_MAX[EM_DTYPE_COUNT] = WR_TABLE(max)
}
;
static const wr_impl WR_MIN[EM_DTYPE_COUNT] = WR_TABLE(min)
}
;

/* ---- window_reduce: the kernel ------------------------------------------ */

typedef struct {
  wr_impl im;
  const wcanon *c;
  const char *x;
  char *y;
  size_t es;
  bool empty; /* the input has no elements: every output is the identity */
} wr_ctx;

/* Decodes work item b into (row index p over axes 0..ax-1, block). */
static void item_start(const wcanon *c, int64_t b, int64_t *p, int64_t *blk) {
  int64_t row = b / c->nblk;
  *blk = b % c->nblk;
  for (int a = c->ax - 1; a >= 0; a--) {
    p[a] = row % c->o[a];
    row /= c->o[a];
  }
}
static void item_next(const wcanon *c, int64_t *p, int64_t *blk) {
  if (++*blk < c->nblk) return;
  *blk = 0;
  for (int a = c->ax - 1; a >= 0 && ++p[a] == c->o[a]; a--) p[a] = 0;
}

static void wr_range(void *c_, int64_t b, int64_t e, int tid) {
  (void)tid;
  const wr_ctx *w = c_;
  const wcanon *c = w->c;
  float tmp[WR_CB]; /* f16/bf16 accumulators */
  int64_t p[EM_MAX_NDIM], kk[EM_MAX_NDIM], blk;
  item_start(c, b, p, &blk);
  for (int64_t it = b; it < e; it++) {
    int64_t f0 = blk * WR_CB, f1 = f0 + WR_CB < c->L ? f0 + WR_CB : c->L;
    int64_t row = it / c->nblk;
    char *yp = w->y + (size_t)(row * c->L + f0) * w->es;
    void *acc = w->im.store ? (void *)tmp : (void *)yp;
    w->im.fill(acc, f1 - f0);
    if (!w->empty)
      FOR_ROW_TAPS(c, p, kk, off,
                   w->im.row(acc, w->x + (size_t)off * w->es, &c->g, f0, f1));
    if (w->im.store) w->im.store(yp, tmp, f1 - f0);
    item_next(c, p, &blk);
  }
}

em_status em_cpu_k_window_reduce(em_array *out, const em_node *node) {
  const em_array *in = node->in[0];
  em_op kind = node->p.window.kind;
  const wr_impl *tab = kind == EM_OP_sum          ? WR_SUM
                       : kind == EM_OP_product    ? WR_PROD
                       : kind == EM_OP_reduce_max ? WR_MAX
                       : kind == EM_OP_reduce_min ? WR_MIN
                                                  : NULL;
  if (!tab || (unsigned)in->dtype >= EM_DTYPE_COUNT || !tab[in->dtype].row)
    return em_fail(EM_ERR_UNSUPPORTED,
                   "[window_reduce] no kernel for %s (op %s)",
                   em_dtype_name(in->dtype), em_op_name(kind));
  wcanon c;
  canonical(&c, &node->p.window.w, in->ndim, in->shape, out->shape);
  wr_ctx w = {.im = tab[in->dtype],
              .c = &c,
              .es = em_dtype_size(in->dtype),
              .empty = in->size == 0};
  em_array *ci = NULL;
  em_status st = EM_OK;
  if (!w.empty) {
    st = em_contiguous(node->in[0], &ci);
    if (st != EM_OK) return st;
    w.x = em_array_ptr(ci);
  }
  st = em_alloc_output(out);
  if (st == EM_OK && out->size > 0 && c.L > 0) {
    w.y = em_array_ptr(out);
    int64_t per = (c.L < WR_CB ? c.L : WR_CB) * c.taps; /* ops per item */
    int64_t grain = per >= 16384 ? 1 : 16384 / per;
    em_parallel_for(c.rows * c.nblk, grain, wr_range, &w);
  }
  em_array_release(ci);
  return st;
}

/* ---- window_scatter: selection ------------------------------------------ */

/* For the flattened outputs [f0, f1) of one row (= windows of source),
 * folds the taps of one input slab (flat offset base) into the running
 * picks: best[i] (flat input position, -1: none yet) and cur[i] (its
 * value). The first tap seen is taken; later ones when BETTER(x, cur). */
typedef void (*ws_row_fn)(void *cur, int64_t *best, const void *x, int64_t base,
                          const wgeom *g, int64_t f0, int64_t f1);

#define SEL_GE(v, cur) ((v) >= (cur))
#define SEL_LE(v, cur) ((v) <= (cur))

/* One output i against input position pos (branch-free, so it vectorises). */
#define WS_STEP(C, LD, BETTER, i, pos)              \
  do {                                              \
    C v_ = LD(x[pos]);                              \
    int take_ = (best[i] < 0) | BETTER(v_, cur[i]); \
    cur[i] = take_ ? v_ : cur[i];                   \
    best[i] = take_ ? (pos) : best[i];              \
  } while (0)

#define WS_ROW(NAME, T, C, LD, BETTER)                                  \
  EM_CLONES static void NAME(void *curv, int64_t *best, const void *xv, \
                             int64_t base, const wgeom *g, int64_t f0,  \
                             int64_t f1) {                              \
    C *cur = curv;                                                      \
    const T *x = xv;                                                    \
    const int64_t s = g->s, B = g->B;                                   \
    FOR_AXIS_TAPS(g, f0, f1, off, g0, g1, {                             \
      if (s == 1) {                                                     \
        int64_t sh = base + off * B; /* input position f + sh */        \
        for (int64_t f = g0; f < g1; f++)                               \
          WS_STEP(C, LD, BETTER, f - f0, f + sh);                       \
      } else if (B == 1) {                                              \
        int64_t sh = base + off;                                        \
        for (int64_t f = g0; f < g1; f++)                               \
          WS_STEP(C, LD, BETTER, f - f0, f * s + sh);                   \
      } else {                                                          \
        for (int64_t f = g0; f < g1; f++)                               \
          WS_STEP(C, LD, BETTER, f - f0,                                \
                  base + (f / B * s + off) * B + f % B);                \
      }                                                                 \
    });                                                                 \
  }

#define WS_ROW_T(n, T, C, LD)          \
  WS_ROW(selmax_##n, T, C, LD, SEL_GE) \
  WS_ROW(selmin_##n, T, C, LD, SEL_LE)

WS_ROW_T(u8, uint8_t, uint8_t, ID)
WS_ROW_T(u16, uint16_t, uint16_t, ID)
WS_ROW_T(u32, uint32_t, uint32_t, ID)
WS_ROW_T(u64, uint64_t, uint64_t, ID)
WS_ROW_T(s8, int8_t, int8_t, ID)
WS_ROW_T(s16, int16_t, int16_t, ID)
WS_ROW_T(s32, int32_t, int32_t, ID)
WS_ROW_T(s64, int64_t, int64_t, ID)
WS_ROW_T(f16, uint16_t, float, em_f16_to_f32)
WS_ROW_T(bf16, uint16_t, float, em_bf16_to_f32)
WS_ROW_T(f32, float, float, ID)
WS_ROW_T(f64, double, double, ID)

#define SROW(P)                                                         \
  {                                                                     \
    &P##_u8, &P##_u16, &P##_u32, &P##_u64, &P##_s8, &P##_s16, &P##_s32, \
        &P##_s64, &P##_f16, &P##_bf16, &P##_f32, &P##_f64, NULL, NULL   \
  }
static const ws_row_fn SEL_MAX[EM_DTYPE_COUNT] = SROW(selmax);
static const ws_row_fn SEL_MIN[EM_DTYPE_COUNT] = SROW(selmin);

/* ---- window_scatter: accumulation ---------------------------------------- */

/* Adds the ns source values of one plane at their picks (flat positions of
 * the whole input; base is the plane's first) into the plane's na outputs,
 * which start at init. acc: f32 scratch of na elements (f16/bf16 only). */
typedef void (*ws_add_fn)(void *y, float *acc, const void *src,
                          const int64_t *sel, int64_t ns, int64_t na,
                          int64_t base, const void *init);

#define WS_ADD_DIRECT(NAME, T, ADD)                                            \
  static void NAME(void *yv, float *acc, const void *srcv, const int64_t *sel, \
                   int64_t ns, int64_t na, int64_t base, const void *initv) {  \
    (void)acc;                                                                 \
    T *y = yv, v0;                                                             \
    const T *src = srcv;                                                       \
    memcpy(&v0, initv, sizeof v0);                                             \
    for (int64_t i = 0; i < na; i++) y[i] = v0;                                \
    for (int64_t m = 0; m < ns; m++)                                           \
      if (sel[m] >= 0) y[sel[m] - base] = ADD(y[sel[m] - base], src[m]);       \
  }

#define WS_ADD_HALF(NAME, TO, FROM)                                            \
  static void NAME(void *yv, float *acc, const void *srcv, const int64_t *sel, \
                   int64_t ns, int64_t na, int64_t base, const void *initv) {  \
    uint16_t *y = yv, h0;                                                      \
    const uint16_t *src = srcv;                                                \
    memcpy(&h0, initv, sizeof h0);                                             \
    float v0 = TO(h0);                                                         \
    for (int64_t i = 0; i < na; i++) acc[i] = v0;                              \
    for (int64_t m = 0; m < ns; m++)                                           \
      if (sel[m] >= 0) acc[sel[m] - base] += TO(src[m]);                       \
    for (int64_t i = 0; i < na; i++) y[i] = FROM(acc[i]);                      \
  }

#define WS_ADD_INT(n, T, U)                                       \
  static inline T sadd_##n(T a, T b) { return IADD(T, U, a, b); } \
  WS_ADD_DIRECT(wsa_##n, T, sadd_##n)

WS_ADD_INT(u8, uint8_t, uint32_t)
WS_ADD_INT(u16, uint16_t, uint32_t)
WS_ADD_INT(u32, uint32_t, uint32_t)
WS_ADD_INT(u64, uint64_t, uint64_t)
WS_ADD_INT(s8, int8_t, uint32_t)
WS_ADD_INT(s16, int16_t, uint32_t)
WS_ADD_INT(s32, int32_t, uint32_t)
WS_ADD_INT(s64, int64_t, uint64_t)
WS_ADD_DIRECT(wsa_f32, float, FADD)
WS_ADD_DIRECT(wsa_f64, double, FADD)
WS_ADD_HALF(wsa_f16, em_f16_to_f32, em_f32_to_f16)
WS_ADD_HALF(wsa_bf16, em_bf16_to_f32, em_f32_to_bf16)

static const ws_add_fn WS_ADD[EM_DTYPE_COUNT] = SROW(wsa);

/* ---- window_scatter: the kernel ------------------------------------------ */

typedef struct {
  ws_row_fn sel;
  const wcanon *c;
  const char *x;
  int64_t *picks;
} ws_sel_ctx;

static void ws_sel_range(void *c_, int64_t b, int64_t e, int tid) {
  (void)tid;
  const ws_sel_ctx *w = c_;
  const wcanon *c = w->c;
  union { /* the picks' values, in the compare type */
    uint8_t u8[WR_CB];
    uint16_t u16[WR_CB];
    uint32_t u32[WR_CB];
    uint64_t u64[WR_CB];
    int8_t s8[WR_CB];
    int16_t s16[WR_CB];
    int32_t s32[WR_CB];
    int64_t s64[WR_CB];
    float f32[WR_CB];
    double f64[WR_CB];
  } cur;
  int64_t p[EM_MAX_NDIM], kk[EM_MAX_NDIM], blk;
  item_start(c, b, p, &blk);
  for (int64_t it = b; it < e; it++) {
    int64_t f0 = blk * WR_CB, f1 = f0 + WR_CB < c->L ? f0 + WR_CB : c->L;
    int64_t *best = w->picks + (it / c->nblk) * c->L + f0;
    for (int64_t i = 0; i < f1 - f0; i++) best[i] = -1;
    memset(&cur, 0, (size_t)(f1 - f0) * sizeof cur.f64[0]);
    FOR_ROW_TAPS(c, p, kk, off, w->sel(&cur, best, w->x, off, &c->g, f0, f1));
    item_next(c, p, &blk);
  }
}

typedef struct {
  ws_add_fn add;
  char *y;
  const char *src;
  const int64_t *picks;
  float *acc;
  const void *init;
  size_t es;
  int64_t ns, na; /* per plane */
} ws_add_ctx;

static void ws_add_range(void *c_, int64_t b, int64_t e, int tid) {
  (void)tid;
  const ws_add_ctx *c = c_;
  for (int64_t q = b; q < e; q++)
    c->add(
        c->y + (size_t)(q * c->na) * c->es, c->acc ? c->acc + q * c->na : NULL,
        c->ns ? c->src + (size_t)(q * c->ns) * c->es : NULL,
        c->ns ? c->picks + q * c->ns : NULL, c->ns, c->na, q * c->na, c->init);
}

em_status em_cpu_k_window_scatter(em_array *out, const em_node *node) {
  const em_array *a = node->in[0], *src = node->in[1], *init = node->in[2];
  const em_window *w = &node->p.window.w;
  em_op kind = node->p.window.kind;
  const ws_row_fn *stab = kind == EM_OP_reduce_max   ? SEL_MAX
                          : kind == EM_OP_reduce_min ? SEL_MIN
                                                     : NULL;
  if (!stab || (unsigned)a->dtype >= EM_DTYPE_COUNT || !stab[a->dtype] ||
      (unsigned)src->dtype >= EM_DTYPE_COUNT || !WS_ADD[src->dtype] ||
      init->dtype != src->dtype)
    return em_fail(EM_ERR_UNSUPPORTED,
                   "[window_scatter] no kernel for input %s, source %s (op "
                   "%s)",
                   em_dtype_name(a->dtype), em_dtype_name(src->dtype),
                   em_op_name(kind));
  em_status st = em_alloc_output(out);
  if (st != EM_OK || out->size == 0) return st;
  const int r = a->ndim;
  const int64_t ns = src->size, na = a->size;
  const size_t oes = em_dtype_size(src->dtype);
  unsigned char initv[16] = {0};
  memcpy(initv, em_array_ptr(init), oes);

  /* Scratch comes from the engine's caching allocator: reused between
   * calls (no fresh page faults) and under its memory limit. */
  em_array *ca = NULL, *cs = NULL;
  int64_t *picks = NULL;
  float *acc = NULL;
  const size_t picks_nb = (size_t)ns * sizeof *picks;
  const size_t acc_nb = (size_t)na * sizeof *acc;
  if (ns > 0) {
    picks = em_alloc(out->dev, picks_nb, &st);
    if (!picks) return st;
    st = em_contiguous(node->in[0], &ca);
    if (st == EM_OK) st = em_contiguous(node->in[1], &cs);
    if (st != EM_OK) goto done;
    wcanon c;
    canonical(&c, w, r, a->shape, src->shape);
    ws_sel_ctx sc = {
        .sel = stab[a->dtype], .c = &c, .x = em_array_ptr(ca), .picks = picks};
    int64_t per = (c.L < WR_CB ? c.L : WR_CB) * c.taps;
    int64_t grain = per >= 8192 ? 1 : 8192 / per;
    em_parallel_for(c.rows * c.nblk, grain, ws_sel_range, &sc);
  }
  if (src->dtype == EM_F16 || src->dtype == EM_BF16) {
    acc = em_alloc(out->dev, acc_nb, &st);
    if (!acc) goto done;
  }
  {
    /* Independent planes: the leading axes the window leaves alone. */
    int64_t planes = 1;
    for (int i = 0; i < r; i++) {
      if (!(w->window[i] == 1 && w->strides[i] == 1 && w->pad_lo[i] == 0 &&
            w->pad_hi[i] == 0))
        break;
      planes *= a->shape[i];
    }
    ws_add_ctx c = {.add = WS_ADD[src->dtype],
                    .y = em_array_ptr(out),
                    .src = cs ? em_array_ptr(cs) : NULL,
                    .picks = picks,
                    .acc = acc,
                    .init = initv,
                    .es = oes,
                    .ns = ns / planes,
                    .na = na / planes};
    int64_t per = c.ns + c.na;
    int64_t grain = per >= 32768 ? 1 : 32768 / per;
    em_parallel_for(planes, grain, ws_add_range, &c);
  }
done:
  em_free(out->dev, picks, picks_nb);
  em_free(out->dev, acc, acc_nb);
  em_array_release(ca);
  em_array_release(cs);
  return st;
}
