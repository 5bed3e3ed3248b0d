// dot_int.cu — em_dot of integer dtypes on CUDA (cuBLAS has no wrapping
// integer GEMM): a shared-memory tiled kernel over [batch, M, N].
//
// Semantics are the CPU's int_gemm_store (src/cpu/backend.c): products and
// sums wrap. Elements are read as unsigned and accumulated in u32 (8, 16
// and 32-bit types) or u64 (64-bit types), then truncated to the element
// width; modulo 2^w every order of the sum gives the same bits, so the
// result equals the CPU's exactly. s2 s4 u2 u4 (one per byte) are then
// wrapped to their width as the CPU's em_subbyte_wrap does.
//
// A is [M, K] row-major (ta: stored [K, M]), B is [K, N] (tb: stored
// [N, K]), C is [M, N] row-major; batches follow each other densely. Each
// block computes a 32x32 tile of C with 32x8 threads (4 outputs each),
// stepping through K in tiles of 32 held in shared memory; blocks stride
// over all (batch, tile) tasks.
#include "cuda-kernels.h"

namespace {

template <int ES> struct uelem;
template <> struct uelem<1> { typedef unsigned char t; };
template <> struct uelem<2> { typedef unsigned short t; };
template <> struct uelem<4> { typedef unsigned int t; };
template <> struct uelem<8> { typedef unsigned long long t; };

enum { TS = 32, TY = 8 };

template <class E, class U>
__device__ __forceinline__ E store_fix(U acc, int wrap) {
  E v = (E)acc;
  if (sizeof(E) == 1 && wrap) {
    int x = (int)(unsigned char)v;
    switch (wrap) {
      case 1: x = ((x & 3) ^ 2) - 2; break;  // s2
      case 2: x = ((x & 15) ^ 8) - 8; break; // s4
      case 3: x &= 3; break;                 // u2
      default: x &= 15; break;               // u4
    }
    v = (E)(unsigned char)(signed char)x;
  }
  return v;
}

template <int ES> struct uacc { typedef unsigned int t; };
template <> struct uacc<8> { typedef unsigned long long t; };

template <int ES>
__global__ void __launch_bounds__(TS * TY)
    dot_int_k(const void *__restrict__ Av, const void *__restrict__ Bv,
              void *__restrict__ Cv, long long batch, long long M, long long N,
              long long K, int ta, int tb, int wrap) {
  typedef typename uelem<ES>::t E;
  typedef typename uacc<ES>::t U;
  __shared__ U as[TS][TS + 1]; // as[i][k]
  __shared__ U bs[TS][TS + 1]; // bs[k][j]
  const E *A = (const E *)Av, *B = (const E *)Bv;
  E *C = (E *)Cv;
  const int tx = threadIdx.x, ty = threadIdx.y;
  const long long tm = (M + TS - 1) / TS, tn = (N + TS - 1) / TS;
  const long long tiles = tm * tn, tasks = batch * tiles;
  for (long long task = blockIdx.x; task < tasks; task += gridDim.x) {
    const long long b = task / tiles, rem = task - b * tiles;
    const long long i0 = (rem / tn) * TS, j0 = (rem % tn) * TS;
    const E *Ab = A + b * M * K, *Bb = B + b * K * N;
    U acc[TS / TY];
#pragma unroll
    for (int r = 0; r < TS / TY; r++) acc[r] = 0;
    for (long long k0 = 0; k0 < K; k0 += TS) {
#pragma unroll
      for (int r = 0; r < TS / TY; r++) {
        const int row = ty + r * TY;
        // A tile: element (i0 + row, k0 + tx)
        const long long i = i0 + row, k = k0 + tx;
        as[row][tx] = (i < M && k < K) ? (U)(ta ? Ab[k * M + i] : Ab[i * K + k]) : (U)0;
        // B tile: element (k0 + row, j0 + tx)
        const long long kk = k0 + row, j = j0 + tx;
        bs[row][tx] = (kk < K && j < N) ? (U)(tb ? Bb[j * K + kk] : Bb[kk * N + j]) : (U)0;
      }
      __syncthreads();
#pragma unroll 8
      for (int q = 0; q < TS; q++) {
        const U bv = bs[q][tx];
#pragma unroll
        for (int r = 0; r < TS / TY; r++) acc[r] += as[ty + r * TY][q] * bv;
      }
      __syncthreads();
    }
#pragma unroll
    for (int r = 0; r < TS / TY; r++) {
      const long long i = i0 + ty + r * TY, j = j0 + tx;
      if (i < M && j < N) C[b * M * N + i * N + j] = store_fix<E, U>(acc[r], wrap);
    }
  }
}

}  // namespace

extern "C" cudaError_t em_cu_dot_int_launch(const void *A, const void *B, void *C,
                                            int es, int wrap, int64_t batch,
                                            int64_t M, int64_t N, int64_t K,
                                            int ta, int tb, int sms,
                                            cudaStream_t s) {
  const long long tiles = ((M + TS - 1) / TS) * ((N + TS - 1) / TS);
  long long tasks = batch * tiles, cap = (long long)sms * 8;
  if (tasks < 1) return cudaSuccess;
  const unsigned grid = (unsigned)(tasks < cap ? tasks : cap);
  const dim3 block(TS, TY, 1);
  switch (es) {
    case 1: dot_int_k<1><<<grid, block, 0, s>>>(A, B, C, batch, M, N, K, ta, tb, wrap); break;
    case 2: dot_int_k<2><<<grid, block, 0, s>>>(A, B, C, batch, M, N, K, ta, tb, wrap); break;
    case 4: dot_int_k<4><<<grid, block, 0, s>>>(A, B, C, batch, M, N, K, ta, tb, wrap); break;
    case 8: dot_int_k<8><<<grid, block, 0, s>>>(A, B, C, batch, M, N, K, ta, tb, wrap); break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}
