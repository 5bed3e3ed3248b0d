// indexing.cu — the precompiled kernels of the indexing family (gather,
// take, take_along_axis, indexed_add, indexed_put) and of cumulative
// scans; the host logic (layouts, bounds-check reporting, scratch memory)
// is in indexing.c. Semantics are src/cpu/indexing.c's and
// src/cpu/cumulative.c's:
//
//  - indices of any integer type are read as int64 (u64 above INT64_MAX
//    saturates) and clamped into [0, size - 1];
//  - gather-like ops are one grid-stride loop over the output, reading the
//    data through its own strides (no copy of a strided view);
//  - scatter sorts the index rows by target offset (CUB's stable radix
//    sort), so each group of rows hitting one position is resolved by one
//    thread per window element in row order, as the CPU does: put lets the
//    last row win, add sums from 0 in row order (ints wrap; floats and
//    complex parts in double) and adds the sum to the target, rounding
//    once. Results are deterministic and equal the CPU's bit for bit;
//  - cumulative scans keep the input dtype (ints wrap in unsigned
//    arithmetic; f16/bf16 accumulate in f32, rounding each output once;
//    max/min let NaN win). Columns (inner > 1, or short rows) are scanned
//    by one thread each, sequentially (the CPU's order); long contiguous
//    rows by a warp each (shuffle scans, so float sums/products round in a
//    tree order as the CPU's vector scan does). When there are too few
//    rows/columns to fill the GPU, the scanned axis is split into chunks:
//    fold each chunk, scan the folds, rescan each chunk from its carry.
#include <limits.h>
#include <string.h>

#include <cub/device/device_radix_sort.cuh>

#include "indexing-kernels.h"

namespace {

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char s8;
typedef short s16;
typedef int s32;
typedef long long s64;

struct __align__(8) cf { float r, i; };
struct __align__(16) cd { double r, i; };

template <int ES> struct elem;
template <> struct elem<1> { typedef u8 t; };
template <> struct elem<2> { typedef u16 t; };
template <> struct elem<4> { typedef u32 t; };
template <> struct elem<8> { typedef u64 t; };
template <> struct elem<16> { typedef cd t; };

unsigned grid_for(long long tasks, int sms, int per_sm) {
  long long cap = (long long)(sms > 0 ? sms : 132) * per_sm;
  if (tasks > cap) tasks = cap;
  return (unsigned)(tasks < 1 ? 1 : tasks);
}

// ---- indices -------------------------------------------------------------

__device__ __forceinline__ long long ld_index(const char *p, long long off,
                                              int it) {
  switch (it) {
    case EM_CU_T_U8: return ((const u8 *)p)[off];
    case EM_CU_T_U16: return ((const u16 *)p)[off];
    case EM_CU_T_U32: return ((const u32 *)p)[off];
    case EM_CU_T_U64: {
      const u64 v = ((const u64 *)p)[off];
      return v > (u64)LLONG_MAX ? LLONG_MAX : (long long)v;
    }
    case EM_CU_T_S8: return ((const s8 *)p)[off];
    case EM_CU_T_S16: return ((const s16 *)p)[off];
    case EM_CU_T_S32: return ((const s32 *)p)[off];
    default: return ((const s64 *)p)[off];
  }
}

__device__ __forceinline__ long long clampi(long long v, long long d) {
  const long long c = v >= d ? d - 1 : v;
  return c < 0 ? 0 : c;
}

// ---- gather-like ops -------------------------------------------------------

template <int ES, class I>
__global__ void __launch_bounds__(256)
    gather_k(const char *__restrict__ src, char *__restrict__ dst,
             const char *__restrict__ idx, int it, I n, em_cu_gather_desc d) {
  typedef typename elem<ES>::t E;
  const I stride = (I)gridDim.x * blockDim.x;
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    I r = i;
    long long so = 0, io = 0;
    for (int a = d.nd - 1; a > 0; a--) {
      const I sh = (I)d.shape[a];
      const I q = r / sh, c = r - q * sh;
      r = q;
      so += (long long)c * d.as[a];
      io += (long long)c * d.is[a];
    }
    so += (long long)r * d.as[0];
    io += (long long)r * d.is[0];
    for (int j = 0; j < d.k; j++)
      so += clampi(ld_index(idx, io + (long long)j * d.ics, it), d.dims[j]) *
            d.ast[j];
    ((E *)dst)[i] = ((const E *)src)[so];
  }
}

template <int ES>
cudaError_t gather_es(const void *src, void *dst, const void *idx, int it,
                      const em_cu_gather_desc &d, long long n, int sms,
                      cudaStream_t s) {
  const unsigned g = grid_for((n + 255) / 256, sms, 32);
  // 32-bit counters when i + the grid stride cannot overflow
  if (n < (1ll << 30))
    gather_k<ES, int><<<g, 256, 0, s>>>((const char *)src, (char *)dst,
                                        (const char *)idx, it, (int)n, d);
  else
    gather_k<ES, long long><<<g, 256, 0, s>>>(
        (const char *)src, (char *)dst, (const char *)idx, it, n, d);
  return cudaGetLastError();
}

// ---- bounds check ----------------------------------------------------------

struct dims16 {
  long long d[EM_CU_IX_MAXD];
};

__global__ void __launch_bounds__(256)
    check_k(const char *__restrict__ idx, int it, long long count, int k,
            dims16 dims, u64 *flag) {
  const long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
       i < count; i += stride) {
    const int j = (int)(i % k);
    const long long v = ld_index(idx, i, it);
    if (v < 0 || v >= dims.d[j]) atomicMin(flag, (u64)i);
  }
}

// ---- scatter -----------------------------------------------------------------

struct keys_desc {
  int k;
  long long dims[EM_CU_IX_MAXD], ost[EM_CU_IX_MAXD];
};

__global__ void __launch_bounds__(256)
    keys_k(const char *__restrict__ idx, int it, long long rows, keys_desc d,
           u64 *__restrict__ keys, long long *__restrict__ vals) {
  const long long stride = (long long)gridDim.x * blockDim.x;
  for (long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x;
       r < rows; r += stride) {
    long long off = 0;
    for (int j = 0; j < d.k; j++)
      off += clampi(ld_index(idx, r * d.k + j, it), d.dims[j]) * d.ost[j];
    keys[r] = (u64)off;
    vals[r] = r;
  }
}

struct win_desc {
  int nd;
  long long sh[EM_CU_IX_MAXD], st[EM_CU_IX_MAXD];
};

// f16 / bf16 <-> f32 / f64, bit-exact ports of src/core/half.h.

__device__ __forceinline__ float f16_to_f32(u16 h) {
  const u32 sign = (u32)(h & 0x8000u) << 16;
  const u32 e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  const u32 normal = ((e + 112u) << 23) | (m << 13);
  const u32 special = 0x7f800000u | (m << 13);
  const u32 sub = __float_as_uint(__fmul_rn((float)(int)m, 5.9604644775390625e-8f));
  const u32 r = e == 0 ? sub : e == 31 ? special : normal;
  return __uint_as_float(sign | r);
}

__device__ __forceinline__ u16 f32_to_f16(float f) {
  const u32 x = __float_as_uint(f);
  const u32 sign = (x >> 16) & 0x8000u;
  const u32 a = x & 0x7fffffffu;
  const u32 rn = a - 0x38000000u;
  const u32 normal = (rn + 0xfffu + ((rn >> 13) & 1u)) >> 13;
  const u32 sub = __float_as_uint(__fadd_rn(__uint_as_float(a), 0.5f)) - 0x3f000000u;
  const u32 nan = 0x7e00u | ((a >> 13) & 0x3ffu);
  u32 r;
  if (a > 0x7f800000u) r = nan;
  else if (a >= 0x47800000u) r = 0x7c00u;
  else if (a >= 0x38800000u) r = normal;
  else r = sub;
  return (u16)(sign | r);
}

__device__ __forceinline__ u16 f64_to_f16(double d) {
  const u64 x = (u64)__double_as_longlong(d);
  const u64 sign = (x >> 48) & 0x8000u;
  const u64 a = x & 0x7fffffffffffffffull;
  const u64 rn = a - ((u64)(1023 - 15) << 52);
  const u64 normal = (rn + ((1ull << 41) - 1u) + ((rn >> 42) & 1u)) >> 42;
  const u64 sub = (u64)__double_as_longlong(__dadd_rn(
                      __longlong_as_double((long long)a), 268435456.0)) -
                  0x41b0000000000000ull;
  const u64 nan = 0x7e00u | ((a >> 42) & 0x3ffu);
  u64 r;
  if (a > 0x7ff0000000000000ull) r = nan;
  else if (a >= ((u64)1039 << 52)) r = 0x7c00u;
  else if (a >= ((u64)1009 << 52)) r = normal;
  else r = sub;
  return (u16)(sign | r);
}

__device__ __forceinline__ float bf16_to_f32(u16 h) {
  return __uint_as_float((u32)h << 16);
}

__device__ __forceinline__ u16 f32_to_bf16(float f) {
  const u32 x = __float_as_uint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (u16)((x >> 16) | 0x40u);
  return (u16)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

__device__ __forceinline__ u16 f64_to_bf16(double d) {
  const u64 x = (u64)__double_as_longlong(d);
  const u64 sign = (x >> 48) & 0x8000u;
  const u64 a = x & 0x7fffffffffffffffull;
  const u64 rn = a - ((u64)(1023 - 127) << 52);
  const u64 normal = (rn + ((1ull << 44) - 1u) + ((rn >> 45) & 1u)) >> 45;
  // 2^-81
  const u64 sub = (u64)__double_as_longlong(__dadd_rn(
                      __longlong_as_double((long long)a),
                      __longlong_as_double(0x3ae0000000000000ll))) -
                  0x3ae0000000000000ull;
  const u64 nan = 0x7fc0u | ((a >> 45) & 0x7fu);
  u64 r;
  if (a > 0x7ff0000000000000ull) r = nan;
  else if (a >= ((u64)1151 << 52)) r = 0x7f80u;
  else if (a >= ((u64)897 << 52)) r = normal;
  else r = sub;
  return (u16)(sign | r);
}

// Scatter-add accumulation per dtype: zero, add one update, and the final
// target + sum (CPU: ACC_FNS in src/cpu/indexing.c).
template <class T_> struct AddInt {  // T_: the unsigned type of the size
  typedef T_ T;
  typedef u64 Acc;
  static __device__ Acc zero() { return 0; }
  static __device__ void add(Acc &a, T u) { a += (u64)u; }
  static __device__ T fin(T x, Acc a) { return (T)((u64)x + a); }
};
struct AddF16 {
  typedef u16 T;
  typedef double Acc;
  static __device__ Acc zero() { return 0.0; }
  static __device__ void add(Acc &a, T u) { a = __dadd_rn(a, (double)f16_to_f32(u)); }
  static __device__ T fin(T x, Acc a) { return f64_to_f16(__dadd_rn((double)f16_to_f32(x), a)); }
};
struct AddBF16 {
  typedef u16 T;
  typedef double Acc;
  static __device__ Acc zero() { return 0.0; }
  static __device__ void add(Acc &a, T u) { a = __dadd_rn(a, (double)bf16_to_f32(u)); }
  static __device__ T fin(T x, Acc a) { return f64_to_bf16(__dadd_rn((double)bf16_to_f32(x), a)); }
};
struct AddF32 {
  typedef float T;
  typedef double Acc;
  static __device__ Acc zero() { return 0.0; }
  static __device__ void add(Acc &a, T u) { a = __dadd_rn(a, (double)u); }
  static __device__ T fin(T x, Acc a) { return __double2float_rn(__dadd_rn((double)x, a)); }
};
struct AddF64 {
  typedef double T;
  typedef double Acc;
  static __device__ Acc zero() { return 0.0; }
  static __device__ void add(Acc &a, T u) { a = __dadd_rn(a, u); }
  static __device__ T fin(T x, Acc a) { return __dadd_rn(x, a); }
};
struct AddC64 {
  typedef cf T;
  typedef cd Acc;
  static __device__ Acc zero() { return cd{0.0, 0.0}; }
  static __device__ void add(Acc &a, T u) {
    a.r = __dadd_rn(a.r, (double)u.r);
    a.i = __dadd_rn(a.i, (double)u.i);
  }
  static __device__ T fin(T x, Acc a) {
    return cf{__double2float_rn(__dadd_rn((double)x.r, a.r)),
              __double2float_rn(__dadd_rn((double)x.i, a.i))};
  }
};
struct AddC128 {
  typedef cd T;
  typedef cd Acc;
  static __device__ Acc zero() { return cd{0.0, 0.0}; }
  static __device__ void add(Acc &a, T u) {
    a.r = __dadd_rn(a.r, u.r);
    a.i = __dadd_rn(a.i, u.i);
  }
  static __device__ T fin(T x, Acc a) {
    return cd{__dadd_rn(x.r, a.r), __dadd_rn(x.i, a.i)};
  }
};

template <class I>
__device__ __forceinline__ long long win_off(I w, const win_desc &d) {
  long long off = 0;
  for (int a = d.nd - 1; a > 0; a--) {
    const I sh = (I)d.sh[a];
    const I q = w / sh;
    off += (long long)(w - q * sh) * d.st[a];
    w = q;
  }
  if (d.nd > 0) off += (long long)w * d.st[0];
  return off;
}

// One thread per (sorted row i, window element w); only the first row of
// each group works (groups are disjoint windows: no races).
template <class AT, bool ADD, class I>
__global__ void __launch_bounds__(256)
    scatter_k(char *__restrict__ dst, const char *__restrict__ upd,
              const u64 *__restrict__ keys, const long long *__restrict__ perm,
              I rows, I W, I n, win_desc wd) {
  typedef typename AT::T T;
  const I stride = (I)gridDim.x * blockDim.x;
  for (I t = (I)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += stride) {
    const I i = t / W, w = t - i * W;
    const u64 key = keys[i];
    if (i > 0 && keys[i - 1] == key) continue;
    T *tg = (T *)dst + (long long)key + win_off(w, wd);
    const T *u = (const T *)upd;
    if constexpr (!ADD) {
      I j = i;
      while (j + 1 < rows && keys[j + 1] == key) j++;
      *tg = u[perm[j] * (long long)W + w];
    } else {
      typename AT::Acc acc = AT::zero();
      for (I j = i; j < rows && keys[j] == key; j++)
        AT::add(acc, u[perm[j] * (long long)W + w]);
      *tg = AT::fin(*tg, acc);
    }
  }
}

template <int ES> struct PutT {
  typedef typename elem<ES>::t T;
  typedef int Acc;
  static __device__ Acc zero() { return 0; }
  static __device__ void add(Acc &, T) {}
  static __device__ T fin(T x, Acc) { return x; }
};

template <class AT, bool ADD>
cudaError_t scatter_t(void *dst, const void *upd, const u64 *keys,
                      const long long *perm, long long rows, long long W,
                      const win_desc &wd, int sms, cudaStream_t s) {
  const long long n = rows * W;
  const unsigned g = grid_for((n + 255) / 256, sms, 32);
  if (n < (1ll << 30))
    scatter_k<AT, ADD, int><<<g, 256, 0, s>>>((char *)dst, (const char *)upd,
                                              keys, perm, (int)rows, (int)W,
                                              (int)n, wd);
  else
    scatter_k<AT, ADD, long long><<<g, 256, 0, s>>>(
        (char *)dst, (const char *)upd, keys, perm, rows, W, n, wd);
  return cudaGetLastError();
}

// ---- cumulative -------------------------------------------------------------

// Storage type T, accumulator type A, and the conversions.
template <class T_> struct TrId {
  typedef T_ T;
  typedef T_ A;
  static __device__ __forceinline__ A ld(T v) { return v; }
  static __device__ __forceinline__ T st(A v) { return v; }
};
struct TrF16 {
  typedef u16 T;
  typedef float A;
  static __device__ __forceinline__ A ld(T v) { return f16_to_f32(v); }
  static __device__ __forceinline__ T st(A v) { return f32_to_f16(v); }
};
struct TrBF16 {
  typedef u16 T;
  typedef float A;
  static __device__ __forceinline__ A ld(T v) { return bf16_to_f32(v); }
  static __device__ __forceinline__ T st(A v) { return f32_to_bf16(v); }
};

// Integers wrap (unsigned arithmetic of at least 32 bits); floats round
// each operation (no contraction).
#define EM_IOPS(T, U)                                                     \
  __device__ __forceinline__ T add_(T a, T b) { return (T)((U)a + (U)b); } \
  __device__ __forceinline__ T mul_(T a, T b) { return (T)((U)a * (U)b); }
EM_IOPS(u8, u32)
EM_IOPS(u16, u32)
EM_IOPS(u32, u32)
EM_IOPS(u64, u64)
EM_IOPS(s8, u32)
EM_IOPS(s16, u32)
EM_IOPS(s32, u32)
EM_IOPS(s64, u64)
#undef EM_IOPS
__device__ __forceinline__ float add_(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float mul_(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double add_(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ double mul_(double a, double b) { return __dmul_rn(a, b); }

__device__ __forceinline__ float sub_(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double sub_(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ bool isnan_(float x) { return x != x; }
__device__ __forceinline__ bool isnan_(double x) { return x != x; }
__device__ __forceinline__ bool isinf_(float x) { return fabsf(x) == __int_as_float(0x7f800000); }
__device__ __forceinline__ bool isinf_(double x) {
  return fabs(x) == __longlong_as_double(0x7ff0000000000000ll);
}
__device__ __forceinline__ float inf_of(float) { return __int_as_float(0x7f800000); }
__device__ __forceinline__ double inf_of(double) { return __longlong_as_double(0x7ff0000000000000ll); }
__device__ __forceinline__ float csign(float m, float s) { return copysignf(m, s); }
__device__ __forceinline__ double csign(double m, double s) { return copysign(m, s); }

// C99 complex multiply as GCC does it: the naive product, and Annex G's
// recovery (libgcc's __mulsc3 / __muldc3) when both parts are NaN.
template <class C, class F>
__device__ __forceinline__ C cmul(C z, C w) {
  F a = z.r, b = z.i, c = w.r, d = w.i;
  const F ac = mul_(a, c), bd = mul_(b, d), ad = mul_(a, d), bc = mul_(b, c);
  F x = sub_(ac, bd), y = add_(ad, bc);
  if (isnan_(x) && isnan_(y)) {
    bool recalc = false;
    const F one = (F)1, zero = (F)0;
    if (isinf_(a) || isinf_(b)) {
      a = csign(isinf_(a) ? one : zero, a);
      b = csign(isinf_(b) ? one : zero, b);
      if (isnan_(c)) c = csign(zero, c);
      if (isnan_(d)) d = csign(zero, d);
      recalc = true;
    }
    if (isinf_(c) || isinf_(d)) {
      c = csign(isinf_(c) ? one : zero, c);
      d = csign(isinf_(d) ? one : zero, d);
      if (isnan_(a)) a = csign(zero, a);
      if (isnan_(b)) b = csign(zero, b);
      recalc = true;
    }
    if (!recalc && (isinf_(ac) || isinf_(bd) || isinf_(ad) || isinf_(bc))) {
      if (isnan_(a)) a = csign(zero, a);
      if (isnan_(b)) b = csign(zero, b);
      if (isnan_(c)) c = csign(zero, c);
      if (isnan_(d)) d = csign(zero, d);
      recalc = true;
    }
    if (recalc) {
      const F inf = inf_of(a);
      x = mul_(inf, sub_(mul_(a, c), mul_(b, d)));
      y = mul_(inf, add_(mul_(a, d), mul_(b, c)));
    }
  }
  return C{x, y};
}
__device__ __forceinline__ cf add_(cf a, cf b) { return cf{add_(a.r, b.r), add_(a.i, b.i)}; }
__device__ __forceinline__ cd add_(cd a, cd b) { return cd{add_(a.r, b.r), add_(a.i, b.i)}; }
__device__ __forceinline__ cf mul_(cf a, cf b) { return cmul<cf, float>(a, b); }
__device__ __forceinline__ cd mul_(cd a, cd b) { return cmul<cd, double>(a, b); }

// op(earlier, later). Max/min: the later value wins when strictly greater
// (smaller) or NaN — associative, so any scan order gives the CPU's bits.
struct OpSum {
  template <class A> static __device__ __forceinline__ A f(A a, A b) { return add_(a, b); }
};
struct OpProd {
  template <class A> static __device__ __forceinline__ A f(A a, A b) { return mul_(a, b); }
};
struct OpMax {
  template <class A> static __device__ __forceinline__ A f(A a, A b) {
    return (b > a || b != b) ? b : a;
  }
};
struct OpMin {
  template <class A> static __device__ __forceinline__ A f(A a, A b) {
    return (b < a || b != b) ? b : a;
  }
};

// Warp shuffles of any trivially copyable value of up to 16 bytes.
template <class A> __device__ __forceinline__ A shfl_up(A v, int d) {
  constexpr int W = (int)((sizeof(A) + 3) / 4);
  int w[W];
#pragma unroll
  for (int i = 0; i < W; i++) w[i] = 0;
  memcpy(w, &v, sizeof(A));
#pragma unroll
  for (int i = 0; i < W; i++) w[i] = __shfl_up_sync(0xffffffffu, w[i], d);
  A r;
  memcpy(&r, w, sizeof(A));
  return r;
}
template <class A> __device__ __forceinline__ A shfl_idx(A v, int src) {
  constexpr int W = (int)((sizeof(A) + 3) / 4);
  int w[W];
#pragma unroll
  for (int i = 0; i < W; i++) w[i] = 0;
  memcpy(w, &v, sizeof(A));
#pragma unroll
  for (int i = 0; i < W; i++) w[i] = __shfl_sync(0xffffffffu, w[i], src);
  A r;
  memcpy(&r, w, sizeof(A));
  return r;
}

// Modes of the chunk kernels: write the outputs (starting from the carry
// part[previous chunk] when the chunk is not the first), or only fold the
// chunk into part[chunk].
enum { M_OUT = 0, M_FOLD = 1 };

// Columns: one thread per (outer o, chunk s, column j), sequential over
// the chunk's logical positions [s*C, min(n, (s+1)*C)); logical p is
// physical n-1-p when reversed.
template <class Tr, class Op>
__global__ void __launch_bounds__(256)
    cum_col_k(const typename Tr::T *__restrict__ x, typename Tr::T *__restrict__ y,
              typename Tr::A *__restrict__ part, long long outer, long long n,
              long long inner, long long S, long long C, int rev, int mode) {
  typedef typename Tr::A A;
  const long long total = outer * S * inner;
  const long long stride = (long long)gridDim.x * blockDim.x;
  for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
       t < total; t += stride) {
    const long long j = t % inner, q = t / inner;
    const long long s = q % S, o = q / S;
    const long long lo = s * C;
    const long long hi = lo + C < n ? lo + C : n;
    if (lo >= hi) continue;
    const long long base = o * n * inner + j;
    bool has = mode == M_OUT && s > 0;
    A acc = has ? part[(o * S + s - 1) * inner + j] : A();
    for (long long p = lo; p < hi; p++) {
      const long long at = base + (rev ? n - 1 - p : p) * inner;
      const A v = Tr::ld(x[at]);
      acc = has ? Op::f(acc, v) : v;
      has = true;
      if (mode == M_OUT) y[at] = Tr::st(acc);
    }
    if (mode == M_FOLD) part[(o * S + s) * inner + j] = acc;
  }
}

// In place over part [outer, S, inner]: the inclusive scan along S.
template <class A, class Op>
__global__ void __launch_bounds__(256)
    cum_carry_k(A *part, long long outer, long long S, long long inner) {
  const long long cols = outer * inner;
  const long long stride = (long long)gridDim.x * blockDim.x;
  for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
       t < cols; t += stride) {
    const long long j = t % inner, o = t / inner;
    A *p = part + o * S * inner + j;
    A run = p[0];
    for (long long s = 1; s < S; s++) {
      run = Op::f(run, p[s * inner]);
      p[s * inner] = run;
    }
  }
}

// Contiguous rows (inner == 1): one warp per (row o, chunk s), 4 tiles of
// 32 elements per step (loads first, then the 4 shuffle scans). x may
// equal y (the in-place scan of the chunk folds).
#define ROW_STEP 128
template <class Tr, class Op>
__global__ void __launch_bounds__(256)
    cum_row_k(const typename Tr::T *x, typename Tr::T *y, typename Tr::A *part,
              long long outer, long long n, long long S, long long C, int rev,
              int mode) {
  typedef typename Tr::A A;
  const int lane = threadIdx.x & 31;
  const long long wpb = blockDim.x >> 5;
  const long long total = outer * S;
  for (long long q = (long long)blockIdx.x * wpb + (threadIdx.x >> 5); q < total;
       q += (long long)gridDim.x * wpb) {
    const long long o = q / S, s = q - o * S;
    const long long lo = s * C;
    const long long hi = lo + C < n ? lo + C : n;
    const long long base = o * n;
    bool has = mode == M_OUT && s > 0;
    A carry = has ? part[o * S + s - 1] : A();
    for (long long p0 = lo; p0 < hi; p0 += ROW_STEP) {
      A v[4];
#pragma unroll
      for (int u = 0; u < 4; u++) {
        const long long p = p0 + u * 32 + lane;
        v[u] = p < hi ? Tr::ld(x[base + (rev ? n - 1 - p : p)]) : A();
      }
#pragma unroll
      for (int u = 0; u < 4; u++) {
        const long long t0 = p0 + u * 32;
        if (t0 >= hi) break;  // warp-uniform
#pragma unroll
        for (int d = 1; d < 32; d <<= 1) {
          const A w = shfl_up(v[u], d);
          if (lane >= d) v[u] = Op::f(w, v[u]);
        }
        if (has) v[u] = Op::f(carry, v[u]);
        const long long p = t0 + lane;
        if (mode == M_OUT && p < hi) y[base + (rev ? n - 1 - p : p)] = Tr::st(v[u]);
        const long long last = hi - 1 - t0;
        carry = shfl_idx(v[u], last < 31 ? (int)last : 31);
        has = true;
      }
    }
    if (mode == M_FOLD && lane == 0) part[o * S + s] = carry;
  }
}

// The plan: row kernel or column kernel, and S chunks of C along n.
struct cum_plan {
  bool row;
  long long S, C;
};

cum_plan plan_for(long long outer, long long n, long long inner, int sms) {
  cum_plan p;
  const long long nsm = sms > 0 ? sms : 132;
  p.row = inner == 1 && n > 32;
  long long S;
  if (p.row) {
    const long long target = nsm * 32;  // warps
    S = outer >= target ? 1 : (target + outer - 1) / outer;
    const long long most = (n + 1023) / 1024;
    if (S > most) S = most;
  } else {
    const long long cols = outer * inner, target = nsm * 2048;  // threads
    S = cols >= target ? 1 : (target + cols - 1) / cols;
    const long long most = (n + 63) / 64;
    if (S > most) S = most;
    if (S > 1024) S = 1024;  // the carry pass is sequential over S
  }
  if (S < 1) S = 1;
  long long C = (n + S - 1) / S;
  if (p.row) C = (C + ROW_STEP - 1) / ROW_STEP * ROW_STEP;
  if (C < 1) C = 1;
  p.S = (n + C - 1) / C;
  if (p.S < 1) p.S = 1;
  p.C = C;
  return p;
}

template <class Tr, class Op>
cudaError_t cum_run(int rev, const void *xv, void *yv, long long outer,
                    long long n, long long inner, void *scratch, int sms,
                    cudaStream_t s) {
  typedef typename Tr::T T;
  typedef typename Tr::A A;
  if (outer <= 0 || n <= 0 || inner <= 0) return cudaSuccess;
  const T *x = (const T *)xv;
  T *y = (T *)yv;
  const cum_plan p = plan_for(outer, n, inner, sms);
  A *part = (A *)scratch;
  if (p.S > 1 && !part) return cudaErrorInvalidValue;
  cudaError_t e;
  if (p.row) {
    const unsigned g = grid_for((outer * p.S + 7) / 8, sms, 32);
    if (p.S > 1) {
      cum_row_k<Tr, Op><<<g, 256, 0, s>>>(x, y, part, outer, n, p.S, p.C, rev, M_FOLD);
      if ((e = cudaGetLastError()) != cudaSuccess) return e;
      // scan the folds of each row in place: rows of S, one chunk each
      cum_row_k<TrId<A>, Op><<<grid_for((outer + 7) / 8, sms, 32), 256, 0, s>>>(
          part, part, part, outer, p.S, 1, p.S, 0, M_OUT);
      if ((e = cudaGetLastError()) != cudaSuccess) return e;
    }
    cum_row_k<Tr, Op><<<g, 256, 0, s>>>(x, y, part, outer, n, p.S, p.C, rev, M_OUT);
    return cudaGetLastError();
  }
  const unsigned g = grid_for((outer * p.S * inner + 255) / 256, sms, 32);
  if (p.S > 1) {
    cum_col_k<Tr, Op><<<g, 256, 0, s>>>(x, y, part, outer, n, inner, p.S, p.C, rev, M_FOLD);
    if ((e = cudaGetLastError()) != cudaSuccess) return e;
    cum_carry_k<A, Op><<<grid_for((outer * inner + 255) / 256, sms, 32), 256, 0, s>>>(
        part, outer, p.S, inner);
    if ((e = cudaGetLastError()) != cudaSuccess) return e;
  }
  cum_col_k<Tr, Op><<<g, 256, 0, s>>>(x, y, part, outer, n, inner, p.S, p.C, rev, M_OUT);
  return cudaGetLastError();
}

template <class Tr>
cudaError_t cum_real(int kind, int rev, const void *x, void *y, long long outer,
                     long long n, long long inner, void *scratch, int sms,
                     cudaStream_t s) {
  switch (kind) {
    case 0: return cum_run<Tr, OpSum>(rev, x, y, outer, n, inner, scratch, sms, s);
    case 1: return cum_run<Tr, OpProd>(rev, x, y, outer, n, inner, scratch, sms, s);
    case 2: return cum_run<Tr, OpMax>(rev, x, y, outer, n, inner, scratch, sms, s);
    case 3: return cum_run<Tr, OpMin>(rev, x, y, outer, n, inner, scratch, sms, s);
    default: return cudaErrorInvalidValue;
  }
}

template <class Tr>
cudaError_t cum_cplx(int kind, int rev, const void *x, void *y, long long outer,
                     long long n, long long inner, void *scratch, int sms,
                     cudaStream_t s) {
  switch (kind) {
    case 0: return cum_run<Tr, OpSum>(rev, x, y, outer, n, inner, scratch, sms, s);
    case 1: return cum_run<Tr, OpProd>(rev, x, y, outer, n, inner, scratch, sms, s);
    default: return cudaErrorInvalidValue;
  }
}

size_t acc_size(int dtype) {
  switch (dtype) {
    case EM_CU_T_U8: case EM_CU_T_S8: return 1;
    case EM_CU_T_U16: case EM_CU_T_S16: return 2;
    case EM_CU_T_U32: case EM_CU_T_S32: case EM_CU_T_F32:
    case EM_CU_T_F16: case EM_CU_T_BF16: return 4;  // f32 accumulator
    case EM_CU_T_C128: return 16;
    default: return 8;
  }
}

}  // namespace

// ---- launchers --------------------------------------------------------------

extern "C" cudaError_t em_cu_gather_launch(const void *src, void *dst, int es,
                                           const void *idx, int it,
                                           const em_cu_gather_desc *d,
                                           int64_t n, int sms, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  em_cu_gather_desc D = *d;
  if (D.nd < 1) {
    D.nd = 1;
    D.shape[0] = 1;
    D.as[0] = D.is[0] = 0;
  }
  switch (es) {
    case 1: return gather_es<1>(src, dst, idx, it, D, n, sms, s);
    case 2: return gather_es<2>(src, dst, idx, it, D, n, sms, s);
    case 4: return gather_es<4>(src, dst, idx, it, D, n, sms, s);
    case 8: return gather_es<8>(src, dst, idx, it, D, n, sms, s);
    case 16: return gather_es<16>(src, dst, idx, it, D, n, sms, s);
    default: return cudaErrorInvalidValue;
  }
}

extern "C" cudaError_t em_cu_index_check_launch(const void *idx, int it,
                                                int64_t count, int k,
                                                const int64_t *dims,
                                                unsigned long long *flag,
                                                int sms, cudaStream_t s) {
  cudaError_t e = cudaMemsetAsync(flag, 0xff, sizeof *flag, s);
  if (e != cudaSuccess || count <= 0) return e;
  if (k < 1 || k > EM_CU_IX_MAXD) return cudaErrorInvalidValue;
  dims16 D;
  memset(&D, 0, sizeof D);
  for (int j = 0; j < k; j++) D.d[j] = dims[j];
  check_k<<<grid_for((count + 255) / 256, sms, 32), 256, 0, s>>>(
      (const char *)idx, it, count, k, D, flag);
  return cudaGetLastError();
}

extern "C" cudaError_t em_cu_scatter_keys_launch(
    const void *idx, int it, int64_t rows, int k, const int64_t *dims,
    const int64_t *ost, unsigned long long *keys, long long *vals, int sms,
    cudaStream_t s) {
  if (rows <= 0) return cudaSuccess;
  if (k < 0 || k > EM_CU_IX_MAXD) return cudaErrorInvalidValue;
  keys_desc D;
  memset(&D, 0, sizeof D);
  D.k = k;
  for (int j = 0; j < k; j++) {
    D.dims[j] = dims[j];
    D.ost[j] = ost[j];
  }
  keys_k<<<grid_for((rows + 255) / 256, sms, 32), 256, 0, s>>>(
      (const char *)idx, it, rows, D, keys, vals);
  return cudaGetLastError();
}

extern "C" cudaError_t em_cu_scatter_sort(void *temp, size_t *temp_bytes,
                                          const unsigned long long *keys_in,
                                          unsigned long long *keys_out,
                                          const long long *vals_in,
                                          long long *vals_out, int64_t rows,
                                          int end_bit, cudaStream_t s) {
  if (end_bit < 1) end_bit = 1;
  if (end_bit > 64) end_bit = 64;
  if (rows <= INT_MAX)
    return cub::DeviceRadixSort::SortPairs(temp, *temp_bytes, keys_in, keys_out,
                                           vals_in, vals_out, (int)rows, 0,
                                           end_bit, s);
  return cub::DeviceRadixSort::SortPairs(temp, *temp_bytes, keys_in, keys_out,
                                         vals_in, vals_out, (long long)rows, 0,
                                         end_bit, s);
}

extern "C" cudaError_t em_cu_scatter_apply_launch(
    int dtype, int add, void *dst, const void *upd,
    const unsigned long long *keys, const long long *perm, int64_t rows,
    int64_t W, int wnd, const int64_t *wsh, const int64_t *wst, int sms,
    cudaStream_t s) {
  if (rows <= 0 || W <= 0) return cudaSuccess;
  if (wnd < 0 || wnd > EM_CU_IX_MAXD) return cudaErrorInvalidValue;
  win_desc wd;
  memset(&wd, 0, sizeof wd);
  wd.nd = wnd;
  for (int i = 0; i < wnd; i++) {
    wd.sh[i] = wsh[i];
    wd.st[i] = wst[i];
  }
#define SC(AT, ADD) scatter_t<AT, ADD>(dst, upd, keys, perm, rows, W, wd, sms, s)
  if (!add) {
    switch (dtype) {
      case EM_CU_T_U8: case EM_CU_T_S8: return SC(PutT<1>, false);
      case EM_CU_T_U16: case EM_CU_T_S16: case EM_CU_T_F16: case EM_CU_T_BF16:
        return SC(PutT<2>, false);
      case EM_CU_T_U32: case EM_CU_T_S32: case EM_CU_T_F32: return SC(PutT<4>, false);
      case EM_CU_T_U64: case EM_CU_T_S64: case EM_CU_T_F64: case EM_CU_T_C64:
        return SC(PutT<8>, false);
      case EM_CU_T_C128: return SC(PutT<16>, false);
      default: return cudaErrorInvalidValue;
    }
  }
  switch (dtype) {
    case EM_CU_T_U8: case EM_CU_T_S8: return SC(AddInt<u8>, true);
    case EM_CU_T_U16: case EM_CU_T_S16: return SC(AddInt<u16>, true);
    case EM_CU_T_U32: case EM_CU_T_S32: return SC(AddInt<u32>, true);
    case EM_CU_T_U64: case EM_CU_T_S64: return SC(AddInt<u64>, true);
    case EM_CU_T_F16: return SC(AddF16, true);
    case EM_CU_T_BF16: return SC(AddBF16, true);
    case EM_CU_T_F32: return SC(AddF32, true);
    case EM_CU_T_F64: return SC(AddF64, true);
    case EM_CU_T_C64: return SC(AddC64, true);
    case EM_CU_T_C128: return SC(AddC128, true);
    default: return cudaErrorInvalidValue;
  }
#undef SC
}

extern "C" size_t em_cu_cumulative_scratch(int dtype, int64_t outer, int64_t n,
                                           int64_t inner, int sms) {
  if (outer <= 0 || n <= 0 || inner <= 0) return 0;
  const cum_plan p = plan_for(outer, n, inner, sms);
  if (p.S <= 1) return 0;
  return (size_t)(outer * p.S * inner) * acc_size(dtype);
}

extern "C" cudaError_t em_cu_cumulative_launch(int dtype, int kind, int rev,
                                               const void *x, void *y,
                                               int64_t outer, int64_t n,
                                               int64_t inner, void *scratch,
                                               int sms, cudaStream_t s) {
#define CR(TR) cum_real<TR>(kind, rev, x, y, outer, n, inner, scratch, sms, s)
  switch (dtype) {
    case EM_CU_T_U8: return CR(TrId<u8>);
    case EM_CU_T_U16: return CR(TrId<u16>);
    case EM_CU_T_U32: return CR(TrId<u32>);
    case EM_CU_T_U64: return CR(TrId<u64>);
    case EM_CU_T_S8: return CR(TrId<s8>);
    case EM_CU_T_S16: return CR(TrId<s16>);
    case EM_CU_T_S32: return CR(TrId<s32>);
    case EM_CU_T_S64: return CR(TrId<s64>);
    case EM_CU_T_F16: return CR(TrF16);
    case EM_CU_T_BF16: return CR(TrBF16);
    case EM_CU_T_F32: return CR(TrId<float>);
    case EM_CU_T_F64: return CR(TrId<double>);
    case EM_CU_T_C64:
      return cum_cplx<TrId<cf>>(kind, rev, x, y, outer, n, inner, scratch, sms, s);
    case EM_CU_T_C128:
      return cum_cplx<TrId<cd>>(kind, rev, x, y, outer, n, inner, scratch, sms, s);
    default: return cudaErrorInvalidValue;
  }
#undef CR
}
