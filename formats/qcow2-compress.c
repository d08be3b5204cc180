/* qcow2 compressed writes (convert -c, qemu-io write -c): each guest
 * cluster is compressed on the worker pool (raw deflate with a 4 KiB window
 * as QEMU writes it, or zstd with compression_type=zstd) and its bytes are
 * packed after the previous compressed cluster in the file.  A cluster
 * that does not come out smaller is written uncompressed, as QEMU does.
 * A request of several clusters compresses them concurrently, and the
 * number of clusters being compressed per thread is bounded so that many
 * requests in flight keep every core busy without piling up buffers. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_ZLIB
#include <zlib.h>
#endif
#ifdef HAVE_ZSTD
#include <zstd.h>
#include <zstd_errors.h>
#endif

#include "qcow2.h"
#include "threadpool.h"
#include "util.h"

/* Clusters of one request compressed at the same time (QEMU: 8). */
#define COMPRESS_TASKS 8
/* The zlib incompressibility probe: PROBES samples of PROBE_LEN bytes. */
#define PROBES 4
#define PROBE_LEN 4096

struct compress_job {
    int type;           /* QCOW2_COMPRESSION_* */
    const uint8_t *src; /* one cluster */
    size_t src_len;
    uint8_t *dst;
    size_t dst_len;     /* less than a cluster: otherwise not worth it */
    size_t out_len;     /* set on success */
};

/* ---- the compressors, on worker threads ---- */

/* Worker threads keep their compression contexts: setting one up costs
 * about as much as compressing a small cluster. */
struct compress_ctx {
#ifdef HAVE_ZLIB
    z_stream z;
    bool z_ready;
    z_stream probe;     /* level 1, for the incompressibility probe */
    bool probe_ready;
    uint8_t probe_out[PROBE_LEN + 256];
#endif
#ifdef HAVE_ZSTD
    ZSTD_CCtx *zstd;
#endif
};

static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

static void ctx_free(void *opaque)
{
    struct compress_ctx *c = opaque;

#ifdef HAVE_ZLIB
    if (c->z_ready) {
        deflateEnd(&c->z);
    }
    if (c->probe_ready) {
        deflateEnd(&c->probe);
    }
#endif
#ifdef HAVE_ZSTD
    ZSTD_freeCCtx(c->zstd);
#endif
    free(c);
}

static void ctx_key_init(void)
{
    if (pthread_key_create(&ctx_key, ctx_free) != 0) {
        abort();
    }
}

static struct compress_ctx *ctx_get(void)
{
    struct compress_ctx *c;

    pthread_once(&ctx_once, ctx_key_init);
    c = pthread_getspecific(ctx_key);
    if (!c) {
        c = xzalloc(sizeof(*c));
        if (pthread_setspecific(ctx_key, c) != 0) {
            abort();
        }
    }
    return c;
}

#ifdef HAVE_ZLIB
/* Is the cluster surely not worth compressing?  Deflate at its default
 * level spends most of its time failing on data that does not compress
 * (already compressed or encrypted files): when samples spread over the
 * cluster gain nothing at all even at level 1 (about a twentieth of the
 * cost), the cluster is written uncompressed straight away, as the full
 * attempt would almost surely end.  A cluster that compresses in some
 * part the samples miss is then stored uncompressed where QEMU would
 * have compressed it: a little larger, never wrong. */
static bool probe_incompressible(struct compress_ctx *c,
                                 const struct compress_job *j)
{
    size_t step = j->src_len / PROBES;

    if (j->src_len < 4 * PROBE_LEN * PROBES) {
        return false; /* small clusters: the full attempt is cheap */
    }
    if (!c->probe_ready) {
        memset(&c->probe, 0, sizeof(c->probe));
        if (deflateInit2(&c->probe, 1, Z_DEFLATED, -12, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK) {
            return false;
        }
        c->probe_ready = true;
    }
    for (int i = 0; i < PROBES; i++) {
        if (deflateReset(&c->probe) != Z_OK) {
            return false;
        }
        c->probe.next_in = (Bytef *)j->src + i * step;
        c->probe.avail_in = PROBE_LEN;
        c->probe.next_out = c->probe_out;
        c->probe.avail_out = sizeof(c->probe_out);
        if (deflate(&c->probe, Z_FINISH) != Z_STREAM_END ||
            sizeof(c->probe_out) - c->probe.avail_out < PROBE_LEN) {
            return false; /* this part compresses: try the whole */
        }
    }
    return true;
}

/* QEMU's parameters: default level, raw deflate (no zlib header), 4 KiB
 * window, memLevel 9.  -ENOSPC: the result would not fit dst. */
static int compress_zlib(struct compress_ctx *c, struct compress_job *j)
{
    int ret;

    if (probe_incompressible(c, j)) {
        return -ENOSPC;
    }
    if (!c->z_ready) {
        memset(&c->z, 0, sizeof(c->z));
        if (deflateInit2(&c->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
                         Z_DEFAULT_STRATEGY) != Z_OK) {
            return -EIO;
        }
        c->z_ready = true;
    } else if (deflateReset(&c->z) != Z_OK) {
        return -EIO;
    }
    c->z.next_in = (Bytef *)j->src;
    c->z.avail_in = (uInt)j->src_len;
    c->z.next_out = j->dst;
    c->z.avail_out = (uInt)j->dst_len;
    ret = deflate(&c->z, Z_FINISH);
    if (ret == Z_STREAM_END) {
        j->out_len = j->dst_len - c->z.avail_out;
        return 0;
    }
    return ret == Z_OK || ret == Z_BUF_ERROR ? -ENOSPC : -EIO;
}
#endif

#ifdef HAVE_ZSTD
/* One zstd frame at the default level, as QEMU's streaming call makes. */
static int compress_zstd(struct compress_ctx *c, struct compress_job *j)
{
    ZSTD_outBuffer out = {j->dst, j->dst_len, 0};
    ZSTD_inBuffer in = {j->src, j->src_len, 0};
    size_t zret;

    if (!c->zstd) {
        c->zstd = ZSTD_createCCtx();
        if (!c->zstd) {
            return -EIO;
        }
    } else {
        ZSTD_CCtx_reset(c->zstd, ZSTD_reset_session_only);
    }
    zret = ZSTD_compressStream2(c->zstd, &out, &in, ZSTD_e_end);
    if (ZSTD_isError(zret)) {
        /* a full output buffer is the common "error" here */
        if (ZSTD_getErrorCode(zret) == ZSTD_error_dstSize_tooSmall) {
            ZSTD_CCtx_reset(c->zstd, ZSTD_reset_session_only);
            return -ENOSPC;
        }
        ZSTD_freeCCtx(c->zstd);
        c->zstd = NULL;
        return -EIO;
    }
    if (zret != 0) {
        /* more to flush than there is room for */
        ZSTD_CCtx_reset(c->zstd, ZSTD_reset_session_only);
        return -ENOSPC;
    }
    j->out_len = out.pos;
    return 0;
}
#endif

/* Worker-thread entry: one cluster with the image's compression type. */
static int compress_fn(void *opaque)
{
    struct compress_job *j = opaque;
    struct compress_ctx *c = ctx_get();

    switch (j->type) {
#ifdef HAVE_ZLIB
    case QCOW2_COMPRESSION_ZLIB:
        return compress_zlib(c, j);
#endif
#ifdef HAVE_ZSTD
    case QCOW2_COMPRESSION_ZSTD:
        return compress_zstd(c, j);
#endif
    default:
        (void)c;
        return -ENOTSUP;
    }
}

/* ---- one cluster ---- */

/* Bound the clusters this thread compresses at once: about two per core
 * keeps the pool busy without a thread per cluster. */
static int compress_limit(void)
{
    static int limit;

    if (!limit) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        limit = n > 0 && n < 64 ? 2 * (int)n : 8;
    }
    return limit;
}

static __thread int compress_running;
static __thread struct co_queue compress_queue;

static void coroutine_fn compress_slot_get(void)
{
    while (compress_running >= compress_limit()) {
        co_queue_wait(&compress_queue);
    }
    compress_running++;
}

static void compress_slot_put(void)
{
    compress_running--;
    co_queue_next(&compress_queue);
}

/* The iovec holding byte `off` of q, and where in it; NULL past the end. */
static struct iovec *iov_at(struct blk_iov *q, uint64_t off, size_t *in)
{
    for (int i = 0; i < q->niov; i++) {
        if (off < q->iov[i].iov_len) {
            *in = (size_t)off;
            return &q->iov[i];
        }
        off -= q->iov[i].iov_len;
    }
    return NULL;
}

/* Compress the guest cluster at offset (bytes of it given, the rest of a
 * partial last cluster reads as zeroes) and enter it into the image. */
static int coroutine_fn write_one_cluster(struct blk_node *bs,
                                          uint64_t offset, uint64_t bytes,
                                          struct blk_iov *qiov,
                                          uint64_t qiov_off)
{
    struct qcow2_state *s = bs->opaque;
    struct compress_job j;
    struct qcow2_alloc *m;
    uint8_t *src, *dst, *own = NULL;
    uint64_t host;
    size_t in_iov = 0;
    struct iovec *v = iov_at(qiov, qiov_off, &in_iov);
    int ret;

    if (v && bytes == s->cluster_size && v->iov_len - in_iov >= bytes) {
        src = (uint8_t *)v->iov_base + in_iov; /* contiguous: no copy */
    } else {
        src = own = xmemalign(4096, s->cluster_size);
        blk_iov_to_buf(qiov, qiov_off, src, bytes);
        memset(src + bytes, 0, s->cluster_size - bytes);
    }
    dst = xmalloc(s->cluster_size);
    j = (struct compress_job){s->compression_type, src, s->cluster_size, dst,
                              s->cluster_size - 1, 0};
    compress_slot_get();
    ret = threadpool_run(compress_fn, &j);
    compress_slot_put();

    if (ret == -ENOSPC) {
        /* not smaller: a normal cluster, as QEMU writes it */
        struct blk_iov part;
        blk_iov_init(&part, qiov->niov);
        blk_iov_concat(&part, qiov, qiov_off, bytes);
        ret = qcow2_co_pwritev(bs, offset, bytes, &part, 0);
        blk_iov_destroy(&part);
        goto out;
    }
    if (ret < 0) {
        goto out;
    }

    co_mutex_lock(&s->lock);
    ret = qcow2_alloc_compressed(bs, offset, j.out_len, &host, &m);
    co_mutex_unlock(&s->lock);
    if (ret < 0) {
        goto out;
    }
    /* the data is in place before the L2 entry points at it */
    int wret = blk_co_pwrite(bs->file, host, j.out_len, dst, 0);
    co_mutex_lock(&s->lock);
    ret = qcow2_link_compressed(bs, m, j.out_len, wret >= 0);
    co_mutex_unlock(&s->lock);
    if (wret < 0) {
        ret = wret;
    }
out:
    free(own);
    free(dst);
    return ret < 0 ? ret : 0;
}

/* ---- requests of several clusters ---- */

struct multi_req {
    struct blk_node *bs;
    uint64_t offset, bytes; /* the whole request */
    struct blk_iov *qiov;
    uint64_t next;          /* bytes handed out so far */
    int running;
    int ret;
    struct coroutine *waiter;
    bool waiting;
};

/* A task: take the next cluster of the request until none is left. */
static void coroutine_fn multi_task(void *opaque)
{
    struct multi_req *r = opaque;
    struct qcow2_state *s = r->bs->opaque;

    while (r->next < r->bytes && r->ret == 0) {
        uint64_t off = r->next;
        uint64_t len = MIN((uint64_t)s->cluster_size, r->bytes - off);
        int ret;

        r->next += len;
        ret = write_one_cluster(r->bs, r->offset + off, len, r->qiov, off);
        if (ret < 0 && r->ret == 0) {
            r->ret = ret;
        }
    }
    if (--r->running == 0 && r->waiting) {
        coroutine_wake(r->waiter);
    }
}

/* The request must start on a cluster and end on one or at the end of
 * the image (QEMU's rules); clusters that are allocated already fail
 * with -EIO, as in QEMU. */
int coroutine_fn qcow2_co_pwritev_compressed(struct blk_node *bs,
                                             uint64_t offset, uint64_t bytes,
                                             struct blk_iov *qiov)
{
    struct qcow2_state *s = bs->opaque;
    struct multi_req r = {bs, offset, bytes, qiov, 0, 0, 0, NULL, false};
    int tasks;

    if (qcow2_has_data_file(s)) {
        return -ENOTSUP; /* as QEMU: nowhere to put them */
    }
    if (qcow2_offset_into_cluster(s, offset) ||
        (qcow2_offset_into_cluster(s, bytes) && offset + bytes != bs->size)) {
        return -EINVAL;
    }
    if (s->dead) {
        return -EIO;
    }
    if (bytes <= s->cluster_size) {
        return write_one_cluster(bs, offset, bytes, qiov, 0);
    }
    tasks = (int)MIN((uint64_t)COMPRESS_TASKS,
                     qcow2_size_to_clusters(s, bytes));
    r.running = tasks;
    for (int i = 0; i < tasks; i++) {
        coroutine_enter(coroutine_create(multi_task, &r));
    }
    if (r.running > 0) {
        r.waiter = coroutine_self();
        r.waiting = true;
        coroutine_yield();
    }
    return r.ret;
}

/* ---- entering compressed clusters (moved from qcow2-cluster.c) ---- */

int coroutine_fn qcow2_alloc_compressed(struct blk_node *bs, uint64_t offset,
                                        uint64_t size, uint64_t *host,
                                        struct qcow2_alloc **alloc)
{
    struct qcow2_state *s = bs->opaque;
    uint32_t l2_index;
    uint64_t e;
    int64_t off;
    void *l2;
    int ret;

    *alloc = NULL;
    if (s->crypto) {
        return -ENOTSUP; /* crypto: compressed data would be plaintext */
    }
    qcow2_wait_allocs(bs, offset, s->cluster_size);
    if (s->dead) {
        return -EIO;
    }
    /* the L2 table first, as QEMU: the layout follows its order */
    ret = qcow2_get_l2_for_write(bs, offset, &l2, &l2_index);
    if (ret < 0) {
        return ret;
    }
    e = qcow2_l2_entry(s, l2, l2_index);
    qcow2_cache_put(s->l2_cache, &l2);
    if (e & QCOW2_L2E_OFFSET_MASK) {
        /* compressed data never overwrites a cluster (QEMU: -EIO) */
        return -EIO;
    }
    off = qcow2_alloc_bytes(bs, size);
    if (off < 0) {
        return (int)off;
    }
    ret = qcow2_pre_write_overlap_check(bs, 0, (uint64_t)off, size);
    if (ret < 0) {
        qcow2_free_clusters(bs, (uint64_t)off, size, QCOW2_DISCARD_NEVER);
        s->free_byte_offset = 0;
        return ret;
    }
    struct qcow2_alloc *m = xzalloc(sizeof(*m));
    m->guest_offset = offset;
    m->nb_clusters = 1;
    m->host_offset = (uint64_t)off;
    m->keep_old = true; /* nothing of ours to free on abort: done below */
    qcow2_register_alloc(s, m);
    *host = (uint64_t)off;
    *alloc = m;
    return 0;
}

int coroutine_fn qcow2_link_compressed(struct blk_node *bs,
                                       struct qcow2_alloc *m, uint64_t size,
                                       bool ok)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t host = m->host_offset, e = 0, nb_csectors;
    uint32_t l2_index;
    void *l2;
    int ret = ok ? 0 : -EIO;

    if (ok) {
        ret = qcow2_get_l2_for_write(bs, m->guest_offset, &l2, &l2_index);
    }
    if (ret >= 0) {
        ret = qcow2_cache_set_dependency(bs, s->l2_cache, s->refblock_cache);
        if (ret < 0) {
            qcow2_cache_put(s->l2_cache, &l2);
        }
    }
    if (ret >= 0) {
        /* sectors the data reaches into after its first one */
        nb_csectors = ((host + size - 1) >> 9) - (host >> 9);
        e = qcow2_l2_entry(s, l2, l2_index);
        /* compressed entries never carry the copied flag */
        qcow2_set_l2_entry(s, l2, l2_index, host | QCOW2_OFLAG_COMPRESSED |
                                 (nb_csectors << s->csize_shift));
        qcow2_set_l2_bitmap(s, l2, l2_index, 0); /* reserved: zero */
        qcow2_cache_mark_dirty(s->l2_cache, l2);
        qcow2_cache_put(s->l2_cache, &l2);
        /* a zero flag without a host cluster held nothing */
        qcow2_free_any_cluster(bs, e, QCOW2_DISCARD_NEVER);
    } else {
        qcow2_free_clusters(bs, host, size, QCOW2_DISCARD_NEVER);
        s->free_byte_offset = 0; /* that space may be free again */
    }
    qcow2_unregister_alloc(s, m);
    free(m);
    return ret;
}
