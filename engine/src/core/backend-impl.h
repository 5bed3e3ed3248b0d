/* backend-impl.h — what a device backend provides to the evaluator.
 * A backend is a table: one kernel per KERN op (NULL: unsupported), a
 * runner for fused elementwise trees, and a strided copy. The evaluator
 * (eval.c) owns scheduling, views and errors; backends only compute. */
#ifndef EMILY_BACKEND_IMPL_H
#define EMILY_BACKEND_IMPL_H

#include "array-impl.h"

/* Computes out (state CLAIMED, node set) from node->in (all DONE):
 * allocates out->buf and sets strides (contiguous). */
typedef em_status (*em_kernel_fn)(em_array *out, const em_node *node);

typedef struct {
  const char *name;
  em_kernel_fn kernels[EM_OP_COUNT];
  /* Evaluates the elementwise group rooted at `root` (a DAG, eval.c):
   * inputs with in->fused set are computed inside the same pass, each
   * once however many members use it; all other inputs are DONE arrays
   * of root's shape (any strides). */
  em_status (*run_fused)(em_array *root);
  /* Copies a DONE array of any strides into contiguous dst memory (on
   * the array's device). */
  em_status (*copy_strided)(const em_array *src, void *dst);
} em_backend;

const em_backend *em_backend_for(em_device d);
extern const em_backend em_cpu_backend;

/* Allocates out's buffer (contiguous) on its device. */
em_status em_alloc_output(em_array *out);
/* A contiguous version of a DONE array: itself (retained) if already
 * contiguous, else a fresh copy. Release with em_array_release. */
em_status em_contiguous(em_array *a, em_array **out);

/* ---- dot, shared by the backends' dot kernels (dot_layout.c) ---- */
typedef struct {
  int fa[EM_MAX_NDIM], fb[EM_MAX_NDIM]; /* free axes of a and of b, in order */
  int nfa, nfb;
  int64_t B, M, N, K; /* batch, a's free size, b's free size, contracted */
} em_dot_dims;
void em_dot_dims_of(const em_node *dot, em_dot_dims *d);
/* x (DONE) as a row-major [batch, p, q] stack of the axis groups bax,
 * pax, qax, or, with *swapped set, as [batch, q, p]: a view of x's buffer
 * when either order already is row-major, else a copy in [batch, p, q]
 * order. Release *c with em_array_release. */
em_status em_dot_operand(const em_array *x, const int *bax, int nb,
                         const int *pax, int np, const int *qax, int nq,
                         em_array **c, bool *swapped);

#endif
