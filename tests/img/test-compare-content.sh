#!/usr/bin/env bash
# strata-img compare on images of the same size: identical images,
# qemu-img's mismatch offsets (rounded down to the 512-byte sector),
# holes against written zeroes, -q, -p and the exit statuses 0 and 1.
. "$top_srcdir/tests/functions.sh"
requires strata-img
tmpdir
cd "$T"

# run ARGS...: stdout in $out, stderr in $err, status in $rc.
run()
{
    rc=0
    strata-img "$@" >"$T/out.txt" 2>"$T/err.txt" || rc=$?
    out=$(cat "$T/out.txt")
    err=$(cat "$T/err.txt")
}

# poke FILE OFFSET BYTE: write one byte.
poke()
{
    printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

truncate -s 1M hole.raw
truncate -s 1M b.raw
poke b.raw 1000 x
cp b.raw c.raw
truncate -s 1M zeroes.raw
dd if=/dev/zero of=zeroes.raw bs=64k count=4 conv=notrunc status=none
head -c 5M /dev/urandom >r1.raw
cp r1.raw r2.raw
poke r2.raw 4000000 z
cp r1.raw r3.raw
poke r3.raw 5242879 '\001'

plan 16

run compare hole.raw hole.raw
check_eq "an image equals itself" "$rc:$out" "0:Images are identical."
run compare b.raw c.raw
check_eq "copies are identical" "$rc:$out" "0:Images are identical."
run compare hole.raw zeroes.raw
check_eq "a hole equals written zeroes" "$rc:$out" "0:Images are identical."
run compare hole.raw b.raw
check_eq "a byte in a sector: its sector is reported" "$rc:$out" \
    "1:Content mismatch at offset 512!"
run compare b.raw hole.raw
check_eq "the other way round" "$rc:$out" "1:Content mismatch at offset 512!"
run compare r1.raw r2.raw
check_eq "a difference in data" "$rc:$out" \
    "1:Content mismatch at offset 3999744!"
run compare r1.raw r3.raw
check_eq "a difference in the last byte" "$rc:$out" \
    "1:Content mismatch at offset 5242368!"
run compare r1.raw r1.raw
check_eq "large data equals itself" "$rc:$out" "0:Images are identical."
run compare -f raw -F raw r1.raw r2.raw
check_eq "-f and -F" "$rc:$out" "1:Content mismatch at offset 3999744!"
check_eq "nothing on stderr for a mismatch" "$err" ""

run compare -q r1.raw r2.raw
check_eq "-q: status only" "$rc:$out" "1:"
run compare -q r1.raw r1.raw
check_eq "-q identical" "$rc:$out" "0:"

run compare -p hole.raw hole.raw
# The bar as qemu-img draws it: at 0 and 100 %, a final newline.
bar=$(printf '    (0.00/100%%)\r    (100.00/100%%)\rImages are identical.\n\n' |
      od -An -c)
check_eq "-p draws qemu-img's progress on stdout" \
    "$rc:$(od -An -c <"$T/out.txt")" "0:$bar"
run compare -p -q r1.raw r2.raw
check_eq "-q silences -p" "$rc:$out" "1:"

if dd if=/dev/zero of=direct.test bs=4k count=1 oflag=direct status=none \
    2>/dev/null; then
    run compare -T none r1.raw r2.raw
    check_eq "-T none (O_DIRECT) compares the same" "$rc:$out" \
        "1:Content mismatch at offset 3999744!"
else
    skip "-T none (O_DIRECT) compares the same" "no O_DIRECT in $T"
fi
run compare -U --image-opts driver=raw,file.filename=b.raw driver=raw,file.filename=c.raw
check_eq "--image-opts and -U" "$rc:$out" "0:Images are identical."

done_testing
