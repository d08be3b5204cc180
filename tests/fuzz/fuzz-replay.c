/* Replay a fuzz corpus through a target without libFuzzer: `make check`
 * runs every saved input (seeds and past findings) so a regression on any
 * of them fails the suite, on any compiler.  Prints TAP: one line per
 * input; a crash ends the run, and the TAP driver reports the missing
 * lines as failures. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FUZZ_CORPUS
#error "FUZZ_CORPUS names the corpus folder under tests/fuzz/corpus"
#endif

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;

    if (!f) {
        return NULL;
    }
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            buf = realloc(buf, cap);
            if (!buf) {
                abort();
            }
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            break;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The regular files of dir, sorted so the TAP numbering is stable. */
static int list_dir(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **v = NULL;
    int n = 0;

    if (!d) {
        return -errno;
    }
    while ((e = readdir(d))) {
        char *p;
        struct stat st;
        if (e->d_name[0] == '.' || asprintf(&p, "%s/%s", dir, e->d_name) < 0) {
            continue;
        }
        if (stat(p, &st) < 0 || !S_ISREG(st.st_mode)) {
            free(p);
            continue;
        }
        v = realloc(v, sizeof(*v) * (n + 1));
        if (!v) {
            abort();
        }
        v[n++] = p;
    }
    closedir(d);
    qsort(v, n, sizeof(*v), cmp_names);
    *out = v;
    return n;
}

int main(int argc, char **argv)
{
    char **files;
    int n;

    char *dir = NULL;

    if (argc > 2) {
        fprintf(stderr, "usage: %s [CORPUS-DIR]\n", argv[0]);
        return 2;
    }
    /* by default the corpus this target was built for, in the source tree */
    if (argc == 2) {
        dir = strdup(argv[1]);
    } else if (asprintf(&dir, "%s/tests/fuzz/corpus/%s",
                        getenv("top_srcdir") ? getenv("top_srcdir") : ".",
                        FUZZ_CORPUS) < 0) {
        dir = NULL;
    }
    if (!dir) {
        abort();
    }
    n = list_dir(dir, &files);
    if (n < 0) {
        printf("1..0 # SKIP no corpus at %s\n", dir);
        free(dir);
        return 0;
    }
    free(dir);
    printf("1..%d\n", n);
    for (int i = 0; i < n; i++) {
        size_t len;
        unsigned char *data = slurp(files[i], &len);
        if (!data) {
            printf("not ok %d - %s: %s\n", i + 1, files[i], strerror(errno));
        } else {
            LLVMFuzzerTestOneInput(data, len);
            printf("ok %d - %s\n", i + 1, strrchr(files[i], '/') + 1);
            fflush(stdout);
        }
        free(data);
        free(files[i]);
    }
    free(files);
    return 0;
}
