# Helpers for the commit/rebase tests: build the same chain twice (for
# strata-img and for qemu-img) and compare the results.

# mkchain DIR BASEFMT [TOPSIZE]: DIR/base.BASEFMT (4 MiB), DIR/mid.qcow2
# and DIR/top.qcow2 (TOPSIZE, default 4M) with data, zero clusters and
# partial-cluster writes in every layer.
mkchain()
{
    local d=$1 bf=$2 ts=${3:-4M}
    mkdir -p "$d"
    qemu-img create -q -f "$bf" "$d/base.$bf" 4M
    qemu-io -f "$bf" -c 'write -P 0x11 0 1M' -c 'write -P 0x12 3M 512k' \
        "$d/base.$bf" >/dev/null
    qemu-img create -q -f qcow2 -b "base.$bf" -F "$bf" "$d/mid.qcow2"
    qemu-io -f qcow2 -c 'write -P 0x21 512k 256k' -c 'write -z 3M 64k' \
        -c 'write -P 0x22 2M 4k' "$d/mid.qcow2" >/dev/null
    qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 "$d/top.qcow2" "$ts"
    qemu-io -f qcow2 -c 'write -P 0x31 64k 64k' -c 'write -z 128k 64k' \
        -c 'write -z -u 576k 64k' -c 'write -P 0x32 1000k 3k' \
        -c 'write -P 0x33 3200k 128k' "$d/top.qcow2" >/dev/null
}

# map_nooff IMG [ARGS]: the JSON map without host offsets, neighbours
# that differ only in where their clusters lie merged (parallel writers
# place clusters in another order than qemu-img's single one does).
map_nooff()
{
    qemu-img map --output=json "$@" |
        sed -e 's/^\[//' -e 's/\]$//' -e 's/},$/}/' \
            -e 's/, "offset": [0-9]*//' \
            -e 's/^{ "start": \([0-9]*\), "length": \([0-9]*\), /\1 \2 /' |
        awk '{ start = $1; len = $2; $1 = ""; $2 = ""; rest = $0
               if (n && rest == prest && start == pend) { pend += len; next }
               if (n) print pstart, pend - pstart, prest
               n = 1; pstart = start; pend = start + len; prest = rest }
             END { if (n) print pstart, pend - pstart, prest }'
}

# same_image DESC A B [FMT]: qemu-img compare finds equal content.
same_image()
{
    local f=${4:+-f $4 -F $4}
    # shellcheck disable=SC2086
    check "$1" qemu-img compare $f "$2" "$3"
}

# clean_image DESC IMG: qemu-img check finds no error.
clean_image()
{
    check "$1" qemu-img check -q "$2"
}

# same_stderr DESC EXPECTED-RC: run "$@" after -- with both tools (the
# program name is the first word) and compare messages and exit codes.
same_errors()
{
    local desc=$1 qout sout qrc=0 src=0
    shift
    qout=$(cd q && qemu-img "$@" 2>&1) || qrc=$?
    sout=$(cd s && strata-img "$@" 2>&1) || src=$?
    check_eq "$desc: message" "$sout" "${qout//qemu-img/strata-img}"
    check_eq "$desc: exit code $qrc" "$src" "$qrc"
}
