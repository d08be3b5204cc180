#!/usr/bin/env bash
# -smp 2: the guest starts its second vCPU by INIT-SIPI and sees it run;
# exit codes: 0 on ACPI power-off, 2 on reset with -no-reboot, 2V+1 for a
# debug-exit write of V (a failing guest check gives 3); without
# -no-reboot a reset restarts the machine; a signal stops it with 128+N.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/vmm/vm-functions.sh"
tmpdir
vm_requires_kvm
plan 10

disk=$T/disk.raw
vm_base "$disk" 4M

vm_run "$T/smp.log" -smp 2 -kernel "$GUEST_ELF" -drive file="$disk",format=raw \
    -append "cpus=2"
vm_check "-smp 2: guest passed" "$GUEST_PASS" "$T/smp.log"
vm_log_has "-smp 2: second vCPU came up" "$T/smp.log" \
    "cpus: 2 online (bsp apic 0, ap apic 1)"

vm_run "$T/smp1.log" -smp 1 -kernel "$GUEST_ELF" \
    -drive file="$disk",format=raw -append "cpus=2"
vm_check "-smp 1: guest reports the missing vCPU (exit 3)" 3 "$T/smp1.log"

vm_run "$T/off.log" -smp 2 -kernel "$GUEST_ELF" \
    -drive file="$disk",format=raw -append "end=poweroff"
vm_check "ACPI power-off: exit 0" 0 "$T/off.log"
vm_log_has "power-off found PM1a_CNT and \\_S5 in the ACPI tables" \
    "$T/off.log" "poweroff: PM1a_CNT 0x604 SLP_TYP 5"

vm_run "$T/reset.log" -kernel "$GUEST_ELF" -drive file="$disk",format=raw \
    -append "end=reset"
vm_check "reset with -no-reboot: exit 2" 2 "$T/reset.log"

vm_run "$T/bad.log" -kernel "$GUEST_ELF" -drive file="$disk",format=raw \
    -append "check=2048:1:0x55"
vm_check "failing guest check: exit 3" 3 "$T/bad.log"
vm_log_has "the mismatch is reported" "$T/bad.log" \
    "check 2048+1: sector 2048 byte 0 is 0xaa, not 0x55"
# without -no-reboot: the guest resets and boots again, until killed
log=$T/reboot.log
: >"$log"
strata-vm -serial "file:$log" -kernel "$GUEST_ELF" \
    -drive file="$disk",format=raw -append "end=reset" >/dev/null 2>&1 &
bg=$!
cleanup_fn kill "$bg"
booted_twice() { [ "$(grep -c 'strata-guest: started' "$log")" -ge 2 ]; }
if wait_until 60 booted_twice; then
    ok "reset without -no-reboot restarts the guest"
else
    not_ok "reset without -no-reboot restarts the guest"
    diag "$(tail -n 5 "$log")"
fi
kill -TERM "$bg" 2>/dev/null || true
# a lost signal (the guest resets all the time) must fail, not hang
stopped() { ! kill -0 "$bg"; }
if ! wait_until 30 stopped; then
    kill -KILL "$bg" 2>/dev/null || true
fi
rc=0
wait "$bg" || rc=$?
check_eq "SIGTERM stops strata-vm with status 143" "$rc" 143
done_testing
