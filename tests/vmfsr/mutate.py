"""Hostile images: seeded mutations of the real VMFS5/6 images (flipped bits,
hostile integers, zeroed or random sectors), biased to metadata (the LVM
header, FS descriptor, FDC header, file descriptors, directory blocks,
resource headers, pointer blocks: on these sparse images nearly every
non-zero sector is metadata). After each mutation every command runs:
ls -laR, tree, stat, cat of every small file, and info/hosts/locks when the
build has them. Each must end with correct output or a clear error: exit
status below 128 (no crash), no timeout (no hang), no sanitizer report,
and a failing command must print a "vmfsctl CMD: ..." error.

The image is mutated in place and restored after each case, so no copy of
the 0.5-1 GiB sparse images is made. VMFSR_MUTATIONS (default 200 per
image, 60 in an ASan build) and VMFSR_SEED (default 20260 + version) set the run."""
import json
import os
import random
import shutil
import struct
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmfsrtest as T  # noqa: E402

SECTOR = 512
CMD_TIMEOUT = 30
CAT_LIMIT = 8 << 20
HOSTILE = [0, 1, 2, 3, 4, 5, 7, 0x20, 0x3f, 0x40, 0x100, 0x7fffffff, 0x80000000, 0xffffffff,
           0xfffffffe, 0x10c00001, 0xc001d00d, 0x2fabf15e, 0xffffffffffffffff,
           0x8000000000000000, 0x7fffffffffffffff, 0x100000000]


def nonzero_sectors(img):
    """Physical offsets of the non-zero sectors (the metadata, mostly)."""
    res = []
    with open(img, "rb") as f:
        fd = f.fileno()
        end = os.fstat(fd).st_size
        off = 0
        while off < end:
            try:
                data = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break
            hole = os.lseek(fd, data, os.SEEK_HOLE)
            f.seek(data)
            buf = f.read(hole - data)
            for i in range(0, len(buf), SECTOR):
                if any(buf[i:i + SECTOR]):
                    res.append(data + i)
            off = hole
    return res


def hot_sectors(img):
    """The headers every open depends on: LVM header and volume descriptor,
    FS descriptor, first sectors of the FDC."""
    with open(img, "rb") as f:
        f.seek(0x100000)
        h = f.read(0x200)
    data_off = struct.unpack_from("<Q", h, 0x7A)[0]
    if data_off > (1 << 30):
        data_off = 0x1100000
    hot = [0x100000, 0x100200, 0x101000, data_off + 0x200000, data_off + 0x200100]
    return hot


def mutate(rng, img, sectors, hot):
    """Applies one random mutation; returns (offset, original bytes, text)."""
    off = rng.choice(hot) if rng.random() < 0.2 else rng.choice(sectors)
    with open(img, "r+b") as f:
        f.seek(off)
        orig = f.read(SECTOR)
        buf = bytearray(orig)
        kind = rng.random()
        if kind < 0.4:
            n = rng.randint(1, 8)
            for _ in range(n):
                bit = rng.randrange(SECTOR * 8)
                buf[bit // 8] ^= 1 << (bit % 8)
            what = "flip %d bits" % n
        elif kind < 0.8:
            size = rng.choice([2, 4, 4, 8])
            pos = rng.randrange(0, SECTOR - size + 1, size if rng.random() < 0.7 else 1)
            val = rng.choice(HOSTILE + [rng.getrandbits(size * 8)]) & ((1 << (size * 8)) - 1)
            buf[pos:pos + size] = val.to_bytes(size, "little")
            what = "u%d at +0x%x = 0x%x" % (size * 8, pos, val)
        elif kind < 0.9:
            buf = bytearray(SECTOR)
            what = "zero sector"
        else:
            pos = rng.randrange(SECTOR)
            n = rng.randint(1, SECTOR - pos)
            buf[pos:pos + n] = bytes(rng.getrandbits(8) for _ in range(n))
            what = "random %d bytes at +0x%x" % (n, pos)
        f.seek(off)
        f.write(buf)
    return off, orig, "%s in sector 0x%x" % (what, off)


def restore(img, off, orig):
    with open(img, "r+b") as f:
        f.seek(off)
        f.write(orig)


STATS = {"clear_errors": 0, "ok": 0}


def run_one(cmd):
    try:
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=CMD_TIMEOUT)
    except subprocess.TimeoutExpired:
        return "hang (no answer in %ds)" % CMD_TIMEOUT
    err = p.stderr.decode("utf-8", "replace")
    if p.returncode < 0 or p.returncode >= 128:
        return "crash (exit %d): %s" % (p.returncode, err[-400:])
    if "Sanitizer" in err or "runtime error" in err:
        return "sanitizer report: %s" % err[-600:]
    if p.returncode != 0:
        lines = [l for l in err.splitlines() if l.strip()]
        if not lines:
            return "failed (exit %d) without an error message" % p.returncode
        bad = [l for l in lines if not l.startswith("vmfsctl ")]
        if bad:
            return "unclear error line: %r" % bad[0][:200]
        STATS["clear_errors"] += 1
    else:
        STATS["ok"] += 1
    return None


def commands(vmfsctl, img, paths, files, extra, rng):
    cmds = [[vmfsctl, "ls", "-laR", img, "/"], [vmfsctl, "tree", "-a", img]]
    for p in rng.sample(paths, min(2, len(paths))):
        cmds.append([vmfsctl, "stat", img, p])
    if files:
        cmds.append([vmfsctl, "cat", img] + files)
    for c in extra:
        cmds.append([vmfsctl, c, img])
    return cmds


def has_command(vmfsctl, name):
    p = subprocess.run([vmfsctl, name, "--help"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=10)
    return p.returncode == 0


def main():
    data, vmfsctl = T.env_or_skip()
    # ASan builds start each process ~4x slower: fewer cases keep the
    # test under two minutes there.
    with open(vmfsctl, "rb") as f:
        asan = b"__asan_init" in f.read()
    n = int(os.environ.get("VMFSR_MUTATIONS", "60" if asan else "200"))
    extra = [c for c in ("info", "hosts", "locks") if has_command(vmfsctl, c)]
    if len(extra) < 3:
        print("NOTE: commands missing from this build, not exercised: %s" %
              ", ".join(sorted(set(("info", "hosts", "locks")) - set(extra))))
    c = T.Checker()
    for version in (5, 6):
        seed = int(os.environ.get("VMFSR_SEED", "20260")) + version
        rng = random.Random(seed)
        tmp = T.scratch_dir("mutate")
        try:
            img = T.unpack(data, version, tmp)
            ents = json.loads(T.run([vmfsctl, "ls", "-aR", "--json", img, "/"]).stdout)
            ents = [e for e in ents if e["name"] not in (".", "..")]
            paths = [e["path"] for e in ents]
            files = [e["path"] for e in ents if e["type"] != "dir" and e["size"] <= CAT_LIMIT]
            sectors = nonzero_sectors(img)
            hot = hot_sectors(img)
            c.ok("VMFS%d image has metadata sectors" % version, len(sectors) > 16)
            errors = 0
            for i in range(n):
                off, orig, what = mutate(rng, img, sectors, hot)
                try:
                    for cmd in commands(vmfsctl, img, paths, files, extra, rng):
                        bad = run_one(cmd)
                        c.ok("VMFS%d seed %d case %d (%s): %s" %
                             (version, seed, i, what, " ".join(cmd[1:2])), bad is None)
                        if bad:
                            errors += 1
                            print("  -> %s\n     command: %s" % (bad, " ".join(cmd[:4])))
                finally:
                    restore(img, off, orig)
            print("VMFS%d: %d mutations, %d failing commands; so far %d commands ended with a "
                  "clear error, %d succeeded" % (version, n, errors, STATS["clear_errors"],
                                                 STATS["ok"]))
            p = T.run([vmfsctl, "ls", "-laR", img, "/"], check=False)
            c.ok("VMFS%d image restored and readable" % version, p.returncode == 0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    # the mutations must reach metadata: some commands have to detect them
    c.ok("mutations were detected (clear errors seen)", STATS["clear_errors"] > n // 10)
    c.finish("vmfsr_mutate")


if __name__ == "__main__":
    main()
