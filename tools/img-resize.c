/* strata-img resize: change the virtual size of an image, as qemu-img
 * resize (absolute or +/- relative sizes, --shrink required to shrink,
 * --preallocation for the new area), with its messages and exit codes. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "img-cmds.h"

/* The size argument as QEMU's "size" option parses it. */
static int parse_resize_size(const char *s, uint64_t *out)
{
    int ret = tool_strtosz(s, out);

    if (ret == -ERANGE) {
        tool_error("Value '%s' is out of range for parameter 'size'", s);
    } else if (ret < 0) {
        tool_error("Parameter 'size' expects a non-negative number below "
                   "2^64");
        fprintf(stderr, "Optional suffix k, M, G, T, P or E means kilo-, "
                "mega-, giga-, tera-, peta-\nand exabytes, respectively.\n");
    }
    return ret;
}

/* qemu-img resize's steps: size parsed before the image is opened. */
int img_resize(int argc, char **argv)
{
    static const struct option longopts[] = {
        IMG_LONGOPTS_STD,
        {"preallocation", required_argument, NULL, IMG_OPT_PREALLOCATION},
        {"shrink", no_argument, NULL, IMG_OPT_SHRINK},
        {NULL, 0, NULL, 0},
    };
    enum blk_prealloc prealloc = BLK_PREALLOC_OFF;
    struct img_std_opts o = {0};
    const char *size, *filename;
    bool shrink = false;
    struct strata_error *err = NULL;
    int64_t current, total;
    struct blk_node *bs;
    int relative = 0, c, ret;
    uint64_t n;

    /* the size leaves argv first, so "-1G" is not taken for options */
    if (argc < 3) {
        img_error_exit("Not enough arguments");
    }
    size = argv[--argc];
    while ((c = img_getopt(argc, argv, ":f:hq", longopts)) != -1) {
        switch (c) {
        case IMG_OPT_PREALLOCATION:
            if (blk_parse_prealloc(optarg, &prealloc) < 0) {
                tool_error("Invalid preallocation mode '%s'", optarg);
                return 1;
            }
            break;
        case IMG_OPT_SHRINK:
            shrink = true;
            break;
        default:
            if (img_std_opt(&o, c, optarg) < 0) {
                return 1;
            }
        }
    }
    if (optind != argc - 1) {
        img_error_exit("Expecting image file name and size");
    }
    filename = argv[optind];

    if (size[0] == '+' || size[0] == '-') {
        relative = size[0] == '+' ? 1 : -1;
        size++;
    }
    if (parse_resize_size(size, &n) < 0) {
        return 1;
    }

    /* qemu-img warns about a guessed raw format even with -q */
    bs = img_open(filename, o.fmt, o.image_opts, NULL, BLK_O_RDWR, false);
    if (!bs) {
        return 1;
    }
    current = (int64_t)bs->size;
    /* two's complement arithmetic, as QEMU's int64_t computation */
    total = relative ? (int64_t)((uint64_t)current + n * (uint64_t)relative)
                     : (int64_t)n;
    ret = 1;
    if (total <= 0) {
        tool_error("New image size must be positive");
        goto out;
    }
    if (total <= current && prealloc != BLK_PREALLOC_OFF) {
        tool_error("Preallocation can only be used for growing images");
        goto out;
    }
    if (total < current && !shrink) {
        tool_error("Use the --shrink option to perform a shrink operation.");
        tool_error("warning: Shrinking an image will delete all data beyond "
                   "the shrunken image's end. Before performing such an "
                   "operation, make sure there is no important data "
                   "there.");
        goto out;
    }
    /* exact: reporting success without the asked size helps nobody */
    if (blk_truncate(bs, (uint64_t)total, true, prealloc, &err) < 0) {
        tool_report(err, -EIO);
        goto out;
    }
    if (!o.quiet) {
        printf("Image resized.\n");
    }
    ret = 0;
out:
    blk_close(bs);
    return ret;
}
