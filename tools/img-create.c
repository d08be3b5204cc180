/* strata-img create: make a new image, as qemu-img create (and QEMU's
 * bdrv_img_create()) does: -o options checked against the format's and
 * the protocol's create options, the size taken from the backing file
 * when not given, the "Formatting ..." line, then the driver's create. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img-cmds.h"
#include "util.h"

static const struct blk_opt_desc *find_desc(const struct blk_opt_desc *list,
                                            const char *name)
{
    for (; list && list->name; list++) {
        if (strcmp(list->name, name) == 0) {
            return list;
        }
    }
    return NULL;
}

/* -o help: the create options, sorted, in qemu_opts_print_help()'s
 * layout.  Without a file name only the format's own options are known. */
static int print_option_help(const char *filename, const char *fmt)
{
    const struct blk_driver *drv = blk_find_driver(fmt);
    const struct blk_driver *proto = NULL;
    struct blk_opt_desc *list;
    char *title;

    if (!drv) {
        tool_error("Unknown file format '%s'", fmt);
        return 1;
    }
    if (!drv->create_opts) {
        tool_error("Format driver '%s' does not support image creation",
                   fmt);
        return 1;
    }
    if (filename) {
        proto = blk_find_protocol(filename);
        if (!proto->create_opts && !proto->create) {
            tool_error("Protocol driver '%s' does not support image "
                       "creation", proto->name);
            return 1;
        }
    }
    list = blk_create_opt_list(drv, proto);
    title = filename ? xstrdup("Supported options:")
                     : xasprintf("Supported %s options:", drv->name);
    img_print_opt_help(title, list);
    free(title);
    if (!filename) {
        printf("\nThe protocol level may support further options.\n"
               "Specify the target filename to include those options.\n");
    }
    free(list);
    return 0;
}

/* A value as qemu_opts_print() shows it: commas doubled. */
static void print_escaped(const char *v)
{
    for (; *v; v++) {
        if (*v == ',') {
            putchar(',');
        }
        putchar(*v);
    }
}

/* "Formatting 'x', fmt=raw size=... " in the order of the option list:
 * set options, and unset ones that have a default. */
static void print_formatting(const char *filename, const char *fmt,
                             const struct blk_opt_desc *list,
                             struct blk_opts *opts)
{
    const char *sep = "";

    printf("Formatting '%s', fmt=%s ", filename, fmt);
    for (const struct blk_opt_desc *d = list; d->name; d++) {
        bool set = opts_has(opts, d->name);
        const char *v = set ? opts_get(opts, d->name) : d->def_value;
        uint64_t u;

        if (!v) {
            continue;
        }
        printf("%s%s=", sep, d->name);
        if (set && d->type == OPT_SIZE && parse_size(v, &u) == 0) {
            printf("%llu", (unsigned long long)u);
        } else if (set && d->type == OPT_NUMBER && parse_number(v, &u) == 0) {
            printf("%lld", (long long)u); /* QEMU prints numbers signed */
        } else {
            print_escaped(v);
        }
        sep = " ";
    }
    printf("\n");
    fflush(stdout);
}

/* Size of the backing file, which also checks it can be opened. */
static int probe_backing(const char *filename, const char *backing,
                         const char *backing_fmt, uint64_t *size,
                         const char **detected, struct strata_error **errp)
{
    char *full = blk_resolve_backing_name(filename, backing);
    struct blk_node *bs;
    int ret;

    ret = tool_open(&bs, full, backing_fmt, false, NULL, BLK_O_FORCE_SHARE,
                    true, NULL, errp);
    free(full);
    if (ret < 0) {
        return ret;
    }
    *size = bs->size;
    *detected = bs->drv->name;
    blk_close(bs);
    return 0;
}

/* The body of create once the command line is parsed (bdrv_img_create). */
static int do_create(const char *filename, const char *fmt,
                     const char *base_filename, const char *base_fmt,
                     const char *options, int64_t img_size,
                     bool no_backing_open, bool quiet)
{
    const struct blk_driver *drv = blk_find_driver(fmt);
    const struct blk_driver *proto = blk_find_protocol(filename);
    struct strata_error *err = NULL;
    struct blk_opt_desc *list = NULL;
    struct blk_opts *opts = opts_new();
    const char *backing_file, *backing_fmt;
    int ret = -EINVAL;

    if (!drv || drv->kind == BLK_KIND_FILTER) {
        error_setg(&err, -EINVAL, "Unknown file format '%s'", fmt);
        goto out;
    }
    if (!drv->create_opts && !drv->create) {
        error_setg(&err, -ENOTSUP,
                   "Format driver '%s' does not support image creation",
                   drv->name);
        goto out;
    }
    list = blk_create_opt_list(drv, proto);
    if (options && opts_parse(opts, options, NULL, &err) < 0) {
        goto out;
    }
    if (opts_validate(opts, list, drv->name, &err) < 0) {
        goto out;
    }

    if (opts_has(opts, "size")) {
        if (img_size >= 0) {
            error_setg(&err, -EINVAL,
                       "The image size must be specified only once");
            goto out;
        }
    } else if (img_size >= 0) {
        opts_set_uint(opts, "size", (uint64_t)img_size);
    }
    if (base_filename) {
        if (!find_desc(list, "backing_file")) {
            error_setg(&err, -ENOTSUP, "Backing file not supported for file "
                       "format '%s'", fmt);
            goto out;
        }
        opts_set(opts, "backing_file", base_filename);
    }
    if (base_fmt) {
        if (!find_desc(list, "backing_fmt")) {
            error_setg(&err, -ENOTSUP, "Backing file format not supported "
                       "for file format '%s'", fmt);
            goto out;
        }
        opts_set(opts, "backing_fmt", base_fmt);
    }

    backing_file = opts_has(opts, "backing_file")
                       ? opts_get(opts, "backing_file") : NULL;
    backing_fmt = opts_has(opts, "backing_fmt")
                      ? opts_get(opts, "backing_fmt") : NULL;
    if (backing_file) {
        if (strcmp(filename, backing_file) == 0) {
            error_setg(&err, -EINVAL, "Error: Trying to create an image "
                       "with the same filename as the backing file");
            goto out;
        }
        if (backing_file[0] == '\0') {
            error_setg(&err, -EINVAL,
                       "Expected backing file name, got empty string");
            goto out;
        }
    }
    if (backing_file && !no_backing_open) {
        struct strata_error *berr = NULL;
        const char *detected = NULL;
        uint64_t bsize;

        ret = probe_backing(filename, backing_file, backing_fmt, &bsize,
                            &detected, &berr);
        if (ret < 0) {
            error_setg(&err, ret, "%s\nCould not open backing image.",
                       error_msg(berr, ret));
            strata_error_free(berr);
            goto out;
        }
        if (!backing_fmt) {
            error_setg(&err, -EINVAL, "Backing file specified without "
                       "backing format\nDetected format of %s.", detected);
            ret = -EINVAL;
            goto out;
        }
        if (!opts_has(opts, "size")) {
            opts_set_uint(opts, "size", bsize);
        }
    } else if (backing_file && !backing_fmt) {
        error_setg(&err, -EINVAL,
                   "Backing file specified without backing format");
        goto out;
    }
    if (!opts_has(opts, "size")) {
        error_setg(&err, -EINVAL, "Image creation needs a size parameter");
        goto out;
    }

    if (!quiet) {
        print_formatting(filename, drv->name, list, opts);
    }
    ret = blk_create(filename, drv->name, opts, &err);
    if (ret == -EFBIG) {
        strata_error_free(err);
        err = NULL;
        error_setg(&err, ret, "The image size is too large for file format "
                   "'%s'%s", drv->name, find_desc(list, "cluster_size") &&
                   opts_has(opts, "cluster_size")
                   ? " (try using a larger cluster size)" : "");
    }
out:
    if (err) {
        tool_error("%s: %s", filename, error_msg(err, err->code));
        strata_error_free(err);
        ret = ret < 0 ? ret : -EINVAL;
    }
    opts_free(opts);
    free(list);
    return ret;
}

int img_create(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"object", required_argument, NULL, IMG_OPT_OBJECT},
        {NULL, 0, NULL, 0},
    };
    const char *fmt = "raw", *base_fmt = NULL, *base_filename = NULL;
    const char *filename;
    char *options = NULL;
    int64_t img_size = -1;
    bool quiet = false, no_backing_open = false;
    int c, ret = 1;

    while ((c = img_getopt(argc, argv, ":F:b:f:ho:qu", longopts)) != -1) {
        switch (c) {
        case 'F':
            base_fmt = optarg;
            break;
        case 'b':
            base_filename = optarg;
            break;
        case 'f':
            fmt = optarg;
            break;
        case 'o':
            options = img_accumulate_options(options, optarg);
            if (!options) {
                return 1;
            }
            break;
        case 'q':
            quiet = true;
            break;
        case 'u':
            no_backing_open = true;
            break;
        case IMG_OPT_OBJECT:
            if (tool_object_add(optarg) < 0) {
                goto out;
            }
            break;
        }
    }

    filename = optind < argc ? argv[optind] : NULL;
    if (options && img_has_help_option(options)) {
        ret = print_option_help(filename, fmt);
        goto out;
    }
    if (optind >= argc) {
        free(options);
        img_error_exit("Expecting image file name");
    }
    optind++;
    if (optind < argc) {
        if (tool_cvtnum("image size", argv[optind++], 0, INT64_MAX,
                        &img_size) < 0) {
            goto out;
        }
    }
    if (optind != argc) {
        free(options);
        img_error_exit("Unexpected argument: %s", argv[optind]);
    }
    ret = do_create(filename, fmt, base_filename, base_fmt, options,
                    img_size, no_backing_open, quiet) < 0 ? 1 : 0;
out:
    free(options);
    return ret;
}
