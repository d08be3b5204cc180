/* The thread pool: many coroutines blocked in jobs at once, results and
 * threads checked; the callback style; the plain call outside coroutines;
 * and the thread limit. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "threadpool.h"
#include "tap.h"

#define NJOBS 100
#define NBARRIER 8 /* this many jobs must be running at the same time */

static pthread_t main_thread;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int running, max_running, at_barrier;
static bool barrier_failed;

struct job {
    int in, out;
    bool use_barrier;
    pthread_t ran_on;
};

/* Meet NBARRIER-1 other jobs; gives up after a generous time so that a
 * pool without concurrency fails the test instead of hanging it. */
static void job_barrier(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 60;
    if (++at_barrier >= NBARRIER) {
        pthread_cond_broadcast(&cond);
    }
    while (at_barrier < NBARRIER) {
        if (pthread_cond_timedwait(&cond, &lock, &ts) == ETIMEDOUT) {
            barrier_failed = true;
            break;
        }
    }
}

static int job_fn(void *opaque)
{
    struct job *j = opaque;

    j->ran_on = pthread_self();
    pthread_mutex_lock(&lock);
    if (++running > max_running) {
        max_running = running;
    }
    if (j->use_barrier) {
        job_barrier();
    }
    pthread_mutex_unlock(&lock);

    usleep(1000 + (j->in % 5) * 1000); /* a blocking syscall */

    pthread_mutex_lock(&lock);
    running--;
    pthread_mutex_unlock(&lock);
    return j->in * 3 + 1;
}

static void reset_stats(void)
{
    pthread_mutex_lock(&lock);
    running = max_running = at_barrier = 0;
    barrier_failed = false;
    pthread_mutex_unlock(&lock);
}

struct co_job {
    struct job job;
    int *done;
};

static void co_job_entry(void *opaque)
{
    struct co_job *c = opaque;

    c->job.out = threadpool_run(job_fn, &c->job);
    (*c->done)++;
}

static void test_coroutines(void)
{
    static struct co_job jobs[NJOBS];
    int done = 0, right = 0, elsewhere = 0;

    reset_stats();
    for (int i = 0; i < NJOBS; i++) {
        jobs[i] = (struct co_job){{i, -1, i < NBARRIER, main_thread}, &done};
        coroutine_enter(coroutine_create(co_job_entry, &jobs[i]));
    }
    tap_ok(done == 0, "coroutines yield while their jobs run");
    while (done < NJOBS) {
        loop_poll(loop_current(), true);
    }
    for (int i = 0; i < NJOBS; i++) {
        right += jobs[i].job.out == i * 3 + 1;
        elsewhere += !pthread_equal(jobs[i].job.ran_on, main_thread);
    }
    tap_is(right, NJOBS,
           "100 concurrent threadpool_run calls: all results correct");
    tap_is(elsewhere, NJOBS, "every job ran on a worker thread");
    tap_ok(!barrier_failed && max_running >= NBARRIER,
           "at least %d jobs ran at the same time (max %d)", NBARRIER,
           max_running);
}

static void test_plain_call(void)
{
    struct job j = {.in = 5, .ran_on = (pthread_t)0};
    int ret;

    reset_stats();
    ret = threadpool_run(job_fn, &j);
    tap_is(ret, 16, "threadpool_run outside a coroutine returns fn's result");
    tap_ok(pthread_equal(j.ran_on, main_thread),
           "... and runs fn on the calling thread");
}

struct cb_state {
    int calls, right, on_main;
};

static struct cb_state cb_state;

static void submit_done(void *opaque, int ret)
{
    struct job *j = opaque;

    cb_state.calls++;
    cb_state.right += ret == j->in * 3 + 1;
    cb_state.on_main += pthread_equal(pthread_self(), main_thread);
}

static void test_submit(void)
{
    static struct job jobs[20];
    int elsewhere = 0;

    reset_stats();
    for (int i = 0; i < 20; i++) {
        jobs[i] = (struct job){.in = 100 + i, .ran_on = main_thread};
        threadpool_submit(job_fn, &jobs[i], submit_done);
    }
    tap_is(cb_state.calls, 0,
           "submit: completions are not delivered synchronously");
    while (cb_state.calls < 20) {
        loop_poll(loop_current(), true);
    }
    for (int i = 0; i < 20; i++) {
        elsewhere += !pthread_equal(jobs[i].ran_on, main_thread);
    }
    tap_is(cb_state.right, 20, "submit: every callback got fn's result");
    tap_is(cb_state.on_main, 20,
           "submit: callbacks ran on the submitting thread");
    tap_is(elsewhere, 20, "submit: jobs ran on worker threads");
}

static void test_limit(void)
{
    static struct co_job jobs[20];
    int done = 0, right = 0;

    reset_stats();
    threadpool_set_max_threads(2);
    for (int i = 0; i < 20; i++) {
        jobs[i] = (struct co_job){{i, -1, false, main_thread}, &done};
        coroutine_enter(coroutine_create(co_job_entry, &jobs[i]));
    }
    while (done < 20) {
        loop_poll(loop_current(), true);
    }
    for (int i = 0; i < 20; i++) {
        right += jobs[i].job.out == i * 3 + 1;
    }
    tap_is(right, 20, "with max 2 threads all jobs complete");
    tap_ok(max_running <= 2, "no more than 2 jobs ran at once (max %d)",
           max_running);
    threadpool_set_max_threads(64);
}

/* Workers are not in coroutine context: a job that itself calls
 * threadpool_run just runs the inner job on the same worker. */
static int nested_fn(void *opaque)
{
    struct job j = {.in = 7};
    bool *ok = opaque;

    *ok = threadpool_run(job_fn, &j) == 22 &&
          pthread_equal(j.ran_on, pthread_self());
    return 0;
}

struct nested_ctx {
    bool ok, done;
};

static void co_nested(void *opaque)
{
    struct nested_ctx *n = opaque;

    threadpool_run(nested_fn, &n->ok);
    n->done = true;
}

static void test_from_worker(void)
{
    struct nested_ctx n = {false, false};

    coroutine_enter(coroutine_create(co_nested, &n));
    loop_run_until(loop_current(), &n.done);
    tap_ok(n.ok, "threadpool_run on a worker (not in a coroutine) runs "
                 "inline");
}

int main(void)
{
    main_thread = pthread_self();
    tap_plan(13);
    test_coroutines();
    test_plain_call();
    test_submit();
    test_limit();
    test_from_worker();
    return tap_done();
}
