#!/usr/bin/env bash
# convert -p draws qemu-img's progress bar on stdout: "    (x.xx/100%)\r"
# redraws from 0.00 to 100.00 and a final newline; -q silences it, and
# without -p nothing is printed.
. "$top_srcdir/tests/functions.sh"
requires strata-img qemu-img qemu-io
tmpdir

src=$T/src.raw
qemu-img create -q -f raw "$src" 16M
qemu-io -f raw -c 'write -P 1 0 3M' -c 'write -P 2 8M 5M' \
    -c 'write -P 3 15M 1M' "$src" >/dev/null

out=$(strata-img convert -p -f raw -O raw "$src" "$T/p.raw"; echo x)
out=${out%x}
check "-p output reads as the source" \
    qemu-img compare -f raw -F raw "$src" "$T/p.raw"

# One "    (N.NN/100%)\r" per redraw, then "\n".
shape='^(    \([0-9]{1,3}\.[0-9]{2}/100%\)\r)+\n$'
if printf '%s' "$out" | tr '\r\n' 'RN' |
    grep -Eq "$(printf '%s' "$shape" | sed 's/\\r/R/g; s/\\n/N/g')"; then
    ok "-p output has qemu-img's shape"
else
    not_ok "-p output has qemu-img's shape"
    diag "got: $(printf '%s' "$out" | od -c | head -5)"
fi
first=$(printf '%s' "$out" | tr '\r' '\n' | sed -n 1p)
last=$(printf '%s' "$out" | tr '\r' '\n' | grep '/100%' | tail -n 1)
check_eq "-p starts at 0.00" "$first" "    (0.00/100%)"
check_eq "-p ends at 100.00" "$last" "    (100.00/100%)"
steps=$(printf '%s' "$out" | tr '\r' '\n' | grep -c '/100%')
check "-p draws intermediate steps" test "$steps" -ge 4
values=$(printf '%s' "$out" | tr '\r' '\n' | grep '/100%' |
         sed 's/.*(\([0-9.]*\)\/.*/\1/')
check_eq "-p never goes backwards" "$values" "$(printf '%s\n' "$values" |
    sort -g)"

# Sanitizer builds warn about the coroutine stack switches on stderr.
no_asan() { grep -v '^==[0-9]*==WARNING: ASan' || true; }
rm -f "$T/p.raw"
check_eq "-p -q prints nothing" \
    "$(strata-img convert -p -q -f raw -O raw "$src" "$T/p.raw" 2>&1 |
       no_asan)" ""
rm -f "$T/p.raw"
check_eq "no -p prints nothing" \
    "$(strata-img convert -f raw -O raw "$src" "$T/p.raw" 2>&1 | no_asan)" ""

done_testing
