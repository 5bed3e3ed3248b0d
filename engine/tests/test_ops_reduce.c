/* test_ops_reduce.c — reductions (sum product reduce_max reduce_min all
 * any) over single, adjacent, non-adjacent and all axes with keep_axes both
 * ways; argmax/argmin with ties, tie_high both ways and NaN; dot with
 * contracting and batch axes in various positions (views, batched, outer,
 * empty), matmul; softmax / logsumexp on every axis; layer_norm with and
 * without weight/bias, rms_norm — against naive long double / int64
 * reference loops. */
#include "ref.h"

enum { R_SUM, R_PROD, R_MAX, R_MIN, R_ALL, R_ANY, R_COUNT };
typedef em_status (*redfn)(em_array **, em_array *, int, const int *, bool);
static const struct {
  const char *name;
  redfn fn;
} RED[] = {{"sum", em_sum},   {"product", em_product}, {"reduce_max", em_reduce_max},
           {"reduce_min", em_reduce_min}, {"all", em_all}, {"any", em_any}};

static const em_dtype RED_DTYPES[] = {EM_U8, EM_S32, EM_S64, EM_U64, EM_F16,
                                      EM_BF16, EM_F32, EM_F64, EM_C64, EM_C128, EM_S8};
#define N_RED_DTYPES 11

static bool red_defined(int op, em_dtype t) {
  return !((op == R_MAX || op == R_MIN) && dt_cpx(t));
}

static tv gen_red(int op, em_dtype t) {
  double r = rng_unit();
  switch (op) {
    case R_SUM:
      if (dt_int(t)) return rnd_bits(t);
      return rnd_tv(t, -1, 1);
    case R_PROD:
      if (dt_int(t)) return r < 0.7 ? rnd_tv(t, -3, 3) : rnd_bits(t);
      if (dt_cpx(t)) {
        double th = rng_uniform(-3.14, 3.14), m = rng_uniform(0.9, 1.1);
        return quant(t, tv_c(m * cos(th), m * sin(th)));
      }
      return quant(t, tv_f((r < 0.5 ? -1 : 1) * rng_uniform(0.8, 1.25)));
    case R_MAX: case R_MIN:
      if (dt_int(t)) return rnd_bits(t);
      if (r < 0.01) return tv_f(NAN);
      if (r < 0.03) return tv_f(r < 0.02 ? INFINITY : -INFINITY);
      return rnd_tv(t, -100, 100);
    default: { /* all / any */
      double pz = op == R_ALL ? 0.04 : 0.9;
      if (r < pz) return rng_unit() < 0.5 ? tv_c(0, 0) : tv_c(-0.0, 0);
      if (dt_int(t)) return rnd_bits(t);
      if (r < pz + 0.02) return quant(t, tv_c(NAN, 0));
      if (dt_cpx(t) && r < pz + 0.05) return tv_c(0, 1);
      return rnd_tv(t, -2, 2);
    }
  }
}
typedef struct {
  int op;
} red_ctx;
static void fill_red(host *h, const void *c_) {
  const red_ctx *c = c_;
  for (int64_t i = 0; i < h->n; i++) h->v[i] = gen_red(c->op, h->t);
}

/* Output index of input index idx (reduced axes dropped or set to 0). */
static int64_t red_out_index(const host *x, uint32_t mask, bool keep,
                             const int64_t *idx, int *ond, int64_t *osh) {
  int64_t oi[EM_MAX_NDIM];
  int n = 0;
  for (int i = 0; i < x->nd; i++) {
    if (mask >> i & 1u) {
      if (keep) {
        oi[n] = 0;
        osh[n++] = 1;
      }
    } else {
      oi[n] = idx[i];
      osh[n++] = x->sh[i];
    }
  }
  *ond = n;
  return flat(n, osh, oi);
}

static host h_reduce(int op, const host *x, uint32_t mask, bool keep, double **atols) {
  int ond;
  int64_t osh[EM_MAX_NDIM], idx[EM_MAX_NDIM];
  unflat(0, x->nd, x->sh, idx);
  for (int i = 0; i < x->nd; i++) idx[i] = 0;
  red_out_index(x, mask, keep, idx, &ond, osh);
  em_dtype ot = (op == R_ALL || op == R_ANY) ? EM_U8 : x->t;
  host o = h_new(ot, ond, osh);
  int64_t on = o.n;
  long double *re = calloc((size_t)(on ? on : 1), sizeof *re);
  long double *im = calloc((size_t)(on ? on : 1), sizeof *im);
  long double *as = calloc((size_t)(on ? on : 1), sizeof *as);
  uint64_t *iv = calloc((size_t)(on ? on : 1), sizeof *iv);
  bool *nan = calloc((size_t)(on ? on : 1), 1);
  em_dtype t = x->t;
  for (int64_t j = 0; j < on; j++) {
    if (op == R_PROD) {
      re[j] = 1;
      iv[j] = 1;
    }
    if (op == R_MAX) re[j] = -INFINITY, iv[j] = (uint64_t)int_min_of(t);
    if (op == R_MIN) re[j] = INFINITY, iv[j] = (uint64_t)int_max_of(t);
    if (op == R_ALL) iv[j] = 1;
  }
  for (int64_t f = 0; f < x->n; f++) {
    unflat(f, x->nd, x->sh, idx);
    int nd2;
    int64_t sh2[EM_MAX_NDIM];
    int64_t j = red_out_index(x, mask, keep, idx, &nd2, sh2);
    tv v = x->v[f];
    bool truth = dt_int(t) ? v.i != 0 : (v.re != 0 || v.im != 0);
    switch (op) {
      case R_SUM:
        if (dt_int(t)) iv[j] += (uint64_t)v.i;
        else {
          re[j] += v.re;
          im[j] += v.im;
          as[j] += fabsl((long double)v.re) + fabsl((long double)v.im);
        }
        break;
      case R_PROD:
        if (dt_int(t)) iv[j] *= (uint64_t)v.i;
        else if (dt_cpx(t)) {
          long double a = re[j], b = im[j];
          re[j] = a * v.re - b * v.im;
          im[j] = a * v.im + b * v.re;
        } else re[j] *= v.re;
        break;
      case R_MAX: case R_MIN:
        if (dt_int(t)) {
          bool u = dt_uns(t);
          uint64_t cur = iv[j], nv = (uint64_t)v.i;
          bool gt = u ? nv > cur : (int64_t)nv > (int64_t)cur;
          bool lt = u ? nv < cur : (int64_t)nv < (int64_t)cur;
          if ((op == R_MAX && gt) || (op == R_MIN && lt)) iv[j] = nv;
        } else if (isnan(v.re)) nan[j] = true;
        else if ((op == R_MAX && v.re > re[j]) || (op == R_MIN && v.re < re[j])) re[j] = v.re;
        break;
      case R_ALL: if (!truth) iv[j] = 0; break;
      case R_ANY: if (truth) iv[j] = 1; break;
    }
  }
  if (atols) *atols = calloc((size_t)(on ? on : 1), sizeof(double));
  for (int64_t j = 0; j < on; j++) {
    if (op == R_ALL || op == R_ANY) o.v[j] = tv_i((int64_t)iv[j]);
    else if (dt_int(t)) o.v[j] = tv_i(wrap_int(t, iv[j]));
    else if (nan[j]) o.v[j] = tv_f(NAN);
    else o.v[j] = tv_c((double)re[j], (double)im[j]);
    if (atols) (*atols)[j] = (double)as[j] * rtol_of(t) * 2;
  }
  free(re);
  free(im);
  free(as);
  free(iv);
  free(nan);
  return o;
}

static uint32_t mask_of(int nd, int naxes, const int *axes) {
  if (!axes) return nd ? (uint32_t)((1ull << nd) - 1) : 0;
  uint32_t m = 0;
  for (int i = 0; i < naxes; i++) m |= 1u << (axes[i] < 0 ? axes[i] + nd : axes[i]);
  return m;
}

static void run_red(int op, const ah *x, int naxes, const int *axes, bool keep,
                    const char *kind) {
  em_array *o = SENTINEL;
  em_status st = RED[op].fn(&o, x->a, naxes, axes, keep);
  char what[160];
  snprintf(what, sizeof what, "%s %s %s keep=%d", RED[op].name, dn(x->h.t), kind, keep);
  CHECK(st == EM_OK, "%s: %s", what, em_last_error());
  if (st != EM_OK) return;
  double *atols = NULL;
  host w = h_reduce(op, &x->h, mask_of(x->h.nd, naxes, axes), keep, &atols);
  double rtol = rtol_of(x->h.t) * (op == R_PROD ? 4 : 1);
  check_host_ex(what, o, &w, rtol, atol_of(x->h.t), op == R_SUM ? atols : NULL, 0);
  free(atols);
  em_array_release(o);
  h_free(&w);
}

static void test_reductions(void) {
  for (int op = 0; op < R_COUNT; op++)
    for (int di = 0; di < N_RED_DTYPES; di++) {
      em_dtype t = RED_DTYPES[di];
      red_ctx c = {op};
      if (!red_defined(op, t)) {
        int64_t s[1] = {3};
        ah x = ah_noncontig(t, 1, s, -1, fill_red, &c);
        em_array *o = SENTINEL;
        em_status st = RED[op].fn(&o, x.a, 0, NULL, false);
        CHECK_ERR(st, o, RED[op].name, dn(t));
        ah_free(&x);
        continue;
      }
      /* rank 3: each axis, pairs (adjacent and not), all, negative axis */
      const int axl[][3] = {{0}, {1}, {2}, {-1}, {0, 2}, {1, 2}, {0, 1}, {2, 0}};
      const int nax[] = {1, 1, 1, 1, 2, 2, 2, 2};
      int64_t s[3] = {4, 5, 6};
      for (int view = 0; view < 6; view++) {
        ah x = ah_noncontig(t, 3, s, view - 1, fill_red, &c);
        for (int k = 0; k < 8; k++)
          for (int keep = 0; keep < 2; keep++) {
            char kind[48];
            snprintf(kind, sizeof kind, "[4,5,6] view%d axes case %d", view, k);
            run_red(op, &x, nax[k], axl[k], keep, kind);
          }
        run_red(op, &x, 0, NULL, false, "all axes");
        run_red(op, &x, 0, NULL, true, "all axes");
        run_red(op, &x, 3, (int[]){2, 0, 1}, false, "all axes listed");
        run_red(op, &x, 0, (int[]){0}, false, "no axes");
        ah_free(&x);
      }
      /* rank 4 with a size-1 axis between reduced axes */
      {
        int64_t s4[4] = {3, 1, 4, 5};
        ah x = ah_noncontig(t, 4, s4, -1, fill_red, &c);
        run_red(op, &x, 2, (int[]){0, 3}, false, "[3,1,4,5] axes 0,3");
        run_red(op, &x, 2, (int[]){0, 2}, true, "[3,1,4,5] axes 0,2");
        run_red(op, &x, 1, (int[]){1}, false, "[3,1,4,5] axis 1");
        run_red(op, &x, 3, (int[]){0, 1, 3}, true, "[3,1,4,5] axes 0,1,3");
        ah_free(&x);
      }
      /* zero-size: reducing an empty axis gives the identity */
      {
        int64_t z[2] = {0, 3};
        ah x = ah_noncontig(t, 2, z, -1, fill_red, &c);
        run_red(op, &x, 1, (int[]){0}, false, "[0,3] axis 0");
        run_red(op, &x, 1, (int[]){1}, true, "[0,3] axis 1");
        run_red(op, &x, 0, NULL, false, "[0,3] all");
        ah_free(&x);
      }
      /* scalar */
      {
        ah x = ah_noncontig(t, 0, NULL, -1, fill_red, &c);
        run_red(op, &x, 0, NULL, false, "scalar");
        run_red(op, &x, 0, NULL, true, "scalar");
        ah_free(&x);
      }
      /* large (thread pool, split rows) */
      if ((op + di) % 3 == 0 || t == EM_F32) {
        int64_t L[2] = {1000, 320};
        ah x = ah_noncontig(t, 2, L, -1, fill_red, &c);
        run_red(op, &x, 1, (int[]){0}, false, "large axis 0");
        run_red(op, &x, 1, (int[]){1}, false, "large axis 1");
        run_red(op, &x, 0, NULL, false, "large all");
        ah xt = ah_transpose(&x, NULL);
        run_red(op, &xt, 1, (int[]){1}, true, "large transposed axis 1");
        ah_free(&xt);
        ah_free(&x);
      }
    }
  /* written out */
  {
    const double v[] = {1, NAN, 3, -0.0, 5, 6};
    int64_t s[2] = {2, 3};
    em_array *a = NULL, *mx = NULL, *mn = NULL, *al = NULL, *an = NULL, *sm = NULL;
    MUST(em_array_from_data(&a, EM_F64, 2, s, v, sizeof v, em_cpu()), a);
    MUST(em_reduce_max(&mx, a, 1, (int[]){1}, false), mx);
    MUST(em_reduce_min(&mn, a, 1, (int[]){0}, true), mn);
    MUST(em_all(&al, a, 1, (int[]){1}, false), al);
    MUST(em_any(&an, a, 0, NULL, false), an);
    MUST(em_sum(&sm, a, 1, (int[]){0}, false), sm);
    const double *x = em_array_data(mx), *y = em_array_data(mn), *z = em_array_data(sm);
    const uint8_t *p = em_array_data(al), *q = em_array_data(an);
    CHECK(x && isnan(x[0]) && x[1] == 6, "reduce_max written out");
    CHECK(y && em_array_ndim(mn) == 2 && em_array_shape(mn)[0] == 1 && y[0] == -0.0 &&
              isnan(y[1]) && y[2] == 3,
          "reduce_min written out");
    CHECK(p && p[0] == 1 && p[1] == 0 && q && *q == 1, "all/any written out (NaN true, -0 false)");
    CHECK(z && z[0] == 1 && isnan(z[1]) && z[2] == 9, "sum written out");
    em_array *all[] = {a, mx, mn, al, an, sm};
    for (int i = 0; i < 6; i++) em_array_release(all[i]);
    /* empty: max -inf, min +inf, ints their extremes */
    int64_t z0[1] = {0};
    em_array *e = NULL, *ei = NULL, *r1 = NULL, *r2 = NULL, *r3 = NULL;
    MUST(em_array_from_data(&e, EM_F32, 1, z0, NULL, 0, em_cpu()), e);
    MUST(em_array_from_data(&ei, EM_S16, 1, z0, NULL, 0, em_cpu()), ei);
    MUST(em_reduce_max(&r1, e, 0, NULL, false), r1);
    MUST(em_reduce_min(&r2, ei, 0, NULL, false), r2);
    MUST(em_product(&r3, ei, 0, NULL, false), r3);
    const float *f = em_array_data(r1);
    const int16_t *g = em_array_data(r2), *h = em_array_data(r3);
    CHECK(f && *f == -INFINITY && g && *g == INT16_MAX && h && *h == 1, "empty reductions");
    em_array *all2[] = {e, ei, r1, r2, r3};
    for (int i = 0; i < 5; i++) em_array_release(all2[i]);
  }
}

/* ---- argmax / argmin ---------------------------------------------------- */

static host h_arg(bool is_max, bool tie_high, const host *x, int axis, bool keep) {
  /* axis < 0: flattened */
  host fl;
  int ax = axis;
  const host *src = x;
  if (axis < 0) {
    int64_t n = x->n;
    fl = h_reshape(x, 1, &n);
    src = &fl;
    ax = 0;
  }
  int64_t osh[EM_MAX_NDIM], idx[EM_MAX_NDIM];
  int ond = 0;
  for (int i = 0; i < src->nd; i++)
    if (i != ax) osh[ond++] = src->sh[i];
  host o = h_new(EM_S64, ond, osh);
  int64_t r = src->sh[ax];
  for (int64_t j = 0; j < o.n; j++) {
    unflat(j, ond, osh, idx);
    int64_t full[EM_MAX_NDIM];
    for (int i = 0, q = 0; i < src->nd; i++) full[i] = i == ax ? 0 : idx[q++];
    int64_t best = -1;
    tv bv = tv_i(0);
    for (int64_t k = 0; k < r; k++) {
      full[ax] = k;
      tv v = src->v[flat(src->nd, src->sh, full)];
      bool take;
      if (best < 0) take = true;
      else if (dt_int(x->t)) {
        bool u = dt_uns(x->t);
        int c = u ? ((uint64_t)v.i > (uint64_t)bv.i) - ((uint64_t)v.i < (uint64_t)bv.i)
                  : (v.i > bv.i) - (v.i < bv.i);
        take = is_max ? (c > 0 || (c == 0 && tie_high)) : (c < 0 || (c == 0 && tie_high));
      } else if (isnan(v.re)) take = true; /* the last NaN wins */
      else if (isnan(bv.re)) take = false;
      else if (v.re == bv.re) take = tie_high;
      else take = is_max ? v.re > bv.re : v.re < bv.re;
      if (take) {
        best = k;
        bv = v;
      }
    }
    o.v[j] = tv_i(best);
  }
  if (axis < 0) h_free(&fl);
  if (keep) {
    int64_t ks[EM_MAX_NDIM];
    for (int i = 0; i < x->nd; i++) ks[i] = (axis < 0 || i == axis) ? 1 : x->sh[i];
    host k = h_reshape(&o, x->nd, ks);
    h_free(&o);
    return k;
  }
  return o;
}

static void fill_arg(host *h, const void *ctx) {
  bool with_nan = ctx != NULL;
  for (int64_t i = 0; i < h->n; i++) {
    double r = rng_unit();
    if (dt_int(h->t)) h->v[i] = r < 0.7 ? rnd_tv(h->t, -2, 2) : rnd_bits(h->t);
    else if (with_nan && r < 0.05) h->v[i] = tv_f(NAN);
    else if (r < 0.1) h->v[i] = tv_f(r < 0.05 ? -0.0 : 0.0);
    else if (r < 0.15) h->v[i] = tv_f(r < 0.125 ? INFINITY : -INFINITY);
    else h->v[i] = quant(h->t, tv_f((double)rng_int(-3, 3)));
  }
}

static void run_arg(bool is_max, const ah *x, int axis, bool keep, bool tie_high,
                    const char *kind) {
  em_array *o = SENTINEL;
  em_status st = (is_max ? em_argmax : em_argmin)(&o, x->a, axis, keep, tie_high);
  char what[160];
  snprintf(what, sizeof what, "%s %s %s axis %d keep %d tie_high %d",
           is_max ? "argmax" : "argmin", dn(x->h.t), kind, axis, keep, tie_high);
  CHECK(st == EM_OK, "%s: %s", what, em_last_error());
  if (st != EM_OK) return;
  host w = h_arg(is_max, tie_high, &x->h, axis, keep);
  check_host(what, o, &w, 0, 0);
  em_array_release(o);
  h_free(&w);
}

static void test_arg(void) {
  const em_dtype ts[] = {EM_U8, EM_S32, EM_S64, EM_U64, EM_F16, EM_BF16, EM_F32, EM_F64};
  for (int k = 0; k < 8; k++) {
    em_dtype t = ts[k];
    for (int view = 0; view < 6; view++) {
      int64_t s[3] = {4, 5, 6};
      ah x = ah_noncontig(t, 3, s, view - 1, fill_arg, view == 1 ? NULL : "nan");
      for (int m = 0; m < 2; m++)
        for (int axis = -1; axis < 3; axis++)
          for (int keep = 0; keep < 2; keep++)
            for (int th = 0; th < 2; th++) run_arg(m, &x, axis, keep, th, view ? "view" : "[4,5,6]");
      ah_free(&x);
    }
    /* scalar, zero-size on another axis */
    {
      ah x = ah_noncontig(t, 0, NULL, -1, fill_arg, NULL);
      run_arg(true, &x, -1, false, false, "scalar");
      run_arg(false, &x, -1, true, true, "scalar");
      ah_free(&x);
      int64_t z[2] = {0, 5};
      ah y = ah_noncontig(t, 2, z, -1, fill_arg, NULL);
      run_arg(true, &y, 1, false, true, "[0,5]");
      ah_free(&y);
    }
    /* large */
    if (t == EM_F32 || t == EM_S64 || t == EM_BF16) {
      int64_t L[2] = {640, 500};
      ah x = ah_noncontig(t, 2, L, -1, fill_arg, "nan");
      run_arg(true, &x, 0, false, true, "large");
      run_arg(false, &x, 1, false, false, "large");
      run_arg(true, &x, -1, false, false, "large flattened");
      ah_free(&x);
    }
  }
  /* written out: ties and NaN */
  {
    const float v[] = {1, 3, 3, NAN, 2, NAN, -0.0f, 0.0f};
    int64_t s[1] = {8}, s2[2] = {2, 4};
    em_array *a = NULL, *a2 = NULL, *r[6] = {NULL};
    MUST(em_array_from_data(&a, EM_F32, 1, s, v, sizeof v, em_cpu()), a);
    MUST(em_reshape(&a2, a, 2, s2), a2);
    MUST(em_argmax(&r[0], a, 0, false, false), r[0]);
    MUST(em_argmin(&r[1], a, 0, false, true), r[1]);
    MUST(em_argmax(&r[2], a2, 1, false, false), r[2]);
    MUST(em_argmax(&r[3], a2, 1, false, true), r[3]);
    MUST(em_argmin(&r[4], a2, 1, true, false), r[4]);
    MUST(em_argmin(&r[5], a2, 1, true, true), r[5]);
    const int64_t *x0 = em_array_data(r[0]), *x1 = em_array_data(r[1]),
                  *x2 = em_array_data(r[2]), *x3 = em_array_data(r[3]),
                  *x4 = em_array_data(r[4]), *x5 = em_array_data(r[5]);
    /* rows: {1,3,3,NaN} and {2,NaN,-0,0} */
    CHECK(x0 && *x0 == 5 && x1 && *x1 == 5, "arg over NaNs: last NaN (%lld %lld)",
          x0 ? (long long)*x0 : -1, x1 ? (long long)*x1 : -1);
    CHECK(x2 && x2[0] == 3 && x2[1] == 1 && x3 && x3[0] == 3, "argmax rows with NaN");
    CHECK(x4 && x4[0] == 3 && x4[1] == 1 && x5 && x5[1] == 1, "argmin rows with NaN");
    em_array_release(a);
    em_array_release(a2);
    for (int i = 0; i < 6; i++) em_array_release(r[i]);
    const int32_t iv[] = {5, 1, 5, 1, 0};
    int64_t s5[1] = {5};
    em_array *b = NULL, *lo = NULL, *hi = NULL, *mlo = NULL, *mhi = NULL;
    MUST(em_array_from_data(&b, EM_S32, 1, s5, iv, sizeof iv, em_cpu()), b);
    MUST(em_argmax(&lo, b, 0, false, false), lo);
    MUST(em_argmax(&hi, b, 0, false, true), hi);
    MUST(em_argmin(&mlo, b, -1, false, false), mlo);
    MUST(em_argmin(&mhi, b, -1, true, true), mhi);
    const int64_t *p = em_array_data(lo), *q = em_array_data(hi), *m1 = em_array_data(mlo),
                  *m2 = em_array_data(mhi);
    CHECK(p && *p == 0 && q && *q == 2 && m1 && *m1 == 4 && m2 && *m2 == 4 &&
              em_array_ndim(mhi) == 1,
          "arg ties written out");
    em_array *all[] = {b, lo, hi, mlo, mhi};
    for (int i = 0; i < 5; i++) em_array_release(all[i]);
  }
}

/* ---- dot ---------------------------------------------------------------- */

static host h_dot(const host *a, int nc, const int *ca, int nb, const int *ba,
                  const host *b, const int *cb, const int *bb, double **atols) {
  bool ua[EM_MAX_NDIM] = {false}, ub[EM_MAX_NDIM] = {false};
  for (int i = 0; i < nc; i++) ua[ca[i]] = ub[cb[i]] = true;
  for (int i = 0; i < nb; i++) ua[ba[i]] = ub[bb[i]] = true;
  int fa[EM_MAX_NDIM], fb[EM_MAX_NDIM], nfa = 0, nfb = 0;
  for (int i = 0; i < a->nd; i++)
    if (!ua[i]) fa[nfa++] = i;
  for (int i = 0; i < b->nd; i++)
    if (!ub[i]) fb[nfb++] = i;
  int64_t osh[2 * EM_MAX_NDIM], ksh[EM_MAX_NDIM];
  int ond = 0;
  for (int i = 0; i < nb; i++) osh[ond++] = a->sh[ba[i]];
  for (int i = 0; i < nfa; i++) osh[ond++] = a->sh[fa[i]];
  for (int i = 0; i < nfb; i++) osh[ond++] = b->sh[fb[i]];
  int64_t K = 1;
  for (int i = 0; i < nc; i++) K *= (ksh[i] = a->sh[ca[i]]);
  host o = h_new(a->t, ond, osh);
  *atols = calloc((size_t)(o.n ? o.n : 1), sizeof(double));
  em_dtype t = a->t;
  int64_t oi[2 * EM_MAX_NDIM], ki[EM_MAX_NDIM], ai[EM_MAX_NDIM], bi[EM_MAX_NDIM];
  for (int64_t j = 0; j < o.n; j++) {
    unflat(j, ond, osh, oi);
    int q = 0;
    for (int i = 0; i < nb; i++, q++) ai[ba[i]] = bi[bb[i]] = oi[q];
    for (int i = 0; i < nfa; i++, q++) ai[fa[i]] = oi[q];
    for (int i = 0; i < nfb; i++, q++) bi[fb[i]] = oi[q];
    long double re = 0, im = 0, as = 0;
    uint64_t iv = 0;
    for (int64_t k = 0; k < K; k++) {
      unflat(k, nc, ksh, ki);
      for (int i = 0; i < nc; i++) ai[ca[i]] = bi[cb[i]] = ki[i];
      tv x = a->v[flat(a->nd, a->sh, ai)], y = b->v[flat(b->nd, b->sh, bi)];
      if (dt_int(t)) iv += (uint64_t)x.i * (uint64_t)y.i;
      else {
        re += (long double)x.re * y.re - (long double)x.im * y.im;
        im += (long double)x.re * y.im + (long double)x.im * y.re;
        as += hypotl(x.re, x.im) * hypotl(y.re, y.im);
      }
    }
    o.v[j] = dt_int(t) ? tv_i(wrap_int(t, iv)) : tv_c((double)re, (double)im);
    (*atols)[j] = (double)as * rtol_of(t) * 4;
  }
  return o;
}

static void fill_dot(host *h, const void *ctx) {
  (void)ctx;
  for (int64_t i = 0; i < h->n; i++)
    h->v[i] = dt_int(h->t) ? rnd_bits(h->t) : rnd_tv(h->t, -2, 2);
  h_nonzero(h);
}

static void run_dot(const ah *a, int nc, const int *ca, int nb, const int *ba, const ah *b,
                    const int *cb, const int *bb, const char *kind) {
  em_array *o = SENTINEL;
  em_status st = em_dot(&o, a->a, nc, ca, nb, ba, b->a, nc, cb, nb, bb);
  char what[128];
  snprintf(what, sizeof what, "dot %s %s", dn(a->h.t), kind);
  CHECK(st == EM_OK, "%s: %s", what, em_last_error());
  if (st != EM_OK) return;
  double *atols = NULL;
  host w = h_dot(&a->h, nc, ca, nb, ba, &b->h, cb, bb, &atols);
  check_host_ex(what, o, &w, rtol_of(a->h.t), atol_of(a->h.t), atols, 0);
  free(atols);
  em_array_release(o);
  h_free(&w);
}

static void test_dot(void) {
  const em_dtype ts[] = {EM_U8, EM_S32, EM_S64, EM_U64, EM_S16, EM_F16,
                         EM_BF16, EM_F32, EM_F64, EM_C64, EM_C128};
  struct {
    const char *name;
    int and_, bnd;
    int64_t as[4], bs[4];
    int nc, nb;
    int ca[2], cb[2], ba[2], bb[2];
  } cases[] = {
      {"matrix-vector", 2, 1, {3, 4}, {4}, 1, 0, {1}, {0}, {0}, {0}},
      {"vector-vector", 1, 1, {5}, {5}, 1, 0, {0}, {0}, {0}, {0}},
      {"matmul", 2, 2, {3, 4}, {4, 5}, 1, 0, {1}, {0}, {0}, {0}},
      {"A^T B", 2, 2, {4, 3}, {4, 5}, 1, 0, {0}, {0}, {0}, {0}},
      {"A B^T", 2, 2, {3, 4}, {5, 4}, 1, 0, {1}, {1}, {0}, {0}},
      {"A^T B^T", 2, 2, {4, 3}, {5, 4}, 1, 0, {0}, {1}, {0}, {0}},
      {"two contracting axes", 3, 3, {2, 3, 4}, {4, 5, 2}, 2, 0, {0, 2}, {2, 0}, {0}, {0}},
      {"batched", 3, 3, {2, 3, 4}, {2, 4, 5}, 1, 1, {2}, {1}, {0}, {0}},
      {"batch in the middle", 3, 3, {3, 2, 4}, {4, 5, 2}, 1, 1, {2}, {0}, {1}, {2}},
      {"two batch axes", 4, 4, {2, 3, 4, 5}, {2, 3, 5, 6}, 1, 2, {3}, {2}, {0, 1}, {0, 1}},
      {"swapped batch axes", 3, 3, {2, 3, 4}, {3, 2, 4}, 1, 2, {2}, {2}, {0, 1}, {1, 0}},
      {"outer", 1, 1, {3}, {4}, 0, 0, {0}, {0}, {0}, {0}},
      {"empty contraction", 2, 2, {3, 0}, {0, 4}, 1, 0, {1}, {0}, {0}, {0}},
      {"empty free axis", 2, 2, {0, 4}, {4, 5}, 1, 0, {1}, {0}, {0}, {0}},
      {"scalar times", 0, 2, {0}, {3, 2}, 0, 0, {0}, {0}, {0}, {0}},
  };
  int nc = (int)(sizeof cases / sizeof cases[0]);
  for (int k = 0; k < 11; k++)
    for (int c = 0; c < nc; c++)
      for (int view = 0; view < 3; view++) {
        em_dtype t = ts[k];
        ah a = ah_noncontig(t, cases[c].and_, cases[c].as, view ? view - 1 : -1, fill_dot, NULL);
        ah b = ah_noncontig(t, cases[c].bnd, cases[c].bs, view ? view + 1 : -1, fill_dot, NULL);
        char kind[96];
        snprintf(kind, sizeof kind, "%s view %d", cases[c].name, view);
        run_dot(&a, cases[c].nc, cases[c].ca, cases[c].nb, cases[c].ba, &b, cases[c].cb,
                cases[c].bb, kind);
        ah_free(&a);
        ah_free(&b);
      }
  /* bigger: BLAS paths and the integer GEMM */
  const em_dtype big[] = {EM_F32, EM_F64, EM_S64, EM_U8, EM_F16, EM_C64};
  for (int k = 0; k < 6; k++) {
    em_dtype t = big[k];
    int64_t as[2] = {96, 130}, bs[2] = {130, 70};
    ah a = ah_noncontig(t, 2, as, -1, fill_dot, NULL);
    ah b = ah_noncontig(t, 2, bs, -1, fill_dot, NULL);
    run_dot(&a, 1, (int[]){1}, 0, NULL, &b, (int[]){0}, NULL, "96x130x70");
    ah at = ah_transpose(&a, NULL), bt = ah_transpose(&b, NULL);
    run_dot(&at, 1, (int[]){0}, 0, NULL, &bt, (int[]){1}, NULL, "transposed 96x130x70");
    ah_free(&at);
    ah_free(&bt);
    ah_free(&a);
    ah_free(&b);
  }
  /* matmul: rank 2 and batched, with a transposed operand */
  const em_dtype mts[] = {EM_F32, EM_S32, EM_C128, EM_BF16};
  for (int k = 0; k < 4; k++) {
    em_dtype t = mts[k];
    int64_t as[3] = {2, 3, 4}, bs[3] = {2, 4, 5};
    ah a = ah_noncontig(t, 3, as, -1, fill_dot, NULL);
    ah b = ah_noncontig(t, 3, bs, 4, fill_dot, NULL);
    em_array *o = NULL;
    CHECK(em_matmul(&o, a.a, b.a) == EM_OK, "matmul: %s", em_last_error());
    double *atols = NULL;
    host w = h_dot(&a.h, 1, (int[]){2}, 1, (int[]){0}, &b.h, (int[]){1}, (int[]){0}, &atols);
    check_host_ex("matmul batched", o, &w, rtol_of(t), atol_of(t), atols, 0);
    free(atols);
    em_array_release(o);
    h_free(&w);
    int64_t s2[2] = {4, 3};
    ah c = ah_noncontig(t, 2, s2, 0, fill_dot, NULL), d = ah_noncontig(t, 2, s2, -1, fill_dot, NULL);
    ah dt = ah_transpose(&d, NULL);
    MUST(em_matmul(&o, c.a, dt.a), o);
    w = h_dot(&c.h, 1, (int[]){1}, 0, NULL, &dt.h, (int[]){0}, NULL, &atols);
    check_host_ex("matmul rank 2", o, &w, rtol_of(t), atol_of(t), atols, 0);
    free(atols);
    em_array_release(o);
    h_free(&w);
    ah *all[] = {&a, &b, &c, &d, &dt};
    for (int i = 0; i < 5; i++) ah_free(all[i]);
  }
  /* written out: [[1,2],[3,4]] . [[5,6],[7,8]] */
  {
    const int32_t x[] = {1, 2, 3, 4}, y[] = {5, 6, 7, 8};
    int64_t s[2] = {2, 2};
    em_array *a = NULL, *b = NULL, *o = NULL;
    MUST(em_array_from_data(&a, EM_S32, 2, s, x, sizeof x, em_cpu()), a);
    MUST(em_array_from_data(&b, EM_S32, 2, s, y, sizeof y, em_cpu()), b);
    MUST(em_matmul(&o, a, b), o);
    const int32_t *r = em_array_data(o);
    CHECK(r && r[0] == 19 && r[1] == 22 && r[2] == 43 && r[3] == 50, "matmul written out");
    em_array_release(a);
    em_array_release(b);
    em_array_release(o);
  }
}

/* ---- softmax / logsumexp / layer_norm / rms_norm ---------------------- */

/* Applies f to every 1-d row of x along axis. */
typedef void (*row_fn)(const tv *in, tv *out, int64_t d, const void *ctx);
static host h_rows(const host *x, int axis, bool collapse, bool keep, row_fn f,
                   const void *ctx) {
  int64_t osh[EM_MAX_NDIM], idx[EM_MAX_NDIM];
  int ond = 0;
  for (int i = 0; i < x->nd; i++) {
    if (i == axis && collapse) {
      if (keep) osh[ond++] = 1;
    } else {
      osh[ond++] = x->sh[i];
    }
  }
  host o = h_new(x->t, ond, osh);
  int64_t d = x->sh[axis];
  tv *in = calloc((size_t)(d ? d : 1), sizeof(tv)), *out = calloc((size_t)(d ? d : 1), sizeof(tv));
  for (int64_t f0 = 0; f0 < x->n; f0++) {
    unflat(f0, x->nd, x->sh, idx);
    if (idx[axis] != 0) continue;
    for (int64_t k = 0; k < d; k++) {
      idx[axis] = k;
      in[k] = x->v[flat(x->nd, x->sh, idx)];
    }
    f(in, out, d, ctx);
    for (int64_t k = 0; k < (collapse ? 1 : d); k++) {
      idx[axis] = k;
      int64_t oi[EM_MAX_NDIM];
      int q = 0;
      for (int i = 0; i < x->nd; i++) {
        if (i == axis && collapse) {
          if (keep) oi[q++] = 0;
        } else {
          oi[q++] = idx[i];
        }
      }
      o.v[flat(ond, osh, oi)] = out[k];
    }
  }
  free(in);
  free(out);
  return o;
}

static void row_softmax(const tv *in, tv *out, int64_t d, const void *ctx) {
  (void)ctx;
  long double m = -INFINITY, s = 0;
  bool nan = false;
  for (int64_t i = 0; i < d; i++) {
    nan |= isnan(in[i].re);
    if (in[i].re > m) m = in[i].re;
  }
  for (int64_t i = 0; i < d; i++) s += expl(in[i].re - m);
  for (int64_t i = 0; i < d; i++)
    out[i] = tv_f(nan || isinf(m) ? NAN : (double)(expl(in[i].re - m) / s));
}
static void row_lse(const tv *in, tv *out, int64_t d, const void *ctx) {
  (void)ctx;
  long double m = -INFINITY, s = 0;
  bool nan = false;
  for (int64_t i = 0; i < d; i++) {
    nan |= isnan(in[i].re);
    if (in[i].re > m) m = in[i].re;
  }
  if (nan) {
    out[0] = tv_f(NAN);
    return;
  }
  if (isinf(m)) {
    out[0] = tv_f((double)m);
    return;
  }
  for (int64_t i = 0; i < d; i++) s += expl(in[i].re - m);
  out[0] = tv_f((double)(m + logl(s)));
}
typedef struct {
  bool rms;
  double eps;
  const host *w, *b;
} norm_ctx;
static void row_norm(const tv *in, tv *out, int64_t d, const void *ctx_) {
  const norm_ctx *c = ctx_;
  long double mean = 0, var = 0;
  if (!c->rms) {
    for (int64_t i = 0; i < d; i++) mean += in[i].re;
    mean /= d;
  }
  for (int64_t i = 0; i < d; i++) var += (in[i].re - mean) * (in[i].re - mean);
  long double r = 1 / sqrtl(var / d + c->eps);
  for (int64_t i = 0; i < d; i++) {
    long double v = (in[i].re - mean) * r;
    if (c->w) v *= c->w->v[i].re;
    if (c->b) v += c->b->v[i].re;
    out[i] = tv_f((double)v);
  }
}

static void fill_rows(host *h, const void *ctx) {
  bool specials = ctx != NULL;
  for (int64_t i = 0; i < h->n; i++) {
    double r = rng_unit();
    h->v[i] = rnd_tv(h->t, -4, 4);
    if (specials && r < 0.03) h->v[i] = tv_f(-INFINITY);
  }
}

static double row_tol(em_dtype t) { return t == EM_F32 ? 2e-5 : t == EM_F64 ? 1e-12 : rtol_of(t) * 2; }

static void test_rows(void) {
  const em_dtype ts[] = {EM_F16, EM_BF16, EM_F32, EM_F64};
  char what[128];
  for (int k = 0; k < 4; k++) {
    em_dtype t = ts[k];
    double tol = row_tol(t);
    int64_t s[3] = {3, 4, 33};
    for (int view = 0; view < 3; view++) {
      ah x = ah_noncontig(t, 3, s, view ? view * 2 - 2 : -1, fill_rows, view == 2 ? "inf" : NULL);
      for (int axis = -1; axis < 3; axis++) {
        int ax = axis < 0 ? 2 : axis;
        em_array *o = NULL;
        CHECK(em_softmax(&o, x.a, axis) == EM_OK, "softmax: %s", em_last_error());
        host w = h_rows(&x.h, ax, false, false, row_softmax, NULL);
        snprintf(what, sizeof what, "softmax %s axis %d view %d", dn(t), axis, view);
        check_host(what, o, &w, tol, tol);
        em_array_release(o);
        h_free(&w);
        for (int keep = 0; keep < 2; keep++) {
          CHECK(em_logsumexp(&o, x.a, axis, keep) == EM_OK, "logsumexp: %s", em_last_error());
          w = h_rows(&x.h, ax, true, keep, row_lse, NULL);
          snprintf(what, sizeof what, "logsumexp %s axis %d keep %d view %d", dn(t), axis,
                   keep, view);
          check_host(what, o, &w, tol, tol);
          em_array_release(o);
          h_free(&w);
        }
      }
      /* layer_norm / rms_norm over the last axis, weight and bias optional */
      int64_t d = x.h.sh[2];
      int64_t ds[1] = {d};
      ah wt = ah_rand(t, 1, ds, -2, 2), bs = ah_rand(t, 1, ds, -1, 1);
      for (int mode = 0; mode < 4; mode++) {
        bool hw = mode & 1, hb = mode & 2;
        em_array *o = NULL;
        double eps = mode == 3 ? 1e-2 : 1e-5;
        CHECK(em_layer_norm(&o, x.a, hw ? wt.a : NULL, hb ? bs.a : NULL, eps) == EM_OK,
              "layer_norm: %s", em_last_error());
        norm_ctx c = {false, eps, hw ? &wt.h : NULL, hb ? &bs.h : NULL};
        host w = h_rows(&x.h, 2, false, false, row_norm, &c);
        snprintf(what, sizeof what, "layer_norm %s weight %d bias %d view %d", dn(t), hw, hb, view);
        check_host(what, o, &w, tol * 4, tol * 8);
        em_array_release(o);
        h_free(&w);
        if (hb) continue;
        CHECK(em_rms_norm(&o, x.a, hw ? wt.a : NULL, eps) == EM_OK, "rms_norm: %s", em_last_error());
        c.rms = true;
        w = h_rows(&x.h, 2, false, false, row_norm, &c);
        snprintf(what, sizeof what, "rms_norm %s weight %d view %d", dn(t), hw, view);
        check_host(what, o, &w, tol * 4, tol * 8);
        em_array_release(o);
        h_free(&w);
      }
      ah_free(&wt);
      ah_free(&bs);
      ah_free(&x);
    }
    /* rank 1 and large (thread pool over rows) */
    for (int big = 0; big < 2; big++) {
      int64_t s2[2] = {big ? 2500 : 1, big ? 160 : 17};
      ah x = ah_noncontig(t, big ? 2 : 1, big ? s2 : s2 + 1, -1, fill_rows, NULL);
      int last = x.h.nd - 1;
      em_array *o = NULL;
      MUST(em_softmax(&o, x.a, -1), o);
      host w = h_rows(&x.h, last, false, false, row_softmax, NULL);
      check_host(big ? "softmax large" : "softmax rank 1", o, &w, tol, tol);
      em_array_release(o);
      h_free(&w);
      MUST(em_logsumexp(&o, x.a, 0, false), o);
      w = h_rows(&x.h, 0, true, false, row_lse, NULL);
      check_host(big ? "logsumexp large axis 0" : "logsumexp rank 1", o, &w, tol, tol);
      em_array_release(o);
      h_free(&w);
      MUST(em_layer_norm(&o, x.a, NULL, NULL, 1e-5), o);
      norm_ctx c = {false, 1e-5, NULL, NULL};
      w = h_rows(&x.h, last, false, false, row_norm, &c);
      check_host(big ? "layer_norm large" : "layer_norm rank 1", o, &w, tol * 4, tol * 8);
      em_array_release(o);
      h_free(&w);
      ah_free(&x);
    }
  }
  /* written out */
  {
    const double v[] = {0, 0, 0, 0, 1, 2, -INFINITY, 0};
    int64_t s[2] = {2, 4};
    em_array *a = NULL, *sm = NULL, *ls = NULL, *ln = NULL;
    MUST(em_array_from_data(&a, EM_F64, 2, s, v, sizeof v, em_cpu()), a);
    MUST(em_softmax(&sm, a, 1), sm);
    MUST(em_logsumexp(&ls, a, 1, false), ls);
    MUST(em_layer_norm(&ln, a, NULL, NULL, 1e-5), ln);
    const double *p = em_array_data(sm), *q = em_array_data(ls), *r = em_array_data(ln);
    CHECK(p && p[0] == 0.25 && p[3] == 0.25 && p[6] == 0, "softmax written out");
    CHECK(q && fabs(q[0] - log(4.0)) < 1e-15, "logsumexp written out");
    CHECK(r && r[0] == 0 && isnan(r[6]), "layer_norm of a constant row is 0; -inf gives NaN");
    em_array_release(a);
    em_array_release(sm);
    em_array_release(ls);
    em_array_release(ln);
  }
}

int main(void) {
  rng_seed(31);
  test_reductions();
  test_arg();
  test_dot();
  test_rows();
  return TEST_SUMMARY();
}
