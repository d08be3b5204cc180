/* Coroutines: the data path is written straight-line and yields while I/O
 * is in flight.  A coroutine belongs to the thread that created it and is
 * only ever entered on that thread; other threads hand work back through
 * coroutine_wake() (which goes through the owning thread's event loop).
 *
 * Functions marked coroutine_fn may yield and must be called from
 * coroutine context. */
#ifndef BLOCK_COROUTINE_H
#define BLOCK_COROUTINE_H

#include <stdbool.h>
#include <stddef.h>

#define coroutine_fn /* may yield: call only inside a coroutine */

struct coroutine;
struct loop;
typedef void coroutine_entry_fn(void *opaque);

/* A new coroutine that runs fn(opaque) when first entered.  Stacks are
 * pooled; the coroutine is freed when fn returns.  Never fails (aborts on
 * out-of-memory, like malloc-failure handling everywhere in this code). */
struct coroutine *coroutine_create(coroutine_entry_fn *fn, void *opaque);
/* Switch into `co` until it yields or finishes.  Callable from plain code
 * or from another coroutine (which then becomes co's caller). */
void coroutine_enter(struct coroutine *co);
/* Give control back to whoever entered us. */
void coroutine_fn coroutine_yield(void);
/* The running coroutine, or NULL outside of coroutine context. */
struct coroutine *coroutine_self(void);
bool in_coroutine(void);
/* Enter `co` later from its home loop; safe from any thread. */
void coroutine_wake(struct coroutine *co);
/* The loop of the thread that created `co`. */
struct loop *coroutine_loop(struct coroutine *co);

/* Queue of coroutines waiting for something (single-threaded use). */
struct co_queue {
    struct co_waiter *head, *tail;
};
#define CO_QUEUE_INIT {NULL, NULL}
void co_queue_init(struct co_queue *q);
/* Sleep until woken by co_queue_next/co_queue_wake_all. */
void coroutine_fn co_queue_wait(struct co_queue *q);
/* Wake the first waiter (it runs later from the loop); false when empty. */
bool co_queue_next(struct co_queue *q);
void co_queue_wake_all(struct co_queue *q);
bool co_queue_empty(const struct co_queue *q);

/* Mutex for coroutines of one thread (metadata in format drivers). */
struct co_mutex {
    bool locked;
    struct co_queue waiters;
};
void co_mutex_init(struct co_mutex *m);
void coroutine_fn co_mutex_lock(struct co_mutex *m);
void co_mutex_unlock(struct co_mutex *m);

/* Readers/writer lock for coroutines of one thread. */
struct co_rwlock {
    int readers;
    bool writer;
    struct co_queue waiters;
};
void co_rwlock_init(struct co_rwlock *l);
void coroutine_fn co_rwlock_rdlock(struct co_rwlock *l);
void coroutine_fn co_rwlock_wrlock(struct co_rwlock *l);
void co_rwlock_unlock(struct co_rwlock *l);

/* Sleep for `ns` nanoseconds on the thread's loop. */
void coroutine_fn co_sleep_ns(unsigned long long ns);

#endif
