/* fft-impl.h — the FFT engine for one precision. fft.c includes it twice:
 * first with FFT_T double / FFT_S d, then with FFT_T float / FFT_S f (the
 * float plans build their Bluestein kernels with the double engine). Every
 * name it defines ends in _d or _f.
 *
 * Data are interleaved complex numbers (re, im) of T; the hot loops work on
 * 32-byte vectors (VC complex numbers each) through GCC's vector
 * extensions, compiled for AVX-512/AVX2/baseline by EM_CLONES.
 *
 * Only the forward transform (exp(-2*pi*i*jk/n)) is implemented; inverses
 * conjugate on the way in and on the way out, fused into the copies.
 *
 * Layouts. A "lane buffer" [n][v] holds v independent sequences of length
 * n, element j of sequence c at complex index j*v + c, with v a multiple of
 * VC. Every pass of a Stockham transform then runs over contiguous runs of
 * s*v >= VC complex numbers, so all of its loops are vector loops, whatever
 * the radix or the pass. Batches of short rows go through lane buffers
 * (rows transposed in and out); single long rows use the four-step
 * algorithm, whose column and row FFTs are lane-buffer transforms. */

#define T FFT_T
#define FFT_C2_(a, b) a##_##b
#define FFT_C1_(a, b) FFT_C2_(a, b)
#define F(name) FFT_C1_(name, FFT_S)

typedef T F(vec) __attribute__((vector_size(32)));
#define V F(vec)
#define VC ((int64_t)(32 / (2 * sizeof(T)))) /* complex numbers per vector */
#define V4 ((int64_t)(64 / (2 * sizeof(T)))) /* four-step block width */
#define AI static inline __attribute__((always_inline))

/* ---- vector helpers -------------------------------------------------------
 */

AI V F(ld)(const T *p) {
  V v;
  memcpy(&v, p, sizeof v);
  return v;
}
AI void F(st)(T *p, V v) { memcpy(p, &v, sizeof v); }
AI V F(bc)(T x) {
  V v = {0};
  return v + x;
}
/* a * w, w broadcast as wr = {re...} and wis = {-im, im, ...}. */
AI V F(cmulb)(V a, V wr, V wis) { return a * wr + FFT_SWAP(a) * wis; }
/* Elementwise complex product. */
AI V F(cmul)(V a, V w) {
  return a * FFT_DUPRE(w) + FFT_SWAP(a) * (FFT_DUPIM(w) * FFT_SGN);
}
AI V F(negi)(V a) { return FFT_SWAP(a) * FFT_CSGN; } /* -i * a */
AI V F(vconj)(V a) { return a * FFT_CSGN; }

/* ---- Stockham passes --------------------------------------------------------
 * Pass of radix r over sequences of current length L = r*m, stride s
 * (complex numbers, a multiple of VC): for p < m, q < s
 *   a_j = x[q + s*(p + j*m)],  y[q + s*(r*p + k)] = w^(p*k) * sum_j a_j
 *   * exp(-2*pi*i*j*k/r),  w = exp(-2*pi*i/L).
 * tw holds w^(p*k) as [m][r-1] complex numbers; the last pass (m == 1)
 * needs none. */

typedef struct {
  int r;
  int64_t m;
  T *tw; /* [m][r-1] complex; NULL when m == 1 */
  T *cs; /* odd r: [(r-1)/2][(r-1)/2] (cos, sin) of 2*pi*j*k/r */
} F(pass);

AI void F(p2b)(const T *restrict x, T *restrict y, int64_t s, int64_t m,
               const T *tw, bool tw_on) {
  const int64_t S = 2 * s, W = 2 * VC;
  for (int64_t p = 0; p < m; p++) {
    const T *x0 = x + S * p, *x1 = x0 + S * m;
    T *y0 = y + 2 * S * p, *y1 = y0 + S;
    V wr = F(bc)(1), wi = F(bc)(0);
    if (tw_on) {
      wr = F(bc)(tw[2 * p]);
      wi = F(bc)(tw[2 * p + 1]) * FFT_SGN;
    }
    for (int64_t q = 0; q < S; q += W) {
      V a = F(ld)(x0 + q), b = F(ld)(x1 + q);
      F(st)(y0 + q, a + b);
      V d = a - b;
      F(st)(y1 + q, tw_on ? F(cmulb)(d, wr, wi) : d);
    }
  }
}
EM_CLONES static void F(pass2)(const T *x, T *y, int64_t s, int64_t m,
                               const T *tw) {
  if (m == 1)
    F(p2b)(x, y, s, m, tw, false);
  else
    F(p2b)(x, y, s, m, tw, true);
}

AI void F(p4b)(const T *restrict x, T *restrict y, int64_t s, int64_t m,
               const T *tw, bool tw_on) {
  const int64_t S = 2 * s, W = 2 * VC;
  for (int64_t p = 0; p < m; p++) {
    const T *x0 = x + S * p, *x1 = x0 + S * m, *x2 = x1 + S * m,
            *x3 = x2 + S * m;
    T *y0 = y + 4 * S * p, *y1 = y0 + S, *y2 = y1 + S, *y3 = y2 + S;
    V w1r = F(bc)(1), w1i = F(bc)(0), w2r = w1r, w2i = w1i, w3r = w1r,
      w3i = w1i;
    if (tw_on) {
      const T *w = tw + 6 * p;
      w1r = F(bc)(w[0]);
      w1i = F(bc)(w[1]) * FFT_SGN;
      w2r = F(bc)(w[2]);
      w2i = F(bc)(w[3]) * FFT_SGN;
      w3r = F(bc)(w[4]);
      w3i = F(bc)(w[5]) * FFT_SGN;
    }
    for (int64_t q = 0; q < S; q += W) {
      V a0 = F(ld)(x0 + q), a1 = F(ld)(x1 + q), a2 = F(ld)(x2 + q),
        a3 = F(ld)(x3 + q);
      V t0 = a0 + a2, t1 = a0 - a2, t2 = a1 + a3, t3 = F(negi)(a1 - a3);
      V b0 = t0 + t2, b1 = t1 + t3, b2 = t0 - t2, b3 = t1 - t3;
      F(st)(y0 + q, b0);
      if (tw_on) {
        F(st)(y1 + q, F(cmulb)(b1, w1r, w1i));
        F(st)(y2 + q, F(cmulb)(b2, w2r, w2i));
        F(st)(y3 + q, F(cmulb)(b3, w3r, w3i));
      } else {
        F(st)(y1 + q, b1);
        F(st)(y2 + q, b2);
        F(st)(y3 + q, b3);
      }
    }
  }
}
EM_CLONES static void F(pass4)(const T *x, T *y, int64_t s, int64_t m,
                               const T *tw) {
  if (m == 1)
    F(p4b)(x, y, s, m, tw, false);
  else
    F(p4b)(x, y, s, m, tw, true);
}

/* Radix 8: two radix-2 stages around a radix-4 butterfly,
 * b_k = sum_j a_j e^(-2 pi i jk/8). */
AI void F(p8b)(const T *restrict x, T *restrict y, int64_t s, int64_t m,
               const T *tw, bool tw_on) {
  const int64_t S = 2 * s, W = 2 * VC;
  const T h = (T)0.70710678118654752440084436210484903928;
  for (int64_t p = 0; p < m; p++) {
    const T *xp = x + S * p;
    T *yp = y + 8 * S * p;
    V wr[8], wi[8];
    if (tw_on) {
      const T *w = tw + 14 * p;
      for (int k = 1; k < 8; k++) {
        wr[k] = F(bc)(w[2 * (k - 1)]);
        wi[k] = F(bc)(w[2 * (k - 1) + 1]) * FFT_SGN;
      }
    }
    for (int64_t q = 0; q < S; q += W) {
      V a[8];
      for (int j = 0; j < 8; j++) a[j] = F(ld)(xp + S * m * j + q);
      /* stage 1: radix 2 between j and j+4, twiddles e^(-2 pi i j/8) */
      V u[8];
      for (int j = 0; j < 4; j++) {
        u[j] = a[j] + a[j + 4];
        u[j + 4] = a[j] - a[j + 4];
      }
      /* u5 *= e^(-i pi/4), u6 *= -i, u7 *= e^(-3 i pi/4) */
      u[5] = (u[5] + F(negi)(u[5])) * h;
      u[6] = F(negi)(u[6]);
      u[7] = (F(negi)(u[7]) - u[7]) * h;
      /* two radix-4 butterflies: on u0..3 (even outputs), u4..7 (odd) */
      V b[8];
      for (int g = 0; g < 2; g++) {
        V *c = u + 4 * g;
        V t0 = c[0] + c[2], t1 = c[0] - c[2], t2 = c[1] + c[3],
          t3 = F(negi)(c[1] - c[3]);
        b[g + 0] = t0 + t2;
        b[g + 2] = t1 + t3;
        b[g + 4] = t0 - t2;
        b[g + 6] = t1 - t3;
      }
      F(st)(yp + q, b[0]);
      for (int k = 1; k < 8; k++)
        F(st)(yp + S * k + q, tw_on ? F(cmulb)(b[k], wr[k], wi[k]) : b[k]);
    }
  }
}
EM_CLONES static void F(pass8)(const T *x, T *y, int64_t s, int64_t m,
                               const T *tw) {
  if (m == 1)
    F(p8b)(x, y, s, m, tw, false);
  else
    F(p8b)(x, y, s, m, tw, true);
}

/* Odd radix r: b_0 = sum a_j; for k = 1..h (h = (r-1)/2), with
 * s_j = a_j + a_(r-j) and d_j = a_j - a_(r-j):
 *   b_k, b_(r-k) = a_0 + sum_j s_j cos(2 pi jk/r) -/+ i sum_j d_j sin(...). */
#define FFT_MAXH 30 /* radices up to 61 */
AI void F(pob)(const T *restrict x, T *restrict y, int64_t s, int64_t m,
               const T *tw, const T *cs, int r, bool tw_on) {
  const int64_t S = 2 * s, W = 2 * VC;
  const int h = (r - 1) / 2;
  for (int64_t p = 0; p < m; p++) {
    const T *xp = x + S * p;
    T *yp = y + (int64_t)r * S * p;
    V wr[2 * FFT_MAXH + 1], wi[2 * FFT_MAXH + 1];
    if (tw_on) {
      const T *w = tw + 2 * (r - 1) * p;
      for (int k = 1; k < r; k++) {
        wr[k] = F(bc)(w[2 * (k - 1)]);
        wi[k] = F(bc)(w[2 * (k - 1) + 1]) * FFT_SGN;
      }
    }
    for (int64_t q = 0; q < S; q += W) {
      V a0 = F(ld)(xp + q), b0 = a0;
      V sp[FFT_MAXH], dm[FFT_MAXH];
      for (int j = 1; j <= h; j++) {
        V aj = F(ld)(xp + S * m * j + q), ak = F(ld)(xp + S * m * (r - j) + q);
        sp[j - 1] = aj + ak;
        dm[j - 1] = aj - ak;
        b0 += sp[j - 1];
      }
      F(st)(yp + q, b0);
      for (int k = 1; k <= h; k++) {
        const T *c = cs + 2 * (k - 1) * h;
        V re = a0, im = F(bc)(0);
        for (int j = 0; j < h; j++) {
          re += sp[j] * c[2 * j];
          im += dm[j] * c[2 * j + 1];
        }
        V t = F(negi)(im);
        V bk = re + t, bn = re - t;
        if (tw_on) {
          bk = F(cmulb)(bk, wr[k], wi[k]);
          bn = F(cmulb)(bn, wr[r - k], wi[r - k]);
        }
        F(st)(yp + S * k + q, bk);
        F(st)(yp + S * (r - k) + q, bn);
      }
    }
  }
}
#define FFT_ODD_PASS(R)                                                    \
  EM_CLONES static void F(pass##R)(const T *x, T *y, int64_t s, int64_t m, \
                                   const T *tw, const T *cs) {             \
    if (m == 1)                                                            \
      F(pob)(x, y, s, m, tw, cs, R, false);                                \
    else                                                                   \
      F(pob)(x, y, s, m, tw, cs, R, true);                                 \
  }
FFT_ODD_PASS(3)
FFT_ODD_PASS(5)
FFT_ODD_PASS(7)
#undef FFT_ODD_PASS
EM_CLONES static void F(passg)(const T *x, T *y, int64_t s, int64_t m,
                               const T *tw, const T *cs, int r) {
  if (m == 1)
    F(pob)(x, y, s, m, tw, cs, r, false);
  else
    F(pob)(x, y, s, m, tw, cs, r, true);
}

/* ---- pointwise helpers ------------------------------------------------------
 */

/* x[i] *= w[i] over cnt complex numbers (cnt a multiple of VC). */
EM_CLONES static void F(vmul)(T *x, const T *w, int64_t cnt) {
  for (int64_t i = 0; i < 2 * cnt; i += 2 * VC)
    F(st)(x + i, F(cmul)(F(ld)(x + i), F(ld)(w + i)));
}

/* Rows of a lane buffer [rows][v] against one complex factor per row:
 * mode 0: a*w; 1: conj(a*w); 2: w*conj(a). */
EM_CLONES static void F(rowmul)(T *x, const T *w, int64_t rows, int64_t v,
                                int mode) {
  for (int64_t j = 0; j < rows; j++) {
    V wr = F(bc)(w[2 * j]), wi = F(bc)(w[2 * j + 1]) * FFT_SGN;
    T *r = x + 2 * j * v;
    for (int64_t c = 0; c < 2 * v; c += 2 * VC) {
      V a = F(ld)(r + c);
      if (mode == 2) a = F(vconj)(a);
      a = F(cmulb)(a, wr, wi);
      if (mode == 1) a = F(vconj)(a);
      F(st)(r + c, a);
    }
  }
}

/* Copies cnt complex numbers, conjugating and scaling on request. */
static void F(put)(T *restrict o, const T *restrict x, int64_t cnt, bool cj,
                   T scale) {
  if (!cj && scale == 1) {
    memcpy(o, x, (size_t)cnt * 2 * sizeof(T));
    return;
  }
  T si = cj ? -scale : scale;
  for (int64_t i = 0; i < cnt; i++) {
    o[2 * i] = x[2 * i] * scale;
    o[2 * i + 1] = x[2 * i + 1] * si;
  }
}

/* ---- plans --------------------------------------------------------------- */

typedef struct F(plan) {
  int64_t n;
  /* direct Stockham passes (lane buffers) */
  bool direct;
  int np;
  F(pass) ps[FFT_MAXF];
  /* four-step: n = n1 * n2, columns of n1 then rows of n2 */
  bool fourstep;
  int64_t n1, n2;
  struct F(plan) * p1, *p2;
  T *tw4; /* [ceil(n2/V4)][n1][V4] twiddles w_n^(j2*k1) */
  /* Bluestein: chirp z-transform through a smooth length m >= 2n-1 */
  bool blue;
  int64_t m;
  struct F(plan) * pm;
  T *chirp; /* [n] exp(-i pi j^2/n) */
  T *kern;  /* [m] FFT of the conjugate chirp, divided by m */
  /* real transforms of length rn = 2n: w_rn^k, k <= n */
  int64_t rn;
  T *rtw;
} F(plan);

static F(plan) * F(plan_create)(int64_t n);

static void F(plan_free)(F(plan) * pl) {
  if (!pl) return;
  for (int i = 0; i < pl->np; i++) {
    free(pl->ps[i].tw);
    free(pl->ps[i].cs);
  }
  F(plan_free)(pl->p1);
  F(plan_free)(pl->p2);
  F(plan_free)(pl->pm);
  free(pl->tw4);
  free(pl->chirp);
  free(pl->kern);
  free(pl->rtw);
  free(pl);
}

static T *F(talloc)(int64_t ncomplex) {
  return fft_alloc((size_t)ncomplex * 2 * sizeof(T));
}

static bool F(build_direct)(F(plan) * pl) {
  int f[FFT_MAXF];
  int nf = fft_factor(pl->n, f);
  if (nf < 0) return false;
  fft_roots rg;
  if (!fft_roots_init(&rg, pl->n)) return false;
  int64_t L = pl->n, P = 1;
  bool ok = true;
  pl->np = nf;
  for (int i = 0; i < nf && ok; i++) {
    F(pass) *ps = &pl->ps[i];
    int r = f[i];
    int64_t m = L / r;
    ps->r = r;
    ps->m = m;
    if (m > 1) {
      ps->tw = F(talloc)(m * (r - 1));
      if (!ps->tw) {
        ok = false;
        break;
      }
      for (int64_t p = 0; p < m; p++)
        for (int k = 1; k < r; k++) {
          double re, im;
          fft_roots_get(&rg, p * k * P, &re, &im);
          ps->tw[2 * (p * (r - 1) + k - 1)] = (T)re;
          ps->tw[2 * (p * (r - 1) + k - 1) + 1] = (T)im;
        }
    }
    if (r % 2 == 1) {
      int h = (r - 1) / 2;
      ps->cs = F(talloc)((int64_t)h * h > 0 ? (int64_t)h * h : 1);
      if (!ps->cs) {
        ok = false;
        break;
      }
      for (int k = 1; k <= h; k++)
        for (int j = 1; j <= h; j++) {
          double re, im;
          fft_unit_root((int64_t)(j * k % r), r, &re, &im);
          ps->cs[2 * ((k - 1) * h + j - 1)] = (T)re;
          ps->cs[2 * ((k - 1) * h + j - 1) + 1] = (T)-im;
        }
    }
    L = m;
    P *= r;
  }
  fft_roots_free(&rg);
  pl->direct = ok;
  return ok;
}

static F(plan) * F(plan_direct)(int64_t n) {
  F(plan) *pl = calloc(1, sizeof *pl);
  if (!pl) return NULL;
  pl->n = n;
  if (!F(build_direct)(pl)) {
    F(plan_free)(pl);
    return NULL;
  }
  return pl;
}

static bool F(build_fourstep)(F(plan) * pl, int64_t n1) {
  int64_t n = pl->n, n2 = n / n1, v = V4;
  pl->n1 = n1;
  pl->n2 = n2;
  pl->p1 = F(plan_direct)(n1);
  pl->p2 = F(plan_direct)(n2);
  if (!pl->p1 || !pl->p2) return false;
  int64_t nb = (n2 + v - 1) / v;
  pl->tw4 = F(talloc)(nb * n1 * v);
  if (!pl->tw4) return false;
  fft_roots rg;
  if (!fft_roots_init(&rg, n)) return false;
  for (int64_t b = 0; b < nb; b++)
    for (int64_t k1 = 0; k1 < n1; k1++)
      for (int64_t c = 0; c < v; c++) {
        int64_t j2 = b * v + c;
        double re = 0, im = 0;
        if (j2 < n2) fft_roots_get(&rg, j2 * k1, &re, &im);
        T *w = pl->tw4 + 2 * ((b * n1 + k1) * v + c);
        w[0] = (T)re;
        w[1] = (T)im;
      }
  fft_roots_free(&rg);
  pl->fourstep = true;
  return true;
}

#if FFT_IS_DOUBLE
static int64_t F(row_scratch)(const F(plan) * pl, int nt);
static void F(exec_row)(const F(plan) * pl, const T *in, int64_t in_len, T *out,
                        bool cj_in, bool cj_out, T scale, T *scr);
/* In-place forward FFT of m complex doubles (plan building only). */
static bool fft_kernel_dft(double *b, int64_t m) {
  F(plan) *pl = F(plan_create)(m);
  if (!pl) return false;
  int64_t sc = F(row_scratch)(pl, em_parallel_threads());
  double *scr = F(talloc)(sc);
  if (!scr) {
    F(plan_free)(pl);
    return false;
  }
  F(exec_row)(pl, b, m, b, false, false, 1, scr);
  free(scr);
  F(plan_free)(pl);
  return true;
}
#endif

static bool F(build_blue)(F(plan) * pl) {
  int64_t n = pl->n, m = fft_good_size(2 * n - 1);
  pl->m = m;
  pl->pm = F(plan_create)(m);
  pl->chirp = F(talloc)(n);
  pl->kern = F(talloc)(m);
  double *b = fft_alloc((size_t)m * 2 * sizeof(double));
  fft_roots rg;
  bool ok = pl->pm && pl->chirp && pl->kern && b && fft_roots_init(&rg, 2 * n);
  if (!ok) {
    free(b);
    return false;
  }
  memset(b, 0, (size_t)m * 2 * sizeof(double));
  int64_t t = 0; /* j^2 mod 2n */
  for (int64_t j = 0; j < n; j++) {
    double re, im;
    fft_roots_get(&rg, t, &re, &im);
    pl->chirp[2 * j] = (T)re;
    pl->chirp[2 * j + 1] = (T)im;
    b[2 * j] = re; /* conj(chirp) */
    b[2 * j + 1] = -im;
    if (j > 0) {
      b[2 * (m - j)] = re;
      b[2 * (m - j) + 1] = -im;
    }
    t += 2 * j + 1;
    while (t >= 2 * n) t -= 2 * n;
  }
  fft_roots_free(&rg);
  ok = fft_kernel_dft(b, m);
  if (ok)
    for (int64_t k = 0; k < 2 * m; k++) pl->kern[k] = (T)(b[k] / (double)m);
  free(b);
  if (ok) pl->blue = true;
  return ok;
}

static F(plan) * F(plan_create)(int64_t n) {
  F(plan) *pl = calloc(1, sizeof *pl);
  if (!pl) return NULL;
  pl->n = n;
  bool ok = true;
  if (!fft_smooth(n)) {
    ok = F(build_blue)(pl);
  } else {
    int64_t n1 = n >= FFT_FS_MIN ? fft_split(n) : 1;
    if (n1 >= 2) ok = F(build_fourstep)(pl, n1);
    if (ok && (n <= FFT_DIRECT_MAX || !pl->fourstep)) ok = F(build_direct)(pl);
  }
  if (!ok) {
    F(plan_free)(pl);
    return NULL;
  }
  return pl;
}

/* A plan for real transforms of length rn: the complex plan of the core
 * length (rn/2 when rn is even, else rn) and, when even, w_rn^k. */
static F(plan) * F(plan_create_real)(int64_t rn) {
  int64_t core = rn % 2 == 0 ? rn / 2 : rn;
  F(plan) *pl = F(plan_create)(core);
  if (!pl || rn % 2 == 1) return pl;
  pl->rn = rn;
  pl->rtw = F(talloc)(core + 1);
  fft_roots rg;
  if (!pl->rtw || !fft_roots_init(&rg, rn)) {
    F(plan_free)(pl);
    return NULL;
  }
  for (int64_t k = 0; k <= core; k++) {
    double re, im;
    fft_roots_get(&rg, k, &re, &im);
    pl->rtw[2 * k] = (T)re;
    pl->rtw[2 * k + 1] = (T)im;
  }
  fft_roots_free(&rg);
  return pl;
}

/* ---- execution on lane buffers ----------------------------------------- */

static T *F(run_direct)(const F(plan) * pl, T *x, T *y, int64_t v) {
  int64_t s = v;
  for (int i = 0; i < pl->np; i++) {
    const F(pass) *ps = &pl->ps[i];
    switch (ps->r) {
      case 2:
        F(pass2)(x, y, s, ps->m, ps->tw);
        break;
      case 3:
        F(pass3)(x, y, s, ps->m, ps->tw, ps->cs);
        break;
      case 4:
        F(pass4)(x, y, s, ps->m, ps->tw);
        break;
      case 5:
        F(pass5)(x, y, s, ps->m, ps->tw, ps->cs);
        break;
      case 7:
        F(pass7)(x, y, s, ps->m, ps->tw, ps->cs);
        break;
      case 8:
        F(pass8)(x, y, s, ps->m, ps->tw);
        break;
      default:
        F(passg)(x, y, s, ps->m, ps->tw, ps->cs, ps->r);
        break;
    }
    T *t = x;
    x = y;
    y = t;
    s *= ps->r;
  }
  return x;
}

static bool F(can_lanes)(const F(plan) * pl) {
  return pl->direct || (pl->blue && pl->pm->direct);
}
/* Complex numbers per lane of the lane buffers exec_lanes needs. */
static int64_t F(lane_len)(const F(plan) * pl) {
  return pl->blue ? pl->m : pl->n;
}

/* Transforms the v sequences loaded into the first n rows of x ([len][v]
 * buffers x, y, len = lane_len); returns the buffer holding the result. */
static T *F(exec_lanes)(const F(plan) * pl, T *x, T *y, int64_t v) {
  if (!pl->blue) return F(run_direct)(pl, x, y, v);
  int64_t n = pl->n, m = pl->m;
  F(rowmul)(x, pl->chirp, n, v, 0);
  memset(x + 2 * n * v, 0, (size_t)((m - n) * v) * 2 * sizeof(T));
  T *r = F(run_direct)(pl->pm, x, y, v);
  F(rowmul)(r, pl->kern, m, v, 1);
  T *r2 = F(run_direct)(pl->pm, r, r == x ? y : x, v);
  F(rowmul)(r2, pl->chirp, n, v, 2);
  return r2;
}

/* ---- execution on single rows -------------------------------------------- */

typedef struct {
  const F(plan) * pl;
  const T *in;
  int64_t in_len;
  T *out, *z, *scr;
  int64_t per; /* T elements of scratch per thread */
  bool cj_in, cj_out;
  T scale;
} F(fs_ctx);

/* Row pitch of the four-step intermediate: padded so that its rows do
 * not all fall into the same cache sets. */
static int64_t F(fs_pitch)(const F(plan) * pl) { return pl->n2 + V4; }

/* Four-step, step 1: FFTs of length n1 down the columns j2 (n2 of them, V4
 * at a time), times w_n^(j2*k1), into z[k1][j2]. */
static void F(fs_cols)(void *vc, int64_t b0, int64_t b1, int tid) {
  const F(fs_ctx) *c = vc;
  const F(plan) *pl = c->pl;
  const int64_t n1 = pl->n1, n2 = pl->n2, v = V4, zp = F(fs_pitch)(pl);
  const size_t line = (size_t)V4 * 2 * sizeof(T); /* one block row: 64 B */
  T *A = c->scr + tid * c->per, *B = A + 2 * n1 * v;
  for (int64_t b = b0; b < b1; b++) {
    int64_t j2 = b * v, vb = n2 - j2 < v ? n2 - j2 : v;
    bool fast = vb == v && !c->cj_in && c->in_len >= n2 * (n1 - 1) + j2 + v;
    if (fast) {
      const T *src = c->in + 2 * j2;
      for (int64_t j1 = 0; j1 < n1; j1++) {
        if (j1 + FFT_PF < n1)
          __builtin_prefetch(src + 2 * n2 * (j1 + FFT_PF), 0, 0);
        memcpy(A + 2 * j1 * v, src + 2 * n2 * j1, line);
      }
    } else {
      for (int64_t j1 = 0; j1 < n1; j1++) {
        T *d = A + 2 * j1 * v;
        int64_t base = n2 * j1 + j2, cnt = c->in_len - base;
        cnt = cnt < 0 ? 0 : cnt > vb ? vb : cnt;
        if (cnt > 0) F(put)(d, c->in + 2 * base, cnt, c->cj_in, 1);
        if (cnt < v) memset(d + 2 * cnt, 0, (size_t)(v - cnt) * 2 * sizeof(T));
      }
    }
    T *R = F(run_direct)(pl->p1, A, B, v);
    F(vmul)(R, pl->tw4 + 2 * b * n1 * v, n1 * v);
    if (vb == v)
      for (int64_t k1 = 0; k1 < n1; k1++)
        memcpy(c->z + 2 * (k1 * zp + j2), R + 2 * k1 * v, line);
    else
      for (int64_t k1 = 0; k1 < n1; k1++)
        memcpy(c->z + 2 * (k1 * zp + j2), R + 2 * k1 * v,
               (size_t)vb * 2 * sizeof(T));
  }
}

/* Step 2: FFTs of length n2 along the rows k1 of z (V4 at a time), into
 * out[k1 + n1*k2]. */
static void F(fs_rows)(void *vc, int64_t b0, int64_t b1, int tid) {
  const F(fs_ctx) *c = vc;
  const F(plan) *pl = c->pl;
  const int64_t n1 = pl->n1, n2 = pl->n2, v = V4, zp = F(fs_pitch)(pl);
  const size_t line = (size_t)V4 * 2 * sizeof(T);
  T *A = c->scr + tid * c->per, *B = A + 2 * n2 * v;
  for (int64_t b = b0; b < b1; b++) {
    int64_t k1 = b * v, vb = n1 - k1 < v ? n1 - k1 : v;
    if (vb < v) memset(A, 0, (size_t)(n2 * v) * 2 * sizeof(T));
    for (int64_t cc = 0; cc < vb; cc++) {
      const T *zr = c->z + 2 * (k1 + cc) * zp;
      T *d = A + 2 * cc;
      for (int64_t j2 = 0; j2 < n2; j2++) {
        d[2 * j2 * v] = zr[2 * j2];
        d[2 * j2 * v + 1] = zr[2 * j2 + 1];
      }
    }
    T *R = F(run_direct)(pl->p2, A, B, v);
    if (vb == v && !c->cj_out && c->scale == 1)
      for (int64_t k2 = 0; k2 < n2; k2++)
        memcpy(c->out + 2 * (k1 + n1 * k2), R + 2 * k2 * v, line);
    else
      for (int64_t k2 = 0; k2 < n2; k2++)
        F(put)
        (c->out + 2 * (k1 + n1 * k2), R + 2 * k2 * v, vb, c->cj_out, c->scale);
  }
}

static int64_t F(row_scratch)(const F(plan) * pl, int nt) {
  if (pl->fourstep) {
    int64_t mx = pl->n1 > pl->n2 ? pl->n1 : pl->n2;
    return pl->n1 * F(fs_pitch)(pl) + (int64_t)nt * 2 * mx * V4;
  }
  if (pl->blue) return 2 * pl->m + F(row_scratch)(pl->pm, nt);
  return 2 * pl->n * VC;
}

typedef struct {
  const F(plan) * pl;
  const T *in;
  int64_t in_len;
  T *a, *out;
  bool cj_in, cj_out;
  T scale;
  int step;
} F(bs_ctx);

/* Bluestein's pointwise steps over [b0, b1). */
static void F(bs_range)(void *vc, int64_t b0, int64_t b1, int tid) {
  (void)tid;
  const F(bs_ctx) *c = vc;
  const T *ch = c->pl->chirp, *K = c->pl->kern;
  T *a = c->a;
  if (c->step == 0) { /* a = chirp * x, zero-padded to m */
    for (int64_t j = b0; j < b1; j++) {
      T xr = 0, xi = 0;
      if (j < c->in_len) {
        xr = c->in[2 * j];
        xi = c->cj_in ? -c->in[2 * j + 1] : c->in[2 * j + 1];
      }
      if (j >= c->pl->n) xr = xi = 0;
      T wr = j < c->pl->n ? ch[2 * j] : 0,
        wi = j < c->pl->n ? ch[2 * j + 1] : 0;
      a[2 * j] = xr * wr - xi * wi;
      a[2 * j + 1] = xr * wi + xi * wr;
    }
  } else if (c->step == 1) { /* a = conj(a * kern) */
    for (int64_t j = b0; j < b1; j++) {
      T xr = a[2 * j], xi = a[2 * j + 1], wr = K[2 * j], wi = K[2 * j + 1];
      a[2 * j] = xr * wr - xi * wi;
      a[2 * j + 1] = -(xr * wi + xi * wr);
    }
  } else { /* out = chirp * conj(a) */
    T sr = c->scale, si = c->cj_out ? -c->scale : c->scale;
    for (int64_t j = b0; j < b1; j++) {
      T xr = a[2 * j], xi = -a[2 * j + 1], wr = ch[2 * j], wi = ch[2 * j + 1];
      c->out[2 * j] = (xr * wr - xi * wi) * sr;
      c->out[2 * j + 1] = (xr * wi + xi * wr) * si;
    }
  }
}

/* One transform of length n: in has in_len (<= n) numbers, zero-padded;
 * out gets n. in may equal out. */
static void F(exec_row)(const F(plan) * pl, const T *in, int64_t in_len, T *out,
                        bool cj_in, bool cj_out, T scale, T *scr) {
  const int64_t n = pl->n;
  if (pl->fourstep) {
    int64_t mx = pl->n1 > pl->n2 ? pl->n1 : pl->n2;
    F(fs_ctx)
    c = {.pl = pl,
         .in = in,
         .in_len = in_len,
         .out = out,
         .z = scr,
         .scr = scr + 2 * pl->n1 * F(fs_pitch)(pl),
         .per = 4 * mx * V4,
         .cj_in = cj_in,
         .cj_out = cj_out,
         .scale = scale};
    /* Parallel only when there is enough work per block. */
    int64_t g1 = n >= FFT_PAR_MIN ? 1 : INT64_MAX / 4;
    em_parallel_for((pl->n2 + V4 - 1) / V4, g1, F(fs_cols), &c);
    em_parallel_for((pl->n1 + V4 - 1) / V4, g1, F(fs_rows), &c);
    return;
  }
  if (pl->blue) {
    int64_t m = pl->m;
    T *a = scr, *b = scr + 2 * m, *rest = scr + 4 * m;
    F(bs_ctx)
    c = {.pl = pl,
         .in = in,
         .in_len = in_len,
         .a = a,
         .out = out,
         .cj_in = cj_in,
         .cj_out = cj_out,
         .scale = scale};
    int64_t g = m >= FFT_PAR_MIN ? 8192 : INT64_MAX / 4;
    c.step = 0;
    em_parallel_for(m, g, F(bs_range), &c);
    F(exec_row)(pl->pm, a, m, b, false, false, 1, rest);
    c.a = b;
    c.step = 1;
    em_parallel_for(m, g, F(bs_range), &c);
    F(exec_row)(pl->pm, b, m, a, false, false, 1, rest);
    c.a = a;
    c.step = 2;
    em_parallel_for(n, g, F(bs_range), &c);
    return;
  }
  /* direct only: one live lane of a VC-wide lane buffer */
  T *A = scr, *B = scr + 2 * n * VC;
  memset(A, 0, (size_t)(n * VC) * 2 * sizeof(T));
  for (int64_t j = 0; j < in_len; j++) {
    A[2 * j * VC] = in[2 * j];
    A[2 * j * VC + 1] = cj_in ? -in[2 * j + 1] : in[2 * j + 1];
  }
  T *R = F(run_direct)(pl, A, B, VC);
  for (int64_t j = 0; j < n; j++)
    F(put)(out + 2 * j, R + 2 * j * VC, 1, cj_out, scale);
}

/* ---- real-data pre/post processing --------------------------------------- */

/* rfft, even rn = 2h: from Z = FFT_h(x_even + i x_odd) (stride zs complex),
 * X_k = E_k + w^k O_k for k in [k0, k1) (k <= h), where
 * E_k = (Z_k + conj Z_(h-k))/2 and O_k = -i (Z_k - conj Z_(h-k))/2. */
static void F(r2c_post)(const T *Z, int64_t zs, T *out, int64_t h, const T *rtw,
                        int64_t k0, int64_t k1) {
  for (int64_t k = k0; k < k1; k++) {
    int64_t a = k == h ? 0 : k, b = k == 0 ? 0 : h - k;
    T zr = Z[2 * a * zs], zi = Z[2 * a * zs + 1];
    T cr = Z[2 * b * zs], ci = -Z[2 * b * zs + 1];
    T er = (zr + cr) * (T)0.5, ei = (zi + ci) * (T)0.5;
    T orr = (zi - ci) * (T)0.5, oi = (cr - zr) * (T)0.5;
    T wr = rtw[2 * k], wi = rtw[2 * k + 1];
    out[2 * k] = er + (orr * wr - oi * wi);
    out[2 * k + 1] = ei + (orr * wi + oi * wr);
  }
}

/* irfft, even rn = 2h: Z_k = E_k + i O_k for k in [k0, k1) (k < h) with
 * E_k = (X_k + conj X_(h-k))/2, O_k = w^-k (X_k - conj X_(h-k))/2; X has
 * avail valid entries (zeros after), the imaginary parts of X_0 and X_h
 * are ignored. Written conjugated (for the forward engine) at stride zs. */
static void F(c2r_pre)(const T *X, int64_t avail, T *Z, int64_t zs, int64_t h,
                       const T *rtw, int64_t k0, int64_t k1) {
  for (int64_t k = k0; k < k1; k++) {
    int64_t j = h - k;
    T ar = 0, ai = 0, br = 0, bi = 0;
    if (k < avail) {
      ar = X[2 * k];
      ai = k == 0 ? 0 : X[2 * k + 1];
    }
    if (j < avail) {
      br = X[2 * j];
      bi = j == h ? 0 : -X[2 * j + 1];
    }
    T er = (ar + br) * (T)0.5, ei = (ai + bi) * (T)0.5;
    T dr = (ar - br) * (T)0.5, di = (ai - bi) * (T)0.5;
    T wr = rtw[2 * k], wi = -rtw[2 * k + 1];
    T orr = dr * wr - di * wi, oi = dr * wi + di * wr;
    Z[2 * k * zs] = er - oi;
    Z[2 * k * zs + 1] = -(ei + orr);
  }
}

/* irfft, odd n: the full Hermitian spectrum from the first avail of the
 * (n+1)/2 inputs, conjugated, at stride zs. */
static void F(herm_fill)(const T *X, int64_t avail, T *Z, int64_t zs,
                         int64_t n) {
  int64_t m = n / 2 + 1;
  for (int64_t k = 0; k < n; k++) {
    int64_t j = k < m ? k : n - k;
    T re = 0, im = 0;
    if (j < avail) {
      re = X[2 * j];
      im = j == 0 ? 0 : X[2 * j + 1];
    }
    if (k >= m) im = -im;
    Z[2 * k * zs] = re;
    Z[2 * k * zs + 1] = -im;
  }
}

/* ---- drivers ------------------------------------------------------------- */

typedef struct {
  const F(plan) * pl;
  int op;     /* FFT_C2C, FFT_R2C, FFT_C2R */
  bool inv;   /* C2C only */
  int64_t n;  /* logical length */
  int64_t nc; /* core complex length */
  const T *in;
  int64_t L; /* input row length (complex; real for R2C) */
  T *out;
  int64_t Lo; /* output row length (complex; real for C2R) */
  int64_t R, v;
  T *scr;
  int64_t per; /* T elements of scratch per thread */
  /* row mode */
  const T *zin;
  T *zout;
  int64_t avail;
} F(drv);

static void F(load_lane)(const F(drv) * d, T *A, int64_t row, int64_t c) {
  const int64_t v = d->v, n = d->n;
  T *a = A + 2 * c;
  switch (d->op) {
    case FFT_C2C: {
      const T *x = d->in + 2 * row * d->L;
      int64_t cnt = d->L < n ? d->L : n;
      T si = d->inv ? -1 : 1;
      for (int64_t j = 0; j < cnt; j++) {
        a[2 * j * v] = x[2 * j];
        a[2 * j * v + 1] = si * x[2 * j + 1];
      }
      for (int64_t j = cnt; j < n; j++) a[2 * j * v] = a[2 * j * v + 1] = 0;
      break;
    }
    case FFT_R2C: {
      const T *x = d->in + row * d->L;
      int64_t cnt = d->L < n ? d->L : n;
      if (n % 2 == 0) {
        for (int64_t j = 0; j < d->nc; j++) {
          a[2 * j * v] = 2 * j < cnt ? x[2 * j] : 0;
          a[2 * j * v + 1] = 2 * j + 1 < cnt ? x[2 * j + 1] : 0;
        }
      } else {
        for (int64_t j = 0; j < n; j++) {
          a[2 * j * v] = j < cnt ? x[j] : 0;
          a[2 * j * v + 1] = 0;
        }
      }
      break;
    }
    default: { /* FFT_C2R */
      const T *x = d->in + 2 * row * d->L;
      int64_t m = n / 2 + 1, avail = d->L < m ? d->L : m;
      if (n % 2 == 0)
        F(c2r_pre)(x, avail, a, v, d->nc, d->pl->rtw, 0, d->nc);
      else
        F(herm_fill)(x, avail, a, v, n);
      break;
    }
  }
}

static void F(store_lane)(const F(drv) * d, const T *res, int64_t row,
                          int64_t c) {
  const int64_t v = d->v, n = d->n;
  const T *a = res + 2 * c;
  switch (d->op) {
    case FFT_C2C: {
      T *o = d->out + 2 * row * n;
      T sr = d->inv ? (T)(1.0 / (double)n) : 1, si = d->inv ? -sr : sr;
      for (int64_t j = 0; j < n; j++) {
        o[2 * j] = a[2 * j * v] * sr;
        o[2 * j + 1] = a[2 * j * v + 1] * si;
      }
      break;
    }
    case FFT_R2C: {
      T *o = d->out + 2 * row * d->Lo;
      if (n % 2 == 0)
        F(r2c_post)(a, v, o, d->nc, d->pl->rtw, 0, d->nc + 1);
      else
        for (int64_t k = 0; k < d->Lo; k++) {
          o[2 * k] = a[2 * k * v];
          o[2 * k + 1] = a[2 * k * v + 1];
        }
      break;
    }
    default: { /* FFT_C2R: the engine's output is conjugated */
      T *o = d->out + row * n;
      if (n % 2 == 0) {
        T s = (T)(1.0 / (double)d->nc);
        for (int64_t j = 0; j < d->nc; j++) {
          o[2 * j] = a[2 * j * v] * s;
          o[2 * j + 1] = -a[2 * j * v + 1] * s;
        }
      } else {
        T s = (T)(1.0 / (double)n);
        for (int64_t j = 0; j < n; j++) o[j] = a[2 * j * v] * s;
      }
      break;
    }
  }
}

static void F(lanes_range)(void *vc, int64_t g0, int64_t g1, int tid) {
  const F(drv) *d = vc;
  const int64_t v = d->v, len = F(lane_len)(d->pl);
  T *A = d->scr + tid * d->per, *B = A + 2 * len * v;
  for (int64_t g = g0; g < g1; g++) {
    int64_t r0 = g * v, vg = d->R - r0 < v ? d->R - r0 : v;
    if (vg < v) memset(A, 0, (size_t)(d->nc * v) * 2 * sizeof(T));
    for (int64_t c = 0; c < vg; c++) F(load_lane)(d, A, r0 + c, c);
    T *res = F(exec_lanes)(d->pl, A, B, v);
    for (int64_t c = 0; c < vg; c++) F(store_lane)(d, res, r0 + c, c);
  }
}

/* Row-mode pre/post processing, split over threads for long rows. */
static void F(row_pp)(void *vc, int64_t k0, int64_t k1, int tid) {
  (void)tid;
  const F(drv) *d = vc;
  if (d->op == FFT_R2C)
    F(r2c_post)(d->zout, 1, d->out, d->nc, d->pl->rtw, k0, k1);
  else
    F(c2r_pre)(d->zin, d->avail, (T *)d->out, 1, d->nc, d->pl->rtw, k0, k1);
}

static void F(run_row)(F(drv) * d, int64_t r, T *tin, T *tout, T *ex) {
  const F(plan) *pl = d->pl;
  const int64_t n = d->n, nc = d->nc;
  int64_t g = nc >= FFT_PAR_MIN ? 8192 : INT64_MAX / 4;
  switch (d->op) {
    case FFT_C2C: {
      T s = d->inv ? (T)(1.0 / (double)n) : 1;
      F(exec_row)
      (pl, d->in + 2 * r * d->L, d->L < n ? d->L : n, d->out + 2 * r * n,
       d->inv, d->inv, s, ex);
      break;
    }
    case FFT_R2C: {
      const T *x = d->in + r * d->L;
      T *o = d->out + 2 * r * d->Lo;
      int64_t cnt = d->L < n ? d->L : n;
      const T *core = x;
      if (n % 2 == 1) {
        for (int64_t j = 0; j < n; j++) {
          tin[2 * j] = j < cnt ? x[j] : 0;
          tin[2 * j + 1] = 0;
        }
        F(exec_row)(pl, tin, n, tout, false, false, 1, ex);
        memcpy(o, tout, (size_t)d->Lo * 2 * sizeof(T));
        break;
      }
      if (cnt < n) {
        memcpy(tin, x, (size_t)cnt * sizeof(T));
        memset(tin + cnt, 0, (size_t)(n - cnt) * sizeof(T));
        core = tin;
      }
      F(exec_row)(pl, core, nc, tout, false, false, 1, ex);
      F(drv) dd = *d;
      dd.zout = tout;
      dd.out = o;
      em_parallel_for(nc + 1, g, F(row_pp), &dd);
      break;
    }
    default: { /* FFT_C2R */
      const T *x = d->in + 2 * r * d->L;
      T *o = d->out + r * n;
      int64_t m = n / 2 + 1, avail = d->L < m ? d->L : m;
      if (n % 2 == 1) {
        F(herm_fill)(x, avail, tin, 1, n);
        F(exec_row)(pl, tin, n, tout, false, false, 1, ex);
        T s = (T)(1.0 / (double)n);
        for (int64_t j = 0; j < n; j++) o[j] = tout[2 * j] * s;
        break;
      }
      F(drv) dd = *d;
      dd.zin = x;
      dd.avail = avail;
      dd.out = tin;
      em_parallel_for(nc, g, F(row_pp), &dd);
      F(exec_row)(pl, tin, nc, o, false, true, (T)(1.0 / (double)nc), ex);
      break;
    }
  }
}

/* Runs R rows: in rows of L, out rows of Lo (see F(drv)). */
static em_status F(fft_run)(int op, bool inv, int64_t n, const T *in, int64_t L,
                            T *out, int64_t Lo, int64_t R, em_device dev,
                            const char *name) {
  if (R == 0 || n == 0) return EM_OK;
  em_status st = EM_OK;
  F(plan) *pl = fft_plan_acquire(FFT_IS_DOUBLE, op != FFT_C2C, n, name, &st);
  if (!pl) return st;
  int64_t nc = pl->n;
  F(drv)
  d = {.pl = pl,
       .op = op,
       .inv = inv,
       .n = n,
       .nc = nc,
       .in = in,
       .L = L,
       .out = out,
       .Lo = Lo,
       .R = R};
  int nt = em_parallel_threads();
  const int64_t csz = 2 * (int64_t)sizeof(T);
  bool lanes = F(can_lanes)(pl) &&
               F(lane_len)(pl) * VC * csz <= FFT_LANES_MAX_BYTES &&
               (R >= VC || !(pl->fourstep || pl->blue));
  size_t bytes;
  if (lanes) {
    int64_t len = F(lane_len)(pl), v = VC;
    /* wider lane groups for short rows, while they stay in cache and
     * leave a group for every thread */
    int64_t per_thread = (R + nt - 1) / nt;
    while (v < 64 && len * v < 2048 && len * 2 * v * csz * 2 <= 256 * 1024 &&
           2 * v <= ((per_thread + VC - 1) / VC) * VC)
      v *= 2;
    d.v = v;
    d.per = 2 * (2 * len * v);
    bytes = (size_t)(d.per * nt) * sizeof(T);
  } else {
    d.per = 4 * nc + 2 * F(row_scratch)(pl, nt);
    bytes = (size_t)d.per * sizeof(T);
  }
  d.scr = em_alloc(dev, bytes, &st);
  if (!d.scr) {
    fft_plan_release(pl, FFT_IS_DOUBLE);
    return em_fail(EM_ERR_OOM,
                   "[%s] out of memory for %zu bytes of scratch (length %lld)",
                   name, bytes, (long long)n);
  }
  if (lanes) {
    int64_t groups = (R + d.v - 1) / d.v;
    em_parallel_for(groups, 1, F(lanes_range), &d);
  } else {
    T *tin = d.scr, *tout = d.scr + 2 * nc, *ex = d.scr + 4 * nc;
    for (int64_t r = 0; r < R; r++) F(run_row)(&d, r, tin, tout, ex);
  }
  em_free(dev, d.scr, bytes);
  fft_plan_release(pl, FFT_IS_DOUBLE);
  return EM_OK;
}

#undef T
#undef V
#undef VC
#undef V4
#undef AI
#undef F
#undef FFT_C1_
#undef FFT_C2_
