/* strata-img snapshot: list, create, apply and delete internal snapshots
 * with qemu-img's command line, messages and exit codes. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "img-cmds.h"
#include "img-snapshot.h"
#include "util.h"

enum { SN_NONE, SN_LIST, SN_APPLY, SN_CREATE, SN_DELETE };

void img_snapshot_dump_header(void)
{
    printf("%-10s%-17s%8s%20s%13s%11s", "ID", "TAG", "VM SIZE", "DATE",
           "VM CLOCK", "ICOUNT");
}

/* One line of the table as QEMU's bdrv_snapshot_dump() prints it (no
 * newline); the date is in local time, as there. */
void img_snapshot_dump(const char *id, const char *name,
                       uint64_t vm_state_size, uint32_t date_sec,
                       uint64_t vm_clock_nsec, uint64_t icount)
{
    char date[128] = "", clock[128], size[64], count[32] = "";
    time_t t = date_sec;
    struct tm tm;
    uint64_t secs = vm_clock_nsec / 1000000000;

    if (localtime_r(&t, &tm)) {
        strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
    }
    snprintf(clock, sizeof(clock), "%02d:%02d:%02d.%03d", (int)(secs / 3600),
             (int)((secs / 60) % 60), (int)(secs % 60),
             (int)((vm_clock_nsec / 1000000) % 1000));
    format_size(vm_state_size, size, sizeof(size));
    if (icount != UINT64_MAX) {
        snprintf(count, sizeof(count), "%lld", (long long)icount);
    }
    printf("%-9s %-16s %8s%20s%13s%11s", id, name, size, date, clock, count);
}

/* qemu-img's dump_snapshots(): nothing at all when there are none. */
static void list_snapshots(struct blk_node *bs)
{
    struct blk_snapshot *sn = NULL;
    int n = blk_snapshot_list(bs, &sn);

    if (n > 0) {
        printf("Snapshot list:\n");
        img_snapshot_dump_header();
        printf("\n");
        for (int i = 0; i < n; i++) {
            img_snapshot_dump(sn[i].id, sn[i].name, sn[i].vm_state_size,
                              sn[i].date_sec, sn[i].vm_clock_nsec,
                              sn[i].icount);
            printf("\n");
        }
    }
    blk_snapshot_list_free(sn, n);
}

static int create_snapshot(struct blk_node *bs, const char *name)
{
    struct blk_snapshot sn = {0};
    struct strata_error *err = NULL;
    struct timeval tv;
    int ret;

    /* as qemu-img: the name is cut to 255 bytes, icount recorded as 0 */
    sn.name = strndup(name, 255);
    if (!sn.name) {
        abort();
    }
    gettimeofday(&tv, NULL);
    sn.date_sec = (uint32_t)tv.tv_sec;
    sn.date_nsec = (uint32_t)tv.tv_usec * 1000;
    ret = blk_snapshot_create(bs, &sn, &err);
    if (ret < 0) {
        tool_error("Could not create snapshot '%s': %d (%s)", name, ret,
                   strerror(-ret));
    }
    strata_error_free(err);
    free(sn.id);
    free(sn.name);
    return ret < 0 ? 1 : 0;
}

static int apply_snapshot(struct blk_node *bs, const char *name)
{
    struct strata_error *err = NULL;
    int ret;

    if (!bs->drv->snapshot_goto) {
        tool_error("Could not apply snapshot '%s': Block driver does not "
                   "support snapshots", name);
        return 1;
    }
    ret = blk_snapshot_goto(bs, name, &err);
    if (ret < 0) {
        tool_error("Could not apply snapshot '%s': %s", name,
                   err ? err->msg : strerror(-ret));
    }
    strata_error_free(err);
    return ret < 0 ? 1 : 0;
}

/* qemu-img looks the snapshot up by name only, then deletes it by its id
 * and name. */
static int delete_snapshot(struct blk_node *bs, const char *name)
{
    struct blk_snapshot *sn = NULL;
    struct strata_error *err = NULL;
    int n = blk_snapshot_list(bs, &sn), i, ret;

    for (i = 0; i < n && strcmp(sn[i].name, name) != 0; i++) {
    }
    if (n <= 0 || i == n) {
        tool_error("Could not delete snapshot '%s': snapshot not found",
                   name);
        blk_snapshot_list_free(sn, n);
        return 1;
    }
    ret = blk_snapshot_delete(bs, sn[i].id, sn[i].name, &err);
    if (ret < 0) {
        tool_error("Could not delete snapshot '%s': %s", name,
                   err ? err->msg : strerror(-ret));
    }
    strata_error_free(err);
    blk_snapshot_list_free(sn, n);
    return ret < 0 ? 1 : 0;
}

int img_snapshot(int argc, char **argv)
{
    static const struct option longopts[] = {
        IMG_LONGOPTS_STD,
        {"force-share", no_argument, NULL, 'U'},
        {NULL, 0, NULL, 0},
    };
    struct img_std_opts o = {0};
    const char *name = NULL;
    unsigned flags = BLK_O_RDWR;
    int action = SN_NONE, c, ret = 0;
    struct blk_node *bs;

    while ((c = img_getopt(argc, argv, ":la:c:d:hqU", longopts)) != -1) {
        switch (c) {
        case 'l':
        case 'a':
        case 'c':
        case 'd':
            if (action != SN_NONE) {
                img_error_exit("Cannot mix '-l', '-a', '-c', '-d'");
            }
            action = c == 'l' ? SN_LIST : c == 'a' ? SN_APPLY
                     : c == 'c' ? SN_CREATE : SN_DELETE;
            if (c == 'l') {
                flags &= ~BLK_O_RDWR; /* listing needs no write access */
            } else {
                name = optarg;
            }
            break;
        default:
            /* -q is accepted as qemu-img does: nothing here is progress */
            if (img_std_opt(&o, c, optarg) < 0) {
                return 1;
            }
        }
    }
    img_one_filename(argc, argv);
    if (o.force_share) {
        flags |= BLK_O_FORCE_SHARE;
    }
    /* qemu-img warns about a guessed raw format even with -q */
    bs = img_open(argv[optind], NULL, o.image_opts, NULL, flags, false);
    if (!bs) {
        return 1;
    }
    switch (action) {
    case SN_LIST:
        list_snapshots(bs);
        break;
    case SN_CREATE:
        ret = create_snapshot(bs, name);
        break;
    case SN_APPLY:
        ret = apply_snapshot(bs, name);
        break;
    case SN_DELETE:
        ret = delete_snapshot(bs, name);
        break;
    }
    blk_close(bs);
    return ret;
}
