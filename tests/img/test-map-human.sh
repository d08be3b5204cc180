#!/usr/bin/env bash
# strata-img map, human output: qemu-img's table listing the data extents
# of raw images with holes, and the argument errors.
. "$top_srcdir/tests/functions.sh"
requires strata-img
tmpdir
cd "$T"

truncate -s 1M sparse.raw
[ "$(stat -c %b sparse.raw)" = 0 ] ||
    skip_all "the file system of $T does not keep holes"

truncate -s 10M a.raw
dd if=/dev/urandom of=a.raw bs=64k seek=2 count=3 conv=notrunc status=none
dd if=/dev/urandom of=a.raw bs=4k seek=1000 count=1 conv=notrunc status=none
dd if=/dev/urandom of=a.raw bs=4k seek=0 count=1 conv=notrunc status=none

header="Offset          Length          Mapped to       File"

plan 8

out=$(strata-img map a.raw)
check_eq "the data extents" "$out" "$header
0               0x1000          0               a.raw
0x20000         0x30000         0x20000         a.raw
0x3e8000        0x1000          0x3e8000        a.raw"

out=$(strata-img map --output=human --start-offset=100k --max-length=200k a.raw)
check_eq "a window" "$out" "$header
0x20000         0x2b000         0x20000         a.raw"

out=$(strata-img map "$T/a.raw" | sed -n 2p)
check_eq "the file column names the file as opened" "$out" \
    "0               0x1000          0               $T/a.raw"

out=$(strata-img map sparse.raw)
check_eq "a sparse image: the header only" "$out" "$header"

rc=0
strata-img map >out.txt 2>&1 || rc=$?
check_eq "no file name" "$rc:$(cat out.txt)" "1:strata-img: Expecting one image file name
Try 'strata-img --help' for more information"

rc=0
strata-img map --output=yaml a.raw >out.txt 2>&1 || rc=$?
check_eq "bad --output" "$rc:$(cat out.txt)" \
    "1:strata-img: --output must be used with human or json as argument."

rc=0
strata-img map --max-length 9E a.raw >out.txt 2>&1 || rc=$?
check_eq "--max-length out of range" "$rc:$(cat out.txt)" \
    "1:strata-img: Invalid max length specified. Must be between 0 and 9223372036854775807."

rc=0
strata-img map nonexist.raw >out.txt 2>&1 || rc=$?
check_eq "missing image" "$rc:$(cat out.txt)" \
    "1:strata-img: Could not open 'nonexist.raw': Could not open 'nonexist.raw': No such file or directory"

done_testing
