#!/usr/bin/env bash
# VHDX against qemu-img/qemu-io: create lays out the same file (apart from
# the random GUIDs, sequence numbers and the creator string); data written
# by either tool reads back in the other, and qemu-img check is clean;
# a dirty log is replayed on a read-write open and refused read-only;
# differencing images (built by vhdx-tool.py, as qemu-img cannot) read
# through their parent, take writes, and notice a changed parent; bad
# headers and BAT entries give clear errors.
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io python3 strata-img strata-io
tmpdir
cd "$T"
tool() { python3 "$top_srcdir/tests/vhdx/vhdx-tool.py" "$@"; }

# the bytes that differ between two fresh images: only random fields
random_fields_only()
{
    cmp -l "$1" "$2" | awk '{ o = $1 - 1
        if (o >= 8 && o < 64) next                       # creator
        if (o >= 65536 && o < 65536 + 48) next           # header 1
        if (o >= 131072 && o < 131072 + 48) next         # header 2
        print "differs at " o; exit 1 }'
}

plan 39
for o in "" subformat=fixed subformat=fixed,block_state_zero=off \
         block_state_zero=off log_size=1500K,block_size=512K block_size=32M; do
    rm -f s.vhdx q.vhdx
    strata-img create -q -f vhdx ${o:+-o "$o"} s.vhdx 20M
    qemu-img create -q -f vhdx ${o:+-o "$o"} q.vhdx 20M
    # page 83 id (random) sits at the metadata region + 64 KiB + 16
    meta=$(python3 -c "import struct;d=open('q.vhdx','rb').read(262144);print(struct.unpack_from('<Q',d,196672)[0])")
    for f in s.vhdx q.vhdx; do
        dd if=/dev/zero of=$f bs=1 seek=$((meta + 65552)) count=16 \
            conv=notrunc status=none
    done
    check "create ${o:-default}: same layout as qemu-img" \
        random_fields_only s.vhdx q.vhdx
done

rm -f s.vhdx q.vhdx
strata-img create -q -f vhdx s.vhdx 40M
qemu-img create -q -f vhdx q.vhdx 40M
io=(-c "write -P 0x11 0 3M" -c "write -P 0x22 9M 100k" -c "write -P 0x33 39M 1M")
rd=(-c "read -P 0x11 0 3M" -c "read -P 0 3M 6M" -c "read -P 0x22 9M 100k"
    -c "read -P 0x33 39M 1M")
check "strata-io writes" strata-io "${io[@]}" s.vhdx
check "qemu-io reads strata's writes" qemu-io "${rd[@]}" s.vhdx
check "qemu-img check is clean" qemu-img check s.vhdx
check "qemu-io writes" qemu-io -f vhdx "${io[@]}" q.vhdx
check "strata-io reads qemu's writes" strata-io "${rd[@]}" q.vhdx
check "compare: same content" strata-img compare s.vhdx q.vhdx
check "convert to qcow2" strata-img convert -O qcow2 s.vhdx s.qcow2
check "qemu-img compare: same content" qemu-img compare s.vhdx s.qcow2
check_eq "info --output=json as qemu-img" \
    "$(strata-img info --output=json q.vhdx)" \
    "$(qemu-img info --output=json q.vhdx)"
check_eq "check says what qemu-img check says" "$(strata-img check s.vhdx 2>&1)" \
    "$(qemu-img check s.vhdx 2>&1)"

# a log left dirty: its BAT update is only in the log
cp q.vhdx d.vhdx
tool dirty d.vhdx
check_fail "read-only open of a dirty log is refused" \
    strata-io -r -c "read 0 512" d.vhdx
check_match "  ... saying why" "$(strata-io -r -c 'read 0 512' d.vhdx 2>&1 || true)" \
    "contains a log that needs to be replayed"
check "read-write open replays the log" strata-io "${rd[@]}" d.vhdx
check "qemu-img check is clean after the replay" qemu-img check d.vhdx
check_eq "the log GUID is cleared in both headers" \
    "$(python3 -c "d=open('d.vhdx','rb').read(200000);print(d[65536+48:65536+64]==bytes(16) and d[131072+48:131072+64]==bytes(16))")" True

# differencing: block 0 full, block 2 half in the child, the rest parent
qemu-img create -q -f vhdx -o block_state_zero=off parent.vhdx 32M
qemu-io -f vhdx -c "write -P 0x5a 0 32M" parent.vhdx >/dev/null
qemu-img convert -O raw parent.vhdx parent.vhdx.raw
qemu-img create -q -f vhdx -o block_state_zero=off child.vhdx 32M
tool diff "$T/child.vhdx" "$T/parent.vhdx"
check "differencing image reads through its parent" \
    strata-img compare -f vhdx -F raw child.vhdx child.vhdx.expect
check_match "info names the parent" "$(strata-img info child.vhdx)" \
    "backing file: parent.vhdx"
check "convert of the chain to qcow2" strata-img convert -O qcow2 child.vhdx c.qcow2
check "  equals the top's content" qemu-img compare c.qcow2 child.vhdx.expect
check "writes into parent-backed and partial blocks" strata-io \
    -c "write -P 0x77 8M 4k" -c "write -P 0x78 17M 4k" child.vhdx
check "  read back with the rest intact" strata-io \
    -c "read -P 0x5a 8392704 1M" -c "read -P 0x77 8M 4k" -c "read -P 0xb2 16M 1044480" \
    -c "read -P 0x78 17M 4k" -c "read -P 0x5a 17829888 4M" -c "read -P 0xa1 0 8M" \
    child.vhdx
qemu-io -f vhdx -c "write -P 1 0 512" parent.vhdx >/dev/null
check_match "a changed parent is noticed" \
    "$(strata-io -r -c 'read 0 512' child.vhdx 2>&1 || true)" "has changed since"

# convert matrix: into vhdx from raw and qcow2, out of vhdx with qemu-img
qemu-img create -q -f raw m.raw 24M
qemu-io -f raw -c "write -P 0x41 1M 2M" -c "write -P 0x42 17M 64k" m.raw >/dev/null
qemu-img convert -O qcow2 m.raw m.qcow2
check "convert raw -> vhdx (dynamic)" strata-img convert -O vhdx m.raw m1.vhdx
check "  qemu-img compare equal" qemu-img compare m.raw m1.vhdx
check "convert qcow2 -> vhdx (fixed)" \
    strata-img convert -O vhdx -o subformat=fixed m.qcow2 m2.vhdx
check "  qemu-img compare equal" qemu-img compare m.qcow2 m2.vhdx
check "  qemu-img check clean" qemu-img check m2.vhdx
check "qemu-img converts strata's vhdx back" qemu-img convert -O raw m1.vhdx m1.raw
check "  equal to the source" cmp m.raw m1.raw
check "concurrent writes into one new block" strata-io \
    -c "aio_write -P 0x61 20M 4k" -c "aio_write -P 0x62 20484k 4k" \
    -c "aio_write -P 0x63 21M 1M" -c aio_flush m1.vhdx
check "  all three landed" qemu-io -c "read -P 0x61 20M 4k" \
    -c "read -P 0x62 20484k 4k" -c "read -P 0x63 21M 1M" m1.vhdx

# hostile input
cp q.vhdx bad.vhdx
tool header "$T/bad.vhdx" version 2
check_match "unknown version" "$(strata-img info bad.vhdx 2>&1 || true)" \
    "VHDX version 2 is not supported"
truncate -s 9M q.vhdx
check_match "BAT entry past the end of the file" \
    "$(strata-img info q.vhdx 2>&1 || true)" "points after end of file"
done_testing
