#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "util.h"

/* Messages end without a newline; callers add their own when printing. */
static void strip_trailing_newlines(char *msg)
{
    size_t len = strlen(msg);

    while (len > 0 && msg[len - 1] == '\n') {
        msg[--len] = '\0';
    }
}

__attribute__((format(printf, 1, 0)))
static char *xvasprintf(const char *fmt, va_list ap)
{
    char *p;

    if (vasprintf(&p, fmt, ap) < 0) {
        abort();
    }
    return p;
}

/* Text for a negative (or positive) errno; glibc's strerror keeps unknown
 * codes in a per-thread buffer, so this is safe from any thread. */
static const char *errno_text(int code)
{
    return strerror(code < 0 ? -code : code);
}

void strata_error_free(struct strata_error *err)
{
    if (err) {
        free(err->msg);
        free(err);
    }
}

int error_vsetg(struct strata_error **errp, int code, const char *fmt,
                va_list ap)
{
    if (!errp || *errp) {
        return code;
    }
    struct strata_error *err = xmalloc(sizeof(*err));
    err->code = code;
    err->msg = xvasprintf(fmt, ap);
    strip_trailing_newlines(err->msg);
    *errp = err;
    return code;
}

int error_setg(struct strata_error **errp, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_vsetg(errp, code, fmt, ap);
    va_end(ap);
    return code;
}

int error_setg_errno(struct strata_error **errp, int code, const char *fmt,
                     ...)
{
    va_list ap;

    if (!errp || *errp) {
        return code;
    }
    va_start(ap, fmt);
    error_vsetg(errp, code, fmt, ap);
    va_end(ap);

    struct strata_error *err = *errp;
    char *msg = xasprintf("%s: %s", err->msg, errno_text(code));
    free(err->msg);
    err->msg = msg;
    return code;
}

void error_prepend(struct strata_error **errp, const char *fmt, ...)
{
    va_list ap;

    if (!errp || !*errp) {
        return;
    }
    va_start(ap, fmt);
    char *prefix = xvasprintf(fmt, ap);
    va_end(ap);

    struct strata_error *err = *errp;
    char *msg = xasprintf("%s%s", prefix, err->msg);
    free(prefix);
    free(err->msg);
    err->msg = msg;
}

void error_propagate(struct strata_error **dst, struct strata_error *err)
{
    if (!err) {
        return;
    }
    if (dst && !*dst) {
        *dst = err;
    } else {
        strata_error_free(err);
    }
}

const char *error_msg(const struct strata_error *err, int code)
{
    if (err && err->msg) {
        return err->msg;
    }
    return errno_text(code);
}
