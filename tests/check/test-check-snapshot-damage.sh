#!/usr/bin/env bash
# check on qcow2 images whose snapshot table cannot be read: more than
# 65536 entries, an entry with more than 1 KiB of extra data, a table
# offset not aligned to a cluster.  strata-img check (without -r) opens
# them and fails with qemu-img check's report, word for word, human and
# JSON, exit 1.  Anything that would write (check -r, snapshot -c) or
# read them (info) refuses them and leaves the file as it was.  A table
# past the end of the file is reported as unreadable (qemu-img reads
# zeroes there and reports incomplete entries).  Entries of a version 3
# image with less than 16 bytes of extra data are reported and repaired
# byte for byte as by qemu-img.
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io python3
tmpdir
. "$top_srcdir/tests/check/check-lib.sh"

cd "$T"
qemu-img create -q -f qcow2 base.qcow2 16M
qemu-io -c "write -P 1 0 1M" base.qcow2 >/dev/null
qemu-img snapshot -c s1 base.qcow2
qemu-io -c "write -P 3 0 64k" base.qcow2 >/dev/null
qemu-img snapshot -c s2 base.qcow2

# damage IMG WHAT: nb_snapshots 70000 (many), entry 0's extra data size
# 5000 (extra), the table offset + 8 (misaligned), the table 1 TiB out (eof)
damage()
{
    case $2 in
    many) $DAMAGE "$1" sn-count 70000 ;;
    extra) $DAMAGE "$1" sn-extra-size 0 5000 ;;
    misaligned) $DAMAGE "$1" sn-table-offset-add 8 ;;
    eof) $DAMAGE "$1" sn-table-offset $((1 << 40)) ;;
    esac
}

cases="many extra misaligned"
plan $((3 * 6 + 8 + 4))

for c in $cases; do
    cp base.qcow2 "$c.qcow2"
    damage "$c.qcow2" "$c" || bail_out "could not damage $c.qcow2"
    cmp -s base.qcow2 "$c.qcow2" && bail_out "$c.qcow2 was not damaged"
    same_check "$c: check" "$c.qcow2"
    check_eq "$c: ... which fails (exit 1)" "$rc" 1
    same_check "$c: check --output=json" "$c.qcow2" --output=json
    cp "$c.qcow2" before.qcow2
    check_fail "$c: check -r all refuses to write over it" \
        strata-img check -r all "$c.qcow2"
    check "$c: ... and leaves the file as it was" cmp before.qcow2 "$c.qcow2"
    check_fail "$c: info refuses it" strata-img info "$c.qcow2"
done

# entries of a version 3 image without the 16 bytes of extra data QEMU 3+
# writes: corruptions, repaired by rewriting the table, as qemu-img does
cp base.qcow2 inc.qcow2
$DAMAGE inc.qcow2 sn-strip-extra || bail_out "could not write inc.qcow2"
same_check "incomplete: check" inc.qcow2
check_eq "incomplete: ... finds corruptions (exit 2)" "$rc" 2
same_check "incomplete: check --output=json" inc.qcow2 --output=json
same_check "incomplete: check -r leaks" inc.qcow2 -r leaks
same_check "incomplete: check -r all" inc.qcow2 -r all
check "incomplete: both repairs leave the same file" cmp "$CMP_S" "$CMP_Q"
check "incomplete: qemu-img check finds strata's repair clean" \
    qemu-img check "$CMP_S"
check_eq "incomplete: the snapshots keep their names" \
    "$(qemu-img snapshot -l "$CMP_S" | awk 'NR > 2 { print $1, $2 }')" \
    "1 s1
2 s2"

cp base.qcow2 eof.qcow2
damage eof.qcow2 eof
_run strata-img check eof.qcow2
check_match "eof: check names the unreadable table" "$(cat "$_out")" \
    "ERROR failed to read the snapshot table: Snapshot table entry 0 lies past the end of the image file"
check_match "eof: ... and fails" "$(cat "$_out")" "Check failed"
check_fail "eof: snapshot -c refuses it" strata-img snapshot -c s3 eof.qcow2
check "eof: the undamaged copy is clean for qemu-img" qemu-img check base.qcow2
done_testing
