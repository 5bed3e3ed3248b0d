/* stream.c — streams: ordered work queues, each served by one worker
 * thread. em_eval submits to the device's default stream and waits;
 * em_eval_async submits and returns, and the worker calls `done` when the
 * arrays are ready (the NIF replies to BEAM processes from there). Work
 * submitted from a worker thread itself runs inline, so a callback that
 * evaluates cannot deadlock its own stream. A blocking em_eval on an idle
 * CPU stream runs on the calling thread instead of handing the work to
 * the worker and back: two thread wake-ups, ~20 us on a VM, that a
 * caller who waits anyway need not pay. `busy` keeps the stream's order:
 * the worker starts nothing while a caller runs inline, and a caller runs
 * inline only when nothing is queued or running. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "array-impl.h"
#include "parallel.h"
#ifdef EMILY_HAVE_CUDA
#include "../cuda/cuda-api.h"
#endif

typedef struct task {
  struct task *next;
  em_array **arrays;
  int n;
  em_done_fn done;
  void *user;
  bool is_barrier; /* synchronize: no arrays */
} task;

struct em_stream {
  em_device dev;
  pthread_t thread;
  pthread_mutex_t m;
  pthread_cond_t cv;
  task *head, *tail;
  bool stop;
  bool busy;     /* a task is running, on the worker or inline */
  atomic_int queued; /* tasks in the queue: the worker spins on it */
  bool detached; /* the worker frees the stream when it exits */
  void *cuda;    /* the CUDA stream of a CUDA device's stream */
};

static _Thread_local em_stream *current_stream = NULL;

static void *stream_main(void *arg) {
  em_stream *s = arg;
  current_stream = s;
#ifdef EMILY_HAVE_CUDA
  if (s->cuda) em_cuda_thread_bind(s->cuda);
#endif
  bool ran = false; /* the busy flag is ours to clear only after a task */
  for (;;) {
    /* After a task, watch for the next one a while before sleeping: an
     * eager caller (the NIF: one eval per Nx op) submits again within
     * microseconds, and a futex wake-up costs ~10-20 us on a VM. */
    if (ran) (void)em_spin_while_zero(&s->queued);
    pthread_mutex_lock(&s->m);
    if (ran) s->busy = false;
    while (s->busy || (!s->head && !s->stop)) pthread_cond_wait(&s->cv, &s->m);
    task *t = s->head;
    if (!t) { /* stop requested and queue drained */
      bool detached = s->detached;
      pthread_mutex_unlock(&s->m);
      if (detached) {
#ifdef EMILY_HAVE_CUDA
        em_cuda_stream_destroy(s->cuda);
#endif
        pthread_mutex_destroy(&s->m);
        pthread_cond_destroy(&s->cv);
        free(s);
      }
      break;
    }
    s->head = t->next;
    if (!s->head) s->tail = NULL;
    atomic_fetch_sub(&s->queued, 1);
    s->busy = true;
    ran = true;
    pthread_mutex_unlock(&s->m);
    em_status st = t->is_barrier ? EM_OK : em_eval_now(t->arrays, t->n);
#ifdef EMILY_HAVE_CUDA
    /* Kernels were queued: wait for them (errors surface here). */
    if (s->cuda) {
      em_status cst = em_cuda_stream_end_task(s->cuda);
      if (st == EM_OK) st = cst;
    }
#endif
    /* Drop the queue's references before waking anyone, so memory
     * statistics read right after em_eval returns are settled. Callers
     * hold their own references. The message of a failure must survive
     * the releases: they never write em_last_error. */
    for (int i = 0; i < t->n; i++) em_array_release(t->arrays[i]);
    if (t->done) t->done(st, t->user);
    free(t->arrays);
    free(t);
  }
  return NULL;
}

em_status em_stream_new(em_stream **out, em_device dev) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[stream_new] out is NULL");
  *out = NULL;
  bool cuda_ok = dev.type == EM_DEVICE_CUDA && dev.index >= 0 &&
                 dev.index < em_device_count(EM_DEVICE_CUDA);
  if (!(dev.type == EM_DEVICE_CPU && dev.index == 0) && !cuda_ok)
    return em_fail(EM_ERR_ARGUMENT, "[stream_new] device %d:%d is not available",
                   (int)dev.type, dev.index);
  em_stream *s = calloc(1, sizeof *s);
  if (!s) return em_fail(EM_ERR_OOM, "[stream_new] out of host memory");
  s->dev = dev;
  atomic_init(&s->queued, 0);
#ifdef EMILY_HAVE_CUDA
  if (cuda_ok) {
    em_status cst = em_cuda_stream_create(dev.index, &s->cuda);
    if (cst != EM_OK) {
      free(s);
      return cst;
    }
  }
#endif
  pthread_mutex_init(&s->m, NULL);
  pthread_cond_init(&s->cv, NULL);
  if (pthread_create(&s->thread, NULL, stream_main, s) != 0) {
#ifdef EMILY_HAVE_CUDA
    em_cuda_stream_destroy(s->cuda);
#endif
    pthread_mutex_destroy(&s->m);
    pthread_cond_destroy(&s->cv);
    free(s);
    return em_fail(EM_ERR_RUNTIME, "[stream_new] cannot start a worker thread");
  }
  *out = s;
  return EM_OK;
}

void em_stream_free(em_stream *s) {
  if (!s) return;
  pthread_mutex_lock(&s->m);
  s->stop = true;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->m);
  pthread_join(s->thread, NULL);
#ifdef EMILY_HAVE_CUDA
  em_cuda_stream_destroy(s->cuda);
#endif
  pthread_mutex_destroy(&s->m);
  pthread_cond_destroy(&s->cv);
  free(s);
}

void em_stream_detach(em_stream *s) {
  if (!s) return;
  pthread_detach(s->thread);
  pthread_mutex_lock(&s->m);
  s->stop = true;
  s->detached = true;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->m);
}

static em_stream *default_cpu;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static void default_init(void) {
  if (em_stream_new(&default_cpu, em_cpu()) != EM_OK) default_cpu = NULL;
}

#ifdef EMILY_HAVE_CUDA
/* One default stream per CUDA device, made on first use. */
static em_stream *default_cuda[16];
static pthread_mutex_t default_cuda_m = PTHREAD_MUTEX_INITIALIZER;
#endif

em_stream *em_default_stream(em_device dev) {
#ifdef EMILY_HAVE_CUDA
  if (dev.type == EM_DEVICE_CUDA) {
    if (dev.index < 0 || dev.index >= em_device_count(EM_DEVICE_CUDA) ||
        dev.index >= 16)
      return NULL;
    pthread_mutex_lock(&default_cuda_m);
    if (!default_cuda[dev.index] &&
        em_stream_new(&default_cuda[dev.index], dev) != EM_OK)
      default_cuda[dev.index] = NULL;
    em_stream *s = default_cuda[dev.index];
    pthread_mutex_unlock(&default_cuda_m);
    return s;
  }
#endif
  if (dev.type != EM_DEVICE_CPU) return NULL;
  pthread_once(&default_once, default_init);
  return default_cpu;
}

int em_device_count(em_device_type type) {
#ifdef EMILY_HAVE_CUDA
  if (type == EM_DEVICE_CUDA) return em_cuda_device_count();
#endif
  return type == EM_DEVICE_CPU ? 1 : 0;
}

static em_status submit(em_stream *s, em_array *const *arrays, int n,
                        em_done_fn done, void *user, bool barrier) {
  task *t = calloc(1, sizeof *t);
  if (!t) return em_fail(EM_ERR_OOM, "[eval] out of host memory");
  if (n > 0) {
    t->arrays = malloc((size_t)n * sizeof *t->arrays);
    if (!t->arrays) {
      free(t);
      return em_fail(EM_ERR_OOM, "[eval] out of host memory");
    }
    for (int i = 0; i < n; i++) {
      t->arrays[i] = arrays[i];
      em_array_retain(arrays[i]);
    }
  }
  t->n = n;
  t->done = done;
  t->user = user;
  t->is_barrier = barrier;
  pthread_mutex_lock(&s->m);
  if (s->tail) s->tail->next = t;
  else s->head = t;
  s->tail = t;
  atomic_fetch_add(&s->queued, 1);
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->m);
  return EM_OK;
}

static em_status check_list(const char *op, em_array *const *arrays, int n,
                            em_stream *s) {
  if (n < 0 || (n > 0 && !arrays))
    return em_fail(EM_ERR_ARGUMENT, "[%s] bad array list", op);
  for (int i = 0; i < n; i++) {
    if (!arrays[i]) return em_fail(EM_ERR_ARGUMENT, "[%s] array %d is NULL", op, i);
    if (s && (arrays[i]->dev.type != s->dev.type ||
              arrays[i]->dev.index != s->dev.index))
      return em_fail(EM_ERR_ARGUMENT,
                     "[%s] array %d is not on the stream's device", op, i);
  }
  return EM_OK;
}

em_status em_eval_async(em_array *const *arrays, int n, em_stream *s,
                        em_done_fn done, void *user) {
  if (!s) return em_fail(EM_ERR_ARGUMENT, "[eval_async] stream is NULL");
  em_status st = check_list("eval_async", arrays, n, s);
  if (st != EM_OK) return st;
  return submit(s, arrays, n, done, user, false);
}

typedef struct {
  pthread_mutex_t m;
  pthread_cond_t cv;
  bool finished;
  em_status st;
  char msg[1024];
} waiter;

static void wake(em_status st, void *user) {
  waiter *w = user;
  pthread_mutex_lock(&w->m);
  w->st = st;
  if (st != EM_OK) {
    strncpy(w->msg, em_last_error(), sizeof w->msg - 1);
    w->msg[sizeof w->msg - 1] = '\0';
  }
  w->finished = true;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->m);
}

/* Runs the work on the calling thread if s is an idle CPU stream. */
static bool run_inline(em_stream *s, em_array *const *arrays, int n,
                       bool barrier, em_status *st) {
  if (s->dev.type != EM_DEVICE_CPU) return false;
  pthread_mutex_lock(&s->m);
  bool idle = !s->busy && !s->head && !s->stop;
  if (idle) s->busy = true;
  pthread_mutex_unlock(&s->m);
  if (!idle) return false;
  current_stream = s; /* an em_eval from inside runs inline, as on the worker */
  *st = barrier ? EM_OK : em_eval_now(arrays, n);
  current_stream = NULL;
  pthread_mutex_lock(&s->m);
  s->busy = false;
  if (s->head || s->stop) pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->m);
  return true;
}

static em_status submit_and_wait(em_stream *s, em_array *const *arrays, int n,
                                 bool barrier) {
  if (current_stream == s) return barrier ? EM_OK : em_eval_now(arrays, n);
  em_status ist;
  if (!current_stream && run_inline(s, arrays, n, barrier, &ist)) return ist;
  waiter w = {.finished = false};
  pthread_mutex_init(&w.m, NULL);
  pthread_cond_init(&w.cv, NULL);
  em_status st = submit(s, arrays, n, wake, &w, barrier);
  if (st == EM_OK) {
    pthread_mutex_lock(&w.m);
    while (!w.finished) pthread_cond_wait(&w.cv, &w.m);
    pthread_mutex_unlock(&w.m);
    st = w.st;
    if (st != EM_OK) em_fail(st, "%s", w.msg);
  }
  pthread_mutex_destroy(&w.m);
  pthread_cond_destroy(&w.cv);
  return st;
}

em_status em_eval_on(em_array *const *arrays, int n, em_stream *s) {
  em_status st = check_list("eval", arrays, n, s);
  if (st != EM_OK) return st;
  return submit_and_wait(s, arrays, n, false);
}

em_status em_eval(em_array *const *arrays, int n) {
  em_status st = check_list("eval", arrays, n, NULL);
  if (st != EM_OK || n == 0) return st;
  /* Already evaluated arrays need no trip through a worker. */
  bool all_done = true;
  for (int i = 0; i < n && all_done; i++)
    all_done = em_array_is_evaluated(arrays[i]);
  if (all_done) return EM_OK;
  if (current_stream) return em_eval_now(arrays, n);
  em_stream *s = em_default_stream(arrays[0]->dev);
  if (!s) return em_fail(EM_ERR_RUNTIME, "[eval] no stream for the device");
  return submit_and_wait(s, arrays, n, false);
}

em_status em_stream_synchronize(em_stream *s) {
  if (!s) return em_fail(EM_ERR_ARGUMENT, "[synchronize] stream is NULL");
  return submit_and_wait(s, NULL, 0, true);
}
