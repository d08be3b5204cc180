/* strata-img amend: change the options of an existing image (qcow2's
 * compat, refcount_bits, lazy_refcounts, size), with qemu-img amend's
 * command line, option checks, -o help, progress, messages and exit
 * codes. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img-cmds.h"
#include "util.h"

/* What `amend -o` accepts for qcow2 (QEMU's qcow2_amend_opts); only the
 * help text and the option check use it, the driver parses the values. */
static const struct blk_opt_desc qcow2_amend_opts[] = {
    {"encrypt.state", OPT_STRING, "Select new state of affected keyslots "
     "(active/inactive)", NULL},
    {"encrypt.keyslot", OPT_NUMBER, "Select a single keyslot to modify "
     "explicitly", NULL},
    {"encrypt.old-secret", OPT_STRING, "Select all keyslots that match this "
     "password", NULL},
    {"encrypt.new-secret", OPT_STRING, "New secret to set in the matching "
     "keyslots. Empty string to erase", NULL},
    {"encrypt.iter-time", OPT_NUMBER, "Time to spend in PBKDF in "
     "milliseconds", NULL},
    {"size", OPT_SIZE, "Virtual disk size", NULL},
    {"compat", OPT_STRING, "Compatibility level (v2 [0.10] or v3 [1.1])",
     NULL},
    {"backing_file", OPT_STRING, "File name of a base image", NULL},
    {"backing_fmt", OPT_STRING, "Image format of the base image", NULL},
    {"data_file", OPT_STRING, "File name of an external data file", NULL},
    {"data_file_raw", OPT_BOOL, "The external data file must stay valid as "
     "a raw image", NULL},
    {"lazy_refcounts", OPT_BOOL, "Postpone refcount updates", NULL},
    {"refcount_bits", OPT_NUMBER, "Width of a reference count entry in "
     "bits", NULL},
    {NULL, 0, NULL, NULL},
};

/* What `amend -o` accepts for luks (QEMU's block_crypto_amend_opts_luks). */
static const struct blk_opt_desc luks_amend_opts[] = {
    {"state", OPT_STRING, "Select new state of affected keyslots "
     "(active/inactive)", NULL},
    {"keyslot", OPT_NUMBER, "Select a single keyslot to modify explicitly",
     NULL},
    {"old-secret", OPT_STRING, "Select all keyslots that match this "
     "password", NULL},
    {"new-secret", OPT_STRING, "New secret to set in the matching "
     "keyslots. Empty string to erase", NULL},
    {"iter-time", OPT_NUMBER, "Time to spend in PBKDF in milliseconds",
     NULL},
    {NULL, 0, NULL, NULL},
};

/* The amend options of a format, or NULL when it cannot amend. */
static const struct blk_opt_desc *amend_opts_of(const struct blk_driver *drv)
{
    if (!drv->amend) {
        return NULL;
    }
    if (strcmp(drv->name, "luks") == 0) {
        return luks_amend_opts;
    }
    return strcmp(drv->name, "qcow2") == 0 ? qcow2_amend_opts : NULL;
}

/* qemu-img's print_amend_option_help(): sorted, qemu_opts_print_help()'s
 * layout. */
static int print_amend_help(const char *fmt)
{
    const struct blk_driver *drv = blk_find_driver(fmt);
    const struct blk_opt_desc *list;
    char *title;

    if (!drv || drv->kind != BLK_KIND_FORMAT) {
        tool_error("Unknown file format '%s'", fmt);
        return 1;
    }
    list = amend_opts_of(drv);
    if (!list) {
        tool_error("Format driver '%s' does not support option amendment",
                   drv->name);
        return 1;
    }
    title = xasprintf("Amend options for '%s':", drv->name);
    img_print_opt_help(title, list);
    free(title);
    return 0;
}

/* QEMU parses -o against the amend options; a create-only option gets a
 * hint. */
static int check_options(const struct blk_driver *drv,
                         const struct blk_opt_desc *list,
                         struct blk_opts *opts)
{
    struct strata_error *err = NULL;

    if (opts_validate(opts, list, drv->name, &err) == 0) {
        return 0;
    }
    for (int i = 0; i < opts->n; i++) {
        const struct blk_opt_desc *d;
        bool amendable = false, creatable = false;

        for (d = list; d->name; d++) {
            amendable |= strcmp(d->name, opts->v[i].key) == 0;
        }
        if (amendable) {
            continue;
        }
        for (d = drv->create_opts; d && d->name; d++) {
            creatable |= strcmp(d->name, opts->v[i].key) == 0;
        }
        if (creatable) {
            strata_error_free(err);
            tool_error("Invalid parameter '%s'", opts->v[i].key);
            fprintf(stderr, "This option is only supported for image "
                    "creation\n");
            return -1;
        }
        break;
    }
    tool_report(err, -EINVAL);
    return -1;
}

static void amend_progress(void *opaque, uint64_t done, uint64_t total)
{
    tool_progress_update(opaque, done, total);
}

/* qemu-img amend's steps: help first when the format is named. */
int img_amend(int argc, char **argv)
{
    static const struct option longopts[] = {
        IMG_LONGOPTS_STD,
        {"force", no_argument, NULL, IMG_OPT_FORCE},
        {NULL, 0, NULL, 0},
    };
    struct img_std_opts o = {0};
    const char *filename;
    bool force = false;
    struct strata_error *err = NULL;
    const struct blk_opt_desc *list;
    struct blk_opts *opts = opts_new();
    struct tool_progress prog;
    struct blk_node *bs = NULL;
    char *options = NULL;
    unsigned flags = 0;
    int c, ret = 1;

    while ((c = img_getopt(argc, argv, ":ho:f:t:pq", longopts)) != -1) {
        switch (c) {
        case 'o':
            options = img_accumulate_options(options, optarg);
            if (!options) {
                goto out;
            }
            break;
        case IMG_OPT_FORCE:
            force = true;
            break;
        default:
            if (img_std_opt(&o, c, optarg) < 0) {
                goto out;
            }
        }
    }
    if (!options) {
        img_error_exit("Must specify options (-o)");
    }
    tool_progress_init(&prog, o.progress && !o.quiet);

    filename = optind == argc - 1 ? argv[argc - 1] : NULL;
    if (o.fmt && img_has_help_option(options)) {
        /* an explicit format needs no image for the help */
        ret = print_amend_help(o.fmt);
        goto out_progress;
    }
    if (optind != argc - 1) {
        tool_error("Expecting one image file name");
        goto out_progress;
    }
    if (blk_parse_cache_mode(o.cache, &flags) < 0) {
        tool_error("Invalid cache option: %s", o.cache);
        goto out_progress;
    }
    bs = img_open(filename, o.fmt, o.image_opts, o.cache, BLK_O_RDWR, o.quiet);
    if (!bs) {
        goto out_progress;
    }
    if (img_has_help_option(options)) {
        ret = print_amend_help(bs->drv->name);
        goto out_progress;
    }
    list = amend_opts_of(bs->drv);
    if (!list) {
        tool_error("Format driver '%s' does not support option amendment",
                   bs->drv->name);
        goto out_progress;
    }
    if (opts_parse(opts, options, NULL, &err) < 0) {
        tool_report(err, -EINVAL);
        goto out_progress;
    }
    if (check_options(bs->drv, list, opts) < 0) {
        goto out_progress;
    }

    /* in case the driver reports no progress of its own */
    tool_progress_update(&prog, 0, 1);
    ret = blk_amend(bs, opts, force, amend_progress, &prog, &err);
    tool_progress_update(&prog, 1, 1);
    if (ret < 0) {
        tool_report(err, ret);
        ret = 1;
        goto out_progress;
    }
    ret = 0;
out_progress:
    tool_progress_end(&prog);
out:
    if (bs) {
        blk_close(bs);
    }
    free(options);
    opts_free(opts);
    return ret;
}
