#!/usr/bin/env bash
# check on qcow2 images whose snapshot table names an unusable L1 table
# (misaligned, or larger than QEMU allows): strata-img check opens them
# and reports the entry as qemu-img check does (human, JSON, -r leaks,
# -r all, with byte-identical repairs: like QEMU 7.2 the entry stays and
# its references are not counted); opened for anything else, such an
# image is refused with a clear error.
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io python3
tmpdir
. "$top_srcdir/tests/check/check-lib.sh"

cd "$T"
qemu-img create -q -f qcow2 base.qcow2 16M
qemu-io -c "write -P 1 0 1M" -c "write -P 2 4M 64k" base.qcow2 >/dev/null
qemu-img snapshot -c s1 base.qcow2
qemu-io -c "write -P 3 0 64k" base.qcow2 >/dev/null
qemu-img snapshot -c s2 base.qcow2

cp base.qcow2 misaligned.qcow2
cp base.qcow2 large.qcow2
cp base.qcow2 both.qcow2
$DAMAGE misaligned.qcow2 sn-l1-offset-add 0 8 &&
    $DAMAGE large.qcow2 sn-l1-size 1 $((0x2000001)) &&
    $DAMAGE both.qcow2 sn-l1-offset-add 0 512 &&
    $DAMAGE both.qcow2 sn-l1-size 1 $((0x4000000)) ||
    bail_out "could not damage the images"
cmp -s base.qcow2 large.qcow2 && bail_out "large.qcow2 was not damaged"

plan $((3 * 6 + 3))

for img in misaligned.qcow2 large.qcow2 both.qcow2; do
    same_check "$img: check" "$img"
    same_check "$img: check --output=json" "$img" --output=json
    same_check "$img: check -r leaks" "$img" -r leaks
    # -r all: both tools print the second check's findings to stderr
    # while the summary goes to stdout; compare them separately
    same_check "$img: check -r all" "$img" -r all
    check "$img: both repairs leave the same file" cmp "$CMP_S" "$CMP_Q"
    check "$img: the active image still reads its data (qemu-io)" \
        qemu-io -c "read -P 3 0 64k" -c "read -P 1 64k 960k" \
        -c "read -P 2 4M 64k" "$CMP_S"
done
err=$(strata-img info misaligned.qcow2 2>&1)
check_fail "info refuses the image" strata-img info misaligned.qcow2
check "and says which snapshot is broken" \
    sh -c "printf '%s' \"\$1\" | grep -q 'snapshot 0 (id 1)'" sh "$err"
check_fail "snapshot -a of the broken one is refused" \
    strata-img snapshot -a s1 misaligned.qcow2
done_testing
