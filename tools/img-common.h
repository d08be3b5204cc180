/* Helpers shared by the command-line tools (strata-img, strata-io). */
#ifndef TOOLS_IMG_COMMON_H
#define TOOLS_IMG_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include "block.h"

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

/* A progress bar on stderr like qemu-img -p: "    (42.00/100%)\r". */
struct tool_progress {
    bool enabled;
    double last;
};
void tool_progress_init(struct tool_progress *p, bool enabled);
void tool_progress_update(struct tool_progress *p, uint64_t done,
                          uint64_t total);
void tool_progress_end(struct tool_progress *p);

#endif
