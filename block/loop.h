/* The event loop: one per thread, created on first use.  It waits (epoll)
 * for file descriptors, timers and deferred calls, and runs their callbacks
 * on its own thread.  Everything but loop_defer()/loop_defer_bh() and
 * loop_notify() must be called on the loop's thread. */
#ifndef BLOCK_LOOP_H
#define BLOCK_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;
typedef void loop_cb_fn(void *opaque);

/* This thread's loop (created on first call, freed at thread exit). */
struct loop *loop_current(void);

/* Watch `fd`: read_cb when readable, write_cb when writable (either may be
 * NULL).  Calling it again replaces the handlers; both NULL removes fd. */
int loop_set_fd_handler(struct loop *l, int fd, loop_cb_fn *read_cb,
                        loop_cb_fn *write_cb, void *opaque);

/* A deferred call with caller-owned storage (no allocation on the hot
 * path).  Scheduling one that is already pending does nothing. */
struct loop_bh {
    loop_cb_fn *cb;
    void *opaque;
    struct loop_bh *next;
    int scheduled; /* accessed atomically */
};
void loop_bh_init(struct loop_bh *bh, loop_cb_fn *cb, void *opaque);
/* Run bh->cb on l's thread soon; safe from any thread, wakes the loop. */
void loop_defer_bh(struct loop *l, struct loop_bh *bh);
/* Same with an allocated one-shot bh. */
void loop_defer(struct loop *l, loop_cb_fn *cb, void *opaque);
/* Wake the loop from another thread without scheduling anything. */
void loop_notify(struct loop *l);

/* Busy-polling before the loop blocks, as QEMU's adaptive polling: a
 * poller looks at its completion source without a system call and runs
 * the callbacks of what arrived.  It returns 1 when it ran some, 0 when it
 * has work outstanding that has not completed yet, -1 when it has none
 * (then polling for it is pointless).  The time spent polling adapts to
 * how long the loop actually waits, up to STRATA_POLL_MAX_NS (default
 * 32768 ns; 0 turns polling off). */
struct loop_poller {
    int (*poll)(void *opaque);
    void *opaque;
    struct loop_poller *next;
};
void loop_add_poller(struct loop *l, struct loop_poller *p);
void loop_del_poller(struct loop *l, struct loop_poller *p);

/* Timers on CLOCK_MONOTONIC. */
struct loop_timer;
struct loop_timer *loop_timer_new(struct loop *l, loop_cb_fn *cb,
                                  void *opaque);
/* Fire once at absolute time `deadline_ns` (clock_ns() scale). */
void loop_timer_mod(struct loop_timer *t, uint64_t deadline_ns);
void loop_timer_del(struct loop_timer *t);
void loop_timer_free(struct loop_timer *t);
uint64_t clock_ns(void);

/* Run one iteration: deferred calls, expired timers, ready fds.  When
 * `blocking`, wait until at least one thing happened.  Returns true if
 * any callback ran. */
bool loop_poll(struct loop *l, bool blocking);
/* Run until *done becomes true (used by the synchronous wrappers). */
void loop_run_until(struct loop *l, const bool *done);

#endif
