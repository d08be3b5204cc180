/* What the tools see of LUKS, shared by qcow2 and the luks format: the
 * header as `info` shows it, in QEMU's key order, and the `amend` options
 * that add and erase key slots. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "json.h"
#include "options.h"

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

/* An integer as QEMU's keyval visitor reads it (qemu_strtoi64, base 0);
 * the message names the option without its prefix, as QEMU's does. */
static int parse_int(struct blk_opts *opts, const char *prefix,
                     const char *name, bool *has, int64_t *out,
                     struct strata_error **errp)
{
    char key[64];
    const char *v;
    char *end;

    snprintf(key, sizeof(key), "%s%s", prefix, name);
    v = opts_get(opts, key);
    *has = v != NULL;
    if (!v) {
        return 0;
    }
    errno = 0;
    *out = strtoll(v, &end, 0);
    if (errno || end == v || *end) {
        return error_setg(errp, -EINVAL, "Parameter '%s' expects integer",
                          name);
    }
    return 0;
}

int crypto_parse_amend_opts(struct blk_opts *opts, const char *prefix,
                            struct crypto_luks_amend *a,
                            struct strata_error **errp)
{
    char key[64];
    const char *state;
    int ret;

    memset(a, 0, sizeof(*a));
    snprintf(key, sizeof(key), "%sstate", prefix);
    state = opts_get(opts, key);
    if (!state) {
        return error_setg(errp, -EINVAL, "Parameter 'state' is missing");
    }
    if (strcmp(state, "active") != 0 && strcmp(state, "inactive") != 0) {
        return error_setg(errp, -EINVAL, "Parameter 'state' does not accept "
                          "value '%s'", state);
    }
    a->active = strcmp(state, "active") == 0;
    snprintf(key, sizeof(key), "%snew-secret", prefix);
    a->new_secret = opts_get(opts, key);
    snprintf(key, sizeof(key), "%sold-secret", prefix);
    a->old_secret = opts_get(opts, key);
    ret = parse_int(opts, prefix, "keyslot", &a->has_keyslot, &a->keyslot,
                    errp);
    if (ret < 0) {
        return ret;
    }
    return parse_int(opts, prefix, "iter-time", &a->has_iter_time,
                     &a->iter_time, errp);
}
