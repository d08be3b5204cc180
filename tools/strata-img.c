/* strata-img: the disk image utility.  main() handles the global options
 * and dispatches to one img_<cmd>() per subcommand from a table; the
 * command line follows qemu-img 7.2's, including its messages and exit
 * statuses. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img-cmds.h"
#include "util.h"

const char *tool_name = "strata-img";

struct img_cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *syntax; /* the line printed under "Command syntax:" */
};

static const struct img_cmd img_cmds[] = {
    {"amend", img_amend,
     "amend [--object objectdef] [--image-opts] [-p] [-q] [-f fmt] "
     "[-t cache] [--force] -o options filename"},
    {"bench", img_bench,
     "bench [-c count] [-d depth] [-f fmt] [--flush-interval=flush_interval] "
     "[-i aio] [-n] [--no-drain] [-o offset] [--pattern=pattern] [-q] "
     "[-s buffer_size] [-S step_size] [-t cache] [-w] [-U] filename"},
    {"check", img_check,
     "check [--object objectdef] [--image-opts] [-q] [-f fmt] "
     "[--output=ofmt] [-r [leaks | all]] [-T src_cache] [-U] filename"},
    {"commit", img_commit,
     "commit [--object objectdef] [--image-opts] [-q] [-f fmt] [-t cache] "
     "[-b base] [-r rate_limit] [-d] [-p] filename"},
    {"compare", img_compare,
     "compare [--object objectdef] [--image-opts] [-f fmt] [-F fmt] "
     "[-T src_cache] [-p] [-q] [-s] [-U] filename1 filename2"},
    {"convert", img_convert,
     "convert [--object objectdef] [--image-opts] [--target-image-opts] "
     "[--target-is-zero] [--bitmaps] [-U] [-C] [-c] [-p] [-q] [-n] "
     "[-f fmt] [-t cache] [-T src_cache] [-O output_fmt] "
     "[-B backing_file [-F backing_fmt]] [-o options] [-l snapshot_param] "
     "[-S sparse_size] [-r rate_limit] [-m num_coroutines] [-W] "
     "[--salvage] filename [filename2 [...]] output_filename"},
    {"create", img_create,
     "create [--object objectdef] [-q] [-f fmt] "
     "[-b backing_file [-F backing_fmt]] [-u] [-o options] filename [size]"},
    {"dd", img_dd,
     "dd [--image-opts] [-U] [-f fmt] [-O output_fmt] [bs=block_size] "
     "[count=blocks] [skip=blocks] if=input of=output"},
    {"info", img_info,
     "info [--object objectdef] [--image-opts] [-f fmt] [--output=ofmt] "
     "[--backing-chain] [-U] filename"},
    {"map", img_map,
     "map [--object objectdef] [--image-opts] [-f fmt] "
     "[--start-offset=offset] [--max-length=len] [--output=ofmt] [-U] "
     "filename"},
    {"measure", img_measure,
     "measure [--output=ofmt] [-O output_fmt] [-o options] [--size N | "
     "[--object objectdef] [--image-opts] [-f fmt] [-l snapshot_param] "
     "filename]"},
    {"snapshot", img_snapshot,
     "snapshot [--object objectdef] [--image-opts] [-U] [-q] "
     "[-l | -a snapshot | -c snapshot | -d snapshot] filename"},
    {"rebase", img_rebase,
     "rebase [--object objectdef] [--image-opts] [-U] [-q] [-f fmt] "
     "[-t cache] [-T src_cache] [-p] [-u] -b backing_file [-F backing_fmt] "
     "filename"},
    {"resize", img_resize,
     "resize [--object objectdef] [--image-opts] [-f fmt] "
     "[--preallocation=prealloc] [-q] [--shrink] filename [+ | -]size"},
    {NULL, NULL, NULL},
};

static const char help_params[] =
    "\n"
    "Command parameters:\n"
    "  'filename' is a disk image filename\n"
    "  'objectdef' is a user creatable object definition, as QEMU's\n"
    "    --object: 'secret,id=ID,data=STRING' or 'secret,id=ID,file=PATH'\n"
    "  'fmt' is the disk image format. It is guessed automatically in most "
    "cases\n"
    "  'cache' is the cache mode used to write the output disk image, the "
    "valid\n"
    "    options are: 'none', 'writeback' (default, except for convert), "
    "'writethrough',\n"
    "    'directsync' and 'unsafe' (default for convert)\n"
    "  'src_cache' is the cache mode used to read input disk images, the "
    "valid\n"
    "    options are the same as for the 'cache' option\n"
    "  'size' is the disk image size in bytes. Optional suffixes\n"
    "    'k' or 'K' (kilobyte, 1024), 'M' (megabyte, 1024k), 'G' (gigabyte, "
    "1024M),\n"
    "    'T' (terabyte, 1024G), 'P' (petabyte, 1024T) and 'E' (exabyte, "
    "1024P)  are\n"
    "    supported. 'b' is ignored.\n"
    "  'output_filename' is the destination disk image filename\n"
    "  'output_fmt' is the destination format\n"
    "  'options' is a comma separated list of format specific options in a\n"
    "    name=value format. Use -o help for an overview of the options "
    "supported by\n"
    "    the used format\n"
    "  '-c' indicates that target image must be compressed (qcow2 format "
    "only)\n"
    "  '-u' allows unsafe backing chains. For image creation, allow "
    "creating\n"
    "       without attempting to open the backing file.\n"
    "  '-h' with or without a command shows this help and lists the "
    "supported formats\n"
    "  '-p' show progress of command (only certain commands)\n"
    "  '-q' use Quiet mode - do not print any output (except errors)\n"
    "  '-S' indicates the consecutive number of bytes (defaults to 4k) that "
    "must\n"
    "       contain only zeros for strata-img to create a sparse image "
    "during\n"
    "       conversion. If the number of bytes is 0, the source will not be "
    "scanned for\n"
    "       unallocated or zero sectors, and the destination image will "
    "always be\n"
    "       fully allocated\n"
    "  '--output' takes the format in which the output must be done (human "
    "or json)\n"
    "  '-n' skips the target volume creation (useful if the volume is "
    "created\n"
    "       prior to running strata-img)\n"
    "\n"
    "Parameters to convert subcommand:\n"
    "  '-m' specifies how many coroutines work in parallel during the "
    "convert\n"
    "       process (defaults to 8)\n"
    "  '-W' allow to write to the target out of order rather than "
    "sequential\n"
    "\n"
    "Parameters to compare subcommand:\n"
    "  '-f' first image format\n"
    "  '-F' second image format\n"
    "  '-s' run in Strict mode - fail on different image size or sector "
    "allocation\n"
    "\n"
    "Parameters to dd subcommand:\n"
    "  'bs=BYTES' read and write up to BYTES bytes at a time (default: "
    "512)\n"
    "  'count=N' copy only N input blocks\n"
    "  'if=FILE' read from FILE\n"
    "  'of=FILE' write to FILE\n"
    "  'skip=N' skip N bs-sized blocks at the start of input\n";

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The full help, as qemu-img prints it for -h anywhere; exits 0. */
static void __attribute__((noreturn)) help(void)
{
    const char *names[64];
    int n = 0;

    printf("strata-img version " PACKAGE_VERSION "\n"
           "usage: strata-img [standard options] command [command options]\n"
           "Disk image utility\n"
           "\n"
           "    '-h', '--help'       display this help and exit\n"
           "    '-V', '--version'    output version information and exit\n"
           "\n"
           "Command syntax:\n");
    for (const struct img_cmd *c = img_cmds; c->name; c++) {
        printf("  %s\n", c->syntax);
    }
    fputs(help_params, stdout);

    for (int i = 0; blk_driver_table[i] && n < (int)ARRAY_SIZE(names); i++) {
        names[n++] = blk_driver_table[i]->name;
    }
    qsort(names, n, sizeof(names[0]), cmp_str);
    printf("\nSupported formats:");
    for (int i = 0; i < n; i++) {
        printf(" %s", names[i]);
    }
    printf("\n");
    exit(EXIT_SUCCESS);
}

void img_error_exit(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fprintf(stderr, "%s: ", tool_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help' for more information\n", tool_name);
    exit(EXIT_FAILURE);
}

int img_getopt(int argc, char **argv, const char *shortopts,
               const struct option *longopts)
{
    int c = getopt_long(argc, argv, shortopts, longopts, NULL);

    switch (c) {
    case ':':
        img_error_exit("missing argument for option '%s'", argv[optind - 1]);
    case '?':
        img_error_exit("unrecognized option '%s'", argv[optind - 1]);
    case 'h':
        help();
    }
    return c;
}

struct blk_node *img_open(const char *name, const char *fmt, bool image_opts,
                          const char *cache, unsigned flags, bool quiet)
{
    struct strata_error *err = NULL;
    struct blk_node *bs;
    int ret;

    if (image_opts && fmt) {
        /* a usage conflict, not a failure to open the image */
        tool_error("--image-opts and --format are mutually exclusive");
        return NULL;
    }
    ret = tool_open(&bs, name, fmt, image_opts, cache, flags, quiet, NULL,
                    &err);
    if (ret < 0) {
        tool_error("Could not open '%s': %s", name, error_msg(err, ret));
        strata_error_free(err);
        return NULL;
    }
    return bs;
}

int img_std_opt(struct img_std_opts *o, int c, const char *arg)
{
    switch (c) {
    case 'f':
        o->fmt = arg;
        return 1;
    case 't':
        o->cache = arg;
        return 1;
    case 'q':
        o->quiet = true;
        return 1;
    case 'p':
        o->progress = true;
        return 1;
    case 'U':
        o->force_share = true;
        return 1;
    case IMG_OPT_IMAGE_OPTS:
        o->image_opts = true;
        return 1;
    case IMG_OPT_OBJECT:
        return tool_object_add(arg) < 0 ? -1 : 1;
    }
    return 0;
}

const char *img_one_filename(int argc, char **argv)
{
    if (optind != argc - 1) {
        img_error_exit("Expecting one image file name");
    }
    return argv[optind];
}

static const char *opt_type_name(enum blk_opt_type t)
{
    switch (t) {
    case OPT_STRING: return "str";
    case OPT_BOOL: return "bool (on/off)";
    case OPT_NUMBER: return "num";
    case OPT_SIZE: return "size";
    }
    return "?";
}

void img_print_opt_help(const char *title, const struct blk_opt_desc *list)
{
    char **lines;
    int n = 0;

    while (list[n].name) {
        n++;
    }
    lines = xzalloc(sizeof(*lines) * (n + 1));
    for (int i = 0; i < n; i++) {
        char *s = xasprintf("  %s=<%s>", list[i].name,
                            opt_type_name(list[i].type));
        if (list[i].help) {
            char *t = xasprintf("%-24s - %s", s, list[i].help);
            free(s);
            s = t;
        }
        lines[i] = s;
    }
    qsort(lines, n, sizeof(*lines), cmp_str);
    printf("%s\n", title);
    for (int i = 0; i < n; i++) {
        printf("%s\n", lines[i]);
        free(lines[i]);
    }
    free(lines);
}

/* qemu-img's is_valid_option_list(): not empty, no leading comma, and an
 * even number of trailing commas (",," is an escaped comma). */
static bool is_valid_option_list(const char *arg)
{
    size_t len = strlen(arg), i;

    if (!arg[0] || arg[0] == ',') {
        return false;
    }
    for (i = len; i > 0 && arg[i - 1] == ','; i--) {
    }
    return (len - i) % 2 == 0;
}

char *img_accumulate_options(char *options, const char *arg)
{
    char *joined;

    if (!is_valid_option_list(arg)) {
        tool_error("Invalid option list: %s", arg);
        free(options);
        return NULL;
    }
    if (!options) {
        return xstrdup(arg);
    }
    joined = xasprintf("%s,%s", options, arg);
    free(options);
    return joined;
}

bool img_has_help_option(const char *options)
{
    const char *p = options;

    while (p && *p) {
        /* An element's key ends at '=' or at a single ','. */
        size_t klen = strcspn(p, "=,");
        if ((klen == 4 && strncmp(p, "help", 4) == 0) ||
            (klen == 1 && p[0] == '?')) {
            if (p[klen] != '=') {
                return true;
            }
        }
        p += klen;
        if (*p == '=') {
            /* skip the value, where ",," stands for a comma */
            for (p++; *p; p++) {
                if (*p == ',') {
                    if (p[1] != ',') {
                        break;
                    }
                    p++;
                }
            }
        }
        if (*p == ',') {
            p++;
        }
    }
    return false;
}

int img_parse_output(const char *arg, enum img_output *out)
{
    if (!arg || strcmp(arg, "human") == 0) {
        *out = IMG_OUTPUT_HUMAN;
        return 0;
    }
    if (strcmp(arg, "json") == 0) {
        *out = IMG_OUTPUT_JSON;
        return 0;
    }
    tool_error("--output must be used with human or json as argument.");
    return -1;
}

void img_print_json(struct json *doc)
{
    tool_json_qemu_order(doc);
    json_print_pretty(stdout, doc);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"trace", required_argument, NULL, 'T'},
        {NULL, 0, NULL, 0},
    };
    const char *cmdname;
    int c;

    while ((c = img_getopt(argc, argv, "+:hVT:", longopts)) != -1) {
        switch (c) {
        case 'V':
            printf("strata-img version " PACKAGE_VERSION "\n");
            return EXIT_SUCCESS;
        case 'T':
            /* qemu-img's tracing; accepted for compatibility, no effect */
            break;
        }
    }
    if (optind >= argc) {
        img_error_exit("Not enough arguments");
    }
    cmdname = argv[optind];
    argc -= optind;
    argv += optind;
    optind = 0; /* each subcommand restarts getopt on its own argv */

    for (const struct img_cmd *cmd = img_cmds; cmd->name; cmd++) {
        if (strcmp(cmd->name, cmdname) == 0) {
            return cmd->fn(argc, argv);
        }
    }
    img_error_exit("Command not found: %s", cmdname);
}
