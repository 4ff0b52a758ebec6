"""Metadata through the interfaces users touch, side by side in one run:
create (open O_CREAT + 4 KiB write + close), stat, ls -l (readdir + stat of
every entry) and unlink of N files in one directory, on
 - vmfsmount (this build's; again with -o keep_locks, kept locks and group
   commit; and optionally an older build's: VMFS_OLD_BUILD)
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

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import benchlib  # noqa: E402

N = int(os.environ.get("FUSEMETA_N", "1000"))
SIZE = 8 << 30
BLOCK = b"x" * 4096


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


def run_vmfs(build, tmp, tag, opts=()):
    with benchlib.vmfs_mounted(build, tmp, tag, SIZE, opts) as mnt:
        return workload(os.path.join(mnt, "d"))


def run_fuse2fs(tmp):
    img = benchlib.ext4_image(tmp, "fuse2fs", SIZE)
    mnt = os.path.join(tmp, "fuse2fs")
    os.makedirs(mnt)
    p = subprocess.Popen(["fuse2fs", img, mnt, "-f"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        benchlib.wait_mounted(mnt, p, "fuse2fs")
        return workload(os.path.join(mnt, "d"))
    finally:
        benchlib.stop_fuse(p, mnt)


def run_ext4(tmp):
    with benchlib.ext4_loop_mounted(tmp, "ext4", SIZE, skip_ok=False) as mnt:
        return workload(os.path.join(mnt, "d"))


def main():
    out = sys.argv[1]
    build = os.environ["VMFS_BUILD"]
    old = os.environ.get("VMFS_OLD_BUILD")
    tmp = tempfile.mkdtemp(prefix="fusemeta-", dir=os.environ.get("TMPDIR", "/var/tmp"))
    rows = {}
    try:
        rows["vmfsmount"] = run_vmfs(build, tmp, "vmfs")
        rows["vmfsmount -o keep_locks"] = run_vmfs(build, tmp, "vmfskeep", ("-o", "keep_locks"))
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
    for mine in ("vmfsmount", "vmfsmount -o keep_locks"):
        ours = rows[mine]
        lines += ["", "Ratios, %s / peer (ls -l: peer time / ours):" % mine, "",
                  "| peer | create | stat | unlink | ls -l |", "|---|---|---|---|---|"]
        for name, r in rows.items():
            if name == mine or (name.startswith("vmfsmount") and "before" not in name):
                continue
            lines.append("| %s | %s |" % (name, " | ".join(
                "%.3fx" % (ours[c] / r[c] if c != "ls -l (s)" else r[c] / ours[c])
                for c in cols)))
    text = "\n".join(lines) + "\n"
    print(text)
    with open(out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
