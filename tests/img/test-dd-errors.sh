#!/usr/bin/env bash
# strata-img dd: operand and option errors with qemu-img's messages, all
# with status 1.
. "$top_srcdir/tests/functions.sh"
requires strata-img
tmpdir
cd "$T"

head -c 64k /dev/urandom >in.raw

# fails DESC MSG ARGS...: status 1 with exactly MSG on stderr.
fails()
{
    local desc=$1 msg=$2 rc=0 err
    shift 2
    err=$(strata-img "$@" 2>&1 >/dev/null) || rc=$?
    check_eq "$desc" "$rc:$err" "1:$msg"
}

suffix="You may use k, M, G, T, P or E suffixes for
strata-img: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes."

plan 13

fails "no operands" "strata-img: Must specify both input and output files" dd
fails "no output" "strata-img: Must specify both input and output files" \
    dd if=in.raw
fails "no input" "strata-img: Must specify both input and output files" \
    dd of=out.raw
fails "unknown operand" "strata-img: unrecognized operand foo" \
    dd if=in.raw of=out.raw foo=1
fails "operand without =" "strata-img: unrecognized operand extra" \
    dd if=in.raw of=out.raw extra
fails "bs=0" \
    "strata-img: Invalid bs specified. Must be between 1 and 2147483647." \
    dd if=in.raw of=out.raw bs=0
fails "bs too large" \
    "strata-img: Invalid bs specified. Must be between 1 and 2147483647." \
    dd if=in.raw of=out.raw bs=2G
fails "bad bs" "strata-img: Invalid bs specified. $suffix" \
    dd if=in.raw of=out.raw bs=1x
fails "negative count" "strata-img: Invalid count specified. $suffix" \
    dd if=in.raw of=out.raw count=-1
fails "bad skip" "strata-img: Invalid skip specified. $suffix" \
    dd if=in.raw of=out.raw skip=z
fails "missing input" \
    "strata-img: Could not open 'nonexist.raw': Could not open 'nonexist.raw': No such file or directory" \
    dd if=nonexist.raw of=out.raw
fails "unknown output format" "strata-img: Unknown file format" \
    dd -O nosuchfmt if=in.raw of=out.raw
[ ! -e out.raw ] && ok "failed runs create no output" ||
    not_ok "failed runs create no output"

done_testing
