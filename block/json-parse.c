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

static void utf8_put(struct json_sbuf *b, unsigned cp)
{
    char u[4];

    if (cp == 0) {
        json_sb_addn(b, "\xc0\x80", 2); /* QEMU's modified UTF-8 for NUL */
    } else if (cp < 0x80) {
        json_sb_addc(b, cp);
    } else if (cp < 0x800) {
        u[0] = 0xc0 | (cp >> 6);
        u[1] = 0x80 | (cp & 0x3f);
        json_sb_addn(b, u, 2);
    } else if (cp < 0x10000) {
        u[0] = 0xe0 | (cp >> 12);
        u[1] = 0x80 | ((cp >> 6) & 0x3f);
        u[2] = 0x80 | (cp & 0x3f);
        json_sb_addn(b, u, 3);
    } else {
        u[0] = 0xf0 | (cp >> 18);
        u[1] = 0x80 | ((cp >> 12) & 0x3f);
        u[2] = 0x80 | ((cp >> 6) & 0x3f);
        u[3] = 0x80 | (cp & 0x3f);
        json_sb_addn(b, u, 4);
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
    struct json_sbuf b = { 0 };

    json_sb_reserve(&b, 0);
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
            json_sb_addn(&b, p, len);
            ps->p += len;
            continue;
        }
        if (c != '\\') {
            json_sb_addc(&b, c);
            ps->p++;
            continue;
        }
        ps->p += 2;
        switch (p[1]) {
        case '"': json_sb_addc(&b, '"'); break;
        case '\\': json_sb_addc(&b, '\\'); break;
        case '/': json_sb_addc(&b, '/'); break;
        case 'b': json_sb_addc(&b, '\b'); break;
        case 'f': json_sb_addc(&b, '\f'); break;
        case 'n': json_sb_addc(&b, '\n'); break;
        case 'r': json_sb_addc(&b, '\r'); break;
        case 't': json_sb_addc(&b, '\t'); break;
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
    locale_t loc = json_get_c_locale();
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
            v = json_alloc_value(JSON_STRING);
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
            json_set_owned(stack[depth - 1], key, v);
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
        if (json_find_key(stack[depth - 1], key) >= 0) {
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
