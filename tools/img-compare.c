/* strata-img compare: do two images have the same content?  Block status
 * on both sides lets zero-against-zero ranges pass unread; data is read
 * in large chunks and compared sector by sector so mismatches are
 * reported at qemu-img's offsets.  Exit status as qemu-img's: 0 identical,
 * 1 different, 2 cannot open, 3 block status failed, 4 read failed. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img-cmds.h"
#include "util.h"

#define IO_BUF_SIZE (2 * 1024 * 1024)

/* QEMU's status words carry BDRV_BLOCK_EOF when an extent reaches the end
 * of the image, and strict mode compares whole words, so an extent ending
 * at the end in one image but not in the other is a mismatch there. */
#define STATUS_EOF (1 << 30)

/* The status bits that must agree in strict mode. */
#define STRICT_MASK (BLK_STATUS_DATA | BLK_STATUS_ZERO | \
                     BLK_STATUS_ALLOCATED | BLK_STATUS_OFFSET_VALID | \
                     STATUS_EOF)

enum {
    CMP_SAME = 0,
    CMP_DIFFERENT = 1,
    CMP_OPEN_ERROR = 2,
    CMP_STATUS_ERROR = 3,
    CMP_IO_ERROR = 4,
};

/* Offset of the first 512-byte sector holding a non-zero byte, or -1. */
static int64_t find_nonzero(const uint8_t *buf, int64_t n)
{
    int64_t end = ROUND_DOWN(n, BLK_SECTOR_SIZE), i;

    for (i = 0; i < end; i += BLK_SECTOR_SIZE) {
        if (!buffer_is_zero(buf + i, BLK_SECTOR_SIZE)) {
            return i;
        }
    }
    if (i < n && !buffer_is_zero(buf + i, n - end)) {
        return i;
    }
    return -1;
}

/* Whether the first sector differs, and in *pnum how many bytes from the
 * start share that answer (qemu-img's compare_buffers). */
static bool compare_buffers(const uint8_t *a, const uint8_t *b,
                            int64_t bytes, int64_t *pnum)
{
    int64_t i = MIN(bytes, BLK_SECTOR_SIZE);
    bool res = memcmp(a, b, i) != 0;

    while (i < bytes) {
        int64_t len = MIN(bytes - i, BLK_SECTOR_SIZE);
        if ((memcmp(a + i, b + i, len) != 0) != res) {
            break;
        }
        i += len;
    }
    *pnum = i;
    return res;
}

/* Read a range that one image has and the other lacks: it must be zero. */
static int check_empty(struct blk_node *bs, int64_t offset, int64_t bytes,
                       const char *filename, uint8_t *buf, bool quiet)
{
    int ret = blk_pread(bs, offset, bytes, buf, 0);
    int64_t idx;

    if (ret < 0) {
        tool_error("Error while reading offset %" PRId64 " of %s: %s",
                   offset, filename, strerror(-ret));
        return CMP_IO_ERROR;
    }
    idx = find_nonzero(buf, bytes);
    if (idx >= 0) {
        if (!quiet) {
            printf("Content mismatch at offset %" PRId64 "!\n", offset + idx);
        }
        return CMP_DIFFERENT;
    }
    return CMP_SAME;
}

struct cmp_side {
    const char *filename;
    struct blk_node *bs;
    int64_t size;
};

/* Read `bytes` at `offset` from one side, reporting a failure. */
static int read_side(struct cmp_side *s, int64_t offset, int64_t bytes,
                     uint8_t *buf)
{
    int ret = blk_pread(s->bs, offset, bytes, buf, 0);

    if (ret < 0) {
        tool_error("Error while reading offset %" PRId64 " of %s: %s",
                   offset, s->filename, strerror(-ret));
        return CMP_IO_ERROR;
    }
    return CMP_SAME;
}

/* The comparison itself, once both images are open. */
static int compare_images(struct cmp_side *s1, struct cmp_side *s2,
                          bool strict, bool quiet, struct tool_progress *prog)
{
    int64_t total = MIN(s1->size, s2->size);
    int64_t progress_base = MAX(s1->size, s2->size);
    uint8_t *buf1 = blk_alloc_buf(s1->bs, IO_BUF_SIZE);
    uint8_t *buf2 = blk_alloc_buf(s2->bs, IO_BUF_SIZE);
    int64_t offset = 0;
    int ret = CMP_SAME;

    tool_progress_update(prog, 0, progress_base);
    if (strict && s1->size != s2->size) {
        if (!quiet) {
            printf("Strict mode: Image size mismatch!\n");
        }
        ret = CMP_DIFFERENT;
        goto out;
    }

    while (offset < total) {
        uint64_t pnum1, pnum2;
        int st1, st2;
        bool alloc1, alloc2;
        int64_t chunk;

        st1 = blk_block_status_above(s1->bs, NULL, offset, s1->size - offset,
                                     &pnum1, NULL, NULL, NULL);
        if (st1 < 0 || pnum1 == 0) {
            tool_error("Sector allocation test failed for %s", s1->filename);
            ret = CMP_STATUS_ERROR;
            goto out;
        }
        st2 = blk_block_status_above(s2->bs, NULL, offset, s2->size - offset,
                                     &pnum2, NULL, NULL, NULL);
        if (st2 < 0 || pnum2 == 0) {
            tool_error("Sector allocation test failed for %s", s2->filename);
            ret = CMP_STATUS_ERROR;
            goto out;
        }
        if (offset + (int64_t)pnum1 == s1->size) {
            st1 |= STATUS_EOF;
        }
        if (offset + (int64_t)pnum2 == s2->size) {
            st2 |= STATUS_EOF;
        }
        alloc1 = st1 & BLK_STATUS_ALLOCATED;
        alloc2 = st2 & BLK_STATUS_ALLOCATED;
        chunk = (int64_t)MIN(pnum1, pnum2);

        if (strict && (st1 & STRICT_MASK) != (st2 & STRICT_MASK)) {
            if (!quiet) {
                printf("Strict mode: Offset %" PRId64
                       " block status mismatch!\n", offset);
            }
            ret = CMP_DIFFERENT;
            goto out;
        }
        if ((st1 & BLK_STATUS_ZERO) && (st2 & BLK_STATUS_ZERO)) {
            /* zero against zero: nothing to read */
        } else if (alloc1 == alloc2) {
            if (alloc1) {
                int64_t pnum;
                bool differ;

                chunk = MIN(chunk, IO_BUF_SIZE);
                ret = read_side(s1, offset, chunk, buf1);
                if (ret == CMP_SAME) {
                    ret = read_side(s2, offset, chunk, buf2);
                }
                if (ret != CMP_SAME) {
                    goto out;
                }
                differ = compare_buffers(buf1, buf2, chunk, &pnum);
                if (differ || pnum != chunk) {
                    if (!quiet) {
                        printf("Content mismatch at offset %" PRId64 "!\n",
                               offset + (differ ? 0 : pnum));
                    }
                    ret = CMP_DIFFERENT;
                    goto out;
                }
            }
        } else {
            chunk = MIN(chunk, IO_BUF_SIZE);
            struct cmp_side *s = alloc1 ? s1 : s2;
            ret = check_empty(s->bs, offset, chunk, s->filename, buf1, quiet);
            if (ret != CMP_SAME) {
                goto out;
            }
        }
        offset += chunk;
        tool_progress_update(prog, offset, progress_base);
    }

    if (s1->size != s2->size) {
        struct cmp_side *over = s1->size > s2->size ? s1 : s2;

        if (!quiet) {
            printf("Warning: Image size mismatch!\n");
        }
        while (offset < progress_base) {
            uint64_t pnum;
            int st = blk_block_status_above(over->bs, NULL, offset,
                                            progress_base - offset, &pnum,
                                            NULL, NULL, NULL);
            int64_t chunk;

            if (st < 0 || pnum == 0) {
                tool_error("Sector allocation test failed for %s",
                           over->filename);
                ret = CMP_STATUS_ERROR;
                goto out;
            }
            chunk = (int64_t)pnum;
            if ((st & BLK_STATUS_ALLOCATED) && !(st & BLK_STATUS_ZERO)) {
                chunk = MIN(chunk, IO_BUF_SIZE);
                ret = check_empty(over->bs, offset, chunk, over->filename,
                                  buf1, quiet);
                if (ret != CMP_SAME) {
                    goto out;
                }
            }
            offset += chunk;
            tool_progress_update(prog, offset, progress_base);
        }
    }
    if (!quiet) {
        printf("Images are identical.\n");
    }
    ret = CMP_SAME;
out:
    free(buf1);
    free(buf2);
    return ret;
}

int img_compare(int argc, char **argv)
{
    static const struct option longopts[] = {
        IMG_LONGOPTS_STD,
        {"force-share", no_argument, NULL, 'U'},
        {NULL, 0, NULL, 0},
    };
    struct img_std_opts o = {.cache = "writeback"};
    const char *fmt2 = NULL;
    bool strict = false;
    struct cmp_side s1 = {0}, s2 = {0};
    struct tool_progress prog;
    unsigned flags = 0;
    int c, ret;

    while ((c = img_getopt(argc, argv, ":hf:F:T:pqsU", longopts)) != -1) {
        switch (c) {
        case 'F':
            fmt2 = optarg;
            break;
        case 'T':
            o.cache = optarg;
            break;
        case 's':
            strict = true;
            break;
        default:
            if (img_std_opt(&o, c, optarg) < 0) {
                return CMP_OPEN_ERROR;
            }
        }
    }
    if (o.quiet) {
        o.progress = false;
    }
    tool_progress_init(&prog, o.progress);
    prog.min_skip = 2.0;

    if (optind != argc - 2) {
        img_error_exit("Expecting two image file names");
    }
    s1.filename = argv[optind++];
    s2.filename = argv[optind++];

    if (blk_parse_cache_mode(o.cache, &flags) < 0) {
        tool_error("Invalid source cache option: %s", o.cache);
        ret = CMP_OPEN_ERROR;
        goto out;
    }
    flags |= o.force_share ? BLK_O_FORCE_SHARE : 0;
    blk_set_inline_read_max(TOOL_INLINE_READ_MAX);
    s1.bs = img_open(s1.filename, o.fmt, o.image_opts, o.cache, flags, o.quiet);
    if (!s1.bs) {
        ret = CMP_OPEN_ERROR;
        goto out;
    }
    s2.bs = img_open(s2.filename, fmt2, o.image_opts, o.cache, flags, o.quiet);
    if (!s2.bs) {
        ret = CMP_OPEN_ERROR;
        goto out;
    }
    s1.size = (int64_t)s1.bs->size;
    s2.size = (int64_t)s2.bs->size;
    ret = compare_images(&s1, &s2, strict, o.quiet, &prog);
out:
    blk_close(s2.bs);
    blk_close(s1.bs);
    tool_progress_end(&prog);
    return ret;
}
