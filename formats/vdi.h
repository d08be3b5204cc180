/* VirtualBox VDI images: the on-disk layout and the driver state shared
 * by vdi.c (open, data path), vdi-create.c (create) and vdi-check.c. */
#ifndef FORMATS_VDI_H
#define FORMATS_VDI_H

#include <stdbool.h>
#include <stdint.h>

#include "block.h"

#define VDI_SIGNATURE 0xbeda107fu
#define VDI_VERSION_1_1 0x00010001u
#define VDI_HEADER_SIZE 512          /* the 1.1 header, padded as QEMU */
#define VDI_DEFAULT_BLOCK_SIZE (1u << 20)

/* image_type values (VirtualBox's VDI_IMAGE_TYPE_*) */
#define VDI_TYPE_DYNAMIC 1
#define VDI_TYPE_STATIC 2
#define VDI_TYPE_UNDO 3
#define VDI_TYPE_DIFF 4

/* block map entries: never written (read from the parent, or zero
 * without one) and discarded (reads as zero) */
#define VDI_UNALLOCATED 0xffffffffu
#define VDI_DISCARDED 0xfffffffeu
#define VDI_IS_ALLOCATED(e) ((e) < VDI_DISCARDED)

/* QEMU's limit: the block map must be readable in one int-sized read */
#define VDI_BLOCKS_IN_IMAGE_MAX ((0x80000000u - 512) / 4)

/* Byte offsets of the header fields (all little endian). */
enum {
    VDI_OFF_TEXT = 0x00,
    VDI_OFF_SIGNATURE = 0x40,
    VDI_OFF_VERSION = 0x44,
    VDI_OFF_HEADER_SIZE = 0x48,
    VDI_OFF_IMAGE_TYPE = 0x4c,
    VDI_OFF_IMAGE_FLAGS = 0x50,
    VDI_OFF_DESCRIPTION = 0x54,
    VDI_OFF_BMAP = 0x154,
    VDI_OFF_DATA = 0x158,
    VDI_OFF_SECTOR_SIZE = 0x168,
    VDI_OFF_DISK_SIZE = 0x170,
    VDI_OFF_BLOCK_SIZE = 0x178,
    VDI_OFF_BLOCK_EXTRA = 0x17c,
    VDI_OFF_BLOCKS_IN_IMAGE = 0x180,
    VDI_OFF_BLOCKS_ALLOCATED = 0x184,
    VDI_OFF_UUID_IMAGE = 0x188,
    VDI_OFF_UUID_LAST_SNAP = 0x198,
    VDI_OFF_UUID_LINK = 0x1a8,
    VDI_OFF_UUID_PARENT = 0x1b8,
};

struct vdi_state {
    uint8_t header[VDI_HEADER_SIZE]; /* as on disk; kept up to date */
    uint32_t *bmap;            /* host order, blocks_in_image entries */
    uint32_t blocks_in_image;
    uint32_t blocks_allocated; /* count of allocated entries */
    uint32_t next_free;        /* index the next allocation takes */
    uint32_t block_size;       /* bytes of data per block */
    uint32_t block_extra;      /* bytes before each block's data */
    uint64_t offset_bmap, offset_data;
    uint64_t disk_size;        /* from the header, sector-rounded */
    uint32_t image_type;
    bool is_diff;              /* has a parent (uuid_link set) */
    struct co_mutex alloc_lock; /* block allocation and map updates */
};

static inline uint32_t vdi_ld32(const uint8_t *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline uint64_t vdi_ld64(const uint8_t *p)
{
    return vdi_ld32(p) | (uint64_t)vdi_ld32(p + 4) << 32;
}

static inline void vdi_st32(uint8_t *p, uint32_t v)
{
    p[0] = v;
    p[1] = v >> 8;
    p[2] = v >> 16;
    p[3] = v >> 24;
}

static inline void vdi_st64(uint8_t *p, uint64_t v)
{
    vdi_st32(p, (uint32_t)v);
    vdi_st32(p + 4, (uint32_t)(v >> 32));
}

/* Host offset of the data of block map entry e. */
static inline uint64_t vdi_block_offset(const struct vdi_state *s, uint32_t e)
{
    return s->offset_data + (uint64_t)e * (s->block_size + s->block_extra) +
           s->block_extra;
}

/* Write the map sectors holding entries [first, last] and the header. */
int coroutine_fn vdi_write_metadata(struct blk_node *bs, uint32_t first,
                                    uint32_t last);
/* A random UUID in VirtualBox's byte order. */
void vdi_uuid_generate(uint8_t out[16]);

int vdi_create(const char *filename, struct blk_opts *opts,
               struct strata_error **errp);
extern const struct blk_opt_desc vdi_create_opts[];
int coroutine_fn vdi_co_check(struct blk_node *bs,
                              struct blk_check_result *res, unsigned fix);

#endif
