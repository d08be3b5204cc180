#!/usr/bin/env bash
# read -P: a mismatch prints qemu-io's line (naming the checked range),
# then where the data first differed, and makes strata-io exit 1; -s/-l
# check a sub-range; readv and aio_read verify the same way.
. "$top_srcdir/tests/functions.sh"
requires strata-io
tmpdir

img=$T/a.raw
truncate -s 1M "$img"
strata-io -f raw -q -c 'write -P 0xab 0 64k' -c 'write -P 0x11 100 1' \
    -c 'write -P 0x22 40000 3' "$img" >/dev/null 2>&1 ||
    bail_out "cannot prepare $img"

sio()
{
    rc=0
    out=$(strata-io -f raw "$@" "$img" 2>&1) || rc=$?
}

plan 16

sio -c 'read -P 0xab 0 512'
check_eq "mismatch exits 1" "$rc" 1
check_eq "mismatch: qemu-io's line, then the first difference" \
    "$(sed -n 1,2p <<<"$out")" \
    "Pattern verification failed at offset 0, 512 bytes
First difference at offset 100: read 0x11, expected 0xab (1 of 512 bytes differ)"
check_eq "the read is still reported" "$(sed -n 3p <<<"$out")" \
    "read 512/512 bytes at offset 0"

sio -c 'read -q -P 0xab 32k 32k'
check_eq "mismatch further in, quiet" "$rc:$out" \
    "1:Pattern verification failed at offset 32768, 32768 bytes
First difference at offset 40000: read 0x22, expected 0xab (3 of 32768 bytes differ)"

sio -c 'read -q -P 0xab -s 200 -l 312 0 512'
check_eq "-s/-l: a range without the odd byte matches" "$rc:$out" "0:"
sio -c 'read -q -P 0xab -s 50 -l 100 0 512'
check_eq "-s/-l: the range is named, the difference found" "$rc:$out" \
    "1:Pattern verification failed at offset 50, 100 bytes
First difference at offset 100: read 0x11, expected 0xab (1 of 100 bytes differ)"
sio -c 'read -q -P 0xab -s 101 0 512'
check_eq "-s alone checks up to the end of the read" "$rc:$out" "0:"
sio -c 'read -q -P 0x11 -s 100 -l 1 0 512'
check_eq "-s/-l: a single byte" "$rc:$out" "0:"
sio -c 'read -q -P 0xab -s 600 -l 1 0 512'
check_eq "-s past the end of the read" "$rc:$out" \
    "1:pattern verification range exceeds end of read data"
sio -c 'read -q -P 0xab -l 513 0 512'
check_eq "-l past the end of the read" "$rc:$out" \
    "1:pattern verification range exceeds end of read data"

sio -c 'readv -q -P 0xab 0 64 64 64'
check_eq "readv -P names the whole vector" "$rc:$out" \
    "1:Pattern verification failed at offset 0, 192 bytes
First difference at offset 100: read 0x11, expected 0xab (1 of 192 bytes differ)"
sio -c 'readv -q -P 0xab 128 64 64'
check_eq "readv -P match" "$rc:$out" "0:"

sio -c 'aio_read -q -P 0xab 0 512' -c aio_flush
check_eq "aio_read -P mismatch is reported" "$(sed -n 1p <<<"$out")" \
    "Pattern verification failed at offset 0, 512 bytes"
check_eq "aio_read -P mismatch exits 1 (qemu-io: 0)" "$rc" 1
sio -c 'aio_read -q -P 0xab 0 512' -c aio_flush -c 'read -q -P 0xab 512 512'
check_eq "a later success does not clear the failure" "$rc" 1

sio -c 'read -q -P 0xab 512 32k' -c 'read -q -P 0 64k 64k'
check_eq "matching patterns exit 0" "$rc:$out" "0:"

done_testing
