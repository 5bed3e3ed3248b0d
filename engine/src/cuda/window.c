/* window.c — EM_OP_window_reduce and EM_OP_window_scatter on CUDA: the
 * host side (geometry, dtype checks, scratch); the kernels and their
 * semantics (those of src/cpu/window.c) are in window.cu.
 *
 *  - window_reduce: sum / product for u8..c128, max / min for u8..f64
 *    (complex max/min is rejected by the op layer).
 *  - window_scatter: operand and source/init of any real dtype u8..f64.
 * The operand and source are read through their strides (no contiguous
 * copies); outputs are contiguous. s2/s4/u2/u4 and f8 have no CUDA
 * storage (em_cu_dtype_ok) and are unsupported. */
#include <string.h>

#include "cuda-impl.h"
#include "window-kernels.h"

_Static_assert(EM_CU_WT_U8 == (int)EM_U8 && EM_CU_WT_S8 == (int)EM_S8 &&
                   EM_CU_WT_F16 == (int)EM_F16 &&
                   EM_CU_WT_BF16 == (int)EM_BF16 &&
                   EM_CU_WT_F64 == (int)EM_F64 &&
                   EM_CU_WT_C128 == (int)EM_C128,
               "window-kernels.h types follow the engine's dtype order");

/* The geometry of window w over an operand of rank r (shape ishape,
 * strides xst), windows oshape; sst: the source's strides (window_scatter)
 * or NULL. Axes the window leaves alone (window 1, stride 1, no padding)
 * with one element are dropped, adjacent ones merge when every layout
 * allows; the rest keep their order. */
static void geometry(em_cu_wgeom *g, const em_window *w, int r,
                     const int64_t *ishape, const int64_t *xst,
                     const int64_t *oshape, const int64_t *sst) {
  memset(g, 0, sizeof *g);
  int k = 0;
  for (int a = 0; a < r; a++) {
    const bool win = !(w->window[a] == 1 && w->strides[a] == 1 &&
                       w->pad_lo[a] == 0 && oshape[a] == ishape[a]);
    if (!win && ishape[a] == 1) continue;
    if (!win && k > 0 && !g->win[k - 1] &&
        g->xst[k - 1] == xst[a] * ishape[a] &&
        (!sst || g->sst[k - 1] == sst[a] * ishape[a])) {
      g->n[k - 1] *= ishape[a];
      g->o[k - 1] *= ishape[a];
      g->xst[k - 1] = xst[a];
      if (sst) g->sst[k - 1] = sst[a];
      continue;
    }
    g->win[k] = win;
    g->n[k] = ishape[a];
    g->o[k] = oshape[a];
    g->k[k] = win ? w->window[a] : 1;
    g->s[k] = win ? w->strides[a] : 1;
    g->d[k] = win ? w->dilations[a] : 1;
    g->lo[k] = win ? w->pad_lo[a] : 0;
    g->xst[k] = xst[a];
    g->sst[k] = sst ? sst[a] : 0;
    g->nw += win;
    k++;
  }
  if (k == 0) { /* rank 0, or every axis of size 1 and untouched */
    g->n[0] = g->o[0] = g->k[0] = g->s[0] = g->d[0] = 1;
    k = 1;
  }
  g->nd = k;
  int64_t f = 1, m = 1;
  for (int a = k - 1; a >= 0; a--) {
    g->fst[a] = f;
    g->mst[a] = m;
    f *= g->n[a];
    m *= g->o[a];
  }
}

em_status em_cu_k_window_reduce(em_array *out, const em_node *node) {
  const em_array *in = node->in[0];
  const em_op kind = node->p.window.kind;
  const int op = kind == EM_OP_sum           ? EM_CU_WOP_SUM
                 : kind == EM_OP_product     ? EM_CU_WOP_PROD
                 : kind == EM_OP_reduce_max  ? EM_CU_WOP_MAX
                 : kind == EM_OP_reduce_min  ? EM_CU_WOP_MIN
                                             : -1;
  if (op < 0 || !em_cu_dtype_ok(in->dtype) ||
      (em_dtype_is_complex(in->dtype) && op >= EM_CU_WOP_MAX))
    return em_fail(EM_ERR_UNSUPPORTED,
                   "[window_reduce] no CUDA kernel for %s (op %s)",
                   em_dtype_name(in->dtype), em_op_name(kind));
  em_status st = em_alloc_output(out);
  if (st != EM_OK || out->size == 0) return st;
  em_cu_wgeom g;
  geometry(&g, &node->p.window.w, in->ndim, in->shape, in->strides,
           out->shape, NULL);
  const int dev = out->dev.index;
  cudaStream_t s = em_cu_enter(dev);
  const bool empty = in->size == 0;
  cudaError_t e = em_cu_window_reduce_launch(
      &g, (int)in->dtype, op, empty ? NULL : em_array_ptr(in),
      em_array_ptr(out), out->size, empty, em_cu_device_props(dev)->sms, s);
  if (e != cudaSuccess)
    return em_cu_fail(e, "window_reduce", "the window kernel");
  return EM_OK;
}

static bool real_dtype(em_dtype t) {
  return (unsigned)t <= (unsigned)EM_F64;
}

em_status em_cu_k_window_scatter(em_array *out, const em_node *node) {
  const em_array *a = node->in[0], *src = node->in[1], *init = node->in[2];
  const em_op kind = node->p.window.kind;
  if ((kind != EM_OP_reduce_max && kind != EM_OP_reduce_min) ||
      !real_dtype(a->dtype) || !real_dtype(src->dtype) ||
      init->dtype != src->dtype)
    return em_fail(EM_ERR_UNSUPPORTED,
                   "[window_scatter] no CUDA kernel for input %s, source %s "
                   "(op %s)",
                   em_dtype_name(a->dtype), em_dtype_name(src->dtype),
                   em_op_name(kind));
  em_status st = em_alloc_output(out);
  if (st != EM_OK || out->size == 0) return st;
  const int dev = out->dev.index;
  const int sms = em_cu_device_props(dev)->sms;
  const int64_t ns = src->size;
  em_cu_wgeom g;
  geometry(&g, &node->p.window.w, a->ndim, a->shape, a->strides, src->shape,
           src->strides);
  cudaStream_t s = em_cu_enter(dev);
  int64_t *picks = NULL;
  const size_t picks_nb = (size_t)(ns > 0 ? ns : 1) * sizeof *picks;
  picks = em_alloc(out->dev, picks_nb, &st);
  if (!picks) return st;
  cudaError_t e = cudaSuccess;
  if (ns > 0)
    e = em_cu_window_select_launch(&g, (int)a->dtype,
                                   kind == EM_OP_reduce_max, em_array_ptr(a),
                                   picks, ns, sms, s);
  if (e == cudaSuccess)
    e = em_cu_window_scatter_launch(&g, (int)src->dtype,
                                    ns > 0 ? em_array_ptr(src) : NULL,
                                    em_array_ptr(init), picks,
                                    em_array_ptr(out), out->size, sms, s);
  em_free(out->dev, picks, picks_nb);
  if (e != cudaSuccess)
    return em_cu_fail(e, "window_scatter", "the window kernels");
  return EM_OK;
}
