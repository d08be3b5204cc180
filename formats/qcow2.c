/* The qcow2 format (QEMU's copy-on-write image, versions 2 and 3): the
 * driver, probing, runtime options, opening and closing, corruption
 * handling (overlap checks, the corrupt bit) and `info`.  The header is
 * read and written in qcow2-header.c, the data path is in qcow2-io.c, the
 * mapping in qcow2-cluster.c, refcounts in qcow2-refcount.c, the metadata
 * cache in qcow2-cache.c and creation in qcow2-create.c. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "drivers.h"
#include "loop.h"
#include "qcow2.h"
#include "util.h"

#define DEFAULT_L2_CACHE_MAX_SIZE (32ull * 1024 * 1024)
#define MIN_L2_CACHE_TABLES 2
#define MIN_REFCOUNT_CACHE_TABLES 4

static int qcow2_probe(const uint8_t *buf, size_t len, const char *filename)
{
    if (len >= QCOW2_V3_HEADER_SIZE && qcow2_ld32(buf) == QCOW2_MAGIC &&
        qcow2_ld32(buf + 4) >= 2) {
        return 100;
    }
    return 0;
}

/* ---- runtime options ---- */

static const char *const overlap_names[QCOW2_OL_MAX_BITNR] = {
    "main-header", "active-l1", "active-l2", "refcount-table",
    "refcount-block", "snapshot-table", "inactive-l1", "inactive-l2",
    "bitmap-directory",
};

/* overlap-check (a template) and overlap-check.<kind> booleans. */
static int parse_overlap(struct blk_node *bs, struct blk_opts *opts,
                         struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    const char *a = opts_get(opts, "overlap-check");
    const char *b = opts_get(opts, "overlap-check.template");
    const char *t;
    char key[64];

    if (a && b && strcmp(a, b) != 0) {
        return error_setg(errp, -EINVAL, "Conflicting values for qcow2 "
                          "options 'overlap-check' ('%s') and "
                          "'overlap-check.template' ('%s')", a, b);
    }
    t = a ? a : b ? b : "cached";
    if (strcmp(t, "none") == 0) {
        s->overlap_check = 0;
    } else if (strcmp(t, "constant") == 0) {
        s->overlap_check = QCOW2_OL_CONSTANT;
    } else if (strcmp(t, "cached") == 0) {
        s->overlap_check = QCOW2_OL_CACHED;
    } else if (strcmp(t, "all") == 0) {
        s->overlap_check = QCOW2_OL_ALL;
    } else {
        return error_setg(errp, -EINVAL, "Unsupported value '%s' for qcow2 "
                          "option 'overlap-check'. Allowed are any of the "
                          "following: none, constant, cached, all", t);
    }
    for (int i = 0; i < QCOW2_OL_MAX_BITNR; i++) {
        bool on;
        snprintf(key, sizeof(key), "overlap-check.%s", overlap_names[i]);
        int ret = opts_get_bool(opts, key, s->overlap_check & (1u << i), &on,
                                errp);
        if (ret < 0) {
            return ret;
        }
        s->overlap_check = on ? s->overlap_check | (1u << i)
                              : s->overlap_check & ~(1u << i);
    }
    return 0;
}

/* Cache sizes as QEMU computes them from cache-size, l2-cache-size,
 * refcount-cache-size and l2-cache-entry-size. */
static int parse_cache_sizes(struct blk_node *bs, struct blk_opts *opts,
                             uint64_t *l2_tables, uint64_t *rc_tables,
                             struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t cs = s->cluster_size, combined, l2_max, rc, entry, l2;
    uint64_t max_l2_cache = ROUND_UP(DIV_ROUND_UP(bs->size, cs) * 8, cs);
    uint64_t min_rc = MIN_REFCOUNT_CACHE_TABLES * cs;
    bool combined_set = opts_has(opts, "cache-size");
    bool l2_set = opts_has(opts, "l2-cache-size");
    bool rc_set = opts_has(opts, "refcount-cache-size");
    bool entry_set = opts_has(opts, "l2-cache-entry-size");
    uint64_t interval;
    int ret;

    if ((ret = opts_get_size(opts, "cache-size", 0, &combined, errp)) < 0 ||
        (ret = opts_get_size(opts, "l2-cache-size", DEFAULT_L2_CACHE_MAX_SIZE,
                             &l2_max, errp)) < 0 ||
        (ret = opts_get_size(opts, "refcount-cache-size", 0, &rc, errp)) < 0 ||
        (ret = opts_get_size(opts, "l2-cache-entry-size", cs, &entry,
                             errp)) < 0 ||
        (ret = opts_get_uint(opts, "cache-clean-interval", 600, &interval,
                             errp)) < 0) {
        return ret;
    }
    l2 = MIN(max_l2_cache, l2_max);
    if (combined_set) {
        if (l2_set && rc_set) {
            return error_setg(errp, -EINVAL, "cache-size, l2-cache-size and "
                              "refcount-cache-size may not be set at the "
                              "same time");
        } else if (l2_set && l2_max > combined) {
            return error_setg(errp, -EINVAL, "l2-cache-size may not exceed "
                              "cache-size");
        } else if (rc > combined) {
            return error_setg(errp, -EINVAL, "refcount-cache-size may not "
                              "exceed cache-size");
        }
        if (l2_set) {
            rc = combined - l2;
        } else if (rc_set) {
            l2 = combined - rc;
        } else if (combined >= max_l2_cache + min_rc) {
            l2 = max_l2_cache;
            rc = combined - l2;
        } else {
            rc = MIN(combined, min_rc);
            l2 = combined - rc;
        }
    }
    if (l2 < max_l2_cache && !entry_set) {
        entry = MIN(cs, 4096); /* QEMU then works in 4 KiB slices */
    }
    if (entry < 512 || entry > cs || (entry & (entry - 1))) {
        return error_setg(errp, -EINVAL, "L2 cache entry size must be a power "
                          "of two between 512 and the cluster size (%u)",
                          s->cluster_size);
    }
    s->l2_slice_size = (uint32_t)(entry / 8);
    if (l2 / entry > INT32_MAX) {
        return error_setg(errp, -EINVAL, "L2 cache size too big");
    }
    if (rc / cs > INT32_MAX) {
        return error_setg(errp, -EINVAL, "Refcount cache size too big");
    }
    /* whole tables here, however QEMU would slice them */
    *l2_tables = MAX(l2 / cs, (uint64_t)MIN_L2_CACHE_TABLES);
    *rc_tables = MAX(rc / cs, (uint64_t)MIN_REFCOUNT_CACHE_TABLES);
    return 0;
}

int qcow2_parse_options(struct blk_node *bs, struct blk_opts *opts,
                        struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t l2_tables = 0, rc_tables = 0;
    bool lazy, b;
    int ret;

    ret = opts_get_bool(opts, "lazy-refcounts",
                        s->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS,
                        &lazy, errp);
    if (ret < 0) {
        return ret;
    }
    if (lazy && s->version < 3) {
        return error_setg(errp, -EINVAL, "Lazy refcounts require a qcow2 "
                          "image with at least qemu 1.1 compatibility level");
    }
    s->use_lazy_refcounts = lazy;
    static const struct {
        const char *key;
        enum qcow2_discard_type type;
        bool def;
    } discards[] = {
        /* QEMU: on with discard=unmap (qemu-io's default); the core has
         * no such flag yet, so on */
        {"pass-discard-request", QCOW2_DISCARD_REQUEST, true},
        {"pass-discard-snapshot", QCOW2_DISCARD_SNAPSHOT, true},
        {"pass-discard-other", QCOW2_DISCARD_OTHER, false},
    };
    s->discard_passthrough[QCOW2_DISCARD_ALWAYS] = true;
    for (size_t i = 0; i < ARRAY_SIZE(discards); i++) {
        ret = opts_get_bool(opts, discards[i].key, discards[i].def, &b, errp);
        if (ret < 0) {
            return ret;
        }
        s->discard_passthrough[discards[i].type] = b;
    }
    ret = parse_overlap(bs, opts, errp);
    if (ret < 0) {
        return ret;
    }
    ret = parse_cache_sizes(bs, opts, &l2_tables, &rc_tables, errp);
    if (ret < 0) {
        return ret;
    }
    opts_get(opts, "encrypt.key-secret"); /* nothing to decrypt */
    s->l2_cache = qcow2_cache_create((int)l2_tables, s->cluster_size,
                                     QCOW2_OL_ACTIVE_L2);
    s->refblock_cache = qcow2_cache_create((int)rc_tables, s->cluster_size,
                                           QCOW2_OL_REFCOUNT_BLOCK);
    return 0;
}

/* ---- open and close ---- */

struct open_args {
    struct blk_node *bs;
    struct blk_opts *opts;
    struct strata_error **errp;
    int ret;
    bool done;
};

/* A dirty image (lazy refcounts, not closed cleanly) opened read-write
 * has its refcounts rebuilt first, as QEMU does on open (except for
 * `check`, which repairs it itself and says what it found). */
static int coroutine_fn repair_dirty(struct blk_node *bs,
                                     struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    struct blk_check_result res;
    int ret;

    memset(&res, 0, sizeof(res));
    ret = qcow2_co_check(bs, &res, BLK_FIX_ERRORS | BLK_FIX_LEAKS);
    free(res.messages);
    if (ret >= 0 && (res.check_errors || res.corruptions)) {
        ret = -EIO;
    }
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Could not repair dirty image");
    }
    co_mutex_lock(&s->lock);
    ret = qcow2_mark_clean(bs);
    co_mutex_unlock(&s->lock);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Could not repair dirty image");
    }
    return 0;
}

static void coroutine_fn open_entry(void *opaque)
{
    struct open_args *a = opaque;
    struct qcow2_state *s = a->bs->opaque;

    co_mutex_lock(&s->lock);
    a->ret = qcow2_do_open(a->bs, a->opts, a->errp);
    co_mutex_unlock(&s->lock);
    /* the check takes the lock itself */
    if (a->ret >= 0 && !a->bs->read_only &&
        !(a->bs->flags & BLK_O_CHECK) &&
        (s->incompatible_features & QCOW2_INCOMPAT_DIRTY)) {
        a->ret = repair_dirty(a->bs, a->errp);
    }
    a->done = true;
}

void qcow2_free_state(struct qcow2_state *s)
{
    free(s->l1_table);
    free(s->refcount_table);
    free(s->snapshots);
    free(s->sn_check_msg);
    free(s->sn_check_hint);
    free(s->unknown_header_fields);
    free(s->image_backing_file);
    free(s->image_backing_format);
    free(s->corrupt_msg);
    while (s->unknown_exts) {
        struct qcow2_unknown_ext *u = s->unknown_exts;
        s->unknown_exts = u->next;
        free(u->data);
        free(u);
    }
    while (s->discards) {
        struct qcow2_discard *d = s->discards;
        s->discards = d->next;
        free(d);
    }
    qcow2_cache_destroy(s->l2_cache);
    qcow2_cache_destroy(s->refblock_cache);
    qcow2_crypto_free(s); /* crypto */
    qcow2_datafile_close(s);
    memset(s, 0, sizeof(*s));
}

/* Read the image in a coroutine (the lock held), then open the backing
 * chain unless backing="" asks for none. */
static int qcow2_open(struct blk_node *bs, struct blk_opts *opts,
                      struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    struct open_args a = {bs, opts, errp, 0, false};
    const char *backing;
    int ret;

    co_mutex_init(&s->lock);
    if (in_coroutine()) {
        open_entry(&a);
    } else {
        coroutine_enter(coroutine_create(open_entry, &a));
        loop_run_until(bs->loop, &a.done);
    }
    if (a.ret < 0) {
        qcow2_free_state(s);
        return a.ret;
    }
    bs->limits.request_alignment = 1;
    qcow2_crypto_refresh_limits(bs); /* crypto */
    bs->limits.pwrite_zeroes_alignment = s->cluster_size;
    bs->limits.opt_transfer = s->cluster_size;

    if (s->image_backing_file) {
        bs->backing_file = xstrdup(s->image_backing_file);
    }
    if (s->image_backing_format) {
        bs->backing_format = xstrdup(s->image_backing_format);
    }
    /* backing= "" (or "null") opens the image without its backing chain */
    backing = opts_get(opts, "backing");
    if (backing && (backing[0] == '\0' || strcmp(backing, "null") == 0)) {
        return 0;
    }
    if (backing) {
        qcow2_free_state(s);
        return error_setg(errp, -EINVAL, "Option 'backing' may only be "
                          "empty (no backing file) for qcow2 here");
    }
    ret = blk_open_backing(bs, errp);
    if (ret < 0) {
        qcow2_free_state(s);
    }
    return ret;
}

struct close_args {
    struct blk_node *bs;
    bool done;
};

static void coroutine_fn close_entry(void *opaque)
{
    struct close_args *a = opaque;
    struct qcow2_state *s = a->bs->opaque;

    co_mutex_lock(&s->lock);
    if (qcow2_flush_caches(a->bs) >= 0) {
        /* everything is on disk: refcounts are exact again */
        qcow2_mark_clean(a->bs);
    }
    co_mutex_unlock(&s->lock);
    a->done = true;
}

/* Write back the caches of a writable image and free everything. */
static void qcow2_close(struct blk_node *bs)
{
    struct qcow2_state *s = bs->opaque;

    if (!bs->read_only && !s->dead && s->l2_cache) {
        struct close_args a = {bs, false};
        if (in_coroutine()) {
            close_entry(&a);
        } else {
            coroutine_enter(coroutine_create(close_entry, &a));
            loop_run_until(bs->loop, &a.done);
        }
    }
    qcow2_free_state(s);
}

/* ---- caches, corruption ---- */

int coroutine_fn qcow2_write_caches(struct blk_node *bs)
{
    struct qcow2_state *s = bs->opaque;
    int ret = qcow2_cache_write(bs, s->l2_cache);

    /* a dirty image defers refcounts until it is marked clean (QEMU) */
    if (ret >= 0 && !(s->incompatible_features & QCOW2_INCOMPAT_DIRTY)) {
        ret = qcow2_cache_write(bs, s->refblock_cache);
    }
    return ret;
}

int coroutine_fn qcow2_flush_caches(struct blk_node *bs)
{
    int ret = qcow2_write_caches(bs);
    return ret < 0 ? ret : blk_co_flush(bs->file);
}

int coroutine_fn qcow2_mark_dirty(struct blk_node *bs)
{
    struct qcow2_state *s = bs->opaque;
    uint8_t be[8];
    int ret;

    if (s->incompatible_features & QCOW2_INCOMPAT_DIRTY) {
        return 0;
    }
    /* what was written before the bit must not depend on it */
    ret = blk_co_flush(bs->file);
    if (ret < 0) {
        return ret;
    }
    qcow2_st64(be, s->incompatible_features | QCOW2_INCOMPAT_DIRTY);
    ret = blk_co_pwrite(bs->file, QCOW2_HDR_INCOMPAT, 8, be, 0);
    if (ret >= 0) {
        ret = blk_co_flush(bs->file);
    }
    if (ret < 0) {
        return ret;
    }
    s->incompatible_features |= QCOW2_INCOMPAT_DIRTY;
    return 0;
}

int coroutine_fn qcow2_mark_clean(struct blk_node *bs)
{
    struct qcow2_state *s = bs->opaque;
    int ret;

    if (!(s->incompatible_features & QCOW2_INCOMPAT_DIRTY)) {
        return 0;
    }
    s->incompatible_features &= ~QCOW2_INCOMPAT_DIRTY;
    ret = qcow2_flush_caches(bs);
    if (ret >= 0) {
        ret = qcow2_update_header(bs);
    }
    if (ret >= 0) {
        ret = blk_co_flush(bs->file);
    }
    if (ret < 0) {
        s->incompatible_features |= QCOW2_INCOMPAT_DIRTY;
    }
    return ret;
}

int qcow2_signal_corruption(struct blk_node *bs, bool fatal,
                            const char *fmt, ...)
{
    struct qcow2_state *s = bs->opaque;
    char *msg;
    va_list ap;
    int n;

    if (s->corrupt_signalled &&
        (!fatal || (s->incompatible_features & QCOW2_INCOMPAT_CORRUPT))) {
        fatal = false;
    }
    va_start(ap, fmt);
    n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0) {
        abort();
    }
    if (!s->corrupt_msg) {
        s->corrupt_msg = msg;
    } else {
        free(msg);
    }
    if (fatal) {
        s->incompatible_features |= QCOW2_INCOMPAT_CORRUPT;
        s->dead = true;
        if (!bs->read_only && s->version >= 3) {
            /* only the feature field: the rest of the header may be what
             * is broken (best effort, the image is unusable anyway) */
            uint8_t be[8];
            qcow2_st64(be, s->incompatible_features);
            if (blk_co_pwrite(bs->file, QCOW2_HDR_INCOMPAT, 8, be, 0) >= 0) {
                blk_co_flush(bs->file);
            }
        }
    }
    s->corrupt_signalled = true;
    return -EIO;
}

/* ---- overlap checks ---- */

static const char *const ol_names[QCOW2_OL_MAX_BITNR] = {
    "qcow2_header", "active L1 table", "active L2 table", "refcount table",
    "refcount block", "snapshot table", "inactive L1 table",
    "inactive L2 table", "bitmap directory",
};

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return blen && alen && a < b + blen && b < a + alen;
}

/* Does an L1 table (active or a snapshot's, read from disk) point at an
 * L2 table inside the range? */
static int coroutine_fn l1_l2_overlap(struct blk_node *bs,
                                      const uint64_t *l1, uint64_t l1_offset,
                                      uint32_t l1_size, uint64_t offset,
                                      uint64_t size)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t *buf = NULL;
    int found = 0;

    if (!l1) {
        if (l1_size > QCOW2_MAX_L1_SIZE / 8) {
            return 0;
        }
        buf = xmalloc((size_t)l1_size * 8);
        int ret = blk_co_pread(bs->file, l1_offset, (uint64_t)l1_size * 8,
                               buf, 0);
        if (ret < 0) {
            free(buf);
            return ret;
        }
    }
    for (uint32_t i = 0; i < l1_size && !found; i++) {
        uint64_t e = l1 ? l1[i] : qcow2_ld64(&buf[i]);
        uint64_t l2 = e & QCOW2_L1E_OFFSET_MASK;
        found = l2 && overlaps(offset, size, l2, s->cluster_size);
    }
    free(buf);
    return found;
}

int coroutine_fn qcow2_check_metadata_overlap(struct blk_node *bs,
                                              unsigned ign, uint64_t offset,
                                              uint64_t size)
{
    struct qcow2_state *s = bs->opaque;
    unsigned chk = s->overlap_check & ~ign;
    int ret;

    if (!size || !chk) {
        return 0;
    }
    if ((chk & QCOW2_OL_MAIN_HEADER) && offset < s->cluster_size) {
        return QCOW2_OL_MAIN_HEADER;
    }
    /* whole clusters: metadata never shares one with anything */
    size = ROUND_UP(qcow2_offset_into_cluster(s, offset) + size,
                    (uint64_t)s->cluster_size);
    offset = qcow2_start_of_cluster(s, offset);

    if ((chk & QCOW2_OL_ACTIVE_L1) &&
        overlaps(offset, size, s->l1_table_offset, (uint64_t)s->l1_size * 8)) {
        return QCOW2_OL_ACTIVE_L1;
    }
    if ((chk & QCOW2_OL_REFCOUNT_TABLE) &&
        overlaps(offset, size, s->refcount_table_offset,
                 (uint64_t)s->refcount_table_size * 8)) {
        return QCOW2_OL_REFCOUNT_TABLE;
    }
    if ((chk & QCOW2_OL_SNAPSHOT_TABLE) &&
        overlaps(offset, size, s->snapshots_offset, s->snapshots_size)) {
        return QCOW2_OL_SNAPSHOT_TABLE;
    }
    if (chk & QCOW2_OL_INACTIVE_L1) {
        for (uint32_t i = 0; i < s->nb_snapshots; i++) {
            if (overlaps(offset, size, s->snapshots[i].l1_offset,
                         (uint64_t)s->snapshots[i].l1_size * 8)) {
                return QCOW2_OL_INACTIVE_L1;
            }
        }
    }
    if ((chk & QCOW2_OL_ACTIVE_L2) && s->l1_table) {
        ret = l1_l2_overlap(bs, s->l1_table, 0, s->l1_size, offset, size);
        if (ret) {
            return ret < 0 ? ret : QCOW2_OL_ACTIVE_L2;
        }
    }
    if ((chk & QCOW2_OL_REFCOUNT_BLOCK) && s->refcount_table) {
        for (uint32_t i = 0; i <= s->max_refcount_table_index &&
                             i < s->refcount_table_size; i++) {
            uint64_t rb = s->refcount_table[i] & QCOW2_REFT_OFFSET_MASK;
            if (rb && overlaps(offset, size, rb, s->cluster_size)) {
                return QCOW2_OL_REFCOUNT_BLOCK;
            }
        }
    }
    if (chk & QCOW2_OL_INACTIVE_L2) {
        for (uint32_t i = 0; i < s->nb_snapshots; i++) {
            ret = l1_l2_overlap(bs, NULL, s->snapshots[i].l1_offset,
                                s->snapshots[i].l1_size, offset, size);
            if (ret) {
                return ret < 0 ? ret : QCOW2_OL_INACTIVE_L2;
            }
        }
    }
    return 0;
}

int coroutine_fn qcow2_pre_write_overlap_check(struct blk_node *bs,
                                               unsigned ign, uint64_t offset,
                                               uint64_t size)
{
    struct qcow2_state *s = bs->opaque;
    int ret;

    if (s->dead) {
        return -EIO; /* after a fatal inconsistency nothing is written */
    }
    ret = qcow2_check_metadata_overlap(bs, ign, offset, size);

    if (ret <= 0) {
        return ret;
    }
    return qcow2_signal_corruption(bs, true, "Preventing invalid write on "
                                   "metadata (overlaps with %s)",
                                   ol_names[__builtin_ctz(ret)]);
}

/* ---- queries ---- */

/* cluster-size, the dirty flag and the format-specific data of info. */
static int qcow2_get_info(struct blk_node *bs, struct blk_info *info)
{
    struct qcow2_state *s = bs->opaque;
    struct json *data = json_new_object();

    info->cluster_size = s->cluster_size;
    info->is_dirty = s->incompatible_features & QCOW2_INCOMPAT_DIRTY;
    info->encrypted = s->crypt_method != 0;
    /* keys in QAPI order (ImageInfoSpecificQCow2) */
    if (s->version == 2) {
        json_set_str(data, "compat", "0.10");
        json_set_int(data, "refcount-bits", 1 << s->refcount_order);
    } else {
        json_set_str(data, "compat", "1.1");
        qcow2_datafile_get_info(bs, data);
        json_set_bool(data, "extended-l2", s->extended_l2);
        json_set_bool(data, "lazy-refcounts",
                      s->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS);
        json_set_bool(data, "corrupt",
                      s->incompatible_features & QCOW2_INCOMPAT_CORRUPT);
        json_set_int(data, "refcount-bits", 1 << s->refcount_order);
    }
    qcow2_crypto_get_info(bs, data); /* crypto */
    json_set_str(data, "compression-type",
                 s->compression_type == QCOW2_COMPRESSION_ZSTD ? "zstd"
                                                               : "zlib");
    info->format_specific = json_new_object();
    json_set_str(info->format_specific, "type", "qcow2");
    json_set(info->format_specific, "data", data);
    return 0;
}

/* As QEMU: preallocated images (the first L1 entry set) have no zero
 * initialisation of their own. */
static bool qcow2_has_zero_init(struct blk_node *bs)
{
    struct qcow2_state *s = bs->opaque;
    bool preallocated = s->l1_size > 0 && s->l1_table[0] != 0;

    return !preallocated || blk_has_zero_init(qcow2_data_child(bs));
}

/* Internal snapshots would leave the data file behind: QEMU refuses them
 * for images with one (its plain -ENOTSUP). */
static int coroutine_fn qcow2_df_snapshot_create(struct blk_node *bs,
                                                 struct blk_snapshot *sn,
                                                 struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;

    if (qcow2_has_data_file(s)) {
        return -ENOTSUP;
    }
    return qcow2_snapshot_create(bs, sn, errp);
}

const struct blk_driver blk_drv_qcow2 = {
    .name = "qcow2",
    .kind = BLK_KIND_FORMAT,
    .state_size = sizeof(struct qcow2_state),
    .probe = qcow2_probe,
    .open = qcow2_open,
    .close = qcow2_close,
    .create = qcow2_create,
    .create_opts = qcow2_create_opts,
    .preadv = qcow2_co_preadv,
    .pwritev = qcow2_co_pwritev,
    .pwrite_zeroes = qcow2_co_pwrite_zeroes,
    .discard = qcow2_co_discard,
    .flush = qcow2_co_flush,
    .block_status = qcow2_co_block_status,
    .truncate = qcow2_co_truncate,
    .has_zero_init = qcow2_has_zero_init,
    .get_info = qcow2_get_info,
    .pwritev_compressed = qcow2_co_pwritev_compressed,
    .snapshot_create = qcow2_df_snapshot_create,
    .snapshot_goto = qcow2_snapshot_goto,
    .snapshot_delete = qcow2_snapshot_delete,
    .snapshot_list = qcow2_snapshot_list,
    .snapshot_load_tmp = qcow2_snapshot_load_tmp,
    .check = qcow2_co_check,
    .amend = qcow2_amend,
    .measure = qcow2_measure,
    .change_backing_file = qcow2_change_backing_file,
    .make_empty = qcow2_make_empty,
    .reopen = qcow2_reopen,
    .supported_zero_flags = BLK_REQ_MAY_UNMAP | BLK_REQ_NO_FALLBACK,
};
