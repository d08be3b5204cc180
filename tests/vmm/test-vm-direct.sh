#!/usr/bin/env bash
# strata-vm direct boot (PVH) of the test guest from a qcow2 overlay over a
# raw base: the guest reads the base's pattern through the overlay, writes
# and flushes its own; the overlay then holds the writes (strata-io,
# qemu-img compare), the base is unchanged and qemu-img check is clean.
# Again with cache=none,aio=io_uring and with aio=threads.  Then
# WRITE_ZEROES and DISCARD requests on a fresh overlay.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/vmm/vm-functions.sh"
requires strata-io qemu-img qemu-io
tmpdir
vm_requires_kvm
plan 24

base=$T/base.raw
ov=$T/ov.qcow2
exp=$T/expected.raw
vm_base "$base" 16M
sum_base=$(md5sum <"$base")
qemu-img create -q -f qcow2 -b "$base" -F raw "$ov"
cp "$base" "$exp"

# guest_round N DRIVE_OPTS LBA BYTE: boot, check the base, write BYTE at LBA
guest_round()
{
    local n=$1 opts=$2 lba=$3 byte=$4 log=$T/$1.log
    vm_run "$log" -kernel "$GUEST_ELF" -drive "file=$ov,format=qcow2$opts" \
        -append "check=2048:128:0xaa write=$lba:64:$byte check=$lba:64:$byte getid"
    vm_check "boot $n ($opts): guest passed" "$GUEST_PASS" "$log"
    vm_log_has "boot $n: PVH entry with the command line" "$log" \
        "strata-guest: boot pvh, params \"check=2048:128:0xaa"
    vm_log_has "boot $n: base pattern read through the overlay" "$log" \
        "check 2048+128 0xaa: ok"
    vm_log_has "boot $n: write and flush" "$log" "flush: ok"
    check "boot $n: overlay holds the guest's write (strata-io read -P)" \
        strata-io -c "read -P $byte $((lba * 512)) 32k" "$ov"
    qemu-io -f raw -c "write -P $byte $((lba * 512)) 32k" "$exp" >/dev/null
}

guest_round 1 "" 4096 0x5a
vm_log_has "boot 1: GET_ID answers the default serial" "$T/1.log" \
    "serial: strata0"
# io_uring when built with liburing, else Linux AIO (also O_DIRECT)
aio=io_uring
grep -q '^#define HAVE_LIBURING 1' "$top_builddir/config.h" || aio=native
guest_round 2 ",cache=none,aio=$aio" 6144 0x6b
guest_round 3 ",aio=threads,serial=disk-three" 8192 0x7c
vm_log_has "boot 3: GET_ID answers serial=" "$T/3.log" "serial: disk-three"

check "overlay reads as base + the three writes (qemu-img compare)" \
    qemu-img compare -f qcow2 -F raw "$ov" "$exp"
check_eq "base image unchanged" "$(md5sum <"$base")" "$sum_base"
check "qemu-img check is clean on the overlay" qemu-img check "$ov"

ov2=$T/ov2.qcow2
qemu-img create -q -f qcow2 -b "$base" -F raw "$ov2"
vm_run "$T/z.log" -kernel "$GUEST_ELF" -drive file="$ov2",format=qcow2 \
    -append "zero=2048:32 check=2048:32:0 check=2080:96:0xaa discard=2112:64"
vm_check "write-zeroes and discard: guest passed" "$GUEST_PASS" "$T/z.log"
vm_log_has "discard request completed" "$T/z.log" "discard 2112+64: ok"
check "write-zeroes landed in the overlay (base still 0xaa)" \
    strata-io -c "read -P 0 1M 16k" -c "read -P 0xaa 1040k 16k" "$ov2"
check "qemu-img check is clean after write-zeroes and discard" \
    qemu-img check "$ov2"
done_testing
