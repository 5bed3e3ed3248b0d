/* parallel.c — a fixed pool of worker threads for em_parallel_for.
 * Work is handed out as one job at a time (a mutex serialises jobs from
 * different streams); chunks are claimed with an atomic counter, so a
 * busy or slow thread never holds others up. Nested calls (from inside a
 * chunk) run inline: the pool is never re-entered.
 *
 * Waking a sleeping thread through a futex takes tens of microseconds on
 * a VM, longer than a whole 4 MiB reduction. So a worker spins for
 * SPIN_NS (EMILY_SPIN_US overrides) after each job, watching for the next
 * one, before it sleeps on the condition variable, and the caller spins
 * as long for the workers to finish (OpenMP runtimes do the same). A job
 * is published by bumping an atomic generation; the mutex and broadcast
 * are needed only when some worker has gone to sleep. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "parallel.h"

#include "emily.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

/* How long an idle thread keeps spinning before it sleeps; no spinning
 * when there are more threads than cores (EMILY_NUM_THREADS), where a
 * spinner would take the core a working thread needs. */
#define SPIN_NS 200000

typedef struct {
  em_range_fn fn;
  void *ctx;
  int64_t n, chunk, nchunks;
  atomic_int_fast64_t next;
  atomic_int remaining; /* workers still inside this job */
} job_t;

static struct {
  pthread_once_t once;
  int nthreads; /* including the caller */
  int64_t spin_ns;
  pthread_t *threads;
  pthread_mutex_t job_lock; /* one job at a time */
  pthread_mutex_t m;        /* guards the sleeps below */
  pthread_cond_t wake, done;
  _Atomic(job_t *) job;
  atomic_uint_fast64_t generation; /* bumped once per job */
  atomic_int sleepers;             /* workers asleep on `wake` */
} pool = {.once = PTHREAD_ONCE_INIT,
          .job_lock = PTHREAD_MUTEX_INITIALIZER,
          .m = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

static _Thread_local int in_pool_chunk = 0;
static void pool_init(void);

/* One step of a spin: a pause hint, and every 16th step a yield, so a
 * spinning thread gives its core to any other runnable thread (the BEAM's
 * schedulers, the thread the caller is waiting for) instead of holding
 * it: on 2 cores, two spinners that only paused made an eager Nx.add of
 * 100k f32 3x slower. */
static void spin_pause(unsigned i) {
  if ((i & 15) == 15) sched_yield();
  else CPU_RELAX();
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Spins until ready(arg), or for spin_ns; returns whether it got ready. */
static bool spin_until(bool (*ready)(const void *), const void *arg) {
  int64_t end = 0;
  for (unsigned i = 0;; i++) {
    if (ready(arg)) return true;
    if ((i & 63) == 0) {
      int64_t t = now_ns();
      if (!end) end = t + pool.spin_ns;
      else if (t >= end) return false;
    }
    spin_pause(i);
  }
}

static bool gen_moved(const void *seen) {
  return atomic_load_explicit(&pool.generation, memory_order_acquire) !=
         *(const uint64_t *)seen;
}

static bool job_done(const void *j) {
  return atomic_load_explicit(&((job_t *)j)->remaining,
                              memory_order_acquire) == 0;
}

static bool nonzero(const void *flag) {
  return atomic_load_explicit((atomic_int *)flag, memory_order_acquire) != 0;
}

bool em_spin_while_zero(atomic_int *flag) {
  pthread_once(&pool.once, pool_init);
  return spin_until(nonzero, flag);
}

static void run_chunks(job_t *j, int tid) {
  in_pool_chunk = 1;
  for (;;) {
    int64_t c = atomic_fetch_add(&j->next, 1);
    if (c >= j->nchunks) break;
    int64_t b = c * j->chunk, e = b + j->chunk;
    if (e > j->n) e = j->n;
    j->fn(j->ctx, b, e, tid);
  }
  in_pool_chunk = 0;
}

static void *worker_main(void *arg) {
  int tid = (int)(intptr_t)arg;
  uint64_t seen = 0;
  for (;;) {
    uint64_t g;
    if (spin_until(gen_moved, &seen)) {
      g = atomic_load_explicit(&pool.generation, memory_order_acquire);
    } else {
      /* Announce the sleep before the last look at the generation; the
       * caller bumps the generation before it looks at `sleepers`, so one
       * of the two sees the other (both are sequentially consistent). */
      pthread_mutex_lock(&pool.m);
      atomic_fetch_add(&pool.sleepers, 1);
      while ((g = atomic_load(&pool.generation)) == seen)
        pthread_cond_wait(&pool.wake, &pool.m);
      atomic_fetch_sub(&pool.sleepers, 1);
      pthread_mutex_unlock(&pool.m);
    }
    seen = g;
    job_t *j = atomic_load_explicit(&pool.job, memory_order_acquire);
    run_chunks(j, tid);
    /* j lives on the caller's stack: after this decrement the caller may
     * return, so it is not touched again. */
    if (atomic_fetch_sub(&j->remaining, 1) == 1) {
      pthread_mutex_lock(&pool.m);
      pthread_cond_signal(&pool.done);
      pthread_mutex_unlock(&pool.m);
    }
  }
  return NULL;
}
static void pool_init(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  const char *env = getenv("EMILY_NUM_THREADS");
  if (env && *env) {
    char *end;
    long v = strtol(env, &end, 10);
    if (*end == '\0' && v >= 1 && v <= 1024) n = v;
  }
  if (n < 1) n = 1;
  pool.nthreads = (int)n;
  pool.spin_ns = n <= sysconf(_SC_NPROCESSORS_ONLN) ? SPIN_NS : 0;
  const char *spin = getenv("EMILY_SPIN_US");
  if (spin && *spin) {
    char *end;
    long v = strtol(spin, &end, 10);
    if (*end == '\0' && v >= 0 && v <= 1000000) pool.spin_ns = (int64_t)v * 1000;
  }
  if (n > 1) {
    pool.threads = calloc((size_t)n - 1, sizeof(pthread_t));
    if (!pool.threads) {
      pool.nthreads = 1;
      return;
    }
    for (long i = 1; i < n; i++) {
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
      if (pthread_create(&pool.threads[i - 1], &attr, worker_main,
                         (void *)(intptr_t)i) != 0) {
        pool.nthreads = (int)i; /* run with what we have */
        pthread_attr_destroy(&attr);
        break;
      }
      pthread_attr_destroy(&attr);
    }
  }
}

int em_parallel_threads(void) {
  pthread_once(&pool.once, pool_init);
  return pool.nthreads;
}

void em_parallel_for(int64_t n, int64_t grain, em_range_fn fn, void *ctx) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int nt = em_parallel_threads();
  if (nt == 1 || in_pool_chunk || n < 2 * grain) {
    fn(ctx, 0, n, 0);
    return;
  }
  /* A few chunks per thread balance uneven work without much overhead. */
  int64_t nchunks = n / grain;
  if (nchunks > (int64_t)nt * 4) nchunks = (int64_t)nt * 4;
  job_t j = {.fn = fn, .ctx = ctx, .n = n};
  j.chunk = (n + nchunks - 1) / nchunks;
  j.nchunks = (n + j.chunk - 1) / j.chunk;
  atomic_init(&j.next, 0);
  atomic_init(&j.remaining, nt - 1);

  pthread_mutex_lock(&pool.job_lock);
  atomic_store_explicit(&pool.job, &j, memory_order_release);
  atomic_fetch_add(&pool.generation, 1);
  if (atomic_load(&pool.sleepers) > 0) {
    pthread_mutex_lock(&pool.m);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.m);
  }
  run_chunks(&j, 0);
  if (!spin_until(job_done, &j)) {
    pthread_mutex_lock(&pool.m);
    while (atomic_load(&j.remaining) > 0) pthread_cond_wait(&pool.done, &pool.m);
    pthread_mutex_unlock(&pool.m);
  }
  pthread_mutex_unlock(&pool.job_lock);
}

int em_cpu_num_threads(void) { return em_parallel_threads(); }
