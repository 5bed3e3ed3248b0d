/* fft-kernels.h — the small kernels around cuFFT (fft.cu), callable from C
 * (fft.c): staging rows for a transform (strided gather, zero padding or
 * truncation, type change for length-1 transforms, Hermitian clean-up) and
 * the 1/n scaling of inverse transforms. */
#ifndef EMILY_CUDA_FFT_KERNELS_H
#define EMILY_CUDA_FFT_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* dst is R rows of W elements, row-major. Row r is the source row whose
 * leading index is r unravelled over shape[0..nd) (row-major), starting at
 * sum idx[i]*stride[i]; dst[r, j] = src_row[j * last_stride] for j < cnt,
 * else 0. For complex destinations the imaginary part of columns zero_a
 * and zero_b is cleared (-1: none). Strides are in source elements. */
typedef struct {
  int nd;
  long long shape[16], stride[16];
  long long last_stride, cnt, W, R;
  long long zero_a, zero_b;
} em_cu_fft_stage;

enum {
  EM_CU_STAGE_F32,      /* f32 -> f32 */
  EM_CU_STAGE_F64,      /* f64 -> f64 */
  EM_CU_STAGE_C64,      /* c64 -> c64 */
  EM_CU_STAGE_C128,     /* c128 -> c128 */
  EM_CU_STAGE_F32_C64,  /* f32 -> c64 (imaginary 0) */
  EM_CU_STAGE_F64_C128, /* f64 -> c128 */
  EM_CU_STAGE_C64_F32,  /* c64 -> f32 (real part) */
  EM_CU_STAGE_C128_F64, /* c128 -> f64 */
};

cudaError_t em_cu_fft_stage_launch(int kind, const void *src, void *dst,
                                   const em_cu_fft_stage *p, int sms,
                                   cudaStream_t s);

/* x[i] *= scale for n reals (f64 if dbl, else f32 with scale rounded to
 * f32 first, as the CPU kernels' (T)(1.0 / n)). */
cudaError_t em_cu_fft_scale_launch(int dbl, void *x, long long n, double scale,
                                   int sms, cudaStream_t s);

#ifdef __cplusplus
}
#endif
#endif
