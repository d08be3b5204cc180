#!/usr/bin/env bash
# strata-img rebase against qemu-img rebase on copies of the same chains:
# safe mode onto an unrelated raw or qcow2 file (smaller than the overlay),
# onto a layer of its own chain, flattening with -b "", unsafe mode (also
# with the old backing file gone), a name relative to the overlay, -p;
# then the failures side by side.  Content is compared with qemu-img
# compare (it must not change), the copied clusters with qemu-img map, and
# qemu-img check must pass.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/chain/chain-lib.sh"
requires strata-img qemu-img qemu-io
tmpdir
cd "$T"

mkchain orig raw
# new backing files: partly equal to the old chain, partly not, 3 MiB
qemu-img create -q -f raw orig/new.raw 3M
qemu-io -f raw -c 'write -P 0x11 0 512k' -c 'write -P 0x21 600k 100k' \
    -c 'write -P 0x44 1536k 1M' orig/new.raw >/dev/null
qemu-img convert -O qcow2 -f raw orig/new.raw orig/new.qcow2

fresh()
{
    rm -rf q s
    cp -r orig q
    cp -r orig s
}

# rebase_both DESC ARGS...: the same rebase by both tools on fresh copies,
# then content, clusters, check and the recorded backing file compared.
backing_of()
{
    qemu-img info --output=json "$1" | grep '"backing-filename'
}

rebase_both()
{
    local desc=$1 qrc=0 src=0
    shift
    fresh
    (cd q && qemu-img rebase -q "$@") || qrc=$?
    (cd s && strata-img rebase -q "$@") || src=$?
    check_eq "$desc: exit code" "$src" "$qrc"
    same_image "$desc: content unchanged" orig/top.qcow2 s/top.qcow2
    same_image "$desc: content as qemu-img's" q/top.qcow2 s/top.qcow2
    check_eq "$desc: the same clusters copied (map)" \
        "$(map_nooff -f qcow2 s/top.qcow2)" "$(map_nooff -f qcow2 q/top.qcow2)"
    check_eq "$desc: backing recorded as qemu-img's" \
        "$(backing_of s/top.qcow2)" "$(backing_of q/top.qcow2)"
    clean_image "$desc: image clean" s/top.qcow2
}

rebase_both "safe onto raw" -b new.raw -F raw top.qcow2
rebase_both "safe onto qcow2" -b new.qcow2 -F qcow2 top.qcow2
rebase_both "safe onto its own base (prefix of the chain)" \
    -b base.raw -F raw top.qcow2
rebase_both "flatten with -b ''" -b "" top.qcow2
rebase_both "cache modes -t none -T writethrough" -t none -T writethrough \
    -b new.raw -F raw top.qcow2

# a name relative to the overlay, given from another directory
fresh
qemu-img rebase -q -b new.raw -F raw q/top.qcow2
strata-img rebase -q -b new.raw -F raw s/top.qcow2
check_eq "relative name resolved from the overlay's directory" \
    "$(map_nooff s/top.qcow2)" "$(map_nooff q/top.qcow2)"
check_eq "and recorded as given" "$(backing_of s/top.qcow2)" \
    "$(backing_of q/top.qcow2)"
same_image "relative name: content unchanged" orig/top.qcow2 s/top.qcow2
fresh
(cd s && strata-img rebase -q -b ../orig/new.raw -F raw top.qcow2)
(cd q && qemu-img rebase -q -b ../orig/new.raw -F raw top.qcow2)
check_eq "a name with ../ in it" "$(map_nooff s/top.qcow2)" \
    "$(map_nooff q/top.qcow2)"
check_match "and recorded as given" "$(backing_of s/top.qcow2)" \
    '"backing-filename": "../orig/new.raw"'

# unsafe: only the header changes, byte for byte as qemu-img's
fresh
(cd q && qemu-img rebase -u -b new.qcow2 -F qcow2 top.qcow2)
(cd s && strata-img rebase -u -b new.qcow2 -F qcow2 top.qcow2)
check "-u: the same file as qemu-img's" cmp q/top.qcow2 s/top.qcow2
fresh
rm q/mid.qcow2 s/mid.qcow2
(cd q && qemu-img rebase -u -b base.raw -F raw top.qcow2)
check "-u with the old backing file gone" \
    sh -c 'cd s && strata-img rebase -u -b base.raw -F raw top.qcow2'
check "-u with the old backing gone: as qemu-img's" \
    cmp q/top.qcow2 s/top.qcow2
fresh
(cd q && qemu-img rebase -u -b "" top.qcow2)
(cd s && strata-img rebase -u -b "" top.qcow2)
check "-u -b '': backing dropped as qemu-img does" cmp q/top.qcow2 s/top.qcow2

# -p
fresh
out=$(cd s && strata-img rebase -p -b new.raw -F raw top.qcow2 | tr '\r' '\n')
check_match "-p shows the progress bar" "$out" '^ +\(100\.00/100%\)$'

# failures, side by side
fresh
same_errors "missing new backing file" rebase -b nothere.qcow2 -F qcow2 \
    top.qcow2
same_errors "safe mode without -F" rebase -b new.raw top.qcow2
same_errors "unsafe mode without -F" rebase -u -b new.raw top.qcow2
same_errors "neither -b nor -u" rebase top.qcow2
same_errors "unknown -F" rebase -b new.raw -F bogus top.qcow2
same_errors "no file name" rebase -b new.raw -F raw
same_errors "raw images have no backing file" rebase -f raw -b new.raw \
    -F raw base.raw
same_errors "bad cache mode" rebase -t bogus -b new.raw -F raw top.qcow2
same_errors "bad source cache mode" rebase -T bogus -b new.raw -F raw \
    top.qcow2
same_errors "missing image" rebase -b new.raw -F raw nothere.qcow2
long=$(printf 'x%.0s' $(seq 1 600))
for d in q s; do
    qemu-img create -q -f qcow2 -o cluster_size=512 $d/small.qcow2 1M
done
same_errors "a name that does not fit in a 512-byte header cluster" \
    rebase -u -b "$long" -F raw small.qcow2
same_errors "a name longer than 1023 bytes" \
    rebase -u -b "$long$long" -F raw top.qcow2
rm q/mid.qcow2 s/mid.qcow2
same_errors "safe mode with the old backing file gone" \
    rebase -b base.raw -F raw top.qcow2
check "failures changed nothing" cmp orig/top.qcow2 s/top.qcow2

done_testing
