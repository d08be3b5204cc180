# Helpers for the side-by-side benchmarks in bench/: source this file.
#
#   . "$(dirname "$0")/common.sh"
#   bench_init "$@"                     # --rounds N, --dir DIR, --drop-caches
#   bench_pair "raw->raw" "rm -f $D/out; sync" \
#       "strata-img convert ... $D/out" "qemu-img convert ... $D/out"
#   bench_table
#
# Each pair runs its two commands alternately (strata, qemu, strata, ...)
# for $BENCH_ROUNDS rounds, timing each run's wall clock; the table shows
# the median of each side and the ratio strata/qemu (below 1: strata is
# faster).  Nothing is dropped from the page cache unless --drop-caches
# (or BENCH_DROP_CACHES=1) asks for it, which needs root.  Benchmarks are
# not part of make check.

set -eu
export LC_ALL=C

BENCH_ROUNDS=${BENCH_ROUNDS:-5}
BENCH_DROP_CACHES=${BENCH_DROP_CACHES:-0}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/var/tmp}/strata-bench}
BENCH_VERBOSE=${BENCH_VERBOSE:-1}
BENCH_ROWS=()

# bench_usage: the options every bench script understands.
bench_usage()
{
    cat <<EOF
options:
  --rounds N       rounds per side (default $BENCH_ROUNDS)
  --dir DIR        scratch directory (default $BENCH_DIR)
  --drop-caches    drop the page cache before every timed run (root)
  --quiet          print only the table
  STRATA_IMG, QEMU_IMG: the programs to compare (default: from PATH,
  strata-img preferring the build tree next to this script)
EOF
}

# bench_init "$@": parse the common options and find the programs.
bench_init()
{
    while [ $# -gt 0 ]; do
        case $1 in
        --rounds) BENCH_ROUNDS=$2; shift ;;
        --rounds=*) BENCH_ROUNDS=${1#*=} ;;
        --dir) BENCH_DIR=$2; shift ;;
        --dir=*) BENCH_DIR=${1#*=} ;;
        --drop-caches) BENCH_DROP_CACHES=1 ;;
        --quiet) BENCH_VERBOSE=0 ;;
        -h|--help) bench_usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; bench_usage >&2; exit 2 ;;
        esac
        shift
    done
    case $BENCH_ROUNDS in
    ''|*[!0-9]*|0) echo "--rounds needs a positive number" >&2; exit 2 ;;
    esac
    mkdir -p "$BENCH_DIR"
    bench_find_programs
}

# Locate strata-img (the build tree first: $top_builddir, then
# ../build*/tools next to this script, then PATH) and qemu-img.
bench_find_programs()
{
    local here cand
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    if [ -z "${STRATA_IMG:-}" ] && [ -n "${top_builddir:-}" ] &&
        [ -x "$top_builddir/tools/strata-img" ]; then
        STRATA_IMG=$top_builddir/tools/strata-img
    fi
    if [ -z "${STRATA_IMG:-}" ]; then
        # the most recently built of the build trees beside the sources
        for cand in $(ls -t "$here"/../build*/tools/strata-img 2>/dev/null)
        do
            if [ -x "$cand" ]; then
                STRATA_IMG=$cand
                break
            fi
        done
    fi
    : "${STRATA_IMG:=$(type -P strata-img || true)}"
    : "${QEMU_IMG:=$(type -P qemu-img || true)}"
    if [ -z "$STRATA_IMG" ] || [ ! -x "$STRATA_IMG" ]; then
        echo "strata-img not found (build it, or set STRATA_IMG)" >&2
        exit 1
    fi
    # A libtool wrapper script would add a shell start-up to every timed
    # run: run the real binary from .libs with the library beside it.
    local dir
    dir=$(dirname "$STRATA_IMG")
    if [ -x "$dir/.libs/strata-img" ] && head -c 2 "$STRATA_IMG" | grep -q '#!'
    then
        STRATA_IMG=$dir/.libs/strata-img
        LD_LIBRARY_PATH=$(cd "$dir/../block/.libs" && pwd)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
        export LD_LIBRARY_PATH
    fi
    if [ -z "$QEMU_IMG" ] || [ ! -x "$QEMU_IMG" ]; then
        echo "qemu-img not found (set QEMU_IMG)" >&2
        exit 1
    fi
    export STRATA_IMG QEMU_IMG
}

# bench_log MSG...: progress output unless --quiet.
bench_log()
{
    if [ "$BENCH_VERBOSE" = 1 ]; then
        echo "$@" >&2
    fi
}

# bench_drop_caches: only when asked for.
bench_drop_caches()
{
    if [ "$BENCH_DROP_CACHES" = 1 ]; then
        sync
        echo 3 >/proc/sys/vm/drop_caches
    fi
}

# bench_time CMD: run the shell command CMD (eval'ed), print its wall time
# in seconds; fails (and shows its output) when CMD fails.
bench_time()
{
    local t0 t1 out
    out=$(mktemp)
    t0=$EPOCHREALTIME
    if ! eval "$1" >"$out" 2>&1; then
        echo "command failed: $1" >&2
        cat "$out" >&2
        rm -f "$out"
        return 1
    fi
    t1=$EPOCHREALTIME
    rm -f "$out"
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

# bench_median N...: the median of the numbers.
bench_median()
{
    printf '%s\n' "$@" | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "nan"; exit }
            if (NR % 2) { printf "%.3f\n", v[(NR + 1) / 2] }
            else { printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }
        }'
}

# bench_pair LABEL PREP STRATA_CMD QEMU_CMD: alternate the two commands
# for $BENCH_ROUNDS rounds, running PREP (untimed) before each, and add a
# row to the table.
bench_pair()
{
    local label=$1 prep=$2 cmd_s=$3 cmd_q=$4 r t
    local -a ts=() tq=()
    bench_log "== $label"
    for ((r = 1; r <= BENCH_ROUNDS; r++)); do
        eval "$prep"
        bench_drop_caches
        t=$(bench_time "$cmd_s")
        ts+=("$t")
        eval "$prep"
        bench_drop_caches
        t=$(bench_time "$cmd_q")
        tq+=("$t")
        bench_log "   round $r: strata ${ts[-1]} s, qemu ${tq[-1]} s"
    done
    BENCH_ROWS+=("$label|$(bench_median "${ts[@]}")|$(bench_median "${tq[@]}")")
}

# bench_table: the medians and ratios of every pair run so far.
bench_table()
{
    local row
    printf '%-28s %12s %12s %14s\n' "benchmark (median of $BENCH_ROUNDS)" \
        "strata (s)" "qemu (s)" "strata/qemu"
    for row in "${BENCH_ROWS[@]}"; do
        IFS='|' read -r label s q <<<"$row"
        awk -v l="$label" -v s="$s" -v q="$q" 'BEGIN {
            printf "%-28s %12.3f %12.3f %13.2fx\n", l, s, q, (q > 0 ? s / q : 0)
        }'
    done
}

# bench_source FILE MiB: make FILE, unless it exists: a raw image with half
# of its MiBs allocated in 1 MiB runs scattered so that data and holes
# alternate, half of the runs random bytes, half compressible text (the
# source of bench/convert and of the format benchmarks).  Pair j
# of 1 MiB slots holds one data run, in its first or second slot by a
# fixed pseudo-random choice; even pairs get random bytes, odd ones text.
bench_source_make()
{
    local file=$1 mib=$2 j slot seed=12345
    local tmp=$file.tmp
    bench_log "creating $file ($mib MiB, half allocated)"
    rm -f "$tmp"
    truncate -s "${mib}M" "$tmp"
    for ((j = 0; j < mib / 2; j++)); do
        seed=$(((seed * 1103515245 + 12345) % 2147483648))
        slot=$((2 * j + (seed >> 16) % 2))
        if ((j % 2 == 0)); then
            dd if=/dev/urandom of="$tmp" bs=1M count=1 seek="$slot" \
                conv=notrunc iflag=fullblock status=none
        else
            yes "run $j: the quick brown fox jumps over the lazy dog; \
pack my box with five dozen liquor jugs $slot" |
                head -c 1048576 |
                dd of="$tmp" bs=1M count=1 seek="$slot" conv=notrunc \
                    iflag=fullblock status=none
        fi
    done
    sync "$tmp"
    mv "$tmp" "$file"
}

bench_source()
{
    [ -f "$1" ] || bench_source_make "$1" "$2"
}
