/* The optional driver operations behind the maintenance commands
 * (snapshot, check, amend, measure, rebase, commit): each wrapper refuses
 * with the format's name when its driver lacks the operation, and runs
 * coroutine_fn operations in a coroutine. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "block.h"
#include "util.h"

/* The error qemu-img prints for an operation a format cannot do. */
static int not_supported(struct blk_node *bs, const char *what,
                         struct strata_error **errp)
{
    return error_setg(errp, -ENOTSUP, "Block format '%s' used by device '' "
                      "does not support %s", bs->drv->name, what);
}

void blk_snapshot_list_free(struct blk_snapshot *list, int n)
{
    for (int i = 0; list && i < n; i++) {
        free(list[i].id);
        free(list[i].name);
    }
    free(list);
}

/* One structure carries every operation's arguments into its coroutine. */
struct op_args {
    struct blk_node *bs;
    struct blk_snapshot *sn;
    const char *s1, *s2;
    struct blk_snapshot **list;
    struct blk_check_result *res;
    unsigned fix;
    struct blk_opts *opts;
    bool flag;
    blk_progress_fn *progress;
    void *opaque;
    struct strata_error **errp;
};

static int coroutine_fn co_snapshot_create(void *p)
{
    struct op_args *a = p;
    return a->bs->drv->snapshot_create(a->bs, a->sn, a->errp);
}

int blk_snapshot_create(struct blk_node *bs, struct blk_snapshot *sn,
                        struct strata_error **errp)
{
    struct op_args a = {.bs = bs, .sn = sn, .errp = errp};

    if (!bs->drv->snapshot_create) {
        return not_supported(bs, "internal snapshots", errp);
    }
    if (bs->read_only) {
        return error_setg(errp, -EACCES, "Image is read-only");
    }
    return blk_run_co(co_snapshot_create, &a);
}

static int coroutine_fn co_snapshot_goto(void *p)
{
    struct op_args *a = p;
    return a->bs->drv->snapshot_goto(a->bs, a->s1, a->errp);
}

int blk_snapshot_goto(struct blk_node *bs, const char *id_or_name,
                      struct strata_error **errp)
{
    struct op_args a = {.bs = bs, .s1 = id_or_name, .errp = errp};

    if (!bs->drv->snapshot_goto) {
        return not_supported(bs, "internal snapshots", errp);
    }
    if (bs->read_only) {
        return error_setg(errp, -EACCES, "Image is read-only");
    }
    return blk_run_co(co_snapshot_goto, &a);
}

static int coroutine_fn co_snapshot_delete(void *p)
{
    struct op_args *a = p;
    return a->bs->drv->snapshot_delete(a->bs, a->s1, a->s2, a->errp);
}

int blk_snapshot_delete(struct blk_node *bs, const char *id,
                        const char *name, struct strata_error **errp)
{
    struct op_args a = {.bs = bs, .s1 = id, .s2 = name, .errp = errp};

    if (!bs->drv->snapshot_delete) {
        return not_supported(bs, "internal snapshots", errp);
    }
    if (bs->read_only) {
        return error_setg(errp, -EACCES, "Image is read-only");
    }
    return blk_run_co(co_snapshot_delete, &a);
}

static int coroutine_fn co_snapshot_list(void *p)
{
    struct op_args *a = p;
    return a->bs->drv->snapshot_list(a->bs, a->list);
}

int blk_snapshot_list(struct blk_node *bs, struct blk_snapshot **list)
{
    struct op_args a = {.bs = bs, .list = list};

    *list = NULL;
    if (!bs->drv->snapshot_list) {
        return 0; /* a format without snapshots has none to list */
    }
    return blk_run_co(co_snapshot_list, &a);
}

static int coroutine_fn co_check(void *p)
{
    struct op_args *a = p;
    return a->bs->drv->check(a->bs, a->res, a->fix);
}

int blk_check(struct blk_node *bs, struct blk_check_result *res,
              unsigned fix, struct strata_error **errp)
{
    struct op_args a = {.bs = bs, .res = res, .fix = fix};

    *res = (struct blk_check_result){0};
    if (!bs->drv->check) {
        return error_setg(errp, -ENOTSUP, "This image format does not "
                          "support checks");
    }
    if (fix && bs->read_only) {
        return error_setg(errp, -EACCES, "Image is read-only");
    }
    return blk_run_co(co_check, &a);
}

static int coroutine_fn co_amend(void *p)
{
    struct op_args *a = p;
    return a->bs->drv->amend(a->bs, a->opts, a->flag, a->progress, a->opaque,
                             a->errp);
}

int blk_amend(struct blk_node *bs, struct blk_opts *opts, bool force,
              blk_progress_fn *progress, void *opaque,
              struct strata_error **errp)
{
    struct op_args a = {.bs = bs, .opts = opts, .flag = force,
                        .progress = progress, .opaque = opaque, .errp = errp};

    if (!bs->drv->amend) {
        return error_setg(errp, -ENOTSUP, "Format driver '%s' does not "
                          "support option amendment", bs->drv->name);
    }
    if (bs->read_only) {
        return error_setg(errp, -EACCES, "Image is read-only");
    }
    return blk_run_co(co_amend, &a);
}

int blk_measure(const struct blk_driver *drv, struct blk_opts *opts,
                struct blk_node *in, struct blk_measure *out,
                struct strata_error **errp)
{
    *out = (struct blk_measure){0};
    if (!drv->measure) {
        return error_setg(errp, -ENOTSUP, "Block driver '%s' does not "
                          "support size measurement", drv->name);
    }
    return drv->measure(opts, in, out, errp);
}

static int coroutine_fn co_change_backing(void *p)
{
    struct op_args *a = p;
    return a->bs->drv->change_backing_file(a->bs, a->s1, a->s2, a->errp);
}

int blk_change_backing_file(struct blk_node *bs, const char *backing_file,
                            const char *backing_fmt,
                            struct strata_error **errp)
{
    struct op_args a = {.bs = bs, .s1 = backing_file, .s2 = backing_fmt,
                        .errp = errp};

    if (!bs->drv->change_backing_file) {
        return error_setg(errp, -ENOTSUP, "Could not change the backing "
                          "file to '%s': Operation not supported",
                          backing_file ? backing_file : "");
    }
    if (bs->read_only) {
        return error_setg(errp, -EACCES, "Image is read-only");
    }
    return blk_run_co(co_change_backing, &a);
}

static int coroutine_fn co_make_empty(void *p)
{
    struct op_args *a = p;
    return a->bs->drv->make_empty(a->bs, a->errp);
}

int blk_make_empty(struct blk_node *bs, struct strata_error **errp)
{
    struct op_args a = {.bs = bs, .errp = errp};

    if (!bs->drv->make_empty) {
        return not_supported(bs, "emptying the image", errp);
    }
    if (bs->read_only) {
        return error_setg(errp, -EACCES, "Image is read-only");
    }
    return blk_run_co(co_make_empty, &a);
}

/* Children first, so a format that prepares its metadata for writing
 * already has a writable file under it. */
int blk_reopen(struct blk_node *bs, bool read_write,
               struct strata_error **errp)
{
    int ret;

    if (bs->read_only == !read_write) {
        return 0;
    }
    blk_drain(bs);
    if (!read_write) {
        ret = blk_flush(bs);
        if (ret < 0) {
            return error_setg(errp, ret, "Could not flush '%s'",
                              bs->filename);
        }
    }
    if (bs->file) {
        ret = blk_reopen(bs->file, read_write, errp);
        if (ret < 0) {
            return ret;
        }
    } else if (!bs->drv->reopen) {
        return error_setg(errp, -ENOTSUP, "Driver '%s' cannot reopen "
                          "'%s' %s", bs->drv->name, bs->filename,
                          read_write ? "read-write" : "read-only");
    }
    if (bs->drv->reopen) {
        ret = bs->drv->reopen(bs, read_write, errp);
        if (ret < 0) {
            if (bs->file) {
                blk_reopen(bs->file, !read_write, NULL);
            }
            return ret;
        }
    }
    bs->read_only = !read_write;
    if (read_write) {
        bs->flags |= BLK_O_RDWR;
    } else {
        bs->flags &= ~BLK_O_RDWR;
    }
    return 0;
}
