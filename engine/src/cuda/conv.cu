// conv.cu — the direct convolution kernel (see conv-kernels.h): one thread
// per output element walks the kernel window once, and for each kernel
// position that meets an input element (not padding, not an input-dilation
// hole) runs over the group's input channels. Integers accumulate in the
// unsigned type of their width (or 32 bits for narrower ones), which is
// exact modulo 2^bits for signed and unsigned alike, as the CPU kernel;
// f16/bf16 accumulate in f32 and round once.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "conv-kernels.h"

namespace {

template <class TT, class AA>
struct IntK {
  typedef TT T;
  typedef AA A;
  __device__ static A zero() { return 0; }
  __device__ static void mad(A &acc, T x, T w) { acc += (A)x * (A)w; }
  __device__ static T st(A a) { return (T)a; }
};

struct F16K {
  typedef unsigned short T;
  typedef float A;
  __device__ static float ld(T v) { return __half2float(__ushort_as_half(v)); }
  __device__ static A zero() { return 0.0f; }
  __device__ static void mad(A &acc, T x, T w) { acc = fmaf(ld(x), ld(w), acc); }
  __device__ static T st(A a) { return __half_as_ushort(__float2half_rn(a)); }
};

struct BF16K {
  typedef unsigned short T;
  typedef float A;
  __device__ static float ld(T v) {
    return __bfloat162float(__ushort_as_bfloat16(v));
  }
  __device__ static A zero() { return 0.0f; }
  __device__ static void mad(A &acc, T x, T w) { acc = fmaf(ld(x), ld(w), acc); }
  __device__ static T st(A a) {
    return __bfloat16_as_ushort(__float2bfloat16_rn(a));
  }
};

struct F32K {
  typedef float T;
  typedef float A;
  __device__ static A zero() { return 0.0f; }
  __device__ static void mad(A &acc, T x, T w) { acc = fmaf(x, w, acc); }
  __device__ static T st(A a) { return a; }
};

struct F64K {
  typedef double T;
  typedef double A;
  __device__ static A zero() { return 0.0; }
  __device__ static void mad(A &acc, T x, T w) { acc = fma(x, w, acc); }
  __device__ static T st(A a) { return a; }
};

struct C64K {
  typedef float2 T;
  typedef float2 A;
  __device__ static A zero() { return make_float2(0.0f, 0.0f); }
  __device__ static void mad(A &acc, T x, T w) {
    acc.x += x.x * w.x - x.y * w.y;
    acc.y += x.x * w.y + x.y * w.x;
  }
  __device__ static T st(A a) { return a; }
};

struct C128K {
  typedef double2 T;
  typedef double2 A;
  __device__ static A zero() { return make_double2(0.0, 0.0); }
  __device__ static void mad(A &acc, T x, T w) {
    acc.x += x.x * w.x - x.y * w.y;
    acc.y += x.x * w.y + x.y * w.x;
  }
  __device__ static T st(A a) { return a; }
};

template <class K>
__global__ void __launch_bounds__(256)
    conv_direct_k(const typename K::T *__restrict__ x,
                  const typename K::T *__restrict__ w,
                  typename K::T *__restrict__ y, long long total,
                  em_cu_conv_geom g) {
  typedef typename K::T T;
  typedef typename K::A A;
  const long long step = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
       i < total; i += step) {
    long long p = i % g.P, t = i / g.P;
    const long long o = t % g.O, n = t / g.O;
    const long long e = o / g.Og;
    const long long base = n * g.sN + e * g.gstep;
    long long org[EM_CU_CONV_MAXS], kidx[EM_CU_CONV_MAXS];
    for (int d = g.ns - 1; d >= 0; d--) {
      const long long od = p % g.osp[d];
      p /= g.osp[d];
      org[d] = od * g.s[d] - g.lo[d];
      kidx[d] = 0;
    }
    A acc = K::zero();
    const T *wr = w + o * g.Ck * g.KS;
    for (long long q = 0; q < g.KS; q++) {
      long long off = base;
      bool ok = true;
      for (int d = 0; d < g.ns; d++) {
        long long xd = org[d] + kidx[d] * g.kd[d];
        if (xd < 0) {
          ok = false;
          break;
        }
        if (g.id[d] != 1) {
          if (xd % g.id[d] != 0) {
            ok = false;
            break;
          }
          xd /= g.id[d];
        }
        if (xd >= g.isp[d]) {
          ok = false;
          break;
        }
        off += xd * g.istr[d];
      }
      if (ok) {
        const T *xp = x + off;
        const T *wp = wr + q;
        for (long long c = 0; c < g.Ck; c++)
          K::mad(acc, xp[c * g.sC], wp[c * g.KS]);
      }
      for (int d = g.ns - 1; d >= 0; d--) {
        if (++kidx[d] < g.ksp[d]) break;
        kidx[d] = 0;
      }
    }
    y[i] = K::st(acc);
  }
}

unsigned grid_for(long long n, int sms) {
  long long b = (n + 255) / 256, cap = (long long)(sms > 0 ? sms : 132) * 32;
  if (b > cap) b = cap;
  return (unsigned)(b < 1 ? 1 : b);
}

template <class K>
cudaError_t launch(const void *in, const void *w, void *out,
                   const em_cu_conv_geom *g, long long total, int sms,
                   cudaStream_t s) {
  typedef typename K::T T;
  conv_direct_k<K><<<grid_for(total, sms), 256, 0, s>>>(
      (const T *)in, (const T *)w, (T *)out, total, *g);
  return cudaGetLastError();
}

}  // namespace

extern "C" cudaError_t em_cu_conv_direct_launch(int kind, const void *in,
                                                const void *w, void *out,
                                                const em_cu_conv_geom *g,
                                                long long total, int sms,
                                                cudaStream_t s) {
  if (total <= 0) return cudaSuccess;
  if (g->ns < 1 || g->ns > EM_CU_CONV_MAXS) return cudaErrorInvalidValue;
  switch (kind) {
    case EM_CU_CONV_I8:
      return launch<IntK<unsigned char, unsigned> >(in, w, out, g, total, sms, s);
    case EM_CU_CONV_I16:
      return launch<IntK<unsigned short, unsigned> >(in, w, out, g, total, sms, s);
    case EM_CU_CONV_I32:
      return launch<IntK<unsigned, unsigned> >(in, w, out, g, total, sms, s);
    case EM_CU_CONV_I64:
      return launch<IntK<unsigned long long, unsigned long long> >(in, w, out, g,
                                                                   total, sms, s);
    case EM_CU_CONV_F16: return launch<F16K>(in, w, out, g, total, sms, s);
    case EM_CU_CONV_BF16: return launch<BF16K>(in, w, out, g, total, sms, s);
    case EM_CU_CONV_F32: return launch<F32K>(in, w, out, g, total, sms, s);
    case EM_CU_CONV_F64: return launch<F64K>(in, w, out, g, total, sms, s);
    case EM_CU_CONV_C64: return launch<C64K>(in, w, out, g, total, sms, s);
    case EM_CU_CONV_C128: return launch<C128K>(in, w, out, g, total, sms, s);
    default: return cudaErrorInvalidValue;
  }
}
