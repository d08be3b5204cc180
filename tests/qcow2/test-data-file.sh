#!/usr/bin/env bash
# qcow2 external data files (data_file, data_file_raw): strata-img creates
# the same image and data file bytes as qemu-img; the same requests through
# strata-io and qemu-io leave byte-identical files (data at guest offsets,
# no refcounts for data clusters, the raw data file kept valid); each tool
# reads what the other wrote; info, map, check, convert, amend, resize and
# commit agree with qemu-img 7.2, and the error cases say what QEMU says.
# Both tools run with the images in the working directory (QEMU resolves
# the data file name against it, strata against the image's directory).
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/qcow2/qcow2-helpers.sh"
requires qemu-img qemu-io strata-img strata-io
tmpdir
cd "$T"
plan 72

S=1M
OPS=(
    'write -P 0xab 0 100k' 'write -P 0xcd 300k 64k' 'write -z 500k 100k'
    'write -z -u 700k 128k' 'write -P 0x11 640k 1k' 'discard 128k 128k'
    'write -P 0x12 130k 2k' 'write -P 0x13 1000k 24k'
)

# at DIR CMD...: run CMD inside DIR (a subshell)
at() (
    cd "$1"
    shift
    "$@"
)

# qmsg CMD...: the error of a qemu tool, as strata words it
qmsg()
{
    "$@" 2>&1 | sed -e 's/^qemu-img: /strata-img: /' \
        -e 's/^qemu-io: /strata-io: /'
}
smsg()
{
    "$@" 2>&1
}

mkdir s q
qemu-img create -q -f qcow2 s/base.qcow2 $S
qemu-io -c "write -P 0x5a 0 $S" s/base.qcow2 >/dev/null
cp s/base.qcow2 q/base.qcow2

# ---- create: byte-identical images and data files ----
declare -A CREATE=(
    [plain]="data_file=plain.raw"
    [raw]="data_file=raw.raw,data_file_raw=on"
    [full]="data_file=full.raw,data_file_raw=on,preallocation=full"
    [falloc]="data_file=falloc.raw,preallocation=falloc,cluster_size=4k"
    [back]="data_file=back.raw,backing_file=base.qcow2,backing_fmt=qcow2"
    [ext]="data_file=ext.raw,extended_l2=on,cluster_size=16k"
)
for n in plain raw full falloc back ext; do
    at s strata-img create -q -f qcow2 -o "${CREATE[$n]}" $n.qcow2 $S
    at q qemu-img create -q -f qcow2 -o "${CREATE[$n]}" $n.qcow2 $S
    if cmp -s s/$n.qcow2 q/$n.qcow2 && cmp -s s/$n.raw q/$n.raw &&
        [ "$(stat -c %s,%b s/$n.raw)" = "$(stat -c %s,%b q/$n.raw)" ]; then
        ok "create ${CREATE[$n]}: image and data file as qemu-img's"
    else
        not_ok "create ${CREATE[$n]}: image and data file as qemu-img's"
        diag "$(cmp s/$n.qcow2 q/$n.qcow2 2>&1; ls -ls s/$n.raw q/$n.raw)"
    fi
done

# ---- the same writes through both tools ----
for n in plain raw back ext; do
    at s run strata-io $n.qcow2
    at q run qemu-io $n.qcow2
    same "$n: strata-io leaves the image qemu-io leaves" s/$n.qcow2 q/$n.qcow2
    same "$n: and the same data file" s/$n.raw q/$n.raw
    check "$n: qemu-img check is clean on strata's image" \
        at s qemu-img check -q $n.qcow2
    check "$n: qemu-img compare with qemu's image" \
        at s qemu-img compare $n.qcow2 ../q/$n.qcow2
done
check "raw: strata's data file is a valid raw image of the disk" \
    at s qemu-img compare -f raw -F qcow2 raw.raw raw.qcow2
check "strata-io reads what qemu-io wrote (patterns)" \
    at q strata-io -c 'read -P 0xab 0 100k' -c 'read -P 0 100k 28k' \
    -c 'read -P 0x12 130k 2k' -c 'read -P 0 132k 124k' \
    -c 'read -P 0xcd 300k 64k' -c 'read -P 0 500k 100k' \
    -c 'read -P 0x11 640k 1k' -c 'read -P 0 700k 128k' \
    -c 'read -P 0x13 1000k 24k' plain.qcow2
check "strata-io reads the backing file under qemu-io's overlay" \
    at q strata-io -c 'read -P 0x5a 100k 28k' -c 'read -P 0x5a 365k 135k' \
    -c 'read -P 0 128k 2k' -c 'read -P 0x12 130k 2k' back.qcow2
for n in plain raw back ext; do
    check "$n: strata-img compare of the two tools' images" \
        at s strata-img compare $n.qcow2 ../q/$n.qcow2
done
for n in plain raw back; do
    check "$n: strata-img check is clean on qemu's image" \
        at q strata-img check -q $n.qcow2
done

# ---- info and map as qemu-img prints them ----
for n in plain raw back; do
    check_eq "$n: info as qemu-img's" "$(at s strata-img info $n.qcow2)" \
        "$(at s qemu-img info $n.qcow2)"
    check_eq "$n: info --output=json as qemu-img's" \
        "$(at s strata-img info --output=json $n.qcow2)" \
        "$(at s qemu-img info --output=json $n.qcow2)"
done
check_eq "map as qemu-img's (data file offsets)" \
    "$(at s strata-img map plain.qcow2)" "$(at s qemu-img map plain.qcow2)"
check_eq "map --output=json as qemu-img's" \
    "$(at s strata-img map --output=json back.qcow2)" \
    "$(at s qemu-img map --output=json back.qcow2)"

# ---- convert ----
at s strata-img convert -O qcow2 -o data_file=cv.raw back.qcow2 cv.qcow2
check "convert -o data_file: qemu-img check" at s qemu-img check -q cv.qcow2
check "convert -o data_file: same content" \
    at s qemu-img compare cv.qcow2 back.qcow2
at s strata-img convert -O qcow2 -o data_file=cr.raw,data_file_raw=on \
    plain.qcow2 cr.qcow2
at q qemu-img convert -O qcow2 -o data_file=cr.raw,data_file_raw=on \
    plain.qcow2 cr.qcow2
same "convert -o data_file_raw=on: image as qemu-img's" s/cr.qcow2 q/cr.qcow2
same "convert -o data_file_raw=on: data file as qemu-img's" s/cr.raw q/cr.raw

# ---- refusals (QEMU's messages) ----
check_eq "compressed writes refused" \
    "$(at s smsg strata-io -c 'write -c -P 1 0 64k' plain.qcow2)" \
    "$(at q qmsg qemu-io -c 'write -c -P 1 0 64k' plain.qcow2)"
# (which write fails first is up to the parallel copy)
check_match "convert -c to a data file refused" \
    "$(at s smsg strata-img convert -c -O qcow2 -o data_file=c.raw \
        plain.qcow2 c.qcow2)" \
    "^strata-img: error while writing at byte [0-9]+: Operation not supported$"
check_eq "internal snapshots refused" \
    "$(at s smsg strata-img snapshot -c sn plain.qcow2)" \
    "$(at q qmsg qemu-img snapshot -c sn plain.qcow2)"
for o in compat=0.10,data_file=x.raw data_file_raw=on \
    data_file=y.raw,data_file_raw=on,backing_file=base.qcow2; do
    check_eq "create -o $o refused" \
        "$(at s smsg strata-img create -q -f qcow2 -o $o e.qcow2 $S)" \
        "$(at q qmsg qemu-img create -q -f qcow2 -o $o e.qcow2 $S)"
done
check "nothing created by the refused creates" \
    test ! -e s/e.qcow2 -a ! -e s/x.raw -a ! -e s/y.raw
mv s/plain.raw s/gone.raw
check_eq "info does not open the data file (as qemu-img's)" \
    "$(at s strata-img info --output=json plain.qcow2 2>&1)" \
    "$(at s qemu-img info --output=json plain.qcow2 2>&1)"
msg=$(at s smsg strata-io -c 'read 0 1' plain.qcow2)
check_match "missing data file: the error names it" "$msg" \
    "^strata-io: can't open device plain.qcow2: Could not open \
'plain.raw': No such file or directory$"
check "data-file= open option reads another data file" \
    at s strata-io -c 'read -P 0xab 0 100k' --image-opts \
    driver=qcow2,file.filename=plain.qcow2,data-file.filename=gone.raw
mv s/gone.raw s/plain.raw
check_eq "data-file= refused for an image without one" \
    "$(at s smsg strata-io -c 'read 0 1' --image-opts \
        driver=qcow2,file.filename=base.qcow2,data-file.filename=raw.raw)" \
    "$(at q qmsg qemu-io -c 'read 0 1' --image-opts \
        driver=qcow2,file.filename=base.qcow2,data-file.driver=file,$(
        )data-file.filename=raw.raw)"

# ---- hostile data file extensions: QEMU's errors, no crash ----
for v in 00000000 0000ffff; do
    cp s/plain.qcow2 s/h$v.qcow2
    poke s/h$v.qcow2 116 $v
    check_eq "data file extension of length 0x$v: qemu's error" \
        "$(at s smsg strata-io -c 'read 0 1' h$v.qcow2)" \
        "$(at s qmsg qemu-io -c 'read 0 1' h$v.qcow2)"
done
cp s/plain.qcow2 s/dir.qcow2
at s strata-img amend -o data_file=/ dir.qcow2
check_eq "a directory as data file: qemu's error" \
    "$(at s smsg strata-io -c 'read 0 1' dir.qcow2)" \
    "$(at s qmsg qemu-io -c 'read 0 1' dir.qcow2)"

# ---- amend ----
for a in "data_file=p2.raw base.qcow2" "data_file_raw=on plain.qcow2" \
    "data_file_raw=on base.qcow2"; do
    set -- $a
    check_eq "amend -o $1 on $2 refused" \
        "$(at s smsg strata-img amend -o $1 $2)" \
        "$(at q qmsg qemu-img amend -o $1 $2)"
done
cp s/plain.qcow2 s/am.qcow2
cp q/plain.qcow2 q/am.qcow2
cp s/raw.qcow2 s/ar.qcow2
cp q/raw.qcow2 q/ar.qcow2
at s strata-img amend -o data_file=plain.raw,data_file_raw=off am.qcow2
at q qemu-img amend -o data_file=plain.raw,data_file_raw=off am.qcow2
same "amend -o data_file renames as qemu-img does" s/am.qcow2 q/am.qcow2
at s strata-img amend -o data_file_raw=off ar.qcow2
at q qemu-img amend -o data_file_raw=off ar.qcow2
same "amend -o data_file_raw=off as qemu-img" s/ar.qcow2 q/ar.qcow2
ln -s plain.raw s/renamed.raw
ln -s plain.raw q/renamed.raw
at s strata-img amend -o data_file=renamed.raw am.qcow2
check_match "the new name in qemu-img info" \
    "$(at s qemu-img info -U am.qcow2 2>&1)" "data file: renamed.raw"
at s strata-img amend -o data_file= am.qcow2
check_eq "no name: 'data-file' is required" \
    "$(at s smsg strata-io -c 'read 0 1' am.qcow2)" \
    "$(at q qemu-img amend -o data_file= am.qcow2;
        at q qmsg qemu-io -c 'read 0 1' am.qcow2)"

# ---- resize and commit follow qemu-img ----
for d in s q; do
    if [ $d = s ]; then I=strata-img; else I=qemu-img; fi
    at $d $I create -q -f qcow2 -o data_file=rs.raw rs.qcow2 $S
    at $d qemu-io -c "write -P 7 0 $S" rs.qcow2 >/dev/null
    at $d $I resize -q rs.qcow2 3M
    at $d $I resize -q --shrink rs.qcow2 512k
    at $d $I create -q -f qcow2 -o \
        data_file=co.raw,backing_file=base.qcow2,backing_fmt=qcow2 co.qcow2
    at $d qemu-io -c 'write -P 6 64k 64k' co.qcow2 >/dev/null
    at $d $I commit -q co.qcow2
done
same "resize: image as qemu-img's" s/rs.qcow2 q/rs.qcow2
same "resize: the data file follows the size" s/rs.raw q/rs.raw
check "commit from a data-file overlay: base as qemu-img's" \
    at s qemu-img compare base.qcow2 ../q/base.qcow2
check "commit: the emptied overlay passes qemu-img check" \
    at s qemu-img check -q co.qcow2

# ---- the name is relative to the image's directory ----
mkdir sub
strata-img create -q -f qcow2 -o data_file=sub.raw sub/a.qcow2 $S
strata-io -c 'write -P 0x77 0 64k' sub/a.qcow2 >/dev/null
check "create -o data_file: the data file next to the image" test -s sub/sub.raw
check "opened from elsewhere: found next to the image" \
    strata-io -c 'read -P 0x77 0 64k' sub/a.qcow2
check "qemu-io reads it from the image's directory" \
    at sub qemu-io -c 'read -P 0x77 0 64k' a.qcow2

done_testing
