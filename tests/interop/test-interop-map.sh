#!/usr/bin/env bash
# strata-img map prints what qemu-img map prints, byte for byte, as JSON
# and as the human table, on the same raw images with holes and data, and
# with --start-offset/--max-length windows.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/interop/interop.sh"

truncate -s 1M sparse.raw
[ "$(stat -c %b sparse.raw)" = 0 ] ||
    skip_all "the file system of $T does not keep holes"

truncate -s 10M holes.raw
dd if=/dev/urandom of=holes.raw bs=4k count=1 conv=notrunc status=none
dd if=/dev/urandom of=holes.raw bs=64k seek=2 count=3 conv=notrunc status=none
dd if=/dev/urandom of=holes.raw bs=4k seek=1000 count=1 conv=notrunc status=none
dd if=/dev/zero of=holes.raw bs=64k seek=100 count=2 conv=notrunc status=none
dd if=/dev/urandom of=holes.raw bs=1M seek=9 count=1 conv=notrunc status=none
head -c 2M /dev/urandom >full.raw
truncate -s 0 empty.raw

plan 22

for img in sparse.raw holes.raw full.raw empty.raw; do
    same map "$img"
    same map --output=json "$img"
done
for win in "--start-offset=100k --max-length=200k" \
           "--start-offset 1000 --max-length 10" \
           "--start-offset 4096000" "--max-length 1" \
           "--start-offset 11M" "--max-length 0" "--start-offset=9M"; do
    # shellcheck disable=SC2086
    same map --output=json $win holes.raw
done
same map --start-offset=100k --max-length=200k holes.raw
same map -f raw --output=json "$T/holes.raw"
same map --image-opts --output=json driver=raw,file.filename=holes.raw
same map --output=json nonexist.raw
same map --start-offset -1 holes.raw
same map --max-length 9E holes.raw
same map --output=xml holes.raw

done_testing
