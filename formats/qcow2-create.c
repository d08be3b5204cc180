/* Creating qcow2 images, and growing them (truncate), with QEMU's option
 * names, checks and messages.  The steps are QEMU's so the files come out
 * byte for byte the same: a header, a refcount table and one refcount
 * block; then the image is opened and the first three clusters are
 * allocated, the full header written, the L1 table grown to the size (with
 * preallocation) and the backing file recorded. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "qcow2.h"
#include "util.h"

const struct blk_opt_desc qcow2_create_opts[] = {
    {"encryption", OPT_BOOL, "Encrypt the image with format 'aes'. "
     "(Deprecated in favor of encrypt.format=aes)", NULL},
    {"encrypt.format", OPT_STRING,
     "Encrypt the image, format choices: 'aes', 'luks'", NULL},
    {"encrypt.key-secret", OPT_STRING,
     "ID of secret providing qcow AES key or LUKS passphrase", NULL},
    {"encrypt.cipher-alg", OPT_STRING, "Name of encryption cipher algorithm",
     NULL},
    {"encrypt.cipher-mode", OPT_STRING, "Name of encryption cipher mode",
     NULL},
    {"encrypt.ivgen-alg", OPT_STRING, "Name of IV generator algorithm", NULL},
    {"encrypt.ivgen-hash-alg", OPT_STRING,
     "Name of IV generator hash algorithm", NULL},
    {"encrypt.hash-alg", OPT_STRING, "Name of encryption hash algorithm",
     NULL},
    {"encrypt.iter-time", OPT_NUMBER,
     "Time to spend in PBKDF in milliseconds", NULL},
    {"cluster_size", OPT_SIZE, "qcow2 cluster size", "65536"},
    {"extended_l2", OPT_BOOL, "Extended L2 tables", "off"},
    {"preallocation", OPT_STRING, "Preallocation mode (allowed values: off, "
     "metadata, falloc, full)", NULL},
    {"compression_type", OPT_STRING,
     "Compression method used for image cluster compression", "zlib"},
    {"size", OPT_SIZE, "Virtual disk size", NULL},
    {"compat", OPT_STRING, "Compatibility level (v2 [0.10] or v3 [1.1])",
     NULL},
    {"backing_file", OPT_STRING, "File name of a base image", NULL},
    {"backing_fmt", OPT_STRING, "Image format of the base image", NULL},
    {"data_file", OPT_STRING, "File name of an external data file", NULL},
    {"data_file_raw", OPT_BOOL,
     "The external data file must stay valid as a raw image", NULL},
    {"lazy_refcounts", OPT_BOOL, "Postpone refcount updates", "off"},
    {"refcount_bits", OPT_NUMBER, "Width of a reference count entry in bits",
     "16"},
    {NULL, 0, NULL, NULL},
};

/* The create options after validation. */
struct create_params {
    uint64_t size;
    int version;
    unsigned cluster_bits;
    unsigned refcount_order;
    uint8_t compression_type;
    bool lazy_refcounts;
    bool extended_l2;
    enum blk_prealloc prealloc;
    const char *backing_file, *backing_fmt;
    const char *data_file;  /* as given (recorded in the image), or NULL */
    bool data_file_raw;
    struct qcow2_crypto_create crypto; /* crypto */
};

static unsigned log2_exact(uint64_t v)
{
    unsigned n = 0;

    while (v > 1) {
        v >>= 1;
        n++;
    }
    return n;
}

/* QEMU's checks, in QEMU's order, with its messages; then what this
 * version cannot create yet. */
static int parse_params(struct blk_opts *opts, struct create_params *p,
                        struct strata_error **errp)
{
    const char *compat = opts_get(opts, "compat");
    const char *pa = opts_get(opts, "preallocation");
    const char *ct = opts_get(opts, "compression_type");
    const char *efmt = opts_get(opts, "encrypt.format");
    const char *data_file = opts_get(opts, "data_file");
    uint64_t cs, rb;
    bool extl2, encryption, data_raw;
    int ret;

    memset(p, 0, sizeof(*p));
    if ((ret = opts_get_size(opts, "size", 0, &p->size, errp)) < 0 ||
        (ret = opts_get_size(opts, "cluster_size", QCOW2_DEFAULT_CLUSTER_SIZE,
                             &cs, errp)) < 0 ||
        (ret = opts_get_bool(opts, "extended_l2", false, &extl2, errp)) < 0 ||
        (ret = opts_get_bool(opts, "lazy_refcounts", false,
                             &p->lazy_refcounts, errp)) < 0 ||
        (ret = opts_get_uint(opts, "refcount_bits", 16, &rb, errp)) < 0 ||
        (ret = opts_get_bool(opts, "encryption", false, &encryption,
                             errp)) < 0 ||
        (ret = opts_get_bool(opts, "data_file_raw", false, &data_raw,
                             errp)) < 0) {
        return ret;
    }
    /* parsed by QEMU's crypto layer; nothing to do with them here */
    static const char *const crypt_keys[] = {
        "encrypt.key-secret", "encrypt.cipher-alg", "encrypt.cipher-mode",
        "encrypt.ivgen-alg", "encrypt.ivgen-hash-alg", "encrypt.hash-alg",
        "encrypt.iter-time",
    };
    for (size_t i = 0; i < ARRAY_SIZE(crypt_keys); i++) {
        opts_get(opts, crypt_keys[i]);
    }
    p->backing_file = opts_get(opts, "backing_file");
    p->backing_fmt = opts_get(opts, "backing_fmt");
    if (p->size > INT64_MAX - BLK_SECTOR_SIZE) {
        return error_setg(errp, -EFBIG, "Image size is too large");
    }
    p->size = ROUND_UP(p->size, BLK_SECTOR_SIZE);

    if (!compat || strcmp(compat, "1.1") == 0 || strcmp(compat, "v3") == 0) {
        p->version = 3;
    } else if (strcmp(compat, "0.10") == 0 || strcmp(compat, "v2") == 0) {
        p->version = 2;
    } else {
        return error_setg(errp, -EINVAL, "Parameter 'version' does not accept "
                          "value '%s'", compat);
    }
    if (pa && (blk_parse_prealloc(pa, &p->prealloc) < 0)) {
        return error_setg(errp, -EINVAL, "Parameter 'preallocation' does not "
                          "accept value '%s'", pa);
    }
    if (ct && strcmp(ct, "zlib") == 0) {
        p->compression_type = QCOW2_COMPRESSION_ZLIB;
    } else if (ct && strcmp(ct, "zstd") == 0) {
        p->compression_type = QCOW2_COMPRESSION_ZSTD;
    } else if (ct) {
        return error_setg(errp, -EINVAL, "Parameter 'compression-type' does "
                          "not accept value '%s'", ct);
    }

    if (extl2 && p->version < 3) {
        return error_setg(errp, -EINVAL, "Extended L2 entries are only "
                          "supported with compatibility level 1.1 and above "
                          "(use version=v3 or greater)");
    }
    if (cs < 512 || cs > 2 * 1024 * 1024 || (cs & (cs - 1))) {
        return error_setg(errp, -EINVAL, "Cluster size must be a power of two "
                          "between 512 and 2048k");
    }
    if (extl2 && cs < 16384) {
        return error_setg(errp, -EINVAL, "Extended L2 entries are only "
                          "supported with cluster sizes of at least 16384 "
                          "bytes");
    }
    p->cluster_bits = log2_exact(cs);
    if (p->backing_file && p->prealloc != BLK_PREALLOC_OFF && !extl2) {
        return error_setg(errp, -EINVAL, "Backing file and preallocation can "
                          "only be used at the same time if extended_l2 is "
                          "on");
    }
    if (p->backing_fmt && !p->backing_file) {
        return error_setg(errp, -EINVAL, "Backing format cannot be used "
                          "without backing file");
    }
    if (p->version < 3 && p->lazy_refcounts) {
        return error_setg(errp, -EINVAL, "Lazy refcounts only supported with "
                          "compatibility level 1.1 and above (use version=v3 "
                          "or greater)");
    }
    if (rb > 64 || rb == 0 || (rb & (rb - 1))) {
        return error_setg(errp, -EINVAL, "Refcount width must be a power of "
                          "two and may not exceed 64 bits");
    }
    if (p->version < 3 && rb != 16) {
        return error_setg(errp, -EINVAL, "Different refcount widths than 16 "
                          "bits require compatibility level 1.1 or above (use "
                          "version=v3 or greater)");
    }
    p->refcount_order = log2_exact(rb);
    if (data_raw && !data_file) {
        return error_setg(errp, -EINVAL, "data-file-raw requires data-file");
    }
    if (data_raw && p->backing_file) {
        return error_setg(errp, -EINVAL, "Backing file and data-file-raw "
                          "cannot be used at the same time");
    }
    if (data_raw && p->prealloc == BLK_PREALLOC_OFF) {
        /* QEMU: the L2 tables map the raw file 1:1 from the start */
        p->prealloc = BLK_PREALLOC_METADATA;
    }
    if (data_file && p->version < 3) {
        return error_setg(errp, -EINVAL, "External data files are only "
                          "supported with compatibility level 1.1 and above "
                          "(use version=v3 or greater)");
    }
    if (p->compression_type != QCOW2_COMPRESSION_ZLIB && p->version < 3) {
        return error_setg(errp, -EINVAL, "Non-zlib compression type is only "
                          "supported with compatibility level 1.1 and above "
                          "(use version=v3 or greater)");
    }
#ifndef HAVE_ZSTD
    if (p->compression_type == QCOW2_COMPRESSION_ZSTD) {
        return error_setg(errp, -EINVAL, "Unknown compression type");
    }
#endif
    if (p->backing_file && strlen(p->backing_file) > QCOW2_MAX_BACKING_NAME) {
        return error_setg(errp, -EINVAL, "Could not assign backing file '%s' "
                          "with format '%s': Invalid argument",
                          p->backing_file, p->backing_fmt ? p->backing_fmt
                                                          : "");
    }

    ret = qcow2_crypto_create_parse(opts, encryption, efmt, &p->crypto,
                                    errp); /* crypto */
    if (ret < 0) {
        return ret;
    }
    p->extended_l2 = extl2;
    if (data_file && !data_file[0]) {
        return error_setg(errp, -EINVAL, "The data file name must not be "
                          "empty");
    }
    p->data_file = data_file;
    p->data_file_raw = data_raw;
    return 0;
}

/* The first three clusters as QEMU writes them before opening the image:
 * a minimal header, a refcount table pointing at one empty block. */
static int write_skeleton(const char *filename, const struct create_params *p,
                          struct strata_error **errp)
{
    uint32_t cs = 1u << p->cluster_bits;
    struct blk_node *file;
    uint8_t *buf;
    int ret;

    ret = blk_open_created_file(&file, filename, BLK_O_NO_FLUSH, errp);
    if (ret < 0) {
        return ret;
    }
    buf = xzalloc(3 * (size_t)cs);
    qcow2_st32(buf, QCOW2_MAGIC);
    qcow2_st32(buf + 4, p->version);
    qcow2_st32(buf + 20, p->cluster_bits);
    qcow2_st64(buf + 48, cs);   /* refcount table at cluster 1 */
    qcow2_st32(buf + 56, 1);
    qcow2_st32(buf + 96, p->refcount_order);
    qcow2_st32(buf + 100, QCOW2_V3_HEADER_SIZE);
    buf[QCOW2_HDR_COMPRESSION_TYPE] = p->compression_type;
    if (p->lazy_refcounts) {
        qcow2_st64(buf + 80, QCOW2_COMPAT_LAZY_REFCOUNTS);
    }
    qcow2_st64(buf + 72, (p->compression_type != QCOW2_COMPRESSION_ZLIB
                          ? QCOW2_INCOMPAT_COMPRESSION : 0) |
                         (p->extended_l2 ? QCOW2_INCOMPAT_EXTL2 : 0) |
                         (p->data_file ? QCOW2_INCOMPAT_DATA_FILE : 0));
    if (p->data_file_raw) {
        qcow2_st64(buf + 88, QCOW2_AUTOCLEAR_DATA_FILE_RAW);
    }
    qcow2_st64(buf + cs, 2 * (uint64_t)cs); /* its block at cluster 2 */
    ret = blk_pwrite(file, 0, 3 * (uint64_t)cs, buf, 0);
    if (ret < 0) {
        error_setg_errno(errp, ret, "Could not write qcow2 header");
    }
    free(buf);
    blk_close(file);
    return ret;
}

struct create_co {
    struct blk_node *bs;
    const struct create_params *p;
    struct strata_error **errp;
    int ret;
    bool done;
};

/* The part of creation that works on the open image (in a coroutine). */
static void coroutine_fn create_entry(void *opaque)
{
    struct create_co *c = opaque;
    struct blk_node *bs = c->bs;
    struct qcow2_state *s = bs->opaque;
    const struct create_params *p = c->p;
    int64_t off;
    int ret;

    co_mutex_lock(&s->lock);
    if (p->data_file) {
        s->image_data_file = xstrdup(p->data_file);
    }
    off = qcow2_alloc_clusters(bs, 3 * (uint64_t)s->cluster_size);
    if (off < 0) {
        ret = error_setg_errno(c->errp, (int)off, "Could not allocate "
                               "clusters for qcow2 header and refcount "
                               "table");
        goto out;
    }
    ret = qcow2_update_header(bs);
    if (ret < 0) {
        error_setg_errno(c->errp, ret, "Could not write qcow2 header");
        goto out;
    }
    co_mutex_unlock(&s->lock);
    ret = qcow2_co_truncate(bs, p->size, false, p->prealloc, c->errp);
    co_mutex_lock(&s->lock);
    if (ret < 0) {
        goto out;
    }
    if (p->backing_file) {
        s->image_backing_file = xstrdup(p->backing_file);
        if (p->backing_fmt) {
            /* QEMU keeps at most 15 bytes of it */
            s->image_backing_format = xasprintf("%.*s", QCOW2_MAX_FORMAT_NAME,
                                                p->backing_fmt);
        }
        ret = qcow2_update_header(bs);
        if (ret < 0) {
            error_setg_errno(c->errp, ret, "Could not assign backing file "
                             "'%s' with format '%s'", p->backing_file,
                             p->backing_fmt ? p->backing_fmt : "");
            goto out;
        }
    }
    ret = qcow2_crypto_create(bs, &p->crypto, c->errp); /* crypto */
    if (ret < 0) {
        goto out;
    }
    ret = qcow2_flush_caches(bs);
    if (ret < 0) {
        error_setg_errno(c->errp, ret, "Could not write qcow2 metadata");
    }
out:
    co_mutex_unlock(&s->lock);
    c->ret = ret;
    c->done = true;
}

/* The data file as QEMU creates it: a raw file of the virtual size, with
 * the preallocation asked for (metadata: none, only the image maps it). */
static int create_data_file(const char *name, struct blk_opts *opts,
                            const struct create_params *p,
                            struct strata_error **errp)
{
    struct blk_opts *fopts = opts_new();
    int ret;

    opts_set_uint(fopts, "size", p->size);
    if (p->prealloc == BLK_PREALLOC_FALLOC ||
        p->prealloc == BLK_PREALLOC_FULL) {
        opts_set(fopts, "preallocation", blk_prealloc_name(p->prealloc));
    }
    if (opts_has(opts, "nocow")) {
        opts_set(fopts, "nocow", opts_get(opts, "nocow"));
    }
    ret = blk_create_file(name, fopts, errp);
    opts_free(fopts);
    return ret;
}

/* Validate, write the skeleton, then finish through an open image. */
int qcow2_create(const char *filename, struct blk_opts *opts,
                 struct strata_error **errp)
{
    struct create_params p;
    struct blk_opts *fopts, *o;
    struct blk_node *bs;
    char *data_name = NULL;
    int ret;

    ret = parse_params(opts, &p, errp);
    if (ret < 0) {
        return ret;
    }
    /* the file starts empty; nocow and the extent hint are the file's */
    fopts = opts_new();
    opts_set(fopts, "size", "0");
    if (opts_has(opts, "nocow")) {
        opts_set(fopts, "nocow", opts_get(opts, "nocow"));
    }
    if (opts_has(opts, "extent_size_hint")) {
        opts_set(fopts, "extent_size_hint", opts_get(opts, "extent_size_hint"));
    }
    ret = blk_create_file(filename, fopts, errp);
    opts_free(fopts);
    if (ret < 0) {
        return ret;
    }
    ret = write_skeleton(filename, &p, errp);
    if (ret < 0) {
        return ret;
    }
    if (p.data_file) {
        data_name = blk_resolve_backing_name(filename, p.data_file);
        ret = create_data_file(data_name, opts, &p, errp);
        if (ret < 0) {
            free(data_name);
            return ret;
        }
    }

    o = opts_new();
    opts_set(o, "driver", "qcow2");
    opts_set(o, "file.driver", blk_find_protocol(filename)->name);
    if (data_name) {
        opts_set(o, "data-file", data_name);
        free(data_name);
    }
    ret = blk_open(&bs, filename, o, BLK_O_RDWR | BLK_O_CREATE |
                   BLK_O_NO_BACKING | BLK_O_NO_FLUSH, errp);
    opts_free(o);
    if (ret < 0) {
        return ret;
    }
    struct create_co c = {bs, &p, errp, 0, false};
    if (in_coroutine()) {
        create_entry(&c);
    } else {
        coroutine_enter(coroutine_create(create_entry, &c));
        loop_run_until(bs->loop, &c.done);
    }
    blk_close(bs);
    if (c.ret < 0) {
        return c.ret;
    }

    /* everything was written without flushes: make it durable now */
    ret = blk_open_created_file(&bs, filename, 0, errp);
    if (ret < 0) {
        return ret;
    }
    ret = blk_flush(bs);
    blk_close(bs);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Could not flush '%s'", filename);
    }
    return 0;
}
