/* Helpers shared by the command-line tools: messages, opening images the
 * way qemu-img and qemu-io do, QEMU's size syntax, QEMU's JSON key order,
 * --object secrets and the -p progress bar. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img-common.h"
#include "util.h"

/* Weak so that a program may define its own; the mains set it anyway. */
__attribute__((weak)) const char *tool_name = "strata";

void tool_error(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fprintf(stderr, "%s: ", tool_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void tool_report(struct strata_error *err, int code)
{
    tool_error("%s", error_msg(err, code));
    strata_error_free(err);
}

/* ---- opening images ---- */

int tool_open(struct blk_node **out, const char *name, const char *fmt,
              bool image_opts, const char *cache, unsigned flags, bool quiet,
              const struct blk_opts *extra_opts, struct strata_error **errp)
{
    struct blk_opts *opts = opts_new();
    const char *filename = name;
    int ret;

    *out = NULL;
    if (blk_parse_cache_mode(cache, &flags) < 0) {
        ret = error_setg(errp, -EINVAL, "Invalid cache option: %s", cache);
        goto out;
    }
    if (image_opts) {
        if (fmt) {
            ret = error_setg(errp, -EINVAL,
                             "--image-opts and --format are mutually "
                             "exclusive");
            goto out;
        }
        ret = opts_parse(opts, name, "file.filename", errp);
        if (ret < 0) {
            goto out;
        }
        if ((flags & BLK_O_FORCE_SHARE) && opts_has(opts, "force-share")) {
            bool fs = true;
            parse_bool(opts_get(opts, "force-share"), &fs);
            if (!fs) {
                ret = error_setg(errp, -EINVAL,
                                 "--force-share/-U conflicts with image "
                                 "options");
                goto out;
            }
        }
        filename = NULL;
    } else if (fmt) {
        opts_set(opts, "driver", fmt);
    }
    for (int i = 0; extra_opts && i < extra_opts->n; i++) {
        opts_set(opts, extra_opts->v[i].key, extra_opts->v[i].value);
    }

    ret = blk_open(out, filename, opts, flags, errp);
    if (ret < 0) {
        goto out;
    }
    if (!quiet && ((*out)->flags & BLK_O_PROBED) && !(*out)->read_only) {
        struct blk_node *file = (*out)->file ? (*out)->file : *out;
        fflush(stdout);
        fprintf(stderr,
                "WARNING: Image format was not specified for '%s' and "
                "probing guessed raw.\n"
                "         Automatically detecting the format is dangerous "
                "for raw images, write operations on block 0 will be "
                "restricted.\n"
                "         Specify the 'raw' format explicitly to remove the "
                "restrictions.\n",
                file->filename);
    }
out:
    opts_free(opts);
    return ret;
}

/* ---- sizes ---- */

/* Multiplier of a size suffix (QEMU's suffix_mul), or 0. */
static uint64_t suffix_mul(char c)
{
    switch (c) {
    case 'B': case 'b': return 1;
    case 'K': case 'k': return 1ULL << 10;
    case 'M': case 'm': return 1ULL << 20;
    case 'G': case 'g': return 1ULL << 30;
    case 'T': case 't': return 1ULL << 40;
    case 'P': case 'p': return 1ULL << 50;
    case 'E': case 'e': return 1ULL << 60;
    }
    return 0;
}

/* strtoull with qemu_strtou64()'s contract: some digits, errno mapped. */
static int strtou64(const char *s, const char **end, int base, uint64_t *out)
{
    char *e;

    errno = 0;
    *out = strtoull(s, &e, base);
    *end = e;
    if (e == s) {
        return -EINVAL;
    }
    return errno == ERANGE ? -ERANGE : 0;
}

int tool_strtosz(const char *s, uint64_t *out)
{
    const char *end;
    uint64_t val, valf = 0, mul;
    bool hex = false;
    int ret;

    ret = strtou64(s, &end, 10, &val);
    if (ret < 0) {
        return ret;
    }
    if (memchr(s, '-', end - s)) {
        return -EINVAL;
    }
    if (val == 0 && (*end == 'x' || *end == 'X')) {
        ret = strtou64(s, &end, 16, &val);
        if (ret < 0) {
            return ret;
        }
        if (*end == '.') {
            return -EINVAL;
        }
        hex = true;
    } else if (*end == '.') {
        /* "1.k" is fine; an exponent makes the whole input invalid. */
        const char *f = end;
        char *fe;
        double fraction;

        errno = 0;
        fraction = strtod(f, &fe);
        if (fe == f || errno) {
            end = f + 1;
        } else if (memchr(f, 'e', fe - f) || memchr(f, 'E', fe - f)) {
            return -EINVAL;
        } else {
            end = fe;
            /* 64-bit fixed-point fraction; 1.0 wraps to 0 as in QEMU. */
            valf = fraction < 1.0 ? (uint64_t)(fraction * 0x1p64) : 0;
        }
    }
    mul = suffix_mul(*end);
    if (mul) {
        if (hex) {
            fflush(stdout);
            fprintf(stderr, "%s: warning: Using a multiplier suffix on hex "
                    "numbers is deprecated: %s\n", tool_name, s);
        }
        end++;
    } else {
        mul = 1;
    }
    if (*end) {
        return -EINVAL;
    }
    if (mul == 1) {
        if (valf) {
            return -EINVAL; /* a fraction needs a scale */
        }
    } else {
        unsigned __int128 r = (unsigned __int128)val * mul;
        unsigned __int128 rf = (unsigned __int128)valf * mul;
        r += rf >> 64;
        r += ((uint64_t)rf) >> 63; /* round 0.5 up */
        if (r >> 64) {
            return -ERANGE;
        }
        val = (uint64_t)r;
    }
    *out = val;
    return 0;
}

int tool_cvtnum(const char *what, const char *s, int64_t min, int64_t max,
                int64_t *out)
{
    uint64_t v;
    int ret = tool_strtosz(s, &v);

    if (ret < 0 && ret != -ERANGE) {
        tool_error("Invalid %s specified. You may use k, M, G, T, P or E "
                   "suffixes for", what);
        tool_error("kilobytes, megabytes, gigabytes, terabytes, petabytes "
                   "and exabytes.");
        return ret;
    }
    if (ret == -ERANGE || v > (uint64_t)INT64_MAX || (int64_t)v > max ||
        (int64_t)v < min) {
        tool_error("Invalid %s specified. Must be between %lld and %lld.",
                   what, (long long)min, (long long)max);
        return -ERANGE;
    }
    *out = (int64_t)v;
    return 0;
}

int tool_parse_size(const char *s, uint64_t *out)
{
    int64_t v;
    int ret = tool_cvtnum("size", s, 0, INT64_MAX, &v);

    if (ret == 0) {
        *out = (uint64_t)v;
    }
    return ret;
}

/* ---- QEMU's JSON key order ---- */

/* QEMU's QDict bucket of a key: tdb_hash() modulo 512 buckets. */
static unsigned qdict_bucket(const char *name)
{
    unsigned value = 0x238F13AF * (unsigned)strlen(name);

    for (unsigned i = 0; name[i]; i++) {
        value += (unsigned)(unsigned char)name[i] << (i * 5 % 24);
    }
    return (1103515243 * value + 12345) % 512;
}

/* QDict iterates buckets in order, newest entry first within a bucket. */
static int qdict_cmp(const void *a, const void *b)
{
    const int *x = a, *y = b;

    if (x[0] != y[0]) {
        return x[0] - y[0];
    }
    return y[1] - x[1];
}

void tool_json_qemu_order(struct json *j)
{
    if (!j || (j->type != JSON_OBJECT && j->type != JSON_ARRAY)) {
        return;
    }
    for (int i = 0; i < j->c.n; i++) {
        tool_json_qemu_order(j->c.items[i]);
    }
    if (j->type != JSON_OBJECT || j->c.n < 2) {
        return;
    }

    int n = j->c.n;
    int (*order)[2] = xmalloc(sizeof(*order) * n);
    struct json **items = xmalloc(sizeof(*items) * n);
    char **keys = xmalloc(sizeof(*keys) * n);

    for (int i = 0; i < n; i++) {
        order[i][0] = (int)qdict_bucket(j->c.keys[i]);
        order[i][1] = i;
    }
    qsort(order, n, sizeof(*order), qdict_cmp);
    for (int i = 0; i < n; i++) {
        items[i] = j->c.items[order[i][1]];
        keys[i] = j->c.keys[order[i][1]];
    }
    memcpy(j->c.items, items, sizeof(*items) * n);
    memcpy(j->c.keys, keys, sizeof(*keys) * n);
    free(order);
    free(items);
    free(keys);
}

/* ---- --object ---- */

struct tool_secret {
    char *id;
    char *data;
};
static struct tool_secret *secrets;
static int nsecrets;

/* Read a whole small file for secret,file=... */
static char *read_secret_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, alloc = 0, n;

    if (!f) {
        tool_error("Unable to read %s: %s", path, strerror(errno));
        return NULL;
    }
    do {
        if (len + 4096 + 1 > alloc) {
            alloc = (len + 4096 + 1) * 2;
            buf = xrealloc(buf, alloc);
        }
        n = fread(buf + len, 1, 4096, f);
        len += n;
    } while (n > 0);
    fclose(f);
    buf[len] = '\0';
    return buf;
}

int tool_object_add(const char *spec)
{
    struct strata_error *err = NULL;
    struct blk_opts *o = opts_new();
    const char *type, *id, *data, *file;
    char *value = NULL;
    int ret = -1;

    if (opts_parse(o, spec, "qom-type", &err) < 0) {
        tool_report(err, -EINVAL);
        goto out;
    }
    type = opts_get(o, "qom-type");
    id = opts_get(o, "id");
    data = opts_get(o, "data");
    file = opts_get(o, "file");
    opts_get(o, "format"); /* raw/base64: only raw data is used */
    if (!type) {
        tool_error("Parameter 'qom-type' is missing");
        goto out;
    }
    if (strcmp(type, "secret") != 0) {
        tool_error("Parameter 'qom-type' does not accept value '%s'", type);
        goto out;
    }
    if (!id) {
        tool_error("Parameter 'id' is missing");
        goto out;
    }
    if (opts_check_unused(o, NULL, &err) < 0) {
        tool_report(err, -EINVAL);
        goto out;
    }
    if (!!data == !!file) {
        tool_error("Either 'file' or 'data' must be provided");
        goto out;
    }
    value = data ? xstrdup(data) : read_secret_file(file);
    if (!value) {
        goto out;
    }
    for (int i = 0; i < nsecrets; i++) {
        if (strcmp(secrets[i].id, id) == 0) {
            tool_error("attempt to add duplicate property '%s' to object "
                       "(type 'container')", id);
            free(value);
            goto out;
        }
    }
    secrets = xrealloc(secrets, sizeof(*secrets) * (nsecrets + 1));
    secrets[nsecrets].id = xstrdup(id);
    secrets[nsecrets].data = value;
    nsecrets++;
    ret = 0;
out:
    opts_free(o);
    return ret;
}

const char *tool_secret_get(const char *id)
{
    for (int i = 0; i < nsecrets; i++) {
        if (strcmp(secrets[i].id, id) == 0) {
            return secrets[i].data;
        }
    }
    return NULL;
}

/* ---- progress ---- */

void tool_progress_init(struct tool_progress *p, bool enabled)
{
    p->enabled = enabled;
    p->last = 0;
    p->current = 0;
    p->min_skip = 1.0;
}

/* Redraw as qemu-img does: at 0 and 100, and after moving by min_skip. */
void tool_progress_update(struct tool_progress *p, uint64_t done,
                          uint64_t total)
{
    double cur = total ? (double)done * 100.0 / (double)total : 0.0;

    if (cur > 100) {
        cur = 100;
    }
    p->current = cur;
    if (!p->enabled) {
        return;
    }
    if (cur > p->last + p->min_skip || cur < p->last - p->min_skip ||
        cur == 0 || cur == 100) {
        p->last = cur;
        printf("    (%3.2f/100%%)\r", cur);
        fflush(stdout);
    }
}

void tool_progress_end(struct tool_progress *p)
{
    if (p->enabled) {
        printf("\n");
        fflush(stdout);
    }
}
