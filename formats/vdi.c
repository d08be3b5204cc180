/* The vdi format (VirtualBox Disk Image, version 1.1): static and dynamic
 * images and differencing images (VirtualBox snapshots).
 *
 * A header of 512 bytes, a block map of 32-bit entries (one per block of
 * the virtual disk, the index of the data block that holds it) and the
 * data blocks.  A differencing image names its parent only by UUID
 * (uuid_link = the parent's uuid_image); the parent is the backing node,
 * found next to the image or given with backing=<file>.  Never-written
 * blocks of a differencing image read from the parent, discarded ones
 * read as zeroes.  Creation and the check live in vdi-create.c and
 * vdi-check.c. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers.h"
#include "fmt-util.h"
#include "util.h"
#include "vdi.h"

static int vdi_probe(const uint8_t *buf, size_t len, const char *filename)
{
    if (len >= VDI_HEADER_SIZE &&
        vdi_ld32(buf + VDI_OFF_SIGNATURE) == VDI_SIGNATURE) {
        return 100;
    }
    return 0;
}

/* Is the UUID all zeroes (no link)? */
static bool uuid_is_null(const uint8_t *u)
{
    static const uint8_t zero[16];
    return memcmp(u, zero, 16) == 0;
}

/* UUID text as VirtualBox shows it (the first three fields are stored
 * little endian). */
static void uuid_unparse(const uint8_t *u, char out[37])
{
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x", u[3], u[2], u[1], u[0], u[5], u[4],
             u[7], u[6], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
             u[15]);
}

/* Look next to the image for the .vdi whose uuid_image is `link`.
 * Returns 1 and the file's name (relative to the image's directory) in
 * *name, 0 when there is none. */
static int find_parent(const char *filename, const uint8_t *link, char **name)
{
    const char *slash = strrchr(filename, '/');
    char *dir = slash ? xasprintf("%.*s", (int)(slash - filename + 1),
                                  filename)
                      : xstrdup("./");
    struct stat self, st;
    struct dirent *de;
    DIR *d;
    int found = 0;

    *name = NULL;
    if (strstr(filename, "://") || stat(filename, &self) < 0) {
        free(dir);
        return 0;
    }
    d = opendir(dir);
    if (!d) {
        free(dir);
        return 0;
    }
    while (!found && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        uint8_t hdr[VDI_HEADER_SIZE];
        if (n < 5 || strcasecmp(de->d_name + n - 4, ".vdi") != 0) {
            continue;
        }
        char *path = xasprintf("%s%s", dir, de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
            !(st.st_dev == self.st_dev && st.st_ino == self.st_ino) &&
            pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr) &&
            vdi_ld32(hdr + VDI_OFF_SIGNATURE) == VDI_SIGNATURE &&
            memcmp(hdr + VDI_OFF_UUID_IMAGE, link, 16) == 0) {
            *name = xstrdup(de->d_name);
            found = 1;
        }
        if (fd >= 0) {
            close(fd);
        }
        free(path);
    }
    closedir(d);
    free(dir);
    return found;
}

/* QEMU's header checks, with its messages, and the bounds a hostile
 * header must not get past. */
static int parse_header(struct blk_node *bs, struct strata_error **errp)
{
    struct vdi_state *s = bs->opaque;
    const uint8_t *h = s->header;
    uint32_t sig = vdi_ld32(h + VDI_OFF_SIGNATURE);
    uint32_t version = vdi_ld32(h + VDI_OFF_VERSION);
    uint32_t sector_size = vdi_ld32(h + VDI_OFF_SECTOR_SIZE);
    uint64_t disk_size = vdi_ld64(h + VDI_OFF_DISK_SIZE);
    uint64_t max = (uint64_t)VDI_BLOCKS_IN_IMAGE_MAX * VDI_DEFAULT_BLOCK_SIZE;

    s->offset_bmap = vdi_ld32(h + VDI_OFF_BMAP);
    s->offset_data = vdi_ld32(h + VDI_OFF_DATA);
    s->block_size = vdi_ld32(h + VDI_OFF_BLOCK_SIZE);
    s->block_extra = vdi_ld32(h + VDI_OFF_BLOCK_EXTRA);
    s->blocks_in_image = vdi_ld32(h + VDI_OFF_BLOCKS_IN_IMAGE);
    s->image_type = vdi_ld32(h + VDI_OFF_IMAGE_TYPE);

    if (disk_size > max) {
        return error_setg(errp, -ENOTSUP, "Unsupported VDI image size (size "
                          "is 0x%llx, max supported is 0x%llx)",
                          (unsigned long long)disk_size,
                          (unsigned long long)max);
    }
    /* VBoxManage convertfromraw writes odd sizes: round up, as QEMU */
    s->disk_size = ROUND_UP(disk_size, BLK_SECTOR_SIZE);
    if (sig != VDI_SIGNATURE) {
        return error_setg(errp, -EINVAL, "Image not in VDI format (bad "
                          "signature %08x)", sig);
    }
    if (version != VDI_VERSION_1_1) {
        return error_setg(errp, -ENOTSUP, "unsupported VDI image (version "
                          "%u.%u)", version >> 16, version & 0xffff);
    }
    if (s->offset_bmap % BLK_SECTOR_SIZE) {
        return error_setg(errp, -ENOTSUP, "unsupported VDI image (unaligned "
                          "block map offset 0x%llx)",
                          (unsigned long long)s->offset_bmap);
    }
    if (s->offset_data % BLK_SECTOR_SIZE) {
        return error_setg(errp, -ENOTSUP, "unsupported VDI image (unaligned "
                          "data offset 0x%llx)",
                          (unsigned long long)s->offset_data);
    }
    if (sector_size != BLK_SECTOR_SIZE) {
        return error_setg(errp, -ENOTSUP, "unsupported VDI image (sector "
                          "size %u is not %u)", sector_size, BLK_SECTOR_SIZE);
    }
    if (s->block_size < BLK_SECTOR_SIZE || s->block_size > (1u << 28) ||
        (s->block_size & (s->block_size - 1))) {
        return error_setg(errp, -ENOTSUP, "unsupported VDI image (block "
                          "size %u)", s->block_size);
    }
    if (s->block_extra % BLK_SECTOR_SIZE || s->block_extra > (1u << 28)) {
        return error_setg(errp, -ENOTSUP, "unsupported VDI image (block "
                          "extra data %u)", s->block_extra);
    }
    if (s->disk_size > (uint64_t)s->blocks_in_image * s->block_size) {
        return error_setg(errp, -ENOTSUP, "unsupported VDI image (disk size "
                          "%llu, image bitmap has room for %llu)",
                          (unsigned long long)s->disk_size,
                          (unsigned long long)s->blocks_in_image *
                              s->block_size);
    }
    if (s->blocks_in_image > VDI_BLOCKS_IN_IMAGE_MAX) {
        return error_setg(errp, -ENOTSUP, "unsupported VDI image (too many "
                          "blocks %u, max is %u)", s->blocks_in_image,
                          VDI_BLOCKS_IN_IMAGE_MAX);
    }
    s->is_diff = !uuid_is_null(h + VDI_OFF_UUID_LINK);
    return 0;
}

/* Read the block map (with the padding of its last sector, which is
 * written back as found); refuse one the file cannot hold (truncated
 * images, absurd block counts). */
static int read_bmap(struct blk_node *bs, struct strata_error **errp)
{
    struct vdi_state *s = bs->opaque;
    uint64_t bytes = (uint64_t)s->blocks_in_image * 4;
    uint64_t rbytes = ROUND_UP(bytes, BLK_SECTOR_SIZE);
    uint32_t hdr_alloc;
    uint64_t max_e = 0;
    uint32_t count = 0;
    int ret;

    if (s->offset_bmap < VDI_HEADER_SIZE && bytes) {
        return error_setg(errp, -EINVAL, "Corrupt VDI image: the block map "
                          "overlaps the header");
    }
    if (s->offset_bmap + bytes > bs->file->size) {
        return error_setg(errp, -EINVAL, "Corrupt VDI image: the block map "
                          "(%llu bytes at 0x%llx) is cut short by the end of "
                          "the file (%llu bytes)", (unsigned long long)bytes,
                          (unsigned long long)s->offset_bmap,
                          (unsigned long long)bs->file->size);
    }
    if (bytes && s->offset_data < s->offset_bmap + rbytes) {
        return error_setg(errp, -EINVAL, "Corrupt VDI image: the data area "
                          "overlaps the block map");
    }
    s->bmap = xzalloc(rbytes);
    rbytes = MIN(rbytes, bs->file->size - s->offset_bmap);
    if (rbytes) {
        ret = blk_pread(bs->file, s->offset_bmap, rbytes, s->bmap, 0);
        if (ret < 0) {
            return error_setg_errno(errp, ret, "Could not read the VDI block "
                                    "map");
        }
    }
    for (uint64_t i = 0; i < ROUND_UP(bytes, BLK_SECTOR_SIZE) / 4; i++) {
        s->bmap[i] = vdi_ld32((uint8_t *)&s->bmap[i]);
    }
    for (uint32_t i = 0; i < s->blocks_in_image; i++) {
        uint32_t e = s->bmap[i];
        if (VDI_IS_ALLOCATED(e) && e < s->blocks_in_image) {
            count++;
            max_e = MAX(max_e, (uint64_t)e + 1);
        }
    }
    /* allocate past every block in use, even when the header's count is
     * stale (a crash between the map and the header update) */
    hdr_alloc = vdi_ld32(s->header + VDI_OFF_BLOCKS_ALLOCATED);
    s->next_free = (uint32_t)MAX(max_e, hdr_alloc <= s->blocks_in_image
                                            ? hdr_alloc : 0);
    s->blocks_allocated = count;
    return 0;
}

/* Find and open the parent of a differencing image: backing=<file>
 * names it, backing="" opens none, else a .vdi next to the image whose
 * UUID matches. */
static int open_parent(struct blk_node *bs, struct blk_opts *opts,
                       struct strata_error **errp)
{
    struct vdi_state *s = bs->opaque;
    const uint8_t *link = s->header + VDI_OFF_UUID_LINK;
    const char *backing = opts_get(opts, "backing");
    char uuid[37], *name = NULL;
    int ret;

    if (backing && (!backing[0] || strcmp(backing, "null") == 0)) {
        return 0;
    }
    uuid_unparse(link, uuid);
    if (backing) {
        bs->backing_file = xstrdup(backing);
    } else if (find_parent(bs->filename, link, &name)) {
        bs->backing_file = name;
    } else if (bs->flags & BLK_O_NO_BACKING) {
        return 0;
    } else {
        return error_setg(errp, -ENOENT, "Could not find the parent of the "
                          "differencing image '%s' (a .vdi with UUID %s next "
                          "to it); name it with backing=<file>", bs->filename,
                          uuid);
    }
    if (!bs->backing_format) {
        bs->backing_format = xstrdup("vdi");
    }
    ret = blk_open_backing(bs, errp);
    if (ret < 0 || !bs->backing) {
        return ret;
    }
    if (bs->backing->drv != &blk_drv_vdi ||
        memcmp(((struct vdi_state *)bs->backing->opaque)->header +
                   VDI_OFF_UUID_IMAGE, link, 16) != 0) {
        return error_setg(errp, -EINVAL, "'%s' is not the parent of the "
                          "differencing image '%s' (its UUID is not %s)",
                          bs->backing_file, bs->filename, uuid);
    }
    return 0;
}

/* Free the block map. */
static void vdi_close(struct blk_node *bs)
{
    struct vdi_state *s = bs->opaque;

    free(s->bmap);
    s->bmap = NULL;
}

/* Header, block map, and for a differencing image its parent. */
static int vdi_open(struct blk_node *bs, struct blk_opts *opts,
                    struct strata_error **errp)
{
    struct vdi_state *s = bs->opaque;
    int ret;

    co_mutex_init(&s->alloc_lock);
    ret = blk_pread(bs->file, 0, VDI_HEADER_SIZE, s->header, 0);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Could not read the VDI header");
    }
    ret = parse_header(bs, errp);
    if (ret >= 0) {
        ret = read_bmap(bs, errp);
    }
    if (ret >= 0 && s->is_diff) {
        ret = open_parent(bs, opts, errp);
    } else if (ret >= 0 && opts_has(opts, "backing")) {
        const char *b = opts_get(opts, "backing");
        if (b[0] && strcmp(b, "null") != 0) {
            ret = error_setg(errp, -EINVAL, "Option 'backing' only applies "
                             "to differencing vdi images");
        }
    }
    if (ret < 0) {
        vdi_close(bs);
        return ret;
    }
    bs->size = s->disk_size;
    bs->limits.request_alignment = 1;
    bs->limits.opt_transfer = s->block_size;
    return 0;
}

/* ---- the data path ---- */

/* Length of the run of blocks from `block` (at most `bytes` from byte
 * `in_block` of it) that read alike: consecutive data blocks stored one
 * after the other, or unallocated entries of one kind. */
static uint64_t run_length(struct vdi_state *s, uint32_t block,
                           uint32_t in_block, uint64_t bytes)
{
    uint32_t e0 = s->bmap[block];
    uint64_t n = MIN(bytes, (uint64_t)s->block_size - in_block);
    uint32_t step = VDI_IS_ALLOCATED(e0) && !s->block_extra ? 1 : 0;

    if (VDI_IS_ALLOCATED(e0) && s->block_extra) {
        return n;
    }
    for (uint32_t b = block + 1, i = 1; n < bytes && b < s->blocks_in_image;
         b++, i++) {
        uint32_t e = s->bmap[b];
        if (step ? e >= s->blocks_in_image || e != e0 + i
                 : VDI_IS_ALLOCATED(e) || e != e0) {
            break;
        }
        n += MIN(bytes - n, (uint64_t)s->block_size);
    }
    return n;
}

/* Is map entry e usable as a data block index? */
static int check_entry(struct blk_node *bs, uint32_t e)
{
    struct vdi_state *s = bs->opaque;

    return e < s->blocks_in_image ? 0 : -EIO; /* corrupt map: check -r */
}

/* Read run by run: data blocks from the file, the rest from the parent
 * or as zeroes. */
static int coroutine_fn vdi_preadv(struct blk_node *bs, uint64_t offset,
                                   uint64_t bytes, struct blk_iov *qiov,
                                   unsigned flags)
{
    struct vdi_state *s = bs->opaque;
    struct blk_iov part;
    uint64_t done = 0;
    int ret = 0;

    blk_iov_init(&part, qiov->niov);
    while (done < bytes && ret >= 0) {
        uint32_t block = (uint32_t)(offset / s->block_size);
        uint32_t in_block = (uint32_t)(offset % s->block_size);
        uint32_t e = s->bmap[block];
        uint64_t n = run_length(s, block, in_block, bytes - done);

        blk_iov_reset(&part);
        blk_iov_concat(&part, qiov, done, n);
        ret = VDI_IS_ALLOCATED(e) ? check_entry(bs, e) : 0;
        if (ret >= 0) {
            ret = fmt_read_run(bs, VDI_IS_ALLOCATED(e),
                               vdi_block_offset(s, e) + in_block,
                               e == VDI_UNALLOCATED && s->is_diff, offset, n,
                               &part);
        }
        offset += n;
        done += n;
    }
    blk_iov_destroy(&part);
    return ret;
}

/* Allocate a data block for `block` and write [in_block, in_block+n)
 * of it from qiov[done...]; the rest comes from the parent or is zero.
 * Crash order: the data, then (after a flush) the map and the header. */
static int coroutine_fn alloc_block(struct blk_node *bs, uint32_t block,
                                    uint32_t in_block, uint64_t n,
                                    struct blk_iov *qiov, uint64_t done)
{
    struct vdi_state *s = bs->opaque;
    uint32_t bsz = s->block_size, e = s->bmap[block];
    uint64_t vstart = (uint64_t)block * bsz;
    uint8_t *buf = NULL;
    struct blk_iov part;
    int ret;

    if (s->next_free >= s->blocks_in_image) {
        return -EIO; /* the data area is full: a corrupt map */
    }
    blk_iov_init(&part, qiov->niov);
    if (n == bsz) {
        blk_iov_concat(&part, qiov, done, n);
    } else {
        buf = xzalloc(bsz);
        if (e == VDI_UNALLOCATED && s->is_diff) {
            struct blk_iov b;
            blk_iov_init_buf(&b, buf, bsz);
            ret = blk_co_read_backing(bs, vstart, bsz, &b);
            if (ret < 0) {
                goto out;
            }
        }
        blk_iov_to_buf(qiov, done, buf + in_block, n);
        blk_iov_add(&part, buf, bsz);
    }
    e = s->next_free;
    ret = blk_co_pwritev(bs->file, vdi_block_offset(s, e), bsz, &part, 0);
    if (ret >= 0) {
        ret = blk_co_flush(bs->file);
    }
    if (ret < 0) {
        goto out;
    }
    s->next_free++;
    s->blocks_allocated++;
    s->bmap[block] = e;
    ret = vdi_write_metadata(bs, block, block);
out:
    blk_iov_destroy(&part);
    free(buf);
    return ret;
}

/* Write into allocated blocks in place; allocate the others one by one
 * under alloc_lock (checked again once it is held). */
static int coroutine_fn vdi_pwritev(struct blk_node *bs, uint64_t offset,
                                    uint64_t bytes, struct blk_iov *qiov,
                                    unsigned flags)
{
    struct vdi_state *s = bs->opaque;
    struct blk_iov part;
    uint64_t done = 0;
    int ret = 0;

    blk_iov_init(&part, qiov->niov);
    while (done < bytes && ret >= 0) {
        uint32_t block = (uint32_t)(offset / s->block_size);
        uint32_t in_block = (uint32_t)(offset % s->block_size);
        uint64_t n;

        if (!VDI_IS_ALLOCATED(s->bmap[block])) {
            n = MIN(bytes - done, (uint64_t)s->block_size - in_block);
            co_mutex_lock(&s->alloc_lock);
            if (!VDI_IS_ALLOCATED(s->bmap[block])) {
                ret = alloc_block(bs, block, in_block, n, qiov, done);
                co_mutex_unlock(&s->alloc_lock);
                offset += n;
                done += n;
                continue;
            }
            co_mutex_unlock(&s->alloc_lock); /* someone else allocated it */
        }
        n = run_length(s, block, in_block, bytes - done);
        ret = check_entry(bs, s->bmap[block]);
        if (ret >= 0) {
            blk_iov_reset(&part);
            blk_iov_concat(&part, qiov, done, n);
            ret = blk_co_pwritev(bs->file, vdi_block_offset(s, s->bmap[block])
                                 + in_block, n, &part, flags);
        }
        offset += n;
        done += n;
    }
    blk_iov_destroy(&part);
    return ret;
}

int coroutine_fn vdi_write_metadata(struct blk_node *bs, uint32_t first,
                                    uint32_t last)
{
    struct vdi_state *s = bs->opaque;
    uint32_t per = BLK_SECTOR_SIZE / 4;
    uint32_t s0 = first / per, s1 = last / per;
    uint64_t len = (uint64_t)(s1 - s0 + 1) * BLK_SECTOR_SIZE;
    uint8_t *buf = xmalloc(len);
    int ret;

    for (uint64_t i = 0; i < len / 4; i++) {
        vdi_st32(buf + i * 4, s->bmap[(uint64_t)s0 * per + i]);
    }
    /* whole sectors: the data area starts past the map's last one */
    uint64_t at = s->offset_bmap + (uint64_t)s0 * BLK_SECTOR_SIZE;
    ret = blk_co_pwrite(bs->file, at, len, buf, 0);
    free(buf);
    if (ret < 0) {
        return ret;
    }
    vdi_st32(s->header + VDI_OFF_BLOCKS_ALLOCATED, s->blocks_allocated);
    return blk_co_pwrite(bs->file, 0, VDI_HEADER_SIZE, s->header, 0);
}

/* Allocated blocks map to the file; unallocated ones read as zero, or
 * from the parent when never written in a differencing image. */
static int coroutine_fn vdi_block_status(struct blk_node *bs, uint64_t offset,
                                         uint64_t bytes, uint64_t *pnum,
                                         uint64_t *map,
                                         struct blk_node **file)
{
    struct vdi_state *s = bs->opaque;
    uint32_t block = (uint32_t)(offset / s->block_size);
    uint32_t in_block = (uint32_t)(offset % s->block_size);
    uint32_t e = s->bmap[block];

    *pnum = run_length(s, block, in_block, bytes);
    if (!VDI_IS_ALLOCATED(e)) {
        return e == VDI_UNALLOCATED && s->is_diff ? 0 : BLK_STATUS_ZERO;
    }
    if (check_entry(bs, e) < 0) {
        return -EIO;
    }
    *map = vdi_block_offset(s, e) + in_block;
    *file = bs->file;
    if (s->image_type == VDI_TYPE_STATIC) {
        /* as QEMU: holes of the file make the data read as zero */
        uint64_t n2;
        int ret = blk_co_block_status(bs->file, *map, *pnum, &n2, NULL,
                                      NULL);
        if (ret < 0) {
            return ret;
        }
        if (n2 == 0) {
            return BLK_STATUS_DATA | BLK_STATUS_ZERO |
                   BLK_STATUS_OFFSET_VALID; /* past the end of the file */
        }
        *pnum = n2;
        return BLK_STATUS_DATA | BLK_STATUS_OFFSET_VALID |
               (ret & BLK_STATUS_ZERO);
    }
    return BLK_STATUS_DATA | BLK_STATUS_OFFSET_VALID;
}

/* cluster_size is the block size, as QEMU reports it. */
static int vdi_get_info(struct blk_node *bs, struct blk_info *info)
{
    struct vdi_state *s = bs->opaque;

    info->cluster_size = s->block_size;
    return 0;
}

/* A new dynamic image reads as zeroes; a static one if its file does. */
static bool vdi_has_zero_init(struct blk_node *bs)
{
    struct vdi_state *s = bs->opaque;

    if (s->is_diff) {
        return false; /* it starts as its parent's content */
    }
    if (s->image_type == VDI_TYPE_STATIC) {
        return blk_has_zero_init(bs->file);
    }
    return true;
}

const struct blk_driver blk_drv_vdi = {
    .name = "vdi",
    .kind = BLK_KIND_FORMAT,
    .state_size = sizeof(struct vdi_state),
    .probe = vdi_probe,
    .open = vdi_open,
    .close = vdi_close,
    .create = vdi_create,
    .create_opts = vdi_create_opts,
    .preadv = vdi_preadv,
    .pwritev = vdi_pwritev,
    .block_status = vdi_block_status,
    .has_zero_init = vdi_has_zero_init,
    .get_info = vdi_get_info,
    .check = vdi_co_check,
};
