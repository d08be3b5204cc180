#!/usr/bin/env bash
# strata-img compare -s: besides the content, the allocation status of
# both images must agree; qemu-img's message names the first offset
# where it does not.
. "$top_srcdir/tests/functions.sh"
requires strata-img
tmpdir
cd "$T"

truncate -s 1M sparse.raw
[ "$(stat -c %b sparse.raw)" = 0 ] ||
    skip_all "the file system of $T does not keep holes"

run()
{
    rc=0
    strata-img "$@" >"$T/out.txt" 2>"$T/err.txt" || rc=$?
    out=$(cat "$T/out.txt")
}

truncate -s 1M a.raw
truncate -s 1M zeroes.raw
dd if=/dev/zero of=zeroes.raw bs=4k count=1 conv=notrunc status=none
truncate -s 1M late.raw
dd if=/dev/zero of=late.raw bs=64k seek=4 count=1 conv=notrunc status=none
head -c 64k /dev/urandom >head1.raw
truncate -s 1M head1.raw
cp head1.raw head2.raw
dd if=/dev/zero of=head1.raw bs=64k seek=4 count=1 conv=notrunc status=none
head -c 1M /dev/urandom >d1.raw
cp d1.raw d2.raw

plan 7

run compare -s a.raw sparse.raw
check_eq "two sparse images" "$rc:$out" "0:Images are identical."
run compare -s d1.raw d2.raw
check_eq "two data images" "$rc:$out" "0:Images are identical."
run compare a.raw zeroes.raw
check_eq "without -s, written zeroes equal a hole" "$rc:$out" \
    "0:Images are identical."
run compare -s a.raw zeroes.raw
check_eq "with -s, they differ at offset 0" "$rc:$out" \
    "1:Strict mode: Offset 0 block status mismatch!"
# As in qemu-img, an extent reaching the end of one image but not of the
# other already counts as a different status.
run compare -s late.raw a.raw
check_eq "a hole up to the end differs from a shorter hole" "$rc:$out" \
    "1:Strict mode: Offset 0 block status mismatch!"
run compare -s head1.raw head2.raw
check_eq "the first differing extent is named" "$rc:$out" \
    "1:Strict mode: Offset 65536 block status mismatch!"
run compare -s -q late.raw a.raw
check_eq "-q hides the message" "$rc:$out" "1:"

done_testing
