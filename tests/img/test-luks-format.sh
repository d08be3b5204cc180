#!/usr/bin/env bash
# The luks format (LUKS1 volumes, QEMU's -f luks) against qemu-img/qemu-io:
# create (Formatting line, -o help, the file's allocation), probing, info
# without the key (text and JSON), data written by either tool read back
# by the other, convert to and from luks, map, measure, resize, and the
# messages for a missing secret or a wrong password.
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io strata-img
requires_config HAVE_OPENSSL
tmpdir
cd "$T"

plan 30

O=(--object secret,id=s0,data=pass0)
opts() { echo "driver=luks,file.filename=$1,key-secret=s0"; }

same_as_qemu_img "create -o help" create -f luks -o help
same_as_qemu_img "create: the Formatting line" \
    create -f luks "${O[@]}" -o key-secret=s0,iter-time=10 new.luks 4M
rm -f new.luks
strata-img create -q -f luks "${O[@]}" -o key-secret=s0,iter-time=10 s.luks 4M
qemu-img create -q -f luks "${O[@]}" -o key-secret=s0,iter-time=10 q.luks 4M
check_eq "create: the same file size as qemu-img" "$(file_size s.luks)" \
    "$(file_size q.luks)"
check_eq "create: the same allocated extents (inactive key slots are holes)" \
    "$(qemu-img map --output=json -f raw s.luks)" \
    "$(qemu-img map --output=json -f raw q.luks)"
check_match "qemu-img info reads strata's header" \
    "$(qemu-img info s.luks)" "file format: luks"

same_as_qemu_img "info without the secret (qemu-img's image)" info q.luks
same_as_qemu_img "info --output=json without the secret (strata's image)" \
    info --output=json s.luks
# (qemu-img names an image opened with a key-secret by its json: name)
check_eq "info with a wrong secret: not checked" \
    "$(strata-img info --object secret,id=s0,data=wrong \
       --image-opts "$(opts q.luks)" 2>&1 | sed 1d)" \
    "$(qemu-img info --object secret,id=s0,data=wrong \
       --image-opts "$(opts q.luks)" 2>&1 | sed 1d)"

# data both ways
qemu-img create -q -f raw pat.raw 4M
qemu-io -f raw -c "write -P 0x11 0 64k" -c "write -P 0x22 1M 4k" \
    -c "write -P 0x33 4190208 4096" pat.raw >/dev/null
check "convert raw -> a strata luks image (-n)" \
    strata-img convert -n "${O[@]}" -f raw pat.raw --target-image-opts \
    "$(opts s.luks)"
check "qemu-img compare reads it" \
    qemu-img compare "${O[@]}" --image-opts "$(opts s.luks)" \
    "driver=raw,file.filename=pat.raw"
qemu-io "${O[@]}" --image-opts "$(opts q.luks)" \
    -c "write -P 0x44 0 128k" -c "write -P 0x55 3M 512" >/dev/null
qemu-img convert "${O[@]}" --image-opts "$(opts q.luks)" -O raw q.raw
check "strata-img reads what qemu-io wrote" \
    strata-img compare "${O[@]}" --image-opts "$(opts q.luks)" \
    "driver=raw,file.filename=q.raw"
check "strata-img convert luks -> raw equals qemu-img's" \
    sh -c "strata-img convert --object secret,id=s0,data=pass0 \
           --image-opts '$(opts q.luks)' -O raw s.raw && cmp s.raw q.raw"
check "convert -O luks" \
    strata-img convert "${O[@]}" -O luks -o key-secret=s0,iter-time=10 \
    pat.raw c.luks
check "qemu-img compare: the luks copy equals its source" \
    qemu-img compare "${O[@]}" --image-opts "$(opts c.luks)" \
    "driver=raw,file.filename=pat.raw"
same_as_qemu_img "map --output=json" map --output=json "${O[@]}" \
    --image-opts "$(opts c.luks)"

# measure, as qemu-img computes it for luks
same_as_qemu_img "measure --size" measure "${O[@]}" -O luks -o key-secret=s0 \
    --size 1G
same_as_qemu_img "measure aes-128-cbc --output=json" measure --output=json \
    "${O[@]}" -O luks -o key-secret=s0,cipher-alg=aes-128,cipher-mode=cbc \
    --size 1000
same_as_qemu_img "measure of an image" measure "${O[@]}" -O luks \
    -o key-secret=s0 pat.raw
same_as_qemu_img "measure names an undefined secret: refused as by qemu-img" \
    measure -O luks -o key-secret=nosuch --size 1G

check "resize grows the volume" \
    strata-img resize -q "${O[@]}" --image-opts "$(opts c.luks)" 8M
check "qemu-io reads the old data and the size after the resize" \
    sh -c "qemu-io --object secret,id=s0,data=pass0 \
           --image-opts '$(opts c.luks)' -c 'read -P 0x22 1M 4k' \
           -c 'length' | grep -q '^8 MiB'"

# key slots
O2=(--object secret,id=s0,data=pass0 --object secret,id=s1,data=pass1)
same_as_qemu_img "amend -o help" amend -f luks -o help
check "amend adds a key slot (new-secret)" \
    strata-img amend "${O2[@]}" -o state=active,new-secret=s1,iter-time=10 \
    --image-opts "$(opts c.luks)"
check "qemu-io opens the volume with the new password" \
    qemu-io --object secret,id=s1,data=pass1 \
    --image-opts "driver=luks,file.filename=c.luks,key-secret=s1" \
    -c "read -P 0x22 1M 4k"
check "amend erases key slot 0 (opened with the new password)" \
    strata-img amend "${O2[@]}" -o state=inactive,keyslot=0 \
    --image-opts "driver=luks,file.filename=c.luks,key-secret=s1"
_run qemu-io "${O[@]}" --image-opts "$(opts c.luks)" -c "read 0 4k"
check_match "qemu-io: the old password opens nothing now" "$(cat "$_out")" \
    "Invalid password, cannot unlock any keyslot"
cp c.luks c2.luks
same_as_qemu_img "erasing the last key slot is refused as by qemu-img" \
    amend "${O2[@]}" -o state=inactive,keyslot=1 \
    --image-opts "driver=luks,file.filename=c2.luks,key-secret=s1"

# errors
same_as_qemu_img "no secret for reading data: QEMU's message" compare c.luks pat.raw
_run strata-img compare --object secret,id=s0,data=wrong --image-opts \
    "$(opts c.luks)" "driver=raw,file.filename=pat.raw"
check_match "a wrong password: QEMU's message" "$(cat "$_out")" \
    "Invalid password, cannot unlock any keyslot"
printf 'LUKS\272\276\0\1garbage' >bad.luks
truncate -s 1M bad.luks
_run strata-img info bad.luks
check_match "a damaged header: a clear error, no crash" "$(cat "$_out")" \
    "Could not open 'bad.luks'"
done_testing
