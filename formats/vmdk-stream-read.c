/* vmdk compressed grains, the read side.  A streamOptimized file stores
 * the grains of a request one after the other, so a request is served in
 * batches: the grain tables give every grain's place (and the next grain's
 * start bounds each one), each run of adjacent grains is one read, and the
 * grains are inflated on the worker pool, split into a few jobs so every
 * core inflates.  Whole grains inflate straight into the caller's buffer.
 * A grain whose marker claims more than its bound gets a read of its own,
 * checked as QEMU checks it (at most two grains of compressed data).
 * Streams are checked by zlib as uncompress() checks them (header and
 * Adler-32). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "threadpool.h"
#include "util.h"
#include "vmdk.h"

#define BATCH_GRAINS 64          /* grains read and inflated together */
#define BATCH_BYTES (4u << 20)   /* guest bytes per batch (or one grain) */
#define MAX_JOBS 8               /* inflate jobs per batch */

/* One grain of a batch. */
struct sgrain {
    uint64_t host;      /* its marker (or data) in the file, bytes */
    uint64_t end;       /* bytes read for it end here (next grain / bound) */
    uint64_t in_grain;  /* first byte wanted */
    uint64_t len;       /* bytes wanted */
    size_t qoff;        /* where they go in qiov */
    size_t pos;         /* its bytes in the batch buffer */
    const uint8_t *in;  /* compressed stream */
    size_t in_len;
    uint8_t *own_in;    /* a read of its own (overran `end`), or NULL */
    uint8_t *out;       /* a whole grain of room: in qiov, or own_out */
    uint8_t *own_out;
};

struct sbatch {
    int pending;
    bool waiting;
    struct coroutine *co;
};

/* Grains g[0..n) of a batch for one worker. */
struct sjob {
    struct sgrain *g;
    int n;
    uint64_t grain;     /* bytes of a whole grain */
    struct sbatch *batch;
    int ret;
};

/* Inflate one zlib stream (RFC 1950) as uncompress() would accept it:
 * zlib checks the header and the Adler-32.  Returns the bytes produced
 * or -errno. */
static int64_t inflate_grain(z_stream *z, const uint8_t *in, size_t in_len,
                             uint8_t *out, size_t room)
{
    if (inflateReset(z) != Z_OK) {
        return -EINVAL;
    }
    z->next_in = (Bytef *)in;
    z->avail_in = (uInt)in_len;
    z->next_out = out;
    z->avail_out = (uInt)room;
    /* all input and output at once: zlib keeps no window copy */
    if (inflate(z, Z_FINISH) != Z_STREAM_END || z->total_out == 0) {
        return -EINVAL;
    }
    return (int64_t)z->total_out;
}

/* On a worker: inflate the job's grains, one zlib state for all. */
static int sjob_run(void *opaque)
{
    struct sjob *j = opaque;
    z_stream z;
    int ret = 0;

    memset(&z, 0, sizeof(z));
    if (inflateInit(&z) != Z_OK) {
        return -ENOMEM;
    }
    for (int i = 0; i < j->n && ret >= 0; i++) {
        struct sgrain *g = &j->g[i];
        int64_t r = inflate_grain(&z, g->in, g->in_len, g->out, j->grain);
        if (r < 0) {
            ret = (int)r;
        } else if (g->in_grain + g->len > (uint64_t)r) {
            ret = -EIO; /* the grain inflates short */
        }
    }
    inflateEnd(&z);
    return ret;
}

static void sjob_done(void *opaque, int ret)
{
    struct sjob *j = opaque;

    j->ret = ret;
    if (--j->batch->pending == 0 && j->batch->waiting) {
        coroutine_wake(j->batch->co);
    }
}

/* How many inflate jobs a batch of n grains is split into. */
static int job_count(int n)
{
    static int ncpu;
    int c = __atomic_load_n(&ncpu, __ATOMIC_RELAXED);

    if (c == 0) {
        long v = sysconf(_SC_NPROCESSORS_ONLN);
        c = v < 1 ? 1 : v > MAX_JOBS ? MAX_JOBS : (int)v;
        __atomic_store_n(&ncpu, c, __ATOMIC_RELAXED);
    }
    return MIN(n, c);
}

/* Inflate all grains of the batch, and wait for it. */
static int coroutine_fn inflate_all(struct sgrain *g, int n, uint64_t grain)
{
    struct sjob jobs[MAX_JOBS];
    struct sbatch b = {.co = coroutine_self()};
    int nj = job_count(n), first = 0, ret = 0;

    if (nj == 1) {
        struct sjob j = {.g = g, .n = n, .grain = grain};
        return threadpool_run(sjob_run, &j);
    }
    b.pending = nj;
    for (int i = 0; i < nj; i++) {
        int k = (n - first) / (nj - i);
        jobs[i] = (struct sjob){.g = g + first, .n = k, .grain = grain,
                                .batch = &b};
        first += k;
        threadpool_submit(sjob_run, &jobs[i], sjob_done);
    }
    while (b.pending > 0) {
        b.waiting = true;
        coroutine_yield();
        b.waiting = false;
    }
    for (int i = 0; i < nj; i++) {
        if (jobs[i].ret < 0 && ret == 0) {
            ret = jobs[i].ret;
        }
    }
    return ret;
}

/* The bytes [off, off+len) of q when they lie in one iovec, else NULL. */
static uint8_t *iov_flat(const struct blk_iov *q, size_t off, size_t len)
{
    for (int i = 0; i < q->niov; i++) {
        if (off < q->iov[i].iov_len) {
            return off + len <= q->iov[i].iov_len ?
                   (uint8_t *)q->iov[i].iov_base + off : NULL;
        }
        off -= q->iov[i].iov_len;
    }
    return NULL;
}

/* Collect the compressed grains from rel on (s->lock taken here), and
 * the start of the grain after them (0 when unknown). */
static int coroutine_fn gather(struct blk_node *bs, struct vmdk_extent *e,
                               uint64_t rel, uint64_t bytes, size_t qoff,
                               struct sgrain *g, int *pn, uint64_t *covered,
                               uint64_t *next_host)
{
    struct vmdk_state *s = bs->opaque;
    uint64_t grain = e->grain_sectors * BLK_SECTOR_SIZE, host, num, c = 0;
    int n = 0, k = 0;

    *next_host = 0;
    co_mutex_lock(&s->lock);
    while (n < BATCH_GRAINS && c < bytes && (c < BATCH_BYTES || n == 0)) {
        k = vmdk_lookup(e, rel + c, bytes - c, &host, &num);
        if (k != VMDK_GRAIN_DATA) {
            break;
        }
        g[n] = (struct sgrain){.host = host, .in_grain = (rel + c) % grain,
                               .len = num, .qoff = qoff + c};
        c += num;
        n++;
    }
    uint64_t nx = ROUND_UP(rel + c, grain);
    if (n > 0 && nx < e->end - e->start &&
        vmdk_lookup(e, nx, grain, &host, &num) == VMDK_GRAIN_DATA) {
        *next_host = host;
    }
    co_mutex_unlock(&s->lock);
    *pn = n;
    *covered = c;
    if (n == 0) {
        return k < 0 ? k : -EIO; /* the caller saw a compressed grain */
    }
    return 0;
}

/* Find each grain's compressed stream in the batch buffer, reading it
 * on its own when it runs past the bytes read for it. */
static int coroutine_fn locate(struct vmdk_extent *e, struct sgrain *g,
                               uint8_t *buf)
{
    uint64_t grain = e->grain_sectors * BLK_SECTOR_SIZE;
    uint64_t avail = g->end - g->host, size;
    int ret;

    if (!e->has_marker) {
        g->in = buf + g->pos;
        g->in_len = avail;
        return avail > 0 ? 0 : -EIO; /* past the end: file cut short */
    }
    if (avail >= VMDK_MARKER_SIZE) {
        size = vmdk_ld32(buf + g->pos + 8);
        if (size == 0) {
            return -EIO;
        }
        if (size <= avail - VMDK_MARKER_SIZE) {
            g->in = buf + g->pos + VMDK_MARKER_SIZE;
            g->in_len = size;
            return 0;
        }
    }
    /* as the one-grain read always was: up to two grains of it */
    avail = e->file->size > g->host ? MIN(2 * grain, e->file->size - g->host)
                                    : 0;
    if (avail <= VMDK_MARKER_SIZE) {
        return -EIO; /* the grain lies past the end: file cut short */
    }
    g->own_in = xmalloc(avail);
    ret = blk_co_pread(e->file, g->host, avail, g->own_in, 0);
    if (ret < 0) {
        return ret;
    }
    size = vmdk_ld32(g->own_in + 8);
    if (size == 0 || size > avail - VMDK_MARKER_SIZE) {
        return -EIO;
    }
    g->in = g->own_in + VMDK_MARKER_SIZE;
    g->in_len = size;
    return 0;
}

int coroutine_fn vmdk_stream_readv(struct blk_node *bs, struct vmdk_extent *e,
                                   uint64_t rel, uint64_t bytes,
                                   struct blk_iov *qiov, size_t qoff,
                                   uint64_t *pnum)
{
    uint64_t grain = e->grain_sectors * BLK_SECTOR_SIZE;
    uint64_t size = e->file->size, covered, next_host, total = 0;
    /* a grain's stream fits this unless the marker says otherwise */
    uint64_t cap = MIN(2 * grain, ROUND_UP(VMDK_MARKER_SIZE +
                                           compressBound((uLong)grain), 512));
    struct sgrain *g = xzalloc(sizeof(*g) * BATCH_GRAINS);
    uint8_t *buf = NULL;
    int n, ret;

    if (!e->has_marker) {
        cap = 2 * grain; /* no size in front of the stream */
    }
    ret = gather(bs, e, rel, bytes, qoff, g, &n, &covered, &next_host);
    if (ret < 0) {
        goto out;
    }
    for (int i = 0; i < n; i++) {
        uint64_t h = g[i].host, nh = i + 1 < n ? g[i + 1].host : next_host;
        uint64_t lim = h < size ? h + MIN(cap, size - h) : h;
        /* the next grain's start bounds this one, if it is close */
        g[i].end = e->has_marker && nh > h && nh < lim ? nh : lim;
        g[i].pos = total;
        total += g[i].end - h;
    }
    buf = xmalloc(MAX(total, 1));
    /* one read per run of adjacent grains */
    for (int i = 0; i < n && ret >= 0;) {
        int j = i;
        while (j + 1 < n && g[j].end == g[j + 1].host) {
            j++;
        }
        if (g[j].end > g[i].host) {
            ret = blk_co_pread(e->file, g[i].host, g[j].end - g[i].host,
                               buf + g[i].pos, 0);
        }
        i = j + 1;
    }
    for (int i = 0; i < n && ret >= 0; i++) {
        ret = locate(e, &g[i], buf);
        if (ret >= 0 && g[i].in_grain == 0 && g[i].len == grain) {
            g[i].out = iov_flat(qiov, g[i].qoff, grain);
        }
        if (ret >= 0 && !g[i].out) {
            g[i].own_out = xmalloc(grain);
            g[i].out = g[i].own_out;
        }
    }
    if (ret >= 0) {
        ret = inflate_all(g, n, grain);
    }
    for (int i = 0; i < n && ret >= 0; i++) {
        if (g[i].own_out) {
            blk_iov_from_buf(qiov, g[i].qoff, g[i].own_out + g[i].in_grain,
                             g[i].len);
        }
    }
    *pnum = covered;
out:
    for (int i = 0; i < BATCH_GRAINS; i++) {
        free(g[i].own_in);
        free(g[i].own_out);
    }
    free(g);
    free(buf);
    return ret < 0 ? ret : 0;
}
