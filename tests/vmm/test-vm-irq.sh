#!/usr/bin/env bash
# strata-vm interrupt delivery: the test guest takes its virtio-blk
# completions by interrupt (irq=msix, irq=intx) instead of polling, and
# every request must raise one.  MSI-X: a masked vector (and a masked
# function) stays silent with its pending bit set and fires on unmask,
# to the message reprogrammed while masked; a vector reprogrammed while
# unmasked moves at once (the GSI route follows).  INTx: left pending at
# the EOI (ISR not read), the line comes back (level-triggered, through
# the irqfd's resample fd), and is held back while the PCI command
# register disables it.  Each runs with irqfds (KVM_IRQFD, checked
# with strace where installed) and again on the ioctl fallback
# (STRATA_VM_NO_IRQFD=1: KVM_SIGNAL_MSI / KVM_IRQ_LINE); then MSI-X after
# a SeaBIOS boot from the disk.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/vmm/vm-functions.sh"
tmpdir
vm_requires_kvm
plan 29

base=$T/base.raw
vm_base "$base" 16M

# irq_round NAME MODE TEST_OP: boot with irq=MODE, read/write/check and
# the mode's own test; the log is $T/NAME.log
irq_round()
{
    local log=$T/$1.log
    vm_run "$log" -kernel "$GUEST_ELF" -drive file="$base",format=raw \
        -append "irq=$2 check=2048:32:0xaa write=4096:64:0x$3 check=4096:64:0x$3 $4 seqread=4 getid"
    vm_check "$1: guest passed with irq=$2" "$GUEST_PASS" "$log"
    vm_log_has "$1: the device was set up for $2" "$log" "irq: $2, pin"
    check_match "$1: every request raised an interrupt" \
        "$(tr -d '\r' <"$log")" '^irq: [1-9][0-9]* interrupts, [1-9][0-9]* requests, 0 without one'
}

msix_checks()
{
    vm_log_has "$1: masked vector silent, pending bit set, sent on unmask" \
        "$T/$1.log" \
        "msix vector mask: silent while masked, pending bit set, delivered on unmask"
    vm_log_has "$1: unmasked vector reprogrammed: its route follows" \
        "$T/$1.log" "msix reprogrammed vector: ok"
    vm_log_has "$1: function mask holds the message back as well" \
        "$T/$1.log" \
        "msix function mask: silent while masked, pending bit set, delivered on unmask"
}

irq_round msix msix 5a msixmask
msix_checks msix
irq_round intx intx 6b intxlevel
vm_log_has "intx: the line is level-triggered (raised again after EOI)" \
    "$T/intx.log" "intx level: raised again after an EOI with the ISR still set"
vm_log_has "intx: held back while disabled (PCI command), raised when enabled" \
    "$T/intx.log" "intx disable: silent while disabled, raised when enabled"

export STRATA_VM_NO_IRQFD=1
irq_round msix-ioctl msix 7c msixmask
msix_checks msix-ioctl
irq_round intx-ioctl intx 8d intxlevel
vm_log_has "intx-ioctl: the line is level-triggered" "$T/intx-ioctl.log" \
    "intx level: raised again after an EOI with the ISR still set"
vm_log_has "intx-ioctl: INTx disable bit" "$T/intx-ioctl.log" \
    "intx disable: silent while disabled, raised when enabled"
unset STRATA_VM_NO_IRQFD

# the interrupts really went through irqfds: KVM_IRQFD bound, no
# KVM_SIGNAL_MSI ioctl at all
if type -P strace >/dev/null; then
    for m in msix intx; do
        st=$T/strace-$m
        rc=0
        # LeakSanitizer cannot run under ptrace (sanitizer builds)
        ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
        timeout "$VM_TIMEOUT" strace -f -qq -e trace=ioctl -o "$st" \
            strata-vm -serial none -kernel "$GUEST_ELF" \
            -drive file="$base",format=raw -append "irq=$m check=2048:16:0xaa" \
            >/dev/null 2>&1 || rc=$?
        if [ "$rc" = "$GUEST_PASS" ] && grep -q 'KVM_IRQFD' "$st" &&
            ! grep -q 'KVM_SIGNAL_MSI' "$st"; then
            ok "$m: delivered through KVM_IRQFD, no KVM_SIGNAL_MSI"
        else
            not_ok "$m: delivered through KVM_IRQFD, no KVM_SIGNAL_MSI"
            diag "exit status $rc; $(grep -c KVM_IRQFD "$st") KVM_IRQFD," \
                "$(grep -c KVM_SIGNAL_MSI "$st") KVM_SIGNAL_MSI"
        fi
    done
else
    skip "msix: delivered through KVM_IRQFD" "strace not installed"
    skip "intx: delivered through KVM_IRQFD" "strace not installed"
fi

# MSI-X after SeaBIOS (which polls with INTx off) handed over the device
if [ -r /usr/share/seabios/bios.bin ]; then
    vm_params "$base" "irq=msix check=2048:128:0xaa msixmask"
    vm_run "$T/fw.log" -m 128M -drive file="$base",format=raw
    vm_check "SeaBIOS boot, then irq=msix: guest passed" "$GUEST_PASS" \
        "$T/fw.log"
    vm_log_has "SeaBIOS boot: booted from the disk" "$T/fw.log" \
        'strata-guest: boot disk, params "irq=msix'
    msix_checks fw
else
    for i in 1 2 3 4 5; do
        skip "SeaBIOS boot with irq=msix" "SeaBIOS (bios.bin) not installed"
    done
fi
done_testing
