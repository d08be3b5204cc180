#!/usr/bin/env bash
# convert -n into an existing target, with and without --target-is-zero:
# without it the holes of the source are zeroed in the target (as
# qemu-img, by punching holes), with it they are left alone; a larger
# target keeps its tail.  Results are compared with qemu-img's.
. "$top_srcdir/tests/functions.sh"
requires strata-img qemu-img qemu-io
tmpdir

src=$T/src.raw
qemu-img create -q -f raw "$src" 4M
qemu-io -f raw -c 'write -P 0x11 0 1M' -c 'write -P 0x22 2M 512k' \
    -c 'write -P 0 3M 64k' "$src" >/dev/null

# garbage NAME SIZE: a fully allocated target full of 0xee.
garbage()
{
    qemu-img create -q -f raw "$T/$1" "$2"
    qemu-io -f raw -c "write -P 0xee 0 $2" "$T/$1" >/dev/null
}

map() { qemu-img map -f raw --output=json "$1"; }

# -n over garbage: the result reads exactly like the source.
garbage n.strata 4M
garbage n.qemu 4M
check "-n over a dirty target" \
    strata-img convert -n -f raw -O raw "$src" "$T/n.strata"
qemu-img convert -n -f raw -O raw "$src" "$T/n.qemu"
check "-n: target reads as the source" \
    qemu-img compare -f raw -F raw "$src" "$T/n.strata"
check_eq "-n: same allocation map as qemu-img's" \
    "$(map "$T/n.strata")" "$(map "$T/n.qemu")"

# --target-is-zero on a dirty target: trusted, so the garbage in the
# source's holes stays (qemu-img does the same), while data is copied.
garbage z.strata 4M
garbage z.qemu 4M
check "-n --target-is-zero" \
    strata-img convert -n --target-is-zero -f raw -O raw "$src" \
    "$T/z.strata"
qemu-img convert -n --target-is-zero -f raw -O raw "$src" "$T/z.qemu"
check "--target-is-zero: same bytes as qemu-img's output" \
    cmp "$T/z.strata" "$T/z.qemu"
check_fail "--target-is-zero: holes were not written" \
    qemu-img compare -f raw -F raw "$src" "$T/z.strata"
check "--target-is-zero: data was copied" \
    qemu-io -f raw -c 'read -P 0x22 2M 512k' "$T/z.strata"

# --target-is-zero on a fresh target: identical to the source, sparse.
qemu-img create -q -f raw "$T/fz.strata" 4M
check "--target-is-zero on a blank target" \
    strata-img convert -n --target-is-zero -f raw -O raw "$src" \
    "$T/fz.strata"
check "blank target: reads as the source" \
    qemu-img compare -f raw -F raw "$src" "$T/fz.strata"
check_match "blank target: holes stay holes" \
    "$(map "$T/fz.strata")" '"data": false'

# A bigger target keeps what lies past the source's end.
garbage big.strata 6M
check "-n into a bigger target" \
    strata-img convert -n -f raw -O raw "$src" "$T/big.strata"
check "bigger target: the tail is untouched" \
    qemu-io -f raw -c 'read -P 0xee 4M 2M' "$T/big.strata"
check "bigger target: the copied part reads as the source" \
    cmp -n 4194304 "$src" "$T/big.strata"

done_testing
