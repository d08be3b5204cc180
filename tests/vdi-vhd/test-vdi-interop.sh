#!/usr/bin/env bash
# vdi against qemu-img/qemu-io 7.2: create gives the same file (UUIDs
# normalised: they are random); images qemu-io writes read back the same
# in strata and the same writes through strata-io give the same file;
# strata's images pass qemu-img check and compare equal in both tools;
# info (human, JSON) and map (human, JSON) match; convert both ways.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/vdi-vhd/vv-helpers.sh"
requires qemu-img qemu-io python3 strata-img strata-io
tmpdir
cd "$T"

cmds=(-c "write -P 0xab 0 64k" -c "write -P 0xcd 1536k 1M"
      -c "write -P 0x11 7M 4k" -c "write -P 0x22 100000 1000"
      -c "write -z 3M 64k")
checks=(-c "read -P 0xab 0 64k" -c "read -P 0x22 100000 1000"
        -c "read -P 0xcd 1536k 1M" -c "read -P 0 2560k 1M"
        -c "read -P 0x11 7M 4k" -c "read -P 0 3M 64k")

for o in static=off static=on; do
    sizes="8M 1000 0"
    [ $o = static=off ] && sizes="$sizes 3G" # a static one would be 3G
    for size in $sizes; do
        rm -f s.vdi q.vdi
        qemu-img create -q -f vdi -o $o q.vdi $size
        check "create $o $size" strata-img create -q -f vdi -o $o s.vdi $size
        same_norm "create $o $size: same file as qemu-img" s.vdi q.vdi vdi
    done
done
check_eq "Formatting line as qemu-img's" \
    "$(strata-img create -f vdi -o static=on f.vdi 1M)" \
    "$(qemu-img create -f vdi -o static=on f.vdi 1M)"
check_fail "preallocation=metadata refused as qemu-img does" \
    strata-img create -f vdi -o preallocation=metadata p.vdi 1M

for o in static=off static=on; do
    rm -f s.vdi q.vdi
    qemu-img create -q -f vdi -o $o q.vdi 8M
    strata-img create -q -f vdi -o $o s.vdi 8M
    qemu-io -f vdi "${cmds[@]}" q.vdi >/dev/null
    check "$o: strata-io reads what qemu-io wrote" strata-io -f vdi -r \
        "${checks[@]}" q.vdi
    check "$o: the same writes through strata-io" strata-io -q -f vdi \
        "${cmds[@]}" s.vdi
    same_norm "$o: byte-identical to what qemu-io wrote" s.vdi q.vdi vdi
    check "$o: qemu-img check passes" qemu-img check s.vdi
    check "$o: strata-img check passes" strata-img check s.vdi
    check "$o: qemu-img compare" qemu-img compare -f vdi -F vdi q.vdi s.vdi
    check "$o: strata-img compare" strata-img compare q.vdi s.vdi
    check "$o: qemu-io reads what strata-io wrote" qemu-io -f vdi -r \
        "${checks[@]}" s.vdi
    for out in "" "--output=json"; do
        check_eq "$o: info $out as qemu-img" \
            "$(strata-img info $out s.vdi)" "$(qemu-img info $out s.vdi)"
        check_eq "$o: map $out as qemu-img" \
            "$(strata-img map $out s.vdi)" "$(qemu-img map $out s.vdi)"
    done
    for fmt in qcow2 raw; do
        rm -f s.$fmt q.$fmt
        check "$o: convert vdi -> $fmt" strata-img convert -O $fmt s.vdi s.$fmt
        qemu-img convert -O $fmt q.vdi q.$fmt
        check "$o: vdi -> $fmt equals qemu-img's" qemu-img compare s.$fmt q.$fmt
    done
done

# raw and qcow2 -> vdi, read back by qemu
for fmt in raw qcow2; do
    for o in static=off static=on; do
        rm -f c.vdi
        check "convert $fmt -> vdi ($o)" strata-img convert -O vdi -o $o \
            s.$fmt c.vdi
        check "$fmt -> vdi ($o): qemu-img check" qemu-img check c.vdi
        check "$fmt -> vdi ($o): qemu-img compare with the source" \
            qemu-img compare -F $fmt c.vdi s.$fmt
        rm -f q.vdi
        qemu-img convert -O vdi -o $o s.$fmt q.vdi
        same_norm "$fmt -> vdi ($o): same file as qemu-img convert" \
            c.vdi q.vdi vdi
    done
done
done_testing
