#!/usr/bin/env bash
# Images created by strata-img and written by strata-io (patterns at
# unaligned offsets, writes crossing clusters, concurrent partial writes to
# one new cluster, zeroing, discard) pass `qemu-img check` without errors
# or leaks and read back with the same patterns in qemu-io and strata-io:
# v2 and v3, cluster sizes 512 B, 4 KiB, 64 KiB and 2 MiB, refcounts of 1,
# 16 and 64 bits.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/qcow2/qcow2-helpers.sh"
requires qemu-img qemu-io strata-img strata-io
tmpdir
cd "$T"

# The writes, relative to the cluster size c.
write_cmds()
{
    local c=$1
    printf '%s\n' \
        "write -P 0x11 $((c / 2 + 3)) $((2 * c + 100))" \
        "write -P 0x22 $((5 * c - 7)) 14" \
        "write -P 0x33 0 1" \
        "write -P 0x44 $((8 * c)) $c" \
        "aio_write -P 0x55 $((12 * c)) 100" \
        "aio_write -P 0x66 $((12 * c + 200)) 100" \
        "aio_write -P 0x77 $((13 * c - 50)) 100" \
        "aio_flush" \
        "write -P 0x88 $((20 * c)) $((3 * c))" \
        "write -z $((20 * c + 5)) $c" \
        "write -P 0x99 $((30 * c)) $((2 * c))" \
        "discard $((30 * c)) $((2 * c))" \
        "write -z -u $((40 * c)) $((4 * c))" \
        "write -P 0xaa $((44 * c + 1)) $((c - 2))"
}

# What every byte of [0, 46c) reads as afterwards.
read_cmds()
{
    local c=$1
    printf '%s\n' \
        "read -P 0x33 0 1" \
        "read -P 0 1 $((c / 2 + 2))" \
        "read -P 0x11 $((c / 2 + 3)) $((2 * c + 100))" \
        "read -P 0 $((5 * c / 2 + 103)) $((5 * c - 7 - (5 * c / 2 + 103)))" \
        "read -P 0x22 $((5 * c - 7)) 14" \
        "read -P 0 $((5 * c + 7)) $((3 * c - 7))" \
        "read -P 0x44 $((8 * c)) $c" \
        "read -P 0 $((9 * c)) $((3 * c))" \
        "read -P 0x55 $((12 * c)) 100" \
        "read -P 0 $((12 * c + 100)) 100" \
        "read -P 0x66 $((12 * c + 200)) 100" \
        "read -P 0 $((12 * c + 300)) $((c - 350))" \
        "read -P 0x77 $((13 * c - 50)) 100" \
        "read -P 0 $((13 * c + 50)) $((7 * c - 50))" \
        "read -P 0x88 $((20 * c)) 5" \
        "read -P 0 $((20 * c + 5)) $c" \
        "read -P 0x88 $((21 * c + 5)) $((2 * c - 5))" \
        "read -P 0 $((23 * c)) $((21 * c + 1))" \
        "read -P 0xaa $((44 * c + 1)) $((c - 2))" \
        "read -P 0 $((45 * c - 1)) $((c + 1))"
}

# args CMDS...: the lines as -c options in $args[@].
to_args()
{
    args=()
    while IFS= read -r line; do
        args+=(-c "$line")
    done
}

run_matrix()
{
    local compat=$1 c=$2 rb=$3 img="$T/m.qcow2" o
    o="compat=$compat,cluster_size=$c,refcount_bits=$rb"
    rm -f "$img"
    check "$o: strata-img create" \
        strata-img create -q -f qcow2 -o "$o" "$img" $((46 * c))
    to_args < <(write_cmds "$c")
    check "$o: strata-io writes" strata-io -q "${args[@]}" "$img"
    qcheck "$o: qemu-img check: no errors, no leaks" "$img"
    to_args < <(read_cmds "$c")
    check "$o: qemu-io reads the patterns back" qemu-io -r "${args[@]}" "$img"
    check "$o: strata-io reads the patterns back" strata-io -r "${args[@]}" \
        "$img"
}

for c in 512 4096 65536 2097152; do
    for rb in 1 16 64; do
        run_matrix 1.1 "$c" "$rb"
    done
    run_matrix 0.10 "$c" 16
done

# a refcount table that has to grow while data is written
strata-img create -q -f qcow2 -o cluster_size=512,refcount_bits=64 g.qcow2 32M
check "refcount table growth: writes" strata-io -q -c "write -P 1 0 3M" \
    -c "write -P 2 20M 5M" -c "write -z -u 1M 1M" -c "write -P 3 1M 512k" \
    g.qcow2
qcheck "refcount table growth: qemu-img check" g.qcow2
check_eq "refcount table growth: the table moved" \
    "$(peek g.qcow2 48 8)" "0000000000808a00"
check "refcount table growth: qemu-io reads back" qemu-io -r \
    -c "read -P 1 0 1M" -c "read -P 3 1M 512k" -c "read -P 0 1536k 512k" \
    -c "read -P 1 2M 1M" -c "read -P 2 20M 5M" g.qcow2

# growing an image (preallocated metadata for the new part)
strata-img create -q -f qcow2 r.qcow2 1M
check "truncate grows the image" strata-io -c "write -P 5 0 1M" \
    -c "truncate -m metadata 3M" -c "write -P 6 2M 64k" r.qcow2
qcheck "grown image: qemu-img check" r.qcow2
check_eq "grown image: qemu-img sees the new size" \
    "$(qemu-img info --output=json r.qcow2 | grep '"virtual-size"')" \
    '    "virtual-size": 3145728,'
# growing from a size inside a cluster keeps that cluster's data, and
# lays out the new part as qemu-io does
for m in off metadata falloc full; do
    rm -f ts.qcow2 tq.qcow2
    qemu-img create -q -f qcow2 ts.qcow2 1000k
    qemu-io -c "write -P 1 0 1000k" ts.qcow2 >/dev/null
    cp ts.qcow2 tq.qcow2
    check "truncate -m $m from 1000k: strata-io" strata-io -q \
        -c "truncate -m $m 3M" -c "write -P 2 2M 4k" ts.qcow2
    qemu-io -c "truncate -m $m 3M" -c "write -P 2 2M 4k" tq.qcow2 >/dev/null
    check "truncate -m $m: old data kept, new part zero" qemu-io -r \
        -c "read -P 1 0 1000k" -c "read -P 0 1000k 1048k" \
        -c "read -P 2 2M 4k" -c "read -P 0 2052k 1020k" ts.qcow2
    if cmp -s ts.qcow2 tq.qcow2; then
        ok "truncate -m $m: byte-identical to qemu-io's"
    else
        not_ok "truncate -m $m: differs from qemu-io's"
    fi
done
done_testing
