/* conv-kernels.h — the direct convolution kernel of conv.cu, callable from
 * C (conv.c). It is the CUDA conv for every dtype cuDNN lacks (integers,
 * complex) and the fallback for the ones it has (f16, bf16, f32, f64) when
 * cuDNN cannot take a problem (more than 3 spatial axes, sizes beyond its
 * int32 descriptors, no algorithm). Semantics: src/core/ops_conv.c. */
#ifndef EMILY_CUDA_CONV_KERNELS_H
#define EMILY_CUDA_CONV_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EM_CU_CONV_MAXS 14 /* spatial axes: EM_MAX_NDIM - 2 */

/* One output element per thread: out[n, o, p] (row-major, contiguous) =
 * sum over c < Ck and kernel positions q of
 *   in[n*sN + e*gstep + c*sC + sum_d x_d*istr[d]] * w[(o*Ck + c)*KS + q]
 * with e = o / Og and x_d = (p_d*s[d] + q_d*kd[d] - lo[d]) / id[d] where
 * that is an exact division landing in [0, isp[d]) (else the term is 0).
 * gstep is NB*sN when batch-grouped, Ck*sC when feature-grouped (0 when
 * neither). in may have any strides (in elements, any sign); w is
 * row-major [O, Ck, k...]. */
typedef struct {
  int ns;
  long long NB, O, Ck, Og, KS, P;
  long long sN, sC, gstep;
  long long isp[EM_CU_CONV_MAXS], istr[EM_CU_CONV_MAXS];
  long long ksp[EM_CU_CONV_MAXS], osp[EM_CU_CONV_MAXS];
  long long s[EM_CU_CONV_MAXS], lo[EM_CU_CONV_MAXS];
  long long id[EM_CU_CONV_MAXS], kd[EM_CU_CONV_MAXS];
} em_cu_conv_geom;

/* Element kinds: integers of each width (signed and unsigned alike:
 * products and sums wrap modulo 2^bits), f16/bf16 (f32 accumulation,
 * rounded once), f32, f64, c64, c128 (no conjugation). */
enum {
  EM_CU_CONV_I8,
  EM_CU_CONV_I16,
  EM_CU_CONV_I32,
  EM_CU_CONV_I64,
  EM_CU_CONV_F16,
  EM_CU_CONV_BF16,
  EM_CU_CONV_F32,
  EM_CU_CONV_F64,
  EM_CU_CONV_C64,
  EM_CU_CONV_C128,
};

/* total = NB * O * P output elements. */
cudaError_t em_cu_conv_direct_launch(int kind, const void *in, const void *w,
                                     void *out, const em_cu_conv_geom *g,
                                     long long total, int sms, cudaStream_t s);

#ifdef __cplusplus
}
#endif
#endif
