#!/usr/bin/env bash
# Legacy AES-encrypted qcow2 (crypt_method 1): qemu-img 7.2 still creates
# them (encrypt.format=aes); strata reads them identically with the secret,
# shows the same info, converts them to LUKS, and refuses to create or
# write them.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/qcow2/qcow2-helpers.sh"
requires qemu-img qemu-io strata-img strata-io
requires_config HAVE_OPENSSL
tmpdir
cd "$T"
plan 11

S=(--object secret,id=sec0,data=pass)
opts() { echo "driver=qcow2,file.filename=$1,encrypt.key-secret=sec0"; }
sio_objects=no
if strata-io "${S[@]}" -c "help" >/dev/null 2>&1; then
    sio_objects=yes
fi

qemu-img create -q -f qcow2 "${S[@]}" \
    -o encrypt.format=aes,encrypt.key-secret=sec0 a.qcow2 2M 2>/dev/null ||
    skip_all "qemu-img cannot create AES-encrypted qcow2 images"
qemu-io "${S[@]}" --image-opts -c "write -P 0x11 0 100k" \
    -c "write -P 0x22 70000 5000" -c "write -P 0x33 1M 512" \
    -c "write -z 1536k 64k" "$(opts a.qcow2)" >/dev/null
qemu-img convert "${S[@]}" --image-opts "$(opts a.qcow2)" -O raw qref.raw

check "AES image: strata-img convert to raw equals QEMU's read" \
    sh -c "strata-img convert ${S[*]} --image-opts '$(opts a.qcow2)' \
           -O raw s.raw && cmp s.raw qref.raw"
check "AES image: strata-img compare with QEMU's read" \
    strata-img compare "${S[@]}" --image-opts "$(opts a.qcow2)" \
    "driver=raw,file.filename=qref.raw"
if [ $sio_objects = yes ]; then
    check "AES image: strata-io -r reads the patterns" \
        strata-io -q -r "${S[@]}" --image-opts -c "read -P 0x11 0 70000" \
        -c "read -P 0x22 70000 5000" -c "read -P 0x11 75000 27400" \
        -c "read -P 0x33 1M 512" -c "read -P 0 1536k 64k" "$(opts a.qcow2)"
else
    skip "AES image: strata-io -r reads the patterns" \
        "strata-io lacks --object"
fi
check_eq "info: the same format-specific block as qemu-img" \
    "$(strata-img info "${S[@]}" --image-opts "$(opts a.qcow2)" |
       sed -n '/^Format specific/,$p')" \
    "$(qemu-img info "${S[@]}" --image-opts "$(opts a.qcow2)" |
       sed -n '/^Format specific/,$p')"
check_eq "info without the secret: the text of qemu-img info" \
    "$(strata-img info a.qcow2 2>&1)" "$(qemu-img info a.qcow2 2>&1)"
_run strata-img compare a.qcow2 qref.raw
check_match "no secret, reading data: QEMU's message" "$(cat "$_out")" \
    "Parameter 'encrypt.key-secret' is required for cipher"

_run strata-img convert -n "${S[@]}" --target-image-opts qref.raw \
    "$(opts a.qcow2)"
check_match "writing an AES image is refused with a clear message" \
    "$(cat "$_out")" "AES-CBC encrypted qcow2 images is no longer supported"
check_fail "creating an AES image is refused (encrypt.format=aes)" \
    strata-img create -q -f qcow2 "${S[@]}" \
    -o encrypt.format=aes,encrypt.key-secret=sec0 new.qcow2 1M
check_fail "creating an AES image is refused (encryption=on)" \
    strata-img create -q -f qcow2 "${S[@]}" \
    -o encryption=on,encrypt.key-secret=sec0 new.qcow2 1M

# AES -> LUKS
strata-img create -q -f qcow2 "${S[@]}" \
    -o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10 \
    l.qcow2 2M
check "convert AES -> LUKS qcow2" \
    strata-img convert -n "${S[@]}" --image-opts "$(opts a.qcow2)" \
    --target-image-opts "$(opts l.qcow2)"
check "the LUKS copy equals the AES original in qemu-img compare" \
    qemu-img compare "${S[@]}" --image-opts "$(opts l.qcow2)" \
    "driver=raw,file.filename=qref.raw"

done_testing
