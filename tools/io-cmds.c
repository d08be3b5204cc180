/* strata-io's data-path commands: read, write, their vectored and
 * asynchronous forms, aio_flush, flush and discard.  Syntax and output
 * follow qemu-io 7.2 so that scripts and golden outputs written for one
 * work with the other; the differences are listed in strata-io(1).
 *
 * Commands run outside coroutines and use the synchronous wrappers, which
 * turn the event loop while they wait, so asynchronous requests (one
 * coroutine each) progress during any later command. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block.h"
#include "coroutine.h"
#include "img-common.h"
#include "io-cmds.h"
#include "loop.h"
#include "util.h"

#define MISALIGN_OFFSET 16 /* -m: how far buffers are pushed off alignment */

/* ---- timing and output ---- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* qemu-io's elapsed time: "00.00 sec", or h:mm:ss.ss from a second on
 * (always with -C). */
static void fmt_time(uint64_t ns, bool verbose, char *buf, size_t len)
{
    uint64_t sec = ns / 1000000000ull;
    double frac = (double)(ns % 1000000000ull) / 1e9;

    if (verbose || sec) {
        snprintf(buf, len, "%u:%02u:%05.2f", (unsigned)(sec / 3600),
                 (unsigned)(sec % 3600 / 60), (double)(sec % 60) + frac);
    } else {
        snprintf(buf, len, "%05.2f sec", frac);
    }
}

/* "read 512/512 bytes at offset 0" and the statistics line after it. */
static void print_report(const char *op, uint64_t ns, int64_t offset,
                         int64_t count, int64_t total, int cnt, bool Cflag)
{
    char s1[64], s2[64], ts[64];
    double secs = (double)(ns ? ns : 1) / 1e9;

    fmt_time(ns, Cflag, ts, sizeof(ts));
    if (Cflag) {
        printf("%" PRId64 ",%d,%s,%.3f,%.3f\n", total, cnt, ts,
               (double)total / secs, cnt / secs);
        return;
    }
    io_fmt_size((double)total, s1, sizeof(s1));
    io_fmt_size((double)total / secs, s2, sizeof(s2));
    printf("%s %" PRId64 "/%" PRId64 " bytes at offset %" PRId64 "\n", op,
           total, count, offset);
    printf("%s, %d ops; %s (%s/sec and %.4f ops/sec)\n", s1, cnt, ts, s2,
           cnt / secs);
}

/* -v: sixteen bytes a line, hex then the alphanumerics. */
static void dump_buffer(const uint8_t *buf, int64_t offset, int64_t len)
{
    for (int64_t i = 0; i < len; i += 16) {
        int n = len - i < 16 ? (int)(len - i) : 16;
        printf("%08" PRIx64 ":  ", (uint64_t)(offset + i));
        for (int j = 0; j < n; j++) {
            printf("%02x ", buf[i + j]);
        }
        putchar(' ');
        for (int j = 0; j < n; j++) {
            putchar(isalnum(buf[i + j]) ? buf[i + j] : '.');
        }
        putchar('\n');
    }
}

/* Check that buf holds only `pattern`; on a mismatch print qemu-io's line
 * (which names the checked range) and then where the data first differed. */
static bool verify_pattern(const uint8_t *buf, int64_t len, int pattern,
                           int64_t offset)
{
    int64_t first = -1, bad = 0;

    for (int64_t i = 0; i < len; i++) {
        if (buf[i] != pattern) {
            if (first < 0) {
                first = i;
            }
            bad++;
        }
    }
    if (first < 0) {
        return true;
    }
    printf("Pattern verification failed at offset %" PRId64 ", %" PRId64
           " bytes\n",
           offset, len);
    printf("First difference at offset %" PRId64 ": read 0x%02x, expected "
           "0x%02x (%" PRId64 " of %" PRId64 " bytes differ)\n",
           offset + first, buf[first], pattern, bad, len);
    return false;
}

/* ---- buffers ---- */

static uint8_t *io_alloc(struct io_session *s, size_t len, int pattern)
{
    size_t extra = s->misalign ? MISALIGN_OFFSET : 0;
    uint8_t *buf = blk_alloc_buf(s->bs, len + extra);

    memset(buf, pattern, len + extra);
    return buf + extra;
}

static void io_free(struct io_session *s, uint8_t *buf)
{
    if (buf) {
        free(buf - (s->misalign ? MISALIGN_OFFSET : 0));
    }
}

/* write -s: the file's bytes, repeated to fill len. */
static uint8_t *io_alloc_from_file(struct io_session *s, size_t len,
                                   const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    size_t n;

    if (!f) {
        tool_error("%s: %s", path, strerror(errno));
        return NULL;
    }
    buf = io_alloc(s, len, 0);
    n = fread(buf, 1, len, f);
    if (ferror(f)) {
        tool_error("%s: %s", path, strerror(errno));
        goto fail;
    }
    if (n == 0 && len > 0) {
        tool_error("%s: file is empty", path);
        goto fail;
    }
    for (size_t i = n; i < len; i++) {
        buf[i] = buf[i % n];
    }
    fclose(f);
    return buf;

fail:
    fclose(f);
    io_free(s, buf);
    return NULL;
}

/* readv/writev/aio_*: one buffer split into the given lengths. */
static uint8_t *create_iovec(struct io_session *s, struct blk_iov *qiov,
                             char **argv, int nr, int pattern)
{
    int64_t *sizes = xmalloc(sizeof(*sizes) * (size_t)nr);
    int64_t count = 0;
    uint8_t *buf = NULL, *p;

    for (int i = 0; i < nr; i++) {
        if (io_parse_num(argv[i], &sizes[i]) < 0) {
            goto out;
        }
        if (sizes[i] > IO_MAX_REQUEST) {
            printf("Argument '%s' exceeds maximum size %" PRId64 "\n", argv[i],
                   IO_MAX_REQUEST);
            goto out;
        }
        if (count > IO_MAX_REQUEST - sizes[i]) {
            printf("The total number of bytes exceed the maximum size %" PRId64
                   "\n",
                   IO_MAX_REQUEST);
            goto out;
        }
        count += sizes[i];
    }
    blk_iov_init(qiov, nr);
    buf = p = io_alloc(s, (size_t)count, pattern);
    for (int i = 0; i < nr; i++) {
        blk_iov_add(qiov, p, (size_t)sizes[i]);
        p += sizes[i];
    }
out:
    free(sizes);
    return buf;
}

/* ---- read, readv ---- */

static const struct io_cmd read_cmd;
static const struct io_cmd readv_cmd;
static const struct io_cmd write_cmd;
static const struct io_cmd writev_cmd;
static const struct io_cmd aio_read_cmd;
static const struct io_cmd aio_write_cmd;
static const struct io_cmd discard_cmd;

/* The "offset length" pair that ends read, write and discard. */
static int parse_off_len(char **args, int64_t *offset, int64_t *count)
{
    int ret;

    if ((ret = io_parse_num(args[0], offset)) < 0 ||
        (ret = io_parse_num(args[1], count)) < 0) {
        return ret;
    }
    if (*count > IO_MAX_REQUEST) {
        printf("length cannot exceed %" PRId64 ", given %s\n", IO_MAX_REQUEST,
               args[1]);
        return -EINVAL;
    }
    return 0;
}

static int read_f(struct io_session *s, int argc, char **argv)
{
    bool Cflag = false, qflag = s->quiet, vflag = false;
    bool Pflag = false, sflag = false, lflag = false;
    int64_t offset, count, poff = 0, plen = 0;
    int c, pattern = 0, ret;
    uint64_t t1, t2;
    uint8_t *buf;

    while ((c = getopt(argc, argv, "Cl:pP:qs:v")) != -1) {
        switch (c) {
        case 'C':
            Cflag = true;
            break;
        case 'l':
            lflag = true;
            if ((ret = io_parse_num(optarg, &plen)) < 0) {
                return ret;
            }
            break;
        case 'p': /* qemu-io ignores it too */
            break;
        case 'P':
            Pflag = true;
            if ((pattern = io_parse_pattern(optarg)) < 0) {
                return -EINVAL;
            }
            break;
        case 'q':
            qflag = true;
            break;
        case 's':
            sflag = true;
            if ((ret = io_parse_num(optarg, &poff)) < 0) {
                return ret;
            }
            break;
        case 'v':
            vflag = true;
            break;
        default:
            return io_cmd_usage(&read_cmd);
        }
    }
    if (optind != argc - 2) {
        return io_cmd_usage(&read_cmd);
    }
    if ((ret = parse_off_len(argv + optind, &offset, &count)) < 0) {
        return ret;
    }
    if (!Pflag && (lflag || sflag)) {
        return io_cmd_usage(&read_cmd);
    }
    if (!lflag) {
        plen = count - poff;
    }
    if (poff > count || plen < 0 || plen > count - poff) {
        printf("pattern verification range exceeds end of read data\n");
        return -EINVAL;
    }

    buf = io_alloc(s, (size_t)count, 0xab);
    t1 = now_ns();
    ret = blk_pread(s->bs, (uint64_t)offset, (uint64_t)count, buf, 0);
    t2 = now_ns();
    if (ret < 0) {
        printf("read failed: %s\n", strerror(-ret));
        goto out;
    }
    ret = 0;
    if (Pflag && !verify_pattern(buf + poff, plen, pattern, offset + poff)) {
        ret = -EIO;
    }
    if (!qflag) {
        if (vflag) {
            dump_buffer(buf, offset, count);
        }
        print_report("read", t2 - t1, offset, count, count, 1, Cflag);
    }
out:
    io_free(s, buf);
    return ret;
}

static int readv_f(struct io_session *s, int argc, char **argv)
{
    bool Cflag = false, qflag = s->quiet, vflag = false, Pflag = false;
    int c, pattern = 0, ret;
    struct blk_iov qiov;
    int64_t offset;
    uint64_t t1, t2;
    uint8_t *buf;

    while ((c = getopt(argc, argv, "CP:qv")) != -1) {
        switch (c) {
        case 'C':
            Cflag = true;
            break;
        case 'P':
            Pflag = true;
            if ((pattern = io_parse_pattern(optarg)) < 0) {
                return -EINVAL;
            }
            break;
        case 'q':
            qflag = true;
            break;
        case 'v':
            vflag = true;
            break;
        default:
            return io_cmd_usage(&readv_cmd);
        }
    }
    if (optind > argc - 2) {
        return io_cmd_usage(&readv_cmd);
    }
    if ((ret = io_parse_num(argv[optind], &offset)) < 0) {
        return ret;
    }
    optind++;
    buf = create_iovec(s, &qiov, &argv[optind], argc - optind, 0xab);
    if (!buf) {
        return -EINVAL;
    }
    t1 = now_ns();
    ret = blk_preadv(s->bs, (uint64_t)offset, qiov.size, &qiov, 0);
    t2 = now_ns();
    if (ret < 0) {
        printf("readv failed: %s\n", strerror(-ret));
        goto out;
    }
    ret = 0;
    if (Pflag && !verify_pattern(buf, (int64_t)qiov.size, pattern, offset)) {
        ret = -EIO;
    }
    if (!qflag) {
        if (vflag) {
            dump_buffer(buf, offset, (int64_t)qiov.size);
        }
        print_report("read", t2 - t1, offset, (int64_t)qiov.size,
                     (int64_t)qiov.size, 1, Cflag);
    }
out:
    blk_iov_destroy(&qiov);
    io_free(s, buf);
    return ret;
}

/* ---- write, writev ---- */

static int write_f(struct io_session *s, int argc, char **argv)
{
    bool Cflag = false, qflag = s->quiet, Pflag = false, zflag = false;
    bool cflag = false, nflag = false;
    const char *source = NULL;
    unsigned flags = 0;
    int64_t offset, count;
    int c, pattern = 0xcd, ret;
    uint64_t t1, t2;
    uint8_t *buf = NULL;

    while ((c = getopt(argc, argv, "cCfnpP:qs:uz")) != -1) {
        switch (c) {
        case 'c':
            cflag = true;
            break;
        case 'C':
            Cflag = true;
            break;
        case 'f':
            flags |= BLK_REQ_FUA;
            break;
        case 'n':
            nflag = true;
            flags |= BLK_REQ_NO_FALLBACK;
            break;
        case 'p': /* ignored, as by qemu-io */
            break;
        case 'P':
            Pflag = true;
            if ((pattern = io_parse_pattern(optarg)) < 0) {
                return -EINVAL;
            }
            break;
        case 'q':
            qflag = true;
            break;
        case 's':
            source = optarg;
            break;
        case 'u':
            flags |= BLK_REQ_MAY_UNMAP;
            break;
        case 'z':
            zflag = true;
            break;
        default:
            return io_cmd_usage(&write_cmd);
        }
    }
    if (optind != argc - 2) {
        return io_cmd_usage(&write_cmd);
    }
    if ((flags & BLK_REQ_FUA) && cflag) {
        printf("-f and -b or -c cannot be specified at the same time\n");
        return -EINVAL;
    }
    if (nflag && !zflag) {
        printf("-n requires -z to be specified\n");
        return -EINVAL;
    }
    if ((flags & BLK_REQ_MAY_UNMAP) && !zflag) {
        printf("-u requires -z to be specified\n");
        return -EINVAL;
    }
    if (zflag + Pflag + !!source > 1) {
        printf("Only one of -z, -P, and -s can be specified at the same "
               "time\n");
        return -EINVAL;
    }
    if ((ret = parse_off_len(argv + optind, &offset, &count)) < 0) {
        return ret;
    }
    if (cflag && (offset % BLK_SECTOR_SIZE || count % BLK_SECTOR_SIZE)) {
        bool off = offset % BLK_SECTOR_SIZE;
        printf("%" PRId64 " is not a sector-aligned value for '%s'\n",
               off ? offset : count, off ? "offset" : "count");
        return -EINVAL;
    }
    if (s->discard_ignore) {
        flags &= ~BLK_REQ_MAY_UNMAP;
    }

    if (!zflag) {
        buf = source ? io_alloc_from_file(s, (size_t)count, source)
                     : io_alloc(s, (size_t)count, pattern);
        if (!buf) {
            return -EIO;
        }
    }
    t1 = now_ns();
    if (zflag) {
        ret =
            blk_pwrite_zeroes(s->bs, (uint64_t)offset, (uint64_t)count, flags);
    } else if (cflag) {
        ret = blk_pwrite_compressed(s->bs, (uint64_t)offset, (uint64_t)count,
                                    buf);
    } else {
        ret = blk_pwrite(s->bs, (uint64_t)offset, (uint64_t)count, buf, flags);
    }
    t2 = now_ns();
    if (ret < 0) {
        printf("write failed: %s\n", strerror(-ret));
        goto out;
    }
    ret = 0;
    if (!qflag) {
        print_report("wrote", t2 - t1, offset, count, count, 1, Cflag);
    }
out:
    io_free(s, buf);
    return ret;
}

static int writev_f(struct io_session *s, int argc, char **argv)
{
    bool Cflag = false, qflag = s->quiet;
    unsigned flags = 0;
    int c, pattern = 0xcd, ret;
    struct blk_iov qiov;
    int64_t offset;
    uint64_t t1, t2;
    uint8_t *buf;

    while ((c = getopt(argc, argv, "CfqP:")) != -1) {
        switch (c) {
        case 'C':
            Cflag = true;
            break;
        case 'f':
            flags |= BLK_REQ_FUA;
            break;
        case 'q':
            qflag = true;
            break;
        case 'P':
            if ((pattern = io_parse_pattern(optarg)) < 0) {
                return -EINVAL;
            }
            break;
        default:
            return io_cmd_usage(&writev_cmd);
        }
    }
    if (optind > argc - 2) {
        return io_cmd_usage(&writev_cmd);
    }
    if ((ret = io_parse_num(argv[optind], &offset)) < 0) {
        return ret;
    }
    optind++;
    buf = create_iovec(s, &qiov, &argv[optind], argc - optind, pattern);
    if (!buf) {
        return -EINVAL;
    }
    t1 = now_ns();
    ret = blk_pwritev(s->bs, (uint64_t)offset, qiov.size, &qiov, flags);
    t2 = now_ns();
    if (ret < 0) {
        printf("writev failed: %s\n", strerror(-ret));
        goto out;
    }
    ret = 0;
    if (!qflag) {
        print_report("wrote", t2 - t1, offset, (int64_t)qiov.size,
                     (int64_t)qiov.size, 1, Cflag);
    }
out:
    blk_iov_destroy(&qiov);
    io_free(s, buf);
    return ret;
}

/* ---- aio_read, aio_write, aio_flush ---- */

/* One asynchronous request; owned by its coroutine. */
struct aio_ctx {
    struct io_session *s;
    struct blk_iov qiov;
    uint8_t *buf; /* NULL for aio_write -z */
    int64_t offset;
    uint64_t zero_bytes; /* aio_write -z */
    uint64_t t1;         /* submission time */
    unsigned flags;      /* BLK_REQ_* */
    int pattern;
    bool write, qflag, vflag, Cflag, Pflag, zflag;
};

void io_aio_drain(struct io_session *s)
{
    if (s->aio_in_flight) {
        loop_run_until(loop_current(), &s->aio_idle);
    }
}

/* Run one aio request and report it the way qemu-io's callbacks do. */
static void coroutine_fn aio_entry(void *opaque)
{
    struct aio_ctx *ctx = opaque;
    struct io_session *s = ctx->s;
    int64_t size =
        ctx->zflag ? (int64_t)ctx->zero_bytes : (int64_t)ctx->qiov.size;
    uint64_t t2;
    int ret;

    if (ctx->write && ctx->zflag) {
        ret = blk_co_pwrite_zeroes(s->bs, (uint64_t)ctx->offset,
                                   ctx->zero_bytes, ctx->flags);
    } else if (ctx->write) {
        ret = blk_co_pwritev(s->bs, (uint64_t)ctx->offset, ctx->qiov.size,
                             &ctx->qiov, ctx->flags);
    } else {
        ret = blk_co_preadv(s->bs, (uint64_t)ctx->offset, ctx->qiov.size,
                            &ctx->qiov, 0);
    }
    t2 = now_ns();

    if (ret < 0) {
        printf("%s failed: %s\n", ctx->write ? "aio_write" : "readv",
               strerror(-ret));
        s->failures++;
        goto out;
    }
    if (ctx->Pflag &&
        !verify_pattern(ctx->buf, size, ctx->pattern, ctx->offset)) {
        s->failures++;
    }
    if (!ctx->qflag) {
        if (ctx->vflag) {
            dump_buffer(ctx->buf, ctx->offset, size);
        }
        print_report(ctx->write ? "wrote" : "read", t2 - ctx->t1, ctx->offset,
                     size, size, 1, ctx->Cflag);
    }
out:
    if (!ctx->zflag) {
        blk_iov_destroy(&ctx->qiov);
        io_free(s, ctx->buf);
    }
    free(ctx);
    if (--s->aio_in_flight == 0) {
        s->aio_idle = true;
    }
}

/* Start ctx's coroutine; it runs until its I/O is in flight and finishes
 * whenever the loop next turns (any later command, aio_flush, exit). */
static void aio_submit(struct aio_ctx *ctx)
{
    struct io_session *s = ctx->s;

    s->aio_in_flight++;
    s->aio_idle = false;
    ctx->t1 = now_ns();
    coroutine_enter(coroutine_create(aio_entry, ctx));
}

static int aio_rw_f(struct io_session *s, int argc, char **argv, bool write)
{
    const struct io_cmd *ct = write ? &aio_write_cmd : &aio_read_cmd;
    struct aio_ctx *ctx = xzalloc(sizeof(*ctx));
    int c, ret = -EINVAL;

    ctx->s = s;
    ctx->write = write;
    ctx->qflag = s->quiet;
    ctx->pattern = write ? 0xcd : 0;
    while ((c = getopt(argc, argv, write ? "CfqP:uz" : "CP:qv")) != -1) {
        switch (c) {
        case 'C':
            ctx->Cflag = true;
            break;
        case 'f':
            ctx->flags |= BLK_REQ_FUA;
            break;
        case 'P':
            ctx->Pflag = true;
            if ((ctx->pattern = io_parse_pattern(optarg)) < 0) {
                goto fail;
            }
            break;
        case 'q':
            ctx->qflag = true;
            break;
        case 'u':
            ctx->flags |= BLK_REQ_MAY_UNMAP;
            break;
        case 'v':
            ctx->vflag = true;
            break;
        case 'z':
            ctx->zflag = true;
            break;
        default:
            free(ctx);
            return io_cmd_usage(ct);
        }
    }
    if (optind > argc - 2) {
        free(ctx);
        return io_cmd_usage(ct);
    }
    if (ctx->zflag && optind != argc - 2) {
        printf("-z supports only a single length parameter\n");
        goto fail;
    }
    if ((ctx->flags & BLK_REQ_MAY_UNMAP) && !ctx->zflag) {
        printf("-u requires -z to be specified\n");
        goto fail;
    }
    if (ctx->zflag && ctx->Pflag) {
        printf("-z and -P cannot be specified at the same time\n");
        goto fail;
    }
    if (s->discard_ignore) {
        ctx->flags &= ~BLK_REQ_MAY_UNMAP;
    }
    if ((ret = io_parse_num(argv[optind], &ctx->offset)) < 0) {
        goto fail;
    }
    optind++;
    if (ctx->zflag) {
        int64_t count;
        if ((ret = io_parse_num(argv[optind], &count)) < 0) {
            goto fail;
        }
        ctx->zero_bytes = (uint64_t)count;
    } else {
        /* a write checks nothing; its pattern only fills the buffer */
        ctx->buf = create_iovec(s, &ctx->qiov, &argv[optind], argc - optind,
                                write ? ctx->pattern : 0xab);
        if (!ctx->buf) {
            ret = -EINVAL;
            goto fail;
        }
        if (write) {
            ctx->Pflag = false;
        }
    }
    aio_submit(ctx);
    return 0;

fail:
    free(ctx);
    return ret;
}

static int aio_read_f(struct io_session *s, int argc, char **argv)
{
    return aio_rw_f(s, argc, argv, false);
}

static int aio_write_f(struct io_session *s, int argc, char **argv)
{
    return aio_rw_f(s, argc, argv, true);
}

static int aio_flush_f(struct io_session *s, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    io_aio_drain(s);
    return 0;
}

/* ---- flush, discard ---- */

static int flush_f(struct io_session *s, int argc, char **argv)
{
    int ret;

    (void)argc;
    (void)argv;
    ret = blk_flush(s->bs);
    if (ret < 0) {
        /* qemu-io fails silently here; say why */
        printf("flush failed: %s\n", strerror(-ret));
    }
    return ret < 0 ? ret : 0;
}

static int discard_f(struct io_session *s, int argc, char **argv)
{
    bool Cflag = false, qflag = s->quiet;
    int64_t offset, bytes;
    uint64_t t1, t2;
    int c, ret;

    while ((c = getopt(argc, argv, "Cq")) != -1) {
        switch (c) {
        case 'C':
            Cflag = true;
            break;
        case 'q':
            qflag = true;
            break;
        default:
            return io_cmd_usage(&discard_cmd);
        }
    }
    if (optind != argc - 2) {
        return io_cmd_usage(&discard_cmd);
    }
    if ((ret = parse_off_len(argv + optind, &offset, &bytes)) < 0) {
        return ret;
    }
    t1 = now_ns();
    ret = s->discard_ignore
              ? 0
              : blk_discard(s->bs, (uint64_t)offset, (uint64_t)bytes);
    t2 = now_ns();
    if (ret < 0) {
        printf("discard failed: %s\n", strerror(-ret));
        return ret;
    }
    if (!qflag) {
        print_report("discard", t2 - t1, offset, bytes, bytes, 1, Cflag);
    }
    return 0;
}

/* ---- the table ---- */

static const struct io_cmd read_cmd = {
    .name = "read",
    .altname = "r",
    .fn = read_f,
    .argmin = 2,
    .argmax = -1,
    .args = "[-Cqv] [-P pattern [-s off] [-l len]] off len",
    .oneline = "reads a number of bytes at a specified offset",
    .help = "\n 'read -v 512 1k' - dumps 1 kilobyte read from 512 bytes "
            "into the file\n\n"
            " -C, -- report statistics in a machine parsable format\n"
            " -l, -- length for pattern verification (only with -P)\n"
            " -p, -- ignored, as by qemu-io\n"
            " -P, -- verify that every byte read is this pattern byte\n"
            " -q, -- quiet mode, do not show I/O statistics\n"
            " -s, -- start offset for pattern verification (only with -P)\n"
            " -v, -- dump buffer to standard output\n\n",
};

static const struct io_cmd readv_cmd = {
    .name = "readv",
    .fn = readv_f,
    .argmin = 2,
    .argmax = -1,
    .args = "[-Cqv] [-P pattern] off len [len..]",
    .oneline = "reads a number of bytes at a specified offset",
    .help = "\n 'readv -v 512 1k 1k' - dumps 2 kilobytes read from 512 "
            "bytes, into one\n buffer per length\n\n"
            " -C, -- report statistics in a machine parsable format\n"
            " -P, -- verify that every byte read is this pattern byte\n"
            " -q, -- quiet mode, do not show I/O statistics\n"
            " -v, -- dump buffer to standard output\n\n",
};

static const struct io_cmd write_cmd = {
    .name = "write",
    .altname = "w",
    .fn = write_f,
    .argmin = 2,
    .argmax = -1,
    .flags = IO_CMD_WRITE,
    .args = "[-cCfnquz] [-P pattern | -s source_file] off len",
    .oneline = "writes a number of bytes at a specified offset",
    .help = "\n 'write 512 1k' - writes 1 kilobyte of 0xcd at 512 bytes "
            "into the file\n\n"
            " -c, -- write compressed data with blk_write_compressed\n"
            " -C, -- report statistics in a machine parsable format\n"
            " -f, -- use Force Unit Access semantics\n"
            " -n, -- with -z, fail rather than write zeroes slowly\n"
            " -p, -- ignored, as by qemu-io\n"
            " -P, -- fill the buffer with this byte instead of 0xcd\n"
            " -q, -- quiet mode, do not show I/O statistics\n"
            " -s, -- fill the buffer with this file's contents, repeated\n"
            " -u, -- with -z, allow unmapping\n"
            " -z, -- write zeroes (efficiently where the image can)\n\n",
};

static const struct io_cmd writev_cmd = {
    .name = "writev",
    .fn = writev_f,
    .argmin = 2,
    .argmax = -1,
    .flags = IO_CMD_WRITE,
    .args = "[-Cfq] [-P pattern] off len [len..]",
    .oneline = "writes a number of bytes at a specified offset",
    .help = "\n 'writev 512 1k 1k' - writes 2 kilobytes of 0xcd at 512 "
            "bytes, from one\n buffer per length\n\n"
            " -C, -- report statistics in a machine parsable format\n"
            " -f, -- use Force Unit Access semantics\n"
            " -P, -- fill the buffers with this byte instead of 0xcd\n"
            " -q, -- quiet mode, do not show I/O statistics\n\n",
};

static const struct io_cmd aio_read_cmd = {
    .name = "aio_read",
    .fn = aio_read_f,
    .argmin = 2,
    .argmax = -1,
    .args = "[-Cqv] [-P pattern] off len [len..]",
    .oneline = "asynchronously reads a number of bytes",
    .help = "\n Like readv, but returns once the request is submitted: it "
            "completes\n while later commands run; aio_flush waits for all "
            "requests.  A failed\n or mismatching request still makes "
            "strata-io exit with status 1.\n\n"
            " -C, -- report statistics in a machine parsable format\n"
            " -P, -- verify that every byte read is this pattern byte\n"
            " -q, -- quiet mode, do not show I/O statistics\n"
            " -v, -- dump buffer to standard output\n\n",
};

static const struct io_cmd aio_write_cmd = {
    .name = "aio_write",
    .fn = aio_write_f,
    .argmin = 2,
    .argmax = -1,
    .flags = IO_CMD_WRITE,
    .args = "[-Cfquz] [-P pattern] off len [len..]",
    .oneline = "asynchronously writes a number of bytes",
    .help = "\n Like writev, but returns once the request is submitted; "
            "aio_flush waits\n for completion.  A failed request still "
            "makes strata-io exit with status 1.\n\n"
            " -C, -- report statistics in a machine parsable format\n"
            " -f, -- use Force Unit Access semantics\n"
            " -P, -- fill the buffers with this byte instead of 0xcd\n"
            " -q, -- quiet mode, do not show I/O statistics\n"
            " -u, -- with -z, allow unmapping\n"
            " -z, -- write zeroes (one length only)\n\n",
};

static const struct io_cmd discard_cmd = {
    .name = "discard",
    .altname = "d",
    .fn = discard_f,
    .argmin = 2,
    .argmax = -1,
    .flags = IO_CMD_WRITE,
    .args = "[-Cq] off len",
    .oneline = "discards a number of bytes at a specified offset",
    .help = "\n 'discard 512 1k' - discards 1 kilobyte from 512 bytes into "
            "the file\n\n"
            " -C, -- report statistics in a machine parsable format\n"
            " -q, -- quiet mode, do not show I/O statistics\n\n",
};

static const struct io_cmd aio_flush_cmd = {
    .name = "aio_flush",
    .fn = aio_flush_f,
    .oneline = "completes all outstanding aio requests",
};

static const struct io_cmd flush_cmd = {
    .name = "flush",
    .altname = "f",
    .fn = flush_f,
    .oneline = "flush all in-core file state to disk",
};

const struct io_cmd *const io_data_cmds[] = {
    &read_cmd,      &readv_cmd,     &write_cmd, &writev_cmd,  &aio_read_cmd,
    &aio_write_cmd, &aio_flush_cmd, &flush_cmd, &discard_cmd, NULL,
};
