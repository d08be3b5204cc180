#!/usr/bin/env bash
# strata-img convert to and from qcow2 as qemu-img's: -c writes compressed
# clusters (zlib and zstd, several cluster sizes) that qemu-img checks and
# compares as equal to the source, holes stay holes, and the compressed
# image converts back to the same raw bytes; -o options reach the new
# image as with qemu-img (same info), -B/-F give the output a backing file
# and leave what the backing provides unallocated; the -c refusals
# (preallocation, a format without compression) match qemu-img's.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/qcow2/qcow2-helpers.sh"
requires qemu-img strata-img
tmpdir
cd "$T"

ctypes="zlib"
if qemu-img create -q -f qcow2 -o compression_type=zstd zz.qcow2 1M \
    2>/dev/null && strata-img info zz.qcow2 >/dev/null 2>&1; then
    ctypes="zlib zstd"
fi
plan $(($(echo $ctypes | wc -w) * 3 * 6 + 9))

# a 6 MiB source with random data, text, a zero run, holes and a short
# tail that is not a whole cluster
truncate -s $((6 * 1024 * 1024 + 1536)) src.raw
head -c 1048576 /dev/urandom | dd of=src.raw bs=1M seek=1 conv=notrunc \
    status=none
yes 'all work and no play makes jack a dull boy' | head -c 1500000 |
    dd of=src.raw bs=1k seek=3000 conv=notrunc status=none
dd if=/dev/zero of=src.raw bs=64k seek=70 count=4 conv=notrunc status=none
printf 'tail' | dd of=src.raw bs=1 seek=$((6 * 1024 * 1024 + 100)) \
    conv=notrunc status=none

# allocated IMG START LEN: does IMG itself (not its backing) hold data in
# [START, START+LEN)?
allocated()
{
    qemu-img map --output=json "$1" | awk -v s="$2" -v l="$3" '
        /"depth": 0,.*"data": true/ {
            match($0, /"start": [0-9]+/); st = substr($0, RSTART + 9, RLENGTH - 9) + 0
            match($0, /"length": [0-9]+/); ln = substr($0, RSTART + 10, RLENGTH - 10) + 0
            if (st < s + l && s < st + ln) found = 1
        }
        END { exit !found }'
}

for ct in $ctypes; do
    for c in 4096 65536 2097152; do
        what="-c $ct, cluster $c"
        rm -f out.qcow2 back.raw
        check "$what: convert" strata-img convert -c -O qcow2 \
            -o cluster_size=$c,compression_type=$ct src.raw out.qcow2
        qcheck "$what: qemu-img check" out.qcow2
        check "$what: qemu-img compare with the source" \
            qemu-img compare src.raw out.qcow2
        if qemu-img check out.qcow2 | grep -q ' [1-9][0-9.]*% compressed'; then
            ok "$what: clusters are stored compressed"
        else
            not_ok "$what: clusters are stored compressed"
        fi
        # the hole at 4.5 MiB..6 MiB stays one
        if [ $c -gt 65536 ]; then
            ok "$what: holes stay holes # SKIP every cluster has data"
        elif allocated out.qcow2 $((4608 * 1024)) $((1536 * 1024)); then
            not_ok "$what: holes stay holes"
        else
            ok "$what: holes stay holes"
        fi
        strata-img convert -O raw out.qcow2 back.raw
        check "$what: converts back to the same bytes" cmp src.raw back.raw
    done
done

# -o options: the same image as qemu-img's, as info shows it
opts=compat=0.10,cluster_size=4096,refcount_bits=16
strata-img convert -O qcow2 -o $opts src.raw s.qcow2
qemu-img convert -O qcow2 -o $opts src.raw q.qcow2
qemu-img info --output=json s.qcow2 | grep -v -e '"filename"' \
    -e '"actual-size"' -e '"dirty-flag"' >s.info
qemu-img info --output=json q.qcow2 | grep -v -e '"filename"' \
    -e '"actual-size"' -e '"dirty-flag"' >q.info
check "-o $opts: info as qemu-img's output" diff -u q.info s.info
qcheck "-o $opts: qemu-img check" s.qcow2
check "-o $opts: same content" qemu-img compare src.raw s.qcow2

# -B/-F: the output reads like the source, and clusters equal to the
# backing's are not allocated in it
qemu-img create -q -f qcow2 base.qcow2 6M
qemu-io -c 'write -P 0x5a 0 1M' base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 over.qcow2
qemu-io -c 'write -P 0x6b 2M 64k' over.qcow2 >/dev/null
check "-B: convert with a backing file" strata-img convert -O qcow2 \
    -B base.qcow2 -F qcow2 over.qcow2 b.qcow2
check "-B: reads as the source" qemu-img compare over.qcow2 b.qcow2
if qemu-img info b.qcow2 | grep -q '^backing file: base.qcow2'; then
    ok "-B: the backing file is recorded"
else
    not_ok "-B: the backing file is recorded"
fi
if allocated b.qcow2 0 1048576; then
    not_ok "-B: what the backing holds is left to it"
else
    ok "-B: what the backing holds is left to it"
fi

# the refusals, with qemu-img's messages
exp='strata-img: Compression and preallocation not supported at the same time'
got=$(strata-img convert -c -O qcow2 -o preallocation=metadata src.raw p.qcow2 2>&1)
if [ "$got" = "$exp" ]; then
    ok "-c with preallocation is refused"
else
    not_ok "-c with preallocation is refused"
    diag "got: $got"
fi
check_fail "-c to raw is refused" strata-img convert -c -O raw src.raw p.raw
