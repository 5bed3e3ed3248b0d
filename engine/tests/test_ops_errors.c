/* test_ops_errors.c — every op with bad input: the right em_status, *out
 * set to NULL (it starts as a non-NULL sentinel), a message that starts
 * with "[op]" and names the shapes / dtypes / axes involved; NULL pointers,
 * mismatched dtypes, bad axes, shape overflow ([2^40, 2^40]), rank above
 * EM_MAX_NDIM. Nothing may crash or leak (run under ASan too). */
#include "ref.h"

#define BIG ((int64_t)1 << 40)

static em_array *arr(em_dtype t, int nd, const int64_t *sh) {
  host h = h_new(t, nd, sh);
  h_rand(&h, 1, 3);
  em_array *a = h_array(&h);
  h_free(&h);
  return a;
}
static em_array *scal(em_dtype t, double v) {
  em_array *a = NULL;
  return MUST(em_full_scalar(&a, t, v, em_cpu()), a);
}
/* A lazy [n...] view of a scalar: huge shapes without memory. */
static em_array *huge_t(em_dtype t, int nd, const int64_t *sh) {
  em_array *s = scal(t, 1), *b = NULL;
  MUST(em_broadcast(&b, s, nd, sh, NULL), b);
  em_array_release(s);
  return b;
}
static em_array *huge(int nd, const int64_t *sh) { return huge_t(EM_F32, nd, sh); }

/* Runs a call with *out preset to the sentinel. */
#define TRY_ERR(call, prefix, ...)                        \
  do {                                                    \
    em_array *o = SENTINEL;                               \
    em_status st = (call);                                \
    CHECK_ERR(st, o, prefix, __VA_ARGS__);                \
    if (o != SENTINEL) em_array_release(o);               \
  } while (0)
#define O (&o)

static int64_t s23[2] = {2, 3}, s4[1] = {4}, s33[2] = {3, 3}, s32_[2] = {3, 2};

static void test_creation_errors(void) {
  float buf[6] = {0};
  em_device cuda = {EM_DEVICE_CUDA, 0}, cpu7 = {EM_DEVICE_CPU, 7};
  int64_t neg[2] = {2, -3}, big[2] = {BIG, BIG}, r17[17];
  for (int i = 0; i < 17; i++) r17[i] = 1;
  em_status st = em_array_from_data(NULL, EM_F32, 2, s23, buf, 24, em_cpu());
  CHECK_ERR(st, NULL, "from_data", "out");
  TRY_ERR(em_array_from_data(O, EM_F32, 2, s23, buf, 20, em_cpu()), "from_data", "20", "[2,3]", "f32");
  TRY_ERR(em_array_from_data(O, EM_F32, 2, s23, NULL, 24, em_cpu()), "from_data", "[2,3]");
  TRY_ERR(em_array_from_data(O, EM_F32, 2, neg, buf, 24, em_cpu()), "from_data", "negative", "-3");
  TRY_ERR(em_array_from_data(O, EM_F32, 17, r17, buf, 4, em_cpu()), "from_data", "17");
  TRY_ERR(em_array_from_data(O, EM_F32, -1, s23, buf, 4, em_cpu()), "from_data", "-1");
  TRY_ERR(em_array_from_data(O, EM_F32, 2, NULL, buf, 24, em_cpu()), "from_data", "shape");
  TRY_ERR(em_array_from_data(O, EM_DTYPE_COUNT, 2, s23, buf, 24, em_cpu()), "from_data", "dtype");
  TRY_ERR(em_array_from_data(O, EM_F32, 2, s23, buf, 24, cuda), "from_data", "cuda");
  TRY_ERR(em_array_from_data(O, EM_F32, 2, s23, buf, 24, cpu7), "from_data", "7");
  TRY_ERR(em_array_from_data(O, EM_F32, 2, big, buf, 24, em_cpu()), "from_data", "overflow");
  float one = 1;
  CHECK_ERR(em_full(NULL, EM_F32, 0, NULL, &one, em_cpu()), NULL, "full", "out");
  TRY_ERR(em_full(O, EM_F32, 2, s23, NULL, em_cpu()), "full", "value");
  TRY_ERR(em_full(O, EM_F32, 2, big, &one, em_cpu()), "full", "overflow");
  TRY_ERR(em_full(O, EM_F32, 17, r17, &one, em_cpu()), "full", "17");
  TRY_ERR(em_full(O, EM_F32, 2, neg, &one, em_cpu()), "full", "negative");
  TRY_ERR(em_full(O, EM_DTYPE_COUNT, 0, NULL, &one, em_cpu()), "full", "dtype");
  TRY_ERR(em_full(O, EM_F32, 0, NULL, &one, cuda), "full", "cuda");
  TRY_ERR(em_full_scalar(O, EM_DTYPE_COUNT, 1, em_cpu()), "full", "dtype");
  TRY_ERR(em_full_scalar(O, (em_dtype)-1, 1, em_cpu()), "full", "dtype");
  TRY_ERR(em_iota(O, EM_S32, 2, s23, 2, em_cpu()), "iota", "axis 2", "rank 2");
  TRY_ERR(em_iota(O, EM_S32, 2, s23, -3, em_cpu()), "iota", "-3");
  TRY_ERR(em_iota(O, EM_S32, 0, NULL, 0, em_cpu()), "iota", "axis 0", "rank 0");
  TRY_ERR(em_iota(O, EM_S32, 2, big, 0, em_cpu()), "iota", "overflow");
  TRY_ERR(em_iota(O, EM_S32, 17, r17, 0, em_cpu()), "iota", "17");
  TRY_ERR(em_eye(O, EM_F32, 1, s4, em_cpu()), "eye", "rank");
  TRY_ERR(em_eye(O, EM_F32, 2, big, em_cpu()), "eye", "overflow");
  TRY_ERR(em_eye(O, EM_F32, 17, r17, em_cpu()), "eye", "17");
  em_array *a = arr(EM_F32, 2, s23);
  TRY_ERR(em_as_type(O, NULL, EM_F32), "as_type", "NULL");
  TRY_ERR(em_as_type(O, a, EM_DTYPE_COUNT), "as_type", "dtype");
  CHECK_ERR(em_as_type(NULL, a, EM_S32), NULL, "as_type", "out");
  TRY_ERR(em_bitcast(O, a, EM_F64), "bitcast", "f32", "f64");
  TRY_ERR(em_bitcast(O, a, EM_U8), "bitcast", "f32", "u8");
  TRY_ERR(em_bitcast(O, NULL, EM_U8), "bitcast", "NULL");
  TRY_ERR(em_bitcast(O, a, EM_DTYPE_COUNT), "bitcast", "dtype");
  TRY_ERR(em_copy(O, NULL), "copy", "NULL");
  CHECK_ERR(em_copy(NULL, a), NULL, "copy", "out");
  em_array_release(a);
}

static void test_shape_errors(void) {
  em_array *a = arr(EM_F32, 2, s23), *i = arr(EM_S32, 2, s23), *v4 = arr(EM_F32, 1, s4);
  em_array *sf = scal(EM_F32, 0), *si = scal(EM_S32, 0);
  int64_t r17[17], big[2] = {BIG, BIG};
  for (int k = 0; k < 17; k++) r17[k] = 1;
  /* reshape */
  TRY_ERR(em_reshape(O, a, 1, s4), "reshape", "[2,3]", "[4]");
  TRY_ERR(em_reshape(O, a, 17, r17), "reshape", "17");
  TRY_ERR(em_reshape(O, a, 2, big), "reshape", "overflow");
  TRY_ERR(em_reshape(O, a, 2, (int64_t[]){-2, -3}), "reshape", "negative");
  TRY_ERR(em_reshape(O, a, 2, NULL), "reshape", "shape");
  TRY_ERR(em_reshape(O, NULL, 1, s4), "reshape", "NULL");
  /* squeeze */
  TRY_ERR(em_squeeze(O, a, 1, (int[]){1}), "squeeze", "axis 1", "[2,3]");
  TRY_ERR(em_squeeze(O, a, 1, (int[]){5}), "squeeze", "axis 5", "rank 2");
  TRY_ERR(em_squeeze(O, NULL, 0, NULL), "squeeze", "NULL");
  /* broadcast */
  TRY_ERR(em_broadcast(O, a, 1, s4, NULL), "broadcast", "[2,3]", "[4]");
  TRY_ERR(em_broadcast(O, a, 2, (int64_t[]){2, 4}, NULL), "broadcast", "[2,3]", "[2,4]");
  TRY_ERR(em_broadcast(O, a, 2, s32_, (int[]){1, 0}), "broadcast", "[2,3]", "[3,2]");
  TRY_ERR(em_broadcast(O, a, 3, (int64_t[]){2, 3, 4}, (int[]){0, 3}), "broadcast", "[2,3]");
  TRY_ERR(em_broadcast(O, sf, 17, r17, NULL), "broadcast", "17");
  TRY_ERR(em_broadcast(O, sf, 2, big, NULL), "broadcast", "overflow");
  TRY_ERR(em_broadcast(O, NULL, 1, s4, NULL), "broadcast", "NULL");
  /* transpose */
  TRY_ERR(em_transpose(O, a, (int[]){0, 0}), "transpose", "[2,3]");
  TRY_ERR(em_transpose(O, a, (int[]){0, 2}), "transpose", "[2,3]");
  TRY_ERR(em_transpose(O, NULL, NULL), "transpose", "NULL");
  /* pad */
  int64_t z2[2] = {0, 0};
  TRY_ERR(em_pad(O, a, si, z2, z2, NULL), "pad", "f32");
  TRY_ERR(em_pad(O, a, v4, z2, z2, NULL), "pad", "0-d");
  TRY_ERR(em_pad(O, a, sf, (int64_t[]){-2, 0}, (int64_t[]){-1, 0}, NULL), "pad", "axis 0", "[2,3]");
  TRY_ERR(em_pad(O, a, sf, z2, z2, (int64_t[]){0, -1}), "pad", "axis 1");
  TRY_ERR(em_pad(O, a, sf, NULL, z2, NULL), "pad", "NULL");
  TRY_ERR(em_pad(O, a, NULL, z2, z2, NULL), "pad", "NULL");
  {
    em_array *h = huge(1, (int64_t[]){(int64_t)1 << 31});
    TRY_ERR(em_pad(O, h, sf, (int64_t[]){0}, (int64_t[]){0}, (int64_t[]){(int64_t)1 << 31}),
            "pad", "overflow");
    TRY_ERR(em_pad(O, h, sf, (int64_t[]){INT64_MAX / 2}, (int64_t[]){0}, NULL), "pad", "range");
    em_array_release(h);
  }
  /* reverse */
  TRY_ERR(em_reverse(O, a, 1, (int[]){2}), "reverse", "axis 2", "rank 2");
  TRY_ERR(em_reverse(O, a, 1, NULL), "reverse", "axes");
  TRY_ERR(em_reverse(O, NULL, 0, NULL), "reverse", "NULL");
  /* slice */
  int64_t st0[2] = {0, 0};
  TRY_ERR(em_slice(O, a, st0, (int64_t[]){2, 5}, NULL), "slice", "axis 1", "[2,3]");
  TRY_ERR(em_slice(O, a, st0, (int64_t[]){2, 2}, (int64_t[]){1, 0}), "slice", "stride 0");
  TRY_ERR(em_slice(O, a, st0, (int64_t[]){-1, 2}, NULL), "slice", "-1");
  TRY_ERR(em_slice(O, a, NULL, (int64_t[]){1, 1}, NULL), "slice", "NULL");
  TRY_ERR(em_slice(O, NULL, st0, st0, NULL), "slice", "NULL");
  /* slice_dynamic (messages say "slice") */
  {
    em_array *z = scal(EM_S32, 0), *zf = scal(EM_F32, 0), *vec = arr(EM_S32, 1, s4);
    em_array *ok[2] = {z, z}, *flt[2] = {z, zf}, *vv[2] = {vec, z}, *nul[2] = {z, NULL};
    int64_t len[2] = {1, 2};
    TRY_ERR(em_slice_dynamic(O, a, flt, len, NULL), "slice", "start 1", "f32");
    TRY_ERR(em_slice_dynamic(O, a, vv, len, NULL), "slice", "start 0", "rank 1");
    TRY_ERR(em_slice_dynamic(O, a, nul, len, NULL), "slice", "start 1");
    TRY_ERR(em_slice_dynamic(O, a, NULL, len, NULL), "slice", "NULL");
    TRY_ERR(em_slice_dynamic(O, a, ok, (int64_t[]){3, 1}, NULL), "slice", "axis 0", "[2,3]");
    TRY_ERR(em_slice_dynamic(O, a, ok, len, (int64_t[]){0, 1}), "slice", "stride 0");
    TRY_ERR(em_slice_dynamic(O, a, ok, NULL, NULL), "slice", "NULL");
    /* put_slice / put_slice_dynamic */
    em_array *u12 = arr(EM_F32, 2, (int64_t[]){1, 2}), *ui = arr(EM_S32, 2, (int64_t[]){1, 2});
    em_array *u33 = arr(EM_F32, 2, s33);
    TRY_ERR(em_put_slice(O, a, ui, st0), "put_slice", "s32", "f32");
    TRY_ERR(em_put_slice(O, a, v4, st0), "put_slice", "[4]", "[2,3]");
    TRY_ERR(em_put_slice(O, a, u33, st0), "put_slice", "[3,3]", "[2,3]");
    TRY_ERR(em_put_slice(O, a, u12, NULL), "put_slice", "NULL");
    TRY_ERR(em_put_slice(O, NULL, u12, st0), "put_slice", "NULL");
    TRY_ERR(em_put_slice(O, a, NULL, st0), "put_slice", "NULL");
    TRY_ERR(em_put_slice_dynamic(O, a, u12, NULL), "put_slice", "NULL");
    TRY_ERR(em_put_slice_dynamic(O, a, u12, flt), "put_slice", "f32");
    TRY_ERR(em_put_slice_dynamic(O, a, u33, ok), "put_slice", "[3,3]");
    em_array *all[] = {z, zf, vec, u12, ui, u33};
    for (int k = 0; k < 6; k++) em_array_release(all[k]);
  }
  /* concatenate / stack */
  {
    em_array *b33 = arr(EM_F32, 2, s33), *b23i = arr(EM_S32, 2, s23), *b32 = arr(EM_F32, 2, s32_);
    em_array *r16 = NULL;
    MUST(em_reshape(&r16, sf, 16, r17), r16);
    em_array *xs[2] = {a, b33}, *xi[2] = {a, b23i}, *xn[2] = {a, NULL}, *ss[2] = {sf, sf};
    em_array *x32[2] = {a, b32}, *xr[2] = {a, v4}, *x16[2] = {r16, r16};
    TRY_ERR(em_concatenate(O, xs, 2, 1), "concatenate", "[3,3]", "[2,3]");
    TRY_ERR(em_concatenate(O, xi, 2, 0), "concatenate", "s32", "f32");
    TRY_ERR(em_concatenate(O, xs, 2, 2), "concatenate", "axis 2");
    TRY_ERR(em_concatenate(O, xs, 0, 0), "concatenate", "at least one");
    TRY_ERR(em_concatenate(O, NULL, 2, 0), "concatenate", "at least one");
    TRY_ERR(em_concatenate(O, xn, 2, 0), "concatenate", "NULL");
    TRY_ERR(em_concatenate(O, ss, 2, 0), "concatenate", "scalars");
    TRY_ERR(em_concatenate(O, xr, 2, 0), "concatenate", "[4]", "[2,3]");
    TRY_ERR(em_stack(O, x32, 2, 0), "stack", "[3,2]", "[2,3]");
    TRY_ERR(em_stack(O, xi, 2, 0), "stack", "s32", "f32");
    TRY_ERR(em_stack(O, xr, 2, 0), "stack", "rank");
    TRY_ERR(em_stack(O, xs, 2, 3), "stack", "axis 3", "rank 3");
    TRY_ERR(em_stack(O, x16, 2, 0), "stack", "16");
    TRY_ERR(em_stack(O, xs, 0, 0), "stack", "at least one");
    TRY_ERR(em_stack(O, xn, 2, 0), "stack", "NULL");
    em_array *all[] = {b33, b23i, b32, r16};
    for (int k = 0; k < 4; k++) em_array_release(all[k]);
  }
  /* select / clip */
  {
    em_array *p = arr(EM_U8, 2, s23), *lo = scal(EM_F32, 0), *loi = scal(EM_S32, 0);
    em_array *c = arr(EM_C64, 2, s23), *c0 = scal(EM_C64, 0);
    TRY_ERR(em_select(O, p, a, i), "select", "f32", "s32");
    TRY_ERR(em_select(O, p, v4, v4), "select", "[2,3]", "[4]");
    TRY_ERR(em_select(O, i, v4, a), "select", "[4]");
    TRY_ERR(em_select(O, NULL, a, a), "select", "NULL");
    TRY_ERR(em_select(O, p, NULL, a), "select", "NULL");
    TRY_ERR(em_clip(O, a, loi, lo), "clip", "f32", "s32");
    TRY_ERR(em_clip(O, a, lo, v4), "clip", "[2,3]", "[4]");
    TRY_ERR(em_clip(O, c, c0, c0), "clip", "c64");
    TRY_ERR(em_clip(O, NULL, lo, lo), "clip", "NULL");
    TRY_ERR(em_clip(O, a, lo, NULL), "clip", "NULL");
    CHECK_ERR(em_clip(NULL, a, lo, lo), NULL, "clip", "out");
    em_array *all[] = {p, lo, loi, c, c0};
    for (int k = 0; k < 5; k++) em_array_release(all[k]);
  }
  em_array *all[] = {a, i, v4, sf, si};
  for (int k = 0; k < 5; k++) em_array_release(all[k]);
}

/* every binary and unary op: NULL operands, NULL out, mismatched dtypes,
 * shapes that do not broadcast, a broadcast result that overflows */
static void test_elementwise_errors(void) {
  em_array *a = arr(EM_F32, 2, s23), *i = arr(EM_S32, 2, s23), *v4 = arr(EM_F32, 1, s4);
  em_array *i4 = arr(EM_S32, 1, s4);
  em_array *h1 = huge(2, (int64_t[]){BIG, 1}), *h2 = huge(2, (int64_t[]){1, BIG});
  em_array *g1 = huge_t(EM_S32, 2, (int64_t[]){BIG, 1}), *g2 = huge_t(EM_S32, 2, (int64_t[]){1, BIG});
  /* int-only ops are checked on s32 operands (on f32 they are undefined) */
#define INT_ONLY_(n) (!strcmp(n, "quotient") || !strncmp(n, "bitwise", 7) || \
                      !strcmp(n, "left_shift") || !strcmp(n, "right_shift"))
#define X(n)                                                                  \
  {                                                                           \
    bool io = INT_ONLY_(#n);                                                  \
    em_array *x = io ? i : a, *y = io ? i4 : v4;                              \
    TRY_ERR(em_##n(O, a, i), #n, "f32", "s32", "[2,3]");                      \
    TRY_ERR(em_##n(O, x, y), #n, "[2,3]", "[4]");                             \
    TRY_ERR(em_##n(O, NULL, x), #n, "NULL");                                  \
    TRY_ERR(em_##n(O, x, NULL), #n, "NULL");                                  \
    CHECK_ERR(em_##n(NULL, x, x), NULL, #n, "out");                           \
    TRY_ERR(em_##n(O, io ? g1 : h1, io ? g2 : h2), #n, "overflow");           \
  }
  EM_BINARY_OPS(X)
#undef X
#define X(n)                                 \
  TRY_ERR(em_##n(O, NULL), #n, "NULL");      \
  CHECK_ERR(em_##n(NULL, a), NULL, #n, "out");
  EM_UNARY_OPS(X)
#undef X
  /* ops Nx does not define: bitwise on floats, ceil on complex, erf on
   * complex, reduce_max on complex */
  em_array *c = arr(EM_C128, 2, s23);
  TRY_ERR(em_bitwise_not(O, a), "bitwise_not", "f32", "[2,3]");
  TRY_ERR(em_count_leading_zeros(O, a), "count_leading_zeros", "f32");
  TRY_ERR(em_population_count(O, c), "population_count", "c128");
  TRY_ERR(em_floor(O, c), "floor", "c128");
  TRY_ERR(em_erf_inv(O, c), "erf_inv", "c128");
  TRY_ERR(em_bitwise_and(O, a, a), "bitwise_and", "f32");
  TRY_ERR(em_remainder(O, c, c), "remainder", "c128");
  TRY_ERR(em_less(O, c, c), "less", "c128");
  TRY_ERR(em_atan2(O, i, i), "atan2", "s32");
  em_array *all[] = {a, i, v4, h1, h2, c, i4, g1, g2};
  for (int k = 0; k < 9; k++) em_array_release(all[k]);
}

typedef em_status (*redfn)(em_array **, em_array *, int, const int *, bool);

static void test_reduce_errors(void) {
  em_array *a = arr(EM_F32, 2, s23), *i = arr(EM_S32, 2, s23), *c = arr(EM_C64, 2, s23);
  em_array *e = arr(EM_F32, 2, (int64_t[]){0, 3}), *v4 = arr(EM_F32, 1, s4);
  const struct {
    const char *n;
    redfn f;
  } reds[] = {{"sum", em_sum}, {"product", em_product}, {"reduce_max", em_reduce_max},
              {"reduce_min", em_reduce_min}, {"all", em_all}, {"any", em_any}};
  for (int k = 0; k < 6; k++) {
    TRY_ERR(reds[k].f(O, a, 1, (int[]){2}, false), reds[k].n, "axis 2", "rank 2");
    TRY_ERR(reds[k].f(O, a, 1, (int[]){-3}, false), reds[k].n, "-3");
    TRY_ERR(reds[k].f(O, a, 2, (int[]){0, -2}, false), reds[k].n, "repeated");
    TRY_ERR(reds[k].f(O, a, 1, NULL, false), reds[k].n, "axes");
    TRY_ERR(reds[k].f(O, a, -1, NULL, false), reds[k].n, "axes");
    TRY_ERR(reds[k].f(O, NULL, 0, NULL, false), reds[k].n, "NULL");
    CHECK_ERR(reds[k].f(NULL, a, 0, NULL, false), NULL, reds[k].n, "out");
  }
  TRY_ERR(em_reduce_max(O, c, 0, NULL, false), "reduce_max", "c64");
  TRY_ERR(em_reduce_min(O, c, 1, (int[]){0}, true), "reduce_min", "c64");
  /* argmax / argmin */
  TRY_ERR(em_argmax(O, c, 0, false, false), "argmax", "c64");
  TRY_ERR(em_argmin(O, c, -1, false, false), "argmin", "c64");
  TRY_ERR(em_argmax(O, a, 2, false, false), "argmax", "axis 2", "rank 2");
  TRY_ERR(em_argmin(O, e, 0, false, false), "argmin", "axis 0", "size 0");
  TRY_ERR(em_argmax(O, e, -1, false, false), "argmax", "empty");
  TRY_ERR(em_argmax(O, NULL, 0, false, false), "argmax", "NULL");
  CHECK_ERR(em_argmin(NULL, a, 0, false, false), NULL, "argmin", "out");
  /* dot / matmul */
  {
    int one = 1, zero = 0;
    em_array *b34 = arr(EM_F32, 2, (int64_t[]){3, 4}), *b234 = arr(EM_F32, 3, (int64_t[]){2, 3, 4});
    TRY_ERR(em_dot(O, a, 1, &one, 0, NULL, i, 1, &zero, 0, NULL), "dot", "f32", "s32");
    TRY_ERR(em_dot(O, a, 1, &one, 0, NULL, v4, 1, &zero, 0, NULL), "dot", "[2,3]", "[4]");
    TRY_ERR(em_dot(O, a, 1, &one, 0, NULL, b34, 0, NULL, 0, NULL), "dot", "length");
    TRY_ERR(em_dot(O, a, 1, (int[]){2}, 0, NULL, b34, 1, &zero, 0, NULL), "dot", "axis 2");
    TRY_ERR(em_dot(O, a, 1, &one, 1, &one, b34, 1, &zero, 1, &one), "dot", "axis 1");
    em_array *b33 = arr(EM_F32, 2, s33);
    TRY_ERR(em_dot(O, a, 1, &one, 1, &zero, b33, 1, &one, 1, &zero), "dot", "batch",
            "[2,3]");
    em_array_release(b33);
    TRY_ERR(em_dot(O, a, 1, NULL, 0, NULL, b34, 1, &zero, 0, NULL), "dot", "axes");
    TRY_ERR(em_dot(O, NULL, 0, NULL, 0, NULL, a, 0, NULL, 0, NULL), "dot", "NULL");
    CHECK_ERR(em_dot(NULL, a, 0, NULL, 0, NULL, a, 0, NULL, 0, NULL), NULL, "dot", "out");
    /* rank 9 x rank 9 outer product: rank 18 > EM_MAX_NDIM */
    int64_t r9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 2};
    em_array *x9 = arr(EM_F32, 9, r9);
    TRY_ERR(em_dot(O, x9, 0, NULL, 0, NULL, x9, 0, NULL, 0, NULL), "dot", "18");
    /* [2^40] x [2^40] outer product overflows */
    em_array *hv = huge(1, (int64_t[]){BIG});
    TRY_ERR(em_dot(O, hv, 0, NULL, 0, NULL, hv, 0, NULL, 0, NULL), "dot", "overflow");
    TRY_ERR(em_matmul(O, a, v4), "matmul", "2", "1");
    TRY_ERR(em_matmul(O, a, a), "matmul", "[2,3]");
    TRY_ERR(em_matmul(O, b234, b234), "matmul", "[2,3,4]");
    em_array *b345 = arr(EM_F32, 3, (int64_t[]){3, 4, 5});
    TRY_ERR(em_matmul(O, b234, b345), "matmul", "[2,3,4]", "[3,4,5]");
    em_array_release(b345);
    TRY_ERR(em_matmul(O, a, i), "matmul", "f32", "s32");
    TRY_ERR(em_matmul(O, v4, v4), "matmul", "rank");
    TRY_ERR(em_matmul(O, NULL, a), "matmul", "NULL");
    em_array *all[] = {b34, b234, x9, hv};
    for (int k = 0; k < 4; k++) em_array_release(all[k]);
  }
  /* softmax / logsumexp / layer_norm / rms_norm */
  {
    em_array *s = scal(EM_F32, 1), *w3 = arr(EM_F32, 1, (int64_t[]){3}), *w4 = v4;
    em_array *w3i = arr(EM_S32, 1, (int64_t[]){3}), *w13 = arr(EM_F32, 2, (int64_t[]){1, 3});
    TRY_ERR(em_softmax(O, i, 0), "softmax", "s32", "[2,3]");
    TRY_ERR(em_softmax(O, c, 0), "softmax", "c64");
    TRY_ERR(em_softmax(O, s, 0), "softmax", "rank");
    TRY_ERR(em_softmax(O, a, 2), "softmax", "axis 2");
    TRY_ERR(em_softmax(O, NULL, 0), "softmax", "NULL");
    TRY_ERR(em_logsumexp(O, i, 0, false), "logsumexp", "s32");
    TRY_ERR(em_logsumexp(O, a, -3, true), "logsumexp", "-3");
    TRY_ERR(em_logsumexp(O, s, 0, false), "logsumexp", "rank");
    TRY_ERR(em_layer_norm(O, a, w4, NULL, 1e-5), "layer_norm", "weight", "3");
    TRY_ERR(em_layer_norm(O, a, w3, w4, 1e-5), "layer_norm", "bias", "3");
    TRY_ERR(em_layer_norm(O, a, w3i, NULL, 1e-5), "layer_norm", "f32");
    TRY_ERR(em_layer_norm(O, a, w13, NULL, 1e-5), "layer_norm", "1-d");
    TRY_ERR(em_layer_norm(O, a, w3, NULL, -1), "layer_norm", "eps");
    TRY_ERR(em_layer_norm(O, a, NULL, NULL, NAN), "layer_norm", "eps");
    TRY_ERR(em_layer_norm(O, i, NULL, NULL, 1e-5), "layer_norm", "s32");
    TRY_ERR(em_rms_norm(O, a, w4, 1e-5), "rms_norm", "weight");
    TRY_ERR(em_rms_norm(O, s, NULL, 1e-5), "rms_norm", "rank");
    TRY_ERR(em_rms_norm(O, NULL, NULL, 1e-5), "rms_norm", "NULL");
    em_array *all[] = {s, w3, w3i, w13};
    for (int k = 0; k < 4; k++) em_array_release(all[k]);
  }
  em_array *all[] = {a, i, c, e, v4};
  for (int k = 0; k < 5; k++) em_array_release(all[k]);
}

static void test_runtime_errors(void) {
  em_array *a = arr(EM_F32, 2, s23), *list[2] = {a, NULL};
  CHECK_ERR(em_eval(list, 2), NULL, "eval", "array 1");
  CHECK_ERR(em_eval(list, -1), NULL, "eval", "list");
  CHECK_ERR(em_eval(NULL, 1), NULL, "eval", "list");
  CHECK(em_eval(NULL, 0) == EM_OK, "eval of nothing");
  em_stream *s = NULL;
  CHECK(em_stream_new(&s, em_cpu()) == EM_OK && s, "stream_new");
  CHECK_ERR(em_eval_async(list, 1, NULL, NULL, NULL), NULL, "eval_async", "stream");
  CHECK_ERR(em_eval_async(list, 2, s, NULL, NULL), NULL, "eval_async", "array 1");
  CHECK_ERR(em_stream_synchronize(NULL), NULL, "synchronize", "NULL");
  CHECK_ERR(em_stream_new(NULL, em_cpu()), NULL, "stream_new", "out");
  em_stream *s2 = (em_stream *)SENTINEL;
  em_status st = em_stream_new(&s2, (em_device){EM_DEVICE_CUDA, 3});
  CHECK((st == EM_ERR_ARGUMENT || st == EM_ERR_UNSUPPORTED) && s2 == NULL &&
            strncmp(em_last_error(), "[stream_new]", 12) == 0,
        "stream_new on a missing device: %s", em_last_error());
  CHECK(em_default_stream((em_device){EM_DEVICE_CUDA, 0}) == NULL, "no CUDA default stream");
  CHECK_ERR(em_memory_stats_get(em_cpu(), NULL), NULL, "memory_stats", "device");
  em_stream_free(s);
  em_stream_free(NULL);
  em_array_release(NULL);
  em_array_release(a);
}

int main(void) {
  test_creation_errors();
  test_shape_errors();
  test_elementwise_errors();
  test_reduce_errors();
  test_runtime_errors();
  return TEST_SUMMARY();
}
