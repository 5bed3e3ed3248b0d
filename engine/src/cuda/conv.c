/* conv.c — EM_OP_conv on CUDA (Nx.conv; semantics and canonical layouts in
 * src/core/ops_conv.c: input [N, C, s...], kernel [O, C/fg, k...], output
 * [N/bg, O, o...], contiguous).
 *
 * Two paths:
 *  - cuDNN (f16, bf16, f32, f64; 1 to 3 spatial axes; every size within
 *    cuDNN's int32 descriptors) through the legacy forward API: NCHW /
 *    NCDHW packed tensors (1-d problems get a unit height), cross-
 *    correlation (Nx never flips the kernel), group count G = fg * bg,
 *    f16/bf16 with f32 accumulation, f32 without TF32 (CUDNN_FMA_MATH)
 *    unless EMILY_CUDA_TF32 is set, as dot.c. Algorithms come from
 *    cudnnGetConvolutionForwardAlgorithm_v7 (heuristics, nothing is run to
 *    benchmark), tried in its order until one runs, and are remembered per
 *    problem. What cuDNN lacks is done by a staging copy of the input into
 *    a fresh packed buffer, made only when needed:
 *      - input dilation, negative or asymmetric padding: the axis is
 *        materialised (zero-filled, the input scattered at stride
 *        input_dilation after pad_lo, cropped where padding is negative)
 *        and cuDNN pads it by 0; symmetric non-negative padding without
 *        input dilation is cuDNN's own;
 *      - batch groups: out[n, o] reads input batch n + e*(N/bg) for group
 *        e = o / (O/bg), so the input viewed as [N/bg, bg*C, s...] (image
 *        n, channel e*C + c = batch e*(N/bg) + n, channel c) makes it a
 *        feature-grouped convolution with bg groups (C == Ck);
 *      - a non-contiguous input, or one not 16-byte aligned.
 *  - a direct kernel (conv.cu) for every other dtype (integers, wrapping
 *    modulo 2^bits; c64/c128, no conjugation), more than 3 spatial axes,
 *    sizes beyond int32, and whenever cuDNN reports a problem unsupported
 *    (status categories BAD_PARAM / NOT_SUPPORTED, or no algorithm runs).
 *    It reads the input through its strides (no copy). EMILY_CUDA_CONV_DIRECT
 *    forces it (tests use this to check it on float dtypes too);
 *    EMILY_CUDA_DEBUG prints why cuDNN was not used for a float problem.
 * Other cuDNN failures are EM_ERR_RUNTIME with the shapes and dtype.
 * Handles: one per device, created lazily; a device's handle is used under
 * its mutex (cudnnSetStream to the thread's stream each call). Workspaces
 * come from the engine's device allocator. */
#include <cudnn.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv-kernels.h"
#include "cuda-impl.h"

#define MAX_CU 16
#define WS_CAP ((size_t)1 << 30) /* largest cuDNN workspace we hand out */
#define CONV_TUNE_FLOPS 1e9 /* from here a new problem times its candidates */
#define ALGO_CACHE_N 64
#define WHY_CAP 192 /* why cuDNN was not used (EMILY_CUDA_DEBUG) */

#define TRY(x)                    \
  do {                            \
    em_status st_ = (x);          \
    if (st_ != EM_OK) return st_; \
  } while (0)

/* ---- geometry --------------------------------------------------------------- */

typedef struct {
  int ns;
  int64_t N, C, O, Ck, fg, bg, NB, G, Og, KS, K, P;
  int64_t isp[EM_MAX_NDIM], ksp[EM_MAX_NDIM], osp[EM_MAX_NDIM];
  int64_t s[EM_MAX_NDIM], lo[EM_MAX_NDIM], hi[EM_MAX_NDIM];
  int64_t id[EM_MAX_NDIM], kd[EM_MAX_NDIM];
} cgeom;

static void make_geom(cgeom *g, const em_array *in, const em_array *k,
                      const em_array *out, const em_params *p) {
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
  g->KS = g->P = 1;
  for (int d = 0; d < g->ns; d++) {
    g->isp[d] = in->shape[2 + d];
    g->ksp[d] = k->shape[2 + d];
    g->osp[d] = out->shape[2 + d];
    g->s[d] = p->conv.strides[d];
    g->lo[d] = p->conv.pad_lo[d];
    g->hi[d] = p->conv.pad_hi[d];
    g->id[d] = p->conv.input_dilation[d];
    g->kd[d] = p->conv.kernel_dilation[d];
    g->KS *= g->ksp[d];
    g->P *= g->osp[d];
  }
  g->K = g->Ck * g->KS;
}

static const char *shp(char *buf, size_t cap, const em_array *a) {
  return em_shape_str(buf, cap, a->ndim, a->shape);
}

/* ---- strided copies (as backend.c's copy_nd) ------------------------------- */

static int64_t iabs64(int64_t v) { return v < 0 ? -v : v; }

/* dst (strides dst_st) = src (strides src_st) over shape, in elements of
 * es bytes; pointers are element 0 of each layout. */
static em_status copy_nd(int dev, const char *src, const int64_t *src_st,
                         char *dst, const int64_t *dst_st, int nd,
                         const int64_t *shape, size_t es, cudaStream_t s) {
  int64_t sh[EM_MAX_NDIM], ss[EM_MAX_NDIM], ds[EM_MAX_NDIM], n = 1;
  int k = 0;
  for (int i = 0; i < nd; i++) n *= shape[i];
  if (n == 0) return EM_OK;
  for (int i = 0; i < nd; i++) {
    if (shape[i] == 1) continue;
    if (k > 0 && ss[k - 1] == src_st[i] * shape[i] &&
        ds[k - 1] == dst_st[i] * shape[i]) {
      sh[k - 1] *= shape[i];
      ss[k - 1] = src_st[i];
      ds[k - 1] = dst_st[i];
    } else {
      sh[k] = shape[i];
      ss[k] = src_st[i];
      ds[k] = dst_st[i];
      k++;
    }
  }
  if (k == 0 || (k == 1 && ss[0] == 1 && ds[0] == 1)) {
    CU_TRY("conv", cudaMemcpyAsync(dst, src, (size_t)n * es,
                                   cudaMemcpyDeviceToDevice, s));
    return EM_OK;
  }
  int64_t mo = 0;
  for (int i = 0; i < k; i++) {
    int64_t a = iabs64(ss[i]), b = iabs64(ds[i]);
    mo += (a > b ? a : b) * (sh[i] - 1);
  }
  int use32 = n < ((int64_t)1 << 31) && mo < ((int64_t)1 << 31);
  cudaError_t e = em_cu_copy_launch(src, dst, (int)es, k, sh, ss, ds, n, use32,
                                    em_cu_device_props(dev)->sms, s);
  if (e != cudaSuccess) return em_cu_fail(e, "conv", "the copy kernel");
  return EM_OK;
}

/* ---- the direct kernel ------------------------------------------------------- */

static int direct_kind(em_dtype t) {
  switch (t) {
    case EM_U8: case EM_S8: return EM_CU_CONV_I8;
    case EM_U16: case EM_S16: return EM_CU_CONV_I16;
    case EM_U32: case EM_S32: return EM_CU_CONV_I32;
    case EM_U64: case EM_S64: return EM_CU_CONV_I64;
    case EM_F16: return EM_CU_CONV_F16;
    case EM_BF16: return EM_CU_CONV_BF16;
    case EM_F32: return EM_CU_CONV_F32;
    case EM_F64: return EM_CU_CONV_F64;
    case EM_C64: return EM_CU_CONV_C64;
    case EM_C128: return EM_CU_CONV_C128;
    default: return -1;
  }
}

static em_status conv_direct(const cgeom *g, const em_array *in,
                             const em_array *ck, em_array *out,
                             cudaStream_t s) {
  em_cu_conv_geom d;
  memset(&d, 0, sizeof d);
  d.ns = g->ns;
  d.NB = g->NB;
  d.O = g->O;
  d.Ck = g->Ck;
  d.Og = g->Og;
  d.KS = g->KS;
  d.P = g->P;
  d.sN = in->strides[0];
  d.sC = in->strides[1];
  d.gstep = g->bg > 1 ? g->NB * in->strides[0]
            : g->fg > 1 ? g->Ck * in->strides[1] : 0;
  for (int i = 0; i < g->ns; i++) {
    d.isp[i] = g->isp[i];
    d.istr[i] = in->strides[2 + i];
    d.ksp[i] = g->ksp[i];
    d.osp[i] = g->osp[i];
    d.s[i] = g->s[i];
    d.lo[i] = g->lo[i];
    d.id[i] = g->id[i];
    d.kd[i] = g->kd[i];
  }
  int dev = out->dev.index;
  cudaError_t e = em_cu_conv_direct_launch(
      direct_kind(out->dtype), em_array_ptr(in), em_array_ptr(ck),
      em_array_ptr(out), &d, (long long)out->size, em_cu_device_props(dev)->sms,
      s);
  if (e != cudaSuccess) {
    char b1[256], b2[256], what[640];
    snprintf(what, sizeof what,
             "the direct convolution kernel (%s input %s, kernel %s)",
             em_dtype_name(out->dtype), shp(b1, sizeof b1, in),
             shp(b2, sizeof b2, ck));
    return em_cu_fail(e, "conv", what);
  }
  return EM_OK;
}

/* ---- cuDNN handles and the algorithm cache --------------------------------------- */

static cudnnHandle_t g_dnn[MAX_CU];
static pthread_mutex_t g_dnn_m[MAX_CU];
static pthread_mutex_t g_create_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void dnn_init(void) {
  for (int i = 0; i < MAX_CU; i++) pthread_mutex_init(&g_dnn_m[i], NULL);
}

/* The device's handle (created on first use). */
static em_status dnn_handle(int dev, cudnnHandle_t *h) {
  pthread_mutex_lock(&g_create_m);
  cudnnStatus_t r = CUDNN_STATUS_SUCCESS;
  if (!g_dnn[dev]) {
    (void)em_cu_enter(dev);
    r = cudnnCreate(&g_dnn[dev]);
    if (r != CUDNN_STATUS_SUCCESS) g_dnn[dev] = NULL;
  }
  *h = g_dnn[dev];
  pthread_mutex_unlock(&g_create_m);
  if (r != CUDNN_STATUS_SUCCESS)
    return em_fail(EM_ERR_RUNTIME, "[conv] cudnnCreate on cuda:%d: %s", dev,
                   cudnnGetErrorString(r));
  return EM_OK;
}

typedef struct {
  int dev, dt, nb, groups, math;
  int xd[5], wd[5], pad[3], str[3], dil[3];
} algo_key;

typedef struct {
  algo_key k;
  bool used;
  cudnnConvolutionFwdAlgo_t algo;
  cudnnMathType_t math;
} algo_entry;

static algo_entry g_algos[ALGO_CACHE_N];
static int g_algo_next;
static pthread_mutex_t g_algo_m = PTHREAD_MUTEX_INITIALIZER;

static bool algo_lookup(const algo_key *k, cudnnConvolutionFwdAlgo_t *algo,
                        cudnnMathType_t *math) {
  bool hit = false;
  pthread_mutex_lock(&g_algo_m);
  for (int i = 0; i < ALGO_CACHE_N && !hit; i++)
    if (g_algos[i].used && !memcmp(&g_algos[i].k, k, sizeof *k)) {
      *algo = g_algos[i].algo;
      *math = g_algos[i].math;
      hit = true;
    }
  pthread_mutex_unlock(&g_algo_m);
  return hit;
}

static void algo_store(const algo_key *k, cudnnConvolutionFwdAlgo_t algo,
                       cudnnMathType_t math) {
  pthread_mutex_lock(&g_algo_m);
  algo_entry *e = NULL;
  for (int i = 0; i < ALGO_CACHE_N && !e; i++)
    if (g_algos[i].used && !memcmp(&g_algos[i].k, k, sizeof *k)) e = &g_algos[i];
  if (!e) {
    e = &g_algos[g_algo_next];
    g_algo_next = (g_algo_next + 1) % ALGO_CACHE_N;
  }
  e->k = *k;
  e->used = true;
  e->algo = algo;
  e->math = math;
  pthread_mutex_unlock(&g_algo_m);
}

/* Status categories that mean "cuDNN cannot do this problem" (the direct
 * kernel takes it) rather than a failure. */
static bool dnn_soft(cudnnStatus_t r) {
  int c = (int)CUDNN_STATUS_CATEGORY(r);
  return c == (int)CUDNN_STATUS_BAD_PARAM || c == (int)CUDNN_STATUS_NOT_SUPPORTED;
}

/* ---- the cuDNN path ---------------------------------------------------------------- */

static bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

/* Stages the input as packed [NB, Cx, X...] at xbuf (see the file comment):
 * mat[d] marks the materialised axes (X[d] = padded size). */
static em_status stage_input(const cgeom *g, const em_array *in, char *xbuf,
                             const bool *mat, const int64_t *X, int64_t XS,
                             bool any_mat, size_t xbytes, cudaStream_t s) {
  const size_t es = em_dtype_size(in->dtype);
  const int ns = g->ns;
  int dev = in->dev.index;
  if (any_mat) CU_TRY("conv", cudaMemsetAsync(xbuf, 0, xbytes, s));
  int64_t shape[EM_MAX_NDIM], sst[EM_MAX_NDIM], dst_st[EM_MAX_NDIM];
  int64_t soff = 0, doff = 0;
  int64_t row[EM_MAX_NDIM]; /* row-major strides of the X dims */
  int64_t r = 1;
  for (int d = ns - 1; d >= 0; d--) {
    row[d] = r;
    r *= X[d];
  }
  int k = 0;
  if (g->bg > 1) {
    shape[k] = g->NB; sst[k] = in->strides[0]; dst_st[k] = g->bg * g->C * XS; k++;
    shape[k] = g->bg; sst[k] = g->NB * in->strides[0]; dst_st[k] = g->C * XS; k++;
  } else {
    shape[k] = g->NB; sst[k] = in->strides[0]; dst_st[k] = g->C * XS; k++;
  }
  shape[k] = g->C; sst[k] = in->strides[1]; dst_st[k] = XS; k++;
  for (int d = 0; d < ns; d++, k++) {
    sst[k] = in->strides[2 + d];
    if (!mat[d]) {
      shape[k] = g->isp[d];
      dst_st[k] = row[d];
      continue;
    }
    /* input element j lands at lo + j*id; keep those inside [0, X) */
    const int64_t lo = g->lo[d], step = g->id[d], L = X[d];
    int64_t kmin = lo >= 0 ? 0 : (-lo + step - 1) / step;
    if (L - 1 - lo < 0) return EM_OK; /* nothing lands: all zeros */
    int64_t kmax = (L - 1 - lo) / step;
    if (kmax > g->isp[d] - 1) kmax = g->isp[d] - 1;
    if (kmax < kmin) return EM_OK;
    shape[k] = kmax - kmin + 1;
    soff += kmin * in->strides[2 + d];
    doff += (lo + kmin * step) * row[d];
    dst_st[k] = step * row[d];
  }
  return copy_nd(dev, em_array_ptr(in) + soff * (int64_t)es, sst,
                 xbuf + doff * (int64_t)es, dst_st, k, shape, es, s);
}

#define DNN_TRY(what, call)                                                   \
  do {                                                                        \
    cudnnStatus_t r_ = (call);                                                \
    if (r_ != CUDNN_STATUS_SUCCESS) {                                         \
      if (!dnn_soft(r_)) st = dnn_error(what, r_, g, in, ck);                 \
      snprintf(why, WHY_CAP, "%s: %s", what, cudnnGetErrorString(r_));        \
      goto done;                                                              \
    }                                                                         \
  } while (0)

static em_status dnn_error(const char *what, cudnnStatus_t r, const cgeom *g,
                           const em_array *in, const em_array *ck) {
  char b1[256], b2[256];
  return em_fail(EM_ERR_RUNTIME,
                 "[conv] cuDNN %s: %s (%s input %s, kernel %s, groups %lld)",
                 what, cudnnGetErrorString(r), em_dtype_name(in->dtype),
                 shp(b1, sizeof b1, in), shp(b2, sizeof b2, ck),
                 (long long)g->G);
}

/* Runs the convolution through cuDNN when it can; *done tells whether it
 * did (false with EM_OK: the caller uses the direct kernel, and why, of
 * WHY_CAP bytes, says why). */
static em_status conv_cudnn(const cgeom *g, const em_array *in,
                            const em_array *ck, em_array *out, cudaStream_t s,
                            bool *done, char *why) {
  *done = false;
  snprintf(why, WHY_CAP, "more than 3 spatial axes");
  const em_dtype t = out->dtype;
  const int ns = g->ns;
  if (ns < 1 || ns > 3) return EM_OK;
  const int dev = out->dev.index;
  const size_t es = em_dtype_size(t);
  const int nsp = ns < 2 ? 2 : ns, nb = 2 + nsp;

  /* Per axis: cuDNN's symmetric padding, or materialised. */
  bool mat[3] = {false, false, false}, any_mat = false;
  int64_t X[3], padc[3];
  bool prep = g->bg > 1 || !em_array_is_contiguous(in) ||
              ((uintptr_t)em_array_ptr(in) % 16) != 0;
  for (int d = 0; d < ns; d++) {
    bool sym = g->id[d] == 1 && g->lo[d] == g->hi[d] && g->lo[d] >= 0;
    if (sym) {
      X[d] = g->isp[d];
      padc[d] = g->lo[d];
    } else {
      mat[d] = any_mat = prep = true;
      X[d] = g->isp[d] + (g->isp[d] - 1) * (g->id[d] - 1) + g->lo[d] + g->hi[d];
      padc[d] = 0;
    }
  }
  const int64_t Cx = g->bg > 1 ? g->bg * g->C : g->C;
  /* cuDNN's descriptors are int32; keep every tensor below 2^31 elements. */
  snprintf(why, WHY_CAP, "sizes beyond cuDNN's int32 descriptors");
  if (!fits_int(g->NB) || !fits_int(Cx) || !fits_int(g->O) ||
      !fits_int(g->Ck) || !fits_int(g->G))
    return EM_OK;
  for (int d = 0; d < ns; d++)
    if (!fits_int(X[d]) || !fits_int(g->ksp[d]) || !fits_int(g->osp[d]) ||
        !fits_int(padc[d]) || !fits_int(g->s[d]) || !fits_int(g->kd[d]))
      return EM_OK;
  double xsd = 1;
  for (int d = 0; d < ns; d++) xsd *= (double)X[d];
  double xe = (double)g->NB * (double)Cx * xsd;
  double we = (double)g->O * (double)g->K;
  double ye = (double)out->size;
  if (xsd > INT_MAX || xe > INT_MAX || we > INT_MAX || ye > INT_MAX) return EM_OK;
  int64_t XS = 1;
  for (int d = 0; d < ns; d++) XS *= X[d];

  int xd[5], xs[5], wd[5], yd[5], ys[5], pad[3], str[3], dil[3];
  xd[0] = (int)g->NB;
  xd[1] = (int)Cx;
  wd[0] = (int)g->O;
  wd[1] = (int)g->Ck;
  yd[0] = (int)g->NB;
  yd[1] = (int)g->O;
  for (int j = 0; j < nsp; j++) {
    int d = j - (nsp - ns); /* ns == 1: a unit leading spatial axis */
    if (d < 0) {
      xd[2 + j] = wd[2 + j] = yd[2 + j] = 1;
      pad[j] = 0;
      str[j] = dil[j] = 1;
    } else {
      xd[2 + j] = (int)X[d];
      wd[2 + j] = (int)g->ksp[d];
      yd[2 + j] = (int)g->osp[d];
      pad[j] = (int)padc[d];
      str[j] = (int)g->s[d];
      dil[j] = (int)g->kd[d];
    }
  }
  xs[nb - 1] = ys[nb - 1] = 1;
  for (int j = nb - 2; j >= 0; j--) {
    xs[j] = xs[j + 1] * xd[j + 1];
    ys[j] = ys[j + 1] * yd[j + 1];
  }

  cudnnDataType_t dt = t == EM_F16 ? CUDNN_DATA_HALF
                       : t == EM_BF16 ? CUDNN_DATA_BFLOAT16
                       : t == EM_F32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
  cudnnDataType_t ct = t == EM_F64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  const bool fma_only = t == EM_F32 && !getenv("EMILY_CUDA_TF32");
  cudnnMathType_t base_math = fma_only ? CUDNN_FMA_MATH
                              : (t == EM_F16 || t == EM_BF16) ? CUDNN_TENSOR_OP_MATH
                              : CUDNN_DEFAULT_MATH;

  cudnnHandle_t h;
  TRY(dnn_handle(dev, &h));
  pthread_once(&g_once, dnn_init);

  em_status st = EM_OK;
  char *xbuf = NULL, *wbuf = NULL;
  size_t xbytes = (size_t)xe * es, wbytes = (size_t)we * es;
  cudnnTensorDescriptor_t xdesc = NULL, ydesc = NULL;
  cudnnFilterDescriptor_t wdesc = NULL;
  cudnnConvolutionDescriptor_t cdesc = NULL;
  bool locked = false;
  cudaEvent_t e0 = NULL, e1 = NULL; /* candidate timing (see below) */

  /* Operands: the staged input, the (16-byte aligned) packed kernel. */
  const void *x = em_array_ptr(in), *w = em_array_ptr(ck);
  if (prep) {
    xbuf = em_cuda_alloc(dev, xbytes, &st);
    if (!xbuf) { /* the direct kernel needs no staging */
      st = EM_OK;
      snprintf(why, WHY_CAP, "no memory for the staged input (%zu bytes)", xbytes);
      goto done;
    }
    st = stage_input(g, in, xbuf, mat, X, XS, any_mat, xbytes, s);
    if (st != EM_OK) goto done;
    x = xbuf;
  }
  if ((uintptr_t)w % 16) {
    wbuf = em_cuda_alloc(dev, wbytes, &st);
    if (!wbuf) {
      st = EM_OK;
      snprintf(why, WHY_CAP, "no memory for the aligned kernel (%zu bytes)", wbytes);
      goto done;
    }
    cudaError_t e = cudaMemcpyAsync(wbuf, w, wbytes, cudaMemcpyDeviceToDevice, s);
    if (e != cudaSuccess) {
      st = em_cu_fail(e, "conv", "cudaMemcpyAsync (kernel)");
      goto done;
    }
    w = wbuf;
  }

  DNN_TRY("cudnnCreateTensorDescriptor", cudnnCreateTensorDescriptor(&xdesc));
  DNN_TRY("cudnnCreateTensorDescriptor", cudnnCreateTensorDescriptor(&ydesc));
  DNN_TRY("cudnnCreateFilterDescriptor", cudnnCreateFilterDescriptor(&wdesc));
  DNN_TRY("cudnnCreateConvolutionDescriptor",
          cudnnCreateConvolutionDescriptor(&cdesc));
  DNN_TRY("cudnnSetTensorNdDescriptor (input)",
          cudnnSetTensorNdDescriptor(xdesc, dt, nb, xd, xs));
  DNN_TRY("cudnnSetTensorNdDescriptor (output)",
          cudnnSetTensorNdDescriptor(ydesc, dt, nb, yd, ys));
  DNN_TRY("cudnnSetFilterNdDescriptor",
          cudnnSetFilterNdDescriptor(wdesc, dt, CUDNN_TENSOR_NCHW, nb, wd));
  DNN_TRY("cudnnSetConvolutionNdDescriptor",
          cudnnSetConvolutionNdDescriptor(cdesc, nsp, pad, str, dil,
                                          CUDNN_CROSS_CORRELATION, ct));
  DNN_TRY("cudnnSetConvolutionGroupCount",
          cudnnSetConvolutionGroupCount(cdesc, (int)g->G));
  DNN_TRY("cudnnSetConvolutionMathType",
          cudnnSetConvolutionMathType(cdesc, base_math));
  {
    int got[5];
    DNN_TRY("cudnnGetConvolutionNdForwardOutputDim",
            cudnnGetConvolutionNdForwardOutputDim(cdesc, xdesc, wdesc, nb, got));
    if (memcmp(got, yd, sizeof(int) * (size_t)nb) != 0) { /* direct */
      snprintf(why, WHY_CAP, "cuDNN's output shape differs");
      goto done;
    }
  }

  algo_key key;
  memset(&key, 0, sizeof key);
  key.dev = dev;
  key.dt = (int)dt;
  key.nb = nb;
  key.groups = (int)g->G;
  key.math = (int)base_math;
  memcpy(key.xd, xd, sizeof(int) * (size_t)nb);
  memcpy(key.wd, wd, sizeof(int) * (size_t)nb);
  memcpy(key.pad, pad, sizeof(int) * (size_t)nsp);
  memcpy(key.str, str, sizeof(int) * (size_t)nsp);
  memcpy(key.dil, dil, sizeof(int) * (size_t)nsp);

  const float one32 = 1, zero32 = 0;
  const double one64 = 1, zero64 = 0;
  const void *alpha = t == EM_F64 ? (const void *)&one64 : (const void *)&one32;
  const void *beta = t == EM_F64 ? (const void *)&zero64 : (const void *)&zero32;
  void *y = em_array_ptr(out);

  pthread_mutex_lock(&g_dnn_m[dev]);
  locked = true;
  DNN_TRY("cudnnSetStream", cudnnSetStream(h, s));

  /* Candidates: the remembered algorithm first, then the heuristics'. */
  cudnnConvolutionFwdAlgoPerf_t perf[17];
  int nperf = 0;
  {
    cudnnConvolutionFwdAlgo_t a;
    cudnnMathType_t m;
    if (algo_lookup(&key, &a, &m)) {
      memset(&perf[0], 0, sizeof perf[0]);
      perf[0].algo = a;
      perf[0].mathType = m;
      perf[0].status = CUDNN_STATUS_SUCCESS;
      nperf = 1;
    }
  }
  bool searched = false;
  /* A large problem seen for the first time times every runnable candidate
   * (its first run doubles as the warm-up) and remembers the fastest, as
   * PyTorch's cudnn.benchmark does: the heuristics' first pick can be
   * ~10% off. Small ones take the first that runs. */
  const double flops = 2.0 * (double)out->size * (double)g->K;
  const bool tune = nperf == 0 && flops >= CONV_TUNE_FLOPS;
  int best = -1;
  float best_ms = 0;
  if (tune) {
    cudaError_t ce = cudaEventCreate(&e0);
    if (ce == cudaSuccess) ce = cudaEventCreate(&e1);
    if (ce != cudaSuccess) {
      st = em_cu_fail(ce, "conv", "cudaEventCreate");
      goto done;
    }
  }
  snprintf(why, WHY_CAP, "no algorithm ran");
  for (int i = 0;; i++) {
    if (i == nperf) {
      if (searched) break;
      searched = true;
      int maxc = 0, ret = 0;
      DNN_TRY("cudnnGetConvolutionForwardAlgorithmMaxCount",
              cudnnGetConvolutionForwardAlgorithmMaxCount(h, &maxc));
      if (maxc > 16) maxc = 16;
      if (maxc < 1) break;
      DNN_TRY("cudnnGetConvolutionForwardAlgorithm_v7",
              cudnnGetConvolutionForwardAlgorithm_v7(h, xdesc, wdesc, cdesc, ydesc,
                                                     maxc, &ret, perf + nperf));
      if (ret < 0) ret = 0;
      if (ret > maxc) ret = maxc;
      nperf += ret;
      if (i == nperf) break;
    }
    const cudnnConvolutionFwdAlgoPerf_t *pf = &perf[i];
    if (pf->status != CUDNN_STATUS_SUCCESS) continue;
    cudnnMathType_t m = pf->mathType;
    if (fma_only) {
      if (m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
        continue; /* would round f32 operands to TF32 */
      m = CUDNN_FMA_MATH;
    }
    cudnnStatus_t r = cudnnSetConvolutionMathType(cdesc, m);
    size_t wsb = 0;
    if (r == CUDNN_STATUS_SUCCESS)
      r = cudnnGetConvolutionForwardWorkspaceSize(h, xdesc, wdesc, cdesc, ydesc,
                                                  pf->algo, &wsb);
    if (r != CUDNN_STATUS_SUCCESS) {
      if (dnn_soft(r)) continue;
      st = dnn_error("cudnnGetConvolutionForwardWorkspaceSize", r, g, in, ck);
      goto done;
    }
    if (wsb > WS_CAP) continue;
    void *ws = NULL;
    if (wsb) {
      em_status ast;
      ws = em_cuda_alloc(dev, wsb, &ast);
      if (!ws) continue; /* a leaner algorithm may still fit */
    }
    r = cudnnConvolutionForward(h, alpha, xdesc, x, wdesc, w, cdesc, pf->algo, ws,
                                wsb, beta, ydesc, y);
    if (r == CUDNN_STATUS_SUCCESS && tune) {
      float ms = 0;
      cudaError_t ce = cudaEventRecord(e0, s);
      for (int rep = 0; rep < 2 && r == CUDNN_STATUS_SUCCESS && ce == cudaSuccess; rep++)
        r = cudnnConvolutionForward(h, alpha, xdesc, x, wdesc, w, cdesc, pf->algo,
                                    ws, wsb, beta, ydesc, y);
      if (ce == cudaSuccess) ce = cudaEventRecord(e1, s);
      if (ce == cudaSuccess) ce = cudaEventSynchronize(e1);
      if (ce == cudaSuccess) ce = cudaEventElapsedTime(&ms, e0, e1);
      if (ws) em_cuda_free(dev, ws, wsb);
      if (ce != cudaSuccess) {
        st = em_cu_fail(ce, "conv", "timing cuDNN candidates");
        goto done;
      }
      if (getenv("EMILY_CUDA_TUNE_LOG"))
        fprintf(stderr, "[conv] algorithm %d (math %d): %.4f ms\n", (int)pf->algo,
                (int)m, ms / 2);
      if (r == CUDNN_STATUS_SUCCESS && (best < 0 || ms < best_ms)) {
        best = i;
        best_ms = ms;
        perf[i].mathType = m;
      }
      if (r == CUDNN_STATUS_SUCCESS || dnn_soft(r)) continue;
      st = dnn_error("cudnnConvolutionForward", r, g, in, ck);
      goto done;
    }
    if (ws) em_cuda_free(dev, ws, wsb);
    if (r == CUDNN_STATUS_SUCCESS) {
      algo_store(&key, pf->algo, m);
      *done = true;
      break;
    }
    if (!dnn_soft(r)) {
      st = dnn_error("cudnnConvolutionForward", r, g, in, ck);
      goto done;
    }
    snprintf(why, WHY_CAP, "no algorithm ran (last: algorithm %d, %s)",
             (int)pf->algo, cudnnGetErrorString(r));
  }
  if (tune && best >= 0) { /* y holds the last candidate's result: the best's */
    const cudnnConvolutionFwdAlgoPerf_t *pf = &perf[best];
    cudnnStatus_t r = cudnnSetConvolutionMathType(cdesc, pf->mathType);
    size_t wsb = 0;
    if (r == CUDNN_STATUS_SUCCESS)
      r = cudnnGetConvolutionForwardWorkspaceSize(h, xdesc, wdesc, cdesc, ydesc,
                                                  pf->algo, &wsb);
    void *ws = NULL;
    if (r == CUDNN_STATUS_SUCCESS && wsb) ws = em_cuda_alloc(dev, wsb, &st);
    if (r == CUDNN_STATUS_SUCCESS && (ws || !wsb))
      r = cudnnConvolutionForward(h, alpha, xdesc, x, wdesc, w, cdesc, pf->algo, ws,
                                  wsb, beta, ydesc, y);
    if (ws) em_cuda_free(dev, ws, wsb);
    if (wsb && !ws) goto done; /* st says out of memory */
    if (r != CUDNN_STATUS_SUCCESS) {
      st = dnn_error("cudnnConvolutionForward", r, g, in, ck);
      goto done;
    }
    algo_store(&key, pf->algo, pf->mathType);
    *done = true;
  }

done:
  if (e0) cudaEventDestroy(e0);
  if (e1) cudaEventDestroy(e1);
  if (locked) pthread_mutex_unlock(&g_dnn_m[dev]);
  if (cdesc) cudnnDestroyConvolutionDescriptor(cdesc);
  if (wdesc) cudnnDestroyFilterDescriptor(wdesc);
  if (ydesc) cudnnDestroyTensorDescriptor(ydesc);
  if (xdesc) cudnnDestroyTensorDescriptor(xdesc);
  if (xbuf) em_cuda_free(dev, xbuf, xbytes);
  if (wbuf) em_cuda_free(dev, wbuf, wbytes);
  if (st != EM_OK) *done = false;
  return st;
}

/* ---- the kernel ----------------------------------------------------------------------- */

em_status em_cu_k_conv(em_array *out, const em_node *node) {
  em_array *in = node->in[0], *k = node->in[1];
  const em_dtype t = out->dtype;
  char b1[256], b2[256];
  if (!em_cu_dtype_ok(t) || direct_kind(t) < 0 || in->dtype != t ||
      k->dtype != t)
    return em_fail(EM_ERR_UNSUPPORTED,
                   "[conv] not supported on CUDA for %s (input %s, kernel %s)",
                   em_dtype_name(t), shp(b1, sizeof b1, in), shp(b2, sizeof b2, k));
  const int ns = node->p.conv.nspatial;
  if (ns < 1 || ns > EM_CU_CONV_MAXS || in->ndim != ns + 2 || k->ndim != ns + 2 ||
      out->ndim != ns + 2)
    return em_fail(EM_ERR_UNSUPPORTED,
                   "[conv] %d spatial axes are not supported on CUDA (input %s, "
                   "kernel %s)",
                   ns, shp(b1, sizeof b1, in), shp(b2, sizeof b2, k));
  cgeom g;
  make_geom(&g, in, k, out, &node->p);
  TRY(em_alloc_output(out));
  if (out->size == 0) return EM_OK;
  const int dev = out->dev.index;
  cudaStream_t s = em_cu_enter(dev);
  if (g.K == 0 || in->size == 0) { /* every term meets nothing: zeros */
    CU_TRY("conv", cudaMemsetAsync(em_array_ptr(out), 0,
                                   (size_t)out->size * em_dtype_size(t), s));
    return EM_OK;
  }
  em_array *ck = NULL;
  TRY(em_contiguous(k, &ck));
  em_status st = EM_OK;
  bool done = false;
  if ((t == EM_F16 || t == EM_BF16 || t == EM_F32 || t == EM_F64) &&
      !getenv("EMILY_CUDA_CONV_DIRECT")) {
    char why[WHY_CAP];
    st = conv_cudnn(&g, in, ck, out, s, &done, why);
    if (st == EM_OK && !done && getenv("EMILY_CUDA_DEBUG"))
      fprintf(stderr, "[conv] cuDNN not used for %s input %s, kernel %s: %s\n",
              em_dtype_name(t), shp(b1, sizeof b1, in), shp(b2, sizeof b2, k), why);
  }
  if (st == EM_OK && !done) st = conv_direct(&g, in, ck, out, s);
  em_array_release(ck);
  return st;
}
