#!/usr/bin/env bash
# The strata-img command line itself: --help, --version, unknown commands
# and options, missing arguments, with qemu-img's messages and statuses.
. "$top_srcdir/tests/functions.sh"
requires strata-img
tmpdir
cd "$T"

# run ARGS...: capture stdout in $out, stderr in $err, status in $rc.
run()
{
    rc=0
    strata-img "$@" >"$T/out.txt" 2>"$T/err.txt" || rc=$?
    out=$(cat "$T/out.txt")
    err=$(cat "$T/err.txt")
}

try="Try 'strata-img --help' for more information"

plan 24

run --version
check_eq "--version exits 0" "$rc" 0
check_match "--version prints the version" "$out" '^strata-img version [0-9]+\.[0-9]+\.[0-9]+$'
run -V
check_match "-V prints the version" "$out" '^strata-img version [0-9]'

run --help
check_eq "--help exits 0" "$rc" 0
check_match "--help has the command syntax" "$out" '^Command syntax:$'
for cmd in bench compare convert create dd info map; do
    check_match "--help lists $cmd" "$out" "^  $cmd "
done
check_match "--help lists the formats" "$out" '^Supported formats:.* raw'

run create --help
check_eq "create --help exits 0" "$rc" 0
check_match "create --help prints the full help" "$out" '^Command syntax:$'
run -h info
check_match "-h before a command prints the help" "$out" '^Command syntax:$'

run
check_eq "no command exits 1" "$rc" 1
check_eq "no command: message" "$err" "strata-img: Not enough arguments
$try"

run frobnicate x
check_eq "unknown command: message and status" "$rc:$err" \
    "1:strata-img: Command not found: frobnicate
$try"

run --bogus
check_eq "unknown global option" "$rc:$err" \
    "1:strata-img: unrecognized option '--bogus'
$try"

run create -Z x 1M
check_eq "unknown command option" "$rc:$err" \
    "1:strata-img: unrecognized option '-Z'
$try"

run create -f
check_eq "missing option argument" "$rc:$err" \
    "1:strata-img: missing argument for option '-f'
$try"

run info --output
check_eq "missing long option argument" "$rc:$err" \
    "1:strata-img: missing argument for option '--output'
$try"

[ ! -e x ] && ok "nothing was created by failed commands" ||
    not_ok "nothing was created by failed commands"

done_testing
