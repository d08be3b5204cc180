#!/usr/bin/env bash
# aio_read/aio_write are really asynchronous: a request's report comes
# after the output of commands that ran while it was in flight, many
# requests are outstanding at once, aio_flush waits for all of them, and
# the data ends up where each request put it.
. "$top_srcdir/tests/functions.sh"
requires strata-io
tmpdir

img=$T/a.raw
truncate -s 8M "$img"

sio()
{
    rc=0
    out=$(strata-io -f raw "$@" "$img" 2>&1) || rc=$?
}

plan 15

# `length` never turns the event loop, so an asynchronous request cannot
# complete before it: its report must follow.
sio -c 'aio_write -P 0x51 0 64k' -c length -c aio_flush
check_eq "aio_write completes after the next command" \
    "$rc:$(sed -n '1p;2p' <<<"$out")" \
    "0:8 MiB
wrote 65536/65536 bytes at offset 0"

# 64 writes outstanding together, each with its own pattern.
args=()
for i in $(seq 1 64); do
    args+=(-c "aio_write -q -P $i $((i * 64))k 64k")
done
sio "${args[@]}" -c length -c aio_flush
check_eq "64 quiet aio_write requests succeed" \
    "$rc:$out" "0:8 MiB"
args=()
for i in $(seq 1 64); do
    args+=(-c "read -q -P $i $((i * 64))k 64k")
done
sio "${args[@]}"
check_eq "64 aio_write requests: every pattern landed" "$rc:$out" "0:"

# The same with reports, counted after aio_flush.
args=()
for i in $(seq 0 31); do
    args+=(-c "aio_write -P $((i + 100)) $((6144 + i * 4))k 4k")
done
sio "${args[@]}" -c length -c aio_flush -c 'length'
check_eq "32 aio_write reports, all after the first length" \
    "$(grep -c '^wrote 4096/4096 bytes at offset' <<<"$out")" 32
check_eq "aio_flush waits for all of them" \
    "$(sed -n '1p;$p' <<<"$out")" "8 MiB
8 MiB"

# Many concurrent reads, with pattern checks.
args=()
for i in $(seq 1 64); do
    args+=(-c "aio_read -P $i $((i * 64))k 64k")
done
sio "${args[@]}" -c aio_flush
check_eq "64 aio_read requests all verify" \
    "$rc:$(grep -c '^read 65536/65536 bytes at offset' <<<"$out")" "0:64"
check_eq "no verification failure" \
    "$(grep -c 'Pattern verification failed' <<<"$out")" 0

# Vectored, zeroing and FUA requests.
sio -c 'aio_write -q -P 0x61 1M 4k 8k 512' -c 'aio_write -q -z 2M 64k' \
    -c 'aio_write -q -f -P 0x62 3M 4k' -c aio_flush \
    -c 'read -q -P 0x61 1M 12800' -c 'read -q -P 0 2M 64k' \
    -c 'read -q -P 0x62 3M 4k'
check_eq "aio_write with several lengths, -z and -f" "$rc:$out" "0:"
sio -c 'aio_read -v 1M 16 16' -c aio_flush
check_eq "aio_read -v dumps the buffers" "$(sed -n 2p <<<"$out")" \
    "00100010:  61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61  aaaaaaaaaaaaaaaa"

# Requests still in flight at the end complete before strata-io exits.
sio -c 'aio_write -P 0x71 4M 1M'
check_eq "an unflushed aio_write completes at exit" \
    "$rc:$(sed -n 1p <<<"$out")" "0:wrote 1048576/1048576 bytes at offset 4194304"
sio -c 'read -q -P 0x71 4M 1M'
check_eq "and its data is there" "$rc:$out" "0:"

# A synchronous command runs the loop: earlier aio requests complete
# during it, and reads after an aio_flush see the written data.
sio -c 'aio_write -q -P 0x72 5M 64k' -c 'read -q -P 0 7M 4k' -c aio_flush \
    -c 'read -q -P 0x72 5M 64k'
check_eq "aio and synchronous requests mix" "$rc:$out" "0:"

# Failures of asynchronous requests count (qemu-io would exit 0).
sio -c 'aio_read 8M 512' -c aio_flush
check_eq "a failed aio_read is reported as readv failed" "$out" \
    "readv failed: Input/output error"
check_eq "a failed aio_read exits 1" "$rc" 1
sio -c 'aio_write 8M 512' -c aio_flush -c 'read -q 0 512'
check_eq "a failed aio_write exits 1" "$rc:$out" \
    "1:aio_write failed: Input/output error"

done_testing
