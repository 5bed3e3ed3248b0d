/* test_cuda_multi.c — several CUDA devices at once: devices addressed by
 * index, device-to-device copies, one engine stream (and worker thread)
 * per GPU running concurrently, per-device memory statistics, limits and
 * errors. Needs two devices; with one it runs only the two-streams-of-one-
 * device check below, and then (and with none) prints
 *   test_cuda_multi: SKIPPED: needs 2 CUDA devices (found N)
 *
 * (a) The same computations (a fused elementwise chain, reductions, f32
 *     and bf16 matmuls, softmax, sort/argsort, an FFT, cholesky and solve,
 *     a convolution) from the same host inputs on every device and on the
 *     CPU: each device against the CPU (the tolerances of the other CUDA
 *     differential tests), and each device against cuda:0 — bit-exact for
 *     the engine's own kernels when the devices are the same model, within
 *     tolerance for the library ones (cuBLASLt / cuFFT / cuSOLVER / cuDNN
 *     pick algorithms per device).
 * (b) em_copy_to_device for every ordered pair of devices: every dtype
 *     (s2..u4 and f8 included), contiguous and non-contiguous sources
 *     (transposed, sliced with steps, broadcast, reversed, a transpose of a
 *     slice), lazy sources, 0-d and empty arrays, the way back, a chain
 *     through every device, CUDA <-> CPU; all bit-exact against the same
 *     view of the CPU array. A source that another stream has marked DONE
 *     while its kernels still run (the copy must wait for them). A 1 GiB
 *     copy per pair, verified on the destination, its rate printed for
 *     information (best of 3; not a pass/fail criterion).
 * (c) Threads with their own em_stream, several per device, queueing work
 *     asynchronously at the same time, every result checked; one thread's
 *     graph that crosses devices through explicit copies; em_eval of a
 *     list spanning two devices; em_eval_async of an array on another
 *     device's stream is refused.
 * (d) Memory statistics per device: allocating on cuda:j moves cuda:j's
 *     active / cached / allocation counts only.
 * (e) A memory limit on cuda:1: evaluation, copy and upload past it fail
 *     with EM_ERR_OOM naming the device and the request; cuda:1 still runs
 *     what fits, cuda:0 is unaffected; injected failures are per device;
 *     nothing leaks; lifting the limit restores it.
 * (f) Invalid devices (cuda:N with N = device count, negative, huge, an
 *     unknown device type) are argument errors everywhere, never a crash;
 *     ops mixing arrays of two devices are argument errors.
 *
 * EMILY_TEST_QUICK=1 (compute-sanitizer runs) shrinks the large cases (the
 * 1 GiB copies to 64 MiB, fewer views per dtype); EMILY_TEST_THREADS sets the threads per device
 * in (c) (default 2). Always (one device is enough): two streams on ONE
 * device sharing an array that is DONE while its kernels still run (DONE
 * is published when the kernel is queued; the consumer's evaluation waits
 * for the producing stream's task, eval.c / em_cuda_wait_producer). */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/array-impl.h"
#include "cpu/cpu-kernels.h"
#include "cuda/cuda-impl.h"
#include "harness.h"

#include "cuda_diff.h"

#define MAXD 16
#define MIB ((size_t)1 << 20)

static int ndev;

static em_device cu(int i) {
  em_device d = {EM_DEVICE_CUDA, i};
  return d;
}

typedef struct {
  char s[24];
} dname;
static dname dn(em_device d) {
  dname n;
  if (d.type == EM_DEVICE_CPU) snprintf(n.s, sizeof n.s, "cpu");
  else snprintf(n.s, sizeof n.s, "cuda:%d", d.index);
  return n;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Releases a list of arrays (NULLs ignored). */
static void rel_list(em_array **v, int n) {
  for (int i = 0; i < n; i++) em_array_release(v[i]);
}
#define REL(...)                                 \
  rel_list((em_array *[]){__VA_ARGS__},          \
           (int)(sizeof((em_array *[]){__VA_ARGS__}) / sizeof(em_array *)))

/* ---- host data and arrays ----------------------------------------------------- */

static int64_t count_of(int nd, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= shape[i];
  return n;
}

/* Bytes at the host boundary (sub-byte types packed). */
static size_t host_bytes(em_dtype t, int64_t n) {
  int bits = em_dtype_bits(t);
  if (bits < 8) return ((size_t)n * (size_t)bits + 7) / 8;
  return (size_t)n * em_dtype_size(t);
}

static void *rand_bytes(size_t n, rng *r) {
  unsigned char *b = malloc(n ? n : 1);
  for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(rnext(r) >> 24);
  return b;
}

static em_array *upload(em_dtype t, int nd, const int64_t *shape, const void *h,
                        em_device d) {
  em_array *a = NULL;
  em_status st = em_array_from_data(&a, t, nd, shape, h,
                                    host_bytes(t, count_of(nd, shape)), d);
  record(st == EM_OK && a, "from_data %s to %s: %s", em_dtype_name(t), dn(d).s,
         em_last_error());
  return a;
}

static em_array *scalar(em_dtype t, double v, em_device d) {
  em_array *a = NULL;
  em_status st = em_full_scalar(&a, t, v, d);
  record(st == EM_OK, "full_scalar on %s: %s", dn(d).s, em_last_error());
  return a;
}

static em_array *full_f32(int nd, const int64_t *shape, float v, em_device d) {
  em_array *a = NULL;
  em_status st = em_full(&a, EM_F32, nd, shape, &v, d);
  record(st == EM_OK, "full f32 on %s: %s", dn(d).s, em_last_error());
  return a;
}

static bool eval_ok(const char *what, em_array *a) {
  if (!a) {
    record(false, "%s: not built: %s", what, em_last_error());
    return false;
  }
  em_status st = em_eval(&a, 1);
  record(st == EM_OK, "%s: eval: %s", what, em_last_error());
  return st == EM_OK;
}

static bool same_shape(const em_array *a, const em_array *b) {
  return a->dtype == b->dtype && a->ndim == b->ndim &&
         !memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim);
}

/* got and want (any devices) hold the same bytes at the host boundary. */
static void cmp_bits(const char *what, em_array *got, em_array *want) {
  if (!got || !want) {
    record(false, "%s: missing array: %s", what, em_last_error());
    return;
  }
  bool meta = same_shape(got, want);
  record(meta, "%s: dtype/shape differ (%s rank %d vs %s rank %d)", what,
         em_dtype_name(got->dtype), got->ndim, em_dtype_name(want->dtype), want->ndim);
  if (!meta) return;
  const unsigned char *g = em_array_data(got), *w = em_array_data(want);
  record(g && w, "%s: array_data: %s", what, em_last_error());
  if (!g || !w) return;
  size_t n = em_array_nbytes(want), i = 0;
  while (i < n && g[i] == w[i]) i++;
  record(i == n, "%s [%s]: byte %zu of %zu differs (got 0x%02x, want 0x%02x)", what,
         em_dtype_name(want->dtype), i, n, i < n ? g[i] : 0, i < n ? w[i] : 0);
}

/* got against want within rtol/atol (cuda_diff.h's compare; NaN == NaN). */
static void cmp_tol(const char *what, em_array *got, em_array *want, double rtol,
                    double atol) {
  if (!got || !want) {
    record(false, "%s: missing array: %s", what, em_last_error());
    return;
  }
  bool meta = same_shape(got, want);
  record(meta, "%s: dtype/shape differ", what);
  if (!meta) return;
  const void *g = em_array_data(got), *w = em_array_data(want);
  record(g && w, "%s: array_data: %s", what, em_last_error());
  if (!g || !w) return;
  compare(what, want->dtype, g, w, want->size, rtol, atol);
}

/* On the array's own device: every element of a (f32 or s32) equals v. */
static bool all_equal_on_device(const char *what, em_array *a, em_array *v) {
  em_array *eq = NULL, *all = NULL;
  em_status st = em_equal(&eq, a, v);
  if (st == EM_OK) st = em_all(&all, eq, 0, NULL, false);
  if (st == EM_OK) st = em_eval(&all, 1);
  const unsigned char *r = st == EM_OK ? em_array_data(all) : NULL;
  bool ok = r && r[0] == 1;
  record(ok, "%s: %s", what, st != EM_OK || !r ? em_last_error() : "some element differs");
  REL(eq, all);
  return ok;
}

static bool identical_devices(int a, int b) {
  const em_cu_props *p = em_cu_device_props(a), *q = em_cu_device_props(b);
  return p->sms == q->sms && p->major == q->major && p->minor == q->minor &&
         !strcmp(p->name, q->name);
}

/* ---- (a) the same computation on every device ---------------------------------- */

enum {
  A_EW, A_SUM1, A_SUMALL, A_MAX0, A_MM, A_MMBIG, A_MMBF16, A_SOFTMAX, A_SORT,
  A_ARGSORT, A_FFT, A_CHOL, A_SOLVE, A_CONV, A_N
};

static const struct {
  const char *name;
  double rtol, atol;
  bool own_kernel; /* the engine's deterministic kernels: bit-equal on equal GPUs */
} AOPS[A_N] = {
    [A_EW] = {"exp(-x*x) + sin(x)*0.5 - sqrt(|x|) f32 [300,257]", 2e-5, 2e-5, true},
    [A_SUM1] = {"sum axis 1 f32 [300,257]", 2e-6, 4e-6 * 257, true},
    [A_SUMALL] = {"sum all f32 [300,257]", 2e-6, 4e-6 * 300 * 257, true},
    [A_MAX0] = {"reduce_max axis 0 f32 [300,257] (NaN, inf)", 0, 0, true},
    [A_MM] = {"matmul f32 [2,33,65]x[2,65,47]", 2e-6, 1e-4, false},
    [A_MMBIG] = {"matmul f32 [256,512]x[512,128]", 2e-6, 1e-3, false},
    [A_MMBF16] = {"matmul bf16 [2,33,65]x[2,65,47]", 1.6e-2, 0.25, false},
    [A_SOFTMAX] = {"softmax f32 [7,1000]", 2e-5, 2e-5, true},
    [A_SORT] = {"sort f32 [64,100] axis 1 (NaN, inf, -0)", 0, 0, true},
    [A_ARGSORT] = {"argsort f32 [64,100] axis 1 (ties)", 0, 0, true},
    [A_FFT] = {"fft c64 [8,256]", 0, 5.76e-4, false},
    [A_CHOL] = {"cholesky f64 [64,64]", 1e-9, 1e-9, false},
    [A_SOLVE] = {"solve f64 [64,64] [64,3]", 1e-9, 1e-9, false},
    [A_CONV] = {"conv f32 [2,3,16,16] * [4,3,3,3] pad 1", 1e-4, 1e-4, false},
};

typedef struct {
  void *x, *pos, *gen, *ma, *mb, *ba, *bb, *ma16, *mb16, *soft, *sortg, *ties,
      *fftc, *spd, *rhs, *cin, *ck;
} hostin;

static const int64_t SX[2] = {300, 257}, SMA[3] = {2, 33, 65}, SMB[3] = {2, 65, 47},
                     SBA[2] = {256, 512}, SBB[2] = {512, 128}, SSOFT[2] = {7, 1000},
                     SSORT[2] = {64, 100}, SFFT[2] = {8, 256}, SSPD[2] = {64, 64},
                     SRHS[2] = {64, 3}, SCIN[4] = {2, 3, 16, 16}, SCK[4] = {4, 3, 3, 3};

static void hostin_make(hostin *h, rng *r) {
  h->x = host_rand(EM_F32, count_of(2, SX), r, M_FINITE);
  h->pos = host_rand(EM_F32, count_of(2, SX), r, M_POS);
  h->gen = host_rand(EM_F32, count_of(2, SX), r, M_GENERAL);
  h->ma = host_rand(EM_F32, count_of(3, SMA), r, M_UNIT);
  h->mb = host_rand(EM_F32, count_of(3, SMB), r, M_UNIT);
  h->ba = host_rand(EM_F32, count_of(2, SBA), r, M_UNIT);
  h->bb = host_rand(EM_F32, count_of(2, SBB), r, M_UNIT);
  h->ma16 = host_rand(EM_BF16, count_of(3, SMA), r, M_UNIT);
  h->mb16 = host_rand(EM_BF16, count_of(3, SMB), r, M_UNIT);
  h->soft = host_rand(EM_F32, count_of(2, SSOFT), r, M_FINITE);
  h->sortg = host_rand(EM_F32, count_of(2, SSORT), r, M_GENERAL);
  h->ties = host_rand(EM_F32, count_of(2, SSORT), r, M_TIES);
  h->fftc = host_rand(EM_C64, count_of(2, SFFT), r, M_UNIT);
  /* symmetric positive definite and well conditioned: M M^T / n + I */
  const int n = 64;
  double *m = malloc(sizeof(double) * n * n), *a = malloc(sizeof(double) * n * n);
  for (int i = 0; i < n * n; i++) m[i] = runif(r, -1, 1);
  for (int i = 0; i < n; i++)
    for (int j = 0; j <= i; j++) {
      double s = 0;
      for (int k = 0; k < n; k++) s += m[i * n + k] * m[j * n + k];
      s /= n;
      if (i == j) s += 1;
      a[i * n + j] = a[j * n + i] = s;
    }
  free(m);
  h->spd = a;
  h->rhs = host_rand(EM_F64, count_of(2, SRHS), r, M_UNIT);
  h->cin = host_rand(EM_F32, count_of(4, SCIN), r, M_UNIT);
  h->ck = host_rand(EM_F32, count_of(4, SCK), r, M_UNIT);
}

static void hostin_free(hostin *h) {
  void *v[] = {h->x,    h->pos,  h->gen,   h->ma,    h->mb,    h->ba,
               h->bb,   h->ma16, h->mb16,  h->soft,  h->sortg, h->ties,
               h->fftc, h->spd,  h->rhs,   h->cin,   h->ck};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) free(v[i]);
}

/* The A_N lazy results on device d, from the same host inputs. */
static void build_all(em_device d, const hostin *h, em_array **r) {
  for (int k = 0; k < A_N; k++) r[k] = NULL;
  em_array *x = upload(EM_F32, 2, SX, h->x, d), *pos = upload(EM_F32, 2, SX, h->pos, d),
           *gen = upload(EM_F32, 2, SX, h->gen, d);
  /* a fused chain of 9 nodes */
  em_array *xx = NULL, *nxx = NULL, *e = NULL, *s = NULL, *half = scalar(EM_F32, 0.5, d),
           *sh = NULL, *ab = NULL, *sq = NULL, *t1 = NULL;
  em_multiply(&xx, x, x);
  em_negate(&nxx, xx);
  em_exp(&e, nxx);
  em_sin(&s, x);
  em_multiply(&sh, s, half);
  em_abs(&ab, x);
  em_sqrt(&sq, ab);
  em_add(&t1, e, sh);
  em_subtract(&r[A_EW], t1, sq);
  REL(xx, nxx, e, s, half, sh, ab, sq, t1);
  em_sum(&r[A_SUM1], pos, 1, (const int[]){1}, false);
  em_sum(&r[A_SUMALL], pos, 0, NULL, false);
  em_reduce_max(&r[A_MAX0], gen, 1, (const int[]){0}, false);
  REL(x, pos, gen);

  em_array *ma = upload(EM_F32, 3, SMA, h->ma, d), *mb = upload(EM_F32, 3, SMB, h->mb, d);
  em_matmul(&r[A_MM], ma, mb);
  em_array *ba = upload(EM_F32, 2, SBA, h->ba, d), *bb = upload(EM_F32, 2, SBB, h->bb, d);
  em_matmul(&r[A_MMBIG], ba, bb);
  em_array *m16a = upload(EM_BF16, 3, SMA, h->ma16, d),
           *m16b = upload(EM_BF16, 3, SMB, h->mb16, d);
  em_matmul(&r[A_MMBF16], m16a, m16b);
  REL(ma, mb, ba, bb, m16a, m16b);

  em_array *soft = upload(EM_F32, 2, SSOFT, h->soft, d);
  em_softmax(&r[A_SOFTMAX], soft, -1);
  em_array *sg = upload(EM_F32, 2, SSORT, h->sortg, d),
           *ties = upload(EM_F32, 2, SSORT, h->ties, d);
  em_sort(&r[A_SORT], sg, 1, false);
  em_argsort(&r[A_ARGSORT], ties, 1, false);
  em_array *fc = upload(EM_C64, 2, SFFT, h->fftc, d);
  em_fft(&r[A_FFT], fc, 256);
  REL(soft, sg, ties, fc);

  em_array *spd = upload(EM_F64, 2, SSPD, h->spd, d), *rhs = upload(EM_F64, 2, SRHS, h->rhs, d);
  em_cholesky(&r[A_CHOL], spd);
  em_solve(&r[A_SOLVE], spd, rhs);
  REL(spd, rhs);

  em_array *cin = upload(EM_F32, 4, SCIN, h->cin, d), *ck = upload(EM_F32, 4, SCK, h->ck, d);
  em_conv_params p;
  memset(&p, 0, sizeof p);
  p.nspatial = 2;
  for (int i = 0; i < 2; i++) {
    p.strides[i] = 1;
    p.pad_lo[i] = p.pad_hi[i] = 1;
    p.input_dilation[i] = p.kernel_dilation[i] = 1;
  }
  p.feature_group_size = p.batch_group_size = 1;
  em_conv(&r[A_CONV], cin, ck, &p);
  REL(cin, ck);
}

static void t_same_everywhere(rng *r) {
  hostin h;
  hostin_make(&h, r);
  em_array *ref[A_N], *res[MAXD][A_N];
  bool ok[MAXD][A_N];
  build_all(CPU, &h, ref);
  for (int k = 0; k < A_N; k++) {
    char what[200];
    snprintf(what, sizeof what, "(a) %s on cpu", AOPS[k].name);
    eval_ok(what, ref[k]);
  }
  for (int d = 0; d < ndev; d++) {
    build_all(cu(d), &h, res[d]);
    for (int k = 0; k < A_N; k++) {
      char what[200];
      snprintf(what, sizeof what, "(a) %s on cuda:%d", AOPS[k].name, d);
      ok[d][k] = false;
      if (!res[d][k]) {
        record(false, "%s: not built: %s", what, em_last_error());
        continue;
      }
      em_status st = em_eval(&res[d][k], 1);
      if (st == EM_ERR_UNSUPPORTED) {
        unsupported(AOPS[k].name);
        continue;
      }
      record(st == EM_OK, "%s: eval: %s", what, em_last_error());
      if (st != EM_OK) continue;
      em_device rd = em_array_device(res[d][k]);
      record(rd.type == EM_DEVICE_CUDA && rd.index == d, "%s: result on %s", what,
             dn(rd).s);
      cmp_tol(what, res[d][k], ref[k], AOPS[k].rtol, AOPS[k].atol);
      ok[d][k] = true;
    }
  }
  for (int d = 1; d < ndev; d++)
    for (int k = 0; k < A_N; k++) {
      if (!ok[d][k] || !ok[0][k]) continue;
      char what[200];
      bool exact = AOPS[k].own_kernel && identical_devices(0, d);
      snprintf(what, sizeof what, "(a) %s: cuda:%d vs cuda:0%s", AOPS[k].name, d,
               exact ? " (bit-exact)" : "");
      if (exact) cmp_bits(what, res[d][k], res[0][k]);
      else cmp_tol(what, res[d][k], res[0][k], 2 * AOPS[k].rtol, 2 * AOPS[k].atol);
    }
  for (int k = 0; k < A_N; k++) em_array_release(ref[k]);
  for (int d = 0; d < ndev; d++)
    for (int k = 0; k < A_N; k++) em_array_release(res[d][k]);
  hostin_free(&h);
}

/* ---- (b) device-to-device copies --------------------------------------------------- */

/* Copies src (any state) to dst and checks the result against want (the
 * same view on the CPU) bit for bit; returns the copy (or NULL). */
static em_array *copy_check(const char *what, em_array *src, em_device dst,
                            em_array *want) {
  em_array *o = NULL;
  em_status st = em_copy_to_device(&o, src, dst);
  record(st == EM_OK && o, "%s: copy_to_device %s: %s", what, dn(dst).s,
         em_last_error());
  if (st != EM_OK || !o) return NULL;
  em_device od = em_array_device(o);
  record(od.type == dst.type && od.index == dst.index, "%s: copy is on %s", what,
         dn(od).s);
  record(em_array_is_evaluated(o), "%s: copy is not evaluated", what);
  record(em_array_is_evaluated(src), "%s: source was not evaluated by the copy", what);
  cmp_bits(what, o, want);
  return o;
}

enum { V_CONTIG, V_TRANSPOSE, V_SLICE, V_BROADCAST, V_REVERSE, V_TSLICE, V_N };
static const char *VNAME[V_N] = {"contiguous", "transposed", "sliced (steps 2, 3)",
                                 "broadcast [3,37,53]", "reversed axis 1",
                                 "transpose of a slice"};

/* The view kind v of a [37, 53] array (a new reference). */
static em_array *view_of(em_array *a, int v) {
  em_array *o = NULL, *t = NULL;
  switch (v) {
    case V_CONTIG:
      em_array_retain(a);
      return a;
    case V_TRANSPOSE: em_transpose(&o, a, NULL); break;
    case V_SLICE:
      em_slice(&o, a, (const int64_t[]){1, 2}, (const int64_t[]){30, 40},
               (const int64_t[]){2, 3});
      break;
    case V_BROADCAST: em_broadcast(&o, a, 3, (const int64_t[]){3, 37, 53}, NULL); break;
    case V_REVERSE: em_reverse(&o, a, 1, (const int[]){1}); break;
    default:
      em_slice(&t, a, (const int64_t[]){0, 1}, (const int64_t[]){37, 50},
               (const int64_t[]){3, 2});
      if (t) em_transpose(&o, t, NULL);
      em_array_release(t);
      break;
  }
  record(o != NULL, "view %s: %s", VNAME[v], em_last_error());
  return o;
}

static void t_copies(int i, int j, rng *r) {
  static const int64_t sh[2] = {37, 53};
  const em_device di = cu(i), dj = cu(j);
  for (int t = 0; t < EM_DTYPE_COUNT; t++) {
    em_dtype dt = (em_dtype)t;
    size_t nb = host_bytes(dt, count_of(2, sh));
    void *h = rand_bytes(nb, r);
    em_array *c = upload(dt, 2, sh, h, CPU), *a = upload(dt, 2, sh, h, di);
    free(h);
    if (!c || !a) {
      REL(c, a);
      continue;
    }
    for (int v = 0; v < V_N; v++) {
      if (quick && v != V_CONTIG && v != V_TRANSPOSE && dt != EM_BF16 && dt != EM_S4)
        continue;
      char what[160];
      snprintf(what, sizeof what, "(b) %s %s cuda:%d -> cuda:%d", em_dtype_name(dt),
               VNAME[v], i, j);
      em_array *vc = view_of(c, v), *va = view_of(a, v);
      em_array *o = va && vc ? copy_check(what, va, dj, vc) : NULL;
      if (o) { /* and back */
        snprintf(what, sizeof what, "(b) %s %s cuda:%d -> cuda:%d -> cuda:%d",
                 em_dtype_name(dt), VNAME[v], i, j, i);
        em_array *back = copy_check(what, o, di, vc);
        em_array_release(back);
      }
      REL(o, vc, va);
    }
    REL(c, a);
  }

  /* lazy sources: a fused chain, a view of one, a reduction */
  const int64_t sx[2] = {64, 48};
  void *hx = host_rand(EM_F32, count_of(2, sx), r, M_FINITE);
  em_array *xc = upload(EM_F32, 2, sx, hx, CPU), *xa = upload(EM_F32, 2, sx, hx, di);
  free(hx);
  for (int k = 0; k < 3; k++) {
    em_array *ya = NULL, *yc = NULL, *ea = NULL, *ec = NULL;
    const char *name = k == 0 ? "exp(x) * x" : k == 1 ? "transpose(exp(x))" : "sum(x, axis 0)";
    if (k == 0) {
      em_exp(&ea, xa);
      em_exp(&ec, xc);
      em_multiply(&ya, ea, xa);
      em_multiply(&yc, ec, xc);
    } else if (k == 1) {
      em_exp(&ea, xa);
      em_exp(&ec, xc);
      em_transpose(&ya, ea, NULL);
      em_transpose(&yc, ec, NULL);
    } else {
      em_sum(&ya, xa, 1, (const int[]){0}, false);
      em_sum(&yc, xc, 1, (const int[]){0}, false);
    }
    REL(ea, ec);
    char what[160];
    snprintf(what, sizeof what, "(b) lazy %s cuda:%d -> cuda:%d", name, i, j);
    record(ya && !em_array_is_evaluated(ya), "%s: source should still be lazy", what);
    em_array *o = NULL;
    em_status st = ya ? em_copy_to_device(&o, ya, dj) : EM_ERR_ARGUMENT;
    record(st == EM_OK && o, "%s: copy_to_device: %s", what, em_last_error());
    if (o) {
      record(em_array_is_evaluated(ya), "%s: source not evaluated", what);
      cmp_bits(what, o, ya); /* bit-exact with the source as computed */
      snprintf(what, sizeof what, "(b) lazy %s cuda:%d -> cuda:%d vs cpu", name, i, j);
      cmp_tol(what, o, yc, 2e-5, k == 2 ? 4e-6 * 64 * 4 : 2e-5);
    }
    REL(o, ya, yc);
  }
  REL(xc, xa);

  /* 0-d, empty */
  {
    em_array *sa = scalar(EM_F64, 3.25, di), *sc = scalar(EM_F64, 3.25, CPU);
    char what[96];
    snprintf(what, sizeof what, "(b) 0-d f64 cuda:%d -> cuda:%d", i, j);
    em_array *o = sa && sc ? copy_check(what, sa, dj, sc) : NULL;
    REL(o, sa, sc);
    float z = 1;
    em_array *ea = NULL;
    em_status st = em_full(&ea, EM_F32, 2, (const int64_t[]){0, 5}, &z, di);
    em_array *eo = NULL;
    if (st == EM_OK) st = em_copy_to_device(&eo, ea, dj);
    record(st == EM_OK && eo && eo->ndim == 2 && eo->shape[0] == 0 && eo->shape[1] == 5 &&
               em_array_device(eo).index == j,
           "(b) empty [0,5] cuda:%d -> cuda:%d: %s", i, j, em_last_error());
    REL(ea, eo);
  }

  /* CUDA <-> CPU beside the pair */
  {
    void *hb = rand_bytes(host_bytes(EM_C64, 100), r);
    const int64_t s1[1] = {100};
    em_array *c = upload(EM_C64, 1, s1, hb, CPU), *a = upload(EM_C64, 1, s1, hb, di);
    free(hb);
    char what[96];
    snprintf(what, sizeof what, "(b) c64 cuda:%d -> cpu", i);
    em_array *o1 = a && c ? copy_check(what, a, CPU, c) : NULL;
    snprintf(what, sizeof what, "(b) c64 cpu -> cuda:%d", j);
    em_array *o2 = c ? copy_check(what, c, dj, c) : NULL;
    REL(o1, o2, c, a);
  }
}

/* cuda:0 -> 1 -> ... -> n-1 -> 0, bit-exact. */
static void t_chain(rng *r) {
  const int64_t sh[2] = {129, 33};
  void *h = rand_bytes(host_bytes(EM_BF16, count_of(2, sh)), r);
  em_array *c = upload(EM_BF16, 2, sh, h, CPU), *a = upload(EM_BF16, 2, sh, h, cu(0));
  free(h);
  em_array *cur = a;
  if (cur) em_array_retain(cur);
  for (int k = 1; k <= ndev && cur; k++) {
    em_array *o = NULL;
    em_status st = em_copy_to_device(&o, cur, cu(k % ndev));
    record(st == EM_OK, "(b) chain step to cuda:%d: %s", k % ndev, em_last_error());
    em_array_release(cur);
    cur = st == EM_OK ? o : NULL;
  }
  if (cur) cmp_bits("(b) chain through every device, bf16", cur, c);
  REL(cur, c, a);
}

typedef struct {
  atomic_int finished;
  atomic_int status;
} async_flag;

static void flag_done(em_status st, void *user) {
  async_flag *f = user;
  atomic_store(&f->status, (int)st);
  atomic_store(&f->finished, 1);
}

/* B A^k with A = 1, B = 3 of [n, n] f32: every element 3 n^k, exact in any
 * summation order (partial sums are m 3 n^(i-1) with m <= n <= 2^13: at
 * most 15 significant bits). Once the GEMM's algorithm is cached (a
 * warm-up of the same shape), the k products are queued at once and run
 * for k times ~16 ms at n = 8192 on an H200 after the array is DONE. */
static em_array *slow_product(int n, int k, em_device d) {
  const int64_t s[2] = {n, n};
  em_array *a = full_f32(2, s, 1.0f, d), *x = full_f32(2, s, 3.0f, d);
  for (int i = 0; i < k && a && x; i++) {
    em_array *y = NULL;
    em_matmul(&y, x, a);
    em_array_release(x);
    x = y;
  }
  em_array_release(a);
  return x;
}

/* Spins until x is DONE (its last kernel queued) or its evaluation ended;
 * true when the stream was still busy at that moment. */
static bool wait_done_while_running(em_array *x, async_flag *f) {
  double t0 = now_s();
  while (!em_array_is_evaluated(x) && !atomic_load(&f->finished) && now_s() - t0 < 120)
    sched_yield();
  return em_array_is_evaluated(x) && !atomic_load(&f->finished);
}

/* A source that another stream marked DONE while its kernels are still
 * queued: the copy must wait for them, not read a half-written buffer. */
static void t_inflight(int i, int j) {
  const int n = quick ? 1024 : 8192, k = 4;
  char what[160];
  snprintf(what, sizeof what,
           "(b) copy of a DONE-but-running [%d,%d] f32 cuda:%d -> cuda:%d", n, n, i, j);
  /* warm-up: the GEMM algorithm for this shape, a cached block on cuda:j */
  {
    em_array *w = slow_product(n, 1, cu(i)), *wo = NULL;
    em_status st = w ? em_eval(&w, 1) : EM_ERR_ARGUMENT;
    if (st == EM_OK) st = em_copy_to_device(&wo, w, cu(j));
    record(st == EM_OK, "%s: warm-up: %s", what, em_last_error());
    REL(w, wo);
  }
  em_stream *s = NULL;
  em_status st = em_stream_new(&s, cu(i));
  record(st == EM_OK, "%s: stream_new: %s", what, em_last_error());
  if (st != EM_OK) return;
  em_array *x = slow_product(n, k, cu(i));
  async_flag f;
  atomic_init(&f.finished, 0);
  atomic_init(&f.status, -1);
  st = x ? em_eval_async(&x, 1, s, flag_done, &f) : EM_ERR_ARGUMENT;
  record(st == EM_OK, "%s: eval_async: %s", what, em_last_error());
  if (st == EM_OK) {
    bool running = wait_done_while_running(x, &f);
    double t0 = now_s();
    em_array *o = NULL;
    st = em_copy_to_device(&o, x, cu(j));
    double dt = now_s() - t0;
    record(st == EM_OK && o, "%s: %s", what, em_last_error());
    if (o) {
      em_array *v = scalar(EM_F32, 3.0 * pow((double)n, k), cu(j));
      all_equal_on_device(what, o, v);
      em_array_release(v);
    }
    printf("  in-flight copy cuda:%d -> cuda:%d: issued while the source stream was %s, "
           "returned after %.1f ms\n",
           i, j, running ? "still running" : "already done", dt * 1e3);
    em_array_release(o);
    record(em_stream_synchronize(s) == EM_OK, "%s: synchronize: %s", what, em_last_error());
    record(atomic_load(&f.status) == EM_OK, "%s: the evaluation failed", what);
  }
  em_array_release(x);
  em_stream_free(s);
}

/* Two streams of ONE device; y =
 * 2 x on stream T while x, already DONE, is still being computed on S. */
static void t_same_device_race(int dev) {
  const int n = 8192, k = 4;
  em_stream *s = NULL, *t = NULL;
  if (em_stream_new(&s, cu(dev)) != EM_OK || em_stream_new(&t, cu(dev)) != EM_OK) {
    record(false, "same-device race: stream_new: %s", em_last_error());
    em_stream_free(s);
    return;
  }
  em_array *two = scalar(EM_F32, 2.0, cu(dev));
  { /* warm-up: the GEMM algorithm, the program of y = 2 x, blocks */
    em_array *w = slow_product(n, 1, cu(dev)), *wy = NULL;
    if (w) em_multiply(&wy, w, two);
    if (wy) em_eval_on(&wy, 1, t);
    REL(w, wy);
  }
  em_array *x = slow_product(n, k, cu(dev)), *y = NULL;
  async_flag f;
  atomic_init(&f.finished, 0);
  atomic_init(&f.status, -1);
  if (x && em_eval_async(&x, 1, s, flag_done, &f) == EM_OK) {
    bool running = wait_done_while_running(x, &f);
    em_multiply(&y, x, two);
    em_status st = y ? em_eval_on(&y, 1, t) : EM_ERR_ARGUMENT;
    printf("  same-device: y = 2 x queued on stream T while stream S was %s\n",
           running ? "still running" : "already done");
    record(st == EM_OK, "same-device race: eval on T: %s", em_last_error());
    if (st == EM_OK) {
      em_array *v = scalar(EM_F32, 6.0 * pow((double)n, k), cu(dev));
      all_equal_on_device("same-device race: y = 2 x must read x after S wrote it", y, v);
      em_array_release(v);
    }
    em_stream_synchronize(s);
  }
  REL(x, two, y);
  em_stream_free(t);
  em_stream_free(s);
}

/* 1 GiB cuda:i -> cuda:j: verified on cuda:j, rate printed (best of 3). */
static void t_big_copy(int i, int j) {
  const int64_t n = quick ? ((int64_t)1 << 24) : ((int64_t)1 << 28); /* s32: 64 MiB / 1 GiB */
  em_array *src = NULL, *ref = NULL;
  em_status st = em_iota(&src, EM_S32, 1, &n, 0, cu(i));
  if (st == EM_OK) st = em_eval(&src, 1);
  record(st == EM_OK, "(b) big copy: iota on cuda:%d: %s", i, em_last_error());
  if (st != EM_OK) {
    em_array_release(src);
    return;
  }
  double best = 1e30;
  for (int rep = 0; rep < 3; rep++) {
    em_array *o = NULL;
    double t0 = now_s();
    st = em_copy_to_device(&o, src, cu(j));
    double dt = now_s() - t0;
    record(st == EM_OK, "(b) big copy cuda:%d -> cuda:%d: %s", i, j, em_last_error());
    if (st != EM_OK) break;
    if (dt < best) best = dt;
    if (rep == 2) {
      st = em_iota(&ref, EM_S32, 1, &n, 0, cu(j));
      record(st == EM_OK, "(b) big copy: iota on cuda:%d: %s", j, em_last_error());
      char what[96];
      snprintf(what, sizeof what, "(b) %lld MiB s32 copy cuda:%d -> cuda:%d", (long long)(n * 4 >> 20),
               i, j);
      if (ref) all_equal_on_device(what, o, ref);
      em_array_release(ref);
      ref = NULL;
    }
    em_array_release(o);
  }
  if (best < 1e30)
    printf("  copy %lld MiB cuda:%d -> cuda:%d: %.3f ms, %.1f GB/s (best of 3, informational)\n",
           (long long)(n * 4 >> 20), i, j, best * 1e3, (double)(n * 4) / best / 1e9);
  em_array_release(src);
}

/* ---- (c) a stream per GPU, in parallel ---------------------------------------------- */

typedef struct {
  int dev, id, iters;
} warg;

static void status_done(em_status st, void *user) { atomic_store((atomic_int *)user, (int)st); }

/* softmax(x w + b) a few times, queued asynchronously on the thread's own
 * stream, all checked against the CPU; then a copy to the next device. */
static void *stream_worker(void *p) {
  const warg *w = p;
  const em_device d = cu(w->dev);
  rng r = {0x9E3779B97F4A7C15ull ^ ((uint64_t)(w->id + 1) * 0x100000001B3ull)};
  em_stream *s = NULL;
  em_status st = em_stream_new(&s, d);
  record(st == EM_OK && s, "(c) worker %d: stream_new on cuda:%d: %s", w->id, w->dev,
         em_last_error());
  if (st != EM_OK) return NULL;
  const int64_t sx[2] = {256, 512}, sw[2] = {512, 384}, sb[1] = {384};
  void *hx = host_rand(EM_F32, count_of(2, sx), &r, M_UNIT),
       *hw = host_rand(EM_F32, count_of(2, sw), &r, M_UNIT),
       *hb = host_rand(EM_F32, count_of(1, sb), &r, M_UNIT);
  em_array *xc = upload(EM_F32, 2, sx, hx, CPU), *wc = upload(EM_F32, 2, sw, hw, CPU),
           *bc = upload(EM_F32, 1, sb, hb, CPU), *xg = upload(EM_F32, 2, sx, hx, d),
           *wg = upload(EM_F32, 2, sw, hw, d), *bg = upload(EM_F32, 1, sb, hb, d);
  free(hx);
  free(hw);
  free(hb);
  em_array *mc = NULL, *zc = NULL, *ref = NULL;
  em_matmul(&mc, xc, wc);
  em_add(&zc, mc, bc);
  em_softmax(&ref, zc, -1);
  eval_ok("(c) worker reference on cpu", ref);
  REL(mc, zc);

  enum { MAXIT = 16 };
  em_array *ys[MAXIT] = {NULL};
  atomic_int sts[MAXIT];
  int iters = w->iters < MAXIT ? w->iters : MAXIT;
  for (int it = 0; it < iters; it++) {
    atomic_init(&sts[it], -1);
    em_array *m = NULL, *z = NULL;
    em_matmul(&m, xg, wg);
    em_add(&z, m, bg);
    em_softmax(&ys[it], z, -1);
    REL(m, z);
    st = ys[it] ? em_eval_async(&ys[it], 1, s, status_done, &sts[it]) : EM_ERR_ARGUMENT;
    record(st == EM_OK, "(c) worker %d: eval_async: %s", w->id, em_last_error());
  }
  st = em_stream_synchronize(s);
  record(st == EM_OK, "(c) worker %d: synchronize: %s", w->id, em_last_error());
  for (int it = 0; it < iters; it++) {
    char what[128];
    snprintf(what, sizeof what, "(c) worker %d on cuda:%d, iteration %d", w->id, w->dev, it);
    record(atomic_load(&sts[it]) == EM_OK, "%s: status %d", what, atomic_load(&sts[it]));
    if (atomic_load(&sts[it]) != EM_OK || !ys[it]) continue;
    em_device yd = em_array_device(ys[it]);
    record(yd.index == w->dev, "%s: result on %s", what, dn(yd).s);
    cmp_tol(what, ys[it], ref, 5e-4, 1e-6);
  }
  /* a copy to the next device while the other threads do the same */
  if (ys[0] && atomic_load(&sts[0]) == EM_OK) {
    char what[128];
    snprintf(what, sizeof what, "(c) worker %d: copy cuda:%d -> cuda:%d", w->id, w->dev,
             (w->dev + 1) % ndev);
    em_array *o = copy_check(what, ys[0], cu((w->dev + 1) % ndev), ys[0]);
    em_array_release(o);
  }
  for (int it = 0; it < iters; it++) em_array_release(ys[it]);
  REL(xc, wc, bc, xg, wg, bg, ref);
  em_stream_free(s);
  return NULL;
}

static void t_streams_parallel(void) {
  int per = 2;
  const char *e = getenv("EMILY_TEST_THREADS");
  if (e && atoi(e) > 0) per = atoi(e) > 8 ? 8 : atoi(e);
  int nt = per * ndev;
  pthread_t *th = calloc((size_t)nt, sizeof *th);
  warg *args = calloc((size_t)nt, sizeof *args);
  double t0 = now_s();
  for (int k = 0; k < nt; k++) {
    args[k] = (warg){k % ndev, k, quick ? 2 : 8};
    if (pthread_create(&th[k], NULL, stream_worker, &args[k]) != 0) {
      record(false, "(c) pthread_create failed");
      args[k].iters = -1;
    }
  }
  for (int k = 0; k < nt; k++)
    if (args[k].iters >= 0) pthread_join(th[k], NULL);
  printf("  %d threads (%d per device), each with its own stream: %.2f s\n", nt, per,
         now_s() - t0);
  free(th);
  free(args);
}

/* One thread, one graph, crossing devices through explicit copies. */
static void t_mixed_graph(int i, int j, rng *r) {
  const int64_t sx[2] = {64, 32}, sw[2] = {32, 64};
  void *hx = host_rand(EM_F32, count_of(2, sx), r, M_UNIT),
       *hw = host_rand(EM_F32, count_of(2, sw), r, M_UNIT);
  em_array *xc = upload(EM_F32, 2, sx, hx, CPU), *wc = upload(EM_F32, 2, sw, hw, CPU),
           *xi = upload(EM_F32, 2, sx, hx, cu(i)), *wi = upload(EM_F32, 2, sw, hw, cu(i)),
           *wj = upload(EM_F32, 2, sw, hw, cu(j));
  free(hx);
  free(hw);
  /* cpu: exp(x) x w + x w */
  em_array *ec = NULL, *yc = NULL, *zc = NULL, *xwc = NULL, *rc = NULL;
  em_exp(&ec, xc);
  em_multiply(&yc, ec, xc);
  em_matmul(&zc, yc, wc);
  em_matmul(&xwc, xc, wc);
  em_add(&rc, zc, xwc);
  /* devices: y on i, moved to j for the first product, back to i */
  em_array *ei = NULL, *yi = NULL, *yj = NULL, *zj = NULL, *zi = NULL, *xwi = NULL, *ri = NULL;
  em_exp(&ei, xi);
  em_multiply(&yi, ei, xi);
  em_status st = yi ? em_copy_to_device(&yj, yi, cu(j)) : EM_ERR_ARGUMENT;
  record(st == EM_OK, "(c) mixed graph: copy to cuda:%d: %s", j, em_last_error());
  if (yj) em_matmul(&zj, yj, wj);
  st = zj ? em_copy_to_device(&zi, zj, cu(i)) : EM_ERR_ARGUMENT;
  record(st == EM_OK, "(c) mixed graph: copy back to cuda:%d: %s", i, em_last_error());
  em_matmul(&xwi, xi, wi);
  if (zi && xwi) em_add(&ri, zi, xwi);
  char what[96];
  snprintf(what, sizeof what, "(c) graph cuda:%d -> cuda:%d -> cuda:%d vs cpu", i, j, i);
  if (eval_ok(what, ri) && eval_ok("(c) mixed graph on cpu", rc)) {
    record(em_array_device(ri).index == i, "%s: result device", what);
    cmp_tol(what, ri, rc, 2e-5, 1e-4);
  }

  /* one em_eval of arrays on two devices */
  em_array *ai = NULL, *aj = NULL, *xj = NULL;
  em_exp(&ai, xi);
  st = em_copy_to_device(&xj, xi, cu(j));
  if (st == EM_OK) st = em_exp(&aj, xj);
  if (st == EM_OK) st = em_eval((em_array *[]){ai, aj}, 2);
  snprintf(what, sizeof what, "(c) em_eval of [exp on cuda:%d, exp on cuda:%d]", i, j);
  record(st == EM_OK, "%s: %s", what, em_last_error());
  if (st == EM_OK) {
    cmp_tol(what, ai, ec, 2e-6, 0);
    cmp_tol(what, aj, ec, 2e-6, 0);
  }

  /* a stream takes only arrays of its device */
  em_stream *s = NULL;
  st = em_stream_new(&s, cu(i));
  record(st == EM_OK, "(c) stream_new: %s", em_last_error());
  if (s && aj) {
    em_array *bj = NULL;
    em_negate(&bj, aj);
    st = bj ? em_eval_async(&bj, 1, s, NULL, NULL) : EM_ERR_ARGUMENT;
    record(st == EM_ERR_ARGUMENT && strstr(em_last_error(), "device"),
           "(c) eval_async of a cuda:%d array on a cuda:%d stream: %s (%s)", j, i,
           em_status_name(st), em_last_error());
    em_array_release(bj);
  }
  em_stream_free(s);
  REL(xc, wc, xi, wi, wj, ec, yc, zc, xwc, rc, ei, yi, yj, zj, zi, xwi, ri, ai, aj, xj);
}

/* ---- (d) memory statistics per device ------------------------------------------------ */

static void t_memory(void) {
  const size_t big = 64 * MIB; /* a whole bin: active moves by exactly this */
  for (int j = 0; j < ndev; j++) {
    em_memory_stats b[MAXD], a[MAXD], c[MAXD];
    for (int d = 0; d < ndev; d++) em_memory_clear_cache(cu(d));
    em_memory_reset_peak(cu(j));
    for (int d = 0; d < ndev; d++)
      record(em_memory_stats_get(cu(d), &b[d]) == EM_OK, "(d) stats cuda:%d: %s", d,
             em_last_error());
    int64_t n = (int64_t)big;
    uint8_t v = 7;
    em_array *x = NULL;
    em_status st = em_full(&x, EM_U8, 1, &n, &v, cu(j));
    if (st == EM_OK) st = em_eval(&x, 1);
    record(st == EM_OK, "(d) 64 MiB on cuda:%d: %s", j, em_last_error());
    for (int d = 0; d < ndev; d++) em_memory_stats_get(cu(d), &a[d]);
    em_array_release(x);
    for (int d = 0; d < ndev; d++) em_memory_stats_get(cu(d), &c[d]);
    record(a[j].active_bytes == b[j].active_bytes + big,
           "(d) cuda:%d active %zu -> %zu after 64 MiB there", j, b[j].active_bytes,
           a[j].active_bytes);
    record(a[j].peak_bytes >= a[j].active_bytes, "(d) cuda:%d peak %zu < active %zu", j,
           a[j].peak_bytes, a[j].active_bytes);
    record(a[j].alloc_count >= b[j].alloc_count + 1, "(d) cuda:%d allocation count", j);
    record(c[j].active_bytes == b[j].active_bytes, "(d) cuda:%d active %zu -> %zu after release",
           j, b[j].active_bytes, c[j].active_bytes);
    record(c[j].cached_bytes == b[j].cached_bytes + big,
           "(d) cuda:%d cached %zu -> %zu after release", j, b[j].cached_bytes,
           c[j].cached_bytes);
    for (int d = 0; d < ndev; d++) {
      if (d == j) continue;
      record(a[d].active_bytes == b[d].active_bytes && c[d].active_bytes == b[d].active_bytes,
             "(d) cuda:%d active moved (%zu, %zu, %zu) by 64 MiB on cuda:%d", d,
             b[d].active_bytes, a[d].active_bytes, c[d].active_bytes, j);
      record(a[d].cached_bytes == b[d].cached_bytes && c[d].cached_bytes == b[d].cached_bytes,
             "(d) cuda:%d cached moved by 64 MiB on cuda:%d", d, j);
      record(a[d].alloc_count == b[d].alloc_count && a[d].peak_bytes == b[d].peak_bytes,
             "(d) cuda:%d allocation count / peak moved by 64 MiB on cuda:%d", d, j);
    }
    em_memory_clear_cache(cu(j));
    em_memory_stats e;
    em_memory_stats_get(cu(j), &e);
    record(e.cached_bytes == 0, "(d) cuda:%d cached %zu after clear_cache", j, e.cached_bytes);
  }
}

/* ---- (e) out of memory on one device ------------------------------------------------- */

static bool names_request(const char *msg, int dev, size_t bytes) {
  char d[32], b[32];
  snprintf(d, sizeof d, "cuda:%d", dev);
  snprintf(b, sizeof b, "%zu", bytes);
  return strstr(msg, d) && strstr(msg, b);
}

static void t_oom(void) {
  const int j = 1;
  const em_device dj = cu(j), d0 = cu(0);
  const int64_t n = (int64_t)64 << 20; /* f32: 256 MiB */
  const size_t nbytes = (size_t)n * 4;
  em_memory_clear_cache(dj);
  em_memory_stats s0;
  em_memory_stats_get(dj, &s0);
  const size_t lim = s0.active_bytes + 32 * MIB;
  em_memory_set_limit(dj, lim);
  em_memory_stats sl;
  em_memory_stats_get(dj, &sl);
  record(sl.limit_bytes == lim, "(e) cuda:%d limit %zu, want %zu", j, sl.limit_bytes, lim);

  /* evaluation */
  em_array *big = full_f32(1, &n, 1.0f, dj);
  em_status st = big ? em_eval(&big, 1) : EM_ERR_ARGUMENT;
  record(st == EM_ERR_OOM, "(e) 256 MiB eval on limited cuda:%d: %s (%s)", j,
         em_status_name(st), em_last_error());
  record(names_request(em_last_error(), j, nbytes), "(e) message should name cuda:%d and %zu: %s",
         j, nbytes, em_last_error());
  record(big && em_array_data(big) == NULL, "(e) the failed array has data");
  em_array_release(big);

  /* a copy into the limit, from cuda:0 (which has none) */
  em_array *src0 = full_f32(1, &n, 2.0f, d0), *o = NULL;
  st = src0 ? em_eval(&src0, 1) : EM_ERR_ARGUMENT;
  record(st == EM_OK, "(e) 256 MiB on cuda:0 while cuda:%d is limited: %s", j, em_last_error());
  st = src0 ? em_copy_to_device(&o, src0, dj) : EM_ERR_ARGUMENT;
  record(st == EM_ERR_OOM && !o, "(e) 256 MiB copy cuda:0 -> limited cuda:%d: %s (%s)", j,
         em_status_name(st), em_last_error());
  record(names_request(em_last_error(), j, nbytes), "(e) copy message should name cuda:%d and %zu: %s",
         j, nbytes, em_last_error());
  em_array_release(o);

  /* an upload into the limit */
  void *h = calloc((size_t)n, 4);
  em_array *u = NULL;
  st = h ? em_array_from_data(&u, EM_F32, 1, &n, h, nbytes, dj) : EM_ERR_OOM;
  record(st == EM_ERR_OOM && !u, "(e) 256 MiB upload to limited cuda:%d: %s (%s)", j,
         em_status_name(st), em_last_error());
  record(names_request(em_last_error(), j, nbytes),
         "(e) upload message should name cuda:%d and %zu: %s", j, nbytes, em_last_error());
  free(h);

  /* cuda:j still runs what fits */
  {
    const int64_t sn[1] = {1024};
    em_array *sm = full_f32(1, sn, 1.5f, dj), *ss = NULL;
    if (sm) em_sum(&ss, sm, 0, NULL, false);
    const float *v = eval_ok("(e) small sum on limited cuda:1", ss) ? em_array_data(ss) : NULL;
    record(v && *v == 1536.0f, "(e) small sum on limited cuda:%d = %g", j, v ? *v : -1.0);
    REL(sm, ss);
  }
  /* cuda:0 keeps working: the 256 MiB array and a product */
  if (src0) {
    em_array *mx = NULL, *mn = NULL;
    em_reduce_max(&mx, src0, 0, NULL, false);
    em_reduce_min(&mn, src0, 0, NULL, false);
    em_status s2 = mx && mn ? em_eval((em_array *[]){mx, mn}, 2) : EM_ERR_ARGUMENT;
    const float *a = s2 == EM_OK ? em_array_data(mx) : NULL,
                *b = s2 == EM_OK ? em_array_data(mn) : NULL;
    record(a && b && *a == 2.0f && *b == 2.0f, "(e) cuda:0 max/min of 256 MiB: %s",
           em_last_error());
    REL(mx, mn);
    const int64_t sq[2] = {512, 512};
    em_array *p = full_f32(2, sq, 1.0f, d0), *pp = NULL, *v512 = scalar(EM_F32, 512, d0);
    if (p) em_matmul(&pp, p, p);
    if (pp && v512) all_equal_on_device("(e) matmul on cuda:0 while cuda:1 is limited", pp, v512);
    REL(p, pp, v512);
  }
  em_array_release(src0);
  em_memory_stats se;
  em_memory_stats_get(dj, &se);
  record(se.active_bytes == s0.active_bytes, "(e) cuda:%d active %zu after the failures, was %zu",
         j, se.active_bytes, s0.active_bytes);

  /* injected failures are per device */
  {
    const int64_t sn[1] = {4096};
    em_memory_fail_after(dj, 0);
    em_array *a0 = full_f32(1, sn, 1.0f, d0), *aj = full_f32(1, sn, 1.0f, dj);
    st = a0 ? em_eval(&a0, 1) : EM_ERR_ARGUMENT;
    record(st == EM_OK, "(e) cuda:0 while cuda:%d injects a failure: %s", j, em_last_error());
    st = aj ? em_eval(&aj, 1) : EM_ERR_ARGUMENT;
    char dname_j[16];
    snprintf(dname_j, sizeof dname_j, "cuda:%d", j);
    record(st == EM_ERR_OOM && strstr(em_last_error(), dname_j),
           "(e) injected failure on cuda:%d: %s (%s)", j, em_status_name(st), em_last_error());
    em_memory_fail_after(dj, -1);
    em_array *aj2 = full_f32(1, sn, 1.0f, dj);
    record(aj2 && em_eval(&aj2, 1) == EM_OK, "(e) cuda:%d after the injection: %s", j,
           em_last_error());
    REL(a0, aj, aj2);
  }

  /* lift the limit */
  em_memory_set_limit(dj, 0);
  em_array *big2 = full_f32(1, &n, 1.0f, dj), *mx = NULL;
  if (big2) em_reduce_max(&mx, big2, 0, NULL, false);
  const float *v = eval_ok("(e) 256 MiB on cuda:1 without the limit", mx) ? em_array_data(mx) : NULL;
  record(v && *v == 1.0f, "(e) 256 MiB on cuda:%d after lifting the limit", j);
  REL(big2, mx);
  em_memory_clear_cache(dj);
}

/* ---- (f) invalid devices ----------------------------------------------------------------- */

static void t_invalid(void) {
  record(em_device_count(EM_DEVICE_CUDA) == ndev, "(f) device count");
  const int bad[] = {ndev, ndev + 1, -1, MAXD, 1000, INT_MAX, INT_MIN};
  const int64_t n4[1] = {4};
  const float host[4] = {1, 2, 3, 4};
  em_array *x0 = upload(EM_F32, 1, n4, host, cu(0));
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    const em_device d = cu(bad[k]);
    char what[64];
    snprintf(what, sizeof what, "(f) cuda:%d", bad[k]);
    em_array *a = NULL;
    float v = 1;
    em_status st = em_full(&a, EM_F32, 1, n4, &v, d);
    record(st == EM_ERR_ARGUMENT && !a && strstr(em_last_error(), "not available"),
           "%s: full: %s (%s)", what, em_status_name(st), em_last_error());
    st = em_iota(&a, EM_S32, 1, n4, 0, d);
    record(st == EM_ERR_ARGUMENT && !a, "%s: iota: %s", what, em_status_name(st));
    st = em_eye(&a, EM_F32, 2, (const int64_t[]){2, 2}, d);
    record(st == EM_ERR_ARGUMENT && !a, "%s: eye: %s", what, em_status_name(st));
    st = em_full_scalar(&a, EM_F32, 1.0, d);
    record(st == EM_ERR_ARGUMENT && !a, "%s: full_scalar: %s", what, em_status_name(st));
    st = em_array_from_data(&a, EM_F32, 1, n4, host, sizeof host, d);
    record(st == EM_ERR_ARGUMENT && !a, "%s: from_data: %s", what, em_status_name(st));
    em_array *o = NULL;
    st = x0 ? em_copy_to_device(&o, x0, d) : EM_ERR_ARGUMENT;
    record(st == EM_ERR_ARGUMENT && !o, "%s: copy_to_device: %s", what, em_status_name(st));
    em_stream *s = NULL;
    st = em_stream_new(&s, d);
    record(st == EM_ERR_ARGUMENT && !s, "%s: stream_new: %s", what, em_status_name(st));
    em_stream_free(s);
    record(em_default_stream(d) == NULL, "%s: default stream exists", what);
    em_memory_stats m;
    record(em_memory_stats_get(d, &m) != EM_OK, "%s: memory_stats succeeded", what);
    /* void entry points: no crash, no effect on real devices */
    em_memory_set_limit(d, 1);
    em_memory_set_limit(d, 0);
    em_memory_reset_peak(d);
    em_memory_clear_cache(d);
    em_memory_fail_after(d, 0);
    em_memory_fail_after(d, -1);
  }
  /* a device type that does not exist */
  {
    const em_device d = {(em_device_type)7, 0}, dbig = {(em_device_type)7, INT_MAX};
    em_array *a = NULL, *o = NULL;
    float v = 1;
    record(em_full(&a, EM_F32, 1, n4, &v, d) == EM_ERR_ARGUMENT && !a, "(f) type 7: full");
    record(!x0 || (em_copy_to_device(&o, x0, d) == EM_ERR_ARGUMENT && !o),
           "(f) type 7: copy_to_device");
    em_stream *s = NULL;
    record(em_stream_new(&s, d) == EM_ERR_ARGUMENT && !s, "(f) type 7: stream_new");
    record(em_default_stream(d) == NULL, "(f) type 7: default stream");
    em_memory_stats m;
    record(em_memory_stats_get(dbig, &m) != EM_OK, "(f) type 7 index INT_MAX: memory_stats");
  }
  /* cuda:0 still fine after all that */
  if (x0) {
    em_array *e = NULL;
    em_exp(&e, x0);
    eval_ok("(f) cuda:0 after the invalid devices", e);
    em_array_release(e);
  }

  /* ops mixing two devices are refused at graph building */
  em_array *x1 = NULL;
  em_status st = x0 ? em_copy_to_device(&x1, x0, cu(1)) : EM_ERR_ARGUMENT;
  record(st == EM_OK, "(f) copy to cuda:1: %s", em_last_error());
  if (x0 && x1) {
    const int64_t s22[2] = {2, 2};
    em_array *m0 = NULL, *m1 = NULL, *p0 = NULL, *i1 = NULL, *w1 = NULL;
    em_reshape(&m0, x0, 2, s22);
    em_reshape(&m1, x1, 2, s22);
    em_full(&p0, EM_U8, 1, n4, &(uint8_t){1}, cu(0));
    em_iota(&i1, EM_S32, 1, (const int64_t[]){2}, 0, cu(1));
    em_slice(&w1, x1, (const int64_t[]){0}, (const int64_t[]){2}, NULL);
    em_array *r[7] = {NULL};
    const char *names[7] = {"add", "matmul", "select", "concatenate", "take", "solve",
                            "layer_norm (weight)"};
    em_status sts[7] = {
        em_add(&r[0], x0, x1),
        em_matmul(&r[1], m0, m1),
        em_select(&r[2], p0, x0, x1),
        em_concatenate(&r[3], (em_array *[]){x0, x1}, 2, 0),
        em_take(&r[4], x0, i1, 0),
        em_solve(&r[5], m0, m1),
        em_layer_norm(&r[6], m0, w1, NULL, 1e-5),
    };
    for (int k = 0; k < 7; k++) {
      record(sts[k] == EM_ERR_ARGUMENT && !r[k], "(f) %s of cuda:0 and cuda:1 arrays: %s (%s)",
             names[k], em_status_name(sts[k]), em_last_error());
      em_array_release(r[k]);
    }
    REL(m0, m1, p0, i1, w1);
  }
  REL(x0, x1);
}

/* ---- main ---------------------------------------------------------------------------------- */

int main(void) {
  ndev = em_device_count(EM_DEVICE_CUDA);
  if (ndev < 2) {
    if (ndev == 1) {
      quick = getenv("EMILY_TEST_QUICK") != NULL;
      printf("two streams of one device sharing a DONE-but-running array\n");
      t_same_device_race(0);
      printf("test_cuda_multi: SKIPPED the rest: needs 2 CUDA devices (found 1)\n");
      return TEST_SUMMARY();
    }
    printf("test_cuda_multi: SKIPPED: needs 2 CUDA devices (found %d)\n", ndev);
    return 0;
  }
  if (ndev > MAXD) ndev = MAXD;
  quick = getenv("EMILY_TEST_QUICK") != NULL;
  for (int d = 0; d < ndev; d++) {
    const em_cu_props *p = em_cu_device_props(d);
    printf("cuda:%d: %s, sm_%d%d, %d SMs, %.1f GiB\n", d, p->name, p->major, p->minor, p->sms,
           (double)p->total_mem / (double)(1u << 30));
  }
  rng r = {0x243F6A8885A308D3ull};

  printf("(f) invalid devices\n");
  t_invalid();
  printf("(a) the same computations on every device and the CPU\n");
  t_same_everywhere(&r);
  printf("(b) device-to-device copies\n");
  for (int i = 0; i < ndev; i++)
    for (int j = 0; j < ndev; j++)
      if (i != j) t_copies(i, j, &r);
  t_chain(&r);
  for (int i = 0; i < ndev; i++)
    for (int j = 0; j < ndev; j++)
      if (i != j) t_inflight(i, j);
  for (int i = 0; i < ndev; i++)
    for (int j = 0; j < ndev; j++)
      if (i != j) t_big_copy(i, j);
  printf("(c) a stream per GPU, in parallel\n");
  t_streams_parallel();
  for (int i = 0; i < ndev; i++)
    for (int j = 0; j < ndev; j++)
      if (i != j) t_mixed_graph(i, j, &r);
  printf("two streams of one device sharing a DONE-but-running array\n");
  t_same_device_race(0);
  printf("(d) memory statistics per device\n");
  t_memory();
  printf("(e) out of memory on cuda:1\n");
  t_oom();
  cuda_diff_summary();
  return TEST_SUMMARY();
}
