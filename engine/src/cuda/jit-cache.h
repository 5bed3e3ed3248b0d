/* jit-cache.h — the on-disk cache of run-time compiled CUDA kernels
 * (jit_cache.c: plain C, no GPU or CUDA library needed) and the cached
 * compile entry point of jit.c.
 *
 * An entry maps a key (the exact text NVRTC compiles plus everything that
 * changes its output: NVRTC version, architecture, options; jit.c builds
 * it) to an image (cubin or PTX bytes). One file per entry, named by two
 * independent 64-bit hashes of the key; the file holds the whole key, which
 * a lookup compares byte for byte, so a hash collision is a miss, never the
 * wrong kernel. Every failure (no directory, unreadable, corrupt or
 * truncated file, disk full) is a miss or "not stored", never an error. */
#ifndef EMILY_CUDA_JIT_CACHE_H
#define EMILY_CUDA_JIT_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "emily.h"

/* Images (and keys) larger than this are not stored. */
#define EM_KCACHE_MAX_BYTES ((size_t)64 << 20)
/* The file name of an entry: 32 hex digits + ".kc" + NUL. */
#define EM_KCACHE_NAME_LEN 36

/* The cache directory into buf (cap bytes): EMILY_CUDA_CACHE_DIR if set and
 * not empty, else $XDG_CACHE_HOME/emily/cuda (absolute XDG_CACHE_HOME only),
 * else $HOME/.cache/emily/cuda. False when the cache is off
 * (EMILY_CUDA_CACHE=0, off, false or no), when no directory can be named, or
 * when the path does not fit. Reads the environment on every call. */
bool em_cu_kcache_dir(char *buf, size_t cap);

/* The file name (no directory) of key's entry. */
void em_cu_kcache_name(const void *key, size_t klen,
                       char name[EM_KCACHE_NAME_LEN]);

/* The image stored under key in dir, malloc'd (caller frees), its length in
 * *size; NULL on a miss. A file that is not a well-formed entry (bad magic,
 * wrong length, checksum mismatch) is removed. */
void *em_cu_kcache_load(const char *dir, const void *key, size_t klen,
                        size_t *size);

/* Stores image under key in dir (created, mode 0700, with its parents):
 * written to a temporary file in dir, then renamed over the entry, so
 * concurrent writers (threads or processes) and readers only ever see whole
 * files. True when stored. */
bool em_cu_kcache_store(const char *dir, const void *key, size_t klen,
                        const void *image, size_t size);

/* jit.c: compiles the CUDA C `body` (after the prelude) for arch ("sm_90")
 * through the cache: a lookup first when `lookup`, NVRTC on a miss, then a
 * store. *image is a cubin (or PTX when NVRTC does not know arch), malloc'd;
 * *from_disk (if not NULL) tells whether it came from the cache. Needs NVRTC
 * but no GPU. */
em_status em_cu_jit_compile(const char *op, const char *arch, const char *body,
                            bool lookup, char **image, size_t *size,
                            bool *from_disk);

#endif
