/* bench_cpu.c — times the engine on the CPU for a few standard workloads.
 *
 *   bench_cpu [--in DIR] [--out DIR] [--min-time S] [--only NAME]
 *
 * --in DIR: read each input from DIR/<case>.<input>.f32 (raw little-endian
 *           f32, row-major; bench/run_cpu.py writes them with numpy), else
 *           generate random inputs here.
 * --out DIR: write each case's result to DIR/<case>.f32 for checking.
 *
 * Each repetition builds a fresh graph from the already materialised
 * inputs, evaluates it (em_eval), and releases the result: the time covers
 * graph building, evaluation and release. Two warm-up runs (the first one's
 * result is written out), then max(5, min-time / warm-up time) timed runs,
 * capped at 500. Prints one machine-readable line per case:
 *
 *   RESULT case=NAME median_ms=T min_ms=T reps=N
 *
 * Exit status: 0 on success, 1 on any engine or I/O error. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emily.h"

#define CK(call)                                                        \
  do {                                                                  \
    em_status st_ = (call);                                             \
    if (st_ != EM_OK) {                                                 \
      fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, \
              #call, em_status_name(st_), em_last_error());             \
      goto fail;                                                        \
    }                                                                   \
  } while (0)

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- graph builders ------------------------------------------------------
 * Each takes the materialised inputs and returns the (lazy) result; the
 * intermediates are released as soon as the next node holds them. */

typedef em_status (*build_fn)(em_array **out, em_array *const *in);

static em_status b_matmul(em_array **out, em_array *const *in) {
  return em_matmul(out, in[0], in[1]);
}

/* gelu(x*a + b) = 0.5*y*(1 + erf(y/sqrt(2))), from engine ops. */
static em_status b_gelu(em_array **out, em_array *const *in) {
  em_array *t[10] = {0};
  em_status st;
  if ((st = em_multiply(&t[0], in[0], in[1])) ||       /* x*a */
      (st = em_add(&t[1], t[0], in[2])) ||             /* y = x*a + b */
      (st = em_full_scalar(&t[2], EM_F32, 0.70710678118654752, em_cpu())) ||
      (st = em_multiply(&t[3], t[1], t[2])) ||         /* y/sqrt(2) */
      (st = em_erf(&t[4], t[3])) ||
      (st = em_full_scalar(&t[5], EM_F32, 1.0, em_cpu())) ||
      (st = em_add(&t[6], t[4], t[5])) ||              /* 1 + erf */
      (st = em_multiply(&t[7], t[1], t[6])) ||         /* y*(1 + erf) */
      (st = em_full_scalar(&t[8], EM_F32, 0.5, em_cpu())))
    goto done;
  st = em_multiply(out, t[7], t[8]);
done:
  for (int i = 0; i < 10; i++) em_array_release(t[i]);
  return st;
}

static em_status b_softmax(em_array **out, em_array *const *in) {
  return em_softmax(out, in[0], -1);
}

static em_status b_layer_norm(em_array **out, em_array *const *in) {
  return em_layer_norm(out, in[0], in[1], in[2], 1e-5);
}

static em_status b_sum(em_array **out, em_array *const *in) {
  return em_sum(out, in[0], 0, NULL, false);
}

/* ---- cases ----------------------------------------------------------------- */

#define MAXIN 3
typedef struct {
  const char *name;
  build_fn build;
  int nin;
  const char *in_names[MAXIN];
  int ndim[MAXIN];
  int64_t shape[MAXIN][2];
  double lo, hi; /* range of generated inputs (when no --in) */
} bench_case;

static const bench_case cases[] = {
    {"matmul_1024", b_matmul, 2, {"a", "b"}, {2, 2},
     {{1024, 1024}, {1024, 1024}}, -1, 1},
    {"matmul_2048", b_matmul, 2, {"a", "b"}, {2, 2},
     {{2048, 2048}, {2048, 2048}}, -1, 1},
    {"gelu_16M", b_gelu, 3, {"x", "a", "b"}, {2, 1, 1},
     {{4096, 4096}, {4096, 0}, {4096, 0}}, -2, 2},
    {"softmax_2048", b_softmax, 1, {"x"}, {2}, {{2048, 2048}}, -4, 4},
    {"layer_norm_4096x1024", b_layer_norm, 3, {"x", "w", "b"}, {2, 1, 1},
     {{4096, 1024}, {1024, 0}, {1024, 0}}, -2, 2},
    {"sum_64M", b_sum, 1, {"x"}, {1}, {{67108864, 0}}, 0.1, 1},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

static uint64_t rng = 0x243F6A8885A308D3ull;
static float rand_in(double lo, double hi) { /* xorshift64*, never 0 */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  double u = ((double)((rng * 0x2545F4914F6CDD1Dull) >> 11) + 0.5) /
             9007199254740992.0;
  float v = (float)(lo + (hi - lo) * u);
  return v == 0.0f ? 1e-3f : v;
}

/* Loads or generates one input as an evaluated engine array. */
static em_array *make_input(const bench_case *c, int i, const char *dir) {
  int64_t n = 1;
  for (int d = 0; d < c->ndim[i]; d++) n *= c->shape[i][d];
  size_t nbytes = (size_t)n * sizeof(float);
  float *buf = malloc(nbytes);
  em_array *a = NULL;
  if (!buf) {
    fprintf(stderr, "out of host memory\n");
    return NULL;
  }
  if (dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%s.f32", dir, c->name, c->in_names[i]);
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(buf, 1, nbytes, f) : 0;
    int extra = f ? fgetc(f) != EOF : 0;
    if (f) fclose(f);
    if (!f || got != nbytes || extra) {
      fprintf(stderr, "%s: %s (want %zu bytes of f32)\n", path,
              f ? "wrong size" : "cannot open", nbytes);
      free(buf);
      return NULL;
    }
  } else {
    for (int64_t k = 0; k < n; k++) buf[k] = rand_in(c->lo, c->hi);
  }
  if (em_array_from_data(&a, EM_F32, c->ndim[i], c->shape[i], buf, nbytes,
                         em_cpu()) != EM_OK)
    fprintf(stderr, "[%s] from_data: %s\n", c->name, em_last_error());
  free(buf);
  return a;
}

/* One repetition: build, evaluate, release. Returns seconds or < 0. */
static double run_once(const bench_case *c, em_array *const *in,
                       const char *save) {
  em_array *r = NULL;
  double t0 = now_s();
  CK(c->build(&r, in));
  CK(em_eval(&r, 1));
  if (save) {
    const void *p = em_array_data(r);
    if (!p) {
      fprintf(stderr, "[%s] em_array_data: %s\n", c->name, em_last_error());
      goto fail;
    }
    FILE *f = fopen(save, "wb");
    size_t nb = em_array_nbytes(r);
    if (!f || fwrite(p, 1, nb, f) != nb || fclose(f) != 0) {
      perror(save);
      goto fail;
    }
  }
  em_array_release(r);
  return now_s() - t0;
fail:
  em_array_release(r);
  return -1;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  const char *in_dir = NULL, *out_dir = NULL, *only = NULL;
  double min_time = 1.0;
  for (int i = 1; i < argc; i++) {
    if (i + 1 < argc && !strcmp(argv[i], "--in")) in_dir = argv[++i];
    else if (i + 1 < argc && !strcmp(argv[i], "--out")) out_dir = argv[++i];
    else if (i + 1 < argc && !strcmp(argv[i], "--only")) only = argv[++i];
    else if (i + 1 < argc && !strcmp(argv[i], "--min-time"))
      min_time = atof(argv[++i]);
    else {
      fprintf(stderr,
              "usage: %s [--in DIR] [--out DIR] [--min-time S] [--only NAME]\n",
              argv[0]);
      return 2;
    }
  }
  printf("ENGINE threads=%d\n", em_cpu_num_threads());
  int rc = 0;
  for (int ci = 0; ci < NCASES; ci++) {
    const bench_case *c = &cases[ci];
    if (only && strcmp(only, c->name)) continue;
    em_array *in[MAXIN] = {0};
    double *times = NULL;
    int ok = 1;
    for (int i = 0; i < c->nin && ok; i++) ok = (in[i] = make_input(c, i, in_dir)) != NULL;
    char save[4096];
    if (out_dir) snprintf(save, sizeof save, "%s/%s.f32", out_dir, c->name);
    double w0 = ok ? run_once(c, in, out_dir ? save : NULL) : -1;
    double w1 = w0 >= 0 ? run_once(c, in, NULL) : -1;
    if (w1 < 0) ok = 0;
    int reps = 5;
    if (ok) {
      double want = min_time / (w1 > 1e-6 ? w1 : 1e-6);
      reps = want > 500 ? 500 : want < 5 ? 5 : (int)want;
      times = malloc((size_t)reps * sizeof *times);
      if (!times) ok = 0;
    }
    for (int r = 0; r < reps && ok; r++)
      if ((times[r] = run_once(c, in, NULL)) < 0) ok = 0;
    if (ok) {
      qsort(times, (size_t)reps, sizeof *times, cmp_double);
      double med = reps % 2 ? times[reps / 2]
                            : 0.5 * (times[reps / 2 - 1] + times[reps / 2]);
      printf("RESULT case=%s median_ms=%.4f min_ms=%.4f reps=%d\n", c->name,
             1e3 * med, 1e3 * times[0], reps);
    } else {
      printf("FAILED case=%s\n", c->name);
      rc = 1;
    }
    fflush(stdout);
    free(times);
    for (int i = 0; i < c->nin; i++) em_array_release(in[i]);
    em_memory_clear_cache(em_cpu());
  }
  return rc;
}
