/* cuda-kernels.h — launchers of the precompiled kernels (copy.cu), callable
 * from C. Pointers are device pointers already offset to element 0;
 * strides are in elements (may be negative). Each returns the launch's
 * cudaError_t. */
#ifndef EMILY_CUDA_KERNELS_H
#define EMILY_CUDA_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* dst[dst_st . idx] = src[src_st . idx] for every idx of shape; es is the
 * element size (1, 2, 4, 8 or 16). use32: every offset fits in int32. */
cudaError_t em_cu_copy_launch(const void *src, void *dst, int es, int nd,
                              const int64_t *shape, const int64_t *src_st,
                              const int64_t *dst_st, int64_t n, int use32,
                              int sms, cudaStream_t s);
/* n elements of es bytes set to *value_dev (device) if non-NULL, else to
 * the first es bytes of value (host). */
cudaError_t em_cu_fill_launch(void *dst, int es, int64_t n, const void *value,
                              const void *value_dev, int sms, cudaStream_t s);

/* Integer C[b] = A[b] B[b] with wrap-around (dot_int.cu): A is [M, K]
 * row-major (ta: stored [K, M]), B is [K, N] (tb: [N, K]), C is [M, N];
 * batch matrices follow each other densely. es: element bytes (1, 2, 4,
 * 8); wrap: 0, or s2 s4 u2 u4 as 1..4 (the result is then wrapped to that
 * width). */
cudaError_t em_cu_dot_int_launch(const void *A, const void *B, void *C, int es,
                                 int wrap, int64_t batch, int64_t M, int64_t N,
                                 int64_t K, int ta, int tb, int sms,
                                 cudaStream_t s);

#ifdef __cplusplus
}
#endif
#endif
