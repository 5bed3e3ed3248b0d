/* bench_fft.c — times em_fft / em_rfft / em_ifft on the CPU for a few
 * shapes and dtypes (best and median of repeated runs, the plan built on a
 * warm-up call). Compare with numpy.fft on the same machine:
 *   /usr/bin/python3 -c "import numpy as np, timeit; \
 *     x = (np.random.rand(1<<20) +
 * 1j*np.random.rand(1<<20)).astype(np.complex64); \
 *     print(min(timeit.repeat(lambda: np.fft.fft(x), number=1, repeat=20)))"
 * Usage: bench_fft [reps] */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emily.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef enum { K_FFT, K_IFFT, K_RFFT, K_IRFFT } kind;

static void bench(const char *label, kind k, em_dtype t, int64_t rows,
                  int64_t n, int reps) {
  int64_t len = k == K_IRFFT ? n / 2 + 1 : n;
  int64_t shape[2] = {rows, len};
  size_t count = (size_t)(rows * len);
  size_t es = em_dtype_size(t);
  unsigned char *buf = malloc(count * es);
  if (!buf) return;
  srand(1);
  size_t sc = em_dtype_is_complex(t) ? es / 2 : es; /* scalar size */
  for (size_t i = 0; i < count * es / sc; i++) {
    double d = (double)rand() / (double)RAND_MAX - 0.5;
    float f = (float)d;
    if (sc == 8)
      memcpy(buf + 8 * i, &d, 8);
    else
      memcpy(buf + 4 * i, &f, 4);
  }
  em_array *a = NULL;
  if (em_array_from_data(&a, t, 2, shape, buf, count * es, em_cpu()) != EM_OK) {
    fprintf(stderr, "%s: %s\n", label, em_last_error());
    free(buf);
    return;
  }
  double *times = malloc(sizeof(double) * (size_t)(reps + 1));
  for (int r = -1; r < reps; r++) {
    em_array *b = NULL;
    double t0 = now();
    em_status st = k == K_FFT    ? em_fft(&b, a, n)
                   : k == K_IFFT ? em_ifft(&b, a, n)
                   : k == K_RFFT ? em_rfft(&b, a, n)
                                 : em_irfft(&b, a, n);
    if (st == EM_OK) st = em_eval(&b, 1);
    double t1 = now();
    if (st != EM_OK) {
      fprintf(stderr, "%s: %s\n", label, em_last_error());
      em_array_release(b);
      break;
    }
    if (r >= 0) times[r] = t1 - t0;
    em_array_release(b);
  }
  qsort(times, (size_t)reps, sizeof(double), cmp_d);
  printf("%-28s best %9.3f ms  median %9.3f ms\n", label, times[0] * 1e3,
         times[reps / 2] * 1e3);
  free(times);
  em_array_release(a);
  free(buf);
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 20;
  if (reps < 1) reps = 1;
  printf("threads: %d\n", em_cpu_num_threads());
  bench("fft c64 [1M]", K_FFT, EM_C64, 1, 1 << 20, reps);
  bench("ifft c64 [1M]", K_IFFT, EM_C64, 1, 1 << 20, reps);
  bench("fft c128 [1M]", K_FFT, EM_C128, 1, 1 << 20, reps);
  bench("fft c64 [1000000]", K_FFT, EM_C64, 1, 1000000, reps);
  bench("fft c64 [1000003] (prime)", K_FFT, EM_C64, 1, 1000003, reps);
  bench("fft c64 [65536]", K_FFT, EM_C64, 1, 65536, reps);
  bench("fft c64 [4096]", K_FFT, EM_C64, 1, 4096, reps);
  bench("fft c64 [1024]", K_FFT, EM_C64, 1, 1024, reps);
  bench("fft c64 [1024 x 1024]", K_FFT, EM_C64, 1024, 1024, reps);
  bench("fft c64 [8192 x 64]", K_FFT, EM_C64, 8192, 64, reps);
  bench("fft c128 [1024 x 1024]", K_FFT, EM_C128, 1024, 1024, reps);
  bench("fft c64 [1000 x 97]", K_FFT, EM_C64, 1000, 97, reps);
  bench("rfft f32 [1M]", K_RFFT, EM_F32, 1, 1 << 20, reps);
  bench("irfft c64 [1M]", K_IRFFT, EM_C64, 1, 1 << 20, reps);
  bench("rfft f32 [1024 x 1024]", K_RFFT, EM_F32, 1024, 1024, reps);
  return 0;
}
