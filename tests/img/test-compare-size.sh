#!/usr/bin/env bash
# strata-img compare on images of different sizes: the larger image's
# extra area must read as zeroes ("Warning: Image size mismatch!"), and
# strict mode (-s) fails on the size alone.
. "$top_srcdir/tests/functions.sh"
requires strata-img
tmpdir
cd "$T"

run()
{
    rc=0
    strata-img "$@" >"$T/out.txt" 2>"$T/err.txt" || rc=$?
    out=$(cat "$T/out.txt")
    err=$(cat "$T/err.txt")
}

truncate -s 1M small.raw
truncate -s 2M big.raw
cp big.raw bigdata.raw
printf y | dd of=bigdata.raw bs=1 seek=1500000 conv=notrunc status=none
cp big.raw bigzero.raw
dd if=/dev/zero of=bigzero.raw bs=64k seek=20 count=2 conv=notrunc status=none
head -c 1M /dev/urandom >data1.raw
cp data1.raw data2.raw
truncate -s 3M data2.raw

plan 9

run compare small.raw big.raw
check_eq "a larger image with a zero tail is identical" "$rc:$out" \
    "0:Warning: Image size mismatch!
Images are identical."
run compare big.raw small.raw
check_eq "in either order" "$rc:$out" "0:Warning: Image size mismatch!
Images are identical."
run compare small.raw bigzero.raw
check_eq "written zeroes in the tail are still zeroes" "$rc:$out" \
    "0:Warning: Image size mismatch!
Images are identical."
run compare small.raw bigdata.raw
check_eq "data in the tail is a mismatch at its sector" "$rc:$out" \
    "1:Warning: Image size mismatch!
Content mismatch at offset 1499648!"
run compare bigdata.raw small.raw
check_eq "data in the tail of the first image" "$rc:$out" \
    "1:Warning: Image size mismatch!
Content mismatch at offset 1499648!"
run compare data1.raw data2.raw
check_eq "same data, zero tail" "$rc:$out" "0:Warning: Image size mismatch!
Images are identical."

run compare -s small.raw big.raw
check_eq "strict mode fails on the size" "$rc:$out" \
    "1:Strict mode: Image size mismatch!"
run compare -s -q small.raw big.raw
check_eq "strict and quiet" "$rc:$out" "1:"
run compare -q small.raw bigdata.raw
check_eq "quiet hides the warning too" "$rc:$out" "1:"

done_testing
