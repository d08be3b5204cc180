#!/usr/bin/env bash
# strata-img snapshot prints what qemu-img 7.2 prints and exits as it does,
# for listings, usage errors and failures: both run on their own copy of
# the same image and their stdout+stderr (program name replaced) and exit
# status must match byte for byte.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/snapshot/snapshot-helpers.sh"
requires qemu-img qemu-io
tmpdir

qemu-img create -q -f qcow2 "$T/orig.qcow2" 1M
qemu-io -f qcow2 -c 'write -P 0x11 0 64k' "$T/orig.qcow2" >/dev/null
qemu-img snapshot -c foo "$T/orig.qcow2"
qemu-img snapshot -c foo "$T/orig.qcow2"
qemu-img snapshot -c 1 "$T/orig.qcow2"
qemu-img create -q -f qcow2 "$T/empty.qcow2" 1M
qemu-img create -q -f raw "$T/r.raw" 1M

# same DESC ARGS...: run `snapshot ARGS` (IMG in ARGS is replaced by a fresh
# copy of orig.qcow2 for each tool) and compare.
same()
{
    local desc=$1 tool out a
    shift
    for tool in qemu-img strata-img; do
        cp "$T/orig.qcow2" "$T/img.qcow2"
        local args=()
        for a in "$@"; do
            args+=("${a//IMG/$T/img.qcow2}")
        done
        out=$(cd "$T" && "$tool" snapshot "${args[@]}" 2>&1; echo "rc=$?")
        out=${out//strata-img/qemu-img}
        if [ "$tool" = qemu-img ]; then
            want=$out
        fi
    done
    check_eq "$desc" "$out" "$want"
}

same "list" -l IMG
same "list with -U" -U -l IMG
same "list with --image-opts" -l --image-opts driver=qcow2,file.filename=IMG
same "list, no snapshots" -l empty.qcow2
same "list, raw image" -l r.raw
same "create (silent)" -c new IMG
same "create, -q" -q -c new IMG
same "create with a duplicate name" -c foo IMG
same "apply by id before name" -a 1 IMG
same "apply unknown" -a nope IMG
same "delete by name" -d foo IMG
same "delete looks up names only" -d 3 IMG
same "delete unknown" -d nope IMG
same "create on raw" -c x r.raw
same "delete on raw" -d x r.raw
same "-U with a writing action" -U -c x IMG
same "no action" IMG
same "missing file" -l nonexistent.qcow2
same "no file name" -l
same "two file names" -l IMG IMG
same "mixed actions" -l -a x IMG
same "mixed actions, other order" -c x -d x IMG
same "unknown option" -x IMG
same "missing argument" -a
same "no arguments at all"

# qemu-img prints the raw-format warning twice for -a (its fallback opens
# the image again); the error line and status are the same
out=$(cd "$T" && strata-img snapshot -a x r.raw 2>&1; echo "rc=$?")
check_eq "apply on raw: the error and status" "$(echo "$out" | tail -n2)" \
    "strata-img: Could not apply snapshot 'x': Block driver does not support \
snapshots
rc=1"

# a 300-byte name is cut to 255 bytes by both
long=$(printf 'n%.0s' $(seq 300))
cp "$T/empty.qcow2" "$T/ls.qcow2"
cp "$T/empty.qcow2" "$T/lq.qcow2"
strata-img snapshot -c "$long" "$T/ls.qcow2"
qemu-img snapshot -c "$long" "$T/lq.qcow2"
check_eq "a long name is cut as qemu-img cuts it" \
    "$(strata-img snapshot -l "$T/ls.qcow2" | awk 'NR == 3 { print $2 }')" \
    "$(strata-img snapshot -l "$T/lq.qcow2" | awk 'NR == 3 { print $2 }')"
check_eq "... to 255 bytes" \
    "$(qemu-img snapshot -l "$T/ls.qcow2" | awk 'NR == 3 { print length($2) }')" \
    255

done_testing
