/* The snapshot table as qemu-img prints it (bdrv_snapshot_dump), shared by
 * `snapshot -l` and `info`. */
#ifndef TOOLS_IMG_SNAPSHOT_H
#define TOOLS_IMG_SNAPSHOT_H

#include <stdint.h>

/* The column titles, without a newline. */
void img_snapshot_dump_header(void);
/* One snapshot's line, without a newline; icount UINT64_MAX: none. */
void img_snapshot_dump(const char *id, const char *name,
                       uint64_t vm_state_size, uint32_t date_sec,
                       uint64_t vm_clock_nsec, uint64_t icount);

#endif
