/* qcow2 amend: changing the options of an existing image, as QEMU's
 * qcow2_amend_options: the compatibility level (upgrade first, downgrade
 * last, zero clusters expanded on the way down), the refcount width (the
 * refcount structures rebuilt in the new width), lazy refcounts and the
 * virtual size; what QEMU refuses is refused with its message. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"
#include "util.h"

/* ---- progress over several operations (QEMU's amend helper) ---- */

struct amend_progress {
    blk_progress_fn *cb;
    void *opaque;
    int total_ops;      /* operations this amend performs */
    int op;             /* the current one, 1-based; 0 before the first */
    int last_op;
    int done_ops;
    uint64_t done_work; /* work of the finished operations */
    uint64_t last_size;
};

/* Report offset out of size of the current operation as a share of the
 * whole, projecting the work of the operations still to come. */
static void amend_report(struct amend_progress *p, uint64_t offset,
                         uint64_t size)
{
    uint64_t cur, projected;

    if (!p->cb || p->total_ops <= 0) {
        return;
    }
    if (p->op != p->last_op) {
        if (p->last_op) {
            p->done_work += p->last_size;
            p->done_ops++;
        }
        p->last_op = p->op;
    }
    p->last_size = size;
    cur = p->done_work + size;
    projected = cur * (uint64_t)(p->total_ops - p->done_ops - 1) /
                (uint64_t)(p->done_ops + 1);
    if (cur + projected) {
        p->cb(p->opaque, p->done_work + offset, cur + projected);
    }
}

/* ---- upgrade and downgrade ---- */

/* A deep copy of the snapshot list, for qcow2_write_snapshots (which
 * frees s->snapshots before it packs the new list). */
static struct qcow2_snapshot *copy_snapshots(const struct qcow2_state *s)
{
    struct qcow2_snapshot *c = xzalloc(sizeof(*c) * (s->nb_snapshots + 1));

    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        c[i] = s->snapshots[i];
        c[i].id_str = xstrdup(s->snapshots[i].id_str);
        c[i].name = xstrdup(s->snapshots[i].name);
        if (c[i].unknown_extra_size) {
            c[i].unknown_extra = xmalloc(c[i].unknown_extra_size);
            memcpy(c[i].unknown_extra, s->snapshots[i].unknown_extra,
                   c[i].unknown_extra_size);
        }
    }
    return c;
}

static void free_snapshot_copy(struct qcow2_snapshot *c, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        free(c[i].id_str);
        free(c[i].name);
        free(c[i].unknown_extra);
    }
    free(c);
}

/* v3 needs each snapshot's VM state size and disk size in its extra
 * data; rewriting the table records them. */
static int coroutine_fn upgrade(struct blk_node *bs, struct amend_progress *p,
                                struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    int ret;

    amend_report(p, 0, 2);
    if (s->nb_snapshots) {
        uint32_t n = s->nb_snapshots;
        struct qcow2_snapshot *c = copy_snapshots(s);
        ret = qcow2_write_snapshots(bs, c, n);
        free_snapshot_copy(c, n);
        if (ret < 0) {
            return error_setg_errno(errp, ret, "Failed to update the "
                                    "snapshot table");
        }
    }
    amend_report(p, 1, 2);
    s->version = 3;
    ret = qcow2_update_header(bs);
    if (ret < 0) {
        s->version = 2;
        return error_setg_errno(errp, ret, "Failed to update the image "
                                "header");
    }
    amend_report(p, 2, 2);
    return 0;
}

/* Turn the zero clusters of the L2 tables of one L1 table into data
 * clusters (v2 has no zero flag): plain ones become unallocated without a
 * backing file, else clusters of zeroes; preallocated ones are zeroed. */
static int coroutine_fn expand_zero_l1(struct blk_node *bs,
                                       const uint64_t *l1, uint32_t l1_size,
                                       struct amend_progress *p,
                                       uint64_t *visited, uint64_t total)
{
    struct qcow2_state *s = bs->opaque;
    bool backing = bs->backing || bs->backing_file;
    int ret = 0;

    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t l2_off = l1[i] & QCOW2_L1E_OFFSET_MASK, l2_rc;
        uint8_t *l2;

        if (!l2_off) {
            amend_report(p, ++*visited, total);
            continue;
        }
        if (qcow2_offset_into_cluster(s, l2_off)) {
            return qcow2_signal_corruption(bs, true, "L2 table offset %#llx "
                                           "unaligned (L1 index: %#x)",
                                           (unsigned long long)l2_off, i);
        }
        ret = qcow2_get_refcount(bs, l2_off >> s->cluster_bits, &l2_rc);
        if (ret < 0) {
            return ret;
        }
        ret = qcow2_cache_get(bs, s->l2_cache, l2_off, (void **)&l2);
        if (ret < 0) {
            return ret;
        }
        for (uint32_t j = 0; j < s->l2_size; j++) {
            uint64_t e = qcow2_l2_entry(s, l2, j), off, rc;
            enum qcow2_cluster_type t = qcow2_cluster_type(s, e);

            if (t != QCOW2_CLUSTER_ZERO_PLAIN &&
                t != QCOW2_CLUSTER_ZERO_ALLOC) {
                continue;
            }
            if (t == QCOW2_CLUSTER_ZERO_PLAIN && !backing) {
                qcow2_set_l2_entry(s, l2, j, 0);
                qcow2_cache_mark_dirty(s->l2_cache, l2);
                continue;
            }
            off = e & QCOW2_L2E_OFFSET_MASK;
            rc = 0;
            if (t == QCOW2_CLUSTER_ZERO_ALLOC) {
                ret = qcow2_get_refcount(bs, off >> s->cluster_bits, &rc);
                if (ret < 0) {
                    break;
                }
            }
            /* a preallocated cluster others use too (a snapshot) must not
             * be zeroed in place: it gets a cluster of its own (QEMU 7.2
             * zeroes it, losing the snapshot's data there) */
            if (t == QCOW2_CLUSTER_ZERO_PLAIN || rc > l2_rc) {
                int64_t a = qcow2_alloc_clusters(bs, s->cluster_size);
                if (a < 0) {
                    ret = (int)a;
                    break;
                }
                if (l2_rc > 1) {
                    /* every user of the table now holds the cluster */
                    ret = qcow2_update_refcount(bs, (uint64_t)a,
                                                s->cluster_size, l2_rc - 1,
                                                false, QCOW2_DISCARD_NEVER);
                    if (ret < 0) {
                        break;
                    }
                }
                if (t == QCOW2_CLUSTER_ZERO_ALLOC) {
                    /* the table's users give up the shared cluster */
                    ret = qcow2_update_refcount(bs, off, s->cluster_size,
                                                l2_rc, true,
                                                QCOW2_DISCARD_NEVER);
                    if (ret < 0) {
                        break;
                    }
                }
                off = (uint64_t)a;
            }
            ret = qcow2_pre_write_overlap_check(bs, 0, off, s->cluster_size);
            if (ret >= 0) {
                ret = blk_co_pwrite_zeroes(bs->file, off, s->cluster_size, 0);
            }
            if (ret >= 0) {
                ret = qcow2_get_refcount(bs, off >> s->cluster_bits, &rc);
            }
            if (ret < 0) {
                break;
            }
            qcow2_set_l2_entry(s, l2, j,
                               off | (rc == 1 ? QCOW2_OFLAG_COPIED : 0));
            qcow2_cache_mark_dirty(s->l2_cache, l2);
        }
        qcow2_cache_put(s->l2_cache, (void **)&l2);
        if (ret < 0) {
            return ret;
        }
        amend_report(p, ++*visited, total);
    }
    return 0;
}

/* The active L1 table and those of the snapshots. */
static int coroutine_fn expand_zero_clusters(struct blk_node *bs,
                                             struct amend_progress *p)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t total = s->l1_size, visited = 0;
    int ret;

    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        total += s->snapshots[i].l1_size;
    }
    ret = expand_zero_l1(bs, s->l1_table, s->l1_size, p, &visited, total);
    for (uint32_t i = 0; ret >= 0 && i < s->nb_snapshots; i++) {
        uint32_t n = s->snapshots[i].l1_size;
        uint64_t *l1;

        if (n > QCOW2_MAX_L1_SIZE / 8 || s->snapshots[i].l1_bad) {
            return -EFBIG;
        }
        l1 = xmalloc((size_t)n * 8 + 8);
        ret = blk_co_pread(bs->file, s->snapshots[i].l1_offset,
                           (uint64_t)n * 8, l1, 0);
        for (uint32_t j = 0; ret >= 0 && j < n; j++) {
            l1[j] = qcow2_ld64(&l1[j]);
        }
        if (ret >= 0) {
            ret = expand_zero_l1(bs, l1, n, p, &visited, total);
        }
        free(l1);
    }
    if (ret >= 0) {
        ret = qcow2_flush_caches(bs);
    }
    return ret;
}

/* Does the active L1 table map any compressed cluster? */
static int coroutine_fn has_compressed(struct blk_node *bs)
{
    struct qcow2_state *s = bs->opaque;
    int found = 0;

    for (uint32_t i = 0; i < s->l1_size && !found; i++) {
        uint64_t l2_off = s->l1_table[i] & QCOW2_L1E_OFFSET_MASK;
        uint8_t *l2;
        int ret;

        if (!l2_off) {
            continue;
        }
        ret = qcow2_cache_get(bs, s->l2_cache, l2_off, (void **)&l2);
        if (ret < 0) {
            return ret;
        }
        for (uint32_t j = 0; j < s->l2_size && !found; j++) {
            found = qcow2_cluster_type(s, qcow2_l2_entry(s, l2, j)) ==
                    QCOW2_CLUSTER_COMPRESSED;
        }
        qcow2_cache_put(s->l2_cache, (void **)&l2);
    }
    return found;
}

/* To version 2: what v2 cannot express goes first (QEMU's checks). */
static int coroutine_fn downgrade(struct blk_node *bs,
                                  struct amend_progress *p,
                                  struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t incompat;
    int ret;

    if (s->refcount_order != 4) {
        return error_setg(errp, -ENOTSUP, "compat=0.10 requires "
                          "refcount_bits=16");
    }
    /* v2 programs might not know the optional fields that matter here */
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        if (s->snapshots[i].vm_state_size > UINT32_MAX ||
            s->snapshots[i].disk_size != bs->size) {
            return error_setg(errp, -ENOTSUP, "Internal snapshots prevent "
                              "downgrade of image");
        }
    }
    incompat = s->incompatible_features & ~(QCOW2_INCOMPAT_COMPRESSION |
                                            QCOW2_INCOMPAT_DIRTY);
    if (incompat) {
        return error_setg(errp, -ENOTSUP, "Cannot downgrade an image with "
                          "incompatible features 0x%llx set",
                          (unsigned long long)incompat);
    }
    s->compatible_features = 0;
    s->autoclear_features = 0;
    ret = expand_zero_clusters(bs, p);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Failed to turn zero into data "
                                "clusters");
    }
    if (s->incompatible_features & QCOW2_INCOMPAT_COMPRESSION) {
        ret = has_compressed(bs);
        if (ret < 0) {
            return error_setg(errp, -EINVAL, "Failed to check block status");
        }
        if (ret) {
            return error_setg(errp, -ENOTSUP, "Cannot downgrade an image "
                              "with zstd compression type and existing "
                              "compressed clusters");
        }
        s->incompatible_features &= ~QCOW2_INCOMPAT_COMPRESSION;
        s->compression_type = QCOW2_COMPRESSION_ZLIB;
    }
    s->version = 2;
    ret = qcow2_update_header(bs);
    if (ret < 0) {
        s->version = 3;
        return error_setg_errno(errp, ret, "Failed to update the image "
                                "header");
    }
    return 0;
}

/* ---- changing the refcount width ---- */

/* Set entry i of a zeroed refcount block of width 2^order bits. */
static void rc_store(uint8_t *blk, unsigned order, uint64_t i, uint64_t v)
{
    switch (order) {
    case 0:
    case 1:
    case 2: {
        unsigned bits = 1u << order;
        uint64_t bit = i * bits;
        blk[bit / 8] |= (uint8_t)(v << (bit % 8));
        break;
    }
    case 3:
        blk[i] = (uint8_t)v;
        break;
    case 4:
        blk[2 * i] = (uint8_t)(v >> 8);
        blk[2 * i + 1] = (uint8_t)v;
        break;
    case 5:
        qcow2_st32(blk + 4 * i, (uint32_t)v);
        break;
    default:
        qcow2_st64(blk + 8 * i, v);
        break;
    }
}

/* The progress QEMU reports for its walks over the old refcount table
 * (three walks: two to allocate, one to write), entries [from, to) of
 * walk w, and the walk's end when to is the table size. */
static void report_walk(struct amend_progress *p, uint64_t size, int w,
                        uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++) {
        amend_report(p, (uint64_t)w * size + i, 3 * size);
    }
    if (to == size) {
        amend_report(p, (uint64_t)(w + 1) * size, 3 * size);
    }
}

/* Rebuild the refcount structures in the new width after the end of the
 * file (the old ones stay valid until the header switches over in one
 * write), then free the old ones. */
static int coroutine_fn change_refcount_order(struct blk_node *bs,
                                              unsigned order,
                                              struct amend_progress *p,
                                              struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t cs = s->cluster_size, n, blocks = 0, tclusters = 0, total;
    uint64_t per_block = cs * 8 >> order, new_max, *counts, *table = NULL;
    uint64_t table_entries, old_off = s->refcount_table_offset;
    uint32_t old_size = s->refcount_table_size;
    uint8_t *buf = NULL;
    int64_t last;
    int ret;

    ret = qcow2_flush_caches(bs);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Failed to flush the refcount "
                                "block cache");
    }
    n = DIV_ROUND_UP(bs->file->size, cs);
    /* clusters counted past the end of the file keep their counts too */
    last = qcow2_get_last_cluster(bs, ((uint64_t)s->max_refcount_table_index
                                       + 1) << (s->refblock_bits +
                                                s->cluster_bits));
    if (last < 0) {
        return error_setg_errno(errp, (int)last, "Failed to read refcounts");
    }
    n = MAX(n, (uint64_t)last + 1);
    /* the structures describe themselves: find the fixed point */
    for (;;) {
        uint64_t nb = DIV_ROUND_UP(n + blocks + tclusters, per_block);
        uint64_t nt = DIV_ROUND_UP(nb * 8, cs);
        if (nb == blocks && nt == tclusters) {
            break;
        }
        blocks = nb;
        tclusters = nt;
    }
    if (tclusters * cs > QCOW2_MAX_REFTABLE_SIZE) {
        return error_setg(errp, -EFBIG, "Refcount table too large");
    }
    total = n + blocks + tclusters;
    counts = xzalloc(total * sizeof(*counts));
    new_max = order == 6 ? UINT64_MAX : (1ull << (1u << order)) - 1;
    for (uint64_t i = 0; i < n; i++) {
        if (i % s->refblock_size == 0 && (i >> s->refblock_bits) < old_size) {
            report_walk(p, old_size, 0, i >> s->refblock_bits,
                        (i >> s->refblock_bits) + 1);
        }
        ret = qcow2_get_refcount(bs, i, &counts[i]);
        if (ret < 0) {
            error_setg_errno(errp, ret, "Failed to read refcounts");
            goto out;
        }
        if (counts[i] > new_max) {
            ret = error_setg(errp, -EINVAL, "Cannot decrease refcount entry "
                             "width to %i bits: Cluster at offset %#llx has "
                             "a refcount of %llu", 1 << order,
                             (unsigned long long)(i * cs),
                             (unsigned long long)counts[i]);
            goto out;
        }
    }
    report_walk(p, old_size, 0, MIN(DIV_ROUND_UP(n, s->refblock_size),
                                    (uint64_t)old_size), old_size);
    report_walk(p, old_size, 1, 0, old_size);
    /* the old structures go away */
    for (uint32_t i = 0; i < s->refcount_table_size; i++) {
        uint64_t rb = (s->refcount_table[i] & QCOW2_REFT_OFFSET_MASK) / cs;
        if (rb && rb < n) {
            counts[rb] = 0;
        }
    }
    for (uint64_t i = 0; i < (uint64_t)old_size * 8 / cs; i++) {
        if (old_off / cs + i < n) {
            counts[old_off / cs + i] = 0;
        }
    }
    for (uint64_t i = n; i < total; i++) {
        counts[i] = 1;
    }

    table_entries = tclusters * cs / 8;
    table = xzalloc(table_entries * 8);
    buf = xmalloc(cs);
    for (uint64_t b = 0; b < blocks; b++) {
        uint64_t off = (n + b) * cs;
        memset(buf, 0, cs);
        for (uint64_t i = 0; i < per_block && b * per_block + i < total;
             i++) {
            rc_store(buf, order, i, counts[b * per_block + i]);
        }
        ret = blk_co_pwrite(bs->file, off, cs, buf, 0);
        if (ret < 0) {
            error_setg_errno(errp, ret, "Failed to write refcount blocks");
            goto out;
        }
        qcow2_st64(&table[b], off);
    }
    ret = blk_co_pwrite(bs->file, (n + blocks) * cs, tclusters * cs, table,
                        0);
    if (ret >= 0) {
        ret = blk_co_flush(bs->file);
    }
    if (ret < 0) {
        error_setg_errno(errp, ret, "Failed to write the refcount table");
        goto out;
    }
    for (uint64_t i = 0; i < table_entries; i++) {
        table[i] = qcow2_ld64(&table[i]);
    }

    /* switch over: the header is the one write that commits */
    qcow2_cache_clear(s->refblock_cache);
    free(s->refcount_table);
    s->refcount_table = table;
    table = NULL;
    s->refcount_table_size = (uint32_t)table_entries;
    s->refcount_table_offset = (n + blocks) * cs;
    s->max_refcount_table_index = blocks ? (uint32_t)(blocks - 1) : 0;
    s->refcount_order = order;
    s->refcount_max = new_max;
    s->refblock_bits = s->cluster_bits - (order - 3);
    s->refblock_size = 1u << s->refblock_bits;
    s->free_cluster_index = 0;
    ret = qcow2_update_header(bs);
    if (ret >= 0) {
        ret = blk_co_flush(bs->file);
    }
    if (ret < 0) {
        error_setg_errno(errp, ret, "Failed to update the image header");
        goto out;
    }
    report_walk(p, old_size, 2, 0, old_size);
out:
    free(buf);
    free(table);
    free(counts);
    return ret;
}

/* ---- the driver callback ---- */

/* The amend options, in the order QEMU looks at them. */
struct amend_params {
    int version;
    uint64_t size;
    bool backing_set;
    const char *backing_file, *backing_fmt;
    bool lazy;
    uint64_t refcount_bits;
    const char *data_file; /* NULL: not given */
    int data_file_raw;     /* -1: not given */
    bool encrypt;          /* encrypt.* keyslot changes */
    struct blk_opts *opts; /* for those */
    bool force;
};

/* The options in QEMU's order of checks, with its messages. */
static int parse_params(struct blk_node *bs, struct blk_opts *opts,
                        struct amend_params *a, struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    const char *compat;
    bool raw;
    int ret;

    a->version = s->version;
    a->lazy = s->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS;
    a->refcount_bits = 1ull << s->refcount_order;
    ret = qcow2_crypto_amend(bs, opts, false, false, errp);
    if (ret < 0) {
        return ret;
    }
    a->encrypt = ret > 0;
    a->opts = opts;
    ret = opts_get_size(opts, "size", 0, &a->size, errp);
    if (ret < 0) {
        return ret;
    }
    compat = opts_get(opts, "compat");
    if (!compat) {
        /* keep the current level */
    } else if (strcmp(compat, "0.10") == 0 || strcmp(compat, "v2") == 0) {
        a->version = 2;
    } else if (strcmp(compat, "1.1") == 0 || strcmp(compat, "v3") == 0) {
        a->version = 3;
    } else {
        return error_setg(errp, -EINVAL, "Unknown compatibility level %s",
                          compat);
    }
    a->backing_set = opts_has(opts, "backing_file") ||
                     opts_has(opts, "backing_fmt");
    a->backing_file = opts_get(opts, "backing_file");
    a->backing_fmt = opts_get(opts, "backing_fmt");
    a->data_file = opts_get(opts, "data_file");
    a->data_file_raw = -1;
    if (opts_has(opts, "data_file_raw")) {
        ret = opts_get_bool(opts, "data_file_raw", false, &raw, errp);
        if (ret < 0) {
            return ret;
        }
        a->data_file_raw = raw;
    }
    ret = qcow2_datafile_amend(bs, a->data_file, a->data_file_raw, false,
                               errp);
    if (ret < 0) {
        return ret;
    }
    ret = opts_get_bool(opts, "lazy_refcounts", a->lazy, &a->lazy, errp);
    if (ret < 0) {
        return ret;
    }
    ret = opts_get_uint(opts, "refcount_bits", a->refcount_bits,
                        &a->refcount_bits, errp);
    if (ret < 0) {
        return ret;
    }
    if (a->refcount_bits == 0 || a->refcount_bits > 64 ||
        (a->refcount_bits & (a->refcount_bits - 1))) {
        return error_setg(errp, -EINVAL, "Refcount width must be a power of "
                          "two and may not exceed 64 bits");
    }
    return opts_check_unused(opts, NULL, errp);
}

static bool str_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* The steps that change metadata, with s->lock held. */
static int coroutine_fn amend_locked(struct blk_node *bs,
                                     const struct amend_params *a,
                                     struct amend_progress *p,
                                     struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    int old_version = s->version;
    unsigned order = (unsigned)__builtin_ctzll(a->refcount_bits);
    int ret;

    /* upgrade first: some features need compat=1.1 */
    if (a->version > old_version) {
        p->op++;
        ret = upgrade(bs, p, errp);
        if (ret < 0) {
            return ret;
        }
    }
    /* keyslots next, as QEMU: one step of the progress */
    if (a->encrypt) {
        p->op++;
        ret = qcow2_crypto_amend(bs, a->opts, a->force, true, errp);
        if (ret < 0) {
            return ret;
        }
    }
    if (order != s->refcount_order) {
        if (a->version < 3 && a->refcount_bits != 16) {
            return error_setg(errp, -EINVAL, "Refcount widths other than 16 "
                              "bits require compatibility level 1.1 or above "
                              "(use compat=1.1 or greater)");
        }
        p->op++;
        ret = change_refcount_order(bs, order, p, errp);
        if (ret < 0) {
            return ret;
        }
    }
    ret = qcow2_datafile_amend(bs, a->data_file, a->data_file_raw, true,
                               errp);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_update_header(bs);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Failed to update the image "
                                "header");
    }
    if (a->backing_set &&
        (str_differs(a->backing_file, s->image_backing_file) ||
         str_differs(a->backing_fmt, s->image_backing_format))) {
        return error_setg(errp, -EINVAL, "Cannot amend the backing file\n"
                          "You can use 'strata-img rebase' instead.");
    }
    if (a->lazy != !!(s->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS)) {
        if (a->lazy && a->version < 3) {
            return error_setg(errp, -EINVAL, "Lazy refcounts only supported "
                              "with compatibility level 1.1 and above (use "
                              "compat=1.1 or greater)");
        }
        /* refcounts are always kept exact here: the image is clean */
        s->compatible_features ^= QCOW2_COMPAT_LAZY_REFCOUNTS;
        ret = qcow2_update_header(bs);
        if (ret < 0) {
            s->compatible_features ^= QCOW2_COMPAT_LAZY_REFCOUNTS;
            return error_setg_errno(errp, ret, "Failed to update the image "
                                    "header");
        }
    }
    return 0;
}

/* Parse everything first, then change in QEMU's order: upgrade, refcount
 * width, header, backing check, lazy refcounts, size, downgrade. */
int coroutine_fn qcow2_amend(struct blk_node *bs, struct blk_opts *opts,
                             bool force, blk_progress_fn *progress,
                             void *opaque, struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    struct amend_params a = {0};
    struct amend_progress p = {.cb = progress, .opaque = opaque};
    int ret;

    ret = parse_params(bs, opts, &a, errp);
    if (ret < 0) {
        return ret;
    }
    a.force = force;
    p.total_ops = (a.version != s->version) + a.encrypt +
                  (a.refcount_bits != (1ull << s->refcount_order));
    co_mutex_lock(&s->lock);
    if (s->dead) {
        ret = error_setg(errp, -EIO, "Image is corrupt: %s",
                         s->corrupt_msg ? s->corrupt_msg : "?");
    } else {
        ret = amend_locked(bs, &a, &p, errp);
    }
    co_mutex_unlock(&s->lock);
    if (ret < 0) {
        return ret;
    }
    /* the exact new size (QEMU truncates with exact=true) */
    if (a.size) {
        ret = qcow2_co_truncate(bs, a.size, true, BLK_PREALLOC_OFF, errp);
        if (ret < 0) {
            return ret;
        }
    }
    /* downgrade last, so what v2 cannot hold is gone by then */
    if (a.version < s->version) {
        co_mutex_lock(&s->lock);
        p.op++;
        ret = downgrade(bs, &p, errp);
        co_mutex_unlock(&s->lock);
    }
    return ret;
}
