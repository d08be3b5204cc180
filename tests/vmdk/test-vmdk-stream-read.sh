#!/usr/bin/env bash
# Reading streamOptimized vmdk files in batches (adjacent compressed grains
# read together, inflated on the worker pool): conversions with many
# requests in flight equal qemu-img's, partial and concurrent reads return
# the right bytes, grains stored out of order or overlapping read as qemu
# reads them, and damaged or cut files fail cleanly.
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io strata-img strata-io python3
tmpdir
cd "$T"

# 80 MiB virtual (three grain tables): patterns, text, random data, holes,
# pieces that straddle grains and the grain tables' 32 MiB boundaries
qemu-img create -q -f raw src.raw 80M
qemu-io -f raw -c "write -P 0x11 0 1M" -c "write -P 0x22 1100k 200k" \
    -c "write -P 0x33 5000k 7k" -c "write -P 0x44 31M 2M" \
    -c "write -P 0x55 63M 3M" -c "write -P 0x66 80380k 500k" \
    src.raw >/dev/null
head -c 3M /dev/urandom | dd of=src.raw bs=1M seek=8 conv=notrunc 2>/dev/null
yes "the quick brown fox jumps over the lazy dog" | head -c 2M |
    dd of=src.raw bs=1M seek=12 conv=notrunc 2>/dev/null
head -c 1M /dev/urandom | dd of=src.raw bs=1k seek=32700 conv=notrunc \
    2>/dev/null
qemu-img convert -O vmdk -o subformat=streamOptimized src.raw s.vmdk

qemu-img convert -O raw s.vmdk q.raw
for m in 1 8 16; do
    rm -f o.raw
    check "stream -> raw, -m $m" strata-img convert -m $m -O raw s.vmdk o.raw
    check "stream -> raw, -m $m: the bytes qemu-img convert gives" \
        cmp o.raw q.raw
done
check "stream -> qcow2 -W" strata-img convert -W -O qcow2 s.vmdk o.qcow2
check "stream -> qcow2 -W: equal to the source" qemu-img compare src.raw \
    o.qcow2

# reads that start and end inside grains, several in flight
for bs in 3584 100000; do
    rm -f d.raw
    check "dd bs=$bs" strata-img dd -f vmdk -O raw bs=$bs if=s.vmdk of=d.raw
    check "dd bs=$bs: equal to the source" cmp d.raw src.raw
done
check "concurrent reads across grains and grain tables" strata-io -r \
    -c "aio_read -P 0x44 31M 900k" -c "aio_read -P 0x11 512 1048064" \
    -c "aio_read -P 0x22 1100k 200k" -c "aio_read -P 0x55 64600k 1000k" \
    -c "aio_read -P 0x33 5000k 7k" -c "aio_read -P 0 1300k 3700k" \
    -c "aio_read -P 0x66 80380k 500k" -c "aio_flush" s.vmdk

# grains appended in reverse order: each is a run of its own
strata-img create -q -f vmdk -o subformat=streamOptimized r.vmdk 1M
qemu-img create -q -f raw r.raw 1M
args=() qargs=()
for i in 15 14 13 12 11 10 9 8 7 6 5 4 3 2 1 0; do
    args+=(-c "write -P $((i + 1)) $((i * 64))k 64k")
done
check "grains written in reverse order" strata-io "${args[@]}" r.vmdk
qemu-io -f raw "${args[@]}" r.raw >/dev/null
check "reverse order: reads back whole" strata-img compare r.vmdk r.raw
check "reverse order: qemu-img agrees" qemu-img compare r.vmdk r.raw

# patch FILE OFFSET FMT VALUE: overwrite a little-endian field
patch() {
    python3 -c "
import struct, sys
f = open(sys.argv[1], 'r+b'); f.seek(int(sys.argv[2]))
f.write(struct.pack('<' + sys.argv[3], int(sys.argv[4], 0)))" "$@"
}
# gte N: byte offset of grain table entry N (first table) of s.vmdk
gte() {
    python3 -c "
import struct; h = open('s.vmdk', 'rb').read(512)
gd = struct.unpack('<Q', h[56:64])[0]
f = open('s.vmdk', 'rb'); f.seek(gd * 512)
print(struct.unpack('<I', f.read(4))[0] * 512 + 4 * $1)"
}
# grain N's sector in s.vmdk
grain() {
    python3 -c "
import struct; f = open('s.vmdk', 'rb'); f.seek($(gte "$1"))
print(struct.unpack('<I', f.read(4))[0])"
}

# grain 129 (random data, 8 MiB + 64k) pointed into the middle of grain
# 128: grain 128 still reads (with a read of its own), 129 does not
cp s.vmdk o.vmdk
patch o.vmdk "$(gte 129)" I $(($(grain 128) + 1))
check "a grain overlapped by the next one reads" strata-io -r \
    -c "read 8M 64k" o.vmdk
dump() { "$@" | grep '^[0-9a-f]*:'; }
check_eq "...the bytes qemu-io reads" \
    "$(dump strata-io -r -c "read -v 8M 64k" o.vmdk | md5sum)" \
    "$(dump qemu-io -r -f raw -c "read -v 8M 64k" src.raw | md5sum)"
check_eq "...also after a read of the whole image" \
    "$(dump strata-io -r -c "read 0 80M" -c "read -v 8M 64k" o.vmdk |
       md5sum)" \
    "$(dump qemu-io -r -f vmdk -c "read -v 8M 64k" o.vmdk | md5sum)"
check_fail "the grain starting inside another fails cleanly" strata-io -r \
    -c "read 8256k 64k" o.vmdk
check_fail "...also as part of a batch" strata-img convert -O raw o.vmdk \
    ob.raw

# damaged markers
sec=$(grain 130)
cp s.vmdk m0.vmdk
patch m0.vmdk $((sec * 512 + 8)) I 0
check_fail "a grain marker of size 0" strata-img convert -O raw m0.vmdk m.raw
cp s.vmdk mb.vmdk
patch mb.vmdk $((sec * 512 + 8)) I 0x7fffffff
check_fail "a grain marker of absurd size" strata-img convert -O raw \
    mb.vmdk m.raw
cp s.vmdk me.vmdk
patch me.vmdk "$(gte 130)" I $(($(stat -c %s s.vmdk) / 512 - 1))
check_fail "a grain in the last sector of the file" strata-img convert \
    -O raw me.vmdk m.raw
check "...the grains before it still read" strata-io -r \
    -c "read -P 0x11 0 1M" me.vmdk
# a wrong Adler-32 after an intact deflate stream: random data (grain
# 131) and text (grain 193)
for g in 131 193; do
    cp s.vmdk ck.vmdk
    python3 -c "
import struct, sys
f = open('ck.vmdk', 'r+b'); at = $(grain $g) * 512
f.seek(at + 8); size = struct.unpack('<I', f.read(4))[0]
f.seek(at + 12 + size - 1); b = f.read(1)[0]
f.seek(at + 12 + size - 1); f.write(bytes([b ^ 1]))"
    check_fail "grain $g with a bad checksum fails" strata-io -r \
        -c "read $((g * 64))k 64k" ck.vmdk
    check_fail "...also qemu-io" qemu-io -r -f vmdk -c "read $((g * 64))k 64k" \
        ck.vmdk
    check "...its neighbours read" strata-io -r \
        -c "read $(((g - 1) * 64))k 64k" -c "read $(((g + 1) * 64))k 64k" \
        ck.vmdk
done

# 512-byte grains, 20 grain tables of 256 KiB each, every grain stored:
# the batches still read right, and no grain table is read twice (block
# status does not walk ahead far enough to evict the ones reads need)
python3 - <<'PY'
import struct, zlib
gtes, ngt = 512, 20
cap = gtes * ngt
desc = ('# Disk DescriptorFile\nversion=1\nCID=12345678\n'
        'parentCID=ffffffff\ncreateType="streamOptimized"\n\n'
        'RW %d SPARSE "g.vmdk"\n\nddb.adapterType = "ide"\n' % cap).encode()
gd_sec, gt_sec = 21, 22
data_sec = gt_sec + ngt * 4
raw, grains, gt = bytearray(), bytearray(), []
for i in range(cap):
    g = (b'grain %06d ' % i) * 42
    g = (g + bytes(i % 251 for _ in range(512)))[:512]
    raw += g
    z = zlib.compress(g)
    rec = struct.pack('<QI', i, len(z)) + z
    rec += bytes(-len(rec) % 512)
    gt.append(data_sec + len(grains) // 512)
    grains += rec
hdr = struct.pack('<4sIIQQQQIQQQ', b'KDMV', 3, 1 | 1 << 16 | 1 << 17, cap, 1,
                  1, 20, gtes, 0, gd_sec, data_sec)
hdr += b'\0\n \r\n' + struct.pack('<H', 1)
f = bytearray(hdr + bytes(512 - len(hdr)))
f += desc + bytes(20 * 512 - len(desc))
f += struct.pack('<%dI' % ngt, *[gt_sec + 4 * t for t in range(ngt)])
f += bytes(512 - 4 * ngt)
f += struct.pack('<%dI' % cap, *gt)
f += grains + bytes(512)
open('g.vmdk', 'wb').write(f)
open('g.raw', 'wb').write(raw)
PY
check "512-byte grains: converts" strata-img convert -O raw g.vmdk go.raw
check "512-byte grains: the right bytes" cmp go.raw g.raw
check "512-byte grains: qemu-img reads the same" qemu-img compare g.vmdk \
    g.raw
if strace -o /dev/null true 2>/dev/null; then
    rm -f go.raw
    strace -f -e trace=preadv,preadv2,pread64 -o st.txt strata-img convert \
        --image-opts -O raw \
        driver=vmdk,file.driver=file,file.filename=g.vmdk,file.aio=threads \
        go.raw
    check_eq "each grain table is read once" \
        "$(grep -c 'iov_len=2048}.*= 2048$' st.txt)" 20
else
    skip "each grain table is read once" "strace cannot run here"
fi

# cut inside the grains (the tables are at the front)
size=$(stat -c %s s.vmdk)
for cut in $(((size / 2) / 512 * 512 + 100)) $((size / 3)); do
    head -c $cut s.vmdk >cut.vmdk
    check_fail "cut at byte $cut: converting fails" strata-img convert \
        -O raw cut.vmdk cut.raw
    check_fail "cut at byte $cut: concurrent reads fail" strata-io -r \
        -c "aio_read 0 40M" -c "aio_read 40M 40M" -c "aio_flush" cut.vmdk
done
done_testing
