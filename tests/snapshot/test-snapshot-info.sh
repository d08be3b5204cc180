#!/usr/bin/env bash
# strata-img info lists internal snapshots as qemu-img 7.2 does: the
# "Snapshot list:" table of the human output and the "snapshots" array of
# --output=json (keys, key order, values), also with --backing-chain.
# Both tools read the same files, so nothing is normalised: dates, clocks
# and sizes come from the image and must match exactly.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/snapshot/snapshot-helpers.sh"
requires qemu-img qemu-io
tmpdir

# same_info DESC ARGS...: human and JSON outputs equal byte for byte.
same_info()
{
    local desc=$1
    shift
    check_eq "$desc (human)" "$(cd "$T" && strata-img info "$@" 2>&1)" \
        "$(cd "$T" && qemu-img info "$@" 2>&1)"
    check_eq "$desc (json)" \
        "$(cd "$T" && strata-img info --output=json "$@" 2>&1)" \
        "$(cd "$T" && qemu-img info --output=json "$@" 2>&1)"
}

qemu-img create -q -f qcow2 "$T/none.qcow2" 1M
same_info "no snapshots: no list, no key" none.qcow2

qemu-img create -q -f qcow2 "$T/q.qcow2" 4M
qemu-io -f qcow2 -c 'write -P 0x11 0 1M' "$T/q.qcow2" >/dev/null
qemu-img snapshot -c first "$T/q.qcow2"
qemu-img snapshot -c second "$T/q.qcow2"
same_info "qemu-img's snapshots" q.qcow2

cp "$T/none.qcow2" "$T/s.qcow2"
strata-img snapshot -c mine "$T/s.qcow2"
strata-img snapshot -c "a name longer than the tag column" "$T/s.qcow2"
same_info "strata's snapshots" s.qcow2

qemu-img create -q -f qcow2 -o compat=0.10 "$T/v2.qcow2" 1M
strata-img snapshot -c old "$T/v2.qcow2"
same_info "a v2 image" v2.qcow2

# VM state size, VM clock and a missing icount, set in the entry itself:
# vm_clock 01:02:07.074575879, vm_state_size 3 GiB + 5 in the 64-bit field,
# icount -1 (not recorded)
img=$T/vm.qcow2
cp "$T/none.qcow2" "$img"
strata-img snapshot -c vm "$img"
e=$(sn_entries "$img")
poke "$img" $((e + 24)) 00000363c6f4c607
poke "$img" $((e + 40)) 00000000c0000005
poke "$img" $((e + 56)) ffffffffffffffff
same_info "VM state, clock, no icount" vm.qcow2

# an old entry without extra data (valid in v2 images): no icount, the
# disk size taken from the header
img=$T/old.qcow2
qemu-img create -q -f qcow2 -o compat=0.10 "$img" 1M
strata-img snapshot -c oldstyle "$img"
e=$(sn_entries "$img")
dd if="$img" of="$T/idname" bs=1 skip=$((e + 64)) count=9 status=none
dd if="$T/idname" of="$img" bs=1 seek=$((e + 40)) conv=notrunc status=none
poke "$img" $((e + 36)) 00000000
same_info "an entry without extra data" old.qcow2
check_eq "its size is listed" "$(strata-img snapshot -l "$img" | \
    awk 'NR == 3 { print $1, $2 }')" "1 oldstyle"
qclean "the shortened entry" "$img"

# --backing-chain: snapshots of every layer
qemu-img create -q -f qcow2 -b q.qcow2 -F qcow2 "$T/top.qcow2"
strata-img snapshot -c top "$T/top.qcow2"
same_info "backing chain" --backing-chain top.qcow2

done_testing
