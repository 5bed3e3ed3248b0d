/* bench_conv.c — times em_conv on the CPU.
 *
 *   bench_conv [--only NAME] [--min-time S]
 *
 * Inputs are standard-normal values made here with a fixed seed and
 * materialised before timing. Each repetition builds the op on the
 * materialised inputs, evaluates it and releases the result. One warm-up,
 * then max(3, min-time / warm-up time) timed runs (at most 100). Prints:
 *
 *   RESULT case=NAME median_ms=T min_ms=T gflops=G reps=N
 *
 * The PyTorch counterpart of each case is F.conv2d / conv1d / conv3d with
 * the same shapes, stride, padding, dilation and groups (NCHW layouts);
 * the headline case is "resnet3x3": [32,64,56,56] * [64,64,3,3], stride 1,
 * padding 1, f32 ("resnet3x3_nhwc": the same with the input given and the
 * output wanted channels-last through the permutations, the layout Axon
 * uses; PyTorch's counterpart there is the channels_last memory format). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emily.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t rng = 0x243F6A8885A308D3ull;
static uint64_t rnd(void) {
  uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double normal(void) {
  double u = ((double)(rnd() >> 11) + 0.5) * 0x1p-53;
  double v = (double)(rnd() >> 11) * 0x1p-53;
  return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

typedef struct {
  const char *name;
  em_dtype t;
  int nd;
  int64_t in[5], k[5];
  int64_t stride, pad, groups;
  bool nhwc; /* input and output channels-last (permutations), as Axon */
} bcase;

static const int NHWC[] = {0, 3, 1, 2};

static const bcase CASES[] = {
    /* name, dtype, rank, input, kernel, stride, padding, groups, nhwc */
    {"resnet3x3", EM_F32, 4, {32, 64, 56, 56}, {64, 64, 3, 3}, 1, 1, 1, 0},
    {"resnet3x3_nhwc", EM_F32, 4, {32, 56, 56, 64}, {64, 64, 3, 3}, 1, 1, 1,
     1},
    {"resnet3x3_f64", EM_F64, 4, {8, 64, 56, 56}, {64, 64, 3, 3}, 1, 1, 1, 0},
    {"resnet3x3_bf16", EM_BF16, 4, {8, 64, 56, 56}, {64, 64, 3, 3}, 1, 1, 1,
     0},
    {"late3x3", EM_F32, 4, {32, 512, 7, 7}, {512, 512, 3, 3}, 1, 1, 1, 0},
    {"pointwise", EM_F32, 4, {32, 256, 28, 28}, {128, 256, 1, 1}, 1, 0, 1, 0},
    {"stem7x7s2", EM_F32, 4, {16, 3, 224, 224}, {64, 3, 7, 7}, 2, 3, 1, 0},
    {"depthwise", EM_F32, 4, {32, 128, 56, 56}, {128, 1, 3, 3}, 1, 1, 128, 0},
    {"grouped32", EM_F32, 4, {16, 256, 28, 28}, {256, 8, 3, 3}, 1, 1, 32, 0},
    {"conv1d", EM_F32, 3, {32, 128, 1024}, {128, 128, 5}, 1, 2, 1, 0},
    {"conv3d", EM_F32, 5, {4, 32, 16, 32, 32}, {32, 32, 3, 3, 3}, 1, 1, 1, 0},
    {"int32_3x3", EM_S32, 4, {8, 32, 56, 56}, {32, 32, 3, 3}, 1, 1, 1, 0},
};

static em_array *make(em_dtype t, int nd, const int64_t *sh) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= sh[i];
  double *d = malloc((size_t)n * sizeof(double));
  for (int64_t i = 0; i < n; i++)
    d[i] = t == EM_S32 ? (double)(int64_t)(rnd() % 7) - 3 : normal();
  em_array *a = NULL, *r = NULL;
  if (em_array_from_data(&a, EM_F64, nd, sh, d, (size_t)n * sizeof(double),
                         em_cpu()) != EM_OK ||
      em_as_type(&r, a, t) != EM_OK || em_eval(&r, 1) != EM_OK) {
    fprintf(stderr, "setup failed: %s\n", em_last_error());
    exit(1);
  }
  free(d);
  em_array_release(a);
  return r;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  const char *only = NULL;
  double min_time = 1.0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else if (!strcmp(argv[i], "--min-time") && i + 1 < argc)
      min_time = atof(argv[++i]);
  }
  printf("threads %d\n", em_cpu_num_threads());
  for (size_t ci = 0; ci < sizeof CASES / sizeof CASES[0]; ci++) {
    const bcase *c = &CASES[ci];
    if (only && strcmp(only, c->name)) continue;
    em_array *x = make(c->t, c->nd, c->in), *w = make(c->t, c->nd, c->k);
    em_conv_params p;
    memset(&p, 0, sizeof p);
    p.nspatial = c->nd - 2;
    double flops = 2.0 * (double)c->in[0] * (double)c->k[0] *
                   (double)c->k[1];
    for (int d = 0; d < c->nd - 2; d++) {
      p.strides[d] = c->stride;
      p.pad_lo[d] = p.pad_hi[d] = c->pad;
      p.input_dilation[d] = p.kernel_dilation[d] = 1;
      int64_t n = c->nhwc ? c->in[1 + d] : c->in[2 + d];
      int64_t o = (n + 2 * c->pad - c->k[2 + d]) / c->stride + 1;
      flops *= (double)o * (double)c->k[2 + d];
    }
    if (c->nhwc) p.input_permutation = p.output_permutation = NHWC;
    p.feature_group_size = c->groups;
    p.batch_group_size = 1;
    double times[100];
    int reps = 0, target = 3;
    for (int it = -1; it < target && reps < 100; it++) {
      double t0 = now_s();
      em_array *r = NULL;
      if (em_conv(&r, x, w, &p) != EM_OK || em_eval(&r, 1) != EM_OK) {
        fprintf(stderr, "%s failed: %s\n", c->name, em_last_error());
        return 1;
      }
      em_array_release(r);
      double dt = now_s() - t0;
      if (it < 0) {
        int want = (int)(min_time / (dt > 1e-9 ? dt : 1e-9));
        target = want < 3 ? 3 : want > 100 ? 100 : want;
      } else {
        times[reps++] = dt;
      }
    }
    qsort(times, (size_t)reps, sizeof times[0], cmp_d);
    printf("RESULT case=%s median_ms=%.3f min_ms=%.3f gflops=%.1f reps=%d\n",
           c->name, 1e3 * times[reps / 2], 1e3 * times[0],
           flops / times[reps / 2] * 1e-9, reps);
    fflush(stdout);
    em_array_release(x);
    em_array_release(w);
  }
  return 0;
}
