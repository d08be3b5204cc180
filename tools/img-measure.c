/* strata-img measure: the size a new image of the output format needs,
 * for a given virtual size or for the data of an existing image, with
 * qemu-img measure's command line, messages, output and exit codes. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img-cmds.h"
#include "img-snapshot.h"
#include "util.h"

/* qemu-img measure answers an unknown option with getopt's own message
 * and the full help (exit 0); img_getopt() prints the help. */
static void __attribute__((noreturn)) measure_help(void)
{
    char *fake[] = {"measure", "-h", NULL};

    optind = 0;
    img_getopt(2, fake, ":h", NULL);
    exit(EXIT_SUCCESS); /* not reached */
}

static void print_result(enum img_output ofmt, const struct blk_measure *m)
{
    if (ofmt == IMG_OUTPUT_HUMAN) {
        printf("required size: %llu\n", (unsigned long long)m->required);
        printf("fully allocated size: %llu\n",
               (unsigned long long)m->fully_allocated);
        if (m->has_bitmaps) {
            printf("bitmaps size: %llu\n", (unsigned long long)m->bitmaps);
        }
    } else {
        /* BlockMeasureInfo, fields in QAPI order */
        struct json *doc = json_new_object();
        json_set_uint(doc, "required", m->required);
        json_set_uint(doc, "fully-allocated", m->fully_allocated);
        if (m->has_bitmaps) {
            json_set_uint(doc, "bitmaps", m->bitmaps);
        }
        img_print_json(doc);
        json_free(doc);
    }
}

/* qemu-img measure's checks, in its order. */
int img_measure(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS},
        {"object", required_argument, NULL, IMG_OPT_OBJECT},
        {"output", required_argument, NULL, IMG_OPT_OUTPUT},
        {"size", required_argument, NULL, IMG_OPT_SIZE},
        {"force-share", no_argument, NULL, 'U'},
        {NULL, 0, NULL, 0},
    };
    struct img_std_opts o = {0};
    const char *out_fmt = "raw", *filename = NULL;
    struct img_snapshot_param snapshot = {0};
    bool have_snapshot = false;
    bool have_size = false;
    enum img_output ofmt = IMG_OUTPUT_HUMAN;
    struct strata_error *err = NULL;
    struct blk_opt_desc *list = NULL;
    struct blk_opts *opts = opts_new();
    struct blk_node *in = NULL;
    const struct blk_driver *drv;
    struct blk_measure m;
    char *options = NULL;
    uint64_t img_size = 0;
    int c, ret = 1;

    while ((c = getopt_long(argc, argv, "hf:O:o:l:U", longopts, NULL)) !=
           -1) {
        switch (c) {
        case '?':
        case 'h':
            measure_help();
        case 'O':
            out_fmt = optarg;
            break;
        case 'o':
            options = img_accumulate_options(options, optarg);
            if (!options) {
                goto out;
            }
            break;
        case 'l':
            if (img_parse_snapshot_param(optarg, &snapshot) < 0) {
                goto out;
            }
            have_snapshot = true;
            break;
        case IMG_OPT_OUTPUT:
            if (strcmp(optarg, "json") == 0) {
                ofmt = IMG_OUTPUT_JSON;
            } else if (strcmp(optarg, "human") == 0) {
                ofmt = IMG_OUTPUT_HUMAN;
            } else {
                tool_error("--output must be used with human or json as "
                           "argument.");
                goto out;
            }
            break;
        case IMG_OPT_SIZE: {
            int64_t v;
            if (tool_cvtnum("image size", optarg, 0, INT64_MAX, &v) < 0) {
                goto out;
            }
            img_size = (uint64_t)v;
            have_size = true;
            break;
        }
        default:
            if (img_std_opt(&o, c, optarg) < 0) {
                goto out;
            }
        }
    }

    if (argc - optind > 1) {
        tool_error("At most one filename argument is allowed.");
        goto out;
    } else if (argc - optind == 1) {
        filename = argv[optind];
    }
    if (!filename && (o.image_opts || o.fmt || have_snapshot)) {
        tool_error("--image-opts, -f, and -l require a filename argument.");
        goto out;
    }
    if (filename && have_size) {
        tool_error("--size N cannot be used together with a filename.");
        goto out;
    }
    if (!filename && !have_size) {
        tool_error("Either --size N or one filename must be specified.");
        goto out;
    }

    if (filename) {
        in = img_open(filename, o.fmt, o.image_opts, NULL,
                      o.force_share ? BLK_O_FORCE_SHARE : 0, false);
        if (!in) {
            goto out;
        }
        if (have_snapshot && img_snapshot_load_tmp(in, &snapshot) < 0) {
            goto out;
        }
    }

    drv = blk_find_driver(out_fmt);
    if (!drv || drv->kind != BLK_KIND_FORMAT) {
        tool_error("Unknown file format '%s'", out_fmt);
        goto out;
    }
    if (!drv->create_opts) {
        tool_error("Format driver '%s' does not support image creation",
                   drv->name);
        goto out;
    }
    list = blk_create_opt_list(drv, blk_find_driver("file"));
    if (options && (opts_parse(opts, options, NULL, &err) < 0 ||
                    opts_validate(opts, list, drv->name, &err) < 0)) {
        tool_report(err, -EINVAL);
        tool_error("Invalid options for file format '%s'", out_fmt);
        goto out;
    }
    if (have_size) {
        opts_set_uint(opts, "size", img_size);
    }
    if (!drv->measure) {
        tool_error("Block driver '%s' does not support size measurement",
                   drv->name);
        goto out;
    }
    if (blk_measure(drv, opts, in, &m, &err) < 0) {
        tool_report(err, -EINVAL);
        goto out;
    }
    print_result(ofmt, &m);
    ret = 0;
out:
    if (in) {
        blk_close(in);
    }
    img_snapshot_param_free(&snapshot);
    free(list);
    free(options);
    opts_free(opts);
    return ret;
}
