/* Error objects for the library's control paths (open, create, check...).
 * A function that fails stores one error in *errp (if errp is non-NULL and
 * *errp is still NULL: the first error wins) and returns its negative errno,
 * so a failure reads `return error_setg(errp, -EINVAL, "...");`. */
#ifndef BLOCK_ERROR_H
#define BLOCK_ERROR_H

#include <stdarg.h>
#include "strata/strata.h"

/* Record `code` (a negative errno) with a printf-style message; returns code. */
int error_setg(struct strata_error **errp, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like error_setg, with ": <strerror(-code)>" appended to the message. */
int error_setg_errno(struct strata_error **errp, int code, const char *fmt,
                     ...) __attribute__((format(printf, 3, 4)));
int error_vsetg(struct strata_error **errp, int code, const char *fmt,
                va_list ap) __attribute__((format(printf, 3, 0)));
/* Put "<prefix>" in front of an already set message (no-op when unset). */
void error_prepend(struct strata_error **errp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Move `err` into *dst (freeing it if *dst is already set or dst is NULL). */
void error_propagate(struct strata_error **dst, struct strata_error *err);
/* A copy of the message, or strerror(-code) when err is NULL. */
const char *error_msg(const struct strata_error *err, int code);

#endif
