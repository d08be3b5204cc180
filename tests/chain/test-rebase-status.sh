#!/usr/bin/env bash
# strata-img rebase reads a backing side only where its allocation status
# does not already say "zeroes" (holes in a raw file, zero clusters, past
# its end, no backing at all), and skips ranges where both sides are
# zeroes; the pages it writes are written back and evicted as it goes.
# None of this may change the result: every combination of zero and data
# on the old and the new side, equal and different, with differences down
# to single sectors, must give the image qemu-img rebase gives: the same
# content, the same clusters (qemu-img map) and a clean qemu-img check.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/chain/chain-lib.sh"
requires strata-img qemu-img qemu-io
tmpdir
cd "$T"

# old chain: raw base with holes under a qcow2 mid with zero clusters;
# the top (8 MiB) allocates a little of its own
mkdir orig
qemu-img create -q -f raw orig/base.raw 6M
qemu-io -f raw -c 'write -P 0x11 0 1M' -c 'write -P 0x12 2M 1M' \
    -c 'write -P 0x13 4M 512k' -c 'write -z 4608k 64k' \
    orig/base.raw >/dev/null
qemu-img create -q -f qcow2 -b base.raw -F raw orig/mid.qcow2 8M
qemu-io -c 'write -z 512k 128k' -c 'write -P 0x21 6M 256k' \
    -c 'write -z 2M 64k' orig/mid.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 orig/top.qcow2 8M
qemu-io -c 'write -P 0x31 1M 64k' -c 'write -P 0x32 7M 64k' \
    orig/top.qcow2 >/dev/null

# new backing (raw, 7 MiB, shorter than the top): equal to the old chain
# in places, zeroes where the old one has data and data where it has
# holes, and single sectors changed inside equal data
qemu-img create -q -f raw orig/new.raw 7M
qemu-io -f raw -c 'write -P 0x11 0 512k' -c 'write -P 0x11 768k 256k' \
    -c 'write -P 0x55 1536k 256k' -c 'write -P 0x12 2M 1M' \
    -c 'write -P 0x99 2560k 512' -c 'write -P 0x99 3000k 1k' \
    -c 'write -P 0x66 5M 512k' orig/new.raw >/dev/null
# and the same as qcow2, zero clusters instead of holes
qemu-img convert -q -f raw -O qcow2 orig/new.raw orig/new.qcow2

fresh()
{
    rm -rf q s
    cp -r orig q
    cp -r orig s
}

# both DESC ARGS...: the same rebase of top.qcow2 by both tools
both()
{
    local desc=$1
    shift
    fresh
    (cd q && qemu-img rebase -q "$@" top.qcow2)
    (cd s && strata-img rebase -q "$@" top.qcow2)
    same_image "$desc: reads as before" orig/top.qcow2 s/top.qcow2
    qemu-img convert -q -O raw s/top.qcow2 s/flat.raw
    qemu-img convert -q -O raw q/top.qcow2 q/flat.raw
    check "$desc: byte for byte as qemu-img's" cmp q/flat.raw s/flat.raw
    check_eq "$desc: the same clusters as qemu-img's" \
        "$(map_nooff s/top.qcow2)" "$(map_nooff q/top.qcow2)"
    clean_image "$desc: clean" s/top.qcow2
}

both "onto raw with holes" -b new.raw -F raw
both "onto qcow2 with zero clusters" -b new.qcow2 -F qcow2
both "flatten (-b '')" -b ''
both "onto the raw base of its own chain" -b base.raw -F raw

done_testing
