/* Interrupt delivery through irqfds: MSI messages as GSI routes
 * (KVM_SET_GSI_ROUTING) each with an eventfd bound by KVM_IRQFD, and INTx
 * lines as irqfds with a resample eventfd so they stay level-triggered.
 * A device then interrupts by writing an eventfd from the engine's loop;
 * the kernel injects without another ioctl.  Where the host lacks a
 * capability the old ioctls (KVM_SIGNAL_MSI, KVM_IRQ_LINE) are used. */
#include "config.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "loop.h"
#include "vm.h"

/* Routes of the in-kernel PIC and IOAPIC, as QEMU sets them for a PC:
 * GSI 0 (the PIT) reaches IOAPIC pin 2, as the MADT's override says. */
static int irq_base_routes(struct kvm_irq_routing_entry *e)
{
    int n = 0;

    for (int i = 0; i < 16; i++) {
        if (i == 2) {
            continue;
        }
        e[n++] = (struct kvm_irq_routing_entry){
            .gsi = i, .type = KVM_IRQ_ROUTING_IRQCHIP,
            .u.irqchip = {.irqchip = i < 8 ? KVM_IRQCHIP_PIC_MASTER
                                           : KVM_IRQCHIP_PIC_SLAVE,
                          .pin = i % 8},
        };
    }
    for (int i = 0; i < VM_IOAPIC_PINS; i++) {
        if (i == 2) {
            continue;
        }
        e[n++] = (struct kvm_irq_routing_entry){
            .gsi = i, .type = KVM_IRQ_ROUTING_IRQCHIP,
            .u.irqchip = {.irqchip = KVM_IRQCHIP_IOAPIC,
                          .pin = i == 0 ? 2 : i},
        };
    }
    return n;
}

/* Install the whole routing table: the irqchip pins and every MSI route
 * in use. */
static int irq_commit(struct vm *vm)
{
    size_t max = 2 * VM_IOAPIC_PINS + VM_MAX_MSI;
    struct kvm_irq_routing *r = calloc(1, sizeof(*r) + max *
                                       sizeof(r->entries[0]));
    int n;

    if (!r) {
        abort();
    }
    n = irq_base_routes(r->entries);
    for (int i = 0; i < VM_MAX_MSI; i++) {
        const struct vm_msi_route *m = &vm->msi_routes[i];
        if (!m->used) {
            continue;
        }
        r->entries[n++] = (struct kvm_irq_routing_entry){
            .gsi = VM_MSI_GSI_BASE + i, .type = KVM_IRQ_ROUTING_MSI,
            .u.msi = {.address_lo = (uint32_t)m->addr,
                      .address_hi = (uint32_t)(m->addr >> 32),
                      .data = m->data},
        };
    }
    r->nr = n;
    int ret = ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, r) < 0 ? -errno : 0;
    free(r);
    return ret;
}

int vm_irq_init(struct vm *vm)
{
    /* our routing table (the PIT on IOAPIC pin 2, as the MADT says)
     * whenever the host takes one; irqfds on top of it */
    bool routing = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION,
                         KVM_CAP_IRQ_ROUTING) > 0 && irq_commit(vm) == 0;

    vm->irqfd = routing && !getenv("STRATA_VM_NO_IRQFD") &&
                ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD) > 0;
    vm->irqfd_resample = vm->irqfd &&
                         ioctl(vm->vm_fd, KVM_CHECK_EXTENSION,
                               KVM_CAP_IRQFD_RESAMPLE) > 0;
    return 0;
}

void vm_set_irq(struct vm *vm, int gsi, int level)
{
    struct kvm_irq_level irq = {.irq = gsi, .level = level};
    ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq);
}

void vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
    struct kvm_msi msi = {
        .address_lo = (uint32_t)addr,
        .address_hi = (uint32_t)(addr >> 32),
        .data = data,
    };
    ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi);
}

/* ---- MSI ---- */

void vm_msi_init(struct vm_msi *m)
{
    *m = (struct vm_msi){.gsi = -1, .efd = -1};
}

/* A GSI and a bound eventfd for m; false when irqfds cannot be used (the
 * caller then signals with KVM_SIGNAL_MSI). */
static bool msi_setup(struct vm *vm, struct vm_msi *m)
{
    if (m->efd >= 0) {
        return true;
    }
    if (!vm->irqfd || m->failed) {
        return false;
    }
    int slot = -1;
    for (int i = 0; i < VM_MAX_MSI; i++) {
        if (!vm->msi_routes[i].used) {
            slot = i;
            break;
        }
    }
    m->efd = slot < 0 ? -1 : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (m->efd < 0) {
        m->failed = true;
        return false;
    }
    /* a route must exist before the irqfd binds to its GSI */
    vm->msi_routes[slot] = (struct vm_msi_route){.used = true,
                                                 .addr = m->addr,
                                                 .data = m->data};
    struct kvm_irqfd fd = {.fd = m->efd, .gsi = VM_MSI_GSI_BASE + slot};
    bool routed = irq_commit(vm) == 0;
    if (!routed || ioctl(vm->vm_fd, KVM_IRQFD, &fd) < 0) {
        vm->msi_routes[slot].used = false;
        irq_commit(vm);
        close(m->efd);
        m->efd = -1;
        /* a refused message may be fixed by the guest: try again then */
        m->failed = routed;
        return false;
    }
    m->gsi = VM_MSI_GSI_BASE + slot;
    return true;
}

void vm_msi_update(struct vm *vm, struct vm_msi *m, uint64_t addr,
                   uint32_t data)
{
    m->addr = addr;
    m->data = data;
    if (m->gsi < 0) {
        return;
    }
    struct vm_msi_route *r = &vm->msi_routes[m->gsi - VM_MSI_GSI_BASE];
    if (r->addr == addr && r->data == data) {
        m->stale = false;
        return;
    }
    struct vm_msi_route old = *r;
    r->addr = addr;
    r->data = data;
    m->stale = false;
    if (irq_commit(vm) < 0) {
        /* a message KVM refuses (a bogus address): keep the table
         * installable for the other vectors, and send this one by ioctl */
        *r = old;
        m->stale = true;
    }
}

void vm_msi_fire(struct vm *vm, struct vm_msi *m, uint64_t addr,
                 uint32_t data)
{
    vm_msi_update(vm, m, addr, data);
    if (!m->stale && msi_setup(vm, m)) {
        uint64_t one = 1;
        if (write(m->efd, &one, sizeof(one)) == sizeof(one)) {
            return;
        }
    }
    vm_signal_msi(vm, addr, data);
}

void vm_msi_free(struct vm *vm, struct vm_msi *m)
{
    if (m->efd >= 0) {
        struct kvm_irqfd fd = {.fd = m->efd, .gsi = m->gsi,
                               .flags = KVM_IRQFD_FLAG_DEASSIGN};
        ioctl(vm->vm_fd, KVM_IRQFD, &fd);
        close(m->efd);
        vm->msi_routes[m->gsi - VM_MSI_GSI_BASE].used = false;
    }
    vm_msi_init(m);
}

/* ---- INTx ---- */

void vm_intx_init(struct vm_intx *x, int gsi, void (*resample)(void *),
                  void *opaque)
{
    *x = (struct vm_intx){.gsi = gsi, .efd = -1, .rfd = -1,
                          .resample = resample, .opaque = opaque};
}

static bool intx_bind(struct vm *vm, struct vm_intx *x)
{
    struct kvm_irqfd fd = {.fd = x->efd, .gsi = x->gsi,
                           .flags = KVM_IRQFD_FLAG_RESAMPLE,
                           .resamplefd = x->rfd};
    return ioctl(vm->vm_fd, KVM_IRQFD, &fd) == 0;
}

static void intx_unbind(struct vm *vm, struct vm_intx *x)
{
    struct kvm_irqfd fd = {.fd = x->efd, .gsi = x->gsi,
                           .flags = KVM_IRQFD_FLAG_DEASSIGN};
    ioctl(vm->vm_fd, KVM_IRQFD, &fd);
}

/* Main loop: the guest acknowledged the line (EOI) and KVM lowered it;
 * the device raises it again if it still has something pending. */
static void intx_resampled(void *opaque)
{
    struct vm_intx *x = opaque;
    uint64_t cnt;

    if (read(x->rfd, &cnt, sizeof(cnt)) == sizeof(cnt)) {
        pthread_mutex_lock(&x->vm->lock);
        x->asserted = false;
        if (x->mode == VM_INTX_IRQFD) {
            x->resample(x->opaque);
        }
        pthread_mutex_unlock(&x->vm->lock);
    }
}

/* Choose how x is delivered, on first use (main thread): an irqfd with a
 * resample fd, or KVM_IRQ_LINE when the host has no resampling. */
static void intx_setup(struct vm *vm, struct vm_intx *x)
{
    x->vm = vm;
    x->mode = VM_INTX_LINE;
    if (!vm->irqfd_resample) {
        return;
    }
    x->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    x->rfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (x->efd >= 0 && x->rfd >= 0 && intx_bind(vm, x)) {
        if (loop_set_fd_handler(vm->loop, x->rfd, intx_resampled, NULL,
                                x) == 0) {
            x->mode = VM_INTX_IRQFD;
            return;
        }
        intx_unbind(vm, x);
    }
    if (x->efd >= 0) {
        close(x->efd);
    }
    if (x->rfd >= 0) {
        close(x->rfd);
    }
    x->efd = x->rfd = -1;
}

void vm_intx_set(struct vm *vm, struct vm_intx *x, int level)
{
    if (x->mode == VM_INTX_UNSET) {
        if (!level) {
            return; /* never raised */
        }
        intx_setup(vm, x);
    }
    if (x->mode == VM_INTX_LINE) {
        vm_set_irq(vm, x->gsi, level);
        return;
    }
    /* an irqfd line falls at the guest's EOI (vm_intx_lower_now forces
     * it down) */
    if (level && !x->asserted) {
        uint64_t one = 1;
        if (write(x->efd, &one, sizeof(one)) == sizeof(one)) {
            x->asserted = true;
        }
    }
}

void vm_intx_lower_now(struct vm *vm, struct vm_intx *x)
{
    if (x->mode == VM_INTX_LINE) {
        vm_set_irq(vm, x->gsi, 0);
    } else if (x->mode == VM_INTX_IRQFD && x->asserted) {
        /* unbinding lowers the line (KVM drops the resampler's level) */
        intx_unbind(vm, x);
        x->asserted = false;
        if (!intx_bind(vm, x)) {
            x->mode = VM_INTX_LINE; /* fds stay open until vm_intx_free */
        }
    }
}

void vm_intx_free(struct vm *vm, struct vm_intx *x)
{
    if (x->efd >= 0) {
        intx_unbind(vm, x);
        loop_set_fd_handler(vm->loop, x->rfd, NULL, NULL, NULL);
        close(x->efd);
        close(x->rfd);
    }
    vm_intx_init(x, x->gsi, x->resample, x->opaque);
}
