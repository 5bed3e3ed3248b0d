/* backend.c — the CPU backend: its kernel table and the whole-array
 * kernels (creation, data movement, reductions, dot, fused row ops).
 * Inputs arrive DONE with any strides; kernels that need row-major data
 * ask em_contiguous for it. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/backend-impl.h"
#include "../core/half.h"
#include "../core/parallel.h"
#include "cpu-kernels.h"
#include "simd.h"
#include "subbyte.h"
#include "vmath.h"

em_status em_cpu_run_fused(em_array *root);
void em_cpu_copy_strided(const em_array *src, void *dst);

#define TRY(x)                    \
  do {                            \
    em_status st_ = (x);          \
    if (st_ != EM_OK) return st_; \
  } while (0)

/* Reads a 0-d integer array as int64 (u64 values past INT64_MAX clamp). */
static int64_t read_index(const em_array *a) {
  const char *p = em_array_ptr(a);
  switch (a->dtype) {
    case EM_U8: return *(const uint8_t *)p;
    case EM_U16: return *(const uint16_t *)p;
    case EM_U32: return *(const uint32_t *)p;
    case EM_U64: {
      uint64_t v = *(const uint64_t *)p;
      return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
    }
    case EM_S8: return *(const int8_t *)p;
    case EM_S16: return *(const int16_t *)p;
    case EM_S32: return *(const int32_t *)p;
    case EM_S64: return *(const int64_t *)p;
    default: return 0;
  }
}

/* ---- creation ----------------------------------------------------------- */

typedef struct {
  char *out;
  const unsigned char *value;
  size_t es;
} fill_ctx;

static void fill_range(void *c_, int64_t b, int64_t e, int tid) {
  (void)tid;
  fill_ctx *c = c_;
  size_t es = c->es;
  switch (es) {
#define F(T)                                          \
  {                                                   \
    T v;                                              \
    memcpy(&v, c->value, sizeof v);                   \
    T *o = (T *)c->out;                               \
    for (int64_t i = b; i < e; i++) o[i] = v;         \
  }                                                   \
  break;
    case 1: F(uint8_t)
    case 2: F(uint16_t)
    case 4: F(uint32_t)
    case 8: F(uint64_t)
#undef F
    default:
      for (int64_t i = b; i < e; i++) memcpy(c->out + i * (int64_t)es, c->value, es);
  }
}

static void fill(char *out, const void *value, size_t es, int64_t n) {
  fill_ctx c = {out, value, es};
  em_parallel_for(n, 1 << 16, fill_range, &c);
}

static em_status k_full(em_array *out, const em_node *n) {
  TRY(em_alloc_output(out));
  fill(em_array_ptr(out), n->p.full.value, em_dtype_size(out->dtype), out->size);
  return EM_OK;
}

typedef struct {
  char *out;
  em_dtype t;
  int64_t len, inner;
} iota_ctx;

static void iota_range(void *c_, int64_t b, int64_t e, int tid) {
  (void)tid;
  iota_ctx *c = c_;
  size_t es = em_dtype_size(c->t);
  em_unary_kernel cast = em_cpu_cast_kernel(EM_S64, c->t);
  int64_t buf[512];
  for (int64_t s = b; s < e; s += 512) {
    int64_t m = e - s < 512 ? e - s : 512;
    for (int64_t k = 0; k < m; k++) buf[k] = ((s + k) / c->inner) % c->len;
    cast(buf, c->out + s * (int64_t)es, m);
  }
}

static em_status k_iota(em_array *out, const em_node *n) {
  TRY(em_alloc_output(out));
  if (out->size == 0) return EM_OK;
  iota_ctx c = {em_array_ptr(out), out->dtype, 1, 1};
  if (out->ndim == 0) {
    c.len = 1;
  } else {
    int ax = n->p.iota.axis;
    c.len = out->shape[ax];
    for (int i = ax + 1; i < out->ndim; i++) c.inner *= out->shape[i];
  }
  em_parallel_for(out->size, 1 << 15, iota_range, &c);
  return EM_OK;
}

static em_status k_eye(em_array *out, const em_node *n) {
  (void)n;
  TRY(em_alloc_output(out));
  size_t es = em_dtype_size(out->dtype);
  char *o = em_array_ptr(out);
  memset(o, 0, (size_t)out->size * es);
  unsigned char one[16] = {0};
  int64_t one64 = 1;
  em_cpu_cast_kernel(EM_S64, out->dtype)(&one64, one, 1);
  int64_t r = out->shape[out->ndim - 2], c = out->shape[out->ndim - 1];
  int64_t mats = (r > 0 && c > 0) ? out->size / (r * c) : 0;
  for (int64_t m = 0; m < mats; m++)
    for (int64_t i = 0; i < r && i < c; i++)
      memcpy(o + ((m * r + i) * c + i) * (int64_t)es, one, es);
  return EM_OK;
}

/* copy and bitcast: a contiguous copy of the bytes. */
static em_status k_copy(em_array *out, const em_node *n) {
  TRY(em_alloc_output(out));
  em_cpu_copy_strided(n->in[0], em_array_ptr(out));
  return EM_OK;
}

/* ---- data movement ------------------------------------------------------ */

/* Writes contiguous src (shape of dst view) into a strided view dst. */
static void scatter_into(const em_array *dst, const char *src) {
  size_t es = em_dtype_size(dst->dtype);
  int nd = dst->ndim;
  if (dst->size == 0) return;
  if (nd == 0) {
    memcpy(em_array_ptr(dst), src, es);
    return;
  }
  int64_t idx[EM_MAX_NDIM] = {0};
  int64_t inner = dst->shape[nd - 1], is = dst->strides[nd - 1];
  char *base = em_array_ptr(dst);
  for (int64_t done = 0; done < dst->size; done += inner) {
    int64_t off = 0;
    for (int i = 0; i < nd - 1; i++) off += idx[i] * dst->strides[i];
    char *d = base + off * (int64_t)es;
    if (is == 1) {
      memcpy(d, src + done * (int64_t)es, (size_t)inner * es);
    } else {
      for (int64_t k = 0; k < inner; k++)
        memcpy(d + k * is * (int64_t)es, src + (done + k) * (int64_t)es, es);
    }
    for (int i = nd - 2; i >= 0; i--) {
      if (++idx[i] < dst->shape[i]) break;
      idx[i] = 0;
    }
  }
}

static em_status k_slice_dynamic(em_array *out, const em_node *n) {
  const em_array *a = n->in[0];
  em_array v;
  memset(&v, 0, sizeof v);
  v.dtype = a->dtype;
  v.ndim = a->ndim;
  v.size = out->size;
  v.buf = a->buf;
  v.offset = a->offset;
  for (int i = 0; i < a->ndim; i++) {
    int64_t len = n->p.dslice.lengths[i];
    int64_t s = read_index(n->in[1 + i]);
    if (s < 0) s = 0;
    if (s > a->shape[i] - len) s = a->shape[i] - len;
    v.offset += s * a->strides[i];
    v.shape[i] = out->shape[i];
    v.strides[i] = a->strides[i] * n->p.dslice.step[i];
  }
  TRY(em_alloc_output(out));
  em_cpu_copy_strided(&v, em_array_ptr(out));
  return EM_OK;
}

static em_status k_put_slice(em_array *out, const em_node *n) {
  const em_array *a = n->in[0];
  em_array *u = NULL;
  TRY(em_contiguous(n->in[1], &u));
  em_status st = em_alloc_output(out);
  if (st != EM_OK) {
    em_array_release(u);
    return st;
  }
  em_cpu_copy_strided(a, em_array_ptr(out));
  em_array v;
  memset(&v, 0, sizeof v);
  v.dtype = out->dtype;
  v.ndim = out->ndim;
  v.size = u->size;
  v.buf = out->buf;
  bool dynamic = n->nin > 2;
  for (int i = 0; i < out->ndim; i++) {
    int64_t s = dynamic ? read_index(n->in[2 + i]) : n->p.pad.lo[i];
    int64_t len = u->shape[i];
    if (s < 0) s = 0;
    if (s > out->shape[i] - len) s = out->shape[i] - len;
    v.offset += s * out->strides[i];
    v.shape[i] = len;
    v.strides[i] = out->strides[i];
  }
  scatter_into(&v, em_array_ptr(u));
  em_array_release(u);
  return EM_OK;
}

static em_status k_pad(em_array *out, const em_node *n) {
  em_array *a = NULL;
  TRY(em_contiguous(n->in[0], &a));
  em_status st = em_alloc_output(out);
  if (st != EM_OK) {
    em_array_release(a);
    return st;
  }
  size_t es = em_dtype_size(out->dtype);
  fill(em_array_ptr(out), em_array_ptr(n->in[1]), es, out->size);
  /* Each input row along the last axis lands at a computable place; rows
   * or elements that negative padding cuts away are skipped. */
  int nd = a->ndim;
  const int64_t *lo = n->p.pad.lo, *in_ = n->p.pad.interior;
  char *o = em_array_ptr(out);
  const char *src = em_array_ptr(a);
  if (a->size > 0 && nd > 0) {
    int64_t idx[EM_MAX_NDIM] = {0};
    int64_t inner = a->shape[nd - 1];
    for (int64_t done = 0; done < a->size; done += inner) {
      int64_t off = 0;
      bool inside = true;
      for (int i = 0; i < nd - 1; i++) {
        int64_t p = lo[i] + idx[i] * (in_[i] + 1);
        if (p < 0 || p >= out->shape[i]) {
          inside = false;
          break;
        }
        off += p * out->strides[i];
      }
      if (inside) {
        int64_t step = in_[nd - 1] + 1, L = out->shape[nd - 1];
        for (int64_t k = 0; k < inner; k++) {
          int64_t p = lo[nd - 1] + k * step;
          if (p < 0 || p >= L) continue;
          memcpy(o + (off + p) * (int64_t)es, src + (done + k) * (int64_t)es, es);
        }
      }
      for (int i = nd - 2; i >= 0; i--) {
        if (++idx[i] < a->shape[i]) break;
        idx[i] = 0;
      }
    }
  } else if (a->size > 0) {
    memcpy(o, src, es); /* rank 0: nothing to pad */
  }
  em_array_release(a);
  return EM_OK;
}

static em_status k_concatenate(em_array *out, const em_node *n) {
  TRY(em_alloc_output(out));
  int axis = n->p.concat.axis;
  size_t es = em_dtype_size(out->dtype);
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; i++) outer *= out->shape[i];
  for (int i = axis + 1; i < out->ndim; i++) inner *= out->shape[i];
  int64_t row = out->shape[axis] * inner, pos = 0;
  char *o = em_array_ptr(out);
  for (int k = 0; k < n->nin; k++) {
    em_array *c = NULL;
    TRY(em_contiguous(n->in[k], &c));
    int64_t chunk = c->shape[axis] * inner;
    const char *s = em_array_ptr(c);
    if (chunk > 0)
      for (int64_t r = 0; r < outer; r++)
        memcpy(o + (r * row + pos) * (int64_t)es, s + r * chunk * (int64_t)es,
               (size_t)chunk * es);
    pos += chunk;
    em_array_release(c);
  }
  return EM_OK;
}

/* ---- reductions --------------------------------------------------------- */

/* Brings `in` into contiguous [outer, r, inner] form for the reduced axes
 * in mask, copying (with a transpose) only when they are not one block. */
static em_status reduce_layout(const em_array *in, uint32_t mask,
                               em_array **c, int64_t *outer, int64_t *r,
                               int64_t *inner) {
  /* Ignore size-1 axes; the rest must be contiguous and the reduced ones
   * consecutive. */
  int first = -1, last = -1;
  bool block = true;
  for (int i = 0; i < in->ndim; i++) {
    if (in->shape[i] == 1 || !(mask >> i & 1u)) continue;
    if (first < 0) first = i;
    else if (last != i - 1) {
      /* a gap is fine only if the axes between are size 1 */
      for (int j = last + 1; j < i; j++)
        if (in->shape[j] != 1) block = false;
    }
    last = i;
  }
  if (block && em_array_is_contiguous(in)) {
    em_array_retain((em_array *)in);
    *c = (em_array *)in;
    *outer = 1;
    *r = 1;
    *inner = 1;
    for (int i = 0; i < in->ndim; i++) {
      if (first >= 0 && i >= first && i <= last) *r *= in->shape[i];
      else if (first < 0 || i < first) *outer *= in->shape[i];
      else *inner *= in->shape[i];
    }
    if (first < 0) { /* nothing of size > 1 reduced */
      *outer = in->size;
      *r = 1;
      *inner = 1;
    }
    return EM_OK;
  }
  /* Kept axes first, reduced axes last, then copy. */
  int perm[EM_MAX_NDIM], k = 0;
  *outer = 1;
  *r = 1;
  for (int i = 0; i < in->ndim; i++)
    if (!(mask >> i & 1u)) {
      perm[k++] = i;
      *outer *= in->shape[i];
    }
  for (int i = 0; i < in->ndim; i++)
    if (mask >> i & 1u) {
      perm[k++] = i;
      *r *= in->shape[i];
    }
  *inner = 1;
  em_array v;
  em_array_permuted_view(in, perm, &v);
  em_array *t = em_array_alloc(in->dtype, in->ndim, v.shape, in->dev);
  if (!t) return em_fail(EM_ERR_OOM, "[reduce] out of host memory");
  em_status st = em_alloc_output(t);
  if (st != EM_OK) {
    free(t);
    return st;
  }
  em_cpu_copy_strided(&v, t->buf->data);
  t->state = EM_STATE_DONE;
  *c = t;
  return EM_OK;
}

static em_status k_reduce(em_array *out, const em_node *n) {
  em_array *c = NULL;
  int64_t outer, r, inner;
  TRY(reduce_layout(n->in[0], n->p.reduce.mask, &c, &outer, &r, &inner));
  em_status st = em_alloc_output(out);
  if (st == EM_OK)
    em_cpu_reduce(n->op, c->dtype, em_array_ptr(c), em_array_ptr(out), outer,
                  r, inner);
  em_array_release(c);
  return st;
}

static em_status k_arg_reduce(em_array *out, const em_node *n) {
  em_array *c = NULL;
  int64_t outer, r, inner;
  TRY(reduce_layout(n->in[0], n->in[0]->ndim ? 1u << n->p.arg.axis : 0, &c,
                    &outer, &r, &inner));
  em_status st = em_alloc_output(out);
  if (st == EM_OK)
    em_cpu_arg_reduce(n->op, c->dtype, n->p.arg.tie_high, em_array_ptr(c),
                      (int64_t *)em_array_ptr(out), outer, r, inner);
  em_array_release(c);
  return st;
}

/* ---- dot ---------------------------------------------------------------- */

/* Integer GEMM with wrap-around: C[M,N] = A[M,K] B[K,N], unsigned math. */
#define INT_GEMM(NAME, T, U)                                                 \
  static void NAME(const T *A, const T *B, T *C, int64_t M, int64_t N,       \
                   int64_t K, bool ta, bool tb) {                            \
    for (int64_t i = 0; i < M; i++) {                                        \
      U *c = (U *)(C + i * N);                                               \
      for (int64_t j = 0; j < N; j++) c[j] = 0;                              \
      for (int64_t k = 0; k < K; k++) {                                      \
        U a = (U)(ta ? A[k * M + i] : A[i * K + k]);                         \
        if (!tb) {                                                           \
          const T *b = B + k * N;                                            \
          for (int64_t j = 0; j < N; j++) c[j] += a * (U)b[j];               \
        } else {                                                             \
          for (int64_t j = 0; j < N; j++) c[j] += a * (U)B[j * K + k];       \
        }                                                                    \
      }                                                                      \
    }                                                                        \
  }
INT_GEMM(gemm_u32, uint32_t, uint32_t)
INT_GEMM(gemm_u64, uint64_t, uint64_t)
#undef INT_GEMM

/* For 8/16-bit types the product is accumulated in 32 bits and then
 * truncated, which equals wrap-around in the narrow type. Unsigned
 * variants serve signed types too: two's complement wraps the same. */
static void int_gemm_store(em_dtype t, const void *A, const void *B, void *C,
                           int64_t M, int64_t N, int64_t K, bool ta, bool tb) {
  size_t es = em_dtype_size(t);
  if (es == 4) gemm_u32(A, B, C, M, N, K, ta, tb);
  else if (es == 8) gemm_u64(A, B, C, M, N, K, ta, tb);
  else {
    uint32_t *acc = malloc((size_t)(M * N > 0 ? M * N : 1) * sizeof *acc);
    if (!acc) return;
    /* widen into u32 operands to reuse the 32-bit loop */
    uint32_t *a32 = malloc((size_t)(M * K > 0 ? M * K : 1) * 4);
    uint32_t *b32 = malloc((size_t)(K * N > 0 ? K * N : 1) * 4);
    if (a32 && b32) {
      for (int64_t i = 0; i < M * K; i++)
        a32[i] = es == 1 ? (uint32_t)((const uint8_t *)A)[i]
                         : (uint32_t)((const uint16_t *)A)[i];
      for (int64_t i = 0; i < K * N; i++)
        b32[i] = es == 1 ? (uint32_t)((const uint8_t *)B)[i]
                         : (uint32_t)((const uint16_t *)B)[i];
      gemm_u32(a32, b32, acc, M, N, K, ta, tb);
      for (int64_t i = 0; i < M * N; i++) {
        if (es == 1) ((uint8_t *)C)[i] = (uint8_t)acc[i];
        else ((uint16_t *)C)[i] = (uint16_t)acc[i];
      }
    }
    free(a32);
    free(b32);
    free(acc);
  }
}

static em_status k_dot(em_array *out, const em_node *n) {
  const em_array *a = n->in[0], *b = n->in[1];
  const int nca = n->p.dot.nca, nba = n->p.dot.nba;
  em_dot_dims dd;
  em_dot_dims_of(n, &dd);
  const int64_t B = dd.B, M = dd.M, N = dd.N, K = dd.K;

  TRY(em_alloc_output(out));
  size_t es = em_dtype_size(out->dtype);
  char *C = em_array_ptr(out);
  if (out->size == 0) return EM_OK;
  if (K == 0) {
    memset(C, 0, (size_t)out->size * es);
    return EM_OK;
  }
  em_array *ca = NULL, *cb = NULL;
  bool ta, tb;
  /* A as [B, M, K] (or [B, K, M] transposed), B as [B, K, N] (or [B, N, K]) */
  TRY(em_dot_operand(a, n->p.dot.ba, nba, dd.fa, dd.nfa, n->p.dot.ca, nca, &ca, &ta));
  em_status st = em_dot_operand(b, n->p.dot.bb, nba, n->p.dot.cb, nca, dd.fb,
                                dd.nfb, &cb, &tb);
  if (st != EM_OK) {
    em_array_release(ca);
    return st;
  }
  const char *A = em_array_ptr(ca), *Bp = em_array_ptr(cb);
  em_dtype t = out->dtype;
  float *fa32 = NULL, *fb32 = NULL, *fc32 = NULL;
  if (t == EM_F16 || t == EM_BF16 || em_dtype_is_f8(t)) {
    fa32 = malloc((size_t)(B * M * K) * sizeof(float));
    fb32 = malloc((size_t)(B * K * N) * sizeof(float));
    fc32 = malloc((size_t)(B * M * N) * sizeof(float));
    if (!fa32 || !fb32 || !fc32) {
      st = em_fail(EM_ERR_OOM, "[dot] out of host memory for f32 staging");
      goto done;
    }
    em_cpu_cast_kernel(t, EM_F32)(A, fa32, B * M * K);
    em_cpu_cast_kernel(t, EM_F32)(Bp, fb32, B * K * N);
  }
  for (int64_t bi = 0; bi < B; bi++) {
    const char *Ab = A + bi * M * K * (int64_t)es, *Bb = Bp + bi * K * N * (int64_t)es;
    char *Cb = C + bi * M * N * (int64_t)es;
    CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans,
                    TB = tb ? CblasTrans : CblasNoTrans;
    blasint lda = (blasint)(ta ? M : K), ldb = (blasint)(tb ? K : N);
    switch (t) {
      case EM_F32:
        cblas_sgemm(CblasRowMajor, TA, TB, (blasint)M, (blasint)N, (blasint)K,
                    1.0f, (const float *)Ab, lda, (const float *)Bb, ldb, 0.0f,
                    (float *)Cb, (blasint)N);
        break;
      case EM_F64:
        cblas_dgemm(CblasRowMajor, TA, TB, (blasint)M, (blasint)N, (blasint)K,
                    1.0, (const double *)Ab, lda, (const double *)Bb, ldb, 0.0,
                    (double *)Cb, (blasint)N);
        break;
      case EM_C64: {
        const float one[2] = {1, 0}, zero[2] = {0, 0};
        cblas_cgemm(CblasRowMajor, TA, TB, (blasint)M, (blasint)N, (blasint)K,
                    one, Ab, lda, Bb, ldb, zero, Cb, (blasint)N);
        break;
      }
      case EM_C128: {
        const double one[2] = {1, 0}, zero[2] = {0, 0};
        cblas_zgemm(CblasRowMajor, TA, TB, (blasint)M, (blasint)N, (blasint)K,
                    one, Ab, lda, Bb, ldb, zero, Cb, (blasint)N);
        break;
      }
      case EM_F16:
      case EM_BF16:
      case EM_F8:
      case EM_F8_E4M3FN:
        cblas_sgemm(CblasRowMajor, TA, TB, (blasint)M, (blasint)N, (blasint)K,
                    1.0f, fa32 + bi * M * K, lda, fb32 + bi * K * N, ldb, 0.0f,
                    fc32 + bi * M * N, (blasint)N);
        break;
      default:
        int_gemm_store(t, Ab, Bb, Cb, M, N, K, ta, tb);
        break;
    }
  }
  if (fc32) em_cpu_cast_kernel(EM_F32, t)(fc32, C, B * M * N);
  em_subbyte_wrap(t, C, B * M * N); /* s2..u4 wrap; else no-op */
done:
  free(fa32);
  free(fb32);
  free(fc32);
  em_array_release(ca);
  em_array_release(cb);
  return st;
}

/* ---- fused row ops ------------------------------------------------------ */

typedef struct {
  em_op op;
  em_dtype t;
  const char *x;
  char *y;
  const char *w, *b;
  int64_t d;
  double eps;
  bool failed;
} row_ctx;

/* One row in f32 or f64; f16/bf16 rows are staged through f32. Float
 * reductions keep 16 independent lanes (acc[j]) so the compiler can
 * vectorise them without reassociating a single sum (no -ffast-math). */
#define LANES 16
#define ROW_KERNEL(NAME, T, EXP, LOG, SQRT)                                   \
  static inline T NAME##_max(const T *x, int64_t d) {                         \
    T acc[LANES];                                                             \
    for (int j = 0; j < LANES; j++) acc[j] = -INFINITY;                       \
    int64_t i = 0;                                                            \
    for (; i + LANES <= d; i += LANES)                                        \
      for (int j = 0; j < LANES; j++)                                         \
        acc[j] = x[i + j] > acc[j] ? x[i + j] : acc[j];                       \
    T m = -INFINITY;                                                          \
    for (; i < d; i++) m = x[i] > m ? x[i] : m;                               \
    for (int j = 0; j < LANES; j++) m = acc[j] > m ? acc[j] : m;              \
    return m;                                                                 \
  }                                                                           \
  static inline T NAME##_sum(const T *x, int64_t d) {                         \
    T acc[LANES] = {0};                                                       \
    int64_t i = 0;                                                            \
    for (; i + LANES <= d; i += LANES)                                        \
      for (int j = 0; j < LANES; j++) acc[j] += x[i + j];                     \
    T s = 0;                                                                  \
    for (; i < d; i++) s += x[i];                                             \
    for (int j = 0; j < LANES; j++) s += acc[j];                              \
    return s;                                                                 \
  }                                                                           \
  static inline T NAME##_sumsq(const T *x, T c, int64_t d) {                  \
    T acc[LANES] = {0};                                                       \
    int64_t i = 0;                                                            \
    for (; i + LANES <= d; i += LANES)                                        \
      for (int j = 0; j < LANES; j++) {                                       \
        T v = x[i + j] - c;                                                   \
        acc[j] += v * v;                                                      \
      }                                                                       \
    T s = 0;                                                                  \
    for (; i < d; i++) s += (x[i] - c) * (x[i] - c);                          \
    for (int j = 0; j < LANES; j++) s += acc[j];                              \
    return s;                                                                 \
  }                                                                           \
  /* NaN never wins a `>` comparison, so the max ignores NaN; a NaN input    \
   * still turns its row into NaN through the sum, as the plain formula      \
   * exp(x - max) / sum would. */                                            \
  EM_CLONES static void NAME(em_op op, const T *restrict x, T *restrict y,    \
                             const T *w, const T *b, int64_t d, double eps) { \
    if (op == EM_OP_softmax || op == EM_OP_logsumexp) {                       \
      T m = NAME##_max(x, d);                                                 \
      T mm = isinf(m) ? 0 : m;                                                \
      if (op == EM_OP_softmax) {                                              \
        for (int64_t i = 0; i < d; i++) y[i] = EXP(x[i] - mm);                \
        T inv = (T)1 / NAME##_sum(y, d);                                      \
        for (int64_t i = 0; i < d; i++) y[i] *= inv;                          \
      } else {                                                                \
        if (d == 0 || (isinf(m) && m < 0)) {                                  \
          y[0] = -INFINITY;                                                   \
          return;                                                             \
        }                                                                     \
        T s = 0;                                                              \
        for (int64_t i = 0; i < d; i++) s += EXP(x[i] - mm);                  \
        y[0] = mm + LOG(s);                                                   \
      }                                                                       \
      return;                                                                 \
    }                                                                         \
    T mean = op == EM_OP_layer_norm ? NAME##_sum(x, d) / (T)d : 0;            \
    T var = NAME##_sumsq(x, mean, d) / (T)d;                                  \
    T rstd = (T)1 / SQRT(var + (T)eps);                                       \
    if (w && b)                                                               \
      for (int64_t i = 0; i < d; i++) y[i] = (x[i] - mean) * rstd * w[i] + b[i]; \
    else if (w)                                                               \
      for (int64_t i = 0; i < d; i++) y[i] = (x[i] - mean) * rstd * w[i];     \
    else if (b)                                                               \
      for (int64_t i = 0; i < d; i++) y[i] = (x[i] - mean) * rstd + b[i];     \
    else                                                                      \
      for (int64_t i = 0; i < d; i++) y[i] = (x[i] - mean) * rstd;            \
  }
ROW_KERNEL(row_f32, float, em_vm_expf, em_vm_logf, sqrtf)
ROW_KERNEL(row_f64, double, exp, log, sqrt)
#undef ROW_KERNEL

static void rows_range(void *c_, int64_t r0, int64_t r1, int tid) {
  (void)tid;
  row_ctx *c = c_;
  int64_t d = c->d, yd = c->op == EM_OP_logsumexp ? 1 : d;
  size_t es = em_dtype_size(c->t);
  if (c->t == EM_F32 || c->t == EM_F64) {
    for (int64_t r = r0; r < r1; r++) {
      const char *x = c->x + r * d * (int64_t)es;
      char *y = c->y + r * yd * (int64_t)es;
      if (c->t == EM_F32)
        row_f32(c->op, (const float *)x, (float *)y, (const float *)c->w,
                (const float *)c->b, d, c->eps);
      else
        row_f64(c->op, (const double *)x, (double *)y, (const double *)c->w,
                (const double *)c->b, d, c->eps);
    }
    return;
  }
  /* f16/bf16: stage rows (and weights) through f32. */
  float *buf = malloc((size_t)(4 * d + 1) * sizeof(float));
  if (!buf) {
    c->failed = true;
    return;
  }
  float *xs = buf, *ys = buf + d, *ws = buf + 2 * d, *bs = buf + 3 * d;
  em_unary_kernel to32 = em_cpu_cast_kernel(c->t, EM_F32),
                  from32 = em_cpu_cast_kernel(EM_F32, c->t);
  if (c->w) to32(c->w, ws, d);
  if (c->b) to32(c->b, bs, d);
  for (int64_t r = r0; r < r1; r++) {
    to32(c->x + r * d * (int64_t)es, xs, d);
    row_f32(c->op, xs, ys, c->w ? ws : NULL, c->b ? bs : NULL, d, c->eps);
    from32(ys, c->y + r * yd * (int64_t)es, yd);
  }
  free(buf);
}

static em_status k_rows(em_array *out, const em_node *n) {
  em_array *c = NULL, *w = NULL, *b = NULL;
  TRY(em_contiguous(n->in[0], &c));
  em_status st = EM_OK;
  int k = 1;
  bool is_norm = n->op == EM_OP_layer_norm || n->op == EM_OP_rms_norm;
  if (is_norm && n->p.norm.has_weight) st = em_contiguous(n->in[k++], &w);
  if (st == EM_OK && is_norm && n->p.norm.has_bias)
    st = em_contiguous(n->in[k++], &b);
  if (st == EM_OK) st = em_alloc_output(out);
  if (st == EM_OK) {
    int64_t d = c->ndim ? c->shape[c->ndim - 1] : 1;
    int64_t rows = d ? c->size / d : (n->op == EM_OP_logsumexp ? out->size : 0);
    row_ctx ctx = {n->op, c->dtype, em_array_ptr(c), em_array_ptr(out),
                   w ? em_array_ptr(w) : NULL, b ? em_array_ptr(b) : NULL, d,
                   is_norm ? n->p.norm.eps : 0, false};
    if (d == 0 && n->op == EM_OP_logsumexp) {
      /* logsumexp of nothing is -inf */
      double ninf = -INFINITY;
      unsigned char v[16];
      em_cpu_cast_kernel(EM_F64, out->dtype)(&ninf, v, 1);
      fill(em_array_ptr(out), v, em_dtype_size(out->dtype), out->size);
    } else if (rows > 0) {
      int64_t grain = d > 0 ? (16384 + d - 1) / d : rows;
      em_parallel_for(rows, grain, rows_range, &ctx);
      if (ctx.failed) st = em_fail(EM_ERR_OOM, "[%s] out of host memory", em_op_name(n->op));
    }
  }
  em_array_release(c);
  em_array_release(w);
  em_array_release(b);
  return st;
}

/* ---- the table ---------------------------------------------------------- */

static em_status cpu_copy_strided(const em_array *src, void *dst) {
  em_cpu_copy_strided(src, dst);
  return EM_OK;
}

const em_backend em_cpu_backend = {
    .name = "cpu",
    .kernels =
        {
            [EM_OP_full] = k_full,
            [EM_OP_iota] = k_iota,
            [EM_OP_eye] = k_eye,
            [EM_OP_bitcast] = k_copy,
            [EM_OP_copy] = k_copy,
            [EM_OP_pad] = k_pad,
            [EM_OP_slice_dynamic] = k_slice_dynamic,
            [EM_OP_put_slice] = k_put_slice,
            [EM_OP_concatenate] = k_concatenate,
            [EM_OP_sum] = k_reduce,
            [EM_OP_product] = k_reduce,
            [EM_OP_reduce_max] = k_reduce,
            [EM_OP_reduce_min] = k_reduce,
            [EM_OP_all] = k_reduce,
            [EM_OP_any] = k_reduce,
            [EM_OP_argmax] = k_arg_reduce,
            [EM_OP_argmin] = k_arg_reduce,
            [EM_OP_dot] = k_dot,
            [EM_OP_softmax] = k_rows,
            [EM_OP_logsumexp] = k_rows,
            [EM_OP_layer_norm] = k_rows,
            [EM_OP_rms_norm] = k_rows,
#define X(n) [EM_OP_##n] = em_cpu_k_##n,
            EM_CPU_FAMILY_KERNELS(X)
#undef X
        },
    .run_fused = em_cpu_run_fused,
    .copy_strided = cpu_copy_strided,
};
