/* A small JSON value tree and writer.  Tools build documents (info, map,
 * check, measure) as trees and print them either as JSON, formatted
 * exactly like qemu-img's --output=json, or as qemu-img's human text. */
#ifndef BLOCK_JSON_H
#define BLOCK_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_INT, JSON_UINT, JSON_DOUBLE,
                 JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
    enum json_type type;
    union {
        bool b;
        int64_t i;
        uint64_t u;
        double d;
        char *s;
        struct {
            struct json **items;
            char **keys; /* objects only; insertion order is kept */
            int n, alloc;
        } c;
    };
};

struct json *json_new_object(void);
struct json *json_new_array(void);
struct json *json_new_string(const char *s);
struct json *json_new_int(int64_t i);
struct json *json_new_uint(uint64_t u);
struct json *json_new_bool(bool b);
struct json *json_new_double(double d);
struct json *json_new_null(void);
void json_free(struct json *j);

/* Object setters take ownership of the value; they return the object. */
struct json *json_set(struct json *obj, const char *key, struct json *val);
struct json *json_set_str(struct json *obj, const char *key, const char *s);
struct json *json_set_int(struct json *obj, const char *key, int64_t i);
struct json *json_set_uint(struct json *obj, const char *key, uint64_t u);
struct json *json_set_bool(struct json *obj, const char *key, bool b);
void json_append(struct json *arr, struct json *val);
struct json *json_get(const struct json *obj, const char *key);

/* Pretty-print as QEMU does (4-space indent, "key": value, a newline after
 * the closing brace); returns 0 or -errno. */
int json_print_pretty(FILE *f, const struct json *j);
/* One line, QEMU's compact style ("{"a": 1, "b": 2}"). */
int json_print_compact(FILE *f, const struct json *j);
/* Malloc'd string versions (no trailing newline). */
char *json_to_string(const struct json *j, bool pretty);
/* Object keys print in the order QEMU's QDict iterates them (hash bucket
 * order), so output matches qemu-img whatever order keys were set in;
 * only keys sharing a bucket keep relative order (newest first), so set
 * keys in the order of QEMU's QAPI schema. */

/* One object on one line, keys in insertion order, spaced as qemu-img map
 * prints its entries: `{ "start": 0, "length": 512, "data": true}` (no
 * newline; nested values in the compact form). */
int json_print_entry(FILE *f, const struct json *obj);
char *json_entry_to_string(const struct json *obj);

/* Parse a JSON text (used for "json:{...}" filenames and by tests).  On
 * failure returns NULL and, if errmsg is non-NULL, a malloc'd message
 * naming line and column.  \u0000 becomes QEMU's modified UTF-8 C0 80. */
struct json *json_parse(const char *text, char **errmsg);

#endif
