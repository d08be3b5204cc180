#!/usr/bin/env bash
# strata-img snapshot -c/-l/-a/-d on qcow2 images of several layouts: the
# data each snapshot holds reads back (strata-io and qemu-io read -P) and
# qemu-img check finds no error and no leak after every step.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/snapshot/snapshot-helpers.sh"
requires qemu-img qemu-io
tmpdir

# One sequence on an image made with `create_opts`: two snapshots around
# plain, compressed and zero writes, apply the older one, delete in the
# middle, apply the newer one through its id.
sequence()
{
    local what=$1 opts=$2 img=$T/$1.qcow2
    qemu-img create -q -f qcow2 -o "$opts" "$img" 2M
    qemu-io -f qcow2 -c 'write -P 0x11 0 256k' -c 'write -c -P 0x22 1M 64k' \
        "$img" >/dev/null

    check "$what: create s1" strata-img snapshot -c s1 "$img"
    qclean "$what: after create" "$img"
    strata-io -f qcow2 -c 'write -P 0x33 0 4k' -c 'write -P 0x44 1M 4k' \
        -c 'write -z 128k 64k' -c 'discard 192k 64k' "$img" >/dev/null
    check "$what: writes after the snapshot land" \
        rpat "$img" 0 4k 0x33
    check "$what: the rest is untouched" rpat "$img" 4k 124k 0x11
    qclean "$what: after writing over shared clusters" "$img"

    check "$what: create s2" strata-img snapshot -c s2 "$img"
    check_eq "$what: list" "$(sn_names "$img" | tr '\n' ' ')" "1:s1 2:s2 "
    check "$what: apply s1 by name" strata-img snapshot -a s1 "$img"
    qclean "$what: after apply" "$img"
    check "$what: s1's data is back" rpat "$img" 0 256k 0x11
    check "$what: s1's compressed data is back" rpat "$img" 1M 64k 0x22

    strata-io -f qcow2 -c 'write -P 0x55 64k 4k' "$img" >/dev/null
    check "$what: delete s1 (in use before)" strata-img snapshot -d s1 "$img"
    qclean "$what: after delete" "$img"
    check "$what: active data survives the delete" rpat "$img" 64k 4k 0x55
    check "$what: apply s2 by id" strata-img snapshot -a 2 "$img"
    check "$what: s2's data" rpat "$img" 0 4k 0x33
    check "$what: s2's zeroes" rpat "$img" 128k 64k 0
    check "$what: s2's overwrite of compressed data" rpat "$img" 1M 4k 0x44
    check "$what: delete s2" strata-img snapshot -d s2 "$img"
    check_eq "$what: none left" "$(strata-img snapshot -l "$img")" ""
    qclean "$what: at the end" "$img"
}

sequence v3 compat=1.1
sequence v2 compat=0.10
sequence c512 cluster_size=512
sequence r64 refcount_bits=64
sequence r4 refcount_bits=4

# refcount_bits=2 holds three references: a third owner is refused before
# anything changes (qemu-img fails the same way, leaving leaks behind)
img=$T/r2.qcow2
qemu-img create -q -f qcow2 -o refcount_bits=2 "$img" 1M
qemu-io -f qcow2 -c 'write -P 0x11 0 64k' "$img" >/dev/null
strata-img snapshot -c s1 "$img"
strata-img snapshot -c s2 "$img"
check_eq "refcount_bits=2: applying a third reference is refused" \
    "$(strata-img snapshot -a s1 "$img" 2>&1; echo "rc=$?")" \
    "strata-img: Could not apply snapshot 's1': Failed to load snapshot: \
Invalid argument
rc=1"
qclean "refcount_bits=2: the refusal changed nothing" "$img"

# refcount_bits=1 cannot hold a second reference: refused, nothing leaks
img=$T/r1.qcow2
qemu-img create -q -f qcow2 -o refcount_bits=1 "$img" 1M
qemu-io -f qcow2 -c 'write -P 0x11 0 64k' "$img" >/dev/null
check_exit "refcount_bits=1: create fails as qemu-img" 1 \
    strata-img snapshot -c x "$img"
qclean "refcount_bits=1: no leak after the refusal" "$img"
check "refcount_bits=1: data intact" rpat "$img" 0 64k 0x11

# a snapshot of an overlay holds the overlay only; the backing file stays
qemu-img create -q -f qcow2 "$T/base.qcow2" 1M
qemu-io -f qcow2 -c 'write -P 0x66 0 1M' "$T/base.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$T/top.qcow2"
qemu-io -f qcow2 -c 'write -P 0x77 0 64k' "$T/top.qcow2" >/dev/null
check "overlay: create" strata-img snapshot -c t "$T/top.qcow2"
strata-io -f qcow2 -c 'write -P 0x78 0 128k' "$T/top.qcow2" >/dev/null
check "overlay: apply" strata-img snapshot -a t "$T/top.qcow2"
check "overlay: own data back" rpat "$T/top.qcow2" 0 64k 0x77
check "overlay: backing data shows through" rpat "$T/top.qcow2" 64k 64k 0x66
qclean "overlay" "$T/top.qcow2"

# many snapshots: ids count on, deleting all frees everything again
img=$T/many.qcow2
qemu-img create -q -f qcow2 "$img" 1M
for i in 1 2 3 4 5 6; do
    strata-io -f qcow2 -c "write -P $i $((i * 64))k 64k" "$img" >/dev/null
    strata-img snapshot -c "n$i" "$img"
done
check_eq "six snapshots listed" "$(sn_names "$img" | wc -l)" 6
strata-img snapshot -d n3 "$img"
strata-img snapshot -c again "$img"
check_eq "a new id is one more than the largest" \
    "$(sn_names "$img" | tail -n1)" "7:again"
qclean "six snapshots, one deleted" "$img"
check "apply n2 among many" strata-img snapshot -a n2 "$img"
check "n2 has what was written before it" rpat "$img" 128k 64k 2
check "n2 lacks what came after" rpat "$img" 192k 64k 0
for n in n1 n2 n4 n5 n6 again; do
    strata-img snapshot -d "$n" "$img"
done
qclean "all deleted" "$img"
check "the last state stays readable" rpat "$img" 128k 64k 2

done_testing
