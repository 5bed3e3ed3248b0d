/* cuda-api.h — what the core (src/core) calls of the CUDA backend. Only
 * included where EMILY_HAVE_CUDA is defined (CMake's EMILY_CUDA); no CUDA
 * header is needed to include it. Every function is safe to call on a
 * machine without a driver or GPU (em_cuda_device_count() is then 0 and
 * the op layer rejects CUDA devices before anything else runs). */
#ifndef EMILY_CUDA_API_H
#define EMILY_CUDA_API_H

#include "../core/backend-impl.h"

extern const em_backend em_cuda_backend;

/* Devices with a working driver (0 without one; never fails). */
int em_cuda_device_count(void);

/* Caching allocator of device memory (alloc.c routes CUDA devices here):
 * same bins, statistics, limit and fault injection as the CPU's. */
void *em_cuda_alloc(int dev, size_t nbytes, em_status *st);
void em_cuda_free(int dev, void *p, size_t nbytes);
em_status em_cuda_memory_stats(int dev, em_memory_stats *out);
void em_cuda_memory_reset_peak(int dev);
void em_cuda_memory_clear_cache(int dev);
void em_cuda_memory_set_limit(int dev, size_t bytes);
void em_cuda_memory_fail_after(int dev, long n);

/* Streams (stream.c): each engine stream on a CUDA device owns a CUDA
 * stream; its worker thread binds it (kernels launched from that thread
 * go to it) and ends every task by synchronizing it, which reports
 * asynchronous errors and lets its freed blocks go to other streams. */
em_status em_cuda_stream_create(int dev, void **out);
void em_cuda_stream_destroy(void *cs);
void em_cuda_thread_bind(void *cs);
em_status em_cuda_stream_end_task(void *cs);

/* Who writes a buffer: the stream bound to this thread (retained; NULL
 * outside a stream task) and its current task's number. wait_producer
 * returns once that task has finished (at once on the producing stream
 * itself, where order is the stream's); producer_release drops the
 * reference. */
void *em_cuda_producer(uint64_t *ticket);
void em_cuda_wait_producer(void *cs, uint64_t ticket);
void em_cuda_producer_release(void *cs);

/* Host <-> device (pinned staging). */
em_status em_cuda_upload(int dev, void *dst, const void *src, size_t nbytes);
/* Row-major bytes of a DONE CUDA array into host memory. */
em_status em_cuda_download_array(em_array *a, void *dst);
/* em_copy_to_device when either side is a CUDA device. */
em_status em_cuda_transfer(em_array **out, em_array *a, em_device dev);
/* After an evaluation waited for arrays another evaluation computed: their
 * kernels may still be queued on another stream, so wait for the device. */
void em_cuda_after_waits(em_array *const *arrays, size_t n);

#endif
