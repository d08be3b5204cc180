#!/usr/bin/env bash
# measure -l: the content of an internal snapshot measured as qemu-img
# measure -l measures it (output, JSON, messages, exit status) for each
# way of naming the snapshot, snapshots taken at a smaller virtual size,
# images with extended L2 entries, and inputs without snapshots.
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io
tmpdir
. "$top_srcdir/tests/reshape/reshape-lib.sh"
cd "$T"

# 4k clusters: the first snapshot's L1 table is shorter than the image's
qemu-img create -q -f qcow2 -o cluster_size=4k small.qcow2 3M
qemu-io -c 'write -P 1 0 1M' -c 'write -z 1M 64k' -c 'write -P 1 2560k 100k' \
    small.qcow2 >/dev/null
qemu-img snapshot -c first small.qcow2
qemu-img resize -q small.qcow2 12M
qemu-io -c 'write -P 2 9M 1M' -c 'write -P 3 0 4k' small.qcow2 >/dev/null
qemu-img snapshot -c 5 small.qcow2
qemu-io -c 'discard 0 12M' small.qcow2 >/dev/null
# extended L2, snapshots taken by strata-img
strata-img create -q -f qcow2 -o extended_l2=on ext.qcow2 8M
strata-io -c 'write -P 1 0 5k' -c 'write -z 64k 8k' ext.qcow2 >/dev/null
strata-img snapshot -c one ext.qcow2
strata-io -c 'write -P 2 1M 3M' ext.qcow2 >/dev/null
strata-img snapshot -c two ext.qcow2
strata-io -c 'discard 0 8M' ext.qcow2 >/dev/null
qemu-img create -q -f qcow2 none.qcow2 1M
qemu-img create -q -f raw raw.img 1M

n=0
plan $((2 * 13 * 3 + 10))
for img in small.qcow2 ext.qcow2; do
    for l in first 1 2 5 one two snapshot.id=1 snapshot.name=two \
        snapshot.id=2,snapshot.name=two snapshot.id=1,snapshot.name=two \
        snapshot.name=first snapshot.id= nope; do
        for o in "-O qcow2" "-O raw --output=json" \
            "-O qcow2 -o extended_l2=on,cluster_size=128k"; do
            # shellcheck disable=SC2086
            same "$img: measure $o -l $l" "" measure $o -l "$l" "$T/$img"
        done
    done
done
same "-l on an image without snapshots" "" measure -O qcow2 -l 1 "$T/none.qcow2"
same "-l on a raw image" "" measure -O qcow2 -l 1 "$T/raw.img"
same "-l with an unknown key" "" measure -l snapshot.foo=1 "$T/small.qcow2"
same "-l snapshot. (short-form boolean)" "" measure -l snapshot. \
    "$T/small.qcow2"
same "-l without a filename" "" measure -O qcow2 -l 1
same "-l with -f qcow2 and --image-opts forms" "" measure -f qcow2 \
    -l snapshot.name=first "$T/small.qcow2"
same "-l given twice: the last one counts" "" measure -O qcow2 -l nope \
    -l 1 "$T/small.qcow2"
same "-l snapshot.* wins over a bare -l" "" measure -O qcow2 \
    -l snapshot.id=1 -l 5 "$T/small.qcow2"
same "-l: the last snapshot.* form counts" "" measure -O qcow2 \
    -l snapshot.id=5 -l snapshot.name=first "$T/small.qcow2"
same "-l with --force-share" "" measure -U -l first "$T/small.qcow2"
done_testing
