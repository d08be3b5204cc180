/* strata-img: the subcommands (one tools/img-<cmd>.c each) and the helpers
 * they share, defined in strata-img.c.
 *
 * A subcommand is `int img_<cmd>(int argc, char **argv)`: argv[0] is the
 * subcommand's name, options are parsed with img_getopt() (getopt_long
 * with qemu-img's handling of -h, unknown options and missing arguments),
 * and the return value is the process exit status, as qemu-img's. */
#ifndef TOOLS_IMG_CMDS_H
#define TOOLS_IMG_CMDS_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "img-common.h"

int img_amend(int argc, char **argv);
int img_bench(int argc, char **argv);
int img_check(int argc, char **argv);
int img_commit(int argc, char **argv);
int img_compare(int argc, char **argv);
int img_convert(int argc, char **argv);
int img_create(int argc, char **argv);
int img_dd(int argc, char **argv);
int img_info(int argc, char **argv);
int img_map(int argc, char **argv);
int img_measure(int argc, char **argv);
int img_rebase(int argc, char **argv);
int img_resize(int argc, char **argv);
int img_snapshot(int argc, char **argv);

/* Long-only options share these values (above any short option). */
enum {
    IMG_OPT_OUTPUT = 256,
    IMG_OPT_BACKING_CHAIN,
    IMG_OPT_OBJECT,
    IMG_OPT_IMAGE_OPTS,
    IMG_OPT_PATTERN,
    IMG_OPT_FLUSH_INTERVAL,
    IMG_OPT_NO_DRAIN,
    IMG_OPT_TARGET_IMAGE_OPTS,
    IMG_OPT_SIZE,
    IMG_OPT_PREALLOCATION,
    IMG_OPT_SHRINK,
    IMG_OPT_SALVAGE,
    IMG_OPT_TARGET_IS_ZERO,
    IMG_OPT_ADD,
    IMG_OPT_REMOVE,
    IMG_OPT_CLEAR,
    IMG_OPT_ENABLE,
    IMG_OPT_DISABLE,
    IMG_OPT_MERGE,
    IMG_OPT_BITMAPS,
    IMG_OPT_FORCE,
    IMG_OPT_START_OFFSET,
    IMG_OPT_MAX_LENGTH,
};

/* The long options most subcommands start their table with. */
#define IMG_LONGOPTS_STD                                        \
    {"help", no_argument, NULL, 'h'},                           \
    {"object", required_argument, NULL, IMG_OPT_OBJECT},        \
    {"image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS}

enum img_output { IMG_OUTPUT_HUMAN, IMG_OUTPUT_JSON };

/* Print "strata-img: <msg>" and "Try 'strata-img --help' for more
 * information", then exit(1): qemu-img's error_exit() for usage errors. */
void img_error_exit(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* getopt_long() for a subcommand.  `shortopts` must start with ':'.
 * Handles 'h' (full help, exit 0), unknown options and missing arguments
 * (message and exit 1) itself; returns the other options, -1 at the end. */
int img_getopt(int argc, char **argv, const char *shortopts,
               const struct option *longopts);

/* The options most subcommands share, with qemu-img's meaning. */
struct img_std_opts {
    const char *fmt;   /* -f; NULL = probe */
    const char *cache; /* -t; the caller sets its default */
    bool quiet;        /* -q */
    bool progress;     /* -p */
    bool force_share;  /* -U */
    bool image_opts;   /* --image-opts */
};

/* Take option c if it is one of struct img_std_opts' or --object: returns
 * 1 when taken, 0 when c is the subcommand's own, -1 when --object was
 * invalid (message printed).  Call it for the options a subcommand does
 * not handle itself, so a letter with another meaning there stays its own. */
int img_std_opt(struct img_std_opts *o, int c, const char *arg);

/* The one positional argument left after the options; anything else is
 * qemu-img's usage error "Expecting one image file name" (exit 1). */
const char *img_one_filename(int argc, char **argv);

/* Open an image for a subcommand (see tool_open); on failure prints
 * "Could not open '<name>': <why>" and returns NULL. */
struct blk_node *img_open(const char *name, const char *fmt, bool image_opts,
                          const char *cache, unsigned flags, bool quiet);

/* Append a -o argument to the accumulated option string (freed and
 * replaced); prints "Invalid option list: ..." and returns NULL when the
 * argument is malformed, as qemu-img's accumulate_options(). */
char *img_accumulate_options(char *options, const char *arg);
/* Does an option list ask for help ("help" or "?" as an element)? */
bool img_has_help_option(const char *options);

/* Print `title` and then the options of `list` (up to the entry with a NULL
 * name), one "  name=<type>  - help" line each, sorted: the layout of
 * QEMU's qemu_opts_print_help(), for -o help. */
void img_print_opt_help(const char *title, const struct blk_opt_desc *list);

/* --output=human|json; prints qemu-img's error and returns -1 when the
 * argument is neither. */
int img_parse_output(const char *arg, enum img_output *out);

/* Print a document as qemu-img's --output=json does: keys in QEMU's order,
 * pretty-printed, then a newline. */
void img_print_json(struct json *doc);

#endif
