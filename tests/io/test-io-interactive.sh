#!/usr/bin/env bash
# Without -c, strata-io reads commands from stdin after a prompt, as
# qemu-io does, until quit or the end of input.
. "$top_srcdir/tests/functions.sh"
requires strata-io
tmpdir

img=$T/a.raw
truncate -s 4M "$img"

# feed TEXT ARGS...: run strata-io ARGS with TEXT on stdin; sets rc, out.
feed()
{
    local text=$1
    shift
    rc=0
    out=$(printf '%s' "$text" | strata-io "$@" 2>&1) || rc=$?
}

plan 10

feed $'write -q -P 0x22 0 4k\nread -q -P 0x22 0 4k\nquit\n' -f raw "$img"
check_eq "commands from stdin, then quit" "$rc:$out" \
    "0:strata-io> strata-io> strata-io> "
feed $'length\n' -f raw "$img"
check_eq "end of input ends the session" "$rc:$out" \
    "0:strata-io> 4 MiB
strata-io> "
feed $'length' -f raw "$img"
check_eq "a last line without a newline still runs" "$rc:$out" \
    "0:strata-io> 4 MiB
strata-io> "
feed $'\n   \nlength\n' -f raw "$img"
check_eq "blank lines are ignored" "$rc:$out" \
    "0:strata-io> strata-io> strata-io> 4 MiB
strata-io> "
feed $'read -q -P 0x33 0 4k\nlength\n' -f raw "$img"
check_eq "a failed command makes the exit status 1" "$rc" 1
feed $'quit\nread 0 1x\n' -f raw "$img"
check_eq "nothing runs after quit" "$rc:$out" "0:strata-io> "
feed "open -o driver=raw $img"$'\nlength\nclose\nlength\n'
check_eq "open and close from the prompt" "$rc:$out" \
    "1:strata-io> strata-io> 4 MiB
strata-io> strata-io> no file open, try 'help open'
strata-io> "
feed $'help quit\n'
check_eq "help without an image" "$rc:$out" \
    "0:strata-io> quit -- exit the program
strata-io> "
feed $'aio_write -P 0x44 0 64k\naio_read -q -P 0 1M 4k\nlength\naio_flush\nread -q -P 0x44 0 64k\n' \
    -f raw "$img"
check_eq "aio requests complete within the session" "$rc" 0
check_match "and report" "$out" 'wrote 65536/65536 bytes at offset 0$'

done_testing
