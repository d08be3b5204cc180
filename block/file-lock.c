/* Image locking, byte-compatible with QEMU (7.2) so strata and QEMU see
 * each other's locks.
 *
 * Every lock is a shared (read) OFD lock on one byte: byte 100+bit says
 * "this open holds permission bit", byte 200+bit says "this open does not
 * share permission bit".  An open conflicts with another open file
 * description when it wants a permission that someone refuses to share (a
 * lock on 200+bit exists) or refuses to share one that someone holds (a lock
 * on 100+bit exists); F_OFD_GETLK with a write lock finds those.  OFD locks
 * belong to the open file description, so two opens in one process conflict
 * just like two processes, and closing the fd drops them. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "file.h"

#define LOCK_PERM_BASE 100
#define LOCK_SHARED_BASE 200
#define LOCK_NBITS 4

static const char *const perm_names[LOCK_NBITS] = {
    "consistent read",
    "write",
    "write unchanged",
    "resize",
};

const char *file_perm_name(unsigned bit)
{
    for (int i = 0; i < LOCK_NBITS; i++) {
        if (bit == 1u << i) {
            return perm_names[i];
        }
    }
    return "unknown";
}

/* Set (F_RDLCK) or clear (F_UNLCK) one lock byte. */
static int lock_byte(int fd, off_t byte, short type)
{
    struct flock fl = {
        .l_whence = SEEK_SET,
        .l_start = byte,
        .l_len = 1,
        .l_type = type,
    };

    for (;;) {
        if (fcntl(fd, F_OFD_SETLK, &fl) == 0) {
            return 0;
        }
        if (errno != EINTR) {
            return -errno;
        }
    }
}

/* 0 when no other open file description holds a lock on `byte`,
 * -EAGAIN when one does. */
static int test_byte(int fd, off_t byte)
{
    struct flock fl = {
        .l_whence = SEEK_SET,
        .l_start = byte,
        .l_len = 1,
        .l_type = F_WRLCK,
    };

    if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
        return -errno;
    }
    return fl.l_type == F_UNLCK ? 0 : -EAGAIN;
}

bool file_lock_supported(int fd)
{
    struct flock fl = {
        .l_whence = SEEK_SET,
        .l_start = 0,
        .l_len = 0,
        .l_type = F_WRLCK,
    };

    return fcntl(fd, F_OFD_GETLK, &fl) == 0;
}

void file_lock_release(int fd)
{
    for (int i = 0; i < LOCK_NBITS; i++) {
        lock_byte(fd, LOCK_PERM_BASE + i, F_UNLCK);
        lock_byte(fd, LOCK_SHARED_BASE + i, F_UNLCK);
    }
}

/* As QEMU: first take our own bytes, then look for conflicts, so two
 * processes racing through open cannot both miss each other. */
int file_lock_apply(int fd, unsigned perm, unsigned unshared,
                    const char *filename, struct strata_error **errp)
{
    int ret, byte = 0;

    for (int i = 0; i < LOCK_NBITS; i++) {
        if (perm & (1u << i)) {
            byte = LOCK_PERM_BASE + i;
            ret = lock_byte(fd, byte, F_RDLCK);
            if (ret < 0) {
                goto fail_lock;
            }
        }
        if (unshared & (1u << i)) {
            byte = LOCK_SHARED_BASE + i;
            ret = lock_byte(fd, byte, F_RDLCK);
            if (ret < 0) {
                goto fail_lock;
            }
        }
    }

    for (int i = 0; i < LOCK_NBITS; i++) {
        if (!(perm & (1u << i))) {
            continue;
        }
        ret = test_byte(fd, LOCK_SHARED_BASE + i);
        if (ret < 0) {
            file_lock_release(fd);
            if (ret != -EAGAIN) {
                return error_setg_errno(errp, ret,
                                        "Failed to get \"%s\" "
                                        "lock",
                                        perm_names[i]);
            }
            return error_setg(errp, -EAGAIN,
                              "Failed to get \"%s\" lock\n"
                              "Is another process using the image [%s]?",
                              perm_names[i], filename);
        }
    }
    for (int i = 0; i < LOCK_NBITS; i++) {
        if (!(unshared & (1u << i))) {
            continue;
        }
        ret = test_byte(fd, LOCK_PERM_BASE + i);
        if (ret < 0) {
            file_lock_release(fd);
            if (ret != -EAGAIN) {
                return error_setg_errno(errp, ret,
                                        "Failed to get shared "
                                        "\"%s\" lock",
                                        perm_names[i]);
            }
            return error_setg(errp, -EAGAIN,
                              "Failed to get shared \"%s\" lock\n"
                              "Is another process using the image [%s]?",
                              perm_names[i], filename);
        }
    }
    return 0;

fail_lock:
    file_lock_release(fd);
    if (ret == -EINVAL || ret == -ENOTSUP || ret == -ENOLCK) {
        return error_setg(errp, -ENOTSUP,
                          "OFD locks are not supported for '%s'", filename);
    }
    return error_setg_errno(errp, ret, "Failed to lock byte %d", byte);
}

/* Drop the bytes of `perm`/`unshared` that `keep_perm`/`keep_unshared` do
 * not also hold. */
static void unlock_extra(int fd, unsigned perm, unsigned unshared,
                         unsigned keep_perm, unsigned keep_unshared)
{
    for (int i = 0; i < LOCK_NBITS; i++) {
        if ((perm & ~keep_perm) & (1u << i)) {
            lock_byte(fd, LOCK_PERM_BASE + i, F_UNLCK);
        }
        if ((unshared & ~keep_unshared) & (1u << i)) {
            lock_byte(fd, LOCK_SHARED_BASE + i, F_UNLCK);
        }
    }
}

/* Take the bytes of perm/unshared on fd without checking anything. */
static int lock_bytes(int fd, unsigned perm, unsigned unshared)
{
    for (int i = 0; i < LOCK_NBITS; i++) {
        int ret = 0;
        if (perm & (1u << i)) {
            ret = lock_byte(fd, LOCK_PERM_BASE + i, F_RDLCK);
        }
        if (ret == 0 && (unshared & (1u << i))) {
            ret = lock_byte(fd, LOCK_SHARED_BASE + i, F_RDLCK);
        }
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

/* Which byte of another open conflicts with perm/unshared on fd: 0, or
 * -EAGAIN/-errno with *bit and *shared saying what was refused. */
static int find_conflict(int fd, unsigned perm, unsigned unshared,
                         int *bit, bool *shared)
{
    for (int i = 0; i < LOCK_NBITS; i++) {
        if (perm & (1u << i)) {
            int ret = test_byte(fd, LOCK_SHARED_BASE + i);
            if (ret < 0) {
                *bit = i;
                *shared = false;
                return ret;
            }
        }
    }
    for (int i = 0; i < LOCK_NBITS; i++) {
        if (unshared & (1u << i)) {
            int ret = test_byte(fd, LOCK_PERM_BASE + i);
            if (ret < 0) {
                *bit = i;
                *shared = true;
                return ret;
            }
        }
    }
    return 0;
}

/* As QEMU's reopen: the old descriptor first takes the union of old and
 * new bytes and is checked against other opens (its own bytes never
 * conflict with it), then the new descriptor copies the new bytes.  The
 * file is never unlocked in between, and two opens of this process do not
 * trip over each other since only the old one is checked.  On failure the
 * old descriptor holds exactly its old bytes again. */
int file_lock_change(int old_fd, int new_fd, unsigned old_perm,
                     unsigned old_unshared, unsigned new_perm,
                     unsigned new_unshared, const char *filename,
                     struct strata_error **errp)
{
    int ret, bit = 0;
    bool shared = false;

    ret = lock_bytes(old_fd, new_perm, new_unshared);
    if (ret < 0) {
        unlock_extra(old_fd, new_perm, new_unshared, old_perm, old_unshared);
        return error_setg_errno(errp, ret, "Failed to lock the image");
    }
    ret = find_conflict(old_fd, new_perm & ~old_perm,
                        new_unshared & ~old_unshared, &bit, &shared);
    if (ret < 0) {
        unlock_extra(old_fd, new_perm, new_unshared, old_perm, old_unshared);
        if (ret != -EAGAIN) {
            return error_setg_errno(errp, ret, "Failed to get %s\"%s\" lock",
                                    shared ? "shared " : "",
                                    perm_names[bit]);
        }
        return error_setg(errp, -EAGAIN, "Failed to get %s\"%s\" lock\n"
                          "Is another process using the image [%s]?",
                          shared ? "shared " : "", perm_names[bit],
                          filename);
    }
    ret = lock_bytes(new_fd, new_perm, new_unshared);
    if (ret < 0) {
        file_lock_release(new_fd);
        unlock_extra(old_fd, new_perm, new_unshared, old_perm, old_unshared);
        return error_setg_errno(errp, ret, "Failed to lock the image");
    }
    return 0;
}
