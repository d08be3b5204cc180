#!/usr/bin/env bash
# amend on qcow2 images with extended L2 entries (with data in partial and
# zeroed subclusters and an internal snapshot): refcount widths, lazy
# refcounts and size change as with qemu-img (same messages and exit
# status, same data, qemu-img check clean, strata-img check agreeing with
# qemu-img check), and compat=0.10 is refused with qemu-img's message.
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io
tmpdir
. "$top_srcdir/tests/reshape/reshape-lib.sh"
cd "$T"

strata-img create -q -f qcow2 -o extended_l2=on base.qcow2 8M
strata-io -c 'write -P 1 0 5k' -c 'write -z 64k 8k' -c 'write -P 2 1M 100k' \
    base.qcow2 >/dev/null
strata-img snapshot -c snap base.qcow2
strata-io -c 'write -P 3 2k 2k' -c 'write -P 4 5M 64k' base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=32k,lazy_refcounts=on \
    qbase.qcow2 4M
qemu-io -c 'write -P 5 1k 3k' -c 'write -z 40k 1k' -c 'write -P 6 3M 33k' \
    qbase.qcow2 >/dev/null

# checks_agree DESC: strata-img check on strata's result prints what
# qemu-img check prints for it
checks_agree()
{
    local q s
    q=$(qemu-img check "$SIMG" 2>&1; echo "rc=$?")
    s=$(strata-img check "$SIMG" 2>&1; echo "rc=$?")
    check_eq "$1" "$s" "$q"
}

plan $((2 * 7 * 3 + 2 * 3))
for tmpl in base.qcow2 qbase.qcow2; do
    for o in refcount_bits=1 refcount_bits=2 refcount_bits=8 refcount_bits=64 \
        lazy_refcounts=on lazy_refcounts=off size=16M; do
        same "$tmpl: amend -o $o" "$tmpl" amend -f qcow2 -o "$o" IMG
        images_agree "$tmpl: amend -o $o: same data, qemu-img check clean"
        checks_agree "$tmpl: amend -o $o: strata-img check as qemu-img's"
    done
    same "$tmpl: amend -o compat=0.10 refused" "$tmpl" amend -f qcow2 \
        -o compat=0.10 IMG
    same "$tmpl: amend -o compat=0.10,refcount_bits=8 refused" "$tmpl" \
        amend -f qcow2 -o compat=0.10,refcount_bits=8 IMG
    images_agree "$tmpl: the refused amends left the image as it was"
done
done_testing
