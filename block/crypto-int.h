/* Internals shared by the LUKS code (crypto-luks.c: headers, sector
 * ciphers, opening and creation; crypto-luks-keyslot.c: key slot changes
 * for amend).  Not part of the engine's contract: use crypto.h. */
#ifndef BLOCK_CRYPTO_INT_H
#define BLOCK_CRYPTO_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto.h"

#define LUKS_MAGIC "LUKS\xba\xbe"
#define LUKS_HDR_SIZE 592
#define LUKS_SLOTS 8
#define LUKS_SLOT_ACTIVE 0x00AC71F3u
#define LUKS_SLOT_DISABLED 0x0000DEADu
#define LUKS_STRIPES 4000
#define LUKS_SALT_LEN 32
#define LUKS_DIGEST_LEN 20
#define LUKS_KEY_SLOT_OFFSET 4096
#define LUKS_MIN_ITERS 1000
#define LUKS_DEFAULT_ITER_TIME 2000

enum ivgen { IVGEN_PLAIN, IVGEN_PLAIN64, IVGEN_ESSIV };

#ifdef HAVE_OPENSSL
#include <openssl/evp.h>

/* A cipher set up for sector I/O: algorithm, IV generator and keys. */
struct sector_cipher {
    const EVP_CIPHER *cipher;
    const EVP_CIPHER *essiv;    /* ECB cipher making ESSIV IVs */
    enum ivgen ivgen;
    size_t key_len;
    uint8_t key[64];
    uint8_t essiv_key[64];
};

struct crypto_block {
    struct sector_cipher c;     /* for LUKS its key is the master key */
    bool luks;
    bool unlocked;              /* c holds the key (LUKS: the master key);
                                 * without it no data goes through */
    struct crypto_luks_info info;
    uint8_t hdr[LUKS_HDR_SIZE]; /* LUKS: the header as on disk */
};

static inline uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static inline void st32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

/* Key a sector cipher (and its ESSIV cipher, given ivhash). */
int luks_cipher_set_key(struct sector_cipher *c, const uint8_t *key,
                        const EVP_MD *ivhash);
/* En- or decrypt whole sectors in place, IVs from the sector number. */
int luks_cipher_run(const struct sector_cipher *c, uint64_t sector,
                    uint8_t *buf, size_t len, int enc);
/* cryptsetup's AF_split of blen bytes into stripes (dst: blen * stripes). */
int luks_af_split(const EVP_MD *md, const uint8_t *src, size_t blen,
                  uint32_t stripes, uint8_t *dst);
/* PBKDF2 iterations per second of CPU time for this hash and sizes. */
uint64_t luks_count_iters(const EVP_MD *md, const uint8_t *key, size_t klen,
                          const uint8_t *salt, size_t outlen);
/* Unlock key slot i of header hdr with password: the master key into mk
 * (0), -EACCES when the password does not open it. */
int luks_try_slot(struct crypto_block *b, const uint8_t *hdr, int i,
                  const EVP_MD *md, const EVP_MD *ivhash, const char *password,
                  crypto_read_fn *rd, void *opaque, uint8_t *mk);

#endif /* HAVE_OPENSSL */
#endif
