/* array-impl.h — what an em_array is inside the engine.
 *
 * Ownership: an array holds one reference to its buffer once evaluated and,
 * until then, one reference to each input of its node. Evaluation computes
 * the buffer and drops the node, so intermediates die as soon as nothing
 * downstream needs them. Releases are iterative (a worklist), so freeing a
 * chain of 100,000 nodes never recurses.
 *
 * Concurrency: shape, dtype and node are immutable after creation; `state`
 * and `buf` change only under g_graph_lock (see eval.c), which is also held
 * while an evaluation claims the nodes it will compute. */
#ifndef EMILY_ARRAY_IMPL_H
#define EMILY_ARRAY_IMPL_H

#include <stdatomic.h>

#include <string.h>

#include "emily.h"
#include "ops-impl.h"

typedef struct em_buffer {
  atomic_int refs;
  em_device dev;
  size_t nbytes;
  void *data;
  /* CUDA: the engine stream whose current task allocated (and so writes)
   * this buffer, and that task's number; NULL when allocated outside a
   * stream task (ordered by the legacy stream). Another stream reading the
   * buffer, or a release, waits for that task first (em_cuda_wait_producer):
   * a CUDA array is DONE once its kernel is queued, not once it ran. */
  void *cu_prod;
  uint64_t cu_ticket;
} em_buffer;

/* View specs are resolved at eval time against the input's real strides. */
typedef enum {
  EM_VIEW_TRANSPOSE, /* perm */
  EM_VIEW_BROADCAST, /* axes: output axis of each input axis */
  EM_VIEW_SLICE,     /* start, step (static) */
  EM_VIEW_RESHAPE,   /* aliases when the input is contiguous, else copies */
  EM_VIEW_REVERSE,   /* mask of reversed axes */
  EM_VIEW_UNPACK,    /* one output of a multi-output op: start[0] is the
                        byte offset into a contiguous packed u8 input */
} em_view_kind;

typedef union {
  struct {
    em_view_kind kind;
    int axes[EM_MAX_NDIM];
    int64_t start[EM_MAX_NDIM], step[EM_MAX_NDIM];
    uint32_t mask;
  } view;
  struct {
    unsigned char value[16];
  } full;
  struct {
    int axis;
  } iota;
  struct {
    int64_t lo[EM_MAX_NDIM], hi[EM_MAX_NDIM], interior[EM_MAX_NDIM];
  } pad;
  struct {
    int64_t lengths[EM_MAX_NDIM], step[EM_MAX_NDIM];
  } dslice;
  struct {
    int axis;
  } concat;
  struct {
    uint32_t mask; /* reduced axes of the input */
  } reduce;
  struct {
    int axis;
    bool tie_high;
  } arg;
  struct {
    int nca, nba;
    int ca[EM_MAX_NDIM], ba[EM_MAX_NDIM], cb[EM_MAX_NDIM], bb[EM_MAX_NDIM];
  } dot;
  struct {
    double eps;
    bool has_weight, has_bias;
  } norm;
  struct {
    int naxes, axis;
    int axes[EM_MAX_NDIM];
  } index; /* gather, indexed_*, take, take_along_axis */
  struct {
    em_op kind; /* EM_OP_sum, _product, _reduce_max, _reduce_min */
    int axis;
    bool reverse;
  } cum;
  struct {
    int axis;
    bool descending;
  } sort;
  struct {
    em_window w;
    em_op kind; /* window_reduce: sum/product/reduce_max/reduce_min;
                   window_scatter: reduce_max or reduce_min */
  } window;
  struct {
    int nspatial;
    int64_t strides[EM_MAX_NDIM], pad_lo[EM_MAX_NDIM], pad_hi[EM_MAX_NDIM];
    int64_t input_dilation[EM_MAX_NDIM], kernel_dilation[EM_MAX_NDIM];
    int64_t feature_group_size, batch_group_size;
  } conv; /* canonical layouts: permutations are applied as views */
  struct {
    int64_t n;
    bool inverse;
  } fft;
  struct {
    bool left_side, lower, complete, full_matrices;
    int transform; /* em_transform */
  } linalg;
} em_params;

typedef struct em_node {
  em_op op;
  int nin;
  struct em_array **in; /* points at inline_in or a heap array */
  struct em_array *inline_in[3];
  em_params p;
} em_node;

typedef enum {
  EM_STATE_PENDING = 0, /* has a node, nobody computing it */
  EM_STATE_CLAIMED,     /* an evaluation will compute it (or fuse it) */
  EM_STATE_DONE,        /* buf is valid */
  EM_STATE_FAILED,      /* error holds the reason */
} em_state;

struct em_array {
  atomic_int refs;
  em_dtype dtype;
  int ndim;
  int64_t size;
  int64_t shape[EM_MAX_NDIM];
  int64_t strides[EM_MAX_NDIM]; /* in elements; valid when DONE */
  int64_t offset;               /* in elements; valid when DONE */
  em_device dev;
  em_buffer *buf;
  em_node *node;
  int state;        /* em_state, guarded by g_graph_lock */
  uint64_t claimer; /* evaluation that claimed it */
  em_status err;
  char *errmsg;
  bool fused;                 /* computed inside its fused group's kernel */
  int fuse_count;             /* nodes fused into this root so far */
  struct em_array *fuse_root; /* the root a fused array belongs to; while
                                 eval.c's fuse step has not reached the
                                 array yet: the group whose members
                                 reference it (scratch, reset at claim) */
  int fuse_hits;              /* fuse step scratch: references to this
                                 array from members of group fuse_root, or
                                 -1 when members of several groups hold it */
  em_buffer *contig;          /* row-major copy made by em_array_data */
  struct em_array *next_dead; /* release worklist link */
};

/* ---- internal helpers (array.c) ---- */
em_array *em_array_alloc(em_dtype t, int ndim, const int64_t *shape,
                         em_device dev);
void em_set_contiguous_strides(em_array *a);
bool em_array_is_contiguous(const em_array *a); /* row-major, any offset */
static inline char *em_array_ptr(const em_array *a) {
  return (char *)a->buf->data + (size_t)a->offset * em_dtype_size(a->dtype);
}
em_buffer *em_buffer_new(em_device dev, size_t nbytes, em_status *st);
void em_buffer_release(em_buffer *b);
em_node *em_node_new(em_op op, int nin, em_array *const *in);
void em_node_free_shallow(em_node *n); /* frees the node, not the inputs */

/* ---- graph building shared by op families (ops.c) ---- */
/* Makes a pending array computed by `op` from `in`. */
em_status em_make_node(em_array **out, em_op op, em_dtype t, int ndim,
                       const int64_t *shape, em_device dev, int nin,
                       em_array *const *in, const em_params *p);
/* Multi-output ops: the kernel writes every output into one contiguous u8
 * array; em_pack_slot reserves a 64-byte-aligned slot of count elements of
 * t (advancing *cursor), and em_unpack returns the array living there. */
size_t em_pack_slot(size_t *cursor, em_dtype t, int64_t count);
em_status em_unpack(em_array **out, em_array *packed, size_t byte_offset,
                    em_dtype t, int ndim, const int64_t *shape);
em_status em_check_shape(const char *op, int ndim, const int64_t *shape,
                         em_dtype t);
em_status em_norm_axis(const char *op, int *axis, int ndim);

/* ---- errors (error.c) ---- */
em_status em_fail(em_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "[2,3]" into buf; returns buf. */
const char *em_shape_str(char *buf, size_t cap, int ndim,
                         const int64_t *shape);

/* ---- allocator (alloc.c) ---- */
void *em_alloc(em_device dev, size_t nbytes, em_status *st);
void em_free(em_device dev, void *p, size_t nbytes);

/* ---- evaluation (eval.c) ---- */
em_status em_eval_on(em_array *const *arrays, int n, em_stream *s);
/* Runs arrays' graphs on the calling thread (used by stream workers). */
em_status em_eval_now(em_array *const *arrays, int n);

/* v = a DONE array's storage viewed with axes permuted (v's axis i is a's
 * axis perm[i]); no refcount is taken: v lives no longer than a. Used by
 * the backends to find a GEMM/reduction layout without a copy. */
static inline void em_array_permuted_view(const em_array *a, const int *perm,
                                          em_array *v) {
  memset(v, 0, sizeof *v);
  v->dtype = a->dtype;
  v->ndim = a->ndim;
  v->size = a->size;
  v->offset = a->offset;
  v->buf = a->buf;
  v->dev = a->dev;
  for (int i = 0; i < a->ndim; i++) {
    v->shape[i] = a->shape[perm[i]];
    v->strides[i] = a->strides[perm[i]];
  }
}

#endif
