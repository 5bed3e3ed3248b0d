// copy.cu — the precompiled data-movement kernels: a strided copy between
// two layouts of one shape (views, em_contiguous, pad, concatenate,
// slices, put_slice) and a fill. Everything elementwise, reductions and row
// ops is compiled at run time instead (jit.c), so this file keeps the
// build small: 5 element sizes x 2 index widths.
#include <string.h>

#include "cuda-kernels.h"

namespace {

template <int ES> struct elem;
template <> struct elem<1> { typedef unsigned char t; };
template <> struct elem<2> { typedef unsigned short t; };
template <> struct elem<4> { typedef unsigned int t; };
template <> struct elem<8> { typedef unsigned long long t; };
struct __align__(16) e16 { unsigned long long a, b; };
template <> struct elem<16> { typedef e16 t; };

struct layout {
  int nd;
  long long shape[16], ss[16], ds[16];
};

template <int ES, class I>
__global__ void __launch_bounds__(256) copy_k(const char *__restrict__ src,
                                              char *__restrict__ dst, I n,
                                              layout L) {
  typedef typename elem<ES>::t E;
  const I stride = (I)gridDim.x * blockDim.x;
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    I r = i, so = 0, dof = 0;
    for (int d = L.nd - 1; d > 0; d--) {
      const I sh = (I)L.shape[d];
      const I q = r / sh, k = r - q * sh;
      r = q;
      so += k * (I)L.ss[d];
      dof += k * (I)L.ds[d];
    }
    so += r * (I)L.ss[0];
    dof += r * (I)L.ds[0];
    ((E *)dst)[dof] = ((const E *)src)[so];
  }
}

template <int ES>
__global__ void __launch_bounds__(256) fill_k(char *__restrict__ dst,
                                              long long n,
                                              typename elem<ES>::t v,
                                              const char *vp) {
  typedef typename elem<ES>::t E;
  if (vp) v = *(const E *)vp;
  const long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += stride)
    ((E *)dst)[i] = v;
}

unsigned grid_for(long long n, int sms) {
  long long b = (n + 255) / 256, cap = (long long)(sms > 0 ? sms : 132) * 32;
  if (b > cap) b = cap;
  return (unsigned)(b < 1 ? 1 : b);
}

template <int ES>
cudaError_t copy_es(const void *src, void *dst, const layout &L, long long n,
                    int use32, int sms, cudaStream_t s) {
  if (use32)
    copy_k<ES, int><<<grid_for(n, sms), 256, 0, s>>>(
        (const char *)src, (char *)dst, (int)n, L);
  else
    copy_k<ES, long long><<<grid_for(n, sms), 256, 0, s>>>(
        (const char *)src, (char *)dst, n, L);
  return cudaGetLastError();
}

template <int ES>
cudaError_t fill_es(void *dst, long long n, const void *value,
                    const void *value_dev, int sms, cudaStream_t s) {
  typename elem<ES>::t v;
  memset(&v, 0, sizeof v);
  if (value) memcpy(&v, value, ES);
  fill_k<ES><<<grid_for(n, sms), 256, 0, s>>>((char *)dst, n, v,
                                              (const char *)value_dev);
  return cudaGetLastError();
}

}  // namespace

extern "C" cudaError_t em_cu_copy_launch(const void *src, void *dst, int es,
                                         int nd, const int64_t *shape,
                                         const int64_t *src_st,
                                         const int64_t *dst_st, int64_t n,
                                         int use32, int sms, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  layout L;
  memset(&L, 0, sizeof L);
  L.nd = nd < 1 ? 1 : nd;
  L.shape[0] = 1;
  for (int i = 0; i < nd && i < 16; i++) {
    L.shape[i] = shape[i];
    L.ss[i] = src_st[i];
    L.ds[i] = dst_st[i];
  }
  switch (es) {
    case 1: return copy_es<1>(src, dst, L, n, use32, sms, s);
    case 2: return copy_es<2>(src, dst, L, n, use32, sms, s);
    case 4: return copy_es<4>(src, dst, L, n, use32, sms, s);
    case 8: return copy_es<8>(src, dst, L, n, use32, sms, s);
    case 16: return copy_es<16>(src, dst, L, n, use32, sms, s);
    default: return cudaErrorInvalidValue;
  }
}

extern "C" cudaError_t em_cu_fill_launch(void *dst, int es, int64_t n,
                                         const void *value,
                                         const void *value_dev, int sms,
                                         cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  switch (es) {
    case 1: return fill_es<1>(dst, n, value, value_dev, sms, s);
    case 2: return fill_es<2>(dst, n, value, value_dev, sms, s);
    case 4: return fill_es<4>(dst, n, value, value_dev, sms, s);
    case 8: return fill_es<8>(dst, n, value, value_dev, sms, s);
    case 16: return fill_es<16>(dst, n, value, value_dev, sms, s);
    default: return cudaErrorInvalidValue;
  }
}
