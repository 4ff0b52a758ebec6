"""fio through the data path users touch, side by side in one run:
 - vmfsmount (this build's, and optionally an older build's: VMFS_OLD_BUILD)
 - kernel ext4 on a loop device (--direct-io=on); skipped with a message
   when loop devices or mount are not permitted
Each system gets a fresh image, one file of FIO_SIZE (default 1g) written
in full first (reads of holes do no I/O), then six fio jobs of FIO_RUNTIME
seconds (default 10), direct=1, ioengine=libaio: 4 KiB randread and
randwrite at iodepth 1 and 32, 4 KiB random reads at iodepth 32 through a
read-write open (rw=randrw, rwmixread=100: how a hypervisor reads a VM's
disk), 1 MiB sequential
read and write at iodepth 8.
Prints IOPS / MiB/s per system and the ratios ours / peer, and writes a
Markdown table to OUT.md.

  fio.py OUT.md   (VMFS_BUILD, VMFS_OLD_BUILD, FIO_SIZE, FIO_RUNTIME)"""
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import benchlib  # noqa: E402

SIZE = os.environ.get("FIO_SIZE", "1g")
RUNTIME = int(os.environ.get("FIO_RUNTIME", "10"))
IMG_SIZE = 8 << 30
JOBS = [  # name, rw, bs, iodepth, reported as
    ("4k randread QD1", "randread", "4k", 1, "iops"),
    ("4k randread QD32", "randread", "4k", 32, "iops"),
    ("4k randread QD32 (RW open)", "randrw", "4k", 32, "iops"),
    ("4k randwrite QD1", "randwrite", "4k", 1, "iops"),
    ("4k randwrite QD32", "randwrite", "4k", 32, "iops"),
    ("1M seq read", "read", "1m", 8, "mib"),
    ("1M seq write", "write", "1m", 8, "mib"),
]


def fio(path, rw, bs, qd, runtime, size=None, timed=True):
    cmd = ["fio", "--output-format=json", "--name=j", "--filename=" + path,
           "--ioengine=libaio", "--direct=1", "--rw=" + rw, "--bs=" + bs,
           "--iodepth=%d" % qd, "--size=" + (size or SIZE), "--randrepeat=0"]
    if rw == "randrw":  # reads only, through a read-write open (a VM's disk)
        cmd.append("--rwmixread=100")
    if timed:
        cmd += ["--time_based", "--runtime=%d" % runtime]
    p = subprocess.run(cmd, check=True, capture_output=True, text=True,
                       timeout=runtime + 600)
    job = json.loads(p.stdout)["jobs"][0]
    side = job["read"] if rw in ("read", "randread", "randrw") else job["write"]
    return side["iops"], side["bw_bytes"] / (1 << 20)


def workload(d):
    path = os.path.join(d, "fio.dat")
    t = time.monotonic()
    fio(path, "write", "1m", 8, 0, timed=False)  # preallocate: write it all
    res = {"prefill (s)": time.monotonic() - t}
    for name, rw, bs, qd, unit in JOBS:
        iops, mib = fio(path, rw, bs, qd, RUNTIME)
        res[name] = iops if unit == "iops" else mib
        print("  %-18s %10.1f %s" % (name, res[name], "IOPS" if unit == "iops" else "MiB/s"),
              flush=True)
    return res


def run_vmfs(build, tmp, tag):
    with benchlib.vmfs_mounted(build, tmp, tag, IMG_SIZE) as mnt:
        return workload(mnt)


def run_ext4(tmp):
    with benchlib.ext4_loop_mounted(tmp, "ext4", IMG_SIZE, skip_ok=True) as mnt:
        return workload(mnt) if mnt else None


def fmt(name, v):
    return "%.1f" % v


def main():
    out = sys.argv[1]
    build = os.environ["VMFS_BUILD"]
    old = os.environ.get("VMFS_OLD_BUILD")
    tmp = tempfile.mkdtemp(prefix="benchfio-", dir=os.environ.get("TMPDIR", "/var/tmp"))
    rows = {}
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))  # run the cleanups
    try:
        print("vmfsmount:", flush=True)
        rows["vmfsmount"] = run_vmfs(build, tmp, "vmfs")
        if old:
            print("vmfsmount (before):", flush=True)
            rows["vmfsmount (before)"] = run_vmfs(old, tmp, "vmfsold")
        print("ext4 (loop):", flush=True)
        r = run_ext4(tmp)
        if r:
            rows["ext4 (loop)"] = r
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cols = [j[0] for j in JOBS]
    lines = ["# bench fio: one %s file through each mount, direct=1, libaio" % SIZE, "",
             "%s UTC, %s, kernel %s, %d CPUs. Command: `./run bench fio`"
             " (FIO_SIZE=%s, FIO_RUNTIME=%d%s)." % (
                 time.strftime("%F %T", time.gmtime()), platform.node(), platform.release(),
                 os.cpu_count(), SIZE, RUNTIME,
                 ", VMFS_OLD_BUILD=%s" % old if old else ""), "",
             "4 KiB jobs in IOPS, 1 MiB jobs (iodepth 8) in MiB/s.", "",
             "| system | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in rows.items():
        lines.append("| %s | %s |" % (name, " | ".join(fmt(c, r[c]) for c in cols)))
    lines += ["", "Ratios, vmfsmount / peer:", "",
              "| peer | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    ours = rows["vmfsmount"]
    for name, r in rows.items():
        if name != "vmfsmount":
            lines.append("| %s | %s |" % (name, " | ".join(
                "%.3fx" % (ours[c] / r[c]) if r[c] else "-" for c in cols)))
    text = "\n".join(lines) + "\n"
    print(text)
    with open(out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
