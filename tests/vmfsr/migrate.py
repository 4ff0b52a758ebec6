"""Migration off a real datastore: every file of the real VMFS5 and VMFS6
images is copied with `vmfsctl cp REAL:/path NATIVE:/name` into a freshly
formatted libvmfs volume and must read back bit-exact (through vmfsctl cat
and through a vmfsmount -o ro of the native volume), with the same
size; fsck of the native volume is clean afterwards. Also: a mostly-zero
file copied in stays thin, and copying into the real datastore is refused.
The source contents are read with our reader, which vmfsr_oracle checks
against debugvmfs/debugvmfs6."""
import json
import os
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmfsrtest as T  # noqa: E402


def walk(vmfsctl, img, path="/"):
    """Regular files and symlinks of a real image, system files left out."""
    out = []
    for name, e in sorted(T.ours_ls(vmfsctl, img, path).items()):
        if name in (".", "..") or name.endswith(".sf"):
            continue
        full = path.rstrip("/") + "/" + name
        if e["type"] == "dir":
            out += walk(vmfsctl, img, full)
        elif e["type"] in ("file", "symlink"):
            out.append(full)
    return out


def stat_json(vmfsctl, img, path):
    return json.loads(T.run([vmfsctl, "stat", "--json", img, path]).stdout)


def fuse_md5s(work, img, names, c):
    """md5 of each name read through a read-only vmfsmount of img, or None
    when FUSE cannot be used here (the rest of the test still runs)."""
    if not os.path.exists("/dev/fuse") or os.geteuid() != 0 or not shutil.which("fusermount3"):
        print("note: FUSE part skipped (no usable /dev/fuse, fusermount3 or root)")
        return None
    vmfsmount = os.path.join(os.path.dirname(os.environ["VMFSCTL"]), "vmfsmount")
    mnt = os.path.join(work, "mnt")
    os.makedirs(mnt, exist_ok=True)
    proc = subprocess.Popen([vmfsmount, "-f", "-o", "ro", img, mnt], stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 15
        while not os.path.ismount(mnt) and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.05)
        c.ok("vmfsmount mounted the native volume", os.path.ismount(mnt))
        if not os.path.ismount(mnt):
            return {}
        res = {}
        for n in names:
            with open(os.path.join(mnt, n), "rb") as f:
                res[n] = T.md5(f.read())
        try:
            with open(os.path.join(mnt, "new"), "wb"):
                pass
            c.ok("vmfsmount -o ro of a native volume is read-only", False)
        except OSError:
            c.ok("vmfsmount -o ro of a native volume is read-only", True)
        return res
    finally:
        subprocess.run(["fusermount3", "-u", mnt], stderr=subprocess.DEVNULL, timeout=30)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def migrate(version, data, vmfsctl, c):
    work = T.scratch_dir("migrate%d" % version)
    try:
        real = T.unpack(data, version, work)
        native = os.path.join(work, "native.img")
        with open(native, "wb") as f:
            f.truncate(2 << 30)
        T.run([vmfsctl, "mkfs", "-q", "-H", "4", "-J", "1M", native])
        files = walk(vmfsctl, real)
        c.ok("VMFS%d image has files to migrate" % version, len(files) > 0)
        names = {}
        for src in files:
            dst = src.strip("/").replace("/", "_")
            names[dst] = src
            p = T.run([vmfsctl, "cp", "%s:%s" % (real, src), "%s:/%s" % (native, dst)],
                      check=False, timeout=300)
            c.eq("cp VMFS%d:%s exit code (%s)" % (version, src, p.stderr.decode().strip()),
                 p.returncode, 0)
        via_fuse = fuse_md5s(work, native, list(names), c)
        for dst, src in names.items():
            rc1, want = T.stream_md5([vmfsctl, "cat", real, src])
            rc2, got = T.stream_md5([vmfsctl, "cat", native, "/" + dst])
            c.eq("VMFS%d %s: cat of the source" % (version, src), rc1, 0)
            c.eq("VMFS%d %s: cat of the copy" % (version, src), rc2, 0)
            c.eq("VMFS%d %s: content of the copy" % (version, src), got, want)
            if via_fuse is not None and dst in via_fuse:
                c.eq("VMFS%d %s: content through vmfsmount" % (version, src), via_fuse[dst],
                     want)
            size_src = stat_json(vmfsctl, real, src)
            size_dst = stat_json(vmfsctl, native, "/" + dst)
            if size_src.get("type") != "symlink":
                c.eq("VMFS%d %s: size of the copy" % (version, src), size_dst["size"],
                     size_src["size"])
        p = T.run([vmfsctl, "fsck", native], check=False)
        c.eq("fsck of the native volume after migrating VMFS%d (%s)"
             % (version, p.stdout.decode().strip()), p.returncode, 0)
        refused = T.run([vmfsctl, "cp", native + ":/" + next(iter(names)), real + ":/x"],
                        check=False)
        c.ok("copy into the real VMFS%d datastore is refused" % version,
             refused.returncode == 1 and b"read-only" in refused.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def thin_copy(vmfsctl, c):
    work = T.scratch_dir("thin")
    try:
        native = os.path.join(work, "native.img")
        with open(native, "wb") as f:
            f.truncate(1 << 30)
        T.run([vmfsctl, "mkfs", "-q", "-H", "4", "-J", "1M", native])
        local = os.path.join(work, "disk.raw")
        with open(local, "wb") as f:
            f.write(b"boot sector")
            f.seek(64 << 20)
            f.write(b"end")
        T.run([vmfsctl, "cp", local, native + ":/disk.raw"])
        st = stat_json(vmfsctl, native, "/disk.raw")
        c.eq("thin copy: size", st["size"], (64 << 20) + 3)
        c.ok("thin copy: at most 2 blocks allocated for 64 MiB of zeroes (%d sectors)"
             % st["blocks"], st["blocks"] * 512 <= 2 * (1 << 20) + (64 << 10))
        rc, got = T.stream_md5([vmfsctl, "cat", native, "/disk.raw"])
        with open(local, "rb") as f:
            c.eq("thin copy: content", got, T.md5(f.read()))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    data, vmfsctl = T.env_or_skip()
    c = T.Checker()
    for version in (5, 6):
        migrate(version, data, vmfsctl, c)
    thin_copy(vmfsctl, c)
    c.finish("vmfsr_migrate")


if __name__ == "__main__":
    main()
