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
static inline uint32_t pci_read(int slot, int off)
{
    outl(0xcf8, 0x80000000u | (slot << 11) | (off & 0xfc));
    return inl(0xcfc);
}
static inline void pci_write(int slot, int off, uint32_t v)
{
    outl(0xcf8, 0x80000000u | (slot << 11) | (off & 0xfc));
    outl(0xcfc, v);
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

/* guest.c: count a failed check and say what failed */
void fail(const char *what);

/* platform.c */
/* About n port-0x80 accesses (each a VM exit) of delay. */
void delay(int n);
/* Start the other want-1 vCPUs (INIT-SIPI) and check they came up. */
void op_cpus(uint64_t want);
/* Power off through ACPI (FADT PM1a_CNT, \_S5 of the DSDT). */
void acpi_poweroff(void);

/* intr.c: interrupts for irq=msix|intx */
#define VEC_TIMER 0x30
#define VEC_MSIX 0x40
#define VEC_INTX 0x42
#define VEC_MSIX_ALT 0x44
extern volatile uint32_t ticks;         /* 10 ms LAPIC timer ticks */
extern volatile uint32_t dev_irqs;      /* device interrupts taken */
extern volatile uint32_t alt_irqs;      /* ... of them on VEC_MSIX_ALT */
extern volatile uint32_t intx_spurious; /* INTx with the ISR clear */
extern volatile bool intx_skip_isr;     /* next INTx leaves the ISR set */
extern int msix_cap;
/* IDT, LAPIC and its timer, 8259s masked; interrupts on. */
void intr_init(void);
void intr_wait(void);
void intr_delay(uint32_t ticks);
/* Level-triggered IOAPIC pin -> VEC_INTX; isr: the virtio ISR byte. */
void intx_setup(int pin, uintptr_t isr);
/* Program every MSI-X entry of `slot` (data = vector) and enable MSI-X. */
bool msix_setup(int slot, uint64_t (*bar)(int, int),
                volatile uint32_t **table, volatile uint32_t **pba,
                int vector0_data);
void msix_function_mask(int slot, bool on);

#endif
