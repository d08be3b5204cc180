/* The qcow2 metadata cache: L2 tables and refcount blocks, one cluster
 * each, kept in memory with write-back.  Eviction is least recently used
 * among tables nobody holds.  Ordering between the two caches is expressed
 * as a dependency: before any table of a cache reaches the disk, the cache
 * it depends on is written and the file flushed (new refcounts before the
 * L2 entries that use them; freed L2 entries before the lower refcounts).
 *
 * All functions run with the driver's s->lock held, so the cache needs no
 * locking of its own; I/O yields but no one else touches it meanwhile. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "qcow2.h"
#include "util.h"

struct qcow2_cache_entry {
    uint64_t offset;  /* host offset of the table; 0 = slot unused */
    int ref;          /* callers holding the table */
    bool dirty;
    int lru_prev, lru_next; /* -1 terminated; head = most recent */
    int hash_next;          /* chain in the bucket, -1 terminated */
};

struct qcow2_cache {
    struct qcow2_cache_entry *e;
    uint8_t *arena;         /* nb tables, table i at arena + i * size */
    int nb;
    uint32_t table_size;
    unsigned ol_kind;       /* what the tables are, for overlap checks */
    int lru_head, lru_tail;
    int *buckets;           /* hash of offset -> first entry, -1 empty */
    uint32_t nb_buckets;    /* power of two */
    struct qcow2_cache *depends; /* write that cache (and flush) first */
    bool depends_on_flush;  /* flush the file before the next write */
};

static uint32_t hash_offset(const struct qcow2_cache *c, uint64_t offset)
{
    uint64_t h = offset / c->table_size;
    h *= 0x9e3779b97f4a7c15ull;
    return (uint32_t)(h >> 32) & (c->nb_buckets - 1);
}

struct qcow2_cache *qcow2_cache_create(int nb, uint32_t table_size,
                                       unsigned ol_kind)
{
    struct qcow2_cache *c = xzalloc(sizeof(*c));

    c->nb = nb;
    c->table_size = table_size;
    c->ol_kind = ol_kind;
    c->e = xzalloc(sizeof(*c->e) * nb);
    /* untouched pages of a large arena cost nothing until used */
    c->arena = xmemalign(4096, (size_t)nb * table_size);
    c->nb_buckets = 1;
    while (c->nb_buckets < (uint32_t)nb * 2) {
        c->nb_buckets <<= 1;
    }
    c->buckets = xmalloc(sizeof(int) * c->nb_buckets);
    for (uint32_t i = 0; i < c->nb_buckets; i++) {
        c->buckets[i] = -1;
    }
    for (int i = 0; i < nb; i++) {
        c->e[i].lru_prev = i - 1;
        c->e[i].lru_next = i + 1 < nb ? i + 1 : -1;
        c->e[i].hash_next = -1;
    }
    c->lru_head = 0;
    c->lru_tail = nb - 1;
    return c;
}

void qcow2_cache_destroy(struct qcow2_cache *c)
{
    if (c) {
        free(c->e);
        free(c->arena);
        free(c->buckets);
        free(c);
    }
}

static void *table_of(struct qcow2_cache *c, int i)
{
    return c->arena + (size_t)i * c->table_size;
}

static int index_of(struct qcow2_cache *c, const void *table)
{
    size_t off = (const uint8_t *)table - c->arena;
    return (int)(off / c->table_size);
}

static void lru_unlink(struct qcow2_cache *c, int i)
{
    struct qcow2_cache_entry *e = &c->e[i];

    if (e->lru_prev >= 0) {
        c->e[e->lru_prev].lru_next = e->lru_next;
    } else {
        c->lru_head = e->lru_next;
    }
    if (e->lru_next >= 0) {
        c->e[e->lru_next].lru_prev = e->lru_prev;
    } else {
        c->lru_tail = e->lru_prev;
    }
}

static void lru_push_head(struct qcow2_cache *c, int i)
{
    c->e[i].lru_prev = -1;
    c->e[i].lru_next = c->lru_head;
    if (c->lru_head >= 0) {
        c->e[c->lru_head].lru_prev = i;
    }
    c->lru_head = i;
    if (c->lru_tail < 0) {
        c->lru_tail = i;
    }
}

static void lru_push_tail(struct qcow2_cache *c, int i)
{
    c->e[i].lru_next = -1;
    c->e[i].lru_prev = c->lru_tail;
    if (c->lru_tail >= 0) {
        c->e[c->lru_tail].lru_next = i;
    }
    c->lru_tail = i;
    if (c->lru_head < 0) {
        c->lru_head = i;
    }
}

static int lookup(struct qcow2_cache *c, uint64_t offset)
{
    for (int i = c->buckets[hash_offset(c, offset)]; i >= 0;
         i = c->e[i].hash_next) {
        if (c->e[i].offset == offset) {
            return i;
        }
    }
    return -1;
}

static void hash_remove(struct qcow2_cache *c, int i)
{
    int *pp = &c->buckets[hash_offset(c, c->e[i].offset)];

    while (*pp >= 0 && *pp != i) {
        pp = &c->e[*pp].hash_next;
    }
    if (*pp == i) {
        *pp = c->e[i].hash_next;
    }
    c->e[i].hash_next = -1;
}

static void hash_insert(struct qcow2_cache *c, int i)
{
    uint32_t b = hash_offset(c, c->e[i].offset);

    c->e[i].hash_next = c->buckets[b];
    c->buckets[b] = i;
}

/* Empty a slot (its table is clean or being thrown away). */
static void drop_entry(struct qcow2_cache *c, int i)
{
    if (c->e[i].offset) {
        hash_remove(c, i);
    }
    c->e[i].offset = 0;
    c->e[i].dirty = false;
    lru_unlink(c, i);
    lru_push_tail(c, i);
}

static int coroutine_fn flush_dependency(struct blk_node *bs,
                                         struct qcow2_cache *c)
{
    int ret = qcow2_cache_flush(bs, c->depends);

    if (ret < 0) {
        return ret;
    }
    c->depends = NULL;
    c->depends_on_flush = false;
    return 0;
}

/* Write one dirty table, after what it depends on. */
static int coroutine_fn entry_write(struct blk_node *bs,
                                    struct qcow2_cache *c, int i)
{
    struct qcow2_cache_entry *e = &c->e[i];
    int ret = 0;

    if (!e->dirty || !e->offset) {
        return 0;
    }
    if (c->depends) {
        ret = flush_dependency(bs, c);
    } else if (c->depends_on_flush) {
        ret = blk_co_flush(bs->file);
        if (ret >= 0) {
            c->depends_on_flush = false;
        }
    }
    if (ret < 0) {
        return ret;
    }
    /* the dependency flush may have written this very table */
    if (!e->dirty || !e->offset) {
        return 0;
    }
    ret = qcow2_pre_write_overlap_check(bs, c->ol_kind, e->offset,
                                        c->table_size);
    if (ret < 0) {
        return ret;
    }
    ret = blk_co_pwrite(bs->file, e->offset, c->table_size, table_of(c, i),
                        0);
    if (ret < 0) {
        return ret;
    }
    e->dirty = false;
    return 0;
}

int coroutine_fn qcow2_cache_write(struct blk_node *bs,
                                   struct qcow2_cache *c)
{
    int result = 0;

    for (int i = 0; i < c->nb; i++) {
        /* keep going: write as much as possible, report the first error */
        int ret = entry_write(bs, c, i);
        if (ret < 0 && result == 0) {
            result = ret;
        }
    }
    return result;
}

int coroutine_fn qcow2_cache_flush(struct blk_node *bs,
                                   struct qcow2_cache *c)
{
    int ret = qcow2_cache_write(bs, c);

    if (ret == 0) {
        ret = blk_co_flush(bs->file);
    }
    return ret;
}

int coroutine_fn qcow2_cache_set_dependency(struct blk_node *bs,
                                            struct qcow2_cache *c,
                                            struct qcow2_cache *dep)
{
    int ret;

    /* no chains: what dep waits for goes to the disk now */
    if (dep->depends) {
        ret = flush_dependency(bs, dep);
        if (ret < 0) {
            return ret;
        }
    }
    if (c->depends && c->depends != dep) {
        ret = flush_dependency(bs, c);
        if (ret < 0) {
            return ret;
        }
    }
    c->depends = dep;
    return 0;
}

/* Find a slot for offset: the cached table, or the least recently used
 * unreferenced slot (written back first). */
static int coroutine_fn get_slot(struct blk_node *bs, struct qcow2_cache *c,
                                 uint64_t offset, bool read, void **table)
{
    int i, ret;

    if (offset == 0) {
        /* offset 0 is the header (and marks an empty slot): a table there
         * means the image is corrupt */
        return -EIO;
    }
    i = lookup(c, offset);
    if (i >= 0) {
        goto found;
    }
    for (i = c->lru_tail; i >= 0 && c->e[i].ref > 0; i = c->e[i].lru_prev) {
    }
    if (i < 0) {
        return -ENOSPC; /* every table is in use: a bug, not the disk */
    }
    ret = entry_write(bs, c, i);
    if (ret < 0) {
        return ret;
    }
    /* writing may have yielded; someone could have cached offset */
    if (lookup(c, offset) >= 0 || c->e[i].ref > 0) {
        return get_slot(bs, c, offset, read, table);
    }
    drop_entry(c, i);
    if (read) {
        c->e[i].ref++; /* nobody may take the slot while we read */
        ret = blk_co_pread(bs->file, offset, c->table_size, table_of(c, i),
                           0);
        c->e[i].ref--;
        if (ret < 0) {
            return ret;
        }
    }
    c->e[i].offset = offset;
    hash_insert(c, i);
found:
    c->e[i].ref++;
    lru_unlink(c, i);
    lru_push_head(c, i);
    *table = table_of(c, i);
    return 0;
}

int coroutine_fn qcow2_cache_get(struct blk_node *bs, struct qcow2_cache *c,
                                 uint64_t offset, void **table)
{
    return get_slot(bs, c, offset, true, table);
}

int coroutine_fn qcow2_cache_get_empty(struct blk_node *bs,
                                       struct qcow2_cache *c,
                                       uint64_t offset, void **table)
{
    return get_slot(bs, c, offset, false, table);
}

void qcow2_cache_put(struct qcow2_cache *c, void **table)
{
    int i = index_of(c, *table);

    c->e[i].ref--;
    *table = NULL;
}

void qcow2_cache_mark_dirty(struct qcow2_cache *c, void *table)
{
    c->e[index_of(c, table)].dirty = true;
}

void qcow2_cache_discard(struct qcow2_cache *c, uint64_t offset)
{
    int i = lookup(c, offset);

    if (i >= 0 && c->e[i].ref == 0) {
        drop_entry(c, i);
    }
}

void qcow2_cache_clear(struct qcow2_cache *c)
{
    for (int i = 0; i < c->nb; i++) {
        if (c->e[i].ref == 0) {
            drop_entry(c, i);
        }
    }
    c->depends = NULL;
    c->depends_on_flush = false;
}
