#!/usr/bin/env bash
# extended_l2 (subclusters): the same requests through qemu-io and
# strata-io on two copies of one image give byte-identical files (so
# strata allocates, copies on write and sets the allocation/zero bitmaps
# exactly as QEMU), qemu-img check is clean, both tools read both images
# the same, and `map` and `info` equal qemu-img's.  With and without a
# backing file (unallocated subclusters read from it), for the smallest,
# the default and the largest cluster size.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/qcow2/qcow2-helpers.sh"
requires qemu-img qemu-io strata-img strata-io
tmpdir
cd "$T"
plan 41

S=4M
# requests inside one cluster, across clusters, into partly allocated
# clusters, unaligned and aligned zeroing (with and without unmap) and
# discards over every kind of subcluster
OPS=(
    'write -P 0xaa 1k 3k' 'write -P 0xbb 70k 100k' 'write -z 300k 20k'
    'write -z 512k 128k' 'write -P 0xcc 1M 2k' 'write -z 1M 1k'
    'write -P 0x11 8k 512' 'write -P 0x12 40k 8k' 'write -P 0x13 2k 1k'
    'write -z -u 72k 4k' 'write -P 0x14 74k 2k' 'discard 128k 64k'
    'write -P 0x15 1536k 300k' 'write -z -u 1600k 128k' 'write -z 1700k 3k'
    'write -P 0x16 1701k 512' 'discard 1536k 512k' 'write -P 0x17 1540k 6k'
    'write -P 0x18 3M 64k' 'write -z 3M 16k' 'write -P 0x19 3080k 1k'
    'write -P 0x1a 4032k 64k' 'write -z -u 4064k 32k' 'write -P 0x1b 2M 4k'
)

n=0
for cs in 16k 64k 2M; do
    for bk in no yes; do
        n=$((n + 1))
        opt="extended_l2=on,cluster_size=$cs"
        what="cluster_size=$cs, backing file: $bk"
        if [ $bk = yes ]; then
            qemu-img create -q -f qcow2 base$n.qcow2 $S
            qemu-io -c "write -P 0x5a 0 $S" -c 'write -z 1M 1M' \
                base$n.qcow2 >/dev/null
            opt="$opt,backing_file=base$n.qcow2,backing_fmt=qcow2"
        fi
        qemu-img create -q -f qcow2 -o "$opt" q$n.qcow2 $S
        strata-img create -q -f qcow2 -o "$opt" s$n.qcow2 $S
        same "$what: create writes what qemu-img writes" q$n.qcow2 s$n.qcow2
        cp q$n.qcow2 s$n.qcow2
        run qemu-io q$n.qcow2
        run strata-io s$n.qcow2
        same "$what: strata-io writes what qemu-io writes" q$n.qcow2 \
            s$n.qcow2
        qcheck "$what: qemu-img check is clean" s$n.qcow2
        check "$what: strata-img compare reads both the same" \
            strata-img compare q$n.qcow2 s$n.qcow2
        check_eq "$what: map --output=json equals qemu-img's" \
            "$(strata-img map --output=json q$n.qcow2)" \
            "$(qemu-img map --output=json q$n.qcow2)"
        if [ $bk = no ]; then
            check_eq "$what: info equals qemu-img's" \
                "$(strata-img info --output=json q$n.qcow2)" \
                "$(qemu-img info --output=json q$n.qcow2)"
        fi
    done
done

# compressed clusters among subclusters (one request per session, as the
# packing of compressed data over several requests is checked elsewhere)
qemu-img create -q -f qcow2 -o extended_l2=on c1.qcow2 $S
cp c1.qcow2 c2.qcow2
for o in 'write -z 64k 20k' 'write -c -P 0x21 64k 64k' 'write -P 0x22 70k 1k' \
         'write -c -P 0x23 1M 64k' 'write -z 1M 8k' 'discard 1M 64k'; do
    qemu-io -c "$o" c1.qcow2 >/dev/null 2>&1
    strata-io -c "$o" c2.qcow2 >/dev/null 2>&1
done
same "compressed clusters: strata-io writes what qemu-io writes" \
    c1.qcow2 c2.qcow2
qcheck "compressed clusters: qemu-img check is clean" c2.qcow2
check "compressed clusters: strata-io reads qemu-io's data" \
    strata-io -c 'read -P 0x21 64k 6k' -c 'read -P 0x22 70k 1k' \
    -c 'read -P 0x21 71k 57k' c1.qcow2

check_fail "cluster_size below 16k is refused" \
    strata-img create -q -f qcow2 -o extended_l2=on,cluster_size=8k x.qcow2 1M
check_fail "compat=0.10 is refused" \
    strata-img create -q -f qcow2 -o extended_l2=on,compat=0.10 x.qcow2 1M
check "internal snapshots work" strata-img snapshot -c sn c1.qcow2
check "qemu-img check is clean after the snapshot" qemu-img check -q c1.qcow2
check "the snapshot is listed by qemu-img" \
    sh -c 'qemu-img snapshot -l c1.qcow2 | grep -q " sn "'

done_testing
