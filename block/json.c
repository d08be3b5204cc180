#include "config.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"

/* ---- the value tree ---- */

static struct json *json_alloc(enum json_type type)
{
    struct json *j = xzalloc(sizeof(*j));
    j->type = type;
    return j;
}

struct json *json_new_object(void)
{
    return json_alloc(JSON_OBJECT);
}

struct json *json_new_array(void)
{
    return json_alloc(JSON_ARRAY);
}

struct json *json_new_string(const char *s)
{
    struct json *j = json_alloc(JSON_STRING);
    j->s = xstrdup(s);
    return j;
}

struct json *json_new_int(int64_t i)
{
    struct json *j = json_alloc(JSON_INT);
    j->i = i;
    return j;
}

struct json *json_new_uint(uint64_t u)
{
    struct json *j = json_alloc(JSON_UINT);
    j->u = u;
    return j;
}

struct json *json_new_bool(bool b)
{
    struct json *j = json_alloc(JSON_BOOL);
    j->b = b;
    return j;
}

struct json *json_new_double(double d)
{
    struct json *j = json_alloc(JSON_DOUBLE);
    j->d = d;
    return j;
}

struct json *json_new_null(void)
{
    return json_alloc(JSON_NULL);
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

static int find_key(const struct json *obj, const char *key)
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
static void set_owned(struct json *obj, char *key, struct json *val)
{
    int i = find_key(obj, key);

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
    set_owned(obj, xstrdup(key), val);
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
    int i = find_key(obj, key);
    return i >= 0 ? obj->c.items[i] : NULL;
}

/* ---- a growable string ---- */

struct sbuf {
    char *s;
    size_t len, cap;
};

static void sb_reserve(struct sbuf *b, size_t extra)
{
    if (b->len + extra + 1 > b->cap) {
        b->cap = MAX(b->cap * 2, b->len + extra + 1);
        b->cap = MAX(b->cap, 64);
        b->s = xrealloc(b->s, b->cap);
    }
}

static void sb_addn(struct sbuf *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_add(struct sbuf *b, const char *s)
{
    sb_addn(b, s, strlen(s));
}

static void sb_addc(struct sbuf *b, char c)
{
    sb_addn(b, &c, 1);
}

__attribute__((format(printf, 2, 3)))
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    assert(n >= 0 && (size_t)n < sizeof(tmp));
    sb_addn(b, tmp, n);
}

static locale_t c_locale;

static void c_locale_init(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/* Numbers are read and written in the C locale, whatever LC_NUMERIC the
 * program set (JSON always uses '.'). */
static locale_t get_c_locale(void)
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
static void print_string(struct sbuf *b, const char *str)
{
    const unsigned char *p = (const unsigned char *)str, *end;

    sb_addc(b, '"');
    for (; *p; p = end) {
        int cp = utf8_codepoint(p, &end);
        switch (cp) {
        case '"': sb_add(b, "\\\""); break;
        case '\\': sb_add(b, "\\\\"); break;
        case '\b': sb_add(b, "\\b"); break;
        case '\f': sb_add(b, "\\f"); break;
        case '\n': sb_add(b, "\\n"); break;
        case '\r': sb_add(b, "\\r"); break;
        case '\t': sb_add(b, "\\t"); break;
        default:
            if (cp < 0) {
                cp = 0xfffd;
            }
            if (cp > 0xffff) {
                sb_printf(b, "\\u%04X\\u%04X",
                          0xd800 + ((cp - 0x10000) >> 10),
                          0xdc00 + ((cp - 0x10000) & 0x3ff));
            } else if (cp < 0x20 || cp >= 0x7f) {
                sb_printf(b, "\\u%04X", cp);
            } else {
                sb_addc(b, cp);
            }
        }
    }
    sb_addc(b, '"');
}

static void print_double(struct sbuf *b, double d)
{
    locale_t loc = get_c_locale(), old = (locale_t)0;

    if (loc) {
        old = uselocale(loc);
    }
    /* QEMU's format; like QEMU, inf and nan come out as such. */
    sb_printf(b, "%.17g", d);
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

static void newline(struct sbuf *b, bool pretty, int indent)
{
    if (pretty) {
        sb_addc(b, '\n');
        for (int i = 0; i < indent * 4; i++) {
            sb_addc(b, ' ');
        }
    }
}

static void print_value(struct sbuf *b, const struct json *j, bool pretty,
                        int indent)
{
    const char *sep = "";

    switch (j->type) {
    case JSON_NULL:
        sb_add(b, "null");
        break;
    case JSON_BOOL:
        sb_add(b, j->b ? "true" : "false");
        break;
    case JSON_INT:
        sb_printf(b, "%" PRId64, j->i);
        break;
    case JSON_UINT:
        sb_printf(b, "%" PRIu64, j->u);
        break;
    case JSON_DOUBLE:
        print_double(b, j->d);
        break;
    case JSON_STRING:
        print_string(b, j->s);
        break;
    case JSON_ARRAY:
        sb_addc(b, '[');
        for (int i = 0; i < j->c.n; i++) {
            sb_add(b, sep);
            newline(b, pretty, indent + 1);
            print_value(b, j->c.items[i], pretty, indent + 1);
            sep = pretty ? "," : ", ";
        }
        newline(b, pretty, indent);
        sb_addc(b, ']');
        break;
    case JSON_OBJECT: {
        struct key_order *order = xmalloc(j->c.n * sizeof(*order));
        for (int i = 0; i < j->c.n; i++) {
            order[i].bucket = qdict_bucket(j->c.keys[i]);
            order[i].index = i;
        }
        qsort(order, j->c.n, sizeof(*order), key_order_cmp);
        sb_addc(b, '{');
        for (int k = 0; k < j->c.n; k++) {
            int i = order[k].index;
            sb_add(b, sep);
            newline(b, pretty, indent + 1);
            print_string(b, j->c.keys[i]);
            sb_add(b, ": ");
            print_value(b, j->c.items[i], pretty, indent + 1);
            sep = pretty ? "," : ", ";
        }
        free(order);
        newline(b, pretty, indent);
        sb_addc(b, '}');
        break;
    }
    }
}

char *json_to_string(const struct json *j, bool pretty)
{
    struct sbuf b = { 0 };

    sb_reserve(&b, 0);
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
    struct sbuf b = { 0 };

    assert(obj->type == JSON_OBJECT);
    sb_add(&b, "{ ");
    for (int i = 0; i < obj->c.n; i++) {
        if (i > 0) {
            sb_add(&b, ", ");
        }
        print_string(&b, obj->c.keys[i]);
        sb_add(&b, ": ");
        print_value(&b, obj->c.items[i], false, 0);
    }
    sb_addc(&b, '}');
    return b.s;
}

int json_print_entry(FILE *f, const struct json *obj)
{
    char *s = json_entry_to_string(obj);
    int ret = write_text(f, s, strlen(s));
    free(s);
    return ret;
}

/* ---- parsing (RFC 8259) ----
 *
 * Iterative, with an explicit stack, so that hostile nesting costs heap
 * rather than the (possibly small, coroutine) C stack. */

#define JSON_MAX_DEPTH 1000

struct parser {
    const char *text;
    const char *p;
    char *err; /* first error, with its position */
};

__attribute__((format(printf, 3, 4)))
static void parse_error(struct parser *ps, const char *at, const char *fmt,
                        ...)
{
    int line = 1, col = 1;
    va_list ap;
    char *msg;

    if (ps->err) {
        return;
    }
    for (const char *q = ps->text; q < at; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0) {
        abort();
    }
    va_end(ap);
    ps->err = xasprintf("JSON parse error at line %d, column %d: %s", line,
                        col, msg);
    free(msg);
}

/* Name the offending character readably in messages. */
static const char *char_name(const char *p, char buf[16])
{
    unsigned char c = *p;

    if (c == '\0') {
        return "end of input";
    }
    if (c > 0x20 && c < 0x7f) {
        snprintf(buf, 16, "'%c'", c);
    } else {
        snprintf(buf, 16, "byte 0x%02x", c);
    }
    return buf;
}

static void skip_ws(struct parser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' ||
           *ps->p == '\r') {
        ps->p++;
    }
}

static int hex4(const char *p)
{
    int v = 0;

    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= c - '0';
        } else if (c >= 'a' && c <= 'f') {
            v |= c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            v |= c - 'A' + 10;
        } else {
            return -1;
        }
    }
    return v;
}

static void utf8_put(struct sbuf *b, unsigned cp)
{
    char u[4];

    if (cp == 0) {
        sb_addn(b, "\xc0\x80", 2); /* QEMU's modified UTF-8 for NUL */
    } else if (cp < 0x80) {
        sb_addc(b, cp);
    } else if (cp < 0x800) {
        u[0] = 0xc0 | (cp >> 6);
        u[1] = 0x80 | (cp & 0x3f);
        sb_addn(b, u, 2);
    } else if (cp < 0x10000) {
        u[0] = 0xe0 | (cp >> 12);
        u[1] = 0x80 | ((cp >> 6) & 0x3f);
        u[2] = 0x80 | (cp & 0x3f);
        sb_addn(b, u, 3);
    } else {
        u[0] = 0xf0 | (cp >> 18);
        u[1] = 0x80 | ((cp >> 12) & 0x3f);
        u[2] = 0x80 | ((cp >> 6) & 0x3f);
        u[3] = 0x80 | (cp & 0x3f);
        sb_addn(b, u, 4);
    }
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0. */
static int utf8_valid_len(const unsigned char *p)
{
    unsigned c = p[0];
    int len;
    unsigned cp;

    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, cp = c & 0x07;
    } else {
        return 0;
    }
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return len;
}

/* A string starting at the opening quote; returns it malloc'd or NULL. */
static char *parse_string(struct parser *ps)
{
    const char *start = ps->p;
    struct sbuf b = { 0 };

    sb_reserve(&b, 0);
    b.s[0] = '\0';
    ps->p++;
    for (;;) {
        const char *p = ps->p;
        unsigned char c = *p;

        if (c == '"') {
            ps->p++;
            return b.s;
        }
        if (c == '\0') {
            parse_error(ps, start, "unterminated string");
            goto fail;
        }
        if (c < 0x20) {
            parse_error(ps, p, "control character 0x%02x in string must be "
                        "escaped", c);
            goto fail;
        }
        if (c >= 0x80) {
            int len = utf8_valid_len((const unsigned char *)p);
            if (!len) {
                parse_error(ps, p, "invalid UTF-8 in string");
                goto fail;
            }
            sb_addn(&b, p, len);
            ps->p += len;
            continue;
        }
        if (c != '\\') {
            sb_addc(&b, c);
            ps->p++;
            continue;
        }
        ps->p += 2;
        switch (p[1]) {
        case '"': sb_addc(&b, '"'); break;
        case '\\': sb_addc(&b, '\\'); break;
        case '/': sb_addc(&b, '/'); break;
        case 'b': sb_addc(&b, '\b'); break;
        case 'f': sb_addc(&b, '\f'); break;
        case 'n': sb_addc(&b, '\n'); break;
        case 'r': sb_addc(&b, '\r'); break;
        case 't': sb_addc(&b, '\t'); break;
        case 'u': {
            int cp = hex4(p + 2);
            if (cp < 0) {
                parse_error(ps, p, "invalid \\u escape in string");
                goto fail;
            }
            ps->p += 4;
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                parse_error(ps, p, "unpaired surrogate \\u%.4s in string",
                            p + 2);
                goto fail;
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                int lo = ps->p[0] == '\\' && ps->p[1] == 'u'
                             ? hex4(ps->p + 2) : -1;
                if (lo < 0xdc00 || lo > 0xdfff) {
                    parse_error(ps, p, "unpaired surrogate \\u%.4s in "
                                "string", p + 2);
                    goto fail;
                }
                ps->p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            utf8_put(&b, cp);
            break;
        }
        default: {
            char nb[16];
            parse_error(ps, p, "invalid escape \\%s in string",
                        p[1] ? (snprintf(nb, 16, "%c", p[1]), nb) : "");
            goto fail;
        }
        }
    }
fail:
    free(b.s);
    return NULL;
}

/* A number: integers become INT, or UINT above INT64_MAX, or DOUBLE when
 * even that is too small (as QEMU's parser does); anything with a fraction
 * or exponent is a DOUBLE. */
static struct json *parse_number(struct parser *ps)
{
    const char *start = ps->p, *p = start;
    bool neg = false, integer = true, overflow = false;
    uint64_t mag = 0;

    if (*p == '-') {
        neg = true;
        p++;
    }
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        for (; *p >= '0' && *p <= '9'; p++) {
            unsigned d = *p - '0';
            if (mag > (UINT64_MAX - d) / 10) {
                overflow = true;
            }
            mag = mag * 10 + d;
        }
    } else {
        parse_error(ps, start, "invalid number");
        return NULL;
    }
    if (*p == '.') {
        integer = false;
        p++;
        if (!(*p >= '0' && *p <= '9')) {
            parse_error(ps, p, "digits expected after '.' in number");
            return NULL;
        }
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (*p == 'e' || *p == 'E') {
        integer = false;
        p++;
        if (*p == '+' || *p == '-') {
            p++;
        }
        if (!(*p >= '0' && *p <= '9')) {
            parse_error(ps, p, "digits expected in exponent of number");
            return NULL;
        }
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }
    ps->p = p;
    if (integer && !overflow) {
        if (!neg && mag <= INT64_MAX) {
            return json_new_int(mag);
        }
        if (!neg) {
            return json_new_uint(mag);
        }
        if (mag <= (uint64_t)INT64_MAX + 1) {
            return json_new_int(mag == (uint64_t)INT64_MAX + 1
                                    ? INT64_MIN : -(int64_t)mag);
        }
    }
    /* The grammar is checked, so strtod reads exactly this copy. */
    char *copy = strndup(start, p - start);
    locale_t loc = get_c_locale();
    if (!copy) {
        abort();
    }
    double d = loc ? strtod_l(copy, NULL, loc) : strtod(copy, NULL);
    free(copy);
    if (d == __builtin_inf() || d == -__builtin_inf()) {
        parse_error(ps, start, "number out of range");
        return NULL;
    }
    return json_new_double(d);
}

/* true, false, null. */
static struct json *parse_literal(struct parser *ps)
{
    static const struct { const char *word; int kind; } lits[] = {
        { "true", 1 }, { "false", 0 }, { "null", -1 },
    };
    char nb[16];

    for (size_t i = 0; i < ARRAY_SIZE(lits); i++) {
        size_t n = strlen(lits[i].word);
        if (strncmp(ps->p, lits[i].word, n) == 0) {
            ps->p += n;
            return lits[i].kind < 0 ? json_new_null()
                                    : json_new_bool(lits[i].kind);
        }
    }
    parse_error(ps, ps->p, "expected a JSON value, found %s",
                char_name(ps->p, nb));
    return NULL;
}

struct json *json_parse(const char *text, char **errmsg)
{
    struct parser ps = { .text = text ? text : "", .p = text ? text : "" };
    struct json **stack = NULL; /* open containers, innermost last */
    struct json *root = NULL;
    char *key = NULL; /* the member name waiting for its value */
    int depth = 0;
    char nb[16];

    if (errmsg) {
        *errmsg = NULL;
    }
    for (;;) {
        /* A value. */
        struct json *v;
        skip_ws(&ps);
        char c = *ps.p;
        if (c == '{' || c == '[') {
            if (depth == JSON_MAX_DEPTH) {
                parse_error(&ps, ps.p, "nesting deeper than %d levels",
                            JSON_MAX_DEPTH);
                goto fail;
            }
            if (depth % 64 == 0) {
                stack = xrealloc(stack, (depth + 64) * sizeof(*stack));
            }
            v = c == '{' ? json_new_object() : json_new_array();
        } else if (c == '"') {
            char *s = parse_string(&ps);
            if (!s) {
                goto fail;
            }
            v = json_alloc(JSON_STRING);
            v->s = s;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            v = parse_number(&ps);
        } else {
            v = parse_literal(&ps);
        }
        if (!v) {
            goto fail;
        }
        if (depth == 0) {
            root = v;
        } else if (key) {
            set_owned(stack[depth - 1], key, v);
            key = NULL;
        } else {
            json_append(stack[depth - 1], v);
        }
        if (v->type == JSON_OBJECT || v->type == JSON_ARRAY) {
            stack[depth++] = v;
            ps.p++;
            skip_ws(&ps);
            if (*ps.p == (v->type == JSON_OBJECT ? '}' : ']')) {
                depth--;
                ps.p++;
            } else if (v->type == JSON_OBJECT) {
                goto member;
            } else {
                continue;
            }
        }

        /* After a value: ',' or the end of its container. */
        for (;;) {
            if (depth == 0) {
                skip_ws(&ps);
                if (*ps.p) {
                    parse_error(&ps, ps.p, "unexpected %s after the JSON "
                                "value", char_name(ps.p, nb));
                    goto fail;
                }
                free(stack);
                return root;
            }
            struct json *top = stack[depth - 1];
            char close = top->type == JSON_OBJECT ? '}' : ']';
            skip_ws(&ps);
            if (*ps.p == close) {
                ps.p++;
                depth--;
                continue;
            }
            if (*ps.p != ',') {
                parse_error(&ps, ps.p, "expected ',' or '%c', found %s",
                            close, char_name(ps.p, nb));
                goto fail;
            }
            ps.p++;
            if (top->type == JSON_OBJECT) {
                goto member;
            }
            break;
        }
        continue;

    member:
        /* "name": before an object member's value. */
        skip_ws(&ps);
        if (*ps.p != '"') {
            parse_error(&ps, ps.p, "expected a string as object key, "
                        "found %s", char_name(ps.p, nb));
            goto fail;
        }
        const char *kpos = ps.p;
        key = parse_string(&ps);
        if (!key) {
            goto fail;
        }
        if (find_key(stack[depth - 1], key) >= 0) {
            parse_error(&ps, kpos, "duplicate key \"%s\"", key);
            goto fail;
        }
        skip_ws(&ps);
        if (*ps.p != ':') {
            parse_error(&ps, ps.p, "expected ':' after object key, found %s",
                        char_name(ps.p, nb));
            goto fail;
        }
        ps.p++;
    }

fail:
    free(stack);
    free(key);
    json_free(root);
    if (errmsg) {
        *errmsg = ps.err;
    } else {
        free(ps.err);
    }
    return NULL;
}
