/* jit.c — kernels compiled at run time with NVRTC: fused elementwise trees,
 * iota/eye, reductions and row ops.
 *
 * A fused group (a DAG: a node may feed several others of its group)
 * becomes CUDA C source: one register per distinct leaf and node, in
 * post-order, so a shared node is computed once. Leaves are read in place:
 * contiguous ones at the linear index (as 16-byte vectors when every
 * non-scalar leaf is contiguous and aligned), broadcast scalars once per
 * thread, strided ones through their coalesced shape and strides (passed
 * as kernel parameters, so a new shape of the same structure reuses the
 * kernel). Every node is one call into prelude.cuh (em_<op>,
 * em_cast<To>), which carries the per-dtype semantics; a static_assert
 * checks that its result type is the node's dtype. Reductions and row ops
 * instantiate templates of the prelude.
 *
 * Programs are compiled for the device's architecture (sm_XY, cubin), keyed
 * by their source text and cached for the life of the process, and on disk
 * across processes (jit_cache.c, EMILY_CUDA_CACHE_DIR); they are
 * loaded with cudaLibraryLoadData and launched with cudaLaunchKernel, so the
 * engine never links the driver API (libcuda is absent where CI runs). */
#include <nvrtc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cpu/cpu-kernels.h"
#include "cuda-impl.h"
#include "jit-cache.h"

/* The prelude, embedded at build time (EMILY_CUDA_PRELUDE is its path). */
__asm__(".section .rodata\n"
        ".balign 16\n"
        ".globl em_cu_prelude_src\n"
        ".hidden em_cu_prelude_src\n"
        ".type em_cu_prelude_src, @object\n"
        "em_cu_prelude_src:\n"
        ".incbin \"" EMILY_CUDA_PRELUDE "\"\n"
        ".byte 0\n"
        ".previous\n");
extern const char em_cu_prelude_src[];

/* ---- string building ------------------------------------------------------ */

typedef struct {
  char *s;
  size_t n, cap;
  bool oom;
} sbuf;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b,
                                                            const char *fmt,
                                                            ...) {
  if (b->oom) return;
  for (;;) {
    size_t room = b->cap - b->n;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? room : 0, fmt, ap);
    va_end(ap);
    if (k < 0) {
      b->oom = true;
      return;
    }
    if (b->s && (size_t)k < room) {
      b->n += (size_t)k;
      return;
    }
    size_t cap = b->cap ? b->cap * 2 : 4096;
    while (cap < b->n + (size_t)k + 1) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
      b->oom = true;
      return;
    }
    b->s = s;
    b->cap = cap;
  }
}

/* ---- compiling and caching ------------------------------------------------- */

#define NKER 4
#define NBUCKETS 4096

typedef struct prog {
  struct prog *next;
  uint64_t h;
  char *key;
  cudaLibrary_t lib;
  cudaKernel_t k[NKER];
} prog;

static prog *g_progs[NBUCKETS];
static pthread_mutex_t g_prog_m = PTHREAD_MUTEX_INITIALIZER;

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static void arch_of(int dev, char *buf, size_t cap) {
  const em_cu_props *p = em_cu_device_props(dev);
  snprintf(buf, cap, "sm_%d%d", p->major, p->minor);
}

/* NVRTC options after --gpu-architecture, and the architecture of the PTX
 * fallback: part of the disk cache's key (em_cu_jit_compile). */
/* -pch: NVRTC's automatic precompiled header. The prelude is handed to it
 * as the header emily_prelude.cuh, parsed once per process and reused by
 * every later compile (about half of a small kernel's compile time). */
static const char *const jit_opts[] = {"--std=c++17", "-default-device", "-pch"};
#define PRELUDE_NAME "emily_prelude.cuh"
#define NOPTS ((int)(sizeof jit_opts / sizeof jit_opts[0]))
#define PTX_ARCH "compute_90"

/* head + prelude + "\n" + body, malloc'd (NULL: out of host memory). */
static char *jit_text(const char *head, const char *body) {
  size_t lh = strlen(head), lp = strlen(em_cu_prelude_src), lb = strlen(body);
  char *s = malloc(lh + lp + lb + 2);
  if (!s) return NULL;
  memcpy(s, head, lh);
  memcpy(s + lh, em_cu_prelude_src, lp);
  s[lh + lp] = '\n';
  memcpy(s + lh + lp + 1, body, lb + 1);
  return s;
}

/* Compiles the prelude + body with NVRTC (the prelude as an included
 * header, for -pch); *image is a cubin (or PTX when this NVRTC does not
 * know the device's architecture). Caller frees *image. */
static em_status nvrtc_compile(const char *op, const char *arch,
                               const char *body, char **image, size_t *size) {
  *image = NULL;
  static const char inc[] = "#include \"" PRELUDE_NAME "\"\n";
  size_t lb = strlen(body);
  char *src = malloc(sizeof inc + lb);
  if (!src) return em_fail(EM_ERR_OOM, "[%s] out of host memory", op);
  memcpy(src, inc, sizeof inc - 1);
  memcpy(src + sizeof inc - 1, body, lb + 1);
  const char *hsrc[1] = {em_cu_prelude_src}, *hname[1] = {PRELUDE_NAME};
  nvrtcProgram prog;
  nvrtcResult r = nvrtcCreateProgram(&prog, src, "emily_jit.cu", 1, hsrc, hname);
  if (r != NVRTC_SUCCESS) {
    free(src);
    return em_fail(EM_ERR_RUNTIME, "[%s] NVRTC: %s", op, nvrtcGetErrorString(r));
  }
  char archopt[64];
  snprintf(archopt, sizeof archopt, "--gpu-architecture=%s", arch);
  const char *opts[1 + NOPTS];
  opts[0] = archopt;
  for (int i = 0; i < NOPTS; i++) opts[1 + i] = jit_opts[i];
  r = nvrtcCompileProgram(prog, 1 + NOPTS, opts);
  bool ptx = false;
  if (r == NVRTC_ERROR_INVALID_OPTION) { /* unknown sm: PTX for the driver */
    nvrtcDestroyProgram(&prog);
    r = nvrtcCreateProgram(&prog, src, "emily_jit.cu", 1, hsrc, hname);
    if (r != NVRTC_SUCCESS) {
      free(src);
      return em_fail(EM_ERR_RUNTIME, "[%s] NVRTC: %s", op, nvrtcGetErrorString(r));
    }
    opts[0] = "--gpu-architecture=" PTX_ARCH;
    r = nvrtcCompileProgram(prog, 1 + NOPTS, opts);
    ptx = true;
  }
  em_status st = EM_OK;
  if (r != NVRTC_SUCCESS) {
    size_t ls = 0;
    char *log = nvrtcGetProgramLogSize(prog, &ls) == NVRTC_SUCCESS
                    ? malloc(ls + 1) : NULL;
    if (log && nvrtcGetProgramLog(prog, log) != NVRTC_SUCCESS) ls = 0;
    if (log) log[ls] = '\0';
    if (getenv("EMILY_CUDA_DEBUG"))
      fprintf(stderr, "---- NVRTC failed (%s)\n%s\n---- log\n%s\n", op, body,
              log ? log : "");
    /* The first error line is the useful part. */
    const char *e = log ? strstr(log, "error") : NULL;
    st = em_fail(EM_ERR_RUNTIME, "[%s] NVRTC could not compile the kernel: %.300s",
                 op, e ? e : nvrtcGetErrorString(r));
    free(log);
  } else {
    size_t n = 0;
    r = ptx ? nvrtcGetPTXSize(prog, &n) : nvrtcGetCUBINSize(prog, &n);
    char *img = r == NVRTC_SUCCESS ? malloc(n) : NULL;
    if (img) r = ptx ? nvrtcGetPTX(prog, img) : nvrtcGetCUBIN(prog, img);
    if (!img || r != NVRTC_SUCCESS) {
      free(img);
      st = em_fail(EM_ERR_RUNTIME, "[%s] NVRTC: could not read the program", op);
    } else {
      *image = img;
      *size = n;
    }
  }
  nvrtcDestroyProgram(&prog);
  free(src);
  return st;
}


/* nvrtc_compile() through the on-disk cache (jit_cache.c). The key is a header
 * naming everything besides the text that decides the image (NVRTC's
 * version, the architecture, the options, the PTX fallback) followed by the
 * prelude and the body (what NVRTC compiles, the prelude as a header);
 * changing the prelude or any generator changes it. */
em_status em_cu_jit_compile(const char *op, const char *arch, const char *body,
                            bool lookup, char **image, size_t *size,
                            bool *from_disk) {
  *image = NULL;
  *size = 0;
  if (from_disk) *from_disk = false;
  char dir[4096];
  int major = 0, minor = 0;
  if (!em_cu_kcache_dir(dir, sizeof dir) ||
      nvrtcVersion(&major, &minor) != NVRTC_SUCCESS)
    return nvrtc_compile(op, arch, body, image, size);
  sbuf h = {0};
  sb_printf(&h, "emily jit cache key 1\nnvrtc %d.%d\narch %s\nptx fallback %s\noptions",
            major, minor, arch, PTX_ARCH);
  for (int i = 0; i < NOPTS; i++) sb_printf(&h, " %s", jit_opts[i]);
  sb_printf(&h, "\n----\n");
  char *key = h.oom ? NULL : jit_text(h.s, body);
  free(h.s);
  if (!key) return em_fail(EM_ERR_OOM, "[%s] out of host memory", op);
  size_t klen = strlen(key);
  if (lookup) {
    size_t n = 0;
    char *img = em_cu_kcache_load(dir, key, klen, &n);
    if (img) {
      free(key);
      *image = img;
      *size = n;
      if (from_disk) *from_disk = true;
      return EM_OK;
    }
  }
  em_status st = nvrtc_compile(op, arch, body, image, size);
  if (st == EM_OK) (void)em_cu_kcache_store(dir, key, klen, *image, *size);
  free(key);
  return st;
}

/* The kernels `names` of the program `body` for device dev, compiled once. */
static em_status get_kernels(const char *op, int dev, const char *body,
                             const char *const *names, int nk,
                             cudaKernel_t *out) {
  char arch[32];
  arch_of(dev, arch, sizeof arch);
  size_t la = strlen(arch), lb = strlen(body);
  char *key = malloc(la + lb + 2);
  if (!key) return em_fail(EM_ERR_OOM, "[%s] out of host memory", op);
  memcpy(key, arch, la);
  key[la] = '\n';
  memcpy(key + la + 1, body, lb + 1);
  uint64_t h = fnv1a(key);
  prog **bucket = &g_progs[h % NBUCKETS];
  pthread_mutex_lock(&g_prog_m);
  for (prog *p = *bucket; p; p = p->next)
    if (p->h == h && strcmp(p->key, key) == 0) {
      for (int i = 0; i < nk; i++) out[i] = p->k[i];
      pthread_mutex_unlock(&g_prog_m);
      free(key);
      return EM_OK;
    }
  pthread_mutex_unlock(&g_prog_m);

  /* Second level: the disk (EMILY_CUDA_CACHE_DIR), then NVRTC. Two threads
   * missing the same program both compile it; the first to insert wins. */
  char *img = NULL;
  size_t isz = 0;
  bool disk = false;
  em_status st = em_cu_jit_compile(op, arch, body, true, &img, &isz, &disk);
  if (st != EM_OK) {
    free(key);
    return st;
  }
  prog *np = calloc(1, sizeof *np);
  if (!np) {
    free(img);
    free(key);
    return em_fail(EM_ERR_OOM, "[%s] out of host memory", op);
  }
  (void)em_cu_enter(dev);
  cudaError_t e = cudaLibraryLoadData(&np->lib, img, NULL, NULL, 0, NULL, NULL, 0);
  if (e != cudaSuccess && disk) { /* a cached image the driver refuses: */
    (void)cudaGetLastError();     /* compile afresh, replacing the entry */
    free(img);
    st = em_cu_jit_compile(op, arch, body, false, &img, &isz, NULL);
    if (st != EM_OK) {
      free(np);
      free(key);
      return st;
    }
    e = cudaLibraryLoadData(&np->lib, img, NULL, NULL, 0, NULL, NULL, 0);
  }
  free(img);
  bool loaded = e == cudaSuccess;
  for (int i = 0; e == cudaSuccess && i < nk; i++)
    e = cudaLibraryGetKernel(&np->k[i], np->lib, names[i]);
  if (e != cudaSuccess) {
    if (loaded) (void)cudaLibraryUnload(np->lib);
    free(np);
    free(key);
    return em_cu_fail(e, op, "loading a run-time compiled kernel");
  }
  np->h = h;
  np->key = key;
  pthread_mutex_lock(&g_prog_m);
  for (prog *p = *bucket; p; p = p->next)
    if (p->h == h && strcmp(p->key, key) == 0) { /* another thread won */
      for (int i = 0; i < nk; i++) out[i] = p->k[i];
      pthread_mutex_unlock(&g_prog_m);
      (void)cudaLibraryUnload(np->lib);
      free(np->key);
      free(np);
      return EM_OK;
    }
  np->next = *bucket;
  *bucket = np;
  for (int i = 0; i < nk; i++) out[i] = np->k[i];
  pthread_mutex_unlock(&g_prog_m);
  return EM_OK;
}

static em_status launch(const char *op, cudaKernel_t k, unsigned grid,
                        dim3 block, void **args, cudaStream_t s) {
  dim3 g = {grid ? grid : 1, 1, 1};
  CU_TRY(op, cudaLaunchKernel((const void *)k, g, block, args, 0, s));
  return EM_OK;
}

static unsigned grid_cap(int64_t tasks, int dev, int per_sm) {
  int64_t cap = (int64_t)em_cu_device_props(dev)->sms * per_sm;
  if (tasks > cap) tasks = cap;
  return (unsigned)(tasks < 1 ? 1 : tasks);
}

/* ---- fused elementwise trees ----------------------------------------------- */

#define MAX_REGS 160
#define MAX_PARAM_SLOTS 500 /* 8-byte kernel parameters (4 KB) */

typedef enum { R_CONTIG, R_SCALAR, R_STRIDED, R_OP } rkind;

typedef struct {
  rkind kind;
  em_dtype dt;
  /* leaves */
  const char *base;
  em_array *arr;
  int nd; /* coalesced */
  int64_t shape[EM_MAX_NDIM], strides[EM_MAX_NDIM];
  /* nodes */
  em_op op;
  int in[3], nin;
} creg;

typedef struct {
  creg r[MAX_REGS];
  em_array *src[MAX_REGS]; /* build's memo: the array each register holds */
  int n;
  em_array *root;
} cprog;

static bool is_subbyte(em_dtype t) {
  return t == EM_S2 || t == EM_S4 || t == EM_U2 || t == EM_U4;
}
/* The C type of a dtype in generated code: s2/s4 live (and compute) as
 * s8, u2/u4 as u8; every other dtype has its own type in the prelude. */
static const char *tn(em_dtype t) {
  if (t == EM_S2 || t == EM_S4) return "s8";
  if (t == EM_U2 || t == EM_U4) return "u8";
  return em_dtype_name(t);
}
static int sub_bits(em_dtype t) { return t == EM_S2 || t == EM_U2 ? 2 : 4; }

/* Every op the CPU defines (em_unary_out_dtype / em_binary_out_dtype)
 * has a prelude function for every storable dtype. */
static bool op_ok(em_op op, em_dtype in) {
  (void)op;
  return em_cu_dtype_storable(in) != 0;
}

static void coalesce(creg *g, const em_array *a) {
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
  g->nd = nd;
}

static void set_leaf(creg *g, em_array *a) {
  memset(g, 0, sizeof *g);
  g->dt = a->dtype;
  g->arr = a;
  g->base = em_array_ptr(a);
  coalesce(g, a);
  bool scalar = true;
  for (int i = 0; i < g->nd; i++) scalar &= g->strides[i] == 0;
  if (scalar) g->kind = R_SCALAR;
  else if (g->nd == 1 && g->strides[0] == 1) g->kind = R_CONTIG;
  else g->kind = R_STRIDED;
}

typedef struct {
  em_array *a;
  int next;
  int regs[3];
} frame;

/* The register already holding a, or -1 (a linear scan: n < MAX_REGS). */
static int find_reg(const cprog *p, const em_array *a) {
  for (int r = 0; r < p->n; r++)
    if (p->src[r] == a) return r;
  return -1;
}

#define MAX_DEPTH 64 /* > eval.c's MAX_FUSED + 1 (a path has no repeats) */

/* x's fused group in post-order (the root last), as the CPU's fused.c: the
 * group is a DAG, and each distinct node and leaf gets one register (memo:
 * find_reg), so a shared node is computed once per element. The order
 * depends only on the graph (inputs in node order), so the same graph
 * always yields the same source text, the cache key. */
static em_status build(cprog *p, em_array *x) {
  frame stack[MAX_DEPTH];
  int sp = 0, last = -1;
  stack[sp].a = x;
  stack[sp].next = 0;
  sp++;
  while (sp) {
    frame *f = &stack[sp - 1];
    em_node *nd = f->a->node;
    if (f->next > 0) f->regs[f->next - 1] = last;
    if (f->next < nd->nin) {
      em_array *in = nd->in[f->next++];
      int r = find_reg(p, in);
      if (r >= 0) {
        last = r; /* shared: computed (or loaded) once */
      } else if (in->fused && in->node) {
        if (sp == MAX_DEPTH) goto too_big;
        stack[sp].a = in;
        stack[sp].next = 0;
        sp++;
      } else {
        if (p->n >= MAX_REGS - 1) goto too_big;
        if (!em_cu_dtype_storable(in->dtype))
          return em_fail(EM_ERR_UNSUPPORTED,
                         "[%s] %s arrays are not supported on CUDA",
                         em_op_name(x->node->op), em_dtype_name(in->dtype));
        set_leaf(&p->r[p->n], in);
        p->src[p->n] = in;
        last = p->n++;
      }
      continue;
    }
    if (p->n >= MAX_REGS - 1) goto too_big;
    creg *g = &p->r[p->n];
    p->src[p->n] = f->a;
    memset(g, 0, sizeof *g);
    g->kind = R_OP;
    g->dt = f->a->dtype;
    g->op = nd->op;
    g->nin = nd->nin;
    for (int i = 0; i < nd->nin; i++) g->in[i] = f->regs[i];
    em_dtype in_dt = nd->in[nd->op == EM_OP_select ? 1 : 0]->dtype;
    if (!em_cu_dtype_storable(g->dt) || !op_ok(g->op, in_dt))
      return em_fail(EM_ERR_UNSUPPORTED, "[%s] no CUDA kernel for %s -> %s",
                     em_op_name(g->op), em_dtype_name(in_dt),
                     em_dtype_name(g->dt));
    last = p->n++;
    sp--;
  }
  (void)last;
  return EM_OK;
too_big:
  return em_fail(EM_ERR_RUNTIME, "[eval] fused tree too large");
}

static void emit_node(sbuf *b, const cprog *p, int r) {
  const creg *g = &p->r[r];
  const char *T = tn(g->dt);
  const em_dtype in_dt = p->r[g->in[g->op == EM_OP_select ? 1 : 0]].dt;
  if (g->op == EM_OP_as_type && is_subbyte(g->dt)) {
    /* to s2..u4: the 8-bit conversion, then wrap (int sources) or clamp
     * (float and complex sources, which saturate), as cast_staged */
    sb_printf(b, "const %s r%d = em_%s_%s(em_cast<%s>(r%d));\n", T, r,
              em_dtype_is_int(in_dt) ? "wrap" : "clamp", em_dtype_name(g->dt),
              T, g->in[0]);
  } else if (g->op == EM_OP_as_type) {
    sb_printf(b, "const %s r%d = em_cast<%s>(r%d);\n", T, r, T, g->in[0]);
  } else if (is_subbyte(g->dt) && g->nin == 1 &&
             (g->op == EM_OP_count_leading_zeros ||
              g->op == EM_OP_population_count)) {
    sb_printf(b, "const %s r%d = em_wrap_%s(em_%s_w<%d>(r%d));\n", T, r,
              em_dtype_name(g->dt),
              g->op == EM_OP_count_leading_zeros ? "clz" : "popc",
              sub_bits(g->dt), g->in[0]);
  } else if (is_subbyte(g->dt) && g->op != EM_OP_select) {
    /* the 8-bit op, then wrap to the width (subbyte.c's sub_binary /
     * sub_unary; exact for in-range results too) */
    char call[96];
    if (g->nin == 1)
      snprintf(call, sizeof call, "em_%s(r%d)", em_op_name(g->op), g->in[0]);
    else
      snprintf(call, sizeof call, "em_%s(r%d, r%d)", em_op_name(g->op),
               g->in[0], g->in[1]);
    sb_printf(b,
              "static_assert(em_same<decltype(%s), %s>::v, \"%s: result type\");\n"
              "const %s r%d = em_wrap_%s(%s);\n",
              call, T, em_op_name(g->op), T, r, em_dtype_name(g->dt), call);
  } else if (g->op == EM_OP_select) {
    sb_printf(b, "const %s r%d = r%d ? r%d : r%d;\n", T, r, g->in[0], g->in[1],
              g->in[2]);
  } else {
    char call[96];
    if (g->nin == 1)
      snprintf(call, sizeof call, "em_%s(r%d)", em_op_name(g->op), g->in[0]);
    else
      snprintf(call, sizeof call, "em_%s(r%d, r%d)", em_op_name(g->op),
               g->in[0], g->in[1]);
    sb_printf(b,
              "static_assert(em_same<decltype(%s), %s>::v, \"%s: result type\");\n"
              "const %s r%d = %s;\n",
              call, T, em_op_name(g->op), T, r, call);
  }
}

/* The body for one element (vec: inside the unrolled vector loop). */
static void emit_body(sbuf *b, const cprog *p, bool vec) {
  for (int r = 0; r < p->n; r++) {
    const creg *g = &p->r[r];
    const char *T = tn(g->dt);
    switch (g->kind) {
      case R_CONTIG:
        if (vec) sb_printf(b, "const %s r%d = a%d.v[u];\n", T, r, r);
        else sb_printf(b, "const %s r%d = ((const %s *)p.p%d)[i];\n", T, r, T, r);
        break;
      case R_SCALAR:
        sb_printf(b, "const %s r%d = s%d;\n", T, r, r);
        break;
      case R_STRIDED:
        sb_printf(b, "I o%d = 0;\n{\nI q = i;\n", r);
        for (int d = g->nd - 1; d > 0; d--)
          sb_printf(b,
                    "{ const I k = q %% (I)p.sh%d_%d; q /= (I)p.sh%d_%d; "
                    "o%d += k * (I)p.st%d_%d; }\n",
                    r, d, r, d, r, r, d);
        sb_printf(b, "o%d += q * (I)p.st%d_0;\n}\n", r, r);
        sb_printf(b, "const %s r%d = ((const %s *)p.p%d)[o%d];\n", T, r, T, r, r);
        break;
      case R_OP:
        emit_node(b, p, r);
        break;
    }
  }
}

/* The whole kernel `k<tag>` with parameter struct `P<tag>`. */
static void gen_fused(sbuf *b, const cprog *p, int vec, bool i32,
                      const char *tag) {
  const char *To = tn(p->r[p->n - 1].dt);
  sb_printf(b, "struct P%s {\nlong long n;\nchar *out;\n", tag);
  for (int r = 0; r < p->n; r++) {
    const creg *g = &p->r[r];
    if (g->kind == R_OP) continue;
    sb_printf(b, "const char *p%d;\n", r);
    if (g->kind == R_STRIDED)
      for (int d = 0; d < g->nd; d++)
        sb_printf(b, "long long sh%d_%d;\nlong long st%d_%d;\n", r, d, r, d);
  }
  sb_printf(b, "};\n");
  sb_printf(b,
            "extern \"C\" __global__ void __launch_bounds__(256) k%s(const P%s p) {\n"
            "typedef %s I;\n"
            "const I n = (I)p.n;\n"
            "const I stride = (I)gridDim.x * (I)blockDim.x;\n"
            "const I t0 = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x;\n",
            tag, tag, i32 ? "int" : "long long");
  for (int r = 0; r < p->n; r++)
    if (p->r[r].kind == R_SCALAR)
      sb_printf(b, "const %s s%d = *(const %s *)p.p%d;\n", tn(p->r[r].dt), r,
                tn(p->r[r].dt), r);
  if (vec > 1) {
    sb_printf(b, "const I nv = n / %d;\nfor (I v = t0; v < nv; v += stride) {\n", vec);
    for (int r = 0; r < p->n; r++)
      if (p->r[r].kind == R_CONTIG)
        sb_printf(b, "const em_vec<%s, %d> a%d = ((const em_vec<%s, %d> *)p.p%d)[v];\n",
                  tn(p->r[r].dt), vec, r, tn(p->r[r].dt), vec, r);
    sb_printf(b, "em_vec<%s, %d> o;\n#pragma unroll\nfor (int u = 0; u < %d; u++) {\n",
              To, vec, vec);
    emit_body(b, p, true);
    sb_printf(b, "o.v[u] = r%d;\n}\n((em_vec<%s, %d> *)p.out)[v] = o;\n}\n", p->n - 1,
              To, vec);
    sb_printf(b, "for (I i = nv * %d + t0; i < n; i += stride) {\n", vec);
  } else {
    sb_printf(b, "for (I i = t0; i < n; i += stride) {\n");
  }
  emit_body(b, p, false);
  sb_printf(b, "((%s *)p.out)[i] = r%d;\n}\n}\n", To, p->n - 1);
}

static int64_t max_offset(const creg *g) {
  int64_t m = 0;
  for (int d = 0; d < g->nd; d++)
    m += (g->strides[d] < 0 ? -g->strides[d] : g->strides[d]) * (g->shape[d] - 1);
  return m;
}

em_status em_cu_run_fused(em_array *root) {
  const char *op = em_op_name(root->node->op);
  int dev = root->dev.index;
  cudaStream_t s = em_cu_enter(dev);
  cprog *p = calloc(1, sizeof *p);
  if (!p) return em_fail(EM_ERR_OOM, "[%s] out of host memory", op);
  p->root = root;
  em_array *temps[MAX_REGS];
  int ntemps = 0;
  sbuf b = {0};
  em_status st = build(p, root);
  if (st == EM_OK) st = em_alloc_output(root);
  const int64_t n = root->size;
  if (st != EM_OK || n == 0) goto done;

  /* Parameters: n, out, then per leaf its pointer (+ shape/strides). */
  int slots = 2;
  for (int r = 0; r < p->n; r++)
    if (p->r[r].kind != R_OP)
      slots += 1 + (p->r[r].kind == R_STRIDED ? 2 * p->r[r].nd : 0);
  if (slots > MAX_PARAM_SLOTS) /* rare: make the strided leaves contiguous */
    for (int r = 0; r < p->n && st == EM_OK; r++) {
      creg *g = &p->r[r];
      if (g->kind != R_STRIDED) continue;
      st = em_contiguous(g->arr, &temps[ntemps]);
      if (st != EM_OK) break;
      em_array *t = temps[ntemps++];
      g->kind = R_CONTIG;
      g->base = em_array_ptr(t);
      g->nd = 1;
    }
  if (st != EM_OK) goto done;

  bool i32 = n < ((int64_t)1 << 30), any_strided = false;
  size_t maxes = em_dtype_size(root->dtype);
  for (int r = 0; r < p->n; r++) {
    const creg *g = &p->r[r];
    if (g->kind == R_STRIDED) {
      any_strided = true;
      if (max_offset(g) >= ((int64_t)1 << 30)) i32 = false;
    }
    if (g->kind == R_CONTIG && em_dtype_size(g->dt) > maxes)
      maxes = em_dtype_size(g->dt);
  }
  int vec = any_strided ? 1 : (int)(16 / maxes);
  if (vec < 1) vec = 1;
  if (vec > 1) {
    uintptr_t ob = (uintptr_t)em_array_ptr(root);
    if (ob % (vec * em_dtype_size(root->dtype))) vec = 1;
    for (int r = 0; r < p->n && vec > 1; r++)
      if (p->r[r].kind == R_CONTIG &&
          (uintptr_t)p->r[r].base % (vec * em_dtype_size(p->r[r].dt)))
        vec = 1;
  }
  gen_fused(&b, p, vec, i32, "");
  if (b.oom) {
    st = em_fail(EM_ERR_OOM, "[%s] out of host memory", op);
    goto done;
  }
  cudaKernel_t k;
  const char *name = "k";
  st = get_kernels(op, dev, b.s, &name, 1, &k);
  if (st != EM_OK) goto done;

  uint64_t params[MAX_PARAM_SLOTS];
  int np = 0;
  params[np++] = (uint64_t)n;
  params[np++] = (uint64_t)(uintptr_t)em_array_ptr(root);
  for (int r = 0; r < p->n; r++) {
    const creg *g = &p->r[r];
    if (g->kind == R_OP) continue;
    params[np++] = (uint64_t)(uintptr_t)g->base;
    if (g->kind == R_STRIDED)
      for (int d = 0; d < g->nd; d++) {
        params[np++] = (uint64_t)g->shape[d];
        params[np++] = (uint64_t)g->strides[d];
      }
  }
  void *args[1] = {params};
  int64_t items = vec > 1 ? n / vec : n;
  st = launch(op, k, grid_cap((items + 255) / 256, dev, 32), (dim3){256, 1, 1},
              args, s);
done:
  for (int i = 0; i < ntemps; i++) em_array_release(temps[i]);
  free(b.s);
  free(p);
  return st;
}

/* ---- iota / eye -------------------------------------------------------------- */

static void gen_iota(sbuf *b, em_dtype t, bool eye, const char *tag) {
  sb_printf(b,
            "extern \"C\" __global__ void __launch_bounds__(256) k%s(long long n, "
            "char *out, long long len, long long inner) {\n"
            "const long long stride = (long long)gridDim.x * blockDim.x;\n"
            "for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; "
            "i < n; i += stride) {\n"
            "const s64 v = %s;\n"
            "((%s *)out)[i] = %s%s(em_cast<%s>(v));\n}\n}\n",
            tag,
            eye ? "(s64)(((i / inner) % len) == (i % inner))"
                : "(i / inner) % len",
            tn(t), is_subbyte(t) ? "em_wrap_" : "",
            is_subbyte(t) ? em_dtype_name(t) : "", tn(t));
}

em_status em_cu_iota_eye(em_array *out, bool eye, int64_t len, int64_t inner) {
  const char *op = eye ? "eye" : "iota";
  if (!em_cu_dtype_storable(out->dtype))
    return em_fail(EM_ERR_UNSUPPORTED, "[%s] %s arrays are not supported on CUDA",
                   op, em_dtype_name(out->dtype));
  int dev = out->dev.index;
  cudaStream_t s = em_cu_enter(dev);
  em_status st = em_alloc_output(out);
  if (st != EM_OK || out->size == 0) return st;
  sbuf b = {0};
  gen_iota(&b, out->dtype, eye, "");
  if (b.oom) return em_fail(EM_ERR_OOM, "[%s] out of host memory", op);
  cudaKernel_t k;
  const char *name = "k";
  st = get_kernels(op, dev, b.s, &name, 1, &k);
  free(b.s);
  if (st != EM_OK) return st;
  long long n = out->size, l = len < 1 ? 1 : len, in = inner < 1 ? 1 : inner;
  void *o = em_array_ptr(out);
  void *args[4] = {&n, &o, &l, &in};
  return launch(op, k, grid_cap((n + 255) / 256, dev, 32), (dim3){256, 1, 1},
                args, s);
}

/* ---- conversion of a contiguous buffer (dot's f8 staging) ------------------------ */

static void gen_convert(sbuf *b, em_dtype from, em_dtype to, const char *tag) {
  char conv[96];
  if (is_subbyte(to))
    snprintf(conv, sizeof conv, "em_%s_%s(em_cast<%s>(x[i]))",
             em_dtype_is_int(from) ? "wrap" : "clamp", em_dtype_name(to), tn(to));
  else
    snprintf(conv, sizeof conv, "em_cast<%s>(x[i])", tn(to));
  sb_printf(b,
            "extern \"C\" __global__ void __launch_bounds__(256) k%s(long long n, "
            "const char *xp, char *yp) {\n"
            "const %s *x = (const %s *)xp;\n%s *y = (%s *)yp;\n"
            "const long long stride = (long long)gridDim.x * blockDim.x;\n"
            "for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; "
            "i < n; i += stride) y[i] = %s;\n}\n",
            tag, tn(from), tn(from), tn(to), tn(to), conv);
}

em_status em_cu_convert(em_dtype from, em_dtype to, const void *x, void *y,
                        int64_t n, int dev) {
  const char *op = "as_type";
  if (!em_cu_dtype_storable(from) || !em_cu_dtype_storable(to))
    return em_fail(EM_ERR_UNSUPPORTED, "[%s] %s -> %s is not supported on CUDA",
                   op, em_dtype_name(from), em_dtype_name(to));
  if (n <= 0) return EM_OK;
  cudaStream_t s = em_cu_enter(dev);
  sbuf b = {0};
  gen_convert(&b, from, to, "");
  if (b.oom) return em_fail(EM_ERR_OOM, "[%s] out of host memory", op);
  cudaKernel_t k;
  const char *name = "k";
  em_status st = get_kernels(op, dev, b.s, &name, 1, &k);
  free(b.s);
  if (st != EM_OK) return st;
  long long nn = n;
  void *args[3] = {&nn, (void *)&x, &y};
  return launch(op, k, grid_cap((n + 255) / 256, dev, 32), (dim3){256, 1, 1},
                args, s);
}

/* ---- reductions ---------------------------------------------------------------- */

typedef struct {
  const void *x;
  void *y;
  int64_t outer, r, inner, S, chunk;
} redp; /* mirrors RedP in the prelude */

static void gen_reduce(sbuf *b, const char *tmpl, em_dtype t, const char *tag) {
  const char *T = tn(t);
  char op[96];
  /* s2..u4: the 8-bit reduction; sum/product wrap, max/min clamp */
  int fix = 0;
  if (is_subbyte(t)) {
    int k = t == EM_S2 ? 1 : t == EM_S4 ? 2 : t == EM_U2 ? 3 : 4;
    if (!strcmp(tmpl, "SumOp") || !strcmp(tmpl, "ProdOp")) fix = k;
    else if (!strcmp(tmpl, "MaxOp") || !strcmp(tmpl, "MinOp")) fix = k + 4;
  }
  if (fix) snprintf(op, sizeof op, "SubFix<%s<%s>, %d>", tmpl, T, fix);
  else snprintf(op, sizeof op, "%s<%s>", tmpl, T);
  sb_printf(b,
            "extern \"C\" __global__ void __launch_bounds__(256) row%s(const RedP p) "
            "{ red_row<%s, %s>(p); }\n"
            "extern \"C\" __global__ void __launch_bounds__(256) col%s(const RedP p) "
            "{ red_col<%s, %s, false>(p); }\n"
            "extern \"C\" __global__ void __launch_bounds__(256) acc%s(const RedP p) "
            "{ red_col<%s, %s, true>(p); }\n",
            tag, op, T, tag, op, T, tag, op, T);
}

#define ACC_MAX 16 /* bytes of the largest accumulator (ArgAcc, c128) */

em_status em_cu_reduce(const char *op, const char *tmpl, em_dtype t,
                       em_dtype out_t, const void *x, void *y, int64_t outer,
                       int64_t r, int64_t inner, int dev) {
  (void)out_t;
  if (!em_cu_dtype_storable(t))
    return em_fail(EM_ERR_UNSUPPORTED, "[%s] %s arrays are not supported on CUDA",
                   op, em_dtype_name(t));
  const int64_t cols = outer * inner;
  if (cols == 0) return EM_OK;
  cudaStream_t s = em_cu_enter(dev);
  sbuf b = {0};
  gen_reduce(&b, tmpl, t, "");
  if (b.oom) return em_fail(EM_ERR_OOM, "[%s] out of host memory", op);
  cudaKernel_t k[3];
  const char *names[3] = {"row", "col", "acc"};
  em_status st = get_kernels(op, dev, b.s, names, 3, k);
  free(b.s);
  if (st != EM_OK) return st;
  const int64_t sms = em_cu_device_props(dev)->sms, target = sms * 8;
  const bool rowk = inner == 1 && r >= 1024;
  int64_t S = 1;
  if (rowk) {
    if (outer < target) S = (target + outer - 1) / outer;
    int64_t most = (r + 4095) / 4096;
    if (S > most) S = most;
  } else {
    int64_t ncb = (cols + 31) / 32;
    if (ncb < target && r >= 256) {
      S = (target + ncb - 1) / ncb;
      int64_t most = (r + 63) / 64;
      if (S > most) S = most;
    }
  }
  if (S < 1) S = 1;
  int64_t chunk = r ? (r + S - 1) / S : 0;
  if (rowk) chunk = (chunk + 15) / 16 * 16; /* keeps vector loads aligned */
  if (r) S = (r + chunk - 1) / chunk;
  void *ws = NULL;
  if (S > 1) {
    ws = em_cuda_alloc(dev, (size_t)(cols * S) * ACC_MAX, &st);
    if (!ws) return st;
  }
  redp p1 = {x, S > 1 ? ws : y, outer, r, inner, S, chunk};
  void *a1[1] = {&p1};
  if (rowk)
    st = launch(op, k[0], grid_cap(outer * S, dev, 16), (dim3){256, 1, 1}, a1, s);
  else
    st = launch(op, k[1], grid_cap(((cols + 31) / 32) * S, dev, 16),
                (dim3){32, 8, 1}, a1, s);
  if (st == EM_OK && S > 1) {
    /* partials: [outer, S, 1] (row kernel) or [1, S, cols] (column kernel) */
    redp p2 = {ws, y, rowk ? outer : 1, S, rowk ? 1 : cols, 1, S};
    void *a2[1] = {&p2};
    st = launch(op, k[2], grid_cap((cols + 31) / 32, dev, 16), (dim3){32, 8, 1},
                a2, s);
  }
  if (ws) em_cuda_free(dev, ws, (size_t)(cols * S) * ACC_MAX);
  return st;
}

/* ---- row ops ---------------------------------------------------------------------- */

typedef struct {
  const void *x;
  void *y;
  const void *w, *b;
  int64_t rows, d;
  double eps;
  int64_t op;
} rowp; /* mirrors RowP in the prelude */

/* code: RowP's op (0 softmax, 1 logsumexp, 2 layer_norm, 3 rms_norm), plus
 * 4 with a weight and 8 with a bias; the register-resident kernels are
 * compiled for it (regf: rows that fill the block's registers exactly,
 * regp: partly), the other two read p.op, p.w and p.b at run time. */
static void gen_rows(sbuf *b, em_dtype t, int code, const char *tag) {
  sb_printf(b,
            "extern \"C\" __global__ void __launch_bounds__(256) warp%s(const RowP p) "
            "{ row_op<%s, 32, 8>(p); }\n"
            "extern \"C\" __global__ void __launch_bounds__(512) blk%s(const RowP p) "
            "{ row_op<%s, 512, 1>(p); }\n"
            "extern \"C\" __global__ void __launch_bounds__(256) regp%s(const RowP p) "
            "{ row_reg<%s, %d, false>(p); }\n"
            "extern \"C\" __global__ void __launch_bounds__(256) regf%s(const RowP p) "
            "{ row_reg<%s, %d, true>(p); }\n",
            tag, tn(t), tag, tn(t), tag, tn(t), code, tag, tn(t), code);
}

em_status em_cu_rows(em_op op, em_dtype t, const void *x, void *y,
                     const void *w, const void *bias, int64_t rows, int64_t d,
                     double eps, int dev) {
  const char *name = em_op_name(op);
  if (t != EM_F16 && t != EM_BF16 && t != EM_F32 && t != EM_F64 &&
      t != EM_F8 && t != EM_F8_E4M3FN)
    return em_fail(EM_ERR_UNSUPPORTED, "[%s] no CUDA kernel for %s", name,
                   em_dtype_name(t));
  if (rows == 0) return EM_OK;
  cudaStream_t s = em_cu_enter(dev);
  const int code = op == EM_OP_softmax ? 0 : op == EM_OP_logsumexp ? 1
                 : op == EM_OP_layer_norm ? 2 : 3;
  sbuf b = {0};
  gen_rows(&b, t, code | (w ? 4 : 0) | (bias ? 8 : 0), "");
  if (b.oom) return em_fail(EM_ERR_OOM, "[%s] out of host memory", name);
  cudaKernel_t k[4];
  const char *names[4] = {"warp", "blk", "regp", "regf"};
  em_status st = get_kernels(name, dev, b.s, names, 4, k);
  free(b.s);
  if (st != EM_OK) return st;
  rowp p = {x, y, w, bias, rows, d, eps, code};
  void *args[1] = {&p};
  /* Register-resident rows (row_reg in the prelude): whole 16-byte vectors,
   * aligned, at least a warp's worth of vectors, and the row fits in the
   * registers of at most 256 threads (NV vectors each, as row_nv says). */
  const size_t es = em_dtype_size(t), e = 16 / es;
  const int64_t nv = es == 8 ? 16 : (int64_t)(64 / e);
  const bool aligned = ((uintptr_t)x | (uintptr_t)y | (uintptr_t)w |
                        (uintptr_t)bias) % 16 == 0;
  const int64_t nvec = d / (int64_t)e;
  /* (A warp per row with 16 vectors per lane measured slower for
   * layer_norm 16384x4096 bf16 on the H200: 0.133 ms against 0.113.) */
  if (aligned && d % (int64_t)e == 0 && nvec >= 32 && nvec <= 256 * nv) {
    /* As few threads as hold the row: the registers are allocated for NV
     * vectors per thread whether they are used or not. */
    int64_t bx = (nvec + nv - 1) / nv;
    bx = (bx + 31) / 32 * 32;
    /* A block per row: capping the grid at what fits on the SMs and
     * looping measured 5% slower (the loop's rows run one after another). */
    const bool full = bx * nv == nvec;
    return launch(name, k[full ? 3 : 2], (unsigned)(rows < INT32_MAX ? rows : INT32_MAX),
                  (dim3){(unsigned)bx, 1, 1}, args, s);
  }
  if (d <= 1024)
    return launch(name, k[0], grid_cap((rows + 7) / 8, dev, 16), (dim3){32, 8, 1},
                  args, s);
  return launch(name, k[1], grid_cap(rows, dev, 8), (dim3){512, 1, 1}, args, s);
}

/* ---- self-check: compile every program the generator can emit ------------------------ */

static int check_one(const char *what, const char *body, int verbose) {
  char *img = NULL;
  size_t n = 0;
  em_status st = nvrtc_compile(what, "sm_90", body, &img, &n); /* no disk cache */
  free(img);
  if (st != EM_OK) {
    fprintf(stderr, "JIT CHECK FAILED: %s: %s\n", what, em_last_error());
    return 1;
  }
  if (verbose) fprintf(stderr, "jit check ok: %s (%zu bytes)\n", what, n);
  return 0;
}

static void leaf(cprog *p, rkind k, em_dtype t, int nd) {
  creg *g = &p->r[p->n++];
  memset(g, 0, sizeof *g);
  g->kind = k;
  g->dt = t;
  g->nd = nd;
}
static void node(cprog *p, em_op op, em_dtype t, int nin, int a, int b, int c) {
  creg *g = &p->r[p->n++];
  memset(g, 0, sizeof *g);
  g->kind = R_OP;
  g->op = op;
  g->dt = t;
  g->nin = nin;
  g->in[0] = a;
  g->in[1] = b;
  g->in[2] = c;
}

int em_cu_jit_selfcheck(int verbose) {
  int fails = 0;
  cprog *p = malloc(sizeof *p);
  if (!p) return 1;
  static const char *red[] = {"SumOp", "ProdOp", "MaxOp", "MinOp", "AllOp",
                              "AnyOp", "ArgMaxLo", "ArgMaxHi", "ArgMinLo",
                              "ArgMinHi"};
  for (int ti = 0; ti < EM_DTYPE_COUNT; ti++) {
    em_dtype t = (em_dtype)ti;
    sbuf b = {0};
    int tag = 0;
    char tg[32];
    /* every unary and binary op, contiguous (vectorised where it can be) */
    for (int o = 0; o < EM_OP_COUNT; o++) {
      if (em_op_kind_of((em_op)o) != EM_KIND_EW || o == EM_OP_as_type ||
          o == EM_OP_select || o == EM_OP_clip)
        continue;
      int u = em_unary_out_dtype((em_op)o, t), bo = em_binary_out_dtype((em_op)o, t);
      if (u >= 0 && op_ok((em_op)o, t)) {
        p->n = 0;
        leaf(p, R_CONTIG, t, 1);
        node(p, (em_op)o, (em_dtype)u, 1, 0, 0, 0);
        snprintf(tg, sizeof tg, "_%d", tag++);
        size_t me = em_dtype_size(t) > em_dtype_size((em_dtype)u)
                        ? em_dtype_size(t) : em_dtype_size((em_dtype)u);
        gen_fused(&b, p, (int)(16 / me), true, tg);
      } else if (bo >= 0 && op_ok((em_op)o, t)) {
        p->n = 0;
        leaf(p, R_CONTIG, t, 1);
        leaf(p, R_SCALAR, t, 0);
        node(p, (em_op)o, (em_dtype)bo, 2, 0, 1, 0);
        snprintf(tg, sizeof tg, "_%d", tag++);
        gen_fused(&b, p, 1, false, tg);
      }
    }
    /* casts to every dtype, a strided select, iota, eye */
    for (int to = 0; to < EM_DTYPE_COUNT; to++) {
      p->n = 0;
      leaf(p, R_STRIDED, t, 3);
      node(p, EM_OP_as_type, (em_dtype)to, 1, 0, 0, 0);
      snprintf(tg, sizeof tg, "_%d", tag++);
      gen_fused(&b, p, 1, to & 1, tg);
    }
    p->n = 0;
    leaf(p, R_CONTIG, EM_U8, 1);
    leaf(p, R_STRIDED, t, 2);
    leaf(p, R_SCALAR, t, 0);
    node(p, EM_OP_select, t, 3, 0, 1, 2);
    snprintf(tg, sizeof tg, "_%d", tag++);
    gen_fused(&b, p, 1, true, tg);
    snprintf(tg, sizeof tg, "_%d", tag++);
    gen_convert(&b, t, EM_F32, tg);
    snprintf(tg, sizeof tg, "_%d", tag++);
    gen_convert(&b, EM_F32, t, tg);
    snprintf(tg, sizeof tg, "_%d", tag++);
    gen_iota(&b, t, false, tg);
    snprintf(tg, sizeof tg, "_%d", tag++);
    gen_iota(&b, t, true, tg);
    char what[64];
    snprintf(what, sizeof what, "elementwise %s", em_dtype_name(t));
    fails += b.oom ? 1 : check_one(what, b.s, verbose);
    free(b.s);
    /* reductions and row ops */
    sbuf r = {0};
    for (int i = 0; i < (int)(sizeof red / sizeof red[0]); i++) {
      bool cplx = em_dtype_is_complex(t);
      if (cplx && i >= 2 && i != 4 && i != 5) continue;
      snprintf(tg, sizeof tg, "_%d", i);
      gen_reduce(&r, red[i], t, tg);
    }
    if (t == EM_F16 || t == EM_BF16 || t == EM_F32 || t == EM_F64 ||
        t == EM_F8 || t == EM_F8_E4M3FN)
      for (int code = 0; code < 16; code++) {
        snprintf(tg, sizeof tg, "_r%d", code);
        gen_rows(&r, t, code, tg);
      }
    snprintf(what, sizeof what, "reductions %s", em_dtype_name(t));
    fails += r.oom ? 1 : check_one(what, r.s, verbose);
    free(r.s);
  }
  free(p);
  return fails;
}
