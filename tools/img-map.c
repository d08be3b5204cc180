/* strata-img map: the allocation map of an image through its backing
 * chain, as qemu-img map prints it.  Extents from block status are merged
 * while they stay alike, then printed as qemu-img's JSON lines or its
 * human table (data extents only). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img-cmds.h"
#include "util.h"

struct map_entry {
    int64_t start, length;
    int64_t offset;       /* valid when has_offset */
    int depth;
    bool data, zero, present, has_offset;
    const char *filename; /* file holding the data, or NULL (borrowed) */
};

/* Status of the extent at `offset` through the whole chain. */
static int get_block_status(struct blk_node *bs, int chain_len,
                            int64_t offset, int64_t bytes,
                            struct map_entry *e)
{
    struct blk_node *file = NULL;
    uint64_t pnum = 0, map = 0;
    int depth = 0, ret;

    ret = blk_block_status_above(bs, NULL, offset, bytes, &pnum, &map,
                                 &file, &depth);
    if (ret < 0) {
        return ret;
    }
    if (pnum == 0) {
        return -EIO;
    }
    /* Where no layer decides, qemu-img reports the bottom layer. */
    if (depth > chain_len - 1) {
        depth = chain_len - 1;
    }
    *e = (struct map_entry){
        .start = offset,
        .length = (int64_t)pnum,
        .data = ret & BLK_STATUS_DATA,
        .zero = ret & BLK_STATUS_ZERO,
        .offset = (int64_t)map,
        .has_offset = ret & BLK_STATUS_OFFSET_VALID,
        .depth = depth,
        .present = ret & BLK_STATUS_ALLOCATED,
        .filename = (file && (ret & BLK_STATUS_OFFSET_VALID))
                        ? file->filename : NULL,
    };
    return 0;
}

/* May `next` extend `curr` (qemu-img's entry_mergeable)? */
static bool mergeable(const struct map_entry *curr,
                      const struct map_entry *next)
{
    if (curr->length == 0) {
        return false;
    }
    if (curr->zero != next->zero || curr->data != next->data ||
        curr->depth != next->depth || curr->present != next->present ||
        !curr->filename != !next->filename ||
        curr->has_offset != next->has_offset) {
        return false;
    }
    if (curr->filename && strcmp(curr->filename, next->filename) != 0) {
        return false;
    }
    if (curr->has_offset && curr->offset + curr->length != next->offset) {
        return false;
    }
    return true;
}

/* Print one merged extent; `next` (may be NULL for the last) is adjusted
 * for the human format, which does not tell zero from unallocated. */
static int dump_entry(enum img_output ofmt, const struct map_entry *e,
                      struct map_entry *next)
{
    if (ofmt == IMG_OUTPUT_HUMAN) {
        if (e->data && !e->has_offset) {
            tool_error("File contains external, encrypted or compressed "
                       "clusters.");
            return -1;
        }
        if (e->data && !e->zero) {
            printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n",
                   (uint64_t)e->start, (uint64_t)e->length,
                   e->has_offset ? (uint64_t)e->offset : 0,
                   e->filename ? e->filename : "");
        }
        if (next && (!next->data || next->zero)) {
            next->data = false;
            next->zero = true;
        }
        return 0;
    }
    printf("{ \"start\": %" PRId64 ", \"length\": %" PRId64 ","
           " \"depth\": %d, \"present\": %s, \"zero\": %s,"
           " \"data\": %s", e->start, e->length, e->depth,
           e->present ? "true" : "false", e->zero ? "true" : "false",
           e->data ? "true" : "false");
    if (e->has_offset) {
        printf(", \"offset\": %" PRId64, e->offset);
    }
    putchar('}');
    if (next) {
        puts(",");
    }
    return 0;
}

int img_map(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, IMG_OPT_OUTPUT},
        {"object", required_argument, NULL, IMG_OPT_OBJECT},
        {"image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS},
        {"force-share", no_argument, NULL, 'U'},
        {"start-offset", required_argument, NULL, 's'},
        {"max-length", required_argument, NULL, 'l'},
        {NULL, 0, NULL, 0},
    };
    struct img_std_opts o = {0};
    const char *output = NULL, *filename;
    int64_t start_offset = 0, max_length = -1, length;
    struct map_entry curr = {0}, next;
    enum img_output ofmt;
    struct blk_node *bs;
    int c, ret = 0, chain_len;

    while ((c = img_getopt(argc, argv, ":f:s:l:hU", longopts)) != -1) {
        switch (c) {
        case 's':
            if (tool_cvtnum("start offset", optarg, 0, INT64_MAX,
                            &start_offset) < 0) {
                return 1;
            }
            break;
        case 'l':
            if (tool_cvtnum("max length", optarg, 0, INT64_MAX,
                            &max_length) < 0) {
                return 1;
            }
            break;
        case IMG_OPT_OUTPUT:
            output = optarg;
            break;
        default:
            if (img_std_opt(&o, c, optarg) < 0) {
                return 1;
            }
        }
    }
    filename = img_one_filename(argc, argv);
    if (img_parse_output(output, &ofmt) < 0) {
        return 1;
    }

    bs = img_open(filename, o.fmt, o.image_opts, NULL,
                  o.force_share ? BLK_O_FORCE_SHARE : 0, false);
    if (!bs) {
        return 1;
    }
    chain_len = blk_chain_length(bs);

    if (ofmt == IMG_OUTPUT_HUMAN) {
        printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to",
               "File");
    } else {
        putchar('[');
    }

    length = (int64_t)bs->size;
    if (max_length != -1 && max_length < length - start_offset) {
        length = start_offset + max_length;
    }

    curr.start = start_offset;
    while (curr.start + curr.length < length) {
        int64_t offset = curr.start + curr.length;

        ret = get_block_status(bs, chain_len, offset, length - offset,
                               &next);
        if (ret < 0) {
            fflush(stdout);
            tool_error("Could not read file metadata: %s", strerror(-ret));
            goto out;
        }
        if (mergeable(&curr, &next)) {
            curr.length += next.length;
            continue;
        }
        if (curr.length > 0) {
            ret = dump_entry(ofmt, &curr, &next);
            if (ret < 0) {
                goto out;
            }
        }
        curr = next;
    }
    ret = dump_entry(ofmt, &curr, NULL);
    if (ofmt == IMG_OUTPUT_JSON) {
        puts("]");
    }
out:
    fflush(stdout);
    blk_close(bs);
    return ret < 0;
}
