/* PCI host bridge (configuration mechanism #1) and bus-0 devices. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pci.h"
#include "vm.h"

struct pci_host {
    struct vm *vm;
    uint32_t addr; /* the last value written to 0xcf8 */
    struct vm_region addr_r, data_r;
};

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

uint64_t pci_bar_addr(struct pci_dev *d, int bar)
{
    if (!(d->cfg[4] & 2) || !d->bar_size[bar]) {
        return 0;
    }
    return get32(&d->cfg[0x10 + 4 * bar]) & ~(d->bar_size[bar] - 1);
}

/* Move the BAR regions to where the guest put them. */
static void pci_update_bars(struct pci_dev *d)
{
    for (int i = 0; i < PCI_MAX_BARS; i++) {
        struct vm_region *r = d->bar_region[i];
        if (!r) {
            continue;
        }
        uint64_t a = pci_bar_addr(d, i);
        r->base = a;
        /* an unassigned or sizing-probe address decodes nothing */
        r->active = a != 0 && a != (uint64_t)(~(d->bar_size[i] - 1));
    }
    if (d->bars_changed) {
        d->bars_changed(d);
    }
}

/* The device a 0xcf8 address selects (bus 0, function 0 only). */
static struct pci_dev *pci_find(struct vm *vm, uint32_t addr)
{
    if (!(addr & 0x80000000u) || ((addr >> 16) & 0xff) != 0 ||
        ((addr >> 8) & 7) != 0) {
        return NULL;
    }
    int slot = (addr >> 11) & 0x1f;
    for (int i = 0; i < vm->npci; i++) {
        if (vm->pci[i]->slot == slot) {
            return vm->pci[i];
        }
    }
    return NULL;
}

/* 0xcf8: the configuration address. */
static void host_addr_read(void *opaque, uint64_t off, uint8_t *data,
                           unsigned size)
{
    struct pci_host *h = opaque;
    uint32_t v = h->addr;

    memcpy(data, (uint8_t *)&v + off, size <= 4 - off ? size : 4 - off);
}

/* 0xcf8 takes 32-bit writes; a byte write to 0xcf9 is the reset
 * control register (bit 2 resets). */
static void host_addr_write(void *opaque, uint64_t off, const uint8_t *data,
                            unsigned size)
{
    struct pci_host *h = opaque;

    if (off == 0 && size == 4) {
        memcpy(&h->addr, data, 4);
    } else if (off == 1 && size == 1 && (data[0] & 4)) {
        vm_request_exit(h->vm, VM_EXIT_RESET);
    }
}

/* 0xcfc-0xcff: configuration space of the selected device. */
static void host_data_read(void *opaque, uint64_t off, uint8_t *data,
                           unsigned size)
{
    struct pci_host *h = opaque;
    struct pci_dev *d = pci_find(h->vm, h->addr);
    unsigned reg = (h->addr & 0xfc) + off;

    memset(data, 0xff, size);
    if (d && reg + size <= 256) {
        memcpy(data, &d->cfg[reg], size);
    }
}

/* Configuration writes, masked by wmask; BAR or command changes move
 * the device's regions. */
static void host_data_write(void *opaque, uint64_t off, const uint8_t *data,
                            unsigned size)
{
    struct pci_host *h = opaque;
    struct pci_dev *d = pci_find(h->vm, h->addr);
    unsigned reg = (h->addr & 0xfc) + off;
    bool bars = false;

    if (!d || reg + size > 256) {
        return;
    }
    for (unsigned i = 0; i < size; i++) {
        unsigned r = reg + i;
        d->cfg[r] = (d->cfg[r] & ~d->wmask[r]) | (data[i] & d->wmask[r]);
        if ((r >= 0x10 && r < 0x28) || r == 4) {
            bars = true;
        }
    }
    if (bars) {
        pci_update_bars(d);
    }
    if (d->cfg_write) {
        d->cfg_write(d, reg, size);
    }
}

struct pci_dev *pci_dev_add(struct vm *vm, uint16_t vendor, uint16_t device,
                            uint32_t class_rev, uint16_t subsys)
{
    struct pci_dev *d;

    if (vm->npci == 32) {
        return NULL;
    }
    d = calloc(1, sizeof(*d));
    if (!d) {
        abort();
    }
    d->vm = vm;
    d->slot = vm->npci;
    put16(&d->cfg[0], vendor);
    put16(&d->cfg[2], device);
    put32(&d->cfg[8], class_rev);
    put16(&d->cfg[0x2c], 0x1af4);
    put16(&d->cfg[0x2e], subsys);
    d->wmask[4] = 0x47;
    d->wmask[5] = 0x05;
    d->wmask[0x0c] = 0xff; /* cache line size */
    d->wmask[0x0d] = 0xff; /* latency timer */
    d->wmask[0x3c] = 0xff; /* interrupt line */
    vm->pci[vm->npci++] = d;
    return d;
}

void pci_dev_add_bar(struct pci_dev *d, int bar, uint32_t size,
                     struct vm_region *r)
{
    struct vm *vm = d->vm;
    uint64_t a = (vm->pci_mmio_next + size - 1) & ~(uint64_t)(size - 1);

    vm->pci_mmio_next = a + size;
    d->bar_size[bar] = size;
    d->bar_region[bar] = r;
    put32(&d->cfg[0x10 + 4 * bar], (uint32_t)a);
    put32(&d->wmask[0x10 + 4 * bar], ~(size - 1));
    r->base = a;
    r->len = size;
    d->cfg[4] |= 0x06; /* memory decoding and bus mastering on */
    vm_bus_add(&vm->mmio, r);
    pci_update_bars(d);
}

unsigned pci_dev_add_cap(struct pci_dev *d, const uint8_t *cap, unsigned len)
{
    unsigned off = 0x40, last = 0;

    /* walk to the end of the list */
    for (unsigned p = d->cfg[0x34]; p; p = d->cfg[p + 1]) {
        last = p;
    }
    if (last) {
        off = d->cap_end;
    }
    off = (off + 3) & ~3u;
    if (off + len > 0xfe) {
        return 0;
    }
    memcpy(&d->cfg[off], cap, len);
    d->cfg[off + 1] = 0;
    if (last) {
        d->cfg[last + 1] = off;
    } else {
        d->cfg[0x34] = off;
    }
    d->cfg[6] |= 0x10;
    d->cap_end = off + len;
    return off;
}

int pci_init(struct vm *vm)
{
    struct pci_host *h = calloc(1, sizeof(*h));
    struct pci_dev *d;

    if (!h) {
        abort();
    }
    h->vm = vm;
    h->addr_r = (struct vm_region){.base = 0xcf8, .len = 4,
        .read = host_addr_read, .write = host_addr_write, .opaque = h};
    h->data_r = (struct vm_region){.base = 0xcfc, .len = 4,
        .read = host_data_read, .write = host_data_write, .opaque = h};
    vm_bus_add(&vm->pio, &h->addr_r);
    vm_bus_add(&vm->pio, &h->data_r);
    /* an i440FX host bridge id: SeaBIOS knows it (IRQ routing, PAM) */
    d = pci_dev_add(vm, 0x8086, 0x1237, 0x06000002, 0x1100);
    if (!d) {
        return -ENOSPC;
    }
    d->opaque = h;
    for (int i = 0x59; i <= 0x5f; i++) {
        d->wmask[i] = 0xff; /* PAM: RAM here is always RAM */
    }
    return 0;
}

void pci_free(struct vm *vm)
{
    if (vm->npci) {
        free(vm->pci[0]->opaque);
    }
    for (int i = 0; i < vm->npci; i++) {
        free(vm->pci[i]);
    }
    vm->npci = 0;
}
