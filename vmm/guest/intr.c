/* The test guest's interrupts (irq=msix|intx): an IDT, the local APIC
 * with a periodic timer (a watchdog while the guest sleeps in hlt), the
 * 8259s masked, an IOAPIC entry for a level-triggered INTx line, and the
 * MSI-X table of a PCI function. */
#include "guest.h"

#define LAPIC 0xfee00000ul
#define IOAPIC 0xfec00000ul

struct interrupt_frame;

volatile uint32_t ticks, dev_irqs, alt_irqs, intx_spurious;
volatile bool intx_skip_isr;
int msix_cap;
static uintptr_t intx_isr;

struct idt_gate {
    uint16_t off0, sel;
    uint8_t ist, type;
    uint16_t off1;
    uint32_t off2, zero;
};
static struct idt_gate idt[256] __attribute__((aligned(16)));

static void eoi(void)
{
    MMIO(uint32_t, LAPIC + 0xb0) = 0;
}

__attribute__((interrupt)) static void on_timer(struct interrupt_frame *f)
{
    (void)f;
    ticks++;
    eoi();
}

__attribute__((interrupt)) static void on_msix(struct interrupt_frame *f)
{
    (void)f;
    dev_irqs++;
    eoi();
}

__attribute__((interrupt)) static void on_msix_alt(struct interrupt_frame *f)
{
    (void)f;
    dev_irqs++;
    alt_irqs++;
    eoi();
}

/* Level-triggered: reading the ISR releases the line; with
 * intx_skip_isr the first interrupt leaves it set, so the line must come
 * back right after the EOI. */
__attribute__((interrupt)) static void on_intx(struct interrupt_frame *f)
{
    (void)f;
    if (intx_skip_isr) {
        intx_skip_isr = false;
        dev_irqs++;
    } else if (MMIO(uint8_t, intx_isr) & 1) {
        dev_irqs++;
    } else {
        intx_spurious++;
    }
    eoi();
}

__attribute__((interrupt)) static void on_spurious(struct interrupt_frame *f)
{
    (void)f;
}

static void set_gate(int vec, void (*h)(struct interrupt_frame *))
{
    uint64_t a = (uintptr_t)h;
    idt[vec] = (struct idt_gate){(uint16_t)a, 0x08, 0, 0x8e,
                                 (uint16_t)(a >> 16), (uint32_t)(a >> 32), 0};
}

void intr_init(void)
{
    struct __attribute__((packed)) { uint16_t lim; uint64_t base; } p = {
        sizeof(idt) - 1, (uintptr_t)idt};

    set_gate(VEC_TIMER, on_timer);
    set_gate(VEC_MSIX, on_msix);
    set_gate(VEC_MSIX_ALT, on_msix_alt);
    set_gate(VEC_INTX, on_intx);
    set_gate(0xff, on_spurious);
    __asm__ volatile("lidt %0" : : "m"(p));
    outb(0x21, 0xff);                         /* both 8259s masked */
    outb(0xa1, 0xff);
    MMIO(uint32_t, LAPIC + 0xf0) = 0x1ff;     /* enabled, spurious 0xff */
    MMIO(uint32_t, LAPIC + 0x80) = 0;         /* TPR */
    MMIO(uint32_t, LAPIC + 0x350) |= 1u << 16; /* LINT0 (ExtINT) masked */
    MMIO(uint32_t, LAPIC + 0x3e0) = 0xb;      /* divide by 1 */
    MMIO(uint32_t, LAPIC + 0x320) = (1u << 17) | VEC_TIMER; /* periodic */
    MMIO(uint32_t, LAPIC + 0x380) = 10000000; /* 10 ms at KVM's 1 GHz */
    __asm__ volatile("sti");
}

/* Sleep until an interrupt (timer, device) arrives. */
void intr_wait(void)
{
    __asm__ volatile("hlt" ::: "memory");
}

/* Busy-wait about n timer ticks (10 ms each). */
void intr_delay(uint32_t n)
{
    uint32_t t0 = ticks;
    while (ticks - t0 < n) {
        intr_wait();
    }
}

static void ioapic_write(uint32_t reg, uint32_t v)
{
    MMIO(uint32_t, IOAPIC) = reg;
    MMIO(uint32_t, IOAPIC + 0x10) = v;
}

void intx_setup(int pin, uintptr_t isr)
{
    intx_isr = isr;
    ioapic_write(0x11 + 2 * pin, 0);                     /* to APIC 0 */
    ioapic_write(0x10 + 2 * pin, (1u << 15) | VEC_INTX); /* level, high */
}

/* MSI-X of PCI function `slot`: table entries 0..n-1 to the BSP. */
bool msix_setup(int slot, uint64_t (*bar)(int, int), volatile uint32_t **table,
                volatile uint32_t **pba, int vector0_data)
{
    int cap = 0;

    for (int p = pci_read(slot, 0x34) & 0xff; p;) {
        uint32_t h = pci_read(slot, p);
        if ((h & 0xff) == 0x11) {
            cap = p;
            break;
        }
        p = (h >> 8) & 0xff;
    }
    if (!cap) {
        return false;
    }
    uint32_t t = pci_read(slot, cap + 4), b = pci_read(slot, cap + 8);
    *table = (volatile uint32_t *)(uintptr_t)(bar(slot, t & 7) + (t & ~7u));
    *pba = (volatile uint32_t *)(uintptr_t)(bar(slot, b & 7) + (b & ~7u));
    int n = ((pci_read(slot, cap) >> 16) & 0x7ff) + 1;
    for (int v = 0; v < n; v++) {
        (*table)[4 * v + 0] = LAPIC;  /* destination APIC 0, fixed */
        (*table)[4 * v + 1] = 0;
        (*table)[4 * v + 2] = vector0_data;
        (*table)[4 * v + 3] = 0;      /* unmasked */
    }
    pci_write(slot, cap, pci_read(slot, cap) | (1u << 31)); /* enable */
    msix_cap = cap;
    return true;
}

/* Set or clear the function mask bit of the MSI-X capability. */
void msix_function_mask(int slot, bool on)
{
    uint32_t v = pci_read(slot, msix_cap);
    pci_write(slot, msix_cap, on ? v | (1u << 30) : v & ~(1u << 30));
}
