/* linalg.c — CPU kernels of the linear-algebra family, on LAPACK(E) and
 * CBLAS (OpenBLAS provides both the BLAS and the LAPACK underneath).
 *
 * Layout: our matrices are row-major. A row-major m x n buffer read as
 * column-major is the n x m transpose, and most kernels use that directly
 * instead of copying (LAPACKE's row-major mode would transpose in and out):
 *  - cholesky: potrf('U') of A^T writes conj(L)^T, i.e. row-major L.
 *  - qr: the LQ factorisation of A^T (gelqf/orglq) is A = Q R read back.
 *  - svd: gesdd of A^T gives A^T = U' S V'^H, so u = rows of V'^H and
 *    vt = rows of U' with no copy at all.
 *  - solve/determinant: getrf of A^T; solve finishes with two right-side
 *    trsm calls on the row-major b.
 *  - lu needs Nx's row pivoting of A itself, so it transposes once; eigh
 *    transposes (and conjugates) its eigenvectors once.
 * Only the _work LAPACKE entry points are used, in column-major mode: they
 * call LAPACK directly (no NaN pre-scan, no layout copies).
 *
 * Semantics (Nx 0.13; see also src/core/ops_linalg.c):
 *  - cholesky reads the lower triangle; a matrix that is not positive
 *    definite gets Nx's own algorithm (chol_nx: NaN from a negative pivot
 *    on, as Nx's default backend), never an error.
 *  - qr/svd signs and phases are LAPACK's Householder choices (they are
 *    not unique; a column of Nx's 4x3 qr example has the other sign); svd s is real and descending; eigh values are real and ascending (as
 *    EXLA and LAPACK; Nx's defn fallback orders by |value| descending).
 *  - eigh/svd of input with NaN or inf: every output NaN (LAPACK rejects
 *    or mis-handles such input).
 *  - lu: a = p . l . u as Nx returns it (p a permutation matrix of a's
 *    dtype); LAPACK's partial pivoting, which matches Nx's on real input
 *    (complex: pivots on |re| + |im|). Singular input is fine.
 *  - determinant: Nx's closed forms for n <= 3, LU above (0 whenever a
 *    pivot is exactly 0).
 *  - solve / triangular_solve: an exactly zero pivot / diagonal element
 *    fails the evaluation with "can't solve for singular matrix", as Nx's
 *    BinaryBackend raises.
 *
 * Batches: small matrices (n <= 64) are spread over the thread pool; large
 * ones run one after another and OpenBLAS threads inside each call.
 * Failures inside pool chunks are recorded in a fail_t and turned into
 * em_fail on the calling thread (messages are per-thread). */
#include <cblas.h>
#include <complex.h>
#include <lapacke.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../core/backend-impl.h"
#include "../core/parallel.h"
#include "cpu-kernels.h"

/* Defined in src/core/ops_linalg.c: byte offsets of packed outputs. */
size_t em_linalg_slots(em_op op, em_dtype t, int64_t batch, int64_t m,
                       int64_t n, bool flag, size_t off[3]);

#define TRY(x)                    \
  do {                            \
    em_status st_ = (x);          \
    if (st_ != EM_OK) return st_; \
  } while (0)

typedef float _Complex cfloat;
typedef double _Complex cdouble;

static bool cplx(em_dtype t) { return t == EM_C64 || t == EM_C128; }

/* ---- failures recorded from pool chunks -------------------------------- */

typedef enum { F_NONE, F_OOM, F_LAPACK, F_SINGULAR, F_CONVERGE } fail_kind;

typedef struct {
  atomic_int taken;
  fail_kind kind;
  const char *routine;
  int64_t batch;
  int info;
} fail_t;

static void record(fail_t *f, fail_kind kind, const char *routine,
                   int64_t batch, int info) {
  int expect = 0;
  if (!atomic_compare_exchange_strong(&f->taken, &expect, 1)) return;
  f->kind = kind;
  f->routine = routine;
  f->batch = batch;
  f->info = info;
}

static bool failed(fail_t *f) { return atomic_load(&f->taken) != 0; }

/* Turns a recorded failure into the calling thread's error. */
static em_status report(const char *op, fail_t *f) {
  if (!failed(f)) return EM_OK;
  switch (f->kind) {
    case F_OOM:
      return em_fail(EM_ERR_OOM, "[%s] out of host memory for LAPACK workspace",
                     op);
    case F_SINGULAR:
      return em_fail(EM_ERR_ARGUMENT,
                     "[%s] can't solve for singular matrix (batch entry %lld)",
                     op, (long long)f->batch);
    case F_CONVERGE:
      return em_fail(EM_ERR_RUNTIME,
                     "[%s] %s did not converge (info %d, batch entry %lld)", op,
                     f->routine, f->info, (long long)f->batch);
    default:
      return em_fail(EM_ERR_RUNTIME,
                     "[%s] LAPACK %s failed (info %d, batch entry %lld)", op,
                     f->routine, f->info, (long long)f->batch);
  }
}

/* Runs fn over `batch` matrices of order ~n: across the pool when they are
 * small, else on this thread (OpenBLAS threads each call). */
static void run_batches(int64_t batch, int64_t n, em_range_fn fn, void *ctx) {
  if (batch <= 0) return;
  if (batch == 1 || n > 64) {
    fn(ctx, 0, batch, 0);
    return;
  }
  int64_t work = n * n * n + 1;
  int64_t grain = 65536 / work;
  em_parallel_for(batch, grain < 1 ? 1 : grain, fn, ctx);
}

/* ---- element helpers --------------------------------------------------- */

/* Sets element i of a t-typed buffer to re + im*i (im ignored if real). */
static void set_val(em_dtype t, void *base, int64_t i, double re, double im) {
  switch (t) {
    case EM_F32: ((float *)base)[i] = (float)re; break;
    case EM_F64: ((double *)base)[i] = re; break;
    case EM_C64:
      ((float *)base)[2 * i] = (float)re;
      ((float *)base)[2 * i + 1] = (float)im;
      break;
    default:
      ((double *)base)[2 * i] = re;
      ((double *)base)[2 * i + 1] = im;
      break;
  }
}

static void fill_nan(em_dtype t, void *base, int64_t count) {
  for (int64_t i = 0; i < count; i++) set_val(t, base, i, NAN, NAN);
}

/* The rows x cols identity-like matrix (ones on the main diagonal). */
static void set_eye(em_dtype t, void *base, int64_t rows, int64_t cols) {
  memset(base, 0, (size_t)(rows * cols) * em_dtype_size(t));
  for (int64_t i = 0; i < rows && i < cols; i++)
    set_val(t, base, i * cols + i, 1, 0);
}

static bool all_finite(em_dtype t, const void *p, int64_t count) {
  int64_t k = cplx(t) ? 2 * count : count;
  if (t == EM_F32 || t == EM_C64) {
    const float *x = p;
    for (int64_t i = 0; i < k; i++)
      if (!isfinite(x[i])) return false;
  } else {
    const double *x = p;
    for (int64_t i = 0; i < k; i++)
      if (!isfinite(x[i])) return false;
  }
  return true;
}

/* Negates the imaginary parts of count complex elements (no-op if real). */
static void conj_inplace(em_dtype t, void *p, int64_t count) {
  if (t == EM_C64) {
    float *x = p;
    for (int64_t i = 0; i < count; i++) x[2 * i + 1] = -x[2 * i + 1];
  } else if (t == EM_C128) {
    double *x = p;
    for (int64_t i = 0; i < count; i++) x[2 * i + 1] = -x[2 * i + 1];
  }
}

#define TILE 32
/* dst[c * rows + r] = src[r * cols + c] for ES-byte elements, in tiles for
 * the caches (memcpy of a constant size compiles to plain moves). */
#define TRANSPOSE_FNS(ES)                                                  \
  static void transpose_copy_##ES(const char *src, char *dst,             \
                                  int64_t rows, int64_t cols) {           \
    for (int64_t r0 = 0; r0 < rows; r0 += TILE)                            \
      for (int64_t c0 = 0; c0 < cols; c0 += TILE) {                        \
        int64_t r1 = r0 + TILE < rows ? r0 + TILE : rows;                  \
        int64_t c1 = c0 + TILE < cols ? c0 + TILE : cols;                  \
        for (int64_t r = r0; r < r1; r++)                                  \
          for (int64_t c = c0; c < c1; c++)                                \
            memcpy(dst + (c * rows + r) * ES, src + (r * cols + c) * ES,   \
                   ES);                                                    \
      }                                                                    \
  }                                                                        \
  static void transpose_square_##ES(char *a, int64_t n) {                  \
    char tmp[ES];                                                          \
    for (int64_t r0 = 0; r0 < n; r0 += TILE)                               \
      for (int64_t c0 = r0; c0 < n; c0 += TILE) {                          \
        int64_t r1 = r0 + TILE < n ? r0 + TILE : n;                        \
        int64_t c1 = c0 + TILE < n ? c0 + TILE : n;                        \
        for (int64_t r = r0; r < r1; r++)                                  \
          for (int64_t c = (c0 == r0 ? r + 1 : c0); c < c1; c++) {         \
            char *x = a + (r * n + c) * ES, *y = a + (c * n + r) * ES;     \
            memcpy(tmp, x, ES);                                            \
            memcpy(x, y, ES);                                              \
            memcpy(y, tmp, ES);                                            \
          }                                                                \
      }                                                                    \
  }
TRANSPOSE_FNS(4)
TRANSPOSE_FNS(8)
TRANSPOSE_FNS(16)

static void transpose_copy(em_dtype t, const void *src, void *dst,
                           int64_t rows, int64_t cols) {
  switch (em_dtype_size(t)) {
    case 4: transpose_copy_4(src, dst, rows, cols); break;
    case 8: transpose_copy_8(src, dst, rows, cols); break;
    default: transpose_copy_16(src, dst, rows, cols); break;
  }
}

static void transpose_square(em_dtype t, void *a, int64_t n) {
  switch (em_dtype_size(t)) {
    case 4: transpose_square_4(a, n); break;
    case 8: transpose_square_8(a, n); break;
    default: transpose_square_16(a, n); break;
  }
}

/* ---- LAPACK / BLAS dispatch (column-major) ----------------------------- */

#define CM LAPACK_COL_MAJOR

static lapack_int l_potrf(em_dtype t, lapack_int n, void *a) {
  switch (t) {
    case EM_F32: return LAPACKE_spotrf_work(CM, 'U', n, a, n);
    case EM_F64: return LAPACKE_dpotrf_work(CM, 'U', n, a, n);
    case EM_C64: return LAPACKE_cpotrf_work(CM, 'U', n, a, n);
    default: return LAPACKE_zpotrf_work(CM, 'U', n, a, n);
  }
}

static lapack_int l_getrf(em_dtype t, lapack_int n, void *a, lapack_int *ipiv) {
  switch (t) {
    case EM_F32: return LAPACKE_sgetrf_work(CM, n, n, a, n, ipiv);
    case EM_F64: return LAPACKE_dgetrf_work(CM, n, n, a, n, ipiv);
    case EM_C64: return LAPACKE_cgetrf_work(CM, n, n, a, n, ipiv);
    default: return LAPACKE_zgetrf_work(CM, n, n, a, n, ipiv);
  }
}

static lapack_int l_gelqf(em_dtype t, lapack_int m, lapack_int n, void *a,
                          lapack_int lda, void *tau, void *work,
                          lapack_int lwork) {
  switch (t) {
    case EM_F32: return LAPACKE_sgelqf_work(CM, m, n, a, lda, tau, work, lwork);
    case EM_F64: return LAPACKE_dgelqf_work(CM, m, n, a, lda, tau, work, lwork);
    case EM_C64: return LAPACKE_cgelqf_work(CM, m, n, a, lda, tau, work, lwork);
    default: return LAPACKE_zgelqf_work(CM, m, n, a, lda, tau, work, lwork);
  }
}

static lapack_int l_orglq(em_dtype t, lapack_int m, lapack_int n,
                          lapack_int k, void *a, lapack_int lda,
                          const void *tau, void *work, lapack_int lwork) {
  switch (t) {
    case EM_F32:
      return LAPACKE_sorglq_work(CM, m, n, k, a, lda, tau, work, lwork);
    case EM_F64:
      return LAPACKE_dorglq_work(CM, m, n, k, a, lda, tau, work, lwork);
    case EM_C64:
      return LAPACKE_cunglq_work(CM, m, n, k, a, lda, tau, work, lwork);
    default:
      return LAPACKE_zunglq_work(CM, m, n, k, a, lda, tau, work, lwork);
  }
}

static lapack_int l_syevd(em_dtype t, lapack_int n, void *a, void *w,
                          void *work, lapack_int lwork, void *rwork,
                          lapack_int lrwork, lapack_int *iwork,
                          lapack_int liwork) {
  switch (t) {
    case EM_F32:
      return LAPACKE_ssyevd_work(CM, 'V', 'U', n, a, n, w, work, lwork, iwork,
                                 liwork);
    case EM_F64:
      return LAPACKE_dsyevd_work(CM, 'V', 'U', n, a, n, w, work, lwork, iwork,
                                 liwork);
    case EM_C64:
      return LAPACKE_cheevd_work(CM, 'V', 'U', n, a, n, w, work, lwork, rwork,
                                 lrwork, iwork, liwork);
    default:
      return LAPACKE_zheevd_work(CM, 'V', 'U', n, a, n, w, work, lwork, rwork,
                                 lrwork, iwork, liwork);
  }
}

static lapack_int l_gesdd(em_dtype t, char jobz, lapack_int m, lapack_int n,
                          void *a, lapack_int lda, void *s, void *u,
                          lapack_int ldu, void *vt, lapack_int ldvt,
                          void *work, lapack_int lwork, void *rwork,
                          lapack_int *iwork) {
  switch (t) {
    case EM_F32:
      return LAPACKE_sgesdd_work(CM, jobz, m, n, a, lda, s, u, ldu, vt, ldvt,
                                 work, lwork, iwork);
    case EM_F64:
      return LAPACKE_dgesdd_work(CM, jobz, m, n, a, lda, s, u, ldu, vt, ldvt,
                                 work, lwork, iwork);
    case EM_C64:
      return LAPACKE_cgesdd_work(CM, jobz, m, n, a, lda, s, u, ldu, vt, ldvt,
                                 work, lwork, rwork, iwork);
    default:
      return LAPACKE_zgesdd_work(CM, jobz, m, n, a, lda, s, u, ldu, vt, ldvt,
                                 work, lwork, rwork, iwork);
  }
}

/* B := op(A)^-1 B (or B op(A)^-1), alpha = 1. */
static void b_trsm(em_dtype t, enum CBLAS_ORDER order, enum CBLAS_SIDE side,
                   enum CBLAS_UPLO uplo, enum CBLAS_TRANSPOSE trans,
                   enum CBLAS_DIAG diag, blasint m, blasint n, const void *a,
                   blasint lda, void *b, blasint ldb) {
  static const float one_c[2] = {1, 0};
  static const double one_z[2] = {1, 0};
  switch (t) {
    case EM_F32:
      cblas_strsm(order, side, uplo, trans, diag, m, n, 1.0f, a, lda, b, ldb);
      break;
    case EM_F64:
      cblas_dtrsm(order, side, uplo, trans, diag, m, n, 1.0, a, lda, b, ldb);
      break;
    case EM_C64:
      cblas_ctrsm(order, side, uplo, trans, diag, m, n, one_c, a, lda, b, ldb);
      break;
    default:
      cblas_ztrsm(order, side, uplo, trans, diag, m, n, one_z, a, lda, b, ldb);
      break;
  }
}

/* The size a LAPACK workspace query wrote into its first element. */
static lapack_int query_size(em_dtype t, const void *q) {
  double v = (t == EM_F32 || t == EM_C64) ? (double)*(const float *)q
                                          : *(const double *)q;
  if (!(v >= 1)) return 1;
  if (v > 2147483647.0) return 2147483647;
  return (lapack_int)v + 1; /* float rounding of large sizes */
}

/* ---- cholesky ----------------------------------------------------------- */

typedef struct {
  em_dtype t;
  int64_t n;
  const char *a;
  char *out;
  fail_t fail;
} chol_ctx;

/* Nx's own algorithm (Nx.LinAlg.Cholesky: Cholesky–Banachiewicz row by row,
 * eps 1e-10 added to divisors, |l| <= eps flushed to 0), run only for a
 * matrix LAPACK found not positive definite, so that such input gives what
 * Nx gives: the factor up to the failing pivot is the true one, sqrt of a
 * negative pivot is NaN (complex: the complex root) and NaN spreads to what
 * depends on it; a zero pivot gives zeros below it. */
#define NX_EPS 1e-10
/* In the element type's own precision, as Nx computes. */
#define CHOL_NX(T, R, SUF, SQRT, CONJ, ABS)                        \
  static void chol_nx_##SUF(const T *a, T *l, int64_t n) {        \
    memset(l, 0, (size_t)(n * n) * sizeof(T));                   \
    for (int64_t i = 0; i < n; i++)                               \
      for (int64_t j = 0; j <= i; j++) {                          \
        T s = 0;                                                  \
        for (int64_t p = 0; p < j; p++)                           \
          s += l[i * n + p] * CONJ(l[j * n + p]);                 \
        T d = a[i * n + j] - s;                                   \
        l[i * n + j] =                                            \
            i == j ? SQRT(d) : d / (l[j * n + j] + (R)NX_EPS);    \
      }                                                           \
    for (int64_t i = 0; i < n * n; i++)                           \
      if (ABS(l[i]) <= (R)NX_EPS) l[i] = 0;                       \
  }
#define NOCONJ(x) (x)
CHOL_NX(float, float, s, sqrtf, NOCONJ, fabsf)
CHOL_NX(double, double, d, sqrt, NOCONJ, fabs)
CHOL_NX(cfloat, float, c, csqrtf, conjf, cabsf)
CHOL_NX(cdouble, double, z, csqrt, conj, cabs)

static void chol_nx(em_dtype t, const void *src, void *dst, int64_t n) {
  switch (t) {
    case EM_F32: chol_nx_s(src, dst, n); break;
    case EM_F64: chol_nx_d(src, dst, n); break;
    case EM_C64: chol_nx_c(src, dst, n); break;
    default: chol_nx_z(src, dst, n); break;
  }
}

static void chol_range(void *vc, int64_t begin, int64_t end, int tid) {
  chol_ctx *c = vc;
  int64_t n = c->n;
  size_t es = em_dtype_size(c->t), msz = (size_t)(n * n) * es;
  for (int64_t b = begin; b < end && !failed(&c->fail); b++) {
    const char *src = c->a + (size_t)b * msz;
    char *dst = c->out + (size_t)b * msz;
    memcpy(dst, src, msz);
    lapack_int info = l_potrf(c->t, (lapack_int)n, dst);
    if (info < 0) {
      record(&c->fail, F_LAPACK, "potrf", b, info);
      return;
    }
    if (info > 0) chol_nx(c->t, src, dst, n);
    for (int64_t i = 0; i + 1 < n; i++)
      memset(dst + (size_t)(i * n + i + 1) * es, 0, (size_t)(n - i - 1) * es);
  }
}

em_status em_cpu_k_cholesky(em_array *out, const em_node *node) {
  em_array *a = NULL;
  TRY(em_contiguous(node->in[0], &a));
  em_status st = em_alloc_output(out);
  if (st == EM_OK) {
    int64_t n = a->shape[a->ndim - 1];
    chol_ctx c = {.t = a->dtype, .n = n, .a = em_array_ptr(a),
                  .out = em_array_ptr(out)};
    atomic_init(&c.fail.taken, 0);
    if (n > 0) run_batches(a->size / (n * n), n, chol_range, &c);
    st = report("cholesky", &c.fail);
  }
  em_array_release(a);
  return st;
}

/* ---- qr ----------------------------------------------------------------- */

typedef struct {
  em_dtype t;
  int64_t m, n, k, qc, rr;
  const char *a;
  char *q, *r;
  fail_t fail;
} qr_ctx;

static void qr_range(void *vc, int64_t begin, int64_t end, int tid) {
  qr_ctx *c = vc;
  em_dtype t = c->t;
  int64_t m = c->m, n = c->n, k = c->k, qc = c->qc, rr = c->rr;
  size_t es = em_dtype_size(t);
  size_t asz = (size_t)(m * n) * es, qsz = (size_t)(m * qc) * es,
         rsz = (size_t)(rr * n) * es;
  if (k == 0) { /* no reflectors: Q is (part of) the identity, R is zero */
    for (int64_t b = begin; b < end; b++) {
      set_eye(t, c->q + (size_t)b * qsz, m, qc);
      memset(c->r + (size_t)b * rsz, 0, rsz);
    }
    return;
  }
  /* X = A^T (column-major n x m, ld n) is factored in place in Q when Q's
   * slot is exactly as large (qc == n), else in scratch. */
  bool in_place = qc == n;
  double qbuf[4];
  lapack_int lwork = 1;
  if (l_gelqf(t, (lapack_int)n, (lapack_int)m, NULL, (lapack_int)n, NULL, qbuf,
              -1) == 0)
    lwork = query_size(t, qbuf);
  if (l_orglq(t, (lapack_int)qc, (lapack_int)m, (lapack_int)k, NULL,
              (lapack_int)qc, NULL, qbuf, -1) == 0) {
    lapack_int l2 = query_size(t, qbuf);
    if (l2 > lwork) lwork = l2;
  }
  void *work = malloc((size_t)lwork * es);
  void *tau = malloc((size_t)k * es);
  void *x = in_place ? NULL : malloc(asz);
  if (!work || !tau || (!in_place && !x)) {
    record(&c->fail, F_OOM, "", begin, 0);
    goto done;
  }
  for (int64_t b = begin; b < end && !failed(&c->fail); b++) {
    char *q = c->q + (size_t)b * qsz, *r = c->r + (size_t)b * rsz;
    char *xb = in_place ? q : x;
    memcpy(xb, c->a + (size_t)b * asz, asz);
    lapack_int info = l_gelqf(t, (lapack_int)n, (lapack_int)m, xb,
                              (lapack_int)n, tau, work, lwork);
    if (info != 0) {
      record(&c->fail, F_LAPACK, "gelqf", b, info);
      break;
    }
    /* R[i][j] = L(j, i) for j >= i: the upper part of X read row-major. */
    memset(r, 0, rsz);
    for (int64_t i = 0; i < k; i++)
      memcpy(r + (size_t)(i * n + i) * es, xb + (size_t)(i * n + i) * es,
             (size_t)(n - i) * es);
    if (!in_place) /* reflectors (rows 0..k-1 of X) into Q, ld qc */
      for (int64_t col = 0; col < m; col++)
        memcpy(q + (size_t)(col * qc) * es, xb + (size_t)(col * n) * es,
               (size_t)k * es);
    info = l_orglq(t, (lapack_int)qc, (lapack_int)m, (lapack_int)k, q,
                   (lapack_int)qc, tau, work, lwork);
    if (info != 0) {
      record(&c->fail, F_LAPACK, cplx(t) ? "unglq" : "orglq", b, info);
      break;
    }
  }
done:
  free(work);
  free(tau);
  free(x);
}

em_status em_cpu_k_qr(em_array *out, const em_node *node) {
  em_array *a = NULL;
  TRY(em_contiguous(node->in[0], &a));
  em_status st = em_alloc_output(out);
  if (st == EM_OK) {
    int64_t m = a->shape[a->ndim - 2], n = a->shape[a->ndim - 1];
    int64_t k = m < n ? m : n;
    bool complete = node->p.linalg.complete;
    int64_t batch = 1;
    for (int i = 0; i < a->ndim - 2; i++) batch *= a->shape[i];
    size_t off[3];
    em_linalg_slots(EM_OP_qr, a->dtype, batch, m, n, complete, off);
    char *base = em_array_ptr(out);
    qr_ctx c = {.t = a->dtype, .m = m, .n = n, .k = k,
                .qc = complete ? m : k, .rr = complete ? m : k,
                .a = em_array_ptr(a), .q = base + off[0], .r = base + off[1]};
    atomic_init(&c.fail.taken, 0);
    run_batches(batch, m > n ? m : n, qr_range, &c);
    st = report("qr", &c.fail);
  }
  em_array_release(a);
  return st;
}

/* ---- lu ----------------------------------------------------------------- */

typedef struct {
  em_dtype t;
  int64_t n;
  const char *a;
  char *p, *l, *u;
  fail_t fail;
} lu_ctx;

static void lu_range(void *vc, int64_t begin, int64_t end, int tid) {
  lu_ctx *c = vc;
  em_dtype t = c->t;
  int64_t n = c->n;
  size_t es = em_dtype_size(t), msz = (size_t)(n * n) * es;
  char *w = malloc(msz);
  lapack_int *ipiv = malloc((size_t)n * sizeof *ipiv);
  int64_t *perm = malloc((size_t)n * sizeof *perm);
  if (!w || !ipiv || !perm) {
    record(&c->fail, F_OOM, "", begin, 0);
    goto done;
  }
  for (int64_t b = begin; b < end && !failed(&c->fail); b++) {
    const char *a = c->a + (size_t)b * msz;
    char *P = c->p + (size_t)b * msz, *L = c->l + (size_t)b * msz,
         *U = c->u + (size_t)b * msz;
    transpose_copy(t, a, w, n, n); /* w column-major = A */
    lapack_int info = l_getrf(t, (lapack_int)n, w, ipiv);
    if (info < 0) {
      record(&c->fail, F_LAPACK, "getrf", b, info);
      break;
    }
    /* info > 0: exactly singular; the factorisation is still complete. */
    transpose_square(t, w, n); /* row-major: L below, U on and above */
    memset(L, 0, msz);
    memset(U, 0, msz);
    for (int64_t i = 0; i < n; i++) {
      memcpy(L + (size_t)(i * n) * es, w + (size_t)(i * n) * es,
             (size_t)i * es);
      set_val(t, L, i * n + i, 1, 0);
      memcpy(U + (size_t)(i * n + i) * es, w + (size_t)(i * n + i) * es,
             (size_t)(n - i) * es);
    }
    /* Row i of L U is row perm[i] of A, so A = P L U with P[perm[i]][i]. */
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = 0; i < n; i++) {
      int64_t j = ipiv[i] - 1, tmp = perm[i];
      perm[i] = perm[j];
      perm[j] = tmp;
    }
    memset(P, 0, msz);
    for (int64_t i = 0; i < n; i++) set_val(t, P, perm[i] * n + i, 1, 0);
  }
done:
  free(w);
  free(ipiv);
  free(perm);
}

em_status em_cpu_k_lu(em_array *out, const em_node *node) {
  em_array *a = NULL;
  TRY(em_contiguous(node->in[0], &a));
  em_status st = em_alloc_output(out);
  if (st == EM_OK) {
    int64_t n = a->shape[a->ndim - 1];
    int64_t batch = 1;
    for (int i = 0; i < a->ndim - 2; i++) batch *= a->shape[i];
    size_t off[3];
    em_linalg_slots(EM_OP_lu, a->dtype, batch, n, n, false, off);
    char *base = em_array_ptr(out);
    lu_ctx c = {.t = a->dtype, .n = n, .a = em_array_ptr(a),
                .p = base + off[0], .l = base + off[1], .u = base + off[2]};
    atomic_init(&c.fail.taken, 0);
    if (n > 0) run_batches(batch, n, lu_range, &c);
    st = report("lu", &c.fail);
  }
  em_array_release(a);
  return st;
}

/* ---- eigh --------------------------------------------------------------- */

typedef struct {
  em_dtype t;
  int64_t n;
  const char *a;
  char *w, *v;
  fail_t fail;
} eigh_ctx;

static void eigh_range(void *vc, int64_t begin, int64_t end, int tid) {
  eigh_ctx *c = vc;
  em_dtype t = c->t, rt = t == EM_C64 ? EM_F32 : t == EM_C128 ? EM_F64 : t;
  int64_t n = c->n;
  size_t es = em_dtype_size(t), rs = em_dtype_size(rt),
         msz = (size_t)(n * n) * es;
  double qw[4], qr[4];
  lapack_int qi = 0, lwork = 1, lrwork = 1, liwork = 1;
  if (l_syevd(t, (lapack_int)n, NULL, NULL, qw, -1, qr, -1, &qi, -1) == 0) {
    lwork = query_size(t, qw);
    if (cplx(t)) lrwork = query_size(rt, qr);
    liwork = qi > 1 ? qi : 1;
  }
  void *work = malloc((size_t)lwork * es);
  void *rwork = cplx(t) ? malloc((size_t)lrwork * rs) : NULL;
  lapack_int *iwork = malloc((size_t)liwork * sizeof *iwork);
  if (!work || !iwork || (cplx(t) && !rwork)) {
    record(&c->fail, F_OOM, "", begin, 0);
    goto done;
  }
  for (int64_t b = begin; b < end && !failed(&c->fail); b++) {
    const char *a = c->a + (size_t)b * msz;
    char *v = c->v + (size_t)b * msz, *w = c->w + (size_t)(b * n) * rs;
    if (!all_finite(t, a, n * n)) {
      fill_nan(rt, w, n);
      fill_nan(t, v, n * n);
      continue;
    }
    /* Read column-major, the buffer is A^T = conj(A): same eigenvalues,
     * conjugated eigenvectors, stored as columns of the column-major V. */
    memcpy(v, a, msz);
    lapack_int info = l_syevd(t, (lapack_int)n, v, w, work, lwork, rwork,
                              lrwork, iwork, liwork);
    if (info < 0) {
      record(&c->fail, F_LAPACK, cplx(t) ? "heevd" : "syevd", b, info);
      break;
    }
    if (info > 0) {
      record(&c->fail, F_CONVERGE, cplx(t) ? "heevd" : "syevd", b, info);
      break;
    }
    transpose_square(t, v, n);
    conj_inplace(t, v, n * n);
  }
done:
  free(work);
  free(rwork);
  free(iwork);
}

em_status em_cpu_k_eigh(em_array *out, const em_node *node) {
  em_array *a = NULL;
  TRY(em_contiguous(node->in[0], &a));
  em_status st = em_alloc_output(out);
  if (st == EM_OK) {
    int64_t n = a->shape[a->ndim - 1];
    int64_t batch = 1;
    for (int i = 0; i < a->ndim - 2; i++) batch *= a->shape[i];
    size_t off[3];
    em_linalg_slots(EM_OP_eigh, a->dtype, batch, n, n, false, off);
    char *base = em_array_ptr(out);
    eigh_ctx c = {.t = a->dtype, .n = n, .a = em_array_ptr(a),
                  .w = base + off[0], .v = base + off[1]};
    atomic_init(&c.fail.taken, 0);
    if (n > 0) run_batches(batch, n, eigh_range, &c);
    st = report("eigh", &c.fail);
  }
  em_array_release(a);
  return st;
}

/* ---- svd ---------------------------------------------------------------- */

typedef struct {
  em_dtype t;
  int64_t m, n, k, uc, vr;
  bool full;
  const char *a;
  char *u, *s, *vt;
  fail_t fail;
} svd_ctx;

static void svd_range(void *vc, int64_t begin, int64_t end, int tid) {
  svd_ctx *c = vc;
  em_dtype t = c->t, rt = t == EM_C64 ? EM_F32 : t == EM_C128 ? EM_F64 : t;
  int64_t m = c->m, n = c->n, k = c->k, uc = c->uc, vr = c->vr;
  size_t es = em_dtype_size(t), rs = em_dtype_size(rt);
  size_t asz = (size_t)(m * n) * es, usz = (size_t)(m * uc) * es,
         vsz = (size_t)(vr * n) * es;
  if (k == 0) {
    for (int64_t b = begin; b < end; b++) {
      set_eye(t, c->u + (size_t)b * usz, m, uc);
      set_eye(t, c->vt + (size_t)b * vsz, vr, n);
    }
    return;
  }
  /* gesdd of X = A^T (n x m, ld n): U' (n x vr) is vt row-major and
   * V'^H (uc x m, ld uc) is u row-major. */
  char jobz = c->full ? 'A' : 'S';
  double qw[4];
  lapack_int lwork = 1;
  int64_t mx = m > n ? m : n;
  int64_t lrwork = cplx(t) ? k * (5 * k + 7 > 2 * mx + 2 * k + 1
                                      ? 5 * k + 7
                                      : 2 * mx + 2 * k + 1)
                           : 0;
  if (l_gesdd(t, jobz, (lapack_int)n, (lapack_int)m, NULL, (lapack_int)n, NULL,
              NULL, (lapack_int)n, NULL, (lapack_int)uc, qw, -1, NULL,
              NULL) == 0)
    lwork = query_size(t, qw);
  void *x = malloc(asz);
  void *work = malloc((size_t)lwork * es);
  void *rwork = cplx(t) ? malloc((size_t)(lrwork > 0 ? lrwork : 1) * rs) : NULL;
  lapack_int *iwork = malloc((size_t)(8 * k) * sizeof *iwork);
  if (!x || !work || !iwork || (cplx(t) && !rwork)) {
    record(&c->fail, F_OOM, "", begin, 0);
    goto done;
  }
  for (int64_t b = begin; b < end && !failed(&c->fail); b++) {
    const char *a = c->a + (size_t)b * asz;
    char *u = c->u + (size_t)b * usz, *vt = c->vt + (size_t)b * vsz,
         *s = c->s + (size_t)(b * k) * rs;
    if (!all_finite(t, a, m * n)) {
      fill_nan(t, u, m * uc);
      fill_nan(rt, s, k);
      fill_nan(t, vt, vr * n);
      continue;
    }
    memcpy(x, a, asz);
    lapack_int info =
        l_gesdd(t, jobz, (lapack_int)n, (lapack_int)m, x, (lapack_int)n, s, vt,
                (lapack_int)n, u, (lapack_int)uc, work, lwork, rwork, iwork);
    if (info < 0) {
      record(&c->fail, F_LAPACK, "gesdd", b, info);
      break;
    }
    if (info > 0) {
      record(&c->fail, F_CONVERGE, "gesdd", b, info);
      break;
    }
  }
done:
  free(x);
  free(work);
  free(rwork);
  free(iwork);
}

em_status em_cpu_k_svd(em_array *out, const em_node *node) {
  em_array *a = NULL;
  TRY(em_contiguous(node->in[0], &a));
  em_status st = em_alloc_output(out);
  if (st == EM_OK) {
    int64_t m = a->shape[a->ndim - 2], n = a->shape[a->ndim - 1];
    int64_t k = m < n ? m : n;
    bool full = node->p.linalg.full_matrices;
    int64_t batch = 1;
    for (int i = 0; i < a->ndim - 2; i++) batch *= a->shape[i];
    size_t off[3];
    em_linalg_slots(EM_OP_svd, a->dtype, batch, m, n, full, off);
    char *base = em_array_ptr(out);
    svd_ctx c = {.t = a->dtype, .m = m, .n = n, .k = k, .full = full,
                 .uc = full ? m : k, .vr = full ? n : k,
                 .a = em_array_ptr(a), .u = base + off[0], .s = base + off[1],
                 .vt = base + off[2]};
    atomic_init(&c.fail.taken, 0);
    run_batches(batch, m > n ? m : n, svd_range, &c);
    st = report("svd", &c.fail);
  }
  em_array_release(a);
  return st;
}

/* ---- triangular_solve --------------------------------------------------- */

typedef struct {
  em_dtype t;
  int64_t n, rows, cols; /* b per batch entry: rows x cols, row-major */
  bool left, lower;
  enum CBLAS_TRANSPOSE trans;
  const char *a, *b;
  char *out;
  fail_t fail;
} ts_ctx;

/* True if a diagonal element of the n x n row-major matrix is exactly 0. */
static bool zero_diagonal(em_dtype t, const char *a, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    int64_t j = i * n + i;
    switch (t) {
      case EM_F32: if (((const float *)a)[j] == 0) return true; break;
      case EM_F64: if (((const double *)a)[j] == 0) return true; break;
      case EM_C64:
        if (((const float *)a)[2 * j] == 0 && ((const float *)a)[2 * j + 1] == 0)
          return true;
        break;
      default:
        if (((const double *)a)[2 * j] == 0 &&
            ((const double *)a)[2 * j + 1] == 0)
          return true;
        break;
    }
  }
  return false;
}

static void ts_range(void *vc, int64_t begin, int64_t end, int tid) {
  ts_ctx *c = vc;
  int64_t n = c->n;
  size_t es = em_dtype_size(c->t), asz = (size_t)(n * n) * es,
         bsz = (size_t)(c->rows * c->cols) * es;
  for (int64_t b = begin; b < end && !failed(&c->fail); b++) {
    const char *a = c->a + (size_t)b * asz;
    char *x = c->out + (size_t)b * bsz;
    if (zero_diagonal(c->t, a, n)) {
      record(&c->fail, F_SINGULAR, "", b, 0);
      return;
    }
    memcpy(x, c->b + (size_t)b * bsz, bsz);
    b_trsm(c->t, CblasRowMajor, c->left ? CblasLeft : CblasRight,
           c->lower ? CblasLower : CblasUpper, c->trans, CblasNonUnit,
           (blasint)c->rows, (blasint)c->cols, a, (blasint)n, x,
           (blasint)c->cols);
  }
}

em_status em_cpu_k_triangular_solve(em_array *out, const em_node *node) {
  em_array *a = NULL, *b = NULL;
  TRY(em_contiguous(node->in[0], &a));
  em_status st = em_contiguous(node->in[1], &b);
  if (st == EM_OK) st = em_alloc_output(out);
  if (st == EM_OK) {
    int64_t n = a->shape[a->ndim - 1];
    bool left = node->p.linalg.left_side;
    ts_ctx c = {.t = a->dtype, .n = n, .left = left,
                .lower = node->p.linalg.lower, .a = em_array_ptr(a),
                .b = em_array_ptr(b), .out = em_array_ptr(out)};
    switch (node->p.linalg.transform) {
      case EM_TRANSFORM_TRANSPOSE: c.trans = CblasTrans; break;
      case EM_TRANSFORM_ADJOINT: c.trans = CblasConjTrans; break;
      default: c.trans = CblasNoTrans; break;
    }
    if (b->ndim == a->ndim - 1) { /* a batch of vectors */
      c.rows = left ? n : 1;
      c.cols = left ? 1 : n;
    } else {
      c.rows = b->shape[b->ndim - 2];
      c.cols = b->shape[b->ndim - 1];
    }
    int64_t batch = 1;
    for (int i = 0; i < a->ndim - 2; i++) batch *= a->shape[i];
    atomic_init(&c.fail.taken, 0);
    if (n > 0 && c.rows > 0 && c.cols > 0)
      run_batches(batch, n, ts_range, &c);
    st = report("triangular_solve", &c.fail);
  }
  em_array_release(a);
  em_array_release(b);
  return st;
}

/* ---- solve -------------------------------------------------------------- */

typedef struct {
  em_dtype t;
  int64_t n, r; /* b per batch entry: n x r row-major (r = 1: a vector) */
  const char *a, *b;
  char *out;
  fail_t fail;
} solve_ctx;

static void swap_bytes(char *x, char *y, size_t len) {
  char tmp[256];
  while (len) {
    size_t k = len < sizeof tmp ? len : sizeof tmp;
    memcpy(tmp, x, k);
    memcpy(x, y, k);
    memcpy(y, tmp, k);
    x += k;
    y += k;
    len -= k;
  }
}

static void solve_range(void *vc, int64_t begin, int64_t end, int tid) {
  solve_ctx *c = vc;
  int64_t n = c->n, r = c->r;
  size_t es = em_dtype_size(c->t), asz = (size_t)(n * n) * es,
         bsz = (size_t)(n * r) * es;
  char *w = malloc(asz);
  lapack_int *ipiv = malloc((size_t)n * sizeof *ipiv);
  if (!w || !ipiv) {
    record(&c->fail, F_OOM, "", begin, 0);
    goto done;
  }
  for (int64_t b = begin; b < end && !failed(&c->fail); b++) {
    char *x = c->out + (size_t)b * bsz;
    /* w read column-major is A^T = P L U. */
    memcpy(w, c->a + (size_t)b * asz, asz);
    lapack_int info = l_getrf(c->t, (lapack_int)n, w, ipiv);
    if (info < 0) {
      record(&c->fail, F_LAPACK, "getrf", b, info);
      break;
    }
    if (info > 0) {
      record(&c->fail, F_SINGULAR, "", b, info);
      break;
    }
    /* x read column-major is X^T (r x n, ld r), and
     * X^T = B^T A^-T = B^T U^-1 L^-1 P^T. */
    memcpy(x, c->b + (size_t)b * bsz, bsz);
    b_trsm(c->t, CblasColMajor, CblasRight, CblasUpper, CblasNoTrans,
           CblasNonUnit, (blasint)r, (blasint)n, w, (blasint)n, x, (blasint)r);
    b_trsm(c->t, CblasColMajor, CblasRight, CblasLower, CblasNoTrans,
           CblasUnit, (blasint)r, (blasint)n, w, (blasint)n, x, (blasint)r);
    /* P = P_1 ... P_n (P_i swaps i and ipiv[i]), so Y P^T = Y P_n ... P_1:
     * swap columns of X^T, i.e. rows of X, last interchange first. */
    for (int64_t i = n - 1; i >= 0; i--) {
      int64_t j = ipiv[i] - 1;
      if (j != i)
        swap_bytes(x + (size_t)(i * r) * es, x + (size_t)(j * r) * es,
                   (size_t)r * es);
    }
  }
done:
  free(w);
  free(ipiv);
}

em_status em_cpu_k_solve(em_array *out, const em_node *node) {
  em_array *a = NULL, *b = NULL;
  TRY(em_contiguous(node->in[0], &a));
  em_status st = em_contiguous(node->in[1], &b);
  if (st == EM_OK) st = em_alloc_output(out);
  if (st == EM_OK) {
    int64_t n = a->shape[a->ndim - 1];
    solve_ctx c = {.t = a->dtype, .n = n,
                   .r = b->ndim == a->ndim - 1 ? 1 : b->shape[b->ndim - 1],
                   .a = em_array_ptr(a), .b = em_array_ptr(b),
                   .out = em_array_ptr(out)};
    int64_t batch = 1;
    for (int i = 0; i < a->ndim - 2; i++) batch *= a->shape[i];
    atomic_init(&c.fail.taken, 0);
    if (n > 0 && c.r > 0) run_batches(batch, n, solve_range, &c);
    st = report("solve", &c.fail);
  }
  em_array_release(a);
  em_array_release(b);
  return st;
}

/* ---- determinant -------------------------------------------------------- */

typedef struct {
  em_dtype t;
  int64_t n;
  const char *a;
  char *out;
  fail_t fail;
} det_ctx;

/* Nx's closed forms for n <= 3 (same products, same order), in the
 * element type's own precision; LU (getrf of A^T, det A^T = det A) above,
 * with 0 whenever a pivot is exactly 0, as Nx does. */
#define DET_SMALL(T, SUF)                                                   \
  static T det_small_##SUF(const T *x, int64_t n) {                         \
    switch (n) {                                                            \
      case 0: return 1;                                                     \
      case 1: return x[0];                                                  \
      case 2: return x[0] * x[3] - x[1] * x[2];                             \
      default: {                                                            \
        T p0 = x[0] * x[4] * x[8], p1 = x[1] * x[5] * x[6],                 \
          p2 = x[2] * x[3] * x[7];                                          \
        T n0 = x[2] * x[4] * x[6], n1 = x[1] * x[3] * x[8],                 \
          n2 = x[0] * x[5] * x[7];                                          \
        return p0 + p1 + p2 - n0 - n1 - n2;                                 \
      }                                                                     \
    }                                                                       \
  }                                                                         \
  static T det_lu_##SUF(const T *w, const lapack_int *ipiv, int64_t n) {    \
    T prod = 1;                                                             \
    bool neg = false, zero = false;                                         \
    for (int64_t i = 0; i < n; i++) {                                       \
      T d = w[i * n + i];                                                   \
      if (d == 0) zero = true;                                              \
      prod *= d;                                                            \
      if (ipiv[i] - 1 != i) neg = !neg;                                     \
    }                                                                       \
    if (zero) return 0;                                                     \
    return neg ? -prod : prod;                                              \
  }
DET_SMALL(float, s)
DET_SMALL(double, d)
DET_SMALL(cfloat, c)
DET_SMALL(cdouble, z)

static void det_range(void *vc, int64_t begin, int64_t end, int tid) {
  det_ctx *c = vc;
  em_dtype t = c->t;
  int64_t n = c->n;
  size_t es = em_dtype_size(t), asz = (size_t)(n * n) * es;
  char *w = NULL;
  lapack_int *ipiv = NULL;
  if (n > 3) {
    w = malloc(asz);
    ipiv = malloc((size_t)n * sizeof *ipiv);
    if (!w || !ipiv) {
      record(&c->fail, F_OOM, "", begin, 0);
      goto done;
    }
  }
  for (int64_t b = begin; b < end && !failed(&c->fail); b++) {
    const char *a = c->a + (size_t)b * asz;
    char *o = c->out + (size_t)b * es;
    if (n <= 3) {
      switch (t) {
        case EM_F32: *(float *)o = det_small_s((const float *)a, n); break;
        case EM_F64: *(double *)o = det_small_d((const double *)a, n); break;
        case EM_C64: *(cfloat *)o = det_small_c((const cfloat *)a, n); break;
        default: *(cdouble *)o = det_small_z((const cdouble *)a, n); break;
      }
      continue;
    }
    memcpy(w, a, asz);
    lapack_int info = l_getrf(t, (lapack_int)n, w, ipiv);
    if (info < 0) {
      record(&c->fail, F_LAPACK, "getrf", b, info);
      break;
    }
    switch (t) {
      case EM_F32: *(float *)o = det_lu_s((const float *)w, ipiv, n); break;
      case EM_F64: *(double *)o = det_lu_d((const double *)w, ipiv, n); break;
      case EM_C64: *(cfloat *)o = det_lu_c((const cfloat *)w, ipiv, n); break;
      default: *(cdouble *)o = det_lu_z((const cdouble *)w, ipiv, n); break;
    }
  }
done:
  free(w);
  free(ipiv);
}

em_status em_cpu_k_determinant(em_array *out, const em_node *node) {
  em_array *a = NULL;
  TRY(em_contiguous(node->in[0], &a));
  em_status st = em_alloc_output(out);
  if (st == EM_OK) {
    int64_t n = a->shape[a->ndim - 1];
    det_ctx c = {.t = a->dtype, .n = n, .a = em_array_ptr(a),
                 .out = em_array_ptr(out)};
    atomic_init(&c.fail.taken, 0);
    run_batches(out->size, n, det_range, &c);
    st = report("determinant", &c.fail);
  }
  em_array_release(a);
  return st;
}
