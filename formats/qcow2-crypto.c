/* qcow2 encryption: LUKS (crypt_method 2, its header in the clusters the
 * "full disk encryption header" extension names) and legacy AES
 * (crypt_method 1, read only).  As QEMU, LUKS data sectors take their IV
 * from the host offset, AES ones from the guest offset; both in 512-byte
 * sectors.  The ciphers themselves are in block/crypto-luks.c. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "json.h"
#include "options.h"
#include "qcow2.h"
#include "threadpool.h"
#include "util.h"

#define QCOW2_CRYPT_AES 1
#define QCOW2_CRYPT_LUKS 2

/* ---- open ---- */

struct hdr_read {
    struct blk_node *bs;
    uint64_t offset, length;
};

/* The LUKS header lives in the clusters of the extension. */
static int coroutine_fn read_luks_header(void *opaque, uint64_t offset,
                                         void *buf, size_t len)
{
    struct hdr_read *r = opaque;

    if (offset > r->length || len > r->length - offset) {
        return -EINVAL;
    }
    return blk_co_pread(r->bs->file, r->offset + offset, len, buf, 0);
}

/* The extension's (offset, length), checked against the file. */
static int find_header_ext(struct blk_node *bs, struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    struct qcow2_unknown_ext *u;

    for (u = s->unknown_exts; u; u = u->next) {
        if (u->magic == QCOW2_EXT_CRYPTO_HEADER) {
            break;
        }
    }
    if (!u) {
        return error_setg(errp, -EINVAL, "Missing CRYPTO header for crypt "
                          "method 2");
    }
    if (u->len != 16) {
        return error_setg(errp, -EINVAL, "CRYPTO header extension size %u, "
                          "but expected size 16", u->len);
    }
    s->crypto_header_offset = qcow2_ld64(u->data);
    s->crypto_header_length = qcow2_ld64(u->data + 8);
    if (qcow2_offset_into_cluster(s, s->crypto_header_offset) ||
        s->crypto_header_offset == 0) {
        return error_setg(errp, -EINVAL, "Invalid encryption header offset");
    }
    if (s->crypto_header_length > bs->file->size ||
        s->crypto_header_offset > bs->file->size - s->crypto_header_length) {
        return error_setg(errp, -EINVAL, "Invalid encryption header length");
    }
    return 0;
}

int coroutine_fn qcow2_crypto_open(struct blk_node *bs, struct blk_opts *opts,
                                   struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    const char *fmt = opts_get(opts, "encrypt.format");
    const char *secret;
    int ret;

    opts_get(opts, "encrypt.key-secret");
    if (!s->crypt_method) {
        if (fmt) {
            return error_setg(errp, -EINVAL, "No encryption in image header, "
                              "but options specified format '%s'", fmt);
        }
        return 0; /* a key-secret alone is ignored, as QEMU */
    }
    if (fmt && strcmp(fmt, s->crypt_method == QCOW2_CRYPT_AES ? "aes"
                                                               : "luks")) {
        return error_setg(errp, -EINVAL, "Header reported '%s' encryption "
                          "format but options specify '%s'",
                          s->crypt_method == QCOW2_CRYPT_AES ? "aes" : "luks",
                          fmt);
    }
    ret = crypto_open_secret(opts, "encrypt.key-secret",
                             bs->flags & BLK_O_NO_IO, bs->read_only, &secret,
                             errp);
    if (ret < 0) {
        return ret;
    }
    if (s->crypt_method == QCOW2_CRYPT_AES) {
        if (!bs->read_only) {
            return error_setg(errp, -EPERM, "Use of AES-CBC encrypted qcow2 "
                              "images is no longer supported for writing; "
                              "open it read-only and use 'convert' to "
                              "convert it to an alternative supported "
                              "format, such as unencrypted qcow2, or qcow2 "
                              "with the LUKS format instead");
        }
        return crypto_qcow_aes_open(&s->crypto, secret, errp);
    }
    ret = find_header_ext(bs, errp);
    if (ret < 0) {
        return ret;
    }
    struct hdr_read r = {bs, s->crypto_header_offset, s->crypto_header_length};
    return crypto_luks_open(&s->crypto, read_luks_header, &r, secret, errp);
}

void qcow2_crypto_free(struct qcow2_state *s)
{
    crypto_free(s->crypto);
    s->crypto = NULL;
}

void qcow2_crypto_refresh_limits(struct blk_node *bs)
{
    struct qcow2_state *s = bs->opaque;

    if (s->crypto) {
        bs->limits.request_alignment = CRYPTO_SECTOR_SIZE;
    }
}

/* The "encrypt" member of qcow2's format-specific info, as QEMU's
 * QCryptoBlockInfo (keys in QAPI order). */
void qcow2_crypto_get_info(struct blk_node *bs, struct json *data)
{
    struct qcow2_state *s = bs->opaque;
    struct crypto_luks_info in;
    struct json *e;

    if (!s->crypto) {
        return;
    }
    if (!crypto_get_luks_info(s->crypto, &in)) {
        e = json_new_object();
        json_set_str(e, "format", "aes");
    } else {
        e = crypto_luks_info_json(&in, true);
    }
    json_set(data, "encrypt", e);
}

/* ---- data ---- */

struct crypt_job {
    struct crypto_block *b;
    uint64_t offset;
    uint8_t *buf;
    size_t len;
    bool encrypt;
};

static int crypt_fn(void *opaque)
{
    struct crypt_job *j = opaque;

    return j->encrypt ? crypto_encrypt(j->b, j->offset, j->buf, j->len)
                      : crypto_decrypt(j->b, j->offset, j->buf, j->len);
}

/* Small requests stay on the loop; a worker would cost more than AES. */
static int coroutine_fn run_crypt(struct crypt_job *j)
{
    if (j->len <= 4096) {
        return crypt_fn(j);
    }
    return threadpool_run(crypt_fn, j);
}

/* The sector number base: host offset (LUKS) or guest offset (AES). */
static uint64_t iv_offset(struct qcow2_state *s, uint64_t host,
                          uint64_t guest)
{
    return s->crypt_method == QCOW2_CRYPT_AES ? guest : host;
}

int coroutine_fn qcow2_crypto_decrypt(struct blk_node *bs, uint64_t host,
                                      uint64_t guest, uint64_t bytes,
                                      struct blk_iov *qiov)
{
    struct qcow2_state *s = bs->opaque;
    struct crypt_job j = {s->crypto, iv_offset(s, host, guest), NULL, bytes,
                          false};
    int ret;

    if (!s->crypto) {
        return -EIO;
    }
    if ((j.offset | bytes) & (CRYPTO_SECTOR_SIZE - 1)) {
        return -EIO; /* request_alignment keeps this from happening */
    }
    j.buf = xmemalign(4096, bytes);
    blk_iov_to_buf(qiov, 0, j.buf, bytes);
    ret = run_crypt(&j);
    if (ret >= 0) {
        blk_iov_from_buf(qiov, 0, j.buf, bytes);
    }
    free(j.buf);
    return ret < 0 ? -EIO : 0;
}

int coroutine_fn qcow2_crypto_pwritev(struct blk_node *bs,
                                      struct blk_node *child, uint64_t host,
                                      uint64_t guest, uint64_t bytes,
                                      struct blk_iov *qiov)
{
    struct qcow2_state *s = bs->opaque;
    struct crypt_job j = {s->crypto, iv_offset(s, host, guest), NULL, bytes,
                          true};
    struct blk_iov q;
    int ret;

    if (!s->crypto) {
        return blk_co_pwritev(child, host, bytes, qiov, 0);
    }
    if (s->crypt_method != QCOW2_CRYPT_LUKS) {
        return -EPERM; /* refused at open already */
    }
    if ((j.offset | bytes) & (CRYPTO_SECTOR_SIZE - 1)) {
        return -EIO;
    }
    j.buf = xmemalign(4096, bytes);
    blk_iov_to_buf(qiov, 0, j.buf, bytes);
    ret = run_crypt(&j);
    if (ret >= 0) {
        blk_iov_init_buf(&q, j.buf, bytes);
        ret = blk_co_pwritev(child, host, bytes, &q, 0);
    } else {
        ret = -EIO;
    }
    free(j.buf);
    return ret;
}

/* ---- create ---- */

int qcow2_crypto_create_parse(struct blk_opts *opts, bool encryption,
                              const char *efmt,
                              struct qcow2_crypto_create *c,
                              struct strata_error **errp)
{
    int ret;

    opts_get(opts, "encrypt.key-secret");
    memset(c, 0, sizeof(*c));
    if (encryption && efmt) {
        return error_setg(errp, -EINVAL, "Options \"encryption\" and "
                          "\"encrypt.format\" are mutually exclusive");
    }
    if (!encryption && !efmt) {
        return 0;
    }
    if (encryption || strcmp(efmt, "aes") == 0) {
        return error_setg(errp, -ENOTSUP, "Creating AES-CBC encrypted "
                          "qcow2 images is not supported (they can only be "
                          "read); use encrypt.format=luks instead");
    }
    if (strcmp(efmt, "luks") != 0) {
        return error_setg(errp, -EINVAL, "Invalid parameter '%s'", efmt);
    }
    ret = crypto_parse_create_opts(opts, "encrypt.", &c->p, errp);
    if (ret < 0) {
        return ret;
    }
    ret = crypto_need_secret(opts, "encrypt.key-secret", &c->secret, errp);
    if (ret < 0) {
        return ret;
    }
    c->luks = true;
    return 0;
}

/* As QEMU's qcow2_set_up_encryption: the header goes into newly allocated
 * clusters (zero-padded), then the extension and crypt_method 2 into the
 * image header.  Lock held. */
int coroutine_fn qcow2_crypto_create(struct blk_node *bs,
                                     const struct qcow2_crypto_create *c,
                                     struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    struct qcow2_unknown_ext *u, **tail;
    struct crypto_block *b;
    uint8_t *hdr, *buf;
    size_t len, clen;
    int64_t off;
    int ret;

    if (!c->luks) {
        return 0;
    }
    ret = crypto_luks_create(&b, &c->p, c->secret, &hdr, &len, errp);
    if (ret < 0) {
        return ret;
    }
    clen = ROUND_UP(len, s->cluster_size);
    off = qcow2_alloc_clusters(bs, clen);
    if (off < 0) {
        ret = error_setg_errno(errp, (int)off, "Could not allocate clusters "
                               "for the encryption header");
        goto out;
    }
    buf = xzalloc(clen);
    memcpy(buf, hdr, len);
    ret = blk_co_pwrite(bs->file, (uint64_t)off, clen, buf, 0);
    free(buf);
    if (ret < 0) {
        error_setg_errno(errp, ret, "Could not write encryption header");
        goto out;
    }
    u = xzalloc(sizeof(*u));
    u->magic = QCOW2_EXT_CRYPTO_HEADER;
    u->len = 16;
    u->data = xmalloc(16);
    qcow2_st64(u->data, (uint64_t)off);
    qcow2_st64(u->data + 8, len);
    for (tail = &s->unknown_exts; *tail; tail = &(*tail)->next) {
    }
    *tail = u;
    s->crypt_method = QCOW2_CRYPT_LUKS;
    s->crypto_header_offset = (uint64_t)off;
    s->crypto_header_length = len;
    ret = qcow2_update_header(bs);
    if (ret < 0) {
        error_setg_errno(errp, ret, "Could not write qcow2 header");
    }
out:
    free(hdr);
    crypto_free(b);
    return ret;
}

/* ---- amend: LUKS key slots ---- */

/* The header area through blk_co_pwrite, each write flushed so that the
 * key material is on disk before the header that points at it. */
static int coroutine_fn write_luks_header(void *opaque, uint64_t offset,
                                          const void *buf, size_t len)
{
    struct hdr_read *r = opaque;
    int ret;

    if (offset > r->length || len > r->length - offset) {
        return -EINVAL;
    }
    ret = blk_co_pwrite(r->bs->file, r->offset + offset, len, buf, 0);
    return ret < 0 ? ret : blk_co_flush(r->bs->file);
}

/* As QEMU's qcow2_amend_options: with apply false only whether the image
 * has LUKS encryption to amend (its loop over the options), 1 when there
 * are encrypt.* options (an update to count and apply), else 0; with
 * apply true the keyslot change itself, the options parsed only then. */
int coroutine_fn qcow2_crypto_amend(struct blk_node *bs,
                                    struct blk_opts *opts, bool force,
                                    bool apply, struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    struct crypto_luks_amend a;
    bool any = false;
    int ret;

    for (int i = 0; i < opts->n; i++) {
        if (strncmp(opts->v[i].key, "encrypt.", 8) == 0) {
            opts->v[i].used = true;
            any = true;
        }
    }
    if (!any) {
        return 0;
    }
    if (!apply) {
        if (!s->crypto) {
            return error_setg(errp, -EINVAL, "Can't amend encryption options "
                              "- encryption not present");
        }
        if (s->crypt_method != QCOW2_CRYPT_LUKS) {
            return error_setg(errp, -ENOTSUP, "Only LUKS encryption options "
                              "can be amended");
        }
        return 1;
    }
    ret = crypto_parse_amend_opts(opts, "encrypt.", &a, errp);
    if (ret < 0) {
        return ret;
    }
    struct hdr_read r = {bs, s->crypto_header_offset, s->crypto_header_length};
    return crypto_luks_amend(s->crypto, &a, force, read_luks_header,
                             write_luks_header, &r, errp);
}
