#!/usr/bin/env bash
# strata-img dd: qemu-img dd's semantics for bs, count and skip (skip is
# counted inside count), the output image it creates (replacing an
# existing file), and the copied bytes.
. "$top_srcdir/tests/functions.sh"
requires strata-img cmp
tmpdir
cd "$T"

head -c 1M /dev/urandom >in.raw
head -c 1000 /dev/urandom >small.raw

# same_bytes DESC FILE OFFSET LENGTH: FILE holds in.raw[OFFSET, +LENGTH),
# then zeroes up to the next sector (QEMU's file protocol rounds the size
# of a new file up to 512 bytes).
same_bytes()
{
    local want=$((($4 + 511) / 512 * 512))
    if [ "$(file_size "$2")" = "$want" ] &&
        cmp -s <(head -c "$4" "$2") \
            <(tail -c +$(($3 + 1)) in.raw | head -c "$4") &&
        [ -z "$(tail -c +$(($4 + 1)) "$2" | tr -d '\0')" ]; then
        ok "$1"
    else
        not_ok "$1"
        diag "size $(file_size "$2"), want $4 bytes from offset $3"
    fi
}

plan 12

check "default bs copies everything" strata-img dd if=in.raw of=o1.raw
same_bytes "the copy is the input" o1.raw 0 1048576

strata-img dd if=in.raw of=o2.raw bs=4k count=10 skip=2
same_bytes "skip counts inside count" o2.raw 8192 32768

strata-img dd if=in.raw of=o3.raw bs=64k skip=3
same_bytes "skip without count" o3.raw 196608 851968

strata-img dd -f raw -O raw if=in.raw of=o4.raw bs=1M count=1k
same_bytes "count past the end stops at the end" o4.raw 0 1048576

strata-img dd if=in.raw of=o5.raw bs=7777 count=3
same_bytes "an odd block size" o5.raw 0 23331

strata-img dd if=in.raw of=o6.raw count=0
check_eq "count=0 makes an empty image" "$(file_size o6.raw)" 0

echo "old contents, longer than the new image" >old.raw
strata-img dd if=in.raw of=old.raw bs=16 count=1
same_bytes "an existing output is recreated" old.raw 0 16

rc=0
out=$(strata-img dd if=in.raw of=o7.raw skip=5000 2>&1) || rc=$?
check_eq "skip past the end: a warning and an empty image" \
    "$rc:$out:$(file_size o7.raw)" \
    "0:strata-img: in.raw: cannot skip to specified offset:0"

strata-img dd if=small.raw of=o8.raw bs=300
check_eq "a short last block is copied" \
    "$(cmp small.raw <(head -c 1000 o8.raw) && echo same)" same

strata-img dd -U if=in.raw of=o9.raw bs=64k skip=15
same_bytes "-U reads shared" o9.raw 983040 65536

out=$(strata-img dd if=in.raw of=o10.raw bs=4k count=2 2>&1)
check_eq "dd prints nothing" "$out" ""

done_testing
