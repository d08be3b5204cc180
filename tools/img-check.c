/* strata-img check: consistency check and repair, as qemu-img check.  The
 * driver counts what it finds (and describes it in res.messages, printed
 * on stderr where qemu-img's driver prints); after a repair the image is
 * checked again and that second result is what is shown.  Exit status:
 * 0 clean, 1 check not completed, 2 corruptions, 3 leaks only, 63 the
 * format has no check. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img-cmds.h"

/* What qemu-img's ImageCheck holds: a check's result and the names. */
struct check_report {
    struct blk_check_result r;
    const char *filename;
    const char *format;
};

/* Run one check; the driver's messages go to stderr at once. */
static int run_check(struct blk_node *bs, unsigned fix,
                     struct check_report *out)
{
    struct strata_error *err = NULL;
    int ret;

    ret = blk_check(bs, &out->r, fix, &err);
    fflush(stdout);
    for (char *line = out->r.messages, *nl; line && *line; line = nl + 1) {
        nl = strchr(line, '\n');
        *nl = '\0';
        if (line[0] == '\1') {
            tool_error("%s", line + 1);
        } else {
            fprintf(stderr, "%s\n", line);
        }
    }
    free(out->r.messages);
    out->r.messages = NULL;
    strata_error_free(err);
    return ret;
}

/* qemu-img's human summary of a check. */
static void dump_human(const struct check_report *c, bool quiet)
{
    const struct blk_check_result *r = &c->r;

    if (quiet) {
        return;
    }
    if (!(r->corruptions || r->leaks || r->check_errors)) {
        printf("No errors were found on the image.\n");
    } else {
        if (r->corruptions) {
            printf("\n%d errors were found on the image.\n"
                   "Data may be corrupted, or further writes to the image "
                   "may corrupt it.\n", r->corruptions);
        }
        if (r->leaks) {
            printf("\n%d leaked clusters were found on the image.\n"
                   "This means waste of disk space, but no harm to data.\n",
                   r->leaks);
        }
        if (r->check_errors) {
            printf("\n%d internal errors have occurred during the check.\n",
                   r->check_errors);
        }
    }
    if (r->total_clusters != 0 && r->allocated_clusters != 0) {
        printf("%" PRIu64 "/%" PRIu64 " = %0.2f%% allocated, %0.2f%% "
               "fragmented, %0.2f%% compressed clusters\n",
               r->allocated_clusters, r->total_clusters,
               r->allocated_clusters * 100.0 / r->total_clusters,
               r->fragmented_clusters * 100.0 / r->allocated_clusters,
               r->compressed_clusters * 100.0 / r->allocated_clusters);
    }
    if (r->image_end_offset) {
        printf("Image end offset: %" PRId64 "\n", r->image_end_offset);
    }
}

/* The ImageCheck QAPI object: optional members only when non-zero. */
static void dump_json(const struct check_report *c, bool quiet)
{
    const struct blk_check_result *r = &c->r;
    struct json *doc = json_new_object();

    json_set_str(doc, "filename", c->filename);
    json_set_str(doc, "format", c->format);
    json_set_int(doc, "check-errors", r->check_errors);
    if (r->image_end_offset) {
        json_set_int(doc, "image-end-offset", r->image_end_offset);
    }
    if (r->corruptions) {
        json_set_int(doc, "corruptions", r->corruptions);
    }
    if (r->leaks) {
        json_set_int(doc, "leaks", r->leaks);
    }
    if (r->corruptions_fixed) {
        json_set_int(doc, "corruptions-fixed", r->corruptions_fixed);
    }
    if (r->leaks_fixed) {
        json_set_int(doc, "leaks-fixed", r->leaks_fixed);
    }
    if (r->total_clusters) {
        json_set_uint(doc, "total-clusters", r->total_clusters);
    }
    if (r->allocated_clusters) {
        json_set_uint(doc, "allocated-clusters", r->allocated_clusters);
    }
    if (r->fragmented_clusters) {
        json_set_uint(doc, "fragmented-clusters", r->fragmented_clusters);
    }
    if (r->compressed_clusters) {
        json_set_uint(doc, "compressed-clusters", r->compressed_clusters);
    }
    if (!quiet) {
        img_print_json(doc);
    }
    json_free(doc);
}

/* strata-img check [options] filename */
int img_check(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"format", required_argument, NULL, 'f'},
        {"repair", required_argument, NULL, 'r'},
        {"output", required_argument, NULL, IMG_OPT_OUTPUT},
        {"object", required_argument, NULL, IMG_OPT_OBJECT},
        {"image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS},
        {"force-share", no_argument, NULL, 'U'},
        {NULL, 0, NULL, 0},
    };
    struct img_std_opts o = {0};
    const char *output = NULL, *filename;
    unsigned flags = BLK_O_CHECK, fix = 0;
    struct check_report check = {0};
    enum img_output ofmt;
    struct blk_node *bs;
    unsigned cache_flags;
    int c, ret;

    while ((c = img_getopt(argc, argv, ":hf:r:T:qU", longopts)) != -1) {
        switch (c) {
        case 'r':
            flags |= BLK_O_RDWR;
            if (!strcmp(optarg, "leaks")) {
                fix = BLK_FIX_LEAKS;
            } else if (!strcmp(optarg, "all")) {
                fix = BLK_FIX_LEAKS | BLK_FIX_ERRORS;
            } else {
                img_error_exit("Unknown option value for -r (expecting "
                               "'leaks' or 'all'): %s", optarg);
            }
            break;
        case IMG_OPT_OUTPUT:
            output = optarg;
            break;
        case 'T':
            o.cache = optarg;
            break;
        default:
            if (img_std_opt(&o, c, optarg) < 0) {
                return 1;
            }
        }
    }
    filename = img_one_filename(argc, argv);
    if (o.force_share) {
        flags |= BLK_O_FORCE_SHARE;
    }
    if (img_parse_output(output, &ofmt) < 0) {
        return 1;
    }
    if (o.cache && blk_parse_cache_mode(o.cache, &cache_flags) < 0) {
        tool_error("Invalid source cache option: %s", o.cache);
        return 1;
    }

    bs = img_open(filename, o.fmt, o.image_opts, o.cache, flags, o.quiet);
    if (!bs) {
        return 1;
    }
    check.filename = filename;
    check.format = bs->drv->name;

    ret = run_check(bs, fix, &check);
    if (ret == -ENOTSUP) {
        tool_error("This image format does not support checks");
        ret = 63;
        goto out;
    }
    if (ret == 0 && (check.r.corruptions_fixed || check.r.leaks_fixed)) {
        int corruptions_fixed = check.r.corruptions_fixed;
        int leaks_fixed = check.r.leaks_fixed;

        if (ofmt == IMG_OUTPUT_HUMAN && !o.quiet) {
            printf("The following inconsistencies were found and repaired:"
                   "\n\n    %d leaked clusters\n    %d corruptions\n\n"
                   "Double checking the fixed image now...\n",
                   leaks_fixed, corruptions_fixed);
        }
        memset(&check.r, 0, sizeof(check.r));
        ret = run_check(bs, 0, &check);
        check.r.corruptions_fixed = corruptions_fixed;
        check.r.leaks_fixed = leaks_fixed;
    }
    if (ret == 0) {
        if (ofmt == IMG_OUTPUT_HUMAN) {
            dump_human(&check, o.quiet);
        } else {
            dump_json(&check, o.quiet);
        }
    }
    fflush(stdout);
    if (ret < 0 || check.r.check_errors) {
        if (ret < 0) {
            tool_error("Check failed: %s", strerror(-ret));
        } else {
            tool_error("Check failed");
        }
        ret = 1;
    } else if (check.r.corruptions) {
        ret = 2;
    } else if (check.r.leaks) {
        ret = 3;
    } else {
        ret = 0;
    }
out:
    blk_close(bs);
    return ret;
}
