// linalg.cu — the small precompiled kernels of the linear-algebra family
// (linalg.c drives cuSOLVER/cuBLAS): layout copies between row-major and
// column-major (with triangle masks, unit diagonals, conjugation), pointer
// arrays, Nx's Cholesky for matrices cuSOLVER finds not positive definite,
// permutation matrices and pivoting, determinants, and the per-matrix
// checks (zero diagonal, non-finite input). Four element types each:
// float, double, float2 (c64), double2 (c128). Grid-stride loops with
// 64-bit indices throughout; no function-local statics (the engine links
// as C).
#include <math.h>
#include <stdint.h>

#include "linalg-kernels.h"

namespace {

// ---- element helpers ---------------------------------------------------------

template <class T> struct el;
template <> struct el<float> {
  typedef float R;
  static __device__ float zero() { return 0.f; }
  static __device__ float one() { return 1.f; }
  static __device__ float nan() { return __int_as_float(0x7fc00000); }
};
template <> struct el<double> {
  typedef double R;
  static __device__ double zero() { return 0.0; }
  static __device__ double one() { return 1.0; }
  static __device__ double nan() { return __longlong_as_double(0x7ff8000000000000ll); }
};
template <> struct el<float2> {
  typedef float R;
  static __device__ float2 zero() { return make_float2(0.f, 0.f); }
  static __device__ float2 one() { return make_float2(1.f, 0.f); }
  static __device__ float2 nan() {
    return make_float2(el<float>::nan(), el<float>::nan());
  }
};
template <> struct el<double2> {
  typedef double R;
  static __device__ double2 zero() { return make_double2(0.0, 0.0); }
  static __device__ double2 one() { return make_double2(1.0, 0.0); }
  static __device__ double2 nan() {
    return make_double2(el<double>::nan(), el<double>::nan());
  }
};

__device__ inline float cj(float x) { return x; }
__device__ inline double cj(double x) { return x; }
__device__ inline float2 cj(float2 x) { return make_float2(x.x, -x.y); }
__device__ inline double2 cj(double2 x) { return make_double2(x.x, -x.y); }

__device__ inline bool fin(float x) { return isfinite(x); }
__device__ inline bool fin(double x) { return isfinite(x); }
__device__ inline bool fin(float2 x) { return isfinite(x.x) && isfinite(x.y); }
__device__ inline bool fin(double2 x) { return isfinite(x.x) && isfinite(x.y); }

__device__ inline bool is0(float x) { return x == 0.f; }
__device__ inline bool is0(double x) { return x == 0.0; }
__device__ inline bool is0(float2 x) { return x.x == 0.f && x.y == 0.f; }
__device__ inline bool is0(double2 x) { return x.x == 0.0 && x.y == 0.0; }

// Arithmetic without contraction into FMA, as the CPU (ISO C, no FMA)
// computes: the closed-form determinants then agree bit for bit.
__device__ inline float add(float a, float b) { return __fadd_rn(a, b); }
__device__ inline float sub(float a, float b) { return __fsub_rn(a, b); }
__device__ inline float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ inline double add(double a, double b) { return __dadd_rn(a, b); }
__device__ inline double sub(double a, double b) { return __dsub_rn(a, b); }
__device__ inline double mul(double a, double b) { return __dmul_rn(a, b); }
__device__ inline float2 add(float2 a, float2 b) {
  return make_float2(add(a.x, b.x), add(a.y, b.y));
}
__device__ inline float2 sub(float2 a, float2 b) {
  return make_float2(sub(a.x, b.x), sub(a.y, b.y));
}
__device__ inline float2 mul(float2 a, float2 b) {
  return make_float2(sub(mul(a.x, b.x), mul(a.y, b.y)),
                     add(mul(a.x, b.y), mul(a.y, b.x)));
}
__device__ inline double2 add(double2 a, double2 b) {
  return make_double2(add(a.x, b.x), add(a.y, b.y));
}
__device__ inline double2 sub(double2 a, double2 b) {
  return make_double2(sub(a.x, b.x), sub(a.y, b.y));
}
__device__ inline double2 mul(double2 a, double2 b) {
  return make_double2(sub(mul(a.x, b.x), mul(a.y, b.y)),
                      add(mul(a.x, b.y), mul(a.y, b.x)));
}
__device__ inline float neg(float a) { return -a; }
__device__ inline double neg(double a) { return -a; }
__device__ inline float2 neg(float2 a) { return make_float2(-a.x, -a.y); }
__device__ inline double2 neg(double2 a) { return make_double2(-a.x, -a.y); }

// x + eps on the real part (C's complex + real).
__device__ inline float addr(float a, float e) { return a + e; }
__device__ inline double addr(double a, double e) { return a + e; }
__device__ inline float2 addr(float2 a, float e) { return make_float2(a.x + e, a.y); }
__device__ inline double2 addr(double2 a, double e) { return make_double2(a.x + e, a.y); }

__device__ inline float absv(float a) { return fabsf(a); }
__device__ inline double absv(double a) { return fabs(a); }
__device__ inline float absv(float2 a) { return hypotf(a.x, a.y); }
__device__ inline double absv(double2 a) { return hypot(a.x, a.y); }

// Square roots: real (NaN below zero) and the principal complex root.
__device__ inline float sqrtv(float a) { return sqrtf(a); }
__device__ inline double sqrtv(double a) { return sqrt(a); }
template <class C, class R>
__device__ inline C csqrt_t(C z) {
  R x = z.x, y = z.y;
  C r;
  if (x == 0 && y == 0) {
    r.x = 0;
    r.y = y;
    return r;
  }
  if (isinf(y)) {
    r.x = (R)INFINITY;
    r.y = y;
    return r;
  }
  R t = sqrt((fabs(x) + hypot(x, y)) * (R)0.5);
  if (x >= 0) {
    r.x = t;
    r.y = y / (2 * t);
  } else {
    r.x = fabs(y) / (2 * t);
    r.y = copysign(t, y);
  }
  return r;
}
__device__ inline float2 sqrtv(float2 a) { return csqrt_t<float2, float>(a); }
__device__ inline double2 sqrtv(double2 a) { return csqrt_t<double2, double>(a); }

// Division: real, and complex by Smith's scaled algorithm.
__device__ inline float divv(float a, float b) { return a / b; }
__device__ inline double divv(double a, double b) { return a / b; }
template <class C, class R>
__device__ inline C cdiv_t(C a, C b) {
  C r;
  if (fabs(b.x) >= fabs(b.y)) {
    R q = b.y / b.x, d = b.x + b.y * q;
    r.x = (a.x + a.y * q) / d;
    r.y = (a.y - a.x * q) / d;
  } else {
    R q = b.x / b.y, d = b.y + b.x * q;
    r.x = (a.x * q + a.y) / d;
    r.y = (a.y * q - a.x) / d;
  }
  return r;
}
__device__ inline float2 divv(float2 a, float2 b) { return cdiv_t<float2, float>(a, b); }
__device__ inline double2 divv(double2 a, double2 b) { return cdiv_t<double2, double>(a, b); }

unsigned grid_for(int64_t n, int64_t cap = 8192) {
  int64_t b = (n + 255) / 256;
  if (b > cap) b = cap;
  return (unsigned)(b < 1 ? 1 : b);
}

#define GRID_LOOP(i, n)                                                      \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (int64_t)gridDim.x * blockDim.x)

// ---- kernels -------------------------------------------------------------------

template <class T>
__global__ void __launch_bounds__(256)
    copy_k(const T *__restrict__ src, int64_t sbs, int64_t srs, int64_t scs,
           T *__restrict__ dst, int64_t dbs, int64_t drs, int64_t dcs,
           int64_t batch, int64_t rows, int64_t cols, int mask, int unit,
           int conj) {
  const int64_t total = batch * rows * cols;
  GRID_LOOP(i, total) {
    int64_t c = i % cols, t = i / cols;
    int64_t r = t % rows, b = t / rows;
    bool keep = mask == LA_ALL || (mask == LA_UPPER && r <= c) ||
                (mask == LA_LOWER && r >= c) ||
                (mask == LA_STRICT_LOWER && r > c);
    T v = el<T>::zero();
    if (keep && src) {
      v = src[b * sbs + r * srs + c * scs];
      if (conj) v = cj(v);
    }
    if (unit && r == c) v = el<T>::one();
    dst[b * dbs + r * drs + c * dcs] = v;
  }
}

__global__ void ptrs_k(void **ptrs, char *base, int64_t stride, int64_t count) {
  GRID_LOOP(i, count) ptrs[i] = base + i * stride;
}

// One block per failed matrix; column j's entries below the diagonal are
// independent once column j-1 and the pivot are done, so threads take rows.
// Each entry sums over p < j in ascending order, as the CPU's row-by-row
// loop does.
template <class T>
__global__ void __launch_bounds__(256)
    chol_nx_k(const T *__restrict__ a, T *__restrict__ out,
              const int *__restrict__ info, int64_t batch, int64_t n) {
  typedef typename el<T>::R R;
  const R eps = (R)1e-10;
  for (int64_t b = blockIdx.x; b < batch; b += gridDim.x) {
    if (info[b] == 0) continue;  // uniform across the block
    const T *A = a + b * n * n;
    T *L = out + b * n * n;
    for (int64_t i = threadIdx.x; i < n * n; i += blockDim.x) L[i] = el<T>::zero();
    __syncthreads();
    for (int64_t j = 0; j < n; j++) {
      if (threadIdx.x == 0) {
        T s = el<T>::zero();
        for (int64_t p = 0; p < j; p++) s = add(s, mul(L[j * n + p], cj(L[j * n + p])));
        L[j * n + j] = sqrtv(sub(A[j * n + j], s));
      }
      __syncthreads();
      const T piv = addr(L[j * n + j], eps);
      for (int64_t i = j + 1 + threadIdx.x; i < n; i += blockDim.x) {
        T s = el<T>::zero();
        for (int64_t p = 0; p < j; p++) s = add(s, mul(L[i * n + p], cj(L[j * n + p])));
        L[i * n + j] = divv(sub(A[i * n + j], s), piv);
      }
      __syncthreads();
    }
    for (int64_t i = threadIdx.x; i < n * n; i += blockDim.x)
      if (absv(L[i]) <= eps) L[i] = el<T>::zero();
    __syncthreads();
  }
}

__device__ inline float cabs1(float a) { return fabsf(a); }
__device__ inline double cabs1(double a) { return fabs(a); }
__device__ inline float cabs1(float2 a) { return fabsf(a.x) + fabsf(a.y); }
__device__ inline double cabs1(double2 a) { return fabs(a.x) + fabs(a.y); }

// LAPACK's unblocked getf2 (partial pivoting on |re| + |im|, the first of
// equal maxima; a zero pivot skips the column's scaling and leaves the
// interchange at the diagonal), one block per matrix b with info[b] > 0:
// refactors A (row-major a) into column-major w and rewrites ipiv. For
// exactly singular input, where the library may divide by the zero pivot.
template <class T>
__global__ void __launch_bounds__(256)
    getf2_k(const T *__restrict__ a, T *__restrict__ w, int *__restrict__ ipiv,
            const int *__restrict__ info, int64_t batch, int64_t n) {
  typedef typename el<T>::R R;
  __shared__ R best_v[256];
  __shared__ int64_t best_i[256];
  for (int64_t b = blockIdx.x; b < batch; b += gridDim.x) {
    if (info[b] <= 0) continue;  // uniform across the block
    const T *A = a + b * n * n;
    T *W = w + b * n * n;
    int *ip = ipiv + b * n;
    for (int64_t i = threadIdx.x; i < n * n; i += blockDim.x) {
      int64_t r = i / n, c = i % n;
      W[r + c * n] = A[i];
    }
    __syncthreads();
    for (int64_t j = 0; j < n; j++) {
      R bv = -1;
      int64_t bi = j;
      for (int64_t i = j + threadIdx.x; i < n; i += blockDim.x) {
        R v = cabs1(W[i + j * n]);
        if (v > bv) {  // ascending i per thread: keeps the first maximum
          bv = v;
          bi = i;
        }
      }
      best_v[threadIdx.x] = bv;
      best_i[threadIdx.x] = bi;
      __syncthreads();
      for (int h = blockDim.x / 2; h > 0; h /= 2) {
        if ((int)threadIdx.x < h) {
          R ov = best_v[threadIdx.x + h];
          int64_t oi = best_i[threadIdx.x + h];
          if (ov > best_v[threadIdx.x] ||
              (ov == best_v[threadIdx.x] && oi < best_i[threadIdx.x])) {
            best_v[threadIdx.x] = ov;
            best_i[threadIdx.x] = oi;
          }
        }
        __syncthreads();
      }
      const int64_t p = best_v[0] > 0 ? best_i[0] : j;
      const T piv = W[p + j * n];
      __syncthreads();
      if (threadIdx.x == 0) ip[j] = (int)(p + 1);
      if (!is0(piv)) {
        if (p != j)
          for (int64_t c = threadIdx.x; c < n; c += blockDim.x) {
            T t = W[j + c * n];
            W[j + c * n] = W[p + c * n];
            W[p + c * n] = t;
          }
        __syncthreads();
        for (int64_t i = j + 1 + threadIdx.x; i < n; i += blockDim.x)
          W[i + j * n] = divv(W[i + j * n], piv);
      }
      __syncthreads();
      const int64_t k = n - j - 1;
      for (int64_t e = threadIdx.x; e < k * k; e += blockDim.x) {
        int64_t i = j + 1 + e % k, c = j + 1 + e / k;
        W[i + c * n] = sub(W[i + c * n], mul(W[i + j * n], W[j + c * n]));
      }
      __syncthreads();
    }
  }
}

template <class T>
__global__ void __launch_bounds__(256)
    perm_k(const int *__restrict__ ipiv, int *__restrict__ perm,
           T *__restrict__ P, int64_t batch, int64_t n) {
  for (int64_t b = blockIdx.x; b < batch; b += gridDim.x) {
    const int *ip = ipiv + b * n;
    int *pm = perm + b * n;
    T *p = P + b * n * n;
    for (int64_t i = threadIdx.x; i < n * n; i += blockDim.x) p[i] = el<T>::zero();
    if (threadIdx.x == 0) {
      for (int64_t i = 0; i < n; i++) pm[i] = (int)i;
      for (int64_t i = 0; i < n; i++) {
        int64_t j = (int64_t)ip[i] - 1;
        if (j < 0 || j >= n) j = i;  // never for getrf's output
        int tmp = pm[i];
        pm[i] = pm[j];
        pm[j] = tmp;
      }
    }
    __syncthreads();
    // Row i of L U is row perm[i] of A: P[perm[i]][i] = 1.
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      p[(int64_t)pm[i] * n + i] = el<T>::one();
    __syncthreads();
  }
}

template <class T>
__global__ void __launch_bounds__(256)
    unpivot_k(T *__restrict__ x, const int *__restrict__ ipiv, int64_t batch,
              int64_t n, int64_t r) {
  GRID_LOOP(t, batch * r) {
    int64_t c = t % r, b = t / r;
    T *xb = x + b * n * r;
    const int *ip = ipiv + b * n;
    for (int64_t i = n - 1; i >= 0; i--) {
      int64_t j = (int64_t)ip[i] - 1;
      if (j == i || j < 0 || j >= n) continue;
      T tmp = xb[i * r + c];
      xb[i * r + c] = xb[j * r + c];
      xb[j * r + c] = tmp;
    }
  }
}

template <class T>
__global__ void det_small_k(const T *__restrict__ a, T *__restrict__ out,
                            int64_t batch, int64_t n) {
  GRID_LOOP(b, batch) {
    const T *x = a + b * n * n;
    T d;
    switch (n) {
      case 0: d = el<T>::one(); break;
      case 1: d = x[0]; break;
      case 2: d = sub(mul(x[0], x[3]), mul(x[1], x[2])); break;
      default: {
        T p0 = mul(mul(x[0], x[4]), x[8]), p1 = mul(mul(x[1], x[5]), x[6]),
          p2 = mul(mul(x[2], x[3]), x[7]);
        T n0 = mul(mul(x[2], x[4]), x[6]), n1 = mul(mul(x[1], x[3]), x[8]),
          n2 = mul(mul(x[0], x[5]), x[7]);
        d = sub(sub(sub(add(add(p0, p1), p2), n0), n1), n2);
      }
    }
    out[b] = d;
  }
}

template <class T>
__global__ void det_lu_k(const T *__restrict__ w, const int *__restrict__ ipiv,
                         T *__restrict__ out, int64_t batch, int64_t n) {
  GRID_LOOP(b, batch) {
    const T *x = w + b * n * n;
    const int *ip = ipiv + b * n;
    T prod = el<T>::one();
    bool neg_ = false, zero = false;
    for (int64_t i = 0; i < n; i++) {
      T d = x[i * n + i];
      if (is0(d)) zero = true;
      prod = mul(prod, d);
      if ((int64_t)ip[i] - 1 != i) neg_ = !neg_;
    }
    out[b] = zero ? el<T>::zero() : neg_ ? neg(prod) : prod;
  }
}

template <class T>
__global__ void zero_diag_k(const T *__restrict__ a, int *__restrict__ flags,
                            int64_t batch, int64_t n) {
  GRID_LOOP(b, batch) {
    const T *x = a + b * n * n;
    int f = 0;
    for (int64_t i = 0; i < n && !f; i++)
      if (is0(x[i * n + i])) f = 1;
    flags[b] = f;
  }
}

template <class T>
__global__ void __launch_bounds__(256)
    nonfinite_k(const T *__restrict__ a, int *__restrict__ flags,
                int64_t batch, int64_t count) {
  GRID_LOOP(i, batch * count)
    if (!fin(a[i])) flags[i / count] = 1;  // every writer stores 1
}

template <class T>
__global__ void __launch_bounds__(256)
    flag_fill_k(T *__restrict__ dst, const int *__restrict__ flags,
                int64_t batch, int64_t count, int nan) {
  GRID_LOOP(i, batch * count)
    if (flags[i / count]) dst[i] = nan ? el<T>::nan() : el<T>::zero();
}

// ---- dispatch ------------------------------------------------------------------

#define DISPATCH(tc, F, ARGS)                    \
  switch (tc) {                                  \
    case LA_TC_F32: return F<float> ARGS;        \
    case LA_TC_F64: return F<double> ARGS;       \
    case LA_TC_C64: return F<float2> ARGS;       \
    case LA_TC_C128: return F<double2> ARGS;     \
  }                                              \
  return cudaErrorInvalidValue

template <class T>
cudaError_t copy_l(const void *src, int64_t sbs, int64_t srs, int64_t scs,
                   void *dst, int64_t dbs, int64_t drs, int64_t dcs,
                   int64_t batch, int64_t rows, int64_t cols, int mask,
                   int unit, int conj, cudaStream_t s) {
  copy_k<T><<<grid_for(batch * rows * cols), 256, 0, s>>>(
      (const T *)src, sbs, srs, scs, (T *)dst, dbs, drs, dcs, batch, rows,
      cols, mask, unit, conj);
  return cudaGetLastError();
}

template <class T>
cudaError_t chol_nx_l(const void *a, void *out, const int *info,
                      int64_t batch, int64_t n, cudaStream_t s) {
  chol_nx_k<T><<<grid_for(batch * 256, 65535), 256, 0, s>>>(
      (const T *)a, (T *)out, info, batch, n);
  return cudaGetLastError();
}

template <class T>
cudaError_t getf2_l(const void *a, void *w, int *ipiv, const int *info,
                    int64_t batch, int64_t n, cudaStream_t s) {
  getf2_k<T><<<grid_for(batch * 256, 65535), 256, 0, s>>>(
      (const T *)a, (T *)w, ipiv, info, batch, n);
  return cudaGetLastError();
}

template <class T>
cudaError_t perm_l(const int *ipiv, int *perm, void *p, int64_t batch,
                   int64_t n, cudaStream_t s) {
  perm_k<T><<<grid_for(batch * 256, 65535), 256, 0, s>>>(ipiv, perm, (T *)p,
                                                        batch, n);
  return cudaGetLastError();
}

template <class T>
cudaError_t unpivot_l(void *x, const int *ipiv, int64_t batch, int64_t n,
                      int64_t r, cudaStream_t s) {
  unpivot_k<T><<<grid_for(batch * r), 256, 0, s>>>((T *)x, ipiv, batch, n, r);
  return cudaGetLastError();
}

template <class T>
cudaError_t det_small_l(const void *a, void *out, int64_t batch, int64_t n,
                        cudaStream_t s) {
  det_small_k<T><<<grid_for(batch), 256, 0, s>>>((const T *)a, (T *)out, batch, n);
  return cudaGetLastError();
}

template <class T>
cudaError_t det_lu_l(const void *w, const int *ipiv, void *out, int64_t batch,
                     int64_t n, cudaStream_t s) {
  det_lu_k<T><<<grid_for(batch), 256, 0, s>>>((const T *)w, ipiv, (T *)out,
                                              batch, n);
  return cudaGetLastError();
}

template <class T>
cudaError_t zero_diag_l(const void *a, int *flags, int64_t batch, int64_t n,
                        cudaStream_t s) {
  zero_diag_k<T><<<grid_for(batch), 256, 0, s>>>((const T *)a, flags, batch, n);
  return cudaGetLastError();
}

template <class T>
cudaError_t nonfinite_l(const void *a, int *flags, int64_t batch,
                        int64_t count, cudaStream_t s) {
  nonfinite_k<T><<<grid_for(batch * count), 256, 0, s>>>((const T *)a, flags,
                                                        batch, count);
  return cudaGetLastError();
}

template <class T>
cudaError_t flag_fill_l(void *dst, const int *flags, int64_t batch,
                        int64_t count, int nan, cudaStream_t s) {
  flag_fill_k<T><<<grid_for(batch * count), 256, 0, s>>>((T *)dst, flags,
                                                        batch, count, nan);
  return cudaGetLastError();
}

}  // namespace

extern "C" cudaError_t em_cu_la_copy(int tc, const void *src, int64_t sbs,
                                     int64_t srs, int64_t scs, void *dst,
                                     int64_t dbs, int64_t drs, int64_t dcs,
                                     int64_t batch, int64_t rows, int64_t cols,
                                     int mask, int unit, int conj,
                                     cudaStream_t s) {
  if (batch <= 0 || rows <= 0 || cols <= 0) return cudaSuccess;
  DISPATCH(tc, copy_l, (src, sbs, srs, scs, dst, dbs, drs, dcs, batch,
                               rows, cols, mask, unit, conj, s));
}

extern "C" cudaError_t em_cu_la_ptrs(void **ptrs, void *base,
                                     int64_t stride_bytes, int64_t count,
                                     cudaStream_t s) {
  if (count <= 0) return cudaSuccess;
  ptrs_k<<<grid_for(count), 256, 0, s>>>(ptrs, (char *)base, stride_bytes, count);
  return cudaGetLastError();
}

extern "C" cudaError_t em_cu_la_chol_nx(int tc, const void *a, void *out,
                                        const int *info, int64_t batch,
                                        int64_t n, cudaStream_t s) {
  if (batch <= 0 || n <= 0) return cudaSuccess;
  DISPATCH(tc, chol_nx_l, (a, out, info, batch, n, s));
}

extern "C" cudaError_t em_cu_la_getf2(int tc, const void *a, void *w,
                                      int *ipiv, const int *info,
                                      int64_t batch, int64_t n,
                                      cudaStream_t s) {
  if (batch <= 0 || n <= 0) return cudaSuccess;
  DISPATCH(tc, getf2_l, (a, w, ipiv, info, batch, n, s));
}

extern "C" cudaError_t em_cu_la_perm(int tc, const int *ipiv, int *perm,
                                     void *p, int64_t batch, int64_t n,
                                     cudaStream_t s) {
  if (batch <= 0 || n <= 0) return cudaSuccess;
  DISPATCH(tc, perm_l, (ipiv, perm, p, batch, n, s));
}

extern "C" cudaError_t em_cu_la_unpivot_rows(int tc, void *x, const int *ipiv,
                                             int64_t batch, int64_t n,
                                             int64_t r, cudaStream_t s) {
  if (batch <= 0 || n <= 0 || r <= 0) return cudaSuccess;
  DISPATCH(tc, unpivot_l, (x, ipiv, batch, n, r, s));
}

extern "C" cudaError_t em_cu_la_det_small(int tc, const void *a, void *out,
                                          int64_t batch, int64_t n,
                                          cudaStream_t s) {
  if (batch <= 0) return cudaSuccess;
  DISPATCH(tc, det_small_l, (a, out, batch, n, s));
}

extern "C" cudaError_t em_cu_la_det_lu(int tc, const void *w, const int *ipiv,
                                       void *out, int64_t batch, int64_t n,
                                       cudaStream_t s) {
  if (batch <= 0) return cudaSuccess;
  DISPATCH(tc, det_lu_l, (w, ipiv, out, batch, n, s));
}

extern "C" cudaError_t em_cu_la_zero_diag(int tc, const void *a, int *flags,
                                          int64_t batch, int64_t n,
                                          cudaStream_t s) {
  if (batch <= 0) return cudaSuccess;
  DISPATCH(tc, zero_diag_l, (a, flags, batch, n, s));
}

extern "C" cudaError_t em_cu_la_nonfinite(int tc, const void *a, int *flags,
                                          int64_t batch, int64_t count,
                                          cudaStream_t s) {
  if (batch <= 0 || count <= 0) return cudaSuccess;
  DISPATCH(tc, nonfinite_l, (a, flags, batch, count, s));
}

extern "C" cudaError_t em_cu_la_flag_fill(int tc, void *dst, const int *flags,
                                          int64_t batch, int64_t count,
                                          int nan, cudaStream_t s) {
  if (batch <= 0 || count <= 0) return cudaSuccess;
  DISPATCH(tc, flag_fill_l, (dst, flags, batch, count, nan, s));
}
