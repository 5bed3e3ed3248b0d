/* ops_linalg.c — graph building for the linear-algebra family:
 * triangular_solve, cholesky, qr, lu, eigh, svd, solve, determinant.
 *
 * Every op works on the last two axes and is batched over the leading ones
 * (batch shapes must match exactly: Nx broadcasts vectorized axes before
 * calling the backend). Inputs must be f32, f64, c64 or c128 (the Nx layer
 * converts integers and f16/bf16 first). Multi-output ops (qr, lu, eigh,
 * svd) record one node whose u8 output packs every result (layout:
 * em_linalg_slots below, shared with the kernels), and return em_unpack
 * views of it. Messages start with "[op]". */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "array-impl.h"

#define SHP(buf, a) em_shape_str(buf, sizeof buf, (a)->ndim, (a)->shape)

#define TRY(x)                    \
  do {                            \
    em_status st_ = (x);          \
    if (st_ != EM_OK) return st_; \
  } while (0)

/* Byte layout of the packed output of a multi-output linalg op (qr, lu,
 * eigh, svd) for `batch` matrices of m x n (square ops: m == n) of dtype t;
 * flag is qr's `complete` / svd's `full_matrices`. Fills off[] with each
 * output's byte offset (in the op's output order) and returns the total
 * byte count. Defined here, declared again in src/cpu/linalg.c: the single
 * source of truth for both sides. */
size_t em_linalg_slots(em_op op, em_dtype t, int64_t batch, int64_t m,
                       int64_t n, bool flag, size_t off[3]);

static em_dtype real_of(em_dtype t) {
  return t == EM_C64 ? EM_F32 : t == EM_C128 ? EM_F64 : t;
}

size_t em_linalg_slots(em_op op, em_dtype t, int64_t batch, int64_t m,
                       int64_t n, bool flag, size_t off[3]) {
  size_t cur = 0;
  int64_t k = m < n ? m : n;
  off[0] = off[1] = off[2] = 0;
  switch (op) {
    case EM_OP_qr: {
      int64_t qc = flag ? m : k, rr = flag ? m : k;
      off[0] = em_pack_slot(&cur, t, batch * m * qc);
      off[1] = em_pack_slot(&cur, t, batch * rr * n);
      break;
    }
    case EM_OP_lu:
      for (int i = 0; i < 3; i++) off[i] = em_pack_slot(&cur, t, batch * n * n);
      break;
    case EM_OP_eigh:
      off[0] = em_pack_slot(&cur, real_of(t), batch * n);
      off[1] = em_pack_slot(&cur, t, batch * n * n);
      break;
    case EM_OP_svd: {
      int64_t uc = flag ? m : k, vr = flag ? n : k;
      off[0] = em_pack_slot(&cur, t, batch * m * uc);
      off[1] = em_pack_slot(&cur, real_of(t), batch * k);
      off[2] = em_pack_slot(&cur, t, batch * vr * n);
      break;
    }
    default:
      break;
  }
  return cur;
}

static bool same_device(const em_array *a, const em_array *b) {
  return a->dev.type == b->dev.type && a->dev.index == b->dev.index;
}

static bool linalg_dtype(em_dtype t) {
  return t == EM_F32 || t == EM_F64 || t == EM_C64 || t == EM_C128;
}

/* Validates a matrix (batch) input: dtype, rank >= 2, square if asked, and
 * dimensions LAPACK's 32-bit integers can index. */
static em_status check_matrix(const char *op, const em_array *a,
                              bool square) {
  if (!a) return em_fail(EM_ERR_ARGUMENT, "[%s] input array is NULL", op);
  char b[256];
  if (!linalg_dtype(a->dtype))
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] needs an f32, f64, c64 or c128 array, got %s %s", op,
                   em_dtype_name(a->dtype), SHP(b, a));
  if (a->ndim < 2)
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] needs a matrix or a batch of matrices (rank >= 2), "
                   "got %s %s",
                   op, em_dtype_name(a->dtype), SHP(b, a));
  int64_t m = a->shape[a->ndim - 2], n = a->shape[a->ndim - 1];
  if (square && m != n)
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] needs a square matrix or a batch of square matrices, "
                   "got %s %s",
                   op, em_dtype_name(a->dtype), SHP(b, a));
  /* LAPACK indexes with 32-bit ints, and the kernels form m*n products. */
  if (m > INT_MAX / 2 || n > INT_MAX / 2 ||
      (m > 0 && n > INT64_MAX / 16 / m))
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] matrix dimensions of %s are too large for LAPACK", op,
                   SHP(b, a));
  return EM_OK;
}

static int64_t batch_of(const em_array *a, int nmat) {
  int64_t b = 1;
  for (int i = 0; i < a->ndim - nmat; i++) b *= a->shape[i];
  return b;
}

/* Checks a right-hand side b against a [..., n, n]: b is [..., n] (rank
 * a-1, a batch of vectors) or [..., r, c] (rank a) with r == n when
 * left_side, c == n otherwise. Batch axes must be equal. */
static em_status check_rhs(const char *op, const em_array *a,
                           const em_array *b, bool left_side) {
  if (!b) return em_fail(EM_ERR_ARGUMENT, "[%s] input array is NULL", op);
  char s1[256], s2[256];
  if (b->dtype != a->dtype)
    return em_fail(EM_ERR_ARGUMENT, "[%s] dtypes differ: a is %s %s, b is %s %s",
                   op, em_dtype_name(a->dtype), SHP(s1, a),
                   em_dtype_name(b->dtype), SHP(s2, b));
  if (!same_device(a, b))
    return em_fail(EM_ERR_ARGUMENT, "[%s] operands on different devices", op);
  int nb = a->ndim - 2;
  int64_t n = a->shape[a->ndim - 1];
  bool ok = false;
  if (b->ndim == a->ndim - 1) {
    ok = b->shape[b->ndim - 1] == n;
  } else if (b->ndim == a->ndim) {
    ok = left_side ? b->shape[b->ndim - 2] == n : b->shape[b->ndim - 1] == n;
    if (ok && (b->shape[b->ndim - 1] > INT_MAX / 2 ||
               b->shape[b->ndim - 2] > INT_MAX / 2))
      ok = false;
  }
  for (int i = 0; ok && i < nb; i++) ok = a->shape[i] == b->shape[i];
  if (!ok)
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] incompatible shapes for a and b: a is %s %s, b is %s "
                   "%s (b must be [..., %lld] or [..., %s] with a's batch axes)",
                   op, em_dtype_name(a->dtype), SHP(s1, a),
                   em_dtype_name(b->dtype), SHP(s2, b), (long long)n,
                   left_side ? "n, m" : "m, n");
  return EM_OK;
}

/* ---- single-output ops ------------------------------------------------- */

/* transform_a: NONE, TRANSPOSE or ADJOINT (conjugate transpose; the same as
 * TRANSPOSE for real dtypes). Nx's `transform_a: :conjugate` conjugates
 * WITHOUT transposing: the Nx layer gets it as em_conjugate(a) with NONE.
 * `lower` names the triangle of a as stored (the other one is ignored).
 * b is [..., n] (vectors) or a matrix batch; the result has b's shape. */
em_status em_triangular_solve(em_array **out, em_array *a, em_array *b,
                              bool left_side, bool lower,
                              em_transform transform_a) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[triangular_solve] out is NULL");
  *out = NULL;
  TRY(check_matrix("triangular_solve", a, true));
  TRY(check_rhs("triangular_solve", a, b, left_side));
  if ((unsigned)transform_a > (unsigned)EM_TRANSFORM_ADJOINT)
    return em_fail(EM_ERR_ARGUMENT,
                   "[triangular_solve] unknown transform_a %d (expected none, "
                   "transpose or adjoint)",
                   (int)transform_a);
  em_params p;
  memset(&p, 0, sizeof p);
  p.linalg.left_side = left_side;
  p.linalg.lower = lower;
  p.linalg.transform = (int)transform_a;
  em_array *in[2] = {a, b};
  return em_make_node(out, EM_OP_triangular_solve, b->dtype, b->ndim, b->shape,
                      a->dev, 2, in, &p);
}

em_status em_cholesky(em_array **out, em_array *a) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[cholesky] out is NULL");
  *out = NULL;
  TRY(check_matrix("cholesky", a, true));
  return em_make_node(out, EM_OP_cholesky, a->dtype, a->ndim, a->shape, a->dev,
                      1, &a, NULL);
}

em_status em_solve(em_array **out, em_array *a, em_array *b) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[solve] out is NULL");
  *out = NULL;
  TRY(check_matrix("solve", a, true));
  TRY(check_rhs("solve", a, b, true));
  em_array *in[2] = {a, b};
  return em_make_node(out, EM_OP_solve, b->dtype, b->ndim, b->shape, a->dev, 2,
                      in, NULL);
}

em_status em_determinant(em_array **out, em_array *a) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[determinant] out is NULL");
  *out = NULL;
  TRY(check_matrix("determinant", a, true));
  return em_make_node(out, EM_OP_determinant, a->dtype, a->ndim - 2, a->shape,
                      a->dev, 1, &a, NULL);
}

/* ---- multi-output ops -------------------------------------------------- */

/* Records the packed node and unpacks its n outputs into outs[i] (dtype
 * ts[i], rank nds[i], shape shapes[i]). On failure every outs[i] is NULL. */
static em_status make_packed(const char *name, em_op op, em_array *a,
                             const em_params *p, bool flag, int nout,
                             em_array **outs[], const em_dtype ts[],
                             const int nds[], int64_t shapes[][EM_MAX_NDIM]) {
  for (int i = 0; i < nout; i++)
    TRY(em_check_shape(name, nds[i], shapes[i], ts[i]));
  int64_t m = a->shape[a->ndim - 2], n = a->shape[a->ndim - 1];
  size_t off[3];
  size_t total = em_linalg_slots(op, a->dtype, batch_of(a, 2), m, n, flag, off);
  if (total > (size_t)INT64_MAX / 2)
    return em_fail(EM_ERR_ARGUMENT, "[%s] outputs are too large", name);
  int64_t tshape[1] = {(int64_t)total};
  em_array *packed = NULL;
  TRY(em_make_node(&packed, op, EM_U8, 1, tshape, a->dev, 1, &a, p));
  em_status st = EM_OK;
  for (int i = 0; i < nout && st == EM_OK; i++)
    st = em_unpack(outs[i], packed, off[i], ts[i], nds[i], shapes[i]);
  em_array_release(packed);
  if (st != EM_OK)
    for (int i = 0; i < nout; i++) {
      em_array_release(*outs[i]);
      *outs[i] = NULL;
    }
  return st;
}

/* Copies a's batch axes into s and appends d0 (and d1 when d1 >= 0). */
static int batch_shape(const em_array *a, int64_t *s, int64_t d0, int64_t d1) {
  int nd = a->ndim - 2;
  for (int i = 0; i < nd; i++) s[i] = a->shape[i];
  s[nd++] = d0;
  if (d1 >= 0) s[nd++] = d1;
  return nd;
}

em_status em_qr(em_array **q, em_array **r, em_array *a, bool complete) {
  if (!q || !r) return em_fail(EM_ERR_ARGUMENT, "[qr] out is NULL");
  *q = *r = NULL;
  TRY(check_matrix("qr", a, false));
  int64_t m = a->shape[a->ndim - 2], n = a->shape[a->ndim - 1];
  int64_t k = m < n ? m : n;
  int64_t shapes[2][EM_MAX_NDIM];
  int nds[2];
  nds[0] = batch_shape(a, shapes[0], m, complete ? m : k);
  nds[1] = batch_shape(a, shapes[1], complete ? m : k, n);
  em_dtype ts[2] = {a->dtype, a->dtype};
  em_array **outs[2] = {q, r};
  em_params p;
  memset(&p, 0, sizeof p);
  p.linalg.complete = complete;
  return make_packed("qr", EM_OP_qr, a, &p, complete, 2, outs, ts, nds,
                     shapes);
}

em_status em_lu(em_array **p_out, em_array **l, em_array **u, em_array *a) {
  if (!p_out || !l || !u) return em_fail(EM_ERR_ARGUMENT, "[lu] out is NULL");
  *p_out = *l = *u = NULL;
  TRY(check_matrix("lu", a, true));
  int64_t n = a->shape[a->ndim - 1];
  int64_t shapes[3][EM_MAX_NDIM];
  int nds[3];
  for (int i = 0; i < 3; i++) nds[i] = batch_shape(a, shapes[i], n, n);
  em_dtype ts[3] = {a->dtype, a->dtype, a->dtype};
  em_array **outs[3] = {p_out, l, u};
  return make_packed("lu", EM_OP_lu, a, NULL, false, 3, outs, ts, nds, shapes);
}

em_status em_eigh(em_array **values, em_array **vectors, em_array *a) {
  if (!values || !vectors)
    return em_fail(EM_ERR_ARGUMENT, "[eigh] out is NULL");
  *values = *vectors = NULL;
  TRY(check_matrix("eigh", a, true));
  int64_t n = a->shape[a->ndim - 1];
  int64_t shapes[2][EM_MAX_NDIM];
  int nds[2];
  nds[0] = batch_shape(a, shapes[0], n, -1);
  nds[1] = batch_shape(a, shapes[1], n, n);
  em_dtype ts[2] = {real_of(a->dtype), a->dtype};
  em_array **outs[2] = {values, vectors};
  return make_packed("eigh", EM_OP_eigh, a, NULL, false, 2, outs, ts, nds,
                     shapes);
}

em_status em_svd(em_array **u, em_array **s, em_array **vt, em_array *a,
                 bool full_matrices) {
  if (!u || !s || !vt) return em_fail(EM_ERR_ARGUMENT, "[svd] out is NULL");
  *u = *s = *vt = NULL;
  TRY(check_matrix("svd", a, false));
  int64_t m = a->shape[a->ndim - 2], n = a->shape[a->ndim - 1];
  int64_t k = m < n ? m : n;
  int64_t shapes[3][EM_MAX_NDIM];
  int nds[3];
  nds[0] = batch_shape(a, shapes[0], m, full_matrices ? m : k);
  nds[1] = batch_shape(a, shapes[1], k, -1);
  nds[2] = batch_shape(a, shapes[2], full_matrices ? n : k, n);
  em_dtype ts[3] = {a->dtype, real_of(a->dtype), a->dtype};
  em_array **outs[3] = {u, s, vt};
  em_params p;
  memset(&p, 0, sizeof p);
  p.linalg.full_matrices = full_matrices;
  return make_packed("svd", EM_OP_svd, a, &p, full_matrices, 3, outs, ts, nds,
                     shapes);
}
