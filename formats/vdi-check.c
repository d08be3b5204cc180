/* check (and check -r) for vdi images.  Finds what QEMU's check finds
 * (map entries past the data area, data blocks used twice, a wrong
 * allocated-block count) and also entries whose data lies past the end
 * of the file, and unused holes in the data area (leaks: QEMU allocates
 * at index blocks_allocated, so a hole would make it overwrite a block
 * in use).  QEMU repairs nothing; here -r all clears broken entries,
 * gives each twice-used block its own copy and fixes the count, and
 * -r leaks moves the last blocks into the holes. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "vdi.h"

/* Append a line to res->messages (what QEMU prints on stderr). */
__attribute__((format(printf, 2, 3)))
static void report(struct blk_check_result *res, const char *fmt, ...)
{
    size_t old = res->messages ? strlen(res->messages) : 0;
    char *line;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&line, fmt, ap) < 0) {
        abort();
    }
    va_end(ap);
    res->messages = xrealloc(res->messages, old + strlen(line) + 1);
    strcpy(res->messages + old, line);
    free(line);
}

/* Copy the data of block index `from` to index `to`. */
static int coroutine_fn copy_block(struct blk_node *bs, uint32_t from,
                                   uint32_t to)
{
    struct vdi_state *s = bs->opaque;
    uint8_t *buf = xmalloc(s->block_size);
    int ret = blk_co_pread(bs->file, vdi_block_offset(s, from), s->block_size,
                           buf, 0);

    if (ret >= 0) {
        ret = blk_co_pwrite(bs->file, vdi_block_offset(s, to), s->block_size,
                            buf, 0);
    }
    if (ret >= 0) {
        ret = blk_co_flush(bs->file); /* the data before the map */
    }
    free(buf);
    return ret;
}

/* Lowest data index no entry uses, or UINT32_MAX. */
static uint32_t find_free(const struct vdi_state *s, const uint32_t *owner)
{
    for (uint32_t i = 0; i < s->blocks_in_image; i++) {
        if (owner[i] == VDI_UNALLOCATED) {
            return i;
        }
    }
    return UINT32_MAX;
}

/* Move the highest data blocks down into the holes below them. */
static int coroutine_fn compact(struct blk_node *bs, uint32_t *owner,
                                uint32_t *top, struct blk_check_result *res)
{
    struct vdi_state *s = bs->opaque;
    int ret;

    for (uint32_t h = 0; h < *top; h++) {
        if (owner[h] != VDI_UNALLOCATED) {
            continue;
        }
        while (*top > h && owner[*top - 1] == VDI_UNALLOCATED) {
            (*top)--;
        }
        if (*top <= h) {
            break;
        }
        uint32_t m = *top - 1, b = owner[m];
        ret = copy_block(bs, m, h);
        if (ret < 0) {
            return ret;
        }
        s->bmap[b] = h;
        owner[h] = b;
        owner[m] = VDI_UNALLOCATED;
        ret = vdi_write_metadata(bs, b, b);
        if (ret < 0) {
            return ret;
        }
        (*top)--;
        res->leaks--;
        res->leaks_fixed++;
    }
    return 0;
}

/* Walk the map once; repair in place what fix asks for (see the top). */
int coroutine_fn vdi_co_check(struct blk_node *bs,
                              struct blk_check_result *res, unsigned fix)
{
    struct vdi_state *s = bs->opaque;
    uint32_t n = s->blocks_in_image, count = 0, top = 0;
    uint32_t *owner = xmalloc((size_t)MAX(n, 1u) * 4);
    uint32_t *dups = xmalloc((size_t)MAX(n, 1u) * 4);
    uint32_t ndups = 0, eof_bad = 0, seen;
    bool fix_errors = (fix & BLK_FIX_ERRORS) && !bs->read_only;
    bool fix_leaks = (fix & BLK_FIX_LEAKS) && !bs->read_only;
    uint64_t file_size = bs->file->size;
    uint32_t hdr_count = vdi_ld32(s->header + VDI_OFF_BLOCKS_ALLOCATED);
    int ret = 0;

    co_mutex_lock(&s->alloc_lock);
    memset(owner, 0xff, (size_t)MAX(n, 1u) * 4);
    for (uint32_t b = 0; b < n; b++) {
        uint32_t e = s->bmap[b];
        if (!VDI_IS_ALLOCATED(e)) {
            continue;
        }
        if (e < n && vdi_block_offset(s, e) + s->block_size <= file_size) {
            if (owner[e] == VDI_UNALLOCATED) {
                owner[e] = b;
                count++;
                top = MAX(top, e + 1);
            } else {
                report(res, "ERROR: block index %u also used by %u\n",
                       owner[e], b);
                dups[ndups++] = b; /* a second user of the block */
            }
            continue;
        }
        /* past the data area or past the end of the file */
        if (e >= n) {
            report(res, "ERROR: block index %u too large, is %u\n", b, e);
        } else {
            eof_bad++;
            report(res, "ERROR: block index %u points past the end of the "
                   "file (data block %u)\n", b, e);
        }
        if (!fix_errors) {
            res->corruptions++;
            continue;
        }
        s->bmap[b] = s->is_diff ? VDI_DISCARDED : VDI_UNALLOCATED;
        ret = vdi_write_metadata(bs, b, b);
        if (ret < 0) {
            res->check_errors++;
            goto out;
        }
        res->corruptions_fixed++;
    }
    for (uint32_t i = 0; i < ndups; i++) {
        uint32_t b = dups[i], to = fix_errors ? find_free(s, owner)
                                              : UINT32_MAX;
        if (to == UINT32_MAX) {
            res->corruptions++;
            continue;
        }
        ret = copy_block(bs, s->bmap[b], to);
        if (ret < 0) {
            res->check_errors++;
            goto out;
        }
        s->bmap[b] = to;
        owner[to] = b;
        count++;
        top = MAX(top, to + 1);
        s->next_free = MAX(s->next_free, top);
        ret = vdi_write_metadata(bs, b, b);
        if (ret < 0) {
            res->check_errors++;
            goto out;
        }
        res->corruptions_fixed++;
    }
    res->leaks += (int)(top - count);
    if (top > count) {
        report(res, "Leaked data blocks: %u of the first %u are unused\n",
               top - count, top);
    }
    if (fix_leaks && top > count) {
        ret = compact(bs, owner, &top, res);
        if (ret < 0) {
            res->check_errors++;
            goto out;
        }
    }
    /* QEMU counts every entry inside the data area, twice-used ones too */
    seen = fix_errors ? count : count + ndups + eof_bad;
    if (hdr_count != seen) {
        report(res, "ERROR: allocated blocks mismatch, is %u, should be %u\n",
               seen, hdr_count);
        if (fix_errors) {
            res->corruptions_fixed++;
        } else {
            res->corruptions++;
        }
    }
    if (fix_errors) {
        s->blocks_allocated = count;
        if (vdi_ld32(s->header + VDI_OFF_BLOCKS_ALLOCATED) != count) {
            vdi_st32(s->header + VDI_OFF_BLOCKS_ALLOCATED, count);
            ret = blk_co_pwrite(bs->file, 0, VDI_HEADER_SIZE, s->header, 0);
            if (ret < 0) {
                res->check_errors++;
                goto out;
            }
        }
    }
    if (fix_errors || fix_leaks) {
        s->blocks_allocated = count;
        s->next_free = MAX(top, fix_leaks ? count : s->next_free);
        ret = blk_co_flush(bs->file);
    }
out:
    co_mutex_unlock(&s->alloc_lock);
    free(owner);
    free(dups);
    return ret < 0 ? ret : 0;
}
