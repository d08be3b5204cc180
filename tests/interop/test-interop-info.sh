#!/usr/bin/env bash
# strata-img info prints what qemu-img info prints, byte for byte, human
# and JSON, on the same raw images (sparse, with holes and data, full,
# empty, large), including --backing-chain, -f raw and --image-opts.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/interop/interop.sh"

truncate -s 10M sparse.raw
truncate -s 10M holes.raw
dd if=/dev/urandom of=holes.raw bs=64k seek=2 count=3 conv=notrunc status=none
dd if=/dev/urandom of=holes.raw bs=4k seek=1000 count=1 conv=notrunc status=none
head -c 3M /dev/urandom >full.raw
truncate -s 0 empty.raw
truncate -s 1T large.raw
truncate -s 1536 small.raw

images="sparse.raw holes.raw full.raw empty.raw large.raw small.raw"

plan 20

for img in $images; do
    same info "$img"
    same info --output=json "$img"
done
same info --backing-chain holes.raw
same info --output=json --backing-chain holes.raw
same info -f raw -U "$T/holes.raw"
same info --output=json --image-opts driver=raw,file.filename=holes.raw
same info --image-opts -f raw driver=raw,file.filename=holes.raw
same info nonexist.raw
same info --output=json nonexist.raw
same info --output=yaml holes.raw

done_testing
