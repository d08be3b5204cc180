#!/usr/bin/env bash
# Compressed writes interoperate with QEMU both ways: clusters written
# compressed by strata-io (`write -c`) pass `qemu-img check` and read back
# in qemu-io and qemu-img compare, and clusters qemu-io writes compressed
# read back in strata; zlib and zstd, cluster sizes 512 B, 4 KiB, 64 KiB
# and 2 MiB, an image size that ends in a partial cluster, a request of
# several clusters, a cluster that does not compress (written as a normal
# one), and a rewrite of an allocated cluster (refused with EIO, as QEMU).
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/qcow2/qcow2-helpers.sh"
requires qemu-img qemu-io strata-img strata-io
tmpdir
cd "$T"

ctypes="zlib"
if qemu-img create -q -f qcow2 -o compression_type=zstd zz.qcow2 1M \
    2>/dev/null && strata-img info zz.qcow2 >/dev/null 2>&1; then
    ctypes="zlib zstd"
fi
sizes="512 4096 65536 2097152"
plan $(($(echo $ctypes | wc -w) * $(echo $sizes | wc -w) * 8))

head -c 2097152 /dev/urandom >random.bin

# expected FILE C SIZE: the raw content both tools write below.
expected()
{
    local f=$1 c=$2 size=$3 tail=$(($3 - 4 * $2))
    rm -f "$f"
    truncate -s "$size" "$f"
    printf '%*s' "$c" '' | tr ' ' '\021' |
        dd of="$f" conv=notrunc status=none
    head -c "$c" random.bin | dd of="$f" bs="$c" seek=1 conv=notrunc \
        status=none
    printf '%*s' $((2 * c)) '' | tr ' ' '\042' |
        dd of="$f" bs="$c" seek=2 conv=notrunc status=none
    printf '%*s' "$tail" '' | tr ' ' '\063' |
        dd of="$f" bs="$c" seek=4 conv=notrunc status=none
}

# the writes: one cluster, an incompressible one, two in one request, the
# partial last one
writes()
{
    local c=$1 size=$2
    printf '%s\n' "write -c -P 0x11 0 $c" \
        "write -c -s random.bin $c $c" \
        "write -c -P 0x22 $((2 * c)) $((2 * c))" \
        "write -c -P 0x33 $((4 * c)) $((size - 4 * c))"
}

for ct in $ctypes; do
    for c in $sizes; do
        # 4 clusters and a half (at least a sector) of one more
        half=$((c / 2 > 512 ? c / 2 : 512))
        size=$((4 * c + half))
        what="$ct, cluster $c"
        expected exp.raw "$c" "$size"
        args=()
        while IFS= read -r cmd; do
            args+=(-c "$cmd")
        done < <(writes "$c" "$size")

        rm -f s.qcow2 q.qcow2
        strata-img create -q -f qcow2 -o cluster_size=$c,compression_type=$ct \
            s.qcow2 "$size"
        check "$what: strata-io write -c" strata-io "${args[@]}" s.qcow2
        qcheck "$what: qemu-img check of strata's image" s.qcow2
        check "$what: qemu-img compare with the expected content" \
            qemu-img compare exp.raw s.qcow2
        check "$what: qemu-io reads the patterns" qemu-io \
            -c "read -P 0x11 0 $c" -c "read -P 0x22 $((2 * c)) $((2 * c))" \
            -c "read -P 0x33 $((4 * c)) $((size - 4 * c))" s.qcow2
        if qemu-img check s.qcow2 | grep -q ' [1-9][0-9.]*% compressed'; then
            ok "$what: clusters are stored compressed"
        else
            not_ok "$what: clusters are stored compressed"
            qemu-img check s.qcow2 | sed 's/^/# /'
        fi
        check_fail "$what: a compressed write over an allocated cluster" \
            strata-io -c "write -c -P 0x44 0 $c" s.qcow2

        qemu-img create -q -f qcow2 -o cluster_size=$c,compression_type=$ct \
            q.qcow2 "$size"
        qemu-io "${args[@]}" q.qcow2 >/dev/null
        check "$what: strata-img compare of qemu-io's image" \
            strata-img compare exp.raw q.qcow2
        check "$what: strata-io reads qemu-io's patterns" strata-io \
            -c "read -P 0x11 0 $c" -c "read -P 0x22 $((2 * c)) $((2 * c))" \
            -c "read -P 0x33 $((4 * c)) $((size - 4 * c))" q.qcow2
    done
done
