/* OVA: a tar archive holding an OVF descriptor, the disks it lists and
 * optionally a manifest (.mf) of SHA1/SHA256 digests.  Opening `x.ova`
 * exposes one disk: the tar member is opened as a window of the archive
 * (raw offset=/size=) under its own format driver (vmdk, probed), and this
 * node forwards to it.  Read only.
 *
 * Open options:
 *   disk=N|NAME   which disk: index among the disks the OVF lists (0 =
 *                 first, the default), or the member name or OVF disk id
 *   verify=on|warn|off  check the manifest digests of the OVF, the
 *                 manifest's other files and the chosen disk: a mismatch
 *                 fails the open (on, default), is only reported by
 *                 `info` (warn), or nothing is read (off)
 * The tar parser accepts ustar, pax ('x' path/size records) and GNU
 * long-name members and checks every header checksum and size. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifdef HAVE_OPENSSL
#include <openssl/evp.h>
#endif

#include "block.h"
#include "drivers.h"
#include "util.h"

#define TAR_BLOCK 512
#define OVA_MAX_MEMBERS 4096
#define OVA_MAX_META (16u * 1024 * 1024) /* .ovf, .mf, pax, long names */
#define OVA_MAX_DISKS 256

struct ova_member {
    char *name;
    uint64_t offset, size; /* data, bytes in the archive */
};

struct ova_disk {
    char *id;       /* OVF diskId, or NULL */
    char *file;     /* member name */
    int member;     /* index into members */
};

struct ova_state {
    struct blk_node *disk; /* the chosen disk's format node (owned) */
    struct ova_member *m;
    int nm;
    struct ova_disk *d;
    int nd;
    int chosen;
    char *ovf, *mf;
    const char *verify_state; /* "ok", "mismatch", "no manifest", "off" */
};

/* ---- tar ---- */

/* Octal (NUL/space terminated) or GNU base-256 number field. */
static int tar_number(const uint8_t *f, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;

    if (f[0] & 0x80) {
        if (f[0] != 0x80) {
            return -EINVAL; /* negative or more than 64 bits */
        }
        for (i = 1; i < len; i++) {
            if (v >> 56) {
                return -EINVAL;
            }
            v = v << 8 | f[i];
        }
        *out = v;
        return 0;
    }
    while (i < len && f[i] == ' ') {
        i++;
    }
    for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
        if (v >> 60) {
            return -EINVAL;
        }
        v = v << 3 | (uint64_t)(f[i] - '0');
    }
    if (i < len && f[i] != 0 && f[i] != ' ') {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static bool tar_checksum_ok(const uint8_t *h)
{
    uint64_t want, sum = 0;

    if (tar_number(h + 148, 8, &want) < 0) {
        return false;
    }
    for (int i = 0; i < TAR_BLOCK; i++) {
        sum += (i >= 148 && i < 156) ? ' ' : h[i];
    }
    return sum == want;
}

/* Value of "path" or "size" in a pax extended header (records
 * "LEN key=value\n"); malloc'd or NULL. */
static char *pax_get(const char *p, size_t len, const char *key)
{
    size_t klen = strlen(key), pos = 0;

    while (pos < len) {
        char *end;
        unsigned long rl = strtoul(p + pos, &end, 10);
        if (end == p + pos || rl == 0 || rl > len - pos || *end != ' ') {
            return NULL;
        }
        const char *kv = end + 1, *rec_end = p + pos + rl;
        if ((size_t)(rec_end - kv) > klen + 1 && memcmp(kv, key, klen) == 0 &&
            kv[klen] == '=') {
            return strndup(kv + klen + 1, (size_t)(rec_end - kv) - klen - 2);
        }
        pos += rl;
    }
    return NULL;
}

static int read_blob(struct blk_node *f, uint64_t off, uint64_t size,
                     char **out)
{
    char *buf;
    int ret;

    if (size > OVA_MAX_META) {
        return -EFBIG;
    }
    buf = xmalloc(size + 1);
    ret = size ? blk_pread(f, off, size, buf, 0) : 0;
    if (ret < 0) {
        free(buf);
        return ret;
    }
    buf[size] = 0;
    *out = buf;
    return 0;
}

/* List the regular members of the archive. */
static int tar_scan(struct blk_node *f, struct ova_state *s,
                    struct strata_error **errp)
{
    uint64_t pos = 0, fsize = f->size;
    char *long_name = NULL;
    uint64_t pax_size = UINT64_MAX;
    uint8_t h[TAR_BLOCK];
    int ret = 0;

    while (pos + TAR_BLOCK <= fsize) {
        uint64_t size;
        ret = blk_pread(f, pos, TAR_BLOCK, h, 0);
        if (ret < 0) {
            error_setg_errno(errp, ret, "Could not read the archive");
            break;
        }
        if (buffer_is_zero(h, TAR_BLOCK)) {
            break; /* end of archive */
        }
        if (!tar_checksum_ok(h)) {
            ret = error_setg(errp, -EINVAL, "Bad tar header checksum at "
                             "offset %llu", (unsigned long long)pos);
            break;
        }
        if (tar_number(h + 124, 12, &size) < 0) {
            ret = error_setg(errp, -EINVAL, "Bad tar member size at offset "
                             "%llu", (unsigned long long)pos);
            break;
        }
        uint64_t data = pos + TAR_BLOCK;
        char type = (char)h[156];
        if ((type == 'x' || type == 'L') && size > OVA_MAX_META) {
            ret = error_setg(errp, -EFBIG, "Oversized tar extended header");
            break;
        }
        if (size > fsize - data) {
            ret = error_setg(errp, -EINVAL, "Tar member at offset %llu "
                             "extends past the end of the archive (%llu "
                             "bytes)", (unsigned long long)pos,
                             (unsigned long long)size);
            break;
        }
        if (type == 'x' || type == 'L') {
            char *blob;
            ret = read_blob(f, data, size, &blob);
            if (ret < 0) {
                error_setg_errno(errp, ret, "Could not read a tar extended "
                                 "header");
                break;
            }
            if (type == 'L') {
                free(long_name);
                long_name = blob;
            } else {
                char *p = pax_get(blob, size, "path"), *sz;
                if (p) {
                    free(long_name);
                    long_name = p;
                }
                sz = pax_get(blob, size, "size");
                if (sz && parse_uint(sz, &pax_size) < 0) {
                    free(sz);
                    free(blob);
                    ret = error_setg(errp, -EINVAL, "Bad pax size record");
                    break;
                }
                free(sz);
                free(blob);
            }
        } else if (type == '0' || type == 0 || type == '7') {
            if (pax_size != UINT64_MAX) {
                size = pax_size;
                if (size > fsize - data) {
                    ret = error_setg(errp, -EINVAL, "Tar member at offset "
                                     "%llu extends past the end of the "
                                     "archive", (unsigned long long)pos);
                    break;
                }
            }
            if (s->nm >= OVA_MAX_MEMBERS) {
                ret = error_setg(errp, -EFBIG, "Too many members in the "
                                 "archive");
                break;
            }
            struct ova_member *m;
            s->m = xrealloc(s->m, sizeof(*s->m) * (size_t)(s->nm + 1));
            m = &s->m[s->nm++];
            if (long_name) {
                m->name = long_name;
                long_name = NULL;
            } else if (memcmp(h + 257, "ustar", 5) == 0 && h[345]) {
                m->name = xasprintf("%.155s/%.100s", (char *)h + 345,
                                    (char *)h);
            } else {
                m->name = strndup((char *)h, 100);
            }
            m->offset = data;
            m->size = size;
            pax_size = UINT64_MAX;
        } else if (type != 'g') {
            /* directories, links...: nothing an OVA needs */
            free(long_name);
            long_name = NULL;
            pax_size = UINT64_MAX;
        }
        pos = data + ROUND_UP(size, TAR_BLOCK);
    }
    free(long_name);
    if (ret >= 0 && s->nm == 0) {
        ret = error_setg(errp, -EINVAL, "No files in the archive");
    }
    return ret;
}

/* ---- OVF ---- */

/* Value of attribute `name` (any namespace prefix) inside one tag. */
static char *xml_attr(const char *tag, const char *end, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = tag; p + n < end; p++) {
        if (memcmp(p, name, n) == 0 && (p[-1] == ':' || isspace(
                (unsigned char)p[-1])) && (p[n] == '=' || isspace(
                (unsigned char)p[n]))) {
            const char *q = p + n;
            while (q < end && isspace((unsigned char)*q)) {
                q++;
            }
            if (q >= end || *q != '=') {
                continue;
            }
            q++;
            while (q < end && isspace((unsigned char)*q)) {
                q++;
            }
            if (q >= end || (*q != '"' && *q != '\'')) {
                continue;
            }
            char quote = *q++;
            const char *v = q;
            while (q < end && *q != quote) {
                q++;
            }
            return q < end ? strndup(v, (size_t)(q - v)) : NULL;
        }
    }
    return NULL;
}

/* Next element named `local` (any prefix): its tag text [*tag, *end). */
static bool xml_next(const char **p, const char *local, const char **tag,
                     const char **end)
{
    size_t n = strlen(local);

    for (const char *q = *p; (q = strchr(q, '<')) != NULL; q++) {
        const char *nm = q + 1, *colon;
        size_t len = strcspn(nm, " \t\r\n/>");
        colon = memchr(nm, ':', len);
        if (colon) {
            len -= (size_t)(colon + 1 - nm);
            nm = colon + 1;
        }
        if (len == n && memcmp(nm, local, n) == 0) {
            const char *e = strchr(nm, '>');
            if (!e) {
                return false;
            }
            *tag = nm + n;
            *end = e;
            *p = e;
            return true;
        }
    }
    return false;
}

static int find_member(struct ova_state *s, const char *name)
{
    for (int i = 0; i < s->nm; i++) {
        if (strcmp(s->m[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

/* The disks in the order of the OVF's DiskSection, else the .vmdk
 * members in archive order. */
static int list_disks(struct ova_state *s, const char *ovf,
                      struct strata_error **errp)
{
    const char *p = ovf, *tag, *end;

    while (ovf && xml_next(&p, "Disk", &tag, &end) && s->nd < OVA_MAX_DISKS) {
        char *ref = xml_attr(tag, end, "fileRef");
        char *id = xml_attr(tag, end, "diskId");
        char *href = NULL;
        const char *q = ovf, *t2, *e2;
        while (ref && xml_next(&q, "File", &t2, &e2)) {
            char *fid = xml_attr(t2, e2, "id");
            bool hit = fid && strcmp(fid, ref) == 0;
            free(fid);
            if (hit) {
                href = xml_attr(t2, e2, "href");
                break;
            }
        }
        free(ref);
        int mi = href ? find_member(s, href) : -1;
        if (mi < 0) {
            int ret = error_setg(errp, -ENOENT, "Disk '%s' of the OVF "
                                 "names a file ('%s') the archive lacks",
                                 id ? id : "?", href ? href : "?");
            free(id);
            free(href);
            return ret;
        }
        s->d = xrealloc(s->d, sizeof(*s->d) * (size_t)(s->nd + 1));
        s->d[s->nd++] = (struct ova_disk){.id = id, .file = href,
                                          .member = mi};
    }
    for (int i = 0; s->nd == 0 && i < s->nm; i++) {
        size_t n = strlen(s->m[i].name);
        if (n > 5 && strcasecmp(s->m[i].name + n - 5, ".vmdk") == 0) {
            s->d = xrealloc(s->d, sizeof(*s->d) * (size_t)(s->nd + 1));
            s->d[s->nd++] = (struct ova_disk){
                .file = xstrdup(s->m[i].name), .member = i};
        }
    }
    if (s->nd == 0) {
        return error_setg(errp, -ENOENT, "The archive lists no disk");
    }
    return 0;
}

/* ---- manifest ---- */

/* Hex digest of a member with EVP algorithm `md`; malloc'd. */
static int digest_member(struct blk_node *f, const struct ova_member *m,
                         const char *algo, char **out)
{
#ifdef HAVE_OPENSSL
    const EVP_MD *md = EVP_get_digestbyname(algo);
    unsigned char dg[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    size_t chunk = 1024 * 1024;
    uint8_t *buf;
    int ret = 0;

    if (!md) {
        return -ENOTSUP;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, md, NULL)) {
        EVP_MD_CTX_free(ctx);
        return -ENOMEM;
    }
    buf = xmalloc(chunk);
    for (uint64_t done = 0; done < m->size && ret >= 0; done += chunk) {
        uint64_t n = MIN(chunk, m->size - done);
        ret = blk_pread(f, m->offset + done, n, buf, 0);
        if (ret >= 0 && !EVP_DigestUpdate(ctx, buf, n)) {
            ret = -EIO;
        }
    }
    if (ret >= 0 && !EVP_DigestFinal_ex(ctx, dg, &dlen)) {
        ret = -EIO;
    }
    EVP_MD_CTX_free(ctx);
    free(buf);
    if (ret < 0) {
        return ret;
    }
    char *hex = xmalloc(2 * dlen + 1);
    for (unsigned i = 0; i < dlen; i++) {
        snprintf(hex + 2 * i, 3, "%02x", dg[i]);
    }
    *out = hex;
    return 0;
#else
    (void)f; (void)m; (void)algo; (void)out;
    return -ENOTSUP;
#endif
}

/* Check every digest the manifest lists for the members we use (the OVF,
 * the chosen disk) and any other member it names; *bad says if one did
 * not match. */
static int verify_manifest(struct blk_node *f, struct ova_state *s,
                           const char *mf, bool *bad,
                           struct strata_error **errp)
{
    int ret = 0;

    *bad = false;
    for (const char *p = mf; *p && ret >= 0; ) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char *line = strndup(p, len), *lp, *rp, *eq;
        p += len + (eol ? 1 : 0);
        lp = strchr(line, '(');
        rp = strrchr(line, ')');
        eq = rp ? strchr(rp, '=') : NULL;
        if (!lp || !rp || rp < lp || !eq) {
            free(line);
            continue; /* blank or foreign lines */
        }
        char *algo = line, *name = lp + 1, *want = eq + 1, *got = NULL;
        *lp = 0;
        *rp = 0;
        while (*algo == ' ') {
            algo++;
        }
        for (char *t = lp - 1; t >= algo && *t == ' '; t--) {
            *t = 0;
        }
        while (*want == ' ') {
            want++;
        }
        want[strcspn(want, " \r\t")] = 0;
        int mi = find_member(s, name);
        if (mi < 0) {
            ret = error_setg(errp, -ENOENT, "The manifest '%s' lists '%s', "
                             "which the archive lacks", s->mf, name);
        } else {
            ret = digest_member(f, &s->m[mi], algo, &got);
            if (ret == -ENOTSUP) {
                error_setg(errp, ret, "Unsupported digest '%s' in the "
                           "manifest '%s'", algo, s->mf);
            } else if (ret < 0) {
                error_setg_errno(errp, ret, "Could not read '%s'", name);
            } else if (strcasecmp(got, want) != 0) {
                *bad = true;
                ret = error_setg(errp, -EINVAL, "%s checksum mismatch for "
                                 "'%s': the manifest '%s' says %s, the data "
                                 "has %s", algo, name, s->mf, want, got);
            }
        }
        free(got);
        free(line);
    }
    return ret;
}

/* ---- the driver ---- */

/* A tar whose first member is an OVF descriptor. */
static int ova_probe(const uint8_t *buf, size_t len, const char *filename)
{
    size_t n;

    (void)filename;
    if (len < TAR_BLOCK || memcmp(buf + 257, "ustar", 5) != 0 ||
        !tar_checksum_ok(buf)) {
        return 0;
    }
    n = strnlen((const char *)buf, 100);
    if (buf[156] == 'x' || buf[156] == 'L') {
        return 50; /* a long first name: a tar, likely an OVA */
    }
    return n > 4 && strncasecmp((const char *)buf + n - 4, ".ovf", 4) == 0 ?
           100 : 0;
}

static void ova_close(struct blk_node *bs)
{
    struct ova_state *s = bs->opaque;

    blk_close(s->disk);
    s->disk = NULL;
    for (int i = 0; i < s->nm; i++) {
        free(s->m[i].name);
    }
    for (int i = 0; i < s->nd; i++) {
        free(s->d[i].id);
        free(s->d[i].file);
    }
    free(s->m);
    free(s->d);
    free(s->ovf);
    free(s->mf);
}

/* disk=N or disk=NAME (member name or OVF disk id). */
static int choose_disk(struct ova_state *s, const char *sel,
                       struct strata_error **errp)
{
    uint64_t n;

    if (!sel) {
        s->chosen = 0;
        return 0;
    }
    if (parse_uint(sel, &n) == 0) {
        if (n >= (uint64_t)s->nd) {
            return error_setg(errp, -ENOENT, "The archive has %d disk%s, "
                              "there is no disk %s", s->nd,
                              s->nd == 1 ? "" : "s", sel);
        }
        s->chosen = (int)n;
        return 0;
    }
    for (int i = 0; i < s->nd; i++) {
        if (strcmp(s->d[i].file, sel) == 0 ||
            (s->d[i].id && strcmp(s->d[i].id, sel) == 0)) {
            s->chosen = i;
            return 0;
        }
    }
    return error_setg(errp, -ENOENT, "The archive has no disk '%s'", sel);
}

/* Open the chosen member as a window of the archive, format probed. */
static int open_disk(struct blk_node *bs, struct ova_state *s,
                     struct strata_error **errp)
{
    const struct ova_member *m = &s->m[s->d[s->chosen].member];
    struct blk_opts *o = opts_new();
    struct strata_error *err = NULL;
    int ret;

    opts_set(o, "file.driver", "raw");
    opts_set_uint(o, "file.offset", m->offset);
    opts_set_uint(o, "file.size", m->size);
    opts_set(o, "file.file.driver", "file");
    opts_set(o, "file.file.filename", blk_protocol_node(bs)->filename);
    ret = blk_open(&s->disk, NULL, o,
                   bs->flags & (BLK_O_NOCACHE | BLK_O_FORCE_SHARE |
                                BLK_O_NO_LOCK | BLK_O_NO_BACKING),
                   &err);
    opts_free(o);
    if (ret < 0) {
        error_setg(errp, ret, "Could not open disk '%s' of '%s': %s",
                   m->name, bs->filename, error_msg(err, ret));
        strata_error_free(err);
    }
    return ret;
}

static int ova_open(struct blk_node *bs, struct blk_opts *opts,
                    struct strata_error **errp)
{
    struct ova_state *s = bs->opaque;
    const char *verify = opts_get(opts, "verify");
    const char *sel = opts_get(opts, "disk");
    char *ovf = NULL, *mf = NULL;
    bool bad = false;
    int ret;

    if (!bs->read_only) {
        return error_setg(errp, -EPERM, "OVA archives can only be opened "
                          "read-only (convert the disk to write it)");
    }
    verify = verify ? verify : "on";
    if (strcmp(verify, "on") && strcmp(verify, "warn") &&
        strcmp(verify, "off")) {
        return error_setg(errp, -EINVAL, "Parameter 'verify' expects on, "
                          "warn or off");
    }
    ret = tar_scan(bs->file, s, errp);
    for (int i = 0; ret >= 0 && i < s->nm; i++) {
        size_t n = strlen(s->m[i].name);
        if (!s->ovf && n > 4 && !strcasecmp(s->m[i].name + n - 4, ".ovf")) {
            s->ovf = xstrdup(s->m[i].name);
            ret = read_blob(bs->file, s->m[i].offset, s->m[i].size, &ovf);
        } else if (!s->mf && n > 3 &&
                   !strcasecmp(s->m[i].name + n - 3, ".mf")) {
            s->mf = xstrdup(s->m[i].name);
            ret = read_blob(bs->file, s->m[i].offset, s->m[i].size, &mf);
        }
        if (ret < 0) {
            error_setg_errno(errp, ret, "Could not read '%s' from '%s'",
                             s->m[i].name, bs->filename);
        }
    }
    if (ret >= 0) {
        ret = list_disks(s, ovf, errp);
    }
    if (ret >= 0) {
        ret = choose_disk(s, sel, errp);
    }
    if (ret >= 0 && strcmp(verify, "off") != 0 && mf) {
        struct strata_error *err = NULL;
        ret = verify_manifest(bs->file, s, mf, &bad, &err);
        if (ret < 0 && bad && strcmp(verify, "warn") == 0) {
            ret = 0;
            strata_error_free(err);
        } else {
            error_propagate(errp, err);
        }
    }
    s->verify_state = !strcmp(verify, "off") ? "off" : !mf ? "no manifest" :
                      bad ? "mismatch" : "ok";
    if (ret >= 0) {
        ret = open_disk(bs, s, errp);
    }
    free(ovf);
    free(mf);
    if (ret < 0) {
        ova_close(bs);
        return ret;
    }
    bs->size = s->disk->size;
    bs->limits.request_alignment = s->disk->limits.request_alignment;
    bs->limits.max_transfer = s->disk->limits.max_transfer;
    return 0;
}

static int coroutine_fn ova_co_preadv(struct blk_node *bs, uint64_t offset,
                                      uint64_t bytes, struct blk_iov *qiov,
                                      unsigned flags)
{
    struct ova_state *s = bs->opaque;
    return blk_co_preadv(s->disk, offset, bytes, qiov, flags);
}

static int coroutine_fn ova_co_block_status(struct blk_node *bs,
                                            uint64_t offset, uint64_t bytes,
                                            uint64_t *pnum, uint64_t *map,
                                            struct blk_node **file)
{
    struct ova_state *s = bs->opaque;
    int ret = blk_co_block_status(s->disk, offset, bytes, pnum, map, file);

    if (ret >= 0 && *pnum == 0) {
        return -EIO;
    }
    return ret < 0 ? ret : ret & ~BLK_STATUS_ALLOCATED;
}

/* The disks, the chosen one and the state of the manifest check. */
static int ova_get_info(struct blk_node *bs, struct blk_info *info)
{
    struct ova_state *s = bs->opaque;
    struct json *data = json_new_object(), *list = json_new_array();
    struct blk_info inner;

    if (blk_get_info(s->disk, &inner) == 0) {
        info->cluster_size = inner.cluster_size;
    }
    blk_info_release(&inner);
    json_set_str(data, "ovf", s->ovf ? s->ovf : "");
    json_set_str(data, "manifest", s->mf ? s->mf : "");
    json_set_str(data, "checksums", s->verify_state);
    json_set_int(data, "disk", s->chosen);
    json_set_str(data, "disk-format", s->disk->drv->name);
    for (int i = 0; i < s->nd; i++) {
        struct json *d = json_new_object();
        json_set_int(d, "index", i);
        json_set_str(d, "file", s->d[i].file);
        if (s->d[i].id) {
            json_set_str(d, "id", s->d[i].id);
        }
        json_set_uint(d, "size", s->m[s->d[i].member].size);
        json_append(list, d);
    }
    json_set(data, "disks", list);
    info->format_specific = json_new_object();
    json_set_str(info->format_specific, "type", "ova");
    json_set(info->format_specific, "data", data);
    return 0;
}

static int64_t ova_allocated_size(struct blk_node *bs)
{
    return blk_allocated_size(bs->file);
}

const struct blk_driver blk_drv_ova = {
    .name = "ova",
    .kind = BLK_KIND_FORMAT,
    .state_size = sizeof(struct ova_state),
    .probe = ova_probe,
    .open = ova_open,
    .close = ova_close,
    .preadv = ova_co_preadv,
    .block_status = ova_co_block_status,
    .allocated_size = ova_allocated_size,
    .get_info = ova_get_info,
};
