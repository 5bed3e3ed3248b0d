/* test_cuda_conv.c — em_conv on CUDA against the CPU backend
 * (differential, tests/cuda_diff.h): the same random input and kernel go
 * through em_conv on {CPU} and {CUDA, 0} and the results are compared, for
 * every dtype the CUDA backend stores (u8 .. c128; integers bit for bit,
 * wrapping; floats with tolerances that grow with the reduction length).
 *
 * Covered: 1d/2d/3d (cuDNN for f16/bf16/f32/f64) and 4 spatial axes (the
 * direct kernel); strides; symmetric (cuDNN's own), asymmetric and negative
 * padding (staged); input dilation (staged) and kernel dilation; feature
 * groups (grouped, depthwise) and batch groups (staged as feature groups);
 * input/kernel/output permutations; sliced and reversed inputs (any
 * strides, negative ones); 1x1 kernels; zero-size batch, an empty input
 * axis with padding, an empty kernel window; problems large enough for
 * cuDNN's real algorithms. The float cases run again with
 * EMILY_CUDA_CONV_DIRECT=1 (the direct kernel), and a few run from several
 * threads with their own streams at once (the shared cuDNN handle).
 *
 * Without a CUDA device it prints SKIPPED and passes. Every case must be
 * supported: an EM_ERR_UNSUPPORTED result is a failure here.
 * EMILY_TEST_QUICK=1 skips the large problems (for compute-sanitizer). */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/array-impl.h"
#include "cpu/cpu-kernels.h"
#include "harness.h"

#include "cuda_diff.h"

enum { V_PLAIN, V_SLICED, V_REVERSED };

typedef struct {
  const char *name;
  int nd;
  int64_t ish[6], ksh[6]; /* canonical input [N, C, s...], kernel [O, Ck, k...] */
  int64_t s[4], lo[4], hi[4], id[4], kd[4];
  int64_t fg, bg;
  const int *ip, *kp, *op;
  int variant; /* V_SLICED: input is a stride-2 slice; V_REVERSED: reversed spatial axes */
} ccase;

static const int P_NHWC[4] = {0, 3, 1, 2};   /* input given [N, H, W, C] */
static const int P_HWIO[4] = {3, 2, 0, 1};   /* kernel given [H, W, C, O] */
static const int P_OUT_NHWC[4] = {0, 3, 1, 2};
static const int P_CNHW[4] = {1, 0, 2, 3};   /* input given [C, N, H, W] */
static const int P_OUT_3D[5] = {4, 0, 1, 2, 3};

static const ccase CASES[] = {
    {"1d basic", 3, {2, 3, 11}, {4, 3, 3}, {0}, {0}, {0}, {0}, {0}, 0, 0, NULL, NULL, NULL, 0},
    {"1d stride 2, asymmetric pad", 3, {2, 3, 12}, {4, 3, 3}, {2}, {1}, {2}, {0}, {0}, 0, 0, NULL, NULL, NULL, 0},
    {"1d symmetric pad, kernel dilation", 3, {3, 2, 10}, {2, 2, 3}, {0}, {2}, {2}, {0}, {2}, 0, 0, NULL, NULL, NULL, 0},
    {"2d symmetric pad, strides", 4, {2, 4, 9, 8}, {6, 4, 3, 2}, {2, 1}, {1, 0}, {1, 0}, {0}, {0}, 0, 0, NULL, NULL, NULL, 0},
    {"2d input dilation", 4, {2, 3, 5, 6}, {4, 3, 3, 2}, {0}, {1, 0}, {2, 1}, {2, 3}, {0}, 0, 0, NULL, NULL, NULL, 0},
    {"2d both dilations, strides", 4, {1, 2, 7, 7}, {3, 2, 2, 3}, {2, 2}, {0, 1}, {1, 1}, {2, 1}, {1, 2}, 0, 0, NULL, NULL, NULL, 0},
    {"2d negative pad", 4, {2, 3, 8, 9}, {2, 3, 3, 3}, {0}, {-1, 2}, {2, -2}, {0}, {0}, 0, 0, NULL, NULL, NULL, 0},
    {"2d negative pad, input dilation", 4, {1, 2, 6, 5}, {2, 2, 2, 2}, {0}, {-2, -1}, {-1, 1}, {3, 2}, {0}, 0, 0, NULL, NULL, NULL, 0},
    {"2d feature groups", 4, {2, 6, 7, 7}, {6, 2, 3, 3}, {0}, {1, 1}, {1, 1}, {0}, {0}, 3, 0, NULL, NULL, NULL, 0},
    {"2d depthwise, stride 2", 4, {2, 4, 9, 9}, {8, 1, 3, 3}, {2, 2}, {0}, {0}, {0}, {0}, 4, 0, NULL, NULL, NULL, 0},
    {"2d batch groups", 4, {4, 3, 8, 8}, {6, 3, 3, 3}, {0}, {0}, {0}, {0}, {0}, 0, 2, NULL, NULL, NULL, 0},
    {"2d batch groups, stride, pad", 4, {6, 2, 7, 5}, {9, 2, 2, 3}, {2, 1}, {1, 0}, {0, 2}, {0}, {0}, 0, 3, NULL, NULL, NULL, 0},
    {"3d", 5, {2, 2, 5, 6, 4}, {3, 2, 2, 3, 2}, {1, 2, 1}, {1, 0, 1}, {1, 1, 0}, {0}, {2, 1, 1}, 0, 0, NULL, NULL, NULL, 0},
    {"3d symmetric pad, feature groups", 5, {1, 4, 4, 5, 6}, {4, 2, 3, 3, 3}, {0}, {1, 1, 1}, {1, 1, 1}, {0}, {0}, 2, 0, NULL, NULL, P_OUT_3D, 0},
    {"3d input dilation, batch groups", 5, {4, 2, 3, 4, 3}, {4, 2, 2, 2, 2}, {1, 1, 2}, {0, 1, 0}, {1, 0, 0}, {2, 1, 1}, {0}, 0, 2, NULL, NULL, NULL, 0},
    {"4 spatial axes", 6, {1, 2, 4, 3, 3, 3}, {2, 2, 2, 1, 2, 2}, {1, 1, 2, 1}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0}, {0}, 0, 0, NULL, NULL, NULL, 0},
    {"1x1 kernel", 4, {2, 8, 6, 6}, {5, 8, 1, 1}, {0}, {0}, {0}, {0}, {0}, 0, 0, NULL, NULL, NULL, 0},
    {"permutations NHWC / HWIO / NHWC", 4, {2, 3, 6, 7}, {4, 3, 3, 3}, {1, 2}, {1, 1}, {1, 1}, {0}, {0}, 0, 0, P_NHWC, P_HWIO, P_OUT_NHWC, 0},
    {"permutation CNHW, batch groups", 4, {4, 2, 5, 5}, {4, 2, 2, 2}, {0}, {0}, {0}, {0}, {0}, 0, 2, P_CNHW, NULL, NULL, 0},
    {"sliced input", 4, {2, 3, 6, 5}, {4, 3, 2, 2}, {0}, {1, 1}, {1, 1}, {0}, {0}, 0, 0, NULL, NULL, NULL, V_SLICED},
    {"reversed input, feature groups", 4, {2, 4, 6, 5}, {4, 2, 3, 2}, {1, 2}, {0, 1}, {0, 1}, {0}, {0}, 2, 0, NULL, NULL, NULL, V_REVERSED},
    {"zero-size batch", 4, {0, 3, 5, 5}, {2, 3, 3, 3}, {0}, {0}, {0}, {0}, {0}, 0, 0, NULL, NULL, NULL, 0},
    {"empty input axis, padded", 3, {2, 3, 0}, {2, 3, 1}, {0}, {1}, {1}, {0}, {0}, 0, 0, NULL, NULL, NULL, 0},
    {"empty kernel window", 3, {2, 3, 4}, {2, 3, 0}, {0}, {0}, {0}, {0}, {0}, 0, 0, NULL, NULL, NULL, 0},
    {"large 2d", 4, {8, 16, 32, 32}, {32, 16, 3, 3}, {0}, {1, 1}, {1, 1}, {0}, {0}, 0, 0, NULL, NULL, NULL, 0},
    {"large 1d", 3, {4, 32, 1000}, {64, 32, 5}, {0}, {2}, {2}, {0}, {0}, 0, 0, NULL, NULL, NULL, 0},
    {"large depthwise", 4, {2, 64, 16, 16}, {64, 1, 3, 3}, {0}, {1, 1}, {1, 1}, {0}, {0}, 64, 0, NULL, NULL, NULL, 0},
    {"large 3d", 5, {2, 8, 10, 12, 12}, {16, 8, 3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0}, {0}, 0, 0, NULL, NULL, NULL, 0},
    /* over 1e9 flops: cuDNN's candidates are timed and the fastest kept
     * (conv.c, CONV_TUNE_FLOPS), FFT and Winograd ones included */
    {"large 2d, tuned algorithm", 4, {8, 64, 56, 56}, {64, 64, 3, 3}, {0}, {1, 1}, {1, 1}, {0}, {0}, 0, 0, NULL, NULL, NULL, 0},
};
#define NCASES ((int)(sizeof CASES / sizeof CASES[0]))

static bool is_large(const ccase *c) { return strncmp(c->name, "large", 5) == 0; }

static em_conv_params params_of(const ccase *c) {
  em_conv_params p;
  memset(&p, 0, sizeof p);
  p.nspatial = c->nd - 2;
  for (int d = 0; d < c->nd - 2; d++) {
    p.strides[d] = c->s[d] ? c->s[d] : 1;
    p.pad_lo[d] = c->lo[d];
    p.pad_hi[d] = c->hi[d];
    p.input_dilation[d] = c->id[d] ? c->id[d] : 1;
    p.kernel_dilation[d] = c->kd[d] ? c->kd[d] : 1;
  }
  p.feature_group_size = c->fg ? c->fg : 1;
  p.batch_group_size = c->bg ? c->bg : 1;
  p.input_permutation = c->ip;
  p.kernel_permutation = c->kp;
  p.output_permutation = c->op;
  return p;
}

/* |x * w| <= 1 per term (M_UNIT inputs): the absolute slack per dtype for
 * sums of K terms computed in another order (or by FFT/Winograd). */
static double atol_for(em_dtype t, int64_t K) {
  switch (t) {
    case EM_F16: return 1e-2 + 1e-4 * (double)K;
    case EM_BF16: return 6e-2 + 1e-3 * (double)K;
    case EM_F32: return 2e-6 * (double)K;
    case EM_C64: return 4e-6 * (double)K;
    case EM_F64: return 1e-14 * (double)K;
    case EM_C128: return 2e-14 * (double)K;
    default: return 0;
  }
}

/* The case's input on both devices, in the layout em_conv will see. */
static pair make_input(const ccase *c, em_dtype t, rng *r, int mode) {
  int nd = c->nd;
  int64_t shape[EM_MAX_NDIM] = {0};
  for (int i = 0; i < nd; i++) shape[c->ip ? c->ip[i] : i] = c->ish[i];
  if (c->variant == V_SLICED) {
    int64_t big[EM_MAX_NDIM], st[EM_MAX_NDIM], len[EM_MAX_NDIM], step[EM_MAX_NDIM];
    for (int i = 0; i < nd; i++) {
      step[i] = i == nd - 1 || i == 1 ? 2 : 1;
      big[i] = shape[i] * step[i] + 1;
      st[i] = 1;
      len[i] = shape[i] * step[i];
    }
    pair b = prand(t, nd, big, r, mode), q = {NULL, NULL};
    em_slice(&q.c, b.c, st, len, step);
    em_slice(&q.g, b.g, st, len, step);
    prelease(b);
    return q;
  }
  pair a = prand(t, nd, shape, r, mode);
  if (c->variant == V_REVERSED) {
    int axes[EM_MAX_NDIM], na = 0;
    for (int i = 2; i < nd; i++) axes[na++] = i;
    axes[na++] = 0;
    pair q = {NULL, NULL};
    em_reverse(&q.c, a.c, na, axes);
    em_reverse(&q.g, a.g, na, axes);
    prelease(a);
    return q;
  }
  return a;
}

static void run_case(const ccase *c, em_dtype t, rng *r, const char *tag) {
  if (quick && is_large(c)) return;
  const bool integer = em_dtype_is_int(t);
  const int mode = integer ? M_GENERAL : M_UNIT;
  int64_t kshape[EM_MAX_NDIM] = {0};
  for (int i = 0; i < c->nd; i++) kshape[c->kp ? c->kp[i] : i] = c->ksh[i];
  pair x = make_input(c, t, r, mode);
  pair w = prand(t, c->nd, kshape, r, mode);
  em_conv_params p = params_of(c);
  em_array *rc = NULL, *rg = NULL;
  em_status s1 = em_conv(&rc, x.c, w.c, &p);
  em_status s2 = em_conv(&rg, x.g, w.g, &p);
  char what[160];
  snprintf(what, sizeof what, "conv %s %s%s", c->name, em_dtype_name(t), tag);
  record(s1 == EM_OK && s2 == EM_OK, "%s: build: %s", what, em_last_error());
  if (s1 == EM_OK && s2 == EM_OK) {
    int64_t K = c->ksh[1];
    for (int i = 2; i < c->nd; i++) K *= c->ksh[i];
    check_pair(what, rc, rg, integer ? 0 : 1, atol_for(t, K));
    record(rg->ndim == rc->ndim && !memcmp(rg->shape, rc->shape,
                                           sizeof(int64_t) * (size_t)rc->ndim),
           "%s: shape", what);
  }
  em_array_release(rc);
  em_array_release(rg);
  prelease(x);
  prelease(w);
}

static bool is_float(em_dtype t) {
  return t == EM_F16 || t == EM_BF16 || t == EM_F32 || t == EM_F64;
}

/* ---- several threads at once ---------------------------------------------------- */

static void *thread_main(void *arg) {
  int id = (int)(intptr_t)arg;
  em_stream *s = NULL;
  em_status st = em_stream_new(&s, CU);
  record(st == EM_OK, "stream_new: %s", em_last_error());
  tl_stream = s;
  rng r = {0x51ed270b9a3f1c4dull ^ ((uint64_t)id * 0x9e3779b97f4a7c15ull)};
  static const em_dtype ts[] = {EM_F32, EM_F16, EM_F64, EM_S32, EM_C64};
  for (int rep = 0; rep < 3; rep++)
    for (int k = 0; k < NCASES; k++) {
      if (is_large(&CASES[k]) && rep > 0) continue;
      run_case(&CASES[k], ts[(k + id + rep) % 5], &r, " (threaded)");
    }
  tl_stream = NULL;
  em_stream_free(s);
  return NULL;
}

int main(void) {
  if (!cuda_diff_have_device("test_cuda_conv")) return 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  quick = getenv("EMILY_TEST_QUICK") != NULL;
  unsetenv("EMILY_CUDA_CONV_DIRECT");
  unsetenv("EMILY_CUDA_TF32");
  rng r = {0x243f6a8885a308d3ull};

  for (int k = 0; k < NCASES; k++)
    for (int ti = 0; ti <= EM_C128; ti++) run_case(&CASES[k], (em_dtype)ti, &r, "");
  printf("cases (cuDNN where it applies): %d checks, %d failed\n", th_checks,
         th_failures);

  setenv("EMILY_CUDA_CONV_DIRECT", "1", 1);
  for (int k = 0; k < NCASES; k++)
    for (int ti = 0; ti <= EM_C128; ti++)
      if (is_float((em_dtype)ti)) run_case(&CASES[k], (em_dtype)ti, &r, " (direct)");
  unsetenv("EMILY_CUDA_CONV_DIRECT");
  printf("float cases on the direct kernel: %d checks, %d failed\n", th_checks,
         th_failures);

  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    pthread_create(&th[i], NULL, thread_main, (void *)(intptr_t)i);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  printf("threaded: %d checks, %d failed\n", th_checks, th_failures);

  /* cached algorithms: the same problem again gives the same result */
  run_case(&CASES[3], EM_F32, &r, " (again)");
  run_case(&CASES[3], EM_F32, &r, " (again)");

  cuda_diff_summary();
  record(g_unsupported == 0, "conv reported EM_ERR_UNSUPPORTED for %d cases: %s",
         g_unsupported, g_unsup_list);
  return TEST_SUMMARY();
}
