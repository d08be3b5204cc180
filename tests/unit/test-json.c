/* JSON: the printer against output captured from qemu-img 7.2
 * (--output=json of info, info --backing-chain, check, measure, map), the
 * string escaping, and the parser on valid, invalid and round-trip input. */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "tap.h"

/* Captured with qemu-img 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18). */
static const struct golden { const char *what, *text; } goldens[] = {
    { "info of a qcow2 with internal snapshots and a backing file",
      "{\n"
      "    \"backing-filename-format\": \"qcow2\",\n"
      "    \"snapshots\": [\n"
      "        {\n"
      "            \"icount\": 0,\n"
      "            \"vm-clock-nsec\": 0,\n"
      "            \"name\": \"snap1\",\n"
      "            \"date-sec\": 1795319020,\n"
      "            \"date-nsec\": 394340000,\n"
      "            \"vm-clock-sec\": 0,\n"
      "            \"id\": \"1\",\n"
      "            \"vm-state-size\": 0\n"
      "        },\n"
      "        {\n"
      "            \"icount\": 0,\n"
      "            \"vm-clock-nsec\": 0,\n"
      "            \"name\": \"snap \\\"2\\\"\",\n"
      "            \"date-sec\": 1795319020,\n"
      "            \"date-nsec\": 403427000,\n"
      "            \"vm-clock-sec\": 0,\n"
      "            \"id\": \"2\",\n"
      "            \"vm-state-size\": 0\n"
      "        }\n"
      "    ],\n"
      "    \"virtual-size\": 4194304,\n"
      "    \"filename\": \"top.qcow2\",\n"
      "    \"cluster-size\": 65536,\n"
      "    \"format\": \"qcow2\",\n"
      "    \"actual-size\": 348160,\n"
      "    \"format-specific\": {\n"
      "        \"type\": \"qcow2\",\n"
      "        \"data\": {\n"
      "            \"compat\": \"1.1\",\n"
      "            \"compression-type\": \"zlib\",\n"
      "            \"lazy-refcounts\": false,\n"
      "            \"refcount-bits\": 16,\n"
      "            \"corrupt\": false,\n"
      "            \"extended-l2\": false\n"
      "        }\n"
      "    },\n"
      "    \"full-backing-filename\": \"base.qcow2\",\n"
      "    \"backing-filename\": \"base.qcow2\",\n"
      "    \"dirty-flag\": false\n"
      "}\n" },
    { "info --backing-chain",
      "[\n"
      "    {\n"
      "        \"backing-filename-format\": \"qcow2\",\n"
      "        \"snapshots\": [\n"
      "            {\n"
      "                \"icount\": 0,\n"
      "                \"vm-clock-nsec\": 0,\n"
      "                \"name\": \"snap1\",\n"
      "                \"date-sec\": 1795319020,\n"
      "                \"date-nsec\": 394340000,\n"
      "                \"vm-clock-sec\": 0,\n"
      "                \"id\": \"1\",\n"
      "                \"vm-state-size\": 0\n"
      "            },\n"
      "            {\n"
      "                \"icount\": 0,\n"
      "                \"vm-clock-nsec\": 0,\n"
      "                \"name\": \"snap \\\"2\\\"\",\n"
      "                \"date-sec\": 1795319020,\n"
      "                \"date-nsec\": 403427000,\n"
      "                \"vm-clock-sec\": 0,\n"
      "                \"id\": \"2\",\n"
      "                \"vm-state-size\": 0\n"
      "            }\n"
      "        ],\n"
      "        \"virtual-size\": 4194304,\n"
      "        \"filename\": \"top.qcow2\",\n"
      "        \"cluster-size\": 65536,\n"
      "        \"format\": \"qcow2\",\n"
      "        \"actual-size\": 348160,\n"
      "        \"format-specific\": {\n"
      "            \"type\": \"qcow2\",\n"
      "            \"data\": {\n"
      "                \"compat\": \"1.1\",\n"
      "                \"compression-type\": \"zlib\",\n"
      "                \"lazy-refcounts\": false,\n"
      "                \"refcount-bits\": 16,\n"
      "                \"corrupt\": false,\n"
      "                \"extended-l2\": false\n"
      "            }\n"
      "        },\n"
      "        \"full-backing-filename\": \"base.qcow2\",\n"
      "        \"backing-filename\": \"base.qcow2\",\n"
      "        \"dirty-flag\": false\n"
      "    },\n"
      "    {\n"
      "        \"virtual-size\": 4194304,\n"
      "        \"filename\": \"base.qcow2\",\n"
      "        \"cluster-size\": 65536,\n"
      "        \"format\": \"qcow2\",\n"
      "        \"actual-size\": 331776,\n"
      "        \"format-specific\": {\n"
      "            \"type\": \"qcow2\",\n"
      "            \"data\": {\n"
      "                \"compat\": \"1.1\",\n"
      "                \"compression-type\": \"zlib\",\n"
      "                \"lazy-refcounts\": false,\n"
      "                \"refcount-bits\": 16,\n"
      "                \"corrupt\": false,\n"
      "                \"extended-l2\": false\n"
      "            }\n"
      "        },\n"
      "        \"dirty-flag\": false\n"
      "    }\n"
      "]\n" },
    { "check of a qcow2 with leaks and corruptions",
      "{\n"
      "    \"image-end-offset\": 589824,\n"
      "    \"total-clusters\": 128,\n"
      "    \"corruptions\": 3,\n"
      "    \"check-errors\": 0,\n"
      "    \"leaks\": 1,\n"
      "    \"allocated-clusters\": 4,\n"
      "    \"filename\": \"c.qcow2\",\n"
      "    \"format\": \"qcow2\"\n"
      "}\n" },
    { "check of a clean qcow2",
      "{\n"
      "    \"image-end-offset\": 655360,\n"
      "    \"total-clusters\": 64,\n"
      "    \"check-errors\": 0,\n"
      "    \"allocated-clusters\": 1,\n"
      "    \"filename\": \"top.qcow2\",\n"
      "    \"format\": \"qcow2\"\n"
      "}\n" },
    { "measure -O qcow2 --size 1G",
      "{\n"
      "    \"required\": 393216,\n"
      "    \"fully-allocated\": 1074135040\n"
      "}\n" },
    { "measure of a qcow2 with bitmaps",
      "{\n"
      "    \"bitmaps\": 458752,\n"
      "    \"required\": 327680,\n"
      "    \"fully-allocated\": 67436544\n"
      "}\n" },
    { "info with bitmaps (an empty array)",
      "{\n"
      "    \"virtual-size\": 67108864,\n"
      "    \"filename\": \"bm.qcow2\",\n"
      "    \"cluster-size\": 65536,\n"
      "    \"format\": \"qcow2\",\n"
      "    \"actual-size\": 233472,\n"
      "    \"format-specific\": {\n"
      "        \"type\": \"qcow2\",\n"
      "        \"data\": {\n"
      "            \"compat\": \"1.1\",\n"
      "            \"compression-type\": \"zlib\",\n"
      "            \"lazy-refcounts\": false,\n"
      "            \"bitmaps\": [\n"
      "                {\n"
      "                    \"flags\": [\n"
      "                        \"auto\"\n"
      "                    ],\n"
      "                    \"name\": \"b0\",\n"
      "                    \"granularity\": 65536\n"
      "                },\n"
      "                {\n"
      "                    \"flags\": [\n"
      "                        \"auto\"\n"
      "                    ],\n"
      "                    \"name\": \"b\\\"1\",\n"
      "                    \"granularity\": 131072\n"
      "                },\n"
      "                {\n"
      "                    \"flags\": [\n"
      "                    ],\n"
      "                    \"name\": \"b2\",\n"
      "                    \"granularity\": 65536\n"
      "                }\n"
      "            ],\n"
      "            \"refcount-bits\": 16,\n"
      "            \"corrupt\": false,\n"
      "            \"extended-l2\": false\n"
      "        }\n"
      "    },\n"
      "    \"dirty-flag\": false\n"
      "}\n" },
    { "info with control characters and UTF-8 in names",
      "{\n"
      "    \"backing-filename-format\": \"raw\",\n"
      "    \"virtual-size\": 1048576,\n"
      "    \"filename\": \"special.qcow2\",\n"
      "    \"cluster-size\": 65536,\n"
      "    \"format\": \"qcow2\",\n"
      "    \"actual-size\": 200704,\n"
      "    \"format-specific\": {\n"
      "        \"type\": \"qcow2\",\n"
      "        \"data\": {\n"
      "            \"compat\": \"1.1\",\n"
      "            \"compression-type\": \"zlib\",\n"
      "            \"lazy-refcounts\": false,\n"
      "            \"refcount-bits\": 16,\n"
      "            \"corrupt\": false,\n"
      "            \"extended-l2\": false\n"
      "        }\n"
      "    },\n"
      "    \"full-backing-filename\": \"we\\tird\\\"\\\\\\u0001\\u007F\\u00E9"
      "\\u20AC\\uD83D\\uDE00\\uFFFD\\u0000\\uFFFD/\\u001F\\b\\f\\r\\nz\\uFFFD"
      "\\uFFFD\\uFFFD\",\n"
      "    \"backing-filename\": \"we\\tird\\\"\\\\\\u0001\\u007F\\u00E9\\u20"
      "AC\\uD83D\\uDE00\\uFFFD\\u0000\\uFFFD/\\u001F\\b\\f\\r\\nz\\uFFFD\\uFF"
      "FD\\uFFFD\",\n"
      "    \"dirty-flag\": false\n"
      "}\n" },
    { "info of a split vmdk (nested array of objects)",
      "{\n"
      "    \"virtual-size\": 5368709120,\n"
      "    \"filename\": \"v.vmdk\",\n"
      "    \"cluster-size\": 65536,\n"
      "    \"format\": \"vmdk\",\n"
      "    \"actual-size\": 40960,\n"
      "    \"format-specific\": {\n"
      "        \"type\": \"vmdk\",\n"
      "        \"data\": {\n"
      "            \"cid\": 2006305820,\n"
      "            \"parent-cid\": 4294967295,\n"
      "            \"create-type\": \"twoGbMaxExtentSparse\",\n"
      "            \"extents\": [\n"
      "                {\n"
      "                    \"virtual-size\": 2147483648,\n"
      "                    \"filename\": \"v-s001.vmdk\",\n"
      "                    \"cluster-size\": 65536,\n"
      "                    \"format\": \"SPARSE\"\n"
      "                },\n"
      "                {\n"
      "                    \"virtual-size\": 2147483648,\n"
      "                    \"filename\": \"v-s002.vmdk\",\n"
      "                    \"cluster-size\": 65536,\n"
      "                    \"format\": \"SPARSE\"\n"
      "                },\n"
      "                {\n"
      "                    \"virtual-size\": 1073741824,\n"
      "                    \"filename\": \"v-s003.vmdk\",\n"
      "                    \"cluster-size\": 65536,\n"
      "                    \"format\": \"SPARSE\"\n"
      "                }\n"
      "            ]\n"
      "        }\n"
      "    },\n"
      "    \"dirty-flag\": false\n"
      "}\n" },
    { "info of a json: filename",
      "{\n"
      "    \"virtual-size\": 0,\n"
      "    \"filename\": \"json:{\\\"offset\\\": \\\"512\\\", \\\"driver\\\":"
      " \\\"raw\\\", \\\"file\\\": {\\\"driver\\\": \\\"file\\\", \\\"filenam"
      "e\\\": \\\"x\\\"}}\",\n"
      "    \"format\": \"raw\",\n"
      "    \"actual-size\": 4096,\n"
      "    \"dirty-flag\": false\n"
      "}\n" },
    { "info of an empty raw image",
      "{\n"
      "    \"virtual-size\": 0,\n"
      "    \"filename\": \"empty.img\",\n"
      "    \"format\": \"raw\",\n"
      "    \"actual-size\": 0,\n"
      "    \"dirty-flag\": false\n"
      "}\n" },
};

/* qemu-img map --output=json of a qcow2 over a backing file. */
static const char map_golden[] =
    "[{ \"start\": 0, \"length\": 65536, \"depth\": 1, \"present\": true, "
    "\"zero\": false, \"data\": true, \"offset\": 327680},\n"
    "{ \"start\": 65536, \"length\": 983040, \"depth\": 1, \"present\": "
    "false, \"zero\": true, \"data\": false},\n"
    "{ \"start\": 1048576, \"length\": 65536, \"depth\": 0, \"present\": "
    "true, \"zero\": false, \"data\": true, \"offset\": 327680},\n"
    "{ \"start\": 1114112, \"length\": 983040, \"depth\": 1, \"present\": "
    "false, \"zero\": true, \"data\": false},\n"
    "{ \"start\": 2097152, \"length\": 65536, \"depth\": 0, \"present\": "
    "true, \"zero\": true, \"data\": false},\n"
    "{ \"start\": 2162688, \"length\": 2031616, \"depth\": 1, \"present\": "
    "false, \"zero\": true, \"data\": false}]\n";

/* Compare and free `got`; show both on a mismatch. */
static void is_str(char *got, const char *want, const char *what)
{
    bool same = got && strcmp(got, want) == 0;
    if (!tap_ok(same, "%s", what)) {
        printf("#   got:  [%s]\n#   want: [%s]\n", got ? got : "(null)",
               want);
    }
    free(got);
}

/* A test input made printable for a TAP line (at most ~60 bytes). */
static const char *show(const char *in)
{
    static char buf[256];
    size_t n = 0;

    for (; *in && n < 60; in++) {
        unsigned char c = *in;
        n += snprintf(buf + n, sizeof(buf) - n,
                      c >= 0x20 && c < 0x7f ? "%c" : "\\x%02x", c);
    }
    buf[n] = '\0';
    return buf;
}

static char *pretty_text(const struct json *j)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f || json_print_pretty(f, j) < 0 || fclose(f) != 0) {
        abort();
    }
    return buf;
}

static char *map_text(const struct json *arr)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        abort();
    }
    fputc('[', f);
    for (int i = 0; i < arr->c.n; i++) {
        json_print_entry(f, arr->c.items[i]);
        fputs(i + 1 < arr->c.n ? ",\n" : "", f);
    }
    fputs("]\n", f);
    fclose(f);
    return buf;
}

static void test_goldens_round_trip(void)
{
    for (size_t i = 0; i < sizeof(goldens) / sizeof(goldens[0]); i++) {
        char *err = NULL;
        struct json *j = json_parse(goldens[i].text, &err);
        if (!tap_ok(j != NULL, "parse qemu-img %s", goldens[i].what)) {
            printf("#   %s\n", err);
            free(err);
            continue;
        }
        char what[200];
        snprintf(what, sizeof(what), "reprinted qemu-img %s is "
                 "byte-identical", goldens[i].what);
        is_str(pretty_text(j), goldens[i].text, what);
        json_free(j);
    }

    struct json *map = json_parse(map_golden, NULL);
    tap_ok(map && map->type == JSON_ARRAY && map->c.n == 6,
           "parse qemu-img map output");
    if (map) {
        is_str(map_text(map), map_golden,
               "map entries print as qemu-img map's lines");
        json_free(map);
    }
}

/* qemu-img info of top.qcow2, built field by field in QAPI schema order
 * (ImageInfo, SnapshotInfo): the printer must reorder the keys. */
static struct json *snapshot(const char *id, const char *name, int64_t nsec)
{
    struct json *s = json_new_object();
    json_set_str(s, "id", id);
    json_set_str(s, "name", name);
    json_set_int(s, "vm-state-size", 0);
    json_set_int(s, "date-sec", 1795319020);
    json_set_int(s, "date-nsec", nsec);
    json_set_int(s, "vm-clock-sec", 0);
    json_set_int(s, "vm-clock-nsec", 0);
    json_set_int(s, "icount", 0);
    return s;
}

static struct json *qcow2_specific(void)
{
    struct json *data = json_new_object();
    json_set_str(data, "compat", "1.1");
    json_set_bool(data, "extended-l2", false);
    json_set_bool(data, "lazy-refcounts", false);
    json_set_bool(data, "corrupt", false);
    json_set_int(data, "refcount-bits", 16);
    json_set_str(data, "compression-type", "zlib");
    struct json *spec = json_new_object();
    json_set_str(spec, "type", "qcow2");
    json_set(spec, "data", data);
    return spec;
}

static void test_built_documents(void)
{
    struct json *info = json_new_object();
    json_set_str(info, "filename", "top.qcow2");
    json_set_str(info, "format", "qcow2");
    json_set_bool(info, "dirty-flag", false);
    json_set_int(info, "actual-size", 348160);
    json_set_int(info, "virtual-size", 4194304);
    json_set_int(info, "cluster-size", 65536);
    json_set_str(info, "backing-filename", "base.qcow2");
    json_set_str(info, "full-backing-filename", "base.qcow2");
    json_set_str(info, "backing-filename-format", "qcow2");
    struct json *snaps = json_new_array();
    json_append(snaps, snapshot("1", "snap1", 394340000));
    json_append(snaps, snapshot("2", "snap \"2\"", 403427000));
    json_set(info, "snapshots", snaps);
    json_set(info, "format-specific", qcow2_specific());
    is_str(pretty_text(info), goldens[0].text,
           "info built in schema order prints as qemu-img's");
    json_free(info);

    struct json *check = json_new_object();
    json_set_str(check, "filename", "c.qcow2");
    json_set_str(check, "format", "qcow2");
    json_set_int(check, "check-errors", 0);
    json_set_int(check, "image-end-offset", 589824);
    json_set_int(check, "corruptions", 3);
    json_set_int(check, "leaks", 1);
    json_set_int(check, "total-clusters", 128);
    json_set_int(check, "allocated-clusters", 4);
    is_str(pretty_text(check), goldens[2].text,
           "check with errors prints as qemu-img's");
    json_free(check);

    struct json *m = json_new_object();
    json_set_uint(m, "required", 327680);
    json_set_uint(m, "fully-allocated", 67436544);
    json_set_uint(m, "bitmaps", 458752);
    is_str(pretty_text(m), goldens[5].text,
           "measure with bitmaps prints as qemu-img's");
    json_free(m);

    /* The backing file name qemu-img was given, as raw bytes. */
    const char *name = "we\tird\"\\\x01\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98"
                       "\x80\xff\xc0\x80\xed\xa0\x80/\x1f\x08\x0c\r\nz"
                       "\xe2\x82\xef\xbf\xbe\xf4\x90\x80\x80";
    info = json_new_object();
    json_set_str(info, "filename", "special.qcow2");
    json_set_str(info, "format", "qcow2");
    json_set_bool(info, "dirty-flag", false);
    json_set_int(info, "actual-size", 200704);
    json_set_int(info, "virtual-size", 1048576);
    json_set_int(info, "cluster-size", 65536);
    json_set_str(info, "backing-filename", name);
    json_set_str(info, "full-backing-filename", name);
    json_set_str(info, "backing-filename-format", "raw");
    json_set(info, "format-specific", qcow2_specific());
    is_str(pretty_text(info), goldens[7].text,
           "escaping of control, non-ASCII and invalid UTF-8 bytes matches "
           "qemu-img");
    json_free(info);

    /* One line of qemu-img map, keys in the order they were set. */
    struct json *e = json_new_object();
    json_set_int(e, "start", 0);
    json_set_int(e, "length", 65536);
    json_set_int(e, "depth", 1);
    json_set_bool(e, "present", true);
    json_set_bool(e, "zero", false);
    json_set_bool(e, "data", true);
    json_set_int(e, "offset", 327680);
    is_str(json_entry_to_string(e),
           "{ \"start\": 0, \"length\": 65536, \"depth\": 1, \"present\": "
           "true, \"zero\": false, \"data\": true, \"offset\": 327680}",
           "map entry form");
    json_free(e);
}

static void test_compact(void)
{
    /* From qemu-img info's human output: "image: json:{...}". */
    struct json *file = json_new_object();
    json_set_str(file, "driver", "file");
    json_set_str(file, "filename", "x");
    struct json *o = json_new_object();
    json_set(o, "file", file);
    json_set_int(o, "size", 512);
    json_set_str(o, "driver", "raw");
    is_str(json_to_string(o, false),
           "{\"driver\": \"raw\", \"size\": 512, \"file\": {\"driver\": "
           "\"file\", \"filename\": \"x\"}}",
           "compact object in QDict order, as in qemu-img's json: names");
    json_free(o);

    o = json_parse("{\"file\": {\"filename\": \"x\", \"driver\": \"file\"}, "
                   "\"driver\": \"raw\", \"offset\": \"512\"}", NULL);
    is_str(json_to_string(o, false),
           "{\"offset\": \"512\", \"driver\": \"raw\", \"file\": {\"driver\": "
           "\"file\", \"filename\": \"x\"}}",
           "compact form of a parsed json: filename matches qemu-img's");
    json_free(o);

    struct json *a = json_new_array();
    json_append(a, json_new_int(1));
    json_append(a, json_new_array());
    json_append(a, json_new_object());
    json_append(a, json_new_null());
    is_str(json_to_string(a, false), "[1, [], {}, null]",
           "compact array with empty containers");
    is_str(json_to_string(a, true), "[\n    1,\n    [\n    ],\n    {\n    },"
           "\n    null\n]", "pretty empty containers break as QEMU's do");
    json_free(a);

    o = json_new_object();
    is_str(json_to_string(o, true), "{\n}", "pretty empty object");
    is_str(pretty_text(o), "{\n}\n", "json_print_pretty ends with newline");
    json_free(o);
}

static void test_scalars(void)
{
    static const struct { double d; const char *want; } dbl[] = {
        { 0.5, "0.5" }, { 0.1, "0.10000000000000001" },
        { 1e300, "1.0000000000000001e+300" }, { -0.0, "-0" },
        { 100.0, "100" }, { 1.5e-7, "1.4999999999999999e-07" },
        { -2.5, "-2.5" }, { 1e21, "1e+21" },
    };
    for (size_t i = 0; i < sizeof(dbl) / sizeof(dbl[0]); i++) {
        struct json *j = json_new_double(dbl[i].d);
        char what[80];
        snprintf(what, sizeof(what), "double prints as %s (%%.17g)",
                 dbl[i].want);
        is_str(json_to_string(j, false), dbl[i].want, what);
        json_free(j);
    }
    struct json *a = json_new_array();
    json_append(a, json_new_int(INT64_MIN));
    json_append(a, json_new_int(INT64_MAX));
    json_append(a, json_new_uint(UINT64_MAX));
    json_append(a, json_new_bool(true));
    json_append(a, json_new_bool(false));
    json_append(a, json_new_null());
    json_append(a, json_new_string(""));
    is_str(json_to_string(a, false),
           "[-9223372036854775808, 9223372036854775807, "
           "18446744073709551615, true, false, null, \"\"]",
           "integer limits, booleans, null, empty string");
    json_free(a);

    struct json *s = json_new_string("\x01\x02\x1b\x1f\x7f /<>&'\x08\x0c\x0a"
                                     "\x0d\x09\"\\");
    is_str(json_to_string(s, false),
           "\"\\u0001\\u0002\\u001B\\u001F\\u007F /<>&'\\b\\f\\n\\r\\t\\\""
           "\\\\\"", "control characters escaped as QEMU does");
    json_free(s);
    s = json_new_string("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbd"
                        "\xc0\x80\xc0\xaf\xe0\x80\xaf\x80\xfe");
    is_str(json_to_string(s, false),
           "\"\\u00E9\\u20AC\\uD83D\\uDE00\\uDBFF\\uDFFD\\u0000\\uFFFD\\uFFFD"
           "\\uFFFD\\uFFFD\"",
           "non-ASCII as \\u escapes, bad UTF-8 as U+FFFD");
    json_free(s);
}

static void test_tree(void)
{
    struct json *o = json_new_object();
    json_set_int(o, "a", 1);
    json_set_str(o, "b", "x");
    json_set_int(o, "a", 2);
    tap_is(o->c.n, 2, "setting a key again replaces its value");
    struct json *a = json_get(o, "a");
    tap_ok(a && a->type == JSON_INT && a->i == 2, "json_get sees the new "
           "value");
    tap_ok(json_get(o, "c") == NULL && json_get(NULL, "a") == NULL &&
           json_get(a, "a") == NULL, "json_get of missing key or non-object");
    tap_ok(strcmp(o->c.keys[0], "a") == 0, "insertion order kept in tree");
    json_free(o);
}

static void test_parse_valid(void)
{
    static const struct { const char *in, *want; } ok[] = {
        { "0", "0" }, { "-0", "0" }, { " \t\r\n 42 \n", "42" },
        { "-9223372036854775808", "-9223372036854775808" },
        { "9223372036854775808", "9223372036854775808" },
        { "18446744073709551615", "18446744073709551615" },
        { "18446744073709551616", "1.8446744073709552e+19" },
        { "-9223372036854775809", "-9.2233720368547758e+18" },
        { "1.5", "1.5" }, { "-0.25e2", "-25" }, { "1E2", "100" },
        { "5e-1", "0.5" }, { "1e+2", "100" }, { "0.0", "0" },
        { "true", "true" }, { "false", "false" }, { "null", "null" },
        { "\"\"", "\"\"" }, { "\"a\\\"b\\\\c\\/d\"", "\"a\\\"b\\\\c/d\"" },
        { "\"\\b\\f\\n\\r\\t\"", "\"\\b\\f\\n\\r\\t\"" },
        { "\"\\u00e9\\u20AC\"", "\"\\u00E9\\u20AC\"" },
        { "\"\\ud83d\\ude00\"", "\"\\uD83D\\uDE00\"" },
        { "\"\\u0000\"", "\"\\u0000\"" },
        { "\"\xc3\xa9\xf0\x9f\x98\x80\"", "\"\\u00E9\\uD83D\\uDE00\"" },
        { "[]", "[]" }, { "{}", "{}" }, { "[ ]", "[]" }, { "{ }", "{}" },
        { "[1,[2,[3,{}]],{\"a\":[]}]", "[1, [2, [3, {}]], {\"a\": []}]" },
        { "{\"b\":1,\"a\":{\"c\":null}}", "{\"a\": {\"c\": null}, \"b\": 1}" },
        { "{\"\":0}", "{\"\": 0}" },
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char *err = NULL;
        struct json *j = json_parse(ok[i].in, &err);
        char what[120];
        snprintf(what, sizeof(what), "parse valid #%zu: %s", i,
                 show(ok[i].in));
        if (!j) {
            tap_ok(0, "%s", what);
            printf("#   %s\n", err);
            free(err);
            continue;
        }
        is_str(json_to_string(j, false), ok[i].want, what);
        json_free(j);
    }

    struct json *j = json_parse("[9223372036854775807, 9223372036854775808,"
                                " -1, 1.0, \"\\u00e9\"]", NULL);
    tap_ok(j && j->c.items[0]->type == JSON_INT &&
           j->c.items[1]->type == JSON_UINT &&
           j->c.items[2]->type == JSON_INT && j->c.items[2]->i == -1 &&
           j->c.items[3]->type == JSON_DOUBLE &&
           strcmp(j->c.items[4]->s, "\xc3\xa9") == 0,
           "number types and decoded UTF-8");
    json_free(j);
}

static void test_parse_invalid(void)
{
    static const struct { const char *in, *msg; } bad[] = {
        { "", "line 1, column 1: expected a JSON value, found end of input" },
        { "  ", "column 3: expected a JSON value" },
        { "{", "expected a string as object key, found end of input" },
        { "[", "expected a JSON value, found end of input" },
        { "[1,]", "column 4: expected a JSON value, found ']'" },
        { "[1 2]", "expected ',' or ']', found '2'" },
        { "{\"a\":1,}", "expected a string as object key, found '}'" },
        { "{\"a\" 1}", "expected ':' after object key, found '1'" },
        { "{a:1}", "expected a string as object key, found 'a'" },
        { "{\"a\":}", "expected a JSON value, found '}'" },
        { "{\"a\":1 \"b\":2}", "expected ',' or '}', found '\"'" },
        { "{\"a\":1,\"a\":2}", "column 8: duplicate key \"a\"" },
        { "01", "unexpected '1' after the JSON value" },
        { "1.", "digits expected after '.' in number" },
        { ".5", "expected a JSON value, found '.'" },
        { "-", "invalid number" }, { "+1", "found '+'" },
        { "1e", "digits expected in exponent" },
        { "1e+", "digits expected in exponent" },
        { "0x10", "unexpected 'x' after the JSON value" },
        { "1e400", "number out of range" },
        { "-1e400", "number out of range" },
        { "tru", "found 't'" }, { "nul", "found 'n'" },
        { "True", "found 'T'" }, { "NaN", "found 'N'" },
        { "Infinity", "found 'I'" }, { "'a'", "found '''" },
        { "\"abc", "column 1: unterminated string" },
        { "\"\\x\"", "invalid escape \\x in string" },
        { "\"\\", "invalid escape \\ in string" },
        { "\"\\u12G4\"", "invalid \\u escape" },
        { "\"\\u12\"", "invalid \\u escape" },
        { "\"\\uD800\"", "unpaired surrogate \\uD800" },
        { "\"\\uDC00\"", "unpaired surrogate \\uDC00" },
        { "\"\\uD800\\u0041\"", "unpaired surrogate \\uD800" },
        { "\"a\nb\"", "control character 0x0a in string must be escaped" },
        { "\"\t\"", "control character 0x09" },
        { "\"\xff\"", "invalid UTF-8 in string" },
        { "\"\xc0\x80\"", "invalid UTF-8 in string" },
        { "\"\xe0\x80\xaf\"", "invalid UTF-8" },
        { "\"\xed\xa0\x80\"", "invalid UTF-8" },
        { "\"\xf4\x90\x80\x80\"", "invalid UTF-8" },
        { "\"\xc3\"", "invalid UTF-8" },
        { "[1] x", "column 5: unexpected 'x' after the JSON value" },
        { "{} {}", "unexpected '{' after the JSON value" },
        { "[1,\n  x]", "line 2, column 3: expected a JSON value, found 'x'" },
        { "\xef\xbb\xbf{}", "found byte 0xef" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *err = NULL;
        struct json *j = json_parse(bad[i].in, &err);
        bool good = !j && err && strstr(err, bad[i].msg) &&
                    strncmp(err, "JSON parse error at line ", 25) == 0;
        if (!tap_ok(good, "parse invalid #%zu %s fails with \"%s\"", i,
                    show(bad[i].in), bad[i].msg)) {
            printf("#   got: %s\n", err ? err : "(no error)");
        }
        json_free(j);
        free(err);
    }
    tap_ok(json_parse("[", NULL) == NULL, "errmsg may be NULL");
}

static void test_depth(void)
{
    enum { N = 1000 };
    char *s = malloc(2 * N + 3);

    for (int n = N; n <= N + 1; n++) {
        memset(s, '[', n);
        memset(s + n, ']', n);
        s[2 * n] = '\0';
        char *err = NULL;
        struct json *j = json_parse(s, &err);
        if (n == N) {
            tap_ok(j != NULL, "%d nested arrays parse", n);
        } else {
            tap_ok(!j && err && strstr(err, "nesting deeper than 1000"),
                   "%d nested arrays are refused", n);
        }
        json_free(j);
        free(err);
    }
    /* Hostile input must not exhaust the C stack either way. */
    size_t big = 1000000;
    s = realloc(s, big + 1);
    memset(s, '[', big);
    s[big] = '\0';
    char *err = NULL;
    tap_ok(json_parse(s, &err) == NULL && err,
           "a million '[' fail cleanly");
    free(err);
    free(s);
}

static uint64_t rnd_state = 12345;

static uint64_t rnd(void)
{
    rnd_state = rnd_state * 6364136223846793005ull + 1442695040888963407ull;
    return rnd_state >> 33;
}

static struct json *random_value(int depth)
{
    static const char *const strs[] = {
        "", "a", "with space", "quote\"back\\slash", "tab\tnl\n",
        "\xc3\xa9t\xc3\xa9", "\xf0\x9f\x98\x80", "ctl\x01\x1f", "/path/x.img",
    };
    switch (rnd() % (depth < 4 ? 9 : 6)) {
    case 0: return json_new_int((int64_t)(rnd() << 31 ^ rnd()) - (1ll << 40));
    case 1: return json_new_uint(UINT64_MAX - rnd());
    case 2: return json_new_double((double)(int64_t)rnd() / 1024.0);
    case 3: return json_new_string(strs[rnd() % 9]);
    case 4: return json_new_bool(rnd() & 1);
    case 5: return json_new_null();
    case 6: case 7: {
        struct json *a = json_new_array();
        for (int n = rnd() % 5; n > 0; n--) {
            json_append(a, random_value(depth + 1));
        }
        return a;
    }
    default: {
        struct json *o = json_new_object();
        for (int n = rnd() % 6; n > 0; n--) {
            char key[24];
            snprintf(key, sizeof(key), "k%d-%s", (int)(rnd() % 50),
                     n % 2 ? "x" : "\xc3\xa9");
            json_set(o, key, random_value(depth + 1));
        }
        return o;
    }
    }
}

/* Same values; object members compared by key, since printing reorders
 * them (and, like QEMU's, reverses keys that share a hash bucket). */
static bool json_equal(const struct json *a, const struct json *b)
{
    if (a->type != b->type) {
        return false;
    }
    switch (a->type) {
    case JSON_NULL: return true;
    case JSON_BOOL: return a->b == b->b;
    case JSON_INT: return a->i == b->i;
    case JSON_UINT: return a->u == b->u;
    case JSON_DOUBLE: return a->d == b->d;
    case JSON_STRING: return strcmp(a->s, b->s) == 0;
    case JSON_ARRAY:
        if (a->c.n != b->c.n) {
            return false;
        }
        for (int i = 0; i < a->c.n; i++) {
            if (!json_equal(a->c.items[i], b->c.items[i])) {
                return false;
            }
        }
        return true;
    case JSON_OBJECT:
        if (a->c.n != b->c.n) {
            return false;
        }
        for (int i = 0; i < a->c.n; i++) {
            struct json *v = json_get(b, a->c.keys[i]);
            if (!v || !json_equal(a->c.items[i], v)) {
                return false;
            }
        }
        return true;
    }
    return false;
}

static void test_round_trip(void)
{
    int good = 0, total = 300;

    for (int i = 0; i < total; i++) {
        struct json *j = random_value(0);
        bool same = true;
        for (int pretty = 0; pretty <= 1; pretty++) {
            char *a = json_to_string(j, pretty);
            struct json *k = json_parse(a, NULL);
            if (!k || !json_equal(j, k)) {
                same = false;
                printf("# round trip failed: %s\n", a);
            }
            free(a);
            json_free(k);
        }
        good += same;
        json_free(j);
    }
    tap_is(good, total, "random documents survive print and parse");
}

int main(void)
{
    test_goldens_round_trip();
    test_built_documents();
    test_compact();
    test_scalars();
    test_tree();
    test_parse_valid();
    test_parse_invalid();
    test_depth();
    test_round_trip();
    tap_plan(tap_n);
    return tap_done();
}
