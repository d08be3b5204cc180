#!/usr/bin/env bash
# convert raw -> raw keeps the data and the holes exactly as qemu-img does:
# same content (qemu-img compare, cmp), same allocation map (qemu-img map
# --output=json) and the same disk usage, for the default -S 4k, for
# -S 0 (fully allocated) and for a larger -S.
. "$top_srcdir/tests/functions.sh"
requires strata-img qemu-img qemu-io
tmpdir

# A source with data runs, explicitly written zeroes (allocated zero
# blocks), zero runs of several sizes inside data, and holes.
src=$T/src.raw
qemu-img create -q -f raw "$src" 8M
qemu-io -f raw \
    -c 'write -P 0x11 0 1M' \
    -c 'write -P 0 1M 512k' \
    -c 'write -P 0x22 2M 64k' \
    -c 'write -P 0 2M 2k' \
    -c 'write -P 0 2080k 8k' \
    -c 'write -P 0 2100k 5k' \
    -c 'write -P 0x33 4095k 2k' \
    -c 'write -P 0x44 6M 100k' \
    -c 'write -P 0 6200k 32k' \
    -c 'write -P 0x55 6300k 200k' \
    -c 'write -P 0x66 8191k 1k' \
    "$src" >/dev/null

# convert_pair NAME ARGS...: convert with both tools using ARGS.
convert_pair()
{
    local name=$1
    shift
    rm -f "$T/$name.strata" "$T/$name.qemu"
    strata-img convert "$@" "$src" "$T/$name.strata" &&
        qemu-img convert "$@" "$src" "$T/$name.qemu"
}

map() { qemu-img map -f raw --output=json "$1"; }
blocks() { sync "$1"; stat -c %b "$1"; }

for variant in "default:" "S0:-S 0" "S64k:-S 64k" "S512:-S 512"; do
    name=${variant%%:*}
    read -r -a args <<<"${variant#*:}"
    if ! convert_pair "$name" -f raw -O raw "${args[@]+"${args[@]}"}"; then
        not_ok "$name: both tools convert"
        continue
    fi
    check "$name: same content as the source" \
        qemu-img compare -f raw -F raw "$src" "$T/$name.strata"
    check "$name: byte-identical to qemu-img's output" \
        cmp "$T/$name.strata" "$T/$name.qemu"
    check_eq "$name: same allocation map as qemu-img's output" \
        "$(map "$T/$name.strata")" "$(map "$T/$name.qemu")"
    check_eq "$name: same disk usage as qemu-img's output" \
        "$(blocks "$T/$name.strata")" "$(blocks "$T/$name.qemu")"
done

# A source that starts with a hole (qemu-img allocates the first block of
# a new raw image; the outputs must still match).
qemu-img create -q -f raw "$T/lead.raw" 4M
qemu-io -f raw -c 'write -P 1 2M 64k' "$T/lead.raw" >/dev/null
strata-img convert -f raw "$T/lead.raw" "$T/lead.strata"
qemu-img convert -f raw "$T/lead.raw" "$T/lead.qemu"
check_eq "leading hole: same allocation map as qemu-img's output" \
    "$(map "$T/lead.strata")" "$(map "$T/lead.qemu")"
check_eq "leading hole: same disk usage as qemu-img's output" \
    "$(blocks "$T/lead.strata")" "$(blocks "$T/lead.qemu")"

# The default output really is sparse, -S 0 really is not.
check_match "default output keeps holes" \
    "$(map "$T/default.strata")" '"data": false'
full=$(($(file_size "$T/S0.strata") / 512))
check "-S 0 output is fully allocated" \
    test "$(blocks "$T/S0.strata")" -ge "$full"

done_testing
