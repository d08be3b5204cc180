#!/usr/bin/env bash
# strata-img commit copies plain qcow2 clusters into a raw base with
# copy_file_range (the kernel moves the data, page cache to page cache),
# falls back to reading and writing for clusters the kernel cannot copy
# (compressed, encrypted) and for a qcow2 base, and starts the base's
# writeback as it goes.  Whatever path a cluster takes, the base must end
# up byte for byte as qemu-img commit leaves it.  Where strace exists it
# also shows that the offload path was taken at all.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/chain/chain-lib.sh"
requires strata-img qemu-img qemu-io
tmpdir
cd "$T"

# mkoff DIR: raw base (8 MiB and a bit) under two qcow2 layers holding
# plain, compressed, zero and partial-cluster data, the top larger than
# the base and not a whole number of clusters.
mkoff()
{
    local d=$1
    mkdir -p "$d"
    qemu-img create -q -f raw "$d/base.raw" 8M
    qemu-io -f raw -c 'write -P 0x11 0 3M' -c 'write -P 0x12 5M 1M' \
        -c 'write -P 0x13 8388096 512' "$d/base.raw" >/dev/null
    qemu-img create -q -f qcow2 -b base.raw -F raw "$d/mid.qcow2"
    qemu-io -f qcow2 -c 'write -P 0x21 1M 1M' -c 'write -c -P 0x22 4M 64k' \
        -c 'write -z 5M 128k' -c 'write -P 0x23 7M 3k' "$d/mid.qcow2" \
        >/dev/null
    qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 "$d/top.qcow2" \
        $((9 * 1048576 + 1536))
    qemu-io -f qcow2 -c 'write -P 0x31 64k 2M' -c 'write -c -P 0x32 3M 64k' \
        -c 'write -z 6M 64k' -c 'write -P 0x33 8M 1M' \
        -c 'write -P 0x34 9M 1536' "$d/top.qcow2" >/dev/null
}

mkoff orig

fresh()
{
    rm -rf q s
    cp -r orig q
    cp -r orig s
}

# --- everything into the raw base: plain clusters offloaded, compressed
# ones through the buffer, the base grown first
fresh
(cd q && qemu-img commit -q -b base.raw top.qcow2)
(cd s && strata-img commit -q -b base.raw top.qcow2)
check "raw base: byte for byte as qemu-img's" cmp q/base.raw s/base.raw
check_eq "raw base: same allocation as qemu-img's" \
    "$(map_nooff -f raw s/base.raw)" "$(map_nooff -f raw q/base.raw)"
same_image "raw base: the top still reads the same" orig/top.qcow2 \
    s/top.qcow2

# --- into the immediate (qcow2) backing file: no offload into a format
# that maps its own clusters, the buffered copy throughout
fresh
(cd q && qemu-img commit -q top.qcow2)
(cd s && strata-img commit -q top.qcow2)
same_image "qcow2 base: content as qemu-img's" q/mid.qcow2 s/mid.qcow2
check_eq "qcow2 base: the same clusters as qemu-img's" \
    "$(map_nooff s/mid.qcow2)" "$(map_nooff q/mid.qcow2)"
clean_image "qcow2 base clean" s/mid.qcow2
check_eq "top emptied like qemu-img's" "$(map_nooff s/top.qcow2)" \
    "$(map_nooff q/top.qcow2)"

# --- then the emptied mid's chain into the raw base (the top's data now
# lives in the mid, partly compressed copies of compressed clusters)
(cd q && qemu-img commit -q mid.qcow2)
(cd s && strata-img commit -q mid.qcow2)
check "second commit: raw base as qemu-img's" cmp q/base.raw s/base.raw

# --- -t none: O_DIRECT on both sides
fresh
(cd q && qemu-img commit -q -b base.raw top.qcow2)
(cd s && strata-img commit -q -t none -b base.raw top.qcow2)
check "-t none: raw base as qemu-img's" cmp q/base.raw s/base.raw

# --- granules only partly above the base: a 4 KiB-cluster overlay over a
# raw base copied in 64 KiB granules, the rest of each granule the base's
# own data or holes (rewritten by qemu-img, allocating the holes)
rm -rf q s
mkdir q s
for d in q s; do
    qemu-img create -q -f raw $d/b.raw 2M
    qemu-io -f raw -c 'write -P 0x41 0 40k' -c 'write -P 0x42 1M 64k' \
        $d/b.raw >/dev/null
    qemu-img create -q -f qcow2 -o cluster_size=4k -b b.raw -F raw \
        $d/t.qcow2
    qemu-io -c 'write -P 0x51 8k 4k' -c 'write -P 0x52 72k 8k' \
        -c 'write -P 0x53 1052k 4k' -c 'write -P 0x54 1536k 128k' \
        $d/t.qcow2 >/dev/null
done
(cd q && qemu-img commit -q t.qcow2)
(cd s && strata-img commit -q t.qcow2)
check "partial granules: raw base as qemu-img's" cmp q/b.raw s/b.raw
check_eq "partial granules: same allocation as qemu-img's" \
    "$(map_nooff -f raw s/b.raw)" "$(map_nooff -f raw q/b.raw)"

# --- the offload is really used (strace shows the calls)
if type -P strace >/dev/null && strace -f -o /dev/null true 2>/dev/null
then
    fresh
    strace -f -e trace=copy_file_range -o s/trace \
        strata-img commit -q -b base.raw s/top.qcow2
    n=$(grep -c 'copy_file_range(.* = [1-9]' s/trace || true)
    check "copy_file_range moved the plain clusters ($n calls)" \
        test "$n" -gt 0
    (cd q && qemu-img commit -q -b base.raw top.qcow2)
    check "traced run: raw base as qemu-img's" cmp q/base.raw s/base.raw
else
    skip "copy_file_range used" "strace not usable here"
    skip "traced run: raw base as qemu-img's" "strace not usable here"
fi

done_testing
