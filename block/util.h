/* Small helpers used across the library: allocation that never returns
 * NULL (out of memory aborts, as nothing sensible can continue), rounding. */
#ifndef BLOCK_UTIL_H
#define BLOCK_UTIL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define ROUND_DOWN(n, a) ((n) / (a) * (a))
#define ROUND_UP(n, a) (DIV_ROUND_UP(n, a) * (a))

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        abort();
    }
    return p;
}

static inline void *xzalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        abort();
    }
    return p;
}

static inline void *xrealloc(void *old, size_t n)
{
    void *p = realloc(old, n ? n : 1);
    if (!p) {
        abort();
    }
    return p;
}

static inline char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p) {
        abort();
    }
    return p;
}

__attribute__((format(printf, 1, 2)))
static inline char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *p;
    va_start(ap, fmt);
    int n = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (n < 0) {
        abort();
    }
    return p;
}

/* Aligned allocation for O_DIRECT buffers; free with free(). */
static inline void *xmemalign(size_t align, size_t n)
{
    void *p;
    if (posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align,
                       n ? n : 1) != 0) {
        abort();
    }
    return p;
}

#endif
