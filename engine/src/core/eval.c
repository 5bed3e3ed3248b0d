/* eval.c — turns a lazy graph into data.
 *
 * 1. Collect (under g_graph_lock): an iterative depth-first walk from the
 *    targets claims every PENDING array it reaches and lists them in
 *    topological order. Arrays claimed by another evaluation are waited
 *    for; since a later collect only ever waits on earlier ones, two
 *    evaluations can never wait on each other.
 * 2. Fuse: walking the order backwards (consumers before their inputs),
 *    each elementwise node is either the root of a fused group or joins
 *    one. An elementwise array claimed by this evaluation is marked `fused`
 *    into group R when every reference to it (refs: node inputs of its
 *    consumers, the caller's handles, other graphs) comes from members of
 *    R of its shape and device: no one else can ever read it, so R's
 *    backend program computes it tile by tile inside R's pass, once per
 *    element however many members use it, and it never gets a buffer of
 *    its own. The references are counted when each consumer is visited
 *    (fuse_hits, fuse_root as the candidate group), and the decision is
 *    taken when the walk reaches the array itself, after all of its
 *    consumers in this evaluation. A group is a DAG of at most MAX_FUSED
 *    + 1 nodes (a node shared by two groups, or also held by the caller,
 *    gets its own buffer and roots its own group).
 * 3. Run: each unfused array in order gets its view resolved, its fused
 *    group run, or its kernel called; then its node is dropped so inputs
 *    die as soon as nothing else needs them. A failure marks the array
 *    FAILED with its message; consumers fail with the same message. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backend-impl.h"
#ifdef EMILY_HAVE_CUDA
#include "../cuda/cuda-api.h"
#endif

pthread_mutex_t g_graph_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_graph_cond = PTHREAD_COND_INITIALIZER;
static uint64_t g_next_eval_id = 1; /* under g_graph_lock */

#define MAX_FUSED 48 /* nodes in one fused tree */

typedef struct {
  em_array **v;
  size_t n, cap;
} vec;

static bool vec_push(vec *s, em_array *a) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    em_array **v = realloc(s->v, cap * sizeof *v);
    if (!v) return false;
    s->v = v;
    s->cap = cap;
  }
  s->v[s->n++] = a;
  return true;
}

const em_backend *em_backend_for(em_device d) {
  if (d.type == EM_DEVICE_CPU) return &em_cpu_backend;
#ifdef EMILY_HAVE_CUDA
  if (d.type == EM_DEVICE_CUDA && d.index >= 0 &&
      d.index < em_cuda_device_count())
    return &em_cuda_backend;
#endif
  return NULL;
}

em_status em_alloc_output(em_array *out) {
  em_status st;
  out->buf = em_buffer_new(
      out->dev, (size_t)out->size * em_dtype_size(out->dtype), &st);
  if (!out->buf) return st;
  em_set_contiguous_strides(out);
  return EM_OK;
}

em_status em_contiguous(em_array *a, em_array **out) {
  if (em_array_is_contiguous(a)) {
    em_array_retain(a);
    *out = a;
    return EM_OK;
  }
  em_array *c = em_array_alloc(a->dtype, a->ndim, a->shape, a->dev);
  if (!c) return em_fail(EM_ERR_OOM, "[copy] out of host memory");
  em_status st = em_alloc_output(c);
  if (st != EM_OK) {
    free(c);
    return st;
  }
  st = em_backend_for(a->dev)->copy_strided(a, c->buf->data);
  if (st != EM_OK) {
    em_array_release(c);
    return st;
  }
  c->state = EM_STATE_DONE;
  *out = c;
  return EM_OK;
}

/* ---- views ------------------------------------------------------------- */

/* Views alias their input's buffer; only a reshape of non-contiguous data
 * has to copy. */
static em_status run_view(em_array *x) {
  const em_node *n = x->node;
  em_array *in = n->in[0];
  const em_params *p = &n->p;
  if (p->view.kind == EM_VIEW_RESHAPE) {
    if (em_array_is_contiguous(in)) {
      em_set_contiguous_strides(x);
      x->offset = in->offset;
    } else {
      em_status st = em_alloc_output(x);
      if (st != EM_OK) return st;
      return em_backend_for(in->dev)->copy_strided(in, x->buf->data);
    }
  } else {
    x->offset = in->offset;
    switch (p->view.kind) {
      case EM_VIEW_TRANSPOSE:
        for (int i = 0; i < x->ndim; i++)
          x->strides[i] = in->strides[p->view.axes[i]];
        break;
      case EM_VIEW_BROADCAST:
        for (int i = 0; i < x->ndim; i++) x->strides[i] = 0;
        for (int i = 0; i < in->ndim; i++)
          if (in->shape[i] != 1) x->strides[p->view.axes[i]] = in->strides[i];
        break;
      case EM_VIEW_SLICE:
        for (int i = 0; i < x->ndim; i++) {
          x->offset += p->view.start[i] * in->strides[i];
          x->strides[i] = in->strides[i] * p->view.step[i];
        }
        break;
      case EM_VIEW_REVERSE:
        for (int i = 0; i < x->ndim; i++) {
          x->strides[i] = in->strides[i];
          if ((p->view.mask >> i & 1u) && x->shape[i] > 0) {
            x->offset += (x->shape[i] - 1) * in->strides[i];
            x->strides[i] = -in->strides[i];
          }
        }
        break;
      case EM_VIEW_UNPACK: /* packed producers are always contiguous */
        em_set_contiguous_strides(x);
        x->offset = (in->offset * (int64_t)em_dtype_size(in->dtype) +
                     p->view.start[0]) /
                    (int64_t)em_dtype_size(x->dtype);
        break;
      case EM_VIEW_RESHAPE:
        break;
    }
  }
  em_buffer *b = in->buf;
  atomic_fetch_add(&b->refs, 1);
  x->buf = b;
  return EM_OK;
}

/* ---- one node ---------------------------------------------------------- */

/* Could `in` be computed inside the pass of x's group? (Elementwise,
 * claimed by this evaluation, same shape and device as its consumer x.)
 * Whether every reference to it comes from that group is decided later. */
static bool fusable_input(const em_array *x, const em_array *in,
                          uint64_t id) {
  return in->state == EM_STATE_CLAIMED && in->claimer == id && in->node &&
         em_op_kind_of(in->node->op) == EM_KIND_EW && in->ndim == x->ndim &&
         in->size == x->size && in->dev.type == x->dev.type &&
         in->dev.index == x->dev.index;
}

/* Finds the first failed input of x's fused group (looking through fused
 * inputs; the group is a DAG, so each member is visited once). *bad is NULL
 * when none failed. A group has at most MAX_FUSED + 1 members (eval's fuse
 * step), so the fixed lists cannot fill; if they ever did, that is an
 * error, never a silently partial walk. */
static em_status failed_input(em_array *x, em_array **bad) {
  em_array *seen[MAX_FUSED + 1];
  int ns = 0, next = 0; /* seen[next..ns) still to scan */
  seen[ns++] = x;
  *bad = NULL;
  while (next < ns) {
    em_array *y = seen[next++];
    for (int i = 0; i < y->node->nin; i++) {
      em_array *in = y->node->in[i];
      if (in->fused && in->node) {
        bool dup = false;
        for (int j = 0; j < ns && !dup; j++) dup = seen[j] == in;
        if (dup) continue;
        if (ns == MAX_FUSED + 1)
          return em_fail(EM_ERR_RUNTIME, "[eval] fused group too large");
        seen[ns++] = in;
      } else if (in->state == EM_STATE_FAILED) {
        *bad = in;
        return EM_OK;
      }
    }
  }
  return EM_OK;
}

static em_status run_node(em_array *x) {
  em_array *bad = NULL;
  em_status fst = failed_input(x, &bad);
  if (fst != EM_OK) return fst;
  if (bad) {
    em_fail(bad->err, "%s", bad->errmsg ? bad->errmsg : "input failed");
    return bad->err;
  }
  const em_backend *be = em_backend_for(x->dev);
  if (!be)
    return em_fail(EM_ERR_UNSUPPORTED, "[%s] no backend for device %d:%d",
                   em_op_name(x->node->op), (int)x->dev.type, x->dev.index);
  switch (em_op_kind_of(x->node->op)) {
    case EM_KIND_VIEW:
      return run_view(x);
    case EM_KIND_EW:
      return be->run_fused(x);
    case EM_KIND_KERN: {
      em_kernel_fn k = be->kernels[x->node->op];
      if (!k) {
        char b[256];
        return em_fail(EM_ERR_UNSUPPORTED, "[%s] not supported on %s for %s %s",
                       em_op_name(x->node->op), be->name,
                       em_dtype_name(x->dtype),
                       em_shape_str(b, sizeof b, x->ndim, x->shape));
      }
      return k(x, x->node);
    }
    case EM_KIND_LEAF:
      break;
  }
  return em_fail(EM_ERR_RUNTIME, "[eval] leaf array without data");
}

/* Marks x DONE or FAILED, wakes waiters, then drops its node. */
static void finish(em_array *x, em_status st) {
  em_node *node = x->node;
  char *msg = NULL;
  if (st != EM_OK) {
    const char *e = em_last_error();
    size_t len = strlen(e) + 1;
    msg = malloc(len);
    if (msg) memcpy(msg, e, len);
    if (x->buf) {
      em_buffer_release(x->buf);
      x->buf = NULL;
    }
  }
  pthread_mutex_lock(&g_graph_lock);
  x->state = st == EM_OK ? EM_STATE_DONE : EM_STATE_FAILED;
  x->err = st;
  x->errmsg = msg;
  x->node = NULL;
  pthread_cond_broadcast(&g_graph_cond);
  pthread_mutex_unlock(&g_graph_lock);
  if (node) {
    for (int i = 0; i < node->nin; i++) em_array_release(node->in[i]);
    em_node_free_shallow(node);
  }
}

/* ---- whole evaluation -------------------------------------------------- */

em_status em_eval_now(em_array *const *arrays, int n) {
  if (n < 0 || (n > 0 && !arrays))
    return em_fail(EM_ERR_ARGUMENT, "[eval] bad array list");
  for (int i = 0; i < n; i++)
    if (!arrays[i]) return em_fail(EM_ERR_ARGUMENT, "[eval] array %d is NULL", i);

  vec order = {0}, waits = {0}, stack = {0}, written = {0};
  vec idx = {0}; /* parallel to stack: next input to visit (as a pointer) */
  em_status st = EM_OK;

  pthread_mutex_lock(&g_graph_lock);
  uint64_t id = g_next_eval_id++;
  for (int t = 0; t < n && st == EM_OK; t++) {
    em_array *root = arrays[t];
    if (root->state == EM_STATE_CLAIMED && root->claimer != id) {
      if (!vec_push(&waits, root)) st = EM_ERR_OOM;
      continue;
    }
    if (root->state != EM_STATE_PENDING) continue;
    root->state = EM_STATE_CLAIMED;
    root->claimer = id;
    root->fused = false;
    root->fuse_root = NULL;
    root->fuse_hits = 0;
    if (!vec_push(&stack, root) || !vec_push(&idx, NULL)) {
      st = EM_ERR_OOM;
      break;
    }
    while (stack.n && st == EM_OK) {
      em_array *x = stack.v[stack.n - 1];
      uintptr_t i = (uintptr_t)idx.v[idx.n - 1];
      if ((int)i < x->node->nin) {
        idx.v[idx.n - 1] = (em_array *)(i + 1);
        em_array *in = x->node->in[i];
        if (in->state == EM_STATE_PENDING) {
          in->state = EM_STATE_CLAIMED;
          in->claimer = id;
          in->fused = false;
          in->fuse_root = NULL;
          in->fuse_hits = 0;
          if (!vec_push(&stack, in) || !vec_push(&idx, NULL)) st = EM_ERR_OOM;
        } else if (in->state == EM_STATE_CLAIMED && in->claimer != id) {
          if (!vec_push(&waits, in)) st = EM_ERR_OOM;
        } else if (in->state == EM_STATE_DONE && in->buf && in->buf->cu_prod) {
          /* DONE on CUDA: queued, maybe not run yet (another stream) */
          if (!vec_push(&written, in)) st = EM_ERR_OOM;
        }
      } else {
        stack.n--;
        idx.n--;
        if (!vec_push(&order, x)) st = EM_ERR_OOM;
      }
    }
  }
  if (st != EM_OK) {
    /* Could not even list the graph: hand every claim back. */
    for (size_t i = 0; i < order.n; i++) order.v[i]->state = EM_STATE_PENDING;
    for (size_t i = 0; i < stack.n; i++) stack.v[i]->state = EM_STATE_PENDING;
    pthread_mutex_unlock(&g_graph_lock);
    free(order.v);
    free(waits.v);
    free(written.v);
    free(stack.v);
    free(idx.v);
    return em_fail(EM_ERR_OOM, "[eval] out of host memory listing the graph");
  }
  /* Fusion decisions: consumers come after their inputs in `order`, so
   * walking backwards reaches an array only after every consumer of it in
   * this evaluation. Visiting x: first decide x itself (fused into the one
   * group all its references came from, or a root), then count x's
   * references to its inputs for x's group. The count is of references,
   * not consumers: x = y * y holds y twice, and refs says 2. Under
   * g_graph_lock, refs can only fall (a reference that is not counted
   * here belongs to someone who may drop it, but no one can add one
   * without holding one), so a hit count equal to refs stays exact. */
  for (size_t k = order.n; k-- > 0;) {
    em_array *x = order.v[k];
    if (em_op_kind_of(x->node->op) != EM_KIND_EW) continue;
    em_array *cand = x->fuse_root;
    if (cand && x->fuse_hits > 0 && cand->fuse_count < MAX_FUSED &&
        x->fuse_hits == atomic_load(&x->refs)) {
      x->fused = true;
      cand->fuse_count++;
    } else {
      x->fused = false;
      x->fuse_root = x;
      x->fuse_count = 0;
    }
    em_array *root = x->fuse_root;
    for (int i = 0; i < x->node->nin; i++) {
      em_array *in = x->node->in[i];
      if (!fusable_input(x, in, id) || in->fuse_hits < 0) continue;
      if (in->fuse_hits == 0) {
        in->fuse_root = root;
        in->fuse_hits = 1;
      } else if (in->fuse_root == root) {
        in->fuse_hits++;
      } else {
        in->fuse_hits = -1; /* members of two groups hold it */
      }
    }
  }
  /* Wait for arrays that other evaluations are computing. */
  for (size_t i = 0; i < waits.n; i++)
    while (waits.v[i]->state == EM_STATE_CLAIMED)
      pthread_cond_wait(&g_graph_cond, &g_graph_lock);
  pthread_mutex_unlock(&g_graph_lock);
#ifdef EMILY_HAVE_CUDA
  /* Their kernels may still be queued on another CUDA stream. */
  if (waits.n) em_cuda_after_waits(waits.v, waits.n);
  /* Inputs another stream's task wrote: wait for that task (at once when
   * it is this stream's own or has finished). Each is held by a node of
   * this graph, so its buffer stays alive. */
  for (size_t i = 0; i < written.n; i++)
    em_cuda_wait_producer(written.v[i]->buf->cu_prod,
                          written.v[i]->buf->cu_ticket);
#endif

  for (size_t k = 0; k < order.n; k++) {
    em_array *x = order.v[k];
    if (x->fused) continue; /* computed inside its consumer */
    em_status s = run_node(x);
    finish(x, s);
  }

  /* Report the first failed target. */
  pthread_mutex_lock(&g_graph_lock);
  for (int t = 0; t < n; t++)
    if (arrays[t]->state == EM_STATE_FAILED) {
      st = arrays[t]->err;
      em_fail(st, "%s", arrays[t]->errmsg ? arrays[t]->errmsg : "failed");
      break;
    }
  pthread_mutex_unlock(&g_graph_lock);
  free(order.v);
  free(waits.v);
  free(written.v);
  free(stack.v);
  free(idx.v);
  return st;
}
