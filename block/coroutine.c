/* Coroutines on x86-64 Linux.  A new stack gets its first context once
 * through a small assembly stack switch (a trampoline that saves a jmp_buf and
 * returns at once); every switch after that is a plain _setjmp/_longjmp
 * pair, which does not touch the signal mask and so costs no syscall.
 * Finished coroutines go back to a per-thread pool and their stacks are
 * reused: the trampoline loops, running one entry function after another.
 *
 * Sanitizers: under ASan every switch is announced with
 * __sanitizer_start_switch_fiber/__sanitizer_finish_switch_fiber, and under
 * valgrind each stack is registered, so neither reports the stack switches
 * as errors. */
#include "config.h"

/* glibc's fortified longjmp refuses to jump to another stack. */
#undef _FORTIFY_SOURCE

#include <pthread.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "coroutine.h"
#include "loop.h"
#include "util.h"

#if defined(__SANITIZE_ADDRESS__)
#define CO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CO_ASAN 1
#endif
#endif
#ifdef CO_ASAN
#include <sanitizer/common_interface_defs.h>
/* Frames that live across a switch keep their locals on the real stack:
 * with detect_stack_use_after_return they would otherwise sit on a fake
 * stack that ASan drops when the coroutine terminates, while a pooled
 * coroutine resumes in exactly those frames. */
#define CO_NO_ASAN __attribute__((no_sanitize_address))
#else
#define CO_NO_ASAN
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define CO_VALGRIND 1
#endif
#endif

#define CO_STACK_SIZE (256 * 1024)
#define CO_POOL_MAX 64

/* What the coroutine we switch to is told by _longjmp's value. */
enum co_action {
    CO_ACT_ENTER = 1,
    CO_ACT_YIELD,
    CO_ACT_TERMINATE,
};

enum co_state {
    CO_READY,   /* created or yielded: may be entered */
    CO_RUNNING, /* entered and not yet yielded (may be nested) */
    CO_DONE,    /* fn returned, on its way to the pool */
    CO_POOLED,  /* in the pool: entering it is a use after free */
};

struct co_thread;

struct coroutine {
    jmp_buf env;
    coroutine_entry_fn *fn;
    void *opaque;
    struct coroutine *caller; /* who entered us; NULL unless running */
    struct co_thread *thread; /* home thread: entered only there */
    struct loop *loop;        /* home loop, for coroutine_wake() */
    struct loop_bh wake_bh;
    enum co_state state;
    void *map; /* whole mapping, guard page included */
    size_t map_size;
    void *stack; /* usable stack: lowest address */
    size_t stack_size;
    jmp_buf *boot;  /* where the trampoline returns to on creation */
    unsigned vg_id; /* valgrind stack id */
    struct coroutine *pool_next;
};

/* Per-thread state; `leader` stands for the thread's own stack. */
struct co_thread {
    struct coroutine leader;
    struct coroutine *current;
    struct coroutine *pool;
    unsigned pool_size;
};

static __thread struct co_thread *co_thr;
static pthread_key_t co_key;
static pthread_once_t co_key_once = PTHREAD_ONCE_INIT;

/* Broken invariants in the caller's code: nothing sensible can continue. */
static void __attribute__((noreturn)) co_die(const char *msg)
{
    fprintf(stderr, "strata: coroutine: %s\n", msg);
    abort();
}

/* Unmap a stack for good (the pool is full, or the thread exits). */
static void co_free(struct coroutine *co)
{
#ifdef CO_VALGRIND
    VALGRIND_STACK_DEREGISTER(co->vg_id);
#endif
    munmap(co->map, co->map_size);
    free(co);
}

/* Thread exit: give the pooled stacks back. */
static void co_thread_destroy(void *opaque)
{
    struct co_thread *t = opaque;

    while (t->pool) {
        struct coroutine *co = t->pool;
        t->pool = co->pool_next;
        co_free(co);
    }
    free(t);
    co_thr = NULL;
}

static void co_key_create(void)
{
    if (pthread_key_create(&co_key, co_thread_destroy) != 0) {
        co_die("cannot create the thread key");
    }
}

/* This thread's coroutine state, made on first use. */
static struct co_thread *co_thread_get(void)
{
    struct co_thread *t = co_thr;

    if (__builtin_expect(t != NULL, 1)) {
        return t;
    }
    pthread_once(&co_key_once, co_key_create);
    t = xzalloc(sizeof(*t));
    t->leader.state = CO_RUNNING;
    t->leader.thread = t;
    t->current = &t->leader;
    pthread_setspecific(co_key, t);
    co_thr = t;
    return t;
}

#ifdef CO_ASAN
/* Landing after a switch: get our fake stack back. */
static void co_asan_finish(void *fake_stack)
{
    __sanitizer_finish_switch_fiber(fake_stack, NULL, NULL);
}
#endif

/* Save our context in from->env and continue `to`; returns the action of
 * whoever switches back to us. */
static CO_NO_ASAN int co_switch(struct coroutine *from, struct coroutine *to,
                                enum co_action action)
{
#ifdef CO_ASAN
    void *fake_stack = NULL;
#endif
    int ret;

    from->thread->current = to;
    ret = _setjmp(from->env);
    if (ret == 0) {
#ifdef CO_ASAN
        /* a terminating coroutine's fake stack is dropped, not saved */
        __sanitizer_start_switch_fiber(action == CO_ACT_TERMINATE ? NULL
                                                                  : &fake_stack,
                                       to->stack, to->stack_size);
#endif
        _longjmp(to->env, action);
    }
#ifdef CO_ASAN
    co_asan_finish(fake_stack);
#endif
    return ret;
}

/* First code on a new stack: save a context to be entered later, go back
 * to the creator, then run one entry function per use of the stack. */
static CO_NO_ASAN __attribute__((noreturn, used)) void
co_trampoline_ptr(struct coroutine *co)
{
#ifdef CO_ASAN
    void *fake_stack = NULL;
    const void *creator_bottom;
    size_t creator_size;

    __sanitizer_finish_switch_fiber(NULL, &creator_bottom, &creator_size);
    /* the first stack of a thread is always created from the thread's own
     * stack, whose bounds only ASan knows */
    if (!co->thread->leader.stack) {
        co->thread->leader.stack = (void *)creator_bottom;
        co->thread->leader.stack_size = creator_size;
    }
#endif

    if (!_setjmp(co->env)) {
#ifdef CO_ASAN
        __sanitizer_start_switch_fiber(&fake_stack, creator_bottom,
                                       creator_size);
#endif
        _longjmp(*co->boot, 1);
    }
#ifdef CO_ASAN
    co_asan_finish(fake_stack);
#endif

    for (;;) {
        struct coroutine *caller;

        co->fn(co->opaque);
        co->state = CO_DONE;
        caller = co->caller;
        co->caller = NULL;
        co_switch(co, caller, CO_ACT_TERMINATE);
        /* re-entered from the pool with a new fn */
    }
}

#if defined(__x86_64__)
/* Call co_trampoline_ptr(co) on co's new stack.  This first switch is the
 * only one _setjmp cannot make; doing it by hand rather than with
 * makecontext/swapcontext keeps ASan from warning (on every run) that it
 * does not fully support those. */
static CO_NO_ASAN void co_boot(struct coroutine *co)
{
    uintptr_t top = ((uintptr_t)co->stack + co->stack_size) & ~(uintptr_t)15;

    __asm__ volatile("mov %0, %%rsp\n\t"
                     "call *%1\n\t"
                     "ud2\n\t"
                     :
                     : "r"(top), "r"(co_trampoline_ptr), "D"(co)
                     : "memory");
    __builtin_unreachable();
}
#else
static void co_trampoline(int lo, int hi)
{
    co_trampoline_ptr(
        (void *)((uintptr_t)(unsigned)lo | ((uintptr_t)(unsigned)hi << 32)));
}

/* Elsewhere, the portable way in. */
static void co_boot(struct coroutine *co)
{
    ucontext_t uc, old_uc;

    if (getcontext(&uc) != 0) {
        co_die("getcontext failed");
    }
    uc.uc_link = NULL;
    uc.uc_stack.ss_sp = co->stack;
    uc.uc_stack.ss_size = co->stack_size;
    uc.uc_stack.ss_flags = 0;
    makecontext(&uc, (void (*)(void))co_trampoline, 2,
                (int)(uint32_t)(uintptr_t)co,
                (int)(uint32_t)((uintptr_t)co >> 32));
    swapcontext(&old_uc, &uc);
}
#endif

/* coroutine_wake() arrives here, on the home loop. */
static void co_wake_cb(void *opaque)
{
    coroutine_enter(opaque);
}

/* A new stack with a guard page below it, and its first context. */
static CO_NO_ASAN struct coroutine *co_alloc(struct co_thread *t)
{
    struct coroutine *co = xzalloc(sizeof(*co));
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    jmp_buf boot;
#ifdef CO_ASAN
    void *fake_stack = NULL;
#endif

    co->thread = t;
    co->map_size = CO_STACK_SIZE + page;
    co->map = mmap(NULL, co->map_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (co->map == MAP_FAILED) {
        co_die("cannot map a coroutine stack");
    }
    if (mprotect(co->map, page, PROT_NONE) != 0) {
        co_die("cannot protect a coroutine stack guard page");
    }
    co->stack = (char *)co->map + page;
    co->stack_size = CO_STACK_SIZE;
#ifdef CO_VALGRIND
    co->vg_id =
        VALGRIND_STACK_REGISTER(co->stack, (char *)co->stack + co->stack_size);
#endif
    loop_bh_init(&co->wake_bh, co_wake_cb, co);

    co->boot = &boot;
    if (!_setjmp(boot)) {
#ifdef CO_ASAN
        __sanitizer_start_switch_fiber(&fake_stack, co->stack, co->stack_size);
#endif
        co_boot(co);
    }
#ifdef CO_ASAN
    co_asan_finish(fake_stack);
#endif
    co->boot = NULL;
    return co;
}

struct coroutine *coroutine_create(coroutine_entry_fn *fn, void *opaque)
{
    struct co_thread *t = co_thread_get();
    struct coroutine *co = t->pool;

    if (co) {
        t->pool = co->pool_next;
        t->pool_size--;
    } else {
        co = co_alloc(t);
    }
    co->fn = fn;
    co->opaque = opaque;
    co->caller = NULL;
    co->pool_next = NULL;
    co->loop = loop_current();
    co->state = CO_READY;
    return co;
}

/* A finished coroutine: keep its stack for the next create if the pool
 * has room. */
static void co_release(struct co_thread *t, struct coroutine *co)
{
    if (__atomic_load_n(&co->wake_bh.scheduled, __ATOMIC_ACQUIRE)) {
        co_die("a coroutine finished with a wake-up still pending");
    }
    if (t->pool_size < CO_POOL_MAX) {
        co->state = CO_POOLED;
        co->fn = NULL;
        co->opaque = NULL;
        co->pool_next = t->pool;
        t->pool = co;
        t->pool_size++;
    } else {
        co_free(co);
    }
}

void coroutine_enter(struct coroutine *co)
{
    struct co_thread *t = co_thread_get();
    struct coroutine *self = t->current;

    if (co->state != CO_READY) {
        co_die(co->state == CO_RUNNING
                   ? "re-entering a coroutine that is running"
                   : "entering a coroutine that has terminated");
    }
    if (co->thread != t) {
        co_die("entering a coroutine from a thread other than its own");
    }
    co->state = CO_RUNNING;
    co->caller = self;
    if (co_switch(self, co, CO_ACT_ENTER) == CO_ACT_TERMINATE) {
        co_release(t, co);
    }
}

void coroutine_fn coroutine_yield(void)
{
    struct co_thread *t = co_thr;
    struct coroutine *self, *to;

    if (!t || t->current == &t->leader) {
        co_die("coroutine_yield called outside of a coroutine");
    }
    self = t->current;
    to = self->caller;
    self->caller = NULL;
    self->state = CO_READY;
    co_switch(self, to, CO_ACT_YIELD);
}

struct coroutine *coroutine_self(void)
{
    struct co_thread *t = co_thr;

    return t && t->current != &t->leader ? t->current : NULL;
}

bool in_coroutine(void)
{
    return coroutine_self() != NULL;
}

void coroutine_wake(struct coroutine *co)
{
    loop_defer_bh(co->loop, &co->wake_bh);
}

struct loop *coroutine_loop(struct coroutine *co)
{
    return co->loop;
}

/* ---- wait queues and locks ---- */

/* A waiting coroutine; lives on that coroutine's stack while it sleeps. */
struct co_waiter {
    struct coroutine *co;
    struct co_waiter *next;
    bool writer; /* for co_rwlock: what the waiter wants */
};

void co_queue_init(struct co_queue *q)
{
    q->head = q->tail = NULL;
}

/* The running coroutine; aborts if `what` was called outside of one. */
static struct coroutine *co_need_self(const char *what)
{
    struct coroutine *self = coroutine_self();

    if (!self) {
        fprintf(stderr, "strata: coroutine: %s called outside of a coroutine\n",
                what);
        abort();
    }
    return self;
}

/* Sleep at the tail of q until a wake pops our node. */
static void coroutine_fn co_queue_wait_as(struct co_queue *q, bool writer)
{
    struct co_waiter w = {
        .co = co_need_self("co_queue_wait"),
        .next = NULL,
        .writer = writer,
    };

    if (q->tail) {
        q->tail->next = &w;
    } else {
        q->head = &w;
    }
    q->tail = &w;
    coroutine_yield();
}

void coroutine_fn co_queue_wait(struct co_queue *q)
{
    co_queue_wait_as(q, false);
}

bool co_queue_next(struct co_queue *q)
{
    struct co_waiter *w = q->head;

    if (!w) {
        return false;
    }
    q->head = w->next;
    if (!q->head) {
        q->tail = NULL;
    }
    /* through the loop: the waker keeps running, and a chain of wake-ups
     * cannot grow the stack */
    coroutine_wake(w->co);
    return true;
}

void co_queue_wake_all(struct co_queue *q)
{
    while (co_queue_next(q)) {
    }
}

bool co_queue_empty(const struct co_queue *q)
{
    return q->head == NULL;
}

void co_mutex_init(struct co_mutex *m)
{
    m->locked = false;
    co_queue_init(&m->waiters);
}

void coroutine_fn co_mutex_lock(struct co_mutex *m)
{
    if (!m->locked) {
        m->locked = true;
        return;
    }
    /* unlock hands the mutex straight to the first waiter (FIFO, no
     * barging), so it is ours when we wake up */
    co_queue_wait(&m->waiters);
}

void co_mutex_unlock(struct co_mutex *m)
{
    if (!m->locked) {
        co_die("unlocking a co_mutex that is not locked");
    }
    if (!co_queue_next(&m->waiters)) {
        m->locked = false;
    }
}

void co_rwlock_init(struct co_rwlock *l)
{
    l->readers = 0;
    l->writer = false;
    co_queue_init(&l->waiters);
}

/* Readers queue behind any waiting writer, so writers are not starved;
 * ownership is handed over by unlock before the waiter runs. */
void coroutine_fn co_rwlock_rdlock(struct co_rwlock *l)
{
    if (!l->writer && co_queue_empty(&l->waiters)) {
        l->readers++;
        return;
    }
    co_queue_wait_as(&l->waiters, false);
}

void coroutine_fn co_rwlock_wrlock(struct co_rwlock *l)
{
    if (!l->writer && l->readers == 0 && co_queue_empty(&l->waiters)) {
        l->writer = true;
        return;
    }
    co_queue_wait_as(&l->waiters, true);
}

void co_rwlock_unlock(struct co_rwlock *l)
{
    struct co_queue *q = &l->waiters;

    if (l->writer) {
        l->writer = false;
    } else if (l->readers > 0) {
        l->readers--;
    } else {
        co_die("unlocking a co_rwlock that is not locked");
    }
    if (l->readers > 0 || !q->head) {
        return;
    }
    if (q->head->writer) {
        l->writer = true;
        co_queue_next(q);
        return;
    }
    while (q->head && !q->head->writer) {
        l->readers++;
        co_queue_next(q);
    }
}

struct co_sleep {
    struct coroutine *co;
    bool fired;
};

/* The sleep timer fired: resume the sleeper. */
static void co_sleep_cb(void *opaque)
{
    struct co_sleep *s = opaque;

    s->fired = true;
    coroutine_enter(s->co);
}

void coroutine_fn co_sleep_ns(unsigned long long ns)
{
    struct co_sleep s = {.co = co_need_self("co_sleep_ns")};
    struct loop_timer *t = loop_timer_new(s.co->loop, co_sleep_cb, &s);
    uint64_t now = clock_ns();

    loop_timer_mod(t, ns > UINT64_MAX - now ? UINT64_MAX : now + ns);
    while (!s.fired) {
        coroutine_yield();
    }
    loop_timer_free(t);
}
