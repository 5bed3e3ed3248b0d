/* subbyte.c — binary ops, reductions and host packing of the narrow dtypes
 * (s2 s4 u2 u4 f8 f8_e4m3fn); see subbyte.h for the storage model. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "../core/parallel.h"
#include "cpu-kernels.h"
#include "subbyte.h"

enum { STAGE = 256 };

/* ---- binary ops ---------------------------------------------------------- */

/* Comparisons and logical ops: u8 0/1 results. */
static bool is_pred(em_op op) {
  switch (op) {
    case EM_OP_equal: case EM_OP_not_equal: case EM_OP_greater:
    case EM_OP_less: case EM_OP_greater_equal: case EM_OP_less_equal:
    case EM_OP_logical_and: case EM_OP_logical_or: case EM_OP_logical_xor:
      return true;
    default:
      return false;
  }
}

/* Sub-byte: the 8-bit kernel, then wrap to the width. Exact: wrapping
 * commutes with + - * and pow; quotient's INT_MIN / -1 = INT_MIN and x / 0
 * = -1 come out as the narrow type's; shifts by >= the width give 0 or the
 * sign fill either way. */
static void sub_binary(em_op op, em_dtype t, const void *a, const void *b,
                       void *y, int64_t n) {
  em_binary_kernel k = em_cpu_binary_kernel(op, em_subbyte_base(t));
  if (!k) return; /* the dispatcher checked */
  k(a, b, y, n);
  em_subbyte_wrap(t, y, n);
}

/* f8: both operands decoded to f32 in blocks, the f32 kernel, one rounding
 * back (predicates write their u8 directly). Output may alias an input:
 * each block is read before it is written. */
static void f8_binary(em_op op, em_dtype t, const void *av, const void *bv,
                      void *yv, int64_t n) {
  em_binary_kernel k = em_cpu_binary_kernel(op, EM_F32);
  if (!k) return; /* the dispatcher checked */
  bool pred = is_pred(op);
  em_unary_kernel dec = em_cpu_cast_kernel(t, EM_F32);
  em_unary_kernel enc = em_cpu_cast_kernel(EM_F32, t);
  const uint8_t *a = (const uint8_t *)av, *b = (const uint8_t *)bv;
  uint8_t *y = (uint8_t *)yv;
  float fa[STAGE], fb[STAGE], fy[STAGE];
  for (int64_t i0 = 0; i0 < n; i0 += STAGE) {
    int64_t m = n - i0 < STAGE ? n - i0 : STAGE;
    dec(a + i0, fa, m);
    dec(b + i0, fb, m);
    if (pred) {
      k(fa, fb, y + i0, m);
    } else {
      k(fa, fb, fy, m);
      enc(fy, y + i0, m);
    }
  }
}

#define NARROW_BIN_FNS(OP)                                                 \
  static void nb_##OP##_S2(const void *a, const void *b, void *y,         \
                           int64_t n) {                                   \
    sub_binary(EM_OP_##OP, EM_S2, a, b, y, n);                             \
  }                                                                        \
  static void nb_##OP##_S4(const void *a, const void *b, void *y,         \
                           int64_t n) {                                   \
    sub_binary(EM_OP_##OP, EM_S4, a, b, y, n);                             \
  }                                                                        \
  static void nb_##OP##_U2(const void *a, const void *b, void *y,         \
                           int64_t n) {                                   \
    sub_binary(EM_OP_##OP, EM_U2, a, b, y, n);                             \
  }                                                                        \
  static void nb_##OP##_U4(const void *a, const void *b, void *y,         \
                           int64_t n) {                                   \
    sub_binary(EM_OP_##OP, EM_U4, a, b, y, n);                             \
  }                                                                        \
  static void nb_##OP##_F8(const void *a, const void *b, void *y,         \
                           int64_t n) {                                   \
    f8_binary(EM_OP_##OP, EM_F8, a, b, y, n);                              \
  }                                                                        \
  static void nb_##OP##_F8_E4M3FN(const void *a, const void *b, void *y,  \
                                  int64_t n) {                            \
    f8_binary(EM_OP_##OP, EM_F8_E4M3FN, a, b, y, n);                       \
  }
EM_BINARY_OPS(NARROW_BIN_FNS)

em_binary_kernel em_cpu_narrow_binary_kernel(em_op op, em_dtype t) {
  if (!em_dtype_is_narrow(t)) return NULL;
  em_dtype wide = em_dtype_is_f8(t) ? EM_F32 : em_subbyte_base(t);
  em_binary_kernel k = em_cpu_binary_kernel(op, wide);
  if (!k) return NULL;
  /* Sub-byte predicates compare the stored numbers: the 8-bit kernel. */
  if (!em_dtype_is_f8(t) && is_pred(op)) return k;
  switch (op) {
#define EM_X_(OP)                                          \
  case EM_OP_##OP:                                         \
    switch (t) {                                           \
      case EM_S2: return nb_##OP##_S2;                     \
      case EM_S4: return nb_##OP##_S4;                     \
      case EM_U2: return nb_##OP##_U2;                     \
      case EM_U4: return nb_##OP##_U4;                     \
      case EM_F8: return nb_##OP##_F8;                     \
      default: return nb_##OP##_F8_E4M3FN;                 \
    }
    EM_BINARY_OPS(EM_X_)
#undef EM_X_
    default: return NULL;
  }
}

/* ---- reductions ------------------------------------------------------------
 * Sub-byte: the 8-bit reduction, then sum/product wrap and max/min clamp
 * (only the identity of an empty reduction, the 8-bit type's extreme, can
 * be out of range: it becomes the narrow type's).
 * f8: per output column, in row order, decoded to f32: sum and product
 * accumulate in f64 and round once; max/min as the f32 reduction (NaN
 * wins; empty: -inf/+inf, which f8_e4m3fn saturates to ∓448); all/any on
 * the bits (NaN is true, -0 false); argmax/argmin with the scan order of
 * reduce.c (NaN beats numbers and the last NaN wins; ties by tie_high). */

enum { RT = 256 }; /* columns per task */

typedef struct {
  em_op op;
  em_dtype t;
  bool tie_high;
  const uint8_t *x;
  void *y;
  int64_t r, inner, ntiles;
} f8r_ctx;

static inline bool arg_better(bool is_max, bool tie_high, float vb,
                              int64_t rb, float va, int64_t ra) {
  if (ra < 0) return true;
  bool bn = vb != vb, an = va != va;
  if (bn || an) return bn && (!an || rb > ra);
  if (is_max ? vb > va : vb < va) return true;
  if (is_max ? va > vb : va < vb) return false;
  return tie_high ? rb > ra : rb < ra;
}

static void f8r_items(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const f8r_ctx *c = ctx;
  em_unary_kernel dec = em_cpu_cast_kernel(c->t, EM_F32);
  em_unary_kernel enc32 = em_cpu_cast_kernel(EM_F32, c->t);
  em_unary_kernel enc64 = em_cpu_cast_kernel(EM_F64, c->t);
  float row[RT], ext[RT];
  double acc[RT];
  int64_t idx[RT];
  uint8_t flag[RT];
  for (int64_t it = b; it < e; it++) {
    int64_t o = it / c->ntiles, j0 = (it % c->ntiles) * RT;
    int64_t w = c->inner - j0 < RT ? c->inner - j0 : RT;
    const uint8_t *base = c->x + o * c->r * c->inner + j0;
    int64_t at = o * c->inner + j0; /* output element of column j0 */
    switch (c->op) {
      case EM_OP_sum:
      case EM_OP_product: {
        bool sum = c->op == EM_OP_sum;
        for (int64_t j = 0; j < w; j++) acc[j] = sum ? 0.0 : 1.0;
        for (int64_t rr = 0; rr < c->r; rr++) {
          dec(base + rr * c->inner, row, w);
          if (sum)
            for (int64_t j = 0; j < w; j++) acc[j] += row[j];
          else
            for (int64_t j = 0; j < w; j++) acc[j] *= row[j];
        }
        enc64(acc, (uint8_t *)c->y + at, w);
        break;
      }
      case EM_OP_reduce_max:
      case EM_OP_reduce_min: {
        bool mx = c->op == EM_OP_reduce_max;
        for (int64_t j = 0; j < w; j++) ext[j] = mx ? -INFINITY : INFINITY;
        for (int64_t rr = 0; rr < c->r; rr++) {
          dec(base + rr * c->inner, row, w);
          for (int64_t j = 0; j < w; j++) {
            float v = row[j];
            /* a NaN takes over and stays: v > NaN is false */
            if ((mx ? v > ext[j] : v < ext[j]) || v != v) ext[j] = v;
          }
        }
        enc32(ext, (uint8_t *)c->y + at, w);
        break;
      }
      case EM_OP_all:
      case EM_OP_any: {
        bool all = c->op == EM_OP_all;
        memset(flag, all ? 1 : 0, (size_t)w);
        for (int64_t rr = 0; rr < c->r; rr++) {
          const uint8_t *p = base + rr * c->inner;
          for (int64_t j = 0; j < w; j++) {
            uint8_t nz = (p[j] & 0x7fu) != 0;
            flag[j] = all ? (uint8_t)(flag[j] & nz) : (uint8_t)(flag[j] | nz);
          }
        }
        memcpy((uint8_t *)c->y + at, flag, (size_t)w);
        break;
      }
      case EM_OP_argmax:
      case EM_OP_argmin: {
        bool mx = c->op == EM_OP_argmax;
        for (int64_t j = 0; j < w; j++) {
          ext[j] = 0;
          idx[j] = -1;
        }
        for (int64_t rr = 0; rr < c->r; rr++) {
          dec(base + rr * c->inner, row, w);
          for (int64_t j = 0; j < w; j++)
            if (arg_better(mx, c->tie_high, row[j], rr, ext[j], idx[j])) {
              ext[j] = row[j];
              idx[j] = rr;
            }
        }
        memcpy((int64_t *)c->y + at, idx, (size_t)w * sizeof(int64_t));
        break;
      }
      default:
        break;
    }
  }
}

static void f8_reduce(em_op op, em_dtype t, bool tie_high, const void *x,
                      void *y, int64_t outer, int64_t r, int64_t inner) {
  if (outer <= 0 || inner <= 0) return;
  f8r_ctx c = {op, t, tie_high, (const uint8_t *)x, y, r < 0 ? 0 : r, inner,
               (inner + RT - 1) / RT};
  int64_t per = (c.r + 1) * (inner < RT ? inner : RT);
  int64_t grain = (1 << 16) / per + 1;
  em_parallel_for(outer * c.ntiles, grain, f8r_items, &c);
}

bool em_cpu_narrow_reduce(em_op op, em_dtype t, const void *x, void *y,
                          int64_t outer, int64_t r, int64_t inner) {
  if ((unsigned)t >= EM_DTYPE_COUNT || !em_dtype_is_narrow(t)) return false;
  switch (op) {
    case EM_OP_sum: case EM_OP_product: case EM_OP_reduce_max:
    case EM_OP_reduce_min: case EM_OP_all: case EM_OP_any:
      break;
    default:
      return true; /* not a reduction: nothing to do, as em_cpu_reduce */
  }
  if (em_dtype_is_f8(t)) {
    f8_reduce(op, t, false, x, y, outer, r, inner);
    return true;
  }
  em_cpu_reduce(op, em_subbyte_base(t), x, y, outer, r, inner);
  int64_t n = outer > 0 && inner > 0 ? outer * inner : 0;
  if (op == EM_OP_sum || op == EM_OP_product) em_subbyte_wrap(t, y, n);
  else if (op == EM_OP_reduce_max || op == EM_OP_reduce_min)
    em_subbyte_clamp(t, y, n);
  return true;
}

bool em_cpu_narrow_arg_reduce(em_op op, em_dtype t, bool tie_high,
                              const void *x, int64_t *y, int64_t outer,
                              int64_t r, int64_t inner) {
  if ((unsigned)t >= EM_DTYPE_COUNT || !em_dtype_is_narrow(t)) return false;
  if (r <= 0 || (op != EM_OP_argmax && op != EM_OP_argmin)) return true;
  if (em_dtype_is_f8(t))
    f8_reduce(op, t, tie_high, x, y, outer, r, inner);
  else
    em_cpu_arg_reduce(op, em_subbyte_base(t), tie_high, x, y, outer, r,
                      inner);
  return true;
}

/* ---- host packing ----------------------------------------------------------
 * Nx writes sub-byte elements as a bitstring, first element in the most
 * significant bits: [1, -2, 3] as s4 is <<0x1e, 0x3::4>>, which the host
 * boundary carries padded with zero bits to <<0x1e, 0x30>>. */

void em_subbyte_unpack(em_dtype t, const void *packed, void *dst, int64_t n) {
  const uint8_t *p = (const uint8_t *)packed;
  uint8_t *d = (uint8_t *)dst;
  if (n <= 0) return;
  if (em_subbyte_bits(t) == 4) {
    int64_t full = n / 2;
    for (int64_t i = 0; i < full; i++) {
      d[2 * i] = (uint8_t)(p[i] >> 4);
      d[2 * i + 1] = (uint8_t)(p[i] & 15u);
    }
    if (n & 1) d[n - 1] = (uint8_t)(p[full] >> 4);
  } else {
    int64_t full = n / 4;
    for (int64_t i = 0; i < full; i++) {
      d[4 * i] = (uint8_t)(p[i] >> 6);
      d[4 * i + 1] = (uint8_t)((p[i] >> 4) & 3u);
      d[4 * i + 2] = (uint8_t)((p[i] >> 2) & 3u);
      d[4 * i + 3] = (uint8_t)(p[i] & 3u);
    }
    for (int64_t k = 0; k < n % 4; k++)
      d[4 * full + k] = (uint8_t)((p[full] >> (6 - 2 * k)) & 3u);
  }
  em_subbyte_wrap(t, d, n); /* sign-extends s2/s4 */
}

void em_subbyte_pack(em_dtype t, const void *src, void *packed, int64_t n) {
  const uint8_t *s = (const uint8_t *)src;
  uint8_t *p = (uint8_t *)packed;
  if (n <= 0) return;
  if (em_subbyte_bits(t) == 4) {
    int64_t full = n / 2;
    for (int64_t i = 0; i < full; i++)
      p[i] = (uint8_t)((s[2 * i] & 15u) << 4 | (s[2 * i + 1] & 15u));
    if (n & 1) p[full] = (uint8_t)((s[n - 1] & 15u) << 4);
  } else {
    int64_t full = n / 4;
    for (int64_t i = 0; i < full; i++)
      p[i] = (uint8_t)((s[4 * i] & 3u) << 6 | (s[4 * i + 1] & 3u) << 4 |
                       (s[4 * i + 2] & 3u) << 2 | (s[4 * i + 3] & 3u));
    if (n % 4) {
      unsigned v = 0;
      for (int64_t k = 0; k < n % 4; k++)
        v |= (s[4 * full + k] & 3u) << (6 - 2 * k);
      p[full] = (uint8_t)v;
    }
  }
}
