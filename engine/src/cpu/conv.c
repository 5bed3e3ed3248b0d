/* conv.c — the CPU kernel of EM_OP_conv (Nx.conv; the semantics and the
 * canonical layouts are described in src/core/ops_conv.c).
 *
 * Work unit: one output image n (of N / batch_groups) and one group e (of
 * G = feature_groups * batch_groups; one of the two is 1). It reads input
 * batch n + e * (N / bg) when batch-grouped, channels [e * Ck, +Ck) when
 * feature-grouped, and writes output channels [e * Og, +Og), Og = O / G:
 *     out[n, e*Og + m, p] = sum_r W[e*Og + m, r] * col[r, p]
 * where col (im2col) has one row r = (c, kernel position) per kernel
 * element and one column per output position p, holding the input element
 * that kernel element meets at p, or 0 where it meets padding or an
 * input-dilation hole. im2col does the index math (no dilated or padded
 * copy of the input is made).
 *
 * Two strategies:
 *  - BLAS (f32, f64, c64, c128; f16/bf16 through f32) when the per-group
 *    matrices are not tiny. Work goes in chunks of images x output
 *    positions whose im2col takes about COL_CACHE bytes (so the product
 *    reads it back from the last-level cache; never more than COL_BUDGET):
 *    the col rows are filled in parallel (em_parallel_for), then ?gemm runs
 *    from this thread (OpenBLAS threads it). Images of >= MERGE_P positions
 *    get one product per (image, group) written straight into the output;
 *    smaller ones share one product per group over all images of the chunk
 *    (a wider matrix, which BLAS runs much faster), scattered into the
 *    output afterwards. f16/bf16 always take that scatter, which rounds
 *    the f32 sums once. A 1x1 kernel with unit strides, no padding and no
 *    dilation on large images needs no im2col: the input image is the col
 *    matrix.
 *  - Loop (every integer dtype; floats with tiny per-group matrices, e.g.
 *    depthwise): tasks of (image, group, block of positions) run in
 *    parallel, each filling a small per-thread col block and multiplying it
 *    with plain loops, four output channels at a time. Integers accumulate
 *    in uint32/uint64 arithmetic, which is exact modulo 2^bits whatever the
 *    signedness, so the result wraps like Nx's integer ops.
 * Complex products are not conjugated. */
#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/backend-impl.h"
#include "../core/half.h"
#include "../core/parallel.h"
#include "cpu-kernels.h"
#include "simd.h"

/* BLAS strategy chunks: about COL_CACHE bytes of im2col, so that the
 * product reads it back from the last-level cache; merged products get at
 * least MERGE_MIN_N columns; COL_BUDGET and TMP_BUDGET bound the memory. */
#define COL_CACHE ((size_t)8 << 20)
#define COL_BUDGET ((size_t)256 << 20)
#define TMP_BUDGET ((size_t)64 << 20)
#define MERGE_P 1024   /* images with fewer positions share one product */
#define MERGE_MIN_N 2048
#define LOOP_BUDGET ((size_t)64 << 20) /* per-thread col blocks, in all */
#define LOOP_PB 256                     /* positions per loop task (max) */
#define LOOP_MB 4                       /* output channels per pass */

#define TRY(x)                    \
  do {                            \
    em_status st_ = (x);          \
    if (st_ != EM_OK) return st_; \
  } while (0)

/* Complex elements as they are stored (no arithmetic on these types). */
typedef struct {
  float v[2];
} c64_t;
typedef struct {
  double v[2];
} c128_t;

/* ---- geometry ----------------------------------------------------------- */

typedef struct {
  int ns;
  int64_t N, C, O, Ck, NB, G, Og, fg, bg;
  int64_t isp[EM_MAX_NDIM], ksp[EM_MAX_NDIM], osp[EM_MAX_NDIM];
  /* Input strides in elements (any sign, as the DONE input has them):
   * batch, channel and spatial axes; contig: row-major. */
  int64_t sN, sC, istr[EM_MAX_NDIM];
  bool contig;
  int64_t s[EM_MAX_NDIM], lo[EM_MAX_NDIM], id[EM_MAX_NDIM], kd[EM_MAX_NDIM];
  int64_t S, KS, P, K; /* plane, kernel window, output positions, rows */
} geom;

static void make_geom(geom *g, const em_array *in, const em_array *k,
                      const em_params *p) {
  memset(g, 0, sizeof *g);
  g->ns = p->conv.nspatial;
  g->N = in->shape[0];
  g->C = in->shape[1];
  g->O = k->shape[0];
  g->Ck = k->shape[1];
  g->fg = p->conv.feature_group_size;
  g->bg = p->conv.batch_group_size;
  g->NB = g->N / g->bg;
  g->G = g->fg * g->bg;
  g->Og = g->O / g->G;
  g->S = g->KS = g->P = 1;
  for (int d = 0; d < g->ns; d++) {
    g->isp[d] = in->shape[2 + d];
    g->ksp[d] = k->shape[2 + d];
    g->s[d] = p->conv.strides[d];
    g->lo[d] = p->conv.pad_lo[d];
    g->id[d] = p->conv.input_dilation[d];
    g->kd[d] = p->conv.kernel_dilation[d];
    g->S *= g->isp[d];
    g->KS *= g->ksp[d];
  }
  g->sN = in->strides[0];
  g->sC = in->strides[1];
  for (int d = 0; d < g->ns; d++) g->istr[d] = in->strides[2 + d];
  g->contig = em_array_is_contiguous(in);
  g->K = g->Ck * g->KS;
}

/* The input image (batch, first channel) a work unit (n, e) reads, as an
 * element offset from the input's first element. */
static int64_t unit_image_offset(const geom *g, int64_t n, int64_t e) {
  int64_t b = g->bg > 1 ? n + e * g->NB : n;
  int64_t c0 = g->fg > 1 ? e * g->Ck : 0;
  return b * g->sN + c0 * g->sC;
}

/* A 1x1 kernel with unit strides, no padding, no dilation on a row-major
 * input: the image's [C, S] block is the col matrix. */
static bool is_pointwise(const geom *g, const em_params *p) {
  if (!g->contig) return false;
  for (int d = 0; d < g->ns; d++)
    if (g->ksp[d] != 1 || g->s[d] != 1 || g->lo[d] != 0 ||
        p->conv.pad_hi[d] != 0 || g->id[d] != 1)
      return false;
  return true;
}

/* ---- im2col ------------------------------------------------------------- */

/* Fills dst[0 .. p1-p0) with row r of the col matrix of one unit (img
 * points at its first channel plane) for output positions [p0, p1).
 * Input elements are addressed through the input's strides, so permuted
 * and other non-contiguous inputs need no copy; offsets are summed as
 * integers and a pointer is formed only for elements that exist. */
#define IM2COL_ROW(NAME, TS, TD, CV)                                          \
  static void NAME(const geom *g, const void *imgv, int64_t r, int64_t p0,    \
                   int64_t p1, void *dstv) {                                  \
    const TS *img = imgv;                                                     \
    const int64_t plane = (r / g->KS) * g->sC;                                \
    TD *dst = dstv;                                                           \
    TD zero;                                                                  \
    memset(&zero, 0, sizeof zero);                                            \
    const int ns = g->ns, L = ns - 1;                                         \
    int64_t kidx[EM_MAX_NDIM], oidx[EM_MAX_NDIM];                             \
    int64_t kk = r % g->KS, pp = p0;                                          \
    for (int d = L; d >= 0; d--) {                                            \
      kidx[d] = kk % g->ksp[d];                                               \
      kk /= g->ksp[d];                                                        \
      oidx[d] = pp % g->osp[d];                                               \
      pp /= g->osp[d];                                                        \
    }                                                                         \
    const int64_t n = g->isp[L], s = g->s[L], id = g->id[L];                  \
    const int64_t sl = g->istr[L];                                            \
    const int64_t base = kidx[L] * g->kd[L] - g->lo[L];                       \
    /* Valid o on the last axis when id == 1: 0 <= o*s + base < n. */         \
    int64_t vlo = 0, vhi = -1;                                                \
    if (id == 1 && n > 0) {                                                   \
      vlo = base >= 0 ? 0 : (-base + s - 1) / s;                              \
      vhi = n - 1 - base < 0 ? -1 : (n - 1 - base) / s; /* inclusive */       \
    }                                                                         \
    int64_t p = p0;                                                           \
    while (p < p1) {                                                          \
      int64_t oa = oidx[L], ob = g->osp[L];                                   \
      if (ob - oa > p1 - p) ob = oa + (p1 - p);                               \
      int64_t cnt = ob - oa;                                                  \
      bool ok = true;                                                         \
      int64_t off = plane;                                                    \
      for (int d = 0; d < L && ok; d++) {                                     \
        int64_t x = oidx[d] * g->s[d] + kidx[d] * g->kd[d] - g->lo[d];        \
        if (g->id[d] == 1) {                                                  \
          if (x < 0 || x >= g->isp[d]) ok = false;                            \
          else off += x * g->istr[d];                                         \
        } else if (x < 0 || x % g->id[d] != 0 || x / g->id[d] >= g->isp[d]) { \
          ok = false;                                                         \
        } else {                                                              \
          off += (x / g->id[d]) * g->istr[d];                                 \
        }                                                                     \
      }                                                                       \
      if (!ok) {                                                              \
        for (int64_t j = 0; j < cnt; j++) dst[j] = zero;                      \
      } else if (id == 1) {                                                   \
        int64_t a = vlo > oa ? vlo : oa, b = vhi + 1 < ob ? vhi + 1 : ob;     \
        if (b < a) b = a;                                                     \
        int64_t j = 0;                                                        \
        for (; j < a - oa; j++) dst[j] = zero;                                \
        if (b > a) {                                                          \
          const TS *src = img + (off + (a * s + base) * sl);                  \
          const int64_t st = s * sl;                                          \
          if (st == 1)                                                        \
            for (int64_t t = 0; t < b - a; t++) dst[j + t] = CV(src[t]);      \
          else                                                                \
            for (int64_t t = 0; t < b - a; t++)                               \
              dst[j + t] = CV(src[t * st]);                                   \
        }                                                                     \
        j += b - a;                                                           \
        for (; j < cnt; j++) dst[j] = zero;                                   \
      } else {                                                                \
        for (int64_t j = 0; j < cnt; j++) {                                   \
          int64_t x = (oa + j) * s + base;                                    \
          dst[j] = (x >= 0 && x % id == 0 && x / id < n)                      \
                       ? CV(img[off + (x / id) * sl])                         \
                       : zero;                                                \
        }                                                                     \
      }                                                                       \
      dst += cnt;                                                             \
      p += cnt;                                                               \
      /* advance oidx to the next line */                                     \
      oidx[L] = 0;                                                            \
      for (int d = L - 1; d >= 0; d--) {                                      \
        if (++oidx[d] < g->osp[d]) break;                                     \
        oidx[d] = 0;                                                          \
      }                                                                       \
    }                                                                         \
  }

#define CV_ID(x) (x)
IM2COL_ROW(im2col_u8, uint8_t, uint8_t, CV_ID)
IM2COL_ROW(im2col_u16, uint16_t, uint16_t, CV_ID)
IM2COL_ROW(im2col_u32, uint32_t, uint32_t, CV_ID)
IM2COL_ROW(im2col_u64, uint64_t, uint64_t, CV_ID)
IM2COL_ROW(im2col_f32, float, float, CV_ID)
IM2COL_ROW(im2col_f64, double, double, CV_ID)
IM2COL_ROW(im2col_c64, c64_t, c64_t, CV_ID)
IM2COL_ROW(im2col_c128, c128_t, c128_t, CV_ID)
IM2COL_ROW(im2col_f16, uint16_t, float, em_f16_to_f32)
IM2COL_ROW(im2col_bf16, uint16_t, float, em_bf16_to_f32)

typedef void (*im2col_fn)(const geom *, const void *, int64_t, int64_t,
                          int64_t, void *);

/* The row filler for dtype t, writing the compute type. Integers travel
 * as the unsigned type of their width (the arithmetic below is modular). */
static im2col_fn im2col_for(em_dtype t) {
  switch (t) {
    case EM_U8: case EM_S8: return im2col_u8;
    case EM_U16: case EM_S16: return im2col_u16;
    case EM_U32: case EM_S32: return im2col_u32;
    case EM_U64: case EM_S64: return im2col_u64;
    case EM_F16: return im2col_f16;
    case EM_BF16: return im2col_bf16;
    case EM_F32: return im2col_f32;
    case EM_F64: return im2col_f64;
    case EM_C64: return im2col_c64;
    default: return im2col_c128;
  }
}

/* ---- compute types ------------------------------------------------------ */

static bool is_half(em_dtype t) { return t == EM_F16 || t == EM_BF16; }
/* The element type col, W and accumulators use. */
static em_dtype compute_type(em_dtype t) { return is_half(t) ? EM_F32 : t; }

/* ---- loop strategy ------------------------------------------------------ */

/* acc rows [mb][pn] of the compute type; W rows at w (ld K); col block at
 * x (ld pn). Integer types: T is the unsigned type of the element width,
 * A the accumulator (uint32_t or uint64_t); unsigned wrap-around is the
 * ring arithmetic modulo 2^bits for signed and unsigned alike. */
#define LOOP_GEMM_REAL(NAME, T, A)                                           \
  EM_CLONES static void NAME(const void *wv, const void *xv, int64_t K,     \
                             int64_t mb, int64_t pn, void *yv, int64_t ldy) { \
    const T *w = wv, *x = xv;                                                \
    T *y = yv;                                                               \
    A acc[LOOP_MB][LOOP_PB];                                                 \
    for (int64_t m = 0; m < mb; m++)                                         \
      for (int64_t j = 0; j < pn; j++) acc[m][j] = 0;                        \
    for (int64_t k = 0; k < K; k++) {                                        \
      const T *xr = x + k * pn;                                              \
      for (int64_t m = 0; m < mb; m++) {                                     \
        A wk = (A)w[m * K + k];                                              \
        A *am = acc[m];                                                      \
        for (int64_t j = 0; j < pn; j++) am[j] += wk * (A)xr[j];             \
      }                                                                      \
    }                                                                        \
    for (int64_t m = 0; m < mb; m++)                                         \
      for (int64_t j = 0; j < pn; j++) y[m * ldy + j] = (T)acc[m][j];        \
  }

LOOP_GEMM_REAL(lgemm_u8, uint8_t, uint32_t)
LOOP_GEMM_REAL(lgemm_u16, uint16_t, uint32_t)
LOOP_GEMM_REAL(lgemm_u32, uint32_t, uint32_t)
LOOP_GEMM_REAL(lgemm_u64, uint64_t, uint64_t)
LOOP_GEMM_REAL(lgemm_f32, float, float)
LOOP_GEMM_REAL(lgemm_f64, double, double)

/* Complex: interleaved (re, im); no conjugation. */
#define LOOP_GEMM_CPX(NAME, T)                                               \
  EM_CLONES static void NAME(const void *wv, const void *xv, int64_t K,     \
                             int64_t mb, int64_t pn, void *yv, int64_t ldy) { \
    const T *w = wv, *x = xv;                                                \
    T *y = yv;                                                               \
    T acc[LOOP_MB][2 * LOOP_PB];                                             \
    for (int64_t m = 0; m < mb; m++)                                         \
      for (int64_t j = 0; j < 2 * pn; j++) acc[m][j] = 0;                    \
    for (int64_t k = 0; k < K; k++) {                                        \
      const T *xr = x + 2 * k * pn;                                          \
      for (int64_t m = 0; m < mb; m++) {                                     \
        T wr = w[2 * (m * K + k)], wi = w[2 * (m * K + k) + 1];              \
        T *am = acc[m];                                                      \
        for (int64_t j = 0; j < pn; j++) {                                   \
          T a = xr[2 * j], b = xr[2 * j + 1];                                \
          am[2 * j] += wr * a - wi * b;                                      \
          am[2 * j + 1] += wr * b + wi * a;                                  \
        }                                                                    \
      }                                                                      \
    }                                                                        \
    for (int64_t m = 0; m < mb; m++)                                         \
      for (int64_t j = 0; j < 2 * pn; j++) y[2 * m * ldy + j] = acc[m][j];   \
  }

LOOP_GEMM_CPX(lgemm_c64, float)
LOOP_GEMM_CPX(lgemm_c128, double)

typedef void (*lgemm_fn)(const void *, const void *, int64_t, int64_t,
                         int64_t, void *, int64_t);

static lgemm_fn lgemm_for(em_dtype ct) {
  switch (ct) {
    case EM_F32: return lgemm_f32;
    case EM_F64: return lgemm_f64;
    case EM_C64: return lgemm_c64;
    case EM_C128: return lgemm_c128;
    default: break;
  }
  switch (em_dtype_size(ct)) {
    case 1: return lgemm_u8;
    case 2: return lgemm_u16;
    case 4: return lgemm_u32;
    default: return lgemm_u64;
  }
}

typedef struct {
  const geom *g;
  em_dtype t, ct;
  size_t es, ces; /* element sizes: dtype, compute type */
  const char *in; /* canonical input's first element (strides in g) */
  const char *w;  /* kernel [O, K] contiguous, compute type */
  char *out;      /* canonical output, contiguous, dtype t */
  char *scratch;  /* per thread: col [K, pb] + staging [LOOP_MB, pb] */
  size_t scratch_per_thread;
  int64_t pb, npb;
  im2col_fn row;
  lgemm_fn mm;
} loop_ctx;

static void loop_task(void *cv, int64_t begin, int64_t end, int tid) {
  const loop_ctx *c = cv;
  const geom *g = c->g;
  char *col = c->scratch + (size_t)tid * c->scratch_per_thread;
  float *stage = (float *)(col + (size_t)(g->K * c->pb) * c->ces);
  for (int64_t t = begin; t < end; t++) {
    int64_t pbi = t % c->npb, ue = t / c->npb;
    int64_t e = ue % g->G, n = ue / g->G;
    int64_t p0 = pbi * c->pb, p1 = p0 + c->pb < g->P ? p0 + c->pb : g->P;
    int64_t pn = p1 - p0;
    const char *img = c->in + unit_image_offset(g, n, e) * (int64_t)c->es;
    for (int64_t r = 0; r < g->K; r++)
      c->row(g, img, r, p0, p1, col + (size_t)(r * pn) * c->ces);
    for (int64_t m = 0; m < g->Og; m += LOOP_MB) {
      int64_t mb = g->Og - m < LOOP_MB ? g->Og - m : LOOP_MB;
      int64_t o = e * g->Og + m;
      const char *w = c->w + (size_t)(o * g->K) * c->ces;
      int64_t yoff = (n * g->O + o) * g->P + p0;
      if (is_half(c->t)) {
        c->mm(w, col, g->K, mb, pn, stage, pn);
        for (int64_t mm = 0; mm < mb; mm++) {
          uint16_t *y = (uint16_t *)c->out + yoff + mm * g->P;
          const float *sr = stage + mm * pn;
          if (c->t == EM_F16)
            for (int64_t j = 0; j < pn; j++) y[j] = em_f32_to_f16(sr[j]);
          else
            for (int64_t j = 0; j < pn; j++) y[j] = em_f32_to_bf16(sr[j]);
        }
      } else {
        c->mm(w, col, g->K, mb, pn, c->out + (size_t)yoff * c->es, g->P);
      }
    }
  }
}

static em_status run_loop(const geom *g, em_device dev, em_dtype t,
                          const char *in, const char *w, char *out) {
  loop_ctx c;
  memset(&c, 0, sizeof c);
  c.g = g;
  c.t = t;
  c.ct = compute_type(t);
  c.es = em_dtype_size(t);
  c.ces = em_dtype_size(c.ct);
  c.in = in;
  c.w = w;
  c.out = out;
  c.row = im2col_for(t);
  c.mm = lgemm_for(c.ct);
  int nt = em_parallel_threads();
  size_t per_row = (size_t)g->K * c.ces; /* bytes per position of col */
  int64_t pb = (int64_t)(LOOP_BUDGET / (size_t)nt / (per_row ? per_row : 1));
  if (pb > LOOP_PB) pb = LOOP_PB;
  if (pb > g->P) pb = g->P;
  if (pb < 1) pb = 1;
  c.pb = pb;
  c.npb = (g->P + pb - 1) / pb;
  c.scratch_per_thread =
      ((size_t)(g->K * pb) * c.ces + (size_t)(LOOP_MB * pb) * sizeof(float) +
       63) & ~(size_t)63;
  size_t total = c.scratch_per_thread * (size_t)nt;
  em_status st;
  c.scratch = em_alloc(dev, total, &st);
  if (!c.scratch) return st;
  int64_t tasks = g->NB * g->G * c.npb;
  /* A task is ~K*pb*Og multiply-adds; aim for chunks of >= ~64k. */
  double work = (double)g->K * (double)pb * (double)g->Og;
  int64_t grain = work >= 65536 ? 1 : (int64_t)(65536 / (work + 1));
  em_parallel_for(tasks, grain, loop_task, &c);
  em_free(dev, c.scratch, total);
  return EM_OK;
}

/* ---- BLAS strategy ------------------------------------------------------ */

/* A chunk covers images [n0, n0 + cnt) and positions [p0, p0 + pn). Its
 * col buffer is laid out [G][K][cnt][pn]: for image i of group e the
 * [K, pn] matrix starts at ((e*K)*cnt + i)*pn with leading dimension
 * cnt*pn, and all cnt images of group e form one [K, cnt*pn] matrix. */
typedef struct {
  const geom *g;
  size_t es, ces;
  const char *in;
  char *col;
  int64_t n0, cnt, p0, pn;
  im2col_fn row;
} col_ctx;

static void col_task(void *cv, int64_t begin, int64_t end, int tid) {
  (void)tid;
  const col_ctx *c = cv;
  const geom *g = c->g;
  for (int64_t q = begin; q < end; q++) {
    int64_t i = q % c->cnt, er = q / c->cnt;
    int64_t r = er % g->K, e = er / g->K;
    const char *img =
        c->in + unit_image_offset(g, c->n0 + i, e) * (int64_t)c->es;
    c->row(g, img, r, c->p0, c->p0 + c->pn,
           c->col + (size_t)(q * c->pn) * c->ces);
  }
}

static void gemm(em_dtype ct, int64_t M, int64_t N, int64_t K, const void *A,
                 int64_t lda, const void *B, int64_t ldb, void *C,
                 int64_t ldc) {
  switch (ct) {
    case EM_F32:
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)M,
                  (blasint)N, (blasint)K, 1.0f, A, (blasint)lda, B,
                  (blasint)ldb, 0.0f, C, (blasint)ldc);
      break;
    case EM_F64:
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)M,
                  (blasint)N, (blasint)K, 1.0, A, (blasint)lda, B,
                  (blasint)ldb, 0.0, C, (blasint)ldc);
      break;
    case EM_C64: {
      const float one[2] = {1, 0}, zero[2] = {0, 0};
      cblas_cgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)M,
                  (blasint)N, (blasint)K, one, A, (blasint)lda, B,
                  (blasint)ldb, zero, C, (blasint)ldc);
      break;
    }
    default: {
      const double one[2] = {1, 0}, zero[2] = {0, 0};
      cblas_zgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)M,
                  (blasint)N, (blasint)K, one, A, (blasint)lda, B,
                  (blasint)ldb, zero, C, (blasint)ldc);
      break;
    }
  }
}

/* Moves a merged product tmp [Og][cnt][pn] (compute type) of group e into
 * the output [n0 + i, e*Og + m, p0 + j], rounding f32 to f16/bf16. */
typedef struct {
  const geom *g;
  em_dtype t;
  size_t es;
  const char *tmp;
  char *out;
  int64_t e, n0, cnt, p0, pn;
} scatter_ctx;

static void scatter_task(void *cv, int64_t begin, int64_t end, int tid) {
  (void)tid;
  const scatter_ctx *c = cv;
  const geom *g = c->g;
  for (int64_t q = begin; q < end; q++) {
    int64_t i = q % c->cnt, m = q / c->cnt;
    int64_t yoff = ((c->n0 + i) * g->O + c->e * g->Og + m) * g->P + c->p0;
    if (c->t == EM_F16 || c->t == EM_BF16) {
      const float *x = (const float *)c->tmp + q * c->pn;
      uint16_t *y = (uint16_t *)c->out + yoff;
      if (c->t == EM_F16)
        for (int64_t j = 0; j < c->pn; j++) y[j] = em_f32_to_f16(x[j]);
      else
        for (int64_t j = 0; j < c->pn; j++) y[j] = em_f32_to_bf16(x[j]);
    } else {
      memcpy(c->out + (size_t)yoff * c->es,
             c->tmp + (size_t)(q * c->pn) * c->es, (size_t)c->pn * c->es);
    }
  }
}

static em_status run_blas(const geom *g, const em_params *p, em_device dev,
                          em_dtype t, const char *in, const char *w,
                          char *out) {
  const em_dtype ct = compute_type(t);
  const size_t es = em_dtype_size(t), ces = em_dtype_size(ct);
  const bool half = is_half(t);
  /* Small images: one product per group over all images of a chunk (a
   * wider matrix for BLAS), then a scatter into the output layout. f16 and
   * bf16 always go through the f32 staging of that scatter. */
  const bool merged = half || (g->P < MERGE_P && g->NB > 1);
  const bool direct = !merged && is_pointwise(g, p);
  /* Positions per chunk (cnt images x pn positions), within the budgets. */
  double colpp = (double)(g->G * g->K) * (double)ces;
  double xmax = (double)COL_CACHE / colpp;
  if (merged && xmax < MERGE_MIN_N) xmax = MERGE_MIN_N;
  if (xmax > (double)COL_BUDGET / colpp) xmax = (double)COL_BUDGET / colpp;
  if (merged) {
    double tx = (double)TMP_BUDGET / ((double)g->Og * (double)ces);
    if (tx < xmax) xmax = tx;
  }
  if (xmax > (double)INT32_MAX) xmax = (double)INT32_MAX;
  int64_t x = xmax < 1 ? 1 : (int64_t)xmax, cnt, pb;
  if (direct) {
    cnt = g->NB;
    pb = g->P;
  } else if (g->P <= x) {
    pb = g->P;
    cnt = x / g->P;
    if (cnt > g->NB) cnt = g->NB;
  } else {
    cnt = 1;
    pb = x;
  }
  em_status st = EM_OK;
  size_t col_bytes = direct ? 0 : (size_t)(g->G * g->K * cnt * pb) * ces;
  size_t tmp_bytes = merged ? (size_t)(g->Og * cnt * pb) * ces : 0;
  char *col = NULL, *tmp = NULL;
  if (col_bytes) {
    col = em_alloc(dev, col_bytes, &st);
    if (!col) return st;
  }
  if (tmp_bytes) {
    tmp = em_alloc(dev, tmp_bytes, &st);
    if (!tmp) {
      em_free(dev, col, col_bytes);
      return st;
    }
  }
  col_ctx cc = {.g = g, .es = es, .ces = ces, .in = in, .col = col,
                .row = im2col_for(t)};
  for (int64_t n0 = 0; n0 < g->NB; n0 += cnt) {
    int64_t cn = g->NB - n0 < cnt ? g->NB - n0 : cnt;
    for (int64_t p0 = 0; p0 < g->P; p0 += pb) {
      int64_t pn = g->P - p0 < pb ? g->P - p0 : pb;
      if (!direct) {
        cc.n0 = n0;
        cc.cnt = cn;
        cc.p0 = p0;
        cc.pn = pn;
        int64_t grain = pn >= 4096 ? 1 : 4096 / pn;
        em_parallel_for(g->G * g->K * cn, grain, col_task, &cc);
      }
      for (int64_t e = 0; e < g->G; e++) {
        const char *A = w + (size_t)(e * g->Og * g->K) * ces;
        const char *ce =
            direct ? NULL : col + (size_t)(e * g->K * cn * pn) * ces;
        if (merged) {
          gemm(ct, g->Og, cn * pn, g->K, A, g->K, ce, cn * pn, tmp, cn * pn);
          scatter_ctx sc = {.g = g, .t = t, .es = es, .tmp = tmp, .out = out,
                            .e = e, .n0 = n0, .cnt = cn, .p0 = p0, .pn = pn};
          int64_t grain = pn >= 4096 ? 1 : 4096 / pn;
          em_parallel_for(g->Og * cn, grain, scatter_task, &sc);
          continue;
        }
        for (int64_t i = 0; i < cn; i++) {
          const char *B;
          int64_t ldb;
          if (direct) {
            B = in + unit_image_offset(g, n0 + i, e) * (int64_t)es;
            ldb = g->P;
          } else {
            B = ce + (size_t)(i * pn) * ces;
            ldb = cn * pn;
          }
          char *C = out + (size_t)(((n0 + i) * g->O + e * g->Og) * g->P + p0) *
                              es;
          gemm(ct, g->Og, pn, g->K, A, g->K, B, ldb, C, g->P);
        }
      }
    }
  }
  em_free(dev, col, col_bytes);
  em_free(dev, tmp, tmp_bytes);
  return EM_OK;
}

/* ---- channels-last inputs --------------------------------------------- */

/* An input whose channels are its innermost axis (NHWC-like: channel
 * stride 1, spatial axes row-major with stride C on the last) would make
 * im2col gather one element per cache line. It is first transposed, image
 * by image, into a row-major [N, C, S] staging copy, in tiles. */
static bool channels_last(const geom *g) {
  if (g->sC != 1 || g->C < 2 || g->S < 2) return false;
  int64_t st = g->C;
  for (int d = g->ns - 1; d >= 0; d--) {
    if (g->isp[d] != 1 && g->istr[d] != st) return false;
    st *= g->isp[d];
  }
  return true;
}

#define NHWC_TILE 32

typedef struct {
  const geom *g;
  const char *in; /* first element; position p of image b at b*sN + p*C */
  char *out;      /* [N, C, S] */
  size_t es;
  int64_t ptiles, ctiles;
  void (*copy)(const void *, void *, int64_t, int64_t, int64_t, int64_t,
               int64_t, int64_t);
} nhwc_ctx;

#define NHWC_COPY(NAME, T)                                                   \
  static void NAME(const void *xv, void *yv, int64_t C, int64_t S,          \
                   int64_t p0, int64_t p1, int64_t c0, int64_t c1) {        \
    const T *x = xv;                                                         \
    T *y = yv;                                                               \
    for (int64_t c = c0; c < c1; c++)                                        \
      for (int64_t p = p0; p < p1; p++) y[c * S + p] = x[p * C + c];         \
  }
/* (the element types im2col reads the staging copy with) */
NHWC_COPY(nhwc_copy_u8, uint8_t)
NHWC_COPY(nhwc_copy_u16, uint16_t)
NHWC_COPY(nhwc_copy_u32, uint32_t)
NHWC_COPY(nhwc_copy_u64, uint64_t)
NHWC_COPY(nhwc_copy_f32, float)
NHWC_COPY(nhwc_copy_f64, double)
NHWC_COPY(nhwc_copy_c64, c64_t)
NHWC_COPY(nhwc_copy_c128, c128_t)

static void nhwc_task(void *cv, int64_t begin, int64_t end, int tid) {
  (void)tid;
  const nhwc_ctx *c = cv;
  const geom *g = c->g;
  for (int64_t q = begin; q < end; q++) {
    int64_t ct = q % c->ctiles, pt = (q / c->ctiles) % c->ptiles;
    int64_t b = q / c->ctiles / c->ptiles;
    int64_t p0 = pt * NHWC_TILE, p1 = p0 + NHWC_TILE < g->S ? p0 + NHWC_TILE
                                                            : g->S;
    int64_t c0 = ct * NHWC_TILE, c1 = c0 + NHWC_TILE < g->C ? c0 + NHWC_TILE
                                                            : g->C;
    const char *x = c->in + (size_t)(b * g->sN) * c->es;
    char *y = c->out + (size_t)(b * g->C * g->S) * c->es;
    c->copy(x, y, g->C, g->S, p0, p1, c0, c1);
  }
}

/* Stages a channels-last input as row-major [N, C, S] and points g at it. */
static void stage_channels_last(geom *g, const char *in, char *out,
                                em_dtype t) {
  nhwc_ctx c = {.g = g, .in = in, .out = out, .es = em_dtype_size(t)};
  switch (t) {
    case EM_F32: c.copy = nhwc_copy_f32; break;
    case EM_F64: c.copy = nhwc_copy_f64; break;
    case EM_C64: c.copy = nhwc_copy_c64; break;
    case EM_C128: c.copy = nhwc_copy_c128; break;
    default:
      c.copy = c.es == 1   ? nhwc_copy_u8
               : c.es == 2 ? nhwc_copy_u16
               : c.es == 4 ? nhwc_copy_u32
                           : nhwc_copy_u64;
      break;
  }
  c.ptiles = (g->S + NHWC_TILE - 1) / NHWC_TILE;
  c.ctiles = (g->C + NHWC_TILE - 1) / NHWC_TILE;
  em_parallel_for(g->N * c.ptiles * c.ctiles, 16, nhwc_task, &c);
  g->sN = g->C * g->S;
  g->sC = g->S;
  int64_t st = 1;
  for (int d = g->ns - 1; d >= 0; d--) {
    g->istr[d] = st;
    st *= g->isp[d];
  }
  g->contig = true;
}

/* ---- kernel ------------------------------------------------------------- */

static void widen_half(const uint16_t *x, float *y, int64_t n, bool f16) {
  if (f16)
    for (int64_t i = 0; i < n; i++) y[i] = em_f16_to_f32(x[i]);
  else
    for (int64_t i = 0; i < n; i++) y[i] = em_bf16_to_f32(x[i]);
}

/* BLAS pays off once each (image, group) product is a real matrix. */
static bool use_blas(const geom *g, em_dtype t) {
  if (em_dtype_is_int(t)) return false;
  if (g->P > INT32_MAX || g->K > INT32_MAX || g->Og > INT32_MAX)
    return false; /* blasint may be 32-bit */
  return g->Og >= 4 && g->K >= 4;
}

em_status em_cpu_k_conv(em_array *out, const em_node *node) {
  em_array *in = node->in[0], *k = node->in[1];
  geom g;
  make_geom(&g, in, k, &node->p);
  for (int d = 0; d < g.ns; d++) g.osp[d] = out->shape[2 + d];
  g.P = 1;
  for (int d = 0; d < g.ns; d++) g.P *= g.osp[d];
  TRY(em_alloc_output(out));
  if (out->size == 0) return EM_OK;
  if (g.K == 0) {
    memset(em_array_ptr(out), 0, em_array_nbytes(out));
    return EM_OK;
  }
  const em_dtype t = out->dtype;
  /* The input is read through its strides; the kernel is made row-major
   * [O, K] (and f32 for f16/bf16). */
  em_array *ck = NULL;
  TRY(em_contiguous(k, &ck));
  em_status st = EM_OK;
  const char *w = em_array_ptr(ck), *x = em_array_ptr(in);
  char *staged = NULL;
  size_t staged_bytes = em_array_nbytes(in);
  float *w32 = NULL;
  size_t w32_bytes = (size_t)k->size * sizeof(float);
  if (is_half(t)) {
    w32 = em_alloc(out->dev, w32_bytes, &st);
    if (!w32) goto done;
    widen_half((const uint16_t *)w, w32, k->size, t == EM_F16);
    w = (const char *)w32;
  }
  if (channels_last(&g)) {
    staged = em_alloc(out->dev, staged_bytes, &st);
    if (!staged) goto done;
    stage_channels_last(&g, x, staged, t);
    x = staged;
  }
  if (use_blas(&g, t))
    st = run_blas(&g, &node->p, out->dev, t, x, w, em_array_ptr(out));
  else
    st = run_loop(&g, out->dev, t, x, w, em_array_ptr(out));
done:
  if (staged) em_free(out->dev, staged, staged_bytes);
  if (w32) em_free(out->dev, w32, w32_bytes);
  em_array_release(ck);
  return st;
}
