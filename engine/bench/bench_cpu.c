/* bench_cpu.c — times the engine on the CPU for a few standard workloads.
 *
 *   bench_cpu [--in DIR] [--out DIR] [--min-time S] [--only NAME]
 *
 * --in DIR: read each input from DIR/<case>.<input>.<dtype> (raw
 *           little-endian, row-major, dtype f32 s32 s64 f64 or c64 as the
 *           case says; bench/run_cpu.py writes them with numpy), else
 *           generate random inputs here.
 * --out DIR: write each case's result to DIR/<case>.<dtype> for checking
 *           (multi-output cases, qr and svd: DIR/<case>.<k>.<dtype>).
 *
 * Each repetition builds a fresh graph from the already materialised
 * inputs, evaluates it (em_eval), and releases the result: the time covers
 * graph building, evaluation and release. Two warm-up runs (the first one's
 * result is written out), then max(5, min-time / warm-up time) timed runs,
 * capped at 500. Prints one machine-readable line per case:
 *
 *   RESULT case=NAME median_ms=T min_ms=T reps=N
 *
 * Cases: matmul, gelu, softmax, layer-norm, sum (f32); conv2d 3x3 and 3x3
 * max-pool (stride 1 and 2, padding 1) on [32,64,56,56] f32; sort of 1M
 * f32; FFT of 1M c64; cholesky, qr, svd of 512x512 f64; em_take of 1M
 * rows of a [100000,256] f32 table (s32 and s64 indices).
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

/* Convolution 3x3, stride 1, padding 1 on both sides of each spatial
 * axis ("same"), NCHW / OIHW (the engine's canonical layouts). */
static em_status b_conv3x3(em_array **out, em_array *const *in) {
  em_conv_params p;
  memset(&p, 0, sizeof p);
  p.nspatial = 2;
  for (int d = 0; d < 2; d++) {
    p.strides[d] = 1;
    p.pad_lo[d] = p.pad_hi[d] = 1;
    p.input_dilation[d] = p.kernel_dilation[d] = 1;
  }
  p.feature_group_size = p.batch_group_size = 1;
  return em_conv(out, in[0], in[1], &p);
}

/* 3x3 max-pool over the two spatial axes of NCHW, padding 1 on each side
 * (the identity, -inf, fills it); stride s. */
static em_status maxpool3x3(em_array **out, em_array *x, int64_t s) {
  em_window w;
  memset(&w, 0, sizeof w);
  for (int i = 0; i < 4; i++) {
    w.window[i] = i < 2 ? 1 : 3;
    w.strides[i] = i < 2 ? 1 : s;
    w.pad_lo[i] = w.pad_hi[i] = i < 2 ? 0 : 1;
    w.dilations[i] = 1;
  }
  return em_window_max(out, x, &w);
}
static em_status b_maxpool_s1(em_array **out, em_array *const *in) {
  return maxpool3x3(out, in[0], 1);
}
static em_status b_maxpool_s2(em_array **out, em_array *const *in) {
  return maxpool3x3(out, in[0], 2);
}

static em_status b_sort(em_array **out, em_array *const *in) {
  return em_sort(out, in[0], 0, false);
}

static em_status b_fft(em_array **out, em_array *const *in) {
  return em_fft(out, in[0], em_array_shape(in[0])[0]);
}

static em_status b_cholesky(em_array **out, em_array *const *in) {
  return em_cholesky(out, in[0]);
}

/* Multi-output builders fill out[0..nout). */
static em_status b_qr(em_array **out, em_array *const *in) {
  return em_qr(&out[0], &out[1], in[0], false);
}

static em_status b_svd(em_array **out, em_array *const *in) {
  return em_svd(&out[0], &out[1], &out[2], in[0], false);
}

/* Nx.take(table, idx, axis: 0) maps to em_take. */
static em_status b_take(em_array **out, em_array *const *in) {
  return em_take(out, in[0], in[1], 0);
}

/* ---- cases ----------------------------------------------------------------- */

#define MAXIN 3
#define MAXOUT 3
#define MAXDIM 4
typedef struct {
  const char *name;
  build_fn build;
  int nin;
  const char *in_names[MAXIN];
  int ndim[MAXIN];
  int64_t shape[MAXIN][MAXDIM];
  double lo, hi;   /* range of generated float inputs (when no --in) */
  int nout;        /* results (0 means 1) */
  em_dtype dtype[MAXIN]; /* input dtypes (inputs with F32 need not say) */
  int64_t imax;    /* generated integer inputs: uniform in [0, imax) */
  void (*prep)(double *a, int64_t n); /* generated f64 input 0, n x n */
} bench_case;

/* Turns an n x n matrix B (row-major) into B B^T / n + I: symmetric
 * positive definite, eigenvalues in about [1, 5]. */
static void make_spd(double *a, int64_t n) {
  double *b = malloc((size_t)(n * n) * sizeof *b);
  if (!b) return;
  memcpy(b, a, (size_t)(n * n) * sizeof *b);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j <= i; j++) {
      double s = 0;
      for (int64_t k = 0; k < n; k++) s += b[i * n + k] * b[j * n + k];
      a[i * n + j] = a[j * n + i] = s / (double)n + (i == j);
    }
  free(b);
}

static const bench_case cases[] = {
    {"matmul_1024", b_matmul, 2, {"a", "b"}, {2, 2},
     {{1024, 1024}, {1024, 1024}}, -1, 1, 1, {EM_F32, EM_F32}, 0, NULL},
    {"matmul_2048", b_matmul, 2, {"a", "b"}, {2, 2},
     {{2048, 2048}, {2048, 2048}}, -1, 1, 1, {EM_F32, EM_F32}, 0, NULL},
    {"gelu_16M", b_gelu, 3, {"x", "a", "b"}, {2, 1, 1},
     {{4096, 4096}, {4096, 0}, {4096, 0}}, -2, 2, 1,
     {EM_F32, EM_F32, EM_F32}, 0, NULL},
    {"softmax_2048", b_softmax, 1, {"x"}, {2}, {{2048, 2048}}, -4, 4, 1,
     {EM_F32}, 0, NULL},
    {"layer_norm_4096x1024", b_layer_norm, 3, {"x", "w", "b"}, {2, 1, 1},
     {{4096, 1024}, {1024, 0}, {1024, 0}}, -2, 2, 1,
     {EM_F32, EM_F32, EM_F32}, 0, NULL},
    {"sum_64M", b_sum, 1, {"x"}, {1}, {{67108864, 0}}, 0.1, 1, 1, {EM_F32},
     0, NULL},
    {"conv2d_3x3_32x64x56x56", b_conv3x3, 2, {"x", "w"}, {4, 4},
     {{32, 64, 56, 56}, {64, 64, 3, 3}}, -1, 1, 1, {EM_F32, EM_F32}, 0,
     NULL},
    {"maxpool_3x3_s1", b_maxpool_s1, 1, {"x"}, {4}, {{32, 64, 56, 56}}, -2,
     2, 1, {EM_F32}, 0, NULL},
    {"maxpool_3x3_s2", b_maxpool_s2, 1, {"x"}, {4}, {{32, 64, 56, 56}}, -2,
     2, 1, {EM_F32}, 0, NULL},
    {"sort_f32_1M", b_sort, 1, {"x"}, {1}, {{1 << 20}}, -2, 2, 1, {EM_F32},
     0, NULL},
    {"fft_c64_1M", b_fft, 1, {"x"}, {1}, {{1 << 20}}, -1, 1, 1, {EM_C64}, 0,
     NULL},
    {"cholesky_f64_512", b_cholesky, 1, {"a"}, {2}, {{512, 512}}, -1, 1, 1,
     {EM_F64}, 0, make_spd},
    {"qr_f64_512", b_qr, 1, {"a"}, {2}, {{512, 512}}, -1, 1, 2, {EM_F64}, 0,
     NULL},
    {"svd_f64_512", b_svd, 1, {"a"}, {2}, {{512, 512}}, -1, 1, 3, {EM_F64},
     0, NULL},
    {"take_rows_s32_1M", b_take, 2, {"table", "idx"}, {2, 1},
     {{100000, 256}, {1 << 20}}, -1, 1, 1, {EM_F32, EM_S32}, 100000, NULL},
    {"take_rows_s64_1M", b_take, 2, {"table", "idx"}, {2, 1},
     {{100000, 256}, {1 << 20}}, -1, 1, 1, {EM_F32, EM_S64}, 100000, NULL},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

static uint64_t rng = 0x243F6A8885A308D3ull;
static double rand_u(void) { /* xorshift64*, uniform in (0, 1) */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return ((double)((rng * 0x2545F4914F6CDD1Dull) >> 11) + 0.5) /
         9007199254740992.0;
}
static float rand_in(double lo, double hi) { /* never 0 */
  float v = (float)(lo + (hi - lo) * rand_u());
  return v == 0.0f ? 1e-3f : v;
}

/* Loads or generates one input as an evaluated engine array. Files are
 * DIR/<case>.<input>.<dtype name> (raw little-endian, row-major). */
static em_array *make_input(const bench_case *c, int i, const char *dir) {
  em_dtype t = c->dtype[i];
  int64_t n = 1;
  for (int d = 0; d < c->ndim[i]; d++) n *= c->shape[i][d];
  size_t nbytes = (size_t)n * em_dtype_size(t);
  unsigned char *buf = malloc(nbytes ? nbytes : 1);
  em_array *a = NULL;
  if (!buf) {
    fprintf(stderr, "out of host memory\n");
    return NULL;
  }
  if (dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%s.%s", dir, c->name, c->in_names[i],
             em_dtype_name(t));
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(buf, 1, nbytes, f) : 0;
    int extra = f ? fgetc(f) != EOF : 0;
    if (f) fclose(f);
    if (!f || got != nbytes || extra) {
      fprintf(stderr, "%s: %s (want %zu bytes of %s)\n", path,
              f ? "wrong size" : "cannot open", nbytes, em_dtype_name(t));
      free(buf);
      return NULL;
    }
  } else {
    for (int64_t k = 0; k < n; k++) {
      switch (t) {
        case EM_F32: ((float *)buf)[k] = rand_in(c->lo, c->hi); break;
        case EM_C64:
          ((float *)buf)[2 * k] = rand_in(c->lo, c->hi);
          ((float *)buf)[2 * k + 1] = rand_in(c->lo, c->hi);
          break;
        case EM_F64:
          ((double *)buf)[k] = c->lo + (c->hi - c->lo) * rand_u();
          break;
        case EM_S32:
          ((int32_t *)buf)[k] = (int32_t)(rand_u() * (double)c->imax);
          break;
        default: /* EM_S64 */
          ((int64_t *)buf)[k] = (int64_t)(rand_u() * (double)c->imax);
          break;
      }
    }
    if (c->prep && i == 0) c->prep((double *)buf, c->shape[0][0]);
  }
  if (em_array_from_data(&a, t, c->ndim[i], c->shape[i], buf, nbytes,
                         em_cpu()) != EM_OK)
    fprintf(stderr, "[%s] from_data: %s\n", c->name, em_last_error());
  free(buf);
  return a;
}

/* One repetition: build, evaluate, release. Returns seconds or < 0.
 * save: a path prefix; result k is written to <save>.<dtype> (one result)
 * or <save>.<k>.<dtype>. */
static double run_once(const bench_case *c, em_array *const *in,
                       const char *save) {
  em_array *r[MAXOUT] = {0};
  int nout = c->nout > 0 ? c->nout : 1;
  double t0 = now_s();
  CK(c->build(r, in));
  CK(em_eval(r, nout));
  for (int k = 0; save && k < nout; k++) {
    char path[4200];
    if (nout == 1)
      snprintf(path, sizeof path, "%s.%s", save, em_dtype_name(em_array_dtype(r[k])));
    else
      snprintf(path, sizeof path, "%s.%d.%s", save, k,
               em_dtype_name(em_array_dtype(r[k])));
    const void *p = em_array_data(r[k]);
    if (!p) {
      fprintf(stderr, "[%s] em_array_data: %s\n", c->name, em_last_error());
      goto fail;
    }
    FILE *f = fopen(path, "wb");
    size_t nb = em_array_nbytes(r[k]);
    if (!f || fwrite(p, 1, nb, f) != nb || fclose(f) != 0) {
      perror(path);
      goto fail;
    }
  }
  for (int k = 0; k < nout; k++) em_array_release(r[k]);
  return now_s() - t0;
fail:
  for (int k = 0; k < MAXOUT; k++) em_array_release(r[k]);
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
  int rc = 0, matched = 0;
  for (int ci = 0; ci < NCASES; ci++) {
    const bench_case *c = &cases[ci];
    if (only && strcmp(only, c->name)) continue;
    matched++;
    em_array *in[MAXIN] = {0};
    double *times = NULL;
    int ok = 1;
    for (int i = 0; i < c->nin && ok; i++) ok = (in[i] = make_input(c, i, in_dir)) != NULL;
    char save[4096];
    if (out_dir) snprintf(save, sizeof save, "%s/%s", out_dir, c->name);
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
  if (!matched) {
    fprintf(stderr, "no case named %s; cases:", only);
    for (int ci = 0; ci < NCASES; ci++) fprintf(stderr, " %s", cases[ci].name);
    fprintf(stderr, "\n");
    return 2;
  }
  return rc;
}
