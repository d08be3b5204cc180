#!/usr/bin/env bash
# Images made by strata-img create and dd are what qemu-img makes: the
# same "Formatting" line and file for the same create command, qemu-img
# info and compare accept them, and dd copies byte-identical outputs.
. "$top_srcdir/tests/functions.sh"
requires strata-img cmp
type -P qemu-img >/dev/null 2>&1 || skip_all "qemu-img not installed"
tmpdir
cd "$T"
mkdir q s

# both ARGS...: run qemu-img in q/ and strata-img in s/ with the same
# arguments; same output, status and resulting files (size and bytes).
both()
{
    local qrc=0 src=0 why= f
    (cd q && qemu-img "$@" >../q.out 2>../q.err) || qrc=$?
    (cd s && strata-img "$@" >../s.out 2>../s.err) || src=$?
    sed -i 's/^qemu-img:/strata-img:/; s/qemu-img --help/strata-img --help/' q.err
    if ! cmp -s q.out s.out; then
        why="stdout differs"
    elif ! cmp -s q.err s.err; then
        why="stderr differs"
    elif [ "$qrc" != "$src" ]; then
        why="exit status $src, qemu-img's $qrc"
    elif [ "$(ls q)" != "$(ls s)" ]; then
        why="different files: $(ls q) / $(ls s)"
    else
        for f in q/*; do
            [ -e "$f" ] || continue
            f=${f#q/}
            if [ "$(file_size "q/$f")" != "$(file_size "s/$f")" ]; then
                why="$f: size $(file_size "s/$f"), qemu-img's $(file_size "q/$f")"
            elif ! cmp -s "q/$f" "s/$f"; then
                why="$f: contents differ"
            fi
        done
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

head -c 1M /dev/urandom >q/in.raw
cp q/in.raw s/in.raw

plan 27

both create a.raw 10M
both create -q -f raw b.raw 1000
both create -o preallocation=full c.raw 64k
both create -o preallocation=falloc,nocow=on,extent_size_hint=2M d.raw 1M
both create -o size=3M e.raw
both create -o size=3M e2.raw 3M
both create x.raw 1.5
both create x.raw 9E
both create -o foo=bar x.raw 1M
both create -b base x.raw 1M
both create x.raw
both create -f raw -o help x.raw
both create -o help
both create -q a.raw 4k

both dd if=in.raw of=o1.raw
both dd if=in.raw of=o2.raw bs=4k count=10 skip=2
both dd if=in.raw of=o3.raw bs=7777 count=5
both dd if=in.raw of=o4.raw skip=5000
both dd if=in.raw of=o5.raw bs=0
both dd if=nonexist.raw of=o6.raw
both dd if=in.raw of=a.raw bs=64k count=1

# qemu-img reads what strata-img made.
strata-img create -q made.raw 5M
strata-img dd if=q/in.raw of=copy.raw bs=64k
vsize=$(qemu-img info --output=json made.raw |
        sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')
check_eq "qemu-img sees the size" "$vsize" 5242880
check "qemu-img finds the copy identical" \
    qemu-img compare -f raw -F raw q/in.raw copy.raw
check "qemu-img finds a new image all zero" qemu-img compare made.raw s/e.raw
check "qemu-img convert reads it" qemu-img convert -O raw copy.raw back.raw
check "and the round trip is exact" cmp back.raw q/in.raw
check_eq "qemu-img map sees one data extent" \
    "$(qemu-img map --output=json copy.raw)" \
    '[{ "start": 0, "length": 1048576, "depth": 0, "present": true, "zero": false, "data": true, "offset": 0}]'

done_testing
