/* array.c — array handles: creation, reference counting, host access. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "array-impl.h"
#ifdef EMILY_HAVE_CUDA
#include "../cuda/cuda-api.h"
#endif
#include "../cpu/subbyte.h"

extern pthread_mutex_t g_graph_lock;

em_device em_cpu(void) { return (em_device){EM_DEVICE_CPU, 0}; }

em_array *em_array_alloc(em_dtype t, int ndim, const int64_t *shape,
                         em_device dev) {
  em_array *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  atomic_init(&a->refs, 1);
  a->dtype = t;
  a->ndim = ndim;
  a->dev = dev;
  a->size = 1;
  for (int i = 0; i < ndim; i++) {
    a->shape[i] = shape[i];
    a->size *= shape[i]; /* callers have checked for overflow */
  }
  em_set_contiguous_strides(a);
  return a;
}

void em_set_contiguous_strides(em_array *a) {
  int64_t s = 1;
  for (int i = a->ndim - 1; i >= 0; i--) {
    a->strides[i] = s;
    s *= a->shape[i] > 0 ? a->shape[i] : 1;
  }
  a->offset = 0;
}

bool em_array_is_contiguous(const em_array *a) {
  int64_t s = 1;
  for (int i = a->ndim - 1; i >= 0; i--) {
    if (a->shape[i] != 1 && a->strides[i] != s) return a->size == 0;
    s *= a->shape[i];
  }
  return true;
}

em_buffer *em_buffer_new(em_device dev, size_t nbytes, em_status *st) {
  em_buffer *b = malloc(sizeof *b);
  if (!b) {
    *st = em_fail(EM_ERR_OOM, "[alloc] out of host memory");
    return NULL;
  }
  b->data = em_alloc(dev, nbytes, st);
  if (!b->data) {
    free(b);
    return NULL;
  }
  atomic_init(&b->refs, 1);
  b->dev = dev;
  b->nbytes = nbytes;
  b->cu_prod = NULL;
  b->cu_ticket = 0;
#ifdef EMILY_HAVE_CUDA
  if (dev.type == EM_DEVICE_CUDA) b->cu_prod = em_cuda_producer(&b->cu_ticket);
#endif
  return b;
}

void em_buffer_release(em_buffer *b) {
  if (b && atomic_fetch_sub(&b->refs, 1) == 1) {
#ifdef EMILY_HAVE_CUDA
    if (b->cu_prod) { /* no other stream may get the block while it is written */
      em_cuda_wait_producer(b->cu_prod, b->cu_ticket);
      em_cuda_producer_release(b->cu_prod);
    }
#endif
    em_free(b->dev, b->data, b->nbytes);
    free(b);
  }
}

em_node *em_node_new(em_op op, int nin, em_array *const *in) {
  em_node *n = calloc(1, sizeof *n);
  if (!n) return NULL;
  n->op = op;
  n->nin = nin;
  n->in = nin <= 3 ? n->inline_in : calloc((size_t)nin, sizeof(em_array *));
  if (!n->in) {
    free(n);
    return NULL;
  }
  for (int i = 0; i < nin; i++) {
    n->in[i] = in[i];
    em_array_retain(in[i]);
  }
  return n;
}

void em_node_free_shallow(em_node *n) {
  if (!n) return;
  if (n->in != n->inline_in) free(n->in);
  free(n);
}

void em_array_retain(em_array *a) {
  if (a) atomic_fetch_add(&a->refs, 1);
}

/* Freed arrays are chained through next_dead and processed in a loop, so a
 * long chain of nodes is released without recursion. */
static _Thread_local em_array *dead_head = NULL;
static _Thread_local bool releasing = false;

void em_array_release(em_array *a) {
  if (!a || atomic_fetch_sub(&a->refs, 1) != 1) return;
  a->next_dead = dead_head;
  dead_head = a;
  if (releasing) return;
  releasing = true;
  while (dead_head) {
    em_array *x = dead_head;
    dead_head = x->next_dead;
    if (x->node) {
      for (int i = 0; i < x->node->nin; i++) {
        em_array *in = x->node->in[i];
        if (atomic_fetch_sub(&in->refs, 1) == 1) {
          in->next_dead = dead_head;
          dead_head = in;
        }
      }
      em_node_free_shallow(x->node);
    }
    em_buffer_release(x->buf);
    em_buffer_release(x->contig);
    free(x->errmsg);
    free(x);
  }
  releasing = false;
}

em_dtype em_array_dtype(const em_array *a) { return a->dtype; }
int em_array_ndim(const em_array *a) { return a->ndim; }
const int64_t *em_array_shape(const em_array *a) { return a->shape; }
int64_t em_array_size(const em_array *a) { return a->size; }
/* The host size: sub-byte types are packed there (in memory the buffer
 * holds size * em_dtype_size bytes, one element per byte). */
size_t em_array_nbytes(const em_array *a) {
  int bits = em_dtype_bits(a->dtype);
  if (bits < 8) return ((size_t)a->size * (size_t)bits + 7) / 8;
  return (size_t)a->size * em_dtype_size(a->dtype);
}
em_device em_array_device(const em_array *a) { return a->dev; }
bool em_array_is_evaluated(const em_array *a) {
  pthread_mutex_lock(&g_graph_lock);
  bool r = a->state == EM_STATE_DONE;
  pthread_mutex_unlock(&g_graph_lock);
  return r;
}

/* Copies a strided array into contiguous dst (CPU). */
void em_cpu_copy_strided(const em_array *src, void *dst);

/* Sub-byte types: packs the elements (row-major) into c->data. */
static em_status pack_into(em_array *a, em_buffer *c) {
  if (em_array_is_contiguous(a)) {
    em_subbyte_pack(a->dtype, em_array_ptr(a), c->data, a->size);
    return EM_OK;
  }
  em_status st;
  size_t n = (size_t)a->size * em_dtype_size(a->dtype);
  em_buffer *tmp = em_buffer_new(a->dev, n, &st);
  if (!tmp) return st;
  em_cpu_copy_strided(a, tmp->data);
  em_subbyte_pack(a->dtype, tmp->data, c->data, a->size);
  em_buffer_release(tmp);
  return EM_OK;
}

#ifdef EMILY_HAVE_CUDA
/* A CUDA array's row-major bytes, downloaded once and kept in `contig`. */
static const void *cuda_host_copy(em_array *a) {
  pthread_mutex_lock(&g_graph_lock);
  em_buffer *c = a->contig;
  pthread_mutex_unlock(&g_graph_lock);
  if (c) return c->data;
  em_status st;
  /* the host layout: s2..u4 come packed (em_cuda_download_array) */
  c = em_buffer_new(em_cpu(), em_array_nbytes(a), &st);
  if (!c) return NULL;
  if (em_cuda_download_array(a, c->data) != EM_OK) {
    em_buffer_release(c);
    return NULL;
  }
  pthread_mutex_lock(&g_graph_lock);
  if (a->contig) { /* another thread won the race */
    em_buffer *mine = c;
    c = a->contig;
    pthread_mutex_unlock(&g_graph_lock);
    em_buffer_release(mine);
    return c->data;
  }
  a->contig = c;
  pthread_mutex_unlock(&g_graph_lock);
  return c->data;
}
#endif

const void *em_array_data(em_array *a) {
  if (!a) {
    em_fail(EM_ERR_ARGUMENT, "[array_data] NULL array");
    return NULL;
  }
  if (em_eval(&a, 1) != EM_OK) return NULL;
#ifdef EMILY_HAVE_CUDA
  if (a->dev.type == EM_DEVICE_CUDA) return cuda_host_copy(a);
#endif
  if (a->dev.type != EM_DEVICE_CPU) {
    em_fail(EM_ERR_UNSUPPORTED, "[array_data] array is not on the CPU");
    return NULL;
  }
  /* Sub-byte types: `contig` caches the packed bytes instead. */
  bool packed = em_dtype_is_subbyte(a->dtype);
  if (!packed && em_array_is_contiguous(a)) return em_array_ptr(a);
  pthread_mutex_lock(&g_graph_lock);
  em_buffer *c = a->contig;
  pthread_mutex_unlock(&g_graph_lock);
  if (c) return c->data;
  em_status st;
  c = em_buffer_new(a->dev, em_array_nbytes(a), &st);
  if (!c) return NULL;
  if (!packed) {
    em_cpu_copy_strided(a, c->data);
  } else if (pack_into(a, c) != EM_OK) {
    em_buffer_release(c);
    return NULL;
  }
  pthread_mutex_lock(&g_graph_lock);
  if (a->contig) { /* another thread won the race */
    em_buffer *mine = c;
    c = a->contig;
    pthread_mutex_unlock(&g_graph_lock);
    em_buffer_release(mine);
    return c->data;
  }
  a->contig = c;
  pthread_mutex_unlock(&g_graph_lock);
  return c->data;
}

em_status em_array_to_host(em_array *a, void *dst, size_t nbytes) {
  if (!a || (!dst && nbytes))
    return em_fail(EM_ERR_ARGUMENT, "[to_host] NULL argument");
  if (nbytes != em_array_nbytes(a))
    return em_fail(EM_ERR_ARGUMENT,
                   "[to_host] destination has %zu bytes, array %s has %zu",
                   nbytes, em_dtype_name(a->dtype), em_array_nbytes(a));
  em_status st = em_eval(&a, 1);
  if (st != EM_OK) return st;
#ifdef EMILY_HAVE_CUDA
  if (a->dev.type == EM_DEVICE_CUDA) return em_cuda_download_array(a, dst);
#endif
  const void *p = em_array_data(a);
  if (!p) return EM_ERR_OOM;
  if (nbytes) memcpy(dst, p, nbytes);
  return EM_OK;
}

em_status em_copy_to_device(em_array **out, em_array *a, em_device dev) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[copy_to_device] out is NULL");
  *out = NULL;
  if (!a) return em_fail(EM_ERR_ARGUMENT, "[copy_to_device] input array is NULL");
  bool ok = (dev.type == EM_DEVICE_CPU && dev.index == 0) ||
            (dev.type == EM_DEVICE_CUDA && dev.index >= 0 &&
             dev.index < em_device_count(EM_DEVICE_CUDA));
  if (!ok)
    return em_fail(EM_ERR_ARGUMENT, "[copy_to_device] device %s:%d is not available",
                   dev.type == EM_DEVICE_CPU ? "cpu" : "cuda", dev.index);
  em_status st = em_eval(&a, 1);
  if (st != EM_OK) return st;
  if (a->dev.type == dev.type && a->dev.index == dev.index) {
    em_array_retain(a);
    *out = a;
    return EM_OK;
  }
#ifdef EMILY_HAVE_CUDA
  return em_cuda_transfer(out, a, dev);
#else
  return em_fail(EM_ERR_UNSUPPORTED, "[copy_to_device] built without CUDA");
#endif
}
