// window.cu — the window family on CUDA (Nx 0.13 semantics, those of
// src/cpu/window.c, bit for bit):
//
// window_reduce (sum / product / max / min): one thread per output (grid
// stride); it walks the window's taps that land inside the input in
// row-major order (taps in the padding would only combine the identity, so
// they are skipped), starting from the identity (0, 1, -inf / lowest,
// +inf / highest). The order and the arithmetic are the CPU's: integers
// wrap (unsigned arithmetic), f16/bf16 accumulate in f32 and round once,
// f32/f64/complex accumulate in their own type, complex products are C's
// (Annex G: the recovery of infinities of libgcc's __mulsc3), max/min
// take b when b > acc (b < acc) or b is NaN (so NaN propagates, and among
// equal values the first stays: max(-0.0, 0.0) is -0.0). Every
// multiplication and addition is a separate rounding (no FMA contraction
// can arise: no expression multiplies and adds).
//
// window_scatter (max / min): phase 1, one thread per window: the first
// tap inside the input is taken, later ones when x >= best (max) or
// x <= best (min), compared in the input's type (f16/bf16 in f32): ties go
// to the last tap, a NaN only when it is the first tap. A window wholly in
// the padding picks nothing. Phase 2, one thread per output position: it
// starts at init and adds the source values of the windows that picked it,
// visiting the windows that contain it in row-major (= source) order, so
// float sums round in the CPU's order; no atomics.
#include <stdint.h>
#include <string.h>

#include "window-kernels.h"

namespace {

// Element functions are __host__ __device__ (the kernels call them; a host
// build of this file can too, to check the index arithmetic without a GPU).
#define D __host__ __device__ __forceinline__

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;
struct __align__(8) c64 { float re, im; };
struct __align__(16) c128 { double re, im; };

D u32 f2u(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  u32 u;
  memcpy(&u, &f, sizeof u);
  return u;
#endif
}
D float u2f(u32 u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
#endif
}
D double u2d(u64 u) {
#ifdef __CUDA_ARCH__
  return __longlong_as_double((long long)u);
#else
  double f;
  memcpy(&f, &u, sizeof f);
  return f;
#endif
}
// One IEEE operation each, never contracted into an FMA.
#ifdef __CUDA_ARCH__
D float rmul(float a, float b) { return __fmul_rn(a, b); }
D double rmul(double a, double b) { return __dmul_rn(a, b); }
D float radd(float a, float b) { return __fadd_rn(a, b); }
D double radd(double a, double b) { return __dadd_rn(a, b); }
D float rsub(float a, float b) { return __fsub_rn(a, b); }
D double rsub(double a, double b) { return __dsub_rn(a, b); }
#else
D float rmul(float a, float b) { return a * b; }
D double rmul(double a, double b) { return a * b; }
D float radd(float a, float b) { return a + b; }
D double radd(double a, double b) { return a + b; }
D float rsub(float a, float b) { return a - b; }
D double rsub(double a, double b) { return a - b; }
#endif
D float csign(float m, float s) { return copysignf(m, s); }
D double csign(double m, double s) { return copysign(m, s); }
template <class R> D R rinf();
template <> D float rinf<float>() { return u2f(0x7f800000u); }
template <> D double rinf<double>() { return u2d(0x7ff0000000000000ull); }
template <class R> D bool is_nan(R x) { return x != x; }
template <class R> D bool is_inf(R x) { return x == rinf<R>() || x == -rinf<R>(); }

// ---- f16 / bf16 (src/core/half.h, the same bit operations) ---------------

D float h2f(u16 h) {
  const u32 sign = (u32)(h & 0x8000u) << 16;
  const u32 e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  const u32 normal = ((e + 112u) << 23) | (m << 13);
  const u32 special = 0x7f800000u | (m << 13);
  const u32 sub = f2u(rmul((float)(int)m, 0x1p-24f));
  const u32 r = e == 0 ? sub : e == 31 ? special : normal;
  return u2f(sign | r);
}
D u16 f2h(float f) {
  const u32 x = f2u(f);
  const u32 sign = (x >> 16) & 0x8000u;
  const u32 a = x & 0x7fffffffu;
  const u32 rn = a - 0x38000000u;
  const u32 normal = (rn + 0xfffu + ((rn >> 13) & 1u)) >> 13;
  const u32 sub = f2u(radd(u2f(a), 0.5f)) - 0x3f000000u;
  const u32 nan = 0x7e00u | ((a >> 13) & 0x3ffu);
  const u32 r = a > 0x7f800000u    ? nan
                : a >= 0x47800000u ? 0x7c00u
                : a >= 0x38800000u ? normal
                                   : sub;
  return (u16)(sign | r);
}
D float bf2f(u16 h) { return u2f((u32)h << 16); }
D u16 f2bf(float f) {
  const u32 x = f2u(f);
  const u32 rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
  const u32 nan = (x >> 16) | 0x40u;
  return (u16)((x & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}

// ---- element types -------------------------------------------------------

// S: storage, A: accumulator / compare type, U: unsigned arithmetic type of
// integers; K: 'u' 's' integers, 'h' f16, 'b' bf16, 'f' f32/f64, 'c'
// complex.
template <class S_, class A_, class U_, char K_>
struct wbase {
  typedef S_ S;
  typedef A_ A;
  typedef U_ U;
  static constexpr char K = K_;
};
template <int T> struct wt;
template <> struct wt<EM_CU_WT_U8> : wbase<u8, u8, u32, 'u'> {};
template <> struct wt<EM_CU_WT_U16> : wbase<u16, u16, u32, 'u'> {};
template <> struct wt<EM_CU_WT_U32> : wbase<u32, u32, u32, 'u'> {};
template <> struct wt<EM_CU_WT_U64> : wbase<u64, u64, u64, 'u'> {};
template <> struct wt<EM_CU_WT_S8> : wbase<signed char, signed char, u32, 's'> {};
template <> struct wt<EM_CU_WT_S16> : wbase<short, short, u32, 's'> {};
template <> struct wt<EM_CU_WT_S32> : wbase<int, int, u32, 's'> {};
template <> struct wt<EM_CU_WT_S64> : wbase<i64, i64, u64, 's'> {};
template <> struct wt<EM_CU_WT_F16> : wbase<u16, float, u32, 'h'> {};
template <> struct wt<EM_CU_WT_BF16> : wbase<u16, float, u32, 'b'> {};
template <> struct wt<EM_CU_WT_F32> : wbase<float, float, u32, 'f'> {};
template <> struct wt<EM_CU_WT_F64> : wbase<double, double, u64, 'f'> {};
template <> struct wt<EM_CU_WT_C64> : wbase<c64, c64, u64, 'c'> {};
template <> struct wt<EM_CU_WT_C128> : wbase<c128, c128, u64, 'c'> {};

template <class W>
D typename W::A ld(typename W::S v) {
  if constexpr (W::K == 'h') return h2f(v);
  else if constexpr (W::K == 'b') return bf2f(v);
  else return v;
}
template <class W>
D typename W::S st(typename W::A a) {
  if constexpr (W::K == 'h') return f2h(a);
  else if constexpr (W::K == 'b') return f2bf(a);
  else return a;
}

// C's complex multiplication (GCC: the plain formula, then libgcc's
// __mulsc3 / __muldc3 recovery when both parts are NaN).
template <class C, class R>
D C cmul(C z, C w) {
  R a = z.re, b = z.im, c = w.re, d = w.im;
  const R ac = rmul(a, c), bd = rmul(b, d), ad = rmul(a, d), bc = rmul(b, c);
  R x = rsub(ac, bd), y = radd(ad, bc);
  if (is_nan(x) && is_nan(y)) {
    bool recalc = false;
    if (is_inf(a) || is_inf(b)) {
      a = csign(is_inf(a) ? (R)1 : (R)0, a);
      b = csign(is_inf(b) ? (R)1 : (R)0, b);
      if (is_nan(c)) c = csign((R)0, c);
      if (is_nan(d)) d = csign((R)0, d);
      recalc = true;
    }
    if (is_inf(c) || is_inf(d)) {
      c = csign(is_inf(c) ? (R)1 : (R)0, c);
      d = csign(is_inf(d) ? (R)1 : (R)0, d);
      if (is_nan(a)) a = csign((R)0, a);
      if (is_nan(b)) b = csign((R)0, b);
      recalc = true;
    }
    if (!recalc && (is_inf(ac) || is_inf(bd) || is_inf(ad) || is_inf(bc))) {
      if (is_nan(a)) a = csign((R)0, a);
      if (is_nan(b)) b = csign((R)0, b);
      if (is_nan(c)) c = csign((R)0, c);
      if (is_nan(d)) d = csign((R)0, d);
      recalc = true;
    }
    if (recalc) {
      x = rmul(rinf<R>(), rsub(rmul(a, c), rmul(b, d)));
      y = rmul(rinf<R>(), radd(rmul(a, d), rmul(b, c)));
    }
  }
  C r;
  r.re = x;
  r.im = y;
  return r;
}

template <class W, int OP>
D typename W::A ident() {
  typedef typename W::A A;
  typedef typename W::U U;
  if constexpr (W::K == 'c') {
    A r;
    r.re = OP == EM_CU_WOP_PROD ? 1 : 0;
    r.im = 0;
    return r;
  } else if constexpr (OP == EM_CU_WOP_SUM) {
    return (A)0;
  } else if constexpr (OP == EM_CU_WOP_PROD) {
    return (A)1;
  } else if constexpr (W::K == 'u') {
    return OP == EM_CU_WOP_MAX ? (A)0 : (A)~(A)0;
  } else if constexpr (W::K == 's') {
    const U lo = (U)((U)1 << (8 * sizeof(A) - 1));
    return OP == EM_CU_WOP_MAX ? (A)lo : (A)(U)(lo - 1);
  } else {
    return OP == EM_CU_WOP_MAX ? -rinf<A>() : rinf<A>();
  }
}

template <class W, int OP>
D typename W::A comb(typename W::A a, typename W::A b) {
  typedef typename W::A A;
  typedef typename W::U U;
  constexpr bool INT = W::K == 'u' || W::K == 's';
  if constexpr (OP == EM_CU_WOP_SUM) {
    if constexpr (INT) {
      return (A)((U)a + (U)b);
    } else if constexpr (W::K == 'c') {
      A r;
      r.re = radd(a.re, b.re);
      r.im = radd(a.im, b.im);
      return r;
    } else {
      return radd(a, b);
    }
  } else if constexpr (OP == EM_CU_WOP_PROD) {
    if constexpr (INT) return (A)((U)a * (U)b);
    else if constexpr (W::K == 'c') return cmul<A, decltype(a.re)>(a, b);
    else return rmul(a, b);
  } else if constexpr (OP == EM_CU_WOP_MAX) {
    if constexpr (INT) return b > a ? b : a;
    else return (b > a || b != b) ? b : a;
  } else {
    if constexpr (INT) return b < a ? b : a;
    else return (b < a || b != b) ? b : a;
  }
}

unsigned grid_for(i64 n, int sms) {
  i64 b = (n + 255) / 256, cap = (i64)(sms > 0 ? sms : 132) * 32;
  if (b > cap) b = cap;
  return (unsigned)(b < 1 ? 1 : b);
}

// Taps of window q (row-major over g.o) inside the input: per windowed
// axis (slot w, in axis order) the tap range [ka, kb) and the steps of a
// tap in the operand (dx) and in its flat row-major positions (df); ox / of
// are the operand offset / flat position of the first tap. Returns false
// when some axis has no tap inside the input.
struct taps {
  i64 ka[16], kb[16], dx[16], df[16];
  i64 ox, of;
};

D bool window_taps(const em_cu_wgeom &g, i64 q, taps &t) {
  i64 r = q, ox = 0, of = 0;
  bool any = true;
  int w = g.nw - 1;
  for (int a = g.nd - 1; a >= 0; a--) {
    const i64 oa = a > 0 ? r % g.o[a] : r;
    if (a > 0) r /= g.o[a];
    if (!g.win[a]) {
      ox += oa * g.xst[a];
      of += oa * g.fst[a];
      continue;
    }
    const i64 b = oa * g.s[a] - g.lo[a], d = g.d[a];
    const i64 ka = b >= 0 ? 0 : (-b + d - 1) / d;
    i64 kb = g.n[a] - 1 - b < 0 ? 0 : (g.n[a] - 1 - b) / d + 1;
    if (kb > g.k[a]) kb = g.k[a];
    if (ka >= kb) any = false;
    ox += (b + ka * d) * g.xst[a];
    of += (b + ka * d) * g.fst[a];
    t.ka[w] = ka;
    t.kb[w] = kb;
    t.dx[w] = d * g.xst[a];
    t.df[w] = d * g.fst[a];
    w--;
  }
  t.ox = ox;
  t.of = of;
  return any;
}

// Runs body(operand offset, flat position) for every tap of t in
// row-major order (the last windowed axis innermost).
template <class F>
D void for_taps(int nw, taps &t, F body) {
  if (nw == 0) {
    body(t.ox, t.of);
    return;
  }
  const int L = nw - 1;
  i64 kk[16];
  for (int w = 0; w < L; w++) kk[w] = t.ka[w];
  const i64 kaL = t.ka[L], kbL = t.kb[L], dxL = t.dx[L], dfL = t.df[L];
  i64 ox = t.ox, of = t.of;
  for (;;) {
    i64 x2 = ox, f2 = of;
    for (i64 k = kaL; k < kbL; k++, x2 += dxL, f2 += dfL) body(x2, f2);
    int w = L - 1;
    for (; w >= 0; w--) {
      if (++kk[w] < t.kb[w]) {
        ox += t.dx[w];
        of += t.df[w];
        break;
      }
      ox -= (t.kb[w] - 1 - t.ka[w]) * t.dx[w];
      of -= (t.kb[w] - 1 - t.ka[w]) * t.df[w];
      kk[w] = t.ka[w];
    }
    if (w < 0) break;
  }
}

// One output of window_reduce.
template <int T, int OP>
D typename wt<T>::S wr_one(const em_cu_wgeom &g,
                           const typename wt<T>::S *__restrict__ x, i64 q,
                           int empty) {
  typedef wt<T> W;
  typename W::A acc = ident<W, OP>();
  taps t;
  if (!empty && window_taps(g, q, t))
    for_taps(g.nw, t, [&](i64 ox, i64) {
      acc = comb<W, OP>(acc, ld<W>(x[ox]));
    });
  return st<W>(acc);
}

// The pick of window m (flat position, or -1).
template <int T, bool MAX>
D i64 sel_one(const em_cu_wgeom &g, const typename wt<T>::S *__restrict__ x,
              i64 m) {
  typedef wt<T> W;
  typedef typename W::A A;
  i64 best = -1;
  taps t;
  if (window_taps(g, m, t)) {
    A cur = A();
    for_taps(g.nw, t, [&](i64 ox, i64 of) {
      const A v = ld<W>(x[ox]);
      const bool take = best < 0 || (MAX ? v >= cur : v <= cur);
      if (take) {
        cur = v;
        best = of;
      }
    });
  }
  return best;
}

// Output position p of window_scatter: a0 (init) plus the source values of
// the windows that picked p, in window order. The windows containing p:
// per windowed axis the window numbers j in [ja, jb) with
// j * s <= i + lo <= j * s + (k - 1) * d (with dilation some of them skip
// p; their pick cannot be p).
template <int T>
D typename wt<T>::S ws_one(const em_cu_wgeom &g,
                           const typename wt<T>::S *__restrict__ src,
                           typename wt<T>::A a0, const i64 *__restrict__ picks,
                           i64 p) {
  typedef wt<T> W;
  i64 ja[16], jb[16], js[16], jm[16];
  i64 r = p, so = 0, mo = 0;
  bool any = true;
  int w = g.nw - 1;
  for (int a = g.nd - 1; a >= 0; a--) {
    const i64 ia = a > 0 ? r % g.n[a] : r;
    if (a > 0) r /= g.n[a];
    if (!g.win[a]) {
      so += ia * g.sst[a];
      mo += ia * g.mst[a];
      continue;
    }
    const i64 tpos = ia + g.lo[a], s = g.s[a];
    const i64 lo = tpos - (g.k[a] - 1) * g.d[a];
    const i64 j0 = lo <= 0 ? 0 : (lo + s - 1) / s;
    i64 j1 = tpos / s + 1;
    if (j1 > g.o[a]) j1 = g.o[a];
    if (j0 >= j1) any = false;
    so += j0 * g.sst[a];
    mo += j0 * g.mst[a];
    ja[w] = j0;
    jb[w] = j1;
    js[w] = g.sst[a];
    jm[w] = g.mst[a];
    w--;
  }
  typename W::A acc = a0;
  if (!any) return st<W>(acc);
  if (g.nw == 0) {
    if (picks[mo] == p) acc = comb<W, EM_CU_WOP_SUM>(acc, ld<W>(src[so]));
    return st<W>(acc);
  }
  const int L = g.nw - 1;
  i64 kk[16];
  for (int v = 0; v < L; v++) kk[v] = ja[v];
  for (;;) {
    i64 s2 = so, m2 = mo;
    for (i64 j = ja[L]; j < jb[L]; j++, s2 += js[L], m2 += jm[L])
      if (picks[m2] == p) acc = comb<W, EM_CU_WOP_SUM>(acc, ld<W>(src[s2]));
    int v = L - 1;
    for (; v >= 0; v--) {
      if (++kk[v] < jb[v]) {
        so += js[v];
        mo += jm[v];
        break;
      }
      so -= (jb[v] - 1 - ja[v]) * js[v];
      mo -= (jb[v] - 1 - ja[v]) * jm[v];
      kk[v] = ja[v];
    }
    if (v < 0) break;
  }
  return st<W>(acc);
}

template <int T, int OP>
__global__ void __launch_bounds__(256)
    wr_k(em_cu_wgeom g, const typename wt<T>::S *__restrict__ x,
         typename wt<T>::S *__restrict__ y, i64 nout, int empty) {
  const i64 stride = (i64)gridDim.x * blockDim.x;
  for (i64 q = (i64)blockIdx.x * blockDim.x + threadIdx.x; q < nout;
       q += stride)
    y[q] = wr_one<T, OP>(g, x, q, empty);
}

template <int T, bool MAX>
__global__ void __launch_bounds__(256)
    sel_k(em_cu_wgeom g, const typename wt<T>::S *__restrict__ x,
          i64 *__restrict__ picks, i64 ns) {
  const i64 stride = (i64)gridDim.x * blockDim.x;
  for (i64 m = (i64)blockIdx.x * blockDim.x + threadIdx.x; m < ns;
       m += stride)
    picks[m] = sel_one<T, MAX>(g, x, m);
}

template <int T>
__global__ void __launch_bounds__(256)
    ws_k(em_cu_wgeom g, const typename wt<T>::S *__restrict__ src,
         const typename wt<T>::S *__restrict__ init,
         const i64 *__restrict__ picks, typename wt<T>::S *__restrict__ y,
         i64 na) {
  const i64 stride = (i64)gridDim.x * blockDim.x;
  const typename wt<T>::A a0 = ld<wt<T>>(*init);
  for (i64 p = (i64)blockIdx.x * blockDim.x + threadIdx.x; p < na;
       p += stride)
    y[p] = ws_one<T>(g, src, a0, picks, p);
}

template <int T, int OP>
cudaError_t wr_launch(const em_cu_wgeom *g, const void *x, void *y, i64 nout,
                      int empty, int sms, cudaStream_t s) {
  typedef typename wt<T>::S S;
  wr_k<T, OP><<<grid_for(nout, sms), 256, 0, s>>>(*g, (const S *)x, (S *)y,
                                                   nout, empty);
  return cudaGetLastError();
}

template <int T>
cudaError_t wr_op(const em_cu_wgeom *g, int op, const void *x, void *y,
                  i64 nout, int empty, int sms, cudaStream_t s) {
  switch (op) {
    case EM_CU_WOP_SUM: return wr_launch<T, EM_CU_WOP_SUM>(g, x, y, nout, empty, sms, s);
    case EM_CU_WOP_PROD: return wr_launch<T, EM_CU_WOP_PROD>(g, x, y, nout, empty, sms, s);
    default: break;
  }
  if constexpr (wt<T>::K != 'c') {
    if (op == EM_CU_WOP_MAX)
      return wr_launch<T, EM_CU_WOP_MAX>(g, x, y, nout, empty, sms, s);
    if (op == EM_CU_WOP_MIN)
      return wr_launch<T, EM_CU_WOP_MIN>(g, x, y, nout, empty, sms, s);
  }
  return cudaErrorInvalidValue;
}

template <int T>
cudaError_t sel_launch(const em_cu_wgeom *g, int max, const void *x,
                       i64 *picks, i64 ns, int sms, cudaStream_t s) {
  typedef typename wt<T>::S S;
  if (max)
    sel_k<T, true><<<grid_for(ns, sms), 256, 0, s>>>(*g, (const S *)x, picks, ns);
  else
    sel_k<T, false><<<grid_for(ns, sms), 256, 0, s>>>(*g, (const S *)x, picks, ns);
  return cudaGetLastError();
}

template <int T>
cudaError_t ws_launch(const em_cu_wgeom *g, const void *src, const void *init,
                      const i64 *picks, void *y, i64 na, int sms,
                      cudaStream_t s) {
  typedef typename wt<T>::S S;
  ws_k<T><<<grid_for(na, sms), 256, 0, s>>>(*g, (const S *)src,
                                             (const S *)init, picks, (S *)y, na);
  return cudaGetLastError();
}

}  // namespace

#define WT_REAL_CASES(F, ...)                             \
  case EM_CU_WT_U8: return F<EM_CU_WT_U8>(__VA_ARGS__);     \
  case EM_CU_WT_U16: return F<EM_CU_WT_U16>(__VA_ARGS__);   \
  case EM_CU_WT_U32: return F<EM_CU_WT_U32>(__VA_ARGS__);   \
  case EM_CU_WT_U64: return F<EM_CU_WT_U64>(__VA_ARGS__);   \
  case EM_CU_WT_S8: return F<EM_CU_WT_S8>(__VA_ARGS__);     \
  case EM_CU_WT_S16: return F<EM_CU_WT_S16>(__VA_ARGS__);   \
  case EM_CU_WT_S32: return F<EM_CU_WT_S32>(__VA_ARGS__);   \
  case EM_CU_WT_S64: return F<EM_CU_WT_S64>(__VA_ARGS__);   \
  case EM_CU_WT_F16: return F<EM_CU_WT_F16>(__VA_ARGS__);   \
  case EM_CU_WT_BF16: return F<EM_CU_WT_BF16>(__VA_ARGS__); \
  case EM_CU_WT_F32: return F<EM_CU_WT_F32>(__VA_ARGS__);   \
  case EM_CU_WT_F64: return F<EM_CU_WT_F64>(__VA_ARGS__);

extern "C" cudaError_t em_cu_window_reduce_launch(const em_cu_wgeom *g, int t,
                                                  int op, const void *x,
                                                  void *y, int64_t nout,
                                                  int empty, int sms,
                                                  cudaStream_t s) {
  if (nout <= 0) return cudaSuccess;
  switch (t) {
    WT_REAL_CASES(wr_op, g, op, x, y, nout, empty, sms, s)
    case EM_CU_WT_C64: return wr_op<EM_CU_WT_C64>(g, op, x, y, nout, empty, sms, s);
    case EM_CU_WT_C128: return wr_op<EM_CU_WT_C128>(g, op, x, y, nout, empty, sms, s);
    default: return cudaErrorInvalidValue;
  }
}

extern "C" cudaError_t em_cu_window_select_launch(const em_cu_wgeom *g, int t,
                                                  int max, const void *x,
                                                  int64_t *picks, int64_t ns,
                                                  int sms, cudaStream_t s) {
  if (ns <= 0) return cudaSuccess;
  switch (t) {
    WT_REAL_CASES(sel_launch, g, max, x, (i64 *)picks, ns, sms, s)
    default: return cudaErrorInvalidValue;
  }
}

extern "C" cudaError_t em_cu_window_scatter_launch(
    const em_cu_wgeom *g, int ts, const void *src, const void *init,
    const int64_t *picks, void *y, int64_t na, int sms, cudaStream_t s) {
  if (na <= 0) return cudaSuccess;
  switch (ts) {
    WT_REAL_CASES(ws_launch, g, src, init, (const i64 *)picks, y, na, sms, s)
    default: return cudaErrorInvalidValue;
  }
}
