/* blk_reopen() of the file protocol, under a raw format node, for every
 * AIO engine with and without O_DIRECT: a read-only node becomes writable
 * (writes land, with the new descriptor, through the same engine context),
 * its lock bytes move from shared-read to write and back (checked with
 * F_OFD_GETLK from another descriptor), a conflicting open elsewhere makes
 * the reopen fail with QEMU's message and leaves the node read-only and
 * usable, and going back to read-only refuses writes again.
 *
 * Files live in the current directory (the build tree), because /tmp may
 * be a tmpfs without O_DIRECT. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block.h"
#include "tap.h"

#define IMG_SIZE (1024 * 1024)
#define NREQ 16

/* Does another open file description hold a lock on `byte`? */
static bool byte_locked(const char *name, int byte)
{
    int fd = open(name, O_RDONLY);
    struct flock fl = {
        .l_whence = SEEK_SET, .l_start = byte, .l_len = 1, .l_type = F_WRLCK,
    };
    bool locked = fd >= 0 && fcntl(fd, F_OFD_GETLK, &fl) == 0 &&
                  fl.l_type != F_UNLCK;

    if (fd >= 0) {
        close(fd);
    }
    return locked;
}

/* Hold a shared-read open of name as strata's read-only opens do (byte 100
 * held, 201 and 203 refused to share): nobody else may write.  -1 if OFD
 * locks are unavailable. */
static int hold_reader(const char *name)
{
    int fd = open(name, O_RDONLY);
    static const int bytes[] = {100, 201, 203};

    for (size_t i = 0; fd >= 0 && i < sizeof(bytes) / sizeof(bytes[0]); i++) {
        struct flock fl = {
            .l_whence = SEEK_SET, .l_start = bytes[i], .l_len = 1,
            .l_type = F_RDLCK,
        };
        if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

static struct blk_node *open_raw(const char *name, const char *aio,
                                 bool direct, char **msg)
{
    struct blk_opts *o = opts_new();
    struct strata_error *err = NULL;
    struct blk_node *bs = NULL;
    int ret;

    opts_set(o, "driver", "raw");
    opts_set(o, "file.aio", aio);
    ret = blk_open(&bs, name, o, direct ? BLK_O_NOCACHE : 0, &err);
    opts_free(o);
    if (ret < 0) {
        *msg = strdup(error_msg(err, ret));
        strata_error_free(err);
        return NULL;
    }
    return bs;
}

/* Write NREQ slots at once through the engine, then read them back. */
static bool write_and_verify(struct blk_node *bs, uint8_t pattern)
{
    size_t slot = IMG_SIZE / NREQ;
    uint8_t *buf = blk_alloc_buf(bs, IMG_SIZE);
    uint8_t *back = blk_alloc_buf(bs, IMG_SIZE);
    bool good = true;

    for (int i = 0; i < NREQ; i++) {
        memset(buf + i * slot, pattern + i, slot);
    }
    good = blk_pwrite(bs, 0, IMG_SIZE, buf, 0) >= 0 && blk_flush(bs) >= 0 &&
           blk_pread(bs, 0, IMG_SIZE, back, 0) >= 0 &&
           memcmp(buf, back, IMG_SIZE) == 0;
    free(buf);
    free(back);
    return good;
}

static void run(const char *aio, bool direct)
{
    const char *name = "test-reopen.img";
    char label[64], *msg = NULL;
    struct strata_error *err = NULL;
    struct blk_node *bs;
    int holder, ret;

    snprintf(label, sizeof(label), "aio=%s%s", aio,
             direct ? ", cache=none" : "");
    unlink(name);
    int fd = open(name, O_RDWR | O_CREAT, 0644);
    if (fd < 0 || ftruncate(fd, IMG_SIZE) < 0) {
        tap_ok(0, "%s: create the image", label);
        return;
    }
    close(fd);

    bs = open_raw(name, aio, direct, &msg);
    if (!bs) {
        /* an engine this kernel or build lacks, or no O_DIRECT here */
        for (int i = 0; i < 9; i++) {
            printf("ok %d - %s # SKIP %s\n", ++tap_n, label, msg);
        }
        free(msg);
        unlink(name);
        return;
    }
    tap_ok(bs->read_only && blk_pwrite(bs, 0, 512, "x", 0) < 0,
           "%s: read-only at first", label);
    tap_ok(byte_locked(name, 100) && !byte_locked(name, 101) &&
               byte_locked(name, 201),
           "%s: read-only lock bytes (100, 201)", label);

    holder = hold_reader(name);
    ret = blk_reopen(bs, true, &err);
    tap_ok(ret == -EAGAIN && err &&
               strcmp(error_msg(err, ret),
                      "Failed to get \"write\" lock\n"
                      "Is another process using the image "
                      "[test-reopen.img]?") == 0 &&
               bs->read_only,
           "%s: a reader elsewhere refuses the reopen, QEMU's message",
           label);
    if (ret != -EAGAIN) {
        printf("#   %d: %s\n", ret, error_msg(err, ret));
    }
    strata_error_free(err);
    err = NULL;
    tap_ok(byte_locked(name, 100) && !byte_locked(name, 101),
           "%s: the failed reopen kept the old locks", label);
    if (holder >= 0) {
        close(holder);
    }

    ret = blk_reopen(bs, true, &err);
    tap_ok(ret == 0 && !bs->read_only, "%s: reopen read-write", label);
    strata_error_free(err);
    err = NULL;
    tap_ok(byte_locked(name, 101) && byte_locked(name, 100),
           "%s: write lock byte 101 taken", label);
    tap_ok(write_and_verify(bs, 0x40), "%s: %d writes in flight land", label,
           NREQ);

    ret = blk_reopen(bs, false, &err);
    strata_error_free(err);
    tap_ok(ret == 0 && bs->read_only && !byte_locked(name, 101) &&
               byte_locked(name, 100),
           "%s: back to read-only drops byte 101", label);
    uint8_t *b = blk_alloc_buf(bs, 4096);
    memset(b, 0, 4096);
    tap_ok(blk_pwrite(bs, 0, 4096, b, 0) < 0 &&
               blk_pread(bs, 4096, 4096, b, 0) >= 0 && b[0] == 0x40,
           "%s: writes refused again, reads still work", label);
    free(b);
    blk_close(bs);
    unlink(name);
}

int main(void)
{
    static const char *const engines[] = {"threads", "native", "io_uring"};

    for (size_t i = 0; i < 3; i++) {
        run(engines[i], false);
        run(engines[i], true);
    }
    printf("1..%d\n", tap_n);
    return tap_done();
}
