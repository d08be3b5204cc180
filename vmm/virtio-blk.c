/* virtio-blk over a libstrata node: every request is a coroutine on the
 * main thread's loop, so many are in flight at once. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "coroutine.h"
#include "iov.h"
#include "virtio.h"

#define VIRTIO_BLK_F_SEG_MAX (1ull << 2)
#define VIRTIO_BLK_F_RO (1ull << 5)
#define VIRTIO_BLK_F_BLK_SIZE (1ull << 6)
#define VIRTIO_BLK_F_FLUSH (1ull << 9)
#define VIRTIO_BLK_F_MQ (1ull << 12)
#define VIRTIO_BLK_F_DISCARD (1ull << 13)
#define VIRTIO_BLK_F_WRITE_ZEROES (1ull << 14)
#define VIRTIO_RING_F_INDIRECT_DESC (1ull << 28)

enum {
    T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11,
    T_WRITE_ZEROES = 13,
};
enum { S_OK = 0, S_IOERR = 1, S_UNSUPP = 2 };

#define CONFIG_LEN 60
#define MAX_DISCARD_SECTORS (32u << 11) /* 32 MiB per segment */
#define MAX_SEGS 254

struct vblk {
    struct virtio_dev *dev;
    struct blk_node *bs;
    bool readonly;
    char serial[21];
};

struct vblk_req {
    struct vblk *b;
    struct virtq *vq;
    unsigned generation;
    struct virtq_elem e;
};

static uint64_t rd(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    memcpy(&v, p, n);
    return v;
}

/* Copy len bytes at offset off of the element's readable buffers. */
static bool elem_read(const struct virtq_elem *e, size_t off, void *buf,
                      size_t len)
{
    uint8_t *out = buf;

    for (int i = 0; i < e->nout && len; i++) {
        size_t l = e->iov[i].iov_len;
        if (off >= l) {
            off -= l;
            continue;
        }
        size_t c = l - off < len ? l - off : len;
        memcpy(out, (uint8_t *)e->iov[i].iov_base + off, c);
        out += c;
        len -= c;
        off = 0;
    }
    return len == 0;
}

/* DISCARD / WRITE_ZEROES: a list of 16-byte segments after the header. */
static int coroutine_fn vblk_discard_zero(struct vblk_req *r,
                                          struct blk_node *bs, bool zero,
                                          size_t seg_off, size_t bytes)
{
    if (bytes == 0 || bytes % 16 || bytes / 16 > MAX_SEGS) {
        return S_UNSUPP;
    }
    for (size_t o = 0; o < bytes; o += 16) {
        uint8_t s[16];
        if (!elem_read(&r->e, seg_off + o, s, 16)) {
            return S_IOERR;
        }
        uint64_t sector = rd(s, 8);
        uint64_t n = rd(s + 8, 4);
        uint32_t flags = rd(s + 12, 4);
        if ((!zero && flags) || (zero && (flags & ~1u)) ||
            n > MAX_DISCARD_SECTORS) {
            return S_UNSUPP;
        }
        if (sector > bs->size >> 9 || n > (bs->size >> 9) - sector) {
            return S_IOERR;
        }
        int ret = zero ? blk_co_pwrite_zeroes(bs, sector << 9, n << 9,
                                              flags & 1 ? BLK_REQ_MAY_UNMAP
                                                        : 0)
                       : blk_co_discard(bs, sector << 9, n << 9);
        if (ret < 0 && !(ret == -ENOTSUP && !zero)) {
            return S_IOERR;
        }
    }
    return S_OK;
}

/* One request, start to finish; runs as a coroutine on the main loop. */
static void coroutine_fn vblk_co(void *opaque)
{
    struct vblk_req *r = opaque;
    struct vblk *b = r->b;
    struct virtq_elem *e = &r->e;
    uint8_t hdr[16];
    size_t total_out = 0, total_in = 0;
    uint32_t written = 0;
    int status = S_IOERR;

    for (int i = 0; i < e->nout; i++) {
        total_out += e->iov[i].iov_len;
    }
    for (int i = e->nout; i < e->nout + e->nin; i++) {
        total_in += e->iov[i].iov_len;
    }
    uint8_t *st = NULL;
    if (total_in >= 1) {
        struct iovec *last = &e->iov[e->nout + e->nin - 1];
        if (last->iov_len) {
            st = (uint8_t *)last->iov_base + last->iov_len - 1;
        }
    }
    if (!st || !elem_read(e, 0, hdr, 16)) {
        goto done; /* nowhere to put a status: just return the buffers */
    }
    uint32_t type = rd(hdr, 4);
    uint64_t sector = rd(hdr + 8, 8);
    size_t in_data = total_in - 1;
    size_t out_data = total_out - 16;

    switch (type) {
    case T_IN:
    case T_OUT: {
        size_t bytes = type == T_IN ? in_data : out_data;
        struct blk_iov q;
        if (type == T_OUT && b->readonly) {
            break;
        }
        if (bytes % 512 || sector > b->bs->size >> 9 ||
            bytes > b->bs->size - (sector << 9)) {
            break;
        }
        blk_iov_init(&q, e->nout + e->nin);
        if (type == T_IN) {
            for (int i = e->nout; i < e->nout + e->nin; i++) {
                blk_iov_add(&q, e->iov[i].iov_base, e->iov[i].iov_len);
            }
            /* the status byte is the last of the writable bytes */
            struct blk_iov q2;
            blk_iov_init(&q2, q.niov);
            blk_iov_concat(&q2, &q, 0, bytes);
            int ret = bytes ? blk_co_preadv(b->bs, sector << 9, bytes, &q2, 0)
                            : 0;
            blk_iov_destroy(&q2);
            status = ret < 0 ? S_IOERR : S_OK;
            written = bytes;
        } else {
            for (int i = 0; i < e->nout; i++) {
                blk_iov_add(&q, e->iov[i].iov_base, e->iov[i].iov_len);
            }
            struct blk_iov q2;
            blk_iov_init(&q2, q.niov);
            blk_iov_concat(&q2, &q, 16, bytes);
            int ret = bytes ? blk_co_pwritev(b->bs, sector << 9, bytes, &q2,
                                             0)
                            : 0;
            blk_iov_destroy(&q2);
            status = ret < 0 ? S_IOERR : S_OK;
        }
        blk_iov_destroy(&q);
        break;
    }
    case T_FLUSH:
        status = blk_co_flush(b->bs) < 0 ? S_IOERR : S_OK;
        break;
    case T_GET_ID: {
        char id[20] = {0};
        size_t n = strlen(b->serial);
        memcpy(id, b->serial, n > 20 ? 20 : n);
        size_t left = in_data < 20 ? in_data : 20;
        for (int i = e->nout; i < e->nout + e->nin && left; i++) {
            size_t c = e->iov[i].iov_len < left ? e->iov[i].iov_len : left;
            memcpy(e->iov[i].iov_base, id + (20 - left), c);
            left -= c;
            written += c;
        }
        status = S_OK;
        break;
    }
    case T_DISCARD:
    case T_WRITE_ZEROES:
        if (b->readonly) {
            break;
        }
        status = vblk_discard_zero(r, b->bs, type == T_WRITE_ZEROES, 16,
                                   out_data);
        break;
    default:
        status = S_UNSUPP;
    }
    *st = status;
    written++;

done:
    pthread_mutex_lock(&b->dev->vm->lock);
    if (r->generation == b->dev->generation) {
        virtq_push(r->vq, e, written);
    }
    b->dev->inflight--;
    pthread_mutex_unlock(&b->dev->vm->lock);
    free(r);
}

/* Start every request the driver queued, each in its own coroutine. */
static void vblk_notify(struct virtio_dev *d, struct virtq *vq)
{
    struct vblk *b = d->opaque;

    while (vq->enabled && (d->status & 4)) {
        struct vblk_req *r = malloc(sizeof(*r));
        if (!r) {
            abort();
        }
        if (!virtq_pop(vq, &r->e)) {
            free(r);
            return;
        }
        r->b = b;
        r->vq = vq;
        r->generation = d->generation;
        d->inflight++;
        /* the coroutine takes vm->lock when it completes: drop it while
         * the request starts (it may complete at once) */
        pthread_mutex_unlock(&d->vm->lock);
        coroutine_enter(coroutine_create(vblk_co, r));
        pthread_mutex_lock(&d->vm->lock);
    }
}

static void vblk_free(struct virtio_dev *d)
{
    free(d->opaque);
}

static const struct virtio_ops vblk_ops = {
    .notify = vblk_notify,
    .free = vblk_free,
};

int virtio_blk_create(struct vm *vm, struct blk_node *bs,
                      const struct vm_drive *drv, int index)
{
    struct vblk *b = calloc(1, sizeof(*b));
    uint64_t f = VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_BLK_SIZE |
                 VIRTIO_BLK_F_FLUSH | VIRTIO_RING_F_INDIRECT_DESC;

    if (!b) {
        abort();
    }
    b->bs = bs;
    b->readonly = drv->readonly || bs->read_only;
    if (drv->serial) {
        snprintf(b->serial, sizeof(b->serial), "%s", drv->serial);
    } else {
        snprintf(b->serial, sizeof(b->serial), "strata%d", index);
    }
    int nq = drv->num_queues > 1 ? drv->num_queues : 1;
    if (nq > 1) {
        f |= VIRTIO_BLK_F_MQ;
    }
    if (b->readonly) {
        f |= VIRTIO_BLK_F_RO;
    } else {
        f |= VIRTIO_BLK_F_DISCARD | VIRTIO_BLK_F_WRITE_ZEROES;
    }
    b->dev = virtio_pci_create(vm, 2, 0x01800000, nq, f, CONFIG_LEN,
                               &vblk_ops, b);
    if (!b->dev) {
        free(b);
        vm_error("too many PCI devices");
        return -ENOSPC;
    }
    uint8_t *c = b->dev->config;
    uint64_t cap = bs->size >> 9;
    uint32_t v;
    memcpy(c, &cap, 8);
    v = MAX_SEGS;
    memcpy(c + 12, &v, 4);     /* seg_max */
    v = 512;
    memcpy(c + 20, &v, 4);     /* blk_size */
    v = MAX_DISCARD_SECTORS;
    memcpy(c + 36, &v, 4);     /* max_discard_sectors */
    memcpy(c + 48, &v, 4);     /* max_write_zeroes_sectors */
    v = MAX_SEGS;
    memcpy(c + 40, &v, 4);     /* max_discard_seg */
    memcpy(c + 52, &v, 4);     /* max_write_zeroes_seg */
    v = 1;
    memcpy(c + 44, &v, 4);     /* discard_sector_alignment */
    c[56] = 1;                 /* write_zeroes_may_unmap */
    uint16_t q16 = nq;
    memcpy(c + 34, &q16, 2);   /* num_queues */
    return 0;
}
