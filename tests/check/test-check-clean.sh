#!/usr/bin/env bash
# check of clean images of many shapes: strata-img prints what qemu-img
# check prints (human and JSON) and exits as it does; usage errors and
# formats without a check too.
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io python3
tmpdir
. "$top_srcdir/tests/check/check-lib.sh"

cd "$T"
# mk NAME CREATE-ARGS...: a 16M qcow2 with data, zeroes and a hole.
mk()
{
    local name=$1
    shift
    qemu-img create -q -f qcow2 "$@" "$name" 16M
    qemu-io -c "write -P 0x11 0 1M" -c "write -P 0x22 3M 512k" \
        -c "write -z 6M 1M" -c "write -P 0x33 15M 64k" "$name" >/dev/null
}
mk v2.qcow2 -o compat=0.10
mk v3.qcow2
mk cs512.qcow2 -o cluster_size=512
mk cs4k.qcow2 -o cluster_size=4k
mk cs2M.qcow2 -o cluster_size=2M
for rb in 1 2 4 8 32 64; do
    mk rb$rb.qcow2 -o refcount_bits=$rb
done
mk lazy.qcow2 -o lazy_refcounts=on
qemu-img create -q -f qcow2 comp.qcow2 16M
qemu-io -c "write -c -P 0x44 0 64k" -c "write -c -P 0x45 64k 64k" \
    -c "write -P 1 1M 64k" comp.qcow2 >/dev/null
qemu-img convert -c -O qcow2 v3.qcow2 conv-c.qcow2
qemu-img create -q -f qcow2 -b v3.qcow2 -F qcow2 overlay.qcow2
qemu-io -c "write -P 0x55 2M 128k" overlay.qcow2 >/dev/null
cp v3.qcow2 snap.qcow2
qemu-img snapshot -c s1 snap.qcow2
qemu-io -c "write -P 0x66 0 256k" snap.qcow2 >/dev/null
qemu-img snapshot -c s2 snap.qcow2
qemu-io -c "write -P 0x67 128k 64k" snap.qcow2 >/dev/null
qemu-img create -q -f qcow2 empty.qcow2 1G
qemu-img create -q -f qcow2 -o preallocation=metadata prealloc.qcow2 8M
qemu-img create -q -f qcow2 odd.qcow2 1000001
qemu-io -c "write -P 9 999000 1001" odd.qcow2 >/dev/null
strata-img create -q -f qcow2 ours.qcow2 8M
strata-io -c "write -P 7 64k 1M" ours.qcow2 >/dev/null
images=(*.qcow2)
cp v3.qcow2 bitmap.qcow2
if qemu-img bitmap --add bitmap.qcow2 b0 2>/dev/null; then
    qemu-io -c "write 0 64k" bitmap.qcow2 >/dev/null
    images+=(bitmap.qcow2)
fi
qemu-img create -q -f raw plain.raw 1M

plan $((${#images[@]} * 3 + 7))
for img in "${images[@]}"; do
    same_check "$img: human" "$img"
    same_check "$img: json" "$img" --output=json
    check_eq "$img: clean" "$rc" 0
done
same_check "quiet" v3.qcow2 -q
same_check "-r leaks on a clean image" snap.qcow2 -r leaks
same_check "-r all --output=json on a clean image" comp.qcow2 -r all \
    --output=json
same_check "raw has no check" plain.raw -f raw
same_check "bad -r value" v3.qcow2 -r some
same_check "bad --output value" v3.qcow2 --output=xml
same_check "-T cache mode and -U" v3.qcow2 -T none -U
done_testing
