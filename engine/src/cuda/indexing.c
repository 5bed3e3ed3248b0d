/* indexing.c — the CUDA kernels of the indexing family (gather, take,
 * take_along_axis, indexed_add, indexed_put) and of cumulative scans:
 * layouts, the bounds check and scratch memory here, kernel launches in
 * indexing.cu. Semantics are the CPU backend's (src/cpu/indexing.c,
 * src/cpu/cumulative.c), including the bounds-check failure message: the
 * check kernel leaves the smallest flat position of an out-of-range index
 * in device memory, which is read back after it (one synchronization,
 * only while the check is on).
 *
 * Data inputs of gather-like ops are read through their strides (views
 * cost no copy); indices too, except under the bounds check, which wants
 * them contiguous. Scatter and cumulative inputs are made contiguous. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../cpu/cpu-kernels.h"
#include "cuda-impl.h"
#include "indexing-kernels.h"

_Static_assert(EM_CU_T_U8 == (int)EM_U8 && EM_CU_T_U16 == (int)EM_U16 &&
                   EM_CU_T_U32 == (int)EM_U32 && EM_CU_T_U64 == (int)EM_U64 &&
                   EM_CU_T_S8 == (int)EM_S8 && EM_CU_T_S16 == (int)EM_S16 &&
                   EM_CU_T_S32 == (int)EM_S32 && EM_CU_T_S64 == (int)EM_S64 &&
                   EM_CU_T_F16 == (int)EM_F16 && EM_CU_T_BF16 == (int)EM_BF16 &&
                   EM_CU_T_F32 == (int)EM_F32 && EM_CU_T_F64 == (int)EM_F64 &&
                   EM_CU_T_C64 == (int)EM_C64 && EM_CU_T_C128 == (int)EM_C128,
               "indexing-kernels.h type codes must be em_dtype values");
_Static_assert(EM_CU_IX_MAXD == EM_MAX_NDIM, "EM_CU_IX_MAXD is EM_MAX_NDIM");

/* src/core/ops_indexing.c */
bool em_bounds_check_enabled(void);

#define TRY(x)                    \
  do {                            \
    em_status st_ = (x);          \
    if (st_ != EM_OK) return st_; \
  } while (0)

static em_status dtype_check(const char *op, em_dtype t) {
  if (em_cu_dtype_ok(t)) return EM_OK;
  return em_fail(EM_ERR_UNSUPPORTED, "[%s] %s arrays are not supported on CUDA",
                 op, em_dtype_name(t));
}

/* Indices: the eight byte-aligned integer types. */
static em_status index_check(const char *op, em_dtype t) {
  if ((unsigned)t <= (unsigned)EM_S64) return EM_OK;
  return em_fail(EM_ERR_UNSUPPORTED,
                 "[%s] %s indices are not supported on CUDA", op,
                 em_dtype_name(t));
}

static int sms_of(int dev) { return em_cu_device_props(dev)->sms; }

static void row_major(int nd, const int64_t *sh, int64_t *st) {
  int64_t s = 1;
  for (int i = nd - 1; i >= 0; i--) {
    st[i] = s;
    s *= sh[i];
  }
}

/* ---- bounds check ----------------------------------------------------------- */

/* The CPU's message for the index at flat position pos of idx (row-major,
 * contiguous on the device), which indexes axis `axis` of size d. */
static em_status bounds_error(const char *op, const em_array *idx, int64_t pos,
                              int axis, int64_t d, cudaStream_t s) {
  unsigned char b[8] = {0};
  size_t es = em_dtype_size(idx->dtype);
  em_status st = em_cu_download(idx->dev.index, b, em_array_ptr(idx) + pos * (int64_t)es,
                                es, s);
  if (st != EM_OK) return st;
  return em_index_bounds_error(op, idx, b, pos, axis, d);
}

/* Checks every value of ix (contiguous, rows of k columns; column j indexes
 * an axis of size dims[j] named label[j]); fails like the CPU on the first
 * out-of-range one in row-major order. */
static em_status check_bounds(const char *op, const em_array *ix, int k,
                              const int64_t *dims, const int *label,
                              cudaStream_t s) {
  if (ix->size == 0 || k < 1) return EM_OK;
  int dev = ix->dev.index;
  em_status st = EM_OK;
  unsigned long long *flag = em_cuda_alloc(dev, sizeof *flag, &st);
  if (!flag) return st;
  unsigned long long pos = ULLONG_MAX;
  cudaError_t e = em_cu_index_check_launch(em_array_ptr(ix), (int)ix->dtype,
                                           ix->size, k, dims, flag, sms_of(dev), s);
  if (e != cudaSuccess) st = em_cu_fail(e, op, "the bounds check kernel");
  else st = em_cu_download(dev, &pos, flag, sizeof pos, s);
  em_cuda_free(dev, flag, sizeof *flag);
  if (st != EM_OK || pos == ULLONG_MAX) return st;
  int j = (int)(pos % (unsigned long long)k);
  return bounds_error(op, ix, (int64_t)pos, label[j], dims[j], s);
}

/* The indices to read: ix itself, or (bounds check on) its contiguous copy,
 * checked. *use is a new reference either way. */
static em_status indices_for(const char *op, em_array *ix, int k,
                             const int64_t *dims, const int *label,
                             cudaStream_t s, em_array **use) {
  *use = NULL;
  if (!em_bounds_check_enabled()) {
    em_array_retain(ix);
    *use = ix;
    return EM_OK;
  }
  TRY(em_contiguous(ix, use));
  em_status st = check_bounds(op, *use, k, dims, label, s);
  if (st != EM_OK) {
    em_array_release(*use);
    *use = NULL;
  }
  return st;
}

/* ---- gather, take, take_along_axis ------------------------------------------- */

/* Appends an output dim to d: size-1 dims vanish; a dim that continues the
 * previous one in both layouts merges with it. */
static void add_dim(em_cu_gather_desc *d, int64_t sh, int64_t as, int64_t is) {
  if (sh == 1) return;
  int n = d->nd;
  if (n > 0 && d->as[n - 1] == as * sh && d->is[n - 1] == is * sh) {
    d->shape[n - 1] *= sh;
    d->as[n - 1] = as;
    d->is[n - 1] = is;
    return;
  }
  d->shape[n] = sh;
  d->as[n] = as;
  d->is[n] = is;
  d->nd = n + 1;
}

static em_status run_gather(const char *op, em_array *out, const em_array *a,
                            const em_array *ix, const em_cu_gather_desc *d,
                            cudaStream_t s) {
  if (out->size == 0) return EM_OK;
  cudaError_t e = em_cu_gather_launch(em_array_ptr(a), em_array_ptr(out),
                                      (int)em_dtype_size(a->dtype), em_array_ptr(ix),
                                      (int)ix->dtype, d, out->size,
                                      sms_of(out->dev.index), s);
  if (e != cudaSuccess) return em_cu_fail(e, op, "the gather kernel");
  return EM_OK;
}

em_status em_cu_k_gather(em_array *out, const em_node *node) {
  const em_array *a = node->in[0];
  em_array *ix0 = node->in[1];
  TRY(dtype_check("gather", a->dtype));
  TRY(index_check("gather", ix0->dtype));
  cudaStream_t s = em_cu_enter(out->dev.index);
  TRY(em_alloc_output(out));
  int k = node->p.index.naxes;
  const int *axes = node->p.index.axes;
  int64_t rows = 1;
  for (int i = 0; i < ix0->ndim - 1; i++) rows *= ix0->shape[i];
  if (rows == 0) return EM_OK;
  int64_t dims[EM_MAX_NDIM];
  for (int j = 0; j < k; j++) dims[j] = a->shape[axes[j]];
  em_array *ix = NULL;
  TRY(indices_for("gather", ix0, k, dims, axes, s, &ix));
  em_cu_gather_desc d;
  memset(&d, 0, sizeof d);
  for (int i = 0; i < ix->ndim - 1; i++) add_dim(&d, ix->shape[i], 0, ix->strides[i]);
  for (int i = 0, j = 0; i < a->ndim; i++) {
    if (j < k && axes[j] == i) {
      j++;
      continue;
    }
    add_dim(&d, a->shape[i], a->strides[i], 0);
  }
  d.k = k;
  d.ics = ix->strides[ix->ndim - 1];
  for (int j = 0; j < k; j++) {
    d.dims[j] = dims[j];
    d.ast[j] = a->strides[axes[j]];
  }
  em_status st = run_gather("gather", out, a, ix, &d, s);
  em_array_release(ix);
  return st;
}

em_status em_cu_k_take(em_array *out, const em_node *node) {
  const em_array *a = node->in[0];
  em_array *ix0 = node->in[1];
  TRY(dtype_check("take", a->dtype));
  TRY(index_check("take", ix0->dtype));
  cudaStream_t s = em_cu_enter(out->dev.index);
  TRY(em_alloc_output(out));
  int axis = node->p.index.axis;
  if (ix0->size == 0) return EM_OK;
  int64_t D = a->shape[axis];
  em_array *ix = NULL;
  TRY(indices_for("take", ix0, 1, &D, &axis, s, &ix));
  em_cu_gather_desc d;
  memset(&d, 0, sizeof d);
  for (int i = 0; i < axis; i++) add_dim(&d, a->shape[i], a->strides[i], 0);
  for (int i = 0; i < ix->ndim; i++) add_dim(&d, ix->shape[i], 0, ix->strides[i]);
  for (int i = axis + 1; i < a->ndim; i++) add_dim(&d, a->shape[i], a->strides[i], 0);
  d.k = 1;
  d.ics = 0;
  d.dims[0] = D;
  d.ast[0] = a->strides[axis];
  em_status st = run_gather("take", out, a, ix, &d, s);
  em_array_release(ix);
  return st;
}

em_status em_cu_k_take_along_axis(em_array *out, const em_node *node) {
  const em_array *a = node->in[0];
  em_array *ix0 = node->in[1];
  TRY(dtype_check("take_along_axis", a->dtype));
  TRY(index_check("take_along_axis", ix0->dtype));
  cudaStream_t s = em_cu_enter(out->dev.index);
  TRY(em_alloc_output(out));
  int axis = node->p.index.axis;
  if (ix0->size == 0) return EM_OK;
  int64_t D = a->shape[axis];
  em_array *ix = NULL;
  TRY(indices_for("take_along_axis", ix0, 1, &D, &axis, s, &ix));
  em_cu_gather_desc d;
  memset(&d, 0, sizeof d);
  for (int i = 0; i < ix->ndim; i++)
    add_dim(&d, ix->shape[i], i == axis ? 0 : a->strides[i], ix->strides[i]);
  d.k = 1;
  d.ics = 0;
  d.dims[0] = D;
  d.ast[0] = a->strides[axis];
  em_status st = run_gather("take_along_axis", out, a, ix, &d, s);
  em_array_release(ix);
  return st;
}

/* ---- indexed_add / indexed_put --------------------------------------------------- */

/* CUB keeps function-local statics (the device count, a per-device
 * attribute cache); the backend is compiled with -fno-threadsafe-statics,
 * so their first use happens once, here, before any concurrent one. */
static pthread_once_t g_cub_once = PTHREAD_ONCE_INIT;
static void cub_warm(void) {
  size_t b = 0;
  (void)em_cu_scatter_sort(NULL, &b, NULL, NULL, NULL, NULL, 1, 1, 0);
  (void)cudaGetLastError();
}

static em_status scatter(em_array *out, const em_node *node, bool add) {
  const char *op = add ? "indexed_add" : "indexed_put";
  const em_array *a = node->in[0];
  TRY(dtype_check(op, a->dtype));
  TRY(index_check(op, node->in[1]->dtype));
  int dev = out->dev.index;
  cudaStream_t s = em_cu_enter(dev);
  em_array *ix = NULL, *up = NULL;
  void *scratch = NULL;
  size_t scratch_bytes = 0;
  cudaError_t e = cudaSuccess;
  const char *what = NULL;
  em_status st = em_contiguous(node->in[1], &ix);
  if (st == EM_OK) st = em_contiguous(node->in[2], &up);
  if (st == EM_OK) st = em_alloc_output(out);
  if (st == EM_OK && out->size > 0) st = em_cu_copy_to(a, em_array_ptr(out));
  if (st != EM_OK) goto done;
  int k = node->p.index.naxes;
  const int *axes = node->p.index.axes;
  int64_t rows = 1;
  for (int i = 0; i < ix->ndim - 1; i++) rows *= ix->shape[i];
  if (rows == 0) goto done;
  int64_t ost[EM_MAX_NDIM], dims[EM_MAX_NDIM], kst[EM_MAX_NDIM];
  row_major(out->ndim, out->shape, ost);
  for (int j = 0; j < k; j++) {
    dims[j] = out->shape[axes[j]];
    kst[j] = ost[axes[j]];
  }
  if (em_bounds_check_enabled()) {
    st = check_bounds(op, ix, k, dims, axes, s);
    if (st != EM_OK) goto done;
  }
  if (out->size == 0) goto done;
  /* the window: update dims over the non-indexed axes of the target,
   * size-1 dims dropped, contiguous neighbours merged */
  int lead = ix->ndim - 1, wn = 0;
  int64_t wsh[EM_MAX_NDIM], wst[EM_MAX_NDIM], W = 1;
  for (int i = 0, j = 0, u = lead; i < out->ndim; i++) {
    if (j < k && axes[j] == i) {
      j++;
      continue;
    }
    int64_t sh = up->shape[u++];
    W *= sh;
    if (sh == 1) continue;
    if (wn > 0 && wst[wn - 1] == sh * ost[i]) {
      wsh[wn - 1] *= sh;
      wst[wn - 1] = ost[i];
    } else {
      wsh[wn] = sh;
      wst[wn] = ost[i];
      wn++;
    }
  }
  if (W == 0) goto done;
  /* keys: bits of the largest possible offset */
  int end_bit = 1;
  while (end_bit < 63 && ((out->size - 1) >> end_bit) > 0) end_bit++;
  size_t sort_bytes = 0;
  pthread_once(&g_cub_once, cub_warm);
  e = em_cu_scatter_sort(NULL, &sort_bytes, NULL, NULL, NULL, NULL, rows, end_bit, s);
  if (e != cudaSuccess) {
    what = "the sort (size query)";
    goto done;
  }
  size_t arr = ((size_t)rows * 8 + 255) / 256 * 256;
  scratch_bytes = 4 * arr + sort_bytes;
  scratch = em_cuda_alloc(dev, scratch_bytes, &st);
  if (!scratch) goto done;
  unsigned long long *keys = scratch, *skeys = (void *)((char *)scratch + arr);
  long long *vals = (void *)((char *)scratch + 2 * arr),
            *perm = (void *)((char *)scratch + 3 * arr);
  void *temp = (char *)scratch + 4 * arr;
  e = em_cu_scatter_keys_launch(em_array_ptr(ix), (int)ix->dtype, rows, k, dims,
                                kst, keys, vals, sms_of(dev), s);
  if (e != cudaSuccess) {
    what = "the key kernel";
    goto done;
  }
  e = em_cu_scatter_sort(temp, &sort_bytes, keys, skeys, vals, perm, rows,
                         end_bit, s);
  if (e != cudaSuccess) {
    what = "the sort";
    goto done;
  }
  e = em_cu_scatter_apply_launch((int)out->dtype, add, em_array_ptr(out),
                                 em_array_ptr(up), skeys, perm, rows, W, wn,
                                 wsh, wst, sms_of(dev), s);
  if (e != cudaSuccess) what = "the scatter kernel";
done:
  if (e != cudaSuccess && st == EM_OK) st = em_cu_fail(e, op, what);
  /* the allocator keeps a block freed by a stream's task for that stream
   * until the task ends, so the queued kernels still own it */
  if (scratch) em_cuda_free(dev, scratch, scratch_bytes);
  em_array_release(ix);
  em_array_release(up);
  return st;
}

em_status em_cu_k_indexed_add(em_array *out, const em_node *node) {
  return scatter(out, node, true);
}

em_status em_cu_k_indexed_put(em_array *out, const em_node *node) {
  return scatter(out, node, false);
}

/* ---- cumulative ---------------------------------------------------------------------- */

em_status em_cu_k_cumulative(em_array *out, const em_node *node) {
  em_array *in = node->in[0];
  TRY(dtype_check("cumulative", in->dtype));
  int kind = node->p.cum.kind == EM_OP_sum          ? 0
             : node->p.cum.kind == EM_OP_product    ? 1
             : node->p.cum.kind == EM_OP_reduce_max ? 2
             : node->p.cum.kind == EM_OP_reduce_min ? 3
                                                    : -1;
  if (kind < 0 || (kind >= 2 && em_dtype_is_complex(in->dtype)))
    return em_fail(EM_ERR_UNSUPPORTED, "[cumulative] no kernel for %s (op %d)",
                   em_dtype_name(in->dtype), (int)node->p.cum.kind);
  int axis = node->p.cum.axis;
  if (axis < 0 || axis >= in->ndim)
    return em_fail(EM_ERR_ARGUMENT, "[cumulative] axis %d out of range", axis);
  int dev = out->dev.index;
  cudaStream_t s = em_cu_enter(dev);
  em_array *c = NULL;
  TRY(em_contiguous(in, &c));
  em_status st = em_alloc_output(out);
  int64_t outer = 1, n = in->shape[axis], inner = 1;
  for (int i = 0; i < axis; i++) outer *= in->shape[i];
  for (int i = axis + 1; i < in->ndim; i++) inner *= in->shape[i];
  if (st == EM_OK && out->size > 0) {
    int sms = sms_of(dev);
    size_t need = em_cu_cumulative_scratch((int)in->dtype, outer, n, inner, sms);
    void *scratch = NULL;
    if (need) scratch = em_cuda_alloc(dev, need, &st);
    if (st == EM_OK) {
      cudaError_t e = em_cu_cumulative_launch((int)in->dtype, kind,
                                              node->p.cum.reverse ? 1 : 0,
                                              em_array_ptr(c), em_array_ptr(out),
                                              outer, n, inner, scratch, sms, s);
      if (e != cudaSuccess) st = em_cu_fail(e, "cumulative", "the scan kernels");
    }
    if (scratch) em_cuda_free(dev, scratch, need);
  }
  em_array_release(c);
  return st;
}
