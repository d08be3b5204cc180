#!/usr/bin/env bash
# strata-img map prints what qemu-img map prints, byte for byte, as JSON
# and as the human table, on the same raw images with holes and data, and
# with --start-offset/--max-length windows.
. "$top_srcdir/tests/functions.sh"
requires strata-img
type -P qemu-img >/dev/null 2>&1 || skip_all "qemu-img not installed"
tmpdir
cd "$T"

truncate -s 1M sparse.raw
[ "$(stat -c %b sparse.raw)" = 0 ] ||
    skip_all "the file system of $T does not keep holes"

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

truncate -s 10M holes.raw
dd if=/dev/urandom of=holes.raw bs=4k count=1 conv=notrunc status=none
dd if=/dev/urandom of=holes.raw bs=64k seek=2 count=3 conv=notrunc status=none
dd if=/dev/urandom of=holes.raw bs=4k seek=1000 count=1 conv=notrunc status=none
dd if=/dev/zero of=holes.raw bs=64k seek=100 count=2 conv=notrunc status=none
dd if=/dev/urandom of=holes.raw bs=1M seek=9 count=1 conv=notrunc status=none
head -c 2M /dev/urandom >full.raw
truncate -s 0 empty.raw

plan 22

for img in sparse.raw holes.raw full.raw empty.raw; do
    same map "$img"
    same map --output=json "$img"
done
for win in "--start-offset=100k --max-length=200k" \
           "--start-offset 1000 --max-length 10" \
           "--start-offset 4096000" "--max-length 1" \
           "--start-offset 11M" "--max-length 0" "--start-offset=9M"; do
    # shellcheck disable=SC2086
    same map --output=json $win holes.raw
done
same map --start-offset=100k --max-length=200k holes.raw
same map -f raw --output=json "$T/holes.raw"
same map --image-opts --output=json driver=raw,file.filename=holes.raw
same map --output=json nonexist.raw
same map --start-offset -1 holes.raw
same map --max-length 9E holes.raw
same map --output=xml holes.raw

done_testing
