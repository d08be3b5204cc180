#!/usr/bin/env bash
# Broken and hostile vdi and vhd images give a clear error and no crash
# (run it under an --enable-sanitizers build too): truncated block maps,
# map entries past the data area or past the end of the file, absurd
# sizes, a wrong footer checksum, bad magic, parent loops.  check finds
# what qemu-img check finds on vdi, check -r repairs it, and qemu-img
# check agrees afterwards.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/vdi-vhd/vv-helpers.sh"
requires qemu-img python3 strata-img strata-io
tmpdir
cd "$T"

# ---- vdi ----
strata-img create -q -f vdi good.vdi 8M
strata-io -q -c "write -P 0xa1 0 1M" -c "write -P 0xa2 2M 1M" \
    -c "write -P 0xa3 4M 1M" -c "write -P 0xa4 6M 1M" good.vdi
# good.vdi: map at 0x200 = [0, ff, 1, ff, 2, ff, 3, ff], data at 0x400

bad() { cp good.vdi "$1"; poke "$1" "$2" "$3"; }

bad sig.vdi 0x40 00000000
check_fail "vdi: bad signature" strata-img info -f vdi sig.vdi
check_match "... says so" "$(strata-img info -f vdi sig.vdi 2>&1)" \
    "bad signature"
bad ver.vdi 0x44 02000100
check_fail "vdi: unknown version" strata-img info ver.vdi
bad bsz.vdi 0x178 00000000
check_fail "vdi: block size 0" strata-img info bsz.vdi
bad huge.vdi 0x170 00000000000000ff
check_fail "vdi: absurd disk size" strata-img info huge.vdi
check_match "... says so" "$(strata-img info huge.vdi 2>&1)" \
    "Unsupported VDI image size"
bad many.vdi 0x180 00000001
poke many.vdi 0x170 0000000000100000 # 16 TiB, 16 M blocks
check_fail "vdi: a block map longer than the file" strata-img info many.vdi
check_match "... says it is cut short" "$(strata-img info many.vdi 2>&1)" \
    "cut short"
head -c 512 good.vdi > trunc.vdi
check_fail "vdi: file cut inside the block map" strata-io -r -c "read 0 512" \
    trunc.vdi
check_fail "vdi: a 100-byte file" strata-img info -f vdi <(head -c 100 good.vdi)

# an entry past the data area, one past the end of the file, a duplicate
bad map.vdi 0x204 e8030000     # block 1 -> data block 1000
poke map.vdi 0x20c 02000000    # block 3 -> data block 2 (also block 4's)
python3 -c "import os; os.truncate('map.vdi', 0x400 + 3 * 1048576 + 4096)"
check_exit "vdi: check finds the corruptions" 2 strata-img check map.vdi
check_exit "... as qemu-img check does" 2 qemu-img check map.vdi
check_match "... and names them" "$(strata-img check map.vdi 2>&1)" \
    "too large|past the end"
check_fail "vdi: reading a block past the data area: an error" \
    strata-io -r -c "read 1M 4k" map.vdi
check "vdi: other blocks still read" strata-io -r -c "read -P 0xa1 0 1M" \
    map.vdi
check "vdi: check -r all repairs" strata-img check -r all map.vdi
check "... qemu-img check agrees" qemu-img check map.vdi
check "... strata-img check agrees" strata-img check map.vdi
check "... the twice-used block kept its data for both users" strata-io -r \
    -c "read -P 0xa3 3M 1M" -c "read -P 0xa3 4M 1M" -c "read -P 0xa1 0 1M" \
    map.vdi
check "... and both can now be written apart" strata-io -q \
    -c "write -P 0xb3 3M 1M" map.vdi
check "... without touching each other" strata-io -r \
    -c "read -P 0xb3 3M 1M" -c "read -P 0xa3 4M 1M" map.vdi

# a wrong allocated-block count, then a hole in the data area
bad cnt.vdi 0x184 09000000
check_exit "vdi: a wrong block count is a corruption" 2 strata-img check \
    cnt.vdi
check "... repaired by -r all" strata-img check -r all cnt.vdi
check "... qemu-img check agrees" qemu-img check cnt.vdi
bad hole.vdi 0x200 ffffffff    # block 0 dropped: data block 0 unused
poke hole.vdi 0x184 03000000
check_exit "vdi: an unused data block is a leak" 3 strata-img check \
    hole.vdi
check "... moved away by -r leaks" strata-img check -r leaks hole.vdi
check "... qemu-img check agrees" qemu-img check hole.vdi
check "... and the data is intact" strata-io -r -c "read -P 0 0 1M" \
    -c "read -P 0xa2 2M 1M" -c "read -P 0xa3 4M 1M" -c "read -P 0xa4 6M 1M" \
    hole.vdi
check "... and a new block goes after the last" strata-io -q \
    -c "write -P 0xc1 1M 4k" hole.vdi
check "... qemu-img check agrees again" qemu-img check hole.vdi
check "... everything reads back" strata-io -r -c "read -P 0xc1 1M 4k" \
    -c "read -P 0xa2 2M 1M" -c "read -P 0xa3 4M 1M" -c "read -P 0xa4 6M 1M" \
    hole.vdi

# ---- vhd ----
strata-img create -q -f vpc good.vhd 8M
strata-io -q -f vpc -c "write -P 0xa1 0 1M" -c "write -P 0xa2 4M 1M" good.vhd
vbad() { cp good.vhd "$1"; poke "$1" "$2" "$3"; }

vbad ck.vhd 0x40 00000000
check_fail "vhd: wrong footer checksum" strata-img info ck.vhd
check_match "... says so" "$(strata-img info ck.vhd 2>&1)" \
    "Incorrect header checksum"
check_fail "... (qemu-img too)" qemu-img info ck.vhd
vbad magic.vhd 0x200 78787878
check_fail "vhd: bad dynamic header magic" strata-img info magic.vhd
check_match "... says so" "$(strata-img info magic.vhd 2>&1)" \
    "Invalid header magic"
vbad bs.vhd 0x220 00300000
check_fail "vhd: block size not a power of two" strata-img info bs.vhd
vbad bat.vhd 0x21c 0fffffff
check_fail "vhd: a BAT longer than the file" strata-img info bat.vhd
vbad small.vhd 0x21c 00000001
check_fail "vhd: a BAT too small for the disk" strata-img info small.vhd
cp good.vhd big.vhd
set_vhd_field big.vhd 0x1c 77696e20
set_vhd_field big.vhd 0x30 0000ffffffffffff
check_fail "vhd: absurd size" strata-img info big.vhd
python3 -c "import os; os.truncate('cut.vhd', 0) if False else None"
head -c 3000000 good.vhd > cut.vhd
check_fail "vhd: truncated image" strata-img info -f vpc cut.vhd
check_match "... says so" "$(strata-img info -f vpc cut.vhd 2>&1)" \
    "truncated"
strata-img create -q -f vpc -o subformat=fixed fixed.vhd 4M
size=$(stat -c %s fixed.vhd)
python3 -c "
import os
f = open('fixed.vhd', 'r+b'); f.seek($size - 512); t = f.read(); f.seek(0)
f.truncate(1048576); f.seek(1048576 - 512); f.write(t)"
check "vhd: a cut fixed image still reads" strata-io -r -f vpc \
    -c "read -P 0 0 512k" fixed.vhd
check_fail "vhd: ... but a write over its footer fails" strata-io -f vpc \
    -c "write 2M 4k" fixed.vhd
check_match "vhd: ... and the footer is intact" \
    "$(strata-img info -f vpc fixed.vhd)" "^virtual size: 4"
vbad into.vhd 0x600 00000001   # block 0 inside the header
check_fail "vhd: a block inside the metadata: read error" strata-io -r \
    -f vpc -c "read 0 4k" into.vhd
check_fail "vhd: a 100-byte file" strata-img info -f vpc \
    <(head -c 100 good.vhd)
# a parent loop: the parent replaced by a copy of the child
strata-img create -q -f vpc -b good.vhd -F vpc child.vhd
mkdir loop
cp child.vhd loop/child.vhd
cp child.vhd loop/good.vhd
check_fail "vhd: a parent loop is refused" strata-io -r -f vpc \
    -c "read 0 512" loop/child.vhd
check_match "... with a clear message" "$(strata-io -r -f vpc \
    -c "read 0 512" loop/child.vhd 2>&1)" "own backing chain"
done_testing
