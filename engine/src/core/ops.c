/* ops.c — graph building: every public op validates its arguments, infers
 * the result's shape and dtype and records a node. Nothing is computed
 * here; kernels (src/cpu, src/cuda) trust what this file lets through.
 * Messages start with "[op]" and name the shapes and dtypes involved. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cpu/cpu-kernels.h"
#include "../cpu/subbyte.h"
#include "array-impl.h"
#ifdef EMILY_HAVE_CUDA
#include "../cuda/cuda-api.h"
#endif

#define SHP(buf, a) em_shape_str(buf, sizeof buf, (a)->ndim, (a)->shape)

/* ---- helpers ---------------------------------------------------------- */

static em_status check_in(const char *op, const em_array *a) {
  if (!a) return em_fail(EM_ERR_ARGUMENT, "[%s] input array is NULL", op);
  return EM_OK;
}

/* Validates a shape and its element count (bytes must fit in int64). */
static em_status check_shape(const char *op, int ndim, const int64_t *shape,
                             em_dtype t) {
  if (ndim < 0 || ndim > EM_MAX_NDIM)
    return em_fail(EM_ERR_ARGUMENT, "[%s] rank %d is outside 0..%d", op, ndim,
                   EM_MAX_NDIM);
  if (ndim > 0 && !shape)
    return em_fail(EM_ERR_ARGUMENT, "[%s] shape is NULL", op);
  if ((unsigned)t >= EM_DTYPE_COUNT)
    return em_fail(EM_ERR_ARGUMENT, "[%s] unknown dtype %d", op, (int)t);
  int64_t n = 1;
  bool zero = false;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0)
      return em_fail(EM_ERR_ARGUMENT, "[%s] dimension %d is negative (%lld)",
                     op, i, (long long)shape[i]);
    if (shape[i] == 0) zero = true;
    else if (n > INT64_MAX / 16 / shape[i])
      return em_fail(EM_ERR_ARGUMENT,
                     "[%s] shape overflows the element count", op);
    else n *= shape[i];
  }
  (void)zero;
  return EM_OK;
}

static em_status check_device(const char *op, em_device d) {
  if (d.type == EM_DEVICE_CPU && d.index == 0) return EM_OK;
  if (d.type == EM_DEVICE_CUDA && d.index >= 0 &&
      d.index < em_device_count(EM_DEVICE_CUDA))
    return EM_OK;
  return em_fail(EM_ERR_ARGUMENT, "[%s] device %s:%d is not available", op,
                 d.type == EM_DEVICE_CPU ? "cpu" : "cuda", d.index);
}

static bool same_device(const em_array *a, const em_array *b) {
  return a->dev.type == b->dev.type && a->dev.index == b->dev.index;
}

/* Normalises an axis (negative counts from the end). */
static em_status norm_axis(const char *op, int *axis, int ndim) {
  int a = *axis;
  if (a < 0) a += ndim;
  if (a < 0 || a >= ndim)
    return em_fail(EM_ERR_ARGUMENT, "[%s] axis %d is out of range for rank %d",
                   op, *axis, ndim);
  *axis = a;
  return EM_OK;
}

/* The single place nodes are made: a pending array that owns the node. */
static em_status make_node(em_array **out, em_op op, em_dtype t, int ndim,
                           const int64_t *shape, em_device dev, int nin,
                           em_array *const *in, const em_params *p) {
  em_array *a = em_array_alloc(t, ndim, shape, dev);
  if (!a) return em_fail(EM_ERR_OOM, "[%s] out of host memory", em_op_name(op));
  a->node = em_node_new(op, nin, in);
  if (!a->node) {
    free(a);
    return em_fail(EM_ERR_OOM, "[%s] out of host memory", em_op_name(op));
  }
  if (p) a->node->p = *p;
  a->state = EM_STATE_PENDING;
  *out = a;
  return EM_OK;
}

em_status em_make_node(em_array **out, em_op op, em_dtype t, int ndim,
                       const int64_t *shape, em_device dev, int nin,
                       em_array *const *in, const em_params *p) {
  return make_node(out, op, t, ndim, shape, dev, nin, in, p);
}
em_status em_check_shape(const char *op, int ndim, const int64_t *shape,
                         em_dtype t) {
  return check_shape(op, ndim, shape, t);
}
em_status em_norm_axis(const char *op, int *axis, int ndim) {
  return norm_axis(op, axis, ndim);
}

size_t em_pack_slot(size_t *cursor, em_dtype t, int64_t count) {
  size_t at = (*cursor + 63) & ~(size_t)63;
  *cursor = at + (size_t)count * em_dtype_size(t);
  return at;
}

em_status em_unpack(em_array **out, em_array *packed, size_t byte_offset,
                    em_dtype t, int ndim, const int64_t *shape) {
  em_params p;
  memset(&p, 0, sizeof p);
  p.view.kind = EM_VIEW_UNPACK;
  p.view.start[0] = (int64_t)byte_offset;
  return make_node(out, EM_OP_view, t, ndim, shape, packed->dev, 1, &packed,
                   &p);
}

#define TRY(x)                        \
  do {                                \
    em_status st_ = (x);              \
    if (st_ != EM_OK) return st_;     \
  } while (0)

/* ---- creation ---------------------------------------------------------- */

em_status em_array_from_data(em_array **out, em_dtype t, int ndim,
                             const int64_t *shape, const void *data,
                             size_t nbytes, em_device dev) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[from_data] out is NULL");
  *out = NULL;
  TRY(check_shape("from_data", ndim, shape, t));
  TRY(check_device("from_data", dev));
#ifndef EMILY_HAVE_CUDA
  if (dev.type != EM_DEVICE_CPU)
    return em_fail(EM_ERR_UNSUPPORTED, "[from_data] only CPU in this build");
#endif
  em_array *a = em_array_alloc(t, ndim, shape, dev);
  if (!a) return em_fail(EM_ERR_OOM, "[from_data] out of host memory");
  size_t want = em_array_nbytes(a);
  if (nbytes != want || (want && !data)) {
    char b[256];
    em_status st = em_fail(
        EM_ERR_ARGUMENT,
        "[from_data] got %zu bytes, shape %s of %s needs %zu", nbytes,
        em_shape_str(b, sizeof b, ndim, shape), em_dtype_name(t), want);
    free(a);
    return st;
  }
  em_status st;
  /* Sub-byte types arrive packed and are stored one element per byte. */
  bool packed = em_dtype_is_subbyte(t);
  a->buf = em_buffer_new(dev, packed ? (size_t)a->size : want, &st);
  if (!a->buf) {
    free(a);
    return st;
  }
#ifdef EMILY_HAVE_CUDA
  if (dev.type == EM_DEVICE_CUDA) { /* through pinned staging */
    void *tmp = packed ? malloc(a->size ? (size_t)a->size : 1) : NULL;
    if (packed && !tmp) st = em_fail(EM_ERR_OOM, "[from_data] out of host memory");
    else if (packed) em_subbyte_unpack(t, data, tmp, a->size);
    if (!packed || tmp)
      st = em_cuda_upload(dev.index, a->buf->data, packed ? tmp : data,
                          packed ? (size_t)a->size : want);
    free(tmp);
    if (st != EM_OK) {
      em_buffer_release(a->buf);
      free(a);
      return st;
    }
  } else
#endif
  if (packed) em_subbyte_unpack(t, data, a->buf->data, a->size);
  else if (want) memcpy(a->buf->data, data, want);
  a->state = EM_STATE_DONE;
  *out = a;
  return EM_OK;
}

em_status em_full(em_array **out, em_dtype t, int ndim, const int64_t *shape,
                  const void *value, em_device dev) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[full] out is NULL");
  *out = NULL;
  TRY(check_shape("full", ndim, shape, t));
  TRY(check_device("full", dev));
  if (!value) return em_fail(EM_ERR_ARGUMENT, "[full] value is NULL");
  em_params p;
  memset(&p, 0, sizeof p);
  memcpy(p.full.value, value, em_dtype_size(t));
  em_subbyte_wrap(t, p.full.value, 1); /* s2..u4: into range; else no-op */
  return make_node(out, EM_OP_full, t, ndim, shape, dev, 0, NULL, &p);
}

em_status em_full_scalar(em_array **out, em_dtype t, double v, em_device dev) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[full] out is NULL");
  *out = NULL;
  if ((unsigned)t >= EM_DTYPE_COUNT)
    return em_fail(EM_ERR_ARGUMENT, "[full] unknown dtype %d", (int)t);
  unsigned char buf[16] = {0};
  /* Converted through the cast kernel so the rules match as_type. */
  em_cpu_cast_kernel(EM_F64, t)(&v, buf, 1);
  return em_full(out, t, 0, NULL, buf, dev);
}

em_status em_iota(em_array **out, em_dtype t, int ndim, const int64_t *shape,
                  int axis, em_device dev) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[iota] out is NULL");
  *out = NULL;
  TRY(check_shape("iota", ndim, shape, t));
  TRY(check_device("iota", dev));
  if (axis >= 0 || ndim > 0) {
    if (axis < -ndim || axis >= ndim)
      return em_fail(EM_ERR_ARGUMENT, "[iota] axis %d out of range for rank %d",
                     axis, ndim);
    if (axis < 0) axis += ndim;
  }
  em_params p = {.iota = {axis}};
  return make_node(out, EM_OP_iota, t, ndim, shape, dev, 0, NULL, &p);
}

em_status em_eye(em_array **out, em_dtype t, int ndim, const int64_t *shape,
                 em_device dev) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[eye] out is NULL");
  *out = NULL;
  TRY(check_shape("eye", ndim, shape, t));
  TRY(check_device("eye", dev));
  if (ndim < 2) return em_fail(EM_ERR_ARGUMENT, "[eye] needs rank >= 2");
  return make_node(out, EM_OP_eye, t, ndim, shape, dev, 0, NULL, NULL);
}

em_status em_as_type(em_array **out, em_array *a, em_dtype t) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[as_type] out is NULL");
  *out = NULL;
  TRY(check_in("as_type", a));
  if ((unsigned)t >= EM_DTYPE_COUNT)
    return em_fail(EM_ERR_ARGUMENT, "[as_type] unknown dtype %d", (int)t);
  return make_node(out, EM_OP_as_type, t, a->ndim, a->shape, a->dev, 1, &a,
                   NULL);
}

em_status em_bitcast(em_array **out, em_array *a, em_dtype t) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[bitcast] out is NULL");
  *out = NULL;
  TRY(check_in("bitcast", a));
  if ((unsigned)t >= EM_DTYPE_COUNT)
    return em_fail(EM_ERR_ARGUMENT, "[bitcast] unknown dtype %d", (int)t);
  if (em_dtype_bits(t) != em_dtype_bits(a->dtype))
    return em_fail(EM_ERR_ARGUMENT, "[bitcast] %s and %s differ in size",
                   em_dtype_name(a->dtype), em_dtype_name(t));
  /* s2 <-> u2, s4 <-> u4: the stored values are sign- or zero-extended,
   * so reinterpreting the bits is the wrapping conversion. */
  if (em_dtype_is_subbyte(t) && t != a->dtype)
    return make_node(out, EM_OP_as_type, t, a->ndim, a->shape, a->dev, 1, &a,
                     NULL);
  return make_node(out, EM_OP_bitcast, t, a->ndim, a->shape, a->dev, 1, &a,
                   NULL);
}

em_status em_copy(em_array **out, em_array *a) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[copy] out is NULL");
  *out = NULL;
  TRY(check_in("copy", a));
  return make_node(out, EM_OP_copy, a->dtype, a->ndim, a->shape, a->dev, 1,
                   &a, NULL);
}

/* ---- views ------------------------------------------------------------- */

static em_status make_view(em_array **out, em_array *a, int ndim,
                           const int64_t *shape, const em_params *p) {
  return make_node(out, EM_OP_view, a->dtype, ndim, shape, a->dev, 1, &a, p);
}

em_status em_reshape(em_array **out, em_array *a, int ndim,
                     const int64_t *shape) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[reshape] out is NULL");
  *out = NULL;
  TRY(check_in("reshape", a));
  TRY(check_shape("reshape", ndim, shape, a->dtype));
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  if (n != a->size) {
    char b1[256], b2[256];
    return em_fail(EM_ERR_ARGUMENT, "[reshape] cannot reshape %s to %s", SHP(b1, a),
                   em_shape_str(b2, sizeof b2, ndim, shape));
  }
  em_params p;
  memset(&p, 0, sizeof p);
  p.view.kind = EM_VIEW_RESHAPE;
  return make_view(out, a, ndim, shape, &p);
}

em_status em_squeeze(em_array **out, em_array *a, int naxes, const int *axes) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[squeeze] out is NULL");
  *out = NULL;
  TRY(check_in("squeeze", a));
  bool drop[EM_MAX_NDIM] = {false};
  if (!axes) {
    for (int i = 0; i < a->ndim; i++) drop[i] = a->shape[i] == 1;
  } else {
    for (int i = 0; i < naxes; i++) {
      int ax = axes[i];
      TRY(norm_axis("squeeze", &ax, a->ndim));
      if (a->shape[ax] != 1) {
        char b[256];
        return em_fail(EM_ERR_ARGUMENT,
                       "[squeeze] axis %d of shape %s is not of size 1", ax,
                       SHP(b, a));
      }
      drop[ax] = true;
    }
  }
  int64_t shape[EM_MAX_NDIM];
  int nd = 0;
  for (int i = 0; i < a->ndim; i++)
    if (!drop[i]) shape[nd++] = a->shape[i];
  return em_reshape(out, a, nd, shape);
}

em_status em_broadcast(em_array **out, em_array *a, int ndim,
                       const int64_t *shape, const int *axes) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[broadcast] out is NULL");
  *out = NULL;
  TRY(check_in("broadcast", a));
  TRY(check_shape("broadcast", ndim, shape, a->dtype));
  char b1[256], b2[256];
  if (a->ndim > ndim)
    return em_fail(EM_ERR_ARGUMENT, "[broadcast] cannot broadcast %s to %s",
                   SHP(b1, a), em_shape_str(b2, sizeof b2, ndim, shape));
  em_params p;
  memset(&p, 0, sizeof p);
  p.view.kind = EM_VIEW_BROADCAST;
  for (int i = 0; i < a->ndim; i++) {
    int ax = axes ? axes[i] : ndim - a->ndim + i;
    if (ax < 0 || ax >= ndim || (i > 0 && ax <= p.view.axes[i - 1]) ||
        (a->shape[i] != 1 && a->shape[i] != shape[ax]))
      return em_fail(EM_ERR_ARGUMENT,
                     "[broadcast] cannot broadcast %s to %s (input axis %d)",
                     SHP(b1, a), em_shape_str(b2, sizeof b2, ndim, shape), i);
    p.view.axes[i] = ax;
  }
  bool same = a->ndim == ndim;
  for (int i = 0; same && i < ndim; i++) same = a->shape[i] == shape[i];
  if (same) {
    em_array_retain(a);
    *out = a;
    return EM_OK;
  }
  return make_view(out, a, ndim, shape, &p);
}

em_status em_transpose(em_array **out, em_array *a, const int *perm) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[transpose] out is NULL");
  *out = NULL;
  TRY(check_in("transpose", a));
  em_params p;
  memset(&p, 0, sizeof p);
  p.view.kind = EM_VIEW_TRANSPOSE;
  int64_t shape[EM_MAX_NDIM];
  bool seen[EM_MAX_NDIM] = {false}, identity = true;
  for (int i = 0; i < a->ndim; i++) {
    int ax = perm ? perm[i] : a->ndim - 1 - i;
    if (ax < 0) ax += a->ndim;
    if (ax < 0 || ax >= a->ndim || seen[ax]) {
      char b[256];
      return em_fail(EM_ERR_ARGUMENT,
                     "[transpose] invalid permutation for shape %s (entry %d)",
                     SHP(b, a), i);
    }
    seen[ax] = true;
    identity &= ax == i;
    p.view.axes[i] = ax;
    shape[i] = a->shape[ax];
  }
  if (identity) {
    em_array_retain(a);
    *out = a;
    return EM_OK;
  }
  return make_view(out, a, a->ndim, shape, &p);
}

em_status em_reverse(em_array **out, em_array *a, int naxes, const int *axes) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[reverse] out is NULL");
  *out = NULL;
  TRY(check_in("reverse", a));
  if (naxes < 0 || (naxes > 0 && !axes))
    return em_fail(EM_ERR_ARGUMENT, "[reverse] bad axes list");
  em_params p;
  memset(&p, 0, sizeof p);
  p.view.kind = EM_VIEW_REVERSE;
  for (int i = 0; i < naxes; i++) {
    int ax = axes[i];
    TRY(norm_axis("reverse", &ax, a->ndim));
    p.view.mask |= 1u << ax;
  }
  return make_view(out, a, a->ndim, a->shape, &p);
}

em_status em_slice(em_array **out, em_array *a, const int64_t *start,
                   const int64_t *lengths, const int64_t *strides) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[slice] out is NULL");
  *out = NULL;
  TRY(check_in("slice", a));
  if (a->ndim && (!start || !lengths))
    return em_fail(EM_ERR_ARGUMENT, "[slice] start or lengths is NULL");
  em_params p;
  memset(&p, 0, sizeof p);
  p.view.kind = EM_VIEW_SLICE;
  int64_t shape[EM_MAX_NDIM];
  char b[256];
  for (int i = 0; i < a->ndim; i++) {
    int64_t len = lengths[i], st = strides ? strides[i] : 1, s0 = start[i];
    if (len < 0 || len > a->shape[i] || st < 1)
      return em_fail(EM_ERR_ARGUMENT,
                     "[slice] length %lld / stride %lld invalid on axis %d of "
                     "%s",
                     (long long)len, (long long)st, i, SHP(b, a));
    /* Nx clamps the start so that the window fits. */
    if (s0 < 0) s0 = 0;
    if (s0 > a->shape[i] - len) s0 = a->shape[i] - len;
    p.view.start[i] = s0;
    p.view.step[i] = st;
    shape[i] = len == 0 ? 0 : (len + st - 1) / st;
  }
  return make_view(out, a, a->ndim, shape, &p);
}

static em_status check_starts(const char *op, em_array *a,
                              em_array *const *starts) {
  if (a->ndim && !starts)
    return em_fail(EM_ERR_ARGUMENT, "[%s] starts is NULL", op);
  for (int i = 0; i < a->ndim; i++) {
    if (!starts[i])
      return em_fail(EM_ERR_ARGUMENT, "[%s] start %d is NULL", op, i);
    if (starts[i]->ndim != 0 || !em_dtype_is_int(starts[i]->dtype))
      return em_fail(EM_ERR_ARGUMENT,
                     "[%s] start %d must be a 0-d integer array, got %s rank %d",
                     op, i, em_dtype_name(starts[i]->dtype), starts[i]->ndim);
    if (!same_device(a, starts[i]))
      return em_fail(EM_ERR_ARGUMENT, "[%s] start %d is on another device", op,
                     i);
  }
  return EM_OK;
}

em_status em_slice_dynamic(em_array **out, em_array *a,
                           em_array *const *starts, const int64_t *lengths,
                           const int64_t *strides) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[slice] out is NULL");
  *out = NULL;
  TRY(check_in("slice", a));
  TRY(check_starts("slice", a, starts));
  if (a->ndim && !lengths)
    return em_fail(EM_ERR_ARGUMENT, "[slice] lengths is NULL");
  em_params p;
  memset(&p, 0, sizeof p);
  int64_t shape[EM_MAX_NDIM];
  char b[256];
  for (int i = 0; i < a->ndim; i++) {
    int64_t len = lengths[i], st = strides ? strides[i] : 1;
    if (len < 0 || len > a->shape[i] || st < 1)
      return em_fail(EM_ERR_ARGUMENT,
                     "[slice] length %lld / stride %lld invalid on axis %d of "
                     "%s",
                     (long long)len, (long long)st, i, SHP(b, a));
    p.dslice.lengths[i] = len;
    p.dslice.step[i] = st;
    shape[i] = len == 0 ? 0 : (len + st - 1) / st;
  }
  em_array *in[1 + EM_MAX_NDIM];
  in[0] = a;
  for (int i = 0; i < a->ndim; i++) in[1 + i] = starts[i];
  return make_node(out, EM_OP_slice_dynamic, a->dtype, a->ndim, shape, a->dev,
                   1 + a->ndim, in, &p);
}

static em_status put_slice_common(em_array **out, em_array *a, em_array *u,
                                  em_array *const *starts,
                                  const int64_t *static_start) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[put_slice] out is NULL");
  *out = NULL;
  TRY(check_in("put_slice", a));
  TRY(check_in("put_slice", u));
  char b1[256], b2[256];
  if (u->ndim != a->ndim || u->dtype != a->dtype || !same_device(a, u))
    return em_fail(EM_ERR_ARGUMENT,
                   "[put_slice] update %s %s does not match %s %s", SHP(b1, u),
                   em_dtype_name(u->dtype), SHP(b2, a),
                   em_dtype_name(a->dtype));
  for (int i = 0; i < a->ndim; i++)
    if (u->shape[i] > a->shape[i])
      return em_fail(EM_ERR_ARGUMENT,
                     "[put_slice] update %s does not fit in %s", SHP(b1, u),
                     SHP(b2, a));
  em_params p;
  memset(&p, 0, sizeof p);
  em_array *in[2 + EM_MAX_NDIM];
  in[0] = a;
  in[1] = u;
  int nin = 2;
  if (starts) {
    TRY(check_starts("put_slice", a, starts));
    for (int i = 0; i < a->ndim; i++) in[nin++] = starts[i];
  } else {
    if (a->ndim && !static_start)
      return em_fail(EM_ERR_ARGUMENT, "[put_slice] start is NULL");
    for (int i = 0; i < a->ndim; i++) p.pad.lo[i] = static_start[i];
  }
  return make_node(out, EM_OP_put_slice, a->dtype, a->ndim, a->shape, a->dev,
                   nin, in, &p);
}

em_status em_put_slice(em_array **out, em_array *a, em_array *update,
                       const int64_t *start) {
  return put_slice_common(out, a, update, NULL, start);
}
em_status em_put_slice_dynamic(em_array **out, em_array *a, em_array *update,
                               em_array *const *starts) {
  if (!starts && a && a->ndim) {
    if (out) *out = NULL;
    return em_fail(EM_ERR_ARGUMENT, "[put_slice] starts is NULL");
  }
  static em_array *none[1];
  return put_slice_common(out, a, update, starts ? starts : none, NULL);
}

em_status em_pad(em_array **out, em_array *a, em_array *value,
                 const int64_t *lo, const int64_t *hi,
                 const int64_t *interior) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[pad] out is NULL");
  *out = NULL;
  TRY(check_in("pad", a));
  TRY(check_in("pad", value));
  char b[256];
  if (value->ndim != 0 || value->dtype != a->dtype || !same_device(a, value))
    return em_fail(EM_ERR_ARGUMENT,
                   "[pad] pad value must be a 0-d %s array on the same device",
                   em_dtype_name(a->dtype));
  if (a->ndim && (!lo || !hi))
    return em_fail(EM_ERR_ARGUMENT, "[pad] lo or hi is NULL");
  em_params p;
  memset(&p, 0, sizeof p);
  int64_t shape[EM_MAX_NDIM];
  for (int i = 0; i < a->ndim; i++) {
    int64_t in_ = interior ? interior[i] : 0, n = a->shape[i];
    if (in_ < 0 || in_ > INT64_MAX / 4 || lo[i] < -(INT64_MAX / 4) ||
        lo[i] > INT64_MAX / 4 || hi[i] < -(INT64_MAX / 4) ||
        hi[i] > INT64_MAX / 4)
      return em_fail(EM_ERR_ARGUMENT, "[pad] padding out of range on axis %d",
                     i);
    int64_t core = n == 0 ? 0 : n + (n - 1) * in_;
    if (n > 0 && in_ > 0 && (n - 1) > (INT64_MAX / 8) / (in_ + 1))
      return em_fail(EM_ERR_ARGUMENT, "[pad] padded size overflows");
    int64_t len = core + lo[i] + hi[i];
    if (len < 0)
      return em_fail(EM_ERR_ARGUMENT,
                     "[pad] negative padding removes more than axis %d of %s has",
                     i, SHP(b, a));
    shape[i] = len;
    p.pad.lo[i] = lo[i];
    p.pad.hi[i] = hi[i];
    p.pad.interior[i] = in_;
  }
  TRY(check_shape("pad", a->ndim, shape, a->dtype));
  em_array *in[2] = {a, value};
  return make_node(out, EM_OP_pad, a->dtype, a->ndim, shape, a->dev, 2, in, &p);
}

em_status em_concatenate(em_array **out, em_array *const *arrays, int n,
                         int axis) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[concatenate] out is NULL");
  *out = NULL;
  if (n < 1 || !arrays)
    return em_fail(EM_ERR_ARGUMENT, "[concatenate] needs at least one array");
  for (int i = 0; i < n; i++) TRY(check_in("concatenate", arrays[i]));
  em_array *a0 = arrays[0];
  if (a0->ndim == 0)
    return em_fail(EM_ERR_ARGUMENT, "[concatenate] cannot concatenate scalars");
  TRY(norm_axis("concatenate", &axis, a0->ndim));
  int64_t shape[EM_MAX_NDIM];
  memcpy(shape, a0->shape, sizeof shape);
  shape[axis] = 0;
  char b1[256], b2[256];
  for (int i = 0; i < n; i++) {
    em_array *x = arrays[i];
    bool ok = x->ndim == a0->ndim && x->dtype == a0->dtype && same_device(x, a0);
    for (int d = 0; ok && d < a0->ndim; d++)
      ok = d == axis || x->shape[d] == a0->shape[d];
    if (!ok)
      return em_fail(EM_ERR_ARGUMENT,
                     "[concatenate] array %d (%s %s) does not match %s %s on "
                     "axis %d",
                     i, SHP(b1, x), em_dtype_name(x->dtype), SHP(b2, a0),
                     em_dtype_name(a0->dtype), axis);
    if (shape[axis] > INT64_MAX / 16 - x->shape[axis])
      return em_fail(EM_ERR_ARGUMENT, "[concatenate] size overflows");
    shape[axis] += x->shape[axis];
  }
  TRY(check_shape("concatenate", a0->ndim, shape, a0->dtype));
  em_params p = {.concat = {axis}};
  return make_node(out, EM_OP_concatenate, a0->dtype, a0->ndim, shape, a0->dev,
                   n, arrays, &p);
}

em_status em_stack(em_array **out, em_array *const *arrays, int n, int axis) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[stack] out is NULL");
  *out = NULL;
  if (n < 1 || !arrays)
    return em_fail(EM_ERR_ARGUMENT, "[stack] needs at least one array");
  for (int i = 0; i < n; i++) TRY(check_in("stack", arrays[i]));
  int nd = arrays[0]->ndim + 1;
  if (nd > EM_MAX_NDIM)
    return em_fail(EM_ERR_ARGUMENT, "[stack] rank would exceed %d", EM_MAX_NDIM);
  TRY(norm_axis("stack", &axis, nd));
  em_array **tmp = calloc((size_t)n, sizeof *tmp);
  if (!tmp) return em_fail(EM_ERR_OOM, "[stack] out of host memory");
  em_status st = EM_OK;
  for (int i = 0; i < n && st == EM_OK; i++) {
    em_array *x = arrays[i];
    if (x->ndim != nd - 1) {
      st = em_fail(EM_ERR_ARGUMENT, "[stack] arrays differ in rank");
      break;
    }
    /* Checked here so that messages name stack, not concatenate. */
    bool ok = x->dtype == arrays[0]->dtype && same_device(x, arrays[0]);
    for (int d = 0; ok && d < nd - 1; d++) ok = x->shape[d] == arrays[0]->shape[d];
    if (!ok) {
      char b1[256], b2[256];
      st = em_fail(EM_ERR_ARGUMENT,
                   "[stack] array %d (%s %s) does not match array 0 (%s %s)", i,
                   SHP(b1, x), em_dtype_name(x->dtype), SHP(b2, arrays[0]),
                   em_dtype_name(arrays[0]->dtype));
      break;
    }
    int64_t shape[EM_MAX_NDIM];
    for (int d = 0, s = 0; d < nd; d++)
      shape[d] = d == axis ? 1 : x->shape[s++];
    st = em_reshape(&tmp[i], x, nd, shape);
  }
  if (st == EM_OK) st = em_concatenate(out, tmp, n, axis);
  for (int i = 0; i < n; i++) em_array_release(tmp[i]);
  free(tmp);
  return st;
}

/* ---- elementwise ------------------------------------------------------- */

/* numpy broadcasting of k shapes into out_shape. */
static em_status broadcast_shapes(const char *op, em_array *const *xs, int k,
                                  int *ndim, int64_t *shape) {
  int nd = 0;
  for (int i = 0; i < k; i++)
    if (xs[i]->ndim > nd) nd = xs[i]->ndim;
  for (int d = 0; d < nd; d++) {
    int64_t s = 1;
    for (int i = 0; i < k; i++) {
      int off = nd - xs[i]->ndim;
      if (d < off) continue;
      int64_t v = xs[i]->shape[d - off];
      if (v == 1) continue;
      if (s != 1 && s != v) {
        char b1[256], b2[256];
        return em_fail(EM_ERR_ARGUMENT,
                       "[%s] shapes %s and %s cannot be broadcast together",
                       op, SHP(b1, xs[0]), SHP(b2, xs[i]));
      }
      s = v;
    }
    shape[d] = s;
  }
  *ndim = nd;
  return EM_OK;
}

/* Builds an elementwise node whose inputs all have exactly its shape
 * (broadcast views are inserted), which is what the tile evaluator
 * expects. */
static em_status make_ew(em_array **out, em_op op, em_dtype t,
                         em_array *const *xs, int k, const em_params *p) {
  int nd = 0;
  int64_t shape[EM_MAX_NDIM];
  TRY(broadcast_shapes(em_op_name(op), xs, k, &nd, shape));
  TRY(check_shape(em_op_name(op), nd, shape, t));
  em_array *bx[3] = {NULL, NULL, NULL};
  em_status st = EM_OK;
  for (int i = 0; i < k && st == EM_OK; i++)
    st = em_broadcast(&bx[i], xs[i], nd, shape, NULL);
  if (st == EM_OK)
    st = make_node(out, op, t, nd, shape, xs[0]->dev, k, bx, p);
  for (int i = 0; i < k; i++) em_array_release(bx[i]);
  return st;
}

static em_status binary(em_array **out, em_op op, em_array *a, em_array *b) {
  const char *name = em_op_name(op);
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[%s] out is NULL", name);
  *out = NULL;
  TRY(check_in(name, a));
  TRY(check_in(name, b));
  char b1[256], b2[256];
  if (a->dtype != b->dtype)
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] dtypes differ: %s %s and %s %s (cast first)", name,
                   em_dtype_name(a->dtype), SHP(b1, a), em_dtype_name(b->dtype),
                   SHP(b2, b));
  if (!same_device(a, b))
    return em_fail(EM_ERR_ARGUMENT, "[%s] operands are on different devices",
                   name);
  int t = em_binary_out_dtype(op, a->dtype);
  if (t < 0)
    return em_fail(EM_ERR_ARGUMENT, "[%s] not defined for %s (shape %s)", name,
                   em_dtype_name(a->dtype), SHP(b1, a));
  em_array *xs[2] = {a, b};
  return make_ew(out, op, (em_dtype)t, xs, 2, NULL);
}

static em_status unary(em_array **out, em_op op, em_array *a) {
  const char *name = em_op_name(op);
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[%s] out is NULL", name);
  *out = NULL;
  TRY(check_in(name, a));
  int t = em_unary_out_dtype(op, a->dtype);
  if (t < 0) {
    char b[256];
    return em_fail(EM_ERR_ARGUMENT, "[%s] not defined for %s (shape %s)", name,
                   em_dtype_name(a->dtype), SHP(b, a));
  }
  return make_node(out, op, (em_dtype)t, a->ndim, a->shape, a->dev, 1, &a,
                   NULL);
}

#define X(n)                                                       \
  em_status em_##n(em_array **out, em_array *a, em_array *b) {     \
    return binary(out, EM_OP_##n, a, b);                           \
  }
EM_BINARY_OPS(X)
#undef X
#define X(n)                                                       \
  em_status em_##n(em_array **out, em_array *a) {                  \
    return unary(out, EM_OP_##n, a);                               \
  }
EM_UNARY_OPS(X)
#undef X

em_status em_select(em_array **out, em_array *pred, em_array *on_true,
                    em_array *on_false) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[select] out is NULL");
  *out = NULL;
  TRY(check_in("select", pred));
  TRY(check_in("select", on_true));
  TRY(check_in("select", on_false));
  if (on_true->dtype != on_false->dtype)
    return em_fail(EM_ERR_ARGUMENT, "[select] branches differ: %s and %s",
                   em_dtype_name(on_true->dtype),
                   em_dtype_name(on_false->dtype));
  if (!same_device(pred, on_true) || !same_device(pred, on_false))
    return em_fail(EM_ERR_ARGUMENT, "[select] operands on different devices");
  em_array *p = pred;
  em_status st = EM_OK;
  if (pred->dtype != EM_U8) { /* truthiness: nonzero */
    unsigned char zero[16] = {0};
    em_array *z = NULL;
    st = em_full(&z, pred->dtype, 0, NULL, zero, pred->dev);
    if (st == EM_OK) st = em_not_equal(&p, pred, z);
    em_array_release(z);
    if (st != EM_OK) return st;
  }
  em_array *xs[3] = {p, on_true, on_false};
  st = make_ew(out, EM_OP_select, on_true->dtype, xs, 3, NULL);
  if (p != pred) em_array_release(p);
  return st;
}

em_status em_clip(em_array **out, em_array *a, em_array *lo, em_array *hi) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[clip] out is NULL");
  *out = NULL;
  /* Validated here so that messages name clip, not the max/min it
   * builds. */
  TRY(check_in("clip", a));
  TRY(check_in("clip", lo));
  TRY(check_in("clip", hi));
  char b1[256], b2[256], b3[256];
  if (lo->dtype != a->dtype || hi->dtype != a->dtype)
    return em_fail(EM_ERR_ARGUMENT,
                   "[clip] dtypes differ: %s %s, lo %s %s, hi %s %s",
                   em_dtype_name(a->dtype), SHP(b1, a),
                   em_dtype_name(lo->dtype), SHP(b2, lo),
                   em_dtype_name(hi->dtype), SHP(b3, hi));
  if (!same_device(a, lo) || !same_device(a, hi))
    return em_fail(EM_ERR_ARGUMENT, "[clip] operands on different devices");
  if (em_binary_out_dtype(EM_OP_max, a->dtype) < 0)
    return em_fail(EM_ERR_ARGUMENT, "[clip] not defined for %s (shape %s)",
                   em_dtype_name(a->dtype), SHP(b1, a));
  {
    em_array *xs[3] = {a, lo, hi};
    int nd = 0;
    int64_t shape[EM_MAX_NDIM];
    TRY(broadcast_shapes("clip", xs, 3, &nd, shape));
    TRY(check_shape("clip", nd, shape, a->dtype));
  }
  em_array *t = NULL;
  TRY(em_max(&t, a, lo));
  em_status st = em_min(out, t, hi);
  em_array_release(t);
  return st;
}

/* ---- reductions -------------------------------------------------------- */

static em_status axes_mask(const char *op, const em_array *a, int naxes,
                           const int *axes, uint32_t *mask) {
  *mask = 0;
  if (naxes < 0 || (naxes > 0 && !axes))
    return em_fail(EM_ERR_ARGUMENT, "[%s] bad axes list", op);
  if (!axes) {
    *mask = a->ndim ? (uint32_t)((1ull << a->ndim) - 1) : 0;
    return EM_OK;
  }
  for (int i = 0; i < naxes; i++) {
    int ax = axes[i];
    TRY(norm_axis(op, &ax, a->ndim));
    if (*mask & (1u << ax))
      return em_fail(EM_ERR_ARGUMENT, "[%s] axis %d repeated", op, ax);
    *mask |= 1u << ax;
  }
  return EM_OK;
}

static em_status reduce(em_array **out, em_op op, em_array *a, int naxes,
                        const int *axes, bool keep) {
  const char *name = em_op_name(op);
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[%s] out is NULL", name);
  *out = NULL;
  TRY(check_in(name, a));
  uint32_t mask;
  TRY(axes_mask(name, a, naxes, axes, &mask));
  if ((op == EM_OP_reduce_max || op == EM_OP_reduce_min) &&
      em_dtype_is_complex(a->dtype))
    return em_fail(EM_ERR_ARGUMENT, "[%s] not defined for %s", name,
                   em_dtype_name(a->dtype));
  int64_t shape[EM_MAX_NDIM];
  int nd = 0;
  for (int i = 0; i < a->ndim; i++) {
    if (mask & (1u << i)) {
      if (keep) shape[nd++] = 1;
    } else {
      shape[nd++] = a->shape[i];
    }
  }
  em_dtype t = (op == EM_OP_all || op == EM_OP_any) ? EM_U8 : a->dtype;
  em_params p = {.reduce = {mask}};
  return make_node(out, op, t, nd, shape, a->dev, 1, &a, &p);
}

#define X(n)                                                               \
  em_status em_##n(em_array **out, em_array *a, int naxes, const int *axes, \
                   bool keep) {                                            \
    return reduce(out, EM_OP_##n, a, naxes, axes, keep);                   \
  }
EM_REDUCE_OPS(X)
#undef X

static em_status arg_reduce(em_array **out, em_op op, em_array *a, int axis,
                            bool keep, bool tie_high) {
  const char *name = em_op_name(op);
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[%s] out is NULL", name);
  *out = NULL;
  TRY(check_in(name, a));
  if (em_dtype_is_complex(a->dtype))
    return em_fail(EM_ERR_ARGUMENT, "[%s] not defined for %s", name,
                   em_dtype_name(a->dtype));
  em_params p = {.arg = {0, tie_high}};
  if (axis < 0) { /* flattened */
    if (a->size == 0)
      return em_fail(EM_ERR_ARGUMENT, "[%s] empty array", name);
    int64_t n = a->size;
    em_array *flat = NULL;
    TRY(em_reshape(&flat, a, 1, &n));
    em_array *r = NULL;
    em_status st = make_node(&r, op, EM_S64, 0, NULL, a->dev, 1, &flat, &p);
    em_array_release(flat);
    if (st != EM_OK || !keep || a->ndim == 0) {
      *out = r;
      return st;
    }
    int64_t ones[EM_MAX_NDIM];
    for (int i = 0; i < a->ndim; i++) ones[i] = 1;
    st = em_reshape(out, r, a->ndim, ones);
    em_array_release(r);
    return st;
  }
  TRY(norm_axis(name, &axis, a->ndim));
  if (a->shape[axis] == 0)
    return em_fail(EM_ERR_ARGUMENT, "[%s] axis %d has size 0", name, axis);
  p.arg.axis = axis;
  int64_t shape[EM_MAX_NDIM];
  int nd = 0;
  for (int i = 0; i < a->ndim; i++) {
    if (i == axis) {
      if (keep) shape[nd++] = 1;
    } else {
      shape[nd++] = a->shape[i];
    }
  }
  return make_node(out, op, EM_S64, nd, shape, a->dev, 1, &a, &p);
}

em_status em_argmax(em_array **out, em_array *a, int axis, bool keep,
                    bool tie_high) {
  return arg_reduce(out, EM_OP_argmax, a, axis, keep, tie_high);
}
em_status em_argmin(em_array **out, em_array *a, int axis, bool keep,
                    bool tie_high) {
  return arg_reduce(out, EM_OP_argmin, a, axis, keep, tie_high);
}

/* ---- dot --------------------------------------------------------------- */

static em_status axis_list(const char *op, const em_array *a, int n,
                           const int *axes, int *outv, uint32_t *mask) {
  if (n < 0 || (n > 0 && !axes))
    return em_fail(EM_ERR_ARGUMENT, "[%s] bad axes list", op);
  for (int i = 0; i < n; i++) {
    int ax = axes[i];
    TRY(norm_axis(op, &ax, a->ndim));
    if (*mask & (1u << ax))
      return em_fail(EM_ERR_ARGUMENT, "[%s] axis %d used twice", op, ax);
    *mask |= 1u << ax;
    outv[i] = ax;
  }
  return EM_OK;
}

em_status em_dot(em_array **out, em_array *a, int nca, const int *ca, int nba,
                 const int *ba, em_array *b, int ncb, const int *cb, int nbb,
                 const int *bb) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[dot] out is NULL");
  *out = NULL;
  TRY(check_in("dot", a));
  TRY(check_in("dot", b));
  char b1[256], b2[256];
  if (a->dtype != b->dtype)
    return em_fail(EM_ERR_ARGUMENT, "[dot] dtypes differ: %s %s and %s %s",
                   em_dtype_name(a->dtype), SHP(b1, a), em_dtype_name(b->dtype),
                   SHP(b2, b));
  if (!same_device(a, b))
    return em_fail(EM_ERR_ARGUMENT, "[dot] operands on different devices");
  if (nca != ncb || nba != nbb)
    return em_fail(EM_ERR_ARGUMENT,
                   "[dot] axis lists differ in length (contract %d/%d, batch "
                   "%d/%d)",
                   nca, ncb, nba, nbb);
  em_params p;
  memset(&p, 0, sizeof p);
  uint32_t ma = 0, mb = 0;
  TRY(axis_list("dot", a, nca, ca, p.dot.ca, &ma));
  TRY(axis_list("dot", a, nba, ba, p.dot.ba, &ma));
  TRY(axis_list("dot", b, ncb, cb, p.dot.cb, &mb));
  TRY(axis_list("dot", b, nbb, bb, p.dot.bb, &mb));
  p.dot.nca = nca;
  p.dot.nba = nba;
  for (int i = 0; i < nca; i++)
    if (a->shape[p.dot.ca[i]] != b->shape[p.dot.cb[i]])
      return em_fail(EM_ERR_ARGUMENT,
                     "[dot] contracting axes %d of %s and %d of %s differ",
                     p.dot.ca[i], SHP(b1, a), p.dot.cb[i], SHP(b2, b));
  for (int i = 0; i < nba; i++)
    if (a->shape[p.dot.ba[i]] != b->shape[p.dot.bb[i]])
      return em_fail(EM_ERR_ARGUMENT,
                     "[dot] batch axes %d of %s and %d of %s differ",
                     p.dot.ba[i], SHP(b1, a), p.dot.bb[i], SHP(b2, b));
  int64_t shape[EM_MAX_NDIM * 2];
  int nd = 0;
  for (int i = 0; i < nba; i++) shape[nd++] = a->shape[p.dot.ba[i]];
  for (int i = 0; i < a->ndim; i++)
    if (!(ma & (1u << i))) shape[nd++] = a->shape[i];
  for (int i = 0; i < b->ndim; i++)
    if (!(mb & (1u << i))) shape[nd++] = b->shape[i];
  TRY(check_shape("dot", nd, shape, a->dtype));
  em_array *in[2] = {a, b};
  return make_node(out, EM_OP_dot, a->dtype, nd, shape, a->dev, 2, in, &p);
}

em_status em_matmul(em_array **out, em_array *a, em_array *b) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[matmul] out is NULL");
  *out = NULL;
  TRY(check_in("matmul", a));
  TRY(check_in("matmul", b));
  if (a->ndim < 2 || b->ndim != a->ndim)
    return em_fail(EM_ERR_ARGUMENT,
                   "[matmul] needs operands of equal rank >= 2 (got %d, %d)",
                   a->ndim, b->ndim);
  int nb = a->ndim - 2, ba[EM_MAX_NDIM];
  bool ok = a->dtype == b->dtype && a->shape[nb + 1] == b->shape[nb];
  for (int i = 0; ok && i < nb; i++) ok = a->shape[i] == b->shape[i];
  if (!ok) { /* named here so that messages say matmul, not dot */
    char b1[256], b2[256];
    return em_fail(EM_ERR_ARGUMENT, "[matmul] cannot multiply %s %s by %s %s",
                   em_dtype_name(a->dtype), SHP(b1, a),
                   em_dtype_name(b->dtype), SHP(b2, b));
  }
  for (int i = 0; i < nb; i++) ba[i] = i;
  int ca = a->ndim - 1, cb = b->ndim - 2;
  return em_dot(out, a, 1, &ca, nb, ba, b, 1, &cb, nb, ba);
}

/* ---- fused row ops ----------------------------------------------------- */

static em_status check_float(const char *op, const em_array *a) {
  if (!em_dtype_is_float(a->dtype)) {
    char b[256];
    return em_fail(EM_ERR_ARGUMENT, "[%s] needs a float array, got %s %s", op,
                   em_dtype_name(a->dtype), SHP(b, a));
  }
  if (a->ndim == 0)
    return em_fail(EM_ERR_ARGUMENT, "[%s] needs rank >= 1", op);
  return EM_OK;
}

/* Runs a last-axis op on `axis` by transposing it last and back. */
static em_status swap_last(em_array **out, em_array *a, int axis) {
  int perm[EM_MAX_NDIM];
  for (int i = 0; i < a->ndim; i++) perm[i] = i;
  perm[axis] = a->ndim - 1;
  perm[a->ndim - 1] = axis;
  return em_transpose(out, a, perm);
}

em_status em_softmax(em_array **out, em_array *a, int axis) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[softmax] out is NULL");
  *out = NULL;
  TRY(check_in("softmax", a));
  TRY(check_float("softmax", a));
  TRY(norm_axis("softmax", &axis, a->ndim));
  if (axis == a->ndim - 1)
    return make_node(out, EM_OP_softmax, a->dtype, a->ndim, a->shape, a->dev,
                     1, &a, NULL);
  em_array *t = NULL, *s = NULL;
  TRY(swap_last(&t, a, axis));
  em_status st = em_softmax(&s, t, -1);
  if (st == EM_OK) st = swap_last(out, s, axis);
  em_array_release(t);
  em_array_release(s);
  return st;
}

em_status em_logsumexp(em_array **out, em_array *a, int axis, bool keep) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[logsumexp] out is NULL");
  *out = NULL;
  TRY(check_in("logsumexp", a));
  TRY(check_float("logsumexp", a));
  TRY(norm_axis("logsumexp", &axis, a->ndim));
  int n = a->ndim;
  em_array *t = NULL, *r = NULL, *r2 = NULL;
  if (axis == n - 1) {
    t = a;
    em_array_retain(t);
  } else {
    TRY(swap_last(&t, a, axis));
  }
  em_status st = make_node(&r, EM_OP_logsumexp, a->dtype, n - 1, t->shape,
                           a->dev, 1, &t, NULL);
  em_array_release(t);
  if (st != EM_OK) return st;
  if (axis == n - 1) {
    r2 = r;
  } else {
    /* r holds a's old last axis at position `axis`: rotate it to the end. */
    int perm[EM_MAX_NDIM], m = 0;
    for (int i = 0; i < n - 1; i++)
      if (i != axis) perm[m++] = i;
    perm[m] = axis;
    st = em_transpose(&r2, r, perm);
    em_array_release(r);
    if (st != EM_OK) return st;
  }
  if (!keep) {
    *out = r2;
    return EM_OK;
  }
  int64_t ks[EM_MAX_NDIM];
  for (int i = 0; i < n; i++) ks[i] = i == axis ? 1 : a->shape[i];
  st = em_reshape(out, r2, n, ks);
  em_array_release(r2);
  return st;
}

static em_status norm_op(em_array **out, em_op op, em_array *a, em_array *w,
                         em_array *b, double eps) {
  const char *name = em_op_name(op);
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[%s] out is NULL", name);
  *out = NULL;
  TRY(check_in(name, a));
  TRY(check_float(name, a));
  if (!(eps >= 0))
    return em_fail(EM_ERR_ARGUMENT, "[%s] eps must be >= 0", name);
  int64_t d = a->shape[a->ndim - 1];
  em_array *in[3] = {a, NULL, NULL};
  int nin = 1;
  em_array *ps[2] = {w, b};
  for (int i = 0; i < 2; i++) {
    if (!ps[i]) continue;
    if (ps[i]->ndim != 1 || ps[i]->shape[0] != d || ps[i]->dtype != a->dtype ||
        !same_device(a, ps[i]))
      return em_fail(EM_ERR_ARGUMENT,
                     "[%s] %s must be a 1-d %s array of length %lld", name,
                     i ? "bias" : "weight", em_dtype_name(a->dtype),
                     (long long)d);
    in[nin++] = ps[i];
  }
  em_params p = {.norm = {eps, w != NULL, b != NULL}};
  return make_node(out, op, a->dtype, a->ndim, a->shape, a->dev, nin, in, &p);
}

em_status em_layer_norm(em_array **out, em_array *a, em_array *w, em_array *b,
                        double eps) {
  return norm_op(out, EM_OP_layer_norm, a, w, b, eps);
}
em_status em_rms_norm(em_array **out, em_array *a, em_array *w, double eps) {
  return norm_op(out, EM_OP_rms_norm, a, w, NULL, eps);
}
