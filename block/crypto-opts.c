/* What the tools see of LUKS, shared by qcow2 and the luks format: the
 * header as `info` shows it, in QEMU's key order, and the options that
 * name its secret, create it and amend its key slots. */
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

int crypto_need_secret(struct blk_opts *opts, const char *key,
                       const char **secret, struct strata_error **errp)
{
    const char *id = opts_get(opts, key);

    if (!id) {
        return error_setg(errp, -EINVAL, "Parameter '%s' is required for "
                          "cipher", key);
    }
    *secret = crypto_secret_lookup(id);
    if (!*secret) {
        return error_setg(errp, -ENOENT, "No secret with id '%s'", id);
    }
    return 0;
}

int crypto_open_secret(struct blk_opts *opts, const char *key, bool no_io,
                       bool read_only, const char **secret,
                       struct strata_error **errp)
{
    *secret = NULL;
    if (no_io) {
        /* info describes the header only: like qemu-img info, it neither
         * needs the key nor checks one it is given.  Without the key no
         * write could be encrypted (and one that allocated first would
         * leak its clusters): such an open is read-only. */
        opts_get(opts, key);
        if (!read_only) {
            return error_setg(errp, -EPERM, "An encrypted image opened "
                              "without its key cannot be written");
        }
        return 0;
    }
    return crypto_need_secret(opts, key, secret, errp);
}

int crypto_parse_create_opts(struct blk_opts *opts, const char *prefix,
                             struct crypto_luks_params *p,
                             struct strata_error **errp)
{
    char key[64];

#define CRYPTO_OPT(name) \
    (snprintf(key, sizeof(key), "%s%s", prefix, name), opts_get(opts, key))
    p->cipher_alg = CRYPTO_OPT("cipher-alg");
    p->cipher_mode = CRYPTO_OPT("cipher-mode");
    p->ivgen_alg = CRYPTO_OPT("ivgen-alg");
    p->ivgen_hash_alg = CRYPTO_OPT("ivgen-hash-alg");
    p->hash_alg = CRYPTO_OPT("hash-alg");
#undef CRYPTO_OPT
    snprintf(key, sizeof(key), "%siter-time", prefix);
    return opts_get_uint(opts, key, 2000, &p->iter_time, errp);
}
