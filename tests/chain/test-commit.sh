#!/usr/bin/env bash
# strata-img commit against qemu-img commit on copies of the same chains:
# raw and qcow2 bases, 3-layer chains, -b to a deeper base, -d, a base
# smaller than the overlay, a compat=0.10 overlay, -t none, -p/-q and
# --image-opts.  Content of every layer is compared with qemu-img compare,
# the overlay's clusters with qemu-img map, and qemu-img check must pass.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/chain/chain-lib.sh"
requires strata-img qemu-img qemu-io
tmpdir
cd "$T"

mkchain orig-raw raw
mkchain orig-qcow2 qcow2
mkchain orig-grow raw 6M

# fresh ORIG copies in q/ (qemu-img) and s/ (strata-img)
fresh()
{
    rm -rf q s
    cp -r "$1" q
    cp -r "$1" s
}

# --- into the immediate backing file (qcow2), raw at the bottom
fresh orig-raw
(cd q && qemu-img commit -q top.qcow2)
out=$(cd s && strata-img commit top.qcow2)
check_eq "commit prints qemu-img's message" "$out" "Image committed."
same_image "mid: same content as qemu-img's" q/mid.qcow2 s/mid.qcow2
same_image "top reads as before the commit" orig-raw/top.qcow2 s/top.qcow2
check_eq "top emptied like qemu-img's (map)" "$(map_nooff s/top.qcow2)" \
    "$(map_nooff q/top.qcow2)"
check_eq "mid: the same clusters as qemu-img's (map)" \
    "$(map_nooff s/mid.qcow2)" "$(map_nooff q/mid.qcow2)"
check "base untouched" cmp orig-raw/base.raw s/base.raw
clean_image "mid clean after commit" s/mid.qcow2
clean_image "top clean after commit" s/top.qcow2

# --- -b to the raw base of a 3-layer chain (implies -d)
fresh orig-raw
(cd q && qemu-img commit -q -b base.raw top.qcow2)
(cd s && strata-img commit -q -b base.raw top.qcow2)
same_image "-b raw base: base content as qemu-img's" q/base.raw s/base.raw raw
check_eq "-b raw base: same map as qemu-img's" \
    "$(map_nooff -f raw s/base.raw)" "$(map_nooff -f raw q/base.raw)"
check "-b: top left as it was" cmp orig-raw/top.qcow2 s/top.qcow2
check "-b: mid left as it was" cmp orig-raw/mid.qcow2 s/mid.qcow2
same_image "-b: top still reads the same" orig-raw/top.qcow2 s/top.qcow2

# --- -b to a qcow2 base given by an absolute name
fresh orig-qcow2
(cd q && qemu-img commit -q -b "$T/q/base.qcow2" top.qcow2)
(cd s && strata-img commit -q -b "$T/s/base.qcow2" top.qcow2)
same_image "-b qcow2 base: content as qemu-img's" q/base.qcow2 s/base.qcow2
check_eq "-b qcow2 base: the same clusters as qemu-img's" \
    "$(map_nooff s/base.qcow2)" "$(map_nooff q/base.qcow2)"
clean_image "-b qcow2 base clean" s/base.qcow2
same_image "-b qcow2: top still reads the same" orig-qcow2/top.qcow2 \
    s/top.qcow2

# --- -d keeps the overlay
fresh orig-qcow2
(cd q && qemu-img commit -q -d top.qcow2)
(cd s && strata-img commit -q -d top.qcow2)
check "-d: top unchanged" cmp orig-qcow2/top.qcow2 s/top.qcow2
same_image "-d: mid as qemu-img's" q/mid.qcow2 s/mid.qcow2

# --- a base smaller than the overlay grows
fresh orig-grow
(cd q && qemu-img commit -q -b base.raw top.qcow2)
(cd s && strata-img commit -q -b base.raw top.qcow2)
check_eq "smaller base grown to the overlay's size" \
    "$(stat -c %s s/base.raw)" "$(stat -c %s q/base.raw)"
same_image "grown base: content as qemu-img's" q/base.raw s/base.raw raw
fresh orig-grow
(cd q && qemu-img commit -q top.qcow2)
(cd s && strata-img commit -q top.qcow2)
check_eq "smaller qcow2 backing grown" \
    "$(qemu-img info --output=json s/mid.qcow2 | grep virtual-size)" \
    "$(qemu-img info --output=json q/mid.qcow2 | grep virtual-size)"
same_image "grown mid: content as qemu-img's" q/mid.qcow2 s/mid.qcow2
clean_image "grown mid clean" s/mid.qcow2

# --- compat=0.10 overlay over raw (no zero flag: emptying leaves holes)
rm -rf q s
mkdir q s
for d in q s; do
    qemu-img create -q -f raw $d/b.raw 2M
    qemu-io -f raw -c 'write -P 1 0 2M' $d/b.raw >/dev/null
    qemu-img create -q -f qcow2 -o compat=0.10 -b b.raw -F raw $d/t.qcow2
    qemu-io -c 'write -P 2 64k 200k' -c 'write -z 1M 64k' $d/t.qcow2 \
        >/dev/null
done
(cd q && qemu-img commit -q t.qcow2)
(cd s && strata-img commit -q t.qcow2)
same_image "compat=0.10: base as qemu-img's" q/b.raw s/b.raw raw
check_eq "compat=0.10: overlay emptied" "$(map_nooff s/t.qcow2)" \
    "$(map_nooff q/t.qcow2)"
clean_image "compat=0.10: overlay clean" s/t.qcow2

# --- emptying overlays of other shapes: small clusters, 64-bit
# refcounts, lazy refcounts (rebuilt from nothing, as QEMU), and one with
# an internal snapshot (every cluster discarded instead)
for opts in cluster_size=512 refcount_bits=64,cluster_size=4k \
    lazy_refcounts=on snapshot; do
    rm -rf q s
    mkdir q s
    for d in q s; do
        qemu-img create -q -f raw $d/b.raw 3M
        qemu-io -f raw -c 'write -P 1 0 3M' $d/b.raw >/dev/null
        o=${opts/snapshot/compat=1.1}
        qemu-img create -q -f qcow2 -o "$o" -b b.raw -F raw $d/t.qcow2
        qemu-io -c 'write -P 2 64k 200k' -c 'write -z 1M 64k' \
            -c 'write -P 3 2047k 2k' $d/t.qcow2 >/dev/null
        if [ "$opts" = snapshot ]; then
            qemu-img snapshot -c snap $d/t.qcow2
            qemu-io -c 'write -P 4 0 64k' $d/t.qcow2 >/dev/null
        fi
    done
    (cd q && qemu-img commit -q t.qcow2)
    (cd s && strata-img commit -q t.qcow2)
    same_image "$opts: base as qemu-img's" q/b.raw s/b.raw raw
    check_eq "$opts: overlay emptied as qemu-img's" "$(map_nooff s/t.qcow2)" \
        "$(map_nooff q/t.qcow2)"
    clean_image "$opts: overlay clean" s/t.qcow2
    if [ "$opts" = snapshot ]; then
        check_eq "snapshot kept" \
            "$(qemu-img snapshot -l s/t.qcow2 | grep -c snap)" 1
    else
        check_eq "$opts: overlay file as small as qemu-img's" \
            "$(stat -c %s s/t.qcow2)" "$(stat -c %s q/t.qcow2)"
    fi
done

# --- -t none (O_DIRECT through the reopen), -p, --image-opts
fresh orig-qcow2
(cd q && qemu-img commit -q top.qcow2)
out=$(cd s && strata-img commit -t none -p top.qcow2 | tr '\r' '\n')
check_match "-p shows the progress bar" "$out" '^ +\(100\.00/100%\)$'
check_match "-p: then the message" "$out" '^Image committed\.$'
same_image "-t none: mid as qemu-img's" q/mid.qcow2 s/mid.qcow2
fresh orig-qcow2
(cd q && qemu-img commit -q top.qcow2)
check "--image-opts" strata-img commit -q --image-opts \
    "driver=qcow2,file.filename=s/top.qcow2,file.aio=threads"
same_image "--image-opts: mid as qemu-img's" q/mid.qcow2 s/mid.qcow2
fresh orig-qcow2
out=$(strata-img commit -q -r 100M s/top.qcow2)
check_eq "-q prints nothing" "$out" ""
(cd q && qemu-img commit -q top.qcow2)
same_image "-r: mid as qemu-img's" q/mid.qcow2 s/mid.qcow2

done_testing
