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

/* ---- -l snapshot_param (measure, and convert may use it too) ---- */

void img_snapshot_param_free(struct img_snapshot_param *p)
{
    free(p->id);
    free(p->name);
    memset(p, 0, sizeof(*p));
}

/* One "key=value" of a QEMU option string, with ",," for a comma; *pos
 * moves past it.  A key without '=' is QEMU's deprecated short-form
 * boolean ("key" = on, "nokey" = off), with its warning. */
static void next_opt(const char **pos, char **key, char **value)
{
    const char *p = *pos;
    size_t klen = strcspn(p, "=,");
    size_t cap = strlen(p) + 1, n = 0;
    char *v = xmalloc(cap);

    *key = xmalloc(klen + 1);
    memcpy(*key, p, klen);
    (*key)[klen] = '\0';
    p += klen;
    if (*p != '=') {
        bool off = strncmp(*key, "no", 2) == 0;

        fprintf(stderr, "%s: warning: short-form boolean option '%s' "
                "deprecated\n", tool_name, *key);
        if (off) {
            char *k = xstrdup(*key + 2);
            free(*key);
            *key = k;
        }
        fprintf(stderr, "Please use %s=%s instead\n", *key,
                off ? "off" : "on");
        strcpy(v, off ? "off" : "on");
    } else {
        for (p++; *p; p++) {
            if (*p == ',') {
                if (p[1] != ',') {
                    break;
                }
                p++;
            }
            v[n++] = *p;
        }
        v[n] = '\0';
    }
    if (*p == ',') {
        p++;
    }
    *value = v;
    *pos = p;
}

/* As qemu-img, a bare form and the last snapshot.* form are kept apart,
 * and the latter wins. */
int img_parse_snapshot_param(const char *arg, struct img_snapshot_param *p)
{
    const char *pos = arg;

    if (strncmp(arg, "snapshot.", 9) != 0) {
        p->id_or_name = arg;
        return 0;
    }
    free(p->id);
    free(p->name);
    p->id = p->name = NULL;
    p->opts = true;
    while (*pos) {
        char *key, *value;

        next_opt(&pos, &key, &value);
        if (strcmp(key, "snapshot.id") == 0) {
            free(p->id);
            p->id = value;
        } else if (strcmp(key, "snapshot.name") == 0) {
            free(p->name);
            p->name = value;
        } else {
            tool_error("Invalid parameter '%s'", key);
            tool_error("Failed in parsing snapshot param '%s'", arg);
            free(key);
            free(value);
            img_snapshot_param_free(p);
            return -1;
        }
        free(key);
    }
    return 0;
}

struct load_tmp_args {
    struct blk_node *bs;
    const char *id, *name;
    struct strata_error **errp;
};

static int coroutine_fn co_load_tmp(void *opaque)
{
    struct load_tmp_args *a = opaque;

    return a->bs->drv->snapshot_load_tmp(a->bs, a->id, a->name, a->errp);
}

/* bdrv_snapshot_load_tmp: its checks and messages. */
static int load_tmp(struct blk_node *bs, const char *id, const char *name,
                    struct strata_error **errp)
{
    struct load_tmp_args a = {bs, id, name, errp};

    if (!id && !name) {
        return error_setg(errp, -EINVAL, "snapshot_id and name are both "
                          "NULL");
    }
    if (!bs->drv->snapshot_load_tmp) {
        return error_setg(errp, -ENOTSUP, "Block format '%s' used by device "
                          "'' does not support temporarily loading internal "
                          "snapshots", bs->drv->name);
    }
    return blk_run_co(co_load_tmp, &a);
}

int img_snapshot_load_tmp(struct blk_node *bs,
                          const struct img_snapshot_param *p)
{
    struct strata_error *err = NULL;
    int ret;

    if (p->opts) {
        ret = load_tmp(bs, p->id, p->name, &err);
    } else {
        /* bdrv_snapshot_load_tmp_by_id_or_name: an id, then a name */
        ret = load_tmp(bs, p->id_or_name, NULL, &err);
        if (ret == -ENOENT || ret == -EINVAL) {
            strata_error_free(err);
            err = NULL;
            ret = load_tmp(bs, NULL, p->id_or_name, &err);
        }
    }
    if (ret < 0) {
        tool_error("Failed to load snapshot: %s", error_msg(err, ret));
        strata_error_free(err);
    }
    return ret;
}
