#!/usr/bin/env bash
# Interoperability with QEMU: images written by qemu-io read back the same
# in strata-io; the same writes through strata-io and qemu-io give the same
# file, byte for byte (same allocation order, same COW, zero flags and
# discards); compressed clusters (zlib, zstd) from `qemu-img convert -c`
# are read and overwritten; clusters shared with an internal snapshot are
# copied, not changed; map and info agree with qemu-img.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/qcow2/qcow2-helpers.sh"
requires qemu-img qemu-io strata-img strata-io
tmpdir
cd "$T"

cmds=(-c "write -P 0x11 1000 70000" -c "write -P 0x22 2M 64k"
      -c "write -P 0x33 100k 1" -c "write -z 3M 200k" -c "write -z -u 3M 64k"
      -c "write -P 0x44 5M 300k" -c "discard 5M 128k" -c "write -P 0x55 0 512"
      -c "write -z 6M 1000")
checks=(-c "read -P 0x55 0 512" -c "read -P 0 512 488"
        -c "read -P 0x11 1000 70000" -c "read -P 0x33 100k 1"
        -c "read -P 0x22 2M 64k" -c "read -P 0 3M 200k"
        -c "read -P 0x44 5248k 172k" -c "read -P 0 6M 1000")

for o in compat=1.1 compat=0.10 cluster_size=512 cluster_size=4k,refcount_bits=1 \
         cluster_size=2M refcount_bits=64; do
    rm -f s.qcow2 q.qcow2
    qemu-img create -q -f qcow2 -o "$o" q.qcow2 8M
    cp q.qcow2 s.qcow2
    qemu-io "${cmds[@]}" q.qcow2 >/dev/null
    # the discard frees whole clusters only (not with 2 MiB ones)
    disc=0
    [ "$o" = cluster_size=2M ] && disc=0x44
    check "$o: strata-io reads what qemu-io wrote" strata-io -r "${checks[@]}" \
        -c "read -P $disc 5M 128k" q.qcow2
    check "$o: the same writes through strata-io" strata-io -q "${cmds[@]}" \
        s.qcow2
    if cmp -s s.qcow2 q.qcow2; then
        ok "$o: byte-identical to the image qemu-io wrote"
    else
        not_ok "$o: differs from the image qemu-io wrote"
        diag "$(cmp s.qcow2 q.qcow2 2>&1)"
    fi
    check_eq "$o: map --output=json as qemu-img" \
        "$(strata-img map --output=json s.qcow2)" \
        "$(qemu-img map --output=json s.qcow2)"
done

# compressed clusters
truncate -s 8M src.raw
qemu-io -f raw -c "write -P 0x31 0 1M" -c "write -P 0x32 3M 100k" \
    -c "write -P 0x33 7M 1M" src.raw >/dev/null
head -c 300000 /dev/urandom | dd of=src.raw bs=1 seek=2000000 conv=notrunc \
    status=none
cp src.raw src2.raw
qemu-io -f raw -c "write -P 0x55 100 1000" -c "write -P 0x56 3100000 70000" \
    src2.raw >/dev/null
types=zlib
grep -q '^#define HAVE_ZSTD 1' "$top_builddir/config.h" 2>/dev/null &&
    types="zlib zstd"
for ct in $types; do
    for cs in 512 64k 2M; do
        qemu-img convert -c -O qcow2 -o compression_type=$ct,cluster_size=$cs \
            src.raw c.qcow2
        check "$ct, $cs clusters: compressed image reads as its source" \
            strata-img compare -q -f raw -F qcow2 src.raw c.qcow2
        check "$ct, $cs clusters: writing into compressed clusters" \
            strata-io -q -c "write -P 0x55 100 1000" \
            -c "write -P 0x56 3100000 70000" c.qcow2
        check "$ct, $cs clusters: qemu-img compare after the writes" \
            qemu-img compare -q -f raw -F qcow2 src2.raw c.qcow2
        qcheck "$ct, $cs clusters: qemu-img check after the writes" c.qcow2
    done
done

# clusters shared with an internal snapshot are copied before writing
qemu-img create -q -f qcow2 sn.qcow2 8M
qemu-io -c "write -P 1 0 1M" -c "write -P 2 4M 200k" sn.qcow2 >/dev/null
qemu-img snapshot -c snap1 sn.qcow2
cp sn.qcow2 snq.qcow2
snap_cmds=(-c "write -P 3 100k 300k" -c "write -P 4 4100k 1k"
           -c "write -z -u 512k 64k" -c "discard 4M 64k")
check "snapshot: strata-io writes over shared clusters" \
    strata-io -q "${snap_cmds[@]}" sn.qcow2
qemu-io "${snap_cmds[@]}" snq.qcow2 >/dev/null
qcheck "snapshot: qemu-img check" sn.qcow2
if cmp -s sn.qcow2 snq.qcow2; then
    ok "snapshot: byte-identical to qemu-io's result"
else
    not_ok "snapshot: differs from qemu-io's result"
fi
check "snapshot: reverting to it" qemu-img snapshot -a snap1 sn.qcow2
check "snapshot: its data was not changed" qemu-io -r -c "read -P 1 0 1M" \
    -c "read -P 2 4M 200k" sn.qcow2

# unknown header extensions survive a header rewrite (clearing an unknown
# autoclear bit rewrites the header on the first writable open)
qemu-img create -q -f qcow2 ux.qcow2 4M
poke ux.qcow2 $((0x1f8)) 123456780000000568656c6c6f000000
poke ux.qcow2 88 0000000000000020
cp ux.qcow2 uxq.qcow2
check "unknown extension: writable open and a write" \
    strata-io -q -c "write -P 1 0 4k" ux.qcow2
qemu-io -c "write -P 1 0 4k" uxq.qcow2 >/dev/null
check_eq "unknown extension: the autoclear bit was cleared" \
    "$(peek ux.qcow2 88 8)" "0000000000000000"
check_eq "unknown extension: still there" "$(peek ux.qcow2 $((0x1f8)) 16)" \
    "123456780000000568656c6c6f000000"
if cmp -s ux.qcow2 uxq.qcow2; then
    ok "unknown extension: header as qemu-io rewrote it"
else
    not_ok "unknown extension: header differs from qemu-io's rewrite"
fi

# lazy refcounts are allowed, not used: the image is never left dirty
strata-img create -q -f qcow2 -o lazy_refcounts=on lazy.qcow2 4M
check "lazy refcounts: writes" strata-io -q -c "write -P 1 0 1M" lazy.qcow2
check_eq "lazy refcounts: not dirty afterwards" "$(peek lazy.qcow2 72 8)" \
    "0000000000000000"
qcheck "lazy refcounts: qemu-img check" lazy.qcow2

# info agrees with qemu-img
for o in compat=0.10 lazy_refcounts=on refcount_bits=1 cluster_size=2M; do
    strata-img create -q -f qcow2 -o "$o" i.qcow2 4M
    strata-io -q -c "write 0 128k" i.qcow2
    check_eq "info --output=json ($o) as qemu-img" \
        "$(strata-img info --output=json i.qcow2)" \
        "$(qemu-img info --output=json i.qcow2)"
done
done_testing
