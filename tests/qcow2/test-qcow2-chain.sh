#!/usr/bin/env bash
# A three-image chain (raw base, qcow2 middle, qcow2 top with a different
# cluster size) reads correctly through strata-io: unallocated clusters come
# from below, zero clusters hide what is below, copy-on-write takes the
# backing data; map and info --backing-chain agree with qemu-img.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/qcow2/qcow2-helpers.sh"
requires qemu-img qemu-io strata-img strata-io
tmpdir
cd "$T"

truncate -s 4M base.raw
qemu-io -f raw -c "write -P 1 0 4M" base.raw >/dev/null
check "middle: created over the raw base" \
    strata-img create -q -f qcow2 -b base.raw -F raw mid.qcow2
check "middle: writes (a zero cluster over the base)" \
    strata-io -q -c "write -P 2 1M 1M" -c "write -z 3M 64k" mid.qcow2
check "top: created over the middle" \
    strata-img create -q -f qcow2 -o cluster_size=4k -b mid.qcow2 -F qcow2 \
    top.qcow2
check "top: partial writes (COW from below), zeroes, discard" \
    strata-io -q -c "write -P 3 1536k 100k" -c "write -z 0 4k" \
    -c "discard 1M 8k" -c "write -P 4 3000000 1000" top.qcow2

reads=(-c "read -P 0 0 4k" -c "read -P 1 4k 1020k" -c "read -P 0 1M 8k"
       -c "read -P 2 1032k 504k" -c "read -P 3 1536k 100k"
       -c "read -P 2 1636k 412k" -c "read -P 1 2M 902848"
       -c "read -P 4 3000000 1000" -c "read -P 1 3001000 144728"
       -c "read -P 0 3M 64k" -c "read -P 1 3136k 960k")
check "strata-io reads the chain" strata-io -r "${reads[@]}" top.qcow2
check "qemu-io reads the same chain" qemu-io -r "${reads[@]}" top.qcow2
check "backing opened read-only: top.qcow2 still readable by strata" \
    strata-io -r -c "read -P 1 2M 4k" top.qcow2
qcheck "middle: qemu-img check" mid.qcow2
qcheck "top: qemu-img check" top.qcow2
check_eq "map --output=json as qemu-img" \
    "$(strata-img map --output=json top.qcow2)" \
    "$(qemu-img map --output=json top.qcow2)"
check_eq "info --backing-chain --output=json as qemu-img" \
    "$(strata-img info --backing-chain --output=json top.qcow2)" \
    "$(qemu-img info --backing-chain --output=json top.qcow2)"
check "the top image alone (backing= \"\") reads zeroes below" \
    strata-io -r -c "read -P 0 2M 4k" -c "read -P 3 1536k 100k" \
    --image-opts "driver=qcow2,file.filename=top.qcow2,backing="

# a backing file shorter than the overlay reads as zeroes past its end
truncate -s 1M short.raw
qemu-io -f raw -c "write -P 9 0 1M" short.raw >/dev/null
strata-img create -q -f qcow2 -b short.raw -F raw -o cluster_size=4k \
    long.qcow2 2M
check "short backing: COW across its end" \
    strata-io -q -c "write -P 8 1048000 1000" long.qcow2
check "short backing: data, then zeroes past its end" \
    strata-io -r -c "read -P 9 0 1048000" -c "read -P 8 1048000 1000" \
    -c "read -P 0 1049000 1048152" long.qcow2
done_testing
