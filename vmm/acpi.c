/* ACPI tables for direct kernel boot: RSDP (at 0xe0000, where a scan
 * finds it), XSDT, FADT (PM1a registers at 0x600: writing SLP_TYP 5 with
 * SLP_EN powers off; reset through 0xcf9), a DSDT holding \_S5 and a MADT
 * listing every vCPU, the IOAPIC and the ISA overrides. */
#include "config.h"

#include <string.h>

#include "vm.h"

#define ACPI_BASE 0xe0000ull

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static uint8_t csum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;

    for (size_t i = 0; i < n; i++) {
        s += p[i];
    }
    return (uint8_t)-s;
}

/* Fill a standard table header and its checksum (after the body). */
static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
    memcpy(t, sig, 4);
    put32(t + 4, len);
    t[8] = rev;
    memcpy(t + 10, "STRATA", 6);
    memcpy(t + 16, "STRATAVM", 8);
    put32(t + 24, 1);
    memcpy(t + 28, "STRA", 4);
    put32(t + 32, 1);
    t[9] = 0;
    t[9] = csum(t, len);
}

/* A Generic Address Structure for an I/O port block. */
static void gas_io(uint8_t *g, uint16_t port, uint8_t bits)
{
    g[0] = 1;
    g[1] = bits;
    g[2] = 0;
    g[3] = bits <= 8 ? 1 : bits <= 16 ? 2 : 3;
    put64(g + 4, port);
}

uint64_t vm_acpi_build(struct vm *vm)
{
    uint8_t *base = vm_gpa(vm, ACPI_BASE, 0x10000);
    uint64_t rsdp = ACPI_BASE, xsdt = ACPI_BASE + 0x40,
             fadt = ACPI_BASE + 0x100, dsdt = ACPI_BASE + 0x200,
             madt = ACPI_BASE + 0x300;

    if (!base) {
        return 0;
    }
    memset(base, 0, 0x1000);

    /* DSDT: Name (_S5, Package () { 5, 5, 0, 0 }) */
    static const uint8_t aml[] = {
        0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04,
        0x0a, VM_ACPI_SLP_TYP_S5, 0x0a, VM_ACPI_SLP_TYP_S5, 0x00, 0x00,
    };
    uint8_t *d = base + (dsdt - ACPI_BASE);
    memcpy(d + 36, aml, sizeof(aml));
    header(d, "DSDT", 36 + sizeof(aml), 2);

    /* FADT, revision 3 */
    uint8_t *f = base + (fadt - ACPI_BASE);
    put32(f + 40, (uint32_t)dsdt);
    f[46] = 9;                               /* SCI_INT */
    put32(f + 56, VM_ACPI_PM_BASE);          /* PM1a_EVT_BLK */
    put32(f + 64, VM_ACPI_PM_BASE + 4);      /* PM1a_CNT_BLK */
    put32(f + 76, VM_ACPI_PM_BASE + 8);      /* PM_TMR_BLK */
    f[88] = 4;
    f[89] = 2;
    f[91] = 4;
    f[96] = 0x65;                            /* no C2 */
    f[98] = 0xe9;                            /* no C3 (0x3e9) */
    f[99] = 0x03;
    f[108] = 0x32;                           /* CMOS century */
    f[109] = 0x02;                           /* 8042 present */
    put32(f + 112, (1u << 0) | (1u << 2) | (1u << 4) | (1u << 5) |
                   (1u << 10));              /* WBINVD C1 PWR/SLP_BUTTON
                                                RESET_REG_SUP */
    gas_io(f + 116, 0xcf9, 8);               /* RESET_REG */
    f[128] = 6;
    put64(f + 140, dsdt);                    /* X_DSDT */
    gas_io(f + 148, VM_ACPI_PM_BASE, 32);
    gas_io(f + 172, VM_ACPI_PM_BASE + 4, 16);
    gas_io(f + 208, VM_ACPI_PM_BASE + 8, 32);
    header(f, "FACP", 244, 3);

    /* MADT */
    uint8_t *m = base + (madt - ACPI_BASE);
    uint32_t n = 44;
    put32(m + 36, (uint32_t)VM_LAPIC_BASE);
    put32(m + 40, 1);                        /* PCAT_COMPAT: 8259s too */
    for (int i = 0; i < vm->ncpus; i++) {
        m[n] = 0;
        m[n + 1] = 8;
        m[n + 2] = i;
        m[n + 3] = i;
        put32(m + n + 4, 1);
        n += 8;
    }
    m[n] = 1;                                /* IOAPIC, id 0 */
    m[n + 1] = 12;
    m[n + 2] = 0;
    put32(m + n + 4, (uint32_t)VM_IOAPIC_BASE);
    put32(m + n + 8, 0);
    n += 12;
    static const uint8_t iso[2][4] = {{0, 2, 0, 0}, {9, 9, 0x0d, 0}};
    for (int i = 0; i < 2; i++) {
        m[n] = 2;
        m[n + 1] = 10;
        m[n + 2] = 0;                        /* ISA */
        m[n + 3] = iso[i][0];
        put32(m + n + 4, iso[i][1]);
        m[n + 8] = iso[i][2];
        m[n + 9] = iso[i][3];
        n += 10;
    }
    header(m, "APIC", n, 3);

    /* XSDT */
    uint8_t *x = base + (xsdt - ACPI_BASE);
    put64(x + 36, fadt);
    put64(x + 44, madt);
    header(x, "XSDT", 52, 1);

    /* RSDP, revision 2 */
    uint8_t *r = base;
    memcpy(r, "RSD PTR ", 8);
    memcpy(r + 9, "STRATA", 6);
    r[15] = 2;
    put32(r + 16, 0);
    put32(r + 20, 36);
    put64(r + 24, xsdt);
    r[8] = csum(r, 20);
    r[32] = csum(r, 36);
    return rsdp;
}
