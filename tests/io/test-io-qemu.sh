#!/usr/bin/env bash
# Interoperability with qemu-io: raw images written by one read back
# identically with the other, the same commands print the same output
# (timings aside) and leave identical images, and map agrees.
. "$top_srcdir/tests/functions.sh"
requires strata-io qemu-io qemu-img md5sum
tmpdir

truncate -s 4M "$T/base.raw"

# Timings vary; names differ; the "First difference" line is strata-io's
# addition to a pattern mismatch.
filter()
{
    sed -E -e "s|$T/[qs]\.raw|IMG|g" \
        -e 's/^(qemu|strata)-io: /PROG: /' \
        -e 's/^[0-9.]+ (bytes|KiB|MiB|GiB), ([0-9]+) ops; .*$/STATS \2/' \
        -e 's/^([0-9]+),([0-9]+),[0-9:.]+,[0-9.]+,[0-9.]+$/\1,\2,TIMES/' \
        -e '/^First difference at offset/d' "$1"
}

# same DESC ARGS...: qemu-io and strata-io, each on its own copy of
# base.raw, print the same stdout and stderr, exit alike and leave the
# same image.
same()
{
    local desc=$1 qrc=0 src=0 why=
    shift
    cp "$T/base.raw" "$T/q.raw"
    cp "$T/base.raw" "$T/s.raw"
    qemu-io "$@" "$T/q.raw" >"$T/q.out" 2>"$T/q.err" </dev/null || qrc=$?
    strata-io "$@" "$T/s.raw" >"$T/s.out" 2>"$T/s.err" </dev/null || src=$?
    if [ "$(filter "$T/q.out")" != "$(filter "$T/s.out")" ]; then
        why="stdout differs"
    elif [ "$(filter "$T/q.err")" != "$(filter "$T/s.err")" ]; then
        why="stderr differs"
    elif [ "$qrc" != "$src" ]; then
        why="exit status $src, qemu-io's $qrc"
    elif [ "$(md5sum <"$T/q.raw")" != "$(md5sum <"$T/s.raw")" ]; then
        why="the images differ"
    fi
    if [ -z "$why" ]; then
        ok "$desc"
        return 0
    fi
    not_ok "$desc"
    diag "$why; arguments: $*"
    diag "$(diff -u <(filter "$T/q.out"; echo ---; filter "$T/q.err") \
                    <(filter "$T/s.out"; echo ---; filter "$T/s.err"))"
}

plan 28

# ---- data written by one tool, read by the other ----
writes=(
    -c 'write -P 0x11 0 64k' -c 'write -P 0x22 100 1000'
    -c 'writev -P 0x33 70000 512 1k 3000' -c 'write -z 128k 64k'
    -c 'aio_write -P 0x55 1M 64k' -c 'aio_write -P 0x66 1088k 4k 4k'
    -c 'aio_flush' -c 'write -f -P 0x77 3M 512'
    -c 'write -P 0x88 3000001 77'
)
reads=(
    -c 'read -P 0x11 0 100' -c 'read -P 0x22 100 1000'
    -c 'read -P 0x11 1100 64436' -c 'read -P 0x33 70000 4536'
    -c 'read -P 0 128k 64k' -c 'readv -P 0x55 1M 32k 32k'
    -c 'read -P 0x66 1088k 8k' -c 'read -P 0x77 3M 512'
    -c 'read -P 0x88 3000001 77' -c 'read -P 0 3000078 1000'
)
cp "$T/base.raw" "$T/by-strata.raw"
cp "$T/base.raw" "$T/by-qemu.raw"
check "strata-io writes the data" \
    strata-io -q -f raw "${writes[@]}" "$T/by-strata.raw"
check "qemu-io writes the same data" \
    qemu-io -f raw "${writes[@]}" "$T/by-qemu.raw"
check_eq "the two images are identical" \
    "$(md5sum <"$T/by-strata.raw")" "$(md5sum <"$T/by-qemu.raw")"
out=$(qemu-io -f raw -r "${reads[@]}" "$T/by-strata.raw" 2>&1)
check_eq "qemu-io reads strata-io's data" \
    "$(grep -c '^read ' <<<"$out"):$(grep -c 'verification failed' <<<"$out")" \
    "$((${#reads[@]} / 2)):0"
rc=0
out=$(strata-io -f raw -r "${reads[@]}" "$T/by-qemu.raw" 2>&1) || rc=$?
check_eq "strata-io reads qemu-io's data" \
    "$rc:$(grep -c '^read ' <<<"$out"):$(grep -c 'verification failed' <<<"$out")" \
    "0:$((${#reads[@]} / 2)):0"
check "qemu-io -P finds its mismatch on strata-io's image too" \
    bash -c "qemu-io -f raw -r -c 'read -P 0x11 64k 512' '$T/by-strata.raw' |
             grep -q 'Pattern verification failed at offset 65536, 512 bytes'"

# ---- the same commands, the same output ----
same "write and read -v" -f raw -c 'write 1M 64k' -c 'read -v 1M 48' \
    -c 'read -P 0xcd 1M 64k'
same "dump of a partial line" -f raw -c 'write -P 0x41 0 16' \
    -c 'write -P 0x7f 16 3' -c 'read -v 0 19'
same "writev and readv" -f raw -c 'writev -P 0x12 512 1k 2k 512' \
    -c 'readv -P 0x12 512 1k 2k 512' -c 'readv -v 512 16 16'
same "length, info, map, alloc" -f raw -c length -c info -c map \
    -c 'alloc 0 4k' -c 'alloc 4095k 1M' -c 'alloc 1M'
same "number parsing" -f raw -c 'write -P 0x5a 1.5k 0x200' \
    -c 'read -P 0x5a 1536 512' -c 'read 0 1x' -c 'read 0 1.5' \
    -c 'read 8E 512' -c 'read 0 3G' -c 'readv 0 3G' -c 'write -P 300 0 512'
same "pattern mismatch" -f raw -c 'write -P 0x11 100 1' \
    -c 'read -P 0xab 0 512' -c 'read -q -P 0xab -s 50 -l 100 0 512'
same "option conflicts" -f raw -c 'read -P 0 -s 600 -l 1 0 512' \
    -c 'write -u 0 512' -c 'write -n 0 512' -c 'write -z -P 1 0 512' \
    -c 'write -f -c 0 512'
same "I/O errors" -f raw -c 'read 4M 512' -c 'write 4M 512' \
    -c 'writev 4M 512'
same "unknown commands and argument counts" -f raw -c foo -c 'read 0' \
    -c 'length 1' -c truncate
same "discard and flush" -f raw -c 'write -P 1 0 128k' -c 'discard 0 64k' \
    -c 'discard -q 64k 64k' -c flush
same "truncate" -f raw -c 'truncate 8M' -c length -c 'truncate 4M' \
    -c length -c 'truncate -m bogus 1M'
same "one aio request at a time" -f raw -c 'aio_write -P 0x33 0 64k' \
    -c length -c aio_flush -c 'aio_read -P 0x33 0 64k' -c aio_flush \
    -c 'aio_write -z 64k 4k' -c aio_flush
same "machine-readable statistics" -f raw -c 'write -C 0 512' \
    -c 'read -C 0 512' -c 'discard -C 0 512'
printf abc >"$T/pat"
same "write -s" -f raw -c "write -s $T/pat 0 10" -c 'read -v 0 16'
same "sleep" -f raw -c 'sleep abc' -c 'sleep 10'
same "quit" -f raw -c length -c quit -c 'read 0 1x'
same "read-only refusal" -f raw -r -c 'write 0 512'
same "a format probed as raw warns" -c 'read -q 0 512'

# ---- map on the same images ----
same "map of a sparse raw image" -f raw -r -c map
same "map of a written raw image" -f raw -c 'write 1M 1M' \
    -c 'discard 1M 64k' -c map

# qcow2, once strata can open it: top-layer allocation as qemu-io reports
qemu-img create -q -f qcow2 "$T/base.qcow2" 1M
qemu-io -f qcow2 -c 'write 0 64k' "$T/base.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b "$T/base.qcow2" -F qcow2 "$T/top.qcow2"
qemu-io -f qcow2 -c 'write 128k 64k' -c 'write -z 512k 64k' "$T/top.qcow2" \
    >/dev/null
if strata-io -r -f qcow2 -c length "$T/top.qcow2" >/dev/null 2>&1; then
    for q in base top; do
        check_eq "map of $q.qcow2 agrees with qemu-io" \
            "$(strata-io -r -f qcow2 -c map "$T/$q.qcow2" 2>&1)" \
            "$(qemu-io -r -f qcow2 -c map "$T/$q.qcow2" 2>&1)"
    done
else
    skip "map of base.qcow2 agrees with qemu-io" "strata cannot open qcow2"
    skip "map of top.qcow2 agrees with qemu-io" "strata cannot open qcow2"
fi

done_testing
