/* mnist_train.c — trains a 784-128-10 MLP on real handwritten digits,
 * entirely through Emily's public C API on the CPU.
 *
 *   mnist_train DATA [--epochs N] [--min-acc A] [--batch B] [--lr LR]
 *
 * DATA is the file written by scripts/prepare_digits.py:
 *   "EMDG", u32 n, u32 rows, u32 cols (little-endian),
 *   n*rows*cols u8 pixels (0..255), then n u8 labels (0..9).
 * The samples are shuffled with a fixed seed and split 80/20 into train
 * and test sets. The model: relu(x W1 + b1) W2 + b2, softmax
 * cross-entropy, a hand-written backward pass built from engine ops, SGD
 * with momentum. Exits 1 if the final test accuracy is below --min-acc
 * (default 0), 2 on bad arguments or data, 3 on an engine error. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emily.h"

/* ---- error handling and scoped temporaries ----------------------------- */

#define CK(call)                                                            \
  do {                                                                      \
    em_status st_ = (call);                                                 \
    if (st_ != EM_OK) {                                                     \
      fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__,     \
              #call, em_status_name(st_), em_last_error());                 \
      goto fail;                                                            \
    }                                                                       \
  } while (0)

/* Temporaries of one graph: released together when it has been run. */
#define SCOPE_MAX 96
typedef struct {
  em_array *a[SCOPE_MAX];
  int n;
} scope;

/* A fresh NULL slot to receive an op's result (owned by the scope). */
static em_array **slot(scope *s) {
  if (s->n == SCOPE_MAX) {
    fprintf(stderr, "scope overflow\n");
    abort();
  }
  s->a[s->n] = NULL;
  return &s->a[s->n++];
}

static void scope_release(scope *s) {
  for (int i = 0; i < s->n; i++) em_array_release(s->a[i]);
  s->n = 0;
}

/* Declares `var` as the result of `expr` (which writes through &var's slot
 * via OUT). */
#define LET(var, call)   \
  em_array *var;         \
  {                      \
    em_array **out_ = slot(sc); \
    CK(call);            \
    var = *out_;         \
  }
#define OUT out_

/* ---- host helpers -------------------------------------------------------- */

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng_next(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1Dull;
}
static double rng_uniform(void) { /* (0, 1) */
  return ((double)(rng_next() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
static double rng_normal(void) {
  return sqrt(-2.0 * log(rng_uniform())) * cos(6.283185307179586 * rng_uniform());
}
static void shuffle(int32_t *v, int64_t n) {
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)(rng_next() % (uint64_t)(i + 1));
    int32_t t = v[i];
    v[i] = v[j];
    v[j] = t;
  }
}

typedef struct {
  int64_t n, dim;
  uint8_t *x; /* n * dim */
  uint8_t *y; /* n */
} dataset;

static uint32_t rd_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static int load(const char *path, dataset *d) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return -1;
  }
  unsigned char h[16];
  if (fread(h, 1, 16, f) != 16 || memcmp(h, "EMDG", 4) != 0) {
    fprintf(stderr, "%s: not a digits file (run scripts/prepare_digits.py)\n",
            path);
    fclose(f);
    return -1;
  }
  d->n = rd_u32(h + 4);
  d->dim = (int64_t)rd_u32(h + 8) * rd_u32(h + 12);
  d->x = malloc((size_t)(d->n * d->dim));
  d->y = malloc((size_t)d->n);
  int ok = d->n > 10 && d->dim > 0 && d->x && d->y &&
           fread(d->x, 1, (size_t)(d->n * d->dim), f) == (size_t)(d->n * d->dim) &&
           fread(d->y, 1, (size_t)d->n, f) == (size_t)d->n;
  fclose(f);
  for (int64_t i = 0; ok && i < d->n; i++)
    if (d->y[i] > 9) ok = 0;
  if (!ok) {
    fprintf(stderr, "%s: truncated or corrupt\n", path);
    free(d->x);
    free(d->y);
    return -1;
  }
  return 0;
}

/* ---- the model ----------------------------------------------------------- */

enum { W1, B1, W2, B2, NPARAM };
#define NCLASS 10

typedef struct {
  em_array *p[NPARAM]; /* parameters */
  em_array *v[NPARAM]; /* momentum buffers */
  em_array *inv255, *zero, *lr, *mu;
} model;

static em_array *host_array(int ndim, const int64_t *shape, const float *xs) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  em_array *a = NULL;
  if (em_array_from_data(&a, EM_F32, ndim, shape, xs, (size_t)n * sizeof(float),
                         em_cpu()) != EM_OK)
    fprintf(stderr, "from_data: %s\n", em_last_error());
  return a;
}

static int model_init(model *m, int64_t in, int64_t hidden, double lr,
                      double mu) {
  memset(m, 0, sizeof *m);
  int64_t shapes[NPARAM][2] = {{in, hidden}, {hidden, 0}, {hidden, NCLASS},
                               {NCLASS, 0}};
  int ndims[NPARAM] = {2, 1, 2, 1};
  double fan_in[NPARAM] = {(double)in, 0, (double)hidden, 0};
  for (int i = 0; i < NPARAM; i++) {
    int64_t n = shapes[i][0] * (ndims[i] == 2 ? shapes[i][1] : 1);
    float *buf = malloc((size_t)n * sizeof(float));
    if (!buf) return -1;
    double scale = fan_in[i] > 0 ? sqrt(2.0 / fan_in[i]) : 0.0; /* He */
    for (int64_t k = 0; k < n; k++) buf[k] = (float)(scale * rng_normal());
    m->p[i] = host_array(ndims[i], shapes[i], buf);
    memset(buf, 0, (size_t)n * sizeof(float));
    m->v[i] = host_array(ndims[i], shapes[i], buf);
    free(buf);
    if (!m->p[i] || !m->v[i]) return -1;
  }
  CK(em_full_scalar(&m->inv255, EM_F32, 1.0 / 255.0, em_cpu()));
  CK(em_full_scalar(&m->zero, EM_F32, 0.0, em_cpu()));
  CK(em_full_scalar(&m->lr, EM_F32, lr, em_cpu()));
  CK(em_full_scalar(&m->mu, EM_F32, mu, em_cpu()));
  return 0;
fail:
  return -1;
}

static void model_free(model *m) {
  for (int i = 0; i < NPARAM; i++) {
    em_array_release(m->p[i]);
    em_array_release(m->v[i]);
  }
  em_array_release(m->inv255);
  em_array_release(m->zero);
  em_array_release(m->lr);
  em_array_release(m->mu);
}

/* Builds (lazily) the forward pass on a u8 batch [B, dim] into the scope:
 * x (f32 in [0,1]), the pre-activation h, the hidden activation a and the
 * logits. */
static int forward(scope *sc, model *m, em_array *xb, em_array **x,
                   em_array **h, em_array **a, em_array **logits) {
  LET(xf, em_as_type(OUT, xb, EM_F32));
  LET(xs, em_multiply(OUT, xf, m->inv255));
  LET(h0, em_matmul(OUT, xs, m->p[W1]));
  LET(h1, em_add(OUT, h0, m->p[B1]));
  LET(a1, em_max(OUT, h1, m->zero)); /* relu */
  LET(z0, em_matmul(OUT, a1, m->p[W2]));
  LET(z1, em_add(OUT, z0, m->p[B2]));
  *x = xs;
  *h = h1;
  *a = a1;
  *logits = z1;
  return 0;
fail:
  return -1;
}

/* Number of rows whose argmax matches the labels (lazy f32 scalar). */
static int count_correct(scope *sc, em_array *logits, em_array *yb,
                         em_array **correct) {
  LET(pred, em_argmax(OUT, logits, 1, false, false));
  LET(y64, em_as_type(OUT, yb, EM_S64));
  LET(eq, em_equal(OUT, pred, y64));
  LET(eqf, em_as_type(OUT, eq, EM_F32));
  LET(c, em_sum(OUT, eqf, 0, NULL, false));
  *correct = c;
  return 0;
fail:
  return -1;
}

/* One SGD step on a batch. Adds the summed loss and the number of correct
 * predictions to *loss_sum and *ncorrect. */
static int train_step(model *m, const uint8_t *xhost, const uint8_t *yhost,
                      int64_t bsz, int64_t dim, double *loss_sum,
                      double *ncorrect) {
  scope scb = {.n = 0}, *sc = &scb;
  em_array *newp[NPARAM] = {0}, *newv[NPARAM] = {0};
  int64_t xshape[2] = {bsz, dim}, yshape[1] = {bsz};
  LET(xb, em_array_from_data(OUT, EM_U8, 2, xshape, xhost, (size_t)(bsz * dim),
                             em_cpu()));
  LET(yb, em_array_from_data(OUT, EM_U8, 1, yshape, yhost, (size_t)bsz,
                             em_cpu()));

  /* One-hot targets: iota over the class axis == label. */
  int64_t oshape[2] = {bsz, NCLASS}, ycol[2] = {bsz, 1};
  LET(cls, em_iota(OUT, EM_S32, 2, oshape, 1, em_cpu()));
  LET(y32, em_as_type(OUT, yb, EM_S32));
  LET(ycolumn, em_reshape(OUT, y32, 2, ycol));
  LET(hot, em_equal(OUT, cls, ycolumn));
  LET(Y, em_as_type(OUT, hot, EM_F32));

  em_array *x, *h, *a, *logits;
  if (forward(sc, m, xb, &x, &h, &a, &logits)) goto fail;

  /* loss = sum_rows(logsumexp(z) - <y, z>) */
  LET(lse, em_logsumexp(OUT, logits, 1, false));
  LET(yz, em_multiply(OUT, Y, logits));
  LET(yzs, em_sum(OUT, yz, 1, (int[]){1}, false));
  LET(rowloss, em_subtract(OUT, lse, yzs));
  LET(loss, em_sum(OUT, rowloss, 0, NULL, false));
  em_array *correct;
  if (count_correct(sc, logits, yb, &correct)) goto fail;

  /* Backward, for the mean loss: dz = (softmax(z) - y) / B. */
  LET(invb, em_full_scalar(OUT, EM_F32, 1.0 / (double)bsz, em_cpu()));
  LET(prob, em_softmax(OUT, logits, 1));
  LET(diff, em_subtract(OUT, prob, Y));
  LET(dz, em_multiply(OUT, diff, invb));
  /* dW2 = a^T dz; db2 = sum_rows dz; da = dz W2^T */
  LET(dW2, em_dot(OUT, a, 1, (int[]){0}, 0, NULL, dz, 1, (int[]){0}, 0, NULL));
  LET(db2, em_sum(OUT, dz, 1, (int[]){0}, false));
  LET(da, em_dot(OUT, dz, 1, (int[]){1}, 0, NULL, m->p[W2], 1, (int[]){1}, 0,
                 NULL));
  /* relu': pass the gradient where h > 0 */
  LET(active, em_greater(OUT, h, m->zero));
  LET(dh, em_select(OUT, active, da, m->zero));
  LET(dW1, em_dot(OUT, x, 1, (int[]){0}, 0, NULL, dh, 1, (int[]){0}, 0, NULL));
  LET(db1, em_sum(OUT, dh, 1, (int[]){0}, false));
  em_array *grad[NPARAM] = {dW1, db1, dW2, db2};

  /* Momentum SGD: v = mu v - lr g; p = p + v. */
  for (int i = 0; i < NPARAM; i++) {
    LET(mv, em_multiply(OUT, m->mu, m->v[i]));
    LET(lg, em_multiply(OUT, m->lr, grad[i]));
    CK(em_subtract(&newv[i], mv, lg));
    CK(em_add(&newp[i], m->p[i], newv[i]));
  }

  em_array *outs[2 * NPARAM + 2];
  for (int i = 0; i < NPARAM; i++) {
    outs[i] = newp[i];
    outs[NPARAM + i] = newv[i];
  }
  outs[2 * NPARAM] = loss;
  outs[2 * NPARAM + 1] = correct;
  CK(em_eval(outs, 2 * NPARAM + 2));
  const float *lv = em_array_data(loss), *cv = em_array_data(correct);
  if (!lv || !cv) {
    fprintf(stderr, "em_array_data: %s\n", em_last_error());
    goto fail;
  }
  *loss_sum += *lv;
  *ncorrect += *cv;
  for (int i = 0; i < NPARAM; i++) {
    em_array_release(m->p[i]);
    em_array_release(m->v[i]);
    m->p[i] = newp[i];
    m->v[i] = newv[i];
  }
  scope_release(sc);
  return 0;
fail:
  for (int i = 0; i < NPARAM; i++) {
    em_array_release(newp[i]);
    em_array_release(newv[i]);
  }
  scope_release(sc);
  return -1;
}

/* Accuracy of the model on n samples (host u8 rows), in one graph. */
static int evaluate(model *m, const uint8_t *xhost, const uint8_t *yhost,
                    int64_t n, int64_t dim, double *acc) {
  scope scb = {.n = 0}, *sc = &scb;
  int64_t xshape[2] = {n, dim}, yshape[1] = {n};
  LET(xb, em_array_from_data(OUT, EM_U8, 2, xshape, xhost, (size_t)(n * dim),
                             em_cpu()));
  LET(yb, em_array_from_data(OUT, EM_U8, 1, yshape, yhost, (size_t)n,
                             em_cpu()));
  em_array *x, *h, *a, *logits, *correct;
  if (forward(sc, m, xb, &x, &h, &a, &logits)) goto fail;
  if (count_correct(sc, logits, yb, &correct)) goto fail;
  CK(em_eval(&correct, 1));
  const float *c = em_array_data(correct);
  if (!c) {
    fprintf(stderr, "em_array_data: %s\n", em_last_error());
    goto fail;
  }
  *acc = *c / (double)n;
  scope_release(sc);
  return 0;
fail:
  scope_release(sc);
  return -1;
}

static void usage(const char *prog) {
  fprintf(stderr,
          "usage: %s DATA [--epochs N] [--min-acc A] [--batch B] [--lr LR]\n"
          "  DATA: digits file from scripts/prepare_digits.py\n"
          "  exits 1 if the test accuracy is below A (a fraction, e.g. 0.9)\n",
          prog);
}

int main(int argc, char **argv) {
  const char *path = NULL;
  int epochs = 10;
  int64_t batch = 100;
  double min_acc = 0.0, lr = 0.05, mu = 0.9;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(s, "--epochs") && v) epochs = atoi(argv[++i]);
    else if (!strcmp(s, "--min-acc") && v) min_acc = atof(argv[++i]);
    else if (!strcmp(s, "--batch") && v) batch = atoll(argv[++i]);
    else if (!strcmp(s, "--lr") && v) lr = atof(argv[++i]);
    else if (s[0] != '-' && !path) path = s;
    else {
      usage(argv[0]);
      return 2;
    }
  }
  if (!path || epochs < 0 || batch < 1) {
    usage(argv[0]);
    return 2;
  }

  dataset d;
  if (load(path, &d)) return 2;
  int32_t *order = malloc((size_t)d.n * sizeof *order);
  int64_t ntest = d.n / 5, ntrain = d.n - ntest;
  uint8_t *trx = malloc((size_t)(ntrain * d.dim)), *try_ = malloc((size_t)ntrain);
  uint8_t *tex = malloc((size_t)(ntest * d.dim)), *tey = malloc((size_t)ntest);
  uint8_t *bx = malloc((size_t)(batch * d.dim)), *by = malloc((size_t)batch);
  if (!order || !trx || !try_ || !tex || !tey || !bx || !by) {
    fprintf(stderr, "out of host memory\n");
    return 3;
  }
  /* Fixed-seed shuffle, then split: the first 80% train, the rest test. */
  for (int64_t i = 0; i < d.n; i++) order[i] = (int32_t)i;
  shuffle(order, d.n);
  for (int64_t i = 0; i < d.n; i++) {
    uint8_t *dx = i < ntrain ? trx + i * d.dim : tex + (i - ntrain) * d.dim;
    memcpy(dx, d.x + (int64_t)order[i] * d.dim, (size_t)d.dim);
    if (i < ntrain) try_[i] = d.y[order[i]];
    else tey[i - ntrain] = d.y[order[i]];
  }
  free(d.x);
  free(d.y);

  printf("digits: %lld train, %lld test, %lld pixels; MLP %lld-128-10, "
         "batch %lld, lr %g, momentum %g; %d CPU threads\n",
         (long long)ntrain, (long long)ntest, (long long)d.dim,
         (long long)d.dim, (long long)batch, lr, mu, em_cpu_num_threads());

  int rc = 3;
  model m;
  double t0 = now_s(), test_acc = 0;
  if (model_init(&m, d.dim, 128, lr, mu)) goto done;
  for (int64_t i = 0; i < ntrain; i++) order[i] = (int32_t)i;
  for (int ep = 1; ep <= epochs; ep++) {
    shuffle(order, ntrain);
    double loss = 0, correct = 0;
    for (int64_t s = 0; s < ntrain; s += batch) {
      int64_t b = ntrain - s < batch ? ntrain - s : batch;
      for (int64_t k = 0; k < b; k++) {
        memcpy(bx + k * d.dim, trx + (int64_t)order[s + k] * d.dim,
               (size_t)d.dim);
        by[k] = try_[order[s + k]];
      }
      if (train_step(&m, bx, by, b, d.dim, &loss, &correct)) goto done;
    }
    printf("epoch %2d  loss %.4f  train acc %6.2f%%  elapsed %.2fs\n", ep,
           loss / (double)ntrain, 100.0 * correct / (double)ntrain,
           now_s() - t0);
    fflush(stdout);
  }
  if (evaluate(&m, tex, tey, ntest, d.dim, &test_acc)) goto done;
  printf("test accuracy %.2f%% (%lld samples) after %d epochs in %.2fs\n",
         100.0 * test_acc, (long long)ntest, epochs, now_s() - t0);
  em_memory_stats ms;
  if (em_memory_stats_get(em_cpu(), &ms) == EM_OK)
    printf("engine memory: peak %.1f MiB, %llu allocations, %llu cache hits\n",
           (double)ms.peak_bytes / 1048576.0,
           (unsigned long long)ms.alloc_count,
           (unsigned long long)ms.cache_hits);
  if (test_acc < min_acc) {
    printf("FAIL: test accuracy %.2f%% is below the threshold %.2f%%\n",
           100.0 * test_acc, 100.0 * min_acc);
    rc = 1;
  } else {
    rc = 0;
  }
done:
  model_free(&m);
  em_memory_clear_cache(em_cpu());
  free(order);
  free(trx);
  free(try_);
  free(tex);
  free(tey);
  free(bx);
  free(by);
  return rc;
}
