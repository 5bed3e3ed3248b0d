/* runtime.c — the CUDA backend's runtime: devices, the thread's current
 * stream, the caching allocator of device memory, host <-> device copies
 * through pinned staging, and the hooks the core calls (cuda-api.h).
 *
 * Streams and memory reuse: blocks freed by a stream worker while its task
 * runs may still be read by kernels queued on its CUDA stream, so they are
 * tagged with that stream and only it reuses them (stream order makes that
 * safe) until the task ends with a synchronize, which returns them to
 * everybody. Threads without a bound stream launch on the legacy default
 * stream, which is ordered with all (blocking) streams, so what they free
 * is safe for everybody at once. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cpu/subbyte.h"
#include "cuda-impl.h"

#define MAX_CU 16
#define NBINS 256

/* ---- errors -------------------------------------------------------------- */

em_status em_cu_fail(cudaError_t e, const char *op, const char *what) {
  (void)cudaGetLastError(); /* clear a non-sticky error */
  em_status st = e == cudaErrorMemoryAllocation ? EM_ERR_OOM : EM_ERR_RUNTIME;
  return em_fail(st, "[%s] CUDA error in %s: %s (%s)", op, what,
                 cudaGetErrorString(e), cudaGetErrorName(e));
}

/* ---- devices ------------------------------------------------------------- */

static int g_count;
static pthread_once_t g_count_once = PTHREAD_ONCE_INIT;
static void count_init(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    n = 0;
    (void)cudaGetLastError();
  }
  g_count = n < 0 ? 0 : n > MAX_CU ? MAX_CU : n;
}
int em_cuda_device_count(void) {
  pthread_once(&g_count_once, count_init);
  return g_count;
}

static em_cu_props g_props[MAX_CU];
static bool g_props_ok[MAX_CU];
static pthread_mutex_t g_props_m = PTHREAD_MUTEX_INITIALIZER;

const em_cu_props *em_cu_device_props(int dev) {
  static const em_cu_props none = {132, 9, 0, 0, "none"};
  if (dev < 0 || dev >= em_cuda_device_count()) return &none;
  pthread_mutex_lock(&g_props_m);
  if (!g_props_ok[dev]) {
    struct cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, dev) == cudaSuccess) {
      g_props[dev].sms = p.multiProcessorCount;
      g_props[dev].major = p.major;
      g_props[dev].minor = p.minor;
      g_props[dev].total_mem = p.totalGlobalMem;
      snprintf(g_props[dev].name, sizeof g_props[dev].name, "%s", p.name);
    } else {
      (void)cudaGetLastError();
      g_props[dev] = none;
    }
    g_props_ok[dev] = true;
  }
  pthread_mutex_unlock(&g_props_m);
  return &g_props[dev];
}

/* ---- the thread's stream -------------------------------------------------- */

typedef struct {
  int dev;
  cudaStream_t s;
  atomic_int refs;             /* the engine stream, and each buffer it wrote */
  atomic_uint_fast64_t done;   /* tasks finished (synchronized) */
  pthread_mutex_t m;           /* a waiter's synchronize vs. destroy */
  bool dead;                   /* s destroyed (under m) */
} cu_stream;

static _Thread_local cu_stream *tl_bound = NULL;
static _Thread_local int tl_dev = -1;

/* tl_dev caches the device this thread last made current; the runtime's
 * own current device is checked too (cheap: thread-local state), so code
 * outside the engine that calls cudaSetDevice on this thread cannot leave
 * us launching or allocating on the wrong device. */
cudaStream_t em_cu_enter(int dev) {
  int cur = -1;
  if (tl_dev != dev || cudaGetDevice(&cur) != cudaSuccess || cur != dev) {
    if (cudaSetDevice(dev) == cudaSuccess) {
      tl_dev = dev;
    } else {
      (void)cudaGetLastError();
      tl_dev = -1;
    }
  }
  return tl_bound && tl_bound->dev == dev ? tl_bound->s : (cudaStream_t)0;
}

/* ---- the allocator ------------------------------------------------------- */

typedef struct cblk {
  struct cblk *next;
  void *p;
  void *owner; /* cu_stream that freed it while its task runs, or NULL */
} cblk;

typedef struct {
  pthread_mutex_t m;
  cblk *free_list[NBINS];
  size_t active, peak, cached, limit;
  uint64_t allocs, hits;
  long fail_after;
} cu_alloc;

static cu_alloc g_alloc[MAX_CU];
static pthread_once_t g_alloc_once = PTHREAD_ONCE_INIT;
static void alloc_init(void) {
  for (int i = 0; i < MAX_CU; i++) {
    pthread_mutex_init(&g_alloc[i].m, NULL);
    g_alloc[i].fail_after = -1;
  }
}
static cu_alloc *alloc_of(int dev) {
  pthread_once(&g_alloc_once, alloc_init);
  return dev >= 0 && dev < MAX_CU ? &g_alloc[dev] : NULL;
}

/* Same bins as the CPU allocator (alloc.c): 256 B, then four per power of
 * two. */
static int bin_of(size_t n, size_t *binsize) {
  if (n <= 256) {
    *binsize = 256;
    return 0;
  }
  int lg = 63 - __builtin_clzll((unsigned long long)(n - 1));
  size_t base = (size_t)1 << lg, step = base / 4;
  size_t k = (n - base + step - 1) / step;
  *binsize = base + k * step;
  int b = (lg - 8) * 4 + (int)k;
  return b < NBINS ? b : -1;
}

static void drop_cache_locked(cu_alloc *a, int dev) {
  (void)em_cu_enter(dev);
  for (int b = 0; b < NBINS; b++) {
    cblk *p = a->free_list[b];
    while (p) {
      cblk *nx = p->next;
      (void)cudaFree(p->p); /* synchronizes with work still using it */
      free(p);
      p = nx;
    }
    a->free_list[b] = NULL;
  }
  (void)cudaGetLastError();
  a->cached = 0;
}

void *em_cuda_alloc(int dev, size_t nbytes, em_status *st) {
  cu_alloc *a = alloc_of(dev);
  if (!a || dev >= em_cuda_device_count()) {
    *st = em_fail(EM_ERR_ARGUMENT, "[alloc] no CUDA device %d", dev);
    return NULL;
  }
  size_t binsize;
  int b = bin_of(nbytes, &binsize);
  if (b < 0 || binsize > SIZE_MAX / 2) {
    *st = em_fail(EM_ERR_OOM, "[alloc] request of %zu bytes is too large",
                  nbytes);
    return NULL;
  }
  void *owner = tl_bound;
  pthread_mutex_lock(&a->m);
  if (a->fail_after >= 0 && a->fail_after-- == 0) {
    pthread_mutex_unlock(&a->m);
    *st = em_fail(EM_ERR_OOM, "[alloc] injected failure for %zu bytes on cuda:%d",
                  nbytes, dev);
    return NULL;
  }
  /* The limit bounds active bytes, so it applies to a cached block too. */
  if (a->limit && a->active + binsize > a->limit) {
    size_t act = a->active, lim = a->limit;
    pthread_mutex_unlock(&a->m);
    *st = em_fail(EM_ERR_OOM,
                  "[alloc] %zu bytes on cuda:%d would pass the memory limit "
                  "(%zu of %zu bytes active)",
                  nbytes, dev, act, lim);
    return NULL;
  }
  a->allocs++;
  void *p = NULL;
  for (cblk **pp = &a->free_list[b]; *pp; pp = &(*pp)->next) {
    cblk *c = *pp;
    if (c->owner == NULL || c->owner == owner) {
      *pp = c->next;
      p = c->p;
      free(c);
      a->cached -= binsize;
      a->hits++;
      break;
    }
  }
  if (!p) {
    if (a->limit && a->active + a->cached + binsize > a->limit)
      drop_cache_locked(a, dev);
    (void)em_cu_enter(dev);
    cudaError_t e = cudaMalloc(&p, binsize);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      drop_cache_locked(a, dev);
      e = cudaMalloc(&p, binsize);
    }
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      size_t fr = 0, tot = 0;
      if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) (void)cudaGetLastError();
      pthread_mutex_unlock(&a->m);
      *st = em_fail(EM_ERR_OOM,
                    "[alloc] out of memory on cuda:%d for %zu bytes (%zu of "
                    "%zu bytes free: %s)",
                    dev, nbytes, fr, tot, cudaGetErrorString(e));
      return NULL;
    }
  }
  a->active += binsize;
  if (a->active > a->peak) a->peak = a->active;
  pthread_mutex_unlock(&a->m);
  *st = EM_OK;
  return p;
}

void em_cuda_free(int dev, void *p, size_t nbytes) {
  cu_alloc *a = alloc_of(dev);
  if (!p || !a) return;
  size_t binsize;
  int b = bin_of(nbytes, &binsize);
  cblk *c = malloc(sizeof *c);
  pthread_mutex_lock(&a->m);
  a->active -= binsize;
  if (!c || b < 0 || (a->limit && a->active + a->cached + binsize > a->limit)) {
    (void)em_cu_enter(dev);
    (void)cudaFree(p);
    (void)cudaGetLastError();
    free(c);
  } else {
    c->p = p;
    c->owner = tl_bound;
    c->next = a->free_list[b];
    a->free_list[b] = c;
    a->cached += binsize;
  }
  pthread_mutex_unlock(&a->m);
}

/* A stream's task ended (synchronized): its freed blocks are free for all. */
static void release_owner(void *owner) {
  for (int d = 0; d < em_cuda_device_count(); d++) {
    cu_alloc *a = alloc_of(d);
    pthread_mutex_lock(&a->m);
    for (int b = 0; b < NBINS; b++)
      for (cblk *c = a->free_list[b]; c; c = c->next)
        if (c->owner == owner) c->owner = NULL;
    pthread_mutex_unlock(&a->m);
  }
}

em_status em_cuda_memory_stats(int dev, em_memory_stats *out) {
  cu_alloc *a = alloc_of(dev);
  if (!a || !out || dev >= em_cuda_device_count())
    return em_fail(EM_ERR_ARGUMENT, "[memory_stats] no CUDA device %d", dev);
  pthread_mutex_lock(&a->m);
  *out = (em_memory_stats){a->active, a->peak, a->cached, a->limit,
                           a->allocs, a->hits};
  pthread_mutex_unlock(&a->m);
  return EM_OK;
}

void em_cuda_memory_reset_peak(int dev) {
  cu_alloc *a = alloc_of(dev);
  if (!a) return;
  pthread_mutex_lock(&a->m);
  a->peak = a->active;
  pthread_mutex_unlock(&a->m);
}

void em_cuda_memory_clear_cache(int dev) {
  cu_alloc *a = alloc_of(dev);
  if (!a || dev >= em_cuda_device_count()) return;
  pthread_mutex_lock(&a->m);
  drop_cache_locked(a, dev);
  pthread_mutex_unlock(&a->m);
}

void em_cuda_memory_set_limit(int dev, size_t bytes) {
  cu_alloc *a = alloc_of(dev);
  if (!a) return;
  pthread_mutex_lock(&a->m);
  a->limit = bytes;
  pthread_mutex_unlock(&a->m);
}

void em_cuda_memory_fail_after(int dev, long n) {
  cu_alloc *a = alloc_of(dev);
  if (!a) return;
  pthread_mutex_lock(&a->m);
  a->fail_after = n;
  pthread_mutex_unlock(&a->m);
}

/* ---- streams --------------------------------------------------------------- */

em_status em_cuda_stream_create(int dev, void **out) {
  *out = NULL;
  if (dev < 0 || dev >= em_cuda_device_count())
    return em_fail(EM_ERR_ARGUMENT, "[stream_new] device cuda:%d is not available",
                   dev);
  cu_stream *cs = calloc(1, sizeof *cs);
  if (!cs) return em_fail(EM_ERR_OOM, "[stream_new] out of host memory");
  cs->dev = dev;
  atomic_init(&cs->refs, 1);
  atomic_init(&cs->done, 0);
  (void)em_cu_enter(dev);
  cudaError_t e = cudaStreamCreate(&cs->s); /* blocking: ordered with legacy */
  if (e == cudaSuccess && pthread_mutex_init(&cs->m, NULL) != 0) {
    (void)cudaStreamDestroy(cs->s);
    free(cs);
    return em_fail(EM_ERR_RUNTIME, "[stream_new] pthread_mutex_init failed");
  }
  if (e != cudaSuccess) {
    free(cs);
    return em_cu_fail(e, "stream_new", "cudaStreamCreate");
  }
  *out = cs;
  return EM_OK;
}

void em_cuda_thread_bind(void *p) {
  cu_stream *cs = p;
  tl_bound = cs;
  if (cs) (void)em_cu_enter(cs->dev);
}

em_status em_cuda_stream_end_task(void *p) {
  cu_stream *cs = p;
  (void)em_cu_enter(cs->dev);
  cudaError_t e = cudaStreamSynchronize(cs->s);
  atomic_fetch_add(&cs->done, 1);
  release_owner(cs);
  if (e != cudaSuccess) return em_cu_fail(e, "eval", "a kernel on the stream");
  return EM_OK;
}

void *em_cuda_producer(uint64_t *ticket) {
  cu_stream *cs = tl_bound;
  *ticket = 0;
  if (!cs) return NULL;
  atomic_fetch_add(&cs->refs, 1);
  *ticket = (uint64_t)atomic_load(&cs->done) + 1; /* tasks run one at a time */
  return cs;
}

void em_cuda_producer_release(void *p) {
  cu_stream *cs = p;
  if (cs && atomic_fetch_sub(&cs->refs, 1) == 1) {
    pthread_mutex_destroy(&cs->m);
    free(cs);
  }
}

void em_cuda_wait_producer(void *p, uint64_t ticket) {
  cu_stream *cs = p;
  if (!cs || cs == tl_bound || (uint64_t)atomic_load(&cs->done) >= ticket) return;
  pthread_mutex_lock(&cs->m);
  if (!cs->dead && (uint64_t)atomic_load(&cs->done) < ticket &&
      cudaStreamSynchronize(cs->s) != cudaSuccess)
    (void)cudaGetLastError(); /* the producer's own task reports it */
  pthread_mutex_unlock(&cs->m);
}

void em_cuda_stream_destroy(void *p) {
  cu_stream *cs = p;
  if (!cs) return;
  (void)em_cu_enter(cs->dev);
  (void)cudaStreamSynchronize(cs->s);
  release_owner(cs);
  pthread_mutex_lock(&cs->m);
  atomic_store(&cs->done, UINT64_MAX); /* every ticket is finished */
  (void)cudaStreamDestroy(cs->s);
  cs->dead = true;
  pthread_mutex_unlock(&cs->m);
  (void)cudaGetLastError();
  if (tl_bound == cs) tl_bound = NULL;
  em_cuda_producer_release(cs); /* buffers it wrote may still hold it */
}

void em_cuda_after_waits(em_array *const *arrays, size_t n) {
  bool synced[MAX_CU] = {false};
  for (size_t i = 0; i < n; i++) {
    const em_array *a = arrays[i];
    if (a->dev.type != EM_DEVICE_CUDA || a->dev.index < 0 ||
        a->dev.index >= MAX_CU || synced[a->dev.index])
      continue;
    synced[a->dev.index] = true;
    (void)em_cu_enter(a->dev.index);
    if (cudaDeviceSynchronize() != cudaSuccess) (void)cudaGetLastError();
  }
}

/* ---- host <-> device --------------------------------------------------------- */

#define STAGE_BYTES ((size_t)8 << 20) /* per buffer; two per device */
#define DIRECT_BYTES ((size_t)256 << 10)

typedef struct {
  pthread_mutex_t m;
  bool ready, failed;
  void *pin[2];
  cudaEvent_t ev[2];
} stage;
static stage g_stage[MAX_CU];
static pthread_once_t g_stage_once = PTHREAD_ONCE_INIT;
static void stage_init(void) {
  for (int i = 0; i < MAX_CU; i++) pthread_mutex_init(&g_stage[i].m, NULL);
}

/* Locks and returns the device's staging buffers, or NULL (then copies go
 * straight from pageable memory). */
static stage *stage_get(int dev) {
  pthread_once(&g_stage_once, stage_init);
  stage *g = &g_stage[dev];
  pthread_mutex_lock(&g->m);
  if (!g->ready && !g->failed) {
    bool ok = true;
    for (int k = 0; k < 2 && ok; k++) {
      ok = cudaMallocHost(&g->pin[k], STAGE_BYTES) == cudaSuccess &&
           cudaEventCreateWithFlags(&g->ev[k], cudaEventDisableTiming) ==
               cudaSuccess;
    }
    if (!ok) {
      (void)cudaGetLastError();
      g->failed = true;
    } else {
      g->ready = true;
    }
  }
  if (g->ready) return g;
  pthread_mutex_unlock(&g->m);
  return NULL;
}

em_status em_cuda_upload(int dev, void *dst, const void *src, size_t n) {
  if (n == 0) return EM_OK;
  cudaStream_t s = em_cu_enter(dev);
  stage *g = n > DIRECT_BYTES ? stage_get(dev) : NULL;
  if (!g) {
    CU_TRY("from_data", cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, s));
    CU_TRY("from_data", cudaStreamSynchronize(s));
    return EM_OK;
  }
  cudaError_t e = cudaSuccess;
  int k = 0;
  for (size_t off = 0; off < n && e == cudaSuccess; off += STAGE_BYTES, k ^= 1) {
    size_t len = n - off < STAGE_BYTES ? n - off : STAGE_BYTES;
    e = cudaEventSynchronize(g->ev[k]); /* its last copy is done */
    if (e != cudaSuccess) break;
    memcpy(g->pin[k], (const char *)src + off, len);
    e = cudaMemcpyAsync((char *)dst + off, g->pin[k], len,
                        cudaMemcpyHostToDevice, s);
    if (e == cudaSuccess) e = cudaEventRecord(g->ev[k], s);
  }
  if (e == cudaSuccess) e = cudaStreamSynchronize(s);
  pthread_mutex_unlock(&g->m);
  if (e != cudaSuccess) return em_cu_fail(e, "from_data", "host to device copy");
  return EM_OK;
}

em_status em_cu_download(int dev, void *dst, const void *src, size_t n,
                         cudaStream_t s) {
  if (n == 0) return EM_OK;
  stage *g = n > DIRECT_BYTES ? stage_get(dev) : NULL;
  if (!g) {
    CU_TRY("to_host", cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, s));
    CU_TRY("to_host", cudaStreamSynchronize(s));
    return EM_OK;
  }
  size_t nch = (n + STAGE_BYTES - 1) / STAGE_BYTES;
  cudaError_t e = cudaSuccess;
#define ISSUE(i)                                                             \
  do {                                                                       \
    size_t o_ = (size_t)(i) * STAGE_BYTES;                                   \
    size_t l_ = n - o_ < STAGE_BYTES ? n - o_ : STAGE_BYTES;                 \
    e = cudaMemcpyAsync(g->pin[(i) & 1], (const char *)src + o_, l_,         \
                        cudaMemcpyDeviceToHost, s);                          \
    if (e == cudaSuccess) e = cudaEventRecord(g->ev[(i) & 1], s);            \
  } while (0)
  ISSUE(0);
  for (size_t i = 0; i < nch && e == cudaSuccess; i++) {
    if (i + 1 < nch) ISSUE(i + 1);
    if (e != cudaSuccess) break;
    e = cudaEventSynchronize(g->ev[i & 1]);
    if (e != cudaSuccess) break;
    size_t o = i * STAGE_BYTES, l = n - o < STAGE_BYTES ? n - o : STAGE_BYTES;
    memcpy((char *)dst + o, g->pin[i & 1], l);
  }
#undef ISSUE
  if (e != cudaSuccess) (void)cudaStreamSynchronize(s);
  pthread_mutex_unlock(&g->m);
  if (e != cudaSuccess) return em_cu_fail(e, "to_host", "device to host copy");
  return EM_OK;
}

/* The host layout: row-major, and for s2..u4 packed (em_array_nbytes
 * bytes, through a host buffer of one byte per element). */
em_status em_cuda_download_array(em_array *a, void *dst) {
  if (!em_cu_dtype_storable(a->dtype))
    return em_fail(EM_ERR_UNSUPPORTED, "[to_host] %s arrays are not supported on CUDA",
                   em_dtype_name(a->dtype));
  int dev = a->dev.index;
  cudaStream_t s = em_cu_enter(dev);
  size_t n = (size_t)a->size * em_dtype_size(a->dtype);
  if (n == 0) return EM_OK;
  if (a->buf) em_cuda_wait_producer(a->buf->cu_prod, a->buf->cu_ticket);
  em_array *c = NULL;
  em_status st = em_contiguous(a, &c);
  if (st != EM_OK) return st;
  if (em_dtype_is_subbyte(a->dtype)) {
    void *tmp = malloc(n);
    if (!tmp) st = em_fail(EM_ERR_OOM, "[to_host] out of host memory");
    else st = em_cu_download(dev, tmp, em_array_ptr(c), n, s);
    if (st == EM_OK) em_subbyte_pack(a->dtype, tmp, dst, a->size);
    free(tmp);
  } else {
    st = em_cu_download(dev, dst, em_array_ptr(c), n, s);
  }
  em_array_release(c);
  return st;
}

em_status em_cu_read_index(const em_array *a, int64_t *v) {
  unsigned char b[8] = {0};
  size_t es = em_dtype_size(a->dtype);
  cudaStream_t s = em_cu_enter(a->dev.index);
  CU_TRY("index", cudaMemcpyAsync(b, em_array_ptr(a), es, cudaMemcpyDeviceToHost, s));
  CU_TRY("index", cudaStreamSynchronize(s));
  switch (a->dtype) {
    case EM_U8: *v = b[0]; break;
    case EM_U16: { uint16_t x; memcpy(&x, b, 2); *v = x; break; }
    case EM_U32: { uint32_t x; memcpy(&x, b, 4); *v = x; break; }
    case EM_U64: {
      uint64_t x;
      memcpy(&x, b, 8);
      *v = x > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)x;
      break;
    }
    case EM_S8: { int8_t x; memcpy(&x, b, 1); *v = x; break; }
    case EM_S16: { int16_t x; memcpy(&x, b, 2); *v = x; break; }
    case EM_S32: { int32_t x; memcpy(&x, b, 4); *v = x; break; }
    case EM_S64: { int64_t x; memcpy(&x, b, 8); *v = x; break; }
    case EM_S2: case EM_S4: { int8_t x; memcpy(&x, b, 1); *v = x; break; }
    case EM_U2: case EM_U4: *v = b[0]; break;
    default: *v = 0;
  }
  return EM_OK;
}

/* ---- device <-> device ------------------------------------------------------ */

/* Peer access between two devices, enabled once per direction where the
 * hardware allows it (NVLink / PCIe P2P): cudaMemcpyPeerAsync then copies
 * directly instead of staging through host memory. Where it is not
 * possible the copy still works, only slower. */
static pthread_mutex_t g_peer_m = PTHREAD_MUTEX_INITIALIZER;
static signed char g_peer[MAX_CU][MAX_CU]; /* 0 untried, 1 on, -1 not possible */

static void peer_enable_locked(int from, int to) {
  if (g_peer[from][to]) return;
  int can = 0;
  signed char r = -1;
  if (cudaDeviceCanAccessPeer(&can, from, to) == cudaSuccess && can) {
    (void)em_cu_enter(from);
    cudaError_t e = cudaDeviceEnablePeerAccess(to, 0);
    if (e == cudaSuccess || e == cudaErrorPeerAccessAlreadyEnabled) r = 1;
  }
  (void)cudaGetLastError(); /* AlreadyEnabled and friends are not sticky */
  g_peer[from][to] = r;
}

static void peer_enable(int a, int b) {
  if (a == b || a < 0 || b < 0 || a >= MAX_CU || b >= MAX_CU) return;
  pthread_mutex_lock(&g_peer_m);
  peer_enable_locked(a, b);
  peer_enable_locked(b, a);
  pthread_mutex_unlock(&g_peer_m);
}

/* n bytes from src (device sdev) to dst (device ddev), complete on return.
 * cudaMemcpyPeerAsync is ordered only within the stream it is given, not
 * with work on the other device, so the copy (queued on the destination's
 * stream for this thread) first waits for an event recorded on the
 * source's legacy default stream: that event completes after everything
 * issued on the source device so far, by any blocking stream — this
 * thread's strided copy just made, and kernels that another stream's
 * worker queued for an array it already marked DONE but has not yet
 * synchronized. On the destination, the legacy stream (or this worker's
 * own stream, for blocks it freed itself) orders the write after earlier
 * users of the freshly allocated block. */
static em_status peer_copy(void *dst, int ddev, const void *src, int sdev,
                           size_t n) {
  if (n == 0) return EM_OK;
  peer_enable(sdev, ddev);
  (void)em_cu_enter(sdev);
  cudaEvent_t ev = NULL;
  const char *what = "cudaEventCreateWithFlags";
  cudaError_t e = cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
  if (e == cudaSuccess) {
    what = "cudaEventRecord (source device)";
    e = cudaEventRecord(ev, cudaStreamLegacy);
  }
  cudaStream_t sd = em_cu_enter(ddev);
  if (e == cudaSuccess) {
    what = "cudaStreamWaitEvent";
    e = cudaStreamWaitEvent(sd, ev, 0);
  }
  if (e == cudaSuccess) {
    what = "cudaMemcpyPeerAsync";
    e = cudaMemcpyPeerAsync(dst, ddev, src, sdev, n, sd);
  }
  if (e == cudaSuccess) {
    what = "cudaStreamSynchronize";
    e = cudaStreamSynchronize(sd);
  }
  em_status st = EM_OK;
  if (e != cudaSuccess) {
    char buf[160];
    snprintf(buf, sizeof buf, "%s, %zu bytes from cuda:%d to cuda:%d", what, n,
             sdev, ddev);
    st = em_cu_fail(e, "copy_to_device", buf);
  }
  if (ev) {
    (void)em_cu_enter(sdev);
    (void)cudaEventDestroy(ev);
    (void)cudaGetLastError();
  }
  return st;
}

em_status em_cuda_transfer(em_array **out, em_array *a, em_device dev) {
  if (!em_cu_dtype_storable(a->dtype))
    return em_fail(EM_ERR_UNSUPPORTED,
                   "[copy_to_device] %s arrays are not supported on CUDA",
                   em_dtype_name(a->dtype));
  if (a->dev.type == EM_DEVICE_CUDA && dev.type == EM_DEVICE_CUDA) {
    em_array *c = NULL;
    (void)em_cu_enter(a->dev.index);
    em_status st = em_contiguous(a, &c);
    if (st != EM_OK) return st;
    em_array *o = em_array_alloc(a->dtype, a->ndim, a->shape, dev);
    if (!o) {
      em_array_release(c);
      return em_fail(EM_ERR_OOM, "[copy_to_device] out of host memory");
    }
    st = em_alloc_output(o);
    if (st == EM_OK)
      st = peer_copy(em_array_ptr(o), dev.index, em_array_ptr(c), a->dev.index,
                     (size_t)a->size * em_dtype_size(a->dtype));
    em_array_release(c);
    if (st != EM_OK) {
      em_array_release(o);
      return st;
    }
    o->state = EM_STATE_DONE;
    *out = o;
    return EM_OK;
  }
  /* Through host memory: em_array_data gives the host layout (row-major,
   * s2..u4 packed; downloaded once and cached for a CUDA source). */
  const void *p = em_array_data(a);
  if (!p) return EM_ERR_RUNTIME;
  return em_array_from_data(out, a->dtype, a->ndim, a->shape, p,
                            em_array_nbytes(a), dev);
}
