#!/usr/bin/env bash
# convert with -t none (O_DIRECT target) and -T none (O_DIRECT source),
# also over each AIO engine through --target-image-opts: same result as
# the default.
. "$top_srcdir/tests/functions.sh"
requires strata-img qemu-img qemu-io
tmpdir

# O_DIRECT needs a file system that has it (tmpfs does not).
if ! dd if=/dev/zero of="$T/probe" bs=4096 count=1 oflag=direct \
    status=none 2>/dev/null; then
    skip_all "O_DIRECT not supported in ${TMPDIR:-/tmp}"
fi

src=$T/src.raw
qemu-img create -q -f raw "$src" 6M
qemu-io -f raw -c 'write -P 0x11 0 1M' -c 'write -P 0x22 1536k 4k' \
    -c 'write -P 0x33 3M 1M' -c 'write -P 0 4M 512k' "$src" >/dev/null
head -c 1000 /dev/urandom >"$T/odd.raw"

map() { qemu-img map -f raw --output=json "$1"; }

qemu-img convert -f raw -O raw "$src" "$T/ref.raw"
ref_map=$(map "$T/ref.raw")

check "convert -t none" strata-img convert -t none -f raw -O raw "$src" \
    "$T/none.raw"
check "-t none: same bytes as qemu-img's output" cmp "$T/none.raw" \
    "$T/ref.raw"
check_eq "-t none: same map" "$(map "$T/none.raw")" "$ref_map"

check "convert -T none -t directsync" \
    strata-img convert -T none -t directsync -f raw -O raw "$src" \
    "$T/ds.raw"
check "-T none -t directsync: same bytes" cmp "$T/ds.raw" "$T/ref.raw"

# An unaligned source size through O_DIRECT on both sides.
check "convert a 1000-byte source with -T none -t none" \
    strata-img convert -T none -t none -f raw -O raw "$T/odd.raw" \
    "$T/odd.out"
check "unaligned source: data copied" cmp -n 1000 "$T/odd.raw" \
    "$T/odd.out"
check_eq "unaligned source: padded to a sector" \
    "$(file_size "$T/odd.out")" 1024

for aio in threads native io_uring; do
    if [ "$aio" = io_uring ] &&
        ! grep -q '^#define HAVE_LIBURING 1' "$top_builddir/config.h" \
            2>/dev/null; then
        skip "-n --target-image-opts aio=$aio" "liburing not configured"
        skip "aio=$aio: same bytes" "liburing not configured"
        continue
    fi
    qemu-img create -q -f raw "$T/$aio.raw" 6M
    check "-n --target-image-opts aio=$aio" \
        strata-img convert -n -t none --target-image-opts -f raw "$src" \
        "driver=raw,file.filename=$T/$aio.raw,file.aio=$aio"
    check "aio=$aio: same bytes" cmp "$T/$aio.raw" "$T/ref.raw"
done

done_testing
