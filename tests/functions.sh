# Helpers sourced by every shell test:  . "$top_srcdir/tests/functions.sh"
#
# A test looks like this:
#
#   #!/usr/bin/env bash
#   . "$top_srcdir/tests/functions.sh"
#   requires qemu-img            # skips the whole test when missing
#   tmpdir                       # $T: private directory, removed on exit
#   plan 2
#   check "create a 1M raw image" strata-img create -f raw "$T/a.raw" 1M
#   check_eq "size is 1M" "$(stat -c %s "$T/a.raw")" 1048576
#   done_testing
#
# Skips (requires*, skip_all) must come before the plan.  Register cleanups
# with cleanup_fn instead of `trap ... EXIT`, which would replace ours.
# Helpers work under `set -e` and `set -u`.
#
# Environment:
#   STRATA_VALGRIND=1  run strata-img, strata-io, strata-nbd, strata-fuse and
#                      strata-vm under valgrind (memcheck); errors exit 99
#   STRATA_TRACE=1     trace the test with set -x (goes to the .log file)
#   STRATA_KEEP_TMP=1  keep $T after the test, for debugging

# Tests may be run by hand from the source tree; guess the tree from here.
if [ -z "${top_srcdir:-}" ]; then
    top_srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    export top_srcdir
fi
: "${top_builddir:=$top_srcdir}"
export top_builddir

if [ "${STRATA_TRACE:-0}" = 1 ]; then
    set -x
fi

# Sanitizer reports must look like crashes, so check_fail can tell an
# error exit from an ASan/UBSan finding.
: "${ASAN_OPTIONS:=abort_on_error=1:disable_coredump=1}"
: "${UBSAN_OPTIONS:=halt_on_error=1:abort_on_error=1:print_stacktrace=1}"
export ASAN_OPTIONS UBSAN_OPTIONS

# Messages from the programs should not depend on the user's locale.
export LC_ALL=C

_tap_n=0
_tap_failed=0
_tap_planned=

# ---------------------------------------------------------------------------
# Cleanup

_cleanups=()

# Run the registered cleanups, newest first, keeping the test's exit status.
_run_cleanups()
{
    local rc=$? i
    set +e
    for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
        eval "${_cleanups[i]}"
    done
    _cleanups=()
    exit "$rc"
}
trap _run_cleanups EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# cleanup_fn CMD [ARGS...]: run CMD ARGS when the test exits (any reason).
cleanup_fn()
{
    local q
    q=$(printf '%q ' "$@")
    _cleanups+=("$q")
}

# tmpdir: create a private directory for the test, exported as $T.
tmpdir()
{
    T=$(mktemp -d "${TMPDIR:-/tmp}/strata-test.XXXXXX") || {
        echo "Bail out! cannot create a temporary directory"
        exit 1
    }
    export T
    if [ "${STRATA_KEEP_TMP:-0}" = 1 ]; then
        echo "# keeping temporary directory $T"
    else
        cleanup_fn rm -rf "$T"
    fi
}

# Set _out to a fresh scratch file for captured output, kept outside $T so
# tests can list $T.  (Not called in a subshell: it registers a cleanup.)
_scratch_file()
{
    if [ -z "${_scratch:-}" ]; then
        _scratch=$(mktemp -d "${TMPDIR:-/tmp}/strata-out.XXXXXX") || {
            echo "Bail out! cannot create a temporary directory"
            exit 1
        }
        cleanup_fn rm -rf "$_scratch"
    fi
    _scratch_n=$((${_scratch_n:-0} + 1))
    _out=$_scratch/out.$_scratch_n
}

# ---------------------------------------------------------------------------
# Skipping

# skip_all REASON: skip the whole test.
skip_all()
{
    echo "1..0 # SKIP $*"
    exit 0
}

# requires CMD...: skip the test unless every CMD is an installed program.
requires()
{
    local c
    for c in "$@"; do
        # type -P ignores the valgrind wrapper functions below.
        type -P "$c" >/dev/null 2>&1 || skip_all "$c not installed"
    done
}

# requires_run CMD [ARGS...]: skip the test unless CMD ARGS succeeds, e.g.
# `requires_run nbdkit --dump-plugin memory` or `requires_run qemu-img
# --help`.
requires_run()
{
    requires "$1"
    "$@" >/dev/null 2>&1 </dev/null || skip_all "\`$*' failed"
}

# requires_root: skip the test unless running as root.
requires_root()
{
    [ "$(id -u)" = 0 ] || skip_all "not running as root"
}

# requires_dev PATH...: skip unless each device node exists and opens r/w.
requires_dev()
{
    local d
    for d in "$@"; do
        [ -e "$d" ] || skip_all "$d does not exist"
        { exec 9<>"$d"; } 2>/dev/null || skip_all "cannot open $d read-write"
        exec 9>&-
    done
}

# requires_config HAVE_X [what]: skip unless config.h defines HAVE_X
# (optional features: HAVE_LIBURING, HAVE_ZLIB, HAVE_ZSTD, HAVE_FUSE, ...).
requires_config()
{
    local h="$top_builddir/config.h"
    [ -r "$h" ] || skip_all "$h not found"
    grep -q "^#define $1 1" "$h" || skip_all "${2:-$1} not configured"
}

# ---------------------------------------------------------------------------
# TAP

# plan N: announce N test points (optional: done_testing prints a late plan).
plan()
{
    _tap_planned=$1
    echo "1..$1"
}

# diag MESSAGE...: print a TAP comment.
diag()
{
    local line
    printf '%s\n' "$*" | while IFS= read -r line; do
        echo "# $line"
    done
}

# bail_out REASON: abort the whole test run of this script.
bail_out()
{
    echo "Bail out! $*"
    exit 1
}

# ok DESC / not_ok DESC: emit one test point.
ok()
{
    _tap_n=$((_tap_n + 1))
    echo "ok $_tap_n - $*"
}

not_ok()
{
    _tap_n=$((_tap_n + 1))
    _tap_failed=$((_tap_failed + 1))
    echo "not ok $_tap_n - $*"
}

# skip DESC REASON: emit a test point that was skipped.
skip()
{
    _tap_n=$((_tap_n + 1))
    echo "ok $_tap_n - $1 # SKIP ${2:-}"
}

# Print a captured output file as TAP comments, at most 200 lines.
_diag_file()
{
    local lines
    [ -s "$1" ] || return 0
    lines=$(wc -l <"$1")
    if [ "$lines" -gt 200 ]; then
        echo "# (last 200 of $lines lines of output)"
    fi
    tail -n 200 "$1" | sed 's/^/#   /'
}

# Run "$@" capturing output; sets _rc and _out (the capture file).
_run()
{
    _scratch_file
    _rc=0
    "$@" >"$_out" 2>&1 || _rc=$?
}

# check DESC CMD [ARGS...]: ok if CMD exits 0; otherwise show its output.
check()
{
    local desc=$1
    shift
    _run "$@"
    if [ "$_rc" = 0 ]; then
        ok "$desc"
    else
        not_ok "$desc"
        echo "#   command: $*"
        echo "#   exit status $_rc"
        _diag_file "$_out"
    fi
    rm -f "$_out"
    return 0
}

# check_fail DESC CMD [ARGS...]: ok if CMD fails cleanly.  Death by a signal
# (status >= 128: a crash, a sanitizer abort), "command not found" (126,
# 127) and a valgrind error (99 under STRATA_VALGRIND=1) are not clean.
check_fail()
{
    local desc=$1 why=
    shift
    _run "$@"
    if [ "$_rc" = 0 ]; then
        why="succeeded unexpectedly"
    elif [ "$_rc" -ge 126 ]; then
        why="exit status $_rc (crash, signal or command not found)"
    elif [ "$_rc" = 99 ] && [ "${STRATA_VALGRIND:-0}" = 1 ]; then
        why="valgrind reported errors"
    fi
    if [ -z "$why" ]; then
        ok "$desc"
    else
        not_ok "$desc"
        echo "#   command: $*"
        echo "#   $why"
        _diag_file "$_out"
    fi
    rm -f "$_out"
    return 0
}

# check_exit DESC CODE CMD [ARGS...]: ok if CMD exits with status CODE.
check_exit()
{
    local desc=$1 want=$2
    shift 2
    _run "$@"
    if [ "$_rc" = "$want" ]; then
        ok "$desc"
    else
        not_ok "$desc"
        echo "#   command: $*"
        echo "#   exit status $_rc, want $want"
        _diag_file "$_out"
    fi
    rm -f "$_out"
    return 0
}

# check_eq DESC GOT WANT: ok if the two strings are equal.
check_eq()
{
    if [ "$2" = "$3" ]; then
        ok "$1"
    else
        not_ok "$1"
        diag "got:"
        diag "$2"
        diag "want:"
        diag "$3"
    fi
    return 0
}

# check_match DESC GOT REGEX: ok if GOT matches the extended regex (grep -E,
# against any line).
check_match()
{
    if printf '%s\n' "$2" | grep -Eq -- "$3"; then
        ok "$1"
    else
        not_ok "$1"
        diag "got:"
        diag "$2"
        diag "does not match: $3"
    fi
    return 0
}

# done_testing: print the plan if none was given; exit 1 if anything failed.
done_testing()
{
    if [ -z "$_tap_planned" ]; then
        echo "1..$_tap_n"
    elif [ "$_tap_planned" != "$_tap_n" ]; then
        echo "# planned $_tap_planned tests but ran $_tap_n"
        exit 1
    fi
    if [ "$_tap_failed" -gt 0 ]; then
        echo "# $_tap_failed of $_tap_n failed"
        exit 1
    fi
    exit 0
}

# ---------------------------------------------------------------------------
# Utilities

# wait_until SECONDS CMD [ARGS...]: poll CMD every 0.1 s until it succeeds;
# fail after SECONDS (for daemons coming up, never as a timing assertion).
wait_until()
{
    local limit=$(($1 * 10)) i
    shift
    for ((i = 0; i < limit; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# same_as_qemu_img LABEL ARGS...: one test point: `strata-img ARGS` and
# `qemu-img ARGS` print the same (stdout and stderr, program names aside)
# and exit with the same status.
same_as_qemu_img()
{
    local label=$1 s q rs=0 rq=0
    shift
    s=$(strata-img "$@" 2>&1) || rs=$?
    q=$(qemu-img "$@" 2>&1) || rq=$?
    check_eq "$label" "$rs ${s//strata-img/X}" "$rq ${q//qemu-img/X}"
}

# file_size FILE: print the size of FILE in bytes.
file_size()
{
    stat -c %s "$1"
}

# ---------------------------------------------------------------------------
# Valgrind: shadow the strata programs with functions running them under
# memcheck.  Only programs that exist are wrapped, so `requires` still sees
# missing ones.

if [ "${STRATA_VALGRIND:-0}" = 1 ]; then
    type -P valgrind >/dev/null 2>&1 || skip_all "valgrind not installed"
    _vg_libtool=${LIBTOOL:-$top_builddir/libtool}
    [ -x "$_vg_libtool" ] || _vg_libtool=
    _vg_opts=(--error-exitcode=99 --leak-check=full -q)
    if [ -r "$top_srcdir/tests/valgrind.supp" ]; then
        _vg_opts+=("--suppressions=$top_srcdir/tests/valgrind.supp")
    fi
    if [ -n "$_vg_libtool" ]; then
        _vg_cmd=$(printf '%q ' "$_vg_libtool" --mode=execute valgrind \
            "${_vg_opts[@]}")
    else
        _vg_cmd=$(printf '%q ' valgrind "${_vg_opts[@]}")
    fi
    for _p in strata-img strata-io strata-nbd strata-fuse strata-vm; do
        _path=$(type -P "$_p") || continue
        # The command and the program's path are fixed in the body now.
        eval "$_p() { $_vg_cmd $(printf '%q' "$_path") \"\$@\"; }"
        export -f "$_p"
    done
    unset _p _path _vg_cmd _vg_opts _vg_libtool
fi
