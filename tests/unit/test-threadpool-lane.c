/* Thread pool lanes: requests of one lane run one at a time and in the
 * order they were submitted; other work (and other lanes) still runs
 * beside them; more lanes than the pool keeps slots for still complete. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "threadpool.h"
#include "tap.h"

#define NLANE 60  /* requests in the one lane */
#define NKEYS 40  /* more lanes than TP_MAX_LANES */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int in_lane, max_in_lane, next_seq, out_of_order;
static int arrived; /* jobs at the meeting point */
static bool meet_failed;

struct job {
    int seq;   /* position in its lane */
    bool meet; /* wait there for another job */
};

/* Two jobs that must run at the same time meet here; one that waits
 * alone gives up after a generous time, so the test fails, not hangs. */
static void meet_other(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 30;
    pthread_mutex_lock(&lock);
    arrived++;
    pthread_cond_broadcast(&cond);
    while (arrived < 2) {
        if (pthread_cond_timedwait(&cond, &lock, &ts) == ETIMEDOUT) {
            meet_failed = true;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
}

static int lane_fn(void *opaque)
{
    struct job *j = opaque;

    pthread_mutex_lock(&lock);
    if (++in_lane > max_in_lane) {
        max_in_lane = in_lane;
    }
    if (j->seq != next_seq++) {
        out_of_order++;
    }
    pthread_mutex_unlock(&lock);
    if (j->meet) {
        meet_other();
    } else {
        usleep(200);
    }
    pthread_mutex_lock(&lock);
    in_lane--;
    pthread_mutex_unlock(&lock);
    return j->seq + 1;
}

static int other_fn(void *opaque)
{
    meet_other();
    return 7;
}

struct co_job {
    uintptr_t lane;
    threadpool_fn *fn;
    struct job job;
    int ret;
    int *done;
};

static void co_entry(void *opaque)
{
    struct co_job *c = opaque;

    c->ret = threadpool_run_lane(c->lane, c->fn, &c->job);
    (*c->done)++;
}

static void run_all(struct co_job *jobs, int n, int *done)
{
    for (int i = 0; i < n; i++) {
        coroutine_enter(coroutine_create(co_entry, &jobs[i]));
    }
    while (*done < n) {
        loop_poll(loop_current(), true);
    }
}

/* One lane: serial and in order, with the results delivered. */
static void test_order(void)
{
    static struct co_job jobs[NLANE];
    int done = 0, right = 0;

    for (int i = 0; i < NLANE; i++) {
        jobs[i] = (struct co_job){.lane = 1, .fn = lane_fn,
                                  .job = {.seq = i}, .done = &done};
    }
    run_all(jobs, NLANE, &done);
    for (int i = 0; i < NLANE; i++) {
        right += jobs[i].ret == i + 1;
    }
    tap_is(right, NLANE, "lane: every request got its own result");
    tap_is(max_in_lane, 1, "lane: one request at a time");
    tap_is(out_of_order, 0, "lane: requests ran in submission order");
}

/* A lane blocked in a request does not hold up other work. */
static void test_beside(void)
{
    static struct co_job jobs[2];
    int done = 0;

    in_lane = max_in_lane = next_seq = out_of_order = 0;
    arrived = 0;
    meet_failed = false;
    jobs[0] = (struct co_job){.lane = 2, .fn = lane_fn,
                              .job = {.seq = 0, .meet = true}, .done = &done};
    jobs[1] = (struct co_job){.lane = 0, .fn = other_fn, .done = &done};
    run_all(jobs, 2, &done);
    tap_ok(!meet_failed && jobs[1].ret == 7,
           "work outside the lane runs beside a busy lane");

    /* two lanes run side by side too */
    done = 0;
    next_seq = 0;
    arrived = 0;
    jobs[0] = (struct co_job){.lane = 3, .fn = lane_fn,
                              .job = {.seq = 0, .meet = true}, .done = &done};
    jobs[1] = (struct co_job){.lane = 4, .fn = other_fn, .done = &done};
    run_all(jobs, 2, &done);
    tap_ok(!meet_failed, "two lanes run side by side");
}

static int plain_fn(void *opaque)
{
    usleep(100);
    return 0;
}

/* More lanes than slots: those without a slot run as plain requests. */
static void test_many_keys(void)
{
    static struct co_job jobs[NKEYS * 3];
    int done = 0, right = 0;

    for (int i = 0; i < NKEYS * 3; i++) {
        jobs[i] = (struct co_job){.lane = 100 + i % NKEYS, .fn = plain_fn,
                                  .ret = -1, .done = &done};
    }
    run_all(jobs, NKEYS * 3, &done);
    for (int i = 0; i < NKEYS * 3; i++) {
        right += jobs[i].ret == 0;
    }
    tap_is(right, NKEYS * 3, "40 lanes at once: every request completes");
}

int main(void)
{
    tap_plan(6);
    test_order();
    test_beside();
    test_many_keys();
    return tap_done();
}
