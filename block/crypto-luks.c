/* LUKS1 and legacy qcow AES block encryption, byte-compatible with QEMU's
 * crypto/block-luks.c and crypto/block-qcow.c.  Layout of a LUKS1 header
 * (big-endian): magic, version, cipher name/mode, hash spec, payload
 * offset, key bytes, master key digest/salt/iterations, uuid, then 8 key
 * slots of (active, iterations, salt, key material offset, stripes).
 * All primitives are OpenSSL EVP calls. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto-int.h"
#include "util.h"

#ifdef HAVE_OPENSSL
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* OpenSSL's own exit handler would tear down its per-thread keys before
 * the worker pool's threads end (library destructors run after atexit
 * handlers), leaking each worker's error state: the workers release it
 * themselves as they exit (threadpool.c), so OpenSSL registers none. */
__attribute__((constructor)) static void crypto_init_no_atexit(void)
{
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
}
#endif

#ifdef HAVE_OPENSSL



/* The EVP cipher for QEMU's alg/mode names; key_len for XTS is doubled. */
static const EVP_CIPHER *find_cipher(const char *alg, const char *mode,
                                     size_t *key_len)
{
    char name[32];
    int bits;

    if (strcmp(alg, "aes-128") == 0) {
        bits = 128;
    } else if (strcmp(alg, "aes-192") == 0) {
        bits = 192;
    } else if (strcmp(alg, "aes-256") == 0) {
        bits = 256;
    } else {
        return NULL;
    }
    if (strcmp(mode, "xts") == 0 && bits == 192) {
        return NULL; /* OpenSSL has no aes-192-xts */
    }
    if (strcmp(mode, "xts") != 0 && strcmp(mode, "cbc") != 0 &&
        strcmp(mode, "ecb") != 0) {
        return NULL;
    }
    snprintf(name, sizeof(name), "aes-%d-%s", bits, mode);
    *key_len = bits / 8 * (strcmp(mode, "xts") == 0 ? 2 : 1);
    return EVP_get_cipherbyname(name);
}

/* The ESSIV IV cipher: AES with the ivgen hash's digest as key. */
static const EVP_CIPHER *essiv_cipher(const EVP_MD *md)
{
    switch (EVP_MD_size(md)) {
    case 16:
        return EVP_aes_128_ecb();
    case 24:
        return EVP_aes_192_ecb();
    case 32:
        return EVP_aes_256_ecb();
    default:
        return NULL;
    }
}

/* Install the key (and the ESSIV key derived from it). */
int luks_cipher_set_key(struct sector_cipher *c, const uint8_t *key,
                        const EVP_MD *ivhash)
{
    unsigned len;

    memcpy(c->key, key, c->key_len);
    if (c->ivgen == IVGEN_ESSIV &&
        !EVP_Digest(key, c->key_len, c->essiv_key, &len, ivhash, NULL)) {
        return -EIO;
    }
    return 0;
}

/* Encrypt or decrypt whole sectors, numbering them from `sector`. */
int luks_cipher_run(const struct sector_cipher *c, uint64_t sector,
                    uint8_t *buf, size_t len, int enc)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    EVP_CIPHER_CTX *ectx = NULL;
    int ret = -EIO, outl;

    if (!ctx || !EVP_CipherInit_ex(ctx, c->cipher, NULL, c->key, NULL, enc)) {
        goto out;
    }
    EVP_CIPHER_CTX_set_padding(ctx, 0);
    if (c->ivgen == IVGEN_ESSIV) {
        ectx = EVP_CIPHER_CTX_new();
        if (!ectx ||
            !EVP_EncryptInit_ex(ectx, c->essiv, NULL, c->essiv_key, NULL)) {
            goto out;
        }
        EVP_CIPHER_CTX_set_padding(ectx, 0);
    }
    for (size_t done = 0; done < len; done += CRYPTO_SECTOR_SIZE, sector++) {
        uint8_t iv[16] = {0}, *p = buf + done;
        uint64_t n = c->ivgen == IVGEN_PLAIN ? (uint32_t)sector : sector;

        for (int i = 0; i < 8; i++) {
            iv[i] = (uint8_t)(n >> (8 * i));
        }
        if (ectx && (!EVP_EncryptUpdate(ectx, iv, &outl, iv, 16) ||
                     outl != 16)) {
            goto out;
        }
        if (!EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, enc) ||
            !EVP_CipherUpdate(ctx, p, &outl, p, CRYPTO_SECTOR_SIZE) ||
            outl != CRYPTO_SECTOR_SIZE) {
            goto out;
        }
    }
    ret = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_CTX_free(ectx);
    return ret;
}

/* A header opened without its password has no key: its data can neither
 * be read nor written. */
int crypto_encrypt(struct crypto_block *b, uint64_t offset, void *buf,
                   size_t len)
{
    if (!b->unlocked) {
        return -EPERM;
    }
    return luks_cipher_run(&b->c, offset / CRYPTO_SECTOR_SIZE, buf, len, 1);
}

int crypto_decrypt(struct crypto_block *b, uint64_t offset, void *buf,
                   size_t len)
{
    if (!b->unlocked) {
        return -EPERM;
    }
    return luks_cipher_run(&b->c, offset / CRYPTO_SECTOR_SIZE, buf, len, 0);
}

/* ---- anti-forensic split (cryptsetup's AF_split/AF_merge) ---- */

/* Hash the block in digest-sized pieces, each prefixed by its index. */
static int af_diffuse(const EVP_MD *md, uint8_t *block, size_t len)
{
    size_t ds = EVP_MD_size(md);
    uint8_t out[EVP_MAX_MD_SIZE];

    for (size_t i = 0; i * ds < len; i++) {
        size_t n = MIN(ds, len - i * ds);
        uint8_t be[4];
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int ok;

        st32(be, (uint32_t)i);
        ok = ctx && EVP_DigestInit_ex(ctx, md, NULL) &&
             EVP_DigestUpdate(ctx, be, 4) &&
             EVP_DigestUpdate(ctx, block + i * ds, n) &&
             EVP_DigestFinal_ex(ctx, out, NULL);
        EVP_MD_CTX_free(ctx);
        if (!ok) {
            return -EIO;
        }
        memcpy(block + i * ds, out, n);
    }
    return 0;
}

static int af_merge(const EVP_MD *md, const uint8_t *src, size_t blen,
                    uint32_t stripes, uint8_t *dst)
{
    uint8_t *block = xzalloc(blen);
    int ret = 0;

    for (uint32_t i = 0; i + 1 < stripes && ret == 0; i++) {
        for (size_t j = 0; j < blen; j++) {
            block[j] ^= src[i * blen + j];
        }
        ret = af_diffuse(md, block, blen);
    }
    for (size_t j = 0; j < blen; j++) {
        dst[j] = block[j] ^ src[(size_t)(stripes - 1) * blen + j];
    }
    OPENSSL_cleanse(block, blen);
    free(block);
    return ret;
}

int luks_af_split(const EVP_MD *md, const uint8_t *src, size_t blen,
                  uint32_t stripes, uint8_t *dst)
{
    uint8_t *block = xzalloc(blen);
    int ret = 0;

    if (RAND_bytes(dst, (int)(blen * (stripes - 1))) != 1) {
        ret = -EIO;
    }
    for (uint32_t i = 0; i + 1 < stripes && ret == 0; i++) {
        for (size_t j = 0; j < blen; j++) {
            block[j] ^= dst[i * blen + j];
        }
        ret = af_diffuse(md, block, blen);
    }
    for (size_t j = 0; j < blen; j++) {
        dst[(size_t)(stripes - 1) * blen + j] = block[j] ^ src[j];
    }
    OPENSSL_cleanse(block, blen);
    free(block);
    return ret;
}

/* ---- header parsing ---- */

/* Split "xts-plain64" / "cbc-essiv:sha256" into mode, ivgen, ivgen hash. */
static int parse_mode(const char *spec, struct crypto_luks_info *in)
{
    const char *dash = strchr(spec, '-'), *colon;
    size_t n;

    if (!dash || (size_t)(dash - spec) >= sizeof(in->cipher_mode)) {
        return -1;
    }
    memcpy(in->cipher_mode, spec, dash - spec);
    in->cipher_mode[dash - spec] = '\0';
    colon = strchr(dash + 1, ':');
    n = colon ? (size_t)(colon - dash - 1) : strlen(dash + 1);
    if (n >= sizeof(in->ivgen_alg) ||
        (colon && strlen(colon + 1) >= sizeof(in->ivgen_hash_alg))) {
        return -1;
    }
    memcpy(in->ivgen_alg, dash + 1, n);
    in->ivgen_alg[n] = '\0';
    if (colon) {
        strcpy(in->ivgen_hash_alg, colon + 1);
    }
    return 0;
}

/* Set up b->c (without key) from the info strings. */
static int setup_cipher(struct crypto_block *b, const EVP_MD **ivhash,
                        struct strata_error **errp)
{
    struct crypto_luks_info *in = &b->info;

    b->c.cipher = find_cipher(in->cipher_alg, in->cipher_mode,
                              &b->c.key_len);
    if (!b->c.cipher) {
        return error_setg(errp, -ENOTSUP, "Unsupported cipher algorithm "
                          "%s with mode %s", in->cipher_alg, in->cipher_mode);
    }
    *ivhash = NULL;
    if (strcmp(in->ivgen_alg, "plain") == 0) {
        b->c.ivgen = IVGEN_PLAIN;
    } else if (strcmp(in->ivgen_alg, "plain64") == 0) {
        b->c.ivgen = IVGEN_PLAIN64;
    } else if (strcmp(in->ivgen_alg, "essiv") == 0) {
        b->c.ivgen = IVGEN_ESSIV;
        *ivhash = EVP_get_digestbyname(in->ivgen_hash_alg);
        b->c.essiv = *ivhash ? essiv_cipher(*ivhash) : NULL;
        if (!b->c.essiv) {
            return error_setg(errp, -ENOTSUP, "Unsupported IV generator "
                              "hash '%s'", in->ivgen_hash_alg);
        }
    } else {
        return error_setg(errp, -ENOTSUP, "Unsupported IV generator '%s'",
                          in->ivgen_alg);
    }
    return 0;
}

/* Copy a NUL-padded header string, refusing unterminated ones. */
static int hdr_str(char *dst, size_t dlen, const uint8_t *src, size_t slen)
{
    size_t n = strnlen((const char *)src, slen);

    if (n == slen || n >= dlen) {
        return -1;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

/* Try one key slot: 1 when the password opens it (master key in mk). */
int luks_try_slot(struct crypto_block *b, const uint8_t *hdr, int i,
                  const EVP_MD *md, const EVP_MD *ivhash, const char *password,
                  crypto_read_fn *rd, void *opaque, uint8_t *mk)
{
    const uint8_t *sl = hdr + 208 + 48 * i;
    uint32_t iters = ld32(sl + 4), stripes = ld32(sl + 44);
    uint64_t koff = (uint64_t)ld32(sl + 40) * CRYPTO_SECTOR_SIZE;
    size_t klen = b->c.key_len, splitlen = klen * stripes;
    size_t slen = ROUND_UP(splitlen, CRYPTO_SECTOR_SIZE);
    struct sector_cipher sc = b->c;
    uint8_t slotkey[64], digest[LUKS_DIGEST_LEN], *split;
    int ret;

    if (!PKCS5_PBKDF2_HMAC(password, (int)strlen(password), sl + 8,
                           LUKS_SALT_LEN, (int)iters, md, (int)klen,
                           slotkey) ||
        luks_cipher_set_key(&sc, slotkey, ivhash) < 0) {
        return -EIO;
    }
    split = xmalloc(slen);
    ret = rd(opaque, koff, split, slen);
    if (ret >= 0) {
        ret = luks_cipher_run(&sc, 0, split, slen, 0);
    }
    if (ret >= 0) {
        ret = af_merge(md, split, klen, stripes, mk);
    }
    if (ret >= 0 &&
        !PKCS5_PBKDF2_HMAC((const char *)mk, (int)klen, hdr + 132,
                           LUKS_SALT_LEN, (int)ld32(hdr + 164),
                           md, LUKS_DIGEST_LEN, digest)) {
        ret = -EIO;
    }
    if (ret >= 0) {
        ret = CRYPTO_memcmp(digest, hdr + 112, LUKS_DIGEST_LEN) == 0;
    }
    OPENSSL_cleanse(slotkey, sizeof(slotkey));
    OPENSSL_cleanse(&sc, sizeof(sc));
    OPENSSL_cleanse(split, slen);
    free(split);
    return ret;
}

int crypto_luks_open(struct crypto_block **out, crypto_read_fn *rd,
                     void *opaque, const char *password,
                     struct strata_error **errp)
{
    struct crypto_block *b = xzalloc(sizeof(*b));
    struct crypto_luks_info *in = &b->info;
    uint8_t hdr[LUKS_HDR_SIZE], mk[64];
    char name[33], mode[33], hash[33];
    const EVP_MD *md, *ivhash;
    uint32_t key_bytes;
    int ret;

    ret = rd(opaque, 0, hdr, sizeof(hdr));
    if (ret < 0) {
        error_setg_errno(errp, ret, "Unable to read LUKS header");
        goto fail;
    }
    memcpy(b->hdr, hdr, sizeof(hdr));
    if (memcmp(hdr, LUKS_MAGIC, 6) != 0) {
        ret = error_setg(errp, -EINVAL, "Volume is not in LUKS format");
        goto fail;
    }
    if ((hdr[6] << 8 | hdr[7]) != 1) {
        ret = error_setg(errp, -ENOTSUP, "LUKS version %u is not supported",
                         hdr[6] << 8 | hdr[7]);
        goto fail;
    }
    if (hdr_str(name, sizeof(name), hdr + 8, 32) < 0 ||
        hdr_str(mode, sizeof(mode), hdr + 40, 32) < 0 ||
        hdr_str(hash, sizeof(hash), hdr + 72, 32) < 0 ||
        hdr_str(in->uuid, sizeof(in->uuid), hdr + 168, 40) < 0 ||
        parse_mode(mode, in) < 0 ||
        hdr_str(in->hash_alg, sizeof(in->hash_alg), hdr + 72, 32) < 0) {
        ret = error_setg(errp, -EINVAL, "LUKS header has an invalid cipher, "
                         "hash or uuid string");
        goto fail;
    }
    key_bytes = ld32(hdr + 108);
    if (strcmp(name, "aes") != 0) {
        ret = error_setg(errp, -ENOTSUP, "Algorithm '%s' with key size %u "
                         "bytes not supported", name, key_bytes);
        goto fail;
    }
    snprintf(in->cipher_alg, sizeof(in->cipher_alg), "aes-%u",
             (strcmp(in->cipher_mode, "xts") == 0 ? key_bytes / 2
                                                   : key_bytes) * 8);
    ret = setup_cipher(b, &ivhash, errp);
    if (ret < 0) {
        goto fail;
    }
    md = EVP_get_digestbyname(in->hash_alg);
    if (!md || b->c.key_len != key_bytes) {
        ret = error_setg(errp, -ENOTSUP, "LUKS hash '%s' or key size %u not "
                         "supported", in->hash_alg, key_bytes);
        goto fail;
    }
    in->payload_offset = (uint64_t)ld32(hdr + 104) * CRYPTO_SECTOR_SIZE;
    in->master_key_iters = ld32(hdr + 164);
    for (int i = 0; i < LUKS_SLOTS; i++) {
        const uint8_t *sl = hdr + 208 + 48 * i;
        uint32_t active = ld32(sl);

        if (active != LUKS_SLOT_ACTIVE && active != LUKS_SLOT_DISABLED) {
            ret = error_setg(errp, -EINVAL, "Keyslot %d state (active/disable"
                             ") is corrupted", i);
            goto fail;
        }
        in->slots[i].active = active == LUKS_SLOT_ACTIVE;
        in->slots[i].iters = ld32(sl + 4);
        in->slots[i].key_offset = (uint64_t)ld32(sl + 40) *
                                  CRYPTO_SECTOR_SIZE;
        in->slots[i].stripes = ld32(sl + 44);
        if (in->slots[i].active &&
            (in->slots[i].stripes != LUKS_STRIPES ||
             in->slots[i].iters == 0 || in->slots[i].iters > INT32_MAX ||
             in->slots[i].key_offset + (uint64_t)key_bytes * LUKS_STRIPES >
             in->payload_offset)) {
            ret = error_setg(errp, -EINVAL, "Keyslot %d is corrupted", i);
            goto fail;
        }
    }
    if (in->master_key_iters == 0 || in->master_key_iters > INT32_MAX) {
        ret = error_setg(errp, -EINVAL, "LUKS master key iterations are "
                         "invalid");
        goto fail;
    }
    b->luks = true;
    if (!password) {
        *out = b;
        return 0;
    }
    ret = 0;
    for (int i = 0; i < LUKS_SLOTS && ret == 0; i++) {
        if (in->slots[i].active) {
            ret =
                luks_try_slot(b, hdr, i, md, ivhash, password, rd, opaque, mk);
        }
    }
    if (ret <= 0) {
        ret = ret < 0 ? error_setg_errno(errp, ret, "Unable to read LUKS key "
                                         "material")
                      : error_setg(errp, -EPERM, "Invalid password, cannot "
                                   "unlock any keyslot");
        goto fail;
    }
    ret = luks_cipher_set_key(&b->c, mk, ivhash);
    OPENSSL_cleanse(mk, sizeof(mk));
    if (ret < 0) {
        error_setg(errp, ret, "Unable to set up the LUKS cipher");
        goto fail;
    }
    b->unlocked = true;
    *out = b;
    return 0;
fail:
    crypto_free(b);
    return ret;
}

/* ---- creation ---- */

static uint64_t thread_cpu_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* PBKDF2 iterations this machine does per second (QEMU's
 * qcrypto_pbkdf2_count_iters, measured on CPU time). */
uint64_t luks_count_iters(const EVP_MD *md, const uint8_t *key, size_t klen,
                          const uint8_t *salt, size_t outlen)
{
    uint8_t out[64];
    uint64_t iters = 1 << 12, ms = 0;

    for (;;) {
        uint64_t start = thread_cpu_ms();
        if (!PKCS5_PBKDF2_HMAC((const char *)key, (int)klen, salt,
                               LUKS_SALT_LEN, (int)iters, md, (int)outlen,
                               out)) {
            return 0;
        }
        ms = thread_cpu_ms() - start;
        if (ms >= 100 || iters >= (1u << 30)) {
            break;
        }
        iters *= 2;
    }
    return iters * 1000 / (ms ? ms : 1);
}

/* Random RFC 4122 version 4 uuid, lowercase text. */
static int make_uuid(char *out)
{
    uint8_t u[16];
    int n = 0;

    if (RAND_bytes(u, sizeof(u)) != 1) {
        return -EIO;
    }
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    for (int i = 0; i < 16; i++) {
        n += sprintf(out + n, "%s%02x",
                     i == 4 || i == 6 || i == 8 || i == 10 ? "-" : "", u[i]);
    }
    return 0;
}

/* The algorithm names of a new header: p's, or QEMU's defaults. */
static void luks_param_names(struct crypto_luks_info *in,
                             const struct crypto_luks_params *p)
{
    snprintf(in->cipher_alg, sizeof(in->cipher_alg), "%s",
             p->cipher_alg ? p->cipher_alg : "aes-256");
    snprintf(in->cipher_mode, sizeof(in->cipher_mode), "%s",
             p->cipher_mode ? p->cipher_mode : "xts");
    snprintf(in->ivgen_alg, sizeof(in->ivgen_alg), "%s",
             p->ivgen_alg ? p->ivgen_alg : "plain64");
    snprintf(in->hash_alg, sizeof(in->hash_alg), "%s",
             p->hash_alg ? p->hash_alg : "sha256");
    if (strcmp(in->ivgen_alg, "essiv") == 0) {
        snprintf(in->ivgen_hash_alg, sizeof(in->ivgen_hash_alg), "%s",
                 p->ivgen_hash_alg ? p->ivgen_hash_alg : "sha256");
    }
}

/* Header sectors, then 8 key slots of key material each rounded up to
 * the header's size, as QEMU lays them out: the payload offset. */
static uint64_t luks_layout_payload(uint32_t key_bytes,
                                    uint32_t *split_sectors)
{
    uint32_t header_sectors = LUKS_KEY_SLOT_OFFSET / CRYPTO_SECTOR_SIZE;
    size_t splitlen = (size_t)key_bytes * LUKS_STRIPES;

    *split_sectors = ROUND_UP(DIV_ROUND_UP(splitlen, CRYPTO_SECTOR_SIZE),
                              header_sectors);
    return ((uint64_t)header_sectors + LUKS_SLOTS * (uint64_t)*split_sectors) *
           CRYPTO_SECTOR_SIZE;
}

int crypto_luks_payload_size(const struct crypto_luks_params *p,
                             uint64_t *out, struct strata_error **errp)
{
    struct crypto_block *b = xzalloc(sizeof(*b));
    const EVP_MD *ivhash;
    uint32_t split_sectors;
    int ret;

    luks_param_names(&b->info, p);
    ret = setup_cipher(b, &ivhash, errp);
    if (ret >= 0) {
        *out = luks_layout_payload((uint32_t)b->c.key_len, &split_sectors);
    }
    crypto_free(b);
    return ret;
}

int crypto_luks_create(struct crypto_block **out,
                       const struct crypto_luks_params *p,
                       const char *password, uint8_t **hdrp, size_t *hdr_len,
                       struct strata_error **errp)
{
    struct crypto_block *b = xzalloc(sizeof(*b));
    struct crypto_luks_info *in = &b->info;
    uint64_t iter_time = p->iter_time ? p->iter_time : LUKS_DEFAULT_ITER_TIME;
    uint8_t mk[64], slotkey[64], salt[LUKS_SALT_LEN], *hdr = NULL, *split;
    uint32_t split_sectors, header_sectors, key_bytes;
    const EVP_MD *md, *ivhash;
    struct sector_cipher sc;
    uint64_t iters;
    size_t splitlen;
    char mode[33];
    int ret;

    luks_param_names(in, p);
    if (!password) {
        ret = error_setg(errp, -EINVAL, "Parameter 'key-secret' is required "
                         "for cipher");
        goto fail;
    }
    ret = setup_cipher(b, &ivhash, errp);
    if (ret < 0) {
        goto fail;
    }
    md = EVP_get_digestbyname(in->hash_alg);
    if (!md || strlen(in->hash_alg) >= 32) {
        ret = error_setg(errp, -ENOTSUP, "Hash algorithm '%s' not supported",
                         in->hash_alg);
        goto fail;
    }
    key_bytes = (uint32_t)b->c.key_len;
    if (RAND_bytes(mk, (int)key_bytes) != 1 ||
        make_uuid(in->uuid) < 0) {
        ret = error_setg(errp, -EIO, "Unable to generate random data");
        goto fail;
    }
    header_sectors = LUKS_KEY_SLOT_OFFSET / CRYPTO_SECTOR_SIZE;
    splitlen = (size_t)key_bytes * LUKS_STRIPES;
    in->payload_offset = luks_layout_payload(key_bytes, &split_sectors);
    hdr = xzalloc(in->payload_offset);

    /* master key digest, iterations as QEMU: rate * time / 8 */
    memcpy(hdr, LUKS_MAGIC, 6);
    hdr[7] = 1;
    strcpy((char *)hdr + 8, "aes");
    if (b->c.ivgen == IVGEN_ESSIV) {
        snprintf(mode, sizeof(mode), "%s-essiv:%s", in->cipher_mode,
                 in->ivgen_hash_alg);
    } else {
        snprintf(mode, sizeof(mode), "%s-%s", in->cipher_mode, in->ivgen_alg);
    }
    strcpy((char *)hdr + 40, mode);
    strcpy((char *)hdr + 72, in->hash_alg);
    st32(hdr + 104, (uint32_t)(in->payload_offset / CRYPTO_SECTOR_SIZE));
    st32(hdr + 108, key_bytes);
    if (RAND_bytes(hdr + 132, LUKS_SALT_LEN) != 1 ||
        RAND_bytes(salt, LUKS_SALT_LEN) != 1) {
        ret = error_setg(errp, -EIO, "Unable to generate random data");
        goto fail;
    }
    iters = luks_count_iters(md, mk, key_bytes, hdr + 132, LUKS_DIGEST_LEN);
    iters = MAX(iters * iter_time / 1000 / 8, LUKS_MIN_ITERS);
    in->master_key_iters = (uint32_t)MIN(iters, INT32_MAX);
    st32(hdr + 164, in->master_key_iters);
    if (!PKCS5_PBKDF2_HMAC((const char *)mk, (int)key_bytes, hdr + 132,
                           LUKS_SALT_LEN, (int)in->master_key_iters, md,
                           LUKS_DIGEST_LEN, hdr + 112)) {
        ret = error_setg(errp, -EIO, "PBKDF2 failed");
        goto fail;
    }
    memcpy(hdr + 168, in->uuid, 36);

    /* key slots: 0 active for the password, the rest disabled */
    iters = luks_count_iters(md, (const uint8_t *)password, strlen(password),
                             salt, key_bytes);
    iters = MAX(iters * iter_time / 1000, LUKS_MIN_ITERS);
    for (int i = 0; i < LUKS_SLOTS; i++) {
        uint8_t *sl = hdr + 208 + 48 * i;

        in->slots[i].active = i == 0;
        in->slots[i].iters = i == 0 ? (uint32_t)MIN(iters, INT32_MAX) : 0;
        in->slots[i].key_offset = ((uint64_t)header_sectors +
                                   (uint64_t)i * split_sectors) *
                                  CRYPTO_SECTOR_SIZE;
        in->slots[i].stripes = LUKS_STRIPES;
        st32(sl, i == 0 ? LUKS_SLOT_ACTIVE : LUKS_SLOT_DISABLED);
        st32(sl + 4, in->slots[i].iters);
        if (i == 0) {
            memcpy(sl + 8, salt, LUKS_SALT_LEN);
        }
        st32(sl + 40, (uint32_t)(in->slots[i].key_offset /
                                 CRYPTO_SECTOR_SIZE));
        st32(sl + 44, LUKS_STRIPES);
    }
    sc = b->c;
    split = hdr + in->slots[0].key_offset;
    if (!PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, LUKS_SALT_LEN,
                           (int)in->slots[0].iters, md, (int)key_bytes,
                           slotkey) ||
        luks_cipher_set_key(&sc, slotkey, ivhash) < 0 ||
        luks_af_split(md, mk, key_bytes, LUKS_STRIPES, split) < 0 ||
        luks_cipher_run(&sc, 0, split, ROUND_UP(splitlen, CRYPTO_SECTOR_SIZE),
                        1) < 0 ||
        luks_cipher_set_key(&b->c, mk, ivhash) < 0) {
        ret = error_setg(errp, -EIO, "Unable to set up the LUKS key slot");
        goto fail;
    }
    OPENSSL_cleanse(&sc, sizeof(sc));
    OPENSSL_cleanse(slotkey, sizeof(slotkey));
    OPENSSL_cleanse(mk, sizeof(mk));
    b->luks = true;
    b->unlocked = true;
    memcpy(b->hdr, hdr, LUKS_HDR_SIZE);
    *hdrp = hdr;
    *hdr_len = in->payload_offset;
    *out = b;
    return 0;
fail:
    OPENSSL_cleanse(mk, sizeof(mk));
    free(hdr);
    crypto_free(b);
    return ret;
}

/* ---- legacy qcow AES ---- */

int crypto_qcow_aes_open(struct crypto_block **out, const char *password,
                         struct strata_error **errp)
{
    struct crypto_block *b = xzalloc(sizeof(*b));
    uint8_t key[16] = {0};

    b->c.cipher = EVP_aes_128_cbc();
    b->c.ivgen = IVGEN_PLAIN64;
    b->c.key_len = 16;
    if (password) {
        memcpy(key, password, MIN(strlen(password), sizeof(key)));
        memcpy(b->c.key, key, 16);
        OPENSSL_cleanse(key, sizeof(key));
        b->unlocked = true;
    }
    (void)errp;
    *out = b;
    return 0;
}

bool crypto_get_luks_info(struct crypto_block *b,
                          struct crypto_luks_info *info)
{
    if (!b->luks) {
        return false;
    }
    *info = b->info;
    return true;
}

uint64_t crypto_payload_offset(struct crypto_block *b)
{
    return b->luks ? b->info.payload_offset : 0;
}

void crypto_free(struct crypto_block *b)
{
    if (b) {
        OPENSSL_cleanse(b, sizeof(*b));
        free(b);
    }
}

#else /* !HAVE_OPENSSL */

struct crypto_block {
    int unused;
};

int crypto_luks_open(struct crypto_block **out, crypto_read_fn *rd,
                     void *opaque, const char *password,
                     struct strata_error **errp)
{
    (void)out, (void)rd, (void)opaque, (void)password;
    return error_setg(errp, -ENOTSUP, "LUKS encryption needs OpenSSL, which "
                      "this build does not have");
}

int crypto_luks_create(struct crypto_block **out,
                       const struct crypto_luks_params *p,
                       const char *password, uint8_t **hdr, size_t *hdr_len,
                       struct strata_error **errp)
{
    (void)out, (void)p, (void)password, (void)hdr, (void)hdr_len;
    return error_setg(errp, -ENOTSUP, "LUKS encryption needs OpenSSL, which "
                      "this build does not have");
}

int crypto_luks_payload_size(const struct crypto_luks_params *p,
                             uint64_t *out, struct strata_error **errp)
{
    (void)p, (void)out;
    return error_setg(errp, -ENOTSUP, "LUKS encryption needs OpenSSL, which "
                      "this build does not have");
}

int crypto_qcow_aes_open(struct crypto_block **out, const char *password,
                         struct strata_error **errp)
{
    (void)out, (void)password;
    return error_setg(errp, -ENOTSUP, "AES encryption needs OpenSSL, which "
                      "this build does not have");
}

int crypto_encrypt(struct crypto_block *b, uint64_t offset, void *buf,
                   size_t len)
{
    (void)b, (void)offset, (void)buf, (void)len;
    return -ENOTSUP;
}

int crypto_decrypt(struct crypto_block *b, uint64_t offset, void *buf,
                   size_t len)
{
    (void)b, (void)offset, (void)buf, (void)len;
    return -ENOTSUP;
}

bool crypto_get_luks_info(struct crypto_block *b,
                          struct crypto_luks_info *info)
{
    (void)b, (void)info;
    return false;
}

uint64_t crypto_payload_offset(struct crypto_block *b)
{
    (void)b;
    return 0;
}

void crypto_free(struct crypto_block *b)
{
    free(b);
}

#endif
