/* strata-img dd: copy (part of) an image into a new image with dd-style
 * operands, with qemu-img dd's semantics: the output is (re)created with
 * the size that will be copied, count limits the input read and skip is
 * counted inside it, and a skip past the end makes an empty image. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img-cmds.h"
#include "util.h"

enum {
    DD_IF = 1u << 0,
    DD_OF = 1u << 1,
    DD_BS = 1u << 2,
    DD_COUNT = 1u << 3,
    DD_SKIP = 1u << 4,
};

struct dd_args {
    const char *in, *out;
    int64_t bsz;    /* block size for count and skip */
    int64_t count;  /* blocks to read */
    int64_t skip;   /* blocks to skip at the start of the input */
    unsigned flags; /* DD_* given on the command line */
};

/* Parse one "name=value" operand; prints the error and returns -1. */
static int dd_operand(struct dd_args *a, const char *arg)
{
    const char *eq = strchr(arg, '=');
    const char *v = eq ? eq + 1 : NULL;
    size_t klen = eq ? (size_t)(eq - arg) : 0;

#define IS(name) (klen == strlen(name) && strncmp(arg, name, klen) == 0)
    if (!eq) {
        tool_error("unrecognized operand %s", arg);
        return -1;
    } else if (IS("bs")) {
        if (tool_cvtnum("bs", v, 1, INT_MAX, &a->bsz) < 0) {
            return -1;
        }
        a->flags |= DD_BS;
    } else if (IS("count")) {
        if (tool_cvtnum("count", v, 0, INT64_MAX, &a->count) < 0) {
            return -1;
        }
        a->flags |= DD_COUNT;
    } else if (IS("skip")) {
        if (tool_cvtnum("skip", v, 0, INT64_MAX, &a->skip) < 0) {
            return -1;
        }
        a->flags |= DD_SKIP;
    } else if (IS("if")) {
        a->in = v;
        a->flags |= DD_IF;
    } else if (IS("of")) {
        a->out = v;
        a->flags |= DD_OF;
    } else {
        tool_error("unrecognized operand %.*s", (int)klen, arg);
        return -1;
    }
#undef IS
    return 0;
}

/* Create the output image of `size` bytes in format out_fmt. */
static int create_output(const char *filename, const char *out_fmt,
                         int64_t size)
{
    const struct blk_driver *drv = blk_find_driver(out_fmt);
    struct strata_error *err = NULL;
    struct blk_opts *opts;
    int ret;

    if (!drv || drv->kind == BLK_KIND_FILTER) {
        tool_error("Unknown file format");
        return -EINVAL;
    }
    if (!drv->create) {
        tool_error("Format driver '%s' does not support image creation",
                   drv->name);
        return -ENOTSUP;
    }
    opts = opts_new();
    opts_set_uint(opts, "size", (uint64_t)size);
    ret = blk_create(filename, drv->name, opts, &err);
    opts_free(opts);
    if (ret < 0) {
        tool_error("%s: error while creating output image: %s", filename,
                   error_msg(err, ret));
        strata_error_free(err);
    }
    return ret;
}

/* The copy loop: bsz-sized reads from [in_pos, size) to the output. */
static int copy(struct blk_node *in, struct blk_node *out, int64_t in_pos,
                int64_t size, int64_t bsz)
{
    uint8_t *buf = blk_alloc_buf(in, (size_t)bsz);
    int64_t out_pos = 0;
    int ret = 0;

    while (in_pos < size) {
        int64_t bytes = MIN(bsz, size - in_pos);

        ret = blk_pread(in, in_pos, bytes, buf, 0);
        if (ret < 0) {
            tool_error("error while reading from input image file: %s",
                       strerror(-ret));
            break;
        }
        in_pos += bytes;
        ret = blk_pwrite(out, out_pos, bytes, buf, 0);
        if (ret < 0) {
            tool_error("error while writing to output image file: %s",
                       strerror(-ret));
            break;
        }
        out_pos += bytes;
    }
    free(buf);
    return ret < 0 ? ret : 0;
}

int img_dd(int argc, char **argv)
{
    static const struct option longopts[] = {
        IMG_LONGOPTS_STD,
        {"force-share", no_argument, NULL, 'U'},
        {NULL, 0, NULL, 0},
    };
    struct dd_args a = {.bsz = 512};
    struct img_std_opts o = {0};
    const char *out_fmt = "raw";
    struct blk_node *in = NULL, *out = NULL;
    int64_t size, in_pos;
    int c, ret = -1;

    while ((c = img_getopt(argc, argv, ":hf:O:U", longopts)) != -1) {
        switch (c) {
        case 'O':
            out_fmt = optarg;
            break;
        default:
            if (img_std_opt(&o, c, optarg) < 0) {
                return 1;
            }
        }
    }
    for (int i = optind; i < argc; i++) {
        if (dd_operand(&a, argv[i]) < 0) {
            return 1;
        }
    }
    if (!(a.flags & DD_IF) || !(a.flags & DD_OF)) {
        tool_error("Must specify both input and output files");
        return 1;
    }

    in = img_open(a.in, o.fmt, o.image_opts, NULL,
                  o.force_share ? BLK_O_FORCE_SHARE : 0, false);
    if (!in) {
        return 1;
    }
    size = (int64_t)in->size;
    if ((a.flags & DD_COUNT) && a.count <= INT64_MAX / a.bsz &&
        a.count * a.bsz < size) {
        size = a.count * a.bsz;
    }
    /* skip beyond the copied range: an empty output, as dd(1) makes */
    bool skip_past = (a.flags & DD_SKIP) &&
                     (a.skip > INT64_MAX / a.bsz || size < a.skip * a.bsz);

    ret = create_output(a.out, out_fmt, skip_past ? 0 : size - a.skip * a.bsz);
    if (ret < 0) {
        goto out;
    }
    /* The output format is named, so no probing restrictions apply. */
    out = img_open(a.out, out_fmt, false, NULL, BLK_O_RDWR, false);
    if (!out) {
        ret = -1;
        goto out;
    }
    if (skip_past) {
        tool_error("%s: cannot skip to specified offset", a.in);
        in_pos = size;
    } else {
        in_pos = a.skip * a.bsz;
    }
    ret = copy(in, out, in_pos, size, a.bsz);
    if (ret == 0) {
        ret = blk_flush(out);
        if (ret < 0) {
            tool_error("error while writing to output image file: %s",
                       strerror(-ret));
        }
    }
out:
    blk_close(out);
    blk_close(in);
    return ret < 0 ? 1 : 0;
}
