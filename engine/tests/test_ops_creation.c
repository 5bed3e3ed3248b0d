/* test_ops_creation.c — creation ops (full, full_scalar, iota, eye,
 * from_data, copy), as_type between every pair of dtypes (wrap, truncation,
 * saturation, NaN, f16/bf16 rounding to nearest even), bitcast, the dtype
 * helpers and the array metadata getters, against ref.h. */
#include "ref.h"

static void test_dtype_helpers(void) {
  static const struct {
    em_dtype t;
    const char *name;
    size_t size;
    char kind;
  } tab[] = {{EM_U8, "u8", 1, 'u'},   {EM_U16, "u16", 2, 'u'},
             {EM_U32, "u32", 4, 'u'}, {EM_U64, "u64", 8, 'u'},
             {EM_S8, "s8", 1, 's'},   {EM_S16, "s16", 2, 's'},
             {EM_S32, "s32", 4, 's'}, {EM_S64, "s64", 8, 's'},
             {EM_F16, "f16", 2, 'f'}, {EM_BF16, "bf16", 2, 'f'},
             {EM_F32, "f32", 4, 'f'}, {EM_F64, "f64", 8, 'f'},
             {EM_C64, "c64", 8, 'c'}, {EM_C128, "c128", 16, 'c'}};
  for (int i = 0; i < 14; i++) {
    em_dtype t = tab[i].t, back = EM_DTYPE_COUNT;
    CHECK(strcmp(em_dtype_name(t), tab[i].name) == 0, "name of %d: %s", (int)t,
          em_dtype_name(t));
    CHECK(em_dtype_from_name(tab[i].name, &back) && back == t, "from_name %s",
          tab[i].name);
    CHECK(em_dtype_size(t) == tab[i].size, "size of %s", tab[i].name);
    char k = tab[i].kind;
    CHECK(em_dtype_is_int(t) == (k == 'u' || k == 's') &&
              em_dtype_is_float(t) == (k == 'f') &&
              em_dtype_is_complex(t) == (k == 'c') &&
              em_dtype_is_signed(t) == (k == 's' || k == 'f'),
          "kind predicates of %s", tab[i].name);
  }
  em_dtype d = EM_U8;
  CHECK(!em_dtype_from_name("f12", &d) && !em_dtype_from_name("", &d),
        "unknown names rejected");
  CHECK(strcmp(em_dtype_name(EM_DTYPE_COUNT), "?") == 0, "invalid dtype name");
  CHECK(strcmp(em_status_name(EM_ERR_OOM), "oom") == 0 &&
            strcmp(em_status_name(EM_OK), "ok") == 0,
        "status names");
  CHECK(em_device_count(EM_DEVICE_CPU) == 1, "one CPU device");
  CHECK(em_cpu_num_threads() >= 1, "thread count");
}

/* ---- from_data / metadata / copy --------------------------------------- */

static void test_from_data(void) {
  for (int di = 0; di < N_ALL_DTYPES; di++) {
    em_dtype t = ALL_DTYPES[di];
    int64_t s[3] = {2, 3, 5};
    host h = h_new(t, 3, s);
    h_rand(&h, -100, 100);
    size_t nb;
    char *bytes = h_encode(&h, &nb);
    em_array *a = NULL;
    CHECK(em_array_from_data(&a, t, 3, s, bytes, nb, em_cpu()) == EM_OK, "from_data %s", dn(t));
    CHECK(em_array_is_evaluated(a), "from_data is evaluated");
    CHECK(em_array_dtype(a) == t && em_array_ndim(a) == 3 && em_array_size(a) == 30 &&
              em_array_nbytes(a) == 30 * em_dtype_size(t) &&
              em_array_shape(a)[0] == 2 && em_array_shape(a)[2] == 5 &&
              em_array_device(a).type == EM_DEVICE_CPU,
          "metadata %s", dn(t));
    const void *p = em_array_data(a);
    CHECK(p && memcmp(p, bytes, nb) == 0, "from_data bytes round trip %s", dn(t));
    char *back = malloc(nb);
    CHECK(em_array_to_host(a, back, nb) == EM_OK && memcmp(back, bytes, nb) == 0,
          "to_host round trip %s", dn(t));
    /* the caller's buffer was copied */
    memset(bytes, 0x5a, nb);
    CHECK(memcmp(em_array_data(a), back, nb) == 0, "from_data copies");
    /* copy of a contiguous array and of a transposed view */
    em_array *c = NULL, *tr = NULL, *ct = NULL;
    MUST(em_copy(&c, a), c);
    check_host("copy", c, &h, 0, 0);
    MUST(em_transpose(&tr, a, (int[]){2, 0, 1}), tr);
    MUST(em_copy(&ct, tr), ct);
    host ht = h_transpose(&h, (int[]){2, 0, 1});
    check_host("copy of transposed view", ct, &ht, 0, 0);
    em_array_release(a);
    em_array_release(c);
    em_array_release(tr);
    em_array_release(ct);
    free(bytes);
    free(back);
    h_free(&h);
    h_free(&ht);
  }
  /* scalar and zero-size */
  {
    double v = 2.5;
    em_array *a = NULL, *z = NULL;
    CHECK(em_array_from_data(&a, EM_F64, 0, NULL, &v, 8, em_cpu()) == EM_OK &&
              em_array_ndim(a) == 0 && em_array_size(a) == 1,
          "scalar from_data");
    const double *p = em_array_data(a);
    CHECK(p && *p == 2.5, "scalar value");
    int64_t s[2] = {4, 0};
    CHECK(em_array_from_data(&z, EM_S32, 2, s, NULL, 0, em_cpu()) == EM_OK &&
              em_array_size(z) == 0 && em_array_nbytes(z) == 0,
          "zero-size from_data with NULL data");
    CHECK(em_array_to_host(z, NULL, 0) == EM_OK, "to_host of zero-size");
    em_array_release(a);
    em_array_release(z);
  }
}

/* ---- full / full_scalar ------------------------------------------------ */

static void test_full(void) {
  for (int di = 0; di < N_ALL_DTYPES; di++) {
    em_dtype t = ALL_DTYPES[di];
    tv v = rnd_tv(t, -100, 100);
    if (dt_int(t)) v = rnd_bits(t);
    unsigned char raw[16];
    enc_val(t, v, raw);
    int64_t shapes[4][2] = {{0, 0}, {3, 4}, {0, 5}, {600, 512}};
    int nds[4] = {0, 2, 2, 2};
    for (int k = 0; k < 4; k++) {
      em_array *a = SENTINEL;
      CHECK(em_full(&a, t, nds[k], shapes[k], raw, em_cpu()) == EM_OK, "full %s", dn(t));
      CHECK(!em_array_is_evaluated(a), "full is lazy");
      host w = h_new(t, nds[k], shapes[k]);
      for (int64_t i = 0; i < w.n; i++) w.v[i] = v;
      char what[64];
      snprintf(what, sizeof what, "full %s case %d", dn(t), k);
      check_host(what, a, &w, 0, 0);
      em_array_release(a);
      h_free(&w);
    }
  }
  /* full_scalar converts a double with as_type's rules */
  const double vals[] = {3.7, -1.0, 300.0, -2.5e9, 1e6, 0.1, -0.0, NAN, INFINITY, 70000.5};
  for (int di = 0; di < N_ALL_DTYPES; di++) {
    em_dtype t = ALL_DTYPES[di];
    for (int k = 0; k < 10; k++) {
      em_array *a = NULL;
      CHECK(em_full_scalar(&a, t, vals[k], em_cpu()) == EM_OK, "full_scalar");
      host w = h_new(t, 0, NULL);
      w.v[0] = ref_cast(EM_F64, t, tv_f(vals[k]));
      char what[64];
      snprintf(what, sizeof what, "full_scalar(%s, %g)", dn(t), vals[k]);
      check_host(what, a, &w, 0, 0);
      em_array_release(a);
      h_free(&w);
    }
  }
  /* written out: 3.7 -> s32 3; -1 -> u8 0 (saturates); 300 -> u8 255;
   * NaN -> s64 0; 70000.5 -> f16 inf */
  {
    em_array *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL;
    MUST(em_full_scalar(&a, EM_S32, 3.7, em_cpu()), a);
    MUST(em_full_scalar(&b, EM_U8, -1.0, em_cpu()), b);
    MUST(em_full_scalar(&c, EM_U8, 300.0, em_cpu()), c);
    MUST(em_full_scalar(&d, EM_S64, NAN, em_cpu()), d);
    MUST(em_full_scalar(&e, EM_F16, 70000.5, em_cpu()), e);
    const int32_t *av = em_array_data(a);
    const uint8_t *bv = em_array_data(b), *cv = em_array_data(c);
    const int64_t *dv = em_array_data(d);
    const uint16_t *ev = em_array_data(e);
    CHECK(av && *av == 3 && bv && *bv == 0 && cv && *cv == 255 && dv && *dv == 0 &&
              ev && *ev == 0x7c00,
          "full_scalar written out");
    em_array *all[] = {a, b, c, d, e};
    for (int i = 0; i < 5; i++) em_array_release(all[i]);
  }
}

/* ---- iota / eye ---------------------------------------------------------- */

static void test_iota_eye(void) {
  const em_dtype ts[] = {EM_U8, EM_S32, EM_S64, EM_F16, EM_BF16, EM_F32, EM_F64, EM_C64};
  for (int k = 0; k < 8; k++) {
    em_dtype t = ts[k];
    int64_t s[3] = {2, 3, 4};
    for (int axis = -1; axis < 3; axis++) {
      em_array *a = NULL;
      CHECK(em_iota(&a, t, 3, s, axis, em_cpu()) == EM_OK, "iota");
      int ax = axis < 0 ? 2 : axis;
      host w = h_new(t, 3, s);
      int64_t idx[3];
      for (int64_t i = 0; i < w.n; i++) {
        unflat(i, 3, s, idx);
        w.v[i] = ref_cast(EM_S64, t, tv_i(idx[ax]));
      }
      char what[64];
      snprintf(what, sizeof what, "iota %s axis %d", dn(t), axis);
      check_host(what, a, &w, 0, 0);
      em_array_release(a);
      h_free(&w);
    }
    /* rank 0 and a long axis (wraps for u8, rounds for f16/bf16; thread
     * pool) */
    em_array *a = NULL, *b = NULL;
    CHECK(em_iota(&a, t, 0, NULL, -1, em_cpu()) == EM_OK, "iota rank 0");
    host w0 = h_new(t, 0, NULL);
    w0.v[0] = ref_cast(EM_S64, t, tv_i(0));
    check_host("iota rank 0", a, &w0, 0, 0);
    int64_t L[2] = {3, 110000};
    CHECK(em_iota(&b, t, 2, L, 1, em_cpu()) == EM_OK, "large iota");
    host w = h_new(t, 2, L);
    for (int64_t i = 0; i < w.n; i++) w.v[i] = ref_cast(EM_S64, t, tv_i(i % L[1]));
    check_host("large iota", b, &w, 0, 0);
    em_array_release(a);
    em_array_release(b);
    h_free(&w0);
    h_free(&w);
  }
  /* eye over the last two axes, batched, non-square, empty */
  const em_dtype es[] = {EM_U8, EM_S32, EM_BF16, EM_F32, EM_C128};
  int64_t shapes[5][3] = {{3, 4}, {4, 3}, {2, 3, 3}, {0, 3}, {1, 1}};
  int nds[5] = {2, 2, 3, 2, 2};
  for (int k = 0; k < 5; k++)
    for (int j = 0; j < 5; j++) {
      em_array *a = NULL;
      CHECK(em_eye(&a, es[k], nds[j], shapes[j], em_cpu()) == EM_OK, "eye");
      host w = h_new(es[k], nds[j], shapes[j]);
      int64_t idx[3];
      for (int64_t i = 0; i < w.n; i++) {
        unflat(i, nds[j], shapes[j], idx);
        int on = idx[nds[j] - 1] == idx[nds[j] - 2];
        w.v[i] = quant(es[k], (tv){on, on, 0});
      }
      char what[64];
      snprintf(what, sizeof what, "eye %s shape %d", dn(es[k]), j);
      check_host(what, a, &w, 0, 0);
      em_array_release(a);
      h_free(&w);
    }
}

/* ---- as_type ------------------------------------------------------------- */

static tv gen_cast_src(em_dtype t) {
  double r = rng_unit();
  if (dt_int(t)) return r < 0.5 ? rnd_bits(t) : rnd_tv(t, -300, 300);
  static const double sp[] = {NAN, INFINITY, -INFINITY, 0.5, -0.7, -0.0,
                              1e10, -1e10, 65519, 65520, 255.9, -128.5,
                              4294967295.5, 9.3e18, 1.9e19, -9.3e18};
  double re = r < 0.3 ? sp[rng_int(0, 15)] : r < 0.7 ? rng_uniform(-300, 300)
                                                     : rng_uniform(-1e5, 1e5);
  double im = rng_uniform(-300, 300);
  return quant(t, tv_c(re, dt_cpx(t) ? im : 0));
}
static void fill_cast(host *h, const void *ctx) {
  (void)ctx;
  for (int64_t i = 0; i < h->n; i++) h->v[i] = gen_cast_src(h->t);
  h_nonzero(h);
}

static void run_cast(const ah *x, em_dtype to, const char *kind) {
  em_array *o = SENTINEL;
  em_status st = em_as_type(&o, x->a, to);
  char what[96];
  snprintf(what, sizeof what, "as_type %s -> %s %s", dn(x->h.t), dn(to), kind);
  CHECK(st == EM_OK, "%s: %s", what, em_last_error());
  if (st != EM_OK) return;
  host w = h_new(to, x->h.nd, x->h.sh);
  for (int64_t i = 0; i < w.n; i++) w.v[i] = ref_cast(x->h.t, to, x->h.v[i]);
  check_host_ex(what, o, &w, 0, 0, NULL, dt_int(to) ? 0 : CMP_SIGNZERO);
  em_array_release(o);
  h_free(&w);
}

static void test_as_type(void) {
  for (int i = 0; i < N_ALL_DTYPES; i++)
    for (int j = 0; j < N_ALL_DTYPES; j++) {
      em_dtype from = ALL_DTYPES[i], to = ALL_DTYPES[j];
      int64_t s[2] = {7, 11};
      host h = h_new(from, 2, s);
      fill_cast(&h, NULL);
      ah x = ah_of(h);
      run_cast(&x, to, "[7,11]");
      ah_free(&x);
      ah v = ah_noncontig(from, 2, s, (i + j) % 5, fill_cast, NULL);
      run_cast(&v, to, "view");
      ah_free(&v);
      host sc = h_new(from, 0, NULL);
      fill_cast(&sc, NULL);
      ah y = ah_of(sc);
      run_cast(&y, to, "scalar");
      ah_free(&y);
      if ((i * 14 + j) % 17 == 0) { /* large: thread pool */
        int64_t L[1] = {310000};
        host hl = h_new(from, 1, L);
        fill_cast(&hl, NULL);
        ah z = ah_of(hl);
        run_cast(&z, to, "large");
        ah_free(&z);
      }
    }
  /* f32 -> f16 / bf16 rounding to nearest even, written out in bits */
  {
    const float v[] = {1.0f + 0x1p-11f,  1.0f + 3 * 0x1p-11f, 65519.0f, 65520.0f,
                       0x1p-25f,         3 * 0x1p-25f,        -0x1p-24f, 1.0f + 0x1p-8f,
                       1.0f + 3 * 0x1p-8f, 0x1.fffffep127f, -0.0f,     1.0f + 0x1.8p-11f};
    const uint16_t want16[] = {0x3c00, 0x3c02, 0x7bff, 0x7c00, 0x0000, 0x0002,
                               0x8001, 0x3c04, 0x3c0c, 0x7c00, 0x8000, 0x3c01};
    const uint16_t wantb[] = {0x3f80, 0x3f80, 0x4780, 0x4780, 0x3300, 0x33c0,
                              0xb380, 0x3f80, 0x3f82, 0x7f80, 0x8000, 0x3f80};
    int64_t s[1] = {12};
    em_array *a = NULL, *h = NULL, *b = NULL;
    MUST(em_array_from_data(&a, EM_F32, 1, s, v, sizeof v, em_cpu()), a);
    MUST(em_as_type(&h, a, EM_F16), h);
    MUST(em_as_type(&b, a, EM_BF16), b);
    const uint16_t *hv = em_array_data(h), *bv = em_array_data(b);
    for (int i = 0; i < 12; i++) {
      CHECK(hv && hv[i] == want16[i], "f32 %a -> f16: 0x%04x, want 0x%04x", (double)v[i],
            hv ? hv[i] : 0, want16[i]);
      CHECK(bv && bv[i] == wantb[i], "f32 %a -> bf16: 0x%04x, want 0x%04x", (double)v[i],
            bv ? bv[i] : 0, wantb[i]);
      /* and the reference agrees with the written-out bits */
      CHECK(enc_f16(v[i]) == want16[i] && enc_bf16(v[i]) == wantb[i],
            "reference rounding of %a", (double)v[i]);
    }
    em_array_release(a);
    em_array_release(h);
    em_array_release(b);
  }
  /* float -> int: truncation toward zero, saturation, NaN -> 0 */
  {
    const double v[] = {2.9, -2.9, 1e20, -1e20, NAN, INFINITY, -INFINITY, 127.99, -128.99};
    int64_t s[1] = {9};
    em_array *a = NULL, *i8 = NULL, *u8 = NULL, *i64 = NULL;
    MUST(em_array_from_data(&a, EM_F64, 1, s, v, sizeof v, em_cpu()), a);
    MUST(em_as_type(&i8, a, EM_S8), i8);
    MUST(em_as_type(&u8, a, EM_U8), u8);
    MUST(em_as_type(&i64, a, EM_S64), i64);
    const int8_t *x = em_array_data(i8);
    const uint8_t *y = em_array_data(u8);
    const int64_t *z = em_array_data(i64);
    CHECK(x && x[0] == 2 && x[1] == -2 && x[2] == 127 && x[3] == -128 && x[4] == 0 &&
              x[5] == 127 && x[6] == -128 && x[7] == 127 && x[8] == -128,
          "f64 -> s8 written out");
    CHECK(y && y[0] == 2 && y[1] == 0 && y[2] == 255 && y[3] == 0 && y[4] == 0 &&
              y[5] == 255 && y[7] == 127,
          "f64 -> u8 written out");
    CHECK(z && z[2] == INT64_MAX && z[3] == INT64_MIN && z[4] == 0 && z[1] == -2,
          "f64 -> s64 written out");
    em_array_release(a);
    em_array_release(i8);
    em_array_release(u8);
    em_array_release(i64);
  }
  /* int -> int wraps; complex -> real keeps the real part */
  {
    int32_t v[] = {300, -1, 65537, INT32_MIN};
    int64_t s[1] = {4};
    em_array *a = NULL, *u8 = NULL, *s16 = NULL, *u64 = NULL, *c = NULL, *r = NULL;
    MUST(em_array_from_data(&a, EM_S32, 1, s, v, sizeof v, em_cpu()), a);
    MUST(em_as_type(&u8, a, EM_U8), u8);
    MUST(em_as_type(&s16, a, EM_S16), s16);
    MUST(em_as_type(&u64, a, EM_U64), u64);
    MUST(em_as_type(&c, a, EM_C64), c);
    MUST(em_as_type(&r, c, EM_F64), r);
    const uint8_t *x = em_array_data(u8);
    const int16_t *y = em_array_data(s16);
    const uint64_t *z = em_array_data(u64);
    const float *cv = em_array_data(c);
    const double *rv = em_array_data(r);
    CHECK(x && x[0] == 44 && x[1] == 255 && x[2] == 1 && x[3] == 0, "s32 -> u8 wraps");
    CHECK(y && y[0] == 300 && y[1] == -1 && y[2] == 1 && y[3] == 0, "s32 -> s16 wraps");
    CHECK(z && z[1] == UINT64_MAX && z[3] == (uint64_t)(int64_t)INT32_MIN,
          "s32 -> u64 sign-extends");
    CHECK(cv && cv[0] == 300 && cv[1] == 0 && cv[2] == -1 && cv[3] == 0,
          "s32 -> c64");
    CHECK(rv && rv[0] == 300 && rv[3] == (double)INT32_MIN, "c64 -> f64 real part");
    em_array *all[] = {a, u8, s16, u64, c, r};
    for (int i = 0; i < 6; i++) em_array_release(all[i]);
  }
  /* u64 / s64 -> f32 / bf16 / f16 round once from the exact value */
  {
    const uint64_t v[] = {(1ull << 53) + 1, (1ull << 63) + (1ull << 39) + 1,
                          UINT64_MAX, (1ull << 24) + 1, 0x8080000000000001ull};
    int64_t s[1] = {5};
    host h = h_new(EM_U64, 1, s);
    for (int i = 0; i < 5; i++) h.v[i] = tv_i((int64_t)v[i]);
    ah x = ah_of(h);
    const em_dtype tos[] = {EM_F16, EM_BF16, EM_F32, EM_F64, EM_C64, EM_S64};
    for (int k = 0; k < 6; k++) run_cast(&x, tos[k], "u64 edge values");
    ah_free(&x);
  }
}

/* ---- bitcast ------------------------------------------------------------- */

static void test_bitcast(void) {
  const em_dtype pairs[][2] = {
      {EM_F32, EM_S32}, {EM_F32, EM_U32}, {EM_S32, EM_F32}, {EM_F64, EM_S64},
      {EM_U64, EM_F64}, {EM_F16, EM_S16}, {EM_BF16, EM_F16}, {EM_U8, EM_S8},
      {EM_C64, EM_U64}, {EM_S64, EM_C64}, {EM_C64, EM_F64},  {EM_U16, EM_BF16}};
  for (int k = 0; k < 12; k++) {
    em_dtype from = pairs[k][0], to = pairs[k][1];
    int64_t s[2] = {5, 6};
    for (int view = 0; view < 2; view++) {
      host h = h_new(from, 2, s);
      if (dt_int(from))
        for (int64_t i = 0; i < h.n; i++) h.v[i] = rnd_bits(from);
      else
        h_rand(&h, -1e3, 1e3);
      ah x = ah_of(h);
      if (view) {
        ah t = ah_transpose(&x, NULL);
        ah_free(&x);
        x = t;
      }
      em_array *o = NULL;
      CHECK(em_bitcast(&o, x.a, to) == EM_OK, "bitcast %s -> %s", dn(from), dn(to));
      size_t nb;
      char *bytes = h_encode(&x.h, &nb); /* logical row-major bytes */
      const void *p = o ? em_array_data(o) : NULL;
      CHECK(o && em_array_dtype(o) == to && em_array_ndim(o) == 2 &&
                em_array_shape(o)[0] == x.h.sh[0] && p && memcmp(p, bytes, nb) == 0,
            "bitcast %s -> %s%s keeps the bytes", dn(from), dn(to), view ? " (view)" : "");
      free(bytes);
      em_array_release(o);
      ah_free(&x);
    }
  }
  /* 1.0f is 0x3f800000 */
  {
    float one = 1.0f;
    em_array *a = NULL, *b = NULL;
    MUST(em_array_from_data(&a, EM_F32, 0, NULL, &one, 4, em_cpu()), a);
    MUST(em_bitcast(&b, a, EM_U32), b);
    const uint32_t *v = em_array_data(b);
    CHECK(v && *v == 0x3f800000u, "bitcast 1.0f");
    em_array_release(a);
    em_array_release(b);
  }
  /* bitcast of a lazy input */
  {
    int64_t s[1] = {4};
    em_array *a = NULL, *b = NULL;
    MUST(em_iota(&a, EM_S32, 1, s, 0, em_cpu()), a);
    MUST(em_bitcast(&b, a, EM_F32), b);
    const float *v = em_array_data(b);
    uint32_t bits[4];
    if (v) memcpy(bits, v, 16);
    CHECK(v && bits[0] == 0 && bits[1] == 1 && bits[3] == 3, "bitcast of lazy iota");
    em_array_release(a);
    em_array_release(b);
  }
}

int main(void) {
  rng_seed(11);
  test_dtype_helpers();
  test_from_data();
  test_full();
  test_iota_eye();
  test_as_type();
  test_bitcast();
  return TEST_SUMMARY();
}
