/* ops_sort.c — graph building for the cumulative and sorting family:
 * cumulative sum/product/max/min, sort, argsort and top_k (Nx 0.13
 * semantics). Kernels: src/cpu/cumulative.c and src/cpu/sort.c.
 *
 *  - Cumulative ops keep the input dtype (integers wrap); max/min propagate
 *    NaN and are not defined for complex inputs.
 *  - Sorts are stable in both directions (descending keeps equal elements
 *    in their original order, as Nx's `a >= b` comparator does); NaN is
 *    larger than +inf, all NaNs are equal, -0.0 equals +0.0. Complex inputs
 *    are rejected. argsort returns s64.
 *  - top_k is Nx's definition: argsort descending along the last axis,
 *    the first k indices, the values gathered with take_along_axis. */
#include <string.h>

#include "array-impl.h"

#define TRY(x)                    \
  do {                            \
    em_status st_ = (x);          \
    if (st_ != EM_OK) return st_; \
  } while (0)

static em_status check_input(const char *op, const em_array *a) {
  if (!a) return em_fail(EM_ERR_ARGUMENT, "[%s] input array is NULL", op);
  if ((unsigned)a->dtype >= EM_DTYPE_COUNT)
    return em_fail(EM_ERR_ARGUMENT, "[%s] unknown dtype %d", op, (int)a->dtype);
  return EM_OK;
}

/* ---- cumulative --------------------------------------------------------- */

static em_status cumulative(em_array **out, em_op kind, const char *name,
                            em_array *a, int axis, bool reverse) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[%s] out is NULL", name);
  *out = NULL;
  TRY(check_input(name, a));
  char b[256];
  if (em_dtype_is_complex(a->dtype) &&
      (kind == EM_OP_reduce_max || kind == EM_OP_reduce_min))
    return em_fail(
        EM_ERR_ARGUMENT, "[%s] not defined for complex input (%s %s)", name,
        em_shape_str(b, sizeof b, a->ndim, a->shape), em_dtype_name(a->dtype));
  if (a->ndim == 0)
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] needs an input of rank >= 1, got a scalar (%s)", name,
                   em_dtype_name(a->dtype));
  TRY(em_norm_axis(name, &axis, a->ndim));
  em_params p;
  memset(&p, 0, sizeof p);
  p.cum.kind = kind;
  p.cum.axis = axis;
  p.cum.reverse = reverse;
  return em_make_node(out, EM_OP_cumulative, a->dtype, a->ndim, a->shape,
                      a->dev, 1, &a, &p);
}

em_status em_cumulative_sum(em_array **out, em_array *a, int axis,
                            bool reverse) {
  return cumulative(out, EM_OP_sum, "cumulative_sum", a, axis, reverse);
}
em_status em_cumulative_product(em_array **out, em_array *a, int axis,
                                bool reverse) {
  return cumulative(out, EM_OP_product, "cumulative_product", a, axis, reverse);
}
em_status em_cumulative_max(em_array **out, em_array *a, int axis,
                            bool reverse) {
  return cumulative(out, EM_OP_reduce_max, "cumulative_max", a, axis, reverse);
}
em_status em_cumulative_min(em_array **out, em_array *a, int axis,
                            bool reverse) {
  return cumulative(out, EM_OP_reduce_min, "cumulative_min", a, axis, reverse);
}

/* ---- sort / argsort ------------------------------------------------------ */

static em_status sort_node(em_array **out, em_op op, em_array *a, int axis,
                           bool descending) {
  const char *name = em_op_name(op);
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[%s] out is NULL", name);
  *out = NULL;
  TRY(check_input(name, a));
  char b[256];
  if (em_dtype_is_complex(a->dtype))
    return em_fail(
        EM_ERR_ARGUMENT, "[%s] not defined for complex input (%s %s)", name,
        em_shape_str(b, sizeof b, a->ndim, a->shape), em_dtype_name(a->dtype));
  if (a->ndim == 0)
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] needs an input of rank >= 1, got a scalar (%s)", name,
                   em_dtype_name(a->dtype));
  TRY(em_norm_axis(name, &axis, a->ndim));
  em_params p;
  memset(&p, 0, sizeof p);
  p.sort.axis = axis;
  p.sort.descending = descending;
  em_dtype t = op == EM_OP_argsort ? EM_S64 : a->dtype;
  TRY(em_check_shape(name, a->ndim, a->shape, t));
  return em_make_node(out, op, t, a->ndim, a->shape, a->dev, 1, &a, &p);
}

em_status em_sort(em_array **out, em_array *a, int axis, bool descending) {
  return sort_node(out, EM_OP_sort, a, axis, descending);
}
em_status em_argsort(em_array **out, em_array *a, int axis, bool descending) {
  return sort_node(out, EM_OP_argsort, a, axis, descending);
}

/* ---- top_k --------------------------------------------------------------- */

/* The first k entries of x along its last axis. */
static em_status first_k(em_array **out, em_array *x, int k) {
  int64_t start[EM_MAX_NDIM], len[EM_MAX_NDIM];
  for (int i = 0; i < x->ndim; i++) {
    start[i] = 0;
    len[i] = x->shape[i];
  }
  len[x->ndim - 1] = k;
  return em_slice(out, x, start, len, NULL);
}

em_status em_top_k(em_array **values, em_array **indices, em_array *a, int k) {
  if (!values || !indices)
    return em_fail(EM_ERR_ARGUMENT, "[top_k] values or indices is NULL");
  *values = NULL;
  *indices = NULL;
  TRY(check_input("top_k", a));
  char b[256];
  if (em_dtype_is_complex(a->dtype))
    return em_fail(
        EM_ERR_ARGUMENT, "[top_k] not defined for complex input (%s %s)",
        em_shape_str(b, sizeof b, a->ndim, a->shape), em_dtype_name(a->dtype));
  if (a->ndim == 0)
    return em_fail(EM_ERR_ARGUMENT,
                   "[top_k] input must have rank >= 1, got a scalar (%s)",
                   em_dtype_name(a->dtype));
  int64_t last = a->shape[a->ndim - 1];
  if (k < 1 || k > last)
    return em_fail(EM_ERR_ARGUMENT,
                   "[top_k] k must be in 1..%lld (the last axis of %s %s), "
                   "got %d",
                   (long long)last,
                   em_shape_str(b, sizeof b, a->ndim, a->shape),
                   em_dtype_name(a->dtype), k);
  /* Nx.top_k's own definition: argsort descending (stable, so ties go to
   * the lower index), the first k indices, and the values gathered. */
  em_array *i = NULL, *x = NULL, *v = NULL;
  em_status st = em_argsort(&i, a, -1, true);
  if (st == EM_OK) st = first_k(&x, i, k);
  if (st == EM_OK) st = em_take_along_axis(&v, a, x, -1);
  em_array_release(i);
  if (st != EM_OK) {
    em_array_release(v);
    em_array_release(x);
    return st;
  }
  *values = v;
  *indices = x;
  return EM_OK;
}
