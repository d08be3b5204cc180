/* Opening, creating and closing nodes: building the graph of format,
 * filter and protocol nodes and the backing chain from open options. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "block.h"
#include "drivers.h"
#include "loop.h"
#include "util.h"

/* Images being opened on this thread's current backing chain, so a chain
 * that comes back to one of its own images is refused instead of recursing
 * without end. */
static __thread char *open_chain[BLK_MAX_CHAIN_DEPTH + 1];
static __thread int open_chain_len;

static int open_node(struct blk_node **out, const char *filename,
                     struct blk_opts *opts, unsigned flags,
                     struct strata_error **errp);

/* Options every node understands, whatever its driver (QEMU's names). */
static int apply_core_opts(struct blk_opts *opts, unsigned *flags,
                           struct strata_error **errp)
{
    static const struct {
        const char *key;
        unsigned flag;
        bool set_means_clear;
    } bools[] = {
        {"cache.direct", BLK_O_NOCACHE, false},
        {"cache.no-flush", BLK_O_NO_FLUSH, false},
        {"read-only", BLK_O_RDWR, true},
        {"force-share", BLK_O_FORCE_SHARE, false},
    };

    for (size_t i = 0; i < ARRAY_SIZE(bools); i++) {
        bool v;
        if (!opts_has(opts, bools[i].key)) {
            continue;
        }
        int ret = opts_get_bool(opts, bools[i].key, false, &v, errp);
        if (ret < 0) {
            return ret;
        }
        if (v != bools[i].set_means_clear) {
            *flags |= bools[i].flag;
        } else {
            *flags &= ~bools[i].flag;
        }
    }
    opts_get(opts, "node-name"); /* accepted for compatibility, unused */
    return 0;
}

/* Report the first option no one consumed, worded as QEMU does. */
static int check_unused(struct blk_node *bs, struct blk_opts *opts,
                        struct strata_error **errp)
{
    char what[64];

    snprintf(what, sizeof(what), "Block %s '%s'",
             bs->drv->kind == BLK_KIND_PROTOCOL ? "protocol" : "format",
             bs->drv->name);
    return opts_check_unused(opts, what, errp);
}

static void node_free(struct blk_node *bs)
{
    free(bs->opaque);
    free(bs->filename);
    free(bs->backing_file);
    free(bs->backing_format);
    opts_free(bs->options);
    free(bs);
}

/* Open the node below a format or filter from its "file.*" options. */
static int open_child(struct blk_node **out, const char *filename,
                      struct blk_opts *opts, unsigned flags,
                      struct strata_error **errp)
{
    struct blk_opts *child = opts_extract_prefix(opts, "file");

    if (!opts_has(child, "filename") && filename) {
        opts_set(child, "filename", filename);
    }
    const char *cname = opts_get(child, "filename");
    if (!opts_has(child, "driver")) {
        if (!cname) {
            opts_free(child);
            return error_setg(errp, -EINVAL,
                              "A block device must be specified for "
                              "\"file\"");
        }
        opts_set(child, "driver", blk_find_protocol(cname)->name);
    }
    return open_node(out, NULL, child, flags & ~BLK_O_PROBED, errp);
}

/* Open one node (and what lies below it); takes ownership of opts. */
static int open_node(struct blk_node **out, const char *filename,
                     struct blk_opts *opts, unsigned flags,
                     struct strata_error **errp)
{
    const struct blk_driver *drv = NULL;
    struct blk_node *file = NULL, *bs = NULL;
    const char *drvname = opts_get(opts, "driver");
    int ret;

    *out = NULL;
    if (drvname) {
        drv = blk_find_driver(drvname);
        if (!drv) {
            ret = error_setg(errp, -EINVAL, "Unknown driver '%s'", drvname);
            goto fail;
        }
    }
    ret = apply_core_opts(opts, &flags, errp);
    if (ret < 0) {
        goto fail;
    }
    if ((flags & BLK_O_FORCE_SHARE) && (flags & BLK_O_RDWR)) {
        ret = error_setg(errp, -EINVAL,
                         "force-share=on can only be used with read-only "
                         "images");
        goto fail;
    }
    if (!filename) {
        filename = opts_get(opts, "filename");
    }

    if (!drv || drv->kind != BLK_KIND_PROTOCOL) {
        ret = open_child(&file, filename, opts, flags, errp);
        if (ret < 0) {
            goto fail;
        }
        if (!drv) {
            ret = blk_probe_format(file, &drv, errp);
            if (ret < 0) {
                goto fail;
            }
            if (drv == &blk_drv_raw) {
                flags |= BLK_O_PROBED;
            }
        }
        if (!filename) {
            filename = file->filename;
        }
    } else {
        if (!filename && drv->protocols) {
            filename = drv->protocols[0]; /* "null-co://" needs no name */
        }
        if (!filename) {
            ret = error_setg(errp, -EINVAL,
                             "The '%s' block driver requires a file name",
                             drv->name);
            goto fail;
        }
        if (!opts_has(opts, "filename")) {
            opts_set(opts, "filename", filename);
        }
    }

    bs = xzalloc(sizeof(*bs));
    bs->drv = drv;
    bs->opaque = xzalloc(drv->state_size);
    bs->filename = xstrdup(filename);
    bs->file = file;
    bs->flags = flags;
    bs->read_only = !(flags & BLK_O_RDWR);
    bs->options = opts;
    bs->loop = loop_current();
    bs->limits.request_alignment = 1;
    bs->limits.buf_alignment = 1;
    co_queue_init(&bs->drain_waiters);
    file = NULL;

    ret = drv->open(bs, opts, errp);
    if (ret < 0) {
        bs->drv = NULL;
        goto fail_node;
    }
    if (bs->limits.request_alignment == 0 ||
        (bs->limits.request_alignment & (bs->limits.request_alignment - 1))) {
        ret = error_setg(errp, -EINVAL, "Driver '%s' set a bad alignment",
                         drv->name);
        goto fail_open;
    }
    ret = check_unused(bs, opts, errp);
    if (ret < 0) {
        goto fail_open;
    }
    /* As in QEMU, every node's length is a whole number of sectors; the
     * tail of a file past its end reads as zeroes. */
    bs->size = ROUND_UP(bs->size, BLK_SECTOR_SIZE);
    *out = bs;
    return 0;

fail_open:
    if (drv->close) {
        drv->close(bs);
    }
    bs->drv = NULL;
fail_node:
    blk_close(bs->backing);
    blk_close(bs->file);
    node_free(bs);
    return ret;
fail:
    blk_close(file);
    opts_free(opts);
    return ret;
}

/* "appliance.ova:2" or "appliance.ova:disk1.vmdk", when no file has that
 * very name: the OVA, with the suffix choosing the disk (ova's disk=).
 * Returns the archive's name (caller frees) or NULL. */
static char *ova_member_name(const char *filename, struct blk_opts *opts)
{
    const char *colon = filename ? strrchr(filename, ':') : NULL;
    struct stat st;
    char *archive;

    if (!colon || colon - filename < 5 || !colon[1] || strchr(colon, '/') ||
        strncasecmp(colon - 4, ".ova", 4) != 0 || stat(filename, &st) == 0) {
        return NULL;
    }
    archive = xstrdup(filename);
    archive[colon - filename] = 0;
    if (stat(archive, &st) < 0) {
        free(archive);
        return NULL;
    }
    if (!opts_has(opts, "disk")) {
        opts_set(opts, "disk", colon + 1);
    }
    if (!opts_has(opts, "driver")) {
        opts_set(opts, "driver", "ova");
    }
    return archive;
}

int blk_open(struct blk_node **out, const char *filename,
             const struct blk_opts *opts, unsigned flags,
             struct strata_error **errp)
{
    struct blk_opts *copy = opts ? opts_clone(opts) : opts_new();
    char *archive;
    int ret = blk_json_filename_opts(filename, copy, errp);

    if (ret < 0) {
        opts_free(copy);
        return ret;
    }
    if (ret > 0) {
        filename = NULL; /* the options name the file */
    }
    archive = ova_member_name(filename, copy);
    ret = open_node(out, archive ? archive : filename, copy, flags, errp);
    free(archive);
    return ret;
}

char *blk_resolve_backing_name(const char *overlay, const char *backing)
{
    const char *slash = strrchr(overlay, '/');

    if (backing[0] == '/' || strstr(backing, "://") || !slash ||
        blk_is_json_filename(backing)) {
        return xstrdup(backing);
    }
    return xasprintf("%.*s/%s", (int)(slash - overlay), overlay, backing);
}

/* realpath() or, for names that are not files (protocol URIs), a copy. */
static char *canonical_name(const char *name)
{
    char *p = realpath(name, NULL);
    return p ? p : xstrdup(name);
}

int blk_open_backing(struct blk_node *bs, struct strata_error **errp)
{
    struct strata_error *err = NULL;
    unsigned flags;
    char *name, *canon;
    int ret;

    if (!bs->backing_file || !bs->backing_file[0] ||
        (bs->flags & BLK_O_NO_BACKING) || bs->backing) {
        return 0;
    }
    name = blk_resolve_backing_name(bs->filename, bs->backing_file);
    canon = canonical_name(name);
    if (open_chain_len == 0) {
        open_chain[open_chain_len++] = canonical_name(bs->filename);
    }
    for (int i = 0; i < open_chain_len; i++) {
        if (strcmp(open_chain[i], canon) == 0) {
            ret = error_setg(errp, -ELOOP,
                             "Backing file '%s' of '%s' is part of its own "
                             "backing chain", name, bs->filename);
            free(canon);
            goto out;
        }
    }
    if (open_chain_len > BLK_MAX_CHAIN_DEPTH) {
        ret = error_setg(errp, -ELOOP,
                         "Backing chain of '%s' is longer than %d images",
                         bs->filename, BLK_MAX_CHAIN_DEPTH);
        free(canon);
        goto out;
    }

    struct blk_opts *opts = opts_new();
    if (bs->backing_format) {
        opts_set(opts, "driver", bs->backing_format);
    }
    /* Backing images are read-only and shared, with the overlay's cache. */
    flags = bs->flags & (BLK_O_NOCACHE | BLK_O_NO_FLUSH | BLK_O_FORCE_SHARE |
                         BLK_O_NO_LOCK);
    open_chain[open_chain_len++] = canon;
    ret = blk_json_filename_opts(name, opts, &err);
    if (ret < 0) {
        opts_free(opts);
    } else {
        ret = open_node(&bs->backing, ret > 0 ? NULL : name, opts, flags,
                        &err);
    }
    free(open_chain[--open_chain_len]);
    if (ret < 0) {
        error_setg(errp, ret, "Could not open backing file: %s",
                   error_msg(err, ret));
        strata_error_free(err);
    }
out:
    if (open_chain_len == 1) {
        free(open_chain[--open_chain_len]);
    }
    free(name);
    return ret;
}

/* Close bs and what lies below it.  The flush before close covers the
 * whole subtree, so the children are not flushed a second time. */
static void close_node(struct blk_node *bs, bool flush)
{
    if (!bs) {
        return;
    }
    blk_drain(bs);
    if (bs->drv) {
        if (flush && !bs->read_only) {
            blk_flush(bs);
        }
        if (bs->drv->close) {
            bs->drv->close(bs);
        }
    }
    close_node(bs->backing, true);
    close_node(bs->file, false);
    node_free(bs);
}

void blk_close(struct blk_node *bs)
{
    close_node(bs, true);
}

int blk_create(const char *filename, const char *fmt, struct blk_opts *opts,
               struct strata_error **errp)
{
    const struct blk_driver *drv = blk_find_driver(fmt);
    int ret;

    if (!drv || drv->kind == BLK_KIND_FILTER) {
        return error_setg(errp, -EINVAL, "Unknown file format '%s'", fmt);
    }
    if (!drv->create) {
        return error_setg(errp, -ENOTSUP,
                          "Format driver '%s' does not support image "
                          "creation", drv->name);
    }
    if (drv->create_opts) {
        struct blk_opt_desc *all =
            blk_create_opt_list(drv, blk_find_protocol(filename));
        ret = opts_validate(opts, all, drv->name, errp);
        free(all);
        if (ret < 0) {
            return ret;
        }
    }
    return drv->create(filename, opts, errp);
}

struct blk_opt_desc *blk_create_opt_list(const struct blk_driver *drv,
                                         const struct blk_driver *proto)
{
    const struct blk_opt_desc *lists[2] = {drv->create_opts,
                                           proto ? proto->create_opts : NULL};
    struct blk_opt_desc *out;
    int n = 0, max = 1;

    for (int l = 0; l < 2; l++) {
        for (const struct blk_opt_desc *d = lists[l]; d && d->name; d++) {
            max++;
        }
    }
    out = xzalloc(sizeof(*out) * max);
    for (int l = 0; l < 2; l++) {
        for (const struct blk_opt_desc *d = lists[l]; d && d->name; d++) {
            int i = 0;
            while (i < n && strcmp(out[i].name, d->name) != 0) {
                i++;
            }
            if (i == n) {
                out[n++] = *d;
            }
        }
    }
    return out;
}

int blk_create_file(const char *filename, struct blk_opts *opts,
                    struct strata_error **errp)
{
    const struct blk_driver *drv = blk_find_protocol(filename);

    if (!drv->create) {
        return error_setg(errp, -ENOTSUP,
                          "Protocol driver '%s' does not support image "
                          "creation", drv->name);
    }
    return drv->create(filename, opts, errp);
}

int blk_open_created_file(struct blk_node **out, const char *filename,
                          unsigned flags, struct strata_error **errp)
{
    struct blk_opts *o = opts_new();
    int ret;

    opts_set(o, "driver", blk_find_protocol(filename)->name);
    ret = blk_open(out, filename, o, BLK_O_RDWR | BLK_O_CREATE | flags,
                   errp);
    opts_free(o);
    return ret;
}

int64_t blk_allocated_size(struct blk_node *bs)
{
    if (bs->drv->allocated_size) {
        return bs->drv->allocated_size(bs);
    }
    if (bs->file) {
        return blk_allocated_size(bs->file);
    }
    return -ENOTSUP;
}

bool blk_has_zero_init(struct blk_node *bs)
{
    if (bs->drv->has_zero_init) {
        return bs->drv->has_zero_init(bs);
    }
    if (bs->drv->kind == BLK_KIND_FILTER && bs->file) {
        return blk_has_zero_init(bs->file);
    }
    return false;
}

int blk_get_info(struct blk_node *bs, struct blk_info *info)
{
    memset(info, 0, sizeof(*info));
    return bs->drv->get_info ? bs->drv->get_info(bs, info) : 0;
}

void blk_info_release(struct blk_info *info)
{
    json_free(info->format_specific);
    info->format_specific = NULL;
}

struct blk_node *blk_protocol_node(struct blk_node *bs)
{
    while (bs->file) {
        bs = bs->file;
    }
    return bs;
}

int blk_chain_length(struct blk_node *bs)
{
    int n = 0;
    for (; bs; bs = bs->backing) {
        n++;
    }
    return n;
}

void *blk_alloc_buf(struct blk_node *bs, size_t len)
{
    size_t align = 4096;

    for (struct blk_node *p = bs; p; p = p->file) {
        align = MAX(align, p->limits.buf_alignment);
    }
    return xmemalign(align, len);
}
