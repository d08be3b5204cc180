#!/usr/bin/env bash
# vmdk delta disks (VMware snapshots): chains made by qemu-img create -b
# read through strata and convert to one qcow2 equal to the top; deltas
# strata creates carry parentCID/parentFileNameHint as qemu-img's do; a
# parent whose CID changed, a missing parent and a loop are refused.
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io strata-img strata-io
tmpdir
cd "$T"

norm() {
    perl -0777 -pe 'if (substr($_, 0, 4) eq "KDMV") {
        my $r = substr($_, 512, 10240);
        $r =~ s/\nCID=[0-9a-f]+/\nCID=x/;
        substr($_, 512, 10240) = $r . ("\0" x (10240 - length $r));
    } else { s/^CID=[0-9a-f]+/CID=x/m; s/\0+\z// }' "$1"
}

for sf in monolithicSparse twoGbMaxExtentSparse streamOptimized; do
    rm -rf c
    mkdir c
    qemu-img create -q -f vmdk -o subformat=$sf c/base.vmdk 4M
    qemu-io -f vmdk -c "write -P 0x11 0 2M" c/base.vmdk >/dev/null
    qemu-img create -q -f vmdk -b base.vmdk -F vmdk c/mid.vmdk
    qemu-io -f vmdk -c "write -P 0x22 1M 64k" c/mid.vmdk >/dev/null
    qemu-img create -q -f vmdk -b mid.vmdk -F vmdk c/top.vmdk
    qemu-io -f vmdk -c "write -P 0x33 1088k 8k" -c "write -P 0x44 3M 4k" \
        c/top.vmdk >/dev/null
    check "$sf chain: strata-io reads every layer" strata-io -r \
        -c "read -P 0x11 0 1M" -c "read -P 0x22 1M 64k" \
        -c "read -P 0x33 1088k 8k" -c "read -P 0x11 1096k 952k" \
        -c "read -P 0 2M 1M" -c "read -P 0x44 3M 4k" c/top.vmdk
    rm -f flat.qcow2
    check "$sf chain -> one qcow2" strata-img convert -O qcow2 c/top.vmdk \
        flat.qcow2
    check "$sf chain: the qcow2 equals the top" qemu-img compare \
        c/top.vmdk flat.qcow2
    check_eq "$sf chain: info --backing-chain as qemu-img's" \
        "$(strata-img info --backing-chain --output=json c/top.vmdk)" \
        "$(qemu-img info --backing-chain --output=json c/top.vmdk)"
    check_eq "$sf chain: map as qemu-img's" \
        "$(strata-img map --output=json c/top.vmdk)" \
        "$(qemu-img map --output=json c/top.vmdk)"
done

# deltas strata creates
rm -rf q s
mkdir q s
qemu-img create -q -f vmdk q/base.vmdk 4M
cp q/base.vmdk s/base.vmdk
qemu-img create -q -f vmdk -b base.vmdk -F vmdk q/top.vmdk
check "create a delta" strata-img create -q -f vmdk -b base.vmdk -F vmdk \
    s/top.vmdk
if cmp -s <(norm q/top.vmdk) <(norm s/top.vmdk); then
    ok "delta: same bytes as qemu-img's"
else
    not_ok "delta: same bytes as qemu-img's"
fi
check_match "delta: parentCID is the base's CID" \
    "$(strings s/top.vmdk | grep parentCID)" \
    "parentCID=$(strings s/base.vmdk | sed -n 's/^CID=//p')"
strata-io -q -c "write -P 0x77 64k 64k" s/top.vmdk
check "delta written by strata: qemu-io reads it" qemu-io -r \
    -c "read -P 0 0 64k" -c "read -P 0x77 64k 64k" s/top.vmdk
check "delta by strata: qemu-img check" qemu-img check s/top.vmdk
check_fail "a non-vmdk backing file is refused" strata-img create -f vmdk \
    -b ../src.qcow2 -F qcow2 s/bad.vmdk
check_fail "a flat image with a backing file is refused" strata-img create \
    -f vmdk -o subformat=monolithicFlat -b base.vmdk -F vmdk s/bad.vmdk

# the parent changed after the delta was taken: CID mismatch, as QEMU
strata-io -q -c "write -P 0x99 0 64k" s/base.vmdk
check_fail "CID mismatch: reading the parent's data fails" strata-io -r \
    -c "read -P 0 0 64k" s/top.vmdk
check "CID mismatch: the delta's own data still reads" strata-io -r \
    -c "read -P 0x77 64k 64k" s/top.vmdk

# a missing parent, a loop
rm -rf l
mkdir l
qemu-img create -q -f vmdk l/a.vmdk 1M
qemu-img create -q -f vmdk -b a.vmdk -F vmdk l/b.vmdk
rm l/a.vmdk
check_fail "a missing parent is an error" strata-io -r -c "read 0 512" \
    l/b.vmdk
sed -i 's/parentFileNameHint="a.vmdk"/parentFileNameHint="b.vmdk"/' l/b.vmdk
check_fail "a delta that is its own parent is refused" strata-io -r \
    -c "read 0 512" l/b.vmdk
_run strata-io -r -c "read 0 512" l/b.vmdk
check_match "the loop error names it" "$(cat "$_out")" "own backing chain"
done_testing
