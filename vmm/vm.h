/* strata-vm: the machine, its buses and devices.
 *
 * Threads: one per vCPU (KVM_RUN and the port/MMIO exits it takes) and the
 * main thread, which runs the engine's event loop: ioeventfds (virtio queue
 * notifications), disk I/O coroutines, the serial input, and interrupts to
 * the guest as irqfd writes (irq.c).  Device state
 * touched from both sides is guarded by vm->lock (one lock: exits that
 * reach a device are rare, the data path does not exit). */
#ifndef VMM_VM_H
#define VMM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VM_MAX_CPUS 64
#define VM_MAX_DRIVES 8
#define VM_MAX_QUEUES 8 /* virtqueues of one virtio-blk (num-queues=) */

/* Exit codes of strata-vm (documented in strata-vm(1)). */
enum {
    VM_EXIT_POWEROFF = 0, /* the guest powered off (ACPI S5) */
    VM_EXIT_RESET = 2,    /* the guest reset and -no-reboot was given */
    VM_EXIT_CRASH = 4,    /* the guest crashed (KVM internal error...) */
    VM_EXIT_ERROR = 8,    /* strata-vm failed (options, image, KVM) */
    /* odd codes 2v+1: the guest wrote v to the debug-exit port 0xf4 */
};

/* Guest physical layout. */
#define VM_LOW_RAM_END 0xc0000000ull /* RAM above this is moved to 4 GiB */
#define VM_PCI_MMIO_BASE 0xc0000000ull
#define VM_HIGH_RAM_BASE 0x100000000ull
#define VM_IOAPIC_BASE 0xfec00000ull
#define VM_LAPIC_BASE 0xfee00000ull
#define VM_DEBUG_EXIT_PORT 0xf4
#define VM_ACPI_PM_BASE 0x600 /* PM1a_EVT 0x600, PM1a_CNT 0x604, TMR 0x608 */
#define VM_ACPI_SLP_TYP_S5 5
#define VM_IOAPIC_PINS 24
#define VM_MSI_GSI_BASE VM_IOAPIC_PINS /* GSIs of MSI routes from here */
#define VM_MAX_MSI 128

struct vm_drive {
    char *file;
    char *format;   /* NULL: probe */
    char *cache;    /* NULL: writeback */
    char *aio;      /* NULL: the file driver's default */
    char *serial;   /* VIRTIO_BLK_T_GET_ID answer; NULL: "strata<N>" */
    int num_queues; /* virtqueues (VIRTIO_BLK_F_MQ when > 1); 0: one */
    bool readonly;
    bool snapshot;
};

enum vm_serial_mode { VM_SERIAL_STDIO, VM_SERIAL_FILE, VM_SERIAL_NONE };

struct vm_config {
    uint64_t ram_size;
    int ncpus;
    const char *kernel, *initrd, *append, *bios;
    struct vm_drive drives[VM_MAX_DRIVES];
    int ndrives;
    bool snapshot;   /* -snapshot: every drive gets snapshot=on */
    enum vm_serial_mode serial;
    const char *serial_path;
    bool no_reboot;
    bool rng;        /* a virtio-rng device (default on) */
    const char *name;
    const char *pidfile;
    bool debugcon;   /* SeaBIOS debug port 0x402 to stderr */
    const char *mem_path; /* -mem-path: RAM from a file (hugetlbfs) */
    bool mem_prealloc;    /* -mem-prealloc: populate RAM before boot */
};

/* A range on the port or MMIO bus.  Handlers run with vm->lock held. */
struct vm_region {
    uint64_t base, len;
    void (*read)(void *opaque, uint64_t off, uint8_t *data, unsigned size);
    void (*write)(void *opaque, uint64_t off, const uint8_t *data,
                  unsigned size);
    void *opaque;
    bool active;
};

struct vm_bus {
    struct vm_region *r[64];
    int n;
};

struct vm_cpu {
    struct vm *vm;
    int id, fd;
    struct kvm_run *run;
    size_t run_size;
    pthread_t thread;
    bool started;
};

struct pci_dev;
struct blk_node;
struct loop;

/* An MSI route in the kernel's table (GSI VM_MSI_GSI_BASE + index). */
struct vm_msi_route {
    uint64_t addr;
    uint32_t data;
    bool used;
};

/* One MSI source (an MSI-X vector): an eventfd bound to its own GSI route,
 * made on first use; efd -1: not yet, or KVM_SIGNAL_MSI is used. */
struct vm_msi {
    int gsi, efd;
    uint64_t addr;  /* the message the route carries */
    uint32_t data;
    bool failed;    /* no irqfd for this one: signal by ioctl */
    bool stale;     /* KVM refused the route of this message: ioctl */
};

/* One level-triggered INTx line: an irqfd with a resample fd (KVM lowers
 * the line at the guest's EOI and signals rfd; resample() then asks the
 * device whether to raise it again), or KVM_IRQ_LINE. */
struct vm_intx {
    struct vm *vm;
    int gsi, efd, rfd;
    enum { VM_INTX_UNSET, VM_INTX_IRQFD, VM_INTX_LINE } mode;
    bool asserted;  /* irqfd mode: raised and not yet acknowledged */
    void (*resample)(void *opaque); /* main thread, vm->lock held */
    void *opaque;
};

struct vm {
    const struct vm_config *cfg;
    int kvm_fd, vm_fd;
    uint8_t *ram;          /* guest RAM: [0, low_ram) then [4G, ...) */
    uint64_t ram_size, low_ram, high_ram;
    uint8_t *bios;         /* firmware image mapped below 4 GiB */
    size_t bios_size;
    struct vm_cpu cpus[VM_MAX_CPUS];
    int ncpus;
    pthread_mutex_t lock;
    struct vm_bus pio, mmio;
    struct loop *loop;     /* the main thread's event loop */
    int stop;              /* 0, or the exit code + 1 (atomic) */
    uint64_t pci_mmio_next;
    struct pci_dev *pci[32];
    int npci;
    struct blk_node **disks; /* opened by main, borrowed */
    int ndisks;
    void *devs[VM_MAX_DRIVES + 2]; /* virtio devices to free */
    int ndevs;
    void *fw_cfg;
    struct vm_uart *uart;
    /* how vCPU 0 starts (boot.c) */
    enum { VM_BOOT_FIRMWARE, VM_BOOT_PVH, VM_BOOT_LINUX64 } boot;
    uint64_t boot_entry, boot_arg; /* entry point; ebx/rsi */
    bool irqfd;            /* KVM_IRQFD and GSI routing usable */
    bool irqfd_resample;   /* ... and KVM_IRQFD_FLAG_RESAMPLE */
    struct vm_msi_route msi_routes[VM_MAX_MSI];
};

/* machine.c */
int vm_create(struct vm *vm, const struct vm_config *cfg,
              struct blk_node **disks, int ndisks);
int vm_run(struct vm *vm);
void vm_destroy(struct vm *vm);
/* Ask the machine to stop with `code` (first request wins); any thread. */
void vm_request_exit(struct vm *vm, int code);
/* Guest RAM at [gpa, gpa+len), or NULL when not entirely RAM. */
void *vm_gpa(struct vm *vm, uint64_t gpa, uint64_t len);
int vm_bus_add(struct vm_bus *bus, struct vm_region *r);
/* "strata-vm: <msg>" on stderr. */
void vm_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* irq.c: callers hold vm->lock (except vm_irq_init). */
int vm_irq_init(struct vm *vm);
/* A level change of an ISA/PCI line by KVM_IRQ_LINE. */
void vm_set_irq(struct vm *vm, int gsi, int level);
void vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data);
void vm_msi_init(struct vm_msi *m);
/* The guest (re)programmed the message: the route follows it. */
void vm_msi_update(struct vm *vm, struct vm_msi *m, uint64_t addr,
                   uint32_t data);
/* Send the message (the caller checked masking). */
void vm_msi_fire(struct vm *vm, struct vm_msi *m, uint64_t addr,
                 uint32_t data);
void vm_msi_free(struct vm *vm, struct vm_msi *m);
void vm_intx_init(struct vm_intx *x, int gsi, void (*resample)(void *),
                  void *opaque);
/* Raise (level 1) or release the line; an irqfd line stays up until the
 * guest's EOI. */
void vm_intx_set(struct vm *vm, struct vm_intx *x, int level);
/* Lower the line at once (device reset, INTx disabled). */
void vm_intx_lower_now(struct vm *vm, struct vm_intx *x);
void vm_intx_free(struct vm *vm, struct vm_intx *x);

/* ram.c: guest RAM (anonymous or -mem-path) and its memory slots */
int vm_setup_ram(struct vm *vm);

/* devices.c: UART, i8042, CMOS, debug exit, ACPI PM, fw debug port */
int vm_devices_init(struct vm *vm);
void vm_devices_free(struct vm *vm);

/* boot.c: direct kernel boot (bzImage / ELF PVH) and firmware */
int vm_boot_kernel(struct vm *vm);
int vm_boot_firmware(struct vm *vm);
/* Register state of vCPU `cpu` for the chosen boot path. */
int vm_boot_setup_cpu(struct vm *vm, struct vm_cpu *cpu);

/* acpi.c: RSDP/XSDT/MADT/FADT/DSDT in [0xe0000, 0x100000). Returns the
 * RSDP address. */
uint64_t vm_acpi_build(struct vm *vm);

/* fw-cfg.c */
int vm_fw_cfg_init(struct vm *vm);
void vm_fw_cfg_free(struct vm *vm);

/* e820 map shared by the boot paths and fw_cfg. */
struct vm_e820 {
    uint64_t addr, size;
    uint32_t type;
} __attribute__((packed));
int vm_e820(struct vm *vm, struct vm_e820 *out, int max, bool for_fw);

#endif
