/* test_jit_cache.c — the on-disk cache of run-time compiled CUDA kernels
 * (src/cuda/jit_cache.c), no GPU needed: store and look up in a temporary
 * directory; a file of another key under the same name, truncated,
 * bit-flipped or extended files are misses; unwritable directories and a
 * full disk (RLIMIT_FSIZE) are "not stored", never a crash; the directory
 * the environment names, EMILY_CUDA_CACHE=0; threads and processes storing
 * and reading the same keys at once; and a real program through
 * em_cu_jit_compile (NVRTC, which works without a GPU): compiled once, then
 * the same image from disk. Built with the CUDA backend. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cuda/jit-cache.h"
#include "harness.h"

/* ---- helpers ----------------------------------------------------------------- */

static char g_root[512];

/* snprintf that must not truncate (paths). */
__attribute__((format(printf, 3, 4))) static void fmt(char *buf, size_t cap,
                                                      const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  int n = vsnprintf(buf, cap, f, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= cap) {
    fprintf(stderr, "path too long\n");
    exit(2);
  }
}

static void path_of(char *buf, size_t cap, const char *dir, const char *name) {
  fmt(buf, cap, "%s/%s", dir, name);
}

static void entry_path(char *buf, size_t cap, const char *dir, const char *key) {
  char name[EM_KCACHE_NAME_LEN];
  em_cu_kcache_name(key, strlen(key), name);
  path_of(buf, cap, dir, name);
}

static void rm_rf(const char *p) {
  struct stat s;
  if (lstat(p, &s) != 0) return;
  if (S_ISDIR(s.st_mode)) {
    (void)chmod(p, 0700);
    DIR *d = opendir(p);
    if (d) {
      struct dirent *e;
      while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char q[1024];
        path_of(q, sizeof q, p, e->d_name);
        rm_rf(q);
      }
      closedir(d);
    }
    (void)rmdir(p);
  } else {
    (void)unlink(p);
  }
}

/* Entries of dir whose name starts with prefix ("" counts all). */
static int count(const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (!strncmp(e->d_name, prefix, strlen(prefix))) n++;
  }
  closedir(d);
  return n;
}

static void mkdir_in(char *buf, size_t cap, const char *name) {
  path_of(buf, cap, g_root, name);
  if (mkdir(buf, 0700) != 0) {
    fprintf(stderr, "mkdir %s: %s\n", buf, strerror(errno));
    exit(2);
  }
}

static bool exists(const char *p) {
  struct stat s;
  return stat(p, &s) == 0;
}

static off_t file_size(const char *p) {
  struct stat s;
  return stat(p, &s) == 0 ? s.st_size : -1;
}

/* Deterministic bytes (seed, length). */
static unsigned char *image(uint64_t seed, size_t n) {
  unsigned char *p = malloc(n);
  if (!p) exit(2);
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = (unsigned char)x;
  }
  return p;
}

static bool store(const char *dir, const char *key, const void *img, size_t n) {
  return em_cu_kcache_store(dir, key, strlen(key), img, n);
}

/* The lookup of key equals (want, n); want NULL: a miss. */
static bool load_is(const char *dir, const char *key, const void *want, size_t n) {
  size_t got_n = 12345;
  unsigned char *got = em_cu_kcache_load(dir, key, strlen(key), &got_n);
  bool ok = want ? got && got_n == n && memcmp(got, want, n) == 0
                 : !got && got_n == 0;
  free(got);
  return ok;
}

static void flip(const char *p, off_t at, unsigned char mask) {
  int fd = open(p, O_RDWR);
  unsigned char c;
  if (fd < 0 || pread(fd, &c, 1, at) != 1) exit(2);
  c ^= mask;
  if (pwrite(fd, &c, 1, at) != 1 || close(fd) != 0) exit(2);
}

/* ---- store and look up ------------------------------------------------------------ */

static void t_basic(void) {
  char dir[1024], nested[1024];
  mkdir_in(dir, sizeof dir, "basic");
  size_t n1 = 1000, n2 = 70001;
  unsigned char *a = image(1, n1), *b = image(2, n2), *c = image(3, n1);
  CHECK(load_is(dir, "key one", NULL, 0), "empty cache: a miss");
  CHECK(store(dir, "key one", a, n1), "store");
  CHECK(load_is(dir, "key one", a, n1), "lookup after store");
  CHECK(load_is(dir, "key two", NULL, 0), "another key: a miss");
  CHECK(store(dir, "key two", b, n2), "store a second key");
  CHECK(load_is(dir, "key one", a, n1) && load_is(dir, "key two", b, n2),
        "both keys");
  CHECK(store(dir, "key one", c, n1), "replace");
  CHECK(load_is(dir, "key one", c, n1), "the replaced image");
  CHECK(count(dir, "") == 2, "two files, got %d", count(dir, ""));
  CHECK(count(dir, ".tmp-") == 0, "no temporary file left");
  /* keys that differ in one byte, and a key with NUL bytes */
  CHECK(load_is(dir, "key onf", NULL, 0) && load_is(dir, "key on", NULL, 0),
        "near keys miss");
  const char bin[] = {'a', 0, 'b', 0, 'c'};
  CHECK(em_cu_kcache_store(dir, bin, sizeof bin, a, n1), "binary key");
  size_t n = 0;
  unsigned char *g = em_cu_kcache_load(dir, bin, sizeof bin, &n);
  CHECK(g && n == n1 && !memcmp(g, a, n1), "binary key lookup");
  free(g);
  g = em_cu_kcache_load(dir, bin, 3, &n);
  CHECK(!g, "a prefix of the binary key misses");
  free(g);
  /* nothing to store, too big, no directory */
  CHECK(!store(dir, "empty", a, 0), "an empty image is not stored");
  unsigned char *big = calloc(EM_KCACHE_MAX_BYTES + 1, 1);
  if (!big) exit(2);
  CHECK(!store(dir, "big", big, EM_KCACHE_MAX_BYTES + 1),
        "an image over the bound is not stored");
  free(big);
  CHECK(!store(NULL, "k", a, n1) && load_is(NULL, "k", NULL, 0), "NULL dir");
  CHECK(!em_cu_kcache_store(dir, "", 0, a, n1), "an empty key is not stored");
  /* parents are created, mode 0700 */
  fmt(nested, sizeof nested, "%s/x/y//z", dir);
  CHECK(store(nested, "key one", a, n1), "store into a new nested directory");
  CHECK(load_is(nested, "key one", a, n1), "lookup there");
  struct stat s;
  char x[1100];
  fmt(x, sizeof x, "%s/x", dir);
  CHECK(stat(x, &s) == 0 && (s.st_mode & 0777) == 0700, "created with mode 0700 (%o)",
        (unsigned)(s.st_mode & 0777));
  free(a);
  free(b);
  free(c);
}

/* A well-formed entry of another key under this key's file name. */
/* A directory others may write to (or a file another user owns) is not
 * trusted: lookups miss, whatever it holds. */
static void t_untrusted(void) {
  char dir[1024];
  mkdir_in(dir, sizeof dir, "untrusted");
  size_t n1 = 500;
  unsigned char *a = image(7, n1);
  CHECK(store(dir, "trusted key", a, n1), "store");
  CHECK(load_is(dir, "trusted key", a, n1), "a 0700 directory of ours is trusted");
  CHECK(chmod(dir, 0777) == 0, "chmod 0777");
  CHECK(load_is(dir, "trusted key", NULL, 0), "a world-writable directory: a miss");
  CHECK(chmod(dir, 0770) == 0, "chmod 0770");
  CHECK(load_is(dir, "trusted key", NULL, 0), "a group-writable directory: a miss");
  CHECK(chmod(dir, 0700) == 0, "chmod 0700");
  CHECK(load_is(dir, "trusted key", a, n1), "trusted again");
  free(a);
}

static void t_collision(void) {
  char dir[1024], pa[1100], pb[1100];
  mkdir_in(dir, sizeof dir, "collision");
  size_t n = 4096;
  unsigned char *ia = image(10, n), *ib = image(11, n);
  const char *ka = "program A: x + y", *kb = "program B: x * y";
  CHECK(strlen(ka) == strlen(kb), "same key length");
  entry_path(pa, sizeof pa, dir, ka);
  entry_path(pb, sizeof pb, dir, kb);
  CHECK(store(dir, kb, ib, n), "store B");
  CHECK(rename(pb, pa) == 0, "move B's file to A's name");
  CHECK(load_is(dir, ka, NULL, 0), "A misses: the file holds B's key");
  CHECK(exists(pa), "a well-formed file of another key is left alone");
  CHECK(store(dir, ka, ia, n), "store A over it");
  CHECK(load_is(dir, ka, ia, n), "A hits");
  /* a longer key under the name */
  CHECK(store(dir, "a much longer key than A's", ib, n), "store C");
  entry_path(pb, sizeof pb, dir, "a much longer key than A's");
  CHECK(rename(pb, pa) == 0, "move C's file to A's name");
  CHECK(load_is(dir, ka, NULL, 0), "A misses: another key length");
  free(ia);
  free(ib);
}

/* Every single-bit flip and truncation is a miss; corrupt files go. */
static void t_corrupt(void) {
  char dir[1024], p[1100];
  mkdir_in(dir, sizeof dir, "corrupt");
  const char *key = "a key of some length for the corruption test";
  const off_t kl = (off_t)strlen(key), hdr = 48;
  size_t n = 3000;
  unsigned char *img = image(20, n);
  entry_path(p, sizeof p, dir, key);
  CHECK(store(dir, key, img, n), "store");
  const off_t full = file_size(p);
  CHECK(full == hdr + kl + (off_t)n, "file size %lld", (long long)full);
  /* offset, and whether the file must be removed (not a well-formed entry) */
  struct { off_t at; bool removed; } flips[] = {
      {0, true}, {7, true}, {8, true}, {12, true}, {16, true}, {23, true},
      {24, true}, {31, true}, {32, true}, {39, true},
      {40, false},                         /* the key hash: looks like another key */
      {hdr, false}, {hdr + kl / 2, false}, {hdr + kl - 1, false}, /* the key */
      {hdr + kl, true}, {hdr + kl + (off_t)n / 2, true}, {full - 1, true}};
  for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
    for (unsigned char m = 1; m; m = (unsigned char)(m << 3)) { /* bits 0, 3, 6 */
      CHECK(store(dir, key, img, n) && load_is(dir, key, img, n), "restore");
      flip(p, flips[i].at, m);
      CHECK(load_is(dir, key, NULL, 0), "a flip at %lld (mask %u) misses",
            (long long)flips[i].at, m);
      if (flips[i].removed)
        CHECK(!exists(p), "the corrupt file (flip at %lld) is removed",
              (long long)flips[i].at);
    }
  }
  off_t cuts[] = {0, 1, hdr - 1, hdr, hdr + 1, hdr + kl, hdr + kl + 1, full - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    CHECK(store(dir, key, img, n), "restore");
    CHECK(truncate(p, cuts[i]) == 0, "truncate");
    CHECK(load_is(dir, key, NULL, 0), "truncated to %lld misses", (long long)cuts[i]);
    CHECK(!exists(p), "the truncated file (%lld) is removed", (long long)cuts[i]);
  }
  CHECK(store(dir, key, img, n), "restore");
  CHECK(truncate(p, full + 5) == 0, "extend");
  CHECK(load_is(dir, key, NULL, 0), "an extended file misses");
  /* something else at the entry's name */
  CHECK(mkdir(p, 0700) == 0, "a directory at the entry's name");
  CHECK(load_is(dir, key, NULL, 0), "a directory misses");
  CHECK(!store(dir, key, img, n), "and cannot be replaced");
  CHECK(count(dir, ".tmp-") == 0, "no temporary file left");
  CHECK(rmdir(p) == 0, "rmdir");
  CHECK(store(dir, key, img, n) && load_is(dir, key, img, n), "works again");
  free(img);
}

/* ---- directories that cannot be written, a full disk ------------------------------- */

static void t_unwritable(void) {
  char dir[1024], p[1100];
  mkdir_in(dir, sizeof dir, "unwritable");
  size_t n = 2048;
  unsigned char *img = image(30, n);
  /* a directory below a plain file: fails even for root */
  path_of(p, sizeof p, dir, "file");
  FILE *f = fopen(p, "w");
  CHECK(f && fclose(f) == 0, "create a file");
  char below[1200];
  fmt(below, sizeof below, "%s/sub/dir", p);
  CHECK(!store(below, "k", img, n), "below a file: not stored");
  CHECK(load_is(below, "k", NULL, 0), "below a file: a miss");
  CHECK(!store(p, "k", img, n), "a file as the directory: not stored");
  /* a read-only directory (root writes anyway) */
  char ro[1200];
  fmt(ro, sizeof ro, "%s/ro", dir);
  CHECK(mkdir(ro, 0500) == 0, "mkdir ro");
  if (geteuid() != 0) {
    CHECK(!store(ro, "k", img, n), "a read-only directory: not stored");
    CHECK(load_is(ro, "k", NULL, 0), "a read-only directory: a miss");
    fmt(below, sizeof below, "%s/sub", ro);
    CHECK(!store(below, "k", img, n), "below a read-only directory: not stored");
  }
  /* a full disk: writes fail past RLIMIT_FSIZE (EFBIG), in a child */
  char full[1200];
  fmt(full, sizeof full, "%s/full", dir);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit r = {1000, 1000};
    int rc = setrlimit(RLIMIT_FSIZE, &r) != 0 ? 3
             : store(full, "k", img, n)      ? 4
             : !load_is(full, "k", NULL, 0)  ? 5
             : count(full, "") != 0          ? 6
                                             : 0;
    _exit(rc);
  }
  int status = 0;
  CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0,
        "a full disk: not stored, no file left (child status %d)", status);
  free(img);
}

/* ---- the environment ------------------------------------------------------------- */

static const char *const ENV[] = {"EMILY_CUDA_CACHE", "EMILY_CUDA_CACHE_DIR",
                                  "XDG_CACHE_HOME", "HOME"};
#define NENV 4
static char *saved[NENV];

static void env_save(void) {
  for (int i = 0; i < NENV; i++) {
    const char *v = getenv(ENV[i]);
    saved[i] = v ? strdup(v) : NULL;
  }
}
static void env_restore(void) {
  for (int i = 0; i < NENV; i++) {
    if (saved[i]) setenv(ENV[i], saved[i], 1);
    else unsetenv(ENV[i]);
    free(saved[i]);
    saved[i] = NULL;
  }
}

static bool dir_is(const char *want) {
  char buf[4096];
  bool on = em_cu_kcache_dir(buf, sizeof buf);
  return want ? on && !strcmp(buf, want) : !on;
}

static void t_env(void) {
  env_save();
  for (int i = 0; i < NENV; i++) unsetenv(ENV[i]);
  CHECK(dir_is(NULL), "no HOME: off");
  setenv("HOME", "/home/u", 1);
  CHECK(dir_is("/home/u/.cache/emily/cuda"), "HOME");
  setenv("XDG_CACHE_HOME", "relative/xdg", 1);
  CHECK(dir_is("/home/u/.cache/emily/cuda"), "a relative XDG_CACHE_HOME is ignored");
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  CHECK(dir_is("/xdg/emily/cuda"), "XDG_CACHE_HOME");
  setenv("EMILY_CUDA_CACHE_DIR", "", 1);
  CHECK(dir_is("/xdg/emily/cuda"), "an empty EMILY_CUDA_CACHE_DIR is ignored");
  setenv("EMILY_CUDA_CACHE_DIR", "/my/cache", 1);
  CHECK(dir_is("/my/cache"), "EMILY_CUDA_CACHE_DIR");
  setenv("EMILY_CUDA_CACHE", "1", 1);
  CHECK(dir_is("/my/cache"), "EMILY_CUDA_CACHE=1: on");
  const char *offs[] = {"0", "off", "false", "no"};
  for (int i = 0; i < 4; i++) {
    setenv("EMILY_CUDA_CACHE", offs[i], 1);
    CHECK(dir_is(NULL), "EMILY_CUDA_CACHE=%s: off", offs[i]);
  }
  unsetenv("EMILY_CUDA_CACHE");
  char small[8];
  CHECK(!em_cu_kcache_dir(small, sizeof small), "a path too long for the buffer");
  env_restore();
}

/* ---- threads and processes -------------------------------------------------------- */

#define NKEYS 6
static unsigned char *g_img[NKEYS];
static size_t g_n[NKEYS];
static char g_key[NKEYS][64];
static char g_cdir[1024];

typedef struct {
  unsigned seed;
  int wrong, stored;
} worker;

static void *work(void *arg) {
  worker *w = arg;
  unsigned x = w->seed;
  for (int it = 0; it < 150; it++) {
    x = x * 1103515245u + 12345u;
    int k = (int)((x >> 8) % NKEYS);
    if ((x >> 20) & 1) {
      w->stored += em_cu_kcache_store(g_cdir, g_key[k], strlen(g_key[k]), g_img[k],
                                      g_n[k]);
    } else {
      size_t n = 0;
      unsigned char *g = em_cu_kcache_load(g_cdir, g_key[k], strlen(g_key[k]), &n);
      if (g && (n != g_n[k] || memcmp(g, g_img[k], n) != 0)) w->wrong++;
      free(g);
    }
  }
  return NULL;
}

/* Returns the number of wrong images seen (-1: a thread did not start). */
static int run_threads(int nt, unsigned seed, int *stored) {
  pthread_t th[16];
  worker w[16];
  int started = 0, wrong = 0;
  for (int i = 0; i < nt; i++) {
    w[i] = (worker){seed + 7919u * (unsigned)i, 0, 0};
    if (pthread_create(&th[i], NULL, work, &w[i]) != 0) break;
    started++;
  }
  for (int i = 0; i < started; i++) {
    pthread_join(th[i], NULL);
    wrong += w[i].wrong;
    *stored += w[i].stored;
  }
  return started == nt ? wrong : -1;
}

static void t_concurrent(void) {
  mkdir_in(g_cdir, sizeof g_cdir, "concurrent");
  for (int k = 0; k < NKEYS; k++) {
    g_n[k] = (size_t)1000 << (2 * k % 9); /* 1 KB .. 256 KB */
    g_img[k] = image(40 + (uint64_t)k, g_n[k]);
    snprintf(g_key[k], sizeof g_key[k], "concurrent key %d", k);
  }
  int stored = 0;
  int wrong = run_threads(12, 1, &stored);
  CHECK(wrong == 0, "threads: %d wrong images", wrong);
  CHECK(stored > 0, "threads stored");
  /* several processes, each with threads, on the same directory */
  fflush(NULL);
  pid_t pids[4];
  for (int p = 0; p < 4; p++) {
    pids[p] = fork();
    if (pids[p] == 0) {
      int s = 0;
      _exit(run_threads(4, 100u + (unsigned)p, &s) == 0 ? 0 : 1);
    }
  }
  wrong = run_threads(4, 999, &stored);
  CHECK(wrong == 0, "threads beside processes: %d wrong images", wrong);
  for (int p = 0; p < 4; p++) {
    int status = -1;
    CHECK(pids[p] > 0 && waitpid(pids[p], &status, 0) == pids[p] &&
              WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "process %d saw no wrong image (status %d)", p, status);
  }
  for (int k = 0; k < NKEYS; k++) {
    CHECK(store(g_cdir, g_key[k], g_img[k], g_n[k]), "store %d", k);
    CHECK(load_is(g_cdir, g_key[k], g_img[k], g_n[k]), "all hit afterwards (%d)", k);
  }
  CHECK(count(g_cdir, "") == NKEYS, "one file per key, got %d", count(g_cdir, ""));
  CHECK(count(g_cdir, ".tmp-") == 0, "no temporary file left");
  for (int k = 0; k < NKEYS; k++) free(g_img[k]);
}

/* ---- a real program through em_cu_jit_compile (NVRTC, no GPU) --------------------- */

static const char *BODY =
    "extern \"C\" __global__ void __launch_bounds__(256) k(long long n, char *out) {\n"
    "const long long stride = (long long)gridDim.x * blockDim.x;\n"
    "for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; "
    "i += stride) {\n"
    "const f32 v = em_cast<f32>((s64)i);\n"
    "((f32 *)out)[i] = em_add(v, v);\n}\n}\n";

static bool compile(const char *arch, const char *body, bool lookup, char **img,
                    size_t *n, bool *disk) {
  em_status st = em_cu_jit_compile("test", arch, body, lookup, img, n, disk);
  if (st != EM_OK) fprintf(stderr, "compile: %s\n", em_last_error());
  return st == EM_OK;
}

static void t_nvrtc(void) {
  char dir[1024];
  mkdir_in(dir, sizeof dir, "nvrtc");
  env_save();
  unsetenv("EMILY_CUDA_CACHE");
  setenv("EMILY_CUDA_CACHE_DIR", dir, 1);
  char *a = NULL, *b = NULL, *c = NULL;
  size_t na = 0, nb = 0, nc = 0;
  bool disk = true;
  CHECK(compile("sm_90", BODY, true, &a, &na, &disk) && !disk, "first: NVRTC");
  CHECK(a && na > 4 && !memcmp(a, "\x7f" "ELF", 4), "a cubin (%zu bytes)", na);
  CHECK(count(dir, "") == 1, "one entry stored, got %d", count(dir, ""));
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.') {
      char p[1400];
      path_of(p, sizeof p, dir, e->d_name);
      printf("cubin %zu bytes, cache file %lld bytes\n", na, (long long)file_size(p));
    }
  if (d) closedir(d);
  CHECK(compile("sm_90", BODY, true, &b, &nb, &disk) && disk, "second: from disk");
  CHECK(a && b && na == nb && !memcmp(a, b, na), "the same image");
  free(b);
  CHECK(compile("sm_90", BODY, false, &b, &nb, &disk) && !disk, "lookup=false: NVRTC");
  printf("NVRTC output deterministic: %s\n",
         a && b && na == nb && !memcmp(a, b, na) ? "yes" : "no");
  free(b);
  /* another architecture or body is another entry */
  CHECK(compile("sm_80", BODY, true, &c, &nc, &disk) && !disk, "sm_80: a miss");
  CHECK(count(dir, "") == 2, "two entries, got %d", count(dir, ""));
  free(c);
  /* a corrupt entry: compiled again and replaced */
  d = opendir(dir);
  int flipped = 0;
  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.') {
      char p[1400];
      path_of(p, sizeof p, dir, e->d_name);
      flip(p, file_size(p) - 1, 0x40);
      flipped++;
    }
  if (d) closedir(d);
  CHECK(flipped == 2, "flipped %d", flipped);
  CHECK(compile("sm_90", BODY, true, &b, &nb, &disk) && !disk, "corrupt: NVRTC again");
  free(b);
  CHECK(compile("sm_90", BODY, true, &b, &nb, &disk) && disk, "then from disk");
  CHECK(a && b && na == nb && !memcmp(a, b, na), "the same image again");
  free(b);
  /* a program that does not compile: an error, nothing stored */
  int before = count(dir, "");
  b = (char *)1;
  em_status st = em_cu_jit_compile("test", "sm_90", "this is not C++;", true, &b, &nb,
                                   &disk);
  CHECK(st == EM_ERR_RUNTIME && !b && strstr(em_last_error(), "NVRTC"),
        "a compile error: %s", em_last_error());
  CHECK(count(dir, "") == before, "nothing stored for it");
  /* EMILY_CUDA_CACHE=0: always NVRTC, nothing written */
  setenv("EMILY_CUDA_CACHE", "0", 1);
  CHECK(compile("sm_90", BODY, true, &b, &nb, &disk) && !disk, "off: NVRTC");
  free(b);
  unsetenv("EMILY_CUDA_CACHE");
  char nested[1100];
  fmt(nested, sizeof nested, "%s/off", dir);
  setenv("EMILY_CUDA_CACHE_DIR", nested, 1);
  setenv("EMILY_CUDA_CACHE", "0", 1);
  CHECK(compile("sm_90", BODY, true, &b, &nb, &disk) && !disk && !exists(nested),
        "off: no directory created");
  free(b);
  /* an unusable directory: compiled anyway */
  unsetenv("EMILY_CUDA_CACHE");
  char bad[1200];
  fmt(bad, sizeof bad, "%s/%s/sub", dir, "file");
  path_of(nested, sizeof nested, dir, "file");
  FILE *f = fopen(nested, "w");
  CHECK(f && fclose(f) == 0, "create a file");
  setenv("EMILY_CUDA_CACHE_DIR", bad, 1);
  CHECK(compile("sm_90", BODY, true, &b, &nb, &disk) && !disk,
        "an unusable directory: NVRTC");
  CHECK(b && nb == na && !memcmp(a, b, na), "the same image");
  free(b);
  free(a);
  env_restore();
}

int main(void) {
  const char *t = getenv("TMPDIR");
  fmt(g_root, sizeof g_root, "%s/emily-kcache-test-XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(g_root)) {
    perror("mkdtemp");
    return 2;
  }
  t_basic();
  t_untrusted();
  t_collision();
  t_corrupt();
  t_unwritable();
  t_env();
  t_concurrent();
  t_nvrtc();
  rm_rf(g_root);
  return TEST_SUMMARY();
}
