#!/usr/bin/env bash
# strata-vm -drive num-queues=N: a virtio-blk with N virtqueues
# (VIRTIO_BLK_F_MQ, num_queues in its configuration).  The test guest
# drives queue 3 (blkq=3) and its writes land in the image; queue 2 with
# MSI-X interrupts; a guest that ignores MQ still works on queue 0; a
# one-queue disk has no queue 1; bad counts are refused.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/vmm/vm-functions.sh"
requires strata-io
tmpdir
vm_requires_kvm
plan 11

disk=$T/disk.raw
vm_base "$disk" 4M
drive="file=$disk,format=raw,num-queues=4"

vm_run "$T/q3.log" -kernel "$GUEST_ELF" -drive "$drive" \
    -append "blkq=3 check=2048:16:0xaa write=4096:16:0x33 check=4096:16:0x33"
vm_check "queue 3 of 4: guest passed" "$GUEST_PASS" "$T/q3.log"
vm_log_has "the guest negotiated MQ and saw 4 queues" "$T/q3.log" \
    "queue: 3 of 4, MQ"
check "the write through queue 3 is in the image" \
    strata-io -f raw -c "read -P 0x33 2M 8k" "$disk"

vm_run "$T/q2.log" -kernel "$GUEST_ELF" -drive "$drive" \
    -append "irq=msix blkq=2 check=4096:16:0x33 seqread=2"
vm_check "queue 2 with MSI-X: guest passed" "$GUEST_PASS" "$T/q2.log"
check_match "queue 2: every request raised an interrupt" \
    "$(tr -d '\r' <"$T/q2.log")" '^irq: [1-9][0-9]* interrupts, [1-9][0-9]* requests, 0 without one'

vm_run "$T/q0.log" -kernel "$GUEST_ELF" -drive "$drive" \
    -append "check=4096:16:0x33"
vm_check "a guest without MQ uses queue 0: passed" "$GUEST_PASS" "$T/q0.log"

vm_run "$T/one.log" -kernel "$GUEST_ELF" -drive "file=$disk,format=raw" \
    -append "blkq=1 check=4096:16:0x33"
vm_check "one-queue disk: the guest finds no queue 1 (exit 5)" 5 "$T/one.log"
vm_log_has "one-queue disk: the device has 1 queue" "$T/one.log" \
    "queue 1: the device has 1"

check_exit "num-queues=0 refused" 8 \
    strata-vm -kernel "$GUEST_ELF" -drive "file=$disk,num-queues=0"
check_exit "num-queues=9 refused" 8 \
    strata-vm -kernel "$GUEST_ELF" -drive "file=$disk,num-queues=9"
check_exit "num-queues=x refused" 8 \
    strata-vm -kernel "$GUEST_ELF" -drive "file=$disk,num-queues=x"
done_testing
