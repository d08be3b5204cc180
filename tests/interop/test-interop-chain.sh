#!/usr/bin/env bash
# Backing chains made by qemu-img (qcow2 over qcow2 over qcow2, relative
# backing names in a subdirectory): strata-img info, info --backing-chain,
# map (depth, present, offsets) and compare print what qemu-img prints.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/interop/interop.sh"
requires qemu-io
strata-img --help | grep -q '^Supported formats:.* qcow2' ||
    skip_all "strata-img has no qcow2 driver"

qio()
{
    qemu-io -f qcow2 "$@" >/dev/null
}

mkdir sub
qemu-img create -q -f qcow2 sub/base.q 2M
qio -c 'write -P 7 1M 64k' -c 'write -P 9 0 64k' sub/base.q
qemu-img create -q -f qcow2 -b base.q -F qcow2 sub/mid.q
qio -c 'write -z 0 64k' -c 'write -P 5 192k 128k' sub/mid.q
qemu-img create -q -f qcow2 -b mid.q -F qcow2 sub/top.q 3M
qio -c 'write -P 8 64k 64k' -c 'write -P 6 2560k 64k' sub/top.q
# a write covering part of a cluster
qio -c 'write -P 4 1536k 4k' sub/top.q
qemu-img create -q -f qcow2 -u -b gone.q -F qcow2 sub/orphan.q 1M

plan 18

same info sub/top.q
same info --output=json sub/top.q
same info --backing-chain sub/top.q
same info --output=json --backing-chain sub/top.q
same info --backing-chain "$T/sub/top.q"
same info -U --output=json --backing-chain sub/mid.q
same map sub/top.q
same map --output=json sub/top.q
same map --output=json sub/mid.q
same map --output=json --start-offset 1M --max-length 1M sub/top.q
same compare sub/top.q sub/top.q
same compare sub/top.q sub/mid.q
same compare sub/mid.q sub/base.q
same compare -s sub/mid.q sub/mid.q
same compare -s sub/top.q sub/mid.q
same info sub/orphan.q
same info --backing-chain sub/orphan.q
same map sub/orphan.q

done_testing
