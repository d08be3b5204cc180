#!/usr/bin/env bash
# -m (parallel requests) and -W (out-of-order writes) change how convert
# works, never what it writes: every variant gives the same bytes and the
# same allocation as the default.
. "$top_srcdir/tests/functions.sh"
requires strata-img qemu-img qemu-io
tmpdir

# Many small extents, so chunks of several coroutines interleave.
src=$T/src.raw
qemu-img create -q -f raw "$src" 24M
cmds=()
for ((i = 0; i < 24; i++)); do
    cmds+=(-c "write -P $((i + 1)) $((i * 1024 + (i % 3) * 128))k \
$(((i % 5 + 1) * 100))k")
done
cmds+=(-c 'write -P 0x77 20M 4M')   # a long run: several full chunks
qemu-io -f raw "${cmds[@]}" "$src" >/dev/null

map() { qemu-img map -f raw --output=json "$1"; }

strata-img convert -f raw -O raw "$src" "$T/ref.raw"
check "default output reads as the source" \
    qemu-img compare -f raw -F raw "$src" "$T/ref.raw"
ref_map=$(map "$T/ref.raw")

for v in "-m 1" "-m 2" "-m 16" "-W" "-m 1 -W" "-m 16 -W" "-m 5 -W -S 8k"; do
    read -r -a args <<<"$v"
    out=$T/out.raw
    rm -f "$out"
    check "convert $v" strata-img convert "${args[@]}" -f raw -O raw \
        "$src" "$out"
    if [[ $v == *-S* ]]; then
        rm -f "$T/q.raw"
        qemu-img convert -S 8k -f raw -O raw "$src" "$T/q.raw"
        check "$v: same bytes as qemu-img -S 8k" cmp "$out" "$T/q.raw"
        check_eq "$v: same map as qemu-img -S 8k" "$(map "$out")" \
            "$(map "$T/q.raw")"
    else
        check "$v: same bytes as the default" cmp "$out" "$T/ref.raw"
        check_eq "$v: same map as the default" "$(map "$out")" "$ref_map"
    fi
done

# -r (rate limit) is honoured without changing the result.
rm -f "$T/out.raw"
check "convert -r 64M" strata-img convert -r 64M -f raw -O raw "$src" \
    "$T/out.raw"
check "-r: same bytes as the default" cmp "$T/out.raw" "$T/ref.raw"

done_testing
