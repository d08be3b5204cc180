/* The test guest's small runtime (see guest.h). */
#include "guest.h"

/* ---- output ---- */

static void putc_(char c)
{
    if (c == '\n') {
        putc_('\r');
    }
    for (int i = 0; i < 100000 && !(inb(0x3f8 + 5) & 0x20); i++) {
    }
    outb(0x3f8, c);
}

void puts_(const char *s)
{
    while (*s) {
        putc_(*s++);
    }
}

static void putnum(uint64_t v, unsigned base, int width, char pad)
{
    char b[24];
    int n = 0;

    do {
        b[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n < width--) {
        putc_(pad);
    }
    while (n) {
        putc_(b[--n]);
    }
}

/* %s %c %d %u %x %p with l/ll and a zero-padded width. */
void printf_(const char *f, ...)
{
    va_list ap;

    va_start(ap, f);
    for (; *f; f++) {
        if (*f != '%') {
            putc_(*f);
            continue;
        }
        f++;
        char pad = ' ';
        int width = 0, lng = 0;
        if (*f == '0') {
            pad = '0';
            f++;
        }
        while (*f >= '0' && *f <= '9') {
            width = width * 10 + (*f++ - '0');
        }
        while (*f == 'l') {
            lng++;
            f++;
        }
        switch (*f) {
        case 's': puts_(va_arg(ap, const char *)); break;
        case 'c': putc_((char)va_arg(ap, int)); break;
        case 'd': {
            int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
            if (v < 0) {
                putc_('-');
                v = -v;
            }
            putnum(v, 10, width, pad);
            break;
        }
        case 'u':
            putnum(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10,
                   width, pad);
            break;
        case 'x':
            putnum(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16,
                   width, pad);
            break;
        default: putc_(*f); break;
        }
    }
    va_end(ap);
}

void *memset_(void *d, int c, size_t n)
{
    uint8_t *p = d;
    while (n--) {
        *p++ = c;
    }
    return d;
}
void *memset(void *d, int c, size_t n) { return memset_(d, c, n); }
void *memcpy(void *d, const void *s, size_t n)
{
    uint8_t *a = d;
    const uint8_t *b = s;
    while (n--) {
        *a++ = *b++;
    }
    return d;
}

void debug_exit(uint8_t status)
{
    outb(0xf4, status);
    for (;;) {
        __asm__ volatile("cli; hlt");
    }
}

uint64_t parse_num(const char **s)
{
    uint64_t v = 0;
    unsigned base = 10;

    if ((*s)[0] == '0' && ((*s)[1] == 'x' || (*s)[1] == 'X')) {
        base = 16;
        *s += 2;
    }
    for (;; (*s)++) {
        char c = **s;
        unsigned d = c >= '0' && c <= '9' ? c - '0'
                   : c >= 'a' && c <= 'f' ? c - 'a' + 10
                   : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 99;
        if (d >= base) {
            return v;
        }
        v = v * base + d;
    }
}

bool starts(const char *s, const char *p)
{
    while (*p) {
        if (*s++ != *p++) {
            return false;
        }
    }
    return true;
}
