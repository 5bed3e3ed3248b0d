// fft.cu — the kernels around cuFFT (see fft-kernels.h): row staging and
// the inverse transforms' 1/n scaling.
#include "fft-kernels.h"

namespace {

template <class I, class O>
struct conv_t;
template <class T>
struct conv_t<T, T> {
  __device__ static T cv(T v) { return v; }
};
template <>
struct conv_t<float, float2> {
  __device__ static float2 cv(float v) { return make_float2(v, 0.0f); }
};
template <>
struct conv_t<double, double2> {
  __device__ static double2 cv(double v) { return make_double2(v, 0.0); }
};
template <>
struct conv_t<float2, float> {
  __device__ static float cv(float2 v) { return v.x; }
};
template <>
struct conv_t<double2, double> {
  __device__ static double cv(double2 v) { return v.x; }
};

template <class O>
__device__ inline O zero_of() { return O(); }
template <>
__device__ inline float2 zero_of<float2>() { return make_float2(0.0f, 0.0f); }
template <>
__device__ inline double2 zero_of<double2>() { return make_double2(0.0, 0.0); }

template <class O>
__device__ inline void clear_im(O &) {}
template <>
__device__ inline void clear_im<float2>(float2 &v) { v.y = 0.0f; }
template <>
__device__ inline void clear_im<double2>(double2 &v) { v.y = 0.0; }

template <class I, class O>
__global__ void __launch_bounds__(256)
    stage_k(const I *__restrict__ src, O *__restrict__ dst, em_cu_fft_stage p) {
  const long long n = p.R * p.W;
  const long long step = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += step) {
    const long long j = i % p.W;
    O v = zero_of<O>();
    if (j < p.cnt) {
      long long r = i / p.W, off = 0;
      for (int d = p.nd - 1; d >= 0; d--) {
        const long long q = r / p.shape[d];
        off += (r - q * p.shape[d]) * p.stride[d];
        r = q;
      }
      v = conv_t<I, O>::cv(src[off + j * p.last_stride]);
    }
    if (j == p.zero_a || j == p.zero_b) clear_im(v);
    dst[i] = v;
  }
}

template <class T>
__global__ void __launch_bounds__(256) scale_k(T *__restrict__ x, long long n,
                                               T s) {
  const long long step = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += step)
    x[i] *= s;
}

unsigned grid_for(long long n, int sms) {
  long long b = (n + 255) / 256, cap = (long long)(sms > 0 ? sms : 132) * 32;
  if (b > cap) b = cap;
  return (unsigned)(b < 1 ? 1 : b);
}

template <class I, class O>
cudaError_t stage(const void *src, void *dst, const em_cu_fft_stage *p, int sms,
                  cudaStream_t s) {
  stage_k<I, O><<<grid_for(p->R * p->W, sms), 256, 0, s>>>((const I *)src,
                                                           (O *)dst, *p);
  return cudaGetLastError();
}

}  // namespace

extern "C" cudaError_t em_cu_fft_stage_launch(int kind, const void *src,
                                              void *dst,
                                              const em_cu_fft_stage *p, int sms,
                                              cudaStream_t s) {
  if (p->R <= 0 || p->W <= 0) return cudaSuccess;
  if (p->nd < 0 || p->nd > 16) return cudaErrorInvalidValue;
  switch (kind) {
    case EM_CU_STAGE_F32: return stage<float, float>(src, dst, p, sms, s);
    case EM_CU_STAGE_F64: return stage<double, double>(src, dst, p, sms, s);
    case EM_CU_STAGE_C64: return stage<float2, float2>(src, dst, p, sms, s);
    case EM_CU_STAGE_C128: return stage<double2, double2>(src, dst, p, sms, s);
    case EM_CU_STAGE_F32_C64: return stage<float, float2>(src, dst, p, sms, s);
    case EM_CU_STAGE_F64_C128: return stage<double, double2>(src, dst, p, sms, s);
    case EM_CU_STAGE_C64_F32: return stage<float2, float>(src, dst, p, sms, s);
    case EM_CU_STAGE_C128_F64: return stage<double2, double>(src, dst, p, sms, s);
    default: return cudaErrorInvalidValue;
  }
}

extern "C" cudaError_t em_cu_fft_scale_launch(int dbl, void *x, long long n,
                                              double scale, int sms,
                                              cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  if (dbl)
    scale_k<double><<<grid_for(n, sms), 256, 0, s>>>((double *)x, n, scale);
  else
    scale_k<float><<<grid_for(n, sms), 256, 0, s>>>((float *)x, n, (float)scale);
  return cudaGetLastError();
}
