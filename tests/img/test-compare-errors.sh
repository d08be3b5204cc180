#!/usr/bin/env bash
# strata-img compare's exit statuses for errors, as qemu-img's: 2 when an
# image cannot be opened (or the cache mode is wrong), 1 for usage errors.
. "$top_srcdir/tests/functions.sh"
requires strata-img
tmpdir
cd "$T"

run()
{
    rc=0
    strata-img "$@" >"$T/out.txt" 2>"$T/err.txt" || rc=$?
    out=$(cat "$T/out.txt")
    err=$(cat "$T/err.txt")
}

truncate -s 1M a.raw

plan 8

run compare a.raw nonexist.raw
check_eq "second image missing: status 2" "$rc:$err" \
    "2:strata-img: Could not open 'nonexist.raw': Could not open 'nonexist.raw': No such file or directory"
run compare nonexist.raw a.raw
check_eq "first image missing: status 2" "$rc" 2
run compare -T bogus a.raw a.raw
check_eq "bad cache mode: status 2" "$rc:$err" \
    "2:strata-img: Invalid source cache option: bogus"
run compare -f nosuchfmt a.raw a.raw
check_eq "unknown format: status 2" "$rc" 2
run compare -p nonexist.raw a.raw
check_eq "-p still ends the progress line" "$rc:$(od -An -c <"$T/out.txt" | tr -d ' \n')" '2:\n'
run compare a.raw
check_eq "one file name: usage error, status 1" "$rc:$err" \
    "1:strata-img: Expecting two image file names
Try 'strata-img --help' for more information"
run compare a.raw a.raw a.raw
check_eq "three file names" "$rc" 1
run compare --image-opts -f raw a.raw a.raw
check_eq "--image-opts with -f: status 2" "$rc:$err" \
    "2:strata-img: --image-opts and --format are mutually exclusive"

done_testing
