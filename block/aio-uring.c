/* aio=io_uring: requests through liburing.
 *
 * One ring per thread, created when the first node of that thread attaches
 * and shared by all its file nodes.  A request gets its SQE as soon as it is
 * issued and is submitted at once, except that the requests issued by
 * coroutines woken by one batch of completions are submitted together
 * (or when the submission ring fills up).  The loop busy-polls the
 * completion ring before it sleeps (loop_add_poller).  At most
 * URING_MAX_IN_FLIGHT requests are in the kernel, so the completion ring
 * cannot overflow; further requests wait in a queue.  The ring signals an
 * eventfd the loop watches. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "loop.h"
#include "util.h"

#ifdef HAVE_LIBURING

#include <liburing.h>
#include <sys/eventfd.h>

#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#else
#define VALGRIND_MAKE_MEM_DEFINED(addr, len) ((void)(addr), (void)(len))
#endif

#define URING_ENTRIES 128
#define URING_MAX_IN_FLIGHT (2 * URING_ENTRIES) /* the CQ ring's size */

struct uring_req {
    enum file_aio_op op;
    int fd;
    uint64_t offset;
    const struct iovec *iov;
    int niov;
    int rwflags;
    struct coroutine *co;
    int res; /* bytes or -errno */
    bool done;
    struct uring_req *next;
};

struct uring_ctx {
    struct io_uring ring;
    int efd;
    struct loop *loop;
    int refcnt;         /* attached nodes */
    unsigned in_flight; /* submitted to the kernel */
    unsigned queued;    /* SQEs prepared, not yet submitted */
    struct uring_req *pending, **pending_tail; /* waiting for room */
    struct loop_bh submit_bh;
    struct loop_poller poller;
    bool in_handler;
    bool dead;
};

static __thread struct uring_ctx *thread_ctx;

static void uring_ctx_maybe_free(struct uring_ctx *ctx)
{
    if (!ctx->dead || ctx->in_handler ||
        __atomic_load_n(&ctx->submit_bh.scheduled, __ATOMIC_ACQUIRE)) {
        return;
    }
    loop_set_fd_handler(ctx->loop, ctx->efd, NULL, NULL, NULL);
    loop_del_poller(ctx->loop, &ctx->poller);
    io_uring_unregister_eventfd(&ctx->ring);
    io_uring_queue_exit(&ctx->ring);
    close(ctx->efd);
    free(ctx);
}

/* Memcheck cannot see the kernel fill buffers through the ring: tell it,
 * so runs under valgrind report real errors only. */
static void mark_read_defined(const struct uring_req *r, int res)
{
    for (int i = 0; i < r->niov && res > 0; i++) {
        size_t n = MIN((size_t)res, r->iov[i].iov_len);
        VALGRIND_MAKE_MEM_DEFINED(r->iov[i].iov_base, n);
        res -= n;
    }
}

static void uring_prep(struct io_uring_sqe *sqe, struct uring_req *r)
{
    switch (r->op) {
    case FILE_AIO_READ:
        io_uring_prep_readv2(sqe, r->fd, r->iov, r->niov, r->offset,
                             r->rwflags);
        break;
    case FILE_AIO_WRITE:
        io_uring_prep_writev2(sqe, r->fd, r->iov, r->niov, r->offset,
                              r->rwflags);
        break;
    default:
        io_uring_prep_fsync(sqe, r->fd, IORING_FSYNC_DATASYNC);
        break;
    }
    io_uring_sqe_set_data(sqe, r);
}

/* Submit what is prepared; on a transient failure the SQEs stay in the
 * ring and the next completion or request tries again. */
static void uring_flush(struct uring_ctx *ctx)
{
    while (ctx->queued) {
        int ret = io_uring_submit(&ctx->ring);
        if (ret == -EINTR) {
            continue;
        }
        if (ret < 0) {
            return;
        }
        ctx->queued -= MIN((unsigned)ret, ctx->queued);
        ctx->in_flight += ret;
        if (ret == 0) {
            return;
        }
    }
}

/* Give r an SQE if there is room; false when it has to wait. */
static bool uring_try_queue(struct uring_ctx *ctx, struct uring_req *r)
{
    struct io_uring_sqe *sqe;

    if (ctx->in_flight + ctx->queued >= URING_MAX_IN_FLIGHT) {
        return false;
    }
    sqe = io_uring_get_sqe(&ctx->ring);
    if (!sqe) {
        uring_flush(ctx); /* the submission ring is full: submit now */
        sqe = io_uring_get_sqe(&ctx->ring);
        if (!sqe) {
            return false;
        }
    }
    uring_prep(sqe, r);
    ctx->queued++;
    return true;
}

/* Move waiting requests into the ring while there is room. */
static void uring_fill(struct uring_ctx *ctx)
{
    while (ctx->pending && uring_try_queue(ctx, ctx->pending)) {
        ctx->pending = ctx->pending->next;
    }
    if (!ctx->pending) {
        ctx->pending_tail = &ctx->pending;
    }
}

static void uring_submit_bh(void *opaque)
{
    struct uring_ctx *ctx = opaque;

    if (!ctx->dead) {
        uring_fill(ctx);
        uring_flush(ctx);
    }
    uring_ctx_maybe_free(ctx);
}

/* Reap every completion and wake its coroutine; requests issued by the
 * woken coroutines are submitted together at the end. */
static void uring_reap(struct uring_ctx *ctx)
{
    struct io_uring_cqe *cqe;

    ctx->in_handler = true;
    while (io_uring_peek_cqe(&ctx->ring, &cqe) == 0) {
        struct uring_req *r = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&ctx->ring, cqe);
        if (ctx->in_flight) {
            ctx->in_flight--;
        }
        if (r) {
            if (r->op == FILE_AIO_READ) {
                mark_read_defined(r, res);
            }
            r->res = res;
            r->done = true;
            file_aio_wake(r->co);
        }
    }
    ctx->in_handler = false;
    if (!ctx->dead) {
        uring_fill(ctx);
        uring_flush(ctx);
    }
    uring_ctx_maybe_free(ctx);
}

/* The eventfd fired. */
static void uring_completion_cb(void *opaque)
{
    struct uring_ctx *ctx = opaque;
    uint64_t count;

    if (read(ctx->efd, &count, sizeof(count)) < 0) {
        /* EAGAIN: a previous call already reaped everything */
    }
    uring_reap(ctx);
}

/* The loop's busy-poll: completions are visible in the shared ring
 * without a system call. */
static int uring_poll(void *opaque)
{
    struct uring_ctx *ctx = opaque;

    if (!ctx->in_flight) {
        return -1;
    }
    if (!io_uring_cq_ready(&ctx->ring)) {
        return 0;
    }
    uring_reap(ctx);
    return 1;
}

static int uring_attach(struct file_state *s, struct strata_error **errp)
{
    struct uring_ctx *ctx = thread_ctx;
    int ret;

    if (!ctx) {
        ctx = xzalloc(sizeof(*ctx));
        ret = io_uring_queue_init(URING_ENTRIES, &ctx->ring, 0);
        if (ret < 0) {
            free(ctx);
            return error_setg_errno(errp, ret,
                                    "Could not set up io_uring for "
                                    "aio=io_uring");
        }
        ctx->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (ctx->efd < 0) {
            ret = -errno;
            io_uring_queue_exit(&ctx->ring);
            free(ctx);
            return error_setg_errno(errp, ret, "Could not create eventfd");
        }
        ret = io_uring_register_eventfd(&ctx->ring, ctx->efd);
        if (ret < 0) {
            close(ctx->efd);
            io_uring_queue_exit(&ctx->ring);
            free(ctx);
            return error_setg_errno(errp, ret,
                                    "Could not register an eventfd with "
                                    "io_uring");
        }
        ctx->loop = loop_current();
        ctx->pending_tail = &ctx->pending;
        loop_bh_init(&ctx->submit_bh, uring_submit_bh, ctx);
        loop_set_fd_handler(ctx->loop, ctx->efd, uring_completion_cb, NULL,
                            ctx);
        ctx->poller = (struct loop_poller){.poll = uring_poll, .opaque = ctx};
        loop_add_poller(ctx->loop, &ctx->poller);
        thread_ctx = ctx;
    }
    ctx->refcnt++;
    s->aio_ctx = ctx;
    return 0;
}

static void uring_detach(struct file_state *s)
{
    struct uring_ctx *ctx = s->aio_ctx;

    s->aio_ctx = NULL;
    if (!ctx || --ctx->refcnt > 0) {
        return;
    }
    if (thread_ctx == ctx) {
        thread_ctx = NULL;
    }
    ctx->dead = true;
    uring_ctx_maybe_free(ctx);
}

/* Queue one request and sleep until its completion arrives. */
static ssize_t coroutine_fn uring_do(struct file_state *s, struct uring_req *r)
{
    struct uring_ctx *ctx = s->aio_ctx;

    r->fd = s->fd;
    r->co = coroutine_self();
    if (ctx->pending || !uring_try_queue(ctx, r)) {
        r->next = NULL;
        *ctx->pending_tail = r;
        ctx->pending_tail = &r->next;
    }
    if (ctx->in_handler || ctx->pending) {
        /* batched: the handler submits when it is done */
        loop_defer_bh(ctx->loop, &ctx->submit_bh);
    } else {
        /* at once: the device starts on it a loop iteration earlier */
        uring_flush(ctx);
    }
    while (!r->done) {
        coroutine_yield();
    }
    return r->res;
}

static ssize_t coroutine_fn uring_rw(struct file_state *s, enum file_aio_op op,
                                     uint64_t offset, const struct iovec *iov,
                                     int niov, int rwflags)
{
    struct uring_ctx *ctx = s->aio_ctx;
    struct uring_req r = {
        .op = op,
        .offset = offset,
        .iov = iov,
        .niov = niov,
        .rwflags = rwflags,
    };

    /* Another thread's requests (or plain calls) take the thread pool. */
    if (!in_coroutine() || !ctx || loop_current() != ctx->loop) {
        return file_aio_threads.rw(s, op, offset, iov, niov, rwflags);
    }
    return uring_do(s, &r);
}

static int coroutine_fn uring_fsync(struct file_state *s)
{
    struct uring_ctx *ctx = s->aio_ctx;
    struct uring_req r = {.op = FILE_AIO_FSYNC};

    if (!in_coroutine() || !ctx || loop_current() != ctx->loop) {
        return file_aio_threads.fsync(s);
    }
    return (int)uring_do(s, &r);
}

const struct file_aio_ops file_aio_uring = {
    .name = "io_uring",
    .attach = uring_attach,
    .detach = uring_detach,
    .rw = uring_rw,
    .fsync = uring_fsync,
};

#else /* !HAVE_LIBURING */

static int uring_attach(struct file_state *s, struct strata_error **errp)
{
    return error_setg(errp, -ENOTSUP,
                      "aio=io_uring is not supported: strata was built "
                      "without liburing");
}

static void uring_detach(struct file_state *s)
{
}

static ssize_t coroutine_fn uring_rw(struct file_state *s, enum file_aio_op op,
                                     uint64_t offset, const struct iovec *iov,
                                     int niov, int rwflags)
{
    return -ENOTSUP;
}

static int coroutine_fn uring_fsync(struct file_state *s)
{
    return -ENOTSUP;
}

const struct file_aio_ops file_aio_uring = {
    .name = "io_uring",
    .attach = uring_attach,
    .detach = uring_detach,
    .rw = uring_rw,
    .fsync = uring_fsync,
};

#endif
