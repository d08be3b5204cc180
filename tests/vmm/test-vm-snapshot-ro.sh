#!/usr/bin/env bash
# -snapshot and snapshot=on write to a temporary overlay (the image is
# untouched and no overlay is left behind); readonly=on offers a read-only
# disk whose writes fail with VIRTIO_BLK_S_IOERR, and nothing is written.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/vmm/vm-functions.sh"
requires qemu-img
tmpdir
vm_requires_kvm
plan 10

base=$T/base.raw
ov=$T/ov.qcow2
vm_base "$base" 16M
qemu-img create -q -f qcow2 -b "$base" -F raw "$ov"
sum_base=$(md5sum <"$base")
sum_ov=$(md5sum <"$ov")
mkdir "$T/tmp"

TMPDIR=$T/tmp vm_run "$T/s1.log" -kernel "$GUEST_ELF" -snapshot \
    -drive file="$ov",format=qcow2 \
    -append "check=2048:128:0xaa write=2048:128:0x11 check=2048:128:0x11"
vm_check "-snapshot: guest wrote and read back its data" "$GUEST_PASS" \
    "$T/s1.log"
check_eq "-snapshot: overlay image unchanged" "$(md5sum <"$ov")" "$sum_ov"
check_eq "-snapshot: base unchanged" "$(md5sum <"$base")" "$sum_base"
check_eq "-snapshot: no temporary overlay left behind" \
    "$(ls -A "$T/tmp")" ""

vm_run "$T/s2.log" -kernel "$GUEST_ELF" \
    -drive file="$base",format=raw,snapshot=on \
    -append "write=4096:8:0x22 check=4096:8:0x22"
vm_check "snapshot=on: guest passed" "$GUEST_PASS" "$T/s2.log"
check_eq "snapshot=on: raw image unchanged" "$(md5sum <"$base")" "$sum_base"

vm_run "$T/ro.log" -kernel "$GUEST_ELF" \
    -drive file="$ov",format=qcow2,readonly=on \
    -append "expect-ro check=2048:128:0xaa write=2048:8:0x33"
vm_check "readonly=on: guest passed" "$GUEST_PASS" "$T/ro.log"
vm_log_has "readonly=on: the disk is offered read-only" "$T/ro.log" \
    "disk: 32768 sectors, read-only"
vm_log_has "readonly=on: the write failed with IOERR" "$T/ro.log" \
    "write 2048+8 0x33: refused (IOERR) as expected"
check_eq "readonly=on: nothing written" "$(md5sum <"$ov")" "$sum_ov"
done_testing
