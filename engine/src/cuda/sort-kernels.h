/* sort-kernels.h — the launchers of sort.cu (CUB radix sorts plus the key
 * and output kernels around them), callable from C (sort.c). Pointers are
 * device pointers already offset to element 0; strides are in elements and
 * may be negative. Each launcher returns the first cudaError_t it met. */
#ifndef EMILY_CUDA_SORT_KERNELS_H
#define EMILY_CUDA_SORT_KERNELS_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How element bits turn into keys (see sort.cu). */
enum {
  EM_CU_SK_UNSIGNED = 0,
  EM_CU_SK_SIGNED = 1,
  EM_CU_SK_F16 = 2,
  EM_CU_SK_BF16 = 3,
  EM_CU_SK_F32 = 4,
  EM_CU_SK_F64 = 5,
};

/* Sort paths: one device-wide radix sort per row, or one segmented sort
 * over all rows. */
enum { EM_CU_SORT_PER_ROW = 0, EM_CU_SORT_SEGMENTED = 1 };

typedef struct {
  /* The input read in "row order": rows (outer x inner) of n elements.
   * Shape and strides (elements) of that order, the sort axis last, after
   * dropping size-1 axes and merging runs; contig: it is plain row-major
   * (x[q] is element q), so no index arithmetic is needed. */
  int nd;
  int64_t shape[16], st[16];
  int contig;
  const void *x;
  void *y; /* the output, contiguous [outer, n, inner] (s64 for argsort) */
  int64_t outer, n, inner;
  int es;   /* element (= key) bytes: 1, 2, 4, 8 */
  int fmt;  /* EM_CU_SK_* */
  int desc; /* descending: the keys are complemented */
  int want_idx;
  int path; /* EM_CU_SORT_* */
  int sms;
} em_cu_sort_args;

/* Bytes of device scratch em_cu_sort_launch needs for a (one block, carved
 * up by the launcher; 256-byte aligned pieces). */
cudaError_t em_cu_sort_scratch(const em_cu_sort_args *a, size_t *bytes);
/* Queues the whole sort on s. scratch: at least em_cu_sort_scratch bytes. */
cudaError_t em_cu_sort_launch(const em_cu_sort_args *a, void *scratch,
                              size_t bytes, cudaStream_t s);

#ifdef __cplusplus
}
#endif
#endif
