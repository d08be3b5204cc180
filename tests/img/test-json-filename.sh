#!/usr/bin/env bash
# "json:{...}" file names (QEMU's pseudo-protocol): as command-line images
# and as backing file names recorded in an overlay (libvirt writes them),
# each compared with qemu-img on the same files: info output, the error
# messages, -f winning over a "driver" member, create -b with a json:
# backing (byte-identical files), info --backing-chain, compare, convert,
# map and commit through such a chain.
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io strata-img
tmpdir
cd "$T"

plan 19

qemu-img create -q -f qcow2 base.qcow2 4M
qemu-io -c "write -P 5 0 1M" base.qcow2 >/dev/null
J='json:{"driver": "qcow2", "file": {"driver": "file", "filename": "base.qcow2"}}'

same_as_qemu_img "info of a json: name" info "$J"
same_as_qemu_img "info --output=json of a json: name" info --output=json "$J"
same_as_qemu_img "-f wins over the \"driver\" member" info -f raw "$J"
same_as_qemu_img "no driver: probed" \
    info 'json:{"file": {"driver": "file", "filename": "base.qcow2"}}'
same_as_qemu_img "dotted keys at the top level" \
    info 'json:{"file.filename": "base.qcow2", "driver": "qcow2"}'
same_as_qemu_img "numbers and booleans as option values" \
    info 'json:{"driver": "qcow2", "l2-cache-size": 1048576,
           "read-only": true, "file": {"filename": "base.qcow2"}}'
same_as_qemu_img "a string for \"file\" (a node name in QEMU): refused" \
    info 'json:{"driver": "qcow2", "file": "base.qcow2"}'
same_as_qemu_img "not an object: refused" info 'json:[1]'
_run strata-img info 'json:{bad'
check_match "bad JSON: QEMU's message" "$(cat "$_out")" \
    "Could not parse the JSON options: JSON parse error"
check_fail "an unknown option in the object is refused" \
    strata-img info 'json:{"driver": "qcow2", "nosuch": 1,
                           "file": {"filename": "base.qcow2"}}'

# a json: backing file
qemu-img create -q -f qcow2 -b "$J" -F qcow2 q.qcow2
check "create -b json:..." strata-img create -q -f qcow2 -b "$J" -F qcow2 \
    s.qcow2
check "the same file as qemu-img create" cmp q.qcow2 s.qcow2
same_as_qemu_img "info --backing-chain" info --backing-chain q.qcow2
same_as_qemu_img "info --backing-chain --output=json" \
    info --backing-chain --output=json q.qcow2
same_as_qemu_img "map --output=json through the chain" map --output=json q.qcow2
check "compare reads through the json: backing file" \
    strata-img compare q.qcow2 base.qcow2
check "convert from a json: name" \
    sh -c "strata-img convert -O raw '$J' out.raw &&
           qemu-img compare -f raw out.raw base.qcow2"
qemu-io -c "write -P 6 1M 64k" s.qcow2 >/dev/null
check "commit into a json: backing file" strata-img commit -q s.qcow2
check "qemu-io reads the committed data in the base" \
    qemu-io -c "read -P 6 1M 64k" -c "read -P 5 0 1M" -c "read -P 0 2M 2M" \
    base.qcow2
done_testing
