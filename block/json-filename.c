/* "json:{...}" file names: an image named by its open options, as QEMU
 * accepts them on every command line and as backing file names (libvirt
 * writes them into overlays whose backing file is not a plain file).
 * The object's members become dotted option keys:
 *   json:{"driver": "qcow2", "file": {"driver": "file", "filename": "a"}}
 * is driver=qcow2,file.driver=file,file.filename=a. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "json.h"
#include "options.h"
#include "util.h"

#define JSON_PREFIX "json:"
#define JSON_MAX_DEPTH 32 /* nesting of option groups; QEMU's are shallow */

/* Add the members of object o under `prefix` ("" at the top) to opts;
 * keys opts already holds keep their value (given explicitly, they win,
 * as -f wins over a "driver" member in qemu-img). */
static int flatten(const struct json *o, const char *prefix,
                   struct blk_opts *opts, int depth,
                   struct strata_error **errp)
{
    int ret = 0;

    if (depth > JSON_MAX_DEPTH) {
        return error_setg(errp, -EINVAL, "JSON options nested too deeply");
    }
    for (int i = 0; i < o->c.n && ret == 0; i++) {
        const struct json *v = o->c.items[i];
        const char *name = o->type == JSON_OBJECT ? o->c.keys[i] : "";
        bool child = !strcmp(name, "file") || !strcmp(name, "backing");
        char *key, num[32];
        const char *val = num;

        if (o->type == JSON_OBJECT) {
            key = xasprintf("%s%s", prefix, name);
        } else {
            key = xasprintf("%s%d", prefix, i); /* list members: key.N */
        }
        switch (v->type) {
        case JSON_OBJECT:
        case JSON_ARRAY: {
            char *sub = xasprintf("%s.", key);
            ret = flatten(v, sub, opts, depth + 1, errp);
            free(sub);
            val = NULL;
            break;
        }
        case JSON_STRING:
            if (child) {
                /* in QEMU, a reference to an open node by its name; the
                 * tools have no named nodes */
                ret = error_setg(errp, -EINVAL, "Cannot find device='%s' "
                                 "nor node-name='%s'", v->s, v->s);
                val = NULL;
                break;
            }
            val = v->s;
            break;
        case JSON_BOOL:
            val = v->b ? "on" : "off";
            break;
        case JSON_INT:
            snprintf(num, sizeof(num), "%" PRId64, v->i);
            break;
        case JSON_UINT:
            snprintf(num, sizeof(num), "%" PRIu64, v->u);
            break;
        case JSON_DOUBLE:
            snprintf(num, sizeof(num), "%.17g", v->d);
            break;
        case JSON_NULL:
            if (!strcmp(name, "backing")) {
                val = ""; /* "backing": null is no backing file */
                break;
            }
            ret = error_setg(errp, -EINVAL, "Invalid parameter type for "
                             "'%s', expected: string", key);
            val = NULL;
            break;
        }
        if (val && !opts_has(opts, key)) {
            opts_set(opts, key, val);
        }
        free(key);
    }
    return ret;
}

bool blk_is_json_filename(const char *filename)
{
    return filename && strncmp(filename, JSON_PREFIX, strlen(JSON_PREFIX)) == 0;
}

int blk_json_filename_opts(const char *filename, struct blk_opts *opts,
                           struct strata_error **errp)
{
    char *msg = NULL;
    struct json *j;
    int ret;

    if (!blk_is_json_filename(filename)) {
        return 0;
    }
    j = json_parse(filename + strlen(JSON_PREFIX), &msg);
    if (!j) {
        ret = error_setg(errp, -EINVAL, "Could not parse the JSON options: "
                         "%s", msg ? msg : "invalid JSON");
        free(msg);
        return ret;
    }
    if (j->type != JSON_OBJECT) {
        json_free(j);
        return error_setg(errp, -EINVAL, "Invalid JSON object given");
    }
    ret = flatten(j, "", opts, 0, errp);
    json_free(j);
    return ret < 0 ? ret : 1;
}
