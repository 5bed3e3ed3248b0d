/* subbyte.h — the narrow dtypes: s2 s4 u2 u4 (stored one per byte) and
 * f8 / f8_e4m3fn (computed through f32).
 *
 * Sub-byte ints live in memory as the 8-bit type of their signedness (s4
 * as an int8 in [-8, 7], u4 as a uint8 in [0, 15]), so views, copies and
 * data movement need nothing special, and the s8/u8 kernels compute them;
 * results that can leave the range are wrapped back to the type's width
 * (s4: 7 + 1 = -8), which is exact because wrapping commutes with + - *.
 * The packed layout (Nx's: element i at bit i * bits from the most
 * significant bit of byte 0) exists only at the host boundary.
 *
 * f8 types store one byte; unary/binary ops decode to f32, run the f32
 * kernel and round back once (correctly rounded for + - * / sqrt, since
 * f32 has more than twice f8's precision), reductions accumulate in f64.
 *
 * Provided by cast.c (wrap, clamp, unary dispatch: the unary/cast kernel
 * test links only unary.c and cast.c) and subbyte.c (the rest). */
#ifndef EMILY_SUBBYTE_H
#define EMILY_SUBBYTE_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu-kernels.h"

static inline bool em_dtype_is_subbyte(em_dtype t) {
  return t == EM_S2 || t == EM_S4 || t == EM_U2 || t == EM_U4;
}
static inline bool em_dtype_is_f8(em_dtype t) {
  return t == EM_F8 || t == EM_F8_E4M3FN;
}
/* The dtypes that the kernels of the other dtypes serve through wrappers. */
static inline bool em_dtype_is_narrow(em_dtype t) {
  return em_dtype_is_subbyte(t) || em_dtype_is_f8(t);
}
/* The 8-bit type a sub-byte type is stored (and computed) as. */
static inline em_dtype em_subbyte_base(em_dtype t) {
  return t == EM_S2 || t == EM_S4 ? EM_S8 : EM_U8;
}
static inline int em_subbyte_bits(em_dtype t) {
  return t == EM_S2 || t == EM_U2 ? 2 : 4;
}

/* ---- cast.c ---- */
/* In place: reduces n stored values of sub-byte t modulo 2^bits into the
 * type's range (sign-extends the low bits for s2/s4). */
void em_subbyte_wrap(em_dtype t, void *y, int64_t n);
/* In place: clamps n values (stored as the base type) into t's range. */
void em_subbyte_clamp(em_dtype t, void *y, int64_t n);
/* Unary kernels of narrow t (NULL where em_unary_out_dtype is -1). */
em_unary_kernel em_cpu_narrow_unary_kernel(em_op op, em_dtype t);

/* ---- subbyte.c ---- */
em_binary_kernel em_cpu_narrow_binary_kernel(em_op op, em_dtype t);
/* em_cpu_reduce / em_cpu_arg_reduce for narrow t; false (nothing done)
 * when t is not narrow. */
bool em_cpu_narrow_reduce(em_op op, em_dtype t, const void *x, void *y,
                          int64_t outer, int64_t r, int64_t inner);
bool em_cpu_narrow_arg_reduce(em_op op, em_dtype t, bool tie_high,
                              const void *x, int64_t *y, int64_t outer,
                              int64_t r, int64_t inner);
/* Host layout <-> memory: packed holds ceil(n * bits / 8) bytes; pack
 * zeroes the padding bits, unpack ignores them. */
void em_subbyte_unpack(em_dtype t, const void *packed, void *dst, int64_t n);
void em_subbyte_pack(em_dtype t, const void *src, void *packed, int64_t n);

#endif
