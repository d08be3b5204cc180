#!/usr/bin/env bash
# Internal snapshots on qcow2 images with extended L2 entries: strata-img
# creates, applies and deletes them on images strata-io and qemu-io wrote
# (partial subclusters, zeroed subclusters, copy-on-write of shared
# clusters); after each step qemu-img check is clean, strata-img check
# says what qemu-img check says, qemu-img snapshot -l lists the same
# snapshots, and every snapshot holds the data it was taken with.
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io
tmpdir
cd "$T"

# write STEP TOOL IMG: the writes of step 1, 2 or 3 through TOOL (strata-io
# or qemu-io) on IMG, and on the raw reference image ref<STEP>.raw
W1=(-c "write -P 0x11 0 5k" -c "write -P 0x12 64k 64k" -c "write -z 130k 6k"
    -c "write -P 0x13 1M 3k")
W2=(-c "write -P 0x21 2k 2k" -c "write -P 0x22 100k 1k" -c "write -z 64k 2k"
    -c "write -P 0x23 2M 64k")
W3=(-c "write -P 0x31 0 1k" -c "write -z 1M 1k" -c "write -P 0x32 3M 9k")
steps()
{
    local tool=$1 img=$2 n=$3
    local -n cmds=W$n
    $tool "${cmds[@]}" "$img" >/dev/null
    qemu-io -f raw "${cmds[@]}" ref.raw >/dev/null
    cp ref.raw "ref$n.raw"
}

# same_list DESC IMG: qemu-img and strata-img list the same id:name pairs
same_list()
{
    local q s
    q=$(qemu-img snapshot -l "$2" | awk 'NR > 2 { print $1 ":" $2 }')
    s=$(strata-img snapshot -l "$2" | awk 'NR > 2 { print $1 ":" $2 }')
    check_eq "$1" "$s" "$q"
}

# same_check DESC IMG: strata-img check prints what qemu-img check prints
same_check()
{
    local q s
    q=$(qemu-img check "$2" 2>&1; echo "rc=$?")
    s=$(strata-img check "$2" 2>&1; echo "rc=$?")
    check_eq "$1" "$s" "$q"
}

# snap_is DESC IMG SNAP REF: snapshot SNAP of IMG reads as REF
snap_is()
{
    rm -f snap.raw
    qemu-img convert -l "snapshot.name=$3" -O raw "$2" snap.raw
    check "$1" cmp snap.raw "$4"
}

plan $((2 * 21))
for writer in strata-io qemu-io; do
    for cs in 64k 32k; do
        img=$writer-$cs.qcow2
        rm -f ref.raw
        qemu-img create -q -f raw ref.raw 4M
        if [ "$writer" = strata-io ]; then
            strata-img create -q -f qcow2 -o extended_l2=on,cluster_size=$cs \
                "$img" 4M
        else
            qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=$cs \
                "$img" 4M
        fi
        steps "$writer" "$img" 1
        check "$img: snapshot -c one" strata-img snapshot -c one "$img"
        steps "$writer" "$img" 2
        check "$img: snapshot -c two" strata-img snapshot -c two "$img"
        steps "$writer" "$img" 3
        if [ "$cs" = 32k ]; then
            # the last few checks are enough once per writer
            continue
        fi
        check "$img: qemu-img check clean with two snapshots" \
            qemu-img check -q "$img"
        same_check "$img: strata-img check as qemu-img's" "$img"
        same_list "$img: qemu-img lists the same snapshots" "$img"
        snap_is "$img: snapshot one holds step 1" "$img" one ref1.raw
        snap_is "$img: snapshot two holds step 2" "$img" two ref2.raw
        check "$img: active image holds step 3" qemu-img compare -q \
            -f qcow2 -F raw "$img" ref3.raw
        check "$img: snapshot -a one" strata-img snapshot -a one "$img"
        check "$img: qemu-img check clean after -a" qemu-img check -q "$img"
        check "$img: active image is snapshot one" qemu-img compare -q \
            -f qcow2 -F raw "$img" ref1.raw
        check "$img: strata-io reads it too" strata-io \
            -c "read -P 0x11 0 5k" -c "read -P 0 130k 6k" \
            -c "read -P 0x13 1M 3k" "$img"
        check "$img: snapshot -d one" strata-img snapshot -d one "$img"
        check "$img: qemu-img check clean after -d one" qemu-img check -q "$img"
        snap_is "$img: snapshot two still holds step 2" "$img" two ref2.raw
        check "$img: snapshot -d two" strata-img snapshot -d two "$img"
        check "$img: qemu-img check clean after -d two" qemu-img check -q "$img"
    done
    # the 32k image: checks and data once, then delete both
    img=$writer-32k.qcow2
    same_check "$img: strata-img check as qemu-img's" "$img"
    snap_is "$img: snapshot one holds step 1" "$img" one ref1.raw
done
done_testing
