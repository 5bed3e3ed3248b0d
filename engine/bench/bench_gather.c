/* bench_gather.c — row gather: em_take along axis 0 (and the same through
 * em_gather) of N random rows from a [R, C] f32 table, the embedding
 * lookup workload; the peer is numpy's table[idx] / torch.index_select.
 *
 *   bench_gather [R C N]      (default 100000 256 1000000: a 1 GB result)
 *
 * Each repetition builds the node from the materialised table and
 * indices, evaluates it and releases the result (the caching allocator
 * hands the same buffer back, as a steady-state training loop would see).
 * One warm-up, then the median and minimum of 7 runs. Prints
 *
 *   RESULT case=take_rows median_ms=T min_ms=T GBps=B
 *   RESULT case=gather_rows median_ms=T min_ms=T GBps=B
 *   RESULT case=memcpy_rows median_ms=T min_ms=T GBps=B
 *
 * memcpy_rows is the floor on this machine: one thread memcpy'ing the
 * same rows into a preallocated, already touched buffer (what numpy's
 * table[idx] does, minus its allocation), run in between the engine's
 * repetitions so that both see the same machine load.
 * (GBps: result bytes per second). Exit status 0 on success. */
#define _POSIX_C_SOURCE 200809L
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

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

#define REPS 7

/* One memcpy_rows repetition; returns its time. */
static double memcpy_rows(float *dst, const float *tab, const int64_t *iv,
                          int64_t N, int64_t C) {
  double t0 = now_s();
  for (int64_t i = 0; i < N; i++)
    memcpy(dst + i * C, tab + iv[i] * C, (size_t)C * sizeof(float));
  return now_s() - t0;
}

static void report(const char *name, double *t, int64_t N, int64_t C) {
  qsort(t + 1, REPS, sizeof(double), cmp_d);
  double med = t[1 + REPS / 2], mn = t[1];
  double gb = (double)N * (double)C * 4.0 / 1e9;
  printf("RESULT case=%s median_ms=%.2f min_ms=%.2f GBps=%.2f\n", name,
         med * 1e3, mn * 1e3, gb / med);
}

static int run(const char *name, em_array *table, em_array *idx, em_array *idx2,
               int64_t N, int64_t C, const float *tab, const int64_t *iv,
               float *scratch, double *tm) {
  double t[REPS + 1];
  for (int r = 0; r <= REPS; r++) {
    if (scratch) tm[r] = memcpy_rows(scratch, tab, iv, N, C);
    em_array *o = NULL;
    double t0 = now_s();
    em_status st = idx2 ? em_gather(&o, table, idx2, 0, NULL)
                        : em_take(&o, table, idx, 0);
    if (st == EM_OK) st = em_eval(&o, 1);
    t[r] = now_s() - t0;
    if (st != EM_OK) {
      fprintf(stderr, "%s: %s\n", name, em_last_error());
      em_array_release(o);
      return 1;
    }
    if (r == 0) { /* spot-check the first result */
      const float *p = em_array_data(o);
      for (int64_t i = 0; p && i < N; i += N / 97 + 1)
        if (memcmp(p + i * C, tab + iv[i] * C, (size_t)C * 4) != 0) {
          fprintf(stderr, "%s: wrong row %lld\n", name, (long long)i);
          em_array_release(o);
          return 1;
        }
    }
    em_array_release(o);
  }
  report(name, t, N, C);
  return 0;
}

int main(int argc, char **argv) {
  int64_t R = 100000, C = 256, N = 1000000;
  if (argc == 4) {
    R = atoll(argv[1]);
    C = atoll(argv[2]);
    N = atoll(argv[3]);
  }
  if (R < 1 || C < 1 || N < 1) {
    fprintf(stderr, "usage: bench_gather [R C N]\n");
    return 1;
  }
  float *tab = malloc((size_t)(R * C) * sizeof(float));
  int64_t *iv = malloc((size_t)N * sizeof(int64_t));
  float *scratch = malloc((size_t)(N * C) * sizeof(float));
  if (!tab || !iv || !scratch) return 1;
  memset(scratch, 0, (size_t)(N * C) * sizeof(float));
  uint64_t s = 0x9E3779B97F4A7C15ull;
  for (int64_t i = 0; i < R * C; i++) tab[i] = (float)(i % 1000) * 0.5f;
  for (int64_t i = 0; i < N; i++) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    iv[i] = (int64_t)(s % (uint64_t)R);
  }
  em_array *table = NULL, *idx = NULL, *idx2 = NULL;
  int rc = 1;
  if (em_array_from_data(&table, EM_F32, 2, (int64_t[]){R, C}, tab,
                         (size_t)(R * C) * 4, em_cpu()) != EM_OK ||
      em_array_from_data(&idx, EM_S64, 1, (int64_t[]){N}, iv, (size_t)N * 8,
                         em_cpu()) != EM_OK ||
      em_reshape(&idx2, idx, 2, (int64_t[]){N, 1}) != EM_OK) {
    fprintf(stderr, "setup: %s\n", em_last_error());
    goto out;
  }
  printf("gather of %lld rows from [%lld, %lld] f32, %d threads\n",
         (long long)N, (long long)R, (long long)C, em_cpu_num_threads());
  double tm[REPS + 1];
  rc = run("take_rows", table, idx, NULL, N, C, tab, iv, scratch, tm);
  if (!rc) rc = run("gather_rows", table, idx, idx2, N, C, tab, iv, NULL, NULL);
  if (!rc) report("memcpy_rows", tm, N, C);
out:
  em_array_release(idx2);
  em_array_release(idx);
  em_array_release(table);
  free(tab);
  free(iv);
  free(scratch);
  return rc;
}
