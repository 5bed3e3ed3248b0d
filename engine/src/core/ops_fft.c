/* ops_fft.c — graph building for the FFT family (Nx 0.13 semantics, numpy
 * conventions). Kernels: src/cpu/fft.c.
 *
 *  - fft/ifft: c64/c128 input (the Nx layer promotes real inputs), along
 *    the last axis, zero-padded or truncated to n >= 1; same dtype out.
 *    ifft divides by n (Nx.ifft, numpy.fft.ifft).
 *  - fft2/ifft2: fft/ifft over the last axis to n1, then over the
 *    second-to-last to n0 (through transposed views), as Nx.fft2 composes
 *    them; rank >= 2.
 *  - rfft: real input (f64 -> c128; f32 and every other real dtype, cast
 *    to f32 first, -> c64, as Nx.Type.to_complex does), padded/truncated
 *    to n, giving the n/2+1 non-negative frequencies.
 *  - irfft: complex input (real inputs are cast to c64, f64 to c128) whose
 *    first n/2+1 entries along the last axis (zero-padded when shorter)
 *    are the Hermitian half of a length-n spectrum; output real f32/f64 of
 *    length n, scaled by 1/n. The imaginary parts of the zero-frequency
 *    entry and, for even n, of entry n/2 are ignored (Nx.irfft builds the
 *    full spectrum and takes the real part of its ifft, numpy does the
 *    same). Nx's default length 2*(m-1) is the caller's to pass.
 *  - Nx's :eps clean-up of tiny values is not applied (XLA does not). */
#include <string.h>

#include "array-impl.h"

#define TRY(x)                    \
  do {                            \
    em_status st_ = (x);          \
    if (st_ != EM_OK) return st_; \
  } while (0)

static em_status check_common(const char *op, em_array **out, em_array *a,
                              int min_rank) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[%s] out is NULL", op);
  *out = NULL;
  if (!a) return em_fail(EM_ERR_ARGUMENT, "[%s] input array is NULL", op);
  if ((unsigned)a->dtype >= EM_DTYPE_COUNT)
    return em_fail(EM_ERR_ARGUMENT, "[%s] unknown dtype %d", op, (int)a->dtype);
  if (a->ndim < min_rank) {
    char b[256];
    return em_fail(EM_ERR_ARGUMENT,
                   "[%s] needs an input of rank >= %d, got %s %s", op, min_rank,
                   em_shape_str(b, sizeof b, a->ndim, a->shape),
                   em_dtype_name(a->dtype));
  }
  return EM_OK;
}

static em_status check_length(const char *op, const char *what, int64_t n,
                              const em_array *a) {
  if (n >= 1) return EM_OK;
  char b[256];
  return em_fail(EM_ERR_ARGUMENT,
                 "[%s] %s must be a positive integer, got %lld (input %s %s)",
                 op, what, (long long)n,
                 em_shape_str(b, sizeof b, a->ndim, a->shape),
                 em_dtype_name(a->dtype));
}

static em_status check_complex(const char *op, const em_array *a) {
  if (a->dtype == EM_C64 || a->dtype == EM_C128) return EM_OK;
  char b[256];
  return em_fail(EM_ERR_ARGUMENT,
                 "[%s] expects a complex input (c64 or c128), got %s %s", op,
                 em_shape_str(b, sizeof b, a->ndim, a->shape),
                 em_dtype_name(a->dtype));
}

/* The node of op on a (already validated) with the last axis -> len. */
static em_status fft_node(em_array **out, const char *name, em_op op,
                          em_array *a, int64_t n, bool inverse, em_dtype t,
                          int64_t len) {
  int64_t shape[EM_MAX_NDIM];
  memcpy(shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
  shape[a->ndim - 1] = len;
  TRY(em_check_shape(name, a->ndim, shape, t));
  em_params p;
  memset(&p, 0, sizeof p);
  p.fft.n = n;
  p.fft.inverse = inverse;
  return em_make_node(out, op, t, a->ndim, shape, a->dev, 1, &a, &p);
}

static em_status c2c(em_array **out, const char *name, em_array *a, int64_t n,
                     bool inverse) {
  TRY(check_common(name, out, a, 1));
  TRY(check_complex(name, a));
  TRY(check_length(name, "length", n, a));
  return fft_node(out, name, EM_OP_fft, a, n, inverse, a->dtype, n);
}

em_status em_fft(em_array **out, em_array *a, int64_t n) {
  return c2c(out, "fft", a, n, false);
}
em_status em_ifft(em_array **out, em_array *a, int64_t n) {
  return c2c(out, "ifft", a, n, true);
}

static em_status c2c_2d(em_array **out, const char *name, em_array *a,
                        int64_t n0, int64_t n1, bool inverse) {
  TRY(check_common(name, out, a, 2));
  TRY(check_complex(name, a));
  TRY(check_length(name, "length n0", n0, a));
  TRY(check_length(name, "length n1", n1, a));
  int perm[EM_MAX_NDIM];
  for (int i = 0; i < a->ndim; i++) perm[i] = i;
  perm[a->ndim - 2] = a->ndim - 1;
  perm[a->ndim - 1] = a->ndim - 2;
  /* Both intermediate shapes are no larger in any axis than the result or
   * the input, but check the first one's element count anyway. */
  int64_t shape[EM_MAX_NDIM];
  memcpy(shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
  shape[a->ndim - 1] = n1;
  TRY(em_check_shape(name, a->ndim, shape, a->dtype));
  em_array *t1 = NULL, *t2 = NULL, *t3 = NULL;
  em_status st = fft_node(&t1, name, EM_OP_fft, a, n1, inverse, a->dtype, n1);
  if (st == EM_OK) st = em_transpose(&t2, t1, perm);
  if (st == EM_OK)
    st = fft_node(&t3, name, EM_OP_fft, t2, n0, inverse, a->dtype, n0);
  if (st == EM_OK) st = em_transpose(out, t3, perm);
  em_array_release(t1);
  em_array_release(t2);
  em_array_release(t3);
  return st;
}

em_status em_fft2(em_array **out, em_array *a, int64_t n0, int64_t n1) {
  return c2c_2d(out, "fft2", a, n0, n1, false);
}
em_status em_ifft2(em_array **out, em_array *a, int64_t n0, int64_t n1) {
  return c2c_2d(out, "ifft2", a, n0, n1, true);
}

em_status em_rfft(em_array **out, em_array *a, int64_t n) {
  TRY(check_common("rfft", out, a, 1));
  if (em_dtype_is_complex(a->dtype)) {
    char b[256];
    return em_fail(EM_ERR_ARGUMENT, "[rfft] expects a real input, got %s %s",
                   em_shape_str(b, sizeof b, a->ndim, a->shape),
                   em_dtype_name(a->dtype));
  }
  TRY(check_length("rfft", "length", n, a));
  if (n / 2 + 1 > INT64_MAX / 16)
    return em_fail(EM_ERR_ARGUMENT, "[rfft] length %lld is too large",
                   (long long)n);
  em_dtype rt = a->dtype == EM_F64 ? EM_F64 : EM_F32;
  em_dtype ct = rt == EM_F64 ? EM_C128 : EM_C64;
  if (a->dtype == rt)
    return fft_node(out, "rfft", EM_OP_rfft, a, n, false, ct, n / 2 + 1);
  em_array *c = NULL;
  TRY(em_as_type(&c, a, rt));
  em_status st = fft_node(out, "rfft", EM_OP_rfft, c, n, false, ct, n / 2 + 1);
  em_array_release(c);
  return st;
}

em_status em_irfft(em_array **out, em_array *a, int64_t n) {
  TRY(check_common("irfft", out, a, 1));
  TRY(check_length("irfft", "length", n, a));
  em_dtype ct = a->dtype == EM_C128 || a->dtype == EM_F64 ? EM_C128 : EM_C64;
  em_dtype rt = ct == EM_C128 ? EM_F64 : EM_F32;
  if (a->dtype == ct)
    return fft_node(out, "irfft", EM_OP_irfft, a, n, true, rt, n);
  em_array *c = NULL;
  TRY(em_as_type(&c, a, ct));
  em_status st = fft_node(out, "irfft", EM_OP_irfft, c, n, true, rt, n);
  em_array_release(c);
  return st;
}
