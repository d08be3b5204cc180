/* The snapshot table as qemu-img prints it (bdrv_snapshot_dump), shared by
 * `snapshot -l` and `info`. */
#ifndef TOOLS_IMG_SNAPSHOT_H
#define TOOLS_IMG_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

/* The column titles, without a newline. */
void img_snapshot_dump_header(void);
/* One snapshot's line, without a newline; icount UINT64_MAX: none. */
void img_snapshot_dump(const char *id, const char *name,
                       uint64_t vm_state_size, uint32_t date_sec,
                       uint64_t vm_clock_nsec, uint64_t icount);

/* qemu-img's -l snapshot_param: "snapshot.id=X,snapshot.name=Y" (QEMU's
 * internal_snapshot_opts) or a bare id or name. */
struct img_snapshot_param {
    bool opts;              /* the snapshot.* form */
    char *id, *name;        /* its values (NULL: not given) */
    const char *id_or_name; /* the bare form */
};
struct blk_node;
/* Parse one -l into *p (zeroed before the first; repeated -l options
 * accumulate as in qemu-img); -1 after printing QEMU's messages. */
int img_parse_snapshot_param(const char *arg, struct img_snapshot_param *p);
void img_snapshot_param_free(struct img_snapshot_param *p);
/* Make the read-only node read the snapshot (QEMU's load_tmp); prints
 * "Failed to load snapshot: ..." and returns -errno on failure. */
int img_snapshot_load_tmp(struct blk_node *bs,
                          const struct img_snapshot_param *p);

#endif
