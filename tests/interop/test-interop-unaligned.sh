#!/usr/bin/env bash
# Raw images whose length is not a multiple of 512: QEMU 7.2 counts sizes
# in sectors, so qemu-img reports such an image rounded up to the next
# sector (a 1000-byte file is a 1 KiB disk whose tail reads as zeroes).
# strata-img must report the same in info, map and compare.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/interop/interop.sh"

truncate -s 1000 hole1000.raw
head -c 1000 /dev/urandom >data1000.raw
cp data1000.raw data1024.raw
truncate -s 1024 data1024.raw
truncate -s 1 one.raw

plan 8

same info --output=json hole1000.raw
same info data1000.raw
same info --output=json one.raw
same map --output=json hole1000.raw
same map --output=json data1000.raw
same compare data1000.raw data1024.raw
same compare -s data1000.raw data1024.raw
same compare data1000.raw data1000.raw

done_testing
