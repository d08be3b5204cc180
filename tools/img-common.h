/* Helpers shared by the command-line tools (strata-img, strata-io). */
#ifndef TOOLS_IMG_COMMON_H
#define TOOLS_IMG_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include "block.h"

/* For blk_set_inline_read_max in the commands whose loop thread is idle
 * while data streams (convert, compare): it then reads cached data itself
 * (no thread hops, and no more copying threads than cores next to the
 * writer).  Above convert's 2 MiB chunks.  Commands that read more than
 * they write (rebase, bench) keep the default: the pool copies on every
 * core at once. */
#define TOOL_INLINE_READ_MAX (4 * 1024 * 1024)

/* Program name used as the prefix of messages ("strata-img"). */
extern const char *tool_name;

/* "<tool_name>: <message>\n" on stderr. */
void tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print an error object (or strerror(-code) if err is NULL) and free it. */
void tool_report(struct strata_error *err, int code);

/* Open an image as the tools do.  With image_opts, `name` is an option
 * string ("driver=raw,file.filename=x,file.aio=native"); otherwise a file
 * name, opened with format `fmt` (NULL = probe).  `cache` is a -t/-T mode
 * (NULL = writeback).  flags are BLK_O_* (RDWR, FORCE_SHARE, NO_BACKING).
 * Prints QEMU's warning when a writable image's format was guessed as raw
 * (unless quiet).  extra_opts, if non-NULL, are merged ("file.aio=..."). */
int tool_open(struct blk_node **out, const char *name, const char *fmt,
              bool image_opts, const char *cache, unsigned flags, bool quiet,
              const struct blk_opts *extra_opts, struct strata_error **errp);

/* Parse a size argument for a command line; prints an error on failure. */
int tool_parse_size(const char *s, uint64_t *out);

/* Sizes exactly as QEMU's qemu_strtosz(): decimal with an optional
 * fraction and a b/k/M/G/T/P/E suffix (powers of 1024), or 0x hex; the
 * result is rounded to the byte.  Returns 0, -EINVAL or -ERANGE; prints
 * nothing but QEMU's deprecation warning for a suffix on a hex number. */
int tool_strtosz(const char *s, uint64_t *out);
/* qemu-img's cvtnum(): parse s as a size in [min, max] or print
 * "Invalid <what> specified. ..." in QEMU's words and return -errno. */
int tool_cvtnum(const char *what, const char *s, int64_t min, int64_t max,
                int64_t *out);

/* Reorder the keys of every object in j (recursively) the way QEMU's QDict
 * iterates them, so --output=json documents match qemu-img's byte for byte.
 * Objects built in QAPI field order come out in qemu-img's order. */
void tool_json_qemu_order(struct json *j);

/* --object: record a user-creatable object ("secret,id=x,data=y" or
 * "secret,id=x,file=path"); prints an error and returns -1 if invalid. */
int tool_object_add(const char *spec);
/* The data of secret `id` from --object, or NULL. */
const char *tool_secret_get(const char *id);

/* A progress bar like qemu-img -p: "    (42.00/100%)\r".  As in qemu-img
 * it goes to stdout (scripts see it where qemu-img puts it); a redraw
 * happens once the value moved by min_skip percent (default 1.0). */
struct tool_progress {
    bool enabled;
    double last;
    double current;
    double min_skip;
};
void tool_progress_init(struct tool_progress *p, bool enabled);
void tool_progress_update(struct tool_progress *p, uint64_t done,
                          uint64_t total);
void tool_progress_end(struct tool_progress *p);

#endif
