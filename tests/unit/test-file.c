/* The file protocol driver through the engine: for every AIO engine
 * (threads, native, io_uring) with and without O_DIRECT, concurrent writes
 * and reads of many sizes, FUA, flush, zeroing with and without unmap
 * (checked with SEEK_HOLE), discard, block status, reads past the end of
 * the file, growth and truncation; then creation with each preallocation
 * mode, and image locks within one process and against qemu-io/qemu-img
 * (skipped when they are not installed).
 *
 * Files live in the current directory (the build tree), because /tmp may
 * be a tmpfs without O_DIRECT. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block.h"
#include "loop.h"
#include "tap.h"

#define IMG_SIZE (8 * 1024 * 1024)
#define NCO 64 /* concurrent requests */
#define SLOT (IMG_SIZE / NCO)

static char dir[PATH_MAX];
static uint8_t *model; /* what the image should contain */

/* ---- helpers ---- */

static struct blk_opts *mkopts(const char *str)
{
    struct blk_opts *o = opts_new();
    if (str && opts_parse(o, str, NULL, NULL) < 0) {
        abort();
    }
    return o;
}

/* Open with options; returns the node or NULL with the message in *msg. */
static struct blk_node *open_img(const char *name, const char *opts,
                                 unsigned flags, char **msg)
{
    struct blk_opts *o = mkopts(opts);
    struct strata_error *err = NULL;
    struct blk_node *bs = NULL;
    int ret = blk_open(&bs, name, o, flags, &err);

    opts_free(o);
    if (msg) {
        *msg = ret < 0 ? strdup(error_msg(err, ret)) : NULL;
        for (char *p = *msg; p && *p; p++) {
            *p = *p == '\n' ? ' ' : *p; /* one TAP line per message */
        }
    }
    strata_error_free(err);
    return ret < 0 ? NULL : bs;
}

static int create_img(const char *name, const char *opts)
{
    struct blk_opts *o = mkopts(opts);
    struct strata_error *err = NULL;
    int ret = blk_create_file(name, o, &err);

    if (ret < 0) {
        printf("# create %s: %s\n", name, error_msg(err, ret));
    }
    strata_error_free(err);
    opts_free(o);
    return ret;
}

static bool contains(const char *msg, const char *what)
{
    return msg && strstr(msg, what);
}

static uint8_t pattern(uint64_t pos, int seed)
{
    return (uint8_t)(pos * 31 + seed * 7 + (pos >> 9));
}

/* Is [off, off+len) of the file a hole according to SEEK_HOLE? */
static bool is_hole(const char *name, off_t off, off_t len)
{
    int fd = open(name, O_RDONLY);
    off_t data = lseek(fd, off, SEEK_DATA);
    bool hole = data < 0 ? errno == ENXIO : data >= off + len;
    close(fd);
    return hole;
}

static off_t file_size(const char *name)
{
    struct stat st;
    return stat(name, &st) < 0 ? -1 : st.st_size;
}

/* ---- many requests in flight ---- */

struct co_job {
    struct blk_node *bs;
    bool write;
    uint64_t offset, len;
    uint8_t *buf;
    int niov; /* split the buffer into this many iovecs */
    int ret;
    int *left;
    bool *done;
};

static void coroutine_fn job_entry(void *opaque)
{
    struct co_job *j = opaque;
    struct blk_iov q;
    uint64_t piece = j->len / j->niov, pos = 0;

    blk_iov_init(&q, j->niov);
    for (int i = 0; i < j->niov; i++) {
        uint64_t n = i == j->niov - 1 ? j->len - pos : piece;
        blk_iov_add(&q, j->buf + pos, n);
        pos += n;
    }
    j->ret = j->write ? blk_co_pwritev(j->bs, j->offset, j->len, &q, 0)
                      : blk_co_preadv(j->bs, j->offset, j->len, &q, 0);
    blk_iov_destroy(&q);
    if (--*j->left == 0) {
        *j->done = true;
    }
}

/* Run NCO requests at once, one per slot, of varying offsets and sizes
 * (some unaligned, some split over several iovecs); returns how many
 * failed. */
static int run_jobs(struct blk_node *bs, bool write, int seed)
{
    struct co_job jobs[NCO];
    int left = NCO, failed = 0;
    bool done = false;

    for (int i = 0; i < NCO; i++) {
        struct co_job *j = &jobs[i];
        uint64_t skew = (i * 977 + seed * 131) % 8192;
        j->bs = bs;
        j->write = write;
        j->offset = (uint64_t)i * SLOT + (i % 3 ? skew & ~511ull : skew);
        j->len = 512 + ((uint64_t)(i * 7919 + seed * 613) % (SLOT - 8704));
        if (i % 4 == 0) {
            j->len &= ~4095ull; /* some whole pages */
            j->len += 4096;
        }
        j->niov = 1 + i % 5;
        j->buf = blk_alloc_buf(bs, j->len);
        j->left = &left;
        j->done = &done;
        if (write) {
            for (uint64_t k = 0; k < j->len; k++) {
                j->buf[k] = pattern(j->offset + k, seed);
            }
            memcpy(model + j->offset, j->buf, j->len);
        }
    }
    for (int i = 0; i < NCO; i++) {
        coroutine_enter(coroutine_create(job_entry, &jobs[i]));
    }
    loop_run_until(loop_current(), &done);
    for (int i = 0; i < NCO; i++) {
        if (jobs[i].ret < 0) {
            failed++;
        }
        if (!write &&
            memcmp(jobs[i].buf, model + jobs[i].offset, jobs[i].len) != 0) {
            failed++;
        }
        free(jobs[i].buf);
    }
    return failed;
}

/* Read the whole image back and compare with the model. */
static bool image_matches(struct blk_node *bs, uint64_t len)
{
    uint8_t *buf = blk_alloc_buf(bs, len);
    bool ok =
        blk_pread(bs, 0, len, buf, 0) == 0 && memcmp(buf, model, len) == 0;
    free(buf);
    return ok;
}

/* One write and one read of more than IOV_MAX iovecs. */
static bool long_iov_roundtrip(struct blk_node *bs)
{
    const int n = IOV_MAX + 6;
    const size_t piece = 4096;
    uint8_t *buf = blk_alloc_buf(bs, n * piece);
    struct blk_iov q;
    bool ok;

    for (size_t k = 0; k < n * piece; k++) {
        buf[k] = pattern(k, 99);
    }
    memcpy(model, buf, n * piece);
    blk_iov_init(&q, n);
    for (int i = 0; i < n; i++) {
        blk_iov_add(&q, buf + i * piece, piece);
    }
    ok = blk_pwritev(bs, 0, n * piece, &q, 0) == 0;
    memset(buf, 0, n * piece);
    ok = ok && blk_preadv(bs, 0, n * piece, &q, 0) == 0 &&
         memcmp(buf, model, n * piece) == 0;
    blk_iov_destroy(&q);
    free(buf);
    return ok;
}

/* ---- one engine in one cache mode ---- */

static void test_variant(const char *aio, bool direct)
{
    char name[PATH_MAX + 32], opts[128], *msg = NULL;
    const char *mode = direct ? "O_DIRECT" : "cached";
    unsigned flags = BLK_O_RDWR | (direct ? BLK_O_NOCACHE : 0);
    struct blk_node *bs;
    uint64_t pnum, map;
    struct blk_node *file;
    uint8_t *buf;
    int ret;

    snprintf(name, sizeof(name), "%s/%s-%s.img", dir, aio,
             direct ? "direct" : "cached");
    snprintf(opts, sizeof(opts), "driver=file,aio=%s", aio);
    tap_ok(create_img(name, "size=8M") == 0, "%s/%s: create", aio, mode);
    memset(model, 0, IMG_SIZE);

    bs = open_img(name, opts, flags, &msg);
    if (!bs && strcmp(aio, "native") == 0 && !direct) {
        tap_ok(contains(msg, "aio=native was specified, but it requires "
                             "cache.direct=on"),
               "native/cached: refused as QEMU does (%s)", msg);
        free(msg);
        unlink(name);
        return;
    }
    if (!bs && strcmp(aio, "io_uring") == 0 &&
        (contains(msg, "io_uring") || contains(msg, "liburing"))) {
        tap_ok(1, "io_uring/%s # SKIP %s", mode, msg);
        free(msg);
        unlink(name);
        return;
    }
    if (!bs && direct && contains(msg, "Invalid argument")) {
        tap_ok(1, "%s/%s # SKIP no O_DIRECT here: %s", aio, mode, msg);
        free(msg);
        unlink(name);
        return;
    }
    if (!tap_ok(bs != NULL, "%s/%s: open", aio, mode)) {
        printf("#   %s\n", msg);
        free(msg);
        return;
    }
    if (direct) {
        tap_ok(bs->limits.request_alignment >= 512 &&
                   bs->limits.buf_alignment >= 512,
               "%s/%s: alignment probed (request %u, memory %u)", aio, mode,
               bs->limits.request_alignment, bs->limits.buf_alignment);
    } else {
        tap_ok(bs->limits.request_alignment == 1,
               "%s/%s: no alignment without O_DIRECT", aio, mode);
    }

    /* concurrent writes and reads */
    tap_is(run_jobs(bs, true, 1), 0, "64 concurrent writes succeed");
    tap_is(run_jobs(bs, false, 1), 0, "64 concurrent reads return them");
    tap_is(run_jobs(bs, true, 2), 0, "64 concurrent overwrites succeed");
    tap_ok(image_matches(bs, IMG_SIZE), "%s/%s: the whole image matches", aio,
           mode);
    tap_ok(long_iov_roundtrip(bs), "%s/%s: more than IOV_MAX iovecs", aio,
           mode);
    tap_is(blk_flush(bs), 0, "flush");

    buf = blk_alloc_buf(bs, 65536);
    memset(buf, 0x5a, 65536);
    memset(model + 65536, 0x5a, 65536);
    tap_is(blk_pwrite(bs, 65536, 65536, buf, BLK_REQ_FUA), 0, "FUA write");

    /* zeroing: with unmap a hole appears, without it the range reads 0 */
    ret = blk_pwrite_zeroes(bs, 1 << 20, 1 << 20, BLK_REQ_MAY_UNMAP);
    memset(model + (1 << 20), 0, 1 << 20);
    tap_is(ret, 0, "write_zeroes with MAY_UNMAP");
    tap_ok(is_hole(name, 1 << 20, 1 << 20), "%s/%s: ... leaves a hole", aio,
           mode);
    ret = blk_pwrite_zeroes(bs, 3 << 20, 1 << 20, 0);
    memset(model + (3 << 20), 0, 1 << 20);
    tap_is(ret, 0, "write_zeroes without MAY_UNMAP");
    ret = blk_pwrite_zeroes(bs, 5000, 3000, 0);
    memset(model + 5000, 0, 3000);
    tap_is(ret, 0, "unaligned write_zeroes");
    tap_ok(image_matches(bs, IMG_SIZE), "%s/%s: zeroed ranges read as 0", aio,
           mode);
    tap_is(blk_discard(bs, 5 << 20, 1 << 20), 0, "discard");
    tap_ok(is_hole(name, 5 << 20, 1 << 20), "%s/%s: discard punched a hole",
           aio, mode);
    memset(model + (5 << 20), 0, 1 << 20);

    /* block status: data, hole, and the tail */
    ret = blk_block_status(bs, 0, IMG_SIZE, &pnum, &map, &file);
    tap_ok(ret == (BLK_STATUS_DATA | BLK_STATUS_OFFSET_VALID |
                   BLK_STATUS_ALLOCATED) &&
               pnum == 1 << 20 && map == 0 && file == bs,
           "%s/%s: status of data (0x%x, %llu bytes)", aio, mode, ret,
           (unsigned long long)pnum);
    ret = blk_block_status(bs, 1 << 20, IMG_SIZE, &pnum, &map, &file);
    tap_ok((ret & (BLK_STATUS_ZERO | BLK_STATUS_DATA)) == BLK_STATUS_ZERO &&
               (ret & BLK_STATUS_OFFSET_VALID) && pnum == 1 << 20 &&
               map == 1 << 20,
           "%s/%s: status of a hole (0x%x, %llu bytes)", aio, mode, ret,
           (unsigned long long)pnum);
    tap_is(blk_pwrite_zeroes(bs, 6 << 20, 2 << 20, BLK_REQ_MAY_UNMAP), 0,
           "zero the tail");
    memset(model + (6 << 20), 0, 2 << 20);
    ret = blk_block_status(bs, 6 << 20, 2 << 20, &pnum, NULL, NULL);
    tap_ok((ret & BLK_STATUS_ZERO) && pnum == 2 << 20,
           "%s/%s: trailing hole is zero (0x%x)", aio, mode, ret);

    /* a file shorter than the node: the rest reads as zeroes */
    memset(buf, 0x33, 65536);
    tap_is(blk_pwrite(bs, IMG_SIZE - 65536, 65536, buf, 0), 0,
           "write the last 64 KiB");
    tap_is(truncate(name, IMG_SIZE - 1000), 0,
           "shorten the file behind "
           "the node's back");
    memset(buf, 0xff, 65536);
    ret = blk_pread(bs, IMG_SIZE - 65536, 65536, buf, 0);
    tap_ok(ret == 0 && buf[0] == 0x33 && buf[65535 - 1000] == 0x33 &&
               buffer_is_zero(buf + 65536 - 1000, 1000),
           "%s/%s: read across the end of the file is zero-filled (%d)", aio,
           mode, ret);
    ret = blk_pread(bs, IMG_SIZE, 4096, buf, 0);
    tap_ok(ret == 0 && buffer_is_zero(buf, 4096),
           "%s/%s: read past the end of the file is zero-filled (%d)", aio,
           mode, ret);
    tap_is(truncate(name, IMG_SIZE), 0, "restore the size");
    memset(model + IMG_SIZE - 65536, 0x33, 65536 - 1000);

    /* growth by writing, then truncate both ways */
    memset(buf, 0x77, 4096);
    tap_is(blk_pwrite(bs, IMG_SIZE + 8192, 4096, buf, 0), 0,
           "write past the end");
    tap_is(file_size(name), IMG_SIZE + 12288, "... grows the file");
    tap_is(blk_truncate(bs, 16 << 20, true, BLK_PREALLOC_OFF, NULL), 0,
           "truncate to grow");
    tap_is(file_size(name), 16 << 20, "... file has the new size");
    tap_is(blk_truncate(bs, 4 << 20, true, BLK_PREALLOC_OFF, NULL), 0,
           "truncate to shrink");
    tap_is(file_size(name), 4 << 20, "... file has the new size");
    tap_ok(image_matches(bs, 4 << 20),
           "%s/%s: data below the new end is "
           "intact",
           aio, mode);
    tap_is(blk_truncate(bs, 6 << 20, true, BLK_PREALLOC_FALLOC, NULL), 0,
           "grow with preallocation=falloc");
    tap_is(blk_truncate(bs, 7 << 20, true, BLK_PREALLOC_FULL, NULL), 0,
           "grow with preallocation=full");
    tap_is(file_size(name), 7 << 20, "... file has the new size");
    memset(model + (4 << 20), 0, 3 << 20);
    tap_ok(image_matches(bs, 7 << 20), "%s/%s: grown part reads as zeroes", aio,
           mode);
    free(buf);
    blk_close(bs);
    unlink(name);
}

/* ---- one I/O context per thread ---- */

struct thread_job {
    const char *aio;
    int id;
    int errors;
};

/* Runs on its own thread (own loop, own AIO context): write a pattern with
 * 16 requests in flight, read it back with 16 more. */
static void *thread_main(void *opaque)
{
    struct thread_job *t = opaque;
    char name[PATH_MAX + 32], opts[64];
    const uint64_t len = 64 * 1024;
    struct co_job jobs[16];
    bool done = false;
    int left;

    snprintf(name, sizeof(name), "%s/thread-%s-%d.img", dir, t->aio, t->id);
    snprintf(opts, sizeof(opts), "driver=file,aio=%s", t->aio);
    create_img(name, "size=1M");
    struct blk_node *bs =
        open_img(name, opts, BLK_O_RDWR | BLK_O_NOCACHE, NULL);
    if (!bs) {
        t->errors = -1;
        return NULL;
    }
    for (int pass = 0; pass < 2; pass++) {
        done = false;
        left = 16;
        for (int i = 0; i < 16; i++) {
            struct co_job *j = &jobs[i];
            if (pass == 0) {
                j->buf = blk_alloc_buf(bs, len);
                memset(j->buf, t->id * 16 + i, len);
            } else {
                memset(j->buf, 0, len);
            }
            j->bs = bs;
            j->write = pass == 0;
            j->offset = i * len;
            j->len = len;
            j->niov = 1;
            j->left = &left;
            j->done = &done;
        }
        for (int i = 0; i < 16; i++) {
            coroutine_enter(coroutine_create(job_entry, &jobs[i]));
        }
        loop_run_until(loop_current(), &done);
        for (int i = 0; i < 16; i++) {
            uint8_t want = t->id * 16 + i;
            t->errors += jobs[i].ret < 0 || jobs[i].buf[0] != want ||
                         jobs[i].buf[len - 1] != want;
        }
    }
    for (int i = 0; i < 16; i++) {
        free(jobs[i].buf);
    }
    blk_close(bs);
    unlink(name);
    return NULL;
}

/* Nodes on different threads use different contexts at the same time. */
static void test_threads(const char *aio)
{
    struct thread_job jobs[3];
    pthread_t tid[3];
    int errors = 0;

    for (int i = 0; i < 3; i++) {
        jobs[i] = (struct thread_job){aio, i + 1, 0};
        pthread_create(&tid[i], NULL, thread_main, &jobs[i]);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(tid[i], NULL);
        errors += jobs[i].errors != 0;
    }
    if (jobs[0].errors < 0 && jobs[1].errors < 0 && jobs[2].errors < 0) {
        tap_ok(1, "%s on three threads # SKIP cannot open with O_DIRECT", aio);
        return;
    }
    tap_ok(errors == 0,
           "%s: three threads, each with its own context, in "
           "parallel",
           aio);
}

/* ---- creation and preallocation ---- */

static void test_create(void)
{
    char name[PATH_MAX + 32];
    struct stat st;

    snprintf(name, sizeof(name), "%s/create.img", dir);
    tap_is(create_img(name, "size=10M"), 0, "create 10M, preallocation=off");
    stat(name, &st);
    tap_ok(st.st_size == 10 << 20 && st.st_blocks * 512 >= 4096 &&
               st.st_blocks * 512 < (1 << 20),
           "... sparse, first block allocated (%lld bytes)",
           (long long)st.st_blocks * 512);
    tap_ok(!is_hole(name, 0, 4096) && is_hole(name, 4096, (10 << 20) - 4096),
           "... data in the first 4 KiB only, as qemu-img map shows");
    tap_is(create_img(name, "size=10M,preallocation=falloc"), 0,
           "create preallocation=falloc");
    stat(name, &st);
    tap_ok(st.st_blocks * 512 >= 10 << 20, "... all blocks allocated");
    tap_is(create_img(name, "size=10M,preallocation=full"), 0,
           "create preallocation=full");
    stat(name, &st);
    tap_ok(st.st_blocks * 512 >= 10 << 20 && !is_hole(name, 0, 10 << 20),
           "... all blocks written");
    tap_is(create_img(name, "size=1000"), 0, "create 1000 bytes");
    tap_is(file_size(name), 1024, "... rounded up to sectors as QEMU does");
    tap_ok(create_img(name, "size=1M,preallocation=metadata") < 0,
           "preallocation=metadata refused for files");
    tap_ok(create_img("/nonexistent-dir/x.img", "size=1M") == -ENOENT,
           "create in a missing directory fails");
    unlink(name);
}

/* ---- locking ---- */

static void test_locks(void)
{
    char name[PATH_MAX + 32], *msg;
    struct blk_node *a, *b;

    snprintf(name, sizeof(name), "%s/lock.img", dir);
    create_img(name, "size=1M");
    a = open_img(name, "driver=file", BLK_O_RDWR, NULL);
    tap_ok(a != NULL, "first writable open");
    b = open_img(name, "driver=file", BLK_O_RDWR, &msg);
    tap_ok(!b && contains(msg, "Failed to get \"write\" lock") &&
               contains(msg, "Is another process using the image"),
           "second writer refused (%s)", msg ? msg : "opened");
    free(msg);
    blk_close(b);
    b = open_img(name, "driver=file", 0, &msg);
    tap_ok(!b && contains(msg, "Failed to get shared \"write\" lock"),
           "reader without force-share refused (%s)", msg ? msg : "opened");
    free(msg);
    blk_close(b);
    b = open_img(name, "driver=file", BLK_O_FORCE_SHARE, &msg);
    tap_ok(b != NULL, "reader with force-share allowed");
    free(msg);
    blk_close(b);
    b = open_img(name, "driver=file,locking=off", BLK_O_RDWR, &msg);
    tap_ok(b != NULL, "locking=off takes no locks");
    free(msg);
    blk_close(b);
    blk_close(a);
    a = open_img(name, "driver=file", 0, NULL);
    b = open_img(name, "driver=file", 0, NULL);
    tap_ok(a && b, "two readers share");
    blk_close(b);
    b = open_img(name, "driver=file", BLK_O_RDWR, &msg);
    tap_ok(!b && contains(msg, "Failed to get \"write\" lock"),
           "writer refused while a reader is open");
    free(msg);
    blk_close(b);
    blk_close(a);
    b = open_img(name, "driver=file", BLK_O_RDWR, NULL);
    tap_ok(b != NULL, "writer allowed once everyone closed");
    blk_close(b);
    unlink(name);
}

/* Run a shell command; its combined output goes to *out (malloc'd). */
static int run_cmd(const char *cmd, char **out)
{
    char buf[4096];
    size_t n = 0;
    FILE *p = popen(cmd, "r");
    int status;

    buf[0] = 0;
    if (!p) {
        return -1;
    }
    while (n < sizeof(buf) - 1 && fgets(buf + n, sizeof(buf) - n, p)) {
        n = strlen(buf);
    }
    status = pclose(p);
    for (char *q = buf; *q; q++) {
        *q = *q == '\n' ? ' ' : *q;
    }
    *out = strdup(buf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Wait until some process holds lock byte `byte` on name. */
static bool wait_for_lock(const char *name, int byte)
{
    int fd = open(name, O_RDONLY);
    bool held = false;

    for (int i = 0; i < 1000 && !held; i++) {
        struct flock fl = {.l_type = F_WRLCK,
                           .l_whence = SEEK_SET,
                           .l_start = byte,
                           .l_len = 1};
        held = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
        if (!held) {
            usleep(20000);
        }
    }
    close(fd);
    return held;
}

static void test_qemu_interop(void)
{
    char name[PATH_MAX + 32], qname[PATH_MAX + 32], cmd[3 * PATH_MAX];
    char *out = NULL, *msg = NULL;
    struct blk_node *bs;
    FILE *qemu;
    int rc;

    if (system("qemu-io --version >/dev/null 2>&1 && "
               "qemu-img --version >/dev/null 2>&1") != 0) {
        for (int i = 0; i < 6; i++) {
            tap_ok(1, "qemu interop # SKIP qemu-io/qemu-img not installed");
        }
        return;
    }
    snprintf(name, sizeof(name), "%s/qemu.img", dir);
    snprintf(qname, sizeof(qname), "%s/qemu.qcow2", dir);
    create_img(name, "size=1M");

    /* qemu-io holds the image writable: strata must not open it */
    snprintf(cmd, sizeof(cmd), "qemu-io -f raw '%s' >/dev/null 2>&1", name);
    qemu = popen(cmd, "w"); /* it sits at its prompt until we close stdin */
    bool held = wait_for_lock(name, 101);
    bs = open_img(name, "driver=file", 0, &msg);
    tap_ok(held && !bs &&
               contains(msg, "Failed to get shared \"write\" "
                             "lock"),
           "qemu-io holds it writable: strata's open fails (%s)",
           msg ? msg : "opened");
    free(msg);
    blk_close(bs);
    bs = open_img(name, "driver=file", BLK_O_FORCE_SHARE, NULL);
    tap_ok(bs != NULL, "... with force-share strata opens it");
    blk_close(bs);
    pclose(qemu);

    /* strata holds it: QEMU's second writer and qemu-img info fail */
    bs = open_img(name, "driver=file", BLK_O_RDWR, NULL);
    snprintf(cmd, sizeof(cmd), "qemu-io -f raw -c 'write 0 512' '%s' 2>&1",
             name);
    rc = run_cmd(cmd, &out);
    tap_ok(bs && rc != 0 && contains(out, "Failed to get \"write\" lock"),
           "strata holds it writable: qemu-io cannot write (%s)", out);
    free(out);
    blk_close(bs);

    snprintf(cmd, sizeof(cmd), "qemu-img create -q -f qcow2 '%s' 1M", qname);
    rc = system(cmd);
    bs = open_img(qname, "driver=file", BLK_O_RDWR, NULL);
    snprintf(cmd, sizeof(cmd), "qemu-img info '%s' 2>&1", qname);
    rc = run_cmd(cmd, &out);
    tap_ok(bs && rc != 0 &&
               contains(out, "Failed to get shared \"write\" lock") &&
               contains(out, "Is another process using the image"),
           "strata holds it writable: qemu-img info fails (%s)", out);
    free(out);
    snprintf(cmd, sizeof(cmd), "qemu-img info -U '%s' 2>&1", qname);
    rc = run_cmd(cmd, &out);
    tap_ok(rc == 0 && contains(out, "file format: qcow2"),
           "... qemu-img info -U works");
    free(out);
    blk_close(bs);
    snprintf(cmd, sizeof(cmd), "qemu-img info '%s' 2>&1", qname);
    rc = run_cmd(cmd, &out);
    tap_ok(rc == 0, "... and once strata closed it, qemu-img info works");
    free(out);
    unlink(name);
    unlink(qname);
}

/* Optional: STRATA_TEST_BLOCKDEV=/dev/loopN runs the block device paths
 * (its contents are destroyed), e.g. on a loop device made with
 * `losetup -f --show --sector-size 4096 some-16M-file`. */
static void test_blockdev(const char *dev)
{
    static const char *const engines[] = {"threads", "native", "io_uring"};
    char opts[64], *msg = NULL;
    struct strata_error *err = NULL;
    uint64_t pnum;

    for (size_t e = 0; e < 3; e++) {
        snprintf(opts, sizeof(opts), "driver=file,aio=%s", engines[e]);
        struct blk_node *bs =
            open_img(dev, opts, BLK_O_RDWR | BLK_O_NOCACHE, &msg);
        if (!bs) {
            tap_ok(contains(msg, "io_uring"), "%s: open %s (%s)", engines[e],
                   dev, msg);
            free(msg);
            continue;
        }
        uint64_t size = bs->size;
        uint8_t *buf = blk_alloc_buf(bs, 1 << 20);
        memset(buf, 0xc3, 1 << 20);
        tap_ok(size >= 4 << 20 && bs->limits.request_alignment >= 512,
               "%s: %s opened (%llu bytes, alignment %u)", engines[e], dev,
               (unsigned long long)size, bs->limits.request_alignment);
        tap_is(blk_pwrite(bs, 0, 1 << 20, buf, 0), 0, "write 1 MiB");
        tap_is(blk_pwrite(bs, 1000, 100, buf, BLK_REQ_FUA), 0,
               "unaligned FUA write");
        tap_is(blk_pwrite_zeroes(bs, 65536, 65536, BLK_REQ_MAY_UNMAP), 0,
               "write_zeroes with unmap");
        tap_is(blk_pwrite_zeroes(bs, 200000, 10000, 0), 0,
               "unaligned write_zeroes");
        memset(buf, 0xff, 1 << 20);
        tap_ok(blk_pread(bs, 0, 1 << 20, buf, 0) == 0 && buf[0] == 0xc3 &&
                   buffer_is_zero(buf + 65536, 65536) &&
                   buffer_is_zero(buf + 200000, 10000) && buf[210000] == 0xc3,
               "%s: device content as written", engines[e]);
        tap_is(blk_discard(bs, 2 << 20, 1 << 20), 0, "discard");
        tap_is(blk_flush(bs), 0, "flush");
        tap_ok(blk_block_status(bs, 0, size, &pnum, NULL, NULL) ==
                       (BLK_STATUS_DATA | BLK_STATUS_OFFSET_VALID |
                        BLK_STATUS_ALLOCATED) &&
                   pnum == size,
               "%s: a device is all data", engines[e]);
        tap_ok(!blk_has_zero_init(bs), "a device has no zero init");
        tap_ok(blk_truncate(bs, size + 512, true, BLK_PREALLOC_OFF, &err) ==
                       -ENOTSUP &&
                   strstr(err->msg, "Cannot resize device files"),
               "%s: resizing a device is refused", engines[e]);
        strata_error_free(err);
        err = NULL;
        free(buf);
        blk_close(bs);
    }
    tap_is(create_img(dev, "size=1M"), 0, "create on a large enough device");
    tap_is(create_img(dev, "size=1T"), -EINVAL,
           "create on a too small device: Cannot grow device files");
}

int main(void)
{
    static const char *const engines[] = {"threads", "native", "io_uring"};

    snprintf(dir, sizeof(dir), "test-file.XXXXXX");
    if (!mkdtemp(dir)) {
        printf("1..0 # SKIP cannot create a directory here\n");
        return 0;
    }
    model = malloc(IMG_SIZE);

    /* STRATA_TEST_AIO=name limits the run to one engine */
    const char *only = getenv("STRATA_TEST_AIO");
    for (size_t e = 0; e < 3; e++) {
        if (only && *only && strcmp(only, engines[e]) != 0) {
            continue;
        }
        test_variant(engines[e], false);
        test_variant(engines[e], true);
        test_threads(engines[e]);
    }
    test_create();
    test_locks();
    test_qemu_interop();
    if (getenv("STRATA_TEST_BLOCKDEV") && *getenv("STRATA_TEST_BLOCKDEV")) {
        test_blockdev(getenv("STRATA_TEST_BLOCKDEV"));
    } else {
        tap_ok(1, "block devices # SKIP set STRATA_TEST_BLOCKDEV=/dev/... "
                  "to test one");
    }

    free(model);
    rmdir(dir);
    tap_plan(tap_n);
    return tap_done();
}
