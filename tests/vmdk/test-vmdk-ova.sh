#!/usr/bin/env bash
# OVA archives (tar + OVF + manifest) built here with tar and sha256sum
# from vmdk files qemu-img writes: strata opens `x.ova` directly, lists
# the disks in `info`, picks one with disk=N|NAME, checks the manifest and
# reports a mismatch; ustar, pax and GNU archives; hostile headers.
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io strata-img tar sha256sum sha1sum
tmpdir
cd "$T"

qemu-img create -q -f raw a.raw 3M
qemu-io -f raw -c "write -P 0x11 0 1M" a.raw >/dev/null
qemu-img create -q -f raw b.raw 2M
qemu-io -f raw -c "write -P 0x22 64k 1M" b.raw >/dev/null
qemu-img convert -O vmdk -o subformat=streamOptimized a.raw disk1.vmdk
qemu-img convert -O vmdk -o subformat=streamOptimized b.raw \
    a-rather-long-directory-name-for-the-second-disk-of-this-appliance-so-the-name-exceeds-one-hundred-bytes.vmdk
long=a-rather-long-directory-name-for-the-second-disk-of-this-appliance-so-the-name-exceeds-one-hundred-bytes.vmdk

mkovf() {
    cat <<OVF
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"
    xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References>
    <File ovf:href="disk1.vmdk" ovf:id="file1"/>
    <File ovf:href="$1" ovf:id="file2"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="3" ovf:diskId="vmdisk1" ovf:fileRef="file1"/>
    <Disk ovf:capacity="2" ovf:diskId="vmdisk2" ovf:fileRef="file2"/>
  </DiskSection>
</Envelope>
OVF
}
cp "$long" disk2.vmdk
mkovf disk2.vmdk >vm.ovf
for f in vm.ovf disk1.vmdk disk2.vmdk; do
    echo "SHA256($f)= $(sha256sum $f | cut -d' ' -f1)"
done >vm.mf
tar --format=ustar -cf vm.ova vm.ovf vm.mf disk1.vmdk disk2.vmdk

check_eq "probed as ova" "$(strata-img info --output=json vm.ova |
    sed -n 's/^    "format": "\(.*\)",/\1/p')" ova
info=$(strata-img info vm.ova)
check_match "info lists the second disk" "$info" "file: disk2.vmdk"
check_match "info shows the checksums verified" "$info" "checksums: ok"
check "the first disk by default" strata-img compare vm.ova a.raw
check "disk=1 picks the second" strata-img compare --image-opts \
    driver=ova,file.filename=vm.ova,disk=1 b.raw
check "disk=NAME picks by member name" strata-img compare --image-opts \
    driver=ova,file.filename=vm.ova,disk=disk2.vmdk b.raw
check "disk=ID picks by OVF disk id" strata-img compare --image-opts \
    driver=ova,file.filename=vm.ova,disk=vmdisk2 b.raw
check "vm.ova:1 names the second disk" strata-img compare vm.ova:1 b.raw
check "vm.ova:disk2.vmdk names it by member" strata-img compare \
    vm.ova:disk2.vmdk b.raw
check "convert an OVA disk to qcow2" strata-img convert -O qcow2 vm.ova o.qcow2
check "the qcow2 equals the disk" qemu-img compare o.qcow2 a.raw
check_fail "disk=5 does not exist" strata-img info --image-opts \
    driver=ova,file.filename=vm.ova,disk=5
check_fail "OVA archives are read-only" strata-io -c "write 0 512" vm.ova

# SHA1 manifest, GNU and pax archives with a long member name
mkovf "$long" >vm.ovf
for f in vm.ovf disk1.vmdk "$long"; do
    echo "SHA1($f)= $(sha1sum "$f" | cut -d' ' -f1)"
done >vm.mf
for fmt in gnu pax; do
    rm -f $fmt.ova
    tar --format=$fmt -cf $fmt.ova vm.ovf vm.mf disk1.vmdk "$long"
    check "$fmt archive, long name: the second disk" strata-img compare \
        --image-opts driver=ova,file.filename=$fmt.ova,disk=1 b.raw
    check_match "$fmt archive: SHA1 checksums verified" \
        "$(strata-img info -f ova $fmt.ova)" "checksums: ok"
done

# a manifest that does not match
mkovf disk2.vmdk >vm.ovf
{
    echo "SHA256(vm.ovf)= $(sha256sum vm.ovf | cut -d' ' -f1)"
    echo "SHA256(disk1.vmdk)= $(sha256sum b.raw | cut -d' ' -f1)"
} >vm.mf
tar --format=ustar -cf bad.ova vm.ovf vm.mf disk1.vmdk disk2.vmdk
_run strata-img info bad.ova
check_eq "a checksum mismatch fails the open" "$_rc" 1
check_match "the error names the file and the mismatch" "$(cat "$_out")" \
    "SHA256 checksum mismatch for 'disk1.vmdk'"
check_match "verify=warn opens and info reports the mismatch" \
    "$(strata-img info --image-opts driver=ova,file.filename=bad.ova,verify=warn)" \
    "checksums: mismatch"
check "verify=off reads the disk" strata-img compare --image-opts \
    driver=ova,file.filename=bad.ova,verify=off a.raw

# hostile archives: a member size past the end, a bad header checksum,
# a cut-short archive
cp vm.ova h1.ova
# size field of the second member (vm.mf, at 512 + ROUND_UP(ovf)) -> huge
off=$((512 + ($(stat -c %s vm.ovf) + 511) / 512 * 512))
python3 - "$off" <<'PY'
import sys
off = int(sys.argv[1])
with open("h1.ova", "r+b") as f:
    f.seek(off)
    h = bytearray(f.read(512))
    h[124:136] = b"77777777777\0"
    h[148:156] = b"        "
    h[148:156] = b"%06o\0 " % sum(h)
    f.seek(off)
    f.write(h)
PY
check_fail "a member larger than the archive is refused" strata-img info \
    -f ova h1.ova
cp vm.ova h2.ova
printf 'X' | dd of=h2.ova bs=1 seek=10 conv=notrunc 2>/dev/null
check_fail "a bad header checksum is refused" strata-img info -f ova h2.ova
head -c 100000 vm.ova >h3.ova
check_fail "an archive cut short is refused" strata-img info -f ova h3.ova
done_testing
