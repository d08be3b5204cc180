/* Coroutines: enter/yield ordering, nesting, stack reuse through the pool,
 * wake-ups from other threads, the queue, mutex, rwlock and sleep, and the
 * aborts on misuse. */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coroutine.h"
#include "loop.h"
#include "tap.h"

/* An event log: tests compare it to the expected sequence as a string. */
static char trace[256];

static void note(char c)
{
    size_t n = strlen(trace);
    if (n + 1 < sizeof(trace)) {
        trace[n] = c;
        trace[n + 1] = 0;
    }
}

/* ---- enter/yield interleaving ---- */

static struct coroutine *seen_self;
static struct loop *seen_loop;

static void co_interleave(void *opaque)
{
    seen_self = coroutine_self();
    seen_loop = coroutine_loop(seen_self);
    note('a');
    coroutine_yield();
    note('c');
    coroutine_yield();
    note('e');
}

static void test_interleave(void)
{
    struct coroutine *co = coroutine_create(co_interleave, NULL);

    trace[0] = 0;
    tap_ok(!in_coroutine() && coroutine_self() == NULL,
           "outside any coroutine, coroutine_self() is NULL");
    coroutine_enter(co);
    note('b');
    coroutine_enter(co);
    note('d');
    coroutine_enter(co); /* finishes */
    note('f');
    tap_ok(strcmp(trace, "abcdef") == 0, "enter/yield interleave in order (%s)",
           trace);
    tap_ok(seen_self == co, "coroutine_self() is the running coroutine");
    tap_ok(seen_loop == loop_current(),
           "coroutine_loop() is the creating thread's loop");
}

/* ---- nested enter ---- */

static struct coroutine *inner, *outer;

static void co_inner(void *opaque)
{
    note('2');
    coroutine_yield(); /* back to whoever entered us: outer */
    note('6');
}

static void co_outer(void *opaque)
{
    note('1');
    inner = coroutine_create(co_inner, NULL);
    coroutine_enter(inner);
    note(coroutine_self() == outer ? '3' : 'X');
    coroutine_yield();
    note('5');
    coroutine_enter(inner); /* inner finishes inside us */
    note('7');
}

static void test_nested(void)
{
    trace[0] = 0;
    outer = coroutine_create(co_outer, NULL);
    coroutine_enter(outer);
    note('4');
    coroutine_enter(outer);
    note('8');
    tap_ok(strcmp(trace, "12345678") == 0,
           "nested enter: the inner yield returns to the outer "
           "coroutine (%s)",
           trace);
}

/* ---- many create/finish cycles ---- */

static int cycles;
static uintptr_t first_stack, last_stack;

static void co_count(void *opaque)
{
    /* the real stack even when ASan moves locals to a fake stack */
    uintptr_t where = (uintptr_t)__builtin_frame_address(0);

    if (!first_stack) {
        first_stack = where;
    }
    last_stack = where;
    cycles++;
}

static void co_park(void *opaque)
{
    coroutine_yield();
    (*(int *)opaque)++;
}

static void test_cycles(void)
{
    enum { N = 10000, LIVE = 200 };
    struct coroutine *live[LIVE];
    int finished = 0;

    for (int i = 0; i < N; i++) {
        coroutine_enter(coroutine_create(co_count, NULL));
    }
    tap_is(cycles, N, "10000 create/enter/finish cycles all ran");
    tap_ok(first_stack == last_stack,
           "finished coroutines' stacks are reused from the pool");

    /* more live coroutines than the pool holds */
    for (int i = 0; i < LIVE; i++) {
        live[i] = coroutine_create(co_park, &finished);
        coroutine_enter(live[i]);
    }
    for (int i = 0; i < LIVE; i++) {
        coroutine_enter(live[i]);
    }
    tap_is(finished, LIVE, "200 coroutines alive at once all finish");
}

/* ---- wake-ups ---- */

struct wake_ctx {
    struct coroutine *co;
    pthread_t runner;
    bool done;
};

static void co_wait_for_wake(void *opaque)
{
    struct wake_ctx *w = opaque;

    coroutine_yield();
    w->runner = pthread_self();
    w->done = true;
}

static void *wake_thread(void *opaque)
{
    struct wake_ctx *w = opaque;

    usleep(20000);
    coroutine_wake(w->co);
    return NULL;
}

static void test_wake(void)
{
    struct wake_ctx w = {0};
    pthread_t tid;

    w.co = coroutine_create(co_wait_for_wake, &w);
    coroutine_enter(w.co);
    pthread_create(&tid, NULL, wake_thread, &w);
    loop_run_until(loop_current(), &w.done);
    pthread_join(tid, NULL);
    tap_ok(w.done && pthread_equal(w.runner, pthread_self()),
           "coroutine_wake() from another thread resumes the coroutine on "
           "its home thread");

    /* a wake from the coroutine itself runs it later, from the loop */
    w.done = false;
    trace[0] = 0;
    w.co = coroutine_create(co_wait_for_wake, &w);
    coroutine_enter(w.co);
    coroutine_wake(w.co);
    tap_ok(!w.done, "coroutine_wake() does not enter synchronously");
    loop_run_until(loop_current(), &w.done);
    tap_ok(w.done, "coroutine_wake() enters from the loop");
}

/* ---- co_queue ---- */

struct queue_ctx {
    struct co_queue *q;
    char id;
    int *done;
};

static void co_queue_waiter(void *opaque)
{
    struct queue_ctx *c = opaque;

    co_queue_wait(c->q);
    note(c->id);
    (*c->done)++;
}

static void test_queue(void)
{
    struct co_queue q = CO_QUEUE_INIT;
    struct queue_ctx c[4];
    int done = 0;

    trace[0] = 0;
    tap_ok(co_queue_empty(&q) && !co_queue_next(&q),
           "an empty queue has nothing to wake");
    for (int i = 0; i < 4; i++) {
        c[i] = (struct queue_ctx){&q, (char)('A' + i), &done};
        coroutine_enter(coroutine_create(co_queue_waiter, &c[i]));
    }
    tap_ok(!co_queue_empty(&q) && done == 0, "four coroutines wait");
    tap_ok(co_queue_next(&q), "co_queue_next() wakes one");
    tap_is(done, 0, "the woken waiter runs later from the loop");
    while (loop_poll(loop_current(), false)) {
    }
    tap_ok(strcmp(trace, "A") == 0, "the first waiter woke first (%s)", trace);
    co_queue_wake_all(&q);
    while (done < 4) {
        loop_poll(loop_current(), true);
    }
    tap_ok(strcmp(trace, "ABCD") == 0 && co_queue_empty(&q),
           "co_queue_wake_all() wakes the rest in FIFO order (%s)", trace);
}

/* ---- co_mutex ---- */

struct mutex_ctx {
    struct co_mutex *m;
    char id;
    int *holders, *max_holders, *done;
};

/* Hold the lock across a trip through the loop, three times. */
static void co_mutex_user(void *opaque)
{
    struct mutex_ctx *c = opaque;

    for (int i = 0; i < 3; i++) {
        co_mutex_lock(c->m);
        if (++*c->holders > *c->max_holders) {
            *c->max_holders = *c->holders;
        }
        note(c->id);
        coroutine_wake(coroutine_self());
        coroutine_yield();
        --*c->holders;
        co_mutex_unlock(c->m);
    }
    (*c->done)++;
}

static void test_mutex(void)
{
    struct co_mutex m;
    struct mutex_ctx c[5];
    int holders = 0, max_holders = 0, done = 0;

    co_mutex_init(&m);
    trace[0] = 0;
    for (int i = 0; i < 5; i++) {
        c[i] = (struct mutex_ctx){&m, (char)('0' + i), &holders, &max_holders,
                                  &done};
        coroutine_enter(coroutine_create(co_mutex_user, &c[i]));
    }
    while (done < 5) {
        loop_poll(loop_current(), true);
    }
    tap_is(max_holders, 1, "co_mutex: one holder at a time");
    tap_ok(strcmp(trace, "012340123401234") == 0,
           "co_mutex hands over in FIFO order, no barging (%s)", trace);
    tap_ok(!m.locked, "co_mutex unlocked at the end");
}

/* ---- co_rwlock ---- */

struct rw_ctx {
    struct co_rwlock *l;
    bool writer;
    char id;
    int *readers, *writers, *max_readers, *violations, *done;
};

static void co_rw_user(void *opaque)
{
    struct rw_ctx *c = opaque;

    if (c->writer) {
        co_rwlock_wrlock(c->l);
        ++*c->writers;
        if (*c->writers > 1 || *c->readers > 0) {
            ++*c->violations;
        }
    } else {
        co_rwlock_rdlock(c->l);
        ++*c->readers;
        if (*c->writers > 0) {
            ++*c->violations;
        }
        if (*c->readers > *c->max_readers) {
            *c->max_readers = *c->readers;
        }
    }
    note(c->id);
    coroutine_wake(coroutine_self());
    coroutine_yield();
    if (c->writer) {
        --*c->writers;
    } else {
        --*c->readers;
    }
    co_rwlock_unlock(c->l);
    (*c->done)++;
}

static void test_rwlock(void)
{
    struct co_rwlock l;
    /* two readers get in together; the writer waits for them; the readers
     * arriving after the writer wait for it */
    static const char order[] = "rrWrrwr";
    struct rw_ctx c[sizeof(order) - 1];
    int readers = 0, writers = 0, max_readers = 0, violations = 0, done = 0;
    int n = sizeof(order) - 1;

    co_rwlock_init(&l);
    trace[0] = 0;
    for (int i = 0; i < n; i++) {
        bool w = order[i] == 'W' || order[i] == 'w';
        c[i] = (struct rw_ctx){&l,          w,        (char)('0' + i),
                               &readers,    &writers, &max_readers,
                               &violations, &done};
        coroutine_enter(coroutine_create(co_rw_user, &c[i]));
    }
    while (done < n) {
        loop_poll(loop_current(), true);
    }
    tap_is(violations, 0, "co_rwlock: writers exclusive, readers shared");
    tap_ok(max_readers >= 2, "co_rwlock: readers hold it together (%d)",
           max_readers);
    tap_ok(strcmp(trace, "0123456") == 0,
           "co_rwlock: a waiting writer goes before later readers (%s)", trace);
    tap_ok(!l.writer && l.readers == 0, "co_rwlock unlocked at the end");
}

/* ---- co_sleep_ns ---- */

struct sleep_ctx {
    unsigned long long ns;
    char id;
    uint64_t slept;
    int *done;
};

static void co_sleeper(void *opaque)
{
    struct sleep_ctx *c = opaque;
    uint64_t start = clock_ns();

    co_sleep_ns(c->ns);
    c->slept = clock_ns() - start;
    note(c->id);
    (*c->done)++;
}

static void test_sleep(void)
{
    struct sleep_ctx c[3] = {
        {30000000, '3', 0, NULL},
        {10000000, '1', 0, NULL},
        {20000000, '2', 0, NULL},
    };
    int done = 0;

    trace[0] = 0;
    for (int i = 0; i < 3; i++) {
        c[i].done = &done;
        coroutine_enter(coroutine_create(co_sleeper, &c[i]));
    }
    while (done < 3) {
        loop_poll(loop_current(), true);
    }
    tap_ok(strcmp(trace, "123") == 0,
           "co_sleep_ns: shortest sleep wakes first (%s)", trace);
    tap_ok(c[0].slept >= c[0].ns && c[1].slept >= c[1].ns &&
               c[2].slept >= c[2].ns,
           "co_sleep_ns sleeps at least as long as asked");
}

/* ---- misuse aborts ---- */

static void co_nothing(void *opaque)
{
}

static void co_enter_self(void *opaque)
{
    coroutine_enter(coroutine_self());
}

/* Run fn in a child process; true if it died of SIGABRT. */
static bool aborts(void (*fn)(void))
{
    pid_t pid = fork();
    int status;

    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 2);
        setrlimit(RLIMIT_CORE, &no_core); /* no core (or vgcore) files */
        fn();
        _exit(0);
    }
    waitpid(pid, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void enter_terminated(void)
{
    struct coroutine *co = coroutine_create(co_nothing, NULL);
    coroutine_enter(co);
    coroutine_enter(co);
}

static void enter_running(void)
{
    coroutine_enter(coroutine_create(co_enter_self, NULL));
}

static void yield_outside(void)
{
    coroutine_yield();
}

int main(void)
{
    tap_plan(29);
    test_interleave();
    test_nested();
    test_cycles();
    /* forked before any thread exists: a child's leak report under
     * valgrind then has nothing of other threads in it */
    tap_ok(aborts(enter_terminated), "entering a terminated coroutine aborts");
    tap_ok(aborts(enter_running), "re-entering a running coroutine aborts");
    tap_ok(aborts(yield_outside), "yielding outside a coroutine aborts");
    test_wake();
    test_queue();
    test_mutex();
    test_rwlock();
    test_sleep();
    return tap_done();
}
