/* ops-impl.h — the engine's op list (ORDER OP): the enum, the op names and
 * the per-backend kernel tables are all derived from EM_OP_LIST. */
#ifndef EMILY_OPS_IMPL_H
#define EMILY_OPS_IMPL_H

#include "emily.h"

/* Kinds tell the evaluator how an op runs:
 *  LEAF  — no inputs, materialised at creation (from_data) or by a kernel
 *  VIEW  — aliases its input's buffer with new shape/strides/offset
 *  EW    — elementwise, runs in the fused tile interpreter
 *  KERN  — a whole-array kernel of the backend */
#define EM_OP_LIST(X)                                               \
  X(data, LEAF) X(full, KERN) X(iota, KERN) X(eye, KERN)             \
  X(as_type, EW) X(bitcast, KERN) X(copy, KERN)                      \
  X(reshape, KERN) X(view, VIEW)                                     \
  X(pad, KERN) X(reverse, KERN) X(slice_dynamic, KERN)               \
  X(put_slice, KERN) X(concatenate, KERN) X(select, EW) X(clip, EW)  \
  EM_BINARY_OPS(EM_OP_EW_) EM_UNARY_OPS(EM_OP_EW_)                   \
  EM_REDUCE_OPS(EM_OP_KERN_) X(argmax, KERN) X(argmin, KERN)         \
  X(dot, KERN) X(softmax, KERN) X(logsumexp, KERN)                   \
  X(layer_norm, KERN) X(rms_norm, KERN)                              \
  X(gather, KERN) X(indexed_add, KERN) X(indexed_put, KERN)          \
  X(take, KERN) X(take_along_axis, KERN)                             \
  X(cumulative, KERN) X(sort, KERN) X(argsort, KERN)                 \
  X(window_reduce, KERN) X(window_scatter, KERN) X(conv, KERN)       \
  X(fft, KERN) X(rfft, KERN) X(irfft, KERN)                          \
  X(triangular_solve, KERN) X(cholesky, KERN) X(qr, KERN) X(lu, KERN) \
  X(eigh, KERN) X(svd, KERN) X(solve, KERN) X(determinant, KERN)

#define EM_OP_EW_(n) X(n, EW)
#define EM_OP_KERN_(n) X(n, KERN)

typedef enum {
#define X(n, k) EM_OP_##n,
  EM_OP_LIST(X)
#undef X
  EM_OP_COUNT
} em_op;

typedef enum { EM_KIND_LEAF, EM_KIND_VIEW, EM_KIND_EW, EM_KIND_KERN } em_op_kind;

const char *em_op_name(em_op op);
em_op_kind em_op_kind_of(em_op op);

#endif
