/* Boot paths: direct kernel boot (Linux bzImage through its 64-bit entry,
 * or an ELF image with a PVH note, entered in 32-bit protected mode with
 * a hvm_start_info) and firmware boot (SeaBIOS mapped below 4 GiB). */
#include "config.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm.h"

#define BOOT_GDT 0x500
#define BOOT_START_INFO 0x6000
#define BOOT_PARAMS 0x7000
#define BOOT_PML4 0x9000
#define BOOT_CMDLINE 0x20000
#define BOOT_CMDLINE_MAX 0x10000
#define KERNEL_BASE 0x100000
#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* Read a whole file (at most max bytes). */
static int read_file(const char *path, uint8_t **buf, size_t *len,
                     size_t max)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        return -errno;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size > max) {
        close(fd);
        return -EFBIG;
    }
    *len = st.st_size;
    *buf = malloc(*len ? *len : 1);
    if (!*buf) {
        abort();
    }
    size_t done = 0;
    while (done < *len) {
        ssize_t n = read(fd, *buf + done, *len - done);
        if (n <= 0) {
            int e = n < 0 ? -errno : -EIO;
            close(fd);
            free(*buf);
            return e;
        }
        done += n;
    }
    close(fd);
    return 0;
}

/* Copy into guest RAM, refusing anything outside it. */
static int put(struct vm *vm, uint64_t gpa, const void *src, uint64_t len)
{
    void *p = vm_gpa(vm, gpa, len);

    if (!p) {
        return -ENOSPC;
    }
    memcpy(p, src, len);
    return 0;
}

static uint64_t rd(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    memcpy(&v, p, n);
    return v;
}

/* Load the initrd at the top of low RAM below `max_addr`. */
static int load_initrd(struct vm *vm, uint64_t max_addr, uint64_t *addr,
                       uint64_t *size)
{
    uint8_t *buf;
    size_t len;
    int ret;

    *addr = *size = 0;
    if (!vm->cfg->initrd) {
        return 0;
    }
    ret = read_file(vm->cfg->initrd, &buf, &len, vm->low_ram);
    if (ret < 0) {
        vm_error("cannot read initrd %s: %s", vm->cfg->initrd,
                 strerror(-ret));
        return ret;
    }
    uint64_t top = vm->low_ram < max_addr ? vm->low_ram : max_addr;
    uint64_t a = (top - len) & ~0xfffull;
    if (len > top || a < 0x1000000) {
        free(buf);
        vm_error("initrd %s does not fit in guest RAM", vm->cfg->initrd);
        return -ENOSPC;
    }
    ret = put(vm, a, buf, len);
    free(buf);
    *addr = a;
    *size = len;
    return ret;
}

/* The command line at BOOT_CMDLINE for both kernel boot paths. */
static int put_cmdline(struct vm *vm)
{
    const char *c = vm->cfg->append ? vm->cfg->append : "";
    size_t n = strlen(c) + 1;

    if (n > BOOT_CMDLINE_MAX) {
        vm_error("kernel command line too long");
        return -E2BIG;
    }
    return put(vm, BOOT_CMDLINE, c, n);
}

/* An ELF64 or ELF32 image with a PVH entry note. */
static int load_pvh(struct vm *vm, const uint8_t *k, size_t len)
{
    bool is64 = k[EI_CLASS] == ELFCLASS64;
    uint64_t phoff, entry = 0;
    unsigned phnum, phentsize;

    if (len < sizeof(Elf64_Ehdr)) {
        return -EINVAL;
    }
    if (is64) {
        const Elf64_Ehdr *eh = (const void *)k;
        phoff = eh->e_phoff;
        phnum = eh->e_phnum;
        phentsize = eh->e_phentsize;
        if (phentsize != sizeof(Elf64_Phdr)) {
            return -EINVAL;
        }
    } else {
        const Elf32_Ehdr *eh = (const void *)k;
        phoff = eh->e_phoff;
        phnum = eh->e_phnum;
        phentsize = eh->e_phentsize;
        if (phentsize != sizeof(Elf32_Phdr)) {
            return -EINVAL;
        }
    }
    if (phoff > len || (uint64_t)phnum * phentsize > len - phoff) {
        return -EINVAL;
    }
    for (unsigned i = 0; i < phnum; i++) {
        const uint8_t *ph = k + phoff + (uint64_t)i * phentsize;
        uint64_t type, off, paddr, filesz, memsz;
        if (is64) {
            const Elf64_Phdr *p = (const void *)ph;
            type = p->p_type; off = p->p_offset; paddr = p->p_paddr;
            filesz = p->p_filesz; memsz = p->p_memsz;
        } else {
            const Elf32_Phdr *p = (const void *)ph;
            type = p->p_type; off = p->p_offset; paddr = p->p_paddr;
            filesz = p->p_filesz; memsz = p->p_memsz;
        }
        if (off > len || filesz > len - off || filesz > memsz) {
            return -EINVAL;
        }
        if (type == PT_LOAD) {
            uint8_t *dst = vm_gpa(vm, paddr, memsz);
            if (!dst) {
                vm_error("kernel segment at 0x%llx does not fit in RAM",
                         (unsigned long long)paddr);
                return -ENOSPC;
            }
            memcpy(dst, k + off, filesz);
            memset(dst + filesz, 0, memsz - filesz);
        } else if (type == PT_NOTE) {
            /* Elf32_Nhdr and Elf64_Nhdr are the same */
            for (uint64_t o = 0; o + 12 <= filesz;) {
                const uint8_t *n = k + off + o;
                uint32_t namesz = rd(n, 4), descsz = rd(n + 4, 4);
                uint32_t ntype = rd(n + 8, 4);
                uint64_t d = 12 + ((namesz + 3ull) & ~3ull);
                if (d + descsz > filesz - o) {
                    break;
                }
                if (ntype == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 &&
                    !memcmp(n + 12, "Xen", 4) && descsz >= 4) {
                    entry = rd(n + d, descsz >= 8 ? 8 : 4);
                }
                o += d + ((descsz + 3ull) & ~3ull);
            }
        }
    }
    if (!entry) {
        vm_error("%s: ELF image without a PVH entry note", vm->cfg->kernel);
        return -EINVAL;
    }

    /* hvm_start_info, its memory map and module list */
    uint8_t si[0x400] = {0};
    struct vm_e820 e[8];
    int ne = vm_e820(vm, e, 8, false);
    uint64_t rd_addr, rd_size;
    int ret = load_initrd(vm, vm->low_ram, &rd_addr, &rd_size);
    if (ret < 0) {
        return ret;
    }
    uint32_t v32;
    uint64_t v64;
    v32 = 0x336ec578; memcpy(si, &v32, 4);
    v32 = 1; memcpy(si + 4, &v32, 4);
    v32 = rd_size ? 1 : 0; memcpy(si + 12, &v32, 4);
    v64 = BOOT_START_INFO + 0x300; memcpy(si + 16, &v64, 8);
    v64 = BOOT_CMDLINE; memcpy(si + 24, &v64, 8);
    v64 = 0xe0000; memcpy(si + 32, &v64, 8); /* RSDP (acpi.c) */
    v64 = BOOT_START_INFO + 0x100; memcpy(si + 40, &v64, 8);
    v32 = ne; memcpy(si + 48, &v32, 4);
    for (int i = 0; i < ne; i++) {
        uint8_t *m = si + 0x100 + 24 * i;
        memcpy(m, &e[i].addr, 8);
        memcpy(m + 8, &e[i].size, 8);
        memcpy(m + 16, &e[i].type, 4);
    }
    memcpy(si + 0x300, &rd_addr, 8);
    memcpy(si + 0x308, &rd_size, 8);
    ret = put(vm, BOOT_START_INFO, si, sizeof(si));
    if (ret < 0) {
        return ret;
    }
    vm->boot = VM_BOOT_PVH;
    vm->boot_entry = entry;
    vm->boot_arg = BOOT_START_INFO;
    return 0;
}

/* A bzImage, entered through its 64-bit entry point. */
static int load_bzimage(struct vm *vm, const uint8_t *k, size_t len)
{
    uint8_t *bp = vm_gpa(vm, BOOT_PARAMS, 0x1000);
    unsigned setup_sects = k[0x1f1] ? k[0x1f1] : 4;
    uint16_t version = rd(k + 0x206, 2);
    size_t setup_len = (setup_sects + 1) * 512ull;

    if (version < 0x20c || !(rd(k + 0x236, 2) & 1)) {
        vm_error("%s: kernel too old (no 64-bit entry point)",
                 vm->cfg->kernel);
        return -EINVAL;
    }
    if (setup_len >= len || !bp) {
        return -EINVAL;
    }
    if (put(vm, KERNEL_BASE, k + setup_len, len - setup_len) < 0) {
        vm_error("kernel does not fit in guest RAM");
        return -ENOSPC;
    }
    memset(bp, 0, 0x1000);
    size_t hdr_end = 0x202 + k[0x201];
    if (hdr_end > 0x1000 || hdr_end > len) {
        return -EINVAL;
    }
    memcpy(bp + 0x1f1, k + 0x1f1, hdr_end - 0x1f1);
    bp[0x210] = 0xff;                     /* type_of_loader: undefined */
    bp[0x211] |= 0x80 | 0x01;             /* CAN_USE_HEAP, LOADED_HIGH */
    uint16_t heap = 0xe000 - 0x200;
    memcpy(bp + 0x224, &heap, 2);
    uint32_t v = BOOT_CMDLINE;
    memcpy(bp + 0x228, &v, 4);
    uint64_t rd_addr, rd_size;
    uint32_t max = rd(k + 0x22c, 4);
    int ret = load_initrd(vm, max ? (uint64_t)max + 1 : 0x38000000,
                          &rd_addr, &rd_size);
    if (ret < 0) {
        return ret;
    }
    v = rd_addr;
    memcpy(bp + 0x218, &v, 4);
    v = rd_size;
    memcpy(bp + 0x21c, &v, 4);
    uint64_t rsdp = 0xe0000;
    memcpy(bp + 0x70, &rsdp, 8);
    struct vm_e820 e[8];
    int ne = vm_e820(vm, e, 8, false);
    bp[0x1e8] = ne;
    memcpy(bp + 0x2d0, e, ne * sizeof(e[0]));
    vm->boot = VM_BOOT_LINUX64;
    vm->boot_entry = KERNEL_BASE + 0x200;
    vm->boot_arg = BOOT_PARAMS;
    return 0;
}

int vm_boot_kernel(struct vm *vm)
{
    uint8_t *k;
    size_t len;
    int ret = read_file(vm->cfg->kernel, &k, &len, vm->low_ram);

    if (ret < 0) {
        vm_error("cannot read kernel %s: %s", vm->cfg->kernel,
                 strerror(-ret));
        return ret;
    }
    vm_acpi_build(vm);
    ret = put_cmdline(vm);
    if (ret == 0) {
        if (len > 0x210 && rd(k + 0x202, 4) == 0x53726448) { /* "HdrS" */
            ret = load_bzimage(vm, k, len);
        } else if (len > 4 && !memcmp(k, ELFMAG, 4)) {
            ret = load_pvh(vm, k, len);
        } else {
            vm_error("%s: neither a bzImage nor an ELF kernel",
                     vm->cfg->kernel);
            ret = -EINVAL;
        }
    }
    free(k);
    if (ret == -EINVAL) {
        vm_error("%s: invalid kernel image", vm->cfg->kernel);
    }
    return ret;
}

int vm_boot_firmware(struct vm *vm)
{
    const char *path = vm->cfg->bios ? vm->cfg->bios
                                     : "/usr/share/seabios/bios.bin";
    uint8_t *buf;
    size_t len;
    int ret = read_file(path, &buf, &len, 16u << 20);

    if (ret < 0) {
        vm_error("cannot read firmware %s: %s", path, strerror(-ret));
        return ret;
    }
    if (len < 0x10000 || len % 0x1000) {
        free(buf);
        vm_error("%s: not a firmware image", path);
        return -EINVAL;
    }
    vm->bios_size = len;
    vm->bios = mmap(NULL, len, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (vm->bios == MAP_FAILED) {
        vm->bios = NULL;
        free(buf);
        return -ENOMEM;
    }
    memcpy(vm->bios, buf, len);
    /* the last 128 KiB also appear below 1 MiB (here: copied into RAM) */
    size_t low = len < 0x20000 ? len : 0x20000;
    ret = put(vm, 0x100000 - low, buf + len - low, low);
    free(buf);
    if (ret < 0) {
        return ret;
    }
    struct kvm_userspace_memory_region mr = {
        .slot = 2, .flags = KVM_MEM_READONLY,
        .guest_phys_addr = 0x100000000ull - len, .memory_size = len,
        .userspace_addr = (uintptr_t)vm->bios,
    };
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0) {
        vm_error("cannot map the firmware: %s", strerror(errno));
        return -errno;
    }
    vm->boot = VM_BOOT_FIRMWARE;
    return vm_fw_cfg_init(vm);
}

/* A flat segment descriptor for the vCPU's cached state. */
static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool l)
{
    *s = (struct kvm_segment){
        .base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
        .present = 1, .dpl = 0, .db = l ? 0 : 1, .s = 1, .l = l, .g = 1,
    };
}

/* Flat GDT (null, null, code64 0x10, data 0x18, code32 0x20) and, for
 * 64-bit entry, identity page tables for the first 4 GiB. */
static void boot_tables(struct vm *vm, bool paging)
{
    uint64_t gdt[5] = {
        0, 0, 0x00af9b000000ffffull, 0x00cf93000000ffffull,
        0x00cf9b000000ffffull,
    };

    put(vm, BOOT_GDT, gdt, sizeof(gdt));
    if (!paging) {
        return;
    }
    uint64_t *pml4 = vm_gpa(vm, BOOT_PML4, 0x6000);
    memset(pml4, 0, 0x6000);
    uint64_t *pdpt = pml4 + 512;
    pml4[0] = (BOOT_PML4 + 0x1000) | 3;
    for (int i = 0; i < 4; i++) {
        uint64_t *pd = pml4 + 512 * (2 + i);
        pdpt[i] = (BOOT_PML4 + 0x2000 + 0x1000ull * i) | 3;
        for (int j = 0; j < 512; j++) {
            pd[j] = (((uint64_t)i << 30) + ((uint64_t)j << 21)) | 0x83;
        }
    }
}

int vm_boot_setup_cpu(struct vm *vm, struct vm_cpu *cpu)
{
    struct kvm_sregs sr;
    struct kvm_regs r = {0};
    bool lm = vm->boot == VM_BOOT_LINUX64;

    if (vm->boot == VM_BOOT_FIRMWARE || cpu->id != 0) {
        return 0; /* reset state; APs wait for INIT/SIPI */
    }
    if (ioctl(cpu->fd, KVM_GET_SREGS, &sr) < 0) {
        return -errno;
    }
    boot_tables(vm, lm);
    seg(&sr.cs, lm ? 0x10 : 0x20, 11, lm);
    seg(&sr.ds, 0x18, 3, false);
    sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
    sr.tr = (struct kvm_segment){.limit = 0x67, .type = 11, .present = 1};
    sr.ldt = (struct kvm_segment){.limit = 0xffff, .type = 2, .present = 1};
    sr.gdt.base = BOOT_GDT;
    sr.gdt.limit = 5 * 8 - 1;
    sr.idt.base = 0;
    sr.idt.limit = 0;
    sr.cr0 = 0x11; /* PE, ET */
    sr.cr4 = 0;
    sr.efer = 0;
    if (lm) {
        sr.cr3 = BOOT_PML4;
        sr.cr4 = 1u << 5;                  /* PAE */
        sr.cr0 |= 0x80000000u;             /* PG */
        sr.efer = (1u << 8) | (1u << 10);  /* LME, LMA */
        r.rsi = vm->boot_arg;
    } else {
        r.rbx = vm->boot_arg;
    }
    r.rip = vm->boot_entry;
    r.rflags = 2;
    if (ioctl(cpu->fd, KVM_SET_SREGS, &sr) < 0 ||
        ioctl(cpu->fd, KVM_SET_REGS, &r) < 0) {
        return -errno;
    }
    return 0;
}
