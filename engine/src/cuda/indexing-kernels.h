/* indexing-kernels.h — launchers of the precompiled indexing and
 * cumulative kernels (indexing.cu), callable from C (indexing.c). Plain
 * types only: the .cu side sees no engine header. Pointers are device
 * pointers already offset to element 0; strides are in elements (may be
 * negative or 0). Each launcher returns the first failing CUDA call's
 * cudaError_t (cudaSuccess when nothing had to run). */
#ifndef EMILY_CUDA_INDEXING_KERNELS_H
#define EMILY_CUDA_INDEXING_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EM_CU_IX_MAXD 16 /* EM_MAX_NDIM */

/* Element type codes: the values of em_dtype (indexing.c checks that). */
enum {
  EM_CU_T_U8 = 0, EM_CU_T_U16, EM_CU_T_U32, EM_CU_T_U64,
  EM_CU_T_S8, EM_CU_T_S16, EM_CU_T_S32, EM_CU_T_S64,
  EM_CU_T_F16, EM_CU_T_BF16, EM_CU_T_F32, EM_CU_T_F64,
  EM_CU_T_C64, EM_CU_T_C128
};

/* A gather-like op (gather, take, take_along_axis) as one loop over the
 * output (row-major, shape[0..nd)): output coordinate c reads the data
 * element
 *   sum_d c[d] * as[d] + sum_j clamp(idx[io + j * ics], dims[j]) * ast[j],
 *   io = sum_d c[d] * is[d]
 * where idx is read as int64 (u64 saturating) and clamp(v, D) puts v into
 * [0, D - 1]. */
typedef struct {
  int nd, k;
  int64_t shape[EM_CU_IX_MAXD], as[EM_CU_IX_MAXD], is[EM_CU_IX_MAXD];
  int64_t ics;
  int64_t dims[EM_CU_IX_MAXD], ast[EM_CU_IX_MAXD];
} em_cu_gather_desc;

/* n output elements of es bytes (1, 2, 4, 8, 16); it: index type code. */
cudaError_t em_cu_gather_launch(const void *src, void *dst, int es,
                                const void *idx, int it,
                                const em_cu_gather_desc *d, int64_t n,
                                int sms, cudaStream_t s);

/* Bounds check of count contiguous indices in rows of k columns (column j
 * indexes an axis of size dims[j]): *flag (device, 8 bytes) becomes the
 * smallest flat position of an out-of-range index, or stays all ones.
 * The launcher sets the flag itself first. */
cudaError_t em_cu_index_check_launch(const void *idx, int it, int64_t count,
                                     int k, const int64_t *dims,
                                     unsigned long long *flag, int sms,
                                     cudaStream_t s);

/* Scatter (indexed_add / indexed_put) in three steps:
 * 1. keys[r] = sum_j clamp(idx[r * k + j], dims[j]) * ost[j] (the row's
 *    element offset in the row-major target), vals[r] = r, for rows rows of
 *    contiguous indices;
 * 2. a stable sort of (keys, vals) by key (end_bit: bits the keys need);
 * 3. apply: for each run of equal sorted keys (a group) and each window
 *    element w (row-major over the update window, wnd dims wsh, target
 *    strides wst): put writes the group's last row's update; add writes
 *    target + (sum of the group's updates in row order, from 0: ints wrap,
 *    floats and complex parts in double, rounded once).
 * updates are contiguous [rows, W]. */
cudaError_t em_cu_scatter_keys_launch(const void *idx, int it, int64_t rows,
                                      int k, const int64_t *dims,
                                      const int64_t *ost,
                                      unsigned long long *keys,
                                      long long *vals, int sms,
                                      cudaStream_t s);
/* temp == NULL: *temp_bytes gets the scratch size, nothing runs. */
cudaError_t em_cu_scatter_sort(void *temp, size_t *temp_bytes,
                               const unsigned long long *keys_in,
                               unsigned long long *keys_out,
                               const long long *vals_in, long long *vals_out,
                               int64_t rows, int end_bit, cudaStream_t s);
cudaError_t em_cu_scatter_apply_launch(int dtype, int add, void *dst,
                                       const void *upd,
                                       const unsigned long long *keys,
                                       const long long *perm, int64_t rows,
                                       int64_t W, int wnd, const int64_t *wsh,
                                       const int64_t *wst, int sms,
                                       cudaStream_t s);

/* Cumulative op (kind 0 sum, 1 product, 2 max, 3 min) of contiguous x
 * [outer, n, inner] into contiguous y, forward or reversed along n.
 * em_cu_cumulative_scratch gives the device scratch the launch needs (0:
 * scratch may be NULL); both must get the same arguments. The launcher
 * returns cudaErrorInvalidValue for a (dtype, kind) without a kernel
 * (complex max/min, unknown codes). */
size_t em_cu_cumulative_scratch(int dtype, int64_t outer, int64_t n,
                                int64_t inner, int sms);
cudaError_t em_cu_cumulative_launch(int dtype, int kind, int rev,
                                    const void *x, void *y, int64_t outer,
                                    int64_t n, int64_t inner, void *scratch,
                                    int sms, cudaStream_t s);

#ifdef __cplusplus
}
#endif
#endif
