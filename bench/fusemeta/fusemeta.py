"""Metadata through the interfaces users touch, side by side in one run:
create (open O_CREAT + 4 KiB write + close), stat, ls -l (readdir + stat of
every entry) and unlink of N files in one directory, on
 - vmfsmount (this build's, and optionally an older build's: VMFS_OLD_BUILD)
 - fuse2fs on an ext4 image of the same size
 - kernel ext4 on a loop device
Prints ops/s per system and the ratios ours / peer; writes a Markdown
table to bench/results/fusemeta.md.

  fusemeta.py OUT.md   (VMFS_BUILD, VMFS_OLD_BUILD, FUSEMETA_N)"""
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

N = int(os.environ.get("FUSEMETA_N", "1000"))
SIZE = 8 << 30
BLOCK = b"x" * 4096


def is_mounted(mnt):
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == mnt for line in f)


def wait_mounted(mnt, proc, what):
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if is_mounted(mnt):
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError("%s did not mount" % what)


def workload(d):
    os.makedirs(d)
    res = {}
    t = time.monotonic()
    for i in range(N):
        fd = os.open(os.path.join(d, "f%06d" % i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, BLOCK)
        os.close(fd)
    res["create"] = N / (time.monotonic() - t)
    t = time.monotonic()
    for i in range(N):
        os.stat(os.path.join(d, "f%06d" % i))
    res["stat"] = N / (time.monotonic() - t)
    t = time.monotonic()
    subprocess.run(["ls", "-l", d], check=True, stdout=subprocess.DEVNULL)
    res["ls -l (s)"] = time.monotonic() - t
    t = time.monotonic()
    for i in range(N):
        os.unlink(os.path.join(d, "f%06d" % i))
    res["unlink"] = N / (time.monotonic() - t)
    return res


def run_vmfs(build, tmp, tag):
    img = os.path.join(tmp, tag + ".img")
    mnt = os.path.join(tmp, tag)
    os.makedirs(mnt)
    with open(img, "wb") as f:
        f.truncate(SIZE)
    ctl = os.path.join(build, "fuse-tools", "vmfsctl")
    subprocess.run([ctl, "mkfs", "-q", img], check=True)
    p = subprocess.Popen([os.path.join(build, "fuse-tools", "vmfsmount"), "-f", img, mnt],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_mounted(mnt, p, "vmfsmount")
        return workload(os.path.join(mnt, "d"))
    finally:
        subprocess.run(["fusermount3", "-u", mnt])
        p.wait(timeout=60)


def ext4_image(tmp, tag):
    img = os.path.join(tmp, tag + ".img")
    with open(img, "wb") as f:
        f.truncate(SIZE)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0",
                    img], check=True, stdout=subprocess.DEVNULL)
    return img


def run_fuse2fs(tmp):
    img = ext4_image(tmp, "fuse2fs")
    mnt = os.path.join(tmp, "fuse2fs")
    os.makedirs(mnt)
    p = subprocess.Popen(["fuse2fs", img, mnt, "-f"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        wait_mounted(mnt, p, "fuse2fs")
        return workload(os.path.join(mnt, "d"))
    finally:
        subprocess.run(["fusermount3", "-u", mnt])
        p.wait(timeout=60)


def run_ext4(tmp):
    img = ext4_image(tmp, "ext4")
    mnt = os.path.join(tmp, "ext4")
    os.makedirs(mnt)
    loop = subprocess.run(["losetup", "--direct-io=on", "-f", "--show", img], check=True,
                          capture_output=True, text=True).stdout.strip()
    try:
        subprocess.run(["mount", loop, mnt], check=True)
        try:
            return workload(os.path.join(mnt, "d"))
        finally:
            subprocess.run(["umount", mnt])
    finally:
        subprocess.run(["losetup", "-d", loop])


def main():
    out = sys.argv[1]
    build = os.environ["VMFS_BUILD"]
    old = os.environ.get("VMFS_OLD_BUILD")
    tmp = tempfile.mkdtemp(prefix="fusemeta-", dir=os.environ.get("TMPDIR", "/var/tmp"))
    rows = {}
    try:
        rows["vmfsmount"] = run_vmfs(build, tmp, "vmfs")
        if old:
            rows["vmfsmount (before)"] = run_vmfs(old, tmp, "vmfsold")
        rows["fuse2fs"] = run_fuse2fs(tmp)
        rows["ext4 (loop)"] = run_ext4(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cols = ["create", "stat", "unlink", "ls -l (s)"]
    lines = ["# bench fusemeta: %d files in one directory, through each mount" % N, "",
             "%s UTC, %s, kernel %s, %d CPUs. Command: `./run bench fusemeta`"
             " (FUSEMETA_N=%d%s)." % (time.strftime("%F %T", time.gmtime()), platform.node(),
                                     platform.release(), os.cpu_count(), N,
                                     ", VMFS_OLD_BUILD=%s" % old if old else ""), "",
             "| system | creates/s | stats/s | unlinks/s | ls -l (s) |", "|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append("| %s | %s |" % (name, " | ".join(
            "%.0f" % r[c] if c != "ls -l (s)" else "%.3f" % r[c] for c in cols)))
    lines += ["", "Ratios, vmfsmount / peer (ls -l: peer time / ours):", "",
              "| peer | create | stat | unlink | ls -l |", "|---|---|---|---|---|"]
    ours = rows["vmfsmount"]
    for name, r in rows.items():
        if name == "vmfsmount":
            continue
        lines.append("| %s | %s |" % (name, " | ".join(
            "%.3fx" % (ours[c] / r[c] if c != "ls -l (s)" else r[c] / ours[c]) for c in cols)))
    text = "\n".join(lines) + "\n"
    print(text)
    with open(out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
