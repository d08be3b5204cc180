#!/usr/bin/env bash
# VHDX BAT updates go through the log: a write killed at every point of an
# allocation (the fault filter's kill-write) leaves an image from which
# strata and QEMU both read either the old or the new data, never a mix,
# and qemu-img check finds clean once the log is replayed; where the kill
# fell between the log entry and the in-place BAT write, the change is in
# the log only and both replay it.  A run that completes leaves the log
# empty (qemu-img opens it read-only), a long run wraps the circular log
# and kills after the wrap are still replayed, concurrent allocations
# land.
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io python3 strata-img strata-io
tmpdir
cd "$T"
tool() { python3 "$top_srcdir/tests/vhdx/vhdx-tool.py" "$@"; }
fault() { echo "driver=vhdx,file.driver=fault,file.file.filename=$1,file.kill-write=$2"; }
# run strata-io on the fault filter; a kill is expected (the shell's
# "Killed" report goes nowhere from the subshell)
killed_io() { (strata-io "$@" >/dev/null 2>&1) 2>/dev/null; }
# every pattern read verifies: reads_back CMD... (output must not say
# "verification failed")
reads_back() { local out; out=$("$@" 2>&1) && ! grep -q "verification failed" <<<"$out"; }
# what the 64 KiB at 16M read as: new, old or mixed
content() {
    if "$@" -c "read -P 0x22 16M 64k" 2>&1 | grep -q "verification failed"
    then
        if "$@" -c "read -P 0 16M 64k" 2>&1 | grep -q "verification failed"
        then echo mixed; else echo old; fi
    else
        echo new
    fi
}

plan 25

strata-img create -q -f vhdx g.vhdx 40M
strata-io -c "write -P 0x11 0 1M" g.vhdx >/dev/null
check_match "a complete run leaves the log empty" "$(tool state g.vhdx 0)" \
    "^log=empty .* written=1 block=6"
check "  qemu-img check opens it read-only, clean" qemu-img check g.vhdx

# kill each write of an allocation in turn, until one run completes
bad_s= bad_q= bad_c= only_log= done_n=
for n in $(seq 1 30); do
    cp g.vhdx k.vhdx
    rc=0
    killed_io --image-opts "$(fault k.vhdx "$n")" \
        -c "write -P 0x22 16M 64k" || rc=$?
    st=$(tool state k.vhdx 2)
    cp k.vhdx kq.vhdx
    s=$(content strata-io k.vhdx)
    q=$(content qemu-io -f vhdx kq.vhdx)
    case $s in new|old) ;; *) bad_s+=" $n:$s" ;; esac
    case $q in new|old) ;; *) bad_q+=" $n:$q" ;; esac
    [ "$s" = "$q" ] || bad_q+=" $n:$s/$q"
    qemu-img check -q kq.vhdx || bad_c+=" $n"
    strata-io -c "read -P 0x11 0 1M" k.vhdx | grep -q verification &&
        bad_s+=" $n:old-data"
    case $st in
    "log=active live=1 "*" block=2")
        [ -z "$only_log" ] && only_log=$n && only_s=$s && only_q=$q
        cp g.vhdx r.vhdx
        killed_io --image-opts "$(fault r.vhdx "$n")" \
            -c "write -P 0x22 16M 64k" || true ;;
    esac
    if [ "$rc" = 0 ]; then
        done_n=$n
        break
    fi
done
check_eq "every kill point: strata reads old or new data" "$bad_s" ""
check_eq "every kill point: qemu-io (replaying) reads what strata reads" \
    "$bad_q" ""
check_eq "every kill point: qemu-img check clean after the replay" "$bad_c" ""
check_match "the run completed at some write" "${done_n:-none}" "^[0-9]+$"
check_match "some kill left the BAT change in the log only" \
    "${only_log:-none}" "^[0-9]+$"
check_eq "  strata replays it: new data" "${only_s:-}" new
check_eq "  qemu-io replays it: new data" "${only_q:-}" new
check_match "  qemu-img refuses it read-only" \
    "$(qemu-img check r.vhdx 2>&1 || true)" "log that needs to be replayed"
check "  qemu-img check -r all replays it" qemu-img check -q -r all r.vhdx
check "  ... then reads the new data" reads_back qemu-io -r \
    -c "read -P 0x22 16M 64k" -c "read -P 0x11 0 1M" r.vhdx

# 150 allocations in one open fill the 1 MiB log (8 KiB per entry) and
# start again at its beginning under a new log GUID.  Kill at the in-place
# BAT write of allocation 129 (the first entry at the log's start; the
# 128 entries after it have the old GUID) and of allocation 150 (its entry
# and the one before, whose in-place write no flush has carried yet, form
# the active sequence); qemu's replay, which ignores the tail, must find
# the same changes as ours.
strata-img create -q -f vhdx -o block_size=1M w0.vhdx 150M
cmds=()
for i in $(seq 0 149); do
    cmds+=(-c "write -P $((i + 1)) ${i}M 4k")
done
for last in 129 150; do
    cp w0.vhdx w.vhdx
    # writes: 2 headers (first write); allocation 1: data, 2 headers (log
    # GUID), entry, BAT; then data, entry, BAT each; 2 headers at the wrap
    kw=$((7 + 3 * (last - 1) + (last > 128 ? 2 : 0)))
    killed_io -t writeback --image-opts "$(fault w.vhdx $kw)" "${cmds[@]}" ||
        true
    rd=()
    for i in $(seq 0 $((last - 1))); do
        rd+=(-c "read -P $((i + 1)) ${i}M 4k")
    done
    check_match "allocation $last: killed before its BAT write, log wrapped" \
        "$(tool state w.vhdx $((last - 1)))" \
        "^log=active live=$((last - 128)) head=$last wrapped=yes .* block=2"
    cp w.vhdx wq.vhdx
    check "  strata replays it: every block reads back" \
        reads_back strata-io "${rd[@]}" w.vhdx
    check "  qemu-io replays it: every block reads back" \
        reads_back qemu-io -f vhdx "${rd[@]}" wq.vhdx
    check "  qemu-img check clean" qemu-img check -q wq.vhdx
done

# concurrent allocations: 16 aio writes, two into each of 8 new blocks,
# the data written outside the lock, the BAT changes logged one by one
strata-img create -q -f vhdx -o block_size=1M c.vhdx 16M
aw=() ar=()
for i in $(seq 0 15); do
    at=$(( (i * 3 % 8) * 1048576 + (i / 8) * 524288 ))
    aw+=(-c "aio_write -P $((i + 1)) $at 64k")
    ar+=(-c "read -P $((i + 1)) $at 64k")
done
check "concurrent allocations of 8 blocks" strata-io -t writeback "${aw[@]}" \
    -c aio_flush c.vhdx
check "  qemu-io reads every write back" reads_back qemu-io -r "${ar[@]}" c.vhdx
check "  qemu-img check clean" qemu-img check -q c.vhdx
check_match "  the log is empty, 8 entries were written" \
    "$(tool state c.vhdx 7)" "^log=empty .* written=8 block=6"

check_match "convert raw -> vhdx leaves the log empty" \
    "$(qemu-img create -q -f raw m.raw 20M &&
       qemu-io -f raw -c 'write -P 7 1M 9M' m.raw >/dev/null &&
       strata-img convert -O vhdx -o block_size=1M m.raw m.vhdx &&
       qemu-img compare m.raw m.vhdx >/dev/null && tool state m.vhdx 1)" \
    "^log=empty .* block=6"
done_testing
