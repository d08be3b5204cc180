/* Helpers shared by strata-img commit and rebase (img-chain.c). */
#ifndef TOOLS_IMG_CHAIN_H
#define TOOLS_IMG_CHAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "block.h"

/* Coroutines copying at once, and the largest request each one makes. */
#define CHAIN_WORKERS 8
#define CHAIN_CHUNK (2u * 1024 * 1024) /* qemu-img rebase's IO_BUF_SIZE */

/* The node of bs's backing chain (below bs) that `name` designates, as
 * QEMU's bdrv_find_backing_image(): the name recorded in the layer above
 * it, or the same file once both are resolved relative to that layer's
 * directory and canonicalised.  NULL when none matches. */
struct blk_node *chain_find_backing_image(struct blk_node *bs,
                                          const char *name);

/* Wait as long as a rate limit in bytes/s (0: none) requires before
 * `bytes` more, given *sent bytes since start_ns (updated). */
void coroutine_fn chain_throttle(uint64_t rate_limit, uint64_t start_ns,
                                 uint64_t *sent, uint64_t bytes);

#endif
