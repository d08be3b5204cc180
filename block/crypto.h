/* Block encryption as QEMU's crypto layer does it: LUKS1 headers (key
 * slots, anti-forensic split, master key digest) and the legacy qcow AES
 * scheme, with data encrypted in 512-byte sectors whose IV comes from the
 * sector number.  Every cipher, hash and PBKDF2 comes from OpenSSL's
 * libcrypto (EVP); without HAVE_OPENSSL opening or creating fails with
 * -ENOTSUP.  Used by formats that embed a LUKS header (qcow2). */
#ifndef BLOCK_CRYPTO_H
#define BLOCK_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct blk_opts;
struct json;

#define CRYPTO_SECTOR_SIZE 512

struct crypto_block;

/* Reads `len` bytes of the header area at `offset` (relative to its start);
 * returns 0 or -errno. */
typedef int crypto_read_fn(void *opaque, uint64_t offset, void *buf,
                           size_t len);

/* LUKS creation parameters; NULL / 0 pick QEMU's defaults (aes-256, xts,
 * plain64, sha256, 2000 ms). */
struct crypto_luks_params {
    const char *cipher_alg;     /* aes-128, aes-192, aes-256 */
    const char *cipher_mode;    /* xts, cbc, ecb */
    const char *ivgen_alg;      /* plain, plain64, essiv */
    const char *ivgen_hash_alg; /* essiv only */
    const char *hash_alg;       /* sha1, sha224, sha256, sha384, sha512 */
    uint64_t iter_time;         /* milliseconds */
};

/* What `info` shows of a LUKS header (QEMU's QCryptoBlockInfoLUKS). */
struct crypto_luks_info {
    char cipher_alg[16], cipher_mode[8], ivgen_alg[8], ivgen_hash_alg[8];
    char hash_alg[8];
    char uuid[40];
    uint64_t payload_offset;    /* bytes */
    uint32_t master_key_iters;
    struct {
        bool active;
        uint32_t iters, stripes;
        uint64_t key_offset;    /* bytes */
    } slots[8];
};

/* Parse a LUKS1 header read through rd and unlock a key slot with the
 * password ("Invalid password, cannot unlock any keyslot" if none opens).
 * A NULL password only parses the header (crypto_encrypt/decrypt then fail
 * with -EPERM). */
int crypto_luks_open(struct crypto_block **out, crypto_read_fn *rd,
                     void *opaque, const char *password,
                     struct strata_error **errp);

/* Make a new master key and a header with key slot 0 for the password.
 * *hdr (malloc'd, *hdr_len bytes: header plus all key material, a whole
 * number of sectors) is what to store. */
int crypto_luks_create(struct crypto_block **out,
                       const struct crypto_luks_params *p,
                       const char *password, uint8_t **hdr, size_t *hdr_len,
                       struct strata_error **errp);

/* Writes `len` bytes at `offset` of the header area; returns 0 or -errno.
 * Should make the data durable before it returns: keyslot changes rely on
 * the order of their writes. */
typedef int crypto_write_fn(void *opaque, uint64_t offset, const void *buf,
                            size_t len);

/* A keyslot change (QEMU's QCryptoBlockAmendOptionsLUKS).  Secrets are ids
 * looked up with crypto_secret_lookup(); NULL: not given. */
struct crypto_luks_amend {
    bool active;                /* state=active adds, inactive erases */
    const char *new_secret;     /* password of the slot to add */
    const char *old_secret;     /* erase the slots this password opens */
    bool has_keyslot;
    int64_t keyslot;            /* the slot to add or erase */
    bool has_iter_time;
    int64_t iter_time;          /* PBKDF time for an added slot, ms */
};

/* Add or erase key slots of an opened LUKS header, with QEMU's checks and
 * messages (`force` allows overwriting an active slot and erasing the last
 * one).  An added slot's key material is written before the header; an
 * erased slot's header goes first, then its material is overwritten with
 * random data.  The block's own master key is what a new slot stores. */
int crypto_luks_amend(struct crypto_block *b, const struct crypto_luks_amend *a,
                      bool force, crypto_read_fn *rd, crypto_write_fn *wr,
                      void *opaque, struct strata_error **errp);

/* The amend options of a LUKS header (QEMU's QCryptoBlockAmendOptionsLUKS:
 * state, new-secret, old-secret, keyslot, iter-time, each after prefix:
 * "encrypt." for qcow2, "" for luks), with QEMU's messages in the order
 * its visitor checks them. */
int crypto_parse_amend_opts(struct blk_opts *opts, const char *prefix,
                            struct crypto_luks_amend *a,
                            struct strata_error **errp);

/* The secret named (by id) in option `key`, which must be given: QEMU's
 * "Parameter '<key>' is required for cipher" / "No secret with id". */
int crypto_need_secret(struct blk_opts *opts, const char *key,
                       const char **secret, struct strata_error **errp);
/* The password for opening an encrypted image: as crypto_need_secret,
 * except that an open without I/O (info) takes none and checks none
 * (*secret NULL) and must be read-only. */
int crypto_open_secret(struct blk_opts *opts, const char *key, bool no_io,
                       bool read_only, const char **secret,
                       struct strata_error **errp);
/* The algorithms and iter-time of a new LUKS header from the options after
 * prefix ("encrypt." for qcow2, "" for luks); absent ones stay NULL (the
 * defaults), iter-time defaults to 2000 ms. */
int crypto_parse_create_opts(struct blk_opts *opts, const char *prefix,
                             struct crypto_luks_params *p,
                             struct strata_error **errp);

/* The payload offset (header plus the key material of 8 slots) that a
 * header made with p would have: what `measure -O luks` adds to the
 * virtual size.  Checks the algorithms as create does. */
int crypto_luks_payload_size(const struct crypto_luks_params *p,
                             uint64_t *out, struct strata_error **errp);

/* Legacy qcow AES: AES-128-CBC, key = the password's first 16 bytes padded
 * with zeroes, IV plain64.  A NULL password gives a block that only says
 * what it is (crypto_encrypt/decrypt then fail with -EPERM). */
int crypto_qcow_aes_open(struct crypto_block **out, const char *password,
                         struct strata_error **errp);

/* Encrypt/decrypt buf in place; offset and len are multiples of 512 and the
 * first sector number is offset / 512.  Thread-safe (workers may run
 * several at once).  Returns 0 or -EIO. */
int crypto_encrypt(struct crypto_block *b, uint64_t offset, void *buf,
                   size_t len);
int crypto_decrypt(struct crypto_block *b, uint64_t offset, void *buf,
                   size_t len);

/* The parsed header (LUKS only; false otherwise). */
bool crypto_get_luks_info(struct crypto_block *b,
                          struct crypto_luks_info *info);
/* The header as `info` shows it, QEMU's QCryptoBlockInfoLUKS in its key
 * order; with_format adds "format": "luks" (qcow2's "encrypt" member has
 * it, the luks format's own block does not). */
struct json *crypto_luks_info_json(const struct crypto_luks_info *in,
                                   bool with_format);
/* Payload offset in bytes (LUKS), 0 for qcow AES. */
uint64_t crypto_payload_offset(struct crypto_block *b);
void crypto_free(struct crypto_block *b);

/* Secrets (--object secret,id=...): the tools register what they parsed;
 * lookups fall back to the tools' own table when it is linked in. */
void crypto_secret_add(const char *id, const char *data);
const char *crypto_secret_lookup(const char *id);

#endif
