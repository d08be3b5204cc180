/* The worker-thread pool: blocking syscalls (aio=threads) and CPU-heavy
 * work (compression, encryption, checksums) run here so the event loop
 * never blocks and every core is used.  Workers are started on demand up to
 * a limit and exit after being idle for a while. */
#ifndef BLOCK_THREADPOOL_H
#define BLOCK_THREADPOOL_H

#include <stdint.h>

#include "coroutine.h"

typedef int threadpool_fn(void *opaque);

/* Run fn(opaque) on a worker and return its result.  In a coroutine, the
 * coroutine yields until the worker is done (the loop keeps running); outside
 * one, this simply calls fn on the current thread. */
int coroutine_fn threadpool_run(threadpool_fn *fn, void *opaque);

/* The same, in lane `lane` (nonzero): requests of one lane run one at a
 * time in the order they were submitted, one after the other on the same
 * worker.  For work the kernel serialises anyway (buffered writes to one
 * file), where running it side by side only adds lock contention. */
int coroutine_fn threadpool_run_lane(uintptr_t lane, threadpool_fn *fn,
                                     void *opaque);

/* Callback style: fn runs on a worker, then done(opaque, ret) runs on the
 * submitting thread's loop. */
void threadpool_submit(threadpool_fn *fn, void *opaque,
                       void (*done)(void *opaque, int ret));

/* Upper bound on workers (default 64); for tests and benchmarks. */
void threadpool_set_max_threads(int n);

#endif
