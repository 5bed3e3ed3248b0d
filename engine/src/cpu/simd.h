/* simd.h — portable vectorisation helpers for CPU kernels.
 * EM_CLONES compiles a hot loop for AVX-512, AVX2 and baseline x86-64 and
 * picks one at load time (GCC ifunc), so one binary is fast everywhere. */
#ifndef EMILY_SIMD_H
#define EMILY_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(EMILY_NO_CLONES)
#define EM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define EM_CLONES
#endif

#endif
