# Helpers of the check tests: run `check` with strata-img and qemu-img on
# two copies of the same image and compare what they print.
# Source after tests/functions.sh, tmpdir and `requires qemu-img python3`.

DAMAGE="python3 $top_srcdir/tests/check/qcow2-damage.py"

# both_check IMG [ARGS...]: copy IMG to s.qcow2 and q.qcow2 beside it
# (relative backing names still resolve), run `check ARGS` on them
# (strata-img, qemu-img), leaving the outputs in $T/cmp/{s,q}.{out,err,rc},
# qemu-img's with its name replaced by ours.
both_check()
{
    local img=$1 dir
    shift
    dir=$(cd "$(dirname "$img")" && pwd)
    rm -rf "$T/cmp"
    mkdir "$T/cmp"
    cp "$img" "$dir/s.qcow2"
    cp "$img" "$dir/q.qcow2"
    CMP_S=$dir/s.qcow2
    CMP_Q=$dir/q.qcow2
    (
        cd "$dir" || exit 1
        strata-img check "$@" s.qcow2 >"$T/cmp/s.out" 2>"$T/cmp/s.err"
        echo $? >"$T/cmp/s.rc"
        qemu-img check "$@" q.qcow2 >"$T/cmp/q.out" 2>"$T/cmp/q.err"
        echo $? >"$T/cmp/q.rc"
        sed -i "s/q\.qcow2/s.qcow2/g; s/^qemu-img:/strata-img:/; \
            s/'qemu-img --help'/'strata-img --help'/" \
            "$T/cmp/q.out" "$T/cmp/q.err"
    )
}

# same_check DESC IMG [ARGS...]: one test point: stdout, stderr and the
# exit status of both tools agree.  Sets $rc to the exit status.
same_check()
{
    local desc=$1 f bad=
    shift
    both_check "$@"
    for f in out err rc; do
        if ! cmp -s "$T/cmp/s.$f" "$T/cmp/q.$f"; then
            bad="$bad $f"
        fi
    done
    rc=$(cat "$T/cmp/s.rc")
    if [ -z "$bad" ]; then
        ok "$desc (exit $rc)"
    else
        not_ok "$desc: differs in$bad"
        for f in $bad; do
            diff "$T/cmp/s.$f" "$T/cmp/q.$f" | head -20 | sed 's/^/# /'
        done
    fi
}

# damage_case IMG DAMAGE [ARG]: damage a copy of IMG, then 7 test points:
# check, check --output=json, -r leaks, -r all agree between the tools;
# the images both repaired are identical; qemu-img check finds strata's
# repair clean (or, where QEMU cannot repair either, still broken); the
# data is what it was before the damage (DAMAGE in $INTACT) or what the
# damaged image showed.
INTACT=" leak-extra refcount-minus copied-clear copied-l1-clear refblock-zero "
damage_case()
{
    local img=$1 d=$2 arg=${3:-} repaired
    cp "$img" dmg.qcow2
    $DAMAGE dmg.qcow2 "$d" $arg
    cp dmg.qcow2 saved.qcow2
    same_check "$img $d: check" dmg.qcow2
    same_check "$img $d: check --output=json" dmg.qcow2 --output=json
    same_check "$img $d: check -r leaks" dmg.qcow2 -r leaks
    same_check "$img $d: check -r all" dmg.qcow2 -r all
    repaired=$CMP_S
    check "$img $d: both tools repaired it to the same bytes" \
        cmp "$CMP_S" "$CMP_Q"
    if [ "$rc" != 0 ]; then
        # what QEMU cannot repair: a misaligned L1 entry, a refcount
        # above refcount_bits
        check_exit "$img $d: qemu-img check finds the same left over" \
            "$rc" qemu-img check -q "$repaired"
    else
        check "$img $d: qemu-img check finds it clean" \
            qemu-img check -q "$repaired"
    fi
    case "$INTACT" in
    *" $d "*)
        check "$img $d: data as before the damage" \
            qemu-img compare -q "$img" "$repaired" ;;
    *)
        if [ "$d" = l1-misaligned ]; then
            skip "$img $d: data" "qemu-img cannot read a misaligned L2"
        else
            check "$img $d: data as the damaged image had it" \
                qemu-img compare -q saved.qcow2 "$repaired"
        fi ;;
    esac
}
