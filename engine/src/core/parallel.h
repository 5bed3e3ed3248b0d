/* parallel.h — the CPU thread pool for intra-op parallelism.
 * One pool per process, sized to the cores (EMILY_NUM_THREADS overrides).
 * em_parallel_for splits [0, n) into contiguous chunks of at least `grain`
 * items and runs fn on them, the calling thread included; it returns when
 * all chunks are done. Nested calls run serially on the calling thread. */
#ifndef EMILY_PARALLEL_H
#define EMILY_PARALLEL_H

#include <stdint.h>

typedef void (*em_range_fn)(void *ctx, int64_t begin, int64_t end, int tid);

void em_parallel_for(int64_t n, int64_t grain, em_range_fn fn, void *ctx);
/* Threads em_parallel_for may use (>= 1); tid in fn is below this. */
int em_parallel_threads(void);

#endif
