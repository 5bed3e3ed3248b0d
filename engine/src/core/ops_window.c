/* ops_window.c — graph building for the window family (Nx 0.13):
 * window_sum/product/max/min (EM_OP_window_reduce) and
 * window_scatter_max/min (EM_OP_window_scatter). Kernels: src/cpu/window.c.
 *
 *  - The window struct covers every axis of the input (its rank is the
 *    input's rank). Padding is explicit (the Nx layer resolves :same and
 *    :valid into numbers): pad_lo/pad_hi >= 0; window, strides and
 *    dilations >= 1.
 *  - Output axis size: floor((n + lo + hi - ((w - 1) * d + 1)) / s) + 1. A
 *    dilated window larger than the padded axis is an error (Nx raises,
 *    it never returns an empty window result), so outputs are never empty;
 *    an empty input is allowed when the padding makes room for the window.
 *  - window_reduce keeps the input dtype. Padding takes the reduction's
 *    identity: 0 (sum), 1 (product), -inf / the lowest integer (max),
 *    +inf / the highest integer (min). max/min reject complex inputs.
 *  - window_scatter: a is any real dtype (selection compares in a's
 *    dtype); source and init (0-d) share one real dtype, the output's;
 *    source's shape must equal the window_reduce result shape of a. */
#include <string.h>

#include "array-impl.h"

#define TRY(x)                    \
  do {                            \
    em_status st_ = (x);          \
    if (st_ != EM_OK) return st_; \
  } while (0)

#define SHP(buf, a) em_shape_str(buf, sizeof buf, (a)->ndim, (a)->shape)

static em_status check_input(const char *op, const em_array *a,
                             const char *what) {
  if (!a) return em_fail(EM_ERR_ARGUMENT, "[%s] %s is NULL", op, what);
  if ((unsigned)a->dtype >= EM_DTYPE_COUNT)
    return em_fail(EM_ERR_ARGUMENT, "[%s] %s has unknown dtype %d", op, what,
                   (int)a->dtype);
  return EM_OK;
}

static bool same_device(const em_array *a, const em_array *b) {
  return a->dev.type == b->dev.type && a->dev.index == b->dev.index;
}

/* Validates w against a and writes the pooled shape into oshape. */
static em_status pool_shape(const char *op, const em_array *a,
                            const em_window *w, int64_t *oshape) {
  char b[256];
  if (!w) return em_fail(EM_ERR_ARGUMENT, "[%s] window is NULL", op);
  const int64_t big = INT64_MAX / 8;
  for (int i = 0; i < a->ndim; i++) {
    int64_t n = a->shape[i], k = w->window[i], s = w->strides[i],
            d = w->dilations[i], lo = w->pad_lo[i], hi = w->pad_hi[i];
    if (k < 1 || s < 1 || d < 1)
      return em_fail(EM_ERR_ARGUMENT,
                     "[%s] axis %d: window (%lld), stride (%lld) and dilation "
                     "(%lld) must be >= 1 (input %s %s)",
                     op, i, (long long)k, (long long)s, (long long)d, SHP(b, a),
                     em_dtype_name(a->dtype));
    if (lo < 0 || hi < 0 || lo > big || hi > big)
      return em_fail(EM_ERR_ARGUMENT,
                     "[%s] axis %d: padding (%lld, %lld) must be in 0..%lld "
                     "(input %s %s)",
                     op, i, (long long)lo, (long long)hi, (long long)big,
                     SHP(b, a), em_dtype_name(a->dtype));
    if (k > big || d > big || (k - 1) > (big - 1) / d)
      return em_fail(EM_ERR_ARGUMENT,
                     "[%s] axis %d: dilated window (%lld x %lld) overflows "
                     "(input %s %s)",
                     op, i, (long long)k, (long long)d, SHP(b, a),
                     em_dtype_name(a->dtype));
    int64_t dk = (k - 1) * d + 1, padded = n + lo + hi;
    if (dk > padded)
      return em_fail(EM_ERR_ARGUMENT,
                     "[%s] axis %d: dilated window %lld (window %lld, "
                     "dilation %lld) is larger than the padded size %lld "
                     "(input %s %s, padding %lld/%lld)",
                     op, i, (long long)dk, (long long)k, (long long)d,
                     (long long)padded, SHP(b, a), em_dtype_name(a->dtype),
                     (long long)lo, (long long)hi);
    oshape[i] = (padded - dk) / s + 1;
  }
  return em_check_shape(op, a->ndim, oshape, a->dtype);
}

/* ---- window_reduce ------------------------------------------------------ */

static em_status window_reduce(em_array **out, em_op kind, const char *name,
                               em_array *a, const em_window *w) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[%s] out is NULL", name);
  *out = NULL;
  TRY(check_input(name, a, "input"));
  char b[256];
  if (em_dtype_is_complex(a->dtype) &&
      (kind == EM_OP_reduce_max || kind == EM_OP_reduce_min))
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] not defined for complex input (%s %s)", name,
                   SHP(b, a), em_dtype_name(a->dtype));
  int64_t oshape[EM_MAX_NDIM];
  TRY(pool_shape(name, a, w, oshape));
  em_params p;
  memset(&p, 0, sizeof p);
  p.window.kind = kind;
  for (int i = 0; i < a->ndim; i++) {
    p.window.w.window[i] = w->window[i];
    p.window.w.strides[i] = w->strides[i];
    p.window.w.pad_lo[i] = w->pad_lo[i];
    p.window.w.pad_hi[i] = w->pad_hi[i];
    p.window.w.dilations[i] = w->dilations[i];
  }
  return em_make_node(out, EM_OP_window_reduce, a->dtype, a->ndim, oshape,
                      a->dev, 1, &a, &p);
}

em_status em_window_sum(em_array **out, em_array *a, const em_window *w) {
  return window_reduce(out, EM_OP_sum, "window_sum", a, w);
}
em_status em_window_product(em_array **out, em_array *a, const em_window *w) {
  return window_reduce(out, EM_OP_product, "window_product", a, w);
}
em_status em_window_max(em_array **out, em_array *a, const em_window *w) {
  return window_reduce(out, EM_OP_reduce_max, "window_max", a, w);
}
em_status em_window_min(em_array **out, em_array *a, const em_window *w) {
  return window_reduce(out, EM_OP_reduce_min, "window_min", a, w);
}

/* ---- window_scatter ----------------------------------------------------- */

static em_status window_scatter(em_array **out, em_op kind, const char *name,
                                em_array *a, em_array *source, em_array *init,
                                const em_window *w) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[%s] out is NULL", name);
  *out = NULL;
  TRY(check_input(name, a, "input"));
  TRY(check_input(name, source, "source"));
  TRY(check_input(name, init, "init"));
  char b1[256], b2[256];
  if (em_dtype_is_complex(a->dtype) || em_dtype_is_complex(source->dtype))
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] not defined for complex types (input %s %s, source "
                   "%s %s)",
                   name, SHP(b1, a), em_dtype_name(a->dtype), SHP(b2, source),
                   em_dtype_name(source->dtype));
  if (init->ndim != 0 || init->dtype != source->dtype)
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] init must be a 0-d array of the source's dtype %s, "
                   "got %s %s",
                   name, em_dtype_name(source->dtype), SHP(b1, init),
                   em_dtype_name(init->dtype));
  if (!same_device(a, source) || !same_device(a, init))
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] input, source and init must be on one device", name);
  if (source->ndim != a->ndim)
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] source rank %d does not match input rank %d (input "
                   "%s %s, source %s %s)",
                   name, source->ndim, a->ndim, SHP(b1, a),
                   em_dtype_name(a->dtype), SHP(b2, source),
                   em_dtype_name(source->dtype));
  int64_t oshape[EM_MAX_NDIM];
  TRY(pool_shape(name, a, w, oshape));
  for (int i = 0; i < a->ndim; i++)
    if (oshape[i] != source->shape[i]) {
      char b3[256];
      return em_fail(EM_ERR_ARGUMENT,
                     "[%s] source shape %s must match the windows of the "
                     "input, %s (input %s %s)",
                     name, SHP(b2, source),
                     em_shape_str(b3, sizeof b3, a->ndim, oshape), SHP(b1, a),
                     em_dtype_name(a->dtype));
    }
  TRY(em_check_shape(name, a->ndim, a->shape, source->dtype));
  em_params p;
  memset(&p, 0, sizeof p);
  p.window.kind = kind;
  for (int i = 0; i < a->ndim; i++) {
    p.window.w.window[i] = w->window[i];
    p.window.w.strides[i] = w->strides[i];
    p.window.w.pad_lo[i] = w->pad_lo[i];
    p.window.w.pad_hi[i] = w->pad_hi[i];
    p.window.w.dilations[i] = w->dilations[i];
  }
  em_array *in[3] = {a, source, init};
  return em_make_node(out, EM_OP_window_scatter, source->dtype, a->ndim,
                      a->shape, a->dev, 3, in, &p);
}

em_status em_window_scatter_max(em_array **out, em_array *a, em_array *source,
                                em_array *init, const em_window *w) {
  return window_scatter(out, EM_OP_reduce_max, "window_scatter_max", a, source,
                        init, w);
}
em_status em_window_scatter_min(em_array **out, em_array *a, em_array *source,
                                em_array *init, const em_window *w) {
  return window_scatter(out, EM_OP_reduce_min, "window_scatter_min", a, source,
                        init, w);
}
