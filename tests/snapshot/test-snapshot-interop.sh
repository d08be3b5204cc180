#!/usr/bin/env bash
# Interoperability with qemu-img 7.2: the same snapshot commands run by
# strata-img and by qemu-img on copies of one image leave identical files
# (once the snapshots' dates, which differ by nature, are cleared); and
# snapshots either tool made are listed, applied and deleted by the other
# with the data read back and qemu-img check clean.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/snapshot/snapshot-helpers.sh"
requires qemu-img qemu-io
tmpdir

# steps TOOL IMG: a sequence of snapshot commands with writes in between.
steps()
{
    local tool=$1 img=$2
    $tool snapshot -c one "$img"
    qemu-io -f qcow2 -c 'write -P 0x21 0 64k' -c 'write -c -P 0x23 1M 64k' \
        "$img" >/dev/null
    $tool snapshot -c two "$img"
    qemu-io -f qcow2 -c 'write -P 0x24 32k 64k' "$img" >/dev/null
    $tool snapshot -c three "$img"
    $tool snapshot -a one "$img"
    $tool snapshot -d two "$img"
    qemu-io -f qcow2 -c 'write -P 0x25 1M 4k' "$img" >/dev/null
    $tool snapshot -a 3 "$img"
    $tool snapshot -d one "$img"
}

for opts in compat=1.1 compat=0.10 cluster_size=4096,refcount_bits=8; do
    qemu-img create -q -f qcow2 -o "$opts" "$T/base.qcow2" 2M
    qemu-io -f qcow2 -c 'write -P 0x11 0 512k' -c 'write -c -P 0x12 1M 64k' \
        "$T/base.qcow2" >/dev/null
    cp "$T/base.qcow2" "$T/s.qcow2"
    cp "$T/base.qcow2" "$T/q.qcow2"
    steps strata-img "$T/s.qcow2"
    steps qemu-img "$T/q.qcow2"
    qclean "$opts: strata's sequence" "$T/s.qcow2"
    check "$opts: same content as qemu-img's" \
        qemu-img compare -q "$T/s.qcow2" "$T/q.qcow2"
    check_eq "$opts: same snapshot list" \
        "$(qemu-img snapshot -l "$T/s.qcow2" | cut -c1-36)" \
        "$(qemu-img snapshot -l "$T/q.qcow2" | cut -c1-36)"
    zero_dates "$T/s.qcow2"
    zero_dates "$T/q.qcow2"
    check "$opts: byte-identical files apart from the dates" \
        cmp "$T/s.qcow2" "$T/q.qcow2"
done

# qemu-img's snapshots, applied and deleted by strata-img
img=$T/qmade.qcow2
qemu-img create -q -f qcow2 "$img" 1M
qemu-io -f qcow2 -c 'write -P 0x31 0 1M' "$img" >/dev/null
qemu-img snapshot -c qa "$img"
qemu-io -f qcow2 -c 'write -P 0x32 0 512k' "$img" >/dev/null
qemu-img snapshot -c qb "$img"
qemu-io -f qcow2 -c 'write -P 0x33 0 64k' "$img" >/dev/null
check_eq "strata lists qemu-img's snapshots" \
    "$(strata-img snapshot -l "$img")" "$(qemu-img snapshot -l "$img")"
check "strata applies qemu-img's snapshot" strata-img snapshot -a qa "$img"
check "... and its data reads back" rpat "$img" 0 1M 0x31
qclean "after strata applied qemu-img's snapshot" "$img"
check "strata deletes qemu-img's snapshot" strata-img snapshot -d qa "$img"
check "strata applies the other one" strata-img snapshot -a qb "$img"
check "... with its data" rpat "$img" 0 512k 0x32
qclean "after strata deleted qemu-img's snapshot" "$img"

# strata-img's snapshots, applied and deleted by qemu-img
img=$T/smade.qcow2
qemu-img create -q -f qcow2 "$img" 1M
strata-io -f qcow2 -c 'write -P 0x41 0 1M' "$img" >/dev/null
strata-img snapshot -c sa "$img"
strata-io -f qcow2 -c 'write -P 0x42 0 512k' "$img" >/dev/null
strata-img snapshot -c sb "$img"
strata-io -f qcow2 -c 'write -P 0x43 0 64k' "$img" >/dev/null
check_eq "qemu-img lists strata's snapshots" \
    "$(qemu-img snapshot -l "$img")" "$(strata-img snapshot -l "$img")"
check "qemu-img applies strata's snapshot" qemu-img snapshot -a sa "$img"
check "... and its data reads back" rpat "$img" 0 1M 0x41
check "qemu-img deletes strata's snapshot" qemu-img snapshot -d sa "$img"
check "qemu-img applies the other one" qemu-img snapshot -a sb "$img"
check "... with its data" rpat "$img" 0 512k 0x42
qclean "after qemu-img worked on strata's snapshots" "$img"

# a snapshot taken before a resize brings its size back (both directions)
img=$T/rs.qcow2
qemu-img create -q -f qcow2 "$img" 1M
qemu-io -f qcow2 -c 'write -P 0x51 0 1M' "$img" >/dev/null
strata-img snapshot -c small "$img"
qemu-img resize -q "$img" 64M
qemu-io -f qcow2 -c 'write -P 0x52 60M 64k' "$img" >/dev/null
strata-img snapshot -c big "$img"
check "apply a smaller snapshot" strata-img snapshot -a small "$img"
check_eq "the virtual size is the snapshot's" \
    "$(qemu-img info "$img" | grep '^virtual size')" \
    "virtual size: 1 MiB (1048576 bytes)"
check "its data" rpat "$img" 0 1M 0x51
qclean "after shrinking by apply" "$img"
check "apply a larger snapshot" strata-img snapshot -a big "$img"
check_eq "grown back" "$(qemu-img info "$img" | grep '^virtual size')" \
    "virtual size: 64 MiB (67108864 bytes)"
check "the data past the old end" rpat "$img" 60M 64k 0x52
qclean "after growing by apply" "$img"

# extra data QEMU does not know (here 8 bytes after its 24) survives a
# rewrite of the table, as in qemu-img
qemu-img create -q -f qcow2 "$T/x.qcow2" 1M
qemu-img snapshot -c xtra "$T/x.qcow2"
e=$(sn_entries "$T/x.qcow2")
dd if="$T/x.qcow2" of="$T/idname" bs=1 skip=$((e + 64)) count=5 status=none
dd if="$T/idname" of="$T/x.qcow2" bs=1 seek=$((e + 72)) conv=notrunc \
    status=none
poke "$T/x.qcow2" $((e + 64)) 0123456789abcdef
poke "$T/x.qcow2" $((e + 36)) 00000020
cp "$T/x.qcow2" "$T/xs.qcow2"
cp "$T/x.qcow2" "$T/xq.qcow2"
check "unknown extra data: strata adds a snapshot" \
    strata-img snapshot -c next "$T/xs.qcow2"
qemu-img snapshot -c next "$T/xq.qcow2"
e=$(sn_entries "$T/xs.qcow2" | head -n1)
check_eq "unknown extra data kept" "$(be32 "$T/xs.qcow2" $((e + 36))):\
$(peek "$T/xs.qcow2" $((e + 64)) 8)" "32:0123456789abcdef"
zero_dates "$T/xs.qcow2"
zero_dates "$T/xq.qcow2"
check "unknown extra data: the same file as qemu-img's" \
    cmp "$T/xs.qcow2" "$T/xq.qcow2"
qclean "unknown extra data" "$T/xs.qcow2"

done_testing
