/* virtio-rng: the entropy device, filled from getrandom(). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "virtio.h"

static void vrng_notify(struct virtio_dev *d, struct virtq *vq)
{
    struct virtq_elem *e = d->opaque;

    while (virtq_pop(vq, e)) {
        uint32_t n = 0;
        for (int i = e->nout; i < e->nout + e->nin; i++) {
            ssize_t r = getrandom(e->iov[i].iov_base, e->iov[i].iov_len,
                                  GRND_NONBLOCK);
            if (r <= 0) {
                break;
            }
            n += r;
            if ((size_t)r < e->iov[i].iov_len) {
                break;
            }
        }
        virtq_push(vq, e, n);
    }
}

static void vrng_free(struct virtio_dev *d)
{
    free(d->opaque);
}

static const struct virtio_ops vrng_ops = {
    .notify = vrng_notify,
    .free = vrng_free,
};

int virtio_rng_create(struct vm *vm)
{
    struct virtq_elem *e = malloc(sizeof(*e));

    if (!e) {
        abort();
    }
    if (!virtio_pci_create(vm, 4, 0x00ff0000, 1, 0, 0, &vrng_ops, e)) {
        free(e);
        vm_error("too many PCI devices");
        return -ENOSPC;
    }
    return 0;
}
