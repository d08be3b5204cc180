#!/usr/bin/env bash
# strata-io's command line: qemu-io's options, their errors, and the exit
# status for images that cannot be opened.
. "$top_srcdir/tests/functions.sh"
requires strata-io
tmpdir

img=$T/a.raw
truncate -s 4M "$img"

run()
{
    rc=0
    out=$(strata-io "$@" 2>&1) || rc=$?
}

plan 22

run -h
check_match "-h prints the usage and exits 0" "$rc:$out" '^0:Usage: strata-io '
run --version
check_match "--version" "$rc:$out" '^0:strata-io version [0-9]'
run -Z
check_match "an unknown option exits 1" "$rc:$out" \
    "^1:strata-io: invalid option -- 'Z'"
run -f raw "$img" "$img"
check_match "two images exit 1" "$rc:$out" "^1:strata-io: extra argument"
run -f raw -c 'read -q 0 512' "$T/missing.raw"
check_match "an image that cannot be opened exits 1" "$rc:$out" \
    "^1:strata-io: can't open device $T/missing.raw: "
printf 'QFI\xfb\0\0\0\3' >"$T/bad.qcow2"
run -c 'read -q 0 512' "$T/bad.qcow2"
check_eq "a damaged or unsupported image exits 1" "$rc" 1
run -f nosuchfmt -c 'read -q 0 512' "$img"
check_match "an unknown format exits 1" "$rc:$out" "^1:strata-io: can't open"
run -U -f raw -c 'read -q 0 512' "$img"
check_eq "-U needs -r" "$rc:$out" \
    "1:strata-io: can't open device $img: force-share=on can only be used with read-only images"
run -U -r -f raw -c 'read -q 0 512' "$img"
check_eq "-U -r opens" "$rc:$out" "0:"
run -t bogus -f raw "$img"
check_eq "-t with a bad mode" "$rc:$out" "1:strata-io: Invalid cache option: bogus"
run -i bogus -f raw "$img"
check_eq "-i with a bad engine" "$rc:$out" "1:strata-io: Invalid aio option: bogus"
run -d bogus -f raw "$img"
check_eq "-d with a bad mode" "$rc:$out" \
    "1:strata-io: Invalid discard option: bogus"
run --image-opts -f raw "driver=raw,file.filename=$img"
check_eq "--image-opts excludes -f" "$rc:$out" \
    "1:strata-io: --image-opts and -f are mutually exclusive"
run --image-opts -c 'write -q -P 7 0 512' -c 'read -q -P 7 0 512' \
    "driver=raw,file.filename=$img"
check_eq "--image-opts opens an option string" "$rc:$out" "0:"
run --image-opts -c length "driver=raw,file.filename=$img,file.aio=threads"
check_eq "--image-opts with file options" "$rc:$out" "0:4 MiB"
run -s -f raw "$img"
check_match "-s (snapshot) is refused" "$rc:$out" '^1:strata-io: .*not supported'
run -T 'enable=foo*' -f raw -c length "$img"
check_match "-T is accepted and ignored with a warning" "$rc:$out" \
    '^0:strata-io: warning: .*-T ignored'
run -d ignore -f raw -c 'write -q -P 9 0 4k' -c 'discard -q 0 4k' \
    -c 'write -q -z -u 4k 4k' -c 'read -q -P 9 0 4k' "$img"
check_eq "-d ignore: discard leaves the data" "$rc:$out" "0:"
run -r -f raw -c 'read -q -P 9 0 4k' -c 'read -q -P 0 4k 4k' "$img"
check_eq "-r reads" "$rc:$out" "0:"
run -m -f raw -c 'write -q -P 5 1 4k' -c 'read -q -P 5 1 4k' -c 'read -v 0 2' \
    "$img"
check_match "-m: misaligned buffers work" "$rc:$out" '^0:00000000:  09 05'
run -f raw -k -c length "$img"
check_match "-k is -i native (cache=none may be required)" "$rc:$out" \
    '^(0:4 MiB|1:strata-io: can.t open device .*native)'
if dd if=/dev/zero of="$T/probe" bs=4096 count=1 oflag=direct \
    >/dev/null 2>&1; then
    run -f raw -n -k -c length "$img"
    check_eq "-n -k" "$rc:$out" "0:4 MiB"
else
    skip "-n -k" "no O_DIRECT in $T"
fi

done_testing
