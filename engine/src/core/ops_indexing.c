/* ops_indexing.c — graph building for the indexing family: gather,
 * indexed_add, indexed_put, take, take_along_axis, and the global
 * bounds-check switch.
 *
 * Semantics (Nx 0.13):
 *  - gather(a, indices [..., k], axes): result indices.shape[:-1] ++ the
 *    axes of a not in `axes` (in order); each index row selects the full
 *    slice of a at that position (Nx.Shape.gather).
 *  - indexed_add/put(a, indices [..., k], updates, axes): updates has shape
 *    indices.shape[:-1] ++ window, where the window has one dimension per
 *    non-indexed axis of a (in order), each no larger than that axis (as
 *    Nx.Shape.indexed allows); the window is placed at the index row's
 *    position on the indexed axes and at 0 on the others (XLA scatter).
 *  - take(a, indices, axis): a.shape[:axis] ++ indices.shape ++
 *    a.shape[axis+1:] (Nx.Shape.take), indices of any rank.
 *  - take_along_axis(a, indices, axis): indices has a's rank and a's
 *    dimensions except on axis; the result has indices' shape.
 * Indices may be any integer dtype; data any dtype. Out-of-range indices
 * are clamped at evaluation unless the bounds check is on (see
 * src/cpu/indexing.c). Messages start with "[op]". */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "array-impl.h"

#define SHP(buf, a) em_shape_str(buf, sizeof buf, (a)->ndim, (a)->shape)

#define TRY(x)                    \
  do {                            \
    em_status st_ = (x);          \
    if (st_ != EM_OK) return st_; \
  } while (0)

/* ---- bounds-check switch ------------------------------------------------ */

/* Read by the kernels at evaluation time (declared again in
 * src/cpu/indexing.c). */
bool em_bounds_check_enabled(void);

static atomic_bool g_bounds_check = false;

void em_set_bounds_check(bool on) { atomic_store(&g_bounds_check, on); }
bool em_bounds_check_enabled(void) { return atomic_load(&g_bounds_check); }

/* ---- helpers ------------------------------------------------------------ */

static bool same_device(const em_array *a, const em_array *b) {
  return a->dev.type == b->dev.type && a->dev.index == b->dev.index;
}

/* Checks the data and index arrays common to every op of the family. */
static em_status check_pair(const char *op, const em_array *a,
                            const em_array *idx) {
  if (!a || !idx)
    return em_fail(EM_ERR_ARGUMENT, "[%s] input array is NULL", op);
  char b1[256], b2[256];
  if (!same_device(a, idx))
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] tensor and indices are on different devices", op);
  if (!em_dtype_is_int(idx->dtype))
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] indices must be an integer array, got %s %s "
                   "(tensor %s %s)",
                   op, em_dtype_name(idx->dtype), SHP(b1, idx),
                   em_dtype_name(a->dtype), SHP(b2, a));
  return EM_OK;
}

/* Validates gather/indexed indices [..., k] and axes against a; fills the
 * normalised, strictly increasing axes into p. */
static em_status check_index_axes(const char *op, const em_array *a,
                                  const em_array *idx, int naxes,
                                  const int *axes, em_params *p) {
  char b1[256], b2[256];
  if (idx->ndim < 1)
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] expected indices rank to be at least 1, got indices "
                   "%s %s (tensor %s %s)",
                   op, em_dtype_name(idx->dtype), SHP(b1, idx),
                   em_dtype_name(a->dtype), SHP(b2, a));
  int64_t k = idx->shape[idx->ndim - 1];
  if (k > a->ndim)
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] the last indices dimension (%lld) must not exceed the "
                   "tensor rank (%d): indices %s, tensor %s %s",
                   op, (long long)k, a->ndim, SHP(b1, idx),
                   em_dtype_name(a->dtype), SHP(b2, a));
  p->index.naxes = (int)k;
  if (!axes) {
    if (naxes != 0 && naxes != k)
      return em_fail(EM_ERR_ARGUMENT,
                     "[%s] naxes is %d but axes is NULL (indices %s)", op,
                     naxes, SHP(b1, idx));
    for (int i = 0; i < k; i++) p->index.axes[i] = i;
    return EM_OK;
  }
  if (naxes != k)
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] %d axes given but the last indices dimension is %lld "
                   "(indices %s, tensor %s)",
                   op, naxes, (long long)k, SHP(b1, idx), SHP(b2, a));
  for (int i = 0; i < naxes; i++) {
    int ax = axes[i];
    TRY(em_norm_axis(op, &ax, a->ndim));
    if (i > 0 && ax <= p->index.axes[i - 1])
      return em_fail(EM_ERR_ARGUMENT,
                     "[%s] axes must be a strictly increasing list (entry %d, "
                     "tensor %s)",
                     op, i, SHP(b1, a));
    p->index.axes[i] = ax;
  }
  return EM_OK;
}

static bool is_indexed(const em_params *p, int axis) {
  for (int i = 0; i < p->index.naxes; i++)
    if (p->index.axes[i] == axis) return true;
  return false;
}

static int64_t size_of(int nd, const int64_t *sh) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= sh[i];
  return n;
}

/* ---- gather ------------------------------------------------------------- */

em_status em_gather(em_array **out, em_array *a, em_array *indices, int naxes,
                    const int *axes) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[gather] out is NULL");
  *out = NULL;
  TRY(check_pair("gather", a, indices));
  em_params p;
  memset(&p, 0, sizeof p);
  TRY(check_index_axes("gather", a, indices, naxes, axes, &p));
  char b1[256], b2[256];
  int nd = indices->ndim - 1 + a->ndim - p.index.naxes;
  if (nd > EM_MAX_NDIM)
    return em_fail(EM_ERR_ARGUMENT,
                   "[gather] the result would have rank %d (> %d): indices %s, "
                   "tensor %s",
                   nd, EM_MAX_NDIM, SHP(b1, indices), SHP(b2, a));
  int64_t shape[EM_MAX_NDIM];
  int r = 0;
  for (int i = 0; i < indices->ndim - 1; i++) shape[r++] = indices->shape[i];
  for (int i = 0; i < a->ndim; i++)
    if (!is_indexed(&p, i)) shape[r++] = a->shape[i];
  TRY(em_check_shape("gather", nd, shape, a->dtype));
  /* An empty indexed axis has nothing to select (XLA rejects it too). */
  if (size_of(nd, shape) > 0)
    for (int i = 0; i < p.index.naxes; i++)
      if (a->shape[p.index.axes[i]] == 0)
        return em_fail(EM_ERR_ARGUMENT,
                       "[gather] cannot index axis %d of size 0 (tensor %s %s, "
                       "indices %s)",
                       p.index.axes[i], em_dtype_name(a->dtype), SHP(b1, a),
                       SHP(b2, indices));
  em_array *in[2] = {a, indices};
  return em_make_node(out, EM_OP_gather, a->dtype, nd, shape, a->dev, 2, in,
                      &p);
}

/* ---- indexed_add / indexed_put ----------------------------------------- */

static em_status indexed(em_array **out, em_op op, em_array *a,
                         em_array *indices, em_array *updates, int naxes,
                         const int *axes) {
  const char *name = em_op_name(op);
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[%s] out is NULL", name);
  *out = NULL;
  TRY(check_pair(name, a, indices));
  if (!updates)
    return em_fail(EM_ERR_ARGUMENT, "[%s] input array is NULL", name);
  char b1[256], b2[256], b3[256];
  if (!same_device(a, updates))
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] tensor and updates are on different devices", name);
  if (updates->dtype != a->dtype)
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] updates must have the tensor's dtype: tensor %s %s, "
                   "updates %s %s",
                   name, em_dtype_name(a->dtype), SHP(b1, a),
                   em_dtype_name(updates->dtype), SHP(b2, updates));
  em_params p;
  memset(&p, 0, sizeof p);
  TRY(check_index_axes(name, a, indices, naxes, axes, &p));
  int lead = indices->ndim - 1;
  int want = lead + a->ndim - p.index.naxes;
  bool ok = updates->ndim == want;
  for (int i = 0; ok && i < lead; i++)
    ok = updates->shape[i] == indices->shape[i];
  for (int i = 0, u = lead; ok && i < a->ndim; i++)
    if (!is_indexed(&p, i)) ok = updates->shape[u++] <= a->shape[i];
  if (!ok)
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] updates %s must be indices.shape[:-1] followed by at "
                   "most the tensor's non-indexed dimensions (tensor %s %s, "
                   "indices %s)",
                   name, SHP(b1, updates), em_dtype_name(a->dtype),
                   SHP(b2, a), SHP(b3, indices));
  em_array *in[3] = {a, indices, updates};
  return em_make_node(out, op, a->dtype, a->ndim, a->shape, a->dev, 3, in,
                      &p);
}

em_status em_indexed_add(em_array **out, em_array *a, em_array *indices,
                         em_array *updates, int naxes, const int *axes) {
  return indexed(out, EM_OP_indexed_add, a, indices, updates, naxes, axes);
}

em_status em_indexed_put(em_array **out, em_array *a, em_array *indices,
                         em_array *updates, int naxes, const int *axes) {
  return indexed(out, EM_OP_indexed_put, a, indices, updates, naxes, axes);
}

/* ---- take / take_along_axis -------------------------------------------- */

em_status em_take(em_array **out, em_array *a, em_array *indices, int axis) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[take] out is NULL");
  *out = NULL;
  TRY(check_pair("take", a, indices));
  char b1[256], b2[256];
  if (a->ndim < 1)
    return em_fail(EM_ERR_ARGUMENT,
                   "[take] needs a tensor of rank >= 1, got %s %s",
                   em_dtype_name(a->dtype), SHP(b1, a));
  TRY(em_norm_axis("take", &axis, a->ndim));
  int nd = a->ndim - 1 + indices->ndim;
  if (nd > EM_MAX_NDIM)
    return em_fail(EM_ERR_ARGUMENT,
                   "[take] the result would have rank %d (> %d): tensor %s, "
                   "indices %s",
                   nd, EM_MAX_NDIM, SHP(b1, a), SHP(b2, indices));
  int64_t shape[EM_MAX_NDIM];
  int r = 0;
  for (int i = 0; i < axis; i++) shape[r++] = a->shape[i];
  for (int i = 0; i < indices->ndim; i++) shape[r++] = indices->shape[i];
  for (int i = axis + 1; i < a->ndim; i++) shape[r++] = a->shape[i];
  TRY(em_check_shape("take", nd, shape, a->dtype));
  if (a->shape[axis] == 0 && size_of(nd, shape) > 0)
    return em_fail(EM_ERR_ARGUMENT,
                   "[take] cannot index axis %d of size 0 (tensor %s %s, "
                   "indices %s)",
                   axis, em_dtype_name(a->dtype), SHP(b1, a),
                   SHP(b2, indices));
  em_params p;
  memset(&p, 0, sizeof p);
  p.index.axis = axis;
  em_array *in[2] = {a, indices};
  return em_make_node(out, EM_OP_take, a->dtype, nd, shape, a->dev, 2, in,
                      &p);
}

em_status em_take_along_axis(em_array **out, em_array *a, em_array *indices,
                             int axis) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[take_along_axis] out is NULL");
  *out = NULL;
  TRY(check_pair("take_along_axis", a, indices));
  char b1[256], b2[256];
  if (a->ndim < 1)
    return em_fail(EM_ERR_ARGUMENT,
                   "[take_along_axis] needs a tensor of rank >= 1, got %s %s",
                   em_dtype_name(a->dtype), SHP(b1, a));
  TRY(em_norm_axis("take_along_axis", &axis, a->ndim));
  bool ok = indices->ndim == a->ndim;
  for (int i = 0; ok && i < a->ndim; i++)
    ok = i == axis || indices->shape[i] == a->shape[i];
  if (!ok)
    return em_fail(EM_ERR_ARGUMENT,
                   "[take_along_axis] indices %s must have the tensor's rank "
                   "and dimensions except on axis %d (tensor %s %s)",
                   SHP(b1, indices), axis, em_dtype_name(a->dtype),
                   SHP(b2, a));
  if (a->shape[axis] == 0 && indices->size > 0)
    return em_fail(EM_ERR_ARGUMENT,
                   "[take_along_axis] cannot index axis %d of size 0 (tensor "
                   "%s %s, indices %s)",
                   axis, em_dtype_name(a->dtype), SHP(b1, a),
                   SHP(b2, indices));
  em_params p;
  memset(&p, 0, sizeof p);
  p.index.axis = axis;
  em_array *in[2] = {a, indices};
  return em_make_node(out, EM_OP_take_along_axis, a->dtype, indices->ndim,
                      indices->shape, a->dev, 2, in, &p);
}
