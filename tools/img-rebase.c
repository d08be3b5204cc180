/* strata-img rebase: point an image at another backing file.
 *
 * Safe mode keeps what the image reads the same, as qemu-img 7.2 does:
 * wherever the image itself allocates nothing, the old and the new backing
 * content are compared sector by sector and the sectors that differ are
 * written into the image (zeroes where the old chain has ended), then the
 * header is changed.  When the new backing file is part of the old chain,
 * only ranges that the layers above it allocate are compared.  -u only
 * rewrites the header; -b "" flattens.  Chunks of 2 MiB (qemu-img's
 * IO_BUF_SIZE) are compared by several coroutines at once, the big
 * comparisons on worker threads; a side whose allocation status says it
 * reads as zeroes is not read, and where both sides do, nothing is
 * compared.  What is written is written back and evicted as it goes. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img-chain.h"
#include "img-cmds.h"
#include "loop.h"
#include "threadpool.h"
#include "util.h"

struct rebase_state {
    struct blk_node *bs;          /* the image being rebased */
    struct blk_node *old_backing; /* its current backing (NULL: none) */
    struct blk_node *new_backing; /* NULL: none (flatten) */
    struct blk_node *prefix;      /* new backing found in the old chain */
    uint64_t size, old_size, new_size;
    uint64_t offset;              /* next byte a worker takes (under lock) */
    struct co_mutex lock;
    int ret;
    char *msg;                    /* what failed (qemu-img's words) */
    int running;
    bool done;
    struct tool_progress progress;
    uint64_t handled;             /* bytes walked, for -p */
    uint8_t *zeroes;              /* CHAIN_CHUNK zero bytes, read-only */
};

/* Record the first failure. */
static void rebase_fail(struct rebase_state *s, int ret, const char *fmt,
                        ...) __attribute__((format(printf, 3, 4)));
static void rebase_fail(struct rebase_state *s, int ret, const char *fmt,
                        ...)
{
    va_list ap;

    if (s->ret < 0) {
        return;
    }
    s->ret = ret;
    va_start(ap, fmt);
    if (vasprintf(&s->msg, fmt, ap) < 0) {
        abort();
    }
    va_end(ap);
}

/* The next range whose backing content may matter: the image allocates
 * nothing there (and, with a prefix, the layers above it allocate
 * something).  Returns 1 with *off and *len set, 0 at the end, -errno. */
static int coroutine_fn next_range(struct rebase_state *s, uint64_t *off,
                                   uint64_t *len)
{
    int result = 0;

    co_mutex_lock(&s->lock);
    while (s->ret == 0 && s->offset < s->size) {
        uint64_t o = s->offset, n = MIN(s->size - o, CHAIN_CHUNK), pnum = 0;
        int ret = blk_co_block_status(s->bs, o, n, &pnum, NULL, NULL);

        if (ret >= 0 && !(ret & BLK_STATUS_ALLOCATED) && s->prefix &&
            pnum > 0) {
            n = pnum;
            ret = blk_co_block_status_above(s->old_backing, s->prefix, o, n,
                                            &pnum, NULL, NULL, NULL);
            if (ret >= 0) {
                /* unchanged since the prefix: nothing to compare */
                ret = (ret & BLK_STATUS_ALLOCATED) ? 0 : BLK_STATUS_ALLOCATED;
            }
        }
        if (ret >= 0 && pnum == 0) {
            ret = -EIO;
        }
        if (ret < 0) {
            rebase_fail(s, ret, "error while reading image metadata: %s",
                        strerror(-ret));
            result = ret;
            break;
        }
        s->offset += pnum;
        if (!(ret & BLK_STATUS_ALLOCATED)) {
            *off = o;
            *len = pnum;
            result = 1;
            break;
        }
        s->handled += pnum;
        tool_progress_update(&s->progress, s->handled, s->size);
    }
    co_mutex_unlock(&s->lock);
    return result;
}

/* Read [off, off+len) of a backing node of `size` bytes (zeroes past its
 * end or when there is none).  Returns how many bytes lie within the node
 * (the rest of buf is left alone: it reads as zeroes), or -errno.  With
 * `zero` the status already says those bytes read as zeroes: nothing is
 * read (the caller uses a buffer of zeroes instead). */
static int64_t coroutine_fn read_backing(struct blk_node *b, uint64_t size,
                                         uint64_t off, uint64_t len,
                                         bool zero, uint8_t *buf)
{
    uint64_t n = 0;

    if (b && off < size) {
        n = MIN(len, size - off);
        if (zero) {
            return (int64_t)n;
        }
        int ret = blk_co_pread(b, off, n, buf, 0);
        if (ret < 0) {
            return ret;
        }
    }
    return (int64_t)n;
}

struct compare_job {
    const uint8_t *a, *b;
    size_t len;
};

static int compare_job_run(void *opaque)
{
    struct compare_job *j = opaque;
    return memcmp(j->a, j->b, j->len) != 0;
}

/* Are the two buffers equal?  Large ones are compared on a worker, so
 * that comparing overlaps with the I/O this thread drives and uses the
 * other cores. */
static bool coroutine_fn buffers_equal(const uint8_t *a, const uint8_t *b,
                                       size_t len)
{
    struct compare_job j = {a, b, len};

    if (len < 65536) {
        return memcmp(a, b, len) == 0;
    }
    return threadpool_run(compare_job_run, &j) == 0;
}

/* How far from off (at most len) a backing side keeps one kind of
 * content, and whether that reads as zeroes by its allocation status (a
 * hole, a zero cluster, past the end, no backing at all): such ranges
 * need not be read, and where both sides are like that, not compared. */
static int64_t coroutine_fn side_status(struct blk_node *b, uint64_t size,
                                        uint64_t off, uint64_t len,
                                        bool *zero)
{
    uint64_t pnum = 0;
    int ret;

    *zero = true;
    if (!b || off >= size) {
        return (int64_t)len;
    }
    ret = blk_co_block_status_above(b, NULL, off, MIN(len, size - off),
                                    &pnum, NULL, NULL, NULL);
    if (ret < 0) {
        return ret;
    }
    if (pnum == 0) {
        return -EIO;
    }
    *zero = (ret & BLK_STATUS_ZERO) != 0;
    return (int64_t)pnum;
}

/* Is the sector at a (n bytes) equal to the one at b, or all zero when b
 * is NULL? */
static bool sector_same(const uint8_t *a, const uint8_t *b, uint64_t n)
{
    if (b) {
        return memcmp(a, b, n) == 0;
    }
    return a[0] == 0 && memcmp(a, a + 1, n - 1) == 0;
}

/* Length of the run of 512-byte sectors at the start of a and b (NULL:
 * zeroes) that are all equal (*same) or all different, as qemu-img's
 * compare_buffers(). */
static uint64_t sector_run(const uint8_t *a, const uint8_t *b, uint64_t len,
                           bool *same)
{
    uint64_t n = MIN(len, (uint64_t)BLK_SECTOR_SIZE), i;

    *same = sector_same(a, b, n);
    for (i = n; i < len; i += n) {
        n = MIN(len - i, (uint64_t)BLK_SECTOR_SIZE);
        if (sector_same(a + i, b ? b + i : NULL, n) != *same) {
            break;
        }
    }
    return MIN(i, len);
}

/* Compare one piece of old and new backing content and write what differs
 * into the image.  Where one side has nothing to read it counts as zeroes
 * without being filled in; *wrote tells whether anything was written. */
static int coroutine_fn rebase_piece(struct rebase_state *s, uint64_t off,
                                     uint64_t len, bool old_zero,
                                     bool new_zero, uint8_t *buf_old,
                                     uint8_t *buf_new, bool *wrote)
{
    int64_t n_old, n_new;
    uint64_t done = 0;
    int ret;

    /* the old side is written back where it differs, so known zeroes
     * still count as its data (qemu-img writes them as data), taken from
     * a buffer of zeroes */
    n_old = read_backing(s->old_backing, s->old_size, off, len, old_zero,
                         buf_old);
    if (old_zero) {
        buf_old = s->zeroes;
    }
    if (n_old < 0) {
        rebase_fail(s, (int)n_old, "error while reading from old backing "
                    "file");
        return (int)n_old;
    }
    /* known zeroes on the new side are compared as "no data" */
    n_new = new_zero ? 0
                     : read_backing(s->new_backing, s->new_size, off, len,
                                    false, buf_new);
    if (n_new < 0) {
        rebase_fail(s, (int)n_new, "error while reading from new backing "
                    "file");
        return (int)n_new;
    }
    if (n_old == 0 && n_new == 0) {
        return 0; /* zeroes on both sides */
    }
    if ((uint64_t)n_old == len && (uint64_t)n_new == len &&
        buffers_equal(buf_old, buf_new, len)) {
        return 0; /* the common case of a safe rebase */
    }
    while (done < len) {
        /* a: the side that has data here, b: the other one or NULL */
        bool old_data = done < (uint64_t)n_old;
        bool new_data = done < (uint64_t)n_new;
        uint64_t lim = len - done;
        bool same;
        uint64_t n;

        if (old_data && new_data) {
            lim = MIN((uint64_t)n_old, (uint64_t)n_new) - done;
            n = sector_run(buf_old + done, buf_new + done, lim, &same);
        } else if (old_data || new_data) {
            const uint8_t *a = old_data ? buf_old : buf_new;
            lim = (uint64_t)(old_data ? n_old : n_new) - done;
            n = sector_run(a + done, NULL, lim, &same);
        } else {
            n = lim;
            same = true;
        }
        if (!same) {
            ret = !old_data
                      ? blk_co_pwrite_zeroes(s->bs, off + done, n, 0)
                      : blk_co_pwrite(s->bs, off + done, n, buf_old + done,
                                      0);
            if (ret < 0) {
                rebase_fail(s, ret, "Error while writing to COW image: %s",
                            strerror(-ret));
                return ret;
            }
        }
        done += n;
        *wrote = *wrote || !same;
    }
    return 0;
}

/* Bring one range of the image (unallocated in it) to the same content
 * over the new backing as over the old: piece by piece as the two sides'
 * allocation status changes, skipping pieces where both read as zeroes. */
static int coroutine_fn rebase_range(struct rebase_state *s, uint64_t off,
                                     uint64_t len, uint8_t *buf_old,
                                     uint8_t *buf_new)
{
    uint64_t done = 0;
    bool wrote = false;

    while (done < len) {
        bool old_zero, new_zero;
        int64_t n_old, n_new;
        uint64_t n;
        int ret;

        n_old = side_status(s->old_backing, s->old_size, off + done,
                            len - done, &old_zero);
        if (n_old < 0) {
            rebase_fail(s, (int)n_old, "error while reading from old "
                        "backing file");
            return (int)n_old;
        }
        n_new = side_status(s->new_backing, s->new_size, off + done,
                            len - done, &new_zero);
        if (n_new < 0) {
            rebase_fail(s, (int)n_new, "error while reading from new "
                        "backing file");
            return (int)n_new;
        }
        n = MIN((uint64_t)n_old, (uint64_t)n_new);
        if (!old_zero || !new_zero) {
            ret = rebase_piece(s, off + done, n, old_zero, new_zero,
                               buf_old + done, buf_new + done, &wrote);
            if (ret < 0) {
                return ret;
            }
        }
        done += n;
    }
    if (wrote) {
        /* What rebase writes lands in clusters newly allocated at the end
         * of the image, i.e. in pages the page cache must find fresh
         * memory for (slow where the host backs guest memory lazily), and
         * all of it waits for the final flush.  Write each range back as
         * it is done and let its pages go, so the next ranges reuse that
         * memory and the flush finds little left.  Advisory: an error only
         * loses the gain. */
        blk_co_writeback(s->bs, off, len, true);
    }
    return 0;
}

static void coroutine_fn rebase_worker(void *opaque)
{
    struct rebase_state *s = opaque;
    uint8_t *buf_old = blk_alloc_buf(s->bs, CHAIN_CHUNK);
    uint8_t *buf_new = blk_alloc_buf(s->bs, CHAIN_CHUNK);
    uint64_t off = 0, len = 0;

    while (next_range(s, &off, &len) > 0) {
        if (rebase_range(s, off, len, buf_old, buf_new) < 0) {
            break;
        }
        s->handled += len;
        tool_progress_update(&s->progress, s->handled, s->size);
    }
    free(buf_old);
    free(buf_new);
    if (--s->running == 0) {
        s->done = true;
    }
}

static int run_rebase(struct rebase_state *s)
{
    struct loop *loop = loop_current();

    co_mutex_init(&s->lock);
    s->zeroes = blk_alloc_buf(s->bs, CHAIN_CHUNK);
    memset(s->zeroes, 0, CHAIN_CHUNK);
    s->running = CHAIN_WORKERS;
    for (int i = 0; i < CHAIN_WORKERS; i++) {
        coroutine_enter(coroutine_create(rebase_worker, s));
    }
    loop_run_until(loop, &s->done);
    free(s->zeroes);
    s->zeroes = NULL;
    if (s->ret < 0) {
        tool_error("%s", s->msg);
    }
    return s->ret;
}

/* Open (or find in the old chain) the new backing file for safe mode. */
static int open_new_backing(struct rebase_state *s, const char *out_baseimg,
                            const char *out_basefmt, const char *src_cache,
                            bool force_share, bool quiet)
{
    struct strata_error *err = NULL;
    char *real = blk_resolve_backing_name(s->bs->filename, out_baseimg);
    int ret;

    s->prefix = chain_find_backing_image(s->bs, real);
    if (s->prefix) {
        s->new_backing = s->prefix;
        free(real);
        return 0;
    }
    ret = tool_open(&s->new_backing, real, out_basefmt, false, src_cache,
                    force_share ? BLK_O_FORCE_SHARE : 0, quiet, NULL, &err);
    free(real);
    if (ret < 0) {
        tool_error("Could not open new backing file '%s': %s", out_baseimg,
                   error_msg(err, ret));
        strata_error_free(err);
        s->new_backing = NULL;
        return ret;
    }
    return 0;
}

/* Write the new backing name into the header, with qemu-img's messages. */
static int change_backing(struct blk_node *bs, const char *out_baseimg,
                          const char *out_basefmt)
{
    struct strata_error *err = NULL;
    int ret;

    if (out_baseimg && *out_baseimg) {
        if (!out_basefmt) {
            ret = -EINVAL;
        } else {
            ret = blk_change_backing_file(bs, out_baseimg, out_basefmt,
                                          &err);
        }
    } else {
        ret = blk_change_backing_file(bs, NULL, NULL, &err);
    }
    strata_error_free(err);
    if (ret == -ENOSPC) {
        tool_error("Could not change the backing file to '%s': No space "
                   "left in the file header", out_baseimg);
    } else if (ret == -EINVAL && out_baseimg && !out_basefmt) {
        tool_error("Could not change the backing file to '%s': backing "
                   "format must be specified", out_baseimg);
    } else if (ret < 0) {
        tool_error("Could not change the backing file to '%s': %s",
                   out_baseimg ? out_baseimg : "(null)", strerror(-ret));
    }
    return ret;
}

int img_rebase(int argc, char **argv)
{
    static const struct option longopts[] = {
        IMG_LONGOPTS_STD,
        {"force-share", no_argument, NULL, 'U'},
        {NULL, 0, NULL, 0},
    };
    struct img_std_opts o = {.cache = "writeback"};
    const char *src_cache = "writeback";
    const char *out_baseimg = NULL, *out_basefmt = NULL, *filename;
    bool unsafe = false;
    struct rebase_state s = {0};
    unsigned flags = 0;
    int c, ret = -1;

    while ((c = img_getopt(argc, argv, ":hf:F:b:upt:T:qU", longopts)) !=
           -1) {
        switch (c) {
        case 'F':
            out_basefmt = optarg;
            break;
        case 'b':
            out_baseimg = optarg;
            break;
        case 'u':
            unsafe = true;
            break;
        case 'T':
            src_cache = optarg;
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
    img_one_filename(argc, argv);
    if (!unsafe && !out_baseimg) {
        img_error_exit("Must specify backing file (-b) or use unsafe mode "
                       "(-u)");
    }
    filename = argv[optind];

    tool_progress_init(&s.progress, o.progress);
    s.progress.min_skip = 2.0;
    tool_progress_update(&s.progress, 0, 1);

    if (blk_parse_cache_mode(o.cache, &flags) < 0) {
        tool_error("Invalid cache option: %s", o.cache);
        goto out;
    }
    if (blk_parse_cache_mode(src_cache, &flags) < 0) {
        tool_error("Invalid source cache option: %s", src_cache);
        goto out;
    }
    /* unsafe: the old backing file may be gone (that is often why) */
    s.bs = img_open(filename, o.fmt, o.image_opts, o.cache,
                    BLK_O_RDWR | (unsafe ? BLK_O_NO_BACKING : 0), o.quiet);
    if (!s.bs) {
        goto out;
    }
    if (out_basefmt && !blk_find_driver(out_basefmt)) {
        tool_error("Invalid format name: '%s'", out_basefmt);
        goto out;
    }
    /* fail before copying anything; qemu-img copies, then refuses */
    if (out_baseimg && *out_baseimg && !out_basefmt) {
        change_backing(s.bs, out_baseimg, out_basefmt);
        goto out;
    }

    if (!unsafe) {
        s.old_backing = s.bs->backing;
        if (out_baseimg[0] &&
            open_new_backing(&s, out_baseimg, out_basefmt, src_cache,
                             o.force_share, o.quiet) < 0) {
            goto out;
        }
        s.size = s.bs->size;
        s.old_size = s.old_backing ? s.old_backing->size : 0;
        s.new_size = s.new_backing ? s.new_backing->size : 0;
        if (run_rebase(&s) < 0) {
            goto out;
        }
    }
    ret = change_backing(s.bs, out_baseimg, out_basefmt);
    if (ret == 0) {
        ret = blk_flush(s.bs);
        if (ret < 0) {
            tool_error("Could not flush '%s': %s", filename, strerror(-ret));
        }
    }
    tool_progress_update(&s.progress, 1, 1);
out:
    tool_progress_end(&s.progress);
    if (s.new_backing && !s.prefix) {
        blk_close(s.new_backing);
    }
    if (s.bs) {
        blk_close(s.bs);
    }
    free(s.msg);
    return ret != 0;
}
