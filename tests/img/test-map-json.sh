#!/usr/bin/env bash
# strata-img map --output=json on raw images with holes and data: the
# extents, their merging and qemu-img's exact line format, with
# --start-offset and --max-length, and for empty images.
. "$top_srcdir/tests/functions.sh"
requires strata-img
tmpdir
cd "$T"

truncate -s 1M sparse.raw
[ "$(stat -c %b sparse.raw)" = 0 ] ||
    skip_all "the file system of $T does not keep holes"

# 10 MiB: a hole, 192 KiB of data at 128 KiB, a hole, 4 KiB of data at
# 4000 KiB, a hole to the end.
truncate -s 10M a.raw
dd if=/dev/urandom of=a.raw bs=64k seek=2 count=3 conv=notrunc status=none
dd if=/dev/urandom of=a.raw bs=4k seek=1000 count=1 conv=notrunc status=none

plan 10

out=$(strata-img map --output=json a.raw)
check_eq "holes and data" "$out" \
'[{ "start": 0, "length": 131072, "depth": 0, "present": true, "zero": true, "data": false, "offset": 0},
{ "start": 131072, "length": 196608, "depth": 0, "present": true, "zero": false, "data": true, "offset": 131072},
{ "start": 327680, "length": 3768320, "depth": 0, "present": true, "zero": true, "data": false, "offset": 327680},
{ "start": 4096000, "length": 4096, "depth": 0, "present": true, "zero": false, "data": true, "offset": 4096000},
{ "start": 4100096, "length": 6385664, "depth": 0, "present": true, "zero": true, "data": false, "offset": 4100096}]'

out2=$(strata-img map -f raw --output=json a.raw)
check_eq "-f raw maps the same" "$out2" "$out"

out=$(strata-img map --output=json --start-offset 100k --max-length 200k a.raw)
check_eq "--start-offset and --max-length cut the extents" "$out" \
'[{ "start": 102400, "length": 28672, "depth": 0, "present": true, "zero": true, "data": false, "offset": 102400},
{ "start": 131072, "length": 176128, "depth": 0, "present": true, "zero": false, "data": true, "offset": 131072}]'

out=$(strata-img map --output=json --start-offset=1000 --max-length=10 a.raw)
check_eq "an unaligned window" "$out" \
'[{ "start": 1000, "length": 10, "depth": 0, "present": true, "zero": true, "data": false, "offset": 1000}]'

out=$(strata-img map --output=json --max-length 20M a.raw | tail -n 1)
check_eq "--max-length past the end stops at the end" "$out" \
'{ "start": 4100096, "length": 6385664, "depth": 0, "present": true, "zero": true, "data": false, "offset": 4100096}]'

out=$(strata-img map --output=json --start-offset 11M a.raw)
check_eq "a start past the end: one empty entry" "$out" \
'[{ "start": 11534336, "length": 0, "depth": 0, "present": false, "zero": false, "data": false}]'

out=$(strata-img map --output=json --max-length 0 a.raw)
check_eq "--max-length 0: one empty entry" "$out" \
'[{ "start": 0, "length": 0, "depth": 0, "present": false, "zero": false, "data": false}]'

truncate -s 0 empty.raw
out=$(strata-img map --output=json empty.raw)
check_eq "an empty image" "$out" \
'[{ "start": 0, "length": 0, "depth": 0, "present": false, "zero": false, "data": false}]'

# Fully written: adjacent data extents merge into one.
dd if=/dev/urandom of=full.raw bs=64k count=16 status=none
out=$(strata-img map --output=json full.raw)
check_eq "contiguous data is one extent" "$out" \
'[{ "start": 0, "length": 1048576, "depth": 0, "present": true, "zero": false, "data": true, "offset": 0}]'

rc=0
strata-img map --output=json --start-offset 1x a.raw >out.txt 2>&1 || rc=$?
check_eq "a bad --start-offset" "$rc:$(cat out.txt)" \
"1:strata-img: Invalid start offset specified. You may use k, M, G, T, P or E suffixes for
strata-img: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes."

done_testing
