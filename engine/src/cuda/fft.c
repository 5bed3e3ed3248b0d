/* fft.c — EM_OP_fft (c64/c128, forward or inverse), EM_OP_rfft (f32 -> c64,
 * f64 -> c128, n/2+1 outputs) and EM_OP_irfft (c64 -> f32, c128 -> f64, n
 * outputs) on CUDA through cuFFT, along the last axis, batched over the
 * leading ones; the contract of src/cpu/fft.c (numpy conventions):
 *  - the node carries the transform length n and (fft) the inverse flag;
 *    the kernel zero-pads or truncates each input row of length L to n
 *    (irfft: to its n/2+1 Hermitian half) itself;
 *  - inverse transforms are scaled by 1/n (rounded to the working
 *    precision, then one multiply per element, as the CPU does);
 *  - irfft ignores the imaginary parts of the zero-frequency entry and,
 *    for even n, of entry n/2 (they are cleared before the C2R transform,
 *    whose result is then exactly the real part of the inverse FFT of the
 *    Hermitian spectrum).
 *
 * Every transform is staged by one kernel (fft.cu) that gathers the input
 * rows through their strides (any view) into packed rows, zero-filling or
 * cutting them: fft stages straight into the output and transforms in
 * place; rfft and irfft stage into a scratch buffer (cuFFT may overwrite
 * the input of a C2R transform) and transform out of place into the
 * output. Length 1 needs no cuFFT (the staging kernel writes the answer).
 *
 * Plans (cufftMakePlanMany64, no auto-allocated work area: each execution
 * takes its work area from the engine's device allocator) are cached by
 * (device, type, n, rows) in a small LRU; a plan is used by one thread at a
 * time (an idle plan of the same key or a new one otherwise), bound to the
 * thread's stream with cufftSetStream on every execution. */
#include <cufft.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cuda-impl.h"
#include "fft-kernels.h"

#define PLAN_CACHE_N 16

enum { OP_C2C, OP_R2C, OP_C2R };

/* ---- errors --------------------------------------------------------------------- */

static const char *cufft_str(cufftResult r) {
  switch (r) {
    case CUFFT_SUCCESS: return "CUFFT_SUCCESS";
    case CUFFT_INVALID_PLAN: return "CUFFT_INVALID_PLAN";
    case CUFFT_ALLOC_FAILED: return "CUFFT_ALLOC_FAILED";
    case CUFFT_INVALID_TYPE: return "CUFFT_INVALID_TYPE";
    case CUFFT_INVALID_VALUE: return "CUFFT_INVALID_VALUE";
    case CUFFT_INTERNAL_ERROR: return "CUFFT_INTERNAL_ERROR";
    case CUFFT_EXEC_FAILED: return "CUFFT_EXEC_FAILED";
    case CUFFT_SETUP_FAILED: return "CUFFT_SETUP_FAILED";
    case CUFFT_INVALID_SIZE: return "CUFFT_INVALID_SIZE";
    case CUFFT_UNALIGNED_DATA: return "CUFFT_UNALIGNED_DATA";
    case CUFFT_INVALID_DEVICE: return "CUFFT_INVALID_DEVICE";
    case CUFFT_NO_WORKSPACE: return "CUFFT_NO_WORKSPACE";
    case CUFFT_NOT_IMPLEMENTED: return "CUFFT_NOT_IMPLEMENTED";
    case CUFFT_NOT_SUPPORTED: return "CUFFT_NOT_SUPPORTED";
    case CUFFT_MISSING_DEPENDENCY: return "CUFFT_MISSING_DEPENDENCY";
    default: return "cuFFT error";
  }
}

static em_status cufft_fail(cufftResult r, const char *name, const char *what,
                            cufftType type, long long n, long long rows) {
  em_status st = r == CUFFT_ALLOC_FAILED ? EM_ERR_OOM
                 : (r == CUFFT_INVALID_SIZE || r == CUFFT_NOT_SUPPORTED ||
                    r == CUFFT_NOT_IMPLEMENTED)
                     ? EM_ERR_UNSUPPORTED
                     : EM_ERR_RUNTIME;
  const char *tn = type == CUFFT_C2C ? "c64" : type == CUFFT_Z2Z ? "c128"
                   : type == CUFFT_R2C ? "f32 -> c64" : type == CUFFT_D2Z ? "f64 -> c128"
                   : type == CUFFT_C2R ? "c64 -> f32" : "c128 -> f64";
  return em_fail(st, "[%s] cuFFT %s: %s (%s, length %lld, %lld rows)", name, what,
                 cufft_str(r), tn, n, rows);
}

/* ---- the plan cache ----------------------------------------------------------------- */

typedef struct {
  bool used, busy;
  int dev;
  cufftType type;
  long long n, rows;
  cufftHandle h;
  size_t ws;
  uint64_t stamp;
} plan_entry;

static plan_entry g_plans[PLAN_CACHE_N];
static uint64_t g_clock;
static pthread_mutex_t g_plans_m = PTHREAD_MUTEX_INITIALIZER;

static void plan_destroy(int dev, cufftHandle h) {
  (void)em_cu_enter(dev);
  (void)cufftDestroy(h);
  (void)cudaGetLastError();
}

/* An idle cached plan of the key, marked busy (slot >= 0), or a new one
 * (cached if there is room or an idle plan to evict, else slot -1). */
static em_status plan_acquire(int dev, cufftType type, long long n,
                              long long rows, const char *name, cufftHandle *h,
                              size_t *ws, int *slot) {
  pthread_mutex_lock(&g_plans_m);
  for (int i = 0; i < PLAN_CACHE_N; i++) {
    plan_entry *e = &g_plans[i];
    if (e->used && !e->busy && e->dev == dev && e->type == type && e->n == n &&
        e->rows == rows) {
      e->busy = true;
      e->stamp = ++g_clock;
      *h = e->h;
      *ws = e->ws;
      *slot = i;
      pthread_mutex_unlock(&g_plans_m);
      return EM_OK;
    }
  }
  pthread_mutex_unlock(&g_plans_m);

  (void)em_cu_enter(dev);
  cufftHandle nh;
  cufftResult r = cufftCreate(&nh);
  if (r != CUFFT_SUCCESS) return cufft_fail(r, name, "cufftCreate", type, n, rows);
  r = cufftSetAutoAllocation(nh, 0);
  long long m = n / 2 + 1;
  long long nn = n, ie = n, oe = n;
  if (type == CUFFT_R2C || type == CUFFT_D2Z) oe = m;
  if (type == CUFFT_C2R || type == CUFFT_Z2D) ie = m;
  size_t wsz = 0;
  if (r == CUFFT_SUCCESS)
    r = cufftMakePlanMany64(nh, 1, &nn, &ie, 1, ie, &oe, 1, oe, type, rows, &wsz);
  if (r != CUFFT_SUCCESS) {
    (void)cufftDestroy(nh);
    (void)cudaGetLastError();
    return cufft_fail(r, name, "cufftMakePlanMany64", type, n, rows);
  }
  *h = nh;
  *ws = wsz;
  *slot = -1;

  pthread_mutex_lock(&g_plans_m);
  plan_entry *slot_e = NULL;
  for (int i = 0; i < PLAN_CACHE_N && !slot_e; i++)
    if (!g_plans[i].used) slot_e = &g_plans[i];
  if (!slot_e) { /* evict the least recently used idle plan */
    for (int i = 0; i < PLAN_CACHE_N; i++) {
      plan_entry *e = &g_plans[i];
      if (!e->busy && (!slot_e || e->stamp < slot_e->stamp)) slot_e = e;
    }
    if (slot_e) {
      plan_destroy(slot_e->dev, slot_e->h);
      (void)em_cu_enter(dev);
    }
  }
  if (slot_e) {
    *slot_e = (plan_entry){.used = true,
                           .busy = true,
                           .dev = dev,
                           .type = type,
                           .n = n,
                           .rows = rows,
                           .h = nh,
                           .ws = wsz,
                           .stamp = ++g_clock};
    *slot = (int)(slot_e - g_plans);
  }
  pthread_mutex_unlock(&g_plans_m);
  return EM_OK;
}

static void plan_release(int dev, cufftHandle h, int slot) {
  if (slot < 0) {
    plan_destroy(dev, h);
    (void)em_cu_enter(dev);
    return;
  }
  pthread_mutex_lock(&g_plans_m);
  g_plans[slot].busy = false;
  pthread_mutex_unlock(&g_plans_m);
}

/* Runs rows transforms of length n from idata to odata on stream s. */
static em_status run_plan(int dev, cufftType type, long long n, long long rows,
                          void *idata, void *odata, int dir, cudaStream_t s,
                          const char *name) {
  cufftHandle h = 0;
  size_t wsz = 0;
  int slot = -1;
  em_status st = plan_acquire(dev, type, n, rows, name, &h, &wsz, &slot);
  if (st != EM_OK) return st;
  size_t wbytes = wsz > 0 ? wsz : 256;
  void *ws = em_cuda_alloc(dev, wbytes, &st);
  if (!ws) {
    plan_release(dev, h, slot);
    return st;
  }
  (void)em_cu_enter(dev);
  const char *what = "cufftSetWorkArea";
  cufftResult r = cufftSetWorkArea(h, ws);
  if (r == CUFFT_SUCCESS) {
    what = "cufftSetStream";
    r = cufftSetStream(h, s);
  }
  if (r == CUFFT_SUCCESS) {
    what = "exec";
    switch (type) {
      case CUFFT_C2C:
        r = cufftExecC2C(h, idata, odata, dir);
        break;
      case CUFFT_Z2Z:
        r = cufftExecZ2Z(h, idata, odata, dir);
        break;
      case CUFFT_R2C:
        r = cufftExecR2C(h, idata, odata);
        break;
      case CUFFT_D2Z:
        r = cufftExecD2Z(h, idata, odata);
        break;
      case CUFFT_C2R:
        r = cufftExecC2R(h, idata, odata);
        break;
      default:
        r = cufftExecZ2D(h, idata, odata);
        break;
    }
  }
  /* Freed blocks are reused in stream order (runtime.c), so the work area
   * can go back while the transform is queued. */
  em_cuda_free(dev, ws, wbytes);
  plan_release(dev, h, slot);
  if (r != CUFFT_SUCCESS) return cufft_fail(r, name, what, type, n, rows);
  return EM_OK;
}

/* ---- staging --------------------------------------------------------------------------- */

/* The gather of `in`'s rows (leading axes merged where they are one run). */
static void stage_params(const em_array *in, long long W, long long cnt,
                         long long R, em_cu_fft_stage *p) {
  memset(p, 0, sizeof *p);
  int k = 0;
  for (int i = 0; i < in->ndim - 1; i++) {
    long long sh = in->shape[i], stv = in->strides[i];
    if (sh == 1) continue;
    if (k > 0 && p->stride[k - 1] == stv * sh) {
      p->shape[k - 1] *= sh;
      p->stride[k - 1] = stv;
    } else {
      p->shape[k] = sh;
      p->stride[k] = stv;
      k++;
    }
  }
  p->nd = k;
  p->last_stride = in->ndim > 0 ? in->strides[in->ndim - 1] : 1;
  p->cnt = cnt;
  p->W = W;
  p->R = R;
  p->zero_a = p->zero_b = -1;
}

static em_status stage(int kind, const em_array *in, void *dst,
                       const em_cu_fft_stage *p, cudaStream_t s,
                       const char *name) {
  const void *src = in->size > 0 ? (const void *)em_array_ptr(in) : NULL;
  cudaError_t e = em_cu_fft_stage_launch(kind, src, dst, p,
                                         em_cu_device_props(in->dev.index)->sms, s);
  if (e != cudaSuccess) return em_cu_fail(e, name, "the FFT staging kernel");
  return EM_OK;
}

static em_status scale(bool dbl, void *x, long long count, long long n, int dev,
                       cudaStream_t s, const char *name) {
  cudaError_t e = em_cu_fft_scale_launch(dbl, x, count, 1.0 / (double)n,
                                         em_cu_device_props(dev)->sms, s);
  if (e != cudaSuccess) return em_cu_fail(e, name, "the FFT scaling kernel");
  return EM_OK;
}

/* ---- the kernels ------------------------------------------------------------------------ */

static long long min_ll(long long a, long long b) { return a < b ? a : b; }

static em_status fft_kernel(em_array *out, const em_node *node, int op) {
  const char *name = op == OP_R2C ? "rfft" : op == OP_C2R ? "irfft"
                     : node->p.fft.inverse ? "ifft" : "fft";
  const em_array *in = node->in[0];
  const em_dtype it = in->dtype, ot = out->dtype;
  bool dbl;
  if (op == OP_C2C && it == ot && (it == EM_C64 || it == EM_C128))
    dbl = it == EM_C128;
  else if (op == OP_R2C &&
           ((it == EM_F32 && ot == EM_C64) || (it == EM_F64 && ot == EM_C128)))
    dbl = it == EM_F64;
  else if (op == OP_C2R &&
           ((it == EM_C64 && ot == EM_F32) || (it == EM_C128 && ot == EM_F64)))
    dbl = it == EM_C128;
  else
    return em_fail(EM_ERR_UNSUPPORTED, "[%s] no CUDA kernel for %s -> %s", name,
                   em_dtype_name(it), em_dtype_name(ot));
  const long long n = node->p.fft.n;
  if (in->ndim < 1 || out->ndim != in->ndim || n < 1)
    return em_fail(EM_ERR_ARGUMENT, "[%s] bad node (rank %d, length %lld)", name,
                   in->ndim, n);
  em_status st = em_alloc_output(out);
  if (st != EM_OK || out->size == 0) return st;
  const int dev = out->dev.index;
  cudaStream_t s = em_cu_enter(dev);
  const long long L = in->size > 0 ? in->shape[in->ndim - 1] : 0;
  const long long Lo = out->shape[out->ndim - 1];
  const long long R = out->size / Lo;
  void *y = em_array_ptr(out);
  em_cu_fft_stage p;

  if (op == OP_C2C) {
    /* stage into the output, transform in place */
    stage_params(in, n, min_ll(L, n), R, &p);
    st = stage(dbl ? EM_CU_STAGE_C128 : EM_CU_STAGE_C64, in, y, &p, s, name);
    if (st != EM_OK || n == 1) return st;
    const bool inv = node->p.fft.inverse;
    st = run_plan(dev, dbl ? CUFFT_Z2Z : CUFFT_C2C, n, R, y, y,
                  inv ? CUFFT_INVERSE : CUFFT_FORWARD, s, name);
    if (st == EM_OK && inv) st = scale(dbl, y, 2 * R * n, n, dev, s, name);
    return st;
  }

  if (n == 1) { /* rfft: (x0, 0); irfft: Re(X0) */
    stage_params(in, 1, min_ll(L, 1), R, &p);
    int kind = op == OP_R2C ? (dbl ? EM_CU_STAGE_F64_C128 : EM_CU_STAGE_F32_C64)
                            : (dbl ? EM_CU_STAGE_C128_F64 : EM_CU_STAGE_C64_F32);
    return stage(kind, in, y, &p, s, name);
  }

  const long long m = n / 2 + 1;
  const long long W = op == OP_R2C ? n : m; /* scratch row length */
  const size_t es = op == OP_R2C ? (dbl ? 8 : 4) : (dbl ? 16 : 8);
  const size_t bytes = (size_t)(R * W) * es;
  void *tmp = em_cuda_alloc(dev, bytes, &st);
  if (!tmp) return st;
  if (op == OP_R2C) {
    stage_params(in, n, min_ll(L, n), R, &p);
    st = stage(dbl ? EM_CU_STAGE_F64 : EM_CU_STAGE_F32, in, tmp, &p, s, name);
    if (st == EM_OK)
      st = run_plan(dev, dbl ? CUFFT_D2Z : CUFFT_R2C, n, R, tmp, y, CUFFT_FORWARD,
                    s, name);
  } else {
    stage_params(in, m, min_ll(L, m), R, &p);
    p.zero_a = 0;
    p.zero_b = n % 2 == 0 ? n / 2 : -1;
    st = stage(dbl ? EM_CU_STAGE_C128 : EM_CU_STAGE_C64, in, tmp, &p, s, name);
    if (st == EM_OK)
      st = run_plan(dev, dbl ? CUFFT_Z2D : CUFFT_C2R, n, R, tmp, y, CUFFT_INVERSE,
                    s, name);
    if (st == EM_OK) st = scale(dbl, y, R * n, n, dev, s, name);
  }
  em_cuda_free(dev, tmp, bytes);
  return st;
}

em_status em_cu_k_fft(em_array *out, const em_node *node) {
  return fft_kernel(out, node, OP_C2C);
}
em_status em_cu_k_rfft(em_array *out, const em_node *node) {
  return fft_kernel(out, node, OP_R2C);
}
em_status em_cu_k_irfft(em_array *out, const em_node *node) {
  return fft_kernel(out, node, OP_C2R);
}
