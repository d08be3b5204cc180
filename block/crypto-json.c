/* The LUKS header as `info` shows it (qcow2's "encrypt" member and the
 * luks format's format-specific block), in QEMU's key order. */
#include "config.h"

#include "crypto.h"
#include "json.h"

struct json *crypto_luks_info_json(const struct crypto_luks_info *in,
                                   bool with_format)
{
    struct json *e = json_new_object(), *slots = json_new_array();

    json_set_str(e, "ivgen-alg", in->ivgen_alg);
    if (in->ivgen_hash_alg[0]) {
        json_set_str(e, "ivgen-hash-alg", in->ivgen_hash_alg);
    }
    json_set_str(e, "hash-alg", in->hash_alg);
    json_set_str(e, "cipher-alg", in->cipher_alg);
    json_set_str(e, "uuid", in->uuid);
    if (with_format) {
        json_set_str(e, "format", "luks");
    }
    json_set_str(e, "cipher-mode", in->cipher_mode);
    for (int i = 0; i < 8; i++) {
        struct json *o = json_new_object();
        json_set_bool(o, "active", in->slots[i].active);
        if (in->slots[i].active) {
            json_set_int(o, "iters", in->slots[i].iters);
        }
        json_set_int(o, "key-offset", (int64_t)in->slots[i].key_offset);
        if (in->slots[i].active) {
            json_set_int(o, "stripes", in->slots[i].stripes);
        }
        json_append(slots, o);
    }
    json_set(e, "slots", slots);
    json_set_int(e, "payload-offset", (int64_t)in->payload_offset);
    json_set_int(e, "master-key-iters", in->master_key_iters);
    return e;
}
