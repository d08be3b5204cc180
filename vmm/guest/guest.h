/* The test guest's small runtime: port I/O, COM1 output, memory
 * helpers, parsing, and leaving through the debug-exit port. */
#ifndef GUEST_H
#define GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline void outb(uint16_t p, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(p));
}
static inline void outl(uint16_t p, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(p));
}
static inline void outw(uint16_t p, uint16_t v)
{
    __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(p));
}
static inline uint8_t inb(uint16_t p)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p));
    return v;
}
static inline uint32_t inl(uint16_t p)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(p));
    return v;
}
#define MMIO(t, a) (*(volatile t *)(uintptr_t)(a))
#define barrier() __asm__ volatile("mfence" ::: "memory")

void puts_(const char *s);
/* %s %c %d %u %x with l/ll and a zero-padded width, to COM1. */
void printf_(const char *f, ...) __attribute__((format(printf, 1, 2)));
void *memset_(void *d, int c, size_t n);
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
/* isa-debug-exit: the runner ends with status (status << 1) | 1. */
void debug_exit(uint8_t status) __attribute__((noreturn));
/* A decimal or 0x number at *s; *s is left after it. */
uint64_t parse_num(const char **s);
/* True when s starts with p. */
bool starts(const char *s, const char *p);

#endif
