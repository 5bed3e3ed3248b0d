/* sort.c — the CPU kernels of EM_OP_sort and EM_OP_argsort: stable sorts
 * along one axis, ascending or descending, every real dtype (Nx.sort,
 * Nx.argsort; the order of Nx's BinaryBackend comparators).
 *
 * Keys: each row along the axis is turned into unsigned keys whose
 * unsigned order is the wanted order — integers as they are (sign bit
 * flipped for signed types), floats by their bit patterns (negative values
 * inverted, positive ones with the sign bit set), every NaN mapped to the
 * largest key and -0.0 to +0.0's key, since Nx treats all NaNs as equal
 * and larger than +inf, and -0.0 as equal to 0.0. Descending complements
 * the keys: a stable ascending sort of ~key is the stable descending sort
 * Nx defines (equal elements keep their original order).
 *
 * Rows of up to NET_MAX elements go through a sorting network, 16 rows at
 * a time in vector lanes (see "sorting networks" below); longer rows
 * through an LSD radix sort with 8-bit digits that skips digits all keys
 * share and stops early when the row is already in order; argsort carries
 * 32-bit indices (64-bit for rows past 2^32 elements). sort turns the keys
 * back into values; NaN payloads and the sign of zero, lost in the keys,
 * are then restored from the input in input order (equal keys are equal
 * elements otherwise, and a stable order keeps zeros and NaNs in input
 * order). Rows are independent and run in parallel (em_parallel_for);
 * scratch comes from the device's caching allocator. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/backend-impl.h"
#include "../core/parallel.h"
#include "cpu-kernels.h"
#include "simd.h"

#define NET_MAX 256   /* sorting networks up to this row length */
#define NET_V 16      /* rows per network pass (vector lanes) */
#define NET_CMAX 4096 /* >= comparators of the network for 256: 3839 */

/* ---- keys ------------------------------------------------------------------
 */

typedef bool (*to_keys_fn)(const void *x, int64_t stride, int64_t n, void *k,
                           bool desc);
typedef void (*from_keys_fn)(const void *k, int64_t n, void *y, int64_t stride,
                             bool desc);
typedef void (*fixup_fn)(const void *x, void *y, int64_t stride, int64_t n);

/* Integers: FLIP is the sign bit for signed types, 0 for unsigned. */
#define INT_KEYS(n, K, FLIP)                                                 \
  EM_CLONES static bool to_keys_##n(const void *xv, int64_t stride,          \
                                    int64_t cnt, void *kv, bool desc) {      \
    const K *x = xv;                                                         \
    K *k = kv;                                                               \
    K f = (K)((K)(FLIP) ^ (desc ? (K) ~(K)0 : (K)0));                        \
    if (stride == 1)                                                         \
      for (int64_t i = 0; i < cnt; i++) k[i] = (K)(x[i] ^ f);                \
    else                                                                     \
      for (int64_t i = 0; i < cnt; i++) k[i] = (K)(x[i * stride] ^ f);       \
    return false;                                                            \
  }                                                                          \
  EM_CLONES static void from_keys_##n(const void *kv, int64_t cnt, void *yv, \
                                      int64_t stride, bool desc) {           \
    const K *k = kv;                                                         \
    K *y = yv;                                                               \
    K f = (K)((K)(FLIP) ^ (desc ? (K) ~(K)0 : (K)0));                        \
    if (stride == 1)                                                         \
      for (int64_t i = 0; i < cnt; i++) y[i] = (K)(k[i] ^ f);                \
    else                                                                     \
      for (int64_t i = 0; i < cnt; i++) y[i * stride] = (K)(k[i] ^ f);       \
  }

INT_KEYS(u8, uint8_t, 0)
INT_KEYS(u16, uint16_t, 0)
INT_KEYS(u32, uint32_t, 0)
INT_KEYS(u64, uint64_t, 0)
INT_KEYS(s8, uint8_t, 0x80u)
INT_KEYS(s16, uint16_t, 0x8000u)
INT_KEYS(s32, uint32_t, 0x80000000u)
INT_KEYS(s64, uint64_t, 0x8000000000000000u)

/* Floats by bit pattern. SIGN: the sign bit; INF: +inf's bits (a larger
 * magnitude pattern is a NaN). Returns whether the row holds a NaN or a
 * -0.0 (their bits are not recoverable from the key). */
#define FLT_KEYS(n, K, SIGN, INF)                                            \
  static inline K key_##n(K b, K f, K *special) {                            \
    const K sg = (K)(SIGN);                                                  \
    K a = (K)(b & (K)~sg);                                                   \
    K neg = (K)((K)0 - (K)(b >> (8 * sizeof(K) - 1)));                       \
    K key = (K)(b ^ (K)(neg | sg)); /* negative: ~b, else b | sign */        \
    K isnan = (K)((K)0 - (K)(a > (K)(INF)));                                 \
    K iszero = (K)((K)0 - (K)(a == 0));                                      \
    key = (K)((key & (K)~isnan) | isnan);                                    \
    key = (K)((key & (K)~iszero) | (sg & iszero));                           \
    *special |= (K)(isnan | (K)((K)0 - (K)(b == sg)));                       \
    return (K)(key ^ f);                                                     \
  }                                                                          \
  EM_CLONES static bool to_keys_##n(const void *xv, int64_t stride,          \
                                    int64_t cnt, void *kv, bool desc) {      \
    const K *x = xv;                                                         \
    K *k = kv;                                                               \
    K f = desc ? (K) ~(K)0 : (K)0;                                           \
    K special = 0;                                                           \
    if (stride == 1)                                                         \
      for (int64_t i = 0; i < cnt; i++) k[i] = key_##n(x[i], f, &special);   \
    else                                                                     \
      for (int64_t i = 0; i < cnt; i++)                                      \
        k[i] = key_##n(x[i * stride], f, &special);                          \
    return special != 0;                                                     \
  }                                                                          \
  static inline K unkey_##n(K v, K f) {                                      \
    v = (K)(v ^ f);                                                          \
    K pos = (K)((K)0 - (K)(v >> (8 * sizeof(K) - 1))); /* sign bit set */    \
    return (K)(v ^ (K)((K)~pos | (K)(SIGN)));                                \
  }                                                                          \
  EM_CLONES static void from_keys_##n(const void *kv, int64_t cnt, void *yv, \
                                      int64_t stride, bool desc) {           \
    const K *k = kv;                                                         \
    K *y = yv;                                                               \
    K f = desc ? (K) ~(K)0 : (K)0;                                           \
    if (stride == 1)                                                         \
      for (int64_t i = 0; i < cnt; i++) y[i] = unkey_##n(k[i], f);           \
    else                                                                     \
      for (int64_t i = 0; i < cnt; i++) y[i * stride] = unkey_##n(k[i], f);  \
  }                                                                          \
  /* The output holds +0.0 for every zero and the pattern ~SIGN for every    \
   * NaN; put the input's own zeros and NaNs there, in input order. */       \
  static void fixup_##n(const void *xv, void *yv, int64_t stride,            \
                        int64_t cnt) {                                       \
    const K *x = xv;                                                         \
    K *y = yv;                                                               \
    const K cnan = (K) ~(K)(SIGN);                                           \
    int64_t zi = 0, ni = 0;                                                  \
    for (int64_t j = 0; j < cnt; j++) {                                      \
      K v = y[j * stride];                                                   \
      if (v == 0) {                                                          \
        while (zi < cnt && (x[zi * stride] & cnan) != 0) zi++;               \
        if (zi < cnt) y[j * stride] = x[zi++ * stride];                      \
      } else if (v == cnan) {                                                \
        while (ni < cnt && (x[ni * stride] & cnan) <= (K)(INF)) ni++;        \
        if (ni < cnt) y[j * stride] = x[ni++ * stride];                      \
      }                                                                      \
    }                                                                        \
  }

FLT_KEYS(f16, uint16_t, 0x8000u, 0x7c00u)
FLT_KEYS(bf16, uint16_t, 0x8000u, 0x7f80u)
FLT_KEYS(f32, uint32_t, 0x80000000u, 0x7f800000u)
FLT_KEYS(f64, uint64_t, 0x8000000000000000u, 0x7ff0000000000000u)

static const to_keys_fn TO_KEYS[EM_DTYPE_COUNT] = {
    to_keys_u8,  to_keys_u16, to_keys_u32, to_keys_u64, to_keys_s8,
    to_keys_s16, to_keys_s32, to_keys_s64, to_keys_f16, to_keys_bf16,
    to_keys_f32, to_keys_f64, NULL,        NULL};
static const from_keys_fn FROM_KEYS[EM_DTYPE_COUNT] = {
    from_keys_u8,  from_keys_u16, from_keys_u32, from_keys_u64, from_keys_s8,
    from_keys_s16, from_keys_s32, from_keys_s64, from_keys_f16, from_keys_bf16,
    from_keys_f32, from_keys_f64, NULL,          NULL};
static const fixup_fn FIXUP[EM_DTYPE_COUNT] = {
    NULL, NULL,      NULL,       NULL,      NULL,      NULL, NULL,
    NULL, fixup_f16, fixup_bf16, fixup_f32, fixup_f64, NULL, NULL};

/* ---- radix sort of one row of keys --------------------------------------- */

/* RADIX_K_I: stable LSD radix sort (8-bit digits) of a[0..n) using b as
 * scratch; with ia/ib it carries indices, implicitly 0..n-1 at the start.
 * Returns the buffer holding the sorted keys, sets *idx to the one holding
 * the indices and *sorted when the row was already in order (then nothing
 * moved and *idx is NULL). hist: NB * 256 counts, NB = sizeof(K). */
#define RADIX_FN(KN, K, IN, I)                                               \
  static K *radix_##KN##_##IN(K *a, K *b, I *ia, I *ib, int64_t n,           \
                              int64_t *hist, I **idx, bool *sorted) {        \
    const int np = (int)sizeof(K);                                           \
    memset(hist, 0, sizeof(int64_t) * 256 * (size_t)np);                     \
    bool ordered = true;                                                     \
    K prev = a[0];                                                           \
    for (int64_t i = 0; i < n; i++) {                                        \
      K k = a[i];                                                            \
      ordered &= k >= prev;                                                  \
      prev = k;                                                              \
      for (int p = 0; p < np; p++) hist[p * 256 + ((k >> (p * 8)) & 255)]++; \
    }                                                                        \
    *sorted = ordered;                                                       \
    *idx = NULL;                                                             \
    if (ordered) return a;                                                   \
    bool implicit = true;                                                    \
    for (int p = 0; p < np; p++) {                                           \
      int64_t *h = hist + p * 256;                                           \
      const int sh = p * 8;                                                  \
      if (h[(a[0] >> sh) & 255] == n) continue; /* one digit: no move */     \
      int64_t sum = 0;                                                       \
      for (int d = 0; d < 256; d++) {                                        \
        int64_t c = h[d];                                                    \
        h[d] = sum;                                                          \
        sum += c;                                                            \
      }                                                                      \
      if (!ia) {                                                             \
        for (int64_t i = 0; i < n; i++) {                                    \
          K k = a[i];                                                        \
          b[h[(k >> sh) & 255]++] = k;                                       \
        }                                                                    \
      } else if (implicit) {                                                 \
        for (int64_t i = 0; i < n; i++) {                                    \
          K k = a[i];                                                        \
          int64_t o = h[(k >> sh) & 255]++;                                  \
          b[o] = k;                                                          \
          ib[o] = (I)i;                                                      \
        }                                                                    \
      } else {                                                               \
        for (int64_t i = 0; i < n; i++) {                                    \
          K k = a[i];                                                        \
          int64_t o = h[(k >> sh) & 255]++;                                  \
          b[o] = k;                                                          \
          ib[o] = ia[i];                                                     \
        }                                                                    \
      }                                                                      \
      K *t = a;                                                              \
      a = b;                                                                 \
      b = t;                                                                 \
      I *ti = ia;                                                            \
      ia = ib;                                                               \
      ib = ti;                                                               \
      implicit = false;                                                      \
    }                                                                        \
    *idx = ia;                                                               \
    return a;                                                                \
  }

#define RADIX_K(KN, K)           \
  RADIX_FN(KN, K, u32, uint32_t) \
  RADIX_FN(KN, K, u64, uint64_t)

RADIX_K(k8, uint8_t)
RADIX_K(k16, uint16_t)
RADIX_K(k32, uint32_t)
RADIX_K(k64, uint64_t)

/* ---- sorting networks for short rows ---------------------------------------
 * Rows of at most NET_MAX elements are sorted NET_V at a time by Batcher's
 * odd-even merge network: element i of the group's rows lives in
 * B[i * NET_V + lane], so every comparator is a lane-wise min/max the
 * compiler vectorises. The network is built for the next power of two and
 * pruned to n: with +inf padding the padded positions never change, so
 * every comparator touching them is a no-op and is dropped. A network is
 * not stable; sort does not need it to be (equal keys are equal values,
 * zeros and NaNs are restored afterwards) and argsort makes every key
 * unique by pairing it with its index (key << 32 | index for keys of up to
 * 32 bits, a (key, index) lane pair for 64-bit keys). */

typedef struct {
  uint16_t a, b;
} cmpx;

/* Comparators of the pruned network for n <= NET_MAX; returns the count. */
static int net_build(int n, cmpx *out) {
  int N = 1, c = 0;
  while (N < n) N *= 2;
  for (int p = 1; p < N; p *= 2)
    for (int k = p; k >= 1; k /= 2)
      for (int j = k % p; j + k < N; j += 2 * k)
        for (int i = 0; i < k && i + j + k < N; i++)
          if ((i + j) / (2 * p) == (i + j + k) / (2 * p) && i + j + k < n)
            out[c++] = (cmpx){(uint16_t)(i + j), (uint16_t)(i + j + k)};
  return c;
}

/* Compare-exchange of two lane rows, with GCC vector extensions (the
 * target clones make them AVX-512 / AVX2 code). */
typedef uint32_t v16u32 __attribute__((vector_size(64)));
typedef uint64_t v8u64 __attribute__((vector_size(64)));

static inline __attribute__((always_inline)) void cx_u32(uint32_t *x,
                                                         uint32_t *y) {
  v16u32 p, q;
  memcpy(&p, x, 64);
  memcpy(&q, y, 64);
  v16u32 m = (v16u32)(p < q);
  v16u32 lo = (p & m) | (q & ~m), hi = (q & m) | (p & ~m);
  memcpy(x, &lo, 64);
  memcpy(y, &hi, 64);
}
static inline __attribute__((always_inline)) void cx_u64(uint64_t *x,
                                                         uint64_t *y) {
  for (int h = 0; h < NET_V; h += 8) {
    v8u64 p, q;
    memcpy(&p, x + h, 64);
    memcpy(&q, y + h, 64);
    v8u64 m = (v8u64)(p < q);
    v8u64 lo = (p & m) | (q & ~m), hi = (q & m) | (p & ~m);
    memcpy(x + h, &lo, 64);
    memcpy(y + h, &hi, 64);
  }
}
static inline __attribute__((always_inline)) void cx_pair(uint64_t *xk,
                                                          uint64_t *yk,
                                                          uint64_t *xi,
                                                          uint64_t *yi) {
  for (int h = 0; h < NET_V; h += 8) {
    v8u64 p, q, pi, qi;
    memcpy(&p, xk + h, 64);
    memcpy(&q, yk + h, 64);
    memcpy(&pi, xi + h, 64);
    memcpy(&qi, yi + h, 64);
    v8u64 gt = (v8u64)(p > q), ge = (v8u64)(p >= q), gi = (v8u64)(pi > qi);
    v8u64 sw = gt | (ge & gi);
    v8u64 k0 = (p & ~sw) | (q & sw), k1 = (q & ~sw) | (p & sw);
    v8u64 i0 = (pi & ~sw) | (qi & sw), i1 = (qi & ~sw) | (pi & sw);
    memcpy(xk + h, &k0, 64);
    memcpy(yk + h, &k1, 64);
    memcpy(xi + h, &i0, 64);
    memcpy(yi + h, &i1, 64);
  }
}

EM_CLONES static void net_u32(uint32_t *B, const cmpx *c, int nc) {
  for (int q = 0; q < nc; q++) cx_u32(B + c[q].a * NET_V, B + c[q].b * NET_V);
}
EM_CLONES static void net_u64(uint64_t *B, const cmpx *c, int nc) {
  for (int q = 0; q < nc; q++) cx_u64(B + c[q].a * NET_V, B + c[q].b * NET_V);
}
EM_CLONES static void net_pair(uint64_t *B, uint64_t *Bi, const cmpx *c,
                               int nc) {
  for (int q = 0; q < nc; q++)
    cx_pair(B + c[q].a * NET_V, B + c[q].b * NET_V, Bi + c[q].a * NET_V,
            Bi + c[q].b * NET_V);
}

/* ---- rows -----------------------------------------------------------------
 */

typedef struct {
  em_dtype t;
  bool desc, want_idx;
  const char *x; /* contiguous input [outer, n, inner] */
  char *y;       /* contiguous output, same layout */
  int64_t n, inner;
  em_device dev; /* scratch comes from its caching allocator */
  atomic_int oom;
} sort_ctx;

static size_t round64(size_t b) { return (b + 63) & ~(size_t)63; }

/* Element offset of row r's first element. */
static inline int64_t row_base(const sort_ctx *c, int64_t r) {
  return (r / c->inner) * c->n * c->inner + r % c->inner;
}

/* Writes the sorted keys ks of row r (or the input row when `sorted`). */
#define EMIT_SORTED(K)                                               \
  do {                                                               \
    K *yr = (K *)c->y + base;                                        \
    if (sorted) {                                                    \
      for (int64_t j = 0; j < n; j++) yr[j * inner] = xr[j * inner]; \
    } else {                                                         \
      fk(ks, n, yr, inner, c->desc);                                 \
      if (special && fx) fx(xr, yr, inner, n);                       \
    }                                                                \
  } while (0)

/* rows_net_KN sorts rows [r0, r1) of c (n <= NET_MAX) with the network;
 * rows_radix_KN with the radix sort. K: the key type of c->t's width. */
#define ROWS(KN, K)                                                            \
  static void rows_net_##KN(sort_ctx *c, int64_t r0, int64_t r1) {             \
    const int64_t n = c->n, inner = c->inner;                                  \
    const bool wide = sizeof(K) == 8, pair = wide && c->want_idx;              \
    const bool comp = !wide && c->want_idx; /* key << 32 | index */            \
    const size_t lb = wide || comp ? 8 : 4;                                    \
    size_t cb = round64(sizeof(cmpx) * NET_CMAX);                              \
    size_t bb = round64(lb * NET_V * (size_t)n);                               \
    size_t rb = round64(sizeof(K) * (size_t)n);                                \
    const size_t total = cb + bb * (pair ? 2 : 1) + rb;                        \
    em_status st_;                                                             \
    char *scr = em_alloc(c->dev, total, &st_);                                 \
    if (!scr) {                                                                \
      atomic_store(&c->oom, 1);                                                \
      return;                                                                  \
    }                                                                          \
    cmpx *cm = (cmpx *)scr;                                                    \
    void *B = scr + cb;                                                        \
    uint64_t *Bi = (uint64_t *)(scr + cb + bb);                                \
    K *ks = (K *)(scr + cb + bb * (pair ? 2 : 1));                             \
    uint32_t *B32 = B;                                                         \
    uint64_t *B64 = B;                                                         \
    const int nc = net_build((int)n, cm);                                      \
    const to_keys_fn tk = TO_KEYS[c->t];                                       \
    const from_keys_fn fk = FROM_KEYS[c->t];                                   \
    const fixup_fn fx = FIXUP[c->t];                                           \
    bool specials[NET_V];                                                      \
    for (int64_t g = r0; g < r1; g += NET_V) {                                 \
      int nl = r1 - g < NET_V ? (int)(r1 - g) : NET_V;                         \
      for (int l = 0; l < NET_V; l++) {                                        \
        specials[l] = false;                                                   \
        if (l < nl)                                                            \
          specials[l] =                                                        \
              tk((const K *)c->x + row_base(c, g + l), inner, n, ks, c->desc); \
        else                                                                   \
          memset(ks, 0, sizeof(K) * (size_t)n);                                \
        if (pair)                                                              \
          for (int64_t i = 0; i < n; i++) {                                    \
            B64[i * NET_V + l] = (uint64_t)ks[i];                              \
            Bi[i * NET_V + l] = (uint64_t)i;                                   \
          }                                                                    \
        else if (comp)                                                         \
          for (int64_t i = 0; i < n; i++)                                      \
            B64[i * NET_V + l] = (uint64_t)ks[i] << 32 | (uint64_t)i;          \
        else if (wide)                                                         \
          for (int64_t i = 0; i < n; i++) B64[i * NET_V + l] = ks[i];          \
        else                                                                   \
          for (int64_t i = 0; i < n; i++) B32[i * NET_V + l] = ks[i];          \
      }                                                                        \
      if (pair)                                                                \
        net_pair(B64, Bi, cm, nc);                                             \
      else if (wide || comp)                                                   \
        net_u64(B64, cm, nc);                                                  \
      else                                                                     \
        net_u32(B32, cm, nc);                                                  \
      for (int l = 0; l < nl; l++) {                                           \
        int64_t base = row_base(c, g + l);                                     \
        if (c->want_idx) {                                                     \
          int64_t *yo = (int64_t *)c->y + base;                                \
          const uint64_t *src = pair ? Bi : B64;                               \
          for (int64_t i = 0; i < n; i++)                                      \
            yo[i * inner] = (int64_t)(src[i * NET_V + l] & 0xffffffffu);       \
        } else {                                                               \
          const K *xr = (const K *)c->x + base;                                \
          bool sorted = false, special = specials[l];                          \
          if (wide)                                                            \
            for (int64_t i = 0; i < n; i++) ks[i] = (K)B64[i * NET_V + l];     \
          else                                                                 \
            for (int64_t i = 0; i < n; i++) ks[i] = (K)B32[i * NET_V + l];     \
          EMIT_SORTED(K);                                                      \
        }                                                                      \
      }                                                                        \
    }                                                                          \
    em_free(c->dev, scr, total);                                               \
  }                                                                            \
                                                                               \
  static void rows_radix_##KN(sort_ctx *c, int64_t r0, int64_t r1) {           \
    const int64_t n = c->n, inner = c->inner;                                  \
    const bool big = (uint64_t)n > UINT32_MAX;                                 \
    const size_t isz = big ? 8 : 4;                                            \
    const size_t hb = round64(sizeof(int64_t) * 256 * sizeof(K));              \
    const size_t kbytes = round64((size_t)n * sizeof(K));                      \
    const size_t ibytes = c->want_idx ? round64((size_t)n * isz) : 0;          \
    const size_t total = hb + 2 * kbytes + 2 * ibytes;                         \
    em_status st_;                                                             \
    char *scr = em_alloc(c->dev, total, &st_);                                 \
    if (!scr) {                                                                \
      atomic_store(&c->oom, 1);                                                \
      return;                                                                  \
    }                                                                          \
    int64_t *hist = (int64_t *)scr;                                            \
    K *ka = (K *)(scr + hb), *kb2 = (K *)(scr + hb + kbytes);                  \
    void *ia = c->want_idx ? scr + hb + 2 * kbytes : NULL;                     \
    void *ib = c->want_idx ? scr + hb + 2 * kbytes + ibytes : NULL;            \
    const to_keys_fn tk = TO_KEYS[c->t];                                       \
    const from_keys_fn fk = FROM_KEYS[c->t];                                   \
    const fixup_fn fx = FIXUP[c->t];                                           \
    for (int64_t r = r0; r < r1; r++) {                                        \
      int64_t base = row_base(c, r);                                           \
      const K *xr = (const K *)c->x + base;                                    \
      bool special = tk(xr, inner, n, ka, c->desc);                            \
      K *ks;                                                                   \
      void *is;                                                                \
      bool sorted;                                                             \
      if (!big) {                                                              \
        uint32_t *io;                                                          \
        ks = radix_##KN##_u32(ka, kb2, ia, ib, n, hist, &io, &sorted);         \
        is = io;                                                               \
      } else {                                                                 \
        uint64_t *io;                                                          \
        ks = radix_##KN##_u64(ka, kb2, ia, ib, n, hist, &io, &sorted);         \
        is = io;                                                               \
      }                                                                        \
      if (c->want_idx) {                                                       \
        int64_t *yo = (int64_t *)c->y + base;                                  \
        if (!is)                                                               \
          for (int64_t j = 0; j < n; j++) yo[j * inner] = j;                   \
        else if (!big)                                                         \
          for (int64_t j = 0; j < n; j++)                                      \
            yo[j * inner] = ((const uint32_t *)is)[j];                         \
        else                                                                   \
          for (int64_t j = 0; j < n; j++)                                      \
            yo[j * inner] = (int64_t)((const uint64_t *)is)[j];                \
      } else {                                                                 \
        EMIT_SORTED(K);                                                        \
      }                                                                        \
    }                                                                          \
    em_free(c->dev, scr, total);                                               \
  }

ROWS(k8, uint8_t)
ROWS(k16, uint16_t)
ROWS(k32, uint32_t)
ROWS(k64, uint64_t)

static void sort_range(void *c_, int64_t r0, int64_t r1, int tid) {
  (void)tid;
  sort_ctx *c = c_;
  bool net = c->n <= NET_MAX;
  switch (em_dtype_size(c->t)) {
    case 1:
      (net ? rows_net_k8 : rows_radix_k8)(c, r0, r1);
      break;
    case 2:
      (net ? rows_net_k16 : rows_radix_k16)(c, r0, r1);
      break;
    case 4:
      (net ? rows_net_k32 : rows_radix_k32)(c, r0, r1);
      break;
    default:
      (net ? rows_net_k64 : rows_radix_k64)(c, r0, r1);
      break;
  }
}

static em_status sort_kernel(em_array *out, const em_node *node,
                             bool want_idx) {
  const char *name = want_idx ? "argsort" : "sort";
  const em_array *in = node->in[0];
  em_dtype t = in->dtype;
  if ((unsigned)t >= EM_DTYPE_COUNT || !TO_KEYS[t])
    return em_fail(EM_ERR_UNSUPPORTED, "[%s] no kernel for %s", name,
                   em_dtype_name(t));
  int axis = node->p.sort.axis;
  if (axis < 0 || axis >= in->ndim)
    return em_fail(EM_ERR_ARGUMENT, "[%s] axis %d out of range for rank %d",
                   name, axis, in->ndim);
  em_array *c = NULL;
  em_status st = em_contiguous(node->in[0], &c);
  if (st != EM_OK) return st;
  st = em_alloc_output(out);
  if (st != EM_OK) {
    em_array_release(c);
    return st;
  }
  int64_t outer = 1, n = in->shape[axis], inner = 1;
  for (int i = 0; i < axis; i++) outer *= in->shape[i];
  for (int i = axis + 1; i < in->ndim; i++) inner *= in->shape[i];
  if (out->size > 0) {
    sort_ctx ctx = {.t = t,
                    .desc = node->p.sort.descending,
                    .want_idx = want_idx,
                    .x = em_array_ptr(c),
                    .y = em_array_ptr(out),
                    .n = n,
                    .inner = inner,
                    .dev = out->dev};
    atomic_init(&ctx.oom, 0);
    int64_t grain = n >= 16384 ? 1 : 16384 / n;
    em_parallel_for(outer * inner, grain, sort_range, &ctx);
    if (atomic_load(&ctx.oom))
      st = em_fail(EM_ERR_OOM,
                   "[%s] out of memory for the scratch of a %lld-element "
                   "row (%s)",
                   name, (long long)n, em_dtype_name(t));
  }
  em_array_release(c);
  return st;
}

em_status em_cpu_k_sort(em_array *out, const em_node *node) {
  return sort_kernel(out, node, false);
}
em_status em_cpu_k_argsort(em_array *out, const em_node *node) {
  return sort_kernel(out, node, true);
}
