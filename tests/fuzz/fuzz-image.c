/* A libFuzzer target for one image format's open, read and metadata paths:
 * the input is the image file.  It is opened from a memfd with no backing
 * chain and no locks, then read in a fixed pattern of places, walked with
 * block status, asked for `info` and checked; opened again as `info` opens
 * (no I/O, so encrypted headers are parsed without a key) and as `check`
 * opens; single-file formats are also written to and repaired (the
 * allocation and repair paths are the ones hostile tables hurt most).
 *
 * FUZZ_FORMAT names the driver ("qcow2", "vmdk", ...; NULL probes).  The
 * same file builds the libFuzzer binary (clang -fsanitize=fuzzer) and the
 * corpus replayer `make check` runs (fuzz-replay.c supplies main()).
 *
 * Whatever the input, the process must not crash, hang or leak: every
 * failure is an error return, which is all this target expects. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block.h"
#include "util.h"

#ifndef FUZZ_FORMAT
#define FUZZ_FORMAT NULL
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One memfd for the whole run, rewritten for every input. */
static int image_fd(char *path, size_t len)
{
    static int fd = -1;

    if (fd < 0) {
        fd = memfd_create("fuzz-image", 0);
        if (fd < 0) {
            abort();
        }
    }
    snprintf(path, len, "/proc/self/fd/%d", fd);
    return fd;
}

static bool load(int fd, const uint8_t *data, size_t size)
{
    if (ftruncate(fd, 0) < 0) {
        return false;
    }
    for (size_t done = 0; done < size;) {
        ssize_t n = pwrite(fd, data + done, size - done, done);
        if (n <= 0) {
            return false;
        }
        done += n;
    }
    return true;
}

/* May this input be opened read-write?  Only formats whose whole image is
 * the one file, so a hostile image cannot name another file to write to
 * (vmdk descriptors name extents; backing files are never opened). */
static bool writable_format(const uint8_t *data, size_t size)
{
    const char *fmt = FUZZ_FORMAT;

    if (!fmt) {
        return false;
    }
    if (strcmp(fmt, "qcow2") == 0) {
        /* qcow2 v3 incompatible feature bit 2: an external data file */
        return size >= 80 && !(data[79] & 4);
    }
    return strcmp(fmt, "vdi") == 0 || strcmp(fmt, "vpc") == 0 ||
           strcmp(fmt, "vhdx") == 0;
}

/* Reads at the start, spread over the disk and at its end. */
static void read_pattern(struct blk_node *bs)
{
    enum { LEN = 4096, SPREAD = 16 };
    uint8_t *buf = blk_alloc_buf(bs, LEN);
    uint64_t size = bs->size;

    for (uint64_t off = 0; off < 65536 && off < size; off += LEN) {
        blk_pread(bs, off, MIN((uint64_t)LEN, size - off), buf, 0);
    }
    for (int i = 1; i <= SPREAD && size; i++) {
        uint64_t off = size / SPREAD * i - (size / SPREAD * i != 0 ? 1 : 0);
        off -= off % 512;
        blk_pread(bs, off, MIN((uint64_t)LEN, size - off), buf, 0);
    }
    free(buf);
}

/* At most 64 extents of block status, through the chain too. */
static void walk_status(struct blk_node *bs)
{
    uint64_t off = 0;

    for (int i = 0; i < 64 && off < bs->size; i++) {
        uint64_t pnum = 0, map;
        struct blk_node *file;
        int ret = blk_block_status(bs, off, bs->size - off, &pnum, &map,
                                   &file);
        if (ret < 0 || pnum == 0) {
            break;
        }
        off += pnum;
    }
}

static void query(struct blk_node *bs)
{
    struct blk_info info = {0};
    struct blk_snapshot *sn = NULL;
    struct blk_check_result res;
    int n;

    if (blk_get_info(bs, &info) == 0) {
        blk_info_release(&info);
    }
    n = blk_snapshot_list(bs, &sn);
    blk_snapshot_list_free(sn, n > 0 ? n : 0);
    blk_allocated_size(bs);
    if (bs->drv->check) {
        blk_check(bs, &res, 0, NULL);
        free(res.messages);
    }
}

static void write_pattern(struct blk_node *bs)
{
    enum { LEN = 8192 };
    uint8_t *buf = blk_alloc_buf(bs, LEN);
    uint64_t size = bs->size;

    memset(buf, 0xa5, LEN);
    if (size >= LEN) {
        blk_pwrite(bs, 0, LEN, buf, 0);
        blk_pwrite(bs, (size / 2) & ~(uint64_t)511, MIN((uint64_t)LEN,
                   size - ((size / 2) & ~(uint64_t)511)), buf, 0);
        blk_pwrite_zeroes(bs, size - 512, 512, BLK_REQ_MAY_UNMAP);
        blk_discard(bs, 0, 4096);
        blk_flush(bs);
        read_pattern(bs);
    }
    free(buf);
}

/* Open the input as the target's format, with no backing chain and no
 * locks, plus flags; NULL when the open fails (which is fine). */
static struct blk_node *open_input(const char *path, unsigned flags)
{
    struct blk_node *bs = NULL;
    struct blk_opts *opts = opts_new();
    struct strata_error *err = NULL;

    if (FUZZ_FORMAT) {
        opts_set(opts, "driver", FUZZ_FORMAT);
    }
    if (blk_open(&bs, path, opts, flags | BLK_O_NO_BACKING | BLK_O_NO_LOCK,
                 &err) < 0) {
        bs = NULL;
    }
    strata_error_free(err);
    opts_free(opts);
    return bs;
}

static void run(const char *path, unsigned flags)
{
    struct blk_node *bs = open_input(path, flags);

    if (bs) {
        read_pattern(bs);
        walk_status(bs);
        query(bs);
        if (flags & BLK_O_RDWR) {
            write_pattern(bs);
        }
        blk_close(bs);
    }
}

/* Open as `check` does (BLK_O_CHECK: damaged tables that any other open
 * refuses are tolerated so that they can be reported) and check, with
 * `-r all` when writable: the repair paths meet the most hostile tables. */
static void run_check(const char *path, bool repair)
{
    struct blk_node *bs = open_input(path, (repair ? BLK_O_RDWR : 0) |
                                               BLK_O_CHECK);
    struct blk_check_result res;

    if (bs) {
        if (bs->drv->check) {
            blk_check(bs, &res, repair ? BLK_FIX_LEAKS | BLK_FIX_ERRORS : 0,
                      NULL);
            free(res.messages);
        }
        read_pattern(bs);
        blk_close(bs);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = image_fd(path, sizeof(path));

    if (!load(fd, data, size)) {
        return 0;
    }
    run(path, 0);
    /* as info opens: an encrypted image's header is parsed without a key */
    run(path, BLK_O_NO_IO);
    run_check(path, false);
    if (writable_format(data, size) && load(fd, data, size)) {
        run(path, BLK_O_RDWR);
        if (load(fd, data, size)) {
            run_check(path, true);
        }
    }
    return 0;
}
