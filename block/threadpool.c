/* The global worker pool.  One mutex and one condition variable guard a
 * FIFO of requests; a submission wakes at most one idle worker and starts
 * a new one only when the idle ones cannot take all queued work.  A result
 * goes back to the submitting thread through a bottom half on its loop, so
 * completions run there in order with everything else.
 *
 * threadpool_run keeps its request on the coroutine's stack: the aio=threads
 * data path allocates nothing per request.
 *
 * Lanes: requests that the kernel would serialise anyway (buffered writes
 * to one file all take its inode lock) are given one lane key.  Only the
 * first of a lane goes through the shared queue; the rest wait in the
 * lane, and the worker that runs one runs the next straight after it.
 * Two workers then never fight over the inode lock (spinning on it costs
 * the other core, sleeping on it costs a wake-up per request), and the
 * writes follow each other without a trip through the submitter's loop.
 *
 * Workers are joinable so that none is left behind: each exiting worker
 * joins the one that exited before it, and at process exit the idle ones
 * are told to go and the last is joined (leak checkers then see no live
 * thread).  A forked child starts with an empty pool. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef HAVE_OPENSSL
#include <openssl/crypto.h>
#endif
#include <time.h>

#include "loop.h"
#include "threadpool.h"
#include "util.h"

#define TP_DEFAULT_MAX 64
#define TP_IDLE_SEC 10 /* idle workers exit after this */
#define TP_MAX_LANES 16 /* lanes busy at once; more run without one */

struct tp_req {
    threadpool_fn *fn;
    void *opaque;
    int ret;           /* fn's result, set by the worker */
    struct loop *loop; /* the submitter's: completion runs there */
    struct loop_bh bh;
    struct tp_req *next;
    uintptr_t lane; /* 0, or the key of the lane it runs in */
    /* threadpool_run */
    struct coroutine *co;
    bool done;
    /* threadpool_submit */
    void (*cb)(void *opaque, int ret);
};

/* A busy lane: a worker runs (or is about to run) one of its requests,
 * the others wait here in submission order. */
struct tp_lane {
    uintptr_t key; /* 0: the slot is free */
    struct tp_req *head, *tail;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;      /* work queued, or limit/shutdown changed */
    pthread_cond_t exit_cond; /* a worker exited (for shutdown) */
    struct tp_req *head, *tail;
    int queued;    /* requests no worker has taken yet */
    int threads;   /* live workers */
    int idle;      /* workers waiting on cond */
    int busy;      /* workers running a job */
    int finishing; /* atomic: of those, done with fn and about to look for
                    * more work (the submitter need not wake or start one) */
    int max;
    bool shutdown;    /* process exit: idle workers leave */
    bool have_zombie; /* `zombie` exited and still needs joining */
    pthread_t zombie;
    struct tp_lane lanes[TP_MAX_LANES];
} tp = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
    .exit_cond = PTHREAD_COND_INITIALIZER,
    .max = TP_DEFAULT_MAX,
};

static pthread_once_t tp_atfork_once = PTHREAD_ONCE_INIT;

static struct tp_req *tp_pop(void)
{
    struct tp_req *r = tp.head;

    tp.head = r->next;
    if (!tp.head) {
        tp.tail = NULL;
    }
    tp.queued--;
    return r;
}

/* Wait up to TP_IDLE_SEC for work; false when the worker should exit
 * (idle for too long, more workers than the limit, or process exit). */
static bool tp_wait_for_work(void)
{
    struct timespec ts;
    bool timed_out = false;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += TP_IDLE_SEC;
    for (;;) {
        if (tp.threads > tp.max) {
            /* a wake-up meant for a worker may have reached us */
            if (tp.head && tp.idle > 0) {
                pthread_cond_signal(&tp.cond);
            }
            return false;
        }
        if (tp.head) {
            return true;
        }
        if (timed_out || tp.shutdown) {
            return false;
        }
        tp.idle++;
        timed_out = pthread_cond_clockwait(&tp.cond, &tp.lock, CLOCK_MONOTONIC,
                                           &ts) == ETIMEDOUT;
        tp.idle--;
    }
}

/* Leave the pool: become the zombie and join the previous one.  Called
 * with tp.lock held; releases it. */
static void tp_worker_exit(void)
{
    pthread_t prev = tp.zombie;
    bool join_prev = tp.have_zombie;

    tp.zombie = pthread_self();
    tp.have_zombie = true;
    tp.threads--;
    pthread_cond_broadcast(&tp.exit_cond);
    pthread_mutex_unlock(&tp.lock);
    if (join_prev) {
        pthread_join(prev, NULL);
    }
}

/* The busy lane with this key, or NULL.  Called with tp.lock held. */
static struct tp_lane *tp_lane_find(uintptr_t key)
{
    for (int i = 0; i < TP_MAX_LANES; i++) {
        if (tp.lanes[i].key == key) {
            return &tp.lanes[i];
        }
    }
    return NULL;
}

/* After running a request of lane `key`: the next one of that lane, which
 * the caller runs at once, or NULL when the lane is done and its slot
 * freed.  Called with tp.lock held. */
static struct tp_req *tp_lane_next(uintptr_t key)
{
    struct tp_lane *l = tp_lane_find(key);
    struct tp_req *r;

    if (!l->head) {
        l->key = 0;
        return NULL;
    }
    r = l->head;
    l->head = r->next;
    if (!l->head) {
        l->tail = NULL;
    }
    return r;
}

static bool tp_spawn(void);

static void *tp_worker(void *arg)
{
    pthread_mutex_lock(&tp.lock);
    while (tp_wait_for_work()) {
        struct tp_req *r = tp_pop();

        tp.busy++;
        while (r) {
            uintptr_t lane = r->lane;

            pthread_mutex_unlock(&tp.lock);
            r->ret = r->fn(r->opaque);
            /* Counted before the completion can reach the submitter, whose
             * next request (the common case for one coroutine issuing I/O
             * after I/O) then finds us instead of starting another
             * worker. */
            __atomic_fetch_add(&tp.finishing, 1, __ATOMIC_RELAXED);
            /* the last touch of r: once queued it may complete and
             * vanish */
            loop_defer_bh(r->loop, &r->bh);
            pthread_mutex_lock(&tp.lock);
            __atomic_fetch_sub(&tp.finishing, 1, __ATOMIC_RELAXED);
            r = lane ? tp_lane_next(lane) : NULL;
            if (r && tp.queued > tp.idle) {
                /* whoever queued work counted on us being about to
                 * finish: we stay with the lane, so find it a worker */
                if (tp.idle > 0) {
                    pthread_cond_signal(&tp.cond);
                } else if (tp.threads < tp.max) {
                    tp_spawn();
                }
            }
        }
        tp.busy--;
    }
    tp_worker_exit();
#ifdef HAVE_OPENSSL
    /* encryption work leaves OpenSSL per-thread state (its error queue):
     * release it now, as the process may end before the thread's key
     * destructor would */
    OPENSSL_thread_stop();
#endif
    return NULL;
}

static void tp_atfork_prepare(void)
{
    pthread_mutex_lock(&tp.lock);
}

static void tp_atfork_parent(void)
{
    pthread_mutex_unlock(&tp.lock);
}

/* The child has none of the workers; queued requests belong to the
 * parent's threads. */
static void tp_atfork_child(void)
{
    int max = tp.max;

    pthread_mutex_init(&tp.lock, NULL);
    pthread_cond_init(&tp.cond, NULL);
    pthread_cond_init(&tp.exit_cond, NULL);
    tp.head = tp.tail = NULL;
    tp.queued = tp.threads = tp.idle = tp.busy = tp.finishing = 0;
    tp.have_zombie = false;
    memset(tp.lanes, 0, sizeof(tp.lanes));
    tp.shutdown = false;
    tp.max = max;
}

static void tp_atfork_register(void)
{
    pthread_atfork(tp_atfork_prepare, tp_atfork_parent, tp_atfork_child);
}

/* Start a worker with every signal blocked (signals belong to the
 * application's threads).  Called with tp.lock held. */
static bool tp_spawn(void)
{
    pthread_t tid;
    sigset_t all, old;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&tid, NULL, tp_worker, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0) {
        tp.threads++;
    }
    return rc == 0;
}

/* Queue r for a worker; false if there is no worker and none can be
 * started, and the caller must run it itself. */
static bool tp_queue(struct tp_req *r)
{
    bool ok = true, wake = false;
    int spare;

    r->loop = loop_current();
    r->next = NULL;
    pthread_once(&tp_atfork_once, tp_atfork_register);
    pthread_mutex_lock(&tp.lock);
    if (r->lane) {
        struct tp_lane *l = tp_lane_find(r->lane);
        if (l) {
            /* the worker running the lane takes it after the others */
            if (l->tail) {
                l->tail->next = r;
            } else {
                l->head = r;
            }
            l->tail = r;
            pthread_mutex_unlock(&tp.lock);
            return true;
        }
        l = tp_lane_find(0);
        if (l) {
            l->key = r->lane;
        } else {
            r->lane = 0; /* every slot busy: run it like any request */
        }
    }
    /* workers that will take a request without a new thread */
    spare = tp.idle + __atomic_load_n(&tp.finishing, __ATOMIC_RELAXED);
    if (tp.queued + 1 > spare && tp.threads < tp.max && !tp_spawn() &&
        tp.threads == 0) {
        ok = false;
        if (r->lane) {
            /* run by the caller: the lane holds nothing else yet */
            tp_lane_find(r->lane)->key = 0;
        }
    } else {
        if (tp.tail) {
            tp.tail->next = r;
        } else {
            tp.head = r;
        }
        tp.tail = r;
        tp.queued++;
        wake = tp.idle > 0;
    }
    pthread_mutex_unlock(&tp.lock);
    /* after unlocking, so that the woken worker does not block on the
     * mutex we still hold */
    if (wake) {
        pthread_cond_signal(&tp.cond);
    }
    return ok;
}

/* Process exit: let idle workers go and join them; busy ones are left to
 * finish on their own. */
__attribute__((destructor)) static void tp_cleanup(void)
{
    pthread_t last;
    bool join_last;

    pthread_mutex_lock(&tp.lock);
    tp.shutdown = true;
    pthread_cond_broadcast(&tp.cond);
    /* A worker that has handed its result back but not yet returned to
     * the pool counts as leaving too: the program may be exiting because
     * of that very result. */
    while (tp.threads >
           tp.busy - __atomic_load_n(&tp.finishing, __ATOMIC_RELAXED)) {
        pthread_cond_wait(&tp.exit_cond, &tp.lock);
    }
    last = tp.zombie;
    join_last = tp.have_zombie;
    tp.have_zombie = false;
    pthread_mutex_unlock(&tp.lock);
    if (join_last) {
        pthread_join(last, NULL);
    }
}

static void tp_run_done(void *opaque)
{
    struct tp_req *r = opaque;

    r->done = true;
    coroutine_enter(r->co);
}

int coroutine_fn threadpool_run_lane(uintptr_t lane, threadpool_fn *fn,
                                     void *opaque)
{
    struct tp_req r = {.fn = fn, .opaque = opaque, .lane = lane};

    r.co = coroutine_self();
    if (!r.co) {
        return fn(opaque);
    }
    loop_bh_init(&r.bh, tp_run_done, &r);
    if (!tp_queue(&r)) {
        return fn(opaque);
    }
    while (!r.done) {
        coroutine_yield();
    }
    return r.ret;
}

int coroutine_fn threadpool_run(threadpool_fn *fn, void *opaque)
{
    return threadpool_run_lane(0, fn, opaque);
}

static void tp_submit_done(void *opaque)
{
    struct tp_req *r = opaque;
    void (*cb)(void *, int) = r->cb;
    void *cb_opaque = r->opaque;
    int ret = r->ret;

    free(r);
    if (cb) {
        cb(cb_opaque, ret);
    }
}

void threadpool_submit(threadpool_fn *fn, void *opaque,
                       void (*done)(void *opaque, int ret))
{
    struct tp_req *r = xzalloc(sizeof(*r));

    r->fn = fn;
    r->opaque = opaque;
    r->cb = done;
    loop_bh_init(&r->bh, tp_submit_done, r);
    if (!tp_queue(r)) {
        /* still completes from the loop, as the caller expects */
        r->ret = fn(opaque);
        loop_defer_bh(r->loop, &r->bh);
    }
}

void threadpool_set_max_threads(int n)
{
    pthread_mutex_lock(&tp.lock);
    tp.max = n < 1 ? 1 : n;
    /* surplus workers notice and exit */
    pthread_cond_broadcast(&tp.cond);
    pthread_mutex_unlock(&tp.lock);
}
