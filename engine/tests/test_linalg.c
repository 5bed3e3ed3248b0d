/* test_linalg.c — the linear-algebra ops through the public API:
 * triangular_solve, cholesky, qr, lu, eigh, svd, solve, determinant.
 *
 * References: hand values from Nx 0.13's documentation (LU, QR, cholesky,
 * solves, determinants), numpy fixtures for sign-invariant quantities
 * (fixtures/gen_linalg.py -> fixtures/linalg_fixtures.h), and, for the
 * factors whose signs/phases are not unique, reconstruction checks in
 * double complex written here (A = QR, Q^H Q = I, A = P L U, A V = V W,
 * A = U S V^H, triangularity). Every op runs for f32 f64 c64 c128, on
 * batches (small ones spread over the thread pool, large matrices through
 * OpenBLAS threads), on non-contiguous inputs, zero-size shapes and the
 * error paths. */
#include <complex.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emily.h"
#include "fixtures/linalg_fixtures.h"
#include "harness.h"

typedef double complex zd;

static const em_dtype DTS[4] = {EM_F32, EM_F64, EM_C64, EM_C128};

static bool is_c(em_dtype t) { return t == EM_C64 || t == EM_C128; }
static bool is_single(em_dtype t) { return t == EM_F32 || t == EM_C64; }
static em_dtype real_of(em_dtype t) {
  return t == EM_C64 ? EM_F32 : t == EM_C128 ? EM_F64 : t;
}
/* Relative tolerance per precision (results are compared after scaling by
 * the size of the data involved). */
static double tol(em_dtype t) { return is_single(t) ? 2e-5 : 1e-12; }

/* ---- host <-> engine ---------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double rnd(void) { /* uniform in [-1, 1) */
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 11) * 0x1p-52 - 1.0;
}

static int64_t prod(int nd, const int64_t *s) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= s[i];
  return n;
}

static em_array *mk(em_dtype t, int nd, const int64_t *shape, const zd *v) {
  int64_t n = prod(nd, shape);
  size_t es = em_dtype_size(t);
  char *buf = malloc((size_t)n * es + 16);
  for (int64_t i = 0; i < n; i++) {
    double re = v ? creal(v[i]) : 0, im = v ? cimag(v[i]) : 0;
    switch (t) {
      case EM_F32: ((float *)buf)[i] = (float)re; break;
      case EM_F64: ((double *)buf)[i] = re; break;
      case EM_C64:
        ((float *)buf)[2 * i] = (float)re;
        ((float *)buf)[2 * i + 1] = (float)im;
        break;
      default:
        ((double *)buf)[2 * i] = re;
        ((double *)buf)[2 * i + 1] = im;
        break;
    }
  }
  em_array *a = NULL;
  em_status st = em_array_from_data(&a, t, nd, shape, buf, (size_t)n * es,
                                    em_cpu());
  CHECK(st == EM_OK, "from_data: %s", em_last_error());
  free(buf);
  return a;
}

/* From a fixture's _re/_im arrays (imaginary parts dropped for real t). */
static em_array *mkf(em_dtype t, int nd, const int64_t *shape,
                     const double *re, const double *im) {
  int64_t n = prod(nd, shape);
  zd *v = malloc((size_t)(n ? n : 1) * sizeof *v);
  for (int64_t i = 0; i < n; i++) v[i] = re[i] + (is_c(t) ? im[i] : 0) * I;
  em_array *a = mk(t, nd, shape, v);
  free(v);
  return a;
}

/* Evaluates and reads an array as double complex (caller frees). */
static zd *get(em_array *a) {
  if (!a) { /* an op failed earlier: stop here rather than crash */
    CHECK(a != NULL, "missing result: %s", em_last_error());
    exit(TEST_SUMMARY());
  }
  int64_t n = em_array_size(a);
  em_dtype t = em_array_dtype(a);
  size_t es = em_dtype_size(t);
  char *buf = malloc((size_t)n * es + 16);
  zd *v = malloc((size_t)(n ? n : 1) * sizeof *v);
  em_status st = em_array_to_host(a, buf, (size_t)n * es);
  CHECK(st == EM_OK, "to_host: %s", em_last_error());
  for (int64_t i = 0; i < n; i++) {
    switch (t) {
      case EM_F32: v[i] = ((float *)buf)[i]; break;
      case EM_F64: v[i] = ((double *)buf)[i]; break;
      case EM_C64:
        v[i] = ((float *)buf)[2 * i] + ((float *)buf)[2 * i + 1] * I;
        break;
      case EM_C128:
        v[i] = ((double *)buf)[2 * i] + ((double *)buf)[2 * i + 1] * I;
        break;
      default: v[i] = NAN; break;
    }
  }
  free(buf);
  return v;
}

/* Random data: real for real dtypes, complex for complex ones. */
static zd *rnd_mat(em_dtype t, int64_t n) {
  zd *v = malloc((size_t)(n ? n : 1) * sizeof *v);
  for (int64_t i = 0; i < n; i++) v[i] = rnd() + (is_c(t) ? rnd() * I : 0);
  return v;
}

/* Rounds host data to what the engine stores for t (so references are
 * computed from exactly the engine's input). */
static void round_to(em_dtype t, zd *v, int64_t n) {
  if (!is_single(t)) return;
  for (int64_t i = 0; i < n; i++)
    v[i] = (double)(float)creal(v[i]) + (double)(float)cimag(v[i]) * I;
}

static bool shape_is(em_array *a, int nd, const int64_t *s) {
  if (!a || em_array_ndim(a) != nd) return false;
  for (int i = 0; i < nd; i++)
    if (em_array_shape(a)[i] != s[i]) return false;
  return true;
}

static double maxabs(const zd *v, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++)
    if (cabs(v[i]) > m) m = cabs(v[i]);
  return m;
}

/* Compares n values: |got - want| <= rtol * max(1, max|want|). */
static void check_vals(const char *what, em_dtype t, const zd *got,
                       const zd *want, int64_t n, double rtol) {
  double scale = maxabs(want, n);
  if (scale < 1) scale = 1;
  for (int64_t i = 0; i < n; i++) {
    double d = cabs(got[i] - want[i]);
    bool ok = (isnan(creal(want[i])) ? isnan(creal(got[i])) : d <= rtol * scale);
    CHECK(ok, "%s %s [%lld]: got %.9g%+.9gi want %.9g%+.9gi", what,
          em_dtype_name(t), (long long)i, creal(got[i]), cimag(got[i]),
          creal(want[i]), cimag(want[i]));
    if (!ok) return;
  }
}

static void check_arr(const char *what, em_array *a, const zd *want,
                      double rtol) {
  zd *g = get(a);
  check_vals(what, em_array_dtype(a), g, want, em_array_size(a), rtol);
  free(g);
}

/* ---- dense helpers in double complex ----------------------------------- */

/* C (m x n) = A (m x k) B (k x n). */
static void mm(const zd *A, const zd *B, zd *C, int64_t m, int64_t k,
               int64_t n) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      zd s = 0;
      for (int64_t p = 0; p < k; p++) s += A[i * k + p] * B[p * n + j];
      C[i * n + j] = s;
    }
}

/* B (n x m) = A^H (A is m x n). */
static void adj(const zd *A, zd *B, int64_t m, int64_t n) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) B[j * m + i] = conj(A[i * n + j]);
}

/* Max |A^H A - I| for the columns of an m x n A. */
static double orth_err(const zd *A, int64_t m, int64_t n) {
  double e = 0;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) {
      zd s = 0;
      for (int64_t p = 0; p < m; p++) s += conj(A[p * n + i]) * A[p * n + j];
      double d = cabs(s - (i == j ? 1.0 : 0.0));
      if (d > e) e = d;
    }
  return e;
}

static zd *alloc_z(int64_t n) {
  return calloc((size_t)(n ? n : 1), sizeof(zd));
}

/* Hermitian positive-definite: G G^H + n I. */
static zd *hpd(em_dtype t, int64_t n) {
  zd *g = rnd_mat(t, n * n), *gh = alloc_z(n * n), *a = alloc_z(n * n);
  adj(g, gh, n, n);
  mm(g, gh, a, n, n, n);
  for (int64_t i = 0; i < n; i++) a[i * n + i] += (double)n;
  free(g);
  free(gh);
  return a;
}

static zd *hermitian(em_dtype t, int64_t n) {
  zd *g = rnd_mat(t, n * n), *a = alloc_z(n * n);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++)
      a[i * n + j] = (g[i * n + j] + conj(g[j * n + i])) / 2;
  free(g);
  return a;
}

static bool msg_has(const char *s) { return strstr(em_last_error(), s) != NULL; }

/* ---- per-op checks on one matrix (host reference data) ----------------- */

/* cholesky: L lower (exact zeros above), L L^H = A. */
static void verify_chol(em_dtype t, const zd *A, const zd *L, int64_t n) {
  zd *lh = alloc_z(n * n), *r = alloc_z(n * n);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = i + 1; j < n; j++)
      CHECK(L[i * n + j] == 0, "cholesky %s: L[%lld][%lld] above diagonal",
            em_dtype_name(t), (long long)i, (long long)j);
  adj(L, lh, n, n);
  mm(L, lh, r, n, n, n);
  check_vals("cholesky L L^H", t, r, A, n * n, tol(t) * 10 * (double)n);
  free(lh);
  free(r);
}

/* qr: shapes checked by caller; A = Q R, Q^H Q = I, R upper. */
static void verify_qr(em_dtype t, const zd *A, const zd *Q, const zd *R,
                      int64_t m, int64_t n, int64_t qc) {
  zd *qr = alloc_z(m * n);
  mm(Q, R, qr, m, qc, n);
  check_vals("qr Q R", t, qr, A, m * n, tol(t) * 10 * (double)(m + n));
  double e = orth_err(Q, m, qc);
  CHECK(e < tol(t) * 10 * (double)(m + 1), "qr %s: Q^H Q - I = %g",
        em_dtype_name(t), e);
  for (int64_t i = 0; i < qc; i++)
    for (int64_t j = 0; j < n && j < i; j++)
      CHECK(R[i * n + j] == 0, "qr %s: R[%lld][%lld] below diagonal = %g",
            em_dtype_name(t), (long long)i, (long long)j, cabs(R[i * n + j]));
  free(qr);
}

/* lu: P a permutation, L unit lower with |L| <= 1 (partial pivoting), U
 * upper, P L U = A. */
static void verify_lu(em_dtype t, const zd *A, const zd *P, const zd *L,
                      const zd *U, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    int rs = 0, cs = 0;
    for (int64_t j = 0; j < n; j++) {
      zd p = P[i * n + j], pc = P[j * n + i];
      CHECK(p == 0 || p == 1, "lu %s: P entry %g%+gi", em_dtype_name(t),
            creal(p), cimag(p));
      rs += p == 1;
      cs += pc == 1;
      if (j > i) {
        CHECK(L[i * n + j] == 0, "lu %s: L above diagonal", em_dtype_name(t));
      }
      if (j < i) {
        CHECK(U[i * n + j] == 0, "lu %s: U below diagonal", em_dtype_name(t));
        /* LAPACK pivots on |re| + |im| for complex: |L| <= sqrt(2) */
        CHECK(cabs(L[i * n + j]) <= (is_c(t) ? sqrt(2) : 1) + 1e-6,
              "lu %s: |L| = %g too large for partial pivoting",
              em_dtype_name(t), cabs(L[i * n + j]));
      }
    }
    CHECK(rs == 1 && cs == 1, "lu %s: P row/column %lld not one-hot",
          em_dtype_name(t), (long long)i);
    CHECK(L[i * n + i] == 1, "lu %s: L diagonal %g", em_dtype_name(t),
          creal(L[i * n + i]));
  }
  zd *lu = alloc_z(n * n), *plu = alloc_z(n * n);
  mm(L, U, lu, n, n, n);
  mm(P, lu, plu, n, n, n);
  check_vals("lu P L U", t, plu, A, n * n, tol(t) * 10 * (double)n);
  free(lu);
  free(plu);
}

/* eigh: w real ascending, V unitary, A V = V diag(w). */
static void verify_eigh(em_dtype t, const zd *A, const zd *w, const zd *V,
                        int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    CHECK(cimag(w[i]) == 0, "eigh %s: complex eigenvalue", em_dtype_name(t));
    if (i) CHECK(creal(w[i - 1]) <= creal(w[i]), "eigh %s: not ascending",
                 em_dtype_name(t));
  }
  double e = orth_err(V, n, n);
  CHECK(e < tol(t) * 10 * (double)(n + 1), "eigh %s: V^H V - I = %g",
        em_dtype_name(t), e);
  zd *av = alloc_z(n * n), *vw = alloc_z(n * n);
  mm(A, V, av, n, n, n);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) vw[i * n + j] = V[i * n + j] * w[j];
  check_vals("eigh A V = V W", t, av, vw, n * n, tol(t) * 10 * (double)n);
  free(av);
  free(vw);
}

/* svd: s real, descending, >= 0; U, V^H orthonormal; A = U S V^H. */
static void verify_svd(em_dtype t, const zd *A, const zd *U, const zd *s,
                       const zd *VT, int64_t m, int64_t n, int64_t uc,
                       int64_t vr) {
  int64_t k = m < n ? m : n;
  for (int64_t i = 0; i < k; i++) {
    CHECK(cimag(s[i]) == 0 && creal(s[i]) >= 0, "svd %s: s[%lld] = %g%+gi",
          em_dtype_name(t), (long long)i, creal(s[i]), cimag(s[i]));
    if (i) CHECK(creal(s[i - 1]) >= creal(s[i]), "svd %s: not descending",
                 em_dtype_name(t));
  }
  double e = orth_err(U, m, uc);
  CHECK(e < tol(t) * 10 * (double)(m + 1), "svd %s: U^H U - I = %g",
        em_dtype_name(t), e);
  zd *v = alloc_z(n * vr);
  adj(VT, v, vr, n);
  e = orth_err(v, n, vr);
  CHECK(e < tol(t) * 10 * (double)(n + 1), "svd %s: V^H V - I = %g",
        em_dtype_name(t), e);
  zd *us = alloc_z(m * k), *vk = alloc_z(k * n), *r = alloc_z(m * n);
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < k; j++) us[i * k + j] = U[i * uc + j] * s[j];
  for (int64_t i = 0; i < k; i++)
    for (int64_t j = 0; j < n; j++) vk[i * n + j] = VT[i * n + j];
  mm(us, vk, r, m, k, n);
  check_vals("svd U S V^H", t, r, A, m * n, tol(t) * 10 * (double)(m + n));
  free(v);
  free(us);
  free(vk);
  free(r);
}

/* ---- runners: op on an engine array, results read back ------------------ */

static void run_qr(em_array *a, bool complete, zd **q, zd **r, em_array **qa,
                   em_array **ra) {
  em_array *Q = NULL, *R = NULL;
  em_status st = em_qr(&Q, &R, a, complete);
  CHECK(st == EM_OK, "qr: %s", em_last_error());
  *q = get(Q);
  *r = get(R);
  if (qa) *qa = Q; else em_array_release(Q);
  if (ra) *ra = R; else em_array_release(R);
}

/* ---- tests: Nx documentation values ------------------------------------ */

static void test_nx_docs(void) {
  for (int d = 0; d < 4; d++) {
    em_dtype t = DTS[d];
    double tl = is_single(t) ? 1e-5 : 1e-12;
    /* cholesky */
    {
      zd a[] = {20, 17.6, 17.6, 16};
      zd want[] = {4.47213595499958, 0, 3.935479640399631, 0.7155417527999271};
      em_array *x = mk(t, 2, (int64_t[]){2, 2}, a), *l = NULL;
      CHECK(em_cholesky(&l, x) == EM_OK, "cholesky: %s", em_last_error());
      check_arr("nx cholesky 2x2", l, want, tl * 2);
      em_array_release(x);
      em_array_release(l);
      zd b[] = {6, 3, 4, 8, 3, 6, 5, 1, 4, 5, 10, 7, 8, 1, 7, 25};
      zd wb[] = {2.4494898, 0, 0, 0, 1.2247448, 2.1213202, 0, 0,
                 1.6329931, 1.4142138, 2.309401, 0, 3.2659862, -1.4142134,
                 1.5877135, 3.132491};
      x = mk(t, 2, (int64_t[]){4, 4}, b);
      CHECK(em_cholesky(&l, x) == EM_OK, "cholesky: %s", em_last_error());
      check_arr("nx cholesky 4x4", l, wb, 2e-6);
      em_array_release(x);
      em_array_release(l);
      zd c[] = {2, 3, 3, 5, 1, 0, 0, 1};
      zd wc[] = {sqrt(2), 0, 3 / sqrt(2), sqrt(0.5), 1, 0, 0, 1};
      x = mk(t, 3, (int64_t[]){2, 2, 2}, c);
      CHECK(em_cholesky(&l, x) == EM_OK, "cholesky: %s", em_last_error());
      check_arr("nx cholesky batch", l, wc, tl * 2);
      em_array_release(x);
      em_array_release(l);
      if (is_c(t)) {
        zd h[] = {1, -2 * I, 2 * I, 5}, wh[] = {1, 0, 2 * I, 1};
        x = mk(t, 2, (int64_t[]){2, 2}, h);
        CHECK(em_cholesky(&l, x) == EM_OK, "cholesky: %s", em_last_error());
        check_arr("nx cholesky complex", l, wh, tl);
        em_array_release(x);
        em_array_release(l);
      }
    }
    /* triangular_solve */
    {
      struct {
        int64_t an, bnd, b0, b1;
        zd a[16], b[16], want[16];
        bool left, lower;
        em_transform tr;
      } cs[] = {
          {4, 1, 4, 0, {3, 0, 0, 0, 2, 1, 0, 0, 1, 0, 1, 0, 1, 1, 1, 1},
           {4, 2, 4, 2}, {4.0 / 3, -2.0 / 3, 8.0 / 3, -4.0 / 3}, true, true,
           EM_TRANSFORM_NONE},
          {3, 2, 3, 3, {1, 0, 0, 1, 1, 0, 0, 1, 1},
           {1, 2, 3, 2, 2, 4, 2, 0, 1}, {1, 2, 3, 1, 0, 1, 1, 0, 0}, true,
           true, EM_TRANSFORM_NONE},
          {4, 1, 4, 0, {1, 1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 2, 0, 0, 0, 3},
           {2, 4, 2, 4}, {-4.0 / 3, 8.0 / 3, -2.0 / 3, 4.0 / 3}, true, false,
           EM_TRANSFORM_NONE},
          {3, 2, 3, 3, {1, 0, 0, 1, 1, 0, 1, 2, 1},
           {0, 2, 1, 1, 1, 0, 3, 3, 1}, {-1, 0, 1, 0, 1, 0, 1, 1, 1}, false,
           true, EM_TRANSFORM_NONE},
          {3, 1, 3, 0, {1, 1, 1, 0, 1, 1, 0, 0, 1}, {1, 2, 1}, {1, 1, -1},
           true, false, EM_TRANSFORM_TRANSPOSE},
          {3, 2, 2, 3, {1, 0, 0, 1, 1, 0, 1, 2, 1}, {0, 1, 3, 2, 1, 3},
           {2, -5, 3, 4, -5, 3}, false, true, EM_TRANSFORM_NONE},
          {3, 2, 3, 2, {1, 0, 0, 1, 1, 0, 1, 2, 1}, {0, 2, 3, 0, 0, 0},
           {0, 2, 3, -2, -6, 2}, true, true, EM_TRANSFORM_NONE},
      };
      for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        int64_t as[2] = {cs[i].an, cs[i].an}, bs[2] = {cs[i].b0, cs[i].b1};
        em_array *A = mk(t, 2, as, cs[i].a), *B = mk(t, (int)cs[i].bnd, bs,
                                                     cs[i].b),
                 *X = NULL;
        em_status st = em_triangular_solve(&X, A, B, cs[i].left, cs[i].lower,
                                           cs[i].tr);
        CHECK(st == EM_OK, "triangular_solve: %s", em_last_error());
        CHECK(shape_is(X, (int)cs[i].bnd, bs), "triangular_solve shape");
        check_arr("nx triangular_solve", X, cs[i].want, tl * 4);
        em_array_release(A);
        em_array_release(B);
        em_array_release(X);
      }
      /* batched vectors: a [2,2,2], b [2,2] */
      zd a[] = {1, 0, 2, 3, 4, 0, 5, 6}, b[] = {2, -1, 3, 7};
      zd want[] = {2, -5.0 / 3, 0.75, 0.5416666666666666};
      em_array *A = mk(t, 3, (int64_t[]){2, 2, 2}, a),
               *B = mk(t, 2, (int64_t[]){2, 2}, b), *X = NULL;
      CHECK(em_triangular_solve(&X, A, B, true, true, EM_TRANSFORM_NONE) ==
                EM_OK,
            "triangular_solve: %s", em_last_error());
      check_arr("nx triangular_solve batch", X, want, tl * 4);
      em_array_release(A);
      em_array_release(B);
      em_array_release(X);
      if (is_c(t)) { /* Nx's complex example; adjoint == conj transpose */
        zd ca[] = {1, 0, 0, 1, I, 0, I, 1, 1}, cb[] = {1, -1, 3 + 3 * I};
        zd cw[] = {1, 2 * I, 3};
        A = mk(t, 2, (int64_t[]){3, 3}, ca);
        B = mk(t, 1, (int64_t[]){3}, cb);
        CHECK(em_triangular_solve(&X, A, B, true, true, EM_TRANSFORM_NONE) ==
                  EM_OK,
              "triangular_solve: %s", em_last_error());
        check_arr("nx triangular_solve complex", X, cw, tl * 4);
        em_array_release(X);
        /* adjoint: conj(A)^T x = b, checked by substitution */
        CHECK(em_triangular_solve(&X, A, B, true, true,
                                  EM_TRANSFORM_ADJOINT) == EM_OK,
              "triangular_solve: %s", em_last_error());
        zd *x = get(X), ah[9], r[3];
        adj(ca, ah, 3, 3);
        for (int k = 0; k < 9; k++) /* upper part of A^H only */
          if (k / 3 > k % 3) ah[k] = 0;
        mm(ah, x, r, 3, 3, 1);
        check_vals("triangular_solve adjoint", t, r, cb, 3, tl * 10);
        free(x);
        em_array_release(A);
        em_array_release(B);
        em_array_release(X);
      }
    }
    /* solve */
    {
      zd a[] = {1, 3, 2, 1, 2, 1, 0, 0, 1, 0, 1, 0, 1, 1, 1, 1};
      zd b[] = {-3, 0, 4, -2}, want[] = {1, -2, 3, -4};
      em_array *A = mk(t, 2, (int64_t[]){4, 4}, a),
               *B = mk(t, 1, (int64_t[]){4}, b), *X = NULL;
      CHECK(em_solve(&X, A, B) == EM_OK, "solve: %s", em_last_error());
      check_arr("nx solve", X, want, tl * 10);
      em_array_release(A);
      em_array_release(B);
      em_array_release(X);
      zd a2[] = {14, 10, 9, 9, 4, 11, 2, 3};
      zd b2[] = {2, 4, 3, 2, 1, 5, -3, -1};
      zd w2[] = {-1.0 / 3, 4.0 / 9, 2.0 / 3, -2.0 / 9, -3.6, -2.6, 1.4, 1.4};
      A = mk(t, 3, (int64_t[]){2, 2, 2}, a2);
      B = mk(t, 3, (int64_t[]){2, 2, 2}, b2);
      CHECK(em_solve(&X, A, B) == EM_OK, "solve: %s", em_last_error());
      check_arr("nx solve batch", X, w2, tl * 10);
      em_array_release(A);
      em_array_release(B);
      em_array_release(X);
    }
    /* qr: Nx's examples, exact (the Householder signs match) */
    {
      zd a[] = {-3, 2, 1, 0, 1, 1, 0, 0, -1};
      zd eye[] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
      em_array *A = mk(t, 2, (int64_t[]){3, 3}, a);
      zd *q, *r;
      run_qr(A, false, &q, &r, NULL, NULL);
      check_vals("nx qr q", t, q, eye, 9, 0);
      check_vals("nx qr r", t, r, a, 9, 0);
      free(q);
      free(r);
      em_array_release(A);
      zd b[] = {3, 2, 1, 0, 1, 1, 0, 0, 1, 0, 0, 1};
      zd qw[] = {1, 0, 0, 0, 1, 0, 0, 0, 0.70710678118654752440, 0, 0, 0.70710678118654752440};
      zd rw[] = {3, 2, 1, 0, 1, 1, 0, 0, 1.41421356237309504880};
      em_array *Q = NULL, *R = NULL;
      A = mk(t, 2, (int64_t[]){4, 3}, b);
      run_qr(A, false, &q, &r, &Q, &R);
      CHECK(shape_is(Q, 2, (int64_t[]){4, 3}) &&
                shape_is(R, 2, (int64_t[]){3, 3}),
            "qr reduced shapes");
      /* the last column's sign is LAPACK's choice: compare magnitudes */
      for (int i = 0; i < 12; i++) q[i] = cabs(q[i]);
      for (int i = 0; i < 9; i++) r[i] = cabs(r[i]);
      check_vals("nx qr reduced q", t, q, qw, 12, tl * 2);
      check_vals("nx qr reduced r", t, r, rw, 9, tl * 2);
      free(q);
      free(r);
      em_array_release(Q);
      em_array_release(R);
      em_array_release(A);
      zd c[] = {3, 2, 1, 0, 1, 1, 0, 0, 1, 0, 0, 0};
      zd e4[] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
      A = mk(t, 2, (int64_t[]){4, 3}, c);
      run_qr(A, true, &q, &r, &Q, &R);
      CHECK(shape_is(Q, 2, (int64_t[]){4, 4}) &&
                shape_is(R, 2, (int64_t[]){4, 3}),
            "qr complete shapes");
      check_vals("nx qr complete q", t, q, e4, 16, 0);
      check_vals("nx qr complete r", t, r, c, 12, 0);
      free(q);
      free(r);
      em_array_release(Q);
      em_array_release(R);
      em_array_release(A);
    }
    /* lu: exactly Nx's p, l, u (same partial pivoting) */
    {
      struct {
        zd a[9], p[9], l[9], u[9];
      } cs[] = {
          {{1, 2, 3, 4, 5, 6, 7, 8, 9},
           {0, 1, 0, 0, 0, 1, 1, 0, 0},
           {1, 0, 0, 1.0 / 7, 1, 0, 4.0 / 7, 0.5, 1},
           {7, 8, 9, 0, 6.0 / 7, 12.0 / 7, 0, 0, 0}},
          {{1, 0, 1, -1, 0, -1, 1, 1, 1},
           {1, 0, 0, 0, 0, 1, 0, 1, 0},
           {1, 0, 0, 1, 1, 0, -1, 0, 1},
           {1, 0, 1, 0, 1, 0, 0, 0, 0}},
          {{9, 8, 7, 6, 5, 4, 3, 2, 1},
           {1, 0, 0, 0, 0, 1, 0, 1, 0},
           {1, 0, 0, 1.0 / 3, 1, 0, 2.0 / 3, 0.5, 1},
           {9, 8, 7, 0, -2.0 / 3, -4.0 / 3, 0, 0, 0}},
      };
      for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        em_array *A = mk(t, 2, (int64_t[]){3, 3}, cs[i].a), *P = NULL,
                 *L = NULL, *U = NULL;
        CHECK(em_lu(&P, &L, &U, A) == EM_OK, "lu: %s", em_last_error());
        check_arr("nx lu p", P, cs[i].p, 0);
        check_arr("nx lu l", L, cs[i].l, tl * 4);
        zd *u = get(U);
        /* Nx prints 0.0 for u[2][2]; LAPACK's value is rounding-level */
        check_vals("nx lu u", t, u, cs[i].u, 9, tl * 40);
        free(u);
        em_array_release(A);
        em_array_release(P);
        em_array_release(L);
        em_array_release(U);
      }
    }
    /* determinant */
    {
      struct {
        int64_t n;
        zd a[25];
        zd want;
      } cs[] = {
          {2, {1, 2, 3, 4}, -2},
          {3, {1, 2, 3, 1, -2, 3, 7, 8, 9}, 48},
          {2, {1, 0, 3, 0}, 0},
          {3, {1, 2, 3, -1, -2, -3, 4, 5, 6}, 0},
          {4, {1, 0, 0, 0, 0, 1, 2, 3, 0, 1, -2, 3, 0, 7, 8, 9}, 48},
          {5, {0, 0, 0, 0, -1, 0, 1, 2, 3, 0, 0, 1, -2, 3, 0, 0, 7, 8, 9, 0,
               1, 0, 0, 0, 0}, 48},
          {4, {2, 4, 6, 7, 5, 1, 8, 8, 1, 7, 3, 1, 3, 9, 2, 4}, 630},
          {4, {2, 5, 1, 3, 4, 1, 7, 9, 6, 8, 3, 2, 7, 8, 1, 4}, 630},
          {1, {-2.5}, -2.5},
          {0, {0}, 1},
      };
      for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        int64_t n = cs[i].n;
        em_array *A = mk(t, 2, (int64_t[]){n, n}, cs[i].a), *D = NULL;
        CHECK(em_determinant(&D, A) == EM_OK, "det: %s", em_last_error());
        CHECK(shape_is(D, 0, NULL), "determinant shape");
        /* n <= 3 uses Nx's closed forms: exact on these integers */
        check_arr("nx determinant", D, &cs[i].want, n <= 3 ? 0 : tl * 100);
        em_array_release(A);
        em_array_release(D);
      }
      if (is_c(t)) {
        zd a[] = {1, 0, 0, 0, 2 * I, 0, 0, 0, 3}, w = 6 * I;
        zd b[] = {0, 0, 0, 1, 0, 2 * I, 0, 0, 0, 0, 3, 0, 1, 0, 0, 0};
        zd wb = -6 * I;
        em_array *A = mk(t, 2, (int64_t[]){3, 3}, a), *D = NULL;
        CHECK(em_determinant(&D, A) == EM_OK, "det: %s", em_last_error());
        check_arr("nx determinant complex", D, &w, 0);
        em_array_release(A);
        em_array_release(D);
        A = mk(t, 2, (int64_t[]){4, 4}, b);
        CHECK(em_determinant(&D, A) == EM_OK, "det: %s", em_last_error());
        check_arr("nx determinant complex 4x4", D, &wb, tl * 10);
        em_array_release(A);
        em_array_release(D);
      }
    }
    /* svd and eigh values */
    {
      zd a[] = {2, 0, 0, 0, 3, 0, 0, 0, -1, 0, 0, 0}, s[] = {3, 2, 1};
      em_array *A = mk(t, 2, (int64_t[]){4, 3}, a), *U = NULL, *S = NULL,
               *VT = NULL;
      CHECK(em_svd(&U, &S, &VT, A, true) == EM_OK, "svd: %s", em_last_error());
      CHECK(em_array_dtype(S) == real_of(t), "svd s dtype");
      check_arr("nx svd s", S, s, tl * 2);
      zd *u = get(U), *vt = get(VT);
      zd uabs[16], vabs[9];
      for (int i = 0; i < 16; i++) uabs[i] = cabs(u[i]);
      for (int i = 0; i < 9; i++) vabs[i] = cabs(vt[i]);
      zd uw[] = {0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
      zd vw[] = {0, 1, 0, 1, 0, 0, 0, 0, 1};
      check_vals("nx svd |u|", t, uabs, uw, 16, tl * 2);
      check_vals("nx svd |vt|", t, vabs, vw, 9, tl * 2);
      free(u);
      free(vt);
      em_array_release(A);
      em_array_release(U);
      em_array_release(S);
      em_array_release(VT);
      zd e[] = {0, 1, 2, 1, 0, 2, 2, 2, 3}, ew[] = {-1, -1, 5};
      em_array *W = NULL, *V = NULL;
      A = mk(t, 2, (int64_t[]){3, 3}, e);
      CHECK(em_eigh(&W, &V, A) == EM_OK, "eigh: %s", em_last_error());
      CHECK(em_array_dtype(W) == real_of(t) && em_array_dtype(V) == t,
            "eigh dtypes");
      check_arr("nx eigh values", W, ew, tl * 10);
      em_array_release(A);
      em_array_release(W);
      em_array_release(V);
    }
  }
}

/* ---- tests: numpy fixtures --------------------------------------------- */

#define FX(name) name##_re, name##_im
static void fx_check(const char *what, em_array *a, const double *re,
                     const double *im, double rtol) {
  int64_t n = em_array_size(a);
  zd *w = alloc_z(n);
  bool c = is_c(em_array_dtype(a));
  for (int64_t i = 0; i < n; i++) w[i] = re[i] + (c ? im[i] : 0) * I;
  check_arr(what, a, w, rtol);
  free(w);
}

static void test_fixtures(void) {
  for (int d = 0; d < 4; d++) {
    em_dtype t = DTS[d];
    bool c = is_c(t);
    double rt = is_single(t) ? 2e-5 : 1e-11;
    em_array *A, *B, *X, *Y, *Z;
    /* cholesky */
    if (c) {
      A = mkf(t, 2, (int64_t[]){4, 4}, FX(chol_c_a));
      CHECK(em_cholesky(&X, A) == EM_OK, "cholesky: %s", em_last_error());
      fx_check("fixture cholesky", X, FX(chol_c_l), rt);
    } else {
      A = mkf(t, 2, (int64_t[]){5, 5}, FX(chol_r_a));
      CHECK(em_cholesky(&X, A) == EM_OK, "cholesky: %s", em_last_error());
      fx_check("fixture cholesky", X, FX(chol_r_l), rt);
    }
    em_array_release(A);
    em_array_release(X);
    /* eigh */
    int64_t en = c ? 5 : 6;
    A = c ? mkf(t, 2, (int64_t[]){5, 5}, FX(eigh_c_a))
          : mkf(t, 2, (int64_t[]){6, 6}, FX(eigh_r_a));
    CHECK(em_eigh(&X, &Y, A) == EM_OK, "eigh: %s", em_last_error());
    if (c) fx_check("fixture eigh", X, FX(eigh_c_w), rt * 4);
    else fx_check("fixture eigh", X, FX(eigh_r_w), rt * 4);
    {
      zd *a = get(A), *w = get(X), *v = get(Y);
      verify_eigh(t, a, w, v, en);
      free(a);
      free(w);
      free(v);
    }
    em_array_release(A);
    em_array_release(X);
    em_array_release(Y);
    /* svd */
    struct {
      int64_t m, n;
      const double *are, *aim, *sre, *sim;
    } sv[] = {{5, 3, FX(svd_r1_a), FX(svd_r1_s)},
              {3, 5, FX(svd_r2_a), FX(svd_r2_s)},
              {4, 6, FX(svd_c_a), FX(svd_c_s)}};
    for (int i = c ? 2 : 0; i < (c ? 3 : 2); i++) {
      A = mkf(t, 2, (int64_t[]){sv[i].m, sv[i].n}, sv[i].are, sv[i].aim);
      CHECK(em_svd(&X, &Y, &Z, A, false) == EM_OK, "svd: %s", em_last_error());
      fx_check("fixture svd", Y, sv[i].sre, sv[i].sim, rt * 4);
      em_array_release(A);
      em_array_release(X);
      em_array_release(Y);
      em_array_release(Z);
    }
    /* determinant (batched, n >= 4: LU) */
    if (c) {
      A = mkf(t, 3, (int64_t[]){2, 4, 4}, FX(det_c_a));
      CHECK(em_determinant(&X, A) == EM_OK, "det: %s", em_last_error());
      CHECK(shape_is(X, 1, (int64_t[]){2}), "det batch shape");
      fx_check("fixture determinant", X, FX(det_c_d), rt * 10);
    } else {
      A = mkf(t, 3, (int64_t[]){3, 5, 5}, FX(det_r_a));
      CHECK(em_determinant(&X, A) == EM_OK, "det: %s", em_last_error());
      CHECK(shape_is(X, 1, (int64_t[]){3}), "det batch shape");
      fx_check("fixture determinant", X, FX(det_r_d), rt * 10);
    }
    em_array_release(A);
    em_array_release(X);
    /* solve: vector and matrix right-hand sides */
    {
      int64_t n = c ? 4 : 5, r = c ? 2 : 3;
      A = c ? mkf(t, 2, (int64_t[]){n, n}, FX(solve_c_a))
            : mkf(t, 2, (int64_t[]){n, n}, FX(solve_r_a));
      B = c ? mkf(t, 1, (int64_t[]){n}, FX(solve_c_bv))
            : mkf(t, 1, (int64_t[]){n}, FX(solve_r_bv));
      CHECK(em_solve(&X, A, B) == EM_OK, "solve: %s", em_last_error());
      CHECK(shape_is(X, 1, (int64_t[]){n}), "solve shape");
      if (c) fx_check("fixture solve vector", X, FX(solve_c_xv), rt * 10);
      else fx_check("fixture solve vector", X, FX(solve_r_xv), rt * 10);
      em_array_release(B);
      em_array_release(X);
      B = c ? mkf(t, 2, (int64_t[]){n, r}, FX(solve_c_bm))
            : mkf(t, 2, (int64_t[]){n, r}, FX(solve_r_bm));
      CHECK(em_solve(&X, A, B) == EM_OK, "solve: %s", em_last_error());
      CHECK(shape_is(X, 2, (int64_t[]){n, r}), "solve shape");
      if (c) fx_check("fixture solve matrix", X, FX(solve_c_xm), rt * 10);
      else fx_check("fixture solve matrix", X, FX(solve_r_xm), rt * 10);
      em_array_release(A);
      em_array_release(B);
      em_array_release(X);
    }
    /* triangular_solve: all 12 combinations */
    {
      A = c ? mkf(t, 2, (int64_t[]){4, 4}, FX(tri_c_a))
            : mkf(t, 2, (int64_t[]){4, 4}, FX(tri_r_a));
      em_array *BL = c ? mkf(t, 2, (int64_t[]){4, 3}, FX(tri_c_bl))
                       : mkf(t, 2, (int64_t[]){4, 3}, FX(tri_r_bl));
      em_array *BR = c ? mkf(t, 2, (int64_t[]){3, 4}, FX(tri_c_br))
                       : mkf(t, 2, (int64_t[]){3, 4}, FX(tri_r_br));
      const double *xl_re = c ? tri_c_xl_re : tri_r_xl_re,
                   *xl_im = c ? tri_c_xl_im : tri_r_xl_im,
                   *xr_re = c ? tri_c_xr_re : tri_r_xr_re,
                   *xr_im = c ? tri_c_xr_im : tri_r_xr_im;
      for (int left = 1; left >= 0; left--)
        for (int lower = 1; lower >= 0; lower--)
          for (int tr = 0; tr < 3; tr++) {
            int idx = (1 - lower) * 3 + tr;
            CHECK(em_triangular_solve(&X, A, left ? BL : BR, left, lower,
                                      (em_transform)tr) == EM_OK,
                  "triangular_solve: %s", em_last_error());
            char what[96];
            snprintf(what, sizeof what,
                     "fixture triangular_solve left=%d lower=%d tr=%d", left,
                     lower, tr);
            fx_check(what, X, (left ? xl_re : xr_re) + idx * 12,
                     (left ? xl_im : xr_im) + idx * 12, rt * 10);
            em_array_release(X);
          }
      em_array_release(A);
      em_array_release(BL);
      em_array_release(BR);
    }
  }
}

/* ---- tests: reconstruction, batches, threads, layouts ------------------ */

/* Runs every op on a batch of `nb` random n x n (or m x n) matrices and
 * checks each entry: by reconstruction, and (bit for bit) against the same
 * op on that entry alone. */
static void test_batches(em_dtype t, int64_t nb0, int64_t nb1, int64_t m,
                         int64_t n) {
  int64_t nb = nb0 * nb1;
  int64_t k = m < n ? m : n;
  int64_t sq = n; /* square ops use n x n */
  zd *ga = rnd_mat(t, nb * m * n);
  round_to(t, ga, nb * m * n);
  zd *hs = alloc_z(nb * sq * sq), *hh = alloc_z(nb * sq * sq);
  for (int64_t b = 0; b < nb; b++) {
    zd *p = hpd(t, sq), *h = hermitian(t, sq);
    memcpy(hs + b * sq * sq, p, (size_t)(sq * sq) * sizeof(zd));
    memcpy(hh + b * sq * sq, h, (size_t)(sq * sq) * sizeof(zd));
    free(p);
    free(h);
  }
  round_to(t, hs, nb * sq * sq);
  round_to(t, hh, nb * sq * sq);
  int64_t sg[4] = {nb0, nb1, m, n}, ss[4] = {nb0, nb1, sq, sq};
  em_array *G = mk(t, 4, sg, ga), *S = mk(t, 4, ss, hs), *H = mk(t, 4, ss, hh);
  /* square general matrices for lu/solve/det: the first n x n of ga */
  zd *gq = rnd_mat(t, nb * sq * sq);
  for (int64_t b = 0; b < nb; b++)
    for (int64_t i = 0; i < sq; i++) gq[b * sq * sq + i * sq + i] += 2;
  round_to(t, gq, nb * sq * sq);
  em_array *GQ = mk(t, 4, ss, gq);
  zd *rhs = rnd_mat(t, nb * sq * 2);
  round_to(t, rhs, nb * sq * 2);
  em_array *RHS = mk(t, 4, (int64_t[]){nb0, nb1, sq, 2}, rhs);

  em_array *chol = NULL, *q[2] = {0}, *r[2] = {0}, *p = NULL, *l = NULL,
           *u = NULL, *w = NULL, *v = NULL, *su[2] = {0}, *ss_[2] = {0},
           *svt[2] = {0}, *x = NULL, *det = NULL, *tx = NULL;
  CHECK(em_cholesky(&chol, S) == EM_OK, "cholesky: %s", em_last_error());
  for (int f = 0; f < 2; f++) {
    CHECK(em_qr(&q[f], &r[f], G, f) == EM_OK, "qr: %s", em_last_error());
    CHECK(em_svd(&su[f], &ss_[f], &svt[f], G, f) == EM_OK, "svd: %s",
          em_last_error());
  }
  CHECK(em_lu(&p, &l, &u, GQ) == EM_OK, "lu: %s", em_last_error());
  CHECK(em_eigh(&w, &v, H) == EM_OK, "eigh: %s", em_last_error());
  CHECK(em_solve(&x, GQ, RHS) == EM_OK, "solve: %s", em_last_error());
  CHECK(em_determinant(&det, GQ) == EM_OK, "det: %s", em_last_error());
  CHECK(em_triangular_solve(&tx, chol, RHS, true, true, EM_TRANSFORM_NONE) ==
            EM_OK,
        "triangular_solve: %s", em_last_error());
  em_array *all[] = {chol, q[0], r[0], q[1], r[1], su[0], ss_[0], svt[0],
                     su[1], ss_[1], svt[1], p, l, u, w, v, x, det, tx};
  CHECK(em_eval(all, (int)(sizeof all / sizeof all[0])) == EM_OK, "eval: %s",
        em_last_error());
  zd *hc = get(chol), *hq[2], *hr[2], *hu[2], *hsv[2], *hvt[2];
  for (int f = 0; f < 2; f++) {
    hq[f] = get(q[f]);
    hr[f] = get(r[f]);
    hu[f] = get(su[f]);
    hsv[f] = get(ss_[f]);
    hvt[f] = get(svt[f]);
  }
  zd *hp = get(p), *hl = get(l), *huu = get(u), *hw = get(w), *hv = get(v),
     *hx = get(x), *hd = get(det), *htx = get(tx);
  for (int64_t b = 0; b < nb; b++) {
    const zd *A = ga + b * m * n, *SP = hs + b * sq * sq, *HE = hh + b * sq * sq,
             *GS = gq + b * sq * sq, *RB = rhs + b * sq * 2;
    verify_chol(t, SP, hc + b * sq * sq, sq);
    for (int f = 0; f < 2; f++) {
      int64_t qc = f ? m : k, uc = f ? m : k, vr = f ? n : k;
      verify_qr(t, A, hq[f] + b * m * qc, hr[f] + b * qc * n, m, n, qc);
      verify_svd(t, A, hu[f] + b * m * uc, hsv[f] + b * k,
                 hvt[f] + b * vr * n, m, n, uc, vr);
    }
    verify_lu(t, GS, hp + b * sq * sq, hl + b * sq * sq, huu + b * sq * sq,
              sq);
    verify_eigh(t, HE, hw + b * sq, hv + b * sq * sq, sq);
    zd *ax = alloc_z(sq * 2);
    mm(GS, hx + b * sq * 2, ax, sq, sq, 2);
    check_vals("solve A X = B", t, ax, RB, sq * 2, tol(t) * 100 * (double)sq);
    mm(hc + b * sq * sq, htx + b * sq * 2, ax, sq, sq, 2);
    check_vals("triangular_solve L X = B", t, ax, RB, sq * 2,
               tol(t) * 100 * (double)sq);
    free(ax);
    /* det = det(P) det(U), from the LU factors */
    zd dref = 1;
    for (int64_t i = 0; i < sq; i++) dref *= huu[b * sq * sq + i * sq + i];
    /* sign of P: count cycles */
    int64_t *perm = malloc((size_t)sq * sizeof *perm);
    for (int64_t i = 0; i < sq; i++)
      for (int64_t j = 0; j < sq; j++)
        if (hp[b * sq * sq + i * sq + j] == 1) perm[i] = j;
    int sgn = 1;
    for (int64_t i = 0; i < sq; i++)
      for (int64_t j = i + 1; j < sq; j++)
        if (perm[i] > perm[j]) sgn = -sgn;
    free(perm);
    dref *= sgn;
    if (!is_single(t) || cabs(dref) < 1e30) /* else it overflows f32 */
      check_vals("determinant vs lu", t, hd + b, &dref, 1,
                 tol(t) * 100 * (double)sq);
  }
  /* a few single entries, bit for bit against the batched run */
  int64_t picks[3] = {0, nb / 2, nb - 1};
  for (int pi = 0; pi < 3; pi++) {
    int64_t b = picks[pi];
    em_array *A1 = mk(t, 2, (int64_t[]){m, n}, ga + b * m * n);
    em_array *S1 = mk(t, 2, (int64_t[]){sq, sq}, hs + b * sq * sq);
    em_array *H1 = mk(t, 2, (int64_t[]){sq, sq}, hh + b * sq * sq);
    em_array *Q1, *R1, *U1, *s1, *V1, *C1, *W1, *E1;
    CHECK(em_cholesky(&C1, S1) == EM_OK, "cholesky");
    CHECK(em_qr(&Q1, &R1, A1, false) == EM_OK, "qr");
    CHECK(em_svd(&U1, &s1, &V1, A1, false) == EM_OK, "svd");
    CHECK(em_eigh(&W1, &E1, H1) == EM_OK, "eigh");
    zd *c1 = get(C1), *q1 = get(Q1), *sv1 = get(s1), *w1 = get(W1);
    check_vals("batch vs single cholesky", t, c1, hc + b * sq * sq, sq * sq,
               0);
    check_vals("batch vs single qr", t, q1, hq[0] + b * m * k, m * k, 0);
    check_vals("batch vs single svd", t, sv1, hsv[0] + b * k, k, 0);
    check_vals("batch vs single eigh", t, w1, hw + b * sq, sq, 0);
    free(c1);
    free(q1);
    free(sv1);
    free(w1);
    em_array *rel[] = {A1, S1, H1, Q1, R1, U1, s1, V1, C1, W1, E1};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++)
      em_array_release(rel[i]);
  }
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    em_array_release(all[i]);
  zd *hf[] = {hc, hp, hl, huu, hw, hv, hx, hd, htx, hq[0], hq[1], hr[0],
              hr[1], hu[0], hu[1], hsv[0], hsv[1], hvt[0], hvt[1],
              ga, hs, hh, gq, rhs};
  for (size_t i = 0; i < sizeof hf / sizeof hf[0]; i++) free(hf[i]);
  em_array_release(G);
  em_array_release(S);
  em_array_release(H);
  em_array_release(GQ);
  em_array_release(RHS);
}

/* Large matrices: one call each, OpenBLAS threads inside. */
static void test_large(em_dtype t, int64_t n) {
  zd *a = rnd_mat(t, n * n), *s = hpd(t, n);
  round_to(t, a, n * n);
  round_to(t, s, n * n);
  for (int64_t i = 0; i < n; i++) a[i * n + i] += 4;
  em_array *A = mk(t, 2, (int64_t[]){n, n}, a), *S = mk(t, 2, (int64_t[]){n, n}, s);
  em_array *C, *Q, *R, *U, *sv, *VT, *W, *V, *X, *P, *L, *UU;
  CHECK(em_cholesky(&C, S) == EM_OK, "cholesky");
  CHECK(em_qr(&Q, &R, A, false) == EM_OK, "qr");
  CHECK(em_svd(&U, &sv, &VT, A, true) == EM_OK, "svd");
  CHECK(em_eigh(&W, &V, S) == EM_OK, "eigh");
  CHECK(em_solve(&X, A, S) == EM_OK, "solve");
  CHECK(em_lu(&P, &L, &UU, A) == EM_OK, "lu");
  zd *hc = get(C), *hq = get(Q), *hr = get(R), *hu = get(U), *hs = get(sv),
     *hvt = get(VT), *hw = get(W), *hv = get(V), *hx = get(X), *hp = get(P),
     *hl = get(L), *huu = get(UU);
  verify_chol(t, s, hc, n);
  verify_qr(t, a, hq, hr, n, n, n);
  verify_svd(t, a, hu, hs, hvt, n, n, n, n);
  verify_eigh(t, s, hw, hv, n);
  verify_lu(t, a, hp, hl, huu, n);
  zd *ax = alloc_z(n * n);
  mm(a, hx, ax, n, n, n);
  check_vals("large solve", t, ax, s, n * n, tol(t) * 100 * (double)n);
  free(ax);
  zd *hf[] = {a, s, hc, hq, hr, hu, hs, hvt, hw, hv, hx, hp, hl, huu};
  for (size_t i = 0; i < sizeof hf / sizeof hf[0]; i++) free(hf[i]);
  em_array *rel[] = {A, S, C, Q, R, U, sv, VT, W, V, X, P, L, UU};
  for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++)
    em_array_release(rel[i]);
}

/* Inputs that are views (transposed, strided slices) give the results of
 * their contiguous copies. */
static void test_noncontiguous(em_dtype t) {
  int64_t n = 5;
  zd *base = hpd(t, 2 * n); /* 10 x 10, take every other row/col: HPD */
  round_to(t, base, 4 * n * n);
  em_array *B = mk(t, 2, (int64_t[]){2 * n, 2 * n}, base), *SL = NULL,
           *TR = NULL;
  CHECK(em_slice(&SL, B, (int64_t[]){0, 0}, (int64_t[]){2 * n, 2 * n},
                 (int64_t[]){2, 2}) == EM_OK,
        "slice: %s", em_last_error());
  CHECK(em_transpose(&TR, SL, NULL) == EM_OK, "transpose");
  zd *dense = alloc_z(n * n), *dt = alloc_z(n * n);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) {
      dense[i * n + j] = base[(2 * i) * 2 * n + 2 * j];
      dt[i * n + j] = base[(2 * j) * 2 * n + 2 * i];
    }
  em_array *D = mk(t, 2, (int64_t[]){n, n}, dense),
           *DT = mk(t, 2, (int64_t[]){n, n}, dt);
  struct {
    em_array *view, *dense;
  } pr[2] = {{SL, D}, {TR, DT}};
  for (int i = 0; i < 2; i++) {
    em_array *c1, *c2, *q1, *r1, *q2, *r2, *d1, *d2, *x1, *x2, *w1, *v1, *w2,
        *v2;
    CHECK(em_cholesky(&c1, pr[i].view) == EM_OK, "cholesky");
    CHECK(em_cholesky(&c2, pr[i].dense) == EM_OK, "cholesky");
    CHECK(em_qr(&q1, &r1, pr[i].view, true) == EM_OK, "qr");
    CHECK(em_qr(&q2, &r2, pr[i].dense, true) == EM_OK, "qr");
    CHECK(em_determinant(&d1, pr[i].view) == EM_OK, "det");
    CHECK(em_determinant(&d2, pr[i].dense) == EM_OK, "det");
    CHECK(em_solve(&x1, pr[i].view, pr[i].view) == EM_OK, "solve");
    CHECK(em_solve(&x2, pr[i].dense, pr[i].dense) == EM_OK, "solve");
    CHECK(em_eigh(&w1, &v1, pr[i].view) == EM_OK, "eigh");
    CHECK(em_eigh(&w2, &v2, pr[i].dense) == EM_OK, "eigh");
    em_array *ps[][2] = {{c1, c2}, {q1, q2}, {r1, r2}, {d1, d2}, {x1, x2},
                         {w1, w2}, {v1, v2}};
    for (size_t j = 0; j < sizeof ps / sizeof ps[0]; j++) {
      zd *g = get(ps[j][0]), *h = get(ps[j][1]);
      check_vals("non-contiguous input", t, g, h, em_array_size(ps[j][1]), 0);
      free(g);
      free(h);
      em_array_release(ps[j][0]);
      em_array_release(ps[j][1]);
    }
    /* solve(A, I) is A^-1: A X = I */
    em_array *x = NULL;
    zd eye[25] = {0};
    for (int j = 0; j < 5; j++) eye[j * 6] = 1;
    em_array *E = mk(t, 2, (int64_t[]){n, n}, eye);
    CHECK(em_solve(&x, pr[i].view, E) == EM_OK, "solve");
    zd *hx = get(x), *hd = get(pr[i].dense), ax[25];
    mm(hd, hx, ax, n, n, n);
    check_vals("solve(A, I)", t, ax, eye, 25, tol(t) * 100);
    free(hx);
    free(hd);
    em_array_release(x);
    em_array_release(E);
  }
  free(base);
  free(dense);
  free(dt);
  em_array_release(B);
  em_array_release(SL);
  em_array_release(TR);
  em_array_release(D);
  em_array_release(DT);
}

/* Zero-size shapes: empty batches, 0 x 0 matrices, empty QR/SVD sides. */
static void test_zero_size(em_dtype t) {
  int64_t s0[3] = {0, 3, 3}, s1[3] = {2, 0, 0};
  for (int z = 0; z < 2; z++) {
    const int64_t *s = z ? s1 : s0;
    em_array *A = mk(t, 3, s, NULL), *o[3] = {0};
    CHECK(em_cholesky(&o[0], A) == EM_OK && shape_is(o[0], 3, s), "cholesky");
    CHECK(em_eval(o, 1) == EM_OK, "cholesky eval: %s", em_last_error());
    em_array_release(o[0]);
    CHECK(em_lu(&o[0], &o[1], &o[2], A) == EM_OK, "lu");
    CHECK(em_eval(o, 3) == EM_OK, "lu eval: %s", em_last_error());
    for (int i = 0; i < 3; i++) em_array_release(o[i]);
    CHECK(em_eigh(&o[0], &o[1], A) == EM_OK, "eigh");
    CHECK(em_eval(o, 2) == EM_OK, "eigh eval: %s", em_last_error());
    for (int i = 0; i < 2; i++) em_array_release(o[i]);
    CHECK(em_qr(&o[0], &o[1], A, true) == EM_OK, "qr");
    CHECK(em_eval(o, 2) == EM_OK, "qr eval: %s", em_last_error());
    for (int i = 0; i < 2; i++) em_array_release(o[i]);
    CHECK(em_svd(&o[0], &o[1], &o[2], A, true) == EM_OK, "svd");
    CHECK(em_eval(o, 3) == EM_OK, "svd eval: %s", em_last_error());
    for (int i = 0; i < 3; i++) em_array_release(o[i]);
    CHECK(em_solve(&o[0], A, A) == EM_OK, "solve");
    CHECK(em_triangular_solve(&o[1], A, A, true, true, EM_TRANSFORM_NONE) ==
              EM_OK,
          "triangular_solve");
    CHECK(em_determinant(&o[2], A) == EM_OK, "determinant");
    CHECK(em_eval(o, 3) == EM_OK, "eval: %s", em_last_error());
    if (z) { /* det of 0 x 0 matrices is 1 */
      zd ones[2] = {1, 1};
      check_arr("determinant 0x0", o[2], ones, 0);
    }
    for (int i = 0; i < 3; i++) em_array_release(o[i]);
    em_array_release(A);
  }
  /* qr / svd of 3 x 0 and 0 x 3: identity sides */
  em_array *A = mk(t, 2, (int64_t[]){3, 0}, NULL), *q, *r, *u, *s, *vt;
  CHECK(em_qr(&q, &r, A, true) == EM_OK, "qr");
  CHECK(shape_is(q, 2, (int64_t[]){3, 3}) && shape_is(r, 2, (int64_t[]){3, 0}),
        "qr 3x0 shapes");
  zd e3[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  check_arr("qr 3x0 complete q", q, e3, 0);
  em_array_release(q);
  em_array_release(r);
  CHECK(em_qr(&q, &r, A, false) == EM_OK, "qr");
  CHECK(shape_is(q, 2, (int64_t[]){3, 0}) && shape_is(r, 2, (int64_t[]){0, 0}),
        "qr 3x0 reduced shapes");
  CHECK(em_eval((em_array *[]){q, r}, 2) == EM_OK, "eval");
  em_array_release(q);
  em_array_release(r);
  CHECK(em_svd(&u, &s, &vt, A, true) == EM_OK, "svd");
  CHECK(shape_is(u, 2, (int64_t[]){3, 3}) && shape_is(s, 1, (int64_t[]){0}) &&
            shape_is(vt, 2, (int64_t[]){0, 0}),
        "svd 3x0 shapes");
  check_arr("svd 3x0 u", u, e3, 0);
  em_array_release(u);
  em_array_release(s);
  em_array_release(vt);
  em_array_release(A);
  A = mk(t, 2, (int64_t[]){0, 3}, NULL);
  CHECK(em_svd(&u, &s, &vt, A, true) == EM_OK, "svd");
  CHECK(shape_is(u, 2, (int64_t[]){0, 0}) && shape_is(vt, 2, (int64_t[]){3, 3}),
        "svd 0x3 shapes");
  check_arr("svd 0x3 vt", vt, e3, 0);
  em_array_release(u);
  em_array_release(s);
  em_array_release(vt);
  CHECK(em_svd(&u, &s, &vt, A, false) == EM_OK, "svd");
  CHECK(shape_is(u, 2, (int64_t[]){0, 0}) && shape_is(vt, 2, (int64_t[]){0, 3}),
        "svd 0x3 reduced shapes");
  CHECK(em_eval((em_array *[]){u, s, vt}, 3) == EM_OK, "eval");
  em_array_release(u);
  em_array_release(s);
  em_array_release(vt);
  em_array_release(A);
}

/* Wide / tall shapes of qr and svd in both modes, and 1 x 1 matrices. */
static void test_shapes(em_dtype t) {
  int64_t shapes[][2] = {{1, 1}, {1, 4}, {4, 1}, {6, 3}, {3, 6}, {7, 7}};
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    int64_t m = shapes[i][0], n = shapes[i][1], k = m < n ? m : n;
    zd *a = rnd_mat(t, m * n);
    round_to(t, a, m * n);
    em_array *A = mk(t, 2, (int64_t[]){m, n}, a);
    for (int f = 0; f < 2; f++) {
      em_array *Q, *R, *U, *S, *VT;
      zd *q, *r;
      run_qr(A, f, &q, &r, &Q, &R);
      int64_t qc = f ? m : k;
      CHECK(shape_is(Q, 2, (int64_t[]){m, qc}) &&
                shape_is(R, 2, (int64_t[]){qc, n}),
            "qr shapes %lldx%lld", (long long)m, (long long)n);
      verify_qr(t, a, q, r, m, n, qc);
      free(q);
      free(r);
      CHECK(em_svd(&U, &S, &VT, A, f) == EM_OK, "svd: %s", em_last_error());
      int64_t uc = f ? m : k, vr = f ? n : k;
      CHECK(shape_is(U, 2, (int64_t[]){m, uc}) &&
                shape_is(S, 1, (int64_t[]){k}) &&
                shape_is(VT, 2, (int64_t[]){vr, n}),
            "svd shapes");
      zd *hu = get(U), *hs = get(S), *hv = get(VT);
      verify_svd(t, a, hu, hs, hv, m, n, uc, vr);
      free(hu);
      free(hs);
      free(hv);
      em_array *rel[] = {Q, R, U, S, VT};
      for (int j = 0; j < 5; j++) em_array_release(rel[j]);
    }
    free(a);
    em_array_release(A);
  }
}

/* Non-finite and singular inputs: defined results or clean errors. */
static void test_special(em_dtype t) {
  /* cholesky of a non-positive-definite matrix: Nx's NaN pattern */
  zd a[] = {1, 2, 2, 1};
  em_array *A = mk(t, 2, (int64_t[]){2, 2}, a), *L = NULL;
  CHECK(em_cholesky(&L, A) == EM_OK, "cholesky");
  zd *l = get(L);
  /* (Nx adds eps = 1e-10 to the divisors) */
  CHECK(l[0] == 1 && l[1] == 0 && cabs(l[2] - 2) < 1e-9,
        "cholesky non-PD finite part");
  CHECK(is_c(t) ? (cabs(l[3] - sqrt(3) * I) < 1e-6) : isnan(creal(l[3])),
        "cholesky non-PD pivot %s: %g%+gi", em_dtype_name(t), creal(l[3]),
        cimag(l[3]));
  free(l);
  em_array_release(L);
  em_array_release(A);
  /* a zero pivot: Nx divides by (0 + eps) and flushes tiny values */
  zd z4[] = {0, 0, 0, 0}, one1[] = {1, 1, 1, 1}, w11[] = {1, 0, 1, 0};
  A = mk(t, 2, (int64_t[]){2, 2}, z4);
  CHECK(em_cholesky(&L, A) == EM_OK, "cholesky");
  check_arr("cholesky of zeros", L, z4, 0);
  em_array_release(L);
  em_array_release(A);
  /* [[1,1],[1,1]]: l10 = 1/(1 + eps), l11 = sqrt(1 - l10^2), in the
   * element precision (f32: exactly 1 and 0) */
  if (!is_single(t)) {
    double l10 = 1 / (1 + 1e-10);
    w11[2] = l10;
    w11[3] = sqrt(1 - l10 * l10);
  }
  A = mk(t, 2, (int64_t[]){2, 2}, one1);
  CHECK(em_cholesky(&L, A) == EM_OK, "cholesky");
  check_arr("cholesky of a singular PSD matrix", L, w11, tol(t));
  em_array_release(L);
  em_array_release(A);
  /* a batch where one entry fails: the others are untouched */
  zd b[] = {4, 2, 2, 3, 1, 2, 2, 1};
  A = mk(t, 3, (int64_t[]){2, 2, 2}, b);
  CHECK(em_cholesky(&L, A) == EM_OK, "cholesky");
  l = get(L);
  CHECK(cabs(l[0] - 2) < 1e-6 && cabs(l[2] - 1) < 1e-6 &&
            cabs(l[3] - sqrt(2)) < 1e-6,
        "cholesky batch with a non-PD entry");
  free(l);
  em_array_release(L);
  em_array_release(A);

  /* NaN input: eigh and svd give NaN, the others propagate without error */
  zd nn[] = {1, NAN, 3, 4};
  A = mk(t, 2, (int64_t[]){2, 2}, nn);
  em_array *W, *V, *U, *S, *VT, *Q, *R;
  CHECK(em_eigh(&W, &V, A) == EM_OK, "eigh");
  CHECK(em_svd(&U, &S, &VT, A, true) == EM_OK, "svd");
  CHECK(em_qr(&Q, &R, A, false) == EM_OK, "qr");
  zd *hw = get(W), *hs = get(S), *hu = get(U);
  CHECK(isnan(creal(hw[0])) && isnan(creal(hw[1])) && isnan(creal(hs[0])) &&
            isnan(creal(hu[0])),
        "NaN input gives NaN eigenvalues / singular values");
  em_array *rr[] = {Q, R};
  CHECK(em_eval(rr, 2) == EM_OK, "qr of NaN: %s", em_last_error());
  free(hw);
  free(hs);
  free(hu);
  em_array *rel[] = {A, W, V, U, S, VT, Q, R};
  for (int i = 0; i < 8; i++) em_array_release(rel[i]);
  zd inf[] = {INFINITY, 0, 0, 1};
  A = mk(t, 2, (int64_t[]){2, 2}, inf);
  CHECK(em_svd(&U, &S, &VT, A, false) == EM_OK, "svd");
  hs = get(S);
  CHECK(isnan(creal(hs[0])), "svd of inf input: NaN");
  free(hs);
  em_array_release(U);
  em_array_release(S);
  em_array_release(VT);
  em_array_release(A);

  /* singular solve: an evaluation error naming the op */
  zd sg[] = {1, 2, 2, 4, 1, 0, 0, 1}, rhs[] = {1, 1, 1, 1};
  A = mk(t, 3, (int64_t[]){2, 2, 2}, sg);
  em_array *B = mk(t, 2, (int64_t[]){2, 2}, rhs), *X = NULL;
  CHECK(em_solve(&X, A, B) == EM_OK, "solve builds");
  em_status st = em_eval(&X, 1);
  CHECK(st == EM_ERR_ARGUMENT && msg_has("[solve]") && msg_has("singular"),
        "singular solve: %d %s", (int)st, em_last_error());
  em_array_release(X);
  /* LU determinant with an exactly zero pivot is 0 even next to inf (Nx
   * selects 0 rather than the product's NaN) */
  {
    zd di[16] = {INFINITY, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0};
    em_array *DI = mk(t, 2, (int64_t[]){4, 4}, di), *DD = NULL;
    CHECK(em_determinant(&DD, DI) == EM_OK, "det");
    zd z0 = 0;
    check_arr("determinant zero pivot", DD, &z0, 0);
    em_array_release(DI);
    em_array_release(DD);
  }
  /* determinant and lu of singular matrices are fine */
  em_array *D = NULL, *P, *LL, *UU;
  CHECK(em_determinant(&D, A) == EM_OK, "det");
  zd dw[2] = {0, 1};
  check_arr("determinant singular", D, dw, 0);
  em_array_release(D);
  CHECK(em_lu(&P, &LL, &UU, A) == EM_OK, "lu");
  em_array *lus[3] = {P, LL, UU};
  CHECK(em_eval(lus, 3) == EM_OK, "lu singular: %s", em_last_error());
  for (int i = 0; i < 3; i++) em_array_release(lus[i]);
  em_array_release(A);
  em_array_release(B);
  /* triangular_solve with a zero on the diagonal */
  zd tz[] = {1, 0, 5, 0};
  A = mk(t, 2, (int64_t[]){2, 2}, tz);
  B = mk(t, 1, (int64_t[]){2}, rhs);
  CHECK(em_triangular_solve(&X, A, B, true, true, EM_TRANSFORM_NONE) == EM_OK,
        "triangular_solve builds");
  st = em_eval(&X, 1);
  CHECK(st == EM_ERR_ARGUMENT && msg_has("[triangular_solve]") &&
            msg_has("singular"),
        "singular triangular_solve: %d %s", (int)st, em_last_error());
  em_array_release(X);
  /* the ignored triangle may hold anything, even NaN */
  zd tn[] = {2, NAN, 1, 4}, tb[] = {2, 9}, tw[] = {1, 2};
  em_array_release(A);
  A = mk(t, 2, (int64_t[]){2, 2}, tn);
  em_array_release(B);
  B = mk(t, 1, (int64_t[]){2}, tb);
  CHECK(em_triangular_solve(&X, A, B, true, true, EM_TRANSFORM_NONE) == EM_OK,
        "triangular_solve");
  check_arr("triangular_solve ignores upper", X, tw, tol(t));
  em_array_release(X);
  em_array_release(A);
  em_array_release(B);
}

/* ---- error cases -------------------------------------------------------- */

static void expect_err(em_status st, const char *op, const char *what) {
  char tag[64];
  snprintf(tag, sizeof tag, "[%s]", op);
  CHECK(st == EM_ERR_ARGUMENT && msg_has(tag), "%s: status %d, message '%s'",
        what, (int)st, em_last_error());
}

static void test_errors(void) {
  em_array *m22 = mk(EM_F32, 2, (int64_t[]){2, 2}, (zd[]){1, 0, 0, 1});
  em_array *m23 = mk(EM_F32, 2, (int64_t[]){2, 3}, (zd[]){1, 2, 3, 4, 5, 6});
  em_array *v2 = mk(EM_F32, 1, (int64_t[]){2}, (zd[]){1, 2});
  em_array *v3 = mk(EM_F32, 1, (int64_t[]){3}, (zd[]){1, 2, 3});
  em_array *d22 = mk(EM_F64, 2, (int64_t[]){2, 2}, (zd[]){1, 0, 0, 1});
  em_array *b222 = mk(EM_F32, 3, (int64_t[]){2, 2, 2}, NULL);
  em_array *b322 = mk(EM_F32, 3, (int64_t[]){3, 2, 2}, NULL);
  em_array *b32 = mk(EM_F32, 2, (int64_t[]){3, 2}, NULL);
  em_array *sc = mk(EM_F32, 0, NULL, (zd[]){1});
  em_array *i22 = NULL, *h22 = NULL;
  int32_t iv[4] = {1, 0, 0, 1};
  CHECK(em_array_from_data(&i22, EM_S32, 2, (int64_t[]){2, 2}, iv, sizeof iv,
                           em_cpu()) == EM_OK,
        "from_data");
  uint16_t hv[4] = {0x3c00, 0, 0, 0x3c00};
  CHECK(em_array_from_data(&h22, EM_F16, 2, (int64_t[]){2, 2}, hv, sizeof hv,
                           em_cpu()) == EM_OK,
        "from_data");
  em_array *o = (em_array *)1, *o2 = (em_array *)1, *o3 = (em_array *)1;

  /* NULL outs and inputs */
  expect_err(em_cholesky(NULL, m22), "cholesky", "NULL out");
  expect_err(em_cholesky(&o, NULL), "cholesky", "NULL input");
  CHECK(o == NULL, "out cleared on error");
  expect_err(em_qr(&o, NULL, m22, false), "qr", "NULL r");
  expect_err(em_lu(&o, &o2, NULL, m22), "lu", "NULL u");
  expect_err(em_eigh(NULL, &o, m22), "eigh", "NULL values");
  expect_err(em_svd(&o, &o2, NULL, m22, true), "svd", "NULL vt");
  expect_err(em_solve(&o, NULL, v2), "solve", "NULL a");
  expect_err(em_solve(&o, m22, NULL), "solve", "NULL b");
  expect_err(em_triangular_solve(&o, m22, NULL, true, true, 0),
             "triangular_solve", "NULL b");
  expect_err(em_determinant(&o, NULL), "determinant", "NULL input");
  /* dtypes */
  expect_err(em_cholesky(&o, i22), "cholesky", "s32 input");
  expect_err(em_determinant(&o, h22), "determinant", "f16 input");
  o = o2 = o3 = (em_array *)1;
  expect_err(em_svd(&o, &o2, &o3, i22, true), "svd", "s32 input");
  CHECK(o == NULL && o2 == NULL && o3 == NULL, "svd outs cleared on error");
  em_array *dv2 = mk(EM_F64, 1, (int64_t[]){2}, (zd[]){1, 2});
  expect_err(em_solve(&o, m22, dv2), "solve", "dtype mismatch");
  em_array_release(dv2);
  expect_err(em_triangular_solve(&o, d22, v2, true, true, 0),
             "triangular_solve", "dtype mismatch");
  /* ranks and squareness */
  expect_err(em_cholesky(&o, v2), "cholesky", "rank 1");
  expect_err(em_eigh(&o, &o2, sc), "eigh", "rank 0");
  expect_err(em_qr(&o, &o2, v2, false), "qr", "rank 1");
  expect_err(em_cholesky(&o, m23), "cholesky", "non-square");
  expect_err(em_lu(&o, &o2, &o3, m23), "lu", "non-square");
  expect_err(em_eigh(&o, &o2, m23), "eigh", "non-square");
  expect_err(em_determinant(&o, m23), "determinant", "non-square");
  expect_err(em_solve(&o, m23, v2), "solve", "non-square");
  expect_err(em_triangular_solve(&o, m23, v2, true, true, 0),
             "triangular_solve", "non-square");
  /* right-hand sides */
  expect_err(em_solve(&o, m22, v3), "solve", "vector length");
  expect_err(em_solve(&o, m22, b32), "solve", "matrix rows");
  expect_err(em_solve(&o, b222, b322), "solve", "batch mismatch");
  expect_err(em_solve(&o, m22, sc), "solve", "scalar b");
  expect_err(em_triangular_solve(&o, m22, b32, true, true, 0),
             "triangular_solve", "left rows");
  expect_err(em_triangular_solve(&o, m22, m23, false, true, 0),
             "triangular_solve", "right cols");
  expect_err(em_triangular_solve(&o, b222, b322, true, true, 0),
             "triangular_solve", "batch mismatch");
  expect_err(em_triangular_solve(&o, m22, v2, true, true, (em_transform)7),
             "triangular_solve", "bad transform");
  /* valid right-side shapes are accepted */
  em_array *ok = NULL;
  CHECK(em_triangular_solve(&ok, m22, m23 /* 2x3, left */, true, true, 0) ==
            EM_OK,
        "left 2x3: %s", em_last_error());
  em_array_release(ok);
  CHECK(em_triangular_solve(&ok, m22, b32 /* 3x2, right */, false, true, 0) ==
            EM_OK,
        "right 3x2: %s", em_last_error());
  em_array_release(ok);
  em_array *rel[] = {m22, m23, v2, v3, d22, b222, b322, b32, sc, i22, h22};
  for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++)
    em_array_release(rel[i]);
}

/* A failed allocation inside a kernel is an OOM error, not a crash. */
static void test_oom(void) {
  zd a[] = {4, 2, 2, 3};
  for (int which = 0; which < 3; which++) {
    em_array *A = mk(EM_F64, 2, (int64_t[]){2, 2}, a), *o[3] = {0};
    em_status st;
    if (which == 0) st = em_cholesky(&o[0], A);
    else if (which == 1) st = em_qr(&o[0], &o[1], A, true);
    else st = em_svd(&o[0], &o[1], &o[2], A, true);
    CHECK(st == EM_OK, "build: %s", em_last_error());
    em_memory_fail_after(em_cpu(), 0);
    st = em_eval(o, which == 0 ? 1 : which == 1 ? 2 : 3);
    em_memory_fail_after(em_cpu(), -1);
    CHECK(st == EM_ERR_OOM, "injected OOM gives %d (%s)", (int)st,
          em_last_error());
    for (int i = 0; i < 3; i++) em_array_release(o[i]);
    em_array_release(A);
  }
}

int main(void) {
  test_nx_docs();
  test_fixtures();
  test_errors();
  test_oom();
  for (int d = 0; d < 4; d++) {
    em_dtype t = DTS[d];
    test_batches(t, 3, 17, 6, 4);  /* 51 small entries: the pool path */
    test_batches(t, 1, 2, 3, 5);   /* wide */
    test_batches(t, 1, 2, 70, 66); /* large entries, one after another */
    test_large(t, is_single(t) ? 96 : 120);
    test_noncontiguous(t);
    test_zero_size(t);
    test_shapes(t);
    test_special(t);
  }
  return TEST_SUMMARY();
}
