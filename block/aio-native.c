/* aio=native: Linux AIO through the raw syscalls (no libaio).
 *
 * One I/O context per thread, created when the first node of that thread
 * attaches and shared by all its file nodes.  Requests are queued as they
 * are issued and submitted at once, except that the requests issued by
 * coroutines woken by one batch of completions are submitted together
 * (one io_submit).  The loop busy-polls the mapped completion ring before
 * it sleeps (loop_add_poller).  At most
 * NATIVE_DEPTH are in the kernel; the rest wait in the queue until
 * completions make room.  Completions signal an eventfd the loop watches.
 *
 * Linux AIO is only asynchronous with O_DIRECT, so like QEMU we refuse it
 * without cache.direct=on.  fdatasync goes through the thread pool. */
#include "config.h"

#include <errno.h>
#include <linux/aio_abi.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "loop.h"
#include "util.h"

#define NATIVE_DEPTH 256
#define NATIVE_BATCH 64

struct native_req {
    struct iocb iocb;
    struct coroutine *co;
    long long res; /* bytes or -errno */
    bool done;
    struct native_req *next;
};

struct native_ctx {
    aio_context_t id;
    int efd;
    struct loop *loop;
    int refcnt;                                 /* attached nodes */
    unsigned in_flight;                         /* submitted to the kernel */
    struct native_req *pending, **pending_tail; /* not yet submitted */
    struct loop_bh submit_bh;
    struct loop_poller poller;
    bool in_handler; /* completion callback running */
    bool dead;       /* detached: free when nothing refers to it */
};

static __thread struct native_ctx *thread_ctx;

static long sys_io_setup(unsigned nr, aio_context_t *ctx)
{
    return syscall(SYS_io_setup, nr, ctx);
}

static long sys_io_destroy(aio_context_t ctx)
{
    return syscall(SYS_io_destroy, ctx);
}

static long sys_io_submit(aio_context_t ctx, long n, struct iocb **iocbs)
{
    return syscall(SYS_io_submit, ctx, n, iocbs);
}

static long sys_io_getevents(aio_context_t ctx, long min_nr, long nr,
                             struct io_event *events, struct timespec *ts)
{
    return syscall(SYS_io_getevents, ctx, min_nr, nr, events, ts);
}

/* Free the context once no callback or bh can still reach it. */
static void native_ctx_maybe_free(struct native_ctx *ctx)
{
    if (!ctx->dead || ctx->in_handler ||
        __atomic_load_n(&ctx->submit_bh.scheduled, __ATOMIC_ACQUIRE)) {
        return;
    }
    loop_set_fd_handler(ctx->loop, ctx->efd, NULL, NULL, NULL);
    loop_del_poller(ctx->loop, &ctx->poller);
    close(ctx->efd);
    sys_io_destroy(ctx->id);
    free(ctx);
}

static void native_complete(struct native_req *r, long long res)
{
    r->res = res;
    r->done = true;
    /* a refused submission made by the request's own coroutine: it sees
     * done before it would yield */
    if (!in_coroutine() || r->co != coroutine_self()) {
        file_aio_wake(r->co);
    }
}

static struct native_req *pop_pending(struct native_ctx *ctx)
{
    struct native_req *r = ctx->pending;

    ctx->pending = r->next;
    if (!ctx->pending) {
        ctx->pending_tail = &ctx->pending;
    }
    return r;
}

/* Hand queued requests to the kernel while there is room. */
static void native_submit(struct native_ctx *ctx)
{
    struct iocb *batch[NATIVE_BATCH];

    while (ctx->pending && ctx->in_flight < NATIVE_DEPTH) {
        long n = 0, ret;
        for (struct native_req *r = ctx->pending;
             r && n < NATIVE_BATCH && ctx->in_flight + n < NATIVE_DEPTH;
             r = r->next) {
            batch[n++] = &r->iocb;
        }
        ret = sys_io_submit(ctx->id, n, batch);
        if (ret < 0 && errno == EINTR) {
            continue;
        }
        if (ret < 0 && errno == EAGAIN && ctx->in_flight > 0) {
            break; /* out of kernel resources: retry on completion */
        }
        if (ret < 0) {
            /* the first request is bad (or no progress is possible) */
            native_complete(pop_pending(ctx), -errno);
            continue;
        }
        for (long i = 0; i < ret; i++) {
            pop_pending(ctx);
        }
        ctx->in_flight += ret;
    }
}

static void native_submit_bh(void *opaque)
{
    struct native_ctx *ctx = opaque;

    if (!ctx->dead) {
        native_submit(ctx);
    }
    native_ctx_maybe_free(ctx);
}

/* Reap every finished request and wake its coroutine; what the woken
 * coroutines issue is submitted together at the end. */
static void native_reap(struct native_ctx *ctx)
{
    struct io_event ev[NATIVE_BATCH];

    ctx->in_handler = true;
    for (;;) {
        struct timespec ts = {0, 0};
        long n = sys_io_getevents(ctx->id, 0, NATIVE_BATCH, ev, &ts);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        ctx->in_flight -= n;
        for (long i = 0; i < n; i++) {
            struct native_req *r = (struct native_req *)(uintptr_t)ev[i].data;
            native_complete(r, (long long)ev[i].res);
        }
        if (n < NATIVE_BATCH) {
            break;
        }
    }
    ctx->in_handler = false;
    if (!ctx->dead && ctx->pending) {
        native_submit(ctx);
    }
    native_ctx_maybe_free(ctx);
}

/* The eventfd fired. */
static void native_completion_cb(void *opaque)
{
    struct native_ctx *ctx = opaque;
    uint64_t count;

    if (read(ctx->efd, &count, sizeof(count)) < 0) {
        /* EAGAIN: a previous call already reaped everything */
    }
    native_reap(ctx);
}

/* The head of the completion ring the kernel maps at the context's
 * address (its layout is ABI: libaio and QEMU read it the same way). */
struct native_ring {
    unsigned id, nr, head, tail, magic;
};
#define NATIVE_RING_MAGIC 0xa10a10a1u

/* The loop's busy-poll: finished requests show in the mapped ring
 * without a system call. */
static int native_poll(void *opaque)
{
    struct native_ctx *ctx = opaque;
    const struct native_ring *ring = (const void *)(uintptr_t)ctx->id;

    if (!ctx->in_flight) {
        return -1;
    }
    if (ring->magic != NATIVE_RING_MAGIC ||
        __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE) ==
            __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE)) {
        return 0;
    }
    native_reap(ctx);
    return 1;
}

static int native_attach(struct file_state *s, struct strata_error **errp)
{
    struct native_ctx *ctx = thread_ctx;

    if (!s->direct) {
        return error_setg(errp, -EINVAL,
                          "aio=native was specified, but it requires "
                          "cache.direct=on, which was not specified.");
    }
    if (!ctx) {
        ctx = xzalloc(sizeof(*ctx));
        if (sys_io_setup(NATIVE_DEPTH, &ctx->id) < 0) {
            int err = -errno;
            free(ctx);
            return error_setg_errno(errp, err,
                                    "Could not create a Linux AIO context "
                                    "for aio=native");
        }
        ctx->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (ctx->efd < 0) {
            int err = -errno;
            sys_io_destroy(ctx->id);
            free(ctx);
            return error_setg_errno(errp, err, "Could not create eventfd");
        }
        ctx->loop = loop_current();
        ctx->pending_tail = &ctx->pending;
        loop_bh_init(&ctx->submit_bh, native_submit_bh, ctx);
        loop_set_fd_handler(ctx->loop, ctx->efd, native_completion_cb, NULL,
                            ctx);
        ctx->poller = (struct loop_poller){.poll = native_poll,
                                           .opaque = ctx};
        loop_add_poller(ctx->loop, &ctx->poller);
        thread_ctx = ctx;
    }
    ctx->refcnt++;
    s->aio_ctx = ctx;
    return 0;
}

static void native_detach(struct file_state *s)
{
    struct native_ctx *ctx = s->aio_ctx;

    s->aio_ctx = NULL;
    if (!ctx || --ctx->refcnt > 0) {
        return;
    }
    if (thread_ctx == ctx) {
        thread_ctx = NULL;
    }
    ctx->dead = true;
    native_ctx_maybe_free(ctx);
}

static ssize_t coroutine_fn native_rw(struct file_state *s, enum file_aio_op op,
                                      uint64_t offset, const struct iovec *iov,
                                      int niov, int rwflags)
{
    struct native_ctx *ctx = s->aio_ctx;
    struct native_req r;

    /* Requests from another thread (or outside a coroutine) cannot use this
     * thread's context; they take the thread pool. */
    if (!in_coroutine() || !ctx || loop_current() != ctx->loop) {
        return file_aio_threads.rw(s, op, offset, iov, niov, rwflags);
    }
    memset(&r, 0, sizeof(r));
    r.iocb.aio_data = (uintptr_t)&r;
    r.iocb.aio_lio_opcode =
        op == FILE_AIO_READ ? IOCB_CMD_PREADV : IOCB_CMD_PWRITEV;
    r.iocb.aio_fildes = s->fd;
    r.iocb.aio_buf = (uintptr_t)iov;
    r.iocb.aio_nbytes = niov;
    r.iocb.aio_offset = offset;
    r.iocb.aio_flags = IOCB_FLAG_RESFD;
    r.iocb.aio_resfd = ctx->efd;
    r.iocb.aio_rw_flags = rwflags;
    r.co = coroutine_self();

    *ctx->pending_tail = &r;
    ctx->pending_tail = &r.next;
    if (ctx->in_handler) {
        /* batched: the handler submits when it is done */
        loop_defer_bh(ctx->loop, &ctx->submit_bh);
    } else {
        /* at once: the device starts on it a loop iteration earlier */
        native_submit(ctx);
    }
    while (!r.done) {
        coroutine_yield();
    }
    return r.res;
}

static int coroutine_fn native_fsync(struct file_state *s)
{
    return file_aio_threads.fsync(s);
}

const struct file_aio_ops file_aio_native = {
    .name = "native",
    .attach = native_attach,
    .detach = native_detach,
    .rw = native_rw,
    .fsync = native_fsync,
};
