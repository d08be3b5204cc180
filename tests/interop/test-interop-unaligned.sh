#!/usr/bin/env bash
# Raw images whose length is not a multiple of 512: QEMU 7.2 counts sizes
# in sectors, so qemu-img reports such an image rounded up to the next
# sector (a 1000-byte file is a 1 KiB disk whose tail reads as zeroes).
# strata-img must report the same in info, map and compare.
. "$top_srcdir/tests/functions.sh"
requires strata-img
type -P qemu-img >/dev/null 2>&1 || skip_all "qemu-img not installed"
tmpdir
cd "$T"

same()
{
    local qrc=0 src=0 why=
    qemu-img "$@" >q.out 2>q.err || qrc=$?
    strata-img "$@" >s.out 2>s.err || src=$?
    sed -i 's/^qemu-img:/strata-img:/' q.err
    if ! cmp -s q.out s.out; then
        why="stdout differs"
    elif ! cmp -s q.err s.err; then
        why="stderr differs"
    elif [ "$qrc" != "$src" ]; then
        why="exit status $src, qemu-img's $qrc"
    fi
    if [ -z "$why" ]; then
        ok "$*"
    else
        not_ok "$*"
        diag "$why"
        diag "$(diff -u <(cat q.out; echo ---; cat q.err) \
                        <(cat s.out; echo ---; cat s.err))"
    fi
}

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
