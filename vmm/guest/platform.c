/* The test guest's platform operations: starting the other vCPUs
 * (INIT-SIPI through the local APIC) and ACPI power-off. */
#include "guest.h"

extern uint32_t ap_count, ap_ids[16];
extern char ap_tramp[], ap_tramp_end[];

void delay(int n)
{
    for (int i = 0; i < n; i++) {
        inb(0x80);
    }
}

void op_cpus(uint64_t want)
{
    uintptr_t lapic = 0xfee00000;

    memcpy((void *)0x8000, ap_tramp, ap_tramp_end - ap_tramp);
    MMIO(uint32_t, lapic + 0xf0) = 0x1ff;          /* software enable */
    MMIO(uint32_t, lapic + 0x310) = 0;
    MMIO(uint32_t, lapic + 0x300) = 0x000c4500;    /* INIT, all but self */
    delay(10); /* each port access is a VM exit: microseconds at least */
    for (int i = 0; i < 2; i++) {
        MMIO(uint32_t, lapic + 0x310) = 0;
        MMIO(uint32_t, lapic + 0x300) = 0x000c4608; /* SIPI vector 8 */
        delay(2);
    }
    for (int spin = 0; spin < 20000 &&
         __atomic_load_n(&ap_count, __ATOMIC_SEQ_CST) < want - 1; spin++) {
        delay(1);
    }
    uint32_t n = __atomic_load_n(&ap_count, __ATOMIC_SEQ_CST);
    printf_("cpus: %u online (bsp apic %u", n + 1,
            MMIO(uint32_t, lapic + 0x20) >> 24);
    for (uint32_t i = 0; i < n && i < 16; i++) {
        printf_(", ap apic %u", ap_ids[i]);
    }
    printf_(")\n");
    if (n + 1 != want) {
        fail("secondary vCPUs did not come up");
    }
}

/* Power off through ACPI: RSDP -> XSDT/RSDT -> FADT PM1a_CNT, and the
 * SLP_TYPa of \_S5 from the DSDT. */
void acpi_poweroff(void)
{
    uint8_t *rsdp = 0;
    for (uintptr_t a = 0xe0000; a < 0x100000; a += 16) {
        if (starts((const char *)a, "RSD PTR ")) {
            rsdp = (uint8_t *)a;
            break;
        }
    }
    if (!rsdp) {
        puts_("poweroff: no ACPI tables\n");
        return;
    }
    bool x = rsdp[15] >= 2;
    uint8_t *sdt = (uint8_t *)(uintptr_t)(x ? *(uint64_t *)(rsdp + 24)
                                            : *(uint32_t *)(rsdp + 16));
    uint32_t len = *(uint32_t *)(sdt + 4);
    for (uint32_t o = 36; o < len; o += x ? 8 : 4) {
        uint8_t *t = (uint8_t *)(uintptr_t)(x ? *(uint64_t *)(sdt + o)
                                              : *(uint32_t *)(sdt + o));
        if (!starts((const char *)t, "FACP")) {
            continue;
        }
        uint16_t cnt = *(uint32_t *)(t + 64);
        uint8_t *dsdt = (uint8_t *)(uintptr_t)*(uint32_t *)(t + 40);
        uint32_t dl = *(uint32_t *)(dsdt + 4);
        uint16_t typ = 0;
        for (uint32_t i = 36; i + 10 < dl; i++) {
            if (starts((const char *)dsdt + i, "_S5_") &&
                dsdt[i + 4] == 0x12) {
                uint8_t *p = dsdt + i + 7; /* after PkgLength, NumElements */
                typ = *p == 0x0a ? p[1] : *p == 0x01 ? 1 : 0;
                break;
            }
        }
        printf_("poweroff: PM1a_CNT 0x%x SLP_TYP %u\n", cnt, typ);
        outw(cnt, (typ << 10) | (1u << 13));
        delay(100000);
    }
    puts_("poweroff: did not power off\n");
}
