#!/usr/bin/env python3
"""Damage a qcow2 image with extended L2 entries, for the check tests.

usage: extl2-damage.py IMAGE WHAT

Entries are the 16-byte ones of the first L2 table (descriptor, then the
subcluster bitmap: allocation bits 0-31, zero bits 32-63).

WHAT:
  bitmap-overlap     normal cluster: a subcluster both allocated and zero
  unalloc-alloc      unallocated cluster: an allocation bit set
  compressed-bitmap  compressed cluster: a nonzero bitmap
  leak               clear the first normal entry (its cluster leaks)
  refcount-minus     lower the refcount of the second normal cluster
  copied-clear       clear OFLAG_COPIED of the first normal entry
  misaligned-zero    first normal entry +512, bitmap: zero bits only
  misaligned-data    first normal entry +512 (its allocation bits kept)
"""
import struct
import sys

COPIED = 1 << 63
COMPRESSED = 1 << 62
OFF_MASK = 0x00fffffffffffe00


def main():
    path, what = sys.argv[1], sys.argv[2]
    f = open(path, "r+b")

    def rd(off, n):
        f.seek(off)
        return f.read(n)

    def u64(off):
        return struct.unpack(">Q", rd(off, 8))[0]

    def put64(off, v):
        f.seek(off)
        f.write(struct.pack(">Q", v))

    h = rd(0, 104)
    cbits = struct.unpack(">I", h[20:24])[0]
    cs = 1 << cbits
    l1_size, l1_off, rt_off = struct.unpack(">IQQ", h[36:56])
    incompat = struct.unpack(">Q", h[72:80])[0]
    assert incompat & 16, "no extended L2 entries"
    rc_order = struct.unpack(">I", h[96:100])[0]
    l2 = None
    for i in range(l1_size):
        e = u64(l1_off + 8 * i) & OFF_MASK
        if e:
            l2 = e
            break
    assert l2, "no L2 table"
    ents = [struct.unpack(">QQ", rd(l2 + 16 * j, 16))
            for j in range(cs // 16)]

    def first(pred):
        for j, (e, b) in enumerate(ents):
            if pred(e, b):
                return j
        raise SystemExit("no such entry for " + what)

    normal = lambda e, b: not (e & COMPRESSED) and (e & OFF_MASK)
    if what == "bitmap-overlap":
        j = first(lambda e, b: normal(e, b) and (b & 0xffffffff))
        b = ents[j][1]
        low = b & -b & 0xffffffff
        put64(l2 + 16 * j + 8, b | (low << 32))
    elif what == "unalloc-alloc":
        j = first(lambda e, b: not (e & OFF_MASK) and not (e & COMPRESSED))
        put64(l2 + 16 * j + 8, ents[j][1] | 0x4)
    elif what == "compressed-bitmap":
        j = first(lambda e, b: e & COMPRESSED)
        put64(l2 + 16 * j + 8, 0x3)
    elif what == "leak":
        j = first(normal)
        put64(l2 + 16 * j, 0)
        put64(l2 + 16 * j + 8, 0)
    elif what == "refcount-minus":
        js = [j for j, (e, b) in enumerate(ents) if normal(e, b)]
        cl = (ents[js[1]][0] & OFF_MASK) >> cbits
        assert rc_order == 4, "16-bit refcounts only"
        per = cs // 2
        rb = u64(rt_off + 8 * (cl // per)) & OFF_MASK
        a = rb + 2 * (cl % per)
        v = struct.unpack(">H", rd(a, 2))[0]
        f.seek(a)
        f.write(struct.pack(">H", v - 1))
    elif what == "copied-clear":
        j = first(lambda e, b: normal(e, b) and (e & COPIED))
        put64(l2 + 16 * j, ents[j][0] & ~COPIED)
    elif what == "misaligned-zero":
        j = first(normal)
        put64(l2 + 16 * j, ents[j][0] + 512)
        put64(l2 + 16 * j + 8, 0xffffffff << 32)
    elif what == "misaligned-data":
        j = first(lambda e, b: normal(e, b) and (b & 0xffffffff))
        put64(l2 + 16 * j, ents[j][0] + 512)
    else:
        raise SystemExit("unknown damage " + what)
    f.close()


main()
