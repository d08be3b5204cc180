#!/usr/bin/env bash
# strata-img commit's failures against qemu-img's: messages and exit codes
# side by side, and a base locked by another process (the reopen fails
# with QEMU's message and leaves the chain as it was).
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/chain/chain-lib.sh"
requires strata-img strata-io qemu-img qemu-io
tmpdir
cd "$T"

mkchain orig raw
cp -r orig q
cp -r orig s

same_errors "no backing file" commit -f raw base.raw
same_errors "-b not in the chain" commit -b nothere.qcow2 top.qcow2
same_errors "-b naming the image itself" commit -b top.qcow2 top.qcow2
same_errors "no file name" commit
same_errors "two file names" commit top.qcow2 mid.qcow2
same_errors "bad cache mode" commit -t bogus top.qcow2
same_errors "bad rate limit" commit -r abc top.qcow2
same_errors "missing image" commit nothere.qcow2
check "failed commits changed nothing" cmp orig/top.qcow2 s/top.qcow2

# a reader elsewhere that does not share write: no write lock on mid
ino=$(stat -c %i s/mid.qcow2)
strata-io -r -c 'sleep 20000' s/mid.qcow2 >/dev/null 2>&1 &
holder=$!
cleanup_fn kill "$holder"
if wait_until 10 grep -q ":$ino 201 201" /proc/locks; then
    out=$(cd s && strata-img commit top.qcow2 2>&1) && rc=0 || rc=$?
    check_eq "locked base: QEMU's message" "$out" \
"strata-img: Failed to get \"write\" lock
Is another process using the image [mid.qcow2]?"
    check_eq "locked base: exit code 1" "$rc" 1
    qout=$(cd s && qemu-img commit top.qcow2 2>&1) || true
    check_eq "qemu-img says the same" "${qout//qemu-img/strata-img}" "$out"
    check "locked base: mid untouched" cmp orig/mid.qcow2 s/mid.qcow2
    check "locked base: top untouched" cmp orig/top.qcow2 s/top.qcow2
else
    for i in 1 2 3 4 5; do
        skip "locked base" "no OFD locks here"
    done
fi
# under STRATA_VALGRIND the holder is a shell running valgrind: end both
pkill -P "$holder" 2>/dev/null
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null || true
wait_until 10 sh -c "! grep -q ':$ino ' /proc/locks" || true
check "commit works once the lock is gone" \
    sh -c 'cd s && strata-img commit -q top.qcow2'
(cd q && qemu-img commit -q top.qcow2)
same_image "and gives qemu-img's result" q/mid.qcow2 s/mid.qcow2

done_testing
