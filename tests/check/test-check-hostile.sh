#!/usr/bin/env bash
# Hostile images (garbage over the refcount table, a refblock, the L1 and
# an L2 table, a refcount table entry far past the end, a truncated file):
# check and check -r all never crash, and give qemu-img's findings and
# exit status.
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io python3
tmpdir
. "$top_srcdir/tests/check/check-lib.sh"

cd "$T"
qemu-img create -q -f qcow2 base.qcow2 64M
qemu-io -c "write -P 1 0 5M" -c "write 20M 1M" base.qcow2 >/dev/null
# layout of a fresh 64k-cluster image: header, reftable, refblock, L1, L2
cases=("garbage 0x10000" "garbage 0x20000" "garbage 0x30000"
       "garbage 0x40000" "garbage 0x1000" refblock-far truncate)
plan $((${#cases[@]} * 4))
for c in "${cases[@]}"; do
    cp base.qcow2 h.qcow2
    if [ "$c" = truncate ]; then
        truncate -s 300000 h.qcow2
    else
        $DAMAGE h.qcow2 $c
    fi
    same_check "$c: check" h.qcow2
    if [ "$rc" -ge 126 ]; then
        not_ok "$c: check exits cleanly (got $rc)"
    else
        ok "$c: check exits cleanly"
    fi
    both_check h.qcow2 -r all
    rc=$(cat "$T/cmp/s.rc")
    if [ "$rc" -ge 126 ]; then
        not_ok "$c: check -r all exits cleanly (got $rc)"
    else
        ok "$c: check -r all exits cleanly ($rc)"
    fi
    # a refcount table full of garbage is rebuilt by QEMU, which then
    # fails its second pass (its node was dropped as corrupt); strata
    # refuses to write after the fatal corruption: both report failure
    check_eq "$c: check -r all exits as qemu-img's" "$rc" \
        "$(cat "$T/cmp/q.rc")"
done
done_testing
