/* alloc.c — the caching allocator, one per device.
 *
 * Sizes are rounded up to bins (powers of two with four steps each), freed
 * blocks go to a per-bin free list and are reused by the next request of
 * that bin: large temporaries then cost no page faults after the first
 * use. Every size computation is overflow-checked; a request past the
 * limit first drops the cache, then fails with EM_ERR_OOM. A test hook can
 * make the Nth allocation fail so the out-of-memory paths get exercised. */
#define _DEFAULT_SOURCE /* madvise */
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>

#include "array-impl.h"
#ifdef EMILY_HAVE_CUDA
#include "../cuda/cuda-api.h"
#endif

#define NBINS 256
#define HUGE_ALIGN ((size_t)2 << 20)
#define HUGE_MIN ((size_t)4 << 20)
#define MAX_DEVICES 17 /* CPU + 16 CUDA devices */

typedef struct block {
  struct block *next;
} block;

typedef struct {
  pthread_mutex_t m;
  block *free_list[NBINS];
  size_t active, peak, cached, limit;
  uint64_t allocs, hits;
  long fail_after; /* <0: off; else count down and fail at 0 */
} dev_alloc;

static dev_alloc allocs[MAX_DEVICES];
static pthread_once_t allocs_once = PTHREAD_ONCE_INIT;

static void allocs_init(void) {
  for (int i = 0; i < MAX_DEVICES; i++) {
    pthread_mutex_init(&allocs[i].m, NULL);
    allocs[i].fail_after = -1;
  }
}

static dev_alloc *dev_of(em_device d) {
  pthread_once(&allocs_once, allocs_init);
  if (d.type == EM_DEVICE_CPU) return &allocs[0];
  /* Checked before adding: 1 + INT_MAX would overflow; unknown types are
   * no device at all. */
  if (d.type != EM_DEVICE_CUDA || d.index < 0 || d.index >= MAX_DEVICES - 1)
    return NULL;
  return &allocs[1 + d.index];
}

/* Bin of a size: 256 B minimum; then 4 steps per power of two. */
static int bin_of(size_t n, size_t *binsize) {
  if (n <= 256) {
    *binsize = 256;
    return 0;
  }
  int lg = 63 - __builtin_clzll((unsigned long long)(n - 1)); /* 2^lg < n */
  size_t base = (size_t)1 << lg, step = base / 4;
  size_t k = (n - base + step - 1) / step; /* 1..4 */
  *binsize = base + k * step;
  int b = (lg - 8) * 4 + (int)k;
  return b < NBINS ? b : -1;
}

static void drop_cache_locked(dev_alloc *a) {
  for (int b = 0; b < NBINS; b++) {
    block *p = a->free_list[b];
    while (p) {
      block *nx = p->next;
      free(p);
      p = nx;
    }
    a->free_list[b] = NULL;
  }
  a->cached = 0;
}

void *em_alloc(em_device dev, size_t nbytes, em_status *st) {
#ifdef EMILY_HAVE_CUDA
  if (dev.type == EM_DEVICE_CUDA) return em_cuda_alloc(dev.index, nbytes, st);
#endif
  dev_alloc *a = dev_of(dev);
  if (!a || dev.type != EM_DEVICE_CPU) {
    *st = em_fail(EM_ERR_UNSUPPORTED, "[alloc] no allocator for device %d:%d",
                  (int)dev.type, dev.index);
    return NULL;
  }
  size_t binsize;
  int b = bin_of(nbytes, &binsize);
  if (b < 0 || binsize > SIZE_MAX / 2) {
    *st = em_fail(EM_ERR_OOM, "[alloc] request of %zu bytes is too large",
                  nbytes);
    return NULL;
  }
  pthread_mutex_lock(&a->m);
  if (a->fail_after >= 0 && a->fail_after-- == 0) {
    pthread_mutex_unlock(&a->m);
    *st = em_fail(EM_ERR_OOM, "[alloc] injected failure for %zu bytes",
                  nbytes);
    return NULL;
  }
  /* The limit bounds active bytes, so it applies to a cached block too. */
  if (a->limit && a->active + binsize > a->limit) {
    size_t act = a->active, lim = a->limit;
    pthread_mutex_unlock(&a->m);
    *st = em_fail(EM_ERR_OOM,
                  "[alloc] %zu bytes would pass the memory limit (%zu of "
                  "%zu bytes active)",
                  nbytes, act, lim);
    return NULL;
  }
  a->allocs++;
  void *p = a->free_list[b];
  if (p) {
    a->free_list[b] = ((block *)p)->next;
    a->cached -= binsize;
    a->hits++;
  } else {
    if (a->limit && a->active + a->cached + binsize > a->limit)
      drop_cache_locked(a);
    /* Large blocks are 2 MiB aligned and asked to use huge pages: fewer
     * TLB misses on big arrays (numpy gets the same from glibc). */
    size_t align = binsize >= HUGE_MIN ? HUGE_ALIGN : 64;
    size_t real = (binsize + align - 1) & ~(align - 1); /* C11 wants a multiple */
    p = aligned_alloc(align, real);
    if (!p) {
      drop_cache_locked(a);
      p = aligned_alloc(align, real);
    }
#ifdef MADV_HUGEPAGE
    if (p && align == HUGE_ALIGN) (void)madvise(p, real, MADV_HUGEPAGE);
#endif
    if (!p) {
      pthread_mutex_unlock(&a->m);
      *st = em_fail(EM_ERR_OOM, "[alloc] out of host memory for %zu bytes",
                    nbytes);
      return NULL;
    }
  }
  a->active += binsize;
  if (a->active > a->peak) a->peak = a->active;
  pthread_mutex_unlock(&a->m);
  *st = EM_OK;
  return p;
}

void em_free(em_device dev, void *p, size_t nbytes) {
  if (!p) return;
#ifdef EMILY_HAVE_CUDA
  if (dev.type == EM_DEVICE_CUDA) {
    em_cuda_free(dev.index, p, nbytes);
    return;
  }
#endif
  dev_alloc *a = dev_of(dev);
  size_t binsize;
  int b = bin_of(nbytes, &binsize);
  pthread_mutex_lock(&a->m);
  a->active -= binsize;
  if (a->limit && a->active + a->cached + binsize > a->limit) {
    free(p); /* keep the cache inside the limit */
  } else {
    ((block *)p)->next = a->free_list[b];
    a->free_list[b] = p;
    a->cached += binsize;
  }
  pthread_mutex_unlock(&a->m);
}

em_status em_memory_stats_get(em_device dev, em_memory_stats *out) {
#ifdef EMILY_HAVE_CUDA
  if (dev.type == EM_DEVICE_CUDA) return em_cuda_memory_stats(dev.index, out);
#endif
  dev_alloc *a = dev_of(dev);
  if (!a || !out)
    return em_fail(EM_ERR_ARGUMENT, "[memory_stats] unknown device");
  pthread_mutex_lock(&a->m);
  *out = (em_memory_stats){a->active, a->peak, a->cached, a->limit,
                           a->allocs, a->hits};
  pthread_mutex_unlock(&a->m);
  return EM_OK;
}

void em_memory_reset_peak(em_device dev) {
#ifdef EMILY_HAVE_CUDA
  if (dev.type == EM_DEVICE_CUDA) {
    em_cuda_memory_reset_peak(dev.index);
    return;
  }
#endif
  dev_alloc *a = dev_of(dev);
  if (!a) return;
  pthread_mutex_lock(&a->m);
  a->peak = a->active;
  pthread_mutex_unlock(&a->m);
}

void em_memory_clear_cache(em_device dev) {
#ifdef EMILY_HAVE_CUDA
  if (dev.type == EM_DEVICE_CUDA) {
    em_cuda_memory_clear_cache(dev.index);
    return;
  }
#endif
  dev_alloc *a = dev_of(dev);
  if (!a) return;
  pthread_mutex_lock(&a->m);
  drop_cache_locked(a);
  pthread_mutex_unlock(&a->m);
}

void em_memory_set_limit(em_device dev, size_t bytes) {
#ifdef EMILY_HAVE_CUDA
  if (dev.type == EM_DEVICE_CUDA) {
    em_cuda_memory_set_limit(dev.index, bytes);
    return;
  }
#endif
  dev_alloc *a = dev_of(dev);
  if (!a) return;
  pthread_mutex_lock(&a->m);
  a->limit = bytes;
  pthread_mutex_unlock(&a->m);
}

void em_memory_fail_after(em_device dev, long n) {
#ifdef EMILY_HAVE_CUDA
  if (dev.type == EM_DEVICE_CUDA) {
    em_cuda_memory_fail_after(dev.index, n);
    return;
  }
#endif
  dev_alloc *a = dev_of(dev);
  if (!a) return;
  pthread_mutex_lock(&a->m);
  a->fail_after = n;
  pthread_mutex_unlock(&a->m);
}
