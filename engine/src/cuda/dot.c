/* dot.c — em_dot on CUDA: f16, bf16, f32 and f64 through cuBLASLt
 * (f32 without TF32 unless EMILY_CUDA_TF32=1; f16/bf16 accumulate in f32),
 * c64 and c128 through cuBLAS's strided batched GEMM, f8 and f8_e4m3fn as
 * the CPU does (operands decoded to f32, an f32 GEMM, one rounding back),
 * and every integer dtype (s2..u4 included) with the wrapping tiled kernel
 * of dot_int.cu.
 *
 * Operands are laid out as [batch, M, K] / [batch, K, N] row-major, or
 * their transposes, without a copy when a permutation of the input already
 * is (em_dot_operand, shared with the CPU backend); the row-major product
 * C = A B is computed as the column-major C^T = B^T A^T. */
#include <cublasLt.h>
#include <cublas_v2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda-impl.h"

#define MAX_CU 16
#define LT_WORKSPACE ((size_t)32 << 20)

static cublasLtHandle_t g_lt[MAX_CU];
static cublasHandle_t g_blas[MAX_CU];
static pthread_mutex_t g_h_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t g_blas_m[MAX_CU] = {PTHREAD_MUTEX_INITIALIZER};

static em_status lt_handle(int dev, cublasLtHandle_t *h) {
  pthread_mutex_lock(&g_h_m);
  cublasStatus_t s = CUBLAS_STATUS_SUCCESS;
  if (!g_lt[dev]) {
    (void)em_cu_enter(dev);
    s = cublasLtCreate(&g_lt[dev]);
  }
  *h = g_lt[dev];
  pthread_mutex_unlock(&g_h_m);
  if (s != CUBLAS_STATUS_SUCCESS)
    return em_fail(EM_ERR_RUNTIME, "[dot] cublasLtCreate: %s",
                   cublasLtGetStatusString(s));
  return EM_OK;
}

static em_status blas_handle(int dev, cublasHandle_t *h) {
  pthread_mutex_lock(&g_h_m);
  cublasStatus_t s = CUBLAS_STATUS_SUCCESS;
  if (!g_blas[dev]) {
    (void)em_cu_enter(dev);
    s = cublasCreate(&g_blas[dev]);
    if (s == CUBLAS_STATUS_SUCCESS) pthread_mutex_init(&g_blas_m[dev], NULL);
  }
  *h = g_blas[dev];
  pthread_mutex_unlock(&g_h_m);
  if (s != CUBLAS_STATUS_SUCCESS)
    return em_fail(EM_ERR_RUNTIME, "[dot] cublasCreate: %s",
                   cublasGetStatusString(s));
  return EM_OK;
}

#define LT_TRY(call)                                                       \
  do {                                                                     \
    cublasStatus_t s_ = (call);                                            \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                     \
      st = em_fail(EM_ERR_RUNTIME, "[dot] cuBLASLt %s: %s", #call,        \
                   cublasLtGetStatusString(s_));                           \
      goto done;                                                           \
    }                                                                      \
  } while (0)

/* ---- GEMM ------------------------------------------------------------------ */

/* Largest power of two (at most 256) dividing the address. */
static uint32_t align_of(const void *p) {
  uintptr_t a = (uintptr_t)p;
  uint32_t al = 256;
  while (al > 1 && a % al) al /= 2;
  return al;
}

/* ---- algorithm choice, cached per problem ----------------------------- */

#define MAX_CANDIDATES 16
#define TUNE_REPS 3 /* timed runs per candidate, after one warm-up */
#define TUNE_FLOPS 1073741824.0 /* M*N*K*batch from which candidates are timed */
#define ALGO_CACHE 64

typedef struct {
  int dev, dtype, compute;
  int64_t M, N, K, batch;
  bool ta, tb;
  uint32_t al_a, al_b, al_c;
} algo_key;

static struct {
  bool used;
  algo_key key;
  cublasLtMatmulAlgo_t algo;
} g_algos[ALGO_CACHE];
static int g_algo_next = 0;
static pthread_mutex_t g_algo_m = PTHREAD_MUTEX_INITIALIZER;

static bool key_eq(const algo_key *a, const algo_key *b) {
  return a->dev == b->dev && a->dtype == b->dtype && a->compute == b->compute &&
         a->M == b->M && a->N == b->N && a->K == b->K && a->batch == b->batch &&
         a->ta == b->ta && a->tb == b->tb && a->al_a == b->al_a &&
         a->al_b == b->al_b && a->al_c == b->al_c;
}

static bool algo_lookup(const algo_key *k, cublasLtMatmulAlgo_t *algo) {
  bool hit = false;
  pthread_mutex_lock(&g_algo_m);
  for (int i = 0; i < ALGO_CACHE && !hit; i++)
    if (g_algos[i].used && key_eq(&g_algos[i].key, k)) {
      *algo = g_algos[i].algo;
      hit = true;
    }
  pthread_mutex_unlock(&g_algo_m);
  return hit;
}

/* Round-robin replacement: plain, and a miss costs one heuristic query. */
static void algo_store(const algo_key *k, const cublasLtMatmulAlgo_t *algo) {
  pthread_mutex_lock(&g_algo_m);
  int i = g_algo_next;
  g_algo_next = (g_algo_next + 1) % ALGO_CACHE;
  g_algos[i].used = true;
  g_algos[i].key = *k;
  g_algos[i].algo = *algo;
  pthread_mutex_unlock(&g_algo_m);
}

/* Times each candidate (one warm-up, then TUNE_REPS runs between events) on
 * stream s and returns the fastest in *best. C is the real output: the
 * caller's final run overwrites it. Candidates that fail are skipped. */
static em_status pick_fastest(cublasLtHandle_t h, cublasLtMatmulDesc_t op,
                              cublasLtMatrixLayout_t la, cublasLtMatrixLayout_t lb,
                              cublasLtMatrixLayout_t lc,
                              const cublasLtMatmulHeuristicResult_t *res, int nres,
                              bool f64, const void *A, const void *B, void *C,
                              void *ws, cudaStream_t s, int *best) {
  float one32 = 1, zero32 = 0;
  double one64 = 1, zero64 = 0;
  const void *one = f64 ? (const void *)&one64 : (const void *)&one32;
  const void *zero = f64 ? (const void *)&zero64 : (const void *)&zero32;
  cudaEvent_t e0 = NULL, e1 = NULL;
  CU_TRY("dot", cudaEventCreate(&e0));
  cudaError_t ce = cudaEventCreate(&e1);
  if (ce != cudaSuccess) {
    cudaEventDestroy(e0);
    return em_cu_fail(ce, "dot", "cudaEventCreate");
  }
  float best_ms = -1;
  *best = 0;
  em_status st = EM_OK;
  for (int i = 0; i < nres && st == EM_OK; i++) {
    if (res[i].state != CUBLAS_STATUS_SUCCESS) continue;
    if (cublasLtMatmul(h, op, one, B, la, A, lb, zero, C, lc, C, lc, &res[i].algo,
                       ws, LT_WORKSPACE, s) != CUBLAS_STATUS_SUCCESS)
      continue; /* not runnable here: skip it */
    ce = cudaEventRecord(e0, s);
    for (int r = 0; r < TUNE_REPS && ce == cudaSuccess; r++)
      if (cublasLtMatmul(h, op, one, B, la, A, lb, zero, C, lc, C, lc, &res[i].algo,
                         ws, LT_WORKSPACE, s) != CUBLAS_STATUS_SUCCESS)
        ce = cudaErrorUnknown;
    if (ce == cudaErrorUnknown) {
      ce = cudaSuccess;
      continue;
    }
    if (ce == cudaSuccess) ce = cudaEventRecord(e1, s);
    if (ce == cudaSuccess) ce = cudaEventSynchronize(e1);
    float ms = 0;
    if (ce == cudaSuccess) ce = cudaEventElapsedTime(&ms, e0, e1);
    if (ce != cudaSuccess) {
      st = em_cu_fail(ce, "dot", "timing cuBLASLt candidates");
      break;
    }
    if (getenv("EMILY_CUDA_TUNE_LOG"))
      fprintf(stderr, "[dot] candidate %d: %.4f ms\n", i, ms / TUNE_REPS);
    if (best_ms < 0 || ms < best_ms) {
      best_ms = ms;
      *best = i;
    }
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return st;
}

/* Row-major C[b] = op(A[b]) op(B[b]); A is [M, K] (ta: stored [K, M]), B is
 * [K, N] (tb: stored [N, K]). */
static em_status gemm_lt(int dev, em_dtype t, const void *A, const void *B,
                         void *C, int64_t batch, int64_t M, int64_t N,
                         int64_t K, bool ta, bool tb, cudaStream_t s) {
  cublasLtHandle_t h;
  em_status st = lt_handle(dev, &h);
  if (st != EM_OK) return st;
  cudaDataType_t dt = t == EM_F32 ? CUDA_R_32F : t == EM_F64 ? CUDA_R_64F
                    : t == EM_F16 ? CUDA_R_16F : CUDA_R_16BF;
  bool f64 = t == EM_F64;
  cublasComputeType_t ct = f64 ? CUBLAS_COMPUTE_64F : CUBLAS_COMPUTE_32F;
  if (t == EM_F32 && getenv("EMILY_CUDA_TF32")) ct = CUBLAS_COMPUTE_32F_FAST_TF32;
  cudaDataType_t sct = f64 ? CUDA_R_64F : CUDA_R_32F;
  float one32 = 1, zero32 = 0;
  double one64 = 1, zero64 = 0;
  cublasLtMatmulDesc_t op = NULL;
  cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
  cublasLtMatmulPreference_t pref = NULL;
  void *ws = NULL;
  /* cuBLAS's A is B^T ([N, K] column-major), its B is A^T ([K, M]). */
  cublasOperation_t opa = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t opb = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  uint64_t ar = tb ? K : N, ac = tb ? N : K, br = ta ? M : K, bc = ta ? K : M;
  int64_t lda = (int64_t)ar, ldb = (int64_t)br, ldc = N;
  int32_t bcount = (int32_t)batch;
  int64_t sa = N * K, sb = K * M, sc = N * M;
  if (batch > INT32_MAX)
    return em_fail(EM_ERR_UNSUPPORTED, "[dot] batch of %lld is too large for cuBLASLt",
                   (long long)batch);
  LT_TRY(cublasLtMatmulDescCreate(&op, ct, sct));
  LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
  LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
  LT_TRY(cublasLtMatrixLayoutCreate(&la, dt, ar, ac, lda));
  LT_TRY(cublasLtMatrixLayoutCreate(&lb, dt, br, bc, ldb));
  LT_TRY(cublasLtMatrixLayoutCreate(&lc, dt, (uint64_t)N, (uint64_t)M, ldc));
  if (batch > 1) {
    LT_TRY(cublasLtMatrixLayoutSetAttribute(la, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bcount, sizeof bcount));
    LT_TRY(cublasLtMatrixLayoutSetAttribute(la, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sa, sizeof sa));
    LT_TRY(cublasLtMatrixLayoutSetAttribute(lb, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bcount, sizeof bcount));
    LT_TRY(cublasLtMatrixLayoutSetAttribute(lb, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sb, sizeof sb));
    LT_TRY(cublasLtMatrixLayoutSetAttribute(lc, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bcount, sizeof bcount));
    LT_TRY(cublasLtMatrixLayoutSetAttribute(lc, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sc, sizeof sc));
  }
  ws = em_cuda_alloc(dev, LT_WORKSPACE, &st);
  if (!ws) goto done;
  uint64_t wsb = LT_WORKSPACE;
  LT_TRY(cublasLtMatmulPreferenceCreate(&pref));
  LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb));
  /* Views may start anywhere: only algorithms that fit the pointers. */
  uint32_t al_a = align_of(B), al_b = align_of(A), al_c = align_of(C);
  LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof al_a));
  LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof al_b));
  LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c, sizeof al_c));
  LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c, sizeof al_c));
  cublasLtMatmulAlgo_t algo;
  algo_key key = {dev, (int)t, (int)ct, M, N, K, batch, ta, tb, al_a, al_b, al_c};
  if (!algo_lookup(&key, &algo)) {
    cublasLtMatmulHeuristicResult_t res[MAX_CANDIDATES];
    int nres = 0;
    /* Large problems time the heuristic's first candidates once and keep
     * the fastest (its first pick can be ~10% off on Hopper); small ones
     * take the first: tuning would cost more than it saves. */
    bool tune = (double)M * (double)N * (double)K * (double)batch >= TUNE_FLOPS;
    LT_TRY(cublasLtMatmulAlgoGetHeuristic(h, op, la, lb, lc, lc, pref,
                                          tune ? MAX_CANDIDATES : 1, res, &nres));
    if (nres < 1) {
      st = em_fail(EM_ERR_UNSUPPORTED, "[dot] cuBLASLt has no algorithm for %s %lldx%lldx%lld",
                   em_dtype_name(t), (long long)M, (long long)N, (long long)K);
      goto done;
    }
    int best = 0;
    if (tune && nres > 1) {
      st = pick_fastest(h, op, la, lb, lc, res, nres, f64, A, B, C, ws, s, &best);
      if (st != EM_OK) goto done;
    }
    algo = res[best].algo;
    algo_store(&key, &algo);
  }
  LT_TRY(cublasLtMatmul(h, op, f64 ? (const void *)&one64 : (const void *)&one32, B,
                        la, A, lb, f64 ? (const void *)&zero64 : (const void *)&zero32,
                        C, lc, C, lc, &algo, ws, LT_WORKSPACE, s));
done:
  if (ws) em_cuda_free(dev, ws, LT_WORKSPACE);
  if (pref) cublasLtMatmulPreferenceDestroy(pref);
  if (la) cublasLtMatrixLayoutDestroy(la);
  if (lb) cublasLtMatrixLayoutDestroy(lb);
  if (lc) cublasLtMatrixLayoutDestroy(lc);
  if (op) cublasLtMatmulDescDestroy(op);
  return st;
}

static em_status gemm_complex(int dev, em_dtype t, const void *A, const void *B,
                              void *C, int64_t batch, int64_t M, int64_t N,
                              int64_t K, bool ta, bool tb, cudaStream_t s) {
  if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX || batch > INT32_MAX)
    return em_fail(EM_ERR_UNSUPPORTED, "[dot] %s matrices too large for cuBLAS",
                   em_dtype_name(t));
  cublasHandle_t h;
  em_status st = blas_handle(dev, &h);
  if (st != EM_OK) return st;
  cublasOperation_t opa = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t opb = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  int lda = (int)(tb ? K : N), ldb = (int)(ta ? M : K), ldc = (int)N;
  long long sa = N * K, sb = K * M, sc = N * M;
  pthread_mutex_lock(&g_blas_m[dev]);
  cublasStatus_t r = cublasSetStream(h, s);
  if (r == CUBLAS_STATUS_SUCCESS) {
    if (t == EM_C64) {
      const cuComplex one = {1, 0}, zero = {0, 0};
      r = cublasCgemmStridedBatched(h, opa, opb, (int)N, (int)M, (int)K, &one,
                                    B, lda, sa, A, ldb, sb, &zero, C, ldc, sc,
                                    (int)batch);
    } else {
      const cuDoubleComplex one = {1, 0}, zero = {0, 0};
      r = cublasZgemmStridedBatched(h, opa, opb, (int)N, (int)M, (int)K, &one,
                                    B, lda, sa, A, ldb, sb, &zero, C, ldc, sc,
                                    (int)batch);
    }
  }
  pthread_mutex_unlock(&g_blas_m[dev]);
  if (r != CUBLAS_STATUS_SUCCESS)
    return em_fail(EM_ERR_RUNTIME, "[dot] cuBLAS %s GEMM: %s", em_dtype_name(t),
                   cublasGetStatusString(r));
  return EM_OK;
}

/* Integer dot: dot_int.cu. */
static em_status gemm_int(int dev, em_dtype t, const void *A, const void *B,
                          void *C, int64_t batch, int64_t M, int64_t N,
                          int64_t K, bool ta, bool tb, cudaStream_t s) {
  int wrap = t == EM_S2 ? 1 : t == EM_S4 ? 2 : t == EM_U2 ? 3 : t == EM_U4 ? 4 : 0;
  cudaError_t e = em_cu_dot_int_launch(A, B, C, (int)em_dtype_size(t), wrap,
                                       batch, M, N, K, ta, tb,
                                       em_cu_device_props(dev)->sms, s);
  if (e != cudaSuccess) return em_cu_fail(e, "dot", "the integer dot kernel");
  return EM_OK;
}

/* f8 / f8_e4m3fn: decoded to f32 (exact), an f32 GEMM, rounded back once. */
static em_status gemm_f8(int dev, em_dtype t, const void *A, const void *B,
                         void *C, int64_t batch, int64_t M, int64_t N,
                         int64_t K, bool ta, bool tb, cudaStream_t s) {
  em_status st = EM_OK;
  size_t na = (size_t)(batch * M * K), nb = (size_t)(batch * K * N),
         nc = (size_t)(batch * M * N);
  float *a32 = em_cuda_alloc(dev, na * 4, &st), *b32 = NULL, *c32 = NULL;
  if (a32) b32 = em_cuda_alloc(dev, nb * 4, &st);
  if (b32) c32 = em_cuda_alloc(dev, nc * 4, &st);
  if (c32) st = em_cu_convert(t, EM_F32, A, a32, (int64_t)na, dev);
  if (c32 && st == EM_OK) st = em_cu_convert(t, EM_F32, B, b32, (int64_t)nb, dev);
  if (c32 && st == EM_OK)
    st = gemm_lt(dev, EM_F32, a32, b32, c32, batch, M, N, K, ta, tb, s);
  if (c32 && st == EM_OK) st = em_cu_convert(EM_F32, t, c32, C, (int64_t)nc, dev);
  if (a32) em_cuda_free(dev, a32, na * 4);
  if (b32) em_cuda_free(dev, b32, nb * 4);
  if (c32) em_cuda_free(dev, c32, nc * 4);
  return st;
}

em_status em_cu_k_dot(em_array *out, const em_node *n) {
  const em_array *a = n->in[0], *b = n->in[1];
  em_dtype t = out->dtype;
  if (!em_cu_dtype_storable(t))
    return em_fail(EM_ERR_UNSUPPORTED, "[dot] not supported on cuda for %s",
                   em_dtype_name(t));
  const int nca = n->p.dot.nca, nba = n->p.dot.nba;
  em_dot_dims dd;
  em_dot_dims_of(n, &dd);
  const int64_t B = dd.B, M = dd.M, N = dd.N, K = dd.K;

  int dev = out->dev.index;
  em_status st = em_alloc_output(out);
  if (st != EM_OK || out->size == 0) return st;
  cudaStream_t s = em_cu_enter(dev);
  if (K == 0) {
    CU_TRY("dot", cudaMemsetAsync(em_array_ptr(out), 0,
                                  (size_t)out->size * em_dtype_size(t), s));
    return EM_OK;
  }
  em_array *ca = NULL, *cb = NULL;
  bool ta, tb;
  st = em_dot_operand(a, n->p.dot.ba, nba, dd.fa, dd.nfa, n->p.dot.ca, nca, &ca, &ta);
  if (st == EM_OK)
    st = em_dot_operand(b, n->p.dot.bb, nba, n->p.dot.cb, nca, dd.fb, dd.nfb, &cb, &tb);
  if (st == EM_OK) {
    if (t == EM_C64 || t == EM_C128)
      st = gemm_complex(dev, t, em_array_ptr(ca), em_array_ptr(cb),
                        em_array_ptr(out), B, M, N, K, ta, tb, s);
    else if (em_dtype_is_int(t))
      st = gemm_int(dev, t, em_array_ptr(ca), em_array_ptr(cb),
                    em_array_ptr(out), B, M, N, K, ta, tb, s);
    else if (t == EM_F8 || t == EM_F8_E4M3FN)
      st = gemm_f8(dev, t, em_array_ptr(ca), em_array_ptr(cb),
                   em_array_ptr(out), B, M, N, K, ta, tb, s);
    else
      st = gemm_lt(dev, t, em_array_ptr(ca), em_array_ptr(cb), em_array_ptr(out),
                   B, M, N, K, ta, tb, s);
  }
  em_array_release(ca);
  em_array_release(cb);
  return st;
}
