# Sourced by the interop tests after functions.sh: they compare
# strata-img with qemu-img side by side in a scratch directory.
requires strata-img
type -P qemu-img >/dev/null 2>&1 || skip_all "qemu-img not installed"
tmpdir
cd "$T"

# same ARGS...: qemu-img and strata-img print the same (stderr with the
# program name replaced) and exit alike.
same()
{
    local qrc=0 src=0 why=
    qemu-img "$@" >q.out 2>q.err || qrc=$?
    strata-img "$@" >s.out 2>s.err || src=$?
    sed -i 's/^qemu-img:/strata-img:/; s/qemu-img --help/strata-img --help/' q.err
    if ! cmp -s q.out s.out; then
        why="stdout differs"
    elif ! cmp -s q.err s.err; then
        why="stderr differs"
    elif [ "$qrc" != "$src" ]; then
        why="exit status $src, qemu-img's $qrc"
    fi
    if [ -z "$why" ]; then
        ok "$* (status $src)"
    else
        not_ok "$*"
        diag "$why"
        diag "$(diff -u <(cat q.out; echo ---; cat q.err) \
                        <(cat s.out; echo ---; cat s.err))"
    fi
}
