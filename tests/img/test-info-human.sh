#!/usr/bin/env bash
# strata-img info, human output: qemu-img's lines for raw images of
# various sizes, --backing-chain on an image without a backing file, -f,
# -U, --image-opts, and the errors.
. "$top_srcdir/tests/functions.sh"
requires strata-img
tmpdir
cd "$T"

# run ARGS...: stdout in $out, stderr in $err, status in $rc.
run()
{
    rc=0
    strata-img "$@" >"$T/out.txt" 2>"$T/err.txt" || rc=$?
    out=$(cat "$T/out.txt")
    err=$(cat "$T/err.txt")
}

# The "disk size" line depends on the file system; check its form only.
no_disk()
{
    printf '%s\n' "$1" | grep -v '^disk size: '
}

plan 21

truncate -s 10M a.raw
run info a.raw
check_eq "info exits 0" "$rc" 0
check_eq "info prints qemu-img's lines" "$(no_disk "$out")" "image: a.raw
file format: raw
virtual size: 10 MiB (10485760 bytes)"
check_match "a disk size line in qemu-img's units" "$out" \
    '^disk size: [0-9.]+ (B|KiB|MiB)$'
check_eq "exactly four lines" "$(printf '%s\n' "$out" | wc -l)" 4
check_eq "nothing on stderr" "$err" ""

# Sizes rendered as qemu-img's size_to_str() does.
human_size()
{
    rm -f s.raw
    truncate -s "$1" s.raw
    strata-img info -f raw s.raw | sed -n 's/^virtual size: //p'
}
check_eq "0 bytes" "$(human_size 0)" "0 B (0 bytes)"
check_eq "512 bytes" "$(human_size 512)" "512 B (512 bytes)"
check_eq "1.5 KiB" "$(human_size 1536)" "1.5 KiB (1536 bytes)"
check_eq "0.977 MiB" "$(human_size 1000K)" "0.977 MiB (1024000 bytes)"
check_eq "1 GiB" "$(human_size 1G)" "1 GiB (1073741824 bytes)"
check_eq "1.5 GiB" "$(human_size 1536M)" "1.5 GiB (1610612736 bytes)"
check_eq "1 TiB" "$(human_size 1T)" "1 TiB (1099511627776 bytes)"

run info --backing-chain a.raw
check_eq "--backing-chain of a lone image is the image" \
    "$(no_disk "$out")" "image: a.raw
file format: raw
virtual size: 10 MiB (10485760 bytes)"

run info -f raw --output=human -U a.raw
check_eq "-f raw --output=human -U" "$rc:$(no_disk "$out")" "0:image: a.raw
file format: raw
virtual size: 10 MiB (10485760 bytes)"

run info --image-opts driver=raw,file.filename=a.raw
check_eq "--image-opts names the file" "$rc:$(no_disk "$out")" "0:image: a.raw
file format: raw
virtual size: 10 MiB (10485760 bytes)"

run info --image-opts -f raw driver=raw,file.filename=a.raw
check_eq "--image-opts with -f" "$rc:$err" \
    "1:strata-img: --image-opts and --format are mutually exclusive"

run info nonexist.raw
check_eq "missing image" "$rc:$err" \
    "1:strata-img: Could not open 'nonexist.raw': Could not open 'nonexist.raw': No such file or directory"

run info --output=xml a.raw
check_eq "bad --output" "$rc:$err" \
    "1:strata-img: --output must be used with human or json as argument."

run info a.raw a.raw
check_eq "two file names" "$rc:$err" \
    "1:strata-img: Expecting one image file name
Try 'strata-img --help' for more information"

run info
check_eq "no file name" "$rc" 1

run info -f nosuchfmt a.raw
check_eq "unknown format" "$rc" 1

done_testing
