#!/usr/bin/env bash
# Disks in the other formats: the test guest boots (directly) from a vmdk,
# a vdi and a vhd (vpc) made by qemu-img from a raw base, reads the base's
# pattern and writes its own; qemu-io then reads the write back and the
# image compares equal to the base plus that write (qemu-img compare).
# A format whose strata driver cannot read the image yet is skipped, named.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/vmm/vm-functions.sh"
requires strata-io qemu-img qemu-io
tmpdir
vm_requires_kvm
plan 9

base=$T/base.raw
vm_base "$base" 8M
for fmt in vmdk vdi vpc; do
    img=$T/disk.$fmt
    qemu-img convert -f raw -O "$fmt" "$base" "$img"
    if ! strata-io -f "$fmt" -c "read -P 0xaa 1M 64k" "$img" \
        >/dev/null 2>&1; then
        skip "$fmt: guest reads and writes" "strata cannot read $fmt yet"
        skip "$fmt: qemu-io reads the guest's write" "no $fmt driver"
        skip "$fmt: image = base + the guest's write" "no $fmt driver"
        continue
    fi
    vm_run "$T/$fmt.log" -kernel "$GUEST_ELF" \
        -drive file="$img",format="$fmt" \
        -append "check=2048:128:0xaa write=4096:64:0x4d check=4096:64:0x4d"
    vm_check "$fmt: guest reads and writes" "$GUEST_PASS" "$T/$fmt.log"
    check "$fmt: qemu-io reads the guest's write" \
        qemu-io -f "$fmt" -c "read -P 0x4d 2M 32k" "$img"
    cp "$base" "$T/expected.raw"
    qemu-io -f raw -c "write -P 0x4d 2M 32k" "$T/expected.raw" >/dev/null
    check "$fmt: image = base + the guest's write (qemu-img compare)" \
        qemu-img compare -f "$fmt" -F raw "$img" "$T/expected.raw"
done
done_testing
