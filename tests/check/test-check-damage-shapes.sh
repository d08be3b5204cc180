#!/usr/bin/env bash
# Damaged images of other shapes (v2, 1-bit refcounts with 4k clusters,
# an image with an internal snapshot): findings, repairs and results as
# qemu-img's (see damage_case).
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io python3
tmpdir
. "$top_srcdir/tests/check/check-lib.sh"

cd "$T"
qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 16M
qemu-io -c "write -P 0x44 0 256k" v2.qcow2 >/dev/null
qemu-img create -q -f qcow2 -o refcount_bits=1,cluster_size=4k rb1.qcow2 4M
qemu-io -c "write -P 0x45 0 128k" rb1.qcow2 >/dev/null
qemu-img create -q -f qcow2 -o refcount_bits=64 snap.qcow2 16M
qemu-io -c "write -P 0x11 0 1M" snap.qcow2 >/dev/null
qemu-img snapshot -c s1 snap.qcow2
qemu-io -c "write -P 0x66 0 128k" snap.qcow2 >/dev/null

plan $((7 * 7))
damage_case v2.qcow2 leak
damage_case v2.qcow2 copied-clear
damage_case rb1.qcow2 refcount-minus 2
damage_case rb1.qcow2 l2-into-reftable
damage_case snap.qcow2 leak-extra 1
damage_case snap.qcow2 refblock-zero
damage_case snap.qcow2 l1-misaligned
done_testing
