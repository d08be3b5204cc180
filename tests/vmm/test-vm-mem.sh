#!/usr/bin/env bash
# strata-vm guest RAM options: -mem-path DIR (RAM from an unlinked file
# in DIR: nothing is left behind), -mem-path FILE (that file, sized to
# -m), -mem-prealloc (all RAM allocated before the guest runs: the
# process's peak RSS reaches -m, while without it the guest touches only
# a few MiB), and hugetlbfs: a private hugetlbfs mount (unshare -m) boots
# the guest when the host has free hugepages, and otherwise fails with a
# clear error (exit 8) before any guest runs.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/vmm/vm-functions.sh"
tmpdir
vm_requires_kvm
plan 13

disk=$T/disk.raw
vm_base "$disk" 4M
args=(-kernel "$GUEST_ELF" -drive "file=$disk,format=raw"
      -append "irq=msix check=2048:16:0xaa write=4096:8:0x42 check=4096:8:0x42")

mkdir "$T/ramdir"
vm_run "$T/dir.log" -m 64 -mem-path "$T/ramdir" "${args[@]}"
vm_check "-mem-path DIR: guest passed" "$GUEST_PASS" "$T/dir.log"
check_eq "-mem-path DIR: no file left in DIR" "$(ls -A "$T/ramdir")" ""

vm_run "$T/file.log" -m 48M -mem-path "$T/ramfile" "${args[@]}"
vm_check "-mem-path FILE: guest passed" "$GUEST_PASS" "$T/file.log"
check_eq "-mem-path FILE: the file holds -m bytes" \
    "$(stat -c %s "$T/ramfile" 2>&1)" $((48 << 20))

check_exit "-mem-path in a missing directory: exit 8" 8 \
    strata-vm -serial none -mem-path "$T/nodir/ram" "${args[@]}"

# peak RSS with and without -mem-prealloc (96 MiB of RAM, a guest that
# touches a few MiB)
if [ -x /usr/bin/time ]; then
    rss()
    {
        local rc=0
        /usr/bin/time -f 'maxrss %M' -o "$T/rss" timeout "$VM_TIMEOUT" \
            strata-vm -m 96 -serial none -no-reboot "$@" "${args[@]}" \
            >/dev/null 2>&1 || rc=$?
        [ "$rc" = "$GUEST_PASS" ] || echo "exit status $rc"
        sed -n 's/^maxrss //p' "$T/rss"
    }
    pre=$(rss -mem-prealloc)
    lazy=$(rss)
    check_match "-mem-prealloc: peak RSS >= 96 MiB ($pre KiB)" "$pre" \
        '^(9[89]|1[0-9][0-9])[0-9]{3}$'
    check_match "without it: peak RSS below 64 MiB ($lazy KiB)" "$lazy" \
        '^[0-9]{1,4}$|^[1-5][0-9]{4}$|^6[0-4][0-9]{3}$'
    pre=$(rss -mem-prealloc -mem-path "$T/ramdir")
    check_match "-mem-prealloc -mem-path DIR: peak RSS >= 96 MiB ($pre KiB)" \
        "$pre" '^(9[89]|1[0-9][0-9])[0-9]{3}$'
else
    skip "-mem-prealloc peak RSS" "/usr/bin/time not installed"
    skip "peak RSS without -mem-prealloc" "/usr/bin/time not installed"
    skip "-mem-prealloc -mem-path DIR peak RSS" "/usr/bin/time not installed"
fi

# hugetlbfs, on a mount of our own that only this test's namespace sees
huge_kib=$(sed -n 's/^Hugepagesize: *\([0-9]*\) kB/\1/p' /proc/meminfo)
huge_free=$(sed -n 's/^HugePages_Free: *\([0-9]*\)/\1/p' /proc/meminfo)
why=
if ! grep -qw hugetlbfs /proc/filesystems; then
    why="the kernel has no hugetlbfs"
elif [ "$(id -u)" != 0 ] || ! type -P unshare >/dev/null; then
    why="mounting a private hugetlbfs needs root and unshare"
elif ! unshare -m sh -c "mount -t hugetlbfs none '$T/ramdir'" 2>/dev/null
then
    why="cannot mount hugetlbfs here"
fi
if [ -n "$why" ]; then
    for i in 1 2 3 4; do
        skip "hugetlbfs -mem-path" "$why"
    done
else
    rc=0
    timeout "$VM_TIMEOUT" unshare -m sh -c \
        'mount -t hugetlbfs none "$1" && shift && exec "$@"' sh \
        "$T/ramdir" strata-vm -m 32 -mem-path "$T/ramdir" -mem-prealloc \
        -serial "file:$T/huge.log" -no-reboot "${args[@]}" \
        >"$T/huge.err" 2>&1 || rc=$?
    if [ "${huge_free:-0}" -ge $((32768 / ${huge_kib:-2048})) ]; then
        ok "the host has free hugepages: boot from hugetlbfs"
        check_eq "hugetlbfs: guest passed" "$rc" "$GUEST_PASS"
        vm_log_has "hugetlbfs: guest's check" "$T/huge.log" "result: PASS"
        check_eq "hugetlbfs: no error" "$(cat "$T/huge.err")" ""
    else
        ok "no free hugepages (HugePages_Free ${huge_free:-?}): expect a clean error"
        check_eq "hugetlbfs without hugepages: exit 8" "$rc" 8
        check_match "the error says why" "$(cat "$T/huge.err")" \
            'not enough free [0-9]+ KiB hugepages for 32 MiB'
        check_eq "no guest ran" "$(cat "$T/huge.log" 2>/dev/null)" ""
    fi
fi
check_eq "-mem-path DIR still empty" "$(ls -A "$T/ramdir")" ""
done_testing
