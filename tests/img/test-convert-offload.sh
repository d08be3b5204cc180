#!/usr/bin/env bash
# convert -C: data extents of raw files are copied by the kernel
# (copy_file_range) and land where qemu-img -C puts them; sources or
# targets that cannot offload (qcow2) fall back to reading and writing;
# the option conflicts are qemu-img's.
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io strace strata-img
tmpdir
cd "$T"
plan 9
qemu-img create -q -f raw src.raw 32M
qemu-io -f raw -c "write -P 3 1M 5M" -c "write -P 4 20M 1M" src.raw >/dev/null

check "convert -C raw -> raw" strata-img convert -C -f raw -O raw src.raw a.raw
check "  same content" cmp src.raw a.raw
check_eq "  same allocation as qemu-img -C" \
    "$(qemu-img map --output=json a.raw)" \
    "$(qemu-img convert -C -f raw -O raw src.raw q.raw &&
       qemu-img map --output=json q.raw)"
rm -f a.raw
# (LeakSanitizer cannot run under ptrace: leaks are checked elsewhere)
n=$(ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0 \
    strace -f -e trace=copy_file_range -o trace.txt \
        strata-img convert -C -f raw -O raw src.raw a.raw &&
    grep -c 'copy_file_range(' trace.txt || true)
check_match "  the data went through copy_file_range" "$n" '^[1-9]'
check "convert -C raw -> qcow2 (falls back)" \
    strata-img convert -C -f raw -O qcow2 src.raw a.qcow2
check "  same content" qemu-img compare src.raw a.qcow2
check "convert -C qcow2 -> raw (falls back)" \
    strata-img convert -C -O raw a.qcow2 b.raw
check "  same content" cmp src.raw b.raw
check_match "-C with -c is refused as qemu-img does" \
    "$(strata-img convert -C -c -O qcow2 src.raw c.qcow2 2>&1 || true)" \
    "Cannot enable copy offloading when -c is used"
done_testing
