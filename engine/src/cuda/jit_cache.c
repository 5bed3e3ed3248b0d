/* jit_cache.c — the on-disk cache of run-time compiled CUDA kernels (see
 * jit-cache.h). Plain C and POSIX: no GPU, no CUDA library.
 *
 * File <dir>/<h1><h2>.kc, h1 and h2 two independent 64-bit hashes of the
 * key in hex; all integers little-endian:
 *
 *   0  magic "EMILYJKC"          8 bytes
 *   8  format version (1)        u32
 *  12  header length (48)        u32
 *  16  key length                u64
 *  24  image length              u64
 *  32  image checksum            u64   (hash2 of the image, seeded)
 *  40  key hash                  u64   (hash2 of the key)
 *  48  the key, then the image
 *
 * A lookup accepts a file only if it is exactly 48 + key + image bytes
 * long, its key equals the caller's byte for byte and the image matches its
 * checksum. A file that is not a well-formed entry is removed (if it is
 * still the file that was read); an entry of another key (a hash collision)
 * is only a miss, and the next store replaces it.
 *
 * Writes go to a temporary file in the same directory (mkostemp, mode 0600)
 * which is renamed over the entry: readers see the old file or the new one,
 * never a part, and concurrent writers of one entry (threads or processes)
 * each rename a whole file (they hold the same bytes). No fsync: after a
 * crash an entry may be short or zeroed, which the length and checksum
 * checks turn into a miss. A process killed between creating and renaming
 * its temporary file leaves a ".tmp-*" file behind.
 *
 * No eviction: the directory grows by one file per distinct program
 * (roughly 55 KB of key, mostly the prelude, plus the image); delete it
 * (or any file in it) at any time. Images or keys over 64 MiB are not
 * stored. */
#define _GNU_SOURCE /* mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "jit-cache.h"

#define HDR 48
#define VERSION 1u
static const char MAGIC[8] = {'E', 'M', 'I', 'L', 'Y', 'J', 'K', 'C'};

/* ---- hashes ------------------------------------------------------------------ */

static uint64_t fnv1a64(const unsigned char *p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

static uint64_t rd64le(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
static void wr64le(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t rd32le(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}
static void wr32le(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t fmix64(uint64_t h) { /* murmur3's finaliser */
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

/* Word-at-a-time multiply-rotate hash, unrelated to FNV-1a. */
static uint64_t hash2(const unsigned char *p, size_t n, uint64_t seed) {
  uint64_t h = seed ^ ((uint64_t)n * 0x9e3779b97f4a7c15ull);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w = rd64le(p + i) * 0x87c37b91114253d5ull;
    w = (w << 31) | (w >> 33);
    h ^= w * 0x4cf5ad432745937full;
    h = ((h << 27) | (h >> 37)) * 5 + 0x52dce729;
  }
  uint64_t t = 0;
  for (size_t j = 0; i + j < n; j++) t |= (uint64_t)p[i + j] << (8 * j);
  h ^= fmix64(t + 0x2545f4914f6cdd1dull);
  return fmix64(h);
}

#define KEY_SEED 0x0123456789abcdefull
#define IMG_SEED 0xfedcba9876543210ull

void em_cu_kcache_name(const void *key, size_t klen,
                       char name[EM_KCACHE_NAME_LEN]) {
  const unsigned char *k = key;
  snprintf(name, EM_KCACHE_NAME_LEN, "%016llx%016llx.kc",
           (unsigned long long)fnv1a64(k, klen),
           (unsigned long long)hash2(k, klen, KEY_SEED));
}

/* ---- the directory ------------------------------------------------------------ */

bool em_cu_kcache_dir(char *buf, size_t cap) {
  const char *off = getenv("EMILY_CUDA_CACHE");
  if (off && (!strcmp(off, "0") || !strcmp(off, "off") ||
              !strcmp(off, "false") || !strcmp(off, "no")))
    return false;
  const char *d = getenv("EMILY_CUDA_CACHE_DIR"), *x, *h;
  int n;
  if (d && *d)
    n = snprintf(buf, cap, "%s", d);
  else if ((x = getenv("XDG_CACHE_HOME")) && x[0] == '/')
    n = snprintf(buf, cap, "%s/emily/cuda", x);
  else if ((h = getenv("HOME")) && *h)
    n = snprintf(buf, cap, "%s/.cache/emily/cuda", h);
  else
    return false;
  return n > 0 && (size_t)n < cap;
}

static bool is_dir(const char *p) {
  struct stat s;
  return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

/* mkdir -p with mode 0700 for what it creates. */
static bool make_dirs(const char *dir) {
  if (is_dir(dir)) return true;
  size_t n = strlen(dir);
  char *p = malloc(n + 1);
  if (!p) return false;
  memcpy(p, dir, n + 1);
  bool ok = true;
  for (size_t i = 1; ok && i <= n; i++) {
    if (p[i] != '/' && p[i] != '\0') continue;
    if (p[i - 1] == '/') continue; /* "a//b" */
    char c = p[i];
    p[i] = '\0';
    if (mkdir(p, 0700) != 0 && !is_dir(p)) ok = false;
    p[i] = c;
  }
  free(p);
  return ok && is_dir(dir);
}

/* dir + "/" + name, malloc'd. */
static char *join(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  char *p = malloc(a + b + 2);
  if (!p) return NULL;
  memcpy(p, dir, a);
  p[a] = '/';
  memcpy(p + a + 1, name, b + 1);
  return p;
}

/* ---- reading -------------------------------------------------------------- */

static bool read_at(int fd, void *buf, size_t n, off_t at) {
  unsigned char *p = buf;
  while (n) {
    ssize_t k = pread(fd, p, n, at);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k;
    n -= (size_t)k;
    at += k;
  }
  return true;
}

/* Removes path if it is still the file fd has open (another process may
 * have renamed a good entry over it meanwhile). */
static void remove_if_same(const char *path, int fd) {
  struct stat a, b;
  if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
      a.st_ino == b.st_ino)
    (void)unlink(path);
}

/* A cached image is code this process will run: only trust a directory
 * that this user owns and nobody else may write to, and files this user
 * owns. Anything else is a miss. */
static bool trusted_dir(const char *dir) {
  struct stat s;
  return stat(dir, &s) == 0 && S_ISDIR(s.st_mode) && s.st_uid == geteuid() &&
         (s.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

void *em_cu_kcache_load(const char *dir, const void *key, size_t klen,
                        size_t *size) {
  *size = 0;
  if (!dir || klen == 0 || klen > EM_KCACHE_MAX_BYTES) return NULL;
  if (!trusted_dir(dir)) {
    if (getenv("EMILY_CUDA_DEBUG"))
      fprintf(stderr, "emily: kernel cache %s ignored: not owned by this user "
                      "or writable by others\n", dir);
    return NULL;
  }
  char name[EM_KCACHE_NAME_LEN];
  em_cu_kcache_name(key, klen, name);
  char *path = join(dir, name);
  if (!path) return NULL;
  int fd;
  do fd = open(path, O_RDONLY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    free(path);
    return NULL;
  }
  unsigned char *img = NULL, *kbuf = NULL;
  bool corrupt = false;
  struct stat st;
  unsigned char h[HDR];
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid())
    goto out;
  if (st.st_size < HDR || !read_at(fd, h, HDR, 0)) {
    corrupt = true;
    goto out;
  }
  uint64_t fk = rd64le(h + 16), fi = rd64le(h + 24);
  if (memcmp(h, MAGIC, 8) != 0 || rd32le(h + 8) != VERSION ||
      rd32le(h + 12) != HDR || fk == 0 || fk > EM_KCACHE_MAX_BYTES ||
      fi == 0 || fi > EM_KCACHE_MAX_BYTES ||
      (uint64_t)st.st_size != HDR + fk + fi) {
    corrupt = true;
    goto out;
  }
  /* Another key under the same name: a miss (the file may be fine). */
  if (fk != klen || rd64le(h + 40) != hash2(key, klen, KEY_SEED)) goto out;
  kbuf = malloc(klen);
  if (!kbuf) goto out;
  if (!read_at(fd, kbuf, klen, HDR)) {
    corrupt = true;
    goto out;
  }
  if (memcmp(kbuf, key, klen) != 0) goto out;
  img = malloc(fi);
  if (!img) goto out;
  if (!read_at(fd, img, fi, (off_t)(HDR + klen)) ||
      hash2(img, fi, IMG_SEED) != rd64le(h + 32)) {
    free(img);
    img = NULL;
    corrupt = true;
    goto out;
  }
  *size = fi;
out:
  if (corrupt) {
    remove_if_same(path, fd);
    if (getenv("EMILY_CUDA_DEBUG"))
      fprintf(stderr, "emily: removed a corrupt kernel cache file %s\n", path);
  }
  free(kbuf);
  (void)close(fd);
  free(path);
  return img;
}

/* ---- writing ------------------------------------------------------------------ */

static bool write_all(int fd, const void *buf, size_t n) {
  const unsigned char *p = buf;
  while (n) {
    ssize_t k = write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k;
    n -= (size_t)k;
  }
  return true;
}

bool em_cu_kcache_store(const char *dir, const void *key, size_t klen,
                        const void *image, size_t size) {
  if (!dir || klen == 0 || klen > EM_KCACHE_MAX_BYTES || size == 0 ||
      size > EM_KCACHE_MAX_BYTES)
    return false;
  if (!make_dirs(dir)) {
    if (getenv("EMILY_CUDA_DEBUG"))
      fprintf(stderr, "emily: cannot create the kernel cache directory %s: %s\n",
              dir, strerror(errno));
    return false;
  }
  char name[EM_KCACHE_NAME_LEN], tname[EM_KCACHE_NAME_LEN + 16];
  em_cu_kcache_name(key, klen, name);
  snprintf(tname, sizeof tname, ".tmp-%.32s-XXXXXX", name);
  char *path = join(dir, name), *tmp = join(dir, tname);
  bool ok = false;
  if (!path || !tmp) goto out;
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) goto out;
  unsigned char h[HDR] = {0};
  memcpy(h, MAGIC, 8);
  wr32le(h + 8, VERSION);
  wr32le(h + 12, HDR);
  wr64le(h + 16, klen);
  wr64le(h + 24, size);
  wr64le(h + 32, hash2(image, size, IMG_SEED));
  wr64le(h + 40, hash2(key, klen, KEY_SEED));
  ok = write_all(fd, h, HDR) && write_all(fd, key, klen) &&
       write_all(fd, image, size);
  if (close(fd) != 0) ok = false;
  if (ok && rename(tmp, path) != 0) ok = false;
  if (!ok) {
    if (getenv("EMILY_CUDA_DEBUG"))
      fprintf(stderr, "emily: could not store %s in the kernel cache: %s\n",
              name, strerror(errno));
    (void)unlink(tmp);
  }
out:
  free(path);
  free(tmp);
  return ok;
}
