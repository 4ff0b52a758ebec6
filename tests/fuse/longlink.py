"""Symlink targets up to PATH_MAX - 1 = 4095 bytes through vmfsmount,
compared with a directory of /tmp: targets of 1, 3840 (the largest stored
inline), 3841, 4000 and 4095 bytes are created and readlink returns them
exactly (also after a remount and through `vmfsctl stat --json`); lstat
gives their length as size; a 4096-byte target fails the same way on both
sides (ENAMETOOLONG); following a long relative link works; fsck is clean
after unmounting, also after the links were removed (their sub-blocks
freed)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fusetest as F  # noqa: E402

LENS = [1, 3840, 3841, 4000, 4095]


def target(n):
    """n bytes of "./" components and a final name: a valid relative path
    to "dest" however long (each "./" stays in the current directory)."""
    return "./" * ((n - 4) // 2) + ("/" if n % 2 else "") + "dest" if n >= 4 else "d" * n


def errname_of(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return F.errname(e)


def check_links(c, d, what):
    for n in LENS:
        p = os.path.join(d, "l%d" % n)
        got = os.readlink(p) if os.path.lexists(p) else None
        c.eq("%s: readlink of the %d-byte target" % (what, n), got, target(n))
        c.eq("%s: lstat size of l%d" % (what, n), os.lstat(p).st_size, n)


def main():
    vmfsctl, vmfsmount = F.tools()
    F.fuse_usable()
    c = F.Checker("fuse_longlink")
    tmp = F.scratch("longlink")
    ref = tempfile.mkdtemp(prefix="vmfs-longlink-ref-", dir="/tmp")
    img = os.path.join(tmp, "v.img")
    F.mkfs(vmfsctl, img, 64 << 20, "-H", "4", "-J", "256K", "--locks", "1")
    mounts = F.Mounts(vmfsmount, tmp)
    try:
        mnt = mounts.mount(img, os.path.join(tmp, "m"), host="longlink")
        for d in (mnt, ref):
            for n in LENS:
                c.eq("symlink of %d bytes (%s)" % (n, d),
                     errname_of(lambda: os.symlink(target(n), os.path.join(d, "l%d" % n))), "ok")
            with open(os.path.join(d, "dest"), "w") as f:
                f.write("reached")
        c.eq("a 4096-byte target: the same as on /tmp",
             errname_of(lambda: os.symlink("x" * 4096, os.path.join(mnt, "l4096"))),
             errname_of(lambda: os.symlink("x" * 4096, os.path.join(ref, "l4096"))))
        check_links(c, mnt, "mount")
        check_links(c, ref, "/tmp")
        with open(os.path.join(mnt, "l4095")) as f:
            c.eq("following the 4095-byte link", f.read(), "reached")
        c.eq("vmfsmount exit status", mounts.unmount(mnt), 0)
        rc, out = F.fsck(vmfsctl, img)
        c.eq("fsck clean: " + out, rc, 0)
        p = subprocess.run([vmfsctl, "stat", "--json", img, "/l4095"], capture_output=True,
                           text=True, timeout=60)
        try:
            j = json.loads(p.stdout)
        except ValueError:
            j = {}
        c.eq("vmfsctl stat --json: target", j.get("target"), target(4095))
        mnt = mounts.mount(img, os.path.join(tmp, "m"), host="again")
        check_links(c, mnt, "after remount")
        for n in LENS:
            os.unlink(os.path.join(mnt, "l%d" % n))
    finally:
        st = mounts.unmount_all()
        shutil.rmtree(ref, ignore_errors=True)
    for m, rc in st.items():
        c.eq("vmfsmount exit status", rc, 0)
    rc, out = F.fsck(vmfsctl, img)
    c.eq("fsck clean after removing the links: " + out, rc, 0)
    if not c.fails:
        subprocess.run(["rm", "-rf", tmp])
    c.finish()


if __name__ == "__main__":
    main()
