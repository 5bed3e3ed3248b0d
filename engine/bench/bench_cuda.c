/* bench_cuda.c — the CUDA backend on the cases bench/run_gpu.py compares
 * with PyTorch: device-to-device copy (the memory floor), gelu(x*a+b) on
 * 64M f32 (one fused kernel), softmax 8192x8192 f32, layer_norm and
 * rms_norm over 16384x4096 bf16 (with weight, and bias for layer_norm),
 * sum of 256M f32, matmul bf16 8192^3 and f32 4096^3 (no TF32), conv2d
 * 3x3 (pad 1) on [32,64,56,56] f32 with 64 output channels, sort of 16M
 * f32. A case whose op the backend lacks prints "case,unsupported".
 *
 * Each repetition builds the graph again (arrays are immutable) and times
 * em_eval, which returns once the stream is synchronized (wall clock, so
 * it includes launch gaps); the median of the repetitions after warm-ups
 * (which also compile the run-time kernels) is reported. Output: one CSV line per case,
 * "case,ms,GB/s or TFLOP/s,unit", after a header. */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emily.h"

static const em_device CU = {EM_DEVICE_CUDA, 0};

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef em_status (*build_fn)(em_array **out, em_array **in);

static void die(const char *what) {
  fprintf(stderr, "bench_cuda: %s: %s\n", what, em_last_error());
  exit(1);
}

/* Median ms per op: each repetition evaluates BATCH independent copies of
 * the graph in one em_eval (one stream synchronize), which spreads the
 * host's hand-off to the stream worker over BATCH ops. bench/run_gpu.py
 * times PyTorch the same way (BATCH calls, one synchronize). BATCH is 5,
 * or EMILY_BENCH_BATCH (1..MAX_BATCH). */
#define MAX_BATCH 64
static int BATCH = 5;
static double time_case(build_fn build, em_array **in, int warm, int reps) {
  double t[64];
  if (reps > 64) reps = 64;
  for (int i = 0; i < warm + reps; i++) {
    em_array *out[MAX_BATCH] = {NULL};
    for (int k = 0; k < BATCH; k++)
      if (build(&out[k], in) != EM_OK) die("build");
    double t0 = now();
    if (em_eval(out, BATCH) != EM_OK) die("eval");
    double t1 = now();
    for (int k = 0; k < BATCH; k++) em_array_release(out[k]);
    if (i >= warm) t[i - warm] = (t1 - t0) * 1e3 / BATCH;
  }
  qsort(t, (size_t)reps, sizeof t[0], cmp);
  return t[reps / 2];
}

static em_array *rand_f32(int nd, const int64_t *shape, em_dtype t) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= shape[i];
  /* uniform [-1, 1) from an iota-based hash on the device: cheap to make */
  em_array *i = NULL, *f = NULL, *k = NULL, *s = NULL, *fr = NULL, *fl = NULL,
           *two = NULL, *one = NULL, *a = NULL, *b = NULL, *r = NULL;
  int64_t flat[1] = {n};
  em_iota(&i, EM_F64, 1, flat, 0, CU);
  em_full_scalar(&k, EM_F64, 0.6180339887498949, CU);
  em_multiply(&f, i, k);
  em_sin(&s, f);
  em_full_scalar(&two, EM_F64, 43758.5453, CU);
  em_multiply(&fr, s, two);
  em_floor(&fl, fr);
  em_subtract(&a, fr, fl); /* [0, 1) */
  em_full_scalar(&one, EM_F64, 2.0, CU);
  em_multiply(&b, a, one);
  em_array *m1 = NULL, *c = NULL, *res = NULL;
  em_full_scalar(&m1, EM_F64, 1.0, CU);
  em_subtract(&c, b, m1);
  em_as_type(&r, c, t);
  em_reshape(&res, r, nd, shape);
  if (em_eval(&res, 1) != EM_OK) die("random input");
  em_array *all[] = {i, f, k, s, fr, fl, two, one, a, b, r, m1, c};
  for (size_t j = 0; j < sizeof all / sizeof all[0]; j++) em_array_release(all[j]);
  return res;
}

static em_status b_copy(em_array **out, em_array **in) { return em_copy(out, in[0]); }

static em_status b_gelu(em_array **out, em_array **in) {
  em_array *x = in[0], *a = in[1], *b = in[2], *h = in[3], *one = in[4], *k = in[5];
  em_array *t1 = NULL, *t2 = NULL, *t3 = NULL, *t4 = NULL, *t5 = NULL, *t6 = NULL;
  em_multiply(&t1, x, a);
  em_add(&t2, t1, b);
  em_multiply(&t3, t2, k);
  em_erf(&t4, t3);
  em_add(&t5, t4, one);
  em_multiply(&t6, t2, h);
  em_status st = em_multiply(out, t6, t5);
  em_array *all[] = {t1, t2, t3, t4, t5, t6};
  for (size_t j = 0; j < sizeof all / sizeof all[0]; j++) em_array_release(all[j]);
  return st;
}

static em_status b_softmax(em_array **out, em_array **in) {
  return em_softmax(out, in[0], -1);
}
static em_status b_sum(em_array **out, em_array **in) {
  return em_sum(out, in[0], 0, NULL, false);
}
static em_status b_matmul(em_array **out, em_array **in) {
  return em_matmul(out, in[0], in[1]);
}
static em_status b_layer_norm(em_array **out, em_array **in) {
  return em_layer_norm(out, in[0], in[1], in[2], 1e-5);
}
static em_status b_rms_norm(em_array **out, em_array **in) {
  return em_rms_norm(out, in[0], in[1], 1e-6);
}
static em_status b_conv(em_array **out, em_array **in) {
  em_conv_params p;
  memset(&p, 0, sizeof p);
  p.nspatial = 2;
  for (int i = 0; i < 2; i++) {
    p.strides[i] = 1;
    p.pad_lo[i] = p.pad_hi[i] = 1;
    p.input_dilation[i] = p.kernel_dilation[i] = 1;
  }
  p.feature_group_size = p.batch_group_size = 1;
  return em_conv(out, in[0], in[1], &p);
}
static em_status b_sort(em_array **out, em_array **in) {
  return em_sort(out, in[0], 0, false);
}

/* Runs a case whose kernel may be missing on CUDA: one probe evaluation
 * first; EM_ERR_UNSUPPORTED prints "name,unsupported" and skips it. */
static bool supported(const char *name, build_fn build, em_array **in) {
  em_array *o = NULL;
  if (build(&o, in) != EM_OK) die("build");
  em_status st = em_eval(&o, 1);
  em_array_release(o);
  if (st == EM_ERR_UNSUPPORTED) {
    printf("%s,unsupported\n", name);
    fflush(stdout);
    return false;
  }
  if (st != EM_OK) die(name);
  return true;
}

int main(int argc, char **argv) {
  if (em_device_count(EM_DEVICE_CUDA) == 0) {
    printf("SKIPPED: no CUDA device\n");
    return 0;
  }
  const char *only = argc > 1 ? argv[1] : NULL;
  const char *batch = getenv("EMILY_BENCH_BATCH");
  if (batch && atoi(batch) >= 1 && atoi(batch) <= MAX_BATCH) BATCH = atoi(batch);
  printf("case,ms,rate,unit\n");
  fflush(stdout);
  if (!only || strstr(only, "copy")) {
    int64_t n[1] = {(int64_t)1 << 28}; /* 1 GiB of f32 */
    em_array *x = rand_f32(1, n, EM_F32);
    double ms = time_case(b_copy, &x, 3, 20);
    printf("copy_1GiB_f32,%.4f,%.1f,GB/s\n", ms, 2.0 * 4 * (double)n[0] / ms / 1e6);
    em_array_release(x);
  }
  if (!only || strstr(only, "gelu")) {
    int64_t n[1] = {(int64_t)1 << 26};
    em_array *in[6];
    in[0] = rand_f32(1, n, EM_F32);
    em_full_scalar(&in[1], EM_F32, 1.25, CU);
    em_full_scalar(&in[2], EM_F32, -0.5, CU);
    em_full_scalar(&in[3], EM_F32, 0.5, CU);
    em_full_scalar(&in[4], EM_F32, 1.0, CU);
    em_full_scalar(&in[5], EM_F32, 0.7071067811865476, CU);
    em_eval(in + 1, 5);
    double ms = time_case(b_gelu, in, 3, 20);
    printf("gelu_affine_64M_f32,%.4f,%.1f,GB/s\n", ms, 2.0 * 4 * (double)n[0] / ms / 1e6);
    for (int i = 0; i < 6; i++) em_array_release(in[i]);
  }
  if (!only || strstr(only, "softmax")) {
    int64_t s[2] = {8192, 8192};
    em_array *x = rand_f32(2, s, EM_F32);
    double ms = time_case(b_softmax, &x, 3, 20);
    printf("softmax_8192x8192_f32,%.4f,%.1f,GB/s\n", ms, 2.0 * 4 * 8192.0 * 8192 / ms / 1e6);
    em_array_release(x);
  }
  if (!only || strstr(only, "norm")) {
    int64_t s[2] = {16384, 4096}, d[1] = {4096};
    em_array *in[3] = {rand_f32(2, s, EM_BF16), rand_f32(1, d, EM_BF16),
                       rand_f32(1, d, EM_BF16)};
    double bytes = 2.0 * 2 * 16384.0 * 4096;
    if (supported("layer_norm_16384x4096_bf16", b_layer_norm, in)) {
      double ms = time_case(b_layer_norm, in, 3, 20);
      printf("layer_norm_16384x4096_bf16,%.4f,%.1f,GB/s\n", ms, bytes / ms / 1e6);
    }
    if (supported("rms_norm_16384x4096_bf16", b_rms_norm, in)) {
      double ms = time_case(b_rms_norm, in, 3, 20);
      printf("rms_norm_16384x4096_bf16,%.4f,%.1f,GB/s\n", ms, bytes / ms / 1e6);
    }
    for (int i = 0; i < 3; i++) em_array_release(in[i]);
  }
  if (!only || strstr(only, "sum")) {
    int64_t n[1] = {(int64_t)1 << 28};
    em_array *x = rand_f32(1, n, EM_F32);
    double ms = time_case(b_sum, &x, 3, 20);
    printf("sum_256M_f32,%.4f,%.1f,GB/s\n", ms, 4.0 * (double)n[0] / ms / 1e6);
    em_array_release(x);
  }
  if (!only || strstr(only, "matmul")) {
    int64_t s[2] = {8192, 8192};
    em_array *in[2] = {rand_f32(2, s, EM_BF16), rand_f32(2, s, EM_BF16)};
    double ms = time_case(b_matmul, in, 3, 10);
    printf("matmul_bf16_8192,%.4f,%.1f,TFLOP/s\n", ms, 2.0 * 8192.0 * 8192 * 8192 / ms / 1e9);
    em_array_release(in[0]);
    em_array_release(in[1]);
    int64_t s2[2] = {4096, 4096};
    em_array *f[2] = {rand_f32(2, s2, EM_F32), rand_f32(2, s2, EM_F32)};
    ms = time_case(b_matmul, f, 3, 10);
    printf("matmul_f32_4096,%.4f,%.1f,TFLOP/s\n", ms, 2.0 * 4096.0 * 4096 * 4096 / ms / 1e9);
    em_array_release(f[0]);
    em_array_release(f[1]);
  }
  if (!only || strstr(only, "conv")) {
    int64_t xs[4] = {32, 64, 56, 56}, ks[4] = {64, 64, 3, 3};
    em_array *in[2] = {rand_f32(4, xs, EM_F32), rand_f32(4, ks, EM_F32)};
    if (supported("conv2d_3x3_32x64x56x56_f32", b_conv, in)) {
      double ms = time_case(b_conv, in, 3, 20);
      double flops = 2.0 * 32 * 64 * 56 * 56 * 64 * 9;
      printf("conv2d_3x3_32x64x56x56_f32,%.4f,%.1f,TFLOP/s\n", ms, flops / ms / 1e9);
    }
    em_array_release(in[0]);
    em_array_release(in[1]);
  }
  if (!only || strstr(only, "sort")) {
    int64_t n[1] = {(int64_t)1 << 24};
    em_array *x = rand_f32(1, n, EM_F32);
    if (supported("sort_16M_f32", b_sort, &x)) {
      double ms = time_case(b_sort, &x, 3, 20);
      printf("sort_16M_f32,%.4f,%.1f,GB/s\n", ms, 2.0 * 4 * (double)n[0] / ms / 1e6);
    }
    em_array_release(x);
  }
  return 0;
}
