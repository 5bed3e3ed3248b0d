/* bench_window.c — times the engine's window kernels on the CPU.
 *
 *   bench_window [--only NAME] [--min-time S]
 *
 * The pooling cases run on a [32, 64, 56, 56] f32 standard-normal input
 * (NCHW, a ResNet stem's pool input) made here with a fixed seed and
 * materialised before timing: 3x3 windows over the two spatial axes with
 * padding 1 and stride 1 or 2. Each repetition builds the op on the
 * materialised input, evaluates it and releases the result. Two warm-ups,
 * then max(5, min-time / warm-up time) timed runs (at most 200). Prints
 * one line per case:
 *
 *   RESULT case=NAME median_ms=T min_ms=T min_cpu_ms=T reps=N
 *
 * The PyTorch counterparts: F.max_pool2d(x, 3, stride, 1) for maxpool_*,
 * F.avg_pool2d(x, 3, stride, 1, count_include_pad=True) (a window sum and
 * one multiply) for sumpool_*, and the gradient of max_pool2d for
 * scatter_*. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
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
static double cpu_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
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

typedef enum { MAX, SUM, SCATTER } kind;
typedef struct {
  const char *name;
  kind k;
  int stride;
} bcase;

static const bcase CASES[] = {
    {"maxpool_3x3_s1", MAX, 1},         {"maxpool_3x3_s2", MAX, 2},
    {"sumpool_3x3_s1", SUM, 1},         {"sumpool_3x3_s2", SUM, 2},
    {"scatter_max_3x3_s2", SCATTER, 2},
};

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static em_array *x_in, *src1, *src2, *zero;

static int run_once(const bcase *c) {
  em_window w;
  memset(&w, 0, sizeof w);
  for (int i = 0; i < 4; i++) {
    w.window[i] = i < 2 ? 1 : 3;
    w.strides[i] = i < 2 ? 1 : c->stride;
    w.pad_lo[i] = w.pad_hi[i] = i < 2 ? 0 : 1;
    w.dilations[i] = 1;
  }
  em_array *y = NULL;
  em_status st;
  switch (c->k) {
    case MAX:
      st = em_window_max(&y, x_in, &w);
      break;
    case SUM:
      st = em_window_sum(&y, x_in, &w);
      break;
    default:
      st = em_window_scatter_max(&y, x_in, c->stride == 1 ? src1 : src2, zero,
                                 &w);
  }
  if (st == EM_OK) st = em_eval(&y, 1);
  em_array_release(y);
  if (st != EM_OK) {
    fprintf(stderr, "%s: %s\n", c->name, em_last_error());
    return 1;
  }
  return 0;
}

static em_array *randn(int nd, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= shape[i];
  float *d = malloc((size_t)n * sizeof *d);
  if (!d) return NULL;
  for (int64_t i = 0; i < n; i++) d[i] = (float)normal();
  em_array *a = NULL;
  if (em_array_from_data(&a, EM_F32, nd, shape, d, (size_t)n * sizeof *d,
                         em_cpu()) != EM_OK)
    a = NULL;
  free(d);
  return a;
}

int main(int argc, char **argv) {
  const char *only = NULL;
  double min_time = 1.0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--only") && i + 1 < argc)
      only = argv[++i];
    else if (!strcmp(argv[i], "--min-time") && i + 1 < argc)
      min_time = atof(argv[++i]);
  }
  int64_t shape[4] = {32, 64, 56, 56}, s1[4] = {32, 64, 56, 56},
          s2[4] = {32, 64, 28, 28};
  x_in = randn(4, shape);
  src1 = randn(4, s1);
  src2 = randn(4, s2);
  float z = 0;
  if (!x_in || !src1 || !src2 ||
      em_array_from_data(&zero, EM_F32, 0, NULL, &z, sizeof z, em_cpu()) !=
          EM_OK) {
    fprintf(stderr, "setup failed: %s\n", em_last_error());
    return 1;
  }
  printf("threads=%d\n", em_cpu_num_threads());
  for (size_t ci = 0; ci < sizeof CASES / sizeof CASES[0]; ci++) {
    const bcase *c = &CASES[ci];
    if (only && strcmp(only, c->name)) continue;
    double t0 = now_s();
    if (run_once(c) || run_once(c)) return 1;
    double warm = (now_s() - t0) / 2;
    int reps = warm > 0 ? (int)(min_time / warm) : 200;
    if (reps < 5) reps = 5;
    if (reps > 200) reps = 200;
    double times[200], best_cpu = 1e30;
    for (int r = 0; r < reps; r++) {
      double a = now_s(), ac = cpu_s();
      if (run_once(c)) return 1;
      times[r] = now_s() - a;
      double dc = cpu_s() - ac;
      if (dc < best_cpu) best_cpu = dc;
    }
    qsort(times, (size_t)reps, sizeof times[0], cmp_d);
    printf(
        "RESULT case=%s median_ms=%.3f min_ms=%.3f min_cpu_ms=%.3f "
        "reps=%d\n",
        c->name, times[reps / 2] * 1e3, times[0] * 1e3, best_cpu * 1e3, reps);
    fflush(stdout);
  }
  em_array_release(x_in);
  em_array_release(src1);
  em_array_release(src2);
  em_array_release(zero);
  return 0;
}
