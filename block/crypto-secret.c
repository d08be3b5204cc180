/* Secrets for encrypted images (QEMU's --object secret,id=...,data=...):
 * a small registry the tools fill, looked up by id when an image names
 * one in encrypt.key-secret. */
#include "config.h"

#include <pthread.h>
#include <string.h>

#include "crypto.h"
#include "util.h"

struct secret {
    char *id, *data;
    struct secret *next;
};
static struct secret *secrets;
static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;

/* The tools' --object table, when the program links tools/img-common.c. */
extern const char *tool_secret_get(const char *id) __attribute__((weak));

/* Register a secret; a later one with the same id is not looked at. */
void crypto_secret_add(const char *id, const char *data)
{
    struct secret *s = xzalloc(sizeof(*s));

    s->id = xstrdup(id);
    s->data = xstrdup(data);
    pthread_mutex_lock(&secrets_lock);
    s->next = secrets;
    secrets = s;
    pthread_mutex_unlock(&secrets_lock);
}

/* Ours first, then the tools' table. */
const char *crypto_secret_lookup(const char *id)
{
    const char *r = NULL;

    pthread_mutex_lock(&secrets_lock);
    for (struct secret *s = secrets; s && !r; s = s->next) {
        if (strcmp(s->id, id) == 0) {
            r = s->data;
        }
    }
    pthread_mutex_unlock(&secrets_lock);
    if (!r && tool_secret_get) {
        r = tool_secret_get(id);
    }
    return r;
}
