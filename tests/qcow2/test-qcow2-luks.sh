#!/usr/bin/env bash
# LUKS-encrypted qcow2 against QEMU: images qemu-img creates and qemu-io
# writes read back identically in strata; images strata creates and writes
# read back identically in qemu-io and pass qemu-img check; `info` shows the
# same "encrypt" block as qemu-img; a missing or wrong secret gives QEMU's
# messages; compressed writes into an encrypted image are refused (they
# would store plaintext).  encrypt.iter-time=10 keeps PBKDF2 short.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/qcow2/qcow2-helpers.sh"
requires qemu-img qemu-io strata-img strata-io python3
requires_config HAVE_OPENSSL
tmpdir
cd "$T"
plan 40

S=(--object secret,id=sec0,data=s3cret)
LUKS=encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10
opts() { echo "driver=qcow2,file.filename=$1,encrypt.key-secret=sec0"; }
# strata-io with --object (QEMU's spelling) if this build has it
sio_objects=no
if strata-io "${S[@]}" -c "help" >/dev/null 2>&1; then
    sio_objects=yes
fi

# the expected content: random runs over zeroes, 4 MiB
python3 - <<'EOF'
import random
r = random.Random(7)
buf = bytearray(4 << 20)
for _ in range(30):
    off = r.randrange(0, (4 << 20) - 70000)
    n = r.randrange(1, 70000)
    buf[off:off + n] = bytes(r.randrange(256) for _ in range(n))
open("ref.raw", "wb").write(buf)
EOF

# ---- QEMU writes, strata reads ----
for _ in 1 2 3; do # see below: qemu-img's benchmark can fail when busy
    qemu-img create -q -f qcow2 "${S[@]}" -o "$LUKS" q.qcow2 4M 2>/dev/null &&
        break
done
qemu-img convert -n "${S[@]}" --target-image-opts ref.raw "$(opts q.qcow2)"
qemu-io "${S[@]}" --image-opts -c "write -P 0xa5 1000448 3584" \
    -c "write -z 3M 64k" "$(opts q.qcow2)" >/dev/null
qemu-img convert "${S[@]}" --image-opts "$(opts q.qcow2)" -O raw qref.raw
check "qemu-written image: strata-img compare with QEMU's own read" \
    strata-img compare "${S[@]}" --image-opts "$(opts q.qcow2)" \
    "driver=raw,file.filename=qref.raw"
check "qemu-written image: strata-img convert to raw is identical" \
    sh -c "strata-img convert ${S[*]} --image-opts '$(opts q.qcow2)' \
           -O raw s.raw && cmp s.raw qref.raw"
check_eq "info: the same format-specific block (encrypt) as qemu-img" \
    "$(strata-img info "${S[@]}" --image-opts "$(opts q.qcow2)" |
       sed -n '/^Format specific/,$p')" \
    "$(qemu-img info "${S[@]}" --image-opts "$(opts q.qcow2)" |
       sed -n '/^Format specific/,$p')"
check_eq "info --output=json: the same format-specific object" \
    "$(strata-img info --output=json "${S[@]}" --image-opts \
       "$(opts q.qcow2)" | sed -n '/"format-specific"/,/^    }/p')" \
    "$(qemu-img info --output=json "${S[@]}" --image-opts \
       "$(opts q.qcow2)" | sed -n '/"format-specific"/,/^    }/p')"

check "convert -O qcow2 -o encrypt.*: the new image is opened with the secret" \
    strata-img convert "${S[@]}" -O qcow2 -o "$LUKS" ref.raw cv.qcow2
check "  and holds the data" qemu-img compare "${S[@]}" \
    --image-opts "driver=raw,file.filename=ref.raw" "$(opts cv.qcow2)"
check_eq "info: whole text as qemu-img but the image name" \
    "$(strata-img info "${S[@]}" --image-opts "$(opts q.qcow2)" | sed 1d)" \
    "$(qemu-img info "${S[@]}" --image-opts "$(opts q.qcow2)" | sed 1d)"
check_eq "info --output=json: \"encrypted\": true as qemu-img" \
    "$(strata-img info --output=json "${S[@]}" --image-opts \
       "$(opts q.qcow2)" | grep encrypted)" \
    "$(qemu-img info --output=json "${S[@]}" --image-opts \
       "$(opts q.qcow2)" | grep encrypted)"

check_eq "map --output=json as qemu-img (no host offsets: encrypted)" \
    "$(strata-img map --output=json "${S[@]}" --image-opts "$(opts q.qcow2)")" \
    "$(qemu-img map --output=json "${S[@]}" --image-opts "$(opts q.qcow2)")"

# ---- errors ----
# info needs no key (it reads no data), as qemu-img info
check_eq "info without the secret: the text of qemu-img info" \
    "$(strata-img info q.qcow2 2>&1)" "$(qemu-img info q.qcow2 2>&1)"
check_eq "info --output=json without the secret: qemu-img's document" \
    "$(strata-img info --output=json q.qcow2 2>&1)" \
    "$(qemu-img info --output=json q.qcow2 2>&1)"
check_eq "info with a wrong secret: not checked, as qemu-img info" \
    "$(strata-img info --object secret,id=sec0,data=wrong --image-opts \
       "$(opts q.qcow2)" 2>&1 | sed 1d)" \
    "$(qemu-img info --object secret,id=sec0,data=wrong --image-opts \
       "$(opts q.qcow2)" 2>&1 | sed 1d)"
_run strata-img map q.qcow2
check_eq "no secret, reading data (map): QEMU's message" "$(tail -1 "$_out")" \
    "strata-img: Could not open 'q.qcow2': Parameter 'encrypt.key-secret' \
is required for cipher"
_run strata-img compare --object secret,id=sec0,data=wrong --image-opts \
    "$(opts q.qcow2)" "driver=raw,file.filename=qref.raw"
check_match "wrong password: QEMU's message" "$(cat "$_out")" \
    "Invalid password, cannot unlock any keyslot"
check_fail "a secret id that was not defined fails" \
    strata-img map --object secret,id=other,data=x --image-opts \
    "$(opts q.qcow2)"
# hostile headers (QEMU's layout: the extension first, at 0x70)
cp q.qcow2 h1.qcow2
poke h1.qcow2 "$((16#$(peek q.qcow2 120 8)))" 00
_run strata-img info "${S[@]}" --image-opts "$(opts h1.qcow2)"
check_match "damaged LUKS magic: clear error" "$(cat "$_out")" \
    "Volume is not in LUKS format"
cp q.qcow2 h2.qcow2
poke h2.qcow2 128 7fffffffffff0000
_run strata-img info "${S[@]}" --image-opts "$(opts h2.qcow2)"
check_match "LUKS header length past the end of file: clear error" \
    "$(cat "$_out")" "Invalid encryption header length"
check_fail "create without the secret fails" \
    strata-img create -q -f qcow2 -o encrypt.format=luks nosec.qcow2 1M

# ---- strata creates and writes, QEMU reads ----
check "strata-img create luks (iter-time=10)" \
    strata-img create -q -f qcow2 "${S[@]}" -o "$LUKS" s.qcow2 4M
qcheck_s() { qemu-img check -q "${S[@]}" --image-opts "$(opts "$1")"; }
check "strata-created: qemu-img check" qcheck_s s.qcow2
check "strata convert -n into it" \
    strata-img convert -n "${S[@]}" --target-image-opts ref.raw \
    "$(opts s.qcow2)"
check "strata-written: qemu-img compare with the source" \
    qemu-img compare "${S[@]}" --image-opts "$(opts s.qcow2)" \
    "driver=raw,file.filename=ref.raw"
check "strata-written: qemu-img check" qcheck_s s.qcow2
check_match "strata-created: qemu-img info reads the LUKS header" \
    "$(qemu-img info "${S[@]}" --image-opts "$(opts s.qcow2)")" \
    "cipher alg: aes-256"

# partial writes: copy-on-write in encrypted clusters, unaligned requests
if [ $sio_objects = yes ]; then
    check "strata-io partial and unaligned writes" \
        strata-io -q "${S[@]}" --image-opts -c "write -P 1 0 1M" \
        -c "write -P 2 1000448 3584" -c "write -P 3 2560 1536" \
        -c "write -P 4 700 300" -c "write -z 2M 64k" \
        -c "write -P 5 3M 1024" "$(opts s.qcow2)"
    reads=(-c "read -P 1 0 700" -c "read -P 4 700 300"
           -c "read -P 1 1000 1560" -c "read -P 3 2560 1536"
           -c "read -P 1 4096 996352" -c "read -P 2 1000448 3584"
           -c "read -P 1 1004032 44544" -c "read -P 0 2M 64k"
           -c "read -P 5 3M 1024")
    check "qemu-io reads strata's partial writes" \
        sh -c 'out=$(qemu-io "$@" 2>&1); echo "$out";
               ! echo "$out" | grep -q -i "fail"' x "${S[@]}" --image-opts \
        -r "${reads[@]}" "$(opts s.qcow2)"
    qemu-io "${S[@]}" --image-opts -c "write -P 6 513 1000" \
        "$(opts s.qcow2)" >/dev/null
    check "strata-io reads qemu-io's unaligned write" \
        strata-io -q -r "${S[@]}" --image-opts -c "read -P 6 513 1000" \
        -c "read -P 1 0 513" -c "read -P 1 1513 1047" "$(opts s.qcow2)"
else
    skip "strata-io partial and unaligned writes" "strata-io lacks --object"
    skip "qemu-io reads strata's partial writes" "strata-io lacks --object"
    skip "strata-io reads qemu-io's unaligned write" \
        "strata-io lacks --object"
fi
check "after partial writes: qemu-img check" qcheck_s s.qcow2

# ---- other ciphers, both directions ----
head -c 1M ref.raw >small.raw
for combo in "cipher-alg=aes-128,cipher-mode=xts" \
    "cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha256" \
    "cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=plain,hash-alg=sha1"; do
    o=$LUKS,$(echo "$combo" | sed 's/\([a-z0-9-]*=\)/encrypt.\1/g')
    rm -f m1.qcow2 m2.qcow2
    # qemu-img's iteration benchmark sometimes fails ("Unable to get
    # accurate CPU usage") on a busy machine: try again
    for _ in 1 2 3; do
        qemu-img create -q -f qcow2 "${S[@]}" -o "$o" m1.qcow2 1M \
            2>/dev/null && break
    done
    qemu-img convert -n "${S[@]}" --target-image-opts small.raw \
        "$(opts m1.qcow2)"
    check "$combo: strata reads QEMU's image" \
        strata-img compare "${S[@]}" --image-opts "$(opts m1.qcow2)" \
        "driver=raw,file.filename=small.raw"
    strata-img create -q -f qcow2 "${S[@]}" -o "$o" m2.qcow2 1M
    strata-img convert -n "${S[@]}" --target-image-opts small.raw \
        "$(opts m2.qcow2)"
    check "$combo: QEMU reads strata's image" \
        qemu-img compare "${S[@]}" --image-opts "$(opts m2.qcow2)" \
        "driver=raw,file.filename=small.raw"
done

check_eq "check counts the LUKS header's clusters (as qemu-img check)" \
    "$(strata-img check "${S[@]}" --image-opts "$(opts s.qcow2)" 2>&1)" \
    "$(qemu-img check "${S[@]}" --image-opts "$(opts s.qcow2)" 2>&1)"
check "check -r all leaves the key material alone" \
    sh -c "strata-img check -q -r all ${S[*]} --image-opts '$(opts s.qcow2)' &&
           qemu-img check -q ${S[*]} --image-opts '$(opts s.qcow2)'"
check "lazy_refcounts with LUKS: created, written, qemu-img check clean" \
    sh -c "strata-img create -q -f qcow2 ${S[*]} \
             -o $LUKS,lazy_refcounts=on lz.qcow2 4M &&
           strata-img convert -n ${S[*]} --target-image-opts ref.raw \
             '$(opts lz.qcow2)' &&
           qemu-img check -q ${S[*]} --image-opts '$(opts lz.qcow2)' &&
           qemu-img compare -q ${S[*]} --image-opts '$(opts lz.qcow2)' \
             driver=raw,file.filename=ref.raw"

# ---- convert out of an encrypted image, compression refused ----
check "convert encrypted -> plain qcow2 equals the source" \
    sh -c "strata-img convert ${S[*]} --image-opts '$(opts q.qcow2)' \
           -O qcow2 plain.qcow2 && qemu-img compare plain.qcow2 qref.raw"
strata-img create -q -f qcow2 "${S[@]}" -o "$LUKS" c.qcow2 4M
check_fail "compressed writes into an encrypted image are refused" \
    strata-img convert -c -n "${S[@]}" --target-image-opts ref.raw \
    "$(opts c.qcow2)"
check "... and leave it valid for qemu-img check" qcheck_s c.qcow2

done_testing
