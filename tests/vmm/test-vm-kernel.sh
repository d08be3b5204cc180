#!/usr/bin/env bash
# Direct kernel boot paths: the test guest as a bzImage (Linux boot
# protocol, 64-bit entry, boot_params) and as a PVH ELF, each with an
# initrd and a command line that reach the guest intact; RAM above 3 GiB
# (split around the PCI hole); the virtio-rng device; -pidfile and -name.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/vmm/vm-functions.sh"
tmpdir
vm_requires_kvm
plan 13

bz=$top_builddir/vmm/guest/strata-guest.bzimage
disk=$T/disk.raw
vm_base "$disk" 4M
{ printf STRATAINITRD; head -c 200000 /dev/urandom; } >"$T/initrd"

vm_run "$T/bz.log" -kernel "$bz" -initrd "$T/initrd" \
    -drive file="$disk",format=raw -append "initrd=200012 check=2048:8:0xaa"
vm_check "bzImage: guest passed" "$GUEST_PASS" "$T/bz.log"
vm_log_has "bzImage: 64-bit entry with boot_params and command line" \
    "$T/bz.log" 'strata-guest: boot linux64, params "initrd=200012 check=2048:8:0xaa"'
vm_log_has "bzImage: initrd loaded" "$T/bz.log" "initrd: 200012 bytes"

vm_run "$T/pvh.log" -kernel "$GUEST_ELF" -initrd "$T/initrd" \
    -drive file="$disk",format=raw -append "initrd=200012 rng"
vm_check "PVH: guest passed" "$GUEST_PASS" "$T/pvh.log"
vm_log_has "PVH: initrd as module 0 of hvm_start_info" "$T/pvh.log" \
    "initrd: 200012 bytes"
vm_log_has "virtio-rng filled the guest's buffer" "$T/pvh.log" \
    "rng: 64 bytes"
fnv() { tr -d '\r' <"$1" | sed -n 's/^initrd: .* fnv=//p'; }
check_eq "both paths see the same initrd bytes" "$(fnv "$T/bz.log")" \
    "$(fnv "$T/pvh.log")"

vm_run "$T/big.log" -m 5G -smp 2 -kernel "$bz" \
    -drive file="$disk",format=raw -append "cpus=2 check=2048:8:0xaa"
vm_check "-m 5G (RAM above 4 GiB) with -smp 2: guest passed" \
    "$GUEST_PASS" "$T/big.log"

vm_run "$T/pid.log" -kernel "$GUEST_ELF" -drive file="$disk",format=raw \
    -name strata-test-vm -pidfile "$T/vm.pid" -append "end=poweroff"
vm_check "-pidfile/-name: guest powered off" 0 "$T/pid.log"
check_eq "pidfile removed at exit" "$(ls "$T"/vm.pid 2>/dev/null)" ""

# pidfile while running: firmware with no bootable disk waits until killed
truncate -s 1M "$T/empty.raw"
strata-vm -serial none -pidfile "$T/vm2.pid" -name strata-test-vm \
    -drive file="$T/empty.raw",format=raw >/dev/null 2>&1 &
bg=$!
cleanup_fn kill "$bg"
if wait_until 30 test -s "$T/vm2.pid"; then
    ok "pidfile written while the guest runs"
else
    not_ok "pidfile written while the guest runs"
fi
# under STRATA_VALGRIND, $bg is the shell that runs valgrind, and the
# VM is its child
vmpid=$bg
if [ "${STRATA_VALGRIND:-0}" = 1 ]; then
    vmpid=$(pgrep -P "$bg" | head -n 1)
fi
check_eq "pidfile holds the process id" "$(cat "$T/vm2.pid" 2>/dev/null)" \
    "$vmpid"
check_eq "-name sets the process name" \
    "$(cat "/proc/$vmpid/comm" 2>/dev/null)" "strata-test-vm"
pkill -P "$bg" 2>/dev/null
kill "$bg"
wait "$bg" || true
done_testing
