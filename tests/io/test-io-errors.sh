#!/usr/bin/env bash
# strata-io's errors: each command's refusals in qemu-io's wording, and the
# exit status, which is 1 whenever any command failed (also when a later
# command succeeded).
. "$top_srcdir/tests/functions.sh"
requires strata-io
tmpdir

img=$T/a.raw
truncate -s 4M "$img"

sio()
{
    rc=0
    out=$(strata-io -f raw "$@" "$img" 2>&1) || rc=$?
}

# fails DESC OUTPUT-REGEX ARGS...: strata-io ARGS exits 1 printing a line
# that matches.
fails()
{
    local desc=$1 re=$2
    shift 2
    sio "$@"
    if [ "$rc" = 1 ] && grep -Eq -- "$re" <<<"$out"; then
        ok "$desc"
    else
        not_ok "$desc"
        diag "exit status $rc, output:"
        diag "$out"
        diag "wanted exit status 1 and a line matching: $re"
    fi
}

plan 37

fails "read past the end" 'read failed: Input/output error$' -c 'read 4M 512'
fails "write past the end" 'write failed: Input/output error$' \
    -c 'write 4M 512'
fails "readv past the end" 'readv failed: Input/output error$' \
    -c 'readv 4M 512'
fails "writev past the end" 'writev failed: Input/output error$' \
    -c 'writev 4M 512'
fails "unknown command" '^command "foo" not found$' -c foo
fails "too few arguments" \
    '^bad argument count 1 to read, expected at least 2 arguments$' \
    -c 'read 0'
fails "too many arguments" \
    '^bad argument count 1 to length, expected 0 arguments$' -c 'length 1'
fails "argument count range" \
    '^bad argument count 0 to truncate, expected between 1 and 3 arguments$' \
    -c truncate
fails "bad number" \
    '^Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- 1x$' \
    -c 'read 0 1x'
fails "fraction of a byte" \
    '^Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- 1.5$' \
    -c 'read 0 1.5'
fails "number too large" '^Parsing error: argument too large -- 8E$' \
    -c 'read 8E 512'
fails "length over the request limit" \
    '^length cannot exceed 2147483136, given 3G$' -c 'read 0 3G'
fails "vector length over the limit" \
    "^Argument '3G' exceeds maximum size 2147483136$" -c 'readv 0 3G'
fails "bad pattern byte" '^300 is not a valid pattern byte$' \
    -c 'write -P 300 0 512'
fails "negative offset is an unknown option" \
    "^read: invalid option -- '1'$" -c 'read -1 512'
fails "usage after a bad option" \
    '^read \[-Cqv\] \[-P pattern \[-s off\] \[-l len\]\] off len -- ' \
    -c 'read -x 0 512'
fails "-s without -P" '^read \[-Cqv\]' -c 'read -s 1 0 512'
fails "-u without -z" '^-u requires -z to be specified$' -c 'write -u 0 512'
fails "-n without -z" '^-n requires -z to be specified$' -c 'write -n 0 512'
fails "-z with -P" \
    '^Only one of -z, -P, and -s can be specified at the same time$' \
    -c 'write -z -P 1 0 512'
fails "-f with -c" \
    '^-f and -b or -c cannot be specified at the same time$' \
    -c 'write -f -c 0 512'
fails "aio_write -z with several lengths" \
    '^-z supports only a single length parameter$' \
    -c 'aio_write -z 0 512 512'
fails "write -s with a missing file" 'nonexistent: No such file' \
    -c "write -s $T/nonexistent 0 512"
fails "truncate -m bogus" "Invalid preallocation mode 'bogus'$" \
    -c 'truncate -m bogus 8M'
fails "sleep with a non-number" '^abc is not a valid number$' -c 'sleep abc'
fails "help for an unknown command" '^command nosuch not found$' \
    -c 'help nosuch'
fails "open while a file is open" "file open already, try 'help close'$" \
    -c "open $img"

# exit status
sio -c 'read 4M 512' -c 'read -q 0 512'
check_eq "a failure followed by a success still exits 1" "$rc" 1
sio -c 'read -q 0 512' -c 'write -q 0 512' -c length
check_eq "all commands succeeding exits 0" "$rc" 0

# no file, read-only, unopenable images
rc=0
out=$(strata-io -c 'read 0 512' 2>&1) || rc=$?
check_eq "a command without an image" "$rc:$out" \
    "1:no file open, try 'help open'"
rc=0
out=$(strata-io -c 'sleep 1' -c 'help quit' 2>&1) || rc=$?
check_eq "sleep and help need no image" "$rc:$out" "0:quit -- exit the program"
sio -r -c 'write 0 512'
check_match "write on a read-only image" "$rc:$out" \
    '^1:strata-io: Block node is read-only$'
sio -r -c 'discard 0 512' -c 'truncate 8M' -c 'aio_write 0 512' \
    -c 'writev 0 512' -c 'read -q 0 512'
check_eq "every writing command refused read-only" \
    "$rc:$(grep -c 'Block node is read-only' <<<"$out")" "1:4"
check_eq "the image is unchanged" "$(file_size "$img")" 4194304
rc=0
out=$(strata-io -f raw -c 'read 0 512' "$T/nonexistent" 2>&1) || rc=$?
check_match "a missing image exits 1 naming it" "$rc:$out" \
    "^1:strata-io: can't open device $T/nonexistent: "
check_eq "commands are not run when the image does not open" \
    "$(grep -c '^read' <<<"$out")" 0
rc=0
out=$(strata-io -c "open $T/nonexistent" -c 'read 0 512' 2>&1) || rc=$?
check_match "open of a missing image fails" "$rc:$out" \
    "^1:strata-io: can't open device $T/nonexistent: "

done_testing
