#!/usr/bin/env bash
# Bad vmdk input gives a clear error and never a crash: descriptors with
# missing extents, extents outside the descriptor's directory, absurd
# sizes and geometry, truncated grain tables, streamOptimized files cut
# short, garbage in grain tables.  (Also run under --enable-sanitizers.)
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io strata-img strata-io python3
tmpdir
cd "$T"

desc() {
    cat <<D
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
createType="$1"

# Extent description
$2

ddb.adapterType = "ide"
D
}
# check_err DESC REGEX FILE: opening FILE fails cleanly with a message
check_err() {
    check_fail "$1" strata-io -r -c "read 0 512" "$3"
    _run strata-io -r -c "read 0 512" "$3"
    check_match "$1: the message says why" "$(cat "$_out")" "$2"
}

mkdir d sub
desc monolithicFlat 'RW 2048 FLAT "missing-flat.vmdk" 0' >d/missing.vmdk
check_err "a missing extent" "missing-flat.vmdk" d/missing.vmdk
head -c 1M /dev/zero >outside.img
desc monolithicFlat 'RW 2048 FLAT "../outside.img" 0' >d/escape.vmdk
check_err "an extent climbing out with .." "outside the descriptor" \
    d/escape.vmdk
desc monolithicFlat 'RW 2048 FLAT "sub/../../outside.img" 0' >d/escape2.vmdk
check_err "an extent climbing out via sub/../.." "outside the descriptor" \
    d/escape2.vmdk
head -c 1M /dev/zero >d/in.img
mkdir d/sub
desc monolithicFlat 'RW 2048 FLAT "sub/../in.img" 0' >d/inside.vmdk
check "a .. that stays inside is allowed" strata-io -r -c "read 0 512" \
    d/inside.vmdk
desc monolithicFlat "RW 2048 FLAT \"$T/outside.img\" 0" >d/abs.vmdk
check "an absolute extent path is allowed (as VMware)" strata-io -r \
    -c "read -P 0 0 1M" d/abs.vmdk
desc monolithicFlat 'RW 99999999999999999999 FLAT "in.img" 0' >d/huge.vmdk
check_err "an absurd extent size" "Invalid extent line" d/huge.vmdk
desc monolithicFlat 'RW 2048 FLAT "in.img" -5' >d/neg.vmdk
check_err "a negative flat offset" "Invalid extent line" d/neg.vmdk
desc monolithicFlat 'RW 2048 FLAT "in.img"' >d/nooff.vmdk
check_err "a flat extent without offset" "Invalid extent line" d/nooff.vmdk
desc monolithicFlat 'RW 2048 WEIRD "in.img"' >d/type.vmdk
check_err "an unknown extent type" "Unsupported extent type" d/type.vmdk
desc bogusType 'RW 2048 FLAT "in.img" 0' >d/ct.vmdk
check_err "an unknown create type" "Unsupported image type" d/ct.vmdk
desc monolithicFlat '' >d/none.vmdk
check_err "no extents" "No extents" d/none.vmdk
desc twoGbMaxExtentSparse 'RW 2048 SPARSE "in.img"' >d/notsparse.vmdk
check_err "a sparse extent that is not one" "not in VMDK format" \
    d/notsparse.vmdk
desc monolithicFlat 'RW 4096 FLAT "in.img" 0' >d/short.vmdk
check "a flat extent shorter than declared reads zeroes past its end" \
    strata-io -r -c "read -P 0 1M 1M" d/short.vmdk
desc vmfs 'RW 2048 VMFS "in.img"' >d/vmfs.vmdk
check "a vmfs descriptor reads" strata-io -r -c "read -P 0 0 1M" d/vmfs.vmdk
desc vmfsThin 'RW 2048 VMFS "in.img"' >d/thin.vmdk
check "a vmfsThin descriptor reads" strata-io -r -c "read -P 0 0 1M" \
    d/thin.vmdk

# sparse headers with bad fields (offsets into the KDMV header)
qemu-img create -q -f vmdk good.vmdk 4M
qemu-io -f vmdk -c "write -P 0x5a 0 1M" good.vmdk >/dev/null
patch() { # patch FILE OFFSET FORMAT VALUE
    python3 -c "
import struct, sys
f = open(sys.argv[1], 'r+b'); f.seek(int(sys.argv[2]))
f.write(struct.pack('<' + sys.argv[3], int(sys.argv[4], 0)))" "$@"
}
cp good.vmdk v.vmdk; patch v.vmdk 4 I 9
check_err "an unknown version" "Unsupported VMDK version" v.vmdk
cp good.vmdk g.vmdk; patch g.vmdk 20 Q 0x40000000
check_err "an absurd grain size" "granularity|L1 size" g.vmdk
cp good.vmdk g0.vmdk; patch g0.vmdk 20 Q 0
check_err "a zero grain size" "L1 entry size" g0.vmdk
cp good.vmdk n.vmdk; patch n.vmdk 44 I 100000
check_err "oversized grain tables" "L2 table size" n.vmdk
cp good.vmdk c.vmdk; patch c.vmdk 12 Q 0x7fffffffffffffff
check_err "an absurd capacity" "too large|too big" c.vmdk
cp good.vmdk o.vmdk; patch o.vmdk 64 Q 0x100000
check_err "grains beyond the end of the file" "truncated" o.vmdk
cp good.vmdk gd.vmdk; patch gd.vmdk 56 Q 0xffffffffffff
check_fail "a grain directory beyond the file" strata-io -r \
    -c "read 0 512" gd.vmdk
head -c 20000 good.vmdk >t.vmdk
check_err "a truncated file" "truncated|beyond the end" t.vmdk
# grain table entries pointing past the end of the file
cp good.vmdk e.vmdk
gt=$(python3 -c "
import struct; h = open('good.vmdk','rb').read(512)
gd = struct.unpack('<Q', h[56:64])[0]
f = open('good.vmdk','rb'); f.seek(gd * 512)
print(struct.unpack('<I', f.read(4))[0] * 512)")
patch e.vmdk "$gt" I 0x7fffffff
check_fail "a grain past the end: reading it fails" strata-io -r \
    -c "read 0 64k" e.vmdk
check "a grain past the end: the rest still reads" strata-io -r \
    -c "read -P 0x5a 64k 64k" e.vmdk
_run strata-img check e.vmdk
check_eq "check reports the corruption" "$_rc" 2

# streamOptimized cut short and with garbage
qemu-img create -q -f raw s.raw 4M
qemu-io -f raw -c "write -P 0x42 0 4M" s.raw >/dev/null
qemu-img convert -O vmdk -o subformat=streamOptimized s.raw s.vmdk
size=$(stat -c %s s.vmdk)
head -c $((size - 70000)) s.vmdk >cut.vmdk
check_fail "a streamOptimized file cut short: reading fails" strata-img \
    convert -O raw cut.vmdk cut.raw
cp s.vmdk z.vmdk
first=$(python3 -c "
import struct; h = open('s.vmdk','rb').read(512)
print(struct.unpack('<Q', h[64:72])[0] * 512)")
printf 'garbage in the deflate stream' |
    dd of=z.vmdk bs=1 seek=$((first + 14)) conv=notrunc 2>/dev/null
check_fail "garbage in a compressed grain: reading fails" strata-img \
    convert -O raw z.vmdk z.raw
# a footer (GD at end) that does not check out
cp s.vmdk f.vmdk; patch f.vmdk 56 Q 0xffffffffffffffff
check_err "a streamOptimized footer that is not there" "Invalid footer" \
    f.vmdk
: >empty.vmdk
check_fail "an empty file named -f vmdk" strata-img info -f vmdk empty.vmdk
done_testing
