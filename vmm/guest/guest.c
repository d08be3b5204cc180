/* strata test guest: finds the first virtio-blk PCI device, drives it by
 * polling (no interrupts), runs the operations its parameters ask for,
 * reports on COM1 and leaves through the isa-debug-exit port 0xf4
 * (status 0 = every check passed), ACPI power-off or an i8042 reset.
 *
 * Parameters are words of the kernel command line (PVH boot) or, when the
 * boot sector started us, of the text in disk sector 128 after the
 * "STRATAGUEST:" tag:
 *   check=LBA:COUNT:BYTE   read COUNT sectors at LBA, every byte == BYTE
 *   write=LBA:COUNT:BYTE   write COUNT sectors of BYTE at LBA, then flush
 *   expect-ro              writes must fail with VIRTIO_BLK_S_IOERR
 *   cpus=N                 start the other N-1 vCPUs (INIT-SIPI) and wait
 *   seqread=MiB            read MiB sequentially from LBA 0 (4 requests
 *                          of 256 KiB in flight)
 *   getid                  print the disk's serial (VIRTIO_BLK_T_GET_ID)
 *   initrd=SIZE            the initrd has SIZE bytes, starts STRATAINITRD
 *   rng                    read entropy from the first virtio-rng device
 *   discard=LBA:COUNT      VIRTIO_BLK_T_DISCARD of the range
 *   zero=LBA:COUNT         VIRTIO_BLK_T_WRITE_ZEROES (may unmap)
 *   irq=msix|intx          take completions by interrupt (MSI-X vector
 *                          or the level-triggered INTx line through the
 *                          IOAPIC) instead of polling; every request
 *                          must then raise one
 *   msixmask               (irq=msix) a masked vector must not fire and
 *                          sets its pending bit; unmasking delivers it,
 *                          to the message reprogrammed while masked;
 *                          the same with the function mask
 *   intxlevel              (irq=intx) an interrupt whose ISR was not
 *                          read comes back after the EOI (level); with
 *                          INTx disabled (PCI command bit 10) a
 *                          completion stays silent until it is enabled
 *   blkq=N                 use virtio-blk queue N (accepting
 *                          VIRTIO_BLK_F_MQ) instead of queue 0
 *   end=exit|poweroff|reset  how to leave when every check passed */
#include "guest.h"

#define CONFIG_LBA 128
#define QSIZE 16
#define SEQ_CHUNK (256u << 10)
#define SEQ_DEPTH 4

static int failures;
static uint64_t initrd_addr, initrd_size; /* from the boot loader */

void fail(const char *what)
{
    printf_("FAIL: %s\n", what);
    failures++;
}

/* ---- PCI and virtio ---- */

struct vq_desc { uint64_t addr; uint32_t len; uint16_t flags, next; };

/* One split virtqueue of QSIZE entries. */
struct vq_mem {
    struct vq_desc desc[QSIZE] __attribute__((aligned(4096)));
    struct { uint16_t flags, idx, ring[QSIZE], used_event; } avail
        __attribute__((aligned(4096)));
    volatile struct {
        uint16_t flags, idx;
        struct { uint32_t id, len; } ring[QSIZE];
        uint16_t avail_event;
    } used __attribute__((aligned(4096)));
};

struct vdev {
    int slot;
    uintptr_t common, notify, isr, device;
    uint32_t notify_mult;
    volatile uint16_t *notify_reg;
    uint16_t avail_idx, used_seen;
    uint32_t features0;   /* feature bits 0-31 the device offered */
    struct vq_mem *q;
    bool ro;
    uint64_t capacity;
    volatile uint32_t *msix_table, *msix_pba;
    int qidx;             /* the queue used (others stay disabled) */
};

enum { IRQ_POLL, IRQ_MSIX, IRQ_INTX };
static int irq_mode;

static struct vq_mem blk_q, rng_q;
static struct vdev blk = {.q = &blk_q}, rng = {.q = &rng_q};

struct blk_hdr { uint32_t type, reserved; uint64_t sector; };
static struct blk_hdr hdrs[SEQ_DEPTH];
static volatile uint8_t statuses[SEQ_DEPTH];
static uint8_t buf[SEQ_DEPTH][SEQ_CHUNK] __attribute__((aligned(4096)));

/* Address of BAR `bar` of `slot` (32- or 64-bit memory BAR). */
static uint64_t bar_addr(int slot, int bar)
{
    uint32_t lo = pci_read(slot, 0x10 + 4 * bar);
    uint64_t a = lo & ~0xfu;
    if ((lo & 6) == 4) {
        a |= (uint64_t)pci_read(slot, 0x14 + 4 * bar) << 32;
    }
    return a;
}

/* Find virtio device `devid` (modern 0x1040 + type, or transitional). */
static bool virtio_find(struct vdev *dev, uint32_t modern, uint32_t trans)
{
    for (int slot = 0; slot < 32; slot++) {
        uint32_t id = pci_read(slot, 0);
        if (id != modern && id != trans) {
            continue;
        }
        /* a transitional device (0x1001) has the modern capabilities too */
        dev->slot = slot;
        pci_write(slot, 4, pci_read(slot, 4) | 0x6);
        if (!(pci_read(slot, 4) & 0x100000)) {
            return false;
        }
        for (int p = pci_read(slot, 0x34) & 0xff; p; ) {
            uint32_t h = pci_read(slot, p);
            if ((h & 0xff) == 0x09) {
                int type = (h >> 24) & 0xff;
                int bar = pci_read(slot, p + 4) & 0xff;
                uintptr_t a = bar_addr(slot, bar) + pci_read(slot, p + 8);
                if (type == 1) {
                    dev->common = a;
                } else if (type == 2) {
                    dev->notify = a;
                    dev->notify_mult = pci_read(slot, p + 16);
                } else if (type == 3) {
                    dev->isr = a;
                } else if (type == 4) {
                    dev->device = a;
                }
            }
            p = (h >> 8) & 0xff;
        }
        if (!dev->common || !dev->notify || !dev->device) {
            printf_("pci %d: no modern virtio capabilities\n", slot);
            continue;
        }
        return true;
    }
    return false;
}

/* Reset, negotiate VERSION_1 (+ `accept` of bits 0-31), set up queue 0
 * for polling or for the interrupts of irq_mode. */
static bool virtio_init(struct vdev *dev, uint32_t accept, int irq)
{
    uintptr_t c = dev->common;

    MMIO(uint8_t, c + 0x14) = 0;           /* reset */
    while (MMIO(uint8_t, c + 0x14)) {
    }
    MMIO(uint8_t, c + 0x14) = 1 | 2;       /* ACKNOWLEDGE, DRIVER */
    MMIO(uint32_t, c + 0x00) = 0;
    uint32_t f0 = MMIO(uint32_t, c + 0x04);
    dev->features0 = f0;
    MMIO(uint32_t, c + 0x08) = 0;
    MMIO(uint32_t, c + 0x0c) = f0 & accept;
    MMIO(uint32_t, c + 0x08) = 1;
    MMIO(uint32_t, c + 0x0c) = 1;          /* VIRTIO_F_VERSION_1 */
    MMIO(uint8_t, c + 0x14) = 1 | 2 | 8;
    if (!(MMIO(uint8_t, c + 0x14) & 8)) {
        return false;
    }
    memset_(dev->q, 0, sizeof(*dev->q));
    dev->avail_idx = dev->used_seen = 0;
    MMIO(uint16_t, c + 0x10) = 0xffff;     /* no config-change vector */
    if (dev->qidx >= MMIO(uint16_t, c + 0x12)) {
        printf_("queue %u: the device has %u\n", dev->qidx,
                MMIO(uint16_t, c + 0x12));
        return false;
    }
    MMIO(uint16_t, c + 0x16) = dev->qidx;
    uint16_t max = MMIO(uint16_t, c + 0x18);
    if (max < QSIZE) {
        return false;
    }
    MMIO(uint16_t, c + 0x18) = QSIZE;
    if (irq == IRQ_MSIX) {
        if (!msix_setup(dev->slot, bar_addr, &dev->msix_table,
                        &dev->msix_pba, VEC_MSIX)) {
            puts_("no MSI-X capability\n");
            return false;
        }
        MMIO(uint16_t, c + 0x1a) = 0;      /* queue 0 -> vector 0 */
        if (MMIO(uint16_t, c + 0x1a) != 0) {
            puts_("the device refused MSI-X vector 0\n");
            return false;
        }
    } else {
        MMIO(uint16_t, c + 0x1a) = 0xffff; /* no MSI-X vector */
    }
    MMIO(uint64_t, c + 0x20) = (uintptr_t)dev->q->desc;
    MMIO(uint64_t, c + 0x28) = (uintptr_t)&dev->q->avail;
    MMIO(uint64_t, c + 0x30) = (uintptr_t)&dev->q->used;
    uint16_t noff = MMIO(uint16_t, c + 0x1e);
    dev->notify_reg = (volatile uint16_t *)(dev->notify +
                                           noff * dev->notify_mult);
    MMIO(uint16_t, c + 0x1c) = 1;
    MMIO(uint8_t, c + 0x14) = 1 | 2 | 4 | 8; /* DRIVER_OK */
    dev->q->avail.flags = irq == IRQ_POLL; /* NO_INTERRUPT: we poll */
    return true;
}

/* Queue request `slot` (descriptors 3*slot..3*slot+2). */
static void submit(int slot, uint32_t type, uint64_t sector, void *data,
                   uint32_t len)
{
    int d = 3 * slot;
    hdrs[slot] = (struct blk_hdr){type, 0, sector};
    statuses[slot] = 0xff;
    blk.q->desc[d] = (struct vq_desc){(uintptr_t)&hdrs[slot], 16, 1, d + 1};
    if (len) {
        blk.q->desc[d + 1] = (struct vq_desc){(uintptr_t)data, len,
                                       1 | (type == 0 || type == 8 ? 2 : 0),
                                       d + 2};
        blk.q->desc[d + 2] = (struct vq_desc){(uintptr_t)&statuses[slot], 1, 2, 0};
    } else {
        blk.q->desc[d + 1] = (struct vq_desc){(uintptr_t)&statuses[slot], 1, 2, 0};
    }
    blk.q->avail.ring[blk.avail_idx % QSIZE] = d;
    barrier();
    blk.avail_idx++;
    blk.q->avail.idx = blk.avail_idx;
    barrier();
    *blk.notify_reg = 0;
}

/* Wait for the next completion; returns its request slot. */
static int reap(void)
{
    if (irq_mode != IRQ_POLL) {
        /* sleep; the device's interrupt (or the timer) wakes us */
        uint32_t t0 = ticks;
        for (;;) {
            __asm__ volatile("cli" ::: "memory");
            if (blk.q->used.idx != blk.used_seen) {
                __asm__ volatile("sti" ::: "memory");
                break;
            }
            if (ticks - t0 > 3000) {
                __asm__ volatile("sti" ::: "memory");
                printf_("FAIL: virtio-blk request timed out\n");
                debug_exit(2);
            }
            __asm__ volatile("sti; hlt" ::: "memory");
        }
        barrier();
        int id = blk.q->used.ring[blk.used_seen % QSIZE].id;
        blk.used_seen++;
        return id / 3;
    }
    /* give up after ~100000 port exits (seconds, whatever the host) */
    for (uint64_t spin = 0; blk.q->used.idx == blk.used_seen; spin++) {
        __asm__ volatile("pause");
        if ((spin & 0xffff) == 0xffff) {
            inb(0x80);
        }
        if (spin > (100000ull << 16)) {
            printf_("FAIL: virtio-blk request timed out\n");
            debug_exit(2);
        }
    }
    barrier();
    int id = blk.q->used.ring[blk.used_seen % QSIZE].id;
    blk.used_seen++;
    return id / 3;
}

static uint32_t irq_requests, irq_missed;

/* Wait up to ~1 s for dev_irqs to pass `n`. */
static bool irq_wait_count(uint32_t n)
{
    uint32_t t0 = ticks;
    while ((int32_t)(dev_irqs - n) <= 0 && ticks - t0 < 100) {
        intr_wait();
    }
    return (int32_t)(dev_irqs - n) > 0;
}

/* One request, synchronously; returns the virtio status byte.  With
 * interrupts on, its completion must have raised one. */
static int blk_req(uint32_t type, uint64_t sector, void *data, uint32_t len)
{
    uint32_t n = dev_irqs;

    submit(0, type, sector, data, len);
    reap();
    if (irq_mode != IRQ_POLL) {
        irq_requests++;
        if (!irq_wait_count(n)) {
            irq_missed++;
        }
    }
    return statuses[0];
}

/* ---- operations ---- */

static bool parse_triplet(const char *s, uint64_t *lba, uint64_t *n,
                          uint64_t *byte)
{
    *lba = parse_num(&s);
    if (*s++ != ':') {
        return false;
    }
    *n = parse_num(&s);
    if (*s++ != ':') {
        return false;
    }
    *byte = parse_num(&s);
    return *n > 0 && *byte < 256;
}

static void op_check(uint64_t lba, uint64_t n, uint8_t byte)
{
    uint64_t sum = 0xcbf29ce484222325ull; /* FNV-1a over the data */
    uint32_t per = SEQ_CHUNK / 512;

    for (uint64_t done = 0; done < n;) {
        uint32_t k = n - done < per ? n - done : per;
        int st = blk_req(0, lba + done, buf[0], k * 512);
        if (st != 0) {
            printf_("check %lu+%lu: read status %d\n", lba, n, st);
            fail("read");
            return;
        }
        for (uint32_t i = 0; i < k * 512; i++) {
            sum = (sum ^ buf[0][i]) * 0x100000001b3ull;
            if (buf[0][i] != byte) {
                printf_("check %lu+%lu: sector %lu byte %u is 0x%02x, not "
                        "0x%02x\n", lba, n, lba + done + i / 512, i % 512,
                        buf[0][i], byte);
                fail("pattern mismatch");
                return;
            }
        }
        done += k;
    }
    printf_("check %lu+%lu 0x%02x: ok fnv=%016lx\n", lba, n, byte, sum);
}

static void op_write(uint64_t lba, uint64_t n, uint8_t byte, bool expect_ro)
{
    uint32_t per = SEQ_CHUNK / 512;

    memset_(buf[0], byte, SEQ_CHUNK);
    for (uint64_t done = 0; done < n;) {
        uint32_t k = n - done < per ? n - done : per;
        int st = blk_req(1, lba + done, buf[0], k * 512);
        if (expect_ro) {
            if (st == 1) {
                printf_("write %lu+%lu 0x%02x: refused (IOERR) as expected\n",
                        lba, n, byte);
            } else {
                printf_("write %lu+%lu: status %d on a read-only disk\n",
                        lba, n, st);
                fail("write to read-only disk");
            }
            return;
        }
        if (st != 0) {
            printf_("write %lu+%lu: status %d\n", lba, n, st);
            fail("write");
            return;
        }
        done += k;
    }
    printf_("write %lu+%lu 0x%02x: ok\n", lba, n, byte);
    int st = blk_req(4, 0, 0, 0);
    if (st != 0) {
        printf_("flush: status %d\n", st);
        fail("flush");
    } else {
        printf_("flush: ok\n");
    }
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

/* TSC ticks per second, measured against the ACPI PM timer (port 0x608,
 * 3.579545 MHz, 24 bits) over ~50 ms; 0 when there is no PM timer. */
static uint64_t tsc_hz(void)
{
    uint32_t p0 = inl(0x608) & 0xffffff, p = p0, d = 0;
    uint64_t t0 = rdtsc();

    for (int i = 0; d < 179000; i++) {
        p = inl(0x608) & 0xffffff;
        d = (p - p0) & 0xffffff;
        if (i > 1000 && d == 0) {
            return 0;
        }
    }
    return (rdtsc() - t0) * 3579545ull / d;
}

static void op_seqread(uint64_t mib)
{
    uint64_t hz = tsc_hz(), t0 = rdtsc();
    uint64_t total = (mib << 20) / 512, next = 0, done = 0;
    uint32_t per = SEQ_CHUNK / 512;

    if (total > blk.capacity) {
        total = blk.capacity - blk.capacity % per;
    }
    for (int s = 0; s < SEQ_DEPTH && next < total; s++, next += per) {
        submit(s, 0, next, buf[s], SEQ_CHUNK);
    }
    while (done < total) {
        int s = reap();
        if (statuses[s] != 0) {
            fail("seqread");
            return;
        }
        done += per;
        if (next < total) {
            submit(s, 0, next, buf[s], SEQ_CHUNK);
            next += per;
        }
    }
    uint64_t ms = hz ? (rdtsc() - t0) * 1000 / hz : 0;
    printf_("seqread %lu MiB: ok", (total * 512) >> 20);
    if (ms) {
        printf_(", %lu ms, %lu MiB/s", ms, ((total * 512) >> 20) * 1000 / ms);
    }
    printf_("\n");
}

static void op_getid(void)
{
    char id[21] = {0};
    int st = blk_req(8, 0, id, 20);
    if (st != 0) {
        fail("get-id");
    } else {
        printf_("serial: %s\n", id);
    }
}

/* The initrd must be `size` bytes starting with "STRATAINITRD". */
static void op_initrd(uint64_t size)
{
    if (!initrd_size) {
        fail("no initrd");
        return;
    }
    const uint8_t *p = (const uint8_t *)(uintptr_t)initrd_addr;
    uint64_t sum = 0xcbf29ce484222325ull;
    for (uint64_t i = 0; i < initrd_size; i++) {
        sum = (sum ^ p[i]) * 0x100000001b3ull;
    }
    printf_("initrd: %lu bytes at 0x%lx, fnv=%016lx\n", initrd_size,
            initrd_addr, sum);
    if (initrd_size != size || !starts((const char *)p, "STRATAINITRD")) {
        fail("initrd size or content");
    }
}

/* DISCARD (type 11) or WRITE_ZEROES (13, unmap allowed) of one range. */
static void op_trim(uint32_t type, uint64_t lba, uint64_t n)
{
    static struct { uint64_t sector; uint32_t num, flags; } seg
        __attribute__((aligned(16)));
    const char *what = type == 11 ? "discard" : "write-zeroes";
    uint32_t bit = type == 11 ? 13 : 14;

    if (!(blk.features0 & (1u << bit))) {
        printf_("%s: not offered by the device\n", what);
        fail(what);
        return;
    }
    seg.sector = lba;
    seg.num = n;
    seg.flags = type == 13 ? 1 : 0;
    int st = blk_req(type, 0, &seg, sizeof(seg));
    printf_("%s %lu+%lu: %s\n", what, lba, n, st == 0 ? "ok" : "error");
    if (st != 0) {
        fail(what);
    }
}

/* Read 64 bytes from the first virtio-rng device. */
static void op_rng(void)
{
    static uint8_t r[64] __attribute__((aligned(64)));
    struct vq_mem *q = rng.q;

    if (!virtio_find(&rng, 0x10441af4u, 0x10051af4u) || !virtio_init(&rng, 0, IRQ_POLL)) {
        fail("no usable virtio-rng device");
        return;
    }
    q->desc[0] = (struct vq_desc){(uintptr_t)r, sizeof(r), 2, 0};
    q->avail.ring[0] = 0;
    barrier();
    q->avail.idx = 1;
    barrier();
    *rng.notify_reg = 0;
    for (uint64_t spin = 0; q->used.idx == 0; spin++) {
        __asm__ volatile("pause");
        if ((spin & 0xffff) == 0xffff && spin > (10000ull << 16)) {
            fail("virtio-rng did not answer");
            return;
        }
        if ((spin & 0xffff) == 0xffff) {
            inb(0x80);
        }
    }
    uint32_t n = q->used.ring[0].len, nonzero = 0;
    for (uint32_t i = 0; i < n && i < sizeof(r); i++) {
        nonzero += r[i] != 0;
    }
    printf_("rng: %u bytes, %u non-zero\n", n, nonzero);
    if (n == 0 || nonzero == 0) {
        fail("virtio-rng gave no entropy");
    }
}

static char params[512];

static const char *boot_kind = "disk";

static void load_params(uint32_t start_info, uint32_t boot_params)
{
    const char *src = 0;

    if (boot_params && starts((const char *)(uintptr_t)boot_params + 0x202,
                              "HdrS")) {
        uint32_t c = *(uint32_t *)(uintptr_t)(boot_params + 0x228);
        boot_kind = "linux64";
        src = c ? (const char *)(uintptr_t)c : "";
        initrd_addr = *(uint32_t *)(uintptr_t)(boot_params + 0x218);
        initrd_size = *(uint32_t *)(uintptr_t)(boot_params + 0x21c);
    } else if (start_info && *(uint32_t *)(uintptr_t)start_info == 0x336ec578) {
        uint64_t c = *(uint64_t *)(uintptr_t)(start_info + 24);
        boot_kind = "pvh";
        src = c ? (const char *)(uintptr_t)c : "";
        if (*(uint32_t *)(uintptr_t)(start_info + 12)) { /* nr_modules */
            uint64_t m = *(uint64_t *)(uintptr_t)(start_info + 16);
            initrd_addr = *(uint64_t *)(uintptr_t)m;
            initrd_size = *(uint64_t *)(uintptr_t)(m + 8);
        }
    } else {
        static uint8_t sec[512] __attribute__((aligned(16)));
        if (blk_req(0, CONFIG_LBA, sec, 512) == 0 &&
            starts((const char *)sec, "STRATAGUEST:")) {
            src = (const char *)sec + 12;
        } else {
            src = "";
        }
    }
    size_t i = 0;
    for (; src[i] && i < sizeof(params) - 1; i++) {
        params[i] = src[i] == '\n' ? ' ' : src[i];
    }
    params[i] = 0;
}

/* RO (accepting it is a fact), DISCARD, WRITE_ZEROES */
#define BLK_ACCEPT ((1u << 5) | (1u << 13) | (1u << 14))
#define BLK_F_MQ (1u << 12)

/* irq=msix|intx or blkq=N: the disk set up again (interrupts on, or
 * another queue). */
static void blk_restart(void)
{
    if (irq_mode != IRQ_POLL) {
        intr_init();
    }
    if (irq_mode == IRQ_INTX) {
        intx_setup(pci_read(blk.slot, 0x3c) & 0xff, blk.isr);
    }
    if (!virtio_init(&blk, BLK_ACCEPT | (blk.qidx ? BLK_F_MQ : 0),
                     irq_mode)) {
        puts_("FAIL: virtio-blk set up again\n");
        debug_exit(2);
    }
    if (irq_mode != IRQ_POLL) {
        printf_("irq: %s, pin %u\n", irq_mode == IRQ_MSIX ? "msix" : "intx",
                pci_read(blk.slot, 0x3c) & 0xff);
    }
    if (blk.qidx) {
        printf_("queue: %u of %u%s\n", blk.qidx,
                MMIO(uint16_t, blk.common + 0x12),
                blk.features0 & BLK_F_MQ ? ", MQ" : "");
    }
}

/* MSI-X masking: nothing fires while masked, the pending bit shows it,
 * unmasking sends it (with the message as it is then). */
static void op_msixmask(void)
{
    static uint8_t sec[512] __attribute__((aligned(512)));
    volatile uint32_t *t = blk.msix_table, *pba = blk.msix_pba;

    if (irq_mode != IRQ_MSIX) {
        fail("msixmask needs irq=msix");
        return;
    }
    for (int round = 0; round < 2; round++) {
        const char *what = round ? "function mask" : "vector mask";
        uint32_t n = dev_irqs, alt = alt_irqs;
        if (round) {
            msix_function_mask(blk.slot, true);
        } else {
            t[3] = 1;
        }
        submit(0, 0, 0, sec, 512);
        reap();
        intr_delay(5);
        bool quiet = dev_irqs == n, pend = pba[0] & 1;
        /* reprogrammed while masked: the held message goes to the new
         * vector */
        t[2] = round ? VEC_MSIX : VEC_MSIX_ALT;
        if (round) {
            msix_function_mask(blk.slot, false);
        } else {
            t[3] = 0;
        }
        bool came = irq_wait_count(n);
        bool alt_ok = round ? alt_irqs == alt : alt_irqs != alt;
        printf_("msix %s: %s while masked, pending bit %s, %s on unmask%s\n",
                what, quiet ? "silent" : "FIRED", pend ? "set" : "CLEAR",
                came ? "delivered" : "LOST",
                alt_ok ? "" : " to the WRONG vector");
        if (!quiet || !pend || !came || !alt_ok || (pba[0] & 1)) {
            fail("MSI-X masking");
        }
        if (!round) {
            /* an unmasked vector reprogrammed: the next one goes there */
            n = dev_irqs;
            blk_req(0, 0, sec, 512);
            bool on_alt = alt_irqs == alt + 2;
            printf_("msix reprogrammed vector: %s\n",
                    on_alt ? "ok" : "WRONG vector");
            if (!on_alt) {
                fail("MSI-X route did not follow the message");
            }
        }
    }
}

/* INTx is level-triggered: left pending at the EOI, it comes back. */
static void op_intxlevel(void)
{
    static uint8_t sec[512] __attribute__((aligned(512)));

    if (irq_mode != IRQ_INTX) {
        fail("intxlevel needs irq=intx");
        return;
    }
    uint32_t n = dev_irqs;
    intx_skip_isr = true;
    submit(0, 0, 0, sec, 512);
    reap();
    bool again = irq_wait_count(n + 1);
    printf_("intx level: %s after an EOI with the ISR still set\n",
            again ? "raised again" : "NOT raised again");
    if (!again) {
        fail("INTx is not level-triggered");
    }

    /* Interrupt Disable: held back, raised once enabled again */
    uint32_t cmd = pci_read(blk.slot, 4);
    pci_write(blk.slot, 4, cmd | 0x400);
    n = dev_irqs;
    submit(0, 0, 0, sec, 512);
    reap();
    intr_delay(5);
    bool quiet = dev_irqs == n;
    pci_write(blk.slot, 4, cmd & ~0x400u);
    bool came = irq_wait_count(n);
    printf_("intx disable: %s while disabled, %s when enabled\n",
            quiet ? "silent" : "FIRED", came ? "raised" : "NOT raised");
    if (!quiet || !came) {
        fail("INTx disable bit");
    }
}

void guest_main(uint32_t start_info, uint32_t boot_params);

/* start_info: PVH hvm_start_info; boot_params: Linux boot protocol zero
 * page (64-bit entry); neither: started by the boot sector. */
void guest_main(uint32_t start_info, uint32_t boot_params)
{
    const char *end = "exit";

    outb(0x3f8 + 3, 0x03);
    outb(0x3f8 + 1, 0x00);
    puts_("\nstrata-guest: started\n");
    if (!virtio_find(&blk, 0x10421af4u, 0x10011af4u) ||
        /* RO (accepting it is a fact), DISCARD, WRITE_ZEROES */
        !virtio_init(&blk, BLK_ACCEPT, IRQ_POLL)) {
        puts_("FAIL: no usable virtio-blk device\n");
        debug_exit(2);
    }
    printf_("pci %d: virtio-blk\n", blk.slot);
    blk.ro = blk.features0 & (1u << 5);
    blk.capacity = MMIO(uint32_t, blk.device) |
                   (uint64_t)MMIO(uint32_t, blk.device + 4) << 32;
    load_params(start_info, boot_params);
    printf_("strata-guest: boot %s, params \"%s\"\n", boot_kind, params);
    printf_("disk: %lu sectors%s\n", blk.capacity,
            blk.ro ? ", read-only" : "");
    bool expect_ro = false;
    for (const char *p = params; *p;) {
        while (*p == ' ') {
            p++;
        }
        if (starts(p, "expect-ro")) {
            expect_ro = true;
        } else if (starts(p, "irq=")) {
            irq_mode = starts(p + 4, "msix") ? IRQ_MSIX
                     : starts(p + 4, "intx") ? IRQ_INTX : IRQ_POLL;
            if (irq_mode == IRQ_POLL) {
                fail("irq= needs msix or intx");
            }
        } else if (starts(p, "blkq=")) {
            const char *q = p + 5;
            blk.qidx = parse_num(&q);
        }
        while (*p && *p != ' ') {
            p++;
        }
    }
    if (irq_mode != IRQ_POLL || blk.qidx) {
        blk_restart();
    }
    for (const char *p = params; *p;) {
        uint64_t a, b, c;
        while (*p == ' ') {
            p++;
        }
        if (!*p) {
            break;
        }
        if (starts(p, "check=") && parse_triplet(p + 6, &a, &b, &c)) {
            op_check(a, b, c);
        } else if (starts(p, "write=") && parse_triplet(p + 6, &a, &b, &c)) {
            op_write(a, b, c, expect_ro);
        } else if (starts(p, "cpus=")) {
            const char *q = p + 5;
            op_cpus(parse_num(&q));
        } else if (starts(p, "seqread=")) {
            const char *q = p + 8;
            op_seqread(parse_num(&q));
        } else if (starts(p, "initrd=")) {
            const char *q = p + 7;
            op_initrd(parse_num(&q));
        } else if (starts(p, "discard=") || starts(p, "zero=")) {
            const char *q = p + (p[0] == 'd' ? 8 : 5);
            uint64_t lba = parse_num(&q), n = 0;
            if (*q == ':') {
                q++;
                n = parse_num(&q);
            }
            op_trim(p[0] == 'd' ? 11 : 13, lba, n);
        } else if (starts(p, "rng")) {
            op_rng();
        } else if (starts(p, "getid")) {
            op_getid();
        } else if (starts(p, "msixmask")) {
            op_msixmask();
        } else if (starts(p, "intxlevel")) {
            op_intxlevel();
        } else if (starts(p, "end=")) {
            end = p + 4;
        }
        while (*p && *p != ' ') {
            p++;
        }
    }
    if (irq_mode != IRQ_POLL) {
        printf_("irq: %u interrupts, %u requests, %u without one, %u "
                "spurious\n", dev_irqs, irq_requests, irq_missed,
                intx_spurious);
        if (irq_missed || dev_irqs == 0) {
            fail("completions without interrupts");
        }
    }
    printf_("result: %s\n", failures ? "FAIL" : "PASS");
    if (!failures) {
        if (starts(end, "poweroff")) {
            acpi_poweroff();
        } else if (starts(end, "reset")) {
            puts_("reset: i8042\n");
            outb(0x64, 0xfe);
            delay(100000);
        }
    }
    debug_exit(failures ? 1 : 0);
}
