/* test_cuda.c — the CUDA backend against the CPU backend (differential):
 * the same random inputs go through the same op on {CPU} and {CUDA, 0} and
 * the results are compared with per-dtype tolerances, for every op the
 * CUDA backend implements, across all 20 dtypes (the narrow s2 s4 u2 u4
 * f8 f8_e4m3fn included: s2..u4 go in and out packed and compare exactly,
 * f8 compares codes, one ulp apart where rounding may differ) and shape
 * kinds (scalar,
 * zero-size, broadcast, non-contiguous views, large); then CUDA-only cases:
 * concurrent streams, out-of-memory, memory statistics, transfers and an
 * array of more than 2^31 elements.
 *
 * Without a CUDA device it prints "SKIPPED: no CUDA device" and passes.
 * EMILY_CUDA_JIT_CHECK=1 instead compiles every run-time program the
 * backend can generate with NVRTC (no GPU needed). An op the backend
 * reports as EM_ERR_UNSUPPORTED is counted and listed, not failed.
 * EMILY_TEST_THREADS (default 8) sets how many threads (each with its own
 * CUDA stream) run the per-dtype sweeps; EMILY_TEST_QUICK=1 runs a small
 * subset (for compute-sanitizer). */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/array-impl.h"
#include "cpu/cpu-kernels.h"
#include "harness.h"

int em_cu_jit_selfcheck(int verbose);

#include "cuda_diff.h"
#include "cpu/subbyte.h"

/* ---- narrow dtypes (s2 s4 u2 u4 f8 f8_e4m3fn) --------------------------------------- */

/* prand, with s2..u4 generated in range and handed over packed (the host
 * layout of em_array_from_data). */
static pair nprand(em_dtype t, int nd, const int64_t *shape, rng *r, int mode) {
  if (!em_dtype_is_subbyte(t)) return prand(t, nd, shape, r, mode);
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= shape[i];
  uint8_t *h = host_rand(em_subbyte_base(t), n, r, mode);
  em_subbyte_wrap(t, h, n);
  size_t nb = ((size_t)n * (size_t)em_dtype_bits(t) + 7) / 8;
  uint8_t *pk = calloc(nb ? nb : 1, 1);
  em_subbyte_pack(t, h, pk, n);
  pair p = {NULL, NULL};
  em_status st = em_array_from_data(&p.c, t, nd, shape, pk, nb, CPU);
  record(st == EM_OK, "from_data %s (packed) on cpu: %s", em_dtype_name(t), em_last_error());
  st = em_array_from_data(&p.g, t, nd, shape, pk, nb, CU);
  record(st == EM_OK, "from_data %s (packed) on cuda: %s", em_dtype_name(t), em_last_error());
  free(h);
  free(pk);
  return p;
}

/* check_pair for every output dtype: s2..u4 compare their packed bytes
 * exactly; f8 / f8_e4m3fn compare codes, NaN equal to NaN, and where cls
 * allows rounding differences, one code (one ulp) apart. */
static void ncheck(const char *what, em_array *rc, em_array *rg, int cls, double atol) {
  if (!rc || !rg || !em_dtype_is_narrow(rc->dtype)) {
    check_pair(what, rc, rg, cls, atol);
    return;
  }
  em_status sc = em_eval(&rc, 1);
  record(sc == EM_OK, "%s: CPU eval: %s", what, em_last_error());
  em_status sg = eval_cuda(rg);
  if (sg == EM_ERR_UNSUPPORTED) {
    unsupported(what);
    return;
  }
  record(sg == EM_OK, "%s: CUDA eval: %s", what, em_last_error());
  if (sc != EM_OK || sg != EM_OK) return;
  record(rc->dtype == rg->dtype && rc->size == rg->size, "%s: dtype/size", what);
  const uint8_t *hc = em_array_data(rc), *hg = em_array_data(rg);
  record(hc && hg, "%s: array_data: %s", what, em_last_error());
  if (!hc || !hg) return;
  em_dtype t = rc->dtype;
  int bad = 0;
  if (em_dtype_is_subbyte(t)) {
    size_t nb = em_array_nbytes(rc);
    if (memcmp(hc, hg, nb)) {
      int8_t *uc = malloc((size_t)rc->size + 1), *ug = malloc((size_t)rc->size + 1);
      em_subbyte_unpack(t, hc, uc, rc->size);
      em_subbyte_unpack(t, hg, ug, rc->size);
      for (int64_t i = 0; i < rc->size; i++)
        if (uc[i] != ug[i] && bad++ < 3)
          record(false, "%s [%s] element %lld: got %d want %d", what, em_dtype_name(t),
                 (long long)i, ug[i], uc[i]);
      if (!bad) record(false, "%s [%s]: packed padding bits differ", what, em_dtype_name(t));
      free(uc);
      free(ug);
      return;
    }
    record(true, "");
    return;
  }
  em_unary_kernel dec = em_cpu_cast_kernel(t, EM_F32);
  for (int64_t i = 0; i < rc->size; i++) {
    uint8_t a = hg[i], b = hc[i];
    if (a == b) continue;
    float fa, fb;
    dec(&a, &fa, 1);
    dec(&b, &fb, 1);
    bool ok = (fa != fa && fb != fb) || fa == fb;
    if (!ok && cls > 0)
      ok = ((a ^ b) & 0x80u) == 0 && (a > b ? a - b : b - a) == 1;
    if (!ok && bad++ < 3)
      record(false, "%s [%s] element %lld: got 0x%02x (%g) want 0x%02x (%g)", what,
             em_dtype_name(t), (long long)i, a, fa, b, fb);
  }
  if (!bad) record(true, "");
}

/* ---- elementwise --------------------------------------------------------------- */

typedef em_status (*un_fn)(em_array **, em_array *);
typedef em_status (*bin_fn)(em_array **, em_array *, em_array *);
static const struct {
  const char *name;
  em_op op;
  un_fn f;
} UN[] = {
#define X(n) {#n, EM_OP_##n, em_##n},
    EM_UNARY_OPS(X)
#undef X
};
static const struct {
  const char *name;
  em_op op;
  bin_fn f;
} BIN[] = {
#define X(n) {#n, EM_OP_##n, em_##n},
    EM_BINARY_OPS(X)
#undef X
};

static bool exact_unary(em_op op, em_dtype t) {
  if (em_dtype_is_complex(t)) return op == EM_OP_negate || op == EM_OP_conjugate ||
                                     op == EM_OP_real || op == EM_OP_imag ||
                                     op == EM_OP_is_nan || op == EM_OP_is_infinity ||
                                     op == EM_OP_logical_not;
  switch (op) {
    case EM_OP_abs: case EM_OP_bitwise_not: case EM_OP_ceil: case EM_OP_conjugate:
    case EM_OP_floor: case EM_OP_negate: case EM_OP_round: case EM_OP_sign:
    case EM_OP_count_leading_zeros: case EM_OP_population_count: case EM_OP_real:
    case EM_OP_imag: case EM_OP_is_nan: case EM_OP_is_infinity: case EM_OP_logical_not:
      return true;
    default:
      return false;
  }
}
static bool exact_binary(em_op op, em_dtype t) {
  if (em_dtype_is_int(t)) return true;
  if (op == EM_OP_pow || op == EM_OP_atan2 || op == EM_OP_remainder) return false;
  if (em_dtype_is_complex(t)) return op != EM_OP_multiply && op != EM_OP_divide;
  return true;
}

static void t_unary(em_dtype t, rng *r) {
  int64_t shape[2] = {37, 29};
  pair x = nprand(t, 2, shape, r, M_GENERAL);
  for (size_t k = 0; k < sizeof UN / sizeof UN[0]; k++) {
    if (em_unary_out_dtype(UN[k].op, t) < 0) continue;
    for (int lay = 0; lay < (quick ? 1 : 2); lay++) {
      pair v = layout(x, lay ? L_TRANSPOSED : L_CONTIG);
      em_array *rc = NULL, *rg = NULL;
      UN[k].f(&rc, v.c);
      UN[k].f(&rg, v.g);
      char what[96];
      snprintf(what, sizeof what, "%s %s%s", UN[k].name, em_dtype_name(t),
               lay ? " (transposed)" : "");
      ncheck(what, rc, rg, exact_unary(UN[k].op, t) ? 0 : 2, 0);
      em_array_release(rc);
      em_array_release(rg);
      prelease(v);
    }
  }
  prelease(x);
}

static void t_binary(em_dtype t, rng *r) {
  int64_t shape[2] = {37, 29}, row[1] = {29};
  pair a = nprand(t, 2, shape, r, M_GENERAL), b = nprand(t, 2, shape, r, M_GENERAL);
  pair brow = nprand(t, 1, row, r, M_GENERAL), bs = nprand(t, 0, NULL, r, M_FINITE);
  for (size_t k = 0; k < sizeof BIN / sizeof BIN[0]; k++) {
    if (em_binary_out_dtype(BIN[k].op, t) < 0) continue;
    /* same shape, broadcast row (a strided leaf), scalar, sliced views */
    for (int form = 0; form < (quick ? 1 : 4); form++) {
      pair x = form == 3 ? layout(a, L_SLICED) : layout(a, L_CONTIG);
      pair y = form == 0 ? layout(b, L_CONTIG)
             : form == 1 ? layout(brow, L_CONTIG)
             : form == 2 ? layout(bs, L_CONTIG) : layout(b, L_SLICED);
      em_array *rc = NULL, *rg = NULL;
      BIN[k].f(&rc, x.c, y.c);
      BIN[k].f(&rg, x.g, y.g);
      static const char *fn[] = {"", " (broadcast row)", " (scalar)", " (sliced)"};
      char what[96];
      snprintf(what, sizeof what, "%s %s%s", BIN[k].name, em_dtype_name(t), fn[form]);
      ncheck(what, rc, rg, exact_binary(BIN[k].op, t) ? 0 : 2, 0);
      em_array_release(rc);
      em_array_release(rg);
      prelease(x);
      prelease(y);
    }
  }
  prelease(a);
  prelease(b);
  prelease(brow);
  prelease(bs);
}

static void t_cast_select(em_dtype t, rng *r) {
  int64_t shape[2] = {13, 41};
  pair x = nprand(t, 2, shape, r, M_GENERAL);
  for (int to = 0; to < EM_DTYPE_COUNT; to++) {
    for (int lay = 0; lay < (quick ? 1 : 2); lay++) {
      pair v = layout(x, lay ? L_TRANSPOSED : L_CONTIG);
      em_array *rc = NULL, *rg = NULL;
      em_as_type(&rc, v.c, (em_dtype)to);
      em_as_type(&rg, v.g, (em_dtype)to);
      char what[96];
      snprintf(what, sizeof what, "as_type %s -> %s%s", em_dtype_name(t),
               em_dtype_name((em_dtype)to), lay ? " (transposed)" : "");
      ncheck(what, rc, rg, 0, 0);
      em_array_release(rc);
      em_array_release(rg);
      prelease(v);
    }
  }
  /* select with a u8 predicate and a non-u8 one; clip */
  pair p = nprand(EM_U8, 2, shape, r, M_TIES), y = nprand(t, 2, shape, r, M_GENERAL);
  pair ps = nprand(t, 2, shape, r, M_TIES);
  em_array *rc = NULL, *rg = NULL;
  em_select(&rc, p.c, x.c, y.c);
  em_select(&rg, p.g, x.g, y.g);
  char what[96];
  snprintf(what, sizeof what, "select %s", em_dtype_name(t));
  ncheck(what, rc, rg, 0, 0);
  em_array_release(rc);
  em_array_release(rg);
  em_select(&rc, ps.c, x.c, y.c);
  em_select(&rg, ps.g, x.g, y.g);
  snprintf(what, sizeof what, "select (%s predicate)", em_dtype_name(t));
  ncheck(what, rc, rg, 0, 0);
  em_array_release(rc);
  em_array_release(rg);
  if (em_binary_out_dtype(EM_OP_max, t) >= 0) {
    pair lo = nprand(t, 0, NULL, r, M_FINITE), hi = nprand(t, 1, shape + 1, r, M_FINITE);
    em_clip(&rc, x.c, lo.c, hi.c);
    em_clip(&rg, x.g, lo.g, hi.g);
    snprintf(what, sizeof what, "clip %s", em_dtype_name(t));
    ncheck(what, rc, rg, 0, 0);
    em_array_release(rc);
    em_array_release(rg);
    prelease(lo);
    prelease(hi);
  }
  prelease(p);
  prelease(y);
  prelease(ps);
  prelease(x);
}

/* ---- reductions -------------------------------------------------------------------- */

typedef em_status (*red_fn)(em_array **, em_array *, int, const int *, bool);
static const struct {
  const char *name;
  em_op op;
  red_fn f;
} RED[] = {
#define X(n) {#n, EM_OP_##n, em_##n},
    EM_REDUCE_OPS(X)
#undef X
};

static void t_reduce(em_dtype t, rng *r) {
  static const int64_t s3[3] = {33, 47, 5}, s_big[1] = {5000}, s_row[2] = {3, 70001},
                       s_col[2] = {70000, 3}, s_empty[3] = {4, 0, 3};
  static const struct {
    int nd;
    const int64_t *shape;
    int naxes;
    int axes[3];
    bool keep;
  } cases[] = {
      {3, s3, 1, {1}, false}, {3, s3, 2, {0, 2}, false}, {3, s3, 1, {2}, true},
      {3, s3, 0, {0}, false}, {1, s_big, 0, {0}, false}, {2, s_row, 1, {1}, false},
      {2, s_col, 1, {0}, false}, {3, s_empty, 1, {1}, false},
  };
  int ncases = quick ? 3 : (int)(sizeof cases / sizeof cases[0]);
  for (size_t k = 0; k < sizeof RED / sizeof RED[0]; k++) {
    bool cplx = em_dtype_is_complex(t);
    if (cplx && (RED[k].op == EM_OP_reduce_max || RED[k].op == EM_OP_reduce_min)) continue;
    int mode = RED[k].op == EM_OP_product ? M_POS
             : (RED[k].op == EM_OP_all || RED[k].op == EM_OP_any) ? M_TIES
             : M_GENERAL;
    for (int c = 0; c < ncases; c++) {
      if (RED[k].op == EM_OP_product && cases[c].shape != s3) continue;
      pair x = nprand(t, cases[c].nd, cases[c].shape, r, mode);
      em_array *rc = NULL, *rg = NULL;
      const int *ax = cases[c].naxes ? cases[c].axes : NULL;
      RED[k].f(&rc, x.c, cases[c].naxes, ax, cases[c].keep);
      RED[k].f(&rg, x.g, cases[c].naxes, ax, cases[c].keep);
      char what[96];
      snprintf(what, sizeof what, "%s %s case %d", RED[k].name, em_dtype_name(t), c);
      /* sums: accumulation order differs; scale atol by the row length */
      int64_t rlen = rc ? x.c->size / (rc->size ? rc->size : 1) : 1;
      double at = 0;
      int cls = 0;
      if ((RED[k].op == EM_OP_sum || RED[k].op == EM_OP_product) && !em_dtype_is_int(t)) {
        cls = 1;
        at = (t == EM_F16 ? 1e-3 : t == EM_BF16 ? 8e-3 : t == EM_F32 || t == EM_C64 ? 1e-6 : 1e-13) *
             4.0 * (double)rlen;
      }
      ncheck(what, rc, rg, cls, at);
      em_array_release(rc);
      em_array_release(rg);
      prelease(x);
    }
  }
  if (em_dtype_is_complex(t)) return;
  /* argmax / argmin: ties and NaNs */
  for (int op = 0; op < 2; op++)
    for (int tie = 0; tie < 2; tie++)
      for (int axis = -1; axis < 3; axis++) {
        if (quick && axis > 0) continue;
        pair x = nprand(t, 3, s3, r, M_TIES);
        em_array *rc = NULL, *rg = NULL;
        if (op == 0) {
          em_argmax(&rc, x.c, axis, false, tie);
          em_argmax(&rg, x.g, axis, false, tie);
        } else {
          em_argmin(&rc, x.c, axis, false, tie);
          em_argmin(&rg, x.g, axis, false, tie);
        }
        char what[96];
        snprintf(what, sizeof what, "%s %s axis %d tie_high %d", op ? "argmin" : "argmax",
                 em_dtype_name(t), axis, tie);
        ncheck(what, rc, rg, 0, 0);
        em_array_release(rc);
        em_array_release(rg);
        prelease(x);
      }
}

/* ---- per-dtype sweep, threaded -------------------------------------------------------- */

static atomic_int g_next_dtype;

static void *sweep(void *arg) {
  (void)arg;
  em_stream *s = NULL;
  em_status st = em_stream_new(&s, CU);
  record(st == EM_OK, "stream_new: %s", em_last_error());
  tl_stream = s;
  for (;;) {
    int t = atomic_fetch_add(&g_next_dtype, 1);
    if (t >= EM_DTYPE_COUNT) break;
    /* quick: a representative subset of dtypes */
    if (quick && t != EM_U8 && t != EM_S32 && t != EM_F16 && t != EM_F32 &&
        t != EM_C64 && t != EM_S4 && t != EM_F8)
      continue;
    rng r = {0x9e3779b97f4a7c15ull ^ ((uint64_t)t * 0x1234567ull + 1)};
    t_unary((em_dtype)t, &r);
    t_binary((em_dtype)t, &r);
    t_cast_select((em_dtype)t, &r);
    t_reduce((em_dtype)t, &r);
    printf("  dtype %s done\n", em_dtype_name((em_dtype)t));
  }
  tl_stream = NULL;
  em_stream_free(s);
  return NULL;
}

/* ---- creation and data movement --------------------------------------------------------- */

static void t_creation(rng *r) {
  for (int ti = 0; ti < EM_DTYPE_COUNT; ti++) {
    em_dtype t = (em_dtype)ti;
    int64_t shape[3] = {3, 5, 7};
    unsigned char *v = host_rand(t, 1, r, M_FINITE);
    em_array *rc = NULL, *rg = NULL;
    char what[64];
    em_full(&rc, t, 3, shape, v, CPU);
    em_full(&rg, t, 3, shape, v, CU);
    snprintf(what, sizeof what, "full %s", em_dtype_name(t));
    ncheck(what, rc, rg, 0, 0);
    em_array_release(rc);
    em_array_release(rg);
    free(v);
    for (int axis = 0; axis < 3; axis++) {
      em_iota(&rc, t, 3, shape, axis, CPU);
      em_iota(&rg, t, 3, shape, axis, CU);
      snprintf(what, sizeof what, "iota %s axis %d", em_dtype_name(t), axis);
      ncheck(what, rc, rg, 0, 0);
      em_array_release(rc);
      em_array_release(rg);
    }
    int64_t big[1] = {300};
    em_iota(&rc, t, 1, big, 0, CPU);
    em_iota(&rg, t, 1, big, 0, CU);
    snprintf(what, sizeof what, "iota %s [300]", em_dtype_name(t));
    ncheck(what, rc, rg, 0, 0);
    em_array_release(rc);
    em_array_release(rg);
    em_eye(&rc, t, 3, shape, CPU);
    em_eye(&rg, t, 3, shape, CU);
    snprintf(what, sizeof what, "eye %s", em_dtype_name(t));
    ncheck(what, rc, rg, 0, 0);
    em_array_release(rc);
    em_array_release(rg);
    /* scalar and zero-size */
    em_full_scalar(&rc, t, 2.5, CPU);
    em_full_scalar(&rg, t, 2.5, CU);
    snprintf(what, sizeof what, "full scalar %s", em_dtype_name(t));
    ncheck(what, rc, rg, 0, 0);
    em_array_release(rc);
    em_array_release(rg);
    int64_t z[2] = {0, 5};
    pair e = nprand(t, 2, z, r, M_GENERAL);
    em_exp(&rc, e.c);
    em_exp(&rg, e.g);
    if (rc && rg) {
      snprintf(what, sizeof what, "exp of zero-size %s", em_dtype_name(t));
      ncheck(what, rc, rg, 2, 0);
    }
    em_array_release(rc);
    em_array_release(rg);
    prelease(e);
  }
}

static void t_movement(rng *r) {
  static const em_dtype ts[] = {EM_U8, EM_S16, EM_F32, EM_F64, EM_BF16, EM_C64, EM_C128,
                                EM_S4, EM_U2, EM_F8, EM_F8_E4M3FN};
  for (size_t ti = 0; ti < sizeof ts / sizeof ts[0]; ti++) {
    em_dtype t = ts[ti];
    char what[96];
    int64_t shape[3] = {4, 9, 6};
    pair x = nprand(t, 3, shape, r, M_FINITE);
    em_array *rc = NULL, *rg = NULL;
    /* copy of a transposed view, reshape of a non-contiguous view */
    for (int lay = 1; lay < 3; lay++) {
      pair v = layout(x, lay);
      em_copy(&rc, v.c);
      em_copy(&rg, v.g);
      snprintf(what, sizeof what, "copy %s layout %d", em_dtype_name(t), lay);
      ncheck(what, rc, rg, 0, 0);
      em_array_release(rc);
      em_array_release(rg);
      int64_t flat[1] = {v.c->size};
      em_reshape(&rc, v.c, 1, flat);
      em_reshape(&rg, v.g, 1, flat);
      snprintf(what, sizeof what, "reshape %s layout %d", em_dtype_name(t), lay);
      ncheck(what, rc, rg, 0, 0);
      em_array_release(rc);
      em_array_release(rg);
      prelease(v);
    }
    /* reverse view through a fused op */
    int rax[2] = {0, 2};
    em_array *vc = NULL, *vg = NULL;
    em_reverse(&vc, x.c, 2, rax);
    em_reverse(&vg, x.g, 2, rax);
    em_negate(&rc, vc);
    em_negate(&rg, vg);
    snprintf(what, sizeof what, "negate of reversed %s", em_dtype_name(t));
    ncheck(what, rc, rg, 0, 0);
    em_array_release(rc);
    em_array_release(rg);
    em_array_release(vc);
    em_array_release(vg);
    /* pad: positive, negative and interior */
    pair pv = nprand(t, 0, NULL, r, M_FINITE);
    int64_t lo[3] = {1, -2, 0}, hi[3] = {0, 3, -1}, in[3] = {1, 0, 2};
    for (int lay = 0; lay < 2; lay++) {
      pair v = layout(x, lay ? L_SLICED : L_CONTIG);
      em_pad(&rc, v.c, pv.c, lo, hi, in);
      em_pad(&rg, v.g, pv.g, lo, hi, in);
      snprintf(what, sizeof what, "pad %s layout %d", em_dtype_name(t), lay);
      ncheck(what, rc, rg, 0, 0);
      em_array_release(rc);
      em_array_release(rg);
      prelease(v);
    }
    /* concatenate: contiguous inputs and a reversed view */
    {
      int64_t s2[3] = {4, 2, 6};
      pair y = nprand(t, 3, s2, r, M_FINITE);
      int r0 = 0;
      em_array *xtt_c = NULL, *xtt_g = NULL; /* reversed: negative strides */
      em_reverse(&xtt_c, x.c, 1, &r0);
      em_reverse(&xtt_g, x.g, 1, &r0);
      em_array *lc[3] = {x.c, y.c, xtt_c}, *lg[3] = {x.g, y.g, xtt_g};
      em_concatenate(&rc, lc, 3, 1);
      em_concatenate(&rg, lg, 3, 1);
      snprintf(what, sizeof what, "concatenate %s", em_dtype_name(t));
      ncheck(what, rc, rg, 0, 0);
      em_array_release(rc);
      em_array_release(rg);
      em_array_release(xtt_c);
      em_array_release(xtt_g);
      prelease(y);
    }
    /* dynamic slice with clamped starts; put_slice static and dynamic */
    {
      int64_t sv[3] = {-3, 7, 2}, len[3] = {2, 4, 3}, step[3] = {1, 2, 1};
      em_array *sc[3], *sg[3];
      for (int i = 0; i < 3; i++) {
        em_dtype it = i == 1 ? EM_U8 : EM_S64;
        int64_t v64 = sv[i];
        uint8_t v8 = (uint8_t)sv[i];
        const void *p = it == EM_U8 ? (const void *)&v8 : (const void *)&v64;
        sc[i] = from(it, 0, NULL, p, CPU);
        sg[i] = from(it, 0, NULL, p, CU);
      }
      em_slice_dynamic(&rc, x.c, sc, len, step);
      em_slice_dynamic(&rg, x.g, sg, len, step);
      snprintf(what, sizeof what, "slice_dynamic %s", em_dtype_name(t));
      ncheck(what, rc, rg, 0, 0);
      em_array_release(rc);
      em_array_release(rg);
      int64_t us[3] = {2, 3, 4};
      pair u = nprand(t, 3, us, r, M_FINITE);
      pair ut = layout(u, L_SLICED);
      int64_t start[3] = {1, 8, -1};
      em_put_slice(&rc, x.c, u.c, start);
      em_put_slice(&rg, x.g, u.g, start);
      snprintf(what, sizeof what, "put_slice %s", em_dtype_name(t));
      ncheck(what, rc, rg, 0, 0);
      em_array_release(rc);
      em_array_release(rg);
      em_put_slice_dynamic(&rc, x.c, ut.c, sc);
      em_put_slice_dynamic(&rg, x.g, ut.g, sg);
      snprintf(what, sizeof what, "put_slice_dynamic (sliced update) %s", em_dtype_name(t));
      ncheck(what, rc, rg, 0, 0);
      em_array_release(rc);
      em_array_release(rg);
      prelease(u);
      prelease(ut);
      for (int i = 0; i < 3; i++) {
        em_array_release(sc[i]);
        em_array_release(sg[i]);
      }
    }
    prelease(pv);
    prelease(x);
  }
  /* bitcast */
  int64_t n[1] = {100};
  pair f = nprand(EM_F32, 1, n, r, M_GENERAL);
  em_array *rc = NULL, *rg = NULL;
  em_bitcast(&rc, f.c, EM_U32);
  em_bitcast(&rg, f.g, EM_U32);
  ncheck("bitcast f32 -> u32", rc, rg, 0, 0);
  em_array_release(rc);
  em_array_release(rg);
  prelease(f);
}

/* ---- dot and row ops -------------------------------------------------------------------- */

static void t_dot(rng *r) {
  static const em_dtype ts[] = {EM_F32, EM_F64, EM_F16, EM_BF16, EM_C64, EM_C128};
  for (size_t ti = 0; ti < sizeof ts / sizeof ts[0]; ti++) {
    em_dtype t = ts[ti];
    double at = t == EM_F16 ? 3e-2 : t == EM_BF16 ? 0.25 : t == EM_F32 || t == EM_C64 ? 1e-4 : 1e-11;
    char what[96];
    int64_t sa[3] = {2, 33, 65}, sb[3] = {2, 65, 47};
    pair a = nprand(t, 3, sa, r, M_UNIT), b = nprand(t, 3, sb, r, M_UNIT);
    em_array *rc = NULL, *rg = NULL;
    em_matmul(&rc, a.c, b.c);
    em_matmul(&rg, a.g, b.g);
    snprintf(what, sizeof what, "matmul %s [2,33,65]x[2,65,47]", em_dtype_name(t));
    ncheck(what, rc, rg, 1, at);
    em_array_release(rc);
    em_array_release(rg);
    /* contracting a's first axis and b's last (transposed operands) */
    int64_t sa2[2] = {40, 31}, sb2[2] = {23, 40};
    pair a2 = nprand(t, 2, sa2, r, M_UNIT), b2 = nprand(t, 2, sb2, r, M_UNIT);
    int ca = 0, cb = 1;
    em_dot(&rc, a2.c, 1, &ca, 0, NULL, b2.c, 1, &cb, 0, NULL);
    em_dot(&rg, a2.g, 1, &ca, 0, NULL, b2.g, 1, &cb, 0, NULL);
    snprintf(what, sizeof what, "dot %s transposed operands", em_dtype_name(t));
    ncheck(what, rc, rg, 1, at);
    em_array_release(rc);
    em_array_release(rg);
    /* a non-contiguous operand that needs a copy (sliced) and K = 0 */
    pair a3 = layout(a2, L_SLICED);
    int64_t sb3[2] = {15, 9};
    pair b3 = nprand(t, 2, sb3, r, M_UNIT);
    int c1 = 1, c0 = 0;
    em_dot(&rc, a3.c, 1, &c1, 0, NULL, b3.c, 1, &c0, 0, NULL);
    em_dot(&rg, a3.g, 1, &c1, 0, NULL, b3.g, 1, &c0, 0, NULL);
    snprintf(what, sizeof what, "dot %s sliced operand", em_dtype_name(t));
    ncheck(what, rc, rg, 1, at);
    em_array_release(rc);
    em_array_release(rg);
    int64_t z1[2] = {3, 0}, z2[2] = {0, 4};
    pair za = nprand(t, 2, z1, r, M_UNIT), zb = nprand(t, 2, z2, r, M_UNIT);
    em_matmul(&rc, za.c, zb.c);
    em_matmul(&rg, za.g, zb.g);
    snprintf(what, sizeof what, "matmul %s K=0", em_dtype_name(t));
    ncheck(what, rc, rg, 0, 0);
    em_array_release(rc);
    em_array_release(rg);
    prelease(a);
    prelease(b);
    prelease(a2);
    prelease(b2);
    prelease(a3);
    prelease(b3);
    prelease(za);
    prelease(zb);
  }
  /* integer dots (wrap-around, exact) and f8 (through f32, one rounding) */
  static const em_dtype it[] = {EM_U8, EM_U16, EM_U32, EM_U64, EM_S8, EM_S16, EM_S32,
                                EM_S64, EM_S2, EM_S4, EM_U2, EM_U4, EM_F8, EM_F8_E4M3FN};
  for (size_t ti = 0; ti < sizeof it / sizeof it[0]; ti++) {
    em_dtype t = it[ti];
    bool f8 = em_dtype_is_f8(t);
    int mode = f8 ? M_UNIT : M_GENERAL;
    char what[96];
    em_array *rc = NULL, *rg = NULL;
    /* batched, odd sizes (partial tiles), K > one tile */
    int64_t sa[3] = {3, 37, 70}, sb[3] = {3, 70, 45};
    pair a = nprand(t, 3, sa, r, mode), b = nprand(t, 3, sb, r, mode);
    em_matmul(&rc, a.c, b.c);
    em_matmul(&rg, a.g, b.g);
    snprintf(what, sizeof what, "matmul %s [3,37,70]x[3,70,45]", em_dtype_name(t));
    ncheck(what, rc, rg, f8 ? 1 : 0, 0);
    em_array_release(rc);
    em_array_release(rg);
    /* transposed operands: a's first axis and b's last contract */
    int64_t sa2[2] = {40, 31}, sb2[2] = {23, 40};
    pair a2 = nprand(t, 2, sa2, r, mode), b2 = nprand(t, 2, sb2, r, mode);
    int ca = 0, cb = 1;
    em_dot(&rc, a2.c, 1, &ca, 0, NULL, b2.c, 1, &cb, 0, NULL);
    em_dot(&rg, a2.g, 1, &ca, 0, NULL, b2.g, 1, &cb, 0, NULL);
    snprintf(what, sizeof what, "dot %s transposed operands", em_dtype_name(t));
    ncheck(what, rc, rg, f8 ? 1 : 0, 0);
    em_array_release(rc);
    em_array_release(rg);
    /* a sliced operand (copied) */
    pair a3 = layout(a2, L_SLICED);
    int64_t sb3[2] = {15, 9};
    pair b3 = nprand(t, 2, sb3, r, mode);
    int c1 = 1, c0 = 0;
    em_dot(&rc, a3.c, 1, &c1, 0, NULL, b3.c, 1, &c0, 0, NULL);
    em_dot(&rg, a3.g, 1, &c1, 0, NULL, b3.g, 1, &c0, 0, NULL);
    snprintf(what, sizeof what, "dot %s sliced operand", em_dtype_name(t));
    ncheck(what, rc, rg, f8 ? 1 : 0, 0);
    em_array_release(rc);
    em_array_release(rg);
    /* K = 0 */
    int64_t z1[2] = {3, 0}, z2[2] = {0, 4};
    pair za = nprand(t, 2, z1, r, mode), zb = nprand(t, 2, z2, r, mode);
    em_matmul(&rc, za.c, zb.c);
    em_matmul(&rg, za.g, zb.g);
    snprintf(what, sizeof what, "matmul %s K=0", em_dtype_name(t));
    ncheck(what, rc, rg, 0, 0);
    em_array_release(rc);
    em_array_release(rg);
    prelease(a);
    prelease(b);
    prelease(a2);
    prelease(b2);
    prelease(a3);
    prelease(b3);
    prelease(za);
    prelease(zb);
  }
  /* a large integer GEMM (many tiles, K of several tiles, big sums that wrap) */
  if (!quick) {
    int64_t sa[2] = {300, 513}, sb[2] = {513, 257};
    pair a = nprand(EM_S32, 2, sa, r, M_GENERAL), b = nprand(EM_S32, 2, sb, r, M_GENERAL);
    em_array *rc = NULL, *rg = NULL;
    em_matmul(&rc, a.c, b.c);
    em_matmul(&rg, a.g, b.g);
    ncheck("matmul s32 [300,513]x[513,257]", rc, rg, 0, 0);
    em_array_release(rc);
    em_array_release(rg);
    prelease(a);
    prelease(b);
  }
}

static void t_rows(rng *r) {
  static const em_dtype ts[] = {EM_F32, EM_F64, EM_F16, EM_BF16};
  /* 1000, 3000, 16384, 4096: the register-resident row kernel (16384 and
   * 4096 fill the block's registers exactly, except 16384 f64, which is
   * past it; 1000 and 3000 fill them partly); 1002: rows not a whole
   * number of 16-byte vectors; 5, 1: narrow rows. */
  static const int64_t shapes[][2] = {{7, 1000}, {2, 16384}, {3, 3000},
                                      {5, 1002}, {70, 5}, {4, 1}, {9, 4096}};
  for (size_t ti = 0; ti < sizeof ts / sizeof ts[0]; ti++) {
    em_dtype t = ts[ti];
    for (int si = 0; si < (int)(sizeof shapes / sizeof shapes[0]); si++) {
      if (quick && si > 1) continue;
      const int64_t *sh = shapes[si];
      pair x = nprand(t, 2, sh, r, M_FINITE);
      pair w = nprand(t, 1, sh + 1, r, M_FINITE), b = nprand(t, 1, sh + 1, r, M_FINITE);
      char what[96];
      for (int op = 0; op < 6; op++) {
        em_array *rc = NULL, *rg = NULL;
        switch (op) {
          case 0: em_softmax(&rc, x.c, -1); em_softmax(&rg, x.g, -1); break;
          case 1: em_logsumexp(&rc, x.c, 1, false); em_logsumexp(&rg, x.g, 1, false); break;
          case 2: em_layer_norm(&rc, x.c, w.c, b.c, 1e-5); em_layer_norm(&rg, x.g, w.g, b.g, 1e-5); break;
          case 3: em_layer_norm(&rc, x.c, NULL, NULL, 1e-5); em_layer_norm(&rg, x.g, NULL, NULL, 1e-5); break;
          case 4: em_rms_norm(&rc, x.c, w.c, 1e-6); em_rms_norm(&rg, x.g, w.g, 1e-6); break;
          default: em_softmax(&rc, x.c, 0); em_softmax(&rg, x.g, 0); break;
        }
        snprintf(what, sizeof what, "row op %d %s [%lld,%lld]", op, em_dtype_name(t),
                 (long long)sh[0], (long long)sh[1]);
        double at = t == EM_F16 ? 4e-3 : t == EM_BF16 ? 3e-2 : t == EM_F32 ? 2e-5 : 1e-12;
        ncheck(what, rc, rg, 2, at * (op >= 2 && op <= 4 ? 20 : 1));
        em_array_release(rc);
        em_array_release(rg);
      }
      prelease(x);
      prelease(w);
      prelease(b);
    }
  }
}

/* ---- fused chains and large arrays ----------------------------------------------------- */

/* gelu(x * a + b) with scalar a, b: one fused tree of ~10 nodes. */
static em_status gelu_affine(em_array **out, em_array *x, em_array *a, em_array *b) {
  em_array *t1 = NULL, *t2 = NULL, *t3 = NULL, *t4 = NULL, *t5 = NULL, *t6 = NULL,
           *h = NULL, *one = NULL, *k = NULL;
  em_dtype t = x->dtype;
  em_device d = x->dev;
  em_full_scalar(&h, t, 0.5, d);
  em_full_scalar(&one, t, 1.0, d);
  em_full_scalar(&k, t, 0.7071067811865476, d);
  em_multiply(&t1, x, a);
  em_add(&t2, t1, b);
  em_multiply(&t3, t2, k);
  em_erf(&t4, t3);
  em_add(&t5, t4, one);
  em_multiply(&t6, t2, h);
  em_status st = em_multiply(out, t6, t5);
  em_array *all[] = {t1, t2, t3, t4, t5, t6, h, one, k};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) em_array_release(all[i]);
  return st;
}

static void t_fused_large(rng *r) {
  static const em_dtype ts[] = {EM_F32, EM_F16, EM_BF16, EM_F64};
  static const int64_t sizes[] = {1, 257, 1000003, 5000011};
  for (size_t ti = 0; ti < sizeof ts / sizeof ts[0]; ti++)
    for (int si = 0; si < 4; si++) {
      if (quick && si > 2) continue;
      em_dtype t = ts[ti];
      int64_t n[1] = {sizes[si]};
      pair x = nprand(t, 1, n, r, M_FINITE), a = nprand(t, 0, NULL, r, M_FINITE),
           b = nprand(t, 0, NULL, r, M_FINITE);
      em_array *rc = NULL, *rg = NULL;
      gelu_affine(&rc, x.c, a.c, b.c);
      gelu_affine(&rg, x.g, a.g, b.g);
      char what[96];
      snprintf(what, sizeof what, "gelu(x*a+b) %s n=%lld", em_dtype_name(t), (long long)n[0]);
      ncheck(what, rc, rg, 2, t == EM_F16 ? 4e-3 : t == EM_BF16 ? 3e-2 : 1e-5);
      em_array_release(rc);
      em_array_release(rg);
      /* a large sum */
      em_sum(&rc, x.c, 0, NULL, false);
      em_sum(&rg, x.g, 0, NULL, false);
      snprintf(what, sizeof what, "sum %s n=%lld", em_dtype_name(t), (long long)n[0]);
      ncheck(what, rc, rg, 1, (t == EM_F16 ? 1e-3 : t == EM_BF16 ? 8e-3 : 1e-6) * 4.0 * (double)n[0]);
      em_array_release(rc);
      em_array_release(rg);
      prelease(x);
      prelease(a);
      prelease(b);
    }
}

/* ---- shared subexpressions inside one fused group ---------------------------------- */

/* An evaluated scalar constant on dev (so it allocates nothing later). */
static em_array *shared_cst(em_dtype t, double v, em_device dev) {
  em_array *c = NULL;
  em_full_scalar(&c, t, v, dev);
  if (c) eval_cuda(c);
  return c;
}

/* Graphs whose nodes feed several nodes of one fused group (eval.c fuses
 * them; the program computes each once). kind 0: diamond on a shared leaf,
 * (x*c + x) * (x*c - x); 1: y = x - c used four times, through a predicate
 * of another dtype, select(y > 0, y, -y) + y; 2: y*y*y with y = x*c + x
 * (three uses, nested); 3: gelu(x*c + c) (y twice, floats only); 4: y =
 * x + c used by two groups, a = y + y*y (evaluated first) and b = y - x,
 * then a + b: y is not fused and gets its own buffer. */
static em_array *shared_graph(int kind, em_array *x, const double *cv) {
  em_dtype t = x->dtype;
  em_device d = x->dev;
  em_array *c = shared_cst(t, cv[0], d), *z = shared_cst(t, 0, d);
  em_array *y = NULL, *p = NULL, *q = NULL, *out = NULL, *g = NULL, *n = NULL, *s = NULL;
  switch (kind) {
    case 0:
      em_multiply(&y, x, c);
      em_add(&p, y, x);
      em_subtract(&q, y, x);
      em_multiply(&out, p, q);
      break;
    case 1:
      em_subtract(&y, x, c);
      em_greater(&g, y, z);
      em_negate(&n, y);
      em_select(&s, g, y, n);
      em_add(&out, s, y);
      break;
    case 2:
      em_multiply(&p, x, c);
      em_add(&y, p, x);
      em_multiply(&q, y, y);
      em_multiply(&out, q, y);
      break;
    case 3: {
      em_array *h = shared_cst(t, 0.5, d), *one = shared_cst(t, 1, d),
               *k = shared_cst(t, 0.7071067811865476, d);
      em_multiply(&p, x, c);
      em_add(&y, p, c);
      em_multiply(&q, y, k);
      em_erf(&g, q);
      em_add(&n, g, one);
      em_multiply(&s, y, h);
      em_multiply(&out, s, n);
      em_array_release(h);
      em_array_release(one);
      em_array_release(k);
      break;
    }
    default: {
      em_array *a = NULL, *b = NULL;
      em_add(&y, x, c);
      em_multiply(&p, y, y);
      em_add(&a, y, p);      /* a's group reads y three times */
      em_subtract(&b, y, x); /* b (not evaluated yet) holds y too */
      if (a) eval_cuda(a);   /* so y gets a buffer of its own here */
      em_add(&out, a, b);    /* then b's group reads y as a leaf */
      em_array_release(a);
      em_array_release(b);
      break;
    }
  }
  em_array *all[] = {c, z, y, p, q, g, n, s};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) em_array_release(all[i]);
  return out;
}

static void t_fused_shared(rng *r) {
  static const em_dtype ts[] = {EM_F32, EM_F64, EM_F16, EM_BF16, EM_S32, EM_U8, EM_S64};
  static const char *kn[] = {"diamond", "four uses + select", "y^3", "gelu", "two groups"};
  int64_t big[1] = {1000003}, mat[2] = {300, 257};
  for (size_t ti = 0; ti < sizeof ts / sizeof ts[0]; ti++) {
    em_dtype t = ts[ti];
    bool flt = !em_dtype_is_int(t);
    for (int kind = 0; kind < 5; kind++) {
      if (kind == 3 && !flt) continue;
      for (int lay = 0; lay < (quick ? 1 : 3); lay++) {
        pair x = lay == 0 ? nprand(t, 1, big, r, M_FINITE) : nprand(t, 2, mat, r, M_FINITE);
        pair v = layout(x, lay == 2 ? L_TRANSPOSED : L_CONTIG);
        const double cv[1] = {flt ? 1.25 : 3};
        em_array *rc = shared_graph(kind, v.c, cv), *rg = shared_graph(kind, v.g, cv);
        char what[128];
        snprintf(what, sizeof what, "shared subexpression %s %s%s", kn[kind], em_dtype_name(t),
                 lay == 0 ? " n=1000003" : lay == 1 ? " [300,257]" : " [300,257] transposed");
        ncheck(what, rc, rg, flt ? 2 : 0,
               t == EM_F16 ? 4e-3 : t == EM_BF16 ? 3e-2 : flt ? 1e-5 : 0);
        em_array_release(rc);
        em_array_release(rg);
        prelease(v);
        prelease(x);
      }
    }
  }
  /* fusion really happens on CUDA: gelu(x*a+b) allocates only its output */
  int64_t n[1] = {1 << 22};
  pair x = nprand(EM_F32, 1, n, r, M_FINITE);
  const double cv[1] = {1.25};
  em_array *g = shared_graph(3, x.g, cv);
  em_memory_stats s0, s1;
  em_memory_stats_get(CU, &s0);
  em_memory_reset_peak(CU);
  em_status st = g ? eval_cuda(g) : EM_ERR_RUNTIME;
  em_memory_stats_get(CU, &s1);
  record(st == EM_OK, "gelu(x*a+b) on CUDA: %s", em_last_error());
  record(s1.alloc_count - s0.alloc_count == 1,
         "gelu(x*a+b) on CUDA: %llu buffers allocated, want 1 (y fused)",
         (unsigned long long)(s1.alloc_count - s0.alloc_count));
  record(s1.peak_bytes - s0.active_bytes <= ((size_t)4 << 22),
         "gelu(x*a+b) on CUDA: peak grew by %zu bytes, output is %zu",
         s1.peak_bytes - s0.active_bytes, (size_t)4 << 22);
  em_array_release(g);
  prelease(x);
}

/* ---- CUDA-only cases --------------------------------------------------------------------- */

typedef struct {
  int id;
  double result;
  em_status st;
} conc_arg;

/* Each thread: its own stream, a loop of fused work + reductions whose
 * answer is known. */
static void *concurrent_worker(void *p) {
  conc_arg *c = p;
  em_stream *s = NULL;
  c->st = em_stream_new(&s, CU);
  if (c->st != EM_OK) return NULL;
  int64_t n[1] = {1 << 24};
  double total = 0;
  for (int it = 0; it < 8 && c->st == EM_OK; it++) {
    em_array *x = NULL, *y = NULL, *z = NULL, *two = NULL;
    em_iota(&x, EM_F32, 1, n, 0, CU);           /* 0 .. n-1 */
    em_full_scalar(&two, EM_F32, (double)(c->id + 1), CU);
    em_multiply(&y, x, two);                      /* (id+1) * i */
    em_sum(&z, y, 0, NULL, false);
    c->st = em_eval_on(&z, 1, s);
    if (c->st == EM_OK) {
      float v;
      c->st = em_array_to_host(z, &v, sizeof v);
      total += v;
    }
    em_array_release(x);
    em_array_release(y);
    em_array_release(z);
    em_array_release(two);
  }
  c->result = total / 8;
  em_stream_free(s);
  return NULL;
}

static void t_cuda_only(rng *r) {
  (void)r;
  /* concurrent streams */
  {
    pthread_t th[2];
    conc_arg a[2] = {{0, 0, EM_OK}, {1, 0, EM_OK}};
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, concurrent_worker, &a[i]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    double n = (double)(1 << 24), want = n * (n - 1) / 2;
    for (int i = 0; i < 2; i++) {
      record(a[i].st == EM_OK, "concurrent stream %d: %s", i, em_last_error());
      record(th_close(a[i].result, want * (i + 1), 1e-5, 0),
             "concurrent stream %d: sum %.9g want %.9g", i, a[i].result, want * (i + 1));
    }
  }
  /* memory limit -> EM_ERR_OOM, then recovery */
  {
    em_memory_stats ms;
    record(em_memory_stats_get(CU, &ms) == EM_OK, "memory stats: %s", em_last_error());
    em_memory_set_limit(CU, 1 << 20);
    int64_t n[1] = {1 << 22};
    em_array *x = NULL;
    em_full_scalar(&x, EM_F32, 1.0, CU);
    em_array *y = NULL;
    em_broadcast(&y, x, 1, n, NULL);
    em_array *z = NULL;
    em_negate(&z, y);
    em_status st = eval_cuda(z);
    record(st == EM_ERR_OOM, "limit: got %s (%s)", em_status_name(st), em_last_error());
    record(strstr(em_last_error(), "limit") != NULL, "limit message: %s", em_last_error());
    em_array_release(z);
    em_memory_set_limit(CU, 0);
    em_negate(&z, y);
    record(eval_cuda(z) == EM_OK, "after limit removed: %s", em_last_error());
    em_array_release(z);
    /* a request larger than the card: cudaMalloc fails, EM_ERR_OOM names it
     * (skipped in quick runs: compute-sanitizer reports the failed
     * cudaMalloc as an API error) */
    if (!quick) {
      int64_t huge[1] = {(int64_t)1 << 42};
      em_array *h = NULL;
      em_full(&h, EM_U8, 1, huge, (uint8_t[]){1}, CU);
      st = eval_cuda(h);
      record(st == EM_ERR_OOM, "huge: got %s (%s)", em_status_name(st), em_last_error());
      record(strstr(em_last_error(), "free") != NULL, "huge message: %s", em_last_error());
      em_array_release(h);
    }
    /* injected failure */
    em_memory_fail_after(CU, 0);
    em_negate(&z, y);
    st = eval_cuda(z);
    record(st == EM_ERR_OOM, "fail_after: got %s", em_status_name(st));
    em_memory_fail_after(CU, -1);
    em_array_release(z);
    em_array_release(y);
    em_array_release(x);
    record(em_memory_stats_get(CU, &ms) == EM_OK && ms.peak_bytes >= ms.active_bytes,
           "stats after");
    em_memory_clear_cache(CU);
    record(em_memory_stats_get(CU, &ms) == EM_OK && ms.cached_bytes == 0,
           "clear_cache: %zu cached", ms.cached_bytes);
  }
  /* transfers: copy_to_device both ways, to_host of a non-contiguous view */
  {
    int64_t s[2] = {300, 700};
    void *h = host_rand(EM_F64, 300 * 700, r, M_FINITE);
    em_array *c = from(EM_F64, 2, s, h, CPU), *g = NULL, *back = NULL, *gt = NULL;
    em_status st = em_copy_to_device(&g, c, CU);
    record(st == EM_OK, "copy_to_device cpu->cuda: %s", em_last_error());
    st = em_copy_to_device(&back, g, CPU);
    record(st == EM_OK && back && back->dev.type == EM_DEVICE_CPU,
           "copy_to_device cuda->cpu: %s", em_last_error());
    if (back) record(memcmp(em_array_data(back), h, 300 * 700 * 8) == 0, "round trip bytes");
    em_transpose(&gt, g, NULL);
    double *tb = malloc(300 * 700 * 8);
    st = em_array_to_host(gt, tb, 300 * 700 * 8);
    record(st == EM_OK, "to_host transposed: %s", em_last_error());
    bool ok = true;
    for (int i = 0; i < 300 && ok; i++)
      for (int j = 0; j < 700 && ok; j++)
        ok = tb[j * 300 + i] == ((double *)h)[i * 700 + j];
    record(ok, "to_host transposed values");
    const double *dd = em_array_data(gt);
    record(dd && memcmp(dd, tb, 300 * 700 * 8) == 0, "array_data transposed (cached)");
    free(tb);
    free(h);
    em_array_release(c);
    em_array_release(g);
    em_array_release(back);
    em_array_release(gt);
  }
  /* narrow dtypes at the host boundary: s2..u4 packed both ways */
  {
    static const em_dtype nt[] = {EM_S2, EM_S4, EM_U2, EM_U4, EM_F8, EM_F8_E4M3FN};
    for (size_t k = 0; k < sizeof nt / sizeof nt[0]; k++) {
      em_dtype t = nt[k];
      int64_t s[2] = {7, 13}; /* 91 elements: a partial last byte */
      pair x = nprand(t, 2, s, r, M_GENERAL);
      size_t nb = em_array_nbytes(x.c);
      const void *hc = em_array_data(x.c), *hg = em_array_data(x.g);
      record(hc && hg && memcmp(hc, hg, nb) == 0, "%s host bytes round trip", em_dtype_name(t));
      unsigned char *buf = malloc(nb);
      record(em_array_to_host(x.g, buf, nb) == EM_OK && hc && memcmp(buf, hc, nb) == 0,
             "%s to_host: %s", em_dtype_name(t), em_last_error());
      em_array *tt = NULL, *back = NULL, *g2 = NULL;
      em_transpose(&tt, x.g, NULL);
      em_copy_to_device(&back, tt, CPU);
      em_array *tc = NULL;
      em_transpose(&tc, x.c, NULL);
      const void *pb = back ? em_array_data(back) : NULL, *pc = em_array_data(tc);
      record(pb && pc && memcmp(pb, pc, nb) == 0, "%s transposed cuda -> cpu", em_dtype_name(t));
      em_copy_to_device(&g2, x.c, CU);
      const void *p2 = g2 ? em_array_data(g2) : NULL;
      record(p2 && hc && memcmp(p2, hc, nb) == 0, "%s cpu -> cuda", em_dtype_name(t));
      free(buf);
      em_array_release(tt);
      em_array_release(tc);
      em_array_release(back);
      em_array_release(g2);
      prelease(x);
    }
  }
  /* every op family has a CUDA kernel now (test_cuda_<family> tests
   * them); one family op here, in the same run as the rest */
  {
    int64_t s[1] = {8};
    pair x = nprand(EM_F32, 1, s, r, M_FINITE);
    em_array *rc = NULL, *rg = NULL;
    em_cumulative_sum(&rc, x.c, 0, false);
    em_cumulative_sum(&rg, x.g, 0, false);
    check_pair("cumulative_sum f32 [8]", rc, rg, 1, 0);
    em_array_release(rc);
    em_array_release(rg);
    prelease(x);
  }
}

/* 2^31 + 5 u8 elements: 64-bit indexing in the fill, fused and reduction
 * kernels (2 GiB each). */
static void t_huge(void) {
  int64_t n[1] = {((int64_t)1 << 31) + 5};
  em_array *x = NULL, *y = NULL, *s = NULL, *s2 = NULL, *last = NULL;
  em_full(&x, EM_U8, 1, n, (uint8_t[]){1}, CU);
  em_add(&y, x, x);
  em_sum(&s, x, 0, NULL, false);
  em_sum(&s2, y, 0, NULL, false);
  int64_t st0[1] = {n[0] - 1}, len[1] = {1};
  em_slice(&last, y, st0, len, NULL);
  em_array *all[3] = {s, s2, last};
  em_status st = em_eval(all, 3);
  record(st == EM_OK, "2^31+5: %s", em_last_error());
  if (st == EM_OK) {
    uint8_t a = 0, b = 0, c = 0;
    em_array_to_host(s, &a, 1);
    em_array_to_host(s2, &b, 1);
    em_array_to_host(last, &c, 1);
    record(a == 5, "sum of 2^31+5 u8 ones wraps to 5, got %u", a);
    record(b == 10, "sum of 2^31+5 u8 twos wraps to 10, got %u", b);
    record(c == 2, "last element of x + x is 2, got %u", c);
  }
  em_array_release(x);
  em_array_release(y);
  em_array_release(s);
  em_array_release(s2);
  em_array_release(last);
}

int main(void) {
  if (getenv("EMILY_CUDA_JIT_CHECK")) {
    int fails = em_cu_jit_selfcheck(getenv("EMILY_CUDA_DEBUG") != NULL);
    printf("JIT self-check: %d failed programs\n", fails);
    return fails ? 1 : 0;
  }
  if (em_device_count(EM_DEVICE_CUDA) == 0) {
    printf("SKIPPED: no CUDA device\n");
    return 0;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  quick = getenv("EMILY_TEST_QUICK") != NULL;
  int nthreads = getenv("EMILY_TEST_THREADS") ? atoi(getenv("EMILY_TEST_THREADS")) : 8;
  if (nthreads < 1) nthreads = 1;
  if (nthreads > 32) nthreads = 32;
  rng r = {0x243f6a8885a308d3ull};

  t_creation(&r);
  printf("t_creation done: %d checks, %d failed\n", th_checks, th_failures);
  t_movement(&r);
  printf("t_movement done: %d checks, %d failed\n", th_checks, th_failures);
  t_dot(&r);
  printf("t_dot done: %d checks, %d failed\n", th_checks, th_failures);
  t_rows(&r);
  printf("t_rows done: %d checks, %d failed\n", th_checks, th_failures);
  t_fused_large(&r);
  printf("t_fused_large done: %d checks, %d failed\n", th_checks, th_failures);
  t_fused_shared(&r);
  printf("t_fused_shared done: %d checks, %d failed\n", th_checks, th_failures);
  printf("single-threaded cases done: %d checks, %d failed\n", th_checks, th_failures);
  fflush(stdout);

  pthread_t th[32];
  for (int i = 0; i < nthreads; i++) pthread_create(&th[i], NULL, sweep, NULL);
  for (int i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
  printf("per-dtype sweep done: %d checks, %d failed\n", th_checks, th_failures);
  fflush(stdout);

  t_cuda_only(&r);
  printf("t_cuda_only done: %d checks, %d failed\n", th_checks, th_failures);
  if (!quick && !getenv("EMILY_TEST_NO_HUGE")) t_huge();
  printf("unsupported on CUDA (%d cases): %s\n", g_unsupported,
         g_unsupported ? g_unsup_list : "none");
  return TEST_SUMMARY();
}
