/* cpu-kernels.h — the CPU backend's kernel tables.
 *
 * Kernels trust their inputs: the graph-building calls (src/core/ops.c)
 * have already validated shapes, axes and dtypes. Elementwise kernels work
 * on contiguous runs of n elements (the evaluator feeds them tiles of a
 * fused chain, see src/core/eval.c); they must accept n == 0 and must not
 * assume alignment beyond the element's natural alignment. Output never
 * aliases a different-typed input but may alias a same-typed input
 * (x == y is allowed: loops read element i before writing element i). */
#ifndef EMILY_CPU_KERNELS_H
#define EMILY_CPU_KERNELS_H

#include <stdint.h>

#include "../core/ops-impl.h"

typedef void (*em_unary_kernel)(const void *x, void *y, int64_t n);
typedef void (*em_binary_kernel)(const void *a, const void *b, void *y,
                                 int64_t n);

/* Output dtype of a unary/binary op on input dtype t, or -1 when Nx does
 * not define the op for t (e.g. bitwise ops on floats). */
int em_unary_out_dtype(em_op op, em_dtype t);
int em_binary_out_dtype(em_op op, em_dtype t);

/* NULL when not defined for the dtype (matches the functions above). */
em_unary_kernel em_cpu_unary_kernel(em_op op, em_dtype t);
em_binary_kernel em_cpu_binary_kernel(em_op op, em_dtype t);
/* Converts n elements from one dtype to another with Nx semantics. */
em_unary_kernel em_cpu_cast_kernel(em_dtype from, em_dtype to);

/* Reduction of a contiguous input viewed as [outer, r, inner] into a
 * contiguous output [outer, inner]. op: sum product reduce_max reduce_min
 * all any (output dtype: same as input, u8 for all/any). Parallelises
 * internally with em_parallel_for. */
void em_cpu_reduce(em_op op, em_dtype t, const void *x, void *y,
                   int64_t outer, int64_t r, int64_t inner);
/* argmax/argmin over r of [outer, r, inner] into s64 [outer, inner]. */
void em_cpu_arg_reduce(em_op op, em_dtype t, bool tie_high, const void *x,
                       int64_t *y, int64_t outer, int64_t r, int64_t inner);

/* The bounds-check failure for an index at flat position pos of idx
 * (row-major), which indexes axis `axis` of size d; value points at a
 * host copy of that index (idx's data may be on a device). Shared by the
 * CPU and CUDA indexing kernels so both say the same thing. */
struct em_array;
em_status em_index_bounds_error(const char *op, const struct em_array *idx,
                                const void *value, int64_t pos, int axis,
                                int64_t d);

/* Whole-array kernels of the op families, one file each under src/cpu/
 * (indexing.c, cumulative.c, sort.c, window.c, conv.c, fft.c, linalg.c).
 * Signature: em_kernel_fn (src/core/backend-impl.h). */
struct em_array;
struct em_node;
#define EM_CPU_FAMILY_KERNELS(X)                                        \
  X(gather) X(indexed_add) X(indexed_put) X(take) X(take_along_axis)    \
  X(cumulative) X(sort) X(argsort) X(window_reduce) X(window_scatter)   \
  X(conv) X(fft) X(rfft) X(irfft) X(triangular_solve) X(cholesky)       \
  X(qr) X(lu) X(eigh) X(svd) X(solve) X(determinant)
#define X(n)                                                             \
  em_status em_cpu_k_##n(struct em_array *out, const struct em_node *node) \
      __attribute__((weak));
EM_CPU_FAMILY_KERNELS(X)
#undef X

#endif
