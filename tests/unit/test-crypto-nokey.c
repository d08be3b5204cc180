/* An encrypted image opened without its key (BLK_O_NO_IO, as `info` opens
 * it) describes itself but lets no data through: the keyless LUKS and AES
 * blocks refuse to encrypt and decrypt, and a qcow2 opened that way is
 * read-only and fails reads of data instead of returning ciphertext.
 * The same image opened with its key reads and writes normally.
 *
 * Files live in the current directory (the build tree). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block.h"
#include "crypto.h"
#include "options.h"
#include "tap.h"

#define IMG "test-crypto-nokey.qcow2"

struct mem_hdr {
    const uint8_t *buf;
    size_t len;
};

static int mem_read(void *opaque, uint64_t offset, void *buf, size_t len)
{
    struct mem_hdr *h = opaque;

    if (offset > h->len || len > h->len - offset) {
        return -EIO;
    }
    memcpy(buf, h->buf + offset, len);
    return 0;
}

static struct blk_opts *mkopts(const char *str)
{
    struct blk_opts *o = opts_new();

    if (opts_parse(o, str, NULL, NULL) < 0) {
        abort();
    }
    return o;
}

/* The LUKS header of a new key, reopened with and without the password. */
static void test_luks_block(void)
{
    struct crypto_luks_params p = {.iter_time = 10};
    struct crypto_block *made = NULL, *nokey = NULL, *key = NULL;
    uint8_t *hdr = NULL, plain[1024], buf[1024];
    size_t hdr_len = 0;
    struct mem_hdr h;

    tap_ok(crypto_luks_create(&made, &p, "abc", &hdr, &hdr_len, NULL) == 0,
           "LUKS: a header is made");
    h = (struct mem_hdr){hdr, hdr_len};
    tap_ok(crypto_luks_open(&nokey, mem_read, &h, NULL, NULL) == 0,
           "LUKS: the header opens without a password");
    tap_ok(crypto_luks_open(&key, mem_read, &h, "abc", NULL) == 0,
           "LUKS: and with it");
    memset(plain, 0x5a, sizeof(plain));
    memcpy(buf, plain, sizeof(buf));
    tap_ok(crypto_encrypt(nokey, 0, buf, sizeof(buf)) == -EPERM &&
               memcmp(buf, plain, sizeof(buf)) == 0,
           "LUKS without the key: encrypt refused, buffer untouched");
    tap_ok(crypto_decrypt(nokey, 0, buf, sizeof(buf)) == -EPERM,
           "LUKS without the key: decrypt refused");
    tap_ok(crypto_encrypt(key, 0, buf, sizeof(buf)) == 0 &&
               memcmp(buf, plain, sizeof(buf)) != 0 &&
               crypto_decrypt(key, 0, buf, sizeof(buf)) == 0 &&
               memcmp(buf, plain, sizeof(buf)) == 0,
           "LUKS with the key: a round trip");
    crypto_free(made);
    crypto_free(nokey);
    crypto_free(key);
    free(hdr);
}

static void test_aes_block(void)
{
    struct crypto_block *nokey = NULL, *key = NULL;
    uint8_t buf[512] = {1};

    tap_ok(crypto_qcow_aes_open(&nokey, NULL, NULL) == 0 &&
               crypto_qcow_aes_open(&key, "abc", NULL) == 0,
           "AES: opens with and without a password");
    tap_ok(crypto_decrypt(nokey, 0, buf, sizeof(buf)) == -EPERM &&
               crypto_encrypt(nokey, 0, buf, sizeof(buf)) == -EPERM,
           "AES without the key: encrypt and decrypt refused");
    tap_ok(crypto_decrypt(key, 0, buf, sizeof(buf)) == 0,
           "AES with the key: decrypts");
    crypto_free(nokey);
    crypto_free(key);
}

/* A LUKS qcow2 with a pattern at 0, then opened without its key. */
static void test_qcow2(void)
{
    struct blk_opts *c = mkopts("size=1M,encrypt.format=luks,"
                                "encrypt.key-secret=s0,encrypt.iter-time=10");
    struct blk_opts *withkey = mkopts("driver=qcow2,encrypt.key-secret=s0");
    struct blk_opts *bare = mkopts("driver=qcow2");
    struct blk_node *bs = NULL;
    uint8_t pat[4096], buf[4096];
    int ret;

    memset(pat, 0xa7, sizeof(pat));
    crypto_secret_add("s0", "abc");
    unlink(IMG);
    tap_ok(blk_create(IMG, "qcow2", c, NULL) == 0, "qcow2: LUKS image created");
    ret = blk_open(&bs, IMG, withkey, BLK_O_RDWR, NULL);
    tap_ok(ret == 0 && blk_pwrite(bs, 0, sizeof(pat), pat, 0) == 0,
           "qcow2 with the key: written");
    if (bs) {
        blk_close(bs);
        bs = NULL;
    }

    tap_ok(blk_open(&bs, IMG, bare, 0, NULL) < 0,
           "qcow2 without the key: an ordinary open is refused");
    tap_ok(blk_open(&bs, IMG, bare, BLK_O_RDWR | BLK_O_NO_IO, NULL) < 0,
           "qcow2 without the key: a no-I/O open for writing is refused");
    ret = blk_open(&bs, IMG, bare, BLK_O_NO_IO, NULL);
    tap_ok(ret == 0, "qcow2 without the key: the no-I/O open succeeds");
    if (ret == 0) {
        tap_ok(blk_pread(bs, 0, sizeof(buf), buf, 0) < 0,
               "no-I/O open: a read of written data fails");
        blk_close(bs);
        bs = NULL;
    } else {
        tap_ok(0, "no-I/O open: a read of written data fails");
    }

    ret = blk_open(&bs, IMG, withkey, 0, NULL);
    tap_ok(ret == 0 && blk_pread(bs, 0, sizeof(buf), buf, 0) == 0 &&
               memcmp(buf, pat, sizeof(buf)) == 0,
           "with the key again: the data is intact");
    if (bs) {
        blk_close(bs);
    }
    opts_free(c);
    opts_free(withkey);
    opts_free(bare);
    unlink(IMG);
}

int main(void)
{
#ifndef HAVE_OPENSSL
    printf("1..0 # SKIP built without OpenSSL\n");
    return 0;
#endif
    tap_plan(16);
    test_luks_block();
    test_aes_block();
    test_qcow2();
    return tap_done();
}
