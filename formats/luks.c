/* The luks format: a LUKS1 volume as QEMU's `-f luks` reads and writes it
 * (the encrypted raw volumes of libvirt storage pools).  The file starts
 * with the LUKS header and its key material; the guest's data follows at
 * the payload offset, encrypted sector by sector with the IV numbered from
 * the start of the payload.  Opening needs key-secret, except for `info`
 * (BLK_O_NO_IO), which shows the header without the key. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "crypto.h"
#include "drivers.h"
#include "iov.h"
#include "json.h"
#include "threadpool.h"
#include "util.h"

#define LUKS_MAGIC "LUKS\xba\xbe"
#define LUKS_MAGIC_LEN 6
#define LUKS_BOUNCE_MAX (1024 * 1024) /* bytes ciphered per step */
#define LUKS_HDR_STEP 4096             /* header written in blocks */

struct luks_state {
    struct crypto_block *crypto;
    uint64_t payload; /* bytes: where the guest's data starts */
};

static const struct blk_opt_desc luks_create_opts[] = {
    {"size", OPT_SIZE, "Virtual disk size", NULL},
    {"key-secret", OPT_STRING,
     "ID of the secret that provides the keyslot passphrase", NULL},
    {"cipher-alg", OPT_STRING, "Name of encryption cipher algorithm", NULL},
    {"cipher-mode", OPT_STRING, "Name of encryption cipher mode", NULL},
    {"ivgen-alg", OPT_STRING, "Name of IV generator algorithm", NULL},
    {"ivgen-hash-alg", OPT_STRING, "Name of IV generator hash algorithm",
     NULL},
    {"hash-alg", OPT_STRING, "Name of encryption hash algorithm", NULL},
    {"iter-time", OPT_NUMBER, "Time to spend in PBKDF in milliseconds", NULL},
    {NULL, 0, NULL, NULL},
};

static int luks_probe(const uint8_t *buf, size_t len, const char *filename)
{
    return len >= LUKS_MAGIC_LEN && !memcmp(buf, LUKS_MAGIC, LUKS_MAGIC_LEN)
               ? 100
               : 0;
}

/* The header is read from the start of the file. */
static int read_header(void *opaque, uint64_t offset, void *buf, size_t len)
{
    struct blk_node *file = opaque;

    if (offset > file->size || len > file->size - offset) {
        return -EINVAL;
    }
    return blk_pread(file, offset, len, buf, 0);
}

/* Key slot changes write the header area only. */
static int write_header(void *opaque, uint64_t offset, const void *buf,
                        size_t len)
{
    struct blk_node *file = opaque;

    return blk_pwrite(file, offset, len, buf, 0);
}

static void luks_close(struct blk_node *bs)
{
    struct luks_state *s = bs->opaque;

    crypto_free(s->crypto);
    s->crypto = NULL;
}

static int luks_open(struct blk_node *bs, struct blk_opts *opts,
                     struct strata_error **errp)
{
    struct luks_state *s = bs->opaque;
    const char *secret;
    int ret;

    ret = crypto_open_secret(opts, "key-secret", bs->flags & BLK_O_NO_IO,
                             bs->read_only, &secret, errp);
    if (ret < 0) {
        return ret;
    }
    ret = crypto_luks_open(&s->crypto, read_header, bs->file, secret, errp);
    if (ret < 0) {
        return ret;
    }
    s->payload = crypto_payload_offset(s->crypto);
    if (s->payload > bs->file->size) {
        /* close() is not called for a failed open */
        luks_close(bs);
        return error_setg(errp, -EINVAL, "LUKS payload is overlapping with "
                          "the header");
    }
    bs->size = bs->file->size - s->payload;
    bs->limits.request_alignment = CRYPTO_SECTOR_SIZE;
    return 0;
}

struct luks_job {
    struct crypto_block *b;
    uint64_t offset;
    uint8_t *buf;
    size_t len;
    bool encrypt;
};

static int luks_job_fn(void *opaque)
{
    struct luks_job *j = opaque;

    return j->encrypt ? crypto_encrypt(j->b, j->offset, j->buf, j->len)
                      : crypto_decrypt(j->b, j->offset, j->buf, j->len);
}

/* Small pieces are ciphered on the loop; a worker would cost more. */
static int coroutine_fn luks_cipher(struct luks_job *j)
{
    return j->len <= 4096 ? luks_job_fn(j) : threadpool_run(luks_job_fn, j);
}

/* Through a bounce buffer in steps: read then decrypt, or encrypt then
 * write. */
static int coroutine_fn luks_rw(struct blk_node *bs, uint64_t offset,
                                uint64_t bytes, struct blk_iov *qiov,
                                unsigned flags, bool write)
{
    struct luks_state *s = bs->opaque;
    size_t step = MIN(bytes, (uint64_t)LUKS_BOUNCE_MAX);
    uint8_t *buf = blk_alloc_buf(bs->file, step);
    int ret = 0;

    for (uint64_t done = 0; done < bytes && ret >= 0; done += step) {
        struct luks_job j = {s->crypto, offset + done, buf, 0, write};
        uint64_t host = s->payload + offset + done;

        step = MIN(step, bytes - done);
        j.len = step;
        if (write) {
            blk_iov_to_buf(qiov, done, buf, step);
            ret = luks_cipher(&j) < 0 ? -EIO : 0;
            if (ret >= 0) {
                ret = blk_co_pwrite(bs->file, host, step, buf,
                                    flags & BLK_REQ_FUA);
            }
        } else {
            ret = blk_co_pread(bs->file, host, step, buf, 0);
            if (ret >= 0) {
                ret = luks_cipher(&j) < 0 ? -EIO : 0;
            }
            if (ret >= 0) {
                blk_iov_from_buf(qiov, done, buf, step);
            }
        }
    }
    free(buf);
    return ret;
}

static int coroutine_fn luks_preadv(struct blk_node *bs, uint64_t offset,
                                    uint64_t bytes, struct blk_iov *qiov,
                                    unsigned flags)
{
    return luks_rw(bs, offset, bytes, qiov, flags, false);
}

static int coroutine_fn luks_pwritev(struct blk_node *bs, uint64_t offset,
                                     uint64_t bytes, struct blk_iov *qiov,
                                     unsigned flags)
{
    return luks_rw(bs, offset, bytes, qiov, flags, true);
}

/* Everything is data, at no offset a reader could use (it is ciphered):
 * QEMU's crypto driver reports the same. */
static int coroutine_fn luks_block_status(struct blk_node *bs,
                                          uint64_t offset, uint64_t bytes,
                                          uint64_t *pnum, uint64_t *map,
                                          struct blk_node **file)
{
    *pnum = bytes;
    return BLK_STATUS_DATA | BLK_STATUS_ALLOCATED;
}

static int coroutine_fn luks_truncate(struct blk_node *bs, uint64_t size,
                                      bool exact, enum blk_prealloc prealloc,
                                      struct strata_error **errp)
{
    struct luks_state *s = bs->opaque;
    int ret;

    if (size > UINT64_MAX - s->payload) {
        return error_setg(errp, -EFBIG, "The requested file size is too "
                          "large");
    }
    ret = blk_co_truncate(bs->file, s->payload + size, exact, prealloc, errp);
    if (ret >= 0) {
        bs->size = size;
    }
    return ret;
}

static int luks_get_info(struct blk_node *bs, struct blk_info *info)
{
    struct luks_state *s = bs->opaque;
    struct crypto_luks_info in;
    struct json *fs;

    info->encrypted = true;
    if (!crypto_get_luks_info(s->crypto, &in)) {
        return 0;
    }
    fs = json_new_object();
    json_set_str(fs, "type", "luks");
    json_set(fs, "data", crypto_luks_info_json(&in, false));
    info->format_specific = fs;
    return 0;
}

/* As QEMU: the header and key material, then the file grown to the
 * payload plus the virtual size (sparse). */
static int luks_create(const char *filename, struct blk_opts *opts,
                       struct strata_error **errp)
{
    struct crypto_luks_params p = {0};
    struct crypto_block *b = NULL;
    struct blk_node *file = NULL;
    const char *secret;
    struct blk_opts *fopts;
    uint8_t *hdr = NULL;
    size_t hdr_len = 0;
    uint64_t size;
    int ret;

    if ((ret = opts_get_size(opts, "size", 0, &size, errp)) < 0 ||
        (ret = crypto_parse_create_opts(opts, "", &p, errp)) < 0 ||
        (ret = crypto_need_secret(opts, "key-secret", &secret, errp)) < 0) {
        return ret;
    }
    size = ROUND_UP(size, CRYPTO_SECTOR_SIZE);
    ret = crypto_luks_create(&b, &p, secret, &hdr, &hdr_len, errp);
    if (ret < 0) {
        return ret;
    }
    fopts = opts_new();
    opts_set(fopts, "size", "0");
    ret = blk_create_file(filename, fopts, errp);
    opts_free(fopts);
    if (ret >= 0) {
        ret = blk_open_created_file(&file, filename, 0, errp);
    }
    /* the key material of inactive slots is zeroes: left as holes, as
     * QEMU writes only the header and the active slot */
    for (size_t off = 0; ret >= 0 && off < hdr_len; off += LUKS_HDR_STEP) {
        size_t n = MIN((size_t)LUKS_HDR_STEP, hdr_len - off);
        if (!buffer_is_zero(hdr + off, n)) {
            ret = blk_pwrite(file, off, n, hdr + off, 0);
            if (ret < 0) {
                error_setg_errno(errp, ret, "Could not write the LUKS "
                                 "header");
            }
        }
    }
    if (ret >= 0) {
        uint64_t payload = crypto_payload_offset(b);
        ret = size > UINT64_MAX - payload
                  ? error_setg(errp, -EFBIG, "The requested file size is "
                               "too large")
                  : blk_truncate(file, payload + size, false,
                                 BLK_PREALLOC_OFF, errp);
    }
    if (ret >= 0) {
        ret = blk_flush(file);
        if (ret < 0) {
            error_setg_errno(errp, ret, "Could not flush '%s'", filename);
        }
    }
    blk_close(file);
    crypto_free(b);
    free(hdr);
    return ret;
}

/* amend -o state=...,new-secret=...: add or erase key slots, as QEMU's
 * luks driver (the image is open with a key that unlocks it). */
static int luks_amend(struct blk_node *bs, struct blk_opts *opts, bool force,
                      blk_progress_fn *progress, void *opaque,
                      struct strata_error **errp)
{
    struct luks_state *s = bs->opaque;
    struct crypto_luks_amend a;
    int ret = crypto_parse_amend_opts(opts, "", &a, errp);

    if (ret < 0) {
        return ret;
    }
    ret = crypto_luks_amend(s->crypto, &a, force, read_header, write_header,
                            bs->file, errp);
    return ret < 0 ? ret : blk_flush(bs->file);
}

/* As QEMU's: the payload offset a header with these algorithms gets,
 * plus the virtual size (the input's, or --size); key-secret must name a
 * defined secret, as for create. */
static int luks_measure(struct blk_opts *opts, struct blk_node *in,
                        struct blk_measure *out, struct strata_error **errp)
{
    struct crypto_luks_params p = {0};
    const char *secret;
    uint64_t size, payload;
    int ret;

    if ((ret = crypto_parse_create_opts(opts, "", &p, errp)) < 0 ||
        (ret = opts_get_size(opts, "size", 0, &size, errp)) < 0) {
        return ret;
    }
    ret = crypto_luks_payload_size(&p, &payload, errp);
    if (ret < 0) {
        return ret;
    }
    /* looked up (and unused), as QEMU does */
    ret = crypto_need_secret(opts, "key-secret", &secret, errp);
    if (ret < 0) {
        return ret;
    }
    if (in) {
        size = in->size;
    }
    out->required = out->fully_allocated = payload + size;
    return 0;
}

const struct blk_driver blk_drv_luks = {
    .name = "luks",
    .kind = BLK_KIND_FORMAT,
    .state_size = sizeof(struct luks_state),
    .probe = luks_probe,
    .open = luks_open,
    .close = luks_close,
    .create = luks_create,
    .create_opts = luks_create_opts,
    .preadv = luks_preadv,
    .pwritev = luks_pwritev,
    .block_status = luks_block_status,
    .truncate = luks_truncate,
    .get_info = luks_get_info,
    .measure = luks_measure,
    .amend = luks_amend,
    .supported_zero_flags = 0,
};
