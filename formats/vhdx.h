/* VHDX (Hyper-V): the on-disk layout and the driver's state, shared by
 * vhdx.c (open, I/O), vhdx-log.c (log replay) and vhdx-create.c.
 *
 * The first MiB holds the file identifier (0), two headers (64 KiB,
 * 128 KiB) and two region tables (192 KiB, 256 KiB); the regions are the
 * log, the BAT (one 64-bit entry per payload block, with a sector-bitmap
 * entry after every chunk_ratio of them) and the metadata (block size,
 * virtual size, sector sizes, parent locator).  Every multi-byte field is
 * little-endian; GUIDs are stored as Windows lays them out. */
#ifndef FORMATS_VHDX_H
#define FORMATS_VHDX_H

#include <stdbool.h>
#include <stdint.h>

#include "block.h"

#define VHDX_MiB (1024 * 1024)
#define VHDX_FILE_SIG "vhdxfile"
#define VHDX_HEADER1_OFFSET (64 * 1024)
#define VHDX_HEADER2_OFFSET (128 * 1024)
#define VHDX_HEADER_SIZE 4096
#define VHDX_REGION1_OFFSET (192 * 1024)
#define VHDX_REGION2_OFFSET (256 * 1024)
#define VHDX_REGION_SIZE (64 * 1024)
#define VHDX_HEADER_SIG 0x64616568u   /* "head" */
#define VHDX_REGION_SIG 0x69676572u   /* "regi" */
#define VHDX_LOG_SIG 0x65676f6cu      /* "loge" */
#define VHDX_LOG_ZERO_SIG 0x6f72657au /* "zero" */
#define VHDX_LOG_DESC_SIG 0x63736564u /* "desc" */
#define VHDX_LOG_DATA_SIG 0x61746164u /* "data" */
#define VHDX_LOG_SECTOR 4096
#define VHDX_MAX_SIZE (64ull << 40)   /* 64 TiB */
#define VHDX_MIN_BLOCK (1u << 20)
#define VHDX_MAX_BLOCK (256u << 20)

/* BAT entry: state in bits 0-2, file offset in MiB from bit 20. */
enum {
    VHDX_BAT_NOT_PRESENT = 0,
    VHDX_BAT_UNDEFINED = 1,
    VHDX_BAT_ZERO = 2,
    VHDX_BAT_UNMAPPED = 3,
    VHDX_BAT_FULLY_PRESENT = 6,
    VHDX_BAT_PARTIALLY_PRESENT = 7,
};
#define VHDX_BAT_STATE(e) ((unsigned)((e) & 7))
#define VHDX_BAT_OFFSET(e) ((e) & ~(uint64_t)(VHDX_MiB - 1))

/* The well-known region, metadata item and locator type ids. */
#define GUID_BAT "2DC27766-F623-4200-9D64-115E9BFD4A08"
#define GUID_METADATA "8B7CA206-4790-4B9A-B8FE-575F050F886E"
#define GUID_FILE_PARAMS "CAA16737-FA36-4D43-B3B6-33F0AA44E76B"
#define GUID_VDISK_SIZE "2FA54224-CD1B-4876-B211-5DBED83BF4B8"
#define GUID_PAGE83 "BECA12AB-B2E6-4523-93EF-C309E000C746"
#define GUID_LOGICAL_SECTOR "8141BF1D-A96F-4709-BA47-F233A8FAAB5F"
#define GUID_PHYSICAL_SECTOR "CDA348C7-445D-4471-9CC9-E9885251C556"
#define GUID_PARENT_LOCATOR "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C"
#define GUID_PARENT_VHDX "B04AEFB7-D19E-4A81-B789-25B8E9445913"

struct vhdx_guid {
    uint8_t b[16]; /* as stored */
};

struct vhdx_header {
    uint32_t checksum;
    uint64_t sequence;
    struct vhdx_guid file_write_guid, data_write_guid, log_guid;
    uint16_t log_version, version;
    uint32_t log_length;
    uint64_t log_offset;
};

struct vhdx_state {
    struct vhdx_header header;
    int cur_header;          /* 0 or 1: the slot of the current header */
    uint64_t bat_offset;
    uint32_t bat_length;
    uint64_t meta_offset;
    uint32_t meta_length;

    uint32_t block_size;
    uint32_t block_bits;
    uint32_t logical_sector;
    uint32_t physical_sector;
    uint64_t virtual_size;
    bool leave_blocks_allocated;
    bool has_parent;
    struct vhdx_guid page83;
    uint64_t chunk_ratio;    /* payload blocks per sector bitmap block */
    uint64_t payload_blocks;
    uint64_t bat_entries;
    uint64_t *bat;           /* host order */

    bool first_write_done;   /* headers updated for this open */
    struct co_mutex lock;    /* allocation and BAT/header/log updates */
    /* Blocks whose space is reserved and whose data is being written
     * outside the lock; their BAT entries change when it is done. */
    uint64_t *allocating;
    size_t nallocating, allocating_cap;
    struct co_queue allocated; /* woken when one of them is done */

    /* Writing the log (vhdx-log.c); offsets are inside the log region. */
    bool log_active;         /* the header's log GUID is set by this open */
    uint64_t log_seq;        /* sequence number of the next entry */
    uint32_t log_write;      /* where the next entry goes (the log's
                              * length: at its start, under a new GUID) */
    uint32_t log_tail;       /* the oldest entry whose in-place writes may
                              * not have reached the disk yet */
    uint64_t flushed_size;   /* file size known to be on disk */
    uint64_t file_end;       /* end of the file as the allocations grew it
                              * (kept here: a filter below may not track
                              * the size of its child) */
};

/* Little-endian loads and stores. */
static inline uint16_t vhdx_ld16(const void *p)
{
    const uint8_t *b = p;
    return (uint16_t)(b[0] | b[1] << 8);
}
static inline uint32_t vhdx_ld32(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
           (uint32_t)b[3] << 24;
}
static inline uint64_t vhdx_ld64(const void *p)
{
    return vhdx_ld32(p) | (uint64_t)vhdx_ld32((const uint8_t *)p + 4) << 32;
}
static inline void vhdx_st16(void *p, uint16_t v)
{
    uint8_t *b = p;
    b[0] = v;
    b[1] = v >> 8;
}
static inline void vhdx_st32(void *p, uint32_t v)
{
    uint8_t *b = p;
    b[0] = v;
    b[1] = v >> 8;
    b[2] = v >> 16;
    b[3] = v >> 24;
}
static inline void vhdx_st64(void *p, uint64_t v)
{
    vhdx_st32(p, (uint32_t)v);
    vhdx_st32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}

/* Parse a GUID written as text ("2DC27766-F623-...") into its stored
 * form; used for the well-known region and metadata ids. */
void vhdx_guid_from_text(struct vhdx_guid *g, const char *text);
bool vhdx_guid_is_zero(const struct vhdx_guid *g);
void vhdx_guid_generate(struct vhdx_guid *g);

/* Header (de)serialisation with the CRC-32C checksum. */
void vhdx_header_encode(const struct vhdx_header *h, uint8_t *buf);
/* Fill *h from a 4 KiB buffer; false when the signature or checksum is
 * wrong. */
bool vhdx_header_decode(const uint8_t *buf, struct vhdx_header *h);
/* Write the header to the slot that is not current, then make it current
 * (QEMU updates both slots on each change so they stay in step; so do we,
 * by calling this twice). */
int coroutine_fn vhdx_header_write(struct blk_node *bs);

/* BAT geometry for a disk of `size` bytes. */
void vhdx_geometry(struct vhdx_state *s);
/* Index of the BAT entry of payload block `block`. */
static inline uint64_t vhdx_bat_index(const struct vhdx_state *s,
                                      uint64_t block)
{
    return block + block / s->chunk_ratio;
}

/* vhdx-log.c: replay the log named by the header's log GUID (read-write
 * opens only), then clear the GUID. */
int coroutine_fn vhdx_log_replay(struct blk_node *bs,
                                 struct strata_error **errp);

/* Change `nsect` 4 KiB sectors of metadata at file offset `off` (4 KiB
 * aligned) to `buf` through the log, as the spec asks: a log entry
 * holding them (the log GUID set in the headers first), a flush, then
 * the write in place.  The in-place write is not flushed here: the entry
 * stays in the active sequence (the next entry's tail) until a later
 * flush has carried it.  Data the change refers to must be on disk
 * already, unless its space read as zeroes before: then it reaches the
 * disk with the entry, and a crash before that reads zeroes there, as
 * before the write.  Caller holds s->lock. */
int coroutine_fn vhdx_log_write_and_flush(struct blk_node *bs, uint64_t off,
                                          const void *buf, uint32_t nsect);
/* Flush the file, then mark the log empty (clear the log GUID in both
 * headers) if this open made it active.  Caller holds s->lock. */
int coroutine_fn vhdx_log_clear(struct blk_node *bs);

/* vhdx-io.c: the driver's data path */
int coroutine_fn vhdx_co_preadv(struct blk_node *bs, uint64_t offset,
                                uint64_t bytes, struct blk_iov *qiov,
                                unsigned flags);
int coroutine_fn vhdx_co_pwritev(struct blk_node *bs, uint64_t offset,
                                 uint64_t bytes, struct blk_iov *qiov,
                                 unsigned flags);
int coroutine_fn vhdx_co_flush(struct blk_node *bs);
int coroutine_fn vhdx_co_block_status(struct blk_node *bs, uint64_t offset,
                                      uint64_t bytes, uint64_t *pnum,
                                      uint64_t *map, struct blk_node **file);

/* vhdx-create.c */
int vhdx_create(const char *filename, struct blk_opts *opts,
                struct strata_error **errp);
extern const struct blk_opt_desc vhdx_create_opts[];

#endif
