/* What json.c shares with json-parse.c: a growable string and the tree
 * helpers that skip the public setters' checks.  Not installed. */
#ifndef BLOCK_JSON_INT_H
#define BLOCK_JSON_INT_H

#include <locale.h>
#include <stddef.h>

#include "json.h"

struct json_sbuf {
    char *s;
    size_t len, cap;
};

void json_sb_reserve(struct json_sbuf *b, size_t extra);
void json_sb_addn(struct json_sbuf *b, const char *s, size_t n);
void json_sb_add(struct json_sbuf *b, const char *s);
void json_sb_addc(struct json_sbuf *b, char c);
void json_sb_printf(struct json_sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The C locale: JSON numbers always use '.'. */
locale_t json_get_c_locale(void);
struct json *json_alloc_value(enum json_type type);
void json_set_owned(struct json *obj, char *key, struct json *val);
int json_find_key(const struct json *obj, const char *key);

#endif
