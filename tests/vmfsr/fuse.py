"""vmfsmount (our read-only FUSE mount) of real VMFS5 and VMFS6 images shows
the same tree as the oracle mounts vmfs-fuse / vmfs6-fuse of the same image:
names, lstat fields (mode, links, owner, size, times, blocks), symlink
targets and the md5 of every file; writes are refused with EROFS."""
import errno
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmfsrtest as T  # noqa: E402

ORACLE_FUSE = {5: "vmfs-fuse", 6: "vmfs6-fuse"}
MOUNT_TIMEOUT = 15


def fuse_usable():
    if not os.path.exists("/dev/fuse"):
        T.skip("/dev/fuse does not exist")
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as e:
        T.skip("/dev/fuse is unusable: %s" % e)
    if not shutil.which("fusermount3"):
        T.skip("fusermount3 is not installed")
    if os.geteuid() != 0:
        T.skip("FUSE mounts in this test need root")


def wait_mounted(mnt, proc=None):
    end = time.monotonic() + MOUNT_TIMEOUT
    while time.monotonic() < end:
        if os.path.ismount(mnt):
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def unmount(mnt):
    for _ in range(20):
        if not os.path.ismount(mnt):
            return
        subprocess.run(["fusermount3", "-u", "-z", mnt], stderr=subprocess.DEVNULL, timeout=10)
        time.sleep(0.1)


def file_md5(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def fmt_of(m):
    # vmfs-tools ORs S_IFREG into the mode of the system directory .sdd.sf
    # (whose mode already holds S_IFDIR), giving S_IFSOCK: read that as a
    # directory, which debugvmfs's 'ls -l' also shows it as.
    return stat.S_IFDIR if stat.S_IFMT(m) == stat.S_IFSOCK else stat.S_IFMT(m)


def compare(c, ours, theirs, rel=""):
    a, b = sorted(os.listdir(ours)), sorted(os.listdir(theirs))
    c.eq((rel or "/") + " names", a, b)
    for name in sorted(set(a) & set(b)):
        p, q, r = os.path.join(ours, name), os.path.join(theirs, name), rel + "/" + name
        s, o = os.lstat(p), os.lstat(q)
        c.eq(r + " type", stat.S_IFMT(s.st_mode), fmt_of(o.st_mode))
        c.eq(r + " perm", stat.S_IMODE(s.st_mode), stat.S_IMODE(o.st_mode))
        for f in ("st_nlink", "st_uid", "st_gid", "st_size", "st_atime", "st_mtime",
                  "st_ctime", "st_blocks"):
            c.eq(r + " " + f, getattr(s, f), getattr(o, f))
        if stat.S_ISLNK(s.st_mode):
            c.eq(r + " target", os.readlink(p), os.readlink(q))
        elif stat.S_ISREG(s.st_mode):
            c.eq(r + " md5", file_md5(p), file_md5(q))
        elif stat.S_ISDIR(s.st_mode) and stat.S_ISDIR(fmt_of(o.st_mode)):
            try:
                os.listdir(q)
            except OSError:
                # vmfs-fuse cannot list the system directory .sdd.sf
                print("NOTE: oracle cannot list %s; checking ours lists it" % r)
                c.ok(r + " listable", isinstance(os.listdir(p), list))
                continue
            compare(c, p, q, r)


def check_readonly(c, mnt):
    target = None
    for root, dirs, files in os.walk(mnt):
        for f in files:
            if stat.S_ISREG(os.lstat(os.path.join(root, f)).st_mode):
                target = os.path.join(root, f)
                break
        if target:
            break
    c.ok("mount has a regular file", target is not None)
    if not target:
        return
    try:
        with open(target, "r+b"):
            pass
        c.ok("opening for write fails", False)
    except OSError as e:
        c.eq("open for write errno", e.errno, errno.EROFS)


def one(c, version, data, vmfsmount):
    tool = ORACLE_FUSE[version]
    if not shutil.which(tool):
        T.skip("%s (the oracle) is not installed" % tool)
    tmp = T.scratch_dir("fuse")
    ours, theirs = os.path.join(tmp, "ours"), os.path.join(tmp, "oracle")
    os.mkdir(ours)
    os.mkdir(theirs)
    proc = None
    try:
        img = T.unpack(data, version, tmp)
        proc = subprocess.Popen([vmfsmount, "-f", img, ours], stderr=subprocess.PIPE)
        if not wait_mounted(ours, proc):
            err = proc.stderr.read().decode() if proc.poll() is not None else "(still running)"
            c.ok("vmfsmount mounts VMFS%d: %s" % (version, err.strip()), False)
            return
        subprocess.run([tool, img, theirs], timeout=30, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        if not wait_mounted(theirs):
            c.ok("%s mounts the image" % tool, False)
            return
        compare(c, ours, theirs)
        check_readonly(c, ours)
        sv = os.statvfs(ours)
        c.ok("statvfs reports read-only", sv.f_flag & os.ST_RDONLY)
    finally:
        unmount(ours)
        unmount(theirs)
        if proc is not None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            c.eq("vmfsmount VMFS%d exit status after unmount" % version, proc.returncode, 0)
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    data, vmfsctl = T.env_or_skip()
    fuse_usable()
    vmfsmount = os.path.join(os.path.dirname(vmfsctl), "vmfsmount")
    if not os.access(vmfsmount, os.X_OK):
        T.skip("%s not built (libfuse3 development files missing?)" % vmfsmount)
    c = T.Checker()
    for version in (5, 6):
        one(c, version, data, vmfsmount)
    # a device holding no known file system is a clear error, no mount
    tmp = T.scratch_dir("fuse-bad")
    try:
        junk = os.path.join(tmp, "junk.img")
        with open(junk, "wb") as f:
            f.truncate(64 << 20)
        p = T.run([vmfsmount, "-f", junk, tmp], check=False, timeout=20)
        c.ok("junk device refused", p.returncode == 1 and b"no known file system" in p.stderr)
        p = T.run([vmfsmount, "-f", junk + ".missing", tmp], check=False, timeout=20)
        c.ok("missing device refused", p.returncode == 1 and b"cannot open" in p.stderr)
    finally:
        unmount(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    c.finish("vmfsr_fuse")


if __name__ == "__main__":
    main()
