#!/usr/bin/env bash
# convert when I/O fails (through the fault filter): a read error or a
# write error stops the copy with qemu-img's message and status 1, with
# every coroutine (in order or not) winding down; --salvage turns
# unreadable sectors into zeroes and carries on.
. "$top_srcdir/tests/functions.sh"
requires strata-img qemu-img qemu-io
tmpdir

src=$T/src.raw
qemu-img create -q -f raw "$src" 8M
qemu-io -f raw -c 'write -P 0x11 0 8M' "$src" >/dev/null
fault() { echo "driver=fault,file.filename=$1,$2"; }
# For write errors: a hole in the middle keeps the copy in at least two
# requests however much the in-order writer coalesces, so the 2nd write
# always exists.
holey=$T/holey.raw
qemu-img create -q -f raw "$holey" 8M
qemu-io -f raw -c 'write -P 0x11 0 2M' -c 'write -P 0x11 4M 4M' "$holey" \
    >/dev/null

for m in "-m 1" "-m 8" "-m 8 -W"; do
    read -r -a args <<<"$m"
    out=$(strata-img convert "${args[@]}" --image-opts \
        "$(fault "$src" fail-read=3)" "$T/out.raw" 2>&1) && rc=0 || rc=$?
    check_eq "read error ($m): exit status 1" "$rc" 1
    check_match "read error ($m): qemu-img's message" "$out" \
        '^strata-img: error while reading at byte [0-9]+: Input/output error$'

    qemu-img create -q -f raw "$T/tgt.raw" 8M
    out=$(strata-img convert "${args[@]}" -n -f raw --target-image-opts \
        "$holey" "$(fault "$T/tgt.raw" fail-write=2,errno=ENOSPC)" 2>&1) &&
        rc=0 || rc=$?
    check_eq "write error ($m): exit status 1" "$rc" 1
    check_match "write error ($m): qemu-img's message" "$out" \
        '^strata-img: error while writing at byte [0-9]+: No space left on device$'
done

# --salvage: a read that fails once is retried sector by sector and works.
rm -f "$T/out.raw"
check "--salvage over a transient read error" \
    strata-img convert --salvage --image-opts "$(fault "$src" fail-read=2)" \
    "$T/out.raw"
check "--salvage: the copy is complete" cmp "$src" "$T/out.raw"

# Reads failing for good from the 2nd on: zeroes, warnings, status 0.
rm -f "$T/out.raw"
out=$(strata-img convert --salvage -m 1 --image-opts \
    "$(fault "$src" fail-read=2,once=off)" "$T/out.raw" 2>&1) &&
    rc=0 || rc=$?
check_eq "--salvage over a dead source: exit status 0" "$rc" 0
check_match "--salvage warns about what it could not read" "$out" \
    'warning: error while reading offset [0-9]+: Input/output error'
check "--salvage: what was read is there" \
    qemu-io -f raw -c 'read -P 0x11 0 2M' "$T/out.raw"
check "--salvage: what was not is zeroes" \
    qemu-io -f raw -c 'read -P 0 2M 6M' "$T/out.raw"

done_testing
