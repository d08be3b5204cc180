#!/usr/bin/env bash
# vmdk conversions, every subformat: raw and qcow2 -> vmdk give the files
# `qemu-img convert` gives (CID normalised) that qemu-img reads and checks;
# vmdk (written by qemu-img) -> qcow2/raw equals the source.
. "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-io strata-img
tmpdir
cd "$T"

subs="monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat
      streamOptimized"
# The CID is random and printed without leading zeroes.  When the first
# write rewrites it shorter, qemu-img leaves the old text's last bytes
# after the new terminating NUL (strata zeroes them), so the text is
# compared up to its first NUL only.
norm() {
    perl -0777 -pe 'if (substr($_, 0, 4) eq "KDMV") {
        my $r = substr($_, 512, 10240);
        $r =~ s/\nCID=[0-9a-f]+/\nCID=x/;
        $r =~ s/\0.*\z//s;
        substr($_, 512, 10240) = $r . ("\0" x (10240 - length $r));
    } else { s/^CID=[0-9a-f]+/CID=x/m; s/\0.*\z//s }' "$1"
}

# data, zero runs, unaligned pieces, incompressible data, a short tail
qemu-img create -q -f raw src.raw 10300k
qemu-io -f raw -c "write -P 0x11 0 1M" -c "write -P 0x22 3M 100k" \
    -c "write -P 0x33 5000k 7k" -c "write -P 0x44 9M 1M" \
    -c "write -P 0x66 10296k 4k" src.raw >/dev/null
head -c 1M /dev/urandom | dd of=src.raw bs=1M seek=6 conv=notrunc 2>/dev/null
qemu-img convert -O qcow2 src.raw src.qcow2

for sf in $subs; do
    for in in src.raw src.qcow2; do
        rm -rf q s
        mkdir q s
        qemu-img convert -O vmdk -o subformat=$sf $in q/d.vmdk
        check "$in -> $sf" strata-img convert -O vmdk -o subformat=$sf \
            $in s/d.vmdk
        check "$in -> $sf: qemu-img compare" qemu-img compare src.raw s/d.vmdk
        check "$in -> $sf: qemu-img check" qemu-img check s/d.vmdk
        same=yes
        for f in q/*; do
            b=${f#q/}
            if ! cmp -s <(norm "q/$b") <(norm "s/$b"); then
                same="no ($b)"
                # keep what differed for whoever looks at a failure
                diff <(norm "q/$b" | cat -A) <(norm "s/$b" | cat -A) |
                    head -20 | sed 's/^/# /'
            fi
        done
        check_eq "$in -> $sf: same files as qemu-img convert" "$same" yes
    done
    for out in raw qcow2; do
        rm -f o.$out
        check "$sf -> $out" strata-img convert -O $out q/d.vmdk o.$out
        check "$sf -> $out: equal to the source" qemu-img compare src.raw \
            o.$out
    done
    check "$sf: strata-img compare with the source" strata-img compare \
        q/d.vmdk src.raw
done
done_testing
