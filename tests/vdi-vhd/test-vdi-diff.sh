#!/usr/bin/env bash
# Differencing vdi images (VirtualBox snapshots), which qemu-img cannot
# open: made with create -b, the parent found next to the image by UUID
# (or named with backing=), never-written blocks reading from the parent,
# a chain of three converted to one qcow2 equal to the content the test
# wrote; a missing parent, a wrong one and UUID loops give clear errors.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/vdi-vhd/vv-helpers.sh"
requires qemu-img python3 strata-img strata-io
tmpdir
cd "$T"
mkdir d
cd d

strata-img create -q -f vdi base.vdi 4M
strata-io -q -c "write -P 0x11 0 4M" base.vdi
check "create a differencing image" strata-img create -q -f vdi \
    -b base.vdi -F vdi snap1.vdi
check "write into it" strata-io -q -c "write -P 0x22 512k 1M" \
    -c "write -P 0x23 3M 512" snap1.vdi
check "create a second level" strata-img create -q -f vdi -b snap1.vdi \
    -F vdi snap2.vdi
check "write into the second level" strata-io -q \
    -c "write -P 0x33 1M 4k" -c "write -P 0x34 3584k 512k" snap2.vdi
# what the chain must read as, written by hand
truncate -s 4M want.raw
strata-io -q -f raw -c "write -P 0x11 0 4M" -c "write -P 0x22 512k 1M" \
    -c "write -P 0x23 3M 512" -c "write -P 0x33 1M 4k" \
    -c "write -P 0x34 3584k 512k" want.raw
check "the chain reads as written" strata-img compare snap2.vdi want.raw
check_match "info names the parent found next to the image" \
    "$(strata-img info snap2.vdi)" "^backing file: snap1.vdi$"
check_eq "the chain has three images" \
    "$(strata-img info --backing-chain snap2.vdi | grep -c '^image:')" 3
check "convert the chain to qcow2" strata-img convert -O qcow2 snap2.vdi \
    ../flat.qcow2
check "the qcow2 equals the written content (qemu-img compare)" \
    qemu-img compare ../flat.qcow2 want.raw
check "convert the chain to raw" strata-img convert -O raw snap2.vdi \
    ../flat.raw
check "the raw equals the written content" cmp ../flat.raw want.raw
check_match "map shows the layers" "$(strata-img map snap2.vdi)" \
    "snap1.vdi"
check "check on a differencing image" strata-img check snap2.vdi
check_fail "qemu-img refuses differencing vdi (it has no support)" \
    qemu-img info snap1.vdi

# moved elsewhere with its parent: still found; moved alone: a clear error
mkdir ../moved
cp snap1.vdi base.vdi ../moved/
check "parent found in the new directory" strata-img compare \
    ../moved/snap1.vdi snap1.vdi
rm ../moved/base.vdi
check "info works without the parent" strata-img info ../moved/snap1.vdi
check_fail "parent missing: an error on opening the chain" strata-io -r \
    -c "read 0 512" ../moved/snap1.vdi
check_match "... that says what is missing" "$(strata-io -r -c "read 0 512" \
    ../moved/snap1.vdi 2>&1)" "Could not find the parent.*UUID"
check "backing= names the parent" strata-img compare --image-opts \
    "driver=vdi,file.filename=../moved/snap1.vdi,backing=$T/d/base.vdi" \
    snap1.vdi
check_fail "backing= naming another image: refused" strata-io -r \
    --image-opts -c "read 0 512" \
    "driver=vdi,file.filename=snap2.vdi,backing=base.vdi"
check "backing= (empty) opens without the parent" strata-io -r \
    --image-opts -c "read -P 0 2M 1M" -c "read -P 0x22 512k 1M" \
    "driver=vdi,file.filename=snap1.vdi,backing="
check_fail "a static differencing image: refused" strata-img create -f vdi \
    -o static=on -b base.vdi -F vdi x.vdi
check_fail "a non-vdi parent: refused" strata-img create -f vdi \
    -b want.raw -F raw x.vdi

# a loop: base links to snap2 (whose chain leads back to base)
cp base.vdi base.orig
python3 - <<'PY'
b = open('snap2.vdi', 'rb').read()
uuid = b[0x188:0x198]
with open('base.vdi', 'r+b') as f:
    f.seek(0x1a8)
    f.write(uuid)
PY
check_fail "a parent loop is refused" strata-io -r -c "read 0 512" snap2.vdi
check_match "... with a clear message" \
    "$(strata-io -r -c "read 0 512" snap2.vdi 2>&1)" "own backing chain"
# an image that is its own parent (by UUID) through a copy
cp base.orig self.vdi
python3 - <<'PY'
with open('self.vdi', 'r+b') as f:
    f.seek(0x188)
    u = f.read(16)
    f.seek(0x1a8)
    f.write(u)
PY
cp self.vdi self2.vdi
check_fail "two copies naming each other: refused" strata-io -r \
    -c "read 0 512" self.vdi
done_testing
