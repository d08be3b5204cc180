/* The qcow2 header: reading and validating it against hostile values
 * (with QEMU's messages), its extensions (kept when unknown), the snapshot
 * table as far as this version needs it, and writing it back.  Opening
 * happens here too, in the order QEMU checks things. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"
#include "util.h"

/* The header as read, in host byte order. */
struct qcow2_header {
    uint32_t magic, version;
    uint64_t backing_file_offset;
    uint32_t backing_file_size, cluster_bits;
    uint64_t size;
    uint32_t crypt_method, l1_size;
    uint64_t l1_table_offset, refcount_table_offset;
    uint32_t refcount_table_clusters, nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t incompatible_features, compatible_features, autoclear_features;
    uint32_t refcount_order, header_length;
    uint8_t compression_type;
};

/* The fixed fields; v2 gets the v3 defaults. */
static void parse_header(const uint8_t *b, struct qcow2_header *h)
{
    memset(h, 0, sizeof(*h));
    h->magic = qcow2_ld32(b);
    h->version = qcow2_ld32(b + 4);
    h->backing_file_offset = qcow2_ld64(b + 8);
    h->backing_file_size = qcow2_ld32(b + 16);
    h->cluster_bits = qcow2_ld32(b + 20);
    h->size = qcow2_ld64(b + 24);
    h->crypt_method = qcow2_ld32(b + 32);
    h->l1_size = qcow2_ld32(b + 36);
    h->l1_table_offset = qcow2_ld64(b + 40);
    h->refcount_table_offset = qcow2_ld64(b + 48);
    h->refcount_table_clusters = qcow2_ld32(b + 56);
    h->nb_snapshots = qcow2_ld32(b + 60);
    h->snapshots_offset = qcow2_ld64(b + 64);
    if (h->version == 2) {
        h->refcount_order = 4;
        h->header_length = QCOW2_V2_HEADER_SIZE;
    } else {
        h->incompatible_features = qcow2_ld64(b + 72);
        h->compatible_features = qcow2_ld64(b + 80);
        h->autoclear_features = qcow2_ld64(b + 88);
        h->refcount_order = qcow2_ld32(b + 96);
        h->header_length = qcow2_ld32(b + 100);
        h->compression_type = b[QCOW2_HDR_COMPRESSION_TYPE];
    }
}

/* QEMU's sanity check of a table: size limit, alignment, no overflow.
 * The table must also lie inside the file. */
static int validate_table(struct blk_node *bs, uint64_t offset,
                          uint64_t entries, uint64_t entry_len,
                          uint64_t max_bytes, bool check_eof,
                          const char *name, struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;

    if (entries > max_bytes / entry_len) {
        return error_setg(errp, -EFBIG, "%s too large", name);
    }
    if ((uint64_t)INT64_MAX - entries * entry_len < offset ||
        qcow2_offset_into_cluster(s, offset)) {
        return error_setg(errp, -EINVAL, "%s offset invalid", name);
    }
    if (check_eof && entries && offset + entries * entry_len > bs->file->size) {
        return error_setg(errp, -EINVAL, "%s (offset %#llx, %llu bytes) lies "
                          "past the end of the image file (%llu bytes)", name,
                          (unsigned long long)offset,
                          (unsigned long long)(entries * entry_len),
                          (unsigned long long)bs->file->size);
    }
    return 0;
}

/* The snapshot table's place and size, as QEMU validates them. */
static int validate_sn_table(struct blk_node *bs, uint64_t offset,
                             uint64_t entries, const char *name,
                             struct strata_error **errp)
{
    return validate_table(bs, offset, entries, QCOW2_SNAPSHOT_HEADER_SIZE,
                          (uint64_t)QCOW2_SNAPSHOT_HEADER_SIZE *
                              QCOW2_MAX_SNAPSHOTS,
                          false, name, errp);
}

/* ---- header extensions ---- */

/* Walk the extensions between the header and end; keep what we need and
 * (when keep) the unknown ones.  feature_table receives a copy of the
 * feature name table when asked for. */
static int coroutine_fn read_extensions(struct blk_node *bs, uint64_t start,
                                        uint64_t end, bool keep,
                                        uint8_t **feature_table,
                                        uint32_t *feature_len,
                                        struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    struct qcow2_unknown_ext **tail = &s->unknown_exts;
    uint64_t offset = start;
    uint8_t hdr[8];
    int ret;

    while (offset < end) {
        uint32_t magic, len;
        uint8_t *data;

        ret = blk_co_pread(bs->file, offset, sizeof(hdr), hdr, 0);
        if (ret < 0) {
            return error_setg_errno(errp, ret, "qcow2_read_extension: ERROR: "
                                    "pread fail from offset %llu",
                                    (unsigned long long)offset);
        }
        magic = qcow2_ld32(hdr);
        len = qcow2_ld32(hdr + 4);
        offset += sizeof(hdr);
        if (offset > end || len > end - offset) {
            return error_setg(errp, -EINVAL, "Header extension too large");
        }
        if (magic == QCOW2_EXT_END) {
            return 0;
        }
        data = xmalloc(len + 1);
        ret = blk_co_pread(bs->file, offset, len, data, 0);
        if (ret < 0) {
            free(data);
            return error_setg_errno(errp, ret, "Could not read qcow2 header "
                                    "extension %#x", magic);
        }
        data[len] = '\0';
        switch (magic) {
        case QCOW2_EXT_BACKING_FORMAT:
            if (len > QCOW2_MAX_FORMAT_NAME) {
                free(data);
                return error_setg(errp, -EINVAL, "ERROR: ext_backing_format: "
                                  "len=%u too large (>=%u)", len,
                                  QCOW2_MAX_FORMAT_NAME + 1);
            }
            if (keep) {
                free(s->image_backing_format);
                s->image_backing_format = (char *)data;
                data = NULL;
            }
            break;
        case QCOW2_EXT_DATA_FILE:
            if (keep) {
                free(s->image_data_file);
                s->image_data_file = (char *)data;
                data = NULL;
            }
            break;
        case QCOW2_EXT_FEATURE_TABLE:
            if (feature_table && !*feature_table) {
                *feature_table = data;
                *feature_len = len;
                data = NULL;
            }
            break;
        case QCOW2_EXT_CRYPTO_HEADER:
            if (s->crypt_method != 2) {
                free(data);
                return error_setg(errp, -EINVAL, "CRYPTO header extension "
                                  "only expected with LUKS encryption "
                                  "method");
            }
            /* kept like an unknown one (encryption is refused earlier) */
            __attribute__((fallthrough));
        default:
            if (keep) {
                struct qcow2_unknown_ext *u = xzalloc(sizeof(*u));
                u->magic = magic;
                u->len = len;
                u->data = data;
                data = NULL;
                *tail = u;
                tail = &u->next;
            }
            break;
        }
        free(data);
        offset += ROUND_UP((uint64_t)len, 8);
    }
    return 0;
}

/* "Unsupported qcow2 feature(s): ..." naming the bits from the image's own
 * feature table where it has them, as QEMU does. */
static int report_unsupported(struct strata_error **errp,
                              const uint8_t *table, uint32_t len,
                              uint64_t mask)
{
    char buf[1024] = "";
    size_t n = 0;

    for (uint32_t i = 0; table && i + QCOW2_FEATURE_ENTRY_SIZE <= len;
         i += QCOW2_FEATURE_ENTRY_SIZE) {
        const uint8_t *e = table + i;
        if (e[2] == '\0') {
            break;
        }
        if (e[0] == 0 && e[1] < 64 && (mask & (1ull << e[1]))) {
            n += snprintf(buf + n, sizeof(buf) - MIN(n, sizeof(buf)), "%s%.46s",
                          n ? ", " : "", (const char *)e + 2);
            mask &= ~(1ull << e[1]);
        }
    }
    if (mask) {
        snprintf(buf + MIN(n, sizeof(buf)), sizeof(buf) - MIN(n, sizeof(buf)),
                 "%sUnknown incompatible feature: %llx", n ? ", " : "",
                 (unsigned long long)mask);
    }
    return error_setg(errp, -ENOTSUP, "Unsupported qcow2 feature(s): %s", buf);
}

/* Header fields QEMU refuses, with its wording where it has one. */
static int check_header(struct blk_node *bs, struct qcow2_header *h,
                        struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;

    if (h->magic != QCOW2_MAGIC) {
        return error_setg(errp, -EINVAL, "Image is not in qcow2 format");
    }
    if (h->version < 2 || h->version > 3) {
        return error_setg(errp, -ENOTSUP, "Unsupported qcow2 version %u",
                          h->version);
    }
    if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
        h->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
        return error_setg(errp, -EINVAL, "Unsupported cluster size: 2^%u",
                          h->cluster_bits);
    }
    s->version = h->version;
    s->crypt_method = h->crypt_method;
    s->cluster_bits = h->cluster_bits;
    s->cluster_size = 1u << h->cluster_bits;
    if (h->version == 3 && h->header_length < QCOW2_V3_MIN_HEADER_SIZE) {
        return error_setg(errp, -EINVAL, "qcow2 header too short");
    }
    if (h->header_length > s->cluster_size) {
        return error_setg(errp, -EINVAL, "qcow2 header exceeds cluster size");
    }
    if (h->backing_file_offset > s->cluster_size) {
        return error_setg(errp, -EINVAL, "Invalid backing file offset");
    }
    if (h->header_length <= QCOW2_HDR_COMPRESSION_TYPE) {
        h->compression_type = QCOW2_COMPRESSION_ZLIB;
    }
    return 0;
}

/* Feature bits and header values that decide whether we may open. */
static int check_features(struct blk_node *bs, struct qcow2_header *h,
                          uint64_t ext_end, struct strata_error **errp)
{
    uint64_t incompat = h->incompatible_features;

    switch (h->compression_type) {
    case QCOW2_COMPRESSION_ZLIB:
#ifdef HAVE_ZSTD
    case QCOW2_COMPRESSION_ZSTD:
#endif
        break;
    default:
        return error_setg(errp, -ENOTSUP, "qcow2: unknown compression type: "
                          "%u", h->compression_type);
    }
    if (h->compression_type == QCOW2_COMPRESSION_ZLIB &&
        (incompat & QCOW2_INCOMPAT_COMPRESSION)) {
        return error_setg(errp, -EINVAL, "qcow2: Compression type "
                          "incompatible feature bit must not be set");
    }
    if (h->compression_type != QCOW2_COMPRESSION_ZLIB &&
        !(incompat & QCOW2_INCOMPAT_COMPRESSION)) {
        return error_setg(errp, -EINVAL, "qcow2: Compression type "
                          "incompatible feature bit must be set");
    }
    if (incompat & ~QCOW2_INCOMPAT_MASK) {
        uint8_t *table = NULL;
        uint32_t len = 0;
        /* only for the names: its errors do not matter here */
        read_extensions(bs, h->header_length, ext_end, false, &table, &len,
                        NULL);
        int ret = report_unsupported(errp, table, len,
                                     incompat & ~QCOW2_INCOMPAT_MASK);
        free(table);
        return ret;
    }
    if ((incompat & QCOW2_INCOMPAT_CORRUPT) && !bs->read_only &&
        !(bs->flags & BLK_O_CHECK)) {
        return error_setg(errp, -EACCES, "qcow2: Image is corrupt; cannot be "
                          "opened read/write");
    }
    if (h->refcount_order > 6) {
        return error_setg(errp, -EINVAL, "Reference count entry width too "
                          "large; may not exceed 64 bits");
    }
    if (h->crypt_method > 2) { /* crypto */
        return error_setg(errp, -EINVAL, "Unsupported encryption method: %u",
                          h->crypt_method);
    }
    if ((incompat & QCOW2_INCOMPAT_EXTL2) && h->cluster_bits < 14) {
        return error_setg(errp, -EINVAL, "Extended L2 entries are only "
                          "supported with cluster sizes of at least 16384 "
                          "bytes");
    }
    /* a dirty image opened read-write is repaired after opening */
    return 0;
}

/* Geometry derived from the validated header. */
static void init_geometry(struct qcow2_state *s, const struct qcow2_header *h)
{
    s->extended_l2 = (h->incompatible_features & QCOW2_INCOMPAT_EXTL2) != 0;
    s->l2e_size = s->extended_l2 ? 16 : 8;
    s->subcluster_bits = s->cluster_bits - (s->extended_l2 ? 5 : 0);
    s->subcluster_size = 1u << s->subcluster_bits;
    s->l2_bits = s->cluster_bits - (s->extended_l2 ? 4 : 3);
    s->l2_size = 1u << s->l2_bits;
    s->l2_slice_size = s->l2_size;
    s->refcount_order = h->refcount_order;
    s->refcount_max = (1ull << ((1u << s->refcount_order) - 1));
    s->refcount_max += s->refcount_max - 1;
    s->refblock_bits = s->cluster_bits - (s->refcount_order - 3);
    s->refblock_size = 1u << s->refblock_bits;
    s->csize_shift = 62 - (s->cluster_bits - 8);
    s->csize_mask = (1ull << (s->cluster_bits - 8)) - 1;
    s->cluster_offset_mask = (1ull << s->csize_shift) - 1;
    s->incompatible_features = h->incompatible_features;
    s->compatible_features = h->compatible_features;
    s->autoclear_features = h->autoclear_features;
    s->crypt_method = h->crypt_method;
    s->compression_type = h->compression_type;
}

/* Check the refcount, snapshot and L1 tables' places; load the L1 table. */
static int coroutine_fn read_tables(struct blk_node *bs,
                                    const struct qcow2_header *h,
                                    struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    int ret;

    if (h->refcount_table_clusters == 0) {
        return error_setg(errp, -EINVAL, "Image does not contain a reference "
                          "count table");
    }
    ret = validate_table(bs, h->refcount_table_offset,
                         h->refcount_table_clusters, s->cluster_size,
                         QCOW2_MAX_REFTABLE_SIZE, true,
                         "Reference count table", errp);
    if (ret < 0) {
        return ret;
    }
    /* check validates it later, to report it (read_snapshots) */
    ret = bs->flags & BLK_O_CHECK && bs->read_only
              ? 0
              : validate_sn_table(bs, h->snapshots_offset, h->nb_snapshots,
                                  "Snapshot table", errp);
    if (ret < 0) {
        return ret;
    }
    ret = validate_table(bs, h->l1_table_offset, h->l1_size, 8,
                         QCOW2_MAX_L1_SIZE, true, "Active L1 table", errp);
    if (ret < 0) {
        return ret;
    }
    if (h->size > INT64_MAX ||
        (s->l1_vm_state_index = qcow2_size_to_l1(s, h->size)) > INT32_MAX) {
        return error_setg(errp, -EFBIG, "Image is too big");
    }
    if (h->l1_size < s->l1_vm_state_index) {
        return error_setg(errp, -EINVAL, "L1 table is too small");
    }
    s->l1_size = h->l1_size;
    s->l1_table_offset = h->l1_table_offset;
    s->l1_table = xzalloc(ROUND_UP((size_t)s->l1_size * 8, 512));
    if (s->l1_size) {
        ret = blk_co_pread(bs->file, s->l1_table_offset,
                           (uint64_t)s->l1_size * 8, s->l1_table, 0);
        if (ret < 0) {
            return error_setg_errno(errp, ret, "Could not read L1 table");
        }
        for (uint32_t i = 0; i < s->l1_size; i++) {
            s->l1_table[i] = qcow2_ld64(&s->l1_table[i]);
        }
    }
    s->refcount_table_offset = h->refcount_table_offset;
    s->refcount_table_size = h->refcount_table_clusters
                             << (s->cluster_bits - 3);
    s->snapshots_offset = h->snapshots_offset;
    s->nb_snapshots = h->nb_snapshots;
    return 0;
}


/* The snapshot table.  check opens the image read-only and must report a
 * table it cannot read rather than fail to open, as qemu-img check does:
 * the open goes on without snapshots and the check fails with QEMU's
 * report.  A writer (check -r, anything else) still refuses the image, as
 * it would write the header's snapshot count back. */
static int coroutine_fn read_snapshots(struct blk_node *bs,
                                       struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    struct strata_error *err = NULL;
    bool check = bs->flags & BLK_O_CHECK && bs->read_only, bad_place = false;
    int ret = 0;

    if (check) {
        /* what the header's validation skipped; QEMU's words for check */
        ret = validate_sn_table(bs, s->snapshots_offset, s->nb_snapshots,
                                "snapshot table", &err);
        bad_place = ret < 0;
        if (ret < 0 && s->nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
            s->sn_check_hint = xasprintf("You can force-remove all %u "
                                         "overhanging snapshots with "
                                         "qemu-img check -r all",
                                         s->nb_snapshots -
                                             QCOW2_MAX_SNAPSHOTS);
        }
    }
    if (ret >= 0) {
        ret = qcow2_read_snapshots(bs, &err);
    }
    if (ret >= 0 || !check) {
        free(s->sn_check_hint);
        s->sn_check_hint = NULL;
        if (ret < 0) {
            error_propagate(errp, err);
        }
        return ret;
    }
    s->sn_check_ret = ret;
    s->sn_check_msg = xasprintf("\1ERROR %s%s",
                                bad_place ? "" : "failed to read the snapshot "
                                                 "table: ",
                                error_msg(err, ret));
    strata_error_free(err);
    s->nb_snapshots = 0;
    s->snapshots_size = 0;
    return 0;
}

/* The backing file name stored after the extensions, if any. */
static int coroutine_fn read_backing_name(struct blk_node *bs,
                                          const struct qcow2_header *h,
                                          struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    uint32_t len = h->backing_file_size;
    int ret;

    if (!h->backing_file_offset) {
        return 0;
    }
    if (len > MIN((uint64_t)QCOW2_MAX_BACKING_NAME,
                  s->cluster_size - h->backing_file_offset)) {
        return error_setg(errp, -EINVAL, "Backing file name too long");
    }
    s->image_backing_file = xzalloc(len + 1);
    ret = blk_co_pread(bs->file, h->backing_file_offset, len,
                       s->image_backing_file, 0);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Could not read backing file name");
    }
    return 0;
}

int coroutine_fn qcow2_do_open(struct blk_node *bs, struct blk_opts *opts,
                               struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    uint8_t buf[QCOW2_V3_HEADER_SIZE];
    struct qcow2_header h;
    uint64_t ext_end;
    int ret;

    if (bs->file->size < QCOW2_V2_HEADER_SIZE) {
        return error_setg(errp, -EINVAL, "Image is not in qcow2 format (the "
                          "file is too short for a qcow2 header)");
    }
    memset(buf, 0, sizeof(buf));
    ret = blk_co_pread(bs->file, 0, MIN(sizeof(buf), bs->file->size), buf, 0);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Could not read qcow2 header");
    }
    parse_header(buf, &h);
    ret = check_header(bs, &h, errp);
    if (ret < 0) {
        return ret;
    }
    if (h.header_length > bs->file->size) {
        return error_setg(errp, -EINVAL, "Image is truncated: its %u byte "
                          "header is longer than the file", h.header_length);
    }
    if (h.header_length > QCOW2_V3_HEADER_SIZE) {
        s->unknown_header_fields_size = h.header_length - QCOW2_V3_HEADER_SIZE;
        s->unknown_header_fields = xmalloc(s->unknown_header_fields_size);
        ret = blk_co_pread(bs->file, QCOW2_V3_HEADER_SIZE,
                           s->unknown_header_fields_size,
                           s->unknown_header_fields, 0);
        if (ret < 0) {
            return error_setg_errno(errp, ret, "Could not read unknown qcow2 "
                                    "header fields");
        }
    }
    ext_end = h.backing_file_offset ? h.backing_file_offset : s->cluster_size;
    ret = check_features(bs, &h, ext_end, errp);
    if (ret < 0) {
        return ret;
    }
    init_geometry(s, &h);
    bs->size = h.size / BLK_SECTOR_SIZE * BLK_SECTOR_SIZE;
    ret = read_tables(bs, &h, errp);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_parse_options(bs, opts, errp);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_refcount_init(bs);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Could not initialize refcount "
                                "handling");
    }
    ret = read_extensions(bs, h.header_length, ext_end, true, NULL, NULL,
                          errp);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_datafile_open(bs, opts, errp);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_crypto_open(bs, opts, errp); /* crypto */
    if (ret < 0) {
        return ret;
    }
    ret = read_backing_name(bs, &h, errp);
    if (ret < 0) {
        return ret;
    }
    ret = read_snapshots(bs, errp);
    if (ret < 0) {
        return ret;
    }
    /* a writer clears the autoclear features it does not maintain: all
     * but data_file_raw (its data file stays a valid raw image) */
    if (!bs->read_only &&
        (s->autoclear_features & ~QCOW2_AUTOCLEAR_DATA_FILE_RAW)) {
        s->autoclear_features &= QCOW2_AUTOCLEAR_DATA_FILE_RAW;
        ret = qcow2_update_header(bs);
        if (ret < 0) {
            return error_setg_errno(errp, ret, "Could not update qcow2 "
                                    "header");
        }
    }
    return 0;
}

/* ---- writing the header ---- */

/* Append one extension at *pos; false when the cluster is full. */
static bool add_ext(uint8_t *buf, size_t size, size_t *pos, uint32_t magic,
                    const void *data, uint32_t len)
{
    size_t need = 8 + ROUND_UP((size_t)len, 8);

    if (size - *pos < need) {
        return false;
    }
    qcow2_st32(buf + *pos, magic);
    qcow2_st32(buf + *pos + 4, len);
    if (len) {
        memcpy(buf + *pos + 8, data, len);
    }
    *pos += need;
    return true;
}

/* The feature name table QEMU writes into v3 images (clusters > 4 KiB). */
static size_t feature_table(uint8_t *t)
{
    static const struct {
        uint8_t type, bit;
        const char *name;
    } f[] = {
        {0, 0, "dirty bit"},
        {0, 1, "corrupt bit"},
        {0, 2, "external data file"},
        {0, 3, "compression type"},
        {0, 4, "extended L2 entries"},
        {1, 0, "lazy refcounts"},
        {2, 0, "bitmaps"},
        {2, 1, "raw external data"},
    };

    memset(t, 0, ARRAY_SIZE(f) * QCOW2_FEATURE_ENTRY_SIZE);
    for (size_t i = 0; i < ARRAY_SIZE(f); i++) {
        uint8_t *e = t + i * QCOW2_FEATURE_ENTRY_SIZE;
        e[0] = f[i].type;
        e[1] = f[i].bit;
        memcpy(e + 2, f[i].name, strlen(f[i].name));
    }
    return ARRAY_SIZE(f) * QCOW2_FEATURE_ENTRY_SIZE;
}

int coroutine_fn qcow2_update_header(struct blk_node *bs)
{
    struct qcow2_state *s = bs->opaque;
    size_t size = s->cluster_size, pos;
    uint8_t *buf = xzalloc(size), ft[8 * QCOW2_FEATURE_ENTRY_SIZE];
    int ret = -ENOSPC;

    qcow2_st32(buf, QCOW2_MAGIC);
    qcow2_st32(buf + 4, s->version);
    qcow2_st32(buf + 20, s->cluster_bits);
    qcow2_st64(buf + 24, bs->size);
    qcow2_st32(buf + 32, s->crypt_method);
    qcow2_st32(buf + 36, s->l1_size);
    qcow2_st64(buf + 40, s->l1_table_offset);
    qcow2_st64(buf + 48, s->refcount_table_offset);
    qcow2_st32(buf + 56, s->refcount_table_size >> (s->cluster_bits - 3));
    qcow2_st32(buf + 60, s->nb_snapshots);
    qcow2_st64(buf + 64, s->snapshots_offset);
    if (s->version >= 3) {
        qcow2_st64(buf + 72, s->incompatible_features);
        qcow2_st64(buf + 80, s->compatible_features);
        qcow2_st64(buf + 88, s->autoclear_features);
        qcow2_st32(buf + 96, s->refcount_order);
        qcow2_st32(buf + 100, QCOW2_V3_HEADER_SIZE +
                              s->unknown_header_fields_size);
        buf[QCOW2_HDR_COMPRESSION_TYPE] = s->compression_type;
        pos = QCOW2_V3_HEADER_SIZE;
        if (s->unknown_header_fields_size > size - pos) {
            goto out;
        }
        if (s->unknown_header_fields_size) {
            memcpy(buf + pos, s->unknown_header_fields,
                   s->unknown_header_fields_size);
        }
        pos += s->unknown_header_fields_size;
    } else {
        pos = QCOW2_V2_HEADER_SIZE;
    }

    if (s->image_backing_format &&
        !add_ext(buf, size, &pos, QCOW2_EXT_BACKING_FORMAT,
                 s->image_backing_format,
                 (uint32_t)strlen(s->image_backing_format))) {
        goto out;
    }
    if (qcow2_has_data_file(s) && s->image_data_file &&
        !add_ext(buf, size, &pos, QCOW2_EXT_DATA_FILE, s->image_data_file,
                 (uint32_t)strlen(s->image_data_file))) {
        goto out;
    }
    /* as QEMU: small clusters keep their room for the backing name */
    if (s->version >= 3 && s->cluster_size > 4096 &&
        !add_ext(buf, size, &pos, QCOW2_EXT_FEATURE_TABLE, ft,
                 (uint32_t)feature_table(ft))) {
        goto out;
    }
    for (struct qcow2_unknown_ext *u = s->unknown_exts; u; u = u->next) {
        if (!add_ext(buf, size, &pos, u->magic, u->data, u->len)) {
            goto out;
        }
    }
    if (!add_ext(buf, size, &pos, QCOW2_EXT_END, NULL, 0)) {
        goto out;
    }
    if (s->image_backing_file) {
        size_t len = strlen(s->image_backing_file);
        if (size - pos < len) {
            goto out;
        }
        memcpy(buf + pos, s->image_backing_file, len);
        qcow2_st64(buf + 8, pos);
        qcow2_st32(buf + 16, (uint32_t)len);
    }
    ret = qcow2_pre_write_overlap_check(bs, QCOW2_OL_MAIN_HEADER, 0, size);
    if (ret >= 0) {
        ret = blk_co_pwrite(bs->file, 0, size, buf, 0);
    }
out:
    free(buf);
    return ret;
}
