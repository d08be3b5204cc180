#!/usr/bin/env bash
# convert with several inputs concatenates them, each padded to a whole
# 512-byte sector as qemu-img counts sizes; the result is byte-identical
# to qemu-img's, with the same holes.
. "$top_srcdir/tests/functions.sh"
requires strata-img qemu-img qemu-io
tmpdir

qemu-img create -q -f raw "$T/a.raw" 1M
qemu-io -f raw -c 'write -P 0xa1 0 64k' -c 'write -P 0xa2 960k 64k' \
    "$T/a.raw" >/dev/null
qemu-img create -q -f raw "$T/b.raw" 2M
qemu-io -f raw -c 'write -P 0xb1 1M 4k' "$T/b.raw" >/dev/null
head -c 1000 /dev/urandom >"$T/odd.raw"   # not a whole sector
qemu-img create -q -f raw "$T/c.raw" 512k
qemu-io -f raw -c 'write -P 0xc1 0 512k' "$T/c.raw" >/dev/null

inputs=("$T/a.raw" "$T/odd.raw" "$T/b.raw" "$T/c.raw")
check "convert four inputs" \
    strata-img convert -f raw -O raw "${inputs[@]}" "$T/out.strata"
qemu-img convert -f raw -O raw "${inputs[@]}" "$T/out.qemu"

want=$((1048576 + 1024 + 2097152 + 524288))
check_eq "output size is the sum of the (padded) inputs" \
    "$(file_size "$T/out.strata")" "$want"
check "byte-identical to qemu-img's output" cmp "$T/out.strata" "$T/out.qemu"
check_eq "same allocation map as qemu-img's output" \
    "$(qemu-img map -f raw --output=json "$T/out.strata")" \
    "$(qemu-img map -f raw --output=json "$T/out.qemu")"
check "second input lands right after the first" \
    cmp -n 1000 "$T/odd.raw" "$T/out.strata" 0 1048576
check "the padding after it reads as zeroes" \
    qemu-io -f raw -c 'read -P 0 1049576 24' "$T/out.strata"
check "last input is at the end" \
    qemu-io -f raw -c "read -P 0xc1 $((want - 524288)) 512k" \
    "$T/out.strata"

# The same input twice, through -m 1 (one coroutine) too.
check "same input twice, -m 1" \
    strata-img convert -m 1 -f raw -O raw "$T/b.raw" "$T/b.raw" "$T/bb.raw"
check "the second copy follows the first" \
    cmp "$T/b.raw" "$T/bb.raw" 0 2097152

done_testing
