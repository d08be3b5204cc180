#!/usr/bin/env bash
# strata-img create -f qcow2 writes the same bytes as qemu-img create for
# the same options (v2 and v3, cluster sizes, refcount widths, lazy
# refcounts, zstd, preallocation, backing files), qemu-img accepts the
# result, info agrees, and bad options fail with qemu-img's messages.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/qcow2/qcow2-helpers.sh"
requires qemu-img strata-img
tmpdir
cd "$T"

qemu-img create -q -f raw base.raw 16M

# same OPTS SIZE: both tools create an image; the files must be identical.
same()
{
    local o=$1 sz=$2 a b
    rm -f s.qcow2 q.qcow2
    a=$(strata-img create -q -f qcow2 ${o:+-o "$o"} s.qcow2 "$sz" 2>&1) || {
        not_ok "create -o '$o' $sz: strata-img failed"
        diag "$a"
        return
    }
    b=$(qemu-img create -q -f qcow2 ${o:+-o "$o"} q.qcow2 "$sz" 2>&1)
    if cmp -s s.qcow2 q.qcow2; then
        ok "create -o '$o' $sz: byte-identical to qemu-img"
    else
        not_ok "create -o '$o' $sz: differs from qemu-img"
        diag "$(cmp s.qcow2 q.qcow2 2>&1; ls -l s.qcow2 q.qcow2)"
    fi
}

for o in "" compat=0.10 compat=v3 cluster_size=512 cluster_size=4k \
         cluster_size=8k cluster_size=2M refcount_bits=1 refcount_bits=8 \
         refcount_bits=64 refcount_bits=64,cluster_size=512 \
         refcount_bits=1,cluster_size=512 lazy_refcounts=on \
         compat=0.10,cluster_size=512 backing_file=base.raw,backing_fmt=raw \
         compat=0.10,backing_file=base.raw,backing_fmt=raw \
         cluster_size=512,backing_file=base.raw,backing_fmt=raw; do
    sizes="0 1000 64M 100G"
    case $o in
    *cluster_size=512*) sizes="0 1000 64M 1G" ;; # qemu-img itself is slow
    esac
    for sz in $sizes; do
        same "$o" "$sz"
    done
done
if grep -q '^#define HAVE_ZSTD 1' "$top_builddir/config.h" 2>/dev/null; then
    same compression_type=zstd 1G
else
    skip "create -o compression_type=zstd" "zstd not configured"
fi
for o in preallocation=metadata preallocation=falloc preallocation=full \
         preallocation=metadata,cluster_size=512 \
         preallocation=falloc,cluster_size=512 \
         preallocation=metadata,refcount_bits=1,cluster_size=4k \
         preallocation=full,refcount_bits=64,cluster_size=4k; do
    for sz in 0 1000 4M; do
        same "$o" "$sz"
    done
done

# the refcount table grows while the L1 table is allocated
same cluster_size=512,refcount_bits=64 4G

strata-img create -q -f qcow2 -o preallocation=metadata,cluster_size=4k c.qcow2 8M
qcheck "preallocated image passes qemu-img check" c.qcow2
check_eq "info --output=json as qemu-img (metadata preallocation)" \
    "$(strata-img info --output=json c.qcow2)" \
    "$(qemu-img info --output=json c.qcow2)"
check_eq "map --output=json as qemu-img (metadata preallocation)" \
    "$(strata-img map --output=json c.qcow2)" \
    "$(qemu-img map --output=json c.qcow2)"
strata-img create -q -f qcow2 -o compat=0.10 c2.qcow2 8M
check_eq "info --output=json as qemu-img (compat=0.10)" \
    "$(strata-img info --output=json c2.qcow2)" \
    "$(qemu-img info --output=json c2.qcow2)"
strata-img create -q -f qcow2 -o lazy_refcounts=on -b base.raw -F raw c3.qcow2
check_eq "info as qemu-img (lazy refcounts, backing file)" \
    "$(strata-img info c3.qcow2)" "$(qemu-img info c3.qcow2)"

# errors: qemu-img's wording, minus the program name
for o in compat=0.10,lazy_refcounts=on refcount_bits=3 refcount_bits=128 \
         cluster_size=1000 cluster_size=256 cluster_size=4M \
         compat=0.10,refcount_bits=8 compat=0.10,compression_type=zstd \
         backing_fmt=raw preallocation=foo compat=1.0 compression_type=foo \
         preallocation=metadata,backing_file=base.raw,backing_fmt=raw \
         extended_l2=on,cluster_size=4k compat=0.10,extended_l2=on \
         data_file_raw=on lazy_refcounts=foo; do
    a=$(strata-img create -q -f qcow2 -o "$o" e.qcow2 1G 2>&1 | no_asan |
        sed 's/^strata-img: //')
    b=$(qemu-img create -q -f qcow2 -o "$o" e.qcow2 1G 2>&1 | sed 's/^qemu-img: //')
    check_eq "create -o $o: qemu-img's error" "$a" "$b"
done
for o in encryption=on encrypt.format=luks; do
    check_fail "create -o $o: refused without a key secret" \
        strata-img create -q -f qcow2 -o "$o" e.qcow2 1G
done
done_testing
