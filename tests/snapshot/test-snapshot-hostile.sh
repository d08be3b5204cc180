#!/usr/bin/env bash
# Hostile snapshot tables: counts, offsets and sizes that point past the
# end of the file, into the header or into other metadata, entries running
# off the end, snapshots whose tables point nowhere, and random damage.
# strata-img gives a clear error (never a crash) and changes nothing when
# it refuses an operation.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/snapshot/snapshot-helpers.sh"
requires qemu-img qemu-io
tmpdir

qemu-img create -q -f qcow2 "$T/good.qcow2" 1M
qemu-io -f qcow2 -c 'write -P 0x11 0 256k' "$T/good.qcow2" >/dev/null
strata-img snapshot -c one "$T/good.qcow2"
strata-img snapshot -c two "$T/good.qcow2"
E=$(sn_entries "$T/good.qcow2" | head -n1)   # first entry
L1=$(be64 "$T/good.qcow2" "$E")              # its L1 table
ACTIVE_L1=$(be64 "$T/good.qcow2" 40)

# refused DESC MESSAGE-REGEX OFFSET HEX...: with the pokes applied, info
# fails cleanly and names the problem.
refused()
{
    local desc=$1 re=$2 img=$T/bad.qcow2 out
    shift 2
    cp "$T/good.qcow2" "$img"
    while [ $# -gt 0 ]; do
        poke "$img" "$1" "$2"
        shift 2
    done
    check_fail "$desc: info fails cleanly" strata-img info "$img"
    out=$(strata-img snapshot -l "$img" 2>&1 || true)
    check_match "$desc: the message says why" "$out" "$re"
}

refused "absurd snapshot count" "too large" 60 ffffffff
refused "snapshot table past EOF" "past the end" 64 0000000100000000
refused "snapshot table in the header" "header" 64 0000000000000000
refused "unaligned snapshot table" "offset invalid" 64 0000000000030008
refused "too much extra data" "Too much extra metadata" $((E + 36)) 00010000
refused "snapshot L1 unaligned" "L1 table offset.*invalid" $E 0000000000050200
refused "snapshot L1 absurd size" "L1 table.*too large" $((E + 8)) 10000000
refused "snapshot L1 past EOF" "past the end" $E 0000000100000000
refused "snapshot L1 in the header" "overlaps other metadata" $E 0000000000000000
refused "snapshot L1 on the active L1" "overlaps other metadata" \
    $E "$(printf %016x "$ACTIVE_L1")"

# an entry running off the end of the file: the table moved to the last
# cluster, with id and name lengths reaching far past it
img=$T/tail.qcow2
cp "$T/good.qcow2" "$img"
size=$(file_size "$img")
new=$(((size + 65535) / 65536 * 65536))
dd if="$img" of="$img" bs=65536 skip=$((E / 65536)) seek=$((new / 65536)) \
    count=1 conv=notrunc status=none
poke "$img" 64 "$(printf %016x "$new")"
poke "$img" $((new + 12)) ffffffff
check_fail "entry past EOF: info fails cleanly" strata-img info "$img"
check_match "entry past EOF: the message says why" \
    "$(strata-img snapshot -l "$img" 2>&1 || true)" "past the end"

# tables that open but lead nowhere: apply and delete refuse before any
# change (the file stays as it was)
nowhere()
{
    local desc=$1 off=$2 hex=$3 img=$T/nw.qcow2
    cp "$T/good.qcow2" "$img"
    poke "$img" "$off" "$hex"
    cp "$img" "$T/before.qcow2"
    check "$desc: listed" strata-img snapshot -l "$img"
    check_fail "$desc: apply refused" strata-img snapshot -a one "$img"
    check_fail "$desc: delete refused" strata-img snapshot -d one "$img"
    check "$desc: the file is unchanged" cmp "$img" "$T/before.qcow2"
}
L2=$(be64 "$T/good.qcow2" "$L1")
L2=$((L2 & 0x00fffffffffffe00))
DATA=$(be64 "$T/good.qcow2" "$L2")
nowhere "snapshot L2 table past EOF" "$L1" 8000000100000000
nowhere "snapshot L2 table unaligned" "$L1" 8000000000050200
nowhere "data cluster unaligned" "$L2" 8000000000060200
nowhere "data cluster past EOF" "$L2" 8000000100000000
# an L2 table shared by two snapshots is fine, an L1 table is not ours
img=$T/shared.qcow2
cp "$T/good.qcow2" "$img"
E2=$(sn_entries "$img" | tail -n1)
poke "$img" "$E2" "$(printf %016x "$L1")"
check_fail "two snapshots on one L1 table: delete refused" \
    strata-img snapshot -d two "$img"

# random damage to the snapshot table and a snapshot's L1 and L2 tables
# (fixed seed): whatever happens, no crash, and qemu-img check keeps
# finding what it found before (strata refuses rather than corrupts)
RANDOM=4242
crashes=0
for i in $(seq 40); do
    img=$T/fz.qcow2
    cp "$T/good.qcow2" "$img"
    case $((i % 3)) in
    0) base=$E; span=120 ;;
    1) base=$L1; span=16 ;;
    2) base=$L2; span=64 ;;
    esac
    for j in 1 2 3; do
        poke "$img" $((base + RANDOM % span)) "$(printf %02x $((RANDOM % 256)))"
    done
    for cmd in "info" "snapshot -l" "snapshot -a one" "snapshot -d two" \
        "snapshot -c three"; do
        rc=0
        strata-img $cmd "$img" >/dev/null 2>&1 || rc=$?
        # 99: a valgrind error under STRATA_VALGRIND=1
        if [ "$rc" -ge 126 ] ||
            { [ "$rc" = 99 ] && [ "${STRATA_VALGRIND:-0}" = 1 ]; }; then
            crashes=$((crashes + 1))
            diag "crash ($rc): strata-img $cmd on damage $i"
            cp "$img" "$T/crash-$i.qcow2"
        fi
    done
done
check_eq "random damage: no crash (or memory error) in 200 runs" \
    "$crashes" 0

done_testing
