/* Scatter/gather lists and buffer_is_zero.  Lists are checked against a
 * flat copy of the same bytes; buffer_is_zero is run for every length up to
 * 300 with a single non-zero byte in every position, at several alignments,
 * in each of its variants (portable, SSE2, AVX2 where the CPU has them). */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iov.h"
#include "tap.h"

/* In iov.c but not in iov.h: choose buffer_is_zero's variant (0 portable,
 * 1 SSE2, 2 AVX2); returns the one actually in use. */
int buffer_is_zero_select(int level);

static uint64_t rnd_state = 88172645463325252ull;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* Five pieces of a 1000-byte area, out of order in memory, so that no two
 * are contiguous (the list would merge those). */
static unsigned char area[1200];
static const struct { size_t off, len; } pieces[] = {
    { 600, 100 }, { 0, 1 }, { 100, 300 }, { 800, 7 }, { 1000, 192 },
};
#define TOTAL (100 + 1 + 300 + 7 + 192)

static void build(struct blk_iov *q, unsigned char *flat)
{
    size_t pos = 0;

    blk_iov_init(q, 2);
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        blk_iov_add(q, area + pieces[i].off, pieces[i].len);
        if (flat) {
            memcpy(flat + pos, area + pieces[i].off, pieces[i].len);
        }
        pos += pieces[i].len;
    }
}

static void test_basics(void)
{
    struct blk_iov q;
    char buf[64];

    blk_iov_init_buf(&q, buf, sizeof(buf));
    tap_ok(q.niov == 1 && q.size == 64 && q.iov[0].iov_base == buf,
           "init_buf describes one buffer");
    blk_iov_add(&q, buf + 64, 0);
    tap_ok(q.niov == 1 && q.size == 64, "adding nothing changes nothing");
    blk_iov_add(&q, area, 10);
    tap_ok(q.niov == 2 && q.size == 74 && q.iov[0].iov_base == buf,
           "a one-buffer list can still grow");
    blk_iov_destroy(&q);

    blk_iov_init(&q, 0);
    blk_iov_add(&q, area, 10);
    blk_iov_add(&q, area + 10, 20);
    tap_ok(q.niov == 1 && q.iov[0].iov_len == 30 && q.size == 30,
           "contiguous pieces merge into one entry");
    blk_iov_add(&q, area + 40, 5);
    for (int i = 0; i < 100; i++) {
        blk_iov_add(&q, area + 100 + 2 * i, 1);
    }
    tap_ok(q.niov == 102 && q.size == 135, "many entries");
    blk_iov_reset(&q);
    tap_ok(q.niov == 0 && q.size == 0, "reset empties the list");
    blk_iov_add(&q, area, 3);
    tap_ok(q.niov == 1 && q.size == 3, "and it can be reused");
    blk_iov_destroy(&q);

    struct blk_iov src;
    build(&src, NULL);
    tap_ok(src.niov == 5 && src.size == TOTAL, "five separate pieces");
    tap_ok(blk_iov_is_aligned(&src, 1), "anything is 1-aligned");
    tap_ok(!blk_iov_is_aligned(&src, 512), "odd pieces are not aligned");
    blk_iov_destroy(&src);

    unsigned char *al = aligned_alloc(4096, 8192);
    blk_iov_init(&q, 1);
    blk_iov_add(&q, al, 512);
    blk_iov_add(&q, al + 4096, 4096);
    tap_ok(blk_iov_is_aligned(&q, 512), "512-aligned entries");
    tap_ok(!blk_iov_is_aligned(&q, 4096), "but not 4096-aligned");
    blk_iov_add(&q, al + 2048, 100);
    tap_ok(!blk_iov_is_aligned(&q, 512), "a short entry breaks alignment");
    blk_iov_destroy(&q);
    free(al);
}

/* Every (off, len) of the five-piece list: concat, to_buf, from_buf and
 * memset agree with the flat copy. */
static void test_ranges(void)
{
    unsigned char flat[TOTAL], out[TOTAL];
    struct blk_iov src;
    int bad_concat = 0, bad_to = 0, bad_from = 0, bad_set = 0, n = 0;

    for (size_t i = 0; i < sizeof(area); i++) {
        area[i] = rnd();
    }
    build(&src, flat);
    for (size_t off = 0; off <= TOTAL; off += 3) {
        for (size_t len = 0; off + len <= TOTAL; len += 7) {
            struct blk_iov sub;
            n++;
            blk_iov_init(&sub, 1);
            blk_iov_concat(&sub, &src, off, len);
            memset(out, 0xee, sizeof(out));
            size_t got = blk_iov_to_buf(&sub, 0, out, len);
            if (sub.size != len || got != len ||
                memcmp(out, flat + off, len) != 0 || sub.niov > 5) {
                bad_concat++;
            }
            blk_iov_destroy(&sub);

            memset(out, 0xee, sizeof(out));
            if (blk_iov_to_buf(&src, off, out, len) != len ||
                memcmp(out, flat + off, len) != 0 || out[len] != 0xee) {
                bad_to++;
            }
        }
    }
    tap_ok(bad_concat == 0, "concat of %d sub-ranges across entries", n);
    tap_ok(bad_to == 0, "to_buf of %d ranges", n);

    for (int k = 0; k < 500; k++) {
        size_t off = rnd() % (TOTAL + 1), len = rnd() % (TOTAL + 1 - off);
        unsigned char in[TOTAL];
        for (size_t i = 0; i < len; i++) {
            in[i] = rnd();
        }
        if (blk_iov_from_buf(&src, off, in, len) != len) {
            bad_from++;
        }
        memcpy(flat + off, in, len);
        int c = rnd() & 0xff;
        size_t moff = rnd() % (TOTAL + 1), mlen = rnd() % (TOTAL + 1 - moff);
        if (blk_iov_memset(&src, moff, c, mlen) != mlen) {
            bad_set++;
        }
        memset(flat + moff, c, mlen);
        blk_iov_to_buf(&src, 0, out, TOTAL);
        if (memcmp(out, flat, TOTAL) != 0) {
            bad_from++;
        }
    }
    tap_ok(bad_from == 0, "from_buf into random ranges");
    tap_ok(bad_set == 0, "memset of random ranges");

    tap_is(blk_iov_to_buf(&src, TOTAL - 10, out, 100), 10,
           "to_buf stops at the end of the list");
    tap_is(blk_iov_from_buf(&src, TOTAL + 5, out, 10), 0,
           "from_buf past the end copies nothing");
    tap_is(blk_iov_memset(&src, TOTAL - 10, 0, 50), 10,
           "memset is clipped too");

    struct blk_iov sub;
    blk_iov_init(&sub, 1);
    blk_iov_concat(&sub, &src, 0, TOTAL);
    blk_iov_concat(&sub, &src, 101, 300);
    tap_ok(sub.size == TOTAL + 300 && sub.niov == 6,
           "concat appends to what is there");
    blk_iov_destroy(&sub);

    blk_iov_memset(&src, 0, 0, TOTAL);
    tap_ok(blk_iov_is_zero(&src), "is_zero after memset 0");
    int missed = 0;
    for (size_t pos = 0; pos < TOTAL; pos++) {
        unsigned char one = 1;
        blk_iov_from_buf(&src, pos, &one, 1);
        missed += blk_iov_is_zero(&src);
        blk_iov_memset(&src, pos, 0, 1);
    }
    tap_ok(missed == 0, "is_zero sees one non-zero byte anywhere");
    blk_iov_destroy(&src);
}

/* A zero region inside guard bytes that are not zero, so a read outside
 * [p, p+len) shows up as a wrong answer (and ASan flags it with the exact
 * heap allocation used below). */
static bool zero_case(size_t len, size_t align, size_t hit)
{
    unsigned char *raw = malloc(len + 64 + 32);
    unsigned char *p = raw + 32 + align;
    bool ok;

    memset(raw, 0xa5, len + 64 + 32);
    memset(p, 0, len);
    ok = buffer_is_zero(p, len);
    if (hit < len) {
        p[hit] = 0x10;
        ok = ok && !buffer_is_zero(p, len);
    }
    free(raw);
    return ok;
}

static void test_buffer_is_zero(void)
{
    static const char *const names[] = { "portable", "SSE2", "AVX2" };

    for (int level = 0; level <= 2; level++) {
        int got = buffer_is_zero_select(level);
        if (got != level) {
            tap_ok(1, "# SKIP buffer_is_zero %s: not on this CPU/build",
                   names[level]);
            continue;
        }
        static const size_t aligns[] = { 0, 3, 8, 13, 31 };
        for (size_t a = 0; a < sizeof(aligns) / sizeof(aligns[0]); a++) {
            size_t align = aligns[a];
            int bad = 0, n = 0;
            for (size_t len = 0; len <= 300; len++) {
                for (size_t hit = 0; hit <= len; hit++) {
                    n++;
                    if (!zero_case(len, align, hit)) {
                        bad++;
                        if (bad < 5) {
                            printf("# wrong: len %zu align %zu byte %zu\n",
                                   len, align, hit);
                        }
                    }
                }
            }
            tap_ok(bad == 0, "buffer_is_zero %s, offset %zu: lengths 0..300"
                   ", each position of one non-zero byte (%d cases)",
                   names[level], align, n);
        }

        size_t lens[] = { 4096, 65536 + 13, 1 << 20, (1 << 20) + 4095 };
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
            size_t len = lens[i];
            unsigned char *raw = calloc(1, len + 64);
            int bad = 0;
            for (size_t align = 0; align < 64; align += 17) {
                unsigned char *p = raw + align;
                bad += !buffer_is_zero(p, len - align);
                size_t spots[40] = { 0, 1, 15, 16, 63, 64, 127, 128,
                                     len - align - 1, len - align - 16,
                                     (len - align) / 2 };
                for (int k = 11; k < 40; k++) {
                    spots[k] = rnd() % (len - align);
                }
                for (int k = 0; k < 40; k++) {
                    p[spots[k]] = 1 + rnd() % 255;
                    bad += buffer_is_zero(p, len - align);
                    p[spots[k]] = 0;
                }
            }
            tap_ok(bad == 0, "buffer_is_zero %s on %zu bytes: zero, and "
                   "one non-zero byte at edges and random places",
                   names[level], len);
            free(raw);
        }
    }
    buffer_is_zero_select(2);
    tap_ok(buffer_is_zero(NULL, 0), "an empty buffer is zero");
}

int main(void)
{
    test_basics();
    test_ranges();
    test_buffer_is_zero();
    tap_plan(tap_n);
    return tap_done();
}
