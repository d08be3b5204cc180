/* Small helpers shared by the VirtualBox and Hyper-V format drivers. */
#ifndef FORMATS_FMT_UTIL_H
#define FORMATS_FMT_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "block.h"

/* Fill `part` (n bytes of the guest range at `offset`) the way a block-map
 * format reads one run: from bs->file at `host` when the data is present,
 * else from the backing chain when `from_backing`, else with zeroes. */
int coroutine_fn fmt_read_run(struct blk_node *bs, bool present,
                              uint64_t host, bool from_backing,
                              uint64_t offset, uint64_t n,
                              struct blk_iov *part);

#endif
