#include "config.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "json-int.h"
#include "util.h"

/* ---- the value tree ---- */

struct json *json_alloc_value(enum json_type type)
{
    struct json *j = xzalloc(sizeof(*j));
    j->type = type;
    return j;
}

struct json *json_new_object(void)
{
    return json_alloc_value(JSON_OBJECT);
}

struct json *json_new_array(void)
{
    return json_alloc_value(JSON_ARRAY);
}

struct json *json_new_string(const char *s)
{
    struct json *j = json_alloc_value(JSON_STRING);
    j->s = xstrdup(s);
    return j;
}

struct json *json_new_int(int64_t i)
{
    struct json *j = json_alloc_value(JSON_INT);
    j->i = i;
    return j;
}

struct json *json_new_uint(uint64_t u)
{
    struct json *j = json_alloc_value(JSON_UINT);
    j->u = u;
    return j;
}

struct json *json_new_bool(bool b)
{
    struct json *j = json_alloc_value(JSON_BOOL);
    j->b = b;
    return j;
}

struct json *json_new_double(double d)
{
    struct json *j = json_alloc_value(JSON_DOUBLE);
    j->d = d;
    return j;
}

struct json *json_new_null(void)
{
    return json_alloc_value(JSON_NULL);
}

void json_free(struct json *j)
{
    if (!j) {
        return;
    }
    if (j->type == JSON_STRING) {
        free(j->s);
    } else if (j->type == JSON_ARRAY || j->type == JSON_OBJECT) {
        for (int i = 0; i < j->c.n; i++) {
            json_free(j->c.items[i]);
            if (j->c.keys) {
                free(j->c.keys[i]);
            }
        }
        free(j->c.items);
        free(j->c.keys);
    }
    free(j);
}

static void container_grow(struct json *j)
{
    if (j->c.n < j->c.alloc) {
        return;
    }
    j->c.alloc = j->c.alloc ? j->c.alloc * 2 : 8;
    j->c.items = xrealloc(j->c.items, j->c.alloc * sizeof(*j->c.items));
    if (j->type == JSON_OBJECT) {
        j->c.keys = xrealloc(j->c.keys, j->c.alloc * sizeof(*j->c.keys));
    }
}

int json_find_key(const struct json *obj, const char *key)
{
    for (int i = 0; i < obj->c.n; i++) {
        if (strcmp(obj->c.keys[i], key) == 0) {
            return i;
        }
    }
    return -1;
}

/* Takes ownership of key and val.  Like QEMU's qdict_put, an existing key
 * gets the new value in place. */
void json_set_owned(struct json *obj, char *key, struct json *val)
{
    int i = json_find_key(obj, key);

    if (i >= 0) {
        free(key);
        json_free(obj->c.items[i]);
        obj->c.items[i] = val;
        return;
    }
    container_grow(obj);
    obj->c.keys[obj->c.n] = key;
    obj->c.items[obj->c.n++] = val;
}

struct json *json_set(struct json *obj, const char *key, struct json *val)
{
    assert(obj->type == JSON_OBJECT && val);
    json_set_owned(obj, xstrdup(key), val);
    return obj;
}

struct json *json_set_str(struct json *obj, const char *key, const char *s)
{
    return json_set(obj, key, json_new_string(s));
}

struct json *json_set_int(struct json *obj, const char *key, int64_t i)
{
    return json_set(obj, key, json_new_int(i));
}

struct json *json_set_uint(struct json *obj, const char *key, uint64_t u)
{
    return json_set(obj, key, json_new_uint(u));
}

struct json *json_set_bool(struct json *obj, const char *key, bool b)
{
    return json_set(obj, key, json_new_bool(b));
}

void json_append(struct json *arr, struct json *val)
{
    assert(arr->type == JSON_ARRAY && val);
    container_grow(arr);
    arr->c.items[arr->c.n++] = val;
}

struct json *json_get(const struct json *obj, const char *key)
{
    if (!obj || obj->type != JSON_OBJECT) {
        return NULL;
    }
    int i = json_find_key(obj, key);
    return i >= 0 ? obj->c.items[i] : NULL;
}

/* ---- a growable string ---- */


void json_sb_reserve(struct json_sbuf *b, size_t extra)
{
    if (b->len + extra + 1 > b->cap) {
        b->cap = MAX(b->cap * 2, b->len + extra + 1);
        b->cap = MAX(b->cap, 64);
        b->s = xrealloc(b->s, b->cap);
    }
}

void json_sb_addn(struct json_sbuf *b, const char *s, size_t n)
{
    json_sb_reserve(b, n);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void json_sb_add(struct json_sbuf *b, const char *s)
{
    json_sb_addn(b, s, strlen(s));
}

void json_sb_addc(struct json_sbuf *b, char c)
{
    json_sb_addn(b, &c, 1);
}

__attribute__((format(printf, 2, 3)))
void json_sb_printf(struct json_sbuf *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    assert(n >= 0 && (size_t)n < sizeof(tmp));
    json_sb_addn(b, tmp, n);
}

static locale_t c_locale;

static void c_locale_init(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/* Numbers are read and written in the C locale, whatever LC_NUMERIC the
 * program set (JSON always uses '.'). */
locale_t json_get_c_locale(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, c_locale_init);
    return c_locale;
}

/* ---- printing, as QEMU's qobject_to_json() ---- */

/* QEMU's mod_utf8_codepoint(): one code point from s, or -1 for a
 * malformed, overlong (except the modified-UTF-8 NUL C0 80), surrogate,
 * noncharacter or out-of-range sequence.  *end moves past what was used. */
static int utf8_codepoint(const unsigned char *s, const unsigned char **end)
{
    static const int min_cp[5] = { 0x80, 0x800, 0x10000, 0x200000,
                                   0x4000000 };
    const unsigned char *p = s;
    unsigned byte = *p++;
    int cp, len = 0;

    if (byte < 0x80) {
        cp = byte;
    } else if (byte >= 0xfe || !(byte & 0x40)) {
        cp = -1; /* 0xFE/0xFF, or a stray continuation byte */
    } else {
        unsigned mask;
        for (mask = 0x80; byte & mask; mask >>= 1) {
            len++;
        }
        cp = byte & (mask - 1);
        for (int i = 1; i < len; i++) {
            if ((*p & 0xc0) != 0x80) {
                cp = -1; /* truncated: the byte is decoded again next */
                goto out;
            }
            cp = (cp << 6) | (*p++ & 0x3f);
        }
        if (cp > 0x10ffff || (cp >= 0xfdd0 && cp <= 0xfdef) ||
            (cp & 0xfffe) == 0xfffe || (cp >= 0xd800 && cp <= 0xdfff)) {
            cp = -1;
        } else if (cp < min_cp[len - 2] && !(cp == 0 && len == 2)) {
            cp = -1;
        }
    }
out:
    *end = p;
    return cp;
}

/* Escapes as QEMU does: the usual short escapes, \uXXXX (upper-case hex)
 * for other control characters and everything outside printable ASCII,
 * surrogate pairs above the BMP, U+FFFD for bytes that are not UTF-8. */
static void print_string(struct json_sbuf *b, const char *str)
{
    const unsigned char *p = (const unsigned char *)str, *end;

    json_sb_addc(b, '"');
    for (; *p; p = end) {
        int cp = utf8_codepoint(p, &end);
        switch (cp) {
        case '"': json_sb_add(b, "\\\""); break;
        case '\\': json_sb_add(b, "\\\\"); break;
        case '\b': json_sb_add(b, "\\b"); break;
        case '\f': json_sb_add(b, "\\f"); break;
        case '\n': json_sb_add(b, "\\n"); break;
        case '\r': json_sb_add(b, "\\r"); break;
        case '\t': json_sb_add(b, "\\t"); break;
        default:
            if (cp < 0) {
                cp = 0xfffd;
            }
            if (cp > 0xffff) {
                json_sb_printf(b, "\\u%04X\\u%04X",
                          0xd800 + ((cp - 0x10000) >> 10),
                          0xdc00 + ((cp - 0x10000) & 0x3ff));
            } else if (cp < 0x20 || cp >= 0x7f) {
                json_sb_printf(b, "\\u%04X", cp);
            } else {
                json_sb_addc(b, cp);
            }
        }
    }
    json_sb_addc(b, '"');
}

static void print_double(struct json_sbuf *b, double d)
{
    locale_t loc = json_get_c_locale(), old = (locale_t)0;

    if (loc) {
        old = uselocale(loc);
    }
    /* QEMU's format; like QEMU, inf and nan come out as such. */
    json_sb_printf(b, "%.17g", d);
    if (loc) {
        uselocale(old);
    }
}

/* QEMU's QDict is a hash table of 512 buckets walked in bucket order, each
 * bucket a list with the newest key first; its JSON shows keys in that
 * order ("virtual-size" before "filename").  Printing in the same order
 * makes our documents byte-identical whatever order keys were added in,
 * as long as keys sharing a bucket are added in QEMU's (schema) order. */
static unsigned qdict_bucket(const char *name)
{
    const unsigned char *s = (const unsigned char *)name;
    unsigned value = 0x238F13AFu * (unsigned)strlen(name);

    for (unsigned i = 0; s[i]; i++) {
        value = value + ((unsigned)s[i] << (i * 5 % 24));
    }
    return (1103515243u * value + 12345u) % 512;
}

struct key_order {
    unsigned bucket;
    int index;
};

static int key_order_cmp(const void *a, const void *b)
{
    const struct key_order *x = a, *y = b;

    if (x->bucket != y->bucket) {
        return x->bucket < y->bucket ? -1 : 1;
    }
    return y->index - x->index; /* newest first within a bucket */
}

static void newline(struct json_sbuf *b, bool pretty, int indent)
{
    if (pretty) {
        json_sb_addc(b, '\n');
        for (int i = 0; i < indent * 4; i++) {
            json_sb_addc(b, ' ');
        }
    }
}

static void print_value(struct json_sbuf *b, const struct json *j, bool pretty,
                        int indent)
{
    const char *sep = "";

    switch (j->type) {
    case JSON_NULL:
        json_sb_add(b, "null");
        break;
    case JSON_BOOL:
        json_sb_add(b, j->b ? "true" : "false");
        break;
    case JSON_INT:
        json_sb_printf(b, "%" PRId64, j->i);
        break;
    case JSON_UINT:
        json_sb_printf(b, "%" PRIu64, j->u);
        break;
    case JSON_DOUBLE:
        print_double(b, j->d);
        break;
    case JSON_STRING:
        print_string(b, j->s);
        break;
    case JSON_ARRAY:
        json_sb_addc(b, '[');
        for (int i = 0; i < j->c.n; i++) {
            json_sb_add(b, sep);
            newline(b, pretty, indent + 1);
            print_value(b, j->c.items[i], pretty, indent + 1);
            sep = pretty ? "," : ", ";
        }
        newline(b, pretty, indent);
        json_sb_addc(b, ']');
        break;
    case JSON_OBJECT: {
        struct key_order *order = xmalloc(j->c.n * sizeof(*order));
        for (int i = 0; i < j->c.n; i++) {
            order[i].bucket = qdict_bucket(j->c.keys[i]);
            order[i].index = i;
        }
        qsort(order, j->c.n, sizeof(*order), key_order_cmp);
        json_sb_addc(b, '{');
        for (int k = 0; k < j->c.n; k++) {
            int i = order[k].index;
            json_sb_add(b, sep);
            newline(b, pretty, indent + 1);
            print_string(b, j->c.keys[i]);
            json_sb_add(b, ": ");
            print_value(b, j->c.items[i], pretty, indent + 1);
            sep = pretty ? "," : ", ";
        }
        free(order);
        newline(b, pretty, indent);
        json_sb_addc(b, '}');
        break;
    }
    }
}

char *json_to_string(const struct json *j, bool pretty)
{
    struct json_sbuf b = { 0 };

    json_sb_reserve(&b, 0);
    b.s[0] = '\0';
    print_value(&b, j, pretty, 0);
    return b.s;
}

static int write_text(FILE *f, const char *s, size_t len)
{
    errno = 0;
    if (fwrite(s, 1, len, f) != len || ferror(f)) {
        return errno ? -errno : -EIO;
    }
    return 0;
}

int json_print_pretty(FILE *f, const struct json *j)
{
    char *s = json_to_string(j, true);
    size_t len = strlen(s);

    s[len] = '\n'; /* replaces the NUL: write len + 1 bytes, no C string */
    int ret = write_text(f, s, len + 1);
    free(s);
    return ret;
}

int json_print_compact(FILE *f, const struct json *j)
{
    char *s = json_to_string(j, false);
    int ret = write_text(f, s, strlen(s));
    free(s);
    return ret;
}

char *json_entry_to_string(const struct json *obj)
{
    struct json_sbuf b = { 0 };

    assert(obj->type == JSON_OBJECT);
    json_sb_add(&b, "{ ");
    for (int i = 0; i < obj->c.n; i++) {
        if (i > 0) {
            json_sb_add(&b, ", ");
        }
        print_string(&b, obj->c.keys[i]);
        json_sb_add(&b, ": ");
        print_value(&b, obj->c.items[i], false, 0);
    }
    json_sb_addc(&b, '}');
    return b.s;
}

int json_print_entry(FILE *f, const struct json *obj)
{
    char *s = json_entry_to_string(obj);
    int ret = write_text(f, s, strlen(s));
    free(s);
    return ret;
}

