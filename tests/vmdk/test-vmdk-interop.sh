#!/usr/bin/env bash
# vmdk interoperability with QEMU, for every subformat: images qemu-io
# wrote read back identically through strata, images strata wrote read back
# identically in qemu-img and pass `qemu-img check`, and `create` writes
# the same bytes as qemu-img (the random CID normalised).
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io strata-img strata-io
tmpdir
cd "$T"

subs="monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat
      streamOptimized"
# CID is random in both tools: compare with it replaced (in an embedded
# descriptor, the 20 sectors reserved for it keep their size)
norm() {
    perl -0777 -pe 'if (substr($_, 0, 4) eq "KDMV") {
        my $r = substr($_, 512, 10240);
        $r =~ s/\nCID=[0-9a-f]+/\nCID=x/;
        substr($_, 512, 10240) = $r . ("\0" x (10240 - length $r));
    } else { s/^CID=[0-9a-f]+/CID=x/m; s/\0+\z// }' "$1"
}

mkdir q s
for o in "" zeroed_grain=on adapter_type=lsilogic,hwversion=7 \
         adapter_type=buslogic,toolsversion=42 compat6=on; do
    for sf in $subs; do
        case "$sf,$o" in *Flat,zeroed*) continue ;; esac
        rm -f q/* s/*
        opts="subformat=$sf${o:+,$o}"
        qemu-img create -q -f vmdk -o "$opts" q/d.vmdk 3M
        strata-img create -q -f vmdk -o "$opts" s/d.vmdk 3M
        same=yes
        for f in q/*; do
            b=${f#q/}
            cmp -s <(norm "q/$b") <(norm "s/$b") || same="no ($b)"
        done
        check_eq "create $opts: same files as qemu-img" "$same" yes
    done
done

# data patterns: unaligned, grain-crossing, near the end
wr=(-c "write -P 0x11 0 64k" -c "write -P 0x22 100k 200k"
    -c "write -P 0x33 1M 4k" -c "write -P 0x44 2944k 128k")
rd=(-c "read -P 0x11 0 64k" -c "read -P 0x22 100k 200k"
    -c "read -P 0x33 1M 4k" -c "read -P 0x44 2944k 128k"
    -c "read -P 0 64k 36k" -c "read -P 0 300k 724k")
# streamOptimized takes whole grains only in qemu-io
swr=(-c "write -P 0x11 0 64k" -c "write -P 0x22 128k 192k"
     -c "write -P 0x44 2944k 128k")
srd=(-c "read -P 0x11 0 64k" -c "read -P 0x22 128k 192k"
     -c "read -P 0x44 2944k 128k" -c "read -P 0 64k 64k")

for sf in $subs; do
    rm -f q/* s/*
    w=("${wr[@]}") r=("${rd[@]}")
    if [ $sf = streamOptimized ]; then w=("${swr[@]}") r=("${srd[@]}"); fi
    qemu-img create -q -f vmdk -o subformat=$sf q/d.vmdk 3M
    qemu-io -f vmdk "${w[@]}" q/d.vmdk >/dev/null
    check "$sf by qemu-io: strata-io reads the data" \
        strata-io -r -f vmdk "${r[@]}" q/d.vmdk
    strata-img create -q -f vmdk -o subformat=$sf s/d.vmdk 3M
    check "$sf: strata-io writes" strata-io -q -f vmdk "${w[@]}" s/d.vmdk
    check "$sf by strata-io: qemu-io reads the data" \
        qemu-io -r -f vmdk "${r[@]}" s/d.vmdk
    check "$sf: qemu-img compare with qemu's" \
        qemu-img compare -f vmdk -F vmdk q/d.vmdk s/d.vmdk
    check "$sf: strata-img compare with qemu's" \
        strata-img compare -f vmdk -F vmdk q/d.vmdk s/d.vmdk
    check "$sf by strata: qemu-img check" qemu-img check -f vmdk s/d.vmdk
    if [ $sf = monolithicSparse ] || [ $sf = streamOptimized ]; then
        if cmp -s <(norm q/d.vmdk) <(norm s/d.vmdk); then
            ok "$sf: same bytes as qemu-io's image"
        else
            not_ok "$sf: same bytes as qemu-io's image"
            diag "$(cmp <(norm q/d.vmdk) <(norm s/d.vmdk) 2>&1)"
        fi
    fi
    check_eq "$sf: map as qemu-img's" \
        "$(strata-img map --output=json -f vmdk s/d.vmdk)" \
        "$(qemu-img map --output=json -f vmdk s/d.vmdk)"
    check_eq "$sf: info as qemu-img's" \
        "$(strata-img info --output=json -f vmdk s/d.vmdk)" \
        "$(qemu-img info --output=json -f vmdk s/d.vmdk)"
done

# zeroed grains
rm -f q/* s/*
qemu-img create -q -f vmdk -o zeroed_grain=on q/z.vmdk 2M
qemu-io -f vmdk -c "write -P 0x55 0 1M" -c "write -z 128k 256k" q/z.vmdk \
    >/dev/null
check "zeroed grains by qemu-io read as zeroes" strata-io -r -f vmdk \
    -c "read -P 0x55 0 128k" -c "read -P 0 128k 256k" \
    -c "read -P 0x55 384k 640k" q/z.vmdk
check_eq "zeroed grains: map as qemu-img's" \
    "$(strata-img map --output=json q/z.vmdk)" \
    "$(qemu-img map --output=json q/z.vmdk)"
strata-img create -q -f vmdk -o zeroed_grain=on s/z.vmdk 2M
strata-io -q -c "write -P 0x55 0 1M" -c "write -z 128k 256k" s/z.vmdk
check "zeroed grains by strata: qemu-img compare" qemu-img compare \
    q/z.vmdk s/z.vmdk
if cmp -s <(norm q/z.vmdk) <(norm s/z.vmdk); then
    ok "zeroed grains: same bytes as qemu-io's image"
else
    not_ok "zeroed grains: same bytes as qemu-io's image"
fi
done_testing
