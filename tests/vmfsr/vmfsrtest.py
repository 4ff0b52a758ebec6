"""Shared helpers of the real-VMFS reader tests (tests/vmfsr/).

The test images are real datastores made by ESXi, kept gzipped in
$VMFS_SHARED/data/; each test unpacks them into a sparse scratch file under
$VMFS_TEST_TMP and deletes it afterwards. Debian's vmfs-tools (debugvmfs,
VMFS3/5) and vmfs6-tools (debugvmfs6) are the oracle: tests run them on the
same image and compare, nothing expected is hard-coded.
"""
import gzip
import hashlib
import json
import os
import pwd
import grp
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
IMAGES = {5: "vmfs5.bin.gz", 6: "vmfs6.bin.gz"}
ORACLE = {5: "debugvmfs", 6: "debugvmfs6"}


def skip(why):
    print("SKIP: " + why)
    sys.exit(SKIP)


def env_or_skip():
    shared = os.environ.get("VMFS_SHARED", "")
    data = os.path.join(shared, "data")
    for v, name in IMAGES.items():
        if not os.path.exists(os.path.join(data, name)):
            skip("test image %s not found in %s" % (name, data))
    vmfsctl = os.environ.get("VMFSCTL")
    if not vmfsctl or not os.access(vmfsctl, os.X_OK):
        print("FAIL: VMFSCTL not set or not executable")
        sys.exit(1)
    return data, vmfsctl


def need_oracle(version):
    tool = ORACLE[version]
    if not shutil.which(tool):
        skip("%s (the oracle) is not installed" % tool)
    return tool


def scratch_dir(tag):
    base = os.environ.get("VMFS_TEST_TMP") or tempfile.gettempdir()
    os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix="vmfsr-%s-" % tag, dir=base)


def unpack(data, version, dest_dir):
    """Unpacks the image sparsely (zero 64 KiB runs become holes)."""
    out = os.path.join(dest_dir, "vmfs%d.img" % version)
    chunk = 1 << 16
    zero = bytes(chunk)
    with gzip.open(os.path.join(data, IMAGES[version]), "rb") as src, open(out, "wb") as dst:
        while True:
            b = src.read(chunk)
            if not b:
                break
            if b == zero[: len(b)]:
                dst.seek(len(b), os.SEEK_CUR)
            else:
                dst.write(b)
        dst.truncate()
    return out


def run(cmd, timeout=60, check=True, env=None):
    e = dict(os.environ)
    e["TZ"] = "UTC"
    if env:
        e.update(env)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, env=e)
    if check and p.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (" ".join(cmd), p.returncode,
                                                 p.stderr.decode(errors="replace")))
    return p


def oracle_out(version, img, *args, timeout=120):
    """Runs debugvmfs/debugvmfs6; strips debugvmfs6's 'VMFS version' banner."""
    p = run([ORACLE[version], img] + list(args), timeout=timeout, check=False)
    out = p.stdout
    banner = b"VMFS version: 6\n"
    if version == 6 and out.startswith(banner):
        out = out[len(banner):]
    return p.returncode, out


def oracle_ls(version, img, path):
    """{name: (modestr, nlink, user, group, size, 'date time')} from 'ls -l'."""
    rc, out = oracle_out(version, img, "ls", "-l", path)
    if rc != 0:
        raise RuntimeError("%s ls -l %s failed" % (ORACLE[version], path))
    res = {}
    for line in out.decode("utf-8", "replace").splitlines():
        f = line.split(None, 7)
        if len(f) < 8:
            continue
        res[f[7]] = (f[0], int(f[1]), f[2], f[3], int(f[4]), f[5] + " " + f[6])
    return res


def ours_ls(vmfsctl, img, path):
    p = run([vmfsctl, "ls", "-a", "--json", img, path])
    return {e["name"]: e for e in json.loads(p.stdout)}


def user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def stream_md5(cmd, skip_prefix=b"", timeout=120):
    """(exit code, md5 of stdout) without holding the output in memory."""
    e = dict(os.environ)
    e["TZ"] = "UTC"
    h = hashlib.md5()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=e)
    head = p.stdout.read(len(skip_prefix)) if skip_prefix else b""
    if head != skip_prefix:
        h.update(head)
    while True:
        b = p.stdout.read(1 << 20)
        if not b:
            break
        h.update(b)
    return p.wait(timeout=timeout), h.hexdigest()


def md5(b):
    return hashlib.md5(b).hexdigest()


class Checker:
    def __init__(self):
        self.fails = 0
        self.checks = 0

    def eq(self, what, ours, theirs):
        self.checks += 1
        if ours != theirs:
            self.fails += 1
            print("MISMATCH %s: ours=%r oracle=%r" % (what, ours, theirs))

    def ok(self, what, cond):
        self.checks += 1
        if not cond:
            self.fails += 1
            print("FAIL %s" % what)

    def finish(self, name):
        if self.checks == 0:
            print("FAIL %s: nothing was checked" % name)
            sys.exit(1)
        print("%s: %d checks, %d failures" % (name, self.checks, self.fails))
        sys.exit(1 if self.fails else 0)
