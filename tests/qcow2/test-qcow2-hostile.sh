#!/usr/bin/env bash
# Hostile and damaged qcow2 images give clear errors (QEMU's wording where
# QEMU has one) and never a crash: impossible cluster sizes, tables past
# the end of the file or misaligned, unknown incompatible features,
# truncated files; the corrupt and dirty bits; inconsistencies found while
# running mark the image corrupt and stop further I/O.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/qcow2/qcow2-helpers.sh"
requires qemu-img qemu-io strata-img strata-io
tmpdir
cd "$T"

# base.qcow2: 64 KiB clusters; header, reftable 0x10000, refblock 0x20000,
# L1 0x30000, L2 0x40000, data 0x50000 and 0x60000.
qemu-img create -q -f qcow2 base.qcow2 1M
qemu-io -c "write -P 7 0 128k" base.qcow2 >/dev/null

# variant NAME OFFSET HEX: a copy of base.qcow2 with bytes replaced.
variant()
{
    cp base.qcow2 "$1.qcow2"
    poke "$1.qcow2" "$2" "$3"
}

# opens_like NAME: strata-img info fails cleanly with qemu-img's message.
opens_like()
{
    local f=$1.qcow2 a b
    check_fail "$1: refused" strata-img info "$f"
    a=$(strata-img info "$f" 2>&1 | no_asan | sed 's/^strata-img: //')
    b=$(qemu-img info "$f" 2>&1 | sed 's/^qemu-img: //')
    check_eq "$1: qemu-img's message" "$a" "$b"
}

# refused_with NAME REGEX [strata-io options]: opening fails cleanly and
# the message matches REGEX.
refused_with()
{
    local name=$1 re=$2
    shift 2
    check_fail "$name: refused" strata-io "$@" -c "read 0 512" "$name.qcow2"
    check_match "$name: clear message" \
        "$(strata-io "$@" -c 'read 0 512' "$name.qcow2" 2>&1 | no_asan)" "$re"
}

variant cbits30 20 0000001e
opens_like cbits30
variant cbits8 20 00000008
opens_like cbits8
variant version4 4 00000004
opens_like version4
variant l1unaligned 40 0000000000030200
opens_like l1unaligned
variant l1small 36 00000000
opens_like l1small
variant l1huge 36 7fffffff
opens_like l1huge
variant rorder7 96 00000007
opens_like rorder7
variant hlen 100 00000032
opens_like hlen
variant bfoff 8 0000000000020000
opens_like bfoff
variant extbig 116 00100000
opens_like extbig
variant rtzero 56 00000000
opens_like rtzero
variant sizehuge 24 4000000000000000
opens_like sizehuge
variant ctype 104 09
opens_like ctype
variant incompat 72 0000000000100000
opens_like incompat
# an unknown bit that the image's own feature table names
variant named 72 0000000000000200
poke named.qcow2 $((0x70 + 8 + 4 * 48 + 1)) 09
opens_like named
check_match "named: the feature is named" "$(strata-img info named.qcow2 2>&1)" \
    "Unsupported qcow2 feature\(s\): extended L2 entries"

# tables past the end of the file (QEMU would read zeroes there)
variant l1past 40 0000000000100000
refused_with l1past "Active L1 table .* past the end of the image file"
variant rtpast 48 0000000001000000
refused_with rtpast "Reference count table .* past the end of the image file"
cp base.qcow2 trunc.qcow2
truncate -s 1000 trunc.qcow2
refused_with trunc "Reference count table .* past the end of the image file"
cp base.qcow2 trunc100k.qcow2
truncate -s 100k trunc100k.qcow2
refused_with trunc100k "past the end of the image file"
cp base.qcow2 tiny.qcow2
truncate -s 40 tiny.qcow2
refused_with tiny "Image is not in qcow2 format|header too short" -f qcow2
# data lost with the end of the file: reads zeroes, no crash
cp base.qcow2 trunc300k.qcow2
truncate -s 300k trunc300k.qcow2
check "truncated data: reads zeroes without error" strata-io -r \
    -c "read -P 0 0 128k" trunc300k.qcow2

# the corrupt and dirty bits
variant corrupt 72 0000000000000002
refused_with corrupt "Image is corrupt; cannot be opened read/write"
check "corrupt: opens read-only" strata-io -r -c "read -P 7 0 128k" corrupt.qcow2
variant dirty 72 0000000000000001
check "dirty: opens read-only" strata-io -r -c "read -P 7 0 128k" dirty.qcow2
# read-write: repaired on open (test-qcow2-lazy.sh looks closer), or
# refused with a clear message where this build cannot repair
cp dirty.qcow2 dirtyrw.qcow2
if out=$(strata-io -c "read -P 7 0 128k" dirtyrw.qcow2 2>&1); then
    ok "dirty: read-write open repairs it"
    qcheck "dirty: qemu-img check clean after the repair" dirtyrw.qcow2
else
    check_match "dirty: read-write open refused clearly" "$out" \
        "dirty.*not supported in this build"
    ok "dirty: qemu-img check after the repair # SKIP no repair"
fi
check_eq "dirty: info reports the dirty flag" \
    "$(strata-img info --output=json dirty.qcow2 | grep dirty-flag)" \
    '    "dirty-flag": true'

# inconsistencies found at run time: I/O fails, the image is marked corrupt
variant l2unaligned $((0x30000)) 8000000000040200
check_fail "unaligned L2 table: read fails" strata-io -c "read 0 512" \
    l2unaligned.qcow2
check_match "unaligned L2 table: marked corrupt" \
    "$(qemu-img info l2unaligned.qcow2)" "corrupt: true"
variant dataunaligned $((0x40000)) 8000000000050200
check_fail "unaligned data cluster: read fails" strata-io -c "read 0 512" \
    dataunaligned.qcow2
check_match "unaligned data cluster: marked corrupt" \
    "$(qemu-img info dataunaligned.qcow2)" "corrupt: true"
variant overlap $((0x40000)) 8000000000010000
check_fail "data cluster on the refcount table: write fails" \
    strata-io -c "write -P 1 0 512" overlap.qcow2
check_eq "data cluster on the refcount table: not overwritten" \
    "$(peek overlap.qcow2 $((0x10000)) 8)" "0000000000020000"
check_match "data cluster on the refcount table: marked corrupt" \
    "$(qemu-img info overlap.qcow2)" "corrupt: true"
refused_with overlap "Image is corrupt; cannot be opened read/write"
variant l2reftable $((0x30000)) 8000000000010000
check_fail "L2 table on the refcount table: write fails" \
    strata-io -c "write -P 1 0 512" l2reftable.qcow2
check_eq "L2 table on the refcount table: table intact" \
    "$(peek l2reftable.qcow2 $((0x10000)) 16)" \
    "00000000000200000000000000000000"
check_match "L2 table on the refcount table: marked corrupt" \
    "$(qemu-img info l2reftable.qcow2)" "corrupt: true"
variant v2zero 4 00000002
poke v2zero.qcow2 $((0x40000)) 0000000000000001
check_fail "zero flag in a v2 image: read fails" strata-io -r -c "read 0 512" \
    v2zero.qcow2
done_testing
