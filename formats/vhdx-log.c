/* VHDX log replay.  A writer that updates metadata through the log leaves
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
 *    flushes, and clears the log GUID in both headers. */
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
