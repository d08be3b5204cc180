#!/usr/bin/env bash
# Every AIO engine (-i threads|native|io_uring) and cache mode (-t ...,
# -n) runs the same workload -- aligned and unaligned, vectored, zeroing,
# FUA and asynchronous requests -- and must leave byte-identical images
# that read back correctly in the same mode; -m (misaligned buffers) too.
. "$top_srcdir/tests/functions.sh"
requires strata-io md5sum
tmpdir

size=4M
workload=(
    -c 'write -q -P 0x11 0 64k'
    -c 'write -q -P 0x22 100 1000'
    -c 'writev -q -P 0x33 70000 512 1k 3000'
    -c 'write -q -z 128k 64k'
    -c 'write -q -P 0x44 200k 4k'
    -c 'discard -q 256k 64k'
    -c 'aio_write -q -P 0x55 1M 64k'
    -c 'aio_write -q -P 0x66 1088k 4k 4k'
    -c 'aio_write -q -z 2M 8k'
    -c 'aio_flush'
    -c 'write -q -f -P 0x77 3M 512'
    -c 'aio_write -q -P 0x88 3000001 77'
    -c 'aio_read -q -P 0x11 4k 4k'
    -c 'aio_flush'
    -c 'flush'
)
verify=(
    -c 'read -q -P 0x11 0 100'
    -c 'read -q -P 0x22 100 1000'
    -c 'read -q -P 0x11 1100 64436'
    -c 'read -q -P 0x33 70000 4536'
    -c 'read -q -P 0 128k 64k'
    -c 'read -q -P 0x44 200k 4k'
    -c 'readv -q -P 0x55 1M 32k 32k'
    -c 'aio_read -q -P 0x66 1088k 8k'
    -c 'read -q -P 0 2M 8k'
    -c 'read -q -P 0x77 3M 512'
    -c 'read -q -P 0x88 3000001 77'
    -c 'read -q -P 0 3000078 1000'
    -c 'aio_flush'
)

# Can this directory do O_DIRECT (tmpfs cannot)?
direct=yes
dd if=/dev/zero of="$T/probe" bs=4096 count=1 oflag=direct \
    >/dev/null 2>&1 || direct=no
truncate -s 1M "$T/probe"

# Is io_uring usable: configured, and not refused by the kernel/sandbox?
uring=yes
if ! grep -q '^#define HAVE_LIBURING 1' "$top_builddir/config.h" 2>/dev/null
then
    uring="not configured"
elif ! msg=$(strata-io -f raw -i io_uring -c 'read -q 0 512' "$T/probe" 2>&1)
then
    if grep -Eqi 'not (implemented|permitted|supported)' <<<"$msg"; then
        uring="refused by the kernel: $msg"
    fi
fi

# run_combo IMAGE OPTION...: the workload, then the read-back, both with
# the options (read-only for the second run).
run_combo()
{
    local img=$1
    shift
    strata-io -f raw "$@" "${workload[@]}" "$img" &&
        strata-io -f raw -r "$@" "${verify[@]}" "$img"
}

# combos: "engine cache-option..." ; the reference comes first.
combos=(
    "threads -t writeback"
    "threads -t writethrough"
    "threads -t unsafe"
    "threads -t none"
    "threads -t directsync"
    "threads -n -m"
    "native -n"
    "native -t directsync"
    "native -n -m"
    "io_uring -t writeback"
    "io_uring -t writethrough"
    "io_uring -t unsafe"
    "io_uring -t none"
    "io_uring -t directsync"
    "io_uring -n -m"
)

plan $((${#combos[@]} * 2))

ref=
for combo in "${combos[@]}"; do
    read -r engine opts <<<"$combo"
    desc="-i $engine $opts"
    img=$T/img-$engine-${opts// /}.raw
    why=
    if [ "$direct" = no ] && grep -Eq -- '-n|none|directsync' <<<"$opts"
    then
        why="no O_DIRECT in $T"
    elif [ "$engine" = io_uring ] && [ "$uring" != yes ]; then
        why="io_uring $uring"
    fi
    if [ -n "$why" ]; then
        skip "$desc: workload and read-back" "$why"
        skip "$desc: image identical to the reference" "$why"
        continue
    fi
    truncate -s "$size" "$img"
    # shellcheck disable=SC2086  # $opts is a list of options
    check "$desc: workload and read-back" run_combo "$img" -i "$engine" $opts
    sum=$(md5sum <"$img")
    if [ -z "$ref" ]; then
        ref=$sum
        ok "$desc: image identical to the reference (this is it)"
    else
        check_eq "$desc: image identical to the reference" "$sum" "$ref"
    fi
done

done_testing
