/* qcow2 with an external data file (incompatible feature bit 2): guest
 * data lives in a separate file named by a header extension, metadata
 * stays in the image file.  As QEMU allocates them, data clusters sit at
 * host offset == guest offset of the data file and have no refcounts;
 * with data_file_raw (autoclear bit 1) the data file is also a valid raw
 * image of the disk.  Here: opening the data file (not the one the image
 * names when opened with BLK_O_NO_BACKING, as QEMU's `info` does not),
 * checking and releasing data clusters, `info` and `amend`. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcow2.h"
#include "util.h"

/* A name recorded in the image: relative to the image's directory, as
 * backing files are; QEMU 7.2 resolves it against the working directory,
 * so that is where we look when the first place has no such file. */
static char *resolve_name(struct blk_node *bs, const char *name)
{
    char *p = blk_resolve_backing_name(bs->filename, name);

    if (strcmp(p, name) != 0 && access(p, F_OK) != 0 &&
        access(name, F_OK) == 0) {
        free(p);
        return xstrdup(name);
    }
    return p;
}

int coroutine_fn qcow2_datafile_open(struct blk_node *bs,
                                     struct blk_opts *opts,
                                     struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    struct blk_opts *child = opts_extract_prefix(opts, "data-file");
    const char *given = opts_get(opts, "data-file");
    bool has_opt = given || child->n > 0;
    struct strata_error *err = NULL;
    unsigned flags;
    char *name = NULL;
    int ret;

    s->data_file_raw =
        (s->autoclear_features & QCOW2_AUTOCLEAR_DATA_FILE_RAW) != 0;
    if (!qcow2_has_data_file(s)) {
        opts_free(child);
        if (has_opt) {
            return error_setg(errp, -EINVAL, "'data-file' can only be set "
                              "for images with an external data file");
        }
        if (s->data_file_raw) {
            return error_setg(errp, -EINVAL, "data-file-raw requires a data "
                              "file");
        }
        return 0;
    }
    if (given && child->n > 0) {
        opts_free(child);
        return error_setg(errp, -EINVAL, "Cannot reference an existing block "
                          "device with additional options or a new filename");
    }
    if (!given && !opts_has(child, "filename") &&
        (bs->flags & BLK_O_NO_BACKING)) {
        /* as QEMU's BDRV_O_NO_IO open for `info`: no file the image names
         * is opened (a hostile image must not make us open or write
         * arbitrary files); guest data I/O then fails with ENOMEDIUM */
        opts_free(child);
        return 0;
    }
    if (given) {
        /* a name on the command line: relative to where we run */
        name = xstrdup(given);
    } else if (opts_has(child, "filename")) {
        name = xstrdup(opts_get(child, "filename"));
        opts_del(child, "filename");
    } else if (s->image_data_file) {
        name = resolve_name(bs, s->image_data_file);
    } else {
        opts_free(child);
        return error_setg(errp, -EINVAL, "'data-file' is required for this "
                          "image");
    }
    /* the bytes as they are (a raw image): the protocol node itself, so
     * writes may extend it as the image grows */
    if (!opts_has(child, "driver")) {
        opts_set(child, "driver", blk_find_protocol(name)->name);
    }
    flags = bs->flags & (BLK_O_RDWR | BLK_O_NOCACHE | BLK_O_NO_FLUSH |
                         BLK_O_WRITETHROUGH | BLK_O_FORCE_SHARE |
                         BLK_O_NO_LOCK | BLK_O_CREATE);
    ret = blk_open(&s->data_file, name, child, flags, &err);
    opts_free(child);
    if (ret < 0) {
        s->data_file = NULL;
        const char *msg = error_msg(err, ret);
        if (strstr(msg, name)) {
            error_setg(errp, ret, "%s", msg);
        } else {
            error_setg(errp, ret, "Could not open data file '%s': %s", name,
                       msg);
        }
        strata_error_free(err);
    }
    free(name);
    return ret;
}

void qcow2_datafile_close(struct qcow2_state *s)
{
    if (s->data_file) {
        blk_close(s->data_file);
        s->data_file = NULL;
    }
    free(s->image_data_file);
    s->image_data_file = NULL;
}

void coroutine_fn qcow2_free_data_cluster(struct blk_node *bs,
                                          uint64_t l2_entry,
                                          enum qcow2_discard_type type)
{
    struct qcow2_state *s = bs->opaque;
    enum qcow2_cluster_type t = qcow2_cluster_type(s, l2_entry);
    uint64_t host = l2_entry & QCOW2_L2E_OFFSET_MASK;

    if (!qcow2_has_data_file(s)) {
        qcow2_free_any_cluster(bs, l2_entry, type);
        return;
    }
    /* nothing is counted; the data file may only be told */
    if ((t != QCOW2_CLUSTER_NORMAL && t != QCOW2_CLUSTER_ZERO_ALLOC) ||
        !s->data_file || qcow2_offset_into_cluster(s, host) ||
        type == QCOW2_DISCARD_NEVER) {
        return;
    }
    if (s->data_file_raw) {
        /* the raw image must read what the L2 entry now says: zeroes
         * (a discard might leave the old bytes) */
        blk_co_pwrite_zeroes(s->data_file, host, s->cluster_size,
                             BLK_REQ_MAY_UNMAP);
    } else if (s->discard_passthrough[type]) {
        blk_co_discard(s->data_file, host, s->cluster_size);
    }
}

/* An external data file holds data clusters only at their guest offsets
 * and never compressed ones (QEMU's checks and messages). */
int qcow2_datafile_check_entry(struct blk_node *bs, uint64_t entry,
                               uint64_t cluster, uint64_t l2_offset,
                               uint32_t l2_index)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t hc = entry & QCOW2_L2E_OFFSET_MASK;

    if (!qcow2_has_data_file(s)) {
        return 0;
    }
    if (entry & QCOW2_OFLAG_COMPRESSED) {
        return qcow2_signal_corruption(bs, true, "Compressed cluster entry "
                                       "found in image with external data "
                                       "file (L2 offset: %#llx, L2 index: "
                                       "%#x)", (unsigned long long)l2_offset,
                                       l2_index);
    }
    if (hc && hc != cluster) {
        return qcow2_signal_corruption(bs, true, "External data file host "
                                       "cluster offset %#llx does not match "
                                       "guest cluster offset: %#llx, L2 "
                                       "index: %#x)", (unsigned long long)hc,
                                       (unsigned long long)cluster, l2_index);
    }
    return 0;
}

void qcow2_datafile_get_info(struct blk_node *bs, struct json *data)
{
    struct qcow2_state *s = bs->opaque;

    if (s->image_data_file) {
        json_set_str(data, "data-file", s->image_data_file);
    }
    if (qcow2_has_data_file(s)) {
        json_set_bool(data, "data-file-raw", s->data_file_raw);
    }
}

/* QEMU 7.2's amend: data_file renames the data file of an image that has
 * one ("" forgets the name), data_file_raw may be cleared, or set where it
 * is set already. */
int coroutine_fn qcow2_datafile_amend(struct blk_node *bs,
                                      const char *data_file,
                                      int data_file_raw, bool apply,
                                      struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;

    if (!apply) {
        if (data_file && !qcow2_has_data_file(s)) {
            return error_setg(errp, -EINVAL, "data-file can only be set for "
                              "images that use an external data file");
        }
        if (data_file_raw > 0 && !s->data_file_raw) {
            return error_setg(errp, -EINVAL, "data-file-raw cannot be set on "
                              "existing images");
        }
        return 0;
    }
    if (data_file) {
        free(s->image_data_file);
        s->image_data_file = data_file[0] ? xstrdup(data_file) : NULL;
    }
    if (data_file_raw >= 0) {
        s->data_file_raw = data_file_raw > 0;
        if (s->data_file_raw) {
            s->autoclear_features |= QCOW2_AUTOCLEAR_DATA_FILE_RAW;
        } else {
            s->autoclear_features &= ~QCOW2_AUTOCLEAR_DATA_FILE_RAW;
        }
    }
    return 0;
}
