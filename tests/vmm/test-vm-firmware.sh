#!/usr/bin/env bash
# strata-vm firmware boot: SeaBIOS (through fw_cfg: e820, boot order)
# boots the test guest from the boot sector of a qcow2 overlay over a raw
# base; the guest takes its parameters from disk sector 128, reads the
# base's pattern, writes its own.  Afterwards the overlay holds the write,
# the base is unchanged and qemu-img check is clean.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/vmm/vm-functions.sh"
requires strata-io qemu-img
[ -r /usr/share/seabios/bios.bin ] || skip_all "SeaBIOS (bios.bin) not installed"
tmpdir
vm_requires_kvm
plan 8

base=$T/base.raw
ov=$T/ov.qcow2
vm_base "$base" 16M
vm_params "$base" "check=2048:128:0xaa write=4096:64:0x3c check=4096:64:0x3c"
sum_base=$(md5sum <"$base")
qemu-img create -q -f qcow2 -b "$base" -F raw "$ov"

vm_run "$T/fw.log" -m 128M -drive file="$ov",format=qcow2
vm_check "SeaBIOS boot: guest passed" "$GUEST_PASS" "$T/fw.log"
vm_log_has "booted from the disk's boot sector" "$T/fw.log" \
    'strata-guest: boot disk, params "check=2048:128:0xaa write=4096:64:0x3c'
vm_log_has "base pattern read through the overlay" "$T/fw.log" \
    "check 2048+128 0xaa: ok"
vm_log_has "write and flush" "$T/fw.log" "flush: ok"
check "overlay holds the guest's write" \
    strata-io -c "read -P 0x3c 2M 32k" "$ov"
check_eq "base image unchanged" "$(md5sum <"$base")" "$sum_base"
check "qemu-img check is clean on the overlay" qemu-img check "$ov"

# -hda and a firmware given by -bios, same machine
vm_run "$T/fw2.log" -bios /usr/share/seabios/bios.bin -hda "$ov" -snapshot
vm_check "-bios FILE -hda -snapshot: guest passed" "$GUEST_PASS" "$T/fw2.log"
done_testing
