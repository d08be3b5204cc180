#!/usr/bin/env bash
# strata-vm's command line: --help, and clean errors (exit 8) for bad
# options, missing files and bad images, before any guest runs.
. "$top_srcdir/tests/functions.sh"
requires strata-vm
tmpdir
plan 9

check "--help" strata-vm --help
check_match "--help documents the exit codes" "$(strata-vm --help)" \
    'Exit status: 0 guest powered off'
check_exit "unknown option" 8 strata-vm -frobnicate
check_exit "option without its argument" 8 strata-vm -m
check_exit "bad memory size" 8 strata-vm -m 1k
check_exit "bad -smp" 8 strata-vm -smp 0
check_exit "-drive with an unknown key" 8 strata-vm -drive file=x,bogus=1
check_exit "missing disk image" 8 strata-vm -kernel /dev/null \
    -drive file="$T/nonexistent.qcow2"
truncate -s 4k "$T/notakernel"
check_exit "a kernel that is neither bzImage nor ELF" 8 \
    strata-vm -serial none -kernel "$T/notakernel"
done_testing
