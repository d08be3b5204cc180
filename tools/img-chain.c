/* Helpers shared by strata-img commit and rebase: finding an image in a
 * backing chain by name, and the -r rate limit. */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "img-chain.h"
#include "loop.h"

/* realpath() of name resolved relative to the image `rel`, or NULL. */
static char *canonical_relative(const char *rel, const char *name)
{
    char *full = blk_resolve_backing_name(rel, name);
    char *canon = realpath(full, NULL);

    free(full);
    return canon;
}

/* A name with a protocol prefix ("nbd://", "null-co://") is compared as
 * it stands, as QEMU's path_has_protocol() makes it. */
static bool has_protocol(const char *name)
{
    const char *colon = strchr(name, ':');
    const char *slash = strchr(name, '/');

    return colon && (!slash || colon < slash) &&
           strncmp(name, "file:", 5) != 0;
}

struct blk_node *chain_find_backing_image(struct blk_node *bs,
                                          const char *name)
{
    for (struct blk_node *cur = bs; cur && cur->backing; cur = cur->backing) {
        const char *recorded = cur->backing_file ? cur->backing_file : "";
        char *want, *have;
        bool same;

        if (strcmp(name, recorded) == 0) {
            return cur->backing;
        }
        if (has_protocol(name) || has_protocol(recorded)) {
            if (strcmp(name, cur->backing->filename) == 0) {
                return cur->backing;
            }
            continue;
        }
        want = canonical_relative(cur->filename, name);
        have = canonical_relative(cur->filename, recorded);
        same = want && have && strcmp(want, have) == 0;
        free(want);
        free(have);
        if (same) {
            return cur->backing;
        }
    }
    return NULL;
}

void coroutine_fn chain_throttle(uint64_t rate_limit, uint64_t start_ns,
                                 uint64_t *sent, uint64_t bytes)
{
    uint64_t due, now;

    if (!rate_limit) {
        return;
    }
    due = start_ns + (uint64_t)((double)*sent * 1e9 / (double)rate_limit);
    now = clock_ns();
    *sent += bytes;
    if (due > now) {
        co_sleep_ns(due - now);
    }
}
