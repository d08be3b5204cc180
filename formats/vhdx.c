/* VHDX (Hyper-V) images: open (headers, region table, metadata, BAT),
 * reads and writes of fixed, dynamic and differencing images, block
 * status and check.  Log replay is in vhdx-log.c, create in vhdx-create.c.
 *
 * Writes allocate a whole payload block at the end of the file (the
 * file grows sparse, so the rest of a new block reads as zeroes), write
 * the data, then point the BAT entry at it through the log (vhdx-log.c):
 * a crash leaves at worst an unreferenced block, or a log whose replay
 * completes the BAT update.  Reads, writes and block status treat runs of
 * blocks lying back to back in the file as one range. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "crc32c.h"
#include "drivers.h"
#include "util.h"
#include "vhdx.h"


/* ---- GUIDs ---- */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

void vhdx_guid_from_text(struct vhdx_guid *g, const char *t)
{
    uint8_t v[16];
    int n = 0;

    for (; *t && n < 16; t++) {
        if (*t == '-') {
            continue;
        }
        v[n++] = (uint8_t)(hexval(t[0]) << 4 | hexval(t[1]));
        t++;
    }
    /* the first three fields are stored little-endian */
    g->b[0] = v[3], g->b[1] = v[2], g->b[2] = v[1], g->b[3] = v[0];
    g->b[4] = v[5], g->b[5] = v[4], g->b[6] = v[7], g->b[7] = v[6];
    memcpy(g->b + 8, v + 8, 8);
}

bool vhdx_guid_is_zero(const struct vhdx_guid *g)
{
    static const uint8_t zero[16];
    return memcmp(g->b, zero, 16) == 0;
}

/* A version 4 (random) GUID, as Hyper-V and QEMU write them. */
void vhdx_guid_generate(struct vhdx_guid *g)
{
    size_t got = 0;

    while (got < sizeof(g->b)) {
        ssize_t n = getrandom(g->b + got, sizeof(g->b) - got, 0);
        if (n > 0) {
            got += n;
        }
    }
    g->b[7] = (g->b[7] & 0x0f) | 0x40;
    g->b[8] = (g->b[8] & 0x3f) | 0x80;
}

static bool guid_eq_text(const uint8_t *stored, const char *text)
{
    struct vhdx_guid g;
    vhdx_guid_from_text(&g, text);
    return memcmp(stored, g.b, 16) == 0;
}

/* ---- headers ---- */

void vhdx_header_encode(const struct vhdx_header *h, uint8_t *buf)
{
    memset(buf, 0, VHDX_HEADER_SIZE);
    vhdx_st32(buf, VHDX_HEADER_SIG);
    vhdx_st64(buf + 8, h->sequence);
    memcpy(buf + 16, h->file_write_guid.b, 16);
    memcpy(buf + 32, h->data_write_guid.b, 16);
    memcpy(buf + 48, h->log_guid.b, 16);
    vhdx_st16(buf + 64, h->log_version);
    vhdx_st16(buf + 66, h->version);
    vhdx_st32(buf + 68, h->log_length);
    vhdx_st64(buf + 72, h->log_offset);
    vhdx_st32(buf + 4, crc32c(buf, VHDX_HEADER_SIZE));
}

/* Checksums cover a structure with its own checksum field zeroed. */
static bool checksum_ok(const uint8_t *buf, size_t len, size_t field)
{
    uint32_t want = vhdx_ld32(buf + field), crc;
    static const uint8_t zero[4];

    crc = crc32c_update(0xffffffffu, buf, field);
    crc = crc32c_update(crc, zero, 4);
    crc = crc32c_update(crc, buf + field + 4, len - field - 4);
    return ~crc == want;
}

bool vhdx_header_decode(const uint8_t *buf, struct vhdx_header *h)
{
    if (vhdx_ld32(buf) != VHDX_HEADER_SIG ||
        !checksum_ok(buf, VHDX_HEADER_SIZE, 4)) {
        return false;
    }
    h->checksum = vhdx_ld32(buf + 4);
    h->sequence = vhdx_ld64(buf + 8);
    memcpy(h->file_write_guid.b, buf + 16, 16);
    memcpy(h->data_write_guid.b, buf + 32, 16);
    memcpy(h->log_guid.b, buf + 48, 16);
    h->log_version = vhdx_ld16(buf + 64);
    h->version = vhdx_ld16(buf + 66);
    h->log_length = vhdx_ld32(buf + 68);
    h->log_offset = vhdx_ld64(buf + 72);
    return true;
}

int coroutine_fn vhdx_header_write(struct blk_node *bs)
{
    struct vhdx_state *s = bs->opaque;
    uint8_t *buf = blk_alloc_buf(bs->file, VHDX_HEADER_SIZE);
    int slot = 1 - s->cur_header;
    int ret;

    s->header.sequence++;
    vhdx_header_encode(&s->header, buf);
    ret = blk_co_pwrite(bs->file, slot ? VHDX_HEADER2_OFFSET
                                       : VHDX_HEADER1_OFFSET,
                        VHDX_HEADER_SIZE, buf, 0);
    if (ret >= 0) {
        ret = blk_co_flush(bs->file);
    }
    if (ret >= 0) {
        s->cur_header = slot;
    }
    free(buf);
    return ret;
}

static int coroutine_fn read_headers(struct blk_node *bs,
                                     struct strata_error **errp)
{
    struct vhdx_state *s = bs->opaque;
    uint8_t *buf = xmalloc(VHDX_HEADER_SIZE);
    struct vhdx_header h[2];
    bool ok[2];
    int ret = 0;

    for (int i = 0; i < 2; i++) {
        ret = blk_co_pread(bs->file, i ? VHDX_HEADER2_OFFSET
                                       : VHDX_HEADER1_OFFSET,
                           VHDX_HEADER_SIZE, buf, 0);
        if (ret < 0) {
            free(buf);
            return error_setg_errno(errp, ret, "Could not read the VHDX "
                                    "headers");
        }
        ok[i] = vhdx_header_decode(buf, &h[i]);
    }
    free(buf);
    if (!ok[0] && !ok[1]) {
        return error_setg(errp, -EINVAL, "No valid VHDX header found");
    }
    s->cur_header = !ok[0] || (ok[1] && h[1].sequence > h[0].sequence);
    s->header = h[s->cur_header];
    if (s->header.version != 1) {
        return error_setg(errp, -ENOTSUP, "VHDX version %u is not supported",
                          s->header.version);
    }
    return ret < 0 ? ret : 0;
}

/* ---- region table and metadata ---- */

static int check_region(struct blk_node *bs, const char *what, uint64_t off,
                        uint64_t len, struct strata_error **errp)
{
    if (off < VHDX_MiB || off % VHDX_MiB || len == 0 || len % VHDX_MiB ||
        off >= bs->file->size) {
        return error_setg(errp, -EINVAL, "VHDX %s region at %llu (%llu bytes)"
                          " lies outside the image", what,
                          (unsigned long long)off, (unsigned long long)len);
    }
    return 0;
}

static int coroutine_fn read_regions(struct blk_node *bs,
                                     struct strata_error **errp)
{
    struct vhdx_state *s = bs->opaque;
    uint8_t *buf = xmalloc(VHDX_REGION_SIZE);
    uint32_t count;
    int ret, i;

    for (i = 0; i < 2; i++) {
        ret = blk_co_pread(bs->file, i ? VHDX_REGION2_OFFSET
                                       : VHDX_REGION1_OFFSET,
                           VHDX_REGION_SIZE, buf, 0);
        if (ret < 0) {
            free(buf);
            return error_setg_errno(errp, ret, "Could not read the VHDX "
                                    "region table");
        }
        if (vhdx_ld32(buf) == VHDX_REGION_SIG &&
            checksum_ok(buf, VHDX_REGION_SIZE, 4)) {
            break;
        }
    }
    if (i == 2) {
        free(buf);
        return error_setg(errp, -EINVAL, "No valid VHDX region table found");
    }
    count = vhdx_ld32(buf + 8);
    if (count > 2047) {
        free(buf);
        return error_setg(errp, -EINVAL, "VHDX region table has %u entries "
                          "(at most 2047)", count);
    }
    for (uint32_t k = 0; k < count; k++) {
        const uint8_t *e = buf + 16 + 32 * k;
        uint64_t off = vhdx_ld64(e + 16);
        uint32_t len = vhdx_ld32(e + 24);
        bool required = vhdx_ld32(e + 28) & 1;
        if (guid_eq_text(e, GUID_BAT) && !s->bat_offset) {
            s->bat_offset = off;
            s->bat_length = len;
        } else if (guid_eq_text(e, GUID_METADATA) && !s->meta_offset) {
            s->meta_offset = off;
            s->meta_length = len;
        } else if (required) {
            free(buf);
            return error_setg(errp, -ENOTSUP, "VHDX image has an unknown "
                              "required region");
        }
    }
    free(buf);
    if (!s->bat_offset || !s->meta_offset) {
        return error_setg(errp, -EINVAL, "VHDX region table lacks the %s "
                          "region", s->bat_offset ? "metadata" : "BAT");
    }
    ret = check_region(bs, "BAT", s->bat_offset, s->bat_length, errp);
    if (ret == 0) {
        ret = check_region(bs, "metadata", s->meta_offset, s->meta_length,
                           errp);
    }
    if (ret == 0) {
        /* no two of the log, the BAT and the metadata may share bytes */
        uint64_t r[3][2] = {
            {s->header.log_offset, s->header.log_length},
            {s->bat_offset, s->bat_length},
            {s->meta_offset, s->meta_length},
        };
        for (int a = 0; a < 3; a++) {
            for (int b = a + 1; b < 3; b++) {
                if (r[a][1] && r[b][1] && r[a][0] < r[b][0] + r[b][1] &&
                    r[b][0] < r[a][0] + r[a][1]) {
                    return error_setg(errp, -EINVAL, "VHDX region %llu-%llu "
                                      "overlaps with region %llu-%llu",
                                      (unsigned long long)r[a][0],
                                      (unsigned long long)(r[a][0] + r[a][1]),
                                      (unsigned long long)r[b][0],
                                      (unsigned long long)(r[b][0] + r[b][1]));
                }
            }
        }
    }
    return ret;
}

/* The value of one metadata item, bounds-checked. */
static const uint8_t *meta_item(const uint8_t *meta, uint32_t meta_len,
                                const uint8_t *entry, uint32_t want_len)
{
    uint32_t off = vhdx_ld32(entry + 16), len = vhdx_ld32(entry + 20);

    if (off < 64 * 1024 || len < want_len || off > meta_len ||
        len > meta_len - off) {
        return NULL;
    }
    return meta + off;
}

/* Parent locator entries: key/value pairs of UTF-16LE strings. */
static char *utf16_to_utf8(const uint8_t *p, uint32_t len)
{
    char *out = xmalloc(len * 2 + 1), *o = out;

    for (uint32_t i = 0; i + 1 < len; i += 2) {
        unsigned c = vhdx_ld16(p + i);
        if (c < 0x80) {
            *o++ = (char)c;
        } else if (c < 0x800) {
            *o++ = (char)(0xc0 | c >> 6);
            *o++ = (char)(0x80 | (c & 0x3f));
        } else {
            *o++ = (char)(0xe0 | c >> 12);
            *o++ = (char)(0x80 | ((c >> 6) & 0x3f));
            *o++ = (char)(0x80 | (c & 0x3f));
        }
    }
    *o = 0;
    return out;
}

/* Pick the parent's file name from the locator: relative_path first,
 * then the file name part of absolute_win32_path, next to the image. */
static int parse_parent_locator(struct blk_node *bs, const uint8_t *loc,
                                uint32_t len, char **linkage,
                                struct strata_error **errp)
{
    char *rel = NULL, *abs = NULL;
    uint16_t count;

    if (len < 20 || !guid_eq_text(loc, GUID_PARENT_VHDX)) {
        return error_setg(errp, -ENOTSUP, "VHDX parent locator is not of "
                          "the VHDX type");
    }
    count = vhdx_ld16(loc + 18);
    if (20 + (uint64_t)count * 12 > len) {
        return error_setg(errp, -EINVAL, "VHDX parent locator is truncated");
    }
    for (uint16_t i = 0; i < count; i++) {
        const uint8_t *e = loc + 20 + 12 * i;
        uint32_t ko = vhdx_ld32(e), vo = vhdx_ld32(e + 4);
        uint16_t kl = vhdx_ld16(e + 8), vl = vhdx_ld16(e + 10);
        if (ko > len || kl > len - ko || vo > len || vl > len - vo) {
            free(rel);
            free(abs);
            free(*linkage);
            *linkage = NULL;
            return error_setg(errp, -EINVAL, "VHDX parent locator entry "
                              "lies outside the locator");
        }
        char *key = utf16_to_utf8(loc + ko, kl);
        char **dst = !strcmp(key, "relative_path")         ? &rel
                     : !strcmp(key, "absolute_win32_path") ? &abs
                     : !strcmp(key, "parent_linkage")      ? linkage
                                                           : NULL;
        if (dst && !*dst) {
            *dst = utf16_to_utf8(loc + vo, vl);
        }
        free(key);
    }
    char *name = rel ? rel : abs;
    if (!name) {
        free(*linkage);
        *linkage = NULL;
        return error_setg(errp, -EINVAL, "VHDX parent locator names no "
                          "parent file");
    }
    for (char *p = name; *p; p++) {
        if (*p == '\\') {
            *p = '/';
        }
    }
    if (name == abs) {
        /* "C:/dir/parent.vhdx" means nothing here: look next to the image */
        char *base = strrchr(name, '/');
        bs->backing_file = xstrdup(base ? base + 1 : name);
    } else {
        bs->backing_file = xstrdup(strncmp(name, "./", 2) ? name : name + 2);
    }
    free(rel);
    free(abs);
    return 0;
}

static int coroutine_fn read_metadata(struct blk_node *bs, char **linkage,
                                      struct strata_error **errp)
{
    struct vhdx_state *s = bs->opaque;
    uint32_t len = (uint32_t)MIN((uint64_t)MIN(s->meta_length,
                                               32u * VHDX_MiB),
                                 bs->file->size - s->meta_offset);
    uint8_t *meta = xmalloc(len);
    const uint8_t *v;
    bool have[5] = {false};
    uint16_t count;
    int ret = blk_co_pread(bs->file, s->meta_offset, len, meta, 0);

    if (ret < 0) {
        ret = error_setg_errno(errp, ret, "Could not read the VHDX metadata");
        goto out;
    }
    if (memcmp(meta, "metadata", 8) != 0) {
        ret = error_setg(errp, -EINVAL, "VHDX metadata table signature is "
                         "wrong");
        goto out;
    }
    count = vhdx_ld16(meta + 10);
    if (count > 2047) {
        ret = error_setg(errp, -EINVAL, "VHDX metadata table has %u entries "
                         "(at most 2047)", count);
        goto out;
    }
    for (uint16_t i = 0; i < count; i++) {
        const uint8_t *e = meta + 32 + 32 * i;
        bool required = vhdx_ld32(e + 24) & 4;
        if (guid_eq_text(e, GUID_FILE_PARAMS) &&
            (v = meta_item(meta, len, e, 8))) {
            s->block_size = vhdx_ld32(v);
            s->leave_blocks_allocated = vhdx_ld32(v + 4) & 1;
            s->has_parent = vhdx_ld32(v + 4) & 2;
            have[0] = true;
        } else if (guid_eq_text(e, GUID_VDISK_SIZE) &&
                   (v = meta_item(meta, len, e, 8))) {
            s->virtual_size = vhdx_ld64(v);
            have[1] = true;
        } else if (guid_eq_text(e, GUID_PAGE83) &&
                   (v = meta_item(meta, len, e, 16))) {
            memcpy(s->page83.b, v, 16);
            have[2] = true;
        } else if (guid_eq_text(e, GUID_LOGICAL_SECTOR) &&
                   (v = meta_item(meta, len, e, 4))) {
            s->logical_sector = vhdx_ld32(v);
            have[3] = true;
        } else if (guid_eq_text(e, GUID_PHYSICAL_SECTOR) &&
                   (v = meta_item(meta, len, e, 4))) {
            s->physical_sector = vhdx_ld32(v);
            have[4] = true;
        } else if (guid_eq_text(e, GUID_PARENT_LOCATOR) &&
                   (v = meta_item(meta, len, e, 20))) {
            ret = parse_parent_locator(bs, v, vhdx_ld32(e + 20), linkage,
                                       errp);
            if (ret < 0) {
                goto out;
            }
        } else if (required) {
            ret = error_setg(errp, -ENOTSUP, "VHDX metadata has an unknown "
                             "or malformed required item");
            goto out;
        }
    }
    for (int i = 0; i < 5; i++) {
        if (!have[i]) {
            ret = error_setg(errp, -EINVAL, "VHDX metadata lacks a required "
                             "item");
            goto out;
        }
    }
    if (s->block_size < VHDX_MIN_BLOCK || s->block_size > VHDX_MAX_BLOCK ||
        (s->block_size & (s->block_size - 1))) {
        ret = error_setg(errp, -EINVAL, "VHDX block size %u is invalid",
                         s->block_size);
    } else if ((s->logical_sector != 512 && s->logical_sector != 4096) ||
               (s->physical_sector != 512 && s->physical_sector != 4096)) {
        ret = error_setg(errp, -EINVAL, "VHDX sector sizes %u/%u are "
                         "invalid", s->logical_sector, s->physical_sector);
    } else if (s->virtual_size == 0 || s->virtual_size > VHDX_MAX_SIZE ||
               s->virtual_size % s->logical_sector) {
        ret = error_setg(errp, -EINVAL, "VHDX virtual size %llu is invalid",
                         (unsigned long long)s->virtual_size);
    } else if (s->has_parent && !bs->backing_file) {
        ret = error_setg(errp, -EINVAL, "VHDX differencing image has no "
                         "parent locator");
    }
out:
    free(meta);
    return ret;
}

void vhdx_geometry(struct vhdx_state *s)
{
    uint64_t sb_blocks;

    s->block_bits = (uint32_t)__builtin_ctz(s->block_size);
    s->chunk_ratio = ((uint64_t)1 << 23) * s->logical_sector / s->block_size;
    s->payload_blocks = DIV_ROUND_UP(s->virtual_size, s->block_size);
    sb_blocks = DIV_ROUND_UP(s->payload_blocks, s->chunk_ratio);
    if (s->has_parent) {
        s->bat_entries = sb_blocks * (s->chunk_ratio + 1);
    } else {
        s->bat_entries = s->payload_blocks +
                         (s->payload_blocks - 1) / s->chunk_ratio;
    }
}

static int coroutine_fn read_bat(struct blk_node *bs,
                                 struct strata_error **errp)
{
    struct vhdx_state *s = bs->opaque;
    uint64_t bytes = s->bat_entries * 8, fsize = bs->file->size, whole;
    uint8_t *raw;
    int ret;

    if (bytes > s->bat_length || bytes > fsize ||
        s->bat_offset > fsize - bytes) {
        return error_setg(errp, -EINVAL, "VHDX BAT (%llu entries) does not "
                          "fit its region or the file",
                          (unsigned long long)s->bat_entries);
    }
    /* whole 4 KiB sectors of entries: BAT updates log whole sectors, and
     * the entries past the last one in use are kept as they are */
    whole = MIN(ROUND_UP(bytes, (uint64_t)VHDX_LOG_SECTOR),
                fsize - s->bat_offset);
    raw = xzalloc(ROUND_UP(bytes, (uint64_t)VHDX_LOG_SECTOR));
    s->bat = xmalloc(ROUND_UP(bytes, (uint64_t)VHDX_LOG_SECTOR));
    ret = blk_co_pread(bs->file, s->bat_offset, whole, raw, 0);
    if (ret < 0) {
        free(raw);
        return error_setg_errno(errp, ret, "Could not read the VHDX BAT");
    }
    for (uint64_t i = 0; i < ROUND_UP(bytes, (uint64_t)VHDX_LOG_SECTOR) / 8;
         i++) {
        s->bat[i] = vhdx_ld64(raw + 8 * i);
    }
    free(raw);
    /* present blocks must lie inside the file (as QEMU checks); the last
     * block of a fixed image only needs the bytes the disk uses */
    for (uint64_t b = 0; b < s->payload_blocks; b++) {
        uint64_t e = s->bat[vhdx_bat_index(s, b)];
        unsigned st = VHDX_BAT_STATE(e);
        uint64_t need = MIN((uint64_t)s->block_size,
                            s->virtual_size - (b << s->block_bits));
        if ((st == VHDX_BAT_FULLY_PRESENT ||
             st == VHDX_BAT_PARTIALLY_PRESENT) &&
            (VHDX_BAT_OFFSET(e) < VHDX_MiB ||
             VHDX_BAT_OFFSET(e) + need > fsize)) {
            return error_setg(errp, -EINVAL, "VHDX BAT entry %llu start "
                              "offset %llu points after end of file (%llu). "
                              "Image has probably been truncated.",
                              (unsigned long long)b,
                              (unsigned long long)VHDX_BAT_OFFSET(e),
                              (unsigned long long)fsize);
        }
    }
    return 0;
}

static int vhdx_probe(const uint8_t *buf, size_t len, const char *filename)
{
    return len >= 8 && memcmp(buf, VHDX_FILE_SIG, 8) == 0 ? 100 : 0;
}

/* A differencing image's parent must be the one it was made from. */
static int check_linkage(struct blk_node *bs, const char *linkage,
                         struct strata_error **errp)
{
    struct blk_node *p = bs->backing;
    char text[40];
    const uint8_t *g;

    if (!linkage || !p || p->drv != &blk_drv_vhdx) {
        return 0;
    }
    g = ((struct vhdx_state *)p->opaque)->header.data_write_guid.b;
    snprintf(text, sizeof(text), "{%02X%02X%02X%02X-%02X%02X-%02X%02X-"
             "%02X%02X-%02X%02X%02X%02X%02X%02X}", g[3], g[2], g[1], g[0],
             g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13],
             g[14], g[15]);
    if (strcasecmp(text, linkage) != 0) {
        return error_setg(errp, -EINVAL, "VHDX parent '%s' has changed since "
                          "'%s' was made from it (data GUID %s, expected %s)",
                          p->filename, bs->filename, text, linkage);
    }
    return 0;
}

struct open_args {
    struct blk_node *bs;
    struct strata_error **errp;
};

static int coroutine_fn vhdx_co_open(void *opaque)
{
    struct open_args *a = opaque;
    struct blk_node *bs = a->bs;
    struct vhdx_state *s = bs->opaque;
    char sig[8], *linkage = NULL;
    int ret;

    co_mutex_init(&s->lock);
    co_queue_init(&s->allocated);
    ret = blk_co_pread(bs->file, 0, 8, sig, 0);
    if (ret < 0 || memcmp(sig, VHDX_FILE_SIG, 8) != 0) {
        return error_setg(a->errp, ret < 0 ? ret : -EINVAL,
                          "Image not in VHDX format");
    }
    ret = read_headers(bs, a->errp);
    if (ret == 0 && !vhdx_guid_is_zero(&s->header.log_guid)) {
        if (bs->read_only) {
            return error_setg(a->errp, -EPERM, "VHDX image file '%s' opened "
                              "read-only, but contains a log that needs to "
                              "be replayed; to replay it, open it "
                              "read-write (e.g. strata-img check -r all "
                              "'%s')", bs->filename, bs->filename);
        }
        ret = vhdx_log_replay(bs, a->errp);
    }
    if (ret == 0) {
        ret = read_regions(bs, a->errp);
    }
    if (ret == 0) {
        ret = read_metadata(bs, &linkage, a->errp);
    }
    if (ret == 0) {
        vhdx_geometry(s);
        ret = read_bat(bs, a->errp);
    }
    if (ret == 0) {
        bs->size = s->virtual_size;
        bs->limits.request_alignment = s->logical_sector;
        ret = blk_open_backing(bs, a->errp);
    }
    if (ret == 0) {
        ret = check_linkage(bs, linkage, a->errp);
    }
    s->flushed_size = s->file_end = bs->file->size;
    free(linkage);
    return ret;
}

static void vhdx_close(struct blk_node *bs)
{
    struct vhdx_state *s = bs->opaque;
    free(s->bat);
    free(s->allocating);
}

static int vhdx_open(struct blk_node *bs, struct blk_opts *opts,
                     struct strata_error **errp)
{
    struct open_args a = {bs, errp};
    int ret = blk_run_co(vhdx_co_open, &a);

    if (ret < 0) {
        vhdx_close(bs);
    }
    return ret;
}

static bool vhdx_has_zero_init(struct blk_node *bs)
{
    struct vhdx_state *s = bs->opaque;

    for (uint64_t b = 0; b < s->payload_blocks; b++) {
        if (VHDX_BAT_STATE(s->bat[vhdx_bat_index(s, b)]) ==
            VHDX_BAT_FULLY_PRESENT) {
            return false; /* a preallocated block holds what the file did */
        }
    }
    return true;
}

static int vhdx_get_info(struct blk_node *bs, struct blk_info *info)
{
    struct vhdx_state *s = bs->opaque;

    info->cluster_size = s->block_size;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Present blocks inside the file and not overlapping each other or the
 * metadata; the log was already replayed on open. */
static int coroutine_fn vhdx_co_check(struct blk_node *bs,
                                      struct blk_check_result *res,
                                      unsigned fix)
{
    struct vhdx_state *s = bs->opaque;
    uint64_t fsize = bs->file->size;
    uint64_t *offs = xmalloc(sizeof(*offs) * (s->payload_blocks + 1));
    uint64_t n = 0;

    for (uint64_t b = 0; b < s->payload_blocks; b++) {
        uint64_t e = s->bat[vhdx_bat_index(s, b)];
        unsigned st = VHDX_BAT_STATE(e);
        if (st != VHDX_BAT_FULLY_PRESENT &&
            st != VHDX_BAT_PARTIALLY_PRESENT) {
            continue;
        }
        uint64_t o = VHDX_BAT_OFFSET(e);
        if (o + MIN((uint64_t)s->block_size,
                    s->virtual_size - (b << s->block_bits)) > fsize) {
            res->corruptions++;
            continue;
        }
        if ((o < s->bat_offset + s->bat_length &&
             s->bat_offset < o + s->block_size) ||
            (o < s->meta_offset + s->meta_length &&
             s->meta_offset < o + s->block_size)) {
            res->corruptions++;
            continue;
        }
        offs[n++] = o;
    }
    /* two entries sharing space */
    qsort(offs, n, sizeof(*offs), cmp_u64);
    for (uint64_t i = 1; i < n; i++) {
        if (offs[i - 1] + s->block_size > offs[i]) {
            res->corruptions++;
        }
    }
    free(offs);
    return 0;
}

const struct blk_driver blk_drv_vhdx = {
    .name = "vhdx",
    .kind = BLK_KIND_FORMAT,
    .state_size = sizeof(struct vhdx_state),
    .probe = vhdx_probe,
    .open = vhdx_open,
    .close = vhdx_close,
    .create = vhdx_create,
    .create_opts = vhdx_create_opts,
    .preadv = vhdx_co_preadv,
    .pwritev = vhdx_co_pwritev,
    .flush = vhdx_co_flush,
    .block_status = vhdx_co_block_status,
    .has_zero_init = vhdx_has_zero_init,
    .get_info = vhdx_get_info,
    .check = vhdx_co_check,
};
