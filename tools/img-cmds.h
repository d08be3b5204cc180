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

int img_bench(int argc, char **argv);
int img_compare(int argc, char **argv);
int img_convert(int argc, char **argv);
int img_create(int argc, char **argv);
int img_dd(int argc, char **argv);
int img_info(int argc, char **argv);
int img_map(int argc, char **argv);

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

/* --output=human|json; prints qemu-img's error and returns -1 when the
 * argument is neither. */
int img_parse_output(const char *arg, enum img_output *out);

/* Print a document as qemu-img's --output=json does: keys in QEMU's order,
 * pretty-printed, then a newline. */
void img_print_json(struct json *doc);

#endif
