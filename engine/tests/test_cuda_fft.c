/* test_cuda_fft.c — em_fft / em_ifft / em_rfft / em_irfft (and fft2 /
 * ifft2, which compose them through transposed views) on CUDA against the
 * CPU backend (differential, tests/cuda_diff.h), c64 and c128 (rfft from
 * f32/f64, irfft to f32/f64).
 *
 * Covered: powers of two, primes (Bluestein in both backends) and mixed
 * lengths, from 1 up to 2^20; batched rows (rank 1 to 4); transform lengths
 * equal to, longer than (zero padding) and shorter than (truncation) the
 * input rows; irfft inputs shorter and longer than n/2+1, odd and even n,
 * with non-zero imaginary parts at the zero and Nyquist frequencies (which
 * must be ignored); non-contiguous inputs (transposed, sliced, reversed);
 * zero-size batches and an empty input axis; the same plan from several
 * threads with their own streams at once. Tolerances grow like
 * sqrt(n) log2(n) (forward) and that over n (inverse).
 *
 * Without a CUDA device it prints SKIPPED and passes. An EM_ERR_UNSUPPORTED
 * result is a failure here. EMILY_TEST_QUICK=1 skips the largest transforms
 * (for compute-sanitizer). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/array-impl.h"
#include "cpu/cpu-kernels.h"
#include "harness.h"

#include "cuda_diff.h"

enum { K_FFT, K_IFFT, K_RFFT, K_IRFFT };
static const char *KNAME[] = {"fft", "ifft", "rfft", "irfft"};
enum { V_PLAIN, V_TRANSPOSED, V_SLICED, V_REVERSED };
static const char *VNAME[] = {"", " (transposed)", " (sliced)", " (reversed)"};

/* Inputs in [-1, 1] per component: transform errors are about
 * eps * log2(n) * ||x||_2 <= eps * log2(n) * sqrt(2n). */
static double atol_for(em_dtype t, int64_t n, bool inverse) {
  bool dbl = t == EM_C128 || t == EM_F64;
  double lg = log2((double)(n > 1 ? n : 2)) + 1;
  double a = (dbl ? 2e-14 : 4e-6) * sqrt((double)n) * lg;
  return inverse ? a / (double)n + (dbl ? 1e-15 : 1e-7) : a;
}

/* An input of `shape` (last axis = row length) for the variant. */
static pair make_input(em_dtype t, int nd, const int64_t *shape, int variant,
                       rng *r) {
  if (variant == V_TRANSPOSED && nd >= 2) {
    int64_t sw[EM_MAX_NDIM];
    memcpy(sw, shape, sizeof(int64_t) * (size_t)nd);
    sw[nd - 1] = shape[nd - 2];
    sw[nd - 2] = shape[nd - 1];
    pair a = prand(t, nd, sw, r, M_UNIT), q = {NULL, NULL};
    int perm[EM_MAX_NDIM];
    for (int i = 0; i < nd; i++) perm[i] = i;
    perm[nd - 1] = nd - 2;
    perm[nd - 2] = nd - 1;
    em_transpose(&q.c, a.c, perm);
    em_transpose(&q.g, a.g, perm);
    prelease(a);
    return q;
  }
  if (variant == V_SLICED) {
    int64_t big[EM_MAX_NDIM], st[EM_MAX_NDIM], len[EM_MAX_NDIM], step[EM_MAX_NDIM];
    for (int i = 0; i < nd; i++) {
      step[i] = i == nd - 1 ? 3 : 1;
      big[i] = shape[i] * step[i] + 2;
      st[i] = 1;
      len[i] = shape[i] * step[i];
    }
    pair a = prand(t, nd, big, r, M_UNIT), q = {NULL, NULL};
    em_slice(&q.c, a.c, st, len, step);
    em_slice(&q.g, a.g, st, len, step);
    prelease(a);
    return q;
  }
  pair a = prand(t, nd, shape, r, M_UNIT);
  if (variant == V_REVERSED) {
    int axes[2] = {nd - 1, 0};
    pair q = {NULL, NULL};
    em_reverse(&q.c, a.c, nd >= 2 ? 2 : 1, axes);
    em_reverse(&q.g, a.g, nd >= 2 ? 2 : 1, axes);
    prelease(a);
    return q;
  }
  return a;
}

/* One transform of kind k on an input of `shape` to length n. ct is the
 * complex dtype (rfft's input is its real counterpart). */
static void run(int k, em_dtype ct, int nd, const int64_t *shape, int64_t n,
                int variant, rng *r, const char *tag) {
  em_dtype it = k == K_RFFT ? (ct == EM_C128 ? EM_F64 : EM_F32) : ct;
  pair x = make_input(it, nd, shape, variant, r);
  em_array *rc = NULL, *rg = NULL;
  em_status s1, s2;
  switch (k) {
    case K_FFT: s1 = em_fft(&rc, x.c, n); s2 = em_fft(&rg, x.g, n); break;
    case K_IFFT: s1 = em_ifft(&rc, x.c, n); s2 = em_ifft(&rg, x.g, n); break;
    case K_RFFT: s1 = em_rfft(&rc, x.c, n); s2 = em_rfft(&rg, x.g, n); break;
    default: s1 = em_irfft(&rc, x.c, n); s2 = em_irfft(&rg, x.g, n); break;
  }
  char sh[128], what[256];
  em_shape_str(sh, sizeof sh, nd, shape);
  snprintf(what, sizeof what, "%s %s %s n=%lld%s%s", KNAME[k], em_dtype_name(it), sh,
           (long long)n, VNAME[variant], tag);
  record(s1 == EM_OK && s2 == EM_OK, "%s: build: %s", what, em_last_error());
  if (s1 == EM_OK && s2 == EM_OK) {
    bool inv = k == K_IFFT || k == K_IRFFT;
    check_pair(what, rc, rg, 1, atol_for(ct, n, inv));
  }
  em_array_release(rc);
  em_array_release(rg);
  prelease(x);
}

static const em_dtype CT[2] = {EM_C64, EM_C128};

/* Lengths: powers of two, primes, mixed (smooth and not). */
static const int64_t LENS[] = {1,  2,   3,   4,   5,   7,   8,    12,   16,   17,
                               31, 60,  64,  97,  100, 128, 210,  243,  256,  360,
                               509, 1000, 1009, 1024, 2310, 4096, 6561, 10007};
#define NLENS ((int)(sizeof LENS / sizeof LENS[0]))

static void t_lengths(rng *r) {
  for (int ci = 0; ci < 2; ci++)
    for (int li = 0; li < NLENS; li++) {
      int64_t n = LENS[li];
      int64_t rows = n >= 4096 ? 3 : 5;
      for (int k = 0; k < 4; k++) {
        int64_t s2[2] = {rows, k == K_IRFFT ? n / 2 + 1 : n};
        run(k, CT[ci], 2, s2, n, V_PLAIN, r, "");
      }
    }
}

/* Padding and truncation: input rows of L, transform length n. */
static void t_pad_trunc(rng *r) {
  static const int64_t PAIRS[][2] = {{5, 8},   {8, 5},   {7, 16},  {16, 7},  {100, 97},
                                     {97, 100}, {1, 9},  {9, 1},   {30, 64}, {64, 30},
                                     {3, 1000}, {1000, 3}, {513, 1024}, {1024, 513}};
  for (int ci = 0; ci < 2; ci++)
    for (size_t i = 0; i < sizeof PAIRS / sizeof PAIRS[0]; i++) {
      int64_t L = PAIRS[i][0], n = PAIRS[i][1];
      int64_t shape[2] = {4, L};
      for (int k = 0; k < 4; k++) run(k, CT[ci], 2, shape, n, V_PLAIN, r, " (pad/trunc)");
    }
}

/* irfft: inputs shorter and longer than n/2+1, odd and even n. */
static void t_irfft_shapes(rng *r) {
  static const int64_t NS[] = {2, 3, 6, 7, 10, 11, 64, 65, 97, 1000};
  for (int ci = 0; ci < 2; ci++)
    for (size_t i = 0; i < sizeof NS / sizeof NS[0]; i++) {
      int64_t n = NS[i], m = n / 2 + 1;
      int64_t Ls[4] = {1, m - 1 > 0 ? m - 1 : 1, m + 1, 2 * m + 3};
      for (int j = 0; j < 4; j++) {
        int64_t shape[2] = {3, Ls[j]};
        run(K_IRFFT, CT[ci], 2, shape, n, V_PLAIN, r, " (irfft length)");
      }
    }
}

/* Batched rows of every rank, non-contiguous inputs. */
static void t_batched(rng *r) {
  static const int64_t s1[1] = {48}, s3[3] = {3, 4, 30}, s4[4] = {2, 3, 2, 21},
                       s2big[2] = {512, 256}, s2odd[2] = {37, 77};
  for (int ci = 0; ci < 2; ci++)
    for (int k = 0; k < 4; k++) {
      run(k, CT[ci], 1, s1, 48, V_PLAIN, r, "");
      run(k, CT[ci], 3, s3, 30, V_PLAIN, r, "");
      run(k, CT[ci], 4, s4, 21, V_PLAIN, r, "");
      run(k, CT[ci], 2, s2big, 256, V_PLAIN, r, "");
      for (int v = V_TRANSPOSED; v <= V_REVERSED; v++) {
        run(k, CT[ci], 2, s2odd, 77, v, r, "");
        run(k, CT[ci], 3, s3, 40, v, r, "");
        run(k, CT[ci], 3, s3, 17, v, r, "");
      }
    }
}

/* Long rows (one or two) and big batches. */
static void t_large(rng *r) {
  if (quick) return;
  static const int64_t a[1] = {1 << 20}, b[2] = {2, 100003}, c[2] = {4096, 64};
  for (int ci = 0; ci < 2; ci++)
    for (int k = 0; k < 4; k++) {
      run(k, CT[ci], 1, a, 1 << 20, V_PLAIN, r, "");
      run(k, CT[ci], 2, b, 100003, V_PLAIN, r, "");
      run(k, CT[ci], 2, c, 64, V_PLAIN, r, "");
    }
}

/* Zero-size batch, empty rows padded to n. */
static void t_empty(rng *r) {
  static const int64_t zb[2] = {0, 8}, zr[2] = {3, 0};
  for (int ci = 0; ci < 2; ci++)
    for (int k = 0; k < 4; k++) {
      run(k, CT[ci], 2, zb, 8, V_PLAIN, r, " (empty batch)");
      run(k, CT[ci], 2, zr, 6, V_PLAIN, r, " (empty rows)");
      run(k, CT[ci], 2, zr, 1, V_PLAIN, r, " (empty rows)");
    }
}

/* fft2 / ifft2 (the second pass reads a transposed view). */
static void t_2d(rng *r) {
  static const int64_t s[3] = {2, 12, 10};
  static const int64_t nn[][2] = {{12, 10}, {16, 7}, {5, 13}};
  for (int ci = 0; ci < 2; ci++)
    for (size_t i = 0; i < sizeof nn / sizeof nn[0]; i++)
      for (int inv = 0; inv < 2; inv++) {
        pair x = prand(CT[ci], 3, s, r, M_UNIT);
        em_array *rc = NULL, *rg = NULL;
        if (inv) {
          em_ifft2(&rc, x.c, nn[i][0], nn[i][1]);
          em_ifft2(&rg, x.g, nn[i][0], nn[i][1]);
        } else {
          em_fft2(&rc, x.c, nn[i][0], nn[i][1]);
          em_fft2(&rg, x.g, nn[i][0], nn[i][1]);
        }
        char what[128];
        snprintf(what, sizeof what, "%s %s [2,12,10] -> %lldx%lld", inv ? "ifft2" : "fft2",
                 em_dtype_name(CT[ci]), (long long)nn[i][0], (long long)nn[i][1]);
        int64_t n = nn[i][0] * nn[i][1];
        check_pair(what, rc, rg, 1, atol_for(CT[ci], n, inv));
        em_array_release(rc);
        em_array_release(rg);
        prelease(x);
      }
}

/* irfft ignores the imaginary parts of X[0] and (even n) X[n/2]: a
 * spectrum with large ones there gives the same result as without. */
static void t_irfft_hermitian(void) {
  for (int ci = 0; ci < 2; ci++) {
    em_dtype t = CT[ci];
    const int64_t n = 8, m = 5;
    double re[5] = {1, 0.5, -0.25, 2, 0.75}, im[5] = {0, 1, -1, 0.5, 0};
    double v1[10], v2[10];
    for (int j = 0; j < m; j++) {
      v1[2 * j] = v2[2 * j] = re[j];
      v1[2 * j + 1] = v2[2 * j + 1] = im[j];
    }
    v2[1] = 7;  /* Im X[0] */
    v2[9] = -3; /* Im X[n/2] */
    unsigned char b1[80], b2[80];
    em_cpu_cast_kernel(EM_F64, t == EM_C64 ? EM_F32 : EM_F64)(v1, b1, 10);
    em_cpu_cast_kernel(EM_F64, t == EM_C64 ? EM_F32 : EM_F64)(v2, b2, 10);
    int64_t shape[1] = {m};
    em_array *g1 = from(t, 1, shape, b1, CU), *g2 = from(t, 1, shape, b2, CU);
    em_array *c1 = from(t, 1, shape, b1, CPU);
    em_array *o1 = NULL, *o2 = NULL, *oc = NULL;
    em_irfft(&o1, g1, n);
    em_irfft(&o2, g2, n);
    em_irfft(&oc, c1, n);
    char what[64];
    snprintf(what, sizeof what, "irfft %s Hermitian clean-up", em_dtype_name(t));
    check_pair(what, oc, o2, 1, atol_for(t, n, true));
    em_array *both[2] = {o1, o2};
    em_status st = em_eval(both, 2);
    record(st == EM_OK, "%s: eval: %s", what, em_last_error());
    if (st == EM_OK) {
      const void *h1 = em_array_data(o1), *h2 = em_array_data(o2);
      record(h1 && h2 && compare(what, o1->dtype, h2, h1, n, rtol_of(o1->dtype, 1),
                                 atol_for(t, n, true)) == 0,
             "%s: with and without imaginary parts", what);
    }
    em_array_release(g1);
    em_array_release(g2);
    em_array_release(c1);
    em_array_release(o1);
    em_array_release(o2);
    em_array_release(oc);
  }
}

/* ---- several threads at once ------------------------------------------------------ */

static void *thread_main(void *arg) {
  int id = (int)(intptr_t)arg;
  em_stream *s = NULL;
  em_status st = em_stream_new(&s, CU);
  record(st == EM_OK, "stream_new: %s", em_last_error());
  tl_stream = s;
  rng r = {0x3c6ef372fe94f82bull ^ ((uint64_t)(id + 1) * 0x9e3779b97f4a7c15ull)};
  static const int64_t sh[2] = {16, 360}, sh2[2] = {8, 97};
  for (int rep = 0; rep < 8; rep++)
    for (int k = 0; k < 4; k++) {
      run(k, CT[(rep + id) % 2], 2, sh, 360, V_PLAIN, &r, " (threaded)");
      run(k, CT[(rep + id + 1) % 2], 2, sh2, 97, V_PLAIN, &r, " (threaded)");
    }
  tl_stream = NULL;
  em_stream_free(s);
  return NULL;
}

int main(void) {
  if (!cuda_diff_have_device("test_cuda_fft")) return 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  quick = getenv("EMILY_TEST_QUICK") != NULL;
  rng r = {0x243f6a8885a308d3ull};

  t_lengths(&r);
  printf("lengths: %d checks, %d failed\n", th_checks, th_failures);
  t_pad_trunc(&r);
  printf("padding/truncation: %d checks, %d failed\n", th_checks, th_failures);
  t_irfft_shapes(&r);
  t_irfft_hermitian();
  printf("irfft shapes: %d checks, %d failed\n", th_checks, th_failures);
  t_batched(&r);
  printf("batched/views: %d checks, %d failed\n", th_checks, th_failures);
  t_empty(&r);
  t_2d(&r);
  printf("empty/2d: %d checks, %d failed\n", th_checks, th_failures);
  t_large(&r);
  printf("large: %d checks, %d failed\n", th_checks, th_failures);

  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    pthread_create(&th[i], NULL, thread_main, (void *)(intptr_t)i);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  printf("threaded: %d checks, %d failed\n", th_checks, th_failures);

  cuda_diff_summary();
  record(g_unsupported == 0, "fft reported EM_ERR_UNSUPPORTED for %d cases: %s",
         g_unsupported, g_unsup_list);
  return TEST_SUMMARY();
}
