/* test_ops_shape.c — shape and data-movement ops (reshape, squeeze,
 * broadcast, transpose, pad, reverse, slice, slice_dynamic, put_slice,
 * put_slice_dynamic, concatenate, stack, select, clip) over element sizes
 * 1..16 bytes, contiguous and non-contiguous inputs, zero-size and scalar
 * shapes; and host access to non-contiguous evaluated views. */
#include "ref.h"

/* one dtype per element size, plus a float of each half format */
static const em_dtype SHAPE_DTYPES[] = {EM_U8, EM_F16, EM_BF16, EM_S32,
                                        EM_F64, EM_U64, EM_C128};
#define N_SHAPE_DTYPES 7

static void fill_any(host *h, const void *ctx) {
  (void)ctx;
  for (int64_t i = 0; i < h->n; i++)
    h->v[i] = dt_int(h->t) ? rnd_bits(h->t) : rnd_tv(h->t, -100, 100);
  h_nonzero(h);
}
static ah mk(em_dtype t, int nd, const int64_t *sh) {
  host h = h_new(t, nd, sh);
  fill_any(&h, NULL);
  return ah_of(h);
}
/* x as a non-contiguous view when view > 0 (the kind is view - 1). */
static ah mkv(em_dtype t, int nd, const int64_t *sh, int view) {
  if (!view) return mk(t, nd, sh);
  return ah_noncontig(t, nd, sh, (view - 1) % 5, fill_any, NULL);
}

#define EXACT(what, arr, want) check_host((what), (arr), (want), 0, 0)

/* ---- reshape / squeeze / broadcast / transpose / reverse --------------- */

static void test_reshape_family(em_dtype t) {
  char what[96];
  for (int view = 0; view < 3; view++) {
    int64_t s[3] = {2, 3, 4};
    ah x = mkv(t, 3, s, view);
    const int64_t targets[][3] = {{6, 4, 0}, {24, 0, 0}, {4, 1, 6}, {3, 8, 0}};
    const int tnd[] = {2, 1, 3, 2};
    for (int k = 0; k < 4; k++) {
      em_array *o = SENTINEL;
      CHECK(em_reshape(&o, x.a, tnd[k], targets[k]) == EM_OK, "reshape");
      host w = h_reshape(&x.h, tnd[k], targets[k]);
      snprintf(what, sizeof what, "reshape %s view%d -> %d", dn(t), view, k);
      EXACT(what, o, &w);
      /* and a reshape of the reshape back */
      em_array *b = NULL;
      MUST(em_reshape(&b, o, 3, s), b);
      snprintf(what, sizeof what, "reshape back %s view%d", dn(t), view);
      EXACT(what, b, &x.h);
      em_array_release(o);
      em_array_release(b);
      h_free(&w);
    }
    ah_free(&x);
  }
  /* [1,1] -> [] and zero-size reshapes */
  {
    int64_t s11[2] = {1, 1}, z[2] = {0, 3}, z2[3] = {3, 0, 2};
    ah x = mk(t, 2, s11);
    em_array *o = NULL;
    MUST(em_reshape(&o, x.a, 0, NULL), o);
    host w = h_reshape(&x.h, 0, NULL);
    EXACT("reshape [1,1] -> []", o, &w);
    em_array_release(o);
    h_free(&w);
    ah_free(&x);
    ah y = mk(t, 2, z);
    MUST(em_reshape(&o, y.a, 3, z2), o);
    w = h_reshape(&y.h, 3, z2);
    EXACT("reshape [0,3] -> [3,0,2]", o, &w);
    em_array_release(o);
    h_free(&w);
    ah_free(&y);
  }
  /* squeeze */
  {
    int64_t s[4] = {1, 3, 1, 4};
    ah x = mkv(t, 4, s, 4);
    em_array *a = NULL, *b = NULL, *c = NULL;
    MUST(em_squeeze(&a, x.a, 0, NULL), a);
    MUST(em_squeeze(&b, x.a, 1, (int[]){0}), b);
    MUST(em_squeeze(&c, x.a, 2, (int[]){-2, 0}), c);
    host wa = h_reshape(&x.h, 2, (int64_t[]){3, 4});
    host wb = h_reshape(&x.h, 3, (int64_t[]){3, 1, 4});
    host wc = h_reshape(&x.h, 2, (int64_t[]){3, 4});
    EXACT("squeeze all", a, &wa);
    EXACT("squeeze axis 0", b, &wb);
    EXACT("squeeze axes -2,0", c, &wc);
    em_array_release(a);
    em_array_release(b);
    em_array_release(c);
    h_free(&wa);
    h_free(&wb);
    h_free(&wc);
    ah_free(&x);
  }
  /* broadcast with explicit axes and trailing alignment */
  {
    struct {
      int nd_in;
      int64_t in[3];
      int nd_out;
      int64_t out[4];
      int axes[3];
      bool use_axes;
    } cases[] = {
        {1, {3}, 3, {2, 3, 4}, {1}, true},
        {2, {2, 1}, 3, {2, 5, 3}, {0, 2}, true},
        {0, {0}, 2, {3, 2}, {0}, false},
        {2, {4, 1}, 3, {3, 4, 5}, {0}, false},
        {2, {1, 4}, 4, {2, 3, 5, 4}, {1, 3}, true},
        {1, {1}, 2, {0, 3}, {0}, false},
    };
    for (int k = 0; k < 6; k++)
      for (int view = 0; view < 2; view++) {
        ah x = mkv(t, cases[k].nd_in, cases[k].in, view ? 3 : 0);
        const int *axes = cases[k].use_axes ? cases[k].axes : NULL;
        em_array *o = NULL;
        CHECK(em_broadcast(&o, x.a, cases[k].nd_out, cases[k].out, axes) == EM_OK,
              "broadcast case %d: %s", k, em_last_error());
        host w = h_broadcast(&x.h, cases[k].nd_out, cases[k].out, axes);
        snprintf(what, sizeof what, "broadcast %s case %d view %d", dn(t), k, view);
        EXACT(what, o, &w);
        /* and a contiguous copy of the broadcast view */
        em_array *c = NULL;
        if (o) MUST(em_copy(&c, o), c);
        if (c) EXACT("copy of broadcast", c, &w);
        em_array_release(c);
        em_array_release(o);
        h_free(&w);
        ah_free(&x);
      }
  }
  /* transpose: every permutation of rank 3, a rank-4 one, NULL, views */
  {
    int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    int64_t s[3] = {2, 3, 4};
    for (int view = 0; view < 3; view++) {
      ah x = mkv(t, 3, s, view ? view + 2 : 0);
      for (int k = 0; k < 6; k++) {
        ah o = ah_transpose(&x, perms[k]);
        snprintf(what, sizeof what, "transpose %s perm %d view %d", dn(t), k, view);
        EXACT(what, o.a, &o.h);
        /* transpose of a transpose */
        ah o2 = ah_transpose(&o, perms[(k + 1) % 6]);
        EXACT("transpose twice", o2.a, &o2.h);
        ah_free(&o2);
        ah_free(&o);
      }
      ah n = ah_transpose(&x, NULL);
      EXACT("transpose NULL perm", n.a, &n.h);
      ah_free(&n);
      /* negative entries count from the end */
      em_array *neg = NULL;
      MUST(em_transpose(&neg, x.a, (int[]){-1, 0, 1}), neg);
      host wn = h_transpose(&x.h, (int[]){2, 0, 1});
      EXACT("transpose negative perm", neg, &wn);
      em_array_release(neg);
      h_free(&wn);
      ah_free(&x);
    }
    int64_t s4[4] = {2, 3, 1, 4};
    ah x = mk(t, 4, s4);
    ah o = ah_transpose(&x, (int[]){3, 0, 2, 1});
    EXACT("transpose rank 4", o.a, &o.h);
    ah_free(&o);
    ah_free(&x);
  }
  /* reverse */
  {
    int64_t s[3] = {3, 4, 5};
    const int ax[][3] = {{0}, {1, 2}, {0, 1, 2}, {-1}};
    const int nax[] = {1, 2, 3, 1};
    for (int view = 0; view < 3; view++) {
      ah x = mkv(t, 3, s, view);
      for (int k = 0; k < 4; k++) {
        ah o = ah_reverse(&x, nax[k], ax[k]);
        snprintf(what, sizeof what, "reverse %s case %d view %d", dn(t), k, view);
        EXACT(what, o.a, &o.h);
        ah_free(&o);
      }
      ah o = ah_reverse(&x, 0, NULL);
      EXACT("reverse no axes", o.a, &o.h);
      ah_free(&o);
      ah_free(&x);
    }
    int64_t z[2] = {0, 3};
    ah x = mk(t, 2, z);
    ah o = ah_reverse(&x, 2, (int[]){0, 1});
    EXACT("reverse zero-size", o.a, &o.h);
    ah_free(&o);
    ah_free(&x);
  }
}

/* ---- pad --------------------------------------------------------------- */

static host h_pad(const host *h, tv val, const int64_t *lo, const int64_t *hi,
                  const int64_t *in) {
  int64_t sh[EM_MAX_NDIM] = {0}, idx[EM_MAX_NDIM], src[EM_MAX_NDIM];
  for (int i = 0; i < h->nd; i++) {
    int64_t n = h->sh[i], it = in ? in[i] : 0;
    sh[i] = (n == 0 ? 0 : n + (n - 1) * it) + lo[i] + hi[i];
  }
  host o = h_new(h->t, h->nd, sh);
  for (int64_t f = 0; f < o.n; f++) {
    unflat(f, o.nd, o.sh, idx);
    bool inside = true;
    for (int i = 0; i < h->nd && inside; i++) {
      int64_t p = idx[i] - lo[i], st = (in ? in[i] : 0) + 1;
      if (p < 0 || p % st != 0 || p / st >= h->sh[i]) inside = false;
      else src[i] = p / st;
    }
    o.v[f] = inside ? h->v[flat(h->nd, h->sh, src)] : val;
  }
  if (h->nd == 0) o.v[0] = h->v[0];
  return o;
}

static void test_pad(em_dtype t) {
  struct {
    int nd;
    int64_t s[3], lo[3], hi[3], in[3];
  } cases[] = {
      {1, {5}, {2}, {3}, {1}},
      {1, {5}, {-1}, {-2}, {2}},
      {1, {4}, {-3}, {1}, {0}},
      {2, {3, 4}, {1, -1}, {-1, 2}, {2, 0}},
      {2, {3, 4}, {0, 0}, {0, 0}, {0, 0}},
      {3, {2, 3, 2}, {1, 0, -1}, {0, 2, 1}, {1, 1, 3}},
      {2, {0, 3}, {1, 1}, {2, 0}, {1, 1}},
      {2, {3, 4}, {-2, -3}, {-1, -1}, {1, 1}},
  };
  char what[96];
  for (int k = 0; k < 8; k++)
    for (int view = 0; view < 3; view++) {
      ah x = mkv(t, cases[k].nd, cases[k].s, view ? view * 2 - 1 : 0);
      ah v = mk(t, 0, NULL);
      em_array *o = NULL;
      em_status st = em_pad(&o, x.a, v.a, cases[k].lo, cases[k].hi, cases[k].in);
      CHECK(st == EM_OK, "pad case %d: %s", k, em_last_error());
      host w = h_pad(&x.h, v.h.v[0], cases[k].lo, cases[k].hi, cases[k].in);
      snprintf(what, sizeof what, "pad %s case %d view %d", dn(t), k, view);
      EXACT(what, o, &w);
      em_array_release(o);
      h_free(&w);
      ah_free(&x);
      ah_free(&v);
    }
  /* rank 0: nothing to pad; NULL interior means 0 */
  {
    ah x = mk(t, 0, NULL), v = mk(t, 0, NULL);
    em_array *o = NULL;
    MUST(em_pad(&o, x.a, v.a, NULL, NULL, NULL), o);
    EXACT("pad rank 0", o, &x.h);
    em_array_release(o);
    ah_free(&x);
    ah_free(&v);
    int64_t s[2] = {3, 3}, lo[2] = {1, 2}, hi[2] = {0, 1};
    ah y = mk(t, 2, s), pv = mk(t, 0, NULL);
    MUST(em_pad(&o, y.a, pv.a, lo, hi, NULL), o);
    host w = h_pad(&y.h, pv.h.v[0], lo, hi, NULL);
    EXACT("pad NULL interior", o, &w);
    em_array_release(o);
    h_free(&w);
    ah_free(&y);
    ah_free(&pv);
  }
  /* large (parallel fill) */
  if (t == EM_F64 || t == EM_U8) {
    int64_t s[2] = {500, 600}, lo[2] = {3, -2}, hi[2] = {1, 4}, in[2] = {0, 1};
    ah x = mk(t, 2, s), v = mk(t, 0, NULL);
    em_array *o = NULL;
    MUST(em_pad(&o, x.a, v.a, lo, hi, in), o);
    host w = h_pad(&x.h, v.h.v[0], lo, hi, in);
    EXACT("pad large", o, &w);
    em_array_release(o);
    h_free(&w);
    ah_free(&x);
    ah_free(&v);
  }
}

/* ---- slice / slice_dynamic ------------------------------------------- */

static em_array *idx_scalar(em_dtype t, int64_t v) {
  host h = h_new(t, 0, NULL);
  h.v[0] = tv_i(wrap_int(t, (uint64_t)v));
  em_array *a = h_array(&h);
  h_free(&h);
  return a;
}

static void test_slice(em_dtype t) {
  char what[96];
  int64_t s[3] = {6, 7, 8};
  struct {
    int64_t start[3], len[3], stride[3];
    bool strides;
  } cases[] = {
      {{1, 2, 3}, {4, 3, 2}, {1, 2, 1}, true},
      {{5, -3, 100}, {3, 2, 4}, {1, 1, 1}, false}, /* clamped starts */
      {{0, 0, 0}, {6, 7, 8}, {5, 3, 10}, true},    /* stride past length */
      {{2, 6, 1}, {0, 1, 7}, {1, 1, 3}, true},     /* zero length */
      {{-100, 3, 7}, {6, 4, 1}, {2, 2, 1}, true},
  };
  for (int view = 0; view < 3; view++) {
    ah x = mkv(t, 3, s, view ? view * 2 : 0);
    for (int k = 0; k < 5; k++) {
      const int64_t *str = cases[k].strides ? cases[k].stride : NULL;
      ah o = ah_slice(&x, cases[k].start, cases[k].len, str);
      snprintf(what, sizeof what, "slice %s case %d view %d", dn(t), k, view);
      EXACT(what, o.a, &o.h);
      /* slice of a slice */
      int64_t st2[3] = {1, 0, 1}, l2[3], sd2[3] = {2, 1, 1};
      for (int i = 0; i < 3; i++) l2[i] = o.h.sh[i] > 1 ? o.h.sh[i] - 1 : o.h.sh[i];
      ah o2 = ah_slice(&o, st2, l2, sd2);
      EXACT("slice of slice", o2.a, &o2.h);
      ah_free(&o2);
      /* dynamic slice with the same starts, as various int dtypes */
      const em_dtype its[] = {EM_S32, EM_S64, EM_U8, EM_S8, EM_U64, EM_U16};
      em_array *starts[3];
      for (int i = 0; i < 3; i++) {
        em_dtype it = its[(k + i + view) % 6];
        int64_t sv = cases[k].start[i];
        if (dt_uns(it) && sv < 0) sv = 0; /* negative in an unsigned type: 0 */
        if (it == EM_U8 && sv > 255) sv = 255;
        if (it == EM_S8 && sv > 127) sv = 127;
        starts[i] = idx_scalar(it, sv);
      }
      em_array *d = NULL;
      CHECK(em_slice_dynamic(&d, x.a, starts, cases[k].len, str) == EM_OK,
            "slice_dynamic: %s", em_last_error());
      snprintf(what, sizeof what, "slice_dynamic %s case %d view %d", dn(t), k, view);
      EXACT(what, d, &o.h);
      em_array_release(d);
      for (int i = 0; i < 3; i++) em_array_release(starts[i]);
      ah_free(&o);
    }
    ah_free(&x);
  }
  /* dynamic starts: huge u64, lazily computed, out of range both ways */
  {
    ah x = mk(t, 3, s);
    em_array *a = idx_scalar(EM_S32, 2), *b = idx_scalar(EM_S32, 3), *lazy = NULL;
    MUST(em_add(&lazy, a, b), lazy); /* 5, clamps to 6 - 2 = 4 */
    em_array *starts[3] = {lazy, idx_scalar(EM_U64, -1) /* 2^64 - 1 */,
                           idx_scalar(EM_S64, INT64_MIN)};
    int64_t len[3] = {2, 3, 4};
    em_array *d = NULL;
    MUST(em_slice_dynamic(&d, x.a, starts, len, NULL), d);
    host w = h_slice(&x.h, (int64_t[]){5, 1000, -1000}, len, NULL);
    EXACT("slice_dynamic lazy/huge/negative starts", d, &w);
    em_array_release(d);
    em_array_release(a);
    em_array_release(b);
    for (int i = 0; i < 3; i++) em_array_release(starts[i]);
    h_free(&w);
    ah_free(&x);
  }
  /* rank 0 */
  {
    ah x = mk(t, 0, NULL);
    ah o = ah_slice(&x, NULL, NULL, NULL);
    EXACT("slice rank 0", o.a, &x.h);
    em_array *d = NULL;
    MUST(em_slice_dynamic(&d, x.a, NULL, NULL, NULL), d);
    EXACT("slice_dynamic rank 0", d, &x.h);
    em_array_release(d);
    ah_free(&o);
    ah_free(&x);
  }
}

/* ---- put_slice ----------------------------------------------------------- */

static host h_put(const host *a, const host *u, const int64_t *start) {
  host o = h_copy(a);
  int64_t s0[EM_MAX_NDIM], idx[EM_MAX_NDIM], dst[EM_MAX_NDIM];
  for (int i = 0; i < a->nd; i++) {
    s0[i] = start[i];
    if (s0[i] > a->sh[i] - u->sh[i]) s0[i] = a->sh[i] - u->sh[i];
    if (s0[i] < 0) s0[i] = 0;
  }
  for (int64_t f = 0; f < u->n; f++) {
    unflat(f, u->nd, u->sh, idx);
    for (int i = 0; i < a->nd; i++) dst[i] = s0[i] + idx[i];
    o.v[flat(a->nd, a->sh, dst)] = u->v[f];
  }
  if (a->nd == 0) o.v[0] = u->v[0];
  return o;
}

static void test_put_slice(em_dtype t) {
  char what[96];
  int64_t s[3] = {5, 6, 7};
  struct {
    int64_t us[3], start[3];
  } cases[] = {
      {{2, 3, 4}, {1, 2, 3}},   {{2, 3, 4}, {4, -1, 100}}, {{5, 6, 7}, {1, 1, 1}},
      {{1, 1, 1}, {4, 5, 6}},   {{0, 3, 2}, {1, 1, 1}},    {{3, 1, 7}, {-5, 2, 0}},
  };
  for (int k = 0; k < 6; k++)
    for (int view = 0; view < 3; view++) {
      ah a = mkv(t, 3, s, view ? view : 0);
      ah u = mkv(t, 3, cases[k].us, view ? view + 2 : 0);
      em_array *o = NULL;
      CHECK(em_put_slice(&o, a.a, u.a, cases[k].start) == EM_OK, "put_slice: %s",
            em_last_error());
      host w = h_put(&a.h, &u.h, cases[k].start);
      snprintf(what, sizeof what, "put_slice %s case %d view %d", dn(t), k, view);
      EXACT(what, o, &w);
      /* the base is unchanged (arrays are immutable) */
      EXACT("put_slice leaves its input alone", a.a, &a.h);
      em_array *starts[3];
      for (int i = 0; i < 3; i++)
        starts[i] = idx_scalar(i == 1 ? EM_S64 : EM_S32, cases[k].start[i]);
      em_array *d = NULL;
      CHECK(em_put_slice_dynamic(&d, a.a, u.a, starts) == EM_OK,
            "put_slice_dynamic: %s", em_last_error());
      snprintf(what, sizeof what, "put_slice_dynamic %s case %d view %d", dn(t), k, view);
      EXACT(what, d, &w);
      em_array_release(o);
      em_array_release(d);
      for (int i = 0; i < 3; i++) em_array_release(starts[i]);
      h_free(&w);
      ah_free(&a);
      ah_free(&u);
    }
  /* rank 0: the update replaces the value */
  {
    ah a = mk(t, 0, NULL), u = mk(t, 0, NULL);
    em_array *o = NULL, *d = NULL;
    MUST(em_put_slice(&o, a.a, u.a, NULL), o);
    MUST(em_put_slice_dynamic(&d, a.a, u.a, NULL), d);
    EXACT("put_slice rank 0", o, &u.h);
    EXACT("put_slice_dynamic rank 0", d, &u.h);
    em_array_release(o);
    em_array_release(d);
    ah_free(&a);
    ah_free(&u);
  }
}

/* ---- concatenate / stack ----------------------------------------------- */

static host h_concat(const host *const *xs, int n, int axis) {
  int64_t sh[EM_MAX_NDIM], idx[EM_MAX_NDIM];
  memcpy(sh, xs[0]->sh, sizeof sh);
  sh[axis] = 0;
  for (int i = 0; i < n; i++) sh[axis] += xs[i]->sh[axis];
  host o = h_new(xs[0]->t, xs[0]->nd, sh);
  for (int64_t f = 0; f < o.n; f++) {
    unflat(f, o.nd, o.sh, idx);
    int k = 0;
    while (idx[axis] >= xs[k]->sh[axis]) idx[axis] -= xs[k++]->sh[axis];
    o.v[f] = xs[k]->v[flat(o.nd, xs[k]->sh, idx)];
  }
  return o;
}

static void test_concat_stack(em_dtype t) {
  char what[96];
  for (int axis = -1; axis < 3; axis++)
    for (int view = 0; view < 2; view++) {
      int ax = axis < 0 ? 2 : axis;
      int64_t s0[3] = {2, 3, 4}, s1[3] = {2, 3, 4}, s2[3] = {2, 3, 4};
      s0[ax] = 3;
      s1[ax] = 0;
      s2[ax] = 5;
      ah a = mkv(t, 3, s0, view ? 1 : 0), b = mk(t, 3, s1), c = mkv(t, 3, s2, view ? 5 : 0);
      em_array *xs[3] = {a.a, b.a, c.a};
      const host *hs[3] = {&a.h, &b.h, &c.h};
      em_array *o = NULL;
      CHECK(em_concatenate(&o, xs, 3, axis) == EM_OK, "concatenate: %s", em_last_error());
      host w = h_concat(hs, 3, ax);
      snprintf(what, sizeof what, "concatenate %s axis %d view %d", dn(t), axis, view);
      EXACT(what, o, &w);
      em_array_release(o);
      h_free(&w);
      /* n = 1 */
      MUST(em_concatenate(&o, xs, 1, axis), o);
      EXACT("concatenate one array", o, &a.h);
      em_array_release(o);
      ah_free(&a);
      ah_free(&b);
      ah_free(&c);
    }
  /* stack: new axis at 0, 1, -1; scalars stack into a vector */
  for (int axis = -1; axis < 3; axis++)
    for (int view = 0; view < 2; view++) {
      int64_t s[2] = {3, 4};
      ah a = mkv(t, 2, s, view ? 2 : 0), b = mk(t, 2, s), c = mkv(t, 2, s, view ? 4 : 0);
      em_array *xs[3] = {a.a, b.a, c.a};
      em_array *o = NULL;
      CHECK(em_stack(&o, xs, 3, axis) == EM_OK, "stack: %s", em_last_error());
      int ax = axis < 0 ? 2 : axis;
      int64_t ns[3];
      for (int d = 0, q = 0; d < 3; d++) ns[d] = d == ax ? 1 : s[q++];
      host ra = h_reshape(&a.h, 3, ns), rb = h_reshape(&b.h, 3, ns), rc = h_reshape(&c.h, 3, ns);
      const host *hs[3] = {&ra, &rb, &rc};
      host w = h_concat(hs, 3, ax);
      snprintf(what, sizeof what, "stack %s axis %d view %d", dn(t), axis, view);
      EXACT(what, o, &w);
      em_array_release(o);
      h_free(&w);
      h_free(&ra);
      h_free(&rb);
      h_free(&rc);
      ah_free(&a);
      ah_free(&b);
      ah_free(&c);
    }
  {
    ah a = mk(t, 0, NULL), b = mk(t, 0, NULL);
    em_array *xs[2] = {a.a, b.a}, *o = NULL;
    MUST(em_stack(&o, xs, 2, 0), o);
    host w = h_new(t, 1, (int64_t[]){2});
    w.v[0] = a.h.v[0];
    w.v[1] = b.h.v[0];
    EXACT("stack scalars", o, &w);
    em_array_release(o);
    h_free(&w);
    ah_free(&a);
    ah_free(&b);
  }
  /* large */
  if (t == EM_S32 || t == EM_C128) {
    int64_t s[2] = {300, 600};
    ah a = mk(t, 2, s), b = mk(t, 2, s);
    em_array *xs[2] = {a.a, b.a}, *o = NULL;
    MUST(em_concatenate(&o, xs, 2, 1), o);
    const host *hs[2] = {&a.h, &b.h};
    host w = h_concat(hs, 2, 1);
    EXACT("concatenate large", o, &w);
    em_array_release(o);
    h_free(&w);
    ah_free(&a);
    ah_free(&b);
  }
}

/* ---- select / clip ------------------------------------------------------ */

static bool truthy(em_dtype t, tv v) {
  if (dt_int(t)) return v.i != 0;
  return v.re != 0 || v.im != 0 || isnan(v.re) || isnan(v.im);
}

static void fill_pred(host *h, const void *ctx) {
  (void)ctx;
  for (int64_t i = 0; i < h->n; i++) {
    double r = rng_unit();
    if (dt_int(h->t)) h->v[i] = r < 0.5 ? tv_i(0) : rnd_bits(h->t);
    else if (r < 0.4) h->v[i] = tv_c(0, 0);
    else if (r < 0.5) h->v[i] = tv_c(-0.0, 0);
    else if (r < 0.6) h->v[i] = quant(h->t, tv_c(NAN, 0));
    else if (r < 0.7 && dt_cpx(h->t)) h->v[i] = tv_c(0, 1);
    else h->v[i] = rnd_tv(h->t, -3, 3);
  }
}

static void test_select(void) {
  const em_dtype preds[] = {EM_U8, EM_S32, EM_F32, EM_F16, EM_U64, EM_C64};
  char what[96];
  for (int pi = 0; pi < 6; pi++)
    for (int bi = 0; bi < N_SHAPE_DTYPES; bi++) {
      em_dtype pt = preds[pi], t = SHAPE_DTYPES[bi];
      struct {
        int pnd;
        int64_t ps[2];
        int tnd;
        int64_t ts[2];
        int fnd;
        int64_t fs[2];
        int view;
      } cases[] = {
          {2, {4, 5}, 2, {4, 5}, 2, {4, 5}, 0},
          {0, {0}, 2, {4, 5}, 2, {4, 5}, 0},
          {2, {4, 5}, 1, {5}, 0, {0}, 0},
          {2, {4, 1}, 2, {1, 5}, 2, {4, 5}, 0},
          {2, {4, 5}, 2, {4, 5}, 2, {4, 5}, 1},
          {2, {0, 5}, 2, {0, 5}, 1, {5}, 0},
      };
      for (int k = 0; k < 6; k++) {
        int v = cases[k].view;
        host ph = h_new(pt, cases[k].pnd, cases[k].ps);
        fill_pred(&ph, NULL);
        ah p = ah_of(ph);
        if (v) {
          ah pr = ah_reverse(&p, 1, (int[]){0});
          ah_free(&p);
          p = pr;
        }
        ah a = mkv(t, cases[k].tnd, cases[k].ts, v ? 1 : 0);
        ah b = mkv(t, cases[k].fnd, cases[k].fs, v ? 5 : 0);
        em_array *o = NULL;
        CHECK(em_select(&o, p.a, a.a, b.a) == EM_OK, "select: %s", em_last_error());
        int nd = 0;
        int64_t sh[EM_MAX_NDIM];
        bcast_shape(&a.h, &b.h, &nd, sh);
        host tmp = h_new(t, nd, sh);
        int nd2 = 0;
        int64_t sh2[EM_MAX_NDIM];
        bcast_shape(&p.h, &tmp, &nd2, sh2);
        host P = h_broadcast(&p.h, nd2, sh2, NULL), A = h_broadcast(&a.h, nd2, sh2, NULL),
             B = h_broadcast(&b.h, nd2, sh2, NULL), W = h_new(t, nd2, sh2);
        for (int64_t i = 0; i < W.n; i++) W.v[i] = truthy(pt, P.v[i]) ? A.v[i] : B.v[i];
        snprintf(what, sizeof what, "select pred %s branches %s case %d", dn(pt), dn(t), k);
        EXACT(what, o, &W);
        em_array_release(o);
        host *hs[] = {&tmp, &P, &A, &B, &W};
        for (int i = 0; i < 5; i++) h_free(hs[i]);
        ah_free(&p);
        ah_free(&a);
        ah_free(&b);
      }
    }
  /* large */
  {
    int64_t s[1] = {320000};
    host ph = h_new(EM_U8, 1, s);
    fill_pred(&ph, NULL);
    ah p = ah_of(ph), a = mk(EM_F32, 1, s), b = mk(EM_F32, 0, NULL);
    em_array *o = NULL;
    MUST(em_select(&o, p.a, a.a, b.a), o);
    host W = h_new(EM_F32, 1, s);
    for (int64_t i = 0; i < W.n; i++) W.v[i] = p.h.v[i].i ? a.h.v[i] : b.h.v[0];
    EXACT("select large", o, &W);
    em_array_release(o);
    h_free(&W);
    ah_free(&p);
    ah_free(&a);
    ah_free(&b);
  }
}

static tv clip_ref(em_dtype t, tv x, tv lo, tv hi) {
  /* min(max(x, lo), hi) with Nx min/max semantics */
  if (dt_int(t)) {
    bool u = dt_uns(t);
#define LT_(a, b) (u ? (uint64_t)(a).i < (uint64_t)(b).i : (a).i < (b).i)
    tv m = LT_(x, lo) ? lo : x;
    return LT_(hi, m) ? hi : m;
#undef LT_
  }
  double m = isnan(x.re) || isnan(lo.re) ? NAN : (x.re < lo.re ? lo.re : x.re);
  return tv_f(isnan(m) || isnan(hi.re) ? NAN : (hi.re < m ? hi.re : m));
}

static void test_clip(void) {
  const em_dtype ts[] = {EM_U8, EM_S32, EM_S64, EM_U64, EM_F16, EM_BF16, EM_F32, EM_F64};
  for (int k = 0; k < 8; k++) {
    em_dtype t = ts[k];
    for (int view = 0; view < 2; view++) {
      int64_t s[2] = {6, 7}, s7[1] = {7};
      ah x = mkv(t, 2, s, view ? 1 : 0);
      host lh = h_new(t, 0, NULL), hh = h_new(t, 1, s7);
      lh.v[0] = dt_int(t) ? rnd_bits(t) : rnd_tv(t, -50, 0);
      for (int i = 0; i < 7; i++)
        hh.v[i] = dt_int(t) ? rnd_bits(t) : rnd_tv(t, -10, 60); /* some hi < lo */
      ah lo = ah_of(lh), hi = ah_of(hh);
      em_array *o = NULL;
      CHECK(em_clip(&o, x.a, lo.a, hi.a) == EM_OK, "clip: %s", em_last_error());
      host W = h_new(t, 2, s);
      for (int64_t i = 0; i < W.n; i++) W.v[i] = clip_ref(t, x.h.v[i], lo.h.v[0], hh.v[i % 7]);
      char what[64];
      snprintf(what, sizeof what, "clip %s view %d", dn(t), view);
      EXACT(what, o, &W);
      em_array_release(o);
      h_free(&W);
      ah_free(&x);
      ah_free(&lo);
      ah_free(&hi);
    }
  }
  /* written out, with NaN */
  {
    const double v[] = {-5, 0.5, 7, NAN};
    const double lo = 0, hi = 1;
    int64_t s[1] = {4};
    em_array *a = NULL, *l = NULL, *h = NULL, *o = NULL;
    MUST(em_array_from_data(&a, EM_F64, 1, s, v, sizeof v, em_cpu()), a);
    MUST(em_array_from_data(&l, EM_F64, 0, NULL, &lo, 8, em_cpu()), l);
    MUST(em_array_from_data(&h, EM_F64, 0, NULL, &hi, 8, em_cpu()), h);
    MUST(em_clip(&o, a, l, h), o);
    const double *r = em_array_data(o);
    CHECK(r && r[0] == 0 && r[1] == 0.5 && r[2] == 1 && isnan(r[3]), "clip written out");
    em_array *all[] = {a, l, h, o};
    for (int i = 0; i < 4; i++) em_array_release(all[i]);
  }
}

/* ---- host access to views --------------------------------------------- */

static void test_data_access(void) {
  int64_t s[2] = {3, 4};
  float v[12];
  for (int i = 0; i < 12; i++) v[i] = (float)i;
  em_array *a = NULL;
  MUST(em_array_from_data(&a, EM_F32, 2, s, v, sizeof v, em_cpu()), a);
  /* transpose */
  {
    em_array *t = NULL;
    MUST(em_transpose(&t, a, NULL), t);
    CHECK(em_eval(&t, 1) == EM_OK && em_array_is_evaluated(t), "eval view");
    const float *p = em_array_data(t);
    float want[12];
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 3; j++) want[i * 3 + j] = v[j * 4 + i];
    CHECK(p && memcmp(p, want, sizeof want) == 0, "em_array_data of a transposed view");
    const float *p2 = em_array_data(t);
    CHECK(p2 == p, "em_array_data twice gives the same bytes");
    float back[12];
    CHECK(em_array_to_host(t, back, sizeof back) == EM_OK &&
              memcmp(back, want, sizeof want) == 0,
          "to_host of a transposed view");
    /* wrong sizes */
    em_status st = em_array_to_host(t, back, sizeof back - 4);
    CHECK_ERR(st, NULL, "to_host", "44", "48");
    st = em_array_to_host(t, back, sizeof back + 4);
    CHECK_ERR(st, NULL, "to_host", "52");
    st = em_array_to_host(NULL, back, 4);
    CHECK_ERR(st, NULL, "to_host", "NULL");
    st = em_array_to_host(t, NULL, sizeof back);
    CHECK_ERR(st, NULL, "to_host", "NULL");
    CHECK(em_array_data(NULL) == NULL && strstr(em_last_error(), "[array_data]"),
          "em_array_data(NULL)");
    em_array_release(t);
  }
  /* strided slice, reverse, broadcast */
  {
    em_array *sl = NULL, *rv = NULL, *bc = NULL, *row = NULL;
    MUST(em_slice(&sl, a, (int64_t[]){0, 1}, (int64_t[]){3, 3}, (int64_t[]){2, 2}), sl);
    MUST(em_reverse(&rv, a, 1, (int[]){1}), rv);
    MUST(em_slice(&row, a, (int64_t[]){1, 0}, (int64_t[]){1, 4}, NULL), row);
    MUST(em_broadcast(&bc, row, 3, (int64_t[]){2, 3, 4}, (int[]){0, 2}), bc);
    em_array *all[3] = {sl, rv, bc};
    CHECK(em_eval(all, 3) == EM_OK, "eval views");
    const float *ps = em_array_data(sl), *pr = em_array_data(rv), *pb = em_array_data(bc);
    CHECK(ps && em_array_size(sl) == 4 && ps[0] == 1 && ps[1] == 3 && ps[2] == 9 &&
              ps[3] == 11,
          "em_array_data of a strided slice");
    bool ok = pr != NULL;
    for (int i = 0; ok && i < 3; i++)
      for (int j = 0; j < 4; j++) ok &= pr[i * 4 + j] == v[i * 4 + 3 - j];
    CHECK(ok, "em_array_data of a reversed view");
    ok = pb != NULL;
    for (int i = 0; ok && i < 24; i++) ok &= pb[i] == v[4 + i % 4];
    CHECK(ok, "em_array_data of a broadcast view");
    em_array_release(sl);
    em_array_release(rv);
    em_array_release(bc);
    em_array_release(row);
  }
  /* views of a lazy array: evaluation happens on em_array_data */
  {
    em_array *e = NULL, *t = NULL;
    MUST(em_exp(&e, a), e);
    MUST(em_transpose(&t, e, NULL), t);
    CHECK(!em_array_is_evaluated(t) && !em_array_is_evaluated(e), "lazy");
    const float *p = em_array_data(t);
    bool ok = p != NULL;
    for (int i = 0; ok && i < 4; i++)
      for (int j = 0; j < 3; j++)
        ok &= fabs(p[i * 3 + j] - exp(v[j * 4 + i])) <= 1e-5 * exp(v[j * 4 + i]);
    CHECK(ok, "em_array_data of a view of a lazy array");
    CHECK(em_array_is_evaluated(t), "evaluated by em_array_data");
    em_array_release(e);
    em_array_release(t);
  }
  em_array_release(a);
}

/* ---- random compositions of views ------------------------------------ */

/* Applies 3..9 random view ops (transpose, strided slice, reverse,
 * broadcast, reshape, squeeze) and then reads the result through an
 * elementwise op, a reduction, a copy and em_array_data. */
static void test_view_soup(void) {
  const em_dtype ts[] = {EM_U8, EM_F16, EM_S32, EM_F64, EM_C128};
  for (int trial = 0; trial < 300; trial++) {
    em_dtype t = ts[trial % 5];
    int64_t s0[3] = {rng_int(1, 5), rng_int(1, 6), rng_int(1, 4)};
    ah x = mk(t, 3, s0);
    int steps = (int)rng_int(3, 9);
    for (int k = 0; k < steps; k++) {
      ah y;
      int nd = x.h.nd, op = (int)rng_int(0, 5);
      if (nd == 0) op = 3;
      switch (op) {
        case 0: { /* random permutation */
          int perm[EM_MAX_NDIM];
          for (int i = 0; i < nd; i++) perm[i] = i;
          for (int i = nd - 1; i > 0; i--) {
            int j = (int)rng_int(0, i), tmp = perm[i];
            perm[i] = perm[j];
            perm[j] = tmp;
          }
          y = ah_transpose(&x, perm);
          break;
        }
        case 1: { /* strided slice with a random (possibly clamped) start */
          int64_t st[EM_MAX_NDIM], len[EM_MAX_NDIM], str[EM_MAX_NDIM];
          for (int i = 0; i < nd; i++) {
            len[i] = rng_int(x.h.sh[i] > 0 ? 1 : 0, x.h.sh[i]);
            st[i] = rng_int(-2, x.h.sh[i] + 2);
            str[i] = rng_int(1, 3);
          }
          y = ah_slice(&x, st, len, str);
          break;
        }
        case 2: { /* reverse a random subset */
          int ax[EM_MAX_NDIM], n = 0;
          for (int i = 0; i < nd; i++)
            if (rng_unit() < 0.6) ax[n++] = i;
          y = ah_reverse(&x, n, ax);
          break;
        }
        case 3: { /* broadcast: a new leading axis, size-1 axes expanded */
          if (nd >= 5) {
            y = ah_transpose(&x, NULL);
            break;
          }
          int64_t sh[EM_MAX_NDIM];
          sh[0] = rng_int(1, 3);
          for (int i = 0; i < nd; i++) sh[i + 1] = x.h.sh[i] == 1 ? rng_int(1, 3) : x.h.sh[i];
          y = ah_broadcast(&x, nd + 1, sh, NULL);
          break;
        }
        case 4: { /* reshape: merge the first two axes or split the first */
          int64_t sh[EM_MAX_NDIM];
          int m = 0;
          if (nd >= 2) {
            sh[m++] = x.h.sh[0] * x.h.sh[1];
            for (int i = 2; i < nd; i++) sh[m++] = x.h.sh[i];
          } else {
            sh[m++] = 1;
            for (int i = 0; i < nd; i++) sh[m++] = x.h.sh[i];
          }
          em_array *r = NULL;
          MUST(em_reshape(&r, x.a, m, sh), r);
          y = (ah){r, h_reshape(&x.h, m, sh)};
          break;
        }
        default: { /* squeeze every size-1 axis */
          int64_t sh[EM_MAX_NDIM];
          int m = 0;
          for (int i = 0; i < nd; i++)
            if (x.h.sh[i] != 1) sh[m++] = x.h.sh[i];
          em_array *r = NULL;
          MUST(em_squeeze(&r, x.a, 0, NULL), r);
          y = (ah){r, h_reshape(&x.h, m, sh)};
          break;
        }
      }
      ah_free(&x);
      x = y;
    }
    char what[64];
    snprintf(what, sizeof what, "view soup %d (%s)", trial, dn(t));
    /* read it as is (em_array_data on the view), through a copy, and
     * through an elementwise op and a reduction */
    if (trial % 2) EXACT(what, x.a, &x.h);
    em_array *c = NULL, *neg = NULL, *sum = NULL;
    MUST(em_copy(&c, x.a), c);
    EXACT("view soup copy", c, &x.h);
    MUST(em_negate(&neg, x.a), neg);
    host hn = h_copy(&x.h);
    for (int64_t i = 0; i < hn.n; i++) {
      tv v = hn.v[i];
      hn.v[i] = dt_int(t) ? tv_i(wrap_int(t, 0 - (uint64_t)v.i)) : tv_c(-v.re, -v.im);
    }
    EXACT("view soup negate", neg, &hn);
    if (x.h.nd > 0 && dt_int(t)) {
      MUST(em_sum(&sum, x.a, 1, (int[]){0}, false), sum);
      int64_t osh[EM_MAX_NDIM], idx[EM_MAX_NDIM];
      for (int i = 1; i < x.h.nd; i++) osh[i - 1] = x.h.sh[i];
      host hs = h_new(t, x.h.nd - 1, osh);
      for (int64_t f = 0; f < x.h.n; f++) {
        unflat(f, x.h.nd, x.h.sh, idx);
        int64_t j = flat(x.h.nd - 1, osh, idx + 1);
        hs.v[j].i = wrap_int(t, (uint64_t)hs.v[j].i + (uint64_t)x.h.v[f].i);
      }
      EXACT("view soup sum over axis 0", sum, &hs);
      h_free(&hs);
    }
    if (!(trial % 2)) EXACT(what, x.a, &x.h);
    em_array_release(c);
    em_array_release(neg);
    em_array_release(sum);
    h_free(&hn);
    ah_free(&x);
  }
}

/* Every kind of op at rank EM_MAX_NDIM. */
static void test_max_rank(void) {
  int64_t s[EM_MAX_NDIM], s1[EM_MAX_NDIM];
  for (int i = 0; i < EM_MAX_NDIM; i++) {
    s[i] = (i % 3 == 0) ? 2 : (i % 3 == 1 ? 1 : 3);
    s1[i] = i == EM_MAX_NDIM - 1 ? s[i] : 1;
  }
  ah x = mk(EM_S32, EM_MAX_NDIM, s), y = mk(EM_S32, EM_MAX_NDIM, s1);
  /* transpose (reversed axes) then add a broadcast operand */
  ah t = ah_transpose(&x, NULL);
  em_array *o = NULL;
  MUST(em_add(&o, t.a, y.a), o);
  host bt = h_broadcast(&y.h, EM_MAX_NDIM, t.h.sh, NULL);
  host w = h_copy(&t.h);
  for (int64_t i = 0; i < w.n; i++) w.v[i] = tv_i(wrap_int(EM_S32, (uint64_t)t.h.v[i].i + (uint64_t)bt.v[i].i));
  EXACT("rank 16 transpose + broadcast add", o, &w);
  em_array_release(o);
  h_free(&w);
  h_free(&bt);
  /* reduce non-adjacent axes, keep_axes */
  MUST(em_sum(&o, x.a, 3, (int[]){0, 5, 15}, true), o);
  {
    int64_t osh[EM_MAX_NDIM], idx[EM_MAX_NDIM];
    for (int i = 0; i < EM_MAX_NDIM; i++) osh[i] = (i == 0 || i == 5 || i == 15) ? 1 : s[i];
    host r = h_new(EM_S32, EM_MAX_NDIM, osh);
    for (int64_t f = 0; f < x.h.n; f++) {
      unflat(f, EM_MAX_NDIM, s, idx);
      idx[0] = idx[5] = idx[15] = 0;
      int64_t j = flat(EM_MAX_NDIM, osh, idx);
      r.v[j].i = wrap_int(EM_S32, (uint64_t)r.v[j].i + (uint64_t)x.h.v[f].i);
    }
    EXACT("rank 16 sum over axes 0,5,15", o, &r);
    h_free(&r);
  }
  em_array_release(o);
  /* slice with strides, reverse, pad, concatenate, argmax */
  int64_t st[EM_MAX_NDIM] = {0}, len[EM_MAX_NDIM], str[EM_MAX_NDIM], lo[EM_MAX_NDIM] = {0},
          hi[EM_MAX_NDIM] = {0};
  int ax[EM_MAX_NDIM];
  for (int i = 0; i < EM_MAX_NDIM; i++) {
    len[i] = s[i];
    str[i] = s[i] == 3 ? 2 : 1;
    st[i] = s[i] == 3 ? 1 : 0;
    ax[i] = i;
  }
  lo[2] = 1;
  hi[15] = -1;
  for (int i = 0; i < EM_MAX_NDIM; i++) len[i] = s[i] == 3 ? 2 : s[i];
  ah sl = ah_slice(&x, st, len, str);
  EXACT("rank 16 strided slice", sl.a, &sl.h);
  ah rv = ah_reverse(&sl, EM_MAX_NDIM, ax);
  EXACT("rank 16 reverse", rv.a, &rv.h);
  ah pv = mk(EM_S32, 0, NULL);
  MUST(em_pad(&o, rv.a, pv.a, lo, hi, NULL), o);
  host wp = h_pad(&rv.h, pv.h.v[0], lo, hi, NULL);
  EXACT("rank 16 pad", o, &wp);
  em_array_release(o);
  h_free(&wp);
  em_array *xs[2] = {x.a, x.a};
  MUST(em_concatenate(&o, xs, 2, 7), o);
  const host *hs[2] = {&x.h, &x.h};
  host wc = h_concat(hs, 2, 7);
  EXACT("rank 16 concatenate", o, &wc);
  em_array_release(o);
  h_free(&wc);
  ah_free(&pv);
  ah_free(&rv);
  ah_free(&sl);
  ah_free(&t);
  ah_free(&x);
  ah_free(&y);
}

int main(void) {
  rng_seed(21);
  test_max_rank();
  test_view_soup();
  for (int i = 0; i < N_SHAPE_DTYPES; i++) {
    em_dtype t = SHAPE_DTYPES[i];
    test_reshape_family(t);
    test_pad(t);
    test_slice(t);
    test_put_slice(t);
    test_concat_stack(t);
  }
  test_select();
  test_clip();
  test_data_access();
  return TEST_SUMMARY();
}
