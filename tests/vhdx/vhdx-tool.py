#!/usr/bin/env python3
"""Edit VHDX files for the tests: build what qemu-img cannot make
(differencing images, dirty logs) out of images qemu-img made.

  vhdx-tool.py diff CHILD PARENT     turn CHILD (dynamic, block_state_zero
                                     =off) into a differencing image of
                                     PARENT, with block 0 fully present
                                     (0xa1), block 2 partially present
                                     (first MiB 0xb2); writes CHILD.expect
                                     needs PARENT.raw (its content)
  vhdx-tool.py dirty IMG             set the log GUID of IMG's headers to
                                     the GUID of the entry in its log and
                                     zero the BAT entries the log rewrites
  vhdx-tool.py header IMG FIELD VAL  patch a header field (both headers)
  vhdx-tool.py state IMG BLOCK       print the log's state and BAT entry
                                     BLOCK's state: "log=active|empty
                                     live=N head=SEQ wrapped=yes|no
                                     written=M block=STATE" (live: valid
                                     entries with the header's log GUID,
                                     written: valid entries of any GUID)
  vhdx-tool.py compact OUT DATA      write a small valid image for fuzz
                                     seeds (log, BAT and metadata at
                                     1, 2, 3 MiB, 1 MiB blocks; DATA=1: the
                                     last block present at 4 MiB)
"""
import struct, sys, uuid

_T = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ (0x82f63b78 & -(_c & 1))
    _T.append(_c)

def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc = _T[(crc ^ b) & 0xff] ^ (crc >> 8)
    return crc ^ 0xffffffff

MiB = 1 << 20

def headers(d):
    hs = []
    for off in (64 * 1024, 128 * 1024):
        seq = struct.unpack_from('<Q', d, off + 8)[0]
        hs.append((seq, off))
    return max(hs)[1], hs

def write_header(d, off):
    struct.pack_into('<I', d, off + 4, 0)
    struct.pack_into('<I', d, off + 4, crc32c(bytes(d[off:off + 4096])))

def regions(d):
    r = 192 * 1024
    bat = struct.unpack_from('<QI', d, r + 32)
    meta = struct.unpack_from('<QI', d, r + 64)
    return bat, meta

def guid_text(b):
    return '{' + str(uuid.UUID(bytes_le=bytes(b))).upper() + '}'

def cmd_diff(child, parent):
    d = bytearray(open(child, 'rb').read())
    p = open(parent, 'rb').read()
    praw = open(parent + '.raw', 'rb').read()
    (bat_off, _), (meta_off, _) = regions(d)
    m = meta_off
    bsize = struct.unpack_from('<I', d, m + 0x10000)[0]
    vsize = struct.unpack_from('<Q', d, m + 0x10008)[0]
    ratio = (1 << 23) * 512 // bsize
    # file parameters: has_parent
    struct.pack_into('<I', d, m + 0x10004, 2)
    # parent locator item at metadata offset 0x11000
    ph, _ = headers(p)
    link = guid_text(p[ph + 32:ph + 48])
    kv = [('parent_linkage', link), ('relative_path', '.\\' +
           parent.rsplit('/', 1)[-1]),
          ('absolute_win32_path', 'C:\\images\\' + parent.rsplit('/', 1)[-1])]
    loc = bytearray(20 + 12 * len(kv))
    loc[0:16] = uuid.UUID('B04AEFB7-D19E-4A81-B789-25B8E9445913').bytes_le
    struct.pack_into('<HH', loc, 16, 0, len(kv))
    strings = bytearray()
    base = len(loc)
    for i, (k, v) in enumerate(kv):
        kb, vb = k.encode('utf-16le'), v.encode('utf-16le')
        ko = base + len(strings); strings += kb
        vo = base + len(strings); strings += vb
        struct.pack_into('<IIHH', loc, 20 + 12 * i, ko, vo, len(kb), len(vb))
    loc += strings
    cnt = struct.unpack_from('<H', d, m + 10)[0]
    e = m + 32 + 32 * cnt
    d[e:e + 16] = uuid.UUID('A8D35F2D-B30B-454D-ABF7-D3D84834AB0C').bytes_le
    struct.pack_into('<IIII', d, e + 16, 0x11000, len(loc), 6, 0)
    struct.pack_into('<H', d, m + 10, cnt + 1)
    d[m + 0x11000:m + 0x11000 + len(loc)] = loc
    # data: block 0 full (0xa1), block 2 partial (first MiB 0xb2)
    end = (len(d) + MiB - 1) // MiB * MiB
    b0, b2, sb = end, end + bsize, end + 2 * bsize
    d += bytes(end - len(d)) + b'\xa1' * bsize
    blk2 = bytearray(bsize); blk2[:MiB] = b'\xb2' * MiB
    d += blk2
    bitmap = bytearray(MiB)
    first = 2 * bsize // 512
    for s in range(first, first + MiB // 512):
        bitmap[s // 8] |= 1 << (s % 8)
    d += bitmap
    struct.pack_into('<Q', d, bat_off + 0, b0 | 6)
    struct.pack_into('<Q', d, bat_off + 16, b2 | 7)
    struct.pack_into('<Q', d, bat_off + 8 * ratio, sb | 6)
    open(child, 'wb').write(d)
    exp = bytearray(praw[:vsize])
    exp[0:bsize] = b'\xa1' * bsize
    exp[2 * bsize:2 * bsize + MiB] = b'\xb2' * MiB
    open(child + '.expect', 'wb').write(exp)

def cmd_dirty(img):
    d = bytearray(open(img, 'rb').read())
    cur, hs = headers(d)
    log_len, log_off = struct.unpack_from('<IQ', d, cur + 68)
    (bat_off, bat_len), _ = regions(d)
    # the newest entry (each QEMU log flush uses a new GUID)
    best = None
    for pos in range(0, log_len, 4096):
        at = log_off + pos
        if d[at:at + 4] == b'loge':
            seq = struct.unpack_from('<Q', d, at + 16)[0]
            if best is None or seq > best[0]:
                best = (seq, at)
    assert best, 'no log entry'
    e = best[1]
    guid = d[e + 32:e + 48]
    ndesc = struct.unpack_from('<I', d, e + 24)[0]
    for i in range(ndesc):
        ds = e + 64 + 32 * i
        if d[ds:ds + 4] == b'desc':
            off = struct.unpack_from('<Q', d, ds + 16)[0]
            if bat_off <= off < bat_off + bat_len:
                d[off:off + 4096] = bytes(4096)  # the update is lost
    for _, off in hs:
        d[off + 48:off + 64] = guid
        write_header(d, off)
    open(img, 'wb').write(d)

def cmd_header(img, field, val):
    d = bytearray(open(img, 'rb').read())
    _, hs = headers(d)
    fields = {'version': ('<H', 66), 'log_length': ('<I', 68)}
    fmt, at = fields[field]
    for _, off in hs:
        struct.pack_into(fmt, d, off + at, int(val, 0))
        write_header(d, off)
    open(img, 'wb').write(d)

def cmd_compact(out, data):
    data = data == '1'
    vsize = 4 * MiB + 4096
    d = bytearray(4 * MiB + 4096 if data else 3 * MiB + 65536 + 48)
    d[0:8] = b'vhdxfile'
    for i, off in enumerate((64 * 1024, 128 * 1024)):
        struct.pack_into('<IIQ', d, off, 0x64616568, 0, 10 + i)
        d[off + 16:off + 32] = uuid.uuid4().bytes_le
        d[off + 32:off + 48] = uuid.uuid4().bytes_le
        struct.pack_into('<HHIQ', d, off + 64, 0, 1, MiB, MiB)
        write_header(d, off)
    for r in (192 * 1024, 256 * 1024):
        struct.pack_into('<IIII', d, r, 0x69676572, 0, 2, 0)
        d[r + 16:r + 32] = uuid.UUID('2DC27766-F623-4200-9D64-115E9BFD4A08').bytes_le
        struct.pack_into('<QII', d, r + 32, 2 * MiB, MiB, 1)
        d[r + 48:r + 64] = uuid.UUID('8B7CA206-4790-4B9A-B8FE-575F050F886E').bytes_le
        struct.pack_into('<QII', d, r + 64, 3 * MiB, MiB, 1)
        struct.pack_into('<I', d, r + 4, crc32c(bytes(d[r:r + 65536])))
    m = 3 * MiB
    d[m:m + 8] = b'metadata'
    items = [('CAA16737-FA36-4D43-B3B6-33F0AA44E76B', 0x10000, 8, 4),
             ('2FA54224-CD1B-4876-B211-5DBED83BF4B8', 0x10008, 8, 6),
             ('BECA12AB-B2E6-4523-93EF-C309E000C746', 0x10010, 16, 6),
             ('8141BF1D-A96F-4709-BA47-F233A8FAAB5F', 0x10020, 4, 6),
             ('CDA348C7-445D-4471-9CC9-E9885251C556', 0x10024, 4, 6)]
    struct.pack_into('<HH', d, m + 8, 0, len(items))
    for i, (g, off, ln, bits) in enumerate(items):
        e = m + 32 + 32 * i
        d[e:e + 16] = uuid.UUID(g).bytes_le
        struct.pack_into('<IIII', d, e + 16, off, ln, bits, 0)
    struct.pack_into('<II', d, m + 0x10000, MiB, 0)
    struct.pack_into('<Q', d, m + 0x10008, vsize)
    d[m + 0x10010:m + 0x10020] = uuid.uuid4().bytes_le
    struct.pack_into('<II', d, m + 0x10020, 512, 512)
    for b in range(5):
        struct.pack_into('<Q', d, 2 * MiB + 8 * b, 2)
    if data:
        struct.pack_into('<Q', d, 2 * MiB + 8 * 4, 4 * MiB | 6)
        d[4 * MiB:4 * MiB + 4096] = b'\x5a' * 4096
    open(out, 'wb').write(d)

def valid_entry(d, log_off, log_len, pos):
    """The sequence number of a well-formed entry at pos, else None."""
    at = log_off + pos
    if d[at:at + 4] != b'loge':
        return None
    ck, ln, tail, seq, nd = struct.unpack_from('<IIIQI', d, at + 4)
    if ln == 0 or ln % 4096 or ln > log_len or seq == 0:
        return None
    first = min(ln, log_len - pos)
    e = bytearray(d[at:at + first] + d[log_off:log_off + ln - first])
    struct.pack_into('<I', e, 4, 0)
    if crc32c(bytes(e)) != ck:
        return None
    dsec = (64 + 32 * nd + 4095) // 4096
    k = dsec
    for i in range(nd):
        sig, = struct.unpack_from('<4s', e, 64 + 32 * i)
        dseq, = struct.unpack_from('<Q', e, 64 + 32 * i + 24)
        if sig not in (b'desc', b'zero') or dseq != seq:
            return None
        if sig == b'desc':
            s = k * 4096
            hi, lo = struct.unpack_from('<I', e, s + 4)[0], \
                struct.unpack_from('<I', e, s + 4092)[0]
            if e[s:s + 4] != b'data' or (hi << 32 | lo) != seq:
                return None
            k += 1
    return seq if k * 4096 == ln else None

def cmd_state(img, block):
    d = open(img, 'rb').read()
    cur, hs = headers(d)
    log_len, log_off = struct.unpack_from('<IQ', d, cur + 68)
    guid = d[cur + 48:cur + 64]
    live, written, head = 0, 0, 0
    for pos in range(0, log_len, 4096):
        seq = valid_entry(d, log_off, log_len, pos)
        if seq is None:
            continue
        written += 1
        if guid != bytes(16) and d[log_off + pos + 32:log_off + pos + 48] == guid:
            live += 1
            head = max(head, seq)
    (bat_off, _), (meta_off, _) = regions(d)
    bsize = struct.unpack_from('<I', d, meta_off + 0x10000)[0]
    ratio = (1 << 23) * 512 // bsize
    b = int(block)
    e = struct.unpack_from('<Q', d, bat_off + 8 * (b + b // ratio))[0]
    print('log=%s live=%d head=%d wrapped=%s written=%d block=%d' % (
        'empty' if guid == bytes(16) else 'active', live, head,
        'yes' if head * 8192 > log_len else 'no', written, e & 7))

if __name__ == '__main__':
    {'diff': cmd_diff, 'dirty': cmd_dirty, 'header': cmd_header,
     'compact': cmd_compact, 'state': cmd_state}[sys.argv[1]](*sys.argv[2:])
