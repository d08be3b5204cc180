/* strata-img convert: copy one or more images (concatenated) into a new or
 * existing image, with qemu-img 7.2's command line, checks, messages and
 * output: holes stay holes, -S sets the smallest zero run worth leaving
 * unallocated, -m coroutines copy in parallel, -W lets writes land out of
 * order.  The copy itself is in img-convert-copy.c. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img-cmds.h"
#include "img-convert.h"
#include "util.h"

struct convert_args {
    const char *fmt, *out_fmt, *cache, *src_cache;
    const char *out_baseimg, *backing_fmt, *snapshot;
    char *options;
    bool image_opts, tgt_image_opts, skip_create, progress, quiet;
    bool force_share, compressed, copy_range, explicit_min_sparse;
    bool target_is_zero, bitmaps, salvage, wr_in_order;
    int64_t min_sparse, rate_limit;
    long num_coroutines;
};

#ifdef HAVE_LIBURING
#define DIRECT_AIO "io_uring"
#else
#define DIRECT_AIO "native"
#endif

/* Does a driver's create option list (or its protocol's) have `name`? */
static bool has_create_opt(const struct blk_driver *drv,
                           const struct blk_driver *proto, const char *name)
{
    const struct blk_opt_desc *lists[2] = {drv ? drv->create_opts : NULL,
                                           proto ? proto->create_opts : NULL};

    for (int l = 0; l < 2; l++) {
        for (const struct blk_opt_desc *d = lists[l]; d && d->name; d++) {
            if (strcmp(d->name, name) == 0) {
                return true;
            }
        }
    }
    return false;
}

/* -m: a whole number in 1..16, as qemu-img's qemu_strtol() check. */
static int parse_coroutines(const char *arg, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(arg, &end, 0);
    if (errno || end == arg || *end || v < 1 ||
        v > CONVERT_MAX_COROUTINES) {
        tool_error("Invalid number of coroutines. Allowed number of "
                   "coroutines is between 1 and %d", CONVERT_MAX_COROUTINES);
        return -1;
    }
    *out = v;
    return 0;
}

/* Parse the command line; returns 0, or 1 after printing the error. */
static int parse_args(struct convert_args *a, int argc, char **argv)
{
    static const struct option longopts[] = {
        IMG_LONGOPTS_STD,
        {"force-share", no_argument, NULL, 'U'},
        {"target-image-opts", no_argument, NULL, IMG_OPT_TARGET_IMAGE_OPTS},
        {"salvage", no_argument, NULL, IMG_OPT_SALVAGE},
        {"target-is-zero", no_argument, NULL, IMG_OPT_TARGET_IS_ZERO},
        {"bitmaps", no_argument, NULL, IMG_OPT_BITMAPS},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = img_getopt(argc, argv, ":hf:O:B:Cco:l:S:pt:T:qnm:WUr:F:",
                           longopts)) != -1) {
        switch (c) {
        case 'f':
            a->fmt = optarg;
            break;
        case 'O':
            a->out_fmt = optarg;
            break;
        case 'B':
            a->out_baseimg = optarg;
            break;
        case 'F':
            a->backing_fmt = optarg;
            break;
        case 'C':
            a->copy_range = true;
            break;
        case 'c':
            a->compressed = true;
            break;
        case 'o':
            a->options = img_accumulate_options(a->options, optarg);
            if (!a->options) {
                return 1;
            }
            break;
        case 'l':
            a->snapshot = optarg;
            break;
        case 'S': {
            int64_t v;
            if (tool_cvtnum("buffer size for sparse output", optarg, 0,
                            INT64_MAX, &v) < 0) {
                return 1;
            }
            if (v % CONVERT_SECTOR || v > CONVERT_MAX_BUF_SIZE) {
                tool_error("Invalid buffer size for sparse output specified. "
                           "Valid sizes are multiples of %u up to %u. Select "
                           "0 to disable sparse detection (fully allocates "
                           "output).", CONVERT_SECTOR, CONVERT_MAX_BUF_SIZE);
                return 1;
            }
            a->min_sparse = v;
            a->explicit_min_sparse = true;
            break;
        }
        case 'p':
            a->progress = true;
            break;
        case 't':
            a->cache = optarg;
            break;
        case 'T':
            a->src_cache = optarg;
            break;
        case 'q':
            a->quiet = true;
            break;
        case 'n':
            a->skip_create = true;
            break;
        case 'm':
            if (parse_coroutines(optarg, &a->num_coroutines) < 0) {
                return 1;
            }
            break;
        case 'W':
            a->wr_in_order = false;
            break;
        case 'U':
            a->force_share = true;
            break;
        case 'r':
            if (tool_cvtnum("rate limit", optarg, 0, INT64_MAX,
                            &a->rate_limit) < 0) {
                return 1;
            }
            break;
        case IMG_OPT_OBJECT:
            if (tool_object_add(optarg) < 0) {
                return 1;
            }
            break;
        case IMG_OPT_IMAGE_OPTS:
            a->image_opts = true;
            break;
        case IMG_OPT_SALVAGE:
            a->salvage = true;
            break;
        case IMG_OPT_TARGET_IMAGE_OPTS:
            a->tgt_image_opts = true;
            break;
        case IMG_OPT_TARGET_IS_ZERO:
            /* the user vouches for a blank target: as zero-init */
            a->target_is_zero = true;
            break;
        case IMG_OPT_BITMAPS:
            a->bitmaps = true;
            break;
        }
    }
    return 0;
}

/* The option checks qemu-img makes before opening anything. */
static int check_args(const struct convert_args *a)
{
    const char *msg = NULL;

    if (a->compressed && a->copy_range) {
        msg = "Cannot enable copy offloading when -c is used";
    } else if (a->explicit_min_sparse && a->copy_range) {
        msg = "Cannot enable copy offloading when -S is used";
    } else if (a->copy_range && a->salvage) {
        msg = "Cannot use copy offloading in salvaging mode";
    } else if (a->tgt_image_opts && !a->skip_create) {
        msg = "--target-image-opts requires use of -n flag";
    } else if (a->skip_create && a->options) {
        msg = "-o has no effect when skipping image creation";
    } else if (a->target_is_zero && !a->skip_create) {
        msg = "--target-is-zero requires use of -n flag";
    }
    if (msg) {
        tool_error("%s", msg);
        return 1;
    }
    return 0;
}

/* -o help for the target format: the same listing as create's, which
 * qemu-img also shares between the two commands. */
static int print_create_help(const char *out_fmt, const char *out_filename)
{
    char *argv[] = {"create", "-f", (char *)out_fmt, "-o", "help",
                    (char *)out_filename, NULL};
    int argc = out_filename ? 6 : 5;

    optind = 0;
    return img_create(argc, argv);
}

/* Create the target as qemu-img does: the format's and protocol's
 * options from -o, the size of all sources, -B/-F.  Sets
 * s->target_has_backing. */
static int create_target(struct convert_args *a, struct convert_state *s,
                         const char *out_filename)
{
    const struct blk_driver *drv = blk_find_driver(a->out_fmt);
    const struct blk_driver *proto;
    struct strata_error *err = NULL;
    struct blk_opts *opts = opts_new();
    struct blk_opt_desc *list = NULL;
    const char *backing;
    int ret = -1;

    if (!drv || drv->kind == BLK_KIND_FILTER) {
        tool_error("Unknown file format '%s'", a->out_fmt);
        goto out;
    }
    proto = blk_find_protocol(out_filename);
    if (!drv->create) {
        tool_error("Format driver '%s' does not support image creation",
                   drv->name);
        goto out;
    }
    if (!proto || !proto->create) {
        tool_error("Protocol driver '%s' does not support image creation",
                   proto ? proto->name : "?");
        goto out;
    }
    list = blk_create_opt_list(drv, proto);
    if ((a->options && opts_parse(opts, a->options, NULL, &err) < 0) ||
        opts_validate(opts, list, drv->name, &err) < 0) {
        tool_report(err, -EINVAL);
        goto out;
    }
    opts_set_uint(opts, "size", s->total);
    if (a->out_baseimg) {
        if (!has_create_opt(drv, proto, "backing_file")) {
            tool_error("Backing file not supported for file format '%s'",
                       a->out_fmt);
            goto out;
        }
        opts_set(opts, "backing_file", a->out_baseimg);
    }
    if (a->backing_fmt) {
        if (!has_create_opt(drv, proto, "backing_fmt")) {
            tool_error("Backing file format not supported for file format "
                       "'%s'", a->out_fmt);
            goto out;
        }
        opts_set(opts, "backing_fmt", a->backing_fmt);
    }

    backing = opts_has(opts, "backing_file") ? opts_get(opts, "backing_file")
                                             : NULL;
    s->target_has_backing = backing != NULL;
    if (s->target_has_backing && s->nsrc > 1) {
        tool_error("Having a backing file for the target makes no sense when "
                   "concatenating multiple input images");
        goto out;
    }
    if (backing && !opts_has(opts, "backing_fmt")) {
        tool_error("Use of backing file requires explicit backing format");
        goto out;
    }
    if (a->compressed) {
        const char *prealloc = opts_get(opts, "preallocation");
        if (!drv->pwritev_compressed) {
            tool_error("Compression not supported for this file format");
            goto out;
        }
        bool enc = false;
        opts_get_bool(opts, "encryption", false, &enc, NULL);
        if (enc || opts_has(opts, "encrypt.format")) {
            tool_error("Compression and encryption not supported at the "
                       "same time");
            goto out;
        }
        if (prealloc && strcmp(prealloc, "off") != 0) {
            tool_error("Compression and preallocation not supported at the "
                       "same time");
            goto out;
        }
    }
    if (a->bitmaps) {
        tool_error("Source lacks bitmap support");
        goto out;
    }

    ret = blk_create(out_filename, drv->name, opts, &err);
    if (ret < 0) {
        tool_error("%s: error while converting %s: %s", out_filename,
                   a->out_fmt, error_msg(err, ret));
        strata_error_free(err);
        ret = -1;
    }
out:
    opts_free(opts);
    free(list);
    return ret < 0 ? -1 : 0;
}

/* Open every source and sum their sizes (in whole sectors, as qemu-img
 * counts them). */
static int open_sources(struct convert_args *a, struct convert_state *s,
                        char **names)
{
    unsigned flags = a->force_share ? BLK_O_FORCE_SHARE : 0;

    for (int i = 0; i < s->nsrc; i++) {
        struct blk_info info;
        int64_t size;

        s->src[i] = img_open(names[i], a->fmt, a->image_opts, a->src_cache,
                             flags, a->quiet);
        if (!s->src[i]) {
            return -1;
        }
        size = (int64_t)s->src[i]->size;
        if (size < 0) {
            tool_error("Could not get size of %s: %s", names[i],
                       strerror(EFBIG));
            return -1;
        }
        s->src_size[i] = (uint64_t)size;
        s->src_len[i] = ROUND_UP((uint64_t)size, CONVERT_SECTOR);
        s->src_align[i] = MAX(s->src[i]->limits.request_alignment,
                              CONVERT_SECTOR);
        if (blk_get_info(s->src[i], &info) == 0 && info.cluster_size) {
            s->src_align[i] = MAX(s->src_align[i], info.cluster_size);
        }
        blk_info_release(&info);
        s->total += s->src_len[i];
    }
    return 0;
}

/* pow2floor() of qemu: the largest power of two <= v (0 for 0). */
static uint64_t pow2floor(uint64_t v)
{
    return v ? 1ull << (63 - __builtin_clzll(v)) : 0;
}

/* The -o keys the new image needs to be opened again (the secrets of an
 * encrypted target), as qemu-img's img_add_key_secrets(). */
static struct blk_opts *target_open_opts(const struct convert_args *a)
{
    struct blk_opts *o = opts_new(), *all = opts_new();

    if (a->options && !a->tgt_image_opts &&
        opts_parse(all, a->options, NULL, NULL) == 0) {
        for (int i = 0; i < all->n; i++) {
            size_t len = strlen(all->v[i].key);
            if (len >= 10 &&
                strcmp(all->v[i].key + len - 10, "key-secret") == 0) {
                opts_set(o, all->v[i].key, all->v[i].value);
            }
        }
    }
    opts_free(all);
    return o;
}

/* Open the target and size the copy to it. */
static int open_target(struct convert_args *a, struct convert_state *s,
                       const char *out_filename)
{
    struct strata_error *err = NULL;
    struct blk_opts *extra, *secrets;
    unsigned cache_flags = 0;
    int ret;

    if (blk_parse_cache_mode(a->cache, &cache_flags) < 0) {
        tool_error("Invalid cache option: %s", a->cache);
        return -1;
    }
    if (a->tgt_image_opts && a->out_fmt) {
        tool_error("--image-opts and --format are mutually exclusive");
        return -1;
    }
    secrets = target_open_opts(a);
    if ((cache_flags & BLK_O_NOCACHE) && !a->tgt_image_opts) {
        /* O_DIRECT: a kernel AIO engine spares every write a hand-off to a
         * worker thread (bench/convert -t none: ~25% less wall time than
         * aio=threads).  Targets that refuse it get the default engine. */
        extra = opts_clone(secrets);
        opts_set(extra, "file.aio", DIRECT_AIO);
        ret = tool_open(&s->target, out_filename, a->out_fmt, false,
                        a->cache, BLK_O_RDWR, a->quiet, extra, NULL);
        opts_free(extra);
        if (ret >= 0) {
            goto opened;
        }
    }
    /* a created target's format is known: no probing, no raw warning */
    ret = tool_open(&s->target, out_filename, a->out_fmt, a->tgt_image_opts,
                    a->cache, BLK_O_RDWR, a->quiet, secrets, &err);
    if (ret < 0) {
        opts_free(secrets);
        tool_error("Could not open '%s': %s", out_filename,
                   error_msg(err, ret));
        strata_error_free(err);
        return -1;
    }

opened:
    opts_free(secrets);
    /* chunks as large as the target prefers, within qemu-img's bounds */
    uint64_t opt = MAX(s->target->limits.opt_transfer,
                       s->target->limits.discard_alignment);
    s->buf_size = MIN(CONVERT_MAX_BUF_SIZE,
                      MAX((uint64_t)CONVERT_BUF_SIZE,
                          ROUND_UP(opt, CONVERT_SECTOR)));
    /* align writes to the target to spare it read-modify-write cycles */
    s->alignment = MAX(pow2floor(s->min_sparse / CONVERT_SECTOR),
                       DIV_ROUND_UP(s->target->limits.request_alignment,
                                    CONVERT_SECTOR)) * CONVERT_SECTOR;
    if (a->skip_create && s->target->size < s->total) {
        tool_error("output file is smaller than input file");
        return -1;
    }
    return 0;
}

/* -c: the target must write compressed clusters.  qemu-img copies one
 * cluster per chunk and writes them in order, which leaves one core
 * compressing; here a chunk holds whole clusters (1 MiB or one cluster),
 * zero clusters are still found one by one, and the driver compresses the
 * clusters of a chunk concurrently.  Compressed clusters do not depend on
 * each other, so chunks are written in whatever order they are ready. */
static int set_compressed(struct convert_state *s)
{
    struct blk_info info = {0};

    if (!s->target->drv->pwritev_compressed) {
        tool_error("Compression not supported for this file format");
        return -1;
    }
    if (blk_get_info(s->target, &info) < 0) {
        tool_error("could not get block driver info");
        return -1;
    }
    uint64_t cs = info.cluster_size;
    blk_info_release(&info);
    if (cs < CONVERT_SECTOR || cs % CONVERT_SECTOR || cs > s->buf_size) {
        tool_error("invalid cluster size");
        return -1;
    }
    s->compressed = true;
    s->cluster_size = cs;
    s->buf_size = MAX(cs, ROUND_DOWN((uint64_t)1024 * 1024, cs));
    return 0;
}

int img_convert(int argc, char **argv)
{
    struct convert_args a = {
        .cache = "unsafe",
        .src_cache = "writeback",
        .min_sparse = 4096, /* 4k of zeroes make a hole */
        .num_coroutines = 8,
        .wr_in_order = true,
    };
    struct convert_state s = {0};
    const char *out_filename;
    unsigned src_flags = 0;
    int ret = 1;

    if (parse_args(&a, argc, argv) || check_args(&a)) {
        goto fail_getopt;
    }
    if (!a.out_fmt && !a.tgt_image_opts) {
        a.out_fmt = "raw";
    }

    s.nsrc = argc - optind - 1;
    out_filename = s.nsrc >= 1 ? argv[argc - 1] : NULL;
    if (a.options && img_has_help_option(a.options)) {
        if (a.out_fmt) {
            ret = print_create_help(a.out_fmt, out_filename);
        } else {
            tool_error("Option help requires a format be specified");
        }
        goto fail_getopt;
    }
    if (s.nsrc < 1) {
        tool_error("Must specify image file name");
        goto fail_getopt;
    }
    if (blk_parse_cache_mode(a.src_cache, &src_flags) < 0) {
        tool_error("Invalid source cache option: %s", a.src_cache);
        goto fail_getopt;
    }

    s.quiet = a.quiet;
    tool_progress_init(&s.progress, a.progress && !a.quiet);
    tool_progress_update(&s.progress, 0, 100);

    s.src = xzalloc(sizeof(*s.src) * s.nsrc);
    s.src_size = xzalloc(sizeof(*s.src_size) * s.nsrc);
    s.src_len = xzalloc(sizeof(*s.src_len) * s.nsrc);
    s.src_align = xzalloc(sizeof(*s.src_align) * s.nsrc);
    if (open_sources(&a, &s, argv + optind) < 0) {
        goto out;
    }

    if (a.snapshot) {
        if (s.nsrc > 1) {
            tool_error("No support for concatenating multiple snapshot");
        } else {
            /* no driver has internal snapshots yet */
            tool_error("Failed to load snapshot: Block format '%s' used by "
                       "device '' does not support temporarily loading "
                       "internal snapshots", s.src[0]->drv->name);
        }
        goto out;
    }

    if (!a.skip_create) {
        if (create_target(&a, &s, out_filename) < 0) {
            goto out;
        }
    } else if (a.out_baseimg) {
        /* qemu-img -n -B: the backing only matters for a new target */
        s.target_has_backing = true;
    }
    if (a.target_is_zero && s.target_has_backing) {
        tool_error("Cannot use --target-is-zero when the destination image "
                   "has a backing file");
        goto out;
    }
    if (a.skip_create && a.bitmaps) {
        tool_error("Source lacks bitmap support");
        goto out;
    }
    s.target_is_new = !a.skip_create;

    if (open_target(&a, &s, out_filename) < 0) {
        goto out;
    }
    if (a.compressed && set_compressed(&s) < 0) {
        goto out;
    }

    s.has_zero_init = a.target_is_zero;
    s.min_sparse = (uint64_t)a.min_sparse;
    s.num_coroutines = (int)a.num_coroutines;
    s.wr_in_order = a.wr_in_order && !s.compressed;
    s.salvage = a.salvage;
    s.copy_range = a.copy_range;
    s.rate_limit = (uint64_t)a.rate_limit;
    /* measured: raw and qcow2 targets gain (their writes stream through
     * one lane); a vhdx target lost a fifth (its block allocations wait
     * for the loop thread while it copies), so the others keep the
     * default */
    if (!strcmp(s.target->drv->name, "raw") ||
        !strcmp(s.target->drv->name, "qcow2")) {
        blk_set_inline_read_max(TOOL_INLINE_READ_MAX);
    }
    ret = convert_do_copy(&s) < 0 ? 1 : 0;
    if (ret == 0 && s.compressed) {
        /* as qemu-img: the file ends on a sector boundary after packed
         * compressed data, which eases sector-based readers */
        struct blk_node *p = blk_protocol_node(s.target);
        if (p->size % CONVERT_SECTOR &&
            blk_truncate(p, ROUND_UP(p->size, CONVERT_SECTOR), false,
                         BLK_PREALLOC_OFF, NULL) < 0) {
            tool_error("error while writing at byte %llu: could not align "
                       "the end of the file", (unsigned long long)p->size);
            ret = 1;
        }
    }

out:
    if (ret == 0) {
        tool_progress_update(&s.progress, 100, 100);
    }
    tool_progress_end(&s.progress);
    if (s.target) {
        blk_close(s.target);
    }
    for (int i = 0; s.src && i < s.nsrc; i++) {
        blk_close(s.src[i]);
    }
    free(s.src);
    free(s.src_size);
    free(s.src_len);
    free(s.src_align);
fail_getopt:
    free(a.options);
    return ret;
}
