/* strata-img convert: the copy engine.
 *
 * Follows qemu-img's convert_do_copy() so that the output is the same
 * image, hole for hole: the sources are walked extent by extent with block
 * status, data extents are cut into chunks of buf_size, and inside a chunk
 * zero runs of at least -S bytes are skipped (or written as zeroes when
 * the target does not read as zeroes).  Several coroutines share one
 * cursor, each with its own buffer, so reads of later chunks overlap the
 * writes of earlier ones.  Without -W the writes start in offset order: a
 * writer hands the turn to the next one when its write completes, as in
 * qemu-img, or as soon as it is issued where that gives the same image
 * (raw, and whole-cluster writes to a new qcow2); chunks that are data
 * from end to end and already read go out together as one larger write. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "img-convert.h"
#include "loop.h"
#include "util.h"

/* The source holding byte `offset` of the concatenation, and where that
 * source starts. */
static void select_part(const struct convert_state *s, uint64_t offset,
                        int *idx, uint64_t *base)
{
    uint64_t start = 0;
    int i = 0;

    while (i < s->nsrc - 1 && offset - start >= s->src_len[i]) {
        start += s->src_len[i];
        i++;
    }
    *idx = i;
    *base = start;
}

/* Status of the source at `offset`: how many bytes from there share it
 * (sets s->status and s->next_status as qemu-img's
 * convert_iteration_sectors() does).  Returns the length of the next
 * chunk, or -errno. */
static int64_t coroutine_fn convert_iteration(struct convert_state *s,
                                              uint64_t offset)
{
    uint64_t n = s->total - offset;
    uint64_t base;
    int idx;

    select_part(s, offset, &idx, &base);
    n = MIN(n, base + s->src_len[idx] - offset);

    if (s->next_status <= offset) {
        uint64_t src_off = offset - base;
        uint64_t size = s->src_size[idx];
        uint64_t pnum = 0;
        int ret;

        if (src_off >= size) {
            /* the padding that rounds a source up to a whole sector */
            ret = BLK_STATUS_DATA;
            pnum = n;
        } else {
            do {
                /* with a backing file for the target, only what the
                 * source's top layer holds is copied (qemu-img's base) */
                ret = blk_co_block_status_above(s->src[idx],
                                                s->target_has_backing
                                                    ? s->src[idx]->backing
                                                    : NULL, src_off,
                                                MIN(n, size - src_off),
                                                &pnum, NULL, NULL, NULL);
                if (ret >= 0) {
                    break;
                }
                if (!s->salvage) {
                    tool_error("error while reading block status at offset "
                               "%llu: %s", (unsigned long long)src_off,
                               strerror(-ret));
                    return ret;
                }
                if (n > CONVERT_SECTOR) {
                    /* retry on a shorter range */
                    n = ROUND_UP(DIV_ROUND_UP(n, 4), CONVERT_SECTOR);
                    continue;
                }
                if (!s->quiet) {
                    fflush(stdout);
                    fprintf(stderr, "%s: warning: error while reading block "
                            "status at offset %llu: %s\n", tool_name,
                            (unsigned long long)src_off, strerror(-ret));
                }
                ret = BLK_STATUS_DATA; /* just try to read it, then */
                pnum = CONVERT_SECTOR;
            } while (true);
            if (pnum == 0) {
                return -EIO; /* a driver that makes no progress */
            }
            /* a status ending at the end of the source covers the padding */
            if (src_off + pnum >= size) {
                pnum = n;
            }
        }
        n = MIN(n, ROUND_UP(pnum, CONVERT_SECTOR));

        /* keep status boundaries on the source's alignment (cluster), so
         * chunks do not cause needless read-modify-write cycles */
        uint64_t tail = (src_off + n) % s->src_align[idx];
        if (n > tail) {
            n -= tail;
        }

        if (ret & BLK_STATUS_ZERO) {
            s->status = CONVERT_ZERO;
        } else if (ret & BLK_STATUS_DATA) {
            s->status = CONVERT_DATA;
        } else {
            s->status = s->target_has_backing ? CONVERT_BACKING
                                              : CONVERT_DATA;
        }
        s->next_status = offset + n;
    }

    n = MIN(n, s->next_status - offset);
    if (s->status == CONVERT_DATA) {
        n = MIN(n, s->buf_size);
    }
    /* compressed clusters are written whole: a short unallocated run is
     * part of a cluster that has data (qemu-img does the same) */
    if (s->compressed) {
        if (n < s->cluster_size) {
            n = MIN(s->cluster_size, s->total - offset);
            s->status = CONVERT_DATA;
        } else {
            n = ROUND_DOWN(n, s->cluster_size);
        }
    }
    return (int64_t)n;
}

/* Read [offset, offset+bytes) of the concatenated sources into buf; the
 * padding past a source's real end reads as zeroes. */
static int coroutine_fn convert_co_read(struct convert_state *s,
                                        uint64_t offset, uint64_t bytes,
                                        uint8_t *buf)
{
    while (bytes > 0) {
        uint64_t base, src_off, n, readable;
        int idx, ret;

        select_part(s, offset, &idx, &base);
        src_off = offset - base;
        n = MIN(bytes, s->src_len[idx] - src_off);
        readable = src_off < s->src_size[idx]
                       ? MIN(n, s->src_size[idx] - src_off) : 0;

        ret = readable ? blk_co_pread(s->src[idx], src_off, readable, buf, 0)
                       : 0;
        if (ret < 0 && s->salvage) {
            /* sector by sector, turning what cannot be read into zeroes */
            for (uint64_t done = 0; done < readable;
                 done += CONVERT_SECTOR) {
                uint64_t len = MIN(CONVERT_SECTOR, readable - done);
                ret = blk_co_pread(s->src[idx], src_off + done, len,
                                   buf + done, 0);
                if (ret < 0) {
                    if (!s->quiet) {
                        fflush(stdout);
                        fprintf(stderr, "%s: warning: error while reading "
                                "offset %llu: %s\n", tool_name,
                                (unsigned long long)(src_off + done),
                                strerror(-ret));
                    }
                    memset(buf + done, 0, len);
                }
            }
            ret = 0;
        }
        if (ret < 0) {
            return ret;
        }
        if (readable < n) {
            memset(buf + readable, 0, n - readable);
        }
        offset += n;
        bytes -= n;
        buf += n;
    }
    return 0;
}

/* Sleep as long as -r requires before writing `bytes` more. */
static void coroutine_fn convert_throttle(struct convert_state *s,
                                          uint64_t bytes)
{
    if (!s->rate_limit) {
        return;
    }
    uint64_t due = s->start_ns +
                   (uint64_t)((double)s->written * 1e9 / s->rate_limit);
    uint64_t now = clock_ns();
    s->written += bytes;
    if (due > now) {
        co_sleep_ns(due - now);
    }
}

/* With -c: do the clusters at the start of buf read as zeroes (and -S
 * lets them be left out), and how many bytes (*n, whole clusters or up to
 * the end) share that?  qemu-img decides this per cluster too. */
static bool compressed_run(const struct convert_state *s, const uint8_t *buf,
                           uint64_t bytes, uint64_t *n)
{
    uint64_t len = MIN(s->cluster_size, bytes);
    bool zero = s->min_sparse && buffer_is_zero(buf, len);

    *n = len;
    while (*n < bytes) {
        len = MIN(s->cluster_size, bytes - *n);
        if ((s->min_sparse && buffer_is_zero(buf + *n, len)) != zero) {
            break;
        }
        *n += len;
    }
    return zero;
}

/* Write one chunk as qemu-img's convert_co_write(): data runs are written,
 * zero runs of at least min_sparse are skipped when the target reads as
 * zeroes and written as (unmapping) zeroes otherwise. */
static int coroutine_fn convert_co_write(struct convert_state *s,
                                         uint64_t offset, uint64_t bytes,
                                         uint8_t *buf,
                                         enum convert_status status)
{
    int64_t min = s->min_sparse / CONVERT_SECTOR;
    int64_t align = s->alignment / CONVERT_SECTOR;
    int ret;

    while (bytes > 0) {
        int64_t nsec = bytes / CONVERT_SECTOR;
        uint64_t n = bytes;

        switch (status) {
        case CONVERT_BACKING:
            break;
        case CONVERT_DATA:
            if (s->compressed) {
                /* whole clusters; all-zero ones are left out */
                bool zero = compressed_run(s, buf, bytes, &n);
                if (zero) {
                    goto zero;
                }
                convert_throttle(s, n);
                struct blk_iov q;
                blk_iov_init_buf(&q, buf, n);
                ret = blk_co_pwritev_compressed(s->target, offset, n, &q);
                if (ret < 0) {
                    return ret;
                }
                break;
            }
            if (!s->min_sparse ||
                is_allocated_sectors_min(buf, nsec, &nsec, min,
                                         offset / CONVERT_SECTOR, align)) {
                n = s->min_sparse ? (uint64_t)nsec * CONVERT_SECTOR : bytes;
                convert_throttle(s, n);
                ret = blk_co_pwrite(s->target, offset, n, buf, 0);
                if (ret < 0) {
                    return ret;
                }
                break;
            }
            n = (uint64_t)nsec * CONVERT_SECTOR;
            /* a zero run */
            __attribute__((fallthrough));
        case CONVERT_ZERO:
        zero:
            if (s->has_zero_init) {
                break;
            }
            convert_throttle(s, n);
            ret = blk_co_pwrite_zeroes(s->target, offset, n,
                                       BLK_REQ_MAY_UNMAP);
            if (ret < 0) {
                return ret;
            }
            break;
        }
        offset += n;
        bytes -= n;
        buf += n;
    }
    return 0;
}

/* Is the chunk of w to be written whole as data?  (Then it can share one
 * write with its neighbours.) */
static bool chunk_is_full_data(struct convert_state *s,
                               const struct convert_worker *w)
{
    int64_t nsec = w->bytes / CONVERT_SECTOR, pnum;

    if (w->status != CONVERT_DATA || s->compressed) {
        return false; /* compressed chunks are never merged */
    }
    if (!s->min_sparse) {
        return true;
    }
    return is_allocated_sectors_min(w->buf, nsec, &pnum,
                                    s->min_sparse / CONVERT_SECTOR,
                                    w->offset / CONVERT_SECTOR,
                                    s->alignment / CONVERT_SECTOR) &&
           pnum == nsec;
}

/* The worker waiting to write the chunk that starts at `offset`. */
static struct convert_worker *waiter_at(struct convert_state *s,
                                        uint64_t offset)
{
    for (int i = 0; i < s->num_coroutines; i++) {
        struct convert_worker *w = &s->workers[i];
        if (w->waiting && w->offset == offset) {
            return w;
        }
    }
    return NULL;
}

/* ---- the turn (without -W) ----
 *
 * s->wr_offs is the turn: the worker whose chunk starts there writes next.
 * - Only the worker holding the turn moves it, once per write (guarded by
 *   w->handed_over), to the end of what it writes, which is where the
 *   next chunk starts: the turn only moves forward and never skips a
 *   chunk.  (Moving it back once let a finished writer undo the moves of
 *   the followers it had released, and everyone waited forever.)
 * - A worker waits in wait_turn() until the turn reaches its chunk, its
 *   chunk has been written by a group leader (w->written, set once that
 *   write completed) or there is an error; every wake-up re-checks this,
 *   so extra wake-ups are harmless.
 * - Whoever moves the turn wakes the worker waiting where it now is; one
 *   not waiting yet sees the turn when it gets there. */

/* Sleep until every byte before our chunk is written (or issued). */
static void coroutine_fn wait_turn(struct convert_state *s,
                                   struct convert_worker *w)
{
    w->waiting = true;
    while (s->wr_offs != w->offset && s->ret == -EINPROGRESS &&
           !w->written) {
        coroutine_yield();
    }
    w->waiting = false;
}

/* Our write of [w->offset, end) is done: hand the turn straight to the
 * next writer, as qemu-img does, instead of a trip through the event
 * loop.  Nothing when it was passed on at issue already. */
static void coroutine_fn pass_turn(struct convert_state *s,
                                   struct convert_worker *w, uint64_t end)
{
    struct convert_worker *next;

    if (w->handed_over) {
        return;
    }
    assert(s->wr_offs == w->offset && end > w->offset);
    w->handed_over = true;
    s->wr_offs = end;
    next = waiter_at(s, end);
    if (next) {
        coroutine_enter(next->co);
    }
}

/* The turn passed at issue time arrives through the loop, after the
 * previous writer's request is queued; a worker that has meanwhile been
 * woken some other way is left alone. */
static void turn_bh_cb(void *opaque)
{
    struct convert_worker *w = opaque;

    if (w->waiting) {
        coroutine_enter(w->co);
    }
}

/* May the next writer go as soon as the write of [offset, end) is issued,
 * rather than when it completes?  Writes still start in offset order and
 * several are in flight, as the device wants; what must not change is
 * the target's layout, which in-order writes fix:
 * - raw (issue_order): the layout does not depend on the order in which
 *   writes finish.
 * - a new qcow2 image (alloc_unit): qcow2 allocates a write's clusters
 *   when the write starts, under a lock handed over in arrival order, and
 *   in one step when the write covers whole clusters of one L2 table (no
 *   cluster shared with a neighbour, no second allocation after its data
 *   is written).  The next write then allocates after it, exactly as it
 *   would after waiting.
 * Anything else waits for completion, as in qemu-img. */
static bool may_hand_over_at_issue(const struct convert_state *s,
                                   uint64_t offset, uint64_t end)
{
    if (s->issue_order) {
        return true;
    }
    return s->alloc_unit && offset % s->alloc_unit == 0 &&
           end % s->alloc_unit == 0 &&
           offset / s->alloc_span == (end - 1) / s->alloc_span;
}

/* Pass the turn on as our write [w->offset, end) is issued, when that
 * keeps the layout (see above).  The next writer is entered from the
 * loop, so only once our request has gone as far as it can without
 * waiting. */
static void hand_over_at_issue(struct convert_state *s,
                               struct convert_worker *w, uint64_t end)
{
    struct convert_worker *next;

    if (!s->wr_in_order || !may_hand_over_at_issue(s, w->offset, end)) {
        return;
    }
    assert(!w->handed_over && s->wr_offs == w->offset && end > w->offset);
    w->handed_over = true;
    s->wr_offs = end;
    next = waiter_at(s, end);
    if (next) {
        loop_defer_bh(loop_current(), &next->turn_bh);
    }
}

/* On an error every waiting worker must see it and stop. */
static void coroutine_fn wake_all_waiters(struct convert_state *s)
{
    for (int i = 0; i < s->num_coroutines; i++) {
        if (s->workers[i].waiting) {
            coroutine_enter(s->workers[i].co);
        }
    }
}

/* Write w's chunk; in order, fold the fully-data chunks that follow it and
 * are already read into the same request.  Returns the end of what was
 * written, or -errno. */
static int64_t coroutine_fn convert_write_chunk(struct convert_state *s,
                                                struct convert_worker *w)
{
    struct convert_worker *group[CONVERT_MAX_COROUTINES];
    uint64_t end = w->offset + w->bytes;
    int n = 0, ret;

    if (s->wr_in_order && w->full_data) {
        struct convert_worker *next;
        uint64_t total = w->bytes;
        while ((next = waiter_at(s, end)) && next->full_data &&
               total + next->bytes <= CONVERT_MAX_COALESCE) {
            group[n++] = next;
            total += next->bytes;
            end += next->bytes;
        }
    }
    if (n == 0 && w->full_data) {
        /* already scanned: no need to look for zero runs again */
        convert_throttle(s, w->bytes);
        hand_over_at_issue(s, w, end);
        ret = blk_co_pwrite(s->target, w->offset, w->bytes, w->buf, 0);
        return ret < 0 ? ret : (int64_t)end;
    } else if (n == 0) {
        ret = convert_co_write(s, w->offset, w->bytes, w->buf, w->status);
        return ret < 0 ? ret : (int64_t)end;
    }

    /* The others stay in wait_turn() until their data is written: the
     * turn moves past them, so nothing else lets them out and reuse their
     * buffers while the write is in flight (an error does, but then they
     * stop without touching them). */
    struct blk_iov qiov;
    blk_iov_init(&qiov, n + 1);
    blk_iov_add(&qiov, w->buf, w->bytes);
    for (int i = 0; i < n; i++) {
        blk_iov_add(&qiov, group[i]->buf, group[i]->bytes);
    }
    convert_throttle(s, qiov.size);
    hand_over_at_issue(s, w, end);
    ret = blk_co_pwritev(s->target, w->offset, qiov.size, &qiov, 0);
    blk_iov_destroy(&qiov);
    if (ret < 0) {
        return ret; /* the caller wakes every waiter */
    }
    /* the turn moves past them first: released, they may move it on */
    pass_turn(s, w, end);
    for (int i = 0; i < n; i++) {
        /* their chunk is done: let them take the next one */
        group[i]->written = true;
        if (group[i]->waiting) {
            coroutine_enter(group[i]->co);
        }
    }
    return (int64_t)end;
}

/* -C: let the kernel copy a data chunk (copy_file_range), in turn like a
 * write.  -ENOTSUP (a source or target that cannot offload, the padding
 * past a source's end) leaves the chunk to the ordinary read and write,
 * still holding the turn. */
static int coroutine_fn convert_co_copy_range(struct convert_state *s,
                                              struct convert_worker *w)
{
    uint64_t base;
    int idx, ret;

    select_part(s, w->offset, &idx, &base);
    if (w->offset - base + w->bytes > s->src_size[idx]) {
        return -ENOTSUP;
    }
    w->full_data = false; /* nothing read: never folded into a write */
    if (s->wr_in_order) {
        wait_turn(s, w);
    }
    if (s->ret != -EINPROGRESS) {
        return 0;
    }
    convert_throttle(s, w->bytes);
    ret = blk_co_copy_range(s->src[idx], w->offset - base, s->target,
                            w->offset, w->bytes);
    if (ret == 0 && s->wr_in_order) {
        pass_turn(s, w, w->offset + w->bytes);
    }
    return ret;
}

/* One copying coroutine: take the next chunk from the shared cursor, read
 * it, write it, until the end or an error. */
static void coroutine_fn convert_co_do_copy(void *opaque)
{
    struct convert_worker *w = opaque;
    struct convert_state *s = w->s;

    while (true) {
        int64_t n;
        int ret;

        co_mutex_lock(&s->lock);
        if (s->ret != -EINPROGRESS || s->offset >= s->total) {
            co_mutex_unlock(&s->lock);
            break;
        }
        n = convert_iteration(s, s->offset);
        if (n < 0) {
            co_mutex_unlock(&s->lock);
            s->ret = (int)n;
            break;
        }
        w->offset = s->offset;
        w->status = s->status;
        if (!s->min_sparse && w->status == CONVERT_ZERO) {
            n = MIN((uint64_t)n, s->buf_size);
        }
        w->bytes = n;
        w->written = false;
        w->handed_over = false;
        /* move the cursor now so other coroutines read ahead of us */
        s->offset += n;
        co_mutex_unlock(&s->lock);

        if (w->status == CONVERT_DATA ||
            (!s->min_sparse && w->status == CONVERT_ZERO)) {
            s->allocated_done += n;
            tool_progress_update(&s->progress, s->allocated_done,
                                 s->allocated_total);
        }

        if (w->status == CONVERT_DATA && s->copy_range) {
            ret = convert_co_copy_range(s, w);
            if (ret != -ENOTSUP) {
                if (ret < 0 && s->ret == -EINPROGRESS) {
                    tool_error("error while writing at byte %llu: %s",
                               (unsigned long long)w->offset,
                               strerror(-ret));
                    s->ret = ret;
                }
                if (s->ret != -EINPROGRESS) {
                    wake_all_waiters(s);
                }
                continue;
            }
        }
        if (w->status == CONVERT_DATA) {
            ret = convert_co_read(s, w->offset, w->bytes, w->buf);
            if (ret < 0 && s->ret == -EINPROGRESS) {
                tool_error("error while reading at byte %llu: %s",
                           (unsigned long long)w->offset, strerror(-ret));
                s->ret = ret;
            }
        } else if (!s->min_sparse && w->status == CONVERT_ZERO) {
            /* -S 0: the target must end up fully allocated */
            w->status = CONVERT_DATA;
            memset(w->buf, 0, w->bytes);
        }
        w->full_data = s->ret == -EINPROGRESS && chunk_is_full_data(s, w);

        if (s->wr_in_order) {
            wait_turn(s, w);
            if (w->written) {
                continue; /* an earlier worker wrote it, and passed on */
            }
        }
        if (s->ret == -EINPROGRESS) {
            int64_t end = convert_write_chunk(s, w);
            if (end < 0) {
                /* the first error only: out of order, others may follow */
                if (s->ret == -EINPROGRESS) {
                    tool_error("error while writing at byte %llu: %s",
                               (unsigned long long)w->offset,
                               strerror((int)-end));
                    s->ret = (int)end;
                }
            } else if (s->wr_in_order) {
                pass_turn(s, w, (uint64_t)end);
            }
        }
        if (s->ret != -EINPROGRESS) {
            wake_all_waiters(s);
        }
    }

    if (--s->running == 0) {
        if (s->ret == -EINPROGRESS) {
            s->ret = 0;
        }
        s->done = true;
    }
}

/* Count the bytes that will need I/O, for the progress bar. */
static void coroutine_fn convert_co_count(void *opaque)
{
    struct convert_state *s = opaque;
    uint64_t offset = 0;

    while (offset < s->total) {
        int64_t n = convert_iteration(s, offset);
        if (n < 0) {
            s->ret = (int)n;
            break;
        }
        if (s->status == CONVERT_DATA ||
            (!s->min_sparse && s->status == CONVERT_ZERO)) {
            s->allocated_total += n;
        }
        offset += n;
    }
    s->done = true;
}

/* A copy buffer: aligned for any O_DIRECT target, and in huge pages
 * where the kernel has them (fewer page faults while the first reads
 * fill it, fewer TLB misses in the kernel's copies). */
static uint8_t *convert_alloc_buf(size_t size)
{
    const size_t huge = 2 * 1024 * 1024;
    uint8_t *buf = xmemalign(size >= huge ? huge : 4096, size);

    if (size >= huge) {
        madvise(buf, size, MADV_HUGEPAGE); /* only a hint */
    }
    return buf;
}

/* A new qcow2 target without backing file: which writes allocate in one
 * step (see may_hand_over_at_issue).  An L2 table maps cluster_size / 8
 * clusters, or / 16 with extended L2: the smaller span holds for both. */
static void set_alloc_order(struct convert_state *s)
{
    struct blk_info info = {0};

    s->alloc_unit = 0;
    s->alloc_span = 0;
    if (!s->wr_in_order || s->issue_order || !s->target_is_new ||
        s->target_has_backing || s->compressed ||
        strcmp(s->target->drv->name, "qcow2") != 0) {
        return;
    }
    if (blk_get_info(s->target, &info) == 0 &&
        info.cluster_size >= CONVERT_SECTOR) {
        uint64_t cs = info.cluster_size;
        s->alloc_unit = MAX(cs, (uint64_t)s->target->limits.request_alignment);
        s->alloc_span = cs * (cs / 16);
    }
    blk_info_release(&info);
}

int convert_do_copy(struct convert_state *s)
{
    struct loop *loop = loop_current();

    /* a new, fully unallocated target may already read as zeroes */
    if (!s->has_zero_init && s->target_is_new && s->min_sparse &&
        !s->target_has_backing) {
        s->has_zero_init = blk_has_zero_init(s->target);
    }

    s->ret = 0;
    s->next_status = 0;
    if (s->progress.enabled) {
        s->done = false;
        coroutine_enter(coroutine_create(convert_co_count, s));
        loop_run_until(loop, &s->done);
        if (s->ret < 0) {
            return s->ret;
        }
    }

    s->offset = 0;
    s->next_status = 0;
    s->wr_offs = 0;
    s->issue_order = s->wr_in_order && !s->target_has_backing &&
                     strcmp(s->target->drv->name, "raw") == 0;
    set_alloc_order(s);
    s->ret = -EINPROGRESS;
    s->done = false;
    s->start_ns = clock_ns();
    co_mutex_init(&s->lock);
    s->running = s->num_coroutines;
    for (int i = 0; i < s->num_coroutines; i++) {
        struct convert_worker *w = &s->workers[i];
        memset(w, 0, sizeof(*w));
        w->s = s;
        loop_bh_init(&w->turn_bh, turn_bh_cb, w);
        w->buf = convert_alloc_buf(s->buf_size);
        w->co = coroutine_create(convert_co_do_copy, w);
    }
    for (int i = 0; i < s->num_coroutines; i++) {
        coroutine_enter(s->workers[i].co);
    }
    loop_run_until(loop, &s->done);
    /* a turn handed over just before an error may still be queued */
    loop_poll(loop, false);
    for (int i = 0; i < s->num_coroutines; i++) {
        free(s->workers[i].buf);
    }
    return s->ret;
}
