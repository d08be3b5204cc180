/* strata-io: the session every command works on, the command table and
 * the helpers shared by the program (strata-io.c: options, open/close, the
 * command loop, help) and the I/O commands (io-cmds.c).
 *
 * Output follows qemu-io 7.2: results and per-command errors go to stdout
 * in qemu-io's wording, usage and engine errors to stderr.  A command
 * returns 0 or a negative errno; every failure, including a pattern
 * mismatch and a failed asynchronous request, is counted for the exit
 * status. */
#ifndef TOOLS_IO_CMDS_H
#define TOOLS_IO_CMDS_H

#include <stdbool.h>
#include <stdint.h>

#include "block.h"

/* The largest request a command accepts, as qemu-io's
 * BDRV_REQUEST_MAX_BYTES (INT_MAX rounded down to a sector). */
#define IO_MAX_REQUEST ((int64_t)(0x7fffffff & ~511))

struct io_session {
    struct blk_node *bs;    /* the open image, or NULL */
    bool quiet;             /* -q: every command as if given -q */
    bool misalign;          /* -m: buffers start 16 bytes past alignment */
    bool discard_ignore;    /* -d ignore: discard and unmap do nothing */
    bool quit;              /* `quit` was given */
    unsigned failures;      /* failed commands and aio requests */
    unsigned aio_in_flight; /* aio_read/aio_write not yet completed */
    bool aio_idle;          /* aio_in_flight == 0, for loop_run_until */
};

/* Command flags. */
enum {
    IO_CMD_NOFILE = 1u << 0, /* runs without an open image */
    IO_CMD_WRITE = 1u << 1,  /* needs the image open read-write */
};

struct io_cmd {
    const char *name;
    const char *altname; /* one-letter alias as qemu-io's, or NULL */
    int (*fn)(struct io_session *s, int argc, char **argv);
    int argmin, argmax; /* argument count without the name; -1: any */
    unsigned flags;
    const char *args; /* synopsis of the arguments, or NULL */
    const char *oneline;
    const char *help; /* extended help printed by `help name`, or NULL */
};

/* The data-path commands (io-cmds.c), NULL-terminated; strata-io.c adds
 * the commands about the session and the image as a whole. */
extern const struct io_cmd *const io_data_cmds[];

/* "read [-abCqv] ... -- reads a number ..." on stdout; returns -EINVAL so
 * a usage error counts as a failed command. */
int io_cmd_usage(const struct io_cmd *ct);

/* Parse an offset or length as qemu-io does (512, 64k, 1.5M, 0x200).
 * On error prints qemu-io's "Parsing error: ..." and returns -EINVAL or
 * -ERANGE; otherwise returns 0 with *out <= INT64_MAX. */
int io_parse_num(const char *s, int64_t *out);
/* A pattern byte (0..255, strtol base 0), or -1 after printing why. */
int io_parse_pattern(const char *s);

/* qemu-io's human sizes: "64 KiB", "3.500 KiB", "48 bytes". */
void io_fmt_size(double value, char *buf, size_t len);

/* Run the event loop until every aio request has completed. */
void io_aio_drain(struct io_session *s);

#endif
