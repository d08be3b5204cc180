/* strata-vm: command line (QEMU's spelling), disks, and the machine's
 * life cycle (run, reboot on reset unless -no-reboot, exit code). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "block.h"
#include "error.h"
#include "options.h"
#include "vm.h"

/* --help. */
static void usage(FILE *f)
{
    fputs(
"Usage: strata-vm [options] [disk_image]\n"
"\n"
"Boot an x86-64 KVM guest whose disks are strata images.\n"
"\n"
"  -m SIZE             guest RAM (default 128M; a bare number is MiB)\n"
"  -smp N              number of vCPUs (default 1)\n"
"  -mem-path PATH      guest RAM from a file in directory PATH (or the file\n"
"                      PATH): huge pages when PATH is on hugetlbfs\n"
"  -mem-prealloc       allocate all guest RAM before the guest starts\n"
"  -kernel FILE        boot this kernel directly (bzImage or PVH ELF)\n"
"  -initrd FILE        initial ramdisk for -kernel\n"
"  -append CMDLINE     kernel command line\n"
"  -bios FILE          firmware when no -kernel\n"
"                      (default /usr/share/seabios/bios.bin)\n"
"  -drive OPTS         a virtio-blk disk: file=PATH[,format=FMT][,if=virtio]\n"
"                      [,cache=MODE][,aio=threads|native|io_uring]\n"
"                      [,readonly=on][,snapshot=on][,serial=ID]\n"
"                      [,num-queues=N] (virtio-blk queues, 1 to 8)\n"
"  -hda FILE           shorthand for -drive file=FILE\n"
"  -snapshot           write to temporary overlays, discarded at exit\n"
"  -serial DEV         stdio (default), file:PATH or none\n"
"  -no-reboot          exit when the guest resets\n"
"  -name NAME          name of the process\n"
"  -pidfile FILE       write the process id to FILE\n"
"  -debugcon stdio     firmware debug output (port 0x402) on stderr\n"
"  -h, --help          this help\n"
"\n"
"Exit status: 0 guest powered off, 2 guest reset (-no-reboot), 4 guest\n"
"crashed, 8 strata-vm error, 2*V+1 guest wrote V to port 0xf4, 128+N\n"
"signal N.\n", f);
}

/* Parse one -drive argument. */
static int parse_drive(struct vm_config *cfg, const char *arg)
{
    struct strata_error *err = NULL;
    struct blk_opts *o = opts_new();
    struct vm_drive *d;
    int ret = -EINVAL;

    if (cfg->ndrives == VM_MAX_DRIVES) {
        vm_error("too many drives (at most %d)", VM_MAX_DRIVES);
        goto out;
    }
    d = &cfg->drives[cfg->ndrives];
    if (opts_parse(o, arg, "file", &err) < 0) {
        vm_error("-drive %s: %s", arg, error_msg(err, -EINVAL));
        strata_error_free(err);
        goto out;
    }
    for (int i = 0; i < o->n; i++) {
        const char *k = o->v[i].key, *v = o->v[i].value;
        bool b;
        if (!strcmp(k, "file")) {
            d->file = strdup(v);
        } else if (!strcmp(k, "format")) {
            d->format = strdup(v);
        } else if (!strcmp(k, "cache")) {
            unsigned fl = 0;
            if (blk_parse_cache_mode(v, &fl) < 0) {
                vm_error("-drive: invalid cache mode '%s'", v);
                goto out;
            }
            d->cache = strdup(v);
        } else if (!strcmp(k, "aio")) {
            d->aio = strdup(v);
        } else if (!strcmp(k, "serial")) {
            d->serial = strdup(v);
        } else if (!strcmp(k, "num-queues")) {
            uint64_t n;
            if (parse_uint(v, &n) < 0 || n < 1 || n > VM_MAX_QUEUES) {
                vm_error("-drive: num-queues needs 1 to %d, not '%s'",
                         VM_MAX_QUEUES, v);
                goto out;
            }
            d->num_queues = n;
        } else if (!strcmp(k, "if")) {
            if (strcmp(v, "virtio")) {
                vm_error("-drive: only if=virtio is supported");
                goto out;
            }
        } else if (!strcmp(k, "readonly") || !strcmp(k, "snapshot")) {
            if (parse_bool(v, &b) < 0) {
                vm_error("-drive: %s needs on or off, not '%s'", k, v);
                goto out;
            }
            *(k[0] == 'r' ? &d->readonly : &d->snapshot) = b;
        } else {
            vm_error("-drive: unknown option '%s'", k);
            goto out;
        }
    }
    if (!d->file) {
        vm_error("-drive %s: no file= given", arg);
        goto out;
    }
    cfg->ndrives++;
    ret = 0;
out:
    opts_free(o);
    return ret;
}

/* Open drive i, or a temporary qcow2 overlay over it (snapshot). */
static int open_drive(const struct vm_config *cfg, int i,
                      struct blk_node **out)
{
    const struct vm_drive *d = &cfg->drives[i];
    struct strata_error *err = NULL;
    struct blk_opts *o = opts_new();
    unsigned flags = 0;
    bool snap = d->snapshot || cfg->snapshot;
    char tmp[PATH_MAX] = "";
    int ret;

    blk_parse_cache_mode(d->cache ? d->cache : "writeback", &flags);
    if (d->format) {
        opts_set(o, "driver", d->format);
    }
    if (d->aio) {
        opts_set(o, "file.aio", d->aio);
    }
    if (!d->readonly && !snap) {
        flags |= BLK_O_RDWR;
    }
    if (snap) {
        flags |= BLK_O_FORCE_SHARE;
    }
    ret = blk_open(out, d->file, o, flags, &err);
    if (ret < 0 || !snap || d->readonly) {
        goto out;
    }

    /* the overlay: backing = this image, deleted once open */
    char *abs = realpath(d->file, NULL);
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
    struct blk_opts *co = opts_new();
    char fmt[64];
    uint64_t size = (*out)->size;
    snprintf(fmt, sizeof(fmt), "%s", (*out)->drv->name);
    blk_close(*out);
    *out = NULL;
    snprintf(tmp, sizeof(tmp), "%s/strata-vm-snapshot.XXXXXX", dir);
    int fd = mkstemp(tmp);
    if (fd < 0 || !abs) {
        ret = error_setg(&err, -errno, "cannot create a snapshot overlay "
                         "in %s", dir);
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        free(abs);
        opts_free(co);
        goto out;
    }
    close(fd);
    opts_set_uint(co, "size", size);
    opts_set(co, "backing_file", abs);
    opts_set(co, "backing_fmt", fmt);
    free(abs);
    ret = blk_create(tmp, "qcow2", co, &err);
    opts_free(co);
    if (ret == 0) {
        opts_free(o);
        o = opts_new();
        opts_set(o, "driver", "qcow2");
        if (d->aio) {
            opts_set(o, "file.aio", d->aio);
        }
        flags = (flags & ~BLK_O_FORCE_SHARE) | BLK_O_RDWR | BLK_O_NO_FLUSH;
        ret = blk_open(out, tmp, o, flags, &err);
    }
    unlink(tmp);
out:
    if (ret < 0) {
        vm_error("%s", error_msg(err, ret));
        strata_error_free(err);
    }
    opts_free(o);
    return ret;
}

/* -m: a size with a suffix, or MiB. */
static int parse_mem(const char *s, uint64_t *out)
{
    uint64_t v;
    size_t n = strlen(s);

    if (n && s[n - 1] >= '0' && s[n - 1] <= '9') {
        if (parse_uint(s, &v) < 0 || v > (1ull << 24)) {
            return -EINVAL;
        }
        v <<= 20;
    } else if (parse_size(s, &v) < 0) {
        return -EINVAL;
    }
    if (v < (16u << 20) || v > (1ull << 40)) {
        return -ERANGE;
    }
    *out = (v + 0xfffff) & ~0xfffffull;
    return 0;
}

/* QEMU-style options into cfg; prints the error and returns -1. */
static int parse_args(int argc, char **argv, struct vm_config *cfg)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] == '-' && a[1] == '-' && a[2]) {
            a++; /* --opt is -opt, as in QEMU */
        }
        if (!strcmp(a, "-h") || !strcmp(a, "-help")) {
            usage(stdout);
            exit(0);
        }
        if (a[0] != '-') {
            char buf[PATH_MAX + 8];
            snprintf(buf, sizeof(buf), "file=%s", a);
            if (parse_drive(cfg, buf) < 0) {
                return -1;
            }
            continue;
        }
        if (!strcmp(a, "-snapshot")) {
            cfg->snapshot = true;
            continue;
        }
        if (!strcmp(a, "-no-reboot")) {
            cfg->no_reboot = true;
            continue;
        }
        if (!strcmp(a, "-mem-prealloc")) {
            cfg->mem_prealloc = true;
            continue;
        }
        if (!strcmp(a, "-nographic") || !strcmp(a, "-nodefaults") ||
            !strcmp(a, "-enable-kvm")) {
            continue; /* what strata-vm does anyway */
        }
        if (!v) {
            vm_error("option %s needs an argument (see --help)", argv[i]);
            return -1;
        }
        i++;
        if (!strcmp(a, "-m")) {
            const char *s = strncmp(v, "size=", 5) ? v : v + 5;
            if (parse_mem(s, &cfg->ram_size) < 0) {
                vm_error("-m %s: invalid memory size (16M to 1T)", v);
                return -1;
            }
        } else if (!strcmp(a, "-smp")) {
            uint64_t n;
            const char *s = strncmp(v, "cpus=", 5) ? v : v + 5;
            if (parse_uint(s, &n) < 0 || n < 1 || n > VM_MAX_CPUS) {
                vm_error("-smp %s: need 1 to %d vCPUs", v, VM_MAX_CPUS);
                return -1;
            }
            cfg->ncpus = n;
        } else if (!strcmp(a, "-mem-path")) {
            cfg->mem_path = v;
        } else if (!strcmp(a, "-kernel")) {
            cfg->kernel = v;
        } else if (!strcmp(a, "-initrd")) {
            cfg->initrd = v;
        } else if (!strcmp(a, "-append")) {
            cfg->append = v;
        } else if (!strcmp(a, "-bios")) {
            cfg->bios = v;
        } else if (!strcmp(a, "-drive")) {
            if (parse_drive(cfg, v) < 0) {
                return -1;
            }
        } else if (!strcmp(a, "-hda")) {
            char buf[PATH_MAX + 8];
            snprintf(buf, sizeof(buf), "file=%s", v);
            if (parse_drive(cfg, buf) < 0) {
                return -1;
            }
        } else if (!strcmp(a, "-serial")) {
            if (!strcmp(v, "stdio")) {
                cfg->serial = VM_SERIAL_STDIO;
            } else if (!strcmp(v, "none") || !strcmp(v, "null")) {
                cfg->serial = VM_SERIAL_NONE;
            } else if (!strncmp(v, "file:", 5) && v[5]) {
                cfg->serial = VM_SERIAL_FILE;
                cfg->serial_path = v + 5;
            } else {
                vm_error("-serial %s: use stdio, file:PATH or none", v);
                return -1;
            }
        } else if (!strcmp(a, "-name")) {
            cfg->name = v;
        } else if (!strcmp(a, "-pidfile")) {
            cfg->pidfile = v;
        } else if (!strcmp(a, "-debugcon")) {
            if (strcmp(v, "stdio")) {
                vm_error("-debugcon: only stdio is supported");
                return -1;
            }
            cfg->debugcon = true;
        } else {
            vm_error("unknown option %s (see --help)", argv[i - 1]);
            return -1;
        }
    }
    if ((cfg->initrd || cfg->append) && !cfg->kernel) {
        vm_error("-initrd and -append need -kernel");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct vm_config cfg = {
        .ram_size = 128u << 20, .ncpus = 1, .serial = VM_SERIAL_STDIO,
        .rng = true,
    };
    struct blk_node *disks[VM_MAX_DRIVES] = {0};
    int code = VM_EXIT_ERROR;
    bool pid_written = false;

    if (parse_args(argc, argv, &cfg) < 0) {
        return VM_EXIT_ERROR;
    }
    if (cfg.name) {
        prctl(PR_SET_NAME, cfg.name, 0, 0, 0);
    }
    for (int i = 0; i < cfg.ndrives; i++) {
        if (open_drive(&cfg, i, &disks[i]) < 0) {
            goto out;
        }
    }
    if (cfg.pidfile) {
        FILE *f = fopen(cfg.pidfile, "w");
        if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f)) {
            vm_error("cannot write %s: %s", cfg.pidfile, strerror(errno));
            goto out;
        }
        pid_written = true;
    }
    for (;;) {
        static struct vm vm;
        if (vm_create(&vm, &cfg, disks, cfg.ndrives) < 0) {
            vm_destroy(&vm);
            code = VM_EXIT_ERROR;
            break;
        }
        code = vm_run(&vm);
        vm_destroy(&vm);
        if (code != VM_EXIT_RESET || cfg.no_reboot) {
            break;
        }
    }
    for (int i = 0; i < cfg.ndrives; i++) {
        if (disks[i] && !disks[i]->read_only && blk_flush(disks[i]) < 0 &&
            code == VM_EXIT_POWEROFF) {
            vm_error("flushing %s failed", cfg.drives[i].file);
            code = VM_EXIT_ERROR;
        }
    }
out:
    for (int i = 0; i < cfg.ndrives; i++) {
        if (disks[i]) {
            blk_close(disks[i]);
        }
    }
    if (pid_written) {
        unlink(cfg.pidfile);
    }
    return code;
}
