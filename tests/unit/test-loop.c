/* The event loop: fd handlers on pipes (including removal from inside a
 * callback), timers in deadline order, deferred calls in FIFO order and
 * wake-ups of a blocked loop from another thread. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop.h"
#include "tap.h"

static char trace[64];

static void note(char c)
{
    size_t n = strlen(trace);
    if (n + 1 < sizeof(trace)) {
        trace[n] = c;
        trace[n + 1] = 0;
    }
}

/* ---- fd handlers ---- */

struct pipe_ctx {
    int fds[2];
    int reads, writes;
    char got;
    struct pipe_ctx *victim; /* handler to remove from our callback */
};

static void pipe_read_cb(void *opaque)
{
    struct pipe_ctx *p = opaque;

    p->reads++;
    if (read(p->fds[0], &p->got, 1) != 1) {
        p->got = '?';
    }
}

static void pipe_write_cb(void *opaque)
{
    struct pipe_ctx *p = opaque;

    p->writes++;
}

static void test_fd(void)
{
    struct loop *l = loop_current();
    struct pipe_ctx p = {0};

    if (pipe(p.fds) != 0) {
        abort();
    }
    tap_is(loop_set_fd_handler(l, p.fds[0], pipe_read_cb, NULL, &p), 0,
           "read handler on a pipe registered");
    tap_ok(!loop_poll(l, false) && p.reads == 0,
           "an empty pipe runs no callback");
    if (write(p.fds[1], "z", 1) != 1) {
        abort();
    }
    tap_ok(loop_poll(l, true) && p.reads == 1 && p.got == 'z',
           "a readable pipe runs the read callback with the data");

    tap_is(loop_set_fd_handler(l, p.fds[1], NULL, pipe_write_cb, &p), 0,
           "write handler registered");
    loop_poll(l, true);
    tap_ok(p.writes == 1 && p.reads == 1,
           "a writable pipe runs only the write callback");
    loop_set_fd_handler(l, p.fds[1], NULL, NULL, NULL);
    loop_set_fd_handler(l, p.fds[0], NULL, NULL, NULL);
    if (write(p.fds[1], "y", 1) != 1) {
        abort();
    }
    loop_poll(l, false);
    tap_ok(p.writes == 1 && p.reads == 1,
           "removed handlers are not called any more");
    tap_is(loop_set_fd_handler(l, 0x7fffff0, pipe_read_cb, NULL, &p), -EBADF,
           "a bad fd is refused with -EBADF");
    close(p.fds[0]);
    close(p.fds[1]);
}

/* Both pipes are ready in the same poll; whichever callback runs first
 * removes (and closes) both, so exactly one callback runs, and the removed
 * handler's stale event is ignored. */
static void remove_both_cb(void *opaque)
{
    struct pipe_ctx *p = opaque;
    struct loop *l = loop_current();

    p->reads++;
    loop_set_fd_handler(l, p->fds[0], NULL, NULL, NULL);
    loop_set_fd_handler(l, p->victim->fds[0], NULL, NULL, NULL);
    close(p->fds[0]);
    close(p->victim->fds[0]);
}

static void test_remove_in_callback(void)
{
    struct loop *l = loop_current();
    struct pipe_ctx a = {0}, b = {0};

    if (pipe(a.fds) != 0 || pipe(b.fds) != 0) {
        abort();
    }
    a.victim = &b;
    b.victim = &a;
    loop_set_fd_handler(l, a.fds[0], remove_both_cb, NULL, &a);
    loop_set_fd_handler(l, b.fds[0], remove_both_cb, NULL, &b);
    if (write(a.fds[1], "1", 1) != 1 || write(b.fds[1], "2", 1) != 1) {
        abort();
    }
    loop_poll(l, true);
    tap_is(a.reads + b.reads, 1,
           "a handler removed by another callback in the same poll is not "
           "called");
    tap_ok(!loop_poll(l, false), "nothing left to run afterwards");
    close(a.fds[1]);
    close(b.fds[1]);
}

/* ---- timers ---- */

struct timer_ctx {
    char id;
    struct loop_timer *t;
    int rearm;               /* times to re-arm itself */
    struct loop_timer *kill; /* timer to free from the callback */
};

static void timer_cb(void *opaque)
{
    struct timer_ctx *c = opaque;

    note(c->id);
    if (c->rearm-- > 0) {
        loop_timer_mod(c->t, clock_ns() + 1000000);
    }
    if (c->kill) {
        loop_timer_free(c->kill);
        c->kill = NULL;
    }
}

static void test_timers(void)
{
    struct loop *l = loop_current();
    struct timer_ctx c[5] = {
        {'3', NULL, 0, NULL}, {'1', NULL, 0, NULL}, {'2', NULL, 0, NULL},
        {'D', NULL, 0, NULL}, {'K', NULL, 0, NULL},
    };
    uint64_t now = clock_ns();

    trace[0] = 0;
    for (int i = 0; i < 5; i++) {
        c[i].t = loop_timer_new(l, timer_cb, &c[i]);
    }
    loop_timer_mod(c[0].t, now + 30000000);
    loop_timer_mod(c[1].t, now + 10000000);
    loop_timer_mod(c[2].t, now + 20000000);
    loop_timer_mod(c[3].t, now + 15000000);
    loop_timer_del(c[3].t);
    /* '2' frees 'K' before it is due */
    loop_timer_mod(c[4].t, now + 40000000);
    c[2].kill = c[4].t;
    while (strlen(trace) < 3) {
        loop_poll(l, true);
    }
    tap_ok(clock_ns() >= now + 30000000, "timers do not fire early");
    tap_ok(strcmp(trace, "123") == 0,
           "timers fire in deadline order; a deleted one never (%s)", trace);
    loop_timer_mod(c[3].t, now + 45000000);
    while (strlen(trace) < 4) {
        loop_poll(l, true);
    }
    tap_ok(strcmp(trace, "123D") == 0,
           "a freed timer never fires; a re-armed deleted one does (%s)",
           trace);

    /* a timer that re-arms itself from its callback */
    trace[0] = 0;
    c[1].rearm = 2;
    loop_timer_mod(c[1].t, clock_ns());
    while (strlen(trace) < 3) {
        loop_poll(l, true);
    }
    tap_ok(strcmp(trace, "111") == 0,
           "a timer re-armed from its own callback fires again (%s)", trace);

    /* equal deadlines fire in arming order */
    trace[0] = 0;
    now = clock_ns();
    loop_timer_mod(c[2].t, now);
    loop_timer_mod(c[0].t, now);
    loop_timer_mod(c[1].t, now);
    loop_poll(l, false);
    tap_ok(strcmp(trace, "231") == 0,
           "expired timers with equal deadlines fire in arming order (%s)",
           trace);
    for (int i = 0; i < 4; i++) {
        loop_timer_free(c[i].t);
    }
}

/* ---- deferred calls ---- */

struct bh_ctx {
    char id;
    struct loop_bh bh;
    struct loop_bh *again; /* bh to schedule from the callback */
};

static void bh_cb(void *opaque)
{
    struct bh_ctx *c = opaque;

    note(c->id);
    if (c->again) {
        loop_defer_bh(loop_current(), c->again);
        c->again = NULL;
    }
}

static void oneshot_cb(void *opaque)
{
    note(*(char *)opaque);
}

static void test_bh(void)
{
    struct loop *l = loop_current();
    struct bh_ctx c[4];
    static char e = 'e';

    trace[0] = 0;
    for (int i = 0; i < 4; i++) {
        c[i].id = (char)('a' + i);
        c[i].again = NULL;
        loop_bh_init(&c[i].bh, bh_cb, &c[i]);
    }
    c[1].again = &c[1].bh; /* b reschedules itself once */
    loop_defer_bh(l, &c[0].bh);
    loop_defer_bh(l, &c[1].bh);
    loop_defer_bh(l, &c[2].bh);
    loop_defer_bh(l, &c[0].bh); /* already pending: no-op */
    loop_defer(l, oneshot_cb, &e);
    loop_defer_bh(l, &c[3].bh);
    tap_ok(trace[0] == 0, "deferred calls do not run synchronously");
    tap_ok(loop_poll(l, false), "loop_poll reports that callbacks ran");
    tap_ok(strcmp(trace, "abcedb") == 0,
           "deferred calls run once each in FIFO order, a rescheduled "
           "one again after them (%s)",
           trace);
    tap_ok(!loop_poll(l, false), "no progress once everything ran");
}

/* ---- cross-thread wake-ups ---- */

struct remote_ctx {
    struct loop *l;
    struct loop_bh bh;
    pthread_t ran_on;
    bool done;
    bool flag_only; /* set done and loop_notify() instead of a bh */
};

static void remote_bh_cb(void *opaque)
{
    struct remote_ctx *r = opaque;

    r->ran_on = pthread_self();
    r->done = true;
}

static void *remote_thread(void *opaque)
{
    struct remote_ctx *r = opaque;

    usleep(50000); /* let the loop block first */
    if (r->flag_only) {
        __atomic_store_n(&r->done, true, __ATOMIC_RELEASE);
        loop_notify(r->l);
    } else {
        loop_defer_bh(r->l, &r->bh);
    }
    return NULL;
}

static void *other_loop_thread(void *opaque)
{
    return loop_current();
}

static void test_remote(void)
{
    struct remote_ctx r = {.l = loop_current()};
    pthread_t tid;
    void *other;
    bool ran;

    loop_bh_init(&r.bh, remote_bh_cb, &r);
    pthread_create(&tid, NULL, remote_thread, &r);
    ran = loop_poll(r.l, true); /* nothing else to wait for */
    pthread_join(tid, NULL);
    tap_ok(ran && r.done, "a bh from another thread wakes a blocking "
                          "loop_poll and runs");
    tap_ok(pthread_equal(r.ran_on, pthread_self()),
           "the bh ran on the loop's own thread");

    r.done = false;
    r.flag_only = true;
    pthread_create(&tid, NULL, remote_thread, &r);
    loop_run_until(r.l, &r.done);
    pthread_join(tid, NULL);
    tap_ok(r.done, "loop_notify() from another thread ends loop_run_until");

    pthread_create(&tid, NULL, other_loop_thread, NULL);
    pthread_join(tid, &other);
    tap_ok(other != NULL && other != r.l && loop_current() == r.l,
           "each thread has its own loop");
}

/* ---- busy-polling ---- */

struct poll_ctx {
    int calls;      /* poller invocations */
    int ready_at;   /* the "completion" shows up on this call (0: never) */
    bool outstanding;
    bool completed; /* the poller ran the completion */
    int fds[2];     /* "other events": another thread writes every 2 ms */
    int fd_events;
    int fd_limit;   /* stop after this many */
    bool stop;
};

static int test_poller(void *opaque)
{
    struct poll_ctx *c = opaque;

    if (!c->outstanding) {
        return -1;
    }
    c->calls++;
    if (c->ready_at && c->calls >= c->ready_at) {
        c->outstanding = false;
        c->completed = true;
        return 1;
    }
    return 0;
}

static void poll_fd_cb(void *opaque)
{
    struct poll_ctx *c = opaque;
    char b;

    if (read(c->fds[0], &b, 1) == 1) {
        c->fd_events++;
    }
}

static void *poll_ticker(void *opaque)
{
    struct poll_ctx *c = opaque;

    while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
        usleep(2000);
        if (write(c->fds[1], "x", 1) != 1) {
            break;
        }
    }
    return NULL;
}

/* Blocking loop_polls on a fresh loop (own thread, so that
 * STRATA_POLL_MAX_NS is read anew) with a poller and a pipe that
 * another thread writes to every 2 ms. */
static void *poll_thread(void *opaque)
{
    struct poll_ctx *c = opaque;
    struct loop *l = loop_current();
    struct loop_poller p = {.poll = test_poller, .opaque = c};
    pthread_t tid;

    if (pipe(c->fds) < 0) {
        return NULL;
    }
    loop_set_fd_handler(l, c->fds[0], poll_fd_cb, NULL, c);
    loop_add_poller(l, &p);
    pthread_create(&tid, NULL, poll_ticker, c);
    while (!c->completed && c->fd_events < c->fd_limit) {
        loop_poll(l, true);
    }
    __atomic_store_n(&c->stop, true, __ATOMIC_RELEASE);
    pthread_join(tid, NULL);
    loop_del_poller(l, &p);
    loop_set_fd_handler(l, c->fds[0], NULL, NULL, NULL);
    close(c->fds[0]);
    close(c->fds[1]);
    return NULL;
}

static void run_poll(struct poll_ctx *c, const char *max_ns)
{
    pthread_t tid;

    setenv("STRATA_POLL_MAX_NS", max_ns, 1);
    pthread_create(&tid, NULL, poll_thread, c);
    pthread_join(tid, NULL);
    unsetenv("STRATA_POLL_MAX_NS");
}

static void test_busy_poll(void)
{
    struct poll_ctx c = {.ready_at = 3, .outstanding = true,
                         .fd_limit = 100};

    /* the budget starts at zero (one look per loop_poll) and grows after
     * waits shorter than the maximum: the completion that appears on the
     * third look is then caught by spinning, not by an fd event */
    run_poll(&c, "1000000000");
    tap_ok(c.completed && c.calls == 3 && c.fd_events < c.fd_limit,
           "a poller's completion is picked up by the busy-poll (calls %d, "
           "fd events %d)", c.calls, c.fd_events);

    c = (struct poll_ctx){.ready_at = 0, .outstanding = false,
                          .fd_limit = 3};
    run_poll(&c, "1000000000");
    tap_ok(c.calls == 0 && c.fd_events == 3,
           "a poller with nothing outstanding is not spun on");

    c = (struct poll_ctx){.ready_at = 1, .outstanding = true, .fd_limit = 3};
    run_poll(&c, "0");
    tap_ok(!c.completed && c.calls == 0 && c.fd_events == 3,
           "STRATA_POLL_MAX_NS=0 turns polling off");
}

int main(void)
{
    tap_plan(25);
    test_fd();
    test_remove_in_callback();
    test_timers();
    test_bh();
    test_remote();
    test_busy_poll();
    return tap_done();
}
