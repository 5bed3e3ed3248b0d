/* bench_sort.c — times the engine's sort, argsort, top_k and cumulative
 * kernels on the CPU.
 *
 *   bench_sort [--only NAME] [--min-time S]
 *
 * Inputs are standard-normal (ints: uniform) values made here with a fixed
 * seed and materialised before timing. Each repetition builds the op on
 * the materialised input, evaluates it and releases the result. Two
 * warm-ups, then max(5, min-time / warm-up time) timed runs (at most 200).
 * Prints one line per case:
 *
 *   RESULT case=NAME median_ms=T min_ms=T min_cpu_ms=T reps=N
 *
 * min_cpu_ms: the least process CPU time (all threads) of one run.
 *
 * The numpy counterparts (np.sort(x), np.argsort(x, kind="stable"),
 * np.cumsum(x, axis), ...) are what these cases are compared with. */
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
/* CPU time of the whole process (all threads): on a shared machine this
 * is the steadier figure for single-threaded cases. */
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

typedef enum { SORT, ARGSORT, CUMSUM, TOPK } kind;
typedef struct {
  const char *name;
  kind k;
  em_dtype t;
  int nd;
  int64_t shape[2];
  int axis; /* top_k: k */
  bool desc;
} bcase;

static const bcase CASES[] = {
    {"sort_f32_1m", SORT, EM_F32, 1, {1 << 20, 0}, 0, false},
    {"sort_f32_1m_desc", SORT, EM_F32, 1, {1 << 20, 0}, 0, true},
    {"argsort_f32_1m", ARGSORT, EM_F32, 1, {1 << 20, 0}, 0, false},
    {"sort_f64_1m", SORT, EM_F64, 1, {1 << 20, 0}, 0, false},
    {"argsort_f64_1m", ARGSORT, EM_F64, 1, {1 << 20, 0}, 0, false},
    {"sort_s32_1m", SORT, EM_S32, 1, {1 << 20, 0}, 0, false},
    {"sort_f32_1000x1000_ax1", SORT, EM_F32, 2, {1000, 1000}, 1, false},
    {"sort_f32_1000x1000_ax0", SORT, EM_F32, 2, {1000, 1000}, 0, false},
    {"argsort_f32_1000x1000_ax1", ARGSORT, EM_F32, 2, {1000, 1000}, 1, false},
    {"sort_f32_16384x64_ax1", SORT, EM_F32, 2, {16384, 64}, 1, false},
    {"topk_f32_64x32000_k10", TOPK, EM_F32, 2, {64, 32000}, 10, false},
    {"cumsum_f32_1m", CUMSUM, EM_F32, 1, {1 << 20, 0}, 0, false},
    {"cumsum_f32_1000x1000_ax0", CUMSUM, EM_F32, 2, {1000, 1000}, 0, false},
    {"cumsum_f32_1000x1000_ax1", CUMSUM, EM_F32, 2, {1000, 1000}, 1, false},
    {"cumsum_f64_1m", CUMSUM, EM_F64, 1, {1 << 20, 0}, 0, false},
};

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int run(const bcase *c, em_array *x, double *ms, double *cms) {
  double t0 = now_s(), c0 = cpu_s();
  em_array *o = NULL, *o2 = NULL;
  em_status st;
  switch (c->k) {
    case SORT:
      st = em_sort(&o, x, c->axis, c->desc);
      break;
    case ARGSORT:
      st = em_argsort(&o, x, c->axis, c->desc);
      break;
    case CUMSUM:
      st = em_cumulative_sum(&o, x, c->axis, false);
      break;
    default:
      st = em_top_k(&o, &o2, x, c->axis);
      break;
  }
  if (st == EM_OK) {
    em_array *both[2] = {o, o2};
    st = em_eval(both, o2 ? 2 : 1);
  }
  em_array_release(o);
  em_array_release(o2);
  *ms = (now_s() - t0) * 1e3;
  *cms = (cpu_s() - c0) * 1e3;
  if (st != EM_OK) {
    fprintf(stderr, "%s: %s\n", c->name, em_last_error());
    return 1;
  }
  return 0;
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
  for (size_t ci = 0; ci < sizeof CASES / sizeof CASES[0]; ci++) {
    const bcase *c = &CASES[ci];
    if (only && strcmp(only, c->name)) continue;
    int64_t n = c->shape[0] * (c->nd > 1 ? c->shape[1] : 1);
    size_t es = em_dtype_size(c->t);
    char *data = malloc((size_t)n * es);
    for (int64_t i = 0; i < n; i++) {
      if (c->t == EM_F32)
        ((float *)data)[i] = (float)normal();
      else if (c->t == EM_F64)
        ((double *)data)[i] = normal();
      else
        ((int32_t *)data)[i] = (int32_t)rnd();
    }
    em_array *x = NULL;
    if (em_array_from_data(&x, c->t, c->nd, c->shape, data, (size_t)n * es,
                           em_cpu()) != EM_OK) {
      fprintf(stderr, "from_data: %s\n", em_last_error());
      return 1;
    }
    free(data);
    double w, w2, cw;
    if (run(c, x, &w, &cw) || run(c, x, &w2, &cw)) return 1;
    int reps = (int)(min_time * 1e3 / (w2 > 1e-3 ? w2 : 1e-3));
    if (reps < 5) reps = 5;
    if (reps > 200) reps = 200;
    double *ts = malloc(sizeof(double) * (size_t)reps * 2), *cs = ts + reps;
    for (int r = 0; r < reps; r++)
      if (run(c, x, &ts[r], &cs[r])) return 1;
    qsort(ts, (size_t)reps, sizeof *ts, cmp_d);
    qsort(cs, (size_t)reps, sizeof *cs, cmp_d);
    printf(
        "RESULT case=%s median_ms=%.3f min_ms=%.3f min_cpu_ms=%.3f "
        "reps=%d\n",
        c->name, ts[reps / 2], ts[0], cs[0], reps);
    fflush(stdout);
    free(ts);
    em_array_release(x);
  }
  return 0;
}
