/* parallel.h — the CPU thread pool for intra-op parallelism.
 * One pool per process, sized to the cores (EMILY_NUM_THREADS overrides).
 * em_parallel_for splits [0, n) into contiguous chunks of at least `grain`
 * items and runs fn on them, the calling thread included; it returns when
 * all chunks are done. Nested calls run serially on the calling thread. */
#ifndef EMILY_PARALLEL_H
#define EMILY_PARALLEL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef void (*em_range_fn)(void *ctx, int64_t begin, int64_t end, int tid);

void em_parallel_for(int64_t n, int64_t grain, em_range_fn fn, void *ctx);
/* Threads em_parallel_for may use (>= 1); tid in fn is below this. */
int em_parallel_threads(void);
/* Spins while *flag is 0, for as long as an idle pool thread would (0
 * when threads outnumber cores); true if *flag became nonzero. Stream
 * workers use it to catch the next task without a thread wake-up. */
bool em_spin_while_zero(atomic_int *flag);

#endif
