/* qcow2 check: the helpers both halves use.  Findings are collected as
 * text in res->messages (the library never prints); the in-memory
 * refcount table ("IMRT") has the layout of on-disk refcount blocks, so
 * refblock-sized slices of it can be compared with or written as
 * refblocks; refcount lookups in cluster order go through a cursor that
 * keeps the current refblock referenced in the cache.  Also here: the
 * check of the refcount table's entries, and reading the active L2
 * tables and the refblocks ahead into one pre-populated arena. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "qcow2.h"
#include "util.h"

/* The IMRT may not grow past this (a hostile entry pointing to an absurd
 * offset gets -ENOMEM, as QEMU's failing allocation would).  1 GiB holds
 * the refcounts of a 32 TiB file in 64 KiB clusters at 16 bits; a dirty
 * image repaired on open must not make the process take much more. */
#define IMRT_MAX_BYTES (1ull << 30)

/* At most this much of active L2 tables (and refblocks) is kept for the
 * later passes of a check. */
#define L2_SAVED_MAX (64ull << 20)

/* L2 tables read at once by the active L1 pass. */
#define PREFETCH_TASKS 4

/* Reserved bits of a refcount table entry (QEMU's REFT_RESERVED_MASK). */
#define REFT_RESERVED_MASK 0x1ffull

/* The end of the text last appended to, so that a hostile image with
 * many thousands of findings does not cost a strlen() each. */
static __thread const char *last_msgs;
static __thread size_t last_len, last_cap;

/* Append one line (a finding, in QEMU's words) to res->messages. */
void qcow2_check_report(struct blk_check_result *res, const char *fmt, ...)
{
    size_t old, cap;
    va_list ap;
    char *line;
    int n;

    if (!res->messages) {
        old = cap = 0;
    } else if (res->messages == last_msgs) {
        old = last_len;
        cap = last_cap;
    } else {
        old = strlen(res->messages);
        cap = old + 1;
    }
    va_start(ap, fmt);
    n = vasprintf(&line, fmt, ap);
    va_end(ap);
    if (n < 0) {
        abort();
    }
    if (old + n + 2 > cap) {
        /* doubling: a hostile image can have millions of findings */
        cap = MAX(old + n + 2, cap * 2);
        res->messages = xrealloc(res->messages, cap);
    }
    memcpy(res->messages + old, line, n);
    res->messages[old + n] = '\n';
    res->messages[old + n + 1] = '\0';
    last_msgs = res->messages;
    last_len = old + n + 1;
    last_cap = cap;
    free(line);
}

/* Append an error line, printed after the program's name. */
void qcow2_check_error(struct blk_check_result *res, const char *fmt, ...)
{
    va_list ap;
    char *line;

    va_start(ap, fmt);
    if (vasprintf(&line, fmt, ap) < 0) {
        abort();
    }
    va_end(ap);
    qcow2_check_report(res, "\001%s", line);
    free(line);
}

/* A refcount, with QEMU's message when reading it finds corruption. */
int coroutine_fn qcow2_check_get_refcount(struct blk_node *bs,
                                          struct blk_check_result *res,
                                          uint64_t cluster, uint64_t *rc)
{
    struct qcow2_state *s = bs->opaque;
    bool was = s->corrupt_signalled;
    bool was_marked = s->incompatible_features & QCOW2_INCOMPAT_CORRUPT;
    int ret = qcow2_get_refcount(bs, cluster, rc);

    if (!was && s->corrupt_signalled) {
        /* what QEMU's qcow2_signal_corruption() prints */
        if (!bs->read_only && !was_marked &&
            (s->incompatible_features & QCOW2_INCOMPAT_CORRUPT)) {
            qcow2_check_report(res, "qcow2: Marking image as corrupt: %s; "
                               "further corruption events will be "
                               "suppressed", s->corrupt_msg);
        } else {
            qcow2_check_report(res, "qcow2: Image is corrupt: %s; further "
                               "non-fatal corruption events will be "
                               "suppressed", s->corrupt_msg);
        }
    }
    return ret;
}

/* The refcount of a cluster through the cursor's refblock. */
int coroutine_fn qcow2_rc_cursor_get(struct blk_node *bs,
                                     struct blk_check_result *res,
                                     struct qcow2_rc_cursor *c,
                                     uint64_t cluster, uint64_t *rc)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t index = cluster >> s->refblock_bits;
    uint64_t i = cluster & (s->refblock_size - 1);

    if (c->blk && c->index == (int64_t)index) {
        *rc = qcow2_imrt_get(s, c->blk, i);
        return 0;
    }
    qcow2_rc_cursor_release(s, c);
    if (index < s->refcount_table_size) {
        uint64_t off = s->refcount_table[index] & QCOW2_REFT_OFFSET_MASK;

        if (off && !qcow2_offset_into_cluster(s, off) &&
            qcow2_cache_get(bs, s->refblock_cache, off, &c->blk) >= 0) {
            c->index = index;
            *rc = qcow2_imrt_get(s, c->blk, i);
            return 0;
        }
        c->blk = NULL;
    }
    /* no refblock, or a broken one: the slow path says what is wrong */
    return qcow2_check_get_refcount(bs, res, cluster, rc);
}

/* Drop the cursor's refblock reference. */
void qcow2_rc_cursor_release(struct qcow2_state *s, struct qcow2_rc_cursor *c)
{
    if (c->blk) {
        qcow2_cache_put(s->refblock_cache, &c->blk);
        c->blk = NULL;
    }
}

/* Overlap check before a repair writes metadata. */
int coroutine_fn qcow2_check_overlap(struct blk_node *bs, unsigned ign,
                                     uint64_t offset, uint64_t size)
{
    static const char *const names[] = {
        "qcow2_header", "active L1 table", "active L2 table",
        "refcount table", "refcount block", "snapshot table",
        "inactive L1 table", "inactive L2 table", "bitmap directory",
    };
    int ret = qcow2_check_metadata_overlap(bs, ign, offset, size);

    if (ret <= 0) {
        return ret;
    }
    return qcow2_signal_corruption(bs, true, "Preventing invalid write on "
                                   "metadata (overlaps with %s)",
                                   names[__builtin_ctz(ret)]);
}

/* ---- the in-memory refcount table ---- */

/* Entry i of an IMRT (or of a refblock: same layout). */
uint64_t qcow2_imrt_get(const struct qcow2_state *s, const void *a,
                        uint64_t i)
{
    const uint8_t *p = a;

    switch (s->refcount_order) {
    case 0:
    case 1:
    case 2: {
        unsigned bits = 1u << s->refcount_order;
        uint64_t bit = i * bits;
        return (p[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
    }
    case 3:
        return p[i];
    case 4:
        return (uint64_t)p[2 * i] << 8 | p[2 * i + 1];
    case 5:
        return qcow2_ld32(p + 4 * i);
    default:
        return qcow2_ld64(p + 8 * i);
    }
}

/* Set entry i of an IMRT. */
void qcow2_imrt_set(const struct qcow2_state *s, void *a, uint64_t i,
                    uint64_t v)
{
    uint8_t *p = a;

    switch (s->refcount_order) {
    case 0:
    case 1:
    case 2: {
        unsigned bits = 1u << s->refcount_order;
        uint64_t bit = i * bits;
        uint8_t mask = ((1u << bits) - 1) << (bit % 8);
        p[bit / 8] = (p[bit / 8] & ~mask) | ((v << (bit % 8)) & mask);
        break;
    }
    case 3:
        p[i] = v;
        break;
    case 4:
        p[2 * i] = v >> 8;
        p[2 * i + 1] = v;
        break;
    case 5:
        qcow2_st32(p + 4 * i, v);
        break;
    default:
        qcow2_st64(p + 8 * i, v);
        break;
    }
}

/* Bytes of IMRT for `entries` clusters, rounded up to whole clusters so
 * that every refblock-sized slice of it can be written as it is. */
static uint64_t imrt_bytes(const struct qcow2_state *s, uint64_t entries)
{
    uint64_t bytes = DIV_ROUND_UP(entries << s->refcount_order, 8);
    return ROUND_UP(bytes, (uint64_t)s->cluster_size);
}

/* Grow (or shrink) the IMRT to new_size entries, zeroing new ones. */
int qcow2_imrt_resize(const struct qcow2_state *s, struct qcow2_imrt *t,
                      int64_t new_size)
{
    uint64_t old_bytes = imrt_bytes(s, t->size);
    uint64_t new_bytes = imrt_bytes(s, new_size);
    uint8_t *p;

    if (new_bytes == old_bytes && t->table) {
        t->size = new_size;
        return 0;
    }
    if (new_bytes > IMRT_MAX_BYTES || new_size >= (1ll << 55)) {
        return -ENOMEM;
    }
    p = realloc(t->table, new_bytes ? new_bytes : 1);
    if (!p) {
        return -ENOMEM;
    }
    if (new_bytes > old_bytes) {
        memset(p + old_bytes, 0, new_bytes - old_bytes);
    }
    t->table = p;
    t->size = new_size;
    return 0;
}

/* Count one more reference to each cluster of [offset, offset + size)
 * (QEMU's qcow2_inc_refcounts_imrt). */
int qcow2_imrt_inc(struct blk_node *bs, struct blk_check_result *res,
                   struct qcow2_imrt *t, uint64_t offset, uint64_t size)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t start, last, off;

    if (size == 0) {
        return 0;
    }
    /* the last cluster may be partly past the end of the file, no more */
    if ((int64_t)(offset + size - bs->file->size) >=
        (int64_t)s->cluster_size) {
        qcow2_check_report(res, "ERROR: counting reference for region "
                           "exceeding the end of the file by one cluster or "
                           "more: offset 0x%" PRIx64 " size 0x%" PRIx64,
                           offset, size);
        res->corruptions++;
        return 0;
    }
    start = qcow2_start_of_cluster(s, offset);
    last = qcow2_start_of_cluster(s, offset + size - 1);
    for (off = start; off <= last; off += s->cluster_size) {
        uint64_t k = off >> s->cluster_bits, rc;

        if ((int64_t)k >= t->size) {
            int ret = qcow2_imrt_resize(s, t, k + 1);
            if (ret < 0) {
                res->check_errors++;
                return ret;
            }
        }
        rc = qcow2_imrt_get(s, t->table, k);
        if (rc == s->refcount_max) {
            qcow2_check_report(res, "ERROR: overflow cluster offset=0x%"
                               PRIx64, off);
            qcow2_check_report(res, "Use qemu-img amend to increase the "
                               "refcount entry width or qemu-img convert to "
                               "create a clean copy if the image cannot be "
                               "opened for writing");
            res->corruptions++;
            continue;
        }
        qcow2_imrt_set(s, t->table, k, rc + 1);
    }
    return 0;
}

/* ---- the refcount structure itself ---- */

/* Account for the refcount blocks and check their table entries (QEMU's
 * check_refblocks): broken entries ask for a rebuild; a refblock past the
 * end of the file is repaired by growing the file. */
int coroutine_fn qcow2_check_refblocks(struct blk_node *bs,
                                       struct blk_check_result *res,
                                       unsigned fix, bool *rebuild,
                                       struct qcow2_imrt *t)
{
    struct qcow2_state *s = bs->opaque;
    int ret;

    for (uint32_t i = 0; i < s->refcount_table_size; i++) {
        uint64_t offset = s->refcount_table[i] & QCOW2_REFT_OFFSET_MASK;
        uint64_t cluster = offset >> s->cluster_bits;

        if (s->refcount_table[i] & REFT_RESERVED_MASK) {
            qcow2_check_report(res, "ERROR refcount table entry %" PRIu32
                               " has reserved bits set", i);
            res->corruptions++;
            *rebuild = true;
            continue;
        }
        if (qcow2_offset_into_cluster(s, offset)) {
            qcow2_check_report(res, "ERROR refcount block %" PRIu32 " is not "
                               "cluster aligned; refcount table entry "
                               "corrupted", i);
            res->corruptions++;
            *rebuild = true;
            continue;
        }
        if ((int64_t)cluster >= t->size) {
            res->corruptions++;
            qcow2_check_report(res, "%s refcount block %" PRIu32 " is "
                               "outside image",
                               fix & BLK_FIX_ERRORS ? "Repairing" : "ERROR",
                               i);
            if (fix & BLK_FIX_ERRORS) {
                ret = -EINVAL;
                if (offset <= INT64_MAX - s->cluster_size) {
                    struct strata_error *err = NULL;

                    ret = blk_co_truncate(bs->file, offset + s->cluster_size,
                                          false, BLK_PREALLOC_OFF, &err);
                    if (ret < 0) {
                        qcow2_check_error(res, "%s", error_msg(err, ret));
                        strata_error_free(err);
                    }
                }
                if (ret >= 0) {
                    int64_t n = qcow2_size_to_clusters(s, bs->file->size);
                    if (n > t->size) {
                        ret = qcow2_imrt_resize(s, t, n);
                        if (ret < 0) {
                            res->check_errors++;
                            return ret;
                        }
                    }
                    if ((int64_t)cluster >= n) {
                        ret = -EINVAL;
                    }
                }
                if (ret >= 0) {
                    res->corruptions--;
                    res->corruptions_fixed++;
                    ret = qcow2_imrt_inc(bs, res, t, offset, s->cluster_size);
                    if (ret < 0) {
                        return ret;
                    }
                    continue;
                }
                *rebuild = true;
                qcow2_check_report(res, "ERROR could not resize image: %s",
                                   strerror(-ret));
            }
            continue;
        }
        if (offset) {
            uint64_t rc;

            ret = qcow2_imrt_inc(bs, res, t, offset, s->cluster_size);
            if (ret < 0) {
                return ret;
            }
            rc = qcow2_imrt_get(s, t->table, cluster);
            if (rc != 1) {
                qcow2_check_report(res, "ERROR refcount block %" PRIu32
                                   " refcount=%" PRIu64, i, rc);
                res->corruptions++;
                *rebuild = true;
            }
        }
    }
    return 0;
}

/* ---- reading ahead ---- */

/* Reading the active L2 tables ahead, several at a time. */
struct prefetch {
    struct blk_node *bs;
    struct qcow2_imrt *t;
    bool *loaded;
    uint32_t next;
    int running;
    struct coroutine *waiter;
};

static void coroutine_fn prefetch_task(void *opaque)
{
    struct prefetch *p = opaque;
    struct qcow2_state *s = p->bs->opaque;

    while (p->next < p->t->l2_saved_n + p->t->rb_saved_n) {
        uint32_t i = p->next++;

        if (i >= p->t->l2_saved_n) {
            uint32_t k = i - p->t->l2_saved_n;
            uint64_t off = s->refcount_table[k] & QCOW2_REFT_OFFSET_MASK;

            if (p->t->rb_saved[k] &&
                blk_co_pread(p->bs->file, off, s->cluster_size,
                             p->t->rb_saved[k], 0) < 0) {
                p->t->rb_saved[k] = NULL; /* its room stays in the arena */
            }
        } else if (p->t->l2_saved[i]) {
            uint64_t off = p->t->l2_saved_l1[i] & QCOW2_L1E_OFFSET_MASK;
            p->loaded[i] = blk_co_pread(p->bs->file, off,
                                        (uint64_t)s->l2_size * s->l2e_size,
                                        p->t->l2_saved[i], 0) >= 0;
        }
    }
    if (--p->running == 0 && p->waiter) {
        coroutine_wake(p->waiter);
    }
}

/* Keep (and read ahead) the L2 tables of the active L1 table l1, and on
 * read-only nodes the refcount blocks: all in one arena whose pages are
 * populated up front, which costs far less than a page fault per page. */
void coroutine_fn qcow2_check_prefetch(struct blk_node *bs,
                                       struct qcow2_imrt *t,
                                       const uint8_t *l1, uint32_t l1_size,
                                       bool *loaded)
{
    struct qcow2_state *s = bs->opaque;
    struct prefetch p = {bs, t, loaded, 0, PREFETCH_TASKS, NULL};
    uint64_t l2_bytes = (uint64_t)s->l2_size * s->l2e_size, n_rb = 0;
    uint64_t need = 0, used = 0;
    bool first = !t->l2_saved;

    if (first) {
        t->l2_saved = xzalloc(sizeof(*t->l2_saved) * l1_size);
        t->l2_saved_l1 = xzalloc(sizeof(*t->l2_saved_l1) * l1_size);
        t->l2_saved_n = l1_size;
    }
    for (uint32_t i = 0; i < t->l2_saved_n; i++) {
        t->l2_saved_l1[i] = qcow2_ld64(l1 + 8 * (size_t)i);
        if (t->l2_saved_l1[i] & QCOW2_L1E_OFFSET_MASK) {
            need += l2_bytes;
        }
    }
    if (first && bs->read_only) {
        /* the refblocks the comparison will want, read in the same batch */
        n_rb = MIN((uint64_t)s->refcount_table_size,
                   DIV_ROUND_UP((uint64_t)t->size, s->refblock_size));
        t->rb_saved = xzalloc(sizeof(*t->rb_saved) * (n_rb ? n_rb : 1));
        t->rb_saved_n = n_rb;
        t->l2_copied_ok = xzalloc(l1_size);
        need += n_rb * s->cluster_size;
    }
    if (first && need) {
        /* tables past the limit are read when they are needed */
        t->arena_bytes = MIN(need, L2_SAVED_MAX);
        t->arena = mmap(NULL, t->arena_bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (t->arena == MAP_FAILED) {
            t->arena = NULL;
            t->arena_bytes = 0;
        }
    }
    for (uint32_t i = 0; first && i < t->l2_saved_n; i++) {
        if ((t->l2_saved_l1[i] & QCOW2_L1E_OFFSET_MASK) &&
            used + l2_bytes <= t->arena_bytes) {
            t->l2_saved[i] = t->arena + used;
            used += l2_bytes;
        }
    }
    for (uint32_t k = 0; k < n_rb; k++) {
        uint64_t e = s->refcount_table[k];
        uint64_t off = e & QCOW2_REFT_OFFSET_MASK;

        if (off && off == e && !qcow2_offset_into_cluster(s, off) &&
            off < bs->file->size && used + s->cluster_size <= t->arena_bytes) {
            t->rb_saved[k] = t->arena + used;
            used += s->cluster_size;
        }
    }
    for (int i = 0; i < PREFETCH_TASKS; i++) {
        coroutine_enter(coroutine_create(prefetch_task, &p));
    }
    if (p.running > 0) {
        p.waiter = coroutine_self();
        coroutine_yield();
    }
}
