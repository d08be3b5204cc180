/* The fault filter: the Nth write/read/flush fails with the chosen errno,
 * once=on fails only that one and once=off every later one too, options
 * are checked, everything else passes through unchanged, and kill-write
 * kills the process before the write lands. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block.h"
#include "tap.h"

static char img[64];

static struct blk_node *open_fault(const char *extra, unsigned flags,
                                   char **msg)
{
    char str[512];
    struct blk_opts *o = opts_new();
    struct strata_error *err = NULL;
    struct blk_node *bs = NULL;
    int ret;

    snprintf(str, sizeof(str), "driver=fault,file.filename=%s%s%s", img,
             extra[0] ? "," : "", extra);
    if (opts_parse(o, str, NULL, NULL) < 0) {
        abort();
    }
    ret = blk_open(&bs, NULL, o, flags, &err);
    if (msg) {
        *msg = ret < 0 ? strdup(error_msg(err, ret)) : NULL;
    } else if (ret < 0) {
        printf("# open %s: %s\n", str, error_msg(err, ret));
    }
    strata_error_free(err);
    opts_free(o);
    return ret < 0 ? NULL : bs;
}

/* Write one 512-byte sector of `c` at sector n; returns the result. */
static int write_sector(struct blk_node *bs, int n, int c)
{
    uint8_t buf[512];
    memset(buf, c, sizeof(buf));
    return blk_pwrite(bs, n * 512ull, sizeof(buf), buf, 0);
}

/* The byte at sector n of the image, read through a plain file node. */
static int sector_byte(int n)
{
    uint8_t c = 0;
    FILE *f = fopen(img, "rb");
    if (!f || fseek(f, n * 512L, SEEK_SET) < 0 || fread(&c, 1, 1, f) != 1) {
        c = 0xee;
    }
    if (f) {
        fclose(f);
    }
    return c;
}

static void test_writes(void)
{
    struct blk_node *bs =
        open_fault("fail-write=3,errno=ENOSPC", BLK_O_RDWR, NULL);

    tap_ok(bs != NULL, "open fail-write=3,errno=ENOSPC");
    tap_is(write_sector(bs, 0, 1), 0, "write 1 succeeds");
    tap_is(write_sector(bs, 1, 2), 0, "write 2 succeeds");
    tap_is(write_sector(bs, 2, 3), -ENOSPC, "write 3 fails with ENOSPC");
    tap_is(write_sector(bs, 3, 4), 0, "write 4 succeeds (once=on)");
    blk_close(bs);
    tap_ok(sector_byte(0) == 1 && sector_byte(1) == 2 && sector_byte(2) == 0 &&
               sector_byte(3) == 4,
           "the failed write did not reach the file");

    bs = open_fault("fail-write=2,once=off,errno=EPERM", BLK_O_RDWR, NULL);
    tap_is(write_sector(bs, 0, 5), 0, "once=off: write 1 succeeds");
    tap_is(write_sector(bs, 1, 6), -EPERM, "once=off: write 2 fails");
    tap_is(write_sector(bs, 2, 7), -EPERM, "once=off: write 3 fails");
    tap_is(blk_pwrite_zeroes(bs, 0, 512, 0), -EPERM,
           "once=off: write_zeroes counts as a write and fails");
    blk_close(bs);

    bs = open_fault("fail-write=1,errno=28", BLK_O_RDWR, NULL);
    tap_is(write_sector(bs, 0, 1), -28, "errno given as a number");
    blk_close(bs);

    bs = open_fault("fail-write=1", BLK_O_RDWR, NULL);
    tap_is(write_sector(bs, 0, 1), -EIO, "default errno is EIO");
    blk_close(bs);
}

static void test_reads_and_flush(void)
{
    uint8_t buf[1024];
    struct blk_node *bs =
        open_fault("fail-read=2,errno=EPERM,fail-flush=1", BLK_O_RDWR, NULL);
    uint64_t pnum;
    int ret;

    tap_ok(bs != NULL, "open fail-read=2,fail-flush=1");
    memset(buf, 0, sizeof(buf));
    ret = blk_pread(bs, 0, 1024, buf, 0);
    tap_ok(ret == 0 && buf[0] == 5 && buf[600] == 2,
           "read 1 passes the file's data through");
    tap_is(blk_pread(bs, 0, 512, buf, 0), -EPERM, "read 2 fails with EPERM");
    tap_is(blk_pread(bs, 512, 512, buf, 0), 0, "read 3 succeeds");
    tap_is(blk_flush(bs), -EPERM, "flush 1 fails with the same errno");
    tap_is(blk_flush(bs), 0, "flush 2 succeeds");
    tap_is(blk_discard(bs, 0, 4096), 0, "discard passes through");
    ret = blk_block_status(bs, 512 << 10, 4096, &pnum, NULL, NULL);
    tap_ok(ret >= 0 && (ret & BLK_STATUS_ZERO),
           "block status passes through (0x%x)", ret);
    tap_is(blk_truncate(bs, 2 << 20, true, BLK_PREALLOC_OFF, NULL), 0,
           "truncate passes through");
    tap_is((int64_t)bs->size, (int64_t)(2 << 20),
           "the filter's size follows the truncate");
    tap_is(blk_truncate(bs, 1 << 20, true, BLK_PREALLOC_OFF, NULL), 0,
           "truncate shrinks");
    tap_is((int64_t)bs->size, (int64_t)(1 << 20),
           "the filter's size follows the shrink");
    blk_close(bs);
}

static void test_options(void)
{
    char *msg;
    struct blk_node *bs = open_fault("errno=EWHAT", 0, &msg);

    tap_ok(!bs && msg && strstr(msg, "EWHAT"), "bad errno refused (%s)", msg);
    free(msg);
    blk_close(bs);
    bs = open_fault("fail-read=x", 0, &msg);
    tap_ok(!bs, "bad count refused (%s)", msg);
    free(msg);
    blk_close(bs);
    bs = open_fault("bogus=1", 0, &msg);
    tap_ok(!bs, "unknown option refused (%s)", msg);
    free(msg);
    blk_close(bs);
}

/* The child of test_kill, in a fresh process (a forked copy would lack the
 * parent's worker threads). */
static int kill_child(void)
{
    struct blk_node *bs = open_fault("kill-write=2", BLK_O_RDWR, NULL);

    write_sector(bs, 8, 0x81);
    write_sector(bs, 9, 0x82);
    blk_close(bs);
    return 0;
}

/* kill-write=2 in a child: it dies by SIGKILL, write 1 landed, 2 did not. */
static void test_kill(const char *argv0)
{
    int status = 0;
    pid_t pid;

    {
        struct blk_node *bs = open_fault("", BLK_O_RDWR, NULL);
        write_sector(bs, 8, 0);
        write_sector(bs, 9, 0);
        blk_close(bs);
    }
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        execl(argv0, argv0, "kill-child", img, (char *)NULL);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    tap_ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
           "kill-write=2 killed the process");
    tap_ok(sector_byte(8) == 0x81 && sector_byte(9) == 0,
           "write 1 landed, write 2 never did");
}

int main(int argc, char **argv)
{
    struct blk_opts *o;
    struct strata_error *err = NULL;

    if (argc == 3 && strcmp(argv[1], "kill-child") == 0) {
        snprintf(img, sizeof(img), "%s", argv[2]);
        return kill_child();
    }
    o = opts_new();
    snprintf(img, sizeof(img), "test-fault-%d.img", (int)getpid());
    opts_set(o, "size", "1M");
    if (blk_create_file(img, o, &err) < 0) {
        printf("1..0 # SKIP cannot create %s: %s\n", img, error_msg(err, -EIO));
        return 0;
    }
    opts_free(o);

    test_writes();
    test_reads_and_flush();
    test_options();
    test_kill(argv[0]);

    unlink(img);
    tap_plan(tap_n);
    return tap_done();
}
