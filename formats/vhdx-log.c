/* The VHDX log: replay on open, and metadata updates through it.
 *
 * Replay.  A writer that updates metadata through the log leaves
 * the header's log GUID set until every logged change has reached its
 * place; an image opened with the GUID set may hold changes only in the
 * log, so before anything else is read they are written out again:
 *
 *  - every 4 KiB position of the circular log may start an entry: "loge",
 *    the header's log GUID, a length covering its descriptor sectors and
 *    one data sector per data descriptor, a CRC-32C over the whole entry;
 *  - the active sequence ends at the valid entry with the highest sequence
 *    number whose chain back to its `tail` entry is unbroken (consecutive
 *    sequence numbers, each entry right after the previous one);
 *  - replay writes each data descriptor's 4 KiB sector (its first 8 and
 *    last 4 bytes live in the descriptor) and each zero descriptor's range,
 *    entry by entry, then grows the file to the head's last_file_offset,
 *    flushes, and clears the log GUID in both headers.
 *
 * Writing.  Every BAT change goes through the log as in QEMU's
 * vhdx_log_write_and_flush(): the first change after the log was empty
 * sets a new log GUID in both headers; the change becomes an entry (one
 * data descriptor and one data sector per 4 KiB sector), the entry is
 * flushed, then the sectors are written in place.  QEMU then flushes and
 * clears the GUID again after every single change (six more syncs each);
 * here the GUID stays set until the image is flushed or closed, and an
 * entry's in-place writes stay in the active sequence (the next entry's
 * tail points at it) until a later flush has carried them, so a crash at
 * any point leaves a log whose replay, by us or by QEMU, completes every
 * change whose entry reached the disk.  Entries of one GUID run from
 * where the log was when it was set to the log's end, never round it. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "util.h"
#include "vhdx.h"

#define MAX_LOG (256u * VHDX_MiB) /* larger logs are refused */

struct log_entry {
    uint64_t pos;      /* offset inside the log */
    uint32_t length;
    uint32_t tail;
    uint64_t seq;
    uint32_t ndesc;
    uint64_t last_file_offset;
};

/* Copy len bytes of the circular log starting at pos. */
static void log_copy(const uint8_t *log, uint64_t size, uint64_t pos,
                     uint8_t *out, uint64_t len)
{
    while (len > 0) {
        uint64_t n = MIN(len, size - pos);
        memcpy(out, log + pos, n);
        out += n;
        len -= n;
        pos = (pos + n) % size;
    }
}

/* A valid entry at pos, or false. */
static bool parse_entry(const uint8_t *log, uint64_t size, uint64_t pos,
                        const struct vhdx_guid *guid, struct log_entry *e)
{
    const uint8_t *h = log + pos;
    uint64_t dsec, ndata = 0;
    uint8_t *buf;
    bool ok;

    if (vhdx_ld32(h) != VHDX_LOG_SIG || memcmp(h + 32, guid->b, 16) != 0) {
        return false;
    }
    e->pos = pos;
    e->length = vhdx_ld32(h + 8);
    e->tail = vhdx_ld32(h + 12);
    e->seq = vhdx_ld64(h + 16);
    e->ndesc = vhdx_ld32(h + 24);
    e->last_file_offset = vhdx_ld64(h + 56);
    if (e->length == 0 || e->length % VHDX_LOG_SECTOR || e->length > size ||
        e->tail % VHDX_LOG_SECTOR || e->tail >= size ||
        e->ndesc > (size / 32)) {
        return false;
    }
    dsec = DIV_ROUND_UP(64 + 32 * (uint64_t)e->ndesc, VHDX_LOG_SECTOR);
    if (dsec * VHDX_LOG_SECTOR > e->length) {
        return false;
    }
    buf = xmalloc(e->length);
    log_copy(log, size, pos, buf, e->length);
    for (uint32_t i = 0; i < e->ndesc; i++) {
        const uint8_t *d = buf + 64 + 32 * i;
        uint32_t sig = vhdx_ld32(d);
        if ((sig != VHDX_LOG_DESC_SIG && sig != VHDX_LOG_ZERO_SIG) ||
            vhdx_ld64(d + 24) != e->seq) {
            free(buf);
            return false;
        }
        ndata += sig == VHDX_LOG_DESC_SIG;
    }
    ok = (dsec + ndata) * VHDX_LOG_SECTOR == e->length;
    /* the checksum covers the entry with its checksum field zeroed */
    if (ok) {
        uint32_t want = vhdx_ld32(buf + 4);
        vhdx_st32(buf + 4, 0);
        ok = crc32c(buf, e->length) == want;
    }
    /* data sectors carry the entry's sequence number, split in two */
    for (uint64_t k = 0; ok && k < ndata; k++) {
        const uint8_t *ds = buf + (dsec + k) * VHDX_LOG_SECTOR;
        ok = vhdx_ld32(ds) == VHDX_LOG_DATA_SIG &&
             vhdx_ld32(ds + 4) == (uint32_t)(e->seq >> 32) &&
             vhdx_ld32(ds + 4092) == (uint32_t)e->seq;
    }
    free(buf);
    return ok;
}

/* Is there an unbroken chain of entries from `tail` up to `head`?  Fills
 * chain[] (at most max) and returns its length, 0 when broken. */
static int chain_from_tail(const uint8_t *log, uint64_t size,
                           const struct vhdx_guid *guid,
                           const struct log_entry *head,
                           struct log_entry *chain, int max)
{
    uint64_t pos = head->tail;
    int n = 0;

    while (n < max) {
        struct log_entry e;
        if (!parse_entry(log, size, pos, guid, &e) ||
            (n > 0 && e.seq != chain[n - 1].seq + 1)) {
            return 0;
        }
        chain[n++] = e;
        if (e.pos == head->pos) {
            return e.seq == head->seq ? n : 0;
        }
        pos = (pos + e.length) % size;
    }
    return 0;
}

static int coroutine_fn replay_entry(struct blk_node *bs, const uint8_t *log,
                                     uint64_t size,
                                     const struct log_entry *e)
{
    uint8_t *buf = xmalloc(e->length);
    uint8_t *sector = blk_alloc_buf(bs->file, VHDX_LOG_SECTOR);
    uint64_t dsec = DIV_ROUND_UP(64 + 32 * (uint64_t)e->ndesc,
                                 VHDX_LOG_SECTOR);
    uint64_t next_data = dsec;
    int ret = 0;

    log_copy(log, size, e->pos, buf, e->length);
    for (uint32_t i = 0; i < e->ndesc && ret >= 0; i++) {
        const uint8_t *d = buf + 64 + 32 * i;
        uint64_t off = vhdx_ld64(d + 16);
        if (off % VHDX_LOG_SECTOR) {
            ret = -EINVAL;
        } else if (vhdx_ld32(d) == VHDX_LOG_ZERO_SIG) {
            uint64_t len = vhdx_ld64(d + 8);
            ret = len % VHDX_LOG_SECTOR ? -EINVAL
                  : blk_co_pwrite_zeroes(bs->file, off, len, 0);
        } else {
            const uint8_t *ds = buf + next_data++ * VHDX_LOG_SECTOR;
            memcpy(sector, d + 8, 8);              /* leading bytes */
            memcpy(sector + 8, ds + 8, 4084);
            memcpy(sector + 4092, d + 4, 4);       /* trailing bytes */
            ret = blk_co_pwrite(bs->file, off, VHDX_LOG_SECTOR, sector, 0);
        }
    }
    free(sector);
    free(buf);
    return ret;
}

int coroutine_fn vhdx_log_replay(struct blk_node *bs,
                                 struct strata_error **errp)
{
    struct vhdx_state *s = bs->opaque;
    uint64_t size = s->header.log_length, off = s->header.log_offset;
    struct log_entry *entries = NULL, *chain = NULL, head = {0};
    int nentries = 0, nchain = 0, ret;
    uint8_t *log;

    if (size == 0 || size % VHDX_MiB || size > MAX_LOG || off < VHDX_MiB ||
        off % VHDX_MiB || off > bs->file->size ||
        size > bs->file->size - off) {
        return error_setg(errp, -EINVAL, "VHDX log region (%llu bytes at "
                          "%llu) is invalid", (unsigned long long)size,
                          (unsigned long long)off);
    }
    log = xmalloc(size);
    ret = blk_co_pread(bs->file, off, size, log, 0);
    if (ret < 0) {
        free(log);
        return error_setg_errno(errp, ret, "Could not read the VHDX log");
    }
    /* every valid entry, then the newest one with an unbroken chain */
    for (uint64_t pos = 0; pos < size; pos += VHDX_LOG_SECTOR) {
        struct log_entry e;
        if (parse_entry(log, size, pos, &s->header.log_guid, &e)) {
            entries = xrealloc(entries, sizeof(*entries) * (nentries + 1));
            entries[nentries++] = e;
        }
    }
    chain = xmalloc(sizeof(*chain) * (nentries + 1));
    while (nentries > 0 && nchain == 0) {
        int best = 0;
        for (int i = 1; i < nentries; i++) {
            if (entries[i].seq > entries[best].seq) {
                best = i;
            }
        }
        head = entries[best];
        nchain = chain_from_tail(log, size, &s->header.log_guid, &head,
                                 chain, nentries);
        entries[best] = entries[--nentries];
    }
    for (int i = 0; i < nchain && ret >= 0; i++) {
        ret = replay_entry(bs, log, size, &chain[i]);
    }
    if (nchain > 0) {
        s->log_seq = head.seq + 1;
    }
    if (ret >= 0 && nchain > 0 && bs->file->size < head.last_file_offset) {
        ret = blk_co_truncate(bs->file, head.last_file_offset, false,
                              BLK_PREALLOC_OFF, NULL);
    }
    free(chain);
    free(entries);
    free(log);
    if (ret >= 0) {
        ret = blk_co_flush(bs->file);
    }
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Could not replay the VHDX log");
    }
    /* the log is empty now: both headers say so */
    memset(s->header.log_guid.b, 0, 16);
    ret = vhdx_header_write(bs);
    if (ret >= 0) {
        ret = vhdx_header_write(bs);
    }
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Could not update the VHDX "
                                "headers after replaying the log");
    }
    return 0;
}


/* ---- writing ---- */

/* The entry: header and descriptors, then one data sector per sector of
 * buf, each sector's first 8 and last 4 bytes kept in its descriptor. */
static uint8_t *build_entry(struct vhdx_state *s, uint64_t off,
                            const uint8_t *buf, uint32_t nsect,
                            uint64_t last_size, uint32_t *plen)
{
    uint32_t dsec = DIV_ROUND_UP(64 + 32 * nsect, VHDX_LOG_SECTOR);
    uint32_t len = (dsec + nsect) * VHDX_LOG_SECTOR;
    uint8_t *e = xzalloc(len);

    vhdx_st32(e, VHDX_LOG_SIG);
    vhdx_st32(e + 8, len);
    vhdx_st32(e + 12, s->log_tail);
    vhdx_st64(e + 16, s->log_seq);
    vhdx_st32(e + 24, nsect);
    memcpy(e + 32, s->header.log_guid.b, 16);
    vhdx_st64(e + 48, s->flushed_size);
    vhdx_st64(e + 56, last_size);
    for (uint32_t i = 0; i < nsect; i++) {
        const uint8_t *src = buf + (uint64_t)i * VHDX_LOG_SECTOR;
        uint8_t *d = e + 64 + 32 * i;
        uint8_t *ds = e + (uint64_t)(dsec + i) * VHDX_LOG_SECTOR;
        vhdx_st32(d, VHDX_LOG_DESC_SIG);
        memcpy(d + 4, src + 4092, 4);                 /* trailing bytes */
        memcpy(d + 8, src, 8);                        /* leading bytes */
        vhdx_st64(d + 16, off + (uint64_t)i * VHDX_LOG_SECTOR);
        vhdx_st64(d + 24, s->log_seq);
        vhdx_st32(ds, VHDX_LOG_DATA_SIG);
        vhdx_st32(ds + 4, (uint32_t)(s->log_seq >> 32));
        memcpy(ds + 8, src + 8, 4084);
        vhdx_st32(ds + 4092, (uint32_t)s->log_seq);
    }
    vhdx_st32(e + 4, crc32c(e, len));
    *plen = len;
    return e;
}

/* A new log GUID in both headers: entries written from now on are the
 * ones a replay looks for. */
static int coroutine_fn log_activate(struct blk_node *bs)
{
    struct vhdx_state *s = bs->opaque;
    int ret;

    vhdx_guid_generate(&s->header.log_guid);
    s->log_tail = s->log_write;
    ret = vhdx_header_write(bs);
    if (ret >= 0) {
        ret = vhdx_header_write(bs);
    }
    if (ret >= 0) {
        s->log_active = true;
    }
    return ret;
}

int coroutine_fn vhdx_log_write_and_flush(struct blk_node *bs, uint64_t off,
                                          const void *buf, uint32_t nsect)
{
    struct vhdx_state *s = bs->opaque;
    uint32_t size = s->header.log_length, pos, len;
    uint64_t last_size = MAX(bs->file->size, s->file_end);
    uint8_t *entry;
    int ret;

    /* a log region a hostile header moved onto other data is not
     * written; an entry takes at most half the log, so it fits next to
     * the one entry that may still be pending */
    if (s->header.log_offset < VHDX_MiB || s->header.log_offset % VHDX_MiB ||
        size == 0 || size % VHDX_MiB || size > MAX_LOG ||
        s->header.log_offset + size > last_size ||
        off % VHDX_LOG_SECTOR || nsect == 0 ||
        64 + 32 * (uint64_t)nsect + (uint64_t)nsect * VHDX_LOG_SECTOR >
        size / 2) {
        return -EINVAL;
    }
    if (s->log_seq == 0) {
        s->log_seq = 1; /* 0 is not a valid sequence number */
    }
    /* The entries of one log GUID never wrap round the log: once they
     * reach its end, the next entry starts again at its beginning under a
     * new GUID.  So no entry of the active GUID lies right after the head,
     * where QEMU's replay (which ignores the tail, and does not check the
     * sequence number of an entry that follows a lone first one) would
     * take it for part of the sequence. */
    len = (DIV_ROUND_UP(64 + 32 * nsect, VHDX_LOG_SECTOR) + nsect) *
          VHDX_LOG_SECTOR;
    if (s->log_active && s->log_write + len > size) {
        ret = blk_co_flush(bs->file); /* nothing pending any more */
        if (ret < 0) {
            return ret;
        }
        s->flushed_size = last_size;
        s->log_active = false;
    }
    if (!s->log_active) {
        if (s->log_write + len > size) {
            s->log_write = 0;
        }
        ret = log_activate(bs); /* the entry is its own tail */
        if (ret < 0) {
            return ret;
        }
    }
    pos = s->log_write;
    entry = build_entry(s, off, buf, nsect, last_size, &len);
    ret = blk_co_pwrite(bs->file, s->header.log_offset + pos, len, entry, 0);
    free(entry);
    if (ret >= 0) {
        /* the entry (and data not flushed before) ahead of the change */
        ret = blk_co_flush(bs->file);
    }
    if (ret < 0) {
        return ret;
    }
    s->log_seq++;
    s->log_write = pos + len; /* the end of the log ends the GUID */
    s->flushed_size = last_size;
    /* older entries' in-place writes went out before that flush */
    s->log_tail = pos;
    return blk_co_pwrite(bs->file, off, (uint64_t)nsect * VHDX_LOG_SECTOR,
                         buf, 0);
}

int coroutine_fn vhdx_log_clear(struct blk_node *bs)
{
    struct vhdx_state *s = bs->opaque;
    int ret;

    if (!s->log_active) {
        return 0;
    }
    ret = blk_co_flush(bs->file); /* every in-place write is on disk */
    if (ret < 0) {
        return ret;
    }
    s->flushed_size = MAX(bs->file->size, s->file_end);
    s->log_tail = s->log_write;
    memset(s->header.log_guid.b, 0, 16);
    ret = vhdx_header_write(bs);
    if (ret >= 0) {
        ret = vhdx_header_write(bs);
    }
    if (ret >= 0) {
        s->log_active = false;
    }
    return ret;
}
