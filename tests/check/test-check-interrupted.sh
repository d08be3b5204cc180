#!/usr/bin/env bash
# A write killed half way (the fault filter's kill-write) leaves leaked
# clusters: strata-img check finds what qemu-img check finds, -r leaks
# frees them, and the data written before stays intact.  A lazy-refcounts
# image left dirty by a killed qemu-io, and an image with the corrupt bit
# set, are checked and repaired as qemu-img does (check opens them without
# the repair on open, and read-write despite the corrupt bit).
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io python3
tmpdir
. "$top_srcdir/tests/check/check-lib.sh"

cd "$T"
qemu-img create -q -f qcow2 good.qcow2 16M
qemu-io -c "write -P 0x11 0 1M" good.qcow2 >/dev/null

# Kill the Nth write of a writer for growing N until the image leaks (the
# refcounts reached the disk, the L2 entry did not).
found=
for n in 1 2 3 4 5 6 7 8; do
    cp good.qcow2 k.qcow2
    # (in a subshell: the shell's "Killed" report goes nowhere)
    (strata-io --image-opts \
        "driver=qcow2,file.driver=fault,file.file.filename=k.qcow2,file.kill-write=$n" \
        -c "write -P 0x22 4M 128k" -c "write -P 0x33 8M 64k" \
        >/dev/null 2>&1) 2>/dev/null || true
    qrc=0
    qemu-img check -q k.qcow2 >/dev/null 2>&1 || qrc=$?
    if [ "$qrc" = 3 ]; then
        found=$n
        break
    fi
done
plan 13
if [ -z "$found" ]; then
    not_ok "an interrupted write leaked clusters"
    done_testing
fi
ok "killing write $found leaked clusters"
same_check "check of the interrupted image" k.qcow2
check_eq "leaks only: exit 3" "$rc" 3
same_check "check --output=json" k.qcow2 --output=json
same_check "check -r leaks" k.qcow2 -r leaks
check "qemu-img check finds the repaired image clean" \
    qemu-img check -q "$CMP_S"
check "the data written before is intact" \
    qemu-io -c "read -P 0x11 0 1M" "$CMP_S"

qemu-img create -q -f qcow2 -o lazy_refcounts=on dirty.qcow2 16M
(qemu-io -c "write -P 0x44 0 1M" -c "write 4M 64k" -c abort dirty.qcow2 \
    >/dev/null 2>&1) 2>/dev/null || true
same_check "dirty image: check" dirty.qcow2
same_check "dirty image: check -r all" dirty.qcow2 -r all
check "dirty image: repaired, data intact" \
    qemu-io -c "read -P 0x44 0 1M" "$CMP_S"

cp good.qcow2 corrupt.qcow2
printf '\0\0\0\0\0\0\0\2' |
    dd of=corrupt.qcow2 bs=1 seek=72 conv=notrunc status=none
same_check "corrupt bit: check" corrupt.qcow2
same_check "corrupt bit: check -r all" corrupt.qcow2 -r all
check_eq "corrupt bit: cleared by the repair" \
    "$(od -An -tx1 -j72 -N8 "$CMP_S" | tr -d ' ')" 0000000000000000
done_testing
