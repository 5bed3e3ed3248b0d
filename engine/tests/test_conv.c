/* test_conv.c — em_conv (Nx.conv semantics) through the public API against
 * a naive direct convolution written here: per output element, it walks
 * the *dilated* kernel window over the *dilated and padded* input exactly
 * as Nx's BinaryBackend does (holes of either dilation contribute nothing,
 * padding reads zero, negative padding crops), in double (floats; the sum
 * of |terms| sets the tolerance), double pairs (complex, no conjugation)
 * and uint64 arithmetic reduced modulo 2^bits (integers, compared bit for
 * bit, on random full-range bits so wrap-around is exercised).
 *
 * Covered: 1d/2d/3d; strides; symmetric, asymmetric and negative padding;
 * input and kernel dilation; feature groups (grouped, depthwise) and batch
 * groups (output batch N/b, output channel o reads batch n + (o/(O/b)) *
 * (N/b)); input/kernel/output permutations; non-contiguous inputs; every
 * dtype; 1x1 kernels (no im2col); zero-size shapes; problems large enough
 * for the thread pool and for the im2col buffer to be split into blocks of
 * output positions (checked on a sample of elements); Nx.conv's doc
 * examples as hand values; error statuses and "[conv]" messages. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emily.h"
#include "harness.h"
#include "ref.h"

/* ---- configurations ------------------------------------------------------ */

typedef struct {
  int nd;                       /* rank (>= 3) */
  int64_t ish[EM_MAX_NDIM];     /* canonical input shape [N, C, s...] */
  int64_t ksh[EM_MAX_NDIM];     /* canonical kernel shape [O, Ck, k...] */
  int64_t s[EM_MAX_NDIM], lo[EM_MAX_NDIM], hi[EM_MAX_NDIM];
  int64_t id[EM_MAX_NDIM], kd[EM_MAX_NDIM];
  int64_t fg, bg;
  const int *ip, *kp, *op; /* permutations (NULL: identity) */
} cfg;

/* Fills missing options with their defaults (1 / 0). */
static cfg cfg_norm(cfg c) {
  for (int d = 0; d < c.nd - 2; d++) {
    if (!c.s[d]) c.s[d] = 1;
    if (!c.id[d]) c.id[d] = 1;
    if (!c.kd[d]) c.kd[d] = 1;
  }
  if (!c.fg) c.fg = 1;
  if (!c.bg) c.bg = 1;
  return c;
}

static em_conv_params params_of(const cfg *c) {
  em_conv_params p;
  memset(&p, 0, sizeof p);
  p.nspatial = c->nd - 2;
  for (int d = 0; d < c->nd - 2; d++) {
    p.strides[d] = c->s[d];
    p.pad_lo[d] = c->lo[d];
    p.pad_hi[d] = c->hi[d];
    p.input_dilation[d] = c->id[d];
    p.kernel_dilation[d] = c->kd[d];
  }
  p.feature_group_size = c->fg;
  p.batch_group_size = c->bg;
  p.input_permutation = c->ip;
  p.kernel_permutation = c->kp;
  p.output_permutation = c->op;
  return p;
}

/* Canonical output shape by Nx.Shape.conv's rule. */
static void out_shape(const cfg *c, int64_t *osh) {
  osh[0] = c->ish[0] / c->bg;
  osh[1] = c->ksh[0];
  for (int d = 0; d < c->nd - 2; d++) {
    int64_t n = c->ish[2 + d], k = c->ksh[2 + d];
    int64_t padded = n + (n - 1) * (c->id[d] - 1) + c->lo[d] + c->hi[d];
    int64_t win = k + (k - 1) * (c->kd[d] - 1);
    double q = floor((double)(padded - win) / (double)c->s[d]);
    osh[2 + d] = (int64_t)q + 1;
  }
}

/* ---- the reference ------------------------------------------------------- */

typedef struct {
  tv v;          /* the value, already in the dtype (ints wrapped) */
  double abssum; /* sum of |x * w| over the terms (floats, complex) */
} refval;

/* out[n, o, pos...] of the canonical convolution of canonical hosts. */
static refval ref_at(const cfg *c, const host *in, const host *k,
                     const int64_t *oidx) {
  const int ns = c->nd - 2;
  const em_dtype t = in->t;
  const int64_t NB = c->ish[0] / c->bg, O = c->ksh[0], Ck = c->ksh[1];
  const int64_t G = c->fg * c->bg, Og = O / G;
  int64_t n = oidx[0], o = oidx[1], grp = o / Og;
  int64_t b = c->bg > 1 ? n + grp * NB : n;
  int64_t c0 = c->fg > 1 ? grp * Ck : 0;
  int64_t win[EM_MAX_NDIM], dil[EM_MAX_NDIM], wn = 1;
  for (int d = 0; d < ns; d++) {
    win[d] = c->ksh[2 + d] + (c->ksh[2 + d] - 1) * (c->kd[d] - 1);
    dil[d] = c->ish[2 + d] + (c->ish[2 + d] - 1) * (c->id[d] - 1);
    wn *= win[d] > 0 ? win[d] : 0;
  }
  uint64_t iacc = 0;
  double re = 0, im = 0, abssum = 0;
  int64_t widx[EM_MAX_NDIM], ii[EM_MAX_NDIM], ki[EM_MAX_NDIM];
  for (int64_t ch = 0; ch < Ck; ch++) {
    for (int64_t f = 0; f < wn; f++) {
      unflat(f, ns, win, widx);
      bool hole = false;
      ii[0] = b;
      ii[1] = c0 + ch;
      ki[0] = o;
      ki[1] = ch;
      for (int d = 0; d < ns && !hole; d++) {
        /* kernel: dilated position widx -> a kernel element or a hole */
        if (widx[d] % c->kd[d] != 0) hole = true;
        ki[2 + d] = widx[d] / c->kd[d];
        /* input: padded position -> dilated position -> element or zero */
        int64_t q = oidx[2 + d] * c->s[d] + widx[d] - c->lo[d];
        if (q < 0 || q >= dil[d] || q % c->id[d] != 0) hole = true;
        ii[2 + d] = q / c->id[d];
      }
      if (hole) continue;
      tv x = in->v[flat(c->nd, in->sh, ii)];
      tv w = k->v[flat(c->nd, k->sh, ki)];
      if (dt_int(t)) {
        iacc += (uint64_t)x.i * (uint64_t)w.i;
      } else if (dt_flt(t)) {
        re += x.re * w.re;
        abssum += fabs(x.re * w.re);
      } else {
        re += x.re * w.re - x.im * w.im;
        im += x.re * w.im + x.im * w.re;
        abssum += hypot(x.re, x.im) * hypot(w.re, w.im);
      }
    }
  }
  refval r;
  r.abssum = abssum;
  if (dt_int(t)) r.v = tv_i(wrap_int(t, iacc));
  else if (dt_flt(t)) r.v = tv_f(round_to(t, re));
  else r.v = tv_c(round_to(t, re), round_to(t, im));
  return r;
}

/* Accumulation error allowed, relative to the sum of |terms| (f16/bf16
 * accumulate in f32 and round once; that rounding is rtol_of's part). */
static double acc_tol(em_dtype t) {
  switch (t) {
    case EM_F16: case EM_BF16: case EM_F32: case EM_C64: return 2e-6;
    case EM_F64: case EM_C128: return 1e-14;
    default: return 0;
  }
}

/* ---- one checked convolution --------------------------------------------- */

static double g_lo = -2, g_hi = 2; /* value range of random floats */

/* Random host in the caller layout whose perm-transpose has the canonical
 * shape csh; returns the canonical host in *canon. */
static host caller_host(em_dtype t, int nd, const int64_t *csh,
                        const int *perm, host *canon) {
  int64_t sh[EM_MAX_NDIM];
  int pn[EM_MAX_NDIM];
  for (int i = 0; i < nd; i++) {
    pn[i] = perm ? (perm[i] < 0 ? perm[i] + nd : perm[i]) : i;
    sh[pn[i]] = csh[i];
  }
  host h = h_new(t, nd, sh);
  if (dt_int(t))
    for (int64_t i = 0; i < h.n; i++) h.v[i] = rnd_bits(t);
  else
    h_rand(&h, g_lo, g_hi);
  *canon = h_transpose(&h, pn); /* (h_transpose(NULL) would reverse) */
  return h;
}

/* Runs em_conv on arrays a (input) and k (kernel) in the caller layouts
 * and checks every output element (sample == 0) or `sample` random ones
 * plus the first and last, against the reference on the canonical hosts. */
static void check_conv(const char *what, const cfg *c, em_array *a,
                       em_array *k, const host *cin, const host *ck,
                       int64_t sample) {
  em_conv_params p = params_of(c);
  em_array *r = SENTINEL;
  em_status st = em_conv(&r, a, k, &p);
  if (st != EM_OK) {
    CHECK(0, "%s (%s): em_conv failed: %s", what, dn(cin->t), em_last_error());
    return;
  }
  const int nd = c->nd;
  int64_t csh[EM_MAX_NDIM], fsh[EM_MAX_NDIM];
  out_shape(c, csh);
  int inv[EM_MAX_NDIM];
  for (int i = 0; i < nd; i++) {
    int ax = c->op ? c->op[i] : i;
    inv[ax < 0 ? ax + nd : ax] = i;
  }
  for (int i = 0; i < nd; i++) fsh[i] = csh[inv[i]];
  bool same = em_array_ndim(r) == nd && em_array_dtype(r) == cin->t;
  for (int i = 0; same && i < nd; i++) same = em_array_shape(r)[i] == fsh[i];
  if (!same) {
    char b1[128], b2[128];
    fmt_shape(b1, sizeof b1, em_array_ndim(r), em_array_shape(r));
    fmt_shape(b2, sizeof b2, nd, fsh);
    CHECK(0, "%s (%s): result %s %s, want %s %s", what, dn(cin->t),
          dn(em_array_dtype(r)), b1, dn(cin->t), b2);
    em_array_release(r);
    return;
  }
  host g;
  if (!h_read(r, &g)) {
    CHECK(0, "%s (%s): evaluation failed: %s", what, dn(cin->t),
          em_last_error());
    h_free(&g);
    em_array_release(r);
    return;
  }
  const em_dtype t = cin->t;
  int64_t total = g.n, count = sample > 0 && sample < total ? sample : total;
  int64_t nbad = 0, fidx[EM_MAX_NDIM], cidx[EM_MAX_NDIM];
  for (int64_t s = 0; s < count; s++) {
    int64_t f = count == total ? s
                : s == 0       ? 0
                : s == 1       ? total - 1
                               : (int64_t)(rng_u64() % (uint64_t)total);
    unflat(f, nd, fsh, fidx);
    for (int i = 0; i < nd; i++) cidx[inv[i]] = fidx[i];
    refval want = ref_at(c, cin, ck, cidx);
    double atol = acc_tol(t) * want.abssum + atol_of(t);
    if (!val_close(t, g.v[f], want.v, rtol_of(t), atol, 0)) {
      if (nbad++ == 0) {
        char b1[128], b2[128], is[128];
        fmt_tv(b1, sizeof b1, t, g.v[f]);
        fmt_tv(b2, sizeof b2, t, want.v);
        fmt_shape(is, sizeof is, nd, fidx);
        CHECK(0, "%s (%s): element %s: got %s, want %s", what, dn(t), is, b1,
              b2);
      }
    }
  }
  if (nbad == 0) CHECK(1, "ok");
  else if (nbad > 1)
    fprintf(stderr, "  ... %lld of %lld checked elements differ\n",
            (long long)nbad, (long long)count);
  h_free(&g);
  em_array_release(r);
}

/* Random input and kernel for cfg (in their caller layouts), checked. */
static void run_cfg(const char *what, cfg c0, em_dtype t, int64_t sample) {
  cfg c = cfg_norm(c0);
  host cin, ck;
  host hin = caller_host(t, c.nd, c.ish, c.ip, &cin);
  host hk = caller_host(t, c.nd, c.ksh, c.kp, &ck);
  em_array *a = h_array(&hin), *k = h_array(&hk);
  check_conv(what, &c, a, k, &cin, &ck, sample);
  em_array_release(a);
  em_array_release(k);
  h_free(&hin);
  h_free(&hk);
  h_free(&cin);
  h_free(&ck);
}

static const em_dtype FLOATS[] = {EM_F32, EM_F64, EM_F16, EM_BF16, EM_C64,
                                  EM_C128};
#define NFLOATS 6

/* The cfg in every dtype (ints on full-range bits). */
static void run_all(const char *what, cfg c) {
  for (int i = 0; i < N_ALL_DTYPES; i++) run_cfg(what, c, ALL_DTYPES[i], 0);
}
static void run_floats(const char *what, cfg c) {
  for (int i = 0; i < NFLOATS; i++) run_cfg(what, c, FLOATS[i], 0);
}

/* ---- cases --------------------------------------------------------------- */

static void test_1d(void) {
  run_all("1d basic", (cfg){.nd = 3, .ish = {2, 3, 7}, .ksh = {4, 3, 3}});
  run_all("1d stride/pad/dilations",
          (cfg){.nd = 3, .ish = {2, 3, 7}, .ksh = {4, 3, 3}, .s = {2},
                .lo = {1}, .hi = {2}, .id = {3}, .kd = {2}});
  run_floats("1d negative padding",
             (cfg){.nd = 3, .ish = {2, 2, 9}, .ksh = {5, 2, 2}, .lo = {-2},
                   .hi = {1}, .s = {3}});
  run_floats("1d input dilation + negative pad",
             (cfg){.nd = 3, .ish = {1, 3, 5}, .ksh = {4, 3, 2}, .id = {2},
                   .lo = {-1}, .hi = {-2}});
  /* kernel larger than the input, all from padding */
  run_floats("1d wide kernel",
             (cfg){.nd = 3, .ish = {3, 4, 3}, .ksh = {6, 4, 5}, .lo = {3},
                   .hi = {4}, .kd = {2}});
}

static void test_2d(void) {
  run_all("2d 3x3 pad 1",
          (cfg){.nd = 4, .ish = {2, 5, 6, 7}, .ksh = {4, 5, 3, 3},
                .lo = {1, 1}, .hi = {1, 1}});
  run_all("2d asymmetric",
          (cfg){.nd = 4, .ish = {2, 3, 7, 6}, .ksh = {5, 3, 2, 3},
                .s = {2, 1}, .lo = {0, 1}, .hi = {2, 0}, .kd = {1, 2},
                .id = {2, 1}});
  run_floats("2d negative padding",
             (cfg){.nd = 4, .ish = {2, 4, 8, 9}, .ksh = {4, 4, 3, 2},
                   .lo = {-1, 2}, .hi = {1, -2}, .s = {1, 2}});
  run_floats("2d strides > kernel",
             (cfg){.nd = 4, .ish = {3, 4, 11, 10}, .ksh = {8, 4, 2, 2},
                   .s = {3, 4}, .lo = {1, 0}, .hi = {0, 1}});
  run_floats("2d both dilations and strides",
             (cfg){.nd = 4, .ish = {2, 4, 6, 5}, .ksh = {4, 4, 3, 2},
                   .s = {2, 3}, .id = {2, 3}, .kd = {3, 2}, .lo = {2, 1},
                   .hi = {1, 3}});
}

static void test_3d(void) {
  run_all("3d",
          (cfg){.nd = 5, .ish = {2, 3, 4, 5, 6}, .ksh = {4, 3, 2, 3, 2},
                .s = {1, 2, 1}, .lo = {1, 0, -1}, .hi = {0, 2, 1},
                .kd = {1, 1, 2}, .id = {2, 1, 1}});
  run_floats("3d 3x3x3 same",
             (cfg){.nd = 5, .ish = {2, 4, 5, 5, 5}, .ksh = {8, 4, 3, 3, 3},
                   .lo = {1, 1, 1}, .hi = {1, 1, 1}});
  run_floats("4d",
             (cfg){.nd = 6, .ish = {1, 2, 3, 4, 3, 4},
                   .ksh = {4, 2, 2, 2, 2, 3}, .s = {1, 2, 1, 1},
                   .lo = {0, 1, 1, 0}, .hi = {1, 0, 0, 2}});
}

static void test_groups(void) {
  /* Og = 2 (loop strategy for floats) */
  run_all("feature groups 3",
          (cfg){.nd = 4, .ish = {2, 6, 5, 5}, .ksh = {6, 2, 3, 3}, .fg = 3,
                .lo = {1, 0}, .hi = {0, 1}});
  /* depthwise, channel multiplier 1 and 2 */
  run_all("depthwise",
          (cfg){.nd = 4, .ish = {2, 4, 6, 6}, .ksh = {4, 1, 3, 3}, .fg = 4,
                .lo = {1, 1}, .hi = {1, 1}, .s = {2, 1}});
  run_floats("depthwise x2",
             (cfg){.nd = 4, .ish = {2, 3, 5, 6}, .ksh = {6, 1, 2, 3}, .fg = 3,
                   .kd = {2, 1}});
  /* Og = 4, K large enough for BLAS */
  run_floats("feature groups 2 (blas)",
             (cfg){.nd = 4, .ish = {3, 8, 6, 7}, .ksh = {8, 4, 3, 3}, .fg = 2,
                   .lo = {1, 1}, .hi = {1, 1}});
  run_floats("feature groups 1d",
             (cfg){.nd = 3, .ish = {2, 6, 9}, .ksh = {12, 3, 3}, .fg = 2,
                   .s = {2}, .id = {2}});
  /* batch groups: out[n, o] reads batch n + (o / (O/b)) * (N/b) */
  run_all("batch groups 3",
          (cfg){.nd = 4, .ish = {6, 2, 5, 4}, .ksh = {6, 2, 2, 2}, .bg = 3});
  run_floats("batch groups (blas)",
             (cfg){.nd = 4, .ish = {4, 3, 6, 5}, .ksh = {8, 3, 3, 3}, .bg = 2,
                   .lo = {1, 1}, .hi = {1, 0}, .s = {1, 2}});
  run_floats("batch groups = N",
             (cfg){.nd = 3, .ish = {4, 3, 8}, .ksh = {4, 3, 3}, .bg = 4,
                   .kd = {2}});
  run_floats("batch groups 1x1",
             (cfg){.nd = 4, .ish = {4, 5, 3, 3}, .ksh = {8, 5, 1, 1},
                   .bg = 2});
}

static void test_pointwise(void) {
  run_all("1x1", (cfg){.nd = 4, .ish = {3, 5, 4, 6}, .ksh = {7, 5, 1, 1}});
  run_floats("1x1 grouped",
             (cfg){.nd = 4, .ish = {2, 8, 4, 3}, .ksh = {8, 4, 1, 1},
                   .fg = 2});
  run_floats("1x1 strided",
             (cfg){.nd = 4, .ish = {2, 5, 7, 6}, .ksh = {6, 5, 1, 1},
                   .s = {2, 3}});
  run_floats("1x1 padded",
             (cfg){.nd = 4, .ish = {2, 5, 3, 3}, .ksh = {6, 5, 1, 1},
                   .lo = {1, 0}, .hi = {0, 2}});
  run_floats("1x1 1d", (cfg){.nd = 3, .ish = {4, 9, 10}, .ksh = {16, 9, 1}});
  /* >= 1024 positions: the input image itself is the col matrix */
  run_floats("1x1 direct",
             (cfg){.nd = 4, .ish = {2, 8, 40, 32}, .ksh = {12, 8, 1, 1}});
  run_floats("1x1 direct grouped",
             (cfg){.nd = 4, .ish = {3, 8, 32, 33}, .ksh = {8, 4, 1, 1},
                   .fg = 2});
  run_floats("1x1 direct batch groups",
             (cfg){.nd = 3, .ish = {4, 6, 1100}, .ksh = {8, 6, 1}, .bg = 2});
}

static const int NHWC[] = {0, 3, 1, 2};
static const int HWIO[] = {3, 2, 0, 1};
static const int ODD4[] = {2, 0, 3, 1};
static const int ODD3[] = {1, 2, 0};
static const int NEG4[] = {-4, -1, -3, -2}; /* == NHWC */
static const int P5[] = {4, 0, 2, 1, 3};

static const int NLC[] = {0, 2, 1};
static const int NDHWC[] = {0, 4, 1, 2, 3};

static void test_permutations(void) {
  /* channels-last inputs larger than the 32x32 transposition tiles */
  const em_dtype cl[] = {EM_F32, EM_BF16, EM_S16, EM_C128, EM_U8};
  for (int i = 0; i < 5; i++)
    run_cfg("channels-last 2d",
            (cfg){.nd = 4, .ish = {3, 40, 20, 17}, .ksh = {8, 40, 3, 3},
                  .lo = {1, 1}, .hi = {1, 0}, .s = {1, 2}, .ip = NHWC,
                  .kp = HWIO, .op = NHWC},
            cl[i], 1500);
  run_cfg("channels-last 1d",
          (cfg){.nd = 3, .ish = {2, 33, 70}, .ksh = {6, 33, 4}, .kd = {2},
                .ip = NLC, .kp = NLC, .op = NLC},
          EM_F64, 0);
  run_cfg("channels-last 3d grouped",
          (cfg){.nd = 5, .ish = {2, 36, 5, 6, 7}, .ksh = {12, 12, 2, 3, 2},
                .fg = 3, .lo = {0, 1, 1}, .hi = {1, 1, 0}, .ip = NDHWC,
                .op = NDHWC},
          EM_F32, 1500);

  run_all("NHWC / HWIO / NHWC",
          (cfg){.nd = 4, .ish = {2, 3, 5, 6}, .ksh = {4, 3, 3, 2},
                .lo = {1, 0}, .hi = {1, 1}, .ip = NHWC, .kp = HWIO,
                .op = NHWC});
  run_floats("odd permutations",
             (cfg){.nd = 4, .ish = {2, 4, 5, 6}, .ksh = {6, 2, 2, 3},
                   .fg = 2, .s = {2, 1}, .ip = ODD4, .kp = NHWC, .op = ODD4});
  run_floats("negative permutation entries",
             (cfg){.nd = 4, .ish = {2, 3, 4, 5}, .ksh = {4, 3, 2, 2},
                   .ip = NEG4, .kp = NEG4, .op = NEG4});
  run_floats("1d permutations",
             (cfg){.nd = 3, .ish = {3, 4, 7}, .ksh = {5, 4, 3}, .ip = ODD3,
                   .kp = ODD3, .op = ODD3, .bg = 1, .s = {2}});
  run_floats("3d permutations + batch groups",
             (cfg){.nd = 5, .ish = {4, 2, 3, 4, 3}, .ksh = {4, 2, 2, 2, 2},
                   .bg = 2, .ip = P5, .kp = P5, .op = P5});
}

static void fill_rand(host *h, const void *ctx) {
  (void)ctx;
  if (dt_int(h->t))
    for (int64_t i = 0; i < h->n; i++) h->v[i] = rnd_bits(h->t);
  else
    h_rand(h, -2, 2);
}

/* Inputs that are views (transposed, strided slices, reversed, broadcast,
 * sliced transposes) rather than contiguous arrays. */
static void test_noncontig(void) {
  cfg c = cfg_norm((cfg){.nd = 4, .ish = {2, 3, 5, 6}, .ksh = {4, 3, 3, 2},
                         .lo = {1, 0}, .hi = {0, 1}, .s = {1, 2}});
  const em_dtype ts[] = {EM_F32, EM_F64, EM_BF16, EM_C64, EM_S32, EM_U8};
  for (int ti = 0; ti < 6; ti++)
    for (int kind = 0; kind <= 4; kind++) {
      em_dtype t = ts[ti];
      ah x = ah_noncontig(t, 4, c.ish, kind, fill_rand, NULL);
      ah w = ah_noncontig(t, 4, c.ksh, (kind + 2) % 5, fill_rand, NULL);
      char what[64];
      snprintf(what, sizeof what, "non-contiguous kind %d", kind);
      check_conv(what, &c, x.a, w.a, &x.h, &w.h, 0);
      ah_free(&x);
      ah_free(&w);
    }
}

/* Nx.conv's doc examples, as hand values. */
static void test_nx_docs(void) {
  /* iota {1,1,3,3} with iota {4,1,1,1}, strides [1, 1] */
  {
    float x[9], k[4];
    for (int i = 0; i < 9; i++) x[i] = (float)i;
    for (int i = 0; i < 4; i++) k[i] = (float)i;
    em_array *a = NULL, *w = NULL, *r = NULL;
    MUST(em_array_from_data(&a, EM_F32, 4, (int64_t[]){1, 1, 3, 3}, x,
                            sizeof x, em_cpu()), a);
    MUST(em_array_from_data(&w, EM_F32, 4, (int64_t[]){4, 1, 1, 1}, k,
                            sizeof k, em_cpu()), w);
    cfg c = cfg_norm((cfg){.nd = 4});
    em_conv_params p = params_of(&c);
    CHECK(em_conv(&r, a, w, &p) == EM_OK, "%s", em_last_error());
    const float *y = r ? em_array_data(r) : NULL;
    CHECK(y && em_array_ndim(r) == 4 && em_array_shape(r)[1] == 4 &&
              em_array_shape(r)[2] == 3 && em_array_shape(r)[3] == 3,
          "doc 1 shape");
    bool ok = y != NULL;
    for (int o = 0; ok && o < 4; o++)
      for (int i = 0; i < 9; i++) ok &= y[o * 9 + i] == (float)(o * i);
    CHECK(ok, "doc example 1 values");
    em_array_release(a);
    em_array_release(w);
    em_array_release(r);
  }
  /* iota {1,1,3,3} with iota {4,1,2,1}, strides 2, padding :same (for
   * the dilated kernel {3, 1}: {1, 1} and {0, 0}), kernel_dilation [2, 1] */
  {
    float x[9], k[8];
    for (int i = 0; i < 9; i++) x[i] = (float)i;
    for (int i = 0; i < 8; i++) k[i] = (float)i;
    em_array *a = NULL, *w = NULL, *r = NULL;
    MUST(em_array_from_data(&a, EM_F32, 4, (int64_t[]){1, 1, 3, 3}, x,
                            sizeof x, em_cpu()), a);
    MUST(em_array_from_data(&w, EM_F32, 4, (int64_t[]){4, 1, 2, 1}, k,
                            sizeof k, em_cpu()), w);
    cfg c = cfg_norm((cfg){.nd = 4, .s = {2, 2}, .lo = {1, 0}, .hi = {1, 0},
                           .kd = {2, 1}});
    em_conv_params p = params_of(&c);
    CHECK(em_conv(&r, a, w, &p) == EM_OK, "%s", em_last_error());
    const float *y = r ? em_array_data(r) : NULL;
    const float want[16] = {3, 5, 0, 0, 9, 15, 6, 10,
                            15, 25, 12, 20, 21, 35, 18, 30};
    bool ok = y && em_array_size(r) == 16 && em_array_shape(r)[2] == 2 &&
              em_array_shape(r)[3] == 2;
    for (int i = 0; ok && i < 16; i++) ok &= y[i] == want[i];
    CHECK(ok, "doc example 2 values");
    em_array_release(a);
    em_array_release(w);
    em_array_release(r);
  }
  /* complex: [[[1+i, 2, 3-3i]]] with [[[1, 2i, 3i]]], padding [{2, 2}] */
  {
    float x[6] = {1, 1, 2, 0, 3, -3}, k[6] = {1, 0, 0, 2, 0, 3};
    em_array *a = NULL, *w = NULL, *r = NULL;
    MUST(em_array_from_data(&a, EM_C64, 3, (int64_t[]){1, 1, 3}, x, sizeof x,
                            em_cpu()), a);
    MUST(em_array_from_data(&w, EM_C64, 3, (int64_t[]){1, 1, 3}, k, sizeof k,
                            em_cpu()), w);
    cfg c = cfg_norm((cfg){.nd = 3, .lo = {2}, .hi = {2}});
    em_conv_params p = params_of(&c);
    CHECK(em_conv(&r, a, w, &p) == EM_OK, "%s", em_last_error());
    const float *y = r ? em_array_data(r) : NULL;
    const float want[10] = {-3, 3, -2, 8, 10, 14, 8, 6, 3, -3};
    bool ok = y && em_array_size(r) == 5;
    for (int i = 0; ok && i < 10; i++) ok &= y[i] == want[i];
    CHECK(ok, "doc example 3 (complex) values");
    em_array_release(a);
    em_array_release(w);
    em_array_release(r);
  }
}

/* Integers: exact values and wrap-around (checked bit for bit by
 * run_all); here also a case where the true sum is far out of range. */
static void test_int_wrap(void) {
  const em_dtype ts[] = {EM_U8, EM_S8, EM_S16, EM_U32, EM_S64};
  for (int i = 0; i < 5; i++) {
    em_dtype t = ts[i];
    int64_t ish[3] = {1, 2, 4}, ksh[3] = {1, 2, 2};
    host hi = h_new(t, 3, ish), hk = h_new(t, 3, ksh);
    for (int64_t j = 0; j < hi.n; j++) hi.v[j] = tv_i(int_max_of(t));
    for (int64_t j = 0; j < hk.n; j++) hk.v[j] = tv_i(int_max_of(t));
    em_array *a = h_array(&hi), *k = h_array(&hk);
    cfg c = cfg_norm((cfg){.nd = 3, .ish = {1, 2, 4}, .ksh = {1, 2, 2}});
    check_conv("int overflow", &c, a, k, &hi, &hk, 0);
    /* and the hand value: 4 * max^2 modulo 2^bits */
    em_conv_params p = params_of(&c);
    em_array *r = NULL;
    if (em_conv(&r, a, k, &p) == EM_OK) {
      host g;
      if (h_read(r, &g)) {
        uint64_t m = (uint64_t)int_max_of(t);
        int64_t want = wrap_int(t, 4 * m * m);
        CHECK(g.v[0].i == want, "%s: 4*max^2 wraps to %lld, got %lld", dn(t),
              (long long)want, (long long)g.v[0].i);
      }
      h_free(&g);
    }
    em_array_release(r);
    em_array_release(a);
    em_array_release(k);
    h_free(&hi);
    h_free(&hk);
  }
}

static void test_zero_size(void) {
  /* N == 0 */
  run_all("N = 0", (cfg){.nd = 4, .ish = {0, 3, 4, 4}, .ksh = {2, 3, 2, 2}});
  /* O == 0 */
  run_floats("O = 0", (cfg){.nd = 3, .ish = {2, 3, 5}, .ksh = {0, 3, 2}});
  /* C == 0: every output is an empty sum */
  run_all("C = 0", (cfg){.nd = 3, .ish = {2, 0, 5}, .ksh = {3, 0, 2}});
  /* kernel spatial size 0 (Nx's shape rule: window 0, or -1 dilated) */
  run_floats("kernel spatial 0",
             (cfg){.nd = 3, .ish = {1, 2, 4}, .ksh = {2, 2, 0}});
  run_floats("kernel spatial 0 dilated",
             (cfg){.nd = 3, .ish = {1, 2, 4}, .ksh = {2, 2, 0}, .kd = {2}});
  /* input spatial 0, padding only */
  run_floats("input spatial 0",
             (cfg){.nd = 3, .ish = {2, 2, 0}, .ksh = {3, 2, 2}, .lo = {2},
                   .hi = {1}});
  /* batch groups with N = 0 */
  run_floats("N = 0 batch groups",
             (cfg){.nd = 3, .ish = {0, 2, 5}, .ksh = {4, 2, 2}, .bg = 2});
}

/* Enough work for the thread pool; sampled checks. */
static void test_large(void) {
  run_cfg("large f32 3x3",
          (cfg){.nd = 4, .ish = {4, 16, 30, 30}, .ksh = {32, 16, 3, 3},
                .lo = {1, 1}, .hi = {1, 1}},
          EM_F32, 3000);
  run_cfg("large bf16 strided",
          (cfg){.nd = 4, .ish = {3, 8, 40, 33}, .ksh = {16, 8, 3, 3},
                .s = {2, 2}, .lo = {1, 0}, .hi = {1, 1}},
          EM_BF16, 3000);
  run_cfg("large s32 depthwise",
          (cfg){.nd = 4, .ish = {4, 16, 30, 30}, .ksh = {16, 1, 3, 3},
                .fg = 16, .lo = {1, 1}, .hi = {1, 1}},
          EM_S32, 3000);
  run_cfg("large f64 3d",
          (cfg){.nd = 5, .ish = {2, 4, 12, 12, 12}, .ksh = {8, 4, 3, 3, 3},
                .id = {2, 1, 1}, .s = {1, 2, 1}},
          EM_F64, 3000);
  run_cfg("large c128 grouped",
          (cfg){.nd = 4, .ish = {2, 8, 20, 20}, .ksh = {8, 2, 3, 3},
                .fg = 4},
          EM_C128, 2000);
  run_cfg("large u8 1d",
          (cfg){.nd = 3, .ish = {8, 8, 3000}, .ksh = {8, 8, 5}, .s = {2}},
          EM_U8, 3000);
  /* One image's im2col (K = 200 rows of 110*110 positions) is larger than
   * the kernel's ~8 MB chunk, so it is split into blocks of output
   * positions (f16/bf16: through the f32 staging of merged products). */
  const em_dtype bt[] = {EM_F32, EM_F16, EM_C64, EM_F64};
  for (int i = 0; i < 4; i++)
    run_cfg("im2col position blocks",
            (cfg){.nd = 4, .ish = {2, 8, 110, 110}, .ksh = {8, 8, 5, 5},
                  .lo = {2, 1}, .hi = {2, 3}},
            bt[i], 500);
}

/* f16 sums beyond f16's range must overflow to inf (accumulation in f32,
 * one rounding), and values that need f32 accumulation must come out
 * right: 2048 + 1 + 1 + ... in f16 would stall at 2048. */
static void test_half_accumulation(void) {
  for (int hf = 0; hf < 2; hf++) {
    em_dtype t = hf ? EM_BF16 : EM_F16;
    int64_t ish[3] = {1, 1, 65}, ksh[3] = {1, 1, 65};
    host hi = h_new(t, 3, ish), hk = h_new(t, 3, ksh);
    for (int64_t j = 0; j < 65; j++) {
      hi.v[j] = tv_f(j == 0 ? (hf ? 256 : 2048) : 1);
      hk.v[j] = tv_f(1);
    }
    em_array *a = h_array(&hi), *k = h_array(&hk);
    cfg c = cfg_norm((cfg){.nd = 3, .ish = {1, 1, 65}, .ksh = {1, 1, 65}});
    em_conv_params p = params_of(&c);
    em_array *r = NULL;
    CHECK(em_conv(&r, a, k, &p) == EM_OK, "%s", em_last_error());
    host g;
    if (r && h_read(r, &g)) {
      double want = hf ? 320 : 2112;
      CHECK(g.v[0].re == want, "%s accumulation: got %g, want %g", dn(t),
            g.v[0].re, want);
    }
    h_free(&g);
    em_array_release(r);
    em_array_release(a);
    em_array_release(k);
    h_free(&hi);
    h_free(&hk);
  }
  {
    int64_t ish[3] = {1, 2, 1}, ksh[3] = {1, 2, 1};
    host hi = h_new(EM_F16, 3, ish), hk = h_new(EM_F16, 3, ksh);
    hi.v[0] = hi.v[1] = tv_f(60000);
    hk.v[0] = hk.v[1] = tv_f(1);
    em_array *a = h_array(&hi), *k = h_array(&hk);
    cfg c = cfg_norm((cfg){.nd = 3, .ish = {1, 2, 1}, .ksh = {1, 2, 1}});
    em_conv_params p = params_of(&c);
    em_array *r = NULL;
    CHECK(em_conv(&r, a, k, &p) == EM_OK, "%s", em_last_error());
    host g;
    if (r && h_read(r, &g))
      CHECK(isinf(g.v[0].re) && g.v[0].re > 0, "f16 overflow: got %g",
            g.v[0].re);
    h_free(&g);
    em_array_release(r);
    em_array_release(a);
    em_array_release(k);
    h_free(&hi);
    h_free(&hk);
  }
}

/* (the status is taken before *out is read) */
#define CONV_ERR(a, k, pp, ...)                      \
  do {                                               \
    em_array *r_ = SENTINEL;                         \
    em_status s_ = em_conv(&r_, a, k, pp);           \
    CHECK_ERR(s_, r_, "conv", __VA_ARGS__);          \
  } while (0)

static void test_errors(void) {
  em_array *a3 = NULL, *k3 = NULL, *a4 = NULL, *k4 = NULL, *a2 = NULL,
           *kf64 = NULL, *r = SENTINEL;
  float z[256] = {0};
  double zd[72] = {0};
  MUST(em_array_from_data(&a3, EM_F32, 3, (int64_t[]){4, 6, 5}, z,
                          4 * 6 * 5 * 4, em_cpu()), a3);
  MUST(em_array_from_data(&k3, EM_F32, 3, (int64_t[]){6, 6, 2}, z,
                          6 * 6 * 2 * 4, em_cpu()), k3);
  MUST(em_array_from_data(&a4, EM_F32, 4, (int64_t[]){1, 2, 3, 3}, z,
                          18 * 4, em_cpu()), a4);
  MUST(em_array_from_data(&k4, EM_F32, 4, (int64_t[]){2, 2, 2, 2}, z,
                          16 * 4, em_cpu()), k4);
  MUST(em_array_from_data(&a2, EM_F32, 2, (int64_t[]){2, 3}, z, 6 * 4,
                          em_cpu()), a2);
  MUST(em_array_from_data(&kf64, EM_F64, 3, (int64_t[]){6, 6, 2}, zd,
                          6 * 6 * 2 * 8, em_cpu()), kf64);
  cfg c3 = cfg_norm((cfg){.nd = 3});
  em_conv_params p = params_of(&c3), q;

  CONV_ERR(NULL, k3, &p, "NULL");
  CONV_ERR(a3, k3, NULL, "NULL");
  CHECK(em_conv(NULL, a3, k3, &p) == EM_ERR_ARGUMENT, "NULL out");
  CONV_ERR(a3, kf64, &p, "f32", "f64");
  q = p;
  q.nspatial = 0;
  CONV_ERR(a2, a2, &q, "rank 3");
  CONV_ERR(a3, k4, &p, "ranks");
  q = p;
  q.nspatial = 2;
  CONV_ERR(a3, k3, &q, "nspatial");
  q = p;
  q.strides[0] = 0;
  CONV_ERR(a3, k3, &q, "stride");
  q = p;
  q.input_dilation[0] = 0;
  CONV_ERR(a3, k3, &q, "dilation");
  q = p;
  q.kernel_dilation[0] = -1;
  CONV_ERR(a3, k3, &q, "dilation");
  q = p;
  q.feature_group_size = 0;
  CONV_ERR(a3, k3, &q, "group");
  q = p;
  q.feature_group_size = 2;
  q.batch_group_size = 2;
  CONV_ERR(a3, k3, &q, "batch groups or feature");
  q = p;
  q.feature_group_size = 4; /* O = 6 not divisible */
  CONV_ERR(a3, k3, &q, "feature groups");
  q = p;
  q.feature_group_size = 3; /* C = 6 != Ck 6 * 3 */
  CONV_ERR(a3, k3, &q, "input channels");
  q = p;
  q.batch_group_size = 3; /* N = 4 */
  CONV_ERR(a3, k3, &q, "batch size");
  {
    em_array *k5 = NULL;
    MUST(em_array_from_data(&k5, EM_F32, 3, (int64_t[]){5, 6, 2}, z,
                            5 * 6 * 2 * 4, em_cpu()), k5);
    q = p;
    q.batch_group_size = 2; /* N = 4 ok, O = 5 */
    CONV_ERR(a3, k5, &q, "batch groups");
    em_array_release(k5);
  }
  r = SENTINEL;
  q = p;
  q.pad_lo[0] = -3; /* padded 5 - 3 = 2, window 2: ok */
  CHECK(em_conv(&r, a3, k3, &q) == EM_OK, "negative padding to the edge");
  em_array_release(r);
  q.pad_lo[0] = -4; /* padded 1 < window 2 */
  CONV_ERR(a3, k3, &q, "empty");
  q = p;
  q.kernel_dilation[0] = 5; /* window 6 > 5 */
  CONV_ERR(a3, k3, &q, "empty");
  q = p;
  q.input_permutation = (const int[]){0, 0, 2};
  CONV_ERR(a3, k3, &q, "input_permutation");
  q = p;
  q.kernel_permutation = (const int[]){0, 1, 3};
  CONV_ERR(a3, k3, &q, "kernel_permutation");
  q = p;
  q.output_permutation = (const int[]){0, 1, -4};
  CONV_ERR(a3, k3, &q, "output_permutation");
  q = p;
  q.pad_hi[0] = (int64_t)1 << 50;
  CONV_ERR(a3, k3, &q, "padding");
  /* permutation that makes channels mismatch: kernel seen as [6, 2, 6] */
  q = p;
  q.kernel_permutation = (const int[]){0, 2, 1};
  CONV_ERR(a3, k3, &q, "kernel channels");

  em_array_release(a3);
  em_array_release(k3);
  em_array_release(a4);
  em_array_release(k4);
  em_array_release(a2);
  em_array_release(kf64);
}

/* An evaluation that runs out of memory fails cleanly. */
static void test_oom(void) {
  em_array *a = NULL, *k = NULL, *r = NULL;
  static float x[2 * 8 * 10 * 10], w[8 * 8 * 3 * 3];
  MUST(em_array_from_data(&a, EM_F32, 4, (int64_t[]){2, 8, 10, 10}, x,
                          sizeof x, em_cpu()), a);
  MUST(em_array_from_data(&k, EM_F32, 4, (int64_t[]){8, 8, 3, 3}, w, sizeof w,
                          em_cpu()), k);
  /* Fail the 1st, 2nd, ... allocation of the evaluation until it gets
   * through: every failure must be a clean EM_ERR_OOM. */
  long n = 0;
  for (; n < 10; n++) {
    cfg c = cfg_norm((cfg){.nd = 4});
    em_conv_params p = params_of(&c);
    r = NULL;
    CHECK(em_conv(&r, a, k, &p) == EM_OK, "%s", em_last_error());
    em_memory_fail_after(em_cpu(), n);
    em_status st = em_eval(&r, 1);
    em_memory_fail_after(em_cpu(), -1);
    em_array_release(r);
    if (st == EM_OK) break;
    CHECK(st == EM_ERR_OOM, "injected failure %ld: got %s (%s)", n,
          em_status_name(st), em_last_error());
  }
  CHECK(n >= 2 && n < 10, "allocations that could fail: %ld", n);
  em_array_release(a);
  em_array_release(k);
}

int main(void) {
  rng_seed(42);
  clock_t t0 = clock();
  test_nx_docs();
  test_1d();
  test_2d();
  test_3d();
  test_groups();
  test_pointwise();
  test_permutations();
  test_noncontig();
  test_int_wrap();
  test_half_accumulation();
  test_zero_size();
  test_errors();
  test_oom();
  test_large();
  printf("cpu time %.1fs\n", (double)(clock() - t0) / CLOCKS_PER_SEC);
  return TEST_SUMMARY();
}
