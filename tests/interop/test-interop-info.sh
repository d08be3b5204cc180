#!/usr/bin/env bash
# strata-img info prints what qemu-img info prints, byte for byte, human
# and JSON, on the same raw images (sparse, with holes and data, full,
# empty, large), including --backing-chain, -f raw and --image-opts.
. "$top_srcdir/tests/functions.sh"
requires strata-img
type -P qemu-img >/dev/null 2>&1 || skip_all "qemu-img not installed"
tmpdir
cd "$T"

# same ARGS...: both programs print the same (stderr with the program
# name replaced) and exit alike.
same()
{
    local qrc=0 src=0 why=
    qemu-img "$@" >q.out 2>q.err || qrc=$?
    strata-img "$@" >s.out 2>s.err || src=$?
    sed -i 's/^qemu-img:/strata-img:/; s/qemu-img --help/strata-img --help/' q.err
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

truncate -s 10M sparse.raw
truncate -s 10M holes.raw
dd if=/dev/urandom of=holes.raw bs=64k seek=2 count=3 conv=notrunc status=none
dd if=/dev/urandom of=holes.raw bs=4k seek=1000 count=1 conv=notrunc status=none
head -c 3M /dev/urandom >full.raw
truncate -s 0 empty.raw
truncate -s 1T large.raw
truncate -s 1536 small.raw

images="sparse.raw holes.raw full.raw empty.raw large.raw small.raw"

plan 20

for img in $images; do
    same info "$img"
    same info --output=json "$img"
done
same info --backing-chain holes.raw
same info --output=json --backing-chain holes.raw
same info -f raw -U "$T/holes.raw"
same info --output=json --image-opts driver=raw,file.filename=holes.raw
same info --image-opts -f raw driver=raw,file.filename=holes.raw
same info nonexist.raw
same info --output=json nonexist.raw
same info --output=yaml holes.raw

done_testing
