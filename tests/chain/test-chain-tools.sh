#!/usr/bin/env bash
# After commit and rebase by strata-img, the other tools keep working
# across the chains: info --backing-chain names the right layers, map
# prints what qemu-img map prints, compare agrees with qemu-img compare,
# and qemu-img reads what strata-img wrote.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/chain/chain-lib.sh"
requires strata-img qemu-img qemu-io
tmpdir
cd "$T"

mkchain c qcow2
cp -r c orig

chain_files()
{
    strata-img info --backing-chain "$1" | sed -n 's/^image: //p' | tr '\n' ' '
}

check_eq "info --backing-chain: three layers" "$(chain_files c/top.qcow2)" \
    "c/top.qcow2 c/mid.qcow2 c/base.qcow2 "
check_eq "map of the chain as qemu-img's" \
    "$(strata-img map --output=json c/top.qcow2)" \
    "$(qemu-img map --output=json c/top.qcow2)"

(cd c && strata-img commit -q top.qcow2)
check_eq "after commit: map of the chain as qemu-img's" \
    "$(strata-img map --output=json c/top.qcow2)" \
    "$(qemu-img map --output=json c/top.qcow2)"
check "after commit: strata-img compare finds the old content" \
    strata-img compare orig/top.qcow2 c/top.qcow2
check "after commit: qemu-img compare too" \
    qemu-img compare orig/top.qcow2 c/top.qcow2

(cd c && strata-img rebase -q -b base.qcow2 -F qcow2 top.qcow2)
check_eq "after rebase: info --backing-chain skips mid" \
    "$(chain_files c/top.qcow2)" "c/top.qcow2 c/base.qcow2 "
check_eq "after rebase: map as qemu-img's" \
    "$(strata-img map --output=json c/top.qcow2)" \
    "$(qemu-img map --output=json c/top.qcow2)"
check "after rebase: strata-img compare finds the old content" \
    strata-img compare orig/top.qcow2 c/top.qcow2
check_exit "compare of mid and base differs, as qemu-img says" \
    "$(qemu-img compare c/mid.qcow2 c/base.qcow2 >/dev/null 2>&1; echo $?)" \
    strata-img compare c/mid.qcow2 c/base.qcow2
check_eq "info --output=json --backing-chain: the same backing names" \
    "$(strata-img info --output=json --backing-chain c/top.qcow2 |
        grep '"backing-filename"')" \
    "$(qemu-img info --output=json --backing-chain c/top.qcow2 |
        grep '"backing-filename"')"

(cd c && strata-img rebase -q -b "" top.qcow2)
check_eq "after flattening: one layer" "$(chain_files c/top.qcow2)" \
    "c/top.qcow2 "
check "after flattening: same content" qemu-img compare orig/top.qcow2 \
    c/top.qcow2
check "qemu-img check clean" qemu-img check -q c/top.qcow2

done_testing
