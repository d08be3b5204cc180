/* Minimal TAP output for the C unit tests. */
#ifndef TESTS_TAP_H
#define TESTS_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_n, tap_failed;

static inline void tap_plan(int n) { printf("1..%d\n", n); fflush(stdout); }

__attribute__((format(printf, 2, 3)))
static inline int tap_ok(int cond, const char *fmt, ...)
{
    va_list ap;
    printf("%s %d - ", cond ? "ok" : "not ok", ++tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    if (!cond) {
        tap_failed++;
    }
    return cond;
}

#define tap_is(got, want, what)                                              \
    do {                                                                     \
        long long g_ = (long long)(got), w_ = (long long)(want);            \
        if (!tap_ok(g_ == w_, "%s", what)) {                                 \
            printf("#   got %lld, want %lld (%s:%d)\n", g_, w_, __FILE__,   \
                   __LINE__);                                                \
        }                                                                    \
    } while (0)

static inline int tap_done(void)
{
    return tap_failed ? 1 : 0;
}

#endif
