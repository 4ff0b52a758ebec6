"""Helpers of the vmfsmount tests (tests/fuse/): environment, skip rules,
native volumes, FUSE mounts started in the foreground and always unmounted
(only our own PIDs are ever killed), fsck, and a small checker."""
import errno
import os
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean

MOUNT_TIMEOUT = 20
SKIP = 77


def skip(msg):
    print("SKIP: " + msg)
    sys.exit(SKIP)


def tools():
    vmfsctl = os.environ.get("VMFSCTL")
    if not vmfsctl or not os.access(vmfsctl, os.X_OK):
        skip("VMFSCTL is not set to the vmfsctl binary")
    vmfsmount = os.path.join(os.path.dirname(vmfsctl), "vmfsmount")
    if not os.access(vmfsmount, os.X_OK):
        skip("%s not built (libfuse3 development files missing?)" % vmfsmount)
    return vmfsctl, vmfsmount


def fuse_usable():
    if not os.path.exists("/dev/fuse"):
        skip("/dev/fuse does not exist")
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as e:
        skip("/dev/fuse is unusable: %s" % e)
    if not shutil.which("fusermount3"):
        skip("fusermount3 is not installed")
    if os.geteuid() != 0:
        skip("these FUSE tests need root")


def scratch(name):
    base = os.environ.get("VMFS_TEST_TMP") or "/tmp"
    d = os.path.join(base, "fuse-%s-%d" % (name, os.getpid()))
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def mkfs(vmfsctl, img, size, *opts):
    with open(img, "wb") as f:
        f.truncate(size)
    subprocess.run([vmfsctl, "mkfs", "-q", "--hb-timeout", "4000", *opts, img], check=True,
                   timeout=120, stdout=subprocess.DEVNULL)


def fsck(vmfsctl, img):
    p = subprocess.run([vmfsctl, "fsck", img], capture_output=True, timeout=300)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace").strip()


def is_mounted(mnt):
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == mnt for line in f)


class Mounts:
    """vmfsmount processes started with -f by this test; unmount_all() ends
    them all (fusermount3 -u, then our own PIDs only)."""

    def __init__(self, vmfsmount, tmp):
        self.vmfsmount = vmfsmount
        self.tmp = tmp
        self.procs = {}  # mnt -> (Popen, log path)

    def mount(self, img, mnt, host=None, opts=()):
        os.makedirs(mnt, exist_ok=True)
        o = list(opts) + (["host=" + host] if host else [])
        cmd = [self.vmfsmount, "-f"] + (["-o", ",".join(o)] if o else []) + [img, mnt]
        log = self.procs_log(mnt)
        with open(log, "wb") as lf:
            p = subprocess.Popen(cmd, stdout=lf, stderr=lf)
        self.procs[mnt] = (p, log)
        end = time.monotonic() + MOUNT_TIMEOUT
        while time.monotonic() < end:
            if is_mounted(mnt):
                return mnt
            if p.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("vmfsmount %s did not mount: %s" % (mnt, self.log(mnt)))

    def log(self, mnt):
        with open(self.procs_log(mnt), "rb") as f:
            return f.read().decode(errors="replace").strip()

    def unmount(self, mnt):
        """Returns vmfsmount's exit status (None if it had to be killed)."""
        p, _ = self.procs.pop(mnt)
        for i in range(50):
            if not is_mounted(mnt):
                break
            subprocess.run(["fusermount3", "-u"] + (["-z"] if i >= 20 else []) + [mnt],
                           stderr=subprocess.DEVNULL, timeout=30)
            if is_mounted(mnt):
                time.sleep(0.1)
        try:
            rc = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = None
        if rc != 0:
            with open(self.procs_log(mnt)) as f:
                print("vmfsmount %s log:\n%s" % (mnt, f.read()))
        return rc

    def procs_log(self, mnt):
        return os.path.join(self.tmp, "mount-%s.log" % os.path.basename(mnt))

    def unmount_all(self):
        return {m: self.unmount(m) for m in list(self.procs)}


class Checker:
    def __init__(self, name):
        self.name = name
        self.fails = 0
        self.checks = 0

    def ok(self, what, cond, detail=""):
        self.checks += 1
        if not cond:
            self.fails += 1
            print("FAIL: %s%s" % (what, (": " + str(detail)) if detail else ""))
        return bool(cond)

    def eq(self, what, got, want):
        return self.ok(what, got == want, "got %r, want %r" % (got, want))

    def finish(self):
        print("%s: %d checks, %d failed" % (self.name, self.checks, self.fails))
        sys.exit(1 if self.fails else 0)


def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno))
