/* The qcow2 data path: reads (data, zero, unallocated and compressed
 * clusters), writes with copy-on-write of partial new clusters, zeroing,
 * discard, flush and block status.  Metadata is looked up and changed with
 * s->lock held; guest data moves without it. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_ZLIB
#include <zlib.h>
#endif
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

#include "qcow2.h"
#include "threadpool.h"
#include "util.h"

/* ---- compressed clusters ---- */

struct decompress_job {
    int type;          /* QCOW2_COMPRESSION_* */
    const uint8_t *src;
    size_t src_len;
    uint8_t *dst;
    size_t dst_len;    /* exactly one cluster must come out */
};

#ifdef HAVE_ZLIB
/* Raw deflate (no zlib header, 4 KiB window) as QEMU writes it; the stream
 * may lack an end marker, a full output buffer is what counts. */
static int decompress_zlib(struct decompress_job *j)
{
    z_stream z;
    int ret;

    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, -12) != Z_OK) {
        return -EIO;
    }
    z.next_in = (Bytef *)j->src;
    z.avail_in = (uInt)j->src_len;
    z.next_out = j->dst;
    z.avail_out = (uInt)j->dst_len;
    ret = inflate(&z, Z_FINISH);
    inflateEnd(&z);
    if ((ret == Z_STREAM_END || ret == Z_BUF_ERROR) && z.avail_out == 0) {
        return 0;
    }
    return -EIO;
}
#endif

#ifdef HAVE_ZSTD
/* zstd frames, stopping once a cluster came out; trailing bytes of the
 * last sector are ignored. */
static int decompress_zstd(struct decompress_job *j)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    ZSTD_inBuffer in = {j->src, j->src_len, 0};
    ZSTD_outBuffer out = {j->dst, j->dst_len, 0};
    size_t zret = 0;
    int ret = 0;

    if (!dctx) {
        return -EIO;
    }
    while (out.pos < out.size) {
        size_t last_in = in.pos, last_out = out.pos;
        zret = ZSTD_decompressStream(dctx, &out, &in);
        if (ZSTD_isError(zret) ||
            (in.pos <= last_in && out.pos <= last_out)) {
            ret = -EIO;
            break;
        }
    }
    if (ret == 0 && zret > 0) {
        ret = -EIO; /* more data than a cluster: damaged */
    }
    ZSTD_freeDCtx(dctx);
    return ret;
}
#endif

/* Worker-thread entry: one cluster with the image's compression. */
static int decompress_fn(void *opaque)
{
    struct decompress_job *j = opaque;

    switch (j->type) {
#ifdef HAVE_ZLIB
    case QCOW2_COMPRESSION_ZLIB:
        return decompress_zlib(j);
#endif
#ifdef HAVE_ZSTD
    case QCOW2_COMPRESSION_ZSTD:
        return decompress_zstd(j);
#endif
    default:
        return -ENOTSUP;
    }
}

/* Decompress the cluster an L2 entry describes into buf (cluster_size). */
static int coroutine_fn read_compressed_cluster(struct blk_node *bs,
                                                uint64_t l2_entry,
                                                uint8_t *buf)
{
    struct qcow2_state *s = bs->opaque;
    struct decompress_job j;
    uint64_t coff, csize;
    uint8_t *in;
    int ret;

    qcow2_compressed_range(s, l2_entry, &coff, &csize);
    in = xmalloc(csize);
    ret = blk_co_pread(bs->file, coff, csize, in, 0);
    if (ret >= 0) {
        j = (struct decompress_job){s->compression_type, in, csize, buf,
                                    s->cluster_size};
        ret = threadpool_run(decompress_fn, &j);
        if (ret < 0 && ret != -ENOTSUP) {
            ret = -EIO;
        }
    }
    free(in);
    return ret;
}

/* ---- read ---- */

/* Old content of part of a guest cluster, for reads of compressed data
 * and for copy-on-write: [cluster + off, + len) as described by l2_entry. */
static int coroutine_fn read_old(struct blk_node *bs, uint64_t l2_entry,
                                 uint64_t bitmap, uint64_t cluster,
                                 uint64_t off, uint64_t len,
                                 struct blk_iov *q);

/* Extended L2: read_old subcluster by subcluster, each as its bits say. */
static int coroutine_fn read_old_ext(struct blk_node *bs, uint64_t l2_entry,
                                     uint64_t bitmap, uint64_t cluster,
                                     uint64_t off, uint64_t len,
                                     struct blk_iov *q)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t done = 0, host;
    struct blk_iov part;
    int ret = 0;

    blk_iov_init(&part, q->niov);
    while (done < len && ret >= 0) {
        uint64_t pos = off + done;
        unsigned sc = (unsigned)(pos >> s->subcluster_bits);
        uint64_t n = MIN(len - done,
                         ((uint64_t)(sc + 1) << s->subcluster_bits) - pos);
        int t = qcow2_subcluster_type(s, l2_entry, bitmap, sc);

        blk_iov_reset(&part);
        blk_iov_concat(&part, q, done, n);
        switch (t) {
        case QCOW2_CLUSTER_NORMAL:
            host = (l2_entry & QCOW2_L2E_OFFSET_MASK) + pos;
            ret = blk_co_preadv(qcow2_data_child(bs), host, n, &part, 0);
            if (ret >= 0 && s->crypto) { /* crypto */
                ret = qcow2_crypto_decrypt(bs, host, cluster + pos, n, &part);
            }
            break;
        case QCOW2_CLUSTER_UNALLOCATED:
        case QCOW2_CLUSTER_UNALLOCATED_ALLOC:
            ret = blk_co_read_backing(bs, cluster + pos, n, &part);
            break;
        case QCOW2_CLUSTER_ZERO_PLAIN:
        case QCOW2_CLUSTER_ZERO_ALLOC:
            blk_iov_memset(&part, 0, 0, n);
            break;
        default:
            ret = -EIO;
            break;
        }
        done += n;
    }
    blk_iov_destroy(&part);
    return ret;
}

static int coroutine_fn read_old(struct blk_node *bs, uint64_t l2_entry,
                                 uint64_t bitmap, uint64_t cluster,
                                 uint64_t off, uint64_t len,
                                 struct blk_iov *q)
{
    struct qcow2_state *s = bs->opaque;
    uint8_t *buf;
    int ret;

    if (s->extended_l2 && !(l2_entry & QCOW2_OFLAG_COMPRESSED)) {
        return read_old_ext(bs, l2_entry, bitmap, cluster, off, len, q);
    }
    switch (qcow2_cluster_type(s, l2_entry)) {
    case QCOW2_CLUSTER_UNALLOCATED:
        return blk_co_read_backing(bs, cluster + off, len, q);
    case QCOW2_CLUSTER_NORMAL:
        ret = blk_co_preadv(qcow2_data_child(bs),
                            (l2_entry & QCOW2_L2E_OFFSET_MASK) + off, len, q,
                            0);
        if (ret >= 0 && s->crypto) { /* crypto */
            ret = qcow2_crypto_decrypt(bs, (l2_entry & QCOW2_L2E_OFFSET_MASK)
                                       + off, cluster + off, len, q);
        }
        return ret;
    case QCOW2_CLUSTER_COMPRESSED:
        buf = xmemalign(4096, s->cluster_size);
        ret = read_compressed_cluster(bs, l2_entry, buf);
        if (ret >= 0) {
            blk_iov_from_buf(q, 0, buf + off, len);
        }
        free(buf);
        return ret;
    default:
        blk_iov_memset(q, 0, 0, len);
        return 0;
    }
}

/* Runs of clusters of one kind: data from the file, backing data or
 * zeroes, decompressed clusters. */
int coroutine_fn qcow2_co_preadv(struct blk_node *bs, uint64_t offset,
                                 uint64_t bytes, struct blk_iov *qiov,
                                 unsigned flags)
{
    struct qcow2_state *s = bs->opaque;
    struct blk_iov part;
    uint64_t done = 0;
    int ret = 0;

    if (qcow2_data_missing(s)) {
        return -ENOMEDIUM; /* opened without its data file */
    }
    blk_iov_init(&part, qiov->niov);
    while (done < bytes) {
        uint64_t cur = bytes - done, host, entry, pos = offset + done;

        co_mutex_lock(&s->lock);
        ret = s->dead ? -EIO
                      : qcow2_get_host_offset(bs, pos, &cur, &host, &entry);
        co_mutex_unlock(&s->lock);
        if (ret < 0) {
            break;
        }
        blk_iov_reset(&part);
        blk_iov_concat(&part, qiov, done, cur);
        switch (ret) {
        case QCOW2_CLUSTER_NORMAL:
            ret = blk_co_preadv(qcow2_data_child(bs), host, cur, &part, 0);
            if (ret >= 0 && s->crypto) { /* crypto */
                ret = qcow2_crypto_decrypt(bs, host, pos, cur, &part);
            }
            break;
        case QCOW2_CLUSTER_COMPRESSED:
            ret = read_old(bs, entry, 0, qcow2_start_of_cluster(s, pos),
                           qcow2_offset_into_cluster(s, pos), cur, &part);
            break;
        case QCOW2_CLUSTER_UNALLOCATED:
        case QCOW2_CLUSTER_UNALLOCATED_ALLOC:
            ret = blk_co_read_backing(bs, pos, cur, &part);
            break;
        default:
            blk_iov_memset(&part, 0, 0, cur);
            ret = 0;
            break;
        }
        if (ret < 0) {
            break;
        }
        done += cur;
    }
    blk_iov_destroy(&part);
    return ret < 0 ? ret : 0;
}

/* ---- write ---- */

/* Write the guest data of an allocation together with the parts of its
 * first and last cluster it does not cover, copied from their old
 * content, in one request. */
static int coroutine_fn write_with_cow(struct blk_node *bs,
                                       struct qcow2_alloc *m, uint64_t host,
                                       uint64_t bytes, struct blk_iov *data)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t head = m->cow_head, tail = m->cow_tail;
    uint64_t last = m->guest_offset + ((m->nb_clusters - 1) << s->cluster_bits);
    uint8_t *hbuf = NULL, *tbuf = NULL;
    struct blk_iov q;
    int ret = 0;

    if (!head && !tail) { /* crypto: the guest offset for AES IVs */
        return qcow2_crypto_pwritev(bs, qcow2_data_child(bs), host,
                                    m->guest_offset +
                                        (host - m->host_offset),
                                    bytes, data);
    }
    /* the data starts at in_cluster of the first cluster; the tail
     * follows it (up to the cluster end, unless subclusters end it) */
    uint64_t in_cluster = host - m->host_offset;
    uint64_t tail_off = in_cluster + bytes - (last - m->guest_offset);
    if (head) {
        hbuf = xmemalign(4096, head);
        blk_iov_init_buf(&q, hbuf, head);
        ret = read_old(bs, m->old_first, m->old_first_bitmap, m->guest_offset,
                       in_cluster - head, head, &q);
    }
    if (ret >= 0 && tail) {
        tbuf = xmemalign(4096, tail);
        blk_iov_init_buf(&q, tbuf, tail);
        ret = read_old(bs, m->old_last, m->old_last_bitmap, last, tail_off,
                       tail, &q);
    }
    if (ret >= 0) {
        blk_iov_init(&q, data->niov + 2);
        if (head) {
            blk_iov_add(&q, hbuf, head);
        }
        blk_iov_concat(&q, data, 0, bytes);
        if (tail) {
            blk_iov_add(&q, tbuf, tail);
        }
        ret = qcow2_crypto_pwritev(bs, qcow2_data_child(bs),
                                   host - head, /* crypto */
                                   m->guest_offset + (host - head -
                                                      m->host_offset),
                                   head + bytes + tail, &q);
        blk_iov_destroy(&q);
    }
    free(hbuf);
    free(tbuf);
    return ret;
}

/* Only the copy-on-write parts of an allocation, no guest data. */
int coroutine_fn qcow2_perform_cow(struct blk_node *bs, struct qcow2_alloc *m)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t last = m->guest_offset + ((m->nb_clusters - 1) << s->cluster_bits);
    uint64_t tail_host = m->host_offset + (m->nb_clusters << s->cluster_bits) -
                         m->cow_tail;
    uint64_t head_off = 0, tail_off = s->cluster_size - m->cow_tail;
    struct blk_iov q;
    uint8_t *buf;
    int ret = 0;

    if (s->extended_l2) {
        /* only preallocation writes no data: its subclusters stay
         * unallocated (QEMU's l2meta->prealloc), and the COW parts lie
         * around the subclusters the request covered */
        m->prealloc = true;
        head_off = m->written_from;
        tail_off = m->written_to - m->cow_tail -
                   ((m->nb_clusters - 1) << s->cluster_bits);
        tail_host = m->host_offset + m->written_to - m->cow_tail;
    }
    if (m->cow_head) {
        buf = xmemalign(4096, m->cow_head);
        blk_iov_init_buf(&q, buf, m->cow_head);
        ret = read_old(bs, m->old_first, m->old_first_bitmap,
                       m->guest_offset, head_off, m->cow_head, &q);
        if (ret >= 0) {
            ret = qcow2_crypto_pwritev(bs, qcow2_data_child(bs),
                                       m->host_offset + head_off,
                                       m->guest_offset + head_off,
                                       m->cow_head, &q); /* crypto */
        }
        free(buf);
    }
    if (ret >= 0 && m->cow_tail) {
        buf = xmemalign(4096, m->cow_tail);
        blk_iov_init_buf(&q, buf, m->cow_tail);
        ret = read_old(bs, m->old_last, m->old_last_bitmap, last, tail_off,
                       m->cow_tail, &q);
        if (ret >= 0) {
            ret = qcow2_crypto_pwritev(bs, qcow2_data_child(bs), tail_host,
                                       last + tail_off, m->cow_tail,
                                       &q); /* crypto */
        }
        free(buf);
    }
    return ret;
}

/* Each step covers one run of clusters: written in place, or allocated,
 * filled (data plus COW) without the lock and then entered into the L2
 * table.  A step allocates right after the previous one when it can. */
int coroutine_fn qcow2_co_pwritev(struct blk_node *bs, uint64_t offset,
                                  uint64_t bytes, struct blk_iov *qiov,
                                  unsigned flags)
{
    struct qcow2_state *s = bs->opaque;
    struct blk_iov part;
    uint64_t done = 0, hint = 0;
    int ret = 0;

    if (qcow2_data_missing(s)) {
        return -ENOMEDIUM; /* opened without its data file */
    }
    blk_iov_init(&part, qiov->niov);
    while (done < bytes) {
        uint64_t cur = bytes - done, host;
        struct qcow2_alloc *m;

        co_mutex_lock(&s->lock);
        ret = qcow2_alloc_host_offset(bs, offset + done, &cur, hint, &host,
                                      &m);
        co_mutex_unlock(&s->lock);
        if (ret < 0) {
            break;
        }
        blk_iov_reset(&part);
        blk_iov_concat(&part, qiov, done, cur);
        if (m) {
            ret = write_with_cow(bs, m, host, cur, &part);
            co_mutex_lock(&s->lock);
            if (ret >= 0) {
                ret = qcow2_alloc_link_l2(bs, m);
            } else {
                qcow2_alloc_abort(bs, m);
            }
            co_mutex_unlock(&s->lock);
        } else {
            ret = qcow2_crypto_pwritev(bs, qcow2_data_child(bs), host,
                                       offset + done, cur,
                                       &part); /* crypto */
        }
        if (ret < 0) {
            break;
        }
        done += cur;
        hint = qcow2_offset_into_cluster(s, host + cur) ? 0 : host + cur;
    }
    blk_iov_destroy(&part);
    return ret < 0 ? ret : 0;
}

/* ---- write zeroes ---- */

static int coroutine_fn detect_metadata_preallocation(struct blk_node *bs);

/* Does the whole guest cluster at `cluster` read as zeroes already? */
static int coroutine_fn cluster_reads_zero(struct blk_node *bs,
                                           uint64_t cluster)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t cur = s->cluster_size, host, pnum;
    int ret = qcow2_get_host_offset(bs, cluster, &cur, &host, NULL);

    if (ret < 0) {
        return ret;
    }
    if (ret == QCOW2_CLUSTER_ZERO_PLAIN || ret == QCOW2_CLUSTER_ZERO_ALLOC) {
        return 1;
    }
    if (ret == QCOW2_CLUSTER_NORMAL && s->crypto) {
        return 0; /* crypto: a hole in the file is not zeroes here */
    }
    if (ret == QCOW2_CLUSTER_NORMAL && qcow2_has_data_file(s)) {
        /* QEMU's block status looks into a data file only when it
         * guessed preallocated metadata */
        if (!s->metadata_preallocation_checked) {
            s->metadata_preallocation =
                detect_metadata_preallocation(bs) > 0;
            s->metadata_preallocation_checked = true;
        }
        if (!s->metadata_preallocation) {
            return 0;
        }
    }
    if (ret == QCOW2_CLUSTER_NORMAL) {
        /* as QEMU, which asks the file: a hole reads as zeroes */
        ret = blk_co_block_status(qcow2_data_child(bs), host, s->cluster_size,
                                  &pnum,
                                  NULL, NULL);
        if (ret < 0) {
            return ret;
        }
        return pnum == 0 || ((ret & BLK_STATUS_ZERO) &&
                             pnum >= s->cluster_size);
    }
    if (ret != QCOW2_CLUSTER_UNALLOCATED) {
        return 0;
    }
    if (!bs->backing) {
        return 1;
    }
    for (uint64_t pos = cluster; pos < cluster + s->cluster_size &&
                                 pos < bs->backing->size; pos += pnum) {
        uint64_t n = MIN(cluster + s->cluster_size, bs->backing->size) - pos;
        ret = blk_co_block_status_above(bs->backing, NULL, pos, n, &pnum,
                                        NULL, NULL, NULL);
        if (ret < 0) {
            return ret;
        }
        if (!(ret & BLK_STATUS_ZERO) || pnum == 0) {
            return 0;
        }
    }
    return 1;
}

/* Write real zeroes over [offset, offset + bytes) through the write path. */
static int coroutine_fn write_zero_buffer(struct blk_node *bs,
                                          uint64_t offset, uint64_t bytes)
{
    void *buf = xzalloc(bytes);
    struct blk_iov q;
    int ret;

    blk_iov_init_buf(&q, buf, bytes);
    ret = qcow2_co_pwritev(bs, offset, bytes, &q, 0);
    free(buf);
    return ret;
}

/* Zero one partial cluster part [start, end) of cluster `cluster`: mark
 * the whole cluster when it reads as zeroes already, else write zeroes. */
static int coroutine_fn zero_partial(struct blk_node *bs, uint64_t cluster,
                                     uint64_t start, uint64_t end,
                                     unsigned flags)
{
    struct qcow2_state *s = bs->opaque;
    int ret;

    co_mutex_lock(&s->lock);
    qcow2_wait_allocs(bs, cluster, s->cluster_size);
    ret = s->dead ? -EIO : cluster_reads_zero(bs, cluster);
    if (ret > 0) {
        ret = qcow2_cluster_zeroize(bs, cluster, s->cluster_size, flags);
        ret = ret < 0 ? ret : 1;
    }
    co_mutex_unlock(&s->lock);
    if (ret == 0) {
        ret = write_zero_buffer(bs, start, end - start);
    }
    return ret < 0 ? ret : 0;
}

/* v3 marks whole clusters with the zero flag (v2 without a backing file
 * drops them); a partial cluster at either end either reads as zeroes
 * already (then it is marked whole) or gets real zeroes written, unless
 * the caller asked for no fallback.  The parts go in QEMU's order (head,
 * middle, tail) so clusters are allocated where QEMU puts them. */
int coroutine_fn qcow2_co_pwrite_zeroes(struct blk_node *bs,
                                        uint64_t offset, uint64_t bytes,
                                        unsigned flags)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t cs = s->cluster_size, end = offset + bytes;
    uint64_t first = qcow2_start_of_cluster(s, offset);
    uint64_t zstart = ROUND_UP(offset, cs);
    uint64_t zend = end == bs->size ? ROUND_UP(end, cs) : ROUND_DOWN(end, cs);
    uint64_t head_end = 0, tail_start = 0, tail_cluster = 0;
    int ret = 0;

    if (qcow2_data_missing(s)) {
        return -ENOMEDIUM; /* opened without its data file */
    }
    if (s->version < 3 && (bs->backing || bs->backing_file)) {
        return -ENOTSUP; /* no zero flag: the core writes zeroes */
    }
    if (s->extended_l2) {
        return qcow2_ext_pwrite_zeroes(bs, offset, bytes, flags);
    }
    if (zstart > zend) {
        /* inside one cluster, not reaching the image end */
        head_end = end;
        zstart = zend;
    } else {
        head_end = zstart > offset ? zstart : 0;
        if (zend < end) {
            tail_start = zend;
            tail_cluster = zend;
        }
    }
    if ((flags & BLK_REQ_NO_FALLBACK) && (head_end || tail_start)) {
        /* only what is cheap: refuse before changing anything */
        co_mutex_lock(&s->lock);
        qcow2_wait_allocs(bs, first, ROUND_UP(end, cs) - first);
        ret = s->dead ? -EIO : 1;
        if (ret > 0 && head_end) {
            ret = cluster_reads_zero(bs, first);
        }
        if (ret > 0 && tail_start) {
            ret = cluster_reads_zero(bs, tail_cluster);
        }
        co_mutex_unlock(&s->lock);
        if (ret <= 0) {
            return ret < 0 ? ret : -ENOTSUP;
        }
    }
    if (head_end) {
        ret = zero_partial(bs, first, offset, head_end, flags);
    }
    if (ret >= 0 && zend > zstart) {
        co_mutex_lock(&s->lock);
        if (s->dead) {
            ret = -EIO;
        } else {
            qcow2_wait_allocs(bs, zstart, zend - zstart);
            ret = qcow2_cluster_zeroize(bs, zstart, zend - zstart, flags);
        }
        co_mutex_unlock(&s->lock);
    }
    if (ret >= 0 && tail_start) {
        ret = zero_partial(bs, tail_cluster, tail_start, end, flags);
    }
    return ret < 0 ? ret : 0;
}

/* ---- discard, flush, status ---- */

/* Whole clusters only, and the partial last cluster of the image. */
int coroutine_fn qcow2_co_discard(struct blk_node *bs, uint64_t offset,
                                  uint64_t bytes)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    uint64_t start = ROUND_UP(offset, cs), end = offset + bytes;
    int ret;

    if (qcow2_data_missing(s)) {
        return -ENOMEDIUM; /* opened without its data file */
    }
    end = end == bs->size ? end : ROUND_DOWN(end, cs);
    if (start >= end) {
        return 0;
    }
    if (s->version < 3 && (bs->backing || bs->backing_file)) {
        /* without a zero flag the backing data would show through */
        return 0;
    }
    co_mutex_lock(&s->lock);
    if (s->dead) {
        ret = -EIO;
    } else {
        qcow2_wait_allocs(bs, start, end - start);
        ret = qcow2_cluster_discard(bs, start, end - start,
                                    QCOW2_DISCARD_REQUEST, false);
    }
    co_mutex_unlock(&s->lock);
    return ret;
}

/* The caches go to the file; the core then flushes the file. */
int coroutine_fn qcow2_co_flush(struct blk_node *bs)
{
    struct qcow2_state *s = bs->opaque;
    int ret;

    /* data before the metadata that points to it (the core flushes only
     * bs->file, which does not hold it) */
    if (s->data_file && !s->dead) {
        ret = blk_co_flush(s->data_file);
        if (ret < 0) {
            return ret;
        }
    }
    co_mutex_lock(&s->lock);
    /* a dead image writes nothing more; as QEMU's medium-less node, its
     * flush has nothing to do (the failed requests already said so) */
    ret = s->dead ? 0 : qcow2_write_caches(bs);
    co_mutex_unlock(&s->lock);
    return ret;
}

/* QEMU's guess whether clusters were allocated without their data (as
 * preallocation=metadata does): many more clusters in use than the file
 * really holds.  Then block status asks the file where it has holes. */
static int coroutine_fn detect_metadata_preallocation(struct blk_node *bs)
{
    struct qcow2_state *s = bs->opaque;
    int64_t real = blk_allocated_size(bs->file), real_clusters, threshold;
    uint64_t count;
    int ret;

    if (real < 0) {
        return (int)real;
    }
    real_clusters = real / s->cluster_size;
    threshold = MAX(real_clusters * 10 / 9, real_clusters + 2);
    ret = qcow2_count_used_clusters(bs, qcow2_size_to_clusters(s,
                                                               bs->file->size),
                                    (uint64_t)threshold, &count);
    if (ret < 0) {
        return ret;
    }
    return count >= (uint64_t)threshold;
}

/* The kind of the first run of clusters, as QEMU reports it. */
int coroutine_fn qcow2_co_block_status(struct blk_node *bs,
                                       uint64_t offset, uint64_t bytes,
                                       uint64_t *pnum, uint64_t *map,
                                       struct blk_node **file)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t cur = bytes, host = 0, fpnum;
    int ret;

    if (qcow2_data_missing(s)) {
        return -ENOMEDIUM; /* opened without its data file */
    }
    co_mutex_lock(&s->lock);
    if (!s->metadata_preallocation_checked && !s->dead) {
        s->metadata_preallocation = detect_metadata_preallocation(bs) > 0;
        s->metadata_preallocation_checked = true;
    }
    ret = s->dead ? -EIO
                  : qcow2_get_host_offset(bs, offset, &cur, &host, NULL);
    co_mutex_unlock(&s->lock);
    if (ret < 0) {
        return ret;
    }
    *pnum = cur;
    switch (ret) {
    case QCOW2_CLUSTER_NORMAL:
        if (s->crypto) { /* crypto: the file holds no guest bytes */
            return BLK_STATUS_DATA;
        }
        *map = host;
        *file = qcow2_data_child(bs);
        if (!s->metadata_preallocation) {
            return BLK_STATUS_DATA | BLK_STATUS_OFFSET_VALID;
        }
        /* as QEMU for preallocated metadata: a hole in the file reads as
         * zeroes (errors only lose that hint) */
        ret = blk_co_block_status(qcow2_data_child(bs), host, cur, &fpnum,
                                  NULL, NULL);
        if (ret >= 0 && fpnum > 0) {
            *pnum = MIN(cur, fpnum);
        }
        if (ret >= 0 && (fpnum == 0 || (ret & BLK_STATUS_ZERO))) {
            return BLK_STATUS_DATA | BLK_STATUS_ZERO |
                   BLK_STATUS_OFFSET_VALID;
        }
        return BLK_STATUS_DATA | BLK_STATUS_OFFSET_VALID;
    case QCOW2_CLUSTER_ZERO_ALLOC:
        if (s->crypto) { /* crypto */
            return BLK_STATUS_ZERO;
        }
        *map = host;
        *file = qcow2_data_child(bs);
        return BLK_STATUS_ZERO | BLK_STATUS_OFFSET_VALID;
    case QCOW2_CLUSTER_ZERO_PLAIN:
        return BLK_STATUS_ZERO;
    case QCOW2_CLUSTER_UNALLOCATED_ALLOC:
        /* as QEMU: a host offset, but the content comes from below */
        if (s->crypto) { /* crypto */
            return 0;
        }
        *map = host;
        *file = qcow2_data_child(bs);
        return BLK_STATUS_OFFSET_VALID;
    case QCOW2_CLUSTER_COMPRESSED:
        return BLK_STATUS_DATA | BLK_STATUS_COMPRESSED;
    default:
        return 0;
    }
}
