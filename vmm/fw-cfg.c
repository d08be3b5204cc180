/* QEMU's fw_cfg interface (ports 0x510/0x511, no DMA), as much of it as
 * SeaBIOS needs: signature, CPU count, RAM size, the e820 map, the boot
 * order (first virtio disk) and "no boot menu". */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pci.h"
#include "vm.h"

enum {
    FW_CFG_SIGNATURE = 0x00, FW_CFG_ID = 0x01, FW_CFG_RAM_SIZE = 0x03,
    FW_CFG_NB_CPUS = 0x05, FW_CFG_MAX_CPUS = 0x0f, FW_CFG_FILE_DIR = 0x19,
    FW_CFG_FILE_FIRST = 0x20,
};

#define FW_MAX_ITEMS 16

struct fw_item {
    uint16_t key;
    char name[56];  /* "" for numbered items */
    uint8_t *data;
    uint32_t len;
};

struct fw_cfg {
    struct vm_region sel_r, data_r;
    struct fw_item items[FW_MAX_ITEMS];
    int n, nfiles;
    struct fw_item *cur;
    uint32_t off;
};

/* Add an item with a copy of data. */
static void fw_add(struct fw_cfg *f, uint16_t key, const char *name,
                   const void *data, uint32_t len)
{
    struct fw_item *it = &f->items[f->n++];

    it->key = key;
    snprintf(it->name, sizeof(it->name), "%s", name ? name : "");
    it->data = malloc(len ? len : 1);
    if (!it->data) {
        abort();
    }
    memcpy(it->data, data, len);
    it->len = len;
}

/* Add a named file (listed in the directory). */
static void fw_add_file(struct fw_cfg *f, const char *name, const void *data,
                        uint32_t len)
{
    fw_add(f, FW_CFG_FILE_FIRST + f->nfiles++, name, data, len);
}

/* 0x510: select an item (bit 15 = arch-local, bit 14 = write). */
static void sel_write(void *opaque, uint64_t off, const uint8_t *data,
                      unsigned size)
{
    struct fw_cfg *f = opaque;
    uint16_t key = data[0] | (size > 1 ? data[1] << 8 : 0);

    (void)off;
    f->cur = NULL;
    f->off = 0;
    for (int i = 0; i < f->n; i++) {
        if (f->items[i].key == (key & 0xbfff)) { /* 0x8000: arch-local */
            f->cur = &f->items[i];
        }
    }
}

/* 0x511: the selected item, byte by byte; zeros past its end. */
static void data_read(void *opaque, uint64_t off, uint8_t *data,
                      unsigned size)
{
    struct fw_cfg *f = opaque;

    (void)off;
    for (unsigned i = 0; i < size; i++) {
        data[i] = f->cur && f->off < f->cur->len ? f->cur->data[f->off++]
                                                : 0;
    }
}

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

int vm_fw_cfg_init(struct vm *vm)
{
    struct fw_cfg *f = calloc(1, sizeof(*f));
    uint32_t id = 1; /* traditional interface only */
    uint64_t ram = vm->ram_size;
    uint16_t ncpus = vm->ncpus, no_menu = 0;
    struct vm_e820 e[4];
    int ne;
    char order[64] = "";

    if (!f) {
        abort();
    }
    vm->fw_cfg = f;
    fw_add(f, FW_CFG_SIGNATURE, NULL, "QEMU", 4);
    fw_add(f, FW_CFG_ID, NULL, &id, 4);
    fw_add(f, FW_CFG_RAM_SIZE, NULL, &ram, 8);
    fw_add(f, FW_CFG_NB_CPUS, NULL, &ncpus, 2);
    fw_add(f, FW_CFG_MAX_CPUS, NULL, &ncpus, 2);
    ne = vm_e820(vm, e, 4, true);
    fw_add_file(f, "etc/e820", e, ne * sizeof(e[0]));
    fw_add_file(f, "etc/show-boot-menu", &no_menu, 2);
    /* the first virtio-blk device is the boot disk */
    for (int i = 0; i < vm->npci; i++) {
        if (vm->pci[i]->cfg[0] == 0xf4 && vm->pci[i]->cfg[2] == 0x42) {
            snprintf(order, sizeof(order), "/pci@i0cf8/scsi@%x/disk@0,0\n",
                     vm->pci[i]->slot);
            break;
        }
    }
    if (order[0]) {
        fw_add_file(f, "bootorder", order, strlen(order) + 1);
    }

    /* the directory: big-endian count, then size, select, name */
    uint8_t dir[4 + 64 * FW_MAX_ITEMS] = {0};
    be32(dir, f->nfiles);
    int k = 0;
    for (int i = 0; i < f->n; i++) {
        struct fw_item *it = &f->items[i];
        if (it->key < FW_CFG_FILE_FIRST) {
            continue;
        }
        uint8_t *d = dir + 4 + 64 * k++;
        be32(d, it->len);
        d[4] = it->key >> 8;
        d[5] = it->key & 0xff;
        memcpy(d + 8, it->name, 56);
    }
    fw_add(f, FW_CFG_FILE_DIR, NULL, dir, 4 + 64 * k);

    f->sel_r = (struct vm_region){.base = 0x510, .len = 1,
                                  .write = sel_write, .opaque = f};
    f->data_r = (struct vm_region){.base = 0x511, .len = 1,
                                   .read = data_read, .opaque = f};
    vm_bus_add(&vm->pio, &f->sel_r);
    vm_bus_add(&vm->pio, &f->data_r);
    return 0;
}

void vm_fw_cfg_free(struct vm *vm)
{
    struct fw_cfg *f = vm->fw_cfg;

    if (!f) {
        return;
    }
    for (int i = 0; i < f->n; i++) {
        free(f->items[i].data);
    }
    free(f);
    vm->fw_cfg = NULL;
}
