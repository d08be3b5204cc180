/* LUKS1 key slot changes for `amend`, as QEMU's crypto/block-luks.c makes
 * them: adding a slot writes its key material before the header that
 * activates it; erasing marks the slot inactive first, then overwrites
 * its key material with random data. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto-int.h"
#include "util.h"

#ifdef HAVE_OPENSSL
#include <openssl/rand.h>

/* ---- key slot changes (amend) ---- */

#define LUKS_ERASE_PASSES 16 /* QEMU's QCRYPTO_BLOCK_LUKS_ERASE_ITERATIONS */

static uint8_t *slot_hdr(struct crypto_block *b, int i)
{
    return b->hdr + 208 + 48 * i;
}

/* Bring the parsed view in line with slot i of the raw header. */
static void refresh_slot(struct crypto_block *b, int i)
{
    const uint8_t *sl = slot_hdr(b, i);

    b->info.slots[i].active = ld32(sl) == LUKS_SLOT_ACTIVE;
    b->info.slots[i].iters = ld32(sl + 4);
}

static int count_active(const struct crypto_block *b)
{
    int n = 0;

    for (int i = 0; i < LUKS_SLOTS; i++) {
        n += b->info.slots[i].active;
    }
    return n;
}

/* Open checks only the active slots: one about to be written must have
 * its key material between the header and the payload too, clear of the
 * material of the other active slots (as QEMU checks at open). */
static int check_slot_area(struct crypto_block *b, int i,
                           struct strata_error **errp)
{
    const uint8_t *sl = slot_hdr(b, i);
    uint64_t len = (uint64_t)b->c.key_len * LUKS_STRIPES;
    uint64_t off = (uint64_t)ld32(sl + 40) * CRYPTO_SECTOR_SIZE;

    if (ld32(sl + 44) != LUKS_STRIPES || off < LUKS_KEY_SLOT_OFFSET ||
        off + len > b->info.payload_offset) {
        return error_setg(errp, -EINVAL, "Keyslot %d is corrupted", i);
    }
    for (int j = 0; j < LUKS_SLOTS; j++) {
        uint64_t o = b->info.slots[j].key_offset;

        if (j != i && b->info.slots[j].active && off < o + len &&
            o < off + len) {
            return error_setg(errp, -EINVAL, "Keyslots %d and %d are "
                              "overlapping in the header", MIN(i, j),
                              MAX(i, j));
        }
    }
    return 0;
}

/* The PBKDF2/AF hash of the header and the ESSIV hash (NULL if none). */
static int luks_hashes(const struct crypto_block *b, const EVP_MD **md,
                       const EVP_MD **ivhash, struct strata_error **errp)
{
    *md = EVP_get_digestbyname(b->info.hash_alg);
    *ivhash = b->c.ivgen == IVGEN_ESSIV
                  ? EVP_get_digestbyname(b->info.ivgen_hash_alg) : NULL;
    if (!*md || (b->c.ivgen == IVGEN_ESSIV && !*ivhash)) {
        return error_setg(errp, -ENOTSUP, "LUKS hash '%s' not supported",
                          b->info.hash_alg);
    }
    return 0;
}

static int store_header(struct crypto_block *b, crypto_write_fn *wr,
                        void *opaque, struct strata_error **errp)
{
    int ret = wr(opaque, 0, b->hdr, LUKS_HDR_SIZE);

    return ret < 0 ? error_setg_errno(errp, ret, "Could not write "
                                      "encryption header") : 0;
}

/* The master key under `password` into slot i (QEMU's
 * qcrypto_block_luks_store_key): key material first, then the header. */
static int store_key(struct crypto_block *b, int i, const char *password,
                     uint64_t iter_time, crypto_write_fn *wr, void *opaque,
                     struct strata_error **errp)
{
    uint8_t *sl = slot_hdr(b, i), salt[LUKS_SALT_LEN], slotkey[64], *split;
    size_t klen = b->c.key_len, splitlen = klen * LUKS_STRIPES;
    size_t slen = ROUND_UP(splitlen, CRYPTO_SECTOR_SIZE);
    uint64_t koff = (uint64_t)ld32(sl + 40) * CRYPTO_SECTOR_SIZE, iters;
    struct sector_cipher sc = b->c;
    const EVP_MD *md, *ivhash;
    int ret;

    ret = luks_hashes(b, &md, &ivhash, errp);
    if (ret < 0) {
        return ret;
    }
    if (RAND_bytes(salt, sizeof(salt)) != 1) {
        return error_setg(errp, -EIO, "Unable to generate random data");
    }
    iters = luks_count_iters(md, (const uint8_t *)password, strlen(password),
                             salt, klen);
    if (!iters) {
        return error_setg(errp, -EIO, "PBKDF2 failed");
    }
    /* QEMU skips this check for 0 ms (and ends with the minimum) */
    if (iter_time && iters > UINT64_MAX / iter_time) {
        return error_setg_errno(errp, -ERANGE, "PBKDF iterations %llu too "
                                "large to scale", (unsigned long long)iters);
    }
    iters = iters * iter_time / 1000;
    if (iters > INT32_MAX) { /* QEMU: UINT32_MAX; OpenSSL takes an int */
        return error_setg_errno(errp, -ERANGE, "PBKDF iterations %llu larger "
                                "than %u", (unsigned long long)iters,
                                (unsigned)INT32_MAX);
    }
    iters = MAX(iters, LUKS_MIN_ITERS);
    split = xzalloc(slen);
    ret = PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt,
                            LUKS_SALT_LEN, (int)iters, md, (int)klen,
                            slotkey) &&
          luks_cipher_set_key(&sc, slotkey, ivhash) == 0 &&
          luks_af_split(md, b->c.key, klen, LUKS_STRIPES, split) == 0 &&
          luks_cipher_run(&sc, 0, split, slen, 1) == 0 ? 0 : -EIO;
    OPENSSL_cleanse(slotkey, sizeof(slotkey));
    OPENSSL_cleanse(&sc, sizeof(sc));
    if (ret < 0) {
        error_setg(errp, ret, "Unable to set up the LUKS key slot");
        goto out;
    }
    /* CBC of a partial last sector equals the start of the whole one */
    ret = wr(opaque, koff, split, splitlen);
    if (ret < 0) {
        error_setg_errno(errp, ret, "Could not write encryption header");
        goto out;
    }
    st32(sl, LUKS_SLOT_ACTIVE);
    st32(sl + 4, (uint32_t)iters);
    memcpy(sl + 8, salt, LUKS_SALT_LEN);
    refresh_slot(b, i);
    ret = store_header(b, wr, opaque, errp);
out:
    OPENSSL_cleanse(split, slen);
    free(split);
    return ret;
}

/* Disable slot i, then overwrite its key material with random data, even
 * when the header could not be written (QEMU's erase_key). */
static int erase_key(struct crypto_block *b, int i, crypto_write_fn *wr,
                     void *opaque, struct strata_error **errp)
{
    uint8_t *sl = slot_hdr(b, i), *garbage;
    size_t splitlen = b->c.key_len * LUKS_STRIPES;
    uint64_t koff = (uint64_t)ld32(sl + 40) * CRYPTO_SECTOR_SIZE;
    int ret, r;

    st32(sl, LUKS_SLOT_DISABLED);
    st32(sl + 4, 0);
    memset(sl + 8, 0, LUKS_SALT_LEN);
    refresh_slot(b, i);
    ret = store_header(b, wr, opaque, errp);
    garbage = xzalloc(splitlen);
    for (int pass = 0; pass < LUKS_ERASE_PASSES; pass++) {
        if (RAND_bytes(garbage, (int)splitlen) != 1) {
            ret = error_setg(errp, -EIO, "Unable to generate random data");
            if (pass > 0) {
                break; /* zeroes went over it at least */
            }
        }
        r = wr(opaque, koff, garbage, splitlen);
        if (r < 0) {
            ret = error_setg_errno(errp, r, "Could not write encryption "
                                   "header");
            break;
        }
    }
    free(garbage);
    return ret;
}

/* QEMU appends a line naming the slot to errors of the write steps. */
static int with_slot_hint(struct strata_error **errp,
                          struct strata_error *err, int ret,
                          const char *what, int slot)
{
    ret = error_setg(errp, ret, "%s\n%s %d", error_msg(err, ret), what, slot);
    strata_error_free(err);
    return ret;
}

static int amend_add(struct crypto_block *b, const struct crypto_luks_amend *a,
                     bool force, crypto_write_fn *wr, void *opaque,
                     struct strata_error **errp)
{
    uint64_t iter_time = a->has_iter_time ? (uint64_t)a->iter_time
                                          : LUKS_DEFAULT_ITER_TIME;
    struct strata_error *err = NULL;
    const char *pw;
    int slot = -1, ret;

    if (!a->new_secret) {
        return error_setg(errp, -EINVAL, "'new-secret' is required to "
                          "activate a keyslot");
    }
    if (a->old_secret) {
        return error_setg(errp, -EINVAL, "'old-secret' must not be given "
                          "when activating keyslots");
    }
    if (a->has_keyslot) {
        slot = (int)a->keyslot; /* QEMU keeps it in an int too */
        if (slot < 0 || slot >= LUKS_SLOTS) {
            return error_setg(errp, -EINVAL, "Invalid keyslot %u specified, "
                              "must be between 0 and %u", (unsigned)slot,
                              LUKS_SLOTS - 1);
        }
    } else {
        for (int i = LUKS_SLOTS - 1; i >= 0; i--) {
            slot = b->info.slots[i].active ? slot : i;
        }
        if (slot < 0) {
            return error_setg(errp, -ENOSPC, "Can't add a keyslot - all "
                              "keyslots are in use");
        }
    }
    if (!force && b->info.slots[slot].active) {
        return error_setg(errp, -EINVAL, "Refusing to overwrite active "
                          "keyslot %i - please erase it first", slot);
    }
    pw = crypto_secret_lookup(a->new_secret);
    if (!pw) {
        return error_setg(errp, -ENOENT, "No secret with id '%s'",
                          a->new_secret);
    }
    ret = check_slot_area(b, slot, errp);
    if (ret < 0) {
        return ret;
    }
    ret = store_key(b, slot, pw, iter_time, wr, opaque, &err);
    if (ret < 0) {
        return with_slot_hint(errp, err, ret, "Failed to write to keyslot",
                              slot);
    }
    return 0;
}

/* 1 when password opens active slot i, 0 when not, or -errno. */
static int slot_matches(struct crypto_block *b, int i, const char *password,
                        crypto_read_fn *rd, void *opaque,
                        struct strata_error **errp)
{
    const EVP_MD *md, *ivhash;
    uint8_t mk[64];
    int ret;

    if (!b->info.slots[i].active) {
        return 0;
    }
    ret = luks_hashes(b, &md, &ivhash, errp);
    if (ret < 0) {
        return ret;
    }
    ret = luks_try_slot(b, b->hdr, i, md, ivhash, password, rd, opaque, mk);
    OPENSSL_cleanse(mk, sizeof(mk));
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Unable to read LUKS key "
                                "material");
    }
    return ret;
}

/* Erase one slot after QEMU's checks, with its hint on failure. */
static int erase_checked(struct crypto_block *b, int slot, crypto_write_fn *wr,
                         void *opaque, struct strata_error **errp)
{
    struct strata_error *err = NULL;
    int ret = check_slot_area(b, slot, errp);

    if (ret < 0) {
        return ret;
    }
    ret = erase_key(b, slot, wr, opaque, &err);
    if (ret < 0) {
        return with_slot_hint(errp, err, ret, "Failed to erase keyslot",
                              slot);
    }
    return 0;
}

static int amend_erase(struct crypto_block *b,
                       const struct crypto_luks_amend *a, bool force,
                       crypto_read_fn *rd, crypto_write_fn *wr, void *opaque,
                       struct strata_error **errp)
{
    const char *pw = NULL;
    unsigned mask = 0;
    int n = 0, ret;

    if (a->new_secret) {
        return error_setg(errp, -EINVAL, "'new-secret' must not be given "
                          "when erasing keyslots");
    }
    if (a->has_iter_time) {
        return error_setg(errp, -EINVAL, "'iter-time' must not be given "
                          "when erasing keyslots");
    }
    if (a->old_secret) {
        pw = crypto_secret_lookup(a->old_secret);
        if (!pw) {
            return error_setg(errp, -ENOENT, "No secret with id '%s'",
                              a->old_secret);
        }
    }
    if (a->has_keyslot) {
        int slot = (int)a->keyslot;

        if (slot < 0 || slot >= LUKS_SLOTS) {
            return error_setg(errp, -EINVAL, "Invalid keyslot %i specified, "
                              "must be between 0 and %i", slot,
                              LUKS_SLOTS - 1);
        }
        if (pw) {
            ret = slot_matches(b, slot, pw, rd, opaque, errp);
            if (ret <= 0) {
                return ret < 0 ? ret : error_setg(errp, -EPERM, "Given "
                                 "keyslot %i doesn't contain the given old "
                                 "password for erase operation", slot);
            }
        }
        if (!force && !b->info.slots[slot].active) {
            return error_setg(errp, -EINVAL, "Given keyslot %i is already "
                              "erased (inactive) ", slot);
        }
        if (!force && count_active(b) == 1) {
            return error_setg(errp, -EINVAL, "Attempt to erase the only "
                              "active keyslot %i which will erase all the "
                              "data in the image irreversibly - refusing "
                              "operation", slot);
        }
        return erase_checked(b, slot, wr, opaque, errp);
    }
    if (!pw) {
        return error_setg(errp, -EINVAL, "To erase keyslot(s), either "
                          "explicit keyslot index or the password currently "
                          "contained in them must be given");
    }
    for (int i = 0; i < LUKS_SLOTS; i++) {
        ret = slot_matches(b, i, pw, rd, opaque, errp);
        if (ret < 0) {
            return ret;
        }
        mask |= (unsigned)ret << i;
        n += ret;
    }
    if (n == 0) {
        return error_setg(errp, -EPERM, "No keyslots match given (old) "
                          "password for erase operation");
    }
    if (!force && n == count_active(b)) {
        return error_setg(errp, -EINVAL, "All the active keyslots match the "
                          "(old) password that was given and erasing them "
                          "will erase all the data in the image "
                          "irreversibly - refusing operation");
    }
    for (int i = 0; i < LUKS_SLOTS; i++) {
        if (mask & (1u << i)) {
            ret = erase_checked(b, i, wr, opaque, errp);
            if (ret < 0) {
                return ret;
            }
        }
    }
    return 0;
}

int crypto_luks_amend(struct crypto_block *b, const struct crypto_luks_amend *a,
                      bool force, crypto_read_fn *rd, crypto_write_fn *wr,
                      void *opaque, struct strata_error **errp)
{
    if (!b->luks || !b->unlocked) {
        return error_setg(errp, -EINVAL, "Cannot amend the key slots of a "
                          "LUKS header that is not unlocked");
    }
    return a->active ? amend_add(b, a, force, wr, opaque, errp)
                     : amend_erase(b, a, force, rd, wr, opaque, errp);
}

#else /* !HAVE_OPENSSL */

int crypto_luks_amend(struct crypto_block *b, const struct crypto_luks_amend *a,
                      bool force, crypto_read_fn *rd, crypto_write_fn *wr,
                      void *opaque, struct strata_error **errp)
{
    (void)b, (void)a, (void)force, (void)rd, (void)wr, (void)opaque;
    return error_setg(errp, -ENOTSUP, "LUKS encryption needs OpenSSL, which "
                      "this build does not have");
}

#endif
