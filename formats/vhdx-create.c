/* Creating VHDX images laid out as qemu-img 7.2 lays them out: the log at
 * 1 MiB, the BAT after it, 1 MiB of metadata after that, payload from
 * 5 MiB past the metadata's start; the same option names, defaults,
 * rounding and messages.  Only the random fields (GUIDs, the first header
 * sequence number) and the creator string differ. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "crc32c.h"
#include "drivers.h"
#include "util.h"
#include "vhdx.h"

#define CREATOR "strata " STRATA_VERSION_STRING

const struct blk_opt_desc vhdx_create_opts[] = {
    {"size", OPT_SIZE, "Virtual disk size; max of 64TB.", NULL},
    {"log_size", OPT_SIZE, "Log size; min 1MB.", "1048576"},
    {"block_size", OPT_SIZE, "Block Size; min 1MB, max 256MB. 0 means "
     "auto-calculate based on image size.", "0"},
    {"subformat", OPT_STRING, "VHDX format type, can be either 'dynamic' or "
     "'fixed'. Default is 'dynamic'.", NULL},
    {"block_state_zero", OPT_BOOL, "Force use of payload blocks of type "
     "'ZERO'. Non-standard, but default.  Do not set to 'off' when using "
     "'qemu-img convert' with subformat=dynamic.", NULL},
    {NULL, 0, NULL, NULL},
};

struct vhdx_params {
    uint64_t size, log_size, block_size;
    bool fixed, zero_blocks;
};

static int parse_params(struct blk_opts *opts, struct vhdx_params *p,
                        struct strata_error **errp)
{
    const char *sub;
    int ret;

    ret = opts_get_size(opts, "size", 0, &p->size, errp);
    if (ret == 0) {
        ret = opts_get_size(opts, "log_size", VHDX_MiB, &p->log_size, errp);
    }
    if (ret == 0) {
        ret = opts_get_size(opts, "block_size", 0, &p->block_size, errp);
    }
    if (ret == 0) {
        ret = opts_get_bool(opts, "block_state_zero", true, &p->zero_blocks,
                            errp);
    }
    if (ret < 0) {
        return ret;
    }
    sub = opts_get(opts, "subformat");
    if (sub && strcmp(sub, "dynamic") != 0 && strcmp(sub, "fixed") != 0) {
        return error_setg(errp, -EINVAL, "Parameter 'subformat' does not "
                          "accept value '%s'", sub);
    }
    p->fixed = sub && strcmp(sub, "fixed") == 0;
    if (p->size > VHDX_MAX_SIZE) {
        return error_setg(errp, -EINVAL, "Image size too large; max of 64TB");
    }
    p->size = ROUND_UP(p->size, (uint64_t)BLK_SECTOR_SIZE);
    p->log_size = ROUND_UP(MAX(p->log_size, (uint64_t)VHDX_MiB),
                           (uint64_t)VHDX_MiB);
    if (p->log_size > UINT32_MAX - VHDX_MiB) {
        return error_setg(errp, -EINVAL, "Log size must be smaller than 4 GB");
    }
    if (p->block_size == 0) {
        p->block_size = p->size > (32ull << 40)  ? 64 * VHDX_MiB
                        : p->size > (100ull << 30) ? 32 * VHDX_MiB
                        : p->size > (1ull << 30)   ? 16 * VHDX_MiB
                                                   : 8 * VHDX_MiB;
    }
    if (p->block_size & (p->block_size - 1)) {
        return error_setg(errp, -EINVAL, "Block size must be a power of two");
    }
    p->block_size = MIN(MAX(p->block_size, (uint64_t)VHDX_MIN_BLOCK),
                        (uint64_t)VHDX_MAX_BLOCK);
    return 0;
}

static void put_guid_text(uint8_t *at, const char *text)
{
    struct vhdx_guid g;
    vhdx_guid_from_text(&g, text);
    memcpy(at, g.b, 16);
}

/* The metadata region: table, then the items at 64 KiB. */
static void build_metadata(uint8_t *m, const struct vhdx_params *p)
{
    static const struct {
        const char *guid;
        uint32_t off, len, bits;
    } items[] = {
        {GUID_FILE_PARAMS, 0x10000, 8, 4},
        {GUID_VDISK_SIZE, 0x10008, 8, 6},
        {GUID_PAGE83, 0x10010, 16, 6},
        {GUID_LOGICAL_SECTOR, 0x10020, 4, 6},
        {GUID_PHYSICAL_SECTOR, 0x10024, 4, 6},
    };
    struct vhdx_guid page83;

    memcpy(m, "metadata", 8);
    vhdx_st16(m + 10, 5);
    for (int i = 0; i < 5; i++) {
        uint8_t *e = m + 32 + 32 * i;
        put_guid_text(e, items[i].guid);
        vhdx_st32(e + 16, items[i].off);
        vhdx_st32(e + 20, items[i].len);
        vhdx_st32(e + 24, items[i].bits);
    }
    vhdx_st32(m + 0x10000, (uint32_t)p->block_size);
    vhdx_st32(m + 0x10004, p->fixed ? 1 : 0); /* leave blocks allocated */
    vhdx_st64(m + 0x10008, p->size);
    vhdx_guid_generate(&page83);
    memcpy(m + 0x10010, page83.b, 16);
    vhdx_st32(m + 0x10020, 512);
    vhdx_st32(m + 0x10024, 512);
}

/* The first MiB: identifier, two headers, two region tables. */
static void build_head(uint8_t *buf, const struct vhdx_params *p,
                       uint64_t bat_off, uint64_t bat_len, uint64_t meta_off)
{
    struct vhdx_header h = {0};
    uint32_t seq;
    const char *c = CREATOR;

    memcpy(buf, VHDX_FILE_SIG, 8);
    for (int i = 0; c[i]; i++) {
        vhdx_st16(buf + 8 + 2 * i, (uint8_t)c[i]);
    }
    while (getrandom(&seq, sizeof(seq), 0) != sizeof(seq)) {
    }
    h.sequence = seq;
    vhdx_guid_generate(&h.file_write_guid);
    vhdx_guid_generate(&h.data_write_guid);
    h.version = 1;
    h.log_length = (uint32_t)p->log_size;
    h.log_offset = VHDX_MiB;
    vhdx_header_encode(&h, buf + VHDX_HEADER1_OFFSET);
    h.sequence++;
    vhdx_header_encode(&h, buf + VHDX_HEADER2_OFFSET);

    uint8_t *r = buf + VHDX_REGION1_OFFSET;
    vhdx_st32(r, VHDX_REGION_SIG);
    vhdx_st32(r + 8, 2);
    put_guid_text(r + 16, GUID_BAT);
    vhdx_st64(r + 32, bat_off);
    vhdx_st32(r + 40, (uint32_t)bat_len);
    put_guid_text(r + 48, GUID_METADATA);
    vhdx_st64(r + 64, meta_off);
    vhdx_st32(r + 72, VHDX_MiB);
    vhdx_st32(r + 4, crc32c(r, VHDX_REGION_SIZE));
    memcpy(buf + VHDX_REGION2_OFFSET, r, VHDX_REGION_SIZE);
}

static int write_image(struct blk_node *f, const struct vhdx_params *p,
                       struct strata_error **errp)
{
    struct vhdx_state g = {.block_size = (uint32_t)p->block_size,
                           .logical_sector = 512,
                           .virtual_size = p->size};
    uint64_t bat_off = VHDX_MiB + p->log_size, bat_len, meta_off, data_off;
    uint8_t *buf, *bat;
    int ret;

    vhdx_geometry(&g);
    bat_len = ROUND_UP(g.bat_entries * 8, (uint64_t)VHDX_MiB);
    meta_off = bat_off + bat_len;
    data_off = meta_off + 5 * (uint64_t)VHDX_MiB;

    buf = xzalloc(VHDX_MiB);
    build_head(buf, p, bat_off, bat_len, meta_off);
    ret = blk_pwrite(f, 0, VHDX_MiB, buf, 0);
    if (ret >= 0) {
        memset(buf, 0, VHDX_MiB);
        build_metadata(buf, p);
        ret = blk_pwrite(f, meta_off, VHDX_MiB, buf, 0);
    }
    free(buf);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Could not write the VHDX headers");
    }

    bat = xzalloc(bat_len);
    for (uint64_t b = 0; b < g.payload_blocks; b++) {
        uint64_t e = 0;
        if (p->zero_blocks) {
            e = VHDX_BAT_ZERO;
        } else if (p->fixed) {
            e = (data_off + b * p->block_size) | VHDX_BAT_FULLY_PRESENT;
        }
        vhdx_st64(bat + 8 * vhdx_bat_index(&g, b), e);
    }
    ret = blk_pwrite(f, bat_off, bat_len, bat, 0);
    free(bat);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Could not write the VHDX BAT");
    }
    return blk_truncate(f, data_off + (p->fixed ? p->size : 0), true,
                        BLK_PREALLOC_OFF, errp);
}

int vhdx_create(const char *filename, struct blk_opts *opts,
                struct strata_error **errp)
{
    struct vhdx_params p;
    struct blk_opts *fopts;
    struct blk_node *f;
    int ret = parse_params(opts, &p, errp);

    if (ret < 0) {
        return ret;
    }
    fopts = opts_new();
    opts_set(fopts, "size", "0");
    ret = blk_create_file(filename, fopts, errp);
    opts_free(fopts);
    if (ret < 0) {
        return ret;
    }
    ret = blk_open_created_file(&f, filename, 0, errp);
    if (ret < 0) {
        return ret;
    }
    ret = write_image(f, &p, errp);
    if (ret >= 0) {
        ret = blk_flush(f);
        if (ret < 0) {
            error_setg_errno(errp, ret, "Could not flush '%s'", filename);
        }
    }
    blk_close(f);
    return ret < 0 ? ret : 0;
}
