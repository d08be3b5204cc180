#!/usr/bin/env bash
# check on qcow2 images whose snapshot table names an unusable L1 table
# (misaligned, or larger than QEMU allows): strata-img check opens them
# and reports the entry as qemu-img check does (human, JSON, -r leaks,
# -r all, with byte-identical repairs: like QEMU 7.2 the entry stays and
# its references are not counted); opened for anything else, such an
# image is refused with a clear error.
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io python3
tmpdir
. "$top_srcdir/tests/check/check-lib.sh"

cd "$T"
qemu-img create -q -f qcow2 base.qcow2 16M
qemu-io -c "write -P 1 0 1M" -c "write -P 2 4M 64k" base.qcow2 >/dev/null
qemu-img snapshot -c s1 base.qcow2
qemu-io -c "write -P 3 0 64k" base.qcow2 >/dev/null
qemu-img snapshot -c s2 base.qcow2

# set_sn_field IMG INDEX FIELD VALUE: FIELD l1_offset (add VALUE) or
# l1_size (set VALUE) of snapshot entry INDEX
set_sn_field()
{
    python3 - "$@" <<'PY'
import struct, sys
img, idx, field, val = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
with open(img, 'r+b') as f:
    h = f.read(72)
    nb, off = struct.unpack('>IQ', h[60:72])
    assert idx < nb
    for _ in range(idx):
        f.seek(off)
        e = f.read(40)
        id_len, name_len = struct.unpack('>HH', e[12:16])
        extra, = struct.unpack('>I', e[36:40])
        off += 40 + extra + id_len + name_len
        off = (off + 7) & ~7
    f.seek(off)
    l1off, l1size = struct.unpack('>QI', f.read(12))
    f.seek(off)
    if field == 'l1_offset':
        f.write(struct.pack('>Q', l1off + val))
    else:
        f.write(struct.pack('>QI', l1off, val))
PY
}

cp base.qcow2 misaligned.qcow2
cp base.qcow2 large.qcow2
cp base.qcow2 both.qcow2
set_sn_field misaligned.qcow2 0 l1_offset 8 &&
    set_sn_field large.qcow2 1 l1_size $((0x2000001)) &&
    set_sn_field both.qcow2 0 l1_offset 512 &&
    set_sn_field both.qcow2 1 l1_size $((0x4000000)) ||
    bail_out "could not damage the images"
cmp -s base.qcow2 large.qcow2 && bail_out "large.qcow2 was not damaged"

plan $((3 * 6 + 3))

for img in misaligned.qcow2 large.qcow2 both.qcow2; do
    same_check "$img: check" "$img"
    same_check "$img: check --output=json" "$img" --output=json
    same_check "$img: check -r leaks" "$img" -r leaks
    # -r all: both tools print the second check's findings to stderr
    # while the summary goes to stdout; compare them separately
    same_check "$img: check -r all" "$img" -r all
    check "$img: both repairs leave the same file" cmp "$CMP_S" "$CMP_Q"
    check "$img: the active image still reads its data (qemu-io)" \
        qemu-io -c "read -P 3 0 64k" -c "read -P 1 64k 960k" \
        -c "read -P 2 4M 64k" "$CMP_S"
done
err=$(strata-img info misaligned.qcow2 2>&1)
check_fail "info refuses the image" strata-img info misaligned.qcow2
check "and says which snapshot is broken" \
    sh -c "printf '%s' \"\$1\" | grep -q 'snapshot 0 (id 1)'" sh "$err"
check_fail "snapshot -a of the broken one is refused" \
    strata-img snapshot -a s1 misaligned.qcow2
done_testing
