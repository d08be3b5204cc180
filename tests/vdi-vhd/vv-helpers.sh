# Helpers for the vdi and vhd tests (sourced after functions.sh).

# norm FILE FMT: print the file's bytes as hex with the fields that are
# random or time-dependent zeroed: vdi uuid_image and uuid_last_snap;
# vhd timestamp, checksum and UUID of the footer (at 0 and at the end).
norm()
{
    python3 - "$1" "$2" <<'PY'
import sys, hashlib
path, fmt = sys.argv[1], sys.argv[2]
b = bytearray(open(path, 'rb').read())
def zero(o, n):
    b[o:o + n] = bytes(n)
if fmt == 'vdi':
    zero(0x188, 32)
else:
    for at in (0, len(b) - 512):
        if at >= 0 and b[at:at + 8] == b'conectix':
            zero(at + 0x18, 4)
            zero(at + 0x40, 20)
print(hashlib.sha256(bytes(b)).hexdigest(), len(b))
PY
}

# same_norm DESC A B FMT: ok if A and B are equal once normalised.
same_norm()
{
    local a b
    a=$(norm "$2" "$4")
    b=$(norm "$3" "$4")
    if [ "$a" = "$b" ]; then
        ok "$1"
    else
        not_ok "$1"
        diag "$(cmp -l "$2" "$3" 2>&1 | head -20)"
    fi
}

# set_vhd_field FILE OFFSET HEXBYTES: patch the footer(s) of a vhd and
# fix their checksums (at 0 when a copy is there, and at the end).
set_vhd_field()
{
    python3 - "$@" <<'PY'
import sys, struct
path, off, data = sys.argv[1], int(sys.argv[2], 0), bytes.fromhex(sys.argv[3])
b = bytearray(open(path, 'rb').read())
for at in (0, len(b) - 512):
    if b[at:at + 8] != b'conectix':
        continue
    b[at + off:at + off + len(data)] = data
    b[at + 0x40:at + 0x44] = bytes(4)
    s = (~sum(b[at:at + 512])) & 0xffffffff
    b[at + 0x40:at + 0x44] = struct.pack('>I', s)
open(path, 'wb').write(b)
PY
}

# poke FILE OFFSET HEXBYTES: overwrite bytes in place.
poke()
{
    python3 - "$@" <<'PY'
import sys
path, off, data = sys.argv[1], int(sys.argv[2], 0), bytes.fromhex(sys.argv[3])
with open(path, 'r+b') as f:
    f.seek(off)
    f.write(data)
PY
}
