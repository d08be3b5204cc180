/* qcow2 with an external data file (incompatible feature bit 2): guest
 * data lives in a separate file named by a header extension. */
#include "config.h"

#include <errno.h>

#include "qcow2.h"

/* Placeholder until external data files land: QEMU's refusals for
 * images without one. */
int coroutine_fn qcow2_datafile_amend(struct blk_node *bs,
                                      const char *data_file,
                                      int data_file_raw, bool apply,
                                      struct strata_error **errp)
{
    (void)bs;
    if (apply) {
        return 0;
    }
    if (data_file) {
        return error_setg(errp, -EINVAL, "data-file can only be set for "
                          "images that use an external data file");
    }
    if (data_file_raw > 0) {
        return error_setg(errp, -EINVAL, "data-file-raw cannot be set on "
                          "existing images");
    }
    return 0;
}
