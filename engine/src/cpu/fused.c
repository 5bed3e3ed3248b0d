/* fused.c — the CPU's elementwise evaluator: a fused group of elementwise
 * nodes runs as a small register program over tiles of TILE elements.
 *
 * The group is a DAG (eval.c fuses a node used several times within one
 * group): the program lists it in post-order with one register per
 * distinct node and per distinct leaf, so a shared node is computed once
 * per tile and a leaf used twice is read once. Leaves (materialised
 * inputs) are read in place when contiguous, filled once per chunk when
 * they are broadcast scalars, and gathered into a tile otherwise; every
 * node writes a tile-sized register that stays in L1/L2, and the root
 * writes straight into the output. A chain of elementwise ops therefore
 * reads its inputs once and writes its output once, however long it is.
 * Tiles are split across the thread pool. */
#include <stdlib.h>
#include <string.h>

#include "../core/backend-impl.h"
#include "../core/parallel.h"
#include "cpu-kernels.h"

#define TILE 1024
#define MAX_REGS 160

typedef enum { R_CONTIG, R_SCALAR, R_GATHER, R_OP } reg_kind;

typedef struct {
  reg_kind kind;
  em_dtype dt;
  size_t es;
  /* leaves */
  const char *base; /* element 0 of the leaf (offset applied) */
  int ndim;         /* coalesced */
  int64_t shape[EM_MAX_NDIM], strides[EM_MAX_NDIM];
  /* ops */
  em_op op;
  int in[3], nin;
  em_unary_kernel uk;
  em_binary_kernel bk;
} reg;

typedef struct {
  reg r[MAX_REGS];
  em_array *src[MAX_REGS]; /* the array each register holds (the memo) */
  int n;
  em_array *root;
  char *out;
  int64_t total;
} program;

/* The register already holding a, or -1 (a linear scan: n < MAX_REGS). */
static int find_reg(const program *p, const em_array *a) {
  for (int r = 0; r < p->n; r++)
    if (p->src[r] == a) return r;
  return -1;
}

/* Merges adjacent axes that walk memory as one. */
static void coalesce(reg *g, const em_array *a) {
  int nd = 0;
  for (int i = 0; i < a->ndim; i++) {
    if (a->shape[i] == 1) continue;
    if (nd > 0 && g->strides[nd - 1] == a->strides[i] * a->shape[i]) {
      g->shape[nd - 1] *= a->shape[i];
      g->strides[nd - 1] = a->strides[i];
    } else {
      g->shape[nd] = a->shape[i];
      g->strides[nd] = a->strides[i];
      nd++;
    }
  }
  g->ndim = nd;
}

static int add_leaf(program *p, em_array *a) {
  reg *g = &p->r[p->n];
  p->src[p->n] = a;
  memset(g, 0, sizeof *g);
  g->dt = a->dtype;
  g->es = em_dtype_size(a->dtype);
  g->base = em_array_ptr(a);
  coalesce(g, a);
  bool scalar = true;
  for (int i = 0; i < g->ndim; i++) scalar &= g->strides[i] == 0;
  if (scalar) g->kind = R_SCALAR;
  else if (g->ndim == 1 && g->strides[0] == 1) g->kind = R_CONTIG;
  else g->kind = R_GATHER;
  return p->n++;
}

typedef struct {
  em_array *a;
  int next;
  int regs[3];
} frame;

#define MAX_DEPTH 64 /* > eval.c's MAX_FUSED + 1 (a path has no repeats) */

/* Appends root's fused group in post-order, each distinct node and leaf
 * once (memo: find_reg), the root last; returns its register or -1. */
static int build(program *p, em_array *x, em_status *st) {
  /* Iterative post-order over the fused DAG. */
  frame stack[MAX_DEPTH];
  int sp = 0;
  stack[sp].a = x;
  stack[sp].next = 0;
  sp++;
  int last = -1;
  while (sp) {
    frame *f = &stack[sp - 1];
    em_node *nd = f->a->node;
    if (f->next > 0) f->regs[f->next - 1] = last;
    if (f->next < nd->nin) {
      em_array *in = nd->in[f->next++];
      int r = find_reg(p, in);
      if (r >= 0) {
        last = r; /* shared: computed (or read) once */
      } else if (in->fused && in->node) {
        if (sp == MAX_DEPTH) goto too_big;
        stack[sp].a = in;
        stack[sp].next = 0;
        sp++;
      } else {
        if (p->n >= MAX_REGS - 1) goto too_big;
        last = add_leaf(p, in);
      }
      continue;
    }
    if (p->n >= MAX_REGS - 1) goto too_big;
    reg *g = &p->r[p->n];
    p->src[p->n] = f->a;
    memset(g, 0, sizeof *g);
    g->kind = R_OP;
    g->dt = f->a->dtype;
    g->es = em_dtype_size(g->dt);
    g->op = nd->op;
    g->nin = nd->nin;
    for (int i = 0; i < nd->nin; i++) g->in[i] = f->regs[i];
    em_dtype in_dt = nd->in[0]->dtype;
    const char *bad = NULL;
    if (g->op == EM_OP_as_type) {
      g->uk = em_cpu_cast_kernel(in_dt, g->dt);
      if (!g->uk) bad = "cast";
    } else if (g->op == EM_OP_select) {
      /* handled inline */
    } else if (g->nin == 1) {
      g->uk = em_cpu_unary_kernel(g->op, in_dt);
      if (!g->uk) bad = "unary";
    } else {
      g->bk = em_cpu_binary_kernel(g->op, in_dt);
      if (!g->bk) bad = "binary";
    }
    if (bad) {
      *st = em_fail(EM_ERR_UNSUPPORTED, "[%s] no CPU kernel for %s -> %s",
                    em_op_name(g->op), em_dtype_name(in_dt),
                    em_dtype_name(g->dt));
      return -1;
    }
    last = p->n++;
    sp--;
  }
  return last;
too_big:
  *st = em_fail(EM_ERR_RUNTIME, "[eval] fused tree too large");
  return -1;
}

/* Copies `len` elements of a strided leaf starting at flat index `start`
 * (row-major over the leaf's coalesced shape) into dst. */
static void gather(const reg *g, int64_t start, int64_t len, char *dst) {
  int nd = g->ndim;
  int64_t idx[EM_MAX_NDIM], rem = start;
  for (int i = nd - 1; i >= 0; i--) {
    idx[i] = rem % g->shape[i];
    rem /= g->shape[i];
  }
  int64_t off = 0;
  for (int i = 0; i < nd; i++) off += idx[i] * g->strides[i];
  const size_t es = g->es;
  const int64_t inner = g->shape[nd - 1], is = g->strides[nd - 1];
  int64_t done = 0;
  while (done < len) {
    int64_t run = inner - idx[nd - 1];
    if (run > len - done) run = len - done;
    const char *src = g->base + off * (int64_t)es;
    switch (es) {
#define G(T)                                                      \
  {                                                               \
    const T *s = (const T *)src;                                  \
    T *d = (T *)(dst + done * (int64_t)es);                       \
    for (int64_t k = 0; k < run; k++) d[k] = s[k * is];           \
  }                                                               \
  break;
      case 1: G(uint8_t)
      case 2: G(uint16_t)
      case 4: G(uint32_t)
      case 8: G(uint64_t)
#undef G
      default:
        for (int64_t k = 0; k < run; k++)
          memcpy(dst + (done + k) * (int64_t)es, src + k * is * (int64_t)es,
                 es);
    }
    done += run;
    off += run * is;
    idx[nd - 1] += run;
    /* carry into outer axes */
    for (int i = nd - 1; i > 0 && idx[i] == g->shape[i]; i--) {
      off -= idx[i] * g->strides[i];
      idx[i] = 0;
      idx[i - 1]++;
      off += g->strides[i - 1];
    }
  }
}

static void select_kernel(const uint8_t *p, const char *a, const char *b,
                          char *y, int64_t n, size_t es) {
  switch (es) {
#define S(T)                                                            \
  {                                                                     \
    const T *x1 = (const T *)a, *x2 = (const T *)b;                     \
    T *o = (T *)y;                                                      \
    for (int64_t i = 0; i < n; i++) o[i] = p[i] ? x1[i] : x2[i];        \
  }                                                                     \
  break;
    case 1: S(uint8_t)
    case 2: S(uint16_t)
    case 4: S(uint32_t)
    case 8: S(uint64_t)
#undef S
    default:
      for (int64_t i = 0; i < n; i++)
        memcpy(y + i * (int64_t)es, (p[i] ? a : b) + i * (int64_t)es, es);
  }
}

typedef struct {
  program *p;
  _Atomic int failed;
} run_ctx;

static void run_tiles(void *vctx, int64_t t0, int64_t t1, int tid) {
  (void)tid;
  run_ctx *c = vctx;
  program *p = c->p;
  char *scratch = malloc((size_t)p->n * TILE * 16);
  if (!scratch) {
    c->failed = 1;
    return;
  }
  const char *ptr[MAX_REGS];
  /* Broadcast scalars: fill their register once for the whole chunk. */
  for (int r = 0; r < p->n; r++) {
    const reg *g = &p->r[r];
    if (g->kind != R_SCALAR) continue;
    char *d = scratch + (size_t)r * TILE * 16;
    for (int k = 0; k < TILE; k++) memcpy(d + k * g->es, g->base, g->es);
  }
  for (int64_t t = t0; t < t1; t++) {
    int64_t s = t * TILE, len = p->total - s < TILE ? p->total - s : TILE;
    for (int r = 0; r < p->n; r++) {
      const reg *g = &p->r[r];
      char *reg_mem = scratch + (size_t)r * TILE * 16;
      switch (g->kind) {
        case R_CONTIG:
          ptr[r] = g->base + s * (int64_t)g->es;
          break;
        case R_SCALAR:
          ptr[r] = reg_mem;
          break;
        case R_GATHER:
          gather(g, s, len, reg_mem);
          ptr[r] = reg_mem;
          break;
        case R_OP: {
          char *dst = r == p->n - 1 ? p->out + s * (int64_t)g->es : reg_mem;
          if (g->op == EM_OP_select)
            select_kernel((const uint8_t *)ptr[g->in[0]], ptr[g->in[1]],
                          ptr[g->in[2]], dst, len, g->es);
          else if (g->uk)
            g->uk(ptr[g->in[0]], dst, len);
          else
            g->bk(ptr[g->in[0]], ptr[g->in[1]], dst, len);
          ptr[r] = dst;
          break;
        }
      }
    }
  }
  free(scratch);
}

static em_status cpu_run_fused(em_array *root) {
  program *p = malloc(sizeof *p);
  if (!p) return em_fail(EM_ERR_OOM, "[eval] out of host memory");
  p->n = 0;
  p->root = root;
  p->total = root->size;
  em_status st = EM_OK;
  build(p, root, &st);
  if (st == EM_OK) st = em_alloc_output(root);
  if (st == EM_OK && p->total > 0) {
    p->out = em_array_ptr(root);
    run_ctx c = {.p = p, .failed = 0};
    int64_t ntiles = (p->total + TILE - 1) / TILE;
    /* ~32K elements per chunk keeps tiny arrays on one thread. */
    em_parallel_for(ntiles, 32, run_tiles, &c);
    if (c.failed)
      st = em_fail(EM_ERR_OOM, "[%s] out of host memory for tile scratch",
                   em_op_name(root->node->op));
  }
  free(p);
  return st;
}

/* Exposed to backend.c, which assembles the CPU backend table. */
em_status em_cpu_run_fused(em_array *root) { return cpu_run_fused(root); }

/* Strided copy into contiguous memory, reusing the gather above. */
void em_cpu_copy_strided(const em_array *src, void *dst) {
  if (src->size == 0) return;
  reg g;
  memset(&g, 0, sizeof g);
  g.es = em_dtype_size(src->dtype);
  g.base = em_array_ptr(src);
  coalesce(&g, src);
  if (g.ndim == 0) {
    memcpy(dst, g.base, g.es);
    return;
  }
  if (g.ndim == 1 && g.strides[0] == 1) {
    memcpy(dst, g.base, (size_t)src->size * g.es);
    return;
  }
  gather(&g, 0, src->size, dst);
}
