/* cuda-impl.h — shared by the CUDA backend's C files (runtime, jit, dot,
 * backend). The .cu files see only cuda-kernels.h. */
#ifndef EMILY_CUDA_IMPL_H
#define EMILY_CUDA_IMPL_H

#include <cuda_runtime_api.h>

#include "cuda-api.h"
#include "cuda-kernels.h"

/* Device facts, read once. */
typedef struct {
  int sms, major, minor;
  size_t total_mem;
  char name[256];
} em_cu_props;
const em_cu_props *em_cu_device_props(int dev);

/* Makes dev current on this thread and returns the stream to launch on:
 * the engine stream bound to this thread (a stream worker), else the
 * legacy default stream, which is ordered with every other stream. */
cudaStream_t em_cu_enter(int dev);

/* "[op] CUDA error in what: message (name)"; clears a non-sticky error. */
em_status em_cu_fail(cudaError_t e, const char *op, const char *what);
#define CU_TRY(op, call)                                            \
  do {                                                              \
    cudaError_t e_ = (call);                                        \
    if (e_ != cudaSuccess) return em_cu_fail(e_, op, #call);        \
  } while (0)

/* Device -> host on stream s (pinned staging for large copies). */
em_status em_cu_download(int dev, void *dst, const void *src, size_t n,
                         cudaStream_t s);
/* Reads a 0-d integer device array as int64 (clamping u64). */
em_status em_cu_read_index(const em_array *a, int64_t *v);

/* Element bytes on the device, or 0 for dtypes the backend lacks: the 14
 * wide dtypes. The family kernels (indexing, sort, window, conv, fft,
 * linalg) use it to reject the narrow ones. */
size_t em_cu_dtype_ok(em_dtype t);
/* Element bytes on the device of every dtype, narrow ones included (s2 s4
 * u2 u4 f8 f8_e4m3fn: one byte per element, as on the CPU), or 0 for an
 * invalid dtype: storage, transfers, copies/views, creation, elementwise
 * (jit.c), reductions and dot take these. */
size_t em_cu_dtype_storable(em_dtype t);
/* A DONE array's contiguous copy made by the CUDA copy kernel. */
em_status em_cu_copy_to(const em_array *src, void *dst);

/* Run-time compiled kernels (jit.c). */
em_status em_cu_run_fused(em_array *root);
em_status em_cu_iota_eye(em_array *out, bool eye, int64_t len, int64_t inner);
em_status em_cu_reduce(const char *opname, const char *optmpl, em_dtype t,
                       em_dtype out_t, const void *x, void *y, int64_t outer,
                       int64_t r, int64_t inner, int dev);
em_status em_cu_rows(em_op op, em_dtype t, const void *x, void *y,
                     const void *w, const void *b, int64_t rows, int64_t d,
                     double eps, int dev);
/* y[i] = as_type(x[i]) from `from` to `to` for n contiguous elements
 * (device pointers), on the thread's stream. */
em_status em_cu_convert(em_dtype from, em_dtype to, const void *x, void *y,
                        int64_t n, int dev);
/* Compiles every fused/reduce/row program the generator can emit for
 * each dtype, without a GPU (tests: EMILY_CUDA_JIT_CHECK=1). Returns the
 * number of failures and prints them. */
int em_cu_jit_selfcheck(int verbose);

/* dot via cuBLASLt / cuBLAS (dot.c). */
em_status em_cu_k_dot(em_array *out, const em_node *n);

/* The op families, each in its own file (indexing.cu, sort.cu, window.cu,
 * conv.c (cuDNN), fft.c (cuFFT), linalg.c (cuSOLVER), ...). Declared weak so
 * a family that is not built leaves its table entry NULL: the evaluator
 * then fails with EM_ERR_UNSUPPORTED naming the op, as for any op without
 * a kernel. Same pattern as the CPU's EM_CPU_FAMILY_KERNELS. */
#define EM_CU_FAMILY_KERNELS(X)                                         \
  X(gather) X(indexed_add) X(indexed_put) X(take) X(take_along_axis)    \
  X(cumulative) X(sort) X(argsort) X(window_reduce) X(window_scatter)   \
  X(conv) X(fft) X(rfft) X(irfft) X(triangular_solve) X(cholesky)       \
  X(qr) X(lu) X(eigh) X(svd) X(solve) X(determinant)
#define X(n)                                                             \
  em_status em_cu_k_##n(em_array *out, const em_node *node)              \
      __attribute__((weak));
EM_CU_FAMILY_KERNELS(X)
#undef X

#endif
