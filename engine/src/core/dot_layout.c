/* dot_layout.c — the part of em_dot that does not depend on the device:
 * which axes are free, the [batch, M, K] x [batch, K, N] sizes, and each
 * operand as a row-major matrix stack, a view of its storage where a
 * permutation of it already is one (as GEMM libraries take transposed
 * operands, the [p, q] and [q, p] orders both do). Every backend's dot
 * kernel starts here, then calls its GEMM. */
#include <stdlib.h>
#include <string.h>

#include "backend-impl.h"

void em_dot_dims_of(const em_node *n, em_dot_dims *d) {
  const em_array *a = n->in[0], *b = n->in[1];
  const int nca = n->p.dot.nca, nba = n->p.dot.nba;
  uint32_t ma = 0, mb = 0;
  for (int i = 0; i < nca; i++) {
    ma |= 1u << n->p.dot.ca[i];
    mb |= 1u << n->p.dot.cb[i];
  }
  for (int i = 0; i < nba; i++) {
    ma |= 1u << n->p.dot.ba[i];
    mb |= 1u << n->p.dot.bb[i];
  }
  d->nfa = d->nfb = 0;
  for (int i = 0; i < a->ndim; i++)
    if (!(ma >> i & 1u)) d->fa[d->nfa++] = i;
  for (int i = 0; i < b->ndim; i++)
    if (!(mb >> i & 1u)) d->fb[d->nfb++] = i;
  d->B = d->M = d->N = d->K = 1;
  for (int i = 0; i < nba; i++) d->B *= a->shape[n->p.dot.ba[i]];
  for (int i = 0; i < d->nfa; i++) d->M *= a->shape[d->fa[i]];
  for (int i = 0; i < d->nfb; i++) d->N *= b->shape[d->fb[i]];
  for (int i = 0; i < nca; i++) d->K *= a->shape[n->p.dot.ca[i]];
}

/* A DONE array sharing x's buffer with v's shape and strides. */
static em_status alias(const em_array *x, const em_array *v, em_array **c) {
  em_array *t = em_array_alloc(x->dtype, x->ndim, v->shape, x->dev);
  if (!t) return em_fail(EM_ERR_OOM, "[dot] out of host memory");
  memcpy(t->strides, v->strides, sizeof t->strides);
  t->offset = v->offset;
  t->buf = x->buf;
  atomic_fetch_add(&x->buf->refs, 1);
  t->state = EM_STATE_DONE;
  *c = t;
  return EM_OK;
}

static void group_perm(const int *g1, int n1, const int *g2, int n2,
                       const int *g3, int n3, int *perm) {
  int k = 0;
  for (int i = 0; i < n1; i++) perm[k++] = g1[i];
  for (int i = 0; i < n2; i++) perm[k++] = g2[i];
  for (int i = 0; i < n3; i++) perm[k++] = g3[i];
}

em_status em_dot_operand(const em_array *x, const int *bax, int nb,
                         const int *pax, int np, const int *qax, int nq,
                         em_array **c, bool *swapped) {
  int perm[EM_MAX_NDIM];
  em_array v;
  group_perm(bax, nb, pax, np, qax, nq, perm);
  em_array_permuted_view(x, perm, &v);
  *swapped = false;
  if (em_array_is_contiguous(&v)) return alias(x, &v, c);
  em_array v2;
  group_perm(bax, nb, qax, nq, pax, np, perm);
  em_array_permuted_view(x, perm, &v2);
  if (em_array_is_contiguous(&v2)) {
    *swapped = true;
    return alias(x, &v2, c);
  }
  em_array *t = em_array_alloc(x->dtype, x->ndim, v.shape, x->dev);
  if (!t) return em_fail(EM_ERR_OOM, "[dot] out of host memory");
  em_status st = em_alloc_output(t);
  if (st == EM_OK) st = em_backend_for(x->dev)->copy_strided(&v, t->buf->data);
  if (st != EM_OK) {
    em_array_release(t);
    return st;
  }
  t->state = EM_STATE_DONE;
  *c = t;
  return EM_OK;
}
