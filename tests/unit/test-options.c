/* Options (QEMU-style "k=v,..." lists, sizes, booleans, numbers), the
 * human size format, and error objects.  Expected values and messages were
 * taken from qemu-img 7.2 (create -o, --image-opts, info). */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "options.h"
#include "tap.h"

static void is_str(const char *got, const char *want, const char *what)
{
    bool same = got && strcmp(got, want) == 0;
    if (!tap_ok(same, "%s", what)) {
        printf("#   got:  [%s]\n#   want: [%s]\n", got ? got : "(null)",
               want);
    }
}

/* Check that a call failed with -EINVAL and exactly this message. */
static void is_err(int ret, struct strata_error *err, const char *msg,
                   const char *what)
{
    bool good = ret == -EINVAL && err && err->code == -EINVAL &&
                strcmp(err->msg, msg) == 0;
    if (!tap_ok(good, "%s", what)) {
        printf("#   ret %d, msg [%s]\n#   want [%s]\n", ret,
               err ? err->msg : "(none)", msg);
    }
    strata_error_free(err);
}

static void test_parse(void)
{
    struct strata_error *err = NULL;
    struct blk_opts *o = opts_new();
    int ret = opts_parse(o, "a=1,b=x,,y", NULL, &err);
    tap_ok(ret == 0 && o->n == 2 && !err, "a=1,b=x,,y parses to two options");
    is_str(opts_get(o, "a"), "1", "a=1");
    is_str(opts_get(o, "b"), "x,y", "\",,\" is a literal comma");
    opts_free(o);

    o = opts_new();
    ret = opts_parse(o, "a=b=c,file.aio=native,cache.direct=on,e=", NULL,
                     NULL);
    tap_ok(ret == 0 && o->n == 4, "values with '=', dotted keys, empty value");
    is_str(opts_get(o, "a"), "b=c", "a value keeps later '='");
    is_str(opts_get(o, "file.aio"), "native", "dotted key");
    is_str(opts_get(o, "e"), "", "empty value");
    opts_free(o);

    o = opts_new();
    ret = opts_parse(o, "my,,disk.img,format=raw", "file.filename", NULL);
    tap_ok(ret == 0 && o->n == 2, "implied key for the first element");
    is_str(opts_get(o, "file.filename"), "my,disk.img",
           "the implied value unescapes ,,");
    is_str(opts_get(o, "format"), "raw", "option after the implied one");
    opts_free(o);

    o = opts_new();
    ret = opts_parse(o, "a=1,b=2,a=3", NULL, NULL);
    tap_ok(ret == 0 && o->n == 2 && strcmp(o->v[0].key, "a") == 0,
           "a later duplicate replaces the earlier value in place");
    is_str(opts_get(o, "a"), "3", "the last value wins");
    ret = opts_parse(o, "b=4,c=5", NULL, NULL);
    tap_ok(ret == 0 && o->n == 3, "parsing again appends and replaces");
    is_str(opts_get(o, "b"), "4", "replaced by the second parse");
    tap_ok(opts_parse(o, "", NULL, NULL) == 0 &&
           opts_parse(o, NULL, NULL, NULL) == 0 && o->n == 3,
           "empty and NULL strings add nothing");
    tap_ok(opts_parse(o, ",", NULL, NULL) == -EINVAL,
           "errors are returned without errp too");
    tap_ok(opts_parse(o, "lazy,d=1", NULL, NULL) == 0 &&
           strcmp(opts_get(o, "lazy"), "on") == 0,
           "a bare key means key=on, as in QEMU");
    opts_free(o);

    static const struct { const char *in, *implied, *msg; } bad[] = {
        { "=x", NULL, "Invalid parameter ''" },
        { "a=1,=x", NULL, "Invalid parameter ''" },
        { "a=1,foo,,bar", NULL, "Invalid option list: a=1,foo,,bar" },
        { ",a=1", NULL, "Invalid option list: ,a=1" },
        { "a=1,", NULL, "Invalid option list: a=1," },
        { ",", NULL, "Invalid option list: ," },
        { ",,", NULL, "Invalid option list: ,," },
        { "a=1,,,", NULL, "Invalid option list: a=1,,," },
        { "a=1,,b=2,", NULL, "Invalid option list: a=1,,b=2," },
        { "x.img,,a=1,", "file", "Invalid option list: x.img,,a=1," },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char what[160];
        o = opts_new();
        err = NULL;
        ret = opts_parse(o, bad[i].in, bad[i].implied, &err);
        snprintf(what, sizeof(what), "\"%s\"%s%s fails: %s", bad[i].in,
                 bad[i].implied ? " with implied " : "",
                 bad[i].implied ? bad[i].implied : "", bad[i].msg);
        is_err(ret, err, bad[i].msg, what);
        opts_free(o);
    }
}

static void test_getters(void)
{
    struct strata_error *err = NULL;
    struct blk_opts *o = opts_new();
    bool b = false;
    uint64_t u = 0;
    int ret;

    opts_parse(o, "ro=on,sz=1.5k,n=0x10,bad=maybe,big=99e,num=abc,"
               "huge=99999999999999999999,dec=010,other=1", NULL, NULL);
    tap_ok(opts_get_bool(o, "ro", false, &b, NULL) == 0 && b, "bool on");
    tap_ok(opts_get_bool(o, "missing", true, &b, NULL) == 0 && b &&
           !opts_has(o, "missing"), "missing bool gives the default");
    tap_ok(opts_get_size(o, "sz", 0, &u, NULL) == 0 && u == 1536,
           "size 1.5k");
    tap_ok(opts_get_size(o, "missing", 77, &u, NULL) == 0 && u == 77,
           "missing size gives the default");
    tap_ok(opts_get_uint(o, "n", 0, &u, NULL) == 0 && u == 16, "number 0x10");
    tap_ok(opts_get_uint(o, "dec", 0, &u, NULL) == 0 && u == 8,
           "number 010 is octal (strtoull base 0, as QEMU)");
    tap_ok(opts_get_uint(o, "missing", 5, &u, NULL) == 0 && u == 5,
           "missing number gives the default");
    ret = opts_get_bool(o, "bad", false, &b, &err);
    is_err(ret, err, "Parameter 'bad' expects 'on' or 'off'",
           "bad bool message as QEMU's");
    err = NULL;
    ret = opts_get_size(o, "num", 0, &u, &err);
    is_err(ret, err, "Parameter 'num' expects a non-negative number below "
           "2^64\nOptional suffix k, M, G, T, P or E means kilo-, mega-, "
           "giga-, tera-, peta-\nand exabytes, respectively.",
           "bad size message as QEMU's (with its hint lines)");
    err = NULL;
    ret = opts_get_size(o, "big", 0, &u, &err);
    is_err(ret, err, "Value '99e' is out of range for parameter 'big'",
           "size out of range message as QEMU's");
    err = NULL;
    ret = opts_get_uint(o, "num", 0, &u, &err);
    is_err(ret, err, "Parameter 'num' expects a number",
           "bad number message as QEMU's");
    err = NULL;
    ret = opts_get_uint(o, "huge", 0, &u, &err);
    is_err(ret, err, "Value '99999999999999999999' is too large for "
           "parameter 'huge'", "number too large message as QEMU's");

    /* Everything but "other" was asked for. */
    err = NULL;
    ret = opts_check_unused(o, NULL, &err);
    is_err(ret, err, "Invalid parameter 'other'", "unused option named");
    err = NULL;
    ret = opts_check_unused(o, "Block format 'raw'", &err);
    is_err(ret, err, "Block format 'raw' does not support the option 'other'",
           "unused format option worded as QEMU's");
    err = NULL;
    ret = opts_check_unused(o, "Block protocol 'file'", &err);
    is_err(ret, err, "Block protocol 'file' doesn't support the option "
           "'other'", "unused protocol option worded as QEMU's");
    opts_get(o, "other");
    tap_ok(opts_check_unused(o, NULL, NULL) == 0, "all options used");
    opts_set(o, "other", "2");
    tap_ok(opts_check_unused(o, NULL, NULL) == -EINVAL,
           "a replaced value is unused again");
    tap_ok(opts_get(o, "nope") == NULL, "opts_get of a missing key is NULL");
    opts_free(o);
}

static void test_list_ops(void)
{
    struct blk_opts *o = opts_new();

    opts_parse(o, "driver=qcow2,file.driver=file,file.filename=a,,b,"
               "file.aio=native,backing.file.filename=x,filex=1,file=y",
               NULL, NULL);
    opts_get(o, "file.aio");
    struct blk_opts *c = opts_extract_prefix(o, "file");
    tap_ok(c->n == 3 && o->n == 4, "extract_prefix moves file.* only");
    is_str(opts_get(c, "filename"), "a,b", "extracted key loses its prefix");
    tap_ok(c->v[2].used && !c->v[0].used, "used flags move with options");
    tap_ok(opts_has(o, "backing.file.filename") && opts_has(o, "filex") &&
           opts_has(o, "file") && !opts_has(o, "file.driver"),
           "other keys stay");
    opts_free(c);

    c = opts_clone(o);
    opts_set(c, "driver", "raw");
    is_str(opts_get(o, "driver"), "qcow2", "a clone is independent");
    opts_free(c);

    opts_del(o, "filex");
    opts_del(o, "nothing");
    tap_ok(!opts_has(o, "filex") && o->n == 3, "opts_del");
    opts_set_uint(o, "size", UINT64_MAX);
    is_str(opts_get(o, "size"), "18446744073709551615", "opts_set_uint");
    opts_set(o, "odd", "a,b,,c=d");
    char *s = opts_to_string(o);
    is_str(s, "driver=qcow2,backing.file.filename=x,file=y,"
           "size=18446744073709551615,odd=a,,b,,,,c=d",
           "opts_to_string doubles commas");
    struct blk_opts *p = opts_new();
    tap_ok(opts_parse(p, s, NULL, NULL) == 0 && p->n == o->n, "and parses "
           "back");
    is_str(opts_get(p, "odd"), "a,b,,c=d", "to the same values");
    free(s);
    opts_free(p);
    opts_free(o);

    o = opts_new();
    s = opts_to_string(o);
    is_str(s, "", "empty list to string");
    free(s);
    c = opts_clone(o);
    tap_ok(c->n == 0, "clone of an empty list");
    opts_free(c);
    opts_free(o);
    opts_free(NULL);
}

static void test_validate(void)
{
    static const struct blk_opt_desc desc[] = {
        { "size", OPT_SIZE, "Virtual disk size", NULL },
        { "cluster_size", OPT_SIZE, "qcow2 cluster size", "65536" },
        { "lazy_refcounts", OPT_BOOL, "Postpone refcount updates", "off" },
        { "refcount_bits", OPT_NUMBER, "Width of a refcount entry", "16" },
        { "compat", OPT_STRING, "Compatibility level", NULL },
        { NULL, OPT_STRING, NULL, NULL },
    };
    static const struct { const char *in, *msg; } cases[] = {
        { "size=1M,cluster_size=64k,lazy_refcounts=on,refcount_bits=16,"
          "compat=anything", NULL },
        { "lazy_refcounts=yes,refcount_bits=0x8", NULL },
        { "foo=bar", "Invalid parameter 'foo'" },
        { "size=1M,Size=2M", "Invalid parameter 'Size'" },
        { "lazy_refcounts=maybe",
          "Parameter 'lazy_refcounts' expects 'on' or 'off'" },
        { "lazy_refcounts=ON",
          "Parameter 'lazy_refcounts' expects 'on' or 'off'" },
        { "cluster_size=abc", "Parameter 'cluster_size' expects a "
          "non-negative number below 2^64\nOptional suffix k, M, G, T, P or "
          "E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, "
          "respectively." },
        { "size=1.5b", "Parameter 'size' expects a non-negative number below"
          " 2^64\nOptional suffix k, M, G, T, P or E means kilo-, mega-, "
          "giga-, tera-, peta-\nand exabytes, respectively." },
        { "cluster_size=99E",
          "Value '99E' is out of range for parameter 'cluster_size'" },
        { "refcount_bits=abc", "Parameter 'refcount_bits' expects a number" },
        /* QEMU reads numbers with strtoull(base 0): a sign, blanks and
         * octal are numbers too */
        { "refcount_bits=-1", NULL },
        { "refcount_bits=+16", NULL },
        { "refcount_bits= 16", NULL },
        { "refcount_bits=020", NULL },
        { "refcount_bits=16 ", "Parameter 'refcount_bits' expects a number" },
        { "refcount_bits=08", "Parameter 'refcount_bits' expects a number" },
        { "refcount_bits=99999999999999999999", "Value "
          "'99999999999999999999' is too large for parameter "
          "'refcount_bits'" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct blk_opts *o = opts_new();
        struct strata_error *err = NULL;
        char what[120];
        opts_parse(o, cases[i].in, NULL, NULL);
        int ret = opts_validate(o, desc, "qcow2", &err);
        snprintf(what, sizeof(what), "validate %.60s", cases[i].in);
        if (cases[i].msg) {
            is_err(ret, err, cases[i].msg, what);
        } else {
            tap_ok(ret == 0 && !err && !o->v[0].used, "%s passes", what);
        }
        opts_free(o);
    }
}

static void test_parse_size(void)
{
    /* Each expectation is what `qemu-img create -f raw x -- <size>` did:
     * the size it formatted with, or its "You may use k, M, G..." message
     * (-EINVAL) or its "Must be between 0 and ..." message (-ERANGE). */
    static const struct { const char *in; int ret; uint64_t val; } t[] = {
        { "0", 0, 0ull },
        { "1", 0, 1ull },
        { "512", 0, 512ull },
        { "1.5k", 0, 1536ull },
        { "1.5", -EINVAL, 0 },
        { "0.5", -EINVAL, 0 },
        { "1.1k", 0, 1126ull },
        { "1.0001k", 0, 1024ull },
        { "512b", 0, 512ull },
        { "512B", 0, 512ull },
        { "1B", 0, 1ull },
        { "1.5b", -EINVAL, 0 },
        { "10e", -ERANGE, 0 },
        { "8E", -ERANGE, 0 },
        { "7E", 0, 8070450532247928832ull },
        { "7.9E", 0, 9108079886394091136ull },
        { "8191P", 0, 9222246136947933184ull },
        { "-1", -EINVAL, 0 },
        { "-0", -EINVAL, 0 },
        { "1K", 0, 1024ull },
        { "1k", 0, 1024ull },
        { "1M", 0, 1048576ull },
        { "1m", 0, 1048576ull },
        { "1g", 0, 1073741824ull },
        { "1G", 0, 1073741824ull },
        { "1t", 0, 1099511627776ull },
        { "1T", 0, 1099511627776ull },
        { "1p", 0, 1125899906842624ull },
        { "1P", 0, 1125899906842624ull },
        { "1e", 0, 1152921504606846976ull },
        { "0x10", 0, 16ull },
        { "0X1f", 0, 31ull },
        { "0x", -EINVAL, 0 },
        { "0xg", -EINVAL, 0 },
        { "0x10k", 0, 16384ull },
        { "0x1.5", -EINVAL, 0 },
        { "00x10", -EINVAL, 0 },
        { "1e3", -EINVAL, 0 },
        { " 12", 0, 12ull },
        { "\t12", 0, 12ull },
        { "12 ", -EINVAL, 0 },
        { "+12", 0, 12ull },
        { " +12", 0, 12ull },
        { "+-12", -EINVAL, 0 },
        { "1kk", -EINVAL, 0 },
        { "1KiB", -EINVAL, 0 },
        { "1k ", -EINVAL, 0 },
        { "1.k", 0, 1024ull },
        { ".5k", -EINVAL, 0 },
        { "1.", 0, 1ull },
        { "1..k", -EINVAL, 0 },
        { "1.-5k", -EINVAL, 0 },
        { "1.+5k", -EINVAL, 0 },
        { "1. 5k", -EINVAL, 0 },
        { "0.5k", 0, 512ull },
        { "0.5K", 0, 512ull },
        { "0.0009765625k", 0, 1ull },
        { "1.5e", 0, 1729382256910270464ull },
        { "1.5E+", -EINVAL, 0 },
        { "1.5e3", -EINVAL, 0 },
        { "1.5e+3", -EINVAL, 0 },
        { "1.5M", 0, 1572864ull },
        { "2.25G", 0, 2415919104ull },
        { "0.001k", 0, 1ull },
        { "0.0004k", 0, 0ull },
        { "0.0005k", 0, 1ull },
        { "0.00048828125k", 0, 1ull },
        { "9223372036854775807", 0, 9223372036854775807ull },
        { "9223372036854775808", -ERANGE, 0 },
        { "18446744073709551615", -ERANGE, 0 },
        { "18446744073709551616", -ERANGE, 0 },
        { "99999999999999999999999", -ERANGE, 0 },
        { "8388607.99999999999T", 0, 9223372036854775797ull },
        { "8388608T", -ERANGE, 0 },
        { "8191.99999999999999P", 0, 9223372036854775797ull },
        { "1,5k", -EINVAL, 0 },
        { "1_000", -EINVAL, 0 },
        { "١٢", -EINVAL, 0 },
        { "abc", -EINVAL, 0 },
        { "k", -EINVAL, 0 },
        { "", -EINVAL, 0 },
        { "1x", -EINVAL, 0 },
        { "0x7fffffffffffffff", 0, 9223372036854775807ull },
        { "0x8000000000000000", -ERANGE, 0 },
        { "0xffffffffffffffffff", -ERANGE, 0 },
        { "1.5x", -EINVAL, 0 },
        { "3.3333333333333333M", 0, 3495253ull },
        { "4.2T", 0, 4617948836659ull },
        { "123.456789G", 0, 132560717806ull },
        { "0x1e", 0, 30ull },
        { "0x1b", 0, 27ull },
        { "0x1p", 0, 1125899906842624ull },
        { "0X10M", 0, 16777216ull },
        { "0x10.5k", -EINVAL, 0 },
        { "0xk", -EINVAL, 0 },
        { "0x 10", -EINVAL, 0 },
        { "0x10kk", -EINVAL, 0 },
        { "0x7fffffffffffffffk", -ERANGE, 0 },
        { "0x1E", 0, 30ull },
        /* Where QEMU converts a fraction that rounds up to 1.0 into 0 (an
         * overflowing double-to-integer cast), we give the exact value. */
        { "1.99999999999999999999999999k", 0, 2048 },
        { "7.99999999999999999E", -ERANGE, 0 },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        uint64_t v = 12345;
        int ret = parse_size(t[i].in, &v);
        bool good = ret == t[i].ret && (ret < 0 ? v == 12345 : v == t[i].val);
        char want[32];
        if (t[i].ret) {
            snprintf(want, sizeof(want), "%s",
                     t[i].ret == -EINVAL ? "EINVAL" : "ERANGE");
        } else {
            snprintf(want, sizeof(want), "%llu",
                     (unsigned long long)t[i].val);
        }
        if (!tap_ok(good, "parse_size(\"%s\") -> %s", t[i].in, want)) {
            printf("#   got %d, %llu\n", ret, (unsigned long long)v);
        }
    }
    uint64_t v;
    tap_ok(strata_parse_size("64k", &v) == 0 && v == 65536,
           "strata_parse_size");
}

static void test_bool_uint(void)
{
    static const char *const yes[] = { "on", "yes", "true", "y", "1" };
    static const char *const no[] = { "off", "no", "false", "n", "0" };
    static const char *const bad[] = { "ON", "Yes", "", "2", "onn", "of",
                                       " on", "on ", "t", "f" };
    for (size_t i = 0; i < 5; i++) {
        bool b = false;
        tap_ok(parse_bool(yes[i], &b) == 0 && b, "parse_bool(%s) true",
               yes[i]);
        b = true;
        tap_ok(parse_bool(no[i], &b) == 0 && !b, "parse_bool(%s) false",
               no[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bool b;
        tap_ok(parse_bool(bad[i], &b) == -EINVAL, "parse_bool(\"%s\") fails",
               bad[i]);
    }

    static const struct { const char *in; int ret; uint64_t val; } u[] = {
        { "0", 0, 0 }, { "42", 0, 42 }, { "0x10", 0, 16 }, { "0XfF", 0, 255 },
        { "010", 0, 10 }, { "18446744073709551615", 0, UINT64_MAX },
        { "0xffffffffffffffff", 0, UINT64_MAX },
        { "18446744073709551616", -ERANGE, 0 },
        { "0x10000000000000000", -ERANGE, 0 },
        { "99999999999999999999x", -EINVAL, 0 }, { "", -EINVAL, 0 },
        { "-1", -EINVAL, 0 }, { "+1", -EINVAL, 0 }, { " 1", -EINVAL, 0 },
        { "1 ", -EINVAL, 0 }, { "0x", -EINVAL, 0 }, { "1k", -EINVAL, 0 },
        { "0x1g", -EINVAL, 0 }, { "1.0", -EINVAL, 0 }, { "ab", -EINVAL, 0 },
    };
    for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
        uint64_t v = 7;
        int ret = parse_uint(u[i].in, &v);
        tap_ok(ret == u[i].ret && (ret < 0 ? v == 7 : v == u[i].val),
               "parse_uint(\"%s\") = %d", u[i].in, u[i].ret);
    }

    /* number options, as qemu-img create -o refcount_bits=... read them */
    static const struct { const char *in; int ret; uint64_t val; } n[] = {
        { "16", 0, 16 }, { "0x10", 0, 16 }, { "020", 0, 16 },
        { "+16", 0, 16 }, { " 16", 0, 16 }, { "-1", 0, UINT64_MAX },
        { "-16", 0, (uint64_t)-16 }, { "18446744073709551615", 0, UINT64_MAX },
        { "18446744073709551616", -ERANGE, 0 }, { "08", -EINVAL, 0 },
        { "16 ", -EINVAL, 0 }, { "", -EINVAL, 0 }, { "0x", -EINVAL, 0 },
        { "1k", -EINVAL, 0 },
    };
    for (size_t i = 0; i < sizeof(n) / sizeof(n[0]); i++) {
        uint64_t v = 7;
        int ret = parse_number(n[i].in, &v);
        tap_ok(ret == n[i].ret && (ret < 0 ? v == 7 : v == n[i].val),
               "parse_number(\"%s\") = %d", n[i].in, n[i].ret);
    }
}

static void test_format_size(void)
{
    /* "virtual size: X" of qemu-img info on images of these sizes. */
    static const struct { uint64_t size; const char *text; } t[] = {
    { 0ull, "0 B" },
    { 512ull, "512 B" },
    { 1024ull, "1 KiB" },
    { 1536ull, "1.5 KiB" },
    { 4096ull, "4 KiB" },
    { 10240ull, "10 KiB" },
    { 69632ull, "68 KiB" },
    { 102400ull, "100 KiB" },
    { 1022976ull, "999 KiB" },
    { 1023488ull, "1e+03 KiB" },
    { 1024000ull, "0.977 MiB" },
    { 1047552ull, "0.999 MiB" },
    { 1048064ull, "1 MiB" },
    { 1048576ull, "1 MiB" },
    { 1572864ull, "1.5 MiB" },
    { 10485760ull, "10 MiB" },
    { 104857600ull, "100 MiB" },
    { 1048051712ull, "1e+03 MiB" },
    { 1073217536ull, "1 GiB" },
    { 1073741824ull, "1 GiB" },
    { 1610612736ull, "1.5 GiB" },
    { 5368709120ull, "5 GiB" },
    { 12345678848ull, "11.5 GiB" },
    { 999936ull, "976 KiB" },
    { 1000448ull, "977 KiB" },
    { 65536ull, "64 KiB" },
    { 2097152ull, "2 MiB" },
    { 3221225472ull, "3 GiB" },
    { 1099511627776ull, "1 TiB" },
    { 1098974756864ull, "1 TiB" },
    { 2199023255552ull, "2 TiB" },
    { 1125899906842624ull, "1 PiB" },
    { 1152921504606846976ull, "1 EiB" },
    { 8070450532247928832ull, "7 EiB" },
    { 1151795604700004352ull, "0.999 EiB" },
    { 1023999999999999488ull, "909 PiB" },
    { 2560ull, "2.5 KiB" },
    { 7680ull, "7.5 KiB" },
    { 1048576000ull, "0.977 GiB" },
    { 1073741824000ull, "0.977 TiB" },
    };
    char buf[32];
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char what[80];
        format_size(t[i].size, buf, sizeof(buf));
        snprintf(what, sizeof(what), "format_size(%llu) = %s",
                 (unsigned long long)t[i].size, t[i].text);
        is_str(buf, t[i].text, what);
    }
    format_size(UINT64_MAX, buf, sizeof(buf));
    is_str(buf, "16 EiB", "format_size(UINT64_MAX)");
    format_size(1536, buf, 4);
    is_str(buf, "1.5", "format_size truncates to the buffer");
}

static void test_errors(void)
{
    struct strata_error *err = NULL;

    tap_is(error_setg(&err, -ENOENT, "first %d\n", 1), -ENOENT,
           "error_setg returns its code");
    tap_is(error_setg(&err, -EIO, "second"), -EIO,
           "a second error still returns its own code");
    tap_ok(err && err->code == -ENOENT && strcmp(err->msg, "first 1") == 0,
           "the first error wins and loses its trailing newline");
    error_prepend(&err, "%s: ", "disk.img");
    is_str(err->msg, "disk.img: first 1", "error_prepend");
    is_str(error_msg(err, -EIO), "disk.img: first 1", "error_msg of an error");
    strata_error_free(err);

    is_str(error_msg(NULL, -ENOENT), "No such file or directory",
           "error_msg without an error is strerror");
    tap_is(error_setg(NULL, -EPERM, "ignored"), -EPERM, "NULL errp is fine");
    error_prepend(NULL, "x");
    err = NULL;
    error_prepend(&err, "x");
    tap_ok(err == NULL, "error_prepend on no error does nothing");

    error_setg_errno(&err, -ENOSPC, "Could not write '%s'", "a");
    tap_ok(err && err->code == -ENOSPC &&
           strcmp(err->msg, "Could not write 'a': No space left on device")
               == 0, "error_setg_errno appends strerror");

    struct strata_error *dst = NULL, *other = NULL;
    error_propagate(&dst, err);
    tap_ok(dst == err, "error_propagate moves into an empty slot");
    error_setg(&other, -EINVAL, "later");
    error_propagate(&dst, other);
    tap_ok(dst == err && strcmp(dst->msg, err->msg) == 0,
           "error_propagate keeps the first error (and frees the other)");
    other = NULL;
    error_setg(&other, -EINVAL, "dropped");
    error_propagate(NULL, other);
    error_propagate(&dst, NULL);
    tap_ok(dst == err, "propagating NULL changes nothing");
    strata_error_free(dst);
    strata_error_free(NULL);
}

int main(void)
{
    test_parse();
    test_getters();
    test_list_ops();
    test_validate();
    test_parse_size();
    test_bool_uint();
    test_format_size();
    test_errors();
    tap_plan(tap_n);
    return tap_done();
}
