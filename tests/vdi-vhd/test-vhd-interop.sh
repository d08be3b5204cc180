#!/usr/bin/env bash
# vhd (vpc) against qemu-img/qemu-io 7.2: create gives the same file for
# every subformat and force_size (timestamp, UUID and checksum
# normalised); writes through strata-io and qemu-io give the same file and
# read back the same in the other tool; info and map match; the virtual
# size follows QEMU's CHS / current_size rules for each creator app;
# convert both ways; "vhd" is accepted as the format's name.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/vdi-vhd/vv-helpers.sh"
requires qemu-img qemu-io python3 strata-img strata-io
tmpdir
cd "$T"

cmds=(-c "write -P 0xab 0 64k" -c "write -P 0xcd 1536k 1M"
      -c "write -P 0x11 7M 4k" -c "write -P 0x22 100352 1024")
checks=(-c "read -P 0xab 0 64k" -c "read -P 0x22 100352 1024"
        -c "read -P 0xcd 1536k 1M" -c "read -P 0 2560k 1M"
        -c "read -P 0x11 7M 4k")

for o in subformat=dynamic subformat=fixed force_size=on \
         subformat=fixed,force_size=on; do
    for size in 10M 4M 1000 3G; do
        case $o$size in
        *fixed*3G) continue ;;                 # 3 GiB files
        subformat=*4M) continue ;;             # 4M: the BAT size with force
        esac
        rm -f s.vhd q.vhd
        qemu-img create -q -f vpc -o $o q.vhd $size
        check "create $o $size" strata-img create -q -f vpc -o $o s.vhd $size
        same_norm "create $o $size: same file as qemu-img" s.vhd q.vhd vpc
        check_eq "create $o $size: same virtual size" \
            "$(strata-img info -f vpc s.vhd | grep 'virtual size')" \
            "$(qemu-img info -f vpc q.vhd | grep 'virtual size')"
    done
done
check_eq "Formatting line as qemu-img's" \
    "$(strata-img create -f vpc -o force_size=on,subformat=fixed f.vhd 1M)" \
    "$(qemu-img create -f vpc -o force_size=on,subformat=fixed f.vhd 1M)"
check "vhd is an alias of vpc" strata-img create -q -f vhd a.vhd 1M
check_match "... and the image is vpc" "$(strata-img info a.vhd)" \
    "^file format: vpc$"
check_fail "subformat=bogus refused" strata-img create -f vpc \
    -o subformat=bogus b.vhd 1M
check_fail "more than 2040 GiB refused" strata-img create -f vpc \
    -o force_size=on b.vhd 2041G

for o in subformat=dynamic subformat=fixed; do
    rm -f s.vhd q.vhd
    qemu-img create -q -f vpc -o $o q.vhd 8M
    strata-img create -q -f vpc -o $o s.vhd 8M
    qemu-io -f vpc "${cmds[@]}" q.vhd >/dev/null
    check "$o: strata-io reads what qemu-io wrote" strata-io -f vpc -r \
        "${checks[@]}" q.vhd
    check "$o: the same writes through strata-io" strata-io -q -f vpc \
        "${cmds[@]}" s.vhd
    same_norm "$o: byte-identical to what qemu-io wrote" s.vhd q.vhd vpc
    check "$o: qemu-io reads what strata-io wrote" qemu-io -f vpc -r \
        "${checks[@]}" s.vhd
    check "$o: qemu-img compare" qemu-img compare -f vpc -F vpc q.vhd s.vhd
    check "$o: strata-img compare" strata-img compare -f vpc -F vpc q.vhd s.vhd
    for out in "" "--output=json"; do
        check_eq "$o: info $out as qemu-img" \
            "$(strata-img info -f vpc $out s.vhd)" \
            "$(qemu-img info -f vpc $out s.vhd)"
        check_eq "$o: map $out as qemu-img" \
            "$(strata-img map -f vpc $out s.vhd)" \
            "$(qemu-img map -f vpc $out s.vhd)"
    done
    for fmt in qcow2 raw; do
        rm -f s.$fmt q.$fmt
        check "$o: convert vpc -> $fmt" strata-img convert -f vpc -O $fmt \
            s.vhd s.$fmt
        qemu-img convert -f vpc -O $fmt q.vhd q.$fmt
        check "$o: vpc -> $fmt equals qemu-img's" qemu-img compare s.$fmt q.$fmt
    done
done

for fmt in raw qcow2; do
    for o in subformat=dynamic subformat=fixed \
             "subformat=fixed,force_size=on"; do
        rm -f c.vhd q.vhd
        check "convert $fmt -> vpc ($o)" strata-img convert -O vpc -o $o \
            s.$fmt c.vhd
        check "$fmt -> vpc ($o): qemu-img compare with the source" \
            qemu-img compare -f vpc -F $fmt c.vhd s.$fmt
        qemu-img convert -O vpc -o $o s.$fmt q.vhd
        same_norm "$fmt -> vpc ($o): same file as qemu-img convert" \
            c.vhd q.vhd vpc
    done
done

# size rules: the creator app decides between CHS and current_size
qemu-img create -q -f vpc -o force_size=on r.vhd 10M
for app in 7170752b 716d3220 71656d32 77696e20 64327620 43545853 74617000 \
           76706320; do
    set_vhd_field r.vhd 0x1c $app
    check_eq "creator app $app: virtual size as qemu-img" \
        "$(strata-img info -f vpc --output=json r.vhd | grep virtual-size)" \
        "$(qemu-img info -f vpc --output=json r.vhd | grep virtual-size)"
    case $app in 71656d32|76706320) ;; *) continue ;; esac
    for calc in chs current_size; do
        check_eq "creator app $app, force_size_calc=$calc: as qemu-img" \
            "$(strata-img info --image-opts \
               driver=vpc,force_size_calc=$calc,file.filename=r.vhd |
               grep 'virtual size')" \
            "$(qemu-img info --image-opts \
               driver=vpc,force_size_calc=$calc,file.filename=r.vhd |
               grep 'virtual size')"
    done
done
# the maximum geometry means current_size, whatever the creator
set_vhd_field r.vhd 0x1c 76706320
set_vhd_field r.vhd 0x38 ffff10ff
check_eq "max CHS geometry: current_size, as qemu-img" \
    "$(strata-img info -f vpc --output=json r.vhd | grep virtual-size)" \
    "$(qemu-img info -f vpc --output=json r.vhd | grep virtual-size)"
done_testing
