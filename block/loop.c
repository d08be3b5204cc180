/* The per-thread event loop: epoll for file descriptors, an eventfd that
 * other threads use to wake it, a FIFO of deferred calls (bottom halves)
 * shared with other threads under a mutex, and timers in a sorted list.
 *
 * Wake-ups are cheap when the loop is busy: other threads only write the
 * eventfd while the loop is (about to be) blocked in epoll, which it
 * announces in `notify_me`. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "util.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define LOOP_MAX_EVENTS 64

struct loop_fd {
    int fd;
    loop_cb_fn *read_cb, *write_cb;
    void *opaque;
    bool deleted; /* removed while an event for it may still be queued */
    struct loop_fd *next;
};

struct loop_timer {
    struct loop *l;
    loop_cb_fn *cb;
    void *opaque;
    uint64_t deadline; /* clock_ns() scale */
    uint64_t seq;      /* when it was armed, so a pass skips re-armed ones */
    bool pending;
    struct loop_timer *prev, *next;
};

struct loop {
    int epfd, efd;
    struct loop_fd *fds;       /* live handlers */
    struct loop_fd *zombies;   /* removed during dispatch, freed after it */
    int depth;                 /* nesting of loop_poll calls */
    struct loop_timer *timers; /* pending, by deadline then arming order */
    uint64_t timer_seq;

    pthread_mutex_t bh_lock;
    struct loop_bh *bh_head, *bh_tail; /* FIFO, under bh_lock */

    struct loop_poller *pollers;
    uint64_t poll_ns;      /* current busy-poll budget before blocking */
    uint64_t poll_max_ns;

    int notify_me; /* atomic: the loop may block in epoll */
    int notified;  /* atomic: the eventfd has been written, not yet read */
    int kicked;    /* atomic: loop_notify() since the last poll */
};

static __thread struct loop *loop_cur;
static pthread_key_t loop_key;
static pthread_once_t loop_key_once = PTHREAD_ONCE_INIT;

static void __attribute__((noreturn)) loop_die(const char *msg)
{
    perror(msg);
    abort();
}

static void loop_defer_cb(void *opaque);

/* Thread exit: close the loop.  Timers belong to their owners and are
 * only unlinked; one-shot calls still pending are dropped. */
static void loop_destroy(void *opaque)
{
    struct loop *l = opaque;

    while (l->fds) {
        struct loop_fd *h = l->fds;
        l->fds = h->next;
        free(h);
    }
    while (l->zombies) {
        struct loop_fd *h = l->zombies;
        l->zombies = h->next;
        free(h);
    }
    for (struct loop_timer *t = l->timers; t; t = t->next) {
        t->pending = false;
    }
    while (l->bh_head) {
        struct loop_bh *bh = l->bh_head;
        l->bh_head = bh->next;
        __atomic_store_n(&bh->scheduled, 0, __ATOMIC_RELEASE);
        if (bh->cb == loop_defer_cb) {
            free(bh);
        }
    }
    close(l->epfd);
    close(l->efd);
    pthread_mutex_destroy(&l->bh_lock);
    free(l);
    loop_cur = NULL;
}

static void loop_key_create(void)
{
    if (pthread_key_create(&loop_key, loop_destroy) != 0) {
        loop_die("strata: loop: pthread_key_create");
    }
}

#define LOOP_POLL_MAX_NS 32768 /* QEMU's default poll-max-ns */
#define LOOP_POLL_GROW_START_NS 4000

/* STRATA_POLL_MAX_NS, or the default. */
static uint64_t poll_max_from_env(void)
{
    const char *v = getenv("STRATA_POLL_MAX_NS");
    char *end;
    unsigned long long n;

    if (!v || !*v) {
        return LOOP_POLL_MAX_NS;
    }
    errno = 0;
    n = strtoull(v, &end, 10);
    if (errno || *end || n > 1000000000ull) {
        return LOOP_POLL_MAX_NS;
    }
    return n;
}

/* epoll instance plus the eventfd that other threads wake us through. */
static struct loop *loop_create(void)
{
    struct loop *l = xzalloc(sizeof(*l));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        loop_die("strata: loop: epoll_create1");
    }
    l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->efd < 0) {
        loop_die("strata: loop: eventfd");
    }
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->efd, &ev) < 0) {
        loop_die("strata: loop: epoll_ctl");
    }
    pthread_mutex_init(&l->bh_lock, NULL);
    l->poll_max_ns = poll_max_from_env();
    return l;
}

struct loop *loop_current(void)
{
    struct loop *l = loop_cur;

    if (__builtin_expect(l != NULL, 1)) {
        return l;
    }
    pthread_once(&loop_key_once, loop_key_create);
    l = loop_create();
    pthread_setspecific(loop_key, l);
    loop_cur = l;
    return l;
}

uint64_t clock_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- file descriptors ---- */

static struct loop_fd *fd_find(struct loop *l, int fd)
{
    for (struct loop_fd *h = l->fds; h; h = h->next) {
        if (h->fd == fd) {
            return h;
        }
    }
    return NULL;
}

/* Stop watching h; freed now, or after the dispatch that may still hold
 * an event for it. */
static void fd_remove(struct loop *l, struct loop_fd *h)
{
    struct loop_fd **pp = &l->fds;

    while (*pp != h) {
        pp = &(*pp)->next;
    }
    *pp = h->next;
    /* fails harmlessly when the caller already closed the fd */
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, h->fd, NULL);
    if (l->depth > 0) {
        /* an event for it may sit in a dispatch array right now */
        h->deleted = true;
        h->next = l->zombies;
        l->zombies = h;
    } else {
        free(h);
    }
}

int loop_set_fd_handler(struct loop *l, int fd, loop_cb_fn *read_cb,
                        loop_cb_fn *write_cb, void *opaque)
{
    struct loop_fd *h = fd_find(l, fd);
    struct epoll_event ev = {
        .events = (read_cb ? EPOLLIN : 0) | (write_cb ? EPOLLOUT : 0),
    };

    if (!read_cb && !write_cb) {
        if (h) {
            fd_remove(l, h);
        }
        return 0;
    }
    if (h) {
        ev.data.ptr = h;
        if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0) {
            /* the fd was closed and its number reused meanwhile */
            if (errno != ENOENT ||
                epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                return -errno;
            }
        }
    } else {
        h = xzalloc(sizeof(*h));
        h->fd = fd;
        ev.data.ptr = h;
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            int err = -errno;
            free(h);
            return err;
        }
        h->next = l->fds;
        l->fds = h;
    }
    h->read_cb = read_cb;
    h->write_cb = write_cb;
    h->opaque = opaque;
    return 0;
}

/* ---- deferred calls ---- */

void loop_bh_init(struct loop_bh *bh, loop_cb_fn *cb, void *opaque)
{
    bh->cb = cb;
    bh->opaque = opaque;
    bh->next = NULL;
    bh->scheduled = 0;
}

/* Write the eventfd if the loop may be blocked and nobody did yet.  Our
 * work was published with a seq_cst store and notify_me is read seq_cst,
 * as loop_poll does the reverse: either the loop sees our work before it
 * blocks, or we see notify_me and wake it. */
static void loop_kick(struct loop *l)
{
    if (__atomic_load_n(&l->notify_me, __ATOMIC_SEQ_CST) &&
        !__atomic_exchange_n(&l->notified, 1, __ATOMIC_ACQ_REL)) {
        uint64_t one = 1;
        if (write(l->efd, &one, sizeof(one)) < 0) {
            /* EAGAIN: the counter is saturated, so it is readable anyway */
        }
    }
}

void loop_defer_bh(struct loop *l, struct loop_bh *bh)
{
    if (__atomic_exchange_n(&bh->scheduled, 1, __ATOMIC_ACQ_REL)) {
        return;
    }
    bh->next = NULL;
    pthread_mutex_lock(&l->bh_lock);
    if (l->bh_tail) {
        l->bh_tail->next = bh;
    } else {
        /* the empty -> non-empty change is what a blocking loop misses */
        __atomic_store_n(&l->bh_head, bh, __ATOMIC_SEQ_CST);
    }
    l->bh_tail = bh;
    pthread_mutex_unlock(&l->bh_lock);
    /* from here on bh may already have run and been freed */
    loop_kick(l);
}

struct loop_oneshot {
    struct loop_bh bh; /* first: loop_destroy frees through it */
    loop_cb_fn *cb;
    void *opaque;
};

/* A one-shot call from loop_defer(): its storage goes before the call. */
static void loop_defer_cb(void *opaque)
{
    struct loop_oneshot *o = opaque;
    loop_cb_fn *cb = o->cb;
    void *cb_opaque = o->opaque;

    free(o);
    cb(cb_opaque);
}

void loop_defer(struct loop *l, loop_cb_fn *cb, void *opaque)
{
    struct loop_oneshot *o = xmalloc(sizeof(*o));

    loop_bh_init(&o->bh, loop_defer_cb, o);
    o->cb = cb;
    o->opaque = opaque;
    loop_defer_bh(l, &o->bh);
}

void loop_notify(struct loop *l)
{
    __atomic_store_n(&l->kicked, 1, __ATOMIC_SEQ_CST);
    loop_kick(l);
}

static bool bh_pending(struct loop *l)
{
    return __atomic_load_n(&l->bh_head, __ATOMIC_SEQ_CST) != NULL;
}

/* Run the calls scheduled so far, in order.  Ones scheduled meanwhile
 * wait for the next round, so a call that reschedules itself cannot
 * starve the loop. */
static bool run_bhs(struct loop *l)
{
    struct loop_bh *bh;

    if (!bh_pending(l)) {
        return false;
    }
    pthread_mutex_lock(&l->bh_lock);
    bh = l->bh_head;
    __atomic_store_n(&l->bh_head, NULL, __ATOMIC_RELAXED);
    l->bh_tail = NULL;
    pthread_mutex_unlock(&l->bh_lock);

    while (bh) {
        struct loop_bh *next = bh->next;
        /* cleared first so that the callback may schedule it again */
        __atomic_store_n(&bh->scheduled, 0, __ATOMIC_RELEASE);
        bh->cb(bh->opaque);
        bh = next;
    }
    return true;
}

/* ---- timers ---- */

struct loop_timer *loop_timer_new(struct loop *l, loop_cb_fn *cb, void *opaque)
{
    struct loop_timer *t = xzalloc(sizeof(*t));

    t->l = l;
    t->cb = cb;
    t->opaque = opaque;
    return t;
}

/* Take a pending timer out of the sorted list. */
static void timer_unlink(struct loop_timer *t)
{
    if (t->prev) {
        t->prev->next = t->next;
    } else {
        t->l->timers = t->next;
    }
    if (t->next) {
        t->next->prev = t->prev;
    }
    t->prev = t->next = NULL;
    t->pending = false;
}

void loop_timer_mod(struct loop_timer *t, uint64_t deadline_ns)
{
    struct loop *l = t->l;
    struct loop_timer *prev = NULL, *cur;

    if (t->pending) {
        timer_unlink(t);
    }
    t->deadline = deadline_ns;
    t->seq = ++l->timer_seq;
    /* after every timer with the same deadline: equal ones fire in the
     * order they were armed */
    for (cur = l->timers; cur && cur->deadline <= deadline_ns;
         cur = cur->next) {
        prev = cur;
    }
    t->prev = prev;
    t->next = cur;
    if (prev) {
        prev->next = t;
    } else {
        l->timers = t;
    }
    if (cur) {
        cur->prev = t;
    }
    t->pending = true;
}

void loop_timer_del(struct loop_timer *t)
{
    if (t->pending) {
        timer_unlink(t);
    }
}

void loop_timer_free(struct loop_timer *t)
{
    if (t) {
        loop_timer_del(t);
        free(t);
    }
}

/* Fire every timer that expired by now and was armed before this pass
 * began; callbacks may arm, delete or free any timer, themselves too. */
static bool run_timers(struct loop *l)
{
    uint64_t now, seq0 = l->timer_seq;
    bool ran = false;

    if (!l->timers) {
        return false;
    }
    now = clock_ns();
    for (;;) {
        struct loop_timer *t = l->timers;

        while (t && t->deadline <= now && t->seq > seq0) {
            t = t->next;
        }
        if (!t || t->deadline > now) {
            return ran;
        }
        timer_unlink(t);
        t->cb(t->opaque);
        ran = true;
    }
}

/* ---- polling ---- */

void loop_add_poller(struct loop *l, struct loop_poller *p)
{
    p->next = l->pollers;
    l->pollers = p;
}

void loop_del_poller(struct loop *l, struct loop_poller *p)
{
    for (struct loop_poller **pp = &l->pollers; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            return;
        }
    }
}

/* One pass over the pollers: 1 if one ran callbacks, 0 if some still wait
 * for completions, -1 if none has anything outstanding. */
static int run_pollers(struct loop *l)
{
    int best = -1;

    for (struct loop_poller *p = l->pollers; p;) {
        struct loop_poller *next = p->next; /* p may remove itself */
        int r = p->poll(p->opaque);
        if (r > best) {
            best = r;
        }
        p = next;
    }
    return best;
}

/* Spin on the pollers (and on calls deferred from other threads) for up to
 * l->poll_ns before blocking: a completion seen here saves the wake-up of
 * a sleeping thread, which costs most on virtual CPUs.  1: something
 * arrived; 0: the budget ran out with work outstanding; -1: no poller has
 * anything outstanding. */
static int busy_poll(struct loop *l, uint64_t start)
{
    uint64_t now;

    for (;;) {
        int r = run_pollers(l);
        if (r != 0) {
            return r;
        }
        if (bh_pending(l) || __atomic_load_n(&l->kicked, __ATOMIC_SEQ_CST)) {
            return 1;
        }
        now = clock_ns();
        if (now - start >= l->poll_ns) {
            return 0;
        }
    }
}

/* QEMU's adaptation: a wait that ended within the polling budget was
 * the right size; a wait longer than the maximum turns polling off until
 * waits get short again; a short wait grows the budget. */
static void adapt_poll_ns(struct loop *l, uint64_t block_ns)
{
    if (block_ns <= l->poll_ns) {
        return;
    }
    if (block_ns > l->poll_max_ns) {
        l->poll_ns = 0;
    } else if (l->poll_ns < l->poll_max_ns) {
        l->poll_ns = l->poll_ns ? l->poll_ns * 2 : LOOP_POLL_GROW_START_NS;
        if (l->poll_ns > l->poll_max_ns) {
            l->poll_ns = l->poll_max_ns;
        }
    }
}

/* Whether epoll_pwait2 (nanosecond timeouts, Linux 5.11) is usable:
 * 0 unknown, 1 missing, 2 present.  Valgrind 3.19 does not know it and
 * warns on every first use, so it counts as missing there. */
static int pwait2_state;

/* Wait up to `ns` nanoseconds (negative: forever) for events. */
static int loop_wait(struct loop *l, struct epoll_event *ev, int64_t ns)
{
    int n;

    if (ns > 0 && __atomic_load_n(&pwait2_state, __ATOMIC_RELAXED) == 0) {
        __atomic_store_n(&pwait2_state, RUNNING_ON_VALGRIND ? 1 : 2,
                         __ATOMIC_RELAXED);
    }
    if (ns > 0 && __atomic_load_n(&pwait2_state, __ATOMIC_RELAXED) == 2) {
        struct timespec ts = {
            .tv_sec = ns / 1000000000,
            .tv_nsec = ns % 1000000000,
        };
        n = epoll_pwait2(l->epfd, ev, LOOP_MAX_EVENTS, &ts, NULL);
        if (n >= 0 || errno != ENOSYS) {
            return n;
        }
        __atomic_store_n(&pwait2_state, 1, __ATOMIC_RELAXED);
    }
    if (ns > 0) {
        /* rounded up: waking early would only spin */
        int64_t ms = (ns + 999999) / 1000000;
        return epoll_wait(l->epfd, ev, LOOP_MAX_EVENTS,
                          ms > INT32_MAX ? INT32_MAX : (int)ms);
    }
    return epoll_wait(l->epfd, ev, LOOP_MAX_EVENTS, ns < 0 ? -1 : 0);
}

/* Run the callbacks of ready fds; the eventfd only needs draining. */
static bool dispatch_fds(struct loop *l, struct epoll_event *ev, int n)
{
    bool ran = false;

    for (int i = 0; i < n; i++) {
        struct loop_fd *h = ev[i].data.ptr;
        uint32_t e = ev[i].events;

        if (!h) {
            uint64_t count;
            if (read(l->efd, &count, sizeof(count)) < 0) {
                /* EAGAIN: already drained */
            }
            __atomic_store_n(&l->notified, 0, __ATOMIC_RELEASE);
            continue;
        }
        if (h->deleted) {
            continue;
        }
        if ((e & (EPOLLIN | EPOLLHUP | EPOLLERR)) && h->read_cb) {
            h->read_cb(h->opaque);
            ran = true;
        }
        /* the read callback may have removed or changed the handler */
        if (!h->deleted && (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) &&
            h->write_cb) {
            h->write_cb(h->opaque);
            ran = true;
        }
    }
    return ran;
}

bool loop_poll(struct loop *l, bool blocking)
{
    struct epoll_event ev[LOOP_MAX_EVENTS];
    bool progress, polled = false;
    uint64_t poll_start = 0;
    int64_t timeout = 0;
    int n;

    l->depth++;
    progress = run_bhs(l);

    if (blocking && !progress && l->pollers && l->poll_max_ns) {
        int r;
        poll_start = clock_ns();
        r = busy_poll(l, poll_start);
        progress = r > 0;
        polled = r == 0;
    }
    if (blocking && !progress) {
        __atomic_store_n(&l->notify_me, 1, __ATOMIC_SEQ_CST);
        if (bh_pending(l) || __atomic_load_n(&l->kicked, __ATOMIC_SEQ_CST)) {
            timeout = 0;
        } else if (l->timers) {
            uint64_t now = clock_ns();
            timeout = l->timers->deadline <= now
                          ? 0
                          : (int64_t)MIN(l->timers->deadline - now,
                                         (uint64_t)INT64_MAX);
        } else {
            timeout = -1;
        }
    }
    n = loop_wait(l, ev, timeout);
    if (blocking) {
        __atomic_store_n(&l->notify_me, 0, __ATOMIC_RELAXED);
    }
    if (polled) {
        adapt_poll_ns(l, clock_ns() - poll_start);
    }
    __atomic_store_n(&l->kicked, 0, __ATOMIC_RELAXED);
    if (n < 0 && errno != EINTR) {
        loop_die("strata: loop: epoll_wait");
    }

    if (n > 0) {
        progress |= dispatch_fds(l, ev, n);
    }
    progress |= run_timers(l);
    progress |= run_bhs(l);

    if (--l->depth == 0) {
        while (l->zombies) {
            struct loop_fd *h = l->zombies;
            l->zombies = h->next;
            free(h);
        }
    }
    return progress;
}

void loop_run_until(struct loop *l, const bool *done)
{
    while (!__atomic_load_n(done, __ATOMIC_ACQUIRE)) {
        loop_poll(l, true);
    }
}
