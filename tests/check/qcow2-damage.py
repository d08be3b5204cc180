#!/usr/bin/env python3
"""Damage a qcow2 image on purpose, for the check tests.

usage: qcow2-damage.py IMAGE WHAT [ARG]

WHAT:
  info              print cluster size, L1/reftable offsets, first L2
  leak              drop the first allocated L2 entry (its cluster leaks)
  leak-extra N      raise the refcount of the Nth data cluster by one
  refcount-minus N  lower the refcount of the Nth data cluster by one
  l2-into-reftable  point the first L2 entry at the refcount table
  l1-misaligned     add 512 to the first L1 entry's offset
  copied-clear      clear OFLAG_COPIED of the first allocated L2 entry
  copied-l1-clear   clear OFLAG_COPIED of the first L1 entry
  refblock-zero     zero the refcount of the first L2 table (rebuild)
  reftable-misaligned  add 512 to the first refcount table entry
  refblock-far      point refcount table entry 1 at 256 MiB (past EOF)
  garbage OFFSET    write 4 KiB of 0xff at OFFSET
  sn-l1-offset-add I N  add N to snapshot entry I's L1 table offset
  sn-l1-size I N    set snapshot entry I's L1 size to N
  sn-extra-size I N set snapshot entry I's extra data size field to N
  sn-count N        set the header's snapshot count to N
  sn-table-offset-add N  add N to the header's snapshot table offset
  sn-table-offset N set the header's snapshot table offset to N
  sn-strip-extra    rewrite the table in place without extra data
"""
import struct
import sys

COPIED = 1 << 63
COMPRESSED = 1 << 62
OFF_MASK = 0x00fffffffffffe00


class Image:
    def __init__(self, path):
        self.f = open(path, "r+b")
        h = self.read(0, 104)
        (magic, version, _bo, _bs, cluster_bits, _size, _crypt, l1_size,
         l1_offset, rt_offset, rt_clusters, _nsn, _sn_off) = struct.unpack(
            ">IIQIIQIIQQIIQ", h[:72])
        assert magic == 0x514649FB, "not qcow2"
        self.version = version
        self.cluster_bits = cluster_bits
        self.cs = 1 << cluster_bits
        self.l1_size = l1_size
        self.l1_offset = l1_offset
        self.rt_offset = rt_offset
        self.rt_clusters = rt_clusters
        self.refcount_order = 4
        if version >= 3:
            self.refcount_order = struct.unpack(">I", h[96:100])[0]
        self.rc_bits = 1 << self.refcount_order

    def read(self, off, n):
        self.f.seek(off)
        return self.f.read(n)

    def write(self, off, data):
        self.f.seek(off)
        self.f.write(data)

    def u64(self, off):
        return struct.unpack(">Q", self.read(off, 8))[0]

    def put64(self, off, v):
        self.write(off, struct.pack(">Q", v))

    def l1(self, i):
        return self.u64(self.l1_offset + 8 * i)

    def sn_table(self):
        """(count, offset) of the snapshot table, from the header"""
        return struct.unpack(">IQ", self.read(60, 12))

    def sn_entries(self):
        """(offset, fixed 40-byte part, extra data, id and name) of
        every snapshot table entry, each at its 8-byte alignment"""
        n, off = self.sn_table()
        out = []
        for _ in range(n):
            off = (off + 7) & ~7
            h = self.read(off, 40)
            idl, nl = struct.unpack(">HH", h[12:16])
            es = struct.unpack(">I", h[36:40])[0]
            out.append((off, h, self.read(off + 40, es),
                        self.read(off + 40 + es, idl + nl)))
            off += 40 + es + idl + nl
        return out

    def first_l2(self):
        for i in range(self.l1_size):
            e = self.l1(i)
            if e & OFF_MASK:
                return i, e & OFF_MASK
        raise SystemExit("no L2 table")

    def data_entries(self):
        """(address of the L2 entry, entry) of every normal cluster"""
        out = []
        for i in range(self.l1_size):
            l2 = self.l1(i) & OFF_MASK
            if not l2:
                continue
            tab = self.read(l2, self.cs)
            for j in range(self.cs // 8):
                e = struct.unpack(">Q", tab[8 * j:8 * j + 8])[0]
                if not (e & COMPRESSED) and (e & OFF_MASK):
                    out.append((l2 + 8 * j, e))
        return out

    def refcount_addr(self, cluster):
        per_block = self.cs * 8 // self.rc_bits
        rt_index, idx = divmod(cluster, per_block)
        rb = self.u64(self.rt_offset + 8 * rt_index) & OFF_MASK
        assert rb, "no refblock"
        return rb, idx

    def get_rc(self, cluster):
        rb, idx = self.refcount_addr(cluster)
        bit = idx * self.rc_bits
        if self.rc_bits >= 8:
            n = self.rc_bits // 8
            return int.from_bytes(self.read(rb + idx * n, n), "big")
        byte = self.read(rb + bit // 8, 1)[0]
        return (byte >> (bit % 8)) & ((1 << self.rc_bits) - 1)

    def set_rc(self, cluster, v):
        rb, idx = self.refcount_addr(cluster)
        bit = idx * self.rc_bits
        if self.rc_bits >= 8:
            n = self.rc_bits // 8
            self.write(rb + idx * n, v.to_bytes(n, "big"))
            return
        mask = ((1 << self.rc_bits) - 1) << (bit % 8)
        byte = self.read(rb + bit // 8, 1)[0]
        byte = (byte & ~mask) | ((v << (bit % 8)) & mask)
        self.write(rb + bit // 8, bytes([byte]))


def main():
    img = Image(sys.argv[1])
    what = sys.argv[2]
    args = [int(a, 0) for a in sys.argv[3:]]
    arg = args[0] if args else 0
    if what == "info":
        i, l2 = img.first_l2()
        print(img.cs, img.l1_offset, img.rt_offset, l2)
    elif what == "leak":
        addr, _ = img.data_entries()[0]
        img.put64(addr, 0)
    elif what in ("leak-extra", "refcount-minus"):
        _, e = img.data_entries()[arg]
        c = (e & OFF_MASK) >> img.cluster_bits
        img.set_rc(c, img.get_rc(c) + (1 if what == "leak-extra" else -1))
    elif what == "l2-into-reftable":
        addr, _ = img.data_entries()[0]
        img.put64(addr, img.rt_offset | COPIED)
    elif what == "l1-misaligned":
        i, l2 = img.first_l2()
        img.put64(img.l1_offset + 8 * i, img.l1(i) + 512)
    elif what == "copied-clear":
        addr, e = img.data_entries()[0]
        img.put64(addr, e & ~COPIED)
    elif what == "copied-l1-clear":
        i, _ = img.first_l2()
        img.put64(img.l1_offset + 8 * i, img.l1(i) & ~COPIED)
    elif what == "refblock-zero":
        _, l2 = img.first_l2()
        img.set_rc(l2 >> img.cluster_bits, 0)
    elif what == "reftable-misaligned":
        img.put64(img.rt_offset, img.u64(img.rt_offset) + 512)
    elif what == "refblock-far":
        img.put64(img.rt_offset + 8, 1 << 28)
    elif what == "garbage":
        img.write(arg, b"\xff" * 4096)
    elif what == "sn-l1-offset-add":
        off = img.sn_entries()[args[0]][0]
        img.put64(off, img.u64(off) + args[1])
    elif what == "sn-l1-size":
        img.write(img.sn_entries()[args[0]][0] + 8,
                  struct.pack(">I", args[1]))
    elif what == "sn-extra-size":
        img.write(img.sn_entries()[args[0]][0] + 36,
                  struct.pack(">I", args[1]))
    elif what == "sn-count":
        img.write(60, struct.pack(">I", arg))
    elif what == "sn-table-offset-add":
        img.put64(64, img.sn_table()[1] + arg)
    elif what == "sn-table-offset":
        img.put64(64, arg)
    elif what == "sn-strip-extra":
        entries = img.sn_entries()
        start = img.sn_table()[1]
        end = entries[-1][0] + 40 + len(entries[-1][2]) + len(entries[-1][3])
        out = bytearray()
        for _, h, _, strs in entries:
            while len(out) % 8:
                out.append(0)
            out += h[:36] + struct.pack(">I", 0) + strs
        img.write(start, bytes(out) + bytes(end - start - len(out)))
    else:
        raise SystemExit("unknown damage " + what)
    img.f.close()


if __name__ == "__main__":
    main()
