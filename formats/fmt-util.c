/* Helpers shared by the block-map format drivers (vdi, vhd). */
#include "config.h"

#include "fmt-util.h"
#include "iov.h"

int coroutine_fn fmt_read_run(struct blk_node *bs, bool present,
                              uint64_t host, bool from_backing,
                              uint64_t offset, uint64_t n,
                              struct blk_iov *part)
{
    if (present) {
        return blk_co_preadv(bs->file, host, n, part, 0);
    }
    if (from_backing) {
        return blk_co_read_backing(bs, offset, n, part);
    }
    blk_iov_memset(part, 0, 0, n);
    return 0;
}
