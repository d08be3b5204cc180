#!/usr/bin/env bash
# bench: qemu-img bench's report lines, read and write runs, and writes
# that really land: --pattern at -o/-S offsets (checked with qemu-io),
# flushes with and without draining, and the option errors.
. "$top_srcdir/tests/functions.sh"
requires strata-img qemu-img qemu-io
tmpdir

img=$T/img.raw
qemu-img create -q -f raw "$img" 4M

# Sanitizer builds warn about the coroutine stack switches on stderr.
no_asan() { grep -v '^==[0-9]*==WARNING: ASan' || true; }

out=$(strata-img bench -c 1000 -d 16 -f raw "$img" 2>&1 | no_asan)
check_match "read run: request line" "$out" \
    '^Sending 1000 read requests, 4096 bytes each, 16 in parallel \(starting at offset 0, step size 4096\)$'
check_match "read run: completion line" "$out" \
    '^Run completed in [0-9]+\.[0-9]{3} seconds\.$'
check_eq "read run: two lines, as qemu-img" "$(printf '%s\n' "$out" |
    wc -l)" 2
check_eq "defaults as qemu-img's" \
    "$(strata-img bench -c 1 -f raw "$img" | head -n 1)" \
    "$(qemu-img bench -c 1 -f raw "$img" | head -n 1)"

# 64 writes of 4k with 0xab every 8k from 64k: 64k + [0, 504k] step 8k.
out=$(strata-img bench -w -c 64 -d 8 -s 4k -S 8k -o 64k --pattern 0xab \
    -f raw "$img" 2>&1)
check_match "write run: request line" "$out" \
    '^Sending 64 write requests, 4096 bytes each, 8 in parallel \(starting at offset 65536, step size 8192\)$'
cmds=()
for ((i = 0; i < 64; i++)); do
    cmds+=(-c "read -P 0xab $((65536 + i * 8192)) 4k")
    cmds+=(-c "read -P 0 $((65536 + i * 8192 + 4096)) 4k")
done
check "pattern landed at every step, gaps untouched" \
    qemu-io -f raw "${cmds[@]}" "$img"
check "nothing before -o was written" \
    qemu-io -f raw -c 'read -P 0 0 64k' "$img"

# Writes wrap inside the image: offsets modulo (size - buffer size).
qemu-img create -q -f raw "$T/wrap.raw" 64k
check "write run wrapping around a small image" \
    strata-img bench -w -c 40 -d 4 -s 4k --pattern 0x5a -f raw "$T/wrap.raw"
check "wrapped writes covered the image but the last block" \
    qemu-io -f raw -c 'read -P 0x5a 0 60k' -c 'read -P 0 60k 4k' \
    "$T/wrap.raw"

out=$(strata-img bench -w -c 200 -d 10 --flush-interval 50 -f raw \
    "$img" 2>&1)
check_match "flush interval is announced" "$out" \
    '^Sending flush every 50 requests$'
check_match "drained flushes complete" "$out" '^Run completed in'
check "flushes without draining" strata-img bench -w -c 200 -d 10 \
    --flush-interval 50 --no-drain --pattern 7 -f raw "$img"
check "--no-drain writes landed" \
    qemu-io -f raw -c 'read -P 7 0 800k' "$img"

check "read with -t none -i threads" strata-img bench -c 100 -t none \
    -i threads -f raw "$img"
check "-U read" strata-img bench -c 10 -U -f raw "$img"
check "--image-opts" strata-img bench -c 10 --image-opts \
    "driver=raw,file.filename=$img"

# Errors, with qemu-img's messages.
same_error()
{
    local desc=$1 q s rs=0
    shift
    q=$(qemu-img bench "$@" 2>&1 | sed 's/^qemu-img:/PROG:/')
    s=$(strata-img bench "$@" 2>&1) || rs=$?
    s=$(printf '%s\n' "$s" | no_asan | sed 's/^strata-img:/PROG:/')
    if [ "$rs" = 1 ] && [ "$s" = "$q" ]; then
        ok "$desc"
    else
        not_ok "$desc"
        diag "exit status $rs, want 1"
        diag "got: $s"
        diag "want: $q"
    fi
}
same_error "--flush-interval needs -w" --flush-interval 64 -f raw "$img"
same_error "flush interval below depth" -w --flush-interval 10 -f raw "$img"
same_error "bad count" -c x -f raw "$img"
same_error "bad depth" -d -1 -f raw "$img"
same_error "bad pattern" --pattern 256 -f raw "$img"
same_error "bad buffer size" -s 3G -f raw "$img"
same_error "bad step" -S x -f raw "$img"
same_error "bad aio" -i bogus -f raw "$img"
same_error "bad cache" -t bogus -f raw "$img"
check_fail "depth 0 is refused" strata-img bench -d 0 -f raw "$img"
check_fail "no file name" strata-img bench -c 1
check_fail "request past the end fails" strata-img bench -c 1 -o 8M \
    -f raw "$img"

done_testing
