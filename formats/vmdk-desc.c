/* vmdk descriptors: the text that names the create type, the CIDs that
 * link a delta disk to its parent, and the extents.  Extent lines are
 *   ACCESS SECTORS TYPE "FILE" [OFFSET]
 * with ACCESS RW or RDONLY, TYPE FLAT, SPARSE, VMFS, VMFSSPARSE, VMFSRDM,
 * VMFSRAW or SESPARSE.  Extent names are taken relative to the descriptor;
 * absolute names are accepted (VMware writes them for raw devices), names
 * climbing out of the descriptor's directory with ".." are refused. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util.h"
#include "vmdk.h"

/* Start of the value of `key` on its own line, or NULL; *len its length
 * (quotes and trailing blanks removed). */
static const char *find_key(const char *desc, const char *key, size_t *len)
{
    size_t klen = strlen(key);

    for (const char *p = desc; *p; ) {
        const char *eol = strchr(p, '\n');
        const char *end = eol ? eol : p + strlen(p);
        const char *q = p;
        while (q < end && (*q == ' ' || *q == '\t')) {
            q++;
        }
        if ((size_t)(end - q) > klen && strncmp(q, key, klen) == 0) {
            q += klen;
            while (q < end && (*q == ' ' || *q == '\t')) {
                q++;
            }
            if (q < end && *q == '=') {
                q++;
                while (q < end && (*q == ' ' || *q == '\t')) {
                    q++;
                }
                const char *v_end = end;
                while (v_end > q && isspace((unsigned char)v_end[-1])) {
                    v_end--;
                }
                if (v_end - q >= 2 && *q == '"' && v_end[-1] == '"') {
                    q++;
                    v_end--;
                }
                *len = (size_t)(v_end - q);
                return q;
            }
        }
        p = eol ? eol + 1 : end;
    }
    return NULL;
}

char *vmdk_desc_get(const char *desc, const char *key)
{
    size_t len;
    const char *v = find_key(desc, key, &len);

    return v ? strndup(v, len) : NULL;
}

int vmdk_desc_get_cid(const char *desc, const char *key, uint32_t *out)
{
    char *v = vmdk_desc_get(desc, key), *end;
    unsigned long long x;

    if (!v || !v[0]) {
        free(v);
        return -EINVAL;
    }
    errno = 0;
    x = strtoull(v, &end, 16);
    /* as QEMU's sscanf("%x"): trailing text is ignored, overflow is not */
    if (end == v || errno || x > UINT32_MAX) {
        free(v);
        return -EINVAL;
    }
    free(v);
    *out = (uint32_t)x;
    return 0;
}

char *vmdk_desc_set_cid(const char *desc, uint32_t cid)
{
    size_t len;
    const char *v = find_key(desc, "CID", &len);

    if (!v) {
        return NULL;
    }
    return xasprintf("%.*s%" PRIx32 "%s", (int)(v - desc), desc, cid,
                     v + len);
}

/* Does a relative extent name climb out of the descriptor's directory? */
static bool escapes(const char *name)
{
    int depth = 0;

    for (const char *p = name; *p; ) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (--depth < 0) {
                return true;
            }
        } else if (n && !(n == 1 && p[0] == '.')) {
            depth++;
        }
        p += n + (slash ? 1 : 0);
    }
    return false;
}

/* Open the file of one extent line, relative to the descriptor. */
static int open_extent_file(struct blk_node *bs, const char *fname,
                            struct blk_node **out, struct strata_error **errp)
{
    struct blk_opts *o;
    char *path;
    unsigned flags;
    int ret;

    if (!fname[0]) {
        return error_setg(errp, -EINVAL, "Empty extent file name in '%s'",
                          bs->filename);
    }
    for (const char *p = fname; *p; p++) {
        if ((unsigned char)*p < 0x20) {
            return error_setg(errp, -EINVAL, "Control character in extent "
                              "file name in '%s'", bs->filename);
        }
    }
    if (fname[0] != '/' && escapes(fname)) {
        return error_setg(errp, -EACCES, "Extent file '%s' of '%s' lies "
                          "outside the descriptor's directory", fname,
                          bs->filename);
    }
    if (strstr(fname, "://")) {
        return error_setg(errp, -EINVAL, "Extent file '%s' of '%s' is not a "
                          "plain file name", fname, bs->filename);
    }
    path = blk_resolve_backing_name(bs->file->filename, fname);
    o = opts_new();
    opts_set(o, "driver", "file");
    flags = bs->flags & (BLK_O_RDWR | BLK_O_NOCACHE | BLK_O_NO_FLUSH |
                         BLK_O_FORCE_SHARE | BLK_O_NO_LOCK);
    ret = blk_open(out, path, o, flags, errp);
    opts_free(o);
    free(path);
    return ret;
}

int vmdk_parse_extents(struct blk_node *bs, const char *desc,
                       struct strata_error **errp)
{
    struct vmdk_state *s = bs->opaque;
    char access[11], type[11], fname[512];
    long long sectors, offset;
    int ret = 0;

    for (const char *p = desc; *p; ) {
        const char *eol = strchr(p, '\n');
        size_t linelen = eol ? (size_t)(eol - p) : strlen(p);
        char *line = strndup(p, linelen);
        struct blk_node *file = NULL;
        int m;

        p += linelen + (eol ? 1 : 0);
        offset = -1;
        m = sscanf(line, "%10s %lld %10s \"%511[^\n\r\"]\" %lld", access,
                   &sectors, type, fname, &offset);
        if (m < 4 || (strcmp(access, "RW") && strcmp(access, "RDONLY"))) {
            free(line);
            continue;
        }
        bool flat = !strcmp(type, "FLAT") || !strcmp(type, "VMFS") ||
                    !strcmp(type, "VMFSRDM") || !strcmp(type, "VMFSRAW");
        bool sparse = !strcmp(type, "SPARSE") ||
                      !strcmp(type, "VMFSSPARSE") ||
                      !strcmp(type, "SESPARSE");
        if ((!strcmp(type, "FLAT") && (m != 5 || offset < 0)) ||
            (flat && strcmp(type, "FLAT") && m != 4) ||
            (sparse && m != 4) || sectors <= 0 ||
            sectors > (long long)(UINT64_MAX >> 12)) {
            ret = error_setg(errp, -EINVAL, "Invalid extent line: %s", line);
            free(line);
            break;
        }
        free(line);
        if (!flat && !sparse) {
            ret = error_setg(errp, -ENOTSUP, "Unsupported extent type '%s'",
                             type);
            break;
        }
        if (s->nb_extents >= VMDK_MAX_EXTENTS) {
            ret = error_setg(errp, -EFBIG, "Too many extents in '%s'",
                             bs->filename);
            break;
        }
        ret = open_extent_file(bs, fname, &file, errp);
        if (ret < 0) {
            break;
        }
        if (flat) {
            struct vmdk_extent *e = vmdk_add_extent(bs);
            e->file = file;
            e->owned = true;
            e->kind = VMDK_EXT_FLAT;
            e->type = xstrdup(type);
            e->flat_offset = (uint64_t)(offset < 0 ? 0 : offset) * 512;
            e->end = e->start + (uint64_t)sectors * 512;
            if (offset > (long long)(UINT64_MAX >> 12)) {
                ret = error_setg(errp, -EINVAL, "Invalid extent offset");
                break;
            }
        } else {
            ret = vmdk_open_sparse(bs, file, true, type, 0, errp);
            if (ret < 0) {
                blk_close(file);
                break;
            }
        }
        if (s->extents[s->nb_extents - 1].end > (UINT64_MAX >> 2)) {
            ret = error_setg(errp, -EFBIG, "Image '%s' is too large",
                             bs->filename);
            break;
        }
    }
    if (ret >= 0 && s->nb_extents == 0) {
        ret = error_setg(errp, -EINVAL, "No extents in VMDK descriptor "
                         "'%s'", bs->filename);
    }
    return ret;
}

int vmdk_read_desc(struct blk_node *bs, char **out)
{
    struct vmdk_state *s = bs->opaque;
    uint64_t len = s->desc_size;
    char *buf;
    int ret;

    if (s->desc_in_file) {
        len = MIN(bs->file->size, VMDK_MAX_DESC_FILE);
    } else if (s->desc_offset + len > bs->file->size) {
        len = bs->file->size > s->desc_offset ?
              bs->file->size - s->desc_offset : 0;
    }
    buf = xzalloc(len + 1);
    ret = len ? blk_pread(bs->file, s->desc_offset, len, buf, 0) : 0;
    if (ret < 0) {
        free(buf);
        return ret;
    }
    *out = buf;
    return 0;
}

int coroutine_fn vmdk_update_cid(struct blk_node *bs)
{
    struct vmdk_state *s = bs->opaque;
    char *desc, *nd;
    uint32_t cid;
    size_t len;
    int ret;

    if (s->cid_updated) {
        return 0;
    }
    /* cid_updated is set only when done: writers arriving meanwhile wait
     * for s->lock, so the first write is also the first to go on */
    if (getrandom(&cid, sizeof(cid), 0) != sizeof(cid)) {
        cid = (uint32_t)random();
    }
    ret = vmdk_read_desc(bs, &desc);
    if (ret < 0) {
        s->cid_updated = true;
        return ret;
    }
    nd = vmdk_desc_set_cid(desc, cid);
    len = strlen(desc);
    free(desc);
    if (!nd) {
        s->cid_updated = true;
        return 0; /* nothing to update: leave the descriptor alone */
    }
    if (strlen(nd) < len) {
        /* a shorter text: blank out the old tail */
        nd = xrealloc(nd, len + 1);
        memset(nd + strlen(nd), 0, len + 1 - strlen(nd));
    } else {
        len = strlen(nd);
    }
    if (s->desc_in_file) {
        /* as QEMU 7.2: the text NUL-padded to whole sectors */
        size_t tl = strlen(nd);
        len = MAX(ROUND_UP(bs->file->size, 512), ROUND_UP(tl, 512));
        nd = xrealloc(nd, len);
        memset(nd + tl, 0, len - tl);
        ret = blk_co_pwrite(bs->file, 0, len, nd, 0);
    } else if (len <= s->desc_size) {
        ret = blk_co_pwrite(bs->file, s->desc_offset, len, nd, 0);
    }
    free(nd);
    if (ret >= 0) {
        s->cid = cid;
    }
    s->cid_updated = true;
    return ret;
}
