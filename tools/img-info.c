/* strata-img info: what qemu-img info shows.  Each layer becomes a JSON
 * object with QEMU's ImageInfo keys, printed either as JSON (keys in
 * QEMU's order) or as qemu-img's human text; --backing-chain walks the
 * chain by opening every layer on its own, as qemu-img does. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img-cmds.h"
#include "img-snapshot.h"
#include "util.h"

/* The "snapshots" array (SnapshotInfo objects in QAPI field order), or
 * NULL when the image has none, as qemu-img leaves the key out then. */
static struct json *snapshot_info(struct blk_node *bs)
{
    struct blk_snapshot *sn = NULL;
    int n = blk_snapshot_list(bs, &sn);
    struct json *list = NULL;

    for (int i = 0; i < n; i++) {
        struct json *o = json_new_object();
        json_set_str(o, "id", sn[i].id);
        json_set_str(o, "name", sn[i].name);
        json_set_int(o, "vm-state-size", (int64_t)sn[i].vm_state_size);
        json_set_int(o, "date-sec", sn[i].date_sec);
        json_set_int(o, "date-nsec", sn[i].date_nsec);
        json_set_int(o, "vm-clock-sec",
                     (int64_t)(sn[i].vm_clock_nsec / 1000000000));
        json_set_int(o, "vm-clock-nsec",
                     (int64_t)(sn[i].vm_clock_nsec % 1000000000));
        if (sn[i].icount != UINT64_MAX) {
            json_set_int(o, "icount", (int64_t)sn[i].icount);
        }
        if (!list) {
            list = json_new_array();
        }
        json_append(list, o);
    }
    blk_snapshot_list_free(sn, n);
    return list;
}

/* The ImageInfo object of one open layer, fields in QAPI order (which
 * decides QEMU's key order where two keys share a hash bucket). */
static struct json *image_info(struct blk_node *bs)
{
    struct json *info = json_new_object();
    struct blk_info bi;
    int64_t actual = blk_allocated_size(bs);

    json_set_str(info, "filename", bs->filename);
    json_set_str(info, "format", bs->drv->name);
    if (blk_get_info(bs, &bi) >= 0) {
        json_set_bool(info, "dirty-flag", bi.is_dirty);
    } else {
        memset(&bi, 0, sizeof(bi));
    }
    if (actual >= 0) {
        json_set_int(info, "actual-size", actual);
    }
    json_set_int(info, "virtual-size", (int64_t)bs->size);
    if (bi.cluster_size) {
        json_set_int(info, "cluster-size", bi.cluster_size);
    }
    if (bi.encrypted) {
        json_set_bool(info, "encrypted", true); /* as QEMU: only when true */
    }
    if (bs->backing_file && bs->backing_file[0]) {
        char *full = blk_resolve_backing_name(bs->filename, bs->backing_file);
        json_set_str(info, "backing-filename", bs->backing_file);
        json_set_str(info, "full-backing-filename", full);
        if (bs->backing_format && bs->backing_format[0]) {
            json_set_str(info, "backing-filename-format",
                         bs->backing_format);
        }
        free(full);
    }
    struct json *snapshots = snapshot_info(bs);
    if (snapshots) {
        json_set(info, "snapshots", snapshots);
    }
    if (bi.format_specific) {
        json_set(info, "format-specific", bi.format_specific);
        bi.format_specific = NULL;
    }
    blk_info_release(&bi);
    return info;
}

static const char *str_of(const struct json *obj, const char *key)
{
    const struct json *v = json_get(obj, key);
    return v && v->type == JSON_STRING ? v->s : NULL;
}

static bool int_of(const struct json *obj, const char *key, int64_t *out)
{
    const struct json *v = json_get(obj, key);

    if (!v || (v->type != JSON_INT && v->type != JSON_UINT)) {
        return false;
    }
    *out = v->type == JSON_INT ? v->i : (int64_t)v->u;
    return true;
}

static void dump_value(int indent, const struct json *v);

/* QEMU's dump_qdict(): "key: value", dashes in keys shown as spaces,
 * nested containers on the following lines four columns further in. */
static void dump_object(int indent, const struct json *obj)
{
    for (int i = 0; i < obj->c.n; i++) {
        const struct json *v = obj->c.items[i];
        bool composite = v->type == JSON_OBJECT || v->type == JSON_ARRAY;

        printf("%*s", indent * 4, "");
        for (const char *k = obj->c.keys[i]; *k; k++) {
            putchar(*k == '-' ? ' ' : *k);
        }
        printf(":%c", composite ? '\n' : ' ');
        dump_value(indent + 1, v);
        if (!composite) {
            printf("\n");
        }
    }
}

static void dump_array(int indent, const struct json *arr)
{
    for (int i = 0; i < arr->c.n; i++) {
        const struct json *v = arr->c.items[i];
        bool composite = v->type == JSON_OBJECT || v->type == JSON_ARRAY;

        printf("%*s[%i]:%c", indent * 4, "", i, composite ? '\n' : ' ');
        dump_value(indent + 1, v);
        if (!composite) {
            printf("\n");
        }
    }
}

static void dump_value(int indent, const struct json *v)
{
    switch (v->type) {
    case JSON_NULL:
        printf("null");
        break;
    case JSON_BOOL:
        printf("%s", v->b ? "true" : "false");
        break;
    case JSON_INT:
        printf("%lld", (long long)v->i);
        break;
    case JSON_UINT:
        printf("%llu", (unsigned long long)v->u);
        break;
    case JSON_DOUBLE:
        printf("%.17g", v->d);
        break;
    case JSON_STRING:
        printf("%s", v->s);
        break;
    case JSON_OBJECT:
        dump_object(indent, v);
        break;
    case JSON_ARRAY:
        dump_array(indent, v);
        break;
    }
}

/* The "Snapshot list:" table of the human text, from the JSON array. */
static void dump_snapshots(const struct json *list)
{
    printf("Snapshot list:\n");
    img_snapshot_dump_header();
    printf("\n");
    for (int i = 0; i < list->c.n; i++) {
        const struct json *o = list->c.items[i];
        int64_t size = 0, date = 0, csec = 0, cnsec = 0, icount;
        const char *id = str_of(o, "id"), *name = str_of(o, "name");

        int_of(o, "vm-state-size", &size);
        int_of(o, "date-sec", &date);
        int_of(o, "vm-clock-sec", &csec);
        int_of(o, "vm-clock-nsec", &cnsec);
        if (!int_of(o, "icount", &icount)) {
            icount = -1;
        }
        img_snapshot_dump(id ? id : "", name ? name : "", (uint64_t)size,
                          (uint32_t)date,
                          (uint64_t)csec * 1000000000ull + (uint64_t)cnsec,
                          (uint64_t)icount);
        printf("\n");
    }
}

/* qemu-img's human text for one layer (bdrv_image_info_dump). */
static void dump_human(const struct json *info)
{
    const char *backing = str_of(info, "backing-filename");
    const char *full = str_of(info, "full-backing-filename");
    const char *bfmt = str_of(info, "backing-filename-format");
    const struct json *dirty = json_get(info, "dirty-flag");
    const struct json *spec = json_get(info, "format-specific");
    const struct json *snapshots = json_get(info, "snapshots");
    int64_t vsize = 0, asize, csize;
    char buf[64];

    int_of(info, "virtual-size", &vsize);
    format_size((uint64_t)vsize, buf, sizeof(buf));
    printf("image: %s\n"
           "file format: %s\n"
           "virtual size: %s (%lld bytes)\n",
           str_of(info, "filename"), str_of(info, "format"), buf,
           (long long)vsize);
    if (int_of(info, "actual-size", &asize)) {
        format_size((uint64_t)asize, buf, sizeof(buf));
        printf("disk size: %s\n", buf);
    } else {
        printf("disk size: unavailable\n");
    }
    if (json_get(info, "encrypted") && json_get(info, "encrypted")->b) {
        printf("encrypted: yes\n");
    }
    if (int_of(info, "cluster-size", &csize)) {
        printf("cluster_size: %lld\n", (long long)csize);
    }
    if (dirty && dirty->type == JSON_BOOL && dirty->b) {
        printf("cleanly shut down: no\n");
    }
    if (backing) {
        printf("backing file: %s", backing);
        if (!full) {
            printf(" (cannot determine actual path)");
        } else if (strcmp(backing, full) != 0) {
            printf(" (actual path: %s)", full);
        }
        printf("\n");
        if (bfmt) {
            printf("backing file format: %s\n", bfmt);
        }
    }
    if (snapshots && snapshots->type == JSON_ARRAY) {
        dump_snapshots(snapshots);
    }
    if (spec) {
        const struct json *data = json_get(spec, "data");
        printf("Format specific information:\n");
        if (data) {
            dump_value(1, data);
        }
    }
}

/* Open every layer (only the first one when !chain) and collect its
 * information; NULL after printing an error. */
static struct json *collect(const char *filename, const char *fmt,
                            bool image_opts, bool chain, bool force_share)
{
    struct json *list = json_new_array();
    char **seen = NULL;
    int nseen = 0;
    char *name = xstrdup(filename), *bfmt = fmt ? xstrdup(fmt) : NULL;

    while (name) {
        struct blk_node *bs;
        struct json *info;

        for (int i = 0; i < nseen; i++) {
            if (strcmp(seen[i], name) == 0) {
                tool_error("Backing file '%s' creates an infinite loop.",
                           name);
                goto fail;
            }
        }
        seen = xrealloc(seen, sizeof(*seen) * (nseen + 1));
        seen[nseen++] = name;

        bs = img_open(name, bfmt, image_opts, NULL,
                      BLK_O_NO_BACKING | BLK_O_NO_IO |
                          (force_share ? BLK_O_FORCE_SHARE : 0),
                      false);
        if (!bs) {
            goto fail;
        }
        info = image_info(bs);
        blk_close(bs);
        json_append(list, info);

        /* only the top image takes the command line's format and options */
        free(bfmt);
        bfmt = NULL;
        image_opts = false;
        name = NULL;
        if (chain && str_of(info, "full-backing-filename")) {
            name = xstrdup(str_of(info, "full-backing-filename"));
            if (str_of(info, "backing-filename-format")) {
                bfmt = xstrdup(str_of(info, "backing-filename-format"));
            }
        }
    }
    for (int i = 0; i < nseen; i++) {
        free(seen[i]);
    }
    free(seen);
    return list;

fail:
    for (int i = 0; i < nseen; i++) {
        free(seen[i]);
    }
    if (name && (!nseen || seen[nseen - 1] != name)) {
        free(name);
    }
    free(seen);
    free(bfmt);
    json_free(list);
    return NULL;
}

int img_info(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, IMG_OPT_OUTPUT},
        {"backing-chain", no_argument, NULL, IMG_OPT_BACKING_CHAIN},
        {"object", required_argument, NULL, IMG_OPT_OBJECT},
        {"image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS},
        {"force-share", no_argument, NULL, 'U'},
        {NULL, 0, NULL, 0},
    };
    struct img_std_opts o = {0};
    const char *output = NULL;
    bool chain = false;
    enum img_output ofmt;
    struct json *list;
    int c;

    while ((c = img_getopt(argc, argv, ":f:hU", longopts)) != -1) {
        switch (c) {
        case IMG_OPT_OUTPUT:
            output = optarg;
            break;
        case IMG_OPT_BACKING_CHAIN:
            chain = true;
            break;
        default:
            if (img_std_opt(&o, c, optarg) < 0) {
                return 1;
            }
        }
    }
    img_one_filename(argc, argv);
    if (img_parse_output(output, &ofmt) < 0) {
        return 1;
    }

    list = collect(argv[optind], o.fmt, o.image_opts, chain, o.force_share);
    if (!list) {
        return 1;
    }
    if (ofmt == IMG_OUTPUT_JSON) {
        if (chain) {
            img_print_json(list);
        } else {
            img_print_json(list->c.items[0]);
        }
    } else {
        for (int i = 0; i < list->c.n; i++) {
            if (i > 0) {
                printf("\n");
            }
            tool_json_qemu_order(list->c.items[i]);
            dump_human(list->c.items[i]);
        }
    }
    json_free(list);
    return 0;
}
