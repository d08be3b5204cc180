/* virtio-pci modern transport: capabilities, common configuration, ISR,
 * MSI-X or INTx interrupts, ioeventfd queue notification, split rings. */
#include "config.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "pci.h"
#include "virtio.h"

#define BAR_SIZE 0x8000
#define OFF_COMMON 0x0000
#define OFF_ISR 0x1000
#define OFF_DEVICE 0x2000
#define OFF_NOTIFY 0x3000
#define OFF_MSIX 0x4000
#define OFF_PBA 0x5000
#define NOTIFY_MULT 4

#define STATUS_FEATURES_OK 8
#define STATUS_NEEDS_RESET 64

static uint64_t rd(const uint8_t *p, unsigned size)
{
    uint64_t v = 0;
    memcpy(&v, p, size);
    return v;
}

static void wr(uint8_t *p, uint64_t v, unsigned size)
{
    memcpy(p, &v, size);
}

static bool msix_enabled(struct virtio_dev *d)
{
    return d->pci->cfg[d->msix_cap + 3] & 0x80;
}

static bool intx_enabled(struct virtio_dev *d)
{
    return !msix_enabled(d) && !(d->pci->cfg[5] & 0x04);
}

/* The message of vector v as the guest programmed it. */
static void msix_fire(struct virtio_dev *d, int v)
{
    vm_msi_fire(d->vm, &d->msi[v],
                (uint64_t)d->msix[v][1] << 32 | d->msix[v][0],
                d->msix[v][2]);
}

/* Deliver vector `vec` (MSI-X) or raise INTx with ISR bit `isr_bit`.
 * A masked vector only sets its pending bit (MSI-X: the message is sent
 * when it is unmasked). */
static void virtio_interrupt(struct virtio_dev *d, uint16_t vec,
                             uint8_t isr_bit)
{
    if (msix_enabled(d)) {
        int n = d->nqueues + 1;
        if (vec >= n) {
            return;
        }
        bool fmask = d->pci->cfg[d->msix_cap + 3] & 0x40;
        if (fmask || (d->msix[vec][3] & 1)) {
            d->msix_pending |= 1ull << vec;
            return;
        }
        msix_fire(d, vec);
        return;
    }
    d->isr |= isr_bit;
    if (intx_enabled(d)) {
        vm_intx_set(d->vm, &d->intx, 1);
    }
}

/* Deliver what was held back while masked. */
static void msix_flush_pending(struct virtio_dev *d)
{
    if (!msix_enabled(d) || (d->pci->cfg[d->msix_cap + 3] & 0x40)) {
        return;
    }
    for (int v = 0; v <= d->nqueues; v++) {
        if ((d->msix_pending >> v & 1) && !(d->msix[v][3] & 1)) {
            d->msix_pending &= ~(1ull << v);
            msix_fire(d, v);
        }
    }
}

/* Main loop: the guest acknowledged INTx; raise it again while the ISR
 * still holds something (level-triggered). */
static void intx_resample(void *opaque)
{
    struct virtio_dev *d = opaque;

    if (d->isr && intx_enabled(d)) {
        vm_intx_set(d->vm, &d->intx, 1);
    }
}

static void intx_raise_bh(void *opaque)
{
    struct virtio_dev *d = opaque;

    pthread_mutex_lock(&d->vm->lock);
    intx_resample(d);
    pthread_mutex_unlock(&d->vm->lock);
}

/* (Re)register each enabled queue's ioeventfd at its current address. */
static void virtio_update_ioeventfds(struct virtio_dev *d)
{
    uint64_t bar = pci_bar_addr(d->pci, 0);
    bool live = bar && d->bar.active && (d->status & 4); /* DRIVER_OK */

    for (int i = 0; i < d->nqueues; i++) {
        struct virtq *vq = &d->vq[i];
        uint64_t want = live && vq->enabled
                            ? bar + OFF_NOTIFY + NOTIFY_MULT * i : 0;
        if (vq->efd < 0 || want == vq->efd_addr) {
            continue;
        }
        if (vq->efd_addr) {
            struct kvm_ioeventfd io = {.addr = vq->efd_addr, .len = 0,
                                       .fd = vq->efd,
                                       .flags = KVM_IOEVENTFD_FLAG_DEASSIGN};
            ioctl(d->vm->vm_fd, KVM_IOEVENTFD, &io);
            vq->efd_addr = 0;
        }
        if (want) {
            struct kvm_ioeventfd io = {.addr = want, .len = 0, .fd = vq->efd};
            if (ioctl(d->vm->vm_fd, KVM_IOEVENTFD, &io) == 0) {
                vq->efd_addr = want;
            }
        }
    }
}

static void virtio_reset(struct virtio_dev *d)
{
    d->status = 0;
    d->guest_features = 0;
    d->dfselect = d->gfselect = 0;
    d->msix_config = 0xffff;
    d->isr = 0;
    d->queue_sel = 0;
    d->generation++;
    d->msix_pending = 0;
    for (int i = 0; i < d->nqueues; i++) {
        struct virtq *vq = &d->vq[i];
        vq->size = VIRTIO_QUEUE_MAX;
        vq->msix_vector = 0xffff;
        vq->enabled = false;
        vq->desc = vq->avail = vq->used = 0;
        vq->last_avail = vq->used_idx = 0;
    }
    virtio_update_ioeventfds(d);
    vm_intx_lower_now(d->vm, &d->intx);
    if (d->ops->reset) {
        d->ops->reset(d);
    }
}

static void common_read(struct virtio_dev *d, unsigned off, uint8_t *data,
                        unsigned size)
{
    struct virtq *vq = d->queue_sel < d->nqueues ? &d->vq[d->queue_sel]
                                                 : NULL;
    uint8_t b[0x40] = {0};

    wr(b + 0x00, d->dfselect, 4);
    wr(b + 0x04, d->dfselect < 2 ? d->host_features >> (32 * d->dfselect)
                                 : 0, 4);
    wr(b + 0x08, d->gfselect, 4);
    wr(b + 0x0c, d->gfselect < 2 ? d->guest_features >> (32 * d->gfselect)
                                 : 0, 4);
    wr(b + 0x10, d->msix_config, 2);
    wr(b + 0x12, d->nqueues, 2);
    b[0x14] = d->status;
    b[0x15] = d->config_gen;
    wr(b + 0x16, d->queue_sel, 2);
    if (vq) {
        wr(b + 0x18, vq->size, 2);
        wr(b + 0x1a, vq->msix_vector, 2);
        wr(b + 0x1c, vq->enabled, 2);
        wr(b + 0x1e, vq->index, 2);
        wr(b + 0x20, vq->desc, 8);
        wr(b + 0x28, vq->avail, 8);
        wr(b + 0x30, vq->used, 8);
    }
    memset(data, 0, size);
    if (off + size <= 0x38) {
        memcpy(data, b + off, size);
    }
}

/* A 64-bit field written in halves. */
static void set_part(uint64_t *f, unsigned off, uint64_t v, unsigned size)
{
    if (size == 8) {
        *f = v;
    } else if (off & 4) {
        *f = (*f & 0xffffffffull) | (v << 32);
    } else {
        *f = (*f & ~0xffffffffull) | (uint32_t)v;
    }
}

static void common_write(struct virtio_dev *d, unsigned off,
                         const uint8_t *data, unsigned size)
{
    uint64_t v = rd(data, size);
    struct virtq *vq = d->queue_sel < d->nqueues ? &d->vq[d->queue_sel]
                                                 : NULL;

    switch (off) {
    case 0x00: d->dfselect = v; break;
    case 0x08: d->gfselect = v; break;
    case 0x0c:
        if (d->gfselect < 2 && !(d->status & STATUS_FEATURES_OK)) {
            unsigned sh = 32 * d->gfselect;
            d->guest_features = (d->guest_features & ~(0xffffffffull << sh))
                                | ((v & 0xffffffffull) << sh);
        }
        break;
    case 0x10: d->msix_config = v; break;
    case 0x14:
        if (v == 0) {
            virtio_reset(d);
            break;
        }
        if ((v & STATUS_FEATURES_OK) && !(d->status & STATUS_FEATURES_OK) &&
            ((d->guest_features & ~d->host_features) ||
             !(d->guest_features & VIRTIO_F_VERSION_1))) {
            v &= ~(uint64_t)STATUS_FEATURES_OK; /* refuse the feature set */
        }
        d->status = v;
        virtio_update_ioeventfds(d);
        /* work queued before DRIVER_OK */
        if (v & 4) {
            for (int i = 0; i < d->nqueues; i++) {
                if (d->vq[i].enabled) {
                    loop_defer_bh(d->vm->loop, &d->vq[i].bh);
                }
            }
        }
        break;
    case 0x16: d->queue_sel = v; break;
    default:
        if (!vq || vq->enabled) {
            if (vq && off == 0x1a) {
                vq->msix_vector = v;
            }
            break;
        }
        if (off == 0x18) {
            /* a power of two up to our maximum */
            if (v && v <= VIRTIO_QUEUE_MAX && !(v & (v - 1))) {
                vq->size = v;
            }
        } else if (off == 0x1a) {
            vq->msix_vector = v;
        } else if (off == 0x1c) {
            if (v == 1) {
                vq->enabled = true;
                virtio_update_ioeventfds(d);
            }
        } else if (off >= 0x20 && off < 0x28) {
            set_part(&vq->desc, off, v, size);
        } else if (off >= 0x28 && off < 0x30) {
            set_part(&vq->avail, off, v, size);
        } else if (off >= 0x30 && off < 0x38) {
            set_part(&vq->used, off, v, size);
        }
    }
}

static void bar_read(void *opaque, uint64_t off, uint8_t *data,
                     unsigned size)
{
    struct virtio_dev *d = opaque;

    memset(data, 0, size);
    if (off < OFF_ISR) {
        common_read(d, off, data, size);
    } else if (off == OFF_ISR) {
        data[0] = d->isr;
        d->isr = 0;
        vm_intx_set(d->vm, &d->intx, 0);
    } else if (off >= OFF_DEVICE && off - OFF_DEVICE + size <= d->config_len) {
        memcpy(data, d->config + (off - OFF_DEVICE), size);
    } else if (off >= OFF_MSIX && off + size <= OFF_MSIX + 16 *
               (uint64_t)(d->nqueues + 1)) {
        memcpy(data, (uint8_t *)d->msix + (off - OFF_MSIX), size);
    } else if (off >= OFF_PBA && off + size <= OFF_PBA + 8) {
        memcpy(data, (uint8_t *)&d->msix_pending + (off - OFF_PBA), size);
    }
}

static void bar_write(void *opaque, uint64_t off, const uint8_t *data,
                      unsigned size)
{
    struct virtio_dev *d = opaque;

    if (off < OFF_ISR) {
        common_write(d, off, data, size);
    } else if (off >= OFF_NOTIFY && off < OFF_NOTIFY + NOTIFY_MULT *
               (uint64_t)d->nqueues) {
        /* no ioeventfd: hand the kick to the main loop */
        struct virtq *vq = &d->vq[(off - OFF_NOTIFY) / NOTIFY_MULT];
        loop_defer_bh(d->vm->loop, &vq->bh);
    } else if (off >= OFF_MSIX && off + size <= OFF_MSIX + 16 *
               (uint64_t)(d->nqueues + 1)) {
        memcpy((uint8_t *)d->msix + (off - OFF_MSIX), data, size);
        /* the route of an unmasked vector follows its message at once;
         * a masked one's when it is unmasked or fires */
        int v = (off - OFF_MSIX) / 16;
        if (!(d->msix[v][3] & 1)) {
            vm_msi_update(d->vm, &d->msi[v],
                          (uint64_t)d->msix[v][1] << 32 | d->msix[v][0],
                          d->msix[v][2]);
        }
        msix_flush_pending(d);
    }
}

static void pci_cfg_written(struct pci_dev *p, unsigned off, unsigned size)
{
    struct virtio_dev *d = p->opaque;

    if (off <= d->msix_cap + 3 && off + size > d->msix_cap + 2) {
        msix_flush_pending(d);
    }
    /* INTx follows the command register's disable bit and MSI-X enable */
    if ((off <= 5 && off + size > 5) ||
        (off <= d->msix_cap + 3 && off + size > d->msix_cap + 3)) {
        if (!intx_enabled(d)) {
            vm_intx_lower_now(d->vm, &d->intx);
        } else if (d->isr) {
            /* raised from the main loop: the irqfd is set up there */
            loop_defer_bh(d->vm->loop, &d->intx_bh);
        }
    }
}

static void pci_bars_changed(struct pci_dev *p)
{
    virtio_update_ioeventfds(p->opaque);
}

/* Main loop: a queue was kicked (ioeventfd or deferred exit). */
static void vq_kick_bh(void *opaque)
{
    struct virtq *vq = opaque;
    struct virtio_dev *d = vq->dev;

    pthread_mutex_lock(&d->vm->lock);
    if (vq->enabled && (d->status & 4) && !(d->status & STATUS_NEEDS_RESET)) {
        d->ops->notify(d, vq);
    }
    pthread_mutex_unlock(&d->vm->lock);
}

static void vq_efd_read(void *opaque)
{
    struct virtq *vq = opaque;
    uint64_t cnt;

    if (read(vq->efd, &cnt, sizeof(cnt)) == sizeof(cnt)) {
        vq_kick_bh(vq);
    }
}

/* Map one descriptor's buffer; false if it lies outside guest RAM. */
static bool map_desc(struct virtio_dev *d, struct virtq_elem *e,
                     uint64_t addr, uint32_t len, bool writable, int *n)
{
    void *p = vm_gpa(d->vm, addr, len);

    if (!p || *n >= VIRTIO_QUEUE_MAX) {
        return false;
    }
    if (writable) {
        e->nin++;
    } else {
        if (e->nin) {
            return false; /* readable after writable */
        }
        e->nout++;
    }
    e->iov[(*n)++] = (struct iovec){p, len};
    return true;
}

bool virtq_pop(struct virtq *vq, struct virtq_elem *e)
{
    struct virtio_dev *d = vq->dev;
    uint16_t qs = vq->size;
    uint8_t *avail = vm_gpa(d->vm, vq->avail, 6 + 2 * qs);
    uint8_t *desc = vm_gpa(d->vm, vq->desc, 16ull * qs);
    int n = 0;

    if (!avail || !desc || !vm_gpa(d->vm, vq->used, 6 + 8 * qs)) {
        goto broken;
    }
    uint16_t aidx = __atomic_load_n((uint16_t *)(avail + 2),
                                    __ATOMIC_ACQUIRE);
    if (aidx == vq->last_avail) {
        return false;
    }
    if ((uint16_t)(aidx - vq->last_avail) > qs) {
        goto broken;
    }
    uint16_t head = rd(avail + 4 + 2 * (vq->last_avail % qs), 2);
    vq->last_avail++;
    e->head = head;
    e->nout = e->nin = 0;
    if (head >= qs) {
        goto broken;
    }
    uint16_t i = head;
    uint8_t *table = desc;
    uint16_t tsize = qs;
    for (int hops = 0;; hops++) {
        uint8_t *dp = table + 16 * i;
        uint64_t addr = rd(dp, 8);
        uint32_t len = rd(dp + 8, 4);
        uint16_t flags = rd(dp + 12, 2);
        uint16_t next = rd(dp + 14, 2);
        if (hops >= VIRTIO_QUEUE_MAX) {
            goto broken;
        }
        if (flags & 4) { /* INDIRECT: a table of its own */
            if (table != desc || len % 16 || len == 0 ||
                len / 16 > VIRTIO_QUEUE_MAX) {
                goto broken;
            }
            table = vm_gpa(d->vm, addr, len);
            tsize = len / 16;
            if (!table) {
                goto broken;
            }
            i = 0;
            continue;
        }
        if (!map_desc(d, e, addr, len, flags & 2, &n)) {
            goto broken;
        }
        if (!(flags & 1)) {
            break;
        }
        if (next >= tsize) {
            goto broken;
        }
        i = next;
    }
    return true;

broken:
    d->status |= STATUS_NEEDS_RESET;
    return false;
}

void virtq_push(struct virtq *vq, const struct virtq_elem *e, uint32_t len)
{
    struct virtio_dev *d = vq->dev;
    uint16_t qs = vq->size;
    uint8_t *used = vm_gpa(d->vm, vq->used, 6 + 8 * qs);
    uint8_t *avail = vm_gpa(d->vm, vq->avail, 6 + 2 * qs);

    if (!used || !avail) {
        return;
    }
    uint8_t *el = used + 4 + 8 * (vq->used_idx % qs);
    wr(el, e->head, 4);
    wr(el + 4, len, 4);
    vq->used_idx++;
    __atomic_store_n((uint16_t *)(used + 2), vq->used_idx, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!(rd(avail, 2) & 1)) { /* VIRTQ_AVAIL_F_NO_INTERRUPT */
        virtio_interrupt(d, vq->msix_vector, 1);
    }
}

struct virtio_dev *virtio_pci_create(struct vm *vm, uint32_t type,
                                     uint32_t class_rev, int nqueues,
                                     uint64_t features, unsigned config_len,
                                     const struct virtio_ops *ops,
                                     void *opaque)
{
    struct virtio_dev *d = calloc(1, sizeof(*d));
    static const uint8_t irq_for_slot[4] = {10, 10, 11, 11};

    if (!d || nqueues > VIRTIO_MAX_QUEUES) {
        abort();
    }
    d->vm = vm;
    d->ops = ops;
    d->opaque = opaque;
    d->nqueues = nqueues;
    d->host_features = features | VIRTIO_F_VERSION_1;
    d->config_len = config_len;
    d->config = calloc(1, config_len ? config_len : 1);
    if (!d->config) {
        abort();
    }
    d->pci = pci_dev_add(vm, 0x1af4, 0x1040 + type, class_rev, 0x40);
    if (!d->pci) {
        free(d->config);
        free(d);
        return NULL;
    }
    d->pci->opaque = d;
    d->pci->cfg[0x3d] = 1; /* INTA */
    d->pci->cfg[0x3c] = irq_for_slot[d->pci->slot % 4];
    /* the wiring, whatever the guest writes to the interrupt line */
    vm_intx_init(&d->intx, d->pci->cfg[0x3c], intx_resample, d);
    loop_bh_init(&d->intx_bh, intx_raise_bh, d);
    for (int v = 0; v <= nqueues; v++) {
        vm_msi_init(&d->msi[v]);
    }
    d->pci->bars_changed = pci_bars_changed;
    d->pci->cfg_write = pci_cfg_written;

    for (int i = 0; i < nqueues; i++) {
        struct virtq *vq = &d->vq[i];
        vq->dev = d;
        vq->index = i;
        vq->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (vq->efd >= 0) {
            loop_set_fd_handler(vm->loop, vq->efd, vq_efd_read, NULL, vq);
        }
        loop_bh_init(&vq->bh, vq_kick_bh, vq);
    }

    /* vendor capabilities: cfg_type, bar, offset, length */
    static const struct { uint8_t type; uint32_t off, len; } caps[] = {
        {1, OFF_COMMON, 0x38}, {2, OFF_NOTIFY, 0x1000},
        {3, OFF_ISR, 1}, {4, OFF_DEVICE, 0x1000},
    };
    for (unsigned i = 0; i < 4; i++) {
        uint8_t c[20] = {0x09, 0, caps[i].type == 2 ? 20 : 16, caps[i].type,
                         0};
        wr(c + 8, caps[i].off, 4);
        wr(c + 12, caps[i].type == 4 ? (config_len ? config_len : 4)
                                     : caps[i].len, 4);
        if (caps[i].type == 2) {
            wr(c + 16, NOTIFY_MULT, 4);
        }
        pci_dev_add_cap(d->pci, c, c[2]);
    }
    uint8_t mx[12] = {0x11, 0};
    wr(mx + 2, nqueues, 2); /* table size - 1 = nqueues vectors + config */
    wr(mx + 4, OFF_MSIX, 4);
    wr(mx + 8, OFF_PBA, 4);
    d->msix_cap = pci_dev_add_cap(d->pci, mx, sizeof(mx));
    d->pci->wmask[d->msix_cap + 3] = 0xc0;
    for (int v = 0; v <= nqueues; v++) {
        d->msix[v][3] = 1; /* masked */
    }

    d->bar = (struct vm_region){.read = bar_read, .write = bar_write,
                                .opaque = d};
    pci_dev_add_bar(d->pci, 0, BAR_SIZE, &d->bar);
    virtio_reset(d);
    vm->devs[vm->ndevs++] = d;
    return d;
}

void virtio_quiesce(struct vm *vm)
{
    /* run kicks the vCPUs deferred before they stopped: the bh structs
     * live in the devices about to be freed */
    loop_poll(vm->loop, false);
    for (int i = 0; i < vm->ndevs; i++) {
        struct virtio_dev *d = vm->devs[i];
        while (d->inflight > 0) {
            loop_poll(vm->loop, true);
        }
    }
}

void virtio_free_all(struct vm *vm)
{
    for (int i = 0; i < vm->ndevs; i++) {
        struct virtio_dev *d = vm->devs[i];
        for (int q = 0; q < d->nqueues; q++) {
            struct virtq *vq = &d->vq[q];
            if (vq->efd >= 0) {
                loop_set_fd_handler(vm->loop, vq->efd, NULL, NULL, NULL);
                close(vq->efd);
            }
        }
        for (int v = 0; v <= d->nqueues; v++) {
            vm_msi_free(vm, &d->msi[v]);
        }
        vm_intx_free(vm, &d->intx);
        if (d->ops->free) {
            d->ops->free(d);
        }
        free(d->config);
        free(d);
    }
    vm->ndevs = 0;
}
