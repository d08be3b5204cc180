/* strata-img bench: time a run of many reads or writes, as qemu-img bench
 * does: -c requests of -s bytes, -d of them in flight at once (one
 * coroutine each), starting at -o and moving by -S, wrapping inside the
 * image; -w writes the --pattern byte, with a flush every
 * --flush-interval requests (draining first unless --no-drain). */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "img-cmds.h"
#include "loop.h"
#include "util.h"

struct bench {
    struct blk_node *bs;
    uint64_t image_size;
    bool write;
    int64_t bufsize, step;
    int depth;
    int count;          /* requests to send */
    int flush_interval; /* 0 = no flushes */
    bool drain_on_flush;
    uint8_t *buf;       /* shared by every request, as in qemu-img */

    int issued, in_flight, flushes_in_flight;
    uint64_t offset;    /* of the next request */
    struct co_queue wait; /* the issuer, waiting for a free slot */
    int ret;
    bool done;
};

struct bench_req {
    struct bench *b;
    uint64_t offset;
};

/* One request; wakes the issuer when done. */
static void coroutine_fn bench_co_req(void *opaque)
{
    struct bench_req *r = opaque;
    struct bench *b = r->b;
    int ret;

    ret = b->write ? blk_co_pwrite(b->bs, r->offset, b->bufsize, b->buf, 0)
                   : blk_co_pread(b->bs, r->offset, b->bufsize, b->buf, 0);
    if (ret < 0 && b->ret == 0) {
        tool_error("Failed request: %s", strerror(-ret));
        b->ret = ret;
    }
    free(r);
    b->in_flight--;
    co_queue_next(&b->wait);
}

/* A flush that nobody waits for (--no-drain). */
static void coroutine_fn bench_co_flush(void *opaque)
{
    struct bench *b = opaque;
    int ret = blk_co_flush(b->bs);

    if (ret < 0 && b->ret == 0) {
        tool_error("Failed flush request: %s", strerror(-ret));
        b->ret = ret;
    }
    b->flushes_in_flight--;
    co_queue_next(&b->wait);
}

/* Flush when the number of requests left to send is a multiple of the
 * interval, as qemu-img's bench_cb() decides it. */
static void coroutine_fn bench_maybe_flush(struct bench *b)
{
    int ret;

    if (!b->flush_interval || b->issued == 0 ||
        (b->count - b->issued) % b->flush_interval != 0) {
        return;
    }
    if (!b->drain_on_flush) {
        b->flushes_in_flight++;
        coroutine_enter(coroutine_create(bench_co_flush, b));
        return;
    }
    while (b->in_flight > 0) {
        co_queue_wait(&b->wait);
    }
    ret = blk_co_flush(b->bs);
    if (ret < 0 && b->ret == 0) {
        tool_error("Failed flush request: %s", strerror(-ret));
        b->ret = ret;
    }
}

/* The issuer: keep `depth` requests in flight until all were sent. */
static void coroutine_fn bench_co_main(void *opaque)
{
    struct bench *b = opaque;

    while (b->issued < b->count && b->ret == 0) {
        struct bench_req *r;

        while (b->in_flight >= b->depth) {
            co_queue_wait(&b->wait);
        }
        if (b->ret) {
            break;
        }
        r = xmalloc(sizeof(*r));
        r->b = b;
        r->offset = b->offset;
        b->offset += b->step;
        if (b->image_size <= (uint64_t)b->bufsize) {
            b->offset = 0;
        } else {
            b->offset %= b->image_size - b->bufsize;
        }
        b->in_flight++;
        b->issued++;
        coroutine_enter(coroutine_create(bench_co_req, r));
        if (b->ret == 0) {
            bench_maybe_flush(b);
        }
    }
    while (b->in_flight > 0 || b->flushes_in_flight > 0) {
        co_queue_wait(&b->wait);
    }
    b->done = true;
}

/* A whole number in [0, max] for -c, -d, --pattern, --flush-interval
 * (qemu_strtoul semantics: decimal, 0x hex or 0 octal; no sign). */
static int parse_count(const char *arg, unsigned long max, int *out)
{
    unsigned long long v;
    char *end;

    errno = 0;
    while (*arg == ' ' || *arg == '\t') {
        arg++;
    }
    if (*arg == '-') {
        return -1;
    }
    v = strtoull(arg, &end, 0);
    if (errno || end == arg || *end || v > max) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

int img_bench(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"flush-interval", required_argument, NULL, IMG_OPT_FLUSH_INTERVAL},
        {"image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS},
        {"pattern", required_argument, NULL, IMG_OPT_PATTERN},
        {"no-drain", no_argument, NULL, IMG_OPT_NO_DRAIN},
        {"force-share", no_argument, NULL, 'U'},
        {NULL, 0, NULL, 0},
    };
    struct bench b = {.count = 75000, .depth = 64, .bufsize = 4096,
                      .drain_on_flush = true};
    struct img_std_opts o = {0};
    const char *cache = NULL, *aio = NULL, *filename;
    struct strata_error *err = NULL;
    struct blk_opts *extra = NULL;
    int64_t offset = 0, step = 0;
    int pattern = 0, c, ret;
    unsigned flags = 0, cache_flags;
    struct timeval t1, t2;

    while ((c = img_getopt(argc, argv, ":hc:d:f:ni:o:qs:S:t:wU",
                           longopts)) != -1) {
        switch (c) {
        case 'c':
            if (parse_count(optarg, INT_MAX, &b.count) < 0) {
                tool_error("Invalid request count specified");
                return 1;
            }
            break;
        case 'd':
            /* qemu-img 7.2 accepts 0 and then never finishes */
            if (parse_count(optarg, INT_MAX, &b.depth) < 0 || !b.depth) {
                tool_error("Invalid queue depth specified");
                return 1;
            }
            break;
        case 'n':
            aio = "native";
            break;
        case 'i':
            if (strcmp(optarg, "threads") && strcmp(optarg, "native") &&
                strcmp(optarg, "io_uring")) {
                tool_error("Invalid aio option: %s", optarg);
                return 1;
            }
            aio = optarg;
            break;
        case 'o':
            if (tool_cvtnum("offset", optarg, 0, INT64_MAX, &offset) < 0) {
                return 1;
            }
            break;
        case 'q':
            /* as in qemu-img 7.2, the report is printed all the same */
            break;
        case 's':
            if (tool_cvtnum("buffer size", optarg, 0, INT_MAX,
                            &b.bufsize) < 0) {
                return 1;
            }
            break;
        case 'S':
            if (tool_cvtnum("step_size", optarg, 0, INT_MAX, &step) < 0) {
                return 1;
            }
            break;
        case 't':
            cache_flags = 0;
            if (blk_parse_cache_mode(optarg, &cache_flags) < 0) {
                tool_error("Invalid cache mode");
                return 1;
            }
            cache = optarg;
            break;
        case 'w':
            b.write = true;
            flags |= BLK_O_RDWR;
            break;
        case IMG_OPT_PATTERN:
            if (parse_count(optarg, 0xff, &pattern) < 0) {
                tool_error("Invalid pattern byte specified");
                return 1;
            }
            break;
        case IMG_OPT_FLUSH_INTERVAL:
            if (parse_count(optarg, INT_MAX, &b.flush_interval) < 0) {
                tool_error("Invalid flush interval specified");
                return 1;
            }
            break;
        case IMG_OPT_NO_DRAIN:
            b.drain_on_flush = false;
            break;
        default:
            if (img_std_opt(&o, c, optarg) < 0) {
                return 1;
            }
        }
    }
    filename = img_one_filename(argc, argv);
    if (o.force_share) {
        flags |= BLK_O_FORCE_SHARE;
    }

    if (!b.write && b.flush_interval) {
        tool_error("--flush-interval is only available in write tests");
        return 1;
    }
    if (b.flush_interval && b.flush_interval < b.depth) {
        tool_error("Flush interval can't be smaller than depth");
        return 1;
    }
    if (o.image_opts && o.fmt) {
        tool_error("--image-opts and --format are mutually exclusive");
        return 1;
    }

    if (aio) {
        extra = opts_new();
        opts_set(extra, "file.aio", aio);
    }
    /* qemu-img's -q does not silence the probing warning either */
    ret = tool_open(&b.bs, filename, o.fmt, o.image_opts, cache, flags, false,
                    extra, &err);
    opts_free(extra);
    if (ret < 0) {
        tool_error("Could not open '%s': %s", filename, error_msg(err, ret));
        strata_error_free(err);
        return 1;
    }

    b.image_size = b.bs->size;
    b.step = step ? step : b.bufsize;
    b.offset = (uint64_t)offset;
    printf("Sending %d %s requests, %d bytes each, %d in parallel "
           "(starting at offset %lld, step size %d)\n",
           b.count, b.write ? "write" : "read", (int)b.bufsize, b.depth,
           (long long)offset, (int)b.step);
    if (b.flush_interval) {
        printf("Sending flush every %d requests\n", b.flush_interval);
    }
    fflush(stdout);

    b.buf = blk_alloc_buf(b.bs, b.bufsize ? b.bufsize : 1);
    memset(b.buf, pattern, b.bufsize);
    co_queue_init(&b.wait);

    gettimeofday(&t1, NULL);
    coroutine_enter(coroutine_create(bench_co_main, &b));
    loop_run_until(loop_current(), &b.done);
    gettimeofday(&t2, NULL);

    if (b.ret == 0) {
        printf("Run completed in %3.3f seconds.\n",
               (double)(t2.tv_sec - t1.tv_sec) +
                   (double)(t2.tv_usec - t1.tv_usec) / 1000000);
    }
    free(b.buf);
    blk_close(b.bs);
    return b.ret ? 1 : 0;
}
