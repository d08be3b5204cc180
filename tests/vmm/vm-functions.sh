# Helpers for the strata-vm tests: source after tests/functions.sh.
#
# The test guest (vmm/guest) reports on the serial port and leaves through
# the isa-debug-exit port: strata-vm exits 1 when every check passed
# ((0 << 1) | 1), 3 when one failed.  Every guest run has a timeout so a
# hung guest fails the test instead of hanging make check.

GUEST_ELF=$top_builddir/vmm/guest/strata-guest.elf
GUEST_IMG=$top_builddir/vmm/guest/strata-guest.img
VM_TIMEOUT=${VM_TIMEOUT:-120}
GUEST_PASS=1

# vm_requires_kvm: skip unless this host can run a KVM guest at all (the
# device is there and usable, and strata-vm can create a VM on it).
vm_requires_kvm()
{
    requires strata-vm timeout
    [ -r "$GUEST_ELF" ] || skip_all "test guest not built ($GUEST_ELF)"
    [ -e /dev/kvm ] || skip_all "/dev/kvm absent"
    [ -r /dev/kvm ] && [ -w /dev/kvm ] || skip_all "/dev/kvm not accessible"
    local rc=0
    truncate -s 1M "$T/probe.raw"
    timeout "$VM_TIMEOUT" strata-vm -serial none -m 32 -kernel "$GUEST_ELF" \
        -append end=poweroff -drive file="$T/probe.raw",format=raw \
        >"$T/probe.log" 2>&1 || rc=$?
    if [ "$rc" = 8 ] && grep -q -e 'KVM' -e '/dev/kvm' "$T/probe.log"; then
        skip_all "KVM unusable: $(head -n 1 "$T/probe.log")"
    fi
    rm -f "$T/probe.raw" "$T/probe.log"
}

# vm_base FILE SIZE: a raw base image: the bootable guest in its first 64
# KiB, an empty parameter sector (LBA 128) and 0xaa in LBAs 2048-2175.
vm_base()
{
    truncate -s "$2" "$1"
    dd if="$GUEST_IMG" of="$1" conv=notrunc status=none
    printf '\xaa%.0s' $(seq 65536) |
        dd of="$1" bs=512 seek=2048 conv=notrunc status=none
}

# vm_params FILE TEXT: the guest's parameters for a firmware boot.
vm_params()
{
    printf 'STRATAGUEST:%s\0' "$2" |
        dd of="$1" bs=512 seek=128 conv=notrunc status=none
}

# vm_run LOG ARGS...: run strata-vm with the serial output in LOG; sets
# vm_rc to its exit status.
vm_run()
{
    local log=$1
    shift
    vm_rc=0
    timeout "$VM_TIMEOUT" strata-vm -serial "file:$log" -no-reboot "$@" \
        >"$log.err" 2>&1 || vm_rc=$?
}

# vm_check DESC WANT_RC LOG: ok if the last run exited WANT_RC.
vm_check()
{
    if [ "$vm_rc" = "$2" ]; then
        ok "$1"
    else
        not_ok "$1"
        diag "exit status $vm_rc, want $2"
        [ -s "$3" ] && diag "$(tail -n 20 "$3")"
        [ -s "$3.err" ] && diag "$(tail -n 20 "$3.err")"
    fi
}

# vm_log_has DESC LOG TEXT: ok if a line the guest printed starts with TEXT.
vm_log_has()
{
    if tr -d '\r' <"$2" | cut -c "1-${#3}" | grep -qxF -- "$3"; then
        ok "$1"
    else
        not_ok "$1"
        diag "no line '$3' in the guest's output:"
        [ -s "$2" ] && diag "$(tr -d '\r' <"$2" | tail -n 20)"
    fi
}
