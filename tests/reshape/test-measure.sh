#!/usr/bin/env bash
# measure: strata-img's output (human and JSON), messages and exit codes
# equal qemu-img's over a matrix of sizes, cluster sizes, refcount widths,
# preallocation modes and input images of each kind.
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io
tmpdir
. "$top_srcdir/tests/reshape/reshape-lib.sh"
cd "$T"

# inputs: raw with data and holes, qcow2 v3 with data/zero clusters, v2,
# an overlay, a compressed image, one with persistent bitmaps
qemu-img create -f raw raw 4M >/dev/null
qemu-io -f raw -c 'write -P 1 0 1M' -c 'write -P 2 3M 4k' raw >/dev/null
qemu-img create -f qcow2 v3 8M >/dev/null
qemu-io -f qcow2 -c 'write -P 0xaa 0 1M' -c 'write -z 1M 1M' \
    -c 'write -P 0xbb 5M 100k' v3 >/dev/null
qemu-img convert -O qcow2 -o compat=0.10 v3 v2
qemu-img create -f qcow2 -b "$T/v3" -F qcow2 ov 10M >/dev/null
qemu-io -f qcow2 -c 'write -P 3 7M 64k' ov >/dev/null
qemu-img convert -c -O qcow2 v3 comp
qemu-img create -f qcow2 bm 100M >/dev/null
qemu-img bitmap --add bm b1
qemu-img bitmap --add -g 512 bm a_longer_bitmap_name

for size in 0 1 512 1M 1G 100G 1T 1P; do
    for o in "" "-O qcow2" "-O qcow2 --output=json" \
        "-O qcow2 -o cluster_size=512" "-O qcow2 -o cluster_size=2M" \
        "-O qcow2 -o refcount_bits=1" "-O qcow2 -o refcount_bits=64" \
        "-O qcow2 -o preallocation=full" "-O raw --output=json"; do
        # shellcheck disable=SC2086
        same "measure $o --size $size" "" measure $o --size $size
    done
done
for o in "-o cluster_size=4k,refcount_bits=8" "-o compat=0.10" \
    "-o extended_l2=on" "-o extended_l2=on,cluster_size=128k" \
    "-o preallocation=metadata" "-o preallocation=falloc,cluster_size=1k" \
    "-o cluster_size=512" "-o nocow=on"; do
    # shellcheck disable=SC2086
    same "measure -O qcow2 $o --size 10G" "" measure -O qcow2 $o --size 10G
done
for in in raw v3 v2 ov comp bm; do
    for o in "" "-O qcow2" "-O qcow2 --output=json" \
        "-O qcow2 -o cluster_size=4k,refcount_bits=1" \
        "-O qcow2 -o cluster_size=512 --output=json" \
        "-O qcow2 -o compat=0.10" "-O qcow2 -o preallocation=full" \
        "-O qcow2 -o backing_file=foo"; do
        # shellcheck disable=SC2086
        same "measure $o $in" "" measure $o "$T/$in"
    done
done
# inputs of the other formats, walked the same way
for f in vmdk vpc vdi; do
    qemu-img convert -O $f v3 "in.$f"
    same "measure -O qcow2 $f input" "" measure -O qcow2 "$T/in.$f"
    same "measure -O qcow2 -o cluster_size=4k --output=json $f input" "" \
        measure -O qcow2 -o cluster_size=4k --output=json "$T/in.$f"
done
same "measure -f raw --image-opts" "" measure -O qcow2 --image-opts \
    "driver=raw,file.filename=$T/raw"
same "measure -f qcow2" "" measure -O qcow2 -f qcow2 "$T/v3"

# the command line's checks
for args in "" "-f raw --size 1M" "--size 1M $T/raw" "$T/raw $T/v3" \
    "--size 1x" "--size -1" "-O foo --size 1M" \
    "-O qcow2 -o bogus=1 --size 1M" "-O qcow2 -o help --size 1M" \
    "-O qcow2 --output=xml --size 1M" "-O qcow2 -o cluster_size=3k --size 1M" \
    "-O qcow2 -o cluster_size=x --size 1M" \
    "-O qcow2 -o refcount_bits=128 --size 1M" \
    "-O qcow2 -o preallocation=foo --size 1M" \
    "-O qcow2 -o compat=0.10,refcount_bits=8 --size 1M" \
    "-O qcow2 -o extended_l2=on,cluster_size=4k --size 1M" \
    "-O qcow2 -o compat=foo --size 1M" \
    "-O qcow2 -o cluster_size=512 --size 1P" "-O qcow2 nonexist" \
    "-O qcow2 -l snap $T/v3" "-O qcow2 -o size=5M --size 1M" \
    "-O qcow2 -o size=5M" "-O qcow2 -o ,, --size 1M"; do
    # shellcheck disable=SC2086
    same "measure $args" "" measure $args
done
# qemu-img answers an unknown option with getopt's message and its help
qrc=0 src=0
qemu-img measure --bogus >/dev/null 2>q.err || qrc=$?
strata-img measure --bogus >s.out 2>s.err || src=$?
check_eq "measure --bogus: getopt's message" "$(cat s.err)" "$(cat q.err)"
check_eq "measure --bogus: exit status" "$src" "$qrc"
check_match "measure --bogus: the help" "$(cat s.out)" "^Command syntax:"
done_testing
