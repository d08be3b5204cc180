/* Guest RAM: anonymous memory, or a file in -mem-path (hugetlbfs gives
 * huge pages, as QEMU's -mem-path), optionally populated up front
 * (-mem-prealloc); then the KVM memory slots below and above the PCI
 * hole. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "vm.h"

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* The backing file: a new unlinked file in a directory, or the named
 * file itself (kept, as QEMU does).  Returns the fd or -errno. */
static int ram_open_file(const char *path)
{
    struct stat st;
    int fd;

    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof(tmp), "%s/strata-vm.XXXXXX", path);
        fd = mkstemp(tmp);
        if (fd >= 0) {
            unlink(tmp);
            fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
    } else {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    }
    return fd < 0 ? -errno : fd;
}

/* Map vm->ram_size bytes from -mem-path; messages say why not. */
static int ram_map_file(struct vm *vm, const char *path)
{
    struct statfs fs;
    int fd = ram_open_file(path);
    bool huge;
    uint64_t page;

    if (fd < 0) {
        vm_error("-mem-path %s: %s", path, strerror(-fd));
        return fd;
    }
    if (fstatfs(fd, &fs) < 0) {
        int e = -errno;
        vm_error("-mem-path %s: %s", path, strerror(errno));
        close(fd);
        return e;
    }
    huge = (uint32_t)fs.f_type == HUGETLBFS_MAGIC;
    page = huge ? (uint64_t)fs.f_bsize : (uint64_t)getpagesize();
    if (vm->ram_size % page) {
        vm_error("-mem-path %s: -m must be a multiple of its %llu KiB "
                 "pages", path, (unsigned long long)page >> 10);
        close(fd);
        return -EINVAL;
    }
    if (ftruncate(fd, vm->ram_size) < 0) {
        int e = -errno;
        vm_error("-mem-path %s: cannot size the RAM file to %llu bytes: %s",
                 path, (unsigned long long)vm->ram_size, strerror(errno));
        close(fd);
        return e;
    }
    /* private, as QEMU's default: guest writes never reach the file */
    vm->ram = mmap(NULL, vm->ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE,
                   fd, 0);
    int e = errno;
    close(fd);
    if (vm->ram == MAP_FAILED) {
        vm->ram = NULL;
        if (huge && e == ENOMEM) {
            vm_error("-mem-path %s: not enough free %llu KiB hugepages for "
                     "%llu MiB of guest RAM (see HugePages_Free in "
                     "/proc/meminfo and vm.nr_hugepages)", path,
                     (unsigned long long)page >> 10,
                     (unsigned long long)vm->ram_size >> 20);
        } else {
            vm_error("-mem-path %s: cannot map %llu bytes of guest RAM: %s",
                     path, (unsigned long long)vm->ram_size, strerror(e));
        }
        return -e;
    }
    return 0;
}

/* -mem-prealloc: every page allocated now, so the guest never waits for
 * (or dies of) a page the host cannot give. */
static int ram_prealloc(struct vm *vm)
{
    if (madvise(vm->ram, vm->ram_size, MADV_POPULATE_WRITE) == 0) {
        return 0;
    }
    if (errno != EINVAL) {
        int e = errno;
        vm_error("-mem-prealloc: cannot allocate %llu MiB of guest RAM: %s",
                 (unsigned long long)vm->ram_size >> 20, strerror(e));
        return -e;
    }
    /* kernels before 5.14: touch each page (private: no SIGBUS here) */
    long ps = getpagesize();
    for (uint64_t o = 0; o < vm->ram_size; o += ps) {
        ((volatile uint8_t *)vm->ram)[o] = 0;
    }
    return 0;
}

int vm_setup_ram(struct vm *vm)
{
    const struct vm_config *cfg = vm->cfg;
    struct kvm_userspace_memory_region mr;
    int ret;

    if (cfg->mem_path) {
        ret = ram_map_file(vm, cfg->mem_path);
        if (ret < 0) {
            return ret;
        }
    } else {
        vm->ram = mmap(NULL, vm->ram_size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS |
                       (cfg->mem_prealloc ? 0 : MAP_NORESERVE), -1, 0);
        if (vm->ram == MAP_FAILED) {
            vm->ram = NULL;
            vm_error("cannot allocate %llu bytes of guest RAM: %s",
                     (unsigned long long)vm->ram_size, strerror(errno));
            return -ENOMEM;
        }
        madvise(vm->ram, vm->ram_size, MADV_MERGEABLE);
    }
    if (cfg->mem_prealloc) {
        ret = ram_prealloc(vm);
        if (ret < 0) {
            return ret;
        }
    }
    vm->low_ram = vm->ram_size < VM_LOW_RAM_END ? vm->ram_size
                                                : VM_LOW_RAM_END;
    vm->high_ram = vm->ram_size - vm->low_ram;
    mr = (struct kvm_userspace_memory_region){
        .slot = 0, .guest_phys_addr = 0, .memory_size = vm->low_ram,
        .userspace_addr = (uintptr_t)vm->ram,
    };
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0) {
        vm_error("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
        return -errno;
    }
    if (vm->high_ram) {
        mr = (struct kvm_userspace_memory_region){
            .slot = 1, .guest_phys_addr = VM_HIGH_RAM_BASE,
            .memory_size = vm->high_ram,
            .userspace_addr = (uintptr_t)(vm->ram + vm->low_ram),
        };
        if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0) {
            vm_error("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
            return -errno;
        }
    }
    return 0;
}
