/* virtio 1.x over PCI (modern transport) and the split virtqueue.
 *
 * BAR0 (32 KiB, memory) holds the common configuration at 0x0000, the ISR
 * byte at 0x1000, the device configuration at 0x2000, the queue notify
 * registers at 0x3000 (4 bytes per queue) and the MSI-X table and PBA at
 * 0x4000/0x5000.  Queue notifications are ioeventfds read by the main
 * thread's event loop, so a device's queue work (and the disk I/O it
 * starts) runs there, never in the vCPU's exit path; completions
 * interrupt the guest through irqfds (irq.c) written from that loop. */
#ifndef VMM_VIRTIO_H
#define VMM_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "loop.h"
#include "vm.h"

#define VIRTIO_MAX_QUEUES VM_MAX_QUEUES
#define VIRTIO_QUEUE_MAX 256
#define VIRTIO_F_VERSION_1 (1ull << 32)

struct virtio_dev;

struct virtq {
    struct virtio_dev *dev;
    int index;
    uint16_t size;       /* entries, set by the driver (<= QUEUE_MAX) */
    uint16_t msix_vector;
    bool enabled;
    uint64_t desc, avail, used; /* guest physical addresses */
    uint16_t last_avail;
    uint16_t used_idx;
    int efd;             /* ioeventfd, -1 if KVM would not take one */
    uint64_t efd_addr;   /* where it is registered, 0 = not registered */
    struct loop_bh bh;   /* notify from a vCPU exit when no ioeventfd */
};

/* One element taken from a queue: its descriptors mapped to host memory.
 * iov[0..nout) are device-readable, iov[nout..nout+nin) writable. */
struct virtq_elem {
    uint16_t head;
    int nout, nin;
    struct iovec iov[VIRTIO_QUEUE_MAX];
};

struct virtio_ops {
    /* The driver kicked queue vq (main thread, vm->lock held). */
    void (*notify)(struct virtio_dev *d, struct virtq *vq);
    /* The driver reset the device (vm->lock held). */
    void (*reset)(struct virtio_dev *d);
    void (*free)(struct virtio_dev *d);
};

struct virtio_dev {
    struct vm *vm;
    struct pci_dev *pci;
    const struct virtio_ops *ops;
    void *opaque;
    struct vm_region bar;
    uint64_t host_features, guest_features;
    uint32_t dfselect, gfselect;
    uint16_t msix_config;
    uint8_t status, isr, config_gen;
    uint16_t queue_sel;
    int nqueues;
    struct virtq vq[VIRTIO_MAX_QUEUES];
    uint8_t *config;     /* device configuration, config_len bytes */
    unsigned config_len;
    unsigned msix_cap;   /* offset of the MSI-X capability */
    uint32_t msix[VIRTIO_MAX_QUEUES + 1][4];
    uint64_t msix_pending;
    struct vm_msi msi[VIRTIO_MAX_QUEUES + 1]; /* irqfd of each vector */
    struct vm_intx intx;
    struct loop_bh intx_bh; /* raise INTx from the main loop */
    unsigned generation; /* bumped at reset: stale completions are dropped */
    int inflight;        /* requests not yet completed */
};

/* Create a virtio-pci device of `type` (2 = block, 4 = entropy). */
struct virtio_dev *virtio_pci_create(struct vm *vm, uint32_t type,
                                     uint32_t class_rev, int nqueues,
                                     uint64_t features, unsigned config_len,
                                     const struct virtio_ops *ops,
                                     void *opaque);
/* Take the next available element; false when the queue is empty or the
 * driver gave a malformed chain (the device is then marked broken). */
bool virtq_pop(struct virtq *vq, struct virtq_elem *e);
/* Return an element with `len` bytes written, and interrupt the driver. */
void virtq_push(struct virtq *vq, const struct virtq_elem *e, uint32_t len);

int virtio_blk_create(struct vm *vm, struct blk_node *bs,
                      const struct vm_drive *drv, int index);
int virtio_rng_create(struct vm *vm);
/* Wait (running the loop) until no request is in flight. */
void virtio_quiesce(struct vm *vm);
void virtio_free_all(struct vm *vm);

#endif
