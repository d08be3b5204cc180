#!/usr/bin/env bash
# vmdk layouts qemu-img does not write, built here byte by byte and read
# by both strata and qemu-io: streamOptimized with a footer (grain
# directory at the end, VMware's layout), seSparse, ESX sparse (COWD)
# behind a vmfsSparse descriptor, and a descriptor mixing flat and sparse
# extents with an RDONLY one.
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io strata-img strata-io python3
tmpdir
cd "$T"

# streamOptimized with a footer: the header's GD offset says "at end"
qemu-img create -q -f raw s.raw 2M
qemu-io -f raw -c "write -P 0x61 0 1M" -c "write -P 0x62 1536k 64k" s.raw \
    >/dev/null
qemu-img convert -O vmdk -o subformat=streamOptimized s.raw foot.vmdk
python3 - <<'PY'
import struct
f = open("foot.vmdk", "r+b")
hdr = bytearray(f.read(512))
f.seek(56); f.write(struct.pack("<Q", 0xffffffffffffffff))
f.seek(0, 2)
end = f.tell()
assert end % 512 == 0
f.write(struct.pack("<QII", 0, 0, 3) + bytes(496))   # footer marker
f.write(bytes(hdr))                                   # the real header
f.write(struct.pack("<QII", 0, 0, 0) + bytes(496))   # end of stream
PY
check "footer layout: qemu-io reads it" qemu-io -r -f vmdk \
    -c "read -P 0x61 0 1M" -c "read -P 0x62 1536k 64k" foot.vmdk
check "footer layout: strata-io reads it" strata-io -r -f vmdk \
    -c "read -P 0x61 0 1M" -c "read -P 0 1M 512k" \
    -c "read -P 0x62 1536k 64k" foot.vmdk
check_fail "footer layout: refused read-write" strata-io -f vmdk \
    -c "write 0 64k" foot.vmdk

desc() {
    printf '# Disk DescriptorFile\nversion=1\nCID=fffffffe\n'
    printf 'parentCID=ffffffff\ncreateType="%s"\n\n%s\n\n' "$1" "$2"
    printf 'ddb.adapterType = "lsilogic"\n'
}

# seSparse: const header, volatile header, GD, one GT, 4 KiB grains
python3 - <<'PY'
import struct
S = 512
cap = 16384                      # 8 MiB
gd, gt, grains = 2, 3, 67        # sectors
c = struct.pack("<QQQQQQ", 0xcafebabe, 0x200000001, cap, 8, 64, 0)
c += bytes(32)                   # reserved
c += struct.pack("<16Q", 1, 1, 0, 0, 0, 0, gd, 1, gt, 64, 0, 0, 0, 0,
                 grains, 3 * 8)
c += bytes(S - len(c))
v = struct.pack("<QQQQ", 0xcafecafe, 1, 1, 0) + bytes(S - 32)
gdt = struct.pack("<Q", 0x1000000000000000) + bytes(S - 8)
ent = [0] * 4096
ent[0] = 0x3000000000000000 | (0 << 48)       # grain 0 -> cluster 0
ent[5] = 0x2000000000000000                   # grain 5: zeroed
ent[10] = 0x3000000000000000 | (1 << 48)      # grain 10 -> cluster 1
ent[11] = 0x3000000000000000 | (2 << 48)      # grain 11 -> cluster 2
table = struct.pack("<4096Q", *ent)
data = b"\xaa" * 4096 + b"\xbb" * 4096 + b"\xcc" * 4096
with open("se-sesparse.vmdk", "wb") as f:
    f.write(c + v + gdt + table + bytes((grains - gt - 64) * S) + data)
PY
desc seSparse 'RW 16384 SESPARSE "se-sesparse.vmdk"' >se.vmdk
ser=(-c "read -P 0xaa 0 4k" -c "read -P 0 4k 36k" -c "read -P 0xbb 40k 4k"
     -c "read -P 0xcc 44k 4k" -c "read -P 0 48k 8144k")
check "seSparse: qemu-io reads it" qemu-io -r -f vmdk "${ser[@]}" se.vmdk
check "seSparse: strata-io reads it" strata-io -r -f vmdk "${ser[@]}" se.vmdk
# (qemu-img 7.2 maps this image as 16 MiB, repeating it: not compared)
check_match "seSparse: map shows the zeroed grain" \
    "$(strata-img map --output=json se.vmdk)" \
    '"start": 20480, "length": 4096, "depth": 0, "present": true, "zero": true'
check_match "seSparse: map shows the data grains at their offsets" \
    "$(strata-img map --output=json se.vmdk)" \
    '"start": 40960, "length": 8192, .*"data": true, "offset": 38400'

check_fail "seSparse: refused read-write" strata-io -c "write 0 4k" se.vmdk

# ESX sparse (COWD) behind a vmfsSparse descriptor: 4 KiB grains
python3 - <<'PY'
import struct
S = 512
cap = 8192
h = b"COWD" + struct.pack("<IIIIIII", 1, 3, cap, 8, 1, 1, 2) + bytes(S - 32)
gd = struct.pack("<I", 2) + bytes(S - 4)
ent = [0] * 4096
ent[1] = 34                     # grain 1 (4k..8k) at sector 34
ent[3] = 42                     # grain 3 at sector 42
gt = struct.pack("<4096I", *ent)
with open("cowd-delta.vmdk", "wb") as f:
    f.write(h + gd + gt + b"\x71" * 4096 + b"\x72" * 4096)
PY
desc vmfsSparse 'RW 8192 VMFSSPARSE "cowd-delta.vmdk"' >cowd.vmdk
cr=(-c "read -P 0 0 4k" -c "read -P 0x71 4k 4k" -c "read -P 0 8k 4k"
    -c "read -P 0x72 12k 4k" -c "read -P 0 16k 4080k")
check "ESX sparse: strata-io reads it" strata-io -r -f vmdk "${cr[@]}" \
    cowd.vmdk

# flat + sparse + an RDONLY flat extent in one descriptor
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse sp.vmdk 1M
qemu-io -f vmdk -c "write -P 0x31 0 1M" sp.vmdk >/dev/null
head -c 1M /dev/zero | tr '\0' '\101' >flat1.img
head -c 1M /dev/zero | tr '\0' '\102' >flat2.img
desc custom "$(printf '%s\n' 'RW 2048 FLAT "flat1.img" 0' \
    'RW 2048 SPARSE "sp-s001.vmdk"' 'RDONLY 1024 FLAT "flat2.img" 1024')" \
    >mix.vmdk
check "mixed extents read in order" strata-io -r -f vmdk \
    -c "read -P 0x41 0 1M" -c "read -P 0x31 1M 1M" \
    -c "read -P 0x42 2M 512k" mix.vmdk
check_match "info lists the three extents" \
    "$(strata-img info mix.vmdk)" "format: FLAT"
check_eq "mixed extents: virtual size" \
    "$(strata-img info --output=json mix.vmdk |
       sed -n 's/^    "virtual-size": \([0-9]*\),/\1/p')" 2621440
done_testing
