#!/usr/bin/env bash
# strata-img create: the size argument in QEMU's syntax (suffixes,
# fractions, hex), the size it records, and qemu-img's messages for sizes
# it refuses.
. "$top_srcdir/tests/functions.sh"
requires strata-img
tmpdir
cd "$T"

# size ARG WANT: "create img ARG" announces size WANT and makes a file of
# WANT bytes rounded up to a sector (as QEMU's file protocol does).
size()
{
    local arg=$1 want=$2 out rc=0 got
    rm -f img
    out=$(strata-img create img "$arg" 2>&1) || rc=$?
    got=$(printf '%s\n' "$out" | sed -n "s/^Formatting 'img', fmt=raw size=\([0-9]*\).*/\1/p")
    if [ "$rc" = 0 ] && [ "$got" = "$want" ] &&
        [ "$(file_size img)" = $(((want + 511) / 512 * 512)) ]; then
        ok "size '$arg' is $want"
    else
        not_ok "size '$arg' is $want"
        diag "status $rc, announced '$got', file size $(file_size img 2>&1)"
        diag "$out"
    fi
}

suffix_msg="strata-img: Invalid image size specified. You may use k, M, G, T, P or E suffixes for
strata-img: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes."
range_msg="strata-img: Invalid image size specified. Must be between 0 and 9223372036854775807."

# bad ARG MSG: "create img ARG" fails with status 1, MSG and no image.
bad()
{
    local arg=$1 msg=$2 out rc=0
    rm -f img
    out=$(strata-img create img "$arg" 2>&1) || rc=$?
    if [ "$rc" = 1 ] && [ "$out" = "$msg" ] && [ ! -e img ]; then
        ok "size '$arg' is refused"
    else
        not_ok "size '$arg' is refused"
        diag "status $rc, output:"
        diag "$out"
    fi
}

plan 40

size 0 0
size 1 1
size 1b 1
size 1B 1
size 100 100
size 512 512
size 1k 1024
size 1K 1024
size 64k 65536
size 1.5M 1572864
size 1m 1048576
size 1G 1073741824
size 1T 1099511627776
size 1.25k 1280
size 0.5k 512
size 1.0001k 1024
size 1.0 1
size 5. 5
size 5.k 5120
size 010 10
size +5 5
size ' 7' 7
size 0x10 16
size 0x200 512

bad 10X "$suffix_msg"
bad 1.5 "$suffix_msg"
bad 1.5b "$suffix_msg"
bad 1kb "$suffix_msg"
bad 1KiB "$suffix_msg"
bad 1.5e3 "$suffix_msg"
bad .5k "$suffix_msg"
bad k "$suffix_msg"
bad '' "$suffix_msg"
bad 0x1.8k "$suffix_msg"
bad '5 ' "$suffix_msg"
bad 8E "$range_msg"
bad 9E "$range_msg"
bad 99999999999999999999 "$range_msg"

# A multiplier on a hex number works but is deprecated, as in QEMU.
out=$(strata-img create -q img 0x10k 2>&1)
check_eq "hex with a suffix warns" "$out" \
    "strata-img: warning: Using a multiplier suffix on hex numbers is deprecated: 0x10k"
check_eq "hex with a suffix is scaled" "$(file_size img)" 16384

done_testing
