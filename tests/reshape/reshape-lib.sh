# Helpers of the reshape tests (resize, amend, measure): run one command
# line with qemu-img and with strata-img, each in its own directory on its
# own copy of the same image, and compare what they print and return.
#
#   QIMG, SIMG                   the copies qemu-img and strata-img used
#   same DESC TEMPLATE ARGS...   ok when exit status, stdout and stderr
#                                match (qemu-img's name replaced); IMG in
#                                ARGS is the copy of TEMPLATE ("" for none)
#   images_agree DESC            ok when the two copies read the same
#                                (qemu-img compare) and strata's is clean
#                                for qemu-img check

QIMG=$T/run-q/IMG
SIMG=$T/run-s/IMG

# same DESC TEMPLATE ARGS...
same()
{
    local desc=$1 tmpl=$2 qrc=0 src=0
    shift 2
    rm -rf "$T/run-q" "$T/run-s"
    mkdir -p "$T/run-q" "$T/run-s"
    if [ -n "$tmpl" ]; then
        cp "$tmpl" "$QIMG"
        cp "$tmpl" "$SIMG"
    fi
    (cd "$T/run-q" && qemu-img "$@") >"$T/q.out" 2>"$T/q.err" || qrc=$?
    (cd "$T/run-s" && strata-img "$@") >"$T/s.out" 2>"$T/s.err" || src=$?
    sed -i 's/qemu-img/strata-img/g' "$T/q.out" "$T/q.err"
    if [ "$qrc" = "$src" ] && cmp -s "$T/q.out" "$T/s.out" &&
       cmp -s "$T/q.err" "$T/s.err"; then
        ok "$desc"
    else
        not_ok "$desc"
        diag "exit status: qemu-img $qrc, strata-img $src"
        diff "$T/q.out" "$T/s.out" | sed 's/^/# /' || true
        diff "$T/q.err" "$T/s.err" | sed 's/^/# /' || true
    fi
}

# images_agree DESC: after `same`, the two results hold the same data and
# strata's passes qemu-img check.
images_agree()
{
    if qemu-img compare -q "$QIMG" "$SIMG" >/dev/null 2>&1 &&
       qemu-img check -q "$SIMG" >/dev/null 2>&1; then
        ok "$1"
    else
        not_ok "$1"
        qemu-img compare "$QIMG" "$SIMG" 2>&1 | sed 's/^/# /' || true
        qemu-img check "$SIMG" 2>&1 | sed 's/^/# /' || true
    fi
}
