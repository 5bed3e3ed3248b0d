/* ops_conv.c — graph building for the convolution family (Nx.conv, Nx 0.13
 * semantics). Kernel: src/cpu/conv.c.
 *
 *  - Canonical layouts: input [N, C, s...], kernel [O, C / feature_groups,
 *    k...], output [N / batch_groups, O, o...]. The caller's layouts are
 *    mapped to these as Nx.conv does: the canonical input is
 *    transpose(input, input_permutation), the canonical kernel
 *    transpose(kernel, kernel_permutation), and the result is
 *    transpose(canonical output, inverse(output_permutation)) — i.e.
 *    output_permutation[k] is where canonical axis k lands in the result.
 *    Both are em_transpose views, so the node only sees canonical layouts.
 *  - Per spatial axis: the input is dilated (input_dilation - 1 zeros
 *    between elements), then padded by pad_lo / pad_hi zeros (negative
 *    values crop, as Nx.pad does); the kernel is dilated by
 *    kernel_dilation. Window positions start at 0 and step by strides:
 *    out = floor((padded - dilated_kernel) / stride) + 1, with Nx.Shape's
 *    dilated size n + (n - 1) * (d - 1). A result dimension <= 0 is an
 *    error, as in Nx.
 *  - feature_group_size g: C == Ck * g, O % g == 0; output channel o reads
 *    input channels [(o / (O/g)) * Ck, ... + Ck).
 *  - batch_group_size b: N % b == 0, O % b == 0 (and C == Ck); output
 *    [N/b, O, ...], where out[n, o] reads input batch n + (o / (O/b)) *
 *    (N/b) (BinaryBackend's split_into_batch_groups). At most one of g, b
 *    may exceed 1.
 *  - No conjugation of complex kernels (Nx.conv is not a correlation in the
 *    signal-processing sense). The kernel is never reversed.
 *  - Input and kernel must have the same dtype; the result has it too.
 *    Nx.conv's result is floating (to_floating of the merged type): the Nx
 *    layer casts. Integer convolution here is exact modulo 2^bits (wraps);
 *    for Nx's integer inputs, convolving in s64 and casting to f32 rounds
 *    the exact sum once, as BinaryBackend does.
 * Messages start with "[conv]". */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "array-impl.h"

#define SHP(buf, a) em_shape_str(buf, sizeof buf, (a)->ndim, (a)->shape)

#define TRY(x)                    \
  do {                            \
    em_status st_ = (x);          \
    if (st_ != EM_OK) return st_; \
  } while (0)

/* Values this large never make sense for a shape; bounding them keeps
 * every size computation below far from int64 overflow. */
#define CONV_LIMIT ((int64_t)1 << 40)

/* Validates a permutation of [0, nd) (negative entries count from the
 * end, as em_transpose allows); writes the normalised one. NULL: identity. */
static em_status check_perm(const char *what, const int *perm, int nd,
                            int *outp) {
  bool seen[EM_MAX_NDIM] = {false};
  for (int i = 0; i < nd; i++) {
    int ax = perm ? perm[i] : i;
    int raw = ax;
    if (ax < 0) ax += nd;
    if (ax < 0 || ax >= nd || seen[ax])
      return em_fail(EM_ERR_ARGUMENT,
                     "[conv] %s is not a permutation of the %d axes (entry "
                     "%d is %d)",
                     what, nd, i, raw);
    seen[ax] = true;
    outp[i] = ax;
  }
  return EM_OK;
}

static int64_t floor_div(int64_t a, int64_t b) { /* b > 0 */
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

em_status em_conv(em_array **out, em_array *input, em_array *kernel,
                  const em_conv_params *p) {
  if (!out) return em_fail(EM_ERR_ARGUMENT, "[conv] out is NULL");
  *out = NULL;
  if (!input || !kernel)
    return em_fail(EM_ERR_ARGUMENT, "[conv] input array is NULL");
  if (!p) return em_fail(EM_ERR_ARGUMENT, "[conv] params are NULL");
  char b1[256], b2[256];
  if (input->dtype != kernel->dtype)
    return em_fail(EM_ERR_ARGUMENT,
                   "[conv] input and kernel dtypes differ: %s %s and %s %s",
                   em_dtype_name(input->dtype), SHP(b1, input),
                   em_dtype_name(kernel->dtype), SHP(b2, kernel));
  if ((unsigned)input->dtype >= EM_DTYPE_COUNT)
    return em_fail(EM_ERR_ARGUMENT, "[conv] unknown dtype %d",
                   (int)input->dtype);
  if (input->dev.type != kernel->dev.type ||
      input->dev.index != kernel->dev.index)
    return em_fail(EM_ERR_ARGUMENT,
                   "[conv] input and kernel are on different devices");
  const int nd = input->ndim;
  if (nd < 3)
    return em_fail(EM_ERR_ARGUMENT,
                   "[conv] input shape requires at least rank 3, got %s %s",
                   em_dtype_name(input->dtype), SHP(b1, input));
  if (kernel->ndim != nd)
    return em_fail(EM_ERR_ARGUMENT,
                   "[conv] input and kernel ranks differ: %s and %s",
                   SHP(b1, input), SHP(b2, kernel));
  const int ns = nd - 2;
  if (p->nspatial != ns)
    return em_fail(EM_ERR_ARGUMENT,
                   "[conv] nspatial is %d but input %s has %d spatial axes",
                   p->nspatial, SHP(b1, input), ns);
  int ip[EM_MAX_NDIM], kp[EM_MAX_NDIM], op[EM_MAX_NDIM], inv[EM_MAX_NDIM];
  TRY(check_perm("input_permutation", p->input_permutation, nd, ip));
  TRY(check_perm("kernel_permutation", p->kernel_permutation, nd, kp));
  TRY(check_perm("output_permutation", p->output_permutation, nd, op));
  for (int i = 0; i < nd; i++) inv[op[i]] = i;

  em_params q;
  memset(&q, 0, sizeof q);
  q.conv.nspatial = ns;
  for (int d = 0; d < ns; d++) {
    int64_t s = p->strides[d], id = p->input_dilation[d],
            kd = p->kernel_dilation[d], lo = p->pad_lo[d], hi = p->pad_hi[d];
    if (s < 1 || s > CONV_LIMIT)
      return em_fail(EM_ERR_ARGUMENT,
                     "[conv] stride of spatial axis %d must be a positive "
                     "integer, got %lld",
                     d, (long long)s);
    if (id < 1 || id > CONV_LIMIT || kd < 1 || kd > CONV_LIMIT)
      return em_fail(EM_ERR_ARGUMENT,
                     "[conv] dilations of spatial axis %d must be positive "
                     "integers, got input %lld, kernel %lld",
                     d, (long long)id, (long long)kd);
    if (lo < -CONV_LIMIT || lo > CONV_LIMIT || hi < -CONV_LIMIT ||
        hi > CONV_LIMIT)
      return em_fail(EM_ERR_ARGUMENT,
                     "[conv] padding of spatial axis %d is out of range "
                     "(%lld, %lld)",
                     d, (long long)lo, (long long)hi);
    q.conv.strides[d] = s;
    q.conv.input_dilation[d] = id;
    q.conv.kernel_dilation[d] = kd;
    q.conv.pad_lo[d] = lo;
    q.conv.pad_hi[d] = hi;
  }
  const int64_t fg = p->feature_group_size, bg = p->batch_group_size;
  if (fg < 1 || bg < 1)
    return em_fail(EM_ERR_ARGUMENT,
                   "[conv] group sizes must be positive, got "
                   "feature_group_size %lld, batch_group_size %lld",
                   (long long)fg, (long long)bg);
  if (fg != 1 && bg != 1)
    return em_fail(EM_ERR_ARGUMENT,
                   "[conv] either batch groups or feature groups must be 1, "
                   "got batch_group_size %lld and feature_group_size %lld",
                   (long long)bg, (long long)fg);
  q.conv.feature_group_size = fg;
  q.conv.batch_group_size = bg;

  int64_t ish[EM_MAX_NDIM], ksh[EM_MAX_NDIM];
  for (int i = 0; i < nd; i++) {
    ish[i] = input->shape[ip[i]];
    ksh[i] = kernel->shape[kp[i]];
  }
  const int64_t N = ish[0], C = ish[1], O = ksh[0], Ck = ksh[1];
  char ci[256], ck[256];
  em_shape_str(ci, sizeof ci, nd, ish);
  em_shape_str(ck, sizeof ck, nd, ksh);
  if (N % bg != 0)
    return em_fail(EM_ERR_ARGUMENT,
                   "[conv] batch groups (%lld) must evenly divide the input "
                   "batch size, input %s",
                   (long long)bg, ci);
  if (O % fg != 0)
    return em_fail(EM_ERR_ARGUMENT,
                   "[conv] size of kernel output channels must be evenly "
                   "divisible by feature groups (%lld), kernel %s",
                   (long long)fg, ck);
  if (O % bg != 0)
    return em_fail(EM_ERR_ARGUMENT,
                   "[conv] size of kernel output channels must be evenly "
                   "divisible by batch groups (%lld), kernel %s",
                   (long long)bg, ck);
  if (C != Ck * fg)
    return em_fail(EM_ERR_ARGUMENT,
                   "[conv] size of input channels divided by feature groups "
                   "must match size of kernel channels, got %lld / %lld != "
                   "%lld for input %s and kernel %s (%s)",
                   (long long)C, (long long)fg, (long long)Ck, ci, ck,
                   em_dtype_name(input->dtype));

  int64_t osh[EM_MAX_NDIM];
  osh[0] = N / bg;
  osh[1] = O;
  for (int d = 0; d < ns; d++) {
    /* Nx.Shape.dilate: n + (n - 1) * (dil - 1) (also for n == 0). */
    int64_t n = ish[2 + d], k = ksh[2 + d];
    if (n > CONV_LIMIT || k > CONV_LIMIT)
      return em_fail(EM_ERR_ARGUMENT, "[conv] spatial axis %d is too large",
                     d);
    int64_t di, dk;
    if (__builtin_mul_overflow(n - 1, q.conv.input_dilation[d] - 1, &di) ||
        __builtin_mul_overflow(k - 1, q.conv.kernel_dilation[d] - 1, &dk) ||
        di > CONV_LIMIT * 1024 || dk > CONV_LIMIT * 1024)
      return em_fail(EM_ERR_ARGUMENT,
                     "[conv] dilated spatial axis %d is too large (input %s, "
                     "kernel %s)",
                     d, ci, ck);
    int64_t padded = n + di + q.conv.pad_lo[d] + q.conv.pad_hi[d];
    int64_t window = k + dk;
    int64_t o = floor_div(padded - window, q.conv.strides[d]) + 1;
    if (o <= 0)
      return em_fail(EM_ERR_ARGUMENT,
                     "[conv] would result in an empty tensor: spatial axis "
                     "%d has padded size %lld and dilated window %lld (input "
                     "%s, kernel %s)",
                     d, (long long)padded, (long long)window, ci, ck);
    osh[2 + d] = o;
  }
  TRY(em_check_shape("conv", nd, osh, input->dtype));

  em_array *ti = NULL, *tk = NULL, *canon = NULL;
  em_status st = em_transpose(&ti, input, ip);
  if (st == EM_OK) st = em_transpose(&tk, kernel, kp);
  if (st == EM_OK) {
    em_array *in2[2] = {ti, tk};
    st = em_make_node(&canon, EM_OP_conv, input->dtype, nd, osh, input->dev,
                      2, in2, &q);
  }
  if (st == EM_OK) st = em_transpose(out, canon, inv);
  em_array_release(ti);
  em_array_release(tk);
  em_array_release(canon);
  if (st != EM_OK) *out = NULL;
  return st;
}
