/* emily_nif.c — the NIF layer: one NIF per engine op, no policy.
 *
 * Invariants:
 * - An array resource holds exactly one engine reference; its destructor
 *   only releases it (never blocks). deallocate/1 releases early and is
 *   idempotent; later use of the resource is an error, not a crash.
 * - Op NIFs only build lazy graph nodes (O(1), no computation), so they
 *   run on normal schedulers. Computation happens in eval_async/3: the
 *   engine's stream worker evaluates and replies {Ref, Result} to the
 *   caller with enif_send; the Elixir side waits in a plain receive.
 * - to_binary/1 returns a resource binary aliasing the engine buffer; a
 *   separate pin resource keeps the array alive as long as the binary.
 * - Every argument is checked; failures are {:error, {Kind, Message}} with
 *   Kind in argument | oom | unsupported | runtime and a message that names
 *   the op, shapes and dtypes. Nothing here raises or aborts. */
#include <erl_nif.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "emily.h"

typedef struct {
  _Atomic(em_array *) a;
} array_res;

typedef struct {
  em_array *a;
} pin_res;

typedef struct {
  em_stream *s;
} stream_res;

static ErlNifResourceType *ARRAY_RT, *PIN_RT, *STREAM_RT;
static ERL_NIF_TERM A_OK, A_ERROR, A_NIL, A_TRUE, A_FALSE, A_ARGUMENT, A_OOM,
    A_UNSUPPORTED, A_RUNTIME, A_CPU, A_CUDA;

static void array_dtor(ErlNifEnv *env, void *obj) {
  (void)env;
  array_res *r = obj;
  em_array_release(atomic_exchange(&r->a, NULL));
}
static void pin_dtor(ErlNifEnv *env, void *obj) {
  (void)env;
  em_array_release(((pin_res *)obj)->a);
}
static void stream_dtor(ErlNifEnv *env, void *obj) {
  (void)env;
  em_stream_detach(((stream_res *)obj)->s); /* never blocks */
}

/* ---- results --------------------------------------------------------- */

static ERL_NIF_TERM make_error(ErlNifEnv *env, em_status st, const char *msg) {
  ERL_NIF_TERM kind = st == EM_ERR_OOM           ? A_OOM
                      : st == EM_ERR_UNSUPPORTED ? A_UNSUPPORTED
                      : st == EM_ERR_RUNTIME     ? A_RUNTIME
                                                 : A_ARGUMENT;
  ERL_NIF_TERM bin;
  size_t n = strlen(msg);
  unsigned char *p = enif_make_new_binary(env, n, &bin);
  if (p) memcpy(p, msg, n);
  return enif_make_tuple2(env, A_ERROR, enif_make_tuple2(env, kind, bin));
}

static ERL_NIF_TERM arg_error(ErlNifEnv *env, const char *op, const char *what) {
  char buf[512];
  snprintf(buf, sizeof buf, "[%s] %s", op, what);
  return make_error(env, EM_ERR_ARGUMENT, buf);
}

static ERL_NIF_TERM wrap(ErlNifEnv *env, em_array *a) {
  array_res *r = enif_alloc_resource(ARRAY_RT, sizeof *r);
  if (!r) {
    em_array_release(a);
    return make_error(env, EM_ERR_OOM, "[nif] cannot allocate a resource");
  }
  atomic_init(&r->a, a);
  ERL_NIF_TERM t = enif_make_resource(env, r);
  enif_release_resource(r);
  return enif_make_tuple2(env, A_OK, t);
}

/* {:ok, ref} for EM_OK, else the engine's error. */
/* Takes the out-pointer, not the array: C leaves the order in which
 * arguments are evaluated open, so the op call must finish first. */
static ERL_NIF_TERM result(ErlNifEnv *env, em_status st, em_array **a) {
  if (st != EM_OK) return make_error(env, st, em_last_error());
  return wrap(env, *a);
}

/* ---- argument decoding ------------------------------------------------ */

typedef struct {
  ErlNifEnv *env;
  const char *op;
  ERL_NIF_TERM err; /* set on the first failure */
  bool failed;
} ctx;

static bool fail(ctx *c, const char *fmt, int argi) {
  if (!c->failed) {
    char buf[256];
    snprintf(buf, sizeof buf, fmt, argi);
    c->err = arg_error(c->env, c->op, buf);
    c->failed = true;
  }
  return false;
}

static bool get_array(ctx *c, ERL_NIF_TERM t, int i, em_array **out) {
  array_res *r;
  if (!enif_get_resource(c->env, t, ARRAY_RT, (void **)&r))
    return fail(c, "argument %d is not an Emily array", i);
  *out = atomic_load(&r->a);
  if (!*out) return fail(c, "argument %d was deallocated", i);
  return true;
}

static bool get_int(ctx *c, ERL_NIF_TERM t, int i, int *out) {
  if (!enif_get_int(c->env, t, out))
    return fail(c, "argument %d is not a small integer", i);
  return true;
}

static bool get_i64(ctx *c, ERL_NIF_TERM t, int i, int64_t *out) {
  ErlNifSInt64 v;
  if (!enif_get_int64(c->env, t, &v))
    return fail(c, "argument %d is not a 64-bit integer", i);
  *out = v;
  return true;
}

static bool get_bool(ctx *c, ERL_NIF_TERM t, int i, bool *out) {
  if (enif_is_identical(t, A_TRUE)) *out = true;
  else if (enif_is_identical(t, A_FALSE)) *out = false;
  else return fail(c, "argument %d is not a boolean", i);
  return true;
}

static bool get_double(ctx *c, ERL_NIF_TERM t, int i, double *out) {
  if (enif_get_double(c->env, t, out)) return true;
  ErlNifSInt64 v;
  if (enif_get_int64(c->env, t, &v)) {
    *out = (double)v;
    return true;
  }
  return fail(c, "argument %d is not a number", i);
}

static bool get_dtype(ctx *c, ERL_NIF_TERM t, int i, em_dtype *out) {
  char name[16];
  if (enif_get_atom(c->env, t, name, sizeof name, ERL_NIF_LATIN1) > 0 &&
      em_dtype_from_name(name, out))
    return true;
  return fail(c, "argument %d is not a dtype atom (:u8 ... :c128)", i);
}

/* A tuple or list of integers, at most EM_MAX_NDIM long. */
static bool get_i64s(ctx *c, ERL_NIF_TERM t, int i, int64_t *out, int *n) {
  const ERL_NIF_TERM *elems;
  int arity;
  unsigned len;
  if (enif_get_tuple(c->env, t, &arity, &elems)) {
    if (arity > EM_MAX_NDIM) return fail(c, "argument %d has too many entries", i);
    for (int k = 0; k < arity; k++) {
      ErlNifSInt64 v;
      if (!enif_get_int64(c->env, elems[k], &v))
        return fail(c, "argument %d must hold integers", i);
      out[k] = v;
    }
    *n = arity;
    return true;
  }
  if (enif_get_list_length(c->env, t, &len)) {
    if (len > EM_MAX_NDIM) return fail(c, "argument %d has too many entries", i);
    ERL_NIF_TERM head, tail = t;
    int k = 0;
    while (enif_get_list_cell(c->env, tail, &head, &tail)) {
      ErlNifSInt64 v;
      if (!enif_get_int64(c->env, head, &v))
        return fail(c, "argument %d must hold integers", i);
      out[k++] = v;
    }
    *n = k;
    return true;
  }
  return fail(c, "argument %d is not a tuple or list of integers", i);
}

static bool get_ints(ctx *c, ERL_NIF_TERM t, int i, int *out, int *n) {
  int64_t tmp[EM_MAX_NDIM];
  if (!get_i64s(c, t, i, tmp, n)) return false;
  for (int k = 0; k < *n; k++) {
    if (tmp[k] < -1000000 || tmp[k] > 1000000)
      return fail(c, "argument %d holds an out-of-range axis", i);
    out[k] = (int)tmp[k];
  }
  return true;
}

/* nil -> NULL axes list (meaning "all"/default). */
static bool get_axes_or_nil(ctx *c, ERL_NIF_TERM t, int i, int *out, int *n,
                            bool *is_nil) {
  *is_nil = enif_is_identical(t, A_NIL);
  if (*is_nil) {
    *n = 0;
    return true;
  }
  return get_ints(c, t, i, out, n);
}

/* A list of arrays (at most max). */
static bool get_arrays(ctx *c, ERL_NIF_TERM t, int i, em_array **out, int max,
                       int *n) {
  unsigned len;
  if (!enif_get_list_length(c->env, t, &len) || (int)len > max)
    return fail(c, "argument %d is not a list of arrays (or is too long)", i);
  ERL_NIF_TERM head, tail = t;
  int k = 0;
  while (enif_get_list_cell(c->env, tail, &head, &tail))
    if (!get_array(c, head, i, &out[k++])) return false;
  *n = k;
  return true;
}

static bool get_device(ctx *c, ERL_NIF_TERM t, int i, em_device *d) {
  const ERL_NIF_TERM *el;
  int arity, idx;
  if (enif_is_identical(t, A_CPU)) {
    *d = em_cpu();
    return true;
  }
  if (enif_get_tuple(c->env, t, &arity, &el) && arity == 2 &&
      enif_is_identical(el[0], A_CUDA) && enif_get_int(c->env, el[1], &idx)) {
    d->type = EM_DEVICE_CUDA;
    d->index = idx;
    return true;
  }
  return fail(c, "argument %d is not a device (:cpu or {:cuda, n})", i);
}

#define BEGIN(opname, n)                         \
  ctx c_ = {env, opname, 0, false};              \
  ctx *c = &c_;                                  \
  if (argc != (n)) return enif_make_badarg(env); \
  (void)c
#define CHECK(x) \
  if (!(x)) return c->err

/* ---- infrastructure NIFs ---------------------------------------------- */

static ERL_NIF_TERM nif_from_binary(ErlNifEnv *env, int argc,
                                    const ERL_NIF_TERM argv[]) {
  BEGIN("from_binary", 4);
  ErlNifBinary bin;
  em_dtype t;
  int64_t shape[EM_MAX_NDIM];
  int nd;
  em_device dev;
  if (!enif_inspect_binary(env, argv[0], &bin))
    return arg_error(env, "from_binary", "argument 0 is not a binary");
  CHECK(get_dtype(c, argv[1], 1, &t));
  CHECK(get_i64s(c, argv[2], 2, shape, &nd));
  CHECK(get_device(c, argv[3], 3, &dev));
  em_array *a = NULL;
  return result(env, em_array_from_data(&a, t, nd, shape, bin.data, bin.size, dev), &a);
}

/* Copies from a raw host address (Nx.from_pointer with kind :local). */
static ERL_NIF_TERM nif_from_address(ErlNifEnv *env, int argc,
                                     const ERL_NIF_TERM argv[]) {
  BEGIN("from_pointer", 5);
  ErlNifUInt64 addr;
  int64_t nbytes;
  em_dtype t;
  int64_t shape[EM_MAX_NDIM];
  int nd;
  em_device dev;
  if (!enif_get_uint64(env, argv[0], &addr) || addr == 0)
    return arg_error(env, "from_pointer", "argument 0 is not an address");
  CHECK(get_i64(c, argv[1], 1, &nbytes));
  CHECK(get_dtype(c, argv[2], 2, &t));
  CHECK(get_i64s(c, argv[3], 3, shape, &nd));
  CHECK(get_device(c, argv[4], 4, &dev));
  if (nbytes < 0) return arg_error(env, "from_pointer", "negative size");
  em_array *a = NULL;
  return result(env,
                em_array_from_data(&a, t, nd, shape, (const void *)(uintptr_t)addr,
                                   (size_t)nbytes, dev),
                &a);
}

static ERL_NIF_TERM nif_data_address(ErlNifEnv *env, int argc,
                                     const ERL_NIF_TERM argv[]) {
  BEGIN("to_pointer", 1);
  em_array *a;
  CHECK(get_array(c, argv[0], 0, &a));
  if (!em_array_is_evaluated(a))
    return arg_error(env, "to_pointer", "array is not evaluated");
  const void *p = em_array_data(a);
  if (!p) return make_error(env, EM_ERR_RUNTIME, em_last_error());
  return enif_make_tuple2(env, A_OK, enif_make_uint64(env, (ErlNifUInt64)(uintptr_t)p));
}

/* Only for evaluated arrays: never computes on the scheduler. */
static ERL_NIF_TERM nif_to_binary(ErlNifEnv *env, int argc,
                                  const ERL_NIF_TERM argv[]) {
  BEGIN("to_binary", 2);
  em_array *a;
  int64_t limit;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_i64(c, argv[1], 1, &limit));
  if (!em_array_is_evaluated(a))
    return arg_error(env, "to_binary", "array is not evaluated (call eval first)");
  const char *p = em_array_data(a); /* contiguous: no copy (see eval_async) */
  if (!p) return make_error(env, EM_ERR_RUNTIME, em_last_error());
  size_t n = em_array_nbytes(a); /* packed for sub-byte dtypes */
  size_t bits = (size_t)em_dtype_bits(em_array_dtype(a));
  if (limit >= 0 && ((size_t)limit * bits + 7) / 8 < n) n = ((size_t)limit * bits + 7) / 8;
  pin_res *pin = enif_alloc_resource(PIN_RT, sizeof *pin);
  if (!pin) return make_error(env, EM_ERR_OOM, "[to_binary] out of memory");
  em_array_retain(a);
  pin->a = a;
  ERL_NIF_TERM bin = enif_make_resource_binary(env, pin, p, n);
  enif_release_resource(pin);
  return enif_make_tuple2(env, A_OK, bin);
}

typedef struct {
  ErlNifPid pid;
  ErlNifEnv *msg_env;
  ERL_NIF_TERM ref;
  em_array **arrays;
  int n;
} reply_ctx;

/* Runs on the stream's worker thread. Makes every array's host bytes
 * row-major here, off the schedulers, so to_binary never copies. */
static void reply_done(em_status st, void *user) {
  reply_ctx *r = user;
  for (int i = 0; st == EM_OK && i < r->n; i++)
    if (!em_array_data(r->arrays[i])) st = EM_ERR_OOM;
  ERL_NIF_TERM res =
      st == EM_OK ? A_OK : make_error(r->msg_env, st, em_last_error());
  ERL_NIF_TERM msg = enif_make_tuple2(r->msg_env, r->ref, res);
  enif_send(NULL, &r->pid, r->msg_env, msg);
  enif_free_env(r->msg_env);
  for (int i = 0; i < r->n; i++) em_array_release(r->arrays[i]);
  enif_free(r->arrays);
  enif_free(r);
}

/* eval_async(arrays, stream | nil, ref) -> :ok; later {ref, :ok | error} */
static ERL_NIF_TERM nif_eval_async(ErlNifEnv *env, int argc,
                                   const ERL_NIF_TERM argv[]) {
  BEGIN("eval", 3);
  unsigned len;
  if (!enif_get_list_length(env, argv[0], &len) || len > 100000)
    return arg_error(env, "eval", "argument 0 is not a list of arrays");
  em_stream *s = NULL;
  if (!enif_is_identical(argv[1], A_NIL)) {
    stream_res *sr;
    if (!enif_get_resource(env, argv[1], STREAM_RT, (void **)&sr))
      return arg_error(env, "eval", "argument 1 is not a stream");
    s = sr->s;
  }
  if (!enif_is_ref(env, argv[2]))
    return arg_error(env, "eval", "argument 2 is not a reference");
  reply_ctx *r = enif_alloc(sizeof *r);
  if (!r) return make_error(env, EM_ERR_OOM, "[eval] out of memory");
  r->arrays = enif_alloc(sizeof(em_array *) * (len ? len : 1));
  if (!r->arrays) {
    enif_free(r);
    return make_error(env, EM_ERR_OOM, "[eval] out of memory");
  }
  r->n = 0;
  ERL_NIF_TERM head, tail = argv[0];
  while (enif_get_list_cell(env, tail, &head, &tail)) {
    em_array *a;
    if (!get_array(c, head, 0, &a)) {
      for (int i = 0; i < r->n; i++) em_array_release(r->arrays[i]);
      enif_free(r->arrays);
      enif_free(r);
      return c->err;
    }
    em_array_retain(a);
    r->arrays[r->n++] = a;
  }
  if (!s) s = em_default_stream(r->n ? em_array_device(r->arrays[0]) : em_cpu());
  if (!s) {
    for (int i = 0; i < r->n; i++) em_array_release(r->arrays[i]);
    enif_free(r->arrays);
    enif_free(r);
    return make_error(env, EM_ERR_RUNTIME, "[eval] no stream for the device");
  }
  r->msg_env = enif_alloc_env();
  r->ref = enif_make_copy(r->msg_env, argv[2]);
  enif_self(env, &r->pid);
  em_status st = em_eval_async(r->arrays, r->n, s, reply_done, r);
  if (st != EM_OK) {
    ERL_NIF_TERM e = make_error(env, st, em_last_error());
    enif_free_env(r->msg_env);
    for (int i = 0; i < r->n; i++) em_array_release(r->arrays[i]);
    enif_free(r->arrays);
    enif_free(r);
    return e;
  }
  return A_OK;
}

static ERL_NIF_TERM nif_stream_new(ErlNifEnv *env, int argc,
                                   const ERL_NIF_TERM argv[]) {
  BEGIN("stream_new", 1);
  em_device dev;
  CHECK(get_device(c, argv[0], 0, &dev));
  em_stream *s;
  em_status st = em_stream_new(&s, dev);
  if (st != EM_OK) return make_error(env, st, em_last_error());
  stream_res *r = enif_alloc_resource(STREAM_RT, sizeof *r);
  if (!r) {
    em_stream_detach(s);
    return make_error(env, EM_ERR_OOM, "[stream_new] out of memory");
  }
  r->s = s;
  ERL_NIF_TERM t = enif_make_resource(env, r);
  enif_release_resource(r);
  return enif_make_tuple2(env, A_OK, t);
}

static ERL_NIF_TERM nif_deallocate(ErlNifEnv *env, int argc,
                                   const ERL_NIF_TERM argv[]) {
  BEGIN("deallocate", 1);
  array_res *r;
  if (!enif_get_resource(env, argv[0], ARRAY_RT, (void **)&r))
    return arg_error(env, "deallocate", "argument 0 is not an Emily array");
  em_array *a = atomic_exchange(&r->a, NULL);
  if (!a) return enif_make_atom(env, "already_deallocated");
  em_array_release(a);
  return A_OK;
}

static ERL_NIF_TERM nif_info(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("info", 1);
  em_array *a;
  CHECK(get_array(c, argv[0], 0, &a));
  int nd = em_array_ndim(a);
  const int64_t *s = em_array_shape(a);
  ERL_NIF_TERM dims[EM_MAX_NDIM];
  for (int i = 0; i < nd; i++) dims[i] = enif_make_int64(env, s[i]);
  em_device d = em_array_device(a);
  ERL_NIF_TERM dev = d.type == EM_DEVICE_CPU
                         ? A_CPU
                         : enif_make_tuple2(env, A_CUDA, enif_make_int(env, d.index));
  return enif_make_tuple4(env, A_OK, enif_make_tuple_from_array(env, dims, (unsigned)nd),
                          enif_make_atom(env, em_dtype_name(em_array_dtype(a))), dev);
}

static ERL_NIF_TERM nif_memory_stats(ErlNifEnv *env, int argc,
                                     const ERL_NIF_TERM argv[]) {
  BEGIN("memory_stats", 1);
  em_device dev;
  CHECK(get_device(c, argv[0], 0, &dev));
  em_memory_stats m;
  em_status st = em_memory_stats_get(dev, &m);
  if (st != EM_OK) return make_error(env, st, em_last_error());
  ERL_NIF_TERM keys[] = {enif_make_atom(env, "active"), enif_make_atom(env, "peak"),
                         enif_make_atom(env, "cached"), enif_make_atom(env, "limit"),
                         enif_make_atom(env, "allocations"),
                         enif_make_atom(env, "cache_hits")};
  ERL_NIF_TERM vals[] = {enif_make_uint64(env, m.active_bytes),
                         enif_make_uint64(env, m.peak_bytes),
                         enif_make_uint64(env, m.cached_bytes),
                         enif_make_uint64(env, m.limit_bytes),
                         enif_make_uint64(env, m.alloc_count),
                         enif_make_uint64(env, m.cache_hits)};
  ERL_NIF_TERM map;
  enif_make_map_from_arrays(env, keys, vals, 6, &map);
  return enif_make_tuple2(env, A_OK, map);
}

static ERL_NIF_TERM nif_memory_control(ErlNifEnv *env, int argc,
                                       const ERL_NIF_TERM argv[]) {
  BEGIN("memory", 3);
  em_device dev;
  char what[32];
  int64_t v;
  CHECK(get_device(c, argv[0], 0, &dev));
  if (!enif_get_atom(env, argv[1], what, sizeof what, ERL_NIF_LATIN1))
    return arg_error(env, "memory", "argument 1 is not an atom");
  CHECK(get_i64(c, argv[2], 2, &v));
  if (!strcmp(what, "reset_peak")) em_memory_reset_peak(dev);
  else if (!strcmp(what, "clear_cache")) em_memory_clear_cache(dev);
  else if (!strcmp(what, "set_limit") && v >= 0) em_memory_set_limit(dev, (size_t)v);
  else return arg_error(env, "memory", "unknown action or bad value");
  return A_OK;
}

static ERL_NIF_TERM nif_device_count(ErlNifEnv *env, int argc,
                                     const ERL_NIF_TERM argv[]) {
  BEGIN("device_count", 1);
  if (enif_is_identical(argv[0], A_CPU)) return enif_make_int(env, em_device_count(EM_DEVICE_CPU));
  if (enif_is_identical(argv[0], A_CUDA)) return enif_make_int(env, em_device_count(EM_DEVICE_CUDA));
  return arg_error(env, "device_count", "argument 0 is not :cpu or :cuda");
}

static ERL_NIF_TERM nif_num_threads(ErlNifEnv *env, int argc,
                                    const ERL_NIF_TERM argv[]) {
  (void)argv;
  if (argc != 0) return enif_make_badarg(env);
  return enif_make_int(env, em_cpu_num_threads());
}

/* ---- op NIFs ------------------------------------------------------------ */

static ERL_NIF_TERM nif_full(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("full", 4);
  ErlNifBinary v;
  em_dtype t;
  int64_t shape[EM_MAX_NDIM];
  int nd;
  em_device dev;
  if (!enif_inspect_binary(env, argv[0], &v))
    return arg_error(env, "full", "argument 0 is not a binary");
  CHECK(get_dtype(c, argv[1], 1, &t));
  if (v.size != em_dtype_size(t))
    return arg_error(env, "full", "value binary does not match the dtype size");
  CHECK(get_i64s(c, argv[2], 2, shape, &nd));
  CHECK(get_device(c, argv[3], 3, &dev));
  em_array *a = NULL;
  return result(env, em_full(&a, t, nd, shape, v.data, dev), &a);
}

static ERL_NIF_TERM nif_iota(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("iota", 4);
  em_dtype t;
  int64_t shape[EM_MAX_NDIM];
  int nd, axis;
  em_device dev;
  CHECK(get_dtype(c, argv[0], 0, &t));
  CHECK(get_i64s(c, argv[1], 1, shape, &nd));
  CHECK(get_int(c, argv[2], 2, &axis));
  CHECK(get_device(c, argv[3], 3, &dev));
  em_array *a = NULL;
  return result(env, em_iota(&a, t, nd, shape, axis, dev), &a);
}

static ERL_NIF_TERM nif_eye(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("eye", 3);
  em_dtype t;
  int64_t shape[EM_MAX_NDIM];
  int nd;
  em_device dev;
  CHECK(get_dtype(c, argv[0], 0, &t));
  CHECK(get_i64s(c, argv[1], 1, shape, &nd));
  CHECK(get_device(c, argv[2], 2, &dev));
  em_array *a = NULL;
  return result(env, em_eye(&a, t, nd, shape, dev), &a);
}

/* (array, dtype) ops */
#define NIF_A_T(name)                                                          \
  static ERL_NIF_TERM nif_##name(ErlNifEnv *env, int argc,                     \
                                 const ERL_NIF_TERM argv[]) {                  \
    BEGIN(#name, 2);                                                           \
    em_array *a, *o = NULL;                                                    \
    em_dtype t;                                                                \
    CHECK(get_array(c, argv[0], 0, &a));                                       \
    CHECK(get_dtype(c, argv[1], 1, &t));                                       \
    return result(env, em_##name(&o, a, t), &o);                                \
  }
NIF_A_T(as_type)
NIF_A_T(bitcast)

static ERL_NIF_TERM nif_copy(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("copy", 1);
  em_array *a, *o = NULL;
  CHECK(get_array(c, argv[0], 0, &a));
  return result(env, em_copy(&o, a), &o);
}

static ERL_NIF_TERM nif_reshape(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("reshape", 2);
  em_array *a, *o = NULL;
  int64_t shape[EM_MAX_NDIM];
  int nd;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_i64s(c, argv[1], 1, shape, &nd));
  return result(env, em_reshape(&o, a, nd, shape), &o);
}

static ERL_NIF_TERM nif_squeeze(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("squeeze", 2);
  em_array *a, *o = NULL;
  int axes[EM_MAX_NDIM], n;
  bool nil;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_axes_or_nil(c, argv[1], 1, axes, &n, &nil));
  return result(env, em_squeeze(&o, a, n, nil ? NULL : axes), &o);
}

static ERL_NIF_TERM nif_broadcast(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("broadcast", 3);
  em_array *a, *o = NULL;
  int64_t shape[EM_MAX_NDIM];
  int nd, axes[EM_MAX_NDIM], na;
  bool nil;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_i64s(c, argv[1], 1, shape, &nd));
  CHECK(get_axes_or_nil(c, argv[2], 2, axes, &na, &nil));
  if (!nil && na != em_array_ndim(a))
    return arg_error(env, "broadcast", "axes must have one entry per input axis");
  return result(env, em_broadcast(&o, a, nd, shape, nil ? NULL : axes), &o);
}

static ERL_NIF_TERM nif_transpose(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("transpose", 2);
  em_array *a, *o = NULL;
  int perm[EM_MAX_NDIM], n;
  bool nil;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_axes_or_nil(c, argv[1], 1, perm, &n, &nil));
  if (!nil && n != em_array_ndim(a))
    return arg_error(env, "transpose", "permutation length differs from rank");
  return result(env, em_transpose(&o, a, nil ? NULL : perm), &o);
}

static ERL_NIF_TERM nif_pad(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("pad", 5);
  em_array *a, *v, *o = NULL;
  int64_t lo[EM_MAX_NDIM], hi[EM_MAX_NDIM], in[EM_MAX_NDIM];
  int n1, n2, n3;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_array(c, argv[1], 1, &v));
  CHECK(get_i64s(c, argv[2], 2, lo, &n1));
  CHECK(get_i64s(c, argv[3], 3, hi, &n2));
  CHECK(get_i64s(c, argv[4], 4, in, &n3));
  if (n1 != em_array_ndim(a) || n2 != n1 || n3 != n1)
    return arg_error(env, "pad", "padding config must have one entry per axis");
  return result(env, em_pad(&o, a, v, lo, hi, in), &o);
}

static ERL_NIF_TERM nif_reverse(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("reverse", 2);
  em_array *a, *o = NULL;
  int axes[EM_MAX_NDIM], n;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_ints(c, argv[1], 1, axes, &n));
  return result(env, em_reverse(&o, a, n, axes), &o);
}

static ERL_NIF_TERM nif_slice(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("slice", 4);
  em_array *a, *o = NULL;
  int64_t st[EM_MAX_NDIM], len[EM_MAX_NDIM], str[EM_MAX_NDIM];
  int n1, n2, n3;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_i64s(c, argv[1], 1, st, &n1));
  CHECK(get_i64s(c, argv[2], 2, len, &n2));
  CHECK(get_i64s(c, argv[3], 3, str, &n3));
  if (n1 != em_array_ndim(a) || n2 != n1 || n3 != n1)
    return arg_error(env, "slice", "start/lengths/strides need one entry per axis");
  return result(env, em_slice(&o, a, st, len, str), &o);
}

static ERL_NIF_TERM nif_slice_dynamic(ErlNifEnv *env, int argc,
                                      const ERL_NIF_TERM argv[]) {
  BEGIN("slice", 4);
  em_array *a, *o = NULL, *starts[EM_MAX_NDIM];
  int64_t len[EM_MAX_NDIM], str[EM_MAX_NDIM];
  int n1, n2, n3;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_arrays(c, argv[1], 1, starts, EM_MAX_NDIM, &n1));
  CHECK(get_i64s(c, argv[2], 2, len, &n2));
  CHECK(get_i64s(c, argv[3], 3, str, &n3));
  if (n1 != em_array_ndim(a) || n2 != n1 || n3 != n1)
    return arg_error(env, "slice", "start/lengths/strides need one entry per axis");
  return result(env, em_slice_dynamic(&o, a, starts, len, str), &o);
}

static ERL_NIF_TERM nif_put_slice(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("put_slice", 3);
  em_array *a, *u, *o = NULL, *starts[EM_MAX_NDIM];
  int n;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_array(c, argv[1], 1, &u));
  CHECK(get_arrays(c, argv[2], 2, starts, EM_MAX_NDIM, &n));
  if (n != em_array_ndim(a))
    return arg_error(env, "put_slice", "start needs one entry per axis");
  return result(env, em_put_slice_dynamic(&o, a, u, starts), &o);
}

static ERL_NIF_TERM nif_concatenate(ErlNifEnv *env, int argc,
                                    const ERL_NIF_TERM argv[]) {
  BEGIN("concatenate", 2);
  unsigned len;
  int axis;
  if (!enif_get_list_length(env, argv[0], &len) || len == 0 || len > 1000000)
    return arg_error(env, "concatenate", "argument 0 is not a non-empty list of arrays");
  CHECK(get_int(c, argv[1], 1, &axis));
  em_array **xs = enif_alloc(sizeof(em_array *) * len), *o = NULL;
  if (!xs) return make_error(env, EM_ERR_OOM, "[concatenate] out of memory");
  int n = 0;
  bool ok = true;
  ERL_NIF_TERM head, tail = argv[0];
  while (ok && enif_get_list_cell(env, tail, &head, &tail))
    ok = get_array(c, head, 0, &xs[n++]);
  ERL_NIF_TERM r = ok ? result(env, em_concatenate(&o, xs, n, axis), &o) : c->err;
  enif_free(xs);
  return r;
}

static ERL_NIF_TERM nif_select(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("select", 3);
  em_array *p, *t, *f, *o = NULL;
  CHECK(get_array(c, argv[0], 0, &p));
  CHECK(get_array(c, argv[1], 1, &t));
  CHECK(get_array(c, argv[2], 2, &f));
  return result(env, em_select(&o, p, t, f), &o);
}

static ERL_NIF_TERM nif_clip(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("clip", 3);
  em_array *a, *lo, *hi, *o = NULL;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_array(c, argv[1], 1, &lo));
  CHECK(get_array(c, argv[2], 2, &hi));
  return result(env, em_clip(&o, a, lo, hi), &o);
}

#define NIF_BINARY(name)                                                       \
  static ERL_NIF_TERM nif_##name(ErlNifEnv *env, int argc,                     \
                                 const ERL_NIF_TERM argv[]) {                  \
    BEGIN(#name, 2);                                                           \
    em_array *a, *b, *o = NULL;                                                \
    CHECK(get_array(c, argv[0], 0, &a));                                       \
    CHECK(get_array(c, argv[1], 1, &b));                                       \
    return result(env, em_##name(&o, a, b), &o);                                \
  }
EM_BINARY_OPS(NIF_BINARY)

#define NIF_UNARY(name)                                                        \
  static ERL_NIF_TERM nif_##name(ErlNifEnv *env, int argc,                     \
                                 const ERL_NIF_TERM argv[]) {                  \
    BEGIN(#name, 1);                                                           \
    em_array *a, *o = NULL;                                                    \
    CHECK(get_array(c, argv[0], 0, &a));                                       \
    return result(env, em_##name(&o, a), &o);                                   \
  }
EM_UNARY_OPS(NIF_UNARY)

/* reductions: (array, axes | nil, keep_axes) */
#define NIF_REDUCE(name)                                                       \
  static ERL_NIF_TERM nif_##name(ErlNifEnv *env, int argc,                     \
                                 const ERL_NIF_TERM argv[]) {                  \
    BEGIN(#name, 3);                                                           \
    em_array *a, *o = NULL;                                                    \
    int axes[EM_MAX_NDIM], n;                                                  \
    bool nil, keep;                                                            \
    CHECK(get_array(c, argv[0], 0, &a));                                       \
    CHECK(get_axes_or_nil(c, argv[1], 1, axes, &n, &nil));                     \
    CHECK(get_bool(c, argv[2], 2, &keep));                                     \
    return result(env, em_##name(&o, a, n, nil ? NULL : axes, keep), &o);       \
  }
EM_REDUCE_OPS(NIF_REDUCE)

/* argmax/argmin: (array, axis | nil, keep_axis, tie_high) */
#define NIF_ARG(name)                                                          \
  static ERL_NIF_TERM nif_##name(ErlNifEnv *env, int argc,                     \
                                 const ERL_NIF_TERM argv[]) {                  \
    BEGIN(#name, 4);                                                           \
    em_array *a, *o = NULL;                                                    \
    int axis = -1;                                                             \
    bool keep, high;                                                           \
    CHECK(get_array(c, argv[0], 0, &a));                                       \
    if (!enif_is_identical(argv[1], A_NIL)) {                                  \
      CHECK(get_int(c, argv[1], 1, &axis));                                    \
      if (axis < 0) return arg_error(env, #name, "axis must be >= 0 or nil");  \
    }                                                                          \
    CHECK(get_bool(c, argv[2], 2, &keep));                                     \
    CHECK(get_bool(c, argv[3], 3, &high));                                     \
    return result(env, em_##name(&o, a, axis, keep, high), &o);                 \
  }
NIF_ARG(argmax)
NIF_ARG(argmin)

static ERL_NIF_TERM nif_dot(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("dot", 6);
  em_array *a, *b, *o = NULL;
  int ca[EM_MAX_NDIM], ba[EM_MAX_NDIM], cb[EM_MAX_NDIM], bb[EM_MAX_NDIM];
  int nca, nba, ncb, nbb;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_ints(c, argv[1], 1, ca, &nca));
  CHECK(get_ints(c, argv[2], 2, ba, &nba));
  CHECK(get_array(c, argv[3], 3, &b));
  CHECK(get_ints(c, argv[4], 4, cb, &ncb));
  CHECK(get_ints(c, argv[5], 5, bb, &nbb));
  return result(env, em_dot(&o, a, nca, ca, nba, ba, b, ncb, cb, nbb, bb), &o);
}

static ERL_NIF_TERM nif_softmax(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("softmax", 2);
  em_array *a, *o = NULL;
  int axis;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_int(c, argv[1], 1, &axis));
  return result(env, em_softmax(&o, a, axis), &o);
}

static ERL_NIF_TERM nif_logsumexp(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("logsumexp", 3);
  em_array *a, *o = NULL;
  int axis;
  bool keep;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_int(c, argv[1], 1, &axis));
  CHECK(get_bool(c, argv[2], 2, &keep));
  return result(env, em_logsumexp(&o, a, axis, keep), &o);
}

/* layer_norm(a, weight | nil, bias | nil, eps), rms_norm(a, weight | nil, eps) */
static bool get_opt_array(ctx *c, ERL_NIF_TERM t, int i, em_array **out) {
  if (enif_is_identical(t, A_NIL)) {
    *out = NULL;
    return true;
  }
  return get_array(c, t, i, out);
}

static ERL_NIF_TERM nif_layer_norm(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("layer_norm", 4);
  em_array *a, *w, *b, *o = NULL;
  double eps;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_opt_array(c, argv[1], 1, &w));
  CHECK(get_opt_array(c, argv[2], 2, &b));
  CHECK(get_double(c, argv[3], 3, &eps));
  return result(env, em_layer_norm(&o, a, w, b, eps), &o);
}

static ERL_NIF_TERM nif_rms_norm(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("rms_norm", 3);
  em_array *a, *w, *o = NULL;
  double eps;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_opt_array(c, argv[1], 1, &w));
  CHECK(get_double(c, argv[2], 2, &eps));
  return result(env, em_rms_norm(&o, a, w, eps), &o);
}

/* ---- multi-output results ----------------------------------------------- */

/* {:ok, {ref, ...}} for EM_OK (n arrays), else the engine's error. On a
 * resource allocation failure every array not yet wrapped is released. */
static ERL_NIF_TERM result_n(ErlNifEnv *env, em_status st, em_array **as, int n) {
  if (st != EM_OK) return make_error(env, st, em_last_error());
  ERL_NIF_TERM terms[4];
  for (int i = 0; i < n; i++) {
    array_res *r = enif_alloc_resource(ARRAY_RT, sizeof *r);
    if (!r) {
      for (int j = i; j < n; j++) em_array_release(as[j]);
      return make_error(env, EM_ERR_OOM, "[nif] cannot allocate a resource");
    }
    atomic_init(&r->a, as[i]);
    terms[i] = enif_make_resource(env, r);
    enif_release_resource(r);
  }
  return enif_make_tuple2(env, A_OK, enif_make_tuple_from_array(env, terms, (unsigned)n));
}

/* ---- indexing ------------------------------------------------------------- */

/* gather(a, indices, axes | nil) */
static ERL_NIF_TERM nif_gather(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("gather", 3);
  em_array *a, *idx, *o = NULL;
  int axes[EM_MAX_NDIM], n;
  bool nil;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_array(c, argv[1], 1, &idx));
  CHECK(get_axes_or_nil(c, argv[2], 2, axes, &n, &nil));
  return result(env, em_gather(&o, a, idx, n, nil ? NULL : axes), &o);
}

/* indexed_add/put(a, indices, updates, axes | nil) */
#define NIF_INDEXED(name)                                                      \
  static ERL_NIF_TERM nif_##name(ErlNifEnv *env, int argc,                     \
                                 const ERL_NIF_TERM argv[]) {                  \
    BEGIN(#name, 4);                                                           \
    em_array *a, *idx, *u, *o = NULL;                                          \
    int axes[EM_MAX_NDIM], n;                                                  \
    bool nil;                                                                  \
    CHECK(get_array(c, argv[0], 0, &a));                                       \
    CHECK(get_array(c, argv[1], 1, &idx));                                     \
    CHECK(get_array(c, argv[2], 2, &u));                                       \
    CHECK(get_axes_or_nil(c, argv[3], 3, axes, &n, &nil));                     \
    return result(env, em_##name(&o, a, idx, u, n, nil ? NULL : axes), &o);    \
  }
NIF_INDEXED(indexed_add)
NIF_INDEXED(indexed_put)

/* take/take_along_axis(a, indices, axis) */
#define NIF_TAKE(name)                                                         \
  static ERL_NIF_TERM nif_##name(ErlNifEnv *env, int argc,                     \
                                 const ERL_NIF_TERM argv[]) {                  \
    BEGIN(#name, 3);                                                           \
    em_array *a, *idx, *o = NULL;                                              \
    int axis;                                                                  \
    CHECK(get_array(c, argv[0], 0, &a));                                       \
    CHECK(get_array(c, argv[1], 1, &idx));                                     \
    CHECK(get_int(c, argv[2], 2, &axis));                                      \
    return result(env, em_##name(&o, a, idx, axis), &o);                       \
  }
NIF_TAKE(take)
NIF_TAKE(take_along_axis)

/* ---- cumulative and sorting ----------------------------------------------- */

/* cumulative_*(a, axis, reverse), sort/argsort(a, axis, descending) */
#define NIF_AXIS_FLAG(name)                                                    \
  static ERL_NIF_TERM nif_##name(ErlNifEnv *env, int argc,                     \
                                 const ERL_NIF_TERM argv[]) {                  \
    BEGIN(#name, 3);                                                           \
    em_array *a, *o = NULL;                                                    \
    int axis;                                                                  \
    bool flag;                                                                 \
    CHECK(get_array(c, argv[0], 0, &a));                                       \
    CHECK(get_int(c, argv[1], 1, &axis));                                      \
    CHECK(get_bool(c, argv[2], 2, &flag));                                     \
    return result(env, em_##name(&o, a, axis, flag), &o);                      \
  }
NIF_AXIS_FLAG(cumulative_sum)
NIF_AXIS_FLAG(cumulative_product)
NIF_AXIS_FLAG(cumulative_max)
NIF_AXIS_FLAG(cumulative_min)
NIF_AXIS_FLAG(sort)
NIF_AXIS_FLAG(argsort)

/* top_k(a, k) -> {:ok, {values, indices}} */
static ERL_NIF_TERM nif_top_k(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("top_k", 2);
  em_array *a, *o[2] = {NULL, NULL};
  int k;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_int(c, argv[1], 1, &k));
  return result_n(env, em_top_k(&o[0], &o[1], a, k), o, 2);
}

/* ---- linear algebra ------------------------------------------------------- */

/* triangular_solve(a, b, left_side, lower, :none | :transpose | :adjoint) */
static ERL_NIF_TERM nif_triangular_solve(ErlNifEnv *env, int argc,
                                         const ERL_NIF_TERM argv[]) {
  BEGIN("triangular_solve", 5);
  em_array *a, *b, *o = NULL;
  bool left, lower;
  char tr[16];
  em_transform t;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_array(c, argv[1], 1, &b));
  CHECK(get_bool(c, argv[2], 2, &left));
  CHECK(get_bool(c, argv[3], 3, &lower));
  if (enif_get_atom(env, argv[4], tr, sizeof tr, ERL_NIF_LATIN1) <= 0)
    return arg_error(env, "triangular_solve", "argument 4 is not :none, :transpose or :adjoint");
  if (!strcmp(tr, "none")) t = EM_TRANSFORM_NONE;
  else if (!strcmp(tr, "transpose")) t = EM_TRANSFORM_TRANSPOSE;
  else if (!strcmp(tr, "adjoint")) t = EM_TRANSFORM_ADJOINT;
  else return arg_error(env, "triangular_solve", "argument 4 is not :none, :transpose or :adjoint");
  return result(env, em_triangular_solve(&o, a, b, left, lower, t), &o);
}

#define NIF_A(name)                                                            \
  static ERL_NIF_TERM nif_##name(ErlNifEnv *env, int argc,                     \
                                 const ERL_NIF_TERM argv[]) {                  \
    BEGIN(#name, 1);                                                           \
    em_array *a, *o = NULL;                                                    \
    CHECK(get_array(c, argv[0], 0, &a));                                       \
    return result(env, em_##name(&o, a), &o);                                  \
  }
NIF_A(cholesky)
NIF_A(determinant)

static ERL_NIF_TERM nif_solve(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("solve", 2);
  em_array *a, *b, *o = NULL;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_array(c, argv[1], 1, &b));
  return result(env, em_solve(&o, a, b), &o);
}

/* qr(a, complete) -> {:ok, {q, r}} */
static ERL_NIF_TERM nif_qr(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("qr", 2);
  em_array *a, *o[2] = {NULL, NULL};
  bool complete;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_bool(c, argv[1], 1, &complete));
  return result_n(env, em_qr(&o[0], &o[1], a, complete), o, 2);
}

/* lu(a) -> {:ok, {p, l, u}} */
static ERL_NIF_TERM nif_lu(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("lu", 1);
  em_array *a, *o[3] = {NULL, NULL, NULL};
  CHECK(get_array(c, argv[0], 0, &a));
  return result_n(env, em_lu(&o[0], &o[1], &o[2], a), o, 3);
}

/* eigh(a) -> {:ok, {values, vectors}} */
static ERL_NIF_TERM nif_eigh(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("eigh", 1);
  em_array *a, *o[2] = {NULL, NULL};
  CHECK(get_array(c, argv[0], 0, &a));
  return result_n(env, em_eigh(&o[0], &o[1], a), o, 2);
}

/* svd(a, full_matrices) -> {:ok, {u, s, vt}} */
static ERL_NIF_TERM nif_svd(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("svd", 2);
  em_array *a, *o[3] = {NULL, NULL, NULL};
  bool full;
  CHECK(get_array(c, argv[0], 0, &a));
  CHECK(get_bool(c, argv[1], 1, &full));
  return result_n(env, em_svd(&o[0], &o[1], &o[2], a, full), o, 3);
}

/* ---- windows ---------------------------------------------------------------- */

/* Fills an em_window for a of rank nd from (window, strides, pad_lo, pad_hi,
 * dilations) terms, each with one entry per axis. */
static bool get_window(ctx *c, const ERL_NIF_TERM *t, int i0, int nd, em_window *w) {
  int64_t *dst[5] = {w->window, w->strides, w->pad_lo, w->pad_hi, w->dilations};
  memset(w, 0, sizeof *w);
  for (int k = 0; k < 5; k++) {
    int n;
    if (!get_i64s(c, t[k], i0 + k, dst[k], &n)) return false;
    if (n != nd) return fail(c, "argument %d needs one entry per axis", i0 + k);
  }
  return true;
}

/* window_sum/product/max/min(a, window, strides, pad_lo, pad_hi, dilations) */
#define NIF_WINDOW(name)                                                       \
  static ERL_NIF_TERM nif_##name(ErlNifEnv *env, int argc,                     \
                                 const ERL_NIF_TERM argv[]) {                  \
    BEGIN(#name, 6);                                                           \
    em_array *a, *o = NULL;                                                    \
    em_window w;                                                               \
    CHECK(get_array(c, argv[0], 0, &a));                                       \
    CHECK(get_window(c, argv + 1, 1, em_array_ndim(a), &w));                   \
    return result(env, em_##name(&o, a, &w), &o);                              \
  }
NIF_WINDOW(window_sum)
NIF_WINDOW(window_product)
NIF_WINDOW(window_max)
NIF_WINDOW(window_min)

/* window_scatter_max/min(a, source, init, window, strides, pad_lo, pad_hi,
 * dilations) */
#define NIF_WINDOW_SCATTER(name)                                               \
  static ERL_NIF_TERM nif_##name(ErlNifEnv *env, int argc,                     \
                                 const ERL_NIF_TERM argv[]) {                  \
    BEGIN(#name, 8);                                                           \
    em_array *a, *src, *init, *o = NULL;                                       \
    em_window w;                                                               \
    CHECK(get_array(c, argv[0], 0, &a));                                       \
    CHECK(get_array(c, argv[1], 1, &src));                                     \
    CHECK(get_array(c, argv[2], 2, &init));                                    \
    CHECK(get_window(c, argv + 3, 3, em_array_ndim(a), &w));                   \
    return result(env, em_##name(&o, a, src, init, &w), &o);                   \
  }
NIF_WINDOW_SCATTER(window_scatter_max)
NIF_WINDOW_SCATTER(window_scatter_min)

/* ---- convolution ------------------------------------------------------------ */

/* conv(input, kernel, strides, pad_lo, pad_hi, input_dilation,
 *      kernel_dilation, feature_group_size, batch_group_size,
 *      input_permutation | nil, kernel_permutation | nil,
 *      output_permutation | nil) */
static ERL_NIF_TERM nif_conv(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  BEGIN("conv", 12);
  em_array *in, *k, *o = NULL;
  em_conv_params p;
  int perms[3][EM_MAX_NDIM];
  memset(&p, 0, sizeof p);
  CHECK(get_array(c, argv[0], 0, &in));
  CHECK(get_array(c, argv[1], 1, &k));
  int nd = em_array_ndim(in);
  if (nd < 2 || em_array_ndim(k) != nd)
    return arg_error(env, "conv", "input and kernel need the same rank (>= 2)");
  p.nspatial = nd - 2;
  int64_t *dst[5] = {p.strides, p.pad_lo, p.pad_hi, p.input_dilation, p.kernel_dilation};
  for (int i = 0; i < 5; i++) {
    int n;
    CHECK(get_i64s(c, argv[2 + i], 2 + i, dst[i], &n));
    if (n != p.nspatial)
      return arg_error(env, "conv", "strides, padding and dilations need one entry per spatial axis");
  }
  CHECK(get_i64(c, argv[7], 7, &p.feature_group_size));
  CHECK(get_i64(c, argv[8], 8, &p.batch_group_size));
  const int **pp[3] = {&p.input_permutation, &p.kernel_permutation, &p.output_permutation};
  for (int i = 0; i < 3; i++) {
    int n;
    bool nil;
    CHECK(get_axes_or_nil(c, argv[9 + i], 9 + i, perms[i], &n, &nil));
    if (!nil && n != nd)
      return arg_error(env, "conv", "permutations need one entry per axis");
    *pp[i] = nil ? NULL : perms[i];
  }
  return result(env, em_conv(&o, in, k, &p), &o);
}

/* ---- FFT -------------------------------------------------------------------- */

/* fft/ifft/rfft/irfft(a, n) */
#define NIF_FFT1(name)                                                         \
  static ERL_NIF_TERM nif_##name(ErlNifEnv *env, int argc,                     \
                                 const ERL_NIF_TERM argv[]) {                  \
    BEGIN(#name, 2);                                                           \
    em_array *a, *o = NULL;                                                    \
    int64_t n;                                                                 \
    CHECK(get_array(c, argv[0], 0, &a));                                       \
    CHECK(get_i64(c, argv[1], 1, &n));                                         \
    return result(env, em_##name(&o, a, n), &o);                               \
  }
NIF_FFT1(fft)
NIF_FFT1(ifft)
NIF_FFT1(rfft)
NIF_FFT1(irfft)

/* fft2/ifft2(a, n0, n1) */
#define NIF_FFT2(name)                                                         \
  static ERL_NIF_TERM nif_##name(ErlNifEnv *env, int argc,                     \
                                 const ERL_NIF_TERM argv[]) {                  \
    BEGIN(#name, 3);                                                           \
    em_array *a, *o = NULL;                                                    \
    int64_t n0, n1;                                                            \
    CHECK(get_array(c, argv[0], 0, &a));                                       \
    CHECK(get_i64(c, argv[1], 1, &n0));                                        \
    CHECK(get_i64(c, argv[2], 2, &n1));                                        \
    return result(env, em_##name(&o, a, n0, n1), &o);                          \
  }
NIF_FFT2(fft2)
NIF_FFT2(ifft2)

/* The op names this library was built with, so Elixir can check that its
 * list matches (a parity test). */
static ERL_NIF_TERM nif_op_names(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

/* ---- registration ------------------------------------------------------ */

#define F(name, arity) {#name, arity, nif_##name, 0},
/* Big copies in and out of the VM run on a dirty scheduler; everything else
 * is O(1) graph building. */
#define F_DIRTY(name, arity, fn) {#name, arity, fn, ERL_NIF_DIRTY_JOB_CPU_BOUND},
#define F_BIN(name) F(name, 2)
#define F_UN(name) F(name, 1)
#define F_RED(name) F(name, 3)
static ErlNifFunc nif_funcs[] = {
    F(from_binary, 4) F_DIRTY(from_binary_dirty, 4, nif_from_binary)
    F(from_address, 5) F(data_address, 1) F(to_binary, 2)
    F(eval_async, 3) F(stream_new, 1) F(deallocate, 1) F(info, 1)
    F(memory_stats, 1) F(memory_control, 3) F(device_count, 1)
    F(num_threads, 0) F(op_names, 0)
    F(full, 4) F(iota, 4) F(eye, 3) F(as_type, 2) F(bitcast, 2) F(copy, 1)
    F(reshape, 2) F(squeeze, 2) F(broadcast, 3) F(transpose, 2) F(pad, 5)
    F(reverse, 2) F(slice, 4) F(slice_dynamic, 4) F(put_slice, 3)
    F(concatenate, 2) F(select, 3) F(clip, 3)
    EM_BINARY_OPS(F_BIN) EM_UNARY_OPS(F_UN) EM_REDUCE_OPS(F_RED)
    F(argmax, 4) F(argmin, 4) F(dot, 6) F(softmax, 2) F(logsumexp, 3)
    F(layer_norm, 4) F(rms_norm, 3)
    F(gather, 3) F(indexed_add, 4) F(indexed_put, 4) F(take, 3)
    F(take_along_axis, 3)
    F(cumulative_sum, 3) F(cumulative_product, 3) F(cumulative_max, 3)
    F(cumulative_min, 3) F(sort, 3) F(argsort, 3) F(top_k, 2)
    F(triangular_solve, 5) F(cholesky, 1) F(determinant, 1) F(solve, 2)
    F(qr, 2) F(lu, 1) F(eigh, 1) F(svd, 2)
    F(window_sum, 6) F(window_product, 6) F(window_max, 6) F(window_min, 6)
    F(window_scatter_max, 8) F(window_scatter_min, 8) F(conv, 12)
    F(fft, 2) F(ifft, 2) F(rfft, 2) F(irfft, 2) F(fft2, 3) F(ifft2, 3)
};

static ERL_NIF_TERM nif_op_names(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  (void)argv;
  if (argc != 0) return enif_make_badarg(env);
  ERL_NIF_TERM list = enif_make_list(env, 0);
  size_t n = sizeof nif_funcs / sizeof nif_funcs[0];
  for (size_t i = n; i-- > 0;)
    list = enif_make_list_cell(
        env,
        enif_make_tuple2(env, enif_make_atom(env, nif_funcs[i].name),
                         enif_make_uint(env, nif_funcs[i].arity)),
        list);
  return list;
}

static int load(ErlNifEnv *env, void **priv, ERL_NIF_TERM info) {
  (void)priv;
  (void)info;
  ErlNifResourceFlags fl = ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER;
  ARRAY_RT = enif_open_resource_type(env, NULL, "emily_array", array_dtor, fl, NULL);
  PIN_RT = enif_open_resource_type(env, NULL, "emily_pin", pin_dtor, fl, NULL);
  STREAM_RT = enif_open_resource_type(env, NULL, "emily_stream", stream_dtor, fl, NULL);
  if (!ARRAY_RT || !PIN_RT || !STREAM_RT) return 1;
  A_OK = enif_make_atom(env, "ok");
  A_ERROR = enif_make_atom(env, "error");
  A_NIL = enif_make_atom(env, "nil");
  A_TRUE = enif_make_atom(env, "true");
  A_FALSE = enif_make_atom(env, "false");
  A_ARGUMENT = enif_make_atom(env, "argument");
  A_OOM = enif_make_atom(env, "oom");
  A_UNSUPPORTED = enif_make_atom(env, "unsupported");
  A_RUNTIME = enif_make_atom(env, "runtime");
  A_CPU = enif_make_atom(env, "cpu");
  A_CUDA = enif_make_atom(env, "cuda");
  return 0;
}

static int upgrade(ErlNifEnv *env, void **priv, void **old, ERL_NIF_TERM info) {
  (void)old;
  return load(env, priv, info);
}

ERL_NIF_INIT(Elixir.Emily.Native, nif_funcs, load, NULL, upgrade, NULL)
