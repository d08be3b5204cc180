# Helpers shared by the qcow2 tests (sourced after tests/functions.sh).

# poke FILE OFFSET HEXBYTES: overwrite bytes of FILE at OFFSET, e.g.
# `poke img 20 0000001e` writes the big-endian 32-bit value 30.
poke()
{
    local hex=$3 esc=""
    while [ -n "$hex" ]; do
        esc="$esc\\x${hex:0:2}"
        hex=${hex:2}
    done
    printf "$esc" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# peek FILE OFFSET COUNT: COUNT bytes of FILE at OFFSET as plain hex.
peek()
{
    od -An -tx1 -v -j "$2" -N "$3" "$1" | tr -d ' \n'
}

# qcheck DESC IMG: `qemu-img check` finds neither errors nor leaks.
qcheck()
{
    check "$1" qemu-img check -q "$2"
}

# no_asan: drop the warning an ASan build prints about coroutine stacks.
no_asan()
{
    grep -v '^==[0-9]*==WARNING: ASan' || true
}

# run TOOL IMG: the requests of the array OPS in one session of TOOL
# (strata-io or qemu-io)
run()
{
    local args=() o
    for o in "${OPS[@]}"; do
        args+=(-c "$o")
    done
    "$1" "${args[@]}" "$2" >/dev/null 2>&1
}

# same DESC A B: the two files are byte-identical
same()
{
    if cmp -s "$2" "$3"; then
        ok "$1"
    else
        not_ok "$1"
        diag "$(cmp "$2" "$3" 2>&1)"
    fi
}
