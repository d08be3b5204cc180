#!/usr/bin/env bash
# strata-img amend on the LUKS keyslots of encrypted qcow2, against qemu-img
# 7.2: a slot strata adds opens the image in qemu-img and qemu-io; a slot
# strata erases no longer opens it in either tool (and its key material is
# overwritten); slots qemu-img adds or erases behave the same in strata;
# `info` shows the slots as qemu-img does after each step; every refusal
# (wrong or missing secret, no free slot, slot out of range, state missing,
# the last slot without --force, no encryption...) has qemu-img's message
# and exit code.  encrypt.iter-time=10 keeps PBKDF2 short.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/qcow2/qcow2-helpers.sh"
requires qemu-img qemu-io strata-img python3
requires_config HAVE_OPENSSL
tmpdir
cd "$T"
plan 74

S=(--object secret,id=s0,data=pass0 --object secret,id=s1,data=pass1
   --object secret,id=s2,data=pass2 --object secret,id=empty,data=)
IT=encrypt.iter-time=10
opts() { echo "driver=qcow2,file.filename=$1,encrypt.key-secret=$2"; }

# qemu-img's PBKDF2 benchmark sometimes fails on a busy machine ("Unable to
# get accurate CPU usage") before anything is written: try again
qimg() {
    local i
    for i in 1 2 3; do
        qemu-img "$@" 2>qimg.err && return 0
        grep -q "accurate CPU" qimg.err || break
    done
    cat qimg.err >&2
    return 1
}

# amend_both NAME IMG ARGS...: amend copies of IMG as q/NAME and s/NAME
# ("@" in ARGS stands for the copy) with each tool; sets qout/sout to the
# message (tool name replaced) and exit status.
mkdir -p q s
amend_both() {
    local name=$1 img=$2 i
    shift 2
    cp "$img" "q/$name"
    cp "$img" "s/$name"
    local args=("${@//@/$name}")
    for i in 1 2 3; do
        qout=$(cd q && qemu-img amend "${args[@]}" 2>&1; echo "rc=$?")
        case $qout in *"accurate CPU"*) cp "$img" "q/$name" ;; *) break ;; esac
    done
    sout=$(cd s && strata-img amend "${args[@]}" 2>&1; echo "rc=$?")
    sout=${sout//strata-img/qemu-img}
}

# info_block TOOL IMG SECRET: the format-specific part of `info`.
info_block() {
    "$1" info "${S[@]}" --image-opts "$(opts "$2" "$3")" |
        sed -n '/^Format specific/,$p'
}
# slots TOOL IMG SECRET: the active flags of the 8 slots, e.g. "10000000".
slots() {
    "$1" info --output=json "${S[@]}" --image-opts "$(opts "$2" "$3")" |
        python3 -c 'import json,sys
d = json.load(sys.stdin)["format-specific"]["data"]["encrypt"]["slots"]
print("".join("1" if s["active"] else "0" for s in d))'
}
# luks_at IMG: file offset of the LUKS header inside the qcow2 file.
luks_at() {
    python3 -c 'import sys
print(open(sys.argv[1], "rb").read().find(b"LUKS\xba\xbe"))' "$1"
}
# active_in IMG: how many slots the raw LUKS header marks active.
active_in() {
    local at k n=0
    at=$(luks_at "$1")
    for k in 0 1 2 3 4 5 6 7; do
        [ "$(peek "$1" $((at + 208 + 48 * k)) 4)" = 00ac71f3 ] && n=$((n + 1))
    done
    echo $n
}

# ---- a QEMU image with data ----
python3 -c 'import random; r = random.Random(3)
open("ref.raw", "wb").write(r.getrandbits(8 << 20).to_bytes(1 << 20, "big"))'
qimg create -q -f qcow2 "${S[@]}" \
    -o encrypt.format=luks,encrypt.key-secret=s0,$IT base.qcow2 2M
qemu-img convert -n "${S[@]}" --target-image-opts ref.raw \
    "$(opts base.qcow2 s0)"
qemu-io "${S[@]}" --image-opts -c "write -P 0x5a 1M 64k" \
    "$(opts base.qcow2 s0)" >/dev/null
qemu-img convert "${S[@]}" --image-opts "$(opts base.qcow2 s0)" -O raw full.raw

# ---- strata adds a keyslot ----
cp base.qcow2 a.qcow2
check "strata-img amend adds a keyslot (new-secret s1)" \
    strata-img amend "${S[@]}" --image-opts "$(opts a.qcow2 s0)" \
    -o encrypt.state=active,encrypt.new-secret=s1,$IT
check_eq "info: slots 0 and 1 active" "$(slots qemu-img a.qcow2 s0)" 11000000
check_eq "info: the same encrypt block as qemu-img's" \
    "$(info_block strata-img a.qcow2 s1)" "$(info_block qemu-img a.qcow2 s1)"
check "qemu-img compare opens it with the new secret: data intact" \
    qemu-img compare "${S[@]}" --image-opts "$(opts a.qcow2 s1)" \
    "driver=raw,file.filename=full.raw"
check "qemu-io reads with the new secret" \
    qemu-io "${S[@]}" --image-opts -c "read -P 0x5a 1M 64k" \
    "$(opts a.qcow2 s1)"
check "the old secret still opens it in qemu-img" \
    qemu-img compare "${S[@]}" --image-opts "$(opts a.qcow2 s0)" \
    "driver=raw,file.filename=full.raw"
check "qemu-img check is clean after the amend" \
    qemu-img check -q "${S[@]}" --image-opts "$(opts a.qcow2 s1)"
check "strata-img amend adds keyslot 5 explicitly (s2)" \
    strata-img amend "${S[@]}" --image-opts "$(opts a.qcow2 s1)" \
    -o encrypt.state=active,encrypt.new-secret=s2,encrypt.keyslot=5,$IT
check_eq "info: slots 0, 1 and 5 active" "$(slots qemu-img a.qcow2 s2)" \
    11000100
check "qemu-io writes with the slot-5 secret, strata reads it with s0" \
    sh -c "qemu-io ${S[*]} --image-opts -c 'write -P 0x77 64k 4k' \
           '$(opts a.qcow2 s2)' >/dev/null &&
           strata-io -q ${S[*]} --image-opts -c 'read -P 0x77 64k 4k' \
           '$(opts a.qcow2 s0)'"
cp full.raw a.raw
python3 -c 'f = open("a.raw", "r+b"); f.seek(65536); f.write(b"\x77" * 4096)'

# ---- strata erases the old keyslot ----
at=$(luks_at a.qcow2)
peek a.qcow2 $((at + 4096)) 256000 >slot0.before
check "strata-img amend erases the slots of the old secret (old-secret s0)" \
    strata-img amend "${S[@]}" --image-opts "$(opts a.qcow2 s1)" \
    -o encrypt.state=inactive,encrypt.old-secret=s0
check_eq "info: slot 0 inactive" "$(slots qemu-img a.qcow2 s1)" 01000100
check_eq "info: the same encrypt block as qemu-img's" \
    "$(info_block strata-img a.qcow2 s1)" "$(info_block qemu-img a.qcow2 s1)"
peek a.qcow2 $((at + 4096)) 256000 >slot0.after
check "the erased slot's key material was overwritten" \
    sh -c "! cmp -s slot0.before slot0.after &&
           ! grep -qx '0*' slot0.after"
# (qemu-img info opens without unlocking: compare is what needs the key)
_run qemu-img compare "${S[@]}" --image-opts "$(opts a.qcow2 s0)" a.raw
qerr=$(sed "s/^qemu-img/TOOL/" "$_out")
check_match "the old secret fails in qemu-img" "$qerr" \
    "Invalid password, cannot unlock any keyslot"
_run strata-img compare "${S[@]}" --image-opts "$(opts a.qcow2 s0)" a.raw
check_eq "the old secret fails in strata-img with the same message" \
    "$(sed "s/^strata-img/TOOL/" "$_out")" "$qerr"
check_fail "the old secret fails in qemu-io" \
    qemu-io "${S[@]}" --image-opts -c "read 0 512" "$(opts a.qcow2 s0)"
check "the new secret works in qemu-img compare" \
    qemu-img compare "${S[@]}" --image-opts "$(opts a.qcow2 s1)" \
    "driver=raw,file.filename=a.raw"
check "strata-img erases keyslot 5 by index" \
    strata-img amend "${S[@]}" --image-opts "$(opts a.qcow2 s1)" \
    -o encrypt.state=inactive,encrypt.keyslot=5
check_eq "info: only slot 1 active" "$(slots strata-img a.qcow2 s1)" 01000000
check_fail "the slot-5 secret no longer opens it in qemu-io" \
    qemu-io "${S[@]}" --image-opts -c "read 0 512" "$(opts a.qcow2 s2)"
check "qemu-img check is clean" \
    qemu-img check -q "${S[@]}" --image-opts "$(opts a.qcow2 s1)"

# ---- qemu-img amends, strata opens ----
cp base.qcow2 b.qcow2
check "qemu-img amend adds keyslot 3 (s1)" \
    qimg amend "${S[@]}" --image-opts "$(opts b.qcow2 s0)" \
    -o encrypt.state=active,encrypt.new-secret=s1,encrypt.keyslot=3,$IT
check "strata opens qemu's new slot: compare with the data" \
    strata-img compare "${S[@]}" --image-opts "$(opts b.qcow2 s1)" \
    "driver=raw,file.filename=full.raw"
check_eq "strata-img info shows what qemu-img shows" \
    "$(info_block strata-img b.qcow2 s1)" "$(info_block qemu-img b.qcow2 s1)"
check "qemu-img amend erases keyslot 0" \
    qemu-img amend "${S[@]}" --image-opts "$(opts b.qcow2 s1)" \
    -o encrypt.state=inactive,encrypt.keyslot=0
_run strata-img compare "${S[@]}" --image-opts "$(opts b.qcow2 s0)" full.raw
check_match "strata refuses the secret qemu-img erased" "$(cat "$_out")" \
    "Invalid password, cannot unlock any keyslot"
check "strata-img erases by old-secret on qemu's image after adding s2" \
    sh -c "strata-img amend ${S[*]} --image-opts '$(opts b.qcow2 s1)' \
           -o encrypt.state=active,encrypt.new-secret=s2,$IT &&
           strata-img amend ${S[*]} --image-opts '$(opts b.qcow2 s2)' \
           -o encrypt.state=inactive,encrypt.old-secret=s1"
check_eq "info (qemu-img): only slot 0 active" \
    "$(slots qemu-img b.qcow2 s2)" 10000000
check "qemu-img compare with the remaining secret" \
    qemu-img compare "${S[@]}" --image-opts "$(opts b.qcow2 s2)" \
    "driver=raw,file.filename=full.raw"

# ---- other ciphers: strata creates and amends, qemu-io reads ----
# (not aes-192: qemu 7.2 cannot use its 96000-byte key material at all)
for c in aes-128:cbc:essiv:sha1 aes-256:cbc:plain64:sha512 \
         aes-128:xts:plain:sha256; do
    IFS=: read -r alg mode iv hash <<<"$c"
    rm -f c.qcow2
    strata-img create -q -f qcow2 "${S[@]}" -o encrypt.format=luks,$IT,\
encrypt.key-secret=s0,encrypt.cipher-alg=$alg,encrypt.cipher-mode=$mode,\
encrypt.ivgen-alg=$iv,encrypt.hash-alg=$hash c.qcow2 1M
    strata-io -q "${S[@]}" --image-opts -c "write -P 0x42 0 64k" \
        "$(opts c.qcow2 s0)"
    check "$c: qemu-io reads with the slot strata added" \
        sh -c "strata-img amend ${S[*]} --image-opts '$(opts c.qcow2 s0)' \
               -o encrypt.state=active,encrypt.new-secret=s1,$IT &&
               qemu-io ${S[*]} --image-opts -c 'read -P 0x42 0 64k' \
               '$(opts c.qcow2 s1)' | grep -q '^read 65536/65536'"
    strata-img amend "${S[@]}" --image-opts "$(opts c.qcow2 s1)" \
        -o encrypt.state=inactive,encrypt.keyslot=0
    check_fail "$c: after strata erased slot 0, its secret fails in qemu-io" \
        qemu-io "${S[@]}" --image-opts -c "read 0 512" "$(opts c.qcow2 s0)"
done

# ---- --force ----
amend_both f1.qcow2 base.qcow2 "${S[@]}" --image-opts "$(opts @ s0)" \
    -o encrypt.state=active,encrypt.new-secret=s1,encrypt.keyslot=0,$IT \
    --force
check_eq "--force overwrites the active slot: same outcome" "$sout" "$qout"
check "strata's overwritten slot 0 opens with s1 in qemu-img" \
    qemu-img compare "${S[@]}" --image-opts "$(opts s/f1.qcow2 s1)" \
    "driver=raw,file.filename=full.raw"
check_fail "and no longer with s0" \
    qemu-io "${S[@]}" --image-opts -c "read 0 512" "$(opts s/f1.qcow2 s0)"
amend_both f2.qcow2 base.qcow2 "${S[@]}" --image-opts "$(opts @ s0)" \
    -o encrypt.state=inactive,encrypt.keyslot=0 --force
check_eq "--force erases the last slot: same outcome" "$sout" "$qout"
check_eq "strata's header has no active slot left, qemu-img's neither" \
    "$(active_in s/f2.qcow2) $(active_in q/f2.qcow2)" "0 0"
_run qemu-img compare "${S[@]}" --image-opts "$(opts q/f2.qcow2 s0)" full.raw
qerr=$(sed "s/^qemu-img/TOOL/; s,q/f2,X," "$_out")
_run strata-img compare "${S[@]}" --image-opts "$(opts s/f2.qcow2 s0)" \
    full.raw
check_eq "neither tool opens it any more, same message" \
    "$(sed "s/^strata-img/TOOL/; s,s/f2,X," "$_out")" "$qerr"
amend_both f3.qcow2 base.qcow2 "${S[@]}" --image-opts "$(opts @ s0)" \
    -o encrypt.state=inactive,encrypt.keyslot=4 --force
check_eq "--force erases an inactive slot: same outcome" "$sout" "$qout"

# ---- every slot in use ----
cp base.qcow2 full.qcow2
for n in 1 2 3 4 5 6 7; do
    strata-img amend "${S[@]}" --image-opts "$(opts full.qcow2 s0)" \
        -o encrypt.state=active,encrypt.new-secret=s$((n % 3)),$IT
done
check_eq "seven adds fill the slots" "$(slots qemu-img full.qcow2 s2)" 11111111
check_eq "info of the full header: the same as qemu-img's" \
    "$(info_block strata-img full.qcow2 s1)" \
    "$(info_block qemu-img full.qcow2 s1)"
amend_both full.qcow2 full.qcow2 "${S[@]}" --image-opts "$(opts @ s0)" \
    -o encrypt.state=active,encrypt.new-secret=s1,$IT
check_eq "no free keyslot: qemu-img's message" "$sout" "$qout"
amend_both full2.qcow2 full.qcow2 "${S[@]}" --image-opts "$(opts @ s0)" \
    -o encrypt.state=inactive,encrypt.old-secret=s1
check_eq "erasing the 3 slots of one secret out of 8: same outcome" \
    "$sout" "$qout"
check_eq "slots 1, 4 and 7 (those of s1) are inactive now" \
    "$(slots qemu-img s/full2.qcow2 s0)" 10110110

# ---- a hostile header: slot 1's key material placed over slot 0's ----
cp base.qcow2 h.qcow2
poke h.qcow2 $(($(luks_at h.qcow2) + 208 + 48 + 40)) 00000008
# the LUKS area: header and key material up to the payload offset
luks_sum() { dd if=h.qcow2 bs=512 skip=$(($(luks_at h.qcow2) / 512)) \
             count=4040 status=none | cksum; }
sum=$(luks_sum)
_run strata-img amend "${S[@]}" --image-opts "$(opts h.qcow2 s0)" \
    -o encrypt.state=active,encrypt.new-secret=s1,$IT
check_match "adding into an overlapping slot is refused (QEMU's words)" \
    "$(cat "$_out")" "Keyslots 0 and 1 are overlapping in the header"
check_eq "and the LUKS header and key material are unchanged" \
    "$(luks_sum)" "$sum"

# ---- refusals: the same message and exit code ----
while read -r o; do
    amend_both e.qcow2 base.qcow2 "${S[@]}" --image-opts "$(opts @ s0)" \
        -o "$o"
    check_eq "error for -o $o" "$sout" "$qout"
done <<EOF
encrypt.new-secret=s1
encrypt.state=on,encrypt.new-secret=s1
encrypt.state=active
encrypt.state=active,encrypt.new-secret=nosuch
encrypt.state=active,encrypt.new-secret=s1,encrypt.old-secret=s0
encrypt.state=active,encrypt.new-secret=s1,encrypt.keyslot=8
encrypt.state=active,encrypt.new-secret=s1,encrypt.keyslot=0
encrypt.state=active,encrypt.new-secret=s1,encrypt.keyslot=x1
encrypt.state=inactive
encrypt.state=inactive,encrypt.keyslot=0
encrypt.state=inactive,encrypt.keyslot=2
encrypt.state=inactive,encrypt.keyslot=9
encrypt.state=inactive,encrypt.old-secret=s0
encrypt.state=inactive,encrypt.old-secret=s1
encrypt.state=inactive,encrypt.old-secret=nosuch
encrypt.state=inactive,encrypt.new-secret=s1
encrypt.state=inactive,encrypt.iter-time=10
encrypt.state=inactive,encrypt.keyslot=0,encrypt.old-secret=s1
encrypt.state=active,encrypt.new-secret=s1,encrypt.keyslot=18446744073709551615
encrypt.state=active,encrypt.new-secret=empty,compat=0.9
encrypt.foo=1
EOF
amend_both w.qcow2 base.qcow2 "${S[@]}" --image-opts "$(opts @ s1)" \
    -o encrypt.state=active,encrypt.new-secret=s2,$IT
check_eq "opening with a wrong secret: the same message" "$sout" "$qout"
amend_both w.qcow2 base.qcow2 "${S[@]}" \
    -o encrypt.state=active,encrypt.new-secret=s2,$IT @
check_eq "opening without a secret: the same message" "$sout" "$qout"
qemu-img create -q -f qcow2 plain.qcow2 1M
amend_both p.qcow2 plain.qcow2 "${S[@]}" \
    -o encrypt.state=active,encrypt.new-secret=s1 @
check_eq "an unencrypted image: the same message" "$sout" "$qout"

done_testing
