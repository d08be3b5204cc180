#!/usr/bin/env bash
# Differencing vhd images (qemu-img 7.2 cannot create them, and reads them
# as plain dynamic images): made with create -b, the parent found through
# the W2ru (relative) and W2ku (absolute) locators, sectors whose bitmap
# bit is clear reading from the parent, a chain converted to one qcow2
# equal to the content the test wrote; a wrong parent UUID and a missing
# parent give clear errors.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/vdi-vhd/vv-helpers.sh"
requires qemu-img python3 strata-img strata-io
tmpdir
cd "$T"
mkdir d
cd d

strata-img create -q -f vpc base.vhd 6M
strata-io -q -f vpc -c "write -P 0x11 0 6M" base.vhd
check "create a differencing image" strata-img create -q -f vpc \
    -b base.vhd -F vpc snap1.vhd
check_match "it is a differencing image" "$(strata-img info snap1.vhd)" \
    "^backing file: base.vhd$"
check "write into it" strata-io -q -f vpc -c "write -P 0x22 1M 1M" \
    -c "write -P 0x23 3M 512" snap1.vhd
check "a second level" strata-img create -q -f vpc -b snap1.vhd -F vpc \
    snap2.vhd
check "write into the second level" strata-io -q -f vpc \
    -c "write -P 0x33 2M 4k" snap2.vhd
size=$(strata-img info --output=json base.vhd |
       sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')
truncate -s "$size" want.raw
strata-io -q -f raw -c "write -P 0x11 0 6M" -c "write -P 0x22 1M 1M" \
    -c "write -P 0x23 3M 512" -c "write -P 0x33 2M 4k" want.raw
check "the chain reads as written" strata-img compare snap2.vhd want.raw
check "convert the chain to qcow2" strata-img convert -O qcow2 snap2.vhd \
    ../flat.qcow2
check "the qcow2 equals the written content (qemu-img compare)" \
    qemu-img compare ../flat.qcow2 want.raw
check_match "map shows the parent's ranges" "$(strata-img map snap2.vhd)" \
    "base.vhd"
check "qemu-img opens it (as a dynamic image)" qemu-img info snap1.vhd

# bitmap: clear the bits of the first 8 sectors of snap1's block 0
python3 - <<'PY'
import struct
b = bytearray(open('snap1.vhd', 'rb').read())
bat = struct.unpack_from('>Q', b, 512 + 0x10)[0]
e = struct.unpack_from('>I', b, bat)[0]
b[e * 512] = 0
open('snap1.vhd', 'wb').write(b)
PY
check "sectors with a clear bit read from the parent" strata-io -r -f vpc \
    -c "read -P 0x11 0 4k" -c "read -P 0x11 4k 1020k" -c "read -P 0x22 1M 1M" \
    snap1.vhd
check "a write there sets the bits again" strata-io -q -f vpc \
    -c "write -P 0x44 1k 1k" snap1.vhd
check "... and reads back" strata-io -r -f vpc -c "read -P 0x11 0 1k" \
    -c "read -P 0x44 1k 1k" -c "read -P 0x11 2k 2k" snap1.vhd

# locators: the relative one after moving both, the absolute one after
# moving the child alone
mkdir ../moved
cp base.vhd snap1.vhd ../moved/
check "relative locator: parent found after moving both" strata-io -r \
    -f vpc -c "read -P 0x11 4M 1M" ../moved/snap1.vhd
rm ../moved/base.vhd
check "absolute locator: parent found from elsewhere" strata-io -r \
    -f vpc -c "read -P 0x11 4M 1M" ../moved/snap1.vhd
mv base.vhd base.away
check_fail "parent missing: an error" strata-io -r -f vpc -c "read 0 512" \
    snap1.vhd
check_match "... naming it" "$(strata-io -r -f vpc -c "read 0 512" \
    snap1.vhd 2>&1)" "Could not find the parent 'base.vhd'"
strata-img create -q -f vpc base.vhd 6M
check_fail "a parent with another UUID: refused" strata-io -r -f vpc \
    -c "read 0 512" snap1.vhd
check_match "... with a clear message" "$(strata-io -r -f vpc \
    -c "read 0 512" snap1.vhd 2>&1)" "is not the parent"
check "backing= names the parent" strata-io -r --image-opts \
    -c "read -P 0x11 4M 1M" \
    "driver=vpc,file.filename=snap1.vhd,backing=base.away"
check_fail "a fixed differencing image: refused" strata-img create \
    -f vpc -o subformat=fixed -b base.away -F vpc x.vhd
done_testing
