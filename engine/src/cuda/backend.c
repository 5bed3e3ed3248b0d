/* backend.c — the CUDA backend's table (same shape as the CPU's) and its
 * whole-array kernels: creation, data movement (the strided copy kernel of
 * copy.cu), reductions and row ops (run-time compiled, jit.c), dot
 * (dot.c). Kernels launch on the thread's stream (em_cu_enter) and return
 * once queued; the stream worker synchronizes at the end of its task.
 * Ops without an entry fail with EM_ERR_UNSUPPORTED naming the op. */
#include <stdlib.h>
#include <string.h>

#include "cuda-impl.h"

#define TRY(x)                    \
  do {                            \
    em_status st_ = (x);          \
    if (st_ != EM_OK) return st_; \
  } while (0)

size_t em_cu_dtype_ok(em_dtype t) {
  return (unsigned)t <= (unsigned)EM_C128 ? em_dtype_size(t) : 0;
}

size_t em_cu_dtype_storable(em_dtype t) {
  return (unsigned)t < (unsigned)EM_DTYPE_COUNT ? em_dtype_size(t) : 0;
}

/* The kernels of this file (copies, creation, reductions) take every
 * dtype: the narrow ones are one byte per element in device memory. */
static em_status dtype_check(const char *op, em_dtype t) {
  if (em_cu_dtype_storable(t)) return EM_OK;
  return em_fail(EM_ERR_UNSUPPORTED, "[%s] %s arrays are not supported on CUDA",
                 op, em_dtype_name(t));
}

/* ---- strided copies ------------------------------------------------------- */

static int64_t iabs64(int64_t v) { return v < 0 ? -v : v; }

/* dst (strides dst_st) = src (strides src_st) over shape; pointers are
 * element 0 of each layout. Adjacent axes that are one run in both merge;
 * a single run in both is a memcpy. */
static em_status copy_nd(const char *op, int dev, const char *src,
                         const int64_t *src_st, char *dst,
                         const int64_t *dst_st, int nd, const int64_t *shape,
                         size_t es) {
  int64_t sh[EM_MAX_NDIM], ss[EM_MAX_NDIM], ds[EM_MAX_NDIM], n = 1;
  int k = 0;
  for (int i = 0; i < nd; i++) n *= shape[i];
  if (n == 0) return EM_OK;
  for (int i = 0; i < nd; i++) {
    if (shape[i] == 1) continue;
    if (k > 0 && ss[k - 1] == src_st[i] * shape[i] &&
        ds[k - 1] == dst_st[i] * shape[i]) {
      sh[k - 1] *= shape[i];
      ss[k - 1] = src_st[i];
      ds[k - 1] = dst_st[i];
    } else {
      sh[k] = shape[i];
      ss[k] = src_st[i];
      ds[k] = dst_st[i];
      k++;
    }
  }
  cudaStream_t s = em_cu_enter(dev);
  if (k == 0 || (k == 1 && ss[0] == 1 && ds[0] == 1)) {
    CU_TRY(op, cudaMemcpyAsync(dst, src, (size_t)n * es, cudaMemcpyDeviceToDevice, s));
    return EM_OK;
  }
  int64_t mo = 0;
  for (int i = 0; i < k; i++) {
    int64_t a = iabs64(ss[i]), b = iabs64(ds[i]);
    mo += (a > b ? a : b) * (sh[i] - 1);
  }
  int use32 = n < ((int64_t)1 << 31) && mo < ((int64_t)1 << 31);
  cudaError_t e = em_cu_copy_launch(src, dst, (int)es, k, sh, ss, ds, n, use32,
                                    em_cu_device_props(dev)->sms, s);
  if (e != cudaSuccess) return em_cu_fail(e, op, "the copy kernel");
  return EM_OK;
}

em_status em_cu_copy_to(const em_array *src, void *dst) {
  TRY(dtype_check("copy", src->dtype));
  int64_t st[EM_MAX_NDIM], s = 1;
  for (int i = src->ndim - 1; i >= 0; i--) {
    st[i] = s;
    s *= src->shape[i] > 0 ? src->shape[i] : 1;
  }
  return copy_nd("copy", src->dev.index, em_array_ptr(src), src->strides, dst,
                 st, src->ndim, src->shape, em_dtype_size(src->dtype));
}

/* ---- creation -------------------------------------------------------------- */

static em_status fill(const char *op, em_array *out, const void *value,
                      const void *value_dev) {
  cudaStream_t s = em_cu_enter(out->dev.index);
  cudaError_t e = em_cu_fill_launch(em_array_ptr(out), (int)em_dtype_size(out->dtype),
                                    out->size, value, value_dev,
                                    em_cu_device_props(out->dev.index)->sms, s);
  if (e != cudaSuccess) return em_cu_fail(e, op, "the fill kernel");
  return EM_OK;
}

static em_status k_full(em_array *out, const em_node *n) {
  TRY(dtype_check("full", out->dtype));
  TRY(em_alloc_output(out));
  return fill("full", out, n->p.full.value, NULL);
}

static em_status k_iota(em_array *out, const em_node *n) {
  int64_t len = 1, inner = 1;
  if (out->ndim > 0) {
    int ax = n->p.iota.axis;
    len = out->shape[ax];
    for (int i = ax + 1; i < out->ndim; i++) inner *= out->shape[i];
  }
  return em_cu_iota_eye(out, false, len, inner);
}

static em_status k_eye(em_array *out, const em_node *n) {
  (void)n;
  return em_cu_iota_eye(out, true, out->shape[out->ndim - 2],
                        out->shape[out->ndim - 1]);
}

/* copy and bitcast: a contiguous copy of the bytes. */
static em_status k_copy(em_array *out, const em_node *n) {
  TRY(dtype_check(em_op_name(n->op), n->in[0]->dtype));
  TRY(dtype_check(em_op_name(n->op), out->dtype));
  TRY(em_alloc_output(out));
  return em_cu_copy_to(n->in[0], em_array_ptr(out));
}

/* ---- data movement --------------------------------------------------------- */

static em_status k_slice_dynamic(em_array *out, const em_node *n) {
  const em_array *a = n->in[0];
  TRY(dtype_check("slice", a->dtype));
  em_array v;
  memset(&v, 0, sizeof v);
  v.dtype = a->dtype;
  v.ndim = a->ndim;
  v.size = out->size;
  v.buf = a->buf;
  v.dev = a->dev;
  v.offset = a->offset;
  for (int i = 0; i < a->ndim; i++) {
    int64_t len = n->p.dslice.lengths[i], s;
    TRY(em_cu_read_index(n->in[1 + i], &s));
    if (s < 0) s = 0;
    if (s > a->shape[i] - len) s = a->shape[i] - len;
    v.offset += s * a->strides[i];
    v.shape[i] = out->shape[i];
    v.strides[i] = a->strides[i] * n->p.dslice.step[i];
  }
  TRY(em_alloc_output(out));
  return em_cu_copy_to(&v, em_array_ptr(out));
}

static em_status k_put_slice(em_array *out, const em_node *n) {
  const em_array *a = n->in[0], *u = n->in[1];
  TRY(dtype_check("put_slice", a->dtype));
  bool dynamic = n->nin > 2;
  int64_t start[EM_MAX_NDIM];
  for (int i = 0; i < out->ndim; i++) {
    int64_t s = n->p.pad.lo[i];
    if (dynamic) TRY(em_cu_read_index(n->in[2 + i], &s));
    if (s < 0) s = 0;
    if (s > out->shape[i] - u->shape[i]) s = out->shape[i] - u->shape[i];
    start[i] = s;
  }
  TRY(em_alloc_output(out));
  TRY(em_cu_copy_to(a, em_array_ptr(out)));
  int64_t doff = 0;
  for (int i = 0; i < out->ndim; i++) doff += start[i] * out->strides[i];
  size_t es = em_dtype_size(out->dtype);
  return copy_nd("put_slice", out->dev.index, em_array_ptr(u), u->strides,
                 em_array_ptr(out) + doff * (int64_t)es, out->strides, out->ndim,
                 u->shape, es);
}

static em_status k_pad(em_array *out, const em_node *n) {
  const em_array *a = n->in[0];
  TRY(dtype_check("pad", a->dtype));
  TRY(em_alloc_output(out));
  TRY(fill("pad", out, NULL, em_array_ptr(n->in[1])));
  size_t es = em_dtype_size(out->dtype);
  int nd = a->ndim;
  int64_t shape[EM_MAX_NDIM], sst[EM_MAX_NDIM], dst_st[EM_MAX_NDIM];
  int64_t soff = 0, doff = 0;
  if (a->size == 0) return EM_OK;
  for (int i = 0; i < nd; i++) {
    const int64_t lo = n->p.pad.lo[i], step = n->p.pad.interior[i] + 1,
                  L = out->shape[i];
    /* input positions k land at lo + k * step; keep those inside [0, L) */
    int64_t kmin = lo >= 0 ? 0 : (-lo + step - 1) / step;
    if (L - 1 - lo < 0) return EM_OK;
    int64_t kmax = (L - 1 - lo) / step;
    if (kmax > a->shape[i] - 1) kmax = a->shape[i] - 1;
    if (kmax < kmin) return EM_OK;
    shape[i] = kmax - kmin + 1;
    soff += kmin * a->strides[i];
    doff += (lo + kmin * step) * out->strides[i];
    sst[i] = a->strides[i];
    dst_st[i] = step * out->strides[i];
  }
  return copy_nd("pad", out->dev.index, em_array_ptr(a) + soff * (int64_t)es, sst,
                 em_array_ptr(out) + doff * (int64_t)es, dst_st, nd, shape, es);
}

static em_status k_concatenate(em_array *out, const em_node *n) {
  TRY(dtype_check("concatenate", out->dtype));
  TRY(em_alloc_output(out));
  int axis = n->p.concat.axis;
  size_t es = em_dtype_size(out->dtype);
  int64_t pos = 0;
  for (int k = 0; k < n->nin; k++) {
    const em_array *c = n->in[k];
    TRY(copy_nd("concatenate", out->dev.index, em_array_ptr(c), c->strides,
                em_array_ptr(out) + pos * out->strides[axis] * (int64_t)es,
                out->strides, out->ndim, c->shape, es));
    pos += c->shape[axis];
  }
  return EM_OK;
}

/* ---- reductions -------------------------------------------------------------- */

/* Brings `in` into contiguous [outer, r, inner] form for the reduced axes
 * in mask, copying (with a transpose) only when they are not one block
 * (as the CPU backend's reduce_layout). */
static em_status reduce_layout(const em_array *in, uint32_t mask, em_array **c,
                               int64_t *outer, int64_t *r, int64_t *inner) {
  int first = -1, last = -1;
  bool block = true;
  for (int i = 0; i < in->ndim; i++) {
    if (in->shape[i] == 1 || !(mask >> i & 1u)) continue;
    if (first < 0) first = i;
    else if (last != i - 1)
      for (int j = last + 1; j < i; j++)
        if (in->shape[j] != 1) block = false;
    last = i;
  }
  if (block && em_array_is_contiguous(in)) {
    em_array_retain((em_array *)in);
    *c = (em_array *)in;
    *outer = 1;
    *r = 1;
    *inner = 1;
    for (int i = 0; i < in->ndim; i++) {
      if (first >= 0 && i >= first && i <= last) *r *= in->shape[i];
      else if (first < 0 || i < first) *outer *= in->shape[i];
      else *inner *= in->shape[i];
    }
    if (first < 0) {
      *outer = in->size;
      *r = 1;
      *inner = 1;
    }
    return EM_OK;
  }
  int perm[EM_MAX_NDIM], k = 0;
  *outer = 1;
  *r = 1;
  for (int i = 0; i < in->ndim; i++)
    if (!(mask >> i & 1u)) {
      perm[k++] = i;
      *outer *= in->shape[i];
    }
  for (int i = 0; i < in->ndim; i++)
    if (mask >> i & 1u) {
      perm[k++] = i;
      *r *= in->shape[i];
    }
  *inner = 1;
  em_array v;
  em_array_permuted_view(in, perm, &v);
  em_array *t = em_array_alloc(in->dtype, in->ndim, v.shape, in->dev);
  if (!t) return em_fail(EM_ERR_OOM, "[reduce] out of host memory");
  em_status st = em_alloc_output(t);
  if (st == EM_OK) st = em_cu_copy_to(&v, t->buf->data);
  if (st != EM_OK) {
    em_array_release(t);
    return st;
  }
  t->state = EM_STATE_DONE;
  *c = t;
  return EM_OK;
}

static const char *reduce_tmpl(em_op op) {
  switch (op) {
    case EM_OP_sum: return "SumOp";
    case EM_OP_product: return "ProdOp";
    case EM_OP_reduce_max: return "MaxOp";
    case EM_OP_reduce_min: return "MinOp";
    case EM_OP_all: return "AllOp";
    default: return "AnyOp";
  }
}

static em_status k_reduce(em_array *out, const em_node *n) {
  const char *name = em_op_name(n->op);
  TRY(dtype_check(name, n->in[0]->dtype));
  em_array *c = NULL;
  int64_t outer, r, inner;
  TRY(reduce_layout(n->in[0], n->p.reduce.mask, &c, &outer, &r, &inner));
  em_status st = em_alloc_output(out);
  if (st == EM_OK)
    st = em_cu_reduce(name, reduce_tmpl(n->op), c->dtype, out->dtype,
                      em_array_ptr(c), em_array_ptr(out), outer, r, inner,
                      out->dev.index);
  em_array_release(c);
  return st;
}

static em_status k_arg_reduce(em_array *out, const em_node *n) {
  const char *name = em_op_name(n->op);
  TRY(dtype_check(name, n->in[0]->dtype));
  em_array *c = NULL;
  int64_t outer, r, inner;
  TRY(reduce_layout(n->in[0], n->in[0]->ndim ? 1u << n->p.arg.axis : 0, &c,
                    &outer, &r, &inner));
  const char *tmpl = n->op == EM_OP_argmax
                         ? (n->p.arg.tie_high ? "ArgMaxHi" : "ArgMaxLo")
                         : (n->p.arg.tie_high ? "ArgMinHi" : "ArgMinLo");
  em_status st = em_alloc_output(out);
  if (st == EM_OK)
    st = em_cu_reduce(name, tmpl, c->dtype, EM_S64, em_array_ptr(c),
                      em_array_ptr(out), outer, r, inner, out->dev.index);
  em_array_release(c);
  return st;
}

/* ---- row ops ------------------------------------------------------------------- */

static em_status k_rows(em_array *out, const em_node *n) {
  em_array *c = NULL, *w = NULL, *b = NULL;
  TRY(em_contiguous(n->in[0], &c));
  em_status st = EM_OK;
  int k = 1;
  bool is_norm = n->op == EM_OP_layer_norm || n->op == EM_OP_rms_norm;
  if (is_norm && n->p.norm.has_weight) st = em_contiguous(n->in[k++], &w);
  if (st == EM_OK && is_norm && n->p.norm.has_bias)
    st = em_contiguous(n->in[k++], &b);
  if (st == EM_OK) st = em_alloc_output(out);
  if (st == EM_OK) {
    int64_t d = c->ndim ? c->shape[c->ndim - 1] : 1;
    int64_t rows = d ? c->size / d : (n->op == EM_OP_logsumexp ? out->size : 0);
    st = em_cu_rows(n->op, c->dtype, em_array_ptr(c), em_array_ptr(out),
                    w ? em_array_ptr(w) : NULL, b ? em_array_ptr(b) : NULL, rows,
                    d, is_norm ? n->p.norm.eps : 0, out->dev.index);
  }
  em_array_release(c);
  em_array_release(w);
  em_array_release(b);
  return st;
}

/* ---- the table --------------------------------------------------------------------- */

static em_status cu_copy_strided(const em_array *src, void *dst) {
  return em_cu_copy_to(src, dst);
}

const em_backend em_cuda_backend = {
    .name = "cuda",
    .kernels =
        {
            [EM_OP_full] = k_full,
            [EM_OP_iota] = k_iota,
            [EM_OP_eye] = k_eye,
            [EM_OP_bitcast] = k_copy,
            [EM_OP_copy] = k_copy,
            [EM_OP_pad] = k_pad,
            [EM_OP_slice_dynamic] = k_slice_dynamic,
            [EM_OP_put_slice] = k_put_slice,
            [EM_OP_concatenate] = k_concatenate,
            [EM_OP_sum] = k_reduce,
            [EM_OP_product] = k_reduce,
            [EM_OP_reduce_max] = k_reduce,
            [EM_OP_reduce_min] = k_reduce,
            [EM_OP_all] = k_reduce,
            [EM_OP_any] = k_reduce,
            [EM_OP_argmax] = k_arg_reduce,
            [EM_OP_argmin] = k_arg_reduce,
            [EM_OP_dot] = em_cu_k_dot,
            [EM_OP_softmax] = k_rows,
            [EM_OP_logsumexp] = k_rows,
            [EM_OP_layer_norm] = k_rows,
            [EM_OP_rms_norm] = k_rows,
#define X(n) [EM_OP_##n] = em_cu_k_##n,
            EM_CU_FAMILY_KERNELS(X)
#undef X
        },
    .run_fused = em_cu_run_fused,
    .copy_strided = cu_copy_strided,
};
