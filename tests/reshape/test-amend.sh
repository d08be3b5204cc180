#!/usr/bin/env bash
# amend: strata-img and qemu-img on copies of the same qcow2 images print
# the same, exit the same and leave images with the same content and the
# same `info`, clean for qemu-img check; round trips of compat and
# refcount_bits keep the data (read back by strata-io and qemu-io).
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io
tmpdir
. "$top_srcdir/tests/reshape/reshape-lib.sh"

# info without the fields that legitimately differ between two files
info_of()
{
    qemu-img info --output=json "$1" |
        grep -v -e '"filename"' -e '"actual-size"' -e '"dirty-flag"'
}

qemu-img create -f qcow2 "$T/q" 1M >/dev/null
qemu-img create -f raw "$T/r" 1M >/dev/null
# data, zero clusters (plain and preallocated), holes
qemu-img create -f qcow2 "$T/z" 8M >/dev/null
qemu-io -f qcow2 -c 'write -P 0xaa 0 1M' -c 'write -z 1M 1M' \
    -c 'write -P 0xbb 3M 64k' -c 'write -z 3M 32k' -c 'write -z -u 0 64k' \
    "$T/z" >/dev/null
# an overlay with zero clusters over a backing file with data
qemu-img create -f qcow2 "$T/base" 8M >/dev/null
qemu-io -f qcow2 -c 'write -P 0xcc 0 8M' "$T/base" >/dev/null
qemu-img create -f qcow2 -b "$T/base" -F qcow2 "$T/zb" 8M >/dev/null
qemu-io -f qcow2 -c 'write -P 0xaa 0 1M' -c 'write -z 1M 1M' \
    -c 'write -z -u 4M 128k' "$T/zb" >/dev/null
# compressed clusters (shared refcounts), an internal snapshot
qemu-img convert -c -O qcow2 "$T/z" "$T/c"
cp "$T/z" "$T/sn"
qemu-img snapshot -c s1 "$T/sn"
qemu-io -f qcow2 -c 'write -z 2M 1M' -c 'write -P 0x11 5M 64k' \
    "$T/sn" >/dev/null

# the command line: messages, help, refusals, progress
for args in "-o help IMG" "-f qcow2 -o help" "-o help" "-f raw -o help" \
    "-f foo -o help" "IMG" "-o cluster_size=4k IMG" "-o bogus=1 IMG" \
    "-o preallocation=full IMG" "-o compat=0.9 IMG" \
    "-o compat=0.10,lazy_refcounts=on IMG" "-o refcount_bits=3 IMG" \
    "-o data_file=foo IMG" "-o data_file_raw=on IMG" \
    "-o data_file_raw=off IMG" "-o backing_file=r IMG" \
    "-o backing_fmt=raw IMG" "-o encrypt.format=luks IMG" \
    "-o compression_type=zstd IMG" "-o ,, IMG" "-o compat=1.1 IMG extra" \
    "-p -o compat=1.1 IMG" "-p -o compat=0.10 IMG" "-p -o compat=1.1" \
    "-p -o refcount_bits=64 IMG" \
    "--bogus -o compat=1.1 IMG" "-o compat=1.1 -t foo IMG" \
    "--force -o compat=1.1 IMG" "-q -p -o compat=0.10 IMG" \
    "-o lazy_refcounts=maybe IMG" "-o refcount_bits=x IMG" \
    "-o size=x IMG" "-o size=0 IMG" "-o size=1000 IMG" \
    "-o compat=1.1,compat=0.10 IMG" "-o compat= IMG" \
    "-o backing_file= IMG" "-o encrypt.keyslot=1 IMG" "-o ? IMG" \
    "-f raw -o compat=1.1 IMG" "-o compat=1.1 nonexist"; do
    # shellcheck disable=SC2086
    same "amend $args" "$T/q" amend $args
done

# the same changes on images with content
# (qemu-img takes a second of CPU per refcount width change: a few only)
for io in z:compat=0.10 z:refcount_bits=1 z:refcount_bits=2,lazy_refcounts=on \
    z:compat=0.10,size=4M z:size=16M zb:compat=0.10 \
    zb:size=2M c:refcount_bits=1 c:compat=0.10 sn:compat=0.10 \
    sn:refcount_bits=1 sn:compat=0.10,size=4M sn:size=16M; do
    img=${io%%:*} o=${io#*:}
    {
        same "$img: amend -o $o" "$T/$img" amend -o "$o" IMG
        images_agree "$img: amend -o $o: same data, check clean"
        check_eq "$img: amend -o $o: same info" "$(info_of "$SIMG")" \
            "$(info_of "$QIMG")"
    }
done

# a v2 image with a snapshot goes to v3 (the snapshot table is rewritten)
qemu-img create -f qcow2 -o compat=0.10 "$T/v2s" 8M >/dev/null
qemu-io -f qcow2 -c 'write -P 0xaa 0 1M' "$T/v2s" >/dev/null
qemu-img snapshot -c s1 "$T/v2s"
qemu-io -f qcow2 -c 'write -P 0xbb 0 64k' "$T/v2s" >/dev/null
same "v2 with a snapshot: amend -o compat=1.1" "$T/v2s" amend \
    -o compat=1.1 IMG
images_agree "v2 with a snapshot: same data, check clean"
check "the snapshot survives" qemu-img snapshot -a s1 "$SIMG"
check "and holds its data" qemu-io -f qcow2 -c 'read -P 0xaa 0 1M' \
    "$SIMG"

# a zero cluster over a cluster a snapshot shares keeps the snapshot's data
# through a downgrade (qemu-img 7.2 zeroes the shared cluster in place)
qemu-img create -f qcow2 "$T/sz" 4M >/dev/null
qemu-io -f qcow2 -c 'write -P 0xaa 0 1M' "$T/sz" >/dev/null
qemu-img snapshot -c s1 "$T/sz"
qemu-io -f qcow2 -c 'write -z 0 128k' "$T/sz" >/dev/null
check "shared zero cluster: downgrade" strata-img amend -o compat=0.10 \
    "$T/sz"
check "shared zero cluster: qemu-img check clean" qemu-img check -q "$T/sz"
check "shared zero cluster: active image reads zeroes, then data" \
    qemu-io -f qcow2 -c 'read -P 0 0 128k' -c 'read -P 0xaa 128k 896k' "$T/sz"
check "shared zero cluster: revert to the snapshot" \
    qemu-img snapshot -a s1 "$T/sz"
check "shared zero cluster: the snapshot kept its data" \
    qemu-io -f qcow2 -c 'read -P 0xaa 0 1M' "$T/sz"

# round trips keep the data: compat 1.1 -> 0.10 -> 1.1, then
# refcount_bits 16 -> 1 -> 64 -> 16
cp "$T/z" "$T/rt"
rt_read()
{
    check "$1: data (strata-io)" strata-io -f qcow2 -c 'read -P 0xaa 64k 960k' \
        -c 'read -P 0 0 64k' -c 'read -P 0 1M 1M' -c 'read -P 0xbb 3104k 32k' \
        -c 'read -P 0 3M 32k' "$T/rt"
    check "$1: data (qemu-io)" qemu-io -f qcow2 -c 'read -P 0xaa 64k 960k' \
        -c 'read -P 0 0 64k' -c 'read -P 0 1M 1M' -c 'read -P 0xbb 3104k 32k' \
        -c 'read -P 0 3M 32k' "$T/rt"
    check "$1: qemu-img check clean" qemu-img check -q "$T/rt"
}
for o in compat=0.10 compat=1.1 refcount_bits=1 refcount_bits=64 \
    refcount_bits=16; do
    check "round trip: amend -o $o" strata-img amend -o "$o" "$T/rt"
    rt_read "round trip after $o"
done
check_match "round trip: back at compat 1.1" "$(qemu-img info "$T/rt")" \
    "compat: 1\\.1"
check_match "round trip: back at 16-bit refcounts" \
    "$(qemu-img info "$T/rt")" "refcount bits: 16"
done_testing
