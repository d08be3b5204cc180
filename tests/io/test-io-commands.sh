#!/usr/bin/env bash
# Every strata-io command on a raw image, with qemu-io 7.2's output wording
# (the expected lines were taken from qemu-io itself).
. "$top_srcdir/tests/functions.sh"
requires strata-io
tmpdir

img=$T/a.raw
truncate -s 4M "$img"

# sio ARGS...: run strata-io on $img, stdout and stderr together; sets rc.
sio()
{
    rc=0
    out=$(strata-io -f raw "$@" "$img" 2>&1) || rc=$?
}

stats_re='^[0-9.]+ (bytes|KiB|MiB), 1 ops; [0-9]{2}\.[0-9]{2} sec \([0-9.]+ (bytes|KiB|MiB|GiB|TiB)/sec and [0-9.]+ ops/sec\)$'

plan 40

# write and read
sio -c 'write 1M 64k'
check_eq "write: exit status 0" "$rc" 0
check_eq "write: qemu-io's report line" "$(sed -n 1p <<<"$out")" \
    "wrote 65536/65536 bytes at offset 1048576"
check_match "write: statistics line" "$(sed -n 2p <<<"$out")" "$stats_re"
check_match "write: statistics say 64 KiB" "$(sed -n 2p <<<"$out")" '^64 KiB, 1 ops'
sio -c 'read -P 0xcd 1M 64k'
check_eq "read -P: default write pattern is 0xcd" "$rc:$(sed -n 1p <<<"$out")" \
    "0:read 65536/65536 bytes at offset 1048576"
sio -c 'write -q -P 0x41 0 16' -c 'write -q -P 0x7f 16 3' -c 'read -v 0 19'
check_eq "read -v: hex and alphanumeric dump as qemu-io" \
    "$(sed -n 1,3p <<<"$out")" \
    "00000000:  41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41  AAAAAAAAAAAAAAAA
00000010:  7f 7f 7f  ...
read 19/19 bytes at offset 0"
sio -c 'read -q -v 0 19'
check_eq "read -q: no dump and no statistics" "$rc:$out" "0:"
rc=0
out=$(strata-io -q -f raw -c 'write 0 512' -c 'read 0 512' "$img" 2>&1) || rc=$?
check_eq "global -q silences every command" "$rc:$out" "0:"
sio -c 'read -C 0 512'
check_match "read -C: machine-parsable statistics" "$out" \
    '^512,1,[0-9]+:[0-9]{2}:[0-9]{2}\.[0-9]{2},[0-9.]+,[0-9.]+$'
sio -c 'write -P 0x5a 1.5k 0x200'
check_eq "sizes take suffixes, fractions and hex" "$(sed -n 1p <<<"$out")" \
    "wrote 512/512 bytes at offset 1536"
sio -c 'r -q 0 512' -c 'w -q 0 512' -c 'l'
check_eq "one-letter aliases (r, w, l)" "$rc:$out" "0:4 MiB"

# vectored I/O
sio -c 'writev -P 0x12 512 1k 2k 512'
check_eq "writev: total of the lengths" "$(sed -n 1p <<<"$out")" \
    "wrote 3584/3584 bytes at offset 512"
check_match "writev: 3.500 KiB in the statistics" "$(sed -n 2p <<<"$out")" \
    '^3\.500 KiB, 1 ops'
sio -c 'readv -P 0x12 512 1k 2k 512' -c 'read -q -P 0x12 512 3584'
check_eq "readv -P: data written by writev" "$rc:$(sed -n 1p <<<"$out")" \
    "0:read 3584/3584 bytes at offset 512"
sio -c 'readv -v 512 16 16'
check_eq "readv -v dumps the buffers as one" "$(sed -n 1,2p <<<"$out")" \
    "00000200:  12 12 12 12 12 12 12 12 12 12 12 12 12 12 12 12  ................
00000210:  12 12 12 12 12 12 12 12 12 12 12 12 12 12 12 12  ................"

# zeroes, FUA, source files
sio -c 'write -q -P 0x99 0 64k' -c 'write -z 0 64k' -c 'read -q -P 0 0 64k'
check_eq "write -z zeroes the range" "$rc:$(sed -n 1p <<<"$out")" \
    "0:wrote 65536/65536 bytes at offset 0"
sio -c 'write -q -P 0x99 0 64k' -c 'write -q -z -u 4k 8k' \
    -c 'read -q -P 0 4k 8k' -c 'read -q -P 0x99 0 4k' -c 'read -q -P 0x99 12k 4k'
check_eq "write -z -u zeroes exactly its range" "$rc:$out" "0:"
sio -c 'write -q -f -P 0x31 8k 4k' -c 'read -q -P 0x31 8k 4k'
check_eq "write -f (FUA) writes" "$rc:$out" "0:"
sio -c 'write -q -n -z 0 4k' -c 'read -q -P 0 0 4k'
check_match "write -n -z: zeroes cheaply or fails cleanly" "$rc:$out" \
    '^(0:|1:write failed: )'
printf abc >"$T/pat"
sio -c "write -q -s $T/pat 0 10" -c 'read -v 0 10'
check_eq "write -s repeats the source file" "$(sed -n 1p <<<"$out")" \
    "00000000:  61 62 63 61 62 63 61 62 63 61  abcabcabca"
: >"$T/empty"
sio -c "write -s $T/empty 0 10"
check_match "write -s with an empty file fails" "$rc:$out" '^1:.*file is empty'
sio -c 'write -c 0 64k'
check_eq "write -c is refused cleanly" "$rc:$out" \
    "1:write failed: Operation not supported"

# discard, flush
sio -c 'discard 0 64k'
check_eq "discard: qemu-io's report line" "$rc:$(sed -n 1p <<<"$out")" \
    "0:discard 65536/65536 bytes at offset 0"
sio -c 'discard -q 64k 64k' -c 'flush' -c 'f'
check_eq "discard -q and flush print nothing" "$rc:$out" "0:"

# length, info, map, alloc
sio -c length
check_eq "length" "$rc:$out" "0:4 MiB"
sio -c info
check_eq "info on raw" "$rc:$out" "0:format name: raw
cluster size: 0 bytes
vm state offset: 0 bytes"
sio -c map
check_eq "map: raw is allocated throughout, as in qemu-io" "$rc:$out" \
    "0:4 MiB (0x400000) bytes     allocated at offset 0 bytes (0x0)"
sio -c 'alloc 0 4k' -c 'alloc 1M'
check_eq "alloc" "$rc:$out" "0:4096/4096 bytes allocated at offset 0 bytes
512/512 bytes allocated at offset 1 MiB"
sio -c 'alloc 4095k 1M'
check_eq "alloc stops at the end of the image" "$out" \
    "1024/1024 bytes allocated at offset 3.999 MiB"

# truncate
sio -c 'truncate 8M' -c length
check_eq "truncate grows the image" "$rc:$out:$(file_size "$img")" \
    "0:8 MiB:8388608"
sio -c 'truncate -m falloc 9M' -c 'length'
check_eq "truncate -m falloc" "$rc:$out" "0:9 MiB"
sio -c 't 4M' -c 'l'
check_eq "truncate shrinks (alias t)" "$rc:$out:$(file_size "$img")" \
    "0:4 MiB:4194304"

# sleep, help, quit
sio -c 'sleep 10' -c 'sleep 0x0'
check_eq "sleep" "$rc:$out" "0:"
rc=0
out=$(strata-io -c help 2>&1) || rc=$?
check_match "help lists read with its synopsis" "$out" \
    '^read \[-Cqv\] \[-P pattern \[-s off\] \[-l len\]\] off len -- reads a number of bytes at a specified offset$'
check_match "help lists map as qemu-io does" "$out" \
    '^map  -- prints the allocated areas of a file$'
check_eq "help: sorted by name, ending with the hint" \
    "$(sed -n '1p;2p;$p' <<<"$out")" \
    "abort -- simulate a program crash using abort(3)
aio_flush -- completes all outstanding aio requests
Use 'help commandname' for extended help."
rc=0
out=$(strata-io -c 'help write' 2>&1) || rc=$?
check_match "help write explains -z" "$rc:$out" ' -z, -- write zeroes'
sio -c length -c quit -c 'read 0 1x'
check_eq "quit stops before the remaining commands" "$rc:$out" "0:4 MiB"

# open and close
rc=0
out=$(strata-io -c "open -o driver=raw $img" -c length -c close \
      -c "open -r -o driver=raw $img" -c 'read -q 0 512' 2>&1) || rc=$?
check_eq "open, close and open again" "$rc:$out" "0:4 MiB"
rc=0
out=$(strata-io -c "open -o driver=raw,file.filename=$img" -c length 2>&1) ||
    rc=$?
check_eq "open -o without a path" "$rc:$out" "0:4 MiB"

done_testing
