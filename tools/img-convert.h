/* strata-img convert: the state shared by the command line
 * (img-convert.c) and the copy engine (img-convert-copy.c). */
#ifndef TOOLS_IMG_CONVERT_H
#define TOOLS_IMG_CONVERT_H

#include <stdbool.h>
#include <stdint.h>

#include "img-common.h"
#include "loop.h"

#define CONVERT_MAX_COROUTINES 16
#define CONVERT_SECTOR 512u
/* Default copy buffer per coroutine, as qemu-img's IO_BUF_SIZE: chunk
 * boundaries decide where zero runs are cut, so keeping qemu-img's size
 * keeps the sparseness of the output identical to its. */
#define CONVERT_BUF_SIZE (2u * 1024 * 1024)
#define CONVERT_MAX_BUF_SIZE (16u * 1024 * 1024) /* -S and buffer limit */

/* What a range of the concatenated source holds. */
enum convert_status {
    CONVERT_DATA,    /* read it (zero detection may still skip parts) */
    CONVERT_ZERO,    /* reads as zeroes: skip or write zeroes */
    CONVERT_BACKING, /* left unallocated: the target's backing shows */
};

struct convert_state;

/* One copying coroutine and the chunk it holds. */
struct convert_worker {
    struct convert_state *s;
    struct coroutine *co;
    uint8_t *buf;           /* buf_size bytes from blk_alloc_buf */
    uint64_t offset, bytes; /* the chunk */
    enum convert_status status;
    bool full_data;  /* the whole chunk is to be written as data */
    bool waiting;    /* read, and waiting for its turn to write */
    bool written;    /* an earlier worker wrote it along with its own
                      * (set once that write has completed) */
    bool handed_over; /* passed the turn on when its write was issued */
    struct loop_bh turn_bh; /* enters the worker if it is still waiting */
};

/* Most bytes one coalesced write may carry. */
#define CONVERT_MAX_COALESCE (16u * 1024 * 1024)

struct convert_state {
    /* Sources, concatenated.  len is the size rounded up to 512 bytes as
     * qemu-img counts sectors; size is what can really be read. */
    int nsrc;
    struct blk_node **src;
    uint64_t *src_size;
    uint64_t *src_len;
    uint32_t *src_align; /* status boundaries are kept on this (bytes) */
    uint64_t total;      /* sum of src_len: the target's size */

    struct blk_node *target;
    bool target_is_new;
    bool has_zero_init;      /* target reads as zeroes (new, or told) */
    bool target_has_backing; /* keep unallocated ranges unallocated */
    bool wr_in_order;        /* without -W: writes land in offset order */
    bool issue_order;        /* in order of issue, not of completion */
    /* a new qcow2 target: a write of whole alloc_unit blocks within one
     * alloc_span has its clusters allocated before it first waits, so
     * the next writer may go once it is issued (0: never) */
    uint64_t alloc_unit, alloc_span; /* bytes */
    bool salvage;            /* --salvage: unreadable ranges become zeroes */
    bool copy_range;         /* -C: data copied by the kernel (offload) */
    bool quiet;
    bool compressed;         /* -c: one cluster per chunk, written
                              * compressed, in any order */
    uint64_t cluster_size;   /* of the target, with -c (bytes) */
    uint64_t min_sparse; /* bytes; 0 = write everything (-S 0) */
    uint64_t alignment;  /* target write alignment in bytes (power of 2) */
    size_t buf_size;     /* bytes per chunk and per coroutine buffer */
    int num_coroutines;
    uint64_t rate_limit; /* bytes per second, 0 = unlimited */

    /* the shared cursor: the next chunk to hand out (guarded by lock) */
    struct co_mutex lock;
    uint64_t offset;
    enum convert_status status;
    uint64_t next_status; /* status is known up to here */

    /* in-order writes: everything before wr_offs has been written */
    uint64_t wr_offs;
    struct convert_worker workers[CONVERT_MAX_COROUTINES];

    /* rate limiting: bytes written since start_ns */
    uint64_t start_ns;
    uint64_t written;

    /* progress over the bytes that need I/O */
    struct tool_progress progress;
    uint64_t allocated_total;
    uint64_t allocated_done;

    int running;
    int ret; /* -EINPROGRESS while running, then 0 or -errno */
    bool done;
};

/* qemu-img's is_allocated_sectors_min() (img-convert-zero.c): does buf
 * (n sectors, starting at sector_num of the target) start with data, and
 * how many sectors (*pnum) are written together, zero runs shorter than
 * min sectors counting as data; run ends are aligned to `alignment`
 * sectors. */
bool is_allocated_sectors_min(const uint8_t *buf, int64_t n, int64_t *pnum,
                              int64_t min, int64_t sector_num,
                              int64_t alignment);

/* Copy every source into the target as qemu-img's convert_do_copy():
 * s->num_coroutines coroutines share the cursor.  Prints qemu-img's
 * messages for I/O errors; returns 0 or -errno. */
int convert_do_copy(struct convert_state *s);

#endif
