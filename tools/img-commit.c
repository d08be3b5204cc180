/* strata-img commit: write the data of an overlay (and of the layers
 * between it and the base) down into a base image of its backing chain,
 * then empty the overlay unless -d.
 *
 * qemu-img runs an active commit block job (a mirror); the outcome is the
 * same here without a job: every range that a layer above the base
 * allocates is copied, ranges that read as zeroes are written as zeroes
 * that may unmap (as the mirror does), and several coroutines work on
 * consecutive chunks at once.  The base is the same node the overlay's
 * chain opened read-only: it is reopened read-write (its file descriptor
 * and locks moved), since a second open of the file would conflict with
 * the first one's locks. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img-chain.h"
#include "img-cmds.h"
#include "loop.h"
#include "util.h"

struct commit_state {
    struct blk_node *top, *base;
    uint64_t size;          /* bytes to walk: the top's virtual size */
    uint64_t granularity;   /* unit of copying, as the mirror's */
    uint64_t offset;        /* next byte a worker takes (under lock) */
    struct co_mutex lock;
    int ret;                /* first error */
    const char *failed;     /* what failed, for the message */
    int running;            /* workers not finished yet */
    bool done;
    uint64_t rate_limit, start_ns, sent;
    struct tool_progress progress;
    uint64_t total, copied; /* bytes to copy and copied, for -p */
    bool no_offload;        /* copy_file_range refused: buffered copies */
    int offload_refused;    /* refusals in a row */
    int base_depth;         /* layers from the top down to the base */
    bool evict_top;         /* the top is emptied after: drop its cache */
};

enum commit_method { COMMIT_COPY, COMMIT_ZERO, COMMIT_DISCARD };

/* Where the next g-aligned range that a layer above the base touches
 * starts, and how long it is (whole granules, as the mirror's dirty
 * bitmap).  0 with *len = 0 when nothing is left.  Lock held. */
static int coroutine_fn next_dirty(struct commit_state *s, uint64_t *off,
                                   uint64_t *len)
{
    uint64_t g = s->granularity, pnum;
    int ret;

    while (s->offset < s->size) {
        uint64_t o = s->offset;
        ret = blk_co_block_status_above(s->top, s->base, o,
                                        MIN(s->size - o, CHAIN_CHUNK), &pnum,
                                        NULL, NULL, NULL);
        if (ret >= 0 && pnum == 0) {
            ret = -EIO;
        }
        if (ret < 0) {
            return ret;
        }
        if (!(ret & BLK_STATUS_ALLOCATED)) {
            uint64_t skip = ROUND_DOWN(o + pnum, g) - o;
            if (o + pnum >= s->size) {
                skip = s->size - o;
            }
            if (skip > 0) {
                s->offset += skip;
                continue;
            }
            pnum = 1; /* allocation starts inside this granule */
        }
        *off = o;
        *len = MIN(ROUND_UP(o + pnum, g), s->size) - o;
        return 0;
    }
    *len = 0;
    return 0;
}

/* Take the next piece to copy and how, as the mirror job of qemu-img
 * commit decides it: the status through the whole chain says data (copied,
 * at least one granule), or zeroes/nothing over whole target clusters
 * (written as zeroes, or discarded).  Returns 0 or -errno; *len = 0 at the
 * end. */
static int coroutine_fn next_piece(struct commit_state *s, uint64_t *off,
                                   uint64_t *len, enum commit_method *how)
{
    uint64_t g = s->granularity, dirty = 0, io = 0;
    int ret;

    co_mutex_lock(&s->lock);
    if (s->ret < 0) {
        ret = s->ret;
        goto out;
    }
    ret = next_dirty(s, off, &dirty);
    if (ret < 0 || dirty == 0) {
        *len = 0;
        goto out;
    }
    ret = blk_co_block_status_above(s->top, NULL, *off,
                                    MIN(dirty, CHAIN_CHUNK), &io, NULL,
                                    NULL, NULL);
    if (ret >= 0 && io == 0) {
        ret = -EIO;
    }
    if (ret < 0) {
        goto out;
    }
    *how = COMMIT_COPY;
    io -= io % g;
    if (io < g) {
        io = g;
    } else if (!(ret & BLK_STATUS_DATA)) {
        *how = (ret & BLK_STATUS_ZERO) ? COMMIT_ZERO : COMMIT_DISCARD;
    }
    *len = MIN(io, dirty);
    s->offset = *off + *len;
    ret = 0;
out:
    if (ret < 0 && s->ret == 0) {
        s->ret = ret;
        s->failed = "read block status";
    }
    co_mutex_unlock(&s->lock);
    return ret;
}

/* Copy [off, off+len) from the chain above the base into the base through
 * our buffer. */
static int coroutine_fn copy_buffered(struct commit_state *s, uint64_t off,
                                      uint64_t len, void *buf)
{
    int ret = blk_co_pread(s->top, off, len, buf, 0);

    if (ret < 0) {
        if (!s->failed) {
            s->failed = "read from the image";
        }
        return ret;
    }
    ret = blk_co_pwrite(s->base, off, len, buf, 0);
    if (ret < 0 && !s->failed) {
        s->failed = "write to the base";
    }
    return ret;
}

/* The same with copy_file_range, where every part of the range is stored
 * uncompressed and unencrypted at a known offset of a file: the data need
 * not be looked at, so the kernel copies it page cache to page cache (or
 * shares the blocks) without our buffer in between.  -ENOTSUP when some
 * part is not like that, or is the base's own content (a granule only
 * partly above the base: the buffered copy rewrites it, allocating it as
 * QEMU's mirror does), or the kernel refuses; what the offload did is
 * then simply redone. */
static int coroutine_fn copy_offloaded(struct commit_state *s, uint64_t off,
                                       uint64_t len)
{
    while (len > 0) {
        uint64_t pnum = 0, map = 0;
        struct blk_node *file = NULL;
        int depth = 0;
        int ret = blk_co_block_status_above(s->top, NULL, off, len, &pnum,
                                            &map, &file, &depth);

        if (ret < 0 || pnum == 0 || !(ret & BLK_STATUS_DATA) ||
            !(ret & BLK_STATUS_OFFSET_VALID) || !file ||
            (ret & BLK_STATUS_COMPRESSED) || depth == s->base_depth) {
            return -ENOTSUP;
        }
        ret = blk_co_copy_range(file, map, s->base, off, pnum);
        if (ret < 0) {
            /* a destination that never takes it (a qcow2 base) refuses
             * every time: stop asking after a run of refusals */
            if (ret == -ENOTSUP && ++s->offload_refused >= 16) {
                s->no_offload = true;
            }
            return -ENOTSUP;
        }
        s->offload_refused = 0;
        off += pnum;
        len -= pnum;
    }
    return 0;
}

/* Copy one piece into the base. */
static int coroutine_fn commit_piece(struct commit_state *s,
                                     enum commit_method how, uint64_t off,
                                     uint64_t len, void *buf)
{
    int ret;

    chain_throttle(s->rate_limit, s->start_ns, &s->sent, len);
    if (how == COMMIT_ZERO) {
        ret = blk_co_pwrite_zeroes(s->base, off, len, BLK_REQ_MAY_UNMAP);
        if (ret < 0 && !s->failed) {
            s->failed = "write zeroes to the base";
        }
        return ret;
    }
    if (how == COMMIT_DISCARD) {
        ret = blk_co_discard(s->base, off, len);
        if (ret < 0 && !s->failed) {
            s->failed = "discard in the base";
        }
        return ret;
    }
    ret = s->no_offload ? -ENOTSUP : copy_offloaded(s, off, len);
    if (ret == -ENOTSUP) {
        ret = copy_buffered(s, off, len, buf);
    }
    if (ret >= 0) {
        /* The final flush would otherwise find every byte still to be
         * written and the disk idle until then: start the writeback of
         * each piece as soon as it is in the page cache.  The pages stay
         * cached (the base is usually an image kept in use).  Advisory:
         * an error only loses the head start. */
        blk_co_writeback(s->base, off, len, false);
        if (s->evict_top) {
            /* the overlay is emptied next, and truncating a file whose
             * pages are all still cached means evicting them then, on the
             * critical path: let the copied ones go now, while the copy
             * still overlaps with the base's writeback */
            blk_co_writeback(s->top, off, len, true);
        }
    }
    return ret;
}

static void coroutine_fn commit_worker(void *opaque)
{
    struct commit_state *s = opaque;
    void *buf = blk_alloc_buf(s->base, CHAIN_CHUNK);
    uint64_t off = 0, len = 0;
    enum commit_method how = COMMIT_COPY;

    while (next_piece(s, &off, &len, &how) >= 0 && len > 0) {
        int ret = commit_piece(s, how, off, len, buf);
        if (ret < 0) {
            if (s->ret == 0) {
                s->ret = ret;
            }
            break;
        }
        s->copied += len;
        tool_progress_update(&s->progress, s->copied, s->total);
    }
    free(buf);
    if (--s->running == 0) {
        s->done = true;
    }
}

/* For -p: how many bytes lie above the base. */
static void coroutine_fn count_entry(void *opaque)
{
    struct commit_state *s = opaque;
    uint64_t off = 0, pnum;

    while (off < s->size) {
        int ret = blk_co_block_status_above(s->top, s->base, off,
                                            s->size - off, &pnum, NULL, NULL,
                                            NULL);
        if (ret < 0 || pnum == 0) {
            break; /* the copy itself reports it */
        }
        if (ret & BLK_STATUS_ALLOCATED) {
            s->total += pnum;
        }
        off += pnum;
    }
    s->done = true;
}

/* Run the workers until everything above the base is in the base. */
static int run_commit(struct commit_state *s)
{
    struct loop *loop = loop_current();

    co_mutex_init(&s->lock);
    if (s->progress.enabled) {
        s->done = false;
        coroutine_enter(coroutine_create(count_entry, s));
        loop_run_until(loop, &s->done);
    }
    s->done = false;
    s->start_ns = clock_ns();
    s->running = CHAIN_WORKERS;
    for (int i = 0; i < CHAIN_WORKERS; i++) {
        coroutine_enter(coroutine_create(commit_worker, s));
    }
    loop_run_until(loop, &s->done);
    if (s->ret >= 0) {
        s->ret = blk_flush(s->base);
        s->failed = "flush the base";
    }
    return s->ret;
}

/* QEMU's default bitmap granularity for the target: its cluster size (at
 * least 4 KiB), or 64 KiB when it has none. */
static uint64_t default_granularity(struct blk_node *base)
{
    struct blk_info info = {0};
    uint64_t g = 65536;

    if (blk_get_info(base, &info) >= 0 && info.cluster_size) {
        g = MAX(info.cluster_size, 4096u);
    }
    blk_info_release(&info);
    return MIN(g, (uint64_t)CHAIN_CHUNK);
}

/* The base grows to the overlay's size first, as QEMU's commit does. */
static int grow_base(struct commit_state *s, const char *top_name)
{
    struct strata_error *err = NULL;
    int ret;

    if (s->base->size >= s->top->size) {
        return 0;
    }
    ret = blk_truncate(s->base, s->top->size, false, BLK_PREALLOC_OFF, &err);
    if (ret < 0) {
        tool_error("Top image %s is larger than base image %s, and resize "
                   "of base image failed: %s", top_name, s->base->filename,
                   error_msg(err, ret));
        strata_error_free(err);
    }
    return ret;
}

int img_commit(int argc, char **argv)
{
    static const struct option longopts[] = {
        IMG_LONGOPTS_STD,
        {NULL, 0, NULL, 0},
    };
    struct img_std_opts o = {.cache = "writeback"};
    const char *base_name = NULL, *filename;
    bool drop = false;
    struct commit_state s = {0};
    struct strata_error *err = NULL;
    int64_t rate = 0;
    unsigned flags = 0;
    int c, ret = 1;

    while ((c = img_getopt(argc, argv, ":f:ht:b:dpqr:", longopts)) != -1) {
        switch (c) {
        case 'b':
            base_name = optarg;
            drop = true; /* -b implies -d, as in qemu-img */
            break;
        case 'd':
            drop = true;
            break;
        case 'r':
            if (tool_cvtnum("rate limit", optarg, 0, INT64_MAX, &rate) < 0) {
                return 1;
            }
            break;
        default:
            if (img_std_opt(&o, c, optarg) < 0) {
                return 1;
            }
        }
    }
    if (o.quiet) {
        o.progress = false;
    }
    filename = img_one_filename(argc, argv);
    if (blk_parse_cache_mode(o.cache, &flags) < 0) {
        tool_error("Invalid cache option: %s", o.cache);
        return 1;
    }

    s.top = img_open(filename, o.fmt, o.image_opts, o.cache, BLK_O_RDWR,
                     o.quiet);
    if (!s.top) {
        return 1;
    }
    s.size = s.top->size;
    s.rate_limit = (uint64_t)rate;
    tool_progress_init(&s.progress, o.progress);
    tool_progress_update(&s.progress, 0, 1);

    if (base_name) {
        s.base = chain_find_backing_image(s.top, base_name);
        if (!s.base) {
            tool_progress_end(&s.progress);
            tool_error("Did not find '%s' in the backing chain of '%s'",
                       base_name, filename);
            goto out;
        }
    } else {
        s.base = s.top->backing;
        if (!s.base) {
            tool_progress_end(&s.progress);
            tool_error("Image does not have a backing file");
            goto out;
        }
    }

    s.evict_top = !drop;
    for (struct blk_node *p = s.top; p != s.base; p = p->backing) {
        s.base_depth++;
    }
    s.granularity = default_granularity(s.base);
    if (blk_reopen(s.base, true, &err) < 0) {
        tool_progress_end(&s.progress);
        tool_error("%s", error_msg(err, -EIO));
        strata_error_free(err);
        goto out;
    }
    if (grow_base(&s, filename) < 0) {
        tool_progress_end(&s.progress);
        goto out;
    }
    if (run_commit(&s) < 0) {
        tool_progress_end(&s.progress);
        tool_error("Could not %s: %s", s.failed ? s.failed : "commit",
                   strerror(-s.ret));
        goto out;
    }
    if (!drop) {
        int r = blk_make_empty(s.top, &err);
        /* formats that cannot be emptied keep their data, as in QEMU */
        if (r < 0 && r != -ENOTSUP) {
            tool_progress_end(&s.progress);
            tool_error("%s", error_msg(err, r));
            strata_error_free(err);
            goto out;
        }
        strata_error_free(err);
        err = NULL;
    }
    tool_progress_update(&s.progress, 1, 1);
    tool_progress_end(&s.progress);
    ret = 0;
out:
    blk_close(s.top);
    if (ret == 0 && !o.quiet) {
        printf("Image committed.\n");
    }
    return ret;
}
