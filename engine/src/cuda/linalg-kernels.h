/* linalg-kernels.h — the small kernels around cuSOLVER/cuBLAS used by the
 * linear-algebra family (linalg.cu), callable from C (linalg.c).
 *
 * tc is the element type: 0 f32, 1 f64, 2 c64, 3 c128 (LA_TC_*). Matrices
 * are addressed through explicit element strides, so one kernel moves
 * between the engine's row-major layout and cuSOLVER's column-major one.
 * Every launcher returns the launch's cudaError_t and does nothing for an
 * empty range. */
#ifndef EMILY_CUDA_LINALG_KERNELS_H
#define EMILY_CUDA_LINALG_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { LA_TC_F32 = 0, LA_TC_F64 = 1, LA_TC_C64 = 2, LA_TC_C128 = 3 };

/* Which elements a copy keeps (the others are written as zero). */
enum {
  LA_ALL = 0,
  LA_UPPER = 1,        /* r <= c */
  LA_LOWER = 2,        /* r >= c */
  LA_STRICT_LOWER = 3, /* r > c */
};

/* For b < batch, r < rows, c < cols:
 *   dst[b*dbs + r*drs + c*dcs] = mask(r, c) ? op(src[b*sbs + r*srs + c*scs]) : 0
 * op conjugates when conj; unit sets the diagonal (r == c) to 1 after the
 * mask. src NULL reads zeros (with unit: the identity). Strides in
 * elements; dst and src must not overlap. */
cudaError_t em_cu_la_copy(int tc, const void *src, int64_t sbs, int64_t srs,
                          int64_t scs, void *dst, int64_t dbs, int64_t drs,
                          int64_t dcs, int64_t batch, int64_t rows,
                          int64_t cols, int mask, int unit, int conj,
                          cudaStream_t s);

/* ptrs[i] = base + i * stride_bytes for i < count (device pointer arrays
 * of the batched cuBLAS/cuSOLVER routines). */
cudaError_t em_cu_la_ptrs(void **ptrs, void *base, int64_t stride_bytes,
                          int64_t count, cudaStream_t s);

/* Nx's Cholesky (Cholesky–Banachiewicz, eps 1e-10 added to divisors,
 * |l| <= eps flushed to 0), in the element type's precision, for every
 * matrix b whose info[b] != 0: reads row-major a, writes row-major out
 * (lower factor, zero above). Matrices with info[b] == 0 are untouched. */
cudaError_t em_cu_la_chol_nx(int tc, const void *a, void *out,
                             const int *info, int64_t batch, int64_t n,
                             cudaStream_t s);

/* LAPACK's unblocked LU (getf2: pivots on |re| + |im|, a zero pivot skips
 * its column's scaling) of every matrix b with info[b] > 0, from row-major
 * a into column-major w, rewriting ipiv[b]: the factors of exactly singular
 * matrices as the CPU returns them. Others are untouched. */
cudaError_t em_cu_la_getf2(int tc, const void *a, void *w, int *ipiv,
                           const int *info, int64_t batch, int64_t n,
                           cudaStream_t s);

/* The permutation matrix P (row-major n x n, element type tc) with
 * A = P L U from getrf's 1-based row interchanges ipiv (batch x n); perm is
 * scratch of batch x n ints. */
cudaError_t em_cu_la_perm(int tc, const int *ipiv, int *perm, void *p,
                          int64_t batch, int64_t n, cudaStream_t s);

/* x (batch of row-major n x r) := rows swapped i <-> ipiv[i]-1 for
 * i = n-1 down to 0 (X P^T for getrf's P applied on the right of X^T). */
cudaError_t em_cu_la_unpivot_rows(int tc, void *x, const int *ipiv,
                                  int64_t batch, int64_t n, int64_t r,
                                  cudaStream_t s);

/* Determinants of n <= 3 row-major matrices by Nx's closed forms (same
 * products in the same order as the CPU kernel, no contraction). */
cudaError_t em_cu_la_det_small(int tc, const void *a, void *out,
                               int64_t batch, int64_t n, cudaStream_t s);

/* Determinants from getrf's factors w (n x n each) and pivots: product of
 * the diagonal in order, negated per interchange, exactly 0 when a pivot
 * is exactly 0. */
cudaError_t em_cu_la_det_lu(int tc, const void *w, const int *ipiv, void *out,
                            int64_t batch, int64_t n, cudaStream_t s);

/* flags[b] = 1 if a diagonal element of a[b] (n x n) is exactly zero,
 * else 0. */
cudaError_t em_cu_la_zero_diag(int tc, const void *a, int *flags,
                               int64_t batch, int64_t n, cudaStream_t s);

/* flags[b] = 1 where one of the count elements of matrix b is NaN or
 * infinite (flags must be zeroed first; others are left alone). */
cudaError_t em_cu_la_nonfinite(int tc, const void *a, int *flags,
                               int64_t batch, int64_t count, cudaStream_t s);

/* For every b with flags[b] != 0, sets the count elements of matrix b of
 * dst to NaN (nan != 0) or zero. */
cudaError_t em_cu_la_flag_fill(int tc, void *dst, const int *flags,
                               int64_t batch, int64_t count, int nan,
                               cudaStream_t s);

#ifdef __cplusplus
}
#endif
#endif
