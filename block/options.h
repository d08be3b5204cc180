/* Options: ordered key=value lists as QEMU's command lines use them.
 *
 * "k=v,k2=v2" with ",," standing for a literal comma; an element without
 * '=' is taken as the value of the implied key (e.g. "file.filename") when
 * one is given.  Keys may be dotted ("file.aio") to address child nodes.
 * Open options are plain strings; create options are validated against a
 * driver's list of `struct blk_opt_desc`. */
#ifndef BLOCK_OPTIONS_H
#define BLOCK_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include "strata/strata.h"

struct blk_opt {
    char *key;
    char *value;
    bool used; /* set by the getters, so leftovers can be reported */
};

struct blk_opts {
    struct blk_opt *v;
    int n, alloc;
};

struct blk_opts *opts_new(void);
void opts_free(struct blk_opts *o);
struct blk_opts *opts_clone(const struct blk_opts *o);
/* Parse `str` and append to o; a later key replaces an earlier one. */
int opts_parse(struct blk_opts *o, const char *str, const char *implied_key,
               struct strata_error **errp);
void opts_set(struct blk_opts *o, const char *key, const char *value);
void opts_set_uint(struct blk_opts *o, const char *key, uint64_t value);
void opts_del(struct blk_opts *o, const char *key);
bool opts_has(const struct blk_opts *o, const char *key);
/* Getters mark the option used.  Missing keys yield the default. */
const char *opts_get(struct blk_opts *o, const char *key);
int opts_get_bool(struct blk_opts *o, const char *key, bool def, bool *out,
                  struct strata_error **errp);
int opts_get_size(struct blk_opts *o, const char *key, uint64_t def,
                  uint64_t *out, struct strata_error **errp);
int opts_get_uint(struct blk_opts *o, const char *key, uint64_t def,
                  uint64_t *out, struct strata_error **errp);
/* Move every "prefix.rest" key into a new list as "rest". */
struct blk_opts *opts_extract_prefix(struct blk_opts *o, const char *prefix);
/* Fail naming the first option no getter has asked for. */
int opts_check_unused(const struct blk_opts *o, const char *what,
                      struct strata_error **errp);
/* "k=v,k2=v2" with commas doubled; caller frees. */
char *opts_to_string(const struct blk_opts *o);

/* Description of one create option. */
enum blk_opt_type { OPT_STRING, OPT_BOOL, OPT_NUMBER, OPT_SIZE };
struct blk_opt_desc {
    const char *name;
    enum blk_opt_type type;
    const char *help;
    const char *def_value; /* printed in help and "Formatting..." lines; may be NULL */
};

/* Check every key of o against desc (NULL-name terminated): unknown keys
 * and values of the wrong type fail with a message naming the option. */
int opts_validate(const struct blk_opts *o, const struct blk_opt_desc *desc,
                  const char *fmt_name, struct strata_error **errp);

/* Sizes: "512", "64k", "1.5G"; suffixes b k K M G T P E (powers of 1024). */
int parse_size(const char *str, uint64_t *out);
/* Strict unsigned integer (decimal, or 0x hex). */
int parse_uint(const char *str, uint64_t *out);
/* A number option as QEMU reads one (strtoull, base 0): leading blanks, a
 * sign ("-1" is 2^64 - 1), 0x hex, 0 octal.  -EINVAL for no digits or
 * trailing garbage, -ERANGE past 64 bits. */
int parse_number(const char *str, uint64_t *out);
int parse_bool(const char *str, bool *out); /* on/off yes/no true/false 1/0 */
/* Human size as qemu-img prints it: "10 MiB", "1.5 GiB", "512 B". */
void format_size(uint64_t size, char *buf, size_t buflen);

#endif
