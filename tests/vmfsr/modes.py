"""Addressing modes the two ESXi images do not use, crafted into copies of
them: a VMFS5 file read through a pointer block (single indirection) with a
hole and a TBZ (to-be-zeroed) block, the same file through two levels of
pointer blocks (double indirection, which vmfs-tools cannot read), and a
VMFS6 file of small file blocks in two clusters with a hole and a TBZ block,
and hostile links: a directory entry pointing back at the root and a symlink
to itself (ls -R and tree stop with a clear error, cat gets ELOOP).
The expected content is built here from the blocks written; single
indirection and the VMFS6 file are also compared with debugvmfs/debugvmfs6.
The crafting code locates structures from the raw image (LVM header, FDC
scan), not through the reader under test."""
import hashlib
import os
import random
import shutil
import struct
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmfsrtest as T  # noqa: E402

MiB = 1 << 20


class Img:
    def __init__(self, path, version):
        self.path, self.version = path, version
        self.f = open(path, "r+b")
        h = self.pread(0x100000, 0x200)
        self.data_off = struct.unpack_from("<Q", h, 0x7A)[0]
        d = self.lread(0x200000, 0x200)
        self.bsize = struct.unpack_from("<Q", d, 0xA1)[0]
        if version == 5:
            self.md, self.fd_size, self.fdc = 0x200, 0x800, 4 * MiB
            self.blk_off, self.asize = 0x400, 4
        else:
            self.md = struct.unpack_from("<I", d, 0x134)[0]
            self.fd_size, self.fdc = 2 * self.md, 7 * MiB
            self.blk_off, self.asize = 2 * self.md - 320 * 8, 8

    def pread(self, off, n):
        self.f.seek(off)
        return self.f.read(n)

    def pwrite(self, off, b):
        self.f.seek(off)
        self.f.write(b)

    def lread(self, off, n):
        return self.pread(self.data_off + off, n)

    def lwrite(self, off, b):
        self.pwrite(self.data_off + off, b)

    def fd_offset(self, ino):
        """Logical offset of FD ino: scan the FDC's first block."""
        for off in range(self.fdc, self.fdc + MiB, self.fd_size):
            if struct.unpack_from("<I", self.lread(off + self.md, 4))[0] == ino:
                return off
        raise RuntimeError("FD 0x%x not found" % ino)

    def set_fd(self, ino, size=None, zla=None, bsize=None, nblocks=None, blocks=None):
        off = self.fd_offset(ino)
        d = off + self.md
        if size is not None:
            self.lwrite(d + 0x14, struct.pack("<Q", size))
        if bsize is not None:
            self.lwrite(d + 0x1C, struct.pack("<Q", bsize))
            self.lwrite(d + 0x89, bytes([bsize.bit_length() - 1]))
        if nblocks is not None:
            self.lwrite(d + 0x24, struct.pack("<Q", nblocks))
        if zla is not None:
            self.lwrite(d + 0x44, struct.pack("<I", zla))
        if blocks is not None:
            fmt = "<I" if self.asize == 4 else "<Q"
            arr = b"".join(struct.pack(fmt, a) for a in blocks)
            arr += bytes(self.fd_size - self.blk_off - len(arr))
            self.lwrite(off + self.blk_off, arr)

    def fd_block0(self, ino):
        off = self.fd_offset(ino)
        return struct.unpack_from("<I", self.lread(off + self.blk_off, 4))[0]

    def free_block(self, start, count):
        """`count` consecutive all-zero volume blocks from `start`."""
        for b in range(start, start + count):
            if any(self.lread(b * self.bsize, self.bsize)):
                raise RuntimeError("block %d is not free" % b)
        return list(range(start, start + count))

    def close(self):
        self.f.close()


def pattern(rng, n):
    return bytes(rng.getrandbits(8) for _ in range(256)) * (n // 256)


def ours_md5(vmfsctl, img, path):
    rc, h = T.stream_md5([vmfsctl, "cat", img, path], timeout=300)
    return h if rc == 0 else "exit %d" % rc


def oracle_md5(version, img, path):
    banner = b"VMFS version: 6\n" if version == 6 else b""
    rc, h = T.stream_md5([T.ORACLE[version], img, "cat", path], banner)
    return h if rc == 0 else "exit %d" % rc


def expect_md5(parts):
    h = hashlib.md5()
    for p in parts:
        if isinstance(p, int):
            z = bytes(MiB)
            for _ in range(p // MiB):
                h.update(z)
            h.update(bytes(p % MiB))
        else:
            h.update(p)
    return h.hexdigest()


def vmfs5_cases(c, data, vmfsctl, rng):
    tmp = T.scratch_dir("modes5")
    try:
        path = T.unpack(data, 5, tmp)
        im = Img(path, 5)
        ino = int(T.run([vmfsctl, "stat", "--json", path, "/directory/file5"]).stdout
                  .split(b'"ino": ')[1].split(b",")[0])
        b = im.free_block(240, 4)
        blk = {x: pattern(rng, MiB) for x in b}
        for x in b:
            im.lwrite(x * MiB, blk[x])
        # .pbc.sf (FD 0x00c00004): header, then resources r0, r1 of 4 KiB
        pbc_blk = im.fd_block0(0x00C00004) >> 6
        pbc = pbc_blk * MiB
        hdr = bytearray(im.lread(pbc, 0x40))
        first, cpg, rsz = (struct.unpack_from("<I", hdr, o)[0] for o in (8, 4, 12))
        r0 = pbc + first + (cpg << 10)
        r1 = r0 + rsz
        c.eq("pbc resource size", rsz, 4096)
        fb = lambda x: x << 6 | 1  # noqa: E731

        # A: single indirection, hole at block 1, TBZ at block 2
        pb = [fb(b[0]), 0, fb(b[1]) | 0x20, fb(b[2]), fb(b[3])]
        im.lwrite(r0, struct.pack("<%dI" % len(pb), *pb) + bytes(4096 - 4 * len(pb)))
        size = 4 * MiB + 100
        im.set_fd(ino, size=size, zla=3, bsize=MiB, nblocks=4, blocks=[0x3])
        im.f.flush()
        want = expect_md5([blk[b[0]], 2 * MiB, blk[b[2]], blk[b[3]][:100]])
        c.eq("VMFS5 pointer block file", ours_md5(vmfsctl, path, "/directory/file5"), want)
        c.eq("VMFS5 pointer block file (oracle)", oracle_md5(5, path, "/directory/file5"), want)

        # B: double indirection: L1 (r0) entry 1 -> L2 (r1) -> blocks
        struct.pack_into("<I", hdr, 0x14, 2)  # two PB resources
        im.lwrite(pbc, bytes(hdr))
        pbc_fd = im.fd_offset(0x00C00004) + im.md
        im.lwrite(pbc_fd + 0x14, struct.pack("<Q", (r1 - pbc) + 4096))
        l1 = [0, (1 << 28) | 3]
        im.lwrite(r0, struct.pack("<2I", *l1) + bytes(4096 - 8))
        l2 = [fb(b[0]), 0, fb(b[2])]
        im.lwrite(r1, struct.pack("<3I", *l2) + bytes(4096 - 12))
        size = 1027 * MiB
        im.set_fd(ino, size=size, zla=4301 + 3, nblocks=2, blocks=[0x3])
        im.f.flush()
        want = expect_md5([1024 * MiB, blk[b[0]], MiB, blk[b[2]]])
        c.eq("VMFS5 double-indirect file", ours_md5(vmfsctl, path, "/directory/file5"), want)
        st = T.run([vmfsctl, "stat", "--json", path, "/directory/file5"]).stdout
        c.ok("VMFS5 double-indirect stat size", b'"size": %d' % size in st)

        # C: an L2 pointer of the wrong type is a clear error, not data
        im.lwrite(r0 + 4, struct.pack("<I", fb(b[1])))
        im.f.flush()
        p = subprocess.run([vmfsctl, "cat", path, "/directory/file5"], timeout=120,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        c.ok("VMFS5 bad pointer block type rejected",
             p.returncode == 1 and b"pointer block" in p.stderr)
        loops(c, im, vmfsctl, path)
        im.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def loops(c, im, vmfsctl, path):
    """F: a directory entry pointing back at the root, and a symlink to
    itself: every command ends with a clear error, none loops."""
    st = T.run([vmfsctl, "stat", "--json", path, "/directory/file1"]).stdout
    fino = int(st.split(b'"ino": ')[1].split(b",")[0])
    # the directory entry: type 3, file1's FD address, generation, "file1"
    pat = struct.pack("<II", 3, fino)
    pos = -1
    for off in range(0, 64 * MiB, MiB):
        b = im.lread(off, MiB)
        i = b.find(pat)
        while i >= 0 and b[i + 12:i + 18] != b"file1\0":
            i = b.find(pat, i + 1)
        if i >= 0:
            pos = off + i
            break
    if pos < 0:
        c.ok("found the entry of file1", False)
        return
    im.lwrite(pos, struct.pack("<III", 2, 0x4, 1) + b"loop".ljust(128, b"\0"))
    sino = int(T.run([vmfsctl, "stat", "--json", path, "/directory/symlink"]).stdout
               .split(b'"ino": ')[1].split(b",")[0])
    # made resident (zla 4301 + 4): the target lives in the FD at 0x400
    im.set_fd(sino, size=7, zla=4301 + 4)
    im.lwrite(im.fd_offset(sino) + 0x400, b"symlink".ljust(0x400, b"\0"))
    im.f.flush()
    for cmd in (["ls", "-laR", path, "/"], ["tree", "-a", path]):
        p = subprocess.run([vmfsctl] + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        c.ok("%s on a directory cycle: exit 1, says why" % cmd[0],
             p.returncode == 1 and b"cycle" in p.stderr)
    p = T.run([vmfsctl, "ls", path, "/directory/loop/directory/loop/directory"], check=False)
    c.ok("path through the cycle resolves", p.returncode == 0 and b"loop" in p.stdout)
    p = T.run([vmfsctl, "cat", path, "/directory/symlink"], check=False)
    c.ok("self-referencing symlink: ELOOP",
         p.returncode == 1 and b"Too many levels of symbolic links" in p.stderr)


def vmfs6_cases(c, data, vmfsctl, rng):
    tmp = T.scratch_dir("modes6")
    try:
        path = T.unpack(data, 6, tmp)
        im = Img(path, 6)
        ino = int(T.run([vmfsctl, "stat", "--json", path, "/directory/file5"]).stdout
                  .split(b'"ino": ')[1].split(b",")[0])
        b = im.free_block(700, 2)  # cluster 1 of 512 blocks
        b0 = im.free_block(300, 1)  # cluster 0
        blk = {x: pattern(rng, MiB) for x in b + b0}
        for x in b + b0:
            im.lwrite(x * MiB, blk[x])
        sfb = lambda x: (x % 512) << 51 | (x // 512) << 15 | 1  # noqa: E731
        # D: blocks in clusters 1 and 0 (compared with debugvmfs6 too)
        blocks = [sfb(b[0]), sfb(b0[0])]
        size = 2 * MiB - 10
        im.set_fd(ino, size=size, zla=1, bsize=MiB, nblocks=2, blocks=blocks)
        im.f.flush()
        want = expect_md5([blk[b[0]], blk[b0[0]][:-10]])
        c.eq("VMFS6 small file blocks", ours_md5(vmfsctl, path, "/directory/file5"), want)
        c.eq("VMFS6 small file blocks (oracle)", oracle_md5(6, path, "/directory/file5"), want)
        # E: a hole and a TBZ block. debugvmfs6 stops reading at a hole and
        # ignores VMFS6 TBZ bits (0x7f80), so this is checked against the
        # expected content only.
        blocks = [sfb(b[0]), 0, sfb(b0[0]), sfb(b[1]) | 0x80]
        size = 4 * MiB
        im.set_fd(ino, size=size, zla=1, bsize=MiB, nblocks=3, blocks=blocks)
        im.f.flush()
        want = expect_md5([blk[b[0]], MiB, blk[b0[0]], MiB])
        c.eq("VMFS6 file with a hole", ours_md5(vmfsctl, path, "/directory/file5"), want)
        im.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    data, vmfsctl = T.env_or_skip()
    T.need_oracle(5)
    T.need_oracle(6)
    c = T.Checker()
    rng = random.Random(4242)
    vmfs5_cases(c, data, vmfsctl, rng)
    vmfs6_cases(c, data, vmfsctl, rng)
    c.finish("vmfsr_modes")


if __name__ == "__main__":
    main()
