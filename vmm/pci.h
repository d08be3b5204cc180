/* PCI: a host bridge with configuration mechanism #1 (ports 0xcf8/0xcfc)
 * and devices on bus 0 with memory BARs that the guest may move. */
#ifndef VMM_PCI_H
#define VMM_PCI_H

#include <stdbool.h>
#include <stdint.h>

struct vm;

#define PCI_MAX_BARS 6

struct pci_dev {
    struct vm *vm;
    int slot;
    uint8_t cfg[256];
    uint8_t wmask[256];           /* writable bits of cfg */
    uint32_t bar_size[PCI_MAX_BARS]; /* 0: BAR unused; memory BARs only */
    /* BAR i is decoded at this region (moved when the guest moves it) */
    struct vm_region *bar_region[PCI_MAX_BARS];
    /* Called (vm->lock held) after the guest changed BARs or the command
     * register, so the device can re-register its ioeventfds. */
    void (*bars_changed)(struct pci_dev *d);
    void (*cfg_write)(struct pci_dev *d, unsigned off, unsigned size);
    void *opaque;
    unsigned cap_end; /* first free byte after the capabilities */
};

int pci_init(struct vm *vm);
void pci_free(struct vm *vm);
/* Add a device in the next free slot, with ids and class; the caller then
 * adds BARs and capabilities. */
struct pci_dev *pci_dev_add(struct vm *vm, uint16_t vendor, uint16_t device,
                            uint32_t class_rev, uint16_t subsys);
/* A 32-bit memory BAR of `size` (power of two), decoded by `r`. */
void pci_dev_add_bar(struct pci_dev *d, int bar, uint32_t size,
                     struct vm_region *r);
/* Append a capability of `len` bytes (cap[0] is the id); returns its
 * offset in config space. */
unsigned pci_dev_add_cap(struct pci_dev *d, const uint8_t *cap,
                         unsigned len);
/* Address of BAR `bar` as the guest set it, 0 if decoding is off. */
uint64_t pci_bar_addr(struct pci_dev *d, int bar);

#endif
