#!/usr/bin/env bash
# lazy_refcounts: strata sets the dirty bit on the first write and clears
# it on a clean close (the image then passes qemu-img check); a process
# killed in between (strata-io's or qemu-io's `abort`) leaves a dirty
# image whose refcounts lag, as QEMU's; such an image still opens
# read-only, and opening it read-write repairs it (qemu-img check clean
# and the bit cleared afterwards) -- when the refcount repair (check -r)
# is available in this build.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/qcow2/qcow2-helpers.sh"
requires qemu-img qemu-io strata-img strata-io
tmpdir
cd "$T"
plan 13

# dirty IMG: is bit 0 of the incompatible features set?
dirty()
{
    [ $((0x$(peek "$1" 79 1) & 1)) = 1 ]
}

strata-img create -q -f qcow2 -o lazy_refcounts=on a.qcow2 4M
strata-io -c 'write -P 0x11 0 64k' -c 'write -P 0x22 1M 128k' a.qcow2 \
    >/dev/null
if dirty a.qcow2; then
    not_ok "a clean close clears the dirty bit"
else
    ok "a clean close clears the dirty bit"
fi
qcheck "after a clean close, qemu-img check is clean" a.qcow2

# killed while dirty: strata's own writes
(strata-io -c 'write -P 0x33 2M 64k' -c flush -c 'write -P 0x44 3M 64k' \
    -c abort a.qcow2) >/dev/null 2>&1 || true
if dirty a.qcow2; then
    ok "strata-io abort leaves the dirty bit set"
else
    not_ok "strata-io abort leaves the dirty bit set"
fi
if qemu-img check a.qcow2 >check.out 2>&1; then
    not_ok "the refcounts of the flushed writes lag (as QEMU's)"
else
    ok "the refcounts of the flushed writes lag (as QEMU's)"
fi
check "a dirty image opens read-only" strata-io -r \
    -c 'read -P 0x11 0 64k' -c 'read -P 0x33 2M 64k' a.qcow2

# killed while dirty: qemu-io's writes
qemu-img create -q -f qcow2 -o lazy_refcounts=on q.qcow2 4M
(qemu-io -c 'write -P 0x55 0 64k' -c flush -c 'write -P 0x66 1M 64k' \
    -c abort q.qcow2) >/dev/null 2>&1 || true
if dirty q.qcow2; then
    ok "qemu-io abort leaves the dirty bit set"
else
    not_ok "qemu-io abort leaves the dirty bit set"
fi
check "strata reads qemu's dirty image read-only" strata-io -r \
    -c 'read -P 0x55 0 64k' q.qcow2

# opening read-write repairs (needs the check of this build)
repair()
{
    local img=$1 what=$2 out
    if out=$(strata-io -c "$3" "$img" 2>&1); then
        ok "$what: opened read-write (repaired)"
        qcheck "$what: qemu-img check clean after the repair" "$img"
        if dirty "$img"; then
            not_ok "$what: the dirty bit is cleared"
        else
            ok "$what: the dirty bit is cleared"
        fi
    elif [[ $out == *"not supported in this build"* ]]; then
        ok "$what: opened read-write # SKIP repair not available"
        ok "$what: qemu-img check clean # SKIP repair not available"
        ok "$what: the dirty bit is cleared # SKIP repair not available"
    else
        not_ok "$what: opened read-write (repaired)"
        diag "$out"
        not_ok "$what: qemu-img check clean after the repair"
        not_ok "$what: the dirty bit is cleared"
    fi
}
repair a.qcow2 "strata's dirty image" 'read -P 0x33 2M 64k'
repair q.qcow2 "qemu's dirty image" 'read -P 0x55 0 64k'
