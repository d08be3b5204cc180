/* strata-io: scripted I/O on an image, for tests and debugging, with
 * qemu-io's command line and commands:
 *
 *   strata-io -c 'write -P 0xab 0 64k' -c 'read -P 0xab 0 64k' disk.img
 *
 * This file holds the program (options, opening, the command loop, help)
 * and the commands about the session and the image as a whole; the
 * data-path commands are in io-cmds.c.  Unlike qemu-io, the exit status
 * is 1 whenever any command or asynchronous request failed. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block.h"
#include "img-common.h"
#include "io-cmds.h"
#include "loop.h"
#include "util.h"

const char *tool_name = "strata-io";

/* How to open an image: the command line's options, or `open`'s. */
struct open_args {
    const char *fmt;
    const char *cache; /* NULL: writethrough, as qemu-io */
    const char *aio;   /* file.aio, or NULL */
    bool image_opts, read_only, force_share;
    struct blk_opts *opts; /* `open -o`, or NULL */
};

/* ---- numbers, sizes, times ---- */

int io_parse_num(const char *s, int64_t *out)
{
    const char *p = s;
    char *end;
    uint64_t val, mul = 1;
    double frac = 0;
    bool hex, has_frac = false;
    int ret = -EINVAL;

    /* strtoull would accept a sign and blanks; qemu-io takes neither
     * (except a leading '+') */
    if (!*p || *p == '-' || isspace((unsigned char)*p)) {
        goto fail;
    }
    hex = p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
    if (hex && !isxdigit((unsigned char)p[2])) {
        goto fail;
    }
    errno = 0;
    val = strtoull(p, &end, hex ? 16 : 10);
    if (end == p) {
        goto fail;
    }
    if (errno == ERANGE) {
        ret = -ERANGE;
        goto fail;
    }
    if (*end == '.') {
        double scale = 0.1;
        if (hex) {
            goto fail;
        }
        for (end++; isdigit((unsigned char)*end); end++) {
            frac += (*end - '0') * scale;
            scale /= 10;
        }
        has_frac = true;
    }
    if (*end) {
        static const char units[] = "bkmgtpe";
        const char *u = strchr(units, tolower((unsigned char)*end));
        if (!u) {
            goto fail;
        }
        mul = 1ull << (10 * (u - units));
        end++;
    }
    if (*end || (has_frac && mul == 1)) {
        goto fail; /* trailing junk, or a fraction of a byte */
    }
    if (val > UINT64_MAX / mul) {
        ret = -ERANGE;
        goto fail;
    }
    val *= mul;
    if (has_frac) {
        uint64_t extra = (uint64_t)(frac * (double)mul);
        if (val > UINT64_MAX - extra) {
            ret = -ERANGE;
            goto fail;
        }
        val += extra;
    }
    if (val > INT64_MAX) {
        ret = -ERANGE;
        goto fail;
    }
    *out = (int64_t)val;
    return 0;

fail:
    if (ret == -ERANGE) {
        printf("Parsing error: argument too large -- %s\n", s);
    } else {
        printf("Parsing error: non-numeric argument, or extraneous/"
               "unrecognized suffix -- %s\n",
               s);
    }
    return ret;
}

int io_parse_pattern(const char *s)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 0);
    if (errno || v < 0 || v > 255 || *end) {
        printf("%s is not a valid pattern byte\n", s);
        return -1;
    }
    return (int)v;
}

void io_fmt_size(double value, char *buf, size_t len)
{
    static const char *const units[] = {" KiB", " MiB", " GiB",
                                        " TiB", " PiB", " EiB"};
    const char *suffix = " bytes";
    char *trim;
    int i;

    for (i = 5; i >= 0; i--) {
        double unit = (double)(1ull << (10 * (i + 1)));
        if (value >= unit) {
            suffix = units[i];
            snprintf(buf, len - 6, "%.3f", value / unit);
            break;
        }
    }
    if (i < 0) {
        snprintf(buf, len - 6, "%f", value);
    }
    /* "64.000" reads better as "64" */
    trim = strstr(buf, ".000");
    if (trim) {
        *trim = '\0';
    }
    strcat(buf, suffix);
}

/* ---- opening and closing ---- */

/* Open `name` into s->bs; prints "can't open device NAME: why" (as
 * qemu-io) on failure. */
static int session_open(struct io_session *s, const char *name,
                        const struct open_args *a)
{
    struct strata_error *err = NULL;
    struct blk_opts *extra = a->opts ? opts_clone(a->opts) : opts_new();
    unsigned flags = a->read_only ? 0 : BLK_O_RDWR;
    bool image_opts = a->image_opts;
    char *optstr = NULL;
    int ret;

    if (a->force_share) {
        flags |= BLK_O_FORCE_SHARE;
        if (!a->read_only) {
            ret = error_setg(&err, -EINVAL,
                             "force-share=on can only be "
                             "used with read-only images");
            goto fail;
        }
    }
    if (a->aio) {
        opts_set(extra, "file.aio", a->aio);
    }
    if (!name) {
        /* `open -o file.filename=...` without a path: the options are
         * the whole description of the image */
        name = optstr = opts_to_string(extra);
        image_opts = true;
        opts_free(extra);
        extra = opts_new();
    }
    ret = tool_open(&s->bs, name, a->fmt, image_opts,
                    a->cache ? a->cache : "writethrough", flags, s->quiet,
                    extra->n ? extra : NULL, &err);
    if (ret >= 0) {
        opts_free(extra);
        free(optstr);
        return 0;
    }
fail:
    s->bs = NULL;
    if (!err) {
        error_setg(&err, ret, "%s", strerror(-ret));
    }
    if (image_opts) {
        error_prepend(&err, "can't open: ");
    } else {
        error_prepend(&err, "can't open device %s: ", name);
    }
    tool_report(err, ret);
    opts_free(extra);
    free(optstr);
    return ret;
}

/* Wait for aio requests, flush a writable image (as qemu does on close)
 * and close it. */
static int session_close(struct io_session *s)
{
    int ret = 0;

    if (!s->bs) {
        return 0;
    }
    io_aio_drain(s);
    if (!s->bs->read_only) {
        ret = blk_flush(s->bs);
        if (ret < 0) {
            tool_error("flush on close failed: %s", strerror(-ret));
        }
    }
    blk_close(s->bs);
    s->bs = NULL;
    return ret < 0 ? ret : 0;
}

/* A cache mode as -t takes it; prints qemu-io's message when invalid. */
static bool valid_cache(const char *mode)
{
    unsigned flags;

    if (blk_parse_cache_mode(mode, &flags) < 0) {
        tool_error("Invalid cache option: %s", mode);
        return false;
    }
    return true;
}

static bool valid_aio(const char *mode)
{
    if (strcmp(mode, "threads") && strcmp(mode, "native") &&
        strcmp(mode, "io_uring")) {
        tool_error("Invalid aio option: %s", mode);
        return false;
    }
    return true;
}

/* -d: only "ignore" changes anything (discards become no-ops). */
static bool parse_discard(const char *mode, bool *ignore)
{
    if (!strcmp(mode, "ignore") || !strcmp(mode, "off")) {
        *ignore = true;
    } else if (!strcmp(mode, "unmap") || !strcmp(mode, "on")) {
        *ignore = false;
    } else {
        tool_error("Invalid discard option: %s", mode);
        return false;
    }
    return true;
}

/* ---- session commands ---- */

static const struct io_cmd open_cmd;

/* An option that the command line and `open` share: 1 when handled, 0
 * when c is not one of them, -1 after printing why arg is wrong. */
static int open_option(struct io_session *s, struct open_args *a, int c,
                       const char *arg)
{
    switch (c) {
    case 's':
    case 'C':
        tool_error("-%c (%s) is not supported", c,
                   c == 's' ? "snapshot" : "copy-on-read");
        return -1;
    case 'n':
        a->cache = "none";
        return 1;
    case 'r':
        a->read_only = true;
        return 1;
    case 'k':
        a->aio = "native";
        return 1;
    case 'U':
        a->force_share = true;
        return 1;
    case 't':
        a->cache = arg;
        return valid_cache(arg) ? 1 : -1;
    case 'i':
        a->aio = arg;
        return valid_aio(arg) ? 1 : -1;
    case 'd':
        return parse_discard(arg, &s->discard_ignore) ? 1 : -1;
    }
    return 0;
}

static int open_f(struct io_session *s, int argc, char **argv)
{
    struct open_args a = {0};
    struct strata_error *err = NULL;
    int c, ret = -EINVAL;

    while ((c = getopt(argc, argv, "snCrkUt:d:o:i:")) != -1) {
        int r = open_option(s, &a, c, optarg);
        if (r < 0) {
            goto out;
        } else if (r > 0) {
            continue;
        } else if (c != 'o') {
            ret = io_cmd_usage(&open_cmd);
            goto out;
        }
        if (!a.opts) {
            a.opts = opts_new();
        }
        if (opts_parse(a.opts, optarg, NULL, &err) < 0) {
            tool_report(err, -EINVAL);
            goto out;
        }
    }
    if (s->bs) {
        tool_error("file open already, try 'help close'");
        ret = -EBUSY;
    } else if (optind == argc - 1) {
        ret = session_open(s, argv[optind], &a);
    } else if (optind == argc && a.opts) {
        ret = session_open(s, NULL, &a);
    } else {
        ret = io_cmd_usage(&open_cmd);
    }
out:
    opts_free(a.opts);
    return ret;
}

static int close_f(struct io_session *s, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return session_close(s);
}

static int quit_f(struct io_session *s, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    s->quit = true;
    return 0;
}

static void sleep_done(void *opaque)
{
    *(bool *)opaque = true;
}

/* Sleep with the loop running, so aio requests complete meanwhile. */
static int sleep_f(struct io_session *s, int argc, char **argv)
{
    struct loop *l = loop_current();
    struct loop_timer *t;
    bool expired = false;
    char *end;
    long ms;

    (void)s;
    (void)argc;
    errno = 0;
    ms = strtol(argv[1], &end, 0);
    if (errno || ms < 0 || *end) {
        printf("%s is not a valid number\n", argv[1]);
        return -EINVAL;
    }
    t = loop_timer_new(l, sleep_done, &expired);
    loop_timer_mod(t, clock_ns() + (uint64_t)ms * 1000000ull);
    loop_run_until(l, &expired);
    loop_timer_free(t);
    return 0;
}

static int abort_f(struct io_session *s, int argc, char **argv)
{
    (void)s;
    (void)argc;
    (void)argv;
    abort();
}

static int sigraise_f(struct io_session *s, int argc, char **argv)
{
    int64_t sig;
    int ret;

    (void)s;
    (void)argc;
    if ((ret = io_parse_num(argv[1], &sig)) < 0) {
        return ret;
    }
    if (sig > NSIG) {
        printf("signal argument '%s' is too large to be a valid signal\n",
               argv[1]);
        return -EINVAL;
    }
    fflush(stdout);
    fflush(stderr);
    raise((int)sig);
    return 0;
}

/* ---- image commands ---- */

static const struct io_cmd truncate_cmd;

static int truncate_f(struct io_session *s, int argc, char **argv)
{
    enum blk_prealloc prealloc = BLK_PREALLOC_OFF;
    struct strata_error *err = NULL;
    int64_t size;
    int c, ret;

    while ((c = getopt(argc, argv, "m:")) != -1) {
        switch (c) {
        case 'm':
            if (blk_parse_prealloc(optarg, &prealloc) < 0) {
                tool_error("Invalid preallocation mode '%s'", optarg);
                return -EINVAL;
            }
            break;
        default:
            return io_cmd_usage(&truncate_cmd);
        }
    }
    if (optind != argc - 1) {
        return io_cmd_usage(&truncate_cmd);
    }
    if ((ret = io_parse_num(argv[optind], &size)) < 0) {
        return ret;
    }
    ret = blk_truncate(s->bs, (uint64_t)size, false, prealloc, &err);
    if (ret < 0) {
        tool_report(err, ret);
        return ret;
    }
    return 0;
}

/* ---- length, info, map, alloc ---- */

static int length_f(struct io_session *s, int argc, char **argv)
{
    char buf[64];

    (void)argc;
    (void)argv;
    io_fmt_size((double)s->bs->size, buf, sizeof(buf));
    printf("%s\n", buf);
    return 0;
}

/* Format-specific information as qemu prints it: "    key: value", a
 * dash in a key read as a space, nested values indented one more level. */
static void dump_json(const struct json *j, int indent);

static bool json_composite(const struct json *j)
{
    return j->type == JSON_OBJECT || j->type == JSON_ARRAY;
}

static void dump_json_scalar(const struct json *j)
{
    switch (j->type) {
    case JSON_NULL:
        printf("null");
        break;
    case JSON_BOOL:
        printf("%s", j->b ? "true" : "false");
        break;
    case JSON_INT:
        printf("%" PRId64, j->i);
        break;
    case JSON_UINT:
        printf("%" PRIu64, j->u);
        break;
    case JSON_DOUBLE:
        printf("%f", j->d);
        break;
    case JSON_STRING:
        printf("%s", j->s);
        break;
    default:
        break;
    }
}

static void dump_json(const struct json *j, int indent)
{
    for (int i = 0; i < j->c.n; i++) {
        const struct json *v = j->c.items[i];
        bool comp = json_composite(v);

        printf("%*s", indent * 4, "");
        if (j->type == JSON_OBJECT) {
            for (const char *k = j->c.keys[i]; *k; k++) {
                putchar(*k == '-' ? ' ' : *k);
            }
            putchar(':');
        } else {
            printf("[%d]:", i);
        }
        if (comp) {
            putchar('\n');
            dump_json(v, indent + 1);
        } else {
            putchar(' ');
            dump_json_scalar(v);
            putchar('\n');
        }
    }
}

static int info_f(struct io_session *s, int argc, char **argv)
{
    struct blk_info info = {0};
    char s1[64], s2[64];
    int ret;

    (void)argc;
    (void)argv;
    printf("format name: %s\n", s->bs->drv->name);
    ret = blk_get_info(s->bs, &info);
    if (ret < 0 && ret != -ENOTSUP) {
        printf("get_info failed: %s\n", strerror(-ret));
        return ret;
    }
    io_fmt_size((double)info.cluster_size, s1, sizeof(s1));
    io_fmt_size(0, s2, sizeof(s2)); /* no VM state in strata images */
    printf("cluster size: %s\n", s1);
    printf("vm state offset: %s\n", s2);
    if (info.format_specific) {
        struct json *data = json_get(info.format_specific, "data");
        if (data && json_composite(data)) {
            printf("Format specific information:\n");
            dump_json(data, 1);
        }
    }
    blk_info_release(&info);
    return 0;
}

/* Allocation state of [offset, offset+bytes) in this layer only (as
 * qemu's bdrv_is_allocated): 1 or 0 for the first *pnum bytes. */
static int is_allocated(struct io_session *s, int64_t offset, int64_t bytes,
                        int64_t *pnum)
{
    uint64_t n = 0;
    int ret = blk_block_status(s->bs, (uint64_t)offset, (uint64_t)bytes, &n,
                               NULL, NULL);

    *pnum = (int64_t)n;
    return ret < 0 ? ret : !!(ret & BLK_STATUS_ALLOCATED);
}

/* Like is_allocated, but joining every following range in the same state. */
static int map_is_allocated(struct io_session *s, int64_t offset, int64_t bytes,
                            int64_t *pnum)
{
    int64_t num;
    int first = is_allocated(s, offset, bytes, &num);

    if (first < 0) {
        return first;
    }
    *pnum = num;
    while (num > 0 && bytes > num) {
        offset += num;
        bytes -= num;
        if (is_allocated(s, offset, bytes, &num) != first || num == 0) {
            break;
        }
        *pnum += num;
    }
    return first;
}

static int map_f(struct io_session *s, int argc, char **argv)
{
    int64_t offset = 0, bytes = (int64_t)s->bs->size, num;
    char s1[64], s2[64];
    int ret;

    (void)argc;
    (void)argv;
    while (bytes) {
        ret = map_is_allocated(s, offset, bytes, &num);
        if (ret < 0) {
            tool_error("Failed to get allocation status: %s", strerror(-ret));
            return ret;
        } else if (!num) {
            tool_error("Unexpected end of image");
            return -EIO;
        }
        io_fmt_size((double)num, s1, sizeof(s1));
        io_fmt_size((double)offset, s2, sizeof(s2));
        printf("%s (0x%" PRIx64 ") bytes %s at offset %s (0x%" PRIx64 ")\n", s1,
               (uint64_t)num, ret ? "    allocated" : "not allocated", s2,
               (uint64_t)offset);
        offset += num;
        bytes -= num;
    }
    return 0;
}

static int alloc_f(struct io_session *s, int argc, char **argv)
{
    int64_t offset, count = BLK_SECTOR_SIZE, remaining, num, sum = 0;
    int64_t start;
    char s1[64];
    int ret;

    if ((ret = io_parse_num(argv[1], &offset)) < 0) {
        return ret;
    }
    if (argc == 3) {
        if ((ret = io_parse_num(argv[2], &count)) < 0) {
            return ret;
        }
        if (count > (int64_t)0x7fffffff * BLK_SECTOR_SIZE) {
            printf("length argument cannot exceed %" PRId64 ", given %s\n",
                   (int64_t)0x7fffffff * BLK_SECTOR_SIZE, argv[2]);
            return -EINVAL;
        }
    }
    start = offset;
    remaining = count;
    while (remaining) {
        ret = is_allocated(s, offset, remaining, &num);
        if (ret < 0) {
            printf("is_allocated failed: %s\n", strerror(-ret));
            return ret;
        }
        if (num == 0) { /* past the end: count only what exists */
            count -= remaining;
            break;
        }
        offset += num;
        remaining -= num;
        if (ret) {
            sum += num;
        }
    }
    io_fmt_size((double)start, s1, sizeof(s1));
    printf("%" PRId64 "/%" PRId64 " bytes allocated at offset %s\n", sum, count,
           s1);
    return 0;
}

/* ---- the command table, help and dispatch ---- */

static const struct io_cmd open_cmd = {
    .name = "open",
    .altname = "o",
    .fn = open_f,
    .argmin = 1,
    .argmax = -1,
    .flags = IO_CMD_NOFILE,
    .args = "[-rnkU] [-t cache] [-i aio] [-d discard] [-o options] [path]",
    .oneline = "open the file specified by path",
    .help = "\n 'open -n -o driver=raw /tmp/data' - opens raw data file "
            "read-write, uncached\n\n"
            " -r, -- open file read-only\n"
            " -n, -- disable host cache, short for -t none\n"
            " -U, -- force shared permissions (with -r)\n"
            " -k, -- use Linux native AIO, short for -i native\n"
            " -i, -- use AIO mode (threads, native or io_uring)\n"
            " -t, -- use the given cache mode for the image\n"
            " -d, -- discard mode: ignore makes discards no-ops\n"
            " -o, -- options to be given to the block driver\n\n",
};

static const struct io_cmd truncate_cmd = {
    .name = "truncate",
    .altname = "t",
    .fn = truncate_f,
    .argmin = 1,
    .argmax = 3,
    .flags = IO_CMD_WRITE,
    .args = "[-m prealloc_mode] off",
    .oneline = "truncates the current file at the given offset",
};

static const struct io_cmd help_cmd;

static const struct io_cmd *const session_cmds[] = {
    &help_cmd,
    &(const struct io_cmd){
        .name = "quit",
        .altname = "q",
        .fn = quit_f,
        .flags = IO_CMD_NOFILE,
        .oneline = "exit the program",
    },
    &open_cmd,
    &(const struct io_cmd){
        .name = "close",
        .altname = "c",
        .fn = close_f,
        .oneline = "close the current open file",
    },
    &(const struct io_cmd){
        .name = "sleep",
        .fn = sleep_f,
        .argmin = 1,
        .argmax = 1,
        .flags = IO_CMD_NOFILE,
        .args = "ms",
        .oneline = "waits for the given value in milliseconds",
    },
    &(const struct io_cmd){
        .name = "abort",
        .fn = abort_f,
        .flags = IO_CMD_NOFILE,
        .oneline = "simulate a program crash using abort(3)",
    },
    &(const struct io_cmd){
        .name = "sigraise",
        .fn = sigraise_f,
        .argmin = 1,
        .argmax = 1,
        .flags = IO_CMD_NOFILE,
        .args = "signal",
        .oneline = "raises a signal",
    },
    &truncate_cmd,
    &(const struct io_cmd){
        .name = "length",
        .altname = "l",
        .fn = length_f,
        .oneline = "gets the length of the current file",
    },
    &(const struct io_cmd){
        .name = "info",
        .altname = "i",
        .fn = info_f,
        .oneline = "prints information about the current file",
    },
    &(const struct io_cmd){
        .name = "map",
        .fn = map_f,
        .args = "",
        .oneline = "prints the allocated areas of a file",
    },
    &(const struct io_cmd){
        .name = "alloc",
        .altname = "a",
        .fn = alloc_f,
        .argmin = 1,
        .argmax = 2,
        .args = "offset [count]",
        .oneline = "checks if offset is allocated in the file",
    },
    NULL,
};

static const struct io_cmd *find_command(const char *name)
{
    const struct io_cmd *const *tables[] = {session_cmds, io_data_cmds};

    for (size_t t = 0; t < ARRAY_SIZE(tables); t++) {
        for (const struct io_cmd *const *c = tables[t]; *c; c++) {
            if (!strcmp((*c)->name, name) ||
                ((*c)->altname && !strcmp((*c)->altname, name))) {
                return *c;
            }
        }
    }
    return NULL;
}

int io_cmd_usage(const struct io_cmd *ct)
{
    printf("%s %s -- %s\n", ct->name, ct->args ? ct->args : "", ct->oneline);
    return -EINVAL;
}

static void help_oneline(const char *name, const struct io_cmd *ct)
{
    printf("%s ", name);
    if (ct->args) {
        printf("%s ", ct->args);
    }
    printf("-- %s\n", ct->oneline);
}

static int cmp_cmd(const void *a, const void *b)
{
    return strcmp((*(const struct io_cmd *const *)a)->name,
                  (*(const struct io_cmd *const *)b)->name);
}

static int help_f(struct io_session *s, int argc, char **argv)
{
    const struct io_cmd *all[64];
    size_t n = 0;

    (void)s;
    if (argc == 2) {
        const struct io_cmd *ct = find_command(argv[1]);
        if (!ct) {
            printf("command %s not found\n", argv[1]);
            return -EINVAL;
        }
        help_oneline(argv[1], ct);
        if (ct->help) {
            fputs(ct->help, stdout);
        }
        return 0;
    }
    for (const struct io_cmd *const *c = session_cmds; *c; c++) {
        all[n++] = *c;
    }
    for (const struct io_cmd *const *c = io_data_cmds; *c; c++) {
        all[n++] = *c;
    }
    qsort(all, n, sizeof(all[0]), cmp_cmd);
    for (size_t i = 0; i < n; i++) {
        help_oneline(all[i]->name, all[i]);
    }
    printf("\nUse 'help commandname' for extended help.\n");
    return 0;
}

static const struct io_cmd help_cmd = {
    .name = "help",
    .altname = "?",
    .fn = help_f,
    .argmax = 1,
    .flags = IO_CMD_NOFILE,
    .args = "[command]",
    .oneline = "help for one or all commands",
};

/* Split a command line at blanks and run it; 0 or a negative errno. */
static int run_command(struct io_session *s, const char *line)
{
    char *copy = xstrdup(line), *save = NULL, *tok;
    char **argv = xmalloc(sizeof(*argv) * (strlen(line) / 2 + 2));
    const struct io_cmd *ct;
    int argc = 0, ret = 0;

    for (tok = strtok_r(copy, " \t\r\n", &save); tok;
         tok = strtok_r(NULL, " \t\r\n", &save)) {
        argv[argc++] = tok;
    }
    argv[argc] = NULL;
    if (argc == 0) {
        goto out;
    }
    ct = find_command(argv[0]);
    ret = -EINVAL;
    if (!ct) {
        fprintf(stderr, "command \"%s\" not found\n", argv[0]);
    } else if (!(ct->flags & IO_CMD_NOFILE) && !s->bs) {
        fprintf(stderr, "no file open, try 'help open'\n");
    } else if (argc - 1 < ct->argmin ||
               (ct->argmax != -1 && argc - 1 > ct->argmax)) {
        fprintf(stderr, "bad argument count %d to %s, expected ", argc - 1,
                argv[0]);
        if (ct->argmax == -1) {
            fprintf(stderr, "at least %d arguments\n", ct->argmin);
        } else if (ct->argmin == ct->argmax) {
            fprintf(stderr, "%d arguments\n", ct->argmin);
        } else {
            fprintf(stderr, "between %d and %d arguments\n", ct->argmin,
                    ct->argmax);
        }
    } else if ((ct->flags & IO_CMD_WRITE) && s->bs->read_only) {
        tool_error("Block node is read-only");
        ret = -EACCES;
    } else {
        optind = 0; /* restart getopt for the command's own options */
        ret = ct->fn(s, argc, argv);
    }
out:
    free(argv);
    free(copy);
    return ret;
}

/* ---- interactive input ---- */

struct line_reader {
    char *buf;
    size_t len, cap;
    bool eof;
    bool no_poll; /* stdin cannot be watched by the loop (a regular file) */
};

static void stdin_ready(void *opaque)
{
    *(bool *)opaque = true;
}

/* Wait for input with the loop running, so that aio requests still in
 * flight complete (and report) while strata-io waits at its prompt. */
static void wait_stdin(struct io_session *s, struct line_reader *r)
{
    struct loop *l = loop_current();
    bool ready = false;

    if (!s->aio_in_flight || r->no_poll) {
        return;
    }
    if (loop_set_fd_handler(l, STDIN_FILENO, stdin_ready, NULL, &ready) < 0) {
        r->no_poll = true;
        return;
    }
    loop_run_until(l, &ready);
    loop_set_fd_handler(l, STDIN_FILENO, NULL, NULL, NULL);
}

/* The next line of stdin without its newline (caller frees), NULL at
 * the end. */
static char *read_line(struct io_session *s, struct line_reader *r)
{
    for (;;) {
        char *nl = r->len ? memchr(r->buf, '\n', r->len) : NULL;
        char *line;
        ssize_t n;

        if (nl || (r->eof && r->len)) {
            size_t len = nl ? (size_t)(nl - r->buf) : r->len;
            size_t used = nl ? len + 1 : len;
            line = xmalloc(len + 1);
            memcpy(line, r->buf, len);
            line[len] = '\0';
            memmove(r->buf, r->buf + used, r->len - used);
            r->len -= used;
            return line;
        }
        if (r->eof) {
            return NULL;
        }
        if (r->cap - r->len < 4096) {
            r->cap = r->cap ? r->cap * 2 : 8192;
            r->buf = xrealloc(r->buf, r->cap);
        }
        wait_stdin(s, r);
        n = read(STDIN_FILENO, r->buf + r->len, r->cap - r->len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (n <= 0) {
            r->eof = true;
        } else {
            r->len += (size_t)n;
        }
    }
}

static void command_loop(struct io_session *s)
{
    struct line_reader r = {0};
    char *line;

    while (!s->quit) {
        printf("%s> ", tool_name);
        fflush(stdout);
        line = read_line(s, &r);
        if (!line) {
            break;
        }
        if (run_command(s, line) < 0) {
            s->failures++;
        }
        free(line);
    }
    free(r.buf);
}

/* ---- main ---- */

static void usage(FILE *f)
{
    fprintf(
        f,
        "Usage: %s [OPTIONS]... [-c STRING]... [file]\n"
        "Scripted I/O on a disk image, for tests and debugging (as qemu-io)\n"
        "\n"
        "  --image-opts         treat file as option string\n"
        "  -c, --cmd STRING     execute command with its arguments\n"
        "                       from the given string\n"
        "  -f, --format FMT     specifies the block driver to use\n"
        "  -r, --read-only      export read-only\n"
        "  -n, --nocache        disable host cache, short for -t none\n"
        "  -m, --misalign       misalign allocations for O_DIRECT\n"
        "  -k, --native-aio     use kernel AIO implementation, short for -i "
        "native\n"
        "  -i, --aio=MODE       use AIO mode (threads, native or io_uring)\n"
        "  -t, --cache=MODE     use the given cache mode for the image\n"
        "  -d, --discard=MODE   use the given discard mode for the image\n"
        "  -T, --trace ARG      accepted for compatibility; ignored\n"
        "  -U, --force-share    force shared permissions\n"
        "  -q, --quiet          no I/O statistics from any command\n"
        "  -h, --help           display this help and exit\n"
        "  -V, --version        output version information and exit\n"
        "\n"
        "See '%s -c help' for information on available commands.\n"
        "Exit status: 0 when every command succeeded, 1 otherwise.\n",
        tool_name, tool_name);
}

enum { OPT_IMAGE_OPTS = 256, OPT_OBJECT };

int main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"cmd", required_argument, NULL, 'c'},
        {"format", required_argument, NULL, 'f'},
        {"read-only", no_argument, NULL, 'r'},
        {"snapshot", no_argument, NULL, 's'},
        {"nocache", no_argument, NULL, 'n'},
        {"copy-on-read", no_argument, NULL, 'C'},
        {"misalign", no_argument, NULL, 'm'},
        {"native-aio", no_argument, NULL, 'k'},
        {"aio", required_argument, NULL, 'i'},
        {"cache", required_argument, NULL, 't'},
        {"discard", required_argument, NULL, 'd'},
        {"trace", required_argument, NULL, 'T'},
        {"force-share", no_argument, NULL, 'U'},
        {"quiet", no_argument, NULL, 'q'},
        {"image-opts", no_argument, NULL, OPT_IMAGE_OPTS},
        {"object", required_argument, NULL, OPT_OBJECT},
        {NULL, 0, NULL, 0},
    };
    struct io_session s = {.aio_idle = true};
    struct open_args a = {0};
    static char **cmds; /* static: still reachable on early exits */
    int ncmds = 0, c;

    /* results and reports interleave with stderr in qemu-io's order */
    setvbuf(stdout, NULL, _IOLBF, 0);
    cmds = xmalloc(sizeof(*cmds) * (size_t)argc);
    argv[0] = (char *)tool_name; /* getopt's messages name the program */
    while ((c = getopt_long(argc, argv, "hVc:d:f:rsnCmki:t:T:Uq", long_opts,
                            NULL)) != -1) {
        int r = open_option(&s, &a, c, optarg);
        if (r < 0) {
            return 1;
        } else if (r > 0) {
            continue;
        }
        switch (c) {
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("%s version %s\n", tool_name, STRATA_VERSION_STRING);
            return 0;
        case 'c':
            cmds[ncmds++] = optarg;
            break;
        case 'f':
            a.fmt = optarg;
            break;
        case 'm':
            s.misalign = true;
            break;
        case 'T':
            tool_error("warning: tracing is not supported; -T ignored");
            break;
        case 'q':
            s.quiet = true;
            break;
        case OPT_IMAGE_OPTS:
            a.image_opts = true;
            break;
        case OPT_OBJECT:
            if (tool_object_add(optarg) < 0) {
                return 1;
            }
            break;
        default:
            fprintf(stderr, "Try '%s --help' for more information.\n",
                    tool_name);
            return 1;
        }
    }
    if (a.image_opts && a.fmt) {
        tool_error("--image-opts and -f are mutually exclusive");
        return 1;
    }
    if (optind < argc - 1) {
        tool_error("extra argument '%s'", argv[optind + 1]);
        fprintf(stderr, "Try '%s --help' for more information.\n", tool_name);
        return 1;
    }
    if (optind == argc - 1 && session_open(&s, argv[optind], &a) < 0) {
        return 1;
    }

    if (ncmds) {
        for (int i = 0; i < ncmds && !s.quit; i++) {
            if (run_command(&s, cmds[i]) < 0) {
                s.failures++;
            }
        }
    } else {
        command_loop(&s);
    }
    if (session_close(&s) < 0) {
        s.failures++;
    }
    free(cmds);
    return s.failures ? 1 : 0;
}
