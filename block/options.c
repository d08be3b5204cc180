#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "options.h"
#include "util.h"

/* ---- the list ---- */

struct blk_opts *opts_new(void)
{
    return xzalloc(sizeof(struct blk_opts));
}

void opts_free(struct blk_opts *o)
{
    if (!o) {
        return;
    }
    for (int i = 0; i < o->n; i++) {
        free(o->v[i].key);
        free(o->v[i].value);
    }
    free(o->v);
    free(o);
}

struct blk_opts *opts_clone(const struct blk_opts *o)
{
    struct blk_opts *c = opts_new();

    if (!o || o->n == 0) {
        return c;
    }
    c->v = xmalloc(o->n * sizeof(*c->v));
    c->alloc = c->n = o->n;
    for (int i = 0; i < o->n; i++) {
        c->v[i].key = xstrdup(o->v[i].key);
        c->v[i].value = xstrdup(o->v[i].value);
        c->v[i].used = o->v[i].used;
    }
    return c;
}

static struct blk_opt *find(const struct blk_opts *o, const char *key)
{
    for (int i = 0; i < o->n; i++) {
        if (strcmp(o->v[i].key, key) == 0) {
            return &o->v[i];
        }
    }
    return NULL;
}

/* Takes ownership of key and value; an existing key keeps its place. */
static void set_owned(struct blk_opts *o, char *key, char *value)
{
    struct blk_opt *opt = find(o, key);

    if (opt) {
        free(key);
        free(opt->value);
        opt->value = value;
        opt->used = false;
        return;
    }
    if (o->n == o->alloc) {
        o->alloc = o->alloc ? o->alloc * 2 : 8;
        o->v = xrealloc(o->v, o->alloc * sizeof(*o->v));
    }
    o->v[o->n].key = key;
    o->v[o->n].value = value;
    o->v[o->n].used = false;
    o->n++;
}

void opts_set(struct blk_opts *o, const char *key, const char *value)
{
    set_owned(o, xstrdup(key), xstrdup(value));
}

void opts_set_uint(struct blk_opts *o, const char *key, uint64_t value)
{
    set_owned(o, xstrdup(key), xasprintf("%" PRIu64, value));
}

void opts_del(struct blk_opts *o, const char *key)
{
    struct blk_opt *opt = find(o, key);

    if (!opt) {
        return;
    }
    free(opt->key);
    free(opt->value);
    int i = opt - o->v;
    memmove(&o->v[i], &o->v[i + 1], (o->n - i - 1) * sizeof(*o->v));
    o->n--;
}

bool opts_has(const struct blk_opts *o, const char *key)
{
    return find(o, key) != NULL;
}

/* ---- parsing "k=v,k2=v2" ---- */

/* Copy a value up to the first single ',' turning ",," into ','; *pp is
 * left on that ',' or the final NUL. */
static char *take_value(const char **pp)
{
    const char *p = *pp;
    char *out = xmalloc(strlen(p) + 1), *q = out;

    while (*p) {
        if (*p == ',') {
            if (p[1] != ',') {
                break;
            }
            p++;
        }
        *q++ = *p++;
    }
    *q = '\0';
    *pp = p;
    return out;
}

/* QEMU's QemuOpts syntax.  On error the elements before the bad one have
 * already been added to o. */
int opts_parse(struct blk_opts *o, const char *str, const char *implied_key,
               struct strata_error **errp)
{
    const char *p = str;

    if (!str || !*str) {
        return 0;
    }
    for (bool first = true;; first = false) {
        /* A key ends at the first '=' or ','; commas cannot be escaped in
         * keys, only in values (QEMU's rule). */
        size_t klen = strcspn(p, "=,");

        if (p[klen] == '=') {
            if (klen == 0) {
                return error_setg(errp, -EINVAL, "Invalid parameter ''");
            }
            char *key = xmalloc(klen + 1);
            memcpy(key, p, klen);
            key[klen] = '\0';
            p += klen + 1;
            set_owned(o, key, take_value(&p));
        } else if (klen == 0) {
            /* ",a=1", "a=1,", "a=1,,,b": an element with nothing in it. */
            return error_setg(errp, -EINVAL, "Invalid option list: %s", str);
        } else if (first && implied_key) {
            set_owned(o, xstrdup(implied_key), take_value(&p));
        } else {
            /* a bare key means key=on, as in QEMU ("-o lazy_refcounts") */
            char *key = xmalloc(klen + 1);
            memcpy(key, p, klen);
            key[klen] = '\0';
            p += klen;
            set_owned(o, key, xstrdup("on"));
        }
        if (*p == '\0') {
            return 0;
        }
        p++; /* the separating ',' */
        if (*p == '\0') {
            return error_setg(errp, -EINVAL, "Invalid option list: %s", str);
        }
    }
}

/* ---- getters ---- */

const char *opts_get(struct blk_opts *o, const char *key)
{
    struct blk_opt *opt = find(o, key);

    if (!opt) {
        return NULL;
    }
    opt->used = true;
    return opt->value;
}

/* The messages below are QEMU's, word for word, so that scripts matching
 * qemu-img's errors keep working. */

static int bad_bool(struct strata_error **errp, const char *key)
{
    return error_setg(errp, -EINVAL, "Parameter '%s' expects 'on' or 'off'",
                      key);
}

static int bad_size(struct strata_error **errp, int ret, const char *key,
                    const char *value)
{
    if (ret == -ERANGE) {
        return error_setg(errp, -EINVAL,
                          "Value '%s' is out of range for parameter '%s'",
                          value, key);
    }
    return error_setg(errp, -EINVAL,
                      "Parameter '%s' expects a non-negative number below "
                      "2^64\nOptional suffix k, M, G, T, P or E means kilo-, "
                      "mega-, giga-, tera-, peta-\nand exabytes, "
                      "respectively.", key);
}

static int bad_number(struct strata_error **errp, int ret, const char *key,
                      const char *value)
{
    if (ret == -ERANGE) {
        return error_setg(errp, -EINVAL,
                          "Value '%s' is too large for parameter '%s'",
                          value, key);
    }
    return error_setg(errp, -EINVAL, "Parameter '%s' expects a number", key);
}

int opts_get_bool(struct blk_opts *o, const char *key, bool def, bool *out,
                  struct strata_error **errp)
{
    const char *v = opts_get(o, key);

    if (!v) {
        *out = def;
        return 0;
    }
    if (parse_bool(v, out) < 0) {
        return bad_bool(errp, key);
    }
    return 0;
}

int opts_get_size(struct blk_opts *o, const char *key, uint64_t def,
                  uint64_t *out, struct strata_error **errp)
{
    const char *v = opts_get(o, key);
    int ret;

    if (!v) {
        *out = def;
        return 0;
    }
    ret = parse_size(v, out);
    return ret < 0 ? bad_size(errp, ret, key, v) : 0;
}

int opts_get_uint(struct blk_opts *o, const char *key, uint64_t def,
                  uint64_t *out, struct strata_error **errp)
{
    const char *v = opts_get(o, key);
    int ret;

    if (!v) {
        *out = def;
        return 0;
    }
    ret = parse_number(v, out);
    return ret < 0 ? bad_number(errp, ret, key, v) : 0;
}

struct blk_opts *opts_extract_prefix(struct blk_opts *o, const char *prefix)
{
    struct blk_opts *child = opts_new();
    size_t plen = strlen(prefix);
    int kept = 0;

    for (int i = 0; i < o->n; i++) {
        struct blk_opt *opt = &o->v[i];
        if (strncmp(opt->key, prefix, plen) == 0 && opt->key[plen] == '.') {
            set_owned(child, xstrdup(opt->key + plen + 1), opt->value);
            child->v[child->n - 1].used = opt->used;
            free(opt->key);
        } else {
            o->v[kept++] = *opt;
        }
    }
    o->n = kept;
    return child;
}

int opts_check_unused(const struct blk_opts *o, const char *what,
                      struct strata_error **errp)
{
    for (int i = 0; i < o->n; i++) {
        const char *key = o->v[i].key;
        if (o->v[i].used) {
            continue;
        }
        if (!what) {
            return error_setg(errp, -EINVAL, "Invalid parameter '%s'", key);
        }
        /* QEMU words this differently for protocols and formats. */
        bool protocol = strncmp(what, "Block protocol ", 15) == 0;
        return error_setg(errp, -EINVAL, "%s %s support the option '%s'",
                          what, protocol ? "doesn't" : "does not", key);
    }
    return 0;
}

char *opts_to_string(const struct blk_opts *o)
{
    size_t len = 1;

    for (int i = 0; i < o->n; i++) {
        len += 2 * strlen(o->v[i].key) + 2 * strlen(o->v[i].value) + 2;
    }
    char *out = xmalloc(len), *q = out;
    for (int i = 0; i < o->n; i++) {
        if (i > 0) {
            *q++ = ',';
        }
        for (const char *s = o->v[i].key; *s; s++) {
            if (*s == ',') {
                *q++ = ',';
            }
            *q++ = *s;
        }
        *q++ = '=';
        for (const char *s = o->v[i].value; *s; s++) {
            if (*s == ',') {
                *q++ = ',';
            }
            *q++ = *s;
        }
    }
    *q = '\0';
    return out;
}

int opts_validate(const struct blk_opts *o, const struct blk_opt_desc *desc,
                  const char *fmt_name, struct strata_error **errp)
{
    for (int i = 0; i < o->n; i++) {
        const struct blk_opt *opt = &o->v[i];
        const struct blk_opt_desc *d = desc;
        uint64_t u;
        bool b;
        int ret;

        while (d && d->name && strcmp(d->name, opt->key) != 0) {
            d++;
        }
        if (!d || !d->name) {
            return error_setg(errp, -EINVAL, "Invalid parameter '%s'",
                              opt->key);
        }
        switch (d->type) {
        case OPT_STRING:
            break;
        case OPT_BOOL:
            if (parse_bool(opt->value, &b) < 0) {
                return bad_bool(errp, opt->key);
            }
            break;
        case OPT_NUMBER:
            ret = parse_number(opt->value, &u);
            if (ret < 0) {
                return bad_number(errp, ret, opt->key, opt->value);
            }
            break;
        case OPT_SIZE:
            ret = parse_size(opt->value, &u);
            if (ret < 0) {
                return bad_size(errp, ret, opt->key, opt->value);
            }
            break;
        }
    }
    return 0;
}

/* ---- scalar parsers ---- */

int parse_bool(const char *str, bool *out)
{
    static const char *const yes[] = { "on", "yes", "true", "y", "1" };
    static const char *const no[] = { "off", "no", "false", "n", "0" };

    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (strcmp(str, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(str, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

int parse_number(const char *str, uint64_t *out)
{
    unsigned long long v;
    char *end;

    errno = 0;
    v = strtoull(str, &end, 0);
    if (end == str || *end) {
        return -EINVAL;
    }
    if (errno == ERANGE) {
        return -ERANGE;
    }
    *out = v;
    return 0;
}

int parse_uint(const char *str, uint64_t *out)
{
    const char *p = str;
    int base = 10;
    uint64_t v = 0;

    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    if (!*p) {
        return -EINVAL;
    }
    for (; *p; p++) {
        unsigned d;
        if (*p >= '0' && *p <= '9') {
            d = *p - '0';
        } else if (base == 16 && *p >= 'a' && *p <= 'f') {
            d = *p - 'a' + 10;
        } else if (base == 16 && *p >= 'A' && *p <= 'F') {
            d = *p - 'A' + 10;
        } else {
            return -EINVAL;
        }
        if (v > (UINT64_MAX - d) / base) {
            /* Keep scanning: garbage later on is EINVAL, not ERANGE. */
            for (p++; *p; p++) {
                if (!(*p >= '0' && *p <= '9') &&
                    !(base == 16 && strchr("abcdefABCDEF", *p))) {
                    return -EINVAL;
                }
            }
            return -ERANGE;
        }
        v = v * base + d;
    }
    *out = v;
    return 0;
}

static locale_t c_locale;

static void c_locale_init(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/* A "C" locale object (or 0 if none could be made): "1.5" must not depend
 * on the LC_NUMERIC the program chose. */
static locale_t get_c_locale(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, c_locale_init);
    return c_locale;
}

static double strtod_c(const char *s, char **end)
{
    locale_t loc = get_c_locale();

    return loc ? strtod_l(s, end, loc) : strtod(s, end);
}

static int suffix_shift(char c)
{
    switch (c) {
    case 'b': case 'B': return 0;
    case 'k': case 'K': return 10;
    case 'm': case 'M': return 20;
    case 'g': case 'G': return 30;
    case 't': case 'T': return 40;
    case 'p': case 'P': return 50;
    case 'e': case 'E': return 60;
    default: return -1;
    }
}

/* QEMU's qemu_strtosz(), rule for rule (checked against qemu-img 7.2):
 * a decimal integer or 0x hex (7.2 allows a suffix after hex: "0x10k"); an
 * optional fraction, allowed only with a suffix other than B and rounded
 * to the nearest byte ("1.1k" is 1126); suffixes b k m g t p e in either
 * case; leading white space and '+' accepted as strtoull() does.  Sizes
 * above INT64_MAX are -ERANGE, as qemu-img refuses them for images. */
int parse_size(const char *str, uint64_t *out)
{
    const char *p = str;
    char *end;
    uint64_t val, frac = 0;

    while (*p == ' ' || (*p >= '\t' && *p <= '\r')) {
        p++;
    }
    if (*p == '-') {
        return -EINVAL;
    }
    if (*p == '+') {
        p++;
    }
    if (!(*p >= '0' && *p <= '9')) {
        return -EINVAL;
    }
    errno = 0;
    val = strtoull(p, &end, 10);
    if (errno == ERANGE) {
        return -ERANGE;
    }
    if (val == 0 && (*end == 'x' || *end == 'X')) {
        if (end != p + 1) {
            return -EINVAL; /* "00x10" */
        }
        const char *h = end + 1;
        if (!((*h >= '0' && *h <= '9') || (*h >= 'a' && *h <= 'f') ||
              (*h >= 'A' && *h <= 'F'))) {
            return -EINVAL;
        }
        errno = 0;
        val = strtoull(p, &end, 16);
        if (errno == ERANGE) {
            return -ERANGE;
        }
        if (*end == '.') {
            return -EINVAL; /* no hex fractions */
        }
    } else if (*end == '.') {
        const char *f = end + 1;
        const char *d = f;
        while (*d >= '0' && *d <= '9') {
            d++;
        }
        if (d == f) {
            end++; /* "1." and "1.k" are 1 and 1024 */
        } else {
            /* An exponent makes the whole input invalid ("1.5e3"), but a
             * bare 'e' after the digits is the exbibyte suffix ("1.5e"). */
            const char *x = d;
            if (*x == 'e' || *x == 'E') {
                x++;
                if (*x == '+' || *x == '-') {
                    x++;
                }
                if (*x >= '0' && *x <= '9') {
                    return -EINVAL;
                }
            }
            char *fend;
            /* Underflow (ERANGE) just means a fraction of about 0. */
            double fraction = strtod_c(end, &fend);
            if (fend != d) {
                return -EINVAL;
            }
            /* 64-bit fixed point; 0.99999... may round up to 1.0. */
            frac = fraction >= 1.0 ? UINT64_MAX
                                   : (uint64_t)(fraction * 0x1p64);
            end = (char *)d;
        }
    }
    int shift = suffix_shift(*end);
    if (shift >= 0) {
        end++;
    } else {
        shift = 0;
    }
    if (*end != '\0') {
        return -EINVAL;
    }
    if (shift == 0) {
        if (frac != 0) {
            return -EINVAL; /* fractional bytes */
        }
    } else {
        /* 64.64 fixed point times 2^shift, rounding half up. */
        unsigned __int128 r = ((unsigned __int128)val << shift) +
                              (((unsigned __int128)frac << shift) >> 64);
        r += (uint64_t)((unsigned __int128)frac << shift) >> 63;
        if (r > UINT64_MAX) {
            return -ERANGE;
        }
        val = (uint64_t)r;
    }
    if (val > INT64_MAX) {
        return -ERANGE;
    }
    *out = val;
    return 0;
}

/* QEMU's size_to_str(): three significant digits of the largest unit that
 * keeps the number under 1000 (so 1000 bytes is "0.977 KiB"). */
void format_size(uint64_t size, char *buf, size_t buflen)
{
    static const char *const suffixes[] = { "", "Ki", "Mi", "Gi", "Ti",
                                            "Pi", "Ei" };
    int i;

    frexp(size / (1000.0 / 1024.0), &i);
    i = (i - 1) / 10;
    if (i < 0) {
        i = 0;
    }
    uint64_t div = 1ULL << (i * 10);
    locale_t loc = get_c_locale(), old = (locale_t)0;

    if (loc) {
        old = uselocale(loc);
    }
    snprintf(buf, buflen, "%0.3g %sB", (double)size / div, suffixes[i]);
    if (loc) {
        uselocale(old);
    }
}
