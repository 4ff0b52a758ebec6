"""Everyday trees through vmfsmount on a fresh 8 GiB volume: a generated
tree of 3,000 small files (0 to 70,000 bytes, various modes) in 440
directories, with a short user xattr (inline in the inode) on one file in
five and a 300-byte one (an attribute block) on one in ten, on a volume made with
1,024 FDs (2,048 sub-blocks and 256 pointer blocks by default) is more
than those hold, so FD, SB and PB clusters must grow into free file blocks
(INCOMPAT_XRES). With TREE_FULL=1 (./run stress): default mkfs (8,192
FDs), a copy of /usr/include (when the machine has one) plus 4,000
generated files. POSIX ACLs equal to the mode (what cp -a sets) become
the mode; other ACLs are refused (EOPNOTSUPP). Checked: cp -a reports no
error, diff -r is clean,
modes/owners/sizes and xattrs are identical, fsck is clean, `vmfsctl info`
shows grown clusters, and rm -rf gives every FD back (the grown clusters
stay, empty, for the next files: the same tree copied again grows nothing
more)."""
import errno
import json
import os
import struct
import random
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fusetest as F  # noqa: E402

FULL = os.environ.get("TREE_FULL") == "1"
NGEN = 4000 if FULL else 3000


def make_source(src):
    """The source tree on the local file system; returns its file count."""
    os.makedirs(src)
    if FULL and os.path.isdir("/usr/include"):
        subprocess.run(["cp", "-a", "/usr/include", os.path.join(src, "include")], check=True,
                       timeout=300)
    rnd = random.Random(7)
    gen = os.path.join(src, "gen")
    for i in range(NGEN):
        d = os.path.join(gen, "d%02d" % (i % 40), "s%d" % (i % 10))
        os.makedirs(d, exist_ok=True)
        size = rnd.choice([0, 17, 600, 3000, 5000, 9000, 20000, 70000])
        p = os.path.join(d, "f%d" % i)
        with open(p, "wb") as f:
            f.write(rnd.randbytes(size))
        os.chmod(p, rnd.choice([0o644, 0o600, 0o755, 0o640]))
    n = 0
    for root, dirs, files in os.walk(src):
        for name in files:
            p = os.path.join(root, name)
            n += 1
            if n % 5 == 0 and not os.path.islink(p):
                os.setxattr(p, "user.origin", ("%s #%d" % (name, n)).encode())
            if n % 10 == 0 and not os.path.islink(p):
                # too big for the inode (120 bytes): an attribute block
                os.setxattr(p, "user.notes", (("%s " % name) * 40)[:300].encode())
    return n


def listing(top):
    """mode owner group size path for everything below top (find -printf)."""
    out = subprocess.run(["find", ".", "-printf", "%m %u %g %y %s %p\n"], cwd=top,
                         capture_output=True, check=True, timeout=300).stdout.decode()
    # a directory's size is the file system's own business
    lines = [" ".join(x if i != 4 or parts[3] != "d" else "-" for i, x in enumerate(parts))
             for parts in (line.split(" ", 5) for line in out.splitlines())]
    return sorted(lines)


def xattrs(top):
    got = {}
    for root, dirs, files in os.walk(top):
        for name in files:
            p = os.path.join(root, name)
            if os.path.islink(p):
                continue
            for k in os.listxattr(p):
                if k.startswith("user."):
                    got[os.path.relpath(p, top) + ":" + k] = os.getxattr(p, k)
    return got


def same_list(c, what, got, want):
    """Compares two sorted lists, printing at most 10 differences."""
    g, w = set(got), set(want)
    extra, missing = sorted(g - w)[:10], sorted(w - g)[:10]
    c.ok(what, got == want, "only in the copy: %s; only in the source: %s" % (extra, missing))


def acl(*entries):
    """Linux's xattr form of a POSIX ACL: version 2, (tag, perm, id)."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)


def check_acls(c, mnt):
    """The mount does not enforce ACLs: one equal to the mode sets the mode
    (as cp -a does it), others are refused, never stored and ignored."""
    p = os.path.join(mnt, "acl")
    with open(p, "wb"):
        pass
    os.chmod(p, 0o600)
    os.setxattr(p, "system.posix_acl_access", acl((1, 6, 0xFFFFFFFF), (4, 4, 0xFFFFFFFF),
                                                  (0x20, 1, 0xFFFFFFFF)))
    c.eq("a minimal ACL sets the mode", oct(os.stat(p).st_mode & 0o7777), oct(0o641))
    try:
        os.getxattr(p, "system.posix_acl_access")
        c.ok("a minimal ACL is not stored", False)
    except OSError as e:
        c.eq("a minimal ACL is not stored", F.errname(e), "ENODATA")
    for what, name, val in (
            ("an extended ACL", "system.posix_acl_access",
             acl((1, 6, 0xFFFFFFFF), (2, 4, 65534), (4, 4, 0xFFFFFFFF), (0x10, 4, 0xFFFFFFFF),
                 (0x20, 0, 0xFFFFFFFF))),
            ("a default ACL", "system.posix_acl_default",
             acl((1, 7, 0xFFFFFFFF), (4, 5, 0xFFFFFFFF), (0x20, 5, 0xFFFFFFFF)))):
        try:
            os.setxattr(p if "access" in name else mnt, name, val)
            c.ok("%s is refused" % what, False)
        except OSError as e:
            c.eq("%s is refused" % what, e.errno, errno.EOPNOTSUPP)
    c.eq("the mode after refused ACLs", oct(os.stat(p).st_mode & 0o7777), oct(0o641))
    os.unlink(p)


def info(vmfsctl, img):
    p = subprocess.run([vmfsctl, "info", "--json", img], capture_output=True, timeout=60,
                       check=True)
    return json.loads(p.stdout)


def main():
    vmfsctl, vmfsmount = F.tools()
    F.fuse_usable()
    c = F.Checker("fuse_tree")
    tmp = F.scratch("tree")
    img = os.path.join(tmp, "vol.img")
    src = os.path.join(tmp, "src")
    nsrc = make_source(src)
    print("source tree: %d files" % nsrc)
    F.mkfs(vmfsctl, img, 8 << 30, *([] if FULL else ["-N", "1024"]))
    mounts = F.Mounts(vmfsmount, tmp)
    try:
        mnt = mounts.mount(img, os.path.join(tmp, "m"), host="tree")
        check_acls(c, mnt)
        before = os.statvfs(mnt)
        p = subprocess.run(["cp", "-a", src, os.path.join(mnt, "copy")], capture_output=True,
                           timeout=900)
        err = p.stderr.decode(errors="replace")
        c.eq("cp -a exit status (stderr: %s)" % err[:2000], p.returncode, 0)
        d = subprocess.run(["diff", "-r", "--no-dereference", src, os.path.join(mnt, "copy")],
                           capture_output=True, timeout=600)
        c.eq("diff -r is clean: %s" % (d.stdout + d.stderr).decode(errors="replace")[:2000],
             d.returncode, 0)
        same_list(c, "modes, owners and sizes identical", listing(os.path.join(mnt, "copy")),
                  listing(src))
        want = xattrs(src)
        c.ok("the source has xattrs", len(want) > nsrc // 6, len(want))
        got = xattrs(os.path.join(mnt, "copy"))
        same_list(c, "xattrs identical", sorted("%s=%r" % kv for kv in got.items()),
                  sorted("%s=%r" % kv for kv in want.items()))
        full = os.statvfs(mnt)
        print("files used %d -> %d" % (before.f_files - before.f_ffree,
                                        full.f_files - full.f_ffree))
        c.ok("more files than mkfs made FDs",
             full.f_files - full.f_ffree > (8192 if FULL else 1024), full.f_files - full.f_ffree)
    finally:
        st = mounts.unmount_all()
    for m, rc in st.items():
        c.eq("vmfsmount exit status", rc, 0)
    rc, out = F.fsck(vmfsctl, img)
    c.eq("fsck clean after the copy: " + out, rc, 0)
    grown = info(vmfsctl, img).get("grown_clusters", {})
    print("grown clusters: %s" % grown)
    for t in ("fd", "sb", "pb"):
        c.ok("%s clusters grew" % t, grown.get(t, 0) > 0, grown)
    try:
        mnt = mounts.mount(img, os.path.join(tmp, "m"), host="tree2")
        subprocess.run(["rm", "-rf", os.path.join(mnt, "copy")], check=True, timeout=900)
        after = os.statvfs(mnt)
        c.eq("every FD back after rm -rf", after.f_files - after.f_ffree,
             before.f_files - before.f_ffree)
        # the grown clusters stay allocated (one block each), empty
        c.eq("free blocks after rm -rf: before minus the grown clusters", after.f_bfree,
             before.f_bfree - sum(grown.values()))
        p = subprocess.run(["cp", "-a", src, os.path.join(mnt, "again")], capture_output=True,
                           timeout=900)
        c.eq("second copy: " + p.stderr.decode(errors="replace")[:2000], p.returncode, 0)
    finally:
        st = mounts.unmount_all()
    for m, rc in st.items():
        c.eq("vmfsmount exit status", rc, 0)
    c.eq("the second copy grew nothing more", info(vmfsctl, img).get("grown_clusters"), grown)
    rc, out = F.fsck(vmfsctl, img)
    c.eq("fsck clean at the end: " + out, rc, 0)
    if not c.fails:
        shutil.rmtree(tmp, ignore_errors=True)
    c.finish()


if __name__ == "__main__":
    main()
