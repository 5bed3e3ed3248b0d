/* linalg.c — the linear-algebra family on CUDA: triangular_solve, cholesky,
 * qr, lu, eigh, svd, solve, determinant, through cuSOLVER (dense) and cuBLAS
 * (trsm, batched getrf), with the small kernels of linalg.cu around them.
 * Every op takes f32, f64, c64 and c128 (the op layer admits nothing else)
 * and is batched over the leading axes. The contract is the CPU kernel's
 * (src/cpu/linalg.c), which these mirror step by step:
 *
 *  - Layout: the engine is row-major, cuSOLVER column-major. A row-major
 *    buffer read column-major is the transpose, which solve, determinant
 *    and svd (wide matrices) use as is, like the CPU; cholesky, lu, qr,
 *    eigh and svd of tall matrices transpose into a workspace first
 *    (em_cu_la_copy) and every factor is copied back row-major with its
 *    triangle mask.
 *  - cholesky reads the lower triangle; a matrix cuSOLVER finds not positive
 *    definite (info > 0) gets Nx's algorithm (as the CPU) on the device
 *    (em_cu_la_chol_nx), never an error.
 *  - lu: a = p . l . u with p a permutation matrix of a's dtype, from
 *    getrf's partial pivoting of A itself; singular input is fine.
 *  - solve: getrf of A^T then two right-side trsm on the row-major b and
 *    the interchanges, exactly the CPU's sequence; an exactly zero pivot
 *    fails with "can't solve for singular matrix (batch entry i)".
 *  - triangular_solve: cuBLAS trsm with side and triangle swapped (the
 *    row-major identity CBLAS uses); an exactly zero diagonal element fails
 *    as on the CPU.
 *  - determinant: Nx's closed forms for n <= 3 (same operations, no FMA
 *    contraction), else getrf's diagonal product, 0 for a zero pivot.
 *  - eigh: eigenvalues ascending (syevd/heevd; batched small matrices
 *    through XsyevBatched), eigenvectors as columns, from the lower
 *    triangle. svd: s descending; u, vt from gesvd (m >= n only: wide
 *    matrices are factored as A^T, which needs no copy) or, for batches of
 *    matrices up to 32 x 32, gesvdjBatched. Input with NaN or inf makes
 *    every output of that matrix NaN (the matrix is zeroed before the
 *    solver sees it). Signs/phases of eigenvectors and singular vectors,
 *    like qr's, are the library's Householder/Jacobi choices (neither side
 *    normalizes them; tests compare invariants).
 *
 * Handles: a pool per device of {cuSOLVER, cuBLAS, params, event}; an op
 * checks one out, binds it to its stream, and returns it with an event
 * recorded after its work, which the next user on another stream waits for
 * (handles keep internal workspaces). Workspaces come from the engine's
 * device allocator. Every cudaError_t / cusolverStatus_t / cublasStatus_t
 * becomes an em_fail naming the op, dtype and shapes; devInfo arrays are
 * downloaded (one synchronize per op) and mapped as the CPU maps LAPACK's
 * info. */
#include <cublas_v2.h>
#include <cusolverDn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda-impl.h"
#include "linalg-kernels.h"

/* Defined in src/core/ops_linalg.c: byte offsets of packed outputs. */
size_t em_linalg_slots(em_op op, em_dtype t, int64_t batch, int64_t m,
                       int64_t n, bool flag, size_t off[3]);

#define MAX_CU 16
/* Batched library routines (getrfBatched, potrfBatched, trsmBatched,
 * XsyevBatched) for batches of matrices up to this order; one call per
 * matrix above it. */
#define LA_SMALL 64
/* Matrices per batched call (their counts are int). */
#define LA_CHUNK ((int64_t)1 << 20)

#define TRY(x)                    \
  do {                            \
    em_status st_ = (x);          \
    if (st_ != EM_OK) return st_; \
  } while (0)

/* ---- handles --------------------------------------------------------------- */

typedef struct la_h {
  struct la_h *next;
  cusolverDnHandle_t sol;
  cublasHandle_t blas;
  cusolverDnParams_t params;
  cudaEvent_t done; /* recorded after the work of its last use */
  cudaStream_t last;
  bool used;
} la_h;

static la_h *g_pool[MAX_CU];
static pthread_mutex_t g_pool_m = PTHREAD_MUTEX_INITIALIZER;

static const char *solver_status(cusolverStatus_t r) {
  switch (r) {
    case CUSOLVER_STATUS_SUCCESS: return "CUSOLVER_STATUS_SUCCESS";
    case CUSOLVER_STATUS_NOT_INITIALIZED: return "CUSOLVER_STATUS_NOT_INITIALIZED";
    case CUSOLVER_STATUS_ALLOC_FAILED: return "CUSOLVER_STATUS_ALLOC_FAILED";
    case CUSOLVER_STATUS_INVALID_VALUE: return "CUSOLVER_STATUS_INVALID_VALUE";
    case CUSOLVER_STATUS_ARCH_MISMATCH: return "CUSOLVER_STATUS_ARCH_MISMATCH";
    case CUSOLVER_STATUS_MAPPING_ERROR: return "CUSOLVER_STATUS_MAPPING_ERROR";
    case CUSOLVER_STATUS_EXECUTION_FAILED: return "CUSOLVER_STATUS_EXECUTION_FAILED";
    case CUSOLVER_STATUS_INTERNAL_ERROR: return "CUSOLVER_STATUS_INTERNAL_ERROR";
    case CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED:
      return "CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED";
    case CUSOLVER_STATUS_NOT_SUPPORTED: return "CUSOLVER_STATUS_NOT_SUPPORTED";
    case CUSOLVER_STATUS_ZERO_PIVOT: return "CUSOLVER_STATUS_ZERO_PIVOT";
    case CUSOLVER_STATUS_INVALID_LICENSE: return "CUSOLVER_STATUS_INVALID_LICENSE";
    case CUSOLVER_STATUS_INVALID_WORKSPACE: return "CUSOLVER_STATUS_INVALID_WORKSPACE";
    default: return "cuSOLVER error";
  }
}

static void handle_destroy(la_h *h) {
  if (!h) return;
  if (h->params) (void)cusolverDnDestroyParams(h->params);
  if (h->sol) (void)cusolverDnDestroy(h->sol);
  if (h->blas) (void)cublasDestroy(h->blas);
  if (h->done) (void)cudaEventDestroy(h->done);
  (void)cudaGetLastError();
  free(h);
}

/* ---- per-op context ------------------------------------------------------------ */

#define LA_MAXMEM 16

typedef struct {
  const char *op;
  em_dtype t;
  int tc, rtc;     /* element type code and its real part's (linalg-kernels.h) */
  size_t es, rs;   /* element and real-part sizes */
  char desc[200];  /* "f32 [2,3,3]" (and b's) for messages */
  int dev;
  cudaStream_t s;
  la_h *h;
  int nmem;
  void *mem[LA_MAXMEM];
  size_t memsz[LA_MAXMEM];
  void *host; /* host workspace (XsyevBatched) */
  gesvdjInfo_t gj;
} la_ctx;

static em_status la_init(la_ctx *c, const char *op, const em_array *a,
                         const em_array *b, int dev) {
  memset(c, 0, sizeof *c);
  c->op = op;
  c->t = a->dtype;
  c->dev = dev;
  switch (a->dtype) {
    case EM_F32: c->tc = LA_TC_F32; c->rtc = LA_TC_F32; break;
    case EM_F64: c->tc = LA_TC_F64; c->rtc = LA_TC_F64; break;
    case EM_C64: c->tc = LA_TC_C64; c->rtc = LA_TC_F32; break;
    case EM_C128: c->tc = LA_TC_C128; c->rtc = LA_TC_F64; break;
    default:
      return em_fail(EM_ERR_UNSUPPORTED, "[%s] %s arrays are not supported on CUDA",
                     op, em_dtype_name(a->dtype));
  }
  c->es = em_dtype_size(a->dtype);
  c->rs = (a->dtype == EM_C64 || a->dtype == EM_C128) ? c->es / 2 : c->es;
  char s1[96], s2[96];
  em_shape_str(s1, sizeof s1, a->ndim, a->shape);
  if (b) {
    em_shape_str(s2, sizeof s2, b->ndim, b->shape);
    snprintf(c->desc, sizeof c->desc, "a %s %s, b %s %s", em_dtype_name(a->dtype),
             s1, em_dtype_name(b->dtype), s2);
  } else {
    snprintf(c->desc, sizeof c->desc, "%s %s", em_dtype_name(a->dtype), s1);
  }
  c->s = em_cu_enter(dev);
  return EM_OK;
}

static em_status la_cuda(la_ctx *c, cudaError_t e, const char *what) {
  if (e == cudaSuccess) return EM_OK;
  (void)cudaGetLastError(); /* clear a non-sticky error */
  return em_fail(e == cudaErrorMemoryAllocation ? EM_ERR_OOM : EM_ERR_RUNTIME,
                 "[%s] CUDA error in %s: %s (%s) for %s", c->op, what,
                 cudaGetErrorString(e), cudaGetErrorName(e), c->desc);
}

static em_status la_solver(la_ctx *c, cusolverStatus_t r, const char *what) {
  if (r == CUSOLVER_STATUS_SUCCESS) return EM_OK;
  (void)cudaGetLastError();
  return em_fail(r == CUSOLVER_STATUS_ALLOC_FAILED ? EM_ERR_OOM : EM_ERR_RUNTIME,
                 "[%s] cuSOLVER %s failed: %s (%d) for %s", c->op, what,
                 solver_status(r), (int)r, c->desc);
}

static em_status la_blas(la_ctx *c, cublasStatus_t r, const char *what) {
  if (r == CUBLAS_STATUS_SUCCESS) return EM_OK;
  (void)cudaGetLastError();
  return em_fail(r == CUBLAS_STATUS_ALLOC_FAILED ? EM_ERR_OOM : EM_ERR_RUNTIME,
                 "[%s] cuBLAS %s failed: %s for %s", c->op, what,
                 cublasGetStatusString(r), c->desc);
}

/* Checks out a handle pair bound to c's stream (preferring one whose last
 * use was on the same stream, so nothing waits). */
static em_status la_handles(la_ctx *c) {
  if (c->h) return EM_OK;
  if (c->dev < 0 || c->dev >= MAX_CU)
    return em_fail(EM_ERR_ARGUMENT, "[%s] no CUDA device %d", c->op, c->dev);
  la_h *h = NULL;
  pthread_mutex_lock(&g_pool_m);
  for (la_h **pp = &g_pool[c->dev]; *pp; pp = &(*pp)->next)
    if ((*pp)->last == c->s) {
      h = *pp;
      *pp = h->next;
      break;
    }
  if (!h && g_pool[c->dev]) {
    h = g_pool[c->dev];
    g_pool[c->dev] = h->next;
  }
  pthread_mutex_unlock(&g_pool_m);
  if (!h) {
    h = calloc(1, sizeof *h);
    if (!h) return em_fail(EM_ERR_OOM, "[%s] out of host memory", c->op);
    (void)em_cu_enter(c->dev);
    em_status st = la_solver(c, cusolverDnCreate(&h->sol), "cusolverDnCreate");
    if (st == EM_OK) st = la_blas(c, cublasCreate(&h->blas), "cublasCreate");
    if (st == EM_OK)
      st = la_solver(c, cusolverDnCreateParams(&h->params), "cusolverDnCreateParams");
    if (st == EM_OK)
      st = la_cuda(c, cudaEventCreateWithFlags(&h->done, cudaEventDisableTiming),
                   "cudaEventCreateWithFlags");
    if (st != EM_OK) {
      handle_destroy(h);
      return st;
    }
  }
  em_status st = la_solver(c, cusolverDnSetStream(h->sol, c->s), "cusolverDnSetStream");
  if (st == EM_OK) st = la_blas(c, cublasSetStream(h->blas, c->s), "cublasSetStream");
  if (st == EM_OK && h->used && h->last != c->s)
    st = la_cuda(c, cudaStreamWaitEvent(c->s, h->done, 0), "cudaStreamWaitEvent");
  if (st != EM_OK) {
    handle_destroy(h);
    return st;
  }
  c->h = h;
  return EM_OK;
}

/* Device workspace from the engine's allocator (freed by la_end). */
static void *la_alloc(la_ctx *c, size_t bytes, em_status *st) {
  if (c->nmem >= LA_MAXMEM) {
    *st = em_fail(EM_ERR_RUNTIME, "[%s] too many workspaces", c->op);
    return NULL;
  }
  if (bytes == 0) bytes = 16;
  void *p = em_cuda_alloc(c->dev, bytes, st);
  if (!p) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", em_last_error());
    *st = em_fail(*st, "[%s] workspace of %zu bytes for %s: %s", c->op, bytes,
                  c->desc, msg);
    return NULL;
  }
  c->mem[c->nmem] = p;
  c->memsz[c->nmem++] = bytes;
  *st = EM_OK;
  return p;
}

#define ALLOC(var, bytes)                              \
  do {                                                 \
    em_status ast_;                                    \
    var = la_alloc(c, (size_t)(bytes), &ast_);         \
    if (!var) return ast_;                             \
  } while (0)

/* Returns the handle (its work recorded on the stream) and the workspaces
 * (stream-ordered reuse: the allocator tags them with the stream). */
static void la_end(la_ctx *c) {
  if (c->host || c->gj) {
    /* host-side resources may still be read by queued work */
    if (cudaStreamSynchronize(c->s) != cudaSuccess) (void)cudaGetLastError();
    free(c->host);
    if (c->gj) (void)cusolverDnDestroyGesvdjInfo(c->gj);
  }
  for (int i = 0; i < c->nmem; i++) em_cuda_free(c->dev, c->mem[i], c->memsz[i]);
  c->nmem = 0;
  if (c->h) {
    la_h *h = c->h;
    if (cudaEventRecord(h->done, c->s) != cudaSuccess) {
      (void)cudaGetLastError();
      handle_destroy(h); /* cannot order the next user after us */
    } else {
      h->used = true;
      h->last = c->s;
      pthread_mutex_lock(&g_pool_m);
      h->next = g_pool[c->dev];
      g_pool[c->dev] = h;
      pthread_mutex_unlock(&g_pool_m);
    }
    c->h = NULL;
  }
}

/* devInfo of count matrices, mapped as the CPU maps LAPACK's info. */
enum { INFO_IGNORE, INFO_SINGULAR, INFO_CONVERGE };

static em_status la_info(la_ctx *c, const int *dinfo, int64_t count,
                         const char *routine, int positive) {
  if (count <= 0) return EM_OK;
  int *h = malloc((size_t)count * sizeof *h);
  if (!h) return em_fail(EM_ERR_OOM, "[%s] out of host memory", c->op);
  em_status st = em_cu_download(c->dev, h, dinfo, (size_t)count * sizeof *h, c->s);
  if (st != EM_OK) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", em_last_error());
    free(h);
    return em_fail(st, "[%s] reading %s's info for %s: %s", c->op, routine, c->desc,
                   msg);
  }
  for (int64_t i = 0; i < count && st == EM_OK; i++) {
    if (h[i] < 0)
      st = em_fail(EM_ERR_RUNTIME,
                   "[%s] cuSOLVER %s failed (info %d, batch entry %lld) for %s",
                   c->op, routine, h[i], (long long)i, c->desc);
    else if (h[i] > 0 && positive == INFO_SINGULAR)
      st = em_fail(EM_ERR_ARGUMENT,
                   "[%s] can't solve for singular matrix (batch entry %lld)", c->op,
                   (long long)i);
    else if (h[i] > 0 && positive == INFO_CONVERGE)
      st = em_fail(EM_ERR_RUNTIME,
                   "[%s] %s did not converge (info %d, batch entry %lld) for %s",
                   c->op, routine, h[i], (long long)i, c->desc);
  }
  free(h);
  return st;
}

/* ---- typed library calls ---------------------------------------------------------- */

/* Calls the S/D/C/Z variant for c->t; pointers travel as void *. */
#define T4(c, r, S, D, C, Z, ARGS)        \
  switch ((c)->t) {                       \
    case EM_F32: r = S ARGS; break;       \
    case EM_F64: r = D ARGS; break;       \
    case EM_C64: r = C ARGS; break;       \
    default: r = Z ARGS; break;           \
  }

static const float one_s = 1.0f;
static const double one_d = 1.0;
static const cuComplex one_c = {1.0f, 0.0f};
static const cuDoubleComplex one_z = {1.0, 0.0};

static const void *la_one(const la_ctx *c) {
  switch (c->t) {
    case EM_F32: return &one_s;
    case EM_F64: return &one_d;
    case EM_C64: return &one_c;
    default: return &one_z;
  }
}

static int imin64(int64_t a, int64_t b) { return (int)(a < b ? a : b); }

/* Device array of count pointers base + i * stride. */
static em_status la_ptr_array(la_ctx *c, void *base, size_t stride,
                              int64_t count, void ***out) {
  void **p;
  ALLOC(p, (size_t)count * sizeof(void *));
  TRY(la_cuda(c, em_cu_la_ptrs(p, base, (int64_t)stride, count, c->s),
              "the pointer-array kernel"));
  *out = p;
  return EM_OK;
}

/* Row-major rows x cols matrices (batch stride rows * cols) into
 * column-major ones (leading dimension rows, batch stride dbs). */
static em_status to_colmajor(la_ctx *c, const void *src, void *dst,
                             int64_t dbs, int64_t batch, int64_t rows,
                             int64_t cols) {
  return la_cuda(c,
                 em_cu_la_copy(c->tc, src, rows * cols, 1, cols, dst, dbs, rows,
                               1, batch, cols, rows, LA_ALL, 0, 0, c->s),
                 "the layout copy");
}

/* Column-major matrices (leading dimension ld, batch stride sbs) into
 * row-major rows x cols ones (batch stride dbs), masked/conjugated. */
static em_status from_colmajor(la_ctx *c, int tc, const void *src, int64_t sbs,
                               int64_t ld, void *dst, int64_t dbs,
                               int64_t batch, int64_t rows, int64_t cols,
                               int mask, int unit, int conj) {
  return la_cuda(c,
                 em_cu_la_copy(tc, src, sbs, 1, ld, dst, dbs, cols, 1, batch,
                               rows, cols, mask, unit, conj, c->s),
                 "the layout copy");
}

static em_status la_memcpy(la_ctx *c, void *dst, const void *src, size_t n) {
  if (n == 0) return EM_OK;
  return la_cuda(c, cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, c->s),
                 "cudaMemcpyAsync");
}

/* LU with partial pivoting of batch column-major n x n matrices at w
 * (contiguous): 1-based interchanges in ipiv (batch x n), info per matrix. */
static em_status la_getrf(la_ctx *c, void *w, int64_t batch, int64_t n,
                          int *ipiv, int *info) {
  TRY(la_handles(c));
  size_t msz = (size_t)(n * n) * c->es;
  /* Complex matrices take cuSOLVER's getrf, whose pivot choice is LAPACK's
   * (the largest |re| + |im|): cuBLAS's batched getrf picked other pivots
   * than the CPU on random complex input (H200 run), a valid LU but not the
   * CPU's P, L, U. */
  bool cplx = c->t == EM_C64 || c->t == EM_C128;
  if (batch > 1 && n <= LA_SMALL && !cplx) {
    void **ptrs = NULL;
    TRY(la_ptr_array(c, w, msz, batch, &ptrs));
    for (int64_t b0 = 0; b0 < batch; b0 += LA_CHUNK) {
      int cnt = imin64(LA_CHUNK, batch - b0);
      cublasStatus_t r;
      T4(c, r, cublasSgetrfBatched, cublasDgetrfBatched, cublasCgetrfBatched,
         cublasZgetrfBatched,
         (c->h->blas, (int)n, (void *)(ptrs + b0), (int)n, ipiv + b0 * n,
          info + b0, cnt));
      TRY(la_blas(c, r, "getrfBatched"));
    }
    return EM_OK;
  }
  int lwork = 0;
  cusolverStatus_t r;
  T4(c, r, cusolverDnSgetrf_bufferSize, cusolverDnDgetrf_bufferSize,
     cusolverDnCgetrf_bufferSize, cusolverDnZgetrf_bufferSize,
     (c->h->sol, (int)n, (int)n, w, (int)n, &lwork));
  TRY(la_solver(c, r, "getrf_bufferSize"));
  void *work;
  ALLOC(work, (size_t)(lwork > 0 ? lwork : 1) * c->es);
  for (int64_t b = 0; b < batch; b++) {
    void *wb = (char *)w + (size_t)b * msz;
    T4(c, r, cusolverDnSgetrf, cusolverDnDgetrf, cusolverDnCgetrf,
       cusolverDnZgetrf,
       (c->h->sol, (int)n, (int)n, wb, (int)n, work, ipiv + b * n, info + b));
    TRY(la_solver(c, r, "getrf"));
  }
  return EM_OK;
}

/* Cholesky (lower) of batch column-major n x n matrices at w. */
static em_status la_potrf(la_ctx *c, void *w, int64_t batch, int64_t n,
                          int *info) {
  TRY(la_handles(c));
  size_t msz = (size_t)(n * n) * c->es;
  const cublasFillMode_t lo = CUBLAS_FILL_MODE_LOWER;
  cusolverStatus_t r;
  if (batch > 1 && n <= LA_SMALL) {
    void **ptrs = NULL;
    TRY(la_ptr_array(c, w, msz, batch, &ptrs));
    for (int64_t b0 = 0; b0 < batch; b0 += LA_CHUNK) {
      int cnt = imin64(LA_CHUNK, batch - b0);
      T4(c, r, cusolverDnSpotrfBatched, cusolverDnDpotrfBatched,
         cusolverDnCpotrfBatched, cusolverDnZpotrfBatched,
         (c->h->sol, lo, (int)n, (void *)(ptrs + b0), (int)n, info + b0, cnt));
      TRY(la_solver(c, r, "potrfBatched"));
    }
    return EM_OK;
  }
  int lwork = 0;
  T4(c, r, cusolverDnSpotrf_bufferSize, cusolverDnDpotrf_bufferSize,
     cusolverDnCpotrf_bufferSize, cusolverDnZpotrf_bufferSize,
     (c->h->sol, lo, (int)n, w, (int)n, &lwork));
  TRY(la_solver(c, r, "potrf_bufferSize"));
  void *work;
  ALLOC(work, (size_t)(lwork > 0 ? lwork : 1) * c->es);
  for (int64_t b = 0; b < batch; b++) {
    void *wb = (char *)w + (size_t)b * msz;
    T4(c, r, cusolverDnSpotrf, cusolverDnDpotrf, cusolverDnCpotrf,
       cusolverDnZpotrf, (c->h->sol, lo, (int)n, wb, (int)n, work, lwork, info + b));
    TRY(la_solver(c, r, "potrf"));
  }
  return EM_OK;
}

/* B[b] := op(A[b])^-1 B[b] (left) or B[b] op(A[b])^-1 (right), alpha 1,
 * column-major, for batch pairs at strides sa / sb bytes. *pa / *pb cache
 * the pointer arrays between calls (NULL at first). */
static em_status la_trsm(la_ctx *c, cublasSideMode_t side,
                         cublasFillMode_t uplo, cublasOperation_t op,
                         cublasDiagType_t diag, int64_t m, int64_t n, void *A,
                         int64_t lda, size_t sa, void *B, int64_t ldb,
                         size_t sb, int64_t batch, void ***pa, void ***pb) {
  TRY(la_handles(c));
  const void *one = la_one(c);
  int64_t tri = side == CUBLAS_SIDE_LEFT ? m : n;
  cublasStatus_t r;
  if (batch > 1 && tri <= LA_SMALL) {
    if (!*pa) TRY(la_ptr_array(c, A, sa, batch, pa));
    if (!*pb) TRY(la_ptr_array(c, B, sb, batch, pb));
    for (int64_t b0 = 0; b0 < batch; b0 += LA_CHUNK) {
      int cnt = imin64(LA_CHUNK, batch - b0);
      T4(c, r, cublasStrsmBatched, cublasDtrsmBatched, cublasCtrsmBatched,
         cublasZtrsmBatched,
         (c->h->blas, side, uplo, op, diag, (int)m, (int)n, one,
          (void *)(*pa + b0), (int)lda, (void *)(*pb + b0), (int)ldb, cnt));
      TRY(la_blas(c, r, "trsmBatched"));
    }
    return EM_OK;
  }
  for (int64_t b = 0; b < batch; b++) {
    void *ab = (char *)A + (size_t)b * sa, *bb = (char *)B + (size_t)b * sb;
    T4(c, r, cublasStrsm, cublasDtrsm, cublasCtrsm, cublasZtrsm,
       (c->h->blas, side, uplo, op, diag, (int)m, (int)n, one, ab, (int)lda,
        bb, (int)ldb));
    TRY(la_blas(c, r, "trsm"));
  }
  return EM_OK;
}

static int64_t lead_batch(const em_array *a) {
  int64_t b = 1;
  for (int i = 0; i < a->ndim - 2; i++) b *= a->shape[i];
  return b;
}

/* ---- cholesky ----------------------------------------------------------------------- */

static em_status chol_run(la_ctx *c, const em_array *a, em_array *out,
                          int64_t batch, int64_t n) {
  void *w;
  int *info;
  ALLOC(w, (size_t)(batch * n * n) * c->es);
  ALLOC(info, (size_t)batch * sizeof(int));
  /* w column-major is A: potrf('L') reads A's lower triangle, as the CPU. */
  TRY(to_colmajor(c, em_array_ptr(a), w, n * n, batch, n, n));
  TRY(la_potrf(c, w, batch, n, info));
  TRY(from_colmajor(c, c->tc, w, n * n, n, em_array_ptr(out), n * n, batch, n,
                    n, LA_LOWER, 0, 0));
  /* not positive definite (info > 0): Nx's algorithm, as the CPU */
  TRY(la_cuda(c,
              em_cu_la_chol_nx(c->tc, em_array_ptr(a), em_array_ptr(out), info,
                               batch, n, c->s),
              "the Nx Cholesky kernel"));
  return la_info(c, info, batch, "potrf", INFO_IGNORE);
}

em_status em_cu_k_cholesky(em_array *out, const em_node *node) {
  em_array *a = NULL;
  TRY(em_contiguous(node->in[0], &a));
  em_status st = em_alloc_output(out);
  int64_t n = a->shape[a->ndim - 1];
  int64_t batch = lead_batch(a);
  if (st == EM_OK && n > 0 && batch > 0) {
    la_ctx c;
    st = la_init(&c, "cholesky", a, NULL, out->dev.index);
    if (st == EM_OK) st = chol_run(&c, a, out, batch, n);
    la_end(&c);
  }
  em_array_release(a);
  return st;
}

/* ---- lu ------------------------------------------------------------------------------- */

static em_status lu_run(la_ctx *c, const em_array *a, em_array *out,
                        int64_t batch, int64_t n) {
  size_t off[3];
  em_linalg_slots(EM_OP_lu, a->dtype, batch, n, n, false, off);
  char *base = em_array_ptr(out);
  void *w;
  int *ipiv, *info, *perm;
  ALLOC(w, (size_t)(batch * n * n) * c->es);
  ALLOC(ipiv, (size_t)(batch * n) * sizeof(int));
  ALLOC(perm, (size_t)(batch * n) * sizeof(int));
  ALLOC(info, (size_t)batch * sizeof(int));
  TRY(to_colmajor(c, em_array_ptr(a), w, n * n, batch, n, n)); /* w = A */
  TRY(la_getrf(c, w, batch, n, ipiv, info));
  /* exactly singular (info > 0): LAPACK's own steps, which never divide by
   * the zero pivot (the library may, filling L and U with NaN) */
  TRY(la_cuda(c, em_cu_la_getf2(c->tc, em_array_ptr(a), w, ipiv, info, batch, n,
                                c->s),
              "the LU fallback kernel"));
  TRY(la_cuda(c, em_cu_la_perm(c->tc, ipiv, perm, base + off[0], batch, n, c->s),
              "the permutation kernel"));
  TRY(from_colmajor(c, c->tc, w, n * n, n, base + off[1], n * n, batch, n, n,
                    LA_STRICT_LOWER, 1, 0));
  TRY(from_colmajor(c, c->tc, w, n * n, n, base + off[2], n * n, batch, n, n,
                    LA_UPPER, 0, 0));
  /* info > 0: exactly singular; the factorisation is still complete */
  return la_info(c, info, batch, "getrf", INFO_IGNORE);
}

em_status em_cu_k_lu(em_array *out, const em_node *node) {
  em_array *a = NULL;
  TRY(em_contiguous(node->in[0], &a));
  em_status st = em_alloc_output(out);
  int64_t n = a->shape[a->ndim - 1];
  int64_t batch = lead_batch(a);
  if (st == EM_OK && n > 0 && batch > 0) {
    la_ctx c;
    st = la_init(&c, "lu", a, NULL, out->dev.index);
    if (st == EM_OK) st = lu_run(&c, a, out, batch, n);
    la_end(&c);
  }
  em_array_release(a);
  return st;
}

/* ---- solve ----------------------------------------------------------------------------- */

static em_status solve_run(la_ctx *c, const em_array *a, const em_array *b,
                           em_array *out, int64_t batch, int64_t n, int64_t r) {
  size_t msz = (size_t)(n * n) * c->es, bsz = (size_t)(n * r) * c->es;
  void *w;
  int *ipiv, *info;
  ALLOC(w, (size_t)batch * msz);
  ALLOC(ipiv, (size_t)(batch * n) * sizeof(int));
  ALLOC(info, (size_t)batch * sizeof(int));
  /* w read column-major is A^T = P L U */
  TRY(la_memcpy(c, w, em_array_ptr(a), (size_t)batch * msz));
  TRY(la_getrf(c, w, batch, n, ipiv, info));
  TRY(la_info(c, info, batch, "getrf", INFO_SINGULAR));
  /* x read column-major is X^T (r x n, ld r), and
   * X^T = B^T A^-T = B^T U^-1 L^-1 P^T */
  void *x = em_array_ptr(out);
  TRY(la_memcpy(c, x, em_array_ptr(b), (size_t)batch * bsz));
  void **pa = NULL, **pb = NULL;
  TRY(la_trsm(c, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_N,
              CUBLAS_DIAG_NON_UNIT, r, n, w, n, msz, x, r, bsz, batch, &pa, &pb));
  TRY(la_trsm(c, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N,
              CUBLAS_DIAG_UNIT, r, n, w, n, msz, x, r, bsz, batch, &pa, &pb));
  return la_cuda(c, em_cu_la_unpivot_rows(c->tc, x, ipiv, batch, n, r, c->s),
                 "the pivoting kernel");
}

em_status em_cu_k_solve(em_array *out, const em_node *node) {
  em_array *a = NULL, *b = NULL;
  TRY(em_contiguous(node->in[0], &a));
  em_status st = em_contiguous(node->in[1], &b);
  if (st == EM_OK) st = em_alloc_output(out);
  if (st == EM_OK) {
    int64_t n = a->shape[a->ndim - 1];
    int64_t r = b->ndim == a->ndim - 1 ? 1 : b->shape[b->ndim - 1];
    int64_t batch = lead_batch(a);
    if (n > 0 && r > 0 && batch > 0) {
      la_ctx c;
      st = la_init(&c, "solve", a, b, out->dev.index);
      if (st == EM_OK) st = solve_run(&c, a, b, out, batch, n, r);
      la_end(&c);
    }
  }
  em_array_release(a);
  em_array_release(b);
  return st;
}

/* ---- determinant ------------------------------------------------------------------------- */

static em_status det_run(la_ctx *c, const em_array *a, em_array *out,
                         int64_t batch, int64_t n) {
  if (n <= 3)
    return la_cuda(c, em_cu_la_det_small(c->tc, em_array_ptr(a), em_array_ptr(out),
                                         batch, n, c->s),
                   "the determinant kernel");
  size_t msz = (size_t)(n * n) * c->es;
  void *w;
  int *ipiv, *info;
  ALLOC(w, (size_t)batch * msz);
  ALLOC(ipiv, (size_t)(batch * n) * sizeof(int));
  ALLOC(info, (size_t)batch * sizeof(int));
  /* getrf of A^T (det A^T = det A), as the CPU */
  TRY(la_memcpy(c, w, em_array_ptr(a), (size_t)batch * msz));
  TRY(la_getrf(c, w, batch, n, ipiv, info));
  TRY(la_cuda(c, em_cu_la_det_lu(c->tc, w, ipiv, em_array_ptr(out), batch, n, c->s),
              "the determinant kernel"));
  return la_info(c, info, batch, "getrf", INFO_IGNORE);
}

em_status em_cu_k_determinant(em_array *out, const em_node *node) {
  em_array *a = NULL;
  TRY(em_contiguous(node->in[0], &a));
  em_status st = em_alloc_output(out);
  int64_t n = a->shape[a->ndim - 1];
  int64_t batch = out->size;
  if (st == EM_OK && batch > 0) {
    la_ctx c;
    st = la_init(&c, "determinant", a, NULL, out->dev.index);
    if (st == EM_OK) st = det_run(&c, a, out, batch, n);
    la_end(&c);
  }
  em_array_release(a);
  return st;
}

/* ---- triangular_solve ------------------------------------------------------------------ */

static em_status ts_run(la_ctx *c, const em_array *a, const em_array *b,
                        em_array *out, const em_node *node, int64_t batch,
                        int64_t n, int64_t rows, int64_t cols) {
  int *flags;
  ALLOC(flags, (size_t)batch * sizeof(int));
  TRY(la_cuda(c, em_cu_la_zero_diag(c->tc, em_array_ptr(a), flags, batch, n, c->s),
              "the diagonal check"));
  TRY(la_info(c, flags, batch, "diagonal check", INFO_SINGULAR));
  size_t asz = (size_t)(n * n) * c->es, bsz = (size_t)(rows * cols) * c->es;
  void *x = em_array_ptr(out);
  TRY(la_memcpy(c, x, em_array_ptr(b), (size_t)batch * bsz));
  /* Column-major, x is X^T (cols x rows) and a is A^T: op(A) X = B becomes
   * X^T op(A^T) = B^T on the other side with the other triangle (the
   * row-major identity CBLAS applies). */
  bool left = node->p.linalg.left_side, lower = node->p.linalg.lower;
  cublasOperation_t op = node->p.linalg.transform == EM_TRANSFORM_TRANSPOSE ? CUBLAS_OP_T
                       : node->p.linalg.transform == EM_TRANSFORM_ADJOINT  ? CUBLAS_OP_C
                                                                           : CUBLAS_OP_N;
  void **pa = NULL, **pb = NULL;
  return la_trsm(c, left ? CUBLAS_SIDE_RIGHT : CUBLAS_SIDE_LEFT,
                 lower ? CUBLAS_FILL_MODE_UPPER : CUBLAS_FILL_MODE_LOWER, op,
                 CUBLAS_DIAG_NON_UNIT, cols, rows, em_array_ptr(a), n, asz, x,
                 cols, bsz, batch, &pa, &pb);
}

em_status em_cu_k_triangular_solve(em_array *out, const em_node *node) {
  em_array *a = NULL, *b = NULL;
  TRY(em_contiguous(node->in[0], &a));
  em_status st = em_contiguous(node->in[1], &b);
  if (st == EM_OK) st = em_alloc_output(out);
  if (st == EM_OK) {
    int64_t n = a->shape[a->ndim - 1];
    bool left = node->p.linalg.left_side;
    int64_t rows, cols;
    if (b->ndim == a->ndim - 1) { /* a batch of vectors */
      rows = left ? n : 1;
      cols = left ? 1 : n;
    } else {
      rows = b->shape[b->ndim - 2];
      cols = b->shape[b->ndim - 1];
    }
    int64_t batch = lead_batch(a);
    if (n > 0 && rows > 0 && cols > 0 && batch > 0) {
      la_ctx c;
      st = la_init(&c, "triangular_solve", a, b, out->dev.index);
      if (st == EM_OK) st = ts_run(&c, a, b, out, node, batch, n, rows, cols);
      la_end(&c);
    }
  }
  em_array_release(a);
  em_array_release(b);
  return st;
}

/* ---- qr -------------------------------------------------------------------------------- */

static em_status qr_run(la_ctx *c, const em_array *a, em_array *out,
                        int64_t batch, int64_t m, int64_t n, bool complete) {
  int64_t k = m < n ? m : n, qc = complete ? m : k, rr = complete ? m : k;
  size_t off[3];
  em_linalg_slots(EM_OP_qr, a->dtype, batch, m, n, complete, off);
  char *q = em_array_ptr(out) + off[0], *rp = em_array_ptr(out) + off[1];
  if (k == 0) { /* no reflectors: Q is (part of) the identity, R is zero */
    TRY(from_colmajor(c, c->tc, NULL, 0, 1, q, m * qc, batch, m, qc, LA_ALL, 1, 0));
    return from_colmajor(c, c->tc, NULL, 0, 1, rp, rr * n, batch, rr, n, LA_ALL, 0, 0);
  }
  /* w: column-major m x wc (ld m) per matrix, A in its first n columns;
   * orgqr then forms Q's qc columns in place. */
  int64_t wc = n > qc ? n : qc;
  size_t wsz = (size_t)(m * wc) * c->es;
  void *w, *tau;
  int *info;
  ALLOC(w, (size_t)batch * wsz);
  ALLOC(tau, (size_t)(batch * k) * c->es);
  ALLOC(info, (size_t)(2 * batch) * sizeof(int));
  if (wc > n) /* orgqr's extra columns: defined, not workspace garbage */
    TRY(la_cuda(c, cudaMemsetAsync(w, 0, (size_t)batch * wsz, c->s), "cudaMemsetAsync"));
  TRY(to_colmajor(c, em_array_ptr(a), w, m * wc, batch, m, n));
  TRY(la_handles(c));
  cusolverStatus_t r;
  int l1 = 0, l2 = 0;
  T4(c, r, cusolverDnSgeqrf_bufferSize, cusolverDnDgeqrf_bufferSize,
     cusolverDnCgeqrf_bufferSize, cusolverDnZgeqrf_bufferSize,
     (c->h->sol, (int)m, (int)n, w, (int)m, &l1));
  TRY(la_solver(c, r, "geqrf_bufferSize"));
  T4(c, r, cusolverDnSorgqr_bufferSize, cusolverDnDorgqr_bufferSize,
     cusolverDnCungqr_bufferSize, cusolverDnZungqr_bufferSize,
     (c->h->sol, (int)m, (int)qc, (int)k, w, (int)m, tau, &l2));
  TRY(la_solver(c, r, c->rtc == c->tc ? "orgqr_bufferSize" : "ungqr_bufferSize"));
  int lwork = l1 > l2 ? l1 : l2;
  void *work;
  ALLOC(work, (size_t)(lwork > 0 ? lwork : 1) * c->es);
  for (int64_t b = 0; b < batch; b++) {
    void *wb = (char *)w + (size_t)b * wsz, *tb = (char *)tau + (size_t)(b * k) * c->es;
    T4(c, r, cusolverDnSgeqrf, cusolverDnDgeqrf, cusolverDnCgeqrf, cusolverDnZgeqrf,
       (c->h->sol, (int)m, (int)n, wb, (int)m, tb, work, lwork, info + b));
    TRY(la_solver(c, r, "geqrf"));
  }
  /* R: the upper triangle of the factored matrix (rows >= k are zero) */
  TRY(from_colmajor(c, c->tc, w, m * wc, m, rp, rr * n, batch, rr, n, LA_UPPER, 0, 0));
  for (int64_t b = 0; b < batch; b++) {
    void *wb = (char *)w + (size_t)b * wsz, *tb = (char *)tau + (size_t)(b * k) * c->es;
    T4(c, r, cusolverDnSorgqr, cusolverDnDorgqr, cusolverDnCungqr, cusolverDnZungqr,
       (c->h->sol, (int)m, (int)qc, (int)k, wb, (int)m, tb, work, lwork,
        info + batch + b));
    TRY(la_solver(c, r, c->rtc == c->tc ? "orgqr" : "ungqr"));
  }
  TRY(from_colmajor(c, c->tc, w, m * wc, m, q, m * qc, batch, m, qc, LA_ALL, 0, 0));
  TRY(la_info(c, info, batch, "geqrf", INFO_IGNORE));
  return la_info(c, info + batch, batch, c->rtc == c->tc ? "orgqr" : "ungqr",
                 INFO_IGNORE);
}

em_status em_cu_k_qr(em_array *out, const em_node *node) {
  em_array *a = NULL;
  TRY(em_contiguous(node->in[0], &a));
  em_status st = em_alloc_output(out);
  int64_t m = a->shape[a->ndim - 2], n = a->shape[a->ndim - 1];
  int64_t batch = lead_batch(a);
  if (st == EM_OK && batch > 0 && out->size > 0) {
    la_ctx c;
    st = la_init(&c, "qr", a, NULL, out->dev.index);
    if (st == EM_OK) st = qr_run(&c, a, out, batch, m, n, node->p.linalg.complete);
    la_end(&c);
  }
  em_array_release(a);
  return st;
}

/* ---- eigh ------------------------------------------------------------------------------- */

static cudaDataType la_cuda_type(em_dtype t) {
  switch (t) {
    case EM_F32: return CUDA_R_32F;
    case EM_F64: return CUDA_R_64F;
    case EM_C64: return CUDA_C_32F;
    default: return CUDA_C_64F;
  }
}

/* Eigen-decomposition (vectors, lower triangle) of batch column-major
 * n x n matrices at w (overwritten by the eigenvectors), eigenvalues
 * ascending into ev (batch x n, real). */
static em_status la_syevd(la_ctx *c, void *w, void *ev, int64_t batch,
                          int64_t n, int *info) {
  TRY(la_handles(c));
  size_t msz = (size_t)(n * n) * c->es;
  const cusolverEigMode_t jobz = CUSOLVER_EIG_MODE_VECTOR;
  const cublasFillMode_t lo = CUBLAS_FILL_MODE_LOWER;
  cusolverStatus_t r;
  if (batch > 1 && n <= LA_SMALL) {
    /* XsyevBatched: n * lda * batch must fit in int32 */
    int64_t chunk = (int64_t)INT_MAX / (n * n);
    if (chunk > batch) chunk = batch;
    cudaDataType dt = la_cuda_type(c->t), rt = c->rtc == LA_TC_F32 ? CUDA_R_32F : CUDA_R_64F;
    size_t dbytes = 0, hbytes = 0;
    r = cusolverDnXsyevBatched_bufferSize(c->h->sol, c->h->params, jobz, lo, n, dt,
                                          w, n, rt, ev, dt, &dbytes, &hbytes, chunk);
    TRY(la_solver(c, r, "XsyevBatched_bufferSize"));
    void *dws;
    ALLOC(dws, dbytes);
    if (hbytes) {
      c->host = malloc(hbytes);
      if (!c->host) return em_fail(EM_ERR_OOM, "[%s] out of host memory", c->op);
    }
    for (int64_t b0 = 0; b0 < batch; b0 += chunk) {
      int64_t cnt = batch - b0 < chunk ? batch - b0 : chunk;
      r = cusolverDnXsyevBatched(c->h->sol, c->h->params, jobz, lo, n, dt,
                                 (char *)w + (size_t)b0 * msz, n, rt,
                                 (char *)ev + (size_t)(b0 * n) * c->rs, dt, dws,
                                 dbytes, c->host, hbytes, info + b0, cnt);
      TRY(la_solver(c, r, "XsyevBatched"));
    }
    return EM_OK;
  }
  int lwork = 0;
  T4(c, r, cusolverDnSsyevd_bufferSize, cusolverDnDsyevd_bufferSize,
     cusolverDnCheevd_bufferSize, cusolverDnZheevd_bufferSize,
     (c->h->sol, jobz, lo, (int)n, w, (int)n, ev, &lwork));
  TRY(la_solver(c, r, c->rtc == c->tc ? "syevd_bufferSize" : "heevd_bufferSize"));
  void *work;
  ALLOC(work, (size_t)(lwork > 0 ? lwork : 1) * c->es);
  for (int64_t b = 0; b < batch; b++) {
    void *wb = (char *)w + (size_t)b * msz, *eb = (char *)ev + (size_t)(b * n) * c->rs;
    T4(c, r, cusolverDnSsyevd, cusolverDnDsyevd, cusolverDnCheevd, cusolverDnZheevd,
       (c->h->sol, jobz, lo, (int)n, wb, (int)n, eb, work, lwork, info + b));
    TRY(la_solver(c, r, c->rtc == c->tc ? "syevd" : "heevd"));
  }
  return EM_OK;
}

static em_status eigh_run(la_ctx *c, const em_array *a, em_array *out,
                          int64_t batch, int64_t n) {
  size_t off[3];
  em_linalg_slots(EM_OP_eigh, a->dtype, batch, n, n, false, off);
  char *ev = em_array_ptr(out) + off[0], *vec = em_array_ptr(out) + off[1];
  void *w;
  int *flags, *info;
  ALLOC(w, (size_t)(batch * n * n) * c->es);
  ALLOC(flags, (size_t)batch * sizeof(int));
  ALLOC(info, (size_t)batch * sizeof(int));
  TRY(to_colmajor(c, em_array_ptr(a), w, n * n, batch, n, n)); /* w = A */
  /* NaN or inf anywhere: the solver sees zeros, the outputs become NaN */
  TRY(la_cuda(c, cudaMemsetAsync(flags, 0, (size_t)batch * sizeof(int), c->s),
              "cudaMemsetAsync"));
  TRY(la_cuda(c, em_cu_la_nonfinite(c->tc, em_array_ptr(a), flags, batch, n * n, c->s),
              "the finite check"));
  TRY(la_cuda(c, em_cu_la_flag_fill(c->tc, w, flags, batch, n * n, 0, c->s),
              "the fill kernel"));
  TRY(la_syevd(c, w, ev, batch, n, info));
  /* eigenvector j is column j of w (column-major) and of the output */
  TRY(from_colmajor(c, c->tc, w, n * n, n, vec, n * n, batch, n, n, LA_ALL, 0, 0));
  TRY(la_cuda(c, em_cu_la_flag_fill(c->tc, vec, flags, batch, n * n, 1, c->s),
              "the fill kernel"));
  TRY(la_cuda(c, em_cu_la_flag_fill(c->rtc, ev, flags, batch, n, 1, c->s),
              "the fill kernel"));
  return la_info(c, info, batch,
                 batch > 1 && n <= LA_SMALL ? "syevBatched"
                 : c->rtc == c->tc          ? "syevd"
                                            : "heevd",
                 INFO_CONVERGE);
}

em_status em_cu_k_eigh(em_array *out, const em_node *node) {
  em_array *a = NULL;
  TRY(em_contiguous(node->in[0], &a));
  em_status st = em_alloc_output(out);
  int64_t n = a->shape[a->ndim - 1];
  int64_t batch = lead_batch(a);
  if (st == EM_OK && n > 0 && batch > 0) {
    la_ctx c;
    st = la_init(&c, "eigh", a, NULL, out->dev.index);
    if (st == EM_OK) st = eigh_run(&c, a, out, batch, n);
    la_end(&c);
  }
  em_array_release(a);
  return st;
}

/* ---- svd --------------------------------------------------------------------------------- */

/* Batches of small matrices (m, n <= 32): gesvdjBatched on w = A
 * column-major; it returns full U (m x m) and V (n x n, not V^H). */
static em_status svd_jacobi(la_ctx *c, const em_array *a, char *u, char *s,
                            char *vt, int *flags, int *info, int64_t batch,
                            int64_t m, int64_t n, int64_t uc, int64_t vr) {
  size_t asz = (size_t)(m * n) * c->es;
  void *w, *U, *V;
  ALLOC(w, (size_t)batch * asz);
  ALLOC(U, (size_t)(batch * m * m) * c->es);
  ALLOC(V, (size_t)(batch * n * n) * c->es);
  TRY(to_colmajor(c, em_array_ptr(a), w, m * n, batch, m, n));
  TRY(la_cuda(c, em_cu_la_flag_fill(c->tc, w, flags, batch, m * n, 0, c->s),
              "the fill kernel"));
  TRY(la_handles(c));
  TRY(la_solver(c, cusolverDnCreateGesvdjInfo(&c->gj), "CreateGesvdjInfo"));
  TRY(la_solver(c, cusolverDnXgesvdjSetSortEig(c->gj, 1), "XgesvdjSetSortEig"));
  const cusolverEigMode_t jobz = CUSOLVER_EIG_MODE_VECTOR;
  cusolverStatus_t r;
  int lwork = 0;
  T4(c, r, cusolverDnSgesvdjBatched_bufferSize, cusolverDnDgesvdjBatched_bufferSize,
     cusolverDnCgesvdjBatched_bufferSize, cusolverDnZgesvdjBatched_bufferSize,
     (c->h->sol, jobz, (int)m, (int)n, w, (int)m, (void *)s, U, (int)m, V,
      (int)n, &lwork, c->gj, imin64(LA_CHUNK, batch)));
  TRY(la_solver(c, r, "gesvdjBatched_bufferSize"));
  void *work;
  ALLOC(work, (size_t)(lwork > 0 ? lwork : 1) * c->es);
  for (int64_t b0 = 0; b0 < batch; b0 += LA_CHUNK) {
    int cnt = imin64(LA_CHUNK, batch - b0);
    T4(c, r, cusolverDnSgesvdjBatched, cusolverDnDgesvdjBatched,
       cusolverDnCgesvdjBatched, cusolverDnZgesvdjBatched,
       (c->h->sol, jobz, (int)m, (int)n, (void *)((char *)w + (size_t)b0 * asz),
        (int)m, (void *)(s + (size_t)(b0 * (m < n ? m : n)) * c->rs),
        (void *)((char *)U + (size_t)(b0 * m * m) * c->es), (int)m,
        (void *)((char *)V + (size_t)(b0 * n * n) * c->es), (int)n, work, lwork,
        info + b0, c->gj, cnt));
    TRY(la_solver(c, r, "gesvdjBatched"));
  }
  /* u = U's first uc columns; vt[i][j] = conj(V[j][i]) for i < vr */
  TRY(from_colmajor(c, c->tc, U, m * m, m, u, m * uc, batch, m, uc, LA_ALL, 0, 0));
  return la_cuda(c,
                 em_cu_la_copy(c->tc, V, n * n, n, 1, vt, vr * n, n, 1, batch, vr,
                               n, LA_ALL, 0, 1, c->s),
                 "the layout copy");
}

/* One gesvd per matrix (m >= n only). */
static em_status svd_qr(la_ctx *c, const em_array *a, char *u, char *s,
                        char *vt, int *flags, int *info, int64_t batch,
                        int64_t m, int64_t n, int64_t uc, int64_t vr,
                        bool full) {
  int64_t k = m < n ? m : n;
  size_t asz = (size_t)(m * n) * c->es;
  void *w, *rwork, *U = NULL, *VT = NULL;
  ALLOC(w, (size_t)batch * asz);
  ALLOC(rwork, (size_t)(k > 1 ? k : 1) * c->rs);
  bool wide = n >= m;
  /* Wide (n >= m): the buffer read column-major is X = A^T (n x m, tall);
   * X = U' S V'^H gives A = conj(V') S U'^T: gesvd's VT (m x m, ld m) is
   * u row-major and its U (n x vr, ld n) is vt row-major, no copies.
   * Tall: w = A column-major, then U and VT are transposed into place. */
  int64_t M = wide ? n : m, N = wide ? m : n;
  if (wide) {
    TRY(la_memcpy(c, w, em_array_ptr(a), (size_t)batch * asz));
  } else {
    TRY(to_colmajor(c, em_array_ptr(a), w, m * n, batch, m, n));
    ALLOC(U, (size_t)(batch * m * uc) * c->es);
    ALLOC(VT, (size_t)(batch * n * n) * c->es);
  }
  TRY(la_cuda(c, em_cu_la_flag_fill(c->tc, w, flags, batch, m * n, 0, c->s),
              "the fill kernel"));
  TRY(la_handles(c));
  cusolverStatus_t r;
  int lwork = 0;
  T4(c, r, cusolverDnSgesvd_bufferSize, cusolverDnDgesvd_bufferSize,
     cusolverDnCgesvd_bufferSize, cusolverDnZgesvd_bufferSize,
     (c->h->sol, (int)M, (int)N, &lwork));
  TRY(la_solver(c, r, "gesvd_bufferSize"));
  void *work;
  ALLOC(work, (size_t)(lwork > 0 ? lwork : 1) * c->es);
  signed char jobu = full ? 'A' : 'S', jobvt = 'A';
  for (int64_t b = 0; b < batch; b++) {
    void *wb = (char *)w + (size_t)b * asz;
    void *sb = s + (size_t)(b * k) * c->rs;
    void *ub, *vb;
    int ldu, ldvt;
    if (wide) {
      ub = vt + (size_t)(b * vr * n) * c->es; /* U' */
      ldu = (int)n;
      vb = u + (size_t)(b * m * uc) * c->es; /* V'^H */
      ldvt = (int)m;
    } else {
      ub = (char *)U + (size_t)(b * m * uc) * c->es;
      ldu = (int)m;
      vb = (char *)VT + (size_t)(b * n * n) * c->es;
      ldvt = (int)n;
    }
    T4(c, r, cusolverDnSgesvd, cusolverDnDgesvd, cusolverDnCgesvd, cusolverDnZgesvd,
       (c->h->sol, jobu, jobvt, (int)M, (int)N, wb, (int)M, sb, ub, ldu, vb, ldvt,
        work, lwork, rwork, info + b));
    TRY(la_solver(c, r, "gesvd"));
  }
  if (!wide) {
    TRY(from_colmajor(c, c->tc, U, m * uc, m, u, m * uc, batch, m, uc, LA_ALL, 0, 0));
    TRY(from_colmajor(c, c->tc, VT, n * n, n, vt, vr * n, batch, vr, n, LA_ALL, 0, 0));
  }
  return EM_OK;
}

static em_status svd_run(la_ctx *c, const em_array *a, em_array *out,
                         int64_t batch, int64_t m, int64_t n, bool full) {
  int64_t k = m < n ? m : n, uc = full ? m : k, vr = full ? n : k;
  size_t off[3];
  em_linalg_slots(EM_OP_svd, a->dtype, batch, m, n, full, off);
  char *u = em_array_ptr(out) + off[0], *s = em_array_ptr(out) + off[1],
       *vt = em_array_ptr(out) + off[2];
  if (k == 0) { /* as the CPU: identity-like u and vt */
    TRY(from_colmajor(c, c->tc, NULL, 0, 1, u, m * uc, batch, m, uc, LA_ALL, 1, 0));
    return from_colmajor(c, c->tc, NULL, 0, 1, vt, vr * n, batch, vr, n, LA_ALL, 1, 0);
  }
  int *flags, *info;
  ALLOC(flags, (size_t)batch * sizeof(int));
  ALLOC(info, (size_t)batch * sizeof(int));
  TRY(la_cuda(c, cudaMemsetAsync(flags, 0, (size_t)batch * sizeof(int), c->s),
              "cudaMemsetAsync"));
  TRY(la_cuda(c, em_cu_la_nonfinite(c->tc, em_array_ptr(a), flags, batch, m * n, c->s),
              "the finite check"));
  bool jacobi = batch > 1 && m <= 32 && n <= 32;
  if (jacobi)
    TRY(svd_jacobi(c, a, u, s, vt, flags, info, batch, m, n, uc, vr));
  else
    TRY(svd_qr(c, a, u, s, vt, flags, info, batch, m, n, uc, vr, full));
  TRY(la_cuda(c, em_cu_la_flag_fill(c->tc, u, flags, batch, m * uc, 1, c->s),
              "the fill kernel"));
  TRY(la_cuda(c, em_cu_la_flag_fill(c->rtc, s, flags, batch, k, 1, c->s),
              "the fill kernel"));
  TRY(la_cuda(c, em_cu_la_flag_fill(c->tc, vt, flags, batch, vr * n, 1, c->s),
              "the fill kernel"));
  return la_info(c, info, batch, jacobi ? "gesvdjBatched" : "gesvd", INFO_CONVERGE);
}

em_status em_cu_k_svd(em_array *out, const em_node *node) {
  em_array *a = NULL;
  TRY(em_contiguous(node->in[0], &a));
  em_status st = em_alloc_output(out);
  int64_t m = a->shape[a->ndim - 2], n = a->shape[a->ndim - 1];
  int64_t batch = lead_batch(a);
  if (st == EM_OK && batch > 0 && out->size > 0) {
    la_ctx c;
    st = la_init(&c, "svd", a, NULL, out->dev.index);
    if (st == EM_OK)
      st = svd_run(&c, a, out, batch, m, n, node->p.linalg.full_matrices);
    la_end(&c);
  }
  em_array_release(a);
  return st;
}
