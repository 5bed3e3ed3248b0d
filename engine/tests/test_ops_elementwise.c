/* test_ops_elementwise.c — every op of EM_BINARY_OPS and EM_UNARY_OPS,
 * for every dtype it is defined on, over scalar / same-shape / broadcast /
 * zero-size / non-contiguous / large (thread pool) inputs, against the
 * naive double / int64 reference of ref.h; special values (NaN, inf, ±0,
 * INT_MIN, division by zero, shift amounts out of range); and fused chains
 * (20+ ops, shared intermediates, intermediates the caller also holds). */
#include "ref.h"

/* ---- binary ops -------------------------------------------------------- */

enum {
#define X(n) B_##n,
  EM_BINARY_OPS(X)
#undef X
  B_COUNT
};
typedef em_status (*binfn)(em_array **, em_array *, em_array *);
static const struct {
  const char *name;
  binfn fn;
} BIN[] = {
#define X(n) {#n, em_##n},
    EM_BINARY_OPS(X)
#undef X
};

static bool bin_is_pred(int op) {
  switch (op) {
    case B_equal: case B_not_equal: case B_greater: case B_less:
    case B_greater_equal: case B_less_equal: case B_logical_and:
    case B_logical_or: case B_logical_xor:
      return true;
    default:
      return false;
  }
}
static bool bin_is_logical(int op) {
  return op == B_logical_and || op == B_logical_or || op == B_logical_xor;
}
static bool bin_is_bitwise(int op) {
  return op == B_bitwise_and || op == B_bitwise_or || op == B_bitwise_xor ||
         op == B_left_shift || op == B_right_shift;
}

/* Which (op, dtype) pairs Nx defines (the engine must accept exactly
 * these). */
static bool bin_defined(int op, em_dtype t) {
  if (dt_int(t)) return op != B_atan2;
  if (dt_flt(t)) return op != B_quotient && !bin_is_bitwise(op);
  /* complex */
  return op == B_add || op == B_subtract || op == B_multiply ||
         op == B_divide || op == B_pow || op == B_atan2 || op == B_equal ||
         op == B_not_equal || bin_is_logical(op);
}

static tv pick_small_float(em_dtype t) {
  static const double vals[] = {-2, -1, -0.0, 0, 0.5, 1, 1, 2, 3};
  double r = rng_unit();
  if (r < 0.05) return tv_f(NAN);
  if (r < 0.08) return tv_f(r < 0.065 ? INFINITY : -INFINITY);
  return quant(t, tv_f(vals[rng_int(0, 8)]));
}

/* Operand k of op: values in the op's domain, with plenty of wrap-around,
 * ties and zeros where they matter. */
static tv gen_bin(int op, em_dtype t, int k) {
  double r = rng_unit();
  if (dt_int(t)) {
    int W = dt_bits(t);
    if (bin_is_pred(op)) return r < 0.7 ? rnd_tv(t, -3, 3) : rnd_bits(t);
    switch (op) {
      case B_divide: case B_quotient: case B_remainder:
        if (k == 0) return r < 0.1 ? tv_i(int_min_of(t)) : r < 0.4 ? rnd_tv(t, -50, 50) : rnd_bits(t);
        if (r < 0.15) return tv_i(0);
        if (r < 0.3) return tv_i(wrap_int(t, (uint64_t)-1));
        return r < 0.7 ? rnd_tv(t, -7, 7) : rnd_bits(t);
      case B_pow:
        if (k == 0) return r < 0.8 ? rnd_tv(t, -5, 5) : rnd_bits(t);
        return rnd_tv(t, dt_uns(t) ? 0 : -3, 70);
      case B_left_shift: case B_right_shift:
        if (k == 0) return rnd_bits(t);
        return r < 0.9 ? rnd_tv(t, dt_uns(t) ? 0 : -3, W + 3) : rnd_bits(t);
      case B_min: case B_max:
        return r < 0.3 ? rnd_tv(t, -2, 2) : rnd_bits(t);
      default:
        return rnd_bits(t);
    }
  }
  if (dt_flt(t)) {
    if (bin_is_pred(op)) return pick_small_float(t);
    switch (op) {
      case B_divide:
        if (k == 0) return rnd_tv(t, -10, 10);
        return quant(t, tv_f((r < 0.5 ? -1 : 1) * rng_uniform(0.25, 10)));
      case B_pow:
        return k == 0 ? rnd_tv(t, 0.1, 4) : rnd_tv(t, -3, 3);
      case B_remainder:
        if (k == 0) return rnd_tv(t, -20, 20);
        return quant(t, tv_f((r < 0.5 ? -1 : 1) * rng_uniform(0.5, 5)));
      case B_min: case B_max:
        return r < 0.2 ? quant(t, tv_f(rng_int(-2, 2))) : rnd_tv(t, -10, 10);
      default:
        return rnd_tv(t, -10, 10);
    }
  }
  /* complex */
  switch (op) {
    case B_equal: case B_not_equal: case B_logical_and: case B_logical_or:
    case B_logical_xor:
      return tv_c((double)rng_int(-1, 1), (double)rng_int(-1, 1));
    case B_divide:
      if (k == 0) return rnd_tv(t, -3, 3);
      for (;;) {
        tv v = rnd_tv(t, -3, 3);
        if (hypot(v.re, v.im) >= 0.5) return v;
      }
    case B_pow:
      if (k == 1) return rnd_tv(t, -1.5, 1.5);
      for (;;) {
        tv v = rnd_tv(t, -2, 2);
        if (hypot(v.re, v.im) >= 0.3) return v;
      }
    case B_atan2:
      if (k == 0) return quant(t, tv_c(rng_uniform(-1, 1), rng_uniform(-0.5, 0.5)));
      return quant(t, tv_c(rng_uniform(1, 3), rng_uniform(-0.5, 0.5)));
    default:
      return rnd_tv(t, -3, 3);
  }
}

static double fmin_nx(double a, double b) {
  if (isnan(a) || isnan(b)) return NAN;
  if (a == b) return signbit(a) ? a : b;
  return a < b ? a : b;
}
static double fmax_nx(double a, double b) {
  if (isnan(a) || isnan(b)) return NAN;
  if (a == b) return signbit(a) ? b : a;
  return a > b ? a : b;
}

/* The reference: ints in 64-bit with wrap-around, floats in double,
 * complex in pairs of doubles. Result in bin_out_dtype(op, t). */
static tv ref_bin(int op, em_dtype t, tv a, tv b) {
  if (dt_int(t)) {
    int W = dt_bits(t);
    bool u = dt_uns(t);
    int64_t x = a.i, z = b.i;
    uint64_t ux = (uint64_t)x, uz = (uint64_t)z;
    /* ordering: unsigned compare for unsigned types */
    int cmp = u ? (ux < uz ? -1 : ux > uz) : (x < z ? -1 : x > z);
    switch (op) {
      case B_add: return tv_i(wrap_int(t, ux + uz));
      case B_subtract: return tv_i(wrap_int(t, ux - uz));
      case B_multiply: return tv_i(wrap_int(t, ux * uz));
      case B_divide: case B_quotient:
        if (z == 0) return tv_i(wrap_int(t, ~0ull));
        if (u) return tv_i((int64_t)(ux / uz));
        if (x == int_min_of(t) && z == -1) return tv_i(x);
        return tv_i(x / z);
      case B_remainder:
        if (z == 0) return tv_i(x);
        if (u) return tv_i((int64_t)(ux % uz));
        if (z == -1) return tv_i(0);
        return tv_i(x % z);
      case B_pow: {
        if (!u && z < 0) return tv_i(x == 1 ? 1 : 0);
        uint64_t acc = 1;
        if (uz <= 256) {
          for (uint64_t e = 0; e < uz; e++) acc *= ux; /* naive */
        } else { /* huge exponents (unsigned -1): square and multiply */
          uint64_t base = ux, e = uz;
          for (; e; e >>= 1, base *= base)
            if (e & 1u) acc *= base;
        }
        return tv_i(wrap_int(t, acc));
      }
      case B_min: return cmp <= 0 ? a : b;
      case B_max: return cmp >= 0 ? a : b;
      case B_bitwise_and: return tv_i(x & z);
      case B_bitwise_or: return tv_i(x | z);
      case B_bitwise_xor: return tv_i(x ^ z);
      case B_left_shift:
        if ((!u && z < 0) || uz >= (uint64_t)W) return tv_i(0);
        return tv_i(wrap_int(t, ux << uz));
      case B_right_shift:
        if (u) return tv_i(uz >= (uint64_t)W ? 0 : (int64_t)(ux >> uz));
        if (z < 0 || z >= W) return tv_i(x < 0 ? -1 : 0);
        return tv_i(x >> z);
      case B_equal: return tv_i(cmp == 0);
      case B_not_equal: return tv_i(cmp != 0);
      case B_greater: return tv_i(cmp > 0);
      case B_less: return tv_i(cmp < 0);
      case B_greater_equal: return tv_i(cmp >= 0);
      case B_less_equal: return tv_i(cmp <= 0);
      case B_logical_and: return tv_i(x != 0 && z != 0);
      case B_logical_or: return tv_i(x != 0 || z != 0);
      case B_logical_xor: return tv_i((x != 0) != (z != 0));
    }
    return tv_i(0);
  }
  if (dt_flt(t)) {
    double x = a.re, z = b.re;
    switch (op) {
      case B_add: return tv_f(x + z);
      case B_subtract: return tv_f(x - z);
      case B_multiply: return tv_f(x * z);
      case B_divide: return tv_f(x / z);
      case B_pow: return tv_f(pow(x, z));
      case B_remainder: return tv_f(fmod(x, z));
      case B_atan2: return tv_f(atan2(x, z));
      case B_min: return tv_f(fmin_nx(x, z));
      case B_max: return tv_f(fmax_nx(x, z));
      case B_equal: return tv_i(x == z);
      case B_not_equal: return tv_i(x != z);
      case B_greater: return tv_i(x > z);
      case B_less: return tv_i(x < z);
      case B_greater_equal: return tv_i(x >= z);
      case B_less_equal: return tv_i(x <= z);
      case B_logical_and: return tv_i(x != 0 && z != 0);
      case B_logical_or: return tv_i(x != 0 || z != 0);
      case B_logical_xor: return tv_i((x != 0) != (z != 0));
    }
    return tv_f(0);
  }
  cx x = cx_of(a), z = cx_of(b);
  bool xt = x.re != 0 || x.im != 0, zt = z.re != 0 || z.im != 0;
  switch (op) {
    case B_add: return tv_cx(cx_add(x, z));
    case B_subtract: return tv_cx(cx_sub(x, z));
    case B_multiply: return tv_cx(cx_mul(x, z));
    case B_divide: return tv_cx(cx_div(x, z));
    case B_pow:
      if (x.re == 0 && x.im == 0 && z.im == 0 && z.re >= 0)
        return tv_c(z.re == 0 ? 1 : 0, 0);
      return tv_cx(cx_exp(cx_mul(z, cx_log(x))));
    case B_atan2: { /* XLA: -i log((x + iy) / sqrt(x^2 + y^2)), y = a */
      cx y = x, xx = z;
      cx s = cx_sqrt(cx_add(cx_mul(xx, xx), cx_mul(y, y)));
      cx l = cx_log(cx_div(cx_add(xx, cx_i(y)), s));
      return tv_cx(cx_negi(l));
    }
    case B_equal: return tv_i(x.re == z.re && x.im == z.im);
    case B_not_equal: return tv_i(x.re != z.re || x.im != z.im);
    case B_logical_and: return tv_i(xt && zt);
    case B_logical_or: return tv_i(xt || zt);
    case B_logical_xor: return tv_i(xt != zt);
  }
  return tv_c(0, 0);
}

static em_dtype bin_out(int op, em_dtype t) { return bin_is_pred(op) ? EM_U8 : t; }

/* Tolerances of op on t. */
static void bin_tol(int op, em_dtype t, double *rtol, double *atol) {
  *rtol = rtol_of(t);
  *atol = atol_of(t);
  if (dt_cpx(t) && (op == B_multiply || op == B_divide || op == B_pow ||
                    op == B_atan2))
    *atol += *rtol * 10; /* cancellation between parts */
  /* + - * / min max remainder are correctly rounded in f32; pow and atan2
   * come from libm */
  if (t == EM_F32) *rtol = (op == B_pow || op == B_atan2) ? 5e-6 : 2e-6;
}

typedef struct {
  int op, k;
} bin_ctx;
static void fill_bin(host *h, const void *c_) {
  const bin_ctx *c = c_;
  for (int64_t i = 0; i < h->n; i++) h->v[i] = gen_bin(c->op, h->t, c->k);
  h_nonzero(h);
}

/* Runs op on (a, b) and compares with the elementwise reference over the
 * broadcast shape. */
static void run_bin_case(int op, const ah *a, const ah *b, const char *kind) {
  em_dtype t = a->h.t;
  int nd;
  int64_t sh[EM_MAX_NDIM];
  if (!bcast_shape(&a->h, &b->h, &nd, sh)) abort();
  host A = h_broadcast(&a->h, nd, sh, NULL), B = h_broadcast(&b->h, nd, sh, NULL);
  host W = h_new(bin_out(op, t), nd, sh);
  for (int64_t i = 0; i < W.n; i++) W.v[i] = ref_bin(op, t, A.v[i], B.v[i]);
  em_array *o = SENTINEL;
  em_status st = BIN[op].fn(&o, a->a, b->a);
  char what[160];
  snprintf(what, sizeof what, "%s %s %s", BIN[op].name, dn(t), kind);
  CHECK(st == EM_OK && o && o != SENTINEL, "%s: status %s (%s)", what,
        em_status_name(st), em_last_error());
  if (st == EM_OK) {
    double rtol, atol;
    bin_tol(op, t, &rtol, &atol);
    check_host(what, o, &W, rtol, atol);
    em_array_release(o);
  }
  h_free(&A);
  h_free(&B);
  h_free(&W);
}

static ah mk_bin(int op, em_dtype t, int k, int nd, const int64_t *sh) {
  bin_ctx c = {op, k};
  host h = h_new(t, nd, sh);
  fill_bin(&h, &c);
  return ah_of(h);
}

static bool is_family_dtype(em_dtype t) {
  return t == EM_U8 || t == EM_S32 || t == EM_S64 || t == EM_U64 ||
         t == EM_F16 || t == EM_BF16 || t == EM_F32 || t == EM_F64 ||
         t == EM_C64 || t == EM_C128;
}

static void test_binary_op(int op) {
  int large_done = 0;
  for (int di = 0; di < N_ALL_DTYPES; di++) {
    em_dtype t = ALL_DTYPES[di];
    if (!bin_defined(op, t)) {
      /* must be rejected with a message naming op and dtype */
      int64_t s2[1] = {2};
      host h = h_new(t, 1, s2);
      h.v[0] = quant(t, tv_c(1, 0));
      h.v[1] = quant(t, tv_c(2, 1));
      if (dt_int(t)) h.v[0].i = 1, h.v[1].i = 2;
      em_array *x = h_array(&h), *o = SENTINEL;
      em_status st = BIN[op].fn(&o, x, x);
      CHECK_ERR(st, o, BIN[op].name, dn(t), "[2]");
      em_array_release(o == SENTINEL ? NULL : o);
      em_array_release(x);
      h_free(&h);
      continue;
    }
    /* scalar op scalar */
    {
      ah a = mk_bin(op, t, 0, 0, NULL), b = mk_bin(op, t, 1, 0, NULL);
      run_bin_case(op, &a, &b, "scalar");
      ah_free(&a);
      ah_free(&b);
    }
    /* same shape, contiguous */
    {
      int64_t s[2] = {5, 7};
      ah a = mk_bin(op, t, 0, 2, s), b = mk_bin(op, t, 1, 2, s);
      run_bin_case(op, &a, &b, "[5,7]");
      ah_free(&a);
      ah_free(&b);
    }
    /* broadcast [3,1,5] op [4,1] -> [3,4,5] and [3,1] op [4] */
    {
      int64_t s1[3] = {3, 1, 5}, s2[2] = {4, 1}, s3[2] = {3, 1}, s4[1] = {4};
      ah a = mk_bin(op, t, 0, 3, s1), b = mk_bin(op, t, 1, 2, s2);
      run_bin_case(op, &a, &b, "[3,1,5]x[4,1]");
      ah_free(&a);
      ah_free(&b);
      a = mk_bin(op, t, 0, 2, s3);
      b = mk_bin(op, t, 1, 1, s4);
      run_bin_case(op, &a, &b, "[3,1]x[4]");
      ah_free(&a);
      ah_free(&b);
    }
    /* scalar broadcast on either side */
    {
      int64_t s[2] = {6, 5};
      ah a = mk_bin(op, t, 0, 0, NULL), b = mk_bin(op, t, 1, 2, s);
      run_bin_case(op, &a, &b, "[]x[6,5]");
      ah_free(&a);
      ah_free(&b);
      a = mk_bin(op, t, 0, 2, s);
      b = mk_bin(op, t, 1, 0, NULL);
      run_bin_case(op, &a, &b, "[6,5]x[]");
      ah_free(&a);
      ah_free(&b);
    }
    /* zero-size */
    {
      int64_t s1[2] = {0, 3}, s2[2] = {1, 3};
      ah a = mk_bin(op, t, 0, 2, s1), b = mk_bin(op, t, 1, 2, s2);
      run_bin_case(op, &a, &b, "[0,3]x[1,3]");
      ah_free(&a);
      ah_free(&b);
    }
    /* non-contiguous operands (every kind of view), also with broadcast */
    for (int kind = 0; kind < 5; kind++) {
      int64_t s[3] = {4, 6, 5};
      bin_ctx ca = {op, 0}, cb = {op, 1};
      ah a = ah_noncontig(t, 3, s, kind, fill_bin, &ca);
      ah b = ah_noncontig(t, 3, s, (kind + 2) % 5, fill_bin, &cb);
      char what[32];
      snprintf(what, sizeof what, "view%d/view%d", kind, (kind + 2) % 5);
      run_bin_case(op, &a, &b, what);
      ah_free(&b);
      int64_t s2[2] = {1, 5};
      ah c = ah_noncontig(t, 2, s2, 2, fill_bin, &cb);
      run_bin_case(op, &a, &c, "view x reversed [1,5]");
      ah_free(&a);
      ah_free(&c);
    }
    /* large: the thread pool (a few dtypes per op) */
    if (is_family_dtype(t) && large_done < 3 &&
        ((op + di) % 3 == 0 || t == EM_F32 || t == EM_S32)) {
      large_done++;
      int64_t s[2] = {300, 1001};
      ah a = mk_bin(op, t, 0, 2, s), b = mk_bin(op, t, 1, 2, s);
      run_bin_case(op, &a, &b, "large");
      ah_free(&b);
      /* large, broadcast and transposed */
      int64_t sb[1] = {300};
      ah c = mk_bin(op, t, 1, 1, sb);
      ah at = ah_transpose(&a, NULL);
      run_bin_case(op, &at, &c, "large transposed x [300]");
      ah_free(&at);
      ah_free(&c);
      ah_free(&a);
    }
  }
}

/* Special values: exact expectations, written out by hand. */
static em_array *f64s(int n, const double *v) {
  int64_t s[1] = {n};
  em_array *a = NULL;
  return MUST(em_array_from_data(&a, EM_F64, 1, s, v, (size_t)n * 8, em_cpu()), a);
}

static void test_binary_specials(void) {
  /* float min/max: NaN propagates, -0 < +0 in both orders */
  const double xa[] = {NAN, 1, -0.0, 0.0, -0.0, INFINITY, -INFINITY, 2};
  const double xb[] = {1, NAN, 0.0, -0.0, -0.0, 5, 3, NAN};
  em_dtype fts[] = {EM_F16, EM_BF16, EM_F32, EM_F64};
  for (int k = 0; k < 4; k++) {
    em_dtype t = fts[k];
    int64_t s[1] = {8};
    host A = h_new(t, 1, s), B = h_new(t, 1, s);
    for (int i = 0; i < 8; i++) {
      A.v[i] = tv_f(xa[i]);
      B.v[i] = tv_f(xb[i]);
    }
    em_array *a = h_array(&A), *b = h_array(&B), *mn = NULL, *mx = NULL;
    MUST(em_min(&mn, a, b), mn);
    MUST(em_max(&mx, a, b), mx);
    host Wn = h_new(t, 1, s), Wx = h_new(t, 1, s);
    const double wn[] = {NAN, NAN, -0.0, -0.0, -0.0, 5, -INFINITY, NAN};
    const double wx[] = {NAN, NAN, 0.0, 0.0, -0.0, INFINITY, 3, NAN};
    for (int i = 0; i < 8; i++) {
      Wn.v[i] = tv_f(wn[i]);
      Wx.v[i] = tv_f(wx[i]);
    }
    check_host_ex("min specials", mn, &Wn, 0, 0, NULL, CMP_SIGNZERO);
    check_host_ex("max specials", mx, &Wx, 0, 0, NULL, CMP_SIGNZERO);
    /* comparisons with NaN: false except not_equal; logical: NaN true */
    em_array *eq = NULL, *ne = NULL, *lt = NULL, *ge = NULL, *la = NULL;
    MUST(em_equal(&eq, a, b), eq);
    MUST(em_not_equal(&ne, a, b), ne);
    MUST(em_less(&lt, a, b), lt);
    MUST(em_greater_equal(&ge, a, b), ge);
    MUST(em_logical_and(&la, a, b), la);
    host We = h_new(EM_U8, 1, s), Wne = h_new(EM_U8, 1, s), Wl = h_new(EM_U8, 1, s),
         Wg = h_new(EM_U8, 1, s), Wa = h_new(EM_U8, 1, s);
    for (int i = 0; i < 8; i++) {
      We.v[i] = tv_i(xa[i] == xb[i]);
      Wne.v[i] = tv_i(xa[i] != xb[i]);
      Wl.v[i] = tv_i(xa[i] < xb[i]);
      Wg.v[i] = tv_i(xa[i] >= xb[i]);
      Wa.v[i] = tv_i(xa[i] != 0 && xb[i] != 0);
    }
    check_host("equal specials", eq, &We, 0, 0);
    check_host("not_equal specials", ne, &Wne, 0, 0);
    check_host("less specials", lt, &Wl, 0, 0);
    check_host("greater_equal specials", ge, &Wg, 0, 0);
    check_host("logical_and specials", la, &Wa, 0, 0);
    /* division by zero and inf arithmetic */
    em_array *dv = NULL, *ad = NULL;
    MUST(em_divide(&dv, b, a), dv);
    MUST(em_add(&ad, a, b), ad);
    host Wd = h_new(t, 1, s), Wad = h_new(t, 1, s);
    for (int i = 0; i < 8; i++) {
      Wd.v[i] = tv_f(round_to(t, xb[i] / xa[i]));
      Wad.v[i] = tv_f(round_to(t, xa[i] + xb[i]));
    }
    check_host_ex("divide specials", dv, &Wd, rtol_of(t), 0, NULL, CMP_SIGNZERO);
    check_host_ex("add specials", ad, &Wad, 0, 0, NULL, CMP_SIGNZERO);
    em_array *all[] = {a, b, mn, mx, eq, ne, lt, ge, la, dv, ad};
    for (int i = 0; i < 11; i++) em_array_release(all[i]);
    host *hs[] = {&A, &B, &Wn, &Wx, &We, &Wne, &Wl, &Wg, &Wa, &Wd, &Wad};
    for (int i = 0; i < 11; i++) h_free(hs[i]);
  }
  /* f16 overflow: 60000 + 60000 = inf; bf16 keeps range */
  {
    int64_t s[1] = {2};
    host A = h_new(EM_F16, 1, s);
    A.v[0] = tv_f(60000);
    A.v[1] = tv_f(-60000);
    em_array *a = h_array(&A), *o = NULL;
    MUST(em_add(&o, a, a), o);
    host W = h_new(EM_F16, 1, s);
    W.v[0] = tv_f(INFINITY);
    W.v[1] = tv_f(-INFINITY);
    check_host("f16 add overflow", o, &W, 0, 0);
    em_array_release(a);
    em_array_release(o);
    h_free(&A);
    h_free(&W);
  }
  /* integer edge cases, each type: INT_MIN / -1, x / 0, x % 0, shifts */
  for (int di = 0; di < 8; di++) {
    em_dtype t = ALL_DTYPES[di];
    int W = dt_bits(t);
    int64_t mn = int_min_of(t), mx = int_max_of(t);
    const int n = 10;
    int64_t s[1] = {n};
    host A = h_new(t, 1, s), B = h_new(t, 1, s);
    int64_t av[] = {mn, 7, -7, 7, mx, 1, 5, -1, mn, 3};
    int64_t bv[] = {-1, 0, 0, -2, 1, W - 1, W, -1, 2, 1};
    for (int i = 0; i < n; i++) {
      A.v[i] = tv_i(wrap_int(t, (uint64_t)av[i]));
      B.v[i] = tv_i(wrap_int(t, (uint64_t)bv[i]));
    }
    em_array *a = h_array(&A), *b = h_array(&B);
    int ops[] = {B_quotient, B_divide, B_remainder, B_left_shift, B_right_shift,
                 B_pow, B_multiply, B_subtract};
    for (int k = 0; k < 8; k++) {
      em_array *o = NULL;
      MUST(BIN[ops[k]].fn(&o, a, b), o);
      host Wt = h_new(t, 1, s);
      for (int i = 0; i < n; i++) Wt.v[i] = ref_bin(ops[k], t, A.v[i], B.v[i]);
      char what[64];
      snprintf(what, sizeof what, "%s int edge cases", BIN[ops[k]].name);
      check_host(what, o, &Wt, 0, 0);
      em_array_release(o);
      h_free(&Wt);
    }
    /* a few values written out so the reference itself is checked */
    if (t == EM_S32) {
      em_array *q = NULL, *r = NULL, *ls = NULL, *rs = NULL;
      MUST(em_quotient(&q, a, b), q);
      MUST(em_remainder(&r, a, b), r);
      MUST(em_left_shift(&ls, a, b), ls);
      MUST(em_right_shift(&rs, a, b), rs);
      int32_t qv[10], rv[10], lv[10], sv[10];
      em_array_to_host(q, qv, sizeof qv);
      em_array_to_host(r, rv, sizeof rv);
      em_array_to_host(ls, lv, sizeof lv);
      em_array_to_host(rs, sv, sizeof sv);
      CHECK(qv[0] == INT32_MIN && qv[1] == -1 && qv[2] == -1 && qv[3] == -3 &&
                qv[4] == INT32_MAX && qv[8] == INT32_MIN / 2,
            "s32 quotient: %d %d %d %d %d %d", qv[0], qv[1], qv[2], qv[3], qv[4], qv[8]);
      CHECK(rv[0] == 0 && rv[1] == 7 && rv[2] == -7 && rv[3] == 1 && rv[7] == 0,
            "s32 remainder: %d %d %d %d %d", rv[0], rv[1], rv[2], rv[3], rv[7]);
      CHECK(lv[5] == INT32_MIN && lv[6] == 0 && lv[7] == 0 && lv[9] == 6,
            "s32 left_shift: %d %d %d %d", lv[5], lv[6], lv[7], lv[9]);
      CHECK(sv[0] == -1 && sv[6] == 0 && sv[8] == INT32_MIN / 4 && sv[9] == 1,
            "s32 right_shift: %d %d %d %d", sv[0], sv[6], sv[8], sv[9]);
      em_array_release(q);
      em_array_release(r);
      em_array_release(ls);
      em_array_release(rs);
    }
    em_array_release(a);
    em_array_release(b);
    h_free(&A);
    h_free(&B);
  }
  /* u8 wrap written out: 200 + 100 = 44, 3 - 5 = 254, 16 * 17 = 16,
   * 3 ^ 5 (pow) = 243, 2 ^ 9 = 0 */
  {
    uint8_t av[] = {200, 3, 16, 3, 2}, bv[] = {100, 5, 17, 5, 9};
    int64_t s[1] = {5};
    em_array *a = NULL, *b = NULL, *x = NULL, *y = NULL, *z = NULL, *p = NULL;
    MUST(em_array_from_data(&a, EM_U8, 1, s, av, 5, em_cpu()), a);
    MUST(em_array_from_data(&b, EM_U8, 1, s, bv, 5, em_cpu()), b);
    MUST(em_add(&x, a, b), x);
    MUST(em_subtract(&y, a, b), y);
    MUST(em_multiply(&z, a, b), z);
    MUST(em_pow(&p, a, b), p);
    const uint8_t *xs = em_array_data(x), *ys = em_array_data(y),
                  *zs = em_array_data(z), *ps = em_array_data(p);
    CHECK(xs && xs[0] == 44 && ys && ys[1] == 254 && zs && zs[2] == 16 &&
              ps && ps[3] == 243 && ps[4] == 0,
          "u8 wrap: %d %d %d %d %d", xs ? xs[0] : -1, ys ? ys[1] : -1,
          zs ? zs[2] : -1, ps ? ps[3] : -1, ps ? ps[4] : -1);
    em_array *all[] = {a, b, x, y, z, p};
    for (int i = 0; i < 6; i++) em_array_release(all[i]);
  }
  /* f64 written-out values */
  {
    const double av[] = {7.5, -7.5, 2, 1}, bv[] = {2, 2, 10, 0};
    em_array *a = f64s(4, av), *b = f64s(4, bv), *r = NULL, *p = NULL, *d = NULL;
    MUST(em_remainder(&r, a, b), r);
    MUST(em_pow(&p, a, b), p);
    MUST(em_divide(&d, a, b), d);
    const double *rs = em_array_data(r), *ps = em_array_data(p), *ds = em_array_data(d);
    CHECK(rs && rs[0] == 1.5 && rs[1] == -1.5 && ps && ps[2] == 1024 &&
              ps[0] == 56.25 && ds && ds[3] == INFINITY && ds[0] == 3.75,
          "f64 remainder/pow/divide written out");
    em_array *all[] = {a, b, r, p, d};
    for (int i = 0; i < 5; i++) em_array_release(all[i]);
  }
}

/* ---- unary ops --------------------------------------------------------- */

enum {
#define X(n) U_##n,
  EM_UNARY_OPS(X)
#undef X
  U_COUNT
};
typedef em_status (*unfn)(em_array **, em_array *);
static const struct {
  const char *name;
  unfn fn;
} UN[] = {
#define X(n) {#n, em_##n},
    EM_UNARY_OPS(X)
#undef X
};

static bool un_is_math(int op) {
  return op <= U_erf_inv; /* exp .. erf_inv come first in EM_UNARY_OPS */
}

/* 1: must be defined; 0: must be rejected; -1: either (the Nx layer
 * promotes or the engine may choose). */
static int un_defined(int op, em_dtype t) {
  bool i = dt_int(t), f = dt_flt(t), c = dt_cpx(t);
  switch (op) {
    case U_erf: case U_erfc: case U_erf_inv: case U_cbrt:
      return f ? 1 : i ? -1 : -1;
    case U_abs: case U_negate: case U_sign: case U_logical_not:
      return 1;
    case U_bitwise_not: case U_count_leading_zeros: case U_population_count:
      return i ? 1 : 0;
    case U_ceil: case U_floor: case U_round:
      return f ? 1 : c ? 0 : -1;
    case U_conjugate: case U_real: case U_imag:
      return c ? 1 : -1;
    case U_is_nan: case U_is_infinity:
      return i ? -1 : 1;
    default: /* math */
      return (f || c) ? 1 : -1;
  }
}

static em_dtype un_out(int op, em_dtype t) {
  switch (op) {
    case U_is_nan: case U_is_infinity: case U_logical_not: return EM_U8;
    case U_abs: case U_real: case U_imag: return dt_real(t);
    default: return t;
  }
}

/* Domain of each math op for real inputs. */
static void un_range(int op, double *lo, double *hi) {
  *lo = -10;
  *hi = 10;
  switch (op) {
    case U_exp: *lo = -5; *hi = 5; break;
    case U_expm1: *lo = -3; *hi = 3; break;
    case U_log: case U_rsqrt: *lo = 0.01; *hi = 100; break;
    case U_log1p: *lo = -0.9; *hi = 10; break;
    case U_cos: case U_sin: *lo = -6; *hi = 6; break;
    case U_tan: *lo = -1.3; *hi = 1.3; break;
    case U_cosh: case U_sinh: case U_tanh: *lo = -4; *hi = 4; break;
    case U_acos: case U_asin: case U_erf_inv: *lo = -0.99; *hi = 0.99; break;
    case U_acosh: *lo = 1; *hi = 20; break;
    case U_atanh: *lo = -0.95; *hi = 0.95; break;
    case U_sqrt: *lo = 0; *hi = 100; break;
    case U_cbrt: *lo = -100; *hi = 100; break;
    case U_erf: *lo = -3; *hi = 3; break;
    case U_erfc: *lo = -2; *hi = 3; break;
    default: break;
  }
}

static tv gen_un(int op, em_dtype t) {
  double r = rng_unit();
  if (op == U_is_nan || op == U_is_infinity || op == U_logical_not) {
    static const double sp[] = {0, -0.0, 1, -2.5, NAN, INFINITY, -INFINITY, 3};
    if (dt_int(t)) return r < 0.3 ? tv_i(0) : rnd_bits(t);
    double re = sp[rng_int(0, 7)], im = dt_cpx(t) ? sp[rng_int(0, 7)] : 0;
    if (dt_cpx(t) && rng_unit() < 0.5) im = 0;
    return quant(t, tv_c(re, im));
  }
  if (dt_int(t)) {
    if (op == U_sqrt || op == U_log || op == U_rsqrt || op == U_acosh)
      return rnd_tv(t, 1, 100);
    if (un_is_math(op)) return rnd_tv(t, -1, 1);
    if (op == U_count_leading_zeros || op == U_population_count)
      return r < 0.2 ? rnd_tv(t, 0, 3) : rnd_bits(t);
    return r < 0.1 ? tv_i(int_min_of(t)) : r < 0.3 ? rnd_tv(t, -3, 3) : rnd_bits(t);
  }
  if (dt_flt(t)) {
    double lo, hi;
    un_range(op, &lo, &hi);
    if ((op == U_expm1 || op == U_log1p || op == U_sinh || op == U_tanh ||
         op == U_asinh || op == U_atan || op == U_erf || op == U_erf_inv) && r < 0.15)
      return rnd_tv(t, -1e-3, 1e-3);
    if (op == U_round || op == U_ceil || op == U_floor) {
      if (r < 0.5) return quant(t, tv_f(0.5 * (double)rng_int(-16, 16)));
      return rnd_tv(t, -10, 10);
    }
    if (op == U_sign || op == U_abs || op == U_negate)
      if (r < 0.1) return tv_f(r < 0.05 ? 0.0 : -0.0);
    return rnd_tv(t, lo, hi);
  }
  /* complex: away from branch cuts */
  double re, im;
  switch (op) {
    case U_acos: case U_asin: case U_atan: case U_acosh: case U_asinh:
    case U_atanh:
      re = rng_uniform(-0.8, 0.8);
      im = (r < 0.5 ? -1 : 1) * rng_uniform(0.2, 0.8);
      break;
    case U_log: case U_log1p: case U_sqrt: case U_rsqrt: case U_cbrt:
      re = rng_uniform(-2, 2);
      im = (r < 0.5 ? -1 : 1) * rng_uniform(0.2, 2);
      break;
    case U_tan:
      re = rng_uniform(-1.2, 1.2);
      im = rng_uniform(-1, 1);
      break;
    default:
      re = rng_uniform(-2, 2);
      im = rng_uniform(-2, 2);
  }
  return quant(t, tv_c(re, im));
}

static int clz_bits(uint64_t v, int W) {
  int n = 0;
  for (int b = W - 1; b >= 0 && !((v >> b) & 1u); b--) n++;
  return n;
}
static int popc_bits(uint64_t v, int W) {
  int n = 0;
  for (int b = 0; b < W; b++) n += (int)((v >> b) & 1u);
  return n;
}
/* erf^-1 by bisection on erf (slow, simple, accurate to double). */
static double erfinv_ref(double y) {
  if (isnan(y)) return y;
  /* erf(x) = 2x/sqrt(pi) (1 - x^2/3 + ...): exact enough for tiny y */
  if (fabs(y) < 1e-12) return y * 0.88622692545275801365;
  if (y <= -1) return y == -1 ? -INFINITY : NAN;
  if (y >= 1) return y == 1 ? INFINITY : NAN;
  double lo = -7, hi = 7;
  for (int i = 0; i < 200; i++) {
    double m = 0.5 * (lo + hi);
    if (erf(m) < y) lo = m;
    else hi = m;
  }
  return 0.5 * (lo + hi);
}

static double real_math(int op, double x) {
  switch (op) {
    case U_exp: return exp(x);
    case U_expm1: return expm1(x);
    case U_log: return log(x);
    case U_log1p: return log1p(x);
    case U_sigmoid: return 1 / (1 + exp(-x));
    case U_cos: return cos(x);
    case U_sin: return sin(x);
    case U_tan: return tan(x);
    case U_cosh: return cosh(x);
    case U_sinh: return sinh(x);
    case U_tanh: return tanh(x);
    case U_acos: return acos(x);
    case U_asin: return asin(x);
    case U_atan: return atan(x);
    case U_acosh: return acosh(x);
    case U_asinh: return asinh(x);
    case U_atanh: return atanh(x);
    case U_sqrt: return sqrt(x);
    case U_rsqrt: return 1 / sqrt(x);
    case U_cbrt: return cbrt(x);
    case U_erf: return erf(x);
    case U_erfc: return erfc(x);
    case U_erf_inv: return erfinv_ref(x);
  }
  return NAN;
}

static cx cx_math(int op, cx z) {
  cx one = cx_r(1);
  switch (op) {
    case U_exp: return cx_exp(z);
    case U_expm1: return cx_sub(cx_exp(z), one);
    case U_log: return cx_log(z);
    case U_log1p: return cx_log(cx_add(one, z));
    case U_sigmoid: return cx_div(one, cx_add(one, cx_exp(cx_scale(z, -1))));
    case U_sin: return (cx){sin(z.re) * cosh(z.im), cos(z.re) * sinh(z.im)};
    case U_cos: return (cx){cos(z.re) * cosh(z.im), -sin(z.re) * sinh(z.im)};
    case U_tan: return cx_div(cx_math(U_sin, z), cx_math(U_cos, z));
    case U_sinh: return (cx){sinh(z.re) * cos(z.im), cosh(z.re) * sin(z.im)};
    case U_cosh: return (cx){cosh(z.re) * cos(z.im), sinh(z.re) * sin(z.im)};
    case U_tanh: return cx_div(cx_math(U_sinh, z), cx_math(U_cosh, z));
    case U_asin: /* -i log(iz + sqrt(1 - z^2)) */
      return cx_negi(cx_log(cx_add(cx_i(z), cx_sqrt(cx_sub(one, cx_mul(z, z))))));
    case U_acos: return cx_sub(cx_r(1.57079632679489661923), cx_math(U_asin, z));
    case U_atan: /* (i/2) (log(1 - iz) - log(1 + iz)) */
      return cx_scale(cx_i(cx_sub(cx_log(cx_sub(one, cx_i(z))),
                                  cx_log(cx_add(one, cx_i(z))))), 0.5);
    case U_asinh: return cx_log(cx_add(z, cx_sqrt(cx_add(cx_mul(z, z), one))));
    case U_acosh:
      return cx_log(cx_add(z, cx_mul(cx_sqrt(cx_add(z, one)), cx_sqrt(cx_sub(z, one)))));
    case U_atanh:
      return cx_scale(cx_sub(cx_log(cx_add(one, z)), cx_log(cx_sub(one, z))), 0.5);
    case U_sqrt: return cx_sqrt(z);
    case U_rsqrt: return cx_div(one, cx_sqrt(z));
    case U_cbrt: return cx_exp(cx_scale(cx_log(z), 1.0 / 3));
  }
  return (cx){NAN, NAN};
}

static tv ref_un(int op, em_dtype t, tv a) {
  if (dt_int(t)) {
    int W = dt_bits(t);
    uint64_t ux = (uint64_t)a.i & (W == 64 ? ~0ull : (1ull << W) - 1);
    int64_t x = a.i;
    switch (op) {
      case U_abs: return tv_i(wrap_int(t, (!dt_uns(t) && x < 0) ? 0 - (uint64_t)x : (uint64_t)x));
      case U_negate: return tv_i(wrap_int(t, 0 - (uint64_t)x));
      case U_sign: return tv_i(dt_uns(t) ? (x != 0) : (x > 0) - (x < 0));
      case U_bitwise_not: return tv_i(wrap_int(t, ~(uint64_t)x));
      case U_count_leading_zeros: return tv_i(clz_bits(ux, W));
      case U_population_count: return tv_i(popc_bits(ux, W));
      case U_ceil: case U_floor: case U_round: case U_conjugate: case U_real:
        return a;
      case U_imag: return tv_i(0);
      case U_is_nan: case U_is_infinity: return tv_i(0);
      case U_logical_not: return tv_i(x == 0);
    }
    /* math on ints (only if the engine defines it: float output) */
    return tv_f(real_math(op, dt_uns(t) ? (double)ux : (double)x));
  }
  if (dt_flt(t)) {
    double x = a.re;
    switch (op) {
      case U_abs: return tv_f(fabs(x));
      case U_negate: return tv_f(-x);
      case U_sign: return tv_f(x < 0 ? -1 : x > 0 ? 1 : x);
      case U_ceil: return tv_f(ceil(x));
      case U_floor: return tv_f(floor(x));
      case U_round: return tv_f(round(x)); /* half away from zero */
      case U_conjugate: return tv_c(x, 0);
      case U_real: return tv_f(x);
      case U_imag: return tv_f(0);
      case U_is_nan: return tv_i(isnan(x) != 0);
      case U_is_infinity: return tv_i(isinf(x) != 0);
      case U_logical_not: return tv_i(x == 0);
    }
    return tv_f(real_math(op, x));
  }
  cx z = cx_of(a);
  switch (op) {
    case U_abs: return tv_f(cx_abs(z));
    case U_negate: return tv_c(-z.re, -z.im);
    case U_sign: {
      double m = cx_abs(z);
      return m == 0 ? tv_c(0, 0) : tv_c(z.re / m, z.im / m);
    }
    case U_conjugate: return tv_c(z.re, -z.im);
    case U_real: return tv_f(z.re);
    case U_imag: return tv_f(z.im);
    case U_is_nan: return tv_i(isnan(z.re) || isnan(z.im));
    case U_is_infinity: return tv_i(isinf(z.re) || isinf(z.im));
    case U_logical_not: return tv_i(z.re == 0 && z.im == 0);
  }
  return tv_cx(cx_math(op, z));
}

static void un_tol(int op, em_dtype t, double *rtol, double *atol) {
  *rtol = rtol_of(t);
  *atol = atol_of(t);
  if (op == U_sin || op == U_cos || op == U_tan || op == U_erf_inv ||
      op == U_erfc)
    *atol += *rtol; /* near zeros of the function */
  if (dt_cpx(t) && un_is_math(op)) *atol += *rtol * 4;
  if (t == EM_F32 && un_is_math(op)) *rtol = 5e-6;
  if (t == EM_C64 && un_is_math(op)) *rtol *= 2;
}

static void fill_un(host *h, const void *c_) {
  int op = *(const int *)c_;
  for (int64_t i = 0; i < h->n; i++) h->v[i] = gen_un(op, h->t);
  h_nonzero(h);
}

static void run_un_case(int op, const ah *a, const char *kind) {
  em_dtype t = a->h.t;
  em_array *o = SENTINEL;
  em_status st = UN[op].fn(&o, a->a);
  char what[160];
  snprintf(what, sizeof what, "%s %s %s", UN[op].name, dn(t), kind);
  CHECK(st == EM_OK && o && o != SENTINEL, "%s: status %s (%s)", what,
        em_status_name(st), em_last_error());
  if (st != EM_OK || !o || o == SENTINEL) return;
  em_dtype ot = em_array_dtype(o);
  /* expected output dtype (math on ints: whatever float the engine chose,
   * conjugate of a real: the engine may return complex) */
  em_dtype want_t = un_out(op, t);
  if (dt_int(t) && (un_is_math(op) || op == U_real || op == U_imag) && dt_flt(ot))
    want_t = ot;
  if (op == U_conjugate && !dt_cpx(t) && dt_cpx(ot)) want_t = ot;
  CHECK(ot == want_t, "%s: output dtype %s, want %s", what, dn(ot), dn(want_t));
  host W = h_new(want_t, a->h.nd, a->h.sh);
  for (int64_t i = 0; i < W.n; i++) {
    tv r = ref_un(op, t, a->h.v[i]);
    if (dt_int(t) && !dt_int(want_t) && !un_is_math(op))
      r = tv_c(dt_uns(t) ? (double)(uint64_t)r.i : (double)r.i, 0);
    W.v[i] = r;
  }
  double rtol, atol;
  un_tol(op, dt_flt(want_t) || dt_cpx(want_t) ? (dt_int(t) ? want_t : t) : t, &rtol, &atol);
  if (dt_int(want_t)) rtol = atol = 0;
  check_host_ex(what, o, &W, rtol, atol, NULL,
                (op == U_negate || op == U_abs) && dt_flt(t) ? CMP_SIGNZERO : 0);
  em_array_release(o);
  h_free(&W);
}

static void test_unary_op(int op) {
  int large_done = 0;
  for (int di = 0; di < N_ALL_DTYPES; di++) {
    em_dtype t = ALL_DTYPES[di];
    int def = un_defined(op, t);
    int64_t s2[1] = {2};
    /* probe */
    host P = h_new(t, 1, s2);
    fill_un(&P, &op);
    em_array *pa = h_array(&P), *po = SENTINEL;
    em_status pst = UN[op].fn(&po, pa);
    if (pst == EM_OK) em_array_release(po);
    em_array_release(pa);
    h_free(&P);
    if (def == 0) {
      CHECK_ERR(pst, pst == EM_OK ? (em_array *)SENTINEL : po, UN[op].name, dn(t), "[2]");
      continue;
    }
    if (def == 1)
      CHECK(pst == EM_OK, "%s must be defined for %s: %s", UN[op].name, dn(t),
            em_last_error());
    if (pst != EM_OK) {
      /* optional and rejected: the message must still be well formed */
      CHECK_ERR(pst, po, UN[op].name, dn(t));
      continue;
    }
    {
      host h = h_new(t, 0, NULL);
      fill_un(&h, &op);
      ah a = ah_of(h);
      run_un_case(op, &a, "scalar");
      ah_free(&a);
    }
    {
      int64_t s[2] = {7, 9};
      host h = h_new(t, 2, s);
      fill_un(&h, &op);
      ah a = ah_of(h);
      run_un_case(op, &a, "[7,9]");
      ah_free(&a);
    }
    {
      int64_t s[3] = {2, 0, 3};
      host h = h_new(t, 3, s);
      ah a = ah_of(h);
      run_un_case(op, &a, "[2,0,3]");
      ah_free(&a);
    }
    for (int kind = 0; kind < 5; kind++) {
      int64_t s[3] = {3, 5, 4};
      ah a = ah_noncontig(t, 3, s, kind, fill_un, &op);
      char what[32];
      snprintf(what, sizeof what, "view%d", kind);
      run_un_case(op, &a, what);
      ah_free(&a);
    }
    if (is_family_dtype(t) && large_done < 2 &&
        ((op + di) % 4 == 0 || t == EM_F32 || t == EM_S64)) {
      large_done++;
      int64_t s[2] = {1000, 301};
      host h = h_new(t, 2, s);
      fill_un(&h, &op);
      ah a = ah_of(h);
      run_un_case(op, &a, "large");
      ah at = ah_transpose(&a, NULL);
      run_un_case(op, &at, "large transposed");
      ah_free(&at);
      ah_free(&a);
    }
  }
}

/* Written-out unary values: round half away from zero, sign, clz/popcount
 * per width, abs of INT_MIN, is_nan/is_infinity, real/imag. */
static void test_unary_specials(void) {
  {
    const double v[] = {2.5, -2.5, 0.5, -0.5, 1.49, -0.0, NAN, -INFINITY};
    em_array *a = f64s(8, v), *r = NULL, *s = NULL, *fl = NULL, *ce = NULL,
             *in = NULL, *ii = NULL;
    MUST(em_round(&r, a), r);
    MUST(em_sign(&s, a), s);
    MUST(em_floor(&fl, a), fl);
    MUST(em_ceil(&ce, a), ce);
    MUST(em_is_nan(&in, a), in);
    MUST(em_is_infinity(&ii, a), ii);
    const double *rv = em_array_data(r), *sv = em_array_data(s),
                 *fv = em_array_data(fl), *cv = em_array_data(ce);
    const uint8_t *nv = em_array_data(in), *iv = em_array_data(ii);
    CHECK(rv && rv[0] == 3 && rv[1] == -3 && rv[2] == 1 && rv[3] == -1 &&
              rv[4] == 1 && rv[5] == 0 && isnan(rv[6]) &&
              rv[7] == -INFINITY,
          "round: %g %g %g %g %g", rv ? rv[0] : 0, rv ? rv[1] : 0, rv ? rv[2] : 0,
          rv ? rv[3] : 0, rv ? rv[4] : 0);
    CHECK(sv && sv[0] == 1 && sv[1] == -1 && sv[5] == 0 && isnan(sv[6]) &&
              sv[7] == -1,
          "sign: %g %g %g %g", sv ? sv[0] : 0, sv ? sv[1] : 0, sv ? sv[6] : 0,
          sv ? sv[7] : 0);
    CHECK(fv && cv && fv[0] == 2 && cv[0] == 3 && fv[1] == -3 && cv[1] == -2 &&
              cv[3] == 0 && fv[2] == 0 && cv[2] == 1,
          "floor/ceil");
    CHECK(nv && iv && nv[6] == 1 && nv[7] == 0 && iv[7] == 1 && iv[6] == 0 &&
              nv[0] == 0 && iv[0] == 0,
          "is_nan / is_infinity");
    em_array *all[] = {a, r, s, fl, ce, in, ii};
    for (int i = 0; i < 7; i++) em_array_release(all[i]);
  }
  {
    int32_t v[] = {0, 1, -1, INT32_MIN, 0x00F0F000};
    int64_t sh[1] = {5};
    em_array *a = NULL, *c = NULL, *p = NULL, *ab = NULL, *ng = NULL, *bn = NULL;
    MUST(em_array_from_data(&a, EM_S32, 1, sh, v, sizeof v, em_cpu()), a);
    MUST(em_count_leading_zeros(&c, a), c);
    MUST(em_population_count(&p, a), p);
    MUST(em_abs(&ab, a), ab);
    MUST(em_negate(&ng, a), ng);
    MUST(em_bitwise_not(&bn, a), bn);
    const int32_t *cv = em_array_data(c), *pv = em_array_data(p),
                  *av = em_array_data(ab), *nv = em_array_data(ng),
                  *bv = em_array_data(bn);
    CHECK(cv && cv[0] == 32 && cv[1] == 31 && cv[2] == 0 && cv[3] == 0 && cv[4] == 8,
          "clz s32: %d %d %d %d %d", cv ? cv[0] : -1, cv ? cv[1] : -1,
          cv ? cv[2] : -1, cv ? cv[3] : -1, cv ? cv[4] : -1);
    CHECK(pv && pv[0] == 0 && pv[1] == 1 && pv[2] == 32 && pv[3] == 1 && pv[4] == 8,
          "popcount s32");
    CHECK(av && av[2] == 1 && av[3] == INT32_MIN, "abs(INT_MIN) wraps");
    CHECK(nv && nv[1] == -1 && nv[3] == INT32_MIN, "negate(INT_MIN) wraps");
    CHECK(bv && bv[0] == -1 && bv[2] == 0, "bitwise_not");
    em_array *all[] = {a, c, p, ab, ng, bn};
    for (int i = 0; i < 6; i++) em_array_release(all[i]);
  }
  {
    uint8_t v[] = {0, 1, 0x80, 0xFF};
    int64_t sh[1] = {4};
    em_array *a = NULL, *c = NULL, *ng = NULL;
    MUST(em_array_from_data(&a, EM_U8, 1, sh, v, sizeof v, em_cpu()), a);
    MUST(em_count_leading_zeros(&c, a), c);
    MUST(em_negate(&ng, a), ng);
    const uint8_t *cv = em_array_data(c), *nv = em_array_data(ng);
    CHECK(cv && cv[0] == 8 && cv[1] == 7 && cv[2] == 0 && cv[3] == 0, "clz u8");
    CHECK(nv && nv[1] == 255 && nv[2] == 0x80 && nv[3] == 1, "negate u8 wraps");
    em_array *all[] = {a, c, ng};
    for (int i = 0; i < 3; i++) em_array_release(all[i]);
  }
  {
    float v[] = {3, -4, 0, 0};
    int64_t sh[1] = {2};
    em_array *a = NULL, *ab = NULL, *re = NULL, *im = NULL, *cj = NULL;
    MUST(em_array_from_data(&a, EM_C64, 1, sh, v, sizeof v, em_cpu()), a);
    MUST(em_abs(&ab, a), ab);
    MUST(em_real(&re, a), re);
    MUST(em_imag(&im, a), im);
    MUST(em_conjugate(&cj, a), cj);
    CHECK(em_array_dtype(ab) == EM_F32 && em_array_dtype(re) == EM_F32 &&
              em_array_dtype(im) == EM_F32 && em_array_dtype(cj) == EM_C64,
          "complex abs/real/imag dtypes");
    const float *abv = em_array_data(ab), *rv = em_array_data(re),
                *iv = em_array_data(im), *cv = em_array_data(cj);
    CHECK(abv && abv[0] == 5 && abv[1] == 0 && rv && rv[0] == 3 && iv &&
              iv[0] == -4 && cv && cv[0] == 3 && cv[1] == 4,
          "complex abs/real/imag/conjugate values");
    em_array *all[] = {a, ab, re, im, cj};
    for (int i = 0; i < 5; i++) em_array_release(all[i]);
  }
}

/* ---- special-value grids ------------------------------------------------ */

/* Inputs at the edges of every domain, as representable in t. */
static int special_inputs(em_dtype t, double *v) {
  const double base[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1, -1, 0.5, -0.5, 2, -2,
                         3, -3, 10, -10, 100, -100, 1e-5, -1e-5, 0.999, -0.999, 1.0001,
                         1.5707963267948966, 3.141592653589793, 20, -20, 88, -88, 89,
                         -104, 700, -745, 1e4, -1e4, 1e10, -1e10, 1e30, -1e30, 1e-30, 1e300};
  int n = 0;
  for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) v[n++] = round_to(t, base[i]);
  /* smallest subnormal and largest finite of t */
  double sub = t == EM_F16 ? 0x1p-24 : t == EM_BF16 ? 0x1p-133 : t == EM_F32 ? 0x1p-149 : 0x1p-1074;
  double mx = t == EM_F16 ? F16_MAX : t == EM_BF16 ? BF16_MAX : t == EM_F32 ? 3.4028234663852886e38
                                                                             : 1.7976931348623157e308;
  v[n++] = sub;
  v[n++] = -sub;
  v[n++] = mx;
  v[n++] = -mx;
  return n;
}

static void test_unary_special_grid(void) {
  const em_dtype fts[] = {EM_F16, EM_BF16, EM_F32, EM_F64};
  for (int k = 0; k < 4; k++) {
    em_dtype t = fts[k];
    double v[64];
    int n = special_inputs(t, v);
    int64_t s[1] = {n};
    host X = h_new(t, 1, s);
    for (int i = 0; i < n; i++) X.v[i] = tv_f(v[i]);
    em_array *x = h_array(&X);
    for (int op = 0; op < U_COUNT; op++) {
      if (un_defined(op, t) != 1) continue;
      em_array *o = NULL;
      if (UN[op].fn(&o, x) != EM_OK) {
        CHECK(0, "%s %s specials: %s", UN[op].name, dn(t), em_last_error());
        continue;
      }
      em_dtype ot = em_array_dtype(o);
      host W = h_new(ot, 1, s);
      for (int i = 0; i < n; i++) {
        tv r = ref_un(op, t, X.v[i]);
        W.v[i] = dt_int(ot) ? r : quant(ot, r);
      }
      /* huge arguments of periodic functions: only ask for a value in
       * range (argument reduction there is an accuracy choice) */
      host G;
      if (!h_read(o, &G)) {
        CHECK(0, "%s read", UN[op].name);
        em_array_release(o);
        h_free(&W);
        continue;
      }
      double rtol = rtol_of(t) * 2, atol = atol_of(t);
      for (int i = 0; i < n; i++) {
        double xi = X.v[i].re;
        bool periodic = op == U_sin || op == U_cos || op == U_tan;
        if (periodic && fabs(xi) > 1e4 && !isinf(xi)) {
          CHECK(op == U_tan || fabs(G.v[i].re) <= 1, "%s(%g) %s = %g out of range",
                UN[op].name, xi, dn(t), G.v[i].re);
          continue;
        }
        if (periodic && fabs(xi) > 100) atol += 0; /* exact reduction expected below 1e4 */
        bool ok = val_close(ot, G.v[i], W.v[i], rtol,
                            atol + ((op == U_sin || op == U_cos || op == U_tan) ? rtol : 0),
                            op == U_negate || op == U_abs ? CMP_SIGNZERO : 0);
        char b1[64], b2[64];
        fmt_tv(b1, sizeof b1, ot, G.v[i]);
        fmt_tv(b2, sizeof b2, ot, W.v[i]);
        CHECK(ok, "%s(%.17g) %s: got %s, want %s", UN[op].name, xi, dn(t), b1, b2);
      }
      h_free(&G);
      h_free(&W);
      em_array_release(o);
    }
    em_array_release(x);
    h_free(&X);
  }
}

static void test_binary_special_grid(void) {
  const em_dtype fts[] = {EM_F16, EM_BF16, EM_F32, EM_F64};
  const double base[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1, -1, 0.5, -2, 3, -8,
                         1.0 / 3, 1e-30, 1e30, 65504, 1e-7};
  const int nb = (int)(sizeof base / sizeof base[0]);
  for (int k = 0; k < 4; k++) {
    em_dtype t = fts[k];
    int64_t s[1] = {nb * nb};
    host A = h_new(t, 1, s), B = h_new(t, 1, s);
    for (int i = 0; i < nb; i++)
      for (int j = 0; j < nb; j++) {
        A.v[i * nb + j] = tv_f(round_to(t, base[i]));
        B.v[i * nb + j] = tv_f(round_to(t, base[j]));
      }
    em_array *a = h_array(&A), *b = h_array(&B);
    for (int op = 0; op < B_COUNT; op++) {
      if (!bin_defined(op, t)) continue;
      em_array *o = NULL;
      MUST(BIN[op].fn(&o, a, b), o);
      host W = h_new(bin_out(op, t), 1, s);
      for (int i = 0; i < nb * nb; i++) {
        tv r = ref_bin(op, t, A.v[i], B.v[i]);
        W.v[i] = bin_is_pred(op) ? r : quant(t, r);
      }
      char what[64];
      snprintf(what, sizeof what, "%s %s special grid", BIN[op].name, dn(t));
      /* print every mismatch of the grid, not just the first */
      host G;
      if (h_read(o, &G)) {
        int bad = 0;
        for (int i = 0; i < nb * nb; i++) {
          int flags = op == B_min || op == B_max || op == B_multiply || op == B_add ||
                              op == B_subtract || op == B_divide
                          ? CMP_SIGNZERO
                          : 0;
          if (!val_close(W.t, G.v[i], W.v[i], rtol_of(t) * 2, atol_of(t), flags)) {
            char b1[64], b2[64];
            fmt_tv(b1, sizeof b1, W.t, G.v[i]);
            fmt_tv(b2, sizeof b2, W.t, W.v[i]);
            if (bad++ < 6)
              fprintf(stderr, "  %s(%.9g, %.9g): got %s, want %s\n", what, A.v[i].re,
                      B.v[i].re, b1, b2);
          }
        }
        CHECK(bad == 0, "%s: %d of %d differ", what, bad, nb * nb);
        h_free(&G);
      }
      h_free(&W);
      em_array_release(o);
    }
    em_array_release(a);
    em_array_release(b);
    h_free(&A);
    h_free(&B);
  }
}

/* ---- fused chains ------------------------------------------------------ */

/* A step: a binary op with the second input y or a scalar constant, or a
 * unary op, or a cast round trip. */
typedef struct {
  char kind; /* 'b' binary with y, 'c' binary with constant, 'u' unary,
                'r' cast round trip through dtype rt, 's' select(x > y, x, y) */
  int op;
  double c;
  em_dtype rt;
} step;

static em_array *apply_step(const step *s, em_array *x, em_array *y,
                            em_dtype t) {
  em_array *o = NULL, *k = NULL, *m = NULL, *p = NULL;
  switch (s->kind) {
    case 'b': MUST(BIN[s->op].fn(&o, x, y), o); break;
    case 'c':
      MUST(em_full_scalar(&k, t, s->c, em_cpu()), k);
      MUST(BIN[s->op].fn(&o, x, k), o);
      em_array_release(k);
      break;
    case 'u': MUST(UN[s->op].fn(&o, x), o); break;
    case 'r':
      MUST(em_as_type(&m, x, s->rt), m);
      MUST(em_as_type(&o, m, t), o);
      em_array_release(m);
      break;
    case 's':
      MUST(em_greater(&p, x, y), p);
      MUST(em_select(&o, p, x, y), o);
      em_array_release(p);
      break;
  }
  return o;
}
static tv ref_step(const step *s, tv x, tv y, em_dtype t) {
  tv r;
  switch (s->kind) {
    case 'b': r = ref_bin(s->op, t, x, y); break;
    case 'c': r = ref_bin(s->op, t, x, quant(t, (tv){(int64_t)s->c, s->c, 0})); break;
    case 'u': r = ref_un(s->op, t, x); break;
    case 'r': r = quant(t, quant(s->rt, x)); break;
    default: r = ref_bin(B_greater, t, x, y).i ? x : y; break;
  }
  return quant(t, r);
}

static const step FCHAIN[] = {
    {'b', B_add, 0, 0},         {'c', B_multiply, 0.5, 0},
    {'u', U_exp, 0, 0},         {'u', U_log, 0, 0},
    {'b', B_subtract, 0, 0},    {'u', U_abs, 0, 0},
    {'c', B_add, 0.25, 0},      {'u', U_sqrt, 0, 0},
    {'u', U_tanh, 0, 0},        {'b', B_max, 0, 0},
    {'c', B_pow, 2, 0},         {'u', U_sigmoid, 0, 0},
    {'r', 0, 0, EM_F64},        {'b', B_multiply, 0, 0},
    {'u', U_sin, 0, 0},         {'c', B_add, 2, 0},
    {'b', B_divide, 0, 0},      {'s', 0, 0, 0},
    {'u', U_negate, 0, 0},      {'b', B_min, 0, 0},
    {'u', U_atan, 0, 0},        {'c', B_multiply, 3, 0},
    {'u', U_cos, 0, 0},         {'b', B_atan2, 0, 0},
};
static const step ICHAIN[] = {
    {'b', B_add, 0, 0},          {'c', B_multiply, 3, 0},
    {'b', B_bitwise_xor, 0, 0},  {'c', B_left_shift, 3, 0},
    {'b', B_subtract, 0, 0},     {'c', B_right_shift, 1, 0},
    {'u', U_abs, 0, 0},          {'b', B_max, 0, 0},
    {'c', B_remainder, 100, 0}, {'u', U_negate, 0, 0},
    {'b', B_bitwise_or, 0, 0},   {'r', 0, 0, EM_S8},
    {'c', B_add, 7, 0},          {'u', U_bitwise_not, 0, 0},
    {'b', B_multiply, 0, 0},     {'s', 0, 0, 0},
    {'c', B_quotient, 3, 0},     {'u', U_population_count, 0, 0},
    {'b', B_add, 0, 0},          {'u', U_sign, 0, 0},
    {'b', B_bitwise_and, 0, 0},  {'c', B_pow, 3, 0},
};

static void run_chain(const step *steps, int n, em_dtype t, int64_t rows,
                      int64_t cols, bool noncontig, double rtol) {
  int64_t s[2] = {rows, cols};
  host X = h_new(t, 2, s), Y = h_new(t, 2, s);
  bool fl = !dt_int(t);
  for (int64_t i = 0; i < X.n; i++) {
    X.v[i] = fl ? rnd_tv(t, 0.5, 1.5) : rnd_bits(t);
    Y.v[i] = fl ? rnd_tv(t, 0.5, 1.5) : rnd_bits(t);
  }
  ah x = ah_of(X), y = ah_of(Y);
  if (noncontig) {
    ah xt = ah_transpose(&x, NULL);
    ah_free(&x);
    x = xt;
    int rv[1] = {1};
    ah yr = ah_reverse(&y, 1, rv);
    ah_free(&y);
    ah yt = ah_transpose(&yr, NULL);
    ah_free(&yr);
    y = yt;
  }
  em_array *cur = x.a;
  em_array_retain(cur);
  host W = h_copy(&x.h);
  for (int k = 0; k < n; k++) {
    em_array *nx = apply_step(&steps[k], cur, y.a, t);
    em_array_release(cur);
    cur = nx;
    for (int64_t i = 0; i < W.n; i++) W.v[i] = ref_step(&steps[k], W.v[i], y.h.v[i], t);
  }
  char what[96];
  snprintf(what, sizeof what, "%d-op chain %s [%lld,%lld]%s", n, dn(t),
           (long long)x.h.sh[0], (long long)x.h.sh[1], noncontig ? " views" : "");
  CHECK(!em_array_is_evaluated(cur), "%s: evaluated before asked", what);
  check_host(what, cur, &W, rtol, fl ? rtol : 0);
  em_array_release(cur);
  h_free(&W);
  ah_free(&x);
  ah_free(&y);
}

static void test_chains(void) {
  int nf = (int)(sizeof FCHAIN / sizeof FCHAIN[0]);
  int ni = (int)(sizeof ICHAIN / sizeof ICHAIN[0]);
  run_chain(FCHAIN, nf, EM_F32, 37, 53, false, 1e-4);
  run_chain(FCHAIN, nf, EM_F64, 37, 53, true, 1e-10);
  run_chain(FCHAIN, nf, EM_F32, 600, 512, false, 1e-4); /* thread pool */
  run_chain(FCHAIN, nf, EM_F32, 512, 600, true, 1e-4);
  run_chain(FCHAIN, nf, EM_F16, 31, 17, false, 3e-2);
  run_chain(FCHAIN, nf, EM_BF16, 31, 17, true, 2e-1);
  run_chain(ICHAIN, ni, EM_S32, 41, 29, false, 0);
  run_chain(ICHAIN, ni, EM_S64, 41, 29, true, 0);
  run_chain(ICHAIN, ni, EM_U8, 41, 29, false, 0);
  run_chain(ICHAIN, ni, EM_U64, 640, 500, true, 0);
  run_chain(ICHAIN, ni, EM_S32, 700, 500, false, 0);
}

/* An intermediate consumed twice; an intermediate the caller holds. */
static void test_shared_intermediates(void) {
  int64_t s[2] = {33, 65};
  for (int pass = 0; pass < 2; pass++) {
    host X = h_new(EM_F32, 2, s);
    h_rand(&X, -2, 2);
    ah x = ah_of(X);
    em_array *e = NULL, *one = NULL, *two = NULL, *y1 = NULL, *y2 = NULL;
    MUST(em_exp(&e, x.a), e);
    MUST(em_full_scalar(&one, EM_F32, 1, em_cpu()), one);
    MUST(em_full_scalar(&two, EM_F32, 2, em_cpu()), two);
    MUST(em_add(&y1, e, one), y1);
    MUST(em_multiply(&y2, e, two), y2);
    em_array_release(e); /* only the two consumers hold it now */
    host W1 = h_new(EM_F32, 2, s), W2 = h_new(EM_F32, 2, s);
    for (int64_t i = 0; i < X.n; i++) {
      double ev = round_f32(exp(x.h.v[i].re));
      W1.v[i] = tv_f(ev + 1);
      W2.v[i] = tv_f(ev * 2);
    }
    if (pass == 0) {
      em_array *both[2] = {y1, y2};
      CHECK(em_eval(both, 2) == EM_OK, "eval two consumers: %s", em_last_error());
    } else {
      CHECK(em_eval(&y2, 1) == EM_OK, "eval second consumer first");
    }
    check_host("shared intermediate, consumer 1", y1, &W1, 1e-6, 0);
    check_host("shared intermediate, consumer 2", y2, &W2, 1e-6, 0);
    em_array *all[] = {one, two, y1, y2};
    for (int i = 0; i < 4; i++) em_array_release(all[i]);
    h_free(&W1);
    h_free(&W2);
    ah_free(&x);
  }
  /* the caller holds an intermediate and reads it afterwards */
  {
    host X = h_new(EM_S64, 2, s);
    h_rand(&X, -1000, 1000);
    ah x = ah_of(X);
    em_array *three = NULL, *m = NULL, *y = NULL, *z = NULL;
    MUST(em_full_scalar(&three, EM_S64, 3, em_cpu()), three);
    MUST(em_multiply(&m, x.a, three), m);
    MUST(em_add(&y, m, x.a), y);
    MUST(em_negate(&z, y), z);
    host Wm = h_new(EM_S64, 2, s), Wz = h_new(EM_S64, 2, s);
    for (int64_t i = 0; i < X.n; i++) {
      Wm.v[i] = tv_i(x.h.v[i].i * 3);
      Wz.v[i] = tv_i(-(x.h.v[i].i * 4));
    }
    check_host("chain through held intermediate", z, &Wz, 0, 0);
    check_host("held intermediate read afterwards", m, &Wm, 0, 0);
    /* and the same intermediate consumed again after its consumer ran */
    em_array *w = NULL;
    MUST(em_subtract(&w, m, x.a), w);
    host Ww = h_new(EM_S64, 2, s);
    for (int64_t i = 0; i < X.n; i++) Ww.v[i] = tv_i(x.h.v[i].i * 2);
    check_host("held intermediate consumed again", w, &Ww, 0, 0);
    em_array *all[] = {three, m, y, z, w};
    for (int i = 0; i < 5; i++) em_array_release(all[i]);
    h_free(&Wm);
    h_free(&Wz);
    h_free(&Ww);
    ah_free(&x);
  }
  /* the caller reads the intermediate before the consumer is evaluated */
  {
    int64_t n1[1] = {1000};
    host X = h_new(EM_F64, 1, n1);
    h_rand(&X, -3, 3);
    ah x = ah_of(X);
    em_array *a = NULL, *b = NULL;
    MUST(em_sin(&a, x.a), a);
    MUST(em_cos(&b, a), b);
    host Wa = h_new(EM_F64, 1, n1), Wb = h_new(EM_F64, 1, n1);
    for (int64_t i = 0; i < X.n; i++) {
      Wa.v[i] = tv_f(sin(X.v[i].re));
      Wb.v[i] = tv_f(cos(sin(X.v[i].re)));
    }
    check_host("intermediate read first", a, &Wa, 1e-13, 1e-15);
    check_host("then its consumer", b, &Wb, 1e-13, 1e-15);
    em_array_release(a);
    em_array_release(b);
    h_free(&Wa);
    h_free(&Wb);
    ah_free(&x);
  }
  /* a wide fan-in tree: more leaves than one fused tile program */
  {
    int64_t n1[1] = {4099};
    host X = h_new(EM_S32, 1, n1);
    h_rand(&X, -100, 100);
    ah x = ah_of(X);
    em_array *acc = NULL;
    MUST(em_negate(&acc, x.a), acc);
    for (int k = 0; k < 200; k++) {
      em_array *t = NULL, *u = NULL;
      MUST(em_abs(&t, x.a), t);
      MUST(em_add(&u, acc, t), u);
      em_array_release(t);
      em_array_release(acc);
      acc = u;
    }
    host W = h_new(EM_S32, 1, n1);
    for (int64_t i = 0; i < X.n; i++) {
      int64_t v = X.v[i].i;
      W.v[i] = tv_i(-v + 200 * (v < 0 ? -v : v));
    }
    check_host("200-leaf fan-in", acc, &W, 0, 0);
    em_array_release(acc);
    h_free(&W);
    ah_free(&x);
  }
}

int main(void) {
  rng_seed(1);
  for (int op = 0; op < B_COUNT; op++) test_binary_op(op);
  test_binary_specials();
  rng_seed(2);
  for (int op = 0; op < U_COUNT; op++) test_unary_op(op);
  test_unary_specials();
  test_unary_special_grid();
  test_binary_special_grid();
  rng_seed(3);
  test_chains();
  test_shared_intermediates();
  return TEST_SUMMARY();
}
