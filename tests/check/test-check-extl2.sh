#!/usr/bin/env bash
# check on qcow2 images with extended L2 entries (extended_l2=on), written
# by strata-io and by qemu-io: healthy images check clean exactly as
# qemu-img says; images damaged in their subcluster bitmaps, refcounts,
# COPIED flags and offsets get qemu-img's findings (human and JSON), the
# same repairs with -r leaks / -r all (byte-identical results), and a
# dirty lazy-refcounts image is repaired when opened read-write.
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io python3
tmpdir
. "$top_srcdir/tests/check/check-lib.sh"
XDAMAGE="python3 $top_srcdir/tests/check/extl2-damage.py"

cd "$T"
# the same requests from both tools: partial subclusters, zeroed ones,
# a compressed cluster, a whole cluster and data beyond the first L2
IO_CMDS=(-c "write -P 0x11 0 4k" -c "write -P 0x22 64k 64k"
         -c "write -z 128k 8k" -c "write -P 0x44 200k 6k"
         -c "write -c -P 0x33 256k 64k" -c "write -P 0x55 3M 100k")
qemu-img create -q -f qcow2 -o extended_l2=on q-base.qcow2 8M
qemu-io "${IO_CMDS[@]}" q-base.qcow2 >/dev/null
strata-img create -q -f qcow2 -o extended_l2=on s-base.qcow2 8M
strata-io "${IO_CMDS[@]}" s-base.qcow2 >/dev/null
# 32 KiB clusters (1 KiB subclusters), 64-bit refcounts
strata-img create -q -f qcow2 -o extended_l2=on,cluster_size=32k,refcount_bits=64 \
    s-small.qcow2 4M
strata-io -c "write -P 0x66 1k 3k" -c "write -z 40k 2k" -c "write -P 7 1M 33k" \
    s-small.qcow2 >/dev/null

DAMAGES="bitmap-overlap unalloc-alloc compressed-bitmap leak refcount-minus
copied-clear misaligned-zero misaligned-data"
plan $((3 * 4 + 2 + 8 * 6 + 7))

for img in q-base.qcow2 s-base.qcow2 s-small.qcow2; do
    same_check "$img: check" "$img"
    same_check "$img: check --output=json" "$img" --output=json
    same_check "$img: check -r leaks" "$img" -r leaks
    same_check "$img: check -r all" "$img" -r all
done
check "strata's image reads as qemu's" qemu-img compare -q q-base.qcow2 s-base.qcow2
check "qemu-img check finds strata's 32k image clean" qemu-img check -q s-small.qcow2

for d in $DAMAGES; do
    cp s-base.qcow2 dmg.qcow2
    $XDAMAGE dmg.qcow2 "$d"
    same_check "$d: check" dmg.qcow2
    same_check "$d: check --output=json" dmg.qcow2 --output=json
    same_check "$d: check -r leaks" dmg.qcow2 -r leaks
    check "$d: -r leaks repaired to the same bytes" cmp "$CMP_S" "$CMP_Q"
    same_check "$d: check -r all" dmg.qcow2 -r all
    check "$d: -r all repaired to the same bytes" cmp "$CMP_S" "$CMP_Q"
done

# a dirty image (lazy refcounts, killed before closing) is repaired on a
# read-write open, and says so nowhere but in the refcounts
qemu-img create -q -f qcow2 -o extended_l2=on,lazy_refcounts=on dirty.qcow2 4M
sh -c 'qemu-io -c "write -P 0x77 0 100k" -c "write -z 200k 4k" \
    -c "sigraise 9" dirty.qcow2' >/dev/null 2>&1 || true
check_match "the image is dirty" "$(qemu-img info --output=json dirty.qcow2)" \
    '"dirty-flag": true'
same_check "dirty image: check" dirty.qcow2
same_check "dirty image: check --output=json" dirty.qcow2 --output=json
check "strata-io opens it read-write" strata-io -c "write -P 0x78 300k 4k" dirty.qcow2
check "qemu-img check finds it clean" qemu-img check -q dirty.qcow2
check_match "no longer dirty" "$(qemu-img info --output=json dirty.qcow2)" \
    '"dirty-flag": false'
check "its data survived" qemu-io -c "read -P 0x77 0 100k" \
    -c "read -P 0 200k 4k" -c "read -P 0x78 300k 4k" dirty.qcow2
done_testing
