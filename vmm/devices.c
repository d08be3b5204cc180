/* Legacy PC devices: 16550 UART (COM1), i8042 (reset line), CMOS/RTC,
 * ACPI PM registers (power-off), the isa-debug-exit port, port 0x92 and
 * SeaBIOS's debug console. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "vm.h"

#define UART_IRQ 4
#define UART_FIFO 64

struct vm_uart {
    struct vm *vm;
    struct vm_region r;
    int out_fd, in_fd;
    uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
    uint8_t rx[UART_FIFO];
    int rx_head, rx_len;
    bool thr_irq;          /* THR-empty interrupt pending */
    bool in_paused;
    int irq_level;         /* last level set on UART_IRQ, -1: none yet */
    struct loop_bh resume;
};

struct legacy {
    struct vm *vm;
    struct vm_uart uart;
    struct vm_region kbd, cmos, exitp, pm, p92, dbg, post;
    /* i8042 */
    uint8_t kbd_q[16];
    int kbd_qlen;
    uint8_t kbd_ctr, kbd_pending_cmd;
    /* CMOS */
    uint8_t cmos_idx;
    uint8_t cmos_ram[128];
    /* ACPI PM */
    uint16_t pm_sts, pm_en, pm_cnt;
    struct termios saved_tio;
    bool tio_saved;
};

static void uart_update_irq(struct vm_uart *u)
{
    bool rx = (u->ier & 1) && u->rx_len;
    bool tx = (u->ier & 2) && u->thr_irq;

    /* OUT2 (MCR bit 3) gates the interrupt line on a PC; only changes
     * cost an ioctl (one per byte written otherwise) */
    int level = (rx || tx) && (u->mcr & 8) ? 1 : 0;
    if (level != u->irq_level) {
        u->irq_level = level;
        vm_set_irq(u->vm, UART_IRQ, level);
    }
}

static void uart_stdin_read(void *opaque);

/* Main loop: the FIFO drained, read stdin again. */
static void uart_resume_bh(void *opaque)
{
    struct vm_uart *u = opaque;

    loop_set_fd_handler(u->vm->loop, u->in_fd, uart_stdin_read, NULL, u);
}

/* 16550 register reads (DLAB selects the divisor latch). */
static void uart_read(void *opaque, uint64_t off, uint8_t *data,
                      unsigned size)
{
    struct vm_uart *u = opaque;
    uint8_t v = 0;

    (void)size;
    switch (off) {
    case 0:
        if (u->lcr & 0x80) {
            v = u->dll;
        } else if (u->rx_len) {
            v = u->rx[u->rx_head];
            u->rx_head = (u->rx_head + 1) % UART_FIFO;
            if (--u->rx_len == 0 && u->in_paused) {
                u->in_paused = false;
                loop_defer_bh(u->vm->loop, &u->resume);
            }
        }
        break;
    case 1:
        v = u->lcr & 0x80 ? u->dlm : u->ier;
        break;
    case 2:
        if ((u->ier & 1) && u->rx_len) {
            v = 0x04;
        } else if ((u->ier & 2) && u->thr_irq) {
            v = 0x02;
            u->thr_irq = false;
        } else {
            v = 0x01;
        }
        if (u->fcr & 1) {
            v |= 0xc0;
        }
        break;
    case 3: v = u->lcr; break;
    case 4: v = u->mcr; break;
    case 5: v = 0x60 | (u->rx_len ? 1 : 0); break;
    case 6: v = 0xb0; break; /* DCD, DSR, CTS */
    case 7: v = u->scr; break;
    }
    data[0] = v;
    uart_update_irq(u);
}

/* 16550 register writes: THR goes straight to the output. */
static void uart_write(void *opaque, uint64_t off, const uint8_t *data,
                       unsigned size)
{
    struct vm_uart *u = opaque;
    uint8_t v = data[0];

    (void)size;
    switch (off) {
    case 0:
        if (u->lcr & 0x80) {
            u->dll = v;
        } else {
            if (u->out_fd >= 0 && !(u->mcr & 0x10)) {
                ssize_t n = write(u->out_fd, &v, 1);
                (void)n;
            }
            u->thr_irq = true;
        }
        break;
    case 1:
        if (u->lcr & 0x80) {
            u->dlm = v;
        } else {
            if ((v & 2) && !(u->ier & 2)) {
                u->thr_irq = true;
            }
            u->ier = v & 0x0f;
        }
        break;
    case 2: u->fcr = v; break;
    case 3: u->lcr = v; break;
    case 4: u->mcr = v & 0x1f; break;
    case 7: u->scr = v; break;
    }
    uart_update_irq(u);
}

/* Main loop: bytes typed on stdin go to the receive FIFO. */
static void uart_stdin_read(void *opaque)
{
    struct vm_uart *u = opaque;
    uint8_t buf[UART_FIFO];

    pthread_mutex_lock(&u->vm->lock);
    int room = UART_FIFO - u->rx_len;
    ssize_t n = room ? read(u->in_fd, buf, room) : 0;
    if (n <= 0 && !(n < 0 && errno == EAGAIN)) {
        /* EOF, error, or a full FIFO: stop watching until drained */
        loop_set_fd_handler(u->vm->loop, u->in_fd, NULL, NULL, NULL);
        u->in_paused = room == 0;
    }
    for (ssize_t i = 0; i < n; i++) {
        u->rx[(u->rx_head + u->rx_len++) % UART_FIFO] = buf[i];
    }
    uart_update_irq(u);
    pthread_mutex_unlock(&u->vm->lock);
}

/* ---- i8042 ---- */

static void kbd_push(struct legacy *l, uint8_t v)
{
    if (l->kbd_qlen < (int)sizeof(l->kbd_q)) {
        l->kbd_q[l->kbd_qlen++] = v;
    }
}

/* i8042 data (0x60) and status (0x64). */
static void kbd_read(void *opaque, uint64_t off, uint8_t *data,
                     unsigned size)
{
    struct legacy *l = opaque;

    (void)size;
    if (off == 0) {
        data[0] = l->kbd_qlen ? l->kbd_q[0] : 0;
        if (l->kbd_qlen) {
            memmove(l->kbd_q, l->kbd_q + 1, --l->kbd_qlen);
        }
    } else if (off == 4) {
        data[0] = 0x14 | (l->kbd_qlen ? 1 : 0); /* sys flag, unlocked */
    } else {
        data[0] = 0xff;
    }
}

/* i8042 controller commands and keyboard commands. */
static void kbd_write(void *opaque, uint64_t off, const uint8_t *data,
                      unsigned size)
{
    struct legacy *l = opaque;
    uint8_t v = data[0];

    (void)size;
    if (off == 4) {
        switch (v) {
        case 0x20: kbd_push(l, l->kbd_ctr); break;
        case 0x60: case 0xd1: case 0xd4: l->kbd_pending_cmd = v; break;
        case 0xaa: kbd_push(l, 0x55); break;
        case 0xa9: case 0xab: kbd_push(l, 0x00); break;
        case 0xfe: vm_request_exit(l->vm, VM_EXIT_RESET); break;
        default: break;
        }
        return;
    }
    if (off != 0) {
        return;
    }
    uint8_t cmd = l->kbd_pending_cmd;
    l->kbd_pending_cmd = 0;
    if (cmd == 0x60) {
        l->kbd_ctr = v;
    } else if (cmd == 0xd1) {
        if (!(v & 1)) {
            vm_request_exit(l->vm, VM_EXIT_RESET);
        }
    } else if (cmd == 0xd4) {
        /* no mouse behind the aux port: answer nothing */
    } else {
        /* keyboard commands */
        kbd_push(l, 0xfa);
        if (v == 0xff) {
            kbd_push(l, 0xaa);
        } else if (v == 0xf2) {
            kbd_push(l, 0xab);
            kbd_push(l, 0x83);
        }
    }
}

/* ---- CMOS / RTC ---- */

static uint8_t bcd(int v)
{
    return (uint8_t)(((v / 10) << 4) | (v % 10));
}

/* CMOS index (0x70) and data (0x71): the clock is the host's UTC. */
static void cmos_read(void *opaque, uint64_t off, uint8_t *data,
                      unsigned size)
{
    struct legacy *l = opaque;
    uint8_t i = l->cmos_idx & 0x7f;
    time_t now = time(NULL);
    struct tm tm;

    (void)size;
    if (off == 0) {
        data[0] = 0xff;
        return;
    }
    gmtime_r(&now, &tm);
    switch (i) {
    case 0x00: data[0] = bcd(tm.tm_sec); break;
    case 0x02: data[0] = bcd(tm.tm_min); break;
    case 0x04: data[0] = bcd(tm.tm_hour); break;
    case 0x06: data[0] = bcd(tm.tm_wday + 1); break;
    case 0x07: data[0] = bcd(tm.tm_mday); break;
    case 0x08: data[0] = bcd(tm.tm_mon + 1); break;
    case 0x09: data[0] = bcd(tm.tm_year % 100); break;
    case 0x32: data[0] = bcd(19 + tm.tm_year / 100); break;
    case 0x0c: data[0] = 0; break;
    default: data[0] = l->cmos_ram[i]; break;
    }
}

/* Only the status and NVRAM bytes are writable, not the clock. */
static void cmos_write(void *opaque, uint64_t off, const uint8_t *data,
                       unsigned size)
{
    struct legacy *l = opaque;

    (void)size;
    if (off == 0) {
        l->cmos_idx = data[0];
    } else {
        uint8_t i = l->cmos_idx & 0x7f;
        if (i >= 0x0e || i == 0x0a || i == 0x0b) {
            l->cmos_ram[i] = data[0];
        }
    }
}

/* The NVRAM a PC BIOS expects: memory sizes, CPU count, boot disk. */
static void cmos_init(struct legacy *l, struct vm *vm)
{
    uint8_t *c = l->cmos_ram;
    uint64_t ext = vm->low_ram > 0x100000 ? (vm->low_ram - 0x100000) >> 10
                                          : 0;
    uint64_t above16 = vm->low_ram > (16u << 20)
                           ? (vm->low_ram - (16u << 20)) >> 16 : 0;
    uint64_t high = vm->high_ram >> 16;

    if (ext > 0xfc00) {
        ext = 0xfc00;
    }
    if (above16 > 0xffff) {
        above16 = 0xffff;
    }
    c[0x0a] = 0x26;
    c[0x0b] = 0x02; /* 24 hour, BCD */
    c[0x0d] = 0x80; /* battery good */
    c[0x10] = 0;    /* no floppy */
    c[0x14] = 0x06; /* equipment: display, coprocessor */
    c[0x15] = 0x80; /* 640 KiB base memory */
    c[0x16] = 0x02;
    c[0x17] = c[0x30] = ext & 0xff;
    c[0x18] = c[0x31] = ext >> 8;
    c[0x34] = above16 & 0xff;
    c[0x35] = above16 >> 8;
    c[0x5b] = high & 0xff;
    c[0x5c] = (high >> 8) & 0xff;
    c[0x5d] = (high >> 16) & 0xff;
    c[0x5f] = vm->ncpus - 1;
    c[0x3d] = 0x02; /* boot from hard disk */
}

/* ---- exit port, ACPI PM, port 0x92, debug console ---- */

static void exit_write(void *opaque, uint64_t off, const uint8_t *data,
                       unsigned size)
{
    struct legacy *l = opaque;

    (void)off;
    (void)size;
    /* isa-debug-exit: status (value << 1) | 1, as QEMU */
    vm_request_exit(l->vm, ((data[0] << 1) | 1) & 0xff);
}

/* PM1a_EVT, PM1a_CNT (SCI_EN always set) and the PM timer. */
static void pm_read(void *opaque, uint64_t off, uint8_t *data,
                    unsigned size)
{
    struct legacy *l = opaque;
    uint8_t regs[12];
    uint32_t tmr = (uint32_t)((clock_ns() * 3579545ull) / 1000000000ull)
                   & 0xffffff;

    memcpy(regs, &l->pm_sts, 2);
    memcpy(regs + 2, &l->pm_en, 2);
    uint32_t cnt = l->pm_cnt | 1; /* SCI_EN: always in ACPI mode */
    memcpy(regs + 4, &cnt, 4);
    memcpy(regs + 8, &tmr, 4);
    memset(data, 0, size);
    if (off + size <= sizeof(regs)) {
        memcpy(data, regs + off, size);
    }
}

/* SLP_EN with SLP_TYP 5 in PM1a_CNT is the power-off. */
static void pm_write(void *opaque, uint64_t off, const uint8_t *data,
                     unsigned size)
{
    struct legacy *l = opaque;
    uint32_t v = 0;

    memcpy(&v, data, size > 4 ? 4 : size);
    if (off == 0) {
        l->pm_sts &= ~v; /* write one to clear */
    } else if (off == 2) {
        l->pm_en = v;
    } else if (off == 4) {
        l->pm_cnt = v & ~(1u << 13);
        if ((v & (1u << 13)) && ((v >> 10) & 7) == VM_ACPI_SLP_TYP_S5) {
            vm_request_exit(l->vm, VM_EXIT_POWEROFF);
        }
    }
}

/* Port 0x92: A20 is always enabled. */
static void p92_read(void *opaque, uint64_t off, uint8_t *data,
                     unsigned size)
{
    (void)opaque;
    (void)off;
    (void)size;
    data[0] = 0x02; /* A20 on */
}

/* Port 0x92 bit 0: fast reset. */
static void p92_write(void *opaque, uint64_t off, const uint8_t *data,
                      unsigned size)
{
    struct legacy *l = opaque;

    (void)off;
    (void)size;
    if (data[0] & 1) {
        vm_request_exit(l->vm, VM_EXIT_RESET);
    }
}

/* Port 0x402 answers 0xe9 when -debugcon is on, as QEMU's. */
static void dbg_read(void *opaque, uint64_t off, uint8_t *data,
                     unsigned size)
{
    struct legacy *l = opaque;

    (void)off;
    (void)size;
    data[0] = l->vm->cfg->debugcon ? 0xe9 : 0xff;
}

/* Firmware debug output, to stderr with -debugcon. */
static void dbg_write(void *opaque, uint64_t off, const uint8_t *data,
                      unsigned size)
{
    struct legacy *l = opaque;

    (void)off;
    (void)size;
    if (l->vm->cfg->debugcon) {
        ssize_t n = write(2, data, 1);
        (void)n;
    }
}

int vm_devices_init(struct vm *vm)
{
    struct legacy *l = calloc(1, sizeof(*l));
    struct vm_uart *u;

    if (!l) {
        abort();
    }
    l->vm = vm;
    u = &l->uart;
    u->vm = vm;
    u->out_fd = u->in_fd = -1;
    u->irq_level = -1;
    vm->uart = u;
    if (vm->cfg->serial == VM_SERIAL_STDIO) {
        u->out_fd = 1;
        u->in_fd = 0;
    } else if (vm->cfg->serial == VM_SERIAL_FILE) {
        /* truncated once per run: output after a reboot is appended */
        static bool truncated;
        u->out_fd = open(vm->cfg->serial_path,
                         O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
                         (truncated ? 0 : O_TRUNC), 0644);
        truncated = true;
        if (u->out_fd < 0) {
            vm_error("cannot open %s: %s", vm->cfg->serial_path,
                     strerror(errno));
            free(l);
            vm->uart = NULL;
            return -errno;
        }
    }
    loop_bh_init(&u->resume, uart_resume_bh, u);
    if (u->in_fd >= 0) {
        if (isatty(u->in_fd) && tcgetattr(u->in_fd, &l->saved_tio) == 0) {
            struct termios t = l->saved_tio;
            t.c_lflag &= ~(ICANON | ECHO);
            t.c_iflag &= ~(ICRNL | IXON);
            tcsetattr(u->in_fd, TCSANOW, &t);
            l->tio_saved = true;
        }
        fcntl(u->in_fd, F_SETFL, fcntl(u->in_fd, F_GETFL) | O_NONBLOCK);
        loop_set_fd_handler(vm->loop, u->in_fd, uart_stdin_read, NULL, u);
    }
    u->r = (struct vm_region){.base = 0x3f8, .len = 8, .read = uart_read,
                              .write = uart_write, .opaque = u};
    l->kbd = (struct vm_region){.base = 0x60, .len = 5, .read = kbd_read,
                                .write = kbd_write, .opaque = l};
    l->cmos = (struct vm_region){.base = 0x70, .len = 2, .read = cmos_read,
                                 .write = cmos_write, .opaque = l};
    l->exitp = (struct vm_region){.base = VM_DEBUG_EXIT_PORT, .len = 4,
                                  .write = exit_write, .opaque = l};
    l->pm = (struct vm_region){.base = VM_ACPI_PM_BASE, .len = 12,
                               .read = pm_read, .write = pm_write,
                               .opaque = l};
    l->p92 = (struct vm_region){.base = 0x92, .len = 1, .read = p92_read,
                                .write = p92_write, .opaque = l};
    l->dbg = (struct vm_region){.base = 0x402, .len = 1, .read = dbg_read,
                                .write = dbg_write, .opaque = l};
    /* POST codes: accepted and ignored */
    l->post = (struct vm_region){.base = 0x80, .len = 1, .opaque = l};
    cmos_init(l, vm);
    vm_bus_add(&vm->pio, &u->r);
    vm_bus_add(&vm->pio, &l->kbd);
    vm_bus_add(&vm->pio, &l->cmos);
    vm_bus_add(&vm->pio, &l->exitp);
    vm_bus_add(&vm->pio, &l->pm);
    vm_bus_add(&vm->pio, &l->p92);
    vm_bus_add(&vm->pio, &l->dbg);
    vm_bus_add(&vm->pio, &l->post);
    return 0;
}

void vm_devices_free(struct vm *vm)
{
    struct vm_uart *u = vm->uart;

    if (!u) {
        return;
    }
    struct legacy *l = (struct legacy *)((char *)u -
                                         offsetof(struct legacy, uart));
    if (u->in_fd >= 0) {
        loop_set_fd_handler(vm->loop, u->in_fd, NULL, NULL, NULL);
        fcntl(u->in_fd, F_SETFL, fcntl(u->in_fd, F_GETFL) & ~O_NONBLOCK);
        if (l->tio_saved) {
            tcsetattr(u->in_fd, TCSANOW, &l->saved_tio);
        }
    }
    if (vm->cfg->serial == VM_SERIAL_FILE && u->out_fd >= 0) {
        close(u->out_fd);
    }
    free(l);
    vm->uart = NULL;
}
