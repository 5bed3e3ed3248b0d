/* emily.h — the public C API of the Emily engine.
 *
 * Emily is a lazy array engine: every op validates its arguments, infers the
 * result's shape and dtype, records a node and returns at once. Data is
 * computed when it is asked for (em_eval, em_array_data) on a stream of the
 * array's device, and the result is kept.
 *
 * Ownership: every em_array* handed out by the API carries one reference
 * owned by the caller; release it with em_array_release. Ops never steal
 * references from their inputs. Arrays are immutable once created.
 *
 * Errors: every entry point returns an em_status. On failure *out is left
 * NULL and em_last_error() returns a message of the form
 * "[op] what went wrong (shapes, dtypes)" for the calling thread.
 *
 * Usage:
 *   em_array *a, *b, *c;
 *   int64_t shape[2] = {2, 3};
 *   float xs[6] = {1, 2, 3, 4, 5, 6};
 *   em_array_from_data(&a, EM_F32, 2, shape, xs, sizeof xs, em_cpu());
 *   em_exp(&b, a);
 *   em_sum(&c, b, 1, (int[]){1}, false);
 *   em_eval(&c, 1);                           // runs on the CPU stream
 *   const float *r = em_array_data(c);        // 2 floats
 *   em_array_release(a); em_array_release(b); em_array_release(c);
 */
#ifndef EMILY_H
#define EMILY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EM_MAX_NDIM 16

/* ---- status ----------------------------------------------------------- */

typedef enum {
  EM_OK = 0,
  EM_ERR_ARGUMENT,    /* the caller passed something invalid */
  EM_ERR_OOM,         /* an allocation failed or the memory limit was hit */
  EM_ERR_UNSUPPORTED, /* valid, but this device/dtype has no kernel */
  EM_ERR_RUNTIME,     /* a library or device call failed */
} em_status;

/* The message of the last failure on this thread ("" if none). */
const char *em_last_error(void);
const char *em_status_name(em_status s);

/* ---- dtypes ----------------------------------------------------------- */
/* X(NAME, name, bits, kind) — ORDER DTYPE: the enum, names and sizes all
 * come from this list (names are Nx's type atoms). kind: 'u' unsigned,
 * 's' signed, 'f' float, 'c' complex. bits is Nx's bit width; the new
 * types come last so the older enum values (and tables indexed by them)
 * keep their positions.
 *  - s2 s4 u2 u4 are stored one element per byte in memory (s4 as an int8
 *    in [-8, 7], u4 as a uint8 in [0, 15], likewise for 2 bits), so every
 *    kernel and view works on them; arithmetic wraps to the type's width.
 *    Only the host boundary is packed (Nx's layout: elements MSB-first,
 *    the last byte padded with zero bits): em_array_from_data,
 *    em_array_data, em_array_to_host and em_array_nbytes.
 *  - f8 is E5M2 (IEEE-like: inf and NaN), f8_e4m3fn is E4M3FN (no inf,
 *    NaN is S.1111.111, max 448). Conversions round to nearest even; in
 *    f8_e4m3fn, values beyond ±448 and ±inf saturate to ±448 (Nx). */
#define EM_DTYPES(X)               \
  X(U8, u8, 8, 'u')                \
  X(U16, u16, 16, 'u')             \
  X(U32, u32, 32, 'u')             \
  X(U64, u64, 64, 'u')             \
  X(S8, s8, 8, 's')                \
  X(S16, s16, 16, 's')             \
  X(S32, s32, 32, 's')             \
  X(S64, s64, 64, 's')             \
  X(F16, f16, 16, 'f')             \
  X(BF16, bf16, 16, 'f')           \
  X(F32, f32, 32, 'f')             \
  X(F64, f64, 64, 'f')             \
  X(C64, c64, 64, 'c')             \
  X(C128, c128, 128, 'c')          \
  X(S2, s2, 2, 's')                \
  X(S4, s4, 4, 's')                \
  X(U2, u2, 2, 'u')                \
  X(U4, u4, 4, 'u')                \
  X(F8, f8, 8, 'f')                \
  X(F8_E4M3FN, f8_e4m3fn, 8, 'f')

typedef enum {
#define EM_X_(N, n, b, k) EM_##N,
  EM_DTYPES(EM_X_)
#undef EM_X_
  EM_DTYPE_COUNT
} em_dtype;

const char *em_dtype_name(em_dtype t);       /* "f32"; "?" if invalid */
bool em_dtype_from_name(const char *name, em_dtype *out);
size_t em_dtype_size(em_dtype t);            /* bytes per element in
                                                memory (1 for s2..u4) */
int em_dtype_bits(em_dtype t);               /* Nx's width: 2 for s2; 0 if
                                                invalid */
bool em_dtype_is_float(em_dtype t);          /* f8 f8_e4m3fn f16 bf16 f32
                                                f64 */
bool em_dtype_is_complex(em_dtype t);
bool em_dtype_is_int(em_dtype t);            /* signed or unsigned */
bool em_dtype_is_signed(em_dtype t);         /* signed ints and floats */

/* ---- devices and streams --------------------------------------------- */

typedef enum { EM_DEVICE_CPU = 0, EM_DEVICE_CUDA = 1 } em_device_type;
typedef struct {
  em_device_type type;
  int index;
} em_device;

em_device em_cpu(void);
/* Number of devices of a type (CUDA: 0 when built without CUDA). */
int em_device_count(em_device_type type);

/* A stream is an ordered queue of work on one device, served by its own
 * worker thread. Any thread may submit. Each device has a default stream. */
typedef struct em_stream em_stream;
em_status em_stream_new(em_stream **out, em_device dev);
void em_stream_free(em_stream *s); /* waits for queued work first */
/* Lets the stream finish its queue and free itself; returns at once (for
 * destructors that must never block). */
void em_stream_detach(em_stream *s);
em_stream *em_default_stream(em_device dev);
em_status em_stream_synchronize(em_stream *s);

/* Threads in the CPU pool (EMILY_NUM_THREADS overrides the core count). */
int em_cpu_num_threads(void);

/* ---- arrays ----------------------------------------------------------- */

typedef struct em_array em_array;

void em_array_retain(em_array *a);
void em_array_release(em_array *a); /* NULL is ignored */

em_dtype em_array_dtype(const em_array *a);
int em_array_ndim(const em_array *a);
const int64_t *em_array_shape(const em_array *a);
int64_t em_array_size(const em_array *a);   /* element count */
/* Bytes at the host boundary: ceil(size * bits / 8), i.e. size * dtype
 * size except for the packed sub-byte types. */
size_t em_array_nbytes(const em_array *a);
em_device em_array_device(const em_array *a);
bool em_array_is_evaluated(const em_array *a);

/* Copies host bytes (row-major, little-endian, nbytes must equal
 * em_array_nbytes of the result) into a new evaluated array. s2 s4 u2 u4
 * come packed as Nx lays them out (element i at bit i * bits counted from
 * the most significant bit of byte 0; padding bits are ignored). */
em_status em_array_from_data(em_array **out, em_dtype dtype, int ndim,
                             const int64_t *shape, const void *data,
                             size_t nbytes, em_device dev);

/* Evaluates and returns a pointer to the row-major host bytes, valid while
 * a reference to the array is held; NULL on failure (see em_last_error).
 * May make the array contiguous. No copy for contiguous CPU arrays. Sub-byte
 * types come packed (Nx's layout, see em_array_from_data; padding bits 0),
 * from a copy made once and kept with the array. */
const void *em_array_data(em_array *a);
/* Copies the row-major bytes into dst (nbytes must equal the byte size). */
em_status em_array_to_host(em_array *a, void *dst, size_t nbytes);
/* Evaluates a and returns an evaluated copy on dev (CPU <-> CUDA, CUDA <->
 * CUDA); a itself (retained) when it is already there. */
em_status em_copy_to_device(em_array **out, em_array *a, em_device dev);

/* ---- evaluation ------------------------------------------------------- */

/* Evaluates the arrays on the default stream of their device and waits. */
em_status em_eval(em_array *const *arrays, int n);

/* Queues evaluation on stream s and returns. done(status, user) runs on the
 * stream's worker thread when the arrays are ready or have failed; the
 * message of a failure is em_last_error() inside done. The arrays are
 * retained until then. */
typedef void (*em_done_fn)(em_status status, void *user);
em_status em_eval_async(em_array *const *arrays, int n, em_stream *s,
                        em_done_fn done, void *user);

/* ---- memory ----------------------------------------------------------- */

typedef struct {
  size_t active_bytes; /* held by live buffers */
  size_t peak_bytes;   /* highest active_bytes since the last reset */
  size_t cached_bytes; /* freed buffers kept for reuse */
  size_t limit_bytes;  /* 0: no limit */
  uint64_t alloc_count, cache_hits;
} em_memory_stats;

em_status em_memory_stats_get(em_device dev, em_memory_stats *out);
void em_memory_reset_peak(em_device dev);
void em_memory_clear_cache(em_device dev);
/* Allocations that would take active+cached past the limit first drop the
 * cache, then fail with EM_ERR_OOM. 0 removes the limit. */
void em_memory_set_limit(em_device dev, size_t bytes);
/* Test hook: the (n+1)-th allocation from now fails (n < 0: off),
 * so tests can drive the out-of-memory paths. */
void em_memory_fail_after(em_device dev, long n);

/* ---- ops -------------------------------------------------------------- */
/* Creation */
/* value points to one element in dtype's encoding (s2..u4: one byte whose
 * low bits hold the value; the rest are ignored). */
em_status em_full(em_array **out, em_dtype dtype, int ndim,
                  const int64_t *shape, const void *value, em_device dev);
em_status em_full_scalar(em_array **out, em_dtype dtype, double value,
                         em_device dev);
em_status em_iota(em_array **out, em_dtype dtype, int ndim,
                  const int64_t *shape, int axis, em_device dev);
/* Ones where index[axis0] == index[axis1] over the last two axes. */
em_status em_eye(em_array **out, em_dtype dtype, int ndim,
                 const int64_t *shape, em_device dev);
em_status em_as_type(em_array **out, em_array *a, em_dtype dtype);
/* Reinterprets bits; dtype bit widths (em_dtype_bits) must match. */
em_status em_bitcast(em_array **out, em_array *a, em_dtype dtype);
/* A contiguous copy (mostly for tests and the NIF). */
em_status em_copy(em_array **out, em_array *a);

/* Shape */
em_status em_reshape(em_array **out, em_array *a, int ndim,
                     const int64_t *shape);
/* axes == NULL squeezes every size-1 axis. */
em_status em_squeeze(em_array **out, em_array *a, int naxes, const int *axes);
/* axes[i] is the output axis that input axis i maps to (increasing);
 * axes == NULL aligns trailing axes (numpy rules). */
em_status em_broadcast(em_array **out, em_array *a, int ndim,
                       const int64_t *shape, const int *axes);
/* perm == NULL reverses the axes. */
em_status em_transpose(em_array **out, em_array *a, const int *perm);
/* lo/hi may be negative; interior >= 0. value is a 0-d array of a's dtype. */
em_status em_pad(em_array **out, em_array *a, em_array *value,
                 const int64_t *lo, const int64_t *hi,
                 const int64_t *interior);
em_status em_reverse(em_array **out, em_array *a, int naxes, const int *axes);
/* Static slice: start, lengths and strides (>= 1) per axis. Starts are
 * clamped so the slice fits, as Nx does. */
em_status em_slice(em_array **out, em_array *a, const int64_t *start,
                   const int64_t *lengths, const int64_t *strides);
/* Dynamic slice: starts is a list of ndim 0-d integer arrays. */
em_status em_slice_dynamic(em_array **out, em_array *a,
                           em_array *const *starts, const int64_t *lengths,
                           const int64_t *strides);
/* Writes update into a at start (clamped so it fits). */
em_status em_put_slice(em_array **out, em_array *a, em_array *update,
                       const int64_t *start);
em_status em_put_slice_dynamic(em_array **out, em_array *a, em_array *update,
                               em_array *const *starts);
em_status em_concatenate(em_array **out, em_array *const *arrays, int n,
                         int axis);
em_status em_stack(em_array **out, em_array *const *arrays, int n, int axis);
/* pred (u8, broadcastable) ? on_true : on_false */
em_status em_select(em_array **out, em_array *pred, em_array *on_true,
                    em_array *on_false);
em_status em_clip(em_array **out, em_array *a, em_array *lo, em_array *hi);

/* Elementwise binary ops, with numpy-style broadcasting. Both operands
 * must have the same dtype (the Nx layer promotes). Comparisons and
 * logical ops return u8 0/1. */
#define EM_BINARY_OPS(X)                                                    \
  X(add) X(subtract) X(multiply) X(divide) X(pow) X(remainder) X(atan2)    \
  X(min) X(max) X(quotient) X(bitwise_and) X(bitwise_or) X(bitwise_xor)    \
  X(left_shift) X(right_shift) X(equal) X(not_equal) X(greater) X(less)    \
  X(greater_equal) X(less_equal) X(logical_and) X(logical_or)              \
  X(logical_xor)

#define EM_UNARY_OPS(X)                                                     \
  X(exp) X(expm1) X(log) X(log1p) X(sigmoid) X(cos) X(sin) X(tan) X(cosh)  \
  X(sinh) X(tanh) X(acos) X(asin) X(atan) X(acosh) X(asinh) X(atanh)       \
  X(sqrt) X(rsqrt) X(cbrt) X(erf) X(erfc) X(erf_inv) X(abs)                \
  X(bitwise_not) X(ceil) X(conjugate) X(floor) X(negate) X(round) X(sign)  \
  X(count_leading_zeros) X(population_count) X(real) X(imag) X(is_nan)     \
  X(is_infinity) X(logical_not)

#define EM_X_(n) em_status em_##n(em_array **out, em_array *a, em_array *b);
EM_BINARY_OPS(EM_X_)
#undef EM_X_
#define EM_X_(n) em_status em_##n(em_array **out, em_array *a);
EM_UNARY_OPS(EM_X_)
#undef EM_X_

/* Reductions over a set of axes (naxes == 0 with axes == NULL: all). */
#define EM_REDUCE_OPS(X) X(sum) X(product) X(reduce_max) X(reduce_min) \
  X(all) X(any)
#define EM_X_(n)                                                     \
  em_status em_##n(em_array **out, em_array *a, int naxes, const int *axes, \
                   bool keep_axes);
EM_REDUCE_OPS(EM_X_)
#undef EM_X_
/* Index (s64) of the max/min along axis (axis < 0: over the flattened
 * array). tie_high picks the last of equal values. NaN wins, as in Nx. */
em_status em_argmax(em_array **out, em_array *a, int axis, bool keep_axis,
                    bool tie_high);
em_status em_argmin(em_array **out, em_array *a, int axis, bool keep_axis,
                    bool tie_high);

/* Dot product contracting axes ca of a with cb of b, with batch axes ba/bb.
 * Result axes: batch, then a's free axes, then b's free axes (Nx order). */
em_status em_dot(em_array **out, em_array *a, int nca, const int *ca,
                 int nba, const int *ba, em_array *b, int ncb, const int *cb,
                 int nbb, const int *bb);
em_status em_matmul(em_array **out, em_array *a, em_array *b);

/* Fused row ops (like MLX's fast namespace): one pass over each row. */
em_status em_softmax(em_array **out, em_array *a, int axis);
em_status em_logsumexp(em_array **out, em_array *a, int axis, bool keep_axis);
/* weight/bias: NULL or arrays broadcastable to the last axis. */
em_status em_layer_norm(em_array **out, em_array *a, em_array *weight,
                        em_array *bias, double eps);
em_status em_rms_norm(em_array **out, em_array *a, em_array *weight,
                      double eps);

/* ---- indexing (Nx semantics) ------------------------------------------ */
/* Indices may have any integer dtype; data any dtype. Out-of-range indices
 * are clamped into [0, size - 1], as XLA does. With em_set_bounds_check(true)
 * (a process-wide switch, read when the op is evaluated) they instead fail
 * the evaluation with EM_ERR_ARGUMENT and a message naming the first
 * offending index value (row-major order), its position in the indices and
 * the axis and its size. Indexing an axis of size 0 when the result is not
 * empty is an argument error. */
void em_set_bounds_check(bool on);
/* indices: integer array [..., k] (rank >= 1); axes: the k axes of a they
 * index, strictly increasing, naxes == k (axes == NULL: the first k, naxes 0
 * or k). Result: indices.shape[:-1] ++ the shape of a without the indexed
 * axes (Nx.gather); each index row selects the whole slice there. */
em_status em_gather(em_array **out, em_array *a, em_array *indices, int naxes,
                    const int *axes);
/* Scatter (indices and axes as for em_gather; result: a's shape and dtype).
 * updates has a's dtype and shape indices.shape[:-1] ++ w, where w has one
 * dimension per non-indexed axis of a (in order), each at most that axis's
 * size (Nx.Shape.indexed); it lands at the index row's position on the
 * indexed axes and at 0 on the others (XLA scatter). indexed_add sums the
 * updates of rows that hit the same position in index order from 0 (ints
 * wrap; floats and complex parts in double) and adds the sum to a, rounding
 * once, as Nx's BinaryBackend does; indexed_put lets the last row win.
 * Both are deterministic. */
em_status em_indexed_add(em_array **out, em_array *a, em_array *indices,
                         em_array *updates, int naxes, const int *axes);
em_status em_indexed_put(em_array **out, em_array *a, em_array *indices,
                         em_array *updates, int naxes, const int *axes);
/* Nx.take: indices (any rank, integer) select along axis; result
 * a.shape[:axis] ++ indices.shape ++ a.shape[axis+1:]. */
em_status em_take(em_array **out, em_array *a, em_array *indices, int axis);
/* Nx.take_along_axis: indices has a's rank and shape except on axis; the
 * result has indices' shape. */
em_status em_take_along_axis(em_array **out, em_array *a, em_array *indices,
                             int axis);

/* ---- cumulative and sorting ------------------------------------------- */
em_status em_cumulative_sum(em_array **out, em_array *a, int axis, bool reverse);
em_status em_cumulative_product(em_array **out, em_array *a, int axis,
                                bool reverse);
em_status em_cumulative_max(em_array **out, em_array *a, int axis, bool reverse);
em_status em_cumulative_min(em_array **out, em_array *a, int axis, bool reverse);
/* Stable sorts along axis. NaN sorts as larger than +inf (last when
 * ascending, first when descending), as Nx does. argsort returns s64. */
em_status em_sort(em_array **out, em_array *a, int axis, bool descending);
em_status em_argsort(em_array **out, em_array *a, int axis, bool descending);
/* The k largest along the last axis, descending; indices s64. */
em_status em_top_k(em_array **values, em_array **indices, em_array *a, int k);

/* ---- windows ------------------------------------------------------------ */
/* Explicit padding per axis (lo/hi >= 0); strides and dilations >= 1;
 * NULL strides/dilations mean 1. Padding uses the reduction's identity. */
typedef struct {
  int64_t window[EM_MAX_NDIM];
  int64_t strides[EM_MAX_NDIM];
  int64_t pad_lo[EM_MAX_NDIM], pad_hi[EM_MAX_NDIM];
  int64_t dilations[EM_MAX_NDIM];
} em_window;
em_status em_window_sum(em_array **out, em_array *a, const em_window *w);
em_status em_window_product(em_array **out, em_array *a, const em_window *w);
em_status em_window_max(em_array **out, em_array *a, const em_window *w);
em_status em_window_min(em_array **out, em_array *a, const em_window *w);
/* Gradient of max/min pooling: for each window of a, adds the matching
 * element of source at the window's max (min) position into an array of
 * a's shape initialised with init (0-d). */
em_status em_window_scatter_max(em_array **out, em_array *a, em_array *source,
                                em_array *init, const em_window *w);
em_status em_window_scatter_min(em_array **out, em_array *a, em_array *source,
                                em_array *init, const em_window *w);

/* ---- convolution -------------------------------------------------------- */
/* Canonical layouts: input [N, C, spatial...], kernel [O, C/groups,
 * spatial...], output [N, O, spatial...]; the permutations (NULL:
 * identity) map a caller's layout to these, as Nx.conv's options do. */
typedef struct {
  int nspatial;
  int64_t strides[EM_MAX_NDIM];
  int64_t pad_lo[EM_MAX_NDIM], pad_hi[EM_MAX_NDIM];
  int64_t input_dilation[EM_MAX_NDIM], kernel_dilation[EM_MAX_NDIM];
  int64_t feature_group_size, batch_group_size;
  const int *input_permutation, *kernel_permutation, *output_permutation;
} em_conv_params;
em_status em_conv(em_array **out, em_array *input, em_array *kernel,
                  const em_conv_params *p);

/* ---- FFT (c64/c128; real inputs are promoted by the caller) ------------ */
/* Along the last axis, zero-padded or truncated to n. */
em_status em_fft(em_array **out, em_array *a, int64_t n);
em_status em_ifft(em_array **out, em_array *a, int64_t n);
/* Over the last two axes, to n0 x n1. */
em_status em_fft2(em_array **out, em_array *a, int64_t n0, int64_t n1);
em_status em_ifft2(em_array **out, em_array *a, int64_t n0, int64_t n1);
/* Real input (f32/f64) of length n -> n/2+1 complex; irfft the inverse. */
em_status em_rfft(em_array **out, em_array *a, int64_t n);
em_status em_irfft(em_array **out, em_array *a, int64_t n);

/* ---- linear algebra (f32 f64 c64 c128, batched over leading axes) ----- */
typedef enum { EM_TRANSFORM_NONE, EM_TRANSFORM_TRANSPOSE, EM_TRANSFORM_ADJOINT } em_transform;
/* Solves op(a) x = b (left_side) or x op(a) = b, a triangular. */
em_status em_triangular_solve(em_array **out, em_array *a, em_array *b,
                              bool left_side, bool lower,
                              em_transform transform_a);
em_status em_cholesky(em_array **out, em_array *a); /* lower factor */
em_status em_qr(em_array **q, em_array **r, em_array *a, bool complete);
/* a = p . l . u; p is a permutation matrix of a's dtype, as Nx returns. */
em_status em_lu(em_array **p, em_array **l, em_array **u, em_array *a);
/* Eigenvalues (real dtype, ascending) and eigenvectors (columns). */
em_status em_eigh(em_array **values, em_array **vectors, em_array *a);
/* a = u . diag(s) . vt; s real, descending. */
em_status em_svd(em_array **u, em_array **s, em_array **vt, em_array *a,
                 bool full_matrices);
em_status em_solve(em_array **out, em_array *a, em_array *b);
em_status em_determinant(em_array **out, em_array *a);

#ifdef __cplusplus
}
#endif
#endif /* EMILY_H */
