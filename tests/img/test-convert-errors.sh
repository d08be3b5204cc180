#!/usr/bin/env bash
# convert's usage errors and refusals: each fails cleanly with qemu-img's
# message (the program name aside), and features no driver backs yet
# (-c, -l, -B on raw) are refused rather than ignored.
. "$top_srcdir/tests/functions.sh"
requires strata-img qemu-img
tmpdir

src=$T/src.raw
qemu-img create -q -f raw "$src" 1M
qemu-img create -q -f raw "$T/small.raw" 512k

# Sanitizer builds warn about the coroutine stack switches on stderr.
no_asan() { grep -v '^==[0-9]*==WARNING: ASan' || true; }

# same_error DESC ARGS...: both tools fail with the same message, and
# strata-img leaves no output file behind when it refused up front.
same_error()
{
    local desc=$1 q s rs=0
    shift
    rm -f "$T/out.raw"
    q=$(cd "$T" && qemu-img convert "$@" 2>&1 | sed 's/^qemu-img:/PROG:/')
    rm -f "$T/out.raw"
    s=$(cd "$T" && strata-img convert "$@" 2>&1) || rs=$?
    s=$(printf '%s\n' "$s" | no_asan | sed 's/^strata-img:/PROG:/')
    if [ "$rs" = 1 ] && [ "$s" = "$q" ]; then
        ok "$desc"
    else
        not_ok "$desc"
        diag "exit status $rs, want 1"
        diag "got: $s"
        diag "want: $q"
    fi
}

same_error "no file names" -f raw
same_error "-m 0" -m 0 src.raw out.raw
same_error "-m 17" -m 17 src.raw out.raw
same_error "-m x" -m x src.raw out.raw
same_error "-S 100 (not a sector multiple)" -S 100 src.raw out.raw
same_error "-S 32M (too large)" -S 32M src.raw out.raw
same_error "-S x" -S x src.raw out.raw
same_error "-r x" -r x src.raw out.raw
same_error "--target-is-zero without -n" --target-is-zero src.raw out.raw
same_error "--target-image-opts without -n" --target-image-opts \
    src.raw out.raw
same_error "-o with -n" -n -o preallocation=full src.raw small.raw
same_error "-C with -c" -C -c src.raw out.raw
same_error "-C with -S" -C -S 4k src.raw out.raw
same_error "-t bogus" -t bogus src.raw out.raw
same_error "-T bogus" -T bogus src.raw out.raw
same_error "unknown output format" -O nosuchfmt src.raw out.raw
same_error "unknown create option" -o nosuchopt=1 src.raw out.raw
same_error "-c (compression) on raw" -c src.raw out.raw
same_error "-l (snapshot) on raw" -l snap src.raw out.raw
same_error "-B (backing) on raw" -B src.raw src.raw out.raw
same_error "-F without backing support" -F raw src.raw out.raw
same_error "--bitmaps on raw" --bitmaps src.raw out.raw
same_error "missing input" -f raw nosuchfile.raw out.raw
same_error "-n without an existing target" -n -f raw src.raw nosuch.raw
same_error "-n into a smaller target" -n -f raw src.raw small.raw
check_fail "unknown option" strata-img convert --no-such-option "$src" \
    "$T/out.raw"
check_fail "missing option argument" strata-img convert "$src" -m

# A failed create leaves the tool failing with qemu-img's wording.
check_match "create failure names the target and the format" \
    "$(strata-img convert -f raw "$src" "$T/no/such/dir/out.raw" 2>&1)" \
    "^strata-img: $T/no/such/dir/out.raw: error while converting raw: "

done_testing
