/* Every built-in driver; the table lives in driver.c. */
#ifndef BLOCK_DRIVERS_H
#define BLOCK_DRIVERS_H

#include "block.h"

extern const struct blk_driver blk_drv_file;
extern const struct blk_driver blk_drv_null;
extern const struct blk_driver blk_drv_fault;
extern const struct blk_driver blk_drv_raw;
extern const struct blk_driver blk_drv_qcow2;
extern const struct blk_driver blk_drv_vmdk;
extern const struct blk_driver blk_drv_ova;
extern const struct blk_driver blk_drv_vdi;
extern const struct blk_driver blk_drv_vpc;
extern const struct blk_driver blk_drv_vhdx;
extern const struct blk_driver blk_drv_luks;

#endif
