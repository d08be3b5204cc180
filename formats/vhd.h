/* Virtual PC / Hyper-V VHD images (QEMU's "vpc"): the on-disk layout and
 * the driver state shared by vhd.c (open, data path), vhd-parent.c
 * (differencing images: finding the parent) and vhd-create.c. */
#ifndef FORMATS_VHD_H
#define FORMATS_VHD_H

#include <stdbool.h>
#include <stdint.h>

#include "block.h"

#define VHD_FOOTER_SIZE 512
#define VHD_DYN_HEADER_SIZE 1024
#define VHD_TIMESTAMP_BASE 946684800 /* 2000-01-01 00:00:00 UTC */
#define VHD_DEFAULT_BLOCK_SIZE 0x200000u
#define VHD_BAT_UNUSED 0xffffffffu

#define VHD_FIXED 2
#define VHD_DYNAMIC 3
#define VHD_DIFFERENCING 4

#define VHD_CHS_MAX_C 65535ull
#define VHD_CHS_MAX_H 16
#define VHD_CHS_MAX_S 255
#define VHD_MAX_SECTORS 0xff000000ull /* 2040 GiB */
#define VHD_MAX_GEOMETRY (VHD_CHS_MAX_C * VHD_CHS_MAX_H * VHD_CHS_MAX_S)

/* Footer fields (big endian). */
enum {
    VHD_F_COOKIE = 0x00,
    VHD_F_FEATURES = 0x08,
    VHD_F_VERSION = 0x0c,
    VHD_F_DATA_OFFSET = 0x10,
    VHD_F_TIMESTAMP = 0x18,
    VHD_F_CREATOR_APP = 0x1c,
    VHD_F_CREATOR_VER = 0x20,
    VHD_F_CREATOR_OS = 0x24,
    VHD_F_ORIG_SIZE = 0x28,
    VHD_F_CURRENT_SIZE = 0x30,
    VHD_F_CYLS = 0x38,
    VHD_F_HEADS = 0x3a,
    VHD_F_SECS = 0x3b,
    VHD_F_TYPE = 0x3c,
    VHD_F_CHECKSUM = 0x40,
    VHD_F_UUID = 0x44,
};

/* Dynamic disk header fields (big endian; names UTF-16BE). */
enum {
    VHD_D_COOKIE = 0x00,
    VHD_D_DATA_OFFSET = 0x08,
    VHD_D_TABLE_OFFSET = 0x10,
    VHD_D_VERSION = 0x18,
    VHD_D_MAX_ENTRIES = 0x1c,
    VHD_D_BLOCK_SIZE = 0x20,
    VHD_D_CHECKSUM = 0x24,
    VHD_D_PARENT_UUID = 0x28,
    VHD_D_PARENT_TS = 0x38,
    VHD_D_PARENT_NAME = 0x40,   /* 512 bytes */
    VHD_D_LOCATORS = 0x240,     /* 8 entries of 24 bytes */
};
#define VHD_LOCATOR_SIZE 24
#define VHD_NUM_LOCATORS 8

struct vhd_state {
    uint8_t footer[VHD_FOOTER_SIZE];   /* as on disk */
    uint8_t dyn[VHD_DYN_HEADER_SIZE];  /* as on disk (dynamic, diff) */
    uint32_t type;
    uint32_t *bat;                     /* host order */
    uint32_t max_table_entries;
    uint64_t bat_offset;
    uint64_t meta_end;                 /* data blocks must start here */
    uint32_t block_size, bitmap_size;
    uint64_t free_data_block_offset;   /* next block; the footer's place
                                        * (fixed: the end of the data) */
    uint64_t last_bitmap_offset;       /* block whose bitmap is all set */
    struct co_mutex lock;              /* allocation and bitmap updates */
};

static inline uint32_t vhd_ld16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static inline uint32_t vhd_ld32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t vhd_ld64(const uint8_t *p)
{
    return (uint64_t)vhd_ld32(p) << 32 | vhd_ld32(p + 4);
}

static inline void vhd_st16(uint8_t *p, uint32_t v)
{
    p[0] = v >> 8;
    p[1] = v;
}

static inline void vhd_st32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

static inline void vhd_st64(uint8_t *p, uint64_t v)
{
    vhd_st32(p, (uint32_t)(v >> 32));
    vhd_st32(p + 4, (uint32_t)v);
}

/* One's complement of the byte sum (the checksum field read as zero). */
uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t cksum_off);

/* Find and open the parent of a differencing image (vhd-parent.c). */
int vhd_open_parent(struct blk_node *bs, struct blk_opts *opts,
                    struct strata_error **errp);
/* Locator data for a new differencing image: fills dyn's parent fields
 * and returns the bytes to write at `at` (malloc'd, *len long). */
uint8_t *vhd_make_locators(const char *filename, const char *parent,
                           const uint8_t *parent_footer, uint8_t *dyn,
                           uint64_t at, uint64_t *len);

int vhd_create(const char *filename, struct blk_opts *opts,
               struct strata_error **errp);
extern const struct blk_opt_desc vhd_create_opts[];

#endif
