#!/usr/bin/env bash
# strata-img compare agrees with qemu-img compare on the same pairs of raw
# images: the same messages and the same exit statuses (0 identical,
# 1 different, 2 open errors), with and without -s, -q and -p.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/interop/interop.sh"

poke()
{
    printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

truncate -s 1M hole.raw
cp hole.raw hole2.raw
truncate -s 1M byte.raw
poke byte.raw 1000 x
truncate -s 1M zeroes.raw
dd if=/dev/zero of=zeroes.raw bs=4k count=1 conv=notrunc status=none
truncate -s 1M late.raw
dd if=/dev/zero of=late.raw bs=64k seek=4 count=1 conv=notrunc status=none
truncate -s 2M big.raw
cp big.raw bigdata.raw
poke bigdata.raw 1500000 y
head -c 6M /dev/urandom >d1.raw
cp d1.raw d2.raw
poke d2.raw 5000000 z
cp d1.raw d3.raw
truncate -s 8M d3.raw

pairs=(
    "hole.raw hole2.raw" "hole.raw byte.raw" "byte.raw hole.raw"
    "hole.raw zeroes.raw" "late.raw hole.raw" "hole.raw big.raw"
    "big.raw hole.raw" "hole.raw bigdata.raw" "bigdata.raw hole.raw"
    "d1.raw d1.raw" "d1.raw d2.raw" "d1.raw d3.raw" "d3.raw d1.raw"
    "d1.raw hole.raw"
)

plan $((${#pairs[@]} * 3 + 6))

for p in "${pairs[@]}"; do
    # shellcheck disable=SC2086
    same compare $p
    # shellcheck disable=SC2086
    same compare -s $p
    # shellcheck disable=SC2086
    same compare -q -f raw -F raw $p
done
same compare -p d1.raw d2.raw
same compare -p hole.raw big.raw
same compare hole.raw nonexist.raw
same compare nonexist.raw hole.raw
same compare -T bogus hole.raw hole.raw
same compare hole.raw

done_testing
