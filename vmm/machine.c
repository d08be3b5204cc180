/* The machine: KVM VM and vCPUs, guest RAM, the port/MMIO buses and the
 * run loop (vCPU threads + the main thread's event loop). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "loop.h"
#include "pci.h"
#include "vm.h"
#include "virtio.h"

void vm_error(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fputs("strata-vm: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void *vm_gpa(struct vm *vm, uint64_t gpa, uint64_t len)
{
    if (gpa + len < gpa) {
        return NULL;
    }
    if (gpa + len <= vm->low_ram) {
        return vm->ram + gpa;
    }
    if (gpa >= VM_HIGH_RAM_BASE &&
        gpa + len <= VM_HIGH_RAM_BASE + vm->high_ram) {
        return vm->ram + vm->low_ram + (gpa - VM_HIGH_RAM_BASE);
    }
    return NULL;
}

int vm_bus_add(struct vm_bus *bus, struct vm_region *r)
{
    if (bus->n == (int)(sizeof(bus->r) / sizeof(bus->r[0]))) {
        return -ENOSPC;
    }
    r->active = r->active || r->len;
    bus->r[bus->n++] = r;
    return 0;
}

/* Dispatch one access; unclaimed reads return all ones, as on a PC. */
static void bus_access(struct vm *vm, struct vm_bus *bus, uint64_t addr,
                       uint8_t *data, unsigned size, bool write)
{
    pthread_mutex_lock(&vm->lock);
    for (int i = 0; i < bus->n; i++) {
        struct vm_region *r = bus->r[i];
        if (r->active && addr >= r->base && addr - r->base < r->len) {
            if (write) {
                if (r->write) {
                    r->write(r->opaque, addr - r->base, data, size);
                }
            } else if (r->read) {
                r->read(r->opaque, addr - r->base, data, size);
            } else {
                memset(data, 0xff, size);
            }
            pthread_mutex_unlock(&vm->lock);
            return;
        }
    }
    pthread_mutex_unlock(&vm->lock);
    if (!write) {
        memset(data, 0xff, size);
    }
}

void vm_request_exit(struct vm *vm, int code)
{
    int idle = 0;

    /* stop holds code + 1, so whoever sees it set sees the code too */
    if (__atomic_compare_exchange_n(&vm->stop, &idle, code + 1, false,
                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
        for (int i = 0; i < vm->ncpus; i++) {
            if (vm->cpus[i].run) {
                __atomic_store_n(&vm->cpus[i].run->immediate_exit, 1,
                                 __ATOMIC_SEQ_CST);
            }
        }
        for (int i = 0; i < vm->ncpus; i++) {
            if (vm->cpus[i].started &&
                !pthread_equal(vm->cpus[i].thread, pthread_self())) {
                pthread_kill(vm->cpus[i].thread, SIGUSR1);
            }
        }
        loop_notify(vm->loop);
    }
}

/* Handle one KVM exit; false when the vCPU must stop. */
static bool cpu_handle_exit(struct vm_cpu *cpu)
{
    struct kvm_run *run = cpu->run;
    struct vm *vm = cpu->vm;

    switch (run->exit_reason) {
    case KVM_EXIT_IO: {
        uint8_t *p = (uint8_t *)run + run->io.data_offset;
        for (uint32_t i = 0; i < run->io.count; i++) {
            bus_access(vm, &vm->pio, run->io.port, p, run->io.size,
                       run->io.direction == KVM_EXIT_IO_OUT);
            p += run->io.size;
        }
        return true;
    }
    case KVM_EXIT_MMIO:
        bus_access(vm, &vm->mmio, run->mmio.phys_addr, run->mmio.data,
                   run->mmio.len, run->mmio.is_write);
        return true;
    case KVM_EXIT_HLT:
        /* only without an in-kernel LAPIC; not our case, but harmless */
        return true;
    case KVM_EXIT_SHUTDOWN:
        /* a triple fault: a PC resets */
        vm_request_exit(vm, VM_EXIT_RESET);
        return false;
    case KVM_EXIT_SYSTEM_EVENT:
        vm_request_exit(vm, run->system_event.type == KVM_SYSTEM_EVENT_RESET
                                ? VM_EXIT_RESET : VM_EXIT_POWEROFF);
        return false;
    case KVM_EXIT_INTR:
        return true;
    case KVM_EXIT_FAIL_ENTRY:
        vm_error("vCPU %d: entry failed (reason 0x%llx)", cpu->id,
                 (unsigned long long)
                 run->fail_entry.hardware_entry_failure_reason);
        vm_request_exit(vm, VM_EXIT_CRASH);
        return false;
    case KVM_EXIT_INTERNAL_ERROR:
        vm_error("vCPU %d: KVM internal error (suberror %u)", cpu->id,
                 run->internal.suberror);
        vm_request_exit(vm, VM_EXIT_CRASH);
        return false;
    default:
        vm_error("vCPU %d: unhandled exit reason %u", cpu->id,
                 run->exit_reason);
        vm_request_exit(vm, VM_EXIT_CRASH);
        return false;
    }
}

/* A vCPU thread: KVM_RUN and its exits until the machine stops. */
static void *cpu_thread(void *opaque)
{
    struct vm_cpu *cpu = opaque;
    struct vm *vm = cpu->vm;
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    while (!__atomic_load_n(&vm->stop, __ATOMIC_SEQ_CST)) {
        int r = ioctl(cpu->fd, KVM_RUN, 0);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            vm_error("vCPU %d: KVM_RUN: %s", cpu->id, strerror(errno));
            vm_request_exit(vm, VM_EXIT_CRASH);
            break;
        }
        if (!cpu_handle_exit(cpu)) {
            break;
        }
    }
    return NULL;
}

/* SIGUSR1 only has to interrupt KVM_RUN. */
static void sig_noop(int sig)
{
    (void)sig;
}

/* The running machine, for the termination signal handler. */
static struct vm *running_vm;
/* The termination signal taken while a machine ran (0: none). */
static volatile sig_atomic_t term_signal;

/* SIGINT/SIGTERM/SIGHUP: stop the guest so the terminal and the disks are
 * left clean; the exit status is 128 + the signal, as a shell reports.
 * Remembered apart from the exit request: a guest reset that asked first
 * would otherwise win, and the machine would boot again. */
static void sig_terminate(int sig)
{
    term_signal = sig;
    if (running_vm) {
        vm_request_exit(running_vm, 128 + sig);
    }
}

/* CPUID as KVM supports it, with this vCPU's APIC id. */
static int cpu_set_cpuid(struct vm *vm, struct vm_cpu *cpu)
{
    int n = 256;
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

    if (!c) {
        abort();
    }
    c->nent = n;
    if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
        int e = -errno;
        free(c);
        return e;
    }
    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == 1) {
            e->ebx = (e->ebx & 0x0000ffffu) | ((uint32_t)vm->ncpus << 16) |
                     ((uint32_t)cpu->id << 24);
            e->ecx |= 1u << 31; /* running under a hypervisor */
        } else if (e->function == 0xb || e->function == 0x1f) {
            e->edx = cpu->id;
        }
    }
    int r = ioctl(cpu->fd, KVM_SET_CPUID2, c);
    free(c);
    return r < 0 ? -errno : 0;
}

/* LINT0 as ExtINT and LINT1 as NMI, as a BIOS leaves them. */
static int cpu_set_lapic(struct vm_cpu *cpu)
{
    struct kvm_lapic_state la;

    if (ioctl(cpu->fd, KVM_GET_LAPIC, &la) < 0) {
        return -errno;
    }
    uint32_t *lvt0 = (uint32_t *)&la.regs[0x350];
    uint32_t *lvt1 = (uint32_t *)&la.regs[0x360];
    *lvt0 = (*lvt0 & ~0x700u & ~0x10000u) | (7u << 8);
    *lvt1 = (*lvt1 & ~0x700u & ~0x10000u) | (4u << 8);
    return ioctl(cpu->fd, KVM_SET_LAPIC, &la) < 0 ? -errno : 0;
}

int vm_e820(struct vm *vm, struct vm_e820 *out, int max, bool for_fw)
{
    int n = 0;

    if (max < (for_fw ? 2 : 5)) {
        return 0;
    }
    if (for_fw) {
        /* SeaBIOS carves the low areas out itself */
        out[n++] = (struct vm_e820){0, vm->low_ram, 1};
    } else {
        out[n++] = (struct vm_e820){0, 0x9fc00, 1};
        out[n++] = (struct vm_e820){0x9fc00, 0x400, 2};
        out[n++] = (struct vm_e820){0xe0000, 0x20000, 2};
        out[n++] = (struct vm_e820){0x100000, vm->low_ram - 0x100000, 1};
    }
    if (vm->high_ram) {
        out[n++] = (struct vm_e820){VM_HIGH_RAM_BASE, vm->high_ram, 1};
    }
    return n;
}

int vm_create(struct vm *vm, const struct vm_config *cfg,
              struct blk_node **disks, int ndisks)
{
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    int ret, mmap_size;

    memset(vm, 0, sizeof(*vm));
    vm->cfg = cfg;
    vm->disks = disks;
    vm->ndisks = ndisks;
    vm->ncpus = cfg->ncpus;
    vm->ram_size = cfg->ram_size;
    vm->kvm_fd = vm->vm_fd = -1;
    vm->loop = loop_current();
    vm->pci_mmio_next = VM_PCI_MMIO_BASE;
    pthread_mutex_init(&vm->lock, NULL);

    vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (vm->kvm_fd < 0) {
        vm_error("cannot open /dev/kvm: %s", strerror(errno));
        return -errno;
    }
    if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
        vm_error("/dev/kvm: unsupported KVM API version");
        return -ENOTSUP;
    }
    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0) {
        vm_error("KVM_CREATE_VM: %s", strerror(errno));
        return -errno;
    }
    if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0 ||
        ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR,
              &(uint64_t){0xfffbc000ull}) < 0) {
        vm_error("KVM_SET_TSS_ADDR: %s", strerror(errno));
        return -errno;
    }
    if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0 ||
        ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
        vm_error("cannot create the in-kernel irqchip/PIT: %s",
                 strerror(errno));
        return -errno;
    }
    vm_irq_init(vm);
    ret = vm_setup_ram(vm);
    if (ret < 0) {
        return ret;
    }
    ret = vm_devices_init(vm);
    if (ret < 0) {
        return ret;
    }
    ret = pci_init(vm);
    if (ret < 0) {
        return ret;
    }
    for (int i = 0; i < ndisks; i++) {
        ret = virtio_blk_create(vm, disks[i], &cfg->drives[i], i);
        if (ret < 0) {
            return ret;
        }
    }
    if (cfg->rng) {
        ret = virtio_rng_create(vm);
        if (ret < 0) {
            return ret;
        }
    }

    mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (mmap_size < 0) {
        return -errno;
    }
    for (int i = 0; i < vm->ncpus; i++) {
        struct vm_cpu *cpu = &vm->cpus[i];
        cpu->vm = vm;
        cpu->id = i;
        cpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, i);
        if (cpu->fd < 0) {
            vm_error("KVM_CREATE_VCPU %d: %s", i, strerror(errno));
            return -errno;
        }
        cpu->run_size = mmap_size;
        cpu->run = mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                        cpu->fd, 0);
        if (cpu->run == MAP_FAILED) {
            cpu->run = NULL;
            return -errno;
        }
        ret = cpu_set_cpuid(vm, cpu);
        if (ret == 0) {
            ret = cpu_set_lapic(cpu);
        }
        if (ret < 0) {
            vm_error("vCPU %d setup: %s", i, strerror(-ret));
            return ret;
        }
    }

    ret = cfg->kernel ? vm_boot_kernel(vm) : vm_boot_firmware(vm);
    if (ret < 0) {
        return ret;
    }
    for (int i = 0; i < vm->ncpus; i++) {
        ret = vm_boot_setup_cpu(vm, &vm->cpus[i]);
        if (ret < 0) {
            vm_error("vCPU %d registers: %s", i, strerror(-ret));
            return ret;
        }
    }
    return 0;
}

int vm_run(struct vm *vm)
{
    struct sigaction sa = {.sa_handler = sig_noop};
    sigset_t set, old;

    struct sigaction term = {.sa_handler = sig_terminate};

    sigaction(SIGUSR1, &sa, NULL);
    running_vm = vm;
    sigaction(SIGINT, &term, NULL);
    sigaction(SIGTERM, &term, NULL);
    sigaction(SIGHUP, &term, NULL);
    /* only vCPU threads take SIGUSR1 (to leave KVM_RUN), only the main
     * thread the termination signals */
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    for (int i = 0; i < vm->ncpus; i++) {
        struct vm_cpu *cpu = &vm->cpus[i];
        if (pthread_create(&cpu->thread, NULL, cpu_thread, cpu) != 0) {
            vm_error("cannot start vCPU thread %d", i);
            vm_request_exit(vm, VM_EXIT_ERROR);
            break;
        }
        cpu->started = true;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    while (!__atomic_load_n(&vm->stop, __ATOMIC_SEQ_CST)) {
        loop_poll(vm->loop, true);
    }
    for (int i = 0; i < vm->ncpus; i++) {
        if (vm->cpus[i].started) {
            pthread_kill(vm->cpus[i].thread, SIGUSR1);
            pthread_join(vm->cpus[i].thread, NULL);
            vm->cpus[i].started = false;
        }
    }
    running_vm = NULL;
    term.sa_handler = SIG_DFL;
    sigaction(SIGINT, &term, NULL);
    sigaction(SIGTERM, &term, NULL);
    sigaction(SIGHUP, &term, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    /* let disk requests still in flight finish before the caller closes */
    virtio_quiesce(vm);
    if (term_signal) {
        return 128 + term_signal; /* over a reset or power-off at once */
    }
    return __atomic_load_n(&vm->stop, __ATOMIC_SEQ_CST) - 1;
}

void vm_destroy(struct vm *vm)
{
    virtio_free_all(vm);
    pci_free(vm);
    vm_fw_cfg_free(vm);
    vm_devices_free(vm);
    for (int i = 0; i < vm->ncpus; i++) {
        if (vm->cpus[i].run) {
            munmap(vm->cpus[i].run, vm->cpus[i].run_size);
        }
        if (vm->cpus[i].fd > 0) {
            close(vm->cpus[i].fd);
        }
    }
    if (vm->ram) {
        munmap(vm->ram, vm->ram_size);
    }
    if (vm->bios) {
        munmap(vm->bios, vm->bios_size);
    }
    if (vm->vm_fd >= 0) {
        close(vm->vm_fd);
    }
    if (vm->kvm_fd >= 0) {
        close(vm->kvm_fd);
    }
    pthread_mutex_destroy(&vm->lock);
}
