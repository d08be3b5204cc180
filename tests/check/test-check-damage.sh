#!/usr/bin/env bash
# A qcow2 image damaged on purpose in each way qcow2-damage.py knows
# (leaked clusters, refcounts off by one, an L2 entry pointing into the
# refcount table, a misaligned L1 entry, wrong OFLAG_COPIED flags, a used
# L2 table with refcount 0): strata-img and qemu-img report the same
# findings and counts, repair them to the same bytes, and qemu-img calls
# the result clean with the data intact (see damage_case).
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io python3
tmpdir
. "$top_srcdir/tests/check/check-lib.sh"

cd "$T"
qemu-img create -q -f qcow2 base.qcow2 16M
qemu-io -c "write -P 0x11 0 1M" -c "write -P 0x22 3M 512k" \
    -c "write -P 0x33 15M 64k" base.qcow2 >/dev/null

plan $((8 * 7))
damage_case base.qcow2 leak
damage_case base.qcow2 leak-extra 1
damage_case base.qcow2 refcount-minus 2
damage_case base.qcow2 l2-into-reftable
damage_case base.qcow2 l1-misaligned
damage_case base.qcow2 copied-clear
damage_case base.qcow2 copied-l1-clear
damage_case base.qcow2 refblock-zero
done_testing
