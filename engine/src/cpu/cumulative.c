/* cumulative.c — the CPU kernel of EM_OP_cumulative: running sum, product,
 * max or min along one axis, forward or reversed (Nx.cumulative_*).
 *
 * The input is brought into contiguous [outer, n, inner] form (n: the
 * scanned axis). Work items are (outer row, block of at most CUM_W inner
 * columns); each scans its n x width slab, the width columns side by side
 * so the inner loop vectorises. Contiguous rows (inner == 1) use an
 * in-register vector scan (f32/f64, every op; 32/64-bit integer sums; see
 * below) or else a scalar loop. Items run in parallel (em_parallel_for).
 *
 * Semantics: the result keeps the input dtype. Integers wrap (computed in
 * unsigned arithmetic, never overflowing a signed type). f16/bf16 carry a
 * f32 accumulator and round each output once. max/min propagate NaN: once
 * a NaN is seen the running value stays NaN (Nx.max/Nx.min do the same).
 * Complex: sum and product only (the graph layer rejects the others). */
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

#define CUM_W 512 /* inner columns per work item */

typedef void (*cum_fn)(const void *x, void *y, int64_t n, int64_t stride,
                       int64_t w, bool rev);

/* ---- element operations -------------------------------------------------- */

/* Integers: wide unsigned arithmetic, truncated back to T. */
#define IADD(T, U, a, b) ((T)((U)(a) + (U)(b)))
#define IMUL(T, U, a, b) ((T)((U)(a) * (U)(b)))
/* Floats: NaN in either operand wins. */
#define FMAX(a, b) (((b) > (a) || (b) != (b)) ? (b) : (a))
#define FMIN(a, b) (((b) < (a) || (b) != (b)) ? (b) : (a))
#define IMAX(a, b) ((b) > (a) ? (b) : (a))
#define IMIN(a, b) ((b) < (a) ? (b) : (a))

#define ID(v) (v)

/* NAME scans a slab of n rows of w contiguous elements, rows `stride`
 * elements apart. T: storage type, A: accumulator type, LD/ST convert,
 * OP(acc, x) combines. */
#define CUM_KERNEL(NAME, T, A, LD, ST, OP)                          \
  EM_CLONES static void NAME(const void *xv, void *yv, int64_t n,   \
                             int64_t stride, int64_t w, bool rev) { \
    const T *x = xv;                                                \
    T *y = yv;                                                      \
    if (n <= 0 || w <= 0) return;                                   \
    int64_t step = rev ? -stride : stride;                          \
    const T *xp = x + (rev ? (n - 1) * stride : 0);                 \
    T *yp = y + (rev ? (n - 1) * stride : 0);                       \
    if (w == 1) {                                                   \
      A acc = LD(xp[0]);                                            \
      yp[0] = ST(acc);                                              \
      for (int64_t i = 1; i < n; i++) {                             \
        xp += step;                                                 \
        yp += step;                                                 \
        A v = LD(xp[0]);                                            \
        acc = OP(acc, v);                                           \
        yp[0] = ST(acc);                                            \
      }                                                             \
      return;                                                       \
    }                                                               \
    A acc[CUM_W];                                                   \
    for (int64_t j = 0; j < w; j++) {                               \
      acc[j] = LD(xp[j]);                                           \
      yp[j] = ST(acc[j]);                                           \
    }                                                               \
    for (int64_t i = 1; i < n; i++) {                               \
      xp += step;                                                   \
      yp += step;                                                   \
      for (int64_t j = 0; j < w; j++) {                             \
        A v = LD(xp[j]);                                            \
        acc[j] = OP(acc[j], v);                                     \
        yp[j] = ST(acc[j]);                                         \
      }                                                             \
    }                                                               \
  }

/* Integer kernels: every op for one integer type. U: the unsigned type the
 * arithmetic wraps in (at least unsigned int, so no promotion to int). */
#define CUM_INT(n, T, U)                                         \
  static inline T add_##n(T a, T b) { return IADD(T, U, a, b); } \
  static inline T mul_##n(T a, T b) { return IMUL(T, U, a, b); } \
  static inline T max_##n(T a, T b) { return IMAX(a, b); }       \
  static inline T min_##n(T a, T b) { return IMIN(a, b); }       \
  CUM_KERNEL(cs_##n, T, T, ID, ID, add_##n)                      \
  CUM_KERNEL(cp_##n, T, T, ID, ID, mul_##n)                      \
  CUM_KERNEL(cmax_##n, T, T, ID, ID, max_##n)                    \
  CUM_KERNEL(cmin_##n, T, T, ID, ID, min_##n)

CUM_INT(u8, uint8_t, uint32_t)
CUM_INT(u16, uint16_t, uint32_t)
CUM_INT(u32, uint32_t, uint32_t)
CUM_INT(u64, uint64_t, uint64_t)
CUM_INT(s8, int8_t, uint32_t)
CUM_INT(s16, int16_t, uint32_t)
CUM_INT(s32, int32_t, uint32_t)
CUM_INT(s64, int64_t, uint64_t)

#define FADD(a, b) ((a) + (b))
#define FMUL(a, b) ((a) * (b))

#define CUM_FLT(n, T, A, LD, ST)           \
  CUM_KERNEL(cs_##n, T, A, LD, ST, FADD)   \
  CUM_KERNEL(cp_##n, T, A, LD, ST, FMUL)   \
  CUM_KERNEL(cmax_##n, T, A, LD, ST, FMAX) \
  CUM_KERNEL(cmin_##n, T, A, LD, ST, FMIN)

CUM_FLT(f16, uint16_t, float, em_f16_to_f32, em_f32_to_f16)
CUM_FLT(bf16, uint16_t, float, em_bf16_to_f32, em_f32_to_bf16)
CUM_FLT(f32, float, float, ID, ID)
CUM_FLT(f64, double, double, ID, ID)

/* Complex: the C99 operators (no Annex G inf/NaN recovery needed beyond
 * what the compiler emits). */
CUM_KERNEL(cs_c64, float _Complex, float _Complex, ID, ID, FADD)
CUM_KERNEL(cp_c64, float _Complex, float _Complex, ID, ID, FMUL)
CUM_KERNEL(cs_c128, double _Complex, double _Complex, ID, ID, FADD)
CUM_KERNEL(cp_c128, double _Complex, double _Complex, ID, ID, FMUL)

/* ---- contiguous rows: in-register prefix scans ----------------------------
 * A contiguous row is scanned a vector at a time: log2(lanes) steps of
 * "combine with the vector shifted up by 1, 2, 4 lanes" (the identity
 * shifted in) give the prefix inside the vector, the running carry is
 * combined in, and the last lane is the next carry. Reversed rows reverse
 * the lanes around the same steps. This breaks the one-element-per-add
 * dependency chain of a sequential loop (the row then runs at memory
 * speed); float sums and products are combined in a tree order inside
 * each vector, as Nx's own associative_scan does; integer sums and
 * max/min are exact either way. The additive identity is -0.0 so that a
 * -0.0 input stays -0.0. */

typedef float vf8 __attribute__((vector_size(32)));
typedef int32_t vi8 __attribute__((vector_size(32)));
typedef uint32_t vu8 __attribute__((vector_size(32)));
typedef double vd4 __attribute__((vector_size(32)));
typedef int64_t vl4 __attribute__((vector_size(32)));
typedef uint64_t vul4 __attribute__((vector_size(32)));

#define SHUF8(v, id, VOP)                                                     \
  do {                                                                        \
    v = VOP(v, __builtin_shuffle(id, v, (vi8){0, 8, 9, 10, 11, 12, 13, 14})); \
    v = VOP(v, __builtin_shuffle(id, v, (vi8){0, 1, 8, 9, 10, 11, 12, 13}));  \
    v = VOP(v, __builtin_shuffle(id, v, (vi8){0, 1, 2, 3, 8, 9, 10, 11}));    \
  } while (0)
#define SHUF4(v, id, VOP)                                    \
  do {                                                       \
    v = VOP(v, __builtin_shuffle(id, v, (vl4){0, 4, 5, 6})); \
    v = VOP(v, __builtin_shuffle(id, v, (vl4){0, 1, 4, 5})); \
  } while (0)

/* NAME scans a contiguous row x -> y of n elements. VT: the vector type,
 * MT: its lane-index type, NL lanes, STEPS the shift steps, VOP/OPS the
 * vector/scalar combine, IDENT the identity. */
#define VSCAN(NAME, T, VT, MT, NL, STEPS, VOP, OPS, IDENT)                    \
  EM_CLONES static void NAME(const void *xv, void *yv, int64_t n, bool rev) { \
    const T *x = xv;                                                          \
    T *y = yv;                                                                \
    VT id; /* lane by lane: {0} + -0.0 would give +0.0 */                     \
    MT last, flip;                                                            \
    for (int l = 0; l < NL; l++) {                                            \
      id[l] = (T)(IDENT);                                                     \
      last[l] = NL - 1;                                                       \
      flip[l] = NL - 1 - l;                                                   \
    }                                                                         \
    VT carry = id;                                                            \
    int64_t nv = n / NL * NL;                                                 \
    for (int64_t i = 0; i < nv; i += NL) {                                    \
      const T *xp = rev ? x + n - i - NL : x + i;                             \
      T *yp = rev ? y + n - i - NL : y + i;                                   \
      VT v;                                                                   \
      memcpy(&v, xp, sizeof v);                                               \
      if (rev) v = __builtin_shuffle(v, flip);                                \
      STEPS(v, id, VOP);                                                      \
      v = VOP(carry, v);                                                      \
      carry = __builtin_shuffle(v, last);                                     \
      if (rev) v = __builtin_shuffle(v, flip);                                \
      memcpy(yp, &v, sizeof v);                                               \
    }                                                                         \
    T acc = carry[0];                                                         \
    for (int64_t i = nv; i < n; i++) {                                        \
      int64_t j = rev ? n - 1 - i : i;                                        \
      acc = OPS(acc, x[j]);                                                   \
      y[j] = acc;                                                             \
    }                                                                         \
  }

/* Vector combines; max/min let NaN win through a lane mask. */
#define VADD(a, b) ((a) + (b))
#define VMUL(a, b) ((a) * (b))
/* (macros, not functions: 32-byte vector arguments would change the ABI
 * of the baseline clone) */
#define VSEL(MT, VT, m, b, a) ((VT)((((MT)(b)) & (m)) | (((MT)(a)) & ~(m))))
#define vmax8(a, b) VSEL(vi8, vf8, ((b) > (a)) | ((b) != (b)), b, a)
#define vmin8(a, b) VSEL(vi8, vf8, ((b) < (a)) | ((b) != (b)), b, a)
#define vmax4(a, b) VSEL(vl4, vd4, ((b) > (a)) | ((b) != (b)), b, a)
#define vmin4(a, b) VSEL(vl4, vd4, ((b) < (a)) | ((b) != (b)), b, a)

VSCAN(vs_f32, float, vf8, vi8, 8, SHUF8, VADD, FADD, -0.0f)
VSCAN(vs_f64, double, vd4, vl4, 4, SHUF4, VADD, FADD, -0.0)
VSCAN(vs_i32, uint32_t, vu8, vi8, 8, SHUF8, VADD, FADD, 0)
VSCAN(vs_i64, uint64_t, vul4, vl4, 4, SHUF4, VADD, FADD, 0)
VSCAN(vp_f32, float, vf8, vi8, 8, SHUF8, VMUL, FMUL, 1.0f)
VSCAN(vp_f64, double, vd4, vl4, 4, SHUF4, VMUL, FMUL, 1.0)
VSCAN(vmax_f32, float, vf8, vi8, 8, SHUF8, vmax8, FMAX, -INFINITY)
VSCAN(vmax_f64, double, vd4, vl4, 4, SHUF4, vmax4, FMAX, -INFINITY)
VSCAN(vmin_f32, float, vf8, vi8, 8, SHUF8, vmin8, FMIN, INFINITY)
VSCAN(vmin_f64, double, vd4, vl4, 4, SHUF4, vmin4, FMIN, INFINITY)

typedef void (*vscan_fn)(const void *x, void *y, int64_t n, bool rev);
#define VROW(f32, f64, i32, i64)                                            \
  {                                                                         \
    NULL, NULL, i32, i64, NULL, NULL, i32, i64, NULL, NULL, f32, f64, NULL, \
        NULL                                                                \
  }
static const vscan_fn VSUM[EM_DTYPE_COUNT] =
    VROW(vs_f32, vs_f64, vs_i32, vs_i64);
static const vscan_fn VPROD[EM_DTYPE_COUNT] = VROW(vp_f32, vp_f64, NULL, NULL);
static const vscan_fn VMAX[EM_DTYPE_COUNT] =
    VROW(vmax_f32, vmax_f64, NULL, NULL);
static const vscan_fn VMIN[EM_DTYPE_COUNT] =
    VROW(vmin_f32, vmin_f64, NULL, NULL);

#define ROW(P)                                                          \
  {                                                                     \
    &P##_u8, &P##_u16, &P##_u32, &P##_u64, &P##_s8, &P##_s16, &P##_s32, \
        &P##_s64, &P##_f16, &P##_bf16, &P##_f32, &P##_f64

static const cum_fn SUM_FNS[EM_DTYPE_COUNT] = ROW(cs), &cs_c64, &cs_c128
}
;
static const cum_fn PROD_FNS[EM_DTYPE_COUNT] = ROW(cp), &cp_c64, &cp_c128
}
;
static const cum_fn MAX_FNS[EM_DTYPE_COUNT] = ROW(cmax), NULL, NULL
}
;
static const cum_fn MIN_FNS[EM_DTYPE_COUNT] = ROW(cmin), NULL, NULL
}
;

/* ---- the kernel --------------------------------------------------------- */

typedef struct {
  cum_fn fn;
  vscan_fn vfn; /* contiguous rows (inner == 1), or NULL */
  const char *x;
  char *y;
  size_t es;
  int64_t n, inner, nblk;
  bool rev;
} cum_ctx;

static void cum_range(void *c_, int64_t b, int64_t e, int tid) {
  (void)tid;
  const cum_ctx *c = c_;
  for (int64_t it = b; it < e; it++) {
    int64_t o = it / c->nblk, j0 = (it % c->nblk) * CUM_W;
    int64_t w = c->inner - j0 < CUM_W ? c->inner - j0 : CUM_W;
    size_t off =
        ((size_t)o * (size_t)c->n * (size_t)c->inner + (size_t)j0) * c->es;
    if (c->vfn && c->inner == 1)
      c->vfn(c->x + off, c->y + off, c->n, c->rev);
    else
      c->fn(c->x + off, c->y + off, c->n, c->inner, w, c->rev);
  }
}

em_status em_cpu_k_cumulative(em_array *out, const em_node *node) {
  const em_array *in = node->in[0];
  const vscan_fn *vtab = node->p.cum.kind == EM_OP_sum          ? VSUM
                         : node->p.cum.kind == EM_OP_product    ? VPROD
                         : node->p.cum.kind == EM_OP_reduce_max ? VMAX
                                                                : VMIN;
  const cum_fn *tab = node->p.cum.kind == EM_OP_sum          ? SUM_FNS
                      : node->p.cum.kind == EM_OP_product    ? PROD_FNS
                      : node->p.cum.kind == EM_OP_reduce_max ? MAX_FNS
                      : node->p.cum.kind == EM_OP_reduce_min ? MIN_FNS
                                                             : NULL;
  if (!tab || (unsigned)in->dtype >= EM_DTYPE_COUNT || !tab[in->dtype])
    return em_fail(EM_ERR_UNSUPPORTED, "[cumulative] no kernel for %s (op %d)",
                   em_dtype_name(in->dtype), (int)node->p.cum.kind);
  int axis = node->p.cum.axis;
  if (axis < 0 || axis >= in->ndim)
    return em_fail(EM_ERR_ARGUMENT, "[cumulative] axis %d out of range", axis);
  em_array *c = NULL;
  em_status st = em_contiguous(node->in[0], &c);
  if (st != EM_OK) return st;
  st = em_alloc_output(out);
  if (st != EM_OK) {
    em_array_release(c);
    return st;
  }
  int64_t outer = 1, n = in->shape[axis], inner = 1;
  for (int i = 0; i < axis; i++) outer *= in->shape[i];
  for (int i = axis + 1; i < in->ndim; i++) inner *= in->shape[i];
  if (out->size > 0) {
    cum_ctx ctx = {.fn = tab[in->dtype],
                   .vfn = vtab[in->dtype],
                   .x = em_array_ptr(c),
                   .y = em_array_ptr(out),
                   .es = em_dtype_size(in->dtype),
                   .n = n,
                   .inner = inner,
                   .nblk = (inner + CUM_W - 1) / CUM_W,
                   .rev = node->p.cum.reverse};
    int64_t items = outer * ctx.nblk;
    int64_t per = n * (inner < CUM_W ? inner : CUM_W); /* elements per item */
    int64_t grain = per >= 32768 ? 1 : 32768 / per;
    em_parallel_for(items, grain, cum_range, &ctx);
  }
  em_array_release(c);
  return EM_OK;
}
