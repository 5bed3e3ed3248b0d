/* sort.c — EM_OP_sort and EM_OP_argsort on CUDA: the host side (layout,
 * path choice, scratch); the keys, the CUB sorts and the output kernels are
 * in sort.cu (see its comment for the semantics, which are those of
 * src/cpu/sort.c). Every real dtype the CPU sorts: u8..u64, s8..s64, f16,
 * bf16, f32, f64 (complex is rejected by the op layer; s2/s4/u2/u4 and f8
 * have no CPU kernel either, and no CUDA storage). argsort returns s64. */
#include <pthread.h>
#include <string.h>

#include "cuda-impl.h"
#include "sort-kernels.h"

void em_cu_sort_warmup(void); /* sort.cu */

static pthread_once_t g_warm = PTHREAD_ONCE_INIT;

static int key_fmt(em_dtype t) {
  switch (t) {
    case EM_U8: case EM_U16: case EM_U32: case EM_U64:
      return EM_CU_SK_UNSIGNED;
    case EM_S8: case EM_S16: case EM_S32: case EM_S64:
      return EM_CU_SK_SIGNED;
    case EM_F16: return EM_CU_SK_F16;
    case EM_BF16: return EM_CU_SK_BF16;
    case EM_F32: return EM_CU_SK_F32;
    case EM_F64: return EM_CU_SK_F64;
    default: return -1;
  }
}

static em_status sort_kernel(em_array *out, const em_node *node,
                             bool want_idx) {
  const char *name = want_idx ? "argsort" : "sort";
  const em_array *in = node->in[0];
  const em_dtype t = in->dtype;
  const int fmt = key_fmt(t);
  if (fmt < 0)
    return em_fail(EM_ERR_UNSUPPORTED, "[%s] %s arrays are not supported on CUDA",
                   name, em_dtype_name(t));
  const int axis = node->p.sort.axis;
  if (axis < 0 || axis >= in->ndim)
    return em_fail(EM_ERR_ARGUMENT, "[%s] axis %d out of range for rank %d",
                   name, axis, in->ndim);
  em_status st = em_alloc_output(out);
  if (st != EM_OK || out->size == 0) return st;
  if (in->shape[axis] == 1) { /* rows of one: the input, index 0 */
    if (!want_idx) return em_cu_copy_to(in, em_array_ptr(out));
    cudaStream_t s = em_cu_enter(out->dev.index);
    CU_TRY(name, cudaMemsetAsync(em_array_ptr(out), 0,
                                 (size_t)out->size * sizeof(int64_t), s));
    return EM_OK;
  }

  em_cu_sort_args a;
  memset(&a, 0, sizeof a);
  a.n = in->shape[axis];
  a.outer = 1;
  a.inner = 1;
  for (int i = 0; i < axis; i++) a.outer *= in->shape[i];
  for (int i = axis + 1; i < in->ndim; i++) a.inner *= in->shape[i];
  /* Row order: every other axis in order, then the sort axis; size-1 axes
   * dropped, runs merged. */
  int k = 0;
  for (int j = 0; j < in->ndim; j++) {
    int i = j < in->ndim - 1 ? (j < axis ? j : j + 1) : axis;
    if (in->shape[i] == 1) continue;
    if (k > 0 && a.st[k - 1] == in->strides[i] * in->shape[i]) {
      a.shape[k - 1] *= in->shape[i];
      a.st[k - 1] = in->strides[i];
    } else {
      a.shape[k] = in->shape[i];
      a.st[k] = in->strides[i];
      k++;
    }
  }
  a.nd = k;
  a.contig = k == 0 || (k == 1 && a.st[0] == 1);
  a.x = em_array_ptr(in);
  a.y = em_array_ptr(out);
  a.es = (int)em_dtype_size(t);
  a.fmt = fmt;
  a.desc = node->p.sort.descending;
  a.want_idx = want_idx;
  const int dev = out->dev.index;
  a.sms = em_cu_device_props(dev)->sms;
  /* One row, a few long rows, or rows past 2^32 elements: a device-wide
   * radix sort per row; otherwise one segmented sort of all rows (a row per
   * block or warp only fills the device when there are many). */
  const int64_t rows = a.outer * a.inner;
  const int64_t few = a.sms > 1 ? a.sms / 2 : 1;
  a.path = rows == 1 || (a.n >= ((int64_t)1 << 17) && rows <= few) ||
                   (uint64_t)a.n > UINT32_MAX
               ? EM_CU_SORT_PER_ROW
               : EM_CU_SORT_SEGMENTED;

  cudaStream_t s = em_cu_enter(dev);
  pthread_once(&g_warm, em_cu_sort_warmup);
  size_t bytes = 0;
  CU_TRY(name, em_cu_sort_scratch(&a, &bytes));
  void *scratch = em_alloc(out->dev, bytes, &st);
  if (!scratch) return st;
  cudaError_t e = em_cu_sort_launch(&a, scratch, bytes, s);
  em_free(out->dev, scratch, bytes);
  if (e != cudaSuccess) return em_cu_fail(e, name, "the CUB sort");
  return EM_OK;
}

em_status em_cu_k_sort(em_array *out, const em_node *node) {
  return sort_kernel(out, node, false);
}
em_status em_cu_k_argsort(em_array *out, const em_node *node) {
  return sort_kernel(out, node, true);
}
