#!/usr/bin/env bash
# resize: strata-img and qemu-img on copies of the same raw and qcow2
# images print the same, exit the same, and leave images with the same
# content (and the same file size) that qemu-img check finds clean.
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io
tmpdir
. "$top_srcdir/tests/reshape/reshape-lib.sh"

qemu-img create -f raw "$T/raw" 1M >/dev/null
qemu-io -f raw -c 'write -P 0x5a 0 1M' "$T/raw" >/dev/null
# v3 and v2 qcow2 with data, zero clusters and holes; 512-byte clusters;
# 1-bit refcounts
qemu-img create -f qcow2 "$T/v3" 4M >/dev/null
qemu-io -f qcow2 -c 'write -P 0xaa 0 1M' -c 'write -P 0xbb 3M 512k' \
    -c 'write -z 2M 64k' "$T/v3" >/dev/null
qemu-img create -f qcow2 -o compat=0.10 "$T/v2" 4M >/dev/null
qemu-io -f qcow2 -c 'write -P 0xaa 0 1M' -c 'write -P 0xbb 3M 512k' \
    "$T/v2" >/dev/null
qemu-img create -f qcow2 -o cluster_size=512 "$T/c512" 4M >/dev/null
qemu-io -f qcow2 -c 'write -P 0xaa 0 1M' -c 'write -P 0xbb 3M 512k' \
    "$T/c512" >/dev/null
qemu-img create -f qcow2 -o refcount_bits=1 "$T/rc1" 4M >/dev/null
qemu-io -f qcow2 -c 'write -P 0xaa 0 1M' -c 'write -P 0xbb 3M 512k' \
    "$T/rc1" >/dev/null

# messages and exit codes of the command line
for args in "IMG 2M" "-f raw IMG 512k" "-f raw --shrink IMG 512k" \
    "-f raw IMG +1M" "-f raw IMG -1M" "-f raw IMG -- -1M" "-f raw IMG 0" \
    "-f raw IMG -5M" "-f raw IMG 1x" "-f raw IMG" "IMG" \
    "-f raw IMG 1M 2M" "-f raw --preallocation=full IMG 1M" \
    "-f raw --preallocation=foo IMG 3M" \
    "-f raw --preallocation=metadata IMG 3M" \
    "-f raw --preallocation=falloc IMG 3M" \
    "-f raw --preallocation=full IMG 3M" \
    "-f raw --shrink --preallocation=falloc IMG 512k" "-q IMG 3M" \
    "--bogus IMG 3M" "-x IMG 3M" "IMG -f" "-f raw IMG 18E" \
    "-f raw IMG 9E" "-f raw IMG 1.5M" "-f raw IMG 1000" \
    "-f qcow2 IMG 2M" "--image-opts driver=raw,file.filename=IMG 3M"; do
    # shellcheck disable=SC2086
    same "raw: resize $args" "$T/raw" resize $args
    check_eq "raw: resize $args: same content and length" \
        "$(cmp "$QIMG" "$SIMG" 2>&1; stat -c %s "$SIMG")" \
        "$(stat -c %s "$QIMG")"
done

# every case on v3; the ones that touch the layout on the others
all="IMG_8M IMG_+1G IMG_3M --shrink_IMG_3M --shrink_IMG_1000448
    --shrink_IMG_512k --shrink_IMG_1000000 --preallocation=metadata_IMG_9M
    --preallocation=falloc_IMG_9M --preallocation=full_IMG_9M
    --preallocation=full_IMG_4M --shrink_IMG_512 -f_qcow2_--shrink_-q_IMG_-3M"
some="IMG_+1G --shrink_IMG_1000448 --preallocation=metadata_IMG_9M
    --preallocation=falloc_IMG_9M"
for img in v3 v2 c512 rc1; do
    list=$some
    [ $img = v3 ] && list=$all
    for a in $list; do
        args=${a//_/ }
        # shellcheck disable=SC2086
        same "$img: resize $args" "$T/$img" resize $args
        images_agree "$img: resize $args: same data, check clean"
        check_eq "$img: resize $args: same file length" \
            "$(stat -c %s "$SIMG")" "$(stat -c %s "$QIMG")"
    done
done

# growing an overlay over a longer backing file: the new area reads as
# zeroes, not as the backing file's data
qemu-img create -f qcow2 "$T/base" 4M >/dev/null
qemu-io -f qcow2 -c 'write -P 0xcc 0 4M' "$T/base" >/dev/null
qemu-img create -f qcow2 -b "$T/base" -F qcow2 "$T/ov" 1000k >/dev/null
for args in "IMG 4M" "--preallocation=metadata IMG 4M" \
    "--preallocation=falloc IMG 4M"; do
    # shellcheck disable=SC2086
    same "overlay: resize $args" "$T/ov" resize $args
    images_agree "overlay: resize $args: same data, check clean"
    check "overlay: resize $args: new area reads zeroes" \
        qemu-io -f qcow2 -c 'read -P 0 1000k 3096k' "$SIMG"
done
qemu-img create -f qcow2 -o compat=0.10 -b "$T/base" -F qcow2 "$T/ov2" \
    1000k >/dev/null
same "v2 overlay: growing over a longer backing file" "$T/ov2" resize IMG 4M

# a v3 image with an internal snapshot resizes both ways; reverting to the
# snapshot brings back its data and size
cp "$T/v3" "$T/sn"
qemu-img snapshot -c s1 "$T/sn"
qemu-io -f qcow2 -c 'write -P 0x11 1M 1M' "$T/sn" >/dev/null
for args in "IMG 16M" "--shrink IMG 2M" "--shrink IMG 100k"; do
    # shellcheck disable=SC2086
    same "with a snapshot: resize $args" "$T/sn" resize $args
    images_agree "with a snapshot: resize $args: same data, check clean"
    qemu-img snapshot -a s1 "$QIMG"
    check "with a snapshot: resize $args: revert" \
        qemu-img snapshot -a s1 "$SIMG"
    images_agree "with a snapshot: resize $args: same after the revert"
done

# a shrunk image still holds what was left of it
cp "$T/v3" "$T/x"
check "shrink by strata-img" strata-img resize --shrink "$T/x" 3200k
check "data below the new end intact (strata-io)" \
    strata-io -f qcow2 -c 'read -P 0xaa 0 1M' -c 'read -P 0xbb 3M 128k' \
    "$T/x"
check "grow back" strata-img resize "$T/x" 4M
check "the regrown tail reads zeroes (qemu-io)" \
    qemu-io -f qcow2 -c 'read -P 0 3200k 896k' "$T/x"
check "qemu-img check clean" qemu-img check -q "$T/x"
done_testing
