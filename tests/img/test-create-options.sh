#!/usr/bin/env bash
# strata-img create: the "Formatting" line, -q, -o options (help, errors,
# preallocation), size given twice or not at all, and qemu-img's messages
# for the command line errors.
. "$top_srcdir/tests/functions.sh"
requires strata-img
tmpdir
cd "$T"

# run ARGS...: strata-img with stdout and stderr together in $out.
run()
{
    rc=0
    out=$(strata-img "$@" 2>&1) || rc=$?
}

# allocated FILE: bytes the file occupies on disk.
allocated()
{
    echo $(($(stat -c %b "$1") * 512))
}

plan 32

run create a.raw 1M
check_eq "create prints qemu-img's Formatting line" "$rc:$out" \
    "0:Formatting 'a.raw', fmt=raw size=1048576"
check_eq "the image has the size" "$(file_size a.raw)" 1048576
if [ "$(allocated a.raw)" -lt 1048576 ]; then
    ok "the image is sparse without preallocation"
else
    not_ok "the image is sparse without preallocation"
fi

run create -q -f raw q.raw 64k
check_eq "-q prints nothing" "$rc:$out" "0:"

run create -f raw -o preallocation=full full.raw 1M
check_eq "preallocation=full is shown" "$out" \
    "Formatting 'full.raw', fmt=raw size=1048576 preallocation=full"
if [ "$(allocated full.raw)" -ge 1048576 ]; then
    ok "preallocation=full allocates the image"
else
    not_ok "preallocation=full allocates the image"
    diag "allocated $(allocated full.raw)"
fi

run create -o nocow=on,extent_size_hint=2M,preallocation=falloc f.raw 1M
check_eq "options are shown in QEMU's order, sizes in bytes" "$out" \
    "Formatting 'f.raw', fmt=raw size=1048576 nocow=on preallocation=falloc extent_size_hint=2097152"

run create -o size=5M s.raw
check_eq "-o size= sets the size" "$rc:$(file_size s.raw)" "0:5242880"

run create -o size=5M s2.raw 6M
check_eq "size given twice" "$rc:$out" \
    "1:strata-img: s2.raw: The image size must be specified only once"

run create x.raw
check_eq "no size" "$rc:$out" \
    "1:strata-img: x.raw: Image creation needs a size parameter"

run create -o foo=bar x.raw 1M
check_eq "unknown -o option" "$rc:$out" \
    "1:strata-img: x.raw: Invalid parameter 'foo'"

run create -o nocow=maybe x.raw 1M
check_eq "bad boolean" "$rc:$out" \
    "1:strata-img: x.raw: Parameter 'nocow' expects 'on' or 'off'"

run create -o size=abc x.raw
check_eq "bad size option" "$rc:$out" \
    "1:strata-img: x.raw: Parameter 'size' expects a non-negative number below 2^64
Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-
and exabytes, respectively."

run create -o ,, x.raw 1M
check_eq "malformed option list" "$rc:$out" \
    "1:strata-img: Invalid option list: ,,"

run create -b base.raw x.raw 1M
check_eq "raw has no backing file" "$rc:$out" \
    "1:strata-img: x.raw: Backing file not supported for file format 'raw'"

run create -F raw x.raw 1M
check_eq "raw has no backing format" "$rc:$out" \
    "1:strata-img: x.raw: Backing file format not supported for file format 'raw'"

run create -f nosuchfmt x.raw 1M
check_eq "unknown format" "$rc:$out" \
    "1:strata-img: x.raw: Unknown file format 'nosuchfmt'"
[ ! -e x.raw ] && ok "failed creates leave no file" ||
    not_ok "failed creates leave no file"

run create
check_eq "no file name" "$rc:$out" "1:strata-img: Expecting image file name
Try 'strata-img --help' for more information"

run create x.raw 1M extra
check_eq "extra argument" "$rc:$out" "1:strata-img: Unexpected argument: extra
Try 'strata-img --help' for more information"

help_file="Supported options:
  extent_size_hint=<size> - Extent size hint for the image file, 0 to disable
  nocow=<bool (on/off)>  - Turn off copy-on-write (valid only on btrfs)
  preallocation=<str>    - Preallocation mode (allowed values: off, falloc, full)
  size=<size>            - Virtual disk size"
run create -f raw -o help x.raw
check_eq "-o help with a file name lists the options" "$rc:$out" "0:$help_file"
run create -o '?' x.raw 1M
check_eq "-o ? is help too" "$rc:$out" "0:$help_file"
run create -o size=1M,help x.raw
check_eq "help anywhere in the list" "$rc:$out" "0:$help_file"

run create -f raw -o help
check_eq "-o help without a file name: the format's options" "$rc:$out" \
    "0:Supported raw options:
  size=<size>            - Virtual disk size

The protocol level may support further options.
Specify the target filename to include those options."

run create -f nosuchfmt -o help
check_eq "-o help of an unknown format" "$rc:$out" \
    "1:strata-img: Unknown file format 'nosuchfmt'"

echo "old contents" >old.raw
run create -q old.raw 4k
head3=$(head -c 3 old.raw | od -An -tx1 | tr -d ' ')
check_eq "an existing file is recreated" "$rc:$(file_size old.raw):$head3" \
    "0:4096:000000"

# number options are read as qemu-img reads them (strtoull, base 0)
if command -v qemu-img >/dev/null; then
    for v in 020 +16 " 16" -16 08 "16 "; do
        run create -f qcow2 -o "refcount_bits=$v" n.qcow2 1M
        s="$rc:${out//strata-img/X}:$(qemu-img info n.qcow2 2>/dev/null |
                                     grep 'refcount bits')"
        rm -f n.qcow2
        rc=0
        out=$(qemu-img create -f qcow2 -o "refcount_bits=$v" n.qcow2 1M \
              2>&1) || rc=$?
        q="$rc:${out//qemu-img/X}:$(qemu-img info n.qcow2 2>/dev/null |
                                   grep 'refcount bits')"
        rm -f n.qcow2
        check_eq "-o refcount_bits='$v' as qemu-img" "$s" "$q"
    done
else
    for i in 1 2 3 4 5 6; do
        skip "-o refcount_bits as qemu-img" "qemu-img is not installed"
    done
fi

done_testing
