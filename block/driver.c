/* The driver table, lookup by name, format probing and the small parsers
 * (cache modes, preallocation) every layer shares. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block.h"
#include "drivers.h"

/* Formats first: probing walks the table in order and keeps the best score. */
const struct blk_driver *const blk_driver_table[] = {
    &blk_drv_qcow2,
    &blk_drv_vmdk,
    &blk_drv_ova,
    &blk_drv_vdi,
    &blk_drv_vpc,
    &blk_drv_vhdx,
    &blk_drv_luks,
    &blk_drv_raw,
    &blk_drv_file,
    &blk_drv_null,
    &blk_drv_fault,
    NULL,
};

static bool name_matches(const struct blk_driver *drv, const char *name)
{
    if (strcmp(drv->name, name) == 0) {
        return true;
    }
    for (const char *const *a = drv->aliases; a && *a; a++) {
        if (strcmp(*a, name) == 0) {
            return true;
        }
    }
    return false;
}

const struct blk_driver *blk_find_driver(const char *name)
{
    for (int i = 0; blk_driver_table[i]; i++) {
        if (name_matches(blk_driver_table[i], name)) {
            return blk_driver_table[i];
        }
    }
    return NULL;
}

const struct blk_driver *blk_find_protocol(const char *filename)
{
    for (int i = 0; filename && blk_driver_table[i]; i++) {
        const struct blk_driver *drv = blk_driver_table[i];
        for (const char *const *p = drv->protocols; p && *p; p++) {
            if (strncmp(filename, *p, strlen(*p)) == 0) {
                return drv;
            }
        }
    }
    return &blk_drv_file;
}

const struct blk_driver *blk_probe_buf(const uint8_t *buf, size_t len,
                                       const char *filename,
                                       const struct blk_driver *except)
{
    const struct blk_driver *best = NULL;
    int best_score = 1;

    for (int i = 0; blk_driver_table[i]; i++) {
        const struct blk_driver *drv = blk_driver_table[i];
        if (drv == except || drv->kind != BLK_KIND_FORMAT || !drv->probe) {
            continue;
        }
        int score = drv->probe(buf, len, filename);
        if (score > best_score) {
            best = drv;
            best_score = score;
        }
    }
    return best;
}

int blk_probe_format(struct blk_node *file, const struct blk_driver **drv,
                     struct strata_error **errp)
{
    uint8_t buf[BLK_PROBE_BUF_SIZE];
    uint64_t len = file->size < sizeof(buf) ? file->size : sizeof(buf);

    memset(buf, 0, sizeof(buf));
    if (len > 0) {
        int ret = blk_pread(file, 0, len, buf, 0);
        if (ret < 0) {
            return error_setg_errno(errp, ret,
                                    "Could not read image for determining "
                                    "its format");
        }
    }
    *drv = blk_probe_buf(buf, len, file->filename, NULL);
    if (!*drv) {
        *drv = &blk_drv_raw;
    }
    return 0;
}

int blk_parse_cache_mode(const char *mode, unsigned *flags)
{
    static const struct {
        const char *name;
        unsigned flags;
    } modes[] = {
        {"writeback", 0},
        {"writethrough", BLK_O_WRITETHROUGH},
        {"none", BLK_O_NOCACHE},
        {"off", BLK_O_NOCACHE},
        {"directsync", BLK_O_NOCACHE | BLK_O_WRITETHROUGH},
        {"unsafe", BLK_O_NO_FLUSH},
    };
    const unsigned mask = BLK_O_NOCACHE | BLK_O_NO_FLUSH | BLK_O_WRITETHROUGH;

    if (!mode) {
        mode = "writeback";
    }
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (strcmp(mode, modes[i].name) == 0) {
            *flags = (*flags & ~mask) | modes[i].flags;
            return 0;
        }
    }
    return -EINVAL;
}

static const char *const prealloc_names[] = {
    [BLK_PREALLOC_OFF] = "off",
    [BLK_PREALLOC_METADATA] = "metadata",
    [BLK_PREALLOC_FALLOC] = "falloc",
    [BLK_PREALLOC_FULL] = "full",
};

int blk_parse_prealloc(const char *s, enum blk_prealloc *out)
{
    for (int i = 0; i <= BLK_PREALLOC_FULL; i++) {
        if (s && strcmp(s, prealloc_names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *blk_prealloc_name(enum blk_prealloc p)
{
    return p <= BLK_PREALLOC_FULL ? prealloc_names[p] : "?";
}
