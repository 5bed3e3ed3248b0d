// sort.cu — EM_OP_sort / EM_OP_argsort on CUDA: CUB radix sorts on keys
// whose unsigned order is the wanted order, with the kernels around them.
//
// Keys are those of the CPU backend (src/cpu/sort.c), bit for bit:
// integers as they are (sign bit flipped for signed types); floats by their
// bit pattern (negative values inverted, the others with the sign bit set),
// every NaN mapped to the largest key and -0.0 to +0.0's key (Nx: all NaNs
// equal and above +inf, -0.0 equal to 0.0); descending complements the key,
// so a stable ascending sort of ~key is the stable descending sort (equal
// elements keep their input order). CUB's radix sorts are stable.
//
//  - argsort sorts (key, index) pairs (u32 indices, u64 for rows past
//    2^32 elements) and widens the indices to s64 into the output.
//  - sort of integers sorts keys only and turns them back into values.
//  - sort of floats sorts (key, element bits) pairs: NaN payloads and the
//    sign of zero, which the keys lose, travel with the elements, and
//    stability keeps zeros and NaNs in input order (as the CPU's fix-up).
//
// Rows: the input is read in row order (rows = outer x inner, each n
// elements contiguous, gathered through its strides by the key kernel).
// One row, or a few long ones, go through cub::DeviceRadixSort (onesweep)
// row by row; many rows through cub::DeviceSegmentedSort (warp / block
// sorts for short segments, block radix sorts for long ones). Results in
// row order are written back to [outer, n, inner] by the output kernel,
// or land in the output directly when inner == 1.
// No NVTX ranges: they are function-local statics, and the engine is
// built with -fno-threadsafe-statics (sort.c calls CUB from many threads).
#define CCCL_DISABLE_NVTX
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_segmented_sort.cuh>
#include <stdint.h>
#include <string.h>

#include <type_traits>

#include "sort-kernels.h"

namespace {

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

struct glayout {
  int nd;
  long long shape[16], st[16];
};

// Element functions are __host__ __device__ (the kernels call them; a host
// build of this file can too, to check the index arithmetic without a GPU).
#define HD __host__ __device__ __forceinline__

// Key of element bits b (ascending order); FMT: EM_CU_SK_*.
template <class K, int FMT>
HD K to_key(K b) {
  const K sg = (K)((K)1 << (8 * sizeof(K) - 1));
  if (FMT == EM_CU_SK_UNSIGNED) return b;
  if (FMT == EM_CU_SK_SIGNED) return (K)(b ^ sg);
  const K inf = FMT == EM_CU_SK_F16    ? (K)0x7c00u
                : FMT == EM_CU_SK_BF16 ? (K)0x7f80u
                : FMT == EM_CU_SK_F32  ? (K)0x7f800000u
                                       : (K)0x7ff0000000000000ull;
  const K a = (K)(b & (K)~sg);
  if (a > inf) return (K)~(K)0;  // NaN: above everything
  if (a == 0) return sg;         // -0.0 and +0.0: +0.0's key
  return (b & sg) ? (K)~b : (K)(b | sg);
}

unsigned grid_for(long long n, int sms) {
  long long b = (n + 255) / 256, cap = (long long)(sms > 0 ? sms : 132) * 32;
  if (b > cap) b = cap;
  return (unsigned)(b < 1 ? 1 : b);
}

// keys[q] = key(x at row-order position q) ^ flip; vals[q] = its bits (when
// vals); idx[q] = q % n (when isz is 4 or 8).
template <class K, int FMT>
HD void prep_one(const K *__restrict__ x, const glayout &L, int contig,
                 long long n, K flip, K *__restrict__ keys,
                 K *__restrict__ vals, void *__restrict__ idx, int isz,
                 long long q) {
  long long off;
  if (contig) {
    off = q;
  } else {
    long long r = q;
    off = 0;
    for (int d = L.nd - 1; d > 0; d--) {
      const long long sh = L.shape[d];
      const long long qq = r / sh;
      off += (r - qq * sh) * L.st[d];
      r = qq;
    }
    off += r * L.st[0];
  }
  const K b = x[off];
  keys[q] = (K)(to_key<K, FMT>(b) ^ flip);
  if (vals) vals[q] = b;
  if (isz == 4) ((u32 *)idx)[q] = (u32)(q % n);
  else if (isz == 8) ((u64 *)idx)[q] = (u64)(q % n);
}

template <class K, int FMT>
__global__ void __launch_bounds__(256)
    prep_k(const K *__restrict__ x, glayout L, int contig, long long N,
           long long n, K flip, K *__restrict__ keys, K *__restrict__ vals,
           void *__restrict__ idx, int isz) {
  const long long stride = (long long)gridDim.x * blockDim.x;
  for (long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x; q < N;
       q += stride)
    prep_one<K, FMT>(x, L, contig, n, flip, keys, vals, idx, isz, q);
}

// Output element q of [outer, n, inner] from row-order results: mode 0: K
// keys back to element bits (k ^ unflip); 1: K element bits as they are;
// 2: u32 indices to s64; 3: u64 indices to s64.
template <class K>
HD void finish_one(const void *__restrict__ src, void *__restrict__ y,
                   long long n, long long inner, int mode, K unflip,
                   long long q) {
  long long s = q;
  if (inner != 1) {
    const long long plane = n * inner;
    const long long o = q / plane, rem = q - o * plane;
    const long long j = rem / inner, i = rem - j * inner;
    s = (o * inner + i) * n + j;
  }
  switch (mode) {
    case 0: ((K *)y)[q] = (K)(((const K *)src)[s] ^ unflip); break;
    case 1: ((K *)y)[q] = ((const K *)src)[s]; break;
    case 2: ((long long *)y)[q] = (long long)((const u32 *)src)[s]; break;
    default: ((long long *)y)[q] = (long long)((const u64 *)src)[s]; break;
  }
}

template <class K>
__global__ void __launch_bounds__(256)
    finish_k(const void *__restrict__ src, void *__restrict__ y, long long N,
             long long n, long long inner, int mode, K unflip) {
  const long long stride = (long long)gridDim.x * blockDim.x;
  for (long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x; q < N;
       q += stride)
    finish_one<K>(src, y, n, inner, mode, unflip, q);
}

__global__ void offsets_k(long long *off, long long rows, long long n) {
  const long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
       i <= rows; i += stride)
    off[i] = i * n;
}

// One CUB call: a device-wide radix sort of items [0, n) (per-row path) or
// a segmented sort of every row (segmented path). V = void: keys only.
template <class K, class V>
struct cubsort {
  static cudaError_t radix(void *t, size_t &tb, const K *ki, K *ko,
                           const V *vi, V *vo, long long n, cudaStream_t s) {
    return cub::DeviceRadixSort::SortPairs(t, tb, ki, ko, vi, vo, n, 0,
                                           (int)(8 * sizeof(K)), s);
  }
  static cudaError_t seg(void *t, size_t &tb, const K *ki, K *ko, const V *vi,
                         V *vo, long long N, long long rows,
                         const long long *off, cudaStream_t s) {
    return cub::DeviceSegmentedSort::StableSortPairs(t, tb, ki, ko, vi, vo, N,
                                                     rows, off, off + 1, s);
  }
};
template <class K>
struct cubsort<K, void> {
  static cudaError_t radix(void *t, size_t &tb, const K *ki, K *ko,
                           const void *, void *, long long n, cudaStream_t s) {
    return cub::DeviceRadixSort::SortKeys(t, tb, ki, ko, n, 0,
                                          (int)(8 * sizeof(K)), s);
  }
  static cudaError_t seg(void *t, size_t &tb, const K *ki, K *ko, const void *,
                         void *, long long N, long long rows,
                         const long long *off, cudaStream_t s) {
    return cub::DeviceSegmentedSort::StableSortKeys(t, tb, ki, ko, N, rows, off,
                                                    off + 1, s);
  }
};

size_t al256(size_t b) { return (b + 255) & ~(size_t)255; }

// The scratch plan of one sort; with base == NULL only sizes are computed
// (and CUB is asked for its temporary bytes).
struct plan {
  char *keys_in, *keys_out, *vals_in, *vals_out, *idx_in, *idx_out;
  long long *off;
  void *cub_tmp;
  size_t cub_bytes, total;
};

// p + k, where keys-only sorts pass void pointers (unused).
template <class V>
V *adv(V *p, long long k) {
  return p ? p + k : p;
}
inline void *adv(void *p, long long) { return p; }
inline const void *adv(const void *p, long long) { return p; }

template <class K, class V>
cudaError_t cub_call(const em_cu_sort_args *a, void *t, size_t &tb,
                     const plan &p, cudaStream_t s) {
  const long long rows = a->outer * a->inner, n = a->n, N = rows * n;
  const K *ki = (const K *)p.keys_in;
  K *ko = (K *)p.keys_out;
  const V *vi = (const V *)(a->want_idx ? p.idx_in : p.vals_in);
  V *vo = (V *)(a->want_idx ? p.idx_out : p.vals_out);
  // u64 indices only come with rows past 2^32 elements, which sort.c sorts
  // row by row: no segmented instantiation for them. u64 *values* (the
  // bits of f64 elements, K = u64) do take the segmented path.
  if (a->path == EM_CU_SORT_SEGMENTED) {
    if constexpr (std::is_same<V, u64>::value && !std::is_same<K, u64>::value) {
      return cudaErrorInvalidValue;
    } else {
      if (a->want_idx && std::is_same<V, u64>::value) return cudaErrorInvalidValue;
      return cubsort<K, V>::seg(t, tb, ki, ko, vi, vo, N, rows, p.off, s);
    }
  }
  if (!t) return cubsort<K, V>::radix(t, tb, ki, ko, vi, vo, n, s);
  for (long long r = 0; r < rows; r++) {
    size_t b = tb;
    cudaError_t e = cubsort<K, V>::radix(t, b, ki + r * n, ko + r * n,
                                         adv(vi, r * n), adv(vo, r * n), n, s);
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

// The value type of the CUB sort: void (keys), K (element bits), u32/u64.
template <class K>
cudaError_t cub_dispatch(const em_cu_sort_args *a, void *t, size_t &tb,
                         const plan &p, int isz, cudaStream_t s) {
  if (a->want_idx)
    return isz == 4 ? cub_call<K, u32>(a, t, tb, p, s)
                    : cub_call<K, u64>(a, t, tb, p, s);
  if (a->fmt == EM_CU_SK_UNSIGNED || a->fmt == EM_CU_SK_SIGNED)
    return cub_call<K, void>(a, t, tb, p, s);
  if constexpr (sizeof(K) > 1) return cub_call<K, K>(a, t, tb, p, s);
  return cudaErrorInvalidValue;  // no 8-bit floats
}

bool is_float(int fmt) {
  return fmt != EM_CU_SK_UNSIGNED && fmt != EM_CU_SK_SIGNED;
}

// Lays out the scratch (base NULL: sizes only).
template <class K>
cudaError_t make_plan(const em_cu_sort_args *a, char *base, plan &p,
                      int *isz_out) {
  memset(&p, 0, sizeof p);
  const long long rows = a->outer * a->inner, n = a->n, N = rows * n;
  const size_t kb = al256((size_t)N * sizeof(K));
  const int isz = a->want_idx ? ((unsigned long long)n > 0xffffffffull ? 8 : 4)
                              : 0;
  *isz_out = isz;
  size_t at = 0;
  auto take = [&](size_t bytes) -> char * {
    char *r = base ? base + at : NULL;
    at += al256(bytes);
    return r;
  };
  p.keys_in = take(kb);
  p.keys_out = take(kb);
  if (a->want_idx) {
    p.idx_in = take((size_t)N * isz);
    p.idx_out = take((size_t)N * isz);
  } else if (is_float(a->fmt)) {
    p.vals_in = a->contig ? (char *)a->x : take(kb);
    p.vals_out = a->inner == 1 ? (char *)a->y : take(kb);
  }
  if (a->path == EM_CU_SORT_SEGMENTED)
    p.off = (long long *)take((size_t)(rows + 1) * sizeof(long long));
  // CUB's own bytes: asked with no storage (pointers are not touched).
  size_t tb = 0;
  cudaError_t e = cub_dispatch<K>(a, NULL, tb, p, isz, 0);
  if (e != cudaSuccess) return e;
  p.cub_bytes = tb ? tb : 1;
  p.cub_tmp = take(p.cub_bytes);
  p.total = at;
  return cudaSuccess;
}

template <class K, int FMT>
cudaError_t run(const em_cu_sort_args *a, void *scratch, size_t bytes,
                cudaStream_t s) {
  plan p;
  int isz;
  cudaError_t e = make_plan<K>(a, (char *)scratch, p, &isz);
  if (e != cudaSuccess) return e;
  if (p.total > bytes) return cudaErrorInvalidValue;
  const long long rows = a->outer * a->inner, n = a->n, N = rows * n;
  const K flip = a->desc ? (K)~(K)0 : (K)0;
  glayout L;
  memset(&L, 0, sizeof L);
  L.nd = a->nd < 1 ? 1 : (a->nd > 16 ? 16 : a->nd);
  L.shape[0] = 1;
  for (int i = 0; i < a->nd && i < 16; i++) {
    L.shape[i] = a->shape[i];
    L.st[i] = a->st[i];
  }
  const bool float_vals = !a->want_idx && is_float(FMT);
  K *vals_gather = float_vals && !a->contig ? (K *)p.vals_in : NULL;
  prep_k<K, FMT><<<grid_for(N, a->sms), 256, 0, s>>>(
      (const K *)a->x, L, a->contig, N, n, flip, (K *)p.keys_in, vals_gather,
      p.idx_in, isz);
  e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  if (a->path == EM_CU_SORT_SEGMENTED) {
    offsets_k<<<grid_for(rows + 1, a->sms), 256, 0, s>>>(p.off, rows, n);
    e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  size_t tb = p.cub_bytes;
  e = cub_dispatch<K>(a, p.cub_tmp, tb, p, isz, s);
  if (e != cudaSuccess) return e;
  int mode;
  const void *src;
  K unflip = 0;
  if (a->want_idx) {
    mode = isz == 4 ? 2 : 3;
    src = p.idx_out;
  } else if (float_vals) {
    if (a->inner == 1) return cudaSuccess;  // sorted straight into y
    mode = 1;
    src = p.vals_out;
  } else {
    mode = 0;
    src = p.keys_out;
    unflip = (K)(flip ^ (FMT == EM_CU_SK_SIGNED
                             ? (K)((K)1 << (8 * sizeof(K) - 1))
                             : (K)0));
  }
  finish_k<K><<<grid_for(N, a->sms), 256, 0, s>>>(src, a->y, N, n, a->inner,
                                                   mode, unflip);
  return cudaGetLastError();
}

typedef cudaError_t (*run_fn)(const em_cu_sort_args *, void *, size_t,
                              cudaStream_t);

run_fn pick(int es, int fmt) {
  switch (es * 16 + fmt) {
    case 1 * 16 + EM_CU_SK_UNSIGNED: return run<u8, EM_CU_SK_UNSIGNED>;
    case 1 * 16 + EM_CU_SK_SIGNED: return run<u8, EM_CU_SK_SIGNED>;
    case 2 * 16 + EM_CU_SK_UNSIGNED: return run<u16, EM_CU_SK_UNSIGNED>;
    case 2 * 16 + EM_CU_SK_SIGNED: return run<u16, EM_CU_SK_SIGNED>;
    case 2 * 16 + EM_CU_SK_F16: return run<u16, EM_CU_SK_F16>;
    case 2 * 16 + EM_CU_SK_BF16: return run<u16, EM_CU_SK_BF16>;
    case 4 * 16 + EM_CU_SK_UNSIGNED: return run<u32, EM_CU_SK_UNSIGNED>;
    case 4 * 16 + EM_CU_SK_SIGNED: return run<u32, EM_CU_SK_SIGNED>;
    case 4 * 16 + EM_CU_SK_F32: return run<u32, EM_CU_SK_F32>;
    case 8 * 16 + EM_CU_SK_UNSIGNED: return run<u64, EM_CU_SK_UNSIGNED>;
    case 8 * 16 + EM_CU_SK_SIGNED: return run<u64, EM_CU_SK_SIGNED>;
    case 8 * 16 + EM_CU_SK_F64: return run<u64, EM_CU_SK_F64>;
    default: return NULL;
  }
}

}  // namespace

// CUB keeps function-local statics (device count, per-device PTX / SM
// version caches); the engine is built with -fno-threadsafe-statics, so
// they are constructed once here, under sort.c's pthread_once, before any
// two threads can race to construct them.
extern "C" void em_cu_sort_warmup(void) {
  try {
    int v = 0;
    (void)cub::DeviceCount();
    (void)cub::PtxVersion(v);
    (void)cub::SmVersion(v);
  } catch (...) {
  }
  (void)cudaGetLastError();
}

// No exception may cross into C: the entry points catch everything (CUB
// reports errors by return value; this is only a guard).
extern "C" cudaError_t em_cu_sort_scratch(const em_cu_sort_args *a,
                                          size_t *bytes) try {
  *bytes = 0;
  if (!pick(a->es, a->fmt)) return cudaErrorInvalidValue;
  plan p;
  int isz;
  cudaError_t e;
  switch (a->es) {
    case 1: e = make_plan<u8>(a, NULL, p, &isz); break;
    case 2: e = make_plan<u16>(a, NULL, p, &isz); break;
    case 4: e = make_plan<u32>(a, NULL, p, &isz); break;
    default: e = make_plan<u64>(a, NULL, p, &isz); break;
  }
  if (e == cudaSuccess) *bytes = p.total;
  return e;
} catch (...) {
  return cudaErrorUnknown;
}

extern "C" cudaError_t em_cu_sort_launch(const em_cu_sort_args *a,
                                         void *scratch, size_t bytes,
                                         cudaStream_t s) try {
  if (a->outer * a->inner * a->n <= 0) return cudaSuccess;
  run_fn f = pick(a->es, a->fmt);
  if (!f) return cudaErrorInvalidValue;
  return f(a, scratch, bytes, s);
} catch (...) {
  return cudaErrorUnknown;
}
