/* Differencing VHD images: finding the parent from the dynamic header's
 * parent locators (Windows relative W2ru and absolute W2ku in UTF-16LE,
 * the older Wi2r/Wi2k in ASCII, MacX file URLs in UTF-8; the Mac alias
 * form "Mac " cannot be resolved here) and, failing those, the parent's
 * Unicode name next to the image; then checking the parent's UUID.  And
 * writing those locators for a new differencing image. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "drivers.h"
#include "util.h"
#include "vhd.h"

#define PLAT(a, b, c, d) ((uint32_t)(a) << 24 | (b) << 16 | (c) << 8 | (d))
#define PLAT_W2RU PLAT('W', '2', 'r', 'u')
#define PLAT_W2KU PLAT('W', '2', 'k', 'u')
#define PLAT_WI2R PLAT('W', 'i', '2', 'r')
#define PLAT_WI2K PLAT('W', 'i', '2', 'k')
#define PLAT_MACX PLAT('M', 'a', 'c', 'X')
#define MAX_LOCATOR 65536

/* UTF-16 (le or be) to UTF-8; stops at a NUL. */
static char *utf16_to_utf8(const uint8_t *p, size_t len, bool be)
{
    char *out = xmalloc(len * 2 + 1), *o = out;

    for (size_t i = 0; i + 1 < len; i += 2) {
        uint32_t c = be ? (uint32_t)p[i] << 8 | p[i + 1]
                        : (uint32_t)p[i + 1] << 8 | p[i];
        if (c == 0) {
            break;
        }
        if (c >= 0xd800 && c < 0xdc00 && i + 3 < len) {
            uint32_t lo = be ? (uint32_t)p[i + 2] << 8 | p[i + 3]
                             : (uint32_t)p[i + 3] << 8 | p[i + 2];
            if (lo >= 0xdc00 && lo < 0xe000) {
                c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
                i += 2;
            }
        }
        if (c < 0x80) {
            *o++ = (char)c;
        } else if (c < 0x800) {
            *o++ = (char)(0xc0 | c >> 6);
            *o++ = (char)(0x80 | (c & 0x3f));
        } else if (c < 0x10000) {
            *o++ = (char)(0xe0 | c >> 12);
            *o++ = (char)(0x80 | ((c >> 6) & 0x3f));
            *o++ = (char)(0x80 | (c & 0x3f));
        } else {
            *o++ = (char)(0xf0 | c >> 18);
            *o++ = (char)(0x80 | ((c >> 12) & 0x3f));
            *o++ = (char)(0x80 | ((c >> 6) & 0x3f));
            *o++ = (char)(0x80 | (c & 0x3f));
        }
    }
    *o = '\0';
    return out;
}

/* UTF-8 to UTF-16 (ASCII and two-byte sequences; others become '?'). */
static size_t utf8_to_utf16(const char *s, uint8_t *out, size_t max_units,
                            bool be)
{
    size_t n = 0;

    while (*s && n < max_units) {
        uint32_t c = (uint8_t)*s++;
        if (c >= 0xc0 && c < 0xe0 && (*s & 0xc0) == 0x80) {
            c = (c & 0x1f) << 6 | ((uint8_t)*s++ & 0x3f);
        } else if (c >= 0x80) {
            while ((*s & 0xc0) == 0x80) {
                s++;
            }
            c = '?';
        }
        out[2 * n + (be ? 0 : 1)] = (uint8_t)(c >> 8);
        out[2 * n + (be ? 1 : 0)] = (uint8_t)c;
        n++;
    }
    return n * 2;
}

/* A Windows or URL path as a local one: '\' to '/', "C:" dropped from
 * absolute paths, ".\" dropped from relative ones, file:// stripped. */
static char *local_path(char *p, uint32_t plat)
{
    char *q = p;

    for (char *c = p; *c; c++) {
        if (*c == '\\') {
            *c = '/';
        }
    }
    if (plat == PLAT_MACX) {
        if (strncmp(q, "file://", 7) == 0) {
            q += 7;
            if (strncmp(q, "localhost", 9) == 0) {
                q += 9;
            }
        }
        /* %XX escapes */
        char *w = q;
        for (char *r = q; *r; r++) {
            unsigned v;
            if (r[0] == '%' && sscanf(r + 1, "%2x", &v) == 1) {
                *w++ = (char)v;
                r += 2;
            } else {
                *w++ = *r;
            }
        }
        *w = '\0';
    } else if (((q[0] | 0x20) >= 'a' && (q[0] | 0x20) <= 'z') &&
               q[1] == ':') {
        q += 2;
    }
    while (q[0] == '.' && q[1] == '/') {
        q += 2;
    }
    return xstrdup(q);
}

/* The path in locator i, or NULL. */
static char *read_locator(struct blk_node *bs, int i, uint32_t *plat)
{
    struct vhd_state *s = bs->opaque;
    const uint8_t *l = s->dyn + VHD_D_LOCATORS + i * VHD_LOCATOR_SIZE;
    uint32_t len = vhd_ld32(l + 8);
    uint64_t at = vhd_ld64(l + 16);
    uint8_t *buf;
    char *raw, *path;

    *plat = vhd_ld32(l);
    if (*plat != PLAT_W2RU && *plat != PLAT_W2KU && *plat != PLAT_WI2R &&
        *plat != PLAT_WI2K && *plat != PLAT_MACX) {
        return NULL;
    }
    if (len == 0 || len > MAX_LOCATOR || at > bs->file->size ||
        bs->file->size - at < len) {
        return NULL;
    }
    buf = xzalloc(len + 2);
    if (blk_pread(bs->file, at, len, buf, 0) < 0) {
        free(buf);
        return NULL;
    }
    if (*plat == PLAT_W2RU || *plat == PLAT_W2KU) {
        raw = utf16_to_utf8(buf, len, false);
    } else {
        raw = xstrdup((char *)buf);
    }
    free(buf);
    path = local_path(raw, *plat);
    free(raw);
    if (!path[0]) {
        free(path);
        return NULL;
    }
    return path;
}

/* Does `name`, resolved next to the image, name a regular file? */
static bool exists_near(const char *image, const char *name)
{
    char *full = blk_resolve_backing_name(image, name);
    struct stat st;
    bool ok = stat(full, &st) == 0 && S_ISREG(st.st_mode);

    free(full);
    return ok;
}

/* Pick the parent's name: locators in order of preference, then the
 * Unicode name in the directory of the image. */
static char *find_parent(struct blk_node *bs)
{
    struct vhd_state *s = bs->opaque;
    static const uint32_t order[] = {PLAT_W2RU, PLAT_W2KU, PLAT_MACX,
                                     PLAT_WI2R, PLAT_WI2K};
    char *name;

    for (size_t k = 0; k < ARRAY_SIZE(order); k++) {
        for (int i = 0; i < VHD_NUM_LOCATORS; i++) {
            uint32_t plat;
            char *p = read_locator(bs, i, &plat);
            if (p && plat == order[k] && exists_near(bs->filename, p)) {
                return p;
            }
            free(p);
        }
    }
    name = utf16_to_utf8(s->dyn + VHD_D_PARENT_NAME, 512, true);
    char *slash = strrchr(name, '/'), *bslash = strrchr(name, '\\');
    char *base = xstrdup(MAX(slash, bslash) ? MAX(slash, bslash) + 1 : name);
    free(name);
    if (base[0] && exists_near(bs->filename, base)) {
        return base;
    }
    free(base);
    return NULL;
}

/* backing= first, then the locators; the parent's UUID must match. */
int vhd_open_parent(struct blk_node *bs, struct blk_opts *opts,
                    struct strata_error **errp)
{
    struct vhd_state *s = bs->opaque;
    const char *backing = opts_get(opts, "backing");
    const uint8_t *want = s->dyn + VHD_D_PARENT_UUID;
    int ret;

    if (backing && (!backing[0] || strcmp(backing, "null") == 0)) {
        return 0;
    }
    if (backing) {
        bs->backing_file = xstrdup(backing);
    } else {
        bs->backing_file = find_parent(bs);
    }
    if (!bs->backing_file) {
        if (bs->flags & BLK_O_NO_BACKING) {
            return 0;
        }
        char *pn = utf16_to_utf8(s->dyn + VHD_D_PARENT_NAME, 512, true);
        ret = error_setg(errp, -ENOENT, "Could not find the parent '%s' of "
                         "the differencing image '%s' through its parent "
                         "locators; name it with backing=<file>", pn,
                         bs->filename);
        free(pn);
        return ret;
    }
    bs->backing_format = xstrdup("vpc");
    ret = blk_open_backing(bs, errp);
    if (ret < 0 || !bs->backing) {
        return ret;
    }
    if (bs->backing->drv != &blk_drv_vpc ||
        memcmp(((struct vhd_state *)bs->backing->opaque)->footer + VHD_F_UUID,
               want, 16) != 0) {
        return error_setg(errp, -EINVAL, "'%s' is not the parent of the "
                          "differencing image '%s' (its UUID differs from "
                          "the one the image records)", bs->backing_file,
                          bs->filename);
    }
    return 0;
}

/* One locator: platform code, the path's bytes padded to sectors. */
static void add_locator(uint8_t *dyn, int slot, uint32_t plat,
                        const uint8_t *data, size_t len, uint64_t at,
                        uint8_t **out, uint64_t *out_len)
{
    uint8_t *l = dyn + VHD_D_LOCATORS + slot * VHD_LOCATOR_SIZE;
    uint64_t space = ROUND_UP(MAX(len, (size_t)1), BLK_SECTOR_SIZE);

    vhd_st32(l, plat);
    vhd_st32(l + 4, (uint32_t)space); /* in bytes, as Windows writes it */
    vhd_st32(l + 8, (uint32_t)len);
    vhd_st64(l + 16, at + *out_len);
    *out = xrealloc(*out, *out_len + space);
    memset(*out + *out_len, 0, space);
    memcpy(*out + *out_len, data, len);
    *out_len += space;
}

/* W2ru (when the parent was named relatively) and W2ku locators, the
 * parent's UUID, modification time and UTF-16 name. */
uint8_t *vhd_make_locators(const char *filename, const char *parent,
                           const uint8_t *parent_footer, uint8_t *dyn,
                           uint64_t at, uint64_t *len)
{
    char *full = blk_resolve_backing_name(filename, parent);
    char *abs = realpath(full, NULL);
    const char *slash = strrchr(parent, '/');
    const char *base = slash ? slash + 1 : parent;
    uint8_t *out = NULL, *u16 = xmalloc(2 * 4096);
    struct stat st;
    int slot = 0;
    size_t n;

    *len = 0;
    memcpy(dyn + VHD_D_PARENT_UUID, parent_footer + VHD_F_UUID, 16);
    if (stat(full, &st) == 0 && st.st_mtime > VHD_TIMESTAMP_BASE) {
        vhd_st32(dyn + VHD_D_PARENT_TS,
                 (uint32_t)(st.st_mtime - VHD_TIMESTAMP_BASE));
    }
    utf8_to_utf16(base, dyn + VHD_D_PARENT_NAME, 256, true);
    if (parent[0] != '/') {
        char *rel = xasprintf(".\\%s", parent);
        for (char *c = rel; *c; c++) {
            *c = *c == '/' ? '\\' : *c;
        }
        n = utf8_to_utf16(rel, u16, 4096, false);
        add_locator(dyn, slot++, PLAT_W2RU, u16, n, at, &out, len);
        free(rel);
    }
    if (abs) {
        for (char *c = abs; *c; c++) {
            *c = *c == '/' ? '\\' : *c;
        }
        n = utf8_to_utf16(abs, u16, 4096, false);
        add_locator(dyn, slot++, PLAT_W2KU, u16, n, at, &out, len);
    }
    free(u16);
    free(abs);
    free(full);
    return out;
}
