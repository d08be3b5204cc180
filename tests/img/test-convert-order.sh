#!/usr/bin/env bash
# In-order convert (no -W) hands the turn to the next writer as a write
# is issued wherever the output stays the same: qcow2 images made with
# -m 1, 3, 8 and 16 are byte for byte the ones qemu-img writes, for
# several cluster sizes and options.  And the turn is never lost: a
# coalesced write followed by chunks that need no I/O (holes) once moved
# the turn back and left convert waiting forever; many runs of that
# pattern must all finish.
. "$top_srcdir/tests/functions.sh"
requires strata-img qemu-img timeout
tmpdir
cd "$T"

# 24 MiB: runs of data at assorted offsets and lengths (cluster-aligned
# or not, some crossing L2 tables of small clusters, some adjacent so
# they are coalesced), holes between them and a zero run inside data
truncate -s 24M src.raw
i=0
for spec in "0 1024" "1100 64" "1300 2200" "3584 512" "4500 3" "4600 8" \
    "5000 2048" "7200 100" "7400 4096" "11600 700" "12400 1" \
    "12500 3000" "15600 64" "16384 2048" "18600 517" "19200 4096"; do
    set -- $spec
    i=$((i + 1))
    if ((i % 2)); then
        head -c $(($2 * 1024)) /dev/urandom
    else
        yes "run $i" | head -c $(($2 * 1024))
    fi | dd of=src.raw bs=1k seek="$1" conv=notrunc status=none
done
dd if=/dev/zero of=src.raw bs=1k seek=13000 count=40 conv=notrunc \
    status=none

opts=(cluster_size=4096 cluster_size=65536 cluster_size=2097152
    cluster_size=4096,compat=0.10 cluster_size=65536,lazy_refcounts=on
    cluster_size=4096,refcount_bits=1
    cluster_size=65536,preallocation=metadata)
ms=(1 3 8 16)
runs=15
plan $((${#opts[@]} * ${#ms[@]} + 3))

for o in "${opts[@]}"; do
    rm -f q.qcow2
    qemu-img convert -f raw -O qcow2 -o "$o" src.raw q.qcow2
    for m in "${ms[@]}"; do
        rm -f s.qcow2
        timeout 300 strata-img convert -m "$m" -f raw -O qcow2 -o "$o" \
            src.raw s.qcow2
        check "-o $o -m $m: the same image as qemu-img's" cmp s.qcow2 q.qcow2
    done
done

# the pattern that lost the turn: small clusters, two coroutines
hung=0 wrong=0
for ((r = 0; r < runs; r++)); do
    for m in 2 16; do
        rm -f h.qcow2
        if ! timeout 300 strata-img convert -m "$m" -f raw -O qcow2 \
            -o cluster_size=16384,extended_l2=on src.raw h.qcow2; then
            hung=$((hung + 1))
        elif ! qemu-img compare -q src.raw h.qcow2; then
            wrong=$((wrong + 1))
        fi
    done
done
check_eq "$((runs * 2)) in-order converts to qcow2 all finished" "$hung" 0
check_eq "... and all read as the source" "$wrong" 0

# the same with raw targets, where every write is handed over at issue
hung=0
for ((r = 0; r < runs; r++)); do
    rm -f h.raw
    timeout 300 strata-img convert -m 16 -f raw -O raw src.raw h.raw &&
        cmp -s src.raw h.raw || hung=$((hung + 1))
done
check_eq "$runs in-order converts to raw finished with the right bytes" \
    "$hung" 0

done_testing
