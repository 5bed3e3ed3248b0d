/* test_cuda_linalg.c — the linear-algebra family on CUDA against the CPU
 * backend (differential): triangular_solve, cholesky, qr, lu, eigh, svd,
 * solve, determinant, for f32 f64 c64 c128, single matrices and batches
 * (small batches go through the batched library routines, large matrices
 * one call each), 1x1, zero-size batches and matrices, sizes up to 512,
 * transposed and strided input views, and the error paths (non positive
 * definite cholesky, singular solve / triangular_solve, singular lu,
 * non-finite eigh / svd input).
 *
 * Deterministic factors (cholesky, lu, solve, triangular_solve,
 * determinant) are compared with the CPU's; for qr, eigh and svd, whose
 * signs/phases neither backend normalizes, the values that are unique are
 * compared (|diag R|, eigenvalues, singular values) and the CUDA factors are
 * checked by invariants in double complex: Q^H Q = I, Q R = A, R upper
 * triangular; A V = V diag(w), V^H V = I; U^H U = I, Vt Vt^H = I,
 * U diag(s) Vt = A. Tolerances scale with the precision and the order.
 *
 * One thread per dtype, each with its own CUDA stream. Without a CUDA
 * device it prints SKIPPED and passes; EMILY_LA_SELFTEST=1 runs the whole
 * suite with the CPU standing in for CUDA (checks the test itself, no GPU
 * needed). EMILY_TEST_QUICK=1 skips the largest sizes. */
#include <complex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/array-impl.h"
#include "cpu/cpu-kernels.h"
#include "harness.h"

#include "cuda_diff.h"

typedef double complex zd;

static em_device G; /* the device under test: CUDA 0, or the CPU (selftest) */

static const em_dtype DTS[4] = {EM_F32, EM_F64, EM_C64, EM_C128};

static bool is_c(em_dtype t) { return t == EM_C64 || t == EM_C128; }
static bool is_single(em_dtype t) { return t == EM_F32 || t == EM_C64; }
static double eps_of(em_dtype t) {
  return is_single(t) ? 1.1920929e-7 : 2.220446049250313e-16;
}
/* Relative tolerance for results of order-n algorithms. */
static double tolf(em_dtype t, int64_t n) {
  return eps_of(t) * (64.0 + 16.0 * (double)n);
}

/* ---- host data ---------------------------------------------------------------- */

static zd rz(rng *r, em_dtype t) {
  double re = runif(r, -1, 1), im = is_c(t) ? runif(r, -1, 1) : 0;
  return CMPLX(re, im);
}

static void *pack(em_dtype t, const zd *v, int64_t n) {
  size_t es = em_dtype_size(t);
  char *buf = malloc((size_t)(n > 0 ? n : 1) * es);
  for (int64_t i = 0; i < n; i++) {
    double re = creal(v[i]), im = cimag(v[i]);
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
  return buf;
}

static zd *unpack(em_dtype t, const void *p, int64_t n) {
  zd *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
  for (int64_t i = 0; i < n; i++) {
    switch (t) {
      case EM_F32: v[i] = ((const float *)p)[i]; break;
      case EM_F64: v[i] = ((const double *)p)[i]; break;
      case EM_C64:
        v[i] = CMPLX(((const float *)p)[2 * i], ((const float *)p)[2 * i + 1]);
        break;
      default:
        v[i] = CMPLX(((const double *)p)[2 * i], ((const double *)p)[2 * i + 1]);
        break;
    }
  }
  return v;
}

/* The value rounded to t (what the engine sees). */
static void round_to(em_dtype t, zd *v, int64_t n) {
  void *p = pack(t, v, n);
  zd *w = unpack(t, p, n);
  memcpy(v, w, (size_t)n * sizeof *v);
  free(p);
  free(w);
}

static int64_t prod(int nd, const int64_t *s) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= s[i];
  return n;
}

enum { LAY_CONTIG, LAY_TRANSPOSED, LAY_SLICED };

/* An array on dev whose value is v (shape nd/shape, row-major), built as a
 * contiguous array, a transposed view of the transposed data, or a
 * stride-2 slice of a wider array (nd >= 2). */
static em_array *mk1(em_dtype t, int nd, const int64_t *shape, const zd *v,
                     em_device dev, int lay) {
  int64_t n = prod(nd, shape);
  if (lay == LAY_CONTIG || nd < 2) {
    void *p = pack(t, v, n);
    em_array *a = from(t, nd, shape, p, dev);
    free(p);
    return a;
  }
  int64_t rows = shape[nd - 2], cols = shape[nd - 1], mats = n / (rows * cols > 0 ? rows * cols : 1);
  int64_t bs[EM_MAX_NDIM];
  memcpy(bs, shape, (size_t)nd * sizeof *bs);
  zd *buf;
  int64_t bn;
  if (lay == LAY_TRANSPOSED) {
    bs[nd - 2] = cols;
    bs[nd - 1] = rows;
    bn = n;
    buf = malloc((size_t)(bn > 0 ? bn : 1) * sizeof *buf);
    for (int64_t b = 0; b < mats; b++)
      for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
          buf[b * rows * cols + j * rows + i] = v[b * rows * cols + i * cols + j];
  } else {
    bs[nd - 1] = 2 * cols;
    bn = n * 2;
    buf = malloc((size_t)(bn > 0 ? bn : 1) * sizeof *buf);
    for (int64_t b = 0; b < mats; b++)
      for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
          buf[(b * rows + i) * 2 * cols + 2 * j] = v[b * rows * cols + i * cols + j];
          buf[(b * rows + i) * 2 * cols + 2 * j + 1] = 7.5; /* never read */
        }
  }
  void *p = pack(t, buf, bn);
  em_array *base = from(t, nd, bs, p, dev), *a = NULL;
  free(p);
  free(buf);
  if (!base) return NULL;
  em_status st;
  if (lay == LAY_TRANSPOSED) {
    int perm[EM_MAX_NDIM];
    for (int i = 0; i < nd; i++) perm[i] = i;
    perm[nd - 2] = nd - 1;
    perm[nd - 1] = nd - 2;
    st = em_transpose(&a, base, perm);
  } else {
    int64_t st0[EM_MAX_NDIM] = {0}, len[EM_MAX_NDIM], step[EM_MAX_NDIM];
    for (int i = 0; i < nd; i++) {
      len[i] = bs[i];
      step[i] = i == nd - 1 ? 2 : 1;
    }
    st = em_slice(&a, base, st0, len, step);
  }
  record(st == EM_OK, "view: %s", em_last_error());
  em_array_release(base);
  if (a) {
    bool same = a->ndim == nd;
    for (int i = 0; same && i < nd; i++) same = a->shape[i] == shape[i];
    record(same, "view has the wrong shape");
  }
  return a;
}

static pair mkp(em_dtype t, int nd, const int64_t *shape, const zd *v, int lay) {
  pair p = {mk1(t, nd, shape, v, CPU, lay), mk1(t, nd, shape, v, G, lay)};
  return p;
}

/* Evaluates n arrays on the CPU and n on the device under test; true when
 * both succeed (failures recorded; EM_ERR_UNSUPPORTED listed). */
static bool run2(const char *what, em_array **cs, em_array **gs, int n) {
  for (int i = 0; i < n; i++)
    if (!cs[i] || !gs[i]) {
      record(false, "%s: op failed to build: %s", what, em_last_error());
      return false;
    }
  em_status sc = em_eval(cs, n);
  record(sc == EM_OK, "%s: CPU eval: %s", what, em_last_error());
  em_status sg = tl_stream ? em_eval_on(gs, n, tl_stream) : em_eval(gs, n);
  if (sg == EM_ERR_UNSUPPORTED) {
    unsupported(what);
    return false;
  }
  record(sg == EM_OK, "%s: device eval: %s", what, em_last_error());
  if (sc != EM_OK || sg != EM_OK) return false;
  for (int i = 0; i < n; i++) {
    bool same = cs[i]->dtype == gs[i]->dtype && cs[i]->ndim == gs[i]->ndim;
    for (int k = 0; same && k < cs[i]->ndim; k++) same = cs[i]->shape[k] == gs[i]->shape[k];
    record(same, "%s: output %d dtype/shape differ", what, i);
    if (!same) return false;
  }
  return true;
}

/* Both evaluations must fail with the same status and message. */
static void same_error(const char *what, em_array *rc, em_array *rg) {
  if (!rc || !rg) {
    record(false, "%s: op failed to build: %s", what, em_last_error());
    return;
  }
  char mc[512], mg[512];
  em_status sc = em_eval(&rc, 1);
  snprintf(mc, sizeof mc, "%s", em_last_error());
  em_status sg = tl_stream ? em_eval_on(&rg, 1, tl_stream) : em_eval(&rg, 1);
  snprintf(mg, sizeof mg, "%s", em_last_error());
  if (sg == EM_ERR_UNSUPPORTED) {
    unsupported(what);
    return;
  }
  record(sc != EM_OK, "%s: CPU should fail", what);
  record(sg == sc, "%s: device status %d, CPU %d (%s)", what, (int)sg, (int)sc, mg);
  record(strcmp(mc, mg) == 0, "%s: messages differ:\n  CPU:    %s\n  device: %s", what,
         mc, mg);
}

static zd *fetch(em_array *a) {
  if (a->size == 0) return malloc(sizeof(zd));
  const void *p = em_array_data(a);
  record(p != NULL, "array_data: %s", em_last_error());
  if (!p) return calloc((size_t)a->size, sizeof(zd));
  return unpack(a->dtype, p, a->size);
}

static bool isnan_z(zd x) { return isnan(creal(x)) || isnan(cimag(x)); }

static double maxabs(const zd *x, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++)
    if (!isnan_z(x[i]) && cabs(x[i]) > m) m = cabs(x[i]);
  return m;
}

/* max |got - want| <= tol * max |want|; NaN where (and only where) want
 * has NaN. tol 0: exact. */
static void chk_close(const char *what, const char *part, em_dtype t, const zd *got,
                      const zd *want, int64_t n, double tol) {
  double md = 0, mw = maxabs(want, n);
  int64_t bad = -1, worst = -1;
  for (int64_t i = 0; i < n; i++) {
    bool wn = isnan_z(want[i]), gn = isnan_z(got[i]);
    if (wn || gn) {
      if (wn != gn && bad < 0) bad = i;
      continue;
    }
    if (!isfinite(creal(want[i])) || !isfinite(cimag(want[i]))) {
      if (got[i] != want[i] && bad < 0) bad = i;
      continue;
    }
    double d = cabs(got[i] - want[i]);
    if (!(d <= md)) {
      md = d;
      worst = i;
    }
  }
  bool ok = bad < 0 && md <= tol * (mw > 1e-300 ? mw : 1e-300);
  if (bad >= 0)
    record(false, "%s: %s [%s] element %lld: got (%.9g, %.9g) want (%.9g, %.9g)", what,
           part, em_dtype_name(t), (long long)bad, creal(got[bad]), cimag(got[bad]),
           creal(want[bad]), cimag(want[bad]));
  else
    record(ok, "%s: %s [%s] max |diff| %.3g at %lld (got (%.9g, %.9g) want (%.9g, %.9g)), "
           "max |want| %.3g, tol %.3g",
           what, part, em_dtype_name(t), md, (long long)worst,
           worst >= 0 ? creal(got[worst]) : 0, worst >= 0 ? cimag(got[worst]) : 0,
           worst >= 0 ? creal(want[worst]) : 0, worst >= 0 ? cimag(want[worst]) : 0, mw,
           tol);
}

/* Compares one output of both sides. */
static void cmp_out(const char *what, const char *part, em_array *c, em_array *g, double tol) {
  if (c->size == 0) return;
  zd *zc = fetch(c), *zg = fetch(g);
  chk_close(what, part, c->dtype, zg, zc, c->size, tol);
  free(zc);
  free(zg);
}

/* ---- generators (batch x m x n, row-major, rounded to t) ------------------------- */

static zd *gen_general(rng *r, em_dtype t, int64_t batch, int64_t m, int64_t n) {
  int64_t cnt = batch * m * n;
  zd *v = malloc((size_t)(cnt > 0 ? cnt : 1) * sizeof *v);
  for (int64_t i = 0; i < cnt; i++) v[i] = rz(r, t);
  round_to(t, v, cnt);
  return v;
}

/* B B^H + n I: Hermitian positive definite, well conditioned. */
static zd *gen_hpd(rng *r, em_dtype t, int64_t batch, int64_t n) {
  zd *b = gen_general(r, t, batch, n, n);
  zd *v = malloc((size_t)(batch * n * n > 0 ? batch * n * n : 1) * sizeof *v);
  for (int64_t k = 0; k < batch; k++) {
    const zd *B = b + k * n * n;
    zd *A = v + k * n * n;
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j <= i; j++) {
        zd s = 0;
        for (int64_t l = 0; l < n; l++) s += B[i * n + l] * conj(B[j * n + l]);
        if (i == j) s = creal(s) + (double)n;
        A[i * n + j] = s;
        A[j * n + i] = conj(s);
      }
  }
  free(b);
  round_to(t, v, batch * n * n);
  return v;
}

/* R + d I (R uniform in [-1, 1]): diagonally dominant by rows and columns
 * for d >= n. */
static zd *gen_dd(rng *r, em_dtype t, int64_t batch, int64_t n, double d) {
  zd *v = gen_general(r, t, batch, n, n);
  for (int64_t k = 0; k < batch; k++)
    for (int64_t i = 0; i < n; i++) v[k * n * n + i * n + i] += d;
  round_to(t, v, batch * n * n);
  return v;
}

/* Rows of a column-dominant matrix in random order: partial pivoting's
 * choices are unambiguous (a clear maximum in every column, all along). */
static zd *gen_perm_dd(rng *r, em_dtype t, int64_t batch, int64_t n) {
  zd *d = gen_dd(r, t, batch, n, (double)n + 1);
  zd *v = malloc((size_t)(batch * n * n > 0 ? batch * n * n : 1) * sizeof *v);
  int64_t *perm = malloc((size_t)(n > 0 ? n : 1) * sizeof *perm);
  for (int64_t k = 0; k < batch; k++) {
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
      int64_t j = (int64_t)(rnext(r) % (uint64_t)(i + 1)), tmp = perm[i];
      perm[i] = perm[j];
      perm[j] = tmp;
    }
    for (int64_t i = 0; i < n; i++)
      memcpy(v + k * n * n + perm[i] * n, d + k * n * n + i * n, (size_t)n * sizeof *v);
  }
  free(perm);
  free(d);
  return v;
}

/* Hermitian (real diagonal); garbage above the diagonal when junk_upper
 * (eigh reads the lower triangle). */
static zd *gen_herm(rng *r, em_dtype t, int64_t batch, int64_t n, bool junk_upper) {
  zd *v = gen_general(r, t, batch, n, n);
  for (int64_t k = 0; k < batch; k++) {
    zd *A = v + k * n * n;
    for (int64_t i = 0; i < n; i++) {
      A[i * n + i] = creal(A[i * n + i]);
      for (int64_t j = 0; j < i; j++) A[j * n + i] = junk_upper ? 9.0 : conj(A[i * n + j]);
    }
  }
  return v;
}

/* ---- cholesky ------------------------------------------------------------------- */

static void one_chol(em_dtype t, int nd, const int64_t *shape, const zd *v, int lay,
                     const char *tag) {
  int64_t n = shape[nd - 1];
  char what[160], s[64];
  em_shape_str(s, sizeof s, nd, shape);
  snprintf(what, sizeof what, "cholesky %s %s%s%s", em_dtype_name(t), s,
           lay ? (lay == 1 ? " (transposed)" : " (sliced)") : "", tag);
  pair a = mkp(t, nd, shape, v, lay);
  em_array *rc = NULL, *rg = NULL;
  em_cholesky(&rc, a.c);
  em_cholesky(&rg, a.g);
  if (run2(what, &rc, &rg, 1)) cmp_out(what, "L", rc, rg, tolf(t, n));
  em_array_release(rc);
  em_array_release(rg);
  prelease(a);
}

static void t_cholesky(em_dtype t, rng *r) {
  static const int64_t ns[] = {1, 2, 3, 5, 16, 33, 64, 65, 128, 512};
  for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
    if (quick && ns[i] > 128) continue;
    int64_t shape[1 + 2] = {ns[i], ns[i]};
    zd *v = gen_hpd(r, t, 1, ns[i]);
    one_chol(t, 2, shape, v, LAY_CONTIG, "");
    if (ns[i] == 5 || ns[i] == 65) {
      one_chol(t, 2, shape, v, LAY_TRANSPOSED, "");
      one_chol(t, 2, shape, v, LAY_SLICED, "");
    }
    free(v);
  }
  static const int64_t bs[][3] = {{3, 1, 1}, {4, 4, 4}, {3, 16, 16}, {2, 64, 64}, {2, 65, 65},
                                  {0, 4, 4},  {2, 0, 0}};
  for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++) {
    zd *v = gen_hpd(r, t, bs[i][0], bs[i][1]);
    one_chol(t, 3, bs[i], v, LAY_CONTIG, "");
    if (bs[i][1] == 4) one_chol(t, 3, bs[i], v, LAY_SLICED, "");
    free(v);
  }
  int64_t s4[4] = {2, 2, 8, 8};
  zd *v = gen_hpd(r, t, 4, 8);
  one_chol(t, 4, s4, v, LAY_CONTIG, "");
  free(v);
  /* not positive definite: Nx's algorithm (NaN / complex roots), never an
   * error; batched (entry 1: last pivot negative, 2: first pivot
   * negative) and single (a middle pivot) */
  int64_t sb[3] = {3, 4, 4};
  v = gen_hpd(r, t, 3, 4);
  v[16 + 15] = -1.0;
  v[32 + 0] = -2.0;
  one_chol(t, 3, sb, v, LAY_CONTIG, " (not positive definite)");
  free(v);
  int64_t s6[2] = {6, 6};
  v = gen_hpd(r, t, 1, 6);
  v[2 * 6 + 2] = -40.0;
  one_chol(t, 2, s6, v, LAY_CONTIG, " (not positive definite)");
  free(v);
  int64_t s70[2] = {70, 70};
  v = gen_hpd(r, t, 1, 70);
  v[69 * 70 + 69] = -1.0;
  one_chol(t, 2, s70, v, LAY_CONTIG, " (not positive definite)");
  free(v);
}

/* ---- lu ---------------------------------------------------------------------------- */

static void one_lu(em_dtype t, int nd, const int64_t *shape, const zd *v, int lay,
                   const char *tag) {
  int64_t n = shape[nd - 1], batch = prod(nd - 2, shape);
  char what[160], s[64];
  em_shape_str(s, sizeof s, nd, shape);
  snprintf(what, sizeof what, "lu %s %s%s%s", em_dtype_name(t), s,
           lay ? (lay == 1 ? " (transposed)" : " (sliced)") : "", tag);
  pair a = mkp(t, nd, shape, v, lay);
  em_array *c[3] = {NULL, NULL, NULL}, *g[3] = {NULL, NULL, NULL};
  em_lu(&c[0], &c[1], &c[2], a.c);
  em_lu(&g[0], &g[1], &g[2], a.g);
  if (run2(what, c, g, 3) && batch * n > 0) {
    double tol = tolf(t, n);
    cmp_out(what, "P", c[0], g[0], 0);
    cmp_out(what, "L", c[1], g[1], tol);
    cmp_out(what, "U", c[2], g[2], tol);
    /* P L U = A */
    zd *P = fetch(g[0]), *L = fetch(g[1]), *U = fetch(g[2]);
    double e = 0;
    for (int64_t b = 0; b < batch; b++) {
      const zd *p = P + b * n * n, *l = L + b * n * n, *u = U + b * n * n, *x = v + b * n * n;
      zd *lu = calloc((size_t)(n * n), sizeof *lu);
      for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k <= i; k++)
          for (int64_t j = k; j < n; j++) lu[i * n + j] += l[i * n + k] * u[k * n + j];
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
          zd s2 = 0;
          for (int64_t k = 0; k < n; k++) s2 += p[i * n + k] * lu[k * n + j];
          double d = cabs(s2 - x[i * n + j]);
          if (!(d <= e)) e = d;
        }
      free(lu);
    }
    double mx = maxabs(v, batch * n * n);
    record(e <= tol * (mx > 0 ? mx : 1), "%s: |P L U - A| = %.3g (max |A| %.3g)", what, e, mx);
    free(P);
    free(L);
    free(U);
  }
  for (int i = 0; i < 3; i++) {
    em_array_release(c[i]);
    em_array_release(g[i]);
  }
  prelease(a);
}

static void t_lu(em_dtype t, rng *r) {
  static const int64_t ns[] = {1, 2, 3, 7, 16, 64, 65, 128, 512};
  for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
    if (quick && ns[i] > 128) continue;
    int64_t shape[2] = {ns[i], ns[i]};
    zd *v = gen_perm_dd(r, t, 1, ns[i]);
    one_lu(t, 2, shape, v, LAY_CONTIG, "");
    if (ns[i] == 7) one_lu(t, 2, shape, v, LAY_TRANSPOSED, "");
    free(v);
  }
  static const int64_t bs[][3] = {{5, 1, 1}, {4, 6, 6}, {3, 33, 33}, {2, 80, 80}, {0, 3, 3},
                                  {2, 0, 0}};
  for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++) {
    zd *v = gen_perm_dd(r, t, bs[i][0], bs[i][1]);
    one_lu(t, 3, bs[i], v, LAY_CONTIG, "");
    if (bs[i][1] == 6) one_lu(t, 3, bs[i], v, LAY_SLICED, "");
    free(v);
  }
  /* random general matrices (pivots by magnitude) */
  int64_t sg[3] = {6, 5, 5};
  zd *v = gen_general(r, t, 6, 5, 5);
  one_lu(t, 3, sg, v, LAY_CONTIG, " (general)");
  free(v);
  int64_t s1[2] = {8, 8};
  v = gen_general(r, t, 1, 8, 8);
  one_lu(t, 2, s1, v, LAY_CONTIG, " (general)");
  free(v);
  /* exactly singular: a zero column (zero pivot) in the middle */
  int64_t ss[3] = {3, 6, 6};
  v = gen_general(r, t, 3, 6, 6);
  for (int64_t i = 0; i < 6; i++) v[36 + i * 6 + 2] = 0;
  for (int64_t i = 0; i < 6; i++) v[72 + i * 6 + 0] = 0;
  one_lu(t, 3, ss, v, LAY_CONTIG, " (singular)");
  free(v);
  int64_t s100[2] = {100, 100};
  v = gen_dd(r, t, 1, 100, 100);
  for (int64_t i = 0; i < 100; i++) v[i * 100 + 40] = 0;
  one_lu(t, 2, s100, v, LAY_CONTIG, " (singular)");
  free(v);
}

/* ---- solve --------------------------------------------------------------------------- */

static void one_solve(em_dtype t, int nda, const int64_t *sa, const zd *va, int ndb,
                      const int64_t *sb, const zd *vb, int lay) {
  int64_t n = sa[nda - 1];
  char what[200], s1[64], s2[64];
  em_shape_str(s1, sizeof s1, nda, sa);
  em_shape_str(s2, sizeof s2, ndb, sb);
  snprintf(what, sizeof what, "solve %s %s \\ %s%s", em_dtype_name(t), s1, s2,
           lay ? (lay == 1 ? " (transposed)" : " (sliced)") : "");
  pair a = mkp(t, nda, sa, va, lay), b = mkp(t, ndb, sb, vb, lay == LAY_SLICED ? lay : 0);
  em_array *rc = NULL, *rg = NULL;
  em_solve(&rc, a.c, b.c);
  em_solve(&rg, a.g, b.g);
  if (run2(what, &rc, &rg, 1)) cmp_out(what, "x", rc, rg, tolf(t, n));
  em_array_release(rc);
  em_array_release(rg);
  prelease(a);
  prelease(b);
}

static void t_solve(em_dtype t, rng *r) {
  static const int64_t ns[] = {1, 2, 5, 16, 64, 65, 200, 512};
  for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
    int64_t n = ns[i];
    if (quick && n > 128) continue;
    int64_t sa[2] = {n, n}, sv[1] = {n}, sm[2] = {n, 3};
    zd *a = gen_dd(r, t, 1, n, 2.0 * (double)n), *bv = gen_general(r, t, 1, n, 1),
       *bm = gen_general(r, t, 1, n, 3);
    one_solve(t, 2, sa, a, 1, sv, bv, LAY_CONTIG);
    one_solve(t, 2, sa, a, 2, sm, bm, LAY_CONTIG);
    if (n == 5 || n == 65) {
      one_solve(t, 2, sa, a, 2, sm, bm, LAY_TRANSPOSED);
      one_solve(t, 2, sa, a, 2, sm, bm, LAY_SLICED);
    }
    free(a);
    free(bv);
    free(bm);
  }
  static const int64_t bs[][4] = {{4, 1, 1, 2}, {3, 8, 8, 5}, {2, 40, 40, 1}, {2, 70, 70, 4},
                                  {0, 3, 3, 2}, {2, 0, 0, 2}, {2, 3, 3, 0}};
  for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++) {
    int64_t batch = bs[i][0], n = bs[i][1], k = bs[i][3];
    int64_t sa[3] = {batch, n, n}, sm[3] = {batch, n, k}, sv[2] = {batch, n};
    zd *a = gen_dd(r, t, batch, n, 2.0 * (double)n + 1), *bm = gen_general(r, t, batch, n, k),
       *bv = gen_general(r, t, batch, n, 1);
    one_solve(t, 3, sa, a, 3, sm, bm, LAY_CONTIG);
    one_solve(t, 3, sa, a, 2, sv, bv, LAY_CONTIG);
    free(a);
    free(bm);
    free(bv);
  }
  /* exactly singular (a zero column): the same error as the CPU */
  int64_t sa[3] = {3, 5, 5}, sm[3] = {3, 5, 2};
  zd *a = gen_dd(r, t, 3, 5, 11), *bm = gen_general(r, t, 3, 5, 2);
  for (int64_t i = 0; i < 5; i++) a[25 + i * 5 + 3] = 0;
  pair pa = mkp(t, 3, sa, a, 0), pb = mkp(t, 3, sm, bm, 0);
  em_array *rc = NULL, *rg = NULL;
  em_solve(&rc, pa.c, pb.c);
  em_solve(&rg, pa.g, pb.g);
  char what[96];
  snprintf(what, sizeof what, "solve %s singular (batched)", em_dtype_name(t));
  same_error(what, rc, rg);
  em_array_release(rc);
  em_array_release(rg);
  prelease(pa);
  prelease(pb);
  free(a);
  free(bm);
  int64_t s2[2] = {90, 90}, v2[1] = {90};
  a = gen_dd(r, t, 1, 90, 200);
  bm = gen_general(r, t, 1, 90, 1);
  for (int64_t i = 0; i < 90; i++) a[i * 90 + 17] = 0;
  pa = mkp(t, 2, s2, a, 0);
  pb = mkp(t, 1, v2, bm, 0);
  em_solve(&rc, pa.c, pb.c);
  em_solve(&rg, pa.g, pb.g);
  snprintf(what, sizeof what, "solve %s singular", em_dtype_name(t));
  same_error(what, rc, rg);
  em_array_release(rc);
  em_array_release(rg);
  prelease(pa);
  prelease(pb);
  free(a);
  free(bm);
}

/* ---- determinant ------------------------------------------------------------------------ */

static void one_det(em_dtype t, int nd, const int64_t *shape, const zd *v, int lay,
                    const char *tag, double tol) {
  char what[160], s[64];
  em_shape_str(s, sizeof s, nd, shape);
  snprintf(what, sizeof what, "determinant %s %s%s%s", em_dtype_name(t), s,
           lay ? (lay == 1 ? " (transposed)" : " (sliced)") : "", tag);
  pair a = mkp(t, nd, shape, v, lay);
  em_array *rc = NULL, *rg = NULL;
  em_determinant(&rc, a.c);
  em_determinant(&rg, a.g);
  if (run2(what, &rc, &rg, 1) && rc->size > 0) {
    /* per entry, relative to its own magnitude */
    zd *zc = fetch(rc), *zg = fetch(rg);
    for (int64_t i = 0; i < rc->size; i++) {
      char part[32];
      snprintf(part, sizeof part, "det[%lld]", (long long)i);
      chk_close(what, part, t, zg + i, zc + i, 1, tol);
    }
    free(zc);
    free(zg);
  }
  em_array_release(rc);
  em_array_release(rg);
  prelease(a);
}

static void t_det(em_dtype t, rng *r) {
  /* closed forms (n <= 3): the same operations as the CPU */
  for (int64_t n = 0; n <= 3; n++) {
    int64_t shape[3] = {7, n, n};
    zd *v = gen_general(r, t, 7, n, n);
    one_det(t, 3, shape, v, LAY_CONTIG, "", 4 * eps_of(t));
    if (n == 3) one_det(t, 3, shape, v, LAY_TRANSPOSED, "", 4 * eps_of(t));
    free(v);
  }
  /* LU: I + R / (2 sqrt(n)) keeps the determinant moderate */
  static const int64_t ns[] = {4, 5, 16, 64, 65, 128};
  for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
    int64_t n = ns[i];
    for (int batched = 0; batched < 2; batched++) {
      int64_t batch = batched ? 3 : 1;
      zd *v = gen_general(r, t, batch, n, n);
      for (int64_t k = 0; k < batch * n * n; k++) v[k] *= 0.5 / sqrt((double)n);
      for (int64_t k = 0; k < batch; k++)
        for (int64_t j = 0; j < n; j++) v[k * n * n + j * n + j] += 1;
      round_to(t, v, batch * n * n);
      int64_t shape[3] = {batch, n, n};
      one_det(t, batched ? 3 : 2, batched ? shape : shape + 1, v, LAY_CONTIG, "", tolf(t, n));
      if (n == 5 && !batched) one_det(t, 2, shape + 1, v, LAY_SLICED, "", tolf(t, n));
      free(v);
    }
  }
  /* exactly singular: 0 */
  int64_t ss[3] = {2, 6, 6};
  zd *v = gen_general(r, t, 2, 6, 6);
  for (int64_t i = 0; i < 6; i++) v[36 + i * 6 + 1] = 0;
  one_det(t, 3, ss, v, LAY_CONTIG, " (singular)", tolf(t, 6));
  free(v);
  int64_t sz[3] = {0, 4, 4};
  one_det(t, 3, sz, NULL, LAY_CONTIG, " (empty batch)", 0);
}

/* ---- triangular_solve ---------------------------------------------------------------------- */

static void t_tri(em_dtype t, rng *r) {
  static const int64_t cases[][4] = {
      /* batch (0: unbatched), n, other dimension of b (0: vector) */
      {0, 1, 1}, {0, 5, 3}, {0, 5, 0}, {0, 64, 7}, {0, 65, 0}, {0, 300, 20},
      {4, 6, 2}, {3, 16, 0}, {2, 70, 5}, {0, 512, 16}};
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
    int64_t batch = cases[ci][0], n = cases[ci][1], k = cases[ci][2];
    if (quick && n > 128) continue;
    int64_t nb = batch ? batch : 1;
    zd *a = gen_dd(r, t, nb, n, (double)n + 2);
    for (int left = 0; left < 2; left++)
      for (int lower = 0; lower < 2; lower++)
        for (int tr = 0; tr < 3; tr++) {
          if (n == 512 && (tr != 1 || lower)) continue; /* the big case once per side */
          int off = batch ? 1 : 0;
          int64_t sa[3] = {batch, n, n}, sb[3] = {batch, left ? n : k, left ? k : n};
          int nda = 2 + off, ndb = k ? 2 + off : 1 + off;
          int64_t sv[2] = {batch, n};
          const int64_t *sbp = k ? sb + 1 - off : sv + 1 - off;
          zd *b = gen_general(r, t, nb, n, k ? k : 1);
          int lay = (ci == 1 && tr == 2) ? LAY_TRANSPOSED : (ci == 6 && tr == 1) ? LAY_SLICED : 0;
          pair pa = mkp(t, nda, sa + 1 - off, a, lay), pb = mkp(t, ndb, sbp, b, 0);
          em_array *rc = NULL, *rg = NULL;
          em_triangular_solve(&rc, pa.c, pb.c, left, lower, (em_transform)tr);
          em_triangular_solve(&rg, pa.g, pb.g, left, lower, (em_transform)tr);
          char what[200], s1[64], s2[64];
          em_shape_str(s1, sizeof s1, nda, sa + 1 - off);
          em_shape_str(s2, sizeof s2, ndb, sbp);
          snprintf(what, sizeof what, "triangular_solve %s a %s b %s %s %s %s%s",
                   em_dtype_name(t), s1, s2, left ? "left" : "right",
                   lower ? "lower" : "upper",
                   tr == 0 ? "none" : tr == 1 ? "transpose" : "adjoint",
                   lay ? (lay == 1 ? " (transposed)" : " (sliced)") : "");
          if (run2(what, &rc, &rg, 1)) cmp_out(what, "x", rc, rg, tolf(t, n));
          em_array_release(rc);
          em_array_release(rg);
          prelease(pa);
          prelease(pb);
          free(b);
        }
    free(a);
  }
  /* empty batch, empty right-hand side */
  {
    int64_t sa[3] = {0, 3, 3}, sb[3] = {0, 3, 2}, sa2[2] = {4, 4}, sb2[2] = {4, 0};
    pair pa = mkp(t, 3, sa, NULL, 0), pb = mkp(t, 3, sb, NULL, 0);
    em_array *rc = NULL, *rg = NULL;
    em_triangular_solve(&rc, pa.c, pb.c, true, true, EM_TRANSFORM_NONE);
    em_triangular_solve(&rg, pa.g, pb.g, true, true, EM_TRANSFORM_NONE);
    char what[96];
    snprintf(what, sizeof what, "triangular_solve %s empty batch", em_dtype_name(t));
    run2(what, &rc, &rg, 1);
    em_array_release(rc);
    em_array_release(rg);
    prelease(pa);
    prelease(pb);
    zd *a = gen_dd(r, t, 1, 4, 5);
    pa = mkp(t, 2, sa2, a, 0);
    pb = mkp(t, 2, sb2, NULL, 0);
    em_triangular_solve(&rc, pa.c, pb.c, true, false, EM_TRANSFORM_NONE);
    em_triangular_solve(&rg, pa.g, pb.g, true, false, EM_TRANSFORM_NONE);
    snprintf(what, sizeof what, "triangular_solve %s empty b", em_dtype_name(t));
    run2(what, &rc, &rg, 1);
    em_array_release(rc);
    em_array_release(rg);
    prelease(pa);
    prelease(pb);
    free(a);
  }
  /* a zero on the diagonal: the CPU's error */
  int64_t sa[3] = {3, 4, 4}, sb[3] = {3, 4, 2};
  zd *a = gen_dd(r, t, 3, 4, 6), *b = gen_general(r, t, 3, 4, 2);
  a[32 + 2 * 4 + 2] = 0;
  pair pa = mkp(t, 3, sa, a, 0), pb = mkp(t, 3, sb, b, 0);
  em_array *rc = NULL, *rg = NULL;
  em_triangular_solve(&rc, pa.c, pb.c, true, true, EM_TRANSFORM_NONE);
  em_triangular_solve(&rg, pa.g, pb.g, true, true, EM_TRANSFORM_NONE);
  char what[96];
  snprintf(what, sizeof what, "triangular_solve %s zero diagonal", em_dtype_name(t));
  same_error(what, rc, rg);
  em_array_release(rc);
  em_array_release(rg);
  prelease(pa);
  prelease(pb);
  free(a);
  free(b);
}

/* ---- qr ------------------------------------------------------------------------------------------ */

static void one_qr(em_dtype t, int nd, const int64_t *shape, const zd *v, bool complete,
                   int lay) {
  int64_t m = shape[nd - 2], n = shape[nd - 1], k = m < n ? m : n, batch = prod(nd - 2, shape);
  int64_t qc = complete ? m : k, rr = complete ? m : k;
  char what[160], s[64];
  em_shape_str(s, sizeof s, nd, shape);
  snprintf(what, sizeof what, "qr %s %s %s%s", em_dtype_name(t), s,
           complete ? "complete" : "reduced",
           lay ? (lay == 1 ? " (transposed)" : " (sliced)") : "");
  pair a = mkp(t, nd, shape, v, lay);
  em_array *c[2] = {NULL, NULL}, *g[2] = {NULL, NULL};
  em_qr(&c[0], &c[1], a.c, complete);
  em_qr(&g[0], &g[1], a.g, complete);
  if (run2(what, c, g, 2) && batch > 0) {
    double tol = tolf(t, m > n ? m : n);
    zd *Q = fetch(g[0]), *R = fetch(g[1]), *Rc = fetch(c[1]);
    double eo = 0, er = 0, ed = 0, mx = maxabs(v, batch * m * n), mr = maxabs(Rc, batch * rr * n);
    bool tri = true;
    for (int64_t b = 0; b < batch; b++) {
      const zd *q = Q + b * m * qc, *rg = R + b * rr * n, *rc = Rc + b * rr * n,
               *x = v + b * m * n;
      for (int64_t i = 0; i < qc; i++)
        for (int64_t j = 0; j < qc; j++) {
          zd s2 = 0;
          for (int64_t l = 0; l < m; l++) s2 += conj(q[l * qc + i]) * q[l * qc + j];
          double d = cabs(s2 - (i == j ? 1 : 0));
          if (!(d <= eo)) eo = d;
        }
      for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
          zd s2 = 0;
          for (int64_t l = 0; l < rr; l++) s2 += q[i * qc + l] * rg[l * n + j];
          double d = cabs(s2 - x[i * n + j]);
          if (!(d <= er)) er = d;
        }
      for (int64_t i = 0; i < rr; i++)
        for (int64_t j = 0; j < n && j < i; j++)
          if (rg[i * n + j] != 0) tri = false;
      for (int64_t i = 0; i < k; i++) {
        double d = fabs(cabs(rg[i * n + i]) - cabs(rc[i * n + i]));
        if (!(d <= ed)) ed = d;
      }
    }
    record(eo <= tol, "%s: |Q^H Q - I| = %.3g (tol %.3g)", what, eo, tol);
    record(er <= tol * (mx > 0 ? mx : 1), "%s: |Q R - A| = %.3g (max |A| %.3g, tol %.3g)", what,
           er, mx, tol);
    record(tri, "%s: R is not upper triangular", what);
    record(ed <= tol * (mr > 0 ? mr : 1), "%s: ||diag R| - CPU's| = %.3g (tol %.3g)", what, ed,
           tol);
    free(Q);
    free(R);
    free(Rc);
  }
  for (int i = 0; i < 2; i++) {
    em_array_release(c[i]);
    em_array_release(g[i]);
  }
  prelease(a);
}

static void t_qr(em_dtype t, rng *r) {
  static const int64_t ms[][2] = {{1, 1}, {4, 4}, {6, 3}, {3, 6}, {33, 17}, {17, 33},
                                  {128, 128}, {300, 200}, {200, 300}, {512, 512},
                                  {0, 3},   {3, 0}};
  for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
    int64_t m = ms[i][0], n = ms[i][1];
    if (quick && (m > 128 || n > 128)) continue;
    int64_t shape[2] = {m, n};
    zd *v = gen_general(r, t, 1, m, n);
    for (int complete = 0; complete < 2; complete++) one_qr(t, 2, shape, v, complete, 0);
    if (m == 6) {
      one_qr(t, 2, shape, v, false, LAY_TRANSPOSED);
      one_qr(t, 2, shape, v, true, LAY_SLICED);
    }
    free(v);
  }
  static const int64_t bs[][3] = {{5, 5, 4}, {3, 4, 7}, {2, 70, 40}, {0, 3, 3}, {2, 0, 4}};
  for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++) {
    zd *v = gen_general(r, t, bs[i][0], bs[i][1], bs[i][2]);
    for (int complete = 0; complete < 2; complete++) one_qr(t, 3, bs[i], v, complete, 0);
    free(v);
  }
}

/* ---- eigh ------------------------------------------------------------------------------------------ */

/* Checks the device's eigh of a (batch x n x n; lower triangle) against the
 * CPU's eigenvalues and by invariants; entries listed in nan_entry (-1:
 * none) must be all NaN. */
static void one_eigh(em_dtype t, int nd, const int64_t *shape, const zd *v, int lay,
                     int64_t nan_entry, const char *tag) {
  int64_t n = shape[nd - 1], batch = prod(nd - 2, shape);
  char what[160], s[64];
  em_shape_str(s, sizeof s, nd, shape);
  snprintf(what, sizeof what, "eigh %s %s%s%s", em_dtype_name(t), s,
           lay ? (lay == 1 ? " (transposed)" : " (sliced)") : "", tag);
  pair a = mkp(t, nd, shape, v, lay);
  em_array *c[2] = {NULL, NULL}, *g[2] = {NULL, NULL};
  em_eigh(&c[0], &c[1], a.c);
  em_eigh(&g[0], &g[1], a.g);
  if (run2(what, c, g, 2) && batch * n > 0) {
    double tol = tolf(t, n);
    cmp_out(what, "eigenvalues", c[0], g[0], tol);
    zd *W = fetch(g[0]), *V = fetch(g[1]);
    double er = 0, eo = 0, mh = 0;
    bool nan_ok = true;
    zd *h = malloc((size_t)(n * n) * sizeof *h);
    for (int64_t b = 0; b < batch; b++) {
      const zd *w = W + b * n, *vv = V + b * n * n, *x = v + b * n * n;
      if (b == nan_entry) {
        for (int64_t i = 0; i < n * n; i++) nan_ok = nan_ok && isnan_z(vv[i]);
        for (int64_t i = 0; i < n; i++) nan_ok = nan_ok && isnan_z(w[i]);
        continue;
      }
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
          h[i * n + j] = i > j ? x[i * n + j] : i == j ? creal(x[i * n + i]) : conj(x[j * n + i]);
      double m0 = maxabs(h, n * n);
      if (m0 > mh) mh = m0;
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
          zd s1 = 0, s2 = 0;
          for (int64_t l = 0; l < n; l++) {
            s1 += h[i * n + l] * vv[l * n + j];
            s2 += conj(vv[l * n + i]) * vv[l * n + j];
          }
          double d1 = cabs(s1 - vv[i * n + j] * w[j]), d2 = cabs(s2 - (i == j ? 1 : 0));
          if (!(d1 <= er)) er = d1;
          if (!(d2 <= eo)) eo = d2;
        }
    }
    free(h);
    record(nan_ok, "%s: non-finite input must give NaN outputs", what);
    record(er <= tol * (mh > 0 ? mh : 1), "%s: |A V - V W| = %.3g (max |A| %.3g, tol %.3g)",
           what, er, mh, tol);
    record(eo <= tol, "%s: |V^H V - I| = %.3g (tol %.3g)", what, eo, tol);
    free(W);
    free(V);
  }
  for (int i = 0; i < 2; i++) {
    em_array_release(c[i]);
    em_array_release(g[i]);
  }
  prelease(a);
}

static void t_eigh(em_dtype t, rng *r) {
  static const int64_t ns[] = {1, 2, 5, 16, 33, 64, 65, 128, 512};
  for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
    int64_t n = ns[i];
    if (quick && n > 128) continue;
    int64_t shape[2] = {n, n};
    zd *v = gen_herm(r, t, 1, n, n == 16);
    one_eigh(t, 2, shape, v, 0, -1, n == 16 ? " (junk above the diagonal)" : "");
    if (n == 5) {
      one_eigh(t, 2, shape, v, LAY_TRANSPOSED, -1, "");
      one_eigh(t, 2, shape, v, LAY_SLICED, -1, "");
    }
    free(v);
  }
  static const int64_t bs[][3] = {{4, 1, 1}, {5, 8, 8},  {3, 32, 32}, {3, 64, 64},
                                  {2, 65, 65}, {0, 4, 4}, {2, 0, 0}};
  for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++) {
    zd *v = gen_herm(r, t, bs[i][0], bs[i][1], bs[i][1] == 8);
    one_eigh(t, 3, bs[i], v, 0, -1, bs[i][1] == 8 ? " (junk above the diagonal)" : "");
    free(v);
  }
  /* NaN / inf in one matrix of a batch (small: batched path; and the
   * one-by-one path) */
  int64_t sb[3] = {3, 6, 6}, sl[3] = {2, 70, 70};
  zd *v = gen_herm(r, t, 3, 6, false);
  v[36 + 7] = NAN;
  one_eigh(t, 3, sb, v, 0, 1, " (NaN in entry 1)");
  free(v);
  v = gen_herm(r, t, 2, 70, false);
  v[70 * 70 + 5] = INFINITY;
  one_eigh(t, 3, sl, v, 0, 1, " (inf in entry 1)");
  free(v);
}

/* ---- svd --------------------------------------------------------------------------------------------- */

static void one_svd(em_dtype t, int nd, const int64_t *shape, const zd *v, bool full,
                    int lay, int64_t nan_entry, const char *tag) {
  int64_t m = shape[nd - 2], n = shape[nd - 1], k = m < n ? m : n, batch = prod(nd - 2, shape);
  int64_t uc = full ? m : k, vr = full ? n : k;
  char what[160], s[64];
  em_shape_str(s, sizeof s, nd, shape);
  snprintf(what, sizeof what, "svd %s %s %s%s%s", em_dtype_name(t), s,
           full ? "full" : "reduced", lay ? (lay == 1 ? " (transposed)" : " (sliced)") : "",
           tag);
  pair a = mkp(t, nd, shape, v, lay);
  em_array *c[3] = {NULL, NULL, NULL}, *g[3] = {NULL, NULL, NULL};
  em_svd(&c[0], &c[1], &c[2], a.c, full);
  em_svd(&g[0], &g[1], &g[2], a.g, full);
  if (run2(what, c, g, 3) && batch > 0) {
    double tol = tolf(t, m > n ? m : n);
    cmp_out(what, "s", c[1], g[1], tol);
    zd *U = fetch(g[0]), *S = fetch(g[1]), *VT = fetch(g[2]);
    double eu = 0, ev = 0, er = 0, mx = 0;
    bool nan_ok = true;
    for (int64_t b = 0; b < batch; b++) {
      const zd *u = U + b * m * uc, *sv = S + b * k, *vt = VT + b * vr * n, *x = v + b * m * n;
      if (b == nan_entry) {
        for (int64_t i = 0; i < m * uc; i++) nan_ok = nan_ok && isnan_z(u[i]);
        for (int64_t i = 0; i < k; i++) nan_ok = nan_ok && isnan_z(sv[i]);
        for (int64_t i = 0; i < vr * n; i++) nan_ok = nan_ok && isnan_z(vt[i]);
        continue;
      }
      double m0 = maxabs(x, m * n);
      if (m0 > mx) mx = m0;
      for (int64_t i = 0; i < uc; i++)
        for (int64_t j = 0; j < uc; j++) {
          zd s2 = 0;
          for (int64_t l = 0; l < m; l++) s2 += conj(u[l * uc + i]) * u[l * uc + j];
          double d = cabs(s2 - (i == j ? 1 : 0));
          if (!(d <= eu)) eu = d;
        }
      for (int64_t i = 0; i < vr; i++)
        for (int64_t j = 0; j < vr; j++) {
          zd s2 = 0;
          for (int64_t l = 0; l < n; l++) s2 += vt[i * n + l] * conj(vt[j * n + l]);
          double d = cabs(s2 - (i == j ? 1 : 0));
          if (!(d <= ev)) ev = d;
        }
      for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
          zd s2 = 0;
          for (int64_t l = 0; l < k; l++) s2 += u[i * uc + l] * creal(sv[l]) * vt[l * n + j];
          double d = cabs(s2 - x[i * n + j]);
          if (!(d <= er)) er = d;
        }
    }
    record(nan_ok, "%s: non-finite input must give NaN outputs", what);
    record(eu <= tol, "%s: |U^H U - I| = %.3g (tol %.3g)", what, eu, tol);
    record(ev <= tol, "%s: |Vt Vt^H - I| = %.3g (tol %.3g)", what, ev, tol);
    record(er <= tol * (mx > 0 ? mx : 1), "%s: |U S Vt - A| = %.3g (max |A| %.3g, tol %.3g)",
           what, er, mx, tol);
    free(U);
    free(S);
    free(VT);
  }
  for (int i = 0; i < 3; i++) {
    em_array_release(c[i]);
    em_array_release(g[i]);
  }
  prelease(a);
}

static void t_svd(em_dtype t, rng *r) {
  static const int64_t ms[][2] = {{1, 1}, {4, 4}, {6, 3}, {3, 6}, {33, 17}, {17, 33},
                                  {128, 128}, {300, 200}, {200, 300}, {512, 512},
                                  {0, 3},   {3, 0}};
  for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
    int64_t m = ms[i][0], n = ms[i][1];
    if (quick && (m > 128 || n > 128)) continue;
    int64_t shape[2] = {m, n};
    zd *v = gen_general(r, t, 1, m, n);
    for (int full = 0; full < 2; full++) {
      if (m * n > 40000 && full) continue; /* the large ones once */
      one_svd(t, 2, shape, v, full, 0, -1, "");
    }
    if (m == 6 || m == 3) {
      one_svd(t, 2, shape, v, false, LAY_TRANSPOSED, -1, "");
      one_svd(t, 2, shape, v, true, LAY_SLICED, -1, "");
    }
    free(v);
  }
  /* batches: up to 32 x 32 the batched Jacobi path, else one by one */
  static const int64_t bs[][3] = {{5, 6, 4}, {4, 3, 7},   {3, 32, 32}, {3, 1, 1},
                                  {2, 40, 33}, {2, 33, 40}, {0, 3, 3},   {2, 0, 4}};
  for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++) {
    zd *v = gen_general(r, t, bs[i][0], bs[i][1], bs[i][2]);
    for (int full = 0; full < 2; full++) one_svd(t, 3, bs[i], v, full, 0, -1, "");
    free(v);
  }
  /* NaN / inf in one matrix of a batch */
  int64_t sb[3] = {3, 5, 4}, sl[3] = {2, 50, 36}, sw[3] = {2, 20, 45};
  zd *v = gen_general(r, t, 3, 5, 4);
  v[20 + 3] = NAN;
  one_svd(t, 3, sb, v, false, 0, 1, " (NaN in entry 1)");
  free(v);
  v = gen_general(r, t, 2, 50, 36);
  v[50 * 36 + 100] = -INFINITY;
  one_svd(t, 3, sl, v, true, 0, 1, " (inf in entry 1)");
  free(v);
  v = gen_general(r, t, 2, 20, 45);
  v[20 * 45 + 3] = NAN;
  one_svd(t, 3, sw, v, false, 0, 1, " (NaN in entry 1)");
  free(v);
}

/* ---- threads ---------------------------------------------------------------------------------------- */

static void *sweep(void *arg) {
  em_dtype t = *(const em_dtype *)arg;
  em_stream *s = NULL;
  em_status st = em_stream_new(&s, G);
  record(st == EM_OK, "stream_new: %s", em_last_error());
  tl_stream = s;
  rng r = {0x9e3779b97f4a7c15ull ^ ((uint64_t)t * 0x2545f4914f6cdd1dull + 7)};
  t_cholesky(t, &r);
  t_lu(t, &r);
  t_solve(t, &r);
  t_det(t, &r);
  t_tri(t, &r);
  t_qr(t, &r);
  t_eigh(t, &r);
  t_svd(t, &r);
  printf("  dtype %s done\n", em_dtype_name(t));
  tl_stream = NULL;
  em_stream_free(s);
  return NULL;
}

int main(void) {
  bool self = getenv("EMILY_LA_SELFTEST") != NULL;
  G = self ? CPU : CU;
  if (!self && !cuda_diff_have_device("test_cuda_linalg")) return 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  quick = getenv("EMILY_TEST_QUICK") != NULL;
  if (self) printf("selftest: the CPU stands in for CUDA\n");
  pthread_t th[4];
  for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, sweep, (void *)&DTS[i]);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  /* the same ops again on the legacy default stream (no engine stream) */
  rng r = {0x243f6a8885a308d3ull};
  t_solve(EM_F64, &r);
  t_svd(EM_C64, &r);
  cuda_diff_summary();
  return TEST_SUMMARY();
}
